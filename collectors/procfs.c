/*
 * procfs.c - what /proc says about a container's processes: which processes
 * its cgroup holds, their stat lines, open files and sockets, the network
 * namespace they are in, and the parsers for /proc/<pid>/net/dev and
 * /proc/<pid>/net/{tcp,tcp6,udp,udp6}.
 *
 * The network (netns.c) and process (procs.c) collectors build on these on
 * the tick thread, and the HTTP handlers for /processes and /ports call them
 * at request time on connection threads, so nothing here keeps state: every
 * function works on its arguments alone. Every path goes through the host
 * root. Processes come and go while we read: a pid that vanished is -ENOENT
 * (or -ESRCH), never an error worth a log line; -EACCES means the agent lacks
 * the privilege (root or CAP_SYS_PTRACE) to look.
 */
#include "collectors/collector.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define PROC_CGROUP_MAX_DEPTH 8
#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

static inline bool is_digit(char c)
{
	return (unsigned char)(c - '0') <= 9;
}

/* Unsigned decimal at *p (advances it); false without digits or past 2^64. */
static bool take_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	int digits = 0;
	while (is_digit(*s)) {
		uint64_t d = (uint64_t)(*s++ - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
		digits++;
	}
	if (!digits)
		return false;
	*out = v;
	*p = s;
	return true;
}

static const char *skip_blanks(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* ---- pids of a cgroup -------------------------------------------------------- */

static void add_pid(uint64_t v, pid_t *pids, size_t cap, size_t *n, bool *truncated)
{
	if (v == 0 || v > (uint64_t)INT32_MAX)
		return;
	if (*n < cap)
		pids[(*n)++] = (pid_t)v;
	else
		*truncated = true;
}

/* Appends the pids listed in one cgroup.procs file. Returns 0, or -errno
 * when the file cannot be read. */
static int read_procs_file(const char *path, pid_t *pids, size_t cap, size_t *n, bool *truncated)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	char buf[8192];
	/* A cgroup removed between open and read fails the read with ENODEV:
	 * it is gone, as if the open had failed. */
	uint64_t cur = 0;
	bool in_num = false;
	int rc = 0;
	for (;;) {
		ssize_t got = read(fd, buf, sizeof(buf));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			rc = errno == ENODEV ? -ENOENT : -errno;
		if (got <= 0)
			break;
		for (ssize_t i = 0; i < got; i++) {
			if (is_digit(buf[i])) {
				if (cur <= (uint64_t)INT32_MAX)
					cur = cur * 10 + (uint64_t)(buf[i] - '0');
				in_num = true;
				continue;
			}
			if (in_num)
				add_pid(cur, pids, cap, n, truncated);
			cur = 0;
			in_num = false;
		}
	}
	if (in_num && rc == 0)
		add_pid(cur, pids, cap, n, truncated);
	close(fd);
	return rc;
}

static int walk_cgroup(char *path, size_t len, size_t size, pid_t *pids, size_t cap, size_t *n,
		       bool *truncated, int depth)
{
	if (len + sizeof("/cgroup.procs") > size)
		return -ENAMETOOLONG;
	memcpy(path + len, "/cgroup.procs", sizeof("/cgroup.procs"));
	int rc = read_procs_file(path, pids, cap, n, truncated);
	path[len] = '\0';
	if (rc < 0)
		return rc;
	if (depth >= PROC_CGROUP_MAX_DEPTH || *n >= cap)
		return 0;
	/* A directory's link count is 2 plus its subdirectories on cgroupfs
	 * (and most filesystems): skip listing a cgroup that has none, which
	 * is every container's but a pod's. */
	struct stat st;
	if (stat(path, &st) == 0 && st.st_nlink == 2)
		return 0;
	DIR *d = opendir(path);
	if (!d)
		return 0; /* removed after its cgroup.procs was read: what we have stands */
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		size_t nl = strlen(de->d_name);
		if (len + 1 + nl >= size)
			continue;
		path[len] = '/';
		memcpy(path + len + 1, de->d_name, nl + 1);
		/* A child that vanishes between readdir and read holds nobody. */
		walk_cgroup(path, len + 1 + nl, size, pids, cap, n, truncated, depth + 1);
		path[len] = '\0';
		if (*n >= cap) {
			*truncated = true;
			break;
		}
	}
	closedir(d);
	return 0;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

