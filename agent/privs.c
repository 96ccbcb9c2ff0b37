/*
 * privs.c - least privilege: the agent keeps only the Linux capabilities
 * its enabled features need, and drops the rest in two steps.
 *
 * What each feature needs (checked against the code paths; README
 * "Privileges" has the same table):
 *   eBPF probes (collectors/ebpf*.c)  loading: CAP_BPF + CAP_PERFMON
 *       (tracepoints) + CAP_NET_ADMIN (cgroup_skb programs at the cgroup
 *       root), or CAP_SYS_ADMIN on kernels without CAP_BPF (before 5.8);
 *       CAP_SYS_RESOURCE for libbpf's RLIMIT_MEMLOCK bump before 5.11.
 *       Afterwards: the held program, map and link descriptors need nothing
 *       on Linux 6.5+, where the unprivileged_bpf_disabled check moved to
 *       map creation and program load; before 6.5 every bpf() call (map
 *       reads each tick) needs CAP_BPF (CAP_SYS_ADMIN before 5.8), so it is
 *       kept there.
 *   Other processes' /proc/<pid>/ns/net (netns.c), /proc/<pid>/root
 *       (fs.c, container tmpfs), /proc/<pid>/environ (api_env.c), fd and
 *       net tables (procs.c, procfs.c): ptrace_may_access() read checks.
 *       A process whose permitted set is not a superset of the target's
 *       (any container root once we drop) fails them without
 *       CAP_SYS_PTRACE, so it is kept. CAP_DAC_READ_SEARCH is kept for
 *       directories and files of other users: /proc/<pid>/fd (mode 0500 of
 *       the process's uid), container writable layers walked for disk usage
 *       (fs.c) and log files (logtail.c) not owned by root.
 *   The network collector does not setns(): it reads /proc/<pid>/net/dev,
 *       which shows the pid's namespace, so CAP_SYS_ADMIN is not needed.
 *   The Docker socket: plain file access (write permission on the socket;
 *       root owns it), no capability. Actions through runc run runc as a
 *       child, which gets at most the kept (bounding) set.
 *   RLIMIT_NOFILE above the hard limit (agent.c raise_fd_limit):
 *       CAP_SYS_RESOURCE, used before this file's first step.
 *   Listening on a port below 1024: CAP_NET_BIND_SERVICE until bound.
 *
 * Step 1 (privs_drop_startup) runs in the main thread before any thread
 * exists, so every thread inherits it: all sets are cut to what start-up
 * and run time need, and no_new_privs is set. Step 2 (privs_drop_runtime)
 * runs after start-up; by then the agent has many threads (store writer,
 * Docker, HTTP, log tailer, rules, notifier...), and capabilities are per
 * thread on Linux: capset() only changes the calling thread. So each other
 * thread is sent a real-time signal whose handler drops its own sets, the
 * same way glibc makes setuid() process-wide; the caller then checks every
 * /proc/self/task/<tid>/status and repeats for threads that appeared in
 * between. The handler needs the target sets in file-scope variables (a
 * signal handler has no argument); they are written before any signal is
 * sent and only read after.
 */
#include "agent/privs.h"

#include "agent/agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif
#define CAPS_MAX 64
#define BIT(c) (1ULL << (c))
#define PRIVS_PASSES 8         /* rounds of signalling threads that appeared meanwhile */
#define PRIVS_WAIT_MS 2000     /* for one round's handlers to run */

static const char *const cap_names[] = {
	[CAP_CHOWN] = "CAP_CHOWN", [CAP_DAC_OVERRIDE] = "CAP_DAC_OVERRIDE",
	[CAP_DAC_READ_SEARCH] = "CAP_DAC_READ_SEARCH", [CAP_FOWNER] = "CAP_FOWNER",
	[CAP_FSETID] = "CAP_FSETID", [CAP_KILL] = "CAP_KILL", [CAP_SETGID] = "CAP_SETGID",
	[CAP_SETUID] = "CAP_SETUID", [CAP_SETPCAP] = "CAP_SETPCAP",
	[CAP_NET_BIND_SERVICE] = "CAP_NET_BIND_SERVICE", [CAP_NET_ADMIN] = "CAP_NET_ADMIN",
	[CAP_NET_RAW] = "CAP_NET_RAW", [CAP_SYS_CHROOT] = "CAP_SYS_CHROOT",
	[CAP_SYS_PTRACE] = "CAP_SYS_PTRACE", [CAP_SYS_ADMIN] = "CAP_SYS_ADMIN",
	[CAP_SYS_RESOURCE] = "CAP_SYS_RESOURCE", [CAP_MKNOD] = "CAP_MKNOD",
	[CAP_AUDIT_WRITE] = "CAP_AUDIT_WRITE", [CAP_SETFCAP] = "CAP_SETFCAP",
	[CAP_PERFMON] = "CAP_PERFMON", [CAP_BPF] = "CAP_BPF",
};

