/*
 * rw_config.c - the remote_write: and external_labels: sections of the
 * config file, in the shape of prometheus.yml's (<remote_write> and
 * global.external_labels), so that a block copied from a Prometheus config
 * works here. config.c hands both top-level keys to rw_config_load. Every
 * key is checked; errors name the file, line and key. Secrets (passwords,
 * tokens) are kept only in memory and never appear in a message.
 */
#include "agent/rw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* This section's wording for a bad duration (the others quote the value). */
#define BAD_DURATION "expected a duration such as 30ms, 5s, 1m"

static int get_str(struct ycfg *x, const struct ynode *n, const char *key, char **out)
{
	if (n->type != YNODE_SCALAR)
		return ycfg_fail(x, n, key, "expected a string");
	if (strlen(n->scalar) > 4096)
		return ycfg_fail(x, n, key, "too long (at most 4096 bytes)");
	char *s = strdup(n->scalar);
	if (!s)
		return ycfg_fail(x, n, key, "out of memory");
	free(*out);
	*out = s;
	return 0;
}

void rw_endpoint_defaults(struct rw_endpoint_config *e)
{
	memset(e, 0, sizeof(*e));
	e->remote_timeout_ms = 30000;
	e->q = (struct rw_queue_config){
		.capacity = 10000, .max_shards = 50, .max_samples_per_send = 2000,
		.batch_send_deadline_ms = 5000, .min_backoff_ms = 30, .max_backoff_ms = 5000,
		.retry_on_http_429 = true, .max_pending_samples = 100000000,
	};
	e->send_metadata = true;
	e->metadata_interval_ms = 60000;
}

static void endpoint_fini(struct rw_endpoint_config *e)
{
	for (size_t i = 0; i < e->nrelabel; i++)
		rw_relabel_fini(&e->relabel[i]);
	free(e->url);
	free(e->name);
	free(e->basic_user);
	if (e->basic_password)
		explicit_bzero(e->basic_password, strlen(e->basic_password));
	free(e->basic_password);
	free(e->basic_password_file);
	if (e->bearer_token)
		explicit_bzero(e->bearer_token, strlen(e->bearer_token));
	free(e->bearer_token);
	free(e->bearer_token_file);
	free(e->ca_file);
	memset(e, 0, sizeof(*e));
}

void rw_config_free(struct rw_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nep; i++)
		endpoint_fini(&c->ep[i]);
	for (size_t i = 0; i < c->nexternal; i++) {
		free(c->ext_name[i]);
		free(c->ext_value[i]);
	}
	free(c);
}

static int load_relabel(struct ycfg *x, struct rw_relabel *r, const struct ynode *map)
{
	if (map->type != YNODE_MAP)
		return ycfg_fail(x, map, "write_relabel_configs", "expected a mapping per rule");
	int rc = 0;
	const struct ynode *where = map;
	for (const struct ynode *n = map->child; n && !rc; n = n->next) {
		if (!strcmp(n->key, "source_labels")) {
			if (n->type != YNODE_SEQ)
				return ycfg_fail(x, n, "source_labels",
						 "expected a list of label names");
			for (const struct ynode *s = n->child; s && !rc; s = s->next) {
				if (r->nsource >= RW_MAX_SOURCE_LABELS)
					return ycfg_fail(x, s, "source_labels", "at most %d",
							 RW_MAX_SOURCE_LABELS);
				if (s->type != YNODE_SCALAR || !store_label_name_valid(s->scalar))
					return ycfg_fail(x, s, "source_labels",
							 "expected a label name");
				rc = get_str(x, s, "source_labels", &r->source[r->nsource++]);
			}
		} else if (!strcmp(n->key, "separator")) {
			rc = get_str(x, n, "separator", &r->separator);
		} else if (!strcmp(n->key, "regex")) {
			rc = get_str(x, n, "regex", &r->regex);
			where = n;
		} else if (!strcmp(n->key, "target_label")) {
			rc = get_str(x, n, "target_label", &r->target);
		} else if (!strcmp(n->key, "replacement")) {
			rc = get_str(x, n, "replacement", &r->replacement);
		} else if (!strcmp(n->key, "action")) {
			if (n->type != YNODE_SCALAR || rw_action_parse(n->scalar, &r->action) < 0)
				return ycfg_fail(x, n, "action",
						 "expected replace, keep, drop, labeldrop, "
					    "labelkeep or labelmap (hashmod is not supported)");
		} else {
			rc = ycfg_fail(x, n, n->key, "unknown key in write_relabel_configs");
		}
	}
	if (rc)
		return rc;
	if (r->action == RW_REPLACE && !r->target)
		return ycfg_fail(x, map, "write_relabel_configs",
				 "action replace needs target_label");
	if ((r->action == RW_KEEP || r->action == RW_DROP) && !r->nsource)
		return ycfg_fail(x, map, "write_relabel_configs", "action %s needs source_labels",
				 r->action == RW_KEEP ? "keep" : "drop");
	char err[300];
	if (rw_relabel_compile(r, err, sizeof(err)) < 0)
		return ycfg_fail(x, where, "regex", "%s", err);
	return 0;
}

