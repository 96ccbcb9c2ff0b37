/*
 * cli.c - what the client subcommands share: the command table, the common
 * flags (--url, --token-file, --timeout and their environment variables),
 * the one HTTP client for the agent's API, the container list with id
 * resolution, a column table and a JSON writer.
 *
 * HTTP goes through libcurl, kept inside this file: it gives the clients
 * IPv6, DNS, https and proxies for a remote --url, bounded timeouts, and an
 * errno for the one failure users meet most (nothing listens), which turns
 * into a message that says what to do.
 */
#include "agent/cli.h"

#ifndef CLI_LITE
#include <curl/curl.h>
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLI_DEFAULT_TIMEOUT_MS 10000
#define CLI_POLL_MS 100

/* monitor-top (-DCLI_LITE) has one command and no table. */
#ifndef CLI_LITE
static const struct cli_command commands[] = {
	{ "ps", cli_ps_main, "list containers with their usage (like docker ps)" },
	{ "stats", cli_stats_main, "live usage of containers (like docker stats)" },
	{ "inspect", cli_inspect_main, "everything the agent knows about containers, as JSON" },
	{ "start", cli_action_main, "start containers (needs the admin token)" },
	{ "stop", cli_action_main, "stop containers (needs the admin token)" },
	{ "restart", cli_action_main, "restart containers (needs the admin token)" },
	{ "pause", cli_action_main, "pause containers (needs the admin token)" },
	{ "unpause", cli_action_main, "unpause containers (needs the admin token)" },
	{ "kill", cli_action_main, "kill containers (needs the admin token)" },
	{ "top", cli_top_main, "live terminal view of all containers (like ctop and htop)" },
	{ "query", cli_query_main, "evaluate PromQL against the agent's store (like promtool query)" },
	{ "logs", cli_logs_main, "a container's stored and live log lines (like docker logs)" },
	{ "notify", cli_notify_main, "send a test notification to a receiver; delivery status" },
	{ "forecast", cli_forecast_main, "when each resource of a container runs out" },
	{ "alerts", cli_alerts_main, "firing and pending alerts (like amtool alert)" },
	{ "rules", cli_rules_main, "check rule files (like promtool check rules), list the agent's rules" },
	{ "silence", cli_silence_main, "add, list and expire alert silences (like amtool silence)" },
};

