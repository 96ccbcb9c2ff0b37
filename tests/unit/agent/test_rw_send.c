/*
 * test_rw_send.c - the remote write sender end to end against a receiver in
 * this process (a thread on a loopback socket that decodes every request
 * with protobuf-c and answers what the test tells it): every sample of a
 * real store arrives once and in order, 5xx are retried, a 400 is dropped
 * and counted, the cursor survives a restart, and a series that was quiet
 * when the series were last selected is found and sent whole.
 */
#include "agent/agent.h"
#include "agent/rw.h"
#include "agent/rw_remote.pb-c.h"
#include "tests/unit/test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <snappy-c.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXPTS 4096

struct rx {
	int lfd, port;
	pthread_mutex_t lock;
	int script[16];          /* statuses to answer first, then 200 */
	int nscript, served;
	int requests;
	char hdr_ok;             /* every request had the spec's headers */
	/* what arrived: series name (the __name__), t, v, in arrival order */
	char name[MAXPTS][32];
	int64_t t[MAXPTS];
	double v[MAXPTS];
	int n;
	bool sorted_ok;          /* labels sorted in every series */
};

static void record(struct rx *r, const Prometheus__WriteRequest *wr)
{
	for (size_t i = 0; i < wr->n_timeseries; i++) {
		const Prometheus__TimeSeries *ts = wr->timeseries[i];
		const char *name = "";
		for (size_t k = 0; k < ts->n_labels; k++) {
			if (!strcmp(ts->labels[k]->name, "__name__"))
				name = ts->labels[k]->value;
			if (k && strcmp(ts->labels[k - 1]->name, ts->labels[k]->name) >= 0)
				r->sorted_ok = false;
		}
		for (size_t k = 0; k < ts->n_samples && r->n < MAXPTS; k++) {
			snprintf(r->name[r->n], sizeof(r->name[0]), "%s", name);
			r->t[r->n] = ts->samples[k]->timestamp;
			r->v[r->n++] = ts->samples[k]->value;
		}
	}
}

struct conn {
	struct rx *r;
	int fd;
};

static void *rx_conn(void *arg)
{
	struct conn *cn = arg;
	struct rx *r = cn->r;
	int fd = cn->fd;
	free(cn);
	char *buf = malloc(1 << 20);
	if (buf) {
		size_t len = 0;
		for (;;) {
			char *he;
			ssize_t k;
			while (!(he = len ? memmem(buf, len, "\r\n\r\n", 4) : NULL) &&
			       (k = read(fd, buf + len, (1 << 20) - len)) > 0)
				len += (size_t)k;
			if (!he)
				break;
			size_t hl = (size_t)(he + 4 - buf);
			char *cl = strcasestr(buf, "content-length:");
			size_t body = cl && cl < he ? strtoul(cl + 15, NULL, 10) : 0;
			while (len < hl + body && (k = read(fd, buf + len, (1 << 20) - len)) > 0)
				len += (size_t)k;
			buf[hl - 1] = '\0';
			pthread_mutex_lock(&r->lock);
			if (!strcasestr(buf, "Content-Encoding: snappy") ||
			    !strcasestr(buf, "Content-Type: application/x-protobuf") ||
			    !strcasestr(buf, "X-Prometheus-Remote-Write-Version: 0.1.0") ||
			    !strcasestr(buf, "User-Agent: monitor/"))
				r->hdr_ok = 0;
			r->requests++;
			int status = r->served < r->nscript ? r->script[r->served] : 200;
			r->served++;
			size_t ulen;
			char *u = NULL;
			Prometheus__WriteRequest *wr = NULL;
			if (snappy_uncompressed_length(buf + hl, body, &ulen) == SNAPPY_OK &&
			    (u = malloc(ulen + 1)) &&
			    snappy_uncompress(buf + hl, body, u, &ulen) == SNAPPY_OK)
				wr = prometheus__write_request__unpack(NULL, ulen, (uint8_t *)u);
			if (wr && status == 200)
				record(r, wr);
			if (wr)
				prometheus__write_request__free_unpacked(wr, NULL);
			free(u);
			pthread_mutex_unlock(&r->lock);
			char resp[128];
			int n = snprintf(resp, sizeof(resp), "HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nno",
					 status);
			if (write(fd, resp, (size_t)n) < 0)
				break;
			memmove(buf, buf + hl + body, len - hl - body);
			len -= hl + body;
		}
	}
	free(buf);
	close(fd);
	return NULL;
}

/* One thread per connection: every shard keeps its own open. */
static void *rx_main(void *arg)
{
	struct rx *r = arg;
	for (;;) {
		int fd = accept(r->lfd, NULL, NULL);
		if (fd < 0)
			return NULL;
		struct conn *cn = malloc(sizeof(*cn));
		pthread_t th;
		cn->r = r;
		cn->fd = fd;
		if (pthread_create(&th, NULL, rx_conn, cn) == 0)
			pthread_detach(th);
		else
			close(fd), free(cn);
	}
}

