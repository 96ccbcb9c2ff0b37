/*
 * common.h - what every probe's kernel program and loader agree on: the
 * log2 latency histogram. Fixed-width types only; the kernel side gets them
 * from vmlinux.h, user space from <linux/types.h>.
 *
 * Slot k counts latencies below 2^k microseconds that are not in a lower
 * slot: slot 0 holds [0, 1 us), slot k >= 1 holds [2^(k-1), 2^k) us, and the
 * last slot everything from 2^(EBPF_HIST_SLOTS-2) us (about 33.5 s) up. The
 * loader turns slot k into the Prometheus bucket le = 2^k us in seconds and
 * the last slot into +Inf.
 */
#ifndef MONITOR_BPF_COMMON_H
#define MONITOR_BPF_COMMON_H

#define EBPF_HIST_SLOTS 27

struct ebpf_hist {
	__u64 slots[EBPF_HIST_SLOTS];
	__u64 sum_ns;
};

/* Attach styles a loader may pick for tracepoint handlers. */
#define EBPF_TP_RAW 0            /* raw_tp: BPF_RAW_TRACEPOINT_OPEN by name, no tracefs */
#define EBPF_TP_CLASSIC 1        /* tp: perf event on the tracefs event id */

#endif
