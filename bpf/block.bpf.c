// SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0-only)
/*
 * block.bpf.c - block I/O latency per cgroup, device and direction, from
 * block tracepoints (no kprobes).
 *
 * Three handlers, attached by the loader to tracepoints it chooses:
 *   owner  (block_io_start where it exists, else block_rq_insert): runs in
 *          the submitter's context, so current's cgroup is the request's
 *          owner; remembered per request.
 *   start  (block_rq_issue by default: device time; block_rq_insert adds
 *          the scheduler's queue): the time, and the owner when the owner
 *          handler did not see the request (requests issued directly). The
 *          request and its bytes are counted here, at its first start (a
 *          requeued request starts again and is not counted twice).
 *   done   (block_rq_complete): latency into the histogram of
 *          (owner, disk, read/write); runs in IRQ context, so it never
 *          looks at current.
 * Bytes and requests are counted at the start, not at the completion,
 * because the kernel does not report every completion: on the Linux 6.18
 * guest (virtio-blk) this was found on, about 1 request in 400 (and up to
 * 7 of 16 in a burst under load) finished with neither block_rq_complete
 * nor block_io_done, nor even irq_handler_entry for the disk's interrupt,
 * seen by perf and by this probe alike, while the O_DIRECT read or write
 * that made it returned. Such a request has no latency sample; its entry
 * stays until its struct request is used again (the owner handler then
 * starts it afresh) or the LRU map drops it. Without an owner handler
 * (ebpf.block.start set to the owner tracepoint itself), a request that
 * reuses such an entry is taken for a requeue and not counted.
 * Requests are keyed by their struct request address (raw_tp) or by
 * (dev, sector) (classic tracepoints, which hide the request pointer).
 * Operations other than read and write (flush, discard) are not counted.
 *
 * Buffered writes are issued by the flusher threads and count against the
 * cgroup of whoever issues them (usually the root); O_DIRECT and reads are
 * attributed to the container that asked. The kernel's own per-cgroup byte
 * and op counts are in io.stat / blkio.throttle.* (the cgroup collector).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "bpf/common.bpf.h"
#include "bpf/block.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define MINORBITS 20

struct inflight_key {
	__u64 a;                 /* raw: struct request *; classic: dev */
	__u64 b;                 /* raw: 0; classic: sector */
};

struct inflight {
	__u64 start_ns;          /* 0 until the start handler ran */
	__u64 cgroup_id;
	__u32 bytes;
	__u32 dev;
	__u32 op;
	__u32 counted;           /* 1 once the start handler counted it */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);      /* ebpf.max_cgroups x disks */
	__type(key, struct ebpf_block_key);
	__type(value, struct ebpf_block_value);
} block_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);      /* ebpf.max_inflight_io */
	__type(key, struct inflight_key);
	__type(value, struct inflight);
} block_inflight SEC(".maps");

/* ---- request fields (raw_tp) ---- */

struct request___old {
	struct gendisk *rq_disk;         /* before 5.17 */
};

static __always_inline __u32 rq_dev(const struct request *rq)
{
	struct gendisk *disk;

	if (bpf_core_field_exists(((struct request___old *)0)->rq_disk))
		disk = BPF_CORE_READ((struct request___old *)rq, rq_disk);
	else
		disk = BPF_CORE_READ(rq, q, disk);
	if (!disk)
		return 0;
	return ((__u32)BPF_CORE_READ(disk, major) << MINORBITS) |
	       (__u32)BPF_CORE_READ(disk, first_minor);
}

/* EBPF_BLOCK_READ, EBPF_BLOCK_WRITE, or -1 for anything else. */
static __always_inline int rq_op(const struct request *rq)
{
	__u32 op = BPF_CORE_READ(rq, cmd_flags) & 0xff;   /* REQ_OP_MASK */

	if (op == 0)
		return EBPF_BLOCK_READ;
	if (op == 1)
		return EBPF_BLOCK_WRITE;
	return -1;
}

/* ---- the three steps, shared by both attach styles ---- */

static __always_inline void on_owner(const struct inflight_key *k, __u32 dev, int op, __u32 bytes)
{
	struct inflight f = {};

	if (op < 0)
		return;
	f.cgroup_id = bpf_get_current_cgroup_id();
	f.bytes = bytes;
	f.dev = dev;
	f.op = (__u32)op;
	bpf_map_update_elem(&block_inflight, k, &f, BPF_ANY);
}

/* The request into its (owner, disk, op) row: one request and its bytes. */
static __always_inline void count_request(const struct inflight *f)
{
	static const struct ebpf_block_value zero;
	struct ebpf_block_key sk = {};
	struct ebpf_block_value *v;

	sk.cgroup_id = f->cgroup_id;
	sk.dev = f->dev;
	sk.op = f->op;
	v = lookup_or_init(&block_stats, &sk, &zero);
	if (v) {
		__sync_fetch_and_add(&v->requests, 1);
		__sync_fetch_and_add(&v->bytes, f->bytes);
	}
}

