/*
 * top_data.c - what `monitor top` fetches beyond the container list: the
 * alerts (GET /api/v1/alerts, Prometheus' shape), the sparkline history
 * (PromQL query_range over the agent's store), container logs
 * (GET /api/v1/logs), and the POSTs behind silencing an alert
 * (/api/v2/silences) and the actions menu (/api/v1/containers/{id}/{action}).
 *
 * An endpoint the agent does not have (an older agent, or one without a
 * feature) answers the router's 404 "not found" or 405: that piece becomes
 * TOP_AV_ABSENT and the view says "not available" instead of failing. The
 * client's error messages go to c->err (the view shows them in its status
 * line), never to the terminal under curses.
 */
#include "agent/top.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- documents ------------------------------------------------------------------- */

void top_doc_free(struct top_doc *d)
{
	if (!d)
		return;
	if (d->av == TOP_AV_OK)
		json_doc_free(&d->doc);
	memset(&d->doc, 0, sizeof(d->doc));
	d->av = TOP_AV_NONE;
}

/* The router's own 404/405 (no such endpoint), not a handler's "no such
 * container". */
static bool route_missing(long status, const struct json_doc *doc)
{
	if (status == 405)
		return true;
	if (status != 404)
		return false;
	const char *e = doc->root ? json_get_str(doc->root, "error") : NULL;
	return !e || !strcmp(e, "not found");
}

enum top_avail top_doc_get(struct cli *c, const char *path, struct top_doc *d)
{
	top_doc_free(d);
	d->msg[0] = '\0';
	long st = cli_get_json(c, path, &d->doc);
	d->status = st;
	if (st < 0) {
		snprintf(d->msg, sizeof(d->msg), "%s", c->err && *c->err ? c->err : "no answer");
		memset(&d->doc, 0, sizeof(d->doc));
		return d->av = TOP_AV_ERROR;
	}
	if (route_missing(st, &d->doc)) {
		char p[128];
		snprintf(p, sizeof(p), "%.*s", (int)strcspn(path, "?"), path);
		snprintf(d->msg, sizeof(d->msg), "not available: the agent has no %.100s", p);
		json_doc_free(&d->doc);
		return d->av = TOP_AV_ABSENT;
	}
	if (st != 200) {
		snprintf(d->msg, sizeof(d->msg), "%ld: %.200s", st,
			 cli_api_error(&d->doc, "the agent said no"));
		json_doc_free(&d->doc);
		return d->av = TOP_AV_ERROR;
	}
	return d->av = TOP_AV_OK;
}

/* ---- alerts ---------------------------------------------------------------------- */

static double parse_time(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
		return 0;
	return (double)timegm(&tm);
}

bool top_parse_alert(const struct json *j, struct top_alert *a)
{
	memset(a, 0, sizeof(*a));
	const struct json *labels = json_get(j, "labels");
	if (!labels || labels->type != JSON_OBJECT)
		return false;
	snprintf(a->alertname, sizeof(a->alertname), "%s", cli_str(labels, "alertname"));
	snprintf(a->id, sizeof(a->id), "%s", cli_str(labels, "id"));
	const char *name = cli_str(labels, "name");
	if (!*name)
		name = cli_str(labels, "container");
	snprintf(a->name, sizeof(a->name), "%s", name);
	snprintf(a->severity, sizeof(a->severity), "%s", cli_str(labels, "severity"));
	const struct json *ann = json_get(j, "annotations");
	const char *sum = cli_str(ann, "summary");
	if (!*sum)
		sum = cli_str(ann, "description");
	snprintf(a->summary, sizeof(a->summary), "%s", sum);
	a->active_at = parse_time(json_get_str(j, "activeAt"));
	if (!a->active_at)
		a->active_at = parse_time(json_get_str(j, "startsAt"));

	const char *state = cli_str(j, "state");
	const struct json *status = json_get(j, "status");
	if (!*state && status && status->type == JSON_OBJECT)
		state = cli_str(status, "state");     /* Alertmanager's shape */
	else if (!*state && status && status->type == JSON_STRING)
		state = status->string;
	if (!strcmp(state, "firing") || !strcmp(state, "active"))
		a->state = TOP_ALERT_FIRING;
	else if (!strcmp(state, "pending"))
		a->state = TOP_ALERT_PENDING;
	else if (!strcmp(state, "silenced") || !strcmp(state, "suppressed"))
		a->state = TOP_ALERT_SILENCED;
	else
		return false;      /* inactive, resolved */
	/* Silenced but still evaluated: a flag or the ids of the silences. */
	const struct json *sil = json_get(j, "silenced");
	const struct json *by = json_get(j, "silencedBy");
	if (!by && status && status->type == JSON_OBJECT)
		by = json_get(status, "silencedBy");
	if ((sil && sil->type == JSON_BOOL && sil->boolean) ||
	    (by && by->type == JSON_ARRAY && by->count > 0))
		a->state = TOP_ALERT_SILENCED;
	return true;
}

