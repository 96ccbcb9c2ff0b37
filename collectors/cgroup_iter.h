/*
 * cgroup_iter.h - private to collectors/: the cgroup iterator (loader
 * cgroup_iter.c, kernel program bpf/cgroup_iter.bpf.c) as the cgroup
 * collector (cgroup.c) uses it.
 *
 * One walk per v1 hierarchy per tick fills the counters of every tracked
 * container; the collector then takes a container's hot files from its
 * record instead of preading them. Everything runs on the tick thread.
 */
#ifndef MONITOR_COLLECTORS_CGROUP_ITER_H
#define MONITOR_COLLECTORS_CGROUP_ITER_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/cgroup_iter.h"
#include "collectors/collector.h"

struct cgi;

/* The tracked directories' table (cgroup_index.c; bpf/cgroup_iter.h). */
struct cgi_index {
	struct cgi_ent *tab;     /* the copy of the map's first 2^bits entries */
	uint32_t bits;
	uint32_t live, used;     /* entries holding a key; and those plus deleted ones */
	int map_fd;
	uint32_t *bits_out;      /* the program's cgi_index_bits */
};
int cgi_index_init(struct cgi_index *x, int map_fd, uint32_t *bits_out);
void cgi_index_fini(struct cgi_index *x);
/* Enters (id, hier) -> slot, or moves it to slot; 0 or -errno. */
int cgi_index_put(struct cgi_index *x, uint64_t id, uint32_t hier, uint32_t slot);
void cgi_index_del(struct cgi_index *x, uint64_t id, uint32_t hier);

#define CGI_SLOTS 8192           /* containers tracked at once; past it: files */
/* A container's directory ids: one per v1 controller (enum cg_ctrl), then
 * the v2 tree's (CGI_ID_UNIFIED; hybrid hosts: PSI). */
#define CGI_ID_UNIFIED CG__CTRL_COUNT
#define CGI_NIDS (CG__CTRL_COUNT + 1)
#define CGI_NO_SLOT UINT32_MAX

/*
 * Loads the iterator and attaches it to the v1 memory, cpuacct, cpu and
 * pids hierarchies of l (those mounted) and, on a hybrid host, to the v2
 * tree (PSI), and checks its memory.stat values
 * against the file once. percpu: per-CPU usage is wanted too. Returns NULL
 * with one sentence in why when it cannot be used (pure v2 or a fixture
 * tree, no BTF, not root, an older kernel); the caller stays on the file
 * path. The result is the caller's (cgi_close).
 */
struct cgi *cgi_open(const struct cg_layout *l, bool percpu, char *why, size_t whysize);
void cgi_close(struct cgi *it);

/*
 * Walks every hierarchy once, filling the tracked containers' records.
 * Returns the number of walks run, or -errno (a failed walk leaves its
 * parts stale, so the collector reads those files).
 */
int cgi_refresh(struct cgi *it);

/*
 * Tracks a container: ids[ctrl] is the inode of its directory in each v1
 * hierarchy and ids[CGI_ID_UNIFIED] in the v2 tree (0: none). *slot CGI_NO_SLOT gets a new slot; an existing one
 * is updated (directories made anew). Returns 0 or -errno (-ENOSPC past
 * CGI_SLOTS; *slot is then CGI_NO_SLOT). cgi_untrack with the same ids
 * gives the slot back.
 */
int cgi_track(struct cgi *it, const uint64_t ids[CGI_NIDS], uint32_t *slot);
void cgi_untrack(struct cgi *it, const uint64_t ids[CGI_NIDS], uint32_t slot);

/* Whether the walks stand for file `name` of hierarchy ctrl (enum cg_ctrl,
 * or CGI_ID_UNIFIED) on this host:
 * the hierarchy is walked, memory.stat passed the start-up check, the
 * per-CPU offsets were found for the cpuacct files (and per-CPU values
 * were asked for, for cpuacct.usage_percpu). */
bool cgi_serves(const struct cgi *it, int ctrl, const char *name);
/* One line for the log: the hierarchies walked and what is left to files.
 * Writes into buf and returns it. */
const char *cgi_describe(const struct cgi *it, char *buf, size_t size);

/* The files the walks can stand for (cgi_file_id). */
enum cgi_file {
	CGF_CPUACCT_USAGE, CGF_CPUACCT_PERCPU, CGF_CPUACCT_STAT, CGF_CPU_STAT, CGF_CPU_QUOTA,
	CGF_CPU_PERIOD, CGF_CPU_SHARES, CGF_MEM_USAGE, CGF_MEM_MAX_USAGE, CGF_MEM_FAILCNT,
	CGF_MEMSW_USAGE, CGF_MEM_OOM, CGF_MEM_LIMIT, CGF_MEMSW_LIMIT, CGF_MEM_SOFT_LIMIT,
	CGF_MEM_STAT, CGF_PIDS_CURRENT, CGF_PIDS_MAX, CGF_PSI_IO, CGF_PSI_MEM, CGF_PSI_CPU,
	CGF_BLKIO_BYTES, CGF_BLKIO_IOS, CGF__COUNT
};
/* The enum cgi_file of the cgroup file name ("memory.stat"), -1 for one
 * the walks never stand for. */
int cgi_file_id(const char *name);

/*
 * The text file f (enum cgi_file) would hold for the container in slot,
 * from the last walk, as the kernel prints it (only the keys the
 * collector parses, for the files of several keys), into out. Returns its
 * length, or -1 when the last walk did not fill that part of the record
 * (read the file), or for f -1.
 */
int cgi_text(const struct cgi *it, uint32_t slot, int f, char *out, size_t size);

/* v1 cpuacct.stat's user/system split (kernel/sched/cputime.c
 * cputime_adjust), without updating prev: rtime_ns is the usage, user/sys
 * the raw tick-sampled sums, prev_* the cgroup's prev_cputime. Exported for
 * the unit test. */
void cgi_cputime_adjust(uint64_t rtime_ns, uint64_t user_ns, uint64_t sys_ns,
			uint64_t prev_u_ns, uint64_t prev_s_ns, uint64_t *ut_ns, uint64_t *st_ns);

#endif
