/*
 * forecast_bench.c - `make bench-forecast`: how right and how cheap the
 * capacity forecasts are.
 *
 *   build/bench/forecast_bench WORKDIR
 *
 *  1. accuracy, per synthetic family of tests/unit/alerting/fc_synth.h
 *     (linear leak with noise, daily seasonal load with growth, step change,
 *     sawtooth from a periodic cleanup, flat, CPU counter with resets), 100
 *     seeds each: the median absolute error of the time to exhaustion
 *     against the known answer (absolute and relative), how often the
 *     80 % interval of that time holds the answer, and how often the 80 %
 *     interval of the value an hour ahead holds a fresh noisy draw of it;
 *  2. cost: a store holding 1,000 containers (memory and its limit, pids
 *     and pids.max, the writable layer's filesystem and its capacity, a CPU
 *     counter with quota and period, the start time, the writable layer's
 *     own bytes without a quota, a volume's bytes with its filesystem's
 *     capacity and use: 7 resources each) over the last hour at
 *     a 10 s and at a 1 s interval, a first forecaster refresh over all
 *     of it (every window read and fitted whole), then 16 refreshes a minute
 *     apart as the agent makes them: at the minute (the thread's slots),
 *     with that minute's samples and the tick after the slot appended and
 *     the store's writer flushed before each (the steady state: most series
 *     move their kept sums; median, mean and slowest), plus the fits alone
 *     on arrays already in memory. Target: under 20 ms per refresh.
 *
 * Prints a Markdown table and writes it to WORKDIR/../forecast.md.
 * BENCH_FORECAST_CONTAINERS (1000) changes the container count;
 * BENCH_FORECAST_VERBOSE=1 prints each refresh's CPU time to stderr;
 * BENCH_FORECAST_ONLY=1s (or 10s) runs that cost figure alone, no accuracy
 * (for callgrind: valgrind --tool=callgrind --collect-atstart=no counts
 * the 16 steady-state refreshes only).
 */
#include "alerting/alerting.h"
#include "alerting/forecast_int.h"
#include "collectors/collector.h"
#include "storage/storage.h"
/* (the store's own: to time follow_push, the copy the appender makes of a
 * followed sample, alone) */
#include "storage/internal.h"
#include "tests/unit/alerting/fc_synth.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
/* Under callgrind (--collect-atstart=no), only the steady-state refreshes
 * are counted: the load-independent figure of docs/BENCHMARKS.md. */
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_TOGGLE_COLLECT
#endif

#define SEEDS 100
#define TARGET_MS 20.0
/* refreshes a minute apart after the first, in the cost figures; 16 spans
 * the 15 minutes in which every series has had its periodic full fit */
#define NREFRESH 16

