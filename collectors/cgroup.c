/*
 * cgroup.c - the cgroup collector: CPU, memory, block I/O, pids and pressure
 * of every container, from the cgroup v1 controllers, the v2 tree, or both
 * (hybrid hosts: counters from the v1 hierarchies, PSI from the v2 tree).
 *
 * The first time it sees a container it opens every file it will need and
 * keeps the descriptors in the container's priv slot; a file that is missing
 * then (controller not mounted, no memsw, no PSI) is never emitted. Each tick
 * it first preads all the descriptors into one buffer and only then parses,
 * each file in a single pass without allocating, and emits. A cgroup removed
 * under us fails the reads with ENODEV, so a vanishing container gives no
 * samples at all for the tick rather than half of them.
 *
 * On v1 and hybrid hosts where the BPF cgroup iterator loads
 * (cgroup_iter.c), the hot files it can stand for (CPU usage and times,
 * memory usage, peak, failures, OOM kills and stat, pids, block I/O, and
 * the PSI totals of the v2 tree) are neither held nor read: one walk per hierarchy per tick gives their values for every
 * container, turned back into the file's text, so the parsers below serve
 * both paths. A container the last walk missed (found since) reads those
 * files by path for that tick.
 *
 * Also here: layout detection (where the hierarchies are mounted) and the
 * small parsers, exported through collector.h for the tests.
 */
#include "collectors/collector.h"
#include "collectors/cgroup_iter.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <unistd.h>

/* One tick's reads share this buffer; one file gets at most a slice. */
#define CG_BUF_BYTES (256 * 1024)
#define CG_FILE_MAX_BYTES (64 * 1024)
#define CG_MAX_CPUS 8192         /* per-CPU series beyond this are dropped */
#define CG_MAX_DEVICES 4096      /* device names cached beyond this are not */
#define CG_UNLIMITED (INT64_C(1) << 62) /* v1 limits at or above: none */

/* ---- layout ------------------------------------------------------------- */

static const char *const ctrl_names[CG__CTRL_COUNT] = {
	[CG_CPU] = "cpu",
	[CG_CPUACCT] = "cpuacct",
	[CG_CPUSET] = "cpuset",
	[CG_MEMORY] = "memory",
	[CG_BLKIO] = "blkio",
	[CG_PIDS] = "pids",
	[CG_SYSTEMD] = "systemd",
};

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* True when a v1 mount directory name such as "cpu,cpuacct" lists ctrl
 * ("name=systemd" counts as systemd). */
static bool dir_has_ctrl(const char *name, const char *ctrl)
{
	size_t n = strlen(ctrl);
	const char *p = name;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len > 5 && memcmp(p, "name=", 5) == 0) {
			p += 5;
			len -= 5;
		}
		if (len == n && memcmp(p, ctrl, n) == 0)
			return true;
		if (!comma)
			return false;
		p = comma + 1;
	}
}

static bool join(char *out, size_t size, const char *a, const char *b)
{
	int n = snprintf(out, size, "%s/%s", a, b);
	return n >= 0 && (size_t)n < size;
}

int cg_layout_detect(struct cg_layout *l)
{
	char base[PATH_MAX], p[PATH_MAX];
	DIR *dir = NULL;
	bool any = false;

	memset(l, 0, sizeof(*l));
	l->mode = CG_NONE;
	if (hostroot_path(base, sizeof(base), "/sys/fs/cgroup") < 0)
		return -ENAMETOOLONG;

	if (join(p, sizeof(p), base, "cgroup.controllers") && exists(p)) {
		l->mode = CG_V2;
		memcpy(l->unified, base, strlen(base) + 1);
		return 0;
	}

	for (int c = 0; c < CG__CTRL_COUNT; c++) {
		/* The plain name first: it is the mount point or a symlink
		 * to a comounted one ("cpu" -> "cpu,cpuacct"). */
		if (join(p, sizeof(p), base, ctrl_names[c]) && is_dir(p)) {
			memcpy(l->v1[c], p, strlen(p) + 1);
			any = true;
			continue;
		}
		if (!dir)
			dir = opendir(base);
		else
			rewinddir(dir);
		if (!dir)
			break;
		struct dirent *de;
		while ((de = readdir(dir))) {
			if (de->d_name[0] == '.' || !dir_has_ctrl(de->d_name, ctrl_names[c]))
				continue;
			if (join(p, sizeof(p), base, de->d_name) && is_dir(p)) {
				memcpy(l->v1[c], p, strlen(p) + 1);
				any = true;
				break;
			}
		}
	}
	if (dir)
		closedir(dir);
	if (!any)
		return -ENOENT;

	l->mode = CG_V1;
	if (join(p, sizeof(p), base, "unified/cgroup.controllers") && exists(p)) {
		l->mode = CG_HYBRID;
		join(l->unified, sizeof(l->unified), base, "unified");
	}
	return 0;
}

const char *cg_layout_walk_root(const struct cg_layout *l)
{
	static const enum cg_ctrl order[] = { CG_MEMORY, CG_CPUACCT, CG_CPU, CG_PIDS };

	if (!l)
		return NULL;
	if (l->mode == CG_V2)
		return l->unified[0] ? l->unified : NULL;
	if (l->mode != CG_V1 && l->mode != CG_HYBRID)
		return NULL;
	for (size_t i = 0; i < ARRAY_LEN(order); i++)
		if (l->v1[order[i]][0])
			return l->v1[order[i]];
	return NULL;
}

const char *cg_mode_name(enum cg_mode m)
{
	switch (m) {
	case CG_V1:
		return "v1";
	case CG_V2:
		return "v2";
	case CG_HYBRID:
		return "hybrid";
	default:
		return "none";
	}
}

/* ---- parsers -------------------------------------------------------------- */

static inline bool is_digit(char c)
{
	return (unsigned char)(c - '0') <= 9;
}

static inline bool is_eol(char c)
{
	return c == '\n' || c == '\0';
}

/* Parses an unsigned decimal at p into *out (at most INT64_MAX) and sets *end
 * past it. No digits, or a value too large: false. */
static bool parse_uint(const char *p, const char **end, int64_t *out)
{
	uint64_t v = 0;
	int digits = 0;

	while (is_digit(*p)) {
		if (++digits > 19)
			return false;
		v = v * 10 + (uint64_t)(*p++ - '0');
	}
	if (!digits || v > (uint64_t)INT64_MAX)
		return false;
	*out = (int64_t)v;
	*end = p;
	return true;
}

static bool parse_int(const char *p, const char **end, int64_t *out)
{
	if (*p != '-')
		return parse_uint(p, end, out);
	if (!parse_uint(p + 1, end, out))
		return false;
	*out = -*out;
	return true;
}

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	return p;
}

/* A file holding one integer ("123\n", "-1\n"). */
static bool parse_single(const char *t, int64_t *v)
{
	const char *e;
	return parse_int(t, &e, v) && *skip_ws(e) == '\0';
}

/* A limit: "max" or a value at or above 2^62 mean none and give 0. */
static bool parse_limit(const char *t, int64_t *v)
{
	if (strncmp(t, "max", 3) == 0 && *skip_ws(t + 3) == '\0') {
		*v = 0;
		return true;
	}
	if (!parse_single(t, v) || *v < 0)
		return false;
	if (*v >= CG_UNLIMITED)
		*v = 0;
	return true;
}

static const char *next_line(const char *p)
{
	while (!is_eol(*p))
		p++;
	return *p ? p + 1 : p;
}

struct kv_key {
	const char *key;
	size_t len;
};
#define KV(k) { k, sizeof(k) - 1 }

/*
 * One pass over "key value" lines. For each wanted key found, stores its
 * value in out[i] and sets bit i of the result; stops as soon as all are
 * found. Returns the mask, or -1 when no line at all looked like
 * "key <number>" (empty or garbage text).
 */
