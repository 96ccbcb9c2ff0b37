/* test_template.c - the rule template subset: variables, Go's number
 * printing, the humanize functions (values from Prometheus'
 * template/template_test.go), printf, pipelines, trimming, and the errors
 * for what is outside the subset. */
#include "tests/unit/test.h"
#include "alerting/alerting.h"

#include <errno.h>

static const char *const vars[] = { "labels", "value", "externalLabels", "externalURL", NULL };

struct ctx {
	double value;
};

static int lookup(void *arg, const char *var, const char *field, struct alert_tmpl_value *out)
{
	const struct ctx *c = arg;
	memset(out, 0, sizeof(*out));
	if (!strcmp(var, "value")) {
		out->kind = ALERT_TMPL_NUM;
		out->num = c->value;
		return 0;
	}
	if (!strcmp(var, "externalURL")) {
		out->kind = ALERT_TMPL_STR;
		out->str = "http://host:9838";
		return 0;
	}
	if (!strcmp(var, "labels") || !strcmp(var, "externalLabels")) {
		if (!field) {
			out->kind = ALERT_TMPL_MAP;
			return 0;
		}
		out->kind = ALERT_TMPL_STR;
		out->str = !strcmp(field, "job") ? "node" : !strcmp(field, "instance") ? "web-1:9100" :
			   !strcmp(field, "num") ? "1234.5" : !strcmp(field, "cluster") ? "eu" : "";
		return 0;
	}
	return -ENOENT;
}

/* Expands text with $value = v; returns a static copy or "ERR: <msg>". */
static const char *ex(const char *text, double v)
{
	static char out[4096];
	char err[512];
	struct alert_tmpl *t;
	if (alert_tmpl_parse(text, vars, &t, err, sizeof(err)) < 0) {
		snprintf(out, sizeof(out), "ERR: %s", err);
		return out;
	}
	struct buf b;
	buf_init(&b, 1 << 16);
	struct ctx c = { v };
	int rc = alert_tmpl_exec(t, lookup, &c, &b, err, sizeof(err));
	if (rc < 0)
		snprintf(out, sizeof(out), "ERR: %s", err);
	else
		snprintf(out, sizeof(out), "%s", b.len ? b.data : "");
	buf_fini(&b);
	alert_tmpl_free(t);
	return out;
}

static void test_variables(void)
{
	CHECK_STR(ex("{{ $labels.instance }} of job {{ $labels.job }} is down", 0),
		  "web-1:9100 of job node is down");
	CHECK_STR(ex("{{ .Labels.job }}/{{ $externalLabels.cluster }}", 0), "node/eu");
	CHECK_STR(ex("missing: [{{ $labels.nope }}]", 0), "missing: []");
	CHECK_STR(ex("{{ index $labels \"job\" }}", 0), "node");
	CHECK_STR(ex("{{ $externalURL }}/alerts", 0), "http://host:9838/alerts");
	CHECK_STR(ex("plain text", 0), "plain text");
	CHECK_STR(ex("", 0), "");
}

static void test_go_float(void)
{
	CHECK_STR(ex("{{ $value }}", 1e6), "1e+06");
	CHECK_STR(ex("{{ $value }}", 123456), "123456");
	CHECK_STR(ex("{{ $value }}", 1234567), "1.234567e+06");
	CHECK_STR(ex("{{ $value }}", 0.5), "0.5");
	CHECK_STR(ex("{{ $value }}", 0.0001), "0.0001");
	CHECK_STR(ex("{{ $value }}", 0.00001), "1e-05");
	CHECK_STR(ex("{{ $value }}", -2.25), "-2.25");
	CHECK_STR(ex("{{ $value }}", 0), "0");
	CHECK_STR(ex("{{ $value }}", NAN), "NaN");
	CHECK_STR(ex("{{ $value }}", INFINITY), "+Inf");
	CHECK_STR(ex("{{ .Value }}", 0.1), "0.1");
}

