/*
 * cli_query.c - `monitor query EXPR`: PromQL against the agent's store,
 * through its Prometheus API (the same answers Grafana gets).
 *
 *   monitor query 'sum by (name) (rate(container_cpu_usage_seconds_total[1m]))'
 *   monitor query --range 1h --step 15s 'container_memory_working_set_bytes{name="web"}'
 *   monitor query --json 'up'
 *
 * An instant vector prints as a table (METRIC, a column per label, VALUE); a
 * range result prints each series and its points; a scalar or string
 * prints alone; --json prints the API's answer as it came. Errors are the
 * agent's (with the parse error's position) and exit with status 1.
 */
#include "agent/cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUERY_MAX_LABELS (CLI_TABLE_MAX_COLS - 1)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: monitor query [flags] EXPR\n"
		"Evaluates a PromQL expression on the agent's store.\n"
		"  --time T            evaluation time, or the end of --range: Unix seconds,\n"
		"                      RFC 3339, or a duration ago such as 10m (default now)\n"
		"  --range DUR         a range query over the DUR before --time (1h, 30m, ...)\n"
		"  --step DUR          resolution of a range query (default range/120, at least 1s)\n"
		"  --json              print the API's JSON answer as it is\n"
		CLI_COMMON_USAGE);
}

/* Appends key=value, form-encoded. */
static int form_add(struct buf *b, const char *key, const char *value)
{
	size_t n = strlen(value) * 3 + 1;
	char *enc = malloc(n);
	if (!enc)
		return -ENOMEM;
	cli_path_escape(enc, n, value);
	buf_printf(b, "%s%s=%s", b->len ? "&" : "", key, enc);
	free(enc);
	return 0;
}

/* --time: Unix seconds, RFC 3339 (passed on as is), or a duration ago. */
static int parse_when(const char *s, double now_s, char *out, size_t size)
{
	char *end;
	double v = strtod(s, &end);
	if (*s && !*end) {
		snprintf(out, size, "%.3f", v);
		return 0;
	}
	int64_t ms;
	if (parse_duration_ms(s, &ms) == 0) {
		snprintf(out, size, "%.3f", now_s - (double)ms / 1000);
		return 0;
	}
	if (strlen(s) >= 20 && isdigit((unsigned char)s[0]) && s[4] == '-' && s[10] == 'T') {
		snprintf(out, size, "%s", s);
		return 0;
	}
	return -EINVAL;
}

static void fmt_time(char *out, size_t size, const struct json *t)
{
	double v = t && t->type == JSON_NUMBER ? t->number : NAN;
	if (isnan(v)) {
		snprintf(out, size, "?");
		return;
	}
	time_t s = (time_t)floor(v);
	int ms = (int)llround((v - (double)s) * 1000);
	if (ms == 1000) {
		s++;
		ms = 0;
	}
	struct tm tm;
	gmtime_r(&s, &tm);
	char d[40];
	strftime(d, sizeof(d), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, size, ms ? "%s.%03dZ" : "%sZ", d, ms);
}

/* name{a="x", b="y"} as PromQL writes a series. */
static void series_name(struct buf *b, const struct json *metric)
{
	const char *name = metric ? json_get_str(metric, "__name__") : NULL;
	if (name)
		buf_puts(b, name);
	buf_putc(b, '{');
	bool first = true;
	for (const struct json *l = metric ? metric->child : NULL; l; l = l->next) {
		if (!strcmp(l->key, "__name__"))
			continue;
		buf_printf(b, "%s%s=", first ? "" : ", ", l->key);
		buf_put_json_str(b, l->string ? l->string : "");
		first = false;
	}
	buf_putc(b, '}');
}

static int cmp_str(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	/* __name__ first, then by name */
	bool nx = !strcmp(x, "__name__"), ny = !strcmp(y, "__name__");
	if (nx || ny)
		return ny - nx;
	return strcmp(x, y);
}

