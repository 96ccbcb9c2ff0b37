/*
 * promql_funcs.c - PromQL's functions: the table the parser checks calls
 * against, and their evaluation over the grid.
 *
 * Functions of a range vector (rate, *_over_time, ...) read their argument
 * one series at a time through a rangearg and slide a left-open window
 * (end - range, end] over its points with two cursors, so a range query
 * touches each point a bounded number of times. The arithmetic follows
 * Prometheus' functions.go: extrapolation in rate/increase/delta, Kahan
 * sums in the regression behind deriv and predict_linear, Go's math for
 * NaN and infinities.
 */
#include "storage/promql_eval_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define V PROMQL_VECTOR
#define M PROMQL_MATRIX
#define S PROMQL_SCALAR
#define STR PROMQL_STRING

static const struct func funcs[] = {
	{ "abs", F_ABS, { V }, 1, 0, V },
	{ "absent", F_ABSENT, { V }, 1, 0, V },
	{ "absent_over_time", F_ABSENT_OVER_TIME, { M }, 1, 0, V },
	{ "acos", F_ACOS, { V }, 1, 0, V },
	{ "acosh", F_ACOSH, { V }, 1, 0, V },
	{ "asin", F_ASIN, { V }, 1, 0, V },
	{ "asinh", F_ASINH, { V }, 1, 0, V },
	{ "atan", F_ATAN, { V }, 1, 0, V },
	{ "atanh", F_ATANH, { V }, 1, 0, V },
	{ "avg_over_time", F_AVG_OVER_TIME, { M }, 1, 0, V },
	{ "ceil", F_CEIL, { V }, 1, 0, V },
	{ "changes", F_CHANGES, { M }, 1, 0, V },
	{ "clamp", F_CLAMP, { V, S, S }, 3, 0, V },
	{ "clamp_max", F_CLAMP_MAX, { V, S }, 2, 0, V },
	{ "clamp_min", F_CLAMP_MIN, { V, S }, 2, 0, V },
	{ "cos", F_COS, { V }, 1, 0, V },
	{ "cosh", F_COSH, { V }, 1, 0, V },
	{ "count_over_time", F_COUNT_OVER_TIME, { M }, 1, 0, V },
	{ "days_in_month", F_DAYS_IN_MONTH, { V }, 1, 1, V },
	{ "day_of_month", F_DAY_OF_MONTH, { V }, 1, 1, V },
	{ "day_of_week", F_DAY_OF_WEEK, { V }, 1, 1, V },
	{ "day_of_year", F_DAY_OF_YEAR, { V }, 1, 1, V },
	{ "deg", F_DEG, { V }, 1, 0, V },
	{ "delta", F_DELTA, { M }, 1, 0, V },
	{ "deriv", F_DERIV, { M }, 1, 0, V },
	{ "exp", F_EXP, { V }, 1, 0, V },
	{ "floor", F_FLOOR, { V }, 1, 0, V },
	{ "forecast", F_FORECAST, { M, S }, 2, 0, V },
	{ "forecast_exhaustion", F_FORECAST_EXHAUSTION, { M, S }, 2, 0, V },
	{ "histogram_quantile", F_HISTOGRAM_QUANTILE, { S, V }, 2, 0, V },
	{ "holt_winters", F_HOLT_WINTERS, { M, S, S }, 3, 0, V },
	{ "hour", F_HOUR, { V }, 1, 1, V },
	{ "idelta", F_IDELTA, { M }, 1, 0, V },
	{ "increase", F_INCREASE, { M }, 1, 0, V },
	{ "irate", F_IRATE, { M }, 1, 0, V },
	{ "label_join", F_LABEL_JOIN, { V, STR, STR, STR }, 4, -1, V },
	{ "label_replace", F_LABEL_REPLACE, { V, STR, STR, STR, STR }, 5, 0, V },
	{ "last_over_time", F_LAST_OVER_TIME, { M }, 1, 0, V },
	{ "ln", F_LN, { V }, 1, 0, V },
	{ "log10", F_LOG10, { V }, 1, 0, V },
	{ "log2", F_LOG2, { V }, 1, 0, V },
	{ "max_over_time", F_MAX_OVER_TIME, { M }, 1, 0, V },
	{ "min_over_time", F_MIN_OVER_TIME, { M }, 1, 0, V },
	{ "minute", F_MINUTE, { V }, 1, 1, V },
	{ "month", F_MONTH, { V }, 1, 1, V },
	{ "pi", F_PI, { 0 }, 0, 0, S },
	{ "predict_linear", F_PREDICT_LINEAR, { M, S }, 2, 0, V },
	{ "present_over_time", F_PRESENT_OVER_TIME, { M }, 1, 0, V },
	{ "quantile_over_time", F_QUANTILE_OVER_TIME, { S, M }, 2, 0, V },
	{ "rad", F_RAD, { V }, 1, 0, V },
	{ "rate", F_RATE, { M }, 1, 0, V },
	{ "resets", F_RESETS, { M }, 1, 0, V },
	{ "round", F_ROUND, { V, S }, 2, 1, V },
	{ "scalar", F_SCALAR, { V }, 1, 0, S },
	{ "sgn", F_SGN, { V }, 1, 0, V },
	{ "sin", F_SIN, { V }, 1, 0, V },
	{ "sinh", F_SINH, { V }, 1, 0, V },
	{ "sort", F_SORT, { V }, 1, 0, V },
	{ "sort_desc", F_SORT_DESC, { V }, 1, 0, V },
	{ "sqrt", F_SQRT, { V }, 1, 0, V },
	{ "stddev_over_time", F_STDDEV_OVER_TIME, { M }, 1, 0, V },
	{ "stdvar_over_time", F_STDVAR_OVER_TIME, { M }, 1, 0, V },
	{ "sum_over_time", F_SUM_OVER_TIME, { M }, 1, 0, V },
	{ "tan", F_TAN, { V }, 1, 0, V },
	{ "tanh", F_TANH, { V }, 1, 0, V },
	{ "time", F_TIME, { 0 }, 0, 0, S },
	{ "timestamp", F_TIMESTAMP, { V }, 1, 0, V },
	{ "vector", F_VECTOR, { S }, 1, 0, V },
	{ "year", F_YEAR, { V }, 1, 1, V },
};

