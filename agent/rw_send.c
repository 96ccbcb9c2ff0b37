/*
 * rw_send.c - the remote write sender: one thread per endpoint reads the
 * store from the endpoint's cursor, shard threads deliver (see rw.h for the
 * design). Never on the tick: the tick only reads the figures.
 *
 * A round: the endpoint thread picks a window (cursor, end] (at most
 * batch_send_deadline behind the newest complete tick when it is keeping
 * up; wider when it is catching up, so that a round reads about `capacity`
 * samples), reads every series with samples in it, runs the external
 * labels and write_relabel_configs once per series (cached by series id),
 * and splits the series over up to max_shards shards by a hash of their id.
 * Each shard sends its series in order, max_samples_per_send samples a
 * request, retrying 5xx, 429 and network errors with doubling backoff
 * (min_backoff to max_backoff) for as long as it takes, and dropping a
 * request the receiver refuses with another 4xx (counted as failed). When
 * every shard is done the cursor moves to end and is saved in the kv store
 * (at most once a second). A restart resends at most that second.
 *
 * This is the one file of agent/ that includes curl/curl.h: the sender is an
 * outbound HTTP client, as the notifiers are.
 */
#include "agent/agent.h"
#include "agent/rw.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RW_ERRBODY 512          /* bytes of a refusal kept for the log */
#define RW_PERSIST_MS 1000      /* cursor saved at most this often */
#define RW_AUTH_REREAD_MS 60000 /* bearer_token_file / password_file re-read */
#define RW_MAX_WINDOW_MS (600 * 1000)

/* A series' labels as sent: external labels added, relabelled, sorted. */
struct cached {
	bool known, dropped;
	size_t n;
	const char **names, **values; /* into mem */
	char *mem;
};

/* A series of the current round and where its samples are. */
struct rseries {
	uint32_t id;
	size_t first, n;
};

struct shard {
	struct ep *ep;
	int idx;
	pthread_t th;
	bool started;
	bool has_job;
	uint32_t *list;          /* indices into ep->rs, in order */
	size_t nlist, listcap;
	CURL *curl;
	struct curl_slist *hdrs;
	uint64_t hdrs_gen;
	struct rw_req *req;
	struct rw_bytes body;
	char errbody[RW_ERRBODY];
	size_t errlen;
	int64_t cpu_seen_ns;
};

struct ep {
	struct rw *rw;
	const struct rw_endpoint_config *cfg;
	size_t idx;
	pthread_t th;
	bool started;
	struct cached *cache;
	size_t ncache;
	struct rseries *rs;
	size_t nrs, rscap;
	int64_t *t;
	double *v;
	size_t ns, scap;
	size_t nseries_last;     /* series in the last round: the pending estimate */
	/* The series the rounds read (not dropped by relabelling), and up to
	 * when each has been delivered: see select_series. */
	uint32_t *sel;
	size_t nsel;
	int64_t *sent_upto;      /* by series id; 0: never read */
	size_t nsent_upto;
	int64_t floor_ms;        /* nothing at or before it is (re)sent: start, skips */
	bool sel_ok;
	int64_t sel_from;
	int rounds_since_sel;
	uint64_t sel_store_series;
	struct shard *shards;    /* max_shards of them, started as needed */
	int nshards_started;
	pthread_mutex_t lock;    /* jobs and auth */
	pthread_cond_t job_cond, done_cond;
	int outstanding;
	/* auth, re-read from files; under lock */
	char *auth_header;       /* "Authorization: Bearer ..." or NULL */
	char *password;
	uint64_t auth_gen;
	int64_t auth_read_ms;
	/* figures; atomics */
	struct rw_stats st;
	int64_t cursor;
	int64_t last_persist_ms, last_meta_ms;
	struct log_limit send_ll, read_ll, auth_ll;
	int64_t cpu_seen_ns;
};

struct rw {
	struct rw_start_args a;
	struct ep *ep;
	size_t nep;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;                /* atomic */
	struct rw_lset external;
	char user_agent[96];
};

static bool stopping(const struct rw *rw)
{
	return __atomic_load_n(&rw->stop, __ATOMIC_ACQUIRE) != 0;
}

/* Sleeps up to ms, waking early when the sender stops. */
static void nap(struct rw *rw, int64_t ms)
{
	if (ms <= 0)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t ns = ts.tv_nsec + (ms % 1000) * 1000000;
	ts.tv_sec += ms / 1000 + ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	pthread_mutex_lock(&rw->lock);
	if (!rw->stop)
		pthread_cond_timedwait(&rw->cond, &rw->lock, &ts);
	pthread_mutex_unlock(&rw->lock);
}

static int64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Adds the CPU this thread used since *seen to the endpoint's total. */
static void account_cpu(struct ep *e, int64_t *seen)
{
	int64_t now = thread_cpu_ns();
	__atomic_add_fetch(&e->st.cpu_ns, (uint64_t)(now - *seen), __ATOMIC_RELAXED);
	*seen = now;
}

/* ---- auth ----------------------------------------------------------------- */

