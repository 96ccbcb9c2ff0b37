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
/* Appends labels (or annotations) as one JSON object {"name":"value",...},
 * in the order given, as Alertmanager's API writes them. */
void alert_labels_json(struct buf *out, const struct store_label *l, size_t n);

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

/* ---- the default rule pack (pack.c) --------------------------------------- */

/* alerting/rules/containers.yml as built into the binary (NUL-terminated;
 * *len, when not NULL, gets its length). */
const char *alert_pack_text(size_t *len);
/* Writes the pack to path (atomically, only when the file differs), for the
 * rules engine to load like any rule file. 0, or -errno with why in err. */
int alert_pack_install(const char *path, char *err, size_t errsize);

/* ---- remediation (remediate.c) -------------------------------------------- */

/*
 * Restarts the container of a firing alert whose rule asks for it (label
 * action="restart"), through a callback the agent provides, at most
 * max_restarts_per_hour per container and min_interval apart; each restart
 * and the first refusal at the cap are recorded through ops->record. An
 * alert_sink_fn (alert_remediate); with a next sink set (the notifier's,
 * which the engine also feeds), the alerts it acted on are handed to it
 * again with an annotation "remediation" saying what was done. The
 * agent switches it on only with an admin token configured.
 */
#define ALERT_REMEDIATION_MAX_PER_HOUR 60
struct alert_remediation_config {
	bool enabled;                    /* remediation.enabled (true) */
	int max_restarts_per_hour;       /* remediation.max_restarts_per_hour (3), per container */
	int64_t min_interval_ms;         /* remediation.min_interval (5m) between two restarts */
	int64_t stop_timeout_s;          /* remediation.stop_timeout (10s) before SIGKILL */
};
void alert_remediation_config_defaults(struct alert_remediation_config *c);
/* Parses the remediation: mapping. 0, or -EINVAL with "file:line:col:
 * remediation.key: message" in err. */
struct ynode;
int alert_remediation_config_load(struct alert_remediation_config *c, const struct ynode *map,
				  const char *file, char *err, size_t errsize);

/* What the remediator needs from the agent; called on the remediator's
 * thread (or in alert_remediate when not threaded). ref is a 64-hex runtime
 * id or a container name. */
struct alert_remediation_ops {
	int (*restart)(void *arg, const char *ref, int64_t stop_timeout_s, char *msg,
		       size_t msgsize);     /* 0, or -errno with why in msg */
	void (*record)(void *arg, const char *ref, const char *name, const char *detail);
	void *arg;
};
struct alert_remediation_stats {
	uint64_t restarts, failures;     /* restarts done, and failed */
	uint64_t capped;                 /* refusals at the cap (recorded ones) */
	uint64_t silenced;               /* alerts not acted on: silenced */
};
struct alert_remediator;
/* threaded: restarts run on the remediator's own thread (the agent); false:
 * inside alert_remediate (tests). 0, -EINVAL, -ENOMEM. */
int alert_remediator_new(struct alert_remediator **out, const struct alert_remediation_config *cfg,
			 const struct alert_remediation_ops *ops, bool threaded);
void alert_remediator_free(struct alert_remediator *r);   /* NULL is fine; waits */
/* Before the engine starts: where alerts go on to, and what holds back. */
void alert_remediator_set_next(struct alert_remediator *r, alert_sink_fn next, void *arg);
void alert_remediator_set_silencer(struct alert_remediator *r, alert_silenced_fn fn, void *arg);
/* Keeps each container's restart times of the last hour in kv (namespace
 * "remediation") and loads those stored, so the cap holds across a restart
 * of the agent; kv NULL: memory only. Before the engine starts. */
void alert_remediator_set_store(struct alert_remediator *r, struct kv *kv, int64_t now_ms);
/* The alert_sink_fn; arg is the remediator. Never blocks on the runtime. */
void alert_remediate(void *arg, const struct alert_msg *alerts, size_t n, int64_t now_ms);
/* Waits until the queued restarts are done. */
void alert_remediator_flush(struct alert_remediator *r);
void alert_remediator_stats(struct alert_remediator *r, struct alert_remediation_stats *out);
/* The container an alert's labels name: the 64-hex id in the id label (a
 * cgroup path), else the name label. 0 or -ENOENT. */
int alert_remediation_target(const struct store_label *labels, size_t n, char *ref,
			     size_t refsize);

/* ---- templates (template.c) ------------------------------------------------ */

/*
 * The subset of Go's text/template that Prometheus rule annotations use
 * (template.c says which): $variables and .Fields resolved by the caller's
 * lookup callback, pipelines, humanize* and printf. Anything outside it is
 * refused at parse time with "template: line:col: ...". A parsed template is
 * immutable (any thread may execute it).
 */