static void test_humanize(void)
{
	/* Prometheus template_test.go */
	CHECK_STR(ex("{{ humanize $value }}", 0), "0");
	CHECK_STR(ex("{{ $value | humanize }}", 1234567.0), "1.235M");
	CHECK_STR(ex("{{ $value | humanize }}", 12345.0), "12.35k");
	CHECK_STR(ex("{{ $value | humanize }}", 123.45), "123.5");
	CHECK_STR(ex("{{ $value | humanize }}", 0.001234), "1.234m");
	CHECK_STR(ex("{{ $value | humanize }}", 0.000012345), "12.35u");
	CHECK_STR(ex("{{ $value | humanize }}", 1e27), "1000Y");
	CHECK_STR(ex("{{ $labels.num | humanize }}", 0), "1.234k");
	CHECK_STR(ex("{{ humanize1024 $value }}", 1048576), "1Mi");
	CHECK_STR(ex("{{ humanize1024 $value }}", 0.5), "0.5");
	CHECK_STR(ex("{{ humanize1024 $value }}", 1.5e9), "1.397Gi");
	CHECK_STR(ex("{{ humanizePercentage $value }}", 0.1234567), "12.35%");
	CHECK_STR(ex("{{ humanizePercentage $value }}", 1), "100%");
	CHECK_STR(ex("{{ humanizeDuration $value }}", 0), "0s");
	CHECK_STR(ex("{{ humanizeDuration $value }}", 1), "1s");
	CHECK_STR(ex("{{ humanizeDuration $value }}", 60), "1m 0s");
	CHECK_STR(ex("{{ humanizeDuration $value }}", 3600), "1h 0m 0s");
	CHECK_STR(ex("{{ humanizeDuration $value }}", 86400), "1d 0h 0m 0s");
	CHECK_STR(ex("{{ humanizeDuration $value }}", 86400 + 3600 * 2 + 60 * 3 + 4), "1d 2h 3m 4s");
	CHECK_STR(ex("{{ humanizeDuration $value }}", 3.5), "3.5s");
	CHECK_STR(ex("{{ humanizeDuration $value }}", 0.1), "100ms");
	CHECK_STR(ex("{{ humanizeDuration $value }}", 0.0001), "100us");
	CHECK_STR(ex("{{ humanizeDuration $value }}", -90), "-1m 30s");
	CHECK_STR(ex("{{ humanizeTimestamp $value }}", 1435065584.128), "2015-06-23 13:19:44.128 +0000 UTC");
	CHECK_STR(ex("{{ humanizeTimestamp $value }}", 0), "1970-01-01 00:00:00 +0000 UTC");
}

static void test_printf_and_pipes(void)
{
	CHECK_STR(ex("{{ printf \"%.2f\" $value }}", 3.14159), "3.14");
	CHECK_STR(ex("{{ $value | printf \"%.1f%%\" }}", 97.66), "97.7%");
	CHECK_STR(ex("{{ printf \"%0.0f\" $value }}", 12.6), "13");
	CHECK_STR(ex("{{ printf \"%d pods\" $value }}", 3), "3 pods");
	CHECK_STR(ex("{{ printf \"%s/%s\" $labels.job $labels.instance }}", 0), "node/web-1:9100");
	CHECK_STR(ex("{{ printf \"%q\" $labels.job }}", 0), "\"node\"");
	CHECK_STR(ex("{{ printf \"%5.1f|%-4s|\" $value \"ab\" }}", 2.25), "  2.2|ab  |");
	CHECK_STR(ex("{{ printf \"%v\" $value }}", 1e6), "1e+06");
	CHECK_STR(ex("{{ printf \"%g\" $value }}", 0.25), "0.25");
	CHECK_STR(ex("{{ printf \"%d\" $value }}", 1.5), "%!d(float64=1.5)");
	CHECK_STR(ex("{{ printf \"%s\" }}", 0), "%!s(MISSING)");
	CHECK_STR(ex("{{ printf \"x\" 1 }}", 0), "x%!(EXTRA float64=1)");
	CHECK_STR(ex("{{ $labels.job | toUpper }}", 0), "NODE");
	CHECK_STR(ex("{{ \"HeLLo\" | toLower }}", 0), "hello");
	CHECK_STR(ex("{{ title \"disk is full\" }}", 0), "Disk Is Full");
	CHECK_STR(ex("{{ printf \"%.1f\" (humanize $value | len) }}", 0),
		  "ERR: template: 1:37: function \"len\" is not supported; the supported subset is "
		  "$variables, .Fields, \"strings\", numbers, pipelines with |, ( ) and the "
		  "functions humanize, humanize1024, humanizePercentage, humanizeDuration, "
		  "humanizeTimestamp, printf, toUpper, toLower, title and index");
	CHECK_STR(ex("{{ printf \"%s!\" (humanize $value) }}", 2500), "2.5k!");
	CHECK_STR(ex("a  {{- \"b\" -}}  c", 0), "abc");
	CHECK_STR(ex("a {{/* a comment */}}b", 0), "a b");
	CHECK_STR(ex("{{ `raw \\n` }}", 0), "raw \\n");
	CHECK_STR(ex("{{ \"tab\\tnew\" }}", 0), "tab\tnew");
	CHECK_STR(ex("{{ 42 }} {{ -1.5 }}", 0), "42 -1.5");
}

