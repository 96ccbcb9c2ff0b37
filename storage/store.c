/*
 * store.c - the head: series, their open chunks and roll-up accumulators,
 * and the append path the agent's tick drives.
 *
 * Each series keeps its newest raw samples in an open chunk, encoded as they
 * arrive, and two roll-up accumulators (1 m and 1 h buckets) whose closed
 * buckets are encoded into open roll-up chunks. A full chunk is sealed onto
 * the pending queue that the writer thread (db.c) empties into SQLite. The
 * snapshot path finds series through a per-container cache so that no label
 * text is parsed while a container's labels stay the same, and writes stale
 * markers for series that vanish from one snapshot to the next.
 */
#include "storage/internal.h"
#include "collectors/collector.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void store_config_defaults(struct store_config *c)
{
	memset(c, 0, sizeof(*c));
	c->enabled = true;
	c->retention_ms[STORE_TIER_RAW] = 3LL * 86400 * 1000;
	c->retention_ms[STORE_TIER_1M] = 30LL * 86400 * 1000;
	c->retention_ms[STORE_TIER_1H] = 365LL * 86400 * 1000;
	c->max_size_bytes = 4ULL << 30;
	c->flush_interval_ms = 10000;
	c->retention_interval_ms = 5 * 60 * 1000;
	c->evict_stale_after_ms = 10 * 60 * 1000;
}

const char *store_tier_name(enum store_tier t)
{
	static const char *const names[] = { "raw", "1m", "1h" };
	return (unsigned)t < NTIERS ? names[t] : "?";
}

int64_t store_tier_width_ms(enum store_tier t)
{
	return t == STORE_TIER_1M ? 60000 : t == STORE_TIER_1H ? 3600000 : 0;
}

enum store_tier store_tier_for_step(int64_t step_ms)
{
	if (step_ms >= 3600000)
		return STORE_TIER_1H;
	if (step_ms >= 60000)
		return STORE_TIER_1M;
	return STORE_TIER_RAW;
}

/* ---- series --------------------------------------------------------------- */

struct series *series_next(const struct store *s, uint32_t *id)
{
	for (uint32_t i = *id; i < s->byid_cap;) {
		const struct id_page *p = s->byid[i >> ID_PAGE_BITS];
		if (!p) {
			i = (i | (ID_PAGE - 1)) + 1;
			continue;
		}
		for (; i < s->byid_cap && p == s->byid[i >> ID_PAGE_BITS]; i++) {
			if (p->s[i & (ID_PAGE - 1)]) {
				*id = i;
				return p->s[i & (ID_PAGE - 1)];
			}
		}
	}
	return NULL;
}

/* Makes room for id in the page table and its page; -ENOMEM. */
static int byid_reserve(struct store *s, uint32_t id)
{
	if (id >= s->byid_cap) {
		size_t npages = s->byid_cap / ID_PAGE, want = npages ? npages : 16;
		while (want * ID_PAGE <= id)
			want *= 2;
		if (want > UINT32_MAX / ID_PAGE)
			want = UINT32_MAX / ID_PAGE;
		if (id >= want * ID_PAGE)
			return -ENOSPC;
		struct id_page **nb = realloc(s->byid, want * sizeof(*nb));
		if (!nb)
			return -ENOMEM;
		memset(nb + npages, 0, (want - npages) * sizeof(*nb));
		s->byid = nb;
		s->byid_cap = (uint32_t)(want * ID_PAGE);
	}
	struct id_page **p = &s->byid[id >> ID_PAGE_BITS];
	if (!*p) {
		if (!(*p = calloc(1, sizeof(**p))))
			return -ENOMEM;
		s->byid_pages++;
	}
	return 0;
}

/* Takes id's series out of the table, freeing its page when it was the last. */
static void byid_clear(struct store *s, uint32_t id)
{
	struct id_page **p = &s->byid[id >> ID_PAGE_BITS];
	(*p)->s[id & (ID_PAGE - 1)] = NULL;
	if (--(*p)->n == 0) {
		free(*p);
		*p = NULL;
		s->byid_pages--;
	}
}

static uint64_t pairs_hash(struct lpair **p, size_t n)
{
	return hash_bytes(p, n * sizeof(*p));
}

static int cmp_pair_name(const void *a, const void *b)
{
	const struct lpair *x = *(struct lpair *const *)a, *y = *(struct lpair *const *)b;
	return strcmp(x->name, y->name);
}

static struct series *series_find(struct store *s, struct lpair **pairs, size_t n, uint64_t h)
{
	if (!s->ht_nb)
		return NULL;
	for (struct series *se = s->ht[h & (s->ht_nb - 1)]; se; se = se->hnext)
		if (se->hash == h && se->nlabels == n &&
		    !memcmp(se->labels, pairs, n * sizeof(*pairs)))
			return se;
	return NULL;
}

static int ht_grow(struct store *s)
{
	if (s->nseries < s->ht_nb)
		return 0;
	size_t nnb = s->ht_nb ? s->ht_nb * 2 : 1024;
	struct series **nt = calloc(nnb, sizeof(*nt));
	if (!nt)
		return -ENOMEM;
	for (size_t i = 0; i < s->ht_nb; i++) {
		struct series *se = s->ht[i];
		while (se) {
			struct series *next = se->hnext;
			se->hnext = nt[se->hash & (nnb - 1)];
			nt[se->hash & (nnb - 1)] = se;
			se = next;
		}
	}
	free(s->ht);
	s->ht = nt;
	s->ht_nb = nnb;
	return 0;
}

