/*
 * test_promql_eval.c - the PromQL evaluator over the in-memory source:
 * Prometheus 3 window semantics (left-open lookback and ranges, which the
 * differential test against Prometheus 2.42 cannot check), staleness
 * markers (promtool cannot import them), rate extrapolation worked out by
 * hand, offset and @, subquery alignment, vector matching and its errors,
 * aggregations, functions, and the limits (max samples, timeout,
 * cancellation) with a deliberately slow source. Range functions over many
 * series read them ahead on a helper thread: the answers must be the same
 * bits with and without it, and limits must still stop the query.
 */
#include "storage/promql_eval_int.h"

#include "tests/unit/test.h"

#include <math.h>
#include <time.h>

/* Adds a series with points "t:v t:v ..." (t in seconds, v a number or
 * "stale"). */
static void load(struct promql_mem *m, const char *series, const char *points)
{
	ssize_t idx = promql_mem_series(m, series);
	CHECK(idx >= 0);
	if (idx < 0)
		return;
	const char *p = points;
	while (*p) {
		char *end;
		double t = strtod(p, &end);
		if (end == p)
			break;
		p = end + 1; /* ':' */
		double v;
		if (!strncmp(p, "stale", 5)) {
			v = promql_stale_nan();
			p += 5;
		} else {
			v = strtod(p, &end);
			p = end;
		}
		CHECK_EQ_INT(promql_mem_add(m, (size_t)idx, (int64_t)llround(t * 1000), v), 0);
		while (*p == ' ')
			p++;
	}
}

struct q {
	struct promql_result r;
	struct promql_error err;
	int rc;
};

static void instant(struct promql_mem *m, const char *query, double t_s, struct q *out)
{
	struct promql_source src;
	promql_mem_source(m, &src);
	struct promql_opts o;
	promql_opts_defaults(&o);
	struct promql_expr *e;
	char err[512];
	memset(out, 0, sizeof(*out));
	if (promql_parse(query, &e, err, sizeof(err)) < 0) {
		fprintf(stderr, "  parse %s: %s\n", query, err);
		out->rc = -2;
		return;
	}
	out->rc = promql_eval_instant(&src, &o, e, (int64_t)llround(t_s * 1000), &out->r, &out->err);
	promql_expr_free(e);
}

/* The value of the vector element whose labels print as want ("{a=\"1\"}"),
 * or NAN with found false. */
static double value_of(const struct promql_result *r, const char *want, bool *found)
{
	*found = false;
	for (size_t i = 0; i < r->nseries; i++) {
		struct buf b;
		buf_init(&b, 1024);
		buf_putc(&b, '{');
		for (size_t j = 0; j < r->series[i].nlabels; j++)
			buf_printf(&b, "%s%s=\"%s\"", j ? "," : "", r->series[i].labels[j].name,
				   r->series[i].labels[j].value);
		buf_putc(&b, '}');
		bool eq = !strcmp(b.data, want);
		buf_fini(&b);
		if (eq) {
			*found = true;
			return r->series[i].points[r->series[i].npoints - 1].v;
		}
	}
	return NAN;
}

/* One-element instant query: checks the count and the value. */
static void check_one(struct promql_mem *m, const char *query, double t, const char *labels,
		      double want)
{
	struct q q;
	instant(m, query, t, &q);
	if (q.rc != 0) {
		fprintf(stderr, "  %s: %s\n", query, q.err.msg);
		CHECK(q.rc == 0);
		return;
	}
	bool found;
	double v = q.r.type == PROMQL_SCALAR ? q.r.scalar : value_of(&q.r, labels, &found);
	if (q.r.type != PROMQL_SCALAR) {
		if (!found || q.r.nseries != 1)
			fprintf(stderr, "  %s at %g: %zu series, %s %s\n", query, t, q.r.nseries, labels,
				found ? "found" : "missing");
		CHECK(found);
		CHECK_EQ_INT(q.r.nseries, 1);
	}
	if (isnan(want))
		CHECK(isnan(v));
	else
		CHECK_EQ_DBL(v, want);
	promql_result_fini(&q.r);
}

