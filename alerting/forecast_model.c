/*
 * forecast_model.c - the capacity forecast models: least-squares trend as
 * Prometheus' predict_linear, Holt-Winters with additive trend and daily
 * season, the line through the peaks of a sawtooth, the choice between
 * them by backtest, prediction intervals and time to exhaustion.
 *
 * Pure functions over arrays (forecast_int.h says what each view of a
 * series is); forecast.c reads the store and calls them, the PromQL
 * forecast functions call them over a range vector.
 */
#include "alerting/forecast_int.h"
#include "agent/util/util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *fc_model_name(enum fc_model m)
{
	switch (m) {
	case FC_MODEL_LINEAR: return "linear";
	case FC_MODEL_HOLT_WINTERS: return "holt_winters";
	case FC_MODEL_PEAKS: return "peaks";
	case FC_MODEL_NONE: break;
	}
	return "none";
}

void fc_params_defaults(struct fc_params *p)
{
	p->window_ms = 3600 * 1000LL;
	p->max_horizon_ms = 30 * 86400 * 1000LL;
	p->min_points = 10;
	p->min_span_ms = 60 * 1000LL;
}

/* Prometheus' kahanSumInc (Neumaier's variant). */
static void kahan_inc(double inc, double *sum, double *c)
{
	double t = *sum + inc;
	if (isinf(t))
		*c = 0;
	else if (fabs(*sum) >= fabs(inc))
		*c += (*sum - t) + inc;
	else
		*c += (inc - t) + *sum;
	*sum = t;
}

