/*
 * test_forecast.c - the forecast models against synthetic series with known
 * answers (fc_synth.h), each with its accepted error; the linear model
 * against the PromQL engine's predict_linear on the same points; the
 * interval's coverage; "no forecast" cases.
 */
#include "tests/unit/test.h"
#include "alerting/forecast_int.h"
#include "alerting/alerting.h"
#include "storage/storage.h"
#include "tests/unit/alerting/fc_synth.h"

#include <stdio.h>

/* Fits s as the agent would: recent = the raw window, history = the whole
 * series (tests have no roll-ups: at 1 min steps the same thing). */
static void fit_synth(const struct synth *s, struct fc_fit *f)
{
	struct fc_params p;
	fc_params_defaults(&p);
	struct fc_input in = { s->t, s->v, s->n, s->t, s->v, s->n, s->now_ms };
	CHECK(fc_fit(&p, &in, f) == 0);
}

static double rel_err(double got, double want)
{
	return fabs(got - want) / want;
}

static void test_linear_leak(void)
{
	for (uint64_t seed = 1; seed <= 20; seed++) {
		struct synth s;
		synth_make(&s, SYN_LINEAR, seed);
		struct fc_fit f;
		fit_synth(&s, &f);
		CHECK_STR(fc_model_name(f.model), "linear");
		double eta, early, late;
		fc_exhaustion(&f, s.limit, 30 * 86400000LL, &eta, &early, &late);
		/* accepted: 5 % of the true time to exhaustion (about 3 h here) */
		if (rel_err(eta, s.true_eta_s) > 0.05)
			fprintf(stderr, "  seed %llu: eta %.0f s, true %.0f s\n",
				(unsigned long long)seed, eta, s.true_eta_s);
		CHECK(rel_err(eta, s.true_eta_s) <= 0.05);
		CHECK(early <= eta && eta <= late);
		synth_free(&s);
	}
}

/* The linear model is predict_linear: same points, same evaluation time,
 * same answer as the PromQL engine. */
static void test_matches_predict_linear(void)
{
	struct synth s;
	synth_make(&s, SYN_LINEAR, 7);
	struct promql_mem *m = promql_mem_new();
	ssize_t idx = promql_mem_series(m, "mem{id=\"a\"}");
	CHECK(idx >= 0);
	for (size_t i = 0; i < s.n; i++)
		CHECK(promql_mem_add(m, (size_t)idx, s.t[i], s.v[i]) == 0);
	struct promql_source src;
	promql_mem_source(m, &src);
	struct promql_opts o;
	promql_opts_defaults(&o);
	struct promql_expr *e = NULL;
	char err[256];
	CHECK(promql_parse("predict_linear(mem[1h], 7200)", &e, err, sizeof(err)) == 0);
	struct promql_result r;
	struct promql_error pe;
	CHECK(promql_eval_instant(&src, &o, e, s.now_ms, &r, &pe) == 0);
	CHECK(r.nseries == 1);
	/* the window as the engine reads it: (now - 1h, now] */
	size_t a = fc_cut(s.t, s.n, s.now_ms - 3600000 + 1);
	double slope, icpt;
	CHECK(fc_linear_regression(s.t + a, s.v + a, s.n - a, s.now_ms, &slope, &icpt));
	if (r.nseries == 1)
		CHECK(r.series[0].points[0].v == icpt + slope * 7200);
	struct fc_fit f;
	fit_synth(&s, &f);
	double y, lo, hi;
	fc_predict(&f, 7200, &y, &lo, &hi);
	if (r.nseries == 1)
		CHECK(y == r.series[0].points[0].v);
	promql_result_fini(&r);
	promql_expr_free(e);
	promql_mem_free(m);
	synth_free(&s);
}

static void test_seasonal_growth(void)
{
	for (uint64_t seed = 1; seed <= 4; seed++) {
		struct synth s;
		synth_make(&s, SYN_SEASONAL, seed);
		struct fc_fit f;
		fit_synth(&s, &f);
		CHECK_STR(fc_model_name(f.model), "holt_winters");
		CHECK(f.err_hw < f.err_linear);
		double eta, early, late;
		fc_exhaustion(&f, s.limit, 30 * 86400000LL, &eta, &early, &late);
		/* accepted: 2 h, or 10 % of a true time of about 1.5 days; the
		 * daily peak it crosses at is about 6 h wide */
		double tol = fmax(7200, 0.10 * s.true_eta_s);
		if (fabs(eta - s.true_eta_s) > tol)
			fprintf(stderr, "  seed %llu: eta %.0f s, true %.0f s\n",
				(unsigned long long)seed, eta, s.true_eta_s);
		CHECK(fabs(eta - s.true_eta_s) <= tol);
		CHECK(early <= eta && eta <= late);
		synth_free(&s);
	}
}