static void check_empty(struct promql_mem *m, const char *query, double t)
{
	struct q q;
	instant(m, query, t, &q);
	CHECK_EQ_INT(q.rc, 0);
	if (q.rc == 0 && q.r.nseries)
		fprintf(stderr, "  %s at %g: %zu series, expected none\n", query, t, q.r.nseries);
	CHECK_EQ_INT(q.r.nseries, 0);
	promql_result_fini(&q.r);
}

static void check_error(struct promql_mem *m, const char *query, double t,
			enum promql_errtype type, const char *msg_part)
{
	struct q q;
	instant(m, query, t, &q);
	CHECK_EQ_INT(q.rc, -1);
	CHECK_EQ_INT(q.err.type, type);
	if (!strstr(q.err.msg, msg_part))
		fprintf(stderr, "  %s: error \"%s\", expected \"%s\"\n", query, q.err.msg, msg_part);
	CHECK(strstr(q.err.msg, msg_part) != NULL);
}

/* ---- windows and staleness ----------------------------------------------------------- */

static void test_lookback_is_left_open(void)
{
	struct promql_mem *m = promql_mem_new();
	load(m, "x", "0:1 60:2");
	check_one(m, "x", 60, "{__name__=\"x\"}", 2);
	check_one(m, "x", 359.999, "{__name__=\"x\"}", 2);
	check_empty(m, "x", 360);          /* the sample at 60 is exactly 5m back: out */
	check_one(m, "x", 299.999, "{__name__=\"x\"}", 2);
	check_one(m, "x", 59.999, "{__name__=\"x\"}", 1);
	check_empty(m, "x", -0.001);
	promql_mem_free(m);
}

static void test_staleness(void)
{
	struct promql_mem *m = promql_mem_new();
	load(m, "x{a=\"1\"}", "0:1 10:2 20:stale 40:5");
	check_one(m, "x", 15, "{__name__=\"x\",a=\"1\"}", 2);
	check_empty(m, "x", 20);           /* a stale marker ends the series at once */
	check_empty(m, "x", 39);
	check_one(m, "x", 40, "{__name__=\"x\",a=\"1\"}", 5);
	/* Range windows skip stale markers rather than end at them. */
	check_one(m, "count_over_time(x[1m])", 45, "{a=\"1\"}", 3);
	check_one(m, "last_over_time(x[25s])", 30, "{__name__=\"x\",a=\"1\"}", 2);
	promql_mem_free(m);
}

static void test_range_windows_are_left_open(void)
{
	struct promql_mem *m = promql_mem_new();
	load(m, "c", "0:0 10:10 20:20 30:30 40:40 50:50 60:60");
	check_one(m, "count_over_time(c[1m])", 60, "{}", 6);   /* (0, 60]: not the one at 0 */
	check_one(m, "count_over_time(c[1m])", 60.001, "{}", 6);
	check_one(m, "count_over_time(c[1m])", 59.999, "{}", 6); /* (-0.001, 59.999] */
	check_one(m, "sum_over_time(c[30s])", 60, "{}", 40 + 50 + 60);
	check_empty(m, "count_over_time(c[1m])", 130);
	/* A nested subquery evaluates at aligned steps; its own left edge falls
	 * on an aligned point and leaves it out (Prometheus 3). */
	check_one(m, "count_over_time(c[30s:10s])", 60, "{}", 3);
	promql_mem_free(m);
}

/* ---- rate and friends, by hand --------------------------------------------------------- */

