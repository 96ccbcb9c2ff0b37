/*
 * agent.h - the daemon's pieces as agent/ wires them: configuration, the
 * tick loop that owns collection, and the HTTP server that reads snapshots.
 * Private to agent/.
 */
#ifndef MONITOR_AGENT_H
#define MONITOR_AGENT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent/util/util.h"
#include "collectors/collector.h"
#include "storage/storage.h"
#include "alerting/alerting.h"

#define MONITOR_RELEASE "0.1.0"
/* `git describe` of the build (generated build/version.c). */
extern const char monitor_version[];

#define AGENT_DEFAULT_LISTEN "127.0.0.1:9838"
#define AGENT_DEFAULT_DATA_DIR "/var/lib/monitor"
#define AGENT_MAX_LABEL_ALLOW 64
#define AGENT_MAX_CGROUP_MATCH 32
#define AGENT_EVENTS_KEPT 10000

/* The logs: section: the tailer's settings and the log store's. */
struct logs_config {
	bool enabled;
	struct coll_log_config tail;
	struct logstore_config store;  /* dir is data_dir */
};
void config_logs_defaults(struct logs_config *c);
void config_logs_fini(struct logs_config *c);
/* logs: into c. 0, or -EINVAL with "file:line:col: key: message" in err
 * (config_logs.c). */
int config_logs_load(struct logs_config *c, const struct ynode *map, const char *file, char *err,
		     size_t errsize);
/* Opens <data_dir>/logs.db into st->logs and starts the tailer into *tail
 * (logs.c); on failure warns, leaves both NULL and returns -errno. */
struct agent_config;
struct agent_state;
int agent_logs_start(struct agent_config *cfg, struct agent_state *st, struct coll_logtail **tail);
/* Stops the tailer (its last batch stored), then closes the store. */
void agent_logs_stop(struct coll_logtail *tail, struct agent_state *st);
/* The log store's size and retention as agent-level series (tick thread). */
void agent_logs_metrics(struct agent_state *st, struct coll_sink *sink);

/* http: the HTTP server's limits and CORS (config.c, docs/monitor.yml). */
#define HTTP_CORS_MAX 32
struct http_config {
	int64_t timeout_ms;          /* http.timeout: a connection idle this long is closed */
	int64_t header_timeout_ms;   /* http.header_timeout: a request's headers must arrive within */
	uint32_t max_connections;    /* http.max_connections: at once, all clients */
	uint32_t max_connections_per_address; /* http.max_connections_per_address */
	uint32_t max_header_bytes;   /* http.max_header_bytes: past it, 431 */
	uint32_t max_body_bytes;     /* http.max_body_bytes: past it, 413 */
	char *cors_origins[HTTP_CORS_MAX]; /* http.cors_origins; none: no CORS */
	size_t ncors_origins;
};
/* The built-in limits (today's: 30 s idle, 30 s for headers, 256
 * connections, 32 per address, 64 KiB headers, 1 MiB bodies, no CORS). */
void config_http_defaults(struct http_config *c);

struct agent_config {
	char config_path[PATH_MAX];
	char listen[256];
	char data_dir[PATH_MAX];
	char host_root[PATH_MAX];
	int64_t interval_ms;
	enum log_level log_level;
	bool docker_enabled;
	char docker_socket[PATH_MAX];
	int64_t docker_timeout_ms;
	bool percpu;
	bool cgroup_iterator;     /* collect.cgroup_iterator: the BPF walk when it loads */
	char *label_allow[AGENT_MAX_LABEL_ALLOW];
	size_t nlabel_allow;
	int64_t rescan_interval_ms;
	char *cgroup_match[AGENT_MAX_CGROUP_MATCH]; /* discovery.cgroups; none: every container */
	size_t ncgroup_match;
	struct store_config storage; /* storage: section; dir is data_dir */
	struct promql_opts query;    /* query: section (timeout, max_samples, ...) */
	struct ebpf_config ebpf;     /* ebpf: section, --no-ebpf */
	int64_t keep_exited_ms;      /* discovery.keep_exited */
	int64_t docker_action_timeout_ms; /* docker.action_timeout */
	int64_t fs_interval_ms;      /* collect.fs_usage_interval; 0: off */
	int64_t fs_walk_budget;      /* collect.fs_walk_budget */
	struct logs_config logs;     /* logs: section (config_logs.c) */
	char admin_token_file[PATH_MAX]; /* auth.admin_token_file; "" for none */
	char read_token_file[PATH_MAX];  /* auth.read_token_file; "" for none */
	char basic_auth_file[PATH_MAX];  /* auth.basic_auth_file; "" for none */
	bool listen_remote;          /* listen_remote / --allow-remote (access.c) */
	struct tls_files { char cert_file[PATH_MAX], key_file[PATH_MAX]; } tls; /* tls: ("": plain HTTP) */
	struct http_config http;     /* http: limits and CORS */
	bool network;                /* collect.network */
	int64_t process_interval_ms; /* collect.process_interval; 0: off */
	struct notify_config *notify; /* route:, receivers:, inhibit_rules:, templates: (alerting/notify_config.c); NULL: none */
	struct forecast_config forecast; /* forecast: section (alerting.h) */
	struct rw_config *rw;        /* remote_write: and external_labels: (rw_config.c); NULL: none */
	struct alert_rules_config rules; /* rule_files: and rules: (config_rules.c) */
	bool default_rules;          /* default_rules: load the built-in pack (true) */
	struct alert_remediation_config remediation; /* remediation: (alerting/remediate.c) */
};

