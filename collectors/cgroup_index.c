/*
 * cgroup_index.c - the cgroup iterator's table of tracked directories
 * (cgi_index in bpf/cgroup_iter.h): (kernfs id, hierarchy) -> slot, open
 * addressing with linear probing, kept here in a copy and written through
 * to the BPF array entry by entry. Only the tick thread, which also runs
 * the walks, calls these, so a walk never sees a table half written.
 *
 * The table is at most half full (live and deleted entries), grows by
 * doubling (rebuilt from the live entries, deleted ones dropped) and is
 * rebuilt in place when deletions fill it; every key is found within
 * CGI_INDEX_PROBES entries of its home, which the program relies on.
 */
#include "collectors/cgroup_iter.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int write_ent(struct cgi_index *x, uint32_t k)
{
	return bpf_map_update_elem(x->map_fd, &k, &x->tab[k], BPF_ANY) < 0 ? -errno : 0;
}

/* Where (id, hier) is, or where it would go (the first free entry on its
 * probe path); -1 when neither is within the probe limit. */
static int64_t probe(const struct cgi_index *x, uint64_t id, uint32_t hier, bool *found)
{
	uint32_t mask = (1u << x->bits) - 1, home = cgi_index_home(id, hier, x->bits);
	int64_t free_at = -1;
	*found = false;
	for (uint32_t p = 0; p < CGI_INDEX_PROBES; p++) {
		uint32_t k = (home + p) & mask;
		const struct cgi_ent *e = &x->tab[k];
		if (e->slot1 == CGI_ENT_EMPTY)
			return free_at >= 0 ? free_at : k;
		if (e->slot1 == CGI_ENT_GONE) {
			if (free_at < 0)
				free_at = k;
		} else if (e->cgroup_id == id && e->hierarchy_id == hier) {
			*found = true;
			return k;
		}
	}
	return free_at;
}

/* A table of 2^bits holding the live entries of x (at least bits, more
 * when one would sit past the probe limit), written whole to the map. */
static int rebuild(struct cgi_index *x, uint32_t bits)
{
	struct cgi_index n = { .map_fd = x->map_fd, .bits_out = x->bits_out };
	for (;; bits++) {
		if (bits > CGI_INDEX_BITS_MAX)
			return -ENOSPC;
		free(n.tab);
		n.bits = bits;
		n.live = n.used = 0;
		if (!(n.tab = calloc((size_t)1 << bits, sizeof(*n.tab))))
			return -ENOMEM;
		bool fits = true;
		for (size_t k = 0; x->tab && k < ((size_t)1 << x->bits) && fits; k++) {
			const struct cgi_ent *e = &x->tab[k];
			bool found;
			if (e->slot1 == CGI_ENT_EMPTY || e->slot1 == CGI_ENT_GONE)
				continue;
			int64_t at = probe(&n, e->cgroup_id, e->hierarchy_id, &found);
			if (at < 0)
				fits = false;
			else
				n.tab[at] = *e, n.live++, n.used++;
		}
		if (fits)
			break;
	}
	for (uint32_t k = 0; k < (1u << bits); k++) {
		int err = write_ent(&n, k);
		if (err < 0) {
			free(n.tab);
			return err;
		}
	}
	free(x->tab);
	*x = n;
	*x->bits_out = bits;
	return 0;
}

int cgi_index_init(struct cgi_index *x, int map_fd, uint32_t *bits_out)
{
	memset(x, 0, sizeof(*x));
	x->map_fd = map_fd;
	x->bits_out = bits_out;
	return rebuild(x, CGI_INDEX_BITS_MIN);
}

void cgi_index_fini(struct cgi_index *x)
{
	free(x->tab);
	x->tab = NULL;
}

int cgi_index_put(struct cgi_index *x, uint64_t id, uint32_t hier, uint32_t slot)
{
	if ((size_t)(x->used + 1) * 2 > ((size_t)1 << x->bits)) {
		/* Half full: room for four times the live entries (deleted
		 * ones go), so the next rebuild is as far away again. */
		uint32_t bits = CGI_INDEX_BITS_MIN;
		while (bits < CGI_INDEX_BITS_MAX && ((size_t)1 << bits) < (size_t)(x->live + 1) * 4)
			bits++;
		int err = rebuild(x, bits);
		if (err < 0)
			return err;
	}
	for (;;) {
		bool found;
		int64_t at = probe(x, id, hier, &found);
		if (at >= 0) {
			struct cgi_ent *e = &x->tab[at];
			if (!found) {
				x->live++;
				x->used += e->slot1 == CGI_ENT_EMPTY;
			}
			*e = (struct cgi_ent){ .cgroup_id = id, .hierarchy_id = hier, .slot1 = slot + 1 };
			return write_ent(x, (uint32_t)at);
		}
		/* No free entry within reach of its home: a bigger table. */
		int err = rebuild(x, x->bits + 1);
		if (err < 0)
			return err;
	}
}

void cgi_index_del(struct cgi_index *x, uint64_t id, uint32_t hier)
{
	bool found;
	int64_t at = probe(x, id, hier, &found);
	if (!found)
		return;
	x->tab[at].slot1 = CGI_ENT_GONE; /* the probe paths through it stay whole */
	x->live--;
	(void)write_ent(x, (uint32_t)at);
}
