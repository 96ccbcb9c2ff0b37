/*
 * remediate.c - remediation: the agent restarts a container when a rule
 * that asks for it (label action="restart") fires for it.
 *
 * It is an alert_sink_fn the agent registers with the rules engine, so it
 * sees what the notifier sees: every firing alert each time the engine
 * sends it (when it starts firing and every resend), and resolved ones.
 * It needs nothing of the engine's internals. For a firing alert with
 * action="restart" it finds the container (the 64-hex id inside the `id`
 * label, a cgroup path, else the `name` label) and restarts it through the
 * runtime, by the callback the agent gives (Docker's restart), on its own
 * thread: the sink returns at once.
 *
 * Restarts are capped: at most max_restarts_per_hour per container in any
 * sliding hour, at least min_interval apart (time for a restart to take
 * effect and the alert to resolve), one at a time per container. Every
 * restart and the first refusal at the cap are recorded (the callback
 * posts them to the event timeline) and logged. The restart times of the
 * last hour are kept in the state database (kv namespace "remediation"),
 * so the cap holds across a restart of the agent. A silenced alert is not
 * acted on: a silence is how an operator says "hands off" during work.
 *
 * When a next sink is set (the notifier's, which the engine also feeds),
 * the alerts it acted on are handed to it once more, right after the
 * engine's own copy, with an annotation "remediation" saying what was done:
 * the notifier keeps the latest copy of an alert (as Alertmanager does), so
 * the notification tells its reader the container was restarted. The agent
 * enables the whole thing only when an admin token is configured.
 */
#include "alerting/alerting.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TRACKED 1024        /* containers with restart history */
#define QUEUE_MAX 64
#define HOUR_MS (3600 * 1000LL)
#define REF_SIZE 160
#define NAME_SIZE 128
#define NOTE_SIZE 256
#define ANNOT_MAX 64            /* annotations of one alert passed on */
#define KV_NS "remediation"     /* key: container ref; value: "t1,t2,..." (ms) */

struct tracked {
	char ref[REF_SIZE];
	int64_t restarts_ms[ALERT_REMEDIATION_MAX_PER_HOUR]; /* attempts in the last hour */
	size_t nrestarts;
	int64_t cap_noted_ms;        /* when the cap refusal was last recorded */
	bool in_flight;
	char last[NOTE_SIZE];        /* outcome of the last restart, for the annotation */
	int64_t last_used_ms;
};

struct job {
	char ref[REF_SIZE], name[NAME_SIZE], alertname[NAME_SIZE];
	int64_t at_ms;
	size_t nth;                  /* this restart is the nth in the hour */
};

struct alert_remediator {
	struct alert_remediation_config cfg;
	struct alert_remediation_ops ops;
	alert_sink_fn next;
	void *next_arg;
	alert_silenced_fn silenced;
	void *silenced_arg;
	struct kv *kv;               /* restart history across agent restarts; NULL: none */
	pthread_mutex_t lock;
	pthread_cond_t cond, idle;
	struct tracked *t;
	size_t nt;
	struct job queue[QUEUE_MAX];
	size_t qhead, qlen;
	bool threaded, stop, busy;
	pthread_t thread;
	struct alert_remediation_stats stats;
	struct log_limit ll_noref, ll_queue;
};

/* ---- configuration ------------------------------------------------------ */

void alert_remediation_config_defaults(struct alert_remediation_config *c)
{
	memset(c, 0, sizeof(*c));
	c->enabled = true;
	c->max_restarts_per_hour = 3;
	c->min_interval_ms = 5 * 60 * 1000;
	c->stop_timeout_s = 10;
}

static int cfg_fail(const char *file, const struct ynode *n, const char *key, char *err,
		    size_t errsize, const char *what)
{
	snprintf(err, errsize, "%s:%d:%d: remediation.%s: %s", file, n->line, n->col, key, what);
	return -EINVAL;
}