static void test_rate_extrapolation(void)
{
	struct promql_mem *m = promql_mem_new();
	/* 1/s, sampled every 10 s */
	load(m, "c", "0:0 10:10 20:20 30:30 40:40 50:50 60:60");
	/* At 60 the window (0, 60] holds 10..60: 50 s sampled, 10 s to the
	 * start (under 1.1 x the 10 s spacing: extrapolate all of it), none to
	 * the end; the counter would reach zero at 0, which is no closer. */
	check_one(m, "rate(c[1m])", 60, "{}", 1);
	check_one(m, "increase(c[1m])", 60, "{}", 60);
	/* At 65: 5 s to the end extrapolated too. */
	check_one(m, "increase(c[1m])", 65, "{}", 60);
	/* At 55: window (-5, 55] holds 0..50; the zero point cuts the 5 s. */
	check_one(m, "increase(c[1m])", 55, "{}", 55);
	check_one(m, "irate(c[1m])", 60, "{}", 1);
	check_one(m, "delta(c[1m])", 60, "{}", 60);
	check_one(m, "idelta(c[1m])", 60, "{}", 10);
	check_one(m, "deriv(c[1m])", 60, "{}", 1);
	check_one(m, "predict_linear(c[1m], 100)", 60, "{}", 160);
	check_one(m, "resets(c[1m])", 60, "{}", 0);
	check_one(m, "changes(c[1m])", 60, "{}", 5);
	promql_mem_free(m);

	m = promql_mem_new();
	/* A counter reset between 20 and 30: increase counts 30 + 5 + ... */
	load(m, "c", "0:100 10:110 20:120 30:5 40:15 50:25 60:35");
	/* (0, 60]: 110 .. 35, raw difference 35 - 110 + 120 = 45 over 50 s;
	 * extrapolated to 60 s: 54; the first value (110) is far from zero. */
	check_one(m, "increase(c[1m])", 60, "{}", 54);
	check_one(m, "resets(c[1m])", 60, "{}", 1);
	check_one(m, "irate(c[15s])", 30, "{}", 0.5);  /* after a reset: the new value */
	/* Gaps wider than 1.1 x the average spacing extrapolate half a step. */
	promql_mem_free(m);

	m = promql_mem_new();
	load(m, "g", "0:1 10:1");
	check_empty(m, "rate(g[5s])", 10);   /* one point: no rate */
	check_one(m, "deriv(g[20s])", 10, "{}", 0);
	promql_mem_free(m);
}

static void test_offset_and_at(void)
{
	struct promql_mem *m = promql_mem_new();
	load(m, "x", "0:0 60:1 120:2 180:3 240:4");
	check_one(m, "x offset 1m", 180, "{__name__=\"x\"}", 2);
	check_one(m, "x offset -1m", 60, "{__name__=\"x\"}", 2);
	check_one(m, "x @ 125", 240, "{__name__=\"x\"}", 2);
	check_one(m, "x @ 185 offset 1m", 0, "{__name__=\"x\"}", 2);
	check_one(m, "sum_over_time(x[2m] @ 240)", 0, "{}", 7);
	check_one(m, "timestamp(x @ 125)", 240, "{}", 120);
	check_one(m, "timestamp(x offset 1m)", 200, "{}", 120);
	/* @ start() and end() in a range query: the same value at every step. */
	struct promql_source src;
	promql_mem_source(m, &src);
	struct promql_opts o;
	promql_opts_defaults(&o);
	struct promql_expr *e;
	char err[256];
	CHECK_EQ_INT(promql_parse("x @ end() - x @ start()", &e, err, sizeof(err)), 0);
	struct promql_result r;
	struct promql_error pe;
	CHECK_EQ_INT(promql_eval_range(&src, &o, e, 60000, 240000, 60000, &r, &pe), 0);
	CHECK_EQ_INT(r.nseries, 1);
	if (r.nseries == 1) {
		CHECK_EQ_INT(r.series[0].npoints, 4);
		for (size_t i = 0; i < r.series[0].npoints; i++)
			CHECK_EQ_DBL(r.series[0].points[i].v, 3);
	}
	promql_result_fini(&r);
	promql_expr_free(e);
	promql_mem_free(m);
}

static void test_subquery_alignment(void)
{
	struct promql_mem *m = promql_mem_new();
	load(m, "x", "0:0 10:1 20:2 30:3 40:4 50:5 60:6 70:7");
	/* [1m:10s] at 65: points at 10, 20, ..., 60 (aligned to 10 s) in (5, 65] */
	check_one(m, "count_over_time(x[1m:10s])", 65, "{}", 6);
	check_one(m, "sum_over_time(x[1m:10s])", 65, "{}", 1 + 2 + 3 + 4 + 5 + 6);
	check_one(m, "max_over_time(x[30s:20s] offset 5s)", 65, "{}", 6);   /* points at 40, 60 */
	/* a subquery without a step uses the default (1m) */
	check_one(m, "count_over_time(x[3m:])", 65, "{}", 2);   /* at 0 and 60 */
	promql_mem_free(m);
}

/* ---- operators ------------------------------------------------------------------------- */