static void test_step_change(void)
{
	for (uint64_t seed = 1; seed <= 10; seed++) {
		struct synth s;
		synth_make(&s, SYN_STEP, seed);
		struct fc_fit f;
		fit_synth(&s, &f);
		CHECK_STR(fc_model_name(f.model), "linear");
		/* the fit starts at the step, not before it */
		CHECK(f.segment_start_ms >= s.now_ms - 1200 * 1000 - 10000);
		double eta, early, late;
		fc_exhaustion(&f, s.limit, 30 * 86400000LL, &eta, &early, &late);
		/* accepted: 10 % (the segment is only 20 minutes long) */
		if (rel_err(eta, s.true_eta_s) > 0.10)
			fprintf(stderr, "  seed %llu: eta %.0f s, true %.0f s\n",
				(unsigned long long)seed, eta, s.true_eta_s);
		CHECK(rel_err(eta, s.true_eta_s) <= 0.10);
		synth_free(&s);
	}
}

static void test_sawtooth(void)
{
	for (uint64_t seed = 1; seed <= 10; seed++) {
		struct synth s;
		synth_make(&s, SYN_SAWTOOTH, seed);
		struct fc_fit f;
		fit_synth(&s, &f);
		CHECK_STR(fc_model_name(f.model), "peaks");
		double eta, early, late;
		fc_exhaustion(&f, s.limit, 30 * 86400000LL, &eta, &early, &late);
		/* accepted: one cleanup period (2 h): the limit is reached at a
		 * peak, and which peak is a matter of that period */
		if (fabs(eta - s.true_eta_s) > 7200)
			fprintf(stderr, "  seed %llu: eta %.0f s, true %.0f s\n",
				(unsigned long long)seed, eta, s.true_eta_s);
		CHECK(fabs(eta - s.true_eta_s) <= 7200);
		synth_free(&s);
	}
}

static void test_flat(void)
{
	for (uint64_t seed = 1; seed <= 10; seed++) {
		struct synth s;
		synth_make(&s, SYN_FLAT, seed);
		struct fc_fit f;
		fit_synth(&s, &f);
		CHECK_STR(fc_model_name(f.model), "linear");
		double eta, early, late, y, lo, hi;
		fc_exhaustion(&f, s.limit, 30 * 86400000LL, &eta, &early, &late);
		/* a flat line never runs out within the horizon */
		CHECK(isinf(eta));
		fc_predict(&f, 3600, &y, &lo, &hi);
		/* accepted: 1 % of the level an hour ahead */
		CHECK(rel_err(y, s.p[0]) < 0.01);
		CHECK(lo < s.p[0] && s.p[0] < hi);
		synth_free(&s);
	}
}

static void test_counter_resets(void)
{
	for (uint64_t seed = 1; seed <= 10; seed++) {
		struct synth s;
		synth_make(&s, SYN_COUNTER, seed);
		int64_t *rt = malloc(s.n * sizeof(*rt));
		double *rv = malloc(s.n * sizeof(*rv));
		size_t n = fc_counter_rate(s.t, s.v, s.n, 60000, rt, rv);
		CHECK(n > 100);
		/* no negative rate from the resets */
		for (size_t i = 0; i < n; i++)
			CHECK(rv[i] >= 0);
		struct fc_params p;
		fc_params_defaults(&p);
		struct fc_input in = { rt, rv, n, rt, rv, n, s.now_ms };
		struct fc_fit f;
		CHECK(fc_fit(&p, &in, &f) == 0);
		CHECK_STR(fc_model_name(f.model), "linear");
		double eta, early, late;
		fc_exhaustion(&f, s.limit, 30 * 86400000LL, &eta, &early, &late);
		/* accepted: 10 % of about 4 h */
		if (rel_err(eta, s.true_eta_s) > 0.10)
			fprintf(stderr, "  seed %llu: eta %.0f s, true %.0f s\n",
				(unsigned long long)seed, eta, s.true_eta_s);
		CHECK(rel_err(eta, s.true_eta_s) <= 0.10);
		free(rt);
		free(rv);
		synth_free(&s);
	}
}

/* The 80 % interval of the value an hour ahead holds the truth about 80 %
 * of the time: accepted 70-90 % over 200 leaks. */
