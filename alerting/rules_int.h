/*
 * rules_int.h - what the parts of the rules engine share, private to
 * alerting/: a loaded rule set (rules.c parses it), the alert state the
 * evaluator (rules_eval.c) keeps in it and the JSON writers
 * (rules_json.c) read.
 *
 * Locking: struct alert_engine's lock guards every field marked "state"
 * below and the current rule set pointer; the evaluator holds eval_lock for
 * a whole group evaluation so that a reload swaps rule sets only between
 * groups. Everything else in a rule set is immutable once loaded.
 */
#ifndef MONITOR_ALERTING_RULES_INT_H
#define MONITOR_ALERTING_RULES_INT_H

#include "alerting/alerting.h"

#include <pthread.h>

enum rule_kind { RULE_ALERT, RULE_RECORD, RULE_LOG };
enum alert_state { ALERT_INACTIVE, ALERT_PENDING, ALERT_FIRING };

/* A label or annotation of a rule: its name and template. */
struct rule_kv {
	char *name;
	char *text;
	struct alert_tmpl *tmpl;
};

/* One alert of a rule: a label set the expression produced. */
struct alert_inst {
	uint64_t fp;                     /* of labels */
	struct store_label *labels;      /* sorted; one malloc block with the strings */
	size_t nlabels;
	struct store_label *ann;         /* one malloc block; NULL when none */
	size_t nann;
	enum alert_state state;
	double value;
	int64_t active_at, fired_at, resolved_at, last_sent_at, keep_firing_since;
	char *note;                      /* annotation "remediation" (alert_engine_note_sink); NULL: none */
};

#define ALERT_NOTE_NAME "remediation"
/* a's annotations with its note merged in (name order; the note replaces a
 * rule annotation of the same name) into out, which has room for
 * a->nann + 1. Returns how many. Strings stay a's. Caller holds the lock. */
size_t alert_annotations(const struct alert_inst *a, struct store_label *out);

/* A series a rule wrote at its last evaluation, so that one it no longer
 * writes gets a stale marker. */
struct out_series {
	uint64_t fp;
	struct store_label *labels;      /* one malloc block */
	size_t n;
	double v;                        /* the value written this time */
};

struct rule {
	enum rule_kind kind;
	char *name;                      /* alert, record or log_alert */
	char *expr_text;                 /* NULL for log rules */
	struct promql_expr *expr;
	int64_t for_ms, keep_firing_ms;
	struct rule_kv *labels;
	size_t nlabels;
	struct rule_kv *ann;
	size_t nann;
	int line;
	char *key;                       /* "file\tgroup\tkind\tname": state records */
	/* expr is `LHS <cmp> number` (rules_share.c): LHS is evaluated once per
	 * round for every rule with the same LHS, and the comparison applied. */
	struct promql_expr *lhs;
	char *lhs_key;                   /* LHS in canonical form */
	int cmp_op;                      /* enum share_cmp */
	double cmp_val;
	/* log_alert */
	char *log_match;
	struct promql_regex *log_re;
	char *log_container;             /* selector text or NULL */
	struct store_matcher *log_sel;
	size_t nlog_sel;
	int64_t log_count, log_window_ms;
	char *log_stream;                /* "stdout", "stderr" or NULL for both */

	/* state */
	struct alert_inst **alerts;      /* sorted by fp */
	size_t nalerts, alerts_cap;
	bool ok;                         /* health: false after an error */
	bool evaluated;
	char *last_error;
	int64_t last_eval_ms;
	double eval_seconds;
	struct out_series *prev_out;
	size_t nprev_out;
	bool restored;                   /* saved state was looked for */
	bool dirty;                      /* state changed: save it */
};

struct group {
	char *name;
	char *file;
	int line;
	int64_t interval_ms;
	int64_t query_offset_ms;
	int64_t limit;
	struct store_label *labels;      /* group labels: added to every rule's */
	size_t nlabels;
	struct rule *rules;
	size_t nrules;
	/* state */
	int64_t next_ms;                 /* evaluator thread only */
	bool off_tick;                   /* last run by the timer, not after a tick */
	int64_t last_eval_ms;
	double eval_seconds;
};

struct ruleset {
	struct group *groups;
	size_t ngroups;
	size_t nrules;
	struct arena arena;              /* names, texts */
};

/*
 * Loads and checks the files paths name (globs expanded, relative to
 * base_dir; default_interval_ms for groups without one) into a new rule set.
 * Every problem is appended to errs as "file:line: what\n". Returns the set
 * (NULL when there was any problem or no memory).
 */