static int load_queue(struct ycfg *x, struct rw_queue_config *q, const struct ynode *map)
{
	if (map->type != YNODE_MAP)
		return ycfg_fail(x, map, "queue_config", "expected a mapping");
	for (const struct ynode *n = map->child; n; n = n->next) {
		int rc;
		const char *k = n->key;
		if (!strcmp(k, "capacity"))
			rc = ycfg_int(x, n, "queue_config.capacity", 1, 10000000, &q->capacity);
		else if (!strcmp(k, "max_shards"))
			rc = ycfg_int(x, n, "queue_config.max_shards", 1, 256, &q->max_shards);
		else if (!strcmp(k, "min_shards")) {
			int64_t ignored;
			rc = ycfg_int(x, n, "queue_config.min_shards", 1, 256, &ignored);
		} else if (!strcmp(k, "max_samples_per_send"))
			rc = ycfg_int(x, n, "queue_config.max_samples_per_send", 1,
				      RW_MAX_SAMPLES_PER_SEND, &q->max_samples_per_send);
		else if (!strcmp(k, "batch_send_deadline"))
			rc = ycfg_duration(x, n, "queue_config.batch_send_deadline", 100,
					   &q->batch_send_deadline_ms, BAD_DURATION);
		else if (!strcmp(k, "min_backoff"))
			rc = ycfg_duration(x, n, "queue_config.min_backoff", 1, &q->min_backoff_ms,
					   BAD_DURATION);
		else if (!strcmp(k, "max_backoff"))
			rc = ycfg_duration(x, n, "queue_config.max_backoff", 1, &q->max_backoff_ms,
					   BAD_DURATION);
		else if (!strcmp(k, "retry_on_http_429"))
			rc = ycfg_bool(x, n, "queue_config.retry_on_http_429",
				       &q->retry_on_http_429);
		else if (!strcmp(k, "max_pending_samples"))
			rc = ycfg_int(x, n, "queue_config.max_pending_samples", 1000, INT64_MAX / 4,
				      &q->max_pending_samples);
		else
			rc = ycfg_fail(x, n, k, "unknown key in queue_config");
		if (rc)
			return rc;
	}
	if (q->max_backoff_ms < q->min_backoff_ms)
		return ycfg_fail(x, map, "queue_config", "max_backoff is below min_backoff");
	return 0;
}

