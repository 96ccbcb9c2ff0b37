/*
 * silence.c - Alertmanager-style silences: a set of label matchers and a
 * time window during which alerts whose labels all match are muted.
 *
 * A silence is pending before startsAt, active from startsAt until endsAt,
 * expired after; expiring one sets endsAt to now. The rules engine asks
 * alert_silenced (an alert_silenced_fn) for every alert it shows, so a
 * silenced alert is still evaluated and listed, marked silenced; the
 * notifier asks the same function and drops what is silenced. Nothing here
 * knows either of them.
 *
 * Silences live in memory behind a read-write lock (alert_silenced runs on
 * every evaluation, changes are rare) and every change is written through
 * to the state database (struct kv, namespace "silences", key = id, value =
 * the silence as JSON), so they survive a restart. Expired silences are
 * kept for ALERT_SILENCE_RETENTION_MS, as Alertmanager keeps them for 120 h,
 * then deleted. Inputs are Alertmanager's v2 shapes (postableSilence,
 * matchers {name, value, isRegex, isEqual}) and amtool's matcher text
 * (name=value, name!=value, name=~re, name!~re); regular expressions are
 * RE2 syntax anchored at both ends, as in Alertmanager and PromQL.
 */
#include "alerting/alerting.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define KV_NS "silences"
#define JSON_CAP (1u << 20)

struct silence {
	char id[ALERT_SILENCE_ID_SIZE];
	struct alert_matcher *matchers;
	size_t nmatchers;
	int64_t starts_at_ms, ends_at_ms, updated_at_ms;
	char *created_by;
	char *comment;
};

struct alert_silences {
	pthread_rwlock_t lock;
	struct kv *kv;               /* NULL: memory only */
	struct silence **list;       /* unordered */
	size_t n;
	size_t max;
};

/* ---- time ------------------------------------------------------------------ */

