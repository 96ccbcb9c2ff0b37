// SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0-only)
/*
 * tcp.bpf.c - TCP health per cgroup from tracepoints only (no kprobes):
 * connections opened (active and passive), failed connects, connect
 * latency, resets sent and received, retransmits, and connections
 * currently established.
 *
 * The owner is the socket's own cgroup (sk->sk_cgrp_data, set when the
 * socket was created and inherited by accepted sockets from the listener),
 * not current: state changes, resets and retransmits mostly run in softirq
 * or timer context on behalf of whoever.
 *
 * State machine on sock:inet_sock_set_state:
 *   CLOSE    -> SYN_SENT     connect() starts: remember the time by socket
 *   SYN_SENT -> ESTABLISHED  active open; latency sample
 *   SYN_SENT -> CLOSE        failed connect (refused, reset, timed out)
 *   SYN_RECV -> ESTABLISHED  passive open (the accepted child socket)
 *   any -> ESTABLISHED / ESTABLISHED -> any   the established gauge, kept
 *   honest by a socket set: only sockets we saw enter are counted out.
 *
 * Every handler exists twice: raw_tp (no tracefs needed, cheapest) and tp
 * (classic tracepoint through tracefs). The loader keeps one set with
 * bpf_program__set_autoload(). Classic contexts are read through small
 * layouts of our own: those first fields have not moved since 4.16.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "bpf/common.bpf.h"
#include "bpf/tcp.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define IPPROTO_TCP_ 6

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 10240);      /* ebpf.max_cgroups */
	__type(key, __u64);
	__type(value, struct ebpf_tcp_value);
} tcp_stats SEC(".maps");

/* socket -> connect() start time (ns) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);      /* ebpf.max_sockets */
	__type(key, __u64);
	__type(value, __u64);
} tcp_connecting SEC(".maps");

/* socket -> cgroup id, for sockets counted into `established` */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);      /* ebpf.max_sockets */
	__type(key, __u64);
	__type(value, __u64);
} tcp_established SEC(".maps");

static __always_inline struct ebpf_tcp_value *stats_of(__u64 cgid)
{
	static const struct ebpf_tcp_value zero;

	return lookup_or_init(&tcp_stats, &cgid, &zero);
}

static __always_inline void on_state(const struct sock *sk, int oldstate, int newstate)
{
	__u64 key = (__u64)(unsigned long)sk, now, *start, *owner, cgid;
	struct ebpf_tcp_value *v;

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP_)
		return;
	if (oldstate == TCP_CLOSE && newstate == TCP_SYN_SENT) {
		now = bpf_ktime_get_ns();
		bpf_map_update_elem(&tcp_connecting, &key, &now, BPF_ANY);
		return;
	}
	if (oldstate == TCP_ESTABLISHED) {
		owner = bpf_map_lookup_elem(&tcp_established, &key);
		if (owner) {
			cgid = *owner;
			bpf_map_delete_elem(&tcp_established, &key);
			v = bpf_map_lookup_elem(&tcp_stats, &cgid);
			if (v)
				v->established--;
		}
		return;
	}
	cgid = sock_cgroup_id(sk);
	if (newstate == TCP_ESTABLISHED) {
		v = stats_of(cgid);
		if (!v)
			return;
		if (oldstate == TCP_SYN_SENT) {
			v->active_opens++;
			start = bpf_map_lookup_elem(&tcp_connecting, &key);
			if (start) {
				now = bpf_ktime_get_ns();
				if (now > *start)
					hist_add(&v->connect, now - *start);
				bpf_map_delete_elem(&tcp_connecting, &key);
			}
		} else if (oldstate == TCP_SYN_RECV) {
			v->passive_opens++;
		}
		if (bpf_map_update_elem(&tcp_established, &key, &cgid, BPF_NOEXIST) == 0)
			v->established++;
		return;
	}
	if (oldstate == TCP_SYN_SENT && newstate == TCP_CLOSE) {
		bpf_map_delete_elem(&tcp_connecting, &key);
		v = stats_of(cgid);
		if (v)
			v->connect_fails++;
	}
}

static __always_inline void count(const struct sock *sk, int what)
{
	struct ebpf_tcp_value *v;
	__u64 cgid;

	/* A reset sent in answer to a segment for no socket has no owner. */
	if (!sk)
		return;
	cgid = sock_cgroup_id(sk);
	v = stats_of(cgid);
	if (!v)
		return;
	if (what == 0)
		v->retransmits++;
	else if (what == 1)
		v->resets_sent++;
	else
		v->resets_received++;
}

/* ---- raw tracepoints ---- */

SEC("raw_tp/inet_sock_set_state")
int BPF_PROG(tcp_state_raw, const struct sock *sk, int oldstate, int newstate)
{
	on_state(sk, oldstate, newstate);
	return 0;
}

SEC("raw_tp/tcp_retransmit_skb")
int BPF_PROG(tcp_retrans_raw, const struct sock *sk)
{
	count(sk, 0);
	return 0;
}

SEC("raw_tp/tcp_send_reset")
int BPF_PROG(tcp_rst_sent_raw, const struct sock *sk)
{
	count(sk, 1);
	return 0;
}

SEC("raw_tp/tcp_receive_reset")
int BPF_PROG(tcp_rst_recv_raw, const struct sock *sk)
{
	count(sk, 2);
	return 0;
}

SEC("raw_tp/cgroup_rmdir")
int BPF_PROG(tcp_rmdir_raw, struct cgroup *cgrp)
{
	__u64 id;

	if (!cgroup_is_v2(cgrp))
		return 0;
	id = BPF_CORE_READ(cgrp, kn, id);
	bpf_map_delete_elem(&tcp_stats, &id);
	return 0;
}

/* ---- classic tracepoints ---- */

/* Leading fields of the events' records, stable since the events exist. */
struct tp_set_state {
	__u64 common;
	const void *skaddr;
	int oldstate;
	int newstate;
};
struct tp_sk_skb {
	__u64 common;
	const void *skbaddr;
	const void *skaddr;
};
struct tp_sk {
	__u64 common;
	const void *skaddr;
};
struct tp_cgroup {
	__u64 common;
	int root;
	int level;
	__u64 id;
};

SEC("tp/sock/inet_sock_set_state")
int tcp_state_tp(struct tp_set_state *ctx)
{
	on_state(ctx->skaddr, ctx->oldstate, ctx->newstate);
	return 0;
}

SEC("tp/tcp/tcp_retransmit_skb")
int tcp_retrans_tp(struct tp_sk_skb *ctx)
{
	count(ctx->skaddr, 0);
	return 0;
}

SEC("tp/tcp/tcp_send_reset")
int tcp_rst_sent_tp(struct tp_sk_skb *ctx)
{
	count(ctx->skaddr, 1);
	return 0;
}

SEC("tp/tcp/tcp_receive_reset")
int tcp_rst_recv_tp(struct tp_sk *ctx)
{
	count(ctx->skaddr, 2);
	return 0;
}

SEC("tp/cgroup/cgroup_rmdir")
int tcp_rmdir_tp(struct tp_cgroup *ctx)
{
	__u64 id = ctx->id;

	if (ctx->root != 0)
		return 0;
	bpf_map_delete_elem(&tcp_stats, &id);
	return 0;
}
