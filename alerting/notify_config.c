/*
 * notify_config.c - the notifier's part of the agent's YAML configuration,
 * in Alertmanager's shape so users can copy what they know:
 *
 *   route:          receiver, group_by, group_wait, group_interval,
 *                   repeat_interval, matchers / match / match_re, continue,
 *                   routes (children inherit what they do not set)
 *   receivers:      - name: ops
 *                     webhook_configs: [{url: ..., secret: ...}]
 *                     slack_configs: [...]   (one <vendor>_configs each)
 *   inhibit_rules:  source_matchers, target_matchers, equal
 *   templates:      files with {{ define "name" }}...{{ end }} blocks
 *
 * config.c hands each of these top-level nodes to notify_config_load and
 * calls notify_config_check once the whole file is read. Secrets (url,
 * secret, bot_token, routing_key, token) may instead come from a file
 * (`<key>_file`) or an environment variable (`<key>_env`); they are kept
 * only in memory, never logged and never written to the queue.
 */
#include "alerting/notify_int.h"

#include <errno.h>
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the vendors' option tables ---------------------------------------------- */

#define COMMON "url", "send_resolved", "timeout", "max_age", "rate_limit", "burst", "title", "text"
static const char *const o_webhook[] = { COMMON, "secret", "max_alerts", NULL };
static const char *const o_am[] = { COMMON, "resend_delay", NULL };
static const char *const o_slack[] = { COMMON, "channel", "username", "icon_emoji", "icon_url", NULL };
static const char *const o_discord[] = { COMMON, "username", "avatar_url", NULL };
static const char *const o_teams[] = { COMMON, NULL };
static const char *const o_telegram[] = { COMMON, "bot_token", "chat_id", "message_thread_id",
					  "disable_notifications", NULL };
static const char *const o_mm[] = { COMMON, "channel", "username", "icon_url", "priority", NULL };
static const char *const o_gchat[] = { COMMON, "thread", NULL };
static const char *const o_ding[] = { COMMON, "secret", "at_mobiles", "is_at_all", NULL };
static const char *const o_wecom[] = { COMMON, "mentioned_list", NULL };
static const char *const o_feishu[] = { COMMON, "secret", NULL };
static const char *const o_pd[] = { COMMON, "routing_key", "severity", "source", "component",
				    "group", "class", "client", "client_url", NULL };
static const char *const o_ntfy[] = { COMMON, "topic", "token", "priority", "tags", NULL };

static const char *const *const vendor_opts[NV__COUNT] = {
	[NV_WEBHOOK] = o_webhook, [NV_ALERTMANAGER] = o_am, [NV_SLACK] = o_slack,
	[NV_DISCORD] = o_discord, [NV_MSTEAMS] = o_teams, [NV_TELEGRAM] = o_telegram,
	[NV_MATTERMOST] = o_mm, [NV_GOOGLECHAT] = o_gchat, [NV_DINGTALK] = o_ding,
	[NV_WECOM] = o_wecom, [NV_FEISHU] = o_feishu, [NV_PAGERDUTY] = o_pd, [NV_NTFY] = o_ntfy,
};

/* Alertmanager's names for the same keys. */
static const struct {
	const char *alias, *key;
} aliases[] = {
	{ "api_url", "url" }, { "webhook_url", "url" }, { "service_key", "routing_key" },
};

static bool is_secret(const char *key)
{
	return !strcmp(key, "url") || !strcmp(key, "secret") || !strcmp(key, "bot_token") ||
	       !strcmp(key, "routing_key") || !strcmp(key, "token");
}

const char *nvendor_name(enum nvendor v)
{
	return (unsigned)v < NV__COUNT ? nvendors[v].name : "?";
}

const char *nopt_get(const struct nintegration *in, const char *key)
{
	for (size_t i = 0; i < in->nopts; i++)
		if (!strcmp(in->opts[i].key, key))
			return in->opts[i].value;
	return NULL;
}

/* ---- helpers ------------------------------------------------------------------- */

static struct notify_config *cfg_get(struct notify_config **pc)
{
	if (!*pc)
		*pc = calloc(1, sizeof(**pc));
	return *pc;
}

static int scalar(struct ycfg *x, const struct ynode *n, const char *key, const char **out)
{
	if (n->type != YNODE_SCALAR)
		return ycfg_fail(x, n, key, "expected a single value");
	*out = n->scalar ? n->scalar : "";
	return 0;
}

static int duration(struct ycfg *x, const struct ynode *n, const char *key, int64_t *out)
{
	const char *s = NULL;
	if (scalar(x, n, key, &s) < 0)
		return -EINVAL;
	return ycfg_duration(x, n, key, INT64_MIN, out,
			     "expected a duration such as 30s, 5m or 4h");
}

