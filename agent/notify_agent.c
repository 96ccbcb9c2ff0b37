/*
 * notify_agent.c - the notifier as the agent shows it: its metrics on
 * /metrics, GET /api/v1/notifications, POST /api/v1/notifications/test,
 * and the `monitor notify` client.
 *
 * Nothing here sees a secret: the notifier's API JSON leaves out URLs,
 * tokens and signing keys, and vendor answers are redacted before they
 * are kept.
 */
#include "agent/agent.h"
#include "agent/cli.h"
#include "alerting/alerting.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- metrics ------------------------------------------------------------------ */

struct emit_ctx {
	struct coll_sink *sink;
};

static void escape_label(char *out, size_t size, const char *s)
{
	size_t j = 0;
	for (; *s && j + 3 < size; s++) {
		if (*s == '"' || *s == '\\') {
			out[j++] = '\\';
			out[j++] = *s;
		} else if (*s == '\n') {
			out[j++] = '\\';
			out[j++] = 'n';
		} else {
			out[j++] = *s;
		}
	}
	out[j] = '\0';
}

static void emit_count(void *arg, const char *receiver, const char *result, uint64_t count)
{
	struct emit_ctx *x = arg;
	char esc[300], extra[400];
	escape_label(esc, sizeof(esc), receiver);
	snprintf(extra, sizeof(extra), "receiver=\"%s\",result=\"%s\"", esc, result);
	sink_emit(x->sink, M_NOTIFY_TOTAL, extra, (double)count);
}

void agent_notify_metrics(struct notifier *n, struct coll_sink *sink)
{
	if (!n)
		return;
	struct emit_ctx x = { sink };
	notify_each_count(n, emit_count, &x);
	struct notify_stats s;
	notify_get_stats(n, &s);
	sink_emit(sink, M_NOTIFY_QUEUE, NULL, (double)s.queued);
	char le[64];
	for (size_t i = 0; i < NOTIFY_LATENCY_BUCKETS; i++) {
		snprintf(le, sizeof(le), "le=\"%g\"", notify_latency_le[i]);
		sink_emit(sink, M_NOTIFY_LATENCY_BUCKET, le, (double)s.latency_counts[i]);
	}
	sink_emit(sink, M_NOTIFY_LATENCY_BUCKET, "le=\"+Inf\"",
		  (double)s.latency_counts[NOTIFY_LATENCY_BUCKETS]);
	sink_emit(sink, M_NOTIFY_LATENCY_SUM, NULL, s.latency_sum_s);
	sink_emit(sink, M_NOTIFY_LATENCY_COUNT, NULL, (double)s.latency_count);
}

/* ---- HTTP --------------------------------------------------------------------------- */

int api_notifications(struct http_req *req, struct http_resp *resp)
{
	if (!req->st->notifier)
		return http_error(resp, 503, "unavailable",
				  "no notifier: the config has no route: and receivers:");
	size_t limit = 100;
	const char *l = http_query(req, "limit");
	if (l) {
		char *end;
		long v = strtol(l, &end, 10);
		if (end == l || *end || v < 1 || v > 200)
			return http_error(resp, 400, "bad_data", "limit: expected 1 to 200");
		limit = (size_t)v;
	}
	resp->type = "application/json";
	buf_puts(&resp->body, "{\"status\":\"success\",\"data\":");
	notify_api_json(req->st->notifier, limit, &resp->body);
	buf_putc(&resp->body, '}');
	return 200;
}

static const char *refusal(const struct http_req *req)
{
	return admin_refusal(req, "test notifications are disabled: no admin token is configured "
			     "(auth.admin_token_file)",
			     "a test notification needs the admin token: send "
			     "\"Authorization: Bearer <token>\"");
}

int api_notify_test(struct http_req *req, struct http_resp *resp)
{
	const char *why = refusal(req);
	if (why)
		return http_error(resp, req->st->admin_token ? 401 : 403, "unauthorized", why);
	if (!req->st->notifier)
		return http_error(resp, 503, "unavailable",
				  "no notifier: the config has no route: and receivers:");
	const char *rcv = http_query(req, "receiver");
	if (!rcv || !*rcv)
		return http_error(resp, 400, "bad_data", "receiver= is required");
	resp->type = "application/json";
	buf_puts(&resp->body, "{\"status\":\"success\",\"data\":");
	if (notify_test(req->st->notifier, rcv, &resp->body) == -ENOENT) {
		buf_reset(&resp->body);
		char msg[300];
		snprintf(msg, sizeof(msg), "no receiver named \"%.200s\" in the config", rcv);
		return http_error(resp, 404, "not_found", msg);
	}
	buf_putc(&resp->body, '}');
	return 200;
}