/* Creates a series from sorted interned pairs; id 0 means "assign one". */
struct series *series_create(struct store *s, uint32_t id, struct lpair **pairs, size_t n,
			     enum store_kind kind)
{
	if (!id)
		id = s->next_id;
	if (byid_reserve(s, id) < 0 || ht_grow(s) < 0)
		goto fail;
	struct series *se = slab_alloc(&s->series_pool);
	if (!se)
		goto fail;
	se->labels = malloc(n * sizeof(*pairs));
	if (!se->labels) {
		slab_free(&s->series_pool, se);
		goto fail;
	}
	memcpy(se->labels, pairs, n * sizeof(*pairs));
	se->nlabels = (uint8_t)n;
	se->id = id;
	se->kind = (uint8_t)kind;
	se->hash = pairs_hash(pairs, n);
	se->min_t = INT64_MAX;
	se->max_t = INT64_MIN;
	se->last_t = se->prev_t = INT64_MIN;
	se->touched_ms = mono_ns() / 1000000;
	for (int k = 0; k < NTIERS; k++)
		se->disk_maxt[k] = INT64_MIN;
	se->disk_last_t = INT64_MIN;
	cenc_init(&se->raw, 1);
	for (size_t i = 0; i < n; i++) {
		if (lindex_add(&s->idx, pairs[i], id) < 0) {
			for (size_t j = 0; j < i; j++)
				lindex_remove(&s->idx, pairs[j], id);
			free(se->labels);
			slab_free(&s->series_pool, se);
			goto fail;
		}
	}
	se->hnext = s->ht[se->hash & (s->ht_nb - 1)];
	s->ht[se->hash & (s->ht_nb - 1)] = se;
	struct id_page *pg = s->byid[id >> ID_PAGE_BITS];
	pg->s[id & (ID_PAGE - 1)] = se;
	pg->n++;
	s->nseries++;
	s->series_epoch++;
	if (id >= s->next_id)
		s->next_id = id + 1;
	return se;
fail:
	/* A page made for it alone goes again. */
	if (id < s->byid_cap && s->byid[id >> ID_PAGE_BITS] && !s->byid[id >> ID_PAGE_BITS]->n) {
		free(s->byid[id >> ID_PAGE_BITS]);
		s->byid[id >> ID_PAGE_BITS] = NULL;
		s->byid_pages--;
	}
	return NULL;
}

/* Frees a series and takes it out of the index. Its pending chunks must be gone. */
void series_destroy(struct store *s, struct series *se)
{
	if (!se)
		return;
	series_free(s, se);
	s->cache_epoch++;
}

struct tier_head *tier_head_get(struct store *s, struct series *se, int k)
{
	if (!se->tier[k] && (se->tier[k] = slab_alloc(&s->tier_pool)))
		cenc_init(&se->tier[k]->enc, 5);
	return se->tier[k];
}

void tier_head_drop(struct store *s, struct series *se, int k)
{
	if (!se->tier[k])
		return;
	cenc_free(&se->tier[k]->enc);
	slab_free(&s->tier_pool, se->tier[k]);
	se->tier[k] = NULL;
}

/* The series' own memory: encoders, roll-up heads, labels, itself. */
static void series_mem_free(struct store *s, struct series *se)
{
	cenc_free(&se->raw);
	for (int k = 0; k < 2; k++)
		tier_head_drop(s, se, k);
	free(se->labels);
	slab_free(&s->series_pool, se);
}

void series_free(struct store *s, struct series *se)
{
	struct series **pp = &s->ht[se->hash & (s->ht_nb - 1)];
	while (*pp && *pp != se)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = se->hnext;
	for (size_t i = 0; i < se->nlabels; i++)
		lindex_remove(&s->idx, se->labels[i], se->id);
	byid_clear(s, se->id);
	s->nseries--;
	s->series_epoch++;
	series_mem_free(s, se);
}

int store_intern_labels(struct store *s, const struct store_label *labels, size_t n,
			struct lpair **out)
{
	size_t m = 0;
	bool have_name = false;
	for (size_t i = 0; i < n; i++) {
		if (!labels[i].value || !*labels[i].value)
			continue; /* an empty value is an absent label */
		if (!strcmp(labels[i].name, "__name__")) {
			if (!metric_name_valid(labels[i].value))
				return -EINVAL;
			have_name = true;
		} else if (!label_name_valid(labels[i].name)) {
			return -EINVAL;
		}
		if (m >= STORE_MAX_LABELS)
			return -EINVAL;
		out[m] = lindex_intern(&s->idx, labels[i].name, labels[i].value);
		if (!out[m])
			return -ENOMEM;
		m++;
	}
	if (!have_name)
		return -EINVAL;
	qsort(out, m, sizeof(*out), cmp_pair_name);
	for (size_t i = 1; i < m; i++)
		if (!strcmp(out[i]->name, out[i - 1]->name))
			return -EINVAL; /* a label twice */
	return (int)m;
}

