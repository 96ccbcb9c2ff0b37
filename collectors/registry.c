/*
 * registry.c - the container registry and discovery.
 *
 * The cgroup tree is the ground truth: every container has a cgroup. A full
 * walk at start-up (and, as a safety net, every rescan_interval) classifies
 * each directory with cg_classify and finds plain runc containers through
 * their state.json. Between walks, inotify on the tree's directories reports
 * cgroups as they are made and removed, so discovery costs nothing while
 * nothing changes. Metadata comes from the runtimes: OCI files read here at
 * discovery, and Docker's answers posted by its own thread to a queue that
 * the tick drains. A container nobody names is still collected under its id.
 *
 * Everything here runs on the tick thread.
 */
#include "collectors/collector.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

extern const struct coll_ops coll_cgroup_ops;

/* The collectors, in collection order: adding one is adding a line. */
const struct coll_ops *const coll_all[] = {
	&coll_cgroup_ops,
	&coll_ebpf_ops,
	&coll_fs_ops,
	&coll_netns_ops,
	&coll_procs_ops,
	&coll_logs_ops,
};
const size_t coll_count = ARRAY_LEN(coll_all);

#define HASH_BUCKETS 4096
/* A cgroup found while running is collected once it is this old: runtimes
 * make a container's directories in every hierarchy within a few
 * milliseconds. A tick that comes sooner waits out the rest (at most this
 * long, once) rather than leave the container to the next tick: skipping a
 * whole tick made a new container take 1-2 s to reach /metrics. */
#define FRESH_SETTLE_NS (50 * 1000000LL)
#define MAX_DEPTH 24
#define RUNC_RECHECK_TICKS 5
#define MAX_CONTAINERS 20000
#define META_CACHE_MAX 20000

/* Metadata the runtimes gave for ids, whether or not a cgroup is seen yet.
 * An entry outlives its cgroup: a container without one (created, exited,
 * restarting) is still shown from here until the runtime forgets it. */
struct meta_entry {
	char id[80];
	struct coll_meta meta;
	struct meta_entry *next;
	struct meta_entry *hnext;    /* hash chain by id */
	uint64_t live_tick;      /* last tick a cgroup of this id was in the registry */
	char *last_cgroup;       /* its cgroup path when last seen (the id label stays) */
	int64_t last_seen_ms;    /* when that cgroup was last seen; 0: never */
	int64_t gone_ms;         /* when it was first shown without a cgroup */
	char *prom_labels;       /* base labels while shown without a cgroup */
};

struct coll_registry {
	const struct coll_ctx *ctx;
	void *coll_state[COLL_MAX_COLLECTORS];
	bool coll_ok[COLL_MAX_COLLECTORS];
	struct coll_container *list;
	struct coll_container *buckets[HASH_BUCKETS];
	size_t count;
	size_t by_runtime[RUNTIME__COUNT];
	struct meta_entry *meta_cache;
	struct meta_entry *meta_buckets[HASH_BUCKETS];
	size_t meta_count;
	uint64_t tick;
	uint32_t gen;
	bool collected;          /* a collection pass has run */
	bool hold_unnamed;       /* coll_registry_hold_unnamed */
	bool engine_up;          /* coll_registry_engine_up */
	int64_t answered_ns;     /* mono_ns() when hold_unnamed went off; 0: never */
	int runc_recheck;        /* ticks left to look for a late state.json */
	/* inotify: watch descriptor -> directory path relative to the walk root */
	int ifd;
	char **wd_path;
	size_t wd_cap;
	struct log_limit watch_ll;
	struct log_limit full_ll;
	/* Inside coll_registry_collect's loop, which a removal would break:
	 * removals seen by coll_registry_poll wait in pending_rm until it ends. */
	bool in_tick;
	bool pending_rescan;
	char **pending_rm;
	size_t npending, pending_cap;
	void (*midtick)(void *arg);
	void *midtick_arg;
};

/* Every this many containers a tick calls the midtick hook. */
#define MIDTICK_EVERY 256

