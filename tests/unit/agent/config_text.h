/*
 * config_text.h - loads a config from text for the config tests: written to
 * a temporary file (so errors name a real file), loaded over the defaults.
 */
#ifndef MONITOR_TEST_CONFIG_TEXT_H
#define MONITOR_TEST_CONFIG_TEXT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"

static int load_text(struct agent_config *c, const char *text, char *err, size_t n)
{
	char path[] = "/tmp/monitor-test-config-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	ssize_t w = write(fd, text, strlen(text));
	close(fd);
	config_defaults(c);
	int rc = w < 0 ? -1 : config_load(c, path, err, n);
	unlink(path);
	return rc;
}

/* Loads the example config (docs/monitor.yml) over c, which the caller set
 * to defaults; prints why when it fails. Returns config_load's result. */
static inline int load_example(struct agent_config *c)
{
	char err[512] = "";
	int rc = config_load(c, "docs/monitor.yml", err, sizeof(err));
	if (rc)
		fprintf(stderr, "  %s\n", err);
	return rc;
}

#endif
