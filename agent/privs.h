/*
 * privs.h - least privilege: which Linux capabilities the enabled features
 * need, and dropping every other one after start-up (privs.c).
 */
#ifndef MONITOR_PRIVS_H
#define MONITOR_PRIVS_H

#include <stddef.h>
#include <stdint.h>

struct agent_config;

/* Capability masks (bit n = capability n, as in /proc/<pid>/status). */
struct privs_plan {
	uint64_t runtime;  /* kept for the agent's whole life */
	uint64_t startup;  /* needed only until start-up is done (loading eBPF, binding) */
	uint64_t have;     /* what the process had when the plan was made (permitted) */
};

/*
 * Works out from cfg which capabilities the enabled features need (the
 * table is in README "Privileges") and logs, once per feature, which ones
 * cannot work because the process lacks the capability. Never fails.
 */
void privs_plan_make(const struct agent_config *cfg, struct privs_plan *p);

/*
 * Phase 1, before any thread is started: drops from the calling thread's
 * bounding, effective, permitted, inheritable and ambient sets everything
 * outside runtime|startup (plus CAP_SETPCAP, which phase 2 needs to shrink
 * the bounding set), and sets no_new_privs. Threads created afterwards
 * inherit this. Returns 0 or -errno (err says what failed).
 */
int privs_drop_startup(const struct privs_plan *p, char *err, size_t errsize);

/*
 * Phase 2, after start-up (eBPF loaded, sockets bound, files opened): every
 * thread of the process, the caller included, drops to p->runtime. Other
 * threads are made to do it themselves by a real-time signal (capabilities
 * are per thread on Linux). Checks /proc/self/task/<tid>/status afterwards
 * and logs the kept set. Returns 0, or -EAGAIN when some thread still holds
 * more (err names how many), or -errno.
 */
int privs_drop_runtime(const struct privs_plan *p, char *err, size_t errsize);

/* Writes the names of the capabilities in mask, comma-separated ("none"). */
void privs_names(uint64_t mask, char *out, size_t outsize);

#endif