static struct buf out;

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	if (!n)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_dbl);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void accuracy(void)
{
	buf_printf(&out, "\n| family | model chosen | median abs. error of time to exhaustion | "
		   "median rel. error | ETA 80 %% interval holds the truth | value in 1 h within "
		   "its 80 %% interval |\n|---|---|---|---|---|---|\n");
	for (int fam = 0; fam < SYN__COUNT; fam++) {
		double abs_err[SEEDS], rel[SEEDS];
		size_t ne = 0, eta_in = 0, val_in = 0, nval = 0, never_ok = 0;
		int models[4] = { 0 };
		for (uint64_t seed = 1; seed <= SEEDS; seed++) {
			struct synth s;
			synth_make(&s, (enum synth_family)fam, seed + 5000);
			const int64_t *t = s.t;
			const double *v = s.v;
			size_t n = s.n;
			int64_t *rt = NULL;
			double *rv = NULL;
			if (fam == SYN_COUNTER) {
				rt = malloc(n * sizeof(*rt));
				rv = malloc(n * sizeof(*rv));
				n = fc_counter_rate(s.t, s.v, s.n, 60000, rt, rv);
				t = rt;
				v = rv;
			}
			struct fc_params p;
			fc_params_defaults(&p);
			struct fc_input in = { t, v, n, t, v, n, s.now_ms, false };
			struct fc_fit f;
			fc_fit(&p, &in, &f);
			models[f.model]++;
			double eta, early, late;
			fc_exhaustion(&f, s.limit, p.max_horizon_ms, &eta, &early, &late);
			if (isinf(s.true_eta_s)) {
				never_ok += isinf(eta);
			} else if (isfinite(eta)) {
				abs_err[ne] = fabs(eta - s.true_eta_s);
				rel[ne++] = fabs(eta - s.true_eta_s) / s.true_eta_s;
				eta_in += s.true_eta_s >= early && s.true_eta_s <= late;
			}
			if (fam != SYN_COUNTER && f.model != FC_MODEL_NONE) {
				double y, lo, hi;
				fc_predict(&f, 3600, &y, &lo, &hi);
				double trel = (double)(s.n - 1) * (double)s.step_ms / 1e3 + 3600;
				double noise = fam == SYN_SEASONAL ? 2e8 : fam == SYN_SAWTOOTH ? 1e7 :
					       fam == SYN_FLAT ? 2e6 : 1e6;
				double actual = s.truth(&s, trel) + noise * synth_gauss(&s);
				val_in += actual >= lo && actual <= hi;
				nval++;
			}
			free(rt);
			free(rv);
			synth_free(&s);
		}
		char chosen[96];
		snprintf(chosen, sizeof(chosen), "%s%s%s%s",
			 models[FC_MODEL_LINEAR] ? "linear " : "",
			 models[FC_MODEL_HOLT_WINTERS] ? "holt_winters " : "",
			 models[FC_MODEL_PEAKS] ? "peaks " : "", models[FC_MODEL_NONE] ? "none" : "");
		char e1[64], e2[64], e3[64], e4[64];
		if (fam == SYN_FLAT) {
			snprintf(e1, sizeof(e1), "never runs out: %zu/%d say so", never_ok, SEEDS);
			snprintf(e2, sizeof(e2), "-");
			snprintf(e3, sizeof(e3), "-");
		} else {
			double ma = median(abs_err, ne), mr = median(rel, ne);
			snprintf(e1, sizeof(e1), "%.0f s (%zu/%d with an ETA)", ma, ne, SEEDS);
			snprintf(e2, sizeof(e2), "%.1f %%", 100 * mr);
			snprintf(e3, sizeof(e3), "%.0f %%", ne ? 100.0 * (double)eta_in / (double)ne : 0);
		}
		if (nval)
			snprintf(e4, sizeof(e4), "%.0f %%", 100.0 * (double)val_in / (double)nval);
		else
			snprintf(e4, sizeof(e4), "- (a rate)");
		buf_printf(&out, "| %s | %s | %s | %s | %s | %s |\n", synth_names[fam], chosen, e1, e2,
			   e3, e4);
		if (fam == SYN_FLAT) {
			printf("BENCH forecast %s: says it never runs out, N=%d|%.0f|%%|report|-\n",
			       synth_names[fam], SEEDS, 100.0 * (double)never_ok / SEEDS);
		} else {
			double ma = median(abs_err, ne), mr = median(rel, ne);
			printf("BENCH forecast %s: median abs. error of time to exhaustion, N=%d|%.0f|s|"
			       "report|median rel. error %.1f %%\n", synth_names[fam], SEEDS, ma,
			       100 * mr);
			printf("BENCH forecast %s: 80 %% interval of time to exhaustion holds the truth|"
			       "%.0f|%%|report|-\n", synth_names[fam],
			       ne ? 100.0 * (double)eta_in / (double)ne : 0);
		}
		if (nval)
			printf("BENCH forecast %s: value in 1 h within its 80 %% interval|%.0f|%%|"
			       "report|-\n", synth_names[fam], 100.0 * (double)val_in / (double)nval);
	}
}

/* ---- cost ---------------------------------------------------------------------------------- */

static uint32_t series(struct store *st, const char *name, const char *id, const char *extra_k,
		       const char *extra_v)
{
	struct store_label l[5] = { { "__name__", name }, { "id", id }, { "name", id + 8 },
				    { "image", "bench" }, { extra_k, extra_v } };
	uint32_t sid = 0;
	store_series(st, l, extra_k ? 5 : 4, STORE_GAUGE, &sid);
	return sid;
}

/* CPU time of this thread: the refresh runs here, and on a host shared
 * with other work the wall time also counts the waits for a core. */
