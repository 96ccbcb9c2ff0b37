/*
 * test_config.c - the YAML config: defaults, every key, and errors that
 * name the file, line and key.
 */
#include "agent/agent.h"
#include "../test.h"
#include "config_text.h"

#include <errno.h>
#include <unistd.h>

static void test_defaults(void)
{
	struct agent_config c;
	config_defaults(&c);
	CHECK_STR(c.listen, "127.0.0.1:9838");
	CHECK_EQ_INT(c.interval_ms, 1000);
	CHECK(c.docker_enabled);
	CHECK(!c.percpu);
	/* compose project and service, and monitor.expected for the default
	 * rules' ContainerExpectedGone */
	CHECK_EQ_INT(c.nlabel_allow, 3);
	CHECK_STR(c.label_allow[2], "monitor.expected");
	config_fini(&c);
}

/* collect.container_labels replaces the default list, and only it: the
 * sections read before it stay. */
static void test_labels_keep_other_sections(void)
{
	struct agent_config c;
	char err[512] = "";
	int rc = load_text(&c,
			   "remote_write:\n  - url: http://127.0.0.1:9/api/v1/write\n"
			   "collect:\n  container_labels: [team]\n",
			   err, sizeof(err));
	if (rc)
		fprintf(stderr, "  %s\n", err);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(c.nlabel_allow, 1);
	CHECK(c.rw != NULL);
	config_fini(&c);
}

static void test_example_file(void)
{
	struct agent_config c;
	config_defaults(&c);
	CHECK_EQ_INT(load_example(&c), 0);
	CHECK_STR(c.docker_socket, "/var/run/docker.sock");
	CHECK_EQ_INT(c.rescan_interval_ms, 60000);
	config_fini(&c);
}

static void test_values(void)
{
	struct agent_config c;
	char err[512] = "";
	int rc = load_text(&c,
			   "listen: \"[::1]:9999\"\ninterval: 250ms\nlog_level: debug\n"
			   "docker:\n  enabled: false\n  timeout: 5s\n"
			   "collect:\n  percpu: true\n  container_labels: [team, app.kubernetes.io/name]\n"
			   "discovery:\n  rescan_interval: 5m\n",
			   err, sizeof(err));
	CHECK_EQ_INT(rc, 0);
	CHECK_STR(c.listen, "[::1]:9999");
	CHECK_EQ_INT(c.interval_ms, 250);
	CHECK_EQ_INT(c.log_level, LOG_DEBUG);
	CHECK(!c.docker_enabled);
	CHECK_EQ_INT(c.docker_timeout_ms, 5000);
	CHECK(c.percpu);
	CHECK_EQ_INT(c.nlabel_allow, 2);
	CHECK_STR(c.label_allow[1], "app.kubernetes.io/name");
	CHECK_EQ_INT(c.rescan_interval_ms, 300000);
	config_fini(&c);
}

static void expect_error(const char *text, const char *needle)
{
	struct agent_config c;
	char err[512] = "";
	int rc = load_text(&c, text, err, sizeof(err));
	CHECK(rc < 0);
	if (!strstr(err, needle)) {
		fprintf(stderr, "  error \"%s\" lacks \"%s\"\n", err, needle);
		t_cur_failed = 1;
	}
	CHECK(strstr(err, "/tmp/monitor-test-config-") != NULL);
	config_fini(&c);
}

static void test_errors(void)
{
	expect_error("interval: fast\n", ":1:11: interval: expected a duration");
	expect_error("listen: x\nbogus: 1\n", ":2:8: bogus: unknown key");
	expect_error("docker:\n  sockt: /x\n", ":2:10: sockt: unknown key in docker");
	expect_error("collect:\n  percpu: maybe\n", ":2:11: collect.percpu: expected true or false");
	expect_error("interval: 10ms\n", "interval: must be at least 100ms");
	expect_error("- a\n- b\n", "expected a mapping");
	expect_error("listen: [unclosed\n", ":");
	expect_error("log_level: loud\n", "log_level: expected error, warn, info or debug");
}

/* discovery.cgroups: the globs a container's cgroup path must match; bad
 * lists name the key. */
