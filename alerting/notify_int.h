/*
 * notify_int.h - what the notifier's files (notify*.c) share; private to
 * alerting/.
 *
 * The notifier has four layers, one or two files each:
 *   configuration (notify_config.c): route:, receivers:, inhibit_rules:,
 *     templates: in Alertmanager's shape, parsed into the structs below;
 *   routing (notify_route.c): matchers, the route tree, inhibition;
 *   grouping and the queue (notify.c): alerts from the rules engine are
 *     kept by fingerprint, routed into aggregation groups, flushed on
 *     Alertmanager's schedule (group_wait, group_interval, repeat_interval,
 *     the notification log) into a persistent queue in the kv store, and
 *     delivered by one thread per integration;
 *   vendors (notify_vendor.c, notify_text.c, notify_http.c): each chat
 *     system's payload, signing, size limits and answer classification, and
 *     the one libcurl transport.
 * notify_crypto.c holds SHA-256, HMAC, base64 and hex for the signatures.
 */
#ifndef MONITOR_NOTIFY_INT_H
#define MONITOR_NOTIFY_INT_H

#include <regex.h>

#include "alerting/alerting.h"

#define NOTIFY_MAX_RECEIVERS 256
#define NOTIFY_MAX_INTEGRATIONS 256
#define NOTIFY_MAX_ROUTES 1024
#define NOTIFY_MAX_MATCHERS 32
#define NOTIFY_MAX_GROUP_BY 32
#define NOTIFY_MAX_INHIBIT 128
#define NOTIFY_MAX_OPTS 24
#define NOTIFY_MAX_TEMPLATES 256
#define NOTIFY_MAX_AM 16                 /* alertmanager_configs in all */
#define NOTIFY_MAX_ALERTS 20000          /* alerts kept; past it new ones are refused */
#define NOTIFY_MAX_GROUPS 10000
#define NOTIFY_MAX_QUEUE 20000           /* queued notifications; past it new ones are dropped */
#define NOTIFY_MAX_PER_MSG 1000          /* alerts in one notification; the rest counted in truncatedAlerts */
#define NOTIFY_AM_BATCH 256              /* alerts per POST /api/v2/alerts (Prometheus) */
#define NOTIFY_AM_RESOLVED_RESEND_MS (15 * 60 * 1000)
#define NOTIFY_RECENT 200                /* deliveries kept for GET /api/v1/notifications */
#define NOTIFY_ANSWER_MAX 512            /* bytes of a vendor's answer kept */
#define NOTIFY_BODY_MAX (1u << 20)       /* largest payload built */
#define NOTIFY_RESPONSE_MAX (64u << 10)  /* largest vendor answer read */

/* ---- crypto (notify_crypto.c) --------------------------------------------- */

void ncrypto_sha256(const void *data, size_t n, uint8_t out[32]);
void ncrypto_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
			 uint8_t out[32]);
/* Writes base64 (with padding) of p into b. */
void ncrypto_base64(struct buf *b, const uint8_t *p, size_t n);
/* Writes lowercase hex of p into b. */
void ncrypto_hex(struct buf *b, const uint8_t *p, size_t n);
/* Writes s percent-encoded (RFC 3986 unreserved kept) into b. */
void ncrypto_urlencode(struct buf *b, const char *s);

/* ---- configuration (notify_config.c) -------------------------------------- */

enum nvendor {
	NV_WEBHOOK, NV_ALERTMANAGER, NV_SLACK, NV_DISCORD, NV_MSTEAMS, NV_TELEGRAM,
	NV_MATTERMOST, NV_GOOGLECHAT, NV_DINGTALK, NV_WECOM, NV_FEISHU, NV_PAGERDUTY,
	NV_NTFY, NV__COUNT
};

enum nmatch_op { NM_EQ, NM_NE, NM_RE, NM_NRE };
struct nmatcher {
	char *name, *value;
	enum nmatch_op op;
	bool have_re;
	regex_t re;
};
struct nmatchers {
	struct nmatcher *m;
	size_t n;
};

struct nopt {
	char *key, *value;
};