/* ---- monitor notify -------------------------------------------------------------------- */

static void notify_usage(FILE *f)
{
	fprintf(f, "usage: monitor notify test RECEIVER [flags]\n"
		   "       monitor notify status [flags]\n"
		   "  test     send a test notification through every integration of RECEIVER\n"
		   "           now and print what each vendor answered (needs the admin token)\n"
		   "  status   receivers, queued notifications and recent deliveries\n"
		   CLI_COMMON_USAGE
		   "  (for notify, --timeout defaults to 2m: a test waits for every integration)\n");
}

static int notify_test_cmd(struct cli *c, const char *receiver)
{
	char esc[1024], path[1200];
	struct buf form;
	buf_init(&form, 4096);
	/* Form-encode the receiver name for the query string. */
	for (const char *p = receiver; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_' || ch == '.')
			buf_putc(&form, (char)ch);
		else
			buf_printf(&form, "%%%02X", ch);
	}
	snprintf(esc, sizeof(esc), "%s", form.data ? form.data : "");
	buf_fini(&form);
	snprintf(path, sizeof(path), "/api/v1/notifications/test?receiver=%s", esc);
	struct cli_resp r;
	if (cli_request(c, "POST", path, "", &r) < 0)
		return 1;
	struct json_doc doc;
	int rc = 1;
	if (!r.body.data || json_parse(&doc, r.body.data, r.body.len, NULL) < 0) {
		cli_err(c, "HTTP %ld: %s", r.status, r.body.data ? r.body.data : "");
		cli_resp_fini(&r);
		return 1;
	}
	if (r.status != 200) {
		cli_err(c, "%s", cli_api_error(&doc, "the agent refused"));
	} else {
		rc = 0;
		const struct json *data = json_get(doc.root, "data");
		for (const struct json *e = data ? data->child : NULL; e; e = e->next) {
			const struct json *st = json_get(e, "status");
			const struct json *ix = json_get(e, "index");
			const char *res = json_get_str(e, "result");
			printf("%s/%s[%d]: %s (HTTP %ld)\n  %s\n", receiver,
			       cli_str(e, "integration"), ix ? (int)ix->number : 0, res ? res : "?",
			       st ? (long)st->number : 0, cli_str(e, "answer"));
			if (!res || strcmp(res, "delivered"))
				rc = 1;
		}
		if (!data || !data->count)
			printf("%s has no integrations\n", receiver);
	}
	json_doc_free(&doc);
	cli_resp_fini(&r);
	return rc;
}

static int notify_status_cmd(struct cli *c)
{
	struct json_doc doc;
	long st = cli_get_json(c, "/api/v1/notifications?limit=20", &doc);
	if (st < 0)
		return 1;
	if (st != 200) {
		cli_err(c, "%s", cli_api_error(&doc, "the agent refused"));
		json_doc_free(&doc);
		return 1;
	}
	struct buf b;
	buf_init(&b, CLI_BODY_CAP);
	cli_json_write(&b, json_get(doc.root, "data"), 2, 0);
	printf("%s\n", b.data ? b.data : "");
	buf_fini(&b);
	json_doc_free(&doc);
	return 0;
}

int cli_notify_main(int argc, char **argv)
{
	static const struct option opts[] = { CLI_COMMON_OPTIONS, { "help", no_argument, 0, 'h' },
					      { 0, 0, 0, 0 } };
	struct cli c;
	cli_init(&c, "notify");
	/* A test waits for every integration of the receiver in turn, each up
	 * to its own timeout (10 s by default): more than one request's worth. */
	c.timeout_ms = 120000;
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (o == 'h') {
			notify_usage(stdout);
			return 0;
		}
		if (o == '?' || cli_common_opt(&c, o, optarg) < 0) {
			notify_usage(stderr);
			return 2;
		}
	}
	int rest = argc - optind;
	const char *sub = rest > 0 ? argv[optind] : NULL;
	if (!sub || (!strcmp(sub, "test") && rest != 2) || (!strcmp(sub, "status") && rest != 1) ||
	    (strcmp(sub, "test") && strcmp(sub, "status"))) {
		notify_usage(stderr);
		return 2;
	}
	if (cli_open(&c) < 0)
		return 1;
	int rc = !strcmp(sub, "test") ? notify_test_cmd(&c, argv[optind + 1]) : notify_status_cmd(&c);
	cli_close(&c);
	return rc;
}
