/*
 * api_proc.c - GET /api/v1/containers/{id}/processes and .../ports: what
 * `docker top` and `ss -ltnup` inside the container would show, read from
 * /proc at request time (on the connection's thread, through the stateless
 * readers of collectors/procfs.c), never from the tick's snapshot, which
 * only names the container and its cgroup.
 *
 * Both are bounded: at most API_PROC_MAX processes (the answer says
 * "truncated": true past it), command lines cut at API_CMDLINE_BYTES,
 * API_SOCKETS_MAX listening sockets, API_FDS_MAX descriptors examined to
 * find which process holds each socket. Processes that exit while we read
 * are left out; ones we may not read are counted in "unreadable".
 */
#include "agent/agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define API_PROC_MAX 10000
#define API_CMDLINE_BYTES 1024
#define API_SOCKETS_MAX 65536
#define API_FDS_MAX (1u << 20)
#define PASSWD_MAX_BYTES (1u << 20)

/* The container the request names, with a reference on its snapshot; on
 * failure the error response is written and NULL returned. */
static const struct snap_container *lookup(struct http_req *req, struct http_resp *resp,
					   struct snapshot **snap, int *status)
{
	*snap = agent_snapshot(req->st);
	if (!*snap) {
		*status = http_error(resp, 503, "unavailable", "no data yet: the first collection "
				     "tick has not finished");
		return NULL;
	}
	const struct snap_container *c = api_find_container(*snap, req->arg);
	if (!c) {
		char msg[320];
		snprintf(msg, sizeof(msg), "no container with id or name \"%.256s\"", req->arg);
		*status = http_error(resp, 404, "not_found", msg);
		snapshot_unref(*snap);
		*snap = NULL;
		return NULL;
	}
	if (!req->st->layout) {
		*status = http_error(resp, 503, "unavailable", "no cgroup layout");
		snapshot_unref(*snap);
		*snap = NULL;
		return NULL;
	}
	return c;
}

/* Lists the container's pids into a malloc'd array (caller frees); *n is
 * 0 when its cgroup is gone (an exited container still shown). NULL and an
 * error response on failure. */
static pid_t *container_pids(struct http_req *req, struct http_resp *resp,
			     const struct snap_container *c, ssize_t *n, bool *truncated,
			     int *status)
{
	pid_t *pids = malloc(API_PROC_MAX * sizeof(*pids));
	if (!pids) {
		*status = http_error(resp, 500, "internal", "out of memory");
		return NULL;
	}
	*n = proc_cgroup_pids(req->st->layout, c->cgroup, pids, API_PROC_MAX, truncated);
	if (*n == -ENOENT) {
		*n = 0;
	} else if (*n < 0) {
		char msg[PATH_MAX + 128];
		snprintf(msg, sizeof(msg), "reading the processes of cgroup %s: %s", c->cgroup,
			 strerror((int)-*n));
		*status = http_error(resp, 500, "internal", msg);
		free(pids);
		return NULL;
	}
	return pids;
}

static void put_head(struct buf *b, const struct snap_container *c)
{
	buf_puts(b, "{\"status\":\"success\",\"data\":{\"id\":");
	buf_put_json_str(b, c->id);
	buf_puts(b, ",\"name\":");
	buf_put_json_str(b, c->name ? c->name : c->id);
}

/* ---- processes ------------------------------------------------------------ */

/* What every process's figures are relative to. */
struct host_clock {
	double clk_tck, page_bytes;
	double btime;            /* boot, unix seconds */
	double uptime;           /* seconds since boot */
};

static void host_clock(struct host_clock *h)
{
	char path[PATH_MAX], text[8192];
	long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	h->clk_tck = hz > 0 ? (double)hz : 100;
	h->page_bytes = page > 0 ? (double)page : 4096;
	h->btime = h->uptime = 0;
	if (hostroot_path(path, sizeof(path), "/proc/stat") == 0 &&
	    read_file(path, text, sizeof(text)) > 0) {
		const char *p = strstr(text, "\nbtime ");
		if (p)
			h->btime = strtod(p + 7, NULL);
	}
	if (hostroot_path(path, sizeof(path), "/proc/uptime") == 0 &&
	    read_file(path, text, sizeof(text)) > 0)
		h->uptime = strtod(text, NULL);
}

