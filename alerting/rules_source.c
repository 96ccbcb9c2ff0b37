/*
 * rules_source.c - what rule evaluation reads through: the store's PromQL
 * source with two caches in front, for one evaluator thread.
 *
 * Rules read the same few series over and over: every round, each rule
 * reads the last minutes of the series it selects, and many rules select
 * the same series (a rule pack has several rules on the CPU counters, on the
 * memory gauges, ...). Reading [5m] of a series sampled every second from
 * the store's compressed head costs hundreds of decoded points each time.
 *
 *   - points: per series, the window of points already read is kept; the
 *     next read fetches only the points after the newest one held (the
 *     store appends in time order per series, so none can appear before
 *     it), and answers from memory. A series keeps the widest window any
 *     rule asked of it lately; series no rule read for a few rounds are
 *     dropped, and the whole cache is dropped past a size cap.
 *   - select: within one evaluation round (all groups due at one time) the
 *     same selector over the same time range answers from the first
 *     answer; the next round selects afresh, so new containers appear.
 *
 * And one overlay: what rules wrote in this round (recorded series, ALERTS)
 * reaches the store only when the tick drains the engine's queue, but a
 * later rule of the same group must see it, as in Prometheus. The outputs
 * of the round are kept here and merged into every answer: a series the
 * store has gets the new point appended, a series it does not have yet is
 * added to the selection (with a reference of its own).
 *
 * Reads that reach past the raw retention (roll-ups fill in there) go to the
 * store directly. Rounds belong to the engine's evaluator (under its
 * eval_lock); reads may come from it and from the PromQL engine's prefetch
 * helper at the same time, so they take the source's lock (sources must
 * allow concurrent reads).
 */
#include "alerting/rules_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_MAX_POINTS (4u << 20)      /* 64 MiB of points at most */
#define IDLE_ROUNDS 4                    /* unread this long: dropped */
#define SEL_MAX 512                      /* selects kept per round */
#define OVERLAY_BIT (1ULL << 63)         /* refs of series only the overlay has */
#define OVERLAY_MAX (1u << 20)

/* A sample a rule wrote this round. */
struct oentry {
	struct promql_label *labels;     /* sorted, one malloc block with the strings */
	size_t n;
	int64_t t;
	double v;
	uint64_t store_ref;              /* the store's series with these labels; 0: none seen */
	bool in_store;
	uint64_t name_hash;              /* of __name__ */
	ssize_t next;                    /* the previous entry of the same name hash, or -1 */
};

#define OV_BUCKETS 1024                  /* heads of entries by name hash */

struct pentry {
	uint64_t ref;
	bool used;                       /* slot in use */
	int64_t from;                    /* points complete from here ... */
	int64_t upto;                    /* ... up to here */
	int64_t span;                    /* widest window asked lately */
	uint64_t last_round;
	uint64_t ov_round;               /* ov is this round's overlay entry when equal */
	size_t ov;
	struct promql_point *p;
	size_t n, cap;
};

struct sentry {
	char *key;
	struct promql_series *s;
	ssize_t n;
};

struct rules_source {
	pthread_mutex_t lock;            /* reads, against the prefetch helper */
	struct promql_source inner;
	struct promql_source self;
	int64_t raw_retention_ms;
	int64_t now;
	uint64_t round;
	struct pentry *tab;              /* open addressing, size a power of two */
	size_t size, used;
	size_t points;                   /* held over all entries */
	struct sentry sel[SEL_MAX];
	size_t nsel;
	struct arena sel_mem;            /* this round's select answers */
	struct oentry *ov;               /* this round's outputs */
	size_t nov, ovcap;
	ssize_t ov_head[OV_BUCKETS];     /* newest entry per name-hash bucket, -1: none */
	uint64_t hits, misses;
};

static void overlay_clear(struct rules_source *rs)
{
	for (size_t i = 0; i < rs->nov; i++)
		free(rs->ov[i].labels);
	rs->nov = 0;
	for (size_t i = 0; i < OV_BUCKETS; i++)
		rs->ov_head[i] = -1;
}

static size_t slot_of(uint64_t ref, size_t size)
{
	uint64_t h = ref * 0x9E3779B97F4A7C15ULL;
	return (size_t)(h >> 17) & (size - 1);
}

static void drop_all(struct rules_source *rs)
{
	for (size_t i = 0; i < rs->size; i++)
		free(rs->tab[i].p);
	free(rs->tab);
	rs->tab = NULL;
	rs->size = rs->used = rs->points = 0;
}

