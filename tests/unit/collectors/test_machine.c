/*
 * test_machine.c - the host totals docker stats divides by: /proc/stat cpu
 * lines (the seven fields the Docker daemon sums, online CPUs counted from
 * cpuN lines) and MemTotal, from a fixture host root and malformed text.
 */
#include <errno.h>

#include "collectors/collector.h"
#include "../test.h"

static void test_parse_stat(void)
{
	double s = -1;
	int cpus = -1;
	/* steal (30) is not part of the sum, as in the daemon. */
	CHECK(coll_machine_parse_stat("cpu  100 1 50 800 10 0 9 30 0 0\n"
				      "cpu0 50 0 25 400 5 0 4 15 0 0\n"
				      "cpu1 50 1 25 400 5 0 5 15 0 0\n"
				      "intr 5 6 7\n", 100, &s, &cpus) == 0);
	CHECK_EQ_DBL(s, 9.7);
	CHECK_EQ_INT(cpus, 2);
	/* USER_HZ other than 100 */
	CHECK(coll_machine_parse_stat("cpu  250 0 0 0 0 0 0\ncpu0 250 0 0 0 0 0 0\n", 250, &s,
				      &cpus) == 0);
	CHECK_EQ_DBL(s, 1.0);
	CHECK_EQ_INT(cpus, 1);
	/* offline CPUs have no line: counts what is there (cpu0, cpu3) */
	CHECK(coll_machine_parse_stat("cpu  1 1 1 1 1 1 1\ncpu0 1 1 1 1 1 1 1\n"
				      "cpu3 1 1 1 1 1 1 1\n", 100, &s, &cpus) == 0);
	CHECK_EQ_INT(cpus, 2);
}

static void test_parse_bad(void)
{
	double s = 0, m = 0;
	int cpus = 0;
	CHECK(coll_machine_parse_stat("", 100, &s, &cpus) == -EINVAL);
	CHECK(coll_machine_parse_stat("cpu  1 2 3\ncpu0 1 2 3\n", 100, &s, &cpus) == -EINVAL);
	CHECK(coll_machine_parse_stat("cpu0 1 1 1 1 1 1 1\n", 100, &s, &cpus) == -EINVAL);
	CHECK(coll_machine_parse_stat("cpu  1 1 1 1 1 1 1\nintr 1\n", 100, &s, &cpus) == -EINVAL);
	CHECK(coll_machine_parse_meminfo("MemFree: 1 kB\n", &m) == -EINVAL);
	CHECK(coll_machine_parse_meminfo("MemTotal: kB\n", &m) == -EINVAL);
	CHECK(coll_machine_parse_meminfo("XMemTotal: 5 kB\n", &m) == -EINVAL);
	CHECK(coll_machine_parse_meminfo("MemTotal:       1024 kB\n", &m) == 0);
	CHECK_EQ_DBL(m, 1048576.0);
}

static void test_fixture_root(void)
{
	struct coll_machine m;
	CHECK(hostroot_set(FIXTURES "/machine") == 0);
	CHECK(coll_machine_open(&m) == 0);
	CHECK(coll_machine_read(&m) == 0);
	/* the fixture line: 22248+266+12674+202521+809+0+167 ticks at USER_HZ */
	CHECK_EQ_DBL(m.cpu_seconds, 238685.0 / (double)m.user_hz);
	CHECK_EQ_INT(m.cpus, 2);
	CHECK_EQ_DBL(m.memory_bytes, 24684096.0 * 1024);
	/* re-reading the open files gives the same */
	CHECK(coll_machine_read(&m) == 0);
	CHECK_EQ_INT(m.cpus, 2);
	coll_machine_close(&m);
	coll_machine_close(&m);         /* twice is fine */
	coll_machine_close(NULL);

	/* a root without /proc: the open fails cleanly */
	CHECK(hostroot_set(FIXTURES "/cgroup/v2") == 0);
	CHECK(coll_machine_open(&m) == -ENOENT);
	CHECK_EQ_INT(m.stat_fd, -1);
	CHECK(coll_machine_read(&m) == -EBADF);
	coll_machine_close(&m);
	hostroot_set("/");
}

/* What monitor top's header reads: idle + iowait, MemAvailable, loadavg. */
static void test_parse_header_values(void)
{
	double idle = 0, avail = 0, load[3] = { 0 };
	CHECK(coll_machine_parse_idle("cpu  100 5 50 1000 20 3 2 0 0 0\ncpu0 1 1 1 1 1 1 1\n",
				      100, &idle) == 0);
	CHECK_EQ_DBL(idle, 10.2);        /* (1000 + 20) / 100 */
	CHECK(coll_machine_parse_idle("cpu0 1 2 3 4 5\n", 100, &idle) == -EINVAL);
	CHECK(coll_machine_parse_idle("cpu  1 2 3\n", 100, &idle) == -EINVAL);
	CHECK(coll_machine_parse_available("MemTotal: 100 kB\nMemFree: 5 kB\nMemAvailable:     "
					   "2048 kB\n", &avail) == 0);
	CHECK_EQ_DBL(avail, 2048.0 * 1024);
	CHECK(coll_machine_parse_available("MemTotal: 100 kB\nMemFree: 5 kB\n", &avail) == -ENOENT);
	CHECK(coll_machine_parse_available("MemTotal: 1 kB\nMemAvailable: x\n", &avail) == -EINVAL);
	CHECK(coll_machine_parse_loadavg("0.52 1.25 2.00 3/456 7890\n", load) == 0);
	CHECK_EQ_DBL(load[0], 0.52);
	CHECK_EQ_DBL(load[1], 1.25);
	CHECK_EQ_DBL(load[2], 2.0);
	CHECK(coll_machine_parse_loadavg("0.52 1.25\n", load) == -EINVAL);
	CHECK(coll_machine_parse_loadavg("", load) == -EINVAL);
}

static void test_real_host(void)
{
	struct coll_machine m;
	hostroot_set("/");
	if (coll_machine_open(&m) < 0)
		SKIP("no /proc/stat here");
	CHECK(coll_machine_read(&m) == 0);
	CHECK(m.cpus >= 1);
	CHECK(m.memory_bytes > 1e6);
	double first = m.cpu_seconds;
	CHECK(first > 0);
	CHECK(coll_machine_read(&m) == 0);
	CHECK(m.cpu_seconds >= first);
	CHECK(m.idle_seconds > 0 && m.idle_seconds <= m.cpu_seconds);
	CHECK(m.memory_available_bytes > 0 && m.memory_available_bytes <= m.memory_bytes);
	CHECK(m.load[0] >= 0 && m.load[2] >= 0);
	coll_machine_close(&m);
}

int main(void)
{
	RUN(test_parse_stat);
	RUN(test_parse_bad);
	RUN(test_fixture_root);
	RUN(test_parse_header_values);
	RUN(test_real_host);
	TEST_END();
}
