/*
 * storage_bench.c - `make bench-storage`: the time-series store's figures.
 *
 *   build/bench/storage_bench RECORDING WORKDIR
 *
 * RECORDING is Prometheus text with timestamps (as `monitor dump` writes)
 * of real container series recorded on this host (tests/bench/storage_record
 * makes one; tests/fixtures/storage/recording.prom.gz is the committed one).
 * Every figure runs on those real value sequences, extended in time where a
 * figure needs more than the recording holds (counters keep counting from
 * their last value, gauges repeat), never on constants:
 *
 *  1. bytes per sample on disk at full resolution, SQLite pages included,
 *     for raw chunks of 120, 240 and 480 samples, and the tiers' sizes;
 *  2. ingest: snapshots of 60,000 series (the recorded containers cloned
 *     under new ids) through store_append_snapshot, with the writer
 *     flushing every 10 simulated seconds; samples per CPU-second of the
 *     appending thread plus the writer thread;
 *  3. head memory at those 60,000 series (accounted bytes and RSS growth),
 *     with the raw open chunks half full (360 ticks of 240-sample chunks)
 *     and the roll-up chunks at their average fill (about six more hours,
 *     one tick a minute);
 *  4. reads: one series over 24 h raw; 1,000 series over 1 h raw; 1,000
 *     series over 30 days from the 1 h tier (median of 5 after one cold run).
 *
 * Prints a Markdown table and writes it to WORKDIR/../storage.md.
 * Knobs: BENCH_STORAGE_SERIES (60000), BENCH_STORAGE_TICKS (360),
 * BENCH_STRICT=1 exits 1 when a figure misses its target.
 */
#include "collectors/collector.h"
#include "storage/storage.h"

#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct rec {
	char *labels_text;
	struct store_label *labels;
	size_t nlabels;
	const char *name;
	bool counter;
	size_t n;
	double *v;
	/* for snapshots */
	int family;
	char *extra;
	char *container;   /* the recorded container's id label, or NULL */
};

static struct rec *recs;
static size_t nrecs;
static double rec_bps, rec_blob;    /* the recording as imported */
static uint64_t rec_samples;
static const char *workdir;
static int fails;

static double thread_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double process_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double rss_mb(void)
{
	char buf[4096];
	FILE *f = fopen("/proc/self/status", "r");
	double kb = 0;
	while (f && fgets(buf, sizeof(buf), f))
		if (!strncmp(buf, "VmRSS:", 6))
			kb = atof(buf + 6);
	if (f)
		fclose(f);
	return kb / 1024;
}

/* Bytes this process handed to write(2)/pwrite(2) so far (/proc/self/io wchar). */
static double written_bytes(void)
{
	char buf[256];
	FILE *f = fopen("/proc/self/io", "r");
	double v = 0;
	while (f && fgets(buf, sizeof(buf), f))
		if (!strncmp(buf, "wchar:", 6))
			v = atof(buf + 6);
	if (f)
		fclose(f);
	return v;
}

static void die(const char *what, const char *err)
{
	fprintf(stderr, "storage_bench: %s: %s\n", what, err);
	exit(2);
}

static struct store *open_at(const char *name, int chunk_samples)
{
	char path[PATH_MAX], cmd[PATH_MAX + 16], err[PATH_MAX + 256];
	snprintf(path, sizeof(path), "%s/%s", workdir, name);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", path);
	if (system(cmd) != 0 || mkdir(path, 0755) < 0)
		die(path, "cannot make");
	struct store_config c;
	store_config_defaults(&c);
	snprintf(c.dir, sizeof(c.dir), "%s", path);
	c.chunk_samples = chunk_samples;
	c.max_size_bytes = 0;
	for (int t = 0; t < STORE_TIER__COUNT; t++)
		c.retention_ms[t] = 0;
	c.flush_interval_ms = 3600 * 1000; /* the bench says when */
	struct store *s;
	if (store_open(&s, &c, err, sizeof(err)) < 0)
		die("store_open", err);
	return s;
}