static int load_endpoint(struct ycfg *x, struct rw_endpoint_config *e, const struct ynode *map)
{
	if (map->type != YNODE_MAP)
		return ycfg_fail(x, map, "remote_write",
				 "expected a mapping per endpoint (url: ...)");
	for (const struct ynode *n = map->child; n; n = n->next) {
		int rc = 0;
		const char *k = n->key;
		if (!strcmp(k, "url")) {
			rc = get_str(x, n, "remote_write.url", &e->url);
			if (!rc && strncmp(e->url, "http://", 7) && strncmp(e->url, "https://", 8))
				rc = ycfg_fail(x, n, "remote_write.url",
					       "expected an http:// or https:// URL");
		} else if (!strcmp(k, "name")) {
			rc = get_str(x, n, "remote_write.name", &e->name);
		} else if (!strcmp(k, "remote_timeout")) {
			rc = ycfg_duration(x, n, "remote_write.remote_timeout", 100,
					   &e->remote_timeout_ms, BAD_DURATION);
		} else if (!strcmp(k, "write_relabel_configs")) {
			if (n->type != YNODE_SEQ)
				return ycfg_fail(x, n, k, "expected a list of rules");
			for (const struct ynode *r = n->child; r && !rc; r = r->next) {
				if (e->nrelabel >= RW_MAX_RELABEL)
					return ycfg_fail(x, r, k, "at most %d rules",
							 RW_MAX_RELABEL);
				struct rw_relabel *rr = &e->relabel[e->nrelabel++];
				memset(rr, 0, sizeof(*rr));
				rc = load_relabel(x, rr, r);
			}
		} else if (!strcmp(k, "queue_config")) {
			rc = load_queue(x, &e->q, n);
		} else if (!strcmp(k, "metadata_config")) {
			if (n->type != YNODE_MAP)
				return ycfg_fail(x, n, k, "expected a mapping");
			for (const struct ynode *m = n->child; m && !rc; m = m->next) {
				if (!strcmp(m->key, "send"))
					rc = ycfg_bool(x, m, "metadata_config.send",
						       &e->send_metadata);
				else if (!strcmp(m->key, "send_interval"))
					rc = ycfg_duration(x, m, "metadata_config.send_interval",
							   1000,
							   &e->metadata_interval_ms, BAD_DURATION);
				else if (!strcmp(m->key, "max_samples_per_send"))
					; /* all families fit in one request */
				else
					rc = ycfg_fail(x, m, m->key,
						       "unknown key in metadata_config");
			}
		} else if (!strcmp(k, "basic_auth")) {
			if (n->type != YNODE_MAP)
				return ycfg_fail(x, n, k, "expected a mapping (username, password "
						 "or password_file)");
			for (const struct ynode *m = n->child; m && !rc; m = m->next) {
				if (!strcmp(m->key, "username"))
					rc = get_str(x, m, "basic_auth.username", &e->basic_user);
				else if (!strcmp(m->key, "password"))
					rc = get_str(x, m, "basic_auth.password",
						     &e->basic_password);
				else if (!strcmp(m->key, "password_file"))
					rc = get_str(x, m, "basic_auth.password_file",
						     &e->basic_password_file);
				else
					rc = ycfg_fail(x, m, m->key, "unknown key in basic_auth");
			}
			if (!rc && !e->basic_user)
				rc = ycfg_fail(x, n, k, "needs username");
		} else if (!strcmp(k, "bearer_token")) {
			rc = get_str(x, n, k, &e->bearer_token);
		} else if (!strcmp(k, "bearer_token_file")) {
			rc = get_str(x, n, k, &e->bearer_token_file);
		} else if (!strcmp(k, "authorization")) {
			if (n->type != YNODE_MAP)
				return ycfg_fail(x, n, k, "expected a mapping (type, credentials "
						 "or credentials_file)");
			for (const struct ynode *m = n->child; m && !rc; m = m->next) {
				if (!strcmp(m->key, "type")) {
					if (m->type != YNODE_SCALAR || strcmp(m->scalar, "Bearer"))
						rc = ycfg_fail(x, m, "authorization.type",
							       "only Bearer is supported");
				} else if (!strcmp(m->key, "credentials"))
					rc = get_str(x, m, "authorization.credentials",
						     &e->bearer_token);
				else if (!strcmp(m->key, "credentials_file"))
					rc = get_str(x, m, "authorization.credentials_file",
						     &e->bearer_token_file);
				else
					rc = ycfg_fail(x, m, m->key,
						       "unknown key in authorization");
			}
		} else if (!strcmp(k, "tls_config")) {
			if (n->type != YNODE_MAP)
				return ycfg_fail(x, n, k, "expected a mapping");
			for (const struct ynode *m = n->child; m && !rc; m = m->next) {
				if (!strcmp(m->key, "ca_file"))
					rc = get_str(x, m, "tls_config.ca_file", &e->ca_file);
				else if (!strcmp(m->key, "insecure_skip_verify"))
					rc = ycfg_bool(x, m, "tls_config.insecure_skip_verify",
						       &e->tls_insecure);
				else
					rc = ycfg_fail(x, m, m->key, "unknown key in tls_config");
			}
		} else {
			rc = ycfg_fail(x, n, k, "unknown key in remote_write");
		}
		if (rc)
			return rc;
	}
	if (!e->url)
		return ycfg_fail(x, map, "remote_write", "an endpoint needs url");
	int auths = !!e->basic_user + !!e->bearer_token + !!e->bearer_token_file;
	if (auths > 1)
		return ycfg_fail(x, map, "remote_write", "at most one of basic_auth, bearer_token, "
				 "bearer_token_file (authorization)");
	if (e->basic_password && e->basic_password_file)
		return ycfg_fail(x, map, "basic_auth", "password and password_file are exclusive");
	if (!e->name) {
		/* host[:port] of the URL: what the metrics' remote_name says. */
		const char *h = strstr(e->url, "://") + 3;
		size_t len = strcspn(h, "/?#");
		e->name = strndup(h, len);
		if (!e->name)
			return ycfg_fail(x, map, "remote_write", "out of memory");
	}
	return 0;
}

