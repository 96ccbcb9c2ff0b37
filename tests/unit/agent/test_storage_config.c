/*
 * test_storage_config.c - the storage: section of the config file: every
 * key read, defaults kept for the rest, and bad values named by file, line
 * and key.
 */
#include "agent/agent.h"
#include "tests/unit/test.h"

#include <unistd.h>

static int load(const char *text, struct agent_config *c, char *err, size_t errsize)
{
	char path[] = "/tmp/monitor-test-storage-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		close(fd);
		return -1;
	}
	close(fd);
	config_defaults(c);
	int rc = config_load(c, path, err, errsize);
	unlink(path);
	return rc;
}

static void test_defaults(void)
{
	struct agent_config c;
	config_defaults(&c);
	CHECK(c.storage.enabled);
	CHECK_EQ_INT(c.storage.retention_ms[STORE_TIER_RAW], 3LL * 86400000);
	CHECK_EQ_INT(c.storage.retention_ms[STORE_TIER_1M], 30LL * 86400000);
	CHECK_EQ_INT(c.storage.retention_ms[STORE_TIER_1H], 365LL * 86400000);
	CHECK_EQ_INT(c.storage.max_size_bytes, 4ULL << 30);
	CHECK_EQ_INT(c.storage.flush_interval_ms, 10000);
	config_fini(&c);
}

static void test_keys(void)
{
	struct agent_config c;
	char err[512];
	int rc = load("storage:\n  enabled: false\n  max_size: 512MiB\n  flush_interval: 2s\n"
		      "  retention:\n    raw: 12h\n    1h: 90d\n", &c, err, sizeof(err));
	CHECK_EQ_INT(rc, 0);
	CHECK(!c.storage.enabled);
	CHECK_EQ_INT(c.storage.max_size_bytes, 512ULL << 20);
	CHECK_EQ_INT(c.storage.flush_interval_ms, 2000);
	CHECK_EQ_INT(c.storage.retention_ms[STORE_TIER_RAW], 12LL * 3600000);
	CHECK_EQ_INT(c.storage.retention_ms[STORE_TIER_1M], 30LL * 86400000); /* default kept */
	CHECK_EQ_INT(c.storage.retention_ms[STORE_TIER_1H], 90LL * 86400000);
	config_fini(&c);
	CHECK_EQ_INT(load("storage:\n  max_size: 0\n", &c, err, sizeof(err)), 0);
	CHECK_EQ_INT(c.storage.max_size_bytes, 0);
	config_fini(&c);
	CHECK_EQ_INT(load("storage:\n  max_size: 2 GB\n", &c, err, sizeof(err)), 0);
	CHECK_EQ_INT(c.storage.max_size_bytes, 2000000000ULL);
	config_fini(&c);
}

static void test_errors(void)
{
	struct agent_config c;
	char err[512];
	CHECK(load("storage:\n  max_size: lots\n", &c, err, sizeof(err)) < 0);
	CHECK(strstr(err, ":2:") && strstr(err, "storage.max_size: expected a size"));
	config_fini(&c);
	CHECK(load("storage:\n  max_size: -1GB\n", &c, err, sizeof(err)) < 0);
	config_fini(&c);
	CHECK(load("storage:\n  retention:\n    5m: 1d\n", &c, err, sizeof(err)) < 0);
	CHECK(strstr(err, "storage.retention.5m: unknown tier"));
	config_fini(&c);
	CHECK(load("storage:\n  retention:\n    raw: 10s\n", &c, err, sizeof(err)) < 0);
	CHECK(strstr(err, "must be at least 60000ms"));
	config_fini(&c);
	CHECK(load("storage:\n  flush_interval: 2h\n", &c, err, sizeof(err)) < 0);
	CHECK(strstr(err, "at most 1h"));
	config_fini(&c);
	CHECK(load("storage:\n  flush: 1s\n", &c, err, sizeof(err)) < 0);
	CHECK(strstr(err, "flush: unknown key in storage"));
	config_fini(&c);
	CHECK(load("storage: yes\n", &c, err, sizeof(err)) < 0);
	CHECK(strstr(err, "storage: expected a mapping"));
	config_fini(&c);
}

int main(void)
{
	RUN(test_defaults);
	RUN(test_keys);
	RUN(test_errors);
	TEST_END();
}