int top_fetch_alerts(struct cli *c, struct top_model *m)
{
	struct top_doc d = { 0 };
	enum top_avail av = top_doc_get(c, "/api/v1/alerts", &d);
	if (av != TOP_AV_OK) {
		if (av == TOP_AV_ABSENT)
			top_model_set_alerts(m, NULL, 0, false);
		top_doc_free(&d);
		return av == TOP_AV_ABSENT ? -ENOENT : -EIO;
	}
	const struct json *data = json_get(d.doc.root, "data");
	const struct json *list = data && data->type == JSON_OBJECT ? json_get(data, "alerts") : data;
	size_t n = list && list->type == JSON_ARRAY ? list->count : 0;
	if (n > TOP_ALERTS_MAX)
		n = TOP_ALERTS_MAX;
	struct top_alert *a = n ? calloc(n, sizeof(*a)) : NULL;
	size_t k = 0;
	for (const struct json *e = n ? list->child : NULL; e && a && k < n; e = e->next)
		if (top_parse_alert(e, &a[k]))
			k++;
	top_model_set_alerts(m, a, k, true);
	top_doc_free(&d);
	return 0;
}

/* ---- history --------------------------------------------------------------------- */

const char *const top_hist_names[TOP_H__COUNT] = { "CPU %", "MEM", "NET RX/s", "NET TX/s",
						   "IO R/s", "IO W/s" };

/* The PromQL of each series for a container id (its label value escaped).
 * The rate window spans a few of the agent's ticks, whatever the step. */
static void hist_query(enum top_hist h, const char *id, char *out, size_t size)
{
	static const char *const metric[TOP_H__COUNT] = {
		[TOP_H_CPU] = "container_cpu_usage_seconds_total",
		[TOP_H_MEM] = "container_memory_working_set_bytes",
		[TOP_H_NET_RX] = "container_network_receive_bytes_total",
		[TOP_H_NET_TX] = "container_network_transmit_bytes_total",
		[TOP_H_IO_R] = "container_fs_reads_bytes_total",
		[TOP_H_IO_W] = "container_fs_writes_bytes_total",
	};
	char esc[160];
	size_t o = 0;
	for (const char *p = id; *p && o + 3 < sizeof(esc); p++) {
		if (*p == '"' || *p == '\\')
			esc[o++] = '\\';
		esc[o++] = *p;
	}
	esc[o] = '\0';
	if (h == TOP_H_MEM)
		snprintf(out, size, "sum(%s{id=\"%s\"})", metric[h], esc);
	else
		snprintf(out, size, "sum(rate(%s{id=\"%s\"}[20s]))%s", metric[h], esc,
			 h == TOP_H_CPU ? " * 100" : "");
}

void top_history_fill(const struct json *result, double start, double step_s, double *v,
		      size_t n)
{
	for (size_t i = 0; i < n; i++)
		v[i] = NAN;
	const struct json *series = result && result->type == JSON_ARRAY ? result->child : NULL;
	const struct json *values = series ? json_get(series, "values") : NULL;
	if (!values || values->type != JSON_ARRAY || step_s <= 0)
		return;
	for (const struct json *p = values->child; p; p = p->next) {
		if (p->type != JSON_ARRAY || p->count != 2 || p->child->type != JSON_NUMBER ||
		    p->child->next->type != JSON_STRING)
			continue;
		double t = p->child->number;
		double x = strtod(p->child->next->string, NULL);
		double k = floor((t - start) / step_s + 0.5);
		if (k >= 0 && k < (double)n)
			v[(size_t)k] = x;
	}
}

int top_fetch_history(struct cli *c, const char *id, double now, double range_s,
		      struct top_history *h)
{
	h->step_s = range_s / TOP_HIST_POINTS;
	if (h->step_s < 1)
		h->step_s = 1;
	h->n = (size_t)(range_s / h->step_s);
	if (h->n > TOP_HIST_POINTS)
		h->n = TOP_HIST_POINTS;
	h->start = floor(now / h->step_s) * h->step_s - (double)(h->n - 1) * h->step_s;
	h->msg[0] = '\0';
	for (int k = 0; k < TOP_H__COUNT; k++) {
		char q[512], esc[1536], path[2048];
		hist_query((enum top_hist)k, id, q, sizeof(q));
		cli_path_escape(esc, sizeof(esc), q);
		snprintf(path, sizeof(path), "/api/v1/query_range?query=%s&start=%.3f&end=%.3f&step=%g",
			 esc, h->start, h->start + (double)(h->n - 1) * h->step_s, h->step_s);
		struct top_doc d = { 0 };
		enum top_avail av = top_doc_get(c, path, &d);
		if (av != TOP_AV_OK) {
			h->av = av;
			snprintf(h->msg, sizeof(h->msg), "%s", d.msg);
			top_doc_free(&d);
			return -EIO;
		}
		top_history_fill(json_path(d.doc.root, "data.result"), h->start, h->step_s, h->v[k],
				 h->n);
		top_doc_free(&d);
	}
	h->av = TOP_AV_OK;
	return 0;
}

