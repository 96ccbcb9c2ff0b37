/*
 * forecast_read.c - how the forecaster reads the store: the points of a
 * series (raw, or 1 m roll-ups), the breaks in them (stale markers, a
 * changed value, a counter reset), and each family's selection of series
 * keyed by their labels so that a usage series finds its limit, period and
 * container start time. Refresh thread only (forecast_refresh.h).
 */
#include "alerting/forecast_refresh.h"

/* ---- reading the store ----------------------------------------------------------------- */


void fc_pts_fini(struct pts *p)
{
	free(p->t);
	free(p->v);
	memset(p, 0, sizeof(*p));
}

int fc_pts_grow(struct pts *p, size_t want)
{
	if (want <= p->cap)
		return 0;
	size_t cap = p->cap ? p->cap : 1024;
	while (cap < want)
		cap *= 2;
	if (cap > FC_MAX_RAW_POINTS)
		cap = FC_MAX_RAW_POINTS;
	if (cap < want)
		return -E2BIG;
	int64_t *t = realloc(p->t, cap * sizeof(*t));
	if (!t)
		return -ENOMEM;
	p->t = t;
	double *v = realloc(p->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	p->v = v;
	p->cap = cap;
	return 0;
}

/* Raw points of a series in [mint, maxt] (stale markers kept), or 1 m
 * roll-up means when tier is STORE_TIER_1M (last values for counters). */
int fc_read_series(struct store *st, uint32_t id, enum store_tier tier, bool last,
		       int64_t mint, int64_t maxt, struct pts *p)
{
	p->n = 0;
	struct store_iter *it;
	int rc = store_iter_open(st, id, tier, mint, maxt, &it);
	if (rc < 0)
		return rc;
	for (;;) {
		if ((rc = fc_pts_grow(p, p->n + 512)) < 0)
			break;
		if (tier == STORE_TIER_RAW) {
			ssize_t k = store_iter_batch(it, p->t + p->n, p->v + p->n, 512);
			if (k <= 0) {
				rc = (int)k;
				break;
			}
			p->n += (size_t)k;
			continue;
		}
		struct store_point pt;
		rc = store_iter_next(it, &pt);
		if (rc <= 0)
			break;
		p->t[p->n] = pt.t;
		p->v[p->n++] = last || !(pt.count > 0) ? pt.last : pt.sum / pt.count;
	}
	store_iter_free(it);
	return rc < 0 && rc != -E2BIG ? rc : 0;
}

/* Where the data after the newest stale marker begins (the container
 * stopped there); removes stale markers. Returns the cut time or
 * INT64_MIN. */
int64_t fc_drop_stale(struct pts *p, bool *ends_stale)
{
	int64_t cut = INT64_MIN;
	size_t w = 0;
	*ends_stale = p->n && store_is_stale(p->v[p->n - 1]);
	for (size_t i = 0; i < p->n; i++) {
		if (store_is_stale(p->v[i])) {
			cut = p->t[i];
			w = 0;
			continue;
		}
		p->t[w] = p->t[i];
		p->v[w++] = p->v[i];
	}
	p->n = w;
	return cut;
}

/* The time of the newest change of value (a limit change, a new start
 * time, a counter reset when reset_only), or INT64_MIN. */
int64_t fc_last_change(const struct pts *p, bool reset_only)
{
	for (size_t i = p->n; i-- > 1;) {
		double a = p->v[i - 1], b = p->v[i];
		if (isnan(a) || isnan(b))
			continue;
		if (reset_only ? b < a : b != a)
			return p->t[i];
	}
	return INT64_MIN;
}

void fc_cut_at(struct pts *p, int64_t t)
{
	if (t == INT64_MIN || !p->n)
		return;
	size_t k = fc_cut(p->t, p->n, t);
	memmove(p->t, p->t + k, (p->n - k) * sizeof(*p->t));
	memmove(p->v, p->v + k, (p->n - k) * sizeof(*p->v));
	p->n -= k;
}

/*
 * A series' labels as keys that pair it with its limit and its container:
 * base (every label but __name__, cpu and mountpoint) and full (base and
 * the mountpoint); as exposition text (base only); the mountpoint's value.
 */
static void series_key(const struct store_series_info *si, struct buf *base, struct buf *full,
		       struct buf *text, const char **mountpoint)
{
	*mountpoint = NULL;
	for (size_t i = 0; i < si->nlabels; i++) {
		const struct store_label *l = &si->labels[i];
		if (!strcmp(l->name, "__name__") || !strcmp(l->name, "cpu"))
			continue;
		bool mp = !strcmp(l->name, "mountpoint");
		if (mp)
			*mountpoint = l->value;
		for (int k = 0; k < 2; k++) {
			struct buf *b = k ? full : base;
			if (!b || (mp && !k))
				continue;
			buf_puts(b, l->name);
			buf_putc(b, '\x01');
			buf_puts(b, l->value);
			buf_putc(b, '\x02');
		}
		if (mp || !text)
			continue;
		if (text->len)
			buf_putc(text, ',');
		buf_puts(text, l->name);
		buf_putc(text, '=');
		buf_put_label_value(text, l->value);
	}
}


static int cmp_keyed(const void *a, const void *b)
{
	const struct keyed_ent *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	if (c)
		return c;
	return x->si->max_t < y->si->max_t ? -1 : x->si->max_t > y->si->max_t;
}

/* Works out every series' keys and texts into k->txt; a text is the labels
 * of the series' forecast samples (resource and mountpoint too), rendered
 * once a selection instead of once a refresh; NULL past FC_LABELS_CAP. */
static int keyed_texts(struct keyed *k, const char *resource)
{
	k->txt = calloc(k->set.n + 1, sizeof(*k->txt));
	k->texts = fc_texts_new();
	if (!k->txt || !k->texts)
		return -ENOMEM;
	/* what the tables keep (in k->texts, shared), and what only the
	 * selection uses (keys, in k->arena) */
	struct arena *kept = &k->texts->arena;
	struct buf full, base, text;
	buf_init(&full, FC_LABELS_CAP);
	buf_init(&base, FC_LABELS_CAP);
	buf_init(&text, FC_LABELS_CAP);
	int rc = 0;
	for (size_t i = 0; i < k->set.n && rc == 0; i++) {
		const struct store_series_info *si = &k->set.series[i];
		struct keyed_txt *x = &k->txt[i];
		buf_reset(&full);
		buf_reset(&base);
		buf_reset(&text);
		series_key(si, &base, &full, &text, &x->mp);
		buf_puts(&text, text.len ? ",resource=\"" : "resource=\"");
		buf_puts(&text, resource);
		buf_putc(&text, '"');
		if (x->mp) {
			buf_puts(&text, ",mountpoint=");
			buf_put_label_value(&text, x->mp);
		}
		x->full = arena_strdup(&k->arena, full.len ? full.data : "");
		x->base = arena_strdup(&k->arena, base.len ? base.data : "");
		x->text = text.overflow ? NULL : arena_strdup(kept, text.data);
		if (!x->full || !x->base || (!x->text && !text.overflow))
			rc = -ENOMEM;
		if (x->mp && !(x->mp = arena_strdup(kept, x->mp)))
			rc = -ENOMEM;
		for (size_t j = 0; j < si->nlabels; j++)
			if (!strcmp(si->labels[j].name, "id") &&
			    !(x->id = arena_strdup(kept, si->labels[j].value)))
				rc = -ENOMEM;
	}
	buf_fini(&full);
	buf_fini(&base);
	buf_fini(&text);
	return rc;
}

/* Numbers selections (struct keyed's gen) so that what was paired with one
 * is known to be from it; 0 is none. Shared by all forecasters: ids only. */
static uint64_t keyed_gens;

/* The series of a family (and one equality matcher) with samples in
 * [mint, maxt], sorted by their labels (store_select). */
static int select_set(struct store *st, const char *family, const char *match, int64_t mint,
		      int64_t maxt, struct store_series_set *set)
{
	struct store_matcher m[2];
	size_t nm = 1;
	char err[128];
	int rc = store_matcher_init(&m[0], STORE_MATCH_EQ, "__name__", family, err, sizeof(err));
	if (rc < 0)
		return rc;
	if (match) {
		char name[64];
		const char *eq = strchr(match, '=');
		snprintf(name, sizeof(name), "%.*s", (int)(eq - match), match);
		if ((rc = store_matcher_init(&m[1], STORE_MATCH_EQ, name, eq + 1, err,
					     sizeof(err))) < 0) {
			store_matcher_fini(&m[0]);
			return rc;
		}
		nm = 2;
	}
	rc = store_select(st, m, nm, mint, maxt, set);
	for (size_t i = 0; i < nm; i++)
		store_matcher_fini(&m[i]);
	return rc;
}

/* A new selection of set into k (freed: fc_keyed_free), which takes set
 * (freed with k): every series keyed (base
 * or full) and sorted by key; dups says whether two share a key (then
 * their order, and so which one pairs, goes by their times). */
static int keyed_build(struct keyed *k, struct store_series_set *set, bool full)
{
	k->set = *set;
	k->ent = calloc(k->set.n + 1, sizeof(*k->ent));
	if (!k->ent)
		return -ENOMEM;
	struct buf key;
	buf_init(&key, FC_LABELS_CAP);
	for (size_t i = 0; i < k->set.n; i++) {
		const char *mp;
		buf_reset(&key);
		series_key(&k->set.series[i], full ? NULL : &key, full ? &key : NULL, NULL, &mp);
		const char *ks = arena_strdup(&k->arena, key.len && !key.overflow ? key.data : "");
		if (!ks) {
			buf_fini(&key);
			return -ENOMEM;
		}
		k->ent[k->n++] = (struct keyed_ent){ ks, &k->set.series[i] };
	}
	buf_fini(&key);
	qsort(k->ent, k->n, sizeof(*k->ent), cmp_keyed);
	for (size_t i = 1; i < k->n && !k->dups; i++)
		k->dups = !strcmp(k->ent[i - 1].key, k->ent[i].key);
	return 0;
}

/* Whether set holds the very series of k's selection (in the same order,
 * as store_select sorts by labels) and none of k's keys repeats: then
 * every key, text and pairing made from their labels still holds, and
 * only the series' times are new. */
static bool keyed_same(const struct keyed *k, const struct store_series_set *set)
{
	if (!k->valid || k->dups || set->n != k->set.n)
		return false;
	for (size_t i = 0; i < set->n; i++)
		if (set->series[i].id != k->set.series[i].id)
			return false;
	return true;
}

void fc_keyed_free(struct keyed *k)
{
	uint32_t phase = k->phase;
	int64_t slot_ms = k->slot_ms;
	free(k->ent);
	free(k->txt);
	fc_texts_unref(k->texts);
	arena_free(&k->arena);
	store_series_set_free(&k->set);
	memset(k, 0, sizeof(*k));
	k->phase = phase;                /* (the forecaster's: kept) */
	k->slot_ms = slot_ms;
}

/*
 * A family's selection as of this refresh. One is kept between refreshes
 * while no series was made or dropped in the store (store_series_epoch)
 * until it is due, every FC_SELECT_EVERY_MS (so that series of containers
 * gone quiet leave it and ones come back join it), at a refresh chosen by
 * k->phase: the forecaster's 25 selections come due at different
 * refreshes, as full re-reads do (fc_stagger), not all in one. A
 * selection made again that finds the same series keeps its keys, texts
 * and pairs and takes only the new times (keyed_same): most of what making
 * one costs. Its min_t/max_t are as of made_at: fresh (made_at == now)
 * says whether they are current.
 */
int fc_keyed_get(struct store *st, struct keyed *k, const char *family, const char *match,
		     int64_t mint, int64_t now, uint64_t epoch, bool full,
		 const char *resource)
{
	if (k->valid && k->epoch == epoch && now >= k->made_at && now < k->due)
		return 0;
	struct store_series_set set;
	int rc = select_set(st, family, match, mint, now, &set);
	if (rc == 0 && keyed_same(k, &set)) {
		for (size_t i = 0; i < set.n; i++) {
			k->set.series[i].min_t = set.series[i].min_t;
			k->set.series[i].max_t = set.series[i].max_t;
		}
		store_series_set_free(&set);
	} else if (rc == 0) {
		fc_keyed_free(k);
		rc = keyed_build(k, &set, full);
		if (rc == 0 && resource)
			rc = keyed_texts(k, resource);
		k->gen = __atomic_add_fetch(&keyed_gens, 1, __ATOMIC_RELAXED);
	}
	if (rc < 0) {
		fc_keyed_free(k);
		return rc;
	}
	k->made_at = now;
	k->due = fc_stagger(now, k->phase, FC_SELECT_EVERY_MS, k->slot_ms);
	k->epoch = epoch;
	k->valid = true;
	return 0;
}

/* The series of k with this key (the newest when several), or NULL. */
static const struct store_series_info *keyed_find(const struct keyed *k, const char *key)
{
	size_t lo = 0, hi = k->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(k->ent[mid].key, key) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* lo is past the last entry <= key: the newest of the equal ones */
	return lo && !strcmp(k->ent[lo - 1].key, key) ? k->ent[lo - 1].si : NULL;
}

/* The limit, limit2 and start time series of a usage series' texts x, from
 * its last refresh when none of the three selections was made since: a
 * thousand containers' lookups are string compares of long keys. */
void fc_pair_txt(struct keyed_txt *x, const struct keyed *lim, const struct keyed *lim2,
		     const struct keyed *starts)
{
	if (x->lim_gen == lim->gen && x->lim2_gen == lim2->gen && x->start_gen == starts->gen)
		return;
	x->lim = keyed_find(lim, x->full);
	x->lim2 = keyed_find(lim2, x->full);
	x->start = keyed_find(starts, x->base);
	x->lim_gen = lim->gen;
	x->lim2_gen = lim2->gen;
	x->start_gen = starts->gen;
}
