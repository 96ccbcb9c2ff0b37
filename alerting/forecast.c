/*
 * forecast.c - capacity forecasts for every container and the host: the
 * refresh thread, the resources it forecasts, the published table, and
 * what the tick, /metrics and the API read from it.
 *
 * Every forecast.interval the thread selects, from the store, the usage
 * and limit series of each resource (table `resources` below), pairs them
 * by their labels, reads the raw window and the 1 m roll-ups of each, cuts
 * them at known breaks (a stale marker: the container stopped; a change of
 * the limit or of container_start_time_seconds: a new run or a new limit; a
 * counter reset), fits (forecast_model.c) and builds a new table. The table
 * is immutable and reference-counted; publishing swaps a pointer under a
 * lock, so the tick (forecast_emit) and HTTP handlers never wait for a fit.
 *
 * Why most series are not read whole each refresh: at 1,000 containers
 * that is 1.4 million samples a minute at 10 s (14 million at 1 s), most of
 * them read and summed again unchanged. A series whose fit is linear keeps
 * the window's sums (struct fc_inc, forecast_int.h's fc_window) and each
 * refresh only adds the samples since the last and removes those that left
 * the window; whatever could change the answer beyond the line (a break, a
 * step, the periodic full fit) reads it whole as before.
 *
 * Why the tick copies the table into its snapshot instead of /metrics
 * appending it: samples in the snapshot are stored like every other
 * series, so rules and PromQL see container_forecast_* (the default rules
 * alert on them), /metrics and its gzip cache stay one path, and the
 * series are continuous between refreshes instead of appearing once a
 * minute.
 */
#include "alerting/alerting.h"
#include "alerting/forecast_int.h"
#include "collectors/collector.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FC_MAX_RAW_POINTS (1u << 20)     /* per series and read; a 1h window at 100ms is 36000 */
#define FC_MAX_ENTRIES 200000            /* resources in one table */
#define FC_LABELS_CAP 8192               /* rendered labels of one container */
/* How often a series' long history (1 m roll-ups over forecast.history) is
 * read and fitted again; in between its Holt-Winters or peaks fit is
 * carried forward. A week of roll-ups is 10,080 points a series. */
#define FC_HISTORY_EVERY_MS (15 * 60 * 1000LL)
/* The same for a series whose history fit was the line again (kept as
 * sums): a week of roll-ups read to learn that nothing changed is most of
 * what a steady series costs, so it is looked at again after an hour; a
 * break, a step or a new limit still refits it at once. */
#define FC_HISTORY_LINE_EVERY_MS (60 * 60 * 1000LL)
/* What is read of a resource without a limit: enough for its value now. */
#define FC_TAIL_MS (2 * 60 * 1000LL)
/* How often a linear fit kept as running sums (struct fc_inc) is thrown
 * away and made again from the whole window: bounds the rounding the sums
 * gather and lets the step detector's scale follow the series. The sums
 * move by whole cells (compensated), so their rounding stays near a
 * cell's own after hours; a step, a break or a new limit refits at once,
 * and the history check (FC_HISTORY_LINE_EVERY_MS) still asks every hour
 * whether the line is the model. Each series is due at its own refresh
 * (staggered by its id), so that not every series pays for a full read in
 * the same refresh. */
#define FC_FULL_EVERY_MS (4 * 60 * 60 * 1000LL)
/* At most this many cells of a kept window (struct fc_inc): 48 bytes
 * each, 62 for the default hour refreshed every minute. */
#define FC_MAX_CELLS 120
/* How long a family's selection of series is kept while no series is made
 * or dropped (keyed_get): series that stopped are dropped from it at most
 * this late (their reads find nothing new and say so). */
#define FC_SELECT_EVERY_MS (10 * 60 * 1000LL)
/* Blocks of the kept range of a window (struct fc_inc): a window spans at
 * most FC_RANGE_BLOCKS - 2 of them. */
#define FC_RANGE_BLOCKS 32

/* ---- configuration ------------------------------------------------------------ */

void forecast_config_defaults(struct forecast_config *c)
{
	memset(c, 0, sizeof(*c));
	c->enabled = true;
	c->interval_ms = 60 * 1000;
	c->window_ms = 3600 * 1000;
	c->history_ms = 7 * 86400 * 1000LL;
	c->max_horizon_ms = 30 * 86400 * 1000LL;
	c->horizons_ms[0] = 3600 * 1000;
	c->horizons_ms[1] = 86400 * 1000;
	c->nhorizons = 2;
	c->min_points = 10;
}

static int cfg_fail(const char *file, const struct ynode *n, const char *key, char *err,
		    size_t errsize, const char *msg)
{
	snprintf(err, errsize, "%s:%d:%d: forecast.%s: %s", file, n->line, n->col, key, msg);
	return -EINVAL;
}

static int cfg_duration(const char *file, const struct ynode *n, int64_t min_ms, int64_t *out,
			char *err, size_t errsize)
{
	int64_t v;
	if (n->type != YNODE_SCALAR || parse_duration_ms(n->scalar, &v) < 0 || v < min_ms) {
		char msg[96];
		snprintf(msg, sizeof(msg), "expected a duration of at least %lldms, such as 1h",
			 (long long)min_ms);
		return cfg_fail(file, n, n->key, err, errsize, msg);
	}
	*out = v;
	return 0;
}

