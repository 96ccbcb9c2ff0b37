/*
 * query.c - the read side that the PromQL engine builds on: selecting series
 * by label matchers through the postings index, iterating one series' points
 * at a tier from the head and SQLite together, and listing label names and
 * values. Readers hold the store's lock for reading only while they copy
 * what they need out of the head; SQLite is read through a pool of
 * read-only connections, which WAL lets run beside the writer. SQLite is
 * not asked at all when everything it holds for the series ends before the
 * range (the series' disk_maxt), and a query at one time (rules) gets the
 * newest point without decoding when it is the series' newest sample.
 */
#include "storage/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- selection ------------------------------------------------------------ */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The ids of the series that carry a value of m's label that m accepts. */
static uint32_t *postings_for(struct store *s, const struct store_matcher *m, size_t *n)
{
	*n = 0;
	if (m->op == STORE_MATCH_EQ) {
		struct lpair *p = lindex_find(&s->idx, m->name, m->value);
		uint32_t *ids = malloc(((p ? p->n : 0) + 1) * sizeof(*ids));
		if (ids && p) {
			memcpy(ids, p->ids, p->n * sizeof(*ids));
			*n = p->n;
		}
		return ids;
	}
	struct lname *l = lindex_name(&s->idx, m->name);
	size_t total = 0;
	for (uint32_t i = 0; l && i < l->n; i++)
		if (store_matcher_match(m, l->pairs[i]->value))
			total += l->pairs[i]->n;
	uint32_t *ids = malloc((total + 1) * sizeof(*ids));
	if (!ids)
		return NULL;
	for (uint32_t i = 0; l && i < l->n; i++) {
		struct lpair *p = l->pairs[i];
		if (store_matcher_match(m, p->value)) {
			memcpy(ids + *n, p->ids, p->n * sizeof(*ids));
			*n += p->n;
		}
	}
	/* A series has one value per name, so the lists are disjoint. */
	qsort(ids, *n, sizeof(*ids), cmp_u32);
	return ids;
}

static size_t intersect(uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
	size_t i = 0, j = 0, k = 0;
	while (i < na && j < nb) {
		if (a[i] < b[j])
			i++;
		else if (a[i] > b[j])
			j++;
		else {
			a[k++] = a[i];
			i++;
			j++;
		}
	}
	return k;
}

static const char *series_label(const struct series *se, const char *name)
{
	for (size_t i = 0; i < se->nlabels; i++)
		if (!strcmp(se->labels[i]->name, name))
			return se->labels[i]->value;
	return "";
}

/* Candidate ids under the read lock; NULL on ENOMEM. */
static uint32_t *select_ids(struct store *s, const struct store_matcher *m, size_t n,
			    int64_t mint, int64_t maxt, size_t *count)
{
	uint32_t *cand = NULL;
	size_t nc = 0;
	bool have = false;
	for (size_t i = 0; i < n; i++) {
		if (m[i].matches_empty)
			continue;
		size_t np;
		uint32_t *p = postings_for(s, &m[i], &np);
		if (!p) {
			free(cand);
			return NULL;
		}
		if (!have) {
			cand = p;
			nc = np;
			have = true;
		} else {
			nc = intersect(cand, nc, p, np);
			free(p);
		}
		if (nc == 0)
			break;
	}
	if (!have) {
		/* Only matchers that accept an empty value: look at every series. */
		cand = malloc((s->nseries + 1) * sizeof(*cand));
		if (!cand)
			return NULL;
		for (uint32_t id = 0; series_next(s, &id); id++)
			cand[nc++] = id;
	}
	size_t k = 0;
	for (size_t i = 0; i < nc; i++) {
		struct series *se = series_by_id(s, cand[i]);
		if (!se || se->max_t < mint || se->min_t > maxt)
			continue;
		bool ok = true;
		for (size_t j = 0; j < n && ok; j++)
			if (m[j].matches_empty)
				ok = store_matcher_match(&m[j], series_label(se, m[j].name));
		if (ok)
			cand[k++] = cand[i];
	}
	*count = k;
	return cand;
}

static int cmp_info(const void *a, const void *b)
{
	const struct store_series_info *x = a, *y = b;
	for (size_t i = 0; i < x->nlabels && i < y->nlabels; i++) {
		int c = strcmp(x->labels[i].name, y->labels[i].name);
		if (!c)
			c = strcmp(x->labels[i].value, y->labels[i].value);
		if (c)
			return c;
	}
	return (x->nlabels > y->nlabels) - (x->nlabels < y->nlabels);
}

/* Drops the series that are in memory from a cold set (under the lock):
 * the head's copy is the one to read. */
static void cold_dedup(struct store *s, struct cold_set *cold)
{
	size_t k = 0;
	for (size_t i = 0; i < cold->n; i++) {
		if (series_by_id(s, cold->v[i].id))
			free(cold->v[i].labels);
		else
			cold->v[k++] = cold->v[i];
	}
	cold->n = k;
}

static size_t labels_bytes(const struct store_label *l, size_t n)
{
	size_t bytes = n * sizeof(*l);
	for (size_t j = 0; j < n; j++)
		bytes += strlen(l[j].name) + strlen(l[j].value) + 2;
	return bytes;
}

/* Copies labels into lab and their text to *str, which moves past it. */
static void labels_copy(struct store_label *lab, const struct store_label *l, size_t n,
			char **str)
{
	for (size_t j = 0; j < n; j++) {
		size_t a = strlen(l[j].name) + 1, b = strlen(l[j].value) + 1;
		lab[j].name = memcpy(*str, l[j].name, a);
		lab[j].value = memcpy(*str + a, l[j].value, b);
		*str += a + b;
	}
}