#undef V
#undef M
#undef S
#undef STR

const struct func *promql_func_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(funcs); i++)
		if (!strcmp(funcs[i].name, name))
			return &funcs[i];
	return NULL;
}

/* ---- functions of a range vector ------------------------------------------------------ */

/*
 * Prometheus' extrapolatedRate for rate, increase and delta. resets, when
 * given, is the running sum of counter-reset corrections of the whole
 * series (resets[i]: what resets up to point i add), so a window's
 * correction is one subtraction instead of a walk over its points;
 * no_resets says the whole series has none (the usual counter), so there
 * is no correction at all.
 */
static bool extrapolated_rate(const struct promql_point *p, size_t n, const double *resets,
			      bool no_resets, int64_t range_start, int64_t range_end,
			      int64_t range_ms, bool counter, bool is_rate, double *out)
{
	if (n < 2)
		return false;
	double result = p[n - 1].v - p[0].v;
	if (counter && no_resets) {
		/* nothing to add */
	} else if (counter && resets) {
		result += resets[n - 1] - resets[0];
	} else if (counter) {
		double prev = p[0].v;
		for (size_t i = 1; i < n; i++) {
			if (p[i].v < prev)
				result += prev;
			prev = p[i].v;
		}
	}
	double to_start = (double)(p[0].t - range_start) / 1000;
	double to_end = (double)(range_end - p[n - 1].t) / 1000;
	double sampled = (double)(p[n - 1].t - p[0].t) / 1000;
	double avg_between = sampled / (double)(n - 1);
	if (counter && result > 0 && p[0].v >= 0) {
		double to_zero = sampled * (p[0].v / result);
		if (to_zero < to_start)
			to_start = to_zero;
	}
	double threshold = avg_between * 1.1;
	double interval = sampled;
	interval += to_start < threshold ? to_start : avg_between / 2;
	interval += to_end < threshold ? to_end : avg_between / 2;
	double factor = interval / sampled;
	if (is_rate)
		factor /= (double)range_ms / 1000;
	*out = result * factor;
	return true;
}

