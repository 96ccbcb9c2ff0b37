/*
 * api_logs.c - the container log endpoints over the log store:
 *
 *   GET /api/v1/logs?container=&since=&until=&level=&stream=&q=&grep=&limit=
 *                    &tail=&after=&before=&follow=
 *   GET /api/v1/logs/patterns?container=&since=&until=&level=&q=&grep=&limit=
 *   GET /api/v1/logs/containers
 *
 * A query answers one JSON document. With follow=1 the answer is a stream
 * (chunked): the lines the query selects, then every new matching line as
 * it is stored, one JSON object a line (application/x-ndjson), or as
 * server-sent events (text/event-stream) when the client asks for them
 * (Accept: text/event-stream or format=sse). The stream runs on the
 * connection's own thread, waking when the store says a line came, and
 * sends a keep-alive every 10 s so that a closed client is noticed.
 */
#include "agent/agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FOLLOW_BATCH 1000
#define KEEPALIVE_MS 10000
#define WAIT_MS 1000
#define LOGS_PATTERNS_MAX 1000

/* RFC 3339 with nanoseconds, UTC. */
static void put_time(struct buf *b, int64_t ns)
{
	time_t s = (time_t)(ns / 1000000000);
	long frac = (long)(ns % 1000000000);
	if (frac < 0) {
		frac += 1000000000;
		s--;
	}
	struct tm tm;
	gmtime_r(&s, &tm);
	char t[64];
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
	buf_printf(b, "\"%s.%09ldZ\"", t, frac);
}

static void put_line(struct buf *b, const struct log_line *l)
{
	buf_printf(b, "{\"seq\":%llu,\"time\":", (unsigned long long)l->seq);
	put_time(b, l->time_ns);
	buf_puts(b, ",\"id\":");
	buf_put_json_str(b, l->id);
	buf_puts(b, ",\"name\":");
	buf_put_json_str(b, l->name ? l->name : "");
	buf_printf(b, ",\"stream\":\"%s\",\"level\":\"%s\",\"message\":",
		   logstore_stream_name(l->stream), logstore_level_name(l->level));
	buf_put_json_str(b, l->msg);
	if (l->flags & LOGSTORE_ESCAPED)
		buf_puts(b, ",\"escaped\":true");
	if (l->flags & LOGSTORE_TRUNCATED)
		buf_puts(b, ",\"truncated\":true");
	if (l->flags & LOGSTORE_PARTIAL)
		buf_puts(b, ",\"partial\":true");
	buf_putc(b, '}');
}

/* Copied query arguments: a stream outlives the request's strings. */
struct qargs {
	struct log_query q;
	char container[256], text[1024], regex[1024];
};

/* Fills a from the request; when logs are off or an argument is bad,
 * writes the error into resp and returns its status, else 0. */