enum alert_tmpl_kind { ALERT_TMPL_STR, ALERT_TMPL_NUM, ALERT_TMPL_MAP };
struct alert_tmpl_value {
	enum alert_tmpl_kind kind;
	const char *str;                 /* STR: the text (NULL reads as "") */
	double num;                      /* NUM */
};
/*
 * Resolves $var (or .Var with its first letter lowered: .Labels is
 * "labels") and, when field is not NULL, $var.field. A map variable asked
 * without a field answers kind ALERT_TMPL_MAP; a missing field of a map is
 * "" (Prometheus' missingkey=zero). Returns 0, or -ENOENT for an unknown
 * variable. Strings must stay valid until alert_tmpl_exec returns.
 */
typedef int (*alert_tmpl_lookup_fn)(void *arg, const char *var, const char *field,
				    struct alert_tmpl_value *out);
struct alert_tmpl;
/* Parses text. vars (NULL-terminated, may be NULL for any) names the
 * variables it may use, without "$". Returns 0 and *out (free with
 * alert_tmpl_free), or -EINVAL with "template: line:col: what" in err. */
int alert_tmpl_parse(const char *text, const char *const *vars, struct alert_tmpl **out,
		     char *err, size_t errsize);
/* Appends the expansion to out. Returns 0, or -EINVAL/-E2BIG with
 * "template: line:col: what" in err (out then holds a partial result). */
int alert_tmpl_exec(const struct alert_tmpl *t, alert_tmpl_lookup_fn lookup, void *arg,
		    struct buf *out, char *err, size_t errsize);
void alert_tmpl_free(struct alert_tmpl *t);            /* NULL is fine */
/* True when the template has no actions (its text is its expansion). */
bool alert_tmpl_is_static(const struct alert_tmpl *t);
/* A float as Go's fmt %v prints it ("1e+06", "0.5", "NaN", "+Inf"). */
void alert_go_float(struct buf *b, double v);

/* ---- rules (rules.c, rules_eval.c, rules_json.c) --------------------------- */

/*
 * Prometheus-format rule files (groups of alerting and recording rules, and
 * our log_alert rules), evaluated by the PromQL engine over the store on the
 * engine's own thread, so evaluation never delays collection.
 *
 * Outputs: recorded series, ALERTS and ALERTS_FOR_STATE samples are queued
 * for the tick thread (the store's only appender), which moves them into
 * the store with alert_engine_drain_store each tick. Alerts go to up to
 * ALERT_MAX_SINKS sinks after each group evaluation: firing ones when they
 * start firing and again every resend delay (ends_at_ms = now +
 * 4 * max(interval, resend delay)), resolved ones once when they resolve
 * (ends_at_ms = the resolve time). Alert state (pending and firing, their
 * times) is kept in the kv namespace "alerts" so a restart resumes it: a
 * firing alert keeps its starts_at (and is sent again as a repeat at the
 * first evaluation), a pending one keeps the time it had already spent
 * pending (the downtime does not count, as Prometheus' ALERTS_FOR_STATE
 * restore).
 */
#define ALERT_MAX_RULE_FILES 64        /* rule_files: entries */
#define ALERT_MAX_FILES_MATCHED 1024   /* files the globs may expand to */
#define ALERT_MAX_RULES 10000          /* rules over all files */
#define ALERT_MAX_EXTERNAL_LABELS 32
#define ALERT_MAX_SINKS 4
#define ALERT_MAX_ALERTS_PER_RULE 10000 /* a rule's alerts beyond this: an error */
#define ALERT_QUEUE_MAX_SAMPLES (1u << 20) /* queued for the store at most */

struct alert_rules_config {
	char files[ALERT_MAX_RULE_FILES][1024]; /* rule_files: paths or globs */
	size_t nfiles;
	char base_dir[1024];             /* relative paths are relative to it ("" = cwd) */
	int64_t eval_interval_ms;        /* rules.evaluation_interval (15s): groups without interval */
	int64_t resend_delay_ms;         /* rules.resend_delay (1m) */
	int64_t outage_tolerance_ms;     /* rules.outage_tolerance (1h): older state is not restored */
	int64_t for_grace_period_ms;     /* rules.for_grace_period (0) */
	struct {
		char name[128];
		char value[1024];
	} external_labels[ALERT_MAX_EXTERNAL_LABELS]; /* $externalLabels */
	size_t nexternal_labels;
	char external_url[1024];         /* rules.external_url; "" = http://<listen> */
};
/* Fills the defaults (no files). Plain data: copy freely, nothing to free. */
void alert_rules_config_defaults(struct alert_rules_config *c);

