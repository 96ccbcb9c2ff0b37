/*
 * ebpf_block.c - loader of the block I/O probe (bpf/block.bpf.c): request
 * latency, requests and bytes per (cgroup, disk, read/write) from block
 * tracepoints.
 *
 * Which tracepoints: the clock starts at ebpf.block.start (block_rq_issue:
 * device time; block_rq_insert: with the I/O scheduler's queue), where the
 * request and its bytes are counted too, and stops at ebpf.block.done
 * (block_rq_complete), which the kernel does not fire for every request
 * (bpf/block.bpf.c); the owner is taken where the
 * submitter is current for sure: block_io_start (Linux 6.5+), else
 * block_rq_insert, else at the start tracepoint itself. Each name is
 * checked against the kernel's BTF, and for raw attach its first argument
 * must be a struct request *.
 *
 * Reading: the whole histogram map once per tick (batch lookup, falling
 * back to key-by-key on kernels without it), sorted by cgroup id so each
 * container finds its rows by binary search.
 */
#include "collectors/ebpf.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/block.skel.h"

struct ebpf_block {
	struct block_bpf *skel;
	struct bpf_link *owner, *start, *done, *rmdir;
	struct ebpf_block_entry *tab;    /* last refresh, sorted by cgroup id */
	size_t n, cap, max;
	struct ebpf_block_key *keys;     /* batch buffers */
	struct ebpf_block_value *vals;
	bool no_batch;
};

int ebpf_block_open(struct ebpf_block **out, const struct ebpf_env *env, char *why, size_t whysize)
{
	const struct ebpf_config *cfg = env->cfg;
	struct ebpf_block *b = calloc(1, sizeof(*b));
	const char *owner_tp = NULL;
	char scratch[256];
	int err;

	*out = NULL;
	if (!b)
		return -ENOMEM;
	b->max = cfg->max_cgroups;
	if ((err = ebpf_tp_check(env, "block", cfg->block_start, "request", why, whysize)) < 0 ||
	    (err = ebpf_tp_check(env, "block", cfg->block_done, "request", why, whysize)) < 0 ||
	    (err = ebpf_tp_check(env, "cgroup", "cgroup_rmdir", "cgroup", why, whysize)) < 0)
		goto fail;
	/* The owner tracepoint is a refinement: use the best one there is. */
	if (ebpf_tp_check(env, "block", "block_io_start", "request", scratch, sizeof(scratch)) == 0)
		owner_tp = "block_io_start";
	else if (ebpf_tp_check(env, "block", "block_rq_insert", "request", scratch, sizeof(scratch)) == 0)
		owner_tp = "block_rq_insert";
	if (owner_tp && (!strcmp(owner_tp, cfg->block_start) || !strcmp(owner_tp, cfg->block_done)))
		owner_tp = NULL;

	b->skel = block_bpf__open();
	if (!b->skel) {
		err = -errno;
		ebpf_explain(err, "opening the program", why, whysize);
		goto fail;
	}
	bpf_map__set_max_entries(b->skel->maps.block_stats, cfg->max_cgroups);
	bpf_map__set_max_entries(b->skel->maps.block_inflight, cfg->max_inflight_io);
	static const char *const no_owner[] = { "block_owner_raw", "block_owner_tp", NULL };
	ebpf_pick_programs(b->skel->obj, env->attach, owner_tp ? NULL : no_owner);
	if ((err = block_bpf__load(b->skel)) < 0) {
		ebpf_explain(err, "loading", why, whysize);
		goto fail;
	}
	bool raw = env->attach == EBPF_TP_RAW;
	if (owner_tp) {
		b->owner = ebpf_attach_tp(env, raw ? b->skel->progs.block_owner_raw :
					  b->skel->progs.block_owner_tp, "block", owner_tp, why, whysize);
		if (!b->owner)
			goto fail_attach;
	}
	b->start = ebpf_attach_tp(env, raw ? b->skel->progs.block_start_raw :
				  b->skel->progs.block_start_tp, "block", cfg->block_start, why, whysize);
	if (!b->start)
		goto fail_attach;
	b->done = ebpf_attach_tp(env, raw ? b->skel->progs.block_done_raw :
				 b->skel->progs.block_done_tp, "block", cfg->block_done, why, whysize);
	if (!b->done)
		goto fail_attach;
	b->rmdir = ebpf_attach_tp(env, raw ? b->skel->progs.block_rmdir_raw :
				  b->skel->progs.block_rmdir_tp, "cgroup", "cgroup_rmdir", why, whysize);
	if (!b->rmdir)
		goto fail_attach;
	*out = b;
	return 0;
fail_attach:
	err = -ENOENT;
fail:
	ebpf_block_close(b);
	return err < 0 ? err : -EINVAL;
}