/* Queues a series row for the next flush. */
int newser_push(struct store *s, uint32_t id)
{
	if (s->nnew == s->newcap) {
		size_t ncap = s->newcap ? s->newcap * 2 : 256;
		uint32_t *nn = realloc(s->newser, ncap * sizeof(*nn));
		if (!nn)
			return -ENOMEM;
		s->newser = nn;
		s->newcap = ncap;
	}
	s->newser[s->nnew++] = id;
	return 0;
}

static struct series *series_get_locked(struct store *s, const struct store_label *labels,
					size_t n, enum store_kind kind, int *err)
{
	struct lpair *pairs[STORE_MAX_LABELS];
	int m = store_intern_labels(s, labels, n, pairs);
	if (m < 0) {
		*err = m;
		return NULL;
	}
	uint64_t h = pairs_hash(pairs, (size_t)m);
	struct series *se = series_find(s, pairs, (size_t)m, h);
	if (se)
		return se;
	/* A series that left memory (cold.c) comes back under its old id. */
	uint32_t id = 0;
	int64_t b[3];
	char text[STORE_MAX_LABEL_BYTES * 2];
	if (pairs_format(pairs, (size_t)m, text, sizeof(text)) >= sizeof(text) ||
	    cold_find(s, text, &id, b) != 1)
		id = 0;
	if (id && series_by_id(s, id))
		id = 0; /* cannot be: the row's id is taken in memory */
	se = series_create(s, id, pairs, (size_t)m, kind);
	if (!se) {
		*err = -ENOMEM;
		return NULL;
	}
	if (id)
		cold_revived(s, se, b);
	/* A new row, or the old one again without bounds (it is in memory). */
	if (newser_push(s, se->id) < 0) {
		series_destroy(s, se);
		*err = -ENOMEM;
		return NULL;
	}
	return se;
}

int store_series(struct store *s, const struct store_label *labels, size_t n,
		 enum store_kind kind, uint32_t *id)
{
	int err = 0;
	pthread_rwlock_wrlock(&s->lock);
	struct series *se = series_get_locked(s, labels, n, kind, &err);
	if (se)
		*id = se->id;
	pthread_rwlock_unlock(&s->lock);
	return se ? 0 : err;
}

size_t pairs_format(struct lpair *const *pairs, size_t n, char *out, size_t size)
{
	struct store_label l[STORE_MAX_LABELS];
	for (size_t i = 0; i < n; i++) {
		l[i].name = pairs[i]->name;
		l[i].value = pairs[i]->value;
	}
	return (size_t)store_labels_format(l, n, out, size);
}

size_t series_format(const struct series *se, char *out, size_t size)
{
	return pairs_format(se->labels, se->nlabels, out, size);
}

int store_labels_format(const struct store_label *l, size_t n, char *out, size_t size)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	const char *name = "";
	for (size_t i = 0; i < n; i++)
		if (!strcmp(l[i].name, "__name__"))
			name = l[i].value;
	buf_puts(&b, name);
	bool first = true;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(l[i].name, "__name__"))
			continue;
		buf_putc(&b, first ? '{' : ',');
		first = false;
		buf_puts(&b, l[i].name);
		buf_puts(&b, "=\"");
		for (const char *c = l[i].value; *c; c++) {
			if (*c == '\\' || *c == '"')
				buf_putc(&b, '\\');
			if (*c == '\n')
				buf_puts(&b, "\\n");
			else
				buf_putc(&b, *c);
		}
		buf_putc(&b, '"');
	}
	if (!first)
		buf_putc(&b, '}');
	int len = (int)b.len;
	if (size)
		snprintf(out, size, "%s", b.data ? b.data : "");
	buf_fini(&b);
	return len;
}

/* ---- sealing ------------------------------------------------------------------ */

void head_mark_dirty(struct store *s, struct series *se)
{
	if (se->flags & S_DIRTY)
		return;
	if (s->ndirty == s->dirtycap) {
		size_t ncap = s->dirtycap ? s->dirtycap * 2 : 1024;
		struct series **nd = realloc(s->dirty, ncap * sizeof(*nd));
		if (!nd)
			return; /* the next flush misses it; the seal will carry it */
		s->dirty = nd;
		s->dirtycap = ncap;
	}
	s->dirty[s->ndirty++] = se;
	se->flags |= S_DIRTY;
}

void head_mark_tier(struct store *s, struct series *se, int k)
{
	se->flags |= (uint8_t)(k ? S_DIRTY_1H : S_DIRTY_1M);
	if (!(se->flags & S_DIRTY)) {
		head_mark_dirty(s, se);
		if (!(se->flags & S_DIRTY)) /* no room in the list: try next time */
			se->flags &= (uint8_t)~(S_DIRTY_1M | S_DIRTY_1H);
	}
}

/* Queues c for the writer, behind the series' other chunks. */
static void pending_queue(struct store *s, struct series *se, struct pchunk *c)
{
	if (s->pq_tail)
		s->pq_tail->next = c;
	else
		s->pq = c;
	s->pq_tail = c;
	if (se->pend_tail)
		se->pend_tail->snext = c;
	else
		se->pend = c;
	se->pend_tail = c;
	s->pending_bytes += c->len + sizeof(*c);
	/* The head row changes with it. */
	if (c->tier == STORE_TIER_RAW)
		head_mark_dirty(s, se);
	else if (c->len)
		head_mark_tier(s, se, c->tier - 1);
}