/* First line of a secret file, trimmed; NULL on failure (errno-style code in *rc). */
static char *read_secret(const char *path, int *rc)
{
	char buf[4097];
	ssize_t n = read_file(path, buf, sizeof(buf));
	if (n < 0) {
		*rc = (int)n;
		return NULL;
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	*rc = 0;
	char *s = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return s;
}

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* (Re)reads the endpoint's secrets; never logs their content. */
static void auth_refresh(struct ep *e)
{
	const struct rw_endpoint_config *c = e->cfg;
	int64_t now = now_ms();
	if (e->auth_read_ms && now - e->auth_read_ms < RW_AUTH_REREAD_MS)
		return;
	e->auth_read_ms = now;
	char *hdr = NULL, *pw = NULL;
	int rc = 0;
	if (c->bearer_token || c->bearer_token_file) {
		char *tok = c->bearer_token ? strdup(c->bearer_token) :
					      read_secret(c->bearer_token_file, &rc);
		if (tok) {
			size_t n = strlen(tok) + 32;
			hdr = malloc(n);
			if (hdr)
				snprintf(hdr, n, "Authorization: Bearer %s", tok);
			free_secret(tok);
		}
		if (rc < 0)
			log_limited(&e->auth_ll, LOG_WARN, "remote_write %s: bearer_token_file %s: %s",
				    c->name, c->bearer_token_file, strerror(-rc));
	}
	if (c->basic_password || c->basic_password_file) {
		pw = c->basic_password ? strdup(c->basic_password) :
					 read_secret(c->basic_password_file, &rc);
		if (rc < 0)
			log_limited(&e->auth_ll, LOG_WARN, "remote_write %s: basic_auth.password_file %s: %s",
				    c->name, c->basic_password_file, strerror(-rc));
	}
	pthread_mutex_lock(&e->lock);
	bool changed = (!hdr != !e->auth_header) || (hdr && strcmp(hdr, e->auth_header)) ||
		       (!pw != !e->password) || (pw && strcmp(pw, e->password));
	if (changed) {
		free_secret(e->auth_header);
		free_secret(e->password);
		e->auth_header = hdr;
		e->password = pw;
		e->auth_gen++;
		hdr = pw = NULL;
	}
	pthread_mutex_unlock(&e->lock);
	free_secret(hdr);
	free_secret(pw);
}

/* ---- HTTP ----------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct shard *sh = arg;
	size_t len = size * n, room = sizeof(sh->errbody) - 1 - sh->errlen;
	size_t k = len < room ? len : room;
	memcpy(sh->errbody + sh->errlen, p, k);
	sh->errlen += k;
	sh->errbody[sh->errlen] = '\0';
	return len;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	const struct shard *sh = arg;
	return stopping(sh->ep->rw); /* non-zero aborts the transfer at once */
}

