/*
 * netns.c - the network collector: each container's traffic, read from its
 * own network namespace.
 *
 * A container's namespace is the one its processes are in. The collector
 * keeps one pid per container (the first one listed in its cgroup's
 * cgroup.procs, or a descendant cgroup's) and checks it every NS_CHECK_MS
 * (5 s) with one stat() of /proc/<pid>/ns/net: a pid that exited, or whose
 * number now belongs to a process in another namespace, is replaced from
 * cgroup.procs.
 *
 * Namespaces are shared objects here, keyed by the nsfs inode: containers
 * that join one namespace (Kubernetes pods, docker --network container:X)
 * hold a reference to the same entry, and the entry holds the one open
 * descriptor on /proc/<pid>/net/dev that is pread each tick. That file shows
 * the namespace of the pid that opened it, and the open file keeps that
 * namespace, so the descriptor stays right while the pid check holds.
 *
 * Each namespace's traffic is counted once, on its owner: a Kubernetes pod's
 * own cgroup when the pod is a container here, else the container that
 * started first (then the lowest id). The others are marked "shared" and
 * name the owner. A container in the host's namespace (the one of
 * <host-root>/proc/1) is marked "host" and its traffic is not counted as its
 * own: it is the host's. A new owner starts reporting on the tick after it
 * takes the namespace, so two containers never report one namespace in the
 * same snapshot.
 */
#include "collectors/collector.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NS_BUCKETS 256
#define NS_MAX_IFACES 256        /* interfaces reported per namespace */
#define NS_DEV_BYTES (64 * 1024) /* net/dev read per tick at most */
#define NS_PID_CANDIDATES 16     /* pids tried per resolution */
#define NS_CHECK_MS 5000         /* how often a cached pid is checked */

struct netns;

struct net_priv {
	pid_t pid;               /* a member of the container, 0 when none */
	int64_t check_ms;        /* when to check pid again */
	struct netns *ns;        /* the namespace it is in, or NULL */
	const struct coll_container *c;
	char *mode_extra;        /* rendered labels of container_network_mode */
	const char *mode;        /* what mode_extra was rendered for */
	char mode_owner[128];
	bool failing;            /* the last collection failed (logged) */
};

struct netns {
	struct proc_nsid id;
	int refs;
	bool host;
	int fd;                  /* /proc/<pid>/net/dev opened in this namespace, or -1 */
	struct net_priv *owner;
	int64_t claimed_ms;      /* tick at which owner took the namespace */
	struct netns *next;
};

struct net_state {
	struct cg_layout layout;
	bool enabled;
	bool have_host;
	struct proc_nsid host;
	struct netns *buckets[NS_BUCKETS];
	char *buf;               /* one net/dev at a time */
	struct proc_netdev *ifaces;
	struct log_limit ll;      /* one complaint for every container's failures */
	size_t nfailing;          /* containers whose last collection failed */
};

static uint32_t bucket_of(const struct proc_nsid *id)
{
	return (uint32_t)((id->ino ^ (id->dev << 7)) & (NS_BUCKETS - 1));
}

/* ---- namespaces -------------------------------------------------------------- */

static struct netns *ns_get(struct net_state *s, const struct proc_nsid *id)
{
	uint32_t b = bucket_of(id);
	for (struct netns *n = s->buckets[b]; n; n = n->next)
		if (n->id.ino == id->ino && n->id.dev == id->dev) {
			n->refs++;
			return n;
		}
	struct netns *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->id = *id;
	n->refs = 1;
	n->fd = -1;
	n->host = s->have_host && id->ino == s->host.ino && id->dev == s->host.dev;
	n->next = s->buckets[b];
	s->buckets[b] = n;
	return n;
}

static void ns_put(struct net_state *s, struct netns *n, struct net_priv *p)
{
	if (!n)
		return;
	if (n->owner == p)
		n->owner = NULL;
	if (--n->refs > 0)
		return;
	for (struct netns **pp = &s->buckets[bucket_of(&n->id)]; *pp; pp = &(*pp)->next)
		if (*pp == n) {
			*pp = n->next;
			break;
		}
	if (n->fd >= 0)
		close(n->fd);
	free(n);
}

