/*
 * rules_eval.c - the rules engine: evaluation, the alert state machine, its
 * persistence, the output queue and the evaluation thread.
 *
 * Each group runs every interval on the engine's thread (aligned to the
 * interval, so restarts keep the rhythm). A rule's expression is evaluated
 * by the PromQL engine at the evaluation time; an alerting rule then runs
 * Prometheus' state machine (rules/alerting.go):
 *
 *   - a new label set becomes pending with active_at = now; once
 *     now - active_at >= for it fires (at once when for is 0);
 *   - a pending alert whose label set vanishes is dropped; a firing one
 *     resolves, unless keep_firing_for holds it firing (the timer starts
 *     when the condition goes away and resets when it comes back);
 *   - ALERTS{alertstate="pending"|"firing"} = 1 and ALERTS_FOR_STATE =
 *     active_at (seconds) are written for every active alert.
 *
 * Outputs (those series and recording rules' results) go through a locked
 * queue to the tick thread, the store's one appender; a series a rule wrote
 * last time and not this time gets a stale marker, as in Prometheus.
 *
 * A rule's active alerts are saved as one record in the kv namespace
 * "alerts" whenever one of them changes state, and a heartbeat records the
 * last evaluation; a restarted engine seeds each rule from its record at
 * the rule's first evaluation (see alerting.h for what is kept).
 */
#include "alerting/rules_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KV_NS "alerts"
#define KV_NS_META "alerts_meta"
#define HEARTBEAT_EVERY_MS 5000
#define RESOLVED_RETENTION_MS (15 * 60 * 1000) /* resolved alerts are re-sent this long */
#define SAVED_MAX_BYTES (64u << 20)

const char *alert_state_name(enum alert_state s)
{
	return s == ALERT_FIRING ? "firing" : s == ALERT_PENDING ? "pending" : "inactive";
}

void alert_rules_config_defaults(struct alert_rules_config *c)
{
	memset(c, 0, sizeof(*c));
	c->eval_interval_ms = 15000;
	c->resend_delay_ms = 60000;
	c->outage_tolerance_ms = 3600 * 1000;
	c->for_grace_period_ms = 0;
}

/* ---- label sets ------------------------------------------------------------- */

/* Alertmanager's fingerprint: FNV-1a 64 over sorted names and values, each
 * followed by 0xff. */
static uint64_t labels_fp(const struct store_label *l, size_t n)
{
	uint64_t h = 14695981039346656037ULL;
	for (size_t i = 0; i < n; i++) {
		for (const char *s = l[i].name; *s; s++)
			h = (h ^ (unsigned char)*s) * 1099511628211ULL;
		h = (h ^ 0xff) * 1099511628211ULL;
		for (const char *s = l[i].value; *s; s++)
			h = (h ^ (unsigned char)*s) * 1099511628211ULL;
		h = (h ^ 0xff) * 1099511628211ULL;
	}
	return h;
}

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct store_label *)a)->name, ((const struct store_label *)b)->name);
}

/* Copies n labels into one malloc block (array, then the strings). */
static struct store_label *labels_pack(const struct store_label *l, size_t n)
{
	size_t bytes = (n + 1) * sizeof(*l);
	for (size_t i = 0; i < n; i++)
		bytes += strlen(l[i].name) + strlen(l[i].value) + 2;
	struct store_label *out = malloc(bytes);
	if (!out)
		return NULL;
	char *p = (char *)(out + n + 1);
	for (size_t i = 0; i < n; i++) {
		size_t a = strlen(l[i].name) + 1, b = strlen(l[i].value) + 1;
		memcpy(p, l[i].name, a);
		out[i].name = p;
		p += a;
		memcpy(p, l[i].value, b);
		out[i].value = p;
		p += b;
	}
	out[n] = (struct store_label){ NULL, NULL };
	return out;
}

/* A label set under construction: set() replaces, an empty value deletes. */
struct lset {
	struct store_label l[256];
	size_t n;
	bool overflow;
};

static void lset_set(struct lset *s, const char *name, const char *value)
{
	for (size_t i = 0; i < s->n; i++) {
		if (!strcmp(s->l[i].name, name)) {
			if (*value) {
				s->l[i].value = value;
			} else {
				s->l[i] = s->l[--s->n];
			}
			return;
		}
	}
	if (!*value)
		return;
	if (s->n >= ARRAY_LEN(s->l)) {
		s->overflow = true;
		return;
	}
	s->l[s->n++] = (struct store_label){ name, value };
}

static void lset_sort(struct lset *s)
{
	qsort(s->l, s->n, sizeof(s->l[0]), label_cmp);
}

/* ---- templates ---------------------------------------------------------------- */

struct tctx {
	const struct promql_label *labels;
	size_t n;
	double value;
	const struct alert_engine *e;
};

static int tmpl_lookup(void *arg, const char *var, const char *field, struct alert_tmpl_value *out)
{
	const struct tctx *c = arg;
	memset(out, 0, sizeof(*out));
	if (!strcmp(var, "value")) {
		if (field)
			return -EINVAL;
		out->kind = ALERT_TMPL_NUM;
		out->num = c->value;
		return 0;
	}
	if (!strcmp(var, "externalURL")) {
		out->kind = ALERT_TMPL_STR;
		out->str = c->e ? c->e->cfg.external_url : "";
		return 0;
	}
	if (!strcmp(var, "labels") || !strcmp(var, "externalLabels")) {
		if (!field) {
			out->kind = ALERT_TMPL_MAP;
			return 0;
		}
		out->kind = ALERT_TMPL_STR;
		out->str = "";
		if (var[0] == 'l') {
			for (size_t i = 0; i < c->n; i++)
				if (!strcmp(c->labels[i].name, field))
					out->str = c->labels[i].value;
		} else if (c->e) {
			for (size_t i = 0; i < c->e->cfg.nexternal_labels; i++)
				if (!strcmp(c->e->cfg.external_labels[i].name, field))
					out->str = c->e->cfg.external_labels[i].value;
		}
		return 0;
	}
	return -ENOENT;
}

/* Expands kv's template into b (from its start), as Prometheus does: an
 * error becomes the text "<error expanding template: ...>". */
static const char *expand(const struct rule_kv *kv, struct tctx *c, struct buf *b)
{
	buf_reset(b);
	if (alert_tmpl_is_static(kv->tmpl))
		return kv->text;
	char err[512];
	if (alert_tmpl_exec(kv->tmpl, tmpl_lookup, c, b, err, sizeof(err)) < 0) {
		buf_reset(b);
		buf_printf(b, "<error expanding template: %s>", err);
	}
	buf_putc(b, '\0');
	return b->data;
}

/* ---- output queue ---------------------------------------------------------------- */

static void queue_push(struct alert_engine *e, const struct store_label *labels, size_t n,
		       int64_t t, double v)
{
	struct store_label *copy = labels_pack(labels, n);
	if (!copy)
		return;
	pthread_mutex_lock(&e->q_lock);
	if (e->nq >= ALERT_QUEUE_MAX_SAMPLES) {
		e->stats.samples_dropped++;
		pthread_mutex_unlock(&e->q_lock);
		free(copy);
		return;
	}
	if (e->nq == e->qcap) {
		size_t cap = e->qcap ? e->qcap * 2 : 256;
		struct sample_q *nq = realloc(e->q, cap * sizeof(*nq));
		if (!nq) {
			e->stats.samples_dropped++;
			pthread_mutex_unlock(&e->q_lock);
			free(copy);
			return;
		}
		e->q = nq;
		e->qcap = cap;
	}
	e->q[e->nq++] = (struct sample_q){ copy, n, t, v };
	pthread_mutex_unlock(&e->q_lock);
}

size_t alert_engine_drain(struct alert_engine *e, alert_sample_fn fn, void *arg)
{
	if (!e)
		return 0;
	pthread_mutex_lock(&e->q_lock);
	struct sample_q *q = e->q;
	size_t n = e->nq;
	e->q = NULL;
	e->nq = e->qcap = 0;
	pthread_mutex_unlock(&e->q_lock);
	for (size_t i = 0; i < n; i++) {
		if (fn)
			fn(arg, q[i].labels, q[i].n, q[i].t, q[i].v);
		free(q[i].labels);
	}
	free(q);
	return n;
}