static struct store *reopen(const char *name)
{
	char err[PATH_MAX + 256];
	struct store_config c;
	store_config_defaults(&c);
	snprintf(c.dir, sizeof(c.dir), "%s/%s", workdir, name);
	c.max_size_bytes = 0;
	for (int t = 0; t < STORE_TIER__COUNT; t++)
		c.retention_ms[t] = 0;
	struct store *s;
	if (store_open(&s, &c, err, sizeof(err)) < 0)
		die("store_open", err);
	return s;
}

/* Value i of a recorded sequence extended past its end. */
static double value_at(const struct rec *r, size_t i)
{
	size_t n = r->n;
	if (i < n)
		return r->v[i];
	size_t cycle = i / n, k = i % n;
	if (!r->counter)
		return r->v[cycle & 1 ? n - 1 - k : k]; /* back and forth: no jump */
	double step = n > 1 ? r->v[1] - r->v[0] : 0;
	double span = r->v[n - 1] - r->v[0] + (step > 0 ? step : 0);
	return r->v[k] + span * (double)cycle;
}

/* ---- loading the recording ------------------------------------------------ */

static void load_recording(const char *path)
{
	struct store *s = open_at("recording", 0);
	struct store_import_result res;
	char err[PATH_MAX + 256];
	if (store_import_file(s, path, &res, err, sizeof(err)) < 0)
		die("import", err);
	struct store_series_set set;
	if (store_select(s, NULL, 0, INT64_MIN, INT64_MAX, &set) < 0)
		die("select", "failed");
	recs = calloc(set.n, sizeof(*recs));
	for (size_t i = 0; i < set.n; i++) {
		struct store_series_info *si = &set.series[i];
		struct store_iter *it;
		if (store_iter_open(s, si->id, STORE_TIER_RAW, INT64_MIN, INT64_MAX, &it) < 0)
			continue;
		struct rec *r = &recs[nrecs];
		size_t cap = 1024;
		r->v = malloc(cap * sizeof(double));
		struct store_point p;
		while (store_iter_next(it, &p) > 0) {
			if (store_is_stale(p.v))
				continue;
			if (r->n == cap)
				r->v = realloc(r->v, (cap *= 2) * sizeof(double));
			r->v[r->n++] = p.v;
		}
		store_iter_free(it);
		if (r->n < 60) {
			free(r->v);
			continue; /* too short a life to tell anything */
		}
		r->labels = calloc(si->nlabels, sizeof(*r->labels));
		r->nlabels = si->nlabels;
		char extra[1024] = "";
		size_t el = 0;
		for (size_t j = 0; j < si->nlabels; j++) {
			r->labels[j].name = strdup(si->labels[j].name);
			r->labels[j].value = strdup(si->labels[j].value);
			const char *k = si->labels[j].name;
			if (!strcmp(k, "__name__"))
				r->name = r->labels[j].value;
			else if (!strcmp(k, "id"))
				r->container = strdup(si->labels[j].value);
			else if (strcmp(k, "name") && strcmp(k, "image") && strncmp(k, "container_label_", 16))
				el += (size_t)snprintf(extra + el, sizeof(extra) - el, "%s%s=\"%s\"",
						       el ? "," : "", k, si->labels[j].value);
		}
		r->extra = el ? strdup(extra) : NULL;
		size_t nl = strlen(r->name);
		r->counter = nl > 6 && !strcmp(r->name + nl - 6, "_total");
		r->family = -1;
		for (int f = 0; f < M__COUNT; f++)
			if (!strcmp(metric_families[f].name, r->name))
				r->family = f;
		nrecs++;
	}
	store_series_set_free(&set);
	/* The recording itself, as imported: real data with no extension. */
	store_flush(s);
	store_retention_run(s, INT64_MAX / 4);
	struct store_disk_usage u;
	if (store_disk_usage(s, &u) == 0 && res.samples > res.out_of_order) {
		rec_bps = (double)u.tier_bytes[STORE_TIER_RAW] / (double)(res.samples - res.out_of_order);
		rec_blob = (double)u.tier_blob_bytes[STORE_TIER_RAW] /
			   (double)(res.samples - res.out_of_order);
		rec_samples = res.samples - res.out_of_order;
	}
	store_close(s);
	size_t samples = 0;
	for (size_t i = 0; i < nrecs; i++)
		samples += recs[i].n;
	fprintf(stderr, "storage_bench: recording %s: %zu series, %zu samples\n", path, nrecs, samples);
	if (!nrecs)
		die(path, "no usable series");
}