static void leave_ns(struct net_state *s, struct net_priv *p)
{
	ns_put(s, p->ns, p);
	p->ns = NULL;
	p->pid = 0;
}

/* ---- finding the container's namespace --------------------------------------- */

/*
 * True when p's cached pid is still in p's namespace. The check is one
 * stat() of /proc/<pid>/ns/net (a third of the collector's cost when done
 * every tick), so it runs every NS_CHECK_MS, spread over containers. In
 * between, the open net/dev keeps reading the namespace the pid was in,
 * which stays the container's while any of its processes live in it; a
 * container that is gone is forgotten by discovery, whatever we cached.
 */
static bool pid_still_valid(struct net_priv *p, int64_t now)
{
	struct proc_nsid id;
	if (!p->pid || !p->ns)
		return false;
	if (now < p->check_ms)
		return true;
	if (proc_netns_id(p->pid, &id) < 0 || id.ino != p->ns->id.ino || id.dev != p->ns->id.dev)
		return false;
	p->check_ms = now + NS_CHECK_MS;
	return true;
}

/*
 * Finds a process of c and its namespace. Returns 0 (p->pid and p->ns set),
 * -ENOENT when the cgroup holds no process (or every one vanished while we
 * looked), or another -errno (permission) to be counted.
 */
static int resolve(struct net_state *s, struct net_priv *p, const struct coll_container *c)
{
	pid_t pids[NS_PID_CANDIDATES];
	bool truncated;
	ssize_t n = proc_cgroup_pids(&s->layout, c->cgroup, pids, ARRAY_LEN(pids), &truncated);
	if (n < 0)
		return n == -ENOENT ? -ENOENT : (int)n;
	int err = -ENOENT;
	for (ssize_t i = 0; i < n; i++) {
		struct proc_nsid id;
		int rc = proc_netns_id(pids[i], &id);
		if (rc == -ENOENT)
			continue;
		if (rc < 0) {
			err = rc;
			continue;
		}
		if (!p->ns || p->ns->id.ino != id.ino || p->ns->id.dev != id.dev) {
			struct netns *ns = ns_get(s, &id);
			if (!ns)
				return -ENOMEM;
			ns_put(s, p->ns, p);
			p->ns = ns;
		}
		p->pid = pids[i];
		return 0;
	}
	return err;
}

/* Orders candidates for owning a namespace: pods first, then the earliest
 * start, then the lower id, so every tick picks the same one. */
static bool better_owner(const struct coll_container *a, const struct coll_container *b)
{
	if ((a->runtime == RUNTIME_KUBEPOD) != (b->runtime == RUNTIME_KUBEPOD))
		return a->runtime == RUNTIME_KUBEPOD;
	double sa = a->meta.started_at > 0 ? a->meta.started_at : a->cgroup_ctime;
	double sb = b->meta.started_at > 0 ? b->meta.started_at : b->cgroup_ctime;
	if (sa != sb && sa > 0 && sb > 0)
		return sa < sb;
	return strcmp(a->id, b->id) < 0;
}

/* ---- complaints ---------------------------------------------------------------- */

/* Failures are logged rate-limited; the recovery once no container fails any
 * more, so one bad container beside good ones does not flap the log. */
static void failed(struct net_state *s, struct net_priv *p)
{
	if (!p->failing) {
		p->failing = true;
		s->nfailing++;
	}
}

static void succeeded(struct net_state *s, struct net_priv *p)
{
	if (p->failing) {
		p->failing = false;
		if (--s->nfailing == 0)
			log_recovered(&s->ll, "network: reading container namespaces");
	}
}

/* ---- emitting ------------------------------------------------------------------ */

static const char *display_name(const struct coll_container *c)
{
	return c->meta.name ? c->meta.name : c->id;
}

/* container_network_mode's labels, rebuilt only when mode or owner change. */
static const char *mode_extra(struct net_priv *p, const char *mode, const struct coll_container *owner)
{
	const char *oname = owner ? display_name(owner) : "";
	if (p->mode_extra && p->mode && !strcmp(p->mode, mode) && !strcmp(p->mode_owner, oname))
		return p->mode_extra;
	struct buf b;
	buf_init(&b, 4096);
	buf_printf(&b, "mode=\"%s\",owner=", mode);
	buf_put_label_value(&b, oname);
	free(p->mode_extra);
	p->mode_extra = b.overflow ? NULL : buf_steal(&b, NULL);
	buf_fini(&b);
	p->mode = mode;
	snprintf(p->mode_owner, sizeof(p->mode_owner), "%s", oname);
	return p->mode_extra;
}