/* Prometheus' linearRegression with Kahan sums. */
static bool linear_regression(const struct promql_point *p, size_t n, int64_t t_ref, double *slope,
			      double *intercept)
{
	double sx = 0, cx = 0, sy = 0, cy = 0, sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
	double init = p[0].v;
	bool const_y = true;
	for (size_t i = 0; i < n; i++) {
		if (const_y && i > 0 && p[i].v != init)
			const_y = false;
		double x = (double)(p[i].t - t_ref) / 1e3;
		kahan_inc(x, &sx, &cx);
		kahan_inc(p[i].v, &sy, &cy);
		kahan_inc(x * p[i].v, &sxy, &cxy);
		kahan_inc(x * x, &sx2, &cx2);
	}
	if (const_y) {
		if (isinf(init)) {
			*slope = *intercept = NAN;
			return true;
		}
		*slope = 0;
		*intercept = init;
		return true;
	}
	double dn = (double)n;
	sx += cx;
	sy += cy;
	sxy += cxy;
	sx2 += cx2;
	double cov = sxy - sx * sy / dn;
	double var = sx2 - sx * sx / dn;
	*slope = cov / var;
	*intercept = sy / dn - *slope * sx / dn;
	return true;
}

struct rctx {
	const struct node *call;
	const double *const *sc;     /* scalar arguments per step */
	size_t step;
	int64_t t_eval;              /* the step's time (predict_linear) */
	int64_t range_start, range_end, range_ms;
	double *scratch;
	const double *resets;        /* rate/increase: running reset corrections, by window */
	bool no_resets;              /* rate/increase: the series never decreases */
};

/* One window of one series; false: no output at this step. */
static int range_fn(struct ev *ev, const struct rctx *c, const struct promql_point *p, size_t n,
		    double *out)
{
	enum func_id id = c->call->fn->id;
	switch (id) {
	case F_RATE:
	case F_INCREASE:
	case F_DELTA:
		return extrapolated_rate(p, n, c->resets, c->no_resets, c->range_start, c->range_end,
					 c->range_ms, id != F_DELTA, id == F_RATE, out);
	case F_IRATE:
	case F_IDELTA: {
		if (n < 2)
			return 0;
		const struct promql_point *last = &p[n - 1], *prev = &p[n - 2];
		double v = (id == F_IRATE && last->v < prev->v) ? last->v : last->v - prev->v;
		int64_t dt = last->t - prev->t;
		if (dt == 0)
			return 0;
		if (id == F_IRATE)
			v /= (double)dt / 1000;
		*out = v;
		return 1;
	}
	case F_DERIV: {
		if (n < 2)
			return 0;
		double slope, icpt;
		linear_regression(p, n, p[0].t, &slope, &icpt);
		*out = slope;
		return 1;
	}
	case F_PREDICT_LINEAR: {
		if (n < 2)
			return 0;
		double slope, icpt;
		linear_regression(p, n, c->t_eval, &slope, &icpt);
		*out = slope * c->sc[1][c->step] + icpt;
		return 1;
	}
	case F_RESETS:
	case F_CHANGES: {
		double k = 0, prev = p[0].v;
		for (size_t i = 1; i < n; i++) {
			double cur = p[i].v;
			if (id == F_RESETS ? cur < prev : !(cur == prev || (isnan(cur) && isnan(prev))))
				k++;
			prev = cur;
		}
		*out = k;
		return 1;
	}
	case F_AVG_OVER_TIME: {
		double mean = 0, count = 0;
		for (size_t i = 0; i < n; i++) {
			double v = p[i].v;
			count++;
			if (isinf(mean)) {
				if (isinf(v) && (mean > 0) == (v > 0))
					continue;
				if (!isinf(v) && !isnan(v))
					continue;
			}
			mean += v / count - mean / count;
		}
		*out = mean;
		return 1;
	}
	case F_SUM_OVER_TIME: {
		double sum = 0, comp = 0;
		for (size_t i = 0; i < n; i++)
			kahan_inc(p[i].v, &sum, &comp);
		*out = isinf(sum) ? sum : sum + comp;
		return 1;
	}
	case F_COUNT_OVER_TIME:
		*out = (double)n;
		return 1;
	case F_MAX_OVER_TIME:
	case F_MIN_OVER_TIME: {
		double m = p[0].v;
		for (size_t i = 0; i < n; i++) {
			double v = p[i].v;
			if ((id == F_MAX_OVER_TIME ? v > m : v < m) || isnan(m))
				m = v;
		}
		*out = m;
		return 1;
	}
	case F_LAST_OVER_TIME:
		*out = p[n - 1].v;
		return 1;
	case F_PRESENT_OVER_TIME:
	case F_ABSENT_OVER_TIME:
		*out = 1;
		return 1;
	case F_STDDEV_OVER_TIME:
	case F_STDVAR_OVER_TIME: {
		double count = 0, mean = 0, cmean = 0, aux = 0, caux = 0;
		for (size_t i = 0; i < n; i++) {
			double v = p[i].v;
			count++;
			double delta = v - (mean + cmean);
			kahan_inc(delta / count, &mean, &cmean);
			kahan_inc(delta * (v - (mean + cmean)), &aux, &caux);
		}
		double var = (aux + caux) / count;
		*out = id == F_STDDEV_OVER_TIME ? sqrt(var) : var;
		return 1;
	}
	case F_QUANTILE_OVER_TIME: {
		for (size_t i = 0; i < n; i++)
			c->scratch[i] = p[i].v;
		*out = promql_quantile(c->sc[0][c->step], c->scratch, n);
		return 1;
	}
	case F_HOLT_WINTERS: {
		double sf = c->sc[1][c->step], tf = c->sc[2][c->step];
		if (!(sf > 0 && sf < 1))
			return ev_fail(ev, PROMQL_ERR_EXECUTION,
				       "invalid smoothing factor. Expected: 0 < sf < 1, got: %f", sf);
		if (!(tf > 0 && tf < 1))
			return ev_fail(ev, PROMQL_ERR_EXECUTION,
				       "invalid trend factor. Expected: 0 < tf < 1, got: %f", tf);
		if (n < 2)
			return 0;
		double s0 = 0, s1 = p[0].v, b = p[1].v - p[0].v;
		for (size_t i = 1; i < n; i++) {
			double x = sf * p[i].v;
			if (i > 1)
				b = tf * (s1 - s0) + (1 - tf) * b;
			double y = (1 - sf) * (s1 + b);
			s0 = s1;
			s1 = x + y;
		}
		*out = s1;
		return 1;
	}
	case F_FORECAST:
	case F_FORECAST_EXHAUSTION: {
		const struct promql_forecaster *fc = ev->o->forecaster;
		if (!fc)
			return ev_fail(ev, PROMQL_ERR_EXECUTION, "%s: no forecaster in this engine",
				       c->call->fn->name);
		return fc->eval(p, n, c->t_eval, c->range_ms, c->sc[1][c->step],
				id == F_FORECAST_EXHAUSTION, out) ? 1 : 0;
	}
	default:
		return ev_fail(ev, PROMQL_ERR_INTERNAL, "%s is not a range function", c->call->fn->name);
	}
}

