/*
 * test_cgroup.c - the cgroup collector against the fixture host roots in
 * tests/fixtures/cgroup/{v1,v2,hybrid}: layout detection, the exported
 * parsers, golden values for every family on each tree (Docker cgroupfs and
 * systemd paths, Kubernetes pods of each QoS class), malformed and missing
 * files, and cgroups that vanish between open and read, on a copied tree
 * and on a real cgroup of this host when running as root.
 */
#include "collectors/collector.h"
#include "../test.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <unistd.h>

#define V1 FIXTURES "/cgroup/v1"
#define V2 FIXTURES "/cgroup/v2"
#define HY FIXTURES "/cgroup/hybrid"

#define V1_DOCKER "/docker/44b317d826b2d53c344ee49e3fe4686613870c72d811dfd8ec1645d4579f6a47"
#define V1_SYSTEMD "/system.slice/docker-33bf693c69a8c16687e2b3ba5b49411e2df9688b054afde66db1e23ed2f7e1e6.scope"
#define V1_BAD "/docker/0306a9a7917aaf22e6967945e839419acf1a545474736c402295f9d8d6a5e527"
#define V1_MISSING "/docker/868142345ad6335cfb1dfe684d2665ab32a74a3f04f378b05bcee1a11d68735d"
#define V1_KUBE_G "/kubepods/pod6f1c8a2e-4b3d-4e5f-9a7b-1c2d3e4f5a6b/28747eb21e9c771fbcf2fe31f7b25b32e0616672c867e98e4db852fd9d5a089a"
#define V1_KUBE_B "/kubepods/burstable/pod0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d/c078a0e5d6a3bab89d41e5e36c3e9637d5581f59b43ff67758f974b485adb875"
#define V1_KUBE_BE "/kubepods/besteffort/pod11223344-5566-4778-899a-abbccddeeff0/c5ab7f0aa47c83348c41ffc35b747a3306e9d4217fdfca5ce2ff39eb199a4be9"

#define V2_SYSTEMD_DIR "system.slice/docker-35f95d053f6256a15931ba759eaadd3d9b59d74aa47e730a1cd95832a717472e.scope"
#define V2_SYSTEMD "/" V2_SYSTEMD_DIR
#define V2_DOCKER "/docker/688116434228fbfdd03d9cd934322f980dd3fddb26fab37473033c7173572be2"
#define V2_BAD "/system.slice/docker-c2955f4044346398a9fba97d56690df6b76a66417597ad19ea44d898d6541f44.scope"
#define V2_MISSING "/system.slice/docker-89f9d6db59ea8e23f7c5931d4cce6f8983f5bdfd15504778e6fd2f5bee70bf23.scope"
#define V2_KUBE_G "/kubepods.slice/kubepods-pod6f1c8a2e_4b3d_4e5f_9a7b_1c2d3e4f5a6b.slice/cri-containerd-eea27925da5189c36908aaeabd6fc2e0b2b800baa07d19da4705e40e8a44bdb8.scope"
#define V2_KUBE_B "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0a9b8c7d_6e5f_4a3b_2c1d_0e9f8a7b6c5d.slice/cri-containerd-985bc9d470f7e402c69677d8ef1775b998e740453380add785461492357e3263.scope"
#define V2_KUBE_BE "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod11223344_5566_4778_899a_abbccddeeff0.slice/cri-containerd-7b4b91cd60d8709d4fc1e5d7453f479a8100881ab644f675b76bb53d22c684b1.scope"

#define HY_DOCKER "/docker/86a3226e999f6d9b753d84ca11b4982dc00d026dbf19f443e7f590eec1959d5f"
#define HY_SYSTEMD "/system.slice/docker-339f3bbda3108f4e8f0acec2ad76c9ebc6ec75348d2ec19e23a6bd3b6d568acc.scope"
#define HY_KUBE_B "/kubepods/burstable/pod0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d/56c9e77c202cb7d8173bd79322dc694a1da0651eb91be89c3c287258165d3f4f"
#define HY_BAD "/docker/321a1a00c1588cb834b2e6d622ac42eae41b4e9813306cb62e4e7dcb8d156f87"

#define TOTAL "cpu=\"total\""
#define SDA "device=\"/dev/sda\""
#define NVME "device=\"/dev/nvme0n1\""
#define DM "device=\"253:0\""

static struct cg_layout layout;

/* ---- helpers -------------------------------------------------------------- */

static bool use_root(const char *root)
{
	return hostroot_set(root) == 0 && cg_layout_detect(&layout) == 0;
}

static void make_container(struct coll_container *c, const char *cgroup)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->id, sizeof(c->id), "%s", strrchr(cgroup, '/') + 1);
	c->cgroup = (char *)cgroup;
	c->meta.restart_count = -1;
}

/* One tick of an already initialised collector over c. */
static struct snapshot *tick(void *st, struct coll_container *c, int *errors)
{
	struct coll_sink sink;
	if (sink_open(&sink, 1000) != 0)
		return NULL;
	sink_begin_container(&sink, c, 0);
	*errors = coll_cgroup_ops.collect(st, c, &c->priv[0], &sink);
	return sink_close(&sink);
}

/* Detects the layout under root and collects cgroup once with a fresh
 * collector. Returns the snapshot (caller unrefs) and the error count. */
static struct snapshot *collect_once(const char *root, const char *cgroup, bool percpu, int *errors)
{
	struct coll_ctx ctx = { .layout = &layout, .percpu = percpu };
	struct coll_container c;
	void *st = NULL;

	*errors = -1;
	if (!use_root(root) || coll_cgroup_ops.init(&st, &ctx) != 0)
		return NULL;
	make_container(&c, cgroup);
	struct snapshot *snap = tick(st, &c, errors);
	coll_cgroup_ops.forget(st, &c, &c.priv[0]);
	coll_cgroup_ops.destroy(st);
	return snap;
}

static bool extra_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static size_t count(const struct snapshot *s, enum metric_id m)
{
	size_t n = 0;
	for (size_t i = 0; s && i < s->nsamples; i++)
		n += s->samples[i].family == (uint32_t)m;
	return n;
}

/* The value of (m, extra), NAN when absent. */
static double value(const struct snapshot *s, enum metric_id m, const char *extra)
{
	for (size_t i = 0; s && i < s->nsamples; i++)
		if (s->samples[i].family == (uint32_t)m && extra_eq(s->samples[i].extra, extra))
			return s->samples[i].value;
	return NAN;
}

struct want {
	enum metric_id m;
	const char *extra;
	double v;
};

/* Every sample in want, exactly once, and nothing else. */
static void check_all(const struct snapshot *s, const struct want *w, size_t n, int line)
{
	if (!s) {
		fprintf(stderr, "  line %d: no snapshot\n", line);
		t_cur_failed = 1;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		size_t hits = 0;
		double v = NAN;
		for (size_t j = 0; j < s->nsamples; j++) {
			if (s->samples[j].family == (uint32_t)w[i].m &&
			    extra_eq(s->samples[j].extra, w[i].extra)) {
				hits++;
				v = s->samples[j].value;
			}
		}
		if (hits != 1 || !(v == w[i].v || fabs(v - w[i].v) <= 1e-9 * fabs(w[i].v))) {
			fprintf(stderr, "  line %d: %s{%s}: %zu samples, value %.17g, expected %.17g\n",
				line, metric_families[w[i].m].name, w[i].extra ? w[i].extra : "",
				hits, v, w[i].v);
			t_cur_failed = 1;
		}
	}
	if (s->nsamples != n) {
		fprintf(stderr, "  line %d: %zu samples, expected %zu:\n", line, s->nsamples, n);
		for (size_t j = 0; j < s->nsamples; j++)
			fprintf(stderr, "    %s{%s} %.17g\n", metric_families[s->samples[j].family].name,
				s->samples[j].extra ? s->samples[j].extra : "", s->samples[j].value);
		t_cur_failed = 1;
	}
}
#define CHECK_ALL(snap, w) check_all(snap, w, ARRAY_LEN(w), __LINE__)