static uint32_t bucket_of(const char *path)
{
	return (uint32_t)(hash_str(path) & (HASH_BUCKETS - 1));
}

static struct coll_container *find_by_path(struct coll_registry *r, const char *path)
{
	for (struct coll_container *c = r->buckets[bucket_of(path)]; c; c = c->hnext)
		if (strcmp(c->cgroup, path) == 0)
			return c;
	return NULL;
}

static struct meta_entry *find_meta(struct coll_registry *r, const char *id)
{
	for (struct meta_entry *e = r->meta_buckets[bucket_of(id)]; e; e = e->hnext)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

/* Unlinks e from the list (pp points at the link to it) and the hash, and frees it. */
static void drop_meta(struct coll_registry *r, struct meta_entry **pp)
{
	struct meta_entry *e = *pp;
	*pp = e->next;
	struct meta_entry **hp = &r->meta_buckets[bucket_of(e->id)];
	while (*hp != e)
		hp = &(*hp)->hnext;
	*hp = e->hnext;
	coll_meta_fini(&e->meta);
	free(e->last_cgroup);
	free(e->prom_labels);
	free(e);
	r->meta_count--;
}

/* ---- labels ------------------------------------------------------------ */

static void put_label(struct buf *b, const char *key, const char *val)
{
	if (b->len)
		buf_putc(b, ',');
	buf_puts(b, key);
	buf_add(b, "=\"", 2);
	for (const char *p = val; *p; p++) {
		if (*p == '\\')
			buf_add(b, "\\\\", 2);
		else if (*p == '"')
			buf_add(b, "\\\"", 2);
		else if (*p == '\n')
			buf_add(b, "\\n", 2);
		else
			buf_putc(b, *p);
	}
	buf_putc(b, '"');
}

/* container_label_<key> with every character outside [a-zA-Z0-9_] as '_'. */
static void label_name(char *out, size_t size, const char *key)
{
	int n = snprintf(out, size, "container_label_%s", key);
	if (n < 0)
		return;
	for (char *p = out + strlen("container_label_"); *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_'))
			*p = '_';
}

/*
 * Renders the base labels every series of the container carries:
 * id (the cgroup path, as cAdvisor), name, image, the Kubernetes labels when
 * known, and the allow-listed runtime labels.
 */
static void render_labels(const struct coll_registry *r, struct coll_container *c)
{
	struct buf b;
	const struct coll_meta *m = &c->meta;
	buf_init(&b, 64 * 1024);
	put_label(&b, "id", c->cgroup);
	put_label(&b, "name", m->name ? m->name : c->id);
	put_label(&b, "image", m->image ? m->image : "");
	if (m->namespace)
		put_label(&b, "namespace", m->namespace);
	if (m->pod)
		put_label(&b, "pod", m->pod);
	if (m->container)
		put_label(&b, "container", m->container);
	for (size_t i = 0; i < r->ctx->nlabel_allow; i++) {
		const char *v = coll_meta_label(m, r->ctx->label_allow[i]);
		if (!v)
			continue;
		char key[256];
		label_name(key, sizeof(key), r->ctx->label_allow[i]);
		put_label(&b, key, v);
	}
	free(c->prom_labels);
	c->prom_labels = b.overflow ? NULL : buf_steal(&b, NULL);
	buf_fini(&b);
}

static void set_meta(struct coll_registry *r, struct coll_container *c, const struct coll_meta *m)
{
	struct coll_meta copy;
	if (coll_meta_copy(&copy, m) < 0)
		return;
	coll_meta_fini(&c->meta);
	c->meta = copy;
	c->has_meta = true;
	c->meta_gen++;
	render_labels(r, c);
}

/* ---- adding and removing ----------------------------------------------- */

/* discovery.cgroups: whether path may be a container. */
static bool cgroup_wanted(const struct coll_ctx *ctx, const char *path)
{
	if (!ctx->ncgroup_match)
		return true;
	for (size_t i = 0; i < ctx->ncgroup_match; i++)
		if (fnmatch(ctx->cgroup_match[i], path, 0) == 0)
			return true;
	return false;
}

static void add_container(struct coll_registry *r, const char *path, const struct cg_ident *ident)
{
	if (find_by_path(r, path) || !cgroup_wanted(r->ctx, path))
		return;
	if (r->count >= MAX_CONTAINERS) {
		log_limited(&r->full_ll, LOG_WARN,
			    "discovery: %d containers reached, not adding %s", MAX_CONTAINERS, path);
		return;
	}
	struct coll_container *c = calloc(1, sizeof(*c));
	if (!c || !(c->cgroup = strdup(path))) {
		free(c);
		return;
	}
	snprintf(c->id, sizeof(c->id), "%s", ident->id);
	snprintf(c->pod_uid, sizeof(c->pod_uid), "%s", ident->pod_uid);
	snprintf(c->qos, sizeof(c->qos), "%s", ident->qos);
	c->runtime = ident->runtime;
	c->meta.restart_count = -1;
	c->seen_gen = r->gen;
	/* Found at start-up, the cgroup is complete; found while running it may
	 * be mid-creation (see coll_registry_collect). */
	c->fresh = r->collected;
	c->found_ns = mono_ns();

	char full[PATH_MAX];
	struct stat st;
	const char *root = cg_layout_walk_root(r->ctx->layout);
	snprintf(full, sizeof(full), "%s%s", root, path);
	if (stat(full, &st) == 0)
		c->cgroup_ctime = (double)st.st_ctim.tv_sec + st.st_ctim.tv_nsec / 1e9;

	struct meta_entry *e = find_meta(r, c->id);
	if (e) {
		set_meta(r, c, &e->meta);
	} else if (c->runtime != RUNTIME_DOCKER && c->runtime != RUNTIME_KUBEPOD) {
		struct coll_meta m = { .restart_count = -1 };
		if (oci_lookup(c->id, c->runtime, &m) == 0)
			set_meta(r, c, &m);
		coll_meta_fini(&m);
	}
	if (!c->prom_labels)
		render_labels(r, c);

	uint32_t b = bucket_of(path);
	c->hnext = r->buckets[b];
	r->buckets[b] = c;
	c->next = r->list;
	r->list = c;
	r->count++;
	r->by_runtime[c->runtime]++;
	log_debug("discovery: %s container %s at %s", coll_runtime_name(c->runtime), c->id, path);
}

static void free_container(struct coll_registry *r, struct coll_container *c)
{
	for (size_t i = 0; i < coll_count; i++)
		if (r->coll_ok[i] && coll_all[i]->forget)
			coll_all[i]->forget(r->coll_state[i], c, &c->priv[i]);
	coll_meta_fini(&c->meta);
	free(c->prom_labels);
	free(c->cgroup);
	free(c);
}

/* Keeps where and when a container with runtime metadata was last seen, so
 * it can be shown with the same id label once its cgroup is gone. */
static void remember_cgroup(struct coll_registry *r, const struct coll_container *c)
{
	struct meta_entry *e = find_meta(r, c->id);
	if (!e)
		return;
	char *p = strdup(c->cgroup);
	if (p) {
		free(e->last_cgroup);
		e->last_cgroup = p;
		free(e->prom_labels);
		e->prom_labels = NULL;
	}
	e->last_seen_ms = now_ms();
}

/* Unlinks every container whose cgroup is path or below it (all when NULL
 * matches nothing) or, with stale_gen, that the last walk did not see. */
static int remove_where(struct coll_registry *r, const char *path, bool by_gen)
{
	int removed = 0;
	size_t plen = path ? strlen(path) : 0;
	for (struct coll_container **pp = &r->list; *pp;) {
		struct coll_container *c = *pp;
		bool gone = by_gen ? c->seen_gen != r->gen :
			(strncmp(c->cgroup, path, plen) == 0 &&
			 (c->cgroup[plen] == '\0' || c->cgroup[plen] == '/'));
		if (!gone) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		struct coll_container **hp = &r->buckets[bucket_of(c->cgroup)];
		while (*hp != c)
			hp = &(*hp)->hnext;
		*hp = c->hnext;
		r->count--;
		r->by_runtime[c->runtime]--;
		log_debug("discovery: %s gone", c->cgroup);
		remember_cgroup(r, c);
		free_container(r, c);
		removed++;
	}
	return removed;
}

/* ---- walking ----------------------------------------------------------- */

static void watch_dir(struct coll_registry *r, const char *full, const char *rel)
{
	if (r->ifd < 0)
		return;
	int wd = inotify_add_watch(r->ifd, full, IN_CREATE | IN_DELETE | IN_MOVED_FROM |
				   IN_MOVED_TO | IN_ONLYDIR | IN_DELETE_SELF);
	if (wd < 0) {
		/* ENOSPC: out of watches; the periodic rescan still finds containers. */
		log_limited(&r->watch_ll, LOG_WARN, "discovery: inotify watch on %s: %s "
			    "(raise fs.inotify.max_user_watches; relying on rescans)",
			    full, strerror(errno));
		return;
	}
	if ((size_t)wd >= r->wd_cap) {
		size_t ncap = r->wd_cap ? r->wd_cap : 256;
		while (ncap <= (size_t)wd)
			ncap *= 2;
		char **p = realloc(r->wd_path, ncap * sizeof(*p));
		if (!p)
			return;
		memset(p + r->wd_cap, 0, (ncap - r->wd_cap) * sizeof(*p));
		r->wd_path = p;
		r->wd_cap = ncap;
	}
	if (!r->wd_path[wd] || strcmp(r->wd_path[wd], rel) != 0) {
		free(r->wd_path[wd]);
		r->wd_path[wd] = strdup(rel);
	}
}

/* Marks a known container as seen, or adds a new one; returns true when the
 * walk should go below this directory. */
static bool visit(struct coll_registry *r, const char *rel)
{
	struct cg_ident ident;
	memset(&ident, 0, sizeof(ident));
	if (cg_classify(rel, &ident) != 1)
		return true;
	struct coll_container *c = find_by_path(r, rel);
	if (c)
		c->seen_gen = r->gen;
	else
		add_container(r, rel, &ident);
	/* Pods hold their containers; a container's own children are its business. */
	return ident.runtime == RUNTIME_KUBEPOD;
}

static void walk(struct coll_registry *r, const char *root, char *rel, size_t rel_len, int depth)
{
	char full[PATH_MAX];
	if (snprintf(full, sizeof(full), "%s%s", root, rel_len ? rel : "/") >= (int)sizeof(full))
		return;
	if (rel_len && !visit(r, rel))
		return;
	if (depth >= MAX_DEPTH)
		return;
	DIR *d = opendir(full);
	if (!d)
		return; /* vanished between listing and reading: nothing to do */
	watch_dir(r, full, rel_len ? rel : "");
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		size_t nlen = strlen(de->d_name);
		/* systemd mount units are never containers and there are many */
		if (nlen > 6 && strcmp(de->d_name + nlen - 6, ".mount") == 0)
			continue;
		if (rel_len + 1 + nlen >= PATH_MAX)
			continue;
		rel[rel_len] = '/';
		memcpy(rel + rel_len + 1, de->d_name, nlen + 1);
		walk(r, root, rel, rel_len + 1 + nlen, depth + 1);
		rel[rel_len] = '\0';
	}
	closedir(d);
}

struct runc_scan {
	struct coll_registry *r;
	const char *root;
};

static void runc_found(void *arg, const char *id, const char *cgroup_path)
{
	struct runc_scan *s = arg;
	char full[PATH_MAX];
	struct stat st;
	snprintf(full, sizeof(full), "%s%s", s->root, cgroup_path);
	if (stat(full, &st) < 0 || !S_ISDIR(st.st_mode))
		return;
	struct coll_container *c = find_by_path(s->r, cgroup_path);
	if (c) {
		c->seen_gen = s->r->gen;
		return;
	}
	struct cg_ident ident = { .runtime = RUNTIME_RUNC };
	snprintf(ident.id, sizeof(ident.id), "%s", id);
	add_container(s->r, cgroup_path, &ident);
}

int coll_registry_rescan(struct coll_registry *r)
{
	const char *root = cg_layout_walk_root(r->ctx->layout);
	if (!root)
		return -ENOENT;
	char rel[PATH_MAX] = "";
	r->gen++;
	walk(r, root, rel, 0, 0);
	struct runc_scan s = { r, root };
	oci_scan_runc(runc_found, &s);
	remove_where(r, NULL, true);
	return 0;
}

/* ---- inotify ----------------------------------------------------------- */

static void on_created(struct coll_registry *r, const char *rel)
{
	const char *root = cg_layout_walk_root(r->ctx->layout);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s", rel);
	int depth = 0;
	for (const char *p = rel; *p; p++)
		depth += *p == '/';
	size_t before = r->count;
	walk(r, root, path, strlen(path), depth);
	/* A plain runc container's cgroup can be anywhere: ask its state files.
	 * runc makes the cgroup before it writes state.json, so a directory
	 * nobody claims is looked for again over the next ticks. */
	struct runc_scan s = { r, root };
	oci_scan_runc(runc_found, &s);
	if (r->count == before)
		r->runc_recheck = RUNC_RECHECK_TICKS;
}

/* Keeps rel to remove once the tick's loop is over; on ENOMEM the rescan
 * will find it gone. */
static void defer_removal(struct coll_registry *r, const char *rel)
{
	if (r->npending == r->pending_cap) {
		size_t cap = r->pending_cap ? 2 * r->pending_cap : 16;
		char **p = realloc(r->pending_rm, cap * sizeof(*p));
		if (!p) {
			r->pending_rescan = true;
			return;
		}
		r->pending_rm = p;
		r->pending_cap = cap;
	}
	char *d = strdup(rel);
	if (d)
		r->pending_rm[r->npending++] = d;
	else
		r->pending_rescan = true;
}

static void apply_deferred(struct coll_registry *r)
{
	for (size_t i = 0; i < r->npending; i++) {
		remove_where(r, r->pending_rm[i], false);
		free(r->pending_rm[i]);
	}
	r->npending = 0;
	if (r->pending_rescan) {
		r->pending_rescan = false;
		coll_registry_rescan(r);
	}
}

int coll_registry_poll(struct coll_registry *r)
{
	if (r->ifd < 0)
		return 0;
	char evbuf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	int changes = 0;
	size_t before = r->count;
	for (;;) {
		ssize_t n = read(r->ifd, evbuf, sizeof(evbuf));
		if (n <= 0)
			break;
		for (char *p = evbuf; p < evbuf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				if (r->in_tick)
					r->pending_rescan = true;
				else
					coll_registry_rescan(r);
				continue;
			}
			if (ev->wd < 0 || (size_t)ev->wd >= r->wd_cap || !r->wd_path[ev->wd])
				continue;
			if (ev->mask & IN_IGNORED) {
				free(r->wd_path[ev->wd]);
				r->wd_path[ev->wd] = NULL;
				continue;
			}
			if (!ev->len || !(ev->mask & IN_ISDIR))
				continue;
			char rel[PATH_MAX];
			if (snprintf(rel, sizeof(rel), "%s/%s", r->wd_path[ev->wd], ev->name) >=
			    (int)sizeof(rel))
				continue;
			if (ev->mask & (IN_CREATE | IN_MOVED_TO))
				on_created(r, rel);
			else if ((ev->mask & (IN_DELETE | IN_MOVED_FROM)) && r->in_tick)
				defer_removal(r, rel);
			else if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
				changes += remove_where(r, rel, false);
		}
	}
	if (r->count > before)
		changes += (int)(r->count - before);
	return changes;
}

