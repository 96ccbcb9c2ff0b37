/*
 * forecast_inc.c - a series' linear fit carried between refreshes as the
 * window's least-squares sums by cells of time (struct fc_inc): each
 * refresh adds the samples that arrived (taken from the store's copy of
 * them, store_cursor_follow, not decoded), takes whole cells that left the
 * window out, and solves the line from the sums; any doubt (a stale marker,
 * a jump, a break, the periodic full fit) drops the sums and forecast.c
 * reads the series whole. Also the forecaster's per-series state map.
 * Refresh thread only (forecast_refresh.h).
 */
#include "alerting/forecast_refresh.h"

/* ---- what the forecaster remembers of slow series ----------------------------------------- */



static inline __attribute__((always_inline)) void range_add(struct fc_inc *in, int64_t t,
							       double v)
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

/* The range of the blocks that overlap [start, ...): those numbered from
 * start's own on ((b + 1) blk_ms > start; unused ones are -1). Selects, not
 * branches or fmin/fmax (a call each; the same for NaN): 32 blocks for
 * each of 6,000 series a refresh. */
static void range_of(const struct fc_inc *in, int64_t start, double *lo, double *hi)
{
	int64_t first = start > 0 ? start / in->blk_ms : 0;
	double l = INFINITY, h = -INFINITY;
	for (size_t k = 0; k < FC_RANGE_BLOCKS; k++) {
		bool overlaps = in->blk[k] >= first;
		double bl = in->blo[k], bh = in->bhi[k];
		l = overlaps && bl < l ? bl : l;
		h = overlaps && bh > h ? bh : h;
	}
	*lo = l;
	*hi = h;
}