static int kv_scan(const char *t, const struct kv_key *keys, int n, int64_t *out)
{
	unsigned found = 0, all = (1u << n) - 1;
	bool well_formed = false;
	const char *p = t;

	while (*p) {
		const char *k = p;
		while (*p != ' ' && !is_eol(*p))
			p++;
		if (*p == ' ' && is_digit(p[1])) {
			size_t len = (size_t)(p - k);
			well_formed = true;
			for (int i = 0; i < n; i++) {
				if (keys[i].len != len || memcmp(keys[i].key, k, len) != 0)
					continue;
				const char *e;
				if (!(found & (1u << i)) && parse_uint(p + 1, &e, &out[i]) &&
				    (is_eol(*e) || *e == ' ')) {
					found |= 1u << i;
					p = e;
				}
				break;
			}
			if (found == all)
				return (int)found;
		}
		p = next_line(p);
	}
	return found || well_formed ? (int)found : -1;
}

int64_t cg_kv_get(const char *text, const char *key)
{
	struct kv_key k = { key, strlen(key) };
	int64_t v;
	if (!text || !k.len)
		return -1;
	return kv_scan(text, &k, 1, &v) > 0 ? v : -1;
}

/* Both lines of a PSI file in one pass: bit 0 of the result for some=,
 * bit 1 for full=; -1 when neither line parses. */
static int psi_scan(const char *t, int64_t *some, int64_t *full)
{
	int found = 0;

	for (const char *p = t; *p; p = next_line(p)) {
		int64_t *dst;
		int bit;
		if (strncmp(p, "some ", 5) == 0) {
			dst = some;
			bit = 1;
		} else if (strncmp(p, "full ", 5) == 0) {
			dst = full;
			bit = 2;
		} else {
			continue;
		}
		/* Token by token to "total=". */
		for (p += 5; !is_eol(*p);) {
			if (strncmp(p, "total=", 6) == 0) {
				const char *e = p + 6;
				if (parse_uint(p + 6, &e, dst) && (is_eol(*e) || *e == ' '))
					found |= bit;
				p = e;
				break;
			}
			while (*p != ' ' && !is_eol(*p))
				p++;
			while (*p == ' ')
				p++;
		}
	}
	return found ? found : -1;
}

int64_t cg_psi_total_us(const char *text, bool full)
{
	int64_t some_us = -1, full_us = -1;
	if (!text)
		return -1;
	int m = psi_scan(text, &some_us, &full_us);
	if (m < 0)
		return -1;
	if (full)
		return (m & 2) ? full_us : -1;
	return (m & 1) ? some_us : -1;
}

int cg_cpuset_count(const char *text)
{
	const char *p;
	int64_t count = 0;

	if (!text)
		return -1;
	p = skip_ws(text);
	if (!*p)
		return 0; /* an empty cpuset is a valid list */
	for (;;) {
		int64_t a, b;
		if (!parse_uint(p, &p, &a))
			return -1;
		b = a;
		if (*p == '-' && (!parse_uint(p + 1, &p, &b) || b < a))
			return -1;
		count += b - a + 1;
		if (count > (1 << 24))
			return -1;
		if (*p != ',')
			break;
		p++;
	}
	return *skip_ws(p) ? -1 : (int)count;
}

/* ---- the collector's files ---------------------------------------------- */

enum cg_file {
	/* v1, each from its controller's hierarchy */
	F1_CPUACCT_PERCPU,       /* before F1_CPUACCT_USAGE: see want_file */
	F1_CPUACCT_USAGE,
	F1_CPUACCT_STAT,
	F1_CPU_STAT,
	F1_CPU_QUOTA,
	F1_CPU_PERIOD,
	F1_CPU_SHARES,
	F1_CPUSET_CPUS,
	F1_MEM_USAGE,
	F1_MEM_MAX_USAGE,
	F1_MEM_STAT,
	F1_MEM_FAILCNT,
	F1_MEM_OOM_CONTROL,
	F1_MEM_LIMIT,
	F1_MEM_SOFT_LIMIT,
	F1_MEMSW_USAGE,
	F1_MEMSW_LIMIT,
	F1_BLKIO_BYTES,
	F1_BLKIO_IOS,
	F1_PIDS_CURRENT,
	F1_PIDS_MAX,
	/* v2 */
	F2_CPU_STAT,
	F2_CPU_MAX,
	F2_CPU_WEIGHT,
	F2_CPUSET_CPUS,
	F2_MEM_CURRENT,
	F2_MEM_PEAK,
	F2_MEM_STAT,
	F2_MEM_EVENTS,
	F2_MEM_MAX,
	F2_MEM_LOW,
	F2_SWAP_CURRENT,
	F2_SWAP_MAX,
	F2_IO_STAT,
	F2_PIDS_CURRENT,
	F2_PIDS_MAX,
	/* PSI, from the v2 tree on v2 and hybrid hosts */
	F_PSI_CPU,
	F_PSI_MEM,
	F_PSI_IO,
	F__COUNT
};

#define F1_FIRST F1_CPUACCT_PERCPU
#define F1_END (F1_PIDS_MAX + 1)
#define F2_FIRST F2_CPU_STAT
#define F2_END (F2_PIDS_MAX + 1)
#define UNIFIED CG__CTRL_COUNT   /* source index of the v2 tree */
_Static_assert(UNIFIED == CGI_ID_UNIFIED, "the iterator indexes ids as the files do");

static const struct {
	unsigned char src;       /* enum cg_ctrl, or UNIFIED */
	const char *name;
} file_specs[F__COUNT] = {
	[F1_CPUACCT_PERCPU] = { CG_CPUACCT, "cpuacct.usage_percpu" },
	[F1_CPUACCT_USAGE] = { CG_CPUACCT, "cpuacct.usage" },
	[F1_CPUACCT_STAT] = { CG_CPUACCT, "cpuacct.stat" },
	[F1_CPU_STAT] = { CG_CPU, "cpu.stat" },
	[F1_CPU_QUOTA] = { CG_CPU, "cpu.cfs_quota_us" },
	[F1_CPU_PERIOD] = { CG_CPU, "cpu.cfs_period_us" },
	[F1_CPU_SHARES] = { CG_CPU, "cpu.shares" },
	[F1_CPUSET_CPUS] = { CG_CPUSET, "cpuset.cpus" },
	[F1_MEM_USAGE] = { CG_MEMORY, "memory.usage_in_bytes" },
	[F1_MEM_MAX_USAGE] = { CG_MEMORY, "memory.max_usage_in_bytes" },
	[F1_MEM_STAT] = { CG_MEMORY, "memory.stat" },
	[F1_MEM_FAILCNT] = { CG_MEMORY, "memory.failcnt" },
	[F1_MEM_OOM_CONTROL] = { CG_MEMORY, "memory.oom_control" },
	[F1_MEM_LIMIT] = { CG_MEMORY, "memory.limit_in_bytes" },
	[F1_MEM_SOFT_LIMIT] = { CG_MEMORY, "memory.soft_limit_in_bytes" },
	[F1_MEMSW_USAGE] = { CG_MEMORY, "memory.memsw.usage_in_bytes" },
	[F1_MEMSW_LIMIT] = { CG_MEMORY, "memory.memsw.limit_in_bytes" },
	[F1_BLKIO_BYTES] = { CG_BLKIO, "blkio.throttle.io_service_bytes_recursive" },
	[F1_BLKIO_IOS] = { CG_BLKIO, "blkio.throttle.io_serviced_recursive" },
	[F1_PIDS_CURRENT] = { CG_PIDS, "pids.current" },
	[F1_PIDS_MAX] = { CG_PIDS, "pids.max" },
	[F2_CPU_STAT] = { UNIFIED, "cpu.stat" },
	[F2_CPU_MAX] = { UNIFIED, "cpu.max" },
	[F2_CPU_WEIGHT] = { UNIFIED, "cpu.weight" },
	[F2_CPUSET_CPUS] = { UNIFIED, "cpuset.cpus.effective" },
	[F2_MEM_CURRENT] = { UNIFIED, "memory.current" },
	[F2_MEM_PEAK] = { UNIFIED, "memory.peak" },
	[F2_MEM_STAT] = { UNIFIED, "memory.stat" },
	[F2_MEM_EVENTS] = { UNIFIED, "memory.events" },
	[F2_MEM_MAX] = { UNIFIED, "memory.max" },
	[F2_MEM_LOW] = { UNIFIED, "memory.low" },
	[F2_SWAP_CURRENT] = { UNIFIED, "memory.swap.current" },
	[F2_SWAP_MAX] = { UNIFIED, "memory.swap.max" },
	[F2_IO_STAT] = { UNIFIED, "io.stat" },
	[F2_PIDS_CURRENT] = { UNIFIED, "pids.current" },
	[F2_PIDS_MAX] = { UNIFIED, "pids.max" },
	[F_PSI_CPU] = { UNIFIED, "cpu.pressure" },
	[F_PSI_MEM] = { UNIFIED, "memory.pressure" },
	[F_PSI_IO] = { UNIFIED, "io.pressure" },
};

