/*
 * test_promql_store.c - the PromQL engine over the real store (SQLite files
 * in a temporary directory): selection through the label index with
 * regexes translated from RE2, points from the head and from disk, stale
 * markers written by the store, and queries reaching back past the raw
 * retention, which read the 1 m and 1 h roll-ups instead.
 */
#include "storage/storage.h"

#include "tests/unit/test.h"

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

int main(void)
{
	RUN(test_select_and_read);
	RUN(test_stale_markers_end_series);
	RUN(test_rollups_past_raw_retention);
	TEST_END();
}