static void to_store(void *arg, const struct store_label *labels, size_t n, int64_t t, double v)
{
	uint32_t id;
	if (store_series(arg, labels, n, STORE_GAUGE, &id) == 0)
		store_append(arg, id, t, v);
}

size_t alert_engine_drain_store(struct alert_engine *e, struct store *st)
{
	return alert_engine_drain(e, st ? to_store : NULL, st);
}

static int out_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct out_series *)a)->fp, y = ((const struct out_series *)b)->fp;
	return x < y ? -1 : x > y;
}

/*
 * Queues this evaluation's outputs of r (out, n; labels owned by out; sorted
 * here) and
 * stale markers for series of the last evaluation that are missing now;
 * out becomes r's new list. Caller holds e->lock.
 */
static void emit_outputs(struct alert_engine *e, struct rule *r, struct out_series *out, size_t n,
			 int64_t t)
{
	if (n)
		qsort(out, n, sizeof(*out), out_cmp);
	for (size_t i = 0; i < n; i++) {
		queue_push(e, out[i].labels, out[i].n, t, out[i].v);
		if (e->rsrc)
			rules_source_add(e->rsrc, out[i].labels, out[i].n, t, out[i].v);
	}
	/* out is sorted by fp: find the missing ones of the old list. */
	for (size_t i = 0; i < r->nprev_out; i++) {
		struct out_series *o = &r->prev_out[i];
		if (!n || !bsearch(o, out, n, sizeof(*out), out_cmp)) {
			queue_push(e, o->labels, o->n, t, store_stale_nan());
			if (e->rsrc)
				rules_source_add(e->rsrc, o->labels, o->n, t, store_stale_nan());
		}
		free(o->labels);
	}
	free(r->prev_out);
	r->prev_out = out;
	r->nprev_out = n;
}

/* Ends every series r wrote (stale markers at t). Caller holds e->lock. */
static void emit_stale_all(struct alert_engine *e, struct rule *r, int64_t t)
{
	emit_outputs(e, r, NULL, 0, t);
}

/* ---- sinks ------------------------------------------------------------------------ */

/* Alerts of one group evaluation for the sinks; strings live in the arena. */
struct sendlist {
	struct alert_msg *msgs;
	size_t n, cap;
	struct arena a;
};

static struct store_label *arena_labels(struct arena *a, const struct store_label *l, size_t n)
{
	struct store_label *o = arena_alloc(a, (n + 1) * sizeof(*o));
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		o[i].name = arena_strdup(a, l[i].name);
		o[i].value = arena_strdup(a, l[i].value);
		if (!o[i].name || !o[i].value)
			return NULL;
	}
	return o;
}

void rules_generator_url(const struct alert_engine *e, const char *expr, struct buf *out)
{
	buf_puts(out, e->cfg.external_url);
	buf_puts(out, "/graph?g0.expr=");
	for (const unsigned char *s = (const unsigned char *)expr; *s; s++) {
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		    *s == '-' || *s == '_' || *s == '.' || *s == '~')
			buf_putc(out, (char)*s);
		else
			buf_printf(out, "%%%02X", *s);
	}
	buf_puts(out, "&g0.tab=1");
}

static void send_add(struct alert_engine *e, struct sendlist *sl, const struct rule *r,
		     const struct alert_inst *a, int64_t ends_at)
{
	if (!e->nsinks)
		return;
	if (sl->n == sl->cap) {
		size_t cap = sl->cap ? sl->cap * 2 : 16;
		struct alert_msg *m = realloc(sl->msgs, cap * sizeof(*m));
		if (!m)
			return;
		sl->msgs = m;
		sl->cap = cap;
	}
	struct alert_msg *m = &sl->msgs[sl->n];
	m->labels = arena_labels(&sl->a, a->labels, a->nlabels);
	m->nlabels = a->nlabels;
	struct store_label *ann = a->note ? malloc((a->nann + 1) * sizeof(*ann)) : NULL;
	size_t nann = ann ? alert_annotations(a, ann) : a->nann;
	m->annotations = arena_labels(&sl->a, ann ? ann : a->ann, nann);
	m->nannotations = nann;
	free(ann);
	m->starts_at_ms = a->fired_at ? a->fired_at : a->active_at;
	m->ends_at_ms = ends_at;
	struct buf u;
	buf_init(&u, 1 << 16);
	rules_generator_url(e, r->expr_text ? r->expr_text : "", &u);
	m->generator_url = arena_strdup(&sl->a, u.len ? u.data : "");
	buf_fini(&u);
	if (m->labels && m->annotations)
		sl->n++;
}

static struct alert_inst *find_alert(struct rule *r, uint64_t fp);

size_t alert_annotations(const struct alert_inst *a, struct store_label *out)
{
	size_t k = 0;
	bool put = !a->note;
	for (size_t i = 0; i < a->nann; i++) {
		int c = strcmp(a->ann[i].name, ALERT_NOTE_NAME);
		if (!put && c >= 0) {
			out[k++] = (struct store_label){ ALERT_NOTE_NAME, a->note };
			put = true;
		}
		if (c != 0 || !a->note)
			out[k++] = a->ann[i];
	}
	if (!put)
		out[k++] = (struct store_label){ ALERT_NOTE_NAME, a->note };
	return k;
}

/*
 * What remediation did goes back onto the alert, so that /api/v1/alerts
 * (and `monitor alerts`) show it, not only the notification: the
 * remediator hands on each alert it decided about with an annotation
 * "remediation", and this sink keeps that text on the engine's alert until
 * the alert resolves (later resends carry it too).
 */
void alert_engine_note_sink(void *arg, const struct alert_msg *m, size_t n, int64_t now_ms)
{
	struct alert_engine *e = arg;
	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	for (size_t i = 0; i < n; i++) {
		const char *note = NULL;
		for (size_t j = 0; j < m[i].nannotations && !note; j++)
			if (!strcmp(m[i].annotations[j].name, ALERT_NOTE_NAME))
				note = m[i].annotations[j].value;
		if (!note)
			continue;
		uint64_t fp = labels_fp(m[i].labels, m[i].nlabels);
		struct ruleset *rs = e->rs;
		for (size_t g = 0; rs && g < rs->ngroups; g++)
			for (size_t r = 0; r < rs->groups[g].nrules; r++) {
				struct alert_inst *a = find_alert(&rs->groups[g].rules[r], fp);
				if (!a || (a->note && !strcmp(a->note, note)))
					continue;
				char *dup = strdup(note);
				if (dup) {
					free(a->note);
					a->note = dup;
				}
			}
	}
	pthread_mutex_unlock(&e->lock);
}

/* ---- persistence ------------------------------------------------------------------- */

struct saved_rec {
	char *key;
	char *val;
	size_t len;
};
struct saved_set {
	struct saved_rec *r;
	size_t n, cap, bytes;
};

static int saved_collect(void *arg, const char *key, const void *val, size_t len)
{
	struct saved_set *s = arg;
	if (s->bytes + len > SAVED_MAX_BYTES)
		return 1;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct saved_rec *nr = realloc(s->r, cap * sizeof(*nr));
		if (!nr)
			return -ENOMEM;
		s->r = nr;
		s->cap = cap;
	}
	char *k = strdup(key), *v = malloc(len + 1);
	if (!k || !v) {
		free(k);
		free(v);
		return -ENOMEM;
	}
	memcpy(v, val, len);
	v[len] = '\0';
	s->r[s->n++] = (struct saved_rec){ k, v, len };
	s->bytes += len;
	return 0;
}

static int saved_cmp(const void *a, const void *b)
{
	return strcmp(((const struct saved_rec *)a)->key, ((const struct saved_rec *)b)->key);
}

static struct saved_set *saved_of(struct alert_engine *e)
{
	return e->saved;
}

static void saved_load(struct alert_engine *e)
{
	struct saved_set *s = calloc(1, sizeof(*s));
	if (!s)
		return;
	if (e->kv) {
		kv_each(e->kv, KV_NS, NULL, 0, saved_collect, s);
		void *hb;
		size_t len;
		if (kv_get(e->kv, KV_NS_META, "heartbeat", &hb, &len) == 0) {
			e->heartbeat_ms = strtoll(hb, NULL, 10);
			free(hb);
		}
	}
	if (s->n)
		qsort(s->r, s->n, sizeof(*s->r), saved_cmp);
	e->saved = s;
}