/* Why a kept capability is kept, for the start-up log line. */
static const char *cap_reason(int c)
{
	switch (c) {
	case CAP_SYS_PTRACE: return "other processes' /proc/<pid>/ns, root, environ, fd";
	case CAP_DAC_READ_SEARCH: return "other users' /proc/<pid>/fd, layers, log files";
	case CAP_BPF: return "bpf() map reads before Linux 6.5";
	case CAP_SYS_ADMIN: return "bpf() on kernels without CAP_BPF";
	default: return "";
	}
}

/* The handler's input: what a thread keeps (see the file comment). */
static struct __user_cap_data_struct g_target[2];
static uint64_t g_drop_bset;
static atomic_int g_done, g_failed;

void privs_names(uint64_t mask, char *out, size_t outsize)
{
	size_t len = 0;
	if (outsize == 0)
		return;
	out[0] = '\0';
	for (int c = 0; c < CAPS_MAX; c++) {
		if (!(mask & BIT(c)))
			continue;
		const char *n = c < (int)(sizeof(cap_names) / sizeof(cap_names[0])) && cap_names[c] ?
				cap_names[c] : NULL;
		int w = n ? snprintf(out + len, outsize - len, "%s%s", len ? "," : "", n) :
			    snprintf(out + len, outsize - len, "%scap_%d", len ? "," : "", c);
		if (w < 0 || (size_t)w >= outsize - len)
			return;
		len += (size_t)w;
	}
	if (!len)
		snprintf(out, outsize, "none");
}

static int caps_get(uint64_t *eff, uint64_t *prm)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0)
		return -errno;
	*eff = d[0].effective | (uint64_t)d[1].effective << 32;
	*prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	return 0;
}

static void caps_fill(struct __user_cap_data_struct d[2], uint64_t keep)
{
	memset(d, 0, 2 * sizeof(*d));
	d[0].effective = d[0].permitted = (uint32_t)keep;
	d[1].effective = d[1].permitted = (uint32_t)(keep >> 32);
}

static int last_cap(void)
{
	char b[16];
	int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, b, sizeof(b) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return CAP_LAST_CAP;
	b[n] = '\0';
	int v = atoi(b);
	return v > 0 && v < CAPS_MAX ? v : CAP_LAST_CAP;
}

/* Linux >= maj.min, from uname (false when it cannot tell). */
static bool kernel_at_least(int maj, int min)
{
	struct utsname u;
	int a = 0, b = 0;
	if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &a, &b) != 2)
		return false;
	return a > maj || (a == maj && b >= min);
}

static int listen_port(const char *listen)
{
	const char *colon = strrchr(listen, ':');
	return colon ? atoi(colon + 1) : 0;
}

