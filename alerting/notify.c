/*
 * notify.c - the notifier's core: alerts in, Alertmanager's pipeline, a
 * persistent queue, delivery threads.
 *
 * The rules engine calls notify_sink after every evaluation; the sink only
 * copies the alerts into an inbox and wakes the dispatcher thread, so
 * evaluation never waits for the notifier. The dispatcher keeps alerts by
 * fingerprint, routes new ones through the route tree into aggregation
 * groups (route x group_by labels) and flushes each group on Alertmanager's
 * schedule: group_wait after it appears, then every group_interval. A flush
 * drops silenced and inhibited alerts, then asks the notification log of
 * each integration whether anything changed (new firing alerts, new
 * resolved ones when send_resolved, everything resolved) or repeat_interval
 * has passed (Alertmanager's DedupStage.needsUpdate); if so the group's
 * Alertmanager v4 data object goes into the queue. alertmanager_configs
 * integrations do not group: alerts go to them as Prometheus sends them
 * (at once, again every resend_delay, resolved ones for 15 minutes).
 *
 * The queue and the notification log live in the kv store (namespaces
 * notify_queue and notify_log), so a restart loses nothing that was
 * queued and does not notify again what was already sent. Each integration
 * has its own delivery thread with its own libcurl handle: it sends its
 * queue in order, honours the vendor's rate limit (token bucket), retries
 * timeouts, 5xx, 429 and the vendors' rate-limit codes with exponential
 * backoff and jitter (or the vendor's Retry-After), gives up at once on
 * other errors, and drops a notification older than max_age. Every outcome
 * is counted and the last NOTIFY_RECENT are kept for the API.
 *
 * Locks: inbox_lock guards the inbox only (the sink takes nothing else);
 * lock guards everything else. HTTP runs without either.
 */
#include "alerting/notify_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ABUCKETS 4096
#define GBUCKETS 1024
#define LBUCKETS 1024
#define INBOX_MAX 100000
#define LOG_RETENTION_MS (120LL * 3600 * 1000)
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000
#define MAX_ROUTES_PER_ALERT 64

const double notify_latency_le[NOTIFY_LATENCY_BUCKETS] = { 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
							   1, 2.5, 5, 10, 30, 60 };

enum { R_DELIVERED, R_RETRIED, R_FAILED, R_DROPPED, R__COUNT };
static const char *const result_names[R__COUNT] = { "delivered", "retried", "failed", "dropped" };

struct nalert {
	struct nalert *next;
	uint64_t fp;
	struct store_label *labels, *ann;
	size_t nlabels, nann;
	char *gen_url;
	int64_t starts_ms, ends_ms;
	uint32_t ngroups;
	uint32_t am_mask;                /* alertmanager slots it goes to */
	uint32_t am_sent_resolved;       /* slots it was last sent to as resolved */
	int64_t am_sent_ms[NOTIFY_MAX_AM];
};

struct ngroup {
	struct ngroup *next;
	const struct nroute *route;
	char *key;
	uint64_t hash;
	struct store_label *glabels;
	size_t nglabels;
	uint64_t *fps;
	size_t nfps, cap;
	int64_t next_flush_ms;
	bool flushed;
};

struct nlog {
	struct nlog *next;
	uint64_t hash;
	int64_t ts_ms;
	uint64_t *firing, *resolved;     /* sorted */
	size_t nf, nr;
};

struct njob {
	uint64_t id;
	int64_t created_ms, next_ms;
	uint32_t attempts, nalerts;
	char *group_key;
	char *data;
	size_t len;
};

struct nrecent {
	int64_t time_ms;
	size_t integ;
	int result;
	long status;
	uint32_t attempts, nalerts;
	double latency_s;
	char group_key[160];
	char answer[NOTIFY_ANSWER_MAX];
};

struct nworker {
	struct notifier *n;
	size_t idx;
	struct njob **q;
	size_t nq, cap;
	pthread_t thr;
	bool started, busy;
	pthread_cond_t cond;
	double tokens;
	int64_t tokens_ms;
	uint64_t counts[R__COUNT];
	char last_error[NOTIFY_ANSWER_MAX];
	int64_t last_ok_ms, last_err_ms;
	struct nhttp *http;
	struct log_limit ll;
};

struct notifier {
	const struct notify_config *cfg;
	struct notify_opts o;
	char external_url[512];
	pthread_mutex_t lock;
	pthread_mutex_t inbox_lock;
	pthread_cond_t inbox_cond;
	struct nalert **inbox;
	size_t ninbox, inbox_cap;
	uint64_t inbox_dropped;
	int64_t inbox_now_ms;
	struct nalert *abuckets[ABUCKETS];
	size_t nalerts;
	uint64_t alerts_refused;
	struct ngroup *gbuckets[GBUCKETS];
	size_t ngroups;
	struct nlog *lbuckets[LBUCKETS];
	struct nworker *workers;
	size_t nworkers;
	size_t queued;
	uint64_t next_id;
	struct nrecent recent[NOTIFY_RECENT];
	size_t recent_next, nrecent;
	uint64_t lat_counts[NOTIFY_LATENCY_BUCKETS + 1];
	double lat_sum;
	uint64_t lat_count;
	uint64_t rng;
	int stop;
	pthread_t dispatcher;
	bool dispatcher_started;
	int64_t next_am_ms, next_gc_ms;
	struct log_limit kv_ll;
};

/* ---- small helpers ---------------------------------------------------------------- */

static uint64_t rnd(struct notifier *n)
{
	/* xorshift64*: jitter only. */
	n->rng ^= n->rng >> 12;
	n->rng ^= n->rng << 25;
	n->rng ^= n->rng >> 27;
	return n->rng * 2685821657736338717ULL;
}

static uint64_t hash2(const char *a, const char *b)
{
	uint64_t h = hash_str(a);
	h = (h ^ '\n') * 1099511628211ULL;
	for (; *b; b++)
		h = (h ^ (unsigned char)*b) * 1099511628211ULL;
	return h;
}

static void labels_free(struct store_label *l, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)l[i].name);
		free((char *)l[i].value);
	}
	free(l);
}

static struct store_label *labels_dup(const struct store_label *l, size_t n)
{
	struct store_label *c = calloc(n ? n : 1, sizeof(*c));
	if (!c)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		c[i].name = strdup(l[i].name ? l[i].name : "");
		c[i].value = strdup(l[i].value ? l[i].value : "");
		if (!c[i].name || !c[i].value) {
			labels_free(c, i + 1);
			return NULL;
		}
	}
	return c;
}

static void alert_free(struct nalert *a)
{
	if (!a)
		return;
	labels_free(a->labels, a->nlabels);
	labels_free(a->ann, a->nann);
	free(a->gen_url);
	free(a);
}

static void job_free(struct njob *j)
{
	if (!j)
		return;
	free(j->group_key);
	free(j->data);
	free(j);
}

/* Writes text with every secret of the integration replaced. */
static void redact(const struct nintegration *in, const char *text, char *out, size_t size)
{
	snprintf(out, size, "%s", text ? text : "");
	for (size_t i = 0; in && i < in->nopts; i++) {
		const char *s = in->opts[i].value;
		if (!notify_config_secret_key(in->opts[i].key) || !s || strlen(s) < 6)
			continue;
		size_t sl = strlen(s);
		char *p;
		while ((p = strstr(out, s)) != NULL) {
			static const char mark[] = "<secret>";
			size_t tail = strlen(p + sl);
			if (sl >= sizeof(mark) - 1) {
				memcpy(p, mark, sizeof(mark) - 1);
				memmove(p + sizeof(mark) - 1, p + sl, tail + 1);
			} else {
				memmove(p, p + sl, tail + 1);
			}
		}
	}
}

/* ---- alerts --------------------------------------------------------------------- */

static struct nalert *alert_find(struct notifier *n, uint64_t fp)
{
	for (struct nalert *a = n->abuckets[fp % ABUCKETS]; a; a = a->next)
		if (a->fp == fp)
			return a;
	return NULL;
}

