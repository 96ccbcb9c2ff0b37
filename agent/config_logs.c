/*
 * config_logs.c - the logs: section of the config file (container log
 * tailing and the log store), kept apart from config.c, which calls
 * config_logs_load from its top level. Errors name the file, line, column
 * and key, as every other section's do.
 */
#include "agent/agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void config_logs_defaults(struct logs_config *c)
{
	coll_log_config_defaults(&c->tail);
	logstore_config_defaults(&c->store);
	c->enabled = true;
}

void config_logs_fini(struct logs_config *c)
{
	coll_log_config_fini(&c->tail);
}

/* This section's wording for a bad duration or size. */
#define BAD_DURATION "expected a duration such as 500ms, 1s, 7d"
#define BAD_SIZE "expected a number or a size such as 64KiB or 1GiB (0: no limit)"

static int get_path(struct ycfg *x, const struct ynode *n, const char *key, char *out, size_t size)
{
	if (n->type != YNODE_SCALAR)
		return ycfg_fail(x, n, key, "expected a path (\"\" turns it off)");
	if (strlen(n->scalar) >= size)
		return ycfg_fail(x, n, key, "path too long");
	snprintf(out, size, "%s", n->scalar);
	return 0;
}

static int load_rate(struct ycfg *x, struct logs_config *c, const struct ynode *map)
{
	if (map->type != YNODE_MAP)
		return ycfg_fail(x, map, "logs.rate_limit", "expected a mapping (lines, bytes)");
	for (const struct ynode *n = map->child; n; n = n->next) {
		uint64_t v;
		int rc;
		if (!strcmp(n->key, "lines")) {
			rc = ycfg_size(x, n, "logs.rate_limit.lines", &v, BAD_SIZE);
			c->tail.rate_lines = (double)v;
		} else if (!strcmp(n->key, "bytes")) {
			rc = ycfg_size(x, n, "logs.rate_limit.bytes", &v, BAD_SIZE);
			c->tail.rate_bytes = (double)v;
		} else {
			rc = ycfg_fail(x, n, n->key,
				       "unknown key in logs.rate_limit (lines, bytes)");
		}
		if (rc)
			return rc;
	}
	return 0;
}

int config_logs_load(struct logs_config *c, const struct ynode *map, const char *file, char *err,
		     size_t errsize)
{
	struct ycfg x = { file, err, errsize };
	if (map->type != YNODE_MAP)
		return ycfg_fail(&x, map, "logs", "expected a mapping");
	for (const struct ynode *n = map->child; n; n = n->next) {
		int rc = 0;
		const char *k = n->key;
		uint64_t v;
		if (!strcmp(k, "enabled")) {
			rc = ycfg_bool(&x, n, "logs.enabled", &c->enabled);
		} else if (!strcmp(k, "retention")) {
			rc = ycfg_duration(&x, n, "logs.retention", 0, &c->store.retention_ms,
					   BAD_DURATION);
			if (!rc && c->store.retention_ms > 0 && c->store.retention_ms < 60000)
				rc = ycfg_fail(&x, n, "logs.retention",
					       "must be 0 (keep) or at least 1m");
		} else if (!strcmp(k, "max_size")) {
			rc = ycfg_size(&x, n, "logs.max_size", &c->store.max_size_bytes, BAD_SIZE);
			if (!rc && c->store.max_size_bytes && c->store.max_size_bytes < (1u << 20))
				rc = ycfg_fail(&x, n, "logs.max_size",
					       "must be 0 (no limit) or at least 1MiB");
		} else if (!strcmp(k, "retention_interval")) {
			rc = ycfg_duration(&x, n, "logs.retention_interval", 1000,
					   &c->store.retention_interval_ms, BAD_DURATION);
		} else if (!strcmp(k, "max_line")) {
			rc = ycfg_size(&x, n, "logs.max_line", &v, BAD_SIZE);
			if (!rc && (v < 1024 || v > (16u << 20)))
				rc = ycfg_fail(&x, n, "logs.max_line",
					       "must be between 1KiB and 16MiB");
			if (!rc)
				c->tail.line_cap = (size_t)v;
		} else if (!strcmp(k, "rate_limit")) {
			rc = load_rate(&x, c, n);
		} else if (!strcmp(k, "poll_interval")) {
			rc = ycfg_duration(&x, n, "logs.poll_interval", 10, &c->tail.poll_ms,
					   BAD_DURATION);
		} else if (!strcmp(k, "commit_interval")) {
			rc = ycfg_duration(&x, n, "logs.commit_interval", 0, &c->tail.commit_ms,
					   BAD_DURATION);
		} else if (!strcmp(k, "rescan_interval")) {
			rc = ycfg_duration(&x, n, "logs.rescan_interval", 100, &c->tail.rescan_ms,
					   BAD_DURATION);
		} else if (!strcmp(k, "docker_dir")) {
			rc = get_path(&x, n, "logs.docker_dir", c->tail.docker_dir,
				      sizeof(c->tail.docker_dir));
		} else if (!strcmp(k, "cri_dir")) {
			rc = get_path(&x, n, "logs.cri_dir", c->tail.cri_dir,
				      sizeof(c->tail.cri_dir));
		} else if (!strcmp(k, "cri_links_dir")) {
			rc = get_path(&x, n, "logs.cri_links_dir", c->tail.cri_links_dir,
				      sizeof(c->tail.cri_links_dir));
		} else if (!strcmp(k, "podman_dir")) {
			rc = get_path(&x, n, "logs.podman_dir", c->tail.podman_dir,
				      sizeof(c->tail.podman_dir));
		} else if (!strcmp(k, "paths")) {
			if (n->type != YNODE_SEQ)
				return ycfg_fail(&x, n, "logs.paths",
						 "expected a list of file globs");
			if (n->count > COLL_LOG_MAX_GLOBS)
				return ycfg_fail(&x, n, "logs.paths",
						 "too many globs (at most 32)");
			coll_log_config_fini(&c->tail);
			for (const struct ynode *e = n->child; e; e = e->next) {
				if (e->type != YNODE_SCALAR || e->scalar[0] != '/')
					return ycfg_fail(&x, e, "logs.paths",
							 "expected an absolute file glob");
				c->tail.globs[c->tail.nglobs] = strdup(e->scalar);
				if (!c->tail.globs[c->tail.nglobs])
					return -ENOMEM;
				c->tail.nglobs++;
			}
		} else {
			rc = ycfg_fail(&x, n, k, "unknown key in logs");
		}
		if (rc)
			return rc;
	}
	return 0;
}
