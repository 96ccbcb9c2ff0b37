/*
 * rw_bench.c - `make bench-rw`: remote write's cost and throughput.
 *
 *   build/bench/rw_bench [WORKDIR]
 *
 * A local receiver (a child process: HTTP/1.1 keep-alive, every body
 * snappy-uncompressed and unpacked with protobuf-c so that every sample is
 * counted, 200 for each) and, in this process, a real store that a producer
 * thread fills at a live rate while the agent's remote write sender
 * (rw_start, the same code the agent runs) reads it back and pushes it.
 * Cases, each for BENCH_RW_SECONDS (20) of wall time:
 *
 *  1. live: 100,000 series ticked every 1 s (100,000 samples/s), default
 *     queue_config (batch_send_deadline 5s, 2000 samples a request);
 *  2. live: 10,000 series ticked every 100 ms (100,000 samples/s);
 *  3. drain: a 60-tick backlog of 100,000 series (6,000,000 samples, as
 *     after a one-minute outage) sent as fast as the receiver takes it
 *     while new ticks keep coming: the throughput ceiling (samples/s is
 *     the backlog over the time it took to arrive).
 *
 * Sender CPU is the thread CPU time of the sender's own threads (the
 * endpoint thread reading the store, the shards encoding, compressing and
 * sending), as monitor_remote_write_cpu_seconds_total reports it; the
 * producer and the store's writer are not counted. Figures: samples/s
 * delivered (the receiver's count), % of one core for sending, ns of CPU
 * per sample, bytes on the wire per sample (snappy) and before compression.
 * Targets (issue "Fleet"): >= 100,000 samples/s using < 5 % of a core.
 * Writes a Markdown table to WORKDIR/../rw.md. BENCH_STRICT=1 exits 1 when
 * a live case misses a target.
 */
#include "agent/agent.h"
#include "agent/rw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WARMUP_S 8

struct rx_totals {
	uint64_t requests, samples, series, bytes, bad;
};

static struct rx_totals *rx;   /* shared with the receiver child */

static double wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the receiver (child process) ----------------------------------------- */

static void *rx_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	for (;;) {
		char *hdr_end = NULL;
		while (!(hdr_end = len ? memmem(buf, len, "\r\n\r\n", 4) : NULL)) {
			if (len == cap)
				goto out;
			ssize_t n = read(fd, buf + len, cap - len);
			if (n <= 0)
				goto out;
			len += (size_t)n;
		}
		size_t hlen = (size_t)(hdr_end + 4 - buf);
		char *cl = memmem(buf, hlen, "Content-Length:", 15);
		if (!cl)
			cl = memmem(buf, hlen, "content-length:", 15);
		size_t body = cl ? strtoul(cl + 15, NULL, 10) : 0;
		while (hlen + body > cap) {
			cap *= 2;
			buf = realloc(buf, cap);
		}
		while (len < hlen + body) {
			ssize_t n = read(fd, buf + len, cap - len);
			if (n <= 0)
				goto out;
			len += (size_t)n;
		}
		size_t ns = 0;
		ssize_t samples = rw_decode_count(buf + hlen, body, &ns, NULL);
		__atomic_add_fetch(&rx->requests, 1, __ATOMIC_RELAXED);
		if (samples < 0) {
			__atomic_add_fetch(&rx->bad, 1, __ATOMIC_RELAXED);
		} else {
			__atomic_add_fetch(&rx->samples, (uint64_t)samples, __ATOMIC_RELAXED);
			__atomic_add_fetch(&rx->series, ns, __ATOMIC_RELAXED);
			__atomic_add_fetch(&rx->bytes, body, __ATOMIC_RELAXED);
		}
		static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
		if (write(fd, ok, sizeof(ok) - 1) < 0)
			goto out;
		memmove(buf, buf + hlen + body, len - hlen - body);
		len -= hlen + body;
	}
out:
	close(fd);
	free(buf);
	return NULL;
}

static void rx_main(int lfd)
{
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_t th;
		pthread_create(&th, NULL, rx_conn, (void *)(intptr_t)fd);
		pthread_detach(th);
	}
}

/* ---- the producer ------------------------------------------------------------ */

struct prod {
	struct store *store;
	uint32_t *ids;
	size_t nseries;
	int64_t interval_ms, t0, ticks_done;
	int64_t newest;          /* atomic: last fully appended tick */
	volatile int stop;
	double cpu_s;
};

static int64_t upto(void *arg)
{
	struct prod *p = arg;
	return __atomic_load_n(&p->newest, __ATOMIC_ACQUIRE);
}

