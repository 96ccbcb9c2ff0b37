/*
 * test_promql_store.c - the PromQL engine over the real store (SQLite files
 * in a temporary directory): selection through the label index with
 * regexes translated from RE2, points from the head and from disk, stale
 * markers written by the store, and queries reaching back past the raw
 * retention, which read the 1 m and 1 h roll-ups instead. The newest-point
 * fast path that instant queries take (store_last_point) is checked against
 * a full read, with the data in the head, written out, and reopened.
 */
#include "storage/storage.h"

#include "tests/unit/test.h"

#include <errno.h>
#include <unistd.h>

static char dir[256];

static struct store *open_fresh(struct store_config *cfg)
{
	snprintf(dir, sizeof(dir), "/tmp/monitor-test-promql-store-XXXXXX");
	if (!mkdtemp(dir))
		return NULL;
	snprintf(cfg->dir, sizeof(cfg->dir), "%s", dir);
	struct store *s = NULL;
	char err[512];
	if (store_open(&s, cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "  store_open: %s\n", err);
		return NULL;
	}
	return s;
}

static void remove_dir(void)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "  could not remove %s\n", dir);
}

static uint32_t add_series(struct store *s, const char *name, const char *inst)
{
	struct store_label l[] = { { "__name__", name }, { "inst", inst } };
	uint32_t id = 0;
	CHECK_EQ_INT(store_series(s, l, 2, STORE_GAUGE, &id), 0);
	return id;
}

/* Value of a one-element answer; NAN and a message otherwise. */
static double one(const struct promql_source *src, const char *q, int64_t t, size_t *n)
{
	struct promql_expr *e;
	char err[512];
	if (promql_parse(q, &e, err, sizeof(err)) < 0) {
		fprintf(stderr, "  %s: %s\n", q, err);
		return NAN;
	}
	struct promql_opts o;
	promql_opts_defaults(&o);
	struct promql_result r;
	struct promql_error pe;
	double v = NAN;
	*n = 0;
	if (promql_eval_instant(src, &o, e, t, &r, &pe) < 0) {
		fprintf(stderr, "  %s: %s\n", q, pe.msg);
	} else {
		*n = r.type == PROMQL_SCALAR ? 1 : r.nseries;
		if (r.type == PROMQL_SCALAR)
			v = r.scalar;
		else if (r.nseries)
			v = r.series[0].points[0].v;
		promql_result_fini(&r);
	}
	promql_expr_free(e);
	return v;
}

static void test_select_and_read(void)
{
	struct store_config cfg;
	store_config_defaults(&cfg);
	struct store *s = open_fresh(&cfg);
	if (!s)
		return;
	int64_t t0 = 1700000000000LL;
	uint32_t a = add_series(s, "cpu", "web-1"), b = add_series(s, "cpu", "web-2"),
		 c = add_series(s, "cpu", "db-1");
	for (int i = 0; i < 720; i++) {        /* 2 hours every 10 s */
		int64_t t = t0 + i * 10000LL;
		store_append(s, a, t, i);
		store_append(s, b, t, 2.0 * i);
		if (i < 360)
			store_append(s, c, t, 5);
	}
	/* Half on disk, the rest in the head. */
	store_seal_all(s);
	CHECK_EQ_INT(store_flush(s), 0);
	for (int i = 720; i < 760; i++) {
		store_append(s, a, t0 + i * 10000LL, i);
		store_append(s, b, t0 + i * 10000LL, 2.0 * i);
	}
	/* "now" right after the data: everything is within the raw retention */
	struct promql_store ps = { s, cfg.retention_ms[STORE_TIER_RAW], t0 + 760 * 10000LL };
	struct promql_source src;
	promql_store_source(&ps, &src);
	size_t n;
	int64_t end = t0 + 759 * 10000LL;
	CHECK_EQ_DBL(one(&src, "cpu{inst=\"web-1\"}", end, &n), 759);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_DBL(one(&src, "count(cpu{inst=~\"web-\\\\d\"})", end, &n), 2);
	CHECK_EQ_DBL(one(&src, "count(cpu{inst=~\"(?i)WEB-.*\"})", end, &n), 2);
	CHECK_EQ_DBL(one(&src, "count(cpu{inst!~\"web.*\"})", t0 + 3000000, &n), 1);
	/* A window across the disk/head boundary: 10 min of 10 s points. */
	CHECK_EQ_DBL(one(&src, "count_over_time(cpu{inst=\"web-2\"}[10m])", t0 + 7500000 - 1, &n), 60);
	CHECK_EQ_DBL(one(&src, "rate(cpu{inst=\"web-2\"}[5m])", t0 + 7500000 - 1, &n), 0.2);
	/* db-1 stopped an hour in: gone after the lookback. */
	CHECK_EQ_DBL(one(&src, "cpu{inst=\"db-1\"}", t0 + 3590000 + 299000, &n), 5);
	CHECK(isnan(one(&src, "cpu{inst=\"db-1\"}", t0 + 3590000 + 300000, &n)));
	CHECK_EQ_INT(n, 0);
	store_close(s);
	remove_dir();
}