static void alert_remove(struct notifier *n, struct nalert *a)
{
	struct nalert **pp = &n->abuckets[a->fp % ABUCKETS];
	while (*pp && *pp != a)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = a->next;
		n->nalerts--;
	}
	alert_free(a);
}

/* ---- the notification log ----------------------------------------------------------- */

static struct nlog *nlog_find(struct notifier *n, uint64_t h)
{
	for (struct nlog *l = n->lbuckets[h % LBUCKETS]; l; l = l->next)
		if (l->hash == h)
			return l;
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static bool has_fp(const uint64_t *v, size_t n, uint64_t fp)
{
	return n && bsearch(&fp, v, n, sizeof(*v), cmp_u64) != NULL;
}

/* Every element of sub in set. */
static bool subset(const uint64_t *sub, size_t ns, const uint64_t *set, size_t n)
{
	for (size_t i = 0; i < ns; i++)
		if (!has_fp(set, n, sub[i]))
			return false;
	return true;
}

static void nlog_persist(struct notifier *n, const struct nlog *l)
{
	if (!n->o.kv)
		return;
	struct buf b;
	buf_init(&b, 4 << 20);
	buf_printf(&b, "%lld\nF", (long long)l->ts_ms);
	for (size_t i = 0; i < l->nf; i++)
		buf_printf(&b, " %016" PRIx64, l->firing[i]);
	buf_puts(&b, "\nR");
	for (size_t i = 0; i < l->nr; i++)
		buf_printf(&b, " %016" PRIx64, l->resolved[i]);
	char key[32];
	snprintf(key, sizeof(key), "%016" PRIx64, l->hash);
	int rc = b.overflow ? -E2BIG : kv_put(n->o.kv, "notify_log", key, b.data, b.len);
	if (rc < 0)
		log_limited(&n->kv_ll, LOG_WARN, "notify: writing the notification log to the "
			    "state database: %s", strerror(-rc));
	buf_fini(&b);
}

static void nlog_set(struct notifier *n, uint64_t h, int64_t now, const uint64_t *f, size_t nf,
		     const uint64_t *r, size_t nr)
{
	struct nlog *l = nlog_find(n, h);
	if (!l) {
		l = calloc(1, sizeof(*l));
		if (!l)
			return;
		l->hash = h;
		l->next = n->lbuckets[h % LBUCKETS];
		n->lbuckets[h % LBUCKETS] = l;
	}
	free(l->firing);
	free(l->resolved);
	l->firing = nf ? malloc(nf * sizeof(uint64_t)) : NULL;
	l->resolved = nr ? malloc(nr * sizeof(uint64_t)) : NULL;
	l->nf = l->firing ? nf : 0;
	l->nr = l->resolved ? nr : 0;
	if (l->nf)
		memcpy(l->firing, f, nf * sizeof(uint64_t));
	if (l->nr)
		memcpy(l->resolved, r, nr * sizeof(uint64_t));
	l->ts_ms = now;
	nlog_persist(n, l);
}

/* Alertmanager's DedupStage.needsUpdate. */
static bool needs_update(const struct nlog *e, const uint64_t *f, size_t nf, const uint64_t *r,
			 size_t nr, bool send_resolved, int64_t repeat_ms, int64_t now)
{
	if (!e)
		return nf > 0;
	if (!subset(f, nf, e->firing, e->nf))
		return true;
	if (nf == 0)
		return e->nf > 0;
	if (send_resolved && !subset(r, nr, e->resolved, e->nr))
		return true;
	return e->ts_ms < now - repeat_ms;
}

/* ---- the queue ------------------------------------------------------------------------- */

static void job_key(char *out, size_t size, uint64_t id)
{
	snprintf(out, size, "%020" PRIu64, id);
}

static void job_persist(struct notifier *n, const struct njob *j, const struct nintegration *in)
{
	if (!n->o.kv)
		return;
	struct buf b;
	buf_init(&b, j->len + 4096 + strlen(j->group_key) * 6);
	buf_puts(&b, "{\"integration\":");
	buf_put_json_str(&b, in->key);
	buf_printf(&b, ",\"created\":%lld,\"next\":%lld,\"attempts\":%u,\"alerts\":%u,\"group_key\":",
		   (long long)j->created_ms, (long long)j->next_ms, j->attempts, j->nalerts);
	buf_put_json_str(&b, j->group_key);
	buf_puts(&b, "}\n");
	buf_add(&b, j->data, j->len);
	char key[32];
	job_key(key, sizeof(key), j->id);
	int rc = b.overflow ? -E2BIG : kv_put(n->o.kv, "notify_queue", key, b.data, b.len);
	if (rc < 0)
		log_limited(&n->kv_ll, LOG_WARN, "notify: writing the queue to the state database: "
			    "%s (the notification is kept in memory)", strerror(-rc));
	else
		log_recovered(&n->kv_ll, "notify: writing to the state database");
	buf_fini(&b);
}

static void recent_add(struct notifier *n, size_t integ, const struct njob *j, int result,
		       long status, const char *answer, int64_t now)
{
	struct nrecent *r = &n->recent[n->recent_next];
	n->recent_next = (n->recent_next + 1) % NOTIFY_RECENT;
	if (n->nrecent < NOTIFY_RECENT)
		n->nrecent++;
	memset(r, 0, sizeof(*r));
	r->time_ms = now;
	r->integ = integ;
	r->result = result;
	r->status = status;
	r->attempts = j ? j->attempts : 0;
	r->nalerts = j ? j->nalerts : 0;
	r->latency_s = j ? (double)(now - j->created_ms) / 1000.0 : 0;
	snprintf(r->group_key, sizeof(r->group_key), "%s", j ? j->group_key : "");
	redact(&n->cfg->integ[integ], answer, r->answer, sizeof(r->answer));
}

/* Removes the head job of w (done with it). */
static void pop_head(struct notifier *n, struct nworker *w)
{
	struct njob *j = w->q[0];
	memmove(w->q, w->q + 1, (w->nq - 1) * sizeof(*w->q));
	w->nq--;
	n->queued--;
	if (n->o.kv) {
		char key[32];
		job_key(key, sizeof(key), j->id);
		kv_del(n->o.kv, "notify_queue", key);
	}
	job_free(j);
}

static int push_job(struct nworker *w, struct njob *j)
{
	if (w->nq == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		struct njob **q = realloc(w->q, cap * sizeof(*q));
		if (!q)
			return -ENOMEM;
		w->q = q;
		w->cap = cap;
	}
	w->q[w->nq++] = j;
	w->n->queued++;
	return 0;
}

static void enqueue(struct notifier *n, size_t integ, const char *group_key, struct buf *data,
		    uint32_t nalerts, int64_t now)
{
	struct nworker *w = &n->workers[integ];
	const struct nintegration *in = &n->cfg->integ[integ];
	if (n->queued >= NOTIFY_MAX_QUEUE || data->overflow) {
		w->counts[R_DROPPED]++;
		log_limited(&w->ll, LOG_WARN, "notify: %s: %s; notification dropped", in->key,
			    data->overflow ? "notification larger than 1 MiB" : "queue full");
		return;
	}
	struct njob *j = calloc(1, sizeof(*j));
	if (!j)
		return;
	j->id = n->next_id++;
	j->created_ms = j->next_ms = now;
	j->nalerts = nalerts;
	j->group_key = strdup(group_key);
	j->data = buf_steal(data, &j->len);
	if (!j->group_key || !j->data || push_job(w, j) < 0) {
		job_free(j);
		return;
	}
	job_persist(n, j, in);
	pthread_cond_signal(&w->cond);
}

/* ---- Alertmanager's JSON ------------------------------------------------------------ */

static void put_time(struct buf *b, int64_t ms)
{
	char t[64];
	alert_time_format(ms, t, sizeof(t));
	buf_put_json_str(b, t);
}

/* One alert of a v4 webhook message. */
static void put_alert_v4(struct buf *b, const struct nalert *a, bool resolved)
{
	buf_printf(b, "{\"status\":\"%s\",\"labels\":", resolved ? "resolved" : "firing");
	alert_labels_json(b, a->labels, a->nlabels);
	buf_puts(b, ",\"annotations\":");
	alert_labels_json(b, a->ann, a->nann);
	buf_puts(b, ",\"startsAt\":");
	put_time(b, a->starts_ms);
	buf_puts(b, ",\"endsAt\":");
	if (resolved)
		put_time(b, a->ends_ms);
	else
		buf_puts(b, "\"0001-01-01T00:00:00Z\"");
	buf_puts(b, ",\"generatorURL\":");
	buf_put_json_str(b, a->gen_url ? a->gen_url : "");
	buf_printf(b, ",\"fingerprint\":\"%016" PRIx64 "\"}", a->fp);
}

/* Labels (or annotations, ann) every alert has with the same value. */
static void put_common(struct buf *b, struct nalert *const *as, size_t n, bool ann)
{
	buf_putc(b, '{');
	bool first = true;
	if (n) {
		const struct store_label *l0 = ann ? as[0]->ann : as[0]->labels;
		size_t n0 = ann ? as[0]->nann : as[0]->nlabels;
		for (size_t i = 0; i < n0; i++) {
			bool all = true;
			for (size_t k = 1; k < n && all; k++) {
				const struct store_label *l = ann ? as[k]->ann : as[k]->labels;
				size_t nl = ann ? as[k]->nann : as[k]->nlabels;
				bool found = false;
				for (size_t m = 0; m < nl; m++)
					if (!strcmp(l[m].name, l0[i].name))
						found = !strcmp(l[m].value, l0[i].value);
				all = found;
			}
			if (!all)
				continue;
			if (!first)
				buf_putc(b, ',');
			first = false;
			buf_put_json_str(b, l0[i].name);
			buf_putc(b, ':');
			buf_put_json_str(b, l0[i].value);
		}
	}
	buf_putc(b, '}');
}

/* Writes the v4 object with the first cnt of the alerts; total - cnt are
 * counted in truncatedAlerts. */
static void put_v4(struct notifier *n, const struct ngroup *g, const char *receiver,
		   struct nalert *const *as, const bool *resolved, size_t cnt, size_t total,
		   bool any_firing, struct buf *b)
{
	buf_puts(b, "{\"version\":\"4\",\"groupKey\":");
	buf_put_json_str(b, g->key);
	buf_printf(b, ",\"truncatedAlerts\":%zu,\"status\":\"%s\",\"receiver\":", total - cnt,
		   any_firing ? "firing" : "resolved");
	buf_put_json_str(b, receiver);
	buf_puts(b, ",\"groupLabels\":");
	alert_labels_json(b, g->glabels, g->nglabels);
	buf_puts(b, ",\"commonLabels\":");
	put_common(b, as, cnt, false);
	buf_puts(b, ",\"commonAnnotations\":");
	put_common(b, as, cnt, true);
	buf_puts(b, ",\"externalURL\":");
	buf_put_json_str(b, n->external_url);
	buf_puts(b, ",\"alerts\":[");
	for (size_t i = 0; i < cnt; i++) {
		if (i)
			buf_putc(b, ',');
		put_alert_v4(b, as[i], resolved[i]);
	}
	buf_puts(b, "]}");
}

/*
 * The Alertmanager v4 data of a notification into b (empty on entry). A
 * group too big for one message (NOTIFY_MAX_PER_MSG alerts, or past the
 * 1 MiB body cap with its annotations) keeps its first alerts, firing ones
 * first, and says how many it left out in truncatedAlerts, as
 * Alertmanager's max_alerts does; the counts in the text stay right.
 */
static void build_v4(struct notifier *n, const struct ngroup *g, const char *receiver,
		     struct nalert *const *as, const bool *resolved, size_t cnt, struct buf *b)
{
	bool any_firing = false;
	for (size_t i = 0; i < cnt; i++)
		any_firing |= !resolved[i];
	size_t take = cnt < NOTIFY_MAX_PER_MSG ? cnt : NOTIFY_MAX_PER_MSG;
	for (;;) {
		buf_reset(b);
		put_v4(n, g, receiver, as, resolved, take, cnt, any_firing, b);
		if (!b->overflow || take <= 1)
			return;
		take /= 2;
	}
}

/* ---- groups ----------------------------------------------------------------------------- */

static struct ngroup *group_find(struct notifier *n, uint64_t h, const char *key)
{
	for (struct ngroup *g = n->gbuckets[h % GBUCKETS]; g; g = g->next)
		if (g->hash == h && !strcmp(g->key, key))
			return g;
	return NULL;
}

static void group_delete(struct notifier *n, struct ngroup *g)
{
	struct ngroup **pp = &n->gbuckets[g->hash % GBUCKETS];
	while (*pp && *pp != g)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = g->next;
		n->ngroups--;
	}
	free(g->key);
	labels_free(g->glabels, g->nglabels);
	free(g->fps);
	free(g);
}

