/*
 * test_fuzz_found.c - one regression test per bug the libFuzzer targets in
 * tests/fuzz/ found (docs/RELIABILITY.md lists them), so the plain and the
 * ASan/UBSan unit runs catch a return without a fuzzer; the crashing inputs
 * are also in the targets' seed corpora.
 */
#include "tests/unit/test.h"
#include "agent/agent.h"
#include "agent/rw.h"
#include "agent/util/util.h"
#include "alerting/alerting.h"
#include "collectors/collector.h"
#include "storage/promql.h"
#include "storage/storage.h"

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

/* A silence whose second matcher is malformed after a valid first one was
 * reported accepted (the first matcher's 0) with no silence: NULL deref in
 * POST /api/v2/silences. */
static void test_silence_bad_second_matcher(void)
{
	struct alert_silences *ss = NULL;
	char err[512], id[64];
	CHECK_EQ_INT(alert_silences_open(&ss, NULL, 0, 1700000000000, err, sizeof(err)), 0);
	const char *body = "{\"matchers\":[{\"name\":\"a\",\"value\":\"x\"},{\"nme\":\"b\",\"value\":\"y\"}],"
			   "\"duration\":\"2h\",\"createdBy\":\"me\",\"comment\":\"c\"}";
	CHECK_EQ_INT(alert_silences_post(ss, body, strlen(body), 1700000000000, id, sizeof(id), err,
					 sizeof(err)), -EINVAL);
	CHECK(strstr(err, "matchers[1]") != NULL);
	size_t counts[ALERT_SILENCE__STATES];
	CHECK_EQ_INT(alert_silences_count(ss, 1700000000000, counts), 0);
	alert_silences_close(ss);
}

/* Log timestamps outside int64 nanoseconds (years before 1678 or after
 * 2262) overflowed; now they do not parse. */
static void test_log_time_range(void)
{
	const char *s = "0001-01-01T00:00:00Z";
	CHECK_EQ_INT(coll_log_parse_time(s, strlen(s)), -1);
	s = "9999-12-31T23:59:59.999999999Z";
	CHECK_EQ_INT(coll_log_parse_time(s, strlen(s)), -1);
	s = "2262-01-01T00:00:00Z";
	CHECK(coll_log_parse_time(s, strlen(s)) > 0);
	s = "1970-01-01T00:00:01.5Z";
	CHECK_EQ_INT(coll_log_parse_time(s, strlen(s)), 1500000000);
	const char *l = "0000-01-01T00:00:00Z stdout F x";
	struct coll_log_entry e;
	CHECK_EQ_INT(coll_log_parse_cri(l, strlen(l), &e), -EINVAL);
}

/* "nan" as a duration was converted to an integer (undefined). */
static void test_duration_nan(void)
{
	int64_t ms = 7;
	CHECK_EQ_INT(parse_duration_ms("nan", &ms), -EINVAL);
	CHECK_EQ_INT(parse_duration_ms("NaNs", &ms), -EINVAL);
	CHECK_EQ_INT(parse_duration_ms("inf", &ms), -ERANGE);
	CHECK_EQ_INT(parse_duration_ms("1.5m", &ms), 0);
	CHECK_EQ_INT(ms, 90000);
}

/* A PromQL string with a byte that is not UTF-8 before an escaped quote
 * printed as a string that ended early: the printed query did not parse. */
static void test_promql_print_invalid_utf8(void)
{
	const char *q = "t_labels{path=~\".*\\\"\xe2\\\"\x11.*\"}";
	struct promql_expr *e = NULL, *e2 = NULL;
	char err[256];
	CHECK_EQ_INT(promql_parse(q, &e, err, sizeof(err)), 0);
	if (!e)
		return;
	struct buf b;
	buf_init(&b, 1 << 16);
	promql_expr_format(e, &b);
	CHECK_STR(b.data, "t_labels{path=~\".*\\\"\\xe2\\\"\\x11.*\"}");
	CHECK_EQ_INT(promql_parse(b.data, &e2, err, sizeof(err)), 0);
	/* Valid UTF-8 stays as it is. */
	buf_reset(&b);
	promql_expr_free(e);
	e = NULL;
	CHECK_EQ_INT(promql_parse("x{a=\"é€😀\"}", &e, err, sizeof(err)), 0);
	if (e)
		promql_expr_format(e, &b);
	CHECK_STR(b.data, "x{a=\"é€😀\"}");
	buf_fini(&b);
	promql_expr_free(e);
	promql_expr_free(e2);
}

