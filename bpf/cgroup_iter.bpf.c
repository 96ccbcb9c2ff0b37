// SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0-only)
/*
 * cgroup_iter.bpf.c - the counters the cgroup collector reads every tick,
 * for every cgroup of one hierarchy in one read().
 *
 * A cgroup iterator (Linux 6.1+) walks the hierarchy below the cgroup the
 * link was made with, in pre-order; for every cgroup the loader tracks
 * (cgi_index: a container's directory in this hierarchy) this program
 * writes what the v1 memory, cpuacct, cpu and pids files would print into
 * the container's record (bpf/cgroup_iter.h): page counters, the memcg's
 * hierarchical stat items, CPU usage and times, CFS bandwidth counters,
 * the pids count, the blkio throttle policy's byte and I/O counters per
 * device; in the v2 tree of a hybrid host, the PSI totals.
 * Untracked cgroups (slices, the host's services) cost one
 * table probe. It replaces a dozen open/pread/seq_file round trips per
 * container with a few loads.
 *
 * The memcg stat items are read as they stand: memory.stat flushes the
 * per-CPU deltas first when enough are pending (mem_cgroup_flush_stats),
 * which a sleepable program could do through the css_rstat_flush kfunc
 * only with a trusted css, and cgroup->subsys[] is not one outside RCU.
 * The loader reads the hierarchy root's memory.stat before each walk
 * instead: that flushes the whole tree whenever any cgroup in it would
 * have flushed (a memcg's pending count is never above its parent's).
 *
 * Per-CPU data: BTF here does not tag cpuacct's pointers __percpu, so
 * bpf_per_cpu_ptr() refuses them, and kallsyms has no data symbols, so no
 * per-CPU variable can be named as a ksym either. A CPU's per-CPU offset
 * (__per_cpu_offset[n]) is found instead, once per walk, the way the
 * kernel keeps it: x86's per-CPU variable this_cpu_off holds it, and its
 * copy for CPU n sits at a fixed distance (from the BTF's .data..percpu
 * section, set by the loader) from CPU n's runqueue, whose address every
 * cfs_rq of the task group carries (tg->cfs_rq[n]->rq). Values are then
 * read with probe reads.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "bpf/cgroup_iter.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader before load. */
const volatile __u32 ncpu_possible = 1;  /* CPUs 0..n-1 (a contiguous mask) */
const volatile __u32 want_percpu = 0;    /* fill cgi_percpu */
/* Indexes of memcg_vmstats.state[] (the kernel maps stat items onto a
 * dense array at boot: mem_cgroup_stats_index), found by the loader. */
const volatile __u32 idx_anon_mapped = 0;
const volatile __u32 idx_file_pages = 0;
const volatile __u32 idx_file_mapped = 0;
const volatile __u32 idx_inactive_file = 0;

#define VMSTAT_MAX 64            /* bound for the indexes above */

/* Set by the loader before each walk; stamped into what a walk fills. */
__u32 cgi_walk_gen = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << CGI_INDEX_BITS_MAX);
	__type(key, __u32);
	__type(value, struct cgi_ent);
} cgi_index SEC(".maps");

/* Set by the loader: the table's size is 2^cgi_index_bits; 0: empty. */
__u32 cgi_index_bits = 0;

/* The slot of (id, hier) from cgi_index; false: not tracked. */
static __always_inline bool index_find(__u64 id, __u32 hier, __u32 *slot)
{
	__u32 bits = cgi_index_bits;
	if (bits < CGI_INDEX_BITS_MIN || bits > CGI_INDEX_BITS_MAX)
		return false;
	__u32 mask = (1u << bits) - 1, home = cgi_index_home(id, hier, bits);
	for (__u32 p = 0; p < CGI_INDEX_PROBES; p++) {
		__u32 k = (home + p) & mask;
		struct cgi_ent *e = bpf_map_lookup_elem(&cgi_index, &k);
		if (!e || e->slot1 == CGI_ENT_EMPTY)
			return false;
		if (e->cgroup_id == id && e->hierarchy_id == hier && e->slot1 != CGI_ENT_GONE) {
			*slot = e->slot1 - 1;
			return true;
		}
	}
	return false;
}

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct cgi_record);
} cgi_records SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);  /* slots * ncpu when per-CPU values are wanted */
	__type(key, __u32);
	__type(value, __u64);
} cgi_percpu SEC(".maps");

