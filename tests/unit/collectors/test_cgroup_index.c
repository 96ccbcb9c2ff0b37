/*
 * test_cgroup_index.c - the cgroup iterator's table of tracked directories
 * (collectors/cgroup_index.c) on a real BPF array, read back the way the
 * program reads it (bpf/cgroup_iter.bpf.c index_find): every live key is
 * found with its slot within CGI_INDEX_PROBES of its home, deleted keys
 * are not, through growth, deletions and rebuilds. Needs root (BPF).
 */
#include "collectors/cgroup_iter.h"
#include "tests/unit/test.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

/* What the program does: the slot of (id, hier), or -1. */
static int64_t find_in_map(int fd, uint32_t bits, uint64_t id, uint32_t hier)
{
	uint32_t mask = (1u << bits) - 1, home = cgi_index_home(id, hier, bits);
	for (uint32_t p = 0; p < CGI_INDEX_PROBES; p++) {
		uint32_t k = (home + p) & mask;
		struct cgi_ent e;
		if (bpf_map_lookup_elem(fd, &k, &e) < 0 || e.slot1 == CGI_ENT_EMPTY)
			return -1;
		if (e.cgroup_id == id && e.hierarchy_id == hier && e.slot1 != CGI_ENT_GONE)
			return e.slot1 - 1;
	}
	return -1;
}

static void test_put_find_delete(void)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "cgi_index_t", sizeof(uint32_t),
				sizeof(struct cgi_ent), 1u << CGI_INDEX_BITS_MAX, NULL);
	if (fd < 0)
		SKIP("no BPF array map here (not root?)");
	struct cgi_index x;
	uint32_t bits = 0;
	CHECK_EQ_INT(cgi_index_init(&x, fd, &bits), 0);
	CHECK_EQ_INT(bits, CGI_INDEX_BITS_MIN);
	enum { N = 3000 };
	/* ids as kernfs gives them (close together), in two hierarchies */
	for (uint32_t i = 0; i < N; i++)
		CHECK_EQ_INT(cgi_index_put(&x, 4000 + i, i % 2 ? 7 : 0, i), 0);
	CHECK(bits > CGI_INDEX_BITS_MIN);
	CHECK(x.used * 2 <= (1u << bits));
	for (uint32_t i = 0; i < N; i += 2)
		cgi_index_del(&x, 4000 + i, 0);
	/* moved to another slot: found there, once */
	CHECK_EQ_INT(cgi_index_put(&x, 4001, 7, 9999), 0);
	int bad = 0;
	for (uint32_t i = 0; i < N; i++) {
		int64_t want = i == 1 ? 9999 : i % 2 ? (int64_t)i : -1;
		bad += find_in_map(fd, bits, 4000 + i, i % 2 ? 7 : 0) != want;
		bad += find_in_map(fd, bits, 4000 + i, i % 2 ? 0 : 7) != -1; /* other hierarchy */
	}
	CHECK_EQ_INT(bad, 0);
	/* churn: deleted entries are dropped by rebuilds, the table stays small */
	for (uint32_t round = 0; round < 20; round++) {
		for (uint32_t i = 0; i < 500; i++)
			CHECK_EQ_INT(cgi_index_put(&x, 100000 + round * 500 + i, 3, i), 0);
		for (uint32_t i = 0; i < 500; i++)
			cgi_index_del(&x, 100000 + round * 500 + i, 3);
	}
	CHECK_EQ_INT(x.live, N / 2);
	CHECK(bits <= 14);
	for (uint32_t i = 1; i < N; i += 2)
		bad += find_in_map(fd, bits, 4000 + i, 7) != (i == 1 ? 9999 : (int64_t)i);
	CHECK_EQ_INT(bad, 0);
	cgi_index_fini(&x);
	close(fd);
}

int main(void)
{
	RUN(test_put_find_delete);
	TEST_END();
}
