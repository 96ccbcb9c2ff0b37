/*
 * floor.c - the floor the agent's collection is measured against.
 *
 * DESIGN.md says collectors keep their cgroup files open and pread() them,
 * so the least any collector can spend per tick is the cost of those reads.
 * This program pays exactly that: it opens the files listed in PATHFILE
 * (tests/bench/run lists the cgroup files the running agent reads a tick),
 * then, once per round, preads each from offset 0 into one buffer, and
 * reports the CPU time (CLOCK_PROCESS_CPUTIME_ID) it spent in the rounds.
 * No parsing, no formatting, no allocation: anything the agent spends above
 * this is its own overhead.
 *
 * Rounds can be paced (-p) like the agent's ticks, so the floor reads with
 * caches as cold as the agent's are at one tick per interval; -p 0 reads
 * back to back (a stricter, cache-warm floor).
 *
 * The agent reads settings files (limits, quota, shares) by path every
 * tenth tick instead of holding them: -s SETTINGSFILE -k 10 makes the floor
 * open, pread and close those every tenth round too, inside the measured
 * time, so the two do the same reads the same number of times.
 *
 * The open-file limit bounds what a process can hold. Past its descriptor
 * budget the agent opens, preads and closes a container's files every tick
 * (collectors/cgroup.c): -o REOPENFILE lists those files, which the floor
 * then reads the same way each round, in the cheapest way there is (one
 * O_PATH open of each directory, openat, pread, close), so that the floor
 * holds no more descriptors than the agent does under the same limit.
 *
 *   floor [-r ROUNDS] [-p PACE_MS] [-b BUF_BYTES] [-n CONTAINERS]
 *         [-s SETTINGSFILE -k EVERY] [-o REOPENFILE] PATHFILE
 *
 * Prints one JSON object on stdout. Exit status 0, or 1 when no file could
 * be opened, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILES 1000000

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void usage(void)
{
	fprintf(stderr, "usage: floor [-r ROUNDS] [-p PACE_MS] [-b BUF_BYTES] "
			"[-n CONTAINERS] [-s SETTINGSFILE -k EVERY] [-o REOPENFILE] PATHFILE\n");
}

/* Reads PATHFILE (one path a line) and opens each. Returns the number of
 * descriptors stored in *fds_out (caller frees); counts failures in *failed. */
static long open_all(const char *pathfile, int **fds_out, long *failed)
{
	FILE *f = fopen(pathfile, "r");
	if (!f) {
		fprintf(stderr, "floor: %s: %s\n", pathfile, strerror(errno));
		return -1;
	}
	long cap = 1024, n = 0;
	int *fds = malloc((size_t)cap * sizeof(*fds));
	char line[4096];
	*failed = 0;
	while (fds && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		int fd = open(line, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			if (*failed < 5)
				fprintf(stderr, "floor: %s: %s\n", line, strerror(errno));
			(*failed)++;
			continue;
		}
		if (n == cap) {
			if (cap >= MAX_FILES) {
				fprintf(stderr, "floor: more than %d files\n", MAX_FILES);
				close(fd);
				break;
			}
			cap *= 2;
			int *grown = realloc(fds, (size_t)cap * sizeof(*fds));
			if (!grown) {
				close(fd);
				break;
			}
			fds = grown;
		}
		fds[n++] = fd;
	}
	fclose(f);
	if (!fds)
		return -1;
	*fds_out = fds;
	return n;
}

/* Reads PATHFILE into an array of paths (caller frees); count in *n. */
static char **read_paths(const char *pathfile, long *n)
{
	FILE *f = fopen(pathfile, "r");
	char line[4096], **v = NULL;
	long cap = 0;
	*n = 0;
	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 1024;
			char **g = realloc(v, (size_t)cap * sizeof(*v));
			if (!g)
				break;
			v = g;
		}
		v[(*n)++] = strdup(line);
	}
	fclose(f);
	return v;
}

/* Opens, preads and closes each of paths[0..n), opening each directory
 * once for its run of files (paths are grouped by directory). Adds the
 * bytes read to *bytes and failures to *errors. */
static void reopen_round(char **paths, long n, char *buf, size_t bufsize, int64_t *bytes,
			 int64_t *errors)
{
	char dir[4096] = "";
	int dfd = -1;
	for (long i = 0; i < n; i++) {
		const char *slash = strrchr(paths[i], '/');
		size_t dlen = slash ? (size_t)(slash - paths[i]) : 0;
		if (dlen >= sizeof(dir)) {
			(*errors)++;
			continue;
		}
		if (dfd < 0 || strncmp(dir, paths[i], dlen) != 0 || dir[dlen] != '\0') {
			if (dfd >= 0)
				close(dfd);
			memcpy(dir, paths[i], dlen);
			dir[dlen] = '\0';
			dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		}
		int fd = dfd < 0 ? -1 : openat(dfd, slash + 1, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			(*errors)++;
			continue;
		}
		ssize_t got = pread(fd, buf, bufsize, 0);
		*bytes += got > 0 ? got : 0;
		close(fd);
	}
	if (dfd >= 0)
		close(dfd);
}