void fc_inc_free(struct fc_inc *in)
{
	if (in) {
		fc_pts_fini(&in->ahead);
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

/* fc_wcell_step(c, w, start, t, v, 1) with x = t - start, dy = v - w->y0
 * worked out: for a cell copied into locals (the same sums, bit for bit). */
static inline void cell_sum(struct fc_wcell *c, int64_t x, double dy)
{
	c->n++;
	c->sx += x;
	c->sxx += x * x;
	c->sy += dy;
	c->sxy += (double)x * dy;
	c->syy += dy * dy;
}

/* cell_add for points t/v (n, oldest first, none older than the cells'
 * newest): the same sums in the same order, the points after the first of
 * each cell summed into a copy of it held in locals (a full fit keeps 3,600
 * points at 1 s). False as cell_add. */
static bool cells_add_run(struct fc_inc *in, const int64_t *t, const double *v, size_t n)
{
	const double y0 = in->w.y0;
	size_t i = 0;
	while (i < n) {
		if (!cell_add(in, t[i], v[i]))
			return false;
		int64_t start = in->cell_hi * in->cell_ms, end = start + in->cell_ms;
		struct fc_wcell c = *in->hi_cell;
		for (i++; i < n && t[i] <= end; i++) {
			cell_sum(&c, t[i] - start, v[i] - y0);
		}
		*in->hi_cell = c;
	}
	return true;
}

/* The window's sums with the newest cell's (not yet in them) into *out. */
static void inc_sums(const struct fc_inc *in, struct fc_window *out)
{
	*out = in->w;
	if (!in->rate && in->cell_hi >= in->cell_lo)
		fc_window_cell(out, cell_at(in, in->cell_hi), in->cell_hi * in->cell_ms, 1);
}


struct sstate *fc_smap_get(struct smap *m, uint32_t id)
{
	if (m->n * 2 >= m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 1024;
		if (cap > SMAP_MAX) {    /* series churn: start over rather than grow */
			for (size_t i = 0; i < m->cap; i++) {
				free(m->e[i].long_fit);
				fc_inc_free(m->e[i].inc);
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

/* ---- the linear fit carried as running sums ---------------------------------------------- */

/*
 * When a series' next periodic look (every `every`) is due: at one of the
 * refreshes (slots of slot_ms, forecast.interval) of each period, chosen by
 * its id, so that the series spread evenly over the refreshes instead of a
 * thousand that began together paying for it in the same one (with 15
 * phases, a full read of a fifteenth of all series every 16 minutes was a
 * refresh of 110 ms among ones of 20). The first period is shortened to
 * reach the series' phase; the following ones are `every`.
 */
int64_t fc_stagger(int64_t now, uint32_t id, int64_t every, int64_t slot_ms)
{
	int64_t u = slot_ms > 0 && slot_ms <= every ? slot_ms : every;
	int64_t p = every / u, slot = now / u, j = (slot + (int64_t)(id % (uint64_t)p)) % p;
	return (slot + p - j) * u;
}

void fc_inc_drop(struct sstate *ss)
{
	fc_inc_free(ss->inc);
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
void fc_inc_build(struct refresh *r, struct sstate *ss, const struct pts *p,
		      const struct fc_fit *fit, int64_t chg, double limit,
		      const struct fc_rate_acc *acc)
{
	fc_inc_drop(ss);
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
		ok = fc_pts_grow(&in->ahead, end - a + 1) == 0;
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
		ok = ok && cells_add_run(in, p->t + a, p->v + a, end - a);
	}
	if (!ok) {
		fc_inc_free(in);
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
	in->full_at = fc_stagger(r->now, ss->id, FC_FULL_EVERY_MS, r->f->cfg.interval_ms);
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
	if (in->cur && fc_pts_grow(&r->raw, 4096) == 0) {
		ssize_t n = store_read_after(r->f->st, id, in->cur, after, r->now, r->raw.t,
					     r->raw.v, r->raw.cap);
		if (n >= 0) {
			r->raw.n = (size_t)n;
			return 0;
		}
		if (n != -E2BIG)
			return (int)n;
	}
	return fc_read_series(r->f->st, id, STORE_TIER_RAW, true, after + 1, r->now, &r->raw);
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

/* The usage a raw value stands for: limit - v for host memory. (Inline
 * and always with a constant of_limit: a loop of its own for each.) */
static inline __attribute__((always_inline)) double usage_of(double v, double lim, bool of_limit)
{
	return of_limit ? lim - v : v;
}

/*
 * What a run of new points is, before any goes into the sums: its lowest
 * and highest usage, the largest change between neighbours (from v[-1], the
 * point before the run, already added), and whether a stale marker is
 * among them. Branch-free compares: one pass of a few instructions a point.
 */
static inline __attribute__((always_inline)) bool run_scan(const double *v, size_t n, double lim,
							   bool of_limit, double *lo, double *hi,
							   double *maxd)
{
	double l = INFINITY, h = -INFINITY, md = 0;
	bool stale = false;
	for (size_t k = 0; k < n; k++) {
		double y = usage_of(v[k], lim, of_limit);
		double d = fabs(y - usage_of(v[(ptrdiff_t)k - 1], lim, of_limit));
		stale |= store_is_stale(v[k]);
		l = y < l ? y : l;
		h = y > h ? y : h;
		md = d > md ? d : md;
	}
	*lo = l;
	*hi = h;
	*maxd = md;
	return !stale;
}

/* The points of a scanned run into the newest cell's sums, in order (the
 * same sums as fc_wcell_step one by one), through a copy held in locals. */
static inline __attribute__((always_inline)) void run_sum(struct fc_inc *in, const int64_t *t,
							  const double *v, size_t n,
							  bool of_limit)
{
	const double lim = in->limit, y0 = in->w.y0;
	const int64_t start = in->cell_hi * in->cell_ms;
	struct fc_wcell c = *in->hi_cell;
	for (size_t k = 0; k < n; k++)
		cell_sum(&c, t[k] - start, usage_of(v[k], lim, of_limit) - y0);
	*in->hi_cell = c;
}

/*
 * Points t/v (n) that follow, in the newest cell and the range's newest
 * block, the one just added by inc_add: the same sums, range and step
 * verdict as inc_add point by point. The step test (a change past
 * max(scale, a tenth of the range)) is decided for the run at once: the
 * range only grows, so when no change passes the threshold of the range
 * before the run, none passes its own; else (rare: a jump may be there)
 * the run goes point by point. False as inc_add, or on a stale marker.
 */
static bool run_add(struct fc_inc *in, const int64_t *t, const double *v, size_t n,
		    bool of_limit, bool steps_are_growth, double *lo, double *hi)
{
	double l, h, md, thr = 0.1 * (*hi - *lo);
	if (in->scale > thr)
		thr = in->scale;
	if (!(of_limit ? run_scan(v, n, in->limit, true, &l, &h, &md) :
			 run_scan(v, n, in->limit, false, &l, &h, &md)))
		return false;
	if (!steps_are_growth && !(md <= thr)) {
		for (size_t k = 0; k < n; k++)
			if (!inc_add(in, t[k], usage_of(v[k], in->limit, of_limit), false, lo, hi))
				return false;
		return true;
	}
	if (of_limit)
		run_sum(in, t, v, n, true);
	else
		run_sum(in, t, v, n, false);
	size_t bk = in->blk_k;
	if (l < in->blo[bk])
		in->blo[bk] = l;
	if (h > in->bhi[bk])
		in->bhi[bk] = h;
	if (l < *lo)
		*lo = l;
	if (h > *hi)
		*hi = h;
	in->last_t = t[n - 1];
	in->last_v = usage_of(v[n - 1], in->limit, of_limit);
	return true;
}

/*
 * inc_add over new raw points t/v (n, oldest first; the usage is limit - v
 * when usage_of_limit): the same sums in the same order as point by point.
 * The first point of each cell and of each range block goes the general
 * way (it may open them); the points after it in both go as one run
 * (run_add): 300,000 points a refresh at 1 s for 1,000 containers. False
 * as inc_add, or on a stale marker.
 */
static bool inc_add_run(struct fc_inc *in, const int64_t *t, const double *v, size_t n,
			bool usage_of_limit, bool steps_are_growth, double *lo, double *hi)
{
	size_t i = 0;
	while (i < n) {
		if (store_is_stale(v[i]) ||
		    !inc_add(in, t[i], usage_of(v[i], in->limit, usage_of_limit), steps_are_growth,
			     lo, hi))
			return false;
		/* the run: up to the cell's end, (k cm, (k+1) cm], and the block's */
		int64_t stop = (in->cell_hi + 1) * in->cell_ms + 1;
		if (in->blk_t1 < stop)
			stop = in->blk_t1;
		size_t a = i + 1, b = a + fc_cut(t + a, n - a, stop);
		if (b > a && !run_add(in, t + a, v + a, b - a, usage_of_limit, steps_are_growth, lo,
				      hi))
			return false;
		i = b;
	}
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
		if (fc_pts_grow(&in->ahead, in->ahead.n + 1) < 0 || !inc_add(in, pt, pv, false, lo, hi))
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
			if (fc_read_series(r->f->st, id, STORE_TIER_RAW, true, from, start - 1,
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
bool fc_inc_advance(struct refresh *r, struct sstate *ss, uint32_t id, bool usage_of_limit,
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
	/* all but the season (three quarters of it, a Holt-Winters fit's
	 * alone: never read of a line), for each of 6,000 series */
	memset(fit, 0, offsetof(struct fc_fit, season));
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
	fc_inc_drop(ss);
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
bool fc_inc_history_keeps(struct refresh *r, struct sstate *ss, uint32_t id, enum fc_res res,
			      double limit, int64_t chg, int64_t hist_from)
{
	bool counter = fc_resources[res].counter;
	if (fc_read_series(r->f->st, id, STORE_TIER_1M, counter, hist_from, r->now, &r->hist) < 0)
		return false;
	bool stale;
	int64_t hc = fc_drop_stale(&r->hist, &stale);
	if (hc > chg)
		chg = hc;
	fc_cut_at(&r->hist, chg);
	if (counter && fc_to_rate(r, &r->hist, 60000) < 0)
		return false;
	if (res == RES_HOST_MEMORY)
		for (size_t k = 0; k < r->hist.n; k++)
			r->hist.v[k] = limit - r->hist.v[k];
	struct fc_input in = { r->hist.t, r->hist.v, r->hist.n, r->hist.t, r->hist.v, r->hist.n,
			       r->now, fc_resources[res].staircase };
	struct fc_fit *hf = malloc(sizeof(*hf));
	if (!hf)
		return false;
	bool keep = !stale && chg <= ss->inc->chg && fc_fit(&r->f->params, &in, hf) == 0 &&
		    hf->model == FC_MODEL_LINEAR && hf->segment_start_ms <= ss->inc->from_t;
	free(hf);
	if (keep) {
		ss->long_at = r->now;
		ss->long_due = fc_stagger(r->now, id, FC_HISTORY_LINE_EVERY_MS,
					  r->f->cfg.interval_ms);
		free(ss->long_fit);
		ss->long_fit = NULL;
	}
	return keep;
}