/* ---- the table ----------------------------------------------------------------- */

static char table[16384];
static size_t tlen;

static void row(const char *figure, const char *value, const char *target, const char *peer,
		int pass)
{
	const char *pf = pass > 0 ? "pass" : pass == 0 ? "FAIL" : "info";
	if (pass == 0)
		fails++;
	tlen += (size_t)snprintf(table + tlen, sizeof(table) - tlen, "| %s | %s | %s | %s | %s |\n",
				 figure, value, target, peer, pf);
}

/* ---- 1. bytes per sample ------------------------------------------------------------ */

static void bench_bytes(int chunk, size_t hours, double *bps_out)
{
	char name[32];
	snprintf(name, sizeof(name), "bytes-%d", chunk);
	struct store *s = open_at(name, chunk);
	int64_t t0 = 1700000000000LL;
	size_t n = hours * 3600, samples = 0;
	for (size_t i = 0; i < nrecs; i++) {
		uint32_t id;
		if (store_series(s, recs[i].labels, recs[i].nlabels,
				 recs[i].counter ? STORE_COUNTER : STORE_GAUGE, &id) < 0)
			continue;
		for (size_t k = 0; k < n; k++)
			if (store_append(s, id, t0 + (int64_t)k * 1000, value_at(&recs[i], k)) == 0)
				samples++;
	}
	store_seal_all(s);
	store_flush(s);
	/* The pass a running store makes every 5 minutes: merges the small
	 * sealed roll-up chunks (retention is off in these stores). */
	store_retention_run(s, t0);
	struct store_disk_usage u;
	store_disk_usage(s, &u);
	double bps = (double)u.tier_bytes[STORE_TIER_RAW] / (double)samples;
	double blob = (double)u.tier_blob_bytes[STORE_TIER_RAW] / (double)samples;
	*bps_out = bps;
	char fig[256], val[512];
	snprintf(fig, sizeof(fig), "bytes/sample on disk, raw, %d-sample chunks (%zu real series × %zu h at 1 s)",
		 chunk, nrecs, hours);
	snprintf(val, sizeof(val), "%.3f B (chunk data alone %.3f B; %llu chunks)", bps, blob,
		 (unsigned long long)u.tier_chunks[STORE_TIER_RAW]);
	row(fig, val, "≤ 1.5 B", "Gorilla 1.37, Prometheus 1–2, Netdata tier0 0.6 (zstd)",
	    chunk == STORE_CHUNK_SAMPLES ? bps <= 1.5 : -1);
	if (chunk == STORE_CHUNK_SAMPLES) {
		snprintf(val, sizeof(val), "1m: %.1f KB, %.2f B/sample covered (%.1f B/point); "
			 "1h: %.1f KB; whole file %.2f MB = %.3f B/sample",
			 u.tier_bytes[1] / 1e3, (double)u.tier_bytes[1] / (double)samples,
			 (double)u.tier_bytes[1] / ((double)samples / 60),
			 u.tier_bytes[2] / 1e3, u.file_bytes / 1e6, (double)u.file_bytes / (double)samples);
		row("roll-up tiers (min, max, sum, count, last), same data", val, "report",
		    "Netdata tier1 6 B/point", -1);
	}
	store_close(s);
}

/* ---- 2, 3. ingest and head memory ------------------------------------------------------ */

struct fake_container {
	struct coll_container c;
	char cg[96], labels[256];
	size_t first, count;      /* its series in the rec order */
};