/* ---- state ---------------------------------------------------------------- */

struct dev_ent {
	bool used;
	unsigned major, minor;
	char *extra;             /* device="/dev/sda" */
};

struct cg_state {
	struct cg_layout layout;
	bool percpu;
	double clk_tck;
	struct dev_ent *devs;    /* open addressing, power-of-two size */
	size_t ndevs, devs_cap;
	char dev_scratch[128];    /* device label past the cache cap */
	char (*cpu_extra)[16];   /* cpu="cpu00", ... */
	size_t ncpu_extra;
	double *percpu_s;        /* one tick's per-CPU values (percpu only) */
	size_t fds_held;         /* descriptors kept open across ticks */
	size_t fd_budget;        /* most we keep open: the rest reopen each tick */
	struct cgi *iter;        /* the BPF cgroup iterator, NULL: files only */
	signed char iter_file[F__COUNT]; /* each file's enum cgi_file (-1: none) */
	const void *iter_snap;   /* the snapshot (tick) the last walk was for */
	int64_t iter_ms;
	struct log_limit iter_ll;
	uint64_t iter_walks;     /* walks read (monitor_cgroup_iterator_walks_total) */
	uint64_t iter_file_reads; /* served files read by path instead */
	char buf[CG_BUF_BYTES];
};

enum cg_files_state { FILES_CLOSED, FILES_OPEN, FILES_GONE };

/* A container's open files (its priv slot). */
struct cg_files {
	enum cg_files_state st;
	int nopen;               /* descriptors of fd[] that are open */
	struct log_limit ll;
	int fd[F__COUNT];        /* -1: missing at open */
	char *setting[F__COUNT]; /* settings files' last text (see is_setting), and
				  * slow files' while not held (see is_slow) */
	bool quota_files;        /* v1 cpu.stat was wanted when the files were opened */
	uint64_t served;         /* bit per file: from the iterator, not opened */
	bool served_known;       /* served was decided (at the first open) */
	bool settings_unset;     /* the runtime is still writing them (read_settings) */
	uint64_t cgid[CGI_NIDS]; /* directory inodes (v1, then v2): the walks' ids */
	uint64_t tracked[CGI_NIDS]; /* the ids slot is tracked under */
	uint32_t slot;           /* the iterator's record, CGI_NO_SLOT: none */
	unsigned settings_age;   /* ticks since the settings were read */
	unsigned ticks_seen;     /* ticks since the container was found (saturates) */
};

/*
 * Settings files (limits, quota, shares, cpuset) change only when someone
 * updates the container. They are read by path every SETTINGS_EVERY ticks
 * instead of being held open and read every tick: that is a third fewer
 * descriptors per container (the open-file limit decides how many
 * containers can be held open) and fewer reads per tick. A `docker update`
 * shows within SETTINGS_EVERY ticks. For a container's first
 * SETTINGS_EARLY_TICKS ticks they are read every tick: discovery finds a
 * cgroup within milliseconds of its creation, before the runtime has
 * written the limits into it.
 */
#define SETTINGS_EVERY 10
#define SETTINGS_EARLY_TICKS 5
#define SETTING_MAX_BYTES 4096

/*
 * Slow files: counters and peaks that move only under memory pressure
 * (peak usage, the failure count, OOM kills). A container whose files are
 * held reads them every tick like the rest; one past the descriptor budget,
 * which must open every file it reads, reads them with the settings every
 * SETTINGS_EVERY ticks instead, so the reopened files each tick are only
 * those of the hot path (see op_collect).
 */
static bool is_slow(int i)
{
	return i == F1_MEM_MAX_USAGE || i == F1_MEM_FAILCNT || i == F1_MEM_OOM_CONTROL ||
	       i == F2_MEM_PEAK;
}

static bool is_setting(int i)
{
	switch (i) {
	case F1_CPU_QUOTA: case F1_CPU_PERIOD: case F1_CPU_SHARES: case F1_CPUSET_CPUS:
	case F1_MEM_LIMIT: case F1_MEM_SOFT_LIMIT: case F1_MEMSW_LIMIT: case F1_PIDS_MAX:
	case F2_CPU_MAX: case F2_CPU_WEIGHT: case F2_CPUSET_CPUS: case F2_MEM_MAX:
	case F2_MEM_LOW: case F2_SWAP_MAX: case F2_PIDS_MAX:
		return true;
	default:
		return false;
	}
}

#define FBIT(i) (UINT64_C(1) << (i))

/*
 * Settings the walks do not give (cpuset.cpus) are held open, with the
 * iterator on, by a container held whole (slow: see op_collect), and read
 * through the descriptor with the other settings, every SETTINGS_EVERY
 * ticks: the path walk, open and close cost about ten times the read, and
 * the walks leave them the only file such a container holds. Without the
 * iterator they are read by path (a third fewer descriptors, see above).
 */
static bool hold_setting(const struct cg_state *s, int i, bool slow)
{
	return is_setting(i) && slow && s->iter;
}

/* Whether file i is one the iterator can stand for, on this host. */
static bool iter_can_serve(const struct cg_state *s, int i)
{
	switch (i) {
	case F1_CPUACCT_PERCPU: case F1_CPUACCT_USAGE: case F1_CPUACCT_STAT: case F1_CPU_STAT:
	case F1_MEM_USAGE: case F1_MEM_MAX_USAGE: case F1_MEM_STAT: case F1_MEM_FAILCNT:
	case F1_MEM_OOM_CONTROL: case F1_MEMSW_USAGE: case F1_PIDS_CURRENT:
	case F1_BLKIO_BYTES: case F1_BLKIO_IOS:
	case F_PSI_CPU: case F_PSI_MEM: case F_PSI_IO:
	/* settings too: from the walk they cost nothing, so every tick */
	case F1_CPU_QUOTA: case F1_CPU_PERIOD: case F1_CPU_SHARES: case F1_MEM_LIMIT:
	case F1_MEM_SOFT_LIMIT: case F1_MEMSW_LIMIT: case F1_PIDS_MAX:
		return s->iter && s->layout.mode != CG_V2 &&
		       cgi_serves(s->iter, file_specs[i].src, file_specs[i].name);
	default:
		return false;
	}
}

static bool served(const struct cg_files *f, int i)
{
	return f->served & FBIT(i);
}

/* ---- device names ------------------------------------------------------- */

static void put_escaped(char *out, size_t size, const char *s)
{
	size_t o = 0;
	for (; *s && o + 3 < size; s++) {
		if (*s == '\\' || *s == '"') {
			out[o++] = '\\';
			out[o++] = *s;
		} else if (*s == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *s;
		}
	}
	out[o] = '\0';
}

/* The label for a device: DEVNAME from <host-root>/sys/dev/block/M:m/uevent,
 * else the numbers. Writes into out. */
static void dev_label(char *out, size_t size, unsigned major, unsigned minor)
{
	char rel[64], path[PATH_MAX], text[1024], name[256];
	ssize_t n = -1;

	snprintf(rel, sizeof(rel), "/sys/dev/block/%u:%u/uevent", major, minor);
	if (hostroot_path(path, sizeof(path), rel) == 0)
		n = read_file(path, text, sizeof(text));
	for (const char *p = text; n > 0 && *p; p = next_line(p)) {
		if (strncmp(p, "DEVNAME=", 8) != 0)
			continue;
		const char *v = p + 8, *e = v;
		while (!is_eol(*e))
			e++;
		size_t len = (size_t)(e - v);
		if (!len || len >= sizeof(name))
			break;
		memcpy(name, v, len);
		name[len] = '\0';
		char esc[2 * sizeof(name)];
		put_escaped(esc, sizeof(esc), name);
		if (snprintf(out, size, "device=\"/dev/%s\"", esc) < (int)size)
			return;
		break;
	}
	snprintf(out, size, "device=\"%u:%u\"", major, minor);
}

