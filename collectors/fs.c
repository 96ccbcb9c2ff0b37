/*
 * fs.c - the filesystem collector: how much a container holds on disk and
 * how full the filesystems under it are.
 *
 * For each container with runtime metadata it keeps a few targets, keyed by
 * the mount point inside the container:
 *   "/"      the writable layer: Docker's GraphDriver.Data.UpperDir, or, when
 *            inspect did not say, the overlay2 directory named by
 *            /var/lib/docker/image/overlay2/layerdb/mounts/<id>/mount-id;
 *   volumes  a named volume's directory (Mounts[].Source);
 *   binds    the bind source (capacity only: a bind may be the host's /);
 *   tmpfs    the tmpfs, reached through /proc/<pid>/root of the container.
 * Each target holds an O_PATH descriptor; fstatfs on it every tick gives
 * the capacity (container_fs_limit_bytes) and use (container_fs_backing_
 * usage_bytes) of the backing filesystem without a path lookup. For a tmpfs
 * that use is the container's own (container_fs_usage_bytes). A writable
 * layer with a size quota (Docker's --storage-opt size=) has it as
 * container_fs_quota_bytes{mountpoint="/"}.
 *
 * The writable layer and volumes are measured by walking them, like du:
 * st_blocks of every entry, a file with several links counted by its share,
 * never crossing into another filesystem. A tree is never walked on every
 * tick. One walk at a time is in progress for the whole agent, it may stat
 * at most fs_walk_budget entries per tick and keeps its place (a stack of
 * open directories) between ticks, and a target is walked again only
 * fs_interval_ms after its last walk ended. The container whose walk is the
 * most overdue goes next, so none starves. Until its first walk ends a
 * target has no usage series. Runs on the tick thread.
 */
#include "collectors/collector.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#endif

#define FS_MAX_DEPTH 64          /* deeper directories are counted, not entered */
#define FS_LABEL_MAX 512
#define FS_REOPEN_MS 10000       /* retry a target that could not be opened */

struct fs_target {
	char label[FS_LABEL_MAX];  /* mountpoint="..." rendered */
	int fd;                  /* O_PATH, for fstatfs; -1 when not open */
	char *path;              /* host path (host-root relative), or the path in the container */
	bool in_root;            /* path is inside the container (a tmpfs) */
	char *walk_path;         /* host path to measure, or NULL */
	bool tmpfs;              /* usage from statfs */
	double usage_bytes;      /* last finished walk; < 0 before the first */
	int64_t next_walk_ms;    /* when the next walk is due */
};

struct fs_priv {
	uint32_t meta_gen;
	int64_t pid;             /* the container's init, for in_root targets */
	bool built;
	struct fs_target *t;
	size_t nt;
	int64_t reopen_ms;       /* when to retry targets without a descriptor */
};

/* The one walk in progress. */
struct fs_walk {
	struct fs_priv *owner;   /* NULL: none */
	size_t target;
	DIR *stack[FS_MAX_DEPTH];
	int depth;
	dev_t dev;
	double bytes;
};

struct fs_state {
	const struct coll_ctx *ctx;
	int64_t tick_ms;         /* the tick the budget belongs to */
	int64_t budget;          /* entries left this tick */
	int64_t oldest_due_prev; /* most overdue waiting walk, last tick */
	int64_t oldest_due_cur;
	struct fs_walk w;
};

/* ---- targets ------------------------------------------------------------ */

/* Opens path inside the root of process pid, resolving symlinks as the
 * container would (RESOLVE_IN_ROOT), so no link in it leads out onto the
 * host. O_PATH; returns the fd or -errno. */
