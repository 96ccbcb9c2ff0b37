/*
 * promql_eval_int.h - the evaluator's shared state, between promql_eval.c
 * (selectors, operators, aggregations, the driver) and promql_funcs.c (the
 * function table and every function). Private to storage/promql*.c.
 *
 * Every expression is evaluated over a whole grid of evaluation times at
 * once, as Prometheus' range evaluation does: an instant vector is a set of
 * series, each with one dense array of values over the grid and a mark for
 * the steps where it has a value. An instant query is a grid of one step.
 */
#ifndef MONITOR_PROMQL_EVAL_INT_H
#define MONITOR_PROMQL_EVAL_INT_H

#include "storage/promql_int.h"

struct grid {
	int64_t start, end, step;
	size_t n;
};
static inline int64_t grid_t(const struct grid *g, size_t i)
{
	return g->start + (int64_t)i * g->step;
}

/* One series of an instant vector over the grid. */
struct vseries {
	const struct labels *ls;
	double *v;
	uint8_t *ok;                 /* 1 where the series has a value */
	int64_t *ts;                 /* vector selectors for timestamp(): sample times */
};

struct vec {
	struct vseries *s;
	size_t n, cap;
};

/* A value over the grid. MATRIX only at the top of an instant query. */
struct value {
	enum promql_value_type type;
	double *sc;                  /* SCALAR: one per step */
	struct vec v;                /* VECTOR */
	const char *str;             /* STRING */
	struct promql_result_series *m;  /* MATRIX */
	size_t nm;
};

struct ev {
	const struct promql_source *src;
	const struct promql_opts *o;
	struct arena *a;
	int64_t q_start, q_end;      /* for @ start() and @ end() */
	int64_t step_hint_ms;
	int64_t deadline_ns;
	uint64_t samples, loaded;
	struct promql_error *err;
	bool failed;
	struct promql_points pts;    /* scratch for reading a series */
	unsigned ticks;
	struct prefetch *prefetch;   /* helper threads reading ahead (promql_prefetch.c) */
};