static bool receiver_groups(const struct notify_config *c, size_t ri)
{
	for (size_t i = 0; i < c->recv[ri].ninteg; i++)
		if (c->integ[c->recv[ri].integ[i]].vendor != NV_ALERTMANAGER)
			return true;
	return false;
}

/* Adds a to the group of route r for its labels, making the group. */
static void group_add(struct notifier *n, const struct nroute *r, struct nalert *a, int64_t now)
{
	struct store_label gl[NOTIFY_MAX_GROUP_BY + 64];
	size_t ngl = 0;
	if (r->group_by_all) {
		for (size_t i = 0; i < a->nlabels && ngl < ARRAY_LEN(gl); i++)
			gl[ngl++] = a->labels[i];
	} else {
		for (size_t i = 0; i < r->ngroup_by; i++) {
			for (size_t k = 0; k < a->nlabels; k++) {
				if (!strcmp(a->labels[k].name, r->group_by[i]) &&
				    a->labels[k].value[0]) {
					gl[ngl++] = a->labels[k];
					break;
				}
			}
		}
	}
	/* Alertmanager prints the group labels sorted by name. */
	for (size_t i = 1; i < ngl; i++)
		for (size_t k = i; k > 0 && strcmp(gl[k - 1].name, gl[k].name) > 0; k--) {
			struct store_label t = gl[k];
			gl[k] = gl[k - 1];
			gl[k - 1] = t;
		}
	struct buf key;
	buf_init(&key, 64 << 10);
	buf_printf(&key, "%s:{", r->path);
	for (size_t i = 0; i < ngl; i++) {
		buf_printf(&key, "%s%s=", i ? ", " : "", gl[i].name);
		buf_put_json_str(&key, gl[i].value);
	}
	buf_putc(&key, '}');
	if (key.overflow || !key.data) {
		buf_fini(&key);
		return;
	}
	uint64_t h = hash_str(key.data);
	struct ngroup *g = group_find(n, h, key.data);
	if (!g) {
		if (n->ngroups >= NOTIFY_MAX_GROUPS) {
			log_limited(&n->kv_ll, LOG_WARN, "notify: more than %d alert groups; alert "
				    "not grouped (check group_by)", NOTIFY_MAX_GROUPS);
			buf_fini(&key);
			return;
		}
		g = calloc(1, sizeof(*g));
		if (!g) {
			buf_fini(&key);
			return;
		}
		g->route = r;
		g->key = buf_steal(&key, NULL);
		g->hash = h;
		g->glabels = labels_dup(gl, ngl);
		g->nglabels = g->glabels ? ngl : 0;
		g->next_flush_ms = now + r->group_wait_ms;
		g->next = n->gbuckets[h % GBUCKETS];
		n->gbuckets[h % GBUCKETS] = g;
		n->ngroups++;
	}
	buf_fini(&key);
	for (size_t i = 0; i < g->nfps; i++)
		if (g->fps[i] == a->fp)
			return;
	if (g->nfps == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 8;
		uint64_t *f = realloc(g->fps, cap * sizeof(*f));
		if (!f)
			return;
		g->fps = f;
		g->cap = cap;
	}
	g->fps[g->nfps++] = a->fp;
	a->ngroups++;
}