static void test_vector_matching(void)
{
	struct promql_mem *m = promql_mem_new();
	load(m, "mem{name=\"a\",id=\"1\"}", "0:10");
	load(m, "mem{name=\"b\",id=\"2\"}", "0:20");
	load(m, "lim{name=\"a\",id=\"1\"}", "0:100");
	load(m, "lim{name=\"b\",id=\"2\"}", "0:0");
	load(m, "info{name=\"a\",version=\"v1\"}", "0:1");
	load(m, "info{name=\"b\",version=\"v2\"}", "0:1");
	load(m, "dev{name=\"a\",device=\"sda\"}", "0:3");
	load(m, "dev{name=\"a\",device=\"sdb\"}", "0:4");
	check_one(m, "mem / lim < 1", 1, "{id=\"1\",name=\"a\"}", 0.1);
	check_one(m, "count(mem / lim > 1)", 1, "{}", 1);      /* 20 / 0 = +Inf */
	check_one(m, "mem * on(name) group_left(version) info{name=\"b\"}", 1,
		  "{id=\"2\",name=\"b\",version=\"v2\"}", 20);
	check_one(m, "info{name=\"a\"} * on(name) group_right(version) mem", 1,
		  "{id=\"1\",name=\"a\",version=\"v1\"}", 10);
	check_one(m, "dev{device=\"sdb\"} / on(name) group_left mem", 1,
		  "{device=\"sdb\",name=\"a\"}", 4.0 / 10);
	check_one(m, "mem == bool on(name) group_left dev{device=\"sda\"}", 1,
		  "{id=\"1\",name=\"a\"}", 0);
	check_one(m, "sum(mem and on(name) info)", 1, "{}", 30);
	check_one(m, "count(mem or lim)", 1, "{}", 2);          /* same labels but __name__ */
	check_one(m, "count(mem or on(id) dev)", 1, "{}", 4);
	check_one(m, "mem unless lim == 0", 1, "{__name__=\"mem\",id=\"1\",name=\"a\"}", 10);
	check_error(m, "mem * on(name) dev", 1, PROMQL_ERR_EXECUTION,
		    "found duplicate series for the match group {name=\"a\"} on the right hand-side");
	check_error(m, "dev * on(name) mem", 1, PROMQL_ERR_EXECUTION,
		    "multiple matches for labels: many-to-one matching must be explicit");
	check_error(m, "{__name__=~\"mem|lim\"} * on(name) group_left info", 1, PROMQL_ERR_EXECUTION,
		    "multiple matches for labels: grouping labels must ensure unique matches");
	check_error(m, "label_replace(dev, \"device\", \"x\", \"\", \"\")", 1, PROMQL_ERR_EXECUTION,
		    "vector cannot contain metrics with the same labelset");
	check_error(m, "-{__name__=~\"mem|lim\"}", 1, PROMQL_ERR_EXECUTION,
		    "vector cannot contain metrics with the same labelset");
	check_one(m, "2 ^ 3 ^ 2", 1, "", 512);
	check_one(m, "-2 ^ 2", 1, "", -4);
	check_one(m, "5 % -3", 1, "", 2);
	check_one(m, "1 < bool 2", 1, "", 1);
	check_one(m, "0 < mem{name=\"a\"}", 1, "{__name__=\"mem\",id=\"1\",name=\"a\"}", 10);
	promql_mem_free(m);
}

/* ---- aggregations and functions ---------------------------------------------------------- */

static void test_aggregations(void)
{
	struct promql_mem *m = promql_mem_new();
	load(m, "v{g=\"a\",i=\"1\"}", "0:1");
	load(m, "v{g=\"a\",i=\"2\"}", "0:2");
	load(m, "v{g=\"a\",i=\"3\"}", "0:6");
	load(m, "v{g=\"b\",i=\"4\"}", "0:10");
	check_one(m, "sum by (g) (v{g=\"a\"})", 1, "{g=\"a\"}", 9);
	check_one(m, "avg without (i) (v{g=\"a\"})", 1, "{g=\"a\"}", 3);
	check_one(m, "stddev(v{g=\"a\"})", 1, "{}", sqrt(14.0 / 3));
	check_one(m, "stdvar(v{g=\"a\"})", 1, "{}", 14.0 / 3);
	check_one(m, "quantile(0.5, v)", 1, "{}", 4);
	check_one(m, "quantile(0.25, v)", 1, "{}", 1.75);
	check_one(m, "topk(1, v)", 1, "{__name__=\"v\",g=\"b\",i=\"4\"}", 10);
	check_one(m, "bottomk by (g) (1, v{g=\"a\"})", 1, "{__name__=\"v\",g=\"a\",i=\"1\"}", 1);
	check_one(m, "count_values(\"x\", v{i=\"4\"} / 4)", 1, "{x=\"2.5\"}", 1);
	check_one(m, "count_values(\"x\", v{i=\"4\"} * 1e21)", 1, "{x=\"10000000000000000000000\"}", 1);
	check_one(m, "group by (g) (v{g=\"b\"})", 1, "{g=\"b\"}", 1);
	check_one(m, "max(v)", 1, "{}", 10);
	check_one(m, "count(topk by (g) (2, v))", 1, "{}", 3);
	check_error(m, "count_values(\"a b\", v)", 1, PROMQL_ERR_EXECUTION, "invalid label name \"a b\"");
	promql_mem_free(m);
}

