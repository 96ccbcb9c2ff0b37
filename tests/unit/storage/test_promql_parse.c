/*
 * test_promql_parse.c - the PromQL lexer, parser and type checker; regular
 * expressions with RE2's meaning; the API's number, time and duration
 * formats. Error messages are the ones Prometheus 2.42 gives for the same
 * input (tests/integration/test_promql.py compares them live).
 */
#include "storage/promql_eval_int.h"

#include "tests/unit/test.h"

#include <errno.h>

static const char *parse_err(const char *q, char *err, size_t size)
{
	struct promql_expr *e = NULL;
	err[0] = '\0';
	int rc = promql_parse(q, &e, err, size);
	promql_expr_free(e);
	return rc < 0 ? err : "(parsed)";
}

static void test_parse_errors(void)
{
	static const struct {
		const char *q, *msg;
	} cases[] = {
		{ "", "1:1: parse error: no expression found in input" },
		{ "foo{", "1:5: parse error: unexpected end of input inside braces" },
		{ "foo{bar}", "1:8: parse error: unexpected \"}\" in label matching, expected label matching operator" },
		{ "foo{bar=}", "1:9: parse error: unexpected \"}\" in label matching, expected string" },
		{ "foo{,}", "1:5: parse error: unexpected \",\" in label matching, expected identifier or \"}\"" },
		{ "foo{a=\"1\" b=\"2\"}", "1:11: parse error: unexpected identifier \"b\" in label matching, expected \",\" or \"}\"" },
		{ "foo{1=\"a\"}", "1:5: parse error: unexpected character inside braces: '1'" },
		{ "foo{a=\"\\q\"}", "1:7: parse error: unknown escape sequence U+0071 'q'" },
		{ "foo{a='x}", "1:7: parse error: unterminated quoted string" },
		{ "sum by foo (bar)", "1:8: parse error: unexpected identifier \"foo\" in grouping opts, expected \"(\"" },
		{ "sum by (a:b) (foo)", "1:9: parse error: unexpected metric identifier \"a:b\" in grouping opts, expected label" },
		{ "sum(foo) by (a) by (b)", "1:17: parse error: unexpected <by>" },
		{ "sum()", "1:1: parse error: no arguments for aggregate expression provided" },
		{ "topk(foo)", "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1" },
		{ "quantile(\"a\", foo)", "1:10: parse error: expected type scalar in aggregation parameter, got string" },
		{ "sum by (a) (foo[5m])", "1:13: parse error: expected type instant vector in aggregation expression, got range vector" },
		{ "foo[5m", "1:7: parse error: unclosed left bracket" },
		{ "rate(foo[5m]", "1:13: parse error: unclosed left parenthesis" },
		{ "foo[5]", "1:5: parse error: missing unit character in duration" },
		{ "foo[0s]", "1:5: parse error: duration must be greater than 0" },
		{ "foo[1.5m]", "1:5: parse error: not a valid duration string: \"1.5m\"" },
		{ "foo[1m:5]", "1:8: parse error: unexpected number \"5\" in subquery selector, expected duration or \"]\"" },
		{ "foo[5m:1m:1m]", "1:10: parse error: unexpected colon ':'" },
		{ "foo[5m] offset 1m [1m]", "1:19: parse error: ranges only allowed for vector selectors" },
		{ "foo offset 1m[5m]", "1:14: parse error: no offset modifiers allowed before range" },
		{ "foo @ 100 [5m]", "1:11: parse error: no @ modifiers allowed before range" },
		{ "foo[5m][1m:]", "1:1: parse error: subquery is only allowed on instant vector, got matrix instead" },
		{ "1 +", "1:4: parse error: unexpected end of input" },
		{ "foo bar", "1:5: parse error: unexpected identifier \"bar\"" },
		{ "foo}", "1:4: parse error: unexpected character: '}'" },
		{ ")", "1:2: parse error: unexpected right parenthesis ')'" },
		{ "foo=1", "1:4: parse error: unexpected \"=\"" },
		{ "foo !a", "1:5: parse error: unexpected character after '!': 'a'" },
		{ "5m", "1:1: parse error: unexpected duration \"5m\"" },
		{ "foo offset", "1:11: parse error: unexpected end of input in offset, expected duration" },
		{ "foo offset 5", "1:12: parse error: unexpected number \"5\" in offset, expected duration" },
		{ "foo offset 5m offset 5m", "1:1: parse error: offset may not be set multiple times" },
		{ "(foo) offset 5m", "1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery" },
		{ "foo @", "1:6: parse error: unexpected end of input in @, expected timestamp" },
		{ "foo @ end", "1:10: parse error: unexpected end of input in @, expected timestamp" },
		{ "foo @ 100 @ 200", "1:1: parse error: @ <timestamp> may not be set multiple times" },
		{ "rate(foo)", "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector" },
		{ "rate(foo[5m],)", "1:13: parse error: trailing commas not allowed in function call args" },
		{ "abs()", "1:1: parse error: expected 1 argument(s) in call to \"abs\", got 0" },
		{ "label_join(foo)", "1:1: parse error: expected at least 3 argument(s) in call to \"label_join\", got 1" },
		{ "round(foo, 1, 2)", "1:1: parse error: expected at most 2 argument(s) in call to \"round\", got 3" },
		{ "nofunc(foo)", "1:1: parse error: unknown function with name \"nofunc\"" },
		{ "a:b(foo)", "1:4: parse error: unexpected \"(\"" },
		{ "1 > 2", "1:3: parse error: comparisons between scalars must use BOOL modifier" },
		{ "foo and 1", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression" },
		{ "foo + bool bar", "1:5: parse error: bool modifier can only be used on comparison operators" },
		{ "foo * group_left bar", "1:7: parse error: unexpected <group_left>" },
		{ "foo and on(a) group_left bar", "1:1: parse error: no grouping allowed for \"and\" operation" },
		{ "foo + on(a) group_left(a) bar", "1:5: parse error: label \"a\" must not occur in ON and GROUP clause at once" },
		{ "\"a\" + 1", "1:1: parse error: binary expression must contain only scalar and instant vector types" },
		{ "-\"a\"", "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"string\"" },
		{ "{}", "1:1: parse error: vector selector must contain at least one non-empty matcher" },
		{ "{a=\"\"}", "1:1: parse error: vector selector must contain at least one non-empty matcher" },
		{ "a{__name__=\"b\"}", "1:1: parse error: metric name must not be set twice: \"a\" or \"b\"" },
		{ "multi\nline + \n)", "2:1: parse error: unexpected identifier \"line\"" },
		{ "foo +\n  bar{", "2:7: parse error: unexpected end of input inside braces" },
		{ "foo @ 1e20", "1:1: parse error: timestamp out of bounds for @ modifier: 100000000000000000000.000000" },
	};
	char err[1024];
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		CHECK_STR(parse_err(cases[i].q, err, sizeof(err)), cases[i].msg);
}

static void test_parse_valid(void)
{
	static const struct {
		const char *q;
		enum promql_value_type t;
		const char *printed;
	} cases[] = {
		{ "foo", PROMQL_VECTOR, "foo" },
		{ "foo{a=\"b\",c!~\"d.*\"}", PROMQL_VECTOR, "foo{a=\"b\", c!~\"d.*\"}" },
		{ "{__name__=~\"x|y\"}[5m] offset -1m", PROMQL_MATRIX, "{__name__=~\"x|y\"}[5m] offset -1m" },
		{ "SUM BY (a) (rate(x[1h30m]))", PROMQL_VECTOR, "sum by (a) (rate(x[1h30m]))" },
		{ "1 + 2 * 3", PROMQL_SCALAR, "1 + 2 * 3" },
		{ "-2 ^ 2", PROMQL_SCALAR, "-2 ^ 2" },
		{ "0x10 + 010 + 1e3 + .5", PROMQL_SCALAR, "16 + 8 + 1000 + 0.5" },
		{ "Inf + -nan", PROMQL_SCALAR, "+Inf + NaN" },
		{ "a / on(x) group_left(y) b", PROMQL_VECTOR, "a / on(x) group_left(y) b" },
		{ "a > bool ignoring(x) b", PROMQL_VECTOR, "a > bool ignoring(x) b" },
		{ "foo[5m:] @ start()", PROMQL_MATRIX, "foo[5m:] @ start()" },
		{ "foo @ 1.5 offset 1m", PROMQL_VECTOR, "foo @ 1.500 offset 1m" },
		{ "`raw\\n`", PROMQL_STRING, "\"raw\\\\n\"" },
		{ "count_values(\"v\", x) without (a)", PROMQL_VECTOR, "count_values without (a) (\"v\", x)" },
		{ "sum", PROMQL_VECTOR, "sum" },        /* an aggregator alone names a metric */
		{ "by + 1", PROMQL_VECTOR, "by + 1" },
		{ "foo # a comment\n + 1", PROMQL_VECTOR, "foo + 1" },
		{ "day_of_week()", PROMQL_VECTOR, "day_of_week()" },
		{ "label_join(x, \"d\", \",\", \"a\", \"b\", \"c\")", PROMQL_VECTOR,
		  "label_join(x, \"d\", \",\", \"a\", \"b\", \"c\")" },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct promql_expr *e;
		char err[512];
		int rc = promql_parse(cases[i].q, &e, err, sizeof(err));
		CHECK_EQ_INT(rc, 0);
		if (rc < 0) {
			fprintf(stderr, "  %s: %s\n", cases[i].q, err);
			continue;
		}
		CHECK_EQ_INT(promql_expr_type(e), cases[i].t);
		struct buf b;
		buf_init(&b, 4096);
		promql_expr_format(e, &b);
		CHECK_STR(b.data, cases[i].printed);
		buf_fini(&b);
		promql_expr_free(e);
	}
}

static void test_parse_limits_and_junk(void)
{
	char err[256];
	/* Very long input is refused before parsing. */
	size_t n = PROMQL_MAX_QUERY_BYTES + 10;
	char *big = malloc(n + 1);
	memset(big, 'a', n);
	big[n] = '\0';
	struct promql_expr *e = NULL;
	CHECK_EQ_INT(promql_parse(big, &e, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "longer than") != NULL);
	free(big);
	/* Deep nesting parses (no recursion limit below the size cap). */
	char deep[4000];
	size_t k = 0;
	for (int i = 0; i < 500; i++)
		deep[k++] = '(';
	deep[k++] = '1';
	for (int i = 0; i < 500; i++)
		deep[k++] = ')';
	deep[k] = '\0';
	CHECK_EQ_INT(promql_parse(deep, &e, err, sizeof(err)), 0);
	promql_expr_free(e);
	/* Deeper than the evaluator's recursion may go: refused, not a crash. */
	char *deeper = malloc(20000);
	k = 0;
	for (int i = 0; i < 5000; i++)
		deeper[k++] = '(';
	deeper[k++] = '1';
	deeper[k] = '\0';
	CHECK_EQ_INT(promql_parse(deeper, &e, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "nests more than 1000 levels deep") != NULL);
	k = 0;
	for (int i = 0; i < 3000; i++) {
		deeper[k++] = '1';
		deeper[k++] = '+';
	}
	deeper[k++] = '1';
	deeper[k] = '\0';
	CHECK_EQ_INT(promql_parse(deeper, &e, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "nests more than 1000 levels deep") != NULL);
	k = 0;
	for (int i = 0; i < 3000; i++)
		deeper[k++] = '-';
	deeper[k++] = 'x';
	deeper[k] = '\0';
	CHECK_EQ_INT(promql_parse(deeper, &e, err, sizeof(err)), -EINVAL);
	free(deeper);
	/* Bytes that are not PromQL. */
	CHECK_STR(parse_err("foo\x01", err, sizeof(err)), "1:4: parse error: unexpected character: '\\x01'");
	CHECK_STR(parse_err("sum(rate(x[5m])) by (", err, sizeof(err)),
		  "1:22: parse error: unclosed left parenthesis");
}

static bool rx_match(const char *pattern, const char *s)
{
	char err[256];
	struct promql_regex *re = promql_regex_new(pattern, err, sizeof(err));
	if (!re) {
		fprintf(stderr, "  regex %s: %s\n", pattern, err);
		return false;
	}
	bool m = promql_regex_match(re, s);
	promql_regex_free(re);
	return m;
}

static void test_regex(void)
{
	CHECK(rx_match("web-\\d+", "web-12"));
	CHECK(!rx_match("web-\\d+", "web-x"));
	CHECK(!rx_match("web", "web-1"));           /* anchored */
	CHECK(rx_match("(?i)WEB", "web"));
	CHECK(rx_match("[[:alpha:]]+_\\w", "abc_9"));
	CHECK(rx_match("a.*?b", "axxb"));            /* lazy: same full matches */
	CHECK(rx_match("a{2}", "aa"));
	CHECK(rx_match("a{", "a{"));                 /* RE2: a literal brace */
	CHECK(rx_match("[\\]\\-x]+", "]-x"));        /* escapes inside a class */
	CHECK(rx_match("(?:ab)+", "abab"));
	CHECK(rx_match("\\.", "."));
	CHECK(!rx_match("\\.", "x"));
	CHECK(rx_match("[^a]", "\n"));               /* RE2: negated classes match \n */
	CHECK(!rx_match(".", "\n"));                 /* ... and . does not */
	CHECK(rx_match("", ""));
	CHECK(rx_match("x|", ""));
	char err[256];
	CHECK(promql_regex_new("\\pL", err, sizeof(err)) == NULL);
	CHECK(strstr(err, "invalid escape sequence") != NULL);
	CHECK(promql_regex_new("(a)\\1", err, sizeof(err)) == NULL);
	CHECK(promql_regex_new("(a", err, sizeof(err)) == NULL);
	CHECK(strstr(err, "missing closing )") != NULL);
}

static void test_regex_expand(void)
{
	char err[256];
	struct promql_regex *re = promql_regex_new("(?:x-)?(?P<word>[a-z]+)-(\\d+)", err, sizeof(err));
	CHECK(re != NULL);
	if (!re)
		return;
	struct buf b;
	buf_init(&b, 1024);
	CHECK(promql_regex_expand(re, "x-web-12", "$1/${2}/$word/$$/$0/$3/$1x", &b));
	CHECK_STR(b.data, "web/12/web/$/x-web-12//");
	buf_reset(&b);
	CHECK(!promql_regex_expand(re, "nope", "$1", &b));
	buf_fini(&b);
	promql_regex_free(re);
}

static void test_formats(void)
{
	static const struct {
		double v;
		const char *s;
	} vals[] = {
		{ 0, "0" }, { 1, "1" }, { -1.5, "-1.5" }, { 0.1, "0.1" }, { 1e21, "1000000000000000000000" },
		{ 1e-7, "0.0000001" }, { 123456789.123, "123456789.123" }, { 1.0 / 3, "0.3333333333333333" },
		{ INFINITY, "+Inf" }, { -INFINITY, "-Inf" }, { NAN, "NaN" }, { -0.000123, "-0.000123" },
		{ 12345678901234567890.0, "12345678901234567000" }, { 0.7123456789012345, "0.7123456789012345" },
		{ 9007199254740993.0, "9007199254740992" }, { 1234.5e-30, "0.0000000000000000000000000012345" },
	};
	for (size_t i = 0; i < ARRAY_LEN(vals); i++) {
		char out[512];
		promql_fmt_float(out, sizeof(out), vals[i].v);
		CHECK_STR(out, vals[i].s);
	}
	/* The smallest denormal: 323 zeros after the point, then 5. */
	char tiny[512], want[512] = "0.";
	promql_fmt_float(tiny, sizeof(tiny), 4.9e-324);
	memset(want + 2, '0', 323);
	strcpy(want + 325, "5");
	CHECK_STR(tiny, want);
	/* The largest double: 309 digits. */
	promql_fmt_float(tiny, sizeof(tiny), -1.7976931348623157e308);
	CHECK_EQ_INT(strlen(tiny), 310);
	CHECK(!strncmp(tiny, "-17976931348623157000", 21));
	struct buf b;
	buf_init(&b, 256);
	promql_format_time(&b, 1500);
	buf_putc(&b, ' ');
	promql_format_time(&b, 1000);
	buf_putc(&b, ' ');
	promql_format_time(&b, 1001);
	buf_putc(&b, ' ');
	promql_format_time(&b, -1500);
	CHECK_STR(b.data, "1.500 1 1.001 -1.500");
	buf_fini(&b);

	int64_t ms;
	CHECK_EQ_INT(promql_parse_time("1.5", &ms), 0);
	CHECK_EQ_INT(ms, 1500);
	CHECK_EQ_INT(promql_parse_time("1700000000.123", &ms), 0);
	CHECK_EQ_INT(ms, 1700000000123LL);
	CHECK_EQ_INT(promql_parse_time("2023-11-14T22:13:20Z", &ms), 0);
	CHECK_EQ_INT(ms, 1700000000000LL);
	CHECK_EQ_INT(promql_parse_time("2023-11-14T23:13:20.25+01:00", &ms), 0);
	CHECK_EQ_INT(ms, 1700000000250LL);
	CHECK_EQ_INT(promql_parse_time("yesterday", &ms), -EINVAL);
	CHECK_EQ_INT(promql_parse_time("", &ms), -EINVAL);
	CHECK_EQ_INT(promql_parse_time("2023-13-01T00:00:00Z", &ms), -EINVAL);

	CHECK_EQ_INT(promql_parse_duration("1h30m", false, &ms), 0);
	CHECK_EQ_INT(ms, 5400000);
	CHECK_EQ_INT(promql_parse_duration("1d2h3m4s5ms", false, &ms), 0);
	CHECK_EQ_INT(ms, 93784005);
	CHECK_EQ_INT(promql_parse_duration("15", true, &ms), 0);
	CHECK_EQ_INT(ms, 15000);
	CHECK_EQ_INT(promql_parse_duration("0.25", true, &ms), 0);
	CHECK_EQ_INT(ms, 250);
	CHECK_EQ_INT(promql_parse_duration("15", false, &ms), -EINVAL);
	CHECK_EQ_INT(promql_parse_duration("1m1h", false, &ms), -EINVAL);   /* units in order */
	CHECK_EQ_INT(promql_parse_duration("1.5m", true, &ms), -EINVAL);
}

int main(void)
{
	RUN(test_parse_errors);
	RUN(test_parse_valid);
	RUN(test_parse_limits_and_junk);
	RUN(test_regex);
	RUN(test_regex_expand);
	RUN(test_formats);
	TEST_END();
}
