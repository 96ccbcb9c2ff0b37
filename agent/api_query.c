/*
 * api_query.c - the Prometheus HTTP API over the agent's store:
 * /api/v1/query, query_range, series, labels, label/<name>/values,
 * metadata, query_exemplars and status/buildinfo, with Prometheus' JSON
 * shapes, parameter handling and error types, so Grafana's Prometheus data
 * source and other Prometheus clients can use the agent directly.
 *
 * Parameters come from the form-encoded body of a POST and from the query
 * string, the body first (as Go's Request.FormValue). Queries run on the
 * connection's own thread, bounded by query.timeout and query.max_samples;
 * one slow query never holds up another request.
 */
#include "agent/agent.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API_MAX_PARAMS 4096
#define API_MAX_MATCH 256
/* Prometheus refuses range queries with more points per series. */
#define API_MAX_POINTS 11000
#define API_MIN_TIME_MS (INT64_MIN / 4)
#define API_MAX_TIME_MS (INT64_MAX / 4)

/* ---- parameters ------------------------------------------------------------ */

struct params {
	size_t n;
	struct param {
		char *key, *value;
	} p[API_MAX_PARAMS];
	struct arena a;
};

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes n bytes of application/x-www-form-urlencoded text into the arena. */
static char *form_decode(struct arena *a, const char *s, size_t n)
{
	char *out = arena_alloc(a, n + 1), *d = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			*d++ = ' ';
		} else if (s[i] == '%' && i + 2 < n && hexval((unsigned char)s[i + 1]) >= 0 &&
			   hexval((unsigned char)s[i + 2]) >= 0) {
			*d++ = (char)(hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2]));
			i += 2;
		} else {
			*d++ = s[i];
		}
	}
	*d = '\0';
	return out;
}

static void params_add(struct params *ps, char *k, char *v)
{
	if (ps->n < API_MAX_PARAMS && k && v)
		ps->p[ps->n++] = (struct param){ k, v };
}

static enum MHD_Result on_arg(void *cls, enum MHD_ValueKind kind, const char *key,
			      const char *value)
{
	struct params *ps = cls;
	params_add(ps, arena_strdup(&ps->a, key), arena_strdup(&ps->a, value ? value : ""));
	return MHD_YES;
}

/* Gathers the body's form fields (POST) and then the URL's arguments. */
static struct params *params_get(struct http_req *req)
{
	struct params *ps = calloc(1, sizeof(*ps));
	if (!ps)
		return NULL;
	const char *ct = http_header(req, "Content-Type");
	if (!strcmp(req->method, "POST") && req->body_len &&
	    (!ct || !strncasecmp(ct, "application/x-www-form-urlencoded", 33))) {
		const char *s = req->body, *end = req->body + req->body_len;
		while (s < end) {
			const char *amp = memchr(s, '&', (size_t)(end - s));
			const char *fe = amp ? amp : end;
			const char *eq = memchr(s, '=', (size_t)(fe - s));
			if (fe > s) {
				const char *ke = eq ? eq : fe;
				params_add(ps, form_decode(&ps->a, s, (size_t)(ke - s)),
					   eq ? form_decode(&ps->a, eq + 1, (size_t)(fe - eq - 1))
					      : form_decode(&ps->a, "", 0));
			}
			s = fe + 1;
		}
	}
	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, on_arg, ps);
	return ps;
}

static void params_free(struct params *ps)
{
	if (!ps)
		return;
	arena_free(&ps->a);
	free(ps);
}

static const char *param(const struct params *ps, const char *key)
{
	for (size_t i = 0; i < ps->n; i++)
		if (!strcmp(ps->p[i].key, key))
			return ps->p[i].value;
	return NULL;
}

/* ---- errors and common parsing -------------------------------------------------- */