static void test_functions(void)
{
	struct promql_mem *m = promql_mem_new();
	load(m, "b{le=\"0.1\"}", "0:10");
	load(m, "b{le=\"0.5\"}", "0:20");
	load(m, "b{le=\"+Inf\"}", "0:40");
	load(m, "w{name=\"web-12\",img=\"nginx:1.25\"}", "0:7");
	load(m, "d", "1700000000:1700000000");
	check_one(m, "histogram_quantile(0.5, b)", 1, "{}", 0.5);
	check_one(m, "histogram_quantile(0.25, b)", 1, "{}", 0.1);
	check_one(m, "histogram_quantile(0.9, b)", 1, "{}", 0.5);   /* in +Inf: the last bound */
	check_one(m, "label_replace(w, \"n\", \"$2-$1\", \"name\", \"(\\\\w+)-(\\\\d+)\")", 1,
		  "{__name__=\"w\",img=\"nginx:1.25\",n=\"12-web\",name=\"web-12\"}", 7);
	check_one(m, "label_join(w, \"j\", \"|\", \"img\", \"name\")", 1,
		  "{__name__=\"w\",img=\"nginx:1.25\",j=\"nginx:1.25|web-12\",name=\"web-12\"}", 7);
	check_error(m, "label_replace(w, \"a-b\", \"\", \"name\", \".*\")", 1, PROMQL_ERR_EXECUTION,
		    "invalid destination label name in label_replace(): a-b");
	check_one(m, "absent(nothing{a=\"1\",b=~\"x\"})", 1, "{a=\"1\"}", 1);
	check_empty(m, "absent(w)", 1);
	check_one(m, "clamp(w, 0, 5)", 1, "{img=\"nginx:1.25\",name=\"web-12\"}", 5);
	check_one(m, "round(w / 4, 0.5)", 1, "{img=\"nginx:1.25\",name=\"web-12\"}", 2);
	check_one(m, "scalar(w) + 1", 1, "", 8);
	check_one(m, "scalar(b) + 1", 1, "", NAN);
	/* 2023-11-14T22:13:20Z was a Tuesday in November */
	check_one(m, "day_of_week(d)", 1700000001, "{}", 2);
	check_one(m, "month()", 1700000001, "{}", 11);
	check_one(m, "hour(d)", 1700000001, "{}", 22);
	check_one(m, "days_in_month(vector(951782400))", 1, "{}", 29);  /* Feb 2000 */
	check_one(m, "time()", 42.5, "", 42.5);
	check_one(m, "holt_winters(vector(1)[1m:10s], 0.5, 0.5)", 60, "{}", 1);
	check_one(m, "quantile_over_time(0.5, d[1m])", 1700000001, "{}", 1700000000);
	promql_mem_free(m);
}

/* ---- limits ----------------------------------------------------------------------------------- */

/* A source that takes its time: for the timeout. */
static const struct promql_source_ops *slow_base;
static int slow_points(void *ctx, uint64_t ref, int64_t mint, int64_t maxt, int64_t step,
		       struct promql_points *out)
{
	struct timespec ts = { 0, 20 * 1000000 };
	nanosleep(&ts, NULL);
	return slow_base->points(ctx, ref, mint, maxt, step, out);
}