static void test_stale_markers_end_series(void)
{
	struct store_config cfg;
	store_config_defaults(&cfg);
	struct store *s = open_fresh(&cfg);
	if (!s)
		return;
	int64_t t0 = 1700000000000LL;
	uint32_t a = add_series(s, "up", "x");
	store_append(s, a, t0, 1);
	store_append(s, a, t0 + 10000, 1);
	store_append(s, a, t0 + 20000, promql_stale_nan());
	struct promql_store ps = { s, cfg.retention_ms[STORE_TIER_RAW], t0 + 30000 };
	struct promql_source src;
	promql_store_source(&ps, &src);
	size_t n;
	CHECK_EQ_DBL(one(&src, "up", t0 + 15000, &n), 1);
	one(&src, "up", t0 + 25000, &n);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_DBL(one(&src, "count_over_time(up[1m])", t0 + 25000, &n), 2);
	store_close(s);
	remove_dir();
}

static void test_rollups_past_raw_retention(void)
{
	struct store_config cfg;
	store_config_defaults(&cfg);
	cfg.retention_ms[STORE_TIER_RAW] = 86400000LL;      /* a day of raw */
	struct store *s = open_fresh(&cfg);
	if (!s)
		return;
	int64_t t0 = 1700000000000LL - 1700000000000LL % 3600000;
	uint32_t a = add_series(s, "bytes", "x");
	/* Three days at one sample a minute, counting up one a minute. */
	for (int i = 0; i < 3 * 1440; i++)
		store_append(s, a, t0 + i * 60000LL + 5000, i);
	store_seal_all(s);
	CHECK_EQ_INT(store_flush(s), 0);
	int64_t now = t0 + 3LL * 86400000;
	CHECK_EQ_INT(store_retention_run(s, now), 0);
	struct promql_store ps = { s, cfg.retention_ms[STORE_TIER_RAW], now };
	struct promql_source src;
	promql_store_source(&ps, &src);
	size_t n;
	/* Two days back, raw points are gone: the 1 m roll-up answers, a point
	 * at the end of each minute with the minute's last value. */
	int64_t t = t0 + 86400000LL + 600000 + 30000;  /* day 1, 10.5 min in */
	double v = one(&src, "bytes", t, &n);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_DBL(v, 1440 + 9);
	/* Points 1440..1449 at minute ends 1..10 in (0.5, 10.5] min: 9 over
	 * 540 s, extrapolated 30 s to each edge. */
	CHECK_EQ_DBL(one(&src, "increase(bytes[10m])", t, &n), 10);
	/* Within the raw retention, a series that stopped is not carried on
	 * by its roll-ups, nor one that has not begun brought forward. */
	uint32_t g = add_series(s, "gone", "x");
	for (int i = 0; i < 30; i++)
		store_append(s, g, now - 7200000 + i * 60000LL + 59000, 1);
	store_seal_all(s);
	CHECK_EQ_INT(store_flush(s), 0);
	CHECK(isnan(one(&src, "last_over_time(gone[1h])", now - 5400000 + 1000 + 3600000, &n)));
	CHECK_EQ_INT(n, 0);
	CHECK(isnan(one(&src, "gone", now - 7200000 + 58000, &n)));
	CHECK_EQ_DBL(one(&src, "count_over_time(gone[1h])", now - 5400000 + 3000000, &n), 10);
	/* ... and the newest day still from raw points. */
	CHECK_EQ_DBL(one(&src, "bytes", now - 30000, &n), 3 * 1440 - 1);
	store_close(s);
	remove_dir();
}