int alert_remediation_config_load(struct alert_remediation_config *c, const struct ynode *map,
				  const char *file, char *err, size_t errsize)
{
	if (map->type != YNODE_MAP)
		return cfg_fail(file, map, "", err, errsize, "expected a mapping");
	for (const struct ynode *n = map->child; n; n = n->next) {
		const char *k = n->key;
		if (n->type != YNODE_SCALAR)
			return cfg_fail(file, n, k, err, errsize, "expected a value");
		if (!strcmp(k, "enabled")) {
			if (!strcmp(n->scalar, "true"))
				c->enabled = true;
			else if (!strcmp(n->scalar, "false"))
				c->enabled = false;
			else
				return cfg_fail(file, n, k, err, errsize, "expected true or false");
		} else if (!strcmp(k, "max_restarts_per_hour")) {
			char *end;
			long v = strtol(n->scalar, &end, 10);
			if (!*n->scalar || *end || v < 0 || v > ALERT_REMEDIATION_MAX_PER_HOUR) {
				char what[96];
				snprintf(what, sizeof(what), "expected a whole number from 0 to %d",
					 ALERT_REMEDIATION_MAX_PER_HOUR);
				return cfg_fail(file, n, k, err, errsize, what);
			}
			c->max_restarts_per_hour = (int)v;
		} else if (!strcmp(k, "min_interval")) {
			int64_t ms;
			if (parse_duration_ms(n->scalar, &ms) < 0 || ms < 0 || ms > HOUR_MS)
				return cfg_fail(file, n, k, err, errsize,
						"expected a duration from 0s to 1h, such as 5m");
			c->min_interval_ms = ms;
		} else if (!strcmp(k, "stop_timeout")) {
			int64_t ms;
			if (parse_duration_ms(n->scalar, &ms) < 0 || ms < 0 || ms > HOUR_MS)
				return cfg_fail(file, n, k, err, errsize,
						"expected a duration from 0s to 1h, such as 10s");
			c->stop_timeout_s = ms / 1000;
		} else {
			return cfg_fail(file, n, k, err, errsize, "unknown key (enabled, "
					"max_restarts_per_hour, min_interval, stop_timeout)");
		}
	}
	return 0;
}

/* ---- the worker --------------------------------------------------------- */

static void run_job(struct alert_remediator *r, const struct job *j)
{
	char msg[400] = "", detail[NOTE_SIZE], t[40];
	int rc = r->ops.restart(r->ops.arg, j->ref, r->cfg.stop_timeout_s, msg, sizeof(msg));
	alert_time_format(j->at_ms - j->at_ms % 1000, t, sizeof(t));
	if (rc == 0)
		snprintf(detail, sizeof(detail), "restarted for %.60s (%zu of at most %d an hour)",
			 j->alertname, j->nth, r->cfg.max_restarts_per_hour);
	else
		snprintf(detail, sizeof(detail), "restart for %.60s failed: %.150s", j->alertname,
			 msg[0] ? msg : strerror(-rc));
	if (rc == 0)
		log_info("remediation: %s (%s) %s", j->name, j->ref, detail);
	else
		log_warn("remediation: %s (%s) %s", j->name, j->ref, detail);
	if (r->ops.record)
		r->ops.record(r->ops.arg, j->ref, j->name, detail);
	char hist[ALERT_REMEDIATION_MAX_PER_HOUR * 21 + 1] = "";
	pthread_mutex_lock(&r->lock);
	if (rc == 0)
		r->stats.restarts++;
	else
		r->stats.failures++;
	for (size_t i = 0; i < r->nt; i++)
		if (!strcmp(r->t[i].ref, j->ref)) {
			r->t[i].in_flight = false;
			snprintf(r->t[i].last, sizeof(r->t[i].last), "%.220s at %.30s", detail, t);
			size_t off = 0;
			for (size_t k = 0; k < r->t[i].nrestarts; k++)
				off += (size_t)snprintf(hist + off, sizeof(hist) - off, "%s%lld",
							k ? "," : "",
							(long long)r->t[i].restarts_ms[k]);
		}
	pthread_mutex_unlock(&r->lock);
	/* The attempts of the last hour, so the cap holds across a restart of
	 * the agent. Off the sink's thread: the engine never waits for it. */
	if (r->kv && hist[0] && kv_put(r->kv, KV_NS, j->ref, hist, strlen(hist)) < 0)
		log_warn("remediation: saving the restart history of %s failed; the cap counts "
			 "from zero after an agent restart", j->ref);
}

