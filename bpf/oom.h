/*
 * oom.h - the OOM probe's ring-buffer record, shared by oom.bpf.c and its
 * loader (collectors/ebpf_oom.c): one per process the OOM killer chose.
 */
#ifndef MONITOR_BPF_OOM_H
#define MONITOR_BPF_OOM_H

#define EBPF_OOM_COMM_LEN 16
#define EBPF_OOM_PATH_DEPTH 6    /* cgroup path components kept, leaf first */
#define EBPF_OOM_NAME_LEN 96     /* per component; Docker ids need 77 */

struct ebpf_oom_event {
	__u64 time_ns;           /* CLOCK_MONOTONIC of the kill (or of the exit) */
	__u64 cgroup_id;         /* the victim's cgroup v2 id */
	__u32 pid;               /* thread group id, as the host sees it */
	__u16 depth;             /* components filled in names[] */
	__u16 truncated;         /* 1: the path has more components than kept */
	char comm[EBPF_OOM_COMM_LEN];
	/* The victim's v2 cgroup path, leaf first: names[0] is its own
	 * directory. Lets the loader name a container whose cgroup is gone
	 * by the time the record is read. */
	char names[EBPF_OOM_PATH_DEPTH][EBPF_OOM_NAME_LEN];
};

#endif
