/*
 * test_store.c - the store end to end on real SQLite files in a temporary
 * directory: append and read back, label matchers, reopen (sealed and open
 * chunks survive), out-of-order refusal, roll-up tiers, staleness from
 * snapshots, retention by age and by size, a corrupt file moved aside, the
 * directory lock, and import.
 */
#include "collectors/collector.h"
#include "storage/internal.h"
#include "tests/unit/test.h"

#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>
#include <errno.h>
#include <unistd.h>

static char dir[256];

static void fresh_dir(void)
{
	char cmd[300];
	if (dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "rm failed\n");
	}
	snprintf(dir, sizeof(dir), "/tmp/monitor-test-store-XXXXXX");
	if (!mkdtemp(dir))
		abort();
}

static struct store *open_store(struct store_config *cfg)
{
	struct store_config c;
	if (!cfg) {
		store_config_defaults(&c);
		cfg = &c;
	}
	snprintf(cfg->dir, sizeof(cfg->dir), "%s", dir);
	struct store *s = NULL;
	char err[512];
	int rc = store_open(&s, cfg, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "  store_open: %s\n", err);
	return s;
}

static uint32_t series(struct store *s, const char *name, const char *k1, const char *v1,
		       const char *k2, const char *v2)
{
	struct store_label l[3] = { { "__name__", name }, { k1, v1 }, { k2, v2 } };
	uint32_t id = 0;
	CHECK_EQ_INT(store_series(s, l, k2 ? 3 : k1 ? 2 : 1, STORE_GAUGE, &id), 0);
	return id;
}

/* Reads a series at a tier into t/v; returns the number of points. */
static size_t readback(struct store *s, uint32_t id, enum store_tier tier, int64_t mint,
		       int64_t maxt, int64_t *t, struct store_point *p, size_t max)
{
	struct store_iter *it;
	if (store_iter_open(s, id, tier, mint, maxt, &it) < 0)
		return 0;
	size_t n = 0;
	struct store_point pt;
	while (store_iter_next(it, &pt) > 0) {
		if (n < max) {
			if (t)
				t[n] = pt.t;
			if (p)
				p[n] = pt;
		}
		n++;
	}
	store_iter_free(it);
	return n;
}

/* How many series sel matches in [mint, maxt]; *min_t and *max_t are the
 * bounds of the first (when it matches any). */
static size_t select_in(struct store *s, const char *sel, int64_t mint, int64_t maxt,
			int64_t *min_t, int64_t *max_t)
{
	struct store_matcher m[8];
	char err[256];
	int n = store_parse_selector(sel, m, 8, err, sizeof(err));
	if (n < 0)
		return (size_t)-1;
	struct store_series_set set;
	size_t count = (size_t)-1;
	if (store_select(s, m, (size_t)n, mint, maxt, &set) == 0) {
		count = set.n;
		if (set.n && min_t)
			*min_t = set.series[0].min_t;
		if (set.n && max_t)
			*max_t = set.series[0].max_t;
		store_series_set_free(&set);
	}
	for (int i = 0; i < n; i++)
		store_matcher_fini(&m[i]);
	return count;
}

static size_t select_count(struct store *s, const char *sel)
{
	return select_in(s, sel, INT64_MIN, INT64_MAX, NULL, NULL);
}