static void *worker(void *arg)
{
	struct alert_remediator *r = arg;
	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->qlen && !r->stop)
			pthread_cond_wait(&r->cond, &r->lock);
		if (r->stop)
			break;
		struct job j = r->queue[r->qhead];
		r->qhead = (r->qhead + 1) % QUEUE_MAX;
		r->qlen--;
		r->busy = true;
		pthread_mutex_unlock(&r->lock);
		run_job(r, &j);
		pthread_mutex_lock(&r->lock);
		r->busy = false;
		if (!r->qlen)
			pthread_cond_broadcast(&r->idle);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int alert_remediator_new(struct alert_remediator **out, const struct alert_remediation_config *cfg,
			 const struct alert_remediation_ops *ops, bool threaded)
{
	if (!ops || !ops->restart)
		return -EINVAL;
	struct alert_remediator *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->t = calloc(MAX_TRACKED, sizeof(*r->t));
	if (!r->t) {
		free(r);
		return -ENOMEM;
	}
	r->cfg = *cfg;
	if (r->cfg.max_restarts_per_hour > ALERT_REMEDIATION_MAX_PER_HOUR)
		r->cfg.max_restarts_per_hour = ALERT_REMEDIATION_MAX_PER_HOUR;
	r->ops = *ops;
	r->threaded = threaded;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	pthread_cond_init(&r->idle, NULL);
	if (threaded) {
		int rc = pthread_create(&r->thread, NULL, worker, r);
		if (rc) {
			r->threaded = false;
			alert_remediator_free(r);
			return -rc;
		}
	}
	*out = r;
	return 0;
}

void alert_remediator_free(struct alert_remediator *r)
{
	if (!r)
		return;
	if (r->threaded) {
		pthread_mutex_lock(&r->lock);
		r->stop = true;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->lock);
		pthread_join(r->thread, NULL);
	}
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	pthread_cond_destroy(&r->idle);
	free(r->t);
	free(r);
}

void alert_remediator_set_next(struct alert_remediator *r, alert_sink_fn next, void *arg)
{
	r->next = next;
	r->next_arg = arg;
}

void alert_remediator_set_silencer(struct alert_remediator *r, alert_silenced_fn fn, void *arg)
{
	r->silenced = fn;
	r->silenced_arg = arg;
}

#define STALE_MAX 256

struct load_ctx {
	struct alert_remediator *r;
	int64_t now;
	char (*stale)[REF_SIZE];     /* keys with nothing in the last hour */
	size_t nstale;
};

static int load_one(void *arg, const char *key, const void *val, size_t len)
{
	struct load_ctx *lc = arg;
	if (lc->r->nt >= MAX_TRACKED || strlen(key) >= REF_SIZE)
		return 0;
	struct tracked *t = &lc->r->t[lc->r->nt];
	memset(t, 0, sizeof(*t));
	const char *p = val, *end = p + len;
	while (p < end && t->nrestarts < ALERT_REMEDIATION_MAX_PER_HOUR) {
		char *e;
		long long ms = strtoll(p, &e, 10);
		if (e == p)
			break;
		if (lc->now - ms < HOUR_MS && ms <= lc->now)
			t->restarts_ms[t->nrestarts++] = ms;
		p = e + (e < end && *e == ',');
	}
	if (t->nrestarts) {
		snprintf(t->ref, sizeof(t->ref), "%s", key);
		t->last_used_ms = lc->now;
		lc->r->nt++;
	} else if (lc->stale && lc->nstale < STALE_MAX) {
		snprintf(lc->stale[lc->nstale++], REF_SIZE, "%s", key);
	}
	return 0;
}

void alert_remediator_set_store(struct alert_remediator *r, struct kv *kv, int64_t now_ms)
{
	r->kv = kv;
	if (!kv)
		return;
	struct load_ctx lc = { r, now_ms, calloc(STALE_MAX, REF_SIZE), 0 };
	pthread_mutex_lock(&r->lock);
	kv_each(kv, KV_NS, NULL, 0, load_one, &lc);
	pthread_mutex_unlock(&r->lock);
	/* Older history is of no use: the window is an hour. */
	for (size_t i = 0; i < lc.nstale; i++)
		kv_del(kv, KV_NS, lc.stale[i]);
	free(lc.stale);
}

void alert_remediator_flush(struct alert_remediator *r)
{
	pthread_mutex_lock(&r->lock);
	while (r->threaded && (r->qlen || r->busy))
		pthread_cond_wait(&r->idle, &r->lock);
	pthread_mutex_unlock(&r->lock);
}

void alert_remediator_stats(struct alert_remediator *r, struct alert_remediation_stats *out)
{
	pthread_mutex_lock(&r->lock);
	*out = r->stats;
	pthread_mutex_unlock(&r->lock);
}