ssize_t proc_cgroup_pids(const struct cg_layout *l, const char *cgroup, pid_t *pids, size_t cap,
			 bool *truncated)
{
	const char *root = cg_layout_walk_root(l);
	char path[PATH_MAX];
	size_t n = 0;
	bool trunc = false;
	if (truncated)
		*truncated = false;
	if (!root || !cgroup)
		return -ENOENT;
	int len = snprintf(path, sizeof(path), "%s%s", root, strcmp(cgroup, "/") ? cgroup : "");
	if (len < 0 || (size_t)len >= sizeof(path))
		return -ENAMETOOLONG;
	int rc = walk_cgroup(path, (size_t)len, sizeof(path), pids, cap, &n, &trunc, 0);
	if (rc < 0)
		return rc;
	/* cgroup.procs is neither sorted nor free of repeats. */
	qsort(pids, n, sizeof(*pids), cmp_pid);
	size_t w = 0;
	for (size_t i = 0; i < n; i++)
		if (!w || pids[w - 1] != pids[i])
			pids[w++] = pids[i];
	if (truncated)
		*truncated = trunc;
	return (ssize_t)w;
}

/* ---- one process ------------------------------------------------------------- */

static int proc_path(char *out, size_t size, pid_t pid, const char *what)
{
	char rel[64];
	snprintf(rel, sizeof(rel), "/proc/%d%s%s", (int)pid, *what ? "/" : "", what);
	return hostroot_path(out, size, rel);
}

/* A pid whose /proc directory vanished reads as ENOENT or, mid-read, ESRCH. */
static int vanished(int err)
{
	return err == ESRCH ? -ENOENT : -err;
}

int proc_netns_id(pid_t pid, struct proc_nsid *out)
{
	char path[PATH_MAX];
	struct stat st;
	if (proc_path(path, sizeof(path), pid, "ns/net") < 0)
		return -ENAMETOOLONG;
	if (stat(path, &st) < 0)
		return vanished(errno);
	out->dev = (uint64_t)st.st_dev;
	out->ino = (uint64_t)st.st_ino;
	return 0;
}

int proc_host_netns(struct proc_nsid *out)
{
	/* init's namespace is the host's. Where init holds capabilities the
	 * agent lacks (a sandboxed agent), ptrace rules hide it; kthreadd
	 * (pid 2) is always in the initial namespace too. */
	int rc = proc_netns_id(1, out);
	if (rc < 0 && proc_netns_id(2, out) == 0)
		rc = 0;
	return rc;
}

int proc_parse_stat(const char *text, struct proc_stat *out)
{
	memset(out, 0, sizeof(*out));
	const char *p = text, *open, *close;
	uint64_t v;
	if (!take_u64(&p, &v) || v > INT32_MAX || *p != ' ' || p[1] != '(')
		return -EINVAL;
	out->pid = (pid_t)v;
	/* The command may hold anything, ')' included: the last ')' ends it. */
	open = p + 2;
	close = strrchr(open, ')');
	if (!close || close[1] != ' ' || !close[2])
		return -EINVAL;
	size_t clen = (size_t)(close - open);
	if (clen >= sizeof(out->comm))
		clen = sizeof(out->comm) - 1;
	memcpy(out->comm, open, clen);
	out->comm[clen] = '\0';
	p = close + 2;
	out->state = *p++;
	/* Fields from 4 (ppid) on, numbered as proc(5) numbers them. */
	for (int field = 4; field <= 24; field++) {
		if (*p != ' ')
			return -EINVAL;
		p++;
		bool neg = *p == '-';
		if (neg)
			p++;
		if (!take_u64(&p, &v))
			return -EINVAL;
		switch (field) {
		case 4: out->ppid = neg ? 0 : (pid_t)v; break;
		case 14: out->utime_ticks = v; break;
		case 15: out->stime_ticks = v; break;
		case 20: out->threads = neg ? 0 : (int64_t)v; break;
		case 22: out->start_ticks = v; break;
		case 24: out->rss_pages = neg ? 0 : (int64_t)v; break;
		}
	}
	return out->state ? 0 : -EINVAL;
}

