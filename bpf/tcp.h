/*
 * tcp.h - the TCP probe's per-cgroup counters, shared by tcp.bpf.c and its
 * loader (collectors/ebpf_tcp.c). One value per cgroup v2 id, per CPU; the
 * loader sums the CPUs (established can be negative on one CPU and right in
 * the sum: a connection may open on one CPU and close on another).
 */
#ifndef MONITOR_BPF_TCP_H
#define MONITOR_BPF_TCP_H

#include "bpf/common.h"

struct ebpf_tcp_value {
	__u64 active_opens;      /* connect() reached ESTABLISHED */
	__u64 passive_opens;     /* accepted: SYN_RECV -> ESTABLISHED */
	__u64 connect_fails;     /* SYN_SENT -> CLOSE: refused, reset, timed out */
	__u64 resets_sent;
	__u64 resets_received;
	__u64 retransmits;       /* segments retransmitted */
	__s64 established;       /* connections now ESTABLISHED (sum over CPUs) */
	struct ebpf_hist connect; /* SYN_SENT -> ESTABLISHED */
};

#endif