int coll_registry_fd(const struct coll_registry *r)
{
	return r->ifd;
}

/* ---- metadata ---------------------------------------------------------- */

/* A restart under the restart policy shows only as a higher RestartCount
 * (Docker's own "restart" event is for `docker restart`): post one. */
static void note_restart(struct coll_registry *r, const struct meta_entry *e,
			 const struct coll_meta *next)
{
	if (e->meta.restart_count < 0 || next->restart_count <= e->meta.restart_count)
		return;
	struct coll_event ev;
	memset(&ev, 0, sizeof(ev));
	snprintf(ev.id, sizeof(ev.id), "%s", e->id);
	snprintf(ev.name, sizeof(ev.name), "%s", next->name ? next->name : "");
	snprintf(ev.type, sizeof(ev.type), "restart");
	snprintf(ev.detail, sizeof(ev.detail), "restart count %lld (restart policy %s)",
		 (long long)next->restart_count, next->restart_policy ? next->restart_policy : "?");
	coll_event_post(r->ctx->events, &ev);
}

static void apply_update(struct coll_registry *r, struct coll_meta_update *u)
{
	struct meta_entry **pp = &r->meta_cache, *e = find_meta(r, u->id);
	if (e)
		while (*pp != e)
			pp = &(*pp)->next;
	if (u->remove) {
		/* Destroyed (docker rm): gone from view at once, as from docker ps -a. */
		if (e)
			drop_meta(r, pp);
		return;
	}
	if (!e) {
		if (r->meta_count >= META_CACHE_MAX || !(e = calloc(1, sizeof(*e))))
			return;
		snprintf(e->id, sizeof(e->id), "%s", u->id);
		e->next = r->meta_cache;
		r->meta_cache = e;
		uint32_t b = bucket_of(e->id);
		e->hnext = r->meta_buckets[b];
		r->meta_buckets[b] = e;
		r->meta_count++;
		e->meta.restart_count = -1;
	}
	note_restart(r, e, &u->meta);
	coll_meta_fini(&e->meta);
	e->meta = u->meta;
	memset(&u->meta, 0, sizeof(u->meta));
	e->gone_ms = 0;
	free(e->prom_labels);
	e->prom_labels = NULL;
	for (struct coll_container *c = r->list; c; c = c->next)
		if (strcmp(c->id, e->id) == 0)
			set_meta(r, c, &e->meta);
}

