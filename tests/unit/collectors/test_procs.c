/*
 * test_procs.c - the process collector (collectors/procs.c): golden counts
 * on the fixture host root tests/fixtures/proc/host (a container of two
 * processes, a pod whose processes sit in its children's cgroups, an empty
 * cgroup, a pid that is gone), the refresh cadence, switched off,
 * permission errors as an unprivileged user on a copied tree, and real
 * child processes of this test, one of which exits between scans.
 */
#include "collectors/collector.h"
#include "../test.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROOT FIXTURES "/proc/host"
#define CG_A "/docker/a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
#define CG_E "/docker/d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4"
#define CG_V "/docker/e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5"
#define CG_POD "/kubepods/pod6f1c8a2e-4b3d-4e5f-9a7b-1c2d3e4f5a6b"

static struct cg_layout layout;

static bool use_root(const char *root)
{
	return hostroot_set(root) == 0 && cg_layout_detect(&layout) == 0;
}

static void make(struct coll_container *c, const char *cgroup)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->id, sizeof(c->id), "%s", strrchr(cgroup, '/') + 1);
	c->cgroup = (char *)cgroup;
	c->meta.restart_count = -1;
}

static void *init_collector(int64_t interval_ms)
{
	void *st = NULL;
	struct coll_ctx ctx = { .layout = &layout, .process_interval_ms = interval_ms };
	CHECK_EQ_INT(coll_procs_ops.init(&st, &ctx), 0);
	return st;
}

/* The four values one collect gives c at time_ms; false when it gave none. */
struct counts {
	double processes, threads, fds, sockets;
	int errors;
};

static bool collect(void *st, struct coll_container *c, int64_t time_ms, struct counts *out)
{
	struct coll_sink sink;
	memset(out, 0, sizeof(*out));
	if (sink_open(&sink, time_ms) != 0)
		return false;
	sink_begin_container(&sink, c, 0);
	out->errors = coll_procs_ops.collect(st, c, &c->priv[0], &sink);
	struct snapshot *s = sink_close(&sink);
	int seen = 0;
	for (size_t i = 0; i < s->nsamples; i++) {
		const struct snap_sample *sm = &s->samples[i];
		double *v = sm->family == M_PROCESSES ? &out->processes :
			    sm->family == M_THREADS ? &out->threads :
			    sm->family == M_FILE_DESCRIPTORS ? &out->fds :
			    sm->family == M_SOCKETS ? &out->sockets : NULL;
		if (v) {
			*v = sm->value;
			seen++;
		}
	}
	snapshot_unref(s);
	CHECK(seen == 0 || seen == 4);
	return seen == 4;
}

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

/* ---- the fixture ------------------------------------------------------------ */

static void test_fixture_counts(void)
{
	struct coll_container a, pod, e, v;
	struct counts n;
	if (!use_root(ROOT)) {
		CHECK(!"fixture root");
		return;
	}
	make(&a, CG_A);
	make(&pod, CG_POD);
	make(&e, CG_E);
	make(&v, CG_V);
	void *st = init_collector(10000);

	/* pid 100: 1 thread, 4 fds, 1 socket; pid 101: 4 threads, 5 fds, 2 sockets. */
	CHECK(collect(st, &a, 1000, &n));
	CHECK_EQ_DBL(n.processes, 2);
	CHECK_EQ_DBL(n.threads, 5);
	CHECK_EQ_DBL(n.fds, 9);
	CHECK_EQ_DBL(n.sockets, 3);
	CHECK_EQ_INT(n.errors, 0);
	/* The pod's processes are in its containers' cgroups. */
	CHECK(collect(st, &pod, 1000, &n));
	CHECK_EQ_DBL(n.processes, 2);
	CHECK_EQ_DBL(n.threads, 2);
	CHECK_EQ_DBL(n.fds, 2);
	CHECK_EQ_DBL(n.sockets, 0);
	/* No process, or only one that is gone: zeros, not errors. */
	CHECK(collect(st, &e, 1000, &n));
	CHECK_EQ_DBL(n.processes, 0);
	CHECK(collect(st, &v, 1000, &n));
	CHECK_EQ_DBL(n.processes, 0);
	CHECK_EQ_DBL(n.fds, 0);
	CHECK_EQ_INT(n.errors, 0);

	coll_procs_ops.forget(st, &a, &a.priv[0]);
	coll_procs_ops.forget(st, &pod, &pod.priv[0]);
	coll_procs_ops.forget(st, &e, &e.priv[0]);
	coll_procs_ops.forget(st, &v, &v.priv[0]);
	coll_procs_ops.destroy(st);

	/* Off: nothing. */
	st = init_collector(0);
	CHECK(!collect(st, &a, 1000, &n));
	coll_procs_ops.forget(st, &a, &a.priv[0]);
	coll_procs_ops.destroy(st);
}