void privs_plan_make(const struct agent_config *cfg, struct privs_plan *p)
{
	uint64_t eff = 0, prm = 0;
	memset(p, 0, sizeof(*p));
	if (caps_get(&eff, &prm) == 0)
		p->have = prm;
	bool has_bpf_cap = prctl(PR_CAPBSET_READ, CAP_BPF, 0, 0, 0) >= 0;

	p->runtime |= BIT(CAP_SYS_PTRACE) | BIT(CAP_DAC_READ_SEARCH);
	/* The cgroup iterator (collectors/cgroup_iter.c) is loaded like the
	 * probes, without their cgroup_skb programs (CAP_NET_ADMIN); each
	 * tick's bpf_iter_create() is a bpf() call like a map read. */
	if (cfg->ebpf.enabled || cfg->cgroup_iterator) {
		uint64_t net = cfg->ebpf.enabled ? BIT(CAP_NET_ADMIN) : 0;
		/* CAP_BPF + CAP_PERFMON when the process has both; else
		 * CAP_SYS_ADMIN, which the kernel takes for either (the only
		 * way before 5.8, and where a runtime does not know CAP_BPF,
		 * e.g. Docker 20.10). */
		if (has_bpf_cap && (prm & BIT(CAP_BPF)) && (prm & BIT(CAP_PERFMON))) {
			p->startup |= BIT(CAP_BPF) | BIT(CAP_PERFMON) | net;
			if (!kernel_at_least(6, 5))
				p->runtime |= BIT(CAP_BPF);
		} else {
			p->startup |= BIT(CAP_SYS_ADMIN) | net;
			if (!has_bpf_cap || !kernel_at_least(6, 5))
				p->runtime |= BIT(CAP_SYS_ADMIN);
		}
		if (!kernel_at_least(5, 11))
			p->startup |= BIT(CAP_SYS_RESOURCE);
	}
	int port = listen_port(cfg->listen);
	if (port > 0 && port < 1024)
		p->startup |= BIT(CAP_NET_BIND_SERVICE);
	p->startup &= ~p->runtime;

	/* One message per feature that cannot work as asked. */
	bool ebpf_ok = has_bpf_cap ?
		((prm & BIT(CAP_BPF)) && (prm & BIT(CAP_PERFMON))) || (prm & BIT(CAP_SYS_ADMIN)) :
		(prm & BIT(CAP_SYS_ADMIN)) != 0;
	if (cfg->ebpf.enabled && !ebpf_ok)
		log_warn("privileges: eBPF probes are off: loading them needs CAP_BPF and CAP_PERFMON "
			 "(and CAP_NET_ADMIN for network), or CAP_SYS_ADMIN before Linux 5.8; this "
			 "process (uid %d) has none of them", (int)getuid());
	if (!(prm & BIT(CAP_SYS_PTRACE)))
		log_warn("privileges: other users' processes are not readable (per-container "
			 "network, processes, environment, tmpfs usage of containers whose processes "
			 "are not uid %d): reading /proc/<pid>/ns, root, environ and fd needs "
			 "CAP_SYS_PTRACE", (int)getuid());
	if (!(prm & BIT(CAP_DAC_READ_SEARCH)) && getuid() != 0)
		log_warn("privileges: files of other users (container log files, writable layers "
			 "for disk usage) are read only where uid %d may: that needs "
			 "CAP_DAC_READ_SEARCH", (int)getuid());
	if (cfg->docker_enabled && cfg->docker_socket[0] &&
	    access(cfg->docker_socket, F_OK) == 0 && access(cfg->docker_socket, R_OK | W_OK) < 0)
		log_warn("privileges: Docker is off: %s is not writable by uid %d (needs root or "
			 "the socket's group, e.g. docker)", cfg->docker_socket, (int)getuid());
	if (port > 0 && port < 1024 && !(prm & BIT(CAP_NET_BIND_SERVICE)))
		log_warn("privileges: listening on %s needs CAP_NET_BIND_SERVICE (port below 1024)",
			 cfg->listen);
	struct rlimit rl;
	if (!(prm & BIT(CAP_SYS_RESOURCE)) && getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_max < 65536)
		log_warn("privileges: the open-file limit stays at the hard limit %llu (raising it "
			 "needs CAP_SYS_RESOURCE, or LimitNOFILE= / ulimit -Hn)",
			 (unsigned long long)rl.rlim_max);
}

/* Drops from the calling thread's bounding set every capability in drop.
 * Needs CAP_SETPCAP; without it the bounding set is left (nothing to do
 * for a process that never had the capabilities). */
static int bset_drop(uint64_t drop, int last)
{
	for (int c = 0; c <= last; c++) {
		if (!(drop & BIT(c)) || prctl(PR_CAPBSET_READ, c, 0, 0, 0) <= 0)
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return -errno;
	}
	return 0;
}

int privs_drop_startup(const struct privs_plan *p, char *err, size_t errsize)
{
	uint64_t keep = (p->runtime | p->startup | BIT(CAP_SETPCAP)) & p->have;
	int last = last_cap();
	int rc;
	if ((p->have & BIT(CAP_SETPCAP)) && (rc = bset_drop(~keep, last)) < 0) {
		snprintf(err, errsize, "prctl(PR_CAPBSET_DROP): %s", strerror(-rc));
		return rc;
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	caps_fill(d, keep);
	if (syscall(SYS_capset, &h, d) < 0) {
		rc = -errno;
		snprintf(err, errsize, "capset: %s", strerror(-rc));
		return rc;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		rc = -errno;
		snprintf(err, errsize, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(-rc));
		return rc;
	}
	return 0;
}

/* Runs in each thread signalled by privs_drop_runtime: only syscalls. */
static void on_drop_signal(int sig)
{
	(void)sig;
	int saved = errno;
	bool bad = false;
	for (int c = 0; c < CAPS_MAX; c++)
		/* Only what is still there: a thread signalled again (it was
		 * blocking at first) has already dropped CAP_SETPCAP. */
		if ((g_drop_bset & BIT(c)) && prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1 &&
		    prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			bad = true;
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	if (syscall(SYS_capset, &h, g_target) < 0)
		bad = true;
	atomic_fetch_add(bad ? &g_failed : &g_done, 1);
	errno = saved;
}

/* CapPrm, CapBnd and SigBlk of one thread; -errno when it is gone. */
static int task_caps(pid_t tid, uint64_t *prm, uint64_t *bnd, uint64_t *blk)
{
	char path[64], b[4096];
	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, b, sizeof(b) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	b[n] = '\0';
	const char *s = strstr(b, "\nCapPrm:"), *t = strstr(b, "\nCapBnd:");
	if (!s || !t)
		return -EIO;
	*prm = strtoull(s + 8, NULL, 16);
	*bnd = strtoull(t + 8, NULL, 16);
	const char *u = strstr(b, "\nSigBlk:");
	*blk = u ? strtoull(u + 8, NULL, 16) : 0;
	return 0;
}

/* Signals every thread but the caller that holds more than keep (bounding:
 * more than bkeep); returns how many were signalled, or -errno. *left
 * counts those that could not be signalled. */
static int signal_threads(int sig, uint64_t keep, uint64_t bkeep, int *left)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return -errno;
	pid_t self = (pid_t)syscall(SYS_gettid);
	int sent = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		pid_t tid = (pid_t)atoi(de->d_name);
		uint64_t prm, bnd, blk;
		if (tid <= 0 || tid == self || task_caps(tid, &prm, &bnd, &blk) < 0)
			continue;
		if (!(prm & ~keep) && !(bnd & ~bkeep))
			continue;
		if (blk & BIT(sig - 1)) {
			/* Blocked: a thread pthread_create is still starting
			 * runs with every signal blocked until it sets its
			 * own mask. The signal is queued for it and the caller
			 * looks again; not waited for, as a thread that
			 * always blocks it would never run the handler. */
			syscall(SYS_tgkill, getpid(), tid, sig);
			(*left)++;
			continue;
		}
		if (syscall(SYS_tgkill, getpid(), tid, sig) == 0)
			sent++;
		else if (errno != ESRCH)
			(*left)++;
	}
	closedir(d);
	return sent;
}

