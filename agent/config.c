/*
 * config.c - the agent's YAML configuration file.
 *
 * Built-in defaults, then the file, then command-line flags (agent.c). Every
 * key is checked: an unknown key or a bad value is an error naming the file,
 * line and key, so a typo never silently falls back to a default.
 */
#include "agent/agent.h"
#include "agent/rw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void config_defaults(struct agent_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->listen, sizeof(c->listen), "%s", AGENT_DEFAULT_LISTEN);
	snprintf(c->data_dir, sizeof(c->data_dir), "%s", AGENT_DEFAULT_DATA_DIR);
	snprintf(c->host_root, sizeof(c->host_root), "/");
	c->interval_ms = 1000;
	c->log_level = LOG_INFO;
	c->docker_enabled = true;
	snprintf(c->docker_socket, sizeof(c->docker_socket), "/var/run/docker.sock");
	c->docker_timeout_ms = 2000;
	c->rescan_interval_ms = 60000;
	store_config_defaults(&c->storage);
	promql_opts_defaults(&c->query);
	ebpf_config_defaults(&c->ebpf);
	forecast_config_defaults(&c->forecast);
	alert_rules_config_defaults(&c->rules);
	c->default_rules = true;
	alert_remediation_config_defaults(&c->remediation);
	config_http_defaults(&c->http);
	c->keep_exited_ms = 3600 * 1000;
	c->docker_action_timeout_ms = 30000;
	c->fs_interval_ms = 60000;
	c->fs_walk_budget = 2000;
	c->network = true;
	c->cgroup_iterator = true;
	c->process_interval_ms = 10000;
	config_logs_defaults(&c->logs);
	static const char *const default_labels[] = {
		"com.docker.compose.project", "com.docker.compose.service",
		"monitor.expected", /* the default rules' ContainerExpectedGone */
	};
	for (size_t i = 0; i < ARRAY_LEN(default_labels); i++)
		c->label_allow[c->nlabel_allow++] = strdup(default_labels[i]);
}

void config_http_defaults(struct http_config *c)
{
	memset(c, 0, sizeof(*c));
	c->timeout_ms = 30000;
	c->header_timeout_ms = 30000;
	c->max_connections = 256;
	c->max_connections_per_address = 32;
	c->max_header_bytes = 64 * 1024;
	c->max_body_bytes = 1u << 20;
}

void config_fini(struct agent_config *c)
{
	for (size_t i = 0; i < c->nlabel_allow; i++)
		free(c->label_allow[i]);
	c->nlabel_allow = 0;
	for (size_t i = 0; i < c->ncgroup_match; i++)
		free(c->cgroup_match[i]);
	c->ncgroup_match = 0;
	for (size_t i = 0; i < c->http.ncors_origins; i++)
		free(c->http.cors_origins[i]);
	c->http.ncors_origins = 0;
	rw_config_free(c->rw);
	c->rw = NULL;
	notify_config_free(c->notify);
	c->notify = NULL;
}

static int load_docker(struct ycfg *x, struct agent_config *c, const struct ynode *map)
{
	if (map->type != YNODE_MAP)
		return ycfg_fail(x, map, "docker", "expected a mapping");
	for (const struct ynode *n = map->child; n; n = n->next) {
		int rc;
		if (!strcmp(n->key, "enabled"))
			rc = ycfg_bool(x, n, "docker.enabled", &c->docker_enabled);
		else if (!strcmp(n->key, "socket"))
			rc = ycfg_str(x, n, "docker.socket", c->docker_socket, sizeof(c->docker_socket));
		else if (!strcmp(n->key, "timeout"))
			rc = ycfg_duration(x, n, "docker.timeout", 10, &c->docker_timeout_ms, NULL);
		else if (!strcmp(n->key, "action_timeout"))
			rc = ycfg_duration(x, n, "docker.action_timeout", 100,
					   &c->docker_action_timeout_ms, NULL);
		else
			rc = ycfg_fail(x, n, n->key, "unknown key in docker");
		if (rc)
			return rc;
	}
	return 0;
}

/* A list of non-empty strings into dst (at most max), replacing what dst
 * held: collect.container_labels, discovery.cgroups. */