static int open_in_root(int64_t pid, const char *path)
{
	char proc[64], full[PATH_MAX];
	snprintf(proc, sizeof(proc), "/proc/%lld/root", (long long)pid);
	if (hostroot_path(full, sizeof(full), proc) < 0)
		return -ENAMETOOLONG;
	int root = open(full, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return -errno;
	int fd = -ENOSYS;
#if defined(SYS_openat2) && defined(RESOLVE_IN_ROOT)
	struct open_how how = { .flags = O_PATH | O_CLOEXEC,
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	fd = (int)syscall(SYS_openat2, root, path[0] == '/' ? path + 1 : path, &how, sizeof(how));
	if (fd < 0)
		fd = -errno;
#endif
	if (fd == -ENOSYS) {
		/* An old kernel: the path is the container's own tmpfs mount
		 * point, which the runtime made; accept the plain lookup. */
		fd = openat(root, path[0] == '/' ? path + 1 : path, O_PATH | O_CLOEXEC);
		if (fd < 0)
			fd = -errno;
	}
	close(root);
	return fd;
}

static int open_host(const char *path)
{
	char full[PATH_MAX];
	if (hostroot_path(full, sizeof(full), path) < 0)
		return -ENAMETOOLONG;
	int fd = open(full, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* The writable layer's directory on the host (host-root relative), or "". */
static void layer_dir(const struct coll_container *c, char *out, size_t size)
{
	out[0] = '\0';
	if (c->meta.upper_dir && c->meta.upper_dir[0] == '/') {
		snprintf(out, size, "%s", c->meta.upper_dir);
		return;
	}
	if (c->runtime != RUNTIME_DOCKER)
		return;
	char rel[PATH_MAX], full[PATH_MAX], id[128];
	snprintf(rel, sizeof(rel), "/var/lib/docker/image/overlay2/layerdb/mounts/%s/mount-id", c->id);
	if (hostroot_path(full, sizeof(full), rel) < 0 || read_file(full, id, sizeof(id)) <= 0)
		return;
	id[strcspn(id, "\r\n")] = '\0';
	if (id[0] && !strchr(id, '/') && strcmp(id, "..") != 0)
		snprintf(out, size, "/var/lib/docker/overlay2/%s/diff", id);
}

static void abort_walk(struct fs_walk *w)
{
	while (w->depth > 0)
		closedir(w->stack[--w->depth]);
	w->owner = NULL;
}

static void free_targets(struct fs_state *st, struct fs_priv *p)
{
	if (st->w.owner == p)
		abort_walk(&st->w);
	for (size_t i = 0; i < p->nt; i++) {
		if (p->t[i].fd >= 0)
			close(p->t[i].fd);
		free(p->t[i].path);
		free(p->t[i].walk_path);
	}
	free(p->t);
	p->t = NULL;
	p->nt = 0;
	p->built = false;
}

static struct fs_target *add_target(struct fs_priv *p, const char *mountpoint)
{
	struct fs_target *t = realloc(p->t, (p->nt + 1) * sizeof(*t));
	if (!t)
		return NULL;
	p->t = t;
	t = &p->t[p->nt++];
	memset(t, 0, sizeof(*t));
	label_pair_text(t->label, sizeof(t->label), "mountpoint", mountpoint);
	t->fd = -1;
	t->usage_bytes = -1;
	return t;
}

/* (Re)opens the targets that lack a descriptor. */
static void open_targets(struct fs_priv *p)
{
	for (size_t i = 0; i < p->nt; i++) {
		struct fs_target *t = &p->t[i];
		if (t->fd >= 0 || !t->path)
			continue;
		if (t->in_root)
			t->fd = p->pid > 0 ? open_in_root(p->pid, t->path) : -1;
		else
			t->fd = open_host(t->path);
		if (t->fd < 0)
			t->fd = -1;
	}
}

/*
 * Builds the targets from the container's metadata: the layer, then the
 * mounts in the runtime's order. A target that was there before (same mount
 * point, same directory) keeps its last size and schedule, so a metadata
 * update (a health change, a restart) does not restart the measurement.
 */
static void build_targets(struct fs_state *st, const struct coll_container *c, struct fs_priv *p)
{
	struct fs_priv old = *p;
	if (st->w.owner == p)
		abort_walk(&st->w);
	p->t = NULL;
	p->nt = 0;
	p->meta_gen = c->meta_gen;
	p->pid = c->meta.pid;
	p->built = true;
	char layer[PATH_MAX];
	layer_dir(c, layer, sizeof(layer));
	if (layer[0]) {
		struct fs_target *t = add_target(p, "/");
		if (t) {
			t->path = strdup(layer);
			t->walk_path = strdup(layer);
		}
	}
	for (size_t i = 0; i < c->meta.nmounts; i++) {
		const struct coll_mount *m = &c->meta.mounts[i];
		const char *type = m->type ? m->type : "";
		bool tmpfs = strcmp(type, "tmpfs") == 0, volume = strcmp(type, "volume") == 0;
		if (!tmpfs && !volume && strcmp(type, "bind"))
			continue;
		if (!tmpfs && (!m->source || m->source[0] != '/'))
			continue;
		struct fs_target *t = add_target(p, m->destination);
		if (!t)
			break;
		t->tmpfs = t->in_root = tmpfs;
		t->path = strdup(tmpfs ? m->destination : m->source);
		if (volume)
			t->walk_path = strdup(m->source);
	}
	for (size_t i = 0; i < p->nt; i++) {
		struct fs_target *t = &p->t[i];
		for (size_t j = 0; j < old.nt; j++) {
			struct fs_target *o = &old.t[j];
			if (strcmp(o->label, t->label) == 0 && t->walk_path && o->walk_path &&
			    strcmp(o->walk_path, t->walk_path) == 0) {
				t->usage_bytes = o->usage_bytes;
				t->next_walk_ms = o->next_walk_ms;
			}
		}
	}
	free_targets(st, &old);
	open_targets(p);
	p->reopen_ms = now_ms() + FS_REOPEN_MS;
}

/* ---- walking ------------------------------------------------------------ */

/* Bytes an entry holds: its blocks, shared out among its links. */
static double entry_bytes(const struct stat *sb)
{
	double b = (double)sb->st_blocks * 512;
	if (!S_ISDIR(sb->st_mode) && sb->st_nlink > 1)
		b /= (double)sb->st_nlink;
	return b;
}

static int start_walk(struct fs_state *st, struct fs_priv *p, size_t i)
{
	char full[PATH_MAX];
	struct stat sb;
	struct fs_walk *w = &st->w;
	if (hostroot_path(full, sizeof(full), p->t[i].walk_path) < 0)
		return -ENAMETOOLONG;
	int fd = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fstat(fd, &sb) == 0 ? fdopendir(fd) : NULL;
	if (!d) {
		int e = errno;
		close(fd);
		return -e;
	}
	w->owner = p;
	w->target = i;
	w->stack[0] = d;
	w->depth = 1;
	w->dev = sb.st_dev;
	w->bytes = entry_bytes(&sb);
	return 0;
}

/* Advances the walk by at most the tick's budget; on the last entry
 * publishes the total. */
static void step_walk(struct fs_state *st, int64_t now)
{
	struct fs_walk *w = &st->w;
	while (w->depth > 0 && st->budget > 0) {
		DIR *d = w->stack[w->depth - 1];
		struct dirent *de = readdir(d);
		if (!de) {
			closedir(d);
			w->depth--;
			continue;
		}
		if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		st->budget--;
		struct stat sb;
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* removed meanwhile: it holds nothing now */
		if (sb.st_dev != w->dev)
			continue; /* a mount point below: another filesystem */
		w->bytes += entry_bytes(&sb);
		if (!S_ISDIR(sb.st_mode) || w->depth == FS_MAX_DEPTH)
			continue;
		int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		DIR *sub = fd >= 0 ? fdopendir(fd) : NULL;
		if (sub)
			w->stack[w->depth++] = sub;
		else if (fd >= 0)
			close(fd);
	}
	if (w->depth == 0) {
		struct fs_target *t = &w->owner->t[w->target];
		t->usage_bytes = w->bytes;
		t->next_walk_ms = now + st->ctx->fs_interval_ms;
		w->owner = NULL;
	}
}

/* Gives this container's most overdue walk the slot when it is free and no
 * other container has waited longer (as of the last tick). */
static void maybe_walk(struct fs_state *st, struct fs_priv *p, int64_t now)
{
	if (st->ctx->fs_interval_ms <= 0)
		return;
	if (st->w.owner == p) {
		step_walk(st, now);
		return;
	}
	size_t best = SIZE_MAX;
	for (size_t i = 0; i < p->nt; i++)
		if (p->t[i].walk_path && p->t[i].next_walk_ms <= now &&
		    (best == SIZE_MAX || p->t[i].next_walk_ms < p->t[best].next_walk_ms))
			best = i;
	if (best == SIZE_MAX)
		return;
	int64_t due = p->t[best].next_walk_ms;
	if (st->w.owner || st->budget <= 0 || due > st->oldest_due_prev) {
		if (due < st->oldest_due_cur)
			st->oldest_due_cur = due;
		return;
	}
	if (start_walk(st, p, best) < 0) {
		/* Not there (yet): try again after an interval. */
		p->t[best].next_walk_ms = now + st->ctx->fs_interval_ms;
		return;
	}
	step_walk(st, now);
}

/* ---- the collector ------------------------------------------------------ */

static int fs_init(void **state, const struct coll_ctx *ctx)
{
	struct fs_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->ctx = ctx;
	st->oldest_due_prev = st->oldest_due_cur = INT64_MAX;
	*state = st;
	return 0;
}

static int fs_collect(void *state, struct coll_container *c, void **priv, struct coll_sink *sink)
{
	struct fs_state *st = state;
	int64_t now = sink->snap->time_ms;
	if (now != st->tick_ms) {
		st->tick_ms = now;
		st->budget = st->ctx->fs_walk_budget;
		st->oldest_due_prev = st->oldest_due_cur;
		st->oldest_due_cur = INT64_MAX;
	}
	if (!c->has_meta && c->runtime != RUNTIME_DOCKER)
		return 0;
	struct fs_priv *p = *priv;
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p)
			return 1;
		*priv = p;
	}
	if (!p->built || p->meta_gen != c->meta_gen)
		build_targets(st, c, p);
	else if (now >= p->reopen_ms) {
		open_targets(p);
		p->reopen_ms = now + FS_REOPEN_MS;
	}
	int errors = 0;
	for (size_t i = 0; i < p->nt; i++) {
		struct fs_target *t = &p->t[i];
		struct statfs sf;
		if (t->fd < 0)
			continue;
		if (fstatfs(t->fd, &sf) < 0) {
			close(t->fd); /* reopened after FS_REOPEN_MS */
			t->fd = -1;
			errors++;
			continue;
		}
		double frsize = sf.f_frsize ? (double)sf.f_frsize : (double)sf.f_bsize;
		double total = (double)sf.f_blocks * frsize;
		double used = (double)(sf.f_blocks - sf.f_bfree) * frsize;
		sink_emit(sink, M_FS_LIMIT, t->label, total);
		sink_emit(sink, M_FS_BACKING_USAGE, t->label, used);
		if (t->tmpfs)
			sink_emit(sink, M_FS_USAGE, t->label, used);
	}
	if (c->meta.layer_quota_bytes > 0)
		for (size_t i = 0; i < p->nt; i++)
			if (!strcmp(p->t[i].label, "mountpoint=\"/\""))
				sink_emit(sink, M_FS_QUOTA, p->t[i].label, c->meta.layer_quota_bytes);
	maybe_walk(st, p, now);
	for (size_t i = 0; i < p->nt; i++)
		if (p->t[i].walk_path && p->t[i].usage_bytes >= 0)
			sink_emit(sink, M_FS_USAGE, p->t[i].label, p->t[i].usage_bytes);
	return errors;
}

static void fs_forget(void *state, struct coll_container *c, void **priv)
{
	struct fs_priv *p = *priv;
	if (!p)
		return;
	free_targets(state, p);
	free(p);
	*priv = NULL;
}

static void fs_destroy(void *state)
{
	struct fs_state *st = state;
	if (st)
		abort_walk(&st->w);
	free(st);
}

const struct coll_ops coll_fs_ops = {
	.name = "fs",
	.init = fs_init,
	.collect = fs_collect,
	.forget = fs_forget,
	.destroy = fs_destroy,
};