static int open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static double hz(void)
{
	long v = sysconf(_SC_CLK_TCK);
	return v > 0 ? (double)v : 100.0;
}

/* ---- layout ---------------------------------------------------------------- */

static void test_layout_v1(void)
{
	CHECK(hostroot_set(V1) == 0);
	CHECK_EQ_INT(cg_layout_detect(&layout), 0);
	CHECK_EQ_INT(layout.mode, CG_V1);
	CHECK_STR(cg_mode_name(layout.mode), "v1");
	/* comounted cpu,cpuacct reached through the symlinks */
	CHECK_STR(layout.v1[CG_CPU], V1 "/sys/fs/cgroup/cpu");
	CHECK_STR(layout.v1[CG_CPUACCT], V1 "/sys/fs/cgroup/cpuacct");
	CHECK_STR(layout.v1[CG_CPUSET], V1 "/sys/fs/cgroup/cpuset");
	CHECK_STR(layout.v1[CG_MEMORY], V1 "/sys/fs/cgroup/memory");
	CHECK_STR(layout.v1[CG_BLKIO], V1 "/sys/fs/cgroup/blkio");
	CHECK_STR(layout.v1[CG_PIDS], V1 "/sys/fs/cgroup/pids");
	CHECK_STR(layout.v1[CG_SYSTEMD], V1 "/sys/fs/cgroup/systemd");
	CHECK_STR(layout.unified, "");
	CHECK_STR(cg_layout_walk_root(&layout), V1 "/sys/fs/cgroup/memory");
}

static void test_layout_v2(void)
{
	CHECK(hostroot_set(V2) == 0);
	CHECK_EQ_INT(cg_layout_detect(&layout), 0);
	CHECK_EQ_INT(layout.mode, CG_V2);
	CHECK_STR(cg_mode_name(layout.mode), "v2");
	CHECK_STR(layout.unified, V2 "/sys/fs/cgroup");
	for (int i = 0; i < CG__CTRL_COUNT; i++)
		CHECK_STR(layout.v1[i], "");
	CHECK_STR(cg_layout_walk_root(&layout), V2 "/sys/fs/cgroup");
}

static void test_layout_hybrid(void)
{
	CHECK(hostroot_set(HY) == 0);
	CHECK_EQ_INT(cg_layout_detect(&layout), 0);
	CHECK_EQ_INT(layout.mode, CG_HYBRID);
	CHECK_STR(cg_mode_name(layout.mode), "hybrid");
	/* no symlinks here: found by scanning the comounted names */
	CHECK_STR(layout.v1[CG_CPU], HY "/sys/fs/cgroup/cpu,cpuacct");
	CHECK_STR(layout.v1[CG_CPUACCT], HY "/sys/fs/cgroup/cpu,cpuacct");
	CHECK_STR(layout.v1[CG_MEMORY], HY "/sys/fs/cgroup/memory");
	CHECK_STR(layout.v1[CG_SYSTEMD], HY "/sys/fs/cgroup/systemd");
	CHECK_STR(layout.unified, HY "/sys/fs/cgroup/unified");
	CHECK_STR(cg_layout_walk_root(&layout), HY "/sys/fs/cgroup/memory");
}

static void test_layout_none(void)
{
	/* the fixture directory itself has no sys/fs/cgroup */
	CHECK(hostroot_set(FIXTURES "/cgroup") == 0);
	CHECK_EQ_INT(cg_layout_detect(&layout), -ENOENT);
	CHECK_EQ_INT(layout.mode, CG_NONE);
	CHECK(cg_layout_walk_root(&layout) == NULL);
	CHECK(cg_layout_walk_root(NULL) == NULL);
	CHECK_STR(cg_mode_name(CG_NONE), "none");

	/* and a collector refuses to start on it */
	void *st = (void *)1;
	struct coll_ctx ctx = { .layout = &layout };
	CHECK(coll_cgroup_ops.init(&st, &ctx) < 0);
	CHECK(st == NULL);
	coll_cgroup_ops.destroy(NULL);
}

/* ---- parsers --------------------------------------------------------------- */

static void test_kv_get(void)
{
	const char *stat = "cache 10780672\nrss 7413760\nrss_huge 0\ntotal_rss 13639680\n"
			   "total_inactive_file 180162560";
	CHECK_EQ_INT(cg_kv_get(stat, "rss"), 7413760);
	CHECK_EQ_INT(cg_kv_get(stat, "total_rss"), 13639680);
	CHECK_EQ_INT(cg_kv_get(stat, "rss_huge"), 0);
	CHECK_EQ_INT(cg_kv_get(stat, "total_inactive_file"), 180162560); /* no final newline */
	CHECK_EQ_INT(cg_kv_get(stat, "total"), -1);      /* a prefix is not a key */
	CHECK_EQ_INT(cg_kv_get(stat, "cache 1"), -1);
	CHECK_EQ_INT(cg_kv_get(stat, "missing"), -1);
	CHECK_EQ_INT(cg_kv_get("", "rss"), -1);
	CHECK_EQ_INT(cg_kv_get(NULL, "rss"), -1);
	CHECK_EQ_INT(cg_kv_get("rss\nrss 12x\nrss -4\n", "rss"), -1);
	CHECK_EQ_INT(cg_kv_get("rss 99999999999999999999\n", "rss"), -1); /* overflow */
	CHECK_EQ_INT(cg_kv_get("x 1\nrss 5\nrss 6\n", "rss"), 5);          /* first wins */
	CHECK_EQ_INT(cg_kv_get("oom 1\noom_kill 2\n", "oom_kill"), 2);
	CHECK_EQ_INT(cg_kv_get("hierarchical_memory_limit 9223372036854771712\n",
			       "hierarchical_memory_limit"), INT64_C(9223372036854771712));
}

static void test_psi_total(void)
{
	const char *p = "some avg10=2.00 avg60=0.83 avg300=0.70 total=4783178\n"
			"full avg10=0.00 avg60=0.00 avg300=0.00 total=12\n";
	CHECK_EQ_INT(cg_psi_total_us(p, false), 4783178);
	CHECK_EQ_INT(cg_psi_total_us(p, true), 12);
	/* cpu.pressure before 5.13: no full line */
	CHECK_EQ_INT(cg_psi_total_us("some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n", true), -1);
	CHECK_EQ_INT(cg_psi_total_us("some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n", false), 5);
	CHECK_EQ_INT(cg_psi_total_us("", false), -1);
	CHECK_EQ_INT(cg_psi_total_us(NULL, false), -1);
	CHECK_EQ_INT(cg_psi_total_us("garbage\n", false), -1);
	CHECK_EQ_INT(cg_psi_total_us("some avg10=0.00 total=\n", false), -1);
	CHECK_EQ_INT(cg_psi_total_us("some avg10=0.00 total=1x\n", false), -1);
	CHECK_EQ_INT(cg_psi_total_us("some avg10=0.00 avg60=0.00 tot", false), -1);
	CHECK_EQ_INT(cg_psi_total_us("some xtotal=4 total=7\n", false), 7);
	CHECK_EQ_INT(cg_psi_total_us("full total=3\nsome total=9", false), 9);
}

static void test_cpuset_count(void)
{
	CHECK_EQ_INT(cg_cpuset_count("0-3,8,10-11\n"), 7);
	CHECK_EQ_INT(cg_cpuset_count("0-1"), 2);
	CHECK_EQ_INT(cg_cpuset_count("5\n"), 1);
	CHECK_EQ_INT(cg_cpuset_count("0-127\n"), 128);
	CHECK_EQ_INT(cg_cpuset_count("\n"), 0);   /* an empty cpuset */
	CHECK_EQ_INT(cg_cpuset_count(""), 0);
	CHECK_EQ_INT(cg_cpuset_count("0-\n"), -1);
	CHECK_EQ_INT(cg_cpuset_count("3-1\n"), -1);
	CHECK_EQ_INT(cg_cpuset_count("0,,1\n"), -1);
	CHECK_EQ_INT(cg_cpuset_count("0,1,\n"), -1);
	CHECK_EQ_INT(cg_cpuset_count("a\n"), -1);
	CHECK_EQ_INT(cg_cpuset_count("-1\n"), -1);
	CHECK_EQ_INT(cg_cpuset_count("0-3 x\n"), -1);
	CHECK_EQ_INT(cg_cpuset_count("0-99999999999\n"), -1);
	CHECK_EQ_INT(cg_cpuset_count(NULL), -1);
}

