/*
 * cgroup_iter.c - loader of the cgroup iterator (bpf/cgroup_iter.bpf.c):
 * one walk per v1 hierarchy per tick fills the hot counters of every
 * tracked container into a memory-mapped array, which the cgroup collector
 * (cgroup.c) reads in place of preading a dozen files per container.
 *
 * Why: perf shows 89 % of the file path's CPU in the kernel's pread and
 * seq_file work, so no user-space cleverness gets below the cost of the
 * reads themselves. A walk costs about half a microsecond per cgroup.
 *
 * Each container the collector tracks gets a slot; its directory in every
 * walked hierarchy is entered into the program's cgi_index table, and the
 * walks write its record (bpf/cgroup_iter.h says why not the iterator's
 * own output). A record part stamped by an older walk (the container was
 * found since) makes the collector read that file by path.
 *
 * The records carry kernel counters in kernel units; cgi_text turns
 * one into the text the file would hold, as the kernel prints it, so the
 * collector's parsers and emitters are the same on both paths. What the
 * program cannot see stays on the file path (cpuset.cpus; blkio of a
 * container with child cgroups, or on a host where check_blkio could not
 * compare); PSI totals are the kernel's last aggregation (see psi_text).
 *
 * Needs: Linux 6.1+ (cgroup iterator), BTF, root (CAP_BPF + CAP_PERFMON),
 * v1 hierarchies on cgroupfs, x86-64 for the per-CPU values (see the
 * program's comment). cgi_open says in one sentence why it cannot start.
 */
#include "collectors/cgroup_iter.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "bpf/cgroup_iter.skel.h"
#include "collectors/ebpf.h"

#define STAT_TEXT_BYTES 8192       /* the root's memory.stat (v1: ~40 lines) */

/* The hierarchies walked, by part; comounted ones share one walk. */
static const int part_ctrl[CGI__PARTS] = {
	[CGI_MEMORY] = CG_MEMORY, [CGI_CPUACCT] = CG_CPUACCT, [CGI_CPU] = CG_CPU,
	[CGI_PIDS] = CG_PIDS, [CGI_UNIFIED] = CGI_ID_UNIFIED, [CGI_BLKIO] = CG_BLKIO,
};
static const char *const part_name[CGI__PARTS] = { "memory", "cpuacct", "cpu", "pids", "v2",
						   "blkio" };

struct cgi {
	struct cgroup_iter_bpf *skel;
	struct bpf_link *links[CGI__PARTS];
	int nlinks;
	int part_of[CGI_NIDS];   /* link per controller (and the v2 tree), -1: not walked */
	uint32_t hier_id[CGI__PARTS]; /* /proc/cgroups' hierarchy of each part */
	bool walked[CGI__PARTS];     /* its hierarchy has a link */
	bool fresh[CGI__PARTS];      /* the last refresh walked it */
	struct cgi_record *records;  /* cgi_records, mapped up to records_slots */
	uint64_t *percpu;            /* cgi_percpu, mapped; NULL: not wanted */
	size_t records_bytes, percpu_bytes;
	uint32_t records_slots;      /* slots the mapping of records covers */
	uint32_t ncpu;
	uint32_t gen;                /* the last walk's stamp */
	struct cgi_index index;      /* the tracked directories (cgroup_index.c) */
	uint32_t *free_slots;        /* a stack of unused slots */
	uint32_t nfree;
	int memstat_fd;          /* root memory.stat: read before walking (flush) */
	uint64_t page_bytes;
	uint64_t ns_per_tick;    /* nanoseconds per USER_HZ tick */
	bool memstat_ok;         /* the start-up check of memory.stat passed */
	bool cpuacct_ok;         /* the program found the per-CPU offsets */
	bool blkio_ok;           /* the start-up check of the blkio values passed */
	uint64_t pids_max_value; /* PIDS_MAX ("max"), the root's limit; 0: unknown */
	char stat_text[STAT_TEXT_BYTES];
};

/* ---- start-up ------------------------------------------------------------ */

/* The possible CPUs as a count n when they are exactly 0..n-1, else -1
 * (for_each_possible_cpu is what the files print). */
static int possible_cpus(void)
{
	char path[PATH_MAX], text[256];
	int64_t a, b;
	char *e;

	if (hostroot_path(path, sizeof(path), "/sys/devices/system/cpu/possible") < 0 ||
	    read_file(path, text, sizeof(text)) <= 0)
		return -1;
	a = strtoll(text, &e, 10);
	if (a != 0)
		return -1;
	if (*e == '\n' || *e == '\0')
		return 1;
	if (*e != '-')
		return -1;
	b = strtoll(e + 1, &e, 10);
	if ((*e != '\n' && *e != '\0') || b < 0 || b >= CGI_MAX_CPUS)
		return -1;
	return (int)b + 1;
}

/* The v1 hierarchy id of controller name (/proc/cgroups); 0 when none. */
static uint32_t hierarchy_of(const char *name)
{
	char path[PATH_MAX], text[4096];
	size_t n = strlen(name);

	if (hostroot_path(path, sizeof(path), "/proc/cgroups") < 0 ||
	    read_file(path, text, sizeof(text)) <= 0)
		return 0;
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, name, n) && p[n] == '\t')
			return (uint32_t)strtoul(p + n + 1, NULL, 10);
	return 0;
}

/* this_cpu_off's offset minus runqueues' in the kernel's per-CPU section
 * (BTF .data..percpu), 0 when either is missing (not x86). */
static int64_t rq_to_cpu_off(const struct btf *btf)
{
	int sec = btf__find_by_name_kind(btf, ".data..percpu", BTF_KIND_DATASEC);
	int64_t rq = -1, off = -1;

	if (sec < 0)
		return 0;
	const struct btf_type *t = btf__type_by_id(btf, sec);
	const struct btf_var_secinfo *v = btf_var_secinfos(t);
	for (unsigned i = 0; i < btf_vlen(t); i++, v++) {
		const char *name = btf__name_by_offset(btf, btf__type_by_id(btf, v->type)->name_off);
		if (!strcmp(name, "runqueues"))
			rq = v->offset;
		else if (!strcmp(name, "this_cpu_off"))
			off = v->offset;
	}
	return rq >= 0 && off >= 0 ? off - rq : 0;
}