static void pending_push(struct store *s, struct series *se, int tier, struct cenc *e)
{
	struct pchunk *c = calloc(1, sizeof(*c));
	if (!c) {
		__atomic_add_fetch(&s->chunks_dropped, 1, __ATOMIC_RELAXED);
		cenc_free(e);
		return;
	}
	c->series = se->id;
	c->tier = (uint8_t)tier;
	c->mint = e->t_first;
	c->maxt = e->t_prev;
	if (tier == STORE_TIER_RAW)
		memcpy(&c->last_v, &se->rv.prev, sizeof(c->last_v));
	c->data = cenc_take(e, &c->len);
	se->flushed[tier] = 0; /* the next chunk starts from nothing on disk */
	pending_queue(s, se, c);
}

/*
 * A resumed bucket (tier_head.resumed) goes on: its point in SQLite is to
 * be written again with the new samples, so the writer first drops it (a
 * chunk without data asks for that, db_trim_tier), in the same order as
 * the chunks that follow. Reads see the stored point until the writer
 * drops it, then none until the bucket closes, as for any series.
 */
static void pending_trim(struct store *s, struct series *se, int k, int64_t end)
{
	struct pchunk *c = calloc(1, sizeof(*c));
	if (!c) {
		__atomic_add_fetch(&s->chunks_dropped, 1, __ATOMIC_RELAXED);
		return;
	}
	c->series = se->id;
	c->tier = (uint8_t)(STORE_TIER_1M + k);
	c->mint = c->maxt = end;
	pending_queue(s, se, c);
}

void store_seal_raw(struct store *s, struct series *se)
{
	if (se->raw.count)
		pending_push(s, se, STORE_TIER_RAW, &se->raw);
}

void tier_seal(struct store *s, struct series *se, int k)
{
	struct tier_head *th = se->tier[k];
	if (th && th->enc.count) {
		pending_push(s, se, STORE_TIER_1M + k, &th->enc);
		se->flags |= S_COMPACT; /* small roll-up chunks to merge */
	}
}

/* Encodes the accumulator's bucket as a point and empties it. */
void tier_acc_close(struct store *s, struct series *se, int k)
{
	struct tier_head *th = se->tier[k];
	if (!th || !th->end)
		return;
	if (th->count && !th->resumed) {
		double vals[5] = { th->min, th->max, th->sum, (double)th->count, th->last };
		struct vstate v[5];
		if (cenc_states(&th->enc, v) < 0) {
			/* Cannot happen with our own bytes; start a new chunk anyway. */
			cenc_free(&th->enc);
		}
		int rc = cenc_append(&th->enc, v, th->end, vals, se->kind == STORE_COUNTER);
		if (rc == -EEXIST || rc == -ERANGE) {
			tier_seal(s, se, k);
			rc = cenc_append(&th->enc, v, th->end, vals, se->kind == STORE_COUNTER);
		}
		if (rc == 0 && th->enc.count >= (k ? STORE_TIER_OPEN_POINTS_1H :
							    STORE_TIER_OPEN_POINTS_1M)) {
			tier_seal(s, se, k);
		} else if (rc == 0 && th->enc.cap > cenc_bytes(&th->enc) + 16) {
			/* A minute or an hour until the next point: give the slack back. */
			size_t want = cenc_bytes(&th->enc) + 8;
			uint8_t *p = realloc(th->enc.buf, want);
			if (p) {
				th->enc.buf = p;
				th->enc.cap = (uint32_t)want;
			}
		}
	}
	th->end = 0;
	th->count = 0;
	th->resumed = false; /* its point stays as it was stored */
	head_mark_tier(s, se, k);
}

static inline int64_t bucket_end(int64_t t, int64_t w)
{
	int64_t q = t / w;
	if (q * w < t)
		q++; /* ceil for positive t; t/w truncates toward zero for negative t */
	return q * w;
}

static void tier_add(struct store *s, struct series *se, int k, int64_t t, double v)
{
	struct tier_head *th = tier_head_get(s, se, k);
	if (!th)
		return;
	int64_t end = bucket_end(t, store_tier_width_ms(STORE_TIER_1M + k));
	if ((se->flags & S_IDLE) && end < s->idle_due)
		s->idle_due = end; /* appended outside snapshots (rules, import) while listed */
	if (th->end && end != th->end) {
		tier_acc_close(s, se, k);
	} else if (th->resumed) {
		th->resumed = false;
		pending_trim(s, se, k, end);
	}
	if (!th->end || !th->count) {
		th->end = end;
		th->min = th->max = v;
		th->sum = 0;
		th->count = 0;
	}
	if (v < th->min || th->min != th->min)
		th->min = v;
	if (v > th->max || th->max != th->max)
		th->max = v;
	th->sum += v;
	th->last = v;
	th->count++;
}