static int64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One sample of each of the 10 series of every container at time t. */
static void append_all(struct store *st, const uint32_t *ids, size_t ncont, int64_t start,
		       int64_t t, int64_t step_ms, bool all_limits, uint64_t *rng)
{
	double x = (double)(t - start) / 1e3;
	for (size_t c = 0; c < ncont; c++) {
		const uint32_t *s = ids + c * 14;
		*rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
		double noise = (double)(*rng >> 40) / (double)(1ULL << 24) - 0.5;
		store_append(st, s[0], t, 100e6 + (double)c * 1e4 * x + 1e6 * noise);
		store_append(st, s[1], t, 512e6);
		store_append(st, s[2], t, 10 + (double)(c % 7));
		store_append(st, s[3], t, all_limits ? 1000 : 0);
		store_append(st, s[4], t, 20e9 + 1e3 * x);
		store_append(st, s[5], t, 250e9);
		/* a counter: 0.2 cores, each interval's use off by up to 25 %, never
		 * going back (a counter that goes down is a reset) */
		store_append(st, s[6], t, 0.2 * x + 0.1 * (double)step_ms / 1e3 * noise);
		if (all_limits) {
			store_append(st, s[7], t, 100000);
			store_append(st, s[9], t, 100000);  /* a quota of one core */
		}
		store_append(st, s[8], t, (double)start / 1e3);
		/* the walks: the writable layer (no quota) and a volume at /data
		 * on its own filesystem, each measured once a minute and written
		 * again every tick; the volume grows 50 kB/s */
		double minute = (double)((t - start) / 60000 * 60);
		store_append(st, s[10], t, 40e6 + (double)(c % 13) * 1e6);
		store_append(st, s[11], t, 1e9 + 50e3 * minute);
		store_append(st, s[12], t, 100e9);
		store_append(st, s[13], t, 30e9 + 50e3 * minute);
	}
}

/*
 * The appending thread's part of the forecaster's work: the copy of each
 * sample of a series it follows (storage/follow.c), timed alone over a
 * million copies into a ring emptied as the reader would. ns per sample.
 */
static double push_ns(struct store *st)
{
	struct store_label l[2] = { { "__name__", "bench_follow" }, { "id", "push" } };
	uint32_t id;
	int64_t t = now_ms(), pt;
	double pv;
	struct store_cursor *c = store_cursor_new();
	if (!c || store_series(st, l, 2, STORE_GAUGE, &id) < 0 || store_append(st, id, t, 1) < 0 ||
	    store_cursor_follow(st, c, id) < 0 || store_read_after(st, id, c, t - 1, t, &pt, &pv, 1) != 1) {
		store_cursor_free(c);
		return NAN;
	}
	struct series *se = series_by_id(st, id);  /* (one thread here: no lock needed) */
	double best = INFINITY;
	for (int round = 0; round < 5; round++) {
		int64_t c0 = thread_cpu_ns();
		for (int i = 0; i < 1000000; i++) {
			if (c->fr.n == c->fr.cap)
				c->fr.n = 0;
			follow_push(st, se, ++t, (double)i);
		}
		best = fmin(best, (double)(thread_cpu_ns() - c0) / 1e6);
	}
	store_cursor_free(c);
	return best;     /* ms per million: ns each */
}