/*
 * The indexes of the memcg stat items memory.stat's total_rss, total_cache,
 * total_mapped_file and total_inactive_file come from, in
 * memcg_vmstats.state[]. Since 6.11 the kernel packs the items a memcg
 * tracks into a dense array in the order of memcg_node_stat_items[]
 * (mm/memcontrol.c); the items we need come before any that depend on the
 * kernel's configuration. Older kernels index by the item itself. The
 * start-up check against the file decides in the end (check_memstat).
 */
static int memstat_indexes(const struct btf *btf, uint32_t idx[4])
{
	static const char *const dense[] = {
		"NR_INACTIVE_ANON", "NR_ACTIVE_ANON", "NR_INACTIVE_FILE", "NR_ACTIVE_FILE",
		"NR_UNEVICTABLE", "NR_SLAB_RECLAIMABLE_B", "NR_SLAB_UNRECLAIMABLE_B",
		"WORKINGSET_REFAULT_ANON", "WORKINGSET_REFAULT_FILE", "WORKINGSET_ACTIVATE_ANON",
		"WORKINGSET_ACTIVATE_FILE", "WORKINGSET_RESTORE_ANON", "WORKINGSET_RESTORE_FILE",
		"WORKINGSET_NODERECLAIM", "NR_ANON_MAPPED", "NR_FILE_MAPPED", "NR_FILE_PAGES",
	};
	static const char *const want[4] = { "NR_ANON_MAPPED", "NR_FILE_PAGES", "NR_FILE_MAPPED",
					     "NR_INACTIVE_FILE" };
	int id = btf__find_by_name_kind(btf, "memcg_vmstats", BTF_KIND_STRUCT);
	int en = btf__find_by_name_kind(btf, "node_stat_item", BTF_KIND_ENUM);
	int ms = btf__find_by_name_kind(btf, "memcg_stat_item", BTF_KIND_ENUM);
	uint32_t nstate = 0;

	if (id < 0 || en < 0 || ms < 0)
		return -ENOENT;
	const struct btf_type *t = btf__type_by_id(btf, id);
	const struct btf_member *m = btf_members(t);
	for (unsigned i = 0; i < btf_vlen(t); i++, m++) {
		const struct btf_type *mt = btf__type_by_id(btf, m->type);
		if (!strcmp(btf__name_by_offset(btf, m->name_off), "state") && btf_is_array(mt))
			nstate = btf_array(mt)->nelems;
	}
	/* MEMCG_NR_STAT: the array's length when it is indexed by item. */
	int64_t nr_stat = -1;
	const struct btf_type *mt = btf__type_by_id(btf, ms);
	const struct btf_enum *e = btf_enum(mt);
	for (unsigned i = 0; i < btf_vlen(mt); i++, e++)
		if (!strcmp(btf__name_by_offset(btf, e->name_off), "MEMCG_NR_STAT"))
			nr_stat = e->val;
	if (!nstate)
		return -ENOENT;
	const struct btf_type *nt = btf__type_by_id(btf, en);
	for (int k = 0; k < 4; k++) {
		int64_t val = -1;
		e = btf_enum(nt);
		for (unsigned i = 0; i < btf_vlen(nt); i++, e++)
			if (!strcmp(btf__name_by_offset(btf, e->name_off), want[k]))
				val = e->val;
		if (val < 0)
			return -ENOENT;
		if ((int64_t)nstate == nr_stat) {
			idx[k] = (uint32_t)val;
			continue;
		}
		idx[k] = UINT32_MAX;
		for (size_t i = 0; i < ARRAY_LEN(dense); i++)
			if (!strcmp(dense[i], want[k]))
				idx[k] = (uint32_t)i;
	}
	return 0;
}

static bool on_cgroupfs(int fd)
{
	struct statfs sf;
	return fstatfs(fd, &sf) == 0 &&
	       (sf.f_type == CGROUP_SUPER_MAGIC || sf.f_type == CGROUP2_SUPER_MAGIC);
}

/* Attaches a walk of the hierarchy at root (pre-order from the root). */
static struct bpf_link *attach_walk(struct cgi *it, const char *root, char *why, size_t whysize)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, whysize, "opening %s: %s", root, strerror(errno));
		return NULL;
	}
	if (!on_cgroupfs(fd)) {
		snprintf(why, whysize, "%s is not a cgroup v1 hierarchy (a fixture tree?)", root);
		close(fd);
		return NULL;
	}
	union bpf_iter_link_info li;
	memset(&li, 0, sizeof(li));
	li.cgroup.cgroup_fd = (__u32)fd;
	li.cgroup.order = BPF_CGROUP_ITER_DESCENDANTS_PRE;
	LIBBPF_OPTS(bpf_iter_attach_opts, opts, .link_info = &li, .link_info_len = sizeof(li));
	struct bpf_link *link = bpf_program__attach_iter(it->skel->progs.cgroup_dump, &opts);
	int err = -errno;
	close(fd);
	if (!link)
		ebpf_explain(err, "attaching the cgroup iterator", why, whysize);
	return link;
}

/* ---- walks and slots ------------------------------------------------------ */

/* Runs one walk: the program writes into the records and prints nothing,
 * so the walk fits the single read() a cgroup iterator allows. */
static int run_walk(struct bpf_link *link)
{
	char b[64];
	int fd = bpf_iter_create(bpf_link__fd(link));
	ssize_t n;

	if (fd < 0)
		return -errno;
	do
		n = read(fd, b, sizeof(b));
	while (n > 0 || (n < 0 && errno == EINTR));
	int err = n < 0 ? -errno : 0;
	close(fd);
	return err;
}

