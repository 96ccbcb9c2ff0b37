/*
 * ebpf_reads.c - the eBPF collector's own cost per container per tick,
 * measured in-process so that nothing else on the host counts: the probes
 * are loaded, N cgroups of our own (below the cgroup v2 root) each get a
 * process that makes a loopback TCP connection, moves some bytes, has a
 * connect refused and writes with O_DIRECT, and then the collector runs
 * ticks over those N containers exactly as the agent does (begin, collect
 * each, agent metrics).
 *
 * Prints one JSON object: map-read time (what monitor_ebpf_read_seconds
 * counts) and the collector's whole CPU time (reads plus building samples)
 * per container per tick, and the samples per container. Built and run by
 * tests/bench/ebpf_bench; needs root.
 *
 *   ebpf_reads N TICKS IO_DIR
 */
#include "collectors/collector.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* In a child moved into dir: TCP over loopback, a refused connect, an
 * O_DIRECT write into io_dir. */
static int activity(const char *dir, const char *io_dir, int i)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char path[PATH_MAX + 256], me[32];
		snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
		int fd = open(path, O_WRONLY);
		int n = snprintf(me, sizeof(me), "%d\n", (int)getpid());
		if (fd < 0 || write(fd, me, (size_t)n) != n)
			_exit(2);
		close(fd);
		int ls = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t alen = sizeof(a);
		if (bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 1) < 0 ||
		    getsockname(ls, (struct sockaddr *)&a, &alen) < 0)
			_exit(3);
		int cs = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(cs, (struct sockaddr *)&a, sizeof(a)) < 0)
			_exit(4);
		int ss = accept(ls, NULL, NULL);
		char buf[4096] = { 0 };
		if (write(ss, buf, sizeof(buf)) < 0 || read(cs, buf, sizeof(buf)) < 0)
			_exit(5);
		close(ss);
		close(cs);
		close(ls);
		int fs = socket(AF_INET, SOCK_STREAM, 0);
		(void)connect(fs, (struct sockaddr *)&a, sizeof(a));
		snprintf(path, sizeof(path), "%s/f%d", io_dir, i);
		void *blk;
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0600);
		if (fd >= 0 && posix_memalign(&blk, 4096, 4096) == 0) {
			memset(blk, 0, 4096);
			(void)!write(fd, blk, 4096);
		}
		if (fd >= 0)
			close(fd);
		unlink(path);
		_exit(0);
	}
	int st;
	return waitpid(pid, &st, 0) == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static double family_sum(const struct snapshot *s, enum metric_id m)
{
	double v = 0;
	for (size_t i = 0; i < s->nsamples; i++)
		if (s->samples[i].family == (uint32_t)m)
			v += s->samples[i].value;
	return v;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: ebpf_reads N TICKS IO_DIR\n");
		return 2;
	}
	int n = atoi(argv[1]), ticks = atoi(argv[2]);
	const char *io_dir = argv[3];
	log_set_level(LOG_WARN);
	struct cg_layout layout;
	if (cg_layout_detect(&layout) < 0 || !layout.unified[0]) {
		fprintf(stderr, "ebpf_reads: no cgroup v2 hierarchy\n");
		return 1;
	}
	struct ebpf_config cfg;
	ebpf_config_defaults(&cfg);
	struct coll_event_log events;
	coll_event_log_init(&events, 64);
	struct coll_ctx ctx = { .layout = &layout, .ebpf = &cfg, .events = &events };
	void *state = NULL;
	if (coll_ebpf_ops.init(&state, &ctx) < 0)
		return 1;

	char root[PATH_MAX + 64];
	snprintf(root, sizeof(root), "%s/monitor-bench-ebpf-reads-%d", layout.unified, (int)getpid());
	if (mkdir(root, 0755) < 0) {
		perror(root);
		return 1;
	}
	struct coll_container *cs = calloc((size_t)n, sizeof(*cs));
	void **priv = calloc((size_t)n, sizeof(*priv));
	char (*rel)[96] = calloc((size_t)n, sizeof(*rel));
	int rc = 1, failed = 0;
	for (int i = 0; i < n; i++) {
		char dir[PATH_MAX + 128];
		snprintf(rel[i], sizeof(rel[i]), "/monitor-bench-ebpf-reads-%d/c%d", (int)getpid(), i);
		snprintf(dir, sizeof(dir), "%s%s", layout.unified, rel[i]);
		if (mkdir(dir, 0755) < 0 || activity(dir, io_dir, i) != 0)
			failed++;
		snprintf(cs[i].id, sizeof(cs[i].id), "c%d", i);
		cs[i].cgroup = rel[i];
		cs[i].prom_labels = (char *)"id=\"bench\"";
		cs[i].meta.restart_count = -1;
	}
	if (failed) {
		fprintf(stderr, "ebpf_reads: %d of %d containers failed their activity\n", failed, n);
		goto out;
	}
	int64_t cpu = 0, read0 = -1, read1 = 0;
	double samples = 0;
	for (int t = 0; t <= ticks; t++) {
		struct coll_sink sink;
		if (sink_open(&sink, now_ms() + t) < 0)
			goto out;
		int64_t c0 = thread_cpu_ns();
		coll_ebpf_ops.begin(state, &sink);
		for (int i = 0; i < n; i++) {
			sink_begin_container(&sink, &cs[i], 0);
			coll_ebpf_ops.collect(state, &cs[i], &priv[i], &sink);
		}
		sink_begin_agent(&sink);
		coll_ebpf_ops.agent_metrics(state, &sink);
		int64_t c1 = thread_cpu_ns();
		struct snapshot *snap = sink_close(&sink);
		double rs = family_sum(snap, M_AGENT_EBPF_READ_SECONDS);
		if (t == 0) {
			read0 = (int64_t)(rs * 1e9); /* the first tick looks the ids up */
		} else {
			cpu += c1 - c0;
			read1 = (int64_t)(rs * 1e9);
			samples = 0;
			for (uint32_t i = 0; i < snap->ncontainers; i++)
				samples += snap->containers[i].sample_count;
		}
		snapshot_unref(snap);
	}
	printf("{\"containers\": %d, \"ticks\": %d, \"read_us_per_container_tick\": %.3f, "
	       "\"collect_cpu_us_per_container_tick\": %.3f, \"samples_per_container\": %.1f}\n",
	       n, ticks, (double)(read1 - read0) / 1e3 / ticks / n, (double)cpu / 1e3 / ticks / n,
	       samples / n);
	rc = 0;
out:
	for (int i = 0; i < n; i++) {
		char dir[PATH_MAX + 128];
		coll_ebpf_ops.forget(state, &cs[i], &priv[i]);
		snprintf(dir, sizeof(dir), "%s%s", layout.unified, rel[i]);
		rmdir(dir);
	}
	rmdir(root);
	coll_ebpf_ops.destroy(state);
	coll_event_log_fini(&events);
	free(cs);
	free(priv);
	free(rel);
	return rc;
}
