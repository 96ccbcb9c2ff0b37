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

#include <stdio.h>
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

/* Bytes of the process's mappings of BPF maps (/proc/self/maps). */
static size_t bpf_map_mapped_bytes(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	size_t sum = 0;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (strstr(line, "anon_inode:bpf-map") && sscanf(line, "%lx-%lx", &lo, &hi) == 2)
			sum += hi - lo;
	}
	if (f)
		fclose(f);
	return sum;
}

/* The records are mapped for the slots in use, not all CGI_SLOTS (~2.1 MB
 * of RSS): slots past the first mapping's get it grown, and are usable. */
static void test_records_mapped_as_slots_grow(void)
{
	char why[512] = "";
	struct cg_layout l;
	if (cg_layout_detect(&l) < 0)
		SKIP("no cgroup hierarchy here");
	struct cgi *it = cgi_open(&l, false, why, sizeof(why));
	if (!it)
		SKIP(why);
	enum { N = 600 };
	static uint32_t slots[N];
	uint64_t ids[CGI_NIDS];
	for (uint32_t i = 0; i < N; i++) {
		/* No cgroup has these ids: the walks leave their records empty. */
		for (int c = 0; c < CGI_NIDS; c++)
			ids[c] = (UINT64_C(1) << 60) + i;
		slots[i] = CGI_NO_SLOT;
		CHECK(cgi_track(it, ids, &slots[i]) == 0);
		CHECK_EQ_INT(slots[i], i); /* lowest first */
	}
	CHECK(cgi_refresh(it) >= 0);
	char text[256];
	CHECK_EQ_INT(cgi_file_id("memory.usage_in_bytes"), CGF_MEM_USAGE);
	CHECK_EQ_INT(cgi_file_id("cpuset.cpus"), -1);
	CHECK(cgi_text(it, slots[N - 1], CGF_MEM_USAGE, text, sizeof(text)) < 0);
	CHECK(cgi_text(it, slots[N - 1], -1, text, sizeof(text)) < 0);
	CHECK(bpf_map_mapped_bytes() < (size_t)N * 2 * sizeof(struct cgi_record) + (64 << 10));
	for (uint32_t i = 0; i < N; i++) {
		for (int c = 0; c < CGI_NIDS; c++)
			ids[c] = (UINT64_C(1) << 60) + i;
		cgi_untrack(it, ids, slots[i]);
	}
	cgi_close(it);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	RUN(test_cputime_adjust);
	RUN(test_fixture_tree_refused);
	RUN(test_records_mapped_as_slots_grow);
	TEST_END();
}
