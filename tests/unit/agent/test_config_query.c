/*
 * test_config_query.c - the query: section of the config (the PromQL
 * engine's limits): defaults, every key, the example file, and errors that
 * name the file, line and key.
 */
#include "agent/agent.h"
#include "../test.h"
#include "config_text.h"

#include <unistd.h>

static void test_defaults_and_example(void)
{
	struct agent_config c;
	config_defaults(&c);
	CHECK_EQ_INT(c.query.timeout_ms, 120000);
	CHECK_EQ_INT(c.query.max_samples, 50000000);
	CHECK_EQ_INT(c.query.lookback_ms, 300000);
	CHECK_EQ_INT(c.query.subquery_step_ms, 60000);
	CHECK_EQ_INT(load_example(&c), 0);
	CHECK_EQ_INT(c.query.timeout_ms, 120000);
	CHECK_EQ_INT(c.query.max_samples, 50000000);
	config_fini(&c);
}

static void test_values(void)
{
	struct agent_config c;
	char err[512] = "";
	int rc = load_text(&c, "query:\n  timeout: 30s\n  max_samples: 1000000\n"
			       "  lookback_delta: 2m\n  subquery_step: 15s\n", err, sizeof(err));
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(c.query.timeout_ms, 30000);
	CHECK_EQ_INT(c.query.max_samples, 1000000);
	CHECK_EQ_INT(c.query.lookback_ms, 120000);
	CHECK_EQ_INT(c.query.subquery_step_ms, 15000);
	config_fini(&c);
}

static void test_errors(void)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "query:\n  timeout: soon\n", ":2:12: query.timeout: expected a duration" },
		{ "query:\n  max_samples: 10\n", ":2:16: query.max_samples: must be between 1000" },
		{ "query:\n  max_samples: lots\n", ":2:16: query.max_samples: expected a whole number" },
		{ "query:\n  lookback_delta: 10ms\n", ":2:19: query.lookback_delta: must be at least 1000ms" },
		{ "query:\n  timeout_ms: 5\n", ":2:15: timeout_ms: unknown key in query" },
		{ "query: fast\n", "query: expected a mapping" },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct agent_config c;
		char err[512] = "";
		CHECK(load_text(&c, cases[i].text, err, sizeof(err)) < 0);
		if (!strstr(err, cases[i].want))
			fprintf(stderr, "  %s -> %s\n", cases[i].text, err);
		CHECK(strstr(err, cases[i].want) != NULL);
		config_fini(&c);
	}
}

int main(void)
{
	RUN(test_defaults_and_example);
	RUN(test_values);
	RUN(test_errors);
	TEST_END();
}