static double refresh_cost(const char *dir, size_t ncont, int64_t step_ms, bool all_limits,
			   size_t *entries, double *emit_ms, size_t *samples, double *cold_ms,
			   double *max_ms, double *cpu_ms, double *cpu_mean_ms, double *push_each_ns,
			   uint64_t *pushed)
{
	char err[512];
	struct store_config sc;
	store_config_defaults(&sc);
	snprintf(sc.dir, sizeof(sc.dir), "%s", dir);
	mkdir(dir, 0750);
	struct store *st = NULL;
	if (store_open(&st, &sc, err, sizeof(err)) < 0) {
		fprintf(stderr, "forecast_bench: %s\n", err);
		exit(1);
	}
	struct forecast_config cfg;
	forecast_config_defaults(&cfg);
	/* the agent's refreshes are at multiples of forecast.interval (the
	 * thread's slots: forecast.c), and so are these */
	int64_t now = now_ms() / cfg.interval_ms * cfg.interval_ms;
	/* an interval more than the window before the first refresh: that one
	 * reads every series' history, as the agent's first refresh after a
	 * start does, and the 16 after it are the steady state */
	int64_t start = now - 3600 * 1000 - (NREFRESH + 1) * cfg.interval_ms;
	size_t per = 14;
	struct forecaster *f = NULL;
	double times[NREFRESH + 1], cpu[NREFRESH + 1];
	uint32_t *ids = malloc(ncont * per * sizeof(*ids));
	for (size_t c = 0; c < ncont; c++) {
		char id[64];
		snprintf(id, sizeof(id), "/docker/c%05zu", c);
		uint32_t *s = ids + c * per;
		s[0] = series(st, "container_memory_working_set_bytes", id, NULL, NULL);
		s[1] = series(st, "container_spec_memory_limit_bytes", id, NULL, NULL);
		s[2] = series(st, "container_pids", id, NULL, NULL);
		s[3] = series(st, "container_spec_pids_limit", id, NULL, NULL);
		s[4] = series(st, "container_fs_backing_usage_bytes", id, "mountpoint", "/");
		s[5] = series(st, "container_fs_limit_bytes", id, "mountpoint", "/");
		s[6] = series(st, "container_cpu_usage_seconds_total", id, "cpu", "total");
		s[7] = series(st, "container_spec_cpu_quota", id, NULL, NULL);
		s[8] = series(st, "container_start_time_seconds", id, NULL, NULL);
		s[9] = series(st, "container_spec_cpu_period", id, NULL, NULL);
		s[10] = series(st, "container_fs_usage_bytes", id, "mountpoint", "/");
		s[11] = series(st, "container_fs_usage_bytes", id, "mountpoint", "/data");
		s[12] = series(st, "container_fs_limit_bytes", id, "mountpoint", "/data");
		s[13] = series(st, "container_fs_backing_usage_bytes", id, "mountpoint", "/data");
	}
	uint64_t rng = 42;
	forecast_new(&f, st, &cfg);
	/* An hour of samples, a refresh; then the steady state: the agent
	 * refreshes every forecast.interval (60 s) and the store gains that
	 * minute of samples in between, so each later refresh sees new data (a
	 * refresh at the same time again would measure nothing). The last
	 * refresh is at the wall clock's now. */
	int64_t t = start, end = now - NREFRESH * cfg.interval_ms;
	uint64_t followed[NREFRESH + 1];
	for (int r = 0; r <= NREFRESH; r++, end += cfg.interval_ms) {
		/* up to the tick after the slot: the agent's thread refreshes
		 * as of a slot once a tick at or after it is stored */
		struct store_stats ss0, ss1;
		store_stats(st, &ss0);
		for (; t <= end + step_ms; t += step_ms)
			append_all(st, ids, ncont, start, t, step_ms, all_limits, &rng);
		store_stats(st, &ss1);
		followed[r] = ss1.samples_followed - ss0.samples_followed;
		/* the agent's writer has had the minute to write what was sealed
		 * (it flushes every storage.flush_interval, 10 s): so here too,
		 * else every read walks a minute's backlog of pending chunks */
		store_flush(st);
		int64_t t0 = mono_ns(), c0 = thread_cpu_ns();
		if (r)
			CALLGRIND_TOGGLE_COLLECT;
		forecast_refresh(f, end);
		if (r)
			CALLGRIND_TOGGLE_COLLECT;
		times[r] = (double)(mono_ns() - t0) / 1e6;
		cpu[r] = (double)(thread_cpu_ns() - c0) / 1e6;
	}
	free(ids);
	/* The interval's copies of followed samples, made by the appender
	 * (storage/follow.c) instead of the refresh decoding them: counted in
	 * each refresh's CPU time, as their number times one copy's time. */
	*push_each_ns = push_ns(st);
	*pushed = 0;
	for (int r = 1; r <= NREFRESH; r++) {
		cpu[r] += (double)followed[r] * *push_each_ns / 1e6;
		*pushed += followed[r] / NREFRESH;
	}
	/* what the tick pays to copy the table into its snapshot (median of 5) */
	double emit[5];
	for (int r = 0; r < 5; r++) {
		struct coll_sink sk;
		sink_open(&sk, now);
		int64_t t0 = mono_ns();
		forecast_emit(f, &sk);
		emit[r] = (double)(mono_ns() - t0) / 1e6;
		snapshot_unref(sink_close(&sk));
	}
	*emit_ms = median(emit, 5);
	/* how many resources the table holds: its model samples, one each,
	 * known by the library's own name of their family (a family id
	 * compiled here could be another build's: see metric_ids_agree) */
	struct coll_sink sink;
	sink_open(&sink, now);
	forecast_emit(f, &sink);
	struct snapshot *snap = sink_close(&sink);
	*samples = snap->nsamples;
	*entries = 0;
	for (size_t i = 0; i < snap->nsamples; i++) {
		const char *name = metric_families[snap->samples[i].family].name;
		if (!strcmp(name, "container_forecast_model") ||
		    !strcmp(name, "machine_forecast_model"))
			(*entries)++;
	}
	snapshot_unref(snap);
	forecast_stop(f);
	store_close(st);
	/* the first refresh reads and fits every window whole (as after a
	 * start); the later ones are the steady state */
	*cold_ms = times[0];
	/* the mean too: a refresh that meets the chunk cuts of every series
	 * (all began together here; in the agent they are spread) or their
	 * periodic full fits costs more than the median one */
	*cpu_mean_ms = 0;
	for (int r = 1; r <= NREFRESH; r++)
		*cpu_mean_ms += cpu[r] / NREFRESH;
	if (getenv("BENCH_FORECAST_VERBOSE"))
		for (int r = 1; r <= NREFRESH; r++)
			fprintf(stderr, "refresh %d: CPU %.1f ms (%llu followed samples)\n", r, cpu[r],
				(unsigned long long)followed[r]);
	*cpu_ms = median(cpu + 1, NREFRESH);
	*max_ms = 0;
	for (int r = 1; r <= NREFRESH; r++)
		*max_ms = fmax(*max_ms, times[r]);
	return median(times + 1, NREFRESH);
}