/* Records the first error; returns -1. */
int ev_fail(struct ev *ev, enum promql_errtype t, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Checks the deadline and cancellation; -1 after recording why. */
int ev_check(struct ev *ev);
/* Counts n samples against the limit; -1 past it. */
int ev_charge(struct ev *ev, uint64_t n);

/* A new series over g (values zeroed, none present), appended to v. */
struct vseries *vec_add(struct ev *ev, struct vec *v, const struct grid *g,
			const struct labels *ls);
void *ev_alloc(struct ev *ev, size_t n);

/*
 * Series of an output vector found by label set, so results that several
 * inputs map to share one series; set_point refuses a second value for the
 * same series at the same step.
 */
struct outmap {
	struct vec *out;
	const struct grid *g;
	size_t *slot;                /* index + 1, 0 empty */
	size_t cap, n;
};
void outmap_init(struct outmap *m, struct vec *out, const struct grid *g);
void outmap_fini(struct outmap *m);
/* The series with labels ls, created when missing; -1 on failure. */
ssize_t outmap_get(struct ev *ev, struct outmap *m, const struct labels *ls);
/* Sets series idx at step i; -1 (with the error) when it already has one. */
int outmap_set(struct ev *ev, struct outmap *m, size_t idx, size_t i, double v, const char *dupmsg);
/* outmap_set on the series with labels ls, found (or made) the first time,
 * when *idx < 0, and kept in *idx for the next steps; -1 with the error. */
int outmap_put(struct ev *ev, struct outmap *m, ssize_t *idx, const struct labels *ls,
	       size_t i, double v);
/* Fails the evaluation with Prometheus's "vector cannot contain metrics
 * with the same labelset" when two series of v have one label set (after
 * a unary minus or a function dropped the names); -1 then, else 0. */
int vec_check_distinct(struct ev *ev, const struct vec *v);

/*
 * A range-vector argument (a matrix selector or a subquery) read one series
 * at a time: window ends are (at or the step's time) - offset, and windows
 * are left-open (end - range, end]. Stale markers are dropped.
 */
struct rangearg {
	const struct node *n;        /* N_MSEL or N_SUBQ */
	int64_t range_ms, offset_ms;
	bool pinned;                 /* @: one window for every step */
	int64_t pin_ms;
	const struct node *vs;       /* N_MSEL: the selector */
	struct promql_series *sel;
	size_t nsel;
	int64_t mint, maxt;
	struct vec inner;            /* N_SUBQ: the inner result */
	struct grid ig;
	struct promql_point *buf;    /* N_SUBQ: one series' points */
	size_t next;
	struct prefetch *pf;         /* N_MSEL over many series: read ahead */
	bool held;                   /* series next - 1 is still in its slot */
};
int rangearg_open(struct ev *ev, const struct node *arg, const struct grid *g,
		  struct rangearg *r);
/* The next series: its labels and points (valid until the next call).
 * Returns 1, 0 at the end, -1 on error. */
int rangearg_next(struct ev *ev, struct rangearg *r, const struct labels **ls,
		  const struct promql_point **p, size_t *n);
/* The end of the window at step i of g. */
static inline int64_t rangearg_end(const struct rangearg *r, const struct grid *g, size_t i)
{
	return (r->pinned ? r->pin_ms : grid_t(g, i)) - r->offset_ms;
}
/*
 * Reading ahead (promql_prefetch.c). prefetch_start starts a helper thread
 * loading sel[0..nsel) in [mint, maxt] ahead of the evaluator, or returns
 * NULL (few series, read_threads 0, no thread: read them directly); the
 * evaluation owns it. prefetch_take waits for series i (reading it itself
 * when the helper has not claimed it) and returns the source's answer with
 * its points in *out, valid until prefetch_release(i), which must come
 * before taking i + 1. prefetch_stop_all stops and joins the helpers and
 * frees them (ev_finish calls it).
 */
struct prefetch;
struct prefetch *prefetch_start(struct ev *ev, const struct promql_series *sel, size_t nsel,
				int64_t mint, int64_t maxt);
int prefetch_take(struct prefetch *pf, size_t i, struct promql_points **out);
void prefetch_release(struct prefetch *pf, size_t i);
void prefetch_stop_all(struct ev *ev);

/* Labels an absent() of this argument reports (equality matchers). */
const struct labels *absent_labels(struct ev *ev, const struct node *arg);
/* Unwraps parentheses. */
const struct node *unparen(const struct node *n);
/* Evaluates a vector selector keeping each value's sample time. */
int eval_vsel_ts(struct ev *ev, const struct node *n, const struct grid *g, struct vec *out);

int eval_node(struct ev *ev, const struct node *n, const struct grid *g, struct value *out);
/* The time an @ modifier pins a selector to. */
int64_t ev_at_time(const struct ev *ev, const struct node *n);
/* Evaluates a call (promql_funcs.c). */
int eval_call(struct ev *ev, const struct node *n, const struct grid *g, struct value *out);

/* Go's math.Max/Min (NaN wins, +0 > -0). */
double go_max(double a, double b);
double go_min(double a, double b);
/* Prometheus' quantile over values (sorted in place). */
double promql_quantile(double q, double *v, size_t n);
/* Go's Kahan-Neumaier step. */
static inline void kahan_inc(double inc, double *sum, double *c)
{
	double t = *sum + inc;
	if ((*sum >= 0 ? *sum : -*sum) >= (inc >= 0 ? inc : -inc))
		*c += (*sum - t) + inc;
	else
		*c += (inc - t) + *sum;
	*sum = t;
}

/* promql_util.c: label_replace's $1/${name} expansion; false: no match. */
bool promql_regex_expand(const struct promql_regex *re, const char *s, const char *tmpl,
			 struct buf *out);

#endif