struct ruleset *ruleset_load(const char *const *paths, size_t n, const char *base_dir,
			     int64_t default_interval_ms, struct buf *errs, size_t *nerrs);
void ruleset_free(struct ruleset *rs);
void alert_inst_free(struct alert_inst *a);

/* The variables rule templates may use. */
extern const char *const rule_tmpl_vars[];

/* ---- the engine (rules_eval.c) ---- */

struct saved_set;

struct sample_q {
	struct store_label *labels;      /* one malloc block */
	size_t n;
	int64_t t;
	double v;
};

struct alert_engine {
	struct alert_rules_config cfg;
	struct promql_store pstore;
	struct promql_source src;        /* the store (or a test's source) */
	struct rules_source *rsrc;       /* src with caches: what evaluation reads */
	struct share_cache *share;       /* shared left sides of this round */
	struct promql_opts query;
	struct kv *kv;
	struct logstore *logs;           /* log rules count here; NULL: they fail */
	alert_silenced_fn silenced;
	void *silenced_arg;
	struct {
		alert_sink_fn fn;
		void *arg;
	} sinks[ALERT_MAX_SINKS];
	size_t nsinks;

	pthread_mutex_t lock;            /* state, rs */
	pthread_mutex_t eval_lock;       /* one group evaluation at a time */
	pthread_mutex_t load_lock;       /* one reload at a time */
	struct ruleset *rs;
	struct alert_engine_stats stats;
	char last_error[4096];

	struct saved_set *saved;         /* state records read at the start */
	int64_t heartbeat_ms;            /* last evaluation before the start (saved) */
	int64_t heartbeat_written_ms;

	pthread_mutex_t q_lock;          /* the output queue */
	struct sample_q *q;
	size_t nq, qcap;

	pthread_t thread;
	bool running;
	pthread_mutex_t wake_lock;
	pthread_cond_t wake;
	bool stop;
	/* The newest tick the store holds (alert_engine_data), under wake_lock. */
	int64_t data_ms, data_step_ms, data_arrival_ms;
	bool data_new;
};

/* ---- what rules read (rules_source.c) ---- */

/* A caching PromQL source over inner for one evaluator thread: points of a
 * series are read once and then only what is new; selects are shared
 * within a round. */
struct rules_source;
struct rules_source *rules_source_new(const struct promql_source *inner, int64_t raw_retention_ms);
void rules_source_free(struct rules_source *rs);
const struct promql_source *rules_source_get(struct rules_source *rs);
/* A sample a rule wrote at t (labels sorted, __name__ among them): later
 * reads of this round see it before the store has it. */
void rules_source_add(struct rules_source *rs, const struct store_label *l, size_t n, int64_t t,
		      double v);
/* A new evaluation round at now: this round's selects and outputs are
 * forgotten. */
void rules_source_round(struct rules_source *rs, int64_t now);
void rules_source_stats(const struct rules_source *rs, uint64_t *hits, uint64_t *misses,
			size_t *points);

/* ---- rules sharing a threshold's left side (rules_share.c) ---- */

enum share_cmp { SHARE_EQ, SHARE_NE, SHARE_GT, SHARE_LT, SHARE_GE, SHARE_LE };
/* When expr (canonical text) is `LHS op number` with LHS binding tighter
 * than the comparison and an instant vector, fills r->lhs, lhs_key (from
 * arena a), cmp_op and cmp_val. Nothing happens otherwise. */
void share_split(struct rule *r, const char *canonical, struct arena *a);
bool share_cmp_match(int op, double v, double x);
struct share_cache;
/* The results of this round's shared left sides. */
struct share_cache *share_cache_new(void);
void share_cache_free(struct share_cache *c);
void share_cache_clear(struct share_cache *c);
/* Drops the results whose left side names metric (it was just written). */
void share_cache_forget(struct share_cache *c, const char *metric);
/* The result of r->lhs at t: evaluated once per round per key and time.
 * Returns it (owned by the cache until the next clear) or NULL with the
 * error in err. */
const struct promql_result *share_eval(struct share_cache *c, const struct promql_source *src,
				       const struct promql_opts *o, const struct rule *r, int64_t t,
				       struct promql_error *err);

/* The engine's generator URL for expr (external_url/graph?g0.expr=...). */
void rules_generator_url(const struct alert_engine *e, const char *expr, struct buf *out);
const char *alert_state_name(enum alert_state s);

#endif