static void test_limits(void)
{
	struct promql_mem *m = promql_mem_new();
	char name[64], pts[64];
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "s{i=\"%d\"}", i);
		snprintf(pts, sizeof(pts), "0:%d 30:%d 60:%d", i, i + 1, i + 2);
		load(m, name, pts);
	}
	struct promql_source src;
	promql_mem_source(m, &src);
	struct promql_opts o;
	promql_opts_defaults(&o);
	struct promql_expr *e;
	char err[256];
	CHECK_EQ_INT(promql_parse("sum(s)", &e, err, sizeof(err)), 0);
	struct promql_result r;
	struct promql_error pe;

	o.max_samples = 100;
	CHECK_EQ_INT(promql_eval_instant(&src, &o, e, 60000, &r, &pe), -1);
	CHECK_EQ_INT(pe.type, PROMQL_ERR_EXECUTION);
	CHECK_STR(pe.msg, "query processing would load too many samples into memory in query execution");
	o.max_samples = 1000;
	CHECK_EQ_INT(promql_eval_instant(&src, &o, e, 60000, &r, &pe), 0);
	CHECK_EQ_DBL(r.series[0].points[0].v, 49 * 50 / 2 + 50 * 2);
	promql_result_fini(&r);

	/* 50 series at 20 ms each is a second; the timeout stops it early. */
	static struct promql_source_ops slow;
	slow_base = src.ops;
	slow = *src.ops;
	slow.points = slow_points;
	struct promql_source ssrc = { &slow, src.ctx };
	o.timeout_ms = 100;
	int64_t t0 = mono_ns();
	CHECK_EQ_INT(promql_eval_instant(&ssrc, &o, e, 60000, &r, &pe), -1);
	int64_t took_ms = (mono_ns() - t0) / 1000000;
	CHECK_EQ_INT(pe.type, PROMQL_ERR_TIMEOUT);
	CHECK_STR(pe.msg, "query timed out in expression evaluation");
	CHECK(took_ms < 500);
	CHECK_EQ_INT(promql_errtype_status(pe.type), 503);

	volatile int cancel = 1;
	o.timeout_ms = 0;
	o.cancel = &cancel;
	CHECK_EQ_INT(promql_eval_instant(&src, &o, e, 60000, &r, &pe), -1);
	CHECK_EQ_INT(pe.type, PROMQL_ERR_CANCELED);
	promql_expr_free(e);
	promql_mem_free(m);
}

static void test_range_results(void)
{
	struct promql_mem *m = promql_mem_new();
	load(m, "x{a=\"2\"}", "0:1 60:2 120:3");
	load(m, "x{a=\"1\"}", "100:10");
	struct promql_source src;
	promql_mem_source(m, &src);
	struct promql_opts o;
	promql_opts_defaults(&o);
	struct promql_expr *e;
	char err[256];
	struct promql_result r;
	struct promql_error pe;
	CHECK_EQ_INT(promql_parse("x", &e, err, sizeof(err)), 0);
	CHECK_EQ_INT(promql_eval_range(&src, &o, e, 0, 600000, 60000, &r, &pe), 0);
	CHECK_EQ_INT(r.type, PROMQL_MATRIX);
	CHECK_EQ_INT(r.nseries, 2);
	if (r.nseries == 2) {
		CHECK_STR(r.series[0].labels[1].value, "1");     /* sorted by labels */
		CHECK_EQ_INT(r.series[0].npoints, 5);             /* 120 .. 360: lookback */
		CHECK_EQ_INT(r.series[0].points[0].t, 120000);
		CHECK_EQ_INT(r.series[1].npoints, 7);             /* 0 .. 360 */
	}
	promql_result_fini(&r);
	promql_expr_free(e);

	CHECK_EQ_INT(promql_parse("time() / 60", &e, err, sizeof(err)), 0);
	CHECK_EQ_INT(promql_eval_range(&src, &o, e, 0, 180000, 60000, &r, &pe), 0);
	CHECK_EQ_INT(r.nseries, 1);
	if (r.nseries == 1) {
		CHECK_EQ_INT(r.series[0].nlabels, 0);
		CHECK_EQ_INT(r.series[0].npoints, 4);
		CHECK_EQ_DBL(r.series[0].points[3].v, 3);
	}
	promql_result_fini(&r);
	promql_expr_free(e);

	CHECK_EQ_INT(promql_parse("x[5m]", &e, err, sizeof(err)), 0);
	CHECK_EQ_INT(promql_eval_range(&src, &o, e, 0, 180000, 60000, &r, &pe), -1);
	CHECK_EQ_INT(pe.type, PROMQL_ERR_BAD_DATA);
	CHECK(strstr(pe.msg, "invalid expression type \"range vector\" for range query") != NULL);
	promql_expr_free(e);

	struct q q;
	instant(m, "sort_desc(x)", 120, &q);
	CHECK_EQ_INT(q.rc, 0);
	if (q.rc == 0 && q.r.nseries == 2)
		CHECK(q.r.series[0].points[0].v > q.r.series[1].points[0].v);
	promql_result_fini(&q.r);
	promql_mem_free(m);
}