/* The user name of uid in /etc/passwd text ("name:x:uid:..."), or false. */
bool api_passwd_name(const char *passwd, uint32_t uid, char *out, size_t size)
{
	for (const char *p = passwd; p && *p;) {
		const char *eol = strchr(p, '\n');
		const char *c1 = strchr(p, ':');
		const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c1 && c2 && (!eol || c2 < eol)) {
			char *end;
			unsigned long v = strtoul(c2 + 1, &end, 10);
			if (end > c2 + 1 && *end == ':' && v == uid && (size_t)(c1 - p) < size &&
			    c1 > p) {
				memcpy(out, p, (size_t)(c1 - p));
				out[c1 - p] = '\0';
				return true;
			}
		}
		p = eol ? eol + 1 : NULL;
	}
	return false;
}

static char *read_passwd(void)
{
	char path[PATH_MAX];
	char *text = malloc(PASSWD_MAX_BYTES);
	if (!text || hostroot_path(path, sizeof(path), "/etc/passwd") < 0 ||
	    read_file(path, text, PASSWD_MAX_BYTES) < 0) {
		free(text);
		return NULL;
	}
	return text;
}

static void put_process(struct buf *b, const struct proc_stat *st, uint32_t uid, bool have_uid,
			const char *user, const char *cmd, const struct host_clock *h, bool comma)
{
	double start_s = (double)st->start_ticks / h->clk_tck;
	double cpu_s = (double)(st->utime_ticks + st->stime_ticks) / h->clk_tck;
	double elapsed = h->uptime - start_s;
	/* As ps computes %CPU: CPU time over the time since the process began. */
	double pcpu = elapsed > 0 ? 100.0 * cpu_s / elapsed : 0;
	char state[2] = { st->state, '\0' };

	buf_printf(b, "%s{\"pid\":%d,\"ppid\":%d,", comma ? "," : "", (int)st->pid, (int)st->ppid);
	if (have_uid) {
		buf_printf(b, "\"uid\":%u,\"user\":", uid);
		buf_put_json_str(b, user);
	} else {
		buf_puts(b, "\"uid\":null,\"user\":null");
	}
	buf_puts(b, ",\"state\":");
	buf_put_json_str(b, state);
	buf_printf(b, ",\"cpu_percent\":%.2f,\"cpu_seconds\":%.2f,\"rss_bytes\":%.0f,\"threads\":%lld,"
		   "\"start_time\":", pcpu, cpu_s, (double)st->rss_pages * h->page_bytes,
		   (long long)st->threads);
	if (h->btime > 0)
		buf_printf(b, "%.2f", h->btime + start_s);
	else
		buf_puts(b, "null");
	buf_puts(b, ",\"command\":");
	buf_put_json_str(b, cmd);
	buf_putc(b, '}');
}

int api_processes(struct http_req *req, struct http_resp *resp)
{
	struct snapshot *snap;
	int status = 200;
	const struct snap_container *c = lookup(req, resp, &snap, &status);
	if (!c)
		return status;
	ssize_t n;
	bool truncated = false;
	pid_t *pids = container_pids(req, resp, c, &n, &truncated, &status);
	if (!pids) {
		snapshot_unref(snap);
		return status;
	}
	struct host_clock h;
	host_clock(&h);
	char *passwd = read_passwd();
	char cmd[API_CMDLINE_BYTES + 8];
	struct buf *b = &resp->body;
	size_t count = 0, unreadable = 0;

	put_head(b, c);
	buf_puts(b, ",\"processes\":[");
	for (ssize_t i = 0; i < n; i++) {
		struct proc_stat st;
		int rc = proc_read_stat(pids[i], &st);
		if (rc == -ENOENT)
			continue;        /* exited since cgroup.procs was read */
		if (rc < 0) {
			unreadable++;
			continue;
		}
		uint32_t uid = 0;
		bool have_uid = proc_read_uid(pids[i], &uid) == 0;
		char user[64];
		if (!have_uid || !passwd || !api_passwd_name(passwd, uid, user, sizeof(user)))
			snprintf(user, sizeof(user), "%u", uid);
		/* Kernel threads and zombies have no command line: [comm], as ps. */
		if (proc_read_cmdline(pids[i], cmd, API_CMDLINE_BYTES + 1) <= 0)
			snprintf(cmd, sizeof(cmd), "[%.60s]", st.comm);
		put_process(b, &st, uid, have_uid, user, cmd, &h, count > 0);
		count++;
	}
	buf_printf(b, "],\"count\":%zu,\"truncated\":%s,\"unreadable\":%zu}}", count,
		   truncated ? "true" : "false", unreadable);
	resp->type = "application/json";
	free(passwd);
	free(pids);
	snapshot_unref(snap);
	return 200;
}