/* ---- v1 ----------------------------------------------------------------------- */

static void test_v1_docker(void)
{
	int err;
	struct snapshot *s = collect_once(V1, V1_DOCKER, false, &err);
	const struct want w[] = {
		{ M_CPU_USAGE, TOTAL, 123.456789012 },
		{ M_CPU_USER, NULL, 8123 / hz() },
		{ M_CPU_SYSTEM, NULL, 2710 / hz() },
		{ M_CFS_PERIODS, NULL, 4820 },
		{ M_CFS_THROTTLED_PERIODS, NULL, 312 },
		{ M_CFS_THROTTLED_SECONDS, NULL, 18.734091234 },
		{ M_SPEC_CPU_PERIOD, NULL, 100000 },
		{ M_SPEC_CPU_QUOTA, NULL, 50000 },
		{ M_SPEC_CPU_SHARES, NULL, 512 },
		{ M_SPEC_CPUSET_CPUS, NULL, 7 },
		{ M_MEM_USAGE, NULL, 268435456 },
		{ M_MEM_MAX_USAGE, NULL, 402653184 },
		{ M_MEM_WORKING_SET, NULL, 268435456 - 67108864 },
		{ M_MEM_RSS, NULL, 150994944 },
		{ M_MEM_CACHE, NULL, 100663296 },
		{ M_MEM_SWAP, NULL, 272629760 - 268435456 },
		{ M_MEM_MAPPED_FILE, NULL, 25165824 },
		{ M_MEM_FAILCNT, NULL, 3 },
		{ M_MEM_EVENTS_OOM_KILL, NULL, 2 },
		{ M_SPEC_MEM_LIMIT, NULL, 536870912 },
		{ M_SPEC_MEM_RESERVATION, NULL, 0 },   /* 9223372036854771712: unlimited */
		{ M_SPEC_MEM_SWAP_LIMIT, NULL, 1073741824 },
		{ M_FS_READS_BYTES, SDA, 1048576 },
		{ M_FS_WRITES_BYTES, SDA, 4194304 },
		{ M_FS_READS_BYTES, DM, 2048 },
		{ M_FS_WRITES_BYTES, DM, 0 },
		{ M_FS_READS, SDA, 256 },
		{ M_FS_WRITES, SDA, 1024 },
		{ M_FS_READS, DM, 1 },
		{ M_FS_WRITES, DM, 0 },
		{ M_PIDS, NULL, 7 },
		{ M_SPEC_PIDS_LIMIT, NULL, 1024 },
	};
	CHECK_EQ_INT(err, 0);
	CHECK_ALL(s, w);
	snapshot_unref(s);
}

static void test_v1_percpu(void)
{
	int err;
	struct snapshot *s = collect_once(V1, V1_DOCKER, true, &err);
	CHECK_EQ_INT(err, 0);
	CHECK_EQ_INT(count(s, M_CPU_USAGE), 2);
	CHECK_EQ_DBL(value(s, M_CPU_USAGE, "cpu=\"cpu00\""), 60.0);
	CHECK_EQ_DBL(value(s, M_CPU_USAGE, "cpu=\"cpu01\""), 63.456789012);
	CHECK(isnan(value(s, M_CPU_USAGE, TOTAL)));
	CHECK_EQ_INT(s ? s->nsamples : 0, 33);
	snapshot_unref(s);
}

static void test_v1_systemd(void)
{
	int err;
	struct snapshot *s = collect_once(V1, V1_SYSTEMD, false, &err);
	const struct want w[] = {
		{ M_CPU_USAGE, TOTAL, 5.0 },
		{ M_CPU_USER, NULL, 300 / hz() },
		{ M_CPU_SYSTEM, NULL, 150 / hz() },
		/* no quota: no CFS counters (always zero without one) */
		/* quota -1: no period or quota */
		{ M_SPEC_CPU_SHARES, NULL, 1024 },
		{ M_SPEC_CPUSET_CPUS, NULL, 2 },
		{ M_MEM_USAGE, NULL, 104857600 },
		{ M_MEM_MAX_USAGE, NULL, 157286400 },
		{ M_MEM_WORKING_SET, NULL, 0 },       /* inactive_file > usage: clamped */
		{ M_MEM_RSS, NULL, 52428800 },
		{ M_MEM_CACHE, NULL, 41943040 },
		{ M_MEM_MAPPED_FILE, NULL, 8388608 },
		{ M_MEM_FAILCNT, NULL, 0 },
		/* no memsw files: no swap, no swap limit; no oom_kill line */
		{ M_SPEC_MEM_LIMIT, NULL, 0 },
		{ M_SPEC_MEM_RESERVATION, NULL, 0 },
		/* blkio holds only "Total 0" */
		{ M_PIDS, NULL, 3 },
		{ M_SPEC_PIDS_LIMIT, NULL, 0 },       /* "max" */
	};
	CHECK_EQ_INT(err, 0);
	CHECK_ALL(s, w);
	snapshot_unref(s);
}

static void test_v1_kubepods(void)
{
	int err;
	struct snapshot *s = collect_once(V1, V1_KUBE_G, false, &err);
	CHECK_EQ_INT(err, 0);
	CHECK_EQ_DBL(value(s, M_SPEC_CPU_QUOTA, NULL), 100000);
	CHECK_EQ_DBL(value(s, M_SPEC_CPU_PERIOD, NULL), 100000);
	CHECK_EQ_DBL(value(s, M_SPEC_CPU_SHARES, NULL), 1024);
	CHECK_EQ_DBL(value(s, M_SPEC_MEM_LIMIT, NULL), 268435456);
	CHECK_EQ_DBL(value(s, M_SPEC_MEM_SWAP_LIMIT, NULL), 268435456);
	CHECK_EQ_DBL(value(s, M_MEM_SWAP, NULL), 0);
	CHECK_EQ_DBL(value(s, M_MEM_WORKING_SET, NULL), 134217728 - 16777216);
	CHECK_EQ_DBL(value(s, M_SPEC_PIDS_LIMIT, NULL), 4096);
	CHECK_EQ_INT(s ? s->nsamples : 0, 24);
	snapshot_unref(s);

	s = collect_once(V1, V1_KUBE_B, false, &err);
	CHECK_EQ_INT(err, 0);
	CHECK_EQ_INT(count(s, M_SPEC_CPU_QUOTA), 0);
	CHECK_EQ_INT(count(s, M_SPEC_CPU_PERIOD), 0);
	CHECK_EQ_DBL(value(s, M_SPEC_CPU_SHARES, NULL), 256);
	CHECK_EQ_DBL(value(s, M_SPEC_MEM_LIMIT, NULL), 536870912);
	CHECK_EQ_DBL(value(s, M_SPEC_MEM_SWAP_LIMIT, NULL), 0);
	CHECK_EQ_INT(s ? s->nsamples : 0, 19);
	snapshot_unref(s);

	s = collect_once(V1, V1_KUBE_BE, false, &err);
	CHECK_EQ_INT(err, 0);
	CHECK_EQ_INT(count(s, M_SPEC_CPU_QUOTA), 0);
	CHECK_EQ_DBL(value(s, M_SPEC_CPU_SHARES, NULL), 2);
	CHECK_EQ_DBL(value(s, M_SPEC_MEM_LIMIT, NULL), 0);
	CHECK_EQ_DBL(value(s, M_SPEC_PIDS_LIMIT, NULL), 0);
	CHECK_EQ_DBL(value(s, M_PIDS, NULL), 5);
	CHECK_EQ_INT(s ? s->nsamples : 0, 19);
	snapshot_unref(s);
}