static void test_cgroup_match(void)
{
	struct agent_config c;
	char err[512] = "";
	config_defaults(&c);
	CHECK_EQ_INT(c.ncgroup_match, 0);
	config_fini(&c);
	int rc = load_text(&c, "discovery:\n  cgroups: ['*/docker/bebe*', '/kubepods*']\n",
			   err, sizeof(err));
	if (rc)
		fprintf(stderr, "  %s\n", err);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(c.ncgroup_match, 2);
	CHECK_STR(c.cgroup_match[0], "*/docker/bebe*");
	CHECK_STR(c.cgroup_match[1], "/kubepods*");
	config_fini(&c);
	expect_error("discovery:\n  cgroups: '*/docker/*'\n", ":2:12: discovery.cgroups: expected a list");
	expect_error("discovery:\n  cgroups: ['']\n", "discovery.cgroups: expected a glob");
	expect_error("collect:\n  container_labels: [[a]]\n",
		     "collect.container_labels: expected a label name");
}

/* The lifecycle, filesystem and action keys. */
static void test_lifecycle_keys(void)
{
	struct agent_config c;
	char err[512] = "";
	config_defaults(&c);
	CHECK_EQ_INT(c.keep_exited_ms, 3600 * 1000);
	CHECK_EQ_INT(c.fs_interval_ms, 60000);
	CHECK_EQ_INT(c.fs_walk_budget, 2000);
	CHECK_EQ_INT(c.docker_action_timeout_ms, 30000);
	CHECK_STR(c.admin_token_file, "");
	config_fini(&c);
	int rc = load_text(&c,
			   "discovery:\n  keep_exited: 0s\n"
			   "collect:\n  fs_usage_interval: 0\n  fs_walk_budget: 50\n"
			   "docker:\n  action_timeout: 5s\n"
			   "auth:\n  admin_token_file: /etc/monitor/token\n", err, sizeof(err));
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(c.keep_exited_ms, 0);
	CHECK_EQ_INT(c.fs_interval_ms, 0);
	CHECK_EQ_INT(c.fs_walk_budget, 50);
	CHECK_EQ_INT(c.docker_action_timeout_ms, 5000);
	CHECK_STR(c.admin_token_file, "/etc/monitor/token");
	config_fini(&c);
	CHECK_EQ_INT(load_text(&c, "auth:\n", err, sizeof(err)), 0); /* all commented out */
	config_fini(&c);
	static const struct {
		const char *text, *want;
	} bad[] = {
		{ "collect:\n  fs_usage_interval: 500ms\n", ":2:22: collect.fs_usage_interval: must be 0 (off) or at least 1s" },
		{ "collect:\n  fs_walk_budget: 0\n", "collect.fs_walk_budget: must be between 1 and" },
		{ "collect:\n  fs_walk_budget: lots\n", "collect.fs_walk_budget: expected a whole number" },
		{ "collect:\n  fs_walk_budget: \"5\"\n", "collect.fs_walk_budget: expected a whole number" },
		{ "discovery:\n  keep_exited: forever\n", "discovery.keep_exited: expected a duration" },
		{ "docker:\n  action_timeout: 1ms\n", "docker.action_timeout: must be at least 100ms" },
		{ "auth:\n  admin_token_file: \"\"\n", "auth.admin_token_file: expected a file name" },
		{ "auth:\n  token: abc\n", "token: unknown key in auth" },
		{ "auth: [a]\n", "auth: expected a mapping" },
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		err[0] = '\0';
		CHECK_EQ_INT(load_text(&c, bad[i].text, err, sizeof(err)), -EINVAL);
		if (!strstr(err, bad[i].want))
			fprintf(stderr, "  got \"%s\", want \"%s\"\n", err, bad[i].want);
		CHECK(strstr(err, bad[i].want) != NULL);
		config_fini(&c);
	}
}

static void test_missing_file(void)
{
	struct agent_config c;
	char err[512] = "";
	config_defaults(&c);
	CHECK(config_load(&c, "/nonexistent/monitor.yml", err, sizeof(err)) < 0);
	CHECK(strstr(err, "/nonexistent/monitor.yml") != NULL);
	config_fini(&c);
}

int main(void)
{
	RUN(test_defaults);
	RUN(test_labels_keep_other_sections);
	RUN(test_example_file);
	RUN(test_values);
	RUN(test_errors);
	RUN(test_missing_file);
	RUN(test_lifecycle_keys);
	RUN(test_cgroup_match);
	TEST_END();
}