int head_append(struct store *s, struct series *se, int64_t t, double v)
{
	if (t <= se->last_t) {
		s->out_of_order++;
		return -EEXIST;
	}
	/* the newest sample becomes the one before it, when its bits are at hand */
	int64_t prev_t = INT64_MIN;
	double prev_v = 0;
	if (se->raw.count && se->raw.t_prev == se->last_t) {
		prev_t = se->last_t;
		memcpy(&prev_v, &se->rv.prev, sizeof(prev_v));
	}
	int rc = cenc_append(&se->raw, &se->rv, t, &v, se->kind == STORE_COUNTER);
	if (rc == -ERANGE) {
		store_seal_raw(s, se);
		rc = cenc_append(&se->raw, &se->rv, t, &v, se->kind == STORE_COUNTER);
	}
	if (rc < 0) {
		if (rc == -EEXIST)
			s->out_of_order++;
		return rc;
	}
	if (se->last_t != INT64_MIN)
		se->step_ms = t - se->last_t < UINT32_MAX ? (uint32_t)(t - se->last_t) : UINT32_MAX;
	se->last_t = t;
	se->prev_t = prev_t;
	se->prev_v = prev_v;
	se->touched_ms = s->append_ms;
	if (t < se->min_t)
		se->min_t = t;
	if (t > se->max_t)
		se->max_t = t;
	s->samples_appended++;
	if (se->follow)
		follow_push(s, se, t, v);
	bool stale = store_is_stale(v);
	if (!stale) {
		tier_add(s, se, 0, t, v);
		tier_add(s, se, 1, t, v);
	}
	if (stale || se->raw.count >= s->cfg.chunk_samples ||
	    t - se->raw.t_first >= STORE_CHUNK_MAX_SPAN_MS)
		store_seal_raw(s, se);
	head_mark_dirty(s, se);
	return 0;
}