static void test_v1_malformed(void)
{
	int err;
	struct snapshot *s = collect_once(V1, V1_BAD, false, &err);
	/* garbage, empty, truncated and overflowing files give no sample;
	 * the good files of the same container still do */
	const struct want w[] = {
		{ M_SPEC_CPU_SHARES, NULL, 512 },
		{ M_MEM_CACHE, NULL, 40960 },          /* memory.stat cut in total_rss */
		{ M_SPEC_MEM_RESERVATION, NULL, 0 },
		{ M_FS_WRITES_BYTES, SDA, 4096 },      /* the one well-formed blkio line */
		{ M_SPEC_PIDS_LIMIT, NULL, 0 },
	};
	/* cpuacct.usage, cpuacct.stat, cfs_quota_us, cpuset.cpus, usage, max_usage,
	 * failcnt, limit_in_bytes, pids.current */
	CHECK_EQ_INT(err, 9);
	CHECK_ALL(s, w);
	snapshot_unref(s);

	/* a garbled usage_percpu gives no CPU series at all (and no total) */
	s = collect_once(V1, V1_BAD, true, &err);
	CHECK_EQ_INT(err, 9);
	CHECK_EQ_INT(count(s, M_CPU_USAGE), 0);
	CHECK_ALL(s, w);
	snapshot_unref(s);
}

static void test_v1_missing(void)
{
	int err;
	/* only a memory cgroup with two files: nothing else is emitted */
	struct snapshot *s = collect_once(V1, V1_MISSING, true, &err);
	const struct want w[] = {
		{ M_MEM_USAGE, NULL, 1048576 },
		{ M_MEM_WORKING_SET, NULL, 1048576 - 131072 },
		{ M_MEM_RSS, NULL, 524288 },
		{ M_MEM_CACHE, NULL, 262144 },
		{ M_MEM_MAPPED_FILE, NULL, 0 },
	};
	CHECK_EQ_INT(err, 0);
	CHECK_ALL(s, w);
	snapshot_unref(s);
}

static void test_missing_cgroup(void)
{
	struct coll_ctx ctx = { .layout = &layout };
	struct coll_container c;
	void *st = NULL;
	int err;

	CHECK(use_root(V1));
	CHECK(coll_cgroup_ops.init(&st, &ctx) == 0);
	if (!st)
		return;
	make_container(&c, "/docker/0000000000000000000000000000000000000000000000000000000000000000");
	struct snapshot *s = tick(st, &c, &err);
	CHECK_EQ_INT(err, 1);                  /* gone: counted once */
	CHECK_EQ_INT(s ? s->nsamples : 1, 0);
	snapshot_unref(s);
	s = tick(st, &c, &err);
	CHECK_EQ_INT(err, 0);
	CHECK_EQ_INT(s ? s->nsamples : 1, 0);
	snapshot_unref(s);

	/* paths that climb out of the hierarchy are refused */
	struct coll_container up;
	make_container(&up, "/docker/../../../../etc");
	s = tick(st, &up, &err);
	CHECK_EQ_INT(err, 1);
	CHECK_EQ_INT(s ? s->nsamples : 1, 0);
	snapshot_unref(s);

	/* no cgroup path: nothing to do */
	struct coll_container none;
	make_container(&none, "/x");
	none.cgroup = NULL;
	struct coll_sink sink;
	CHECK(sink_open(&sink, 1000) == 0);
	sink_begin_agent(&sink); /* the sink wants a cgroup path for a container */
	CHECK_EQ_INT(coll_cgroup_ops.collect(st, &none, &none.priv[0], &sink), 0);
	s = sink_close(&sink);
	CHECK_EQ_INT(s ? s->nsamples : 1, 0);
	snapshot_unref(s);

	coll_cgroup_ops.forget(st, &c, &c.priv[0]);
	coll_cgroup_ops.forget(st, &up, &up.priv[0]);
	coll_cgroup_ops.forget(st, &none, &none.priv[0]); /* never opened: fine */
	CHECK(c.priv[0] == NULL);
	coll_cgroup_ops.destroy(st);
}

/* ---- v2 ----------------------------------------------------------------------- */

static const struct want v2_systemd_want[] = {
	{ M_CPU_USAGE, TOTAL, 98.765432 },
	{ M_CPU_USER, NULL, 65.4321 },
	{ M_CPU_SYSTEM, NULL, 33.333332 },
	{ M_CFS_PERIODS, NULL, 1200 },
	{ M_CFS_THROTTLED_PERIODS, NULL, 45 },
	{ M_CFS_THROTTLED_SECONDS, NULL, 2.345678 },
	{ M_SPEC_CPU_PERIOD, NULL, 100000 },
	{ M_SPEC_CPU_QUOTA, NULL, 150000 },
	{ M_SPEC_CPU_SHARES, NULL, 2597 },     /* weight 100 */
	{ M_SPEC_CPUSET_CPUS, NULL, 4 },
	{ M_MEM_USAGE, NULL, 268435456 },
	{ M_MEM_MAX_USAGE, NULL, 402653184 },
	{ M_MEM_WORKING_SET, NULL, 268435456 - 67108864 },
	{ M_MEM_RSS, NULL, 150994944 },
	{ M_MEM_CACHE, NULL, 100663296 },
	{ M_MEM_SWAP, NULL, 4194304 },
	{ M_MEM_MAPPED_FILE, NULL, 25165824 },
	{ M_MEM_EVENTS_OOM, NULL, 2 },
	{ M_MEM_EVENTS_OOM_KILL, NULL, 1 },
	{ M_MEM_EVENTS_MAX, NULL, 9 },
	{ M_MEM_EVENTS_HIGH, NULL, 17 },
	{ M_SPEC_MEM_LIMIT, NULL, 536870912 },
	{ M_SPEC_MEM_RESERVATION, NULL, 134217728 },
	{ M_SPEC_MEM_SWAP_LIMIT, NULL, 0 },    /* "max" */
	{ M_FS_READS_BYTES, SDA, 1048576 },
	{ M_FS_WRITES_BYTES, SDA, 4194304 },
	{ M_FS_READS, SDA, 256 },
	{ M_FS_WRITES, SDA, 1024 },
	{ M_FS_READS_BYTES, NVME, 8192 },
	{ M_FS_WRITES_BYTES, NVME, 16384 },
	{ M_FS_READS, NVME, 2 },
	{ M_FS_WRITES, NVME, 4 },
	{ M_FS_READS_BYTES, DM, 2048 },
	{ M_FS_WRITES_BYTES, DM, 0 },
	{ M_FS_READS, DM, 1 },
	{ M_FS_WRITES, DM, 0 },
	{ M_PIDS, NULL, 7 },
	{ M_SPEC_PIDS_LIMIT, NULL, 1024 },
	{ M_PSI_CPU_WAITING, NULL, 1.234567 },
	{ M_PSI_CPU_STALLED, NULL, 0.234567 },
	{ M_PSI_MEM_WAITING, NULL, 0.345678 },
	{ M_PSI_MEM_STALLED, NULL, 0.045678 },
	{ M_PSI_IO_WAITING, NULL, 5.678901 },
	{ M_PSI_IO_STALLED, NULL, 4.56789 },
};

static void test_v2_systemd(void)
{
	int err;
	struct snapshot *s = collect_once(V2, V2_SYSTEMD, false, &err);
	CHECK_EQ_INT(err, 0);
	CHECK_ALL(s, v2_systemd_want);
	snapshot_unref(s);

	/* percpu is v1 only: v2 still gives cpu="total" */
	s = collect_once(V2, V2_SYSTEMD, true, &err);
	CHECK_EQ_INT(err, 0);
	CHECK_ALL(s, v2_systemd_want);
	snapshot_unref(s);
}