/* ---- deciding ----------------------------------------------------------- */

static const char *label(const struct alert_msg *a, const char *name)
{
	for (size_t i = 0; i < a->nlabels; i++)
		if (!strcmp(a->labels[i].name, name))
			return a->labels[i].value;
	return NULL;
}

int alert_remediation_target(const struct store_label *labels, size_t n, char *ref,
			     size_t refsize)
{
	const char *id = NULL, *name = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(labels[i].name, "id"))
			id = labels[i].value;
		else if (!strcmp(labels[i].name, "name"))
			name = labels[i].value;
	}
	/* A Docker id is 64 hex digits somewhere in the cgroup path:
	 * /docker/<id>, /system.slice/docker-<id>.scope, kubepods .../<id>. */
	for (const char *p = id; p && *p; p++) {
		size_t k = strspn(p, "0123456789abcdef");
		if (k == 64) {
			snprintf(ref, refsize, "%.64s", p);
			return 0;
		}
		if (k)
			p += k - 1;
	}
	if (name && *name && strlen(name) < refsize) {
		snprintf(ref, refsize, "%s", name);
		return 0;
	}
	return -ENOENT;
}

/* The record of ref, made (or the least recently used one reused) when absent. */
static struct tracked *track(struct alert_remediator *r, const char *ref, int64_t now)
{
	struct tracked *lru = NULL;
	for (size_t i = 0; i < r->nt; i++) {
		if (!strcmp(r->t[i].ref, ref)) {
			r->t[i].last_used_ms = now;
			return &r->t[i];
		}
		if (!r->t[i].in_flight && (!lru || r->t[i].last_used_ms < lru->last_used_ms))
			lru = &r->t[i];
	}
	struct tracked *t = r->nt < MAX_TRACKED ? &r->t[r->nt++] : lru;
	if (!t)
		return NULL;
	memset(t, 0, sizeof(*t));
	snprintf(t->ref, sizeof(t->ref), "%s", ref);
	t->last_used_ms = now;
	return t;
}

static void prune(struct tracked *t, int64_t now)
{
	size_t k = 0;
	for (size_t i = 0; i < t->nrestarts; i++)
		if (now - t->restarts_ms[i] < HOUR_MS)
			t->restarts_ms[k++] = t->restarts_ms[i];
	t->nrestarts = k;
}

/*
 * Decides for one firing alert that asks for a restart; writes what the
 * annotation should say into note. Lock held. Returns true when a job was
 * made (into *j) for the caller to run.
 */
static bool decide(struct alert_remediator *r, const struct alert_msg *a, int64_t now,
		   struct job *j, char *note, size_t notesize)
{
	char ref[REF_SIZE], sid[ALERT_SILENCE_ID_SIZE] = "";
	const char *alertname = label(a, "alertname"), *name = label(a, "name");
	if (alert_remediation_target(a->labels, a->nlabels, ref, sizeof(ref)) < 0) {
		log_limited(&r->ll_noref, LOG_WARN, "remediation: alert %s asks for a restart but "
			    "has no id or name label naming a container", alertname ? alertname : "?");
		snprintf(note, notesize, "no restart: the alert names no container");
		return false;
	}
	if (r->silenced && r->silenced(r->silenced_arg, a->labels, a->nlabels, now, sid,
				       sizeof(sid))) {
		r->stats.silenced++;
		snprintf(note, notesize, "no restart: held back by silence %s", sid);
		return false;
	}
	struct tracked *t = track(r, ref, now);
	if (!t) {
		snprintf(note, notesize, "no restart: too many containers under remediation");
		return false;
	}
	prune(t, now);
	int64_t last = t->nrestarts ? t->restarts_ms[t->nrestarts - 1] : 0;
	if (t->in_flight) {
		snprintf(note, notesize, "restart in progress");
		return false;
	}
	if ((int)t->nrestarts >= r->cfg.max_restarts_per_hour) {
		snprintf(note, notesize, "no restart: %zu restarts in the last hour, the cap "
			 "(remediation.max_restarts_per_hour); last: %.160s", t->nrestarts,
			 t->last[0] ? t->last : "-");
		if (!t->cap_noted_ms || now - t->cap_noted_ms >= HOUR_MS) {
			t->cap_noted_ms = now;
			r->stats.capped++;
			char detail[NOTE_SIZE];
			snprintf(detail, sizeof(detail), "not restarted for %.60s: %zu restarts in "
				 "the last hour reached the cap of %d", alertname ? alertname : "?",
				 t->nrestarts, r->cfg.max_restarts_per_hour);
			log_warn("remediation: %s (%s) %s", name ? name : ref, ref, detail);
			if (r->ops.record)
				r->ops.record(r->ops.arg, ref, name ? name : "", detail);
		}
		return false;
	}
	if (last && now - last < r->cfg.min_interval_ms) {
		snprintf(note, notesize, "%.200s; waiting remediation.min_interval before another",
			 t->last[0] ? t->last : "restarted");
		return false;
	}
	if (r->threaded && r->qlen == QUEUE_MAX) {
		log_limited(&r->ll_queue, LOG_WARN, "remediation: %d restarts are queued already; "
			    "not restarting %s now", QUEUE_MAX, ref);
		snprintf(note, notesize, "no restart yet: the remediation queue is full");
		return false;
	}
	t->restarts_ms[t->nrestarts++] = now;
	t->in_flight = true;
	memset(j, 0, sizeof(*j));
	snprintf(j->ref, sizeof(j->ref), "%s", ref);
	snprintf(j->name, sizeof(j->name), "%.127s", name ? name : ref);
	snprintf(j->alertname, sizeof(j->alertname), "%s", alertname ? alertname : "?");
	j->at_ms = now;
	j->nth = t->nrestarts;
	snprintf(note, notesize, "restart requested (%zu of at most %d an hour)", t->nrestarts,
		 r->cfg.max_restarts_per_hour);
	return true;
}