int store_select(struct store *s, const struct store_matcher *m, size_t n, int64_t mint,
		 int64_t maxt, struct store_series_set *out)
{
	memset(out, 0, sizeof(*out));
	/* Series that left memory first, from SQLite without the lock; one that
	 * leaves memory between this and the lock below can be missed once. */
	struct cold_set cold;
	int rc = cold_select(s, m, n, mint, maxt, &cold);
	if (rc < 0)
		return rc;
	pthread_rwlock_rdlock(&s->lock);
	cold_dedup(s, &cold);
	size_t nc;
	uint32_t *ids = select_ids(s, m, n, mint, maxt, &nc);
	if (!ids) {
		pthread_rwlock_unlock(&s->lock);
		cold_set_free(&cold);
		return -ENOMEM;
	}
	size_t bytes = (nc + cold.n) * sizeof(struct store_series_info);
	for (size_t i = 0; i < nc; i++) {
		struct series *se = series_by_id(s, ids[i]);
		bytes += se->nlabels * sizeof(struct store_label);
		for (size_t j = 0; j < se->nlabels; j++)
			bytes += strlen(se->labels[j]->name) + strlen(se->labels[j]->value) + 2;
	}
	for (size_t i = 0; i < cold.n; i++)
		bytes += labels_bytes(cold.v[i].labels, cold.v[i].nlabels);
	char *mem = malloc(bytes + 1);
	if (!mem) {
		pthread_rwlock_unlock(&s->lock);
		free(ids);
		cold_set_free(&cold);
		return -ENOMEM;
	}
	struct store_series_info *info = (struct store_series_info *)mem;
	struct store_label *lab = (struct store_label *)(info + nc + cold.n);
	size_t nlab = 0;
	for (size_t i = 0; i < nc; i++)
		nlab += series_by_id(s, ids[i])->nlabels;
	for (size_t i = 0; i < cold.n; i++)
		nlab += cold.v[i].nlabels;
	char *str = (char *)(lab + nlab);
	for (size_t i = 0; i < nc; i++) {
		struct series *se = series_by_id(s, ids[i]);
		info[i].id = se->id;
		info[i].nlabels = se->nlabels;
		info[i].labels = lab;
		info[i].min_t = se->min_t;
		info[i].max_t = se->max_t;
		for (size_t j = 0; j < se->nlabels; j++) {
			size_t a = strlen(se->labels[j]->name) + 1, b = strlen(se->labels[j]->value) + 1;
			memcpy(str, se->labels[j]->name, a);
			lab[j].name = str;
			str += a;
			memcpy(str, se->labels[j]->value, b);
			lab[j].value = str;
			str += b;
		}
		lab += se->nlabels;
	}
	pthread_rwlock_unlock(&s->lock);
	free(ids);
	for (size_t i = 0; i < cold.n; i++) {
		struct cold_series *c = &cold.v[i];
		info[nc] = (struct store_series_info){ .id = c->id, .nlabels = c->nlabels,
						       .labels = lab, .min_t = c->mint,
						       .max_t = c->maxt };
		labels_copy(lab, c->labels, c->nlabels, &str);
		lab += c->nlabels;
		nc++;
	}
	cold_set_free(&cold);
	qsort(info, nc, sizeof(*info), cmp_info);
	out->n = nc;
	out->series = info;
	out->mem_ = mem;
	return 0;
}

void store_series_set_free(struct store_series_set *set)
{
	if (!set)
		return;
	free(set->mem_);
	memset(set, 0, sizeof(*set));
}

/* ---- iteration ------------------------------------------------------------- */

struct blob {
	size_t off, len;         /* in the iterator's one byte buffer */
	int64_t mint, maxt;
};

/* The chunks an iterator reads: their bytes copied into one buffer. */
struct blobset {
	struct blob *b;
	size_t n, cap;
	uint8_t *mem;
	size_t used, memcap;
};

/*
 * An iterator streams points out of the chunks it copied at open, one
 * decoder at a time, when the chunks follow each other in time (the usual
 * case). Chunks that overlap (backfilled data, a chunk seen both in the head
 * and on disk while the writer commits it) are decoded up front into arrays,
 * sorted and deduplicated.
 */
struct store_iter {
	int ncols;
	int64_t mint, maxt, last_t;
	bool stream, dec_ok;
	struct blobset bs;       /* streaming: the chunks, in time order */
	size_t bi;
	struct cdec d;
	size_t n, i, cap;        /* materialised: the points */
	int64_t *t;
	double *v;               /* ncols per point */
};

static int blob_add(struct blobset *bs, const void *data, size_t len, int64_t mint,
		    int64_t maxt)
{
	if (bs->n == bs->cap) {
		size_t ncap = bs->cap ? bs->cap * 2 : 32;
		struct blob *nb = realloc(bs->b, ncap * sizeof(*nb));
		if (!nb)
			return -ENOMEM;
		bs->b = nb;
		bs->cap = ncap;
	}
	if (bs->used + len > bs->memcap) {
		size_t ncap = bs->memcap ? bs->memcap * 2 : 8192;
		while (ncap < bs->used + len)
			ncap *= 2;
		uint8_t *nm = realloc(bs->mem, ncap);
		if (!nm)
			return -ENOMEM;
		bs->mem = nm;
		bs->memcap = ncap;
	}
	memcpy(bs->mem + bs->used, data, len);
	bs->b[bs->n++] = (struct blob){ bs->used, len, mint, maxt };
	bs->used += len;
	return 0;
}

