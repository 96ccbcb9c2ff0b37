/*
 * test_ebpf.c - the eBPF collector: the pure parts everywhere (bucket
 * bounds, OOM record paths, histogram exposition, defaults, the switched-off
 * collector), and, as root, the real probes against this kernel: a TCP
 * transfer and a refused connect made from a cgroup of our own are counted
 * there, a probe pointed at a missing tracepoint stays off while the others
 * run, and the cgroup's map entries leave with its directory. Without root
 * the probes must come up off (that is checked too), the live tests skip.
 */
#include "collectors/collector.h"
#include "collectors/ebpf.h"
#include "../test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------- */

/* The value of family m with extra labels containing `with` (NULL: any) in
 * snap, summed; -1 when there is no such sample. */
static double value_of(const struct snapshot *snap, enum metric_id m, const char *with)
{
	double v = -1;
	for (size_t i = 0; i < snap->nsamples; i++) {
		const struct snap_sample *s = &snap->samples[i];
		if (s->family != (uint32_t)m)
			continue;
		if (with && (!s->extra || !strstr(s->extra, with)))
			continue;
		v = (v < 0 ? 0 : v) + s->value;
	}
	return v;
}

static struct snapshot *agent_samples(const struct coll_ops *ops, void *state)
{
	struct coll_sink sink;
	if (sink_open(&sink, now_ms()) < 0)
		return NULL;
	ops->begin(state, &sink);
	sink_begin_agent(&sink);
	ops->agent_metrics(state, &sink);
	return sink_close(&sink);
}

/* ---- pure parts ---------------------------------------------------------------- */

static void test_bucket_bounds(void)
{
	char le[32];
	ebpf_hist_le(0, le, sizeof(le));
	CHECK_STR(le, "1e-06");
	ebpf_hist_le(10, le, sizeof(le));
	CHECK_STR(le, "0.001024");
	ebpf_hist_le(20, le, sizeof(le));
	CHECK_STR(le, "1.048576");
	ebpf_hist_le(EBPF_HIST_SLOTS - 2, le, sizeof(le));
	CHECK_STR(le, "33.554432");
}

static void test_oom_path(void)
{
	struct ebpf_oom_event ev;
	char path[512];

	memset(&ev, 0, sizeof(ev));
	CHECK(ebpf_oom_path(&ev, path, sizeof(path)) == 0);
	CHECK_STR(path, "/");
	/* leaf first, as the kernel program walks up */
	snprintf(ev.names[0], sizeof(ev.names[0]), "0123abcd");
	snprintf(ev.names[1], sizeof(ev.names[1]), "docker");
	ev.depth = 2;
	CHECK(ebpf_oom_path(&ev, path, sizeof(path)) == 0);
	CHECK_STR(path, "/docker/0123abcd");
	CHECK(ebpf_oom_path(&ev, path, 10) == -ENAMETOOLONG);
	ev.truncated = 1;   /* deeper than kept: no usable path */
	CHECK(ebpf_oom_path(&ev, path, sizeof(path)) == -ENAMETOOLONG);
	/* a record path names its container like any cgroup path */
	struct cg_ident id;
	memset(&id, 0, sizeof(id));
	CHECK(cg_classify("/docker/2a7f7d6d4b0f1f0e0c8c6a7c6e2f2e1d9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d", &id) == 1);
}