/* Reads a small /proc file into buf; returns its length or -errno. */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vanished(errno);
	size_t len = 0;
	while (len + 1 < size) {
		ssize_t got = read(fd, buf + len, size - 1 - len);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			int err = errno;
			close(fd);
			return vanished(err);
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

int proc_read_stat(pid_t pid, struct proc_stat *out)
{
	char path[PATH_MAX], buf[1024];
	if (proc_path(path, sizeof(path), pid, "stat") < 0)
		return -ENAMETOOLONG;
	ssize_t n = read_small(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	if (n == 0)
		return -ENOENT; /* a task being reaped can read empty */
	return proc_parse_stat(buf, out);
}

int proc_read_uid(pid_t pid, uint32_t *uid)
{
	char path[PATH_MAX], buf[4096];
	if (proc_path(path, sizeof(path), pid, "status") < 0)
		return -ENAMETOOLONG;
	ssize_t n = read_small(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	/* "Uid:\treal\teffective\tsaved\tfs": ps shows the effective one. */
	const char *p = strstr(buf, "\nUid:");
	uint64_t v;
	if (!p)
		return n == 0 ? -ENOENT : -EINVAL;
	p = skip_blanks(p + 5);
	if (!take_u64(&p, &v))
		return -EINVAL;
	p = skip_blanks(p);
	if (!take_u64(&p, &v) || v > UINT32_MAX)
		return -EINVAL;
	*uid = (uint32_t)v;
	return 0;
}

ssize_t proc_read_cmdline(pid_t pid, char *out, size_t size)
{
	char path[PATH_MAX];
	if (size == 0)
		return -EINVAL;
	if (proc_path(path, sizeof(path), pid, "cmdline") < 0)
		return -ENAMETOOLONG;
	ssize_t n = read_small(path, out, size);
	if (n < 0)
		return n;
	/* Arguments are NUL-separated; the last NUL (if any) ends them. */
	while (n > 0 && out[n - 1] == '\0')
		n--;
	for (ssize_t i = 0; i < n; i++)
		if (out[i] == '\0' || out[i] == '\n')
			out[i] = ' ';
	out[n] = '\0';
	return n;
}

int proc_scan_fds(pid_t pid, size_t max_fds, struct proc_fds *out, proc_socket_fn fn, void *arg)
{
	char path[PATH_MAX];
	memset(out, 0, sizeof(*out));
	if (proc_path(path, sizeof(path), pid, "fd") < 0)
		return -ENAMETOOLONG;
	DIR *d = opendir(path);
	if (!d)
		return vanished(errno);
	int dfd = dirfd(d);
	/* Since Linux 6.2 procfs gives the number of open files as the fd
	 * directory's size: used past max_fds only, as it also counts numbers
	 * reserved but not yet installed (a blocked accept holds one), which
	 * the listing (and cAdvisor) does not show. */
	struct stat st;
	struct statfs sfs;
	int64_t sized = 0;
	if (fstat(dfd, &st) == 0 && st.st_size > 0 && fstatfs(dfd, &sfs) == 0 &&
	    sfs.f_type == PROC_SUPER_MAGIC)
		sized = (int64_t)st.st_size;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if ((size_t)out->listed >= max_fds) {
			out->truncated = true;
			break;
		}
		out->listed++;
		char link[64];
		/* The fd may be closed between readdir and readlink: not counted
		 * as a socket, which is what it no longer is. */
		ssize_t n = readlinkat(dfd, de->d_name, link, sizeof(link) - 1);
		if (n < 9)
			continue;
		link[n] = '\0';
		if (memcmp(link, "socket:[", 8) != 0)
			continue;
		out->sockets++;
		if (fn) {
			const char *p = link + 8;
			uint64_t ino;
			if (take_u64(&p, &ino) && *p == ']')
				fn(arg, pid, ino);
		}
	}
	/* readdir of a process that exited mid-listing fails with ENOENT. */
	int err = errno;
	closedir(d);
	if (!de && err && err != ENOENT)
		return -err;
	out->fds = out->truncated && sized > out->listed ? sized : out->listed;
	return 0;
}

/* ---- /proc/<pid>/net/dev -------------------------------------------------------- */

/*
 * Inter-|   Receive                                                |  Transmit
 *  face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
 *     lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
 */
int proc_parse_netdev(const char *text, struct proc_netdev *out, size_t cap, size_t *total)
{
	size_t n = 0, all = 0;
	int lines = 0;
	const char *p = text;
	if (!text)
		return -EINVAL;
	while (*p) {
		const char *eol = strchr(p, '\n');
		const char *end = eol ? eol : p + strlen(p);
		lines++;
		const char *colon = memchr(p, ':', (size_t)(end - p));
		if (lines > 2 && colon) {
			const char *name = skip_blanks(p);
			size_t nlen = (size_t)(colon - name);
			uint64_t f[16];
			const char *q = colon + 1;
			int k = 0;
			for (; k < 16; k++) {
				q = skip_blanks(q);
				if (!take_u64(&q, &f[k]))
					break;
			}
			if (k < 16 || nlen == 0 || nlen >= sizeof(out->name))
				return -EINVAL;
			all++;
			if (n < cap) {
				struct proc_netdev *d = &out[n++];
				memcpy(d->name, name, nlen);
				d->name[nlen] = '\0';
				d->rx_bytes = f[0];
				d->rx_packets = f[1];
				d->rx_errors = f[2];
				d->rx_dropped = f[3];
				d->tx_bytes = f[8];
				d->tx_packets = f[9];
				d->tx_errors = f[10];
				d->tx_dropped = f[11];
			}
		} else if (lines <= 2 && !memchr(p, '|', (size_t)(end - p))) {
			return -EINVAL; /* not the two header lines of net/dev */
		}
		p = eol ? eol + 1 : end;
	}
	if (lines < 2)
		return -EINVAL;
	if (total)
		*total = all;
	return (int)n;
}

bool proc_netdev_skipped(const char *name)
{
	/* As cAdvisor: the loopback and the host ends of container links. */
	return strcmp(name, "lo") == 0 || strncmp(name, "veth", 4) == 0 ||
	       strncmp(name, "docker", 6) == 0 || strncmp(name, "nerdctl", 7) == 0;
}

/* ---- /proc/<pid>/net/{tcp,udp}[6] ------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* n hex digits at *p into *v. */
static bool take_hex(const char **p, int n, uint32_t *v)
{
	uint32_t x = 0;
	for (int i = 0; i < n; i++) {
		int h = hexval((*p)[i]);
		if (h < 0)
			return false;
		x = x << 4 | (uint32_t)h;
	}
	*p += n;
	*v = x;
	return true;
}

/* "0100007F:1F90" (IPv4) or 32 hex digits and a port (IPv6). The kernel
 * prints each 32-bit word of the address as the host reads it from memory,
 * so copying the words back gives the address in network order. */
static bool take_endpoint(const char **p, int family, uint8_t addr[16], uint16_t *port)
{
	int words = family == PROC_AF_INET6 ? 4 : 1;
	memset(addr, 0, 16);
	for (int w = 0; w < words; w++) {
		uint32_t v;
		if (!take_hex(p, 8, &v))
			return false;
		memcpy(addr + 4 * w, &v, 4);
	}
	uint32_t pv;
	if (**p != ':')
		return false;
	(*p)++;
	if (!take_hex(p, 4, &pv))
		return false;
	*port = (uint16_t)pv;
	return true;
}

int proc_parse_sockets(const char *text, int proto, int family, bool listening_only,
		       struct proc_socket *out, size_t cap, size_t *total)
{
	size_t n = 0, all = 0;
	bool header = true;
	if (!text)
		return -EINVAL;
	for (const char *p = text; *p;) {
		const char *eol = strchr(p, '\n');
		const char *next = eol ? eol + 1 : p + strlen(p);
		if (header) {
			/* "  sl  local_address rem_address   st ..." */
			if (!strstr(p, "local_address") || (eol && strstr(p, "local_address") > eol))
				return -EINVAL;
			header = false;
			p = next;
			continue;
		}
		const char *q = skip_blanks(p);
		if (q == next || *q == '\n') {
			p = next;
			continue;
		}
		struct proc_socket s = { .proto = (uint8_t)proto, .family = (uint8_t)family };
		uint8_t raddr[16];
		uint16_t rport;
		uint32_t st;
		uint64_t v;
		/* sl: local rem st tx:rx tr:when retrnsmt uid timeout inode */
		if (!take_u64(&q, &v) || *q != ':')
			return -EINVAL;
		q = skip_blanks(q + 1);
		if (!take_endpoint(&q, family, s.addr, &s.port))
			return -EINVAL;
		q = skip_blanks(q);
		if (!take_endpoint(&q, family, raddr, &rport))
			return -EINVAL;
		q = skip_blanks(q);
		if (!take_hex(&q, 2, &st))
			return -EINVAL;
		s.state = (uint8_t)st;
		/* tx_queue:rx_queue tr:tm->when retrnsmt */
		for (int k = 0; k < 3; k++) {
			q = skip_blanks(q);
			while (*q && *q != ' ' && *q != '\n')
				q++;
		}
		q = skip_blanks(q);
		if (!take_u64(&q, &v) || v > UINT32_MAX)
			return -EINVAL;
		s.uid = (uint32_t)v;
		q = skip_blanks(q);
		if (!take_u64(&q, &v)) /* timeout */
			return -EINVAL;
		q = skip_blanks(q);
		if (!take_u64(&q, &s.inode))
			return -EINVAL;
		p = next;

		bool unconnected = rport == 0;
		for (int i = 0; i < 16 && unconnected; i++)
			unconnected = raddr[i] == 0;
		bool listening = proto == PROC_TCP ? s.state == PROC_TCP_LISTEN
						   : (s.state == PROC_TCP_CLOSE && unconnected);
		if (listening_only && !listening)
			continue;
		all++;
		if (n < cap)
			out[n++] = s;
	}
	if (header)
		return -EINVAL;
	if (total)
		*total = all;
	return (int)n;
}

int proc_read_sockets(pid_t pid, int proto, int family, bool listening_only,
		      struct proc_socket *out, size_t cap, size_t *total)
{
	static const char *const names[2][2] = { { "net/tcp", "net/tcp6" }, { "net/udp", "net/udp6" } };
	char path[PATH_MAX];
	if (proc_path(path, sizeof(path), pid,
		      names[proto == PROC_UDP][family == PROC_AF_INET6]) < 0)
		return -ENAMETOOLONG;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vanished(errno);
	/* Each line is 150 bytes (tcp6 ~170); the file grows with every socket
	 * of the namespace, so it is read whole into a growing buffer with a cap. */
	struct buf b;
	buf_init(&b, PROC_SOCKETS_FILE_CAP);
	int rc = 0;
	for (;;) {
		if (buf_reserve(&b, 65536) < 0) {
			rc = -EFBIG;
			break;
		}
		ssize_t got = read(fd, b.data + b.len, b.size - b.len - 1);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			rc = vanished(errno);
			break;
		}
		if (got == 0)
			break;
		b.len += (size_t)got;
		b.data[b.len] = '\0';
	}
	close(fd);
	if (rc == 0)
		rc = proc_parse_sockets(b.len ? b.data : "", proto, family, listening_only, out, cap,
					total);
	buf_fini(&b);
	return rc;
}

void proc_format_addr(const struct proc_socket *s, char *out, size_t size)
{
	const uint8_t *a = s->addr;
	if (s->family != PROC_AF_INET6) {
		snprintf(out, size, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
		return;
	}
	/* RFC 5952: lower case, the longest run (2+) of zero groups as "::". */
	uint16_t g[8];
	for (int i = 0; i < 8; i++)
		g[i] = (uint16_t)(a[2 * i] << 8 | a[2 * i + 1]);
	int best = -1, best_len = 0;
	for (int i = 0; i < 8;) {
		if (g[i]) {
			i++;
			continue;
		}
		int j = i;
		while (j < 8 && !g[j])
			j++;
		if (j - i > best_len && j - i >= 2) {
			best = i;
			best_len = j - i;
		}
		i = j;
	}
	/* IPv4-mapped (::ffff:a.b.c.d), as ss shows them. */
	if (!g[0] && !g[1] && !g[2] && !g[3] && !g[4] && g[5] == 0xffff) {
		snprintf(out, size, "::ffff:%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
		return;
	}
	size_t len = 0;
	out[0] = '\0';
	for (int i = 0; i < 8 && len < size; i++) {
		if (i == best) {
			len += (size_t)snprintf(out + len, size - len, "::");
			i += best_len - 1;
			continue;
		}
		bool sep = i > 0 && i != best + best_len;
		len += (size_t)snprintf(out + len, size - len, "%s%x", sep ? ":" : "", g[i]);
	}
}
