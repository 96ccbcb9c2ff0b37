/*
 * test_fs.c - the filesystem collector (collectors/fs.c) on trees made in a
 * temporary host root: the walk's total against an nftw du of the same
 * tree, the per-tick budget (a walk spread over ticks), hard links counted
 * by share, capacity from statfs, a tree that changes or vanishes mid-walk,
 * a container forgotten mid-walk, a metadata update that keeps the last
 * size, and two containers both measured under a small budget.
 */
#define _XOPEN_SOURCE 700
#include "collectors/collector.h"
#include "../test.h"

#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static char root[64];

static void put_file(const char *rel, size_t bytes)
{
	char path[256], buf[4096];
	snprintf(path, sizeof(path), "%s%s", root, rel);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	memset(buf, 'x', sizeof(buf));
	while (fd >= 0 && bytes > 0) {
		size_t n = bytes < sizeof(buf) ? bytes : sizeof(buf);
		if (write(fd, buf, n) != (ssize_t)n)
			break;
		bytes -= n;
	}
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

static void put_dir(const char *rel)
{
	char path[256];
	snprintf(path, sizeof(path), "%s%s", root, rel);
	mkdir(path, 0755);
}

static double du_total;
static dev_t du_dev;

static int du_one(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
	if (sb->st_dev != du_dev)
		return 0;
	double b = (double)sb->st_blocks * 512;
	if (!S_ISDIR(sb->st_mode) && sb->st_nlink > 1)
		b /= (double)sb->st_nlink;
	du_total += b;
	return 0;
}

static double du(const char *rel)
{
	char path[256];
	struct stat sb;
	snprintf(path, sizeof(path), "%s%s", root, rel);
	du_total = 0;
	if (stat(path, &sb) < 0)
		return -1;
	du_dev = sb.st_dev;
	nftw(path, du_one, 16, FTW_PHYS | FTW_MOUNT);
	return du_total;
}

static void make_container(struct coll_container *c, const char *id, const char *upper)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->cgroup = (char *)"/docker/x";
	c->runtime = RUNTIME_DOCKER;
	c->has_meta = true;
	c->meta.restart_count = -1;
	c->meta.upper_dir = strdup(upper);
}

struct fixture {
	struct coll_ctx ctx;
	void *st;
	int64_t t_ms;
};

/* One tick over the containers; returns the snapshot. */
static struct snapshot *tick(struct fixture *f, struct coll_container **cs, size_t n)
{
	struct coll_sink sink;
	f->t_ms += 1000;
	if (sink_open(&sink, f->t_ms) < 0)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		sink_begin_container(&sink, cs[i], 0);
		coll_fs_ops.collect(f->st, cs[i], &cs[i]->priv[0], &sink);
	}
	return sink_close(&sink);
}

static double value(const struct snapshot *s, uint32_t container, enum metric_id m, const char *ex)
{
	for (size_t i = 0; i < s->nsamples; i++) {
		const struct snap_sample *sm = &s->samples[i];
		if (sm->container == container && sm->family == (uint32_t)m && sm->extra &&
		    strcmp(sm->extra, ex) == 0)
			return sm->value;
	}
	return NAN;
}

/* Ticks until the usage of mountpoint ex appears (at most max ticks);
 * returns the value and the ticks taken. */
static double until_usage(struct fixture *f, struct coll_container *c, const char *ex, int max,
			  int *ticks)
{
	for (*ticks = 1; *ticks <= max; (*ticks)++) {
		struct snapshot *s = tick(f, &c, 1);
		double v = s ? value(s, 0, M_FS_USAGE, ex) : NAN;
		snapshot_unref(s);
		if (!isnan(v))
			return v;
	}
	return NAN;
}

static bool fixture_init(struct fixture *f, int64_t budget)
{
	memset(f, 0, sizeof(*f));
	f->ctx.fs_interval_ms = 60000;
	f->ctx.fs_walk_budget = budget;
	f->t_ms = 1000000;
	return coll_fs_ops.init(&f->st, &f->ctx) == 0;
}