const struct cli_command *cli_find_command(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(commands); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

void cli_usage_lines(FILE *f)
{
	for (size_t i = 0; i < ARRAY_LEN(commands); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
}
#endif

void cli_err(const struct cli *c, const char *fmt, ...)
{
	va_list ap;
	if (c->err && c->errsize) {
		va_start(ap, fmt);
		vsnprintf(c->err, c->errsize, fmt, ap);
		va_end(ap);
		return;
	}
	fprintf(stderr, "monitor %s: ", c->cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- options -------------------------------------------------------------- */

static int set_url(struct cli *c, const char *url)
{
	const char *scheme = strstr(url, "://") ? "" : "http://";
	size_t n = strlen(scheme) + strlen(url);
	if (!*url || n >= sizeof(c->url)) {
		cli_err(c, "--url \"%.64s\": expected a URL such as %s", url, CLI_DEFAULT_URL);
		return -EINVAL;
	}
	snprintf(c->url, sizeof(c->url), "%s%s", scheme, url);
	while (n > 0 && c->url[n - 1] == '/')
		c->url[--n] = '\0';
	return 0;
}

void cli_init(struct cli *c, const char *cmd)
{
	memset(c, 0, sizeof(*c));
	c->cmd = cmd;
	c->timeout_ms = CLI_DEFAULT_TIMEOUT_MS;
	const char *url = getenv("MONITOR_URL");
	if (!url || !*url || set_url(c, url) < 0)
		snprintf(c->url, sizeof(c->url), "%s", CLI_DEFAULT_URL);
	const char *tok = getenv("MONITOR_TOKEN");
	if (tok)
		snprintf(c->token, sizeof(c->token), "%s", tok);
}

int cli_common_opt(struct cli *c, int code, const char *arg)
{
	switch (code) {
	case CLI_OPT_URL:
		return set_url(c, arg);
	case CLI_OPT_TOKEN_FILE:
		if (strlen(arg) >= sizeof(c->token_file)) {
			cli_err(c, "--token-file: path too long");
			return -EINVAL;
		}
		snprintf(c->token_file, sizeof(c->token_file), "%s", arg);
		return 0;
	case CLI_OPT_TIMEOUT:
		if (parse_duration_ms(arg, &c->timeout_ms) < 0 || c->timeout_ms < 1) {
			cli_err(c, "--timeout %s: expected a duration such as 5s", arg);
			return -EINVAL;
		}
		return 0;
	}
	return -EINVAL;
}

int cli_format_opt(const struct cli *c, const char *arg, bool *json)
{
	if (!strcmp(arg, "json")) {
		*json = true;
		return 0;
	}
	if (strcmp(arg, "table") != 0) {
		cli_err(c, "--format %s: expected table or json", arg);
		return -EINVAL;
	}
	return 0;
}

bool cli_json_opts(struct cli *c, int argc, char **argv, bool *json, void (*usage)(FILE *),
		   int *exit_status)
{
	static const struct option opts[] = {
		{ "help", no_argument, 0, 'h' }, { "json", no_argument, 0, 'j' },
		CLI_COMMON_OPTIONS,              { 0, 0, 0, 0 },
	};
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'h': usage(stdout); *exit_status = 0; return false;
		case 'j': *json = true; break;
		case '?': usage(stderr); *exit_status = 2; return false;
		default:
			if (cli_common_opt(c, ch, optarg) < 0) {
				*exit_status = 2;
				return false;
			}
		}
	}
	return true;
}

/* The token is the file's first line without surrounding white space. */
static int read_token(struct cli *c)
{
	char text[4096];
	ssize_t n = read_file(c->token_file, text, sizeof(text));
	if (n < 0) {
		cli_err(c, "--token-file %s: %s", c->token_file, strerror((int)-n));
		return -1;
	}
	char *p = text;
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	size_t len = strcspn(p, "\r\n");
	while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	if (len == 0) {
		cli_err(c, "--token-file %s: the file is empty", c->token_file);
		return -1;
	}
	snprintf(c->token, sizeof(c->token), "%.*s", (int)len, p);
	return 0;
}

int cli_open(struct cli *c)
{
	if (*c->token_file && read_token(c) < 0)
		return -1;
#ifdef CLI_LITE
	return 0;        /* monitor-top: agent/top_http.c, no libcurl */
#else
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		cli_err(c, "cannot initialise libcurl");
		return -1;
	}
	c->curl = curl_easy_init();
	if (!c->curl) {
		cli_err(c, "cannot initialise libcurl");
		return -1;
	}
	return 0;
#endif
}

void cli_close(struct cli *c)
{
	if (!c || !c->curl)
		return;
#ifndef CLI_LITE
	curl_easy_cleanup(c->curl);
	c->curl = NULL;
	curl_global_cleanup();
#endif
}

/* ---- HTTP ------------------------------------------------------------------ */

void cli_resp_fini(struct cli_resp *r)
{
	if (r)
		buf_fini(&r->body);
}

#ifndef CLI_LITE
static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	buf_add(b, p, size * n);
	return b->overflow ? 0 : size * n;   /* 0 aborts the transfer */
}
#endif

