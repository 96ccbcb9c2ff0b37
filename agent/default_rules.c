/*
 * default_rules.c - puts the default rule pack (alerting/rules/
 * containers.yml, built into the binary) among the rule files: written to
 * <data_dir>/default_rules.yml and added to rule_files, unless the config
 * says default_rules: false. The rules engine then loads, reloads, checks
 * and lists it like any rule file, and users can read exactly what runs.
 */
#include "agent/agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int agent_default_rules(struct agent_config *cfg)
{
	if (!cfg->default_rules)
		return 0;
	char dir[PATH_MAX], path[PATH_MAX + 32], err[PATH_MAX + 256];
	/* Absolute: relative rule files are read from the config's directory. */
	if (!realpath(cfg->data_dir, dir)) {
		int e = errno;
		log_warn("rules: the default rules are not loaded: %s: %s", cfg->data_dir,
			 strerror(e));
		return -e;
	}
	snprintf(path, sizeof(path), "%s/default_rules.yml", dir);
	if (strlen(path) >= sizeof(cfg->rules.files[0])) {
		log_warn("rules: the default rules are not loaded: %s: path too long", path);
		return -ENAMETOOLONG;
	}
	if (cfg->rules.nfiles >= ALERT_MAX_RULE_FILES) {
		log_warn("rules: the default rules are not loaded: rule_files has %d entries "
			 "already", ALERT_MAX_RULE_FILES);
		return -ENOSPC;
	}
	int rc = alert_pack_install(path, err, sizeof(err));
	if (rc < 0) {
		log_warn("rules: the default rules are not loaded: %s", err);
		return rc;
	}
	memcpy(cfg->rules.files[cfg->rules.nfiles++], path, strlen(path) + 1); /* fits: checked */
	return 0;
}