static void saved_free(struct alert_engine *e)
{
	struct saved_set *s = saved_of(e);
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->r[i].key);
		free(s->r[i].val);
	}
	free(s->r);
	free(s);
	e->saved = NULL;
}

static void save_rule(struct alert_engine *e, struct rule *r, int64_t now)
{
	r->dirty = false;
	if (!e->kv)
		return;
	size_t active = 0;
	for (size_t i = 0; i < r->nalerts; i++)
		active += r->alerts[i]->state != ALERT_INACTIVE;
	if (!active) {
		kv_del(e->kv, KV_NS, r->key);
		return;
	}
	struct buf b;
	buf_init(&b, 256u << 20);
	buf_printf(&b, "{\"saved\":%lld,\"alerts\":[", (long long)now);
	bool first = true;
	for (size_t i = 0; i < r->nalerts; i++) {
		const struct alert_inst *a = r->alerts[i];
		if (a->state == ALERT_INACTIVE)
			continue;
		if (!first)
			buf_putc(&b, ',');
		first = false;
		buf_puts(&b, "{\"labels\":{");
		for (size_t j = 0; j < a->nlabels; j++) {
			if (j)
				buf_putc(&b, ',');
			buf_put_json_str(&b, a->labels[j].name);
			buf_putc(&b, ':');
			buf_put_json_str(&b, a->labels[j].value);
		}
		buf_printf(&b, "},\"state\":\"%s\",\"activeAt\":%lld,\"firedAt\":%lld,"
			   "\"keepFiringSince\":%lld,\"value\":", alert_state_name(a->state),
			   (long long)a->active_at, (long long)a->fired_at,
			   (long long)a->keep_firing_since);
		if (isfinite(a->value))
			buf_put_double(&b, a->value);
		else
			buf_puts(&b, "null");
		buf_putc(&b, '}');
	}
	buf_puts(&b, "]}");
	if (!b.overflow)
		kv_put(e->kv, KV_NS, r->key, b.data, b.len);
	buf_fini(&b);
}

static int alert_cmp(const void *a, const void *b)
{
	uint64_t x = (*(const struct alert_inst *const *)a)->fp;
	uint64_t y = (*(const struct alert_inst *const *)b)->fp;
	return x < y ? -1 : x > y;
}

static bool alerts_push(struct rule *r, struct alert_inst *a)
{
	if (r->nalerts == r->alerts_cap) {
		size_t cap = r->alerts_cap ? r->alerts_cap * 2 : 8;
		struct alert_inst **na = realloc(r->alerts, cap * sizeof(*na));
		if (!na)
			return false;
		r->alerts = na;
		r->alerts_cap = cap;
	}
	r->alerts[r->nalerts++] = a;
	return true;
}

/* Seeds r's alerts from its saved record, as Prometheus' restore of
 * ALERTS_FOR_STATE does. Caller holds e->lock. */
static void restore_rule(struct alert_engine *e, struct rule *r, int64_t now)
{
	r->restored = true;
	struct saved_set *s = saved_of(e);
	if (!s || !s->n || r->kind == RULE_RECORD)
		return;
	struct saved_rec key = { .key = r->key };
	struct saved_rec *rec = bsearch(&key, s->r, s->n, sizeof(*s->r), saved_cmp);
	if (!rec)
		return;
	struct json_doc doc;
	size_t off;
	if (json_parse(&doc, rec->val, rec->len, &off) < 0) {
		log_warn("rules: the saved state of rule \"%s\" is not JSON (offset %zu); starting "
			 "it afresh", r->name, off);
		return;
	}
	const struct json *saved = json_get(doc.root, "saved");
	int64_t down_at = e->heartbeat_ms;
	if (saved && saved->type == JSON_NUMBER && (int64_t)saved->number > down_at)
		down_at = (int64_t)saved->number;
	if (!down_at || now - down_at > e->cfg.outage_tolerance_ms) {
		log_info("rules: not restoring the state of \"%s\": the agent was down longer than "
			 "rules.outage_tolerance", r->name);
		json_doc_free(&doc);
		r->dirty = true;
		return;
	}
	const struct json *arr = json_get(doc.root, "alerts");
	size_t restored = 0;
	for (const struct json *j = arr && arr->type == JSON_ARRAY ? arr->child : NULL; j;
	     j = j->next) {
		const struct json *lj = json_get(j, "labels");
		const char *state = json_get_str(j, "state");
		if (!lj || lj->type != JSON_OBJECT || !state || lj->count > 256)
			continue;
		struct store_label l[256];
		size_t n = 0;
		for (const struct json *c = lj->child; c; c = c->next)
			if (c->type == JSON_STRING)
				l[n++] = (struct store_label){ c->key, c->string };
		qsort(l, n, sizeof(l[0]), label_cmp);
		struct alert_inst *a = calloc(1, sizeof(*a));
		if (!a)
			break;
		a->labels = labels_pack(l, n);
		a->nlabels = n;
		a->fp = labels_fp(l, n);
		const struct json *v;
		a->active_at = (v = json_get(j, "activeAt")) ? (int64_t)v->number : now;
		a->fired_at = (v = json_get(j, "firedAt")) ? (int64_t)v->number : 0;
		a->keep_firing_since = (v = json_get(j, "keepFiringSince")) ? (int64_t)v->number : 0;
		a->value = (v = json_get(j, "value")) && v->type == JSON_NUMBER ? v->number : NAN;
		if (!strcmp(state, "firing")) {
			a->state = ALERT_FIRING;
			if (!a->fired_at)
				a->fired_at = a->active_at;
			/* It was sent before the restart: a long time ago as far as
			 * resending goes (so it is sent again now), but sent, so that
			 * resolving it is sent too. */
			a->last_sent_at = 1;
		} else {
			a->state = ALERT_PENDING;
			if (r->for_ms < e->cfg.for_grace_period_ms) {
				alert_inst_free(a);
				continue;
			}
			int64_t spent = down_at - a->active_at;
			int64_t remaining = r->for_ms - spent;
			if (remaining <= 0)
				;
			else if (remaining < e->cfg.for_grace_period_ms)
				a->active_at = now + e->cfg.for_grace_period_ms - r->for_ms;
			else
				a->active_at += now - down_at;
		}
		if (!a->labels || !alerts_push(r, a)) {
			alert_inst_free(a);
			break;
		}
		restored++;
	}
	json_doc_free(&doc);
	if (r->nalerts)
		qsort(r->alerts, r->nalerts, sizeof(*r->alerts), alert_cmp);
	if (restored)
		log_info("rules: restored %zu alert%s of \"%s\" from %s", restored,
			 restored == 1 ? "" : "s", r->name, KV_NS);
}

/* Is an alert pending? The engine thread, under eval_lock (it is the only
 * writer of the alerts, so it reads them without e->lock). */
static bool any_pending(const struct alert_engine *e)
{
	const struct ruleset *rs = e->rs;
	for (size_t i = 0; rs && i < rs->ngroups; i++)
		for (size_t j = 0; j < rs->groups[i].nrules; j++) {
			const struct rule *r = &rs->groups[i].rules[j];
			for (size_t k = 0; k < r->nalerts; k++)
				if (r->alerts[k]->state == ALERT_PENDING)
					return true;
		}
	return false;
}

/*
 * Records the last moment the engine ran. After a kill -9, the time since
 * counts as downtime, which a pending alert's `for` does not count
 * (restore_rule); so while an alert is pending the heartbeat is written
 * after every round, and a pending alert loses at most one evaluation
 * interval of its elapsed time (up to HEARTBEAT_EVERY_MS before).
 */
static void heartbeat(struct alert_engine *e, int64_t now)
{
	if (!e->kv || (now - e->heartbeat_written_ms < HEARTBEAT_EVERY_MS && !any_pending(e)))
		return;
	char v[32];
	int n = snprintf(v, sizeof(v), "%lld", (long long)now);
	kv_put(e->kv, KV_NS_META, "heartbeat", v, (size_t)n);
	e->heartbeat_written_ms = now;
}