/* this_cpu_off's offset minus runqueues' in .data..percpu (the loader);
 * 0: unknown, no per-CPU values. */
const volatile __s64 rq_to_cpu_off = 0;

/* __per_cpu_offset[], filled at each walk's first cgroup (see above). */
__u64 cpu_off[CGI_MAX_CPUS];
/* 1 once cpu_off[] is trustworthy: every CPU's runqueue sat at the same
 * per-CPU address (checked), for the loader to see. */
__u32 cpu_off_ok = 0;

static __always_inline void find_cpu_offsets(void)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct task_group *tg = BPF_CORE_READ(t, se.cfs_rq, tg);
	struct cfs_rq **rqs = BPF_CORE_READ(tg, cfs_rq);
	__u64 base0 = 0;

	cpu_off_ok = 0;
	if (!rqs || !rq_to_cpu_off)
		return;
	for (__u32 cpu = 0; cpu < CGI_MAX_CPUS && cpu < ncpu_possible; cpu++) {
		struct cfs_rq *c = NULL;
		__u64 off = 0;
		bpf_probe_read_kernel(&c, sizeof(c), &rqs[cpu]);
		__u64 rq = (__u64)BPF_CORE_READ(c, rq);
		if (!rq || bpf_probe_read_kernel(&off, sizeof(off), (void *)(rq + rq_to_cpu_off)) < 0)
			return;
		/* The runqueue's per-CPU address is the same on every CPU. */
		if (cpu == 0)
			base0 = rq - off;
		else if (rq - off != base0)
			return;
		cpu_off[cpu] = off;
	}
	cpu_off_ok = 1;
}

/* The address of a per-CPU object's copy on cpu, 0 when unknown. */
static __always_inline __u64 per_cpu_addr(const void *pcp, __u32 cpu)
{
	if (!cpu_off_ok || !pcp || cpu >= CGI_MAX_CPUS)
		return 0;
	return (__u64)pcp + cpu_off[cpu];
}

/*
 * Kernel structures are read through bpf_rdonly_cast() pointers: plain
 * loads the verifier turns into fault-safe ones (BPF_PROBE_MEM), a few
 * instructions each instead of a bpf_probe_read_kernel() call.
 */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
#define KCAST(p, type) ((type *)bpf_rdonly_cast((p), bpf_core_type_id_kernel(type)))

static __always_inline __s64 stat_item(struct memcg_vmstats *vs, __u32 idx)
{
	__s64 v = 0;
	__u64 a = (__u64)vs + bpf_core_field_offset(struct memcg_vmstats, state) + idx * sizeof(v);
	if (idx < VMSTAT_MAX)
		bpf_probe_read_kernel(&v, sizeof(v), (void *)a);
	return v < 0 ? 0 : v;   /* memcg_page_state: negative per-CPU drift reads 0 */
}

static __always_inline void fill_memory(struct cgroup_subsys_state *css, struct cgi_record *r)
{
	struct mem_cgroup *m = KCAST(css, struct mem_cgroup);
	/* pointers that get arithmetic are read as plain numbers */
	struct memcg_vmstats *vs = BPF_CORE_READ(m, vmstats);

	r->mem_usage_pages = m->memory.usage.counter;
	r->mem_watermark_pages = m->memory.watermark;
	r->mem_failcnt = m->memory.failcnt;
	r->memsw_usage_pages = m->memsw.usage.counter;
	r->mem_oom_kill = m->memory_events[MEMCG_OOM_KILL].counter;
	r->mem_max_pages = m->memory.max;
	r->memsw_max_pages = m->memsw.max;
	r->mem_soft_limit_pages = m->soft_limit;
	if (vs) {
		r->mem_anon_mapped_pages = stat_item(vs, idx_anon_mapped);
		r->mem_file_pages = stat_item(vs, idx_file_pages);
		r->mem_file_mapped_pages = stat_item(vs, idx_file_mapped);
		r->mem_inactive_file_pages = stat_item(vs, idx_inactive_file);
	}
}

