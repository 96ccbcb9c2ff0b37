/* Pools of same-size objects on their own mapped pages (storage/slab.c).
 *
 * The store makes and frees its per-series objects as containers come and
 * go. From malloc they land between long-lived objects of the main heap
 * and, once freed, leave holes glibc cannot give back (it returns only
 * whole free pages at the heap's top or inside large free chunks), so a
 * churning host's agent spreads. Here each object size has its own pages:
 * objects of live series fill the oldest pages first, and a page whose
 * last object goes is unmapped at once. Private to storage/; not
 * thread-safe: the caller holds the lock that guards the objects. */
#ifndef STORAGE_SLAB_H
#define STORAGE_SLAB_H

#include <stddef.h>
#include <stdint.h>

#define SLAB_PAGE_BYTES (64u * 1024u)

struct slab_page;

struct slab_pool {
	size_t obj_bytes;          /* rounded up to 16 */
	uint32_t per_page;         /* objects a page holds */
	struct slab_page *partial; /* pages with a free slot, lowest address first */
	struct slab_page *full;    /* pages without */
	size_t npages;             /* pages mapped */
	size_t nobjs;              /* objects handed out */
};

/* Sets up an empty pool of objects of obj_bytes (at most a quarter page). */
void slab_init(struct slab_pool *p, size_t obj_bytes);

/* A zeroed object, or NULL when no page could be mapped. The pool owns its
 * memory; give it back with slab_free. */
void *slab_alloc(struct slab_pool *p);

/* Gives an object of p back (NULL: nothing); unmaps its page if it was the
 * page's last object. */
void slab_free(struct slab_pool *p, void *obj);

/* Unmaps every page, objects still handed out included. */
void slab_fini(struct slab_pool *p);

#endif