static int boolean(struct ycfg *x, const struct ynode *n, const char *key, bool *out)
{
	const char *s = NULL;
	if (scalar(x, n, key, &s) < 0)
		return -EINVAL;
	if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on"))
		*out = true;
	else if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off"))
		*out = false;
	else
		return ycfg_fail(x, n, key, "expected true or false");
	return 0;
}

/* A list of strings (also a single scalar). */
static int strlist(struct ycfg *x, const struct ynode *n, const char *key, char ***out,
		   size_t *nout, size_t max)
{
	if (n->type == YNODE_MAP)
		return ycfg_fail(x, n, key, "expected a list of strings");
	size_t cnt = n->type == YNODE_SEQ ? n->count : 1;
	if (cnt > max)
		return ycfg_fail(x, n, key, "more than %zu entries", max);
	char **v = calloc(cnt ? cnt : 1, sizeof(*v));
	if (!v)
		return ycfg_fail(x, n, key, "out of memory");
	size_t i = 0;
	const struct ynode *c = n->type == YNODE_SEQ ? n->child : n;
	for (; c && i < cnt; c = n->type == YNODE_SEQ ? c->next : NULL) {
		if (c->type != YNODE_SCALAR) {
			for (size_t j = 0; j < i; j++)
				free(v[j]);
			free(v);
			return ycfg_fail(x, c, key, "expected a string");
		}
		v[i++] = strdup(c->scalar ? c->scalar : "");
	}
	*out = v;
	*nout = i;
	return 0;
}

static void strlist_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int add_matcher(struct ycfg *x, const struct ynode *n, const char *key,
		       struct nmatchers *ms, const char *text, const char *name,
		       const char *value, enum nmatch_op op)
{
	if (ms->n >= NOTIFY_MAX_MATCHERS)
		return ycfg_fail(x, n, key, "more than %d matchers", NOTIFY_MAX_MATCHERS);
	struct nmatcher *m = realloc(ms->m, (ms->n + 1) * sizeof(*m));
	if (!m)
		return ycfg_fail(x, n, key, "out of memory");
	ms->m = m;
	char why[256];
	int rc = text ? nmatcher_parse(&m[ms->n], text, why, sizeof(why))
		      : nmatcher_make(&m[ms->n], name, value, op, why, sizeof(why));
	if (rc < 0)
		return ycfg_fail(x, n, key, "%s", why);
	ms->n++;
	return 0;
}

/* matchers: [...] (strings), match: {k: v}, match_re: {k: re}. */
static int matchers(struct ycfg *x, const struct ynode *n, const char *key, struct nmatchers *ms,
		    enum nmatch_op op_map)
{
	if (op_map == NM_NE) { /* the list form */
		if (n->type == YNODE_MAP)
			return ycfg_fail(x, n, key,
					 "expected a list such as ['severity=\"critical\"']");
		const struct ynode *c = n->type == YNODE_SEQ ? n->child : n;
		for (; c; c = n->type == YNODE_SEQ ? c->next : NULL) {
			if (c->type != YNODE_SCALAR)
				return ycfg_fail(x, c, key, "expected a matcher string");
			if (add_matcher(x, c, key, ms, c->scalar ? c->scalar : "", NULL, NULL, 0) < 0)
				return -EINVAL;
		}
		return 0;
	}
	if (n->type != YNODE_MAP)
		return ycfg_fail(x, n, key, "expected a mapping of label: value");
	for (const struct ynode *c = n->child; c; c = c->next) {
		if (c->type != YNODE_SCALAR)
			return ycfg_fail(x, c, c->key, "expected a value");
		if (add_matcher(x, c, key, ms, NULL, c->key, c->scalar ? c->scalar : "", op_map) < 0)
			return -EINVAL;
	}
	return 0;
}

/* ---- route: ---------------------------------------------------------------------- */

struct route_set {
	bool receiver, group_by, wait, interval, repeat;
};

static void route_free(struct nroute *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nchild; i++)
		route_free(r->child[i]);
	free(r->child);
	nmatchers_free(&r->match);
	free(r->receiver);
	strlist_free(r->group_by, r->ngroup_by);
	free(r);
}

