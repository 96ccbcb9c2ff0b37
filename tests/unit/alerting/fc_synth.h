/*
 * fc_synth.h - synthetic series with known answers for the forecast tests
 * (tests/unit/alerting/test_forecast.c) and benchmark
 * (tests/bench/forecast_bench.c). Each family fills points up to now and
 * knows the true moment the noise-free series first reaches its limit.
 */
#ifndef MONITOR_FC_SYNTH_H
#define MONITOR_FC_SYNTH_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum synth_family {
	SYN_LINEAR,      /* a leak: linear growth with noise */
	SYN_SEASONAL,    /* daily load with growth (4 days of history) */
	SYN_STEP,        /* linear growth with a level step 20 minutes ago */
	SYN_SAWTOOTH,    /* periodic cleanup every 2 h, peaks growing */
	SYN_FLAT,        /* flat with noise: never runs out */
	SYN_COUNTER,     /* a CPU counter whose rate grows, reset every 20 min */
	SYN__COUNT
};
static const char *const synth_names[SYN__COUNT] = {
	"linear leak", "daily seasonal + growth", "step change", "sawtooth (cleanup)",
	"flat", "counter resets (cpu)",
};

struct synth {
	int64_t *t;
	double *v;
	size_t n;
	int64_t step_ms;
	int64_t now_ms;
	double limit;
	double true_eta_s;        /* INFINITY: never */
	double (*truth)(const struct synth *s, double t_s); /* noise-free value (rate for counters) */
	double p[6];
	uint64_t rng;
};

static double synth_rand(struct synth *s)
{
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	return ((double)(s->rng >> 11) + 0.5) / 9007199254740992.0;
}
static double synth_gauss(struct synth *s)
{
	double u = synth_rand(s), w = synth_rand(s);
	return sqrt(-2 * log(u)) * cos(2 * M_PI * w);
}

/* p: 0 v0, 1 rate/s, 2 step time (s), 3 step size, 4 amplitude / period */
static double truth_linear(const struct synth *s, double t)
{
	return s->p[0] + s->p[1] * t + (t >= s->p[2] ? s->p[3] : 0);
}
static double truth_seasonal(const struct synth *s, double t)
{
	return s->p[0] + s->p[1] * t + s->p[4] * sin(2 * M_PI * t / 86400.0);
}
static double truth_sawtooth(const struct synth *s, double t)
{
	/* period p[4]; each tooth ramps by p[3] from a base growing p[1]/s */
	double period = s->p[4];
	double k = floor(t / period), ph = t - k * period;
	return s->p[0] + s->p[1] * k * period + s->p[3] * ph / period;
}
static double truth_rate(const struct synth *s, double t)
{
	return s->p[0] + s->p[1] * t;
}

/* First time after now (s) where truth reaches the limit, by scanning. */
static double synth_true_eta(const struct synth *s, double horizon_s, double step_s)
{
	double now = (double)s->now_ms / 1e3;
	for (double h = 0; h <= horizon_s; h += step_s)
		if (s->truth(s, now + h) >= s->limit)
			return h;
	return INFINITY;
}

/* Builds family f with seed; t=0 is the start of the data. */
static void synth_make(struct synth *s, enum synth_family f, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	s->rng = seed * 2654435761u + 88172645463325252ull;
	double span_s = 2 * 3600, noise = 0;
	s->step_ms = 10000;
	s->p[2] = INFINITY;
	s->truth = truth_linear;
	double jitter = 0.8 + 0.4 * synth_rand(s);
	switch (f) {
	case SYN_LINEAR:
		s->p[0] = 100e6, s->p[1] = 20e3 * jitter, noise = 1e6;
		s->limit = 400e6;
		break;
	case SYN_STEP:
		s->p[0] = 100e6, s->p[1] = 20e3 * jitter, noise = 1e6;
		s->p[2] = span_s - 1200, s->p[3] = 60e6;
		s->limit = 500e6;
		break;
	case SYN_SEASONAL:
		span_s = 4 * 86400, s->step_ms = 60000;
		s->truth = truth_seasonal;
		s->p[0] = 10e9, s->p[1] = 1e9 / 86400 * jitter, s->p[4] = 3e9, noise = 2e8;
		s->limit = 18e9;
		break;
	case SYN_SAWTOOTH:
		span_s = 2 * 86400, s->step_ms = 60000;
		s->truth = truth_sawtooth;
		s->p[0] = 1e9, s->p[1] = 0.5e9 / 86400 * jitter, s->p[3] = 2e9, s->p[4] = 7200;
		noise = 1e7;
		s->limit = 5e9;
		break;
	case SYN_FLAT:
		s->p[0] = 200e6, s->p[1] = 0, noise = 2e6;
		s->limit = 512e6;
		break;
	case SYN_COUNTER:
		s->truth = truth_rate;
		s->p[0] = 0.2, s->p[1] = 0.5 / 3600 * jitter; /* cores, per s */
		s->limit = 2.0;
		break;
	case SYN__COUNT:
		break;
	}
	s->n = (size_t)(span_s * 1000 / (double)s->step_ms) + 1;
	s->t = malloc(s->n * sizeof(*s->t));
	s->v = malloc(s->n * sizeof(*s->v));
	/* whole seconds from a round start, as the store keeps them */
	int64_t t0 = 1700006400000LL;
	double counter = 0;
	for (size_t i = 0; i < s->n; i++) {
		double t = (double)i * (double)s->step_ms / 1e3;
		s->t[i] = t0 + (int64_t)i * s->step_ms;
		if (f == SYN_COUNTER) {
			double dt = (double)s->step_ms / 1e3;
			if (i && fmod(t, 1200) < dt)
				counter = 0;        /* a restart */
			else if (i)
				counter += (truth_rate(s, t - dt / 2) + 0.02 * synth_gauss(s)) * dt;
			s->v[i] = counter;
		} else {
			s->v[i] = s->truth(s, t) + noise * synth_gauss(s);
		}
	}
	/* truth() takes seconds from the start; now is the last point */
	s->now_ms = s->t[s->n - 1];
	int64_t now_rel = s->now_ms - t0;
	s->now_ms = now_rel;                     /* for synth_true_eta */
	s->true_eta_s = synth_true_eta(s, 40 * 86400, f == SYN_SAWTOOTH ? 60 : 10);
	s->now_ms = now_rel + t0;
}

static void synth_free(struct synth *s)
{
	free(s->t);
	free(s->v);
}

#endif