static void test_errors(void)
{
	const char *r;
	r = ex("{{ if gt $value 1.0 }}big{{ end }}", 0);
	CHECK(strstr(r, "ERR: template: 1:4: \"if\" is not supported") == r);
	r = ex("{{ query \"up\" }}", 0);
	CHECK(strstr(r, "ERR: template: 1:4: function \"query\" is not supported") == r);
	r = ex("line one\n  {{ $nope }}", 0);
	CHECK_STR(r, "ERR: template: 2:6: undefined variable $nope");
	r = ex("{{ $labels.a.b }}", 0);
	CHECK(strstr(r, "only one level of fields") != NULL);
	r = ex("{{ $labels.job", 0);
	CHECK_STR(r, "ERR: template: 1:1: unclosed action (no \"}}\")");
	r = ex("{{ printf \"%x\" 1 }}", 0);
	CHECK(strstr(r, "printf verb %x is not supported") != NULL);
	r = ex("{{ $x := 1 }}", 0);
	CHECK(strstr(r, "assigning variables") != NULL);
	r = ex("{{ humanize }}", 0);
	CHECK(strstr(r, "humanize takes 1 argument, got 0") != NULL);
	r = ex("{{ humanize 1 2 }}", 0);
	CHECK(strstr(r, "humanize takes 1 argument, got 2") != NULL);
	r = ex("{{ }}", 0);
	CHECK(strstr(r, "empty action") != NULL);
	r = ex("{{ \"abc }}", 0);
	CHECK(strstr(r, "unterminated string") != NULL);
	r = ex("{{ $labels.job $value }}", 0);
	CHECK(strstr(r, "cannot take arguments") != NULL);
	r = ex("{{ 1 | $value }}", 0);
	CHECK(strstr(r, "cannot pipe") != NULL);
	/* Execution errors. */
	r = ex("{{ $labels }}", 0);
	CHECK_STR(r, "ERR: template: 1:1: cannot print the map $labels; name a field such as "
		  "$labels.name");
	r = ex("{{ $labels.job | humanize }}", 0);
	CHECK_STR(r, "ERR: template: 1:1: humanize: cannot convert \"node\" to a number");
	CHECK(strstr(ex("{{ toUpper $value }}", 1), "toUpper: expected a string") != NULL);
	/* Static check of variables only for those named. */
	struct alert_tmpl *t;
	char err[256];
	CHECK(alert_tmpl_parse("{{ $anything.x }}", NULL, &t, err, sizeof(err)) == 0);
	CHECK(!alert_tmpl_is_static(t));
	alert_tmpl_free(t);
	CHECK(alert_tmpl_parse("no actions", vars, &t, err, sizeof(err)) == 0);
	CHECK(alert_tmpl_is_static(t));
	alert_tmpl_free(t);
	alert_tmpl_free(NULL);
}

int main(void)
{
	RUN(test_variables);
	RUN(test_go_float);
	RUN(test_humanize);
	RUN(test_printf_and_pipes);
	RUN(test_errors);
	TEST_END();
}
