/*
 * promql_micro.c - the PromQL engine in-process, as alert rules use it: a
 * store in a temporary directory filled through store_append the way the
 * tick fills it (recent data in the head, nothing sealed to SQLite), then
 * the rule query and the dashboard query evaluated many times with no HTTP
 * or JSON around them. Also the same queries over the in-memory source:
 * the engine's own floor, without the store, and, last, over the same store
 * after everything is sealed and written to SQLite (as `monitor import`
 * leaves it, and as data older than the head is read).
 *
 *   promql_micro CONTAINERS INTERVAL_S RUNS
 *
 * Prints one JSON object: medians and 99th percentiles in milliseconds.
 * Built and run by tests/bench/promql_bench.py.
 */
#include "storage/storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

struct stat2 {
	double median, p99;
	size_t series;
};

static int time_query(const struct promql_source *src, const char *q, bool range, int64_t end,
		      int runs, struct stat2 *out)
{
	struct promql_expr *e;
	char err[512];
	if (promql_parse(q, &e, err, sizeof(err)) < 0) {
		fprintf(stderr, "promql_micro: %s\n", err);
		return -1;
	}
	struct promql_opts o;
	promql_opts_defaults(&o);
	double *ms = calloc((size_t)runs, sizeof(double));
	for (int i = 0; i < runs; i++) {
		struct promql_result r;
		struct promql_error pe;
		int64_t t0 = mono_ns();
		int rc = range ? promql_eval_range(src, &o, e, end - 3600000, end, 15000, &r, &pe)
			       : promql_eval_instant(src, &o, e, end, &r, &pe);
		ms[i] = (double)(mono_ns() - t0) / 1e6;
		if (rc < 0) {
			fprintf(stderr, "promql_micro: %s: %s\n", q, pe.msg);
			free(ms);
			promql_expr_free(e);
			return -1;
		}
		out->series = r.nseries;
		promql_result_fini(&r);
	}
	qsort(ms, (size_t)runs, sizeof(double), cmp_d);
	out->median = ms[runs / 2];
	out->p99 = ms[(size_t)(runs * 0.99)];
	free(ms);
	promql_expr_free(e);
	return 0;
}

/* promql_micro --dir DATA_DIR END_S RUNS rule|dash: the query over a data
 * directory as `monitor import` left it (for profilers); prints wall and
 * CPU milliseconds per query. */