static int bad_param(struct http_resp *resp, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad_param(struct http_resp *resp, const char *name, const char *fmt, ...)
{
	char msg[1024], full[1200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "invalid parameter \"%s\": %s", name, msg);
	return http_error(resp, 400, "bad_data", full);
}

/* A time parameter: absent gives def; returns 0 or an HTTP status. */
static int time_param(const struct params *ps, const char *name, int64_t def, int64_t *out,
		      struct http_resp *resp)
{
	const char *s = param(ps, name);
	if (!s || !*s) {
		*out = def;
		return 0;
	}
	if (promql_parse_time(s, out) < 0)
		return bad_param(resp, name,
				 "Invalid time value for '%s': cannot parse \"%s\" to a valid timestamp",
				 name, s);
	return 0;
}

static struct store *need_store(struct http_req *req, struct http_resp *resp, int *status)
{
	struct store *st = req->st->store;
	if (!st)
		*status = http_error(resp, 503, "unavailable",
				     "the time-series store is off (storage.enabled: false)");
	return st;
}

/* The engine's limits for this request: the configured ones, with a
 * shorter timeout when the request asks for one. */
static int query_opts(const struct http_req *req, const struct params *ps, struct promql_opts *o,
		      struct http_resp *resp)
{
	if (req->st->query)
		*o = *req->st->query;
	else
		promql_opts_defaults(o);
	const char *t = param(ps, "timeout");
	if (t && *t) {
		int64_t ms;
		if (promql_parse_duration(t, true, &ms) < 0 || ms <= 0)
			return bad_param(resp, "timeout", "cannot parse \"%s\" to a valid duration", t);
		if (o->timeout_ms <= 0 || ms < o->timeout_ms)
			o->timeout_ms = ms;
	}
	return 0;
}

/* ---- JSON ------------------------------------------------------------------------- */

static void put_labels(struct buf *b, const struct promql_label *l, size_t n)
{
	buf_putc(b, '{');
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_putc(b, ',');
		buf_put_json_str(b, l[i].name);
		buf_putc(b, ':');
		buf_put_json_str(b, l[i].value);
	}
	buf_putc(b, '}');
}

/*
 * The points of a range answer share the grid's timestamps: each is
 * formatted once and remembered in a small direct-mapped cache, as the
 * formatting is most of what a large answer costs.
 */
#define TCACHE_SLOTS 4096
struct tcache {
	int64_t t[TCACHE_SLOTS];
	uint8_t len[TCACHE_SLOTS];   /* 0: empty */
	char s[TCACHE_SLOTS][24];
};

static void put_point(struct buf *b, struct tcache *tc, int64_t t, double v)
{
	if (buf_reserve(b, 512) < 0)
		return;
	b->data[b->len++] = '[';
	size_t slot = (size_t)(((uint64_t)t * 0x9E3779B97F4A7C15ULL) >> 52) % TCACHE_SLOTS;
	if (tc && tc->len[slot] && tc->t[slot] == t) {
		memcpy(b->data + b->len, tc->s[slot], tc->len[slot]);
		b->len += tc->len[slot];
	} else {
		size_t at = b->len;
		promql_format_time(b, t);
		if (tc && b->len - at < sizeof(tc->s[0])) {
			tc->t[slot] = t;
			tc->len[slot] = (uint8_t)(b->len - at);
			memcpy(tc->s[slot], b->data + at, b->len - at);
		}
	}
	b->data[b->len++] = ',';
	b->data[b->len++] = '"';
	promql_format_value(b, v);
	b->data[b->len++] = '"';
	b->data[b->len++] = ']';
	b->data[b->len] = '\0';
}

/* Writes series [from, to) of a vector or matrix answer, comma-separated;
 * tc (may be NULL) caches formatted timestamps. */
