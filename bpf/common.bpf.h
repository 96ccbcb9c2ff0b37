/*
 * common.bpf.h - helpers the kernel programs share: the histogram update,
 * lookup-or-create for per-cgroup maps, and a socket's own cgroup id.
 * Kernel side only (includes vmlinux.h first).
 */
#ifndef MONITOR_BPF_COMMON_BPF_H
#define MONITOR_BPF_COMMON_BPF_H

#include "bpf/common.h"

/* Bit length of v: 0 for 0, k for 2^(k-1) <= v < 2^k. Branch-light. */
static __always_inline __u64 bit_len(__u64 v)
{
	__u64 r = 0, s;

	s = (v > 0xFFFFFFFFULL) << 5; v >>= s; r |= s;
	s = (v > 0xFFFF) << 4; v >>= s; r |= s;
	s = (v > 0xFF) << 3; v >>= s; r |= s;
	s = (v > 0xF) << 2; v >>= s; r |= s;
	s = (v > 0x3) << 1; v >>= s; r |= s;
	r |= (v >> 1);
	return v ? r + 1 : 0;
}

/* Adds one latency sample; atomic, so shared (not per-CPU) values are safe. */
static __always_inline void hist_add(struct ebpf_hist *h, __u64 ns)
{
	/* 64-bit, and clamped right before use: the verifier must see the
	 * bound on the register that indexes the array. */
	__u64 slot = bit_len(ns / 1000);

	if (slot >= EBPF_HIST_SLOTS)
		slot = EBPF_HIST_SLOTS - 1;
	__sync_fetch_and_add(&h->slots[slot], 1);
	__sync_fetch_and_add(&h->sum_ns, ns);
}

/* The value for key, created zeroed when missing (another CPU may win the
 * race; then its entry is used). NULL only when the map refuses. */
static __always_inline void *lookup_or_init(void *map, const void *key, const void *zero)
{
	void *v = bpf_map_lookup_elem(map, key);

	if (v)
		return v;
	bpf_map_update_elem(map, key, zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

/* The cgroup v2 id of the cgroup that owns sk (its creator's, inherited by
 * accepted sockets from the listener); 0 when unknown. */
static __always_inline __u64 sock_cgroup_id(const struct sock *sk)
{
	if (!sk || !bpf_core_field_exists(sk->sk_cgrp_data))
		return 0;
	return BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
}

/* True for a cgroup of the v2 (default) hierarchy: hierarchy id 0. v1
 * hierarchies number their kernfs nodes on their own, so their ids say
 * nothing about v2 map keys. */
static __always_inline bool cgroup_is_v2(const struct cgroup *cgrp)
{
	return BPF_CORE_READ(cgrp, root, hierarchy_id) == 0;
}

#endif
