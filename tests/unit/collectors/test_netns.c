/*
 * test_netns.c - the network collector (collectors/netns.c) on the fixture
 * host root tests/fixtures/proc/host: golden counters of a private
 * namespace, a container that joined it (shared, counted once on the
 * owner), a host-network container (marked, no traffic), a Kubernetes pod
 * owning its containers' namespace, a cgroup with no process, a pid that is
 * gone, a net/dev that does not parse; ownership when the newer container is
 * visited first and when the owner goes away; permission errors (as an
 * unprivileged user on a copied tree); and a real process in its own
 * namespace that exits between ticks (no samples, no leaked descriptor).
 */
#include "collectors/collector.h"
#include "../test.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROOT FIXTURES "/proc/host"
#define ID_A "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
#define ID_B "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
#define ID_H "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"
#define ID_E "d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4"
#define ID_V "e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5"
#define ID_X "f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6"
#define POD "/kubepods/pod6f1c8a2e-4b3d-4e5f-9a7b-1c2d3e4f5a6b"
#define ID_P1 "28747eb21e9c771fbcf2fe31f7b25b32e0616672c867e98e4db852fd9d5a089a"
#define ID_P2 "985bc9d470f7e402c69677d8ef1775b998e740453380add785461492357e3263"

enum { A, B, H, E, V, X, PD, P1, P2, NC };

static struct cg_layout layout;
static struct coll_container cs[NC];
static char cgroups[NC][160];

static void make(int i, const char *cgroup, const char *id, const char *name, double started,
		 enum coll_runtime rt)
{
	memset(&cs[i], 0, sizeof(cs[i]));
	snprintf(cgroups[i], sizeof(cgroups[i]), "%s", cgroup);
	snprintf(cs[i].id, sizeof(cs[i].id), "%s", id);
	cs[i].cgroup = cgroups[i];
	cs[i].runtime = rt;
	cs[i].meta.name = (char *)name;
	cs[i].meta.restart_count = -1;
	cs[i].cgroup_ctime = started;
}

static void make_all(void)
{
	make(A, "/docker/" ID_A, ID_A, "web", 100, RUNTIME_DOCKER);
	make(B, "/docker/" ID_B, ID_B, "side", 200, RUNTIME_DOCKER);
	make(H, "/docker/" ID_H, ID_H, "hostnet", 100, RUNTIME_DOCKER);
	make(E, "/docker/" ID_E, ID_E, "empty", 100, RUNTIME_DOCKER);
	make(V, "/docker/" ID_V, ID_V, "vanished", 100, RUNTIME_DOCKER);
	make(X, "/docker/" ID_X, ID_X, "badfile", 100, RUNTIME_DOCKER);
	/* The pod's cgroup appears after its first container's: it still owns. */
	make(PD, POD, "6f1c8a2e-4b3d-4e5f-9a7b-1c2d3e4f5a6b", "pod", 500, RUNTIME_KUBEPOD);
	make(P1, POD "/" ID_P1, ID_P1, "app1", 300, RUNTIME_CONTAINERD);
	make(P2, POD "/" ID_P2, ID_P2, "app2", 400, RUNTIME_CONTAINERD);
}

static void *init_collector(bool network)
{
	void *st = NULL;
	struct coll_ctx ctx = { .layout = &layout, .network = network };
	CHECK_EQ_INT(coll_netns_ops.init(&st, &ctx), 0);
	return st;
}

/* One tick at time_ms over the containers in order; *errors sums collect's
 * returns. */
static struct snapshot *tick(void *st, const int *order, int n, int64_t time_ms, int *errors)
{
	struct coll_sink sink;
	*errors = 0;
	if (sink_open(&sink, time_ms) != 0)
		return NULL;
	for (int k = 0; k < n; k++) {
		struct coll_container *c = &cs[order[k]];
		sink_begin_container(&sink, c, 0);
		*errors += coll_netns_ops.collect(st, c, &c->priv[0], &sink);
	}
	return sink_close(&sink);
}

static const struct snap_container *find_c(const struct snapshot *s, const char *id)
{
	for (size_t i = 0; i < s->ncontainers; i++)
		if (!strcmp(s->containers[i].id, id))
			return &s->containers[i];
	return NULL;
}

/* Samples of family f for container id whose extra labels contain want
 * (NULL: any); the value of the last one in *v. */
static int count(const struct snapshot *s, const char *id, enum metric_id f, const char *want,
		 double *v)
{
	const struct snap_container *c = find_c(s, id);
	int n = 0;
	if (!c)
		return 0;
	for (uint32_t i = 0; i < c->sample_count; i++) {
		const struct snap_sample *sm = &s->samples[c->sample_first + i];
		if (sm->family != f || (want && (!sm->extra || !strstr(sm->extra, want))))
			continue;
		n++;
		if (v)
			*v = sm->value;
	}
	return n;
}