static void put_series(struct buf *b, const struct promql_result *r, size_t from, size_t to,
		       struct tcache *tc)
{
	for (size_t i = from; i < to; i++) {
		const struct promql_result_series *s = &r->series[i];
		if (i > from)
			buf_putc(b, ',');
		buf_puts(b, "{\"metric\":");
		put_labels(b, s->labels, s->nlabels);
		if (r->type == PROMQL_VECTOR) {
			buf_puts(b, ",\"value\":");
			put_point(b, NULL, s->points[0].t, s->points[0].v);
		} else {
			buf_puts(b, ",\"values\":[");
			for (size_t j = 0; j < s->npoints; j++) {
				if (j)
					buf_putc(b, ',');
				put_point(b, tc, s->points[j].t, s->points[j].v);
			}
			buf_putc(b, ']');
		}
		buf_putc(b, '}');
	}
}

/*
 * A large matrix (a dashboard's range query: hundreds of thousands of
 * points, formatting them most of what the answer costs after evaluation)
 * is written in two halves at once: a helper thread writes the second half
 * of the series into its own buffer while this thread writes the first,
 * then the second is appended. The bytes are the same as one thread's.
 */
#define JSON_SPLIT_POINTS 50000

struct json_half {
	const struct promql_result *r;
	size_t from, to;
	struct buf b;
	struct tcache *tc;
};

static void *json_half_main(void *arg)
{
	struct json_half *h = arg;
	put_series(&h->b, h->r, h->from, h->to, h->tc);
	return NULL;
}

/* Writes every series; points is their total. */
static void put_all_series(struct buf *b, const struct promql_result *r, size_t points)
{
	bool matrix = r->type == PROMQL_MATRIX;
	struct tcache *tc = matrix && points > 64 ? calloc(1, sizeof(*tc)) : NULL;
	struct json_half h = { .r = r, .to = r->nseries };
	pthread_t th;
	bool split = false;
	if (matrix && points >= JSON_SPLIT_POINTS && r->nseries >= 2) {
		/* the series where half of the points are behind */
		size_t acc = 0;
		for (h.from = 0; h.from < r->nseries - 1 && acc < points / 2; h.from++)
			acc += r->series[h.from].npoints;
		buf_init(&h.b, b->cap);
		h.tc = calloc(1, sizeof(*h.tc));
		split = h.tc && buf_reserve(&h.b, (points - acc) * 36 + 64) == 0 &&
			pthread_create(&th, NULL, json_half_main, &h) == 0;
	}
	put_series(b, r, 0, split ? h.from : r->nseries, tc);
	if (split) {
		pthread_join(th, NULL);
		buf_putc(b, ',');
		if (h.b.overflow)
			b->overflow = true;  /* as if one buffer had overflowed */
		else
			buf_add(b, h.b.data, h.b.len);
	}
	buf_fini(&h.b);
	free(h.tc);
	free(tc);
}

/* Writes the "data" object of a query answer. */
void api_query_result_json(const struct promql_result *r, struct buf *b);
void api_query_result_json(const struct promql_result *r, struct buf *b)
{
	buf_puts(b, "{\"resultType\":");
	buf_put_json_str(b, promql_value_type_name(r->type));
	buf_puts(b, ",\"result\":");
	/* One reservation for the likely size instead of doubling copies. */
	size_t points = 0;
	for (size_t i = 0; i < r->nseries; i++)
		points += r->series[i].npoints;
	buf_reserve(b, points * 36 + r->nseries * 160 + 64);
	switch (r->type) {
	case PROMQL_SCALAR:
		put_point(b, NULL, r->t, r->scalar);
		break;
	case PROMQL_STRING:
		buf_putc(b, '[');
		promql_format_time(b, r->t);
		buf_putc(b, ',');
		buf_put_json_str(b, r->string);
		buf_putc(b, ']');
		break;
	default:
		buf_putc(b, '[');
		put_all_series(b, r, points);
		buf_putc(b, ']');
	}
	buf_putc(b, '}');
}

/*
 * With stats=all (or any value) the answer carries Prometheus' "stats"
 * inside "data": timings in seconds (preparation is parsing, evaluation is
 * the engine's own time) and the samples the query read. Called right after
 * api_query_result_json wrote data's closing brace, which it reopens.
 */
