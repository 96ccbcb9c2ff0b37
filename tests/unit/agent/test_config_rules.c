/*
 * test_config_rules.c - rule_files: and rules: in the agent's config:
 * defaults, the example file, every key, a base directory for relative
 * paths, and errors that name the file, line and key.
 */
#include "agent/agent.h"
#include "../test.h"
#include "config_text.h"

static void test_defaults_and_example(void)
{
	struct agent_config c;
	config_defaults(&c);
	CHECK_EQ_INT(c.rules.nfiles, 0);
	CHECK_EQ_INT(c.rules.eval_interval_ms, 15000);
	CHECK_EQ_INT(c.rules.resend_delay_ms, 60000);
	CHECK_EQ_INT(c.rules.outage_tolerance_ms, 3600000);
	CHECK_EQ_INT(c.rules.for_grace_period_ms, 0);
	CHECK_EQ_INT(load_example(&c), 0);
	CHECK_EQ_INT(c.rules.nfiles, 0);
	CHECK_EQ_INT(c.rules.eval_interval_ms, 15000);
	config_fini(&c);
}

static void test_values(void)
{
	struct agent_config c;
	char err[512] = "";
	int rc = load_text(&c, "rule_files:\n  - /etc/monitor/rules/*.yml\n  - local.yml\n"
			       "rules:\n  evaluation_interval: 30s\n  resend_delay: 2m\n"
			       "  outage_tolerance: 2h\n  for_grace_period: 10m\n"
			       "  external_url: http://mon.example:9838/\n"
			       "collect:\n  container_labels: [a]\n", err, sizeof(err));
	if (rc)
		fprintf(stderr, "  %s\n", err);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(c.rules.nfiles, 2);
	CHECK_STR(c.rules.files[0], "/etc/monitor/rules/*.yml");
	CHECK_STR(c.rules.files[1], "local.yml");
	CHECK_STR(c.rules.base_dir, "/tmp"); /* the config's directory */
	CHECK_EQ_INT(c.rules.eval_interval_ms, 30000);
	CHECK_EQ_INT(c.rules.resend_delay_ms, 120000);
	CHECK_EQ_INT(c.rules.outage_tolerance_ms, 7200000);
	CHECK_EQ_INT(c.rules.for_grace_period_ms, 600000);
	CHECK_STR(c.rules.external_url, "http://mon.example:9838"); /* no trailing slash */
	config_fini(&c);
	/* Empty forms. */
	CHECK_EQ_INT(load_text(&c, "rule_files:\nrules:\n", err, sizeof(err)), 0);
	CHECK_EQ_INT(c.rules.nfiles, 0);
	config_fini(&c);
}

static void test_errors(void)
{
	struct agent_config c;
	char err[512] = "";
	CHECK(load_text(&c, "rule_files: rules.yml\n", err, sizeof(err)) < 0);
	CHECK(strstr(err, ":1:") && strstr(err, "rule_files: expected a list of paths or globs"));
	config_fini(&c);
	CHECK(load_text(&c, "rule_files:\n  - ''\n", err, sizeof(err)) < 0);
	CHECK(strstr(err, ":2:") && strstr(err, "rule_files: expected a path or a glob"));
	config_fini(&c);
	CHECK(load_text(&c, "rules:\n  evaluation_interval: 50ms\n", err, sizeof(err)) < 0);
	CHECK(strstr(err, ":2:") && strstr(err, "rules.evaluation_interval: must be at least 100ms"));
	config_fini(&c);
	CHECK(load_text(&c, "rules:\n  resend_delay: soon\n", err, sizeof(err)) < 0);
	CHECK(strstr(err, "rules.resend_delay: expected a duration such as 15s, 1m or 1h30m "
			  "(got \"soon\")") != NULL);
	config_fini(&c);
	CHECK(load_text(&c, "rules:\n  evaluation_intervall: 1m\n", err, sizeof(err)) < 0);
	CHECK(strstr(err, ":2:") && strstr(err, "evaluation_intervall: unknown key in rules"));
	config_fini(&c);
	CHECK(load_text(&c, "rules: [1]\n", err, sizeof(err)) < 0);
	CHECK(strstr(err, "rules: expected a mapping") != NULL);
	config_fini(&c);
}

int main(void)
{
	RUN(test_defaults_and_example);
	RUN(test_values);
	RUN(test_errors);
	TEST_END();
}