/* Checks rule files as `monitor rules check` does: every problem found is
 * appended to out as "file:line: what" lines. Returns the number of rules
 * in the files (>= 0) when there was no problem, else -(problems). */
int alert_rules_check(const char *const *paths, size_t n, struct buf *out);

struct alert_engine;
struct alert_engine_opts {
	const struct alert_rules_config *cfg; /* copied */
	struct store *store;             /* rules read it; NULL: src instead */
	int64_t raw_retention_ms;        /* as struct promql_store */
	const struct promql_source *src; /* when store is NULL (tests); ctx must outlive */
	const struct promql_opts *query; /* NULL: defaults */
	struct kv *kv;                   /* alert state; NULL: memory only */
	struct logstore *logs;           /* what log_alert rules count; NULL: they fail */
	alert_silenced_fn silenced;      /* NULL: nothing is silenced */
	void *silenced_arg;
	bool no_cache;                   /* read the source directly (tests, benchmarks) */
};
/* Makes an engine with no rules (call alert_engine_load). 0 or -ENOMEM. */
int alert_engine_new(struct alert_engine **out, const struct alert_engine_opts *o);
/* Stops the thread and frees everything. NULL is fine. */
void alert_engine_free(struct alert_engine *e);
/* Adds a sink (any time, any thread). 0 or -ENOSPC past ALERT_MAX_SINKS. */
int alert_engine_add_sink(struct alert_engine *e, alert_sink_fn fn, void *arg);
void alert_engine_set_silencer(struct alert_engine *e, alert_silenced_fn fn, void *arg);
/*
 * (Re)loads the rule files the config names. On success the new rules
 * replace the old ones (alerts of rules that keep their file, group and name
 * keep their state); on any error the old rules keep running and err holds
 * every problem ("file:line: what", one per line). The outcome is kept for
 * alert_engine_stats and the API. Any thread; reloads are serialised.
 * Returns 0 or -EINVAL.
 */
int alert_engine_load(struct alert_engine *e, char *err, size_t errsize);
/*
 * alert_engine_load with another config (a reload that re-read the agent's
 * config: its rule_files: and rules:): on success c (copied) becomes the
 * engine's config; on any error the old config and rules stay. Same returns.
 */
int alert_engine_configure(struct alert_engine *e, const struct alert_rules_config *c, char *err,
			   size_t errsize);
/* Records a reload that failed before the rule files (the config does not
 * load): why (copied) is reported as the last reload's error, as for a
 * broken rule file, and the old rules keep running. Any thread. */
void alert_engine_load_failed(struct alert_engine *e, const char *why);
/* An alert_sink_fn (arg: the engine) for what the remediator hands on: the
 * annotation "remediation" of each alert is kept on the engine's alert of
 * the same labels until it resolves, so /api/v1/alerts and resends show it. */
void alert_engine_note_sink(void *arg, const struct alert_msg *m, size_t n, int64_t now_ms);
/* Starts the evaluation thread. 0 or -errno. */
int alert_engine_start(struct alert_engine *e);
/* Evaluates every group whose time has come at now_ms (all of them the
 * first time), as the thread does; for tests with a controllable clock
 * (do not mix with alert_engine_start). Returns the number of groups run. */
int alert_engine_eval(struct alert_engine *e, int64_t now_ms);
/*
 * Tells the thread that the store now holds a collection tick's samples at
 * t_ms (what store_append_snapshot returned), ticks coming every step_ms:
 * groups that are due run right away at t_ms, so a sample is evaluated
 * within the round after its tick instead of waiting for a timer of the
 * engine's own (rules_eval.c, "When a group runs"). Call it after every
 * tick (the tick thread); NULL is fine. Without calls the groups run on
 * their own timer.
 */
void alert_engine_data(struct alert_engine *e, int64_t t_ms, int64_t step_ms);

/* Receives queued output samples (labels sorted, __name__ among them). */
typedef void (*alert_sample_fn)(void *arg, const struct store_label *labels, size_t n,
				int64_t t_ms, double v);
/* Hands every queued output sample to fn (NULL: drops them), oldest first.
 * Returns how many. */
size_t alert_engine_drain(struct alert_engine *e, alert_sample_fn fn, void *arg);
/* alert_engine_drain into the store: the tick thread calls it every tick. */
size_t alert_engine_drain_store(struct alert_engine *e, struct store *st);