static void put_stats(struct buf *b, const struct params *ps, int64_t t0, int64_t t1,
		      int64_t t2, const struct promql_result *r)
{
	const char *st = param(ps, "stats");
	if (!st || !*st || b->len == 0 || b->data[b->len - 1] != '}')
		return;
	double prep = (double)(t1 - t0) / 1e9, eval = (double)(t2 - t1) / 1e9;
	b->len--;
	buf_printf(b, ",\"stats\":{\"timings\":{\"evalTotalTime\":%.9f,\"resultSortTime\":0,"
		      "\"queryPreparationTime\":%.9f,\"innerEvalTime\":%.9f,\"execQueueTime\":0,"
		      "\"execTotalTime\":%.9f},\"samples\":{\"totalQueryableSamples\":%llu,"
		      "\"peakSamples\":%llu}}}",
		   eval, prep, eval, prep + eval, (unsigned long long)r->samples,
		   (unsigned long long)r->samples);
}

static int eval_error(struct http_resp *resp, const struct promql_error *err)
{
	return http_error(resp, promql_errtype_status(err->type), promql_errtype_name(err->type),
			  err->msg);
}

/* The success answer of query and query_range, with stats when asked;
 * frees r. t0: request start, t1: evaluation start. */
static int write_result(struct http_resp *resp, struct params *ps, int64_t t0, int64_t t1,
			struct promql_result *r)
{
	int64_t t2 = mono_ns();
	resp->type = "application/json";
	resp->gzip_ok = true;   /* as Prometheus: compressed when the client accepts it */
	buf_puts(&resp->body, "{\"status\":\"success\",\"data\":");
	api_query_result_json(r, &resp->body);
	put_stats(&resp->body, ps, t0, t1, t2, r);
	buf_putc(&resp->body, '}');
	promql_result_fini(r);
	return 200;
}

static int parse_query(const struct params *ps, struct promql_expr **e, struct http_resp *resp)
{
	const char *q = param(ps, "query");
	char err[1024];
	if (promql_parse(q ? q : "", e, err, sizeof(err)) < 0)
		return bad_param(resp, "query", "%s", err);
	return 0;
}

/* ---- /api/v1/query and /api/v1/query_range ------------------------------------------ */

int api_query(struct http_req *req, struct http_resp *resp)
{
	int64_t t0 = mono_ns();
	int status = 0;
	struct params *ps = params_get(req);
	if (!ps)
		return http_error(resp, 500, "internal", "out of memory");
	struct promql_expr *e = NULL;
	struct promql_opts o;
	int64_t t;
	struct store *st = need_store(req, resp, &status);
	if (!st || (status = time_param(ps, "time", now_ms(), &t, resp)) ||
	    (status = query_opts(req, ps, &o, resp)) || (status = parse_query(ps, &e, resp)))
		goto out;
	struct promql_store ps_store = { st, req->st->raw_retention_ms, 0 };
	struct promql_source src;
	promql_store_source(&ps_store, &src);
	struct promql_result r;
	struct promql_error err;
	int64_t t1 = mono_ns();
	if (promql_eval_instant(&src, &o, e, t, &r, &err) < 0) {
		status = eval_error(resp, &err);
		goto out;
	}
	status = write_result(resp, ps, t0, t1, &r);
out:
	promql_expr_free(e);
	params_free(ps);
	return status;
}