static int iter_push(struct store_iter *it, int64_t t, const double *vals)
{
	if (it->n == it->cap) {
		size_t ncap = it->cap ? it->cap * 2 : 256;
		int64_t *nt = realloc(it->t, ncap * sizeof(*nt));
		if (!nt)
			return -ENOMEM;
		it->t = nt;
		double *nv = realloc(it->v, ncap * it->ncols * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		it->v = nv;
		it->cap = ncap;
	}
	it->t[it->n] = t;
	memcpy(it->v + it->n * it->ncols, vals, it->ncols * sizeof(*vals));
	it->n++;
	return 0;
}

struct order {
	int64_t t;
	size_t i;
};

static int cmp_order(const void *a, const void *b)
{
	const struct order *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/* Sorts by time and drops repeated timestamps (keeping the first), for
 * chunks that overlap (backfilled data, a chunk read from both sides). */
static int iter_normalise(struct store_iter *it)
{
	bool sorted = true;
	for (size_t i = 1; i < it->n && sorted; i++)
		sorted = it->t[i] > it->t[i - 1];
	if (sorted)
		return 0;
	struct order *o = malloc(it->n * sizeof(*o));
	int64_t *nt = malloc(it->n * sizeof(*nt));
	double *nv = malloc(it->n * it->ncols * sizeof(*nv));
	if (!o || !nt || !nv) {
		free(o);
		free(nt);
		free(nv);
		return -ENOMEM;
	}
	for (size_t i = 0; i < it->n; i++)
		o[i] = (struct order){ it->t[i], i };
	qsort(o, it->n, sizeof(*o), cmp_order);
	size_t k = 0;
	for (size_t i = 0; i < it->n; i++) {
		if (k && nt[k - 1] == o[i].t)
			continue;
		nt[k] = o[i].t;
		memcpy(nv + k * it->ncols, it->v + o[i].i * it->ncols, it->ncols * sizeof(*nv));
		k++;
	}
	free(o);
	free(it->t);
	free(it->v);
	it->t = nt;
	it->v = nv;
	it->n = k;
	it->cap = k;
	return 0;
}

/*
 * Copies the head's chunks of series id at a tier that reach into [mint,
 * maxt] into bs, under the read lock. Readers take the head first: a chunk
 * the writer commits meanwhile is then read from SQLite as well (and
 * deduplicated), never missed. *disk is false when everything SQLite holds
 * for the series ends before the range (the head alone answers: the usual
 * case for rules and recent data). A series not in memory that may have
 * left it has no head chunks and *disk true. 0, -ENOENT, -ENOMEM.
 */
static int head_blobs(struct store *s, uint32_t id, enum store_tier tier, int64_t mint,
		      int64_t maxt, struct blobset *bs, bool *disk)
{
	int rc = 0;
	pthread_rwlock_rdlock(&s->lock);
	struct series *se = series_by_id(s, id);
	if (!se) {
		pthread_rwlock_unlock(&s->lock);
		/* Not in memory: it left (cold.c), and SQLite has all it holds. */
		*disk = true;
		return __atomic_load_n(&s->cold_maxt, __ATOMIC_RELAXED) == INT64_MIN ? -ENOENT : 0;
	}
	for (struct pchunk *c = se->pend; c && rc == 0; c = c->snext)
		if (c->tier == tier && c->len && c->maxt >= mint && c->mint <= maxt)
			rc = blob_add(bs, c->data, c->len, c->mint, c->maxt);
	const struct cenc *open = tier == STORE_TIER_RAW ? &se->raw :
				  se->tier[tier - 1] ? &se->tier[tier - 1]->enc : NULL;
	if (rc == 0 && open && open->count && open->t_prev >= mint && open->t_first <= maxt)
		rc = blob_add(bs, open->buf, cenc_bytes(open), open->t_first, open->t_prev);
	*disk = se->disk_maxt[tier] >= mint;
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

int store_iter_open(struct store *s, uint32_t id, enum store_tier tier, int64_t mint,
		    int64_t maxt, struct store_iter **out)
{
	*out = NULL;
	if ((unsigned)tier >= NTIERS)
		return -EINVAL;
	struct blobset bs = { 0 };
	bool disk;
	int rc = head_blobs(s, id, tier, mint, maxt, &bs, &disk);
	if (rc == -ENOENT)
		return rc;
	size_t nhead = bs.n;

	/* (its rows are copied: a reader without the mapping, db_reader_get) */
	struct reader *r = rc == 0 && disk ? db_reader_get(s, false) : NULL;
	if (r) {
		sqlite3_stmt *st = r->chunks[tier];
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, mint);
		sqlite3_bind_int64(st, 3, maxt);
		int sr;
		while (rc == 0 && (sr = sqlite3_step(st)) == SQLITE_ROW)
			rc = blob_add(&bs, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
				      sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2));
		if (rc == 0 && sr != SQLITE_DONE)
			rc = -EIO;
		sqlite3_reset(st);
		db_reader_put(s, r);
	}
	struct store_iter *it = calloc(1, sizeof(*it));
	if (!it) {
		free(bs.b);
		free(bs.mem);
		return -ENOMEM;
	}
	it->ncols = tier == STORE_TIER_RAW ? 1 : 5;
	it->bs = bs;
	if (rc < 0) {
		store_iter_free(it);
		return rc;
	}
	/* Disk chunks are older than the head's: put them first. */
	struct blob *b = bs.b;
	size_t nb = bs.n;
	if (nhead && nhead < nb) {
		struct blob *ordered = malloc(nb * sizeof(*ordered));
		if (ordered) {
			memcpy(ordered, b + nhead, (nb - nhead) * sizeof(*b));
			memcpy(ordered + (nb - nhead), b, nhead * sizeof(*b));
			free(b);
			b = it->bs.b = ordered;
		}
	}
	bool overlap = false;
	for (size_t i = 1; i < nb && !overlap; i++)
		overlap = b[i].mint <= b[i - 1].maxt;
	it->mint = mint;
	it->maxt = maxt;
	it->last_t = INT64_MIN;
	if (!overlap) {
		it->stream = true;
		*out = it;
		return 0;
	}
	for (size_t i = 0; i < nb && rc == 0; i++) {
		struct cdec d;
		if (cdec_init(&d, bs.mem + b[i].off, b[i].len) < 0 || d.ncols != it->ncols)
			continue; /* a bad chunk is skipped, not fatal */
		int64_t t;
		double vals[CODEC_MAX_COLS];
		while (cdec_next(&d, &t, vals) > 0) {
			if (t < mint)
				continue;
			if (t > maxt)
				break;
			if ((rc = iter_push(it, t, vals)) < 0)
				break;
		}
	}
	if (rc == 0)
		rc = iter_normalise(it);
	if (rc < 0) {
		store_iter_free(it);
		return rc;
	}
	*out = it;
	return 0;
}

static void fill_point(int ncols, int64_t t, const double *v, struct store_point *p)
{
	p->t = t;
	if (ncols == 1) {
		p->v = v[0];
	} else {
		p->min = v[0];
		p->max = v[1];
		p->sum = v[2];
		p->count = v[3];
		p->last = p->v = v[4];
	}
}

/* Streaming: starts decoding the next chunk that reaches into the range.
 * False at the end. */
static bool stream_open_next(struct store_iter *it)
{
	while (it->bi < it->bs.n) {
		struct blob *b = &it->bs.b[it->bi++];
		if (b->maxt < it->mint)
			continue;
		if (b->mint > it->maxt) {
			it->bi = it->bs.n;
			return false;
		}
		if (cdec_init(&it->d, it->bs.mem + b->off, b->len) < 0 || it->d.ncols != it->ncols)
			continue; /* a bad chunk is skipped, not fatal */
		it->dec_ok = true;
		return true;
	}
	return false;
}

int store_iter_next(struct store_iter *it, struct store_point *p)
{
	if (it->stream) {
		for (;;) {
			if (!it->dec_ok && !stream_open_next(it))
				return 0;
			int64_t t;
			double vals[CODEC_MAX_COLS];
			if (cdec_next(&it->d, &t, vals) <= 0) {
				it->dec_ok = false;
				continue;
			}
			if (t < it->mint || t <= it->last_t)
				continue;
			if (t > it->maxt) {
				it->bi = it->bs.n;
				it->dec_ok = false;
				return 0;
			}
			it->last_t = t;
			fill_point(it->ncols, t, vals, p);
			return 1;
		}
	}
	if (it->i >= it->n)
		return 0;
	fill_point(it->ncols, it->t[it->i], it->v + it->i * it->ncols, p);
	it->i++;
	return 1;
}

/* store_iter_batch's loop: point n's time at (char *)t + n * stride, its
 * value at (char *)v + n * stride (arrays, or (t, v) structs). */
static inline __attribute__((always_inline)) ssize_t batch(struct store_iter *it, int64_t *t,
							   double *v, size_t stride, size_t max)
{
#define T_AT(n) (*(int64_t *)((char *)t + (n) * stride))
#define V_AT(n) (*(double *)((char *)v + (n) * stride))
	size_t n = 0;
	const int last = it->ncols - 1;
	if (!it->stream) {
		for (; n < max && it->i < it->n; n++, it->i++) {
			T_AT(n) = it->t[it->i];
			V_AT(n) = it->v[it->i * it->ncols + last];
		}
		return (ssize_t)n;
	}
	while (n < max) {
		if (!it->dec_ok && !stream_open_next(it))
			break;
		size_t k = cdec_run_pairs(&it->d, &T_AT(n), &V_AT(n), stride, max - n);
		if (k == 0) {
			it->dec_ok = false;
			continue;
		}
		/* Keep what is in range and newer than what was returned: inside
		 * the chunk's middle (the usual case) that is all of it. */
		if (T_AT(n) >= it->mint && T_AT(n) > it->last_t && T_AT(n + k - 1) <= it->maxt) {
			n += k;
			it->last_t = T_AT(n - 1);
			continue;
		}
		size_t w = n;
		bool past = false;
		for (size_t j = n; j < n + k; j++) {
			if (T_AT(j) > it->maxt) {
				past = true;
				break;
			}
			if (T_AT(j) < it->mint || T_AT(j) <= it->last_t)
				continue;
			it->last_t = T_AT(j);
			T_AT(w) = T_AT(j);
			V_AT(w) = V_AT(j);
			w++;
		}
		n = w;
		if (past) {
			it->bi = it->bs.n;
			it->dec_ok = false;
			break;
		}
	}
	return (ssize_t)n;
#undef T_AT
#undef V_AT
}

ssize_t store_iter_batch(struct store_iter *it, int64_t *t, double *v, size_t max)
{
	return batch(it, t, v, sizeof(*t), max);
}

ssize_t store_iter_points(struct store_iter *it, struct promql_point *p, size_t max)
{
	return batch(it, &p->t, &p->v, sizeof(*p), max);
}

size_t store_iter_size_hint(const struct store_iter *it)
{
	if (!it->stream)
		return it->n - it->i;
	size_t n = 0;
	for (size_t i = it->bi; i < it->bs.n; i++) {
		const struct blob *b = &it->bs.b[i];
		if (b->len >= 4 && b->maxt >= it->mint && b->mint <= it->maxt)
			n += it->bs.mem[b->off + 2] | (size_t)it->bs.mem[b->off + 3] << 8;
	}
	return n;
}

/* ---- the engine's read: straight from the row and chunk buffers --------- */

/* Room for n more points in out; 0 or -ENOMEM. */
struct direct {
	struct promql_points *out;
	int ncols;
	int64_t mint, maxt;
	int64_t last_t;          /* newest point appended */
	int64_t prev_maxt;       /* the previous chunk's end, for the overlap test */
	bool overlap;
};

/* Appends the points of one chunk in range; a bad chunk is skipped, as the
 * iterator skips it. 0, or -ENOMEM. */
static int direct_chunk(struct direct *dr, const void *data, size_t len, int64_t cmint,
			int64_t cmaxt)
{
	if (dr->prev_maxt != INT64_MIN && cmint <= dr->prev_maxt)
		dr->overlap = true;
	dr->prev_maxt = cmaxt;
	if (dr->overlap || cmaxt < dr->mint || cmint > dr->maxt)
		return 0;
	struct cdec d;
	if (cdec_init(&d, data, len) < 0 || d.ncols != dr->ncols)
		return 0;
	struct promql_points *out = dr->out;
	if (promql_points_reserve(out, d.count) < 0)
		return -ENOMEM;
	struct promql_point *p = out->p + out->n;
	size_t k = cdec_run_pairs(&d, &p->t, &p->v, sizeof(*p), d.count);
	if (k == 0)
		return 0;
	/* Keep what is in range and newer than what came before: inside the
	 * range (the usual chunk) that is all of it. */
	if (p[0].t < dr->mint || p[0].t <= dr->last_t || p[k - 1].t > dr->maxt) {
		size_t w = 0;
		for (size_t j = 0; j < k; j++)
			if (p[j].t >= dr->mint && p[j].t <= dr->maxt && p[j].t > dr->last_t)
				p[w++] = p[j];
		k = w;
	}
	if (k) {
		out->n += k;
		dr->last_t = p[k - 1].t;
	}
	return 0;
}

int store_read_points(struct store *s, uint32_t id, enum store_tier tier, int64_t mint,
		      int64_t maxt, struct promql_points *out)
{
	if ((unsigned)tier >= NTIERS)
		return -EINVAL;
	struct blobset head = { 0 };
	bool disk;
	/* The head's chunks are copied (the writer appends to them). */
	int rc = head_blobs(s, id, tier, mint, maxt, &head, &disk);
	if (rc == -ENOENT)
		return rc;

	size_t base = out->n;
	struct direct dr = { out, tier == STORE_TIER_RAW ? 1 : 5, mint, maxt, INT64_MIN, INT64_MIN,
			     false };
	struct reader *r = rc == 0 && disk ? db_reader_get(s, true) : NULL;
	if (r) {
		/* Rows come by end time; each is decoded from SQLite's own buffer. */
		sqlite3_stmt *st = r->chunks[tier];
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, mint);
		sqlite3_bind_int64(st, 3, maxt);
		int sr;
		while (rc == 0 && !dr.overlap && (sr = sqlite3_step(st)) == SQLITE_ROW)
			rc = direct_chunk(&dr, sqlite3_column_blob(st, 0),
					  (size_t)sqlite3_column_bytes(st, 0),
					  sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2));
		if (rc == 0 && !dr.overlap && sr != SQLITE_DONE)
			rc = -EIO;
		sqlite3_reset(st);
		db_reader_put(s, r);
	}
	for (size_t i = 0; rc == 0 && !dr.overlap && i < head.n; i++)
		rc = direct_chunk(&dr, head.mem + head.b[i].off, head.b[i].len, head.b[i].mint,
				  head.b[i].maxt);
	free(head.b);
	free(head.mem);
	if (rc < 0 || !dr.overlap)
		return rc;
	/* Chunks that overlap (backfill, a chunk read from both sides while it
	 * is committed): the iterator sorts them out. */
	out->n = base;
	struct store_iter *it;
	if ((rc = store_iter_open(s, id, tier, mint, maxt, &it)) < 0)
		return rc;
	ssize_t n;
	for (;;) {
		size_t want = store_iter_size_hint(it);
		if ((rc = promql_points_reserve(out, want < 64 ? 64 : want)) < 0)
			break;
		if ((n = store_iter_points(it, out->p + out->n, out->cap - out->n)) <= 0) {
			rc = (int)n;
			break;
		}
		out->n += (size_t)n;
	}
	store_iter_free(it);
	return rc;
}