struct alert_engine_stats {
	bool last_reload_ok;
	int64_t last_reload_ms;          /* of the last attempt */
	int64_t last_reload_ok_ms;       /* of the last success */
	uint64_t reloads, reload_failures;
	size_t groups, rules;
	uint64_t evaluations, eval_failures; /* rule evaluations */
	double last_cycle_seconds;       /* the slowest group of the last round */
	size_t firing, pending;
	uint64_t samples_dropped;        /* queue full */
};
void alert_engine_stats(struct alert_engine *e, struct alert_engine_stats *out);
/* The last reload error ("" after a success). */
void alert_engine_last_error(struct alert_engine *e, char *out, size_t size);

/* Filters of GET /api/v1/rules (all NULL/0: everything). */
struct alert_rules_filter {
	int type;                        /* 0 all, 1 alerting, 2 recording */
	const char *const *names, *const *groups, *const *files;
	size_t nnames, ngroups, nfiles;
	bool exclude_alerts;
};
/* Appends the "data" object of GET /api/v1/rules ({"groups":[...]}) and of
 * GET /api/v1/alerts ({"alerts":[...]}) in Prometheus' shapes, plus
 * "silenced" on each alert. Any thread. */
void alert_engine_rules_json(struct alert_engine *e, const struct alert_rules_filter *f,
			     int64_t now_ms, struct buf *out);
void alert_engine_alerts_json(struct alert_engine *e, int64_t now_ms, struct buf *out);

/* ---- notifications (notify*.c) --------------------------------------------- */

/*
 * The notifier: Alertmanager's route tree, grouping, inhibition and
 * notification log on top of the alerts the rules engine hands over
 * (notify_sink is an alert_sink_fn), a persistent queue in the kv store
 * (namespaces "notify_queue" and "notify_log") and one delivery thread per
 * integration (receiver x <vendor>_configs entry), so a hanging endpoint
 * holds one thread and one connection. Vendors: webhook (Alertmanager v4
 * JSON, HMAC-SHA256 signed), alertmanager (POST /api/v2/alerts on
 * Prometheus' schedule), slack, discord, msteams, telegram, mattermost,
 * googlechat, dingtalk, wecom, feishu, pagerduty, ntfy. Secrets stay in
 * memory: never logged, never returned by the API, never queued.
 */
struct ynode;
struct notify_config;
struct notifier;

/* Whether key is a top-level config key of the notifier: route, receivers,
 * inhibit_rules, templates. */
bool notify_config_key(const char *key);
/* Parses one such node into *cfg (created on the first call; free with
 * notify_config_free). 0, or -EINVAL with "file:line:col: key: what". */
int notify_config_load(struct notify_config **cfg, const struct ynode *n, const char *file,
		       char *err, size_t errsize);
/* After the whole file: every route names a defined receiver, templates
 * parse. cfg NULL is fine. 0 or -EINVAL with the message in err. */
int notify_config_check(struct notify_config *cfg, const char *file, char *err, size_t errsize);
void notify_config_free(struct notify_config *cfg);   /* NULL is fine */
/* Whether an integration option holds a secret (url, secret, bot_token,
 * routing_key, token). */
bool notify_config_secret_key(const char *key);

struct notify_opts {
	struct kv *kv;                   /* queue and log; NULL: memory only */
	alert_silenced_fn silenced;      /* NULL: nothing is silenced */
	void *silenced_arg;
	const char *external_url;        /* links in messages; may be NULL */
	bool no_threads;                 /* tests: drive with notify_tick/notify_deliver */
	uint64_t seed;                   /* jitter; 0: from the clock */
};
/* Makes a notifier over cfg (borrowed: must outlive it), loads the queue
 * and log from kv and, unless no_threads, starts its threads. 0 or -errno. */
int notify_new(struct notifier **out, const struct notify_config *cfg,
	       const struct notify_opts *o);
/* Stops the threads (aborting transfers in flight; queued notifications
 * stay in kv) and frees. NULL is fine. */
void notify_free(struct notifier *n);
/* The alert_sink_fn (arg: the struct notifier *). Copies and returns. */
void notify_sink(void *arg, const struct alert_msg *alerts, size_t n, int64_t now_ms);
/* Tests (no_threads): takes what the sink received, flushes due groups and
 * Alertmanager resends at now_ms into the queue. Returns jobs queued. */
size_t notify_tick(struct notifier *n, int64_t now_ms);
/* Tests (no_threads): one delivery attempt for the first due job of every
 * integration at now_ms. Returns attempts made. */
size_t notify_deliver(struct notifier *n, int64_t now_ms);

