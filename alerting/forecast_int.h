/*
 * forecast_int.h - the forecast models, private to alerting/ (and its tests
 * and benchmark): pure functions over arrays of points, no I/O, no state
 * between calls, any thread.
 *
 * A fit takes two views of one series, both oldest first:
 *   recent   raw samples of the last forecast.window (what predict_linear
 *            over [window] reads), for the least-squares trend;
 *   history  the 1 m roll-ups of up to forecast.history (7 d), for
 *            Holt-Winters with a daily season and for finding where the
 *            series last changed regime (restarts, steps, periodic cleanup).
 * The caller cuts both at known breaks first (a limit change, a container
 * restart, a counter reset) with fc_cut; fc_fit finds unannounced breaks
 * (a level step) itself and recognises a sawtooth (several drops, as from a
 * periodic cleanup), for which it forecasts the line through the peaks.
 *
 * Models:
 *   linear        Prometheus' linearRegression (Kahan sums, x in seconds
 *                 from the evaluation time): value(h) = intercept + slope h,
 *                 exactly predict_linear(series[window], h) at t_now.
 *   holt_winters  additive level, trend and daily season over 15-minute
 *                 means; only once two days of history are in the segment.
 *   peaks         linear through the peaks of a sawtooth.
 * When Holt-Winters is possible, the model whose forecast erred less over
 * the last quarter of the history (at most 6 h) held out is chosen.
 * Intervals are 80 % (z = 1.2816): for linear the ordinary least-squares
 * prediction interval, for Holt-Winters the one-step error grown with the
 * horizon as for additive exponential smoothing.
 */
#ifndef MONITOR_FORECAST_INT_H
#define MONITOR_FORECAST_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FC_SLOT_MS (15 * 60 * 1000LL)             /* Holt-Winters step */
#define FC_SEASON_MS (24 * 3600 * 1000LL)         /* daily season */
#define FC_SEASON_SLOTS ((int)(FC_SEASON_MS / FC_SLOT_MS))
#define FC_Z80 1.2815515655446004                 /* 10 % each side */
#define FC_HOLDOUT_MAX_MS (6 * 3600 * 1000LL)
#define FC_MAX_HISTORY_SLOTS (FC_SEASON_SLOTS * 31) /* what a fit looks at, at most */

enum fc_model { FC_MODEL_NONE, FC_MODEL_LINEAR, FC_MODEL_HOLT_WINTERS, FC_MODEL_PEAKS };
/* "none", "linear", "holt_winters", "peaks". */
const char *fc_model_name(enum fc_model m);

struct fc_params {
	int64_t window_ms;             /* the linear fit's range (forecast.window, 1h) */
	int64_t max_horizon_ms;        /* exhaustion further out is +Inf (30d) */
	size_t min_points;             /* fewer in the segment: too_little_data (10) */
	int64_t min_span_ms;           /* shorter segment: too_little_data (60s) */
};
void fc_params_defaults(struct fc_params *p);

/* One series to fit; arrays are the caller's and only read. history may be
 * the same arrays as recent (tests) or empty. */
struct fc_input {
	const int64_t *t;
	const double *v;
	size_t n;
	const int64_t *ht;
	const double *hv;
	size_t hn;
	int64_t now_ms;                /* horizons count from here */
	bool steps_are_growth;         /* counts (pids): a step is how it grows, not a break */
};

struct fc_fit {
	enum fc_model model;
	const char *reason;            /* why model is NONE (static text) */
	int64_t t_now;
	int64_t segment_start_ms;      /* where the data fitted begins */
	double last;                   /* newest observed value */
	size_t npoints;                /* points in the fitted segment */
	/* linear and peaks: value(h) = intercept + slope * h (h in s from t_now) */
	double slope, intercept;
	double res_sd, n, xmean, sxx;  /* residual sd; for the interval */
	int64_t peak_last_ms, peak_period_ms; /* peaks: the newest peak, their spacing */
	double peak_drop;              /* peaks: the mean cleanup */
	/* holt_winters: at the last full slot hw_t, level and trend per slot */
	double level, trend, hw_sd, alpha, beta, gamma;
	double hw_sample_var;          /* samples around their slot's mean */
	int64_t hw_t;
	double season[FC_SEASON_SLOTS];
	/* backtest mean absolute errors; NAN when not tried */
	double err_linear, err_hw;
};

/*
 * Fits p and in into *out. Returns 0 with out->model set, or 0 with model
 * NONE and out->reason ("too_little_data", "no_data") when there is
 * nothing honest to say. Any thread; needs no memory beyond out, except a
 * scratch array of in->hn doubles it allocates (-ENOMEM).
 */
int fc_fit(const struct fc_params *p, const struct fc_input *in, struct fc_fit *out);

/* Moves a fit's origin to now_ms without refitting (the line's intercept
 * follows its slope); last becomes the newest observed value. */
void fc_reanchor(struct fc_fit *f, int64_t now_ms, double last);

/* The value h_s seconds after out->t_now and its 80 % interval. */
void fc_predict(const struct fc_fit *f, double h_s, double *y, double *lo, double *hi);

/*
 * Seconds from t_now until the forecast reaches limit (0 when it already
 * has), and the interval: *early where the upper band reaches it, *late
 * where the lower band does. INFINITY for "not within max_horizon_ms".
 */
void fc_exhaustion(const struct fc_fit *f, double limit, int64_t max_horizon_ms, double *eta,
		   double *early, double *late);

