/*
 * cgroup_iter.h - the cgroup iterator's record, shared by cgroup_iter.bpf.c
 * and its loader (collectors/cgroup_iter.c). One read() of the iterator
 * gives one record per cgroup of a hierarchy, each followed by its per-CPU
 * usage values (ncpu of them). Fields hold the kernel's own counters in its
 * own units (pages, nanoseconds); the loader turns them into the text of the
 * cgroup files they stand for.
 */
#ifndef MONITOR_BPF_CGROUP_ITER_H
#define MONITOR_BPF_CGROUP_ITER_H

#define CGI_MAX_CPUS 1024        /* more possible CPUs: the iterator is not used */

/* Which parts of a record are filled: the controllers of its hierarchy. */
#define CGI_HAVE_MEMORY  (1u << 0)
#define CGI_HAVE_CPUACCT (1u << 1)
#define CGI_HAVE_CPU     (1u << 2)
#define CGI_HAVE_PIDS    (1u << 3)

struct cgi_record {
	__u64 cgroup_id;         /* kernfs id: the directory's inode number */
	__u32 have;              /* CGI_HAVE_* */
	__u32 ncpu;              /* __u64 per-CPU usage values after the record */
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
	/* cpuacct: sums over possible CPUs, and the cgroup's prev_cputime */
	__u64 cpu_user_ns;       /* CPUTIME_USER + CPUTIME_NICE */
	__u64 cpu_system_ns;     /* CPUTIME_SYSTEM + IRQ + SOFTIRQ */
	__u64 cpu_prev_utime_ns;
	__u64 cpu_prev_stime_ns;
	/* cpu: CFS bandwidth */
	__u64 cfs_nr_periods;
	__u64 cfs_nr_throttled;
	__u64 cfs_throttled_ns;
	/* pids */
	__u64 pids_current;
};

#endif