/* ---- evaluation ----------------------------------------------------------------------- */

/* One element of a rule's result, with its final labels. */
struct cand {
	uint64_t fp;
	struct store_label *labels;      /* packed */
	size_t n;
	struct store_label *ann;         /* packed, alerting rules */
	size_t nann;
	double value;
};

static int cand_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct cand *)a)->fp, y = ((const struct cand *)b)->fp;
	return x < y ? -1 : x > y;
}

static void cands_free(struct cand *c, size_t n)
{
	for (size_t i = 0; c && i < n; i++) {
		free(c[i].labels);
		free(c[i].ann);
	}
	free(c);
}

static void rule_error(struct alert_engine *e, struct rule *r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void rule_error(struct alert_engine *e, struct rule *r, const char *fmt, ...)
{
	char msg[1200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&e->lock);
	bool was_ok = r->ok || !r->evaluated;
	r->ok = false;
	r->evaluated = true;
	free(r->last_error);
	r->last_error = strdup(msg);
	e->stats.eval_failures++;
	pthread_mutex_unlock(&e->lock);
	if (was_ok)
		log_warn("rules: %s: evaluating \"%s\": %s", r->key ? r->key : "", r->name, msg);
}

/* Scratch space for building candidates. */
struct builder {
	struct lset ls;
	struct buf tb[2];
	char **lvals;                    /* expanded label values, one per rule label */
};

static int builder_init(struct builder *b, const struct rule *r)
{
	b->ls.n = 0;
	buf_init(&b->tb[0], 1 << 16);
	buf_init(&b->tb[1], 1 << 16);
	b->lvals = calloc(r->nlabels + 1, sizeof(*b->lvals));
	return b->lvals ? 0 : -ENOMEM;
}

static void builder_fini(struct builder *b, const struct rule *r)
{
	for (size_t j = 0; b->lvals && j < r->nlabels; j++)
		free(b->lvals[j]);
	free(b->lvals);
	buf_fini(&b->tb[0]);
	buf_fini(&b->tb[1]);
}

/*
 * One candidate from a result element (labels sl, value v): the element's
 * labels (without __name__ for alerts), the group's, the rule's (templated
 * for alerts), then alertname or __name__; for alerts the expanded
 * annotations plus extra ones the rule does not set itself. 0, or -1
 * after rule_error.
 */
static int make_cand(struct alert_engine *e, const struct group *g, struct rule *r,
		     struct builder *b, const struct promql_label *sl, size_t sn, double v,
		     const struct store_label *extra, size_t nextra, struct cand *c)
{
	struct tctx tc = { sl, sn, v, e };
	struct lset *ls = &b->ls;
	ls->n = 0;
	ls->overflow = false;
	for (size_t j = 0; j < sn; j++)
		if (r->kind == RULE_RECORD || strcmp(sl[j].name, "__name__"))
			lset_set(ls, sl[j].name, sl[j].value);
	for (size_t j = 0; j < g->nlabels; j++)
		lset_set(ls, g->labels[j].name, g->labels[j].value);
	for (size_t j = 0; j < r->nlabels; j++) {
		free(b->lvals[j]);
		b->lvals[j] = NULL;
		const char *val = r->labels[j].text;
		if (r->kind != RULE_RECORD && !alert_tmpl_is_static(r->labels[j].tmpl))
			val = b->lvals[j] = strdup(expand(&r->labels[j], &tc, &b->tb[0]));
		lset_set(ls, r->labels[j].name, val ? val : "");
	}
	lset_set(ls, r->kind == RULE_RECORD ? "__name__" : "alertname", r->name);
	if (ls->overflow) {
		rule_error(e, r, "more than %zu labels", ARRAY_LEN(ls->l));
		return -1;
	}
	lset_sort(ls);
	c->fp = labels_fp(ls->l, ls->n);
	c->labels = labels_pack(ls->l, ls->n);
	c->n = ls->n;
	c->value = v;
	if (!c->labels) {
		rule_error(e, r, "out of memory");
		return -1;
	}
	if (r->kind == RULE_RECORD || (!r->nann && !nextra))
		return 0;
	struct store_label al[80];
	char *avals[64];
	size_t an = 0, nval = 0;
	for (size_t j = 0; j < r->nann && nval < ARRAY_LEN(avals); j++) {
		avals[nval] = strdup(expand(&r->ann[j], &tc, &b->tb[1]));
		al[an++] = (struct store_label){ r->ann[j].name, avals[nval] ? avals[nval] : "" };
		nval++;
	}
	for (size_t j = 0; j < nextra && an < ARRAY_LEN(al); j++) {
		bool set = false;
		for (size_t k = 0; k < r->nann; k++)
			set |= !strcmp(r->ann[k].name, extra[j].name);
		if (!set)
			al[an++] = extra[j];
	}
	qsort(al, an, sizeof(al[0]), label_cmp);
	c->ann = labels_pack(al, an);
	c->nann = an;
	for (size_t j = 0; j < nval; j++)
		free(avals[j]);
	return 0;
}

/* Sorts the candidates and applies the duplicate and limit checks. 0, or -1
 * after rule_error. */
static int finish_cands(struct alert_engine *e, const struct group *g, struct rule *r,
			struct cand *c, size_t n)
{
	qsort(c, n, sizeof(*c), cand_cmp);
	for (size_t i = 1; i < n; i++) {
		if (c[i].fp == c[i - 1].fp) {
			rule_error(e, r, "vector contains metrics with the same labelset after applying "
				   "%s labels", r->kind == RULE_RECORD ? "rule" : "alert");
			return -1;
		}
	}
	if (g->limit > 0 && n > (size_t)g->limit) {
		rule_error(e, r, "exceeded limit of %lld with %zu %s", (long long)g->limit, n,
			   r->kind == RULE_RECORD ? "series" : "alerts");
		return -1;
	}
	return 0;
}

/* eval_expr for `LHS op number` rules: LHS from this round's shared
 * results, filtered by the rule's comparison. */
static ssize_t eval_shared(struct alert_engine *e, const struct group *g, struct rule *r,
			   int64_t t, const struct promql_source *src, struct cand **out)
{
	struct promql_error perr;
	const struct promql_result *res = share_eval(e->share, src, &e->query, r,
						     t - g->query_offset_ms, &perr);
	if (!res) {
		rule_error(e, r, "%s", perr.msg);
		return -1;
	}
	size_t n = 0;
	for (size_t i = 0; i < res->nseries; i++)
		n += res->series[i].npoints &&
		     share_cmp_match(r->cmp_op, res->series[i].points[0].v, r->cmp_val);
	if (r->kind == RULE_ALERT && n > ALERT_MAX_ALERTS_PER_RULE) {
		rule_error(e, r, "%zu alerts: more than the cap of %d per rule", n,
			   ALERT_MAX_ALERTS_PER_RULE);
		return -1;
	}
	struct cand *c = calloc(n + 1, sizeof(*c));
	struct builder *b = malloc(sizeof(*b));
	ssize_t rc = -1;
	size_t k = 0;
	if (!c || !b || builder_init(b, r) < 0) {
		if (b)
			builder_fini(b, r);
		free(b);
		b = NULL;
		rule_error(e, r, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < res->nseries; i++) {
		const struct promql_result_series *rs = &res->series[i];
		if (!rs->npoints || !share_cmp_match(r->cmp_op, rs->points[0].v, r->cmp_val))
			continue;
		if (make_cand(e, g, r, b, rs->labels, rs->nlabels, rs->points[0].v, NULL, 0,
			      &c[k]) < 0)
			goto out;
		k++;
	}
	if (finish_cands(e, g, r, c, k) < 0)
		goto out;
	rc = (ssize_t)k;
out:
	if (b)
		builder_fini(b, r);
	free(b);
	if (rc < 0) {
		cands_free(c, k);
		return -1;
	}
	*out = c;
	return rc;
}

/*
 * The result of r's expression at t as candidates with final labels (and,
 * for alerting rules, expanded annotations), sorted by fp. Returns the
 * count, or -1 after rule_error.
 */
static ssize_t eval_expr(struct alert_engine *e, const struct group *g, struct rule *r,
			 int64_t t, struct cand **out)
{
	*out = NULL;
	struct promql_result res;
	struct promql_error perr;
	memset(&res, 0, sizeof(res));
	const struct promql_source *src = e->rsrc ? rules_source_get(e->rsrc) : &e->src;
	if (r->lhs && e->share)
		return eval_shared(e, g, r, t, src, out);
	if (promql_eval_instant(src, &e->query, r->expr, t - g->query_offset_ms, &res,
				&perr) < 0) {
		rule_error(e, r, "%s", perr.msg);
		return -1;
	}
	size_t n = res.type == PROMQL_SCALAR ? 1 : res.type == PROMQL_VECTOR ? res.nseries : 0;
	if (res.type != PROMQL_SCALAR && res.type != PROMQL_VECTOR) {
		promql_result_fini(&res);
		rule_error(e, r, "rule result is not a vector or scalar");
		return -1;
	}
	if (r->kind == RULE_ALERT && n > ALERT_MAX_ALERTS_PER_RULE) {
		promql_result_fini(&res);
		rule_error(e, r, "%zu alerts: more than the cap of %d per rule", n,
			   ALERT_MAX_ALERTS_PER_RULE);
		return -1;
	}
	struct cand *c = calloc(n + 1, sizeof(*c));
	struct builder *b = malloc(sizeof(*b));
	ssize_t rc = -1;
	if (!c || !b || builder_init(b, r) < 0) {
		if (b)
			builder_fini(b, r);
		free(b);
		b = NULL;
		rule_error(e, r, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		static const struct promql_label none[1];
		bool scalar = res.type == PROMQL_SCALAR;
		double v = scalar ? res.scalar :
			   res.series[i].npoints ? res.series[i].points[0].v : NAN;
		if (make_cand(e, g, r, b, scalar ? none : res.series[i].labels,
			      scalar ? 0 : res.series[i].nlabels, v, NULL, 0, &c[i]) < 0)
			goto out;
	}
	if (finish_cands(e, g, r, c, n) < 0)
		goto out;
	rc = (ssize_t)n;
out:
	promql_result_fini(&res);
	if (b)
		builder_fini(b, r);
	free(b);
	if (rc < 0) {
		cands_free(c, n);
		return -1;
	}
	*out = c;
	return rc;
}

static void rule_ok(struct rule *r, int64_t t, double secs)
{
	r->ok = true;
	r->evaluated = true;
	free(r->last_error);
	r->last_error = NULL;
	r->last_eval_ms = t;
	r->eval_seconds = secs;
}

static void eval_record(struct alert_engine *e, const struct group *g, struct rule *r, int64_t t)
{
	int64_t t0 = mono_ns();
	struct cand *c;
	ssize_t n = eval_expr(e, g, r, t, &c);
	if (n < 0)
		return;
	struct out_series *out = calloc((size_t)n + 1, sizeof(*out));
	if (!out) {
		cands_free(c, (size_t)n);
		rule_error(e, r, "out of memory");
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		out[i] = (struct out_series){ c[i].fp, c[i].labels, c[i].n, c[i].value };
		c[i].labels = NULL;
	}
	cands_free(c, (size_t)n);
	pthread_mutex_lock(&e->lock);
	emit_outputs(e, r, out, (size_t)n, t - g->query_offset_ms);
	/* Shared left sides computed before this write that read what it
	 * wrote: compute them again. */
	share_cache_forget(e->share, r->name);
	rule_ok(r, t, (double)(mono_ns() - t0) / 1e9);
	e->stats.evaluations++;
	pthread_mutex_unlock(&e->lock);
}

static struct alert_inst *find_alert(struct rule *r, uint64_t fp)
{
	size_t lo = 0, hi = r->nalerts;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r->alerts[mid]->fp < fp)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < r->nalerts && r->alerts[lo]->fp == fp ? r->alerts[lo] : NULL;
}

/* ALERTS and ALERTS_FOR_STATE series of an active alert into o[*k]. */
static void alert_outputs(const struct alert_inst *a, struct out_series *o, size_t *k)
{
	struct store_label l[260];
	size_t n = 0;
	for (size_t i = 0; i < a->nlabels && n + 2 < ARRAY_LEN(l); i++)
		if (strcmp(a->labels[i].name, "alertstate") && strcmp(a->labels[i].name, "__name__"))
			l[n++] = a->labels[i];
	l[n++] = (struct store_label){ "__name__", "ALERTS_FOR_STATE" };
	qsort(l, n, sizeof(l[0]), label_cmp);
	o[*k] = (struct out_series){ labels_fp(l, n), labels_pack(l, n), n,
				     (double)a->active_at / 1000.0 };
	if (o[*k].labels)
		(*k)++;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(l[i].name, "__name__"))
			l[i].value = "ALERTS";
	l[n++] = (struct store_label){ "alertstate", alert_state_name(a->state) };
	qsort(l, n, sizeof(l[0]), label_cmp);
	o[*k] = (struct out_series){ labels_fp(l, n), labels_pack(l, n), n, 1 };
	if (o[*k].labels)
		(*k)++;
}

/*
 * The state machine of an alerting (or log) rule for the candidates c of
 * this evaluation at t (sorted by fp; consumed). Alerts to send go to sl.
 */
static void run_alerts(struct alert_engine *e, const struct group *g, struct rule *r, int64_t t,
		       struct sendlist *sl, struct cand *c, size_t n, int64_t t0)
{
	int64_t delay = e->cfg.resend_delay_ms;
	int64_t valid = 4 * (g->interval_ms > delay ? g->interval_ms : delay);

	pthread_mutex_lock(&e->lock);
	if (!r->restored)
		restore_rule(e, r, t);
	size_t nold = r->nalerts;
	for (size_t i = 0; i < n; i++) {
		struct alert_inst *a = find_alert(r, c[i].fp);
		if (a && a->state != ALERT_INACTIVE) {
			a->value = c[i].value;
			free(a->ann);
			a->ann = c[i].ann;
			a->nann = c[i].nann;
			c[i].ann = NULL;
			continue;
		}
		if (!a) {
			a = calloc(1, sizeof(*a));
			if (!a)
				continue;
			a->fp = c[i].fp;
			a->labels = c[i].labels;
			a->nlabels = c[i].n;
			c[i].labels = NULL;
			if (!alerts_push(r, a)) {
				alert_inst_free(a);
				continue;
			}
		}
		/* New, or a resolved one that came back: it starts over. */
		free(a->ann);
		a->ann = c[i].ann;
		a->nann = c[i].nann;
		c[i].ann = NULL;
		a->state = ALERT_PENDING;
		a->active_at = t;
		a->fired_at = a->resolved_at = a->last_sent_at = a->keep_firing_since = 0;
		free(a->note);
		a->note = NULL;
		a->value = c[i].value;
		r->dirty = true;
	}
	(void)nold;
	size_t nout = 0, keep = 0;
	struct out_series *out = calloc(2 * r->nalerts + 1, sizeof(*out));
	for (size_t i = 0; i < r->nalerts; i++) {
		struct alert_inst *a = r->alerts[i];
		struct cand key = { .fp = a->fp };
		bool present = n > 0 && bsearch(&key, c, n, sizeof(*c), cand_cmp) != NULL;
		if (!present) {
			bool keep_firing = false;
			if (a->state == ALERT_FIRING && r->keep_firing_ms > 0) {
				if (!a->keep_firing_since) {
					a->keep_firing_since = t;
					r->dirty = true;
				}
				keep_firing = t - a->keep_firing_since < r->keep_firing_ms;
			}
			if (a->state == ALERT_PENDING) {
				r->dirty = true;
				alert_inst_free(a);
				continue;
			}
			if (a->state == ALERT_FIRING && !keep_firing) {
				a->state = ALERT_INACTIVE;
				a->resolved_at = t;
				r->dirty = true;
			}
			if (a->state == ALERT_INACTIVE) {
				/* Resolved: kept and sent again every resend delay
				 * for RESOLVED_RETENTION_MS, then forgotten, as
				 * Prometheus does (resolvedRetention), so that a
				 * receiver that missed the first resolve still
				 * learns it. Not shown, no ALERTS series. */
				if (t - a->resolved_at > RESOLVED_RETENTION_MS) {
					alert_inst_free(a);
					continue;
				}
				if (a->resolved_at > a->last_sent_at || a->last_sent_at + delay < t) {
					send_add(e, sl, r, a, a->resolved_at);
					a->last_sent_at = t;
				}
				r->alerts[keep++] = a;
				continue;
			}
		} else if (a->keep_firing_since) {
			a->keep_firing_since = 0;
			r->dirty = true;
		}
		if (a->state == ALERT_PENDING && t - a->active_at >= r->for_ms) {
			a->state = ALERT_FIRING;
			a->fired_at = t;
			r->dirty = true;
		}
		/* Prometheus' needsSending: never pending; else when not sent for
		 * longer than the resend delay. */
		if (a->state == ALERT_FIRING && (!a->last_sent_at || a->last_sent_at + delay < t)) {
			send_add(e, sl, r, a, t + valid);
			a->last_sent_at = t;
		}
		if (out)
			alert_outputs(a, out, &nout);
		r->alerts[keep++] = a;
	}
	r->nalerts = keep;
	if (r->nalerts)
		qsort(r->alerts, r->nalerts, sizeof(*r->alerts), alert_cmp);
	if (out)
		emit_outputs(e, r, out, nout, t);
	rule_ok(r, t, (double)(mono_ns() - t0) / 1e9);
	e->stats.evaluations++;
	if (r->dirty)
		save_rule(e, r, t);
	pthread_mutex_unlock(&e->lock);
	cands_free(c, n);
}

static void eval_alert(struct alert_engine *e, const struct group *g, struct rule *r, int64_t t,
		       struct sendlist *sl)
{
	int64_t t0 = mono_ns();
	struct cand *c;
	ssize_t n = eval_expr(e, g, r, t, &c);
	if (n >= 0)
		run_alerts(e, g, r, t, sl, c, (size_t)n, t0);
}

/* Whether a log count's container matches the rule's selector (on the
 * labels name and container_id). */
static bool log_sel_match(const struct rule *r, const struct log_count *lc)
{
	for (size_t i = 0; i < r->nlog_sel; i++) {
		const struct store_matcher *m = &r->log_sel[i];
		const char *v = !strcmp(m->name, "name") ? lc->name :
				!strcmp(m->name, "container_id") || !strcmp(m->name, "id") ? lc->id : "";
		if (!store_matcher_match(m, v))
			return false;
	}
	return true;
}

/*
 * A log rule: the lines matching its pattern in the window (t - window, t]
 * counted per container by the log store; a container with at least count
 * of them is a candidate with labels name and container_id, value the
 * count, and the first matching line in the annotation first_line.
 */
static void eval_log(struct alert_engine *e, const struct group *g, struct rule *r, int64_t t,
		     struct sendlist *sl)
{
	int64_t t0 = mono_ns();
	if (!e->logs) {
		rule_error(e, r, "log rules need the container log store, and it is off "
			   "(logs.enabled: false)");
		return;
	}
	struct log_query q = { 0 };
	int64_t end = t - g->query_offset_ms;
	q.since_ns = (end - r->log_window_ms) * 1000000 + 1;
	q.until_ns = end * 1000000 + 1;
	q.regex = promql_regex_posix(r->log_re);
	q.stream = !r->log_stream ? 0 : !strcmp(r->log_stream, "stdout") ? 1 + LOGSTORE_STDOUT :
									  1 + LOGSTORE_STDERR;
	struct log_count *lc = NULL;
	size_t n = 0;
	bool partial = false;
	char err[512];
	int rc = logstore_count_by_container(e->logs, &q, &lc, &n, &partial, err, sizeof(err));
	if (rc < 0) {
		rule_error(e, r, "counting log lines: %s", rc == -EINVAL ? err : strerror(-rc));
		return;
	}
	if (partial)
		log_debug("rules: %s: the log scan cap ended the count early", r->name);
	struct cand *c = calloc(n + 1, sizeof(*c));
	struct builder *b = malloc(sizeof(*b));
	size_t k = 0;
	bool ok = c && b && builder_init(b, r) == 0;
	if (!ok)
		rule_error(e, r, "out of memory");
	for (size_t i = 0; ok && i < n; i++) {
		if ((int64_t)lc[i].count < r->log_count || !log_sel_match(r, &lc[i]))
			continue;
		struct promql_label l[2] = { { "container_id", lc[i].id }, { "name", lc[i].name } };
		struct store_label extra[1] = { { "first_line", lc[i].first_msg ? lc[i].first_msg : "" } };
		if (make_cand(e, g, r, b, l, lc[i].name[0] ? 2 : 1, (double)lc[i].count, extra, 1,
			      &c[k]) < 0) {
			ok = false;
			break;
		}
		k++;
	}
	if (ok && finish_cands(e, g, r, c, k) < 0)
		ok = false;
	logstore_counts_free(lc, n);
	if (b)
		builder_fini(b, r);
	free(b);
	if (!ok) {
		cands_free(c, k);
		return;
	}
	run_alerts(e, g, r, t, sl, c, k, t0);
}

/* Evaluates every rule of g at t, then hands the alerts to the sinks.
 * Caller holds eval_lock. */
static void eval_group(struct alert_engine *e, struct group *g, int64_t t)
{
	int64_t t0 = mono_ns();
	struct sendlist sl = { 0 };
	for (size_t i = 0; i < g->nrules; i++) {
		struct rule *r = &g->rules[i];
		if (r->kind == RULE_RECORD)
			eval_record(e, g, r, t);
		else if (r->kind == RULE_ALERT)
			eval_alert(e, g, r, t, &sl);
		else
			eval_log(e, g, r, t, &sl);
	}
	double secs = (double)(mono_ns() - t0) / 1e9;
	pthread_mutex_lock(&e->lock);
	g->last_eval_ms = t;
	g->eval_seconds = secs;
	pthread_mutex_unlock(&e->lock);
	for (size_t i = 0; i < e->nsinks && sl.n; i++)
		e->sinks[i].fn(e->sinks[i].arg, sl.msgs, sl.n, t);
	free(sl.msgs);
	arena_free(&sl.a);
}

/*
 * When a group runs. Samples reach the store once per collection tick, at
 * the tick's time, a few ms to a few tens of ms after it (collection takes
 * that long). A group run by a timer of its own reads whatever the last
 * tick stored: a sample that misses the run by a millisecond waits a whole
 * interval more, and every alert lags by the phase between the two clocks
 * plus the round's own time (up to an interval and a cycle in all; see
 * docs/BENCHMARKS.md, "rules").
 *
 * So while ticks arrive (alert_engine_data), a group runs right after the
 * tick that is due for it, at that tick's time: the evaluation time is the
 * time of the newest samples, all of which are in the store. Evaluations
 * stay an interval apart (the ticks are), so for and keep_firing_for time
 * as in Prometheus. The group's own timer stands by: it runs the group
 * only when the next tick is half a tick later than ticks usually arrive
 * (a stalled collector must not stall the rules), and groups shorter than
 * the tick run on it as well. The first tick after a timer run takes the
 * group back (at once; the collector's rhythm may have shifted after a
 * stall, and waiting for the old phase would delay every alert). Without
 * ticks (tests, alert_engine_eval) groups run at multiples of their
 * interval, as before.
 */
enum due_mode {
	DUE_SLOT,   /* the timer, no ticks: aligned slots */
	DUE_TIMER,  /* the timer while ticks arrive: only when the tick is late */
	DUE_DATA,   /* a tick was stored at t */
};

/* The tick rhythm the thread sees (under wake_lock when shared). */
struct ticks {
	int64_t step_ms;     /* between ticks; 0: none arrive */
	int64_t arrival_ms;  /* when the last one was reported (wall) */
};

static int64_t next_slot(int64_t t, int64_t interval)
{
	return (t / interval + 1) * interval;
}

/* Whether the ticks govern g: they come at least as often as it runs. */
static bool on_ticks(const struct group *g, const struct ticks *k)
{
	return k->step_ms > 0 && g->interval_ms >= k->step_ms;
}

/* When the timer may run g (ms). */
static int64_t timer_at(const struct group *g, const struct ticks *k)
{
	if (!on_ticks(g, k))
		return g->next_ms;
	int64_t late = k->arrival_ms + k->step_ms + k->step_ms / 2;
	return g->next_ms > late ? g->next_ms : late;
}

static bool group_due(const struct group *g, int64_t t, enum due_mode m, const struct ticks *k)
{
	if (m == DUE_SLOT)
		return g->next_ms <= t;
	if (m == DUE_TIMER)
		return timer_at(g, k) <= t;
	if (t <= g->last_eval_ms)
		return false; /* evaluation times only move forward */
	/* A tick early by up to half a tick still counts: the agent's ticks
	 * keep their grid, so one that ran late is followed by one that comes
	 * early, and skipping it would hold its samples for a whole interval. */
	int64_t tol = (g->interval_ms < k->step_ms ? g->interval_ms : k->step_ms) / 2;
	return g->next_ms - tol <= t || g->off_tick;
}

static void group_schedule(struct group *g, int64_t t, enum due_mode m)
{
	g->off_tick = m != DUE_DATA;
	if (m == DUE_SLOT)
		g->next_ms = next_slot(t, g->interval_ms);
	else
		g->next_ms = t + g->interval_ms;
}

/* Runs every group due at t in one round. Returns how many ran. */
static int eval_round(struct alert_engine *e, int64_t t, enum due_mode m, const struct ticks *k)
{
	int ran = 0;
	double slowest = 0;
	pthread_mutex_lock(&e->eval_lock);
	struct ruleset *rs = e->rs;
	for (size_t i = 0; rs && i < rs->ngroups; i++) {
		struct group *g = &rs->groups[i];
		if (!group_due(g, t, m, k)) {
			if (m == DUE_DATA && g->off_tick) {
				/* A tick older than the timer's run: follow the next. */
				g->next_ms = t + g->interval_ms;
				g->off_tick = false;
			}
			continue;
		}
		if (!ran) {
			if (e->rsrc)
				rules_source_round(e->rsrc, t);
			share_cache_clear(e->share);
		}
		eval_group(e, g, t);
		group_schedule(g, t, m);
		if (g->eval_seconds > slowest)
			slowest = g->eval_seconds;
		ran++;
	}
	if (ran) {
		pthread_mutex_lock(&e->lock);
		e->stats.last_cycle_seconds = slowest;
		pthread_mutex_unlock(&e->lock);
		heartbeat(e, t);
	}
	pthread_mutex_unlock(&e->eval_lock);
	return ran;
}

int alert_engine_eval(struct alert_engine *e, int64_t now)
{
	return eval_round(e, now, DUE_SLOT, &(struct ticks){ 0 });
}

void alert_engine_data(struct alert_engine *e, int64_t t_ms, int64_t step_ms)
{
	if (!e || t_ms <= 0)
		return;
	pthread_mutex_lock(&e->wake_lock);
	if (t_ms > e->data_ms) {
		e->data_ms = t_ms;
		e->data_step_ms = step_ms;
		e->data_arrival_ms = now_ms();
		e->data_new = true;
		pthread_cond_signal(&e->wake);
	}
	pthread_mutex_unlock(&e->wake_lock);
}

/* When the timer must look again (ms), or now + 1s without rules. */
static int64_t next_due(struct alert_engine *e, int64_t now, const struct ticks *k)
{
	int64_t next = now + 1000;
	pthread_mutex_lock(&e->eval_lock);
	for (size_t i = 0; e->rs && i < e->rs->ngroups; i++) {
		int64_t at = timer_at(&e->rs->groups[i], k);
		if (at < next)
			next = at;
	}
	pthread_mutex_unlock(&e->eval_lock);
	return next;
}

static void *engine_thread(void *arg)
{
	struct alert_engine *e = arg;
	pthread_mutex_lock(&e->wake_lock);
	while (!e->stop) {
		bool data = e->data_new;
		int64_t data_t = e->data_ms;
		struct ticks k = { e->data_step_ms, e->data_arrival_ms };
		e->data_new = false;
		pthread_mutex_unlock(&e->wake_lock);
		int64_t now = now_ms();
		/* Ticks count as arriving until three are missed. */
		if (k.step_ms <= 0 || now - k.arrival_ms >= 3 * k.step_ms)
			k.step_ms = 0;
		if (data && k.step_ms)
			eval_round(e, data_t, DUE_DATA, &k);
		eval_round(e, now_ms(), k.step_ms ? DUE_TIMER : DUE_SLOT, &k);
		now = now_ms();
		int64_t next = next_due(e, now, &k);
		pthread_mutex_lock(&e->wake_lock);
		if (e->stop || e->data_new || next <= now)
			continue;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t wait = next - now;
		ts.tv_sec += wait / 1000;
		ts.tv_nsec += (wait % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&e->wake, &e->wake_lock, &ts);
	}
	pthread_mutex_unlock(&e->wake_lock);
	return NULL;
}

int alert_engine_start(struct alert_engine *e)
{
	int rc = pthread_create(&e->thread, NULL, engine_thread, e);
	if (rc)
		return -rc;
	pthread_setname_np(e->thread, "rules");
	e->running = true;
	return 0;
}

/* ---- loading ------------------------------------------------------------------------- */

static struct rule *find_rule(struct ruleset *rs, const char *key, struct group **gout)
{
	for (size_t i = 0; rs && i < rs->ngroups; i++)
		for (size_t j = 0; j < rs->groups[i].nrules; j++)
			if (!strcmp(rs->groups[i].rules[j].key, key)) {
				if (gout)
					*gout = &rs->groups[i];
				return &rs->groups[i].rules[j];
			}
	return NULL;
}

/*
 * Moves the state of old's rules to the rules of nw with the same file,
 * group, kind and name. Rules that are gone end: their series get stale
 * markers, their firing alerts are sent resolved and their record is
 * deleted. Caller holds eval_lock and e->lock.
 */
static void carry_over(struct alert_engine *e, struct ruleset *old, struct ruleset *nw,
		       struct sendlist *sl, int64_t now)
{
	for (size_t i = 0; i < nw->ngroups; i++) {
		struct group *g = &nw->groups[i];
		for (size_t k = 0; old && k < old->ngroups; k++) {
			struct group *og = &old->groups[k];
			if (!strcmp(og->file, g->file) && !strcmp(og->name, g->name) &&
			    og->interval_ms == g->interval_ms) {
				g->next_ms = og->next_ms;
				g->last_eval_ms = og->last_eval_ms;
				g->eval_seconds = og->eval_seconds;
			}
		}
	}
	for (size_t i = 0; old && i < old->ngroups; i++) {
		for (size_t j = 0; j < old->groups[i].nrules; j++) {
			struct rule *o = &old->groups[i].rules[j];
			struct rule *n = find_rule(nw, o->key, NULL);
			if (!n) {
				emit_stale_all(e, o, now);
				for (size_t a = 0; a < o->nalerts; a++)
					if (o->alerts[a]->state == ALERT_FIRING && o->alerts[a]->last_sent_at)
						send_add(e, sl, o, o->alerts[a], now);
				if (e->kv)
					kv_del(e->kv, KV_NS, o->key);
				continue;
			}
			n->alerts = o->alerts;
			n->nalerts = o->nalerts;
			n->alerts_cap = o->alerts_cap;
			n->prev_out = o->prev_out;
			n->nprev_out = o->nprev_out;
			n->restored = o->restored;
			n->ok = o->ok;
			n->evaluated = o->evaluated;
			n->last_error = o->last_error;
			n->last_eval_ms = o->last_eval_ms;
			n->eval_seconds = o->eval_seconds;
			o->alerts = NULL;
			o->nalerts = o->alerts_cap = 0;
			o->prev_out = NULL;
			o->nprev_out = 0;
			o->last_error = NULL;
		}
	}
}

/* Deletes saved records of rules that no longer exist (first load only). */
static void saved_prune(struct alert_engine *e, struct ruleset *rs)
{
	struct saved_set *s = saved_of(e);
	for (size_t i = 0; s && e->kv && i < s->n; i++) {
		if (!find_rule(rs, s->r[i].key, NULL)) {
			log_info("rules: dropping the saved state of a rule that is gone (%s)",
				 s->r[i].key);
			kv_del(e->kv, KV_NS, s->r[i].key);
		}
	}
}

/* A reload that failed with why: the old rules keep running. Caller holds
 * load_lock. */
static void load_failed(struct alert_engine *e, const char *why)
{
	pthread_mutex_lock(&e->lock);
	snprintf(e->last_error, sizeof(e->last_error), "%s", why);
	e->stats.last_reload_ok = false;
	e->stats.last_reload_ms = now_ms();
	e->stats.reloads++;
	e->stats.reload_failures++;
	pthread_mutex_unlock(&e->lock);
}

void alert_engine_load_failed(struct alert_engine *e, const char *why)
{
	pthread_mutex_lock(&e->load_lock);
	load_failed(e, why);
	pthread_mutex_unlock(&e->load_lock);
}

/* Loads the files c names; on success they and c replace the engine's. */
static int load_with(struct alert_engine *e, const struct alert_rules_config *c, char *err,
		     size_t errsize)
{
	struct buf errs;
	buf_init(&errs, 1 << 20);
	size_t nerrs = 0;
	const char *paths[ALERT_MAX_RULE_FILES];
	for (size_t i = 0; i < c->nfiles; i++)
		paths[i] = c->files[i];
	struct ruleset *rs = ruleset_load(paths, c->nfiles, c->base_dir, c->eval_interval_ms, &errs,
					  &nerrs);
	int64_t now = now_ms();
	int rc = 0;
	if (!rs) {
		if (!nerrs && !errs.len)
			buf_puts(&errs, "out of memory\n");
		while (errs.len && errs.data[errs.len - 1] == '\n')
			errs.data[--errs.len] = '\0';
		snprintf(err, errsize, "%s", errs.len ? errs.data : "failed");
		load_failed(e, err);
		rc = -EINVAL;
		goto out;
	}
	struct sendlist sl = { 0 };
	pthread_mutex_lock(&e->eval_lock);
	pthread_mutex_lock(&e->lock);
	struct ruleset *old = e->rs;
	bool first = !e->stats.last_reload_ok_ms;
	if (c != &e->cfg)
		e->cfg = *c;
	carry_over(e, old, rs, &sl, now);
	e->rs = rs;
	e->stats.last_reload_ok = true;
	e->stats.last_reload_ms = e->stats.last_reload_ok_ms = now;
	e->stats.reloads++;
	e->stats.groups = rs->ngroups;
	e->stats.rules = rs->nrules;
	e->last_error[0] = '\0';
	pthread_mutex_unlock(&e->lock);
	pthread_mutex_unlock(&e->eval_lock);
	if (first)
		saved_prune(e, rs);
	for (size_t i = 0; i < e->nsinks && sl.n; i++)
		e->sinks[i].fn(e->sinks[i].arg, sl.msgs, sl.n, now);
	free(sl.msgs);
	arena_free(&sl.a);
	ruleset_free(old);
	if (err && errsize)
		err[0] = '\0';
	/* Wake the thread: new groups are due now. */
	pthread_mutex_lock(&e->wake_lock);
	pthread_cond_signal(&e->wake);
	pthread_mutex_unlock(&e->wake_lock);
out:
	buf_fini(&errs);
	return rc;
}

int alert_engine_load(struct alert_engine *e, char *err, size_t errsize)
{
	pthread_mutex_lock(&e->load_lock);
	int rc = load_with(e, &e->cfg, err, errsize);
	pthread_mutex_unlock(&e->load_lock);
	return rc;
}

int alert_engine_configure(struct alert_engine *e, const struct alert_rules_config *c, char *err,
			   size_t errsize)
{
	pthread_mutex_lock(&e->load_lock);
	int rc = load_with(e, c, err, errsize);
	pthread_mutex_unlock(&e->load_lock);
	return rc;
}

/* ---- the engine -------------------------------------------------------------------------- */

int alert_engine_new(struct alert_engine **out, const struct alert_engine_opts *o)
{
	struct alert_engine *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->cfg = *o->cfg;
	if (o->store) {
		e->pstore = (struct promql_store){ o->store, o->raw_retention_ms, 0 };
		promql_store_source(&e->pstore, &e->src);
	} else if (o->src) {
		e->src = *o->src;
	}
	if (o->query)
		e->query = *o->query;
	else
		promql_opts_defaults(&e->query);
	e->query.cancel = NULL;
	if (!o->no_cache && e->src.ops &&
	    (!(e->rsrc = rules_source_new(&e->src, o->raw_retention_ms)) ||
	     !(e->share = share_cache_new()))) {
		rules_source_free(e->rsrc);
		free(e);
		return -ENOMEM;
	}
	/* Reads come from the cache's memory: a read-ahead thread per range
	 * function would only add thread starts and contention for its lock. */
	if (e->rsrc)
		e->query.read_threads = 0;
	e->kv = o->kv;
	e->logs = o->logs;
	e->silenced = o->silenced;
	e->silenced_arg = o->silenced_arg;
	pthread_mutex_init(&e->lock, NULL);
	pthread_mutex_init(&e->eval_lock, NULL);
	pthread_mutex_init(&e->load_lock, NULL);
	pthread_mutex_init(&e->q_lock, NULL);
	pthread_mutex_init(&e->wake_lock, NULL);
	pthread_cond_init(&e->wake, NULL);
	saved_load(e);
	*out = e;
	return 0;
}

void alert_engine_free(struct alert_engine *e)
{
	if (!e)
		return;
	if (e->running) {
		pthread_mutex_lock(&e->wake_lock);
		e->stop = true;
		pthread_cond_signal(&e->wake);
		pthread_mutex_unlock(&e->wake_lock);
		pthread_join(e->thread, NULL);
		/* The last moment the state was known: downtime counts from here. */
		e->heartbeat_written_ms = 0;
		heartbeat(e, now_ms());
	}
	ruleset_free(e->rs);
	rules_source_free(e->rsrc);
	share_cache_free(e->share);
	saved_free(e);
	alert_engine_drain(e, NULL, NULL);
	pthread_mutex_destroy(&e->lock);
	pthread_mutex_destroy(&e->eval_lock);
	pthread_mutex_destroy(&e->load_lock);
	pthread_mutex_destroy(&e->q_lock);
	pthread_mutex_destroy(&e->wake_lock);
	pthread_cond_destroy(&e->wake);
	free(e);
}

int alert_engine_add_sink(struct alert_engine *e, alert_sink_fn fn, void *arg)
{
	/* Sinks are called with eval_lock held (or by a reload holding
	 * load_lock): taking both makes adding one safe at any time. */
	pthread_mutex_lock(&e->load_lock);
	pthread_mutex_lock(&e->eval_lock);
	int rc = 0;
	if (e->nsinks >= ALERT_MAX_SINKS) {
		rc = -ENOSPC;
	} else {
		e->sinks[e->nsinks].fn = fn;
		e->sinks[e->nsinks].arg = arg;
		e->nsinks++;
	}
	pthread_mutex_unlock(&e->eval_lock);
	pthread_mutex_unlock(&e->load_lock);
	return rc;
}

void alert_engine_set_silencer(struct alert_engine *e, alert_silenced_fn fn, void *arg)
{
	pthread_mutex_lock(&e->lock);
	e->silenced = fn;
	e->silenced_arg = arg;
	pthread_mutex_unlock(&e->lock);
}

void alert_engine_stats(struct alert_engine *e, struct alert_engine_stats *out)
{
	pthread_mutex_lock(&e->lock);
	*out = e->stats;
	out->firing = out->pending = 0;
	for (size_t i = 0; e->rs && i < e->rs->ngroups; i++) {
		const struct group *g = &e->rs->groups[i];
		for (size_t j = 0; j < g->nrules; j++)
			for (size_t k = 0; k < g->rules[j].nalerts; k++) {
				enum alert_state s = g->rules[j].alerts[k]->state;
				out->firing += s == ALERT_FIRING;
				out->pending += s == ALERT_PENDING;
			}
	}
	pthread_mutex_unlock(&e->lock);
	pthread_mutex_lock(&e->q_lock);
	out->samples_dropped = e->stats.samples_dropped;
	pthread_mutex_unlock(&e->q_lock);
}

void alert_engine_last_error(struct alert_engine *e, char *out, size_t size)
{
	pthread_mutex_lock(&e->lock);
	snprintf(out, size, "%s", e->last_error);
	pthread_mutex_unlock(&e->lock);
}