int cgi_refresh(struct cgi *it)
{
	int err = 0, nread = 0;

	/* memory.stat of a container flushes its memcg's per-CPU stat deltas
	 * when enough are pending; the root's flushes the whole tree whenever
	 * any memcg in it would (pending counts add up towards the root). */
	if (it->memstat_ok && it->memstat_fd >= 0 &&
	    pread(it->memstat_fd, it->stat_text, sizeof(it->stat_text) - 1, 0) < 0)
		err = -errno;
	it->skel->bss->cgi_walk_gen = ++it->gen;
	for (int k = 0; k < CGI__PARTS; k++)
		it->fresh[k] = false;
	for (int i = 0; i < it->nlinks; i++) {
		int e = run_walk(it->links[i]);
		if (e < 0 && !err)
			err = e;
		nread += e == 0;
		for (int k = 0; k < CGI__PARTS && e == 0; k++)
			if (it->walked[k] && it->part_of[part_ctrl[k]] == i)
				it->fresh[k] = true;
	}
	return err < 0 ? err : nread;
}

/* A PSI file: cpu.pressure, memory.pressure, io.pressure. */
static bool is_pressure(const char *name)
{
	const char *dot = strchr(name, '.');
	return dot && !strcmp(dot, ".pressure");
}

/* The record of slot when its part k is from the last walk, else NULL. */
static const struct cgi_record *fresh_record(const struct cgi *it, uint32_t slot, int k)
{
	if (!it || slot >= it->records_slots || k < 0 || k >= CGI__PARTS || !it->fresh[k])
		return NULL;
	const struct cgi_record *r = &it->records[slot];
	return r->gen[k] == it->gen ? r : NULL;
}

#define RECORDS_MAP_STEP 256u    /* slots: 68 KB of records (see map_records) */

static int map_records(struct cgi *it, uint32_t slots);

/* Enters (slot) or removes (NULL) the container's directories in cgi_index. */
static int set_keys(struct cgi *it, const uint64_t ids[CGI_NIDS], const uint32_t *slot)
{
	for (int k = 0; k < CGI__PARTS; k++) {
		uint64_t id = ids[part_ctrl[k]];
		if (!it->walked[k] || !id)
			continue;
		if (!slot) {
			cgi_index_del(&it->index, id, it->hier_id[k]);
			continue;
		}
		int err = cgi_index_put(&it->index, id, it->hier_id[k], *slot);
		if (err < 0)
			return err;
	}
	return 0;
}

int cgi_track(struct cgi *it, const uint64_t ids[CGI_NIDS], uint32_t *slot)
{
	if (!it)
		return -EINVAL;
	if (*slot == CGI_NO_SLOT) {
		if (!it->nfree)
			return -ENOSPC;
		uint32_t s = it->free_slots[it->nfree - 1];
		if (s >= it->records_slots) {
			int err = map_records(it, (s / RECORDS_MAP_STEP + 1) * RECORDS_MAP_STEP);
			if (err < 0)
				return err;
		}
		*slot = it->free_slots[--it->nfree];
		memset(&it->records[*slot], 0, sizeof(it->records[*slot]));
	}
	int err = set_keys(it, ids, slot);
	if (err < 0) {
		cgi_untrack(it, ids, *slot);
		*slot = CGI_NO_SLOT;
	}
	return err;
}

void cgi_untrack(struct cgi *it, const uint64_t ids[CGI_NIDS], uint32_t slot)
{
	if (!it || slot >= it->records_slots)
		return;
	set_keys(it, ids, NULL);
	memset(&it->records[slot], 0, sizeof(it->records[slot]));
	it->free_slots[it->nfree++] = slot;
}

bool cgi_serves(const struct cgi *it, int ctrl, const char *name)
{
	if (!it || ctrl < 0 || ctrl >= CGI_NIDS || it->part_of[ctrl] < 0)
		return false;
	if (ctrl == CGI_ID_UNIFIED)
		return is_pressure(name);
	if (!strcmp(name, "memory.stat"))
		return it->memstat_ok;
	if (!strcmp(name, "cpuacct.usage_percpu"))
		return it->cpuacct_ok && it->percpu;
	if (!strcmp(name, "pids.max"))
		return it->pids_max_value > 0;
	if (!strncmp(name, "blkio.", 6)) {
		int f = cgi_file_id(name);
		return it->blkio_ok && (f == CGF_BLKIO_BYTES || f == CGF_BLKIO_IOS);
	}
	if (!strncmp(name, "cpuacct.", 8))
		return it->cpuacct_ok;
	return true;
}

const char *cgi_describe(const struct cgi *it, char *buf, size_t size)
{
	size_t o = 0;
	buf[0] = '\0';
	for (int k = 0; k < CGI__PARTS; k++)
		if (it->walked[k] && o < size)
			o += (size_t)snprintf(buf + o, size - o, "%s%s", o ? " " : "walks: ",
					      part_name[k]);
	if (o < size)
		snprintf(buf + o, size - o, "; %s%s%s%s",
			 it->memstat_ok ? "" : "memory.stat from the file (its check failed); ",
			 it->cpuacct_ok || !it->walked[CGI_CPUACCT] ? "" :
			 "cpuacct from files (no per-CPU offsets); ",
			 it->blkio_ok ? "" : !it->walked[CGI_BLKIO] ? "blkio from files; " :
			 "blkio from files (its check found nothing to compare, or failed); ",
			 it->walked[CGI_UNIFIED] ? "PSI from walks" : "PSI from files");
	return buf;
}

/* ---- the files' text ------------------------------------------------------ */

/* The files the walks can stand for, by cgi_file_id (the collector looks
 * each up once: no string compares per container per tick). */
