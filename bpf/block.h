/*
 * block.h - the block I/O probe's map layout, shared by block.bpf.c and its
 * loader (collectors/ebpf_block.c): requests, bytes and a latency histogram
 * per (cgroup v2 id, whole-disk device, read/write).
 */
#ifndef MONITOR_BPF_BLOCK_H
#define MONITOR_BPF_BLOCK_H

#include "bpf/common.h"

#define EBPF_BLOCK_READ 0
#define EBPF_BLOCK_WRITE 1

struct ebpf_block_key {
	__u64 cgroup_id;
	__u32 dev;               /* major << 20 | minor, the kernel's dev_t */
	__u32 op;                /* EBPF_BLOCK_READ or EBPF_BLOCK_WRITE */
};

struct ebpf_block_value {
	__u64 requests;          /* counted when first issued */
	__u64 bytes;             /* of those requests */
	struct ebpf_hist lat;    /* the requests whose completion was seen */
};

#endif