/* Fills the built-in defaults. */
void config_defaults(struct agent_config *c);
/* Loads a YAML config file over c. On error returns -EINVAL (or -errno) and
 * writes "file:line:col: key: message" into err. */
int config_load(struct agent_config *c, const char *path, char *err, size_t errsize);
void config_fini(struct agent_config *c);
/* rule_files: or rules: (n->key says which) into c. 0, or -EINVAL with
 * "file:line:col: key: message" in err (config_rules.c). */
int config_rules_load(struct alert_rules_config *c, const struct ynode *n, const char *file,
		      char *err, size_t errsize);

/*
 * Publishes snapshots from the tick thread to readers. current is replaced
 * under the lock; readers take a reference under the same lock and render
 * outside it.
 */
struct alert_silences;
struct gz_body;
struct agent_state {
	pthread_mutex_t lock;
	struct snapshot *current;
	uint64_t scrapes;        /* atomic */
	uint64_t header_timeouts; /* atomic: connections cut by http.header_timeout (http_guard.c) */
	/* The gzipped /metrics of one snapshot (http_metrics.c): Prometheus
	 * asks for gzip on every scrape, and compressing is costlier than
	 * rendering. NULL: none yet. */
	pthread_mutex_t gz_lock;
	struct gz_body *gz[2];   /* by format: text 0.0.4, OpenMetrics */
	uint64_t snap_seq;       /* seq of the last published snapshot (under lock) */
	struct coll_event_log *events; /* the event timeline, any thread */
	struct store *store;     /* the time-series store, any thread; NULL when off */
	struct kv *kv;           /* <data_dir>/state.db (alerts, silences, queue); NULL: memory only */
	struct notifier *notifier; /* alert notifications; NULL when nothing is routed */
	struct forecaster *forecast; /* capacity forecasts, any thread; NULL when off */
	struct logstore *logs;   /* <data_dir>/logs.db: container logs, any thread; NULL when off */
	const struct promql_opts *query; /* PromQL limits (query: section); NULL: defaults */
	int64_t raw_retention_ms; /* storage.retention.raw: PromQL reads roll-ups past it */
	struct docker_client *docker;  /* for actions; NULL when disabled */
	int64_t action_timeout_ms;     /* docker.action_timeout */
	char *admin_token;       /* actions need it; NULL: actions refused */
	size_t admin_token_len;
	char *read_token;        /* reads need it (or the admin token); NULL: open */
	size_t read_token_len;
	struct access_users *users; /* auth.basic_auth_file (access.c); NULL: none */
	const struct tls_files *tls; /* tls: for http_start; NULL or "": plain HTTP */
	const struct http_config *http; /* http: limits and CORS; NULL: the defaults */
	const struct cg_layout *layout; /* where container cgroups are, for /proc readers */
	struct alert_silences *silences; /* alerting.h; NULL: the silence API answers 503 */
	struct alert_engine *rules; /* alerting.h; NULL: rule evaluation is off (no store) */
	struct alert_remediator *remediator; /* NULL: remediation is off (no token) */
	const struct agent_config *cfg; /* as started (flags applied): what a reload re-reads */
};
/* A reference to the newest snapshot, or NULL before the first tick. */
struct snapshot *agent_snapshot(struct agent_state *st);

/*
 * A request as handlers see it (http.c). arg is the rest of the path after
 * a prefix route; body is the request body (capped at http.max_body_bytes). Handlers write
 * the response body into resp->body, may set resp->type (default text/plain)
 * and return the HTTP status. They run on the connection's own thread.
 */