static const char *const file_names[CGF__COUNT] = {
	[CGF_CPUACCT_USAGE] = "cpuacct.usage", [CGF_CPUACCT_PERCPU] = "cpuacct.usage_percpu",
	[CGF_CPUACCT_STAT] = "cpuacct.stat", [CGF_CPU_STAT] = "cpu.stat",
	[CGF_CPU_QUOTA] = "cpu.cfs_quota_us", [CGF_CPU_PERIOD] = "cpu.cfs_period_us",
	[CGF_CPU_SHARES] = "cpu.shares", [CGF_MEM_USAGE] = "memory.usage_in_bytes",
	[CGF_MEM_MAX_USAGE] = "memory.max_usage_in_bytes", [CGF_MEM_FAILCNT] = "memory.failcnt",
	[CGF_MEMSW_USAGE] = "memory.memsw.usage_in_bytes", [CGF_MEM_OOM] = "memory.oom_control",
	[CGF_MEM_LIMIT] = "memory.limit_in_bytes", [CGF_MEMSW_LIMIT] = "memory.memsw.limit_in_bytes",
	[CGF_MEM_SOFT_LIMIT] = "memory.soft_limit_in_bytes", [CGF_MEM_STAT] = "memory.stat",
	[CGF_PIDS_CURRENT] = "pids.current", [CGF_PIDS_MAX] = "pids.max",
	[CGF_PSI_IO] = "io.pressure", [CGF_PSI_MEM] = "memory.pressure",
	[CGF_PSI_CPU] = "cpu.pressure", [CGF_BLKIO_BYTES] = "blkio.throttle.io_service_bytes_recursive",
	[CGF_BLKIO_IOS] = "blkio.throttle.io_serviced_recursive",
};

int cgi_file_id(const char *name)
{
	for (int f = 0; f < CGF__COUNT; f++)
		if (!strcmp(name, file_names[f]))
			return f;
	return -1;
}

/* Appends "key value\n" (key may be NULL; "key=value\n" for a key that
 * ends in '=', as PSI's total=) at *o, NUL-terminated; false when out of
 * room. Without snprintf: its format parsing was a tenth of the tick's
 * CPU (a few numbers per container per tick). */
static bool put_u64(char *out, size_t size, size_t *o, const char *key, uint64_t v)
{
	char tmp[U64_DIGITS_MAX];
	const char *d = u64_digits(v, tmp);
	size_t nd = (size_t)(tmp + U64_DIGITS_MAX - d), nk = key ? strlen(key) : 0;
	bool space = nk && key[nk - 1] != '=';
	size_t n = nk + space + nd + 1;
	if (n >= size - *o)
		return false;
	char *p = out + *o;
	if (nk)
		memcpy(p, key, nk);
	if (space)
		p[nk++] = ' ';
	memcpy(p + nk, d, nd);
	p[nk + nd] = '\n';
	p[nk + nd + 1] = '\0';
	*o += n;
	return true;
}

void cgi_cputime_adjust(uint64_t rtime, uint64_t utime, uint64_t stime, uint64_t prev_u,
			uint64_t prev_s, uint64_t *ut, uint64_t *st)
{
	/* As the kernel does it, step by step, but on copies of prev. */
	if (prev_s + prev_u >= rtime)
		goto out;
	if (stime == 0) {
		utime = rtime;
	} else if (utime == 0) {
		stime = rtime;
	} else {
		stime = (uint64_t)((unsigned __int128)stime * rtime / (stime + utime));
		if (stime > rtime)
			stime = rtime;
	}
	if (stime < prev_s)
		stime = prev_s;
	utime = rtime - stime;
	if (utime < prev_u) {
		utime = prev_u;
		stime = rtime - utime;
	}
	prev_s = stime;
	prev_u = utime;
out:
	*ut = prev_u;
	*st = prev_s;
}

static int cpuacct_text(const struct cgi *it, uint32_t slot, int f, char *out, size_t size)
{
	const struct cgi_record *r = fresh_record(it, slot, CGI_CPUACCT);
	size_t o = 0;

	if (!r || !it->cpuacct_ok)
		return -1;
	if (f == CGF_CPUACCT_PERCPU) {
		/* "%llu " per possible CPU, then a newline */
		if (!it->percpu)
			return -1;
		const uint64_t *v = it->percpu + (size_t)slot * it->ncpu;
		for (uint32_t i = 0; i < it->ncpu; i++) {
			int n = snprintf(out + o, size - o, "%llu ", (unsigned long long)v[i]);
			if (n < 0 || (size_t)n >= size - o)
				return -1;
			o += (size_t)n;
		}
		if (o + 2 > size)
			return -1;
		out[o++] = '\n';
		out[o] = '\0';
		return (int)o;
	}
	if (f == CGF_CPUACCT_USAGE)
		return put_u64(out, size, &o, NULL, r->cpu_usage_ns) ? (int)o : -1;
	if (f == CGF_CPUACCT_STAT) {
		uint64_t ut, st;
		cgi_cputime_adjust(r->cpu_usage_ns, r->cpu_user_ns, r->cpu_system_ns,
				   r->cpu_prev_utime_ns, r->cpu_prev_stime_ns, &ut, &st);
		return put_u64(out, size, &o, "user", ut / it->ns_per_tick) &&
		       put_u64(out, size, &o, "system", st / it->ns_per_tick) ? (int)o : -1;
	}
	return -1;
}

static int memory_text(const struct cgi *it, uint32_t slot, int f, char *out, size_t size)
{
	const struct cgi_record *r = fresh_record(it, slot, CGI_MEMORY);
	uint64_t pg = it->page_bytes;
	size_t o = 0;
	bool ok;

	if (!r)
		return -1;
	switch (f) {
	case CGF_MEM_USAGE:
		ok = put_u64(out, size, &o, NULL, r->mem_usage_pages * pg);
		break;
	case CGF_MEM_MAX_USAGE:
		ok = put_u64(out, size, &o, NULL, r->mem_watermark_pages * pg);
		break;
	case CGF_MEM_FAILCNT:
		ok = put_u64(out, size, &o, NULL, r->mem_failcnt);
		break;
	case CGF_MEMSW_USAGE:
		ok = put_u64(out, size, &o, NULL, r->memsw_usage_pages * pg);
		break;
	case CGF_MEM_OOM:
		ok = put_u64(out, size, &o, "oom_kill", r->mem_oom_kill);
		break;
	case CGF_MEM_LIMIT:
		ok = put_u64(out, size, &o, NULL, r->mem_max_pages * pg);
		break;
	case CGF_MEMSW_LIMIT:
		ok = put_u64(out, size, &o, NULL, r->memsw_max_pages * pg);
		break;
	case CGF_MEM_SOFT_LIMIT:
		ok = put_u64(out, size, &o, NULL, r->mem_soft_limit_pages * pg);
		break;
	case CGF_MEM_STAT:
		ok = it->memstat_ok &&
		     put_u64(out, size, &o, "total_cache", (uint64_t)r->mem_file_pages * pg) &&
		     put_u64(out, size, &o, "total_rss", (uint64_t)r->mem_anon_mapped_pages * pg) &&
		     put_u64(out, size, &o, "total_mapped_file",
			     (uint64_t)r->mem_file_mapped_pages * pg) &&
		     put_u64(out, size, &o, "total_inactive_file",
			     (uint64_t)r->mem_inactive_file_pages * pg);
		break;
	default:
		return -1;
	}
	return ok ? (int)o : -1;
}