int forecast_config_load(struct forecast_config *c, const struct ynode *map, const char *file,
			 char *err, size_t errsize)
{
	if (map->type != YNODE_MAP) {
		snprintf(err, errsize, "%s:%d:%d: forecast: expected a mapping", file, map->line,
			 map->col);
		return -EINVAL;
	}
	for (const struct ynode *n = map->child; n; n = n->next) {
		int rc = 0;
		const char *k = n->key;
		if (!strcmp(k, "enabled")) {
			if (n->type != YNODE_SCALAR ||
			    (strcmp(n->scalar, "true") && strcmp(n->scalar, "false")))
				return cfg_fail(file, n, k, err, errsize, "expected true or false");
			c->enabled = !strcmp(n->scalar, "true");
		} else if (!strcmp(k, "interval")) {
			rc = cfg_duration(file, n, 1000, &c->interval_ms, err, errsize);
		} else if (!strcmp(k, "window")) {
			rc = cfg_duration(file, n, 10000, &c->window_ms, err, errsize);
		} else if (!strcmp(k, "history")) {
			rc = cfg_duration(file, n, 0, &c->history_ms, err, errsize);
		} else if (!strcmp(k, "max_horizon")) {
			rc = cfg_duration(file, n, 60000, &c->max_horizon_ms, err, errsize);
		} else if (!strcmp(k, "min_points")) {
			char *end;
			long v = n->type == YNODE_SCALAR ? strtol(n->scalar, &end, 10) : 0;
			if (n->type != YNODE_SCALAR || *end || v < 3 || v > 100000)
				return cfg_fail(file, n, k, err, errsize,
						"expected a whole number from 3 to 100000");
			c->min_points = (size_t)v;
		} else if (!strcmp(k, "horizons")) {
			if (n->type != YNODE_SEQ || n->count == 0 || n->count > FORECAST_MAX_HORIZONS)
				return cfg_fail(file, n, k, err, errsize,
						"expected a list of 1 to 8 durations, such as [1h, 24h]");
			size_t i = 0;
			for (const struct ynode *h = n->child; h; h = h->next) {
				int64_t v;
				if (h->type != YNODE_SCALAR || parse_duration_ms(h->scalar, &v) < 0 ||
				    v < 1000)
					return cfg_fail(file, h, k, err, errsize,
							"expected a duration such as 1h");
				c->horizons_ms[i++] = v;
			}
			c->nhorizons = i;
		} else {
			return cfg_fail(file, n, k, err, errsize, "unknown key in forecast");
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- the table ------------------------------------------------------------------- */

enum fc_res {
	RES_MEMORY, RES_PIDS, RES_FS, RES_VOLUME, RES_WRITABLE, RES_CPU, RES_HOST_MEMORY,
	RES_HOST_FS, RES__COUNT
};

/* One resource: where its usage and limit come from. */
struct resource {
	const char *name;                /* the resource label */
	const char *unit;                /* for the API and CLI */
	const char *usage, *limit;       /* families */
	const char *usage_match;         /* extra matcher on usage: name=value, or NULL */
	const char *limit2;              /* cpu: the period the quota divides by; volume:
					  * the filesystem's use by all (others_use) */
	bool counter;                    /* usage is a counter: forecast its rate */
	bool machine;                    /* the host's, not a container's */
	bool by_mountpoint;
	bool others_use;                 /* the limit is what limit2's other users leave */
	bool staircase;                  /* usage moves in steps (a walk a minute): growth */
	const char *no_limit;            /* the reason when there is no limit */
};
static const struct resource resources[RES__COUNT] = {
	[RES_MEMORY] = { "memory", "bytes", "container_memory_working_set_bytes",
			 "container_spec_memory_limit_bytes", NULL, NULL, false, false, false,
			 false, false, "no_limit" },
	[RES_PIDS] = { "pids", "tasks", "container_pids", "container_spec_pids_limit", NULL, NULL,
		       false, false, false, false, true, "no_limit" },
	[RES_FS] = { "fs", "bytes", "container_fs_backing_usage_bytes", "container_fs_limit_bytes",
		     NULL, NULL, false, false, true, false, false, "no_limit" },
	/* a volume's (or tmpfs') own bytes against the room its filesystem has
	 * for it: the capacity less what everything else there holds */
	[RES_VOLUME] = { "volume", "bytes", "container_fs_usage_bytes", "container_fs_limit_bytes",
			 NULL, "container_fs_backing_usage_bytes", false, false, true, true, true,
			 "no_limit" },
	/* the writable layer's bytes against its quota (--storage-opt size) */
	[RES_WRITABLE] = { "writable", "bytes", "container_fs_usage_bytes",
			   "container_fs_quota_bytes", "mountpoint=/", NULL, false, false, true,
			   false, true, "no_quota" },
	[RES_CPU] = { "cpu", "cores", "container_cpu_usage_seconds_total", "container_spec_cpu_quota",
		      "cpu=total", "container_spec_cpu_period", true, false, false, false, false,
		      "no_limit" },
	[RES_HOST_MEMORY] = { "memory", "bytes", "machine_memory_available_bytes",
			      "machine_memory_bytes", NULL, NULL, false, true, false, false, false,
			      "no_limit" },
	[RES_HOST_FS] = { "fs", "bytes", "machine_fs_usage_bytes", "machine_fs_limit_bytes", NULL,
			  NULL, false, true, true, false, false, "no_limit" },
};

struct fc_entry {
	const char *labels;              /* base labels as exposition text ("" for the host) */
	const char *id;                  /* the id label; NULL for the host */
	const char *mountpoint;          /* fs; NULL otherwise */
	enum fc_res res;
	/* what the table keeps of the fit (the fit itself, a kilobyte with its
	 * season, is the refresh's: 7,000 of them were most of a new table's
	 * pages each refresh) */
	enum fc_model model;             /* NONE: see reason */
	double trend;                    /* per second */
	size_t npoints;
	int64_t segment_start_ms;
	double err_linear, err_hw;       /* backtest errors; NAN when not tried */
	const char *reason;
	double now, limit;               /* NAN when unknown */
	double eta, early, late;
	double y[FORECAST_MAX_HORIZONS], lo[FORECAST_MAX_HORIZONS], hi[FORECAST_MAX_HORIZONS];
};

/* One sample as the tick emits it (rendered once per refresh). */
struct fc_sample {
	uint32_t family;                 /* enum metric_id */
	const char *extra;               /* in the table's arena */
	double value;
};

struct fc_table {
	int refs;                        /* under forecaster.lock */
	int64_t time_ms;
	double refresh_seconds;
	size_t n, cap;
	struct fc_entry *e;
	struct fc_sample *samples;       /* what forecast_emit copies */
	size_t nsamples, samples_cap, with;
	struct arena arena;
};

struct smap;
struct forecaster;
static int render_samples(const struct forecaster *f, struct fc_table *t);

struct forecaster {
	struct store *st;
	struct forecast_config cfg;
	struct fc_params params;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop, threaded;
	pthread_t thread;
	struct fc_table *current;        /* under lock */
	/* the newest tick in the store (forecast_data), under lock: its time,
	 * the step between ticks, and when it came (monotonic ms) */
	int64_t data_ms, data_step_ms, data_arrival_ms;
	uint64_t refreshes;              /* atomic */
	struct log_limit ll;
	struct smap *slow;               /* limits and start times (refresh thread) */
	/* the families' selections, kept between refreshes (keyed_get):
	 * usage, limit, limit2 of each resource (sel[3 * res + k]), then the
	 * start times (sel[3 * RES__COUNT]) */
	struct keyed *sel;
	/* a refresh's read buffers (struct refresh's raw, hist, lim, lim2,
	 * aux, rate_t), kept for the next: not allocated and faulted in anew
	 * each refresh */
	struct pts *scratch;             /* FC_NSCRATCH */
};
#define FC_NSCRATCH 6
#define FC_NSEL (3 * RES__COUNT + 1)

static void table_unref(struct forecaster *f, struct fc_table *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&f->lock);
	int left = --t->refs;
	pthread_mutex_unlock(&f->lock);
	if (left)
		return;
	free(t->e);
	free(t->samples);
	arena_free(&t->arena);
	free(t);
}

static struct fc_table *table_ref(struct forecaster *f)
{
	pthread_mutex_lock(&f->lock);
	struct fc_table *t = f->current;
	if (t)
		t->refs++;
	pthread_mutex_unlock(&f->lock);
	return t;
}

static struct fc_entry *table_add(struct fc_table *t)
{
	if (t->n == t->cap) {
		if (t->cap >= FC_MAX_ENTRIES)
			return NULL;
		size_t cap = t->cap ? t->cap * 2 : 256;
		struct fc_entry *e = realloc(t->e, cap * sizeof(*e));
		if (!e)
			return NULL;
		t->e = e;
		t->cap = cap;
	}
	struct fc_entry *e = &t->e[t->n++];
	memset(e, 0, sizeof(*e));
	e->now = e->limit = NAN;
	e->eta = e->early = e->late = INFINITY;
	return e;
}

/* ---- reading the store ----------------------------------------------------------------- */

/* Points of one read; grown as needed up to FC_MAX_RAW_POINTS. */
struct pts {
	int64_t *t;
	double *v;
	size_t n, cap;
};

static void pts_fini(struct pts *p)
{
	free(p->t);
	free(p->v);
	memset(p, 0, sizeof(*p));
}

static int pts_grow(struct pts *p, size_t want)
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
static int read_series(struct store *st, uint32_t id, enum store_tier tier, bool last,
		       int64_t mint, int64_t maxt, struct pts *p)
{
	p->n = 0;
	struct store_iter *it;
	int rc = store_iter_open(st, id, tier, mint, maxt, &it);
	if (rc < 0)
		return rc;
	for (;;) {
		if ((rc = pts_grow(p, p->n + 512)) < 0)
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
static int64_t drop_stale(struct pts *p, bool *ends_stale)
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
static int64_t last_change(const struct pts *p, bool reset_only)
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

static void cut_at(struct pts *p, int64_t t)
{
	if (t == INT64_MIN || !p->n)
		return;
	size_t k = fc_cut(p->t, p->n, t);
	memmove(p->t, p->t + k, (p->n - k) * sizeof(*p->t));
	memmove(p->v, p->v + k, (p->n - k) * sizeof(*p->v));
	p->n -= k;
}

/* A label value as the exposition format escapes it. */
static void put_escaped(struct buf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			buf_putc(b, '\\');
		if (*v == '\n')
			buf_puts(b, "\\n");
		else
			buf_putc(b, *v);
	}
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
		buf_puts(text, "=\"");
		put_escaped(text, l->value);
		buf_putc(text, '"');
	}
}

/* One family's series selected by name (and one equality matcher), sorted
 * by their keys (base or full) for lookups. */
struct keyed_ent {
	const char *key;
	const struct store_series_info *si;
};
/* A usage series' keys and texts, worked out once per selection. */
struct keyed_txt {
	const char *full, *base, *text; /* as series_key gives them */
	const char *mp, *id;            /* the mountpoint and id labels, or NULL */
	/* its limit, limit2 and start time series (pair_txt), found in the
	 * selections made at these times: found again only when one is new */
	const struct store_series_info *lim, *lim2, *start;
	uint64_t lim_gen, lim2_gen, start_gen;
};
struct keyed {
	struct store_series_set set;
	struct keyed_ent *ent;
	size_t n;
	struct keyed_txt *txt;           /* by set index, when asked for */
	int64_t made_at;                 /* the refresh that selected it */
	uint64_t gen;                    /* unique to this selection (keyed_gens) */
	uint64_t epoch;                  /* store_series_epoch then */
	bool valid;
	struct arena arena;
};

static int cmp_keyed(const void *a, const void *b)
{
	const struct keyed_ent *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	if (c)
		return c;
	return x->si->max_t < y->si->max_t ? -1 : x->si->max_t > y->si->max_t;
}

/* Works out every series' keys and texts into k->txt. */
static int keyed_texts(struct keyed *k)
{
	k->txt = calloc(k->set.n + 1, sizeof(*k->txt));
	if (!k->txt)
		return -ENOMEM;
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
		x->full = arena_strdup(&k->arena, full.len ? full.data : "");
		x->base = arena_strdup(&k->arena, base.len ? base.data : "");
		x->text = arena_strdup(&k->arena, text.len ? text.data : "");
		if (!x->full || !x->base || !x->text)
			rc = -ENOMEM;
		for (size_t j = 0; j < si->nlabels; j++)
			if (!strcmp(si->labels[j].name, "id"))
				x->id = si->labels[j].value;
	}
	buf_fini(&full);
	buf_fini(&base);
	buf_fini(&text);
	return rc;
}

/* Numbers selections (struct keyed's gen) so that what was paired with one
 * is known to be from it; 0 is none. Shared by all forecasters: ids only. */
static uint64_t keyed_gens;

static int keyed_select(struct store *st, const char *family, const char *match, int64_t mint,
			int64_t maxt, bool full, struct keyed *k)
{
	memset(k, 0, sizeof(*k));
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
	rc = store_select(st, m, nm, mint, maxt, &k->set);
	for (size_t i = 0; i < nm; i++)
		store_matcher_fini(&m[i]);
	if (rc < 0)
		return rc;
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
	return 0;
}

static void keyed_free(struct keyed *k)
{
	free(k->ent);
	free(k->txt);
	arena_free(&k->arena);
	store_series_set_free(&k->set);
	memset(k, 0, sizeof(*k));
}

/*
 * A family's selection as of this refresh: the one kept from an earlier
 * refresh while no series was made or dropped since (store_series_epoch)
 * and it is younger than FC_SELECT_EVERY_MS (so that series of containers
 * gone quiet leave it), else selected again. Its min_t/max_t are then as
 * of when it was selected: fresh (made_at == now) says whether they are
 * current.
 */
static int keyed_get(struct store *st, struct keyed *k, const char *family, const char *match,
		     int64_t mint, int64_t now, uint64_t epoch, bool full, bool texts)
{
	if (k->valid && k->epoch == epoch && now >= k->made_at &&
	    now - k->made_at < FC_SELECT_EVERY_MS)
		return 0;
	keyed_free(k);
	int rc = keyed_select(st, family, match, mint, now, full, k);
	if (rc == 0 && texts)
		rc = keyed_texts(k);
	if (rc < 0) {
		keyed_free(k);
		return rc;
	}
	k->made_at = now;
	k->gen = __atomic_add_fetch(&keyed_gens, 1, __ATOMIC_RELAXED);
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
static void pair_txt(struct keyed_txt *x, const struct keyed *lim, const struct keyed *lim2,
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

/* ---- what the forecaster remembers of slow series ----------------------------------------- */

/*
 * Limits and start times change rarely: the forecaster keeps each one's
 * newest value and the time it last changed, and reads only what came since
 * the last refresh. An open-addressing map by series id; refresh thread only.
 */
struct sstate {
	uint32_t id;
	bool used, stale;
	int64_t last_t, change_t;
	double last_v;
	/* usage series: when the long history was last fitted, and that fit
	 * when it needed the history (holt_winters, peaks); owned */
	int64_t long_at, long_due;
	struct fc_fit *long_fit;
	struct fc_inc *inc;            /* the linear fit's running sums; owned */
};

/*
 * A usage series whose last full fit was linear: the window's sums and what
 * the next refresh needs to add the points that arrived since (newer than
 * last_t) and remove those that left the window (from from_t up to its new
 * start), so that it reads a minute of points instead of the window. Any
 * doubt (a stale marker, a new break, a jump, too few points, time for a
 * full fit) drops it and the series is read and fitted whole again.
 *
 * The points are also summed by cells of time, (k cell_ms, (k+1) cell_ms]:
 * a cell older than the window's start leaves the sums in one step. Refreshes
 * are made at multiples of the interval (the thread's slots), and cell_ms
 * divides both the interval and the window, so every window starts on a
 * cell's edge and nothing old is read again; a refresh at another time (a
 * test, an odd interval) reads back only the part of the one cell that
 * straddles the window's start.
 */
struct fc_inc {
	struct fc_window w;
	int64_t from_t;                /* points at or after it (up to last_t) are in w */
	int64_t first_t, last_t;       /* the oldest and newest point in w */
	double last_v;
	int64_t chg;                   /* the newest break known at the full fit */
	int64_t seg_start;             /* the full fit's segment_start_ms */
	int64_t full_at;               /* when the next full fit is due */
	double limit;                  /* at the full fit (host memory is limit - available) */
	double scale;                  /* step detector: fc_diff_scale of the last full fit */
	/* The window's range for the step detector (a tenth of it is the least
	 * jump), as the lowest and highest value of each block of blk_ms: the
	 * blocks that overlap the window give its range, off by at most one
	 * block of samples that already left it. */
	int64_t blk_ms;
	int64_t blk[FC_RANGE_BLOCKS];  /* block number (t / blk_ms), or -1 */
	int64_t blk_t0, blk_t1;        /* the newest block's times, [t0, t1) ... */
	size_t blk_k;                  /* ... and its slot: no division a point */
	double blo[FC_RANGE_BLOCKS], bhi[FC_RANGE_BLOCKS];
	int64_t cell_ms;               /* the cells (not for a counter) ... */
	int64_t cell_lo, cell_hi;      /* ... from cell_lo to cell_hi hold the points; all
					* but the newest (cell_hi, still filling) are in w */
	size_t ncells;
	struct fc_wcell *cells;        /* ring: cell k at k % ncells; owned */
	struct fc_wcell *hi_cell;      /* cell_hi's (no division a point) */
	/* A counter (CPU): w holds its rate points, made here from the
	 * samples as they arrive (acc), and ahead holds every one of them
	 * still in the window (a minute's point each: an hour is 60), from
	 * ahead_i on, so nothing old is read again; last_t/last_v are the
	 * newest point. */
	struct pts ahead;
	size_t ahead_i;
	bool rate;
	struct fc_rate_acc acc;
	struct store_cursor *cur;      /* where the last read of new samples ended */
};

static void range_add(struct fc_inc *in, int64_t t, double v)
{
	size_t k = in->blk_k;
	if (t < in->blk_t0 || t >= in->blk_t1) {
		int64_t b = t / in->blk_ms;
		k = (size_t)(b % FC_RANGE_BLOCKS);
		in->blk_k = k;
		in->blk_t0 = b * in->blk_ms;
		in->blk_t1 = in->blk_t0 + in->blk_ms;
		if (in->blk[k] != b) {
			in->blk[k] = b;
			in->blo[k] = in->bhi[k] = v;
			return;
		}
	}
	/* (compares, not fmin/fmax: a call each, for every new point; v is
	 * never NaN here, stale markers are dropped before) */
	if (v < in->blo[k])
		in->blo[k] = v;
	if (v > in->bhi[k])
		in->bhi[k] = v;
}

/* The range of the blocks that overlap [start, ...). */
static void range_of(const struct fc_inc *in, int64_t start, double *lo, double *hi)
{
	*lo = INFINITY;
	*hi = -INFINITY;
	for (size_t k = 0; k < FC_RANGE_BLOCKS; k++) {
		if (in->blk[k] < 0 || (in->blk[k] + 1) * in->blk_ms <= start)
			continue;
		*lo = fmin(*lo, in->blo[k]);
		*hi = fmax(*hi, in->bhi[k]);
	}
}

static void inc_free(struct fc_inc *in)
{
	if (in) {
		pts_fini(&in->ahead);
		free(in->cells);
		store_cursor_free(in->cur);
	}
	free(in);
}

/* The cell of time t: (k cell_ms, (k+1) cell_ms] (times are after 1970). */
static int64_t cell_of(int64_t t, int64_t cell_ms)
{
	return (t - 1) / cell_ms;
}

/* The cell size for a window refreshed every interval: one that divides
 * both (so that windows start on cells' edges) when the window has at most
 * FC_MAX_CELLS of them, else a sixtieth of the window (the straddling
 * cell's points are then read back each refresh). */
static int64_t cell_size(int64_t interval_ms, int64_t window_ms)
{
	int64_t a = interval_ms, b = window_ms;
	while (b) {
		int64_t r = a % b;
		a = b;
		b = r;
	}
	if (a > 0 && a <= FC_CELL_MAX_MS && window_ms / a <= FC_MAX_CELLS)
		return a;
	a = (window_ms + 59) / 60;
	return a > FC_CELL_MAX_MS ? FC_CELL_MAX_MS : a;
}

static struct fc_wcell *cell_at(const struct fc_inc *in, int64_t k)
{
	return &in->cells[k % (int64_t)in->ncells];
}

/* Adds t, v to its cell (the newest; one before it goes into the sums
 * whole); false when the cells cannot hold it (more cells than the ring:
 * a refresh long after the last). */
static bool cell_add(struct fc_inc *in, int64_t t, double v)
{
	int64_t cm = in->cell_ms, k = in->cell_hi;
	if (t <= k * cm || t > (k + 1) * cm)    /* not the newest cell's: divide */
		k = cell_of(t, cm);
	if (k > in->cell_hi) {
		if (in->cell_hi >= in->cell_lo)
			fc_window_cell(&in->w, cell_at(in, in->cell_hi), in->cell_hi * in->cell_ms, 1);
		int64_t j = in->cell_hi + 1;
		if (k - j >= (int64_t)in->ncells)
			j = k - (int64_t)in->ncells + 1;
		for (; j <= k; j++)
			memset(&in->cells[j % (int64_t)in->ncells], 0, sizeof(*in->cells));
		in->cell_hi = k;
		in->hi_cell = cell_at(in, k);
	}
	if (k < in->cell_lo || in->cell_hi - in->cell_lo >= (int64_t)in->ncells)
		return false;
	fc_wcell_step(k == in->cell_hi ? in->hi_cell : cell_at(in, k), &in->w, k * in->cell_ms, t,
		      v, 1);
	return true;
}

/* The window's sums with the newest cell's (not yet in them) into *out. */
static void inc_sums(const struct fc_inc *in, struct fc_window *out)
{
	*out = in->w;
	if (!in->rate && in->cell_hi >= in->cell_lo)
		fc_window_cell(out, cell_at(in, in->cell_hi), in->cell_hi * in->cell_ms, 1);
}

struct smap {
	struct sstate *e;
	size_t cap, n;
};
#define SMAP_MAX (4u << 20)

static struct sstate *smap_get(struct smap *m, uint32_t id)
{
	if (m->n * 2 >= m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 1024;
		if (cap > SMAP_MAX) {    /* series churn: start over rather than grow */
			for (size_t i = 0; i < m->cap; i++) {
				free(m->e[i].long_fit);
				inc_free(m->e[i].inc);
			}
			memset(m->e, 0, m->cap * sizeof(*m->e));
			m->n = 0;
		} else {
			struct sstate *ne = calloc(cap, sizeof(*ne));
			if (!ne)
				return NULL;
			for (size_t i = 0; i < m->cap; i++) {
				if (!m->e[i].used)
					continue;
				size_t j = (m->e[i].id * 2654435761u) & (cap - 1);
				while (ne[j].used)
					j = (j + 1) & (cap - 1);
				ne[j] = m->e[i];
			}
			free(m->e);
			m->e = ne;
			m->cap = cap;
		}
	}
	size_t j = (id * 2654435761u) & (m->cap - 1);
	while (m->e[j].used && m->e[j].id != id)
		j = (j + 1) & (m->cap - 1);
	if (!m->e[j].used) {
		m->e[j] = (struct sstate){ .id = id, .used = true, .change_t = INT64_MIN };
		m->n++;
	}
	return &m->e[j];
}

/* ---- one refresh ----------------------------------------------------------------------- */

struct refresh {
	struct forecaster *f;
	struct fc_table *t;
	int64_t now;
	struct pts raw, hist, lim, lim2, aux, rate_t;
	struct fc_fit fit;               /* the fit of the resource at hand */
	struct keyed *starts;            /* container_start_time_seconds */
	uint64_t epoch;                  /* store_series_epoch at the start */
};

static double trend_per_second(const struct fc_fit *fit);

/* Fills e's numbers from fit (NULL: none) against limit. */
static void finish_entry(struct refresh *r, struct fc_entry *e, const struct fc_fit *fit,
			 double limit)
{
	const struct forecast_config *c = &r->f->cfg;
	e->limit = limit;
	e->model = FC_MODEL_NONE;
	e->err_linear = e->err_hw = NAN;
	if (!(limit > 0)) {
		e->reason = resources[e->res].no_limit;
		return;
	}
	if (!fit || fit->model == FC_MODEL_NONE) {
		e->reason = fit && fit->reason ? fit->reason : "no_data";
		return;
	}
	e->model = fit->model;
	e->trend = trend_per_second(fit);
	e->npoints = fit->npoints;
	e->segment_start_ms = fit->segment_start_ms;
	e->err_linear = fit->err_linear;
	e->err_hw = fit->err_hw;
	fc_exhaustion(fit, limit, c->max_horizon_ms, &e->eta, &e->early, &e->late);
	for (size_t h = 0; h < c->nhorizons; h++)
		fc_predict(fit, (double)c->horizons_ms[h] / 1e3, &e->y[h], &e->lo[h], &e->hi[h]);
}

/* Converts p (a counter) into its rate, in place through r->rate_t. */
static int to_rate(struct refresh *r, struct pts *p, int64_t step_ms)
{
	if (pts_grow(&r->rate_t, p->n + 1) < 0)
		return -ENOMEM;
	size_t n = p->n ? fc_counter_rate(p->t, p->v, p->n, step_ms, r->rate_t.t, r->rate_t.v) : 0;
	if (!n) {
		p->n = 0;
		return 0;
	}
	memcpy(p->t, r->rate_t.t, n * sizeof(*p->t));
	memcpy(p->v, r->rate_t.v, n * sizeof(*p->v));
	p->n = n;
	return 0;
}

/*
 * Latest value of a limit or start-time series and the time it last changed
 * (into *chg), reading only what came after the last refresh's read; NAN
 * when absent or ended (a stale marker: the container is gone).
 */
static double read_limit(struct refresh *r, const struct store_series_info *si, bool fresh,
			 struct pts *p, int64_t mint, int64_t *chg)
{
	*chg = INT64_MIN;
	if (!si)
		return NAN;
	struct sstate *ss = smap_get(r->f->slow, si->id);
	if (!ss)
		return NAN;
	int64_t from = ss->last_t >= mint ? ss->last_t + 1 : mint;
	/* Nothing newer than what was read (the selection's max_t is current):
	 * no read, as for a start time that every resource of the container
	 * asks for. Else when the newest point is the value already known, the
	 * limit did not change (a change and a change back within one
	 * interval is missed: it would only have cut the fit): one look at the
	 * head instead of an iterator; its time is kept as the newest read. */
	if (fresh && si->max_t < from)
		from = INT64_MAX;        /* (a kept selection's max_t is old) */
	int64_t lt;
	double lv;
	if (from <= r->now && ss->last_t && !ss->stale &&
	    store_last_point(r->f->st, si->id, from, r->now, &lt, &lv) == 1 && !store_is_stale(lv) &&
	    lv == ss->last_v) {
		ss->last_t = lt;
		from = INT64_MAX;
	}
	if (from <= r->now) {
		if (read_series(r->f->st, si->id, STORE_TIER_RAW, true, from, r->now, p) < 0)
			return NAN;
		for (size_t i = 0; i < p->n; i++) {
			if (store_is_stale(p->v[i])) {
				ss->stale = true;
				ss->change_t = p->t[i];
				continue;
			}
			if (ss->last_t && (ss->stale || p->v[i] != ss->last_v))
				ss->change_t = p->t[i];
			ss->stale = false;
			ss->last_v = p->v[i];
			ss->last_t = p->t[i];
		}
		if (p->n && p->t[p->n - 1] > ss->last_t)
			ss->last_t = p->t[p->n - 1];
	}
	*chg = ss->change_t;
	return ss->stale || !ss->last_t ? NAN : ss->last_v;
}

/* ---- the linear fit carried as running sums ---------------------------------------------- */

/*
 * When a series' next periodic full read (every `every`) is due: in one of
 * 15 phases chosen by its id, so that a thousand series that began
 * together do not all pay for it in the same refresh. The first period is
 * shortened to reach the series' phase; the following ones are `every`.
 */
static int64_t stagger(int64_t now, uint32_t id, int64_t every)
{
	int64_t u = every / 15, slot = now / u, j = (slot + (int64_t)(id % 15)) % 15;
	return (slot + 15 - j) * u;
}

static void inc_drop(struct sstate *ss)
{
	inc_free(ss->inc);
	ss->inc = NULL;
}

/* Has the store copy the series' samples after `after` (its newest fitted)
 * into the sums' cursor as they are appended (store_cursor_follow), so
 * that the next refreshes take them from there instead of decoding them:
 * started now, it needs no read. Without a cursor, reads decode. */
static void inc_follow(struct refresh *r, struct fc_inc *in, uint32_t id, int64_t after)
{
	int64_t t;
	double v;
	if ((in->cur = store_cursor_new()) && (store_cursor_follow(r->f->st, in->cur, id) < 0 ||
					       store_read_after(r->f->st, id, in->cur, after, after, &t,
								&v, 1) < 0)) {
		store_cursor_free(in->cur);
		in->cur = NULL;
	}
}

/*
 * After a full linear fit: keeps the sums of the points it fitted (those of
 * p, already cut at breaks and in the resource's units, at or after the
 * segment's start and inside the window), so that the next refreshes can
 * move the window instead of reading it. acc: for a counter, where its rate
 * points stand (p holds them, the open window's point last); NULL else.
 */
static void inc_build(struct refresh *r, struct sstate *ss, const struct pts *p,
		      const struct fc_fit *fit, int64_t chg, double limit,
		      const struct fc_rate_acc *acc)
{
	inc_drop(ss);
	int64_t from = r->now - r->f->cfg.window_ms + 1;
	if (fit->segment_start_ms > from)
		from = fit->segment_start_ms;
	size_t a = fc_cut(p->t, p->n, from), end = p->n;
	int64_t pt;
	double pv;
	if (acc && end && fc_rate_acc_partial(acc, &pt, &pv) && p->t[end - 1] == pt)
		end--;                   /* the open window's point is redone each time */
	if (end < a + 3)
		return;
	struct fc_inc *in = calloc(1, sizeof(*in));
	if (!in)
		return;                  /* no sums: the next refresh reads the window */
	fc_window_reset(&in->w, from, p->v[end - 1]);
	in->blk_ms = r->f->cfg.window_ms / (FC_RANGE_BLOCKS - 2) + 1;
	for (size_t k = 0; k < FC_RANGE_BLOCKS; k++)
		in->blk[k] = -1;
	bool ok = true;
	if (acc) {
		/* a counter's rate points are all kept, for their removal */
		in->rate = true;
		in->acc = *acc;
		ok = pts_grow(&in->ahead, end - a + 1) == 0;
		if (ok) {
			memcpy(in->ahead.t, p->t + a, (end - a) * sizeof(*p->t));
			memcpy(in->ahead.v, p->v + a, (end - a) * sizeof(*p->v));
			in->ahead.n = end - a;
		}
		for (size_t i = a; ok && i < end; i++)
			fc_window_add(&in->w, p->t[i], p->v[i]);
	} else {
		in->cell_ms = cell_size(r->f->cfg.interval_ms, r->f->cfg.window_ms);
		in->ncells = (size_t)(r->f->cfg.window_ms / in->cell_ms) + 2;
		in->cells = calloc(in->ncells, sizeof(*in->cells));
		in->cell_lo = cell_of(from, in->cell_ms);
		in->cell_hi = in->cell_lo - 1;
		ok = in->cells != NULL;
		for (size_t i = a; ok && i < end; i++)
			ok = cell_add(in, p->t[i], p->v[i]);
	}
	if (!ok) {
		inc_free(in);
		return;
	}
	for (size_t i = a; i < end; i++)
		range_add(in, p->t[i], p->v[i]);
	in->scale = fc_diff_scale(p->v + a, end - a);
	in->from_t = from;
	in->first_t = p->t[a];
	in->last_t = p->t[end - 1];
	in->last_v = p->v[end - 1];
	in->chg = chg;
	in->seg_start = fit->segment_start_ms;
	in->limit = limit;
	in->full_at = stagger(r->now, ss->id, FC_FULL_EVERY_MS);
	inc_follow(r, in, ss->id, acc ? acc->last_t : in->last_t);
	ss->inc = in;
}

/* The raw samples of a kept series newer than after into r->raw: on from
 * where the last refresh's read ended (store_read_after), so that the
 * head's open chunk is not decoded from its start each minute. */
static int read_new(struct refresh *r, struct fc_inc *in, uint32_t id, int64_t after)
{
	if (!in->cur)
		inc_follow(r, in, id, after);
	if (in->cur && pts_grow(&r->raw, 4096) == 0) {
		ssize_t n = store_read_after(r->f->st, id, in->cur, after, r->now, r->raw.t,
					     r->raw.v, r->raw.cap);
		if (n >= 0) {
			r->raw.n = (size_t)n;
			return 0;
		}
		if (n != -E2BIG)
			return (int)n;
	}
	return read_series(r->f->st, id, STORE_TIER_RAW, true, after + 1, r->now, &r->raw);
}

/* One new point into the sums, unless it jumps (fc_fit's step detector over
 * the window with the scale of the last full fit): false then. lo/hi: the
 * window's range so far. */
static bool inc_add(struct fc_inc *in, int64_t t, double v, bool steps_are_growth, double *lo,
		    double *hi)
{
	if (v < *lo)
		*lo = v;
	if (v > *hi)
		*hi = v;
	range_add(in, t, v);
	double thr = 0.1 * (*hi - *lo);
	if (in->scale > thr)     /* (fmax: a call for every new point) */
		thr = in->scale;
	if (!steps_are_growth && thr > 0 && fabs(v - in->last_v) > thr)
		return false;
	if (in->rate)
		fc_window_add(&in->w, t, v);
	else if (!cell_add(in, t, v))
		return false;
	in->last_t = t;
	in->last_v = v;
	return true;
}

/*
 * inc_add over new raw points t/v (n, oldest first; the usage is limit - v
 * when usage_of_limit): the same sums in the same order as point by point,
 * but the points after the first of each cell go into a copy of that cell
 * held in locals with the window's range and the last value (300,000
 * points a refresh at 1 s for 1,000 containers). False as inc_add, or on a
 * stale marker.
 */
static bool inc_add_run(struct fc_inc *in, const int64_t *t, const double *v, size_t n,
			bool usage_of_limit, bool steps_are_growth, double *lo, double *hi)
{
	const double lim = in->limit, scale = in->scale, y0 = in->w.y0;
	double l = *lo, h = *hi;
	size_t i = 0;
	while (i < n) {
		/* the first point of a cell the general way: it may open the cell */
		if (store_is_stale(v[i]) ||
		    !inc_add(in, t[i], usage_of_limit ? lim - v[i] : v[i], steps_are_growth, &l, &h))
			return false;
		int64_t start = in->cell_hi * in->cell_ms, end = start + in->cell_ms;
		struct fc_wcell c = *in->hi_cell;
		double last = in->last_v;
		for (i++; i < n && t[i] <= end; i++) {
			double y = usage_of_limit ? lim - v[i] : v[i];
			if (store_is_stale(v[i]))
				return false;
			if (y < l)
				l = y;
			if (y > h)
				h = y;
			range_add(in, t[i], y);
			double thr = 0.1 * (h - l);
			if (scale > thr)
				thr = scale;
			if (!steps_are_growth && thr > 0 && fabs(y - last) > thr)
				return false;
			/* fc_wcell_step(&c, &in->w, start, t[i], y, 1), in registers */
			int64_t x = t[i] - start;
			double dy = y - y0;
			c.n++;
			c.sx += x;
			c.sxx += x * x;
			c.sy += dy;
			c.sxy += (double)x * dy;
			c.syy += dy * dy;
			last = y;
		}
		*in->hi_cell = c;
		in->last_t = t[i - 1];
		in->last_v = last;
	}
	*lo = l;
	*hi = h;
	return true;
}

/* A counter's samples since the last refresh, as rate points into the sums
 * (kept in ahead for their removal). False on a stale marker, a reset, a
 * jump or a read error: the series is read and fitted whole. */
static bool inc_add_rate(struct refresh *r, struct fc_inc *in, uint32_t id, double *lo,
			 double *hi)
{
	if (read_new(r, in, id, in->acc.last_t) < 0)
		return false;
	for (size_t i = 0; i < r->raw.n; i++) {
		double v = r->raw.v[i];
		if (store_is_stale(v) || v < in->acc.last_v)
			return false;    /* stopped, or reset: the full fit cuts there */
		int64_t pt;
		double pv;
		if (!fc_rate_acc_push(&in->acc, r->raw.t[i], v, &pt, &pv))
			continue;
		if (pts_grow(&in->ahead, in->ahead.n + 1) < 0 || !inc_add(in, pt, pv, false, lo, hi))
			return false;
		in->ahead.t[in->ahead.n] = pt;
		in->ahead.v[in->ahead.n++] = pv;
	}
	return true;
}

/* The points that left the window (before start) out of the sums: a
 * counter's rate points from those kept; else whole cells at once, and the
 * points of a cell that straddles start (a refresh off the cells' edges)
 * read back from the store. False on a read error. */
static bool inc_remove_old(struct refresh *r, struct fc_inc *in, uint32_t id, bool usage_of_limit,
			   int64_t start)
{
	if (in->rate) {
		struct pts *ah = &in->ahead;
		size_t i = in->ahead_i;
		for (; i < ah->n && ah->t[i] < start; i++)
			fc_window_remove(&in->w, ah->t[i], ah->v[i]);
		in->ahead_i = i;
		in->first_t = i < ah->n ? ah->t[i] : INT64_MAX;
		in->from_t = start;
		if (i > 64 && 2 * i > ah->n) {
			/* the kept rate points: drop those gone, now and then */
			memmove(ah->t, ah->t + i, (ah->n - i) * sizeof(*ah->t));
			memmove(ah->v, ah->v + i, (ah->n - i) * sizeof(*ah->v));
			ah->n -= i;
			in->ahead_i = 0;
		}
		return true;
	}
	int64_t cm = in->cell_ms;
	for (; in->cell_lo <= in->cell_hi; in->cell_lo++) {
		int64_t lo = in->cell_lo * cm;                  /* the cell is (lo, lo + cm] */
		struct fc_wcell *c = cell_at(in, in->cell_lo);
		bool in_w = in->cell_lo < in->cell_hi;          /* the newest is not yet */
		if (lo + cm < start) {
			if (in_w)
				fc_window_cell(&in->w, c, lo, -1);
			memset(c, 0, sizeof(*c));
			continue;
		}
		if (lo + 1 < start && c->n) {
			int64_t from = in->from_t > lo + 1 ? in->from_t : lo + 1;
			if (read_series(r->f->st, id, STORE_TIER_RAW, true, from, start - 1,
					&r->aux) < 0)
				return false;
			for (size_t k = 0; k < r->aux.n; k++) {
				double v = r->aux.v[k];
				if (store_is_stale(v))
					continue;
				if (usage_of_limit)
					v = in->limit - v;
				if (in_w)
					fc_window_remove(&in->w, r->aux.t[k], v);
				fc_wcell_step(c, &in->w, lo, r->aux.t[k], v, -1);
			}
		}
		break;
	}
	/* the oldest point is at start or later: a bound for the span check */
	if (in->first_t < start)
		in->first_t = start;
	in->from_t = start;
	return true;
}

/*
 * Moves a series' sums to r->now: adds the points newer than the last
 * refresh's, removes those that left the window, and fits the line from
 * the sums into *fit. Returns true when done; false when the series must be
 * read and fitted whole (the sums are dropped then): a stale marker or a
 * jump among the new points (the full fit finds and cuts it as it always
 * did), a counter reset, too few points left, or a read error.
 * usage_of_limit: host memory, whose usage is the limit minus the series.
 */
static bool inc_advance(struct refresh *r, struct sstate *ss, uint32_t id, bool usage_of_limit,
			bool steps_are_growth, struct fc_fit *fit)
{
	struct fc_inc *in = ss->inc;
	const struct fc_params *p = &r->f->params;
	double lo, hi;
	int64_t start = r->now - r->f->cfg.window_ms + 1;   /* the window: (now - window, now] */
	range_of(in, start, &lo, &hi);
	/* the old out first: the cells then hold at most the window */
	if (start > in->from_t && !inc_remove_old(r, in, id, usage_of_limit, start))
		goto full;
	if (in->rate) {
		if (!inc_add_rate(r, in, id, &lo, &hi))
			goto full;
	} else {
		if (read_new(r, in, id, in->last_t) < 0 ||
		    !inc_add_run(in, r->raw.t, r->raw.v, r->raw.n, usage_of_limit, steps_are_growth,
				 &lo, &hi))
			goto full;
	}
	/* a counter's open window is a point of the fit too, as in the full fit */
	struct fc_window w;
	inc_sums(in, &w);
	int64_t last_t = in->last_t, first_t = in->first_t;
	double last_v = in->last_v;
	if (in->rate && fc_rate_acc_partial(&in->acc, &last_t, &last_v)) {
		fc_window_add(&w, last_t, last_v);
		if (first_t == INT64_MAX)
			first_t = last_t;
	}
	if ((size_t)w.n < p->min_points || w.n < 3 || first_t > last_t ||
	    last_t - first_t < p->min_span_ms)
		goto full;
	memset(fit, 0, sizeof(*fit));
	fit->err_linear = fit->err_hw = NAN;
	if (!fc_window_fit(&w, r->now, fit))
		goto full;
	fit->model = FC_MODEL_LINEAR;
	fit->t_now = r->now;
	fit->segment_start_ms = in->seg_start;
	fit->last = last_v;
	fit->npoints = (size_t)w.n;
	return true;
full:
	inc_drop(ss);
	return false;
}

/*
 * A series with kept sums whose history fit is due: reads only the 1 m
 * roll-ups over forecast.history and fits them as fc_fit would with them
 * (its model choice and step finding look at the history when there is
 * one; the raw window only feeds the line, which the sums give). True when
 * that fit is still the line with no break inside the window: the sums go
 * on and the history is next due in FC_HISTORY_LINE_EVERY_MS. False when
 * Holt-Winters or a sawtooth now wins, a break is found, or anything fails:
 * the caller reads and fits the series whole.
 */
static bool inc_history_keeps(struct refresh *r, struct sstate *ss, uint32_t id, enum fc_res res,
			      double limit, int64_t chg, int64_t hist_from)
{
	bool counter = resources[res].counter;
	if (read_series(r->f->st, id, STORE_TIER_1M, counter, hist_from, r->now, &r->hist) < 0)
		return false;
	bool stale;
	int64_t hc = drop_stale(&r->hist, &stale);
	if (hc > chg)
		chg = hc;
	cut_at(&r->hist, chg);
	if (counter && to_rate(r, &r->hist, 60000) < 0)
		return false;
	if (res == RES_HOST_MEMORY)
		for (size_t k = 0; k < r->hist.n; k++)
			r->hist.v[k] = limit - r->hist.v[k];
	struct fc_input in = { r->hist.t, r->hist.v, r->hist.n, r->hist.t, r->hist.v, r->hist.n,
			       r->now, resources[res].staircase };
	struct fc_fit *hf = malloc(sizeof(*hf));
	if (!hf)
		return false;
	bool keep = !stale && chg <= ss->inc->chg && fc_fit(&r->f->params, &in, hf) == 0 &&
		    hf->model == FC_MODEL_LINEAR && hf->segment_start_ms <= ss->inc->from_t;
	free(hf);
	if (keep) {
		ss->long_at = r->now;
		ss->long_due = stagger(r->now, id, FC_HISTORY_LINE_EVERY_MS);
		free(ss->long_fit);
		ss->long_fit = NULL;
	}
	return keep;
}

/* What a resource may grow to: its limit, or for a volume the capacity less
 * what the others on its filesystem hold (the filesystem's use less the
 * volume's own bytes, now). */
static double room(const struct resource *rd, double limit, double others, double now)
{
	if (!rd->others_use || !(limit > 0))
		return limit;
	double rest = isfinite(now) && others > now ? others - now : 0;
	return limit - rest;
}

/* A new entry of the table for a usage series, its texts copied into the
 * table (which outlives the forecaster's selections); NULL on ENOMEM. */
static struct fc_entry *entry_add(struct refresh *r, enum fc_res res, const struct keyed_txt *tx)
{
	struct fc_entry *e = table_add(r->t);
	if (!e)
		return NULL;
	e->res = res;
	e->labels = arena_strdup(&r->t->arena, tx->text);
	e->mountpoint = tx->mp ? arena_strdup(&r->t->arena, tx->mp) : NULL;
	e->id = tx->id ? arena_strdup(&r->t->arena, tx->id) : NULL;
	return e;
}

static int forecast_family(struct refresh *r, enum fc_res res)
{
	const struct resource *rd = &resources[res];
	struct forecaster *f = r->f;
	const struct forecast_config *c = &f->cfg;
	int64_t hist_from = r->now - (c->history_ms > c->window_ms ? c->history_ms : c->window_ms);
	int64_t raw_from = r->now - c->window_ms;
	struct keyed *sel = &f->sel[3 * res], *use = &sel[0], *lim = &sel[1], *lim2 = &sel[2];
	int rc = keyed_get(f->st, use, rd->usage, rd->usage_match, raw_from, r->now, r->epoch, true,
			   true);
	if (rc == 0)
		rc = keyed_get(f->st, lim, rd->limit, NULL, raw_from, r->now, r->epoch, true, false);
	if (rc == 0 && rd->limit2)
		rc = keyed_get(f->st, lim2, rd->limit2, NULL, raw_from, r->now, r->epoch, true,
			       false);
	bool fresh_lim = lim->made_at == r->now, fresh_lim2 = lim2->made_at == r->now;
	bool fresh_starts = r->starts->made_at == r->now;
	for (size_t i = 0; rc == 0 && i < use->set.n; i++) {
		const struct store_series_info *si = &use->set.series[i];
		struct keyed_txt *tx = &use->txt[i];
		if (!rd->machine && !tx->id)
			continue;                /* a container series always has an id */
		if (rd->others_use && (!tx->mp || !strcmp(tx->mp, "/")))
			continue;                /* the writable layer is RES_WRITABLE */
		/* the limit first: without one only the newest values are read */
		int64_t chg, chg2 = INT64_MIN;
		pair_txt(tx, lim, lim2, r->starts);
		double limit = read_limit(r, tx->lim, fresh_lim, &r->lim, raw_from,
					  &chg);
		double others = 0;            /* others_use: the filesystem's use by all, now */
		if (rd->others_use) {
			const struct store_series_info *os = tx->lim2;
			int64_t ot;
			if (!os || store_last_point(f->st, os->id, raw_from, r->now, &ot, &others) != 1 ||
			    !isfinite(others))
				limit = NAN;     /* without it the room is unknown */
		} else if (rd->limit2) {
			double period = read_limit(r, tx->lim2, fresh_lim2, &r->lim2,
						   raw_from, &chg2);
			limit = period > 0 ? limit / period : NAN;
		}
		if (chg2 > chg)
			chg = chg2;
		if (!rd->machine && r->starts->set.n) {
			const struct store_series_info *ss = tx->start;
			int64_t sc;
			if (ss && !isnan(read_limit(r, ss, fresh_starts, &r->aux, raw_from, &sc)) &&
			    sc > chg)
				chg = sc;        /* a restart */
		}

		/* A linear fit kept as sums moves with the window when nothing
		 * broke since and no full fit is due; when its history fit is due,
		 * only the history is read to see whether the line still wins. */
		struct sstate *us = limit > 0 ? smap_get(f->slow, si->id) : NULL;
		struct fc_fit incfit;
		bool inc_ok = false;
		if (us && us->inc) {
			struct fc_inc *in = us->inc;
			bool hist_due = si->min_t < raw_from && c->history_ms > c->window_ms &&
					(!us->long_at || r->now >= us->long_due);
			if (chg > in->chg || in->limit != limit || r->now >= in->full_at ||
			    r->now <= (in->rate ? in->acc.last_t : in->last_t))
				inc_drop(us);
			else
				inc_ok = inc_advance(r, us, si->id, res == RES_HOST_MEMORY,
						     rd->staircase, &incfit);
			if (inc_ok && hist_due) {
				inc_ok = inc_history_keeps(r, us, si->id, res, limit, chg, hist_from);
				if (!inc_ok)
					inc_drop(us);
			}
		}
		if (inc_ok) {
			struct fc_entry *e = entry_add(r, res, tx);
			if (!e) {
				rc = -ENOMEM;
				break;
			}
			e->now = incfit.last;
			finish_entry(r, e, &incfit, room(rd, limit, others, e->now));
			continue;
		}

		int64_t from = raw_from;
		if (!(limit > 0) && r->now - FC_TAIL_MS > from)
			from = r->now - FC_TAIL_MS;
		if (!(limit > 0) && !rd->counter) {
			/* nothing to fit: the newest value is all the table shows */
			int64_t lt;
			double lv;
			if (store_last_point(f->st, si->id, from, r->now, &lt, &lv) != 1 ||
			    store_is_stale(lv))
				continue;        /* the container is gone */
			struct fc_entry *e = entry_add(r, res, tx);
			if (!e) {
				rc = -ENOMEM;
				break;
			}
			e->now = res == RES_HOST_MEMORY ? limit - lv : lv;
			finish_entry(r, e, NULL, limit);
			continue;
		}
		if (read_series(f->st, si->id, STORE_TIER_RAW, true, from, r->now, &r->raw) < 0)
			continue;
		bool stale;
		int64_t cut = drop_stale(&r->raw, &stale);
		if (stale || !r->raw.n || r->raw.t[r->raw.n - 1] < from)
			continue;                /* the container is gone */
		struct fc_entry *e = entry_add(r, res, tx);
		if (!e) {
			rc = -ENOMEM;
			break;
		}

		if (cut > chg)
			chg = cut;
		if (rd->counter) {
			int64_t rs = last_change(&r->raw, true);
			if (rs > chg)
				chg = rs;
		}

		/* long history only for series older than the window, and only
		 * every FC_HISTORY_EVERY_MS or after a break */
		r->hist.n = 0;
		struct sstate *ls = NULL;
		if (limit > 0 && si->min_t < raw_from && c->history_ms > c->window_ms)
			ls = smap_get(f->slow, si->id);
		bool due = ls && (!ls->long_at || r->now >= ls->long_due || chg > ls->long_at);
		if (due && read_series(f->st, si->id, STORE_TIER_1M, rd->counter, hist_from, r->now,
				       &r->hist) == 0) {
			bool hs;
			int64_t hc = drop_stale(&r->hist, &hs);
			if (hc > chg)
				chg = hc;
			cut_at(&r->hist, chg);
		}
		cut_at(&r->raw, chg);
		e->now = r->raw.n ? r->raw.v[r->raw.n - 1] : NAN;
		struct fc_rate_acc acc;
		bool have_acc = false;
		if (rd->counter) {
			int64_t step = c->window_ms / 60 > 1000 ? c->window_ms / 60 : 1000;
			if (r->raw.n) {
				fc_rate_acc_init(&acc, step, r->raw.t, r->raw.v, r->raw.n);
				have_acc = true;
			}
			to_rate(r, &r->raw, step);
			to_rate(r, &r->hist, 60000);
			e->now = r->raw.n ? r->raw.v[r->raw.n - 1] : NAN;
		}
		if (res == RES_HOST_MEMORY) {
			/* used = total - available, at the same ticks */
			for (size_t k = 0; k < r->raw.n; k++)
				r->raw.v[k] = limit - r->raw.v[k];
			for (size_t k = 0; k < r->hist.n; k++)
				r->hist.v[k] = limit - r->hist.v[k];
			e->now = r->raw.n ? r->raw.v[r->raw.n - 1] : NAN;
		}
		if (!(limit > 0)) {
			/* nothing to run out of: no fit at all, only the reason */
			finish_entry(r, e, NULL, room(rd, limit, others, e->now));
			continue;
		}
		struct fc_input in = { r->raw.t, r->raw.v, r->raw.n, r->hist.t, r->hist.v,
				       r->hist.n, r->now, rd->staircase };
		if (!r->hist.n) {
			in.ht = in.t;
			in.hv = in.v;
			in.hn = in.n;
		}
		struct fc_fit *fit = &r->fit;
		if (ls && !due && ls->long_fit) {
			/* carried forward from the last history fit */
			*fit = *ls->long_fit;
			fc_reanchor(fit, r->now, r->raw.n ? r->raw.v[r->raw.n - 1] : fit->last);
			finish_entry(r, e, fit, room(rd, limit, others, e->now));
			continue;
		}
		if (fc_fit(&f->params, &in, fit) < 0) {
			rc = -ENOMEM;
			break;
		}
		/* the next refreshes move this line's sums instead of reading the
		 * window (not when the fit came from the history: that is redone
		 * every FC_HISTORY_EVERY_MS anyway) */
		bool kept = false;
		if (fit->model == FC_MODEL_LINEAR && r->raw.n && (!rd->counter || have_acc)) {
			struct sstate *bs = smap_get(f->slow, si->id);  /* us may have moved */
			if (bs)
				inc_build(r, bs, &r->raw, fit, chg, limit,
					  rd->counter ? &acc : NULL);
			kept = bs && bs->inc;
		}
		if (due) {
			/* a line kept as sums has its history looked at hourly (as
			 * inc_history_keeps does after), a fit that needs it sooner */
			ls->long_at = r->now;
			ls->long_due = stagger(r->now, si->id,
					       kept ? FC_HISTORY_LINE_EVERY_MS : FC_HISTORY_EVERY_MS);
			free(ls->long_fit);
			ls->long_fit = NULL;
			if (fit->model == FC_MODEL_HOLT_WINTERS || fit->model == FC_MODEL_PEAKS) {
				ls->long_fit = malloc(sizeof(*ls->long_fit));
				if (ls->long_fit)
					*ls->long_fit = *fit;
			}
		}
		finish_entry(r, e, fit, room(rd, limit, others, e->now));
	}
	if (rc < 0)
		for (int k = 0; k < 3; k++)
			keyed_free(&sel[k]);     /* select again next time */
	return rc;
}

int forecast_refresh(struct forecaster *f, int64_t now)
{
	int64_t t0 = mono_ns();
	struct fc_table *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->refs = 1;
	t->time_ms = now;
	/* sized as the last table was: no copies while it grows */
	struct fc_table *last = table_ref(f);
	if (last) {
		t->e = malloc((last->n + 64) * sizeof(*t->e));
		t->cap = t->e ? last->n + 64 : 0;
		t->samples = malloc((last->nsamples + 256) * sizeof(*t->samples));
		t->samples_cap = t->samples ? last->nsamples + 256 : 0;
		table_unref(f, last);
	}
	struct refresh r = { .f = f, .t = t, .now = now, .starts = &f->sel[3 * RES__COUNT] };
	r.epoch = store_series_epoch(f->st);
	r.raw = f->scratch[0];
	r.hist = f->scratch[1];
	r.lim = f->scratch[2];
	r.lim2 = f->scratch[3];
	r.aux = f->scratch[4];
	r.rate_t = f->scratch[5];
	int rc = keyed_get(f->st, r.starts, "container_start_time_seconds", NULL,
			   now - f->cfg.window_ms, now, r.epoch, false, false);
	for (int res = 0; rc == 0 && res < RES__COUNT; res++)
		rc = forecast_family(&r, (enum fc_res)res);
	struct pts *keep[] = { &r.raw, &r.hist, &r.lim, &r.lim2, &r.aux, &r.rate_t };
	for (size_t k = 0; k < ARRAY_LEN(keep); k++)
		f->scratch[k] = *keep[k];
	if (rc == 0)
		rc = render_samples(f, t);
	if (rc < 0) {
		log_limited(&f->ll, LOG_WARN, "forecast: refresh failed: %s", strerror(-rc));
		free(t->samples);
		free(t->e);
		arena_free(&t->arena);
		free(t);
		return rc;
	}
	log_recovered(&f->ll, "forecast refresh");
	t->refresh_seconds = (double)(mono_ns() - t0) / 1e9;
	pthread_mutex_lock(&f->lock);
	struct fc_table *old = f->current;
	f->current = t;
	pthread_mutex_unlock(&f->lock);
	table_unref(f, old);
	__atomic_add_fetch(&f->refreshes, 1, __ATOMIC_RELAXED);
	return 0;
}

/* ---- the thread -------------------------------------------------------------------------- */

/*
 * When the thread refreshes, and as of what time. A refresh is made as of a
 * multiple of forecast.interval (a slot), once a tick at or after that slot
 * is in the store (forecast_data): every sample up to the slot is then
 * stored, so the linear fit is exactly predict_linear over the same window
 * at that time. (Refreshing as of the clock's now raced the tick: a tick
 * stamped before now but still being collected was missing from the fit and
 * present in a later predict_linear.) Slot times also make each window start
 * on a boundary of the kept cells (struct fc_inc), so no point leaving the
 * window has to be read again. Without ticks (none for three tick steps and
 * two intervals: tests, a stalled collector) the clock's slot is used.
 * Returns the refresh time, or 0 to wait (*wait_ms, the longest wait).
 */
static int64_t next_refresh(const struct forecaster *f, int64_t last, int64_t now_wall,
			    int64_t now_mono_ms, int64_t *wait_ms)
{
	int64_t iv = f->cfg.interval_ms;
	int64_t slot = last ? last + iv : now_wall / iv * iv;
	if (f->data_ms >= slot)
		return f->data_ms / iv * iv;
	int64_t quiet = 3 * f->data_step_ms > 2 * iv ? 3 * f->data_step_ms : 2 * iv;
	int64_t since = f->data_ms ? now_mono_ms - f->data_arrival_ms : now_wall - slot;
	if (since >= quiet && now_wall >= slot)
		return now_wall / iv * iv;
	*wait_ms = quiet - since > 0 ? quiet - since : 1;
	if (now_wall < slot && slot - now_wall < *wait_ms)
		*wait_ms = slot - now_wall;
	return 0;
}

static void *run(void *arg)
{
	struct forecaster *f = arg;
	int64_t last = 0;
	pthread_mutex_lock(&f->lock);
	while (!f->stop) {
		int64_t wait_ms = 0;
		int64_t at = next_refresh(f, last, now_ms(), mono_ns() / 1000000, &wait_ms);
		if (at) {
			pthread_mutex_unlock(&f->lock);
			forecast_refresh(f, at);
			pthread_mutex_lock(&f->lock);
			last = at;
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t ns = ts.tv_nsec + (wait_ms % 1000) * 1000000;
		ts.tv_sec += wait_ms / 1000 + ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		pthread_cond_timedwait(&f->cond, &f->lock, &ts);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

void forecast_data(struct forecaster *f, int64_t t_ms, int64_t step_ms)
{
	if (!f || t_ms <= 0)
		return;
	pthread_mutex_lock(&f->lock);
	if (t_ms > f->data_ms) {
		f->data_ms = t_ms;
		f->data_step_ms = step_ms;
		f->data_arrival_ms = mono_ns() / 1000000;
		pthread_cond_signal(&f->cond);
	}
	pthread_mutex_unlock(&f->lock);
}

int forecast_new(struct forecaster **out, struct store *st, const struct forecast_config *cfg)
{
	struct forecaster *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->st = st;
	f->cfg = *cfg;
	f->slow = calloc(1, sizeof(*f->slow));
	f->sel = calloc(FC_NSEL, sizeof(*f->sel));
	f->scratch = calloc(FC_NSCRATCH, sizeof(*f->scratch));
	if (!f->slow || !f->sel || !f->scratch) {
		free(f->slow);
		free(f->sel);
		free(f->scratch);
		free(f);
		return -ENOMEM;
	}
	fc_params_defaults(&f->params);
	f->params.window_ms = cfg->window_ms;
	f->params.max_horizon_ms = cfg->max_horizon_ms;
	f->params.min_points = cfg->min_points;
	/* a quarter of the window, at most the model's minute */
	if (f->params.min_span_ms > cfg->window_ms / 4)
		f->params.min_span_ms = cfg->window_ms / 4;
	pthread_mutex_init(&f->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cond, &ca);
	pthread_condattr_destroy(&ca);
	*out = f;
	return 0;
}

int forecast_start(struct forecaster **out, struct store *st, const struct forecast_config *cfg)
{
	*out = NULL;
	if (!cfg->enabled || !st)
		return 0;
	struct forecaster *f;
	int rc = forecast_new(&f, st, cfg);
	if (rc < 0)
		return rc;
	if ((rc = pthread_create(&f->thread, NULL, run, f)) != 0) {
		forecast_stop(f);
		return -rc;
	}
	f->threaded = true;
	*out = f;
	return 0;
}

void forecast_stop(struct forecaster *f)
{
	if (!f)
		return;
	if (f->threaded) {
		pthread_mutex_lock(&f->lock);
		f->stop = true;
		pthread_cond_signal(&f->cond);
		pthread_mutex_unlock(&f->lock);
		pthread_join(f->thread, NULL);
	}
	table_unref(f, f->current);
	for (size_t k = 0; f->scratch && k < FC_NSCRATCH; k++)
		pts_fini(&f->scratch[k]);
	free(f->scratch);
	for (int k = 0; f->sel && k < FC_NSEL; k++)
		keyed_free(&f->sel[k]);
	free(f->sel);
	for (size_t i = 0; f->slow && i < f->slow->cap; i++) {
		free(f->slow->e[i].long_fit);
		inc_free(f->slow->e[i].inc);
	}
	if (f->slow)
		free(f->slow->e);
	free(f->slow);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
	free(f);
}

/* ---- what the tick and the API read ------------------------------------------------------ */

/* Prometheus' duration text for a horizon label: "1h", "90m", "45s". */
static void horizon_text(char *out, size_t size, int64_t ms)
{
	int64_t s = ms / 1000;
	if (s % 86400 == 0)
		snprintf(out, size, "%lldd", (long long)(s / 86400));
	else if (s % 3600 == 0)
		snprintf(out, size, "%lldh", (long long)(s / 3600));
	else if (s % 60 == 0)
		snprintf(out, size, "%lldm", (long long)(s / 60));
	else
		snprintf(out, size, "%llds", (long long)s);
}

static double trend_per_second(const struct fc_fit *fit)
{
	if (fit->model == FC_MODEL_HOLT_WINTERS)
		return fit->trend / ((double)FC_SLOT_MS / 1e3);
	return fit->model == FC_MODEL_NONE ? NAN : fit->slope;
}

/* Adds one sample of the table's rendering; false when out of memory. */
/* extra must be in the table's arena already (add_sample copies it there). */
static bool add_sample_owned(struct fc_table *t, uint32_t family, const char *extra, double v)
{
	if (t->nsamples == t->samples_cap) {
		size_t cap = t->samples_cap ? t->samples_cap * 2 : 1024;
		struct fc_sample *ns = realloc(t->samples, cap * sizeof(*ns));
		if (!ns)
			return false;
		t->samples = ns;
		t->samples_cap = cap;
	}
	t->samples[t->nsamples++] = (struct fc_sample){ family, extra, v };
	return true;
}

static bool add_sample(struct fc_table *t, uint32_t family, const char *extra, double v)
{
	const char *ex = arena_strdup(&t->arena, extra);
	return ex && add_sample_owned(t, family, ex, v);
}

/*
 * Renders the table's samples once, when it is built, so that every tick
 * only copies them: label text of each resource, then one sample per
 * family (and per horizon). Returns 0 or -ENOMEM.
 */
static int render_samples(const struct forecaster *f, struct fc_table *t)
{
	struct buf ex;
	buf_init(&ex, 2 * FC_LABELS_CAP);
	char hz[FORECAST_MAX_HORIZONS][32];
	for (size_t h = 0; h < f->cfg.nhorizons; h++)
		horizon_text(hz[h], sizeof(hz[h]), f->cfg.horizons_ms[h]);
	bool ok = true;
	for (size_t i = 0; i < t->n && ok; i++) {
		const struct fc_entry *e = &t->e[i];
		bool m = resources[e->res].machine;
		buf_reset(&ex);
		buf_puts(&ex, e->labels);
		buf_puts(&ex, *e->labels ? ",resource=\"" : "resource=\"");
		buf_puts(&ex, resources[e->res].name);
		buf_putc(&ex, '"');
		if (e->mountpoint) {
			buf_puts(&ex, ",mountpoint=\"");
			put_escaped(&ex, e->mountpoint);
			buf_putc(&ex, '"');
		}
		if (ex.overflow)
			continue;            /* labels past the cap: left out */
		size_t base = ex.len;
		buf_puts(&ex, ",model=\"");
		buf_puts(&ex, fc_model_name(e->model));
		buf_puts(&ex, "\",reason=\"");
		buf_puts(&ex, e->model == FC_MODEL_NONE ? e->reason : "");
		buf_putc(&ex, '"');
		ok &= add_sample(t, m ? M_MFC_MODEL : M_FC_MODEL, ex.data, 1);
		ex.len = base;
		ex.data[base] = '\0';
		if (e->model == FC_MODEL_NONE)
			continue;
		t->with++;
		/* one copy of the labels for the samples that share them */
		const char *lb = arena_strdup(&t->arena, ex.data);
		ok &= lb != NULL;
		if (!ok)
			break;
		ok &= add_sample_owned(t, m ? M_MFC_EXHAUSTION : M_FC_EXHAUSTION, lb, e->eta);
		ok &= add_sample_owned(t, m ? M_MFC_EXHAUSTION_LOWER : M_FC_EXHAUSTION_LOWER, lb,
				       e->early);
		ok &= add_sample_owned(t, m ? M_MFC_EXHAUSTION_UPPER : M_FC_EXHAUSTION_UPPER, lb,
				       e->late);
		ok &= add_sample_owned(t, m ? M_MFC_LIMIT : M_FC_LIMIT, lb, e->limit);
		ok &= add_sample_owned(t, m ? M_MFC_TREND : M_FC_TREND, lb, e->trend);
		for (size_t h = 0; h < f->cfg.nhorizons && ok; h++) {
			ex.len = base;
			buf_puts(&ex, ",horizon=\"");
			buf_puts(&ex, hz[h]);
			buf_putc(&ex, '"');
			const char *hl = arena_strdup(&t->arena, ex.data);
			ok &= hl != NULL;
			ok = ok && add_sample_owned(t, m ? M_MFC_USAGE : M_FC_USAGE, hl, e->y[h]);
			ok = ok && add_sample_owned(t, m ? M_MFC_USAGE_LOWER : M_FC_USAGE_LOWER, hl,
						    e->lo[h]);
			ok = ok && add_sample_owned(t, m ? M_MFC_USAGE_UPPER : M_FC_USAGE_UPPER, hl,
						    e->hi[h]);
		}
	}
	buf_fini(&ex);
	return ok ? 0 : -ENOMEM;
}

void forecast_emit(struct forecaster *f, struct coll_sink *sink)
{
	if (!f)
		return;
	struct fc_table *t = table_ref(f);
	sink_begin_agent(sink);
	if (t) {
		for (size_t i = 0; i < t->nsamples; i++)
			sink_emit(sink, (enum metric_id)t->samples[i].family, t->samples[i].extra,
				  t->samples[i].value);
		sink_emit(sink, M_AGENT_FORECAST_SECONDS, NULL, t->refresh_seconds);
		sink_emit(sink, M_AGENT_FORECAST_RESOURCES, "state=\"forecast\"", (double)t->with);
		sink_emit(sink, M_AGENT_FORECAST_RESOURCES, "state=\"none\"",
			  (double)(t->n - t->with));
	}
	sink_emit(sink, M_AGENT_FORECAST_REFRESHES, NULL,
		  (double)__atomic_load_n(&f->refreshes, __ATOMIC_RELAXED));
	table_unref(f, t);
}

static void put_num(struct buf *b, const char *key, double v)
{
	buf_printf(b, ",\"%s\":", key);
	if (isfinite(v))
		buf_put_double(b, v);
	else
		buf_puts(b, "null");
}

static void put_entry(struct buf *b, const struct forecaster *f, const struct fc_entry *e)
{
	const struct resource *rd = &resources[e->res];
	buf_puts(b, "{\"resource\":");
	buf_put_json_str(b, rd->name);
	buf_puts(b, ",\"mountpoint\":");
	if (e->mountpoint)
		buf_put_json_str(b, e->mountpoint);
	else
		buf_puts(b, "null");
	buf_printf(b, ",\"unit\":\"%s\",\"usage_series\":\"%s\"", rd->unit, rd->usage);
	put_num(b, "now", e->now);
	put_num(b, "limit", e->limit);
	buf_printf(b, ",\"model\":\"%s\",\"reason\":", fc_model_name(e->model));
	if (e->model == FC_MODEL_NONE) {
		buf_put_json_str(b, e->reason ? e->reason : "no_data");
		buf_puts(b, "}");
		return;
	}
	buf_puts(b, "null");
	put_num(b, "trend_per_second", e->trend);
	put_num(b, "exhaustion_seconds", e->eta);
	put_num(b, "exhaustion_lower_seconds", e->early);
	put_num(b, "exhaustion_upper_seconds", e->late);
	put_num(b, "max_horizon_seconds", (double)f->cfg.max_horizon_ms / 1e3);
	buf_puts(b, ",\"interval\":0.8,\"forecast\":[");
	for (size_t h = 0; h < f->cfg.nhorizons; h++) {
		buf_printf(b, "%s{\"horizon_seconds\":%lld", h ? "," : "",
			   (long long)(f->cfg.horizons_ms[h] / 1000));
		put_num(b, "value", e->y[h]);
		put_num(b, "lower", e->lo[h]);
		put_num(b, "upper", e->hi[h]);
		buf_putc(b, '}');
	}
	buf_printf(b, "],\"points\":%zu,\"segment_start\":", e->npoints);
	buf_put_double(b, (double)e->segment_start_ms / 1e3);
	buf_puts(b, ",\"backtest_mae\":{\"linear\":");
	if (isfinite(e->err_linear))
		buf_put_double(b, e->err_linear);
	else
		buf_puts(b, "null");
	buf_puts(b, ",\"holt_winters\":");
	if (isfinite(e->err_hw))
		buf_put_double(b, e->err_hw);
	else
		buf_puts(b, "null");
	buf_puts(b, "}}");
}

int forecast_container_json(struct forecaster *f, const char *id_label, const char *id,
			    const char *name, struct buf *out)
{
	struct fc_table *t = f ? table_ref(f) : NULL;
	buf_puts(out, "{\"id\":");
	buf_put_json_str(out, id ? id : "");
	buf_puts(out, ",\"name\":");
	buf_put_json_str(out, name ? name : "");
	if (!t) {
		buf_puts(out, ",\"time\":null,\"resources\":[],\"note\":");
		buf_put_json_str(out, f ? "no forecast yet: the first refresh has not finished" :
					  "forecasts are off (forecast.enabled, or storage is off)");
		buf_putc(out, '}');
		return -ENOENT;
	}
	buf_puts(out, ",\"time\":");
	buf_put_double(out, (double)t->time_ms / 1e3);
	buf_printf(out, ",\"interval_seconds\":%lld,\"window_seconds\":%lld,\"resources\":[",
		   (long long)(f->cfg.interval_ms / 1000), (long long)(f->cfg.window_ms / 1000));
	bool first = true;
	for (size_t i = 0; i < t->n; i++) {
		const struct fc_entry *e = &t->e[i];
		if (!e->id || strcmp(e->id, id_label))
			continue;
		if (!first)
			buf_putc(out, ',');
		first = false;
		put_entry(out, f, e);
	}
	buf_puts(out, "]}");
	table_unref(f, t);
	return 0;
}

/* ---- the PromQL functions ------------------------------------------------------------------ */

/* forecast() and forecast_exhaustion() over one series of a range vector:
 * the window is the range, the history the same points. */
static bool promql_forecast(const struct promql_point *p, size_t n, int64_t t_eval_ms,
			    int64_t range_ms, double arg, bool exhaustion, double *out)
{
	if (n < 3 || !isfinite(arg))
		return false;
	int64_t *t = malloc(n * sizeof(*t));
	double *v = malloc(n * sizeof(*v));
	struct fc_fit *fit = malloc(sizeof(*fit));
	bool ok = false;
	if (!t || !v || !fit)
		goto out;
	for (size_t i = 0; i < n; i++) {
		t[i] = p[i].t;
		v[i] = p[i].v;
	}
	struct fc_params pr;
	fc_params_defaults(&pr);
	pr.window_ms = range_ms;
	if (pr.min_span_ms > range_ms / 4)
		pr.min_span_ms = range_ms / 4;
	struct fc_input in = { t, v, n, t, v, n, t_eval_ms, false };
	if (fc_fit(&pr, &in, fit) < 0 || fit->model == FC_MODEL_NONE)
		goto out;
	if (exhaustion) {
		double early, late;
		fc_exhaustion(fit, arg, pr.max_horizon_ms, out, &early, &late);
	} else {
		double lo, hi;
		fc_predict(fit, arg, out, &lo, &hi);
	}
	ok = true;
out:
	free(t);
	free(v);
	free(fit);
	return ok;
}

const struct promql_forecaster forecast_promql = { promql_forecast };