static __always_inline bool fill_cpuacct(struct cgroup *cg, struct cgroup_subsys_state *css,
					 struct cgi_record *r, __u32 slot)
{
	struct cpuacct *ca = KCAST(css, struct cpuacct);
	struct kernel_cpustat *stat = BPF_CORE_READ(ca, cpustat);
	u64 *usage = BPF_CORE_READ(ca, cpuusage);

	if (!cpu_off_ok)
		return false;
	r->cpu_usage_ns = r->cpu_user_ns = r->cpu_system_ns = 0;
	for (__u32 cpu = 0; cpu < CGI_MAX_CPUS && cpu < ncpu_possible; cpu++) {
		__u64 v = 0, a = per_cpu_addr(usage, cpu);
		if (a)
			bpf_probe_read_kernel(&v, sizeof(v), (void *)a);
		r->cpu_usage_ns += v;
		if (want_percpu) {
			__u32 k = slot * ncpu_possible + cpu;
			__u64 *dst = bpf_map_lookup_elem(&cgi_percpu, &k);
			if (dst)
				*dst = v;
		}
		a = per_cpu_addr(stat, cpu);
		if (!a)
			return false;
		struct kernel_cpustat *ks = KCAST((void *)a, struct kernel_cpustat);
		r->cpu_user_ns += ks->cpustat[CPUTIME_USER] + ks->cpustat[CPUTIME_NICE];
		r->cpu_system_ns += ks->cpustat[CPUTIME_SYSTEM] + ks->cpustat[CPUTIME_IRQ] +
				    ks->cpustat[CPUTIME_SOFTIRQ];
	}
	r->cpu_prev_utime_ns = cg->prev_cputime.utime;
	r->cpu_prev_stime_ns = cg->prev_cputime.stime;
	return true;
}

static __always_inline void fill_cpu(struct cgroup_subsys_state *css, struct cgi_record *r)
{
	struct task_group *tg = KCAST(css, struct task_group);

	r->cfs_nr_periods = (__u32)tg->cfs_bandwidth.nr_periods;
	r->cfs_nr_throttled = (__u32)tg->cfs_bandwidth.nr_throttled;
	r->cfs_throttled_ns = tg->cfs_bandwidth.throttled_time;
	r->cfs_quota_ns = tg->cfs_bandwidth.quota;
	r->cfs_period_ns = tg->cfs_bandwidth.period;
	r->cpu_shares_fp = tg->shares;
}

/*
 * blkio. The files print, for each blkg of the blkcg (one per device the
 * cgroup did I/O on) whose queue has the throttle policy enabled, the
 * throttle group's rwstat counters summed over the subtree
 * (blkg_rwstat_recursive_sum): per counter, aux_cnt plus the percpu_counter
 * summed as percpu_counter_sum_positive() does. The throttle policy's slot
 * (plid) in blkg->pd[] is set at registration and is a data symbol, not in
 * kallsyms: it is found here by what only that policy's data holds, the
 * queue's throtl_data (tg->td == q->td). The loader checks the result
 * against the root's own files once at start-up (blk_self_only).
 */

/* Set by the loader for its start-up check only: fill a cgroup with
 * children too, with its own counters only (what the non-recursive files
 * print: blkg_rwstat_read(), without aux_cnt). */
__u32 blk_self_only = 0;