/* Range query over m; the result's series and points, flattened. */
static int range_flat(struct promql_mem *m, const char *query, int threads, uint64_t max_samples,
		      double *out, size_t max, size_t *n, struct promql_error *pe)
{
	struct promql_source src;
	promql_mem_source(m, &src);
	struct promql_opts o;
	promql_opts_defaults(&o);
	o.read_threads = threads;
	if (max_samples)
		o.max_samples = max_samples;
	struct promql_expr *e;
	char err[512];
	if (promql_parse(query, &e, err, sizeof(err)) < 0)
		return -1;
	struct promql_result r;
	int rc = promql_eval_range(&src, &o, e, 600000, 3600000, 15000, &r, pe);
	*n = 0;
	for (size_t k = 0; rc == 0 && k < r.nseries; k++)
		for (size_t i = 0; i < r.series[k].npoints && *n + 2 <= max; i++) {
			out[(*n)++] = (double)r.series[k].points[i].t;
			out[(*n)++] = r.series[k].points[i].v;
		}
	if (rc == 0)
		promql_result_fini(&r);
	promql_expr_free(e);
	return rc;
}

static void test_read_ahead_same_answers(void)
{
	struct promql_mem *m = promql_mem_new();
	/* 200 counters over an hour at 10 s, with resets and a stale gap. */
	for (int k = 0; k < 200; k++) {
		char name[64];
		snprintf(name, sizeof(name), "c{inst=\"%03d\",job=\"j%d\"}", k, k % 7);
		ssize_t idx = promql_mem_series(m, name);
		double v = k;
		for (int i = 0; i < 360; i++) {
			v = (i + k) % 97 == 0 ? 0 : v + (k % 13) * 0.5 + 0.25;
			double x = (i + k) % 151 == 0 ? promql_stale_nan() : v;
			promql_mem_add(m, (size_t)idx, i * 10000LL + k, x);
		}
	}
	static double a[200 * 400], b[200 * 400];
	const char *queries[] = { "sum by (job) (rate(c[1m]))", "increase(c[5m])",
				  "max_over_time(c[2m]) - min_over_time(c[2m])" };
	for (size_t q = 0; q < ARRAY_LEN(queries); q++) {
		size_t na, nb;
		struct promql_error pe;
		CHECK_EQ_INT(range_flat(m, queries[q], 0, 0, a, ARRAY_LEN(a), &na, &pe), 0);
		CHECK_EQ_INT(range_flat(m, queries[q], 1, 0, b, ARRAY_LEN(b), &nb, &pe), 0);
		CHECK(na > 0);
		CHECK_EQ_INT(na, nb);
		CHECK(na == nb && !memcmp(a, b, na * sizeof(double)));
	}
	/* The sample limit still stops it, with the helper running. */
	size_t n;
	struct promql_error pe;
	CHECK_EQ_INT(range_flat(m, "rate(c[1m])", 1, 5000, a, ARRAY_LEN(a), &n, &pe), -1);
	CHECK_EQ_INT(pe.type, PROMQL_ERR_EXECUTION);
	promql_mem_free(m);
}

int main(void)
{
	RUN(test_lookback_is_left_open);
	RUN(test_staleness);
	RUN(test_range_windows_are_left_open);
	RUN(test_rate_extrapolation);
	RUN(test_offset_and_at);
	RUN(test_subquery_alignment);
	RUN(test_vector_matching);
	RUN(test_aggregations);
	RUN(test_functions);
	RUN(test_limits);
	RUN(test_range_results);
	RUN(test_read_ahead_same_answers);
	TEST_END();
}