static void route_alert(struct notifier *n, struct nalert *a, int64_t now)
{
	const struct nroute *rs[MAX_ROUTES_PER_ALERT];
	size_t nr = nroute_match(n->cfg->root, a->labels, a->nlabels, rs, MAX_ROUTES_PER_ALERT);
	for (size_t i = 0; i < nr; i++) {
		const struct nreceiver *rc = &n->cfg->recv[rs[i]->receiver_idx];
		for (size_t k = 0; k < rc->ninteg; k++) {
			const struct nintegration *in = &n->cfg->integ[rc->integ[k]];
			if (in->vendor == NV_ALERTMANAGER && in->am_slot >= 0)
				a->am_mask |= 1u << in->am_slot;
		}
		if (receiver_groups(n->cfg, rs[i]->receiver_idx))
			group_add(n, rs[i], a, now);
	}
}

static bool muted(struct notifier *n, const struct nalert *a, int64_t now)
{
	if (n->o.silenced) {
		char id[64];
		if (n->o.silenced(n->o.silenced_arg, a->labels, a->nlabels, now, id, sizeof(id)))
			return true;
	}
	for (size_t r = 0; r < n->cfg->ninhibit; r++) {
		const struct ninhibit *ih = &n->cfg->inhibit[r];
		if (!nmatchers_match(&ih->target, a->labels, a->nlabels))
			continue;
		for (size_t b = 0; b < ABUCKETS; b++) {
			for (const struct nalert *s = n->abuckets[b]; s; s = s->next) {
				if (s == a || s->ends_ms <= now ||
				    !nmatchers_match(&ih->source, s->labels, s->nlabels))
					continue;
				bool eq = true;
				for (size_t e = 0; e < ih->nequal && eq; e++)
					eq = !strcmp(nlabel_get(a->labels, a->nlabels, ih->equal[e]),
						     nlabel_get(s->labels, s->nlabels, ih->equal[e]));
				if (eq)
					return true;
			}
		}
	}
	return false;
}

/* Flushes a group; returns jobs queued. May delete g. */
static size_t group_flush(struct notifier *n, struct ngroup *g, int64_t now)
{
	size_t cnt = g->nfps, jobs = 0;
	struct nalert **as = calloc(cnt ? cnt : 1, sizeof(*as));
	bool *res = calloc(cnt ? cnt : 1, sizeof(*res));
	uint64_t *f = calloc(cnt ? cnt : 1, sizeof(*f)), *r = calloc(cnt ? cnt : 1, sizeof(*r));
	struct nalert **send = calloc(cnt ? cnt : 1, sizeof(*send));
	bool *sres = calloc(cnt ? cnt : 1, sizeof(*sres));
	if (!as || !res || !f || !r || !send || !sres)
		goto out;
	size_t na = 0, nf = 0, nr = 0;
	for (size_t i = 0; i < g->nfps; i++) {
		struct nalert *a = alert_find(n, g->fps[i]);
		if (!a)
			continue;
		bool resolved = a->ends_ms <= now;
		if (muted(n, a, now))
			continue;
		as[na] = a;
		res[na++] = resolved;
		if (resolved)
			r[nr++] = a->fp;
		else
			f[nf++] = a->fp;
	}
	qsort(f, nf, sizeof(*f), cmp_u64);
	qsort(r, nr, sizeof(*r), cmp_u64);
	const struct nreceiver *rc = &n->cfg->recv[g->route->receiver_idx];
	for (size_t k = 0; k < rc->ninteg; k++) {
		size_t ii = rc->integ[k];
		const struct nintegration *in = &n->cfg->integ[ii];
		if (in->vendor == NV_ALERTMANAGER)
			continue;
		uint64_t lh = hash2(in->key, g->key);
		const struct nlog *e = nlog_find(n, lh);
		if (!needs_update(e, f, nf, r, nr, in->send_resolved, g->route->repeat_interval_ms,
				  now))
			continue;
		size_t ns = 0;
		for (int pass = 0; pass < 2; pass++) { /* firing first */
			for (size_t i = 0; i < na; i++) {
				if (res[i] != (pass == 1) || (res[i] && !in->send_resolved))
					continue;
				send[ns] = as[i];
				sres[ns++] = res[i];
			}
		}
		if (ns) {
			struct buf b;
			buf_init(&b, NOTIFY_BODY_MAX);
			build_v4(n, g, rc->name, send, sres, ns, &b);
			enqueue(n, ii, g->key, &b, (uint32_t)ns, now);
			buf_fini(&b);
			jobs++;
		}
		nlog_set(n, lh, now, f, nf, r, nr);
	}
	/* Resolved alerts leave the group once flushed. */
	size_t keep = 0;
	for (size_t i = 0; i < g->nfps; i++) {
		struct nalert *a = alert_find(n, g->fps[i]);
		if (a && a->ends_ms <= now) {
			a->ngroups--;
			continue;
		}
		if (a)
			g->fps[keep++] = g->fps[i];
	}
	g->nfps = keep;
	g->flushed = true;
	g->next_flush_ms = now + g->route->group_interval_ms;
	if (g->nfps == 0)
		group_delete(n, g);
out:
	free(as);
	free(res);
	free(f);
	free(r);
	free(send);
	free(sres);
	return jobs;
}

/* ---- alertmanager_configs: Prometheus' sending schedule ---------------------------------- */

static size_t am_forward(struct notifier *n, int64_t now)
{
	size_t jobs = 0;
	for (size_t ii = 0; ii < n->cfg->ninteg; ii++) {
		const struct nintegration *in = &n->cfg->integ[ii];
		if (in->vendor != NV_ALERTMANAGER || in->am_slot < 0)
			continue;
		int s = in->am_slot;
		struct buf b;
		buf_init(&b, NOTIFY_BODY_MAX);
		size_t batch = 0;
		for (size_t k = 0; k < ABUCKETS; k++) {
			for (struct nalert *a = n->abuckets[k]; a; a = a->next) {
				if (!(a->am_mask & (1u << s)))
					continue;
				bool resolved = a->ends_ms <= now;
				bool sent_res = a->am_sent_resolved & (1u << s);
				int64_t last = a->am_sent_ms[s];
				bool due;
				if (resolved)
					due = (!sent_res || now - last >= in->resend_delay_ms) &&
					      now - a->ends_ms < NOTIFY_AM_RESOLVED_RESEND_MS;
				else
					due = !last || sent_res || now - last >= in->resend_delay_ms;
				if (!due)
					continue;
				if (n->o.silenced) {
					char id[64];
					if (n->o.silenced(n->o.silenced_arg, a->labels, a->nlabels,
							  now, id, sizeof(id)))
						continue;
				}
				if (batch == NOTIFY_AM_BATCH) {
					buf_putc(&b, ']');
					enqueue(n, ii, "", &b, (uint32_t)batch, now);
					buf_reset(&b);
					jobs++;
					batch = 0;
				}
				buf_putc(&b, batch ? ',' : '[');
				buf_puts(&b, "{\"labels\":");
				alert_labels_json(&b, a->labels, a->nlabels);
				buf_puts(&b, ",\"annotations\":");
				alert_labels_json(&b, a->ann, a->nann);
				buf_puts(&b, ",\"startsAt\":");
				put_time(&b, a->starts_ms);
				buf_puts(&b, ",\"endsAt\":");
				put_time(&b, a->ends_ms);
				buf_puts(&b, ",\"generatorURL\":");
				buf_put_json_str(&b, a->gen_url ? a->gen_url : "");
				buf_putc(&b, '}');
				batch++;
				a->am_sent_ms[s] = now;
				if (resolved)
					a->am_sent_resolved |= 1u << s;
				else
					a->am_sent_resolved &= ~(1u << s);
			}
		}
		if (batch) {
			buf_putc(&b, ']');
			enqueue(n, ii, "", &b, (uint32_t)batch, now);
			jobs++;
		}
		buf_fini(&b);
	}
	return jobs;
}

/* ---- the dispatcher ------------------------------------------------------------------------ */