void coll_registry_apply(struct coll_registry *r, struct coll_meta_queue *q)
{
	struct coll_meta_update *u = coll_meta_take(q);
	while (u) {
		struct coll_meta_update *next = u->next;
		apply_update(r, u);
		coll_meta_update_free(u);
		u = next;
	}
}

/* ---- collection -------------------------------------------------------- */

/* Whether a container without a cgroup is still worth showing. Exited and
 * dead ones are shown for keep_exited after they finished; created,
 * restarting (between runs) and the rest for as long as the runtime lists
 * them. */
static bool show_gone(const struct coll_registry *r, const struct meta_entry *e, int64_t now)
{
	int64_t keep = r->ctx->keep_exited_ms;
	if (keep <= 0 || !e->meta.has_state)
		return false;
	const char *st = e->meta.state ? e->meta.state : "";
	if (strcmp(st, "exited") == 0 || strcmp(st, "dead") == 0) {
		int64_t since = e->meta.finished_at > 0 ? (int64_t)(e->meta.finished_at * 1000) :
			e->gone_ms;
		return now - since < keep;
	}
	return true;
}

/*
 * Adds the runtime's containers that have no cgroup (see show_gone) to the
 * snapshot, with their lifecycle series only, under the id label they had
 * while alive ("" when the agent never saw them run).
 */