struct MHD_Connection;
struct http_req {
	struct MHD_Connection *conn;
	const char *method, *url, *arg;
	const char *body;
	size_t body_len;
	struct agent_state *st;
	bool admin_ok;           /* access.c saw admin credentials (token or basic) */
};
struct http_resp {
	struct buf body;
	const char *type;
	bool gzip_ok;            /* compress when the client accepts gzip */
	bool gzipped;            /* body is gzip already (the handler did it) */
	/* A streamed answer (chunked) instead of body: stream is called on the
	 * connection's thread, may block, returns the bytes it put in buf or
	 * -1 at the end; stream_free(stream_arg) runs when the connection ends
	 * (api_logs.c's follow mode). */
	ssize_t (*stream)(void *arg, uint64_t pos, char *buf, size_t max);
	uint64_t stream_len;     /* the stream's length when known; 0: chunked */
	void (*stream_free)(void *arg);
	void *stream_arg;
	/* A body kept elsewhere, sent without a copy (the kept gzip of
	 * /metrics): ext_len bytes at ext, valid until ext_free(ext_arg). */
	const char *ext;
	size_t ext_len;
	void (*ext_free)(void *arg);
	void *ext_arg;
	/* CORS (cors.c, set by http.c): the Access-Control-Allow-Origin value
	 * or NULL; credentials allowed; a preflight's answer. */
	const char *cors_origin;
	bool cors_credentials, cors_preflight;
};
typedef int (*http_handler)(struct http_req *req, struct http_resp *resp);
struct http_route {
	const char *method;
	const char *path;
	bool prefix;
	http_handler handler;
};
/* A path may hold one "*" for one non-empty path segment (the id in
 * /api/v1/containers/<*>/ports), which the handler gets as req->arg. */
/* Query-string argument or header, or NULL. */
const char *http_query(const struct http_req *req, const char *key);
const char *http_header(const struct http_req *req, const char *name);
/* Writes a Prometheus-style JSON error body; returns status. */
int http_error(struct http_resp *resp, int status, const char *type, const char *msg);

/* Access control (access.c). The class of a route: who may ask it. */
enum access_class { ACCESS_PUBLIC, ACCESS_READ, ACCESS_SENSITIVE, ACCESS_ADMIN };
enum access_class access_classify(const char *method, const char *url);
struct sockaddr;
/* True for 127/8, ::1, ::ffff:127/104 and Unix sockets. */
bool access_addr_is_loopback(const struct sockaddr *sa);
/* 0 when addr ("host:port") is loopback only or allow_remote; else -EPERM
 * (or -EINVAL) with a message naming the address and the flag in err. */
int access_listen_check(const char *addr, bool allow_remote, char *err, size_t errsize);
/* Checks req (its peer address and bearer token) against the route class:
 * 0 to go on, or an HTTP status with a JSON error written into resp. */
int access_check(struct http_req *req, enum access_class cls, struct http_resp *resp);
/* Warns (log_warn) when path is readable by other users; what names it. */
void access_warn_perms(const char *path, const char *what);
/* Users of auth.basic_auth_file: "user:crypt-hash[:admin]" lines. */
struct access_users;
/* Loads path into *out. 0, or -errno with "path:line: message" in err. */
int access_users_load(const char *path, struct access_users **out, char *err, size_t errsize);
void access_users_free(struct access_users *u);
/* 2 when user:password is an admin user's, 1 a reader's, 0 neither; the
 * password is checked with crypt(3) (yescrypt, $6$, ...) in any case. */
int access_users_check(const struct access_users *u, const char *user, size_t user_len,
		       const char *password);
/* At start-up: the listen check, loading auth.read_token_file into
 * *read_token (free with access_token_free), auth.basic_auth_file into
 * *users (access_users_free) and the permission warnings. 0, or -errno with
 * the message on stderr. */
int access_start_check(const struct agent_config *cfg, char **read_token,
		       struct access_users **users);
/* Wipes and frees a token; NULL is fine. */
void access_token_free(char *tok);

/* HTTP server (http.c). Binds addr ("host:port", "[v6]:port"); returns NULL
 * and logs a message naming the address on failure. */
struct http_server;
struct http_server *http_start(const char *addr, struct agent_state *st);
void http_stop(struct http_server *h);
/* Frees st's kept /metrics gzip body (http_metrics.c), after http_stop. */
void http_metrics_cache_free(struct agent_state *st);