/* Opens net/dev through p's pid and checks the pid did not change namespace
 * meanwhile. Returns 0 or -errno. */
static int open_netdev(struct net_priv *p)
{
	char rel[64], path[PATH_MAX];
	snprintf(rel, sizeof(rel), "/proc/%d/net/dev", (int)p->pid);
	if (hostroot_path(path, sizeof(path), rel) < 0)
		return -ENAMETOOLONG;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ESRCH ? -ENOENT : -errno;
	struct proc_nsid id;
	if (proc_netns_id(p->pid, &id) < 0 || id.ino != p->ns->id.ino || id.dev != p->ns->id.dev) {
		close(fd);
		return -ENOENT;
	}
	p->ns->fd = fd;
	return 0;
}

/* interface="<name>" into out (sized for any interface name), escaped:
 * names never hold whitespace, but may hold '"' and '\\'. */
static void iface_extra(char *out, size_t size, const char *name)
{
	size_t n = (size_t)snprintf(out, size, "interface=\"");
	for (const char *p = name; *p && n + 4 < size; p++) {
		if (*p == '\\' || *p == '"')
			out[n++] = '\\';
		out[n++] = *p;
	}
	out[n++] = '"';
	out[n] = '\0';
}

/* Reads the owner's namespace counters and emits them. Returns the number
 * of failed reads. */
static int emit_traffic(struct net_state *s, struct net_priv *p, struct coll_sink *sink)
{
	struct netns *ns = p->ns;
	int rc;
	if (ns->fd < 0 && (rc = open_netdev(p)) < 0) {
		if (rc == -ENOENT) {
			p->pid = 0; /* gone: found again next tick */
			return 0;
		}
		log_limited(&s->ll, LOG_WARN, "network: container %s: opening /proc/%d/net/dev: %s",
			    p->c->id, (int)p->pid, strerror(-rc));
		failed(s, p);
		return 1;
	}
	ssize_t n = pread(ns->fd, s->buf, NS_DEV_BYTES - 1, 0);
	if (n < 0) {
		log_limited(&s->ll, LOG_WARN, "network: container %s: reading /proc/%d/net/dev: %s",
			    p->c->id, (int)p->pid, strerror(errno));
		failed(s, p);
		close(ns->fd);
		ns->fd = -1;
		p->pid = 0;
		return 1;
	}
	s->buf[n] = '\0';
	size_t total;
	int nif = proc_parse_netdev(s->buf, s->ifaces, NS_MAX_IFACES, &total);
	if (nif < 0) {
		log_limited(&s->ll, LOG_WARN, "network: container %s: /proc/%d/net/dev does not parse",
			    p->c->id, (int)p->pid);
		failed(s, p);
		return 1;
	}
	succeeded(s, p);
	for (int i = 0; i < nif; i++) {
		const struct proc_netdev *d = &s->ifaces[i];
		if (proc_netdev_skipped(d->name))
			continue;
		char extra[160];
		iface_extra(extra, sizeof(extra), d->name);
		sink_emit(sink, M_NET_RX_BYTES, extra, (double)d->rx_bytes);
		sink_emit(sink, M_NET_RX_PACKETS, extra, (double)d->rx_packets);
		sink_emit(sink, M_NET_RX_DROPPED, extra, (double)d->rx_dropped);
		sink_emit(sink, M_NET_RX_ERRORS, extra, (double)d->rx_errors);
		sink_emit(sink, M_NET_TX_BYTES, extra, (double)d->tx_bytes);
		sink_emit(sink, M_NET_TX_PACKETS, extra, (double)d->tx_packets);
		sink_emit(sink, M_NET_TX_DROPPED, extra, (double)d->tx_dropped);
		sink_emit(sink, M_NET_TX_ERRORS, extra, (double)d->tx_errors);
	}
	return 0;
}