void cli_path_escape(char *out, size_t size, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (; *s && o + 4 < size; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_' || ch == '.' || ch == '~') {
			out[o++] = (char)ch;
		} else {
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
}

static int request(struct cli *c, const char *method, const char *path, const char *body,
		   const char *content_type, struct cli_resp *r);

int cli_request(struct cli *c, const char *method, const char *path, const char *body,
		struct cli_resp *r)
{
	return request(c, method, path, body, "Content-Type: application/json", r);
}

int cli_post_form(struct cli *c, const char *path, const char *form, struct cli_resp *r)
{
	return request(c, "POST", path, form, "Content-Type: application/x-www-form-urlencoded", r);
}

#ifdef CLI_LITE
static int request(struct cli *c, const char *method, const char *path, const char *body,
		   const char *content_type, struct cli_resp *r)
{
	return cli_lite_request(c, method, path, body, content_type, r);
}
#else
static int request(struct cli *c, const char *method, const char *path, const char *body,
		   const char *content_type, struct cli_resp *r)
{
	CURL *h = c->curl;
	char url[2048], err[CURL_ERROR_SIZE] = "";
	snprintf(url, sizeof(url), "%s%s", c->url, path);
	r->status = 0;
	buf_init(&r->body, CLI_BODY_CAP);

	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_ms);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_USERAGENT, "monitor-cli");
	const char *ca = getenv("MONITOR_CACERT"); /* an agent with tls: and its own CA */
	if (ca && *ca)
		curl_easy_setopt(h, CURLOPT_CAINFO, ca);
	struct curl_slist *hdr = curl_slist_append(NULL, "Accept: application/json");
	char auth[4200];
	if (*c->token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
		hdr = curl_slist_append(hdr, auth);
	}
	if (!strcmp(method, "POST")) {
		hdr = curl_slist_append(hdr, content_type);
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);

	CURLcode rc = curl_easy_perform(h);
	long os_errno = 0;
	curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdr);
	if (rc == CURLE_OK)
		return 0;

	char why[CURL_ERROR_SIZE + 64];
	bool hint = true;
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		snprintf(why, sizeof(why), "%s", os_errno == ECONNREFUSED ? "connection refused" :
			 os_errno ? strerror((int)os_errno) : (*err ? err : "cannot connect"));
		break;
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(why, sizeof(why), "no answer within %.3g s (--timeout)",
			 (double)c->timeout_ms / 1000);
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		snprintf(why, sizeof(why), "cannot resolve the host name");
		hint = false;
		break;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		cli_err(c, "--url %s: not a URL the client can use (%s)", c->url,
			*err ? err : curl_easy_strerror(rc));
		buf_fini(&r->body);
		return -1;
	case CURLE_WRITE_ERROR:
		if (r->body.overflow) {
			cli_err(c, "the agent at %s answered %s %s with more than %u MiB; refusing it",
				c->url, method, path, CLI_BODY_CAP >> 20);
			buf_fini(&r->body);
			return -1;
		}
		/* fall through */
	default:
		snprintf(why, sizeof(why), "%s", *err ? err : curl_easy_strerror(rc));
		hint = rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING;
	}
	cli_err(c, "cannot reach the agent at %s: %s%s", c->url, why,
		hint ? " \u2014 is `monitor agent` running?" : "");
	buf_fini(&r->body);
	return -1;
}

#endif

long cli_get_json(struct cli *c, const char *path, struct json_doc *doc)
{
	struct cli_resp r;
	memset(doc, 0, sizeof(*doc));
	if (cli_request(c, "GET", path, NULL, &r) < 0)
		return -1;
	size_t off = 0;
	if (json_parse(doc, r.body.data ? r.body.data : "", r.body.len, &off) < 0) {
		cli_err(c, "the agent at %s answered GET %s with status %ld and a body that is "
			"not JSON (at byte %zu): %.80s", c->url, path, r.status, off,
			r.body.data ? r.body.data : "");
		cli_resp_fini(&r);
		return -1;
	}
	cli_resp_fini(&r);
	return r.status;
}

const char *cli_api_error(const struct json_doc *doc, const char *fallback)
{
	const char *e = doc->root ? json_get_str(doc->root, "error") : NULL;
	return e && *e ? e : fallback;
}

/* ---- the container list ---------------------------------------------------- */

static bool num(const struct json *obj, const char *key, double *out)
{
	const struct json *v = obj ? json_get(obj, key) : NULL;
	if (!v || v->type != JSON_NUMBER)
		return false;
	*out = v->number;
	return true;
}