static void print_vector(const struct json *result)
{
	const char *names[QUERY_MAX_LABELS + 1];
	size_t nn = 0;
	bool too_many = false;
	for (const struct json *s = result->child; s; s = s->next) {
		const struct json *m = json_get(s, "metric");
		for (const struct json *l = m ? m->child : NULL; l; l = l->next) {
			size_t i = 0;
			while (i < nn && strcmp(names[i], l->key))
				i++;
			if (i < nn)
				continue;
			if (nn == QUERY_MAX_LABELS) {
				too_many = true;
				continue;
			}
			names[nn++] = l->key;
		}
	}
	if (too_many)
		nn = 0;
	qsort(names, nn, sizeof(names[0]), cmp_str);
	struct cli_table t;
	cli_table_init(&t, (too_many ? 1 : nn) + 1);
	const char *cells[CLI_TABLE_MAX_COLS];
	char hdr[QUERY_MAX_LABELS][64];
	for (size_t i = 0; i < nn; i++) {
		const char *n = !strcmp(names[i], "__name__") ? "metric" : names[i];
		size_t k = 0;
		for (; n[k] && k + 1 < sizeof(hdr[i]); k++)
			hdr[i][k] = (char)toupper((unsigned char)n[k]);
		hdr[i][k] = '\0';
		cells[i] = hdr[i];
	}
	if (too_many)
		cells[0] = "SERIES";
	cells[too_many ? 1 : nn] = "VALUE";
	cli_table_add(&t, cells);
	struct buf sb;
	buf_init(&sb, 1u << 20);
	for (const struct json *s = result->child; s; s = s->next) {
		const struct json *m = json_get(s, "metric"), *v = json_get(s, "value");
		const char *val = v && v->child && v->child->next ? v->child->next->string : "?";
		if (too_many) {
			buf_reset(&sb);
			series_name(&sb, m);
			cells[0] = sb.data ? sb.data : "{}";
			cells[1] = val;
		} else {
			for (size_t i = 0; i < nn; i++) {
				const char *lv = m ? json_get_str(m, names[i]) : NULL;
				cells[i] = lv ? lv : "";
			}
			cells[nn] = val;
		}
		cli_table_add(&t, cells);
	}
	buf_fini(&sb);
	if (result->count)
		cli_table_print(&t, stdout);
	else
		printf("(no series)\n");
	cli_table_fini(&t);
}

static void print_matrix(const struct json *result)
{
	struct buf b;
	buf_init(&b, 1u << 20);
	bool first = true;
	for (const struct json *s = result->child; s; s = s->next) {
		buf_reset(&b);
		series_name(&b, json_get(s, "metric"));
		printf("%s%s\n", first ? "" : "\n", b.data ? b.data : "{}");
		first = false;
		const struct json *vals = json_get(s, "values");
		for (const struct json *p = vals ? vals->child : NULL; p; p = p->next) {
			char when[48];
			fmt_time(when, sizeof(when), p->child);
			printf("  %s  %s\n", when, p->child && p->child->next ? p->child->next->string : "?");
		}
	}
	if (first)
		printf("(no series)\n");
	buf_fini(&b);
}