/* ---- ports ---------------------------------------------------------------- */

struct port_scan {
	struct proc_socket *socks;
	pid_t *owner;            /* per socket, 0 when not held by the container */
	size_t n;
};

static int cmp_inode(const void *a, const void *b)
{
	const struct proc_socket *x = a, *y = b;
	return (x->inode > y->inode) - (x->inode < y->inode);
}

/* proc_scan_fds callback: marks the sockets this pid holds. */
static void found_socket(void *arg, pid_t pid, uint64_t inode)
{
	struct port_scan *ps = arg;
	size_t lo = 0, hi = ps->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ps->socks[mid].inode < inode)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < ps->n && ps->socks[lo].inode == inode && !ps->owner[lo])
		ps->owner[lo] = pid;
}

/* qsort_r order of socket indices: protocol, port, family, address. */
static int cmp_port(const void *a, const void *b, void *arg)
{
	const struct port_scan *ps = arg;
	const struct proc_socket *x = &ps->socks[*(const size_t *)a];
	const struct proc_socket *y = &ps->socks[*(const size_t *)b];
	if (x->proto != y->proto)
		return x->proto - y->proto;
	if (x->port != y->port)
		return x->port - y->port;
	if (x->family != y->family)
		return x->family - y->family;
	return memcmp(x->addr, y->addr, sizeof(x->addr));
}

/* Reads the listening sockets of pid's namespace into ps (replacing what it
 * held). 0, -ENOENT when pid exited meanwhile, or another -errno. */
static int read_listening(pid_t pid, struct port_scan *ps, bool *truncated)
{
	static const int kinds[4][2] = { { PROC_TCP, PROC_AF_INET }, { PROC_TCP, PROC_AF_INET6 },
					 { PROC_UDP, PROC_AF_INET }, { PROC_UDP, PROC_AF_INET6 } };
	struct proc_nsid id;
	ps->n = 0;
	for (size_t k = 0; k < 4; k++) {
		size_t total = 0;
		int got = proc_read_sockets(pid, kinds[k][0], kinds[k][1], true, ps->socks + ps->n,
					    API_SOCKETS_MAX - ps->n, &total);
		/* No tcp6 while the process is still there: a kernel without IPv6. */
		if (got == -ENOENT && kinds[k][1] == PROC_AF_INET6 && proc_netns_id(pid, &id) == 0)
			continue;
		if (got < 0)
			return got;
		ps->n += (size_t)got;
		*truncated |= total > (size_t)got;
	}
	return 0;
}

/* The mode and owner the last tick gave the container (container_network_mode
 * labels, unescaped into owner), or NULL when it has none. */
static const char *tick_network_mode(const struct snapshot *s, const struct snap_container *c,
				     char *owner, size_t size)
{
	static const char *const modes[] = { "private", "shared", "host" };
	const struct snap_sample *first = &s->samples[c->sample_first];
	for (uint32_t i = 0; i < c->sample_count; i++) {
		const char *e = first[i].extra;
		if (first[i].family != M_NET_MODE || !e || strncmp(e, "mode=\"", 6) != 0)
			continue;
		const char *o = strstr(e, ",owner=\"");
		size_t n = 0;
		for (o = o ? o + 8 : ""; *o && *o != '"' && n + 1 < size; o++) {
			if (*o == '\\' && o[1]) {
				o++;
				owner[n++] = *o == 'n' ? '\n' : *o;
			} else {
				owner[n++] = *o;
			}
		}
		owner[n] = '\0';
		for (size_t k = 0; k < ARRAY_LEN(modes); k++)
			if (!strncmp(e + 6, modes[k], strlen(modes[k])) && e[6 + strlen(modes[k])] == '"')
				return modes[k];
	}
	return NULL;
}