static int over_dir(char **argv)
{
	struct store_config cfg;
	store_config_defaults(&cfg);
	snprintf(cfg.dir, sizeof(cfg.dir), "%s", argv[2]);
	cfg.read_only = true;
	struct store *st;
	char err[512];
	if (store_open(&st, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "promql_micro: %s\n", err);
		return 1;
	}
	int64_t end = atoll(argv[3]) * 1000;
	int runs = atoi(argv[4]);
	bool isrule = !strcmp(argv[5], "rule");
	struct promql_store pst = { st, 0, 0 };
	struct promql_source src;
	promql_store_source(&pst, &src);
	struct stat2 r;
	struct timespec c0, c1;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	int rc = time_query(&src, isrule ? "container_memory_working_set_bytes > 1e8" :
			    "sum by (name) (rate(container_cpu_usage_seconds_total[1m]))",
			    !isrule, isrule ? end + 1 : end, runs, &r);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	printf("{\"ms\":%.3f,\"cpu_ms\":%.3f,\"series\":%zu}\n", r.median,
	       ((double)(c1.tv_sec - c0.tv_sec) * 1e3 + (double)(c1.tv_nsec - c0.tv_nsec) / 1e6) / runs,
	       r.series);
	store_close(st);
	return rc < 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "--dir"))
		return over_dir(argv);
	if (argc != 4) {
		fprintf(stderr, "usage: promql_micro CONTAINERS INTERVAL_S RUNS\n");
		return 2;
	}
	int n = atoi(argv[1]), interval_s = atoi(argv[2]), runs = atoi(argv[3]);
	char dir[] = "/tmp/promql-micro-XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	struct store_config cfg;
	store_config_defaults(&cfg);
	snprintf(cfg.dir, sizeof(cfg.dir), "%s", dir);
	cfg.flush_interval_ms = 3600 * 1000;   /* keep it all in the head */
	struct store *st;
	char err[512];
	if (store_open(&st, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "promql_micro: %s\n", err);
		return 1;
	}
	struct promql_mem *mem = promql_mem_new();
	uint32_t *cpu = calloc((size_t)n, sizeof(uint32_t)), *memid = calloc((size_t)n, sizeof(uint32_t));
	size_t *mcpu = calloc((size_t)n, sizeof(size_t)), *mmem = calloc((size_t)n, sizeof(size_t));
	double *v = calloc((size_t)n, sizeof(double)), *rate = calloc((size_t)n, sizeof(double));
	int64_t end = (now_ms() / 1000) * 1000, start = end - 3660 * 1000;
	srand(1);
	for (int i = 0; i < n; i++) {
		char id[96], name[32], image[32], text[256];
		snprintf(id, sizeof(id), "/docker/%064x", i + 1);
		snprintf(name, sizeof(name), "c%04d", i);
		snprintf(image, sizeof(image), "img%d:1.0", i % 10);
		struct store_label l[] = { { "__name__", "container_cpu_usage_seconds_total" },
					   { "id", id }, { "name", name }, { "image", image },
					   { "cpu", "total" } };
		store_series(st, l, 5, STORE_COUNTER, &cpu[i]);
		l[0].value = "container_memory_working_set_bytes";
		store_series(st, l, 4, STORE_GAUGE, &memid[i]);
		snprintf(text, sizeof(text),
			 "container_cpu_usage_seconds_total{id=\"%s\",name=\"%s\",image=\"%s\",cpu=\"total\"}",
			 id, name, image);
		mcpu[i] = (size_t)promql_mem_series(mem, text);
		snprintf(text, sizeof(text), "container_memory_working_set_bytes{id=\"%s\",name=\"%s\",image=\"%s\"}",
			 id, name, image);
		mmem[i] = (size_t)promql_mem_series(mem, text);
		v[i] = rand() % 10000;
		rate[i] = 0.01 + (rand() % 200) / 100.0;
	}
	uint64_t samples = 0;
	for (int64_t t = start; t <= end; t += interval_s * 1000) {
		for (int i = 0; i < n; i++) {
			v[i] += rate[i] * interval_s;
			store_append(st, cpu[i], t, v[i]);
			promql_mem_add(mem, mcpu[i], t, v[i]);
			if (t >= end - 600 * 1000) {
				double m = 1e7 + (double)((i * 7919) % 1000) * 3e5;
				store_append(st, memid[i], t, m);
				promql_mem_add(mem, mmem[i], t, m);
				samples++;
			}
			samples++;
		}
	}
	struct promql_source ssrc, msrc;
	struct promql_store pst = { st, cfg.retention_ms[STORE_TIER_RAW], 0 };
	promql_store_source(&pst, &ssrc);
	promql_mem_source(mem, &msrc);
	const char *rule = "container_memory_working_set_bytes > 1e8";
	const char *dash = "sum by (name) (rate(container_cpu_usage_seconds_total[1m]))";
	int range_runs = runs / 10 > 5 ? runs / 10 : 5;
	struct stat2 rs, rm, ds, dm, rd, dd;
	/* PROMQL_MICRO_PROFILE=rule|dash: only that query over the flushed
	 * store, runs times, for a profiler. */
	const char *prof = getenv("PROMQL_MICRO_PROFILE");
	if (prof) {
		store_seal_all(st);
		store_flush(st);
		bool isrule = !strcmp(prof, "rule");
		struct timespec c0, c1;
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
		int rc = time_query(&ssrc, isrule ? rule : dash, !isrule, end, runs, &rd);
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
		printf("{\"%s_ms\":%.3f,\"cpu_ms\":%.3f}\n", prof, rd.median,
		       ((double)(c1.tv_sec - c0.tv_sec) * 1e3 + (double)(c1.tv_nsec - c0.tv_nsec) / 1e6) / runs);
		return rc < 0;
	}
	if (time_query(&ssrc, rule, false, end, runs, &rs) < 0 ||
	    time_query(&msrc, rule, false, end, runs, &rm) < 0 ||
	    time_query(&ssrc, dash, true, end, range_runs, &ds) < 0 ||
	    time_query(&msrc, dash, true, end, range_runs, &dm) < 0)
		return 1;
	store_seal_all(st);
	if (store_flush(st) < 0) {
		fprintf(stderr, "promql_micro: flush failed\n");
		return 1;
	}
	if (time_query(&ssrc, rule, false, end, runs, &rd) < 0 ||
	    time_query(&ssrc, dash, true, end, range_runs, &dd) < 0)
		return 1;
	printf("{\"containers\":%d,\"interval_s\":%d,\"samples\":%llu,"
	       "\"rule_store_ms\":%.4f,\"rule_store_p99_ms\":%.4f,\"rule_mem_ms\":%.4f,\"rule_matches\":%zu,"
	       "\"dash_store_ms\":%.3f,\"dash_store_p99_ms\":%.3f,\"dash_mem_ms\":%.3f,\"dash_series\":%zu,"
	       "\"rule_disk_ms\":%.4f,\"rule_disk_p99_ms\":%.4f,\"dash_disk_ms\":%.3f,\"dash_disk_p99_ms\":%.3f}\n",
	       n, interval_s, (unsigned long long)samples, rs.median, rs.p99, rm.median, rs.series,
	       ds.median, ds.p99, dm.median, ds.series, rd.median, rd.p99, dd.median, dd.p99);
	store_close(st);
	promql_mem_free(mem);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "promql_micro: could not remove %s\n", dir);
	free(cpu);
	free(memid);
	free(mcpu);
	free(mmem);
	free(v);
	free(rate);
	return 0;
}