/*
 * The Read and Write counters of the throttle group at tg, bytes and I/Os,
 * as blkg_rwstat_read_counter() gives them: aux_cnt (what dead children
 * left, which the non-recursive files leave out) plus the percpu_counter
 * summed as percpu_counter_sum_positive() does, but without its lock.
 * False when a fold (under the lock: count += a CPU's share, then that
 * share -= it) may have been seen half done: a lock held at either end,
 * or a count that moved. One pass over the CPUs for all four.
 */
static __always_inline bool tg_read(__u64 tg, struct cgi_blk_dev *d)
{
	struct blkg_rwstat *rs[2] = {
		KCAST((void *)(tg + bpf_core_field_offset(struct throtl_grp, stat_bytes)),
		      struct blkg_rwstat),
		KCAST((void *)(tg + bpf_core_field_offset(struct throtl_grp, stat_ios)),
		      struct blkg_rwstat),
	};
	__s64 count[4], sum[4] = { 0, 0, 0, 0 };
	__u64 pcp[4];
	__u32 locks = 0;

	for (int k = 0; k < 4; k++) {
		struct percpu_counter *c = &rs[k >> 1]->cpu_cnt[k & 1];
		locks |= c->lock.raw_lock.val.counter;
		count[k] = c->count;
		pcp[k] = (__u64)c->counters;
	}
	for (__u32 cpu = 0; cpu < CGI_MAX_CPUS && cpu < ncpu_possible; cpu++) {
		for (int k = 0; k < 4; k++) {
			__s32 v = 0;
			__u64 a = per_cpu_addr((void *)pcp[k], cpu);
			if (!a || bpf_probe_read_kernel(&v, sizeof(v), (void *)a) < 0)
				return false;
			sum[k] += v;
		}
	}
	for (int k = 0; k < 4; k++) {
		struct percpu_counter *c = &rs[k >> 1]->cpu_cnt[k & 1];
		locks |= c->lock.raw_lock.val.counter;
		if (c->count != count[k])
			return false;
		sum[k] += count[k];
		__u64 v = sum[k] < 0 ? 0 : (__u64)sum[k];
		if (!blk_self_only)
			v += (__u64)rs[k >> 1]->aux_cnt[k & 1].counter;
		if (k < 2)
			d->bytes[k] = v;
		else
			d->ios[k - 2] = v;
	}
	return !locks;
}

/* The throttle group of blkg g (its queue's throtl_data in it), 0: none. */
static __always_inline __u64 throttle_group(struct blkcg_gq *g, struct request_queue *q)
{
	__u64 td = (__u64)q->td, pols = q->blkcg_pols[0], found = 0;

	if (!td)
		return 0;
	for (__u32 p = 0; p < CGI_BLK_POLS; p++) {
		if (!(pols & (1ull << p)))
			continue;
		__u64 pd = (__u64)g->pd[p];
		struct throtl_grp *tg = KCAST((void *)pd, struct throtl_grp);
		if (pd && (__u64)tg->td == td) {
			if (found)
				return 0;        /* two: not the one we know */
			found = pd;
		}
	}
	return found;
}