static void ingest(struct notifier *n, struct nalert *in, int64_t now)
{
	struct nalert *a = alert_find(n, in->fp);
	bool route = false;
	if (!a) {
		if (n->nalerts >= NOTIFY_MAX_ALERTS) {
			n->alerts_refused++;
			log_limited(&n->kv_ll, LOG_WARN, "notify: more than %d alerts held; new "
				    "alerts are not notified", NOTIFY_MAX_ALERTS);
			alert_free(in);
			return;
		}
		in->next = n->abuckets[in->fp % ABUCKETS];
		n->abuckets[in->fp % ABUCKETS] = in;
		n->nalerts++;
		route_alert(n, in, now);
		return;
	}
	bool was_resolved = a->ends_ms <= now;
	/* Keep the alert's place (groups hold fingerprints); take the news. */
	labels_free(a->ann, a->nann);
	a->ann = in->ann;
	a->nann = in->nann;
	in->ann = NULL;
	in->nann = 0;
	free(a->gen_url);
	a->gen_url = in->gen_url;
	in->gen_url = NULL;
	if (in->starts_ms != a->starts_ms && in->ends_ms > now)
		was_resolved = true; /* a new firing episode */
	a->starts_ms = in->starts_ms;
	a->ends_ms = in->ends_ms;
	if (a->ends_ms > now && (was_resolved || a->ngroups == 0))
		route = true;
	alert_free(in);
	if (route)
		route_alert(n, a, now);
}

static void gc(struct notifier *n, int64_t now)
{
	/* Log entries past Alertmanager's retention (120 h) go. */
	for (size_t k = 0; k < LBUCKETS; k++) {
		struct nlog **pp = &n->lbuckets[k];
		while (*pp) {
			struct nlog *l = *pp;
			if (l->ts_ms >= now - LOG_RETENTION_MS) {
				pp = &l->next;
				continue;
			}
			*pp = l->next;
			if (n->o.kv) {
				char key[32];
				snprintf(key, sizeof(key), "%016" PRIx64, l->hash);
				kv_del(n->o.kv, "notify_log", key);
			}
			free(l->firing);
			free(l->resolved);
			free(l);
		}
	}
	for (size_t k = 0; k < ABUCKETS; k++) {
		struct nalert *a = n->abuckets[k];
		while (a) {
			struct nalert *next = a->next;
			if (a->ngroups == 0 && a->ends_ms <= now &&
			    (!a->am_mask || now - a->ends_ms >= NOTIFY_AM_RESOLVED_RESEND_MS))
				alert_remove(n, a);
			a = next;
		}
	}
}

/* One round at now: inbox, due groups, Alertmanager sends, cleanup.
 * Called with lock held. Returns jobs queued. */
static size_t tick_locked(struct notifier *n, int64_t now)
{
	pthread_mutex_lock(&n->inbox_lock);
	struct nalert **box = n->inbox;
	size_t nbox = n->ninbox;
	n->inbox = NULL;
	n->ninbox = n->inbox_cap = 0;
	pthread_mutex_unlock(&n->inbox_lock);
	for (size_t i = 0; i < nbox; i++)
		ingest(n, box[i], now);
	free(box);
	size_t jobs = 0;
	if (n->cfg->root) {
		for (size_t k = 0; k < GBUCKETS; k++) {
			struct ngroup *g = n->gbuckets[k];
			while (g) {
				struct ngroup *next = g->next;
				if (g->next_flush_ms <= now) {
					size_t made = group_flush(n, g, now);
					if (made) {
						/* Let the delivery threads take what is
						 * queued while the other groups flush:
						 * only this thread touches groups. */
						pthread_mutex_unlock(&n->lock);
						sched_yield();
						pthread_mutex_lock(&n->lock);
					}
					jobs += made;
				}
				g = next;
			}
		}
	}
	if (n->cfg->nam && (nbox || now >= n->next_am_ms)) {
		jobs += am_forward(n, now);
		n->next_am_ms = now + 1000;
	}
	if (now >= n->next_gc_ms) {
		gc(n, now);
		n->next_gc_ms = now + 10000;
	}
	return jobs;
}

static int64_t next_due(struct notifier *n, int64_t now)
{
	int64_t due = now + 10000;
	for (size_t k = 0; k < GBUCKETS; k++)
		for (struct ngroup *g = n->gbuckets[k]; g; g = g->next)
			if (g->next_flush_ms < due)
				due = g->next_flush_ms;
	if (n->cfg->nam && n->next_am_ms < due)
		due = n->next_am_ms;
	if (n->next_gc_ms < due)
		due = n->next_gc_ms;
	return due;
}

static void abs_deadline(struct timespec *ts, int64_t wall_ms)
{
	ts->tv_sec = (time_t)(wall_ms / 1000);
	ts->tv_nsec = (long)(wall_ms % 1000) * 1000000;
}

static void *dispatcher_main(void *arg)
{
	struct notifier *n = arg;
	for (;;) {
		pthread_mutex_lock(&n->lock);
		int64_t now = now_ms();
		tick_locked(n, now);
		int64_t due = next_due(n, now_ms());
		pthread_mutex_unlock(&n->lock);
		pthread_mutex_lock(&n->inbox_lock);
		while (!n->ninbox && !__atomic_load_n(&n->stop, __ATOMIC_RELAXED) && now_ms() < due) {
			struct timespec ts;
			abs_deadline(&ts, due);
			pthread_cond_timedwait(&n->inbox_cond, &n->inbox_lock, &ts);
		}
		bool stop = __atomic_load_n(&n->stop, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&n->inbox_lock);
		if (stop)
			return NULL;
	}
}

/* ---- delivery -------------------------------------------------------------------------------- */

static int64_t backoff_ms(struct notifier *n, uint32_t attempts)
{
	int64_t d = BACKOFF_MIN_MS;
	for (uint32_t i = 1; i < attempts && d < BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > BACKOFF_MAX_MS)
		d = BACKOFF_MAX_MS;
	/* Full jitter between half and one and a half times the step. */
	double j = 0.5 + (double)(rnd(n) >> 11) / (double)(1ULL << 53);
	return (int64_t)((double)d * j);
}

static void observe_latency(struct notifier *n, double s)
{
	for (size_t i = 0; i < NOTIFY_LATENCY_BUCKETS; i++)
		if (s <= notify_latency_le[i])
			n->lat_counts[i]++;
	n->lat_counts[NOTIFY_LATENCY_BUCKETS]++;
	n->lat_sum += s;
	n->lat_count++;
}

/* Builds and sends one job; no lock held. Fills status and why. */
static enum nresult send_job(struct notifier *n, const struct nintegration *in,
			     struct nhttp *http, const char *data, size_t len, int64_t *retry_ms,
			     long *status, char *why, size_t whysize)
{
	struct json_doc doc;
	*retry_ms = -1;
	*status = 0;
	if (json_parse(&doc, data, len, NULL) < 0) {
		snprintf(why, whysize, "queued notification is not JSON");
		return NR_FAILED;
	}
	struct nreq req;
	nreq_init(&req);
	enum nresult r;
	if (nvendors[in->vendor].build(n->cfg, in, doc.root, now_ms(), &req, why, whysize) < 0) {
		r = NR_FAILED;
	} else {
		struct nanswer a;
		nhttp_post(http, &req, in->timeout_ms, &n->stop, &a);
		*status = a.status;
		r = nvendors[in->vendor].classify(&a, retry_ms, why, whysize);
		if (r == NR_RETRY && *retry_ms < 0 && a.retry_after_ms >= 0)
			*retry_ms = a.retry_after_ms;
	}
	nreq_fini(&req);
	json_doc_free(&doc);
	return r;
}

/*
 * One attempt at the head job of w if it is due at now; called with lock
 * held, releases it around the HTTP request. Returns 1 when an attempt was
 * made (or the job dropped), 0 when nothing was due, and sets *wait_until
 * to when something will be.
 */