/* The last point of a full iteration over [mint, maxt]: 1, or 0 for none. */
static int last_by_iter(struct store *s, uint32_t id, int64_t mint, int64_t maxt, int64_t *t,
			double *v)
{
	struct store_iter *it;
	if (store_iter_open(s, id, STORE_TIER_RAW, mint, maxt, &it) < 0)
		return -1;
	struct store_point p;
	int found = 0;
	while (store_iter_next(it, &p) > 0) {
		*t = p.t;
		*v = p.v;
		found = 1;
	}
	store_iter_free(it);
	return found;
}

/* store_last_point agrees with a full read at many times and windows;
 * returns how many windows had a point. */
static int check_last(struct store *s, const uint32_t *ids, size_t n, int64_t from, int64_t to)
{
	static const int64_t windows[] = { 1, 999, 15000, 60000, 300000, 7200000 };
	int hits = 0, bad = 0;
	for (size_t k = 0; k < n; k++)
		for (int64_t t = from; t <= to; t += 7777)
			for (size_t w = 0; w < ARRAY_LEN(windows); w++) {
				int64_t t1 = 0, t2 = 0;
				double v1 = 0, v2 = 0;
				int a = store_last_point(s, ids[k], t - windows[w] + 1, t, &t1, &v1);
				int b = last_by_iter(s, ids[k], t - windows[w] + 1, t, &t2, &v2);
				bool same = a == b && (a != 1 || (t1 == t2 && !memcmp(&v1, &v2, sizeof(v1))));
				if (!same && bad++ < 5)
					fprintf(stderr, "  series %u at %lld window %lld: fast %d (%lld, %g), full %d (%lld, %g)\n",
						ids[k], (long long)t, (long long)windows[w], a, (long long)t1, v1, b,
						(long long)t2, v2);
				hits += a == 1;
			}
	CHECK_EQ_INT(bad, 0);
	return hits;
}

static void test_last_point(void)
{
	struct store_config cfg;
	store_config_defaults(&cfg);
	cfg.flush_interval_ms = 3600 * 1000;  /* flushed only when asked */
	struct store *s = open_fresh(&cfg);
	if (!s)
		return;
	int64_t t0 = 1700000000000LL;
	uint32_t ids[4] = { add_series(s, "a", "steady"), add_series(s, "a", "stale"),
			    add_series(s, "a", "gappy"), add_series(s, "a", "sparse") };
	/* 2,000 s: a sample a second (chunks of 240 seal on the way), one
	 * that goes stale half way and comes back, one with a 10-minute gap,
	 * one a sample a minute. */
	for (int i = 0; i < 2000; i++) {
		int64_t t = t0 + i * 1000LL + (i % 7);
		store_append(s, ids[0], t, i * 1.5);
		if (i == 1000)
			store_append(s, ids[1], t, promql_stale_nan());
		else if (i < 1000 || i > 1300)
			store_append(s, ids[1], t, -i);
		if (i < 600 || i > 1200)
			store_append(s, ids[2], t, i % 13);
		if (i % 60 == 0)
			store_append(s, ids[3], t, i * 0.001);
	}
	int64_t from = t0 - 5000, to = t0 + 2010000;
	CHECK(check_last(s, ids, 4, from, to) > 0);          /* open and pending chunks */
	store_seal_all(s);
	CHECK_EQ_INT(store_flush(s), 0);
	CHECK(check_last(s, ids, 4, from, to) > 0);          /* all in SQLite, newest noted */
	/* More in the head on top of what is on disk. */
	for (int i = 2000; i < 2100; i++)
		for (int k = 0; k < 4; k++)
			store_append(s, ids[k], t0 + i * 1000LL, i);
	to += 100000;
	CHECK(check_last(s, ids, 4, from, to) > 0);
	store_close(s);
	/* Reopened: the newest point on disk is learnt by the first read. */
	struct store *r = NULL;
	char err[512];
	CHECK_EQ_INT(store_open(&r, &cfg, err, sizeof(err)), 0);
	if (r) {
		CHECK(check_last(r, ids, 4, from, to + 1000) > 0);
		CHECK(check_last(r, ids, 4, from, to + 1000) > 0);
		int64_t t;
		double v;
		CHECK_EQ_INT(store_last_point(r, 999999, 0, 1, &t, &v), -ENOENT);
		store_close(r);
	}
	remove_dir();
}

int main(void)
{
	RUN(test_select_and_read);
	RUN(test_stale_markers_end_series);
	RUN(test_rollups_past_raw_retention);
	RUN(test_last_point);
	TEST_END();
}
