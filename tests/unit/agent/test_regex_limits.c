/*
 * test_regex_limits.c - every regcomp that takes outside input refuses a
 * hostile pattern with the PromQL limits (promql_regex_check): notifier
 * route matchers (alerting/notify_route.c), store matchers of the series
 * API (storage/index.c), /api/v1/logs?regex= (storage/logstore.c) and
 * remote_write relabelling (agent/rw_relabel.c) and the `monitor top`
 * filter (agent/top_model.c). Before, `a` followed by
 * 30 '+' made glibc's regcomp take gigabytes and minutes at each of them;
 * each refusal here must be quick, and ordinary patterns still compile.
 */
#include "agent/agent.h"
#include "agent/rw.h"
#include "agent/top.h"
#include "alerting/notify_int.h"
#include "tests/unit/test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char hostile_long[PROMQL_REGEX_MAX_LEN + 2];

/* Patterns that glibc's regcomp would blow up on, or too long. */
static const char *const hostile[] = {
	"a++++++++++++++++++++++++++++++",
	"}++++++++++++++++++++++++++++++",
	"(x{2}){3}{4}",
	"((x{10}){10}){11}",
	"x{1001}",
	"(((((((((((((((((((x+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)",
	"[a-z]**",
	hostile_long,
};
static const char *const fine[] = { "web-.*", "(a|b){2,5}", "((x{10}){10}){10}", "x{1000}",
				    "[[:alpha:]]+[]a]*", "(?:ab)+c", "a\\+\\+\\+", ".*" };

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_check(void)
{
	char err[256];
	for (size_t i = 0; i < ARRAY_LEN(hostile); i++) {
		err[0] = '\0';
		CHECK_EQ_INT(promql_regex_check(hostile[i], err, sizeof(err)), -EINVAL);
		CHECK(err[0] != '\0');
	}
	for (size_t i = 0; i < ARRAY_LEN(fine); i++) {
		int rc = promql_regex_check(fine[i], err, sizeof(err));
		if (rc)
			fprintf(stderr, "  %s: %s\n", fine[i], err);
		CHECK_EQ_INT(rc, 0);
	}
	CHECK_EQ_INT(promql_regex_check(hostile_long, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "too long") != NULL);
	CHECK_EQ_INT(promql_regex_check(hostile[0], err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "bad repetition operator: `++`") != NULL);
}

static void test_notify_route(void)
{
	char err[512];
	struct nmatcher m;
	for (size_t i = 0; i < ARRAY_LEN(hostile); i++) {
		double t0 = now_s();
		CHECK_EQ_INT(nmatcher_make(&m, "alertname", hostile[i], NM_RE, err, sizeof(err)),
			     -EINVAL);
		CHECK(now_s() - t0 < 0.5);
		CHECK(strstr(err, "regex \"") == err);
	}
	CHECK_EQ_INT(nmatcher_make(&m, "alertname", "web-.*", NM_RE, err, sizeof(err)), 0);
	regfree(&m.re);
	free(m.name);
	free(m.value);
}

static void test_store_matcher(void)
{
	char err[512];
	struct store_matcher m;
	for (size_t i = 0; i < ARRAY_LEN(hostile); i++) {
		double t0 = now_s();
		CHECK_EQ_INT(store_matcher_init(&m, STORE_MATCH_NRE, "name", hostile[i], err,
						sizeof(err)), -EINVAL);
		CHECK(now_s() - t0 < 0.5);
		CHECK(strstr(err, "label name: bad regular expression") == err);
	}
	CHECK_EQ_INT(store_matcher_init(&m, STORE_MATCH_RE, "name", "web-.*", err, sizeof(err)), 0);
	CHECK(store_matcher_match(&m, "web-1"));
	store_matcher_fini(&m);
}