/* Doubled or deeply nested repetitions (`}++++...`, 30 '+') made glibc's
 * regcomp copy the expression 2^30 times: a core and 1 GB for one silence
 * matcher or PromQL selector. Refused now as RE2 (Prometheus) refuses them. */
static bool matcher_ok(const char *text, const char *want_err)
{
	struct alert_matcher m;
	char err[256] = "";
	int rc = alert_matcher_parse(text, &m, err, sizeof(err));
	if (rc == 0)
		alert_matcher_fini(&m);
	if (want_err && (rc == 0 || !strstr(err, want_err)))
		fprintf(stderr, "  %s: rc %d, err \"%s\", want \"%s\"\n", text, rc, err, want_err);
	return want_err ? rc < 0 && strstr(err, want_err) : rc == 0;
}

static void test_regex_repetitions(void)
{
	CHECK(matcher_ok("yn!~{k{{{}}}++++++++++++++++++++++++++++++t=", "bad repetition operator: `++`"));
	CHECK(matcher_ok("a=~x**", "bad repetition operator: `**`"));
	CHECK(matcher_ok("a=~x+?+", "bad repetition operator"));
	CHECK(matcher_ok("a=~x{2}{3}", "bad repetition operator"));
	CHECK(matcher_ok("a=~x{1001}", "invalid repeat count: `{1001}`"));
	CHECK(matcher_ok("a=~((x{10}){10}){11}", "bad repetition operator: `{11}`"));
	CHECK(matcher_ok("a=~(((((((((((((((((((x+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)",
			 "expression too large"));
	/* What RE2 accepts still compiles. */
	CHECK(matcher_ok("a=~((x{10}){10}){10}", NULL));
	CHECK(matcher_ok("a=~(x+)+y*?z{2,5}?", NULL));
	CHECK(matcher_ok("a=~x{1000}", NULL));
	CHECK(matcher_ok("a=~{}x{,}", NULL));
	struct promql_expr *e = NULL;
	char err[256];
	CHECK_EQ_INT(promql_parse("up{job=~\"a++\"}", &e, err, sizeof(err)), -EINVAL);
	promql_expr_free(e);
}

/* An @ time that lands on INT64_MIN ms was negated when printed (UB). */
static void test_promql_at_extreme(void)
{
	struct promql_expr *e = NULL;
	char err[256];
	if (promql_parse("u33333*d@33000001806528490", &e, err, sizeof(err)) == 0) {
		struct buf b;
		buf_init(&b, 4096);
		promql_expr_format(e, &b);
		CHECK(b.len > 0);
		buf_fini(&b);
		promql_expr_free(e);
	}
	struct buf b;
	buf_init(&b, 64);
	promql_format_time(&b, INT64_MIN);
	CHECK_STR(b.data, "-9223372036854775.808");
	buf_fini(&b);
}

static int tmpl_lookup(void *arg, const char *var, const char *field, struct alert_tmpl_value *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = ALERT_TMPL_NUM;
	out->num = *(const double *)arg;
	return strcmp(var, "value") ? -ENOENT : 0;
}

/* humanizeDuration of a value past int64 converted it to an integer
 * (undefined); now clamped. */
static void test_humanize_duration_huge(void)
{
	static const char *const vars[] = { "value", NULL };
	struct alert_tmpl *t = NULL;
	char err[256];
	CHECK_EQ_INT(alert_tmpl_parse("{{ $value | humanizeDuration }}", vars, &t, err, sizeof(err)), 0);
	const double vals[] = { 1e308, -1e308, 9.3e18, 90061 };
	const char *want[] = { "106751991167300d 15h 30m 7s", "-106751991167300d 15h 30m 7s",
			       "106751991167300d 15h 30m 7s", "1d 1h 1m 1s" };
	for (size_t i = 0; i < 4 && t; i++) {
		struct buf b;
		buf_init(&b, 4096);
		CHECK_EQ_INT(alert_tmpl_exec(t, tmpl_lookup, (void *)&vals[i], &b, err, sizeof(err)), 0);
		CHECK_STR(b.data, want[i]);
		buf_fini(&b);
	}
	alert_tmpl_free(t);
}