static int grow(struct rules_source *rs)
{
	size_t nsize = rs->size ? rs->size * 2 : 1024;
	struct pentry *nt = calloc(nsize, sizeof(*nt));
	if (!nt)
		return -ENOMEM;
	for (size_t i = 0; i < rs->size; i++) {
		if (!rs->tab[i].used)
			continue;
		size_t j = slot_of(rs->tab[i].ref, nsize);
		while (nt[j].used)
			j = (j + 1) & (nsize - 1);
		nt[j] = rs->tab[i];
	}
	free(rs->tab);
	rs->tab = nt;
	rs->size = nsize;
	return 0;
}

static struct pentry *lookup(struct rules_source *rs, uint64_t ref, bool create)
{
	if (rs->size) {
		size_t j = slot_of(ref, rs->size);
		while (rs->tab[j].used) {
			if (rs->tab[j].ref == ref)
				return &rs->tab[j];
			j = (j + 1) & (rs->size - 1);
		}
	}
	if (!create)
		return NULL;
	if ((rs->used + 1) * 2 > rs->size && grow(rs) < 0)
		return NULL;
	size_t j = slot_of(ref, rs->size);
	while (rs->tab[j].used)
		j = (j + 1) & (rs->size - 1);
	memset(&rs->tab[j], 0, sizeof(rs->tab[j]));
	rs->tab[j].used = true;
	rs->tab[j].ref = ref;
	rs->used++;
	return &rs->tab[j];
}

/* Rebuilds the table without the entries idle for IDLE_ROUNDS. */
static void sweep(struct rules_source *rs)
{
	size_t keep = 0;
	for (size_t i = 0; i < rs->size; i++)
		keep += rs->tab[i].used && rs->round - rs->tab[i].last_round < IDLE_ROUNDS;
	if (keep == rs->used)
		return;
	struct pentry *old = rs->tab;
	size_t osize = rs->size;
	rs->tab = NULL;
	rs->size = rs->used = rs->points = 0;
	for (size_t i = 0; i < osize; i++) {
		struct pentry *o = &old[i];
		if (!o->used)
			continue;
		if (rs->round - o->last_round >= IDLE_ROUNDS) {
			free(o->p);
			continue;
		}
		struct pentry *e = lookup(rs, o->ref, true);
		if (!e) {
			free(o->p);
			continue;
		}
		*e = *o;
		rs->points += o->n;
	}
	free(old);
}

void rules_source_round(struct rules_source *rs, int64_t now)
{
	pthread_mutex_lock(&rs->lock);
	rs->round++;
	rs->now = now;
	for (size_t i = 0; i < rs->nsel; i++)
		free(rs->sel[i].key);
	rs->nsel = 0;
	arena_free(&rs->sel_mem);
	overlay_clear(rs);
	if (rs->points > CACHE_MAX_POINTS)
		drop_all(rs);
	else if (rs->round % IDLE_ROUNDS == 0)
		sweep(rs);
	pthread_mutex_unlock(&rs->lock);
}