static void test_append_select(void)
{
	fresh_dir();
	struct store *s = open_store(NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	uint32_t a = series(s, "m", "job", "a", "inst", "1");
	uint32_t b = series(s, "m", "job", "b", NULL, NULL);
	uint32_t c = series(s, "other", "job", "a", NULL, NULL);
	CHECK(a != b && b != c);
	CHECK_EQ_INT(series(s, "m", "inst", "1", "job", "a"), a); /* label order does not matter */
	for (int i = 1; i <= 1000; i++) {
		CHECK_EQ_INT(store_append(s, a, i * 1000LL, i), 0);
		CHECK_EQ_INT(store_append(s, b, i * 1000LL, -i * 0.5), 0);
		CHECK_EQ_INT(store_append(s, c, i * 1000LL, 7), 0);
	}
	int64_t t[2000];
	struct store_point p[2000];
	CHECK_EQ_INT(readback(s, a, STORE_TIER_RAW, INT64_MIN, INT64_MAX, t, p, 2000), 1000);
	CHECK_EQ_INT(t[999], 1000000);
	CHECK_EQ_DBL(p[499].v, 500);
	CHECK_EQ_INT(readback(s, b, STORE_TIER_RAW, 100000, 199999, t, p, 2000), 100);
	CHECK_EQ_DBL(p[0].v, -50);

	/* The batch path returns exactly what the point path does. */
	struct store_iter *it;
	CHECK_EQ_INT(store_iter_open(s, a, STORE_TIER_RAW, 250500, 900000, &it), 0);
	int64_t bt[100];
	double bv[100];
	size_t nb = 0;
	ssize_t k;
	bool same = true;
	while ((k = store_iter_batch(it, bt, bv, 37)) > 0) {
		for (ssize_t j = 0; j < k; j++, nb++)
			same = same && bt[j] == 251000 + (int64_t)nb * 1000 && bv[j] == 251 + (double)nb;
	}
	CHECK(same);
	CHECK_EQ_INT(nb, 650);
	store_iter_free(it);

	CHECK_EQ_INT(select_count(s, "m{job=\"a\"}"), 1);
	CHECK_EQ_INT(select_count(s, "{job=~\"a|b\"}"), 3);
	CHECK_EQ_INT(select_count(s, "m{job!=\"a\"}"), 1);
	CHECK_EQ_INT(select_count(s, "{__name__=~\"m|other\",job!~\"b\"}"), 2);
	CHECK_EQ_INT(select_count(s, "m{inst=\"\"}"), 1);      /* no inst label */
	CHECK_EQ_INT(select_count(s, "m{inst=~\"1|\"}"), 2);
	CHECK_EQ_INT(select_count(s, "{job=~\"a.*\"}"), 2);
	CHECK_EQ_INT(select_count(s, "{job=~\"^a\"}"), 2);     /* anchoring is ours */
	CHECK_EQ_INT(select_count(s, "{job=~\"x\"}"), 0);
	CHECK_EQ_INT(select_count(s, "m"), 2);
	struct store_matcher m[2];
	char err[256];
	CHECK(store_parse_selector("m{job=~\"(\"}", m, 2, err, sizeof(err)) < 0);
	CHECK(strstr(err, "regular expression") != NULL);
	CHECK(store_parse_selector("m{job=\"a\"", m, 2, err, sizeof(err)) < 0);

	char **v;
	ssize_t n = store_label_values(s, "job", NULL, 0, &v);
	CHECK_EQ_INT(n, 2);
	if (n == 2) {
		CHECK_STR(v[0], "a");
		CHECK_STR(v[1], "b");
	}
	free(v);
	n = store_label_names(s, NULL, 0, &v);
	CHECK_EQ_INT(n, 3); /* __name__, inst, job */
	free(v);

	/* Out of order: refused, counted, the series unharmed. */
	CHECK_EQ_INT(store_append(s, a, 500000, 1), -EEXIST);
	CHECK_EQ_INT(store_append(s, a, 1000000, 1), -EEXIST);
	struct store_stats st;
	store_stats(s, &st);
	CHECK_EQ_INT(st.out_of_order, 2);
	CHECK_EQ_INT(readback(s, a, STORE_TIER_RAW, INT64_MIN, INT64_MAX, t, p, 2000), 1000);
	store_close(s);
}

/* store_stats_recent: the head's memory from a walk kept up to its age,
 * then walked again and grown; the counters are current at every call. */
static void test_stats_recent(void)
{
	fresh_dir();
	struct store *s = open_store(NULL);
	if (!s)
		return;
	struct store_stats a, b, c, fresh;
	store_stats_recent(s, &a, 200);
	char v[16];
	for (int i = 0; i < 200; i++) {
		snprintf(v, sizeof(v), "%d", i);
		store_append(s, series(s, "m", "i", v, NULL, NULL), 1000, i);
	}
	store_stats_recent(s, &b, 200);           /* within the age: the old walk */
	CHECK_EQ_INT(b.head_bytes, a.head_bytes);
	CHECK_EQ_INT(b.samples_appended, 200);
	CHECK_EQ_INT(b.series, 200);
	usleep(250000);
	store_stats_recent(s, &c, 200);           /* past it: walked again */
	store_stats(s, &fresh);                     /* walked now */
	CHECK(fresh.head_bytes > a.head_bytes);
	CHECK(fresh.head_raw_bytes > a.head_raw_bytes);
	CHECK_EQ_INT(c.head_bytes, fresh.head_bytes);
	CHECK_EQ_INT(c.head_raw_bytes, fresh.head_raw_bytes);
	store_close(s);
}

static void test_reopen(void)
{
	fresh_dir();
	struct store *s = open_store(NULL);
	if (!s)
		return;
	uint32_t a = series(s, "m", "job", "a", NULL, NULL);
	/* 1000 samples: four sealed chunks and an open one. */
	for (int i = 1; i <= 1000; i++)
		store_append(s, a, i * 1000LL, i * 1.25);
	CHECK_EQ_INT(store_flush(s), 0);
	store_close(s); /* no stale marker: only snapshot series are "active" */
	s = open_store(NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK_EQ_INT(select_count(s, "m{job=\"a\"}"), 1);
	int64_t t[2000];
	struct store_point p[2000];
	size_t n = readback(s, a, STORE_TIER_RAW, INT64_MIN, INT64_MAX, t, p, 2000);
	CHECK_EQ_INT(n, 1000);
	CHECK_EQ_DBL(p[999].v, 1250);
	/* The resumed chunk takes more samples; older ones are refused. */
	CHECK_EQ_INT(store_append(s, a, 2000LL, 1), -EEXIST);
	int64_t later = now_ms() + 1000;
	CHECK_EQ_INT(store_append(s, a, later, 99), 0);
	n = readback(s, a, STORE_TIER_RAW, INT64_MIN, INT64_MAX, t, p, 2000);
	CHECK_EQ_INT(n, 1001);
	CHECK_EQ_DBL(p[1000].v, 99);
	store_close(s);
}

/* A crash after a flush: the database files as they are then, copied while
 * the store is idle, open through the flush log (no checkpoint was made). */
static void test_crash_recovery(void)
{
	fresh_dir();
	struct store *s = open_store(NULL);
	if (!s)
		return;
	uint32_t a = series(s, "m", "job", "a", NULL, NULL);
	uint32_t g = series(s, "gone", "job", "b", NULL, NULL);
	int64_t base = 1700000000000LL - 1700000000000LL % 3600000;
	int i;
	for (i = 1; i <= 1000; i++)
		store_append(s, a, base + i * 1000LL, i % 60 + 0.5);
	store_append(s, g, base + 1000, 1);
	CHECK_EQ_INT(store_flush(s), 0);
	for (; i <= 1030; i++)
		store_append(s, a, base + i * 1000LL, i % 60 + 0.5);
	CHECK_EQ_INT(store_flush(s), 0);
	store_append(s, a, base + i * 1000LL, -1); /* after the last flush: lost */
	char copy[200], cmd[1600];
	snprintf(copy, sizeof(copy), "%.150s-copy", dir);
	snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir %s && cp %s/monitor.db %s/monitor.db-wal %s/",
		 copy, copy, dir, dir, copy);
	CHECK_EQ_INT(system(cmd), 0);
	store_close(s);
	char keep[256];
	snprintf(keep, sizeof(keep), "%s", dir);
	snprintf(dir, sizeof(dir), "%s", copy);
	s = open_store(NULL);
	CHECK(s != NULL);
	if (s) {
		int64_t t[2000];
		struct store_point p[2000];
		size_t n = readback(s, a, STORE_TIER_RAW, INT64_MIN, INT64_MAX, t, p, 2000);
		CHECK_EQ_INT(n, 1030);
		CHECK_EQ_INT(t[1029], base + 1030000);
		CHECK_EQ_DBL(p[1029].v, 1030 % 60 + 0.5);
		/* It goes on where it was; the roll-ups count every sample. */
		for (i = 1031; i <= 3600; i++)
			CHECK_EQ_INT(store_append(s, a, base + i * 1000LL, i % 60 + 0.5), 0);
		store_seal_all(s);
		static struct store_point r[100];
		n = readback(s, a, STORE_TIER_1M, INT64_MIN, INT64_MAX, NULL, r, 100);
		CHECK_EQ_INT(n, 60);
		bool all60 = true;
		for (size_t k = 0; k < n; k++)
			all60 = all60 && r[k].count == 60 && r[k].sum == 60 * 30 && r[k].min == 0.5;
		CHECK(all60);
		n = readback(s, a, STORE_TIER_1H, INT64_MIN, INT64_MAX, NULL, r, 100);
		CHECK_EQ_INT(n, 1);
		CHECK_EQ_DBL(r[0].count, 3600);
		CHECK_EQ_INT(readback(s, g, STORE_TIER_RAW, INT64_MIN, INT64_MAX, t, p, 10), 1);
		store_close(s);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", copy);
	CHECK_EQ_INT(system(cmd), 0);
	snprintf(dir, sizeof(dir), "%s", keep);
}

static void test_tiers(void)
{
	fresh_dir();
	struct store *s = open_store(NULL);
	if (!s)
		return;
	uint32_t a = series(s, "g", "job", "a", NULL, NULL);
	int64_t base = 1700000000000LL; /* a whole hour */
	base -= base % 3600000;
	/* Half, then a restart in the middle of a minute and of an hour: the
	 * open roll-up chunks and accumulators come back from the head rows. */
	for (int i = 1; i <= 3 * 1800 + 30; i++)
		store_append(s, a, base + i * 1000LL, (double)(i % 60));
	CHECK_EQ_INT(store_flush(s), 0);
	store_close(s);
	s = open_store(NULL);
	if (!s)
		return;
	for (int i = 3 * 1800 + 31; i <= 3 * 3600; i++)
		CHECK_EQ_INT(store_append(s, a, base + i * 1000LL, (double)(i % 60)), 0);
	store_seal_all(s);
	store_flush(s);
	static struct store_point p[400];
	size_t n = readback(s, a, STORE_TIER_1M, INT64_MIN, INT64_MAX, NULL, p, 400);
	CHECK_EQ_INT(n, 180);
	/* A bucket covers (t-60s, t]: values 1..59 and 0. */
	CHECK_EQ_INT(p[0].t, base + 60000);
	CHECK_EQ_DBL(p[0].count, 60);
	CHECK_EQ_DBL(p[0].min, 0);
	CHECK_EQ_DBL(p[0].max, 59);
	CHECK_EQ_DBL(p[0].sum, 1770);
	CHECK_EQ_DBL(p[0].last, 0);
	n = readback(s, a, STORE_TIER_1H, INT64_MIN, INT64_MAX, NULL, p, 400);
	CHECK_EQ_INT(n, 3);
	CHECK_EQ_DBL(p[1].count, 3600);
	CHECK_EQ_DBL(p[1].sum, 1770 * 60);
	CHECK_EQ_INT(p[2].t, base + 3 * 3600000LL);
	/* The writer merges the small sealed roll-up chunks, points unchanged. */
	struct store_disk_usage u;
	CHECK_EQ_INT(store_disk_usage(s, &u), 0);
	CHECK_EQ_INT(u.tier_chunks[STORE_TIER_1M], 180 / STORE_TIER_OPEN_POINTS_1M);
	store_close(s);
	struct store_config cfg;
	store_config_defaults(&cfg);
	for (int k = 0; k < STORE_TIER__COUNT; k++)
		cfg.retention_ms[k] = 0;
	s = open_store(&cfg);
	if (!s)
		return;
	/* Sealed before the stop: the first pass after the start merges them. */
	CHECK_EQ_INT(store_retention_run(s, base), 0);
	CHECK_EQ_INT(store_disk_usage(s, &u), 0);
	CHECK_EQ_INT(u.tier_chunks[STORE_TIER_1M], 2);
	n = readback(s, a, STORE_TIER_1M, INT64_MIN, INT64_MAX, NULL, p, 400);
	CHECK_EQ_INT(n, 180);
	CHECK_EQ_DBL(p[179].count, 60);
	CHECK_EQ_DBL(p[100].sum, 1770);
	CHECK_EQ_INT(p[179].t, base + 3 * 3600000LL);
	CHECK_EQ_INT(store_tier_for_step(15000), STORE_TIER_RAW);
	CHECK_EQ_INT(store_tier_for_step(300000), STORE_TIER_1M);
	CHECK_EQ_INT(store_tier_for_step(86400000), STORE_TIER_1H);
	store_close(s);
}

/* A snapshot with containers (name, value) as the sink builds them. */
static struct snapshot *snap(int64_t t, const char *const *names, const double *vals, size_t n)
{
	struct coll_sink sink;
	sink_open(&sink, t);
	for (size_t i = 0; i < n; i++) {
		struct coll_container c;
		memset(&c, 0, sizeof(c));
		snprintf(c.id, sizeof(c.id), "%s", names[i]);
		char cg[64], labels[256];
		snprintf(cg, sizeof(cg), "/docker/%s", names[i]);
		snprintf(labels, sizeof(labels), "id=\"/docker/%s\",name=\"%s\",image=\"busy\\\"box\"",
			 names[i], names[i]);
		c.cgroup = cg;
		c.prom_labels = labels;
		sink_begin_container(&sink, &c, 0);
		sink_emit(&sink, M_MEM_USAGE, NULL, vals[i]);
		sink_emit(&sink, M_CPU_USAGE, "cpu=\"total\"", vals[i] / 1e3);
	}
	sink_begin_agent(&sink);
	sink_emit(&sink, M_AGENT_TICKS, NULL, (double)t);
	return sink_close(&sink);
}

static void test_snapshots_and_staleness(void)
{
	fresh_dir();
	struct store *s = open_store(NULL);
	if (!s)
		return;
	const char *both[] = { "web", "db" }, *one[] = { "web" };
	double v2[] = { 100, 200 }, v1[] = { 101 };
	int64_t t0 = 1700000000000LL;
	for (int i = 0; i < 5; i++) {
		struct snapshot *x = snap(t0 + i * 1000 + (i == 3 ? 7 : 0), both, v2, 2);
		store_append_snapshot(s, x);
		snapshot_unref(x);
	}
	struct snapshot *x = snap(t0 + 5000, one, v1, 1);
	store_append_snapshot(s, x);
	snapshot_unref(x);
	CHECK_EQ_INT(select_count(s, "container_memory_usage_bytes"), 2);
	CHECK_EQ_INT(select_count(s, "container_cpu_usage_seconds_total{cpu=\"total\",name=\"db\"}"), 1);
	CHECK_EQ_INT(select_count(s, "{image=\"busy\\\"box\"}"), 4);
	CHECK_EQ_INT(select_count(s, "monitor_ticks_total"), 1);
	struct store_matcher m[2];
	char err[128];
	store_parse_selector("container_memory_usage_bytes{name=\"db\"}", m, 2, err, sizeof(err));
	struct store_series_set set;
	CHECK_EQ_INT(store_select(s, m, 2, INT64_MIN, INT64_MAX, &set), 0);
	store_matcher_fini(&m[0]);
	store_matcher_fini(&m[1]);
	CHECK_EQ_INT(set.n, 1);
	if (set.n == 1) {
		int64_t t[10];
		struct store_point p[10];
		size_t n = readback(s, set.series[0].id, STORE_TIER_RAW, INT64_MIN, INT64_MAX, t, p, 10);
		CHECK_EQ_INT(n, 6);
		/* The 7 ms late tick was aligned onto the 1 s grid. */
		CHECK_EQ_INT(t[3], t0 + 3000);
		CHECK(store_is_stale(p[5].v));
		CHECK_EQ_INT(t[5], t0 + 5000);
	}
	store_series_set_free(&set);
	struct store_stats st;
	store_stats(s, &st);
	CHECK_EQ_INT(st.active_series, 3);
	store_close(s);
}

/* Series stale for evict_stale_after leave memory once written out; they
 * stay selectable and readable from SQLite (also after a restart), their
 * label values stay listed, and a container that comes back gets its old
 * ids again, its old and new points in one series. */
static void append_snap(struct store *s, int64_t t, const char *const *names, const double *v,
			size_t n)
{
	struct snapshot *x = snap(t, names, v, n);
	store_append_snapshot(s, x);
	snapshot_unref(x);
}

static size_t db_points(struct store *s, uint32_t *id)
{
	struct store_matcher m[2];
	char err[128];
	store_parse_selector("container_memory_usage_bytes{name=\"db\"}", m, 2, err, sizeof(err));
	struct store_series_set set;
	size_t n = 0;
	if (store_select(s, m, 2, INT64_MIN, INT64_MAX, &set) == 0 && set.n == 1) {
		*id = set.series[0].id;
		n = readback(s, *id, STORE_TIER_RAW, INT64_MIN, INT64_MAX, NULL, NULL, 0);
	}
	store_series_set_free(&set);
	store_matcher_fini(&m[0]);
	store_matcher_fini(&m[1]);
	return n;
}

/* The 1 m roll-up of db (a container that left) is closed by the first
 * snapshot past its bucket's end and not before, also for a bucket opened
 * by a return after the sweep had planned its next visit. */
static bool db_tier_open(struct store *s)
{
	uint32_t id = 0;
	db_points(s, &id);
	pthread_rwlock_rdlock(&s->lock);
	struct series *se = id ? series_by_id(s, id) : NULL;
	bool open = se && se->tier[0];
	pthread_rwlock_unlock(&s->lock);
	return open;
}

static void test_idle_buckets_closed_when_due(void)
{
	fresh_dir();
	struct store *s = open_store(NULL);
	if (!s)
		return;
	const char *both[] = { "web", "db" }, *one[] = { "web" };
	double v2[] = { 100, 200 }, v1[] = { 101 };
	int64_t t0 = 28333334LL * 60000; /* a minute's start */
	for (int i = 0; i <= 60; i++)
		append_snap(s, t0 + i * 1000, i < 6 ? both : one, i < 6 ? v2 : v1, i < 6 ? 2 : 1);
	CHECK(db_tier_open(s));          /* its minute ends at t0 + 60 s, not yet passed */
	append_snap(s, t0 + 61000, one, v1, 1);
	CHECK(!db_tier_open(s));         /* closed at the first snapshot past it */
	/* back for a tick in the next minute, gone again */
	for (int i = 62; i <= 120; i++)
		append_snap(s, t0 + i * 1000, i == 62 ? both : one, i == 62 ? v2 : v1, i == 62 ? 2 : 1);
	CHECK(db_tier_open(s));
	append_snap(s, t0 + 121000, one, v1, 1);
	CHECK(!db_tier_open(s));
	store_close(s);
}

static bool lists_db(struct store *s)
{
	char **v;
	ssize_t n = store_label_values(s, "name", NULL, 0, &v);
	bool found = false;
	for (ssize_t i = 0; i < n; i++)
		found |= !strcmp(v[i], "db");
	free(v);
	return found;
}

static void test_stale_series_leave_memory(void)
{
	fresh_dir();
	struct store_config cfg;
	store_config_defaults(&cfg);
	cfg.evict_stale_after_ms = 100;
	struct store *s = open_store(&cfg);
	if (!s)
		return;
	const char *both[] = { "web", "db" }, *one[] = { "web" };
	double v2[] = { 100, 200 }, v1[] = { 101 };
	struct store_stats st;
	int64_t t0 = now_ms() - 120000;
	for (int i = 0; i < 5; i++)
		append_snap(s, t0 + i * 1000, both, v2, 2);
	append_snap(s, t0 + 5000, one, v1, 1);     /* db goes: stale markers */
	uint32_t id0 = 0;
	CHECK_EQ_INT(db_points(s, &id0), 6);
	CHECK_EQ_INT(store_flush(s), 0);
	store_stats(s, &st);
	CHECK_EQ_INT(st.evicted, 0);               /* not stale for long enough */
	usleep(150 * 1000);
	/* The first flush seals db's roll-ups, the second writes them and evicts. */
	CHECK_EQ_INT(store_flush(s), 0);
	CHECK_EQ_INT(store_flush(s), 0);
	store_stats(s, &st);
	CHECK_EQ_INT(st.evicted, 2);
	CHECK_EQ_INT(st.series, 3);                /* web's two and the agent's */
	uint32_t id = 0;
	CHECK_EQ_INT(db_points(s, &id), 6);        /* from SQLite alone */
	CHECK_EQ_INT(id, id0);
	CHECK_EQ_INT(select_count(s, "container_memory_usage_bytes"), 2);
	CHECK_EQ_INT(select_count(s, "{name=\"db\"}"), 2);
	CHECK(lists_db(s));
	int64_t t[8];
	CHECK(readback(s, id, STORE_TIER_1M, INT64_MIN, INT64_MAX, t, NULL, 8) >= 1);
	/* A query whose range starts after db's data does not find it. */
	struct store_matcher m[1];
	char err[128];
	store_parse_selector("{name=\"db\"}", m, 1, err, sizeof(err));
	struct store_series_set set;
	CHECK_EQ_INT(store_select(s, m, 1, t0 + 60000, INT64_MAX, &set), 0);
	CHECK_EQ_INT(set.n, 0);
	store_series_set_free(&set);
	store_matcher_fini(&m[0]);

	/* After a restart it is not loaded, and still found. */
	store_close(s);
	s = open_store(&cfg);
	if (!s)
		return;
	store_stats(s, &st);
	CHECK_EQ_INT(st.series, 3);
	CHECK_EQ_INT(db_points(s, &id), 6);
	CHECK_EQ_INT(id, id0);
	CHECK(lists_db(s));

	/* db comes back: the same series, old points and new. */
	int64_t t1 = t0 + 20000;
	for (int i = 0; i < 3; i++)
		append_snap(s, t1 + i * 1000, both, v2, 2);
	CHECK_EQ_INT(db_points(s, &id), 9);
	CHECK_EQ_INT(id, id0);
	CHECK_EQ_INT(select_count(s, "container_memory_usage_bytes"), 2);
	CHECK_EQ_INT(store_flush(s), 0);
	store_close(s);
	s = open_store(&cfg);
	if (!s)
		return;
	/* Its row says it is in memory again: loaded, with every point. */
	store_stats(s, &st);
	CHECK_EQ_INT(st.series, 5);
	CHECK_EQ_INT(db_points(s, &id), 10);       /* and the stale marker of the stop */
	CHECK_EQ_INT(id, id0);
	/* Out of memory again; appending by id (rules, import) brings it back. */
	usleep(150 * 1000);
	CHECK_EQ_INT(store_flush(s), 0);
	CHECK_EQ_INT(store_flush(s), 0);
	store_stats(s, &st);
	CHECK_EQ_INT(st.series, 0);
	CHECK_EQ_INT(store_append(s, id0, now_ms(), 7), 0);
	CHECK_EQ_INT(db_points(s, &id), 11);
	store_close(s);
}

/* Points of series id in chunks_1h rows at time t, straight from the file. */
static int rows_1h_at(uint32_t id, int64_t t)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/monitor.db", dir);
	sqlite3 *db;
	sqlite3_stmt *st;
	int n = 0;
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT data FROM chunks_1h WHERE series_id=?", -1, &st,
			       NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return -1;
	}
	sqlite3_bind_int64(st, 1, id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct cdec d;
		int64_t pt;
		double v[CODEC_MAX_COLS];
		if (cdec_init(&d, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0)) < 0)
			continue;
		while (cdec_next(&d, &pt, v) > 0)
			n += pt == t;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* The 1 h point of db's memory series at end: exactly one, with count and
 * max as given, through the iterator and the engine's read. */
static void check_hour_point(struct store *s, uint32_t id, int64_t end, double count, double max)
{
	struct store_point p[4];
	int64_t t[4];
	CHECK_EQ_INT(readback(s, id, STORE_TIER_1H, end - 3600000 + 1, end, t, p, 4), 1);
	CHECK_EQ_INT(t[0], end);
	CHECK_EQ_DBL(p[0].count, count);
	CHECK_EQ_DBL(p[0].max, max);
	CHECK_EQ_DBL(p[0].last, max);
	struct promql_points got = { 0 };
	CHECK_EQ_INT(store_read_points(s, id, STORE_TIER_1H, end - 3600000 + 1, end, &got), 0);
	CHECK_EQ_INT(got.n, 1);
	if (got.n == 1)
		CHECK_EQ_DBL(got.p[0].v, max);
	promql_points_fini(&got);
}

/* A fresh store whose series leave memory after evict_ms stale. */
static struct store *open_evicting(int64_t evict_ms)
{
	fresh_dir();
	struct store_config cfg;
	store_config_defaults(&cfg);
	cfg.evict_stale_after_ms = evict_ms;
	return open_store(&cfg);
}

/* Churn: ids only grow, but the table of series by id keeps no room for
 * those that left memory (its pages of them are freed), and every one is
 * still found, by id and by labels. */
static void test_churned_ids_leave_no_table(void)
{
	struct store *s = open_evicting(100);
	if (!s)
		return;
	int64_t t0 = now_ms() - 120000;
	char name[32];
	const char *one[1] = { name };
	double v[1] = { 7 };
	for (int i = 0; i < 3 * (int)ID_PAGE; i++) {
		snprintf(name, sizeof(name), "churn%d", i);
		append_snap(s, t0 + i, one, v, 1);
	}
	const char *none[1] = { "web" };
	append_snap(s, t0 + 3 * ID_PAGE, none, v, 1);
	struct store_stats st;
	store_stats(s, &st);
	uint32_t ids_made = s->next_id;
	CHECK(ids_made > 6 * ID_PAGE);              /* two series a container */
	CHECK(s->byid_pages > 6);
	usleep(150 * 1000);
	CHECK_EQ_INT(store_flush(s), 0);
	CHECK_EQ_INT(store_flush(s), 0);
	store_stats(s, &st);
	CHECK_EQ_INT(st.evicted, 6 * ID_PAGE);
	CHECK(s->byid_pages <= 2);                  /* web's, the agent's (new ids) */
	size_t in_memory = 0;
	struct series *se;
	for (uint32_t id = 0; (se = series_next(s, &id)); id++)
		in_memory++;
	CHECK_EQ_INT(in_memory, st.series);
	CHECK_EQ_INT(select_count(s, "{name=~\"churn.*\"}"), 6 * ID_PAGE);
	/* The first one comes back by id (as rules and import append). */
	pthread_rwlock_wrlock(&s->lock);
	bool gone = series_by_id(s, 1) == NULL;
	se = series_get_id(s, 1);
	bool back = se && se->id == 1 && series_by_id(s, 1) == se;
	pthread_rwlock_unlock(&s->lock);
	CHECK(gone);
	CHECK(back);
	/* A restart loads what is in memory, its ids far apart: web's open
	 * chunk (newest ids) comes back whole from the head rows. */
	int64_t t_last = t0 + 3 * ID_PAGE + 2000;
	append_snap(s, t_last - 1000, none, v, 1);
	append_snap(s, t_last, none, v, 1);
	store_stats(s, &st);
	uint64_t before = st.series;
	store_close(s);
	struct store_config cfg;
	store_config_defaults(&cfg);
	cfg.evict_stale_after_ms = 100;
	s = open_store(&cfg);
	if (!s)
		return;
	store_stats(s, &st);
	CHECK_EQ_INT(st.series, before);
	CHECK(s->byid_pages <= 2);
	int64_t web_max = INT64_MIN;
	CHECK_EQ_INT(select_in(s, "container_memory_usage_bytes{name=\"web\"}", INT64_MIN, INT64_MAX,
			       NULL, &web_max), 1);
	CHECK(web_max >= t_last);  /* and a stale marker of the stop after it */
	store_close(s);
}

/* A container that leaves memory and comes back within the same hour: its
 * 1 h bucket goes on from the point written when it left, so the hour has
 * one point holding both stays (not a second one at the same time), in
 * memory, in SQLite and after a restart. */
static void test_evicted_series_returns_same_hour(void)
{
	fresh_dir();
	struct store_config cfg;
	store_config_defaults(&cfg);
	cfg.evict_stale_after_ms = 100;
	struct store *s = open_store(&cfg);
	if (!s)
		return;
	const char *both[] = { "web", "db" }, *one[] = { "web" };
	double first[] = { 100, 200 }, back[] = { 100, 300 };
	int64_t hour = 3600000, base = (now_ms() / hour - 3) * hour, end = base + hour;
	int64_t t0 = base + 600000;
	for (int i = 0; i < 5; i++)
		append_snap(s, t0 + i * 1000, both, first, 2);
	append_snap(s, t0 + 5000, one, first, 1);  /* db goes */
	uint32_t id = 0;
	CHECK_EQ_INT(db_points(s, &id), 6);
	usleep(150 * 1000);
	CHECK_EQ_INT(store_flush(s), 0);
	CHECK_EQ_INT(store_flush(s), 0);
	struct store_stats st;
	store_stats(s, &st);
	CHECK_EQ_INT(st.evicted, 2);
	CHECK_EQ_INT(rows_1h_at(id, end), 1);       /* its partial hour, written as it left */
	check_hour_point(s, id, end, 5, 200);

	for (int i = 0; i < 3; i++)                  /* back, 10 minutes on */
		append_snap(s, t0 + 600000 + i * 1000, both, back, 2);
	uint32_t id2 = 0;
	CHECK_EQ_INT(db_points(s, &id2), 9);
	CHECK_EQ_INT(id2, id);
	check_hour_point(s, id, end, 5, 200);       /* still the stored one */
	CHECK_EQ_INT(store_flush(s), 0);            /* the writer drops it */
	CHECK_EQ_INT(rows_1h_at(id, end), 0);
	struct store_point p[2];
	CHECK_EQ_INT(readback(s, id, STORE_TIER_1H, INT64_MIN, INT64_MAX, NULL, p, 2), 0);
	append_snap(s, end + 1000, both, back, 2);  /* the hour closes */
	check_hour_point(s, id, end, 8, 300);
	CHECK_EQ_INT(store_flush(s), 0);
	CHECK_EQ_INT(store_flush(s), 0);
	check_hour_point(s, id, end, 8, 300);
	store_seal_all(s);
	CHECK_EQ_INT(store_flush(s), 0);
	CHECK_EQ_INT(rows_1h_at(id, end), 1);
	check_hour_point(s, id, end, 8, 300);
	store_close(s);
	s = open_store(&cfg);
	if (!s)
		return;
	CHECK_EQ_INT(rows_1h_at(id, end), 1);
	check_hour_point(s, id, end, 8, 300);
	store_close(s);
}

/* Queries on other threads while one thread appends and the writer flushes:
 * every read sees whole, ordered series. */
struct reader_arg {
	struct store *s;
	int stop;                /* atomic */
	int reads, bad;          /* read after join */
};

static void *reader_main(void *p)
{
	struct reader_arg *a = p;
	while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
		struct store_matcher m;
		char err[64];
		store_matcher_init(&m, STORE_MATCH_RE, "__name__", "c.*", err, sizeof(err));
		struct store_series_set set;
		if (store_select(a->s, &m, 1, INT64_MIN, INT64_MAX, &set) == 0) {
			for (size_t i = 0; i < set.n; i++) {
				struct store_iter *it;
				if (store_iter_open(a->s, set.series[i].id, STORE_TIER_RAW, INT64_MIN,
						    INT64_MAX, &it) < 0)
					continue;
				struct store_point p0;
				int64_t last = INT64_MIN;
				double lastv = -1;
				while (store_iter_next(it, &p0) > 0) {
					/* values are the sample's second: strictly growing with t */
					if (p0.t <= last || p0.v != (double)(p0.t / 1000) || p0.v <= lastv)
						__atomic_add_fetch(&a->bad, 1, __ATOMIC_RELAXED);
					last = p0.t;
					lastv = p0.v;
				}
				store_iter_free(it);
				__atomic_add_fetch(&a->reads, 1, __ATOMIC_RELAXED);
			}
			store_series_set_free(&set);
		}
		store_matcher_fini(&m);
	}
	return NULL;
}