int api_query_range(struct http_req *req, struct http_resp *resp)
{
	int64_t t0 = mono_ns();
	int status = 0;
	struct params *ps = params_get(req);
	if (!ps)
		return http_error(resp, 500, "internal", "out of memory");
	struct promql_expr *e = NULL;
	struct promql_opts o;
	int64_t start, end, step;
	const char *s;
	struct store *st = need_store(req, resp, &status);
	if (!st)
		goto out;
	s = param(ps, "start");
	if (!s || promql_parse_time(s, &start) < 0) {
		status = bad_param(resp, "start", "cannot parse \"%s\" to a valid timestamp", s ? s : "");
		goto out;
	}
	s = param(ps, "end");
	if (!s || promql_parse_time(s, &end) < 0) {
		status = bad_param(resp, "end", "cannot parse \"%s\" to a valid timestamp", s ? s : "");
		goto out;
	}
	if (end < start) {
		status = bad_param(resp, "end", "%s", "end timestamp must not be before start time");
		goto out;
	}
	s = param(ps, "step");
	if (!s || promql_parse_duration(s, true, &step) < 0) {
		status = bad_param(resp, "step", "cannot parse \"%s\" to a valid duration", s ? s : "");
		goto out;
	}
	if (step <= 0) {
		status = bad_param(resp, "step", "%s",
				   "zero or negative query resolution step widths are not accepted. Try a positive integer");
		goto out;
	}
	if ((end - start) / step > API_MAX_POINTS) {
		status = http_error(resp, 400, "bad_data",
				    "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)");
		goto out;
	}
	if ((status = query_opts(req, ps, &o, resp)) || (status = parse_query(ps, &e, resp)))
		goto out;
	enum promql_value_type t = promql_expr_type(e);
	if (t != PROMQL_SCALAR && t != PROMQL_VECTOR) {
		char msg[256];
		snprintf(msg, sizeof(msg),
			 "invalid expression type \"%s\" for range query, must be Scalar or instant Vector",
			 t == PROMQL_MATRIX ? "range vector" : "string");
		status = http_error(resp, 400, "bad_data", msg);
		goto out;
	}
	struct promql_store ps_store = { st, req->st->raw_retention_ms, 0 };
	struct promql_source src;
	promql_store_source(&ps_store, &src);
	struct promql_result r;
	struct promql_error err;
	int64_t t1 = mono_ns();
	if (promql_eval_range(&src, &o, e, start, end, step, &r, &err) < 0) {
		status = eval_error(resp, &err);
		goto out;
	}
	status = write_result(resp, ps, t0, t1, &r);
out:
	promql_expr_free(e);
	params_free(ps);
	return status;
}

/* ---- series and labels ------------------------------------------------------------------ */

/* The match[] selectors of a request. */
struct selectors {
	size_t n;
	struct promql_expr *e[API_MAX_MATCH];
	const struct promql_matcher *m[API_MAX_MATCH];
	size_t nm[API_MAX_MATCH];
};

static void selectors_free(struct selectors *s)
{
	for (size_t i = 0; i < s->n; i++)
		promql_expr_free(s->e[i]);
	s->n = 0;
}

static int selectors_get(const struct params *ps, struct selectors *s, struct http_resp *resp)
{
	s->n = 0;
	for (size_t i = 0; i < ps->n; i++) {
		if (strcmp(ps->p[i].key, "match[]"))
			continue;
		if (s->n == API_MAX_MATCH)
			return http_error(resp, 400, "bad_data", "too many match[] parameters (at most 256)");
		char err[1024];
		if (promql_parse_selector(ps->p[i].value, &s->e[s->n], &s->m[s->n], &s->nm[s->n], err,
					  sizeof(err)) < 0)
			return bad_param(resp, "match[]", "%s", err);
		s->n++;
	}
	return 0;
}

static int range_params(const struct params *ps, int64_t *start, int64_t *end,
			struct http_resp *resp)
{
	int status = time_param(ps, "start", API_MIN_TIME_MS, start, resp);
	if (!status)
		status = time_param(ps, "end", API_MAX_TIME_MS, end, resp);
	if (!status && *end < *start)
		status = bad_param(resp, "end", "%s", "end timestamp must not be before start time");
	return status;
}

/* What /series and /labels read before they look: the parameters, their
 * match[] selectors and time range, and the store as a PromQL source
 * (src reads through store, so a series_req is not copied). */
struct series_req {
	struct params *ps;
	struct selectors sel;
	int64_t start, end;
	struct promql_store store;
	struct promql_source src;
};

/* Fills q from req; returns 0, or the HTTP status of the error it put in
 * resp. Call series_req_fini(q) afterwards either way. */
