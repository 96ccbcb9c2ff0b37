/*
 * fuzz_template.c - the alert template language (alerting/template.c), read
 * from rule files' annotations and notifier templates: parse, then execute
 * against labels and a value (the first input byte picks the value, so
 * NaN, infinities and large numbers reach the humanize functions).
 */
#include <errno.h>
#include <math.h>
#include "tests/fuzz/fuzz.h"
#include "agent/util/util.h"
#include "alerting/alerting.h"

static const char *const vars[] = { "labels", "value", "externalLabels", "externalURL", NULL };

static int lookup(void *arg, const char *var, const char *field, struct alert_tmpl_value *out)
{
	const double *v = arg;
	memset(out, 0, sizeof(*out));
	if (!strcmp(var, "value")) {
		out->kind = ALERT_TMPL_NUM;
		out->num = *v;
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
		out->str = !strcmp(field, "job") ? "node" : !strcmp(field, "num") ? "1234.5" :
			   !strcmp(field, "neg") ? "-1e308" : "";
		return 0;
	}
	return -ENOENT;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 8192)
		return 0;
	static const double values[] = { 0, 1, -1, 0.5, 1e6, 1e-9, 1e308, -1e308, 123456789.123,
					  5e-324, 86400 * 365.25 * 1000 };
	double v;
	unsigned pick = data[0] % 16;
	if (pick < sizeof(values) / sizeof(values[0]))
		v = values[pick];
	else
		v = pick == 11 ? NAN : pick == 12 ? INFINITY : pick == 13 ? -INFINITY : (double)pick;
	char *text = fuzz_cstr(data + 1, size - 1);
	char err[512];
	struct alert_tmpl *t = NULL;
	for (int any = 0; any < 2; any++) {
		if (alert_tmpl_parse(text, any ? NULL : vars, &t, err, sizeof(err)) != 0)
			continue;
		(void)alert_tmpl_is_static(t);
		struct buf out;
		buf_init(&out, 1 << 16);
		(void)alert_tmpl_exec(t, lookup, &v, &out, err, sizeof(err));
		buf_fini(&out);
		alert_tmpl_free(t);
	}
	free(text);
	return 0;
}