static void collect_gone(struct coll_registry *r, struct coll_sink *sink, int64_t now)
{
	for (struct meta_entry *e = r->meta_cache; e; e = e->next) {
		if (e->live_tick == r->tick) {
			e->gone_ms = 0;
			continue;
		}
		if (!e->gone_ms)
			e->gone_ms = now;
		if (!show_gone(r, e, now))
			continue;
		struct coll_container c;
		memset(&c, 0, sizeof(c));
		snprintf(c.id, sizeof(c.id), "%s", e->id);
		c.cgroup = e->last_cgroup ? e->last_cgroup : (char *)"";
		c.runtime = RUNTIME_DOCKER;
		c.meta = e->meta; /* borrowed: never freed through c */
		if (!e->prom_labels) {
			render_labels(r, &c);
			e->prom_labels = c.prom_labels;
		}
		c.prom_labels = e->prom_labels;
		sink_begin_container(sink, &c, e->meta.started_at);
		sink_mark_gone(sink, (double)(e->last_seen_ms / 1000));
		coll_emit_lifecycle(sink, &c.meta);
		if (e->meta.started_at > 0)
			sink_emit(sink, M_START_TIME, NULL, e->meta.started_at);
		if (e->last_seen_ms)
			sink_emit(sink, M_LAST_SEEN, NULL, (double)(e->last_seen_ms / 1000));
	}
}