void ebpf_block_close(struct ebpf_block *b)
{
	if (!b)
		return;
	bpf_link__destroy(b->rmdir);
	bpf_link__destroy(b->done);
	bpf_link__destroy(b->start);
	bpf_link__destroy(b->owner);
	block_bpf__destroy(b->skel);
	free(b->tab);
	free(b->keys);
	free(b->vals);
	free(b);
}

struct bpf_object *ebpf_block_object(struct ebpf_block *b)
{
	return b ? b->skel->obj : NULL;
}

static int grow(struct ebpf_block *b)
{
	size_t cap = b->cap ? b->cap * 2 : 64;
	if (cap > b->max)
		cap = b->max;
	if (cap <= b->cap)
		return -ENOSPC;
	struct ebpf_block_entry *tab = realloc(b->tab, cap * sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	b->tab = tab;
	struct ebpf_block_key *keys = realloc(b->keys, cap * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	b->keys = keys;
	struct ebpf_block_value *vals = realloc(b->vals, cap * sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	b->vals = vals;
	b->cap = cap;
	return 0;
}

/* One batch pass over the map into keys/vals; -ENOSPC when it did not fit. */
static int read_batch(struct ebpf_block *b, int fd, size_t *n)
{
	__u64 batch[4] = { 0 };  /* opaque to us; htab uses a bucket number */
	bool first = true;

	*n = 0;
	for (;;) {
		__u32 count = (__u32)(b->cap - *n);
		if (!count)
			return -ENOSPC;
		int rc = bpf_map_lookup_batch(fd, first ? NULL : batch, batch, b->keys + *n,
					      b->vals + *n, &count, NULL);
		int e = rc < 0 ? errno : 0;
		*n += count;
		first = false;
		if (rc == 0)
			continue;
		if (e == ENOENT)
			return 0;
		return -e;
	}
}

static int read_keys(struct ebpf_block *b, int fd, size_t *n)
{
	struct ebpf_block_key key, next;
	void *prev = NULL;

	*n = 0;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		if (*n >= b->cap)
			return -ENOSPC;
		if (bpf_map_lookup_elem(fd, &next, &b->vals[*n]) == 0)
			b->keys[(*n)++] = next;
		key = next;
		prev = &key;
	}
	return errno == ENOENT ? 0 : -errno;
}

static int by_cgroup(const void *pa, const void *pb)
{
	const struct ebpf_block_entry *a = pa, *b = pb;
	if (a->key.cgroup_id != b->key.cgroup_id)
		return a->key.cgroup_id < b->key.cgroup_id ? -1 : 1;
	if (a->key.dev != b->key.dev)
		return a->key.dev < b->key.dev ? -1 : 1;
	return a->key.op < b->key.op ? -1 : a->key.op > b->key.op;
}

int ebpf_block_refresh(struct ebpf_block *b)
{
	int fd = bpf_map__fd(b->skel->maps.block_stats);
	size_t n = 0;
	int rc;

	if (!b->cap && (rc = grow(b)) < 0)
		return rc;
	for (;;) {
		rc = b->no_batch ? read_keys(b, fd, &n) : read_batch(b, fd, &n);
		if (rc == -EINVAL || rc == -ENOTSUP || rc == -EOPNOTSUPP) {
			if (!b->no_batch) {
				b->no_batch = true;
				continue;
			}
		}
		if (rc != -ENOSPC)
			break;
		int g = grow(b);
		if (g < 0) {
			rc = 0;   /* full at the cap: use what fitted */
			break;
		}
	}
	if (rc < 0) {
		b->n = 0;
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		b->tab[i].key = b->keys[i];
		b->tab[i].val = b->vals[i];
	}
	qsort(b->tab, n, sizeof(*b->tab), by_cgroup);
	b->n = n;
	return (int)n;
}

const struct ebpf_block_entry *ebpf_block_find(const struct ebpf_block *b, uint64_t cgroup_id,
					       size_t *n)
{
	size_t lo = 0, hi = b->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (b->tab[mid].key.cgroup_id < cgroup_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t end = lo;
	while (end < b->n && b->tab[end].key.cgroup_id == cgroup_id)
		end++;
	*n = end - lo;
	return *n ? &b->tab[lo] : NULL;
}