static int rx_start(struct rx *r, pthread_t *th)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->hdr_ok = 1;
	r->sorted_ok = true;
	r->lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	if (bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(r->lfd, 16) < 0 ||
	    getsockname(r->lfd, (struct sockaddr *)&sa, &sl) < 0)
		return -1;
	r->port = ntohs(sa.sin_port);
	return pthread_create(th, NULL, rx_main, r);
}

static int64_t newest;
static int64_t upto(void *arg)
{
	return __atomic_load_n(&newest, __ATOMIC_ACQUIRE);
}

static int rx_count(struct rx *r)
{
	pthread_mutex_lock(&r->lock);
	int n = r->n;
	pthread_mutex_unlock(&r->lock);
	return n;
}

static bool wait_count(struct rx *r, int want)
{
	for (int i = 0; i < 400 && rx_count(r) < want; i++)
		usleep(10000);
	return rx_count(r) >= want;
}

/* The samples of one series as they arrived. */
static int series_points(struct rx *r, const char *name, int64_t *t, double *v, int max)
{
	int k = 0;
	pthread_mutex_lock(&r->lock);
	for (int i = 0; i < r->n && k < max; i++) {
		if (strcmp(r->name[i], name))
			continue;
		t[k] = r->t[i];
		v[k++] = r->v[i];
	}
	pthread_mutex_unlock(&r->lock);
	return k;
}