static int series_req_init(struct series_req *q, struct http_req *req, struct http_resp *resp)
{
	memset(q, 0, sizeof(*q));
	q->ps = params_get(req);
	if (!q->ps)
		return http_error(resp, 500, "internal", "out of memory");
	int status = 0;
	struct store *st = need_store(req, resp, &status);
	if (!st || (status = selectors_get(q->ps, &q->sel, resp)) ||
	    (status = range_params(q->ps, &q->start, &q->end, resp)))
		return status;
	q->store = (struct promql_store){ st, req->st->raw_retention_ms, 0 };
	promql_store_source(&q->store, &q->src);
	return 0;
}

static void series_req_fini(struct series_req *q)
{
	selectors_free(&q->sel);
	params_free(q->ps);
}

int api_series(struct http_req *req, struct http_resp *resp)
{
	struct series_req q;
	int status = series_req_init(&q, req, resp);
	if (status)
		goto out;
	if (!q.sel.n) {
		status = http_error(resp, 400, "bad_data", "no match[] parameter provided");
		goto out;
	}
	struct arena a = { 0 };
	struct promql_series *series;
	struct promql_error err;
	ssize_t n = promql_series_match(&q.src, q.sel.m, q.sel.nm, q.sel.n, q.start, q.end, &a,
					&series, &err);
	if (n < 0) {
		status = eval_error(resp, &err);
		arena_free(&a);
		goto out;
	}
	resp->type = "application/json";
	buf_puts(&resp->body, "{\"status\":\"success\",\"data\":[");
	for (ssize_t i = 0; i < n; i++) {
		if (i)
			buf_putc(&resp->body, ',');
		put_labels(&resp->body, series[i].labels, series[i].nlabels);
	}
	buf_puts(&resp->body, "]}");
	arena_free(&a);
	status = 200;
out:
	series_req_fini(&q);
	return status;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void put_string_list(struct buf *b, char **v, size_t n)
{
	buf_puts(b, "{\"status\":\"success\",\"data\":[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_putc(b, ',');
		buf_put_json_str(b, v[i]);
	}
	buf_puts(b, "]}");
}

/* Label names (name NULL) or values of name over the matching series. */
static int label_list(struct http_req *req, struct http_resp *resp, const char *name)
{
	struct series_req q;
	int status = series_req_init(&q, req, resp);
	if (status)
		goto out;
	const struct promql_source *src = &q.src;
	resp->type = "application/json";
	bool all_time = q.start == API_MIN_TIME_MS && q.end == API_MAX_TIME_MS;
	if (!q.sel.n && all_time &&
	    (name ? src->ops->label_values != NULL : src->ops->label_names != NULL)) {
		char **v;
		ssize_t n = name ? src->ops->label_values(src->ctx, name, &v)
				 : src->ops->label_names(src->ctx, &v);
		if (n < 0) {
			status = http_error(resp, 500, "internal", strerror((int)-n));
			goto out;
		}
		put_string_list(&resp->body, v, (size_t)n);
		free(v);
		status = 200;
		goto out;
	}
	/* Through the series: every series with data in the range, or the
	 * ones the selectors match. */
	struct promql_expr *any = NULL;
	if (!q.sel.n) {
		char err[256];
		if (promql_parse_selector("{__name__=~\".+\"}", &any, &q.sel.m[0], &q.sel.nm[0], err,
					  sizeof(err)) < 0) {
			status = http_error(resp, 500, "internal", err);
			goto out;
		}
	}
	struct arena a = { 0 };
	struct promql_series *series;
	struct promql_error err;
	ssize_t n = promql_series_match(src, q.sel.m, q.sel.nm, q.sel.n ? q.sel.n : 1, q.start,
					q.end, &a, &series, &err);
	promql_expr_free(any);
	if (n < 0) {
		arena_free(&a);
		status = eval_error(resp, &err);
		goto out;
	}
	size_t total = 0, k = 0;
	for (ssize_t i = 0; i < n; i++)
		total += series[i].nlabels;
	char **v = malloc((total + 1) * sizeof(*v));
	if (!v) {
		arena_free(&a);
		status = http_error(resp, 500, "internal", "out of memory");
		goto out;
	}
	for (ssize_t i = 0; i < n; i++)
		for (size_t j = 0; j < series[i].nlabels; j++) {
			const struct promql_label *l = &series[i].labels[j];
			if (!name)
				v[k++] = (char *)l->name;
			else if (!strcmp(l->name, name))
				v[k++] = (char *)l->value;
		}
	qsort(v, k, sizeof(*v), cmp_str);
	size_t w = 0;
	for (size_t i = 0; i < k; i++)
		if (!w || strcmp(v[w - 1], v[i]))
			v[w++] = v[i];
	put_string_list(&resp->body, v, w);
	free(v);
	arena_free(&a);
	status = 200;
out:
	series_req_fini(&q);
	return status;
}

int api_labels(struct http_req *req, struct http_resp *resp)
{
	return label_list(req, resp, NULL);
}

int api_label_values(struct http_req *req, struct http_resp *resp)
{
	const char *name = req->arg;
	if (!store_label_name_valid(name)) {
		char msg[400];
		snprintf(msg, sizeof(msg), "invalid label name: \"%.300s\"", name);
		return http_error(resp, 400, "bad_data", msg);
	}
	return label_list(req, resp, name);
}

/* ---- metadata, exemplars, build information --------------------------------------------- */

int api_metadata(struct http_req *req, struct http_resp *resp)
{
	struct params *ps = params_get(req);
	if (!ps)
		return http_error(resp, 500, "internal", "out of memory");
	const char *metric = param(ps, "metric"), *lim = param(ps, "limit");
	long limit = -1;
	if (lim && *lim) {
		char *end;
		limit = strtol(lim, &end, 10);
		if (*end) {
			params_free(ps);
			return http_error(resp, 400, "bad_data", "limit must be a number");
		}
	}
	resp->type = "application/json";
	buf_puts(&resp->body, "{\"status\":\"success\",\"data\":{");
	long shown = 0;
	for (size_t i = 0; i < M__COUNT && (limit < 0 || shown < limit); i++) {
		const struct metric_family *f = &metric_families[i];
		if (metric && *metric && strcmp(metric, f->name))
			continue;
		if (shown++)
			buf_putc(&resp->body, ',');
		buf_put_json_str(&resp->body, f->name);
		buf_puts(&resp->body, ":[{\"type\":");
		buf_put_json_str(&resp->body, f->type == COUNTER ? "counter" : "gauge");
		buf_puts(&resp->body, ",\"help\":");
		buf_put_json_str(&resp->body, f->help);
		buf_puts(&resp->body, ",\"unit\":\"\"}]");
	}
	buf_puts(&resp->body, "}}");
	params_free(ps);
	return 200;
}

int api_exemplars(struct http_req *req, struct http_resp *resp)
{
	resp->type = "application/json";
	buf_puts(&resp->body, "{\"status\":\"success\",\"data\":[]}");
	return 200;
}

/*
 * Grafana reads "version" as the Prometheus version to decide which API
 * features it may use; the agent answers with the Prometheus release whose
 * PromQL and API it is tested against, and says what it is in the other
 * fields.
 */
int api_buildinfo(struct http_req *req, struct http_resp *resp)
{
	resp->type = "application/json";
	buf_puts(&resp->body, "{\"status\":\"success\",\"data\":{\"version\":\"2.42.0\",\"revision\":");
	buf_put_json_str(&resp->body, monitor_version);
	buf_puts(&resp->body, ",\"branch\":\"monitor-" MONITOR_RELEASE "\",\"buildUser\":\"monitor\","
			      "\"buildDate\":\"\",\"goVersion\":\"none (monitor " MONITOR_RELEASE ", C)\"}}");
	return 200;
}