/* One entry of a receiver's <vendor>_configs list. */
struct nintegration {
	enum nvendor vendor;
	char *receiver;          /* the receiver's name (owned by the receiver) */
	int index;               /* position in the receiver's <vendor>_configs list */
	char key[320];           /* "receiver/vendor/index": queue and log key */
	struct nopt opts[NOTIFY_MAX_OPTS]; /* url, secret, chat_id, title, ... */
	size_t nopts;
	bool send_resolved;
	int64_t timeout_ms;
	int64_t max_age_ms;      /* a notification older than this is dropped */
	int64_t resend_delay_ms; /* alertmanager: Prometheus' resend delay */
	double rate_per_s;       /* token bucket; 0: unlimited */
	double burst;
	size_t max_alerts;       /* webhook: alerts per message; 0: all */
	int am_slot;             /* alertmanager: 0..NOTIFY_MAX_AM-1; else -1 */
};

struct nreceiver {
	char *name;
	size_t *integ;           /* indices into notify_config.integ */
	size_t ninteg;
};

struct nroute {
	int id;                  /* depth-first number, part of the group key */
	struct nmatchers match;
	char *receiver;          /* inherited */
	size_t receiver_idx;
	char **group_by;         /* inherited */
	size_t ngroup_by;
	bool group_by_all;       /* group_by: ['...'] */
	int64_t group_wait_ms, group_interval_ms, repeat_interval_ms;
	bool cont;
	struct nroute **child;
	size_t nchild;
	char path[64];           /* "0/2/1": for the group key, like Alertmanager's route key */
};

struct ninhibit {
	struct nmatchers source, target;
	char **equal;
	size_t nequal;
};

struct ntemplate {
	char *name, *text;
};

struct notify_config {
	struct nreceiver *recv;
	size_t nrecv;
	struct nintegration *integ;
	size_t ninteg;
	struct nroute *root;     /* NULL: no route: section */
	size_t nroutes;
	struct ninhibit *inhibit;
	size_t ninhibit;
	struct ntemplate *tmpl;
	size_t ntmpl;
	size_t nam;              /* alertmanager integrations */
	char external_url[512];
};

/* Vendor name ("slack") and its config key ("slack_configs"). */
const char *nvendor_name(enum nvendor v);
/* Option value of an integration, or NULL. */
const char *nopt_get(const struct nintegration *in, const char *key);

/* ---- routing (notify_route.c) ---------------------------------------------- */

/* Parses one matcher 'name="v"', 'name!~"re"' (quotes optional). 0 or
 * -EINVAL with the reason in err. */
int nmatcher_parse(struct nmatcher *m, const char *text, char *err, size_t errsize);
/* Builds a matcher from parts (op given); compiles regexes anchored. */
int nmatcher_make(struct nmatcher *m, const char *name, const char *value, enum nmatch_op op,
		  char *err, size_t errsize);
void nmatchers_free(struct nmatchers *ms);
/* Whether every matcher accepts the label set (absent labels are ""). */
bool nmatchers_match(const struct nmatchers *ms, const struct store_label *l, size_t n);
/* Value of a label in a sorted or unsorted set, or "" when absent. */
const char *nlabel_get(const struct store_label *l, size_t n, const char *name);
/*
 * The routes an alert goes to, as Alertmanager walks the tree: depth first,
 * the deepest matching child, siblings after it only when it has continue.
 * Writes up to max routes to out; returns how many.
 */
size_t nroute_match(const struct nroute *root, const struct store_label *l, size_t n,
		    const struct nroute **out, size_t max);
/* Prometheus' fingerprint of a label set: FNV-1a 64 over sorted names and
 * values, each followed by 0xff. */
uint64_t nlabels_fingerprint(const struct store_label *l, size_t n);

/* ---- text of a notification (notify_text.c) ----------------------------------- */

/* Message markup the vendor understands. */
enum nstyle { NS_PLAIN, NS_MARKDOWN, NS_SLACK, NS_HTML };

/*
 * The title and body of one notification, from the Alertmanager v4 data
 * object (group key, status, alerts, ...), with the integration's `title`
 * and `text` templates when it has them, else the defaults: status and
 * count, alert name, container, host; per alert its severity, summary,
 * value, since, runbook and source link. Written into title and text.
 */