static void test_v2_docker(void)
{
	int err;
	struct snapshot *s = collect_once(V2, V2_DOCKER, false, &err);
	const struct want w[] = {
		{ M_CPU_USAGE, TOTAL, 5.0 },
		{ M_CPU_USER, NULL, 3.0 },
		{ M_CPU_SYSTEM, NULL, 2.0 },
		/* no quota: no CFS counters (always zero without one) */
		/* cpu.max "max 100000": no quota, no period */
		{ M_SPEC_CPU_SHARES, NULL, 998 },     /* weight 39 */
		{ M_SPEC_CPUSET_CPUS, NULL, 2 },
		{ M_MEM_USAGE, NULL, 104857600 },
		/* no memory.peak (kernel < 5.19), no memory.swap.* (swapaccount=0) */
		{ M_MEM_WORKING_SET, NULL, 0 },       /* clamped */
		{ M_MEM_RSS, NULL, 52428800 },
		{ M_MEM_CACHE, NULL, 41943040 },
		{ M_MEM_MAPPED_FILE, NULL, 8388608 },
		{ M_MEM_EVENTS_OOM, NULL, 0 },
		{ M_MEM_EVENTS_OOM_KILL, NULL, 0 },
		{ M_MEM_EVENTS_MAX, NULL, 0 },
		{ M_MEM_EVENTS_HIGH, NULL, 0 },
		{ M_SPEC_MEM_LIMIT, NULL, 0 },
		{ M_SPEC_MEM_RESERVATION, NULL, 0 },
		/* io.stat empty: no I/O yet */
		{ M_PIDS, NULL, 3 },
		{ M_SPEC_PIDS_LIMIT, NULL, 0 },
		{ M_PSI_CPU_WAITING, NULL, 0.001 },   /* cpu.pressure without full (< 5.13) */
		{ M_PSI_MEM_WAITING, NULL, 0 },
		{ M_PSI_MEM_STALLED, NULL, 0 },
		{ M_PSI_IO_WAITING, NULL, 0.002 },
		{ M_PSI_IO_STALLED, NULL, 0.0015 },
	};
	CHECK_EQ_INT(err, 0);
	CHECK_ALL(s, w);
	snapshot_unref(s);
}

static void test_v2_kubepods(void)
{
	int err;
	struct snapshot *s = collect_once(V2, V2_KUBE_G, false, &err);
	CHECK_EQ_INT(err, 0);
	CHECK_EQ_DBL(value(s, M_SPEC_CPU_QUOTA, NULL), 100000);
	CHECK_EQ_DBL(value(s, M_SPEC_CPU_PERIOD, NULL), 100000);
	CHECK_EQ_DBL(value(s, M_SPEC_CPU_SHARES, NULL), 998);   /* 2 + 38*262142/9999 */
	CHECK_EQ_DBL(value(s, M_SPEC_MEM_LIMIT, NULL), 268435456);
	CHECK_EQ_DBL(value(s, M_SPEC_MEM_SWAP_LIMIT, NULL), 0);
	CHECK_EQ_DBL(value(s, M_MEM_MAX_USAGE, NULL), 150994944);
	CHECK_EQ_DBL(value(s, M_FS_READS_BYTES, SDA), 4096);
	CHECK_EQ_DBL(value(s, M_PSI_CPU_WAITING, NULL), 10e-6);
	CHECK_EQ_INT(s ? s->nsamples : 0, 36);
	snapshot_unref(s);

	s = collect_once(V2, V2_KUBE_B, false, &err);
	CHECK_EQ_INT(err, 0);
	CHECK_EQ_INT(count(s, M_SPEC_CPU_QUOTA), 0);
	CHECK_EQ_INT(count(s, M_SPEC_CPU_PERIOD), 0);
	CHECK_EQ_DBL(value(s, M_SPEC_CPU_SHARES, NULL), 237);   /* weight 10 */
	CHECK_EQ_DBL(value(s, M_SPEC_MEM_LIMIT, NULL), 536870912);
	CHECK_EQ_INT(s ? s->nsamples : 0, 31);
	snapshot_unref(s);

	s = collect_once(V2, V2_KUBE_BE, false, &err);
	CHECK_EQ_INT(err, 0);
	CHECK_EQ_INT(count(s, M_SPEC_CPU_QUOTA), 0);
	CHECK_EQ_DBL(value(s, M_SPEC_CPU_SHARES, NULL), 2);     /* weight 1 */
	CHECK_EQ_DBL(value(s, M_SPEC_MEM_LIMIT, NULL), 0);
	CHECK_EQ_DBL(value(s, M_SPEC_PIDS_LIMIT, NULL), 0);
	CHECK_EQ_INT(s ? s->nsamples : 0, 31);
	snapshot_unref(s);
}

static void test_v2_malformed(void)
{
	int err;
	struct snapshot *s = collect_once(V2, V2_BAD, false, &err);
	const struct want w[] = {
		{ M_MEM_USAGE, NULL, 268435456 },      /* no final newline is fine */
		{ M_MEM_EVENTS_HIGH, NULL, 3 },        /* memory.events cut after high */
		{ M_SPEC_MEM_LIMIT, NULL, 0 },
		{ M_FS_WRITES_BYTES, SDA, 100 },       /* rbytes=abc and wios= skipped */
		{ M_FS_READS, SDA, 1 },
		{ M_PSI_CPU_STALLED, NULL, 99e-6 },    /* some total= empty */
	};
	/* cpu.stat, cpu.max, cpu.weight, cpuset.cpus.effective, memory.stat,
	 * memory.low, memory.swap.max, pids.current, pids.max, memory.pressure */
	CHECK_EQ_INT(err, 10);
	CHECK_ALL(s, w);
	snapshot_unref(s);
}

static void test_v2_missing(void)
{
	int err;
	/* no cpu controller (cpu.stat without CFS lines), only four files */
	struct snapshot *s = collect_once(V2, V2_MISSING, false, &err);
	const struct want w[] = {
		{ M_CPU_USAGE, TOTAL, 700e-6 },
		{ M_CPU_USER, NULL, 500e-6 },
		{ M_CPU_SYSTEM, NULL, 200e-6 },
		{ M_MEM_USAGE, NULL, 1048576 },
		{ M_MEM_WORKING_SET, NULL, 1048576 - 131072 },
		{ M_MEM_RSS, NULL, 524288 },
		{ M_MEM_CACHE, NULL, 262144 },
		{ M_MEM_MAPPED_FILE, NULL, 0 },
	};
	CHECK_EQ_INT(err, 0);
	CHECK_ALL(s, w);
	snapshot_unref(s);
}

/* ---- hybrid ------------------------------------------------------------------- */