static void test_concurrent_readers(void)
{
	fresh_dir();
	struct store_config cfg;
	store_config_defaults(&cfg);
	cfg.flush_interval_ms = 20;
	struct store *s = open_store(&cfg);
	if (!s)
		return;
	struct reader_arg a = { .s = s };
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, reader_main, &a);
	uint32_t ids[20];
	for (int k = 0; k < 20; k++) {
		char inst[16];
		snprintf(inst, sizeof(inst), "%d", k);
		ids[k] = series(s, "c", "inst", inst, NULL, NULL);
	}
	for (int i = 1; i <= 3000; i++)
		for (int k = 0; k < 20; k++)
			store_append(s, ids[k], i * 1000LL, (double)i);
	/* Appending can finish before a reader is scheduled at all: let them
	 * read what is there (and the writer flush) before stopping them. */
	for (int w = 0; w < 5000 && __atomic_load_n(&a.reads, __ATOMIC_RELAXED) < 40; w++)
		usleep(1000);
	__atomic_store_n(&a.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK(a.reads > 0);
	CHECK_EQ_INT(a.bad, 0);
	int64_t t[3100];
	CHECK_EQ_INT(readback(s, ids[7], STORE_TIER_RAW, INT64_MIN, INT64_MAX, t, NULL, 3100), 3000);
	store_close(s);
}

