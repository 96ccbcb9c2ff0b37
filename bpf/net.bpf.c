// SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0-only)
/*
 * net.bpf.c - bytes and packets per cgroup, from cgroup_skb programs
 * attached once at the root of the cgroup v2 tree.
 *
 * Both programs run for every skb a full socket of any cgroup below the root
 * sends or receives (softirq context on ingress, so the owner comes from the
 * skb's socket, never from current). skb->len counts from the network
 * header; a GSO skb carries several wire packets, counted as gso_segs.
 * Both always return 1: accounting only, never a verdict.
 *
 * When a v2 cgroup is removed its entry goes with it (cgroup_rmdir), so
 * the map holds live cgroups only; LRU eviction is the backstop.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "bpf/common.bpf.h"
#include "bpf/net.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 10240);      /* the loader sets ebpf.max_cgroups */
	__type(key, __u64);
	__type(value, struct ebpf_net_value);
} net_stats SEC(".maps");

static __always_inline void account(struct __sk_buff *skb, bool egress)
{
	__u64 id = bpf_skb_cgroup_id(skb);
	struct ebpf_net_value zero = {}, *v;
	__u32 segs = skb->gso_segs;

	v = lookup_or_init(&net_stats, &id, &zero);
	if (!v)
		return;
	/* Per-CPU value: plain adds, nobody else writes this copy. */
	if (egress) {
		v->tx_bytes += skb->len;
		v->tx_packets += segs ? segs : 1;
	} else {
		v->rx_bytes += skb->len;
		v->rx_packets += segs ? segs : 1;
	}
}

SEC("cgroup_skb/ingress")
int net_ingress(struct __sk_buff *skb)
{
	account(skb, false);
	return 1;
}

SEC("cgroup_skb/egress")
int net_egress(struct __sk_buff *skb)
{
	account(skb, true);
	return 1;
}

/* cgroup_rmdir(struct cgroup *cgrp, const char *path) */
SEC("raw_tp/cgroup_rmdir")
int BPF_PROG(net_rmdir_raw, struct cgroup *cgrp, const char *path)
{
	__u64 id;

	if (!cgroup_is_v2(cgrp))
		return 0;
	id = BPF_CORE_READ(cgrp, kn, id);
	bpf_map_delete_elem(&net_stats, &id);
	return 0;
}

SEC("tp/cgroup/cgroup_rmdir")
int net_rmdir_tp(struct trace_event_raw_cgroup *ctx)
{
	__u64 id = ctx->id;

	if (ctx->root != 0)
		return 0;
	bpf_map_delete_elem(&net_stats, &id);
	return 0;
}