static void test_hybrid_docker(void)
{
	int err;
	/* v1 counters from the v1 hierarchies (not the decoy cpu.stat and
	 * memory.current of the unified tree), PSI from the unified tree */
	struct snapshot *s = collect_once(HY, HY_DOCKER, false, &err);
	const struct want w[] = {
		{ M_CPU_USAGE, TOTAL, 123.456789012 },
		{ M_CPU_USER, NULL, 8123 / hz() },
		{ M_CPU_SYSTEM, NULL, 2710 / hz() },
		{ M_CFS_PERIODS, NULL, 4820 },
		{ M_CFS_THROTTLED_PERIODS, NULL, 312 },
		{ M_CFS_THROTTLED_SECONDS, NULL, 18.734091234 },
		{ M_SPEC_CPU_PERIOD, NULL, 100000 },
		{ M_SPEC_CPU_QUOTA, NULL, 50000 },
		{ M_SPEC_CPU_SHARES, NULL, 512 },
		{ M_SPEC_CPUSET_CPUS, NULL, 7 },
		{ M_MEM_USAGE, NULL, 268435456 },
		{ M_MEM_MAX_USAGE, NULL, 402653184 },
		{ M_MEM_WORKING_SET, NULL, 268435456 - 67108864 },
		{ M_MEM_RSS, NULL, 150994944 },
		{ M_MEM_CACHE, NULL, 100663296 },
		{ M_MEM_SWAP, NULL, 4194304 },
		{ M_MEM_MAPPED_FILE, NULL, 25165824 },
		{ M_MEM_FAILCNT, NULL, 3 },
		{ M_MEM_EVENTS_OOM_KILL, NULL, 2 },
		{ M_SPEC_MEM_LIMIT, NULL, 536870912 },
		{ M_SPEC_MEM_RESERVATION, NULL, 0 },
		{ M_SPEC_MEM_SWAP_LIMIT, NULL, 1073741824 },
		{ M_FS_READS_BYTES, SDA, 1048576 },
		{ M_FS_WRITES_BYTES, SDA, 4194304 },
		{ M_FS_READS_BYTES, DM, 2048 },
		{ M_FS_WRITES_BYTES, DM, 0 },
		{ M_FS_READS, SDA, 256 },
		{ M_FS_WRITES, SDA, 1024 },
		{ M_FS_READS, DM, 1 },
		{ M_FS_WRITES, DM, 0 },
		{ M_PIDS, NULL, 7 },
		{ M_SPEC_PIDS_LIMIT, NULL, 1024 },
		{ M_PSI_CPU_WAITING, NULL, 1.234567 },
		{ M_PSI_CPU_STALLED, NULL, 0.234567 },
		{ M_PSI_MEM_WAITING, NULL, 0.345678 },
		{ M_PSI_MEM_STALLED, NULL, 0.045678 },
		{ M_PSI_IO_WAITING, NULL, 5.678901 },
		{ M_PSI_IO_STALLED, NULL, 4.56789 },
	};
	CHECK_EQ_INT(err, 0);
	CHECK_ALL(s, w);
	snapshot_unref(s);

	/* percpu works on hybrid: usage_percpu is a v1 file */
	s = collect_once(HY, HY_DOCKER, true, &err);
	CHECK_EQ_INT(err, 0);
	CHECK_EQ_INT(count(s, M_CPU_USAGE), 2);
	CHECK_EQ_DBL(value(s, M_CPU_USAGE, "cpu=\"cpu01\""), 63.456789012);
	snapshot_unref(s);
}

static void test_hybrid_others(void)
{
	int err;
	/* booted with psi=0: no pressure files in the unified tree */
	struct snapshot *s = collect_once(HY, HY_SYSTEMD, false, &err);
	CHECK_EQ_INT(err, 0);
	CHECK_EQ_INT(s ? s->nsamples : 0, 16);
	CHECK_EQ_INT(count(s, M_PSI_CPU_WAITING) + count(s, M_PSI_MEM_WAITING) +
		     count(s, M_PSI_IO_WAITING), 0);
	CHECK_EQ_DBL(value(s, M_CPU_USAGE, TOTAL), 5.0);
	snapshot_unref(s);

	s = collect_once(HY, HY_KUBE_B, false, &err);
	CHECK_EQ_INT(err, 0);
	CHECK_EQ_DBL(value(s, M_SPEC_CPU_SHARES, NULL), 256);
	CHECK_EQ_INT(count(s, M_SPEC_CPU_QUOTA), 0);
	CHECK_EQ_DBL(value(s, M_PSI_CPU_WAITING, NULL), 10e-6);
	CHECK_EQ_DBL(value(s, M_PSI_CPU_STALLED, NULL), 0);
	CHECK_EQ_DBL(value(s, M_PSI_IO_WAITING, NULL), 30e-6);
	CHECK_EQ_DBL(value(s, M_PSI_IO_STALLED, NULL), 20e-6);
	CHECK_EQ_INT(s ? s->nsamples : 0, 25);
	snapshot_unref(s);

	/* garbage and empty PSI files: errors, no samples; a cut full line:
	 * some only */
	s = collect_once(HY, HY_BAD, false, &err);
	CHECK_EQ_INT(err, 2);
	CHECK_EQ_INT(count(s, M_PSI_CPU_WAITING) + count(s, M_PSI_CPU_STALLED), 0);
	CHECK_EQ_INT(count(s, M_PSI_MEM_WAITING) + count(s, M_PSI_MEM_STALLED), 0);
	CHECK_EQ_DBL(value(s, M_PSI_IO_WAITING, NULL), 77e-6);
	CHECK_EQ_INT(count(s, M_PSI_IO_STALLED), 0);
	CHECK_EQ_INT(s ? s->nsamples : 0, 33);
	snapshot_unref(s);
}

/* ---- lifecycle -------------------------------------------------------------- */

static void test_fds_kept_and_released(void)
{
	struct coll_ctx ctx = { .layout = &layout };
	struct coll_container a, b;
	void *st = NULL;
	int err;

	CHECK(use_root(V1));
	int before = open_fds();
	CHECK(coll_cgroup_ops.init(&st, &ctx) == 0);
	if (!st)
		return;
	make_container(&a, V1_DOCKER);
	make_container(&b, V1_SYSTEMD);
	for (int i = 0; i < 3; i++) {
		struct snapshot *s = tick(st, &a, &err);
		CHECK_EQ_INT(err, 0);
		CHECK_EQ_INT(s ? s->nsamples : 0, 32);
		CHECK_EQ_DBL(value(s, M_FS_READS_BYTES, SDA), 1048576); /* cached name */
		snapshot_unref(s);
		s = tick(st, &b, &err);
		CHECK_EQ_INT(err, 0);
		CHECK_EQ_INT(s ? s->nsamples : 0, 16);
		snapshot_unref(s);
	}
	/* 12 files held for the Docker container (no PSI on v1, settings read
	 * by path), 10 for the systemd one (no memsw, and no cpu.stat without
	 * a quota); opened once, not per tick */
	CHECK_EQ_INT(open_fds() - before, 22);
	coll_cgroup_ops.forget(st, &a, &a.priv[0]);
	CHECK(a.priv[0] == NULL);
	CHECK_EQ_INT(open_fds() - before, 10);
	coll_cgroup_ops.forget(st, &b, &b.priv[0]);
	CHECK_EQ_INT(open_fds() - before, 0);
	coll_cgroup_ops.destroy(st);
}

/* Runs "cp -a 'from' 'to'" (to NULL: "rm -rf 'from'"); true on success. */
static bool shell(const char *from, const char *to)
{
	char cmd[2 * PATH_MAX + 64];
	if (to)
		snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'", from, to);
	else
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", from);
	return system(cmd) == 0;
}

static void test_vanish_copied_tree(void)
{
	char tmp[PATH_MAX], dir[PATH_MAX + 128];
	struct coll_ctx ctx = { .layout = &layout };
	struct coll_container c;
	void *st = NULL;
	int err;

	snprintf(tmp, sizeof(tmp), "/tmp/monitor-test-cgroup-%d", (int)getpid());
	snprintf(dir, sizeof(dir), "%s/sys/fs/cgroup/%s", tmp, V2_SYSTEMD_DIR);
	shell(tmp, NULL);
	if (!shell(V2, tmp))
		SKIP("cannot copy the fixture tree to /tmp");
	CHECK(use_root(tmp));
	CHECK(coll_cgroup_ops.init(&st, &ctx) == 0);
	if (!st)
		goto out;
	make_container(&c, V2_SYSTEMD);

	/* Past the first ticks, when settings files are read by path every
	 * tick (the runtime may not have written the limits yet). */
	struct snapshot *s = NULL;
	for (int i = 0; i < 5; i++) {
		snapshot_unref(s);
		s = tick(st, &c, &err);
		CHECK_EQ_INT(err, 0);
	}
	CHECK_ALL(s, v2_systemd_want);
	snapshot_unref(s);

	/* Removed after open: a regular filesystem keeps serving the open
	 * files (a real cgroup does not; see test_vanish_real_cgroup). */
	CHECK(shell(dir, NULL));
	s = tick(st, &c, &err);
	CHECK_EQ_INT(err, 0);
	CHECK_ALL(s, v2_systemd_want);
	snapshot_unref(s);

	/* Reopened after forget: the directory is gone. One error, then quiet. */
	coll_cgroup_ops.forget(st, &c, &c.priv[0]);
	s = tick(st, &c, &err);
	CHECK_EQ_INT(err, 1);
	CHECK_EQ_INT(s ? s->nsamples : 1, 0);
	snapshot_unref(s);
	s = tick(st, &c, &err);
	CHECK_EQ_INT(err, 0);
	CHECK_EQ_INT(s ? s->nsamples : 1, 0);
	snapshot_unref(s);

	/* The same path comes back (a restarted container): collected again. */
	char src[PATH_MAX];
	snprintf(src, sizeof(src), "%s/sys/fs/cgroup/%s", V2, V2_SYSTEMD_DIR);
	CHECK(shell(src, dir));
	s = tick(st, &c, &err);
	CHECK_EQ_INT(err, 0);
	CHECK_ALL(s, v2_systemd_want);
	snapshot_unref(s);

	coll_cgroup_ops.forget(st, &c, &c.priv[0]);
	coll_cgroup_ops.destroy(st);
out:
	shell(tmp, NULL);
}