static void fill(struct store *s, int nseries, int64_t from, int64_t step, int n)
{
	for (int k = 0; k < nseries; k++) {
		char inst[16];
		snprintf(inst, sizeof(inst), "%d", k);
		uint32_t id = series(s, "fill", "inst", inst, NULL, NULL);
		uint64_t x = (uint64_t)k * 2654435761u;
		for (int i = 0; i < n; i++) {
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
			store_append(s, id, from + i * step, (double)(x >> 40) / 7.0);
		}
	}
}

/* A reopened store knows when each series starts and ends exactly (its
 * first and last raw sample, on disk or in the head), so selections by time
 * (/api/v1/series, /api/v1/labels with start and end) leave out a series
 * before it began, as before the restart. (It used to take the first
 * chunk's end less the longest a chunk can span: up to 2 h early.) */
static void test_bounds_after_reopen(void)
{
	fresh_dir();
	struct store *s = open_store(NULL);
	if (!s)
		return;
	int64_t t0 = 1700000000123LL;
	uint32_t a = series(s, "late", "k", "v", NULL, NULL);
	for (int i = 0; i < 1000; i++)
		CHECK_EQ_INT(store_append(s, a, t0 + 1000LL * i, i), 0);
	store_seal_all(s);
	CHECK_EQ_INT(store_flush(s), 0);
	for (int i = 1000; i < 1100; i++)   /* and some in the head */
		CHECK_EQ_INT(store_append(s, a, t0 + 1000LL * i, i), 0);
	int64_t lo = 0, hi = 0;
	CHECK_EQ_INT(select_in(s, "late", t0 - 3600000, t0 - 1, NULL, NULL), 0);
	store_close(s);
	for (int round = 0; round < 2; round++) {
		s = open_store(NULL);
		CHECK(s != NULL);
		if (!s)
			return;
		CHECK_EQ_INT(select_in(s, "late", t0 - 3600000, t0 - 1, NULL, NULL), 0);
		CHECK_EQ_INT(select_in(s, "late", t0 - 7200000, t0 - 3600000, NULL, NULL), 0);
		CHECK_EQ_INT(select_in(s, "late", t0 - 1, t0, &lo, &hi), 1);
		CHECK_EQ_INT(lo, t0);
		/* Loaded with an open chunk, it ends as the store closes: its
		 * stale marker one of its intervals after its last sample. */
		CHECK_EQ_INT(hi, t0 + 1000LL * (1099 + round));
		store_close(s);
	}
}