static void append_tick(struct prod *p, int64_t t)
{
	for (size_t i = 0; i < p->nseries; i++) {
		/* counters that count, gauges that wander: Gorilla sees real work */
		double v = (i & 1) ? (double)(t / 1000) * 1.5 + (double)i : (double)((i * 7919 + (uint64_t)t / 100) % 100000);
		store_append(p->store, p->ids[i], t, v);
	}
	__atomic_store_n(&p->newest, t, __ATOMIC_RELEASE);
	p->ticks_done++;
}

static void *prod_main(void *arg)
{
	struct prod *p = arg;
	double start = wall_s();
	int64_t k = 0;
	while (!p->stop) {
		double due = start + (double)(k * p->interval_ms) / 1000;
		double now = wall_s();
		if (now < due) {
			usleep((useconds_t)((due - now) * 1e6));
			continue;
		}
		append_tick(p, p->t0 + k * p->interval_ms);
		k++;
	}
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	p->cpu_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	return NULL;
}

static const char *const names[] = {
	"container_cpu_usage_seconds_total", "container_cpu_user_seconds_total",
	"container_cpu_system_seconds_total", "container_memory_usage_bytes",
	"container_memory_working_set_bytes", "container_memory_rss",
	"container_memory_cache", "container_network_receive_bytes_total",
	"container_network_transmit_bytes_total", "container_fs_reads_bytes_total",
};

static struct store *make_store(const char *dir, size_t nseries, uint32_t **ids)
{
	struct store_config c;
	store_config_defaults(&c);
	snprintf(c.dir, sizeof(c.dir), "%s", dir);
	struct store *s;
	char err[512];
	if (store_open(&s, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "rw_bench: %s\n", err);
		exit(1);
	}
	*ids = malloc(nseries * sizeof(**ids));
	for (size_t i = 0; i < nseries; i++) {
		char id[96], name[32];
		size_t ctr = i / ARRAY_LEN(names);
		snprintf(id, sizeof(id), "/docker/%016zx%048x", ctr * 2654435761u, 0);
		snprintf(name, sizeof(name), "app-%zu", ctr);
		struct store_label l[] = { { "__name__", names[i % ARRAY_LEN(names)] }, { "id", id },
					   { "name", name }, { "image", "registry.example/app:1.2.3" },
					   { "cpu", "total" } };
		store_series(s, l, (i % ARRAY_LEN(names)) ? 4 : 5, STORE_GAUGE, &(*ids)[i]);
	}
	return s;
}

/* Waits until the sender completes a round; its figures then in *st. */
static void wait_round(struct rw *rw, struct rw_stats *st)
{
	struct rw_stats a;
	rw_endpoint_stats(rw, 0, &a);
	double t0 = wall_s();
	do {
		usleep(5000);
		rw_endpoint_stats(rw, 0, st);
	} while (st->highest_sent_ms == a.highest_sent_ms && wall_s() - t0 < 30);
	/* the shards have delivered; the receiver has counted */
	usleep(20000);
}

struct result {
	const char *name;
	double samples_per_s, core_pct, cpu_ns_per_sample, wire_bps, raw_bps;
	uint64_t sent, appended, received;
	double lag_s;
};