bool fc_linear_regression(const int64_t *t, const double *v, size_t n, int64_t t_ref_ms,
			  double *slope, double *intercept)
{
	if (n < 2)
		return false;
	double sx = 0, cx = 0, sy = 0, cy = 0, sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
	double init = v[0];
	bool const_y = true;
	for (size_t i = 0; i < n; i++) {
		if (const_y && i > 0 && v[i] != init)
			const_y = false;
		double x = (double)(t[i] - t_ref_ms) / 1e3;
		kahan_inc(x, &sx, &cx);
		kahan_inc(v[i], &sy, &cy);
		kahan_inc(x * v[i], &sxy, &cxy);
		kahan_inc(x * x, &sx2, &cx2);
	}
	if (const_y) {
		*slope = isinf(init) ? NAN : 0;
		*intercept = isinf(init) ? NAN : init;
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

size_t fc_cut(const int64_t *t, size_t n, int64_t t_ms)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t[mid] < t_ms)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

size_t fc_counter_rate(const int64_t *t, const double *v, size_t n, int64_t step_ms, int64_t *ot,
		       double *ov)
{
	size_t out = 0;
	if (n < 2 || step_ms <= 0)
		return 0;
	double inc = 0;
	int64_t dt = 0, win = t[0] / step_ms;
	for (size_t i = 1; i < n; i++) {
		int64_t w = t[i] / step_ms;
		if (w != win && dt > 0) {
			ot[out] = t[i - 1];
			ov[out++] = inc / ((double)dt / 1e3);
			inc = 0;
			dt = 0;
		}
		win = w;
		double d = v[i] - v[i - 1];
		/* A reset: how much of the interval ran before it is unknown, so
		 * the interval is left out rather than counted short. */
		if (d < 0)
			continue;
		inc += d;
		dt += t[i] - t[i - 1];
	}
	if (dt > 0) {
		ot[out] = t[n - 1];
		ov[out++] = inc / ((double)dt / 1e3);
	}
	return out;
}

void fc_rate_acc_init(struct fc_rate_acc *a, int64_t step_ms, const int64_t *t, const double *v,
		      size_t n)
{
	memset(a, 0, sizeof(*a));
	a->step_ms = step_ms;
	a->last_t = t[n - 1];
	a->last_v = v[n - 1];
	a->win = t[n - 1] / step_ms;
	/* the pairs whose later sample is in the newest window are its
	 * increase (fc_counter_rate emits the window before at that sample) */
	for (size_t i = n - 1; i >= 1 && t[i] / step_ms == a->win; i--) {
		double d = v[i] - v[i - 1];
		if (d < 0)
			continue;
		a->inc += d;
		a->dt += t[i] - t[i - 1];
	}
}

bool fc_rate_acc_push(struct fc_rate_acc *a, int64_t t, double v, int64_t *pt, double *pv)
{
	int64_t w = t / a->step_ms;
	bool done = w != a->win && a->dt > 0;
	if (done) {
		*pt = a->last_t;
		*pv = a->inc / ((double)a->dt / 1e3);
		a->inc = 0;
		a->dt = 0;
	}
	a->win = w;
	double d = v - a->last_v;
	if (d >= 0) {
		a->inc += d;
		a->dt += t - a->last_t;
	}
	a->last_t = t;
	a->last_v = v;
	return done;
}

bool fc_rate_acc_partial(const struct fc_rate_acc *a, int64_t *pt, double *pv)
{
	if (a->dt <= 0)
		return false;
	*pt = a->last_t;
	*pv = a->inc / ((double)a->dt / 1e3);
	return true;
}

/* ---- regime: steps and sawtooth -------------------------------------------- */

/* The k-th smallest of v[0..n) (v is reordered): Hoare's selection, so a
 * median costs O(n), not a sort. */
static double select_kth(double *v, size_t n, size_t k)
{
	size_t lo = 0, hi = n - 1;
	while (lo < hi) {
		double pivot = v[lo + (hi - lo) / 2];
		size_t i = lo, j = hi;
		while (i <= j) {
			while (v[i] < pivot)
				i++;
			while (v[j] > pivot)
				j--;
			if (i <= j) {
				double tmp = v[i];
				v[i] = v[j];
				v[j] = tmp;
				i++;
				if (j == 0)
					break;
				j--;
			}
		}
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			break;
	}
	return v[k];
}

double fc_diff_scale(const double *v, size_t n)
{
	if (n < 3)
		return 0;
	double sample[255];
	size_t ns = 0, stride = (n - 1) / 255 + 1;
	for (size_t i = 1; i < n; i++)
		if ((i - 1) % stride == 0 && ns < ARRAY_LEN(sample))
			sample[ns++] = fabs(v[i] - v[i - 1]);
	return 10 * 1.4826 * select_kth(sample, ns, ns / 2);
}

/*
 * The jumps of a series: differences far outside what its ordinary
 * differences are (ten times the median absolute difference, from up to
 * 255 evenly spread samples so that a long series costs no sort), and at
 * least a tenth of its range. Fills the indices (the point after the jump)
 * of the last max jumps; returns the count of all and the drops among them.
 */
static size_t find_jumps(const double *v, size_t n, size_t *idx, size_t max, size_t *drops)
{
	*drops = 0;
	if (n < 3)
		return 0;
	double lo = v[0], hi = v[0];
	for (size_t i = 1; i < n; i++) {
		if (v[i] < lo)
			lo = v[i];
		if (v[i] > hi)
			hi = v[i];
	}
	double thr = fmax(fc_diff_scale(v, n), 0.1 * (hi - lo));
	if (!(thr > 0))
		return 0;
	size_t count = 0;
	for (size_t i = 1; i < n; i++) {
		double d = v[i] - v[i - 1];
		if (fabs(d) <= thr)
			continue;
		/* a cleanup takes away most of what built up: half the range */
		if (d < 0 && -d >= 0.5 * (hi - lo))
			(*drops)++;
		if (count < max)
			idx[count] = i;
		else
			memmove(idx, idx + 1, (max - 1) * sizeof(*idx)), idx[max - 1] = i;
		count++;
	}
	return count;
}

/* ---- linear ---------------------------------------------------------------- */

/* Fits the line at t_ref and the numbers its prediction interval needs. */
static bool fit_line(const int64_t *t, const double *v, size_t n, int64_t t_ref, struct fc_fit *f)
{
	if (!fc_linear_regression(t, v, n, t_ref, &f->slope, &f->intercept))
		return false;
	double sx = 0;
	for (size_t i = 0; i < n; i++)
		sx += (double)(t[i] - t_ref) / 1e3;
	double xm = sx / (double)n, sxx = 0, sse = 0;
	for (size_t i = 0; i < n; i++) {
		double x = (double)(t[i] - t_ref) / 1e3;
		double r = v[i] - (f->intercept + f->slope * x);
		sxx += (x - xm) * (x - xm);
		sse += r * r;
	}
	f->n = (double)n;
	f->xmean = xm;
	f->sxx = sxx;
	f->res_sd = n > 2 ? sqrt(sse / (double)(n - 2)) : 0;
	return true;
}

/* ---- the sliding window's sums (forecast_int.h) ----------------------------- */

void fc_window_reset(struct fc_window *w, int64_t origin_ms, double y0)
{
	memset(w, 0, sizeof(*w));
	w->origin_ms = origin_ms;
	w->y0 = y0;
}

/* Neumaier's compensated sum, the same step for adding and removing (a
 * removal adds the negated term), so that what was added leaves exactly
 * enough residue in the compensation to be taken out again. */
static void neumaier(double inc, double *sum, double *c)
{
	double t = *sum + inc;
	if (fabs(*sum) >= fabs(inc))
		*c += (*sum - t) + inc;
	else
		*c += (inc - t) + *sum;
	*sum = t;
}

static void window_step(struct fc_window *w, int64_t t, double v, int sign)
{
	int64_t x = t - w->origin_ms;
	double y = v - w->y0, xd = (double)x;
	w->n += sign;
	w->sx += sign * (__int128)x;
	w->sxx += sign * (__int128)x * x;
	neumaier(sign * y, &w->sy, &w->cy);
	neumaier(sign * xd * y, &w->sxy, &w->cxy);
	neumaier(sign * y * y, &w->syy, &w->cyy);
}

void fc_window_add(struct fc_window *w, int64_t t, double v)
{
	window_step(w, t, v, 1);
}

void fc_window_remove(struct fc_window *w, int64_t t, double v)
{
	window_step(w, t, v, -1);
}

void fc_window_cell(struct fc_window *w, const struct fc_wcell *c, int64_t start_ms, int sign)
{
	/* x in w is the cell's x plus off: sum(x) = sx + n off, sum(x^2) =
	 * sxx + 2 off sx + n off^2 (exact), sum(x y) = sxy + off sy */
	__int128 off = start_ms - w->origin_ms;
	w->n += sign * c->n;
	w->sx += sign * (c->sx + c->n * off);
	w->sxx += sign * (c->sxx + 2 * off * c->sx + c->n * off * off);
	neumaier(sign * c->sy, &w->sy, &w->cy);
	neumaier(sign * c->sxy, &w->sxy, &w->cxy);
	neumaier(sign * (double)off * c->sy, &w->sxy, &w->cxy);
	neumaier(sign * c->syy, &w->syy, &w->cyy);
}

bool fc_window_fit(const struct fc_window *w, int64_t now_ms, struct fc_fit *f)
{
	if (w->n < 3)
		return false;
	double dn = (double)w->n;
	/* n * sum(x^2) - sum(x)^2 is exact in 128 bits (and does not depend on
	 * the origin): n^2 times the variance of x, in ms^2 */
	__int128 nvar = (__int128)w->n * w->sxx - w->sx * w->sx;
	if (nvar <= 0)
		return false;
	double sxx = (double)nvar / dn / 1e6;            /* s^2 */
	double sx = (double)w->sx, sy = w->sy + w->cy, sxy = w->sxy + w->cxy;
	double syy = w->syy + w->cyy;
	double cov = (sxy - sx * sy / dn) / 1e3;         /* s * y */
	f->slope = cov / sxx;
	/* x of the mean in seconds from now_ms */
	double xmean = ((double)w->sx / dn - (double)(now_ms - w->origin_ms)) / 1e3;
	f->intercept = w->y0 + sy / dn - f->slope * xmean;
	double sse = (syy - sy * sy / dn) - f->slope * cov;
	f->n = dn;
	f->xmean = xmean;
	f->sxx = sxx;
	f->res_sd = sse > 0 && w->n > 2 ? sqrt(sse / (dn - 2)) : 0;
	return true;
}

static double line_sd(const struct fc_fit *f, double h)
{
	if (!(f->sxx > 0))
		return f->res_sd;
	double dx = h - f->xmean;
	return f->res_sd * sqrt(1 + 1 / f->n + dx * dx / f->sxx);
}

/* ---- Holt-Winters ------------------------------------------------------------ */

/* Slot means of history points from the first to the last full slot, gaps
 * interpolated; returns how many (at most cap) and the first slot's index. */
static size_t make_slots(const int64_t *t, const double *v, size_t n, double *out, size_t cap,
			 int64_t *first_slot, double *within_var)
{
	double ss = 0, sn = 0;
	if (n < 2)
		return 0;
	int64_t s0 = t[0] / FC_SLOT_MS + (t[0] % FC_SLOT_MS ? 1 : 0);
	int64_t s1 = t[n - 1] / FC_SLOT_MS;        /* slots before s1 are full */
	if (s1 - s0 > (int64_t)cap)
		s0 = s1 - (int64_t)cap;
	if (s1 <= s0)
		return 0;
	size_t ns = (size_t)(s1 - s0);
	double cnt_last = 0;
	size_t i = fc_cut(t, n, s0 * FC_SLOT_MS);
	for (size_t k = 0; k < ns; k++) {
		int64_t end = (s0 + (int64_t)k + 1) * FC_SLOT_MS;
		double sum = 0, cnt = 0, sq = 0;
		for (; i < n && t[i] < end; i++) {
			sum += v[i];
			sq += v[i] * v[i];
			cnt++;
		}
		out[k] = cnt > 0 ? sum / cnt : NAN;
		if (cnt > 1) {
			/* spread of single samples around their slot's mean */
			double var = (sq - sum * sum / cnt) / (cnt - 1);
			ss += (var > 0 ? var : 0) * (cnt - 1);
			sn += cnt - 1;
		}
		cnt_last = cnt;
	}
	(void)cnt_last;
	/* interpolate gaps (a stopped agent); leading or trailing ones copy */
	size_t prev = ns;
	for (size_t k = 0; k < ns; k++) {
		if (isnan(out[k]))
			continue;
		if (prev == ns) {
			for (size_t j = 0; j < k; j++)
				out[j] = out[k];
		} else {
			for (size_t j = prev + 1; j < k; j++)
				out[j] = out[prev] + (out[k] - out[prev]) * (double)(j - prev) /
						       (double)(k - prev);
		}
		prev = k;
	}
	if (prev == ns)
		return 0;
	for (size_t j = prev + 1; j < ns; j++)
		out[j] = out[prev];
	*first_slot = s0;
	*within_var = sn > 0 ? ss / sn : 0;
	return ns;
}

struct hw_state {
	double level, trend, sse;
	double season[FC_SEASON_SLOTS];
};

/* Runs additive Holt-Winters over y (first slot index s0); initial values
 * from the first two seasons. */
static void hw_run(const double *y, size_t n, int64_t s0, double a, double b, double g,
		   struct hw_state *st)
{
	const int m = FC_SEASON_SLOTS;
	double m1 = 0, m2 = 0;
	for (int i = 0; i < m; i++) {
		m1 += y[i];
		m2 += y[m + i];
	}
	m1 /= m;
	m2 /= m;
	double trend = (m2 - m1) / m;
	for (int i = 0; i < m; i++) {
		double c = (double)i - (m - 1) / 2.0;
		double d1 = y[i] - (m1 + trend * c), d2 = y[m + i] - (m2 + trend * c);
		st->season[(s0 + i) % m] = (d1 + d2) / 2;
	}
	double level = m1 + trend * (m - 1) / 2.0;
	st->sse = 0;
	for (size_t t = (size_t)m; t < n; t++) {
		int ph = (int)((s0 + (int64_t)t) % m);
		double pred = level + trend + st->season[ph];
		double e = y[t] - pred;
		st->sse += e * e;
		double nl = a * (y[t] - st->season[ph]) + (1 - a) * (level + trend);
		trend = b * (nl - level) + (1 - b) * trend;
		st->season[ph] = g * (y[t] - nl) + (1 - g) * st->season[ph];
		level = nl;
	}
	st->level = level;
	st->trend = trend;
}

/* Chooses the smoothing factors with the smallest one-step error and fits. */
static const double hw_alphas[] = { 0.05, 0.2, 0.5 }, hw_betas[] = { 0.01, 0.1 },
		    hw_gammas[] = { 0.05, 0.3 };

static void hw_fit(const double *y, size_t n, int64_t s0, struct fc_fit *f)
{
	const double *as = hw_alphas, *bs = hw_betas, *gs = hw_gammas;
	struct hw_state st, best;
	double ba = 0, bb = 0, bg = 0;
	best.sse = INFINITY;
	for (size_t i = 0; i < 3; i++)
		for (size_t j = 0; j < 2; j++)
			for (size_t k = 0; k < 2; k++) {
				hw_run(y, n, s0, as[i], bs[j], gs[k], &st);
				if (st.sse < best.sse) {
					best = st;
					ba = as[i], bb = bs[j], bg = gs[k];
				}
			}
	f->level = best.level;
	f->trend = best.trend;
	memcpy(f->season, best.season, sizeof(f->season));
	f->alpha = ba, f->beta = bb, f->gamma = bg;
	size_t steps = n - (size_t)FC_SEASON_SLOTS;
	f->hw_sd = steps > 1 ? sqrt(best.sse / (double)(steps - 1)) : 0;
	f->hw_t = (s0 + (int64_t)n - 1) * FC_SLOT_MS + FC_SLOT_MS / 2;
}

/* Value at absolute time T (ms) of a fitted Holt-Winters, and its sd. */
static double hw_at(const struct fc_fit *f, int64_t T, double *sd)
{
	double k = (double)(T - f->hw_t) / (double)FC_SLOT_MS;
	int64_t slot = T / FC_SLOT_MS;
	int ph = (int)(((slot % FC_SEASON_SLOTS) + FC_SEASON_SLOTS) % FC_SEASON_SLOTS);
	if (sd) {
		double K = k < 1 ? 1 : ceil(k), a = f->alpha, b = f->beta;
		double sum = (K - 1) + b * K * (K - 1) + b * b * (K - 1) * K * (2 * K - 1) / 6;
		*sd = sqrt(f->hw_sd * f->hw_sd * (1 + a * a * sum) + f->hw_sample_var);
	}
	return f->level + k * f->trend + f->season[ph];
}

/* ---- the fit ------------------------------------------------------------------ */

int fc_fit(const struct fc_params *p, const struct fc_input *in, struct fc_fit *f)
{
	memset(f, 0, sizeof(*f));
	f->t_now = in->now_ms;
	f->err_linear = f->err_hw = NAN;
	f->model = FC_MODEL_NONE;
	if (!in->n && !in->hn) {
		f->reason = "no_data";
		return 0;
	}
	f->last = in->n ? in->v[in->n - 1] : in->hv[in->hn - 1];

	/* Regime: find steps and sawtooth on the longest view. */
	const int64_t *rt = in->t, *ht = in->ht;
	const double *rv = in->v, *hv = in->hv;
	size_t rn = in->n, hn = in->hn;
	bool long_view = hn >= 20;
	const int64_t *jt = long_view ? ht : rt;
	const double *jv = long_view ? hv : rv;
	size_t jn = long_view ? hn : rn;
	size_t jidx[64], drops = 0;
	size_t nj = in->steps_are_growth ? 0 : find_jumps(jv, jn, jidx, ARRAY_LEN(jidx), &drops);
	if (nj >= 3 && drops >= 3 && drops * 2 >= nj && nj <= ARRAY_LEN(jidx)) {
		/* a sawtooth: forecast the line through the peaks before each drop */
		int64_t pt[64];
		double pv[64];
		size_t np = 0;
		for (size_t k = 0; k < nj; k++) {
			size_t i = jidx[k];
			if (jv[i] < jv[i - 1]) {
				pt[np] = jt[i - 1];
				pv[np++] = jv[i - 1];
			}
		}
		fit_line(pt, pv, np, in->now_ms, f);
		f->model = FC_MODEL_PEAKS;
		f->peak_last_ms = pt[np - 1];
		double drop = 0;
		for (size_t k = 0; k < nj; k++)
			if (jv[jidx[k]] < jv[jidx[k] - 1])
				drop += jv[jidx[k] - 1] - jv[jidx[k]];
		f->peak_drop = drop / (double)np;
		f->peak_period_ms = np > 1 ? (pt[np - 1] - pt[0]) / (int64_t)(np - 1) : 0;
		f->segment_start_ms = jt[0];
		f->npoints = np;
		return 0;
	}
	if (nj > 0) {
		int64_t cut = jt[jidx[nj < ARRAY_LEN(jidx) ? nj - 1 : ARRAY_LEN(jidx) - 1]];
		size_t a = fc_cut(rt, rn, cut), b = fc_cut(ht, hn, cut);
		rt += a, rv += a, rn -= a;
		ht += b, hv += b, hn -= b;
		f->segment_start_ms = cut;
	} else {
		f->segment_start_ms = rn ? rt[0] : ht[0];
	}

	/* Linear over the window (the caller's recent view). */
	size_t a = rn ? fc_cut(rt, rn, in->now_ms - p->window_ms + 1) : 0;
	rt += a, rv += a, rn -= a;
	if (rn < p->min_points || rn < 3 || rt[rn - 1] - rt[0] < p->min_span_ms) {
		f->reason = "too_little_data";
		return 0;
	}
	fit_line(rt, rv, rn, in->now_ms, f);
	f->model = FC_MODEL_LINEAR;
	f->npoints = rn;

	/* Holt-Winters once two seasons and a holdout are in the segment. */
	if (hn < 2 || ht[hn - 1] - ht[0] < 2 * FC_SEASON_MS + 2 * FC_SLOT_MS)
		return 0;
	double *slots = malloc(FC_MAX_HISTORY_SLOTS * sizeof(double));
	if (!slots)
		return -ENOMEM;
	int64_t s0 = 0;
	double within = 0;
	size_t ns = make_slots(ht, hv, hn, slots, FC_MAX_HISTORY_SLOTS, &s0, &within);
	size_t hold = ns / 4;
	if (hold > (size_t)(FC_HOLDOUT_MAX_MS / FC_SLOT_MS))
		hold = (size_t)(FC_HOLDOUT_MAX_MS / FC_SLOT_MS);
	if (ns < 2 * (size_t)FC_SEASON_SLOTS + hold || hold < 2) {
		free(slots);
		return 0;
	}
	size_t train = ns - hold;
	if (train < 2 * (size_t)FC_SEASON_SLOTS) {
		free(slots);
		return 0;
	}
	/* Backtest: both models fitted on what came before the holdout, judged
	 * by the mean absolute error over its slots. */
	struct fc_fit *bt = malloc(sizeof(*bt));
	if (!bt) {
		free(slots);
		return -ENOMEM;
	}
	memset(bt, 0, sizeof(*bt));
	int64_t cut_t = (s0 + (int64_t)train) * FC_SLOT_MS;
	size_t le = fc_cut(ht, hn, cut_t), lb = fc_cut(ht, hn, cut_t - p->window_ms);
	double el = 0, eh = 0;
	bool lin_ok = le > lb + 2 && fc_linear_regression(ht + lb, hv + lb, le - lb, cut_t,
							    &bt->slope, &bt->intercept);
	hw_fit(slots, train, s0, bt);
	for (size_t k = 0; k < hold; k++) {
		int64_t T = (s0 + (int64_t)(train + k)) * FC_SLOT_MS + FC_SLOT_MS / 2;
		el += fabs(slots[train + k] - (bt->intercept + bt->slope * (double)(T - cut_t) / 1e3));
		eh += fabs(slots[train + k] - hw_at(bt, T, NULL));
	}
	free(bt);
	f->err_linear = lin_ok ? el / (double)hold : INFINITY;
	f->err_hw = eh / (double)hold;
	if (f->err_hw < f->err_linear) {
		hw_fit(slots, ns, s0, f);
		/* the interval is for one sample, not a slot's mean */
		f->hw_sample_var = within;
		f->model = FC_MODEL_HOLT_WINTERS;
		f->segment_start_ms = s0 * FC_SLOT_MS;
	}
	free(slots);
	return 0;
}

void fc_reanchor(struct fc_fit *f, int64_t now_ms, double last)
{
	double d = (double)(now_ms - f->t_now) / 1e3;
	if (f->model == FC_MODEL_LINEAR || f->model == FC_MODEL_PEAKS) {
		f->intercept += f->slope * d;
		f->xmean -= d;
	}
	f->t_now = now_ms;
	f->last = last;
}

void fc_predict(const struct fc_fit *f, double h_s, double *y, double *lo, double *hi)
{
	double v = NAN, sd = NAN;
	switch (f->model) {
	case FC_MODEL_LINEAR:
		v = f->intercept + f->slope * h_s;
		sd = line_sd(f, h_s);
		break;
	case FC_MODEL_PEAKS:
		/* a sawtooth is anywhere between its peak line and a cleanup below
		 * it: the value is the middle, the interval the whole tooth */
		v = f->intercept + f->slope * h_s;
		sd = line_sd(f, h_s);
		*y = v - f->peak_drop / 2;
		*lo = v - f->peak_drop - FC_Z80 * sd;
		*hi = v + FC_Z80 * sd;
		return;
	case FC_MODEL_HOLT_WINTERS:
		v = hw_at(f, f->t_now + (int64_t)(h_s * 1e3), &sd);
		break;
	case FC_MODEL_NONE:
		break;
	}
	*y = v;
	*lo = v - FC_Z80 * sd;
	*hi = v + FC_Z80 * sd;
}

/* band: 0 the forecast, 1 its upper end, -1 its lower end */
static double band_at(const struct fc_fit *f, double h, int band)
{
	double y, lo, hi;
	fc_predict(f, h, &y, &lo, &hi);
	/* a sawtooth runs out at its peaks: its bands are the peak line's */
	if (f->model == FC_MODEL_PEAKS) {
		double env = f->intercept + f->slope * h, sd = line_sd(f, h);
		return env + band * FC_Z80 * sd;
	}
	return band > 0 ? hi : band < 0 ? lo : y;
}

/*
 * A line's band (linear, peaks) where it first reaches limit, solved: the
 * band is a + b h + z s sqrt(q + (h - m)^2 / S) (line_sd), so its
 * crossings are among the roots of the quadratic that squaring gives; the
 * first root after 0 at which the band is at the limit is the answer (a
 * root that squaring made up lies past a true one: the band starts below
 * the limit). False when the numbers are not usable (the caller searches).
 */
static bool line_crossing(const struct fc_fit *f, double limit, double hmax, int band, double *out)
{
	double a = f->intercept, b = f->slope, s = f->res_sd, z = band * FC_Z80;
	if (!isfinite(a) || !isfinite(b) || !isfinite(s) || !(f->n > 0))
		return false;
	double u0 = limit - a, r[2];
	int nr = 0;
	if (!(f->sxx > 0) || s == 0 || band == 0) {
		/* a constant spread: a line */
		double c = band && !(f->sxx > 0) ? z * s : 0;
		if (b != 0)
			r[nr++] = (u0 - c) / b;
	} else {
		double c1 = z * z * s * s / f->sxx, q = 1 + 1 / f->n, m = f->xmean;
		double A = c1 - b * b, B = 2 * (u0 * b - c1 * m);
		double C = c1 * m * m + z * z * s * s * q - u0 * u0;
		if (fabs(A) <= 1e-12 * (c1 + b * b)) {
			if (B == 0)
				return false;
			r[nr++] = -C / B;
		} else {
			double disc = B * B - 4 * A * C;
			if (disc >= 0) {
				double sq = sqrt(disc), k = -0.5 * (B + (B >= 0 ? sq : -sq));
				r[nr++] = k / A;
				if (k != 0)
					r[nr++] = C / k;
			}
		}
	}
	if (nr == 2 && r[1] < r[0]) {
		double x = r[0];
		r[0] = r[1];
		r[1] = x;
	}
	*out = INFINITY;
	for (int i = 0; i < nr; i++) {
		if (!(r[i] > 0) || r[i] > hmax)
			continue;
		double g = band_at(f, r[i], band) - limit;
		if (g >= -1e-9 * (fabs(limit) + 1)) {
			*out = r[i];
			break;
		}
	}
	return true;
}

/* First h in [0, hmax] where the band reaches limit (INFINITY if none):
 * for a line solved (line_crossing), else a scan over a grid (geometric,
 * every slot for Holt-Winters), then bisection inside the first bracket. */
static double first_crossing(const struct fc_fit *f, double limit, double hmax, int band)
{
	if (band_at(f, 0, band) >= limit)
		return 0;
	double h0;
	if (f->model != FC_MODEL_HOLT_WINTERS && line_crossing(f, limit, hmax, band, &h0))
		return h0;
	double prev = 0, h = 0;
	bool hw = f->model == FC_MODEL_HOLT_WINTERS;
	for (;;) {
		h = hw ? h + FC_SLOT_MS / 1e3 : (h < 60 ? 60 : h * 1.2);
		if (h > hmax)
			h = hmax;
		if (band_at(f, h, band) >= limit)
			break;
		if (h >= hmax)
			return INFINITY;
		prev = h;
	}
	double lo = prev, hi = h;
	for (int i = 0; i < 60 && hi - lo > 1e-3; i++) {
		double mid = (lo + hi) / 2;
		if (band_at(f, mid, band) >= limit)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

void fc_exhaustion(const struct fc_fit *f, double limit, int64_t max_horizon_ms, double *eta,
		   double *early, double *late)
{
	*eta = *early = *late = INFINITY;
	if (f->model == FC_MODEL_NONE || !(limit > 0))
		return;
	double hmax = (double)max_horizon_ms / 1e3;
	if (f->last >= limit) {
		*eta = *early = *late = 0;
		return;
	}
	/* A line whose slope is not three of its standard errors above zero
	 * gives no time: a flat series with noise would otherwise "run out"
	 * one time in ten at the 80 % level. */
	double slope_sd = f->sxx > 0 ? f->res_sd / sqrt(f->sxx) : 0;
	if (f->model != FC_MODEL_HOLT_WINTERS && f->slope > 3 * slope_sd) {
		/* the line's own crossing, exact as predict_linear would give it */
		double h = (limit - f->intercept) / f->slope;
		*eta = h <= 0 ? 0 : h <= hmax ? h : INFINITY;
		/* a sawtooth reaches the limit at a peak: the first one due at or
		 * after the line's crossing */
		if (f->model == FC_MODEL_PEAKS && f->peak_period_ms > 0 && isfinite(*eta)) {
			double since = (double)(f->t_now - f->peak_last_ms) / 1e3 + *eta;
			double per = (double)f->peak_period_ms / 1e3;
			double k = ceil(since / per - 1e-9);
			*eta = (double)(f->peak_last_ms - f->t_now) / 1e3 + k * per;
			if (*eta < 0)
				*eta = 0;
		}
	} else if (f->model == FC_MODEL_HOLT_WINTERS) {
		*eta = first_crossing(f, limit, hmax, 0);
	}
	*early = first_crossing(f, limit, hmax, 1);
	*late = first_crossing(f, limit, hmax, -1);
	if (*early > *eta)
		*early = *eta;
	if (*late < *eta)
		*late = *eta;
}