/* The index of the first point of e at or after t. */
static size_t first_at(const struct pentry *e, int64_t t)
{
	size_t lo = 0, hi = e->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (e->p[mid].t < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Appends the points of [mint, maxt] from e to out. */
static int copy_out(const struct pentry *e, int64_t mint, int64_t maxt, struct promql_points *out)
{
	size_t lo = first_at(e, mint);
	size_t end = maxt < INT64_MAX ? first_at(e, maxt + 1) : e->n;
	size_t k = end > lo ? end - lo : 0;
	if (!k)
		return 0;
	if (out->n + k > out->cap) {
		size_t cap = out->cap ? out->cap : 64;
		while (cap < out->n + k)
			cap *= 2;
		struct promql_point *np = realloc(out->p, cap * sizeof(*np));
		if (!np)
			return -ENOMEM;
		out->p = np;
		out->cap = cap;
	}
	memcpy(out->p + out->n, e->p + lo, k * sizeof(*e->p));
	out->n += k;
	return 0;
}

/* Drops the points of e older than upto - span. */
static void trim(struct rules_source *rs, struct pentry *e)
{
	int64_t keep_from = e->upto - e->span;
	if (keep_from <= e->from)
		return;
	size_t k = first_at(e, keep_from);
	if (k * 4 < e->n && k < 64)
		return; /* not worth the move yet */
	memmove(e->p, e->p + k, (e->n - k) * sizeof(*e->p));
	e->n -= k;
	rs->points -= k;
	e->from = keep_from;
}

static int points_locked(struct rules_source *rs, uint64_t ref, int64_t mint, int64_t maxt,
			 int64_t step_ms, struct promql_points *out);

/* The overlay's point for ref, appended when it is in [mint, maxt] and
 * after what out holds (from base). */
static int overlay_points(struct rules_source *rs, uint64_t ref, int64_t mint, int64_t maxt,
			  size_t base, struct promql_points *out)
{
	size_t i;
	if (ref & OVERLAY_BIT) {
		i = (size_t)(ref & ~OVERLAY_BIT);
	} else {
		const struct pentry *e = lookup(rs, ref, false);
		if (!e || e->ov_round != rs->round)
			return 0;
		i = e->ov;
	}
	if (i >= rs->nov)
		return 0;
	const struct oentry *o = &rs->ov[i];
	if (o->t < mint || o->t > maxt || (out->n > base && out->p[out->n - 1].t >= o->t))
		return 0;
	return promql_points_push(out, o->t, o->v);
}

static int rs_points(void *ctx, uint64_t ref, int64_t mint, int64_t maxt, int64_t step_ms,
		     struct promql_points *out)
{
	struct rules_source *rs = ctx;
	pthread_mutex_lock(&rs->lock);
	size_t base = out->n;
	int rc = (ref & OVERLAY_BIT) ? 0 : points_locked(rs, ref, mint, maxt, step_ms, out);
	if (rc == 0 && rs->nov)
		rc = overlay_points(rs, ref, mint, maxt, base, out);
	pthread_mutex_unlock(&rs->lock);
	return rc;
}

static int points_locked(struct rules_source *rs, uint64_t ref, int64_t mint, int64_t maxt,
			 int64_t step_ms, struct promql_points *out)
{
	/* Past the raw retention the store fills from roll-ups: no cache. */
	if (rs->raw_retention_ms > 0 && mint < rs->now - rs->raw_retention_ms)
		return rs->inner.ops->points(rs->inner.ctx, ref, mint, maxt, step_ms, out);
	struct pentry *e = lookup(rs, ref, true);
	if (!e)
		return rs->inner.ops->points(rs->inner.ctx, ref, mint, maxt, step_ms, out);
	e->last_round = rs->round;
	if (maxt - mint > e->span)
		e->span = maxt - mint;
	struct promql_points got = { e->p, e->n, e->cap };
	int rc = 0;
	if (!e->n && !e->from && !e->upto) {
		/* First read of this series. */
		rc = rs->inner.ops->points(rs->inner.ctx, ref, mint, maxt, 0, &got);
		e->from = mint;
		e->upto = maxt;
		rs->misses++;
	} else if (mint < e->from) {
		/* A wider window than held: read it all again. */
		got.n = 0;
		rc = rs->inner.ops->points(rs->inner.ctx, ref, mint, maxt > e->upto ? maxt : e->upto,
					   0, &got);
		e->from = mint;
		if (maxt > e->upto)
			e->upto = maxt;
		rs->misses++;
	} else if (maxt > e->upto) {
		/* Only what came after the newest point held (appends are in
		 * time order per series, so nothing older can still appear). */
		int64_t after = e->n ? e->p[e->n - 1].t + 1 : e->from;
		if (after <= maxt)
			rc = rs->inner.ops->points(rs->inner.ctx, ref, after, maxt, 0, &got);
		e->upto = maxt;
		rs->hits++;
	} else {
		rs->hits++;
	}
	rs->points = rs->points + got.n - e->n;
	e->p = got.p;
	e->n = got.n;
	e->cap = got.cap;
	if (rc < 0) {
		/* Start over next time. */
		rs->points -= e->n;
		e->n = 0;
		e->from = e->upto = 0;
		return rc;
	}
	rc = copy_out(e, mint, maxt, out);
	trim(rs, e);
	return rc;
}

/* The select key: matchers and range, as text. */
static char *sel_key(const struct promql_matcher *m, size_t n, int64_t mint, int64_t maxt)
{
	struct buf b;
	buf_init(&b, 1 << 16);
	buf_printf(&b, "%lld|%lld", (long long)mint, (long long)maxt);
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "|%d\x1f%s\x1f%s", (int)m[i].op, m[i].name, m[i].value);
	if (b.overflow) {
		buf_fini(&b);
		return NULL;
	}
	size_t len;
	return buf_steal(&b, &len);
}

static ssize_t select_locked(struct rules_source *rs, const struct promql_matcher *m, size_t n,
			     int64_t mint, int64_t maxt, struct arena *a, struct promql_series **out);

static const char *label_of(const struct promql_label *l, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(l[i].name, name))
			return l[i].value;
	return NULL;
}

