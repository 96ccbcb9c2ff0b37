/*
 * test_cgroup_iter.c - collectors/cgroup_iter.c without a kernel: the
 * user/system split of v1 cpuacct.stat (the kernel's cputime_adjust, which
 * the loader reproduces from the raw sums and prev_cputime), and the start
 * on a fixture tree, which must refuse with a reason so the collector
 * stays on the file path. The values against real cgroup files are checked
 * in tests/integration/test_cgroup_iter.py.
 */
#include "collectors/cgroup_iter.h"
#include "tests/unit/test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_cputime_adjust(void)
{
	static const struct {
		uint64_t rtime, user, sys, prev_u, prev_s; /* in */
		uint64_t ut, st;                           /* want */
	} cases[] = {
		/* prev already covers rtime: prev is returned as it is */
		{ 1000, 700, 300, 600, 400, 600, 400 },
		/* no system ticks yet: all of rtime is user time; no user ticks: all system */
		{ 1000, 50, 0, 0, 0, 1000, 0 },
		{ 1000, 0, 50, 0, 0, 0, 1000 },
		/* scaled by the tick ratio, floored: 30 * 1000 / 100, 1 * 1001 / 3 */
		{ 1000, 70, 30, 0, 0, 700, 300 },
		{ 1001, 2, 1, 0, 0, 668, 333 },
		/* neither goes backwards: stime held at prev, utime takes the rest ... */
		{ 2000, 90, 10, 500, 800, 1200, 800 },
		/* ... and utime held at prev, stime takes the rest */
		{ 2000, 10, 90, 1500, 100, 1500, 500 },
		/* no overflow in the product (128-bit, as mul_u64_u64_div_u64) */
		{ UINT64_C(1) << 62, UINT64_C(3) << 40, UINT64_C(1) << 40, 0, 0,
		  (UINT64_C(1) << 62) - (UINT64_C(1) << 60), UINT64_C(1) << 60 },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		uint64_t ut, st;
		cgi_cputime_adjust(cases[i].rtime, cases[i].user, cases[i].sys, cases[i].prev_u,
				   cases[i].prev_s, &ut, &st);
		CHECK_EQ_INT(ut, cases[i].ut);
		CHECK_EQ_INT(st, cases[i].st);
	}
}

static void test_fixture_tree_refused(void)
{
	char dir[] = "/tmp/test_cgroup_iter.XXXXXX", why[512] = "";
	CHECK(mkdtemp(dir) != NULL);
	struct cg_layout l;
	memset(&l, 0, sizeof(l));
	l.mode = CG_V1;
	snprintf(l.v1[CG_MEMORY], sizeof(l.v1[CG_MEMORY]), "%s", dir);
	struct cgi *it = cgi_open(&l, false, why, sizeof(why));
	CHECK(it == NULL);
	CHECK(strstr(why, "not a cgroup v1 hierarchy") != NULL);
	/* Pure v2: not the iterator's (the file path reads v2). */
	l.mode = CG_V2;
	why[0] = '\0';
	CHECK(cgi_open(&l, false, why, sizeof(why)) == NULL);
	CHECK(strstr(why, "v2") != NULL);
	rmdir(dir);
	cgi_close(NULL);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	RUN(test_cputime_adjust);
	RUN(test_fixture_tree_refused);
	TEST_END();
}