/* Settings files are read by path every 10 ticks: a changed limit shows by
 * the tenth tick after the change, and not as a held descriptor. */
static void test_settings_refresh(void)
{
	char tmp[PATH_MAX], file[PATH_MAX + 160];
	struct coll_ctx ctx = { .layout = &layout };
	struct coll_container c;
	void *st = NULL;
	int err;

	snprintf(tmp, sizeof(tmp), "/tmp/monitor-test-settings-%d", (int)getpid());
	snprintf(file, sizeof(file), "%s/sys/fs/cgroup/%s/memory.max", tmp, V2_SYSTEMD_DIR);
	shell(tmp, NULL);
	if (!shell(V2, tmp))
		SKIP("cannot copy the fixture tree to /tmp");
	CHECK(use_root(tmp));
	CHECK(coll_cgroup_ops.init(&st, &ctx) == 0);
	if (!st)
		goto out;
	make_container(&c, V2_SYSTEMD);
	struct snapshot *s = tick(st, &c, &err);
	CHECK_EQ_DBL(value(s, M_SPEC_MEM_LIMIT, NULL), 536870912);
	snapshot_unref(s);

	FILE *fp = fopen(file, "w");
	CHECK(fp != NULL);
	if (fp) {
		fputs("1073741824\n", fp);
		fclose(fp);
	}
	int seen_at = 0;
	for (int i = 1; i <= 12 && !seen_at; i++) {
		s = tick(st, &c, &err);
		CHECK_EQ_INT(err, 0);
		if (value(s, M_SPEC_MEM_LIMIT, NULL) == 1073741824)
			seen_at = i;
		snapshot_unref(s);
	}
	CHECK(seen_at >= 1 && seen_at <= 10);
	coll_cgroup_ops.forget(st, &c, &c.priv[0]);
	coll_cgroup_ops.destroy(st);
out:
	shell(tmp, NULL);
}

static bool write_stat(const char *root, const char *comm)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/proc/4242/stat", root);
	FILE *fp = fopen(path, "w");
	if (!fp)
		return false;
	fprintf(fp, "4242 (%s) S 4241 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 "
		"2166838 3133440 380 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0\n", comm);
	return fclose(fp) == 0;
}

/* While runc is still making the container (its cgroup holds only runc's
 * processes: the fixture's pid 4242 named runc:[2:INIT]), the limits it
 * has not written yet are not emitted (as "none"); once the container's
 * own process runs they are. Usage is emitted throughout. */
static void test_settings_wait_for_runtime(void)
{
	char tmp[PATH_MAX], proc[PATH_MAX + 32];
	struct coll_ctx ctx = { .layout = &layout };
	struct coll_container c;
	void *st = NULL;
	int err;

	snprintf(tmp, sizeof(tmp), "/tmp/monitor-test-runc-%d", (int)getpid());
	snprintf(proc, sizeof(proc), "%s/proc/4242", tmp);
	shell(tmp, NULL);
	if (!shell(V2, tmp))
		SKIP("cannot copy the fixture tree to /tmp");
	snprintf(proc, sizeof(proc), "%s/proc", tmp);
	CHECK(mkdir(proc, 0755) == 0 || errno == EEXIST);
	snprintf(proc, sizeof(proc), "%s/proc/4242", tmp);
	CHECK(mkdir(proc, 0755) == 0 || errno == EEXIST);
	CHECK(write_stat(tmp, "runc:[2:INIT]"));
	CHECK(use_root(tmp));
	CHECK(coll_cgroup_ops.init(&st, &ctx) == 0);
	if (!st)
		goto out;
	make_container(&c, V2_SYSTEMD);
	struct snapshot *s = tick(st, &c, &err);
	CHECK_EQ_INT(err, 0);
	CHECK(isnan(value(s, M_SPEC_MEM_LIMIT, NULL)));
	CHECK(isnan(value(s, M_SPEC_PIDS_LIMIT, NULL)));
	CHECK(!isnan(value(s, M_MEM_USAGE, NULL)));
	snapshot_unref(s);

	CHECK(write_stat(tmp, "sleep"));
	s = tick(st, &c, &err);
	CHECK_EQ_INT(err, 0);
	CHECK_EQ_DBL(value(s, M_SPEC_MEM_LIMIT, NULL), 536870912);
	snapshot_unref(s);
	coll_cgroup_ops.forget(st, &c, &c.priv[0]);
	coll_cgroup_ops.destroy(st);
out:
	shell(tmp, NULL);
}

static void test_vanish_real_cgroup(void)
{
	char name[64], dir[PATH_MAX + 64];
	struct coll_ctx ctx = { .layout = &layout };
	struct coll_container c;
	void *st = NULL;
	int err;

	if (geteuid() != 0)
		SKIP("not root: cannot create a cgroup to remove under the collector");
	if (!use_root("/"))
		SKIP("no cgroup hierarchy mounted on this host");
	const char *root = cg_layout_walk_root(&layout);
	if (!root)
		SKIP("no cgroup hierarchy to create a test cgroup in");
	snprintf(name, sizeof(name), "/monitor-test-%d", (int)getpid());
	snprintf(dir, sizeof(dir), "%s%s", root, name);
	if (mkdir(dir, 0755) < 0) {
		fprintf(stderr, "  mkdir %s: %s\n", dir, strerror(errno));
		SKIP("cannot create a cgroup on this host");
	}
	CHECK(coll_cgroup_ops.init(&st, &ctx) == 0);
	if (!st) {
		rmdir(dir);
		return;
	}
	make_container(&c, name);

	struct snapshot *s = tick(st, &c, &err);
	CHECK_EQ_INT(err, 0);
	CHECK(s && s->nsamples > 0);
	CHECK(count(s, M_MEM_USAGE) == 1 || count(s, M_CPU_USAGE) == 1);
	snapshot_unref(s);

	/* rmdir with the files open: the next pread fails with ENODEV */
	CHECK(rmdir(dir) == 0);
	s = tick(st, &c, &err);
	CHECK_EQ_INT(err, 1);
	CHECK_EQ_INT(s ? s->nsamples : 1, 0);
	snapshot_unref(s);
	s = tick(st, &c, &err);             /* counted once, no crash after */
	CHECK_EQ_INT(err, 0);
	CHECK_EQ_INT(s ? s->nsamples : 1, 0);
	snapshot_unref(s);

	coll_cgroup_ops.forget(st, &c, &c.priv[0]);
	coll_cgroup_ops.destroy(st);
	rmdir(dir);
}


/* Past three quarters of the open-file limit a container is still read,
 * by open-pread-close each tick, and holds no descriptor between ticks. */
