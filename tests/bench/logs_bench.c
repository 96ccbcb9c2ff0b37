/*
 * logs_bench.c - the container log path's two figures (make bench-logs):
 *
 *   ingest   lines/s through the real tailer thread: a Docker json-file of
 *            N lines (1,000,000 by default) is read, split, decoded, its
 *            levels parsed, escaped where needed, and stored with the FTS5
 *            index and the file position, until logs.db holds every line.
 *            The tailer is one thread: the figure is one core's.
 *   search   the first page (100 newest lines) of full-text queries over
 *            the N stored lines, rare and common words, with and without
 *            a container and a level filter: the median of 5 runs each.
 *
 * CPU seconds are the process's (the tailer thread does all the work).
 * Prints "figure value target" lines and exits 1 when a target is missed.
 *   logs_bench [lines] [work dir]
 */
#include "collectors/collector.h"
#include "storage/storage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ID "4f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8"

static int out_write(void *arg, const struct coll_log_line *l, size_t n,
		     const struct coll_log_pos *p, size_t np)
{
	struct log_record *r = malloc((n ? n : 1) * sizeof(*r));
	struct log_position *pos = malloc((np ? np : 1) * sizeof(*pos));
	for (size_t i = 0; i < n; i++)
		r[i] = (struct log_record){ l[i].id, l[i].name, l[i].time_ns, l[i].stream,
					    l[i].level, l[i].flags, l[i].msg, l[i].msg_len };
	for (size_t i = 0; i < np; i++)
		pos[i] = (struct log_position){ p[i].path, p[i].dev, p[i].ino, p[i].offset,
						p[i].fingerprint, p[i].fingerprint_len };
	int rc = logstore_append(arg, r, n, pos, np);
	free(r);
	free(pos);
	return rc;
}

static int out_position(void *arg, const char *path, struct coll_log_pos *p)
{
	return -ENOENT;
}

static double secs(void)
{
	return (double)mono_ns() / 1e9;
}

/* Writes n json-file lines of a realistic mix. */
static int write_log(const char *path, long n)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	unsigned x = 12345;
	for (long i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		char msg[256];
		switch (i % 5) {
		case 0:
			snprintf(msg, sizeof(msg), "GET /api/v1/items/%u 200 %ums user=u%u",
				 x % 100000, x % 900, x % 5000);
			break;
		case 1:
			snprintf(msg, sizeof(msg), "ERROR db connection refused host=10.0.%u.%u retry=%u",
				 x % 256, (x >> 8) % 256, x % 7);
			break;
		case 2:
			snprintf(msg, sizeof(msg), "{\\\"level\\\":\\\"info\\\",\\\"msg\\\":\\\"request "
				 "done\\\",\\\"id\\\":\\\"%08x\\\",\\\"bytes\\\":%u}", x, x % 65536);
			break;
		case 3:
			snprintf(msg, sizeof(msg), "worker %u processed job j%07u in %u ms", x % 32,
				 x % 10000000, x % 5000);
			break;
		default:
			snprintf(msg, sizeof(msg), "level=warn msg=\\\"cache miss\\\" key=k%u ratio=0.%u",
				 x % 1000000, x % 100);
		}
		long s = i / 1000;
		fprintf(f, "{\"log\":\"%s\\n\",\"stream\":\"%s\",\"time\":\"2026-01-01T%02ld:%02ld:%02ld.%09ldZ\"}\n",
			msg, i % 5 == 1 ? "stderr" : "stdout", (s / 3600) % 24, (s / 60) % 60, s % 60,
			(i % 1000) * 1000000L);
	}
	return fclose(f) ? -EIO : 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Median ms of 5 runs of q; *n gets the lines of the last. */