/*
 * The totals of a PSI file (the averages are not used). The kernel's file
 * read first aggregates the per-CPU stall times into psi_group.total; the
 * walk reads total as the kernel last aggregated it, which its averaging
 * work does every 2 s while the group has any stall (PSI_FREQ), and any
 * read of the file does at once: so a total is at most 2 s of stall
 * behind the file, and equal to it once the group is quiet.
 */
static int psi_text(const struct cgi *it, uint32_t slot, int f, char *out, size_t size)
{
	const struct cgi_record *r = fresh_record(it, slot, CGI_UNIFIED);
	int res = f == CGF_PSI_IO ? 0 : f == CGF_PSI_MEM ? 1 : f == CGF_PSI_CPU ? 2 : -1;
	size_t o = 0;

	if (!r || res < 0)
		return -1;
	/* "some ... total=N" then "full ... total=N", in microseconds. */
	return put_u64(out, size, &o, "some total=", r->psi_total_ns[2 * res] / 1000) &&
	       put_u64(out, size, &o, "full total=", r->psi_total_ns[2 * res + 1] / 1000) ?
		(int)o : -1;
}

/* v1 cpu.stat (the CFS counters), cpu.cfs_quota_us, cpu.cfs_period_us,
 * cpu.shares, as kernel/sched/core.c prints them. */
static int cpu_text(const struct cgi *it, uint32_t slot, int f, char *out, size_t size)
{
	const struct cgi_record *r = fresh_record(it, slot, CGI_CPU);
	size_t o = 0;

	if (!r)
		return -1;
	if (f == CGF_CPU_STAT)
		return put_u64(out, size, &o, "nr_periods", r->cfs_nr_periods) &&
		       put_u64(out, size, &o, "nr_throttled", r->cfs_nr_throttled) &&
		       put_u64(out, size, &o, "throttled_time", r->cfs_throttled_ns) ? (int)o : -1;
	if (f == CGF_CPU_QUOTA) /* RUNTIME_INF: -1 */
		return r->cfs_quota_ns == UINT64_MAX ? snprintf(out, size, "-1\n") :
			put_u64(out, size, &o, NULL, r->cfs_quota_ns / 1000) ? (int)o : -1;
	if (f == CGF_CPU_PERIOD)
		return put_u64(out, size, &o, NULL, r->cfs_period_ns / 1000) ? (int)o : -1;
	if (f == CGF_CPU_SHARES) {
		/* scale_load_down(): the fixed-point shift on 64-bit, at least 2 */
		uint64_t w = r->cpu_shares_fp;
		if (w)
			w = w >> 10 > 2 ? w >> 10 : 2;
		return put_u64(out, size, &o, NULL, w) ? (int)o : -1;
	}
	return -1;
}

/* v1 blkio.throttle.io_service_bytes_recursive or io_serviced_recursive:
 * the Read and Write line of each device (the lines the collector parses),
 * as blk-cgroup-rwstat.c prints them ("8:0 Read 4096"). */
static int blkio_text(const struct cgi *it, uint32_t slot, int f, char *out, size_t size)
{
	const struct cgi_record *r = fresh_record(it, slot, CGI_BLKIO);
	int which = f == CGF_BLKIO_BYTES ? 0 : f == CGF_BLKIO_IOS ? 1 : -1;
	size_t o = 0;

	if (!r || which < 0 || !it->blkio_ok || r->blk_ndevs > CGI_BLK_DEVS)
		return -1;
	out[0] = '\0';
	for (uint32_t i = 0; i < r->blk_ndevs; i++) {
		const struct cgi_blk_dev *d = &r->blk[i];
		const __u64 *v = which ? d->ios : d->bytes;
		char key[CGI_BLK_NAME + 8];
		size_t n = strnlen(d->name, sizeof(d->name));
		if (n == sizeof(d->name))
			return -1;
		memcpy(key, d->name, n);
		memcpy(key + n, " Read", 6);
		if (!put_u64(out, size, &o, key, v[0]))
			return -1;
		memcpy(key + n, " Write", 7);
		if (!put_u64(out, size, &o, key, v[1]))
			return -1;
	}
	return (int)o;
}

int cgi_text(const struct cgi *it, uint32_t slot, int f, char *out, size_t size)
{
	const struct cgi_record *r;
	size_t o = 0;

	if (!it || !size || slot >= CGI_SLOTS)
		return -1;
	switch (f) {
	case CGF_PSI_IO: case CGF_PSI_MEM: case CGF_PSI_CPU:
		return psi_text(it, slot, f, out, size);
	case CGF_CPUACCT_USAGE: case CGF_CPUACCT_PERCPU: case CGF_CPUACCT_STAT:
		return cpuacct_text(it, slot, f, out, size);
	case CGF_MEM_USAGE: case CGF_MEM_MAX_USAGE: case CGF_MEM_FAILCNT: case CGF_MEMSW_USAGE:
	case CGF_MEM_OOM: case CGF_MEM_LIMIT: case CGF_MEMSW_LIMIT: case CGF_MEM_SOFT_LIMIT:
	case CGF_MEM_STAT:
		return memory_text(it, slot, f, out, size);
	case CGF_CPU_STAT: case CGF_CPU_QUOTA: case CGF_CPU_PERIOD: case CGF_CPU_SHARES:
		return cpu_text(it, slot, f, out, size);
	case CGF_BLKIO_BYTES: case CGF_BLKIO_IOS:
		return blkio_text(it, slot, f, out, size);
	case CGF_PIDS_CURRENT: case CGF_PIDS_MAX:
		if (!(r = fresh_record(it, slot, CGI_PIDS)))
			return -1;
		if (f == CGF_PIDS_CURRENT)
			return put_u64(out, size, &o, NULL, r->pids_current) ? (int)o : -1;
		/* pids.max: "max" for the limit every pids cgroup starts with
		 * (PIDS_MAX, learnt from the root at start-up) */
		if (it->pids_max_value > 0 && r->pids_limit >= 0)
			return (uint64_t)r->pids_limit >= it->pids_max_value ?
				snprintf(out, size, "max\n") :
				put_u64(out, size, &o, NULL, (uint64_t)r->pids_limit) ? (int)o : -1;
		return -1;
	default:
		return -1;
	}
}