void store_iter_free(struct store_iter *it)
{
	if (!it)
		return;
	free(it->bs.b);
	free(it->bs.mem);
	free(it->t);
	free(it->v);
	free(it);
}

/* Decodes the iterator to its end; 1 with the last point, 0 without. */
static int iter_last(struct store_iter *it, int64_t *t, double *v)
{
	enum { BATCH = 256 };
	int64_t bt[BATCH];
	double bv[BATCH];
	ssize_t n;
	int found = 0;
	while ((n = store_iter_batch(it, bt, bv, BATCH)) > 0) {
		*t = bt[n - 1];
		*v = bv[n - 1];
		found = 1;
	}
	return n < 0 ? (int)n : found;
}

static int last_point_read(struct store *s, uint32_t id, int64_t mint, int64_t maxt,
			   int64_t disk_maxt, int64_t *t, double *v);

int store_last_point(struct store *s, uint32_t id, int64_t mint, int64_t maxt, int64_t *t,
		     double *v)
{
	pthread_rwlock_rdlock(&s->lock);
	struct series *se = series_by_id(s, id);
	if (!se) {
		/* Left memory (cold.c): read SQLite as for any range. */
		pthread_rwlock_unlock(&s->lock);
		if (__atomic_load_n(&s->cold_maxt, __ATOMIC_RELAXED) == INT64_MIN)
			return -ENOENT; /* none left: no such series */
		return last_point_read(s, id, mint, maxt, INT64_MIN, t, v);
	}
	/* last_t is the newest raw sample, disk included: nothing is newer. */
	int64_t last = se->last_t;
	if (last < mint) {
		pthread_rwlock_unlock(&s->lock);
		return 0;
	}
	if (last <= maxt) {
		/* The newest sample is the answer: the open chunk's encoder holds
		 * its bits, or the writer noted it with the chunk it wrote. */
		const struct cenc *e = &se->raw;
		bool open = e->count && e->t_prev == last;
		if (open || se->disk_last_t == last) {
			*t = last;
			if (open)
				memcpy(v, &se->rv.prev, sizeof(*v));
			else
				*v = se->disk_last_v;
			pthread_rwlock_unlock(&s->lock);
			return 1;
		}
	} else if (se->prev_t != INT64_MIN && se->prev_t <= maxt) {
		/* As of a time after the sample before the newest (none lies
		 * between them): that one, or none in the range. */
		int found = se->prev_t >= mint;
		if (found) {
			*t = se->prev_t;
			*v = se->prev_v;
		}
		pthread_rwlock_unlock(&s->lock);
		return found;
	}
	int64_t disk_maxt = se->disk_maxt[STORE_TIER_RAW];
	pthread_rwlock_unlock(&s->lock);
	return last_point_read(s, id, mint, maxt, disk_maxt, t, v);
}