static bool same_labels(const struct promql_label *a, size_t na, const struct promql_label *b,
			size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i].name, b[i].name) || strcmp(a[i].value, b[i].value))
			return false;
	return true;
}

/* Adds this round's outputs that match m to the selection *out (k series,
 * from the caller's arena): new series get overlay refs, known ones are
 * marked so that their points get the new sample. Returns the new count. */
static ssize_t overlay_select(struct rules_source *rs, const struct promql_matcher *m, size_t n,
			      struct arena *a, struct promql_series **out, ssize_t k)
{
	size_t extra = 0;
	struct promql_series *res = *out;
	/* Nearly every selector names its metric: only that name's entries. */
	const char *name = NULL;
	for (size_t j = 0; j < n && !name; j++)
		if (m[j].op == PROMQL_MATCH_EQ && !strcmp(m[j].name, "__name__"))
			name = m[j].value;
	uint64_t nh = name ? hash_str(name) : 0;
	ssize_t next = name ? rs->ov_head[nh % OV_BUCKETS] : (ssize_t)rs->nov - 1;
	for (; next >= 0; next = name ? rs->ov[next].next : next - 1) {
		size_t i = (size_t)next;
		struct oentry *o = &rs->ov[i];
		if (name && o->name_hash != nh)
			continue;
		bool match = true;
		for (size_t j = 0; j < n && match; j++)
			match = promql_matcher_match(&m[j], label_of(o->labels, o->n, m[j].name));
		if (!match)
			continue;
		bool found = false;
		for (ssize_t j = 0; j < k && !found; j++) {
			if (same_labels(res[j].labels, res[j].nlabels, o->labels, o->n)) {
				o->store_ref = res[j].ref;
				o->in_store = true;
				found = true;
				struct pentry *e = lookup(rs, res[j].ref, true);
				if (e) {
					e->ov = i;
					e->ov_round = rs->round;
				}
			}
		}
		if (found)
			continue;
		if (!extra) {
			struct promql_series *grown = arena_alloc(a, ((size_t)k + rs->nov + 1) *
								      sizeof(*grown));
			if (!grown)
				return -ENOMEM;
			memcpy(grown, res, (size_t)k * sizeof(*grown));
			res = grown;
		}
		res[k + (ssize_t)extra] = (struct promql_series){ o->n, o->labels, OVERLAY_BIT | i };
		extra++;
	}
	if (extra) {
		k += (ssize_t)extra;
		qsort(res, (size_t)k, sizeof(*res), promql_series_cmp);
	}
	*out = res;
	return k;
}

static ssize_t rs_select(void *ctx, const struct promql_matcher *m, size_t n, int64_t mint,
			 int64_t maxt, struct arena *a, struct promql_series **out)
{
	struct rules_source *rs = ctx;
	pthread_mutex_lock(&rs->lock);
	ssize_t rc = select_locked(rs, m, n, mint, maxt, a, out);
	if (rc >= 0 && rs->nov)
		rc = overlay_select(rs, m, n, a, out, rc);
	pthread_mutex_unlock(&rs->lock);
	return rc;
}

void rules_source_add(struct rules_source *rs, const struct store_label *l, size_t n, int64_t t,
		      double v)
{
	size_t bytes = (n + 1) * sizeof(struct promql_label);
	for (size_t i = 0; i < n; i++)
		bytes += strlen(l[i].name) + strlen(l[i].value) + 2;
	pthread_mutex_lock(&rs->lock);
	if (rs->nov >= OVERLAY_MAX)
		goto out;
	if (rs->nov == rs->ovcap) {
		size_t cap = rs->ovcap ? rs->ovcap * 2 : 64;
		struct oentry *no = realloc(rs->ov, cap * sizeof(*no));
		if (!no)
			goto out;
		rs->ov = no;
		rs->ovcap = cap;
	}
	struct promql_label *pl = malloc(bytes);
	if (!pl)
		goto out;
	char *p = (char *)(pl + n + 1);
	for (size_t i = 0; i < n; i++) {
		size_t a = strlen(l[i].name) + 1, b = strlen(l[i].value) + 1;
		memcpy(p, l[i].name, a);
		pl[i].name = p;
		p += a;
		memcpy(p, l[i].value, b);
		pl[i].value = p;
		p += b;
	}
	const char *name = label_of(pl, n, "__name__");
	uint64_t nh = hash_str(name ? name : "");
	rs->ov[rs->nov] = (struct oentry){ pl, n, t, v, 0, false, nh, rs->ov_head[nh % OV_BUCKETS] };
	rs->ov_head[nh % OV_BUCKETS] = (ssize_t)rs->nov;
	rs->nov++;
out:
	pthread_mutex_unlock(&rs->lock);
}