int cli_list_fetch(struct cli *c, struct cli_list *l)
{
	memset(l, 0, sizeof(*l));
	long st = cli_get_json(c, "/api/v1/containers", &l->doc);
	if (st < 0)
		return -1;
	const struct json *data = json_get(l->doc.root, "data");
	if (st != 200 || !data || data->type != JSON_ARRAY) {
		cli_err(c, "the agent at %s answered GET /api/v1/containers with status %ld: %s",
			c->url, st, cli_api_error(&l->doc, "no container list in the answer"));
		json_doc_free(&l->doc);
		return -1;
	}
	l->data = data;
	num(l->doc.root, "time", &l->time);
	const struct json *m = json_get(l->doc.root, "machine");
	l->have_machine = num(m, "machine_cpu_seconds_total", &l->cpu_seconds) &&
			  num(m, "machine_cpu_cores", &l->cpus);
	if (!num(m, "machine_memory_bytes", &l->memory_bytes))
		l->memory_bytes = 0;
	return 0;
}

void cli_list_free(struct cli_list *l)
{
	if (!l)
		return;
	json_doc_free(&l->doc);
	l->data = NULL;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int cli_list_fetch_next(struct cli *c, const struct cli_list *prev, struct cli_list *l,
			int64_t timeout_ms)
{
	int64_t deadline = mono_ns() + timeout_ms * 1000000;
	for (;;) {
		if (cli_list_fetch(c, l) < 0)
			return -1;
		/* An agent without "time" cannot say; take what it has. */
		if (l->time == 0 || l->time > prev->time)
			return 0;
		if (mono_ns() >= deadline)
			return 1;
		cli_list_free(l);
		sleep_ms(CLI_POLL_MS);
	}
}

const char *cli_str(const struct json *obj, const char *key)
{
	const char *s = obj ? json_get_str(obj, key) : NULL;
	return s ? s : "";
}

bool cli_value(const struct json *ctr, const char *metric, double *out)
{
	return num(json_get(ctr, "values"), metric, out);
}

bool cli_is_up(const struct json *ctr)
{
	const char *s = cli_str(ctr, "state");
	return !*s || !strcmp(s, "running") || !strcmp(s, "paused") || !strcmp(s, "restarting");
}

const struct json *cli_find_id(const struct cli_list *l, const char *id)
{
	for (const struct json *e = l->data ? l->data->child : NULL; e; e = e->next)
		if (!strcmp(cli_str(e, "id"), id))
			return e;
	return NULL;
}

/* cli_resolve; with quiet, a container not found is not reported (*missing
 * is set instead). */
static const struct json *resolve(struct cli *c, const struct cli_list *l, const char *what,
				  bool quiet, bool *missing)
{
	const struct json *by_name = NULL, *prefix = NULL;
	*missing = false;
	size_t n = strlen(what), nprefix = 0;
	if (n == 0) {
		cli_err(c, "an empty container id");
		return NULL;
	}
	for (const struct json *e = l->data->child; e; e = e->next) {
		const char *id = cli_str(e, "id");
		if (!strcmp(id, what))
			return e;
		if (!by_name && !strcmp(cli_str(e, "name"), what))
			by_name = e;
		if (!strncmp(id, what, n)) {
			prefix = e;
			nprefix++;
		}
	}
	if (by_name)
		return by_name;
	if (nprefix == 1)
		return prefix;
	if (nprefix == 0) {
		*missing = true;
		if (quiet)
			return NULL;
		cli_err(c, "no such container: \"%s\" is not the name, id or id prefix of a "
			"container the agent at %s knows", what, c->url);
		return NULL;
	}
	cli_err(c, "\"%s\" is ambiguous: it begins the ids of %zu containers; give more of "
		"the id or a name:", what, nprefix);
	size_t shown = 0;
	for (const struct json *e = l->data->child; e; e = e->next) {
		if (strncmp(cli_str(e, "id"), what, n) != 0)
			continue;
		if (++shown > 20) {
			fprintf(stderr, "  ... and %zu more\n", nprefix - 20);
			break;
		}
		fprintf(stderr, "  %s  %s\n", cli_str(e, "id"), cli_str(e, "name"));
	}
	return NULL;
}

const struct json *cli_resolve(struct cli *c, const struct cli_list *l, const char *what)
{
	bool missing;
	return resolve(c, l, what, false, &missing);
}

const struct json *cli_resolve_wait(struct cli *c, struct cli_list *l, const char *what)
{
	bool missing;
	const struct json *r = resolve(c, l, what, !l->refreshed, &missing);
	if (r || !missing || l->refreshed)
		return r;
	/* Tick by tick: a new container's cgroup and its name (from the
	 * runtime) may arrive in different ticks. */
	int64_t deadline = mono_ns() + (int64_t)CLI_RESOLVE_WAIT_MS * 1000000;
	for (;;) {
		int64_t left_ms = (deadline - mono_ns()) / 1000000;
		struct cli_list next;
		int rc = left_ms > 0 ? cli_list_fetch_next(c, l, &next, left_ms) : 1;
		if (rc < 0)
			return NULL;
		if (left_ms > 0) {
			cli_list_free(l);
			*l = next;
		}
		bool last = rc == 1 || left_ms <= 0;
		l->refreshed = last;
		r = resolve(c, l, what, !last, &missing);
		if (r || !missing || last)
			return r;
	}
}

/* ---- the table --------------------------------------------------------------- */

void cli_table_init(struct cli_table *t, size_t ncols)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols < CLI_TABLE_MAX_COLS ? ncols : CLI_TABLE_MAX_COLS;
}