static int eval_range_call(struct ev *ev, const struct node *n, const struct grid *g,
			   struct value *out)
{
	const struct func *f = n->fn;
	size_t mi = 0;
	while (mi < n->nargs && n->args[mi]->type != PROMQL_MATRIX)
		mi++;
	const double *sc[FUNC_MAX_ARGS] = { 0 };
	for (size_t k = 0; k < n->nargs; k++) {
		if (k == mi)
			continue;
		struct value a;
		if (eval_node(ev, n->args[k], g, &a) < 0)
			return -1;
		sc[k] = a.sc;
	}
	struct rangearg r;
	if (rangearg_open(ev, n->args[mi], g, &r) < 0)
		return -1;
	out->type = PROMQL_VECTOR;
	bool absent = f->id == F_ABSENT_OVER_TIME;
	uint8_t *found = NULL;
	if (absent) {
		found = ev_alloc(ev, g->n);
		if (!found)
			return -1;
		memset(found, 0, g->n);
	}
	struct rctx c = { .call = n, .sc = sc, .range_ms = r.range_ms };
	const struct labels *ls;
	const struct promql_point *p;
	size_t np;
	int rc;
	bool counter = f->id == F_RATE || f->id == F_INCREASE;
	double *resets = NULL;
	while ((rc = rangearg_next(ev, &r, &ls, &p, &np)) > 0) {
		if (f->id == F_QUANTILE_OVER_TIME || counter) {
			double *nb = realloc(c.scratch, (np + 1) * sizeof(double));
			if (!nb) {
				free(c.scratch);
				return ev_fail(ev, PROMQL_ERR_INTERNAL, "out of memory");
			}
			c.scratch = nb;
		}
		/* A counter that never decreases needs no correction: looking
		 * costs one pass without the running sum's chain of additions. */
		bool dec = false;
		for (size_t k = 1; counter && k < np; k++)
			dec |= p[k].v < p[k - 1].v;
		c.no_resets = counter && !dec;
		resets = NULL;
		if (dec) {
			/* running sum of the values a counter lost at each reset */
			resets = c.scratch;
			resets[0] = 0;
			for (size_t k = 1; k < np; k++)
				resets[k] = resets[k - 1] + (p[k].v < p[k - 1].v ? p[k - 1].v : 0);
		}
		struct vseries *s = NULL;
		size_t lo = 0, hi = 0;
		for (size_t i = 0; i < g->n; i++) {
			if ((i & 255) == 255 && ev_check(ev) < 0) {
				free(c.scratch);
				return -1;
			}
			int64_t end = rangearg_end(&r, g, i), start = end - r.range_ms;
			if (r.pinned)
				lo = hi = 0;
			while (hi < np && p[hi].t <= end)
				hi++;
			while (lo < hi && p[lo].t <= start)
				lo++;
			if (hi == lo)
				continue;
			c.step = i;
			c.resets = resets ? resets + lo : NULL;
			c.t_eval = grid_t(g, i);
			c.range_start = start;
			c.range_end = end;
			double v = 0;
			int ok = range_fn(ev, &c, p + lo, hi - lo, &v);
			if (ok < 0) {
				free(c.scratch);
				return -1;
			}
			if (!ok)
				continue;
			if (absent) {
				found[i] = 1;
				continue;
			}
			if (!s) {
				const struct labels *ol = f->id == F_LAST_OVER_TIME
							  ? ls : labels_drop_name(ev->a, ls);
				if (!(s = vec_add(ev, &out->v, g, ol))) {
					free(c.scratch);
					return -1;
				}
			}
			s->ok[i] = 1;
			s->v[i] = v;
		}
	}
	free(c.scratch);
	if (rc < 0)
		return -1;
	if (absent) {
		struct vseries *s = NULL;
		for (size_t i = 0; i < g->n; i++) {
			if (found[i])
				continue;
			if (!s && !(s = vec_add(ev, &out->v, g, absent_labels(ev, n->args[mi]))))
				return -1;
			s->ok[i] = 1;
			s->v[i] = 1;
		}
		return 0;
	}
	if (vec_check_distinct(ev, &out->v) < 0)
		return -1;
	return ev->failed ? -1 : 0;
}

