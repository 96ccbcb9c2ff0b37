/* Pools of same-size objects on their own mapped pages: see slab.h for why.
 *
 * A page is SLAB_PAGE_BYTES, aligned to its size so that an object finds
 * its page by masking its address. The page starts with its header; the
 * rest is slots, the free ones linked through their first word. Pages with
 * a free slot are kept in address order and objects are taken from the
 * lowest, so the objects that live long gather in few pages and the pages
 * that churned objects had empty out and go back to the kernel. */
#include "storage/slab.h"

#include <assert.h>
#include <string.h>
#include <sys/mman.h>

/* Under ASan a free slot is poisoned past its link word, so that a use of
 * a freed series is reported as it would be from malloc. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct slab_page {
	struct slab_page *next, *prev; /* in the pool's partial or full list */
	void *free;                    /* first free slot */
	uint32_t used;
	_Alignas(16) unsigned char slots[];
};

static struct slab_page *page_of(const void *obj)
{
	return (struct slab_page *)((uintptr_t)obj & ~(uintptr_t)(SLAB_PAGE_BYTES - 1));
}

/* A page aligned to its size: twice the size mapped, the ends cut off. */
static struct slab_page *page_map(const struct slab_pool *p)
{
	size_t len = 2 * (size_t)SLAB_PAGE_BYTES;
	unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	unsigned char *a = (unsigned char *)(((uintptr_t)m + SLAB_PAGE_BYTES - 1) &
					     ~(uintptr_t)(SLAB_PAGE_BYTES - 1));
	if (a > m)
		munmap(m, (size_t)(a - m));
	if (m + len > a + SLAB_PAGE_BYTES)
		munmap(a + SLAB_PAGE_BYTES, (size_t)(m + len - (a + SLAB_PAGE_BYTES)));
	struct slab_page *pg = (struct slab_page *)a;
	/* The mapping is zeroed: only the free list needs setting. */
	for (uint32_t i = p->per_page; i-- > 0;) {
		void **slot = (void **)(pg->slots + (size_t)i * p->obj_bytes);
		*slot = pg->free;
		pg->free = slot;
		POISON(slot + 1, p->obj_bytes - sizeof(*slot));
	}
	return pg;
}

/* Unpoisoned first: whatever is mapped there next starts clean. */
static void page_unmap(struct slab_page *pg)
{
	UNPOISON(pg, SLAB_PAGE_BYTES);
	munmap(pg, SLAB_PAGE_BYTES);
}

static void list_remove(struct slab_page **head, struct slab_page *pg)
{
	if (pg->prev)
		pg->prev->next = pg->next;
	else
		*head = pg->next;
	if (pg->next)
		pg->next->prev = pg->prev;
	pg->next = pg->prev = NULL;
}

/* Into a list in address order (lists are a few dozen pages). */
static void list_insert(struct slab_page **head, struct slab_page *pg)
{
	struct slab_page *prev = NULL, *at = *head;
	while (at && at < pg) {
		prev = at;
		at = at->next;
	}
	pg->prev = prev;
	pg->next = at;
	if (at)
		at->prev = pg;
	if (prev)
		prev->next = pg;
	else
		*head = pg;
}

void slab_init(struct slab_pool *p, size_t obj_bytes)
{
	memset(p, 0, sizeof(*p));
	p->obj_bytes = (obj_bytes + 15) & ~(size_t)15;
	assert(p->obj_bytes <= SLAB_PAGE_BYTES / 4);
	p->per_page = (uint32_t)((SLAB_PAGE_BYTES - sizeof(struct slab_page)) / p->obj_bytes);
}

void *slab_alloc(struct slab_pool *p)
{
	struct slab_page *pg = p->partial;
	if (!pg) {
		if (!(pg = page_map(p)))
			return NULL;
		p->npages++;
		list_insert(&p->partial, pg);
	}
	void **obj = pg->free;
	pg->free = *obj;
	if (++pg->used == p->per_page) {
		list_remove(&p->partial, pg);
		list_insert(&p->full, pg);
	}
	p->nobjs++;
	UNPOISON(obj, p->obj_bytes);
	memset(obj, 0, p->obj_bytes);
	return obj;
}

void slab_free(struct slab_pool *p, void *obj)
{
	if (!obj)
		return;
	struct slab_page *pg = page_of(obj);
	if (pg->used == p->per_page) {
		list_remove(&p->full, pg);
		list_insert(&p->partial, pg);
	}
	*(void **)obj = pg->free;
	pg->free = obj;
	POISON((void **)obj + 1, p->obj_bytes - sizeof(void *));
	pg->used--;
	p->nobjs--;
	if (!pg->used) {
		list_remove(&p->partial, pg);
		page_unmap(pg);
		p->npages--;
	}
}

void slab_fini(struct slab_pool *p)
{
	struct slab_page *lists[2] = {p->partial, p->full};
	for (int k = 0; k < 2; k++) {
		for (struct slab_page *pg = lists[k], *next; pg; pg = next) {
			next = pg->next;
			page_unmap(pg);
		}
	}
	p->partial = p->full = NULL;
	p->npages = p->nobjs = 0;
}