static int all_samples(const struct snapshot *s, const char *id)
{
	const struct snap_container *c = find_c(s, id);
	return c ? (int)c->sample_count : 0;
}

static bool use_root(const char *root)
{
	return hostroot_set(root) == 0 && cg_layout_detect(&layout) == 0;
}

static void forget_all(void *st)
{
	for (int i = 0; i < NC; i++)
		coll_netns_ops.forget(st, &cs[i], &cs[i].priv[0]);
}

/* ---- the fixture ------------------------------------------------------------ */

static void test_fixture_modes_and_traffic(void)
{
	static const int order[] = { A, B, H, E, V, X, PD, P1, P2 };
	int errors;
	double v;
	if (!use_root(ROOT)) {
		CHECK(!"fixture root");
		return;
	}
	make_all();
	void *st = init_collector(true);

	/* Tick 1: every namespace is claimed, none reports traffic yet. */
	struct snapshot *s = tick(st, order, NC, 1000, &errors);
	CHECK_EQ_INT(count(s, ID_A, M_NET_MODE, "mode=\"private\",owner=\"web\"", &v), 1);
	CHECK_EQ_INT(v, 1);
	CHECK_EQ_INT(count(s, ID_B, M_NET_MODE, "mode=\"shared\",owner=\"web\"", NULL), 1);
	CHECK_EQ_INT(count(s, ID_H, M_NET_MODE, "mode=\"host\",owner=\"\"", NULL), 1);
	CHECK_EQ_INT(count(s, "6f1c8a2e-4b3d-4e5f-9a7b-1c2d3e4f5a6b", M_NET_MODE,
			   "mode=\"private\",owner=\"pod\"", NULL), 1);
	CHECK_EQ_INT(count(s, ID_P1, M_NET_MODE, "mode=\"shared\",owner=\"pod\"", NULL), 1);
	CHECK_EQ_INT(count(s, ID_P2, M_NET_MODE, "mode=\"shared\",owner=\"pod\"", NULL), 1);
	CHECK_EQ_INT(count(s, ID_A, M_NET_RX_BYTES, NULL, NULL), 0);
	CHECK_EQ_INT(all_samples(s, ID_E), 0);     /* no process: no namespace */
	CHECK_EQ_INT(all_samples(s, ID_V), 0);     /* its pid is gone */
	CHECK_EQ_INT(errors, 0);
	snapshot_unref(s);

	/* Tick 2: the owners report their namespaces' interfaces. */
	s = tick(st, order, NC, 2000, &errors);
	CHECK_EQ_INT(count(s, ID_A, M_NET_RX_BYTES, "interface=\"eth0\"", &v), 1);
	CHECK_EQ_DBL(v, 123456789);
	CHECK_EQ_INT(count(s, ID_A, M_NET_RX_PACKETS, "interface=\"eth0\"", &v), 1);
	CHECK_EQ_DBL(v, 1000);
	CHECK_EQ_INT(count(s, ID_A, M_NET_RX_ERRORS, "interface=\"eth0\"", &v), 1);
	CHECK_EQ_DBL(v, 2);
	CHECK_EQ_INT(count(s, ID_A, M_NET_RX_DROPPED, "interface=\"eth0\"", &v), 1);
	CHECK_EQ_DBL(v, 3);
	CHECK_EQ_INT(count(s, ID_A, M_NET_TX_BYTES, "interface=\"eth0\"", &v), 1);
	CHECK_EQ_DBL(v, 987654);
	CHECK_EQ_INT(count(s, ID_A, M_NET_TX_PACKETS, "interface=\"eth0\"", &v), 1);
	CHECK_EQ_DBL(v, 900);
	CHECK_EQ_INT(count(s, ID_A, M_NET_TX_ERRORS, "interface=\"eth0\"", &v), 1);
	CHECK_EQ_DBL(v, 4);
	CHECK_EQ_INT(count(s, ID_A, M_NET_TX_DROPPED, "interface=\"eth0\"", &v), 1);
	CHECK_EQ_DBL(v, 5);
	/* lo and veth* are skipped as cAdvisor skips them; an odd name is escaped. */
	CHECK_EQ_INT(count(s, ID_A, M_NET_RX_BYTES, NULL, NULL), 2);
	CHECK_EQ_INT(count(s, ID_A, M_NET_RX_BYTES, "interface=\"net\\\"1\"", &v), 1);
	CHECK_EQ_DBL(v, 10);
	CHECK_EQ_INT(count(s, ID_A, M_NET_RX_BYTES, "interface=\"lo\"", NULL), 0);
	CHECK_EQ_INT(count(s, ID_A, M_NET_RX_BYTES, "veth", NULL), 0);
	/* Counted once: not on the container that joined, not on the host one. */
	CHECK_EQ_INT(count(s, ID_B, M_NET_RX_BYTES, NULL, NULL), 0);
	CHECK_EQ_INT(count(s, ID_H, M_NET_RX_BYTES, NULL, NULL), 0);
	CHECK_EQ_INT(all_samples(s, ID_H), 1);
	CHECK_EQ_INT(count(s, "6f1c8a2e-4b3d-4e5f-9a7b-1c2d3e4f5a6b", M_NET_TX_BYTES,
			   "interface=\"eth0\"", &v), 1);
	CHECK_EQ_DBL(v, 8000);
	CHECK_EQ_INT(count(s, ID_P1, M_NET_TX_BYTES, NULL, NULL), 0);
	CHECK_EQ_INT(count(s, ID_P2, M_NET_TX_BYTES, NULL, NULL), 0);
	/* The garbled net/dev: one error, no traffic, still its mode. */
	CHECK_EQ_INT(errors, 1);
	CHECK_EQ_INT(count(s, ID_X, M_NET_RX_BYTES, NULL, NULL), 0);
	CHECK_EQ_INT(count(s, ID_X, M_NET_MODE, "private", NULL), 1);
	snapshot_unref(s);

	forget_all(st);
	coll_netns_ops.destroy(st);
}

