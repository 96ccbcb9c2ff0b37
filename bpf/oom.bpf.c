// SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0-only)
/*
 * oom.bpf.c - OOM kills as they happen, from oom:mark_victim, one record per
 * victim on a ring buffer.
 *
 * Since Linux 6.11 (Carlos Galo's extension) the raw tracepoint passes the
 * victim's task_struct, and the record is written right there: pid, comm and
 * cgroup come from the victim, not from current (the allocating task that
 * ran into the limit). Older kernels pass only the pid; then the pid is
 * remembered and the record written when that process exits
 * (sched_process_exit runs in the victim's own context), as Coroot does.
 * The loader picks the variant from the tracepoint's BTF signature.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "bpf/common.bpf.h"
#include "bpf/oom.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} oom_events SEC(".maps");

/* pids marked as victims, waiting for their exit (pid-only kernels) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} oom_victims SEC(".maps");

/* Records the ring buffer had no room for (read by the loader). */
__u64 oom_lost = 0;

struct kernfs_node___old {
	struct kernfs_node *parent;      /* renamed __parent in 6.15 */
};

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(((struct kernfs_node___old *)0)->parent))
		return BPF_CORE_READ((struct kernfs_node___old *)kn, parent);
	return BPF_CORE_READ(kn, __parent);
}

/* Fills the record's cgroup fields from a v2 cgroup. */
static __always_inline void fill_cgroup(struct ebpf_oom_event *e, struct cgroup *cgrp)
{
	struct kernfs_node *kn = BPF_CORE_READ(cgrp, kn);
	int i;

	e->cgroup_id = BPF_CORE_READ(kn, id);
	e->depth = 0;
	e->truncated = 0;
	for (i = 0; i < EBPF_OOM_PATH_DEPTH; i++) {
		struct kernfs_node *parent = kn_parent(kn);

		/* the root's own name ("/") is not a path component */
		if (!parent)
			break;
		bpf_probe_read_kernel_str(e->names[i], EBPF_OOM_NAME_LEN, BPF_CORE_READ(kn, name));
		e->depth = i + 1;
		kn = parent;
	}
	e->truncated = i == EBPF_OOM_PATH_DEPTH && kn_parent(kn) != NULL;
}

static __always_inline void submit(struct task_struct *task)
{
	struct ebpf_oom_event *e = bpf_ringbuf_reserve(&oom_events, sizeof(*e), 0);

	if (!e) {
		__sync_fetch_and_add(&oom_lost, 1);
		return;
	}
	e->time_ns = bpf_ktime_get_ns();
	e->pid = BPF_CORE_READ(task, tgid);
	BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
	fill_cgroup(e, BPF_CORE_READ(task, cgroups, dfl_cgrp));
	bpf_ringbuf_submit(e, 0);
}

/* 6.11+: mark_victim(struct task_struct *task, uid_t uid) */
SEC("raw_tp/mark_victim")
int BPF_PROG(oom_victim_task_raw, struct task_struct *task)
{
	submit(task);
	return 0;
}

/* before 6.11: mark_victim(int pid) */
SEC("raw_tp/mark_victim")
int BPF_PROG(oom_victim_pid_raw, int pid)
{
	__u32 p = (__u32)pid;
	__u8 one = 1;

	bpf_map_update_elem(&oom_victims, &p, &one, BPF_ANY);
	return 0;
}

struct tp_mark_victim {
	__u64 common;
	int pid;
};

SEC("tp/oom/mark_victim")
int oom_victim_tp(struct tp_mark_victim *ctx)
{
	__u32 p = (__u32)ctx->pid;
	__u8 one = 1;

	bpf_map_update_elem(&oom_victims, &p, &one, BPF_ANY);
	return 0;
}

static __always_inline void on_exit(void)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, pid = (__u32)id;

	/* the whole process: its main thread's exit */
	if (tgid != pid || !bpf_map_lookup_elem(&oom_victims, &tgid))
		return;
	bpf_map_delete_elem(&oom_victims, &tgid);
	submit((struct task_struct *)bpf_get_current_task());
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(oom_exit_raw)
{
	on_exit();
	return 0;
}

SEC("tp/sched/sched_process_exit")
int oom_exit_tp(void *ctx)
{
	on_exit();
	return 0;
}