/* Prometheus' linearRegression: slope per second and the value at t_ref_ms.
 * false when n < 2. */
bool fc_linear_regression(const int64_t *t, const double *v, size_t n, int64_t t_ref_ms,
			  double *slope, double *intercept);

/*
 * A sliding window's least-squares sums, kept between refreshes so that a
 * refresh adds the points that arrived and removes those that left instead
 * of reading and summing the whole window again (forecast.c). Times are
 * integer milliseconds from a fixed origin, so the sums of x and x^2 are
 * exact (128-bit) and removing a point undoes adding it exactly; the sums
 * of y, x*y and y^2 (y from a reference value y0) are Neumaier-compensated
 * on add and remove. fc_window_fit then gives predict_linear's line over
 * the same points to within rounding (about 1e-15 of the value: tested to
 * 1e-9), not bit for bit; the caller recomputes from scratch now and then.
 */
struct fc_window {
	int64_t origin_ms;
	double y0;
	int64_t n;
	__int128 sx, sxx;              /* of x = t - origin_ms, in ms */
	double sy, cy, sxy, cxy, syy, cyy;
};
void fc_window_reset(struct fc_window *w, int64_t origin_ms, double y0);
void fc_window_add(struct fc_window *w, int64_t t, double v);
void fc_window_remove(struct fc_window *w, int64_t t, double v);
/*
 * The sums of one slice of a window's points, those of a cell of time
 * (start_ms, start_ms + cell], with x from start_ms and y from the window's
 * y0: a cell goes into the window's sums in one step once complete, and
 * leaves them in one step (fc_window_cell) instead of point by point, so
 * the points need not be kept or read again. The x sums are exact for cells up to FC_CELL_MAX_MS; the y
 * sums of a cell are plain (a cell holds one refresh interval of points),
 * so the window is off from summing point by point by rounding only.
 */
#define FC_CELL_MAX_MS (10 * 60 * 1000LL)
struct fc_wcell {
	int64_t sx, sxx;               /* of x = t - start_ms, in ms */
	double sy, sxy, syy;           /* of y = v - y0 of the window */
	int32_t n;
};
/* Adds (sign 1) or removes (-1) the point t, v of the cell (start_ms,
 * start_ms + cell] of window w in c's sums (not in w's). Inline: it runs
 * for every new sample of every kept series. */
static inline void fc_wcell_step(struct fc_wcell *c, const struct fc_window *w, int64_t start_ms,
				 int64_t t, double v, int sign)
{
	int64_t x = t - start_ms;
	double y = v - w->y0;
	c->n += sign;
	c->sx += sign * x;
	c->sxx += sign * x * x;
	c->sy += sign * y;
	c->sxy += sign * (double)x * y;
	c->syy += sign * y * y;
}
/* Puts the cell at start_ms, as fc_wcell_step summed it, into w (sign 1)
 * or takes it out (-1). */
void fc_window_cell(struct fc_window *w, const struct fc_wcell *c, int64_t start_ms, int sign);
/* The linear fit of the window's points at now_ms into f (as fc_fit's
 * linear model: slope, intercept, the interval's numbers); false when
 * fewer than 3 points or all at one time. Sets no model or segment. */
bool fc_window_fit(const struct fc_window *w, int64_t now_ms, struct fc_fit *f);

/* Ten robust standard deviations of a series' differences (fc_fit's step
 * detector: a difference past max(this, a tenth of the range) is a jump). */
double fc_diff_scale(const double *v, size_t n);

/* Index of the first point at or after t_ms (n when none): cut a series at
 * a known break. */
size_t fc_cut(const int64_t *t, size_t n, int64_t t_ms);

/*
 * Converts a counter into a rate per second over windows of step_ms
 * (counter resets restart the counting, as rate() does): writes up to n
 * points into ot/ov (which may not alias t/v) and returns how many.
 */
size_t fc_counter_rate(const int64_t *t, const double *v, size_t n, int64_t step_ms, int64_t *ot,
		       double *ov);

/*
 * fc_counter_rate one sample at a time, so that a refresh turns only the
 * counter samples that arrived since the last into rate points instead of
 * the whole window again. The accumulator holds the newest sample and the
 * increase over the window of step_ms it is in (not yet a point: the
 * window is complete only when a sample of a later one arrives).
 */
struct fc_rate_acc {
	int64_t step_ms;
	int64_t win;                   /* window of the newest sample */
	int64_t last_t;                /* the newest sample */
	double last_v;
	double inc;                    /* increase in the open window ... */
	int64_t dt;                    /* ... over this many ms */
};
/* The state fc_counter_rate is in after t/v (n >= 1, no resets). */
void fc_rate_acc_init(struct fc_rate_acc *a, int64_t step_ms, const int64_t *t, const double *v,
		      size_t n);
/* Adds a sample newer than the last; true when it completes a window's
 * point (*pt, *pv): the point fc_counter_rate gives for it. A reset (a
 * smaller value) is the caller's to notice first: it is left out here as
 * fc_counter_rate leaves it out. */
bool fc_rate_acc_push(struct fc_rate_acc *a, int64_t t, double v, int64_t *pt, double *pv);
/* The open window's point (fc_counter_rate's last); false when it has none. */
bool fc_rate_acc_partial(const struct fc_rate_acc *a, int64_t *pt, double *pv);

#endif