/* /metrics formats beside text 0.0.4 (expo.c). */
enum expo_format { EXPO_TEXT, EXPO_OPENMETRICS, EXPO_PROTOBUF };
/* The format an Accept header asks for (highest q we speak; text 0.0.4 for
 * NULL, for nothing we speak, and on ties with it listed first). */
enum expo_format expo_negotiate(const char *accept);
/* "text", "openmetrics", "protobuf" (the ?format= override); 0 or -EINVAL. */
int expo_parse_format(const char *s, enum expo_format *out);
const char *expo_content_type(enum expo_format f);
/* Render s into out; 0 or -ENOMEM (out's cap). */
int snapshot_render_openmetrics(const struct snapshot *s, struct buf *out);
/* The OpenMetrics text a part at a time (the /metrics stream), as
 * snapshot_render_text_some: whole samples (a histogram's label set at a
 * time) from c on until out holds at least want bytes; true once "# EOF"
 * is written. */
struct om_cursor {
	uint32_t f;              /* the family */
	size_t k;                /* its next sample in s->order; SIZE_MAX: header next */
	size_t sh, ch;           /* histograms: where the _sum and _count searches start */
	bool eof;
};
void om_cursor_init(struct om_cursor *c);
bool snapshot_render_openmetrics_some(const struct snapshot *s, struct om_cursor *c,
				      struct buf *out, size_t want);
int snapshot_render_protobuf(const struct snapshot *s, struct buf *out);
/* Renders s in format f into resp (type set, gzip allowed); returns the
 * HTTP status. Connection threads. */
int expo_render(const struct snapshot *s, enum expo_format f, struct http_resp *resp);

/* JSON for /api/v1/containers (api.c). Writes the body into out and returns
 * the HTTP status. */
int api_containers(const struct snapshot *s, const char *which, struct buf *out);
/* The container of s that which names (exact id, exact name, or a unique id
 * prefix of 4+ characters), or NULL. Points into s. */
const struct snap_container *api_find_container(const struct snapshot *s, const char *which);

/* GET /api/v1/containers/{id}/processes and .../ports (api_proc.c): read
 * /proc at request time. */
int api_processes(struct http_req *req, struct http_resp *resp);
/* GET /api/v1/containers/{id}/env (api_env.c): the first process's
 * environment, values of secret-looking names masked. */
int api_env(struct http_req *req, struct http_resp *resp);
/* True when an environment variable's name looks like it holds a secret. */
bool api_env_secret_name(const char *name);
int api_ports(struct http_req *req, struct http_resp *resp);
/* GET /api/v1/containers/{id}/forecast (api_forecast.c). */
int api_forecast(struct http_req *req, struct http_resp *resp);
/* The name of uid in /etc/passwd text, as getpwuid would find it. */
bool api_passwd_name(const char *passwd, uint32_t uid, char *out, size_t size);

/* Writes the lifecycle members of c's JSON object (",\"has_cgroup\":...",
 * exit code, health, ports, mounts, ...) into b (api_lifecycle.c). */
void api_put_lifecycle(struct buf *b, const struct snap_container *c);
/* Lifecycle endpoints (actions.c, events_api.c). */
int api_action(struct http_req *req, struct http_resp *resp);
int api_events(struct http_req *req, struct http_resp *resp);
/* The Prometheus HTTP API over the store (api_query.c). */
int api_query(struct http_req *req, struct http_resp *resp);
int api_query_range(struct http_req *req, struct http_resp *resp);
int api_series(struct http_req *req, struct http_resp *resp);
int api_labels(struct http_req *req, struct http_resp *resp);
int api_label_values(struct http_req *req, struct http_resp *resp);
int api_metadata(struct http_req *req, struct http_resp *resp);
int api_exemplars(struct http_req *req, struct http_resp *resp);
int api_buildinfo(struct http_req *req, struct http_resp *resp);
/* The rules engine in the agent (agent_rules.c): start after the store,
 * silences and notifier (sets st->rules; 0 also when storage is off),
 * reload (SIGHUP), stop (after HTTP, before the store), /metrics lines. */
int agent_rules_start(struct agent_config *cfg, struct agent_state *st);
/* Reload (SIGHUP, POST /-/reload): the config file's rule_files: and rules:
 * again, then the rule files; logged. 0, -ENOENT without an engine, or
 * -EINVAL/-ENOMEM with what is wrong in err (the old rules keep running). */
int agent_rules_reload(struct agent_state *st, char *err, size_t cap);
void agent_rules_stop(struct agent_state *st);
void agent_rules_metrics(struct alert_engine *e, struct coll_sink *sink);
/* The default rule pack among the rule files: written to
 * <data_dir>/default_rules.yml and added to cfg->rules unless
 * default_rules: false (default_rules.c). 0 or -errno (logged). */
