/* test_slab.c - the store's pools of same-size objects (storage/slab.c):
 * objects zeroed, aligned and reused; a page whose last object goes is
 * unmapped (the kernel says so); new objects fill the lowest page with
 * room first; a pool closed with objects out gives its pages back. */
#include "tests/unit/test.h"
#include "storage/slab.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

/* Whether the kernel has the page mapped: msync fails with ENOMEM if not. */
static int mapped(const void *p)
{
	void *pg = (void *)((uintptr_t)p & ~(uintptr_t)(SLAB_PAGE_BYTES - 1));
	if (msync(pg, SLAB_PAGE_BYTES, MS_ASYNC) == 0)
		return 1;
	return errno == ENOMEM ? 0 : -1;
}

static void test_reuse_and_zero(void)
{
	struct slab_pool p;
	slab_init(&p, 200);
	CHECK_EQ_INT(p.obj_bytes, 208);
	unsigned char *a = slab_alloc(&p), *b = slab_alloc(&p);
	CHECK(a && b && a != b);
	CHECK_EQ_INT((uintptr_t)a % 16, 0);
	CHECK_EQ_INT(p.npages, 1);
	CHECK_EQ_INT(p.nobjs, 2);
	memset(a, 0xab, 200);
	slab_free(&p, a);
	unsigned char *c = slab_alloc(&p);
	CHECK(c == a); /* the freed slot is taken again */
	int zero = 1;
	for (int i = 0; i < 200; i++)
		zero &= c[i] == 0;
	CHECK(zero);
	slab_free(&p, NULL);
	slab_free(&p, b);
	slab_free(&p, c);
	CHECK_EQ_INT(p.npages, 0);
	CHECK_EQ_INT(p.nobjs, 0);
	slab_fini(&p);
}

static void test_empty_pages_unmapped(void)
{
	struct slab_pool p;
	slab_init(&p, 256);
	size_t n = 3 * (size_t)p.per_page;
	void **v = calloc(n, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		CHECK((v[i] = slab_alloc(&p)) != NULL);
	CHECK_EQ_INT(p.npages, 3);
	/* Objects of one page share it; the next page's first is elsewhere. */
	uintptr_t mask = ~(uintptr_t)(SLAB_PAGE_BYTES - 1);
	CHECK(((uintptr_t)v[0] & mask) == ((uintptr_t)v[p.per_page - 1] & mask));
	CHECK(((uintptr_t)v[0] & mask) != ((uintptr_t)v[p.per_page] & mask));
	/* The middle page emptied: gone from the process, the others stay. */
	void *mid = v[p.per_page];
	CHECK_EQ_INT(mapped(mid), 1);
	for (size_t i = p.per_page; i < 2 * (size_t)p.per_page; i++)
		slab_free(&p, v[i]);
	CHECK_EQ_INT(p.npages, 2);
	CHECK_EQ_INT(mapped(mid), 0);
	CHECK_EQ_INT(mapped(v[0]), 1);
	CHECK_EQ_INT(mapped(v[n - 1]), 1);
	/* Holes in the first and the last page: new objects fill the lowest. */
	void *low = v[0] < v[n - 1] ? v[0] : v[n - 1];
	void *high = low == v[0] ? v[n - 1] : v[0];
	slab_free(&p, high);
	slab_free(&p, low);
	CHECK(slab_alloc(&p) == low);
	CHECK(slab_alloc(&p) == high);
	CHECK_EQ_INT(p.npages, 2);
	/* Closed with objects out: its pages are given back all the same. */
	slab_fini(&p);
	CHECK_EQ_INT(mapped(v[0]), 0);
	CHECK_EQ_INT(mapped(v[n - 1]), 0);
	CHECK_EQ_INT(p.npages, 0);
	free(v);
}

int main(void)
{
	RUN(test_reuse_and_zero);
	RUN(test_empty_pages_unmapped);
	TEST_END();
}
