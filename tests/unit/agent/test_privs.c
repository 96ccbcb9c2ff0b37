/*
 * test_privs.c - agent/privs.c: the plan for the default features, the
 * names, and the two-step drop in a forked child with threads that sleep
 * in poll(), nanosleep() and a condition wait: every thread ends with
 * exactly the run-time set (effective, permitted, bounding), the handler's
 * signal does not break their sleeps, and threads created afterwards
 * inherit the set.
 */
#include "agent/agent.h"
#include "agent/privs.h"
#include "tests/unit/test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CAP_BIT(c) (1ULL << (c))

static void test_names(void)
{
	char b[256];
	privs_names(CAP_BIT(2) | CAP_BIT(19), b, sizeof(b));
	CHECK_STR(b, "CAP_DAC_READ_SEARCH,CAP_SYS_PTRACE");
	privs_names(0, b, sizeof(b));
	CHECK_STR(b, "none");
	privs_names(CAP_BIT(39) | CAP_BIT(62), b, sizeof(b));
	CHECK_STR(b, "CAP_BPF,cap_62");
	privs_names(CAP_BIT(2) | CAP_BIT(19), b, 8); /* cut, still terminated */
	CHECK(strlen(b) < 8);
}

static void test_plan(void)
{
	struct agent_config cfg;
	config_defaults(&cfg);
	snprintf(cfg.listen, sizeof(cfg.listen), "127.0.0.1:80");
	struct privs_plan p;
	privs_plan_make(&cfg, &p);
	CHECK(p.runtime & CAP_BIT(19));          /* CAP_SYS_PTRACE */
	CHECK(p.runtime & CAP_BIT(2));           /* CAP_DAC_READ_SEARCH */
	CHECK(!(p.runtime & CAP_BIT(1)));        /* never CAP_DAC_OVERRIDE */
	CHECK(!(p.runtime & CAP_BIT(10)));       /* CAP_NET_BIND_SERVICE: start-up only */
	CHECK(p.startup & CAP_BIT(10));
	CHECK(p.startup & CAP_BIT(12));          /* CAP_NET_ADMIN for cgroup_skb */
	CHECK(!(p.startup & p.runtime));
	cfg.ebpf.enabled = false;
	snprintf(cfg.listen, sizeof(cfg.listen), "127.0.0.1:9838");
	privs_plan_make(&cfg, &p);
	/* The cgroup iterator alone: loading, without CAP_NET_ADMIN. */
	CHECK(p.startup != 0);
	CHECK(!(p.startup & CAP_BIT(12)));
	cfg.cgroup_iterator = false;
	privs_plan_make(&cfg, &p);
	CHECK_EQ_INT(p.startup, 0);
	CHECK_EQ_INT(p.runtime, CAP_BIT(2) | CAP_BIT(19));
	config_fini(&cfg);
}

struct sleeper {
	int kind;               /* 0 poll, 1 nanosleep, 2 condition wait */
	int pipe_r;
	volatile int woke_early;
	pthread_mutex_t *mu;
	pthread_cond_t *cv;
	volatile int *stop;
};

static void *sleeper_main(void *arg)
{
	struct sleeper *s = arg;
	if (s->kind == 0) {
		struct pollfd p = { s->pipe_r, POLLIN, 0 };
		while (poll(&p, 1, 5000) < 0 && errno == EINTR)
			;
		char c;
		if (read(s->pipe_r, &c, 1) != 1)
			s->woke_early = 1;
	} else if (s->kind == 1) {
		struct timespec ts = { 0, 300 * 1000000L }, rem;
		while (nanosleep(&ts, &rem) < 0 && errno == EINTR)
			ts = rem;
	} else {
		pthread_mutex_lock(s->mu);
		while (!*s->stop)
			pthread_cond_wait(s->cv, s->mu);
		pthread_mutex_unlock(s->mu);
	}
	return NULL;
}

static void *late_main(void *arg)
{
	uint64_t *out = arg;
	char b[4096];
	int fd = open("/proc/thread-self/status", O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, b, sizeof(b) - 1) : -1;
	if (fd >= 0)
		close(fd);
	*out = ~0ULL;
	if (n > 0) {
		b[n] = '\0';
		const char *p = strstr(b, "CapPrm:");
		if (p)
			*out = strtoull(p + 7, NULL, 16);
	}
	return NULL;
}

/* In the child: exit status 0 when every check holds, else the failed step. */
static int child(void)
{
	struct privs_plan p = { .runtime = CAP_BIT(2) | CAP_BIT(19),
				.startup = CAP_BIT(12) | CAP_BIT(10) };
	uint64_t eff;
	{
		char b[4096];
		int fd = open("/proc/self/status", O_RDONLY);
		ssize_t n = read(fd, b, sizeof(b) - 1);
		close(fd);
		b[n > 0 ? n : 0] = '\0';
		const char *s = strstr(b, "CapPrm:");
		eff = s ? strtoull(s + 7, NULL, 16) : 0;
	}
	p.have = eff;
	char err[256];
	if (privs_drop_startup(&p, err, sizeof(err)) < 0)
		return 10;
	int fds[2];
	if (pipe(fds) < 0)
		return 11;
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	volatile int stop = 0;
	struct sleeper s[3];
	pthread_t th[3];
	for (int i = 0; i < 3; i++) {
		s[i] = (struct sleeper){ .kind = i, .pipe_r = fds[0], .mu = &mu, .cv = &cv, .stop = &stop };
		if (pthread_create(&th[i], NULL, sleeper_main, &s[i]))
			return 12;
	}
	usleep(50000);
	if (privs_drop_runtime(&p, err, sizeof(err)) < 0) {
		fprintf(stderr, "  privs_drop_runtime: %s\n", err);
		return 13;
	}
	/* Every thread: exactly the run-time set. */
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int threads = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[300], b[4096];
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", de->d_name);
		int fd = open(path, O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, b, sizeof(b) - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n <= 0)
			continue;
		b[n] = '\0';
		threads++;
		const char *keys[] = { "CapEff:", "CapPrm:", "CapBnd:" };
		for (int k = 0; k < 3; k++) {
			const char *v = strstr(b, keys[k]);
			if (!v || strtoull(v + 7, NULL, 16) != p.runtime)
				return 14;
		}
		const char *nnp = strstr(b, "NoNewPrivs:");
		if (!nnp || atoi(nnp + 11) != 1)
			return 15;
	}
	closedir(d);
	if (threads != 4)
		return 16;
	/* The sleepers were not broken by the signal. */
	if (write(fds[1], "x", 1) != 1)
		return 17;
	pthread_mutex_lock(&mu);
	stop = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	if (s[0].woke_early)
		return 18;
	/* A thread created now inherits the set. */
	uint64_t late = 0;
	pthread_t lt;
	if (pthread_create(&lt, NULL, late_main, &late))
		return 19;
	pthread_join(lt, NULL);
	return late == p.runtime ? 0 : 20;
}

static void test_drop_all_threads(void)
{
	if (geteuid() != 0 || prctl(PR_CAPBSET_READ, 8 /* CAP_SETPCAP */, 0, 0, 0) != 1)
		SKIP("needs root with CAP_SETPCAP");
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		_exit(child());
	int st = 0;
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st));
	CHECK_EQ_INT(WEXITSTATUS(st), 0);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	RUN(test_names);
	RUN(test_plan);
	RUN(test_drop_all_threads);
	TEST_END();
}