void ntext_render(const struct notify_config *cfg, const struct nintegration *in,
		  const struct json *data, enum nstyle style, struct buf *title, struct buf *text);
/*
 * Renders a template over data (the v4 object): {{ .Status }}, {{ .Receiver }},
 * {{ .GroupKey }}, {{ .ExternalURL }}, {{ .NumFiring }}, {{ .NumResolved }},
 * {{ .GroupLabels.x }}, {{ .CommonLabels.x }}, {{ .CommonAnnotations.x }},
 * {{ range .Alerts }} ... {{ end }} with .Status .Labels.x .Annotations.x
 * .StartsAt .EndsAt .GeneratorURL .Fingerprint inside, {{ template "name" . }}
 * from templates: files, and comments. Unknown fields render as "".
 * Returns 0 or -EINVAL with the reason in err (then out holds what was
 * rendered so far).
 */
int ntemplate_render(const struct notify_config *cfg, const char *tmpl, const struct json *data,
		     struct buf *out, char *err, size_t errsize);
/* Checks a template's syntax (same errors as rendering). */
int ntemplate_check(const struct notify_config *cfg, const char *tmpl, char *err, size_t errsize);
/* Appends at most max_bytes bytes of s, cut at a UTF-8 boundary, with "…"
 * when cut (counted in max_bytes). */
void ntext_trunc_bytes(struct buf *b, const char *s, size_t max_bytes);
/* Appends at most max_chars code points of s, with "…" when cut. */
void ntext_trunc_chars(struct buf *b, const char *s, size_t max_chars);

/* ---- vendors (notify_vendor.c) ----------------------------------------------- */

enum nresult { NR_DELIVERED, NR_RETRY, NR_FAILED };

/* A request ready for the transport. */
#define NREQ_MAX_HEADERS 8
struct nreq {
	struct buf url;
	struct buf body;
	char headers[NREQ_MAX_HEADERS][512];
	size_t nheaders;
};
/* What the vendor answered. status 0: no answer (timeout, refused). */
struct nanswer {
	long status;
	const char *body;
	size_t len;
	int64_t retry_after_ms;  /* from Retry-After; -1: none */
	const char *error;       /* transport error text when status is 0 */
};

struct nvendor_ops {
	const char *name;        /* "slack" */
	const char *config_key;  /* "slack_configs" */
	const char *const *required; /* options that must be set (NULL-terminated; the
				       allowed ones are in notify_config.c) */
	bool send_resolved;      /* default */
	double rate_per_min, burst; /* documented limits; 0: none */
	/* Builds the request for a notification (data: v4 object; for
	 * alertmanager an array of alerts). 0, or -EINVAL with why. */
	int (*build)(const struct notify_config *cfg, const struct nintegration *in,
		     const struct json *data, int64_t now_ms, struct nreq *req, char *why,
		     size_t whysize);
	/* Classifies the answer; on NR_RETRY *retry_ms is the vendor's wait
	 * (-1: none given). */
	enum nresult (*classify)(const struct nanswer *a, int64_t *retry_ms, char *why,
				 size_t whysize);
};
extern const struct nvendor_ops nvendors[NV__COUNT];

void nreq_init(struct nreq *r);
void nreq_fini(struct nreq *r);
void nreq_header(struct nreq *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- the transport (notify_http.c) ------------------------------------------- */

struct nhttp;
struct nhttp *nhttp_new(void);
void nhttp_free(struct nhttp *h);
/*
 * POSTs req and fills a (body owned by h until the next call). stop, when
 * not NULL, is polled during the transfer: non-zero aborts it. Returns 0
 * when an answer or a transport error is in a.
 */
int nhttp_post(struct nhttp *h, const struct nreq *req, int64_t timeout_ms, const int *stop,
	       struct nanswer *a);
/* Parses a Retry-After value (seconds or an HTTP date) relative to now_ms;
 * -1 when it is neither. */
int64_t nhttp_retry_after_ms(const char *v, int64_t now_ms);

#endif