int alert_time_parse(const char *s, int64_t *out_ms)
{
	int Y, M, D, h, m, sec, n = 0;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &n) != 6 || !n)
		return -EINVAL;
	if (Y < 1970 || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return -EINVAL;
	s += n;
	int64_t frac_ms = 0;
	if (*s == '.') {
		int digits = 0;
		for (s++; *s >= '0' && *s <= '9'; s++, digits++)
			if (digits < 3)
				frac_ms = frac_ms * 10 + (*s - '0');
		if (!digits)
			return -EINVAL;
		for (; digits < 3; digits++)
			frac_ms *= 10;
	}
	long off = 0;
	if (*s == '+' || *s == '-') {
		int oh, om, k = 0;
		if (sscanf(s + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || s[1 + k] != '\0' || oh > 23 ||
		    om > 59)
			return -EINVAL;
		off = (oh * 3600L + om * 60L) * (*s == '-' ? -1 : 1);
	} else if ((*s != 'Z' && *s != 'z') || s[1] != '\0') {
		return -EINVAL;
	}
	struct tm tm = { .tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D,
			 .tm_hour = h, .tm_min = m, .tm_sec = sec };
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*out_ms = ((int64_t)t - off) * 1000 + frac_ms;
	return 0;
}

void alert_time_format(int64_t ms, char *out, size_t size)
{
	time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	int frac = (int)(ms - (int64_t)t * 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	if (frac)
		snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
	else
		snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ---- matchers ---------------------------------------------------------------- */

int alert_matcher_init(struct alert_matcher *m, const char *name, const char *value,
		       bool is_regex, bool is_equal, char *err, size_t errsize)
{
	memset(m, 0, sizeof(*m));
	if (!store_label_name_valid(name) || strlen(name) > ALERT_MATCHER_NAME_MAX) {
		snprintf(err, errsize, "matcher name \"%.64s\": expected a label name "
			 "([a-zA-Z_][a-zA-Z0-9_]*, at most %d bytes)", name ? name : "",
			 ALERT_MATCHER_NAME_MAX);
		return -EINVAL;
	}
	if (!value || strlen(value) > ALERT_MATCHER_VALUE_MAX) {
		snprintf(err, errsize, "matcher %s: the value is missing or longer than %d bytes",
			 name, ALERT_MATCHER_VALUE_MAX);
		return -EINVAL;
	}
	if (is_regex) {
		char rerr[256];
		m->re = promql_regex_new(value, rerr, sizeof(rerr));
		if (!m->re) {
			snprintf(err, errsize, "matcher %s=~\"%.64s\": %s", name, value, rerr);
			return -EINVAL;
		}
	}
	m->name = strdup(name);
	m->value = strdup(value);
	m->is_regex = is_regex;
	m->is_equal = is_equal;
	if (!m->name || !m->value) {
		alert_matcher_fini(m);
		snprintf(err, errsize, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

void alert_matcher_fini(struct alert_matcher *m)
{
	if (!m)
		return;
	free(m->name);
	free(m->value);
	promql_regex_free(m->re);
	memset(m, 0, sizeof(*m));
}

/* Reads a double-quoted value with Go's escapes (\" \\ \n \t) into out. */
static int unquote(const char *s, char *out, size_t size, const char **end)
{
	size_t o = 0;
	for (s++; *s && *s != '"'; s++) {
		char c = *s;
		if (c == '\\') {
			s++;
			c = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s;
			if (!c)
				return -EINVAL;
		}
		if (o + 1 >= size)
			return -E2BIG;
		out[o++] = c;
	}
	if (*s != '"')
		return -EINVAL;
	out[o] = '\0';
	*end = s + 1;
	return 0;
}

int alert_matcher_parse(const char *text, struct alert_matcher *m, char *err, size_t errsize)
{
	char name[ALERT_MATCHER_NAME_MAX + 1], value[ALERT_MATCHER_VALUE_MAX + 1];
	const char *p = text;
	memset(m, 0, sizeof(*m));
	while (*p == ' ')
		p++;
	size_t nlen = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
	if (!nlen || nlen > ALERT_MATCHER_NAME_MAX) {
		snprintf(err, errsize, "matcher \"%.64s\": expected name=value, name!=value, "
			 "name=~regex or name!~regex", text);
		return -EINVAL;
	}
	memcpy(name, p, nlen);
	name[nlen] = '\0';
	p += nlen;
	while (*p == ' ')
		p++;
	bool is_equal = true, is_regex = false;
	if (p[0] == '=' && p[1] == '~') {
		is_regex = true;
		p += 2;
	} else if (p[0] == '!' && p[1] == '~') {
		is_regex = true;
		is_equal = false;
		p += 2;
	} else if (p[0] == '!' && p[1] == '=') {
		is_equal = false;
		p += 2;
	} else if (p[0] == '=') {
		p++;
	} else {
		snprintf(err, errsize, "matcher \"%.64s\": expected =, !=, =~ or !~ after %s", text,
			 name);
		return -EINVAL;
	}
	while (*p == ' ')
		p++;
	if (*p == '"') {
		const char *end;
		int rc = unquote(p, value, sizeof(value), &end);
		while (rc == 0 && *end == ' ')
			end++;
		if (rc < 0 || *end) {
			snprintf(err, errsize, "matcher \"%.64s\": %s", text, rc == -E2BIG ?
				 "value too long" : "the quoted value does not end with \"");
			return -EINVAL;
		}
	} else {
		size_t vlen = strlen(p);
		while (vlen && p[vlen - 1] == ' ')
			vlen--;
		if (vlen > ALERT_MATCHER_VALUE_MAX) {
			snprintf(err, errsize, "matcher %s: value longer than %d bytes", name,
				 ALERT_MATCHER_VALUE_MAX);
			return -EINVAL;
		}
		memcpy(value, p, vlen);
		value[vlen] = '\0';
	}
	return alert_matcher_init(m, name, value, is_regex, is_equal, err, errsize);
}

bool alert_matcher_match(const struct alert_matcher *m, const char *value)
{
	if (!value)
		value = "";
	bool hit = m->is_regex ? promql_regex_match(m->re, value) : strcmp(m->value, value) == 0;
	return hit == m->is_equal;
}

void alert_matcher_format(const struct alert_matcher *m, struct buf *out)
{
	buf_puts(out, m->name);
	buf_puts(out, m->is_equal ? (m->is_regex ? "=~" : "=") : (m->is_regex ? "!~" : "!="));
	buf_put_json_str(out, m->value);
}

/* The value of name in labels (sorted or not), or "" when absent. */
static const char *label_value(const struct store_label *labels, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(labels[i].name, name))
			return labels[i].value ? labels[i].value : "";
	return "";
}

/* ---- one silence ------------------------------------------------------------------ */

static void silence_free(struct silence *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nmatchers; i++)
		alert_matcher_fini(&s->matchers[i]);
	free(s->matchers);
	free(s->created_by);
	free(s->comment);
	free(s);
}

enum alert_silence_state alert_silence_state_at(int64_t starts_at_ms, int64_t ends_at_ms,
						int64_t now_ms)
{
	if (ends_at_ms <= now_ms)
		return ALERT_SILENCE_EXPIRED;
	return starts_at_ms > now_ms ? ALERT_SILENCE_PENDING : ALERT_SILENCE_ACTIVE;
}

const char *alert_silence_state_name(enum alert_silence_state st)
{
	return st == ALERT_SILENCE_ACTIVE ? "active" : st == ALERT_SILENCE_PENDING ? "pending" :
	       "expired";
}

static bool silence_matches(const struct silence *s, const struct store_label *labels, size_t n)
{
	for (size_t i = 0; i < s->nmatchers; i++)
		if (!alert_matcher_match(&s->matchers[i], label_value(labels, n, s->matchers[i].name)))
			return false;
	return true;
}

/* Writes the silence as Alertmanager's gettableSilence. */
static void silence_json(const struct silence *s, int64_t now_ms, struct buf *b)
{
	char t[40];
	buf_puts(b, "{\"id\":");
	buf_put_json_str(b, s->id);
	buf_puts(b, ",\"status\":{\"state\":\"");
	buf_puts(b, alert_silence_state_name(alert_silence_state_at(s->starts_at_ms,
								    s->ends_at_ms, now_ms)));
	buf_puts(b, "\"},\"updatedAt\":\"");
	alert_time_format(s->updated_at_ms, t, sizeof(t));
	buf_puts(b, t);
	buf_puts(b, "\",\"matchers\":[");
	for (size_t i = 0; i < s->nmatchers; i++) {
		const struct alert_matcher *m = &s->matchers[i];
		buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
		buf_put_json_str(b, m->name);
		buf_puts(b, ",\"value\":");
		buf_put_json_str(b, m->value);
		buf_puts(b, m->is_regex ? ",\"isRegex\":true" : ",\"isRegex\":false");
		buf_puts(b, m->is_equal ? ",\"isEqual\":true}" : ",\"isEqual\":false}");
	}
	buf_puts(b, "],\"startsAt\":\"");
	alert_time_format(s->starts_at_ms, t, sizeof(t));
	buf_puts(b, t);
	buf_puts(b, "\",\"endsAt\":\"");
	alert_time_format(s->ends_at_ms, t, sizeof(t));
	buf_puts(b, t);
	buf_puts(b, "\",\"createdBy\":");
	buf_put_json_str(b, s->created_by);
	buf_puts(b, ",\"comment\":");
	buf_put_json_str(b, s->comment);
	buf_putc(b, '}');
}

static int json_time(const struct json *obj, const char *key, int64_t *out, char *err,
		     size_t errsize)
{
	const struct json *v = json_get(obj, key);
	if (!v || v->type == JSON_NULL)
		return -ENOENT;
	if (v->type != JSON_STRING || alert_time_parse(v->string, out) < 0) {
		snprintf(err, errsize, "%s: expected an RFC 3339 time such as "
			 "2026-11-29T18:00:00Z", key);
		return -EINVAL;
	}
	return 0;
}

static int json_text(const struct json *obj, const char *key, size_t max, char **out, char *err,
		     size_t errsize)
{
	const struct json *v = json_get(obj, key);
	if (!v || v->type == JSON_NULL) {
		*out = strdup("");
		return *out ? 0 : -ENOMEM;
	}
	if (v->type != JSON_STRING || strlen(v->string) > max) {
		snprintf(err, errsize, "%s: expected a string of at most %zu bytes", key, max);
		return -EINVAL;
	}
	*out = strdup(v->string);
	return *out ? 0 : -ENOMEM;
}

/*
 * Builds a silence from a postableSilence (or a stored gettableSilence)
 * object: matchers, startsAt, endsAt (or the extension "duration": "2h"),
 * createdBy, comment, id (kept in *s->id when given). Times absent are left
 * at 0 for the caller. Returns 0, or -EINVAL with the problem in err.
 */
static int silence_from_json(const struct json *obj, struct silence **out, char *err,
			     size_t errsize)
{
	if (!obj || obj->type != JSON_OBJECT) {
		snprintf(err, errsize, "expected a JSON object (a silence)");
		return -EINVAL;
	}
	struct silence *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	int rc = -EINVAL;
	const char *id = json_get_str(obj, "id");
	if (id && *id) {
		if (strlen(id) >= sizeof(s->id) || strspn(id, "0123456789abcdefABCDEF-") != strlen(id)) {
			snprintf(err, errsize, "id \"%.64s\": not a silence id", id);
			goto fail;
		}
		snprintf(s->id, sizeof(s->id), "%s", id);
	}
	const struct json *ms = json_get(obj, "matchers");
	if (!ms || ms->type != JSON_ARRAY || ms->count == 0) {
		snprintf(err, errsize, "matchers: expected a non-empty array of "
			 "{\"name\", \"value\", \"isRegex\", \"isEqual\"}");
		goto fail;
	}
	if (ms->count > ALERT_SILENCE_MAX_MATCHERS) {
		snprintf(err, errsize, "matchers: %zu given, at most %d allowed", ms->count,
			 ALERT_SILENCE_MAX_MATCHERS);
		goto fail;
	}
	s->matchers = calloc(ms->count, sizeof(*s->matchers));
	if (!s->matchers) {
		rc = -ENOMEM;
		goto fail;
	}
	for (const struct json *m = ms->child; m; m = m->next) {
		const struct json *re = json_get(m, "isRegex"), *eq = json_get(m, "isEqual");
		const char *name = json_get_str(m, "name"), *value = json_get_str(m, "value");
		if (m->type != JSON_OBJECT || !name || !value || (re && re->type != JSON_BOOL) ||
		    (eq && eq->type != JSON_BOOL)) {
			snprintf(err, errsize, "matchers[%zu]: expected {\"name\": string, \"value\": "
				 "string, \"isRegex\": bool, \"isEqual\": bool}", s->nmatchers);
			rc = -EINVAL; /* not the 0 of the matcher before (found by fuzzing) */
			goto fail;
		}
		rc = alert_matcher_init(&s->matchers[s->nmatchers], name, value,
					re && re->boolean, !eq || eq->boolean, err, errsize);
		if (rc < 0)
			goto fail;
		s->nmatchers++;
	}
	rc = -EINVAL;
	int r1 = json_time(obj, "startsAt", &s->starts_at_ms, err, errsize);
	int r2 = r1 == -EINVAL ? r1 : json_time(obj, "endsAt", &s->ends_at_ms, err, errsize);
	if (r1 == -EINVAL || r2 == -EINVAL)
		goto fail;
	const struct json *dur = json_get(obj, "duration");
	if (dur && dur->type != JSON_NULL) {
		int64_t d;
		if (r2 == 0) {
			snprintf(err, errsize, "give endsAt or duration, not both");
			goto fail;
		}
		if (dur->type != JSON_STRING || parse_duration_ms(dur->string, &d) < 0 || d <= 0) {
			snprintf(err, errsize, "duration: expected a duration such as 2h or 30m");
			goto fail;
		}
		/* Relative to startsAt, which the caller settles: kept negative. */
		s->ends_at_ms = -d;
	}
	if ((rc = json_text(obj, "createdBy", ALERT_SILENCE_AUTHOR_MAX, &s->created_by, err,
			    errsize)) < 0 ||
	    (rc = json_text(obj, "comment", ALERT_SILENCE_COMMENT_MAX, &s->comment, err,
			    errsize)) < 0)
		goto fail;
	json_time(obj, "updatedAt", &s->updated_at_ms, err, errsize);
	*out = s;
	return 0;
fail:
	silence_free(s);
	return rc;
}

static int make_id(char *out, size_t size)
{
	unsigned char r[16];
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -EIO;
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* UUID version 4 */
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
	snprintf(out, size, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12],
		 r[13], r[14], r[15]);
	return 0;
}

static bool same_matchers(const struct silence *a, const struct silence *b)
{
	if (a->nmatchers != b->nmatchers)
		return false;
	for (size_t i = 0; i < a->nmatchers; i++) {
		const struct alert_matcher *x = &a->matchers[i], *y = &b->matchers[i];
		if (strcmp(x->name, y->name) || strcmp(x->value, y->value) ||
		    x->is_regex != y->is_regex || x->is_equal != y->is_equal)
			return false;
	}
	return true;
}

/* ---- the set --------------------------------------------------------------------- */

static struct silence *find(const struct alert_silences *ss, const char *id)
{
	for (size_t i = 0; i < ss->n; i++)
		if (!strcmp(ss->list[i]->id, id))
			return ss->list[i];
	return NULL;
}

/* Writes s through to the database; memory stays authoritative when that fails. */
static int persist(struct alert_silences *ss, const struct silence *s)
{
	if (!ss->kv)
		return 0;
	struct buf b;
	buf_init(&b, JSON_CAP);
	silence_json(s, 0, &b);
	int rc = b.overflow ? -E2BIG : kv_put(ss->kv, KV_NS, s->id, b.data, b.len);
	buf_fini(&b);
	if (rc < 0)
		log_warn("silences: saving silence %s to the state database: %s; it holds "
			 "until the agent stops", s->id, strerror(-rc));
	return rc;
}

/* Drops silences expired longer than the retention ago. Write lock held. */
static void gc(struct alert_silences *ss, int64_t now_ms)
{
	for (size_t i = 0; i < ss->n;) {
		struct silence *s = ss->list[i];
		if (s->ends_at_ms + ALERT_SILENCE_RETENTION_MS > now_ms) {
			i++;
			continue;
		}
		if (ss->kv)
			kv_del(ss->kv, KV_NS, s->id);
		silence_free(s);
		ss->list[i] = ss->list[--ss->n];
	}
}

struct load_ctx {
	struct alert_silences *ss;
	size_t bad;
};

static int load_one(void *arg, const char *key, const void *val, size_t len)
{
	struct load_ctx *lc = arg;
	struct json_doc doc;
	char err[256];
	struct silence *s = NULL;
	if (json_parse(&doc, val, len, NULL) < 0) {
		lc->bad++;
		return 0;
	}
	int rc = silence_from_json(doc.root, &s, err, sizeof(err));
	json_doc_free(&doc);
	if (rc < 0 || strcmp(s->id, key) || s->ends_at_ms <= 0 || lc->ss->n >= lc->ss->max) {
		if (rc == 0)
			log_warn("silences: dropping stored silence %s: %s", key,
				 lc->ss->n >= lc->ss->max ? "too many silences" : "bad record");
		else
			log_warn("silences: dropping stored silence %s: %s", key, err);
		silence_free(s);
		lc->bad++;
		return 0;
	}
	lc->ss->list[lc->ss->n++] = s;
	return 0;
}

int alert_silences_open(struct alert_silences **out, struct kv *kv, size_t max, int64_t now_ms,
			char *err, size_t errsize)
{
	struct alert_silences *ss = calloc(1, sizeof(*ss));
	if (!ss)
		return -ENOMEM;
	ss->kv = kv;
	ss->max = max ? max : ALERT_SILENCES_MAX;
	ss->list = calloc(ss->max, sizeof(*ss->list));
	if (!ss->list) {
		free(ss);
		return -ENOMEM;
	}
	pthread_rwlock_init(&ss->lock, NULL);
	if (kv) {
		struct load_ctx lc = { .ss = ss };
		int rc = kv_each(kv, KV_NS, NULL, 0, load_one, &lc);
		if (rc < 0) {
			snprintf(err, errsize, "reading silences from the state database: %s",
				 strerror(-rc));
			alert_silences_close(ss);
			return rc;
		}
		gc(ss, now_ms);
		if (lc.bad)
			log_warn("silences: %zu stored silences could not be read and were skipped",
				 lc.bad);
	}
	*out = ss;
	return 0;
}

void alert_silences_close(struct alert_silences *ss)
{
	if (!ss)
		return;
	for (size_t i = 0; i < ss->n; i++)
		silence_free(ss->list[i]);
	free(ss->list);
	pthread_rwlock_destroy(&ss->lock);
	free(ss);
}

/* Alertmanager's rules for a silence that is to be stored. */
static int validate(const struct silence *s, int64_t now_ms, char *err, size_t errsize)
{
	bool selective = false;
	for (size_t i = 0; i < s->nmatchers; i++)
		selective |= !alert_matcher_match(&s->matchers[i], "");
	if (!selective) {
		snprintf(err, errsize, "at least one matcher must not match the empty string "
			 "(a silence may not match every alert)");
		return -EINVAL;
	}
	if (s->ends_at_ms <= now_ms) {
		snprintf(err, errsize, "endsAt is in the past");
		return -EINVAL;
	}
	if (s->ends_at_ms <= s->starts_at_ms) {
		snprintf(err, errsize, "endsAt must be after startsAt");
		return -EINVAL;
	}
	if (!*s->created_by) {
		snprintf(err, errsize, "createdBy is missing: who sets the silence?");
		return -EINVAL;
	}
	if (!*s->comment) {
		snprintf(err, errsize, "comment is missing: say why the alerts are silenced");
		return -EINVAL;
	}
	return 0;
}

int alert_silences_post(struct alert_silences *ss, const char *json, size_t len, int64_t now_ms,
			char *id, size_t idsize, char *err, size_t errsize)
{
	struct json_doc doc;
	size_t off = 0;
	struct silence *s = NULL;
	err[0] = '\0';
	if (json_parse(&doc, json, len, &off) < 0) {
		snprintf(err, errsize, "the body is not JSON (at byte %zu)", off);
		return -EINVAL;
	}
	int rc = silence_from_json(doc.root, &s, err, errsize);
	json_doc_free(&doc);
	if (rc < 0)
		return rc;
	/* A start in the past means now, as in Alertmanager. */
	if (!s->starts_at_ms || s->starts_at_ms < now_ms)
		s->starts_at_ms = now_ms;
	if (s->ends_at_ms < 0)
		s->ends_at_ms = s->starts_at_ms - s->ends_at_ms;
	else if (!s->ends_at_ms) {
		snprintf(err, errsize, "endsAt (or duration) is missing: when does the silence end?");
		silence_free(s);
		return -EINVAL;
	}
	s->updated_at_ms = now_ms;
	if ((rc = validate(s, now_ms, err, errsize)) < 0) {
		silence_free(s);
		return rc;
	}

	pthread_rwlock_wrlock(&ss->lock);
	gc(ss, now_ms);
	struct silence *old = s->id[0] ? find(ss, s->id) : NULL;
	if (s->id[0] && !old) {
		snprintf(err, errsize, "no silence with id %s", s->id);
		rc = -ENOENT;
		goto out;
	}
	if (old && alert_silence_state_at(old->starts_at_ms, old->ends_at_ms, now_ms) !=
		   ALERT_SILENCE_EXPIRED && same_matchers(old, s)) {
		/* Updated in place, as Alertmanager does when only times and
		 * text change; an active silence keeps its start. */
		if (alert_silence_state_at(old->starts_at_ms, old->ends_at_ms, now_ms) ==
		    ALERT_SILENCE_ACTIVE)
			s->starts_at_ms = old->starts_at_ms;
		for (size_t i = 0; i < ss->n; i++)
			if (ss->list[i] == old)
				ss->list[i] = s;
		silence_free(old);
	} else {
		if (ss->n >= ss->max) {
			snprintf(err, errsize, "%zu silences are stored already (the cap); expire "
				 "some first", ss->n);
			rc = -ENOSPC;
			goto out;
		}
		if (old && old->ends_at_ms > now_ms) {
			/* Other matchers: the old one ends, a new one begins. */
			old->ends_at_ms = now_ms;
			if (old->starts_at_ms > now_ms)
				old->starts_at_ms = now_ms;
			old->updated_at_ms = now_ms;
			persist(ss, old);
		}
		if ((rc = make_id(s->id, sizeof(s->id))) < 0) {
			snprintf(err, errsize, "no random bytes for an id");
			goto out;
		}
		ss->list[ss->n++] = s;
	}
	snprintf(id, idsize, "%s", s->id);
	persist(ss, s);
	s = NULL;
	rc = 0;
out:
	pthread_rwlock_unlock(&ss->lock);
	silence_free(s);
	return rc;
}

int alert_silences_expire(struct alert_silences *ss, const char *id, int64_t now_ms)
{
	pthread_rwlock_wrlock(&ss->lock);
	struct silence *s = find(ss, id);
	int rc = 0;
	if (!s)
		rc = -ENOENT;
	else if (s->ends_at_ms <= now_ms)
		rc = -EALREADY;
	if (rc == 0) {
		s->ends_at_ms = now_ms;
		if (s->starts_at_ms > now_ms)
			s->starts_at_ms = now_ms;
		s->updated_at_ms = now_ms;
		persist(ss, s);
	}
	pthread_rwlock_unlock(&ss->lock);
	return rc;
}

/* Alertmanager's order: active by end, then pending by start, then
 * expired, most recently ended first. */
static int order(const void *a, const void *b, void *arg)
{
	const struct silence *x = *(struct silence *const *)a, *y = *(struct silence *const *)b;
	int64_t now = *(const int64_t *)arg;
	enum alert_silence_state sx = alert_silence_state_at(x->starts_at_ms, x->ends_at_ms, now);
	enum alert_silence_state sy = alert_silence_state_at(y->starts_at_ms, y->ends_at_ms, now);
	if (sx != sy)
		return (int)sx - (int)sy;
	int64_t kx = sx == ALERT_SILENCE_ACTIVE ? x->ends_at_ms : sx == ALERT_SILENCE_PENDING ?
		     x->starts_at_ms : -x->ends_at_ms;
	int64_t ky = sy == ALERT_SILENCE_ACTIVE ? y->ends_at_ms : sy == ALERT_SILENCE_PENDING ?
		     y->starts_at_ms : -y->ends_at_ms;
	if (kx != ky)
		return kx < ky ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* Alertmanager's filter: every filter matcher must match the value the
 * silence has a matcher for under that name. */
static bool filter_ok(const struct silence *s, const struct alert_matcher *filter, size_t nfilter)
{
	for (size_t i = 0; i < nfilter; i++) {
		const char *v = NULL;
		for (size_t j = 0; j < s->nmatchers && !v; j++)
			if (!strcmp(s->matchers[j].name, filter[i].name))
				v = s->matchers[j].value;
		if (!alert_matcher_match(&filter[i], v))
			return false;
	}
	return true;
}

int alert_silences_list_json(struct alert_silences *ss, int64_t now_ms,
			     const struct alert_matcher *filter, size_t nfilter, struct buf *out)
{
	pthread_rwlock_rdlock(&ss->lock);
	struct silence **v = ss->n ? malloc(ss->n * sizeof(*v)) : NULL;
	if (ss->n && !v) {
		pthread_rwlock_unlock(&ss->lock);
		return -ENOMEM;
	}
	size_t n = 0;
	for (size_t i = 0; i < ss->n; i++)
		if (ss->list[i]->ends_at_ms + ALERT_SILENCE_RETENTION_MS > now_ms &&
		    filter_ok(ss->list[i], filter, nfilter))
			v[n++] = ss->list[i];
	if (n)
		qsort_r(v, n, sizeof(*v), order, &now_ms);
	buf_putc(out, '[');
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_putc(out, ',');
		silence_json(v[i], now_ms, out);
	}
	buf_putc(out, ']');
	pthread_rwlock_unlock(&ss->lock);
	free(v);
	return out->overflow ? -E2BIG : 0;
}

int alert_silence_get_json(struct alert_silences *ss, const char *id, int64_t now_ms,
			   struct buf *out)
{
	pthread_rwlock_rdlock(&ss->lock);
	const struct silence *s = find(ss, id);
	if (s)
		silence_json(s, now_ms, out);
	pthread_rwlock_unlock(&ss->lock);
	return s ? 0 : -ENOENT;
}

size_t alert_silences_count(struct alert_silences *ss, int64_t now_ms,
			    size_t counts[ALERT_SILENCE__STATES])
{
	for (int i = 0; i < ALERT_SILENCE__STATES; i++)
		counts[i] = 0;
	pthread_rwlock_rdlock(&ss->lock);
	size_t n = ss->n;
	for (size_t i = 0; i < n; i++)
		counts[alert_silence_state_at(ss->list[i]->starts_at_ms, ss->list[i]->ends_at_ms,
					      now_ms)]++;
	pthread_rwlock_unlock(&ss->lock);
	return n;
}

bool alert_silenced(void *arg, const struct store_label *labels, size_t n, int64_t now_ms,
		    char *id, size_t idsize)
{
	struct alert_silences *ss = arg;
	if (!ss)
		return false;
	bool hit = false;
	pthread_rwlock_rdlock(&ss->lock);
	for (size_t i = 0; i < ss->n && !hit; i++) {
		const struct silence *s = ss->list[i];
		if (s->starts_at_ms > now_ms || s->ends_at_ms <= now_ms ||
		    !silence_matches(s, labels, n))
			continue;
		hit = true;
		if (id && idsize)
			snprintf(id, idsize, "%s", s->id);
	}
	pthread_rwlock_unlock(&ss->lock);
	return hit;
}