static void test_owner_order_and_handover(void)
{
	int errors;
	double v;
	if (!use_root(ROOT)) {
		CHECK(!"fixture root");
		return;
	}
	make_all();
	void *st = init_collector(true);

	/* The newer container is visited first: it claims, then the older one
	 * takes over in the same tick; neither reports it twice. */
	static const int ba[] = { B, A };
	struct snapshot *s = tick(st, ba, 2, 1000, &errors);
	CHECK_EQ_INT(count(s, ID_B, M_NET_MODE, "mode=\"private\"", NULL), 1);
	CHECK_EQ_INT(count(s, ID_A, M_NET_MODE, "mode=\"private\"", NULL), 1);
	CHECK_EQ_INT(count(s, ID_A, M_NET_RX_BYTES, NULL, NULL) + count(s, ID_B, M_NET_RX_BYTES, NULL, NULL), 0);
	snapshot_unref(s);
	s = tick(st, ba, 2, 2000, &errors);
	CHECK_EQ_INT(count(s, ID_B, M_NET_MODE, "mode=\"shared\",owner=\"web\"", NULL), 1);
	CHECK_EQ_INT(count(s, ID_B, M_NET_RX_BYTES, NULL, NULL), 0);
	CHECK_EQ_INT(count(s, ID_A, M_NET_RX_BYTES, "eth0", &v), 1);
	snapshot_unref(s);

	/* The owner goes away: the other takes the namespace over, and reports
	 * from the tick after. */
	coll_netns_ops.forget(st, &cs[A], &cs[A].priv[0]);
	static const int b[] = { B };
	s = tick(st, b, 1, 3000, &errors);
	CHECK_EQ_INT(count(s, ID_B, M_NET_MODE, "mode=\"private\",owner=\"side\"", NULL), 1);
	CHECK_EQ_INT(count(s, ID_B, M_NET_RX_BYTES, NULL, NULL), 0);
	snapshot_unref(s);
	s = tick(st, b, 1, 4000, &errors);
	CHECK_EQ_INT(count(s, ID_B, M_NET_RX_BYTES, "eth0", &v), 1);
	CHECK_EQ_DBL(v, 123456789);
	snapshot_unref(s);

	/* Switched off: nothing at all. */
	forget_all(st);
	coll_netns_ops.destroy(st);
	st = init_collector(false);
	static const int all[] = { A, B, H };
	s = tick(st, all, 3, 5000, &errors);
	s = (snapshot_unref(s), tick(st, all, 3, 6000, &errors));
	CHECK_EQ_INT(s->nsamples, 0);
	snapshot_unref(s);
	forget_all(st);
	coll_netns_ops.destroy(st);
}

/* ---- permission errors ------------------------------------------------------------ */

static bool sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs a shell command built like printf; true when it exits 0. */
static bool sh(const char *fmt, ...)
{
	char cmd[2 * PATH_MAX + 64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd) == 0;
}

/* Runs the collector over A and B on a copy of the fixture where the
 * namespaces of A's processes may not be looked at, as an unprivileged user
 * (root reads through mode 000). Exit status: 0 when every check held. */
