/*
 * cgroup_iter.h - the cgroup iterator's maps, shared by cgroup_iter.bpf.c
 * and its loader (collectors/cgroup_iter.c).
 *
 * A cgroup iterator's output must fit one read() (the kernel refuses to
 * resume a cgroup walk: -EOPNOTSUPP past its 32 KiB buffer, ~170 records),
 * so the program writes nothing to it: the loader gives each container a
 * slot, enters the container's cgroup in every walked hierarchy into
 * cgi_slots, and the program writes each tracked cgroup's counters into
 * the container's record in cgi_records, a memory-mapped array the loader
 * reads in place. Fields hold the kernel's own counters in its own units
 * (pages, nanoseconds); the loader turns them into the text of the cgroup
 * files they stand for.
 */
#ifndef MONITOR_BPF_CGROUP_ITER_H
#define MONITOR_BPF_CGROUP_ITER_H

#define CGI_MAX_CPUS 1024        /* more possible CPUs: the iterator is not used */

/* The walked hierarchies (the v1 ones, and the v2 tree of a hybrid host
 * for PSI): index of cgi_record.gen. */
enum cgi_part { CGI_MEMORY, CGI_CPUACCT, CGI_CPU, CGI_PIDS, CGI_UNIFIED, CGI__PARTS };

/* cgi_slots' key: a cgroup directory is its kernfs id within its hierarchy. */
struct cgi_key {
	__u64 cgroup_id;         /* kernfs id: the directory's inode number */
	__u32 hierarchy_id;      /* /proc/cgroups' hierarchy column; 0: the v2 tree */
	__u32 pad;
};

struct cgi_record {
	/* The walk (cgi_walk_gen at its start) that last filled each part. */
	__u32 gen[CGI__PARTS];
	/* memory (v1 memcg): page counters, and hierarchical stat items in pages */
	__u64 mem_usage_pages;
	__u64 mem_watermark_pages;
	__u64 mem_failcnt;
	__u64 memsw_usage_pages;
	__u64 mem_oom_kill;
	__s64 mem_anon_mapped_pages;   /* memory.stat total_rss */
	__s64 mem_file_pages;          /* total_cache */
	__s64 mem_file_mapped_pages;   /* total_mapped_file */
	__s64 mem_inactive_file_pages; /* total_inactive_file */
	/* cpuacct: sums over possible CPUs, and the cgroup's prev_cputime;
	 * per-CPU usage in cgi_percpu[slot * ncpu + cpu] when asked for */
	__u64 cpu_usage_ns;
	__u64 cpu_user_ns;       /* CPUTIME_USER + CPUTIME_NICE */
	__u64 cpu_system_ns;     /* CPUTIME_SYSTEM + IRQ + SOFTIRQ */
	__u64 cpu_prev_utime_ns;
	__u64 cpu_prev_stime_ns;
	/* cpu: CFS bandwidth */
	__u64 cfs_nr_periods;
	__u64 cfs_nr_throttled;
	__u64 cfs_throttled_ns;
	/* settings: page_counter max (memory, memsw), soft limit, CFS quota
	 * (~0: none) and period, shares (fixed point), pids limit */
	__u64 mem_max_pages;
	__u64 memsw_max_pages;
	__u64 mem_soft_limit_pages;
	__u64 cfs_quota_ns;
	__u64 cfs_period_ns;
	__u64 cpu_shares_fp;
	__s64 pids_limit;
	/* pids */
	__u64 pids_current;
	/* PSI of the v2 cgroup: psi_group.total[PSI_AVGS][], ns: io some, io
	 * full, memory some, memory full, cpu some, cpu full */
	__u64 psi_total_ns[6];
};

#endif