static void test_sender(void)
{
	char dir[] = "/tmp/monitor-test-rwsend-XXXXXX";
	if (!mkdtemp(dir))
		SKIP("no temporary directory");
	struct rx r;
	pthread_t rth;
	if (rx_start(&r, &rth) != 0)
		SKIP("cannot listen on loopback");
	struct store_config sc;
	store_config_defaults(&sc);
	snprintf(sc.dir, sizeof(sc.dir), "%s", dir);
	struct store *st;
	struct kv *kv;
	char err[512], kpath[PATH_MAX];
	CHECK_EQ_INT(store_open(&st, &sc, err, sizeof(err)), 0);
	snprintf(kpath, sizeof(kpath), "%s/state.db", dir);
	CHECK_EQ_INT(kv_open(&kv, kpath, err, sizeof(err)), 0);

	uint32_t a, b, c, d;
	struct store_label la[] = { { "__name__", "a_total" }, { "zone", "z" }, { "Zed", "1" } };
	struct store_label lb[] = { { "__name__", "b" } };
	struct store_label lc[] = { { "__name__", "c" } };
	struct store_label ld[] = { { "__name__", "d" } };
	store_series(st, la, 3, STORE_COUNTER, &a);
	store_series(st, lb, 1, STORE_GAUGE, &b);
	store_series(st, lc, 1, STORE_GAUGE, &c);
	int64_t t0 = now_ms() - 60000;
	/* c: ten samples, then quiet */
	for (int i = 0; i < 10; i++)
		store_append(st, c, t0 + i * 100, 100 + i);

	struct rw_config *cfg = calloc(1, sizeof(*cfg));
	cfg->nep = 1;
	struct rw_endpoint_config *e = &cfg->ep[0];
	rw_endpoint_defaults(e);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/write", r.port);
	e->url = strdup(url);
	e->name = strdup("t");
	e->q.batch_send_deadline_ms = 100;
	e->q.min_backoff_ms = 5;
	e->q.max_backoff_ms = 20;
	e->q.max_samples_per_send = 7; /* many requests, series split across them */
	e->q.max_shards = 3;
	e->send_metadata = false;
	cfg->external_set = true;
	cfg->nexternal = 1;
	cfg->ext_name[0] = strdup("host");
	cfg->ext_value[0] = strdup("h1");
	/* the first two requests fail with 503 (retried), the third with 400 (dropped) */
	r.script[0] = 503;
	r.script[1] = 503;
	r.script[2] = 400;
	r.nscript = 3;
	char cur[32];
	int n = snprintf(cur, sizeof(cur), "%lld", (long long)(t0 - 1));
	kv_put(kv, RW_KV_NS, "t", cur, (size_t)n);

	struct rw_start_args args = { .cfg = cfg, .store = st, .kv = kv, .interval_ms = 100,
				      .upto = upto, .upto_arg = NULL };
	__atomic_store_n(&newest, t0 + 999, __ATOMIC_RELEASE);
	struct rw *rw = rw_start(&args);
	CHECK(rw != NULL);
	/* a and b tick 40 times; c stays quiet */
	for (int i = 0; i < 40; i++) {
		store_append(st, a, t0 + 1000 + i * 100, i);
		store_append(st, b, t0 + 1000 + i * 100, -i);
		__atomic_store_n(&newest, t0 + 1000 + i * 100, __ATOMIC_RELEASE);
		usleep(5000);
	}
	struct rw_stats s;
	for (int i = 0; i < 300; i++) {
		rw_endpoint_stats(rw, 0, &s);
		if (s.highest_sent_ms >= t0 + 1000 + 39 * 100)
			break;
		usleep(10000);
	}
	/* a and b had no samples when the series were first selected: they
	 * are found by a later selection and sent whole. */
	int64_t clock = t0 + 1000 + 39 * 100;
	for (int i = 0; i < 400; i++) {
		rw_endpoint_stats(rw, 0, &s);
		/* the receiver counts a request before it answers, the sender
		 * its samples only once the answer is read: wait for both */
		if ((uint64_t)rx_count(&r) + s.samples_failed >= 90 &&
		    s.samples_sent + s.samples_failed >= 90)
			break;
		/* time goes on (ticks without these series' samples) */
		clock += 20;
		__atomic_store_n(&newest, clock, __ATOMIC_RELEASE);
		usleep(10000);
	}
	rw_endpoint_stats(rw, 0, &s);
	CHECK(s.highest_sent_ms >= t0 + 1000 + 39 * 100);
	CHECK(s.retries >= 2);
	CHECK(s.samples_failed >= 1 && s.samples_failed <= 7);
	/* everything but the refused request arrived */
	CHECK_EQ_INT((uint64_t)rx_count(&r) + s.samples_failed, 10 + 80);
	CHECK_EQ_INT(s.samples_sent, (uint64_t)rx_count(&r));
	CHECK(r.hdr_ok);
	CHECK(r.sorted_ok);
	int64_t tt[MAXPTS];
	double vv[MAXPTS];
	/* each series in order, no duplicates */
	const char *names[] = { "a_total", "b", "c" };
	for (int k = 0; k < 3; k++) {
		int m = series_points(&r, names[k], tt, vv, MAXPTS);
		for (int i = 1; i < m; i++)
			CHECK(tt[i] > tt[i - 1]);
	}

	/* c resumes and d appears (the store gains a series): c's new samples
	 * are found although c was quiet at the last selection. */
	store_series(st, ld, 1, STORE_GAUGE, &d);
	int before = rx_count(&r);
	for (int i = 0; i < 5; i++) {
		store_append(st, c, clock + 100 + i * 100, 200 + i);
		store_append(st, d, clock + 100 + i * 100, 300 + i);
		__atomic_store_n(&newest, clock + 100 + i * 100, __ATOMIC_RELEASE);
	}
	for (int i = 0; i < 400 && (series_points(&r, "c", tt, vv, MAXPTS) < 1 ||
				    tt[series_points(&r, "c", tt, vv, MAXPTS) - 1] != clock + 500 ||
				    series_points(&r, "d", tt, vv, MAXPTS) < 5); i++)
		usleep(10000);
	CHECK_EQ_INT(rx_count(&r), before + 10);
	int m = series_points(&r, "c", tt, vv, MAXPTS);
	CHECK(m >= 15 || (m >= 8 && s.samples_failed)); /* 10 old (maybe some refused) + 5 new */
	CHECK_EQ_INT(tt[m - 1], clock + 500);
	CHECK_EQ_DBL(vv[m - 1], 204);
	CHECK_EQ_INT(series_points(&r, "d", tt, vv, MAXPTS), 5);
	for (int i = 0; i < 400; i++) {
		rw_endpoint_stats(rw, 0, &s);
		if (s.highest_sent_ms == clock + 500)
			break;
		usleep(10000);
	}
	rw_stop(rw);

	/* The cursor survives: a new sender starts after it and sends only new ticks. */
	void *val;
	size_t vlen;
	CHECK_EQ_INT(kv_get(kv, RW_KV_NS, "t", &val, &vlen), 0);
	CHECK_EQ_INT(strtoll(val, NULL, 10), clock + 500);
	free(val);
	before = rx_count(&r);
	rw = rw_start(&args);
	store_append(st, d, clock + 1000, 999);
	__atomic_store_n(&newest, clock + 1000, __ATOMIC_RELEASE);
	CHECK(wait_count(&r, before + 1));
	usleep(500000);
	CHECK_EQ_INT(rx_count(&r), before + 1);
	CHECK_EQ_INT(series_points(&r, "d", tt, vv, MAXPTS), 6);
	rw_stop(rw);

	rw_config_free(cfg);
	kv_close(kv);
	store_close(st);
	shutdown(r.lfd, SHUT_RDWR);
	close(r.lfd);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		CHECK(0);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	RUN(test_sender);
	TEST_END();
}