static int load_external(struct ycfg *x, struct rw_config *c, const struct ynode *map)
{
	if (map->type != YNODE_MAP && !(map->type == YNODE_SCALAR && !map->scalar[0]))
		return ycfg_fail(x, map, "external_labels", "expected a mapping of label: value");
	c->external_set = true;
	for (const struct ynode *n = map->type == YNODE_MAP ? map->child : NULL; n; n = n->next) {
		if (c->nexternal >= RW_MAX_EXTERNAL)
			return ycfg_fail(x, n, "external_labels", "at most %d labels",
					 RW_MAX_EXTERNAL);
		if (!store_label_name_valid(n->key) || !strncmp(n->key, "__", 2))
			return ycfg_fail(x, n, n->key, "not a valid label name");
		for (size_t i = 0; i < c->nexternal; i++)
			if (!strcmp(c->ext_name[i], n->key))
				return ycfg_fail(x, n, n->key, "given twice");
		char *v = NULL;
		int rc = get_str(x, n, n->key, &v);
		if (rc)
			return rc;
		c->ext_name[c->nexternal] = strdup(n->key);
		c->ext_value[c->nexternal++] = v;
		if (!c->ext_name[c->nexternal - 1])
			return ycfg_fail(x, n, n->key, "out of memory");
	}
	return 0;
}

int rw_config_load(struct rw_config **cp, const struct ynode *n, const char *file, char *err,
		   size_t errsize)
{
	struct ycfg x = { file, err, errsize };
	if (!*cp && !(*cp = calloc(1, sizeof(**cp))))
		return ycfg_fail(&x, n, n->key, "out of memory");
	struct rw_config *c = *cp;
	if (!strcmp(n->key, "external_labels"))
		return load_external(&x, c, n);
	if (n->type == YNODE_SCALAR && !n->scalar[0])
		return 0; /* remote_write: with nothing under it */
	if (n->type != YNODE_SEQ)
		return ycfg_fail(&x, n, "remote_write",
				 "expected a list of endpoints (- url: ...)");
	for (const struct ynode *e = n->child; e; e = e->next) {
		if (c->nep >= RW_MAX_ENDPOINTS)
			return ycfg_fail(&x, e, "remote_write", "at most %d endpoints",
					 RW_MAX_ENDPOINTS);
		struct rw_endpoint_config *ep = &c->ep[c->nep++];
		rw_endpoint_defaults(ep);
		int rc = load_endpoint(&x, ep, e);
		if (rc)
			return rc;
		for (size_t i = 0; i + 1 < c->nep; i++)
			if (!strcmp(c->ep[i].name, ep->name))
				return ycfg_fail(&x, e, "remote_write.name",
						 "\"%s\" names two endpoints "
						 "(give each a distinct name:)", ep->name);
	}
	return 0;
}