#define NOTIFY_LATENCY_BUCKETS 12
struct notify_stats {
	size_t queued;                   /* notifications waiting */
	uint64_t latency_counts[NOTIFY_LATENCY_BUCKETS + 1]; /* cumulative; last is +Inf */
	double latency_sum_s;
	uint64_t latency_count;
};
extern const double notify_latency_le[NOTIFY_LATENCY_BUCKETS];
/* Queue length and the histogram of enqueue-to-delivery latency. */
void notify_get_stats(struct notifier *n, struct notify_stats *out);
/* Calls fn for every receiver and result ("delivered", "retried", "failed",
 * "dropped") with its counter, receivers in config order. */
typedef void (*notify_count_fn)(void *arg, const char *receiver, const char *result,
				uint64_t count);
void notify_each_count(struct notifier *n, notify_count_fn fn, void *arg);
/* The "data" of GET /api/v1/notifications: receivers (integrations, no
 * secrets), queue, recent deliveries. limit caps the recent list. */
void notify_api_json(struct notifier *n, size_t limit, struct buf *out);
/* Sends a test notification through every integration of receiver now,
 * bypassing the queue, and appends a JSON array of the answers
 * ([{"integration","status","result","answer","error"}]). 0, -ENOENT
 * (no such receiver). Blocks for up to the integrations' timeouts. */
int notify_test(struct notifier *n, const char *receiver, struct buf *out);

/* ---- capacity forecasts (forecast*.c) ------------------------------------- */

/*
 * A thread that, every forecast.interval (as of the interval's multiples,
 * once the tick's data up to one is stored), reads every container's usage and
 * limit series from the store (memory working set vs memory limit, pids vs
 * pids.max, the filesystem behind each mount vs its capacity, CPU in cores
 * vs the CFS quota) and the host's (memory, filesystems), fits the models
 * of forecast_int.h and publishes an immutable table: the tick copies it
 * into its snapshot (forecast_emit), so /metrics shows it and the store
 * keeps it for PromQL and rules; the API reads it (forecast_container_json).
 * The fit never runs in the tick.
 */
#define FORECAST_MAX_HORIZONS 8
struct forecast_config {
	bool enabled;
	int64_t interval_ms;             /* refresh, 60s */
	int64_t window_ms;               /* linear fit range, 1h (predict_linear's [window]) */
	int64_t history_ms;              /* roll-ups read for Holt-Winters and regimes, 7d */
	int64_t max_horizon_ms;          /* exhaustion further out is +Inf, 30d */
	int64_t horizons_ms[FORECAST_MAX_HORIZONS]; /* predicted values at, 1h and 24h */
	size_t nhorizons;
	size_t min_points;               /* fewer since the last break: too_little_data, 10 */
};
void forecast_config_defaults(struct forecast_config *c);
struct ynode;
/* Parses the forecast: mapping. 0, or -EINVAL with "file:line:col: key:
 * message" in err. */
int forecast_config_load(struct forecast_config *c, const struct ynode *map, const char *file,
			 char *err, size_t errsize);

struct forecaster;
struct coll_sink;
/* Starts the refresh thread over st (which must outlive it). 0 or -errno.
 * With cfg->enabled false, *out is NULL and nothing runs. */
int forecast_start(struct forecaster **out, struct store *st, const struct forecast_config *cfg);
/* Creates one without a thread: refreshes happen by forecast_refresh (tests,
 * benchmark). */
int forecast_new(struct forecaster **out, struct store *st, const struct forecast_config *cfg);
/* Stops the thread and frees; NULL is fine. */
void forecast_stop(struct forecaster *f);
/* One refresh as of now_ms, published when done. 0 or -errno. Any thread
 * (not at the same time as the forecaster's own). */
int forecast_refresh(struct forecaster *f, int64_t now_ms);
/* Tells the thread that the tick at t_ms (ticks come every step_ms) is in
 * the store: refreshes are made as of the interval's slots once the data
 * up to them is stored. Tick thread, after storing; NULL f is fine. */
void forecast_data(struct forecaster *f, int64_t t_ms, int64_t step_ms);
/* Adds the newest table to the snapshot being built, as agent-level
 * samples carrying each container's labels, and the forecaster's own
 * monitor_forecast_* samples. Tick thread; NULL f is fine. */
void forecast_emit(struct forecaster *f, struct coll_sink *sink);
/* Writes the JSON "data" of GET /api/v1/containers/{id}/forecast for the
 * container whose id label (cgroup path) is id_label into out: 0, or
 * -ENOENT before the first refresh (the body says so). Any thread. */
int forecast_container_json(struct forecaster *f, const char *id_label, const char *id,
			    const char *name, struct buf *out);

/* The PromQL engine's forecast functions, handed to it in promql_opts. */
extern const struct promql_forecaster forecast_promql;

#endif