/* Builds the shard's handle and headers (again when the secrets change). */
static int shard_prepare(struct shard *sh)
{
	struct ep *e = sh->ep;
	const struct rw_endpoint_config *c = e->cfg;
	if (!sh->curl) {
		sh->curl = curl_easy_init();
		if (!sh->curl)
			return -ENOMEM;
		curl_easy_setopt(sh->curl, CURLOPT_URL, c->url);
		curl_easy_setopt(sh->curl, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(sh->curl, CURLOPT_TIMEOUT_MS, (long)c->remote_timeout_ms);
		curl_easy_setopt(sh->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)c->remote_timeout_ms);
		curl_easy_setopt(sh->curl, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(sh->curl, CURLOPT_WRITEDATA, sh);
		curl_easy_setopt(sh->curl, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(sh->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(sh->curl, CURLOPT_XFERINFODATA, sh);
		curl_easy_setopt(sh->curl, CURLOPT_USERAGENT, e->rw->user_agent);
		curl_easy_setopt(sh->curl, CURLOPT_PROTOCOLS_STR, "http,https");
		if (c->ca_file)
			curl_easy_setopt(sh->curl, CURLOPT_CAINFO, c->ca_file);
		if (c->tls_insecure) {
			curl_easy_setopt(sh->curl, CURLOPT_SSL_VERIFYPEER, 0L);
			curl_easy_setopt(sh->curl, CURLOPT_SSL_VERIFYHOST, 0L);
		}
		sh->hdrs_gen = UINT64_MAX;
	}
	pthread_mutex_lock(&e->lock);
	int rc = 0;
	if (sh->hdrs_gen != e->auth_gen) {
		curl_slist_free_all(sh->hdrs);
		/* The spec's headers; users cannot override them. */
		struct curl_slist *h = NULL, *t;
		static const char *const fixed[] = {
			"Content-Encoding: snappy", "Content-Type: application/x-protobuf",
			"X-Prometheus-Remote-Write-Version: 0.1.0", "Expect:",
		};
		for (size_t i = 0; i < ARRAY_LEN(fixed) && (h || !i); i++)
			h = (t = curl_slist_append(h, fixed[i])) ? t : NULL;
		if (h && e->auth_header)
			h = (t = curl_slist_append(h, e->auth_header)) ? t : NULL;
		sh->hdrs = h;
		if (!h)
			rc = -ENOMEM;
		curl_easy_setopt(sh->curl, CURLOPT_HTTPHEADER, h);
		if (c->basic_user) {
			curl_easy_setopt(sh->curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
			curl_easy_setopt(sh->curl, CURLOPT_USERNAME, c->basic_user);
			curl_easy_setopt(sh->curl, CURLOPT_PASSWORD, e->password ? e->password : "");
		}
		sh->hdrs_gen = e->auth_gen;
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

enum post_result { POST_OK, POST_REFUSED, POST_STOPPED };

/* Sends sh->body until it is delivered, refused, or the sender stops. */
static enum post_result post(struct shard *sh, size_t nsamples, size_t nseries, size_t raw_len,
			     int64_t *cpu_seen)
{
	struct ep *e = sh->ep;
	const struct rw_endpoint_config *c = e->cfg;
	int64_t backoff = c->q.min_backoff_ms;
	for (;;) {
		if (stopping(e->rw))
			return POST_STOPPED;
		long status = 0;
		CURLcode cc = CURLE_FAILED_INIT;
		if (shard_prepare(sh) == 0) {
			curl_easy_setopt(sh->curl, CURLOPT_POSTFIELDS, (const char *)sh->body.p);
			curl_easy_setopt(sh->curl, CURLOPT_POSTFIELDSIZE_LARGE,
					 (curl_off_t)sh->body.len);
			sh->errlen = 0;
			sh->errbody[0] = '\0';
			cc = curl_easy_perform(sh->curl);
			if (cc == CURLE_OK)
				curl_easy_getinfo(sh->curl, CURLINFO_RESPONSE_CODE, &status);
		}
		__atomic_add_fetch(&e->st.requests, 1, __ATOMIC_RELAXED);
		if (cc == CURLE_OK && status >= 200 && status < 300) {
			__atomic_add_fetch(&e->st.samples_sent, nsamples, __ATOMIC_RELAXED);
			__atomic_add_fetch(&e->st.series_sent, nseries, __ATOMIC_RELAXED);
			__atomic_add_fetch(&e->st.bytes_sent, sh->body.len, __ATOMIC_RELAXED);
			__atomic_add_fetch(&e->st.bytes_raw, raw_len, __ATOMIC_RELAXED);
			log_recovered(&e->send_ll, "remote_write delivery");
			return POST_OK;
		}
		if (cc == CURLE_ABORTED_BY_CALLBACK || stopping(e->rw))
			return POST_STOPPED;
		bool retry = cc != CURLE_OK || status >= 500 ||
			     (status == 429 && c->q.retry_on_http_429);
		/* Whatever the receiver said, on one line and without control bytes. */
		for (char *p = sh->errbody; *p; p++)
			if ((unsigned char)*p < ' ')
				*p = ' ';
		if (!retry) {
			__atomic_add_fetch(&e->st.samples_failed, nsamples, __ATOMIC_RELAXED);
			log_limited(&e->send_ll, LOG_WARN, "remote_write %s: %s refused %zu samples "
				    "with HTTP %ld (not retried): %.200s", c->name, c->url, nsamples,
				    status, sh->errbody);
			return POST_REFUSED;
		}
		__atomic_add_fetch(&e->st.retries, 1, __ATOMIC_RELAXED);
		if (cc != CURLE_OK)
			log_limited(&e->send_ll, LOG_WARN, "remote_write %s: %s: %s; retrying "
				    "(the samples wait in the store)", c->name, c->url,
				    curl_easy_strerror(cc));
		else
			log_limited(&e->send_ll, LOG_WARN, "remote_write %s: %s answered HTTP %ld; "
				    "retrying (the samples wait in the store): %.200s", c->name,
				    c->url, status, sh->errbody);
		account_cpu(e, cpu_seen);
		nap(e->rw, backoff);
		*cpu_seen = thread_cpu_ns();
		backoff = backoff * 2 > c->q.max_backoff_ms ? c->q.max_backoff_ms : backoff * 2;
	}
}

/* ---- shards --------------------------------------------------------------- */

/* Packs and sends the request built so far; false when the sender stops. */
static bool flush_req(struct shard *sh, size_t nseries)
{
	size_t n = rw_req_samples(sh->req), raw = 0;
	if (!n)
		return true;
	if (rw_req_pack(sh->req, &sh->body, &raw) < 0) {
		log_limited(&sh->ep->send_ll, LOG_ERROR, "remote_write %s: out of memory packing "
			    "%zu samples", sh->ep->cfg->name, n);
		__atomic_add_fetch(&sh->ep->st.samples_failed, n, __ATOMIC_RELAXED);
		rw_req_reset(sh->req);
		return true;
	}
	rw_req_reset(sh->req);
	return post(sh, n, nseries, raw, &sh->cpu_seen_ns) != POST_STOPPED;
}

/* Sends the shard's series of the current round. false: interrupted. */
static bool shard_run(struct shard *sh)
{
	struct ep *e = sh->ep;
	size_t max = (size_t)e->cfg->q.max_samples_per_send, nseries = 0;
	rw_req_reset(sh->req);
	for (size_t k = 0; k < sh->nlist; k++) {
		const struct rseries *r = &e->rs[sh->list[k]];
		const struct cached *c = &e->cache[r->id];
		size_t done = 0;
		while (done < r->n) {
			size_t room = max - rw_req_samples(sh->req);
			size_t take = r->n - done < room ? r->n - done : room;
			if (rw_req_series(sh->req, c->names, c->values, c->n) < 0) {
				__atomic_add_fetch(&e->st.samples_failed, r->n - done, __ATOMIC_RELAXED);
				break;
			}
			nseries++;
			for (size_t i = 0; i < take; i++)
				rw_req_sample(sh->req, e->t[r->first + done + i], e->v[r->first + done + i]);
			done += take;
			if (rw_req_samples(sh->req) >= max) {
				if (!flush_req(sh, nseries))
					return false;
				nseries = 0;
			}
		}
	}
	return flush_req(sh, nseries);
}

static void *shard_main(void *arg)
{
	struct shard *sh = arg;
	struct ep *e = sh->ep;
	sh->cpu_seen_ns = thread_cpu_ns();
	for (;;) {
		pthread_mutex_lock(&e->lock);
		while (!sh->has_job && !stopping(e->rw))
			pthread_cond_wait(&e->job_cond, &e->lock);
		bool job = sh->has_job;
		pthread_mutex_unlock(&e->lock);
		if (!job)
			break;
		sh->cpu_seen_ns = thread_cpu_ns();
		bool ok = shard_run(sh);
		account_cpu(e, &sh->cpu_seen_ns);
		pthread_mutex_lock(&e->lock);
		sh->has_job = false;
		if (!ok)
			e->outstanding = -1000000; /* the round is not complete */
		e->outstanding--;
		pthread_cond_broadcast(&e->done_cond);
		pthread_mutex_unlock(&e->lock);
		if (!ok)
			break;
	}
	return NULL;
}

static int shard_start(struct ep *e, int k)
{
	struct shard *sh = &e->shards[k];
	sh->ep = e;
	sh->idx = k;
	sh->req = rw_req_new();
	if (!sh->req)
		return -ENOMEM;
	int rc = pthread_create(&sh->th, NULL, shard_main, sh);
	if (rc) {
		rw_req_free(sh->req);
		sh->req = NULL;
		return -rc;
	}
	pthread_setname_np(sh->th, "rw-shard");
	sh->started = true;
	return 0;
}

/* ---- reading the store ------------------------------------------------------ */

/* The series' labels as sent (external labels, relabelling), cached. */
static struct cached *cache_get(struct ep *e, const struct store_series_info *si)
{
	if (si->id >= e->ncache) {
		size_t n = e->ncache ? e->ncache : 1024;
		while (n <= si->id)
			n *= 2;
		struct cached *c = realloc(e->cache, n * sizeof(*c));
		if (!c)
			return NULL;
		memset(c + e->ncache, 0, (n - e->ncache) * sizeof(*c));
		e->cache = c;
		e->ncache = n;
	}
	struct cached *c = &e->cache[si->id];
	if (c->known)
		return c;
	struct rw_lset ls = { 0 };
	int rc = 0;
	for (size_t i = 0; i < si->nlabels && rc == 0; i++)
		rc = rw_lset_set(&ls, si->labels[i].name, si->labels[i].value);
	const struct rw_lset *ext = &e->rw->external;
	for (size_t i = 0; i < ext->n && rc == 0; i++)
		if (!rw_lset_get(&ls, ext->name[i]))
			rc = rw_lset_set(&ls, ext->name[i], ext->value[i]);
	if (rc == 0)
		rc = rw_relabel_apply(e->cfg->relabel, e->cfg->nrelabel, &ls);
	else
		rc = -rc > 0 ? rc : -EINVAL;
	if (rc < 0) {
		rw_lset_fini(&ls);
		return NULL;
	}
	if (rc == 0) {
		c->dropped = true;
	} else {
		size_t bytes = 2 * ls.n * sizeof(char *);
		for (size_t i = 0; i < ls.n; i++)
			bytes += strlen(ls.name[i]) + strlen(ls.value[i]) + 2;
		c->mem = malloc(bytes);
		if (!c->mem) {
			rw_lset_fini(&ls);
			return NULL;
		}
		c->names = (const char **)c->mem;
		c->values = c->names + ls.n;
		char *s = (char *)(c->values + ls.n);
		for (size_t i = 0; i < ls.n; i++) {
			size_t a = strlen(ls.name[i]) + 1, b = strlen(ls.value[i]) + 1;
			memcpy(s, ls.name[i], a);
			c->names[i] = s;
			s += a;
			memcpy(s, ls.value[i], b);
			c->values[i] = s;
			s += b;
		}
		c->n = ls.n;
	}
	c->known = true;
	rw_lset_fini(&ls);
	return c;
}

static int push_sample(struct ep *e, int64_t t, double v)
{
	if (e->ns == e->scap) {
		size_t n = e->scap ? e->scap * 2 : 16384;
		int64_t *nt = realloc(e->t, n * sizeof(*nt));
		if (!nt)
			return -ENOMEM;
		e->t = nt;
		double *nv = realloc(e->v, n * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		e->v = nv;
		e->scap = n;
	}
	e->t[e->ns] = t;
	e->v[e->ns++] = v;
	return 0;
}

/*
 * Which series a round reads. store_select copies and sorts the labels of
 * every series it returns, which at 100,000 series costs more than reading
 * their samples, so a full selection is made only when the store has gained
 * (or lost) series, or every RW_RESELECT_ROUNDS rounds; in between the
 * rounds read the kept ids. Each series remembers up to when it has been
 * delivered (sent_upto), and is read from there: a series that was quiet
 * at the last selection and has samples again (a slow collector's, a
 * restarted container's) is found by the next one and sent from where it
 * stopped, at most RW_RESELECT_ROUNDS rounds late, never skipped. A full
 * selection asks for the series with samples since the previous one's
 * start, so none with unsent samples is missed.
 */
#define RW_RESELECT_ROUNDS 6

static int select_series(struct ep *e, int64_t after, int64_t upto)
{
	struct store *s = e->rw->a.store;
	struct store_stats ss;
	store_stats_recent(s, &ss, 10000);  /* only the series count is used: no walk */
	if (e->sel_ok && ss.series == e->sel_store_series && ++e->rounds_since_sel < RW_RESELECT_ROUNDS)
		return 0;
	int64_t from = e->sel_ok && e->sel_from < after ? e->sel_from : after;
	struct store_matcher m;
	char err[128];
	if (store_matcher_init(&m, STORE_MATCH_RE, "__name__", ".+", err, sizeof(err)) < 0)
		return -EINVAL;
	struct store_series_set set;
	int rc = store_select(s, &m, 1, from + 1, upto, &set);
	store_matcher_fini(&m);
	if (rc < 0)
		return rc;
	size_t n = 0;
	uint32_t *ids = malloc((set.n ? set.n : 1) * sizeof(*ids));
	if (!ids)
		rc = -ENOMEM;
	for (size_t i = 0; i < set.n && rc == 0; i++) {
		const struct store_series_info *si = &set.series[i];
		const struct cached *c = cache_get(e, si);
		if (!c) {
			rc = -ENOMEM;
			break;
		}
		if (!c->dropped)
			ids[n++] = si->id;
	}
	store_series_set_free(&set);
	if (rc == 0 && e->nsent_upto < e->ncache) {
		int64_t *p = realloc(e->sent_upto, e->ncache * sizeof(*p));
		if (p) {
			memset(p + e->nsent_upto, 0, (e->ncache - e->nsent_upto) * sizeof(*p));
			e->sent_upto = p;
			e->nsent_upto = e->ncache;
		} else {
			rc = -ENOMEM;
		}
	}
	if (rc < 0) {
		free(ids);
		return rc;
	}
	free(e->sel);
	e->sel = ids;
	e->nsel = n;
	e->sel_ok = true;
	e->sel_from = after;
	e->rounds_since_sel = 0;
	e->sel_store_series = ss.series;
	return 0;
}

/* Reads every sample in (sent_upto, upto] of the selected series into the
 * round. Returns 0 or -errno. */
static int read_round(struct ep *e, int64_t after, int64_t upto)
{
	struct store *s = e->rw->a.store;
	e->nrs = e->ns = 0;
	int rc = select_series(e, after, upto);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < e->nsel && rc == 0; i++) {
		uint32_t id = e->sel[i];
		int64_t from = e->sent_upto[id] > e->floor_ms ? e->sent_upto[id] : e->floor_ms;
		struct store_iter *it;
		if (store_iter_open(s, id, STORE_TIER_RAW, from + 1, upto, &it) < 0)
			continue; /* gone meanwhile (retention) */
		size_t first = e->ns;
		int64_t t[256];
		double v[256];
		ssize_t k;
		while (rc == 0 && (k = store_iter_batch(it, t, v, ARRAY_LEN(t))) > 0)
			for (ssize_t j = 0; j < k && rc == 0; j++)
				rc = push_sample(e, t[j], v[j]);
		store_iter_free(it);
		if (rc == 0 && e->ns > first) {
			if (e->nrs == e->rscap) {
				size_t n = e->rscap ? e->rscap * 2 : 1024;
				struct rseries *r = realloc(e->rs, n * sizeof(*r));
				if (!r) {
					rc = -ENOMEM;
					break;
				}
				e->rs = r;
				e->rscap = n;
			}
			e->rs[e->nrs++] = (struct rseries){ id, first, e->ns - first };
		}
	}
	if (e->nsel)
		__atomic_store_n(&e->nseries_last, e->nsel, __ATOMIC_RELAXED);
	return rc;
}

/* After a delivered round: every selected series is complete up to end. */
static void round_done(struct ep *e, int64_t end)
{
	for (size_t i = 0; i < e->nsel; i++)
		e->sent_upto[e->sel[i]] = end;
}

/* Hands the round to the shards and waits. false: interrupted by stop. */
static bool run_round(struct ep *e)
{
	size_t max = (size_t)e->cfg->q.max_samples_per_send;
	size_t want = (e->ns + max - 1) / max;
	int nsh = (int)(want < (size_t)e->cfg->q.max_shards ? want : (size_t)e->cfg->q.max_shards);
	if (nsh < 1)
		nsh = 1;
	while (e->nshards_started < nsh) {
		if (shard_start(e, e->nshards_started) < 0) {
			if (!e->nshards_started)
				return false;
			nsh = e->nshards_started;
			break;
		}
		e->nshards_started++;
	}
	__atomic_store_n(&e->st.shards, e->nshards_started, __ATOMIC_RELAXED);
	for (int k = 0; k < nsh; k++)
		e->shards[k].nlist = 0;
	for (size_t i = 0; i < e->nrs; i++) {
		struct shard *sh = &e->shards[hash_bytes(&e->rs[i].id, sizeof(uint32_t)) % (uint64_t)nsh];
		if (sh->nlist == sh->listcap) {
			size_t n = sh->listcap ? sh->listcap * 2 : 256;
			uint32_t *l = realloc(sh->list, n * sizeof(*l));
			if (!l)
				return false;
			sh->list = l;
			sh->listcap = n;
		}
		sh->list[sh->nlist++] = (uint32_t)i;
	}
	pthread_mutex_lock(&e->lock);
	e->outstanding = 0;
	for (int k = 0; k < nsh; k++) {
		if (!e->shards[k].nlist)
			continue;
		e->shards[k].has_job = true;
		e->outstanding++;
	}
	pthread_cond_broadcast(&e->job_cond);
	/* Shards leave once the sender stops, jobs or not: never wait for
	 * them then (rw_stop joins them before it frees the round). */
	while (e->outstanding > 0 && !stopping(e->rw))
		pthread_cond_wait(&e->done_cond, &e->lock);
	bool ok = e->outstanding == 0;
	pthread_mutex_unlock(&e->lock);
	return ok;
}

/* ---- metadata ------------------------------------------------------------- */

static const char *unit_of(const char *name)
{
	if (strstr(name, "_seconds"))
		return "seconds";
	if (strstr(name, "_bytes"))
		return "bytes";
	return "";
}

/* Sends every family's type and help (metadata_config), through shard 0
 * while no round runs. */
static void send_metadata(struct ep *e)
{
	if (!e->nshards_started && shard_start(e, e->nshards_started++) < 0) {
		e->nshards_started = 0;
		return;
	}
	struct shard *sh = &e->shards[0];
	char names[M__COUNT][128];
	rw_req_reset(sh->req);
	size_t n = 0;
	for (size_t i = 0; i < M__COUNT; i++) {
		const struct metric_family *f = &metric_families[i];
		int type = f->type == COUNTER ? 1 : f->type == GAUGE ? 2 : 3;
		if (f->type == HIST_SUM || f->type == HIST_COUNT)
			continue;
		snprintf(names[i], sizeof(names[i]), "%s", f->name);
		size_t len = strlen(names[i]);
		if (f->type == HIST_BUCKET && len > 7)
			names[i][len - 7] = '\0';
		rw_req_metadata(sh->req, type, names[i], f->help, unit_of(names[i]));
		n++;
	}
	size_t raw;
	if (rw_req_pack(sh->req, &sh->body, &raw) == 0 &&
	    post(sh, 0, 0, raw, &e->cpu_seen_ns) == POST_OK)
		__atomic_add_fetch(&e->st.metadata_sent, n, __ATOMIC_RELAXED);
	rw_req_reset(sh->req);
}

/* ---- the endpoint thread -------------------------------------------------- */

static void persist(struct ep *e, bool force)
{
	struct kv *kv = e->rw->a.kv;
	int64_t now = now_ms();
	if (!kv || (!force && now - e->last_persist_ms < RW_PERSIST_MS))
		return;
	char v[32];
	int n = snprintf(v, sizeof(v), "%" PRId64, e->cursor);
	int rc = kv_put(kv, RW_KV_NS, e->cfg->name, v, (size_t)n);
	if (rc < 0)
		log_limited(&e->read_ll, LOG_WARN, "remote_write %s: saving the cursor: %s",
			    e->cfg->name, strerror(-rc));
	e->last_persist_ms = now;
}

static void *ep_main(void *arg)
{
	struct ep *e = arg;
	struct rw *rw = e->rw;
	const struct rw_queue_config *q = &e->cfg->q;
	int64_t interval = rw->a.interval_ms > 0 ? rw->a.interval_ms : 1000;
	e->cpu_seen_ns = thread_cpu_ns();
	while (!stopping(rw)) {
		auth_refresh(e);
		int64_t upto = rw->a.upto(rw->a.upto_arg);
		int64_t behind = upto - e->cursor;
		uint64_t pending = e->nseries_last && behind > 0 ?
			(uint64_t)((double)e->nseries_last * (double)behind / (double)interval) : 0;
		if (pending > (uint64_t)q->max_pending_samples) {
			/* Past the cap: skip the oldest, keep the newest max_pending. */
			int64_t keep_ms = (int64_t)((double)q->max_pending_samples * (double)interval /
						    (double)e->nseries_last);
			int64_t skip_to = upto - keep_ms;
			uint64_t dropped = pending - (uint64_t)q->max_pending_samples;
			__atomic_add_fetch(&e->st.samples_dropped, dropped, __ATOMIC_RELAXED);
			log_warn("remote_write %s: %" PRIu64 " samples pending, past "
				 "queue_config.max_pending_samples: skipping %.0f s (about %" PRIu64
				 " samples)", e->cfg->name, pending, (double)(skip_to - e->cursor) / 1000,
				 dropped);
			e->cursor = skip_to;
			e->floor_ms = skip_to;
			__atomic_store_n(&e->st.highest_sent_ms, e->cursor, __ATOMIC_RELAXED);
			persist(e, true);
			continue;
		}
		if (e->cfg->send_metadata && now_ms() - e->last_meta_ms >= e->cfg->metadata_interval_ms) {
			e->last_meta_ms = now_ms();
			send_metadata(e);
		}
		/* A round reads every series once, so rounds are batch_send_deadline
		 * apart while the sender keeps up, back to back while it catches up. */
		if (upto <= 0 || behind < q->batch_send_deadline_ms) {
			account_cpu(e, &e->cpu_seen_ns);
			int64_t wait = upto <= 0 ? interval : q->batch_send_deadline_ms - behind;
			nap(rw, wait < interval / 2 ? interval / 2 : wait);
			e->cpu_seen_ns = thread_cpu_ns();
			continue;
		}
		/* Catching up, a round reads up to capacity x max_shards samples
		 * (Prometheus' capacity is per shard): wider windows, fewer reads
		 * of each series. */
		int64_t window = q->batch_send_deadline_ms;
		if (e->nseries_last) {
			int64_t w = (int64_t)((double)q->capacity * (double)q->max_shards *
					      (double)interval / (double)e->nseries_last);
			if (w > window)
				window = w;
		}
		if (window > RW_MAX_WINDOW_MS)
			window = RW_MAX_WINDOW_MS;
		int64_t end = e->cursor + window < upto ? e->cursor + window : upto;
		int rc = read_round(e, e->cursor, end);
		if (rc < 0) {
			log_limited(&e->read_ll, LOG_WARN, "remote_write %s: reading the store: %s",
				    e->cfg->name, strerror(-rc));
			nap(rw, interval);
			continue;
		}
		log_recovered(&e->read_ll, "remote_write reading the store");
		if (e->ns && !run_round(e))
			break; /* stopped mid-round: the cursor stays */
		round_done(e, end);
		e->cursor = end;
		__atomic_store_n(&e->st.highest_sent_ms, end, __ATOMIC_RELAXED);
		persist(e, false);
		account_cpu(e, &e->cpu_seen_ns);
	}
	persist(e, true);
	return NULL;
}

/* ---- start, stop, metrics ------------------------------------------------- */

static int load_cursor(struct ep *e)
{
	void *val;
	size_t len;
	e->cursor = now_ms() - 1;
	if (!e->rw->a.kv || kv_get(e->rw->a.kv, RW_KV_NS, e->cfg->name, &val, &len) < 0)
		return 0; /* first start: from now on */
	char *end;
	long long c = strtoll(val, &end, 10);
	if (end != val && c > 0 && c < e->cursor + 1)
		e->cursor = c;
	free(val);
	return 0;
}

/* The default external label: host=<the host's name>. */
static void default_host(struct rw *rw)
{
	char name[256] = "";
	if (rw->a.host_label) {
		snprintf(name, sizeof(name), "%s", rw->a.host_label);
	} else {
		char path[PATH_MAX];
		if (hostroot_path(path, sizeof(path), "/etc/hostname") == 0 &&
		    read_file(path, name, sizeof(name)) > 0)
			name[strcspn(name, " \t\r\n")] = '\0';
		if (!name[0] && gethostname(name, sizeof(name) - 1) < 0)
			name[0] = '\0';
	}
	if (name[0])
		rw_lset_set(&rw->external, "host", name);
}

struct rw *rw_start(const struct rw_start_args *a)
{
	if (!a->cfg || !a->cfg->nep)
		return NULL;
	struct rw *rw = calloc(1, sizeof(*rw));
	if (!rw)
		return NULL;
	rw->a = *a;
	pthread_mutex_init(&rw->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_cond_init(&rw->cond, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(rw->user_agent, sizeof(rw->user_agent), "monitor/%s", MONITOR_RELEASE);
	if (a->cfg->external_set) {
		for (size_t i = 0; i < a->cfg->nexternal; i++)
			rw_lset_set(&rw->external, a->cfg->ext_name[i], a->cfg->ext_value[i]);
	} else {
		default_host(rw);
	}
	rw->ep = calloc(a->cfg->nep, sizeof(*rw->ep));
	if (!rw->ep) {
		rw_stop(rw);
		return NULL;
	}
	for (size_t i = 0; i < a->cfg->nep; i++) {
		struct ep *e = &rw->ep[i];
		e->rw = rw;
		e->cfg = &a->cfg->ep[i];
		e->idx = i;
		pthread_mutex_init(&e->lock, NULL);
		pthread_cond_init(&e->job_cond, NULL);
		pthread_cond_init(&e->done_cond, NULL);
		e->shards = calloc((size_t)e->cfg->q.max_shards, sizeof(*e->shards));
		rw->nep = i + 1;
		if (!e->shards) {
			rw_stop(rw);
			return NULL;
		}
		load_cursor(e);
		e->floor_ms = e->cursor;
		e->st.highest_sent_ms = e->cursor;
		int rc = pthread_create(&e->th, NULL, ep_main, e);
		if (rc) {
			log_error("remote_write %s: cannot start its thread: %s", e->cfg->name,
				  strerror(rc));
			rw_stop(rw);
			return NULL;
		}
		e->started = true;
		pthread_setname_np(e->th, "rw-endpoint");
		log_info("remote_write %s: sending to %s from %.3f (%s)", e->cfg->name, e->cfg->url,
			 (double)e->cursor / 1000, a->kv ? "cursor in state.db" : "no state.db: from now");
	}
	return rw;
}

void rw_stop(struct rw *rw)
{
	if (!rw)
		return;
	pthread_mutex_lock(&rw->lock);
	__atomic_store_n(&rw->stop, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&rw->cond);
	pthread_mutex_unlock(&rw->lock);
	for (size_t i = 0; i < rw->nep; i++) {
		struct ep *e = &rw->ep[i];
		pthread_mutex_lock(&e->lock);
		pthread_cond_broadcast(&e->job_cond);
		pthread_cond_broadcast(&e->done_cond);
		pthread_mutex_unlock(&e->lock);
		if (e->started)
			pthread_join(e->th, NULL);
		for (int k = 0; e->shards && k < e->nshards_started; k++) {
			struct shard *sh = &e->shards[k];
			if (sh->started) {
				pthread_mutex_lock(&e->lock);
				pthread_cond_broadcast(&e->job_cond);
				pthread_mutex_unlock(&e->lock);
				pthread_join(sh->th, NULL);
			}
			if (sh->curl)
				curl_easy_cleanup(sh->curl);
			curl_slist_free_all(sh->hdrs);
			rw_req_free(sh->req);
			rw_bytes_fini(&sh->body);
			free(sh->list);
		}
		free(e->shards);
		for (size_t j = 0; j < e->ncache; j++)
			free(e->cache[j].mem);
		free(e->cache);
		free(e->rs);
		free(e->t);
		free(e->v);
		free(e->sel);
		free(e->sent_upto);
		free_secret(e->auth_header);
		free_secret(e->password);
		pthread_mutex_destroy(&e->lock);
		pthread_cond_destroy(&e->job_cond);
		pthread_cond_destroy(&e->done_cond);
	}
	free(rw->ep);
	rw_lset_fini(&rw->external);
	pthread_mutex_destroy(&rw->lock);
	pthread_cond_destroy(&rw->cond);
	free(rw);
}

bool rw_endpoint_stats(struct rw *rw, size_t i, struct rw_stats *out)
{
	if (!rw || i >= rw->nep)
		return false;
	const struct rw_stats *s = &rw->ep[i].st;
#define LD(f) out->f = __atomic_load_n(&s->f, __ATOMIC_RELAXED)
	LD(samples_sent);
	LD(samples_failed);
	LD(samples_dropped);
	LD(series_sent);
	LD(requests);
	LD(retries);
	LD(bytes_sent);
	LD(bytes_raw);
	LD(metadata_sent);
	LD(highest_sent_ms);
	LD(shards);
	LD(cpu_ns);
#undef LD
	/* Behind what is in the store now, not at the last round: a round
	 * stuck in retries must show the backlog growing. */
	const struct ep *e = &rw->ep[i];
	int64_t interval = rw->a.interval_ms > 0 ? rw->a.interval_ms : 1000;
	int64_t newest = rw->a.upto(rw->a.upto_arg);
	size_t nseries = __atomic_load_n(&e->nseries_last, __ATOMIC_RELAXED);
	out->newest_ms = newest;
	out->pending = newest > out->highest_sent_ms ?
		(uint64_t)((double)nseries * (double)(newest - out->highest_sent_ms) / (double)interval) : 0;
	return true;
}

void rw_emit_metrics(struct rw *rw, struct coll_sink *sink)
{
	for (size_t i = 0; rw && i < rw->nep; i++) {
		struct rw_stats s;
		rw_endpoint_stats(rw, i, &s);
		char extra[700], url[512], name[128];
		/* Label values escape backslash, quote and newline. */
		const char *src[2] = { rw->ep[i].cfg->url, rw->ep[i].cfg->name };
		char *dst[2] = { url, name };
		size_t cap[2] = { sizeof(url), sizeof(name) };
		for (int k = 0; k < 2; k++) {
			size_t o = 0;
			for (const char *p = src[k]; *p && o + 3 < cap[k]; p++) {
				if (*p == '\\' || *p == '"' || *p == '\n') {
					dst[k][o++] = '\\';
					dst[k][o++] = *p == '\n' ? 'n' : *p;
				} else {
					dst[k][o++] = *p;
				}
			}
			dst[k][o] = '\0';
		}
		snprintf(extra, sizeof(extra), "remote_name=\"%s\",url=\"%s\"", name, url);
		double lag = s.newest_ms > s.highest_sent_ms ?
			(double)(s.newest_ms - s.highest_sent_ms) / 1000 : 0;
		sink_emit(sink, M_RW_SAMPLES_PENDING, extra, (double)s.pending);
		sink_emit(sink, M_RW_SAMPLES_SENT, extra, (double)s.samples_sent);
		sink_emit(sink, M_RW_SAMPLES_FAILED, extra, (double)s.samples_failed);
		sink_emit(sink, M_RW_SAMPLES_DROPPED, extra, (double)s.samples_dropped);
		sink_emit(sink, M_RW_RETRIES, extra, (double)s.retries);
		sink_emit(sink, M_RW_REQUESTS, extra, (double)s.requests);
		sink_emit(sink, M_RW_BYTES_SENT, extra, (double)s.bytes_sent);
		sink_emit(sink, M_RW_HIGHEST_SENT, extra, (double)s.highest_sent_ms / 1000);
		sink_emit(sink, M_RW_LAG, extra, lag);
		sink_emit(sink, M_RW_SHARDS, extra, (double)s.shards);
		sink_emit(sink, M_RW_CPU_SECONDS, extra, (double)s.cpu_ns / 1e9);
	}
}