/* ---- the start-up check ---------------------------------------------------- */

/*
 * memory.stat's four values from a walk must equal the hierarchy root's
 * file: the item indexes are the one assumption about kernel internals
 * that a wrong guess would turn into wrong numbers rather than a failed
 * load. The root is read between two walks; a key counts in a try only
 * when both walks agree on it (it did not move meanwhile): every key must
 * match in some try, and none may differ in any.
 */
static bool check_memstat(struct cgi *it, uint64_t root_id)
{
	static const char *const keys[4] = { "total_cache", "total_rss", "total_mapped_file",
					     "total_inactive_file" };
	uint64_t ids[CGI_NIDS] = { 0 };
	uint32_t slot = CGI_NO_SLOT;
	bool ok = false;

	unsigned matched = 0;
	ids[CG_MEMORY] = root_id;
	if (cgi_track(it, ids, &slot) < 0)
		return false;
	for (int attempt = 0; attempt < 50 && matched != 15; attempt++) {
		uint64_t a[4], b[4];
		const struct cgi_record *r;
		char text[sizeof(it->stat_text)];
		ssize_t n;

		if (cgi_refresh(it) < 0 || !(r = fresh_record(it, slot, CGI_MEMORY)))
			break;
		a[0] = (uint64_t)r->mem_file_pages, a[1] = (uint64_t)r->mem_anon_mapped_pages;
		a[2] = (uint64_t)r->mem_file_mapped_pages, a[3] = (uint64_t)r->mem_inactive_file_pages;
		n = pread(it->memstat_fd, text, sizeof(text) - 1, 0);
		if (cgi_refresh(it) < 0 || !(r = fresh_record(it, slot, CGI_MEMORY)) || n <= 0)
			break;
		text[n] = '\0';
		b[0] = (uint64_t)r->mem_file_pages, b[1] = (uint64_t)r->mem_anon_mapped_pages;
		b[2] = (uint64_t)r->mem_file_mapped_pages, b[3] = (uint64_t)r->mem_inactive_file_pages;
		for (int k = 0; k < 4; k++) {
			if (a[k] != b[k])
				continue;        /* moved: this key another time */
			if (cg_kv_get(text, keys[k]) != (int64_t)(a[k] * it->page_bytes))
				goto out;
			matched |= 1u << k;
		}
	}
	ok = matched == 15;
out:
	cgi_untrack(it, ids, slot);
	return ok;
}

/* One value of the root's own blkio files: "dev Read N" / "dev Write N". */
struct blk_line {
	char dev[CGI_BLK_NAME];
	int stat, op;            /* 0 bytes, 1 I/Os; 0 Read, 1 Write */
	uint64_t v;
};

/* The Read and Write lines of a non-recursive blkio file into l[]: their
 * count, or -1 past max or on a line that does not parse. */
static int blk_lines(const char *text, int stat, struct blk_line *l, int max)
{
	int n = 0;
	for (const char *p = text; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : "") {
		char dev[CGI_BLK_NAME], op[16];
		unsigned long long v;
		if (!strncmp(p, "Total ", 6))
			continue;
		if (sscanf(p, "%23s %15s %llu", dev, op, &v) != 3)
			return -1;
		if (strcmp(op, "Read") && strcmp(op, "Write"))
			continue;
		if (n == max)
			return -1;
		memcpy(l[n].dev, dev, sizeof(dev));
		l[n].stat = stat;
		l[n].op = !strcmp(op, "Write");
		l[n++].v = v;
	}
	return n;
}

/* The record's value for line l, or false when it has no such device. */
static bool blk_value(const struct cgi_record *r, const struct blk_line *l, uint64_t *v)
{
	for (uint32_t i = 0; i < r->blk_ndevs && i < CGI_BLK_DEVS; i++)
		if (!strncmp(r->blk[i].name, l->dev, sizeof(r->blk[i].name))) {
			*v = l->stat ? r->blk[i].ios[l->op] : r->blk[i].bytes[l->op];
			return true;
		}
	return false;
}

/*
 * The blkio values of a walk must agree with the kernel's files: the
 * throttle policy's slot is found by the program (bpf/cgroup_iter.bpf.c),
 * and this checks that and the counters' reading once. The hierarchy root
 * is the cgroup sure to have done I/O; it has children, so the program,
 * in its self-only mode, fills its own counters, which the non-recursive
 * files print. Counters only grow: every value the file printed between
 * two walks must lie between theirs, on the same devices. One try in ten
 * must see the same devices three times and at least one non-zero value
 * (else nothing was compared and the files stay); a value out of its
 * range in any try fails the check.
 */