/* A rule file whose second group is a scalar (no name) compared its NULL
 * name with the others'. */
static void test_rules_group_without_name(void)
{
	char p[] = "/tmp/monitor-test-fuzzfound-XXXXXX";
	int fd = mkstemp(p);
	if (fd < 0)
		SKIP("mkstemp");
	const char *text = "groups:\n- name: one\n  rules: []\n- just a scalar\n- name: one\n  rules: []\n";
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	const char *paths[] = { p };
	struct buf out;
	buf_init(&out, 1 << 16);
	CHECK(alert_rules_check(paths, 1, &out) < 0);
	CHECK(out.data && strstr(out.data, "\"one\" is repeated") != NULL);
	buf_fini(&out);
	unlink(p);
}

/* A series with no samples, or a request with no labels, did pointer
 * arithmetic on NULL (undefined) when packed. */
static void test_rw_empty_series(void)
{
	struct rw_req *r = rw_req_new();
	const char *n[] = { "__name__" }, *v[] = { "up" };
	CHECK_EQ_INT(rw_req_series(r, n, v, 1), 0);
	struct rw_bytes out = { 0 };
	size_t raw = 0, ns = 0, nm = 0;
	CHECK_EQ_INT(rw_req_pack(r, &out, &raw), 0);
	CHECK_EQ_INT(rw_decode_count(out.p, out.len, &ns, &nm), 0);
	CHECK_EQ_INT(ns, 1);
	rw_bytes_fini(&out);
	rw_req_free(r);
}

/* An empty import file: pointer arithmetic on the NULL map (undefined).
 * A timestamp near INT64_MAX overflowed the roll-up bucket arithmetic:
 * timestamps past +-1e15 ms are now refused, naming the line. */
static void test_import_empty(void)
{
	char dir[] = "/tmp/monitor-test-fuzzfound-XXXXXX";
	if (!mkdtemp(dir))
		SKIP("mkdtemp");
	struct store_config c;
	store_config_defaults(&c);
	snprintf(c.dir, sizeof(c.dir), "%s", dir);
	struct store *s = NULL;
	char err[512], p[300];
	CHECK_EQ_INT(store_open(&s, &c, err, sizeof(err)), 0);
	snprintf(p, sizeof(p), "%s/empty.prom", dir);
	FILE *f = fopen(p, "w");
	if (f)
		fclose(f);
	struct store_import_result res;
	if (s)
		CHECK_EQ_INT(store_import_file(s, p, &res, err, sizeof(err)), 0);
	CHECK_EQ_INT(res.samples, 0);
	const char *bad[] = { "y 1 55555555555555555555000\n", "y 1 -1000000000000001\n",
			      "y 1 1e400\n# EOF\n", "y 1 1e13\n# EOF\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]) && s; i++) {
		f = fopen(p, "w");
		if (f) {
			fputs(bad[i], f);
			fclose(f);
		}
		CHECK_EQ_INT(store_import_file(s, p, &res, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, ":1: bad timestamp") != NULL);
	}
	f = fopen(p, "w");
	if (f) {
		fputs("y 2 1000000000000000\n", f);
		fclose(f);
	}
	if (s)
		CHECK_EQ_INT(store_import_file(s, p, &res, err, sizeof(err)), 0);
	CHECK_EQ_INT(res.samples, 1);
	store_close(s);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK_EQ_INT(system(cmd), 0);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	RUN(test_silence_bad_second_matcher);
	RUN(test_log_time_range);
	RUN(test_duration_nan);
	RUN(test_promql_print_invalid_utf8);
	RUN(test_regex_repetitions);
	RUN(test_promql_at_extreme);
	RUN(test_rw_empty_series);
	RUN(test_humanize_duration_huge);
	RUN(test_rules_group_without_name);
	RUN(test_import_empty);
	TEST_END();
}