static void bench_ingest(size_t want_series, int ticks)
{
	/* Recorded containers and their series. */
	size_t ncont = 0;
	char **cont = calloc(nrecs, sizeof(*cont));
	for (size_t i = 0; i < nrecs; i++) {
		if (!recs[i].container || recs[i].family < 0)
			continue;
		size_t j;
		for (j = 0; j < ncont && strcmp(cont[j], recs[i].container); j++)
			;
		if (j == ncont)
			cont[ncont++] = recs[i].container;
	}
	size_t *per = calloc(ncont, sizeof(*per));
	size_t **idx = calloc(ncont, sizeof(*idx));
	for (size_t j = 0; j < ncont; j++) {
		idx[j] = calloc(nrecs, sizeof(size_t));
		for (size_t i = 0; i < nrecs; i++)
			if (recs[i].container && recs[i].family >= 0 && !strcmp(recs[i].container, cont[j]))
				idx[j][per[j]++] = i;
	}
	if (!ncont) {
		row("ingest", "no container series in the recording", "≥ 1M samples/s", "—", 0);
		return;
	}
	size_t nfake = 0, total = 0;
	struct fake_container *fc = NULL;
	while (total < want_series) {
		fc = realloc(fc, (nfake + 1) * sizeof(*fc));
		struct fake_container *f = &fc[nfake];
		memset(f, 0, sizeof(*f));
		size_t j = nfake % ncont;
		snprintf(f->c.id, sizeof(f->c.id), "%064zx", nfake + 1);
		snprintf(f->cg, sizeof(f->cg), "/docker/%s", f->c.id);
		snprintf(f->labels, sizeof(f->labels), "id=\"%s\",image=\"bench\",name=\"bench-%zu\"",
			 f->cg, nfake);
		f->first = j;
		f->count = per[j];
		total += per[j];
		nfake++;
	}
	for (size_t k = 0; k < nfake; k++) { /* fc moved while it grew */
		fc[k].c.cgroup = fc[k].cg;
		fc[k].c.prom_labels = fc[k].labels;
	}
	double rss0 = rss_mb();
	struct store *s = open_at("ingest", 0);
	int64_t t0 = 1700000000000LL;
	double append_cpu = 0, append_wall = 0, main_cpu0 = thread_cpu_s(), proc0 = process_cpu_s();
	double wrote0 = written_bytes();
	uint64_t samples = 0;
	for (int tick = 0; tick < ticks; tick++) {
		struct coll_sink sink;
		sink_open(&sink, t0 + tick * 1000LL);
		for (size_t k = 0; k < nfake; k++) {
			struct fake_container *f = &fc[k];
			sink_begin_container(&sink, &f->c, 0);
			for (size_t m = 0; m < f->count; m++) {
				struct rec *r = &recs[idx[f->first][m]];
				sink_emit(&sink, (enum metric_id)r->family, r->extra,
					  value_at(r, (size_t)tick + k * 7));
			}
		}
		struct snapshot *snap = sink_close(&sink);
		double c0 = thread_cpu_s(), w0 = wall_s();
		store_append_snapshot(s, snap);
		append_cpu += thread_cpu_s() - c0;
		append_wall += wall_s() - w0;
		samples += snap->nsamples;
		snapshot_unref(snap);
		if (tick % 10 == 9)
			store_flush(s); /* the writer's work: counted below as its CPU */
	}
	store_flush(s);
	double main_cpu = thread_cpu_s() - main_cpu0, proc = process_cpu_s() - proc0;
	double writer_cpu = proc - main_cpu;
	struct store_stats st;
	store_stats(s, &st);
	double rss1 = rss_mb();
	malloc_trim(0); /* what is live, not what the allocator kept */
	double rss2 = rss_mb();
	char fig[256], val[512];
	double rate = (double)samples / (append_cpu + writer_cpu);
	snprintf(fig, sizeof(fig), "ingest, %llu series × %d ticks (head + chunks + SQLite writes)",
		 (unsigned long long)st.series, ticks);
	snprintf(val, sizeof(val), "%.2f M samples/s per core (append %.0f ns/sample, writer %.0f "
		 "ns/sample; append wall %.1f ms/tick)", rate / 1e6, append_cpu / samples * 1e9,
		 writer_cpu / samples * 1e9, append_wall / ticks * 1e3);
	row(fig, val, "≥ 1M samples/s on one core", "—", rate >= 1e6);
	store_flush(s);
	double wrote = written_bytes() - wrote0;
	/* Roll-up chunks fill over hours: go on at one tick a minute for about
	 * six hours, which leaves the open 1 m chunks (20 points) and 1 h chunks
	 * (12 points) about half full, their average. */
	int64_t t1 = t0 + (int64_t)ticks * 1000;
	const int slow_ticks = 364;
	for (int tick = 0; tick < slow_ticks; tick++) {
		struct coll_sink sink;
		sink_open(&sink, t1 + (tick + 1) * 60000LL);
		for (size_t k = 0; k < nfake; k++) {
			struct fake_container *f = &fc[k];
			sink_begin_container(&sink, &f->c, 0);
			for (size_t m = 0; m < f->count; m++) {
				struct rec *r = &recs[idx[f->first][m]];
				sink_emit(&sink, (enum metric_id)r->family, r->extra,
					  value_at(r, (size_t)(ticks + tick) + k * 7));
			}
		}
		struct snapshot *snap = sink_close(&sink);
		store_append_snapshot(s, snap);
		snapshot_unref(snap);
		if (tick % 10 == 9)
			store_flush(s);
	}
	store_flush(s);
	struct store_stats st2;
	store_stats(s, &st2);
	/* At 1 s the raw open chunks hold what phase one left (on average half
	 * a chunk); the roll-ups what phase two left. */
	double steady = (double)st2.head_bytes - (double)st2.head_raw_bytes + (double)st.head_raw_bytes;
	snprintf(fig, sizeof(fig), "head memory, %llu active series",
		 (unsigned long long)st.active_series);
	(void)slow_ticks;
	snprintf(val, sizeof(val), "%.1f MB at 1 s with roll-ups at average fill (%.0f B/series: "
		 "raw open chunks %.1f MB, roll-up chunks and accumulators %.1f MB, series, labels "
		 "and index the rest); after %d s at 1 s alone %.1f MB; process RSS +%.1f MB, +%.1f MB "
		 "after malloc_trim (SQLite caches and a 60k-sample snapshot included)",
		 steady / 1e6, steady / (double)st.series, st.head_raw_bytes / 1e6,
		 st2.head_tier_bytes / 1e6, ticks, st.head_bytes / 1e6, rss1 - rss0, rss2 - rss0);
	row(fig, val, "< 64 MB", "Netdata ~16 KiB per metric", steady < 64e6);
	double before_close = written_bytes();
	store_close(s); /* with the checkpoint a running store makes every 5 minutes */
	double ckpt = written_bytes() - before_close;
	snprintf(val, sizeof(val), "%.1f B written per sample at 1 s (%.1f MB for %d ticks: sealed "
		 "chunks, the flush log, SQLite's WAL and its checkpoints), plus a head checkpoint "
		 "every 5 minutes (%.1f MB here, %.1f B per sample of those 5 minutes)",
		 wrote / (double)samples, wrote / 1e6, ticks, ckpt / 1e6,
		 ckpt / (300.0 * (double)st.active_series));
	row("disk writes for that ingest", val, "report", "Prometheus: a WAL record per sample, then chunks",
	    -1);
	for (size_t j = 0; j < ncont; j++)
		free(idx[j]);
	free(idx);
	free(per);
	free(cont);
	free(fc);
}

