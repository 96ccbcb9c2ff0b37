/*
 * config_rules.c - the rule_files: and rules: keys of the agent's config.
 *
 *   rule_files:                 # as in prometheus.yml: paths or globs,
 *     - /etc/monitor/rules/NAME.yml # or a glob; relative ones are from the
 *                                   # config's directory
 *   rules:
 *     evaluation_interval: 15s  # groups without their own interval
 *     resend_delay: 1m          # firing alerts go to the notifier again this often
 *     outage_tolerance: 1h      # alert state older than this is not restored
 *     for_grace_period: 0s      # least time left to a restored pending alert's for
 *     external_url: http://host:9838  # in generator URLs and $externalURL
 *
 * $externalLabels come from the top-level external_labels: (rw_config.c).
 */
#include "agent/agent.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Durations here are PromQL's (1h30m), as in the rule files themselves. */
static int get_dur(const struct ycfg *x, const struct ynode *n, const char *key, int64_t min_ms,
		   int64_t *out)
{
	if (n->type != YNODE_SCALAR || promql_parse_duration(n->scalar, false, out) < 0)
		return ycfg_fail(x, n, key,
				 "expected a duration such as 15s, 1m or 1h30m (got \"%s\")",
				 n->type == YNODE_SCALAR ? n->scalar : "a collection");
	if (*out < min_ms)
		return ycfg_fail(x, n, key, "must be at least %lldms", (long long)min_ms);
	return 0;
}

int config_rules_load(struct alert_rules_config *c, const struct ynode *n, const char *file,
		      char *err, size_t errsize)
{
	struct ycfg x = { file, err, errsize };
	if (!strcmp(n->key, "rule_files")) {
		if (n->type == YNODE_SCALAR && !n->quoted && !*n->scalar)
			return 0; /* "rule_files:" with every entry commented out */
		if (n->type != YNODE_SEQ)
			return ycfg_fail(&x, n, "rule_files", "expected a list of paths or globs");
		if (c->nfiles + n->count > ALERT_MAX_RULE_FILES)
			return ycfg_fail(&x, n, "rule_files", "too many entries (at most 64)");
		for (const struct ynode *e = n->child; e; e = e->next) {
			if (e->type != YNODE_SCALAR || !*e->scalar)
				return ycfg_fail(&x, e, "rule_files", "expected a path or a glob");
			if (strlen(e->scalar) >= sizeof(c->files[0]))
				return ycfg_fail(&x, e, "rule_files",
						 "path too long (at most 1023 bytes)");
			snprintf(c->files[c->nfiles++], sizeof(c->files[0]), "%s", e->scalar);
		}
		char dir[sizeof(c->base_dir)];
		snprintf(dir, sizeof(dir), "%s", file);
		snprintf(c->base_dir, sizeof(c->base_dir), "%s", dirname(dir));
		return 0;
	}
	if (n->type == YNODE_SCALAR && !n->quoted && !*n->scalar)
		return 0;
	if (n->type != YNODE_MAP)
		return ycfg_fail(&x, n, "rules", "expected a mapping");
	for (const struct ynode *e = n->child; e; e = e->next) {
		char key[128];
		snprintf(key, sizeof(key), "rules.%s", e->key);
		int rc;
		if (!strcmp(e->key, "evaluation_interval"))
			rc = get_dur(&x, e, key, 100, &c->eval_interval_ms);
		else if (!strcmp(e->key, "resend_delay"))
			rc = get_dur(&x, e, key, 0, &c->resend_delay_ms);
		else if (!strcmp(e->key, "outage_tolerance"))
			rc = get_dur(&x, e, key, 0, &c->outage_tolerance_ms);
		else if (!strcmp(e->key, "for_grace_period"))
			rc = get_dur(&x, e, key, 0, &c->for_grace_period_ms);
		else if (!strcmp(e->key, "external_url")) {
			if (e->type != YNODE_SCALAR || strlen(e->scalar) >= sizeof(c->external_url))
				return ycfg_fail(&x, e, key, "expected a URL (at most 1023 bytes)");
			snprintf(c->external_url, sizeof(c->external_url), "%s", e->scalar);
			size_t len = strlen(c->external_url);
			while (len && c->external_url[len - 1] == '/')
				c->external_url[--len] = '\0';
			rc = 0;
		} else {
			rc = ycfg_fail(&x, e, e->key,
				       "unknown key in rules (evaluation_interval, resend_delay, "
				       "outage_tolerance, for_grace_period, external_url)");
		}
		if (rc)
			return rc;
	}
	return 0;
}