/* ---- logs -------------------------------------------------------------------------- */

void top_logs_fini(struct top_logs *l)
{
	if (!l)
		return;
	if (l->ring)
		for (size_t i = 0; i < TOP_LOG_LINES; i++)
			free(l->ring[i].text);
	free(l->ring);
	memset(l, 0, sizeof(*l));
}

void top_logs_reset(struct top_logs *l, const char *id)
{
	top_logs_fini(l);
	snprintf(l->id, sizeof(l->id), "%s", id);
}

const struct top_log_line *top_logs_line(const struct top_logs *l, size_t i)
{
	size_t first = (l->head + TOP_LOG_LINES - l->n) % TOP_LOG_LINES;
	return &l->ring[(first + i) % TOP_LOG_LINES];
}

void top_logs_push(struct top_logs *l, double time, const char *stream, const char *level,
		   const char *text)
{
	if (!l->ring && !(l->ring = calloc(TOP_LOG_LINES, sizeof(*l->ring))))
		return;
	struct top_log_line *e = &l->ring[l->head];
	free(e->text);
	e->text = strndup(text, TOP_LOG_LINE_BYTES);
	e->time = time;
	snprintf(e->stream, sizeof(e->stream), "%s", stream);
	snprintf(e->level, sizeof(e->level), "%s", level);
	l->head = (l->head + 1) % TOP_LOG_LINES;
	if (l->n < TOP_LOG_LINES)
		l->n++;
	if (time > l->cursor) {
		l->cursor = time;
		l->cursor_dups = 1;
	} else if (time == l->cursor) {
		l->cursor_dups++;
	}
}

/* A log entry's time: a number (unix s or ms), or RFC 3339 text. */
static double entry_time(const struct json *e)
{
	static const char *const keys[] = { "time", "ts", "timestamp" };
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		const struct json *t = json_get(e, keys[i]);
		if (!t)
			continue;
		if (t->type == JSON_NUMBER)
			return t->number > 1e11 ? t->number / 1000.0 : t->number;
		if (t->type == JSON_STRING) {
			double s = parse_time(t->string);
			const char *frac = strchr(t->string, '.');
			if (s && frac)
				s += strtod(frac, NULL);
			return s;
		}
	}
	return 0;
}

static const char *entry_text(const struct json *e)
{
	static const char *const keys[] = { "line", "message", "msg", "text", "log" };
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		const char *s = json_get_str(e, keys[i]);
		if (s)
			return s;
	}
	return NULL;
}

int top_fetch_logs(struct cli *c, struct top_logs *l, size_t tail)
{
	char esc[256], path[512];
	cli_path_escape(esc, sizeof(esc), l->id);
	if (l->have_seq)
		snprintf(path, sizeof(path), "/api/v1/logs?container=%s&after=%llu&limit=%d", esc,
			 l->last_seq, TOP_LOG_LINES);
	else if (l->cursor > 0)
		snprintf(path, sizeof(path), "/api/v1/logs?container=%s&since=%.6f&limit=%d", esc,
			 l->cursor, TOP_LOG_LINES);
	else
		snprintf(path, sizeof(path), "/api/v1/logs?container=%s&tail=%zu", esc, tail);
	struct top_doc d = { 0 };
	enum top_avail av = top_doc_get(c, path, &d);
	l->av = av;
	if (av != TOP_AV_OK) {
		snprintf(l->msg, sizeof(l->msg), "%s", d.msg);
		top_doc_free(&d);
		return av == TOP_AV_ABSENT ? -ENOENT : -EIO;
	}
	const struct json *data = json_get(d.doc.root, "data");
	const struct json *list = data;
	if (data && data->type == JSON_OBJECT) {
		list = json_get(data, "lines");
		if (!list)
			list = json_get(data, "logs");
		if (!list)
			list = json_get(data, "result");
	}
	if (!list || list->type != JSON_ARRAY) {
		snprintf(l->msg, sizeof(l->msg), "the agent's log answer has no list of lines");
		l->av = TOP_AV_ERROR;
		top_doc_free(&d);
		return -EINVAL;
	}
	/* after= gives only new lines; since= is inclusive of the cursor's
	 * time: skip what is held already. */
	bool by_seq = l->have_seq;
	double cursor = by_seq ? 0 : l->cursor;
	size_t skip = by_seq ? 0 : l->cursor_dups;
	const struct json *seq = data && data->type == JSON_OBJECT ? json_get(data, "last_seq") : NULL;
	for (const struct json *e = list->child; e; e = e->next) {
		const char *text = e->type == JSON_STRING ? e->string : entry_text(e);
		if (!text)
			continue;
		double t = e->type == JSON_OBJECT ? entry_time(e) : 0;
		if (cursor > 0 && t > 0 && t < cursor)
			continue;
		if (cursor > 0 && t == cursor && skip > 0) {
			skip--;
			continue;
		}
		top_logs_push(l, t, e->type == JSON_OBJECT ? cli_str(e, "stream") : "",
			      e->type == JSON_OBJECT ? cli_str(e, "level") : "", text);
	}
	if (seq && seq->type == JSON_NUMBER && seq->number >= 0) {
		l->last_seq = (unsigned long long)seq->number;
		l->have_seq = true;
	}
	l->msg[0] = '\0';
	top_doc_free(&d);
	return 0;
}

