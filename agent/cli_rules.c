/*
 * cli_rules.c - `monitor rules check FILE...` and `monitor alerts`.
 *
 *   monitor rules check FILE...   checks rule files as promtool check rules
 *                                 does, without an agent: every problem with
 *                                 its file and line; exit 0 when all are
 *                                 good, 1 when any is not, 2 for bad usage
 *   monitor rules ls [--json]     the agent's rule groups and rules, with
 *                                 their health and last error
 *   monitor alerts [--json]       the agent's firing and pending alerts:
 *                                 name, state, since, value, silenced, labels
 *
 * The check uses the agent's own loader (alerting/rules.c), so a file it
 * passes is a file the agent loads.
 */
#include "agent/cli.h"
#include "alerting/alerting.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: monitor rules check FILE...\n"
		"       monitor rules ls [--json] [flags]\n"
		"check: validates Prometheus-format rule files (YAML, fields, durations,\n"
		"PromQL, label names, templates, duplicate names) and names every problem\n"
		"with its file and line. Exit status 0: all good; 1: a problem.\n"
		"ls: the rules the agent runs, their health and last error.\n"
		CLI_COMMON_USAGE);
}

static int cmd_check(int argc, char **argv)
{
	if (argc < 1) {
		fprintf(stderr, "monitor rules check: give at least one rule file\n");
		usage(stderr);
		return 2;
	}
	int status = 0;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		}
	}
	for (int i = 0; i < argc; i++) {
		struct buf out;
		buf_init(&out, 16u << 20);
		const char *p = argv[i];
		int rc = alert_rules_check(&p, 1, &out);
		printf("Checking %s\n", argv[i]);
		if (rc >= 0) {
			printf("  SUCCESS: %d rule%s found\n", rc, rc == 1 ? "" : "s");
		} else {
			printf("  FAILED: %d problem%s:\n", -rc, rc == -1 ? "" : "s");
			fputs(out.len ? out.data : "", stderr);
			status = 1;
		}
		printf("\n");
		buf_fini(&out);
	}
	return status;
}

static int cmd_ls(struct cli *c, int argc, char **argv)
{
	bool json = false;
	int done;
	if (!cli_json_opts(c, argc, argv, &json, usage, &done))
		return done;
	if (cli_open(c) < 0)
		return 1;
	struct json_doc doc;
	long st = cli_get_json(c, "/api/v1/rules", &doc);
	if (st < 0)
		return 1;
	int status = 1;
	const struct json *groups = json_path(doc.root, "data.groups");
	if (st != 200 || !groups || groups->type != JSON_ARRAY) {
		cli_err(c, "the agent answered %ld: %s", st, cli_api_error(&doc, "no rule groups"));
		goto out;
	}
	if (json) {
		struct buf b;
		buf_init(&b, CLI_BODY_CAP);
		cli_json_write(&b, groups, 0, 1);
		printf("%s\n", b.len ? b.data : "[]");
		buf_fini(&b);
		status = 0;
		goto out;
	}
	struct cli_table t;
	cli_table_init(&t, 7);
	const char *head[] = { "GROUP", "RULE", "TYPE", "STATE", "HEALTH", "ALERTS", "LAST ERROR" };
	cli_table_add(&t, head);
	for (const struct json *g = groups->child; g; g = g->next) {
		const struct json *rules = json_get(g, "rules");
		for (const struct json *r = rules ? rules->child : NULL; r; r = r->next) {
			const struct json *al = json_get(r, "alerts");
			char n[32];
			snprintf(n, sizeof(n), "%zu", al ? al->count : 0);
			bool alerting = !strcmp(cli_str(r, "type"), "alerting");
			const char *row[] = { cli_str(g, "name"), cli_str(r, "name"),
					      alerting ? "alert" : "record",
					      alerting ? cli_str(r, "state") : "-",
					      cli_str(r, "health"), alerting ? n : "-",
					      cli_str(r, "lastError") };
			cli_table_add(&t, row);
		}
	}
	cli_table_print(&t, stdout);
	cli_table_fini(&t);
	const struct json *rl = json_path(doc.root, "data.reload");
	const struct json *ok = rl ? json_get(rl, "success") : NULL;
	if (ok && ok->type == JSON_BOOL && !ok->boolean)
		fprintf(stderr, "monitor rules ls: the last reload (%s) failed; the rules above are "
			"the previous ones:\n%s\n", cli_str(rl, "lastAttempt"), cli_str(rl, "error"));
	status = 0;
out:
	json_doc_free(&doc);
	return status;
}

int cli_rules_main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "check"))
		return cmd_check(argc - 2, argv + 2);
	if (!strcmp(argv[1], "ls")) {
		struct cli c;
		cli_init(&c, "rules ls");
		int rc = cmd_ls(&c, argc - 1, argv + 1);
		cli_close(&c);
		return rc;
	}
	fprintf(stderr, "monitor rules: unknown subcommand \"%s\"\n", argv[1]);
	usage(stderr);
	return 2;
}

/* ---- monitor alerts ---------------------------------------------------------- */

