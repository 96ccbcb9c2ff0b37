/* test_config_logs.c - the logs: section: defaults, every key, and errors
 * that name the file, line and key. */
#include "tests/unit/test.h"
#include "tests/unit/agent/config_text.h"

static void test_defaults(void)
{
	struct agent_config c;
	config_defaults(&c);
	CHECK(c.logs.enabled);
	CHECK_EQ_INT(c.logs.store.retention_ms, 7LL * 86400 * 1000);
	CHECK_EQ_INT(c.logs.store.max_size_bytes, 1ULL << 30);
	CHECK_EQ_INT(c.logs.tail.line_cap, 64 * 1024);
	CHECK_EQ_DBL(c.logs.tail.rate_lines, 5000);
	CHECK_STR(c.logs.tail.docker_dir, "/var/lib/docker/containers");
	CHECK_STR(c.logs.tail.cri_dir, "/var/log/pods");
	config_logs_fini(&c.logs);
	config_fini(&c);
}

static void test_keys(void)
{
	struct agent_config c;
	char err[1024];
	int rc = load_text(&c,
			   "logs:\n"
			   "  enabled: false\n"
			   "  retention: 2d\n"
			   "  max_size: 200MiB\n"
			   "  max_line: 16KiB\n"
			   "  rate_limit:\n"
			   "    lines: 100\n"
			   "    bytes: 1MB\n"
			   "  poll_interval: 50ms\n"
			   "  rescan_interval: 5s\n"
			   "  commit_interval: 250ms\n"
			   "  docker_dir: /srv/docker/containers\n"
			   "  cri_dir: ''\n"
			   "  paths: ['/var/log/app/*.log', '/var/log/x.log']\n",
			   err, sizeof(err));
	CHECK_EQ_INT(rc, 0);
	CHECK(!c.logs.enabled);
	CHECK_EQ_INT(c.logs.store.retention_ms, 2LL * 86400 * 1000);
	CHECK_EQ_INT(c.logs.store.max_size_bytes, 200ULL << 20);
	CHECK_EQ_INT(c.logs.tail.line_cap, 16384);
	CHECK_EQ_DBL(c.logs.tail.rate_lines, 100);
	CHECK_EQ_DBL(c.logs.tail.rate_bytes, 1e6);
	CHECK_EQ_INT(c.logs.tail.poll_ms, 50);
	CHECK_EQ_INT(c.logs.tail.rescan_ms, 5000);
	CHECK_EQ_INT(c.logs.tail.commit_ms, 250);
	CHECK_STR(c.logs.tail.docker_dir, "/srv/docker/containers");
	CHECK_STR(c.logs.tail.cri_dir, "");
	CHECK_EQ_INT(c.logs.tail.nglobs, 2);
	if (c.logs.tail.nglobs == 2)
		CHECK_STR(c.logs.tail.globs[1], "/var/log/x.log");
	config_logs_fini(&c.logs);
	config_fini(&c);
}

static void bad(const char *text, const char *want)
{
	struct agent_config c;
	char err[1024] = "";
	int rc = load_text(&c, text, err, sizeof(err));
	CHECK(rc < 0);
	if (!strstr(err, want))
		fprintf(stderr, "  error \"%s\" lacks \"%s\"\n", err, want);
	CHECK(strstr(err, want) != NULL);
	CHECK(strstr(err, "/tmp/monitor-test-config-") != NULL);
	config_logs_fini(&c.logs);
	config_fini(&c);
}

static void test_errors(void)
{
	bad("logs:\n  max_line: 10\n", ":2:13: logs.max_line: must be between 1KiB and 16MiB");
	bad("logs:\n  retention: 10s\n", "logs.retention: must be 0 (keep) or at least 1m");
	bad("logs:\n  rate_limit: 5\n", "logs.rate_limit: expected a mapping");
	bad("logs:\n  rate_limit:\n    lines: lots\n", ":3:12: logs.rate_limit.lines: expected a number");
	bad("logs:\n  paths: ['relative/*.log']\n", "logs.paths: expected an absolute file glob");
	bad("logs:\n  colour: red\n", "colour: unknown key in logs");
	bad("logs: yes\n", "logs: expected a mapping");
}

int main(void)
{
	RUN(test_defaults);
	RUN(test_keys);
	RUN(test_errors);
	TEST_END();
}