static void test_retention_age(void)
{
	fresh_dir();
	struct store_config cfg;
	store_config_defaults(&cfg);
	cfg.retention_ms[STORE_TIER_RAW] = 2LL * 86400000;
	cfg.retention_ms[STORE_TIER_1M] = 5LL * 86400000;
	struct store *s = open_store(&cfg);
	if (!s)
		return;
	int64_t t0 = 1700000000000LL;
	/* 10 days at one sample a minute. */
	fill(s, 3, t0, 60000, 10 * 1440);
	uint32_t gone = series(s, "gone", "inst", "x", NULL, NULL);
	store_append(s, gone, t0, 1);
	store_seal_all(s);
	CHECK_EQ_INT(store_flush(s), 0);
	int64_t now = t0 + 10LL * 86400000;
	CHECK_EQ_INT(store_retention_run(s, now), 0);
	int64_t t[20000];
	size_t n = readback(s, 1, STORE_TIER_RAW, INT64_MIN, INT64_MAX, t, NULL, 20000);
	/* Raw keeps its last two days (whole chunks: a little more at most). */
	CHECK(n >= 2 * 1440 && n <= 2 * 1440 + STORE_CHUNK_SAMPLES);
	CHECK(t[0] >= now - 2LL * 86400000 - STORE_CHUNK_SAMPLES * 60000LL);
	size_t n1m = readback(s, 1, STORE_TIER_1M, INT64_MIN, INT64_MAX, t, NULL, 20000);
	CHECK(n1m >= 5 * 1440 && n1m <= 5 * 1440 + STORE_TIER_CHUNK_POINTS);
	size_t n1h = readback(s, 1, STORE_TIER_1H, INT64_MIN, INT64_MAX, t, NULL, 20000);
	CHECK(n1h >= 239 && n1h <= 241);
	/* A series whose data is all gone (the 1h tier is kept a year: drop it). */
	store_close(s);
	cfg.retention_ms[STORE_TIER_1H] = 3LL * 86400000;
	s = open_store(&cfg);
	if (!s)
		return;
	CHECK_EQ_INT(select_count(s, "gone"), 1);
	/* Raw points of the first days are gone: the series' start comes from
	 * its first 1 h bucket, within the hour before t0, not days earlier. */
	int64_t lo = 0;
	CHECK_EQ_INT(select_in(s, "fill{inst=\"1\"}", INT64_MIN, INT64_MAX, &lo, NULL), 1);
	CHECK(lo <= t0 && lo > t0 - 3600000);
	CHECK_EQ_INT(select_in(s, "fill", INT64_MIN, t0 - 3600000, NULL, NULL), 0);
	CHECK_EQ_INT(store_retention_run(s, now), 0);
	CHECK_EQ_INT(select_count(s, "gone"), 0);
	CHECK_EQ_INT(select_count(s, "fill"), 3);
	store_close(s);
	s = open_store(&cfg);
	if (s) {
		CHECK_EQ_INT(select_count(s, "gone"), 0);
		store_close(s);
	}
}