static int parse_args(struct http_req *req, struct http_resp *resp, struct qargs *a)
{
	memset(a, 0, sizeof(*a));
	if (!req->st->logs)
		return http_error(resp, 503, "unavailable", "container logs are off (logs.enabled)");
	int64_t now = now_ms(), ms;
	const char *v;
	if ((v = http_query(req, "container")) && *v) {
		if (strlen(v) >= sizeof(a->container))
			return http_error(resp, 400, "bad_data", "container: too long");
		snprintf(a->container, sizeof(a->container), "%s", v);
		a->q.container = a->container;
	}
	if ((v = http_query(req, "since")) && *v) {
		if (events_parse_since(v, now, &ms) < 0)
			return http_error(resp, 400, "bad_data", "since: expected unix seconds, "
					  "RFC 3339 or a duration such as 10m");
		a->q.since_ns = ms * 1000000;
	}
	if ((v = http_query(req, "until")) && *v) {
		if (events_parse_since(v, now, &ms) < 0)
			return http_error(resp, 400, "bad_data", "until: expected unix seconds, "
					  "RFC 3339 or a duration such as 10m");
		a->q.until_ns = ms * 1000000;
	}
	if ((v = http_query(req, "level")) && *v && logstore_level_mask(v, &a->q.levels) < 0)
		return http_error(resp, 400, "bad_data", "level: expected trace, debug, info, warn, "
				  "error, fatal, unknown, a list (warn,error) or warn+");
	if ((v = http_query(req, "stream")) && *v) {
		if (!strcmp(v, "stdout"))
			a->q.stream = 1 + LOGSTORE_STDOUT;
		else if (!strcmp(v, "stderr"))
			a->q.stream = 1 + LOGSTORE_STDERR;
		else
			return http_error(resp, 400, "bad_data", "stream: expected stdout or stderr");
	}
	if ((v = http_query(req, "q")) && *v) {
		if (strlen(v) >= sizeof(a->text))
			return http_error(resp, 400, "bad_data", "q: too long");
		snprintf(a->text, sizeof(a->text), "%s", v);
		a->q.text = a->text;
	}
	if ((v = http_query(req, "grep")) && *v) {
		if (strlen(v) >= sizeof(a->regex))
			return http_error(resp, 400, "bad_data", "grep: too long");
		snprintf(a->regex, sizeof(a->regex), "%s", v);
		a->q.regex = a->regex;
	}
	if ((v = http_query(req, "icase")) && (!strcmp(v, "1") || !strcmp(v, "true")))
		a->q.icase = true;
	char *end;
	if ((v = http_query(req, "limit")) && *v) {
		unsigned long long n = strtoull(v, &end, 10);
		if (*end || n == 0 || n > 10000)
			return http_error(resp, 400, "bad_data", "limit: expected 1 to 10000");
		a->q.limit = (size_t)n;
	}
	if ((v = http_query(req, "tail")) && *v) {
		unsigned long long n = strtoull(v, &end, 10);
		if (*end || n > 10000)
			return http_error(resp, 400, "bad_data", "tail: expected 0 to 10000 lines");
		a->q.limit = n ? (size_t)n : 1;
		a->q.newest = true;
		if (n == 0) /* only what comes next (follow) */
			a->q.after_seq = logstore_last_seq(req->st->logs);
	}
	if ((v = http_query(req, "after")) && *v) {
		a->q.after_seq = strtoull(v, &end, 10);
		if (*end)
			return http_error(resp, 400, "bad_data", "after: expected a seq");
	}
	if ((v = http_query(req, "before")) && *v) {
		a->q.before_seq = strtoull(v, &end, 10);
		if (*end)
			return http_error(resp, 400, "bad_data", "before: expected a seq");
	}
	return 0;
}

static int query_error(struct http_resp *resp, int rc, const char *err)
{
	if (rc == -ENOENT)
		return http_error(resp, 404, "not_found", err);
	if (rc == -ENOTUNIQ)
		return http_error(resp, 409, "ambiguous", err);
	if (rc == -EINVAL)
		return http_error(resp, 400, "bad_data", err);
	return http_error(resp, 500, "internal", *err ? err : strerror(-rc));
}

/* ---- follow: a streamed answer ------------------------------------------------ */

struct follow {
	struct agent_state *st;
	struct qargs a;
	bool sse;
	bool first;              /* the initial query has not run yet */
	struct buf out;
	size_t sent;
	int64_t last_send_ms;
};

static void follow_free(void *arg)
{
	struct follow *f = arg;
	buf_fini(&f->out);
	free(f);
}