static __always_inline void on_start(const struct inflight_key *k, __u32 dev, int op, __u32 bytes)
{
	struct inflight *f, nf = {};

	if (op < 0)
		return;
	f = bpf_map_lookup_elem(&block_inflight, k);
	if (f) {
		f->start_ns = bpf_ktime_get_ns();
		f->bytes = bytes;
		if (!f->counted) {
			f->counted = 1;
			count_request(f);
		}
		return;
	}
	nf.start_ns = bpf_ktime_get_ns();
	nf.cgroup_id = bpf_get_current_cgroup_id();
	nf.bytes = bytes;
	nf.dev = dev;
	nf.op = (__u32)op;
	nf.counted = 1;
	count_request(&nf);
	bpf_map_update_elem(&block_inflight, k, &nf, BPF_ANY);
}

static __always_inline void on_done(const struct inflight_key *k)
{
	static const struct ebpf_block_value zero;
	struct ebpf_block_key sk = {};
	struct ebpf_block_value *v;
	struct inflight *f;
	__u64 now;

	f = bpf_map_lookup_elem(&block_inflight, k);
	if (!f)
		return;
	if (!f->start_ns)
		goto out;
	now = bpf_ktime_get_ns();
	sk.cgroup_id = f->cgroup_id;
	sk.dev = f->dev;
	sk.op = f->op;
	v = lookup_or_init(&block_stats, &sk, &zero);
	if (v)
		hist_add(&v->lat, now > f->start_ns ? now - f->start_ns : 0);
out:
	bpf_map_delete_elem(&block_inflight, k);
}

/* ---- raw tracepoints: (struct request *rq, ...) ---- */

SEC("raw_tp")
int BPF_PROG(block_owner_raw, struct request *rq)
{
	struct inflight_key k = { (__u64)(unsigned long)rq, 0 };

	on_owner(&k, rq_dev(rq), rq_op(rq), BPF_CORE_READ(rq, __data_len));
	return 0;
}

SEC("raw_tp")
int BPF_PROG(block_start_raw, struct request *rq)
{
	struct inflight_key k = { (__u64)(unsigned long)rq, 0 };

	on_start(&k, rq_dev(rq), rq_op(rq), BPF_CORE_READ(rq, __data_len));
	return 0;
}

SEC("raw_tp")
int BPF_PROG(block_done_raw, struct request *rq)
{
	struct inflight_key k = { (__u64)(unsigned long)rq, 0 };

	on_done(&k);
	return 0;
}

/* ---- classic tracepoints: block_rq / block_rq_completion records ---- */

/* 'R' or 'W' after an optional 'F' (preflush) in rwbs; -1 otherwise. */
static __always_inline int rwbs_op(const char *rwbs)
{
	char c = rwbs[0] == 'F' ? rwbs[1] : rwbs[0];

	if (c == 'R')
		return EBPF_BLOCK_READ;
	if (c == 'W')
		return EBPF_BLOCK_WRITE;
	return -1;
}

SEC("tp")
int block_owner_tp(struct trace_event_raw_block_rq *ctx)
{
	struct inflight_key k = { ctx->dev, ctx->sector };
	char rwbs[4];

	bpf_core_read(rwbs, sizeof(rwbs), &ctx->rwbs);
	on_owner(&k, ctx->dev, rwbs_op(rwbs), ctx->bytes);
	return 0;
}

SEC("tp")
int block_start_tp(struct trace_event_raw_block_rq *ctx)
{
	struct inflight_key k = { ctx->dev, ctx->sector };
	char rwbs[4];

	bpf_core_read(rwbs, sizeof(rwbs), &ctx->rwbs);
	on_start(&k, ctx->dev, rwbs_op(rwbs), ctx->bytes);
	return 0;
}

SEC("tp")
int block_done_tp(struct trace_event_raw_block_rq_completion *ctx)
{
	struct inflight_key k = { ctx->dev, ctx->sector };

	on_done(&k);
	return 0;
}

/* ---- cleanup: a removed v2 cgroup takes its histograms along ---- */

static long drop_cgroup(void *map, const struct ebpf_block_key *key, void *val, __u64 *id)
{
	if (key->cgroup_id == *id)
		bpf_map_delete_elem(map, key);
	return 0;
}

SEC("raw_tp/cgroup_rmdir")
int BPF_PROG(block_rmdir_raw, struct cgroup *cgrp)
{
	__u64 id;

	if (!cgroup_is_v2(cgrp))
		return 0;
	id = BPF_CORE_READ(cgrp, kn, id);
	bpf_for_each_map_elem(&block_stats, drop_cgroup, &id, 0);
	return 0;
}

struct tp_cgroup {
	__u64 common;
	int root;
	int level;
	__u64 id;
};

SEC("tp/cgroup/cgroup_rmdir")
int block_rmdir_tp(struct tp_cgroup *ctx)
{
	__u64 id = ctx->id;

	if (ctx->root != 0)
		return 0;
	bpf_for_each_map_elem(&block_stats, drop_cgroup, &id, 0);
	return 0;
}
