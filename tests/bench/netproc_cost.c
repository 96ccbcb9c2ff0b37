/*
 * netproc_cost.c - the CPU time each collector spends per container per
 * tick, measured inside one process so that nothing else the agent (or the
 * host) does is counted: tests/bench/netproc_bench builds it against
 * build/libmonitor.a and runs it over the fake containers it made.
 *
 *   netproc_cost TICKS CGROUP...
 *
 * Runs the cgroup, network and process collectors (process_interval 10 s,
 * the default) over the given cgroups (paths below the walk hierarchy, as
 * "/docker/<id>") for TICKS simulated 1 s ticks after two warm-up ticks
 * (files opened, namespaces claimed, first scans done), timing each
 * collector's collect() calls with CLOCK_THREAD_CPUTIME_ID. Prints one JSON
 * object: microseconds per container per tick for each collector, and the
 * samples each emitted per container per tick.
 */
#include "collectors/collector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t thread_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: netproc_cost TICKS CGROUP...\n");
		return 2;
	}
	int ticks = atoi(argv[1]);
	size_t n = (size_t)(argc - 2);
	struct cg_layout layout;
	if (hostroot_set("/") < 0 || cg_layout_detect(&layout) < 0) {
		fprintf(stderr, "netproc_cost: no cgroup hierarchy\n");
		return 1;
	}
	struct coll_ctx ctx = { .layout = &layout, .network = true, .process_interval_ms = 10000 };
	const struct coll_ops *ops[] = { &coll_cgroup_ops, &coll_netns_ops, &coll_procs_ops };
	enum { K = 3 };
	void *state[K];
	for (int k = 0; k < K; k++)
		if (ops[k]->init(&state[k], &ctx) != 0) {
			fprintf(stderr, "netproc_cost: collector %s failed to start\n", ops[k]->name);
			return 1;
		}
	struct coll_container *cs = calloc(n, sizeof(*cs));
	for (size_t i = 0; i < n; i++) {
		const char *slash = strrchr(argv[i + 2], '/');
		snprintf(cs[i].id, sizeof(cs[i].id), "%s", slash ? slash + 1 : argv[i + 2]);
		cs[i].cgroup = argv[i + 2];
		cs[i].runtime = RUNTIME_DOCKER;
		cs[i].meta.restart_count = -1;
		cs[i].cgroup_ctime = (double)i;
	}
	int64_t spent[K] = { 0 };
	uint64_t samples[K] = { 0 }, errors[K] = { 0 };
	for (int t = -2; t < ticks; t++) {
		struct coll_sink sink;
		if (sink_open(&sink, (int64_t)(t + 3) * 1000) < 0)
			return 1;
		for (size_t i = 0; i < n; i++) {
			sink_begin_container(&sink, &cs[i], 0);
			for (int k = 0; k < K; k++) {
				size_t before = sink.snap->nsamples;
				int64_t t0 = thread_ns();
				int e = ops[k]->collect(state[k], &cs[i], &cs[i].priv[k], &sink);
				int64_t dt = thread_ns() - t0;
				if (t >= 0) {
					spent[k] += dt;
					samples[k] += sink.snap->nsamples - before;
					errors[k] += e > 0 ? (uint64_t)e : 0;
				}
			}
		}
		snapshot_unref(sink_close(&sink));
	}
	printf("{\"containers\":%zu,\"ticks\":%d", n, ticks);
	for (int k = 0; k < K; k++)
		printf(",\"%s\":{\"us_per_container_tick\":%.3f,\"samples_per_container_tick\":%.2f,"
		       "\"errors\":%llu}", ops[k]->name, (double)spent[k] / 1e3 / (double)n / ticks,
		       (double)samples[k] / (double)n / ticks, (unsigned long long)errors[k]);
	printf("}\n");
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < K; k++)
			ops[k]->forget(state[k], &cs[i], &cs[i].priv[k]);
	for (int k = 0; k < K; k++)
		ops[k]->destroy(state[k]);
	free(cs);
	return 0;
}