int cli_query_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "time", required_argument, 0, 't' },
		{ "range", required_argument, 0, 'r' },
		{ "step", required_argument, 0, 's' },
		{ "json", no_argument, 0, 'j' },
		{ "help", no_argument, 0, 'h' },
		CLI_COMMON_OPTIONS,
		{ 0, 0, 0, 0 },
	};
	struct cli c;
	cli_init(&c, "query");
	const char *when = NULL;
	int64_t range_ms = 0, step_ms = 0;
	bool json = false;
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 't':
			when = optarg;
			break;
		case 'r':
			if (parse_duration_ms(optarg, &range_ms) < 0 || range_ms <= 0) {
				cli_err(&c, "--range \"%s\": expected a duration such as 1h or 30m", optarg);
				return 2;
			}
			break;
		case 's':
			if (parse_duration_ms(optarg, &step_ms) < 0 || step_ms <= 0) {
				cli_err(&c, "--step \"%s\": expected a duration such as 15s or 1m", optarg);
				return 2;
			}
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			if (o >= CLI_OPT_BASE) {
				if (cli_common_opt(&c, o, optarg) < 0)
					return 2;
				break;
			}
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		cli_err(&c, optind == argc ? "no expression given" : "one expression, quoted, please");
		usage(stderr);
		return 2;
	}
	if (step_ms && !range_ms) {
		cli_err(&c, "--step needs --range");
		return 2;
	}
	const char *expr = argv[optind];
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	double now_s = (double)now.tv_sec + (double)(now.tv_nsec / 1000000) / 1000;
	char t[64];
	if (!when)
		snprintf(t, sizeof(t), "%.3f", now_s);
	else if (parse_when(when, now_s, t, sizeof(t)) < 0) {
		cli_err(&c, "--time \"%s\": expected Unix seconds, RFC 3339 or a duration ago (10m)", when);
		return 2;
	}

	struct buf form;
	buf_init(&form, 1u << 20);
	form_add(&form, "query", expr);
	const char *path = "/api/v1/query";
	if (range_ms) {
		char start[64], step[32];
		if (!step_ms) {
			step_ms = range_ms / 120;
			if (step_ms < 1000)
				step_ms = 1000;
		}
		bool numeric = strchr(t, 'T') == NULL;
		if (!numeric) {
			cli_err(&c, "--time with --range takes Unix seconds or a duration ago");
			buf_fini(&form);
			return 2;
		}
		snprintf(start, sizeof(start), "%.3f", atof(t) - (double)range_ms / 1000);
		snprintf(step, sizeof(step), "%.3f", (double)step_ms / 1000);
		form_add(&form, "start", start);
		form_add(&form, "end", t);
		form_add(&form, "step", step);
		path = "/api/v1/query_range";
	} else {
		form_add(&form, "time", t);
	}
	if (form.overflow) {
		cli_err(&c, "the expression is too long");
		buf_fini(&form);
		return 2;
	}
	if (cli_open(&c) < 0) {
		buf_fini(&form);
		return 1;
	}
	struct cli_resp r;
	int rc = cli_post_form(&c, path, form.data, &r);
	buf_fini(&form);
	if (rc < 0) {
		cli_close(&c);
		return 1;
	}
	int status = 1;
	struct json_doc doc = { 0 };
	size_t off;
	if (json_parse(&doc, r.body.data ? r.body.data : "", r.body.len, &off) < 0) {
		cli_err(&c, "the agent at %s answered %s with status %ld and a body that is not JSON: %.80s",
			c.url, path, r.status, r.body.data ? r.body.data : "");
		goto out;
	}
	if (json) {
		fwrite(r.body.data, 1, r.body.len, stdout);
		putchar('\n');
		status = r.status == 200 ? 0 : 1;
		goto out;
	}
	if (r.status != 200) {
		const char *type = json_get_str(doc.root, "errorType");
		if (r.status == 404)
			cli_err(&c, "the agent at %s has no PromQL API (%s answered 404)", c.url, path);
		else
			cli_err(&c, "%s%s%s", type ? type : "", type ? ": " : "",
				cli_api_error(&doc, "the query failed"));
		goto out;
	}
	const struct json *data = json_get(doc.root, "data");
	const char *rt = data ? json_get_str(data, "resultType") : NULL;
	const struct json *result = data ? json_get(data, "result") : NULL;
	if (!rt || !result) {
		cli_err(&c, "the agent's answer has no data.resultType/result");
		goto out;
	}
	if (!strcmp(rt, "vector")) {
		print_vector(result);
	} else if (!strcmp(rt, "matrix")) {
		print_matrix(result);
	} else if (result->child && result->child->next) {
		const struct json *v = result->child->next;
		printf("%s\n", v->string ? v->string : "?");
	}
	status = 0;
out:
	json_doc_free(&doc);
	cli_resp_fini(&r);
	cli_close(&c);
	return status;
}