static void test_interval_coverage(void)
{
	int inside = 0, total = 200;
	for (int seed = 1; seed <= total; seed++) {
		struct synth s;
		synth_make(&s, SYN_LINEAR, (uint64_t)seed + 1000);
		/* the truth is a new noisy draw an hour on */
		struct fc_fit f;
		fit_synth(&s, &f);
		double y, lo, hi;
		fc_predict(&f, 3600, &y, &lo, &hi);
		double t_rel = (double)(s.n - 1) * (double)s.step_ms / 1e3 + 3600;
		double actual = s.truth(&s, t_rel) + 1e6 * synth_gauss(&s);
		inside += actual >= lo && actual <= hi;
		synth_free(&s);
	}
	fprintf(stderr, "  coverage %d/%d\n", inside, total);
	CHECK(inside >= total * 70 / 100 && inside <= total * 90 / 100);
}

static void test_no_forecast(void)
{
	struct fc_params p;
	fc_params_defaults(&p);
	struct fc_fit f;
	struct fc_input in = { 0 };
	in.now_ms = 1000000;
	CHECK(fc_fit(&p, &in, &f) == 0);
	CHECK(f.model == FC_MODEL_NONE);
	CHECK_STR(f.reason, "no_data");
	int64_t t[5] = { 1, 2, 3, 4, 5 };
	double v[5] = { 1, 2, 3, 4, 5 };
	struct fc_input in2 = { t, v, 5, t, v, 5, 5 };
	CHECK(fc_fit(&p, &in2, &f) == 0);
	CHECK(f.model == FC_MODEL_NONE);
	CHECK_STR(f.reason, "too_little_data");
	double eta, early, late;
	fc_exhaustion(&f, 100, p.max_horizon_ms, &eta, &early, &late);
	CHECK(isinf(eta));
	/* already over the limit: 0 */
	struct synth s;
	synth_make(&s, SYN_LINEAR, 3);
	fit_synth(&s, &f);
	fc_exhaustion(&f, 1, p.max_horizon_ms, &eta, &early, &late);
	CHECK(eta == 0);
	synth_free(&s);
}

/* forecast() and forecast_exhaustion() in PromQL: the same fit over the
 * range, handed to the engine through promql_opts.forecaster. */
static double eval1(struct promql_source *src, const struct promql_opts *o, const char *q,
		    int64_t t, int *status)
{
	struct promql_expr *e = NULL;
	char err[256];
	double v = NAN;
	*status = -2;
	if (promql_parse(q, &e, err, sizeof(err)) < 0) {
		fprintf(stderr, "  %s: %s\n", q, err);
		return v;
	}
	struct promql_result r;
	struct promql_error pe;
	*status = promql_eval_instant(src, o, e, t, &r, &pe);
	if (*status == 0) {
		if (r.nseries == 1)
			v = r.series[0].points[0].v;
		promql_result_fini(&r);
	}
	promql_expr_free(e);
	return v;
}

static void test_promql_functions(void)
{
	struct synth s;
	synth_make(&s, SYN_LINEAR, 11);
	struct promql_mem *m = promql_mem_new();
	ssize_t idx = promql_mem_series(m, "mem{id=\"a\"}");
	for (size_t i = 0; i < s.n; i++)
		promql_mem_add(m, (size_t)idx, s.t[i], s.v[i]);
	struct promql_source src;
	promql_mem_source(m, &src);
	struct promql_opts o;
	promql_opts_defaults(&o);
	int st;
	/* without a forecaster the functions fail as execution errors */
	eval1(&src, &o, "forecast(mem[1h], 3600)", s.now_ms, &st);
	CHECK(st == -1);
	o.forecaster = &forecast_promql;
	double f = eval1(&src, &o, "forecast(mem[1h], 3600)", s.now_ms, &st);
	double pl = eval1(&src, &o, "predict_linear(mem[1h], 3600)", s.now_ms, &st);
	CHECK(st == 0);
	CHECK(f == pl);
	double eta = eval1(&src, &o, "forecast_exhaustion(mem[1h], 400e6)", s.now_ms, &st);
	CHECK(st == 0);
	CHECK(rel_err(eta, s.true_eta_s) <= 0.05);
	/* a limit never reached: +Inf, which rules compare as never */
	double never = eval1(&src, &o, "forecast_exhaustion(mem[1h], 1e15)", s.now_ms, &st);
	CHECK(st == 0 && isinf(never));
	promql_mem_free(m);
	synth_free(&s);
}

int main(void)
{
	RUN(test_linear_leak);
	RUN(test_matches_predict_linear);
	RUN(test_seasonal_growth);
	RUN(test_step_change);
	RUN(test_sawtooth);
	RUN(test_flat);
	RUN(test_counter_resets);
	RUN(test_interval_coverage);
	RUN(test_no_forecast);
	RUN(test_promql_functions);
	TEST_END();
}
