/*
 * cgroup_iter.h - private to collectors/: the cgroup iterator (loader
 * cgroup_iter.c, kernel program bpf/cgroup_iter.bpf.c) as the cgroup
 * collector (cgroup.c) uses it.
 *
 * One walk per v1 hierarchy per tick gives the counters of every cgroup in
 * it; the collector then takes a container's hot files from the walk's
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

/*
 * Loads the iterator and attaches it to the v1 memory, cpuacct, cpu and
 * pids hierarchies of l (those mounted), and checks its memory.stat values
 * against the file once. Returns NULL with one sentence in why when it
 * cannot be used (pure v2 or a fixture tree, no BTF, not root, an older
 * kernel); the caller stays on the file path. The result is the caller's
 * (cgi_close).
 */
struct cgi *cgi_open(const struct cg_layout *l, char *why, size_t whysize);
void cgi_close(struct cgi *it);

/*
 * Walks every hierarchy once; the records replace the last walk's.
 * Returns the number of walks read, or -errno (a failed walk's records
 * are empty and its lookups miss, so the collector reads files).
 */
int cgi_refresh(struct cgi *it);

/* The last walk's record of the cgroup whose directory in hierarchy ctrl
 * (CG_MEMORY, CG_CPUACCT, CG_CPU, CG_PIDS) has inode id; NULL when the walk
 * did not see it. Valid until the next refresh. */
const struct cgi_record *cgi_find(const struct cgi *it, enum cg_ctrl ctrl, uint64_t id);
/* The per-CPU usage values (ns) after a cpuacct record: r->ncpu of them. */
static inline const uint64_t *cgi_percpu(const struct cgi_record *r)
{
	return (const uint64_t *)(r + 1);
}
/* Whether the walks stand for file `name` of hierarchy ctrl on this host:
 * the hierarchy is walked, and memory.stat passed the start-up check, and
 * the per-CPU offsets were found for the cpuacct files. */
bool cgi_serves(const struct cgi *it, int ctrl, const char *name);
/* One line for the log: the hierarchies walked and what is left to files.
 * Writes into buf and returns it. */
const char *cgi_describe(const struct cgi *it, char *buf, size_t size);

/*
 * The text the file `name` of hierarchy ctrl would hold, from r, as the
 * kernel prints it (only the keys the collector parses, for the files of
 * several keys), into out. Returns its length, or -1 when r cannot stand
 * for that file.
 */
int cgi_file_text(const struct cgi *it, const struct cgi_record *r, const char *name, char *out,
		  size_t size);

/* v1 cpuacct.stat's user/system split (kernel/sched/cputime.c
 * cputime_adjust), without updating prev: rtime_ns is the usage, user/sys
 * the raw tick-sampled sums, prev_* the cgroup's prev_cputime. Exported for
 * the unit test. */
void cgi_cputime_adjust(uint64_t rtime_ns, uint64_t user_ns, uint64_t sys_ns,
			uint64_t prev_u_ns, uint64_t prev_s_ns, uint64_t *ut_ns, uint64_t *st_ns);

#endif