static __always_inline bool fill_blkio(struct cgroup_subsys_state *css, struct cgi_record *r)
{
	/* A kernel without blk-throttle (or with other names): the files, and
	 * the program still loads (the checks are constants at load time). */
	if (!bpf_core_type_exists(struct throtl_grp) ||
	    !bpf_core_field_exists(struct request_queue, td) ||
	    !bpf_core_field_exists(struct request_queue, disk) ||
	    !bpf_core_field_exists(struct blkcg_gq, online) || !cpu_off_ok)
		return false;

	struct blkcg *bc = KCAST(css, struct blkcg);
	__u64 children = (__u64)css + bpf_core_field_offset(struct cgroup_subsys_state, children);
	__u64 node = (__u64)bc->blkg_list.first;
	__u32 n = 0;

	if ((__u64)bc->css.children.next != children && !blk_self_only)
		return false;    /* the files sum the subtree: left to them */
	for (int i = 0; i < CGI_BLK_FOLLOW && node; i++) {
		struct blkcg_gq *g = KCAST((void *)(node - bpf_core_field_offset(struct blkcg_gq,
								       blkcg_node)),
					   struct blkcg_gq);
		struct request_queue *q = g->q;
		node = (__u64)g->blkcg_node.next;
		if (!q)
			return false;
		__u64 tg = throttle_group(g, q);
		if (!tg) {
			/* the policy off on this queue: no line; on but not
			 * recognised: the files */
			if (q->blkcg_pols[0] && q->td)
				return false;
			continue;
		}
		struct gendisk *disk = q->disk;
		struct backing_dev_info *bdi = disk ? disk->bdi : NULL;
		if (!disk)
			continue;        /* blkg_dev_name() NULL: no line */
		if (!bdi || !bdi->dev || n >= CGI_BLK_DEVS)
			return false;    /* "(unknown)", or too many devices */
		struct cgi_blk_dev *d = &r->blk[n];
		long len = bpf_probe_read_kernel_str(d->name, sizeof(d->name), bdi->dev_name);
		if (len <= 1 || len >= (long)sizeof(d->name))
			return false;
		if (!g->online) {
			/* blkg_rwstat_recursive_sum() passes over it: zeros */
			d->bytes[0] = d->bytes[1] = d->ios[0] = d->ios[1] = 0;
		} else if (!tg_read(tg, d)) {
			return false;
		}
		n++;
	}
	if (node)
		return false;            /* longer than we follow */
	r->blk_ndevs = n;
	return true;
}

SEC("iter/cgroup")
int cgroup_dump(struct bpf_iter__cgroup *ctx)
{
	struct cgroup *cg = ctx->cgroup;
	struct cgroup_subsys_state *css;

	if (!cg)
		return 0;        /* the end of the walk */
	if (ctx->meta->seq_num == 0)
		find_cpu_offsets();
	__u32 hier = cg->root->hierarchy_id;
	__u32 s;
	if (!index_find(cg->kn->id, hier, &s))
		return 0;        /* not a container's */
	struct cgi_record *r = bpf_map_lookup_elem(&cgi_records, &s);
	if (!r)
		return 0;
	__u32 gen = cgi_walk_gen;
	if ((css = cg->subsys[memory_cgrp_id])) {
		fill_memory(css, r);
		r->gen[CGI_MEMORY] = gen;
	}
	if ((css = cg->subsys[cpuacct_cgrp_id]) && fill_cpuacct(cg, css, r, s))
		r->gen[CGI_CPUACCT] = gen;
	if ((css = cg->subsys[cpu_cgrp_id])) {
		fill_cpu(css, r);
		r->gen[CGI_CPU] = gen;
	}
	if (hier == 0) {
		/* The v2 tree: PSI as its files print it, the totals of the
		 * kernel's last aggregation (see the loader on staleness). */
		struct psi_group *psi = KCAST(cg->psi, struct psi_group);
		if (psi) {
			for (int k = 0; k < 6; k++)
				r->psi_total_ns[k] = psi->total[k];
			r->gen[CGI_UNIFIED] = gen;
		}
		return 0;
	}
	if (bpf_core_enum_value_exists(enum cgroup_subsys_id, io_cgrp_id) &&
	    (css = cg->subsys[bpf_core_enum_value(enum cgroup_subsys_id, io_cgrp_id)]) &&
	    fill_blkio(css, r))
		r->gen[CGI_BLKIO] = gen;
	if ((css = cg->subsys[pids_cgrp_id])) {
		struct pids_cgroup *p = KCAST(css, struct pids_cgroup);
		r->pids_current = p->counter.counter;
		r->pids_limit = p->limit.counter;
		r->gen[CGI_PIDS] = gen;
	}
	return 0;
}