static int attempt(struct notifier *n, struct nworker *w, int64_t now, int64_t *wait_until)
{
	*wait_until = INT64_MAX;
	if (!w->nq)
		return 0;
	struct njob *j = w->q[0];
	const struct nintegration *in = &n->cfg->integ[w->idx];
	if (now - j->created_ms > in->max_age_ms) {
		w->counts[R_DROPPED]++;
		char why[160];
		snprintf(why, sizeof(why), "dropped: older than max_age (%llds) after %u attempts",
			 (long long)(in->max_age_ms / 1000), j->attempts);
		log_warn("notify: %s: %s", in->key, why);
		recent_add(n, w->idx, j, R_DROPPED, 0, why, now);
		snprintf(w->last_error, sizeof(w->last_error), "%s", why);
		pop_head(n, w);
		return 1;
	}
	if (j->next_ms > now) {
		*wait_until = j->next_ms;
		return 0;
	}
	if (in->rate_per_s > 0) {
		if (now > w->tokens_ms) {
			w->tokens += (double)(now - w->tokens_ms) / 1000.0 * in->rate_per_s;
			if (w->tokens > in->burst)
				w->tokens = in->burst;
			w->tokens_ms = now;
		}
		if (w->tokens < 1) {
			*wait_until = now + (int64_t)((1 - w->tokens) / in->rate_per_s * 1000) + 1;
			return 0;
		}
		w->tokens -= 1;
	}
	j->attempts++;
	w->busy = true;
	char *data = j->data;
	size_t len = j->len;
	pthread_mutex_unlock(&n->lock);
	char why[NOTIFY_ANSWER_MAX];
	int64_t retry_ms;
	long status;
	enum nresult r = send_job(n, in, w->http, data, len, &retry_ms, &status, why, sizeof(why));
	pthread_mutex_lock(&n->lock);
	w->busy = false;
	if (__atomic_load_n(&n->stop, __ATOMIC_RELAXED) && r == NR_RETRY)
		return 1; /* stays queued for the next start */
	int64_t done = now_ms();
	char clean[NOTIFY_ANSWER_MAX];
	redact(in, why, clean, sizeof(clean));
	if (r == NR_DELIVERED) {
		w->counts[R_DELIVERED]++;
		w->last_ok_ms = done;
		observe_latency(n, (double)(done - j->created_ms) / 1000.0);
		recent_add(n, w->idx, j, R_DELIVERED, status, clean, done);
		log_recovered(&w->ll, in->key);
		log_debug("notify: %s: delivered (%s)", in->key, clean);
		pop_head(n, w);
	} else if (r == NR_FAILED) {
		w->counts[R_FAILED]++;
		w->last_err_ms = done;
		snprintf(w->last_error, sizeof(w->last_error), "%s", clean);
		log_warn("notify: %s: %s; not retried", in->key, clean);
		recent_add(n, w->idx, j, R_FAILED, status, clean, done);
		pop_head(n, w);
	} else {
		w->counts[R_RETRIED]++;
		w->last_err_ms = done;
		snprintf(w->last_error, sizeof(w->last_error), "%s", clean);
		int64_t delay = retry_ms >= 0 ? retry_ms : backoff_ms(n, j->attempts);
		if (delay > in->max_age_ms)
			delay = in->max_age_ms;
		j->next_ms = done + delay;
		log_limited(&w->ll, LOG_WARN, "notify: %s: %s; retrying in %.1fs", in->key, clean,
			    (double)delay / 1000.0);
		recent_add(n, w->idx, j, R_RETRIED, status, clean, done);
		job_persist(n, j, in);
	}
	return 1;
}