/* Runs the query once more for lines after the last one sent. */
static int follow_fetch(struct follow *f)
{
	struct log_result r;
	char err[512] = "";
	/* Lines up to last are all looked at by this query: the next wait
	 * starts there, so lines of other containers do not wake it again. */
	uint64_t last = logstore_last_seq(f->st->logs);
	int rc = logstore_query(f->st->logs, &f->a.q, &r, err, sizeof(err));
	size_t limit = f->a.q.limit ? f->a.q.limit : 100;
	if (rc == -ENOENT) {         /* the container has no lines yet */
		logstore_result_free(&r);
		if (last > f->a.q.after_seq)
			f->a.q.after_seq = last;
		return 0;
	}
	if (rc < 0) {
		if (f->sse)
			buf_puts(&f->out, "event: error\ndata: ");
		buf_puts(&f->out, "{\"error\":");
		buf_put_json_str(&f->out, err);
		buf_puts(&f->out, f->sse ? "}\n\n" : "}\n");
		logstore_result_free(&r);
		return rc;
	}
	for (size_t i = 0; i < r.n; i++) {
		if (f->sse)
			buf_printf(&f->out, "id: %llu\ndata: ", (unsigned long long)r.lines[i].seq);
		put_line(&f->out, &r.lines[i]);
		buf_puts(&f->out, f->sse ? "\n\n" : "\n");
		if (r.lines[i].seq > f->a.q.after_seq)
			f->a.q.after_seq = r.lines[i].seq;
	}
	if ((f->a.q.newest || (r.n < limit && !r.partial)) && last > f->a.q.after_seq)
		f->a.q.after_seq = last;
	/* A regex scan cut short still moves on: it never rescans forever. */
	if (r.partial && r.n == 0 && last > f->a.q.after_seq)
		f->a.q.after_seq = last;
	logstore_result_free(&r);
	return 0;
}

/* MHD's content reader: blocks on the connection's thread until there is
 * something to send (a line, or a keep-alive). */
static ssize_t follow_read(void *arg, uint64_t pos, char *bufp, size_t max)
{
	struct follow *f = arg;
	while (f->sent >= f->out.len) {
		buf_reset(&f->out);
		f->out.overflow = false;
		f->sent = 0;
		if (f->first) {
			f->first = false;
			if (follow_fetch(f) < 0)
				break;
			/* After the initial lines, only new ones, oldest first. */
			f->a.q.newest = false;
			f->a.q.limit = FOLLOW_BATCH;
			f->a.q.before_seq = 0;
			continue;
		}
		int w = logstore_wait(f->st->logs, f->a.q.after_seq, WAIT_MS);
		if (w < 0)
			return -1; /* MHD_CONTENT_READER_END_OF_STREAM: the agent stops */
		if (w > 0 && follow_fetch(f) < 0)
			break;
		if (f->out.len == 0 && now_ms() - f->last_send_ms >= KEEPALIVE_MS)
			buf_puts(&f->out, f->sse ? ": keep-alive\n\n" : "\n");
	}
	if (f->sent >= f->out.len)
		return -1;
	size_t n = f->out.len - f->sent;
	if (n > max)
		n = max;
	memcpy(bufp, f->out.data + f->sent, n);
	f->sent += n;
	f->last_send_ms = now_ms();
	return (ssize_t)n;
}

static bool want_follow(struct http_req *req)
{
	const char *v = http_query(req, "follow");
	return v && (!strcmp(v, "1") || !strcmp(v, "true"));
}