/* Collects c into sink with every collector (with_begin) or only those
 * without a per-tick begin op. */
static void collect_one(struct coll_registry *r, struct coll_container *c, struct coll_sink *sink,
			uint64_t *errors, bool with_begin)
{
	double start = c->meta.started_at > 0 ? c->meta.started_at : c->cgroup_ctime;
	sink_begin_container(sink, c, start);
	for (size_t i = 0; i < coll_count; i++) {
		if (!r->coll_ok[i] || (!with_begin && coll_all[i]->begin))
			continue;
		int e = coll_all[i]->collect(r->coll_state[i], c, &c->priv[i], sink);
		if (e > 0)
			errors[i] += (uint64_t)e;
	}
	if (start > 0)
		sink_emit(sink, M_START_TIME, NULL, start);
	sink_emit(sink, M_LAST_SEEN, NULL, (double)(sink->snap->time_ms / 1000));
	coll_emit_lifecycle(sink, &c->meta);
}

void coll_registry_hold_unnamed(struct coll_registry *r, bool hold)
{
	if (r->hold_unnamed && !hold)
		r->answered_ns = mono_ns();
	r->hold_unnamed = hold;
}

void coll_registry_engine_up(struct coll_registry *r, bool up)
{
	r->engine_up = up;
}

/* A Docker container without its name yet: not collected until the name is
 * in (see coll_registry_hold_unnamed and coll_registry_engine_up), so that
 * no series is stored under its id and again under its name. One found
 * before the engine first answered and not named by that answer is not
 * held again: the engine listed every container it has. */