static void test_walk_matches_du(void)
{
	struct fixture f;
	struct coll_container c;
	char link_a[256], link_b[256];
	put_dir("/layer");
	put_dir("/layer/a");
	put_dir("/layer/a/b");
	put_file("/layer/a/one", 10000);
	put_file("/layer/a/b/two", 70000);
	for (int i = 0; i < 20; i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "/layer/f%d", i);
		put_file(rel, 5000);
	}
	put_file("/layer/hard", 40000);
	snprintf(link_a, sizeof(link_a), "%s/layer/hard", root);
	snprintf(link_b, sizeof(link_b), "%s/layer/a/hard2", root);
	CHECK(link(link_a, link_b) == 0);
	snprintf(link_b, sizeof(link_b), "%s/layer/sym", root);
	CHECK(symlink("/etc/passwd", link_b) == 0);   /* not followed */
	double want = du("/layer");
	CHECK(want > 100000);

	CHECK(fixture_init(&f, 4));
	make_container(&c, "c1", "/layer");
	int ticks;
	double got = until_usage(&f, &c, "mountpoint=\"/\"", 100, &ticks);
	CHECK_EQ_DBL(got, want);
	/* 27 entries at 4 a tick: 7 ticks at least. */
	CHECK(ticks >= 7);
	CHECK(ticks <= 9);

	/* The capacity is the filesystem's, the backing use from statfs. */
	struct statvfs sv;
	char path[256];
	snprintf(path, sizeof(path), "%s/layer", root);
	CHECK(statvfs(path, &sv) == 0);
	struct snapshot *s = tick(&f, (struct coll_container *[]){ &c }, 1);
	CHECK_EQ_DBL(value(s, 0, M_FS_LIMIT, "mountpoint=\"/\""), (double)sv.f_blocks * sv.f_frsize);
	CHECK(value(s, 0, M_FS_BACKING_USAGE, "mountpoint=\"/\"") > 0);
	CHECK_EQ_DBL(value(s, 0, M_FS_USAGE, "mountpoint=\"/\""), want); /* kept between walks */
	snapshot_unref(s);

	/* A metadata update (same layer) keeps the size and its schedule. */
	c.meta_gen++;
	s = tick(&f, (struct coll_container *[]){ &c }, 1);
	CHECK_EQ_DBL(value(s, 0, M_FS_USAGE, "mountpoint=\"/\""), want);
	snapshot_unref(s);

	coll_fs_ops.forget(f.st, &c, &c.priv[0]);
	CHECK(c.priv[0] == NULL);
	coll_fs_ops.destroy(f.st);
	coll_meta_fini(&c.meta);
}

static void test_mounts(void)
{
	struct fixture f;
	struct coll_container c;
	put_dir("/vol");
	put_file("/vol/data", 300000);
	put_dir("/bind");
	CHECK(fixture_init(&f, 1000));
	make_container(&c, "c2", "/nolayer");     /* a layer that does not exist */
	struct coll_mount mounts[] = {
		{ .type = "volume", .name = "v", .source = "/vol", .destination = "/data", .rw = true },
		{ .type = "bind", .source = "/bind", .destination = "/b\"q" },
		{ .type = "tmpfs", .source = "", .destination = "/scratch" }, /* pid 0: not reachable */
		{ .type = "npipe", .source = "/x", .destination = "/y" },
	};
	for (size_t i = 0; i < ARRAY_LEN(mounts); i++)
		CHECK(coll_meta_add_mount(&c.meta, &mounts[i]) == 0);
	int ticks;
	double got = until_usage(&f, &c, "mountpoint=\"/data\"", 5, &ticks);
	CHECK_EQ_DBL(got, du("/vol"));
	struct snapshot *s = tick(&f, (struct coll_container *[]){ &c }, 1);
	CHECK(!isnan(value(s, 0, M_FS_LIMIT, "mountpoint=\"/b\\\"q\"")));
	CHECK(isnan(value(s, 0, M_FS_USAGE, "mountpoint=\"/b\\\"q\""))); /* binds: no walk */
	CHECK(isnan(value(s, 0, M_FS_LIMIT, "mountpoint=\"/scratch\"")));
	CHECK(isnan(value(s, 0, M_FS_LIMIT, "mountpoint=\"/y\"")));
	CHECK(isnan(value(s, 0, M_FS_LIMIT, "mountpoint=\"/\"")));
	snapshot_unref(s);
	coll_fs_ops.forget(f.st, &c, &c.priv[0]);
	coll_fs_ops.destroy(f.st);
	coll_meta_fini(&c.meta);
}