static double time_query(struct logstore *ls, const struct log_query *q, size_t *n)
{
	double t[5];
	for (int i = 0; i < 5; i++) {
		struct log_result r;
		char err[256];
		double t0 = secs();
		int rc = logstore_query(ls, q, &r, err, sizeof(err));
		t[i] = (secs() - t0) * 1000;
		*n = rc == 0 ? r.n : 0;
		if (rc < 0)
			fprintf(stderr, "query: %s\n", err);
		logstore_result_free(&r);
	}
	qsort(t, 5, sizeof(t[0]), cmp_double);
	return t[2];
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	const char *work = argc > 2 ? argv[2] : "build/bench/logs";
	char dir[1024], cdir[1200], path[1400], data[1100], cwd[1024];
	if (work[0] != '/' && getcwd(cwd, sizeof(cwd)))
		snprintf(dir, sizeof(dir), "%.500s/%.500s", cwd, work);
	else
		snprintf(dir, sizeof(dir), "%.1000s", work);
	snprintf(cdir, sizeof(cdir), "%s/docker/%s", dir, ID);
	snprintf(path, sizeof(path), "%s/%s-json.log", cdir, ID);
	snprintf(data, sizeof(data), "%s/data", dir);
	char cmd[3000];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 2;
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' '%s'", cdir, data);
	if (system(cmd) != 0)
		return 2;
	log_set_level(LOG_WARN);
	fprintf(stderr, "logs bench: writing %ld lines ...\n", n);
	if (write_log(path, n) < 0)
		return 2;
	struct stat st;
	stat(path, &st);

	struct logstore_config lc;
	logstore_config_defaults(&lc);
	snprintf(lc.dir, sizeof(lc.dir), "%s", data);
	lc.max_size_bytes = 0;
	lc.retention_ms = 0;
	struct logstore *ls;
	char err[PATH_MAX + 256];
	if (logstore_open(&ls, &lc, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	struct coll_log_config tc;
	coll_log_config_defaults(&tc);
	snprintf(tc.docker_dir, sizeof(tc.docker_dir), "%s/docker", dir);
	tc.cri_dir[0] = tc.cri_links_dir[0] = tc.podman_dir[0] = '\0';
	tc.rate_lines = tc.rate_bytes = 0;
	tc.poll_ms = 10;
	struct coll_log_output o = { ls, out_write, out_position, NULL };
	struct coll_logtail *t;
	double t0 = secs();
	int64_t c0 = cpu_time_ns();
	if (coll_logtail_start(&t, &tc, &o) < 0)
		return 2;
	struct coll_logtail_stats s;
	for (;;) {
		coll_logtail_stats(t, &s);
		if ((long)s.lines >= n || secs() - t0 > 600)
			break;
		usleep(20000);
	}
	double wall = secs() - t0;
	double cpu = (double)(cpu_time_ns() - c0) / 1e9;
	coll_logtail_stop(t);
	struct logstore_stats ss;
	logstore_stats(ls, &ss);
	/* The tailer is one thread; on a shared machine its wall time includes
	 * waiting for a CPU, so the figure per core is lines per CPU second. */
	double rate = (double)s.lines / cpu;
	printf("logs: ingest %ld lines (%.0f MB json-file) in %.2f s wall, %.2f s CPU\n", (long)s.lines,
	       (double)st.st_size / 1e6, wall, cpu);
	printf("%-44s %12.0f   target >= 100000\n", "ingest lines per CPU second (one thread)", rate);
	printf("%-44s %12.0f   (wall clock, machine shared)\n", "ingest lines/s wall", (double)s.lines / wall);
	printf("%-44s %12.1f\n", "logs.db bytes per line", (double)ss.db_bytes / (double)n);

	struct {
		const char *what;
		struct log_query q;
	} qs[] = {
		{ "search rare word (newest 100)", { .text = "u4242", .newest = true, .limit = 100 } },
		{ "search common word (newest 100)", { .text = "refused", .newest = true, .limit = 100 } },
		{ "search two words (newest 100)", { .text = "cache miss", .newest = true, .limit = 100 } },
		{ "search word, container, level (newest 100)",
		  { .container = "4f1a2b3c", .text = "refused", .levels = 1u << LOGSTORE_LEVEL_ERROR,
		    .newest = true, .limit = 100 } },
		{ "search prefix (oldest 100)", { .text = "proc*", .limit = 100 } },
	};
	int fail = rate < 100000;
	for (size_t i = 0; i < ARRAY_LEN(qs); i++) {
		size_t got;
		double ms = time_query(ls, &qs[i].q, &got);
		printf("%-44s %9.2f ms   target < 100 ms (%zu lines)\n", qs[i].what, ms, got);
		fail |= ms >= 100;
	}
	struct log_query rq = { .container = "4f1a2b3c", .regex = "refused host=10\\.0\\.7\\.",
				.newest = true, .limit = 100 };
	size_t got;
	printf("%-44s %9.2f ms   (regex scan, no target)\n", "grep regex (newest 100)",
	       time_query(ls, &rq, &got));
	logstore_close(ls);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return fail;
}