/* ---- changes: silences, actions ------------------------------------------------------ */

/* The agent's error text of a response body, or a fallback. */
static void answer_text(const struct cli_resp *r, char *msg, size_t size, const char *what)
{
	struct json_doc doc;
	const char *e = NULL;
	if (r->body.data && json_parse(&doc, r->body.data, r->body.len, NULL) == 0) {
		e = json_get_str(doc.root, "error");
		snprintf(msg, size, "%s: %ld %s", what, r->status, e ? e : "");
		json_doc_free(&doc);
		return;
	}
	snprintf(msg, size, "%s: %ld %.120s", what, r->status, r->body.data ? r->body.data : "");
}

static void put_matcher(struct buf *b, const char *name, const char *value, bool comma)
{
	buf_puts(b, comma ? ",{\"name\":" : "{\"name\":");
	buf_put_json_str(b, name);
	buf_puts(b, ",\"value\":");
	buf_put_json_str(b, value);
	buf_puts(b, ",\"isRegex\":false,\"isEqual\":true}");
}

int top_silence(struct cli *c, const struct top_alert *a, const char *duration, char *msg,
		size_t size)
{
	struct buf b;
	buf_init(&b, 1 << 16);
	buf_puts(&b, "{\"matchers\":[");
	put_matcher(&b, "alertname", a->alertname, false);
	if (*a->id)
		put_matcher(&b, "id", a->id, true);
	else if (*a->name)
		put_matcher(&b, "name", a->name, true);
	buf_puts(&b, "],\"duration\":");
	buf_put_json_str(&b, duration);
	const char *user = getenv("USER");
	buf_puts(&b, ",\"createdBy\":");
	buf_put_json_str(&b, user && *user ? user : "monitor top");
	buf_puts(&b, ",\"comment\":\"silenced from monitor top\"}");
	struct cli_resp r;
	int rc = -1;
	if (cli_request(c, "POST", "/api/v2/silences", b.data, &r) < 0) {
		snprintf(msg, size, "silence: %s", c->err && *c->err ? c->err : "no answer");
	} else {
		if (r.status == 200) {
			snprintf(msg, size, "silenced %s for %s", a->alertname, duration);
			rc = 0;
		} else if (r.status == 404 || r.status == 405) {
			snprintf(msg, size, "silences are not available: the agent has no /api/v2/silences");
		} else {
			answer_text(&r, msg, size, "silence refused");
		}
		cli_resp_fini(&r);
	}
	buf_fini(&b);
	return rc;
}

int top_action(struct cli *c, const char *id, const char *action, char *msg, size_t size)
{
	char esc[256], path[512];
	cli_path_escape(esc, sizeof(esc), id);
	snprintf(path, sizeof(path), "/api/v1/containers/%s/%s", esc, action);
	struct cli_resp r;
	/* A stop waits for the container's grace period: longer than a refresh. */
	int64_t timeout = c->timeout_ms;
	if (c->timeout_ms < 60000)
		c->timeout_ms = 60000;
	int sent = cli_request(c, "POST", path, NULL, &r);
	c->timeout_ms = timeout;
	if (sent < 0) {
		snprintf(msg, size, "%s: %s", action, c->err && *c->err ? c->err : "no answer");
		return -1;
	}
	int rc = -1;
	if (r.status >= 200 && r.status < 300) {
		snprintf(msg, size, "%s: done", action);
		rc = 0;
	} else {
		answer_text(&r, msg, size, action);
	}
	cli_resp_fini(&r);
	return rc;
}