/* The fits alone: 4 resources of ncont containers, 1 h at 10 s in memory. */
static double fit_cost(size_t ncont)
{
	struct synth s;
	synth_make(&s, SYN_LINEAR, 1);
	struct fc_params p;
	fc_params_defaults(&p);
	size_t a = fc_cut(s.t, s.n, s.now_ms - 3600000 + 1);
	struct fc_input in = { s.t + a, s.v + a, s.n - a, s.t + a, s.v + a, s.n - a, s.now_ms,
			       false };
	struct fc_fit f;
	double sink = 0;
	int64_t t0 = mono_ns();
	for (size_t i = 0; i < 4 * ncont; i++) {
		fc_fit(&p, &in, &f);
		double eta, e, l;
		fc_exhaustion(&f, s.limit, p.max_horizon_ms, &eta, &e, &l);
		sink += eta;
	}
	double ms = (double)(mono_ns() - t0) / 1e6;
	synth_free(&s);
	return sink > 0 ? ms : ms;
}

/*
 * Whether this file's metric ids are libmonitor.a's: an object compiled
 * against another collectors/metrics.def than the library's (a build that
 * read the old file while a rebase wrote the new one, and so looks newer
 * than it) numbers the families otherwise. Such a bench once counted the
 * library's container_forecast_trend as the model samples: 6,000 of 7,000
 * resources, the writable layer's (no quota, no trend) "missing", while
 * the forecaster's table held all 7,000.
 */