static void test_cadence(void)
{
	char tmp[] = "/tmp/monitor-procs-XXXXXX", root[PATH_MAX];
	struct coll_container a;
	struct counts n;
	if (!mkdtemp(tmp)) {
		CHECK(!"mkdtemp");
		return;
	}
	snprintf(root, sizeof(root), "%s/host", tmp);
	CHECK(sh("cp -a '" ROOT "' '%s'", root));
	CHECK(use_root(root));
	make(&a, CG_A);
	void *st = init_collector(10000);
	CHECK(collect(st, &a, 1000, &n));
	CHECK_EQ_DBL(n.processes, 2);
	/* A third process joins: the last scan's values stand until the next. */
	CHECK(sh("echo 200 >> '%s/sys/fs/cgroup/memory%s/cgroup.procs'", root, CG_A));
	CHECK(collect(st, &a, 2000, &n));
	CHECK_EQ_DBL(n.processes, 2);
	/* The next scan comes within one interval of the first. */
	CHECK(collect(st, &a, 1000 + 10000, &n));
	CHECK_EQ_DBL(n.processes, 3);
	CHECK_EQ_DBL(n.fds, 10);
	CHECK_EQ_DBL(n.threads, 6);
	/* The cgroup is removed: the container has no values any more. */
	CHECK(sh("rm -rf '%s/sys/fs/cgroup/memory%s'", root, CG_A));
	CHECK(!collect(st, &a, 1000 + 20000, &n));
	CHECK_EQ_INT(n.errors, 0);
	coll_procs_ops.forget(st, &a, &a.priv[0]);
	coll_procs_ops.destroy(st);
	sh("rm -rf '%s'", tmp);
}

/* ---- permission errors ------------------------------------------------------------ */

static int unprivileged_child(const char *root)
{
	struct coll_container a;
	struct counts n;
	if (getuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
		return 10;
	if (!use_root(root))
		return 11;
	make(&a, CG_A);
	void *st = NULL;
	struct coll_ctx ctx = { .layout = &layout, .process_interval_ms = 10000 };
	if (coll_procs_ops.init(&st, &ctx) != 0)
		return 12;
	/* 101's descriptors are hidden: counted as one error; the rest stands. */
	int rc = 0;
	if (!collect(st, &a, 1000, &n))
		rc = 20;
	else if (n.errors != 1)
		rc = 21;
	else if (n.processes != 2 || n.fds != 4 || n.sockets != 1)
		rc = 22;
	coll_procs_ops.forget(st, &a, &a.priv[0]);
	coll_procs_ops.destroy(st);
	return rc;
}

static void test_permission_denied(void)
{
	char tmp[] = "/tmp/monitor-procs-XXXXXX", root[PATH_MAX];
	if (!mkdtemp(tmp)) {
		CHECK(!"mkdtemp");
		return;
	}
	snprintf(root, sizeof(root), "%s/host", tmp);
	CHECK(sh("chmod 755 '%s' && cp -a '" ROOT "' '%s' && chmod 000 '%s/proc/101/fd'", tmp, root,
		 root));
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

/* ---- real processes ------------------------------------------------------------------ */

static int count_fds(pid_t pid)
{
	char path[64];
	int n = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	struct dirent *de;
	while (d && (de = readdir(d)))
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static void test_real_children(void)
{
	char tmp[] = "/tmp/monitor-procs-XXXXXX", cg[PATH_MAX];
	struct coll_container a;
	struct counts n;
	if (!mkdtemp(tmp)) {
		CHECK(!"mkdtemp");
		return;
	}
	int ready[2];
	CHECK(pipe(ready) == 0);
	pid_t kids[2];
	for (int k = 0; k < 2; k++) {
		kids[k] = fork();
		if (kids[k] == 0) {
			int sv[2];
			/* The first child holds a socket pair: two sockets. */
			if (k == 0 && socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
				_exit(1);
			if (write(ready[1], "x", 1) != 1)
				_exit(1);
			pause();
			_exit(0);
		}
	}
	char x;
	CHECK(read(ready[0], &x, 1) == 1 && read(ready[0], &x, 1) == 1);
	close(ready[0]);
	close(ready[1]);
	snprintf(cg, sizeof(cg), "%s/sys/fs/cgroup/memory%s", tmp, CG_A);
	CHECK(sh("mkdir -p '%s' && ln -s /proc '%s/proc' && printf '%d\\n%d\\n' > '%s/cgroup.procs'",
		 cg, tmp, (int)kids[0], (int)kids[1], cg));
	CHECK(use_root(tmp));
	make(&a, CG_A);
	void *st = init_collector(10000);

	/* What the kernel lists for the two, counted by the test itself. */
	int want_fds = count_fds(kids[0]) + count_fds(kids[1]);
	CHECK(collect(st, &a, 1000, &n));
	CHECK_EQ_DBL(n.processes, 2);
	CHECK_EQ_DBL(n.threads, 2);
	CHECK_EQ_DBL(n.fds, want_fds);
	CHECK_EQ_DBL(n.sockets, 2);
	CHECK_EQ_INT(n.errors, 0);

	/* One exits (its pid still listed): it is not counted, nothing fails. */
	kill(kids[0], SIGKILL);
	waitpid(kids[0], NULL, 0);
	CHECK(collect(st, &a, 1000 + 10000, &n));
	CHECK_EQ_DBL(n.processes, 1);
	CHECK_EQ_DBL(n.sockets, 0);
	CHECK_EQ_DBL(n.fds, count_fds(kids[1]));
	CHECK_EQ_INT(n.errors, 0);

	kill(kids[1], SIGKILL);
	waitpid(kids[1], NULL, 0);
	CHECK(collect(st, &a, 1000 + 20000, &n));
	CHECK_EQ_DBL(n.processes, 0);
	coll_procs_ops.forget(st, &a, &a.priv[0]);
	coll_procs_ops.destroy(st);
	sh("rm -rf '%s'", tmp);
}

int main(void)
{
	RUN(test_fixture_counts);
	RUN(test_cadence);
	RUN(test_permission_denied);
	RUN(test_real_children);
	TEST_END();
}
