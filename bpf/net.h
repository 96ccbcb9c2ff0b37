/*
 * net.h - the network probe's map layout, shared by net.bpf.c and its
 * loader (collectors/ebpf_net.c). Keyed by cgroup v2 id; per-CPU values
 * that the loader sums.
 */
#ifndef MONITOR_BPF_NET_H
#define MONITOR_BPF_NET_H

struct ebpf_net_value {
	__u64 rx_bytes;
	__u64 rx_packets;
	__u64 tx_bytes;
	__u64 tx_packets;
};

#endif