/* ---- functions of instant vectors -------------------------------------------------------- */

static double simple(enum func_id id, double v)
{
	switch (id) {
	case F_ABS: return fabs(v);
	case F_CEIL: return ceil(v);
	case F_FLOOR: return floor(v);
	case F_EXP: return exp(v);
	case F_SQRT: return sqrt(v);
	case F_LN: return log(v);
	case F_LOG2: return log2(v);
	case F_LOG10: return log10(v);
	case F_SIN: return sin(v);
	case F_COS: return cos(v);
	case F_TAN: return tan(v);
	case F_ASIN: return asin(v);
	case F_ACOS: return acos(v);
	case F_ATAN: return atan(v);
	case F_SINH: return sinh(v);
	case F_COSH: return cosh(v);
	case F_TANH: return tanh(v);
	case F_ASINH: return asinh(v);
	case F_ACOSH: return acosh(v);
	case F_ATANH: return atanh(v);
	case F_DEG: return v * 180 / M_PI;
	case F_RAD: return v * M_PI / 180;
	case F_SGN: return v < 0 ? -1 : v > 0 ? 1 : v;
	default: return NAN;
	}
}

static double date_part(enum func_id id, int64_t secs)
{
	time_t t = (time_t)secs;
	struct tm tm;
	if (!gmtime_r(&t, &tm))
		return NAN;
	switch (id) {
	case F_DAY_OF_MONTH: return tm.tm_mday;
	case F_DAY_OF_WEEK: return tm.tm_wday;
	case F_DAY_OF_YEAR: return tm.tm_yday + 1;
	case F_HOUR: return tm.tm_hour;
	case F_MINUTE: return tm.tm_min;
	case F_MONTH: return tm.tm_mon + 1;
	case F_YEAR: return tm.tm_year + 1900.0;
	case F_DAYS_IN_MONTH: {
		static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
		int y = tm.tm_year + 1900;
		bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
		return days[tm.tm_mon] + (tm.tm_mon == 1 && leap);
	}
	default: return NAN;
	}
}

static bool is_date_fn(enum func_id id)
{
	return id == F_DAY_OF_MONTH || id == F_DAY_OF_WEEK || id == F_DAY_OF_YEAR || id == F_HOUR ||
	       id == F_MINUTE || id == F_MONTH || id == F_YEAR || id == F_DAYS_IN_MONTH;
}

/* Maps every series of in to labels (map_labels) and a value (map_value),
 * merging series that end up with the same labels. */