/* store_last_point by reading: the newest minute first, as the engine
 * would, then the rest; notes the newest disk point (disk_maxt) for the
 * next read. */
static int last_point_read(struct store *s, uint32_t id, int64_t mint, int64_t maxt,
			   int64_t disk_maxt, int64_t *t, double *v)
{
	struct series *se;
	int64_t split = maxt - 60000 > mint ? maxt - 60000 : mint;
	struct store_iter *it;
	int rc = store_iter_open(s, id, STORE_TIER_RAW, split, maxt, &it);
	if (rc == 0) {
		rc = iter_last(it, t, v);
		store_iter_free(it);
	}
	if (rc == 0 && split > mint && (rc = store_iter_open(s, id, STORE_TIER_RAW, mint, split - 1,
							      &it)) == 0) {
		rc = iter_last(it, t, v);
		store_iter_free(it);
	}
	if (rc == 1 && *t == disk_maxt) {
		/* That was the newest point in SQLite: note it for the next read. */
		pthread_rwlock_wrlock(&s->lock);
		se = series_by_id(s, id);
		if (se && se->disk_maxt[STORE_TIER_RAW] == disk_maxt) {
			se->disk_last_t = disk_maxt;
			se->disk_last_v = *v;
		}
		pthread_rwlock_unlock(&s->lock);
	}
	return rc;
}

