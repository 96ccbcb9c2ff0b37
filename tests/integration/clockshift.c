/*
 * clockshift.c - an LD_PRELOAD shim for test_faults: the wall clock of one
 * process stepped without touching the system clock.
 *
 * CLOCKSHIFT_FILE names a file holding a signed offset in milliseconds as
 * text; it is re-read at most every 50 ms (monotonic). CLOCK_REALTIME (and
 * _COARSE), gettimeofday and time get the offset added; every other clock
 * is untouched, so timers and intervals run on as the kernel keeps them.
 * Built by the test with cc -shared -fPIC; not part of the agent.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*cg_fn)(clockid_t, struct timespec *);

static _Atomic int64_t offset_ms;
static _Atomic int64_t read_at_ns;

static int64_t offset(cg_fn real)
{
	struct timespec m;
	real(CLOCK_MONOTONIC, &m);
	int64_t now = (int64_t)m.tv_sec * 1000000000 + m.tv_nsec;
	if (now - read_at_ns > 50000000) {
		read_at_ns = now;
		const char *p = getenv("CLOCKSHIFT_FILE");
		int fd = p ? open(p, O_RDONLY | O_CLOEXEC) : -1;
		if (fd >= 0) {
			char b[32] = { 0 };
			if (read(fd, b, sizeof(b) - 1) > 0)
				offset_ms = strtoll(b, NULL, 10);
			close(fd);
		}
	}
	return offset_ms;
}

static cg_fn real_cg(void)
{
	return (cg_fn)dlsym(RTLD_NEXT, "clock_gettime");
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
	cg_fn real = real_cg();
	int rc = real(id, ts);
	if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) {
		int64_t ns = (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec + offset(real) * 1000000;
		ts->tv_sec = ns / 1000000000;
		ts->tv_nsec = ns % 1000000000;
	}
	return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
	struct timespec ts;
	(void)tz;
	clock_gettime(CLOCK_REALTIME, &ts);
	tv->tv_sec = ts.tv_sec;
	tv->tv_usec = ts.tv_nsec / 1000;
	return 0;
}

time_t time(time_t *t)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (t)
		*t = ts.tv_sec;
	return ts.tv_sec;
}