int privs_drop_runtime(const struct privs_plan *p, char *err, size_t errsize)
{
	uint64_t keep = p->runtime & p->have;
	bool bset = (p->have & BIT(CAP_SETPCAP)) != 0;
	uint64_t bkeep = bset ? keep : ~0ULL;
	int last = last_cap();
	uint64_t all = last >= 63 ? ~0ULL : BIT(last + 1) - 1;
	caps_fill(g_target, keep);
	g_drop_bset = bset ? all & ~keep : 0;
	atomic_store(&g_done, 0);
	atomic_store(&g_failed, 0);

	struct sigaction sa, old;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_drop_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	int sig = SIGRTMIN + 7;
	if (sigaction(sig, &sa, &old) < 0) {
		snprintf(err, errsize, "sigaction: %s", strerror(errno));
		return -errno;
	}
	int left = 0, sent = 0;
	for (int pass = 0; pass < PRIVS_PASSES; pass++) {
		left = 0;
		int n = signal_threads(sig, keep, bkeep, &left);
		if (n < 0) {
			snprintf(err, errsize, "/proc/self/task: %s", strerror(-n));
			return n;
		}
		if (n == 0 && left == 0)
			break;
		sent += n;
		if (n == 0) { /* only blocked threads left: give them a moment */
			struct timespec pause = { 0, 20 * 1000000 };
			nanosleep(&pause, NULL);
			continue;
		}
		struct timespec ms = { 0, 1000000 };
		for (int w = 0; w < PRIVS_WAIT_MS &&
		     atomic_load(&g_done) + atomic_load(&g_failed) < sent; w++)
			nanosleep(&ms, NULL);
	}
	/* The caller last: it keeps CAP_SETPCAP until the others are done. */
	on_drop_signal(sig);
	/* The handler stays installed: a late signal must not kill the
	 * process (the default action of a real-time signal). */
	(void)old;
	uint64_t prm = 0, bnd = 0, blk = 0;
	int extra = 0, threads = 0;
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		pid_t tid = (pid_t)atoi(de->d_name);
		if (tid <= 0 || task_caps(tid, &prm, &bnd, &blk) < 0)
			continue;
		threads++;
		if ((prm & ~keep) || (bnd & ~bkeep))
			extra++;
	}
	if (d)
		closedir(d);
	char names[1024];
	privs_names(keep, names, sizeof(names));
	if (extra || atomic_load(&g_failed)) {
		snprintf(err, errsize, "%d of %d threads still hold more than %s (%d could not "
			 "drop, %d block or missed the signal)", extra, threads, names,
			 atomic_load(&g_failed), left);
		return -EAGAIN;
	}
	char line[2048];
	size_t len = 0;
	line[0] = '\0';
	for (int c = 0; c < CAPS_MAX && len < sizeof(line); c++) {
		if (!(keep & BIT(c)))
			continue;
		char one[64];
		privs_names(BIT(c), one, sizeof(one));
		int w = snprintf(line + len, sizeof(line) - len, "%s%s (%s)", len ? ", " : "", one,
				 cap_reason(c));
		if (w < 0)
			break;
		len += (size_t)w;
	}
	log_info("privileges: kept %s in all %d threads; bounding set %s; no_new_privs set",
		 len ? line : "no capabilities", threads,
		 bset ? "cut to the same" : "unchanged (no CAP_SETPCAP)");
	return 0;
}
