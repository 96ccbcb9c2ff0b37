/*
 * fs_bench.c - `make bench-fs`: what the lifecycle and filesystem
 * collection adds to a tick, per container, next to the agent's whole
 * per-container budget that `make bench` measures (build/bench/table.md).
 *
 *   fs steady      coll_fs_ops.collect for a container with a writable
 *                  layer, a volume and a bind mount, once their walks are
 *                  done: three fstatfs(2) on kept descriptors, six samples
 *   fs none        the same for a container without runtime metadata
 *   lifecycle      coll_emit_lifecycle for Docker metadata (state, health,
 *                  restarts, OOM flag, exit code)
 *   exited shown   the registry's cost per exited container shown without
 *                  a cgroup (collect_gone: labels cached, lifecycle series)
 *   walk           CPU per directory entry of the budgeted walk, so the
 *                  walk's worst case per tick is budget x this
 *
 * Synthetic containers over directories in a temporary host root (no root
 * needed, no Docker). CPU is this process' CPU time (CLOCK_PROCESS_CPUTIME_ID)
 * over many ticks; each figure is the median of 5 runs. Prints a table and
 * writes it to build/bench/fs.md.
 */
#include "collectors/collector.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define N 1000
#define TICKS 50
#define RUNS 5
#define WALK_FILES 20000

static char root[64];

/* Runs a shell command with every "@" replaced by the temporary root. */
static void sh(const char *tmpl, const char *arg)
{
	char cmd[1024];
	size_t n = 0;
	for (const char *p = tmpl; *p && n + strlen(arg) + 1 < sizeof(cmd); p++) {
		if (*p == '@') {
			memcpy(cmd + n, arg, strlen(arg));
			n += strlen(arg);
		} else {
			cmd[n++] = *p;
		}
	}
	cmd[n] = '\0';
	if (system(cmd) != 0) {
		fprintf(stderr, "fs_bench: %s failed\n", cmd);
		exit(1);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The median; a difference within timer noise below zero reads as 0. */
static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2] < 0 ? 0 : v[n / 2];
}

static struct coll_container *make_containers(bool with_meta)
{
	struct coll_container *cs = calloc(N, sizeof(*cs));
	for (int i = 0; i < N; i++) {
		struct coll_container *c = &cs[i];
		snprintf(c->id, sizeof(c->id), "%064d", i);
		c->cgroup = (char *)"/docker/x";
		c->runtime = with_meta ? RUNTIME_DOCKER : RUNTIME_RUNC;
		c->meta.restart_count = -1;
		if (!with_meta)
			continue;
		c->has_meta = true;
		c->meta.upper_dir = strdup("/layer");
		struct coll_mount v = { .type = "volume", .name = "v", .source = "/vol", .destination = "/data", .rw = true };
		struct coll_mount b = { .type = "bind", .source = "/bind", .destination = "/etc/app" };
		coll_meta_add_mount(&c->meta, &v);
		coll_meta_add_mount(&c->meta, &b);
		c->meta.state = strdup("running");
		c->meta.health = strdup("healthy");
		c->meta.has_state = true;
		c->meta.restart_count = 2;
	}
	return cs;
}

/* CPU per container per tick of coll_fs_ops over cs, after warm-up ticks
 * that finish every walk. */
static double fs_cost(struct coll_container *cs, int64_t budget)
{
	struct coll_ctx ctx = { .fs_interval_ms = 3600 * 1000, .fs_walk_budget = budget };
	void *st;
	coll_fs_ops.init(&st, &ctx);
	int64_t t = 1000000, cpu = 0;
	for (int k = 0; k < 10 + TICKS; k++) {
		struct coll_sink sink;
		sink_open(&sink, t += 1000);
		int64_t c0 = cpu_time_ns();
		for (int i = 0; i < N; i++) {
			sink_begin_container(&sink, &cs[i], 0);
			coll_fs_ops.collect(st, &cs[i], &cs[i].priv[0], &sink);
		}
		if (k >= 10)
			cpu += cpu_time_ns() - c0;
		snapshot_unref(sink_close(&sink));
	}
	for (int i = 0; i < N; i++)
		coll_fs_ops.forget(st, &cs[i], &cs[i].priv[0]);
	coll_fs_ops.destroy(st);
	return (double)cpu / TICKS / N / 1000;
}

/* The same loop without the collector: what sink_begin_container costs,
 * subtracted from the figures above. */
static double base_cost(struct coll_container *cs)
{
	int64_t cpu = 0;
	for (int k = 0; k < TICKS; k++) {
		struct coll_sink sink;
		sink_open(&sink, 1000 + k);
		int64_t c0 = cpu_time_ns();
		for (int i = 0; i < N; i++)
			sink_begin_container(&sink, &cs[i], 0);
		cpu += cpu_time_ns() - c0;
		snapshot_unref(sink_close(&sink));
	}
	return (double)cpu / TICKS / N / 1000;
}

static double lifecycle_cost(struct coll_container *cs)
{
	int64_t cpu = 0;
	for (int k = 0; k < TICKS; k++) {
		struct coll_sink sink;
		sink_open(&sink, 1000 + k);
		for (int i = 0; i < N; i++)
			sink_begin_container(&sink, &cs[i], 0);
		int64_t c0 = cpu_time_ns();
		sink.cur = 0;
		for (int i = 0; i < N; i++) {
			sink.cur = (uint32_t)i;
			coll_emit_lifecycle(&sink, &cs[i].meta);
		}
		cpu += cpu_time_ns() - c0;
		snapshot_unref(sink_close(&sink));
	}
	return (double)cpu / TICKS / N / 1000;
}