static bool metric_ids_agree(void)
{
	const char *fc = metric_families[M_FC_MODEL].name, *mfc = metric_families[M_MFC_MODEL].name;
	if (!strcmp(fc, "container_forecast_model") && !strcmp(mfc, "machine_forecast_model"))
		return true;
	fprintf(stderr, "forecast_bench: built against another collectors/metrics.def than "
		"libmonitor.a (family %d is %s here, not container_forecast_model): rebuild it "
		"(rm build/obj/tests/bench/forecast_bench.o; make bench-forecast)\n", (int)M_FC_MODEL,
		fc);
	return false;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: forecast_bench WORKDIR\n");
		return 2;
	}
	log_set_level(LOG_WARN);
	if (!metric_ids_agree())
		return 1;
	size_t ncont = 1000;
	const char *e = getenv("BENCH_FORECAST_CONTAINERS");
	if (e && atoi(e) > 0)
		ncont = (size_t)atoi(e);
	buf_init(&out, 1 << 20);
	buf_printf(&out, "## Capacity forecasts (tests/bench/forecast_bench.c)\n\n"
		   "Accuracy on synthetic series with known answers, %d seeds per family "
		   "(tests/unit/alerting/fc_synth.h):\n", SEEDS);
	const char *only = getenv("BENCH_FORECAST_ONLY");
	if (!only)
		accuracy();
	char dir[1024];
	if (strlen(argv[1]) >= sizeof(dir) - 64) {
		fprintf(stderr, "forecast_bench: %s: path too long\n", argv[1]);
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s", argv[1]);
	mkdir(dir, 0750);
	buf_printf(&out, "\nCost per refresh (%zu containers: memory, pids, CPU, the writable layer, "
		   "a volume and the two filesystems each; "
		   "forecast.window 1h):\n\n| figure | value | target |\n|---|---|---|\n", ncont);
	double fit = fit_cost(ncont);
	buf_printf(&out, "| fits alone, %zu resources, 360 points each | %.1f ms | - |\n",
		   4 * ncont, fit);
	printf("BENCH forecast fits alone, %zu resources of 360 points|%.1f|ms|report|-\n",
	       4 * ncont, fit);
	int64_t steps[3] = { 10000, 1000, 10000 };
	bool ok = true;
	for (int k = 0; k < 3; k++) {
		int64_t only_ms = 0;
		if (only && (k == 2 || parse_duration_ms(only, &only_ms) < 0 || only_ms != steps[k]))
			continue;
		char sub[1100];
		snprintf(sub, sizeof(sub), "%s/store-%lld", dir, (long long)steps[k]);
		char cmd[1200];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sub);
		if (system(cmd) != 0)
			return 1;
		size_t entries = 0, samples = 0;
		double emit_ms = 0, cold = 0, mx = 0, cpu = 0, cpu_mean = 0, push = 0;
		uint64_t pushed = 0;
		double ms = refresh_cost(sub, ncont, steps[k], k < 2, &entries, &emit_ms, &samples,
					 &cold, &mx, &cpu, &cpu_mean, &push, &pushed);
		if (k == 2) {
			/* Docker's defaults: a memory limit at most, no pids.max, no
			 * CPU quota; the writable layer's filesystem always has one */
			buf_printf(&out, "| refresh, samples every 10s, memory and filesystem limits "
				   "only (no pids.max, no CPU quota) | %.1f ms | - |\n", ms);
			printf("BENCH forecast refresh, %zu containers, memory and fs limits only, "
			       "samples every 10s|%.1f|ms|report|-\n", ncont, ms);
			if (system(cmd) != 0)
				return 1;
			continue;
		}
		buf_printf(&out, "| refresh (store reads and fits), samples every %llds: %zu points "
			   "per series, %zu resources; median of %d refreshes a minute apart "
			   "(slowest); its CPU time with the appender's copies of the followed "
			   "samples of its interval (%llu at %.1f ns), median (mean) | %.1f ms (%.1f ms); "
			   "CPU %.1f ms (%.1f ms) | < 20 ms |\n",
			   (long long)(steps[k] / 1000), (size_t)(3600000 / steps[k]) + 1, entries,
			   NREFRESH, (unsigned long long)pushed, push, ms, mx, cpu, cpu_mean);
		buf_printf(&out, "| the first refresh (every window read and fitted whole), samples "
			   "every %llds | %.1f ms | - |\n", (long long)(steps[k] / 1000), cold);
		printf("BENCH forecast first refresh, %zu containers, samples every %llds|%.1f|ms|"
		       "report|-\n", ncont, (long long)(steps[k] / 1000), cold);
		/* the cost is the refresh thread's CPU time: on a shared host the
		 * wall time also counts the waits for a core */
		if (cpu >= TARGET_MS)
			ok = false;
		if (k == 0) {
			buf_printf(&out, "| the tick copying the table into its snapshot: %zu samples | "
				   "%.2f ms | - |\n", samples, emit_ms);
			printf("BENCH forecast tick cost of copying the table, %zu containers (%zu "
			       "samples)|%.2f|ms|report|-\n", ncont, samples, emit_ms);
		}
		double la[1] = { NAN };
		if (getloadavg(la, 1) < 1)
			la[0] = NAN;
		printf("BENCH forecast refresh CPU time, %zu containers (%zu resources), samples every "
		       "%llds, window 1h|%.1f|ms|< 20 ms|mean %.1f ms, both with the appender's %llu "
		       "copies of followed samples at %.1f ns; refresh wall %.1f ms (slowest %.1f), "
		       "load average %.1f\n", ncont, entries, (long long)(steps[k] / 1000), cpu,
		       cpu_mean, (unsigned long long)pushed, push, ms, mx, la[0]);
		if (system(cmd) != 0)
			return 1;
	}
	fwrite(out.data, 1, out.len, stdout);
	char md[1100];
	snprintf(md, sizeof(md), "%s/../forecast.md", dir);
	FILE *f = fopen(md, "w");
	if (f) {
		fwrite(out.data, 1, out.len, f);
		fclose(f);
	}
	buf_fini(&out);
	return getenv("BENCH_STRICT") && !ok ? 1 : 0;
}