/* The newest raw point of the first series sel matches, into *t and *v. */
static void newest_raw(struct store *s, const char *sel, int64_t *t, double *v)
{
	struct store_matcher m[4];
	char err[128];
	int n = store_parse_selector(sel, m, 4, err, sizeof(err));
	struct store_series_set set = { 0 };
	*t = 0;
	if (n > 0 && store_select(s, m, (size_t)n, INT64_MIN, INT64_MAX, &set) == 0 && set.n) {
		struct store_iter *it;
		struct store_point p;
		if (store_iter_open(s, set.series[0].id, STORE_TIER_RAW, INT64_MIN, INT64_MAX,
				    &it) == 0) {
			while (store_iter_next(it, &p) > 0) {
				*t = p.t;
				*v = p.v;
			}
			store_iter_free(it);
		}
	}
	store_series_set_free(&set);
	for (int i = 0; i < n; i++)
		store_matcher_fini(&m[i]);
}

/* A store whose series still have open chunks from an earlier run (a
 * crash, series appended by id) is opened by `monitor import`: as it
 * closes, those series end where their next sample was due (one of their
 * own intervals after the last), not at the wall clock years after their
 * data; the imported history gets no marker. */
static void test_stale_marker_after_import(void)
{
	fresh_dir();
	struct store *s = open_store(NULL);
	if (!s)
		return;
	int64_t t0 = 1600000000000LL, last = t0 + 99 * 15000;
	uint32_t a = series(s, "old", "k", "v", NULL, NULL);
	for (int i = 0; i < 100; i++)
		CHECK_EQ_INT(store_append(s, a, t0 + 15000LL * i, i), 0);
	store_close(s);                 /* left open in the head rows */
	s = open_store(NULL);
	if (!s)
		return;
	char p[300], err[512];
	snprintf(p, sizeof(p), "%s/hist.prom", dir);
	FILE *f = fopen(p, "w");
	for (int i = 0; i < 10; i++)
		fprintf(f, "hist{k=\"v\"} %d %lld\n", i, (long long)(t0 + 60000LL * i));
	fclose(f);
	struct store_import_result r;
	CHECK_EQ_INT(store_import_file(s, p, &r, err, sizeof(err)), 0);
	CHECK_EQ_INT(r.samples, 10);
	store_close(s);
	s = open_store(NULL);
	if (!s)
		return;
	int64_t t;
	double v = 0;
	newest_raw(s, "old", &t, &v);
	CHECK(store_is_stale(v));
	CHECK_EQ_INT(t, last + 15000);
	newest_raw(s, "hist", &t, &v);
	CHECK_EQ_INT(t, t0 + 9 * 60000);
	CHECK_EQ_DBL(v, 9);
	int64_t lo, hi;
	CHECK_EQ_INT(select_in(s, "old", INT64_MIN, INT64_MAX, &lo, &hi), 1);
	CHECK_EQ_INT(hi, last + 15000);
	store_close(s);
}

static uint64_t dir_db_bytes(void)
{
	char p[300];
	struct stat a, b;
	snprintf(p, sizeof(p), "%s/monitor.db", dir);
	uint64_t n = stat(p, &a) == 0 ? (uint64_t)a.st_size : 0;
	snprintf(p, sizeof(p), "%s/monitor.db-wal", dir);
	return n + (stat(p, &b) == 0 ? (uint64_t)b.st_size : 0);
}

