/*
 * cgroup_iter.h - the cgroup iterator's maps, shared by cgroup_iter.bpf.c
 * and its loader (collectors/cgroup_iter.c).
 *
 * A cgroup iterator's output must fit one read() (the kernel refuses to
 * resume a cgroup walk: -EOPNOTSUPP past its 32 KiB buffer, ~170 records),
 * so the program writes nothing to it: the loader gives each container a
 * slot, enters the container's cgroup in every walked hierarchy into
 * cgi_index, and the program writes each tracked cgroup's counters into
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
enum cgi_part { CGI_MEMORY, CGI_CPUACCT, CGI_CPU, CGI_PIDS, CGI_UNIFIED, CGI_BLKIO, CGI__PARTS };

/*
 * blkio: one entry per device line of blkio.throttle.io_service_bytes_recursive
 * and io_serviced_recursive, in the file's order (the blkcg's blkg list).
 * A container with more device lines than CGI_BLK_DEVS, more blkgs than
 * CGI_BLK_FOLLOW, or with child cgroups (the files sum the subtree), is
 * left to the files.
 */
#define CGI_BLK_DEVS 4
#define CGI_BLK_FOLLOW 16        /* blkgs followed (one per device: the root has one for each) */
#define CGI_BLK_NAME 24          /* "major:minor" and its NUL; longer: the files */
#define CGI_BLK_POLS 6           /* BLKCG_MAX_POLS: a blkg's policy data slots */
struct cgi_blk_dev {
	char name[CGI_BLK_NAME]; /* the backing device's name, as the file prints it */
	__u64 bytes[2];          /* BLKG_RWSTAT_READ, _WRITE of the throttle policy's stat_bytes */
	__u64 ios[2];            /* and of stat_ios */
};


/*
 * cgi_index: the tracked directories, (kernfs id, hierarchy) -> slot, as an
 * open-addressing table with linear probing of 2^cgi_index_bits entries,
 * written by the loader (collectors/cgroup_index.c) between walks, on the
 * thread that runs them. It replaced a BPF hash map whose bucket array,
 * sized for every slot of every hierarchy (512 KiB), made each visited
 * cgroup's lookup a cache and TLB miss or two: a tenth of the tick. This
 * table is at most half full and as big as the containers tracked need
 * (16 KiB at 100 containers), so it stays in cache from walk to walk.
 */
struct cgi_ent {
	__u64 cgroup_id;
	__u32 hierarchy_id;
	__u32 slot1;             /* the slot + 1; CGI_ENT_EMPTY (as the array starts), CGI_ENT_GONE */
};
#define CGI_ENT_EMPTY 0u
#define CGI_ENT_GONE 0xffffffffu
#define CGI_INDEX_BITS_MIN 8
#define CGI_INDEX_BITS_MAX 17    /* 131072 entries: 2x every slot of every part */
#define CGI_INDEX_PROBES 32      /* the loader grows the table past this */

/* The first entry to probe for (id, hierarchy) in a table of 2^bits. */
static inline __attribute__((always_inline)) __u32 cgi_index_home(__u64 id, __u32 hier,
								   __u32 bits)
{
	__u64 h = (id ^ ((__u64)hier << 56)) * 0x9E3779B97F4A7C15ull;
	return (__u32)(h >> (64 - bits));
}

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
	/* blkio: the devices of blk[] in use */
	__u32 blk_ndevs;
	__u32 blk_pad;
	struct cgi_blk_dev blk[CGI_BLK_DEVS];
};

#endif