static bool held_unnamed(const struct coll_registry *r, const struct coll_container *c)
{
	if (c->has_meta || c->runtime != RUNTIME_DOCKER)
		return false;
	int64_t age = mono_ns() - c->found_ns;
	if (r->hold_unnamed)
		return age < COLL_HOLD_UNNAMED_MS * 1000000LL;
	return r->engine_up && r->answered_ns && c->found_ns > r->answered_ns &&
	       age < COLL_HOLD_NEW_MS * 1000000LL;
}

void coll_registry_collect(struct coll_registry *r, struct coll_sink *sink, uint64_t *errors)
{
	if (r->runc_recheck > 0) {
		struct runc_scan s = { r, cg_layout_walk_root(r->ctx->layout) };
		r->runc_recheck--;
		if (s.root)
			oci_scan_runc(runc_found, &s);
	}
	for (size_t i = 0; i < coll_count; i++)
		if (r->coll_ok[i] && coll_all[i]->begin)
			coll_all[i]->begin(r->coll_state[i], sink);
	int64_t now = sink->snap->time_ms;
	r->tick++;
	/* Containers found during the loop (see midtick) go in front of first. */
	struct coll_container *first = r->list;
	size_t k = 0;
	r->in_tick = true;
	for (struct coll_container *c = first; c; c = c->next) {
		if (r->midtick && ++k % MIDTICK_EVERY == 0)
			r->midtick(r->midtick_arg);
		if (c->has_meta) {
			struct meta_entry *e = find_meta(r, c->id);
			if (e)
				e->live_tick = r->tick;
		}
		/* A cgroup seen mid-creation may lack its other controllers' dirs
		 * for a moment: first collect it once they have had time to appear
		 * (the loop's fresh pass takes it then, without stalling the tick). */
		if (c->fresh) {
			if (mono_ns() - c->found_ns < FRESH_SETTLE_NS)
				continue;
			c->fresh = false;
		}
		if (held_unnamed(r, c))
			continue;
		collect_one(r, c, sink, errors, true);
	}
	/* Found and collected on their own during the loop: in this snapshot
	 * too, or they would drop out of /metrics until the next tick. */
	for (struct coll_container *c = r->list; c != first; c = c->next)
		if (!c->fresh)
			collect_one(r, c, sink, errors, true);
	r->in_tick = false;
	apply_deferred(r);
	collect_gone(r, sink, now);
	r->collected = true;
}

