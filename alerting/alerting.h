/*
 * alerting.h - the public face of alerting/: rule evaluation, silences,
 * capacity forecasts and notifications.
 *
 * How the parts meet:
 *   rules (rules*.c) evaluate PromQL over the store and run the
 *   pending -> firing -> resolved state machine; every evaluation they hand
 *   the alerts that are firing or just resolved to the notifier in the shape
 *   Prometheus posts to Alertmanager (struct alert_msg below).
 *   silences (silence*.c) are kept in the state database; rules mark alerts
 *   silenced and the notifier drops silenced alerts, both through
 *   alert_silenced_fn so neither depends on the other's internals.
 *   the notifier (notify*.c) groups, routes, queues and delivers.
 *   forecasts (forecast*.c) fit per-series models over the store.
 *
 * Only the notifiers include curl/curl.h; SQLite is reached through
 * storage.h (struct kv for small state tables).
 *
 * Each part adds its own section below; keep sections self-contained.
 */
#ifndef MONITOR_ALERTING_H
#define MONITOR_ALERTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/util/util.h"
#include "storage/storage.h"

/* ---- the alert handed from rules to the notifier -------------------------- */

/*
 * One alert as Prometheus sends it to Alertmanager (POST /api/v2/alerts):
 * firing while ends_at_ms is in the future (the rules engine sets it to
 * now + 4 * max(evaluation interval, resend delay) and resends), resolved
 * once ends_at_ms <= now. labels are sorted by name and include alertname;
 * strings are owned by whoever built the array and need only live for the
 * duration of the call that receives it.
 */
struct alert_msg {
	const struct store_label *labels;
	size_t nlabels;
	const struct store_label *annotations;
	size_t nannotations;
	int64_t starts_at_ms;
	int64_t ends_at_ms;
	const char *generator_url;       /* may be NULL */
};

/* Whether an alert with these labels is silenced at now_ms; when it is and
 * id is not NULL, the silence's id is written there (NUL-terminated, at most
 * idsize bytes). Any thread. */
typedef bool (*alert_silenced_fn)(void *arg, const struct store_label *labels, size_t n,
				  int64_t now_ms, char *id, size_t idsize);

/* Receives the alerts of one evaluation round (firing and just-resolved);
 * must not block (queue and return). Any thread. */
typedef void (*alert_sink_fn)(void *arg, const struct alert_msg *alerts, size_t n, int64_t now_ms);

/* ---- silences (silence.c) ------------------------------------------------- */

/*
 * Alertmanager-style silences kept in the state database (kv namespace
 * "silences"), so they survive a restart. A silence mutes every alert whose
 * labels all match its matchers between startsAt and endsAt; expired ones
 * are kept ALERT_SILENCE_RETENTION_MS (Alertmanager's 120 h) for the list.
 * JSON in and out is Alertmanager's API v2 (postableSilence,
 * gettableSilence). All functions may be called from any thread.
 */
#define ALERT_SILENCE_ID_SIZE 40
#define ALERT_SILENCES_MAX 10000          /* stored at once, expired included */
#define ALERT_SILENCE_MAX_MATCHERS 64
#define ALERT_MATCHER_NAME_MAX 256
#define ALERT_MATCHER_VALUE_MAX 4096
#define ALERT_SILENCE_AUTHOR_MAX 256
#define ALERT_SILENCE_COMMENT_MAX 4096
#define ALERT_SILENCE_RETENTION_MS (120LL * 3600 * 1000)

/* One matcher: name=value, name!=value, name=~re, name!~re. A missing
 * label matches as "". Strings and regex owned by the matcher. */
struct alert_matcher {
	char *name;
	char *value;
	bool is_regex;
	bool is_equal;
	struct promql_regex *re;         /* is_regex: anchored RE2 syntax */
};
/* Fills m; 0, or -EINVAL (bad name, value too long, bad regex) with why in err. */
int alert_matcher_init(struct alert_matcher *m, const char *name, const char *value,
		       bool is_regex, bool is_equal, char *err, size_t errsize);
/* Parses amtool's form: name=value, name!=value, name=~re, name!~re; the
 * value may be double-quoted. 0 or -EINVAL with why in err. */
int alert_matcher_parse(const char *text, struct alert_matcher *m, char *err, size_t errsize);
void alert_matcher_fini(struct alert_matcher *m);  /* NULL is fine */
bool alert_matcher_match(const struct alert_matcher *m, const char *value);
/* Appends `name=~"value"` (value as a JSON string) to out. */
void alert_matcher_format(const struct alert_matcher *m, struct buf *out);

/* RFC 3339 to Unix ms (0 or -EINVAL) and back ("2026-11-29T18:00:00.250Z"). */
int alert_time_parse(const char *s, int64_t *out_ms);
void alert_time_format(int64_t ms, char *out, size_t size);

enum alert_silence_state { ALERT_SILENCE_ACTIVE, ALERT_SILENCE_PENDING, ALERT_SILENCE_EXPIRED,
			   ALERT_SILENCE__STATES };
enum alert_silence_state alert_silence_state_at(int64_t starts_at_ms, int64_t ends_at_ms,
						int64_t now_ms);
const char *alert_silence_state_name(enum alert_silence_state st); /* "active", ... */

struct alert_silences;
/* Loads the stored silences from kv (NULL: memory only) and drops those
 * past retention; max caps how many are kept (0: ALERT_SILENCES_MAX).
 * 0, or -errno with why in err. */
int alert_silences_open(struct alert_silences **out, struct kv *kv, size_t max, int64_t now_ms,
			char *err, size_t errsize);
void alert_silences_close(struct alert_silences *ss);   /* NULL is fine */
/*
 * Creates or updates a silence from an Alertmanager postableSilence:
 * {"matchers":[{"name","value","isRegex","isEqual"}], "startsAt", "endsAt",
 * "createdBy", "comment", optional "id"} and, our extension, "duration"
 * ("2h") instead of endsAt. createdBy and comment are required, at least
 * one matcher must not match "" and endsAt must be in the future. With an
 * id: the silence is updated in place when its matchers are unchanged and it
 * has not expired, else the old one expires and a new id is made. Writes
 * the id into id. 0, -EINVAL (err says why), -ENOENT (unknown id),
 * -ENOSPC (cap reached).
 */
int alert_silences_post(struct alert_silences *ss, const char *json, size_t len, int64_t now_ms,
			char *id, size_t idsize, char *err, size_t errsize);
/* Ends the silence now. 0, -ENOENT, -EALREADY (had expired). */
int alert_silences_expire(struct alert_silences *ss, const char *id, int64_t now_ms);
/* Appends the gettableSilences JSON array (active, pending, expired) to out;
 * filter (may be NULL) keeps those whose matcher values satisfy every
 * filter matcher, as Alertmanager's ?filter=. 0 or -E2BIG/-ENOMEM. */
int alert_silences_list_json(struct alert_silences *ss, int64_t now_ms,
			     const struct alert_matcher *filter, size_t nfilter, struct buf *out);
/* Appends one gettableSilence; 0 or -ENOENT. */
int alert_silence_get_json(struct alert_silences *ss, const char *id, int64_t now_ms,
			   struct buf *out);
/* Counts by state into counts[]; returns the total. */
size_t alert_silences_count(struct alert_silences *ss, int64_t now_ms,
			    size_t counts[ALERT_SILENCE__STATES]);
/* An alert_silenced_fn: arg is the struct alert_silences * (NULL: never). */
bool alert_silenced(void *arg, const struct store_label *labels, size_t n, int64_t now_ms,
		    char *id, size_t idsize);

#endif