static int load_route(struct ycfg *x, struct notify_config *c, const struct ynode *n,
		      const struct nroute *parent, struct nroute **out, int depth)
{
	if (n->type != YNODE_MAP)
		return ycfg_fail(x, n, "route", "expected a mapping");
	if (depth > 32)
		return ycfg_fail(x, n, "routes", "nested more than 32 deep");
	if (c->nroutes >= NOTIFY_MAX_ROUTES)
		return ycfg_fail(x, n, "routes", "more than %d routes", NOTIFY_MAX_ROUTES);
	struct nroute *r = calloc(1, sizeof(*r));
	if (!r)
		return ycfg_fail(x, n, "route", "out of memory");
	r->id = (int)c->nroutes++;
	struct route_set set = { 0 };
	int rc = 0;
	const struct ynode *routes = NULL;
	for (const struct ynode *k = n->child; k && rc == 0; k = k->next) {
		const char *key = k->key, *s = NULL;
		if (!strcmp(key, "receiver")) {
			if ((rc = scalar(x, k, key, &s)) == 0) {
				r->receiver = strdup(s);
				set.receiver = true;
			}
		} else if (!strcmp(key, "group_by")) {
			rc = strlist(x, k, key, &r->group_by, &r->ngroup_by, NOTIFY_MAX_GROUP_BY);
			set.group_by = true;
			for (size_t i = 0; rc == 0 && i < r->ngroup_by; i++)
				if (!strcmp(r->group_by[i], "..."))
					r->group_by_all = true;
		} else if (!strcmp(key, "group_wait")) {
			rc = duration(x, k, key, &r->group_wait_ms);
			set.wait = true;
		} else if (!strcmp(key, "group_interval")) {
			rc = duration(x, k, key, &r->group_interval_ms);
			set.interval = true;
			if (rc == 0 && r->group_interval_ms <= 0)
				rc = ycfg_fail(x, k, key, "must be more than 0");
		} else if (!strcmp(key, "repeat_interval")) {
			rc = duration(x, k, key, &r->repeat_interval_ms);
			set.repeat = true;
			if (rc == 0 && r->repeat_interval_ms <= 0)
				rc = ycfg_fail(x, k, key, "must be more than 0");
		} else if (!strcmp(key, "continue")) {
			rc = boolean(x, k, key, &r->cont);
		} else if (!strcmp(key, "matchers")) {
			rc = matchers(x, k, key, &r->match, NM_NE);
		} else if (!strcmp(key, "match")) {
			rc = matchers(x, k, key, &r->match, NM_EQ);
		} else if (!strcmp(key, "match_re")) {
			rc = matchers(x, k, key, &r->match, NM_RE);
		} else if (!strcmp(key, "routes")) {
			if (k->type != YNODE_SEQ)
				rc = ycfg_fail(x, k, key, "expected a list of routes");
			routes = k;
		} else if (!strcmp(key, "mute_time_intervals") || !strcmp(key, "active_time_intervals")) {
			rc = ycfg_fail(x, k, key,
				       "time intervals are not supported (use silences)");
		} else {
			rc = ycfg_fail(x, k, key, "unknown key in route");
		}
	}
	if (rc == 0) {
		if (!parent && (r->match.n > 0))
			rc = ycfg_fail(x, n, "route", "the root route must not have matchers");
		if (!parent && !set.receiver)
			rc = ycfg_fail(x, n, "route", "the root route needs a receiver");
	}
	if (rc == 0 && parent) {
		if (!set.receiver)
			r->receiver = strdup(parent->receiver ? parent->receiver : "");
		if (!set.group_by) {
			r->group_by_all = parent->group_by_all;
			r->ngroup_by = parent->ngroup_by;
			r->group_by = calloc(parent->ngroup_by + 1, sizeof(char *));
			for (size_t i = 0; r->group_by && i < parent->ngroup_by; i++)
				r->group_by[i] = strdup(parent->group_by[i]);
		}
		if (!set.wait)
			r->group_wait_ms = parent->group_wait_ms;
		if (!set.interval)
			r->group_interval_ms = parent->group_interval_ms;
		if (!set.repeat)
			r->repeat_interval_ms = parent->repeat_interval_ms;
	} else if (rc == 0) {
		/* Alertmanager's defaults. */
		if (!set.wait)
			r->group_wait_ms = 30000;
		if (!set.interval)
			r->group_interval_ms = 300000;
		if (!set.repeat)
			r->repeat_interval_ms = 4 * 3600000;
	}
	if (rc == 0) {
		/* Alertmanager's route key: the parent's, "/", the matchers. */
		struct buf b;
		buf_init(&b, sizeof(r->path) - 1);
		if (parent) {
			buf_puts(&b, parent->path);
			buf_putc(&b, '/');
		}
		buf_putc(&b, '{');
		for (size_t i = 0; i < r->match.n; i++) {
			static const char *const ops[] = { "=", "!=", "=~", "!~" };
			buf_printf(&b, "%s%s%s\"%s\"", i ? "," : "", r->match.m[i].name,
				   ops[r->match.m[i].op], r->match.m[i].value);
		}
		buf_putc(&b, '}');
		snprintf(r->path, sizeof(r->path), "%s", b.data ? b.data : "{}");
		if (b.overflow) /* long matchers: the route number keeps it unique */
			snprintf(r->path, sizeof(r->path), "{route%d}", r->id);
		buf_fini(&b);
	}
	if (rc == 0 && routes) {
		for (const struct ynode *k = routes->child; k && rc == 0; k = k->next) {
			struct nroute **ch = realloc(r->child, (r->nchild + 1) * sizeof(*ch));
			if (!ch) {
				rc = ycfg_fail(x, k, "routes", "out of memory");
				break;
			}
			r->child = ch;
			rc = load_route(x, c, k, r, &r->child[r->nchild], depth + 1);
			if (rc == 0)
				r->nchild++;
		}
	}
	if (rc < 0) {
		route_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

/* ---- receivers: -------------------------------------------------------------------- */

/* Reads a secret from a file (first line, trimmed) or the environment. */
static int secret_from(struct ycfg *x, const struct ynode *k, const char *key, bool file,
		       const char *src, char **out)
{
	if (file) {
		char path[PATH_MAX];
		if (src[0] != '/') {
			char dir[PATH_MAX];
			snprintf(dir, sizeof(dir), "%s", x->file);
			snprintf(path, sizeof(path), "%s/%s", dirname(dir), src);
		} else {
			snprintf(path, sizeof(path), "%s", src);
		}
		char *v = malloc(8192);
		if (!v)
			return ycfg_fail(x, k, key, "out of memory");
		ssize_t n = read_file(path, v, 8192);
		if (n < 0) {
			free(v);
			return ycfg_fail(x, k, key, "%s: %s", path, strerror((int)-n));
		}
		while (n > 0 && (v[n - 1] == '\n' || v[n - 1] == '\r' || v[n - 1] == ' '))
			v[--n] = '\0';
		if (n == 0) {
			free(v);
			return ycfg_fail(x, k, key, "%s is empty", path);
		}
		*out = v;
		return 0;
	}
	const char *e = getenv(src);
	if (!e || !*e)
		return ycfg_fail(x, k, key, "environment variable %s is not set", src);
	*out = strdup(e);
	return 0;
}

static int set_opt(struct ycfg *x, const struct ynode *k, struct nintegration *in,
		   const char *key, char *value /* taken */)
{
	for (size_t i = 0; i < in->nopts; i++) {
		if (!strcmp(in->opts[i].key, key)) {
			free(value);
			return ycfg_fail(x, k, k->key, "%s given twice", key);
		}
	}
	if (in->nopts >= NOTIFY_MAX_OPTS) {
		free(value);
		return ycfg_fail(x, k, k->key, "too many options");
	}
	in->opts[in->nopts].key = strdup(key);
	in->opts[in->nopts].value = value;
	in->nopts++;
	return 0;
}

static bool opt_allowed(enum nvendor v, const char *key)
{
	for (const char *const *o = vendor_opts[v]; *o; o++)
		if (!strcmp(*o, key))
			return true;
	return false;
}

static int load_integration(struct ycfg *x, struct notify_config *c, struct nreceiver *rc_,
			    enum nvendor v, int index, const struct ynode *n)
{
	const char *vk = nvendors[v].config_key;
	if (n->type != YNODE_MAP)
		return ycfg_fail(x, n, vk, "expected a mapping (url: ...)");
	if (c->ninteg >= NOTIFY_MAX_INTEGRATIONS)
		return ycfg_fail(x, n, vk, "more than %d integrations", NOTIFY_MAX_INTEGRATIONS);
	struct nintegration *arr = realloc(c->integ, (c->ninteg + 1) * sizeof(*arr));
	if (!arr)
		return ycfg_fail(x, n, vk, "out of memory");
	c->integ = arr;
	struct nintegration *in = &arr[c->ninteg];
	memset(in, 0, sizeof(*in));
	in->vendor = v;
	in->receiver = rc_->name;
	in->index = index;
	in->send_resolved = nvendors[v].send_resolved;
	in->timeout_ms = 10000;
	in->max_age_ms = 3600000;
	in->resend_delay_ms = 60000;
	in->rate_per_s = nvendors[v].rate_per_min / 60.0;
	in->burst = nvendors[v].burst;
	in->am_slot = -1;
	snprintf(in->key, sizeof(in->key), "%s/%s/%d", rc_->name, nvendors[v].name, index);
	c->ninteg++; /* from here on, notify_config_free frees it */
	for (const struct ynode *k = n->child; k; k = k->next) {
		char key[64];
		snprintf(key, sizeof(key), "%s", k->key);
		for (size_t i = 0; i < ARRAY_LEN(aliases); i++)
			if (!strcmp(key, aliases[i].alias))
				snprintf(key, sizeof(key), "%s", aliases[i].key);
		size_t kl = strlen(key);
		bool from_file = kl > 5 && !strcmp(key + kl - 5, "_file");
		bool from_env = kl > 4 && !strcmp(key + kl - 4, "_env");
		if (from_file || from_env) {
			key[kl - (from_file ? 5 : 4)] = '\0';
			if (!strcmp(key, "api_url") || !strcmp(key, "webhook_url"))
				snprintf(key, sizeof(key), "url");
			if (!is_secret(key) || !opt_allowed(v, key))
				return ycfg_fail(x, k, k->key, "unknown key in %s", vk);
			const char *src = NULL;
			char *val = NULL;
			if (scalar(x, k, k->key, &src) < 0 ||
			    secret_from(x, k, k->key, from_file, src, &val) < 0)
				return -EINVAL;
			if (set_opt(x, k, in, key, val) < 0)
				return -EINVAL;
			continue;
		}
		if (!opt_allowed(v, key))
			return ycfg_fail(x, k, k->key, "unknown key in %s", vk);
		if (!strcmp(key, "send_resolved")) {
			if (boolean(x, k, key, &in->send_resolved) < 0)
				return -EINVAL;
			continue;
		}
		if (!strcmp(key, "timeout") || !strcmp(key, "max_age") ||
		    !strcmp(key, "resend_delay")) {
			int64_t ms;
			if (duration(x, k, key, &ms) < 0)
				return -EINVAL;
			if (ms < 10)
				return ycfg_fail(x, k, key, "must be at least 10ms");
			*(key[0] == 't' ? &in->timeout_ms : key[0] == 'm' ? &in->max_age_ms
									 : &in->resend_delay_ms) = ms;
			continue;
		}
		if (!strcmp(key, "rate_limit") || !strcmp(key, "burst") ||
		    !strcmp(key, "max_alerts")) {
			const char *s = NULL;
			char *end;
			if (scalar(x, k, key, &s) < 0)
				return -EINVAL;
			double d = strtod(s, &end);
			if (end == s || *end || d < 0 || d > 1e6)
				return ycfg_fail(x, k, key,
						 "expected a number (rate_limit: messages a "
						 "minute, 0 for none)");
			if (key[0] == 'r')
				in->rate_per_s = d / 60.0;
			else if (key[0] == 'b')
				in->burst = d;
			else
				in->max_alerts = (size_t)d;
			continue;
		}
		char *val = NULL;
		if (k->type == YNODE_SEQ) { /* tags, at_mobiles, mentioned_list: comma list */
			struct buf b;
			buf_init(&b, 4096);
			for (const struct ynode *e = k->child; e; e = e->next) {
				if (e->type != YNODE_SCALAR) {
					buf_fini(&b);
					return ycfg_fail(x, e, key, "expected strings");
				}
				buf_printf(&b, "%s%s", b.len ? "," : "", e->scalar ? e->scalar : "");
			}
			val = b.len ? buf_steal(&b, NULL) : strdup("");
			buf_fini(&b);
		} else {
			const char *s = NULL;
			if (scalar(x, k, key, &s) < 0)
				return -EINVAL;
			val = strdup(s);
		}
		if (!val)
			return ycfg_fail(x, k, key, "out of memory");
		if ((!strcmp(key, "title") || !strcmp(key, "text"))) {
			char why[256];
			if (ntemplate_check(NULL, val, why, sizeof(why)) < 0) {
				free(val);
				return ycfg_fail(x, k, key, "template: %s", why);
			}
		}
		if (set_opt(x, k, in, key, val) < 0)
			return -EINVAL;
	}
	/* Defaults that are endpoints, not secrets. */
	if (v == NV_TELEGRAM && !nopt_get(in, "url"))
		set_opt(x, n, in, "url", strdup("https://api.telegram.org"));
	if (v == NV_PAGERDUTY && !nopt_get(in, "url"))
		set_opt(x, n, in, "url", strdup("https://events.pagerduty.com/v2/enqueue"));
	for (const char *const *r = nvendors[v].required; r && *r; r++)
		if (!nopt_get(in, *r))
			return ycfg_fail(x, n, vk, "%s is required (or %s_file / %s_env)", *r,
					 *r, *r);
	const char *url = nopt_get(in, "url");
	if (url && strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
		return ycfg_fail(x, n, vk, "url must start with http:// or https://");
	if (v == NV_ALERTMANAGER) {
		if (c->nam >= NOTIFY_MAX_AM)
			return ycfg_fail(x, n, vk, "more than %d alertmanager_configs",
					 NOTIFY_MAX_AM);
		in->am_slot = (int)c->nam++;
	}
	if (in->burst < 1)
		in->burst = 1;
	size_t *ii = realloc(rc_->integ, (rc_->ninteg + 1) * sizeof(*ii));
	if (!ii)
		return ycfg_fail(x, n, vk, "out of memory");
	rc_->integ = ii;
	ii[rc_->ninteg++] = c->ninteg - 1;
	return 0;
}

static int load_receiver(struct ycfg *x, struct notify_config *c, const struct ynode *n)
{
	if (n->type != YNODE_MAP)
		return ycfg_fail(x, n, "receivers", "expected a mapping with name: and <vendor>_configs:");
	const struct ynode *name = ynode_get(n, "name");
	if (!name || name->type != YNODE_SCALAR || !name->scalar || !*name->scalar)
		return ycfg_fail(x, n, "receivers", "every receiver needs a name");
	if (strlen(name->scalar) > 128)
		return ycfg_fail(x, name, "name", "longer than 128 bytes");
	for (size_t i = 0; i < c->nrecv; i++)
		if (!strcmp(c->recv[i].name, name->scalar))
			return ycfg_fail(x, name, "name", "receiver \"%s\" defined twice",
					 name->scalar);
	if (c->nrecv >= NOTIFY_MAX_RECEIVERS)
		return ycfg_fail(x, n, "receivers", "more than %d receivers", NOTIFY_MAX_RECEIVERS);
	struct nreceiver *arr = realloc(c->recv, (c->nrecv + 1) * sizeof(*arr));
	if (!arr)
		return ycfg_fail(x, n, "receivers", "out of memory");
	c->recv = arr;
	struct nreceiver *r = &arr[c->nrecv++];
	memset(r, 0, sizeof(*r));
	r->name = strdup(name->scalar);
	for (const struct ynode *k = n->child; k; k = k->next) {
		if (!strcmp(k->key, "name"))
			continue;
		enum nvendor v = NV__COUNT;
		for (int i = 0; i < NV__COUNT; i++)
			if (!strcmp(k->key, nvendors[i].config_key))
				v = (enum nvendor)i;
		if (v == NV__COUNT)
			return ycfg_fail(x, k, k->key, "unknown key in receiver (expected name or one of "
					 "webhook_configs, alertmanager_configs, slack_configs, "
					 "discord_configs, msteams_configs, telegram_configs, "
				    "mattermost_configs, googlechat_configs, dingtalk_configs, "
				    "wecom_configs, feishu_configs, pagerduty_configs, ntfy_configs)");
		if (k->type != YNODE_SEQ)
			return ycfg_fail(x, k, k->key, "expected a list of configurations");
		int idx = 0;
		for (const struct ynode *e = k->child; e; e = e->next, idx++)
			if (load_integration(x, c, r, v, idx, e) < 0)
				return -EINVAL;
	}
	/* Integration receiver pointers point into r->name: stable, r->name
	 * is a separate allocation. */
	return 0;
}

/* ---- inhibit_rules: ----------------------------------------------------------------- */

static int load_inhibit(struct ycfg *x, struct notify_config *c, const struct ynode *n)
{
	if (n->type != YNODE_MAP)
		return ycfg_fail(x, n, "inhibit_rules", "expected a mapping");
	if (c->ninhibit >= NOTIFY_MAX_INHIBIT)
		return ycfg_fail(x, n, "inhibit_rules", "more than %d rules", NOTIFY_MAX_INHIBIT);
	struct ninhibit *arr = realloc(c->inhibit, (c->ninhibit + 1) * sizeof(*arr));
	if (!arr)
		return ycfg_fail(x, n, "inhibit_rules", "out of memory");
	c->inhibit = arr;
	struct ninhibit *r = &arr[c->ninhibit++];
	memset(r, 0, sizeof(*r));
	for (const struct ynode *k = n->child; k; k = k->next) {
		const char *key = k->key;
		int rc;
		if (!strcmp(key, "source_matchers"))
			rc = matchers(x, k, key, &r->source, NM_NE);
		else if (!strcmp(key, "source_match"))
			rc = matchers(x, k, key, &r->source, NM_EQ);
		else if (!strcmp(key, "source_match_re"))
			rc = matchers(x, k, key, &r->source, NM_RE);
		else if (!strcmp(key, "target_matchers"))
			rc = matchers(x, k, key, &r->target, NM_NE);
		else if (!strcmp(key, "target_match"))
			rc = matchers(x, k, key, &r->target, NM_EQ);
		else if (!strcmp(key, "target_match_re"))
			rc = matchers(x, k, key, &r->target, NM_RE);
		else if (!strcmp(key, "equal"))
			rc = strlist(x, k, key, &r->equal, &r->nequal, NOTIFY_MAX_GROUP_BY);
		else
			rc = ycfg_fail(x, k, key, "unknown key in inhibit_rules");
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---- templates: ------------------------------------------------------------------------ */

/* Splits a templates file into its {{ define "name" }} ... {{ end }} blocks. */
static int load_template_text(struct ycfg *x, struct notify_config *c, const struct ynode *n,
			      const char *path, const char *text)
{
	const char *p = text;
	while ((p = strstr(p, "{{")) != NULL) {
		const char *q = p + 2;
		while (*q == ' ' || *q == '-')
			q++;
		if (strncmp(q, "define", 6) != 0) {
			p += 2;
			continue;
		}
		q += 6;
		while (*q == ' ')
			q++;
		if (*q != '"')
			return ycfg_fail(x, n, "templates", "%s: define without a quoted name",
					 path);
		const char *ns = ++q;
		while (*q && *q != '"')
			q++;
		if (!*q || q - ns > 200)
			return ycfg_fail(x, n, "templates", "%s: bad define name", path);
		const char *ne = q;
		const char *close = strstr(q, "}}");
		if (!close)
			return ycfg_fail(x, n, "templates", "%s: unterminated {{", path);
		const char *body = close + 2;
		/* Find the matching {{ end }}: range/if/define/with open, end closes. */
		int depth = 1;
		const char *s = body, *end_at = NULL;
		while (depth > 0 && (s = strstr(s, "{{")) != NULL) {
			const char *t = s + 2;
			while (*t == ' ' || *t == '-')
				t++;
			if (!strncmp(t, "range", 5) || !strncmp(t, "if", 2) ||
			    !strncmp(t, "define", 6) || !strncmp(t, "with", 4))
				depth++;
			else if (!strncmp(t, "end", 3))
				depth--;
			if (depth == 0)
				end_at = s;
			s += 2;
		}
		if (!end_at)
			return ycfg_fail(x, n, "templates", "%s: define \"%.*s\" has no {{ end }}",
					 path, (int)(ne - ns), ns);
		if (c->ntmpl >= NOTIFY_MAX_TEMPLATES)
			return ycfg_fail(x, n, "templates", "more than %d templates", NOTIFY_MAX_TEMPLATES);
		struct ntemplate *arr = realloc(c->tmpl, (c->ntmpl + 1) * sizeof(*arr));
		if (!arr)
			return ycfg_fail(x, n, "templates", "out of memory");
		c->tmpl = arr;
		arr[c->ntmpl].name = strndup(ns, (size_t)(ne - ns));
		arr[c->ntmpl].text = strndup(body, (size_t)(end_at - body));
		c->ntmpl++;
		const char *after = strstr(end_at, "}}");
		p = after ? after + 2 : end_at + 2;
	}
	return 0;
}

static int load_templates(struct ycfg *x, struct notify_config *c, const struct ynode *n)
{
	char **files = NULL;
	size_t nfiles = 0;
	if (strlist(x, n, "templates", &files, &nfiles, 64) < 0)
		return -EINVAL;
	int rc = 0;
	for (size_t i = 0; i < nfiles && rc == 0; i++) {
		char pat[PATH_MAX];
		if (files[i][0] != '/') {
			char dir[PATH_MAX];
			snprintf(dir, sizeof(dir), "%s", x->file);
			snprintf(pat, sizeof(pat), "%s/%s", dirname(dir), files[i]);
		} else {
			snprintf(pat, sizeof(pat), "%s", files[i]);
		}
		glob_t g;
		if (glob(pat, 0, NULL, &g) != 0) {
			rc = ycfg_fail(x, n, "templates", "%s: no such file", pat);
			break;
		}
		for (size_t j = 0; j < g.gl_pathc && rc == 0; j++) {
			char *text = malloc(1 << 20);
			ssize_t len = text ? read_file(g.gl_pathv[j], text, 1 << 20) : -ENOMEM;
			if (len < 0)
				rc = ycfg_fail(x, n, "templates", "%s: %s", g.gl_pathv[j],
					       strerror((int)-len));
			else
				rc = load_template_text(x, c, n, g.gl_pathv[j], text);
			free(text);
		}
		globfree(&g);
	}
	strlist_free(files, nfiles);
	return rc;
}

/* ---- entry points ---------------------------------------------------------------------- */

bool notify_config_key(const char *key)
{
	return !strcmp(key, "route") || !strcmp(key, "receivers") ||
	       !strcmp(key, "inhibit_rules") || !strcmp(key, "templates");
}

int notify_config_load(struct notify_config **pc, const struct ynode *n, const char *file,
		       char *err, size_t errsize)
{
	struct ycfg x = { file, err, errsize };
	struct notify_config *c = cfg_get(pc);
	if (!c)
		return ycfg_fail(&x, n, n->key, "out of memory");
	if (!strcmp(n->key, "route")) {
		if (c->root)
			return ycfg_fail(&x, n, "route", "given twice");
		c->nroutes = 0;
		return load_route(&x, c, n, NULL, &c->root, 0);
	}
	if (!strcmp(n->key, "receivers")) {
		if (n->type != YNODE_SEQ)
			return ycfg_fail(&x, n, "receivers", "expected a list of receivers");
		for (const struct ynode *e = n->child; e; e = e->next)
			if (load_receiver(&x, c, e) < 0)
				return -EINVAL;
		return 0;
	}
	if (!strcmp(n->key, "inhibit_rules")) {
		if (n->type != YNODE_SEQ)
			return ycfg_fail(&x, n, "inhibit_rules", "expected a list of rules");
		for (const struct ynode *e = n->child; e; e = e->next)
			if (load_inhibit(&x, c, e) < 0)
				return -EINVAL;
		return 0;
	}
	if (!strcmp(n->key, "templates"))
		return load_templates(&x, c, n);
	return ycfg_fail(&x, n, n->key, "not a notifier key");
}

static int check_route(struct ycfg *x, struct notify_config *c, struct nroute *r)
{
	bool found = false;
	for (size_t i = 0; i < c->nrecv; i++) {
		if (!strcmp(c->recv[i].name, r->receiver ? r->receiver : "")) {
			r->receiver_idx = i;
			found = true;
		}
	}
	if (!found)
		return ycfg_fail(x, NULL, "route", "receiver \"%s\" is not defined in receivers:",
				 r->receiver ? r->receiver : "");
	for (size_t i = 0; i < r->nchild; i++)
		if (check_route(x, c, r->child[i]) < 0)
			return -EINVAL;
	return 0;
}

int notify_config_check(struct notify_config *c, const char *file, char *err, size_t errsize)
{
	struct ycfg x = { file, err, errsize };
	if (!c)
		return 0;
	if (!c->root && c->nrecv)
		return ycfg_fail(&x, NULL, "route", "receivers: are defined but there is no route: "
				 "(add route: {receiver: <name>})");
	if (c->root && check_route(&x, c, c->root) < 0)
		return -EINVAL;
	for (size_t i = 0; i < c->ninteg; i++) {
		for (size_t j = 0; j < c->integ[i].nopts; j++) {
			const struct nopt *o = &c->integ[i].opts[j];
			if (strcmp(o->key, "title") && strcmp(o->key, "text"))
				continue;
			char why[256];
			if (ntemplate_check(c, o->value, why, sizeof(why)) < 0)
				return ycfg_fail(&x, NULL, c->integ[i].key, "%s template: %s", o->key, why);
		}
	}
	return 0;
}

void notify_config_free(struct notify_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->ninteg; i++) {
		for (size_t j = 0; j < c->integ[i].nopts; j++) {
			struct nopt *o = &c->integ[i].opts[j];
			if (is_secret(o->key) && o->value)
				explicit_bzero(o->value, strlen(o->value));
			free(o->key);
			free(o->value);
		}
	}
	free(c->integ);
	for (size_t i = 0; i < c->nrecv; i++) {
		free(c->recv[i].name);
		free(c->recv[i].integ);
	}
	free(c->recv);
	route_free(c->root);
	for (size_t i = 0; i < c->ninhibit; i++) {
		nmatchers_free(&c->inhibit[i].source);
		nmatchers_free(&c->inhibit[i].target);
		strlist_free(c->inhibit[i].equal, c->ninhibit ? c->inhibit[i].nequal : 0);
	}
	free(c->inhibit);
	for (size_t i = 0; i < c->ntmpl; i++) {
		free(c->tmpl[i].name);
		free(c->tmpl[i].text);
	}
	free(c->tmpl);
	free(c);
}

bool notify_config_secret_key(const char *key)
{
	return is_secret(key);
}
