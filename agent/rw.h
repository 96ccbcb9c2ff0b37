/*
 * rw.h - remote write 1.0 (docs/specs/prw/remote_write_spec.md): the agent
 * pushes its series to Prometheus, Thanos, Mimir or VictoriaMetrics.
 * Private to agent/.
 *
 * The store is the queue. Every endpoint keeps a cursor, the highest
 * timestamp it has sent, in the kv store (<data_dir>/state.db); its own
 * thread reads the samples after the cursor back from the store
 * (store_select / store_iter), a window at a time, hands them to parallel
 * shards (series hashed onto shards, so the samples of one series stay in
 * order) that send snappy-compressed WriteRequests, and moves the cursor
 * only once every shard has delivered its part. A backend outage therefore
 * keeps nothing in memory: the samples wait in the store (raw retention,
 * 3 days by default) up to queue_config.max_pending_samples, past which the
 * oldest are skipped and counted as dropped.
 *
 * Files: rw_config.c (the remote_write: and external_labels: sections),
 * rw_relabel.c (write_relabel_configs), rw_encode.c (protobuf-c messages
 * generated from rw_remote.proto / rw_types.proto, snappy), rw_send.c (the
 * threads, HTTP, retries and metrics). rw_send.c is the only one that
 * includes curl: like the notifiers, the sender is an outbound HTTP client.
 */
#ifndef MONITOR_RW_H
#define MONITOR_RW_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/util/util.h"
#include "storage/storage.h"

struct coll_sink;
struct agent_state;

#define RW_MAX_ENDPOINTS 16
#define RW_MAX_RELABEL 64      /* write_relabel_configs per endpoint */
#define RW_MAX_SOURCE_LABELS 16
#define RW_MAX_EXTERNAL 32     /* external labels */
#define RW_MAX_LABELS 128      /* labels of one series after relabelling */
#define RW_MAX_SAMPLES_PER_SEND 100000
#define RW_KV_NS "remote_write"

/* ---- write_relabel_configs (rw_relabel.c) -------------------------------- */

enum rw_action { RW_REPLACE, RW_KEEP, RW_DROP, RW_LABELDROP, RW_LABELKEEP, RW_LABELMAP };

/* One relabel rule as Prometheus has it. Strings owned (rw_relabel_fini). */
struct rw_relabel {
	enum rw_action action;
	char *source[RW_MAX_SOURCE_LABELS];
	size_t nsource;
	char *separator;         /* ";" */
	char *regex;             /* "(.*)", as written */
	regex_t re;              /* ^(regex)$, POSIX extended */
	bool re_ok;
	char *target;            /* replace, labelmap: the label written ($1 allowed for replace) */
	char *replacement;       /* "$1" */
};

/* Parses the action name ("replace", "keep", "drop", "labeldrop",
 * "labelkeep", "labelmap"); 0 or -EINVAL. */
int rw_action_parse(const char *s, enum rw_action *out);
/* Compiles r->regex (anchored at both ends, as Prometheus anchors RE2).
 * 0, or -EINVAL with regerror's message in err. */
int rw_relabel_compile(struct rw_relabel *r, char *err, size_t errsize);
void rw_relabel_fini(struct rw_relabel *r);

/* A mutable label set: names and values malloc'd, owned by the set. */
struct rw_lset {
	size_t n;
	char *name[RW_MAX_LABELS];
	char *value[RW_MAX_LABELS];
};
/* Adds or replaces name=value (copies both); an empty value removes the
 * label. 0, -ENOMEM, -E2BIG past RW_MAX_LABELS. */
int rw_lset_set(struct rw_lset *ls, const char *name, const char *value);
const char *rw_lset_get(const struct rw_lset *ls, const char *name);
/* Sorts by name (byte order, as the spec requires). */
void rw_lset_sort(struct rw_lset *ls);
void rw_lset_fini(struct rw_lset *ls);
/* Applies the rules in order to ls. Returns 1 to keep the series, 0 when a
 * rule dropped it (keep/drop, or no __name__ left), -errno on failure. */
int rw_relabel_apply(const struct rw_relabel *rules, size_t n, struct rw_lset *ls);

/* ---- configuration (rw_config.c) ---------------------------------------- */

struct rw_queue_config {
	int64_t capacity;              /* samples read from the store per round, at most */
	int64_t max_shards;            /* parallel senders */
	int64_t max_samples_per_send;  /* samples in one request */
	int64_t batch_send_deadline_ms;/* longest a sample waits before it is sent */
	int64_t min_backoff_ms, max_backoff_ms;
	bool retry_on_http_429;        /* true: 429 is retried like 5xx */
	int64_t max_pending_samples;   /* the backlog kept through an outage */
};