/* Display width: UTF-8 continuation bytes take no column. */
static size_t width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		w += ((unsigned char)*s & 0xC0) != 0x80;
	return w;
}

int cli_table_add(struct cli_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **p = realloc(t->cells, cap * t->ncols * sizeof(*p));
		if (!p)
			return -ENOMEM;
		t->cells = p;
		t->cap = cap;
	}
	char **row = &t->cells[t->nrows * t->ncols];
	for (size_t i = 0; i < t->ncols; i++) {
		row[i] = strdup(cells[i] ? cells[i] : "");
		if (!row[i]) {
			while (i-- > 0)
				free(row[i]);
			return -ENOMEM;
		}
		size_t w = width(row[i]);
		if (w > t->width[i])
			t->width[i] = w;
	}
	t->nrows++;
	return 0;
}

void cli_table_print(const struct cli_table *t, FILE *f)
{
	for (size_t r = 0; r < t->nrows; r++) {
		char *const *row = &t->cells[r * t->ncols];
		for (size_t i = 0; i < t->ncols; i++) {
			fputs(row[i], f);
			if (i + 1 < t->ncols)
				fprintf(f, "%*s", (int)(t->width[i] - width(row[i]) + 3), "");
		}
		fputc('\n', f);
	}
}

void cli_table_fini(struct cli_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

/* ---- JSON out ------------------------------------------------------------------ */

static void newline(struct buf *b, int indent, int depth)
{
	if (indent < 0)
		return;
	buf_putc(b, '\n');
	for (int i = 0; i < indent * depth; i++)
		buf_putc(b, ' ');
}

static void write_value(struct buf *b, const struct json *v, int indent, int depth)
{
	switch (v->type) {
	case JSON_NULL: buf_puts(b, "null"); return;
	case JSON_BOOL: buf_puts(b, v->boolean ? "true" : "false"); return;
	case JSON_NUMBER: buf_put_double(b, v->number); return;
	case JSON_STRING: buf_put_json_str(b, v->string ? v->string : ""); return;
	case JSON_ARRAY:
	case JSON_OBJECT: break;
	}
	bool obj = v->type == JSON_OBJECT;
	buf_putc(b, obj ? '{' : '[');
	for (const struct json *e = v->child; e; e = e->next) {
		newline(b, indent, depth + 1);
		if (obj) {
			buf_put_json_str(b, e->key ? e->key : "");
			buf_puts(b, indent >= 0 ? ": " : ":");
		}
		write_value(b, e, indent, depth + 1);
		if (e->next)
			buf_putc(b, ',');
	}
	if (v->child)
		newline(b, indent, depth);
	buf_putc(b, obj ? '}' : ']');
}

void cli_json_write(struct buf *b, const struct json *v, int indent, int depth)
{
	write_value(b, v, indent, depth);
}