static void test_retention_size(void)
{
	fresh_dir();
	struct store_config cfg;
	store_config_defaults(&cfg);
	struct store *s = open_store(&cfg);
	if (!s)
		return;
	int64_t t0 = 1700000000000LL;
	fill(s, 50, t0, 10000, 20000); /* 50 series, 55 hours at 10 s, random values */
	store_seal_all(s);
	CHECK_EQ_INT(store_flush(s), 0);
	store_close(s);
	uint64_t full = dir_db_bytes();
	cfg.max_size_bytes = full / 2;
	cfg.retention_ms[STORE_TIER_RAW] = 0; /* no age limit: size alone */
	s = open_store(&cfg);
	if (!s)
		return;
	int64_t now = t0 + 20000LL * 10000;
	CHECK_EQ_INT(store_retention_run(s, now), 0);
	uint64_t after = dir_db_bytes();
	CHECK(after <= cfg.max_size_bytes);
	if (after > cfg.max_size_bytes)
		fprintf(stderr, "  %llu bytes after retention, limit %llu (was %llu)\n",
			(unsigned long long)after, (unsigned long long)cfg.max_size_bytes,
			(unsigned long long)full);
	/* The oldest went first: the newest samples are all there. */
	int64_t *t = malloc(20000 * sizeof(*t));
	size_t n = readback(s, 1, STORE_TIER_RAW, INT64_MIN, INT64_MAX, t, NULL, 20000);
	CHECK(n > 1000 && n < 20000);
	if (n && n <= 20000) {
		CHECK_EQ_INT(t[n - 1], t0 + 19999LL * 10000);
		CHECK(t[0] > t0);
	}
	free(t);
	store_stats(s, &(struct store_stats){ 0 });
	store_close(s);
}

static void test_corrupt_file(void)
{
	fresh_dir();
	char p[300];
	snprintf(p, sizeof(p), "%s/monitor.db", dir);
	FILE *f = fopen(p, "w");
	for (int i = 0; i < 5000; i++)
		fputs("this is not a database ", f);
	fclose(f);
	struct store *s = open_store(NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	uint32_t a = series(s, "m", NULL, NULL, NULL, NULL);
	CHECK_EQ_INT(store_append(s, a, 1000, 1), 0);
	CHECK_EQ_INT(store_flush(s), 0);
	store_close(s);
	DIR *d = opendir(dir);
	int aside = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "monitor.db.corrupt-", 19))
			aside++;
	closedir(d);
	CHECK_EQ_INT(aside, 1);
}

static void test_lock(void)
{
	fresh_dir();
	struct store *s = open_store(NULL);
	CHECK(s != NULL);
	struct store_config c;
	store_config_defaults(&c);
	snprintf(c.dir, sizeof(c.dir), "%s", dir);
	struct store *s2 = NULL;
	char err[512];
	CHECK_EQ_INT(store_open(&s2, &c, err, sizeof(err)), -EBUSY);
	CHECK(strstr(err, "another monitor process") != NULL);
	store_close(s);
}

static void test_import(void)
{
	fresh_dir();
	struct store *s = open_store(NULL);
	if (!s)
		return;
	char p[300];
	snprintf(p, sizeof(p), "%s/in.prom", dir);
	FILE *f = fopen(p, "w");
	fputs("# HELP x_total a counter\n# TYPE x_total counter\n"
	      "x_total{a=\"1\"} 3 2000\nx_total{a=\"1\"} 1 1000\n"
	      "x_total{a=\"2\",b=\"q\\\"uote\"} NaN 1000\n\ny 1e3 5000\ny{} +Inf 6000\n", f);
	fclose(f);
	struct store_import_result r;
	char err[512];
	CHECK_EQ_INT(store_import_file(s, p, &r, err, sizeof(err)), 0);
	CHECK_EQ_INT(r.samples, 5);
	CHECK_EQ_INT(r.series, 3);
	CHECK_EQ_INT(select_count(s, "x_total"), 2);
	CHECK_EQ_INT(select_count(s, "x_total{b=\"q\\\"uote\"}"), 1);
	CHECK_EQ_INT(select_count(s, "y"), 1);
	/* OpenMetrics: seconds, # EOF. */
	snprintf(p, sizeof(p), "%s/in.om", dir);
	f = fopen(p, "w");
	fputs("# TYPE z counter\nz_total 5 1700000000.5 # {trace=\"x\"} 1 1700000000\n"
	      "z_total 6 1700000001.5\n# EOF\n", f);
	fclose(f);
	CHECK_EQ_INT(store_import_file(s, p, &r, err, sizeof(err)), 0);
	CHECK_EQ_INT(r.samples, 2);
	CHECK_EQ_INT(select_count(s, "z_total"), 1);
	/* Errors name the line. */
	snprintf(p, sizeof(p), "%s/bad.prom", dir);
	f = fopen(p, "w");
	fputs("ok 1 1000\nno_ts 1\n", f);
	fclose(f);
	CHECK(store_import_file(s, p, &r, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "bad.prom:2: sample has no timestamp") != NULL);
	f = fopen(p, "w");
	fputs("bad{a=1} 1 1000\n", f);
	fclose(f);
	CHECK(store_import_file(s, p, &r, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, ":1: malformed labels") != NULL);
	store_close(s);
}

/* store_read_after, called after every few appends as the forecaster
 * calls it (with maxt now and then before the newest samples, and across
 * chunk cuts and flushes), returns exactly what an iterator over the same
 * range returns, bit for bit, and says -E2BIG past its max. */