int64_t coll_registry_fresh_due_ns(const struct coll_registry *r)
{
	int64_t due = 0;
	for (struct coll_container *c = r->list; c; c = c->next)
		if (c->fresh && (!due || c->found_ns + FRESH_SETTLE_NS < due))
			due = c->found_ns + FRESH_SETTLE_NS;
	return due;
}

size_t coll_registry_collect_fresh(struct coll_registry *r, struct coll_sink *sink,
				   uint64_t *errors)
{
	int64_t t = mono_ns();
	size_t n = 0;
	for (struct coll_container *c = r->list; c; c = c->next) {
		if (!c->fresh || t - c->found_ns < FRESH_SETTLE_NS)
			continue;
		c->fresh = false; /* settled: not due here again (the loop would spin) */
		if (held_unnamed(r, c))
			continue; /* the ticks collect it once it is named */
		/* A collector with a begin op reads per-tick state there (eBPF
		 * maps): it waits for the next tick. */
		collect_one(r, c, sink, errors, false);
		n++;
	}
	return n;
}

void coll_registry_set_midtick(struct coll_registry *r, void (*fn)(void *arg), void *arg)
{
	r->midtick = fn;
	r->midtick_arg = arg;
}

void coll_registry_agent_metrics(struct coll_registry *r, struct coll_sink *sink)
{
	for (size_t i = 0; i < coll_count; i++)
		if (r->coll_ok[i] && coll_all[i]->agent_metrics)
			coll_all[i]->agent_metrics(r->coll_state[i], sink);
}

size_t coll_registry_count(const struct coll_registry *r, enum coll_runtime rt)
{
	return (unsigned)rt < RUNTIME__COUNT ? r->by_runtime[rt] : 0;
}

struct coll_container *coll_registry_first(struct coll_registry *r)
{
	return r->list;
}

/* ---- life -------------------------------------------------------------- */

struct coll_registry *coll_registry_new(const struct coll_ctx *ctx)
{
	struct coll_registry *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->ctx = ctx;
	r->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (r->ifd < 0)
		log_warn("discovery: inotify unavailable (%s); relying on rescans", strerror(errno));
	for (size_t i = 0; i < coll_count; i++) {
		r->coll_ok[i] = coll_all[i]->init(&r->coll_state[i], ctx) == 0;
		if (!r->coll_ok[i])
			log_error("collector %s failed to start; its metrics are missing",
				  coll_all[i]->name);
	}
	return r;
}

void coll_registry_free(struct coll_registry *r)
{
	if (!r)
		return;
	while (r->list) {
		struct coll_container *c = r->list;
		r->list = c->next;
		free_container(r, c);
	}
	for (size_t i = 0; i < coll_count; i++)
		if (r->coll_ok[i] && coll_all[i]->destroy)
			coll_all[i]->destroy(r->coll_state[i]);
	while (r->meta_cache)
		drop_meta(r, &r->meta_cache);
	for (size_t i = 0; i < r->wd_cap; i++)
		free(r->wd_path[i]);
	free(r->wd_path);
	for (size_t i = 0; i < r->npending; i++)
		free(r->pending_rm[i]);
	free(r->pending_rm);
	if (r->ifd >= 0)
		close(r->ifd);
	free(r);
}