static void alerts_usage(FILE *f)
{
	fprintf(f,
		"usage: monitor alerts [--json] [flags]\n"
		"The agent's firing and pending alerts: name, state, how long, value,\n"
		"whether a silence mutes it, and its labels.\n"
		"      --json          the agent's JSON (GET /api/v1/alerts)\n"
		CLI_COMMON_USAGE);
}

static int state_rank(const char *s)
{
	return !strcmp(s, "firing") ? 0 : !strcmp(s, "pending") ? 1 : 2;
}

static int alert_cmp(const void *a, const void *b)
{
	const struct json *x = *(const struct json *const *)a, *y = *(const struct json *const *)b;
	int d = state_rank(cli_str(x, "state")) - state_rank(cli_str(y, "state"));
	if (d)
		return d;
	d = strcmp(cli_str(json_get(x, "labels"), "alertname"),
		   cli_str(json_get(y, "labels"), "alertname"));
	if (d)
		return d;
	return strcmp(cli_str(x, "activeAt"), cli_str(y, "activeAt"));
}

int cli_alerts_main(int argc, char **argv)
{
	struct cli c;
	cli_init(&c, "alerts");
	bool json = false;
	int status = 1, done;
	if (!cli_json_opts(&c, argc, argv, &json, alerts_usage, &done))
		return done;
	if (optind < argc) {
		cli_err(&c, "unexpected argument \"%s\"", argv[optind]);
		return 2;
	}
	if (cli_open(&c) < 0)
		return 1;
	struct json_doc doc;
	long st = cli_get_json(&c, "/api/v1/alerts", &doc);
	if (st < 0) {
		cli_close(&c);
		return 1;
	}
	const struct json *alerts = json_path(doc.root, "data.alerts");
	const struct json **list = NULL;
	if (st != 200 || !alerts || alerts->type != JSON_ARRAY) {
		cli_err(&c, "the agent answered %ld: %s", st, cli_api_error(&doc, "no alert list"));
		goto out;
	}
	if (json) {
		struct buf b;
		buf_init(&b, CLI_BODY_CAP);
		cli_json_write(&b, alerts, 0, 1);
		printf("%s\n", b.len ? b.data : "[]");
		buf_fini(&b);
		status = 0;
		goto out;
	}
	list = calloc(alerts->count + 1, sizeof(*list));
	if (!list)
		goto out;
	size_t n = 0;
	for (const struct json *a = alerts->child; a; a = a->next)
		list[n++] = a;
	qsort(list, n, sizeof(*list), alert_cmp);
	struct cli_table t;
	cli_table_init(&t, 6);
	const char *head[] = { "ALERT", "STATE", "SINCE", "VALUE", "SILENCED", "LABELS" };
	cli_table_add(&t, head);
	double now = (double)now_ms() / 1000.0;
	for (size_t i = 0; i < n; i++) {
		const struct json *a = list[i], *labels = json_get(a, "labels");
		int64_t at;
		char since[64] = "-", lbl[4096] = "";
		if (alert_time_parse(cli_str(a, "activeAt"), &at) == 0) {
			char d[32];
			cli_short_duration(d, sizeof(d), now - (double)at / 1000.0);
			snprintf(since, sizeof(since), "%s ago", d);
		}
		size_t off = 0;
		for (const struct json *l = labels ? labels->child : NULL; l; l = l->next) {
			if (!strcmp(l->key, "alertname") || l->type != JSON_STRING)
				continue;
			int w = snprintf(lbl + off, sizeof(lbl) - off, "%s%s=%s", off ? "," : "", l->key,
					 l->string);
			if (w < 0 || (size_t)w >= sizeof(lbl) - off)
				break;
			off += (size_t)w;
		}
		const struct json *sil = json_get(a, "silenced");
		const struct json *by = json_get(a, "silencedBy");
		const char *silenced = sil && sil->boolean ? "yes" : "no";
		char sbuf[128];
		if (sil && sil->boolean && by && by->child && by->child->type == JSON_STRING) {
			snprintf(sbuf, sizeof(sbuf), "yes (%.8s)", by->child->string);
			silenced = sbuf;
		}
		const char *row[] = { cli_str(labels, "alertname"), cli_str(a, "state"), since,
				      cli_str(a, "value"), silenced, lbl };
		cli_table_add(&t, row);
	}
	if (n)
		cli_table_print(&t, stdout);
	else
		printf("no alerts are firing or pending\n");
	cli_table_fini(&t);
	/* What remediation did, under the table: too long for a column. */
	for (size_t i = 0; i < n; i++) {
		const struct json *ann = json_get(list[i], "annotations");
		const struct json *note = ann ? json_get(ann, "remediation") : NULL;
		if (!note || note->type != JSON_STRING)
			continue;
		const struct json *labels = json_get(list[i], "labels");
		const char *who = cli_str(labels, "name");
		printf("remediation: %s%s%s: %s\n", cli_str(labels, "alertname"), *who ? " " : "",
		       who, note->string);
	}
	status = 0;
out:
	free(list);
	json_doc_free(&doc);
	cli_close(&c);
	return status;
}