static void *worker_main(void *arg)
{
	struct nworker *w = arg;
	struct notifier *n = w->n;
	pthread_mutex_lock(&n->lock);
	while (!__atomic_load_n(&n->stop, __ATOMIC_RELAXED)) {
		int64_t until;
		if (attempt(n, w, now_ms(), &until))
			continue;
		if (until == INT64_MAX) {
			pthread_cond_wait(&w->cond, &n->lock);
		} else {
			struct timespec ts;
			abs_deadline(&ts, until);
			pthread_cond_timedwait(&w->cond, &n->lock, &ts);
		}
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

/* ---- loading the queue and the log ---------------------------------------------------------- */

struct load_ctx {
	struct notifier *n;
	char (*drop)[32];
	size_t ndrop, dropcap;
	size_t loaded;
};

static int load_job(void *arg, const char *key, const void *val, size_t len)
{
	struct load_ctx *x = arg;
	struct notifier *n = x->n;
	const char *v = val;
	const char *nl = memchr(v, '\n', len);
	struct json_doc doc;
	size_t ii = SIZE_MAX;
	bool ok = nl && json_parse(&doc, v, (size_t)(nl - v), NULL) == 0;
	if (ok) {
		const char *ik = json_get_str(doc.root, "integration");
		for (size_t i = 0; ik && i < n->cfg->ninteg; i++)
			if (!strcmp(n->cfg->integ[i].key, ik))
				ii = i;
		struct njob *j = ii != SIZE_MAX ? calloc(1, sizeof(*j)) : NULL;
		if (j) {
			const struct json *c = json_get(doc.root, "created");
			const struct json *nx = json_get(doc.root, "next");
			const struct json *at = json_get(doc.root, "attempts");
			const struct json *na = json_get(doc.root, "alerts");
			const char *gk = json_get_str(doc.root, "group_key");
			j->id = strtoull(key, NULL, 10);
			j->created_ms = c ? (int64_t)c->number : now_ms();
			j->next_ms = nx ? (int64_t)nx->number : 0;
			j->attempts = at ? (uint32_t)at->number : 0;
			j->nalerts = na ? (uint32_t)na->number : 0;
			j->group_key = strdup(gk ? gk : "");
			j->len = len - (size_t)(nl + 1 - v);
			j->data = malloc(j->len + 1);
			if (j->data) {
				memcpy(j->data, nl + 1, j->len);
				j->data[j->len] = '\0';
			}
			if (!j->group_key || !j->data || push_job(&n->workers[ii], j) < 0) {
				job_free(j);
			} else {
				if (j->id >= n->next_id)
					n->next_id = j->id + 1;
				x->loaded++;
			}
		} else if (ii == SIZE_MAX) {
			log_warn("notify: queued notification %s for %s: no such integration in the "
				 "config any more; dropped", key, ik ? ik : "?");
		}
		json_doc_free(&doc);
	}
	if (ii == SIZE_MAX) {
		if (x->ndrop == x->dropcap) {
			size_t cap = x->dropcap ? x->dropcap * 2 : 16;
			char(*d)[32] = realloc(x->drop, cap * sizeof(*d));
			if (!d)
				return 0;
			x->drop = d;
			x->dropcap = cap;
		}
		snprintf(x->drop[x->ndrop++], 32, "%s", key);
	}
	return 0;
}

static int load_log(void *arg, const char *key, const void *val, size_t len)
{
	struct load_ctx *x = arg;
	struct notifier *n = x->n;
	char *t = strndup(val, len);
	if (!t)
		return 0;
	char *save = NULL, *line = strtok_r(t, "\n", &save);
	int64_t ts = line ? strtoll(line, NULL, 10) : 0;
	uint64_t f[4096], r[4096];
	size_t nf = 0, nr = 0;
	for (line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		bool fir = line[0] == 'F';
		char *s2 = NULL;
		for (char *tok = strtok_r(line + 1, " ", &s2); tok; tok = strtok_r(NULL, " ", &s2)) {
			uint64_t fp = strtoull(tok, NULL, 16);
			if (fir && nf < ARRAY_LEN(f))
				f[nf++] = fp;
			else if (!fir && nr < ARRAY_LEN(r))
				r[nr++] = fp;
		}
	}
	free(t);
	struct nlog *l = calloc(1, sizeof(*l));
	if (!l)
		return 0;
	l->hash = strtoull(key, NULL, 16);
	l->ts_ms = ts;
	l->firing = nf ? malloc(nf * sizeof(uint64_t)) : NULL;
	l->resolved = nr ? malloc(nr * sizeof(uint64_t)) : NULL;
	l->nf = l->firing ? nf : 0;
	l->nr = l->resolved ? nr : 0;
	/* qsort and memcpy take no NULL, even for nothing (UBSan). */
	if (l->nf) {
		memcpy(l->firing, f, nf * sizeof(uint64_t));
		qsort(l->firing, l->nf, sizeof(uint64_t), cmp_u64);
	}
	if (l->nr) {
		memcpy(l->resolved, r, nr * sizeof(uint64_t));
		qsort(l->resolved, l->nr, sizeof(uint64_t), cmp_u64);
	}
	l->next = n->lbuckets[l->hash % LBUCKETS];
	n->lbuckets[l->hash % LBUCKETS] = l;
	return 0;
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

int notify_new(struct notifier **out, const struct notify_config *cfg, const struct notify_opts *o)
{
	static const struct notify_config empty;
	struct notifier *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->cfg = cfg ? cfg : &empty;
	n->o = *o;
	snprintf(n->external_url, sizeof(n->external_url), "%s",
		 o->external_url ? o->external_url : "");
	n->rng = o->seed ? o->seed : ((uint64_t)mono_ns() ^ 0x9e3779b97f4a7c15ULL) | 1;
	pthread_mutex_init(&n->lock, NULL);
	pthread_mutex_init(&n->inbox_lock, NULL);
	pthread_cond_init(&n->inbox_cond, NULL);
	n->nworkers = n->cfg->ninteg;
	n->workers = calloc(n->nworkers ? n->nworkers : 1, sizeof(*n->workers));
	if (!n->workers) {
		notify_free(n);
		return -ENOMEM;
	}
	int64_t now = now_ms();
	for (size_t i = 0; i < n->nworkers; i++) {
		struct nworker *w = &n->workers[i];
		w->n = n;
		w->idx = i;
		w->tokens = n->cfg->integ[i].burst;
		w->tokens_ms = now;
		pthread_cond_init(&w->cond, NULL);
		w->http = nhttp_new();
		if (!w->http) {
			notify_free(n);
			return -ENOMEM;
		}
	}
	n->next_id = 1;
	if (o->kv) {
		struct load_ctx x = { .n = n };
		kv_each(o->kv, "notify_queue", NULL, 0, load_job, &x);
		for (size_t i = 0; i < x.ndrop; i++)
			kv_del(o->kv, "notify_queue", x.drop[i]);
		free(x.drop);
		kv_each(o->kv, "notify_log", NULL, 0, load_log, &x);
		if (x.loaded)
			log_info("notify: %zu queued notifications from before the restart",
				 x.loaded);
	}
	if (!o->no_threads) {
		for (size_t i = 0; i < n->nworkers; i++) {
			if (pthread_create(&n->workers[i].thr, NULL, worker_main, &n->workers[i]) != 0)
				break;
			n->workers[i].started = true;
		}
		if (pthread_create(&n->dispatcher, NULL, dispatcher_main, n) == 0)
			n->dispatcher_started = true;
	}
	*out = n;
	return 0;
}

void notify_free(struct notifier *n)
{
	if (!n)
		return;
	__atomic_store_n(&n->stop, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&n->inbox_lock);
	pthread_cond_broadcast(&n->inbox_cond);
	pthread_mutex_unlock(&n->inbox_lock);
	if (n->dispatcher_started)
		pthread_join(n->dispatcher, NULL);
	pthread_mutex_lock(&n->lock);
	for (size_t i = 0; n->workers && i < n->nworkers; i++)
		pthread_cond_broadcast(&n->workers[i].cond);
	pthread_mutex_unlock(&n->lock);
	for (size_t i = 0; n->workers && i < n->nworkers; i++) {
		struct nworker *w = &n->workers[i];
		if (w->started)
			pthread_join(w->thr, NULL);
		for (size_t k = 0; k < w->nq; k++)
			job_free(w->q[k]);
		free(w->q);
		nhttp_free(w->http);
		pthread_cond_destroy(&w->cond);
	}
	free(n->workers);
	for (size_t i = 0; i < n->ninbox; i++)
		alert_free(n->inbox[i]);
	free(n->inbox);
	for (size_t k = 0; k < ABUCKETS; k++)
		for (struct nalert *a = n->abuckets[k], *nx; a; a = nx) {
			nx = a->next;
			alert_free(a);
		}
	for (size_t k = 0; k < GBUCKETS; k++)
		for (struct ngroup *g = n->gbuckets[k], *nx; g; g = nx) {
			nx = g->next;
			free(g->key);
			labels_free(g->glabels, g->nglabels);
			free(g->fps);
			free(g);
		}
	for (size_t k = 0; k < LBUCKETS; k++)
		for (struct nlog *l = n->lbuckets[k], *nx; l; l = nx) {
			nx = l->next;
			free(l->firing);
			free(l->resolved);
			free(l);
		}
	pthread_mutex_destroy(&n->lock);
	pthread_mutex_destroy(&n->inbox_lock);
	pthread_cond_destroy(&n->inbox_cond);
	free(n);
}

void notify_sink(void *arg, const struct alert_msg *alerts, size_t cnt, int64_t now)
{
	struct notifier *n = arg;
	if (!n || !cnt)
		return;
	struct nalert **batch = calloc(cnt, sizeof(*batch));
	if (!batch)
		return;
	size_t nb = 0;
	for (size_t i = 0; i < cnt; i++) {
		const struct alert_msg *m = &alerts[i];
		struct nalert *a = calloc(1, sizeof(*a));
		if (!a)
			break;
		a->labels = labels_dup(m->labels, m->nlabels);
		a->nlabels = m->nlabels;
		a->ann = labels_dup(m->annotations, m->nannotations);
		a->nann = m->nannotations;
		a->gen_url = m->generator_url ? strdup(m->generator_url) : NULL;
		if (!a->labels || !a->ann) {
			alert_free(a);
			continue;
		}
		a->fp = nlabels_fingerprint(m->labels, m->nlabels);
		a->starts_ms = m->starts_at_ms;
		a->ends_ms = m->ends_at_ms;
		batch[nb++] = a;
	}
	pthread_mutex_lock(&n->inbox_lock);
	if (n->ninbox + nb > INBOX_MAX) {
		n->inbox_dropped += nb;
		pthread_mutex_unlock(&n->inbox_lock);
		for (size_t i = 0; i < nb; i++)
			alert_free(batch[i]);
		free(batch);
		return;
	}
	if (n->ninbox + nb > n->inbox_cap) {
		size_t cap = n->inbox_cap ? n->inbox_cap : 64;
		while (cap < n->ninbox + nb)
			cap *= 2;
		struct nalert **box = realloc(n->inbox, cap * sizeof(*box));
		if (!box) {
			pthread_mutex_unlock(&n->inbox_lock);
			for (size_t i = 0; i < nb; i++)
				alert_free(batch[i]);
			free(batch);
			return;
		}
		n->inbox = box;
		n->inbox_cap = cap;
	}
	memcpy(n->inbox + n->ninbox, batch, nb * sizeof(*batch));
	n->ninbox += nb;
	n->inbox_now_ms = now;
	pthread_cond_signal(&n->inbox_cond);
	pthread_mutex_unlock(&n->inbox_lock);
	free(batch);
}

size_t notify_tick(struct notifier *n, int64_t now)
{
	pthread_mutex_lock(&n->lock);
	size_t jobs = tick_locked(n, now);
	pthread_mutex_unlock(&n->lock);
	return jobs;
}

size_t notify_deliver(struct notifier *n, int64_t now)
{
	size_t made = 0;
	pthread_mutex_lock(&n->lock);
	for (size_t i = 0; i < n->nworkers; i++) {
		int64_t until;
		made += (size_t)attempt(n, &n->workers[i], now, &until);
	}
	pthread_mutex_unlock(&n->lock);
	return made;
}

/* ---- observability ---------------------------------------------------------------------------- */

void notify_get_stats(struct notifier *n, struct notify_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	out->queued = n->queued;
	memcpy(out->latency_counts, n->lat_counts, sizeof(out->latency_counts));
	out->latency_sum_s = n->lat_sum;
	out->latency_count = n->lat_count;
	pthread_mutex_unlock(&n->lock);
}

void notify_each_count(struct notifier *n, notify_count_fn fn, void *arg)
{
	if (!n)
		return;
	const struct notify_config *c = n->cfg;
	pthread_mutex_lock(&n->lock);
	for (size_t r = 0; r < c->nrecv; r++) {
		uint64_t sum[R__COUNT] = { 0 };
		for (size_t k = 0; k < c->recv[r].ninteg; k++)
			for (int i = 0; i < R__COUNT; i++)
				sum[i] += n->workers[c->recv[r].integ[k]].counts[i];
		for (int i = 0; i < R__COUNT; i++)
			fn(arg, c->recv[r].name, result_names[i], sum[i]);
	}
	pthread_mutex_unlock(&n->lock);
}

static void put_ms(struct buf *b, const char *key, int64_t ms)
{
	buf_printf(b, ",\"%s\":", key);
	if (ms > 0)
		put_time(b, ms);
	else
		buf_puts(b, "null");
}

void notify_api_json(struct notifier *n, size_t limit, struct buf *b)
{
	const struct notify_config *c = n->cfg;
	pthread_mutex_lock(&n->lock);
	buf_printf(b, "{\"queued\":%zu,\"alerts\":%zu,\"groups\":%zu,\"receivers\":[", n->queued,
		   n->nalerts, n->ngroups);
	for (size_t r = 0; r < c->nrecv; r++) {
		if (r)
			buf_putc(b, ',');
		buf_puts(b, "{\"name\":");
		buf_put_json_str(b, c->recv[r].name);
		buf_puts(b, ",\"integrations\":[");
		for (size_t k = 0; k < c->recv[r].ninteg; k++) {
			size_t ii = c->recv[r].integ[k];
			const struct nintegration *in = &c->integ[ii];
			const struct nworker *w = &n->workers[ii];
			if (k)
				buf_putc(b, ',');
			/* Never the url, secret or token: only what is safe to show. */
			buf_printf(b, "{\"name\":\"%s\",\"index\":%d,\"send_resolved\":%s,"
				   "\"queued\":%zu,\"sending\":%s", nvendor_name(in->vendor),
				   in->index, in->send_resolved ? "true" : "false", w->nq,
				   w->busy ? "true" : "false");
			for (int i = 0; i < R__COUNT; i++)
				buf_printf(b, ",\"%s\":%" PRIu64, result_names[i], w->counts[i]);
			put_ms(b, "last_success", w->last_ok_ms);
			put_ms(b, "last_error_time", w->last_err_ms);
			buf_puts(b, ",\"last_error\":");
			buf_put_json_str(b, w->last_error);
			buf_putc(b, '}');
		}
		buf_puts(b, "]}");
	}
	buf_puts(b, "],\"queue\":[");
	size_t shown = 0;
	for (size_t i = 0; i < n->nworkers; i++) {
		const struct nworker *w = &n->workers[i];
		for (size_t k = 0; k < w->nq && shown < limit; k++, shown++) {
			const struct njob *j = w->q[k];
			if (shown)
				buf_putc(b, ',');
			buf_printf(b, "{\"id\":%" PRIu64 ",\"receiver\":", j->id);
			buf_put_json_str(b, c->integ[i].receiver);
			buf_printf(b, ",\"integration\":\"%s\",\"group_key\":",
				   nvendor_name(c->integ[i].vendor));
			buf_put_json_str(b, j->group_key);
			buf_printf(b, ",\"alerts\":%u,\"attempts\":%u", j->nalerts, j->attempts);
			put_ms(b, "created", j->created_ms);
			put_ms(b, "next_attempt", j->next_ms);
			buf_putc(b, '}');
		}
	}
	buf_puts(b, "],\"recent\":[");
	size_t cnt = n->nrecent < limit ? n->nrecent : limit;
	for (size_t i = 0; i < cnt; i++) {
		const struct nrecent *r =
			&n->recent[(n->recent_next + NOTIFY_RECENT - 1 - i) % NOTIFY_RECENT];
		const struct nintegration *in = &c->integ[r->integ];
		if (i)
			buf_putc(b, ',');
		buf_puts(b, "{\"time\":");
		put_time(b, r->time_ms);
		buf_puts(b, ",\"receiver\":");
		buf_put_json_str(b, in->receiver);
		buf_printf(b, ",\"integration\":\"%s\",\"index\":%d,\"result\":\"%s\",\"status\":%ld,"
			   "\"attempts\":%u,\"alerts\":%u,\"latency_seconds\":%.3f,\"group_key\":",
			   nvendor_name(in->vendor), in->index, result_names[r->result], r->status,
			   r->attempts, r->nalerts, r->latency_s);
		buf_put_json_str(b, r->group_key);
		buf_puts(b, ",\"answer\":");
		buf_put_json_str(b, r->answer);
		buf_putc(b, '}');
	}
	buf_puts(b, "]}");
	pthread_mutex_unlock(&n->lock);
}

int notify_test(struct notifier *n, const char *receiver, struct buf *out)
{
	const struct notify_config *c = n->cfg;
	const struct nreceiver *rc = NULL;
	for (size_t i = 0; i < c->nrecv; i++)
		if (!strcmp(c->recv[i].name, receiver))
			rc = &c->recv[i];
	if (!rc)
		return -ENOENT;
	int64_t now = now_ms();
	char host[256] = "localhost";
	gethostname(host, sizeof(host) - 1);
	struct store_label labels[] = { { "alertname", "MonitorTestNotification" },
					{ "host", host },
					{ "severity", "info" } };
	struct store_label ann[] = {
		{ "summary", "Test notification from monitor: if you read this, the receiver works." },
	};
	struct nalert a = { .labels = labels, .nlabels = ARRAY_LEN(labels), .ann = ann,
			    .nann = ARRAY_LEN(ann), .starts_ms = now, .ends_ms = now + 300000 };
	a.fp = nlabels_fingerprint(labels, a.nlabels);
	struct ngroup g = { .key = (char *)"{}:{alertname=\"MonitorTestNotification\"}",
			    .glabels = labels, .nglabels = 1 };
	struct nalert *as[1] = { &a };
	bool res[1] = { false };
	struct buf v4, arr;
	buf_init(&v4, NOTIFY_BODY_MAX);
	buf_init(&arr, NOTIFY_BODY_MAX);
	build_v4(n, &g, rc->name, as, res, 1, &v4);
	buf_puts(&arr, "[{\"labels\":");
	alert_labels_json(&arr, labels, ARRAY_LEN(labels));
	buf_puts(&arr, ",\"annotations\":");
	alert_labels_json(&arr, ann, ARRAY_LEN(ann));
	buf_puts(&arr, ",\"startsAt\":");
	put_time(&arr, now);
	buf_puts(&arr, ",\"endsAt\":");
	put_time(&arr, now + 300000);
	buf_puts(&arr, "}]");
	buf_putc(out, '[');
	struct nhttp *http = nhttp_new();
	for (size_t k = 0; k < rc->ninteg && http; k++) {
		const struct nintegration *in = &c->integ[rc->integ[k]];
		const struct buf *d = in->vendor == NV_ALERTMANAGER ? &arr : &v4;
		char why[NOTIFY_ANSWER_MAX], clean[NOTIFY_ANSWER_MAX];
		int64_t retry_ms;
		long status;
		enum nresult r = send_job(n, in, http, d->data, d->len, &retry_ms, &status, why,
					  sizeof(why));
		redact(in, why, clean, sizeof(clean));
		if (k)
			buf_putc(out, ',');
		buf_printf(out, "{\"integration\":\"%s\",\"index\":%d,\"status\":%ld,\"result\":\"%s\","
			   "\"retry_after_seconds\":", nvendor_name(in->vendor), in->index, status,
			   r == NR_DELIVERED ? "delivered" : r == NR_RETRY ? "retry" : "failed");
		if (r == NR_RETRY && retry_ms >= 0)
			buf_printf(out, "%.3f", (double)retry_ms / 1000.0);
		else
			buf_puts(out, "null");
		buf_puts(out, ",\"answer\":");
		buf_put_json_str(out, clean);
		buf_putc(out, '}');
	}
	buf_putc(out, ']');
	nhttp_free(http);
	buf_fini(&v4);
	buf_fini(&arr);
	return 0;
}