static bool check_blkio(struct cgi *it, const char *root)
{
	static const char *const files[2] = { "blkio.throttle.io_service_bytes",
					       "blkio.throttle.io_serviced" };
	uint64_t ids[CGI_NIDS] = { 0 };
	uint32_t slot = CGI_NO_SLOT;
	struct stat st;
	bool ok = false, bad = false;

	if (stat(root, &st) < 0)
		return false;
	ids[CG_BLKIO] = (uint64_t)st.st_ino;
	if (cgi_track(it, ids, &slot) < 0)
		return false;
	it->skel->bss->blk_self_only = 1;
	for (int attempt = 0; attempt < 10 && !ok && !bad; attempt++) {
		struct blk_line l[4 * CGI_BLK_DEVS];
		struct cgi_record a;
		const struct cgi_record *r;
		int n = 0;

		if (cgi_refresh(it) < 0 || !(r = fresh_record(it, slot, CGI_BLKIO)))
			continue;
		a = *r;
		for (int k = 0; k < 2 && n >= 0; k++) {
			char p[PATH_MAX], text[4096];
			int m = -1;
			if (snprintf(p, sizeof(p), "%s/%s", root, files[k]) < (int)sizeof(p) &&
			    read_file(p, text, sizeof(text)) >= 0)
				m = blk_lines(text, k, l + n, (int)ARRAY_LEN(l) - n);
			n = m < 0 ? -1 : n + m;
		}
		if (n < 0 || cgi_refresh(it) < 0 || !(r = fresh_record(it, slot, CGI_BLKIO)))
			break;
		if ((uint32_t)n != 4 * a.blk_ndevs || r->blk_ndevs != a.blk_ndevs)
			continue;        /* a device came or went: again */
		bool same = true, nonzero = false;
		for (int i = 0; i < n && same; i++) {
			uint64_t lo, hi;
			same = blk_value(&a, &l[i], &lo) && blk_value(r, &l[i], &hi);
			if (same && (l[i].v < lo || l[i].v > hi))
				bad = true;
			nonzero |= l[i].v > 0;
		}
		ok = same && nonzero && !bad;
	}
	it->skel->bss->blk_self_only = 0;
	cgi_untrack(it, ids, slot);
	return ok;
}

/* The pids limit that pids.max prints as "max" (PIDS_MAX, which depends
 * on the kernel's PID_MAX_LIMIT): every pids cgroup starts with it, and
 * the root, which has no pids.max to write, keeps it. 0 when unknown
 * (pids.max is then read from the file). */
static uint64_t pids_max_value(struct cgi *it, const char *root)
{
	uint64_t ids[CGI_NIDS] = { 0 }, v = 0;
	uint32_t slot = CGI_NO_SLOT;
	const struct cgi_record *r;
	struct stat st;

	if (stat(root, &st) < 0)
		return 0;
	ids[CG_PIDS] = (uint64_t)st.st_ino;
	if (cgi_track(it, ids, &slot) < 0)
		return 0;
	if (cgi_refresh(it) >= 0 && (r = fresh_record(it, slot, CGI_PIDS)) && r->pids_limit > 0)
		v = (uint64_t)r->pids_limit;
	cgi_untrack(it, ids, slot);
	return v;
}

/* ---- open / close ----------------------------------------------------------- */

/* Maps the first len bytes of an mmapable array map (rounded to pages). */
static void *map_array(struct bpf_map *m, size_t len, size_t *bytes)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	len = (len + page - 1) / page * page;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(m), 0);
	if (p == MAP_FAILED)
		return NULL;
	*bytes = len;
	return p;
}

/*
 * The kernel maps every page of an mmapable array at mmap (the map is
 * vmalloc'd whole at load), so mapping all CGI_SLOTS records would put
 * ~2.1 MB in the agent's RSS whatever the containers. Slots are handed out
 * lowest first (free_slots), so only the first ones in use are mapped, the
 * mapping grown (a new one, then the old unmapped: the kernel forbids
 * mremap growth of it) in steps when a slot past it is handed out.
 */
static int map_records(struct cgi *it, uint32_t slots)
{
	if (slots > CGI_SLOTS)
		slots = CGI_SLOTS;
	size_t bytes;
	void *p = map_array(it->skel->maps.cgi_records, (size_t)slots * sizeof(*it->records),
			    &bytes);
	if (!p)
		return -errno;
	if (it->records)
		munmap(it->records, it->records_bytes);
	it->records = p;
	it->records_bytes = bytes;
	it->records_slots = (uint32_t)(bytes / sizeof(*it->records));
	if (it->records_slots > CGI_SLOTS)
		it->records_slots = CGI_SLOTS;
	return 0;
}

/* Sizes, settings and the load. */
static int load(struct cgi *it, int ncpu, bool percpu, char *why, size_t whysize)
{
	ebpf_route_libbpf_log();
	struct btf *btf = btf__load_vmlinux_btf();
	if (!btf) {
		snprintf(why, whysize, "no kernel BTF (/sys/kernel/btf/vmlinux)");
		return -ENOENT;
	}
	uint32_t idx[4] = { UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX };
	bool memstat = memstat_indexes(btf, idx) == 0 && idx[0] != UINT32_MAX &&
		       idx[1] != UINT32_MAX && idx[2] != UINT32_MAX && idx[3] != UINT32_MAX;
	int64_t rq_off = rq_to_cpu_off(btf);
	btf__free(btf);

	it->skel = cgroup_iter_bpf__open();
	if (!it->skel) {
		ebpf_explain(-errno, "opening the cgroup iterator", why, whysize);
		return -ENOENT;
	}
	it->skel->rodata->ncpu_possible = (__u32)ncpu;
	it->skel->rodata->want_percpu = percpu;
	it->skel->rodata->rq_to_cpu_off = rq_off;
	if (memstat) {
		it->skel->rodata->idx_anon_mapped = idx[0];
		it->skel->rodata->idx_file_pages = idx[1];
		it->skel->rodata->idx_file_mapped = idx[2];
		it->skel->rodata->idx_inactive_file = idx[3];
	}
	bpf_map__set_max_entries(it->skel->maps.cgi_records, CGI_SLOTS);
	bpf_map__set_max_entries(it->skel->maps.cgi_percpu, percpu ? CGI_SLOTS * (uint32_t)ncpu : 1);
	int err = cgroup_iter_bpf__load(it->skel);
	if (err < 0) {
		ebpf_explain(err, "loading the cgroup iterator", why, whysize);
		return err;
	}
	if (percpu)
		it->percpu = map_array(it->skel->maps.cgi_percpu,
				       (size_t)bpf_map__value_size(it->skel->maps.cgi_percpu) *
					       bpf_map__max_entries(it->skel->maps.cgi_percpu),
				       &it->percpu_bytes);
	err = cgi_index_init(&it->index, bpf_map__fd(it->skel->maps.cgi_index),
			     &it->skel->bss->cgi_index_bits);
	if (err < 0) {
		snprintf(why, whysize, "the iterator's index: %s", strerror(-err));
		return err;
	}
	if (map_records(it, RECORDS_MAP_STEP) < 0 || (percpu && !it->percpu)) {
		snprintf(why, whysize, "mapping the iterator's records: %s", strerror(errno));
		return -ENOMEM;
	}
	return 0;
}