int api_logs(struct http_req *req, struct http_resp *resp)
{
	struct qargs a;
	int status = parse_args(req, resp, &a);
	if (status)
		return status;
	if (want_follow(req)) {
		struct follow *f = calloc(1, sizeof(*f));
		if (!f)
			return http_error(resp, 500, "internal", "out of memory");
		f->st = req->st;
		f->a = a;
		/* The copied strings, not the request's. */
		f->a.q.container = a.q.container ? f->a.container : NULL;
		f->a.q.text = a.q.text ? f->a.text : NULL;
		f->a.q.regex = a.q.regex ? f->a.regex : NULL;
		const char *fmt = http_query(req, "format");
		const char *acc = http_header(req, "Accept");
		f->sse = (fmt && !strcmp(fmt, "sse")) || (acc && strstr(acc, "text/event-stream"));
		f->first = true;
		f->last_send_ms = now_ms();
		buf_init(&f->out, 64u << 20);
		/* Without an explicit window, follow starts with the last 10 lines,
		 * as `docker logs -f --tail 10`. */
		if (!http_query(req, "tail") && !http_query(req, "after") && !a.q.since_ns) {
			f->a.q.newest = true;
			f->a.q.limit = a.q.limit ? a.q.limit : 10;
		}
		resp->stream = follow_read;
		resp->stream_free = follow_free;
		resp->stream_arg = f;
		resp->type = f->sse ? "text/event-stream" : "application/x-ndjson";
		return 200;
	}
	struct log_result r;
	char err[512] = "";
	uint64_t glast = logstore_last_seq(req->st->logs);
	int rc = logstore_query(req->st->logs, &a.q, &r, err, sizeof(err));
	if (rc < 0) {
		logstore_result_free(&r);
		return query_error(resp, rc, err);
	}
	/* last_seq: where a client polling with after= goes on from. Every
	 * line up to glast was looked at unless the page filled up. */
	size_t limit = a.q.limit ? a.q.limit : 100;
	uint64_t next = r.n ? r.lines[r.n - 1].seq : a.q.after_seq;
	if ((a.q.newest || (r.n < limit && !r.partial)) && glast > next)
		next = glast;
	resp->type = "application/json";
	resp->gzip_ok = true;
	buf_puts(&resp->body, "{\"status\":\"success\",\"data\":{\"lines\":[");
	for (size_t i = 0; i < r.n; i++) {
		if (i)
			buf_putc(&resp->body, ',');
		put_line(&resp->body, &r.lines[i]);
	}
	buf_printf(&resp->body, "],\"partial\":%s,\"last_seq\":%llu}}", r.partial ? "true" : "false",
		   (unsigned long long)next);
	logstore_result_free(&r);
	return 200;
}

int api_logs_patterns(struct http_req *req, struct http_resp *resp)
{
	struct qargs a;
	int status = parse_args(req, resp, &a);
	if (status)
		return status;
	size_t k = a.q.limit ? a.q.limit : 20;
	if (k > LOGS_PATTERNS_MAX)
		k = LOGS_PATTERNS_MAX;
	a.q.limit = 0;
	a.q.newest = false;
	struct log_pattern *p;
	size_t n;
	char err[512] = "";
	int rc = logstore_patterns(req->st->logs, &a.q, k, &p, &n, err, sizeof(err));
	if (rc < 0)
		return query_error(resp, rc, err);
	resp->type = "application/json";
	resp->gzip_ok = true;
	buf_puts(&resp->body, "{\"status\":\"success\",\"data\":[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_putc(&resp->body, ',');
		buf_printf(&resp->body, "{\"count\":%llu,\"template\":",
			   (unsigned long long)p[i].count);
		buf_put_json_str(&resp->body, p[i].template_text ? p[i].template_text : "");
		buf_puts(&resp->body, ",\"example\":");
		buf_put_json_str(&resp->body, p[i].example ? p[i].example : "");
		buf_putc(&resp->body, '}');
	}
	buf_puts(&resp->body, "]}");
	logstore_patterns_free(p, n);
	return 200;
}

int api_logs_containers(struct http_req *req, struct http_resp *resp)
{
	if (!req->st->logs)
		return http_error(resp, 503, "unavailable", "container logs are off (logs.enabled)");
	struct log_container *c;
	size_t n;
	int rc = logstore_containers(req->st->logs, &c, &n);
	if (rc < 0)
		return http_error(resp, 500, "internal", strerror(-rc));
	resp->type = "application/json";
	buf_puts(&resp->body, "{\"status\":\"success\",\"data\":[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_putc(&resp->body, ',');
		buf_puts(&resp->body, "{\"id\":");
		buf_put_json_str(&resp->body, c[i].id);
		buf_puts(&resp->body, ",\"name\":");
		buf_put_json_str(&resp->body, c[i].name);
		buf_printf(&resp->body, ",\"lines\":%llu,\"first\":", (unsigned long long)c[i].lines);
		put_time(&resp->body, c[i].first_ns);
		buf_puts(&resp->body, ",\"last\":");
		put_time(&resp->body, c[i].last_ns);
		buf_putc(&resp->body, '}');
	}
	buf_puts(&resp->body, "]}");
	free(c);
	return 200;
}