/* ---- reading on from where the last read ended --------------------------------- */

struct store_cursor *store_cursor_new(void)
{
	return calloc(1, sizeof(struct store_cursor));
}

/* Decodes d's points up to maxt into t/v (from n on, at most max in all);
 * d stops after the last one taken. The new count, or -E2BIG when points
 * up to maxt remain past max. */
static ssize_t decode_upto(struct cdec *d, int64_t maxt, int64_t chunk_last_t, int64_t *t,
			   double *v, size_t n, size_t max)
{
	if (chunk_last_t <= maxt && t) {
		/* all of it is wanted (the usual case): the fast decoder */
		size_t left = (size_t)(d->count - d->i);
		if (n + left > max)
			return -E2BIG;
		while (d->i < d->count) {
			size_t k = cdec_run(d, t + n, v + n, max - n);
			if (!k)
				return -EINVAL;
			n += k;
		}
		return (ssize_t)n;
	}
	/* Points past maxt follow (a reader as of a time just before the
	 * newest tick): the fast decoder a batch at a time, short of the
	 * chunk's last point (past maxt: usually the only one); a batch that
	 * ends past maxt is decoded again, as far as maxt only. */
	while (t && d->i + 1 < d->count) {
		struct cdec before = *d;
		int64_t bt[64];
		double bv[64];
		size_t left = (size_t)(d->count - d->i) - 1;
		size_t k = cdec_run(d, bt, bv, left < ARRAY_LEN(bt) ? left : ARRAY_LEN(bt)), j = k;
		while (j && bt[j - 1] > maxt)
			j--;
		if (j < k) {
			*d = before;
			if (j && cdec_run(d, bt, bv, j) != j)
				*d = before, j = 0;
		}
		if (!j || n + j > max) {
			*d = before;
			break;
		}
		memcpy(t + n, bt, j * sizeof(*t));
		memcpy(v + n, bv, j * sizeof(*v));
		n += j;
		if (j < k)
			return (ssize_t)n;
	}
	for (;;) {
		struct cdec before = *d;
		int64_t pt;
		double pv;
		if (cdec_next(d, &pt, &pv) <= 0)
			return (ssize_t)n;
		if (pt > maxt) {
			*d = before;     /* not taken: the next call starts at it */
			return (ssize_t)n;
		}
		if (n == max)
			return -E2BIG;
		if (t) {
			t[n] = pt;
			v[n] = pv;
		}
		n++;
	}
}