/* ---- 4. reads --------------------------------------------------------------------------- */

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return v[n / 2];
}

static size_t read_series(struct store *s, uint32_t id, enum store_tier tier, int64_t a, int64_t b)
{
	struct store_iter *it;
	if (store_iter_open(s, id, tier, a, b, &it) < 0)
		return 0;
	/* As the query engine reads: in batches. */
	int64_t t[512];
	double v[512];
	size_t n = 0;
	double sum = 0;
	ssize_t k;
	while ((k = store_iter_batch(it, t, v, 512)) > 0) {
		for (ssize_t i = 0; i < k; i++)
			sum += v[i];
		n += (size_t)k;
	}
	store_iter_free(it);
	return n + (sum == 12345.678); /* keep the loop honest */
}

static void bench_reads(void)
{
	const size_t N = 1000;
	struct store *s = open_at("reads", 0);
	int64_t T = 1700000000000LL;
	T -= T % 3600000;
	int64_t day = 86400000, month = 30 * day;
	for (size_t j = 0; j < N; j++) {
		const struct rec *r = &recs[j % nrecs];
		struct store_label l[70];
		size_t n = 0;
		char inst[32];
		snprintf(inst, sizeof(inst), "%zu", j);
		for (size_t k = 0; k < r->nlabels && n < 64; k++)
			l[n++] = r->labels[k];
		l[n++] = (struct store_label){ "bench_instance", inst };
		uint32_t id;
		if (store_series(s, l, n, r->counter ? STORE_COUNTER : STORE_GAUGE, &id) < 0)
			die("series", "failed");
		int64_t fine_from = T - (j == 0 ? day : 3600000);
		size_t k = 0;
		for (int64_t t = T - month; t < fine_from; t += 300000)
			store_append(s, id, t, value_at(r, k++));
		for (int64_t t = fine_from; t <= T; t += 1000)
			store_append(s, id, t, value_at(r, k++));
		if (j % 100 == 99)
			store_flush(s);
	}
	store_flush(s);
	store_retention_run(s, T); /* the 5-minute pass: merges roll-up chunks */
	store_close(s);
	s = reopen("reads");
	struct store_matcher m;
	char err[256];
	store_matcher_init(&m, STORE_MATCH_RE, "bench_instance", "[0-9]+", err, sizeof(err));
	struct store_series_set one;
	struct store_matcher m0;
	store_matcher_init(&m0, STORE_MATCH_EQ, "bench_instance", "0", err, sizeof(err));
	store_select(s, &m0, 1, T - day, T, &one);
	uint32_t id0 = one.n ? one.series[0].id : 0;
	store_series_set_free(&one);

	double r1[12], r2[12], r3[12], c2[12], c3[12];
	const int reps = 12;
	for (int k = getenv("BENCH_STORAGE_PROFILE") ? 40 : 0; k > 0; k--) {
		struct store_series_set set;
		store_select(s, &m, 1, T - 3600000, T, &set);
		for (size_t i = 0; i < set.n; i++)
			read_series(s, set.series[i].id, STORE_TIER_RAW, T - 3600000, T);
		store_series_set_free(&set);
	}
	size_t n1 = 0, n2 = 0, n3 = 0;
	for (int rep = 0; rep < reps; rep++) {
		double w0 = wall_s();
		n1 = read_series(s, id0, STORE_TIER_RAW, T - day, T);
		r1[rep] = (wall_s() - w0) * 1e3;
		w0 = wall_s();
		double cpu0 = thread_cpu_s();
		struct store_series_set set;
		store_select(s, &m, 1, T - 3600000, T, &set);
		n2 = 0;
		for (size_t i = 0; i < set.n; i++)
			n2 += read_series(s, set.series[i].id, STORE_TIER_RAW, T - 3600000, T);
		r2[rep] = (wall_s() - w0) * 1e3;
		c2[rep] = (thread_cpu_s() - cpu0) * 1e3;
		w0 = wall_s();
		cpu0 = thread_cpu_s();
		n3 = 0;
		for (size_t i = 0; i < set.n; i++)
			n3 += read_series(s, set.series[i].id, STORE_TIER_1H, T - month, T);
		r3[rep] = (wall_s() - w0) * 1e3;
		c3[rep] = (thread_cpu_s() - cpu0) * 1e3;
		store_series_set_free(&set);
	}
	{
		/* Where the time goes: opening the iterators alone. */
		struct store_series_set set;
		store_select(s, &m, 1, T - 3600000, T, &set);
		double w0 = wall_s();
		for (size_t i = 0; i < set.n; i++) {
			struct store_iter *it;
			if (store_iter_open(s, set.series[i].id, STORE_TIER_RAW, T - 3600000, T, &it) == 0)
				store_iter_free(it);
		}
		fprintf(stderr, "storage_bench: opening 1,000 raw iterators over 1 h: %.1f ms\n",
			(wall_s() - w0) * 1e3);
		store_series_set_free(&set);
	}
	char val[256];
	double cold1 = r1[0], cold2 = r2[0], cold3 = r3[0];
	/* Medians after the first (cold) run; the host may be busy with other
	 * work, so the fastest run and the CPU time are shown beside them. */
	double m1 = median(r1 + 1, reps - 1), m2 = median(r2 + 1, reps - 1),
	       m3 = median(r3 + 1, reps - 1);
	double b1 = r1[1], b2 = r2[1], b3 = r3[1];
	for (int k = 1; k < reps; k++) {
		b1 = r1[k] < b1 ? r1[k] : b1;
		b2 = r2[k] < b2 ? r2[k] : b2;
		b3 = r3[k] < b3 ? r3[k] : b3;
	}
	snprintf(val, sizeof(val), "%.2f ms (best %.2f; %zu samples; first run %.2f ms)", m1, b1, n1,
		 cold1);
	row("read 1 series × 24 h, raw", val, "< 5 ms", "—", m1 < 5);
	snprintf(val, sizeof(val), "%.1f ms (best %.1f, CPU %.1f; %zu samples; first run %.1f ms)",
		 m2, b2, median(c2 + 1, reps - 1), n2, cold2);
	row("read 1,000 series × 1 h, raw (select by regex + iterate)", val, "< 50 ms", "—", m2 < 50);
	snprintf(val, sizeof(val), "%.1f ms (best %.1f, CPU %.1f; %zu points; first run %.1f ms)",
		 m3, b3, median(c3 + 1, reps - 1), n3, cold3);
	row("read 1,000 series × 30 days, 1 h tier", val, "< 50 ms", "—", m3 < 50);
	store_matcher_fini(&m);
	store_matcher_fini(&m0);
	store_close(s);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: storage_bench RECORDING WORKDIR\n");
		return 2;
	}
	log_set_level(LOG_WARN);
	workdir = argv[2];
	mkdir(workdir, 0755);
	size_t want = getenv("BENCH_STORAGE_SERIES") ? (size_t)atol(getenv("BENCH_STORAGE_SERIES")) : 60000;
	/* 360 ticks leave the raw open chunks half full, their average. */
	int ticks = getenv("BENCH_STORAGE_TICKS") ? atoi(getenv("BENCH_STORAGE_TICKS")) : 360;
	load_recording(argv[1]);
	tlen += (size_t)snprintf(table + tlen, sizeof(table) - tlen,
				 "| figure | value | target | peer | pass/fail |\n|---|---|---|---|---|\n");
	if (rec_samples) {
		char val[256];
		snprintf(val, sizeof(val), "%.3f B (chunk data alone %.3f B; %llu samples)", rec_bps,
			 rec_blob, (unsigned long long)rec_samples);
		row("bytes/sample on disk, raw, the recording as it is (no extension)", val, "≤ 1.5 B",
		    "Gorilla 1.37, Prometheus 1–2", rec_bps <= 1.5);
	}
	double bps[3] = { 0, 0, 0 };
	int sizes[3] = { 120, 240, 480 };
	const char *only = getenv("BENCH_STORAGE_ONLY"); /* bytes, ingest or reads */
	for (int i = 0; i < 3 && (!only || !strcmp(only, "bytes")); i++) {
		fprintf(stderr, "storage_bench: bytes per sample, %d-sample chunks\n", sizes[i]);
		bench_bytes(sizes[i], 4, &bps[i]);
	}
	if (!only || !strcmp(only, "ingest")) {
		fprintf(stderr, "storage_bench: ingest\n");
		bench_ingest(want, ticks);
	}
	if (!only || !strcmp(only, "reads")) {
		fprintf(stderr, "storage_bench: reads\n");
		bench_reads();
	}
	printf("%s", table);
	double load[3] = { 0, 0, 0 };
	FILE *la = fopen("/proc/loadavg", "r");
	if (la) {
		if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
			load[0] = 0;
		fclose(la);
	}
	printf("\nHost: %ld CPUs, load average %.1f during the run (reads: medians after one "
	       "cold run; best and CPU time beside).\n", sysconf(_SC_NPROCESSORS_ONLN), load[0]);
	printf("Recording: %zu real series from this host's containers; chunk size %d "
	       "(120: %.3f B, 240: %.3f B, 480: %.3f B per sample).\n",
	       nrecs, STORE_CHUNK_SAMPLES, bps[0], bps[1], bps[2]);
	char out[PATH_MAX];
	snprintf(out, sizeof(out), "%s/../storage.md", workdir);
	FILE *f = fopen(out, "w");
	if (f) {
		fputs(table, f);
		fclose(f);
	}
	const char *strict = getenv("BENCH_STRICT");
	return strict && *strict == '1' && fails ? 1 : 0;
}