/* The tree changes under the walk; the container goes mid-walk. */
static void test_vanishing(void)
{
	struct fixture f;
	struct coll_container c;
	char cmd[256];
	put_dir("/gone");
	put_dir("/gone/sub");
	for (int i = 0; i < 10; i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "/gone/sub/f%d", i);
		put_file(rel, 4096);
	}
	CHECK(fixture_init(&f, 2));
	make_container(&c, "c3", "/gone");
	struct snapshot *s = tick(&f, (struct coll_container *[]){ &c }, 1); /* walk begun */
	snapshot_unref(s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s/gone/sub", root);
	CHECK(system(cmd) == 0);
	int ticks;
	double got = until_usage(&f, &c, "mountpoint=\"/\"", 20, &ticks);
	CHECK(!isnan(got));
	CHECK(got < 10 * 4096); /* what was deleted is not counted */
	coll_fs_ops.forget(f.st, &c, &c.priv[0]);

	/* Forgotten in the middle of a walk: the walk is dropped, the next
	 * container gets the slot. */
	struct coll_container d;
	put_dir("/big");
	for (int i = 0; i < 30; i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "/big/f%d", i);
		put_file(rel, 100);
	}
	make_container(&d, "c4", "/big");
	s = tick(&f, (struct coll_container *[]){ &d }, 1);
	snapshot_unref(s);
	coll_fs_ops.forget(f.st, &d, &d.priv[0]);
	struct coll_container e;
	make_container(&e, "c5", "/layer");
	got = until_usage(&f, &e, "mountpoint=\"/\"", 40, &ticks);
	CHECK_EQ_DBL(got, du("/layer"));
	coll_fs_ops.forget(f.st, &e, &e.priv[0]);
	coll_fs_ops.destroy(f.st);
	coll_meta_fini(&c.meta);
	coll_meta_fini(&d.meta);
	coll_meta_fini(&e.meta);
}

/* Two containers due at once under a small budget: both get measured, one
 * after the other, with the budget shared. */
static void test_two_containers_share(void)
{
	struct fixture f;
	struct coll_container a, b;
	CHECK(fixture_init(&f, 5));
	make_container(&a, "a", "/layer");
	make_container(&b, "b", "/vol");
	double ua = NAN, ub = NAN;
	int t;
	for (t = 0; t < 40 && (isnan(ua) || isnan(ub)); t++) {
		struct snapshot *s = tick(&f, (struct coll_container *[]){ &a, &b }, 2);
		ua = value(s, 0, M_FS_USAGE, "mountpoint=\"/\"");
		ub = value(s, 1, M_FS_USAGE, "mountpoint=\"/\"");
		snapshot_unref(s);
	}
	CHECK_EQ_DBL(ua, du("/layer"));
	CHECK_EQ_DBL(ub, du("/vol"));
	coll_fs_ops.forget(f.st, &a, &a.priv[0]);
	coll_fs_ops.forget(f.st, &b, &b.priv[0]);
	coll_fs_ops.destroy(f.st);
	coll_meta_fini(&a.meta);
	coll_meta_fini(&b.meta);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	snprintf(root, sizeof(root), "/tmp/monitor-test-fs-XXXXXX");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 2;
	}
	hostroot_set(root);
	RUN(test_walk_matches_du);
	RUN(test_mounts);
	RUN(test_vanishing);
	RUN(test_two_containers_share);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd)) {}
	TEST_END();
}