static ssize_t select_locked(struct rules_source *rs, const struct promql_matcher *m, size_t n,
			     int64_t mint, int64_t maxt, struct arena *a, struct promql_series **out)
{
	char *key = sel_key(m, n, mint, maxt);
	if (!key)
		return rs->inner.ops->select(rs->inner.ctx, m, n, mint, maxt, a, out);
	const struct sentry *hit = NULL;
	for (size_t i = 0; i < rs->nsel && !hit; i++)
		if (!strcmp(rs->sel[i].key, key))
			hit = &rs->sel[i];
	if (!hit) {
		struct promql_series *s;
		ssize_t k = rs->inner.ops->select(rs->inner.ctx, m, n, mint, maxt, &rs->sel_mem, &s);
		if (k < 0 || rs->nsel >= SEL_MAX) {
			free(key);
			if (k < 0)
				return k;
			/* Full: answer, do not keep (the answer lives in sel_mem
			 * until the round ends, which is long enough). */
			*out = s;
			return k;
		}
		rs->sel[rs->nsel] = (struct sentry){ key, s, k };
		hit = &rs->sel[rs->nsel++];
	} else {
		free(key);
	}
	/* The array from the caller's arena; labels stay in this round's memory,
	 * which outlives the query (the round ends at the next evaluation). */
	struct promql_series *copy = arena_alloc(a, ((size_t)hit->n + 1) * sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	memcpy(copy, hit->s, (size_t)hit->n * sizeof(*copy));
	*out = copy;
	return hit->n;
}

static ssize_t rs_label_names(void *ctx, char ***out)
{
	struct rules_source *rs = ctx;
	return rs->inner.ops->label_names ? rs->inner.ops->label_names(rs->inner.ctx, out) : -ENOTSUP;
}

static ssize_t rs_label_values(void *ctx, const char *name, char ***out)
{
	struct rules_source *rs = ctx;
	return rs->inner.ops->label_values ? rs->inner.ops->label_values(rs->inner.ctx, name, out)
					   : -ENOTSUP;
}

static const struct promql_source_ops rs_ops = {
	.select = rs_select,
	.points = rs_points,
	.label_names = rs_label_names,
	.label_values = rs_label_values,
};

struct rules_source *rules_source_new(const struct promql_source *inner, int64_t raw_retention_ms)
{
	struct rules_source *rs = calloc(1, sizeof(*rs));
	if (!rs)
		return NULL;
	/* Held for microseconds: spin a little before sleeping, so the
	 * evaluator and the prefetch helper do not trade context switches. */
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&rs->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	rs->inner = *inner;
	for (size_t i = 0; i < OV_BUCKETS; i++)
		rs->ov_head[i] = -1;
	rs->raw_retention_ms = raw_retention_ms;
	rs->self.ops = &rs_ops;
	rs->self.ctx = rs;
	return rs;
}

const struct promql_source *rules_source_get(struct rules_source *rs)
{
	return &rs->self;
}

void rules_source_free(struct rules_source *rs)
{
	if (!rs)
		return;
	drop_all(rs);
	for (size_t i = 0; i < rs->nsel; i++)
		free(rs->sel[i].key);
	arena_free(&rs->sel_mem);
	overlay_clear(rs);
	free(rs->ov);
	pthread_mutex_destroy(&rs->lock);
	free(rs);
}

void rules_source_stats(const struct rules_source *rs, uint64_t *hits, uint64_t *misses,
			size_t *points)
{
	pthread_mutex_lock((pthread_mutex_t *)&rs->lock);
	*hits = rs->hits;
	*misses = rs->misses;
	*points = rs->points;
	pthread_mutex_unlock((pthread_mutex_t *)&rs->lock);
}