static int map_series(struct ev *ev, const struct node *n, const struct grid *g, struct vec *in,
		      const double *const *sc, struct vec *out)
{
	enum func_id id = n->fn->id;
	struct outmap om;
	outmap_init(&om, out, g);
	int rc = 0;
	for (size_t k = 0; k < in->n && rc == 0; k++) {
		struct vseries *s = &in->s[k];
		const struct labels *ls = id == F_SORT || id == F_SORT_DESC
					  ? s->ls : labels_drop_name(ev->a, s->ls);
		ssize_t idx = -1;
		for (size_t i = 0; i < g->n; i++) {
			if (!s->ok[i])
				continue;
			double v = s->v[i], r;
			switch (id) {
			case F_CLAMP:
				if (sc[2][i] < sc[1][i])
					continue;
				r = go_max(sc[1][i], go_min(sc[2][i], v));
				break;
			case F_CLAMP_MAX:
				r = go_min(sc[1][i], v);
				break;
			case F_CLAMP_MIN:
				r = go_max(sc[1][i], v);
				break;
			case F_ROUND: {
				double to = sc[1] ? sc[1][i] : 1;
				double inv = 1.0 / to;
				r = floor(v * inv + 0.5) / inv;
				break;
			}
			case F_SORT:
			case F_SORT_DESC:
				r = v;
				break;
			default:
				r = is_date_fn(id) ? date_part(id, (int64_t)v) : simple(id, v);
			}
			if (outmap_put(ev, &om, &idx, ls, i, r) < 0) {
				rc = -1;
				break;
			}
		}
	}
	outmap_fini(&om);
	return rc;
}

static int relabel(struct ev *ev, const struct node *n, const struct grid *g, struct vec *in,
		   struct value *args, struct vec *out)
{
	bool replace = n->fn->id == F_LABEL_REPLACE;
	/* Results outlive the expression: the name it supplies is copied. */
	const char *dst = arena_strdup(ev->a, args[1].str);
	if (!dst)
		return ev_fail(ev, PROMQL_ERR_INTERNAL, "out of memory");
	struct promql_regex *re = NULL;
	if (replace) {
		char err[512];
		re = promql_regex_new(args[4].str, err, sizeof(err));
		if (!re)
			return ev_fail(ev, PROMQL_ERR_EXECUTION,
				       "invalid regular expression in label_replace(): %s", args[4].str);
		if (!promql_valid_label_name(dst)) {
			promql_regex_free(re);
			return ev_fail(ev, PROMQL_ERR_EXECUTION,
				       "invalid destination label name in label_replace(): %s", dst);
		}
	} else {
		for (size_t i = 3; i < n->nargs; i++)
			if (!promql_valid_label_name(args[i].str))
				return ev_fail(ev, PROMQL_ERR_EXECUTION,
					       "invalid source label name in label_join(): %s",
					       args[i].str);
		if (!promql_valid_label_name(dst))
			return ev_fail(ev, PROMQL_ERR_EXECUTION,
				       "invalid destination label name in label_join(): %s", dst);
	}
	struct outmap om;
	outmap_init(&om, out, g);
	struct buf b;
	buf_init(&b, 1u << 20);
	int rc = 0;
	for (size_t k = 0; k < in->n && rc == 0; k++) {
		struct vseries *s = &in->s[k];
		const struct labels *ls = s->ls;
		buf_reset(&b);
		bool set = true;
		if (replace) {
			set = promql_regex_expand(re, labels_get(ls, args[3].str), args[2].str, &b);
		} else {
			for (size_t i = 3; i < n->nargs; i++) {
				if (i > 3)
					buf_puts(&b, args[2].str);
				buf_puts(&b, labels_get(ls, args[i].str));
			}
		}
		if (b.overflow) {
			rc = ev_fail(ev, PROMQL_ERR_EXECUTION, "label value too long");
			break;
		}
		if (set) {
			char *val = ev_alloc(ev, b.len + 1);
			if (!val) {
				rc = -1;
				break;
			}
			memcpy(val, b.data ? b.data : "", b.len);
			val[b.len] = '\0';
			ls = labels_set(ev->a, ls, dst, val);
		}
		ssize_t idx = outmap_get(ev, &om, ls);
		if (idx < 0) {
			rc = -1;
			break;
		}
		for (size_t i = 0; i < g->n; i++)
			if (s->ok[i] && outmap_set(ev, &om, (size_t)idx, i, s->v[i], NULL) < 0) {
				rc = -1;
				break;
			}
	}
	buf_fini(&b);
	outmap_fini(&om);
	promql_regex_free(re);
	return rc;
}

struct bucket {
	double le, count;
};