void alert_remediate(void *arg, const struct alert_msg *alerts, size_t n, int64_t now_ms)
{
	struct alert_remediator *r = arg;
	struct alert_msg *out = NULL;
	struct store_label *annots = NULL;
	char (*notes)[NOTE_SIZE] = NULL;
	size_t nout = 0;
	if (r->next && n) {
		out = malloc(n * sizeof(*out));
		annots = malloc(n * (ANNOT_MAX + 1) * sizeof(*annots));
		notes = malloc(n * sizeof(*notes));
		if (!out || !annots || !notes) {
			free(out);
			free(annots);
			free(notes);
			out = NULL;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct alert_msg *a = &alerts[i];
		const char *action = label(a, "action");
		if (!action || strcmp(action, "restart") != 0 || a->ends_at_ms <= now_ms ||
		    !r->cfg.enabled)
			continue;
		struct job j;
		char note[NOTE_SIZE];
		pthread_mutex_lock(&r->lock);
		bool go = decide(r, a, now_ms, &j, note, sizeof(note));
		if (go && r->threaded) {
			r->queue[(r->qhead + r->qlen) % QUEUE_MAX] = j;
			r->qlen++;
			pthread_cond_signal(&r->cond);
		}
		pthread_mutex_unlock(&r->lock);
		if (go && !r->threaded) {
			run_job(r, &j);
			pthread_mutex_lock(&r->lock);
			for (size_t k = 0; k < r->nt; k++)
				if (!strcmp(r->t[k].ref, j.ref))
					snprintf(note, sizeof(note), "%s", r->t[k].last);
			pthread_mutex_unlock(&r->lock);
		}
		if (!out || a->nannotations >= ANNOT_MAX)
			continue;
		/* The alert again with its annotations plus "remediation" (kept
		 * in name order): the next sink takes the latest copy of an
		 * alert, as Alertmanager does, so the notification says what
		 * was done. */
		struct store_label *an = annots + nout * (ANNOT_MAX + 1);
		size_t k = 0;
		bool put = false;
		snprintf(notes[nout], NOTE_SIZE, "%s", note);
		for (size_t m = 0; m < a->nannotations; m++) {
			if (!put && strcmp(a->annotations[m].name, "remediation") >= 0) {
				an[k++] = (struct store_label){ "remediation", notes[nout] };
				put = true;
			}
			if (strcmp(a->annotations[m].name, "remediation") != 0)
				an[k++] = a->annotations[m];
		}
		if (!put)
			an[k++] = (struct store_label){ "remediation", notes[nout] };
		out[nout] = *a;
		out[nout].annotations = an;
		out[nout].nannotations = k;
		nout++;
	}
	if (r->next && nout)
		r->next(r->next_arg, out, nout, now_ms);
	free(out);
	free(annots);
	free(notes);
}