/* ---- the collector ------------------------------------------------------------ */

static void op_destroy(void *state);

static int op_init(void **state, const struct coll_ctx *ctx)
{
	struct net_state *s = calloc(1, sizeof(*s));
	*state = NULL;
	if (!s)
		return -ENOMEM;
	s->enabled = !ctx || ctx->network;
	if (ctx && ctx->layout)
		s->layout = *ctx->layout;
	else
		cg_layout_detect(&s->layout);
	s->buf = malloc(NS_DEV_BYTES);
	s->ifaces = calloc(NS_MAX_IFACES, sizeof(*s->ifaces));
	if (!s->buf || !s->ifaces) {
		op_destroy(s);
		return -ENOMEM;
	}
	int rc = proc_host_netns(&s->host);
	s->have_host = rc == 0;
	if (rc < 0 && s->enabled)
		log_warn("network: cannot read %s/proc/1/ns/net nor /proc/2/ns/net (%s): "
			 "containers on the host network will not be told apart",
			 strcmp(hostroot_get(), "/") ? hostroot_get() : "", strerror(-rc));
	*state = s;
	return 0;
}

static int op_collect(void *state, struct coll_container *c, void **privp, struct coll_sink *sink)
{
	struct net_state *s = state;
	struct net_priv *p = *privp;
	int64_t now = sink->snap->time_ms;

	if (!s->enabled)
		return 0;
	if (!p) {
		if (!(p = calloc(1, sizeof(*p))))
			return 1;
		*privp = p;
	}
	p->c = c;
	if (!pid_still_valid(p, now)) {
		int rc = resolve(s, p, c);
		/* The first check lands anywhere in the next NS_CHECK_MS, so
		 * containers found together are not all checked in one tick. */
		p->check_ms = now + 1 + (int64_t)(hash_str(c->id) % NS_CHECK_MS);
		if (rc < 0) {
			/* No process (created, exited, an empty pod): no namespace. */
			leave_ns(s, p);
			if (rc == -ENOENT) {
				succeeded(s, p);
				return 0;
			}
			log_limited(&s->ll, LOG_WARN, "network: container %s (%s): reading "
				    "/proc/<pid>/ns/net of its processes: %s (the agent needs root or "
				    "CAP_SYS_PTRACE)", c->id, c->cgroup, strerror(-rc));
			failed(s, p);
			return 1;
		}
	}
	struct netns *ns = p->ns;
	if (ns->host) {
		sink_emit(sink, M_NET_MODE, mode_extra(p, "host", NULL), 1);
		succeeded(s, p);
		return 0;
	}
	if (!ns->owner || (ns->owner != p && better_owner(c, ns->owner->c))) {
		ns->owner = p;
		ns->claimed_ms = now;
	}
	if (ns->owner != p) {
		sink_emit(sink, M_NET_MODE, mode_extra(p, "shared", ns->owner->c), 1);
		succeeded(s, p);
		return 0;
	}
	sink_emit(sink, M_NET_MODE, mode_extra(p, "private", c), 1);
	/* Whoever held the namespace before may have reported it this tick. */
	if (ns->claimed_ms == now) {
		succeeded(s, p);
		return 0;
	}
	return emit_traffic(s, p, sink);
}

static void op_forget(void *state, struct coll_container *c, void **privp)
{
	struct net_state *s = state;
	struct net_priv *p = *privp;
	if (!p)
		return;
	leave_ns(s, p);
	if (p->failing)
		s->nfailing--;
	free(p->mode_extra);
	free(p);
	*privp = NULL;
}

static void op_destroy(void *state)
{
	struct net_state *s = state;
	if (!s)
		return;
	/* Containers were forgotten first; anything left is freed regardless. */
	for (size_t b = 0; b < NS_BUCKETS; b++)
		while (s->buckets[b]) {
			struct netns *n = s->buckets[b];
			s->buckets[b] = n->next;
			if (n->fd >= 0)
				close(n->fd);
			free(n);
		}
	free(s->buf);
	free(s->ifaces);
	free(s);
}

const struct coll_ops coll_netns_ops = {
	.name = "network",
	.init = op_init,
	.collect = op_collect,
	.forget = op_forget,
	.destroy = op_destroy,
};