static int unprivileged_child(const char *root)
{
	int errors;
	if (getuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
		return 10;
	if (!use_root(root))
		return 11;
	make_all();
	void *st = NULL;
	struct coll_ctx ctx = { .layout = &layout, .network = true };
	if (coll_netns_ops.init(&st, &ctx) != 0)
		return 12;
	static const int ab[] = { A, B, E };
	struct coll_sink sink;
	int rc = 0;
	for (int64_t t = 1000; t <= 2000; t += 1000) {
		sink_open(&sink, t);
		errors = 0;
		for (int k = 0; k < 3; k++) {
			sink_begin_container(&sink, &cs[ab[k]], 0);
			errors += coll_netns_ops.collect(st, &cs[ab[k]], &cs[ab[k]].priv[0], &sink);
		}
		struct snapshot *s = sink_close(&sink);
		if (errors != 1)
			rc = 20 + errors;       /* A counted once, B unaffected */
		else if (all_samples(s, ID_A) != 0)
			rc = 30;
		else if (count(s, ID_B, M_NET_MODE, "mode=\"private\",owner=\"side\"", NULL) != 1)
			rc = 31;
		snapshot_unref(s);
	}
	forget_all(st);
	coll_netns_ops.destroy(st);
	return rc;
}

static void test_permission_denied(void)
{
	char tmp[] = "/tmp/monitor-netns-XXXXXX", root[PATH_MAX];
	if (!mkdtemp(tmp)) {
		CHECK(!"mkdtemp");
		return;
	}
	snprintf(root, sizeof(root), "%s/host", tmp);
	CHECK(sh("chmod 755 '%s' && cp -a '" ROOT "' '%s'", tmp, root));
	CHECK(sh("chmod 000 '%s/proc/100/ns' '%s/proc/101/ns'", root, root));
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		_exit(unprivileged_child(root));
	int status = -1;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status));
	CHECK_EQ_INT(WEXITSTATUS(status), 0);
	sh("chmod -R u+rwx '%s'; rm -rf '%s'", tmp, tmp);
}

/* ---- a real process that exits -------------------------------------------------------- */

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	while (d && (de = readdir(d)))
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n - 1; /* the directory's own */
}

static void test_real_vanished_pid(void)
{
	if (geteuid() != 0)
		SKIP("needs root to give a child its own network namespace");
	char tmp[] = "/tmp/monitor-netns-XXXXXX", path[PATH_MAX];
	if (!mkdtemp(tmp)) {
		CHECK(!"mkdtemp");
		return;
	}
	int ready[2];
	CHECK(pipe(ready) == 0);
	pid_t child = fork();
	if (child == 0) {
		char ok = unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
		if (write(ready[1], &ok, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char ok = 'n';
	CHECK(read(ready[0], &ok, 1) == 1);
	close(ready[0]);
	close(ready[1]);
	if (ok != 'y') {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		sh("rm -rf '%s'", tmp);
		SKIP("unshare(CLONE_NEWNET) refused here");
	}
	/* A host root whose /proc is this host's and whose cgroup lists the child. */
	char pidtext[32];
	snprintf(path, sizeof(path), "%s/sys/fs/cgroup/memory/docker/%s", tmp, ID_A);
	CHECK(sh("mkdir -p '%s' && ln -s /proc '%s/proc'", path, tmp));
	snprintf(pidtext, sizeof(pidtext), "%d", (int)child);
	CHECK(sh("echo %s > '%s/cgroup.procs'", pidtext, path));
	CHECK(use_root(tmp));
	make_all();
	void *st = init_collector(true);
	static const int a[] = { A };
	int errors, fds0 = count_fds();

	struct snapshot *s = tick(st, a, 1, 1000, &errors);
	CHECK_EQ_INT(count(s, ID_A, M_NET_MODE, "mode=\"private\",owner=\"web\"", NULL), 1);
	snapshot_unref(s);
	s = tick(st, a, 1, 2000, &errors);   /* the owner's net/dev is opened and read */
	CHECK_EQ_INT(errors, 0);
	CHECK_EQ_INT(count(s, ID_A, M_NET_MODE, NULL, NULL), 1);
	CHECK_EQ_INT(count(s, ID_A, M_NET_RX_BYTES, NULL, NULL), 0); /* only lo in there */
	CHECK_EQ_INT(count_fds(), fds0 + 1);
	snapshot_unref(s);

	/* The process exits; its pid stays listed (a cgroup.procs read just
	 * before). At the next check of the pid (every 5 s) the namespace the
	 * open file kept is let go. */
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	s = tick(st, a, 1, 12000, &errors);
	CHECK_EQ_INT(errors, 0);
	CHECK_EQ_INT(all_samples(s, ID_A), 0);
	CHECK_EQ_INT(count_fds(), fds0);
	snapshot_unref(s);

	forget_all(st);
	coll_netns_ops.destroy(st);
	sh("rm -rf '%s'", tmp);
}

int main(void)
{
	RUN(test_fixture_modes_and_traffic);
	RUN(test_owner_order_and_handover);
	RUN(test_permission_denied);
	RUN(test_real_vanished_pid);
	TEST_END();
}