static void test_histogram_exposition(void)
{
	struct coll_sink s;
	struct coll_container c;
	memset(&c, 0, sizeof(c));
	snprintf(c.id, sizeof(c.id), "a");
	c.cgroup = (char *)"/docker/a";
	c.prom_labels = (char *)"id=\"/docker/a\",name=\"a\",image=\"\"";
	c.meta.restart_count = -1;
	CHECK(sink_open(&s, 1000) == 0);
	sink_begin_container(&s, &c, 0);
	sink_emit(&s, M_EBPF_TCP_CONNECT_LATENCY_BUCKET, "le=\"1e-06\"", 0);
	sink_emit(&s, M_EBPF_TCP_CONNECT_LATENCY_BUCKET, "le=\"+Inf\"", 2);
	sink_emit(&s, M_EBPF_TCP_CONNECT_LATENCY_SUM, NULL, 0.5);
	sink_emit(&s, M_EBPF_TCP_CONNECT_LATENCY_COUNT, NULL, 2);
	sink_emit(&s, M_EBPF_TCP_RETRANSMITS, NULL, 3);
	struct snapshot *snap = sink_close(&s);
	struct buf b;
	buf_init(&b, 1 << 20);
	CHECK(snapshot_render_text(snap, &b) == 0);
	const char *want =
		"# HELP container_network_tcp_connect_duration_seconds Time from connect() sending SYN "
		"to ESTABLISHED, in log2 buckets (1 us to 33.5 s).\n"
		"# TYPE container_network_tcp_connect_duration_seconds histogram\n"
		"container_network_tcp_connect_duration_seconds_bucket{id=\"/docker/a\",name=\"a\",image=\"\",le=\"1e-06\"} 0\n"
		"container_network_tcp_connect_duration_seconds_bucket{id=\"/docker/a\",name=\"a\",image=\"\",le=\"+Inf\"} 2\n"
		"container_network_tcp_connect_duration_seconds_sum{id=\"/docker/a\",name=\"a\",image=\"\"} 0.5\n"
		"container_network_tcp_connect_duration_seconds_count{id=\"/docker/a\",name=\"a\",image=\"\"} 2\n"
		"# HELP container_network_tcp_retransmits_total";
	CHECK(b.data && strncmp(b.data, want, strlen(want)) == 0);
	if (b.data && strncmp(b.data, want, strlen(want)))
		fprintf(stderr, "  got:\n%s\n", b.data);
	CHECK_STR(metric_type_name(HIST_COUNT), "histogram");
	CHECK_STR(metric_type_name(COUNTER), "counter");
	buf_fini(&b);
	snapshot_unref(snap);
}

static void test_defaults(void)
{
	struct ebpf_config c;
	ebpf_config_defaults(&c);
	CHECK(c.enabled);
	for (int p = 0; p < EBPF__PROBES; p++)
		CHECK(c.probe[p]);
	CHECK_STR(c.block_start, "block_rq_issue");
	CHECK_STR(c.block_done, "block_rq_complete");
	CHECK(c.max_cgroups > 0 && c.max_sockets > 0 && c.max_inflight_io > 0);
	CHECK_STR(ebpf_probe_name(EBPF_OOM), "oom");
	CHECK(ebpf_probe_name(EBPF__PROBES) == NULL);
}

/* Switched off (--no-ebpf), or no config at all: the collector starts, emits
 * nothing per container and reports every probe down. */
static void test_switched_off(void)
{
	struct cg_layout layout;
	memset(&layout, 0, sizeof(layout));
	struct ebpf_config cfg;
	ebpf_config_defaults(&cfg);
	cfg.enabled = false;
	struct coll_ctx ctx = { .layout = &layout, .ebpf = &cfg };
	for (int pass = 0; pass < 2; pass++) {
		void *state = NULL;
		if (pass == 1)
			ctx.ebpf = NULL;
		CHECK(coll_ebpf_ops.init(&state, &ctx) == 0);
		struct snapshot *snap = agent_samples(&coll_ebpf_ops, state);
		CHECK(snap != NULL);
		CHECK_EQ_DBL(value_of(snap, M_AGENT_EBPF_PROBE_UP, "probe=\"net\""), 0);
		CHECK_EQ_DBL(value_of(snap, M_AGENT_EBPF_PROBE_UP, NULL), 0);
		CHECK_EQ_DBL(value_of(snap, M_AGENT_EBPF_MAP_ENTRIES, NULL), -1);
		snapshot_unref(snap);
		coll_ebpf_ops.destroy(state);
	}
}

/* ---- live, with the real kernel --------------------------------------------------- */

struct live {
	struct cg_layout layout;
	struct ebpf_config cfg;
	struct coll_ctx ctx;
	struct coll_event_log events;
	void *state;
	char cg_rel[64];            /* our test cgroup, relative to the v2 root */
	char cg_dir[PATH_MAX + 80];
};

static bool live_open(struct live *l)
{
	memset(l, 0, sizeof(*l));
	if (cg_layout_detect(&l->layout) < 0 || !l->layout.unified[0])
		return false;
	ebpf_config_defaults(&l->cfg);
	coll_event_log_init(&l->events, 64);
	l->ctx = (struct coll_ctx){ .layout = &l->layout, .ebpf = &l->cfg, .events = &l->events };
	snprintf(l->cg_rel, sizeof(l->cg_rel), "/monitor-unit-ebpf-%d", (int)getpid());
	snprintf(l->cg_dir, sizeof(l->cg_dir), "%s%s", l->layout.unified, l->cg_rel);
	return true;
}

static void live_close(struct live *l)
{
	if (l->state)
		coll_ebpf_ops.destroy(l->state);
	rmdir(l->cg_dir);
	coll_event_log_fini(&l->events);
}

