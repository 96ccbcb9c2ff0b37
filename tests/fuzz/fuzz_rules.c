/*
 * fuzz_rules.c - Prometheus rule files as `rule_files:` and `monitor rules
 * check` read them (alerting/rules*.c): groups, alerting and recording
 * rules, their PromQL, durations, labels and annotation templates.
 */
#include "tests/fuzz/fuzz_file.h"
#include "agent/util/util.h"
#include "alerting/alerting.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	const char *paths[1] = { fuzz_file(data, size, ".rules.yml") };
	struct buf out;
	buf_init(&out, 1 << 20);
	(void)alert_rules_check(paths, 1, &out);
	buf_fini(&out);
	return 0;
}