static int cmp_bucket(const void *a, const void *b)
{
	double x = ((const struct bucket *)a)->le, y = ((const struct bucket *)b)->le;
	return (x > y) - (x < y);
}

/* Prometheus' bucketQuantile (classic histograms). */
static double bucket_quantile(double q, struct bucket *b, size_t n)
{
	if (isnan(q))
		return NAN;
	if (q < 0)
		return -INFINITY;
	if (q > 1)
		return INFINITY;
	qsort(b, n, sizeof(*b), cmp_bucket);
	if (!(isinf(b[n - 1].le) && b[n - 1].le > 0))
		return NAN;
	/* coalesce equal bounds */
	size_t k = 0;
	for (size_t i = 1; i < n; i++) {
		if (b[i].le == b[k].le)
			b[k].count += b[i].count;
		else
			b[++k] = b[i];
	}
	n = k + 1;
	/* ensure monotonic counts */
	double max = -INFINITY;
	for (size_t i = 0; i < n; i++) {
		if (b[i].count > max)
			max = b[i].count;
		else if (b[i].count < max)
			b[i].count = max;
	}
	if (n < 2)
		return NAN;
	double obs = b[n - 1].count;
	if (obs == 0)
		return NAN;
	double rank = q * obs;
	size_t i = 0;
	while (i < n - 1 && !(b[i].count >= rank))
		i++;
	if (i == n - 1)
		return b[n - 2].le;
	if (i == 0 && b[0].le <= 0)
		return b[0].le;
	double start = 0, end = b[i].le, count = b[i].count;
	if (i > 0) {
		start = b[i - 1].le;
		count -= b[i - 1].count;
		rank -= b[i - 1].count;
	}
	return start + (end - start) * (rank / count);
}

static int histogram_quantile(struct ev *ev, const struct grid *g, const double *q,
			      struct vec *in, struct vec *out)
{
	static char *excluded[] = { "__name__", "le" };
	struct vec groups = { 0 };
	struct outmap om;
	outmap_init(&om, &groups, g);
	ssize_t *gof = ev_alloc(ev, (in->n + 1) * sizeof(ssize_t));
	double *le = ev_alloc(ev, (in->n + 1) * sizeof(double));
	struct bucket *bk = ev_alloc(ev, (in->n + 1) * sizeof(struct bucket));
	if (!gof || !le || !bk) {
		outmap_fini(&om);
		return -1;
	}
	for (size_t k = 0; k < in->n; k++) {
		const char *s = labels_get(in->s[k].ls, "le");
		char *end;
		gof[k] = -1;
		if (!*s)
			continue;
		le[k] = strtod(s, &end);
		if (*end)
			continue;
		gof[k] = outmap_get(ev, &om, labels_del(ev->a, in->s[k].ls, excluded, 2));
		if (gof[k] < 0) {
			outmap_fini(&om);
			return -1;
		}
	}
	outmap_fini(&om);
	size_t ng = groups.n;
	size_t *cnt = ev_alloc(ev, (ng + 1) * sizeof(size_t));
	size_t *start = ev_alloc(ev, (ng + 1) * sizeof(size_t));
	size_t *gsize = ev_alloc(ev, (ng + 1) * sizeof(size_t));
	if (!cnt || !start || !gsize)
		return -1;
	memset(gsize, 0, ng * sizeof(size_t));
	for (size_t k = 0; k < in->n; k++)
		if (gof[k] >= 0)
			gsize[gof[k]]++;
	for (size_t gi = 0, off = 0; gi < ng; gi++) {
		start[gi] = off;
		off += gsize[gi];
	}
	for (size_t i = 0; i < g->n; i++) {
		memset(cnt, 0, ng * sizeof(size_t));
		for (size_t k = 0; k < in->n; k++) {
			if (gof[k] < 0 || !in->s[k].ok[i])
				continue;
			size_t gi = (size_t)gof[k];
			bk[start[gi] + cnt[gi]++] = (struct bucket){ le[k], in->s[k].v[i] };
		}
		for (size_t gi = 0; gi < ng; gi++)
			if (cnt[gi]) {
				groups.s[gi].ok[i] = 1;
				groups.s[gi].v[i] = bucket_quantile(q[i], bk + start[gi], cnt[gi]);
			}
	}
	*out = groups;
	return 0;
}