/* One link per hierarchy (comounted controllers share one). */
static int attach_all(struct cgi *it, const struct cg_layout *l, char *why, size_t whysize)
{
	for (int k = 0; k < CGI__PARTS; k++) {
		int c = part_ctrl[k];
		char real[PATH_MAX];
		if (k == CGI_UNIFIED) {
			/* The v2 tree of a hybrid host (PSI); hierarchy id 0. */
			if (l->mode != CG_HYBRID || !l->unified[0] || !realpath(l->unified, real))
				continue;
			it->hier_id[k] = 0;
		} else if (!l->v1[c][0] || !realpath(l->v1[c], real) ||
			   !(it->hier_id[k] = hierarchy_of(part_name[k]))) {
			continue;
		}
		for (int j = 0; j < k && it->part_of[c] < 0; j++)
			if (it->walked[j] && it->hier_id[j] == it->hier_id[k])
				it->part_of[c] = it->part_of[part_ctrl[j]];
		if (it->part_of[c] < 0) {
			struct bpf_link *link = attach_walk(it, real, why, whysize);
			if (!link)
				return -ENOENT;
			it->links[it->nlinks] = link;
			it->part_of[c] = it->nlinks++;
		}
		it->walked[k] = true;
	}
	if (!it->walked[CGI_MEMORY] && !it->walked[CGI_CPUACCT]) {
		snprintf(why, whysize, "no v1 memory or cpuacct hierarchy");
		return -ENOENT;
	}
	return 0;
}

static int set_up(struct cgi *it, const struct cg_layout *l, bool percpu, char *why,
		  size_t whysize)
{
	/* A fixture tree (tests, a wrong --host-root) fails here, before
	 * anything is loaded. */
	const char *walk_root = cg_layout_walk_root(l);
	int rfd = walk_root ? open(walk_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	bool cgfs = rfd >= 0 && on_cgroupfs(rfd);
	if (rfd >= 0)
		close(rfd);
	if (!cgfs) {
		snprintf(why, whysize, "%s is not a cgroup v1 hierarchy (a fixture tree?)",
			 walk_root ? walk_root : "the cgroup tree");
		return -ENOENT;
	}
	int ncpu = possible_cpus();
	if (ncpu < 0) {
		snprintf(why, whysize, "possible CPUs are not 0..n-1 (or more than %d)", CGI_MAX_CPUS);
		return -ENOTSUP;
	}
	it->ncpu = (uint32_t)ncpu;
	int err = load(it, ncpu, percpu, why, whysize);
	if (err < 0)
		return err;
	if (!(it->free_slots = malloc(CGI_SLOTS * sizeof(*it->free_slots)))) {
		snprintf(why, whysize, "out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < CGI_SLOTS; i++)
		it->free_slots[it->nfree++] = CGI_SLOTS - 1 - i;
	return attach_all(it, l, why, whysize);
}

struct cgi *cgi_open(const struct cg_layout *l, bool percpu, char *why, size_t whysize)
{
	struct cgi *it = calloc(1, sizeof(*it));
	if (!it) {
		snprintf(why, whysize, "out of memory");
		return NULL;
	}
	it->memstat_fd = -1;
	for (int c = 0; c < CGI_NIDS; c++)
		it->part_of[c] = -1;
	if (l->mode != CG_V1 && l->mode != CG_HYBRID) {
		snprintf(why, whysize, "cgroup layout is %s: the iterator covers v1 hierarchies",
			 cg_mode_name(l->mode));
		goto fail;
	}
	long pg = sysconf(_SC_PAGESIZE), hz = sysconf(_SC_CLK_TCK);
	it->page_bytes = pg > 0 ? (uint64_t)pg : 4096;
	it->ns_per_tick = hz > 0 ? 1000000000ull / (uint64_t)hz : 10000000ull;
	if (set_up(it, l, percpu, why, whysize) < 0)
		goto fail;

	int err = cgi_refresh(it);
	if (err < 0) {
		snprintf(why, whysize, "running the cgroup iterator: %s", strerror(-err));
		goto fail;
	}
	it->cpuacct_ok = it->walked[CGI_CPUACCT] && it->skel->bss->cpu_off_ok;
	if (it->walked[CGI_PIDS])
		it->pids_max_value = pids_max_value(it, l->v1[CG_PIDS]);
	if (it->walked[CGI_BLKIO])
		it->blkio_ok = it->cpuacct_ok && check_blkio(it, l->v1[CG_BLKIO]);
	if (it->walked[CGI_MEMORY]) {
		char p[PATH_MAX];
		struct stat st;
		if (snprintf(p, sizeof(p), "%s/memory.stat", l->v1[CG_MEMORY]) < (int)sizeof(p))
			it->memstat_fd = open(p, O_RDONLY | O_CLOEXEC);
		it->memstat_ok = it->memstat_fd >= 0 && stat(l->v1[CG_MEMORY], &st) == 0 &&
				 check_memstat(it, (uint64_t)st.st_ino);
	}
	return it;
fail:
	cgi_close(it);
	return NULL;
}

void cgi_close(struct cgi *it)
{
	if (!it)
		return;
	for (int i = 0; i < it->nlinks; i++)
		bpf_link__destroy(it->links[i]);
	if (it->records)
		munmap(it->records, it->records_bytes);
	if (it->percpu)
		munmap(it->percpu, it->percpu_bytes);
	if (it->memstat_fd >= 0)
		close(it->memstat_fd);
	cgroup_iter_bpf__destroy(it->skel);
	cgi_index_fini(&it->index);
	free(it->free_slots);
	free(it);
}
