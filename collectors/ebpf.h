/*
 * ebpf.h - private to collectors/: what the eBPF collector (ebpf.c) and the
 * per-probe loaders (ebpf_net.c, ebpf_tcp.c, ebpf_block.c, ebpf_oom.c) share.
 *
 * Each loader opens its generated skeleton, applies the settings before
 * load (map sizes, which programs to load for this kernel), loads and
 * attaches, and reads its maps for the collector. A loader that cannot
 * start returns -errno and writes one sentence saying why into `why`; the
 * collector logs it once and reports the probe as down. Only these files
 * include libbpf. Everything runs on the tick thread.
 */
#ifndef MONITOR_COLLECTORS_EBPF_H
#define MONITOR_COLLECTORS_EBPF_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/block.h"
#include "bpf/common.h"
#include "bpf/net.h"
#include "bpf/oom.h"
#include "bpf/tcp.h"
#include "collectors/collector.h"

struct bpf_link;
struct bpf_object;
struct bpf_program;
struct btf;

/* What every loader needs to start. */
struct ebpf_env {
	const struct ebpf_config *cfg;
	int unified_fd;          /* the cgroup v2 root, for cgroup programs */
	int attach;              /* EBPF_TP_RAW or EBPF_TP_CLASSIC */
	const struct btf *vmlinux; /* the kernel's BTF, for tracepoint checks */
	int ncpus;               /* possible CPUs: per-CPU value arrays */
};

/* ---- shared helpers (ebpf.c) ---- */

/*
 * Checks that the tracepoint category:name exists in this kernel and, for
 * raw attach, that its first argument is a pointer to `struct first_arg`
 * (NULL: any). Returns 0, or -ENOENT / -EINVAL with the reason in why.
 */
int ebpf_tp_check(const struct ebpf_env *env, const char *category, const char *name,
		  const char *first_arg, char *why, size_t whysize);
/*
 * Attaches prog to category:name the way env says (raw or classic).
 * Returns the link or NULL with the reason in why.
 */
struct bpf_link *ebpf_attach_tp(const struct ebpf_env *env, struct bpf_program *prog,
				const char *category, const char *name, char *why, size_t whysize);
/* Sends libbpf's messages to the agent's debug log, keeping the last
 * warning (and the verifier's verdict) for ebpf_explain. */
void ebpf_route_libbpf_log(void);
/* Turns a libbpf/kernel failure into a sentence: "not permitted (needs
 * root ...)" for EPERM, else strerror plus libbpf's last complaint. */
void ebpf_explain(int err, const char *what, char *why, size_t whysize);
/* Keeps only the programs whose section starts with the prefix of the
 * chosen attach style ("raw_tp" or "tp") and whose name is not in skip
 * (a NULL-terminated list); every other program is not loaded. */
void ebpf_pick_programs(struct bpf_object *obj, int attach, const char *const *skip);

/* ---- the probes ---- */

struct ebpf_net;
int ebpf_net_open(struct ebpf_net **out, const struct ebpf_env *env, char *why, size_t whysize);
void ebpf_net_close(struct ebpf_net *n);
struct bpf_object *ebpf_net_object(struct ebpf_net *n);
/* Adds cgroup id's counters (summed over CPUs) into *sum; 0, or -ENOENT
 * when the cgroup has none yet. */
int ebpf_net_read(struct ebpf_net *n, uint64_t cgroup_id, struct ebpf_net_value *sum);

struct ebpf_tcp;
int ebpf_tcp_open(struct ebpf_tcp **out, const struct ebpf_env *env, char *why, size_t whysize);
void ebpf_tcp_close(struct ebpf_tcp *t);
struct bpf_object *ebpf_tcp_object(struct ebpf_tcp *t);
int ebpf_tcp_read(struct ebpf_tcp *t, uint64_t cgroup_id, struct ebpf_tcp_value *sum);

struct ebpf_block;
struct ebpf_block_entry {
	struct ebpf_block_key key;
	struct ebpf_block_value val;
};
int ebpf_block_open(struct ebpf_block **out, const struct ebpf_env *env, char *why, size_t whysize);
void ebpf_block_close(struct ebpf_block *b);
struct bpf_object *ebpf_block_object(struct ebpf_block *b);
/* Reads the whole histogram map into the loader's table, sorted by cgroup
 * id. Returns the number of entries or -errno. */
int ebpf_block_refresh(struct ebpf_block *b);
/* The entries of one cgroup from the last refresh; *n is their number.
 * The pointer is valid until the next refresh. */
const struct ebpf_block_entry *ebpf_block_find(const struct ebpf_block *b, uint64_t cgroup_id,
					       size_t *n);

struct ebpf_oom;
typedef void (*ebpf_oom_fn)(void *arg, const struct ebpf_oom_event *ev);
int ebpf_oom_open(struct ebpf_oom **out, const struct ebpf_env *env, char *why, size_t whysize);
void ebpf_oom_close(struct ebpf_oom *o);
struct bpf_object *ebpf_oom_object(struct ebpf_oom *o);
/* Calls fn for every record waiting in the ring buffer; never blocks.
 * Returns the number of records or -errno. */
int ebpf_oom_poll(struct ebpf_oom *o, ebpf_oom_fn fn, void *arg);
/* Records dropped because the ring buffer was full (OOM storms between
 * two ticks). */
uint64_t ebpf_oom_lost(const struct ebpf_oom *o);

/* ---- pure helpers, exported for the unit tests ---- */

/* Writes the cgroup path ("/docker/<id>") an OOM record carries. Returns 0
 * or -ENAMETOOLONG. */
int ebpf_oom_path(const struct ebpf_oom_event *ev, char *out, size_t size);
/* The le="..." value of histogram slot k (k < EBPF_HIST_SLOTS - 1):
 * 2^k microseconds in seconds, as shortest text. */
void ebpf_hist_le(unsigned k, char *out, size_t size);

#endif