static void read_after_case(bool follow)
{
	fresh_dir();
	struct store *s = open_store(NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	uint32_t id = series(s, "m", "k", "v", NULL, NULL);
	struct store_cursor *c = store_cursor_new();
	CHECK(c != NULL);
	if (follow)
		CHECK(store_cursor_follow(s, c, id) == 0);
	int64_t t0 = 1700000000000LL, t = t0, after = t0 - 1;
	uint64_t rng = 3;
	int64_t got_t[512], want_t[512];
	double got_v[512];
	struct store_point want[512];
	size_t mismatches = 0, reads = 0;
	for (int round = 0; round < 120; round++) {
		rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
		int k = 1 + (int)((rng >> 33) % 70);
		for (int i = 0; i < k; i++, t += 1000 + (int64_t)(rng >> 60)) {
			double v = round % 3 ? (double)(rng >> 40) / 7.0 : (double)(t / 1000 % 97);
			if (round == 50 && i == 0)
				v = store_stale_nan();
			store_append(s, id, t, v);
		}
		if (round % 40 == 39)
			store_flush(s);
		int64_t newest = t - 1000 - (int64_t)(rng >> 60);
		/* now and then half of the new ones past maxt: a batch of the
		 * fast decoder ends past it and is read again point by point */
		int64_t maxt = round % 7 == 3 ? newest - 2500 :
			       round % 7 == 5 ? newest - (int64_t)(k / 2) * 1000 : newest;
		ssize_t n = store_read_after(s, id, c, after, maxt, got_t, got_v, 512);
		size_t m = readback(s, id, STORE_TIER_RAW, after + 1, maxt, want_t, want, 512);
		reads++;
		if (n != (ssize_t)m) {
			mismatches++;
			continue;
		}
		for (size_t i = 0; i < m; i++)
			if (got_t[i] != want_t[i] || memcmp(&got_v[i], &want[i].v, sizeof(double)))
				mismatches++;
		if (m)
			after = got_t[m - 1];
	}
	CHECK_EQ_INT((int)mismatches, 0);
	CHECK(reads == 120);
	/* more than max: -E2BIG, and the cursor reads again from after */
	for (int i = 0; i < 20; i++, t += 1000)
		store_append(s, id, t, (double)i);
	CHECK(store_read_after(s, id, c, after, t, got_t, got_v, 5) == -E2BIG);
	CHECK(store_read_after(s, id, c, after, t, got_t, got_v, 512) == 20);
	CHECK(store_read_after(s, 999999, c, after, t, got_t, got_v, 512) == -ENOENT);
	struct store_stats st;
	store_stats(s, &st);
	if (!follow) {
		CHECK(st.samples_followed == 0);
	} else {
		/* most reads came from the copy: reads of up to 70 new samples,
		 * some past what the ring held, which went the ordinary way */
		CHECK(st.samples_followed > st.samples_appended / 2);
		/* one cursor follows a series at a time; a second one reads
		 * right, the ordinary way; once the first is freed it follows */
		struct store_cursor *c2 = store_cursor_new();
		CHECK(c2 && store_cursor_follow(s, c2, id) == 0);
		after = t - 1000;        /* the newest sample */
		CHECK(store_read_after(s, id, c2, after, after, got_t, got_v, 512) == 0);
		for (int i = 0; i < 3; i++, t += 1000)
			store_append(s, id, t, (double)i);
		CHECK(store_read_after(s, id, c2, after, t, got_t, got_v, 512) == 3);
		CHECK(got_t[2] == t - 1000 && got_v[2] == 2);
		store_stats(s, &st);
		uint64_t was = st.samples_followed;
		store_cursor_free(c);
		c = NULL;
		CHECK(store_read_after(s, id, c2, t - 1000, t - 1000, got_t, got_v, 512) == 0);
		for (int i = 0; i < 3; i++, t += 1000)
			store_append(s, id, t, (double)i);
		store_stats(s, &st);
		CHECK(st.samples_followed == was + 3);
		CHECK(store_read_after(s, id, c2, t - 4000, t, got_t, got_v, 512) == 3);
		CHECK(got_t[0] == t - 3000 && got_v[1] == 1);
		store_cursor_free(c2);
	}
	store_cursor_free(c);
	store_close(s);
}

static void test_read_after(void)
{
	read_after_case(false);
}

/* The same reads through a cursor that follows the series (the store copies
 * its samples as they are appended): the same points, bit for bit, across
 * chunk cuts, a stale marker, flushes and reads the copy could not hold. */
static void test_read_after_following(void)
{
	read_after_case(true);
}

/* store_last_point as of times at, between and before the newest samples
 * (the forecaster asks as of its slot, just before the newest tick), with
 * chunk cuts, a stale marker and flushes on the way, is the last point an
 * iterator over [mint, maxt] gives, bit for bit. */
static void test_last_point_between(void)
{
	fresh_dir();
	struct store *s = open_store(NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	uint32_t id = series(s, "m", "k", "v", NULL, NULL);
	int64_t t0 = 1700000000000LL, t = t0;
	int64_t want_t[512];
	struct store_point want[512];
	size_t bad = 0, asked = 0;
	for (int i = 0; i < 700; i++, t += 1000) {
		double v = i == 300 ? store_stale_nan() : (double)(i * 7 % 13) + 0.25 * i;
		store_append(s, id, t, v);
		if (i % 150 == 149)
			store_flush(s);
		int64_t ask[4][2] = { { t - 5000, t }, { t - 5000, t - 500 }, { t - 800, t - 1 },
				      { t - 20000, t - 1500 } };
		for (int k = 0; k < 4; k++) {
			int64_t gt = 0;
			double gv = 0;
			int rc = store_last_point(s, id, ask[k][0], ask[k][1], &gt, &gv);
			size_t m = readback(s, id, STORE_TIER_RAW, ask[k][0], ask[k][1], want_t, want,
					    512);
			asked++;
			if (rc != (m > 0) || (m && (gt != want_t[m - 1] ||
						    memcmp(&gv, &want[m - 1].v, sizeof(gv)))))
				bad++;
		}
	}
	CHECK_EQ_INT((int)bad, 0);
	CHECK(asked == 2800);
	store_close(s);
}

/* Compares store_read_points with an iterator over the same range, bit for
 * bit; returns how many points it gave (or -1 on a difference). */
static long read_points_same(struct store *s, uint32_t id, enum store_tier tier, int64_t mint,
			     int64_t maxt)
{
	static int64_t t[20000];
	static struct store_point p[20000];
	size_t n = readback(s, id, tier, mint, maxt, t, p, 20000);
	struct promql_points got = { 0 };
	CHECK_EQ_INT(promql_points_push(&got, 1, 2), 0); /* appended after what is there */
	CHECK_EQ_INT(store_read_points(s, id, tier, mint, maxt, &got), 0);
	long rc = (long)n;
	if (got.n != n + 1 || got.p[0].t != 1) {
		fprintf(stderr, "  [%lld, %lld]: %zu points, the iterator %zu\n", (long long)mint,
			(long long)maxt, got.n - 1, n);
		rc = -1;
	}
	for (size_t i = 0; rc >= 0 && i < n; i++) {
		uint64_t a, b;
		memcpy(&a, &got.p[i + 1].v, 8);
		memcpy(&b, &p[i].v, 8);
		if (got.p[i + 1].t != t[i] || a != b)
			rc = -1;
	}
	promql_points_fini(&got);
	return rc;
}

/* The engine's read (store_read_points: SQLite rows and head chunks decoded
 * where they lie) returns what an iterator returns, over ranges that cut
 * chunks anywhere, with data on disk, in the head and both, and when a
 * chunk is on disk twice (as when a reader sees a chunk both in the head and
 * in SQLite while the writer commits it), where it falls back to the
 * iterator's merge. */
static void test_read_points(void)
{
	fresh_dir();
	struct store *s = open_store(NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	uint32_t id = series(s, "m", "k", "v", NULL, NULL);
	int64_t t0 = 1700000000000LL;
	uint64_t rng = 7;
	double v = 100;
	for (int i = 0; i < 3000; i++) {
		rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
		v += (double)(rng >> 40) / 1e6;
		CHECK_EQ_INT(store_append(s, id, t0 + 1000LL * i + (int64_t)(rng >> 60), v), 0);
		if (i == 2000)
			CHECK_EQ_INT(store_flush(s), 0);   /* older points on disk, newer in the head */
	}
	static const int64_t ranges[][2] = { { 0, 3000 }, { 1, 2999 }, { 239, 241 }, { 500, 2500 },
					     { 1999, 2003 }, { 2600, 4000 }, { -100, 0 } };
	for (size_t r = 0; r < ARRAY_LEN(ranges); r++)
		CHECK(read_points_same(s, id, STORE_TIER_RAW, t0 + ranges[r][0] * 1000,
				       t0 + ranges[r][1] * 1000 + 999) >= 0);
	CHECK_EQ_INT(read_points_same(s, id, STORE_TIER_RAW, INT64_MIN, INT64_MAX), 3000);
	CHECK(read_points_same(s, id, STORE_TIER_1M, INT64_MIN, INT64_MAX) > 0);
	struct promql_points none = { 0 };
	CHECK_EQ_INT(store_read_points(s, 999999, STORE_TIER_RAW, 0, 1, &none), -ENOENT);
	store_close(s);

	/* A chunk twice on disk: the same points, once each. */
	char path[300];
	snprintf(path, sizeof(path), "%s/monitor.db", dir);
	sqlite3 *db;
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(db, "INSERT INTO chunks(series_id, mint, maxt, data) SELECT series_id,"
				  " mint, maxt, data FROM chunks ORDER BY mint LIMIT 1 OFFSET 3",
				  NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	s = open_store(NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK_EQ_INT(read_points_same(s, id, STORE_TIER_RAW, INT64_MIN, INT64_MAX), 3000);
	CHECK(read_points_same(s, id, STORE_TIER_RAW, t0 + 700000, t0 + 1500000) > 0);
	store_close(s);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	RUN(test_append_select);
	RUN(test_stats_recent);
	RUN(test_reopen);
	RUN(test_crash_recovery);
	RUN(test_tiers);
	RUN(test_snapshots_and_staleness);
	RUN(test_idle_buckets_closed_when_due);
	RUN(test_stale_series_leave_memory);
	RUN(test_evicted_series_returns_same_hour);
	RUN(test_churned_ids_leave_no_table);
	RUN(test_concurrent_readers);
	RUN(test_retention_age);
	RUN(test_retention_size);
	RUN(test_corrupt_file);
	RUN(test_lock);
	RUN(test_import);
	RUN(test_stale_marker_after_import);
	RUN(test_read_after);
	RUN(test_read_after_following);
	RUN(test_last_point_between);
	RUN(test_read_points);
	RUN(test_bounds_after_reopen);
	if (dir[0]) {
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup failed\n");
	}
	TEST_END();
}