static size_t dev_slot(const struct dev_ent *tab, size_t cap, unsigned major, unsigned minor)
{
	size_t i = ((size_t)major * 0x9E3779B1u ^ minor) & (cap - 1);
	while (tab[i].used && (tab[i].major != major || tab[i].minor != minor))
		i = (i + 1) & (cap - 1);
	return i;
}

static int dev_grow(struct cg_state *s)
{
	size_t cap = s->devs_cap ? 2 * s->devs_cap : 16;
	struct dev_ent *tab = calloc(cap, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	for (size_t i = 0; i < s->devs_cap; i++) {
		if (s->devs[i].used)
			tab[dev_slot(tab, cap, s->devs[i].major, s->devs[i].minor)] = s->devs[i];
	}
	free(s->devs);
	s->devs = tab;
	s->devs_cap = cap;
	return 0;
}

/* The device="..." label of major:minor, resolved once and cached. The
 * result lives until the next call (sink_emit copies it). */
static const char *dev_extra(struct cg_state *s, unsigned major, unsigned minor)
{
	if (s->devs_cap) {
		size_t i = dev_slot(s->devs, s->devs_cap, major, minor);
		if (s->devs[i].used)
			return s->devs[i].extra;
	}
	char label[sizeof(s->dev_scratch)];
	dev_label(label, sizeof(label), major, minor);
	if (s->ndevs >= CG_MAX_DEVICES ||
	    ((s->ndevs + 1) * 4 > s->devs_cap * 3 && dev_grow(s) < 0))
		goto uncached;
	char *extra = strdup(label);
	if (!extra)
		goto uncached;
	size_t i = dev_slot(s->devs, s->devs_cap, major, minor);
	s->devs[i] = (struct dev_ent){ true, major, minor, extra };
	s->ndevs++;
	return extra;
uncached:
	memcpy(s->dev_scratch, label, sizeof(label));
	return s->dev_scratch;
}

/* cpu="cpuNN" for CPUs 0..n-1, built once. Returns false on ENOMEM. */
static bool cpu_extras(struct cg_state *s, size_t n)
{
	if (n <= s->ncpu_extra)
		return true;
	char (*t)[16] = realloc(s->cpu_extra, n * sizeof(*t));
	if (!t)
		return false;
	for (size_t i = s->ncpu_extra; i < n; i++)
		snprintf(t[i], sizeof(t[i]), "cpu=\"cpu%02zu\"", i);
	s->cpu_extra = t;
	s->ncpu_extra = n;
	return true;
}

/* ---- opening ------------------------------------------------------------ */

static void close_files(struct cg_files *f)
{
	for (int i = 0; i < F__COUNT; i++) {
		if (f->fd[i] >= 0)
			close(f->fd[i]);
		f->fd[i] = -1;
	}
	f->nopen = 0;
}

/* Closes f's files and gives their descriptors back to the budget. */
static void release_files(struct cg_state *s, struct cg_files *f)
{
	if (f->st == FILES_OPEN)
		s->fds_held -= (size_t)f->nopen;
	close_files(f);
}

/* A cgroup path must stay inside its hierarchy. */
static bool path_ok(const char *cg)
{
	for (const char *p = cg; (p = strstr(p, "..")); p += 2) {
		if ((p == cg || p[-1] == '/') && (p[2] == '/' || p[2] == '\0'))
			return false;
	}
	return true;
}

/* Out of descriptors or memory: worth retrying the whole open next tick.
 * Anything else (ENOENT, EACCES, ...) makes the file count as missing. */
static bool transient(int e)
{
	return e == EMFILE || e == ENFILE || e == ENOMEM;
}

/* v1 cpu.stat holds only the CFS counters, emitted under a quota alone (see
 * emit_v1): without one it is not read at all. The quota comes from the
 * settings read by path (is_setting); unknown counts as a quota. */
static bool v1_has_quota(const struct cg_files *f)
{
	const char *t = f->setting[F1_CPU_QUOTA];
	int64_t v;
	return !t || !parse_single(t, &v) || v != -1;
}

static bool want_file(const struct cg_state *s, const struct cg_files *f, int i)
{
	if (i == F1_CPU_STAT)
		return v1_has_quota(f);
	if (i == F1_CPUACCT_PERCPU)
		return s->percpu;
	if (i == F1_CPUACCT_USAGE) /* the per-CPU file replaces it */
		return f->fd[F1_CPUACCT_PERCPU] < 0 && !served(f, F1_CPUACCT_PERCPU);
	return true;
}

/* The files open_files opens for f, at most (missing ones open fewer). */
static size_t count_wanted(const struct cg_state *s, const struct cg_files *f, bool slow)
{
	size_t n = 0;
	int first = s->layout.mode == CG_V2 ? F2_FIRST : F1_FIRST;
	int end = s->layout.mode == CG_V2 ? F2_END : F1_END;
	for (int i = first; i < end; i++)
		n += want_file(s, f, i) && (!is_setting(i) || hold_setting(s, i, slow)) &&
		     (slow || !is_slow(i)) && !served(f, i);
	if (s->layout.mode != CG_V1)
		n += F__COUNT - F_PSI_CPU;
	return n;
}

/*
 * Opens the files of cgroup into f (the slow ones only when slow). Returns 1
 * when the cgroup exists in at least one hierarchy, 0 when it exists in
 * none, -errno on a path that leaves the hierarchy or a transient failure
 * (f is left closed then).
 */
static int open_files(struct cg_state *s, const char *cgroup, struct cg_files *f, bool slow)
{
	int dfd[UNIFIED + 1];
	bool tried[UNIFIED + 1] = { false };
	bool any_dir = false;
	int err = 0;
	int ranges[2][2] = { { F1_FIRST, F1_END }, { F_PSI_CPU, F__COUNT } };

	while (*cgroup == '/')
		cgroup++;
	if (!path_ok(cgroup))
		return -EINVAL;
	if (s->layout.mode == CG_V2) {
		ranges[0][0] = F2_FIRST;
		ranges[0][1] = F2_END;
	}
	for (int i = 0; i < F__COUNT; i++)
		f->fd[i] = -1;
	f->nopen = 0;
	for (int i = 0; i <= UNIFIED; i++)
		dfd[i] = -1;

	for (int r = 0; r < 2 && !err; r++) {
		for (int i = ranges[r][0]; i < ranges[r][1] && !err; i++) {
			int src = file_specs[i].src;
			/* Settings and slow files are read by path, not held,
			 * unless the walks stand for them: decided here once,
			 * for every file the walks could give, wanted now or
			 * not (v1 cpu.stat is wanted only under a quota). */
			bool by_path = (is_setting(i) && !hold_setting(s, i, slow)) ||
				       (!slow && is_slow(i));
			bool ask = !f->served_known && iter_can_serve(s, i);
			bool want = want_file(s, f, i);
			if (!ask && (!want || by_path))
				continue;
			if (!tried[src]) {
				const char *root = src == UNIFIED ? s->layout.unified : s->layout.v1[src];
				char p[PATH_MAX];
				tried[src] = true;
				if (root[0] && join(p, sizeof(p), root, cgroup)) {
					dfd[src] = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
					if (dfd[src] >= 0)
						any_dir = true;
					else if (transient(errno))
						err = -errno;
				}
				struct stat st;
				if (dfd[src] >= 0 && s->iter && fstat(dfd[src], &st) == 0)
					f->cgid[src] = (uint64_t)st.st_ino; /* = kernfs id */
			}
			if (dfd[src] < 0)
				continue;
			if (ask && faccessat(dfd[src], file_specs[i].name, F_OK, 0) == 0)
				f->served |= FBIT(i);
			if (!want || served(f, i) || by_path)
				continue;        /* the walk gives it: present, not opened */
			f->fd[i] = openat(dfd[src], file_specs[i].name, O_RDONLY | O_CLOEXEC);
			if (f->fd[i] >= 0)
				f->nopen++;
			else if (transient(errno))
				err = -errno;
		}
	}
	for (int i = 0; i <= UNIFIED; i++)
		if (dfd[i] >= 0)
			close(dfd[i]);
	if (err) {
		close_files(f);
		if (!f->served_known)
			f->served = 0;
		return err;
	}
	if (any_dir)
		f->served_known = true;
	return any_dir;
}

/* ---- emitting ------------------------------------------------------------- */

/* One tick's file contents: txt[i] is NUL-terminated, or NULL. */
struct cg_read {
	const char *txt[F__COUNT];
	int errors;              /* reads failed, files unparsable */
	const char *bad;         /* the last unparsable file, for the log */
};

static void bad_file(struct cg_read *r, int i)
{
	r->errors++;
	r->bad = file_specs[i].name;
}

/* A one-number file; false when absent, counting an error when garbled. */
static bool get_single(struct cg_read *r, int i, int64_t *v)
{
	if (!r->txt[i])
		return false;
	if (parse_single(r->txt[i], v))
		return true;
	bad_file(r, i);
	return false;
}

static bool get_limit(struct cg_read *r, int i, int64_t *v)
{
	if (!r->txt[i])
		return false;
	if (parse_limit(r->txt[i], v))
		return true;
	bad_file(r, i);
	return false;
}

/* kv_scan over file i; 0 when absent, counting an error when garbled. */
static int get_kv(struct cg_read *r, int i, const struct kv_key *keys, int n, int64_t *out)
{
	if (!r->txt[i])
		return 0;
	int m = kv_scan(r->txt[i], keys, n, out);
	if (m < 0) {
		bad_file(r, i);
		return 0;
	}
	return m;
}

static void emit_single(struct cg_read *r, struct coll_sink *sink, int i, enum metric_id m)
{
	int64_t v;
	if (get_single(r, i, &v))
		sink_emit(sink, m, NULL, (double)v);
}

static void emit_limit(struct cg_read *r, struct coll_sink *sink, int i, enum metric_id m)
{
	int64_t v;
	if (get_limit(r, i, &v))
		sink_emit(sink, m, NULL, (double)v);
}

static void emit_cpuset(struct cg_read *r, struct coll_sink *sink, int i)
{
	if (!r->txt[i])
		return;
	int n = cg_cpuset_count(r->txt[i]);
	if (n < 0)
		bad_file(r, i);
	else
		sink_emit(sink, M_SPEC_CPUSET_CPUS, NULL, n);
}

static void emit_psi(struct cg_read *r, struct coll_sink *sink, int i,
		     enum metric_id some_m, enum metric_id full_m)
{
	int64_t some_us, full_us;
	if (!r->txt[i])
		return;
	int m = psi_scan(r->txt[i], &some_us, &full_us);
	if (m < 0) {
		bad_file(r, i);
		return;
	}
	if (m & 1)
		sink_emit(sink, some_m, NULL, (double)some_us / 1e6);
	if (m & 2)
		sink_emit(sink, full_m, NULL, (double)full_us / 1e6);
}

static void emit_pressure(struct cg_read *r, struct coll_sink *sink)
{
	emit_psi(r, sink, F_PSI_CPU, M_PSI_CPU_WAITING, M_PSI_CPU_STALLED);
	emit_psi(r, sink, F_PSI_MEM, M_PSI_MEM_WAITING, M_PSI_MEM_STALLED);
	emit_psi(r, sink, F_PSI_IO, M_PSI_IO_WAITING, M_PSI_IO_STALLED);
}

/* Parses "M:m " at p; sets *end after the blank. */
static bool parse_dev(const char *p, const char **end, unsigned *major, unsigned *minor)
{
	int64_t a, b;
	if (!parse_uint(p, &p, &a) || *p != ':' || !parse_uint(p + 1, &p, &b) || *p != ' ' ||
	    a > UINT32_MAX || b > UINT32_MAX)
		return false;
	*major = (unsigned)a;
	*minor = (unsigned)b;
	*end = p + 1;
	return true;
}

/* v1 blkio: "8:0 Read 123" lines (also Write, Sync, Async, Discard, Total,
 * and a last "Total N"). Emits the Read and Write lines. */
static void emit_blkio_v1(struct cg_state *s, struct coll_sink *sink, const char *t,
			  enum metric_id read_m, enum metric_id write_m)
{
	const char *extra = NULL;
	unsigned last_major = 0, last_minor = 0;

	for (const char *p = t; *p; p = next_line(p)) {
		unsigned major, minor;
		enum metric_id m;
		int64_t v;
		if (!parse_dev(p, &p, &major, &minor))
			continue;
		if (strncmp(p, "Read ", 5) == 0) {
			m = read_m;
			p += 5;
		} else if (strncmp(p, "Write ", 6) == 0) {
			m = write_m;
			p += 6;
		} else {
			continue;
		}
		if (!parse_uint(p, &p, &v) || !is_eol(*p))
			continue;
		if (!extra || major != last_major || minor != last_minor) {
			extra = dev_extra(s, major, minor);
			last_major = major;
			last_minor = minor;
		}
		sink_emit(sink, m, extra, (double)v);
	}
}

/* v2 io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" lines. */
static void emit_io_stat(struct cg_state *s, struct coll_sink *sink, const char *t)
{
	for (const char *p = t; *p; p = next_line(p)) {
		unsigned major, minor;
		const char *extra = NULL;
		if (!parse_dev(p, &p, &major, &minor))
			continue;
		while (!is_eol(*p)) {
			const char *k = p;
			enum metric_id m = M__COUNT;
			int64_t v;
			while (*p != '=' && *p != ' ' && !is_eol(*p))
				p++;
			size_t len = (size_t)(p - k);
			if (*p == '=') {
				if (len == 6 && memcmp(k + 1, "bytes", 5) == 0)
					m = k[0] == 'r' ? M_FS_READS_BYTES : k[0] == 'w' ? M_FS_WRITES_BYTES : M__COUNT;
				else if (len == 4 && memcmp(k + 1, "ios", 3) == 0)
					m = k[0] == 'r' ? M_FS_READS : k[0] == 'w' ? M_FS_WRITES : M__COUNT;
				if (m != M__COUNT && parse_uint(p + 1, &p, &v) && (*p == ' ' || is_eol(*p))) {
					if (!extra)
						extra = dev_extra(s, major, minor);
					sink_emit(sink, m, extra, (double)v);
				}
			}
			while (*p != ' ' && !is_eol(*p))
				p++;
			while (*p == ' ')
				p++;
		}
	}
}

/* cpuacct.usage_percpu: "ns ns ns \n", one per possible CPU. All or none. */
static void emit_percpu(struct cg_state *s, struct cg_read *r, struct coll_sink *sink)
{
	const char *p = r->txt[F1_CPUACCT_PERCPU];
	size_t n = 0;

	for (p = skip_ws(p); *p; p = skip_ws(p)) {
		int64_t ns;
		if (n == CG_MAX_CPUS)
			break;
		if (!parse_uint(p, &p, &ns) || (*p != ' ' && !is_eol(*p))) {
			bad_file(r, F1_CPUACCT_PERCPU);
			return;
		}
		s->percpu_s[n++] = (double)ns / 1e9;
	}
	if (!n) {
		bad_file(r, F1_CPUACCT_PERCPU);
		return;
	}
	if (!cpu_extras(s, n)) {
		r->errors++;
		return;
	}
	for (size_t i = 0; i < n; i++)
		sink_emit(sink, M_CPU_USAGE, s->cpu_extra[i], s->percpu_s[i]);
}

static const char cpu_total[] = "cpu=\"total\"";

/*
 * Usage, peak, and the four memory.stat keys in keys (rss, cache, mapped
 * file, inactive file: v1 and v2 name them differently), with the working
 * set as docker stats computes it. Returns whether usage was read (*usage).
 */
static bool emit_memory(struct cg_read *r, struct coll_sink *sink, int usage_file, int peak_file,
			int stat_file, const struct kv_key keys[4], int64_t *usage)
{
	bool have_usage = get_single(r, usage_file, usage);
	if (have_usage)
		sink_emit(sink, M_MEM_USAGE, NULL, (double)*usage);
	emit_single(r, sink, peak_file, M_MEM_MAX_USAGE);
	int64_t mem[4];
	int m = get_kv(r, stat_file, keys, 4, mem);
	if (m & 1)
		sink_emit(sink, M_MEM_RSS, NULL, (double)mem[0]);
	if (m & 2)
		sink_emit(sink, M_MEM_CACHE, NULL, (double)mem[1]);
	if (m & 4)
		sink_emit(sink, M_MEM_MAPPED_FILE, NULL, (double)mem[2]);
	if ((m & 8) && have_usage)
		sink_emit(sink, M_MEM_WORKING_SET, NULL,
			  *usage > mem[3] ? (double)(*usage - mem[3]) : 0.0);
	return have_usage;
}

static void emit_v1(struct cg_state *s, struct cg_read *r, struct coll_sink *sink)
{
	int64_t v, usage = 0;
	bool have_usage;

	/* CPU */
	if (r->txt[F1_CPUACCT_PERCPU])
		emit_percpu(s, r, sink);
	else if (get_single(r, F1_CPUACCT_USAGE, &v))
		sink_emit(sink, M_CPU_USAGE, cpu_total, (double)v / 1e9);

	static const struct kv_key acct_keys[] = { KV("user"), KV("system") };
	int64_t acct[2];
	int m = get_kv(r, F1_CPUACCT_STAT, acct_keys, 2, acct);
	if (m & 1)
		sink_emit(sink, M_CPU_USER, NULL, (double)acct[0] / s->clk_tck);
	if (m & 2)
		sink_emit(sink, M_CPU_SYSTEM, NULL, (double)acct[1] / s->clk_tck);

	/* CFS counters and spec only under a quota, as cAdvisor: without one
	 * they are always zero, and zero series are what users complain about. */
	if (get_single(r, F1_CPU_QUOTA, &v) && v != -1) {
		int64_t period;
		sink_emit(sink, M_SPEC_CPU_QUOTA, NULL, (double)v);
		if (get_single(r, F1_CPU_PERIOD, &period))
			sink_emit(sink, M_SPEC_CPU_PERIOD, NULL, (double)period);
		static const struct kv_key cpu_keys[] = { KV("nr_periods"), KV("nr_throttled"),
			KV("throttled_time") };
		int64_t cpu[3];
		m = get_kv(r, F1_CPU_STAT, cpu_keys, 3, cpu);
		if (m & 1)
			sink_emit(sink, M_CFS_PERIODS, NULL, (double)cpu[0]);
		if (m & 2)
			sink_emit(sink, M_CFS_THROTTLED_PERIODS, NULL, (double)cpu[1]);
		if (m & 4)
			sink_emit(sink, M_CFS_THROTTLED_SECONDS, NULL, (double)cpu[2] / 1e9);
	}
	emit_single(r, sink, F1_CPU_SHARES, M_SPEC_CPU_SHARES);
	emit_cpuset(r, sink, F1_CPUSET_CPUS);

	/* memory */
	static const struct kv_key mem_keys[] = { KV("total_rss"), KV("total_cache"),
		KV("total_mapped_file"), KV("total_inactive_file") };
	have_usage = emit_memory(r, sink, F1_MEM_USAGE, F1_MEM_MAX_USAGE, F1_MEM_STAT, mem_keys,
				 &usage);

	if (have_usage && get_single(r, F1_MEMSW_USAGE, &v))
		sink_emit(sink, M_MEM_SWAP, NULL, v > usage ? (double)(v - usage) : 0.0);
	emit_single(r, sink, F1_MEM_FAILCNT, M_MEM_FAILCNT);

	static const struct kv_key oom_keys[] = { KV("oom_kill") };
	if (get_kv(r, F1_MEM_OOM_CONTROL, oom_keys, 1, &v) & 1)
		sink_emit(sink, M_MEM_EVENTS_OOM_KILL, NULL, (double)v);

	emit_limit(r, sink, F1_MEM_LIMIT, M_SPEC_MEM_LIMIT);
	emit_limit(r, sink, F1_MEM_SOFT_LIMIT, M_SPEC_MEM_RESERVATION);
	emit_limit(r, sink, F1_MEMSW_LIMIT, M_SPEC_MEM_SWAP_LIMIT);

	/* block I/O */
	if (r->txt[F1_BLKIO_BYTES])
		emit_blkio_v1(s, sink, r->txt[F1_BLKIO_BYTES], M_FS_READS_BYTES, M_FS_WRITES_BYTES);
	if (r->txt[F1_BLKIO_IOS])
		emit_blkio_v1(s, sink, r->txt[F1_BLKIO_IOS], M_FS_READS, M_FS_WRITES);

	/* pids */
	emit_single(r, sink, F1_PIDS_CURRENT, M_PIDS);
	emit_limit(r, sink, F1_PIDS_MAX, M_SPEC_PIDS_LIMIT);

	emit_pressure(r, sink);
}

static void emit_v2(struct cg_state *s, struct cg_read *r, struct coll_sink *sink)
{
	int64_t v, usage = 0;
	const char *t;

	/* CPU */
	static const struct kv_key cpu_keys[] = { KV("usage_usec"), KV("user_usec"),
		KV("system_usec"), KV("nr_periods"), KV("nr_throttled"), KV("throttled_usec") };
	int64_t cpu[6];
	int m = get_kv(r, F2_CPU_STAT, cpu_keys, 6, cpu);
	if (m & 1)
		sink_emit(sink, M_CPU_USAGE, cpu_total, (double)cpu[0] / 1e6);
	if (m & 2)
		sink_emit(sink, M_CPU_USER, NULL, (double)cpu[1] / 1e6);
	if (m & 4)
		sink_emit(sink, M_CPU_SYSTEM, NULL, (double)cpu[2] / 1e6);

	/* cpu.max: "max 100000" or "50000 100000"; CFS counters only under a
	 * quota (see emit_v1). */
	if ((t = r->txt[F2_CPU_MAX])) {
		int64_t quota, period;
		const char *p;
		bool no_quota = strncmp(t, "max", 3) == 0 && (t[3] == ' ' || is_eol(t[3]));
		if (!no_quota && parse_uint(t, &p, &quota) && *p == ' ' &&
		    parse_single(p + 1, &period)) {
			sink_emit(sink, M_SPEC_CPU_QUOTA, NULL, (double)quota);
			sink_emit(sink, M_SPEC_CPU_PERIOD, NULL, (double)period);
			if (m & 8)
				sink_emit(sink, M_CFS_PERIODS, NULL, (double)cpu[3]);
			if (m & 16)
				sink_emit(sink, M_CFS_THROTTLED_PERIODS, NULL, (double)cpu[4]);
			if (m & 32)
				sink_emit(sink, M_CFS_THROTTLED_SECONDS, NULL, (double)cpu[5] / 1e6);
		} else if (!no_quota) {
			bad_file(r, F2_CPU_MAX);
		}
	}
	/* runc maps shares [2, 262144] onto weight [1, 10000]; invert it. */
	if (get_single(r, F2_CPU_WEIGHT, &v)) {
		if (v >= 1 && v <= 10000)
			sink_emit(sink, M_SPEC_CPU_SHARES, NULL, (double)(2 + ((v - 1) * 262142) / 9999));
		else
			bad_file(r, F2_CPU_WEIGHT);
	}
	emit_cpuset(r, sink, F2_CPUSET_CPUS);

	/* memory */
	static const struct kv_key mem_keys[] = { KV("anon"), KV("file"),
		KV("file_mapped"), KV("inactive_file") };
	emit_memory(r, sink, F2_MEM_CURRENT, F2_MEM_PEAK, F2_MEM_STAT, mem_keys, &usage);
	emit_single(r, sink, F2_SWAP_CURRENT, M_MEM_SWAP);

	static const struct kv_key ev_keys[] = { KV("oom"), KV("oom_kill"), KV("max"), KV("high") };
	int64_t ev[4];
	m = get_kv(r, F2_MEM_EVENTS, ev_keys, 4, ev);
	if (m & 1)
		sink_emit(sink, M_MEM_EVENTS_OOM, NULL, (double)ev[0]);
	if (m & 2)
		sink_emit(sink, M_MEM_EVENTS_OOM_KILL, NULL, (double)ev[1]);
	if (m & 4)
		sink_emit(sink, M_MEM_EVENTS_MAX, NULL, (double)ev[2]);
	if (m & 8)
		sink_emit(sink, M_MEM_EVENTS_HIGH, NULL, (double)ev[3]);

	emit_limit(r, sink, F2_MEM_MAX, M_SPEC_MEM_LIMIT);
	emit_limit(r, sink, F2_MEM_LOW, M_SPEC_MEM_RESERVATION);
	emit_limit(r, sink, F2_SWAP_MAX, M_SPEC_MEM_SWAP_LIMIT);

	/* block I/O */
	if (r->txt[F2_IO_STAT])
		emit_io_stat(s, sink, r->txt[F2_IO_STAT]);

	/* pids */
	emit_single(r, sink, F2_PIDS_CURRENT, M_PIDS);
	emit_limit(r, sink, F2_PIDS_MAX, M_SPEC_PIDS_LIMIT);

	emit_pressure(r, sink);
}

/* ---- the collector ------------------------------------------------------ */

static void op_destroy(void *state);

static int op_init(void **state, const struct coll_ctx *ctx)
{
	struct cg_state *s = calloc(1, sizeof(*s));
	int err;

	*state = NULL;
	if (!s)
		return -ENOMEM;
	if (ctx && ctx->layout) {
		s->layout = *ctx->layout;
	} else if ((err = cg_layout_detect(&s->layout)) < 0) {
		free(s);
		return err;
	}
	if (s->layout.mode == CG_NONE) {
		free(s);
		return -ENOENT;
	}
	/* cpuacct.usage_percpu is v1 only; v2 always gives cpu="total". */
	s->percpu = ctx && ctx->percpu && s->layout.mode != CG_V2;
	if (s->percpu && !(s->percpu_s = malloc(CG_MAX_CPUS * sizeof(double)))) {
		op_destroy(s);
		return -ENOMEM;
	}
	long hz = sysconf(_SC_CLK_TCK);
	s->clk_tck = hz > 0 ? (double)hz : 100.0;
	if (ctx && ctx->cgroup_iter) {
		char why[512];
		s->iter = cgi_open(&s->layout, s->percpu, why, sizeof(why));
		for (int i = 0; i < F__COUNT; i++)
			s->iter_file[i] = (signed char)cgi_file_id(file_specs[i].name);
		if (s->iter)
			log_info("cgroup: hot counters from the BPF cgroup iterator (%s)",
				 cgi_describe(s->iter, why, sizeof(why)));
		else
			log_info("cgroup: reading cgroup files; the BPF cgroup iterator is not used: %s",
				 why);
	}
	/* Keep files open while three quarters of the open-file limit allows;
	 * past that, containers are read by open-pread-close each tick. The
	 * rest is left to the network, process and eBPF collectors, HTTP and
	 * SQLite. */
	struct rlimit rl;
	s->fd_budget = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ?
		(size_t)rl.rlim_cur * 3 / 4 : (size_t)1 << 30;
	*state = s;
	return 0;
}

static void op_destroy(void *state)
{
	struct cg_state *s = state;
	if (!s)
		return;
	for (size_t i = 0; i < s->devs_cap; i++)
		free(s->devs[i].extra);
	free(s->devs);
	free(s->cpu_extra);
	free(s->percpu_s);
	cgi_close(s->iter);
	free(s);
}

static void op_forget(void *state, struct coll_container *c, void **priv)
{
	struct cg_files *f = *priv;
	if (!f)
		return;
	release_files(state, f);
	if (f->slot != CGI_NO_SLOT)
		cgi_untrack(((struct cg_state *)state)->iter, f->tracked, f->slot);
	for (int i = 0; i < F__COUNT; i++)
		free(f->setting[i]);
	free(f);
	*priv = NULL;
}

/* runc's own process names while it makes a container: the re-executed
 * binary ("exe", "runc") and its stages "runc:[0:PARENT]" ... "[2:INIT]". */
static bool is_runc(const char *comm)
{
	return !strcmp(comm, "runc") || !strcmp(comm, "exe") || !strncmp(comm, "runc:[", 6);
}

/*
 * True while runc is still making the container: its cgroup holds only
 * runc's processes. runc creates the cgroup and moves its init there
 * before it writes the limits: pids.max and the memory limit read "max"
 * for 5-75 ms after the cgroup appears (more on a loaded host), and
 * discovery finds the cgroup within that window. Limits read then are not
 * the container's, and a limit of 0 (none) is a wrong value, not a missing
 * one. Called for a container's first ticks only.
 */
static bool runtime_setting_up(const struct cg_state *s, const char *cgroup)
{
	pid_t pids[8];
	ssize_t n = proc_cgroup_pids(&s->layout, cgroup, pids, 8, NULL);
	bool runc = false;
	for (ssize_t i = 0; i < n; i++) {
		struct proc_stat st;
		if (proc_read_stat(pids[i], &st) < 0)
			continue;        /* gone, or not ours to read: says nothing */
		if (!is_runc(st.comm))
			return false;
		runc = true;
	}
	return runc;
}

/* The path of file i of cgroup (by path, not through a held directory);
 * -ENOENT when its hierarchy is not mounted. */
static int file_path(const struct cg_state *s, const char *cgroup, int i, char *p, size_t size)
{
	int src = file_specs[i].src;
	const char *root = src == UNIFIED ? s->layout.unified : s->layout.v1[src];
	while (*cgroup == '/')
		cgroup++;
	if (!root[0])
		return -ENOENT;
	if (snprintf(p, size, "%s/%s/%s", root, cgroup, file_specs[i].name) >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}

/* pread of a held file from its start, again when a signal cut it. */
static ssize_t pread_start(int fd, char *b, size_t size)
{
	ssize_t n;
	do
		n = pread(fd, b, size, 0);
	while (n < 0 && errno == EINTR);
	return n;
}

/* Reads the settings files of cgroup by path (or through a held
 * descriptor, see hold_setting) into f->setting[] (NULL for one that is
 * missing), and the slow files too when slow (else their last text is
 * dropped: held descriptors read them). While the runtime is still
 * writing the settings they are all left NULL, to be read next tick. */
static void read_settings(struct cg_state *s, const char *cgroup, struct cg_files *f, bool slow)
{
	int first = s->layout.mode == CG_V2 ? F2_FIRST : F1_FIRST;
	int end = s->layout.mode == CG_V2 ? F2_END : F1_END;
	bool unset = f->ticks_seen < SETTINGS_EARLY_TICKS && runtime_setting_up(s, cgroup);
	f->settings_unset = unset;
	while (*cgroup == '/')
		cgroup++;
	for (int i = first; i < end; i++) {
		if ((is_slow(i) && !slow) || served(f, i)) {
			/* served ones come from the walks each tick (read_all) */
			free(f->setting[i]);
			f->setting[i] = NULL;
			if (served(f, i))
				continue;
		}
		if (!is_setting(i) && !(slow && is_slow(i)))
			continue;
		if (unset && is_setting(i)) {
			free(f->setting[i]);
			f->setting[i] = NULL;
			continue;
		}
		char p[PATH_MAX], text[SETTING_MAX_BYTES];
		ssize_t n = -1;
		if (f->fd[i] >= 0) {
			if ((n = pread_start(f->fd[i], text, sizeof(text) - 1)) >= 0)
				text[n] = '\0';
		} else if (file_path(s, cgroup, i, p, sizeof(p)) == 0) {
			n = read_file(p, text, sizeof(text));
		}
		free(f->setting[i]);
		f->setting[i] = n >= 0 ? strdup(text) : NULL;
	}
	f->settings_age = 0;
}

/* Gives the container a record in the walks, or moves it to the ids its
 * directories have now (made anew at the same path: a restart). */
static void iter_track(struct cg_state *s, const struct coll_container *c, struct cg_files *f)
{
	if (!s->iter || (f->slot != CGI_NO_SLOT && !memcmp(f->tracked, f->cgid, sizeof(f->cgid))))
		return;
	if (f->slot != CGI_NO_SLOT)
		cgi_untrack(s->iter, f->tracked, f->slot);
	f->slot = CGI_NO_SLOT;
	memcpy(f->tracked, f->cgid, sizeof(f->cgid));
	int err = cgi_track(s->iter, f->cgid, &f->slot);
	if (err < 0)
		log_limited(&f->ll, LOG_WARN, "cgroup %s: not in the iterator's walks (%s): its "
			    "files are read instead", c->cgroup, strerror(-err));
}

/*
 * The text of served file i of container c into b (size bytes with the
 * NUL): from the last walk's record, or by path when the walk did not see
 * the cgroup (found since). Returns the length or -errno.
 */
static ssize_t served_text(struct cg_state *s, const struct coll_container *c,
			   struct cg_files *f, int i, char *b, size_t size)
{
	int src = file_specs[i].src;
	int n = cgi_text(s->iter, f->slot, s->iter_file[i], b, size);
	if (n >= 0)
		return n;
	s->iter_file_reads++;
	char p[PATH_MAX];
	int err = file_path(s, c->cgroup, i, p, sizeof(p));
	if (err < 0)
		return err;
	ssize_t len = read_file(p, b, size);
	/* The walk knew no such id: the directory may have been made anew
	 * at the same path (a restarted container) with a new inode. */
	struct stat st;
	char *slash = strrchr(p, '/');
	*slash = '\0';
	if (len >= 0 && stat(p, &st) == 0) {
		f->cgid[src] = (uint64_t)st.st_ino;
		iter_track(s, c, f);
	}
	return len;
}

/*
 * Reads every open (or served) file of f into s->buf. Returns false when
 * the cgroup vanished (a read failed with ENODEV or ENOENT).
 */
static bool read_all(struct cg_state *s, struct coll_container *c, struct cg_files *f,
		     struct cg_read *r)
{
	size_t off = 0;

	for (int i = 0; i < F__COUNT; i++) {
		r->txt[i] = f->setting[i]; /* settings, slow files not held, or NULL */
		if (!served(f, i) && (f->fd[i] < 0 || is_setting(i)))
			continue;        /* held settings: read with the rest (read_settings) */
		size_t room = sizeof(s->buf) - off - 1;
		if (room > CG_FILE_MAX_BYTES)
			room = CG_FILE_MAX_BYTES;
		char *b = s->buf + off;
		ssize_t n;
		if (served(f, i)) {
			if (is_setting(i) && f->settings_unset)
				continue;        /* not the container's yet: none */
			n = served_text(s, c, f, i, b, room + 1);
			if (n == -ENOENT || n == -ENODEV)
				return false;
			if (n < 0) {
				r->errors++;
				log_limited(&f->ll, LOG_WARN, "cgroup %s: reading %s: %s", c->cgroup,
					    file_specs[i].name, strerror((int)-n));
				continue;
			}
			r->txt[i] = b;
			off += (size_t)n + 1;
			continue;
		}
		n = pread_start(f->fd[i], b, room);
		if (n < 0) {
			if (errno == ENODEV || errno == ENOENT)
				return false;
			r->errors++;
			log_limited(&f->ll, LOG_WARN, "cgroup %s: reading %s: %s", c->cgroup,
				    file_specs[i].name, strerror(errno));
			continue;
		}
		if ((size_t)n == room) {
			/* Larger than its slice: keep whole lines only. */
			while (n > 0 && b[n - 1] != '\n')
				n--;
		}
		b[n] = '\0';
		r->txt[i] = b;
		off += (size_t)n + 1;
	}
	return true;
}

/* The tick's walks, at its first container (a fresh container collected
 * between ticks gets a new snapshot, so a walk of its own). */
static void iter_refresh(struct cg_state *s, struct coll_sink *sink)
{
	s->iter_snap = sink->snap;
	s->iter_ms = sink->snap->time_ms;
	int err = cgi_refresh(s->iter);
	if (err > 0)
		s->iter_walks += (uint64_t)err;
	if (err < 0)
		log_limited(&s->iter_ll, LOG_WARN, "cgroup iterator: %s (reading the files instead)",
			    strerror(-err));
	else if (s->iter_ll.failing)
		log_recovered(&s->iter_ll, "cgroup iterator");
}

static int op_collect(void *state, struct coll_container *c, void **priv, struct coll_sink *sink)
{
	struct cg_state *s = state;
	struct cg_files *f = *priv;
	struct cg_read r;
	int err;

	if (!c->cgroup)
		return 0;
	if (s->iter && (sink->snap != s->iter_snap || sink->snap->time_ms != s->iter_ms))
		iter_refresh(s, sink);
	if (!f) {
		if (!(f = calloc(1, sizeof(*f))))
			return 1;
		for (int i = 0; i < F__COUNT; i++)
			f->fd[i] = -1;
		f->st = FILES_CLOSED;
		f->slot = CGI_NO_SLOT;
		*priv = f;
	}
	/* Settings first: whether v1 cpu.stat is wanted depends on the quota. */
	if (f->settings_age == 0 || f->settings_age >= SETTINGS_EVERY ||
	    f->ticks_seen < SETTINGS_EARLY_TICKS)
		read_settings(s, c->cgroup, f, f->st != FILES_OPEN);
	if (f->st == FILES_OPEN && s->layout.mode != CG_V2 && !served(f, F1_CPU_STAT) &&
	    f->quota_files != v1_has_quota(f)) {
		/* A quota set or lifted (docker update): open the set it needs. */
		release_files(s, f);
		f->st = FILES_CLOSED;
		read_settings(s, c->cgroup, f, true);
	}
	if (f->st != FILES_OPEN) {
		/* Gone cgroups are retried: the same path may come back (a
		 * restarted container), and a failed open costs one syscall
		 * per hierarchy. A container is held whole, slow files too,
		 * while the budget has room; past it only the hot files are
		 * opened, read and closed each tick. */
		bool hold = s->fds_held + count_wanted(s, f, true) <= s->fd_budget;
		err = open_files(s, c->cgroup, f, hold);
		if (err < 0) {
			log_limited(&f->ll, LOG_WARN, "cgroup %s: opening files: %s", c->cgroup,
				    strerror(-err));
			return 1;
		}
		if (err == 0) {
			bool first = f->st != FILES_GONE;
			f->st = FILES_GONE;
			return first; /* count a vanished cgroup once */
		}
		f->quota_files = v1_has_quota(f);
		iter_track(s, c, f);
		if (hold) {
			f->st = FILES_OPEN;
			s->fds_held += (size_t)f->nopen;
		} else {
			f->st = FILES_CLOSED; /* read this tick and closed */
		}
	}
	f->settings_age++;
	if (f->ticks_seen < SETTINGS_EARLY_TICKS)
		f->ticks_seen++;

	r.errors = 0;
	r.bad = NULL;
	if (!read_all(s, c, f, &r)) {
		log_debug("cgroup %s: vanished", c->cgroup);
		release_files(s, f);
		f->st = FILES_GONE;
		f->settings_age = 0; /* back at the same path: limits anew */
		return r.errors + 1;
	}
	if (s->layout.mode == CG_V2)
		emit_v2(s, &r, sink);
	else
		emit_v1(s, &r, sink);

	if (f->st != FILES_OPEN)
		close_files(f);
	if (r.bad)
		log_limited(&f->ll, LOG_WARN, "cgroup %s: cannot parse %s", c->cgroup, r.bad);
	else if (!r.errors && f->ll.failing) {
		char what[PATH_MAX + 16];
		snprintf(what, sizeof(what), "cgroup %s", c->cgroup);
		log_recovered(&f->ll, what);
	}
	return r.errors;
}

static void op_agent_metrics(void *state, struct coll_sink *sink)
{
	struct cg_state *s = state;
	sink_emit(sink, M_AGENT_CGROUP_ITER_WALKS, NULL, (double)s->iter_walks);
	sink_emit(sink, M_AGENT_CGROUP_ITER_FILE_READS, NULL, (double)s->iter_file_reads);
}

const struct coll_ops coll_cgroup_ops = {
	.name = "cgroup",
	.init = op_init,
	.collect = op_collect,
	.forget = op_forget,
	.destroy = op_destroy,
	.agent_metrics = op_agent_metrics,
};