static void run_case(struct result *r, const char *work, int port, size_t nseries,
		     int64_t interval_ms, double seconds, int backlog_ticks)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/%s", work, r->name);
	mkdir(dir, 0755);
	struct prod p = { .nseries = nseries, .interval_ms = interval_ms };
	p.store = make_store(dir, nseries, &p.ids);
	p.t0 = now_ms() - (int64_t)backlog_ticks * interval_ms;
	for (int k = 0; k < backlog_ticks; k++)
		append_tick(&p, p.t0 + k * interval_ms);
	if (backlog_ticks) {
		store_flush(p.store);
		p.t0 += (int64_t)backlog_ticks * interval_ms;
	}
	struct rw_config *cfg = calloc(1, sizeof(*cfg));
	cfg->nep = 1;
	rw_endpoint_defaults(&cfg->ep[0]);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/write", port);
	cfg->ep[0].url = strdup(url);
	cfg->ep[0].name = strdup("bench");
	cfg->ep[0].send_metadata = false;
	cfg->external_set = true;
	cfg->nexternal = 1;
	cfg->ext_name[0] = strdup("host");
	cfg->ext_value[0] = strdup("bench-host");
	memset(rx, 0, sizeof(*rx));
	/* The sender starts from the cursor in the kv store: the first sample. */
	struct kv *kv;
	char kpath[PATH_MAX + 16], err[512], cur[32];
	snprintf(kpath, sizeof(kpath), "%s/state.db", dir);
	if (kv_open(&kv, kpath, err, sizeof(err)) < 0) {
		fprintf(stderr, "rw_bench: %s\n", err);
		exit(1);
	}
	int64_t first = p.t0 - (int64_t)backlog_ticks * interval_ms;
	int n = snprintf(cur, sizeof(cur), "%lld", (long long)(first - 1));
	kv_put(kv, RW_KV_NS, "bench", cur, (size_t)n);
	struct rw_start_args a = { .cfg = cfg, .store = p.store, .kv = kv,
				   .interval_ms = interval_ms, .upto = upto, .upto_arg = &p };
	pthread_t prod_th;
	double t0 = wall_s();
	struct rw *rw = rw_start(&a);
	struct rw_stats st;
	double wall;
	if (backlog_ticks) {
		/* drain: until the backlog is delivered, with the producer going
		 * on live meanwhile (as an agent catching up after an outage) */
		pthread_create(&prod_th, NULL, prod_main, &p);
		uint64_t want = (uint64_t)backlog_ticks * nseries;
		while (__atomic_load_n(&rx->samples, __ATOMIC_RELAXED) < want && wall_s() - t0 < 120)
			usleep(20000);
		wall = wall_s() - t0;
		p.stop = 1;
		pthread_join(prod_th, NULL);
		r->appended = want + (uint64_t)p.ticks_done * nseries;
	} else {
		/* live: produce for `seconds`, then let the sender deliver the
		 * last batch_send_deadline; the rate is what was produced over
		 * the production time, provided all of it arrived. */
		pthread_create(&prod_th, NULL, prod_main, &p);
		/* Steady state: after the first rounds (which build the label
		 * cache once per series), measure over `seconds`. */
		usleep((useconds_t)(WARMUP_S * 1e6));
		/* From the end of one round to the end of another, so that the
		 * window holds whole rounds (a round moves the cursor). */
		struct rw_stats st0;
		wait_round(rw, &st0);
		uint64_t rx0 = __atomic_load_n(&rx->samples, __ATOMIC_RELAXED);
		double w0 = wall_s();
		usleep((useconds_t)(seconds * 1e6));
		wait_round(rw, &st);
		wall = wall_s() - w0;
		uint64_t rx1 = __atomic_load_n(&rx->samples, __ATOMIC_RELAXED);
		p.stop = 1;
		pthread_join(prod_th, NULL);
		r->appended = (uint64_t)p.ticks_done * nseries;
		/* Then everything must arrive (but the newest tick, which the
		 * sender never reads while it may be half appended). */
		double t1 = wall_s();
		while (__atomic_load_n(&rx->samples, __ATOMIC_RELAXED) < r->appended - nseries &&
		       wall_s() - t1 < 30)
			usleep(20000);
		r->received = __atomic_load_n(&rx->samples, __ATOMIC_RELAXED);
		r->samples_per_s = (double)(rx1 - rx0) / wall;
		r->core_pct = (double)(st.cpu_ns - st0.cpu_ns) / 1e9 / wall * 100;
		r->cpu_ns_per_sample = st.samples_sent > st0.samples_sent ?
			(double)(st.cpu_ns - st0.cpu_ns) / (double)(st.samples_sent - st0.samples_sent) : 0;
		r->wire_bps = st.samples_sent > st0.samples_sent ?
			(double)(st.bytes_sent - st0.bytes_sent) / (double)(st.samples_sent - st0.samples_sent) : 0;
		r->raw_bps = st.samples_sent > st0.samples_sent ?
			(double)(st.bytes_raw - st0.bytes_raw) / (double)(st.samples_sent - st0.samples_sent) : 0;
		r->lag_s = (double)(st.newest_ms - st.highest_sent_ms) / 1000;
		rw_stop(rw);
		kv_close(kv);
		r->sent = st.samples_sent;
		rw_config_free(cfg);
		store_close(p.store);
		free(p.ids);
		return;
	}
	rw_endpoint_stats(rw, 0, &st);
	rw_stop(rw);
	kv_close(kv);
	r->received = __atomic_load_n(&rx->samples, __ATOMIC_RELAXED);
	r->sent = st.samples_sent;
	r->lag_s = (double)(st.newest_ms - st.highest_sent_ms) / 1000;
	r->samples_per_s = (double)(r->received < (uint64_t)backlog_ticks * nseries ? r->received :
				    (uint64_t)backlog_ticks * nseries) / wall;
	r->core_pct = (double)st.cpu_ns / 1e9 / wall * 100;
	r->cpu_ns_per_sample = st.samples_sent ? (double)st.cpu_ns / (double)st.samples_sent : 0;
	r->wire_bps = st.samples_sent ? (double)st.bytes_sent / (double)st.samples_sent : 0;
	r->raw_bps = st.samples_sent ? (double)st.bytes_raw / (double)st.samples_sent : 0;
	if (rx->bad)
		fprintf(stderr, "rw_bench: %s: %llu bodies did not decode\n", r->name,
			(unsigned long long)rx->bad);
	rw_config_free(cfg);
	store_close(p.store);
	free(p.ids);
}