/* The registry with N exited Docker containers and no cgroups: CPU per
 * shown container per tick. */
static double exited_cost(void)
{
	struct cg_layout layout;
	struct coll_meta_queue q;
	sh("mkdir -p @/sys/fs/cgroup && touch @/sys/fs/cgroup/cgroup.controllers", root);
	if (cg_layout_detect(&layout) < 0)
		return -1;
	coll_meta_queue_init(&q);
	struct coll_ctx ctx = { .layout = &layout, .keep_exited_ms = 3600 * 1000 };
	struct coll_registry *r = coll_registry_new(&ctx);
	for (int i = 0; i < N; i++) {
		struct coll_meta m = { .restart_count = 0, .has_state = true, .exit_code = 1,
				       .finished_at = (double)now_ms() / 1000 };
		char id[80];
		snprintf(id, sizeof(id), "%064d", i);
		m.name = strdup(id);
		m.image = strdup("img");
		m.state = strdup("exited");
		coll_meta_post(&q, id, &m, false);
	}
	coll_registry_apply(r, &q);
	uint64_t errors[COLL_MAX_COLLECTORS] = { 0 };
	int64_t cpu = 0;
	size_t shown = 0;
	for (int k = 0; k < 2 + TICKS; k++) {
		struct coll_sink sink;
		sink_open(&sink, now_ms());
		int64_t c0 = cpu_time_ns();
		coll_registry_collect(r, &sink, errors);
		if (k >= 2)
			cpu += cpu_time_ns() - c0;
		struct snapshot *s = sink_close(&sink);
		shown = s->ncontainers;
		snapshot_unref(s);
	}
	coll_registry_free(r);
	coll_meta_queue_fini(&q);
	return shown == N ? (double)cpu / TICKS / N / 1000 : -1;
}

/* CPU per entry of a full walk of WALK_FILES files. */
static double walk_cost(void)
{
	struct coll_container c;
	memset(&c, 0, sizeof(c));
	snprintf(c.id, sizeof(c.id), "walk");
	c.cgroup = (char *)"/docker/walk";
	c.runtime = RUNTIME_DOCKER;
	c.has_meta = true;
	c.meta.restart_count = -1;
	c.meta.upper_dir = strdup("/many");
	struct coll_ctx ctx = { .fs_interval_ms = 3600 * 1000, .fs_walk_budget = 1000 };
	void *st;
	coll_fs_ops.init(&st, &ctx);
	int64_t t = 1000000, cpu = 0;
	for (int k = 0; k < 1000; k++) {
		struct coll_sink sink;
		sink_open(&sink, t += 1000);
		sink_begin_container(&sink, &c, 0);
		int64_t c0 = cpu_time_ns();
		coll_fs_ops.collect(st, &c, &c.priv[0], &sink);
		cpu += cpu_time_ns() - c0;
		struct snapshot *s = sink_close(&sink);
		bool done = false;
		for (size_t i = 0; i < s->nsamples; i++)
			done |= s->samples[i].family == M_FS_USAGE;
		snapshot_unref(s);
		if (done)
			break;
	}
	coll_fs_ops.forget(st, &c, &c.priv[0]);
	coll_fs_ops.destroy(st);
	coll_meta_fini(&c.meta);
	return (double)cpu / (WALK_FILES + 100) / 1000;
}

int main(void)
{
	log_set_level(LOG_ERROR);
	snprintf(root, sizeof(root), "/tmp/monitor-fs-bench-XXXXXX");
	if (!mkdtemp(root))
		return 1;
	hostroot_set(root);
	sh("mkdir -p @/layer/etc @/vol @/bind @/many && echo x > @/layer/etc/f", root);
	sh("cd @/many && for d in $(seq 100); do mkdir $d; (cd $d && touch $(seq 200)); done", root);

	double fs_meta[RUNS], fs_none[RUNS], base_meta[RUNS], base_none[RUNS], life[RUNS], gone[RUNS],
	       walk[RUNS];
	struct coll_container *with = make_containers(true), *without = make_containers(false);
	for (int r = 0; r < RUNS; r++) {
		base_meta[r] = base_cost(with);
		fs_meta[r] = fs_cost(with, 2000) - base_meta[r];
		base_none[r] = base_cost(without);
		fs_none[r] = fs_cost(without, 2000) - base_none[r];
		life[r] = lifecycle_cost(with);
		gone[r] = exited_cost();
		walk[r] = walk_cost();
	}
	double w = median(walk, RUNS);
	char table[4096];
	snprintf(table, sizeof(table),
		 "| figure (N=%d, median of %d runs) | CPU |\n|---|---|\n"
		 "| fs collector, container with layer + volume + bind, walks done (3 fstatfs, 6 samples) | %.2f µs per container per tick |\n"
		 "| fs collector, container without runtime metadata | %.2f µs per container per tick |\n"
		 "| lifecycle series (state, health, restarts, OOM flag) | %.2f µs per container per tick |\n"
		 "| exited container shown without a cgroup (registry) | %.2f µs per container per tick |\n"
		 "| budgeted walk | %.3f µs per entry; %.1f ms per tick at the default budget (2000) while a walk runs |\n",
		 N, RUNS, median(fs_meta, RUNS), median(fs_none, RUNS), median(life, RUNS),
		 median(gone, RUNS), w, w * 2000 / 1000);
	fputs(table, stdout);
	printf("Compare: the agent's whole cost per container per tick is in build/bench/table.md (make bench).\n");
	mkdir("build/bench", 0755);
	FILE *f = fopen("build/bench/fs.md", "w");
	if (f) {
		fputs(table, f);
		fclose(f);
	}
	sh("rm -rf @", root);
	return 0;
}
