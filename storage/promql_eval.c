/*
 * promql_eval.c - the PromQL evaluator: selectors, operators, aggregations
 * and the driver behind promql_eval_instant and promql_eval_range.
 *
 * Every node is evaluated once over the whole grid of evaluation times (see
 * promql_eval_int.h), the way Prometheus' range evaluation works, so a
 * range query reads each series from the source once and walks its points
 * with a moving cursor instead of seeking per step. Semantics follow
 * Prometheus: the lookback window and range windows are left-open, a stale
 * marker ends a series, @ pins a selector or subquery to one time, offset
 * shifts it, subqueries evaluate on a grid aligned to their step. Errors
 * carry Prometheus' messages and classes; the query stops at the first.
 * Memory comes from the result's arena and goes away with the result.
 */
#include "storage/promql_eval_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors, limits, memory ---------------------------------------------------- */

int ev_fail(struct ev *ev, enum promql_errtype t, const char *fmt, ...)
{
	if (ev->failed)
		return -1;
	ev->failed = true;
	ev->err->type = t;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ev->err->msg, sizeof(ev->err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

int ev_check(struct ev *ev)
{
	if (ev->failed)
		return -1;
	if (ev->o->cancel && *ev->o->cancel)
		return ev_fail(ev, PROMQL_ERR_CANCELED, "query was canceled in expression evaluation");
	if (ev->deadline_ns && mono_ns() > ev->deadline_ns)
		return ev_fail(ev, PROMQL_ERR_TIMEOUT, "query timed out in expression evaluation");
	return 0;
}

int ev_charge(struct ev *ev, uint64_t n)
{
	ev->samples += n;
	if (ev->o->max_samples && ev->samples > ev->o->max_samples)
		return ev_fail(ev, PROMQL_ERR_EXECUTION,
			       "query processing would load too many samples into memory in query execution");
	if ((++ev->ticks & 63) == 0)
		return ev_check(ev);
	return 0;
}

void *ev_alloc(struct ev *ev, size_t n)
{
	void *p = arena_alloc(ev->a, n ? n : 1);
	if (!p)
		ev_fail(ev, PROMQL_ERR_INTERNAL, "out of memory");
	return p;
}

struct vseries *vec_add(struct ev *ev, struct vec *v, const struct grid *g,
			const struct labels *ls)
{
	if (!ls) {
		ev_fail(ev, PROMQL_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	if (ev_charge(ev, g->n) < 0)
		return NULL;
	if (v->n == v->cap) {
		size_t nc = v->cap ? v->cap * 2 : 16;
		struct vseries *ns = ev_alloc(ev, nc * sizeof(*ns));
		if (!ns)
			return NULL;
		if (v->n)
			memcpy(ns, v->s, v->n * sizeof(*ns));
		v->s = ns;
		v->cap = nc;
	}
	struct vseries *s = &v->s[v->n];
	s->ls = ls;
	s->v = ev_alloc(ev, g->n * sizeof(double));
	s->ok = ev_alloc(ev, g->n);
	s->ts = NULL;
	if (!s->v || !s->ok)
		return NULL;
	memset(s->ok, 0, g->n);
	v->n++;
	return s;
}

/* ---- the output map --------------------------------------------------------------- */

void outmap_init(struct outmap *m, struct vec *out, const struct grid *g)
{
	memset(m, 0, sizeof(*m));
	m->out = out;
	m->g = g;
}

void outmap_fini(struct outmap *m)
{
	free(m->slot);
	m->slot = NULL;
}

static int outmap_grow(struct outmap *m)
{
	size_t nc = m->cap ? m->cap * 2 : 64;
	size_t *ns = calloc(nc, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->slot[i])
			continue;
		uint64_t h = m->out->s[m->slot[i] - 1].ls->hash;
		size_t j = h & (nc - 1);
		while (ns[j])
			j = (j + 1) & (nc - 1);
		ns[j] = m->slot[i];
	}
	free(m->slot);
	m->slot = ns;
	m->cap = nc;
	return 0;
}

ssize_t outmap_get(struct ev *ev, struct outmap *m, const struct labels *ls)
{
	if (!ls)
		return ev_fail(ev, PROMQL_ERR_INTERNAL, "out of memory");
	if ((m->n + 1) * 2 > m->cap && outmap_grow(m) < 0)
		return ev_fail(ev, PROMQL_ERR_INTERNAL, "out of memory");
	size_t j = ls->hash & (m->cap - 1);
	while (m->slot[j]) {
		struct vseries *s = &m->out->s[m->slot[j] - 1];
		if (labels_equal(s->ls, ls))
			return (ssize_t)(m->slot[j] - 1);
		j = (j + 1) & (m->cap - 1);
	}
	if (!vec_add(ev, m->out, m->g, ls))
		return -1;
	m->slot[j] = m->out->n;
	m->n++;
	return (ssize_t)(m->out->n - 1);
}

int outmap_set(struct ev *ev, struct outmap *m, size_t idx, size_t i, double v, const char *dupmsg)
{
	struct vseries *s = &m->out->s[idx];
	if (s->ok[i])
		return ev_fail(ev, PROMQL_ERR_EXECUTION, "%s",
			       dupmsg ? dupmsg : "vector cannot contain metrics with the same labelset");
	s->ok[i] = 1;
	s->v[i] = v;
	return 0;
}

int outmap_put(struct ev *ev, struct outmap *m, ssize_t *idx, const struct labels *ls,
	       size_t i, double v)
{
	if (*idx < 0 && (*idx = outmap_get(ev, m, ls)) < 0)
		return -1;
	return outmap_set(ev, m, (size_t)*idx, i, v, NULL);
}

/* ---- small helpers ------------------------------------------------------------------ */

double go_max(double a, double b)
{
	if (isinf(a) && a > 0)
		return a;
	if (isinf(b) && b > 0)
		return b;
	if (isnan(a) || isnan(b))
		return NAN;
	if (a == 0 && a == b)
		return signbit(a) ? b : a;
	return a > b ? a : b;
}

double go_min(double a, double b)
{
	if (isinf(a) && a < 0)
		return a;
	if (isinf(b) && b < 0)
		return b;
	if (isnan(a) || isnan(b))
		return NAN;
	if (a == 0 && a == b)
		return signbit(a) ? a : b;
	return a < b ? a : b;
}

/* NaN first, then ascending, as Prometheus' vectorByValueHeap sorts. */
static int cmp_nan_first(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	if (isnan(x))
		return isnan(y) ? 0 : -1;
	if (isnan(y))
		return 1;
	return (x > y) - (x < y);
}

double promql_quantile(double q, double *v, size_t n)
{
	if (n == 0)
		return NAN;
	if (q < 0)
		return -INFINITY;
	if (q > 1)
		return INFINITY;
	qsort(v, n, sizeof(*v), cmp_nan_first);
	double dn = (double)n;
	double rank = q * (dn - 1);
	double lower = fmax(0, floor(rank));
	double upper = fmin(dn - 1, lower + 1);
	double weight = rank - floor(rank);
	return v[(size_t)lower] * (1 - weight) + v[(size_t)upper] * weight;
}

const struct node *unparen(const struct node *n)
{
	while (n->kind == N_PAREN)
		n = n->expr;
	return n;
}

int64_t ev_at_time(const struct ev *ev, const struct node *n)
{
	switch (n->at) {
	case AT_START:
		return ev->q_start;
	case AT_END:
		return ev->q_end;
	default:
		return n->at_ms;
	}
}

/* Copies labels of a source series into the arena as a label set. */
static const struct labels *series_labels(struct ev *ev, const struct promql_series *s)
{
	return labels_make(ev->a, s->labels, s->nlabels);
}

static ssize_t do_select(struct ev *ev, const struct node *vs, int64_t mint, int64_t maxt,
			 struct promql_series **out)
{
	ssize_t n = ev->src->ops->select(ev->src->ctx, vs->m, vs->nm, mint, maxt, ev->a, out);
	if (n < 0)
		return ev_fail(ev, PROMQL_ERR_INTERNAL, "selecting series: %s", strerror((int)-n));
	return n;
}

static int load_points(struct ev *ev, uint64_t ref, int64_t mint, int64_t maxt)
{
	ev->pts.n = 0;
	if (ev_check(ev) < 0)
		return -1;
	int rc = ev->src->ops->points(ev->src->ctx, ref, mint, maxt, ev->step_hint_ms, &ev->pts);
	if (rc < 0)
		return ev_fail(ev, PROMQL_ERR_INTERNAL, "reading samples: %s", strerror(-rc));
	ev->loaded += ev->pts.n;
	return ev_charge(ev, ev->pts.n);
}

/* The newest point in [mint, maxt] alone, through the source's fast path. */
static int load_last(struct ev *ev, uint64_t ref, int64_t mint, int64_t maxt)
{
	ev->pts.n = 0;
	if (ev_check(ev) < 0)
		return -1;
	struct promql_point p;
	int rc = ev->src->ops->last(ev->src->ctx, ref, mint, maxt, &p);
	if (rc < 0)
		return ev_fail(ev, PROMQL_ERR_INTERNAL, "reading samples: %s", strerror(-rc));
	if (rc > 0 && promql_points_push(&ev->pts, p.t, p.v) < 0)
		return ev_fail(ev, PROMQL_ERR_INTERNAL, "out of memory");
	ev->loaded += ev->pts.n;
	return ev_charge(ev, ev->pts.n);
}

/* ---- vector selectors ------------------------------------------------------------------- */

#define NARROW_LOOKBACK_MS 60000

/*
 * The selector over reference times ref0, ref0 + step, ... (n of them):
 * the newest sample in (ref - lookback, ref], unless it is a stale marker.
 */
static int vsel_core(struct ev *ev, const struct node *vs, int64_t ref0, int64_t step, size_t n,
		     const struct grid *g, bool want_ts, struct vec *out)
{
	int64_t lb = ev->o->lookback_ms;
	int64_t refN = ref0 + (int64_t)(n - 1) * step;
	struct promql_series *sel;
	ssize_t ns = do_select(ev, vs, ref0 - lb + 1, refN, &sel);
	if (ns < 0)
		return -1;
	/* One evaluation time (rules, instant queries): the newest minute is
	 * read first, and the rest of the lookback only for a series without a
	 * point in it; the newest point of the minute is the newest of all. */
	bool narrow = n == 1 && lb > NARROW_LOOKBACK_MS;
	bool last = n == 1 && ev->src->ops->last;
	for (ssize_t k = 0; k < ns; k++) {
		if (last) {
			/* Only the newest point counts: the source finds it. */
			if (load_last(ev, sel[k].ref, ref0 - lb + 1, ref0) < 0)
				return -1;
		} else if (narrow) {
			if (load_points(ev, sel[k].ref, ref0 - NARROW_LOOKBACK_MS + 1, ref0) < 0)
				return -1;
			if (ev->pts.n == 0 &&
			    load_points(ev, sel[k].ref, ref0 - lb + 1, ref0 - NARROW_LOOKBACK_MS) < 0)
				return -1;
		} else if (load_points(ev, sel[k].ref, ref0 - lb + 1, refN) < 0) {
			return -1;
		}
		const struct promql_point *p = ev->pts.p;
		size_t np = ev->pts.n, j = 0;
		struct vseries *s = NULL;
		for (size_t i = 0; i < n; i++) {
			int64_t ref = ref0 + (int64_t)i * step;
			while (j < np && p[j].t <= ref)
				j++;
			if (j == 0 || p[j - 1].t <= ref - lb || promql_is_stale(p[j - 1].v))
				continue;
			if (!s) {
				s = vec_add(ev, out, g, series_labels(ev, &sel[k]));
				if (!s)
					return -1;
				if (want_ts && !(s->ts = ev_alloc(ev, g->n * sizeof(int64_t))))
					return -1;
			}
			s->ok[i] = 1;
			s->v[i] = p[j - 1].v;
			if (want_ts)
				s->ts[i] = p[j - 1].t;
		}
	}
	return 0;
}

/* Copies step 0 of every series of v to all of g's steps. */
static void broadcast(struct vec *v, const struct grid *g)
{
	for (size_t k = 0; k < v->n; k++) {
		struct vseries *s = &v->s[k];
		for (size_t i = 1; i < g->n; i++) {
			s->ok[i] = s->ok[0];
			s->v[i] = s->v[0];
			if (s->ts)
				s->ts[i] = s->ts[0];
		}
	}
}

static int eval_vsel_common(struct ev *ev, const struct node *n, const struct grid *g,
			    bool want_ts, struct vec *out)
{
	if (n->at != AT_NONE) {
		int64_t ref = ev_at_time(ev, n) - n->offset_ms;
		if (vsel_core(ev, n, ref, 1, 1, g, want_ts, out) < 0)
			return -1;
		broadcast(out, g);
		return 0;
	}
	return vsel_core(ev, n, g->start - n->offset_ms, g->step, g->n, g, want_ts, out);
}

int eval_vsel_ts(struct ev *ev, const struct node *n, const struct grid *g, struct vec *out)
{
	return eval_vsel_common(ev, n, g, true, out);
}

/* ---- range-vector arguments --------------------------------------------------------------- */

const struct labels *absent_labels(struct ev *ev, const struct node *arg)
{
	arg = unparen(arg);
	const struct node *vs = arg->kind == N_MSEL ? arg->expr : arg->kind == N_VSEL ? arg : NULL;
	if (!vs)
		return labels_make(ev->a, NULL, 0);
	struct promql_label *l = ev_alloc(ev, (vs->nm + 1) * sizeof(*l));
	if (!l)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < vs->nm; i++) {
		const struct promql_matcher *m = &vs->m[i];
		if (!strcmp(m->name, "__name__"))
			continue;
		bool dup = false;
		for (size_t j = 0; j < k; j++)
			dup |= !strcmp(l[j].name, m->name);
		if (m->op == PROMQL_MATCH_EQ && !dup)
			l[k++] = (struct promql_label){ arena_strdup(ev->a, m->name),
							arena_strdup(ev->a, m->value) };
		if (k && (!l[k - 1].name || !l[k - 1].value)) {
			ev_fail(ev, PROMQL_ERR_INTERNAL, "out of memory");
			return NULL;
		}
	}
	/* A name with any other matcher, or two, says nothing certain. */
	size_t w = 0;
	for (size_t j = 0; j < k; j++) {
		bool drop = false;
		for (size_t i = 0; i < vs->nm; i++) {
			const struct promql_matcher *m = &vs->m[i];
			if (strcmp(m->name, l[j].name))
				continue;
			if (m->op != PROMQL_MATCH_EQ || strcmp(m->value, l[j].value))
				drop = true;
		}
		if (!drop)
			l[w++] = l[j];
	}
	return labels_make(ev->a, l, w);
}

int rangearg_open(struct ev *ev, const struct node *arg, const struct grid *g, struct rangearg *r)
{
	memset(r, 0, sizeof(*r));
	arg = unparen(arg);
	r->n = arg;
	r->range_ms = arg->range_ms;
	const struct node *mod = arg->kind == N_MSEL ? arg->expr : arg;
	r->offset_ms = mod->offset_ms;
	if (mod->at != AT_NONE) {
		r->pinned = true;
		r->pin_ms = ev_at_time(ev, mod);
	}
	int64_t end0 = rangearg_end(r, g, 0), endN = rangearg_end(r, g, g->n - 1);
	r->mint = end0 - r->range_ms + 1;
	r->maxt = endN;
	if (arg->kind == N_MSEL) {
		r->vs = arg->expr;
		ssize_t ns = do_select(ev, r->vs, r->mint, r->maxt, &r->sel);
		if (ns < 0)
			return -1;
		r->nsel = (size_t)ns;
		r->pf = prefetch_start(ev, r->sel, r->nsel, r->mint, r->maxt);
		return 0;
	}
	/* A subquery: its expression on a grid aligned to its step, starting at
	 * the first aligned time after the first window opens. */
	int64_t step = arg->step_ms ? arg->step_ms : ev->o->subquery_step_ms;
	int64_t lo = end0 - r->range_ms;
	int64_t start = step * (lo / step);
	if (start < lo)
		start += step;
	if (start > endN)
		return 0;
	r->ig.start = start;
	r->ig.step = step;
	r->ig.n = (size_t)((endN - start) / step) + 1;
	r->ig.end = start + (int64_t)(r->ig.n - 1) * step;
	if (r->ig.n > 100000000)
		return ev_fail(ev, PROMQL_ERR_EXECUTION,
			       "query processing would load too many samples into memory in query execution");
	struct value v;
	if (eval_node(ev, arg->expr, &r->ig, &v) < 0)
		return -1;
	r->inner = v.v;
	r->buf = ev_alloc(ev, r->ig.n * sizeof(*r->buf));
	return r->buf ? 0 : -1;
}

int rangearg_next(struct ev *ev, struct rangearg *r, const struct labels **ls,
		  const struct promql_point **p, size_t *n)
{
	if (r->n->kind == N_MSEL) {
		if (r->pf && r->held) {
			prefetch_release(r->pf, r->next - 1);
			r->held = false;
		}
		for (; r->next < r->nsel; r->next++) {
			struct promql_series *s = &r->sel[r->next];
			struct promql_points *pts = &ev->pts;
			if (!r->pf) {
				if (load_points(ev, s->ref, r->mint, r->maxt) < 0)
					return -1;
			} else {
				if (ev_check(ev) < 0)
					return -1;
				int rc = prefetch_take(r->pf, r->next, &pts);
				r->held = true;
				if (rc < 0)
					return ev_fail(ev, PROMQL_ERR_INTERNAL, "reading samples: %s",
						       strerror(-rc));
				ev->loaded += pts->n;
				if (ev_charge(ev, pts->n) < 0)
					return -1;
			}
			/* Range windows never include stale markers (moved only
			 * from the first one on: most series have none). */
			size_t w = 0;
			while (w < pts->n && !promql_is_stale(pts->p[w].v))
				w++;
			for (size_t i = w; i < pts->n; i++)
				if (!promql_is_stale(pts->p[i].v))
					pts->p[w++] = pts->p[i];
			pts->n = w;
			*ls = series_labels(ev, s);
			if (!*ls)
				return ev_fail(ev, PROMQL_ERR_INTERNAL, "out of memory");
			*p = pts->p;
			*n = w;
			r->next++;
			return 1;
		}
		return 0;
	}
	if (r->next >= r->inner.n)
		return 0;
	if (ev_check(ev) < 0)
		return -1;
	struct vseries *s = &r->inner.s[r->next++];
	size_t k = 0;
	for (size_t i = 0; i < r->ig.n; i++)
		if (s->ok[i]) {
			r->buf[k].t = grid_t(&r->ig, i);
			r->buf[k].v = s->v[i];
			k++;
		}
	*ls = s->ls;
	*p = r->buf;
	*n = k;
	return 1;
}

/* ---- binary operators ------------------------------------------------------------------- */

static bool is_cmp(enum tok t)
{
	return t == T_EQLC || t == T_NEQ || t == T_LTE || t == T_LSS || t == T_GTE || t == T_GTR;
}

static bool drops_name(enum tok t)
{
	return t == T_ADD || t == T_SUB || t == T_MUL || t == T_DIV || t == T_POW || t == T_MOD;
}

/* Go's math.Pow where it differs from C's pow: x^0.5 and x^-0.5 are
 * computed through Sqrt, so they compare equal to sqrt() as in Prometheus. */
static double go_pow(double x, double y)
{
	if (y == 0.5 && !isnan(x) && !(isinf(x) && x < 0) && x != 0)
		return sqrt(x);
	if (y == -0.5 && !isnan(x) && !(isinf(x) && x < 0) && x != 0)
		return 1 / sqrt(x);
	return pow(x, y);
}

/* Prometheus' vectorElemBinop: the value and whether a comparison holds. */
static double binop(enum tok op, double l, double r, bool *keep)
{
	*keep = true;
	switch (op) {
	case T_ADD: return l + r;
	case T_SUB: return l - r;
	case T_MUL: return l * r;
	case T_DIV: return l / r;
	case T_POW: return go_pow(l, r);
	case T_MOD: return fmod(l, r);
	case T_ATAN2: return atan2(l, r);
	case T_EQLC: *keep = l == r; return l;
	case T_NEQ: *keep = l != r; return l;
	case T_GTR: *keep = l > r; return l;
	case T_LSS: *keep = l < r; return l;
	case T_GTE: *keep = l >= r; return l;
	case T_LTE: *keep = l <= r; return l;
	default: *keep = false; return NAN;
	}
}

/* vector op scalar, or scalar op vector (swap). */
static int binop_vec_scalar(struct ev *ev, const struct node *n, const struct grid *g,
			    struct vec *in, const double *sc, bool swap, struct vec *out)
{
	struct outmap om;
	outmap_init(&om, out, g);
	bool drop = drops_name(n->op) || n->ret_bool;
	int rc = 0;
	for (size_t k = 0; k < in->n && rc == 0; k++) {
		struct vseries *s = &in->s[k];
		const struct labels *ls = drop ? labels_drop_name(ev->a, s->ls) : s->ls;
		ssize_t idx = -1;
		for (size_t i = 0; i < g->n; i++) {
			if (!s->ok[i])
				continue;
			double l = s->v[i], r = sc[i];
			if (swap) {
				double t = l;
				l = r;
				r = t;
			}
			bool keep;
			double v = binop(n->op, l, r, &keep);
			if (is_cmp(n->op) && swap)
				v = r;
			if (n->ret_bool) {
				v = keep ? 1 : 0;
				keep = true;
			}
			if (!keep)
				continue;
			if (outmap_put(ev, &om, &idx, ls, i, v) < 0) {
				rc = -1;
				break;
			}
		}
	}
	outmap_fini(&om);
	return rc;
}

/* Hash table from a signature to the series that share it. */
struct sigtab {
	uint64_t *key;
	size_t *val;                 /* group index + 1 */
	size_t cap;
};

static int sigtab_init(struct sigtab *t, size_t n)
{
	t->cap = 16;
	while (t->cap < n * 2 + 2)
		t->cap *= 2;
	t->key = calloc(t->cap, sizeof(*t->key));
	t->val = calloc(t->cap, sizeof(*t->val));
	return t->key && t->val ? 0 : -ENOMEM;
}

static void sigtab_fini(struct sigtab *t)
{
	free(t->key);
	free(t->val);
}

/* Groups of series of v by their matching signature. */
struct groups {
	size_t n;                    /* groups */
	size_t *of;                  /* per series: its group */
	size_t *rep;                 /* per group: a series */
	uint64_t *sig;               /* per series */
};

static int group_by_sig(struct ev *ev, const struct vec *v, const struct node *n, struct groups *gr,
			struct sigtab *t)
{
	gr->n = 0;
	gr->of = ev_alloc(ev, (v->n + 1) * sizeof(size_t));
	gr->rep = ev_alloc(ev, (v->n + 1) * sizeof(size_t));
	gr->sig = ev_alloc(ev, (v->n + 1) * sizeof(uint64_t));
	if (!gr->of || !gr->rep || !gr->sig)
		return -1;
	if (sigtab_init(t, v->n) < 0)
		return ev_fail(ev, PROMQL_ERR_INTERNAL, "out of memory");
	for (size_t k = 0; k < v->n; k++) {
		uint64_t h = labels_sig(v->s[k].ls, n->grouping, n->ngrouping, n->on);
		gr->sig[k] = h;
		size_t j = h & (t->cap - 1);
		for (;;) {
			if (!t->val[j]) {
				t->key[j] = h;
				t->val[j] = gr->n + 1;
				gr->rep[gr->n] = k;
				gr->of[k] = gr->n++;
				break;
			}
			size_t g = t->val[j] - 1;
			if (t->key[j] == h &&
			    labels_sig_equal(v->s[gr->rep[g]].ls, v->s[k].ls, n->grouping, n->ngrouping,
					     n->on)) {
				gr->of[k] = g;
				break;
			}
			j = (j + 1) & (t->cap - 1);
		}
	}
	return 0;
}

/* The group of other (grouped in t/gr) that series ls matches, or -1. */
static ssize_t group_find(const struct sigtab *t, const struct groups *gr, const struct vec *other,
			  const struct labels *ls, uint64_t h, const struct node *n)
{
	size_t j = h & (t->cap - 1);
	while (t->val[j]) {
		size_t g = t->val[j] - 1;
		if (t->key[j] == h &&
		    labels_sig_equal(other->s[gr->rep[g]].ls, ls, n->grouping, n->ngrouping, n->on))
			return (ssize_t)g;
		j = (j + 1) & (t->cap - 1);
	}
	return -1;
}

/* Prometheus' resultMetric: the labels of lhs op rhs. */
static const struct labels *result_labels(struct ev *ev, const struct node *n,
					  const struct labels *l, const struct labels *r)
{
	const struct labels *ls = l;
	if (drops_name(n->op))
		ls = labels_drop_name(ev->a, ls);
	if (ls && n->card == CARD_ONE_TO_ONE) {
		if (n->on)
			ls = labels_keep(ev->a, ls, n->grouping, n->ngrouping);
		else
			ls = labels_del(ev->a, ls, n->grouping, n->ngrouping);
	}
	for (size_t i = 0; ls && i < n->ninclude; i++)
		ls = labels_set(ev->a, ls, n->include[i], labels_get(r, n->include[i]));
	if (ls && n->ret_bool)
		ls = labels_drop_name(ev->a, ls);
	return ls;
}

static const struct labels *match_labels(struct ev *ev, const struct node *n,
					 const struct labels *ls)
{
	if (n->on)
		return labels_keep(ev->a, ls, n->grouping, n->ngrouping);
	const struct labels *x = labels_del(ev->a, ls, n->grouping, n->ngrouping);
	return x ? labels_drop_name(ev->a, x) : NULL;
}

static int dup_error(struct ev *ev, const struct node *n, const struct labels *a,
		     const struct labels *b, const char *side)
{
	struct buf m, x, y;
	buf_init(&m, 4096);
	buf_init(&x, 4096);
	buf_init(&y, 4096);
	const struct labels *ml = match_labels(ev, n, a);
	if (ml)
		labels_format(ml, &m);
	labels_format(a, &x);
	labels_format(b, &y);
	ev_fail(ev, PROMQL_ERR_EXECUTION,
		"found duplicate series for the match group %s on the %s hand-side of the operation: [%s, %s];many-to-many matching not allowed: matching labels must be unique on one side",
		m.data ? m.data : "{}", side, x.data ? x.data : "{}", y.data ? y.data : "{}");
	buf_fini(&m);
	buf_fini(&x);
	buf_fini(&y);
	return -1;
}

static int binop_vec_vec(struct ev *ev, const struct node *n, const struct grid *g,
			 struct vec *lhs, struct vec *rhs, struct vec *out)
{
	struct vec *many = lhs, *one = rhs;
	bool swapped = n->card == CARD_ONE_TO_MANY;
	/* Results outlive the expression: label names it supplies are copied. */
	struct node local = *n;
	if (n->ninclude) {
		local.include = ev_alloc(ev, n->ninclude * sizeof(char *));
		if (!local.include)
			return -1;
		for (size_t i = 0; i < n->ninclude; i++)
			if (!(local.include[i] = arena_strdup(ev->a, n->include[i])))
				return ev_fail(ev, PROMQL_ERR_INTERNAL, "out of memory");
		n = &local;
	}
	if (swapped) {
		many = rhs;
		one = lhs;
	}
	struct sigtab t = { 0 };
	struct groups gr = { 0 };
	struct outmap om;
	outmap_init(&om, out, g);
	int rc = -1;
	if (group_by_sig(ev, one, n, &gr, &t) < 0)
		goto done;
	/* Per many-side series: the one-side group it matches, the pair last
	 * seen and the output series it made. */
	ssize_t *match = ev_alloc(ev, (many->n + 1) * sizeof(ssize_t));
	ssize_t *last_r = ev_alloc(ev, (many->n + 1) * sizeof(ssize_t));
	ssize_t *last_out = ev_alloc(ev, (many->n + 1) * sizeof(ssize_t));
	/* Per group: which one-side series is present at this step, how many,
	 * and (one-to-one) whether a many-side series has matched it. */
	ssize_t *present = ev_alloc(ev, (gr.n + 1) * sizeof(ssize_t));
	size_t *count = ev_alloc(ev, (gr.n + 1) * sizeof(size_t));
	size_t *used = ev_alloc(ev, (gr.n + 1) * sizeof(size_t));
	if (!match || !last_r || !last_out || !present || !count || !used)
		goto done;
	for (size_t k = 0; k < many->n; k++) {
		uint64_t h = labels_sig(many->s[k].ls, n->grouping, n->ngrouping, n->on);
		match[k] = group_find(&t, &gr, one, many->s[k].ls, h, n);
		last_r[k] = -1;
		last_out[k] = -1;
	}
	for (size_t i = 0; i < gr.n; i++)
		used[i] = SIZE_MAX;
	const char *side = swapped ? "left" : "right";
	for (size_t i = 0; i < g->n; i++) {
		if ((i & 255) == 0 && ev_check(ev) < 0)
			goto done;
		memset(count, 0, gr.n * sizeof(size_t));
		for (size_t r = 0; r < one->n; r++) {
			if (!one->s[r].ok[i])
				continue;
			size_t gi = gr.of[r];
			if (count[gi]++) {
				dup_error(ev, n, one->s[r].ls, one->s[present[gi]].ls, side);
				goto done;
			}
			present[gi] = (ssize_t)r;
		}
		for (size_t k = 0; k < many->n; k++) {
			struct vseries *s = &many->s[k];
			if (!s->ok[i] || match[k] < 0 || !count[match[k]])
				continue;
			size_t gi = (size_t)match[k];
			struct vseries *o = &one->s[present[gi]];
			double vl = s->v[i], vr = o->v[i];
			if (swapped) {
				double tmp = vl;
				vl = vr;
				vr = tmp;
			}
			bool keep;
			double v = binop(n->op, vl, vr, &keep);
			if (n->ret_bool) {
				v = keep ? 1 : 0;
			} else if (!keep) {
				continue;
			}
			if (n->card == CARD_ONE_TO_ONE) {
				if (used[gi] == i) {
					ev_fail(ev, PROMQL_ERR_EXECUTION,
						"multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)");
					goto done;
				}
				used[gi] = i;
			}
			if (last_r[k] != present[gi]) {
				const struct labels *ls = result_labels(ev, n, s->ls, o->ls);
				last_out[k] = outmap_get(ev, &om, ls);
				if (last_out[k] < 0)
					goto done;
				last_r[k] = present[gi];
			}
			const char *dup = n->card == CARD_ONE_TO_ONE ? NULL
					  : "multiple matches for labels: grouping labels must ensure unique matches";
			if (outmap_set(ev, &om, (size_t)last_out[k], i, v, dup) < 0)
				goto done;
		}
	}
	rc = 0;
done:
	sigtab_fini(&t);
	outmap_fini(&om);
	return rc;
}

static int binop_set(struct ev *ev, const struct node *n, const struct grid *g, struct vec *lhs,
		     struct vec *rhs, struct vec *out)
{
	struct sigtab tr = { 0 }, tl = { 0 };
	struct groups gr = { 0 }, gl = { 0 };
	int rc = -1;
	if (group_by_sig(ev, rhs, n, &gr, &tr) < 0 || group_by_sig(ev, lhs, n, &gl, &tl) < 0)
		goto done;
	/* lhs series -> rhs group; rhs series -> lhs group */
	ssize_t *l2r = ev_alloc(ev, (lhs->n + 1) * sizeof(ssize_t));
	ssize_t *r2l = ev_alloc(ev, (rhs->n + 1) * sizeof(ssize_t));
	uint8_t *rp = ev_alloc(ev, gr.n + 1), *lp = ev_alloc(ev, gl.n + 1);
	if (!l2r || !r2l || !rp || !lp)
		goto done;
	for (size_t k = 0; k < lhs->n; k++)
		l2r[k] = group_find(&tr, &gr, rhs, lhs->s[k].ls, gl.sig[k], n);
	for (size_t k = 0; k < rhs->n; k++)
		r2l[k] = group_find(&tl, &gl, lhs, rhs->s[k].ls, gr.sig[k], n);
	struct outmap om;
	outmap_init(&om, out, g);
	ssize_t *lidx = ev_alloc(ev, (lhs->n + 1) * sizeof(ssize_t));
	ssize_t *ridx = ev_alloc(ev, (rhs->n + 1) * sizeof(ssize_t));
	if (!lidx || !ridx) {
		outmap_fini(&om);
		goto done;
	}
	for (size_t k = 0; k < lhs->n; k++)
		lidx[k] = -1;
	for (size_t k = 0; k < rhs->n; k++)
		ridx[k] = -1;
	for (size_t i = 0; i < g->n; i++) {
		memset(rp, 0, gr.n);
		memset(lp, 0, gl.n);
		for (size_t k = 0; k < rhs->n; k++)
			if (rhs->s[k].ok[i])
				rp[gr.of[k]] = 1;
		for (size_t k = 0; k < lhs->n; k++)
			if (lhs->s[k].ok[i])
				lp[gl.of[k]] = 1;
		for (size_t k = 0; k < lhs->n; k++) {
			struct vseries *s = &lhs->s[k];
			if (!s->ok[i])
				continue;
			bool in_r = l2r[k] >= 0 && rp[l2r[k]];
			if ((n->op == T_LAND && !in_r) || (n->op == T_LUNLESS && in_r))
				continue;
			if (lidx[k] < 0 && (lidx[k] = outmap_get(ev, &om, s->ls)) < 0)
				goto fail;
			if (outmap_set(ev, &om, (size_t)lidx[k], i, s->v[i], NULL) < 0)
				goto fail;
		}
		if (n->op != T_LOR)
			continue;
		for (size_t k = 0; k < rhs->n; k++) {
			struct vseries *s = &rhs->s[k];
			if (!s->ok[i] || (r2l[k] >= 0 && lp[r2l[k]]))
				continue;
			if (ridx[k] < 0 && (ridx[k] = outmap_get(ev, &om, s->ls)) < 0)
				goto fail;
			if (outmap_set(ev, &om, (size_t)ridx[k], i, s->v[i], NULL) < 0)
				goto fail;
		}
	}
	outmap_fini(&om);
	rc = 0;
	goto done;
fail:
	outmap_fini(&om);
done:
	sigtab_fini(&tr);
	sigtab_fini(&tl);
	return rc;
}

static int eval_binary(struct ev *ev, const struct node *n, const struct grid *g,
		       struct value *out)
{
	struct value l, r;
	if (eval_node(ev, n->lhs, g, &l) < 0 || eval_node(ev, n->rhs, g, &r) < 0)
		return -1;
	memset(out, 0, sizeof(*out));
	if (l.type == PROMQL_SCALAR && r.type == PROMQL_SCALAR) {
		out->type = PROMQL_SCALAR;
		out->sc = ev_alloc(ev, g->n * sizeof(double));
		if (!out->sc)
			return -1;
		for (size_t i = 0; i < g->n; i++) {
			bool keep;
			double v = binop(n->op, l.sc[i], r.sc[i], &keep);
			out->sc[i] = n->ret_bool ? (keep ? 1 : 0) : v;
		}
		return 0;
	}
	out->type = PROMQL_VECTOR;
	if (l.type == PROMQL_VECTOR && r.type == PROMQL_SCALAR)
		return binop_vec_scalar(ev, n, g, &l.v, r.sc, false, &out->v);
	if (l.type == PROMQL_SCALAR && r.type == PROMQL_VECTOR)
		return binop_vec_scalar(ev, n, g, &r.v, l.sc, true, &out->v);
	if (n->op == T_LAND || n->op == T_LOR || n->op == T_LUNLESS)
		return binop_set(ev, n, g, &l.v, &r.v, &out->v);
	return binop_vec_vec(ev, n, g, &l.v, &r.v, &out->v);
}

/* ---- aggregations ------------------------------------------------------------------------ */

static const struct labels *group_labels(struct ev *ev, const struct node *n,
					 const struct labels *ls)
{
	if (n->without) {
		const struct labels *x = labels_del(ev->a, ls, n->grouping, n->ngrouping);
		return x ? labels_drop_name(ev->a, x) : NULL;
	}
	return labels_keep(ev->a, ls, n->grouping, n->ngrouping);
}

/* Go's container/heap over series indexes, ordered by less(). */
struct kheap {
	size_t *h;
	size_t n;
	const struct vec *in;
	size_t step;
	bool bottom;
};

static bool kh_less(const struct kheap *k, size_t a, size_t b)
{
	double x = k->in->s[k->h[a]].v[k->step], y = k->in->s[k->h[b]].v[k->step];
	if (isnan(x))
		return true;
	return k->bottom ? x > y : x < y;
}

static void kh_swap(struct kheap *k, size_t a, size_t b)
{
	size_t t = k->h[a];
	k->h[a] = k->h[b];
	k->h[b] = t;
}

static void kh_up(struct kheap *k, size_t j)
{
	while (j > 0) {
		size_t i = (j - 1) / 2;
		if (i == j || !kh_less(k, j, i))
			break;
		kh_swap(k, i, j);
		j = i;
	}
}

static bool kh_down(struct kheap *k, size_t i0, size_t n)
{
	size_t i = i0;
	for (;;) {
		size_t j1 = 2 * i + 1;
		if (j1 >= n)
			break;
		size_t j = j1;
		if (j1 + 1 < n && kh_less(k, j1 + 1, j1))
			j = j1 + 1;
		if (!kh_less(k, j, i))
			break;
		kh_swap(k, i, j);
		i = j;
	}
	return i > i0;
}

static int agg_topk(struct ev *ev, const struct node *n, const struct grid *g, struct vec *in,
		    const double *param, size_t *gof, size_t ngroups, struct vec *out)
{
	bool bottom = n->op == T_BOTTOMK;
	size_t *heaps = ev_alloc(ev, (in->n + 1) * sizeof(size_t));
	size_t *hstart = ev_alloc(ev, (ngroups + 1) * sizeof(size_t));
	size_t *hlen = ev_alloc(ev, (ngroups + 1) * sizeof(size_t));
	size_t *gsize = ev_alloc(ev, (ngroups + 1) * sizeof(size_t));
	ssize_t *oidx = ev_alloc(ev, (in->n + 1) * sizeof(ssize_t));
	if (!heaps || !hstart || !hlen || !gsize || !oidx)
		return -1;
	memset(gsize, 0, ngroups * sizeof(size_t));
	for (size_t k = 0; k < in->n; k++) {
		gsize[gof[k]]++;
		oidx[k] = -1;
	}
	for (size_t gi = 0, off = 0; gi < ngroups; gi++) {
		hstart[gi] = off;
		off += gsize[gi];
	}
	struct outmap om;
	outmap_init(&om, out, g);
	int rc = -1;
	for (size_t i = 0; i < g->n; i++) {
		double f = param[i];
		if (!(f > -9.2233720368547758e18 && f < 9.2233720368547758e18)) {
			ev_fail(ev, PROMQL_ERR_EXECUTION, "Scalar value %s overflows int64",
				isnan(f) ? "NaN" : f > 0 ? "+Inf" : "-Inf");
			goto done;
		}
		int64_t kk = (int64_t)f;
		if (kk < 1)
			continue;
		memset(hlen, 0, ngroups * sizeof(size_t));
		for (size_t s = 0; s < in->n; s++) {
			if (!in->s[s].ok[i])
				continue;
			size_t gi = gof[s];
			struct kheap h = { heaps + hstart[gi], hlen[gi], in, i, bottom };
			if ((int64_t)h.n < kk) {
				h.h[h.n++] = s;
				kh_up(&h, h.n - 1);
				hlen[gi] = h.n;
				continue;
			}
			double top = in->s[h.h[0]].v[i], v = in->s[s].v[i];
			bool replace = bottom ? (top > v || (isnan(top) && !isnan(v)))
					      : (top < v || (isnan(top) && !isnan(v)));
			if (replace) {
				h.h[0] = s;
				if (kk > 1 && !kh_down(&h, 0, h.n))
					kh_up(&h, 0);
			}
		}
		for (size_t gi = 0; gi < ngroups; gi++)
			for (size_t j = 0; j < hlen[gi]; j++) {
				size_t s = heaps[hstart[gi] + j];
				if (oidx[s] < 0 && (oidx[s] = outmap_get(ev, &om, in->s[s].ls)) < 0)
					goto done;
				if (outmap_set(ev, &om, (size_t)oidx[s], i, in->s[s].v[i], NULL) < 0)
					goto done;
			}
	}
	rc = 0;
done:
	outmap_fini(&om);
	return rc;
}

static int agg_count_values(struct ev *ev, const struct node *n, const struct grid *g,
			    struct vec *in, const char *label, struct vec *out)
{
	if (!promql_valid_label_name(label))
		return ev_fail(ev, PROMQL_ERR_EXECUTION, "invalid label name \"%s\"", label);
	if (!(label = arena_strdup(ev->a, label)))
		return ev_fail(ev, PROMQL_ERR_INTERNAL, "out of memory");
	char **grouping = n->grouping;
	size_t ng = n->ngrouping;
	if (!n->without) {
		grouping = ev_alloc(ev, (ng + 1) * sizeof(char *));
		if (!grouping)
			return -1;
		if (ng)
			memcpy(grouping, n->grouping, ng * sizeof(char *));
		grouping[ng++] = (char *)label;
	}
	struct outmap om;
	outmap_init(&om, out, g);
	int rc = -1;
	for (size_t s = 0; s < in->n; s++) {
		for (size_t i = 0; i < g->n; i++) {
			if (!in->s[s].ok[i])
				continue;
			char val[512];
			promql_fmt_float(val, sizeof(val), in->s[s].v[i]);
			char *copy = ev_alloc(ev, strlen(val) + 1);
			if (!copy)
				goto done;
			strcpy(copy, val);
			const struct labels *ls = labels_set(ev->a, in->s[s].ls, label, copy);
			if (ls) {
				if (n->without) {
					ls = labels_del(ev->a, ls, grouping, ng);
					ls = ls ? labels_drop_name(ev->a, ls) : NULL;
				} else {
					ls = labels_keep(ev->a, ls, grouping, ng);
				}
			}
			ssize_t idx = outmap_get(ev, &om, ls);
			if (idx < 0)
				goto done;
			struct vseries *o = &out->s[idx];
			if (!o->ok[i]) {
				o->ok[i] = 1;
				o->v[i] = 0;
			}
			o->v[i]++;
		}
	}
	rc = 0;
done:
	outmap_fini(&om);
	return rc;
}

static int eval_aggregate(struct ev *ev, const struct node *n, const struct grid *g,
			  struct value *out)
{
	struct value in, param = { 0 };
	if (eval_node(ev, n->expr, g, &in) < 0)
		return -1;
	if (n->param && eval_node(ev, n->param, g, &param) < 0)
		return -1;
	memset(out, 0, sizeof(*out));
	out->type = PROMQL_VECTOR;
	if (n->op == T_COUNT_VALUES)
		return agg_count_values(ev, n, g, &in.v, param.str, &out->v);

	/* Groups by label set, in order of first appearance. */
	struct vec groups = { 0 };
	struct outmap om;
	outmap_init(&om, &groups, g);
	size_t *gof = ev_alloc(ev, (in.v.n + 1) * sizeof(size_t));
	if (!gof) {
		outmap_fini(&om);
		return -1;
	}
	for (size_t k = 0; k < in.v.n; k++) {
		ssize_t gi = outmap_get(ev, &om, group_labels(ev, n, in.v.s[k].ls));
		if (gi < 0) {
			outmap_fini(&om);
			return -1;
		}
		gof[k] = (size_t)gi;
	}
	outmap_fini(&om);
	if (n->op == T_TOPK || n->op == T_BOTTOMK)
		return agg_topk(ev, n, g, &in.v, param.sc, gof, groups.n, &out->v);

	size_t ng = groups.n;
	if (n->op == T_QUANTILE) {
		double *vals = ev_alloc(ev, (in.v.n + 1) * sizeof(double));
		size_t *cnt = ev_alloc(ev, (ng + 1) * sizeof(size_t));
		size_t *start = ev_alloc(ev, (ng + 1) * sizeof(size_t));
		size_t *gsize = ev_alloc(ev, (ng + 1) * sizeof(size_t));
		if (!vals || !cnt || !start || !gsize)
			return -1;
		memset(gsize, 0, ng * sizeof(size_t));
		for (size_t k = 0; k < in.v.n; k++)
			gsize[gof[k]]++;
		for (size_t gi = 0, off = 0; gi < ng; gi++) {
			start[gi] = off;
			off += gsize[gi];
		}
		for (size_t i = 0; i < g->n; i++) {
			memset(cnt, 0, ng * sizeof(size_t));
			for (size_t k = 0; k < in.v.n; k++)
				if (in.v.s[k].ok[i]) {
					size_t gi = gof[k];
					vals[start[gi] + cnt[gi]++] = in.v.s[k].v[i];
				}
			for (size_t gi = 0; gi < ng; gi++)
				if (cnt[gi]) {
					groups.s[gi].ok[i] = 1;
					groups.s[gi].v[i] = promql_quantile(param.sc[i], vals + start[gi],
									    cnt[gi]);
				}
		}
		goto finish;
	}

	/* sum avg count min max group stddev stdvar: one pass, series by series,
	 * so each (group, step) sees its inputs in series order. */
	double *mean = NULL, *cnt = ev_alloc(ev, (ng * g->n + 1) * sizeof(double));
	if (!cnt)
		return -1;
	memset(cnt, 0, ng * g->n * sizeof(double));
	if (n->op == T_AVG || n->op == T_STDDEV || n->op == T_STDVAR) {
		mean = ev_alloc(ev, (ng * g->n + 1) * sizeof(double));
		if (!mean)
			return -1;
	}
	for (size_t k = 0; k < in.v.n; k++) {
		struct vseries *s = &in.v.s[k], *o = &groups.s[gof[k]];
		double *c = cnt + gof[k] * g->n, *mu = mean ? mean + gof[k] * g->n : NULL;
		for (size_t i = 0; i < g->n; i++) {
			if (!s->ok[i])
				continue;
			double v = s->v[i];
			if (!o->ok[i]) {
				o->ok[i] = 1;
				c[i] = 1;
				switch (n->op) {
				case T_STDDEV:
				case T_STDVAR:
					o->v[i] = 0;
					mu[i] = v;
					break;
				case T_AVG:
					mu[i] = v;
					break;
				case T_GROUP:
					o->v[i] = 1;
					break;
				default:
					o->v[i] = v;
				}
				continue;
			}
			c[i]++;
			switch (n->op) {
			case T_SUM:
				o->v[i] += v;
				break;
			case T_AVG:
				if (isinf(mu[i])) {
					if (isinf(v) && (mu[i] > 0) == (v > 0))
						break;
					if (!isinf(v) && !isnan(v))
						break;
				}
				mu[i] += v / c[i] - mu[i] / c[i];
				break;
			case T_MAX:
				if (o->v[i] < v || isnan(o->v[i]))
					o->v[i] = v;
				break;
			case T_MIN:
				if (o->v[i] > v || isnan(o->v[i]))
					o->v[i] = v;
				break;
			case T_STDDEV:
			case T_STDVAR: {
				double d = v - mu[i];
				mu[i] += d / c[i];
				o->v[i] += d * (v - mu[i]);
				break;
			}
			default:
				break;
			}
		}
		if ((k & 63) == 0 && ev_check(ev) < 0)
			return -1;
	}
	for (size_t gi = 0; gi < ng; gi++) {
		struct vseries *o = &groups.s[gi];
		double *c = cnt + gi * g->n, *mu = mean ? mean + gi * g->n : NULL;
		for (size_t i = 0; i < g->n; i++) {
			if (!o->ok[i])
				continue;
			switch (n->op) {
			case T_AVG:
				o->v[i] = mu[i];
				break;
			case T_COUNT:
				o->v[i] = c[i];
				break;
			case T_STDVAR:
				o->v[i] /= c[i];
				break;
			case T_STDDEV:
				o->v[i] = sqrt(o->v[i] / c[i]);
				break;
			default:
				break;
			}
		}
	}
finish:
	/* Groups without any value anywhere (no input at any step) drop out. */
	for (size_t gi = 0; gi < ng; gi++) {
		struct vseries *o = &groups.s[gi];
		bool any = false;
		for (size_t i = 0; i < g->n && !any; i++)
			any = o->ok[i];
		if (any) {
			if (out->v.n == out->v.cap) {
				size_t nc = out->v.cap ? out->v.cap * 2 : 16;
				struct vseries *ns = ev_alloc(ev, nc * sizeof(*ns));
				if (!ns)
					return -1;
				if (out->v.n)
					memcpy(ns, out->v.s, out->v.n * sizeof(*ns));
				out->v.s = ns;
				out->v.cap = nc;
			}
			out->v.s[out->v.n++] = *o;
		}
	}
	return 0;
}

/* ---- unary, literals, dispatch -------------------------------------------------------------- */

int vec_check_distinct(struct ev *ev, const struct vec *v)
{
	struct outmap om;
	struct vec tmp = { 0 };
	struct grid g1 = { 0, 0, 1, 1 };
	outmap_init(&om, &tmp, &g1);
	bool dup = false;
	for (size_t k = 0; k < v->n && !dup; k++) {
		size_t before = tmp.n;
		if (outmap_get(ev, &om, v->s[k].ls) < 0)
			break;
		dup = tmp.n == before;
	}
	outmap_fini(&om);
	if (dup)
		return ev_fail(ev, PROMQL_ERR_EXECUTION,
			       "vector cannot contain metrics with the same labelset");
	return 0;
}

static int eval_unary(struct ev *ev, const struct node *n, const struct grid *g, struct value *out)
{
	if (eval_node(ev, n->expr, g, out) < 0)
		return -1;
	if (n->op != T_SUB)
		return 0;
	if (out->type == PROMQL_SCALAR) {
		for (size_t i = 0; i < g->n; i++)
			out->sc[i] = -out->sc[i];
		return 0;
	}
	for (size_t k = 0; k < out->v.n; k++) {
		struct vseries *s = &out->v.s[k];
		s->ls = labels_drop_name(ev->a, s->ls);
		if (!s->ls)
			return ev_fail(ev, PROMQL_ERR_INTERNAL, "out of memory");
		for (size_t i = 0; i < g->n; i++)
			s->v[i] = -s->v[i];
	}
	if (vec_check_distinct(ev, &out->v) < 0)
		return -1;
	return ev->failed ? -1 : 0;
}

/* A range vector at the top of an instant query: the points in its window. */
static int eval_matrix_top(struct ev *ev, const struct node *n, const struct grid *g,
			   struct value *out)
{
	struct rangearg r;
	if (rangearg_open(ev, n, g, &r) < 0)
		return -1;
	int64_t end = rangearg_end(&r, g, 0), start = end - r.range_ms;
	size_t cap = 0;
	out->type = PROMQL_MATRIX;
	out->m = NULL;
	out->nm = 0;
	const struct labels *ls;
	const struct promql_point *p;
	size_t np;
	int rc;
	while ((rc = rangearg_next(ev, &r, &ls, &p, &np)) > 0) {
		size_t lo = 0, hi;
		while (lo < np && p[lo].t <= start)
			lo++;
		for (hi = lo; hi < np && p[hi].t <= end; hi++)
			;
		if (hi == lo)
			continue;
		if (out->nm == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct promql_result_series *m = ev_alloc(ev, nc * sizeof(*m));
			if (!m)
				return -1;
			if (out->nm)
				memcpy(m, out->m, out->nm * sizeof(*m));
			out->m = m;
			cap = nc;
		}
		struct promql_result_series *s = &out->m[out->nm++];
		s->nlabels = ls->n;
		s->labels = ls->l;
		s->npoints = hi - lo;
		s->points = ev_alloc(ev, (hi - lo) * sizeof(*s->points));
		if (!s->points)
			return -1;
		memcpy(s->points, p + lo, (hi - lo) * sizeof(*s->points));
	}
	return rc;
}

int eval_node(struct ev *ev, const struct node *n, const struct grid *g, struct value *out)
{
	memset(out, 0, sizeof(*out));
	if (ev_check(ev) < 0)
		return -1;
	switch (n->kind) {
	case N_NUMBER:
		out->type = PROMQL_SCALAR;
		out->sc = ev_alloc(ev, g->n * sizeof(double));
		if (!out->sc)
			return -1;
		for (size_t i = 0; i < g->n; i++)
			out->sc[i] = n->num;
		return 0;
	case N_STRING:
		out->type = PROMQL_STRING;
		out->str = n->str;
		return 0;
	case N_PAREN:
		return eval_node(ev, n->expr, g, out);
	case N_UNARY:
		return eval_unary(ev, n, g, out);
	case N_VSEL:
		out->type = PROMQL_VECTOR;
		return eval_vsel_common(ev, n, g, false, &out->v);
	case N_MSEL:
	case N_SUBQ:
		return eval_matrix_top(ev, n, g, out);
	case N_CALL:
		return eval_call(ev, n, g, out);
	case N_AGG:
		return eval_aggregate(ev, n, g, out);
	case N_BIN:
		return eval_binary(ev, n, g, out);
	}
	return ev_fail(ev, PROMQL_ERR_INTERNAL, "unknown expression node");
}

/* ---- the driver ----------------------------------------------------------------------------- */

void promql_opts_defaults(struct promql_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->lookback_ms = 5 * 60 * 1000;
	o->timeout_ms = 2 * 60 * 1000;
	o->max_samples = 50000000;
	o->subquery_step_ms = 60 * 1000;
	o->read_threads = 1;
}

const char *promql_errtype_name(enum promql_errtype t)
{
	switch (t) {
	case PROMQL_ERR_BAD_DATA: return "bad_data";
	case PROMQL_ERR_EXECUTION: return "execution";
	case PROMQL_ERR_TIMEOUT: return "timeout";
	case PROMQL_ERR_CANCELED: return "canceled";
	case PROMQL_ERR_INTERNAL: return "internal";
	default: return "none";
	}
}

int promql_errtype_status(enum promql_errtype t)
{
	switch (t) {
	case PROMQL_ERR_BAD_DATA: return 400;
	case PROMQL_ERR_EXECUTION: return 422;
	case PROMQL_ERR_TIMEOUT:
	case PROMQL_ERR_CANCELED: return 503;
	default: return 500;
	}
}

void promql_result_fini(struct promql_result *r)
{
	if (!r)
		return;
	arena_free(&r->arena);
	memset(r, 0, sizeof(*r));
}

static int cmp_rseries(const void *a, const void *b)
{
	const struct promql_result_series *x = a, *y = b;
	return label_list_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

static int cmp_value_asc(const void *a, const void *b)
{
	double x = ((const struct promql_result_series *)a)->points[0].v;
	double y = ((const struct promql_result_series *)b)->points[0].v;
	if (isnan(x) || isnan(y))
		return isnan(x) - isnan(y);
	if (x != y)
		return (x > y) - (x < y);
	return cmp_rseries(a, b);
}

static int cmp_value_desc(const void *a, const void *b)
{
	double x = ((const struct promql_result_series *)a)->points[0].v;
	double y = ((const struct promql_result_series *)b)->points[0].v;
	if (isnan(x) || isnan(y))
		return isnan(x) - isnan(y);
	if (x != y)
		return (x < y) - (x > y);
	return cmp_rseries(a, b);
}

static int ev_setup(struct ev *ev, const struct promql_source *src, const struct promql_opts *o,
		    struct promql_result *res, struct promql_error *err, int64_t start, int64_t end,
		    int64_t step_hint)
{
	memset(res, 0, sizeof(*res));
	memset(err, 0, sizeof(*err));
	memset(ev, 0, sizeof(*ev));
	ev->src = src;
	ev->o = o;
	ev->a = &res->arena;
	ev->err = err;
	ev->q_start = start;
	ev->q_end = end;
	ev->step_hint_ms = step_hint;
	if (o->timeout_ms > 0)
		ev->deadline_ns = mono_ns() + o->timeout_ms * 1000000;
	return 0;
}

static int ev_finish(struct ev *ev, struct promql_result *res, int rc)
{
	prefetch_stop_all(ev);
	promql_points_fini(&ev->pts);
	res->samples = ev->loaded;
	if (rc < 0 || ev->failed) {
		if (!ev->failed)
			ev_fail(ev, PROMQL_ERR_INTERNAL, "evaluation failed");
		promql_result_fini(res);
		return -1;
	}
	return 0;
}

/* The series of v with points, into res (one per present step). */
static int vec_to_result(struct ev *ev, const struct vec *v, const struct grid *g,
			 struct promql_result *res)
{
	res->series = ev_alloc(ev, (v->n + 1) * sizeof(*res->series));
	if (!res->series)
		return -1;
	res->nseries = 0;
	for (size_t k = 0; k < v->n; k++) {
		const struct vseries *s = &v->s[k];
		size_t np = 0;
		for (size_t i = 0; i < g->n; i++)
			np += s->ok[i];
		if (!np)
			continue;
		struct promql_result_series *r = &res->series[res->nseries++];
		r->nlabels = s->ls->n;
		r->labels = s->ls->l;
		r->npoints = np;
		r->points = ev_alloc(ev, np * sizeof(*r->points));
		if (!r->points)
			return -1;
		np = 0;
		for (size_t i = 0; i < g->n; i++)
			if (s->ok[i]) {
				r->points[np].t = grid_t(g, i);
				r->points[np].v = s->v[i];
				np++;
			}
	}
	return 0;
}

int promql_eval_instant(const struct promql_source *src, const struct promql_opts *o,
			const struct promql_expr *e, int64_t t_ms, struct promql_result *res,
			struct promql_error *err)
{
	struct ev ev;
	ev_setup(&ev, src, o, res, err, t_ms, t_ms, 0);
	struct grid g = { t_ms, t_ms, 1, 1 };
	struct value v;
	int rc = eval_node(&ev, e->root, &g, &v);
	res->t = t_ms;
	if (rc == 0) {
		res->type = v.type;
		switch (v.type) {
		case PROMQL_SCALAR:
			res->scalar = v.sc[0];
			break;
		case PROMQL_STRING:
			res->string = arena_strdup(ev.a, v.str);
			if (!res->string)
				rc = ev_fail(&ev, PROMQL_ERR_INTERNAL, "out of memory");
			break;
		case PROMQL_MATRIX:
			res->series = v.m;
			res->nseries = v.nm;
			if (res->nseries)
				qsort(res->series, res->nseries, sizeof(*res->series), cmp_rseries);
			break;
		case PROMQL_VECTOR: {
			rc = vec_to_result(&ev, &v.v, &g, res);
			if (rc < 0)
				break;
			const struct node *top = unparen(e->root);
			int (*cmp)(const void *, const void *) = cmp_rseries;
			if (top->kind == N_CALL && top->fn->id == F_SORT)
				cmp = cmp_value_asc;
			else if (top->kind == N_CALL && top->fn->id == F_SORT_DESC)
				cmp = cmp_value_desc;
			else if (top->kind == N_AGG && top->op == T_TOPK)
				cmp = cmp_value_desc;
			else if (top->kind == N_AGG && top->op == T_BOTTOMK)
				cmp = cmp_value_asc;
			qsort(res->series, res->nseries, sizeof(*res->series), cmp);
			break;
		}
		default:
			rc = ev_fail(&ev, PROMQL_ERR_INTERNAL, "expression has no value");
		}
	}
	return ev_finish(&ev, res, rc);
}

int promql_eval_range(const struct promql_source *src, const struct promql_opts *o,
		      const struct promql_expr *e, int64_t start_ms, int64_t end_ms,
		      int64_t step_ms, struct promql_result *res, struct promql_error *err)
{
	struct ev ev;
	ev_setup(&ev, src, o, res, err, start_ms, end_ms, step_ms);
	if (step_ms <= 0 || end_ms < start_ms) {
		ev_fail(&ev, PROMQL_ERR_BAD_DATA, "invalid range: start %lld, end %lld, step %lld",
			(long long)start_ms, (long long)end_ms, (long long)step_ms);
		return ev_finish(&ev, res, -1);
	}
	enum promql_value_type t = promql_expr_type(e);
	if (t != PROMQL_SCALAR && t != PROMQL_VECTOR) {
		ev_fail(&ev, PROMQL_ERR_BAD_DATA,
			"invalid expression type \"%s\" for range query, must be Scalar or instant Vector",
			t == PROMQL_MATRIX ? "range vector" : "string");
		return ev_finish(&ev, res, -1);
	}
	struct grid g = { start_ms, end_ms, step_ms, (size_t)((end_ms - start_ms) / step_ms) + 1 };
	g.end = start_ms + (int64_t)(g.n - 1) * step_ms;
	struct value v;
	int rc = eval_node(&ev, e->root, &g, &v);
	res->type = PROMQL_MATRIX;
	if (rc == 0 && v.type == PROMQL_SCALAR) {
		struct vec one = { 0 };
		struct vseries *s = vec_add(&ev, &one, &g, labels_make(ev.a, NULL, 0));
		if (!s) {
			rc = -1;
		} else {
			memcpy(s->v, v.sc, g.n * sizeof(double));
			memset(s->ok, 1, g.n);
			rc = vec_to_result(&ev, &one, &g, res);
		}
	} else if (rc == 0) {
		rc = vec_to_result(&ev, &v.v, &g, res);
		if (rc == 0)
			qsort(res->series, res->nseries, sizeof(*res->series), cmp_rseries);
	}
	return ev_finish(&ev, res, rc);
}

/* ---- the series API ------------------------------------------------------------------------ */

ssize_t promql_series_match(const struct promql_source *src,
			    const struct promql_matcher *const *sel, const size_t *nsel,
			    size_t nselectors, int64_t mint, int64_t maxt, struct arena *a,
			    struct promql_series **out, struct promql_error *err)
{
	memset(err, 0, sizeof(*err));
	struct promql_series *all = NULL;
	size_t n = 0;
	for (size_t i = 0; i < nselectors; i++) {
		struct promql_series *s;
		ssize_t k = src->ops->select(src->ctx, sel[i], nsel[i], mint, maxt, a, &s);
		if (k < 0) {
			err->type = PROMQL_ERR_INTERNAL;
			snprintf(err->msg, sizeof(err->msg), "selecting series: %s", strerror((int)-k));
			return -1;
		}
		struct promql_series *m = arena_alloc(a, (n + (size_t)k + 1) * sizeof(*m));
		if (!m) {
			err->type = PROMQL_ERR_INTERNAL;
			snprintf(err->msg, sizeof(err->msg), "out of memory");
			return -1;
		}
		if (n)
			memcpy(m, all, n * sizeof(*m));
		memcpy(m + n, s, (size_t)k * sizeof(*m));
		all = m;
		n += (size_t)k;
	}
	if (n)
		qsort(all, n, sizeof(*all), promql_series_cmp);
	size_t w = 0;
	for (size_t i = 0; i < n; i++)
		if (w == 0 || promql_series_cmp(&all[w - 1], &all[i]) != 0)
			all[w++] = all[i];
	*out = all;
	return (ssize_t)w;
}