static int load_str_list(struct ycfg *x, const struct ynode *n, const char *name, char **dst,
			 size_t *count, size_t max, const char *what)
{
	if (n->type != YNODE_SEQ)
		return ycfg_fail(x, n, name, "expected a list");
	if (n->count > max)
		return ycfg_fail(x, n, name, "at most %zu %ss", max, what);
	for (size_t i = 0; i < *count; i++)
		free(dst[i]);
	*count = 0;
	for (const struct ynode *e = n->child; e; e = e->next) {
		if (e->type != YNODE_SCALAR || !*e->scalar)
			return ycfg_fail(x, e, name, "expected a %s", what);
		if (!(dst[*count] = strdup(e->scalar)))
			return ycfg_fail(x, e, name, "out of memory");
		(*count)++;
	}
	return 0;
}

static int load_collect(struct ycfg *x, struct agent_config *c, const struct ynode *map)
{
	if (map->type != YNODE_MAP)
		return ycfg_fail(x, map, "collect", "expected a mapping");
	for (const struct ynode *n = map->child; n; n = n->next) {
		int rc = 0;
		if (!strcmp(n->key, "percpu")) {
			rc = ycfg_bool(x, n, "collect.percpu", &c->percpu);
		} else if (!strcmp(n->key, "cgroup_iterator")) {
			rc = ycfg_bool(x, n, "collect.cgroup_iterator", &c->cgroup_iterator);
		} else if (!strcmp(n->key, "fs_usage_interval")) {
			/* 0 turns the walks off; else at least 1s. */
			int64_t ms;
			rc = ycfg_duration(x, n, "collect.fs_usage_interval", 0, &ms, NULL);
			if (!rc && ms > 0 && ms < 1000)
				rc = ycfg_fail(x, n, "collect.fs_usage_interval",
					       "must be 0 (off) or at least 1s");
			if (!rc)
				c->fs_interval_ms = ms;
		} else if (!strcmp(n->key, "fs_walk_budget")) {
			rc = ycfg_int(x, n, "collect.fs_walk_budget", 1, 10000000, &c->fs_walk_budget);
		} else if (!strcmp(n->key, "network")) {
			rc = ycfg_bool(x, n, "collect.network", &c->network);
		} else if (!strcmp(n->key, "process_interval")) {
			/* 0 turns process counting off; else at least 100ms. */
			int64_t ms;
			rc = ycfg_duration(x, n, "collect.process_interval", 0, &ms, NULL);
			if (!rc && ms > 0 && ms < 100)
				rc = ycfg_fail(x, n, "collect.process_interval",
					       "must be 0 (off) or at least 100ms");
			if (!rc)
				c->process_interval_ms = ms;
		} else if (!strcmp(n->key, "container_labels")) {
			/* Replaces the default list (and only it: config_fini would
			 * also drop sections already read). */
			rc = load_str_list(x, n, "collect.container_labels", c->label_allow,
					   &c->nlabel_allow, AGENT_MAX_LABEL_ALLOW, "label name");
		} else {
			rc = ycfg_fail(x, n, n->key, "unknown key in collect");
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int load_discovery(struct ycfg *x, struct agent_config *c, const struct ynode *map)
{
	if (map->type != YNODE_MAP)
		return ycfg_fail(x, map, "discovery", "expected a mapping");
	for (const struct ynode *n = map->child; n; n = n->next) {
		int rc;
		if (!strcmp(n->key, "rescan_interval"))
			rc = ycfg_duration(x, n, "discovery.rescan_interval", 1000,
					   &c->rescan_interval_ms, NULL);
		else if (!strcmp(n->key, "keep_exited"))
			rc = ycfg_duration(x, n, "discovery.keep_exited", 0, &c->keep_exited_ms,
					   NULL);
		else if (!strcmp(n->key, "cgroups"))
			rc = load_str_list(x, n, "discovery.cgroups", c->cgroup_match,
					   &c->ncgroup_match, AGENT_MAX_CGROUP_MATCH, "glob");
		else
			return ycfg_fail(x, n, n->key, "unknown key in discovery");
		if (rc)
			return rc;
	}
	return 0;
}

static int load_tls(struct ycfg *x, struct agent_config *c, const struct ynode *map)
{
	if (map->type != YNODE_MAP)
		return ycfg_fail(x, map, "tls", "expected a mapping with cert_file and key_file");
	for (const struct ynode *n = map->child; n; n = n->next) {
		bool cert = !strcmp(n->key, "cert_file");
		if (!cert && strcmp(n->key, "key_file"))
			return ycfg_fail(x, n, n->key, "unknown key in tls");
		char *dst = cert ? c->tls.cert_file : c->tls.key_file;
		int rc = ycfg_str(x, n, cert ? "tls.cert_file" : "tls.key_file", dst, PATH_MAX);
		if (rc)
			return rc;
	}
	if (!c->tls.cert_file[0] != !c->tls.key_file[0])
		return ycfg_fail(x, map, "tls", "cert_file and key_file go together");
	return 0;
}

static int load_auth(struct ycfg *x, struct agent_config *c, const struct ynode *map)
{
	if (map->type == YNODE_SCALAR && !map->quoted && !map->scalar[0])
		return 0; /* "auth:" with every key commented out */
	if (map->type != YNODE_MAP)
		return ycfg_fail(x, map, "auth", "expected a mapping");
	for (const struct ynode *n = map->child; n; n = n->next) {
		bool rd = !strcmp(n->key, "read_token_file");
		bool ba = !strcmp(n->key, "basic_auth_file");
		if (!rd && !ba && strcmp(n->key, "admin_token_file"))
			return ycfg_fail(x, n, n->key, "unknown key in auth");
		char *dst = rd ? c->read_token_file : ba ? c->basic_auth_file : c->admin_token_file;
		const char *key = rd ? "auth.read_token_file" : ba ? "auth.basic_auth_file"
							     : "auth.admin_token_file";
		int rc = ycfg_str(x, n, key, dst, PATH_MAX);
		if (rc)
			return rc;
		if (!dst[0])
			return ycfg_fail(x, n, key, "expected a file name");
	}
	return 0;
}

static int get_u32(struct ycfg *x, const struct ynode *n, const char *key, uint32_t min,
		   uint32_t max, uint32_t *out)
{
	char *end;
	if (n->type != YNODE_SCALAR || n->quoted || !*n->scalar)
		return ycfg_fail(x, n, key, "expected a number");
	errno = 0;
	unsigned long long v = strtoull(n->scalar, &end, 10);
	if (*end || errno || n->scalar[0] == '-' || v < min || v > max)
		return ycfg_fail(x, n, key, "expected a number from %u to %u", min, max);
	*out = (uint32_t)v;
	return 0;
}

/* A tracepoint name of the block category: letters, digits, '_'. Whether the
 * kernel has it is the probe's business (it says so and stays off). */
static int get_tracepoint(struct ycfg *x, const struct ynode *n, const char *key, char *out,
			  size_t size)
{
	int rc = ycfg_str(x, n, key, out, size);
	if (rc)
		return rc;
	if (!*out || strspn(out, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(out))
		return ycfg_fail(x, n, key, "expected a tracepoint name such as block_rq_issue");
	return 0;
}

/* ebpf.<probe>: true/false, or a mapping with enabled (and block's start/done). */
static int load_ebpf_probe(struct ycfg *x, struct agent_config *c, const struct ynode *n,
			   enum ebpf_probe p)
{
	char key[64];
	snprintf(key, sizeof(key), "ebpf.%s", ebpf_probe_name(p));
	if (n->type != YNODE_MAP)
		return ycfg_bool(x, n, key, &c->ebpf.probe[p]);
	for (const struct ynode *e = n->child; e; e = e->next) {
		int rc;
		char sub[96];
		snprintf(sub, sizeof(sub), "%s.%s", key, e->key);
		if (!strcmp(e->key, "enabled"))
			rc = ycfg_bool(x, e, sub, &c->ebpf.probe[p]);
		else if (p == EBPF_BLOCK && !strcmp(e->key, "start"))
			rc = get_tracepoint(x, e, sub, c->ebpf.block_start, sizeof(c->ebpf.block_start));
		else if (p == EBPF_BLOCK && !strcmp(e->key, "done"))
			rc = get_tracepoint(x, e, sub, c->ebpf.block_done, sizeof(c->ebpf.block_done));
		else
			rc = ycfg_fail(x, e, sub, "unknown key in %s", key);
		if (rc)
			return rc;
	}
	return 0;
}

static int load_ebpf(struct ycfg *x, struct agent_config *c, const struct ynode *map)
{
	if (map->type != YNODE_MAP)
		return ycfg_fail(x, map, "ebpf", "expected a mapping");
	for (const struct ynode *n = map->child; n; n = n->next) {
		int rc = 0, probe = -1;
		for (int p = 0; p < EBPF__PROBES; p++)
			if (!strcmp(n->key, ebpf_probe_name((enum ebpf_probe)p)))
				probe = p;
		if (probe >= 0) {
			rc = load_ebpf_probe(x, c, n, (enum ebpf_probe)probe);
		} else if (!strcmp(n->key, "enabled")) {
			rc = ycfg_bool(x, n, "ebpf.enabled", &c->ebpf.enabled);
		} else if (!strcmp(n->key, "attach")) {
			const char *v = n->type == YNODE_SCALAR ? n->scalar : "";
			if (!strcmp(v, "auto"))
				c->ebpf.attach = EBPF_ATTACH_AUTO;
			else if (!strcmp(v, "raw_tracepoint"))
				c->ebpf.attach = EBPF_ATTACH_RAW;
			else if (!strcmp(v, "tracepoint"))
				c->ebpf.attach = EBPF_ATTACH_CLASSIC;
			else
				return ycfg_fail(x, n, "ebpf.attach", "expected auto, raw_tracepoint or tracepoint");
		} else if (!strcmp(n->key, "max_cgroups")) {
			rc = get_u32(x, n, "ebpf.max_cgroups", 16, 1u << 22, &c->ebpf.max_cgroups);
		} else if (!strcmp(n->key, "max_sockets")) {
			rc = get_u32(x, n, "ebpf.max_sockets", 16, 1u << 24, &c->ebpf.max_sockets);
		} else if (!strcmp(n->key, "max_inflight_io")) {
			rc = get_u32(x, n, "ebpf.max_inflight_io", 16, 1u << 22, &c->ebpf.max_inflight_io);
		} else {
			rc = ycfg_fail(x, n, n->key, "unknown key in ebpf");
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* A size from lo to hi bytes (ycfg_size's units). */
static int get_size_u32(struct ycfg *x, const struct ynode *n, const char *key, uint32_t lo,
			uint32_t hi, uint32_t *out)
{
	uint64_t v;
	int rc = ycfg_size(x, n, key, &v, NULL);
	if (rc)
		return rc;
	if (v < lo || v > hi)
		return ycfg_fail(x, n, key, "must be from %u to %u bytes", lo, hi);
	*out = (uint32_t)v;
	return 0;
}

/* An origin as browsers send it: scheme://host[:port], nothing after; or "*". */
static bool cors_origin_ok(const char *o)
{
	if (!strcmp(o, "*"))
		return true;
	const char *rest = !strncmp(o, "http://", 7) ? o + 7 : !strncmp(o, "https://", 8) ? o + 8
											 : NULL;
	return rest && *rest && !strpbrk(rest, "/?#*@ \t") && strlen(o) < 256;
}

static int load_cors(struct ycfg *x, struct http_config *h, const struct ynode *n)
{
	const char *key = "http.cors_origins";
	if (n->type == YNODE_SCALAR && !n->quoted && !n->scalar[0])
		return 0; /* "cors_origins:" with nothing: off */
	if (n->type != YNODE_SEQ)
		return ycfg_fail(x, n, key, "expected a list of origins such as https://grafana.example");
	if (n->count > HTTP_CORS_MAX)
		return ycfg_fail(x, n, key, "at most %d origins", HTTP_CORS_MAX);
	for (const struct ynode *e = n->child; e; e = e->next) {
		if (e->type != YNODE_SCALAR || !cors_origin_ok(e->scalar))
			return ycfg_fail(x, e, key,
					 "expected \"*\" or an origin scheme://host[:port] "
					 "(http or https, no path), got \"%s\"",
					 e->type == YNODE_SCALAR ? e->scalar : "a collection");
		char *dup = strdup(e->scalar);
		if (!dup)
			return ycfg_fail(x, e, key, "out of memory");
		h->cors_origins[h->ncors_origins++] = dup;
	}
	return 0;
}

/* http: the server's limits (http.c) and CORS (cors.c). */
static int load_http(struct ycfg *x, struct agent_config *c, const struct ynode *map)
{
	struct http_config *h = &c->http;
	const struct ynode *per_addr = map;
	if (map->type != YNODE_MAP)
		return ycfg_fail(x, map, "http", "expected a mapping");
	for (const struct ynode *n = map->child; n; n = n->next) {
		int rc;
		char key[64];
		snprintf(key, sizeof(key), "http.%s", n->key);
		if (!strcmp(n->key, "timeout") || !strcmp(n->key, "header_timeout")) {
			bool idle = n->key[0] == 't';
			int64_t *dst = idle ? &h->timeout_ms : &h->header_timeout_ms;
			/* libmicrohttpd counts idle time in whole seconds. */
			rc = ycfg_duration(x, n, key, idle ? 1000 : 100, dst, NULL);
			if (!rc && *dst > 3600 * 1000)
				rc = ycfg_fail(x, n, key, "must be at most 1h");
			if (!rc && idle && *dst % 1000)
				rc = ycfg_fail(x, n, key, "must be whole seconds");
		} else if (!strcmp(n->key, "max_connections")) {
			rc = get_u32(x, n, key, 1, 60000, &h->max_connections);
		} else if (!strcmp(n->key, "max_connections_per_address")) {
			rc = get_u32(x, n, key, 1, 60000, &h->max_connections_per_address);
			per_addr = n;
		} else if (!strcmp(n->key, "max_header_bytes")) {
			rc = get_size_u32(x, n, key, 4096, 16u << 20, &h->max_header_bytes);
		} else if (!strcmp(n->key, "max_body_bytes")) {
			rc = get_size_u32(x, n, key, 1024, 1u << 30, &h->max_body_bytes);
		} else if (!strcmp(n->key, "cors_origins")) {
			rc = load_cors(x, h, n);
		} else {
			rc = ycfg_fail(x, n, n->key, "unknown key in http");
		}
		if (rc)
			return rc;
	}
	if (h->max_connections_per_address > h->max_connections)
		return ycfg_fail(x, per_addr, "http.max_connections_per_address",
				 "must not exceed http.max_connections (%u)", h->max_connections);
	return 0;
}

static int load_storage(struct ycfg *x, struct agent_config *c, const struct ynode *map)
{
	struct store_config *s = &c->storage;
	if (map->type != YNODE_MAP)
		return ycfg_fail(x, map, "storage", "expected a mapping");
	for (const struct ynode *n = map->child; n; n = n->next) {
		int rc = 0;
		if (!strcmp(n->key, "enabled")) {
			rc = ycfg_bool(x, n, "storage.enabled", &s->enabled);
		} else if (!strcmp(n->key, "max_size")) {
			rc = ycfg_size(x, n, "storage.max_size", &s->max_size_bytes, NULL);
		} else if (!strcmp(n->key, "flush_interval")) {
			rc = ycfg_duration(x, n, "storage.flush_interval", 100, &s->flush_interval_ms, NULL);
			if (!rc && s->flush_interval_ms > 3600 * 1000)
				rc = ycfg_fail(x, n, "storage.flush_interval",
					       "must be at most 1h");
		} else if (!strcmp(n->key, "evict_stale_after")) {
			rc = ycfg_duration(x, n, "storage.evict_stale_after", 0,
					   &s->evict_stale_after_ms, NULL);
		} else if (!strcmp(n->key, "retention")) {
			if (n->type != YNODE_MAP)
				return ycfg_fail(x, n, "storage.retention", "expected a mapping (raw, 1m, 1h)");
			for (const struct ynode *r = n->child; r && !rc; r = r->next) {
				int tier = !strcmp(r->key, "raw") ? STORE_TIER_RAW :
					   !strcmp(r->key, "1m") ? STORE_TIER_1M :
					   !strcmp(r->key, "1h") ? STORE_TIER_1H : -1;
				char key[64];
				snprintf(key, sizeof(key), "storage.retention.%s", r->key);
				if (tier < 0)
					rc = ycfg_fail(x, r, key, "unknown tier (raw, 1m or 1h)");
				else
					rc = ycfg_duration(x, r, key, 60000, &s->retention_ms[tier],
							   NULL);
			}
		} else {
			rc = ycfg_fail(x, n, n->key, "unknown key in storage");
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* query: the PromQL engine's limits (docs/monitor.yml). */
static int load_query(struct ycfg *x, struct agent_config *c, const struct ynode *map)
{
	struct promql_opts *q = &c->query;
	if (map->type != YNODE_MAP)
		return ycfg_fail(x, map, "query", "expected a mapping");
	for (const struct ynode *n = map->child; n; n = n->next) {
		int rc;
		int64_t v;
		if (!strcmp(n->key, "timeout")) {
			rc = ycfg_duration(x, n, "query.timeout", 1, &q->timeout_ms, NULL);
		} else if (!strcmp(n->key, "max_samples")) {
			rc = ycfg_int(x, n, "query.max_samples", 1000, INT64_MAX, &v);
			if (!rc)
				q->max_samples = (uint64_t)v;
		} else if (!strcmp(n->key, "lookback_delta")) {
			rc = ycfg_duration(x, n, "query.lookback_delta", 1000, &q->lookback_ms,
					   NULL);
		} else if (!strcmp(n->key, "subquery_step")) {
			rc = ycfg_duration(x, n, "query.subquery_step", 1, &q->subquery_step_ms,
					   NULL);
		} else {
			rc = ycfg_fail(x, n, n->key, "unknown key in query");
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int load_top(struct ycfg *x, struct agent_config *c, const struct ynode *n)
{
	const char *k = n->key;
	if (!strcmp(k, "logs"))
		return config_logs_load(&c->logs, n, x->file, x->err, x->errsize);
	if (!strcmp(k, "listen"))
		return ycfg_str(x, n, k, c->listen, sizeof(c->listen));
	if (!strcmp(k, "listen_remote"))
		return ycfg_bool(x, n, k, &c->listen_remote);
	if (!strcmp(k, "data_dir"))
		return ycfg_str(x, n, k, c->data_dir, sizeof(c->data_dir));
	if (!strcmp(k, "host_root"))
		return ycfg_str(x, n, k, c->host_root, sizeof(c->host_root));
	if (!strcmp(k, "interval"))
		return ycfg_duration(x, n, k, 100, &c->interval_ms, NULL);
	if (!strcmp(k, "log_level")) {
		if (n->type != YNODE_SCALAR || log_parse_level(n->scalar, &c->log_level) < 0)
			return ycfg_fail(x, n, k, "expected error, warn, info or debug");
		return 0;
	}
	if (!strcmp(k, "docker"))
		return load_docker(x, c, n);
	if (!strcmp(k, "collect"))
		return load_collect(x, c, n);
	if (!strcmp(k, "discovery"))
		return load_discovery(x, c, n);
	if (!strcmp(k, "storage"))
		return load_storage(x, c, n);
	if (!strcmp(k, "query"))
		return load_query(x, c, n);
	if (!strcmp(k, "ebpf"))
		return load_ebpf(x, c, n);
	if (!strcmp(k, "auth"))
		return load_auth(x, c, n);
	if (!strcmp(k, "tls"))
		return load_tls(x, c, n);
	if (!strcmp(k, "http"))
		return load_http(x, c, n);
	if (!strcmp(k, "default_rules"))
		return ycfg_bool(x, n, k, &c->default_rules);
	if (!strcmp(k, "remediation"))
		return alert_remediation_config_load(&c->remediation, n, x->file, x->err,
						     x->errsize);
	if (!strcmp(k, "rule_files") || !strcmp(k, "rules"))
		return config_rules_load(&c->rules, n, x->file, x->err, x->errsize);
	if (!strcmp(k, "forecast"))
		return forecast_config_load(&c->forecast, n, x->file, x->err, x->errsize);
	if (!strcmp(k, "remote_write") || !strcmp(k, "external_labels"))
		return rw_config_load(&c->rw, n, x->file, x->err, x->errsize);
	if (notify_config_key(k))
		return notify_config_load(&c->notify, n, x->file, x->err, x->errsize);
	return ycfg_fail(x, n, k, "unknown key");
}

int config_load(struct agent_config *c, const char *path, char *err, size_t errsize)
{
	struct ydoc doc;
	int rc = ydoc_load(&doc, path, err, errsize);
	if (rc < 0)
		return rc;
	struct ycfg x = { path, err, errsize };
	snprintf(c->config_path, sizeof(c->config_path), "%s", path);
	if (doc.root && doc.root->type != YNODE_MAP) {
		rc = ycfg_fail(&x, doc.root, "(top level)", "expected a mapping of keys");
	} else if (doc.root) {
		for (const struct ynode *n = doc.root->child; n && rc == 0; n = n->next)
			rc = load_top(&x, c, n);
	}
	if (rc == 0) /* routes name receivers defined anywhere in the file */
		rc = notify_config_check(c->notify, path, err, errsize);
	ydoc_free(&doc);
	return rc;
}