static void test_log_query(void)
{
	char dir[] = "/tmp/regexlimitsXXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	struct logstore_config c;
	logstore_config_defaults(&c);
	snprintf(c.dir, sizeof(c.dir), "%s", dir);
	struct logstore *ls = NULL;
	char err[512];
	CHECK_EQ_INT(logstore_open(&ls, &c, err, sizeof(err)), 0);
	if (!ls)
		return;
	struct log_record r = { "aaaa1111", "web", 1000, 0, 0, 0, "hello", 5 };
	CHECK_EQ_INT(logstore_append(ls, &r, 1, NULL, 0), 0);
	for (size_t i = 0; i < ARRAY_LEN(hostile); i++) {
		struct log_query q = { .regex = hostile[i] };
		struct log_result res = { 0 };
		double t0 = now_s();
		CHECK_EQ_INT(logstore_query(ls, &q, &res, err, sizeof(err)), -EINVAL);
		CHECK(now_s() - t0 < 0.5);
		CHECK(strstr(err, "regular expression \"") == err);
		logstore_result_free(&res);
	}
	struct log_query q = { .regex = "hel+o" };
	struct log_result res = { 0 };
	CHECK_EQ_INT(logstore_query(ls, &q, &res, err, sizeof(err)), 0);
	CHECK_EQ_INT(res.n, 1);
	logstore_result_free(&res);
	logstore_close(ls);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK_EQ_INT(system(cmd), 0);
}

static void test_relabel(void)
{
	char err[512];
	for (size_t i = 0; i < ARRAY_LEN(hostile); i++) {
		struct rw_relabel r = { .action = RW_KEEP, .regex = strdup(hostile[i]) };
		double t0 = now_s();
		CHECK_EQ_INT(rw_relabel_compile(&r, err, sizeof(err)), -EINVAL);
		CHECK(now_s() - t0 < 0.5);
		CHECK(strstr(err, "bad regex \"") == err);
		rw_relabel_fini(&r);
	}
	struct rw_relabel r = { .action = RW_KEEP, .regex = strdup("web-.*") };
	CHECK_EQ_INT(rw_relabel_compile(&r, err, sizeof(err)), 0);
	rw_relabel_fini(&r);
}

/* `monitor top --filter '~RE'`, `name=~RE` and the '/' prompt. */
static void test_top_filter(void)
{
	char err[512], text[TOP_FILTER_TEXT_MAX];
	static const char *const forms[] = { "~", "name=~", "!name=~" };
	for (size_t i = 0; i < ARRAY_LEN(hostile); i++) {
		if (strlen(hostile[i]) + 8 > sizeof(text))
			continue;  /* longer than a filter may be: refused before */
		for (size_t k = 0; k < ARRAY_LEN(forms); k++) {
			struct top_filter f;
			snprintf(text, sizeof(text), "%s%s", forms[k], hostile[i]);
			err[0] = '\0';
			double t0 = now_s();
			CHECK_EQ_INT(top_filter_parse(&f, text, err, sizeof(err)), -EINVAL);
			CHECK(now_s() - t0 < 0.5);
			CHECK(strstr(err, "regex \"") == err);
		}
	}
	struct top_filter f;
	CHECK_EQ_INT(top_filter_parse(&f, "~a++", err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "regex \"a++\": bad repetition operator: `++`");
	CHECK_EQ_INT(top_filter_parse(&f, "name=~web-.*", err, sizeof(err)), 0);
	top_filter_fini(&f);
}

/* promql_regex_new takes the same length cap. */
static void test_promql_length(void)
{
	char err[256];
	CHECK(promql_regex_new(hostile_long, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "too long") != NULL);
}

int main(void)
{
	memset(hostile_long, 'a', sizeof(hostile_long) - 1);
	RUN(test_check);
	RUN(test_notify_route);
	RUN(test_store_matcher);
	RUN(test_log_query);
	RUN(test_relabel);
	RUN(test_top_filter);
	RUN(test_promql_length);
	TEST_END();
}