/* Continues from the cursor in the open chunk under the read lock: the
 * count, or -EAGAIN when the cursor does not fit (the chunk was cut, or the
 * caller asks from elsewhere). */
static ssize_t read_on(struct store *s, uint32_t id, struct store_cursor *c, int64_t after_t,
		       int64_t maxt, int64_t *t, double *v, size_t max)
{
	ssize_t n = -EAGAIN;
	pthread_rwlock_rdlock(&s->lock);
	struct series *se = series_by_id(s, id);
	const struct cenc *e = se ? &se->raw : NULL;
	struct cdec d;
	if (!se) /* gone, or left memory (cold.c): then read it the ordinary way */
		n = __atomic_load_n(&s->cold_maxt, __ATOMIC_RELAXED) == INT64_MIN ? -ENOENT : -EAGAIN;
	else if (c->ok && c->last_t == after_t && e->count && e->t_first == c->t_first &&
		 cdec_resume(&d, e->buf, cenc_bytes(e), &c->d) == 0) {
		n = decode_upto(&d, maxt, e->t_prev, t, v, 0, max);
		if (n == -EINVAL)
			n = -EAGAIN;     /* read it the ordinary way */
		if (n > 0) {
			c->d = d;
			c->last_t = t[n - 1];
		}
	}
	pthread_rwlock_unlock(&s->lock);
	if (n < 0 && n != -ENOENT)
		c->ok = false;
	return n;
}

/* Places the cursor after the open chunk's newest point up to maxt, when
 * that is after_t: decodes the chunk from its start once. */
static void place_cursor(struct store *s, uint32_t id, struct store_cursor *c, int64_t after_t,
			 int64_t maxt)
{
	c->ok = false;
	pthread_rwlock_rdlock(&s->lock);
	struct series *se = series_by_id(s, id);
	const struct cenc *e = se ? &se->raw : NULL;
	struct cdec d;
	if (e && e->count && cdec_init(&d, e->buf, cenc_bytes(e)) == 0 && d.ncols == 1) {
		int64_t last = INT64_MIN, bt[64];
		double bv[64];
		for (;;) {
			/* the fast decoder (past maxt: short of the last point, which
			 * usually is the only one past it); a batch that ends past
			 * maxt again, as far as maxt only */
			struct cdec before = d;
			size_t left = (size_t)(d.count - d.i) - (e->t_prev > maxt && d.i < d.count);
			size_t k = left ? cdec_run(&d, bt, bv, left < 64 ? left : 64) : 0, j = k;
			while (j && bt[j - 1] > maxt)
				j--;
			if (j < k) {
				d = before;
				if (j && cdec_run(&d, bt, bv, j) != j) {
					d = before;
					j = 0;
				}
			}
			if (j)
				last = bt[j - 1];
			if (!k || j < k)
				break;
		}
		if (last == after_t) {
			c->ok = true;
			c->t_first = e->t_first;
			c->last_t = last;
			c->d = d;
		}
	}
	pthread_rwlock_unlock(&s->lock);
}

/*
 * The points after the cursor was (at after_t in the chunk starting at
 * was->t_first) when that chunk was cut since: it reads on from the
 * cursor's place in the cut chunk (the same bytes and more, now in SQLite
 * or pending) instead of decoding it again from its start, then decodes the
 * chunks after it. -EAGAIN when the iterator's chunks are not that (they
 * overlap, one begins before the cursor, a resume does not fit): the caller
 * reads as an iterator does.
 */
static ssize_t read_cut(const struct store_iter *it, const struct store_cursor *was,
			int64_t after_t, int64_t maxt, int64_t *t, double *v, size_t max)
{
	if (!it->stream)
		return -EAGAIN;
	size_t n = 0;
	for (size_t i = 0; i < it->bs.n; i++) {
		const struct blob *b = &it->bs.b[i];
		const uint8_t *data = it->bs.mem + b->off;
		struct cdec d;
		if (b->maxt <= after_t)
			continue;
		if (b->mint > maxt)
			break;
		if (b->mint == was->t_first) {
			if (cdec_resume(&d, data, b->len, &was->d) < 0)
				return -EAGAIN;
		} else if (b->mint <= after_t || cdec_init(&d, data, b->len) < 0 || d.ncols != 1) {
			return -EAGAIN;
		}
		ssize_t k = decode_upto(&d, maxt, b->maxt, t, v, n, max);
		if (k < 0)
			return k == -E2BIG ? k : -EAGAIN;
		n = (size_t)k;
	}
	return (ssize_t)n;
}

static ssize_t read_after(struct store *s, uint32_t id, struct store_cursor *c, int64_t after_t,
			  int64_t maxt, int64_t *t, double *v, size_t max);

ssize_t store_read_after(struct store *s, uint32_t id, struct store_cursor *c, int64_t after_t,
			 int64_t maxt, int64_t *t, double *v, size_t max)
{
	ssize_t n = c->fr.st ? follow_take(s, id, c, after_t, maxt, t, v, max) : -EAGAIN;
	if (n != -EAGAIN)
		return n;
	/* (nothing asked for: a following cursor is only being started) */
	n = maxt > after_t ? read_after(s, id, c, after_t, maxt, t, v, max) : 0;
	if (n >= 0 && c->fr.st)
		follow_arm(s, id, c, n ? t[n - 1] : after_t, (size_t)n);
	return n;
}