int main(int argc, char **argv)
{
	long rounds = 10, pace_ms = 1000, containers = 0, every = 0, nsettings = 0, nreopen = 0;
	const char *settings_file = NULL, *reopen_file = NULL;
	size_t bufsize = 8192;
	int o;
	while ((o = getopt(argc, argv, "r:p:b:n:s:k:o:")) != -1) {
		switch (o) {
		case 'o': reopen_file = optarg; break;
		case 's': settings_file = optarg; break;
		case 'k': every = strtol(optarg, NULL, 10); break;
		case 'r': rounds = strtol(optarg, NULL, 10); break;
		case 'p': pace_ms = strtol(optarg, NULL, 10); break;
		case 'b': bufsize = (size_t)strtoul(optarg, NULL, 10); break;
		case 'n': containers = strtol(optarg, NULL, 10); break;
		default: usage(); return 2;
		}
	}
	if (optind != argc - 1 || rounds < 1 || pace_ms < 0 || bufsize < 1 || containers < 0) {
		usage();
		return 2;
	}

	int *fds = NULL;
	long failed = 0;
	long nfiles = open_all(argv[optind], &fds, &failed);
	if (nfiles <= 0) {
		fprintf(stderr, "floor: no file could be opened\n");
		return 1;
	}
	char **settings = settings_file ? read_paths(settings_file, &nsettings) : NULL;
	char **reopen = reopen_file ? read_paths(reopen_file, &nreopen) : NULL;
	char *buf = malloc(bufsize);
	if (!buf)
		return 1;
	memset(buf, 0, bufsize);

	/* One unmeasured round faults in the buffer and the kernel's seq_file
	 * state, as the agent's first tick does. */
	for (long i = 0; i < nfiles; i++)
		(void)!pread(fds[i], buf, bufsize, 0);

	int64_t cpu_ns = 0, wall_ns = 0, bytes = 0, errors = 0, full = 0;
	int64_t cpu_min = INT64_MAX, cpu_max = 0;
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (long r = 0; r < rounds; r++) {
		if (pace_ms > 0) {
			next.tv_nsec += (pace_ms % 1000) * 1000000;
			next.tv_sec += pace_ms / 1000 + next.tv_nsec / 1000000000;
			next.tv_nsec %= 1000000000;
			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
				;
		}
		int64_t w0 = clock_ns(CLOCK_MONOTONIC), c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
		for (long i = 0; i < nfiles; i++) {
			ssize_t got = pread(fds[i], buf, bufsize, 0);
			if (got < 0)
				errors++;
			else {
				bytes += got;
				full += (size_t)got == bufsize;
			}
		}
		reopen_round(reopen, nreopen, buf, bufsize, &bytes, &errors);
		for (long i = 0; every > 0 && r % every == 0 && i < nsettings; i++) {
			int fd = open(settings[i], O_RDONLY | O_CLOEXEC);
			if (fd < 0) {
				errors++;
				continue;
			}
			ssize_t got = pread(fd, buf, bufsize, 0);
			bytes += got > 0 ? got : 0;
			close(fd);
		}
		int64_t c = clock_ns(CLOCK_PROCESS_CPUTIME_ID) - c0;
		wall_ns += clock_ns(CLOCK_MONOTONIC) - w0;
		cpu_ns += c;
		cpu_min = c < cpu_min ? c : cpu_min;
		cpu_max = c > cpu_max ? c : cpu_max;
	}

	double per_round = (double)cpu_ns / (double)rounds;
	printf("{\"files\": %ld, \"open_failed\": %ld, \"rounds\": %ld, \"pace_ms\": %ld, "
	       "\"buf_bytes\": %zu, \"cpu_ns_total\": %lld, \"cpu_ns_per_round\": %.0f, "
	       "\"cpu_ns_per_round_min\": %lld, \"cpu_ns_per_round_max\": %lld, "
	       "\"wall_ns_per_round\": %.0f, \"bytes_per_round\": %.0f, "
	       "\"read_errors\": %lld, \"reads_filling_buffer\": %lld, \"containers\": %ld, "
	       "\"cpu_ns_per_round_per_container\": %.1f, \"settings_files\": %ld, "
	       "\"settings_every\": %ld, \"reopened_files\": %ld}\n",
	       nfiles, failed, rounds, pace_ms, bufsize, (long long)cpu_ns, per_round,
	       (long long)cpu_min, (long long)cpu_max, (double)wall_ns / (double)rounds,
	       (double)bytes / (double)rounds, (long long)errors, (long long)full, containers,
	       containers ? per_round / (double)containers : 0.0, nsettings, every, nreopen);
	for (long i = 0; i < nreopen; i++)
		free(reopen[i]);
	free(reopen);
	for (long i = 0; i < nsettings; i++)
		free(settings[i]);
	free(settings);
	for (long i = 0; i < nfiles; i++)
		close(fds[i]);
	free(fds);
	free(buf);
	return 0;
}