/* In a child moved into dir's cgroup: a loopback listener sends `bytes` to
 * a client (both sockets owned by the cgroup), then a connect to a port
 * nobody listens on is refused. Returns 0 when the child did all that. */
static int traffic_in_cgroup(const char *dir, size_t bytes)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char procs[PATH_MAX + 96], me[32];
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
		int fd = open(procs, O_WRONLY);
		int n = snprintf(me, sizeof(me), "%d\n", (int)getpid());
		if (fd < 0 || write(fd, me, (size_t)n) != n)
			_exit(2);
		close(fd);
		int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t alen = sizeof(a);
		setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 1) < 0 ||
		    getsockname(ls, (struct sockaddr *)&a, &alen) < 0)
			_exit(3);
		int cs = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(cs, (struct sockaddr *)&a, sizeof(a)) < 0)
			_exit(4);
		int ss = accept(ls, NULL, NULL);
		static char buf[65536];
		size_t sent = 0, got = 0;
		while (sent < bytes) {
			ssize_t w = write(ss, buf, bytes - sent < sizeof(buf) ? bytes - sent : sizeof(buf));
			if (w <= 0)
				_exit(5);
			sent += (size_t)w;
			while (got < sent) {
				ssize_t r = read(cs, buf, sizeof(buf));
				if (r <= 0)
					_exit(6);
				got += (size_t)r;
			}
		}
		close(ss);
		close(cs);
		/* the listener's port, now closed, refuses: failed connect + RST */
		close(ls);
		int fs = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(fs, (struct sockaddr *)&a, sizeof(a)) == 0 || errno != ECONNREFUSED)
			_exit(7);
		_exit(0);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static struct snapshot *collect_one(struct live *l, struct coll_container *c, void **priv)
{
	struct coll_sink sink;
	if (sink_open(&sink, now_ms()) < 0)
		return NULL;
	coll_ebpf_ops.begin(l->state, &sink);
	sink_begin_container(&sink, c, 0);
	coll_ebpf_ops.collect(l->state, c, priv, &sink);
	sink_begin_agent(&sink);
	coll_ebpf_ops.agent_metrics(l->state, &sink);
	return sink_close(&sink);
}

static void test_live_tcp_and_cleanup(void)
{
	struct live l;
	if (geteuid() != 0)
		SKIP("needs root to load eBPF programs");
	if (!live_open(&l))
		SKIP("no cgroup v2 hierarchy on this host");
	if (mkdir(l.cg_dir, 0755) < 0) {
		live_close(&l);
		SKIP("cannot make a cgroup in the v2 tree");
	}
	CHECK(coll_ebpf_ops.init(&l.state, &l.ctx) == 0);

	const size_t bytes = 4 << 20;
	CHECK_EQ_INT(traffic_in_cgroup(l.cg_dir, bytes), 0);

	struct coll_container c;
	memset(&c, 0, sizeof(c));
	snprintf(c.id, sizeof(c.id), "unit");
	c.cgroup = l.cg_rel;
	c.prom_labels = (char *)"id=\"unit\"";
	c.meta.restart_count = -1;
	void *priv = NULL;
	struct snapshot *snap = collect_one(&l, &c, &priv);
	CHECK(snap != NULL);
	if (!snap)
		goto out;
	CHECK_EQ_DBL(value_of(snap, M_AGENT_EBPF_PROBE_UP, NULL), 4);
	CHECK(value_of(snap, M_EBPF_NET_TX_BYTES, NULL) >= (double)bytes);
	CHECK(value_of(snap, M_EBPF_NET_RX_BYTES, NULL) >= (double)bytes);
	CHECK(value_of(snap, M_EBPF_NET_TX_PACKETS, NULL) >= 1);
	CHECK_EQ_DBL(value_of(snap, M_EBPF_TCP_OPENS, "active"), 1);
	CHECK_EQ_DBL(value_of(snap, M_EBPF_TCP_OPENS, "passive"), 1);
	CHECK_EQ_DBL(value_of(snap, M_EBPF_TCP_CONNECT_FAILURES, NULL), 1);
	CHECK_EQ_DBL(value_of(snap, M_EBPF_TCP_RESETS, "received"), 1);
	CHECK_EQ_DBL(value_of(snap, M_EBPF_TCP_CONNECT_LATENCY_COUNT, NULL), 1);
	CHECK(value_of(snap, M_EBPF_TCP_CONNECT_LATENCY_SUM, NULL) > 0);
	CHECK_EQ_DBL(value_of(snap, M_EBPF_TCP_CONNECT_LATENCY_BUCKET, "+Inf"), 1);
	CHECK_EQ_DBL(value_of(snap, M_EBPF_TCP_ESTABLISHED, NULL), 0);
	CHECK_EQ_DBL(value_of(snap, M_EBPF_OOM_KILLS, NULL), 0);
	double net_entries = value_of(snap, M_AGENT_EBPF_MAP_ENTRIES, "map=\"net_stats\"");
	double tcp_entries = value_of(snap, M_AGENT_EBPF_MAP_ENTRIES, "map=\"tcp_stats\"");
	CHECK(net_entries >= 1 && tcp_entries >= 1);
	snapshot_unref(snap);

	/* The cgroup goes: its entries go with it (cgroup_rmdir), at once. */
	CHECK(rmdir(l.cg_dir) == 0);
	coll_ebpf_ops.forget(l.state, &c, &priv);
	/* map fill is recounted every 10 ticks */
	for (int i = 0; i < 10; i++)
		snapshot_unref(agent_samples(&coll_ebpf_ops, l.state));
	snap = agent_samples(&coll_ebpf_ops, l.state);
	CHECK(snap != NULL);
	if (snap) {
		CHECK(value_of(snap, M_AGENT_EBPF_MAP_ENTRIES, "map=\"net_stats\"") < net_entries);
		CHECK(value_of(snap, M_AGENT_EBPF_MAP_ENTRIES, "map=\"tcp_stats\"") < tcp_entries);
		snapshot_unref(snap);
	}
out:
	live_close(&l);
}