int main(int argc, char **argv)
{
	const char *work = argc > 1 ? argv[1] : "build/bench/rw/work";
	double seconds = getenv("BENCH_RW_SECONDS") ? atof(getenv("BENCH_RW_SECONDS")) : 20;
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work);
	if (system(cmd) != 0)
		return 1;
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", work);
	if (system(cmd) != 0)
		return 1;
	log_set_level(LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	rx = mmap(NULL, sizeof(*rx), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	if (rx == MAP_FAILED || lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 128) < 0 || getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0) {
		perror("rw_bench: receiver");
		return 1;
	}
	pid_t child = fork();
	if (child == 0) {
		rx_main(lfd);
		_exit(0);
	}
	close(lfd);
	int port = ntohs(sa.sin_port);
	struct result res[3] = { { .name = "live 100k series @1s" }, { .name = "live 10k series @100ms" },
				 { .name = "drain 6M-sample backlog" } };
	const char *only = getenv("BENCH_RW_CASES"); /* e.g. "13": cases 1 and 3 */
	if (!only || strchr(only, '1'))
		run_case(&res[0], work, port, 100000, 1000, seconds, 0);
	if (!only || strchr(only, '2'))
		run_case(&res[1], work, port, 10000, 100, seconds, 0);
	if (!only || strchr(only, '3'))
		run_case(&res[2], work, port, 100000, 1000, 0, 60);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);

	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/../rw.md", work);
	FILE *md = fopen(path, "w");
	int fails = 0;
	for (int pass = 0; pass < 2; pass++) {
		FILE *f = pass ? md : stdout;
		if (!f)
			continue;
		fprintf(f, "\n## remote_write (tests/bench/rw_bench.c)\n\n"
			"| case | samples/s delivered | sender CPU, %% of a core | CPU ns/sample | "
			"wire bytes/sample (snappy) | protobuf bytes/sample | lag at end | target |\n"
			"|---|---|---|---|---|---|---|---|\n");
		for (int i = 0; i < 3; i++) {
			const struct result *r = &res[i];
			bool live = i < 2;
			bool ok = r->samples_per_s >= 100000 * (live ? 0.95 : 1) && (!live || r->core_pct < 5);
			if (live && !ok && pass == 0)
				fails++;
			fprintf(f, "| %s | %.0f | %.2f | %.0f | %.2f | %.2f | %.1f s | %s %s |\n", r->name,
				r->samples_per_s, r->core_pct, r->cpu_ns_per_sample, r->wire_bps, r->raw_bps,
				r->lag_s, live ? ">= 100,000/s, < 5 %" : ">= 100,000/s", ok ? "met" : "MISSED");
		}
		fprintf(f, "\nLive cases: the producer appends 100,000 samples/s; after %d s of warm-up "
			"(the first rounds build the per-series label cache), samples/s is what the receiver "
			"decoded and CPU what the sender's threads used over the next %.0f s; the lag is the "
			"newest complete tick minus the cursor at the end (batch_send_deadline is 5 s). "
			"In all, received %llu/%llu/%llu samples of %llu/%llu/%llu appended.\n",
			WARMUP_S, seconds,
			(unsigned long long)res[0].received, (unsigned long long)res[1].received,
			(unsigned long long)res[2].received, (unsigned long long)res[0].appended,
			(unsigned long long)res[1].appended, (unsigned long long)res[2].appended);
	}
	if (md)
		fclose(md);
	/* Headline rows for make bench's summary (tests/bench/run --table). */
	for (int i = 0; i < 2; i++) {
		const struct result *r = &res[i];
		if (!r->received)
			continue;
		printf("BENCH remote_write %s: samples/s delivered|%.0f|samples/s|>= 95000|"
		       "producer 100,000/s; %.2f wire bytes/sample (snappy), %.1f protobuf\n",
		       r->name, r->samples_per_s, r->wire_bps, r->raw_bps);
		printf("BENCH remote_write %s: sender CPU|%.2f|%% of a core|< 5|%.0f ns/sample\n",
		       r->name, r->core_pct, r->cpu_ns_per_sample);
	}
	if (res[2].received)
		printf("BENCH remote_write %s: throughput|%.0f|samples/s|>= 100000|%.0f ns/sample\n",
		       res[2].name, res[2].samples_per_s, res[2].cpu_ns_per_sample);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work);
	if (system(cmd) != 0)
		return 1;
	return getenv("BENCH_STRICT") && fails ? 1 : 0;
}