int eval_call(struct ev *ev, const struct node *n, const struct grid *g, struct value *out)
{
	const struct func *f = n->fn;
	memset(out, 0, sizeof(*out));
	for (size_t k = 0; k < n->nargs; k++)
		if (n->args[k]->type == PROMQL_MATRIX)
			return eval_range_call(ev, n, g, out);

	out->type = f->ret;
	if (f->id == F_TIME || f->id == F_PI) {
		out->sc = ev_alloc(ev, g->n * sizeof(double));
		if (!out->sc)
			return -1;
		for (size_t i = 0; i < g->n; i++)
			out->sc[i] = f->id == F_PI ? M_PI : (double)grid_t(g, i) / 1000;
		return 0;
	}
	if (f->id == F_TIMESTAMP) {
		const struct node *a = unparen(n->args[0]);
		struct value in = { 0 };
		if (a->kind == N_VSEL) {
			if (eval_vsel_ts(ev, a, g, &in.v) < 0)
				return -1;
		} else if (eval_node(ev, a, g, &in) < 0) {
			return -1;
		}
		struct outmap om;
		outmap_init(&om, &out->v, g);
		int rc = 0;
		for (size_t k = 0; k < in.v.n && rc == 0; k++) {
			struct vseries *s = &in.v.s[k];
			ssize_t idx = outmap_get(ev, &om, labels_drop_name(ev->a, s->ls));
			if (idx < 0) {
				rc = -1;
				break;
			}
			for (size_t i = 0; i < g->n && rc == 0; i++)
				if (s->ok[i])
					rc = outmap_set(ev, &om, (size_t)idx, i,
							(double)(s->ts ? s->ts[i] : grid_t(g, i)) / 1000,
							NULL);
		}
		outmap_fini(&om);
		return rc;
	}

	struct value args[8];
	size_t na = n->nargs < ARRAY_LEN(args) ? n->nargs : ARRAY_LEN(args);
	if (n->nargs > ARRAY_LEN(args))
		return ev_fail(ev, PROMQL_ERR_EXECUTION, "too many arguments in call to %s", f->name);
	for (size_t k = 0; k < na; k++)
		if (eval_node(ev, n->args[k], g, &args[k]) < 0)
			return -1;

	switch (f->id) {
	case F_VECTOR: {
		struct vseries *s = vec_add(ev, &out->v, g, labels_make(ev->a, NULL, 0));
		if (!s)
			return -1;
		memcpy(s->v, args[0].sc, g->n * sizeof(double));
		memset(s->ok, 1, g->n);
		return 0;
	}
	case F_SCALAR: {
		out->sc = ev_alloc(ev, g->n * sizeof(double));
		if (!out->sc)
			return -1;
		for (size_t i = 0; i < g->n; i++) {
			size_t cnt = 0;
			double v = NAN;
			for (size_t k = 0; k < args[0].v.n; k++)
				if (args[0].v.s[k].ok[i]) {
					cnt++;
					v = args[0].v.s[k].v[i];
				}
			out->sc[i] = cnt == 1 ? v : NAN;
		}
		return 0;
	}
	case F_ABSENT: {
		struct vseries *s = NULL;
		for (size_t i = 0; i < g->n; i++) {
			bool any = false;
			for (size_t k = 0; k < args[0].v.n && !any; k++)
				any = args[0].v.s[k].ok[i];
			if (any)
				continue;
			if (!s && !(s = vec_add(ev, &out->v, g, absent_labels(ev, n->args[0]))))
				return -1;
			s->ok[i] = 1;
			s->v[i] = 1;
		}
		return 0;
	}
	case F_LABEL_REPLACE:
	case F_LABEL_JOIN:
		return relabel(ev, n, g, &args[0].v, args, &out->v);
	case F_HISTOGRAM_QUANTILE:
		return histogram_quantile(ev, g, args[0].sc, &args[1].v, &out->v);
	default:
		break;
	}
	if (is_date_fn(f->id) && n->nargs == 0) {
		struct vseries *s = vec_add(ev, &out->v, g, labels_make(ev->a, NULL, 0));
		if (!s)
			return -1;
		for (size_t i = 0; i < g->n; i++) {
			int64_t t = grid_t(g, i);
			/* Go: time.Unix(ts/1000, 0), integer division toward zero */
			s->v[i] = date_part(f->id, t / 1000);
			s->ok[i] = 1;
		}
		return 0;
	}
	const double *sc[FUNC_MAX_ARGS] = { 0 };
	for (size_t k = 1; k < na && k < FUNC_MAX_ARGS; k++)
		sc[k] = args[k].sc;
	return map_series(ev, n, g, &args[0].v, sc, &out->v);
}