static void test_fd_budget(void)
{
	struct coll_ctx ctx = { .layout = &layout };
	struct coll_container a, b;
	struct rlimit old, low;
	void *st = NULL;
	int err;

	CHECK(use_root(V1));
	int before = open_fds();
	if (getrlimit(RLIMIT_NOFILE, &old) < 0)
		SKIP("getrlimit failed");
	low.rlim_max = old.rlim_max;
	low.rlim_cur = 20; /* budget 15: room for a's 12 files, not b's 11 more */
	if (setrlimit(RLIMIT_NOFILE, &low) < 0)
		SKIP("cannot lower RLIMIT_NOFILE");
	CHECK(coll_cgroup_ops.init(&st, &ctx) == 0);
	setrlimit(RLIMIT_NOFILE, &old);
	if (!st)
		return;
	make_container(&a, V1_DOCKER);
	make_container(&b, V1_SYSTEMD);
	for (int i = 0; i < 2; i++) {
		struct snapshot *s = tick(st, &a, &err);
		CHECK_EQ_INT(err, 0);
		CHECK_EQ_INT(s ? s->nsamples : 0, 32);
		snapshot_unref(s);
		s = tick(st, &b, &err);
		CHECK_EQ_INT(err, 0);
		CHECK_EQ_INT(s ? s->nsamples : 0, 16);
		snapshot_unref(s);
		CHECK_EQ_INT(open_fds() - before, 12); /* a's kept, b's closed */
	}
	coll_cgroup_ops.forget(st, &a, &a.priv[0]);
	coll_cgroup_ops.forget(st, &b, &b.priv[0]);
	CHECK_EQ_INT(open_fds() - before, 0);
	coll_cgroup_ops.destroy(st);
}

/* Writes text to root/sys/fs/cgroup/rel; true on success. */
static bool put_file(const char *root, const char *rel, const char *text)
{
	char path[2 * PATH_MAX];
	snprintf(path, sizeof(path), "%s/sys/fs/cgroup/%s", root, rel);
	FILE *fp = fopen(path, "w");
	if (!fp)
		return false;
	bool ok = fputs(text, fp) >= 0;
	return fclose(fp) == 0 && ok;
}

/* Ticks c until f(snapshot) holds, at most max times: the tick it held at
 * (1-based), or 0. */
static int ticks_until(void *st, struct coll_container *c, enum metric_id m, double v, int max)
{
	int err;
	for (int i = 1; i <= max; i++) {
		struct snapshot *s = tick(st, c, &err);
		double got = value(s, m, NULL);
		snapshot_unref(s);
		if (got == v)
			return i;
	}
	return 0;
}

/* Past the descriptor budget the slow files (peak, failcnt, OOM kills) are
 * read with the settings, every tenth tick, not reopened every tick; their
 * series never go missing in between. */
static void test_slow_files_past_budget(void)
{
	char tmp[PATH_MAX];
	struct coll_ctx ctx = { .layout = &layout };
	struct coll_container c;
	struct rlimit old, low;
	void *st = NULL;
	int err;

	snprintf(tmp, sizeof(tmp), "/tmp/monitor-test-slow-%d", (int)getpid());
	shell(tmp, NULL);
	if (!shell(V1, tmp))
		SKIP("cannot copy the fixture tree to /tmp");
	CHECK(use_root(tmp));
	int before = open_fds();
	if (getrlimit(RLIMIT_NOFILE, &old) < 0)
		SKIP("getrlimit failed");
	low.rlim_max = old.rlim_max;
	low.rlim_cur = 4; /* budget 3: no container is held */
	if (setrlimit(RLIMIT_NOFILE, &low) < 0)
		SKIP("cannot lower RLIMIT_NOFILE");
	CHECK(coll_cgroup_ops.init(&st, &ctx) == 0);
	setrlimit(RLIMIT_NOFILE, &old);
	if (!st)
		goto out;
	make_container(&c, V1_DOCKER);
	for (int i = 0; i < 6; i++) {
		struct snapshot *s = tick(st, &c, &err);
		CHECK_EQ_INT(err, 0);
		CHECK_EQ_INT(s ? s->nsamples : 0, 32);
		snapshot_unref(s);
		CHECK_EQ_INT(open_fds() - before, 0);
	}
	CHECK(put_file(tmp, "memory" V1_DOCKER "/memory.failcnt", "4242\n"));
	int seen_at = ticks_until(st, &c, M_MEM_FAILCNT, 4242, 12);
	CHECK(seen_at > 1 && seen_at <= 10);
	coll_cgroup_ops.forget(st, &c, &c.priv[0]);
	coll_cgroup_ops.destroy(st);
out:
	shell(tmp, NULL);
}

/* v1 cpu.stat is held only under a quota: setting one (docker update)
 * opens it, and the CFS counters appear within the settings' ten ticks. */
static void test_quota_opens_cpu_stat(void)
{
	char tmp[PATH_MAX];
	struct coll_ctx ctx = { .layout = &layout };
	struct coll_container c;
	void *st = NULL;
	int err;

	snprintf(tmp, sizeof(tmp), "/tmp/monitor-test-quota-%d", (int)getpid());
	shell(tmp, NULL);
	if (!shell(V1, tmp))
		SKIP("cannot copy the fixture tree to /tmp");
	CHECK(use_root(tmp));
	int before = open_fds();
	CHECK(coll_cgroup_ops.init(&st, &ctx) == 0);
	if (!st)
		goto out;
	make_container(&c, V1_SYSTEMD);
	for (int i = 0; i < 6; i++) {
		struct snapshot *s = tick(st, &c, &err);
		CHECK_EQ_INT(err, 0);
		CHECK_EQ_INT(count(s, M_CFS_PERIODS), 0);
		snapshot_unref(s);
	}
	CHECK_EQ_INT(open_fds() - before, 10);
	CHECK(put_file(tmp, "cpu,cpuacct" V1_SYSTEMD "/cpu.cfs_quota_us", "50000\n"));
	int seen_at = ticks_until(st, &c, M_SPEC_CPU_QUOTA, 50000, 12);
	CHECK(seen_at >= 1 && seen_at <= 10);
	struct snapshot *s = tick(st, &c, &err);
	CHECK_EQ_INT(err, 0);
	CHECK_EQ_INT(count(s, M_CFS_PERIODS), 1);
	snapshot_unref(s);
	CHECK_EQ_INT(open_fds() - before, 11);
	/* and lifted again: closed */
	CHECK(put_file(tmp, "cpu,cpuacct" V1_SYSTEMD "/cpu.cfs_quota_us", "-1\n"));
	CHECK(ticks_until(st, &c, M_SPEC_CPU_QUOTA, NAN, 12) == 0); /* NAN never equals */
	CHECK_EQ_INT(open_fds() - before, 10);
	coll_cgroup_ops.forget(st, &c, &c.priv[0]);
	coll_cgroup_ops.destroy(st);
out:
	shell(tmp, NULL);
}

int main(void)
{
	RUN(test_layout_v1);
	RUN(test_layout_v2);
	RUN(test_layout_hybrid);
	RUN(test_layout_none);
	RUN(test_kv_get);
	RUN(test_psi_total);
	RUN(test_cpuset_count);
	RUN(test_v1_docker);
	RUN(test_v1_percpu);
	RUN(test_v1_systemd);
	RUN(test_v1_kubepods);
	RUN(test_v1_malformed);
	RUN(test_v1_missing);
	RUN(test_missing_cgroup);
	RUN(test_v2_systemd);
	RUN(test_v2_docker);
	RUN(test_v2_kubepods);
	RUN(test_v2_malformed);
	RUN(test_v2_missing);
	RUN(test_hybrid_docker);
	RUN(test_hybrid_others);
	RUN(test_fds_kept_and_released);
	RUN(test_fd_budget);
	RUN(test_slow_files_past_budget);
	RUN(test_quota_opens_cpu_stat);
	RUN(test_settings_refresh);
	RUN(test_settings_wait_for_runtime);
	RUN(test_vanish_copied_tree);
	RUN(test_vanish_real_cgroup);
	TEST_END();
}