/* store_read_after without the ring: on from the cursor, else as an
 * iterator reads. */
static ssize_t read_after(struct store *s, uint32_t id, struct store_cursor *c, int64_t after_t,
			  int64_t maxt, int64_t *t, double *v, size_t max)
{
	struct store_cursor was = *c;
	ssize_t n = read_on(s, id, c, after_t, maxt, t, v, max);
	if (n != -EAGAIN)
		return n;
	struct store_iter *it;
	int rc = store_iter_open(s, id, STORE_TIER_RAW, after_t + 1, maxt, &it);
	if (rc < 0)
		return rc;
	n = was.ok && was.last_t == after_t ? read_cut(it, &was, after_t, maxt, t, v, max) :
					      -EAGAIN;
	if (n != -EAGAIN) {
		store_iter_free(it);
		if (n >= 0)
			place_cursor(s, id, c, n ? t[n - 1] : after_t, maxt);
		return n;
	}
	n = 0;
	for (;;) {
		ssize_t k = store_iter_batch(it, t + n, v + n, max - (size_t)n);
		if (k <= 0) {
			if (k < 0)
				n = k;
			break;
		}
		n += k;
		if ((size_t)n == max) {
			int64_t xt;
			double xv;
			if (store_iter_batch(it, &xt, &xv, 1) > 0)
				n = -E2BIG;
			break;
		}
	}
	store_iter_free(it);
	if (n >= 0)
		place_cursor(s, id, c, n ? t[n - 1] : after_t, maxt);
	return n;
}

/* ---- label names and values -------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts, removes duplicates and packs the strings into one block. */
static ssize_t pack_strings(const char **v, size_t n, char ***out)
{
	qsort(v, n, sizeof(*v), cmp_str);
	size_t k = 0, bytes = 0;
	for (size_t i = 0; i < n; i++) {
		if (k && !strcmp(v[k - 1], v[i]))
			continue;
		v[k++] = v[i];
		bytes += strlen(v[i]) + 1;
	}
	char **arr = malloc(k * sizeof(char *) + bytes + 1);
	if (!arr)
		return -ENOMEM;
	char *p = (char *)(arr + k);
	for (size_t i = 0; i < k; i++) {
		size_t l = strlen(v[i]) + 1;
		memcpy(p, v[i], l);
		arr[i] = p;
		p += l;
	}
	*out = arr;
	return (ssize_t)k;
}

static ssize_t labels_of(struct store *s, const char *name, const struct store_matcher *m,
			 size_t n, char ***out)
{
	*out = NULL;
	struct cold_set cold;
	ssize_t rc = cold_select(s, m, n, INT64_MIN, INT64_MAX, &cold);
	if (rc < 0)
		return rc;
	rc = -ENOMEM;
	pthread_rwlock_rdlock(&s->lock);
	cold_dedup(s, &cold);
	const char **v = NULL;
	size_t nv = 0;
	if (n == 0) {
		if (name) {
			struct lname *l = lindex_name(&s->idx, name);
			v = malloc(((l ? l->n : 0) + 1) * sizeof(*v));
			for (uint32_t i = 0; v && l && i < l->n; i++)
				v[nv++] = l->pairs[i]->value;
		} else {
			v = malloc((s->idx.nnames + 1) * sizeof(*v));
			for (size_t i = 0; v && i < s->idx.names_nb; i++)
				for (struct lname *l = s->idx.names[i]; l; l = l->hnext)
					if (l->n)
						v[nv++] = l->name;
		}
	} else {
		size_t nc;
		uint32_t *ids = select_ids(s, m, n, INT64_MIN, INT64_MAX, &nc);
		size_t total = 0;
		for (size_t i = 0; ids && i < nc; i++)
			total += name ? 1 : series_by_id(s, ids[i])->nlabels;
		v = ids ? malloc((total + 1) * sizeof(*v)) : NULL;
		for (size_t i = 0; v && i < nc; i++) {
			struct series *se = series_by_id(s, ids[i]);
			for (size_t j = 0; j < se->nlabels; j++) {
				if (!name)
					v[nv++] = se->labels[j]->name;
				else if (!strcmp(se->labels[j]->name, name))
					v[nv++] = se->labels[j]->value;
			}
		}
		free(ids);
	}
	/* And those of the series only SQLite holds. */
	size_t extra = 0;
	for (size_t i = 0; i < cold.n; i++)
		extra += cold.v[i].nlabels;
	const char **nvp = v && extra ? realloc(v, (nv + extra + 1) * sizeof(*v)) : v;
	if (!nvp)
		free(v);
	v = nvp;
	for (size_t i = 0; v && i < cold.n; i++) {
		const struct cold_series *c = &cold.v[i];
		for (size_t j = 0; j < c->nlabels; j++) {
			if (!name)
				v[nv++] = c->labels[j].name;
			else if (!strcmp(c->labels[j].name, name) && *c->labels[j].value)
				v[nv++] = c->labels[j].value;
		}
	}
	if (v)
		rc = pack_strings(v, nv, out);
	pthread_rwlock_unlock(&s->lock);
	free(v);
	cold_set_free(&cold);
	return rc;
}

ssize_t store_label_names(struct store *s, const struct store_matcher *m, size_t n, char ***out)
{
	return labels_of(s, NULL, m, n, out);
}

ssize_t store_label_values(struct store *s, const char *name, const struct store_matcher *m,
			   size_t n, char ***out)
{
	return labels_of(s, name, m, n, out);
}