int agent_default_rules(struct agent_config *cfg);
/* Remediation (remediation.c): *out is a running remediator restarting
 * containers through Docker and recording events, or NULL when off (no
 * admin token, or remediation.enabled: false). 0 or -errno (logged). */
int agent_remediation_start(struct alert_remediator **out, struct agent_state *st,
			    const struct alert_remediation_config *cfg);
/* monitor_remediation_* and monitor_silences on /metrics (remediation.c). */
void agent_remediation_metrics(struct agent_state *st, struct coll_sink *sink);
/* Once the rules engine runs: the remediator becomes its sink, and hands
 * what it did on to the notifier and back to the engine (remediation.c). */
void agent_remediation_follow(struct agent_state *st);
/* GET /api/v1/rules, GET /api/v1/alerts, POST /-/reload (api_rules.c). */
int api_rules(struct http_req *req, struct http_resp *resp);
int api_alerts(struct http_req *req, struct http_resp *resp);
int api_reload(struct http_req *req, struct http_resp *resp);
/* Container logs (api_logs.c): GET /api/v1/logs (with follow=1 a stream),
 * /api/v1/logs/patterns, /api/v1/logs/containers. */
int api_logs(struct http_req *req, struct http_resp *resp);
int api_logs_patterns(struct http_req *req, struct http_resp *resp);
int api_logs_containers(struct http_req *req, struct http_resp *resp);
/* GET /api/v1/notifications, POST /api/v1/notifications/test?receiver= (needs
 * the admin token), and the notifier's series on /metrics (notify_agent.c). */
int api_notifications(struct http_req *req, struct http_resp *resp);
int api_notify_test(struct http_req *req, struct http_resp *resp);
void agent_notify_metrics(struct notifier *n, struct coll_sink *sink);
/* Finds which in s: exact id, exact name (one with a cgroup before one
 * without), else an id prefix of 4+ characters. Returns how many
 * match; the first max go to out (pointers into s). */
size_t api_resolve(const struct snapshot *s, const char *which, const struct snap_container **out,
		   size_t max);
/* Writes the 409 body for an id prefix that matches n containers (list
 * holds the first min(n, API_MATCHES_LISTED)): errorType "ambiguous" and
 * "matches" [{id, name, state}]. Returns 409. */
#define API_MATCHES_LISTED 16
int api_ambiguous(struct buf *out, const char *which, const struct snap_container *const *list,
		  size_t n);
/* Parses since=/until= (unix seconds, RFC 3339, or a duration back from
 * now_ms) into unix ms; 0 or -EINVAL. */
int events_parse_since(const char *s, int64_t now_ms, int64_t *out_ms);
/* Reads the admin token from path: the file's first line, trimmed, 16 to
 * 4096 bytes. Returns the token (caller frees) or NULL with a message
 * naming the file in err. Warns when the file is readable by others. */
char *auth_load_token(const char *path, char *err, size_t errsize);
/* Constant-time comparison of a presented token with the configured one. */
bool auth_token_equal(const char *given, size_t given_len, const char *want, size_t want_len);
/* NULL when req may change state (access.c passed it as admin, or it carries
 * "Authorization: Bearer <admin token>"), else why not: disabled when no
 * admin token is configured, needs when no Authorization header came, else a
 * fixed message. The strings are static; any HTTP thread. */
const char *admin_refusal(const struct http_req *req, const char *disabled, const char *needs);

/* Silences in Alertmanager's API v2 shapes (api_silences.c): GET/POST
 * /api/v2/silences, GET/DELETE /api/v2/silence/{id}; changes need the token. */
int api_silences_list(struct http_req *req, struct http_resp *resp);
int api_silences_post(struct http_req *req, struct http_resp *resp);
int api_silence_get(struct http_req *req, struct http_resp *resp);
int api_silence_delete(struct http_req *req, struct http_resp *resp);
/* The web page (api_web.c): GET / and GET /web/<file>, built into the binary;
 * 404 for a name it does not hold. */
int api_web_index(struct http_req *req, struct http_resp *resp);
int api_web_asset(struct http_req *req, struct http_resp *resp);

/* Subcommands. */
int agent_main(int argc, char **argv);
/* `monitor import FILE` and `monitor dump [SELECTOR]` (store_cli.c). */
int import_main(int argc, char **argv);
int dump_main(int argc, char **argv);

#endif