int api_ports(struct http_req *req, struct http_resp *resp)
{
	struct snapshot *snap;
	int status = 200;
	const struct snap_container *c = lookup(req, resp, &snap, &status);
	if (!c)
		return status;
	ssize_t n;
	bool truncated = false;
	pid_t *pids = container_pids(req, resp, c, &n, &truncated, &status);
	if (!pids) {
		snapshot_unref(snap);
		return status;
	}
	struct port_scan ps = {
		.socks = malloc(API_SOCKETS_MAX * sizeof(*ps.socks)),
		.owner = calloc(API_SOCKETS_MAX, sizeof(*ps.owner)),
	};
	size_t *order = malloc(API_SOCKETS_MAX * sizeof(*order));
	const char *mode = "none";
	if (!ps.socks || !ps.owner || !order) {
		status = http_error(resp, 500, "internal", "out of memory");
		goto out;
	}

	/* The namespace and its sockets, through the first process that stays
	 * long enough to be read; one that exits midway hands over to the next. */
	pid_t via = 0;
	struct proc_nsid ns, host;
	int err = 0;
	for (ssize_t i = 0; i < n && !via; i++) {
		int rc = proc_netns_id(pids[i], &ns);
		if (rc == 0) {
			bool sock_trunc = false;
			rc = read_listening(pids[i], &ps, &sock_trunc);
			if (rc == 0) {
				via = pids[i];
				truncated |= sock_trunc;
			}
		}
		if (rc < 0 && rc != -ENOENT)
			err = rc;
	}
	if (!via && err) {
		char msg[PATH_MAX + 128];
		snprintf(msg, sizeof(msg), "reading the network namespace of container %s: %s",
			 c->id, strerror(-err));
		status = http_error(resp, 500, "internal", msg);
		goto out;
	}
	bool is_host = false;
	if (via) {
		is_host = proc_host_netns(&host) == 0 && host.ino == ns.ino && host.dev == ns.dev;
		mode = is_host ? "host" : "private";
		/* Which of the container's processes holds each socket. */
		qsort(ps.socks, ps.n, sizeof(*ps.socks), cmp_inode);
		size_t budget = API_FDS_MAX;
		for (ssize_t i = 0; i < n && budget > 0; i++) {
			struct proc_fds f;
			if (proc_scan_fds(pids[i], budget, &f, found_socket, &ps) == 0)
				budget -= (size_t)f.listed < budget ? (size_t)f.listed : budget;
		}
	}

	/* The answer in protocol and port order. */
	for (size_t i = 0; i < ps.n; i++)
		order[i] = i;
	qsort_r(order, ps.n, sizeof(*order), cmp_port, &ps);

	struct buf *b = &resp->body;
	put_head(b, c);
	char ns_owner[256] = "";
	const char *tick_mode = tick_network_mode(snap, c, ns_owner, sizeof(ns_owner));
	buf_puts(b, ",\"network_mode\":");
	buf_put_json_str(b, tick_mode ? tick_mode : mode);
	buf_puts(b, ",\"network_owner\":");
	if (tick_mode && *ns_owner)
		buf_put_json_str(b, ns_owner);
	else
		buf_puts(b, "null");
	buf_puts(b, ",\"listening\":[");
	size_t shown = 0;
	for (size_t i = 0; i < ps.n; i++) {
		const struct proc_socket *s = &ps.socks[order[i]];
		pid_t owner = ps.owner[order[i]];
		/* In the host's namespace only the container's own sockets are its. */
		if (is_host && !owner)
			continue;
		char addr[64], cmd[API_CMDLINE_BYTES + 8];
		proc_format_addr(s, addr, sizeof(addr));
		buf_printf(b, "%s{\"protocol\":\"%s\",\"family\":\"%s\",\"address\":", shown ? "," : "",
			   s->proto == PROC_TCP ? "tcp" : "udp",
			   s->family == PROC_AF_INET6 ? "ipv6" : "ipv4");
		buf_put_json_str(b, addr);
		buf_printf(b, ",\"port\":%u,\"inode\":%llu,\"pid\":", s->port,
			   (unsigned long long)s->inode);
		if (owner) {
			struct proc_stat st;
			buf_printf(b, "%d,\"command\":", (int)owner);
			if (proc_read_cmdline(owner, cmd, API_CMDLINE_BYTES + 1) <= 0)
				snprintf(cmd, sizeof(cmd), "%s",
					 proc_read_stat(owner, &st) == 0 ? st.comm : "");
			buf_put_json_str(b, cmd);
		} else {
			/* Another member of a shared namespace holds it. */
			buf_puts(b, "null,\"command\":null");
		}
		buf_putc(b, '}');
		shown++;
	}
	buf_printf(b, "],\"truncated\":%s}}", truncated ? "true" : "false");
	resp->type = "application/json";
	status = 200;
out:
	free(order);
	free(ps.socks);
	free(ps.owner);
	free(pids);
	snapshot_unref(snap);
	return status;
}