struct rw_endpoint_config {
	char *url;
	char *name;                    /* remote_name label; default: the host:port of url */
	int64_t remote_timeout_ms;
	struct rw_relabel relabel[RW_MAX_RELABEL];
	size_t nrelabel;
	struct rw_queue_config q;
	char *basic_user, *basic_password, *basic_password_file;
	char *bearer_token, *bearer_token_file;
	bool send_metadata;
	int64_t metadata_interval_ms;
	bool tls_insecure;             /* tls_config.insecure_skip_verify */
	char *ca_file;                 /* tls_config.ca_file */
};

struct rw_config {
	struct rw_endpoint_config ep[RW_MAX_ENDPOINTS];
	size_t nep;
	bool external_set;             /* external_labels: given (else host=<hostname>) */
	size_t nexternal;
	char *ext_name[RW_MAX_EXTERNAL];
	char *ext_value[RW_MAX_EXTERNAL];
};

/* Loads the top-level key n (remote_write: a list of endpoints, or
 * external_labels: a map) into *c, allocating it on first use. Returns 0,
 * or -EINVAL with "file:line:col: key: message" in err. */
int rw_config_load(struct rw_config **c, const struct ynode *n, const char *file, char *err,
		   size_t errsize);
/* Defaults of one endpoint (Prometheus' queue_config defaults). */
void rw_endpoint_defaults(struct rw_endpoint_config *e);
void rw_config_free(struct rw_config *c);     /* NULL is fine */

/* ---- encoding (rw_encode.c) --------------------------------------------- */

/* A growable byte vector. */
struct rw_bytes {
	uint8_t *p;
	size_t len, cap;
};
void rw_bytes_fini(struct rw_bytes *b);

/* The request under construction: series (labels borrowed from the
 * caller, sorted) with their samples (in time order), plus metadata. */
struct rw_req;
struct rw_req *rw_req_new(void);
void rw_req_free(struct rw_req *r);
void rw_req_reset(struct rw_req *r);
/* Starts a series with n labels (names[i]=values[i], sorted; the strings
 * must outlive the next rw_req_pack). 0 or -ENOMEM. */
int rw_req_series(struct rw_req *r, const char *const *names, const char *const *values,
		  size_t n);
/* Adds a sample to the series begun last. 0 or -ENOMEM. */
int rw_req_sample(struct rw_req *r, int64_t t_ms, double v);
/* Adds a metadata entry (type: MetricMetadata.MetricType; strings borrowed). */
int rw_req_metadata(struct rw_req *r, int type, const char *family, const char *help,
		    const char *unit);
size_t rw_req_samples(const struct rw_req *r);
/* Packs the WriteRequest (protobuf-c) and compresses it with snappy's block
 * format into out. raw_len gets the uncompressed size. 0 or -ENOMEM. */
int rw_req_pack(struct rw_req *r, struct rw_bytes *out, size_t *raw_len);
/* The inverse, for tests and the benchmark's receiver: uncompresses and
 * counts. Returns the number of samples (and series in *nseries), or
 * -EINVAL for a body that is not a snappy-compressed WriteRequest. */
ssize_t rw_decode_count(const void *body, size_t len, size_t *nseries, size_t *nmeta);

/* ---- the sender (rw_send.c) --------------------------------------------- */

struct rw;
/* The newest time the store holds completely (ms): rounds never read past
 * it, so a tick half appended is never half sent. */
typedef int64_t (*rw_upto_fn)(void *arg);

struct rw_start_args {
	const struct rw_config *cfg;   /* must outlive the sender */
	struct store *store;
	struct kv *kv;                 /* cursors; NULL: kept in memory (resend from now at start) */
	int64_t interval_ms;           /* the collection interval (pending estimates) */
	rw_upto_fn upto;
	void *upto_arg;
	const char *host_label;        /* default external label host=..., NULL: hostname */
};
/* Starts one thread per endpoint (shards start as needed). Returns NULL with
 * a logged message on failure; a config without endpoints returns NULL too
 * (nothing to do). */
struct rw *rw_start(const struct rw_start_args *a);
/* Stops every thread (requests in flight give up at once), saves the
 * cursors and frees. NULL is fine. */
void rw_stop(struct rw *rw);
/* Emits monitor_remote_write_* for every endpoint (tick thread). */
void rw_emit_metrics(struct rw *rw, struct coll_sink *sink);

/* Per-endpoint figures, for the metrics and the benchmark. */
struct rw_stats {
	uint64_t samples_sent, samples_failed, samples_dropped;
	uint64_t series_sent, requests, retries, bytes_sent, bytes_raw, metadata_sent;
	int64_t highest_sent_ms;       /* the cursor */
	int64_t newest_ms;             /* upto at the last round */
	uint64_t pending;              /* estimate */
	int shards;
	uint64_t cpu_ns;               /* CPU time of the endpoint's threads */
};
/* Copies endpoint i's figures; false past the last endpoint. Any thread. */
bool rw_endpoint_stats(struct rw *rw, size_t i, struct rw_stats *out);

#endif