/* A probe pointed at a tracepoint this kernel lacks stays off; the rest run. */
static void test_live_missing_tracepoint(void)
{
	struct live l;
	if (geteuid() != 0)
		SKIP("needs root to load eBPF programs");
	if (!live_open(&l))
		SKIP("no cgroup v2 hierarchy on this host");
	snprintf(l.cfg.block_start, sizeof(l.cfg.block_start), "no_such_tracepoint");
	l.cfg.probe[EBPF_TCP] = false;
	CHECK(coll_ebpf_ops.init(&l.state, &l.ctx) == 0);
	struct snapshot *snap = agent_samples(&coll_ebpf_ops, l.state);
	CHECK(snap != NULL);
	if (snap) {
		CHECK_EQ_DBL(value_of(snap, M_AGENT_EBPF_PROBE_UP, "probe=\"block\""), 0);
		CHECK_EQ_DBL(value_of(snap, M_AGENT_EBPF_PROBE_UP, "probe=\"tcp\""), 0);
		CHECK_EQ_DBL(value_of(snap, M_AGENT_EBPF_PROBE_UP, "probe=\"net\""), 1);
		CHECK_EQ_DBL(value_of(snap, M_AGENT_EBPF_PROBE_UP, "probe=\"oom\""), 1);
		snapshot_unref(snap);
	}
	live_close(&l);
}

/* Without privileges every probe is off and the collector still runs.
 * Returns 0 when that holds. */
static int unprivileged_check(void)
{
	struct cg_layout layout;
	struct ebpf_config cfg;
	memset(&layout, 0, sizeof(layout));
	cg_layout_detect(&layout);
	ebpf_config_defaults(&cfg);
	struct coll_ctx ctx = { .layout = &layout, .ebpf = &cfg };
	void *state = NULL;
	if (coll_ebpf_ops.init(&state, &ctx) != 0)
		return 1;
	struct snapshot *snap = agent_samples(&coll_ebpf_ops, state);
	int bad = !snap || value_of(snap, M_AGENT_EBPF_PROBE_UP, NULL) != 0 ||
		  value_of(snap, M_AGENT_EBPF_PROBE_UP, "probe=\"oom\"") != 0;
	snapshot_unref(snap);
	coll_ebpf_ops.destroy(state);
	return bad;
}

/* As root, checked in a child that gives root up. */
static void test_unprivileged(void)
{
	if (geteuid() != 0) {
		CHECK_EQ_INT(unprivileged_check(), 0);
		return;
	}
	pid_t pid = fork();
	if (pid < 0)
		SKIP("fork failed");
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(9);
		_exit(unprivileged_check());
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st));
	CHECK_EQ_INT(WEXITSTATUS(st), 0);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_ERROR);
	RUN(test_bucket_bounds);
	RUN(test_oom_path);
	RUN(test_histogram_exposition);
	RUN(test_defaults);
	RUN(test_switched_off);
	RUN(test_live_tcp_and_cleanup);
	RUN(test_live_missing_tracepoint);
	RUN(test_unprivileged);
	TEST_END();
}