int store_append(struct store *s, uint32_t id, int64_t t_ms, double v)
{
	pthread_rwlock_wrlock(&s->lock);
	s->append_ms = mono_ns() / 1000000;
	struct series *se = series_get_id(s, id);
	int rc = se ? head_append(s, se, t_ms, v) : -ENOENT;
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

void store_seal_all(struct store *s)
{
	pthread_rwlock_wrlock(&s->lock);
	struct series *se;
	for (uint32_t id = 0; (se = series_next(s, &id)); id++) {
		store_seal_raw(s, se);
		for (int k = 0; k < 2; k++) {
			tier_acc_close(s, se, k);
			tier_seal(s, se, k);
		}
	}
	pthread_rwlock_unlock(&s->lock);
}

/*
 * When a series that ends gets its stale marker: at t (the snapshot that
 * lacks it, or the stop), but no later than one of its own intervals after
 * its last sample (else the snapshots' interval). A
 * series loaded with open chunks from a run that stopped long ago (a crash,
 * series appended by id, a store opened by `monitor import`) so ends where
 * its next sample was due, not at the wall clock hours or years after its
 * data, which would stretch its bounds (/api/v1/series by time) that far.
 */
static int64_t stale_time(const struct store *s, const struct series *se, int64_t t)
{
	int64_t step = se->step_ms ? se->step_ms : s->last_snap_step;
	if (step <= 0)
		step = 1; /* nothing to go by: just after it */
	if (se->last_t != INT64_MIN && se->last_t < t - step)
		return se->last_t + step;
	return t;
}

/* ---- the snapshot path -------------------------------------------------------- */

void series_idle_add(struct store *s, struct series *se)
{
	s->idle_due = INT64_MIN; /* also when listed already: active since, its buckets moved */
	if (se->flags & S_IDLE)
		return;
	if (s->nidle == s->idle_cap) {
		size_t ncap = s->idle_cap ? s->idle_cap * 2 : 256;
		struct series **ni = realloc(s->idle, ncap * sizeof(*ni));
		if (!ni)
			return;
		s->idle = ni;
		s->idle_cap = ncap;
	}
	s->idle[s->nidle++] = se;
	se->flags |= S_IDLE;
}

/* Closes the roll-up buckets of series that went stale once the bucket's
 * time has passed, and seals their roll-up chunks, so a gone container
 * leaves nothing open in memory. Nothing is due before s->idle_due: a
 * churning host keeps thousands of idle series for up to an hour (their
 * 1 h buckets), and visiting each every tick was a cache miss apiece. */
static void idle_sweep(struct store *s, int64_t now)
{
	if (s->idle_due != INT64_MIN && now <= s->idle_due)
		return;
	int64_t due = INT64_MAX;
	size_t j = 0;
	for (size_t i = 0; i < s->nidle; i++) {
		struct series *se = s->idle[i];
		if (se->flags & S_ACTIVE) {
			se->flags &= (uint8_t)~S_IDLE;
			continue;
		}
		bool open = false;
		for (int k = 0; k < 2; k++) {
			struct tier_head *th = se->tier[k];
			if (!th)
				continue;
			if (th->end && now > th->end)
				tier_acc_close(s, se, k);
			if (!th->end) {
				tier_seal(s, se, k);
				tier_head_drop(s, se, k);
				head_mark_tier(s, se, k);
			} else {
				open = true;
				if (th->end < due)
					due = th->end;
			}
		}
		if (open)
			s->idle[j++] = se;
		else
			se->flags &= (uint8_t)~S_IDLE;
	}
	s->nidle = j;
	s->idle_due = due;
}

bool active_room(struct store *s, size_t count)
{
	if (count < s->active_cap)
		return true;
	size_t ncap = s->active_cap ? s->active_cap * 2 : 1024;
	struct series **a = realloc(s->active, ncap * sizeof(*a));
	struct series **b = a ? realloc(s->active_next, ncap * sizeof(*b)) : NULL;
	if (a)
		s->active = a;
	if (!b)
		return false;
	s->active_next = b;
	s->active_cap = ncap;
	return true;
}

static bool push_active(struct store *s, struct series *se)
{
	if (!active_room(s, s->nactive_next))
		return false;
	s->active_next[s->nactive_next++] = se;
	return true;
}

static struct ccache *cache_get(struct store *s, const char *key)
{
	if (!s->cc_nb) {
		s->cc = calloc(256, sizeof(*s->cc));
		if (!s->cc)
			return NULL;
		s->cc_nb = 256;
	}
	uint64_t h = hash_str(key);
	struct ccache **pp = &s->cc[h & (s->cc_nb - 1)];
	for (struct ccache *c = *pp; c; c = c->next)
		if (c->hash == h && !strcmp(c->key, key)) {
			if (c->epoch != s->cache_epoch) {
				for (uint32_t i = 0; i < c->nslots; i++)
					c->slots[i].s = NULL;
				c->epoch = s->cache_epoch;
			}
			return c;
		}
	/* A new container, or its labels changed: parse them once. */
	struct ccache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->key = strdup(key);
	c->base_mem = malloc(strlen(key) + 1);
	int n = c->key && c->base_mem ?
		labels_parse(key, c->base, STORE_MAX_LABELS - 8, c->base_mem, false, NULL) : -ENOMEM;
	if (n == -ENOMEM) {
		free(c->key);
		free(c->base_mem);
		free(c);
		return NULL;
	}
	if (n < 0) {
		/* Kept as an entry that stores nothing, so this is said once. */
		log_warn("storage: container labels not stored (malformed, or more than %d): %.200s",
			 STORE_MAX_LABELS - 8, key);
		c->bad = true;
		n = 0;
	}
	c->nbase = (size_t)n;
	c->hash = h;
	c->epoch = s->cache_epoch;
	c->next = *pp;
	*pp = c;
	return c;
}

static void cache_free(struct ccache *c)
{
	for (uint32_t i = 0; i < c->nslots; i++)
		free(c->slots[i].extra);
	free(c->slots);
	free(c->key);
	free(c->base_mem);
	free(c);
}

static void cache_sweep(struct store *s)
{
	for (size_t i = 0; i < s->cc_nb; i++) {
		struct ccache **pp = &s->cc[i];
		while (*pp) {
			struct ccache *c = *pp;
			if (c->gen != s->gen) {
				*pp = c->next;
				cache_free(c);
			} else {
				pp = &c->next;
			}
		}
	}
}

static bool streq_null(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

/* The series of sample j of container entry c, resolved through its slot. */
static struct series *slot_series(struct store *s, struct ccache *c, uint32_t j,
				  const struct snap_sample *smp)
{
	if (j < c->nslots) {
		struct cslot *sl = &c->slots[j];
		if (sl->s && sl->family == smp->family && streq_null(sl->extra, smp->extra))
			return sl->s;
	} else {
		uint32_t ncap = j + 1 > c->nslots * 2 ? j + 1 : c->nslots * 2;
		struct cslot *ns = realloc(c->slots, ncap * sizeof(*ns));
		if (!ns)
			return NULL;
		memset(ns + c->nslots, 0, (ncap - c->nslots) * sizeof(*ns));
		c->slots = ns;
		c->nslots = ncap;
	}
	struct cslot *sl = &c->slots[j];
	struct store_label l[STORE_MAX_LABELS];
	size_t n = 0;
	l[n++] = (struct store_label){ "__name__", metric_families[smp->family].name };
	for (size_t i = 0; i < c->nbase; i++)
		l[n++] = c->base[i];
	char mem[STORE_MAX_LABEL_BYTES];
	if (smp->extra && *smp->extra) {
		if (strlen(smp->extra) >= sizeof(mem))
			return NULL;
		int m = labels_parse(smp->extra, l + n, STORE_MAX_LABELS - n, mem, false, NULL);
		if (m < 0)
			return NULL;
		n += (size_t)m;
	}
	int err;
	enum store_kind kind = metric_families[smp->family].type == COUNTER ? STORE_COUNTER :
									      STORE_GAUGE;
	struct series *se = series_get_locked(s, l, n, kind, &err);
	if (!se)
		return NULL;
	free(sl->extra);
	sl->extra = smp->extra ? strdup(smp->extra) : NULL;
	if (smp->extra && !sl->extra)
		return se;
	sl->family = smp->family;
	sl->s = se;
	return se;
}

int64_t store_append_snapshot(struct store *s, const struct snapshot *snap)
{
	if (!s || !snap)
		return 0;
	pthread_rwlock_wrlock(&s->lock);
	int64_t t = snap->time_ms;
	/* Align a jittered tick onto the expected one (at most 2% of the step, 20 ms). */
	if (s->last_snap_t && s->last_snap_step > 0) {
		int64_t expect = s->last_snap_t + s->last_snap_step;
		int64_t tol = s->last_snap_step / 50;
		if (tol > 20)
			tol = 20;
		if (t != expect && t >= expect - tol && t <= expect + tol)
			t = expect;
	}
	if (t <= s->last_snap_t) {
		/* The wall clock went back: chunks only grow forward in time, so
		 * skip ticks (rather than refuse every sample) until it catches up. */
		log_limited(&s->clock_warn, LOG_WARN,
			    "storage: the clock went back %.3f s; ticks are not stored until it "
			    "passes the last stored one", (double)(s->last_snap_t - t) / 1000);
		/* Counted as refused, so that monitor_storage_out_of_order_samples_total
		 * shows a clock that went back, not only the log. */
		s->out_of_order += snap->nsamples;
		pthread_rwlock_unlock(&s->lock);
		return 0;
	}
	log_recovered(&s->clock_warn, "storage: storing ticks");
	s->append_ms = mono_ns() / 1000000;
	if (s->last_snap_t)
		s->last_snap_step = t - s->last_snap_t;
	s->last_snap_t = t;
	s->gen++;
	s->nactive_next = 0;

	uint32_t cur = UINT32_MAX - 1, agent_j = 0;
	struct ccache *c = NULL;
	for (size_t i = 0; i < snap->nsamples; i++) {
		const struct snap_sample *smp = &snap->samples[i];
		uint32_t j;
		if (smp->container != cur) {
			cur = smp->container;
			const char *key = cur == SNAP_NO_CONTAINER ? "" :
				cur < snap->ncontainers ? snap->containers[cur].prom_labels : NULL;
			c = key ? cache_get(s, key) : NULL;
			if (c)
				c->gen = s->gen;
		}
		if (!c || c->bad)
			continue;
		if (cur == SNAP_NO_CONTAINER)
			j = agent_j++;
		else
			j = (uint32_t)(i - snap->containers[cur].sample_first);
		struct series *se = slot_series(s, c, j, smp);
		if (!se || se->gen == s->gen)
			continue; /* unresolvable, or the same series twice in one snapshot */
		if (head_append(s, se, t, smp->value) < 0)
			continue;
		se->gen = s->gen;
		if (!(se->flags & S_ACTIVE)) {
			se->flags |= S_ACTIVE;
		}
		if (!push_active(s, se))
			se->flags &= (uint8_t)~S_ACTIVE;
	}
	/* Series in the last snapshot and not in this one end here. */
	double stale = store_stale_nan();
	for (size_t i = 0; i < s->nactive; i++) {
		struct series *se = s->active[i];
		if (se->gen == s->gen)
			continue;
		se->flags &= (uint8_t)~S_ACTIVE;
		head_append(s, se, stale_time(s, se, t), stale);
		series_idle_add(s, se);
	}
	struct series **tmp = s->active;
	s->active = s->active_next;
	s->active_next = tmp;
	s->nactive = s->nactive_next;
	if (s->nidle)
		idle_sweep(s, t);
	cache_sweep(s);
	pthread_rwlock_unlock(&s->lock);
	return t;
}

/* ---- statistics ----------------------------------------------------------------- */

uint64_t store_series_epoch(struct store *s)
{
	pthread_rwlock_rdlock(&s->lock);
	uint64_t e = s->series_epoch;
	pthread_rwlock_unlock(&s->lock);
	return e;
}

/* The head's memory: every series visited, so a cache miss or two per
 * series (about 0.7 ms at 10,000). Read lock held. */
static void head_walk(struct store *s, uint64_t *head_out, uint64_t *raw_out, uint64_t *tier_out)
{
	uint64_t head = sizeof(*s) + s->idx.bytes + s->byid_cap / ID_PAGE * sizeof(void *) +
			s->byid_pages * sizeof(struct id_page) +
			s->ht_nb * sizeof(void *) + s->active_cap * 2 * sizeof(void *) +
			s->dirtycap * sizeof(void *);
	uint64_t raw = 0, tier = 0;
	struct series *se;
	for (uint32_t id = 0; (se = series_next(s, &id)); id++) {
		head += sizeof(*se) + se->nlabels * sizeof(void *) + se->raw.cap;
		raw += se->raw.cap;
		for (int k = 0; k < 2; k++) {
			if (!se->tier[k])
				continue;
			head += sizeof(*se->tier[k]) + se->tier[k]->enc.cap;
			tier += sizeof(*se->tier[k]) + se->tier[k]->enc.cap;
		}
	}
	for (size_t i = 0; i < s->cc_nb; i++)
		for (struct ccache *c = s->cc[i]; c; c = c->next)
			head += sizeof(*c) + 2 * strlen(c->key) + c->nslots * sizeof(struct cslot);
	*head_out = head;
	*raw_out = raw;
	*tier_out = tier;
}

/* store_stats with the head's memory from a walk at most max_age_ms old
 * (0: walked now). */
static void stats(struct store *s, struct store_stats *out, int64_t max_age_ms)
{
	memset(out, 0, sizeof(*out));
	if (!s)
		return;
	pthread_rwlock_rdlock(&s->lock);
	int64_t now = mono_ns() / 1000000;
	pthread_mutex_lock(&s->walk_mu);
	if (!s->walk_valid || max_age_ms <= 0 || now - s->walk_ms >= max_age_ms) {
		head_walk(s, &s->walk_head, &s->walk_raw, &s->walk_tier);
		s->walk_ms = now;
		s->walk_valid = true;
	}
	out->head_bytes = s->walk_head;
	out->head_raw_bytes = s->walk_raw;
	out->head_tier_bytes = s->walk_tier;
	pthread_mutex_unlock(&s->walk_mu);
	out->series = s->nseries;
	out->evicted = s->evicted;
	out->active_series = s->nactive;
	out->samples_appended = s->samples_appended;
	out->samples_followed = s->samples_followed;
	out->out_of_order = s->out_of_order;
	out->pending_bytes = s->pending_bytes;
	pthread_rwlock_unlock(&s->lock);
	pthread_mutex_lock(&s->wmu);
	out->chunks_written = s->chunks_written;
	out->write_errors = s->write_errors;
	out->chunks_dropped = __atomic_load_n(&s->chunks_dropped, __ATOMIC_RELAXED);
	out->db_bytes = s->db_bytes;
	out->retention_deleted = s->retention_deleted;
	out->write_ok = s->write_ok;
	out->last_flush_seconds = s->last_flush_s;
	pthread_mutex_unlock(&s->wmu);
}

void store_stats(struct store *s, struct store_stats *out)
{
	stats(s, out, 0);
}

void store_stats_recent(struct store *s, struct store_stats *out, int64_t max_age_ms)
{
	stats(s, out, max_age_ms);
}

/* ---- open and close --------------------------------------------------------------- */

int store_open(struct store **out, const struct store_config *cfg, char *err, size_t errsize)
{
	*out = NULL;
	struct store *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errsize, "out of memory");
		return -ENOMEM;
	}
	s->cfg = *cfg;
	if (s->cfg.chunk_samples <= 0 || s->cfg.chunk_samples > CODEC_MAX_POINTS)
		s->cfg.chunk_samples = STORE_CHUNK_SAMPLES;
	if (s->cfg.flush_interval_ms <= 0)
		s->cfg.flush_interval_ms = 10000;
	if (s->cfg.retention_interval_ms <= 0)
		s->cfg.retention_interval_ms = 5 * 60 * 1000;
	s->lock_fd = -1;
	s->next_id = 1;
	slab_init(&s->series_pool, sizeof(struct series));
	slab_init(&s->tier_pool, sizeof(struct tier_head));
	s->cold_maxt = INT64_MIN;
	s->append_ms = mono_ns() / 1000000;
	s->write_ok = true;
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&s->wmu, NULL);
	pthread_mutex_init(&s->rmu, NULL);
	pthread_mutex_init(&s->walk_mu, NULL);
	pthread_cond_init(&s->wcond, NULL);
	pthread_cond_init(&s->wdone, NULL);
	lindex_init(&s->idx);
	int rc = db_open(s, err, errsize);
	if (rc == 0 && !cfg->read_only)
		rc = db_start_writer(s);
	if (rc < 0) {
		if (!*err)
			snprintf(err, errsize, "%s: %s", s->db_path, strerror(-rc));
		store_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->writer_started) {
		/* The agent stops: what it collected ends here. */
		pthread_rwlock_wrlock(&s->lock);
		int64_t now = now_ms();
		double stale = store_stale_nan();
		for (size_t i = 0; i < s->nactive; i++) {
			struct series *se = s->active[i];
			se->flags &= (uint8_t)~S_ACTIVE;
			int64_t t = stale_time(s, se, now);
			if (t > se->last_t)
				head_append(s, se, t, stale);
		}
		s->nactive = 0;
		pthread_rwlock_unlock(&s->lock);
		db_checkpoint(s); /* a clean stop leaves no log to replay */
		db_stop_writer(s);
	}
	db_close(s);
	struct series *se;
	for (uint32_t id = 0; (se = series_next(s, &id)); id++)
		series_mem_free(s, se);
	slab_fini(&s->series_pool);
	slab_fini(&s->tier_pool);
	for (uint32_t i = 0; i < s->byid_cap / ID_PAGE; i++)
		free(s->byid[i]);
	while (s->pq) {
		struct pchunk *c = s->pq;
		s->pq = c->next;
		free(c->data);
		free(c);
	}
	for (size_t i = 0; i < s->cc_nb; i++) {
		while (s->cc[i]) {
			struct ccache *c = s->cc[i];
			s->cc[i] = c->next;
			cache_free(c);
		}
	}
	free(s->cc);
	free(s->byid);
	free(s->ht);
	free(s->active);
	free(s->active_next);
	free(s->idle);
	free(s->newser);
	free(s->dirty);
	lindex_fini(&s->idx);
	pthread_rwlock_destroy(&s->lock);
	pthread_mutex_destroy(&s->wmu);
	pthread_mutex_destroy(&s->rmu);
	pthread_mutex_destroy(&s->walk_mu);
	pthread_cond_destroy(&s->wcond);
	pthread_cond_destroy(&s->wdone);
	free(s);
}
