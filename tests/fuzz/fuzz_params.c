/*
 * fuzz_params.c - the parsers of HTTP query parameters and CLI arguments:
 * since=/until= (agent/events_api.c), durations (util, PromQL), API times
 * (PromQL, alerting) and silence matchers (alerting/silence.c, as in
 * ?filter= and `monitor silence add`); and promql_regex_check, the guard
 * in front of every regcomp of outside input (/api/v1/logs?regex=,
 * match[], notifier routes): what it lets through must compile within
 * libFuzzer's time and memory limits.
 */
#include "tests/fuzz/fuzz.h"
#include "agent/util/util.h"
#include "agent/agent.h"
#include "storage/promql.h"
#include "alerting/alerting.h"

#include <regex.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *s = fuzz_cstr(data, size);
	int64_t ms;
	(void)events_parse_since(s, 1700000000000, &ms);
	(void)parse_duration_ms(s, &ms);
	(void)promql_parse_duration(s, true, &ms);
	(void)promql_parse_duration(s, false, &ms);
	(void)promql_parse_time(s, &ms);
	if (alert_time_parse(s, &ms) == 0) {
		char out[64];
		alert_time_format(ms, out, sizeof(out));
	}
	struct alert_matcher m;
	char err[256];
	if (alert_matcher_parse(s, &m, err, sizeof(err)) == 0) {
		(void)alert_matcher_match(&m, "");
		(void)alert_matcher_match(&m, s);
		struct buf out;
		buf_init(&out, 1 << 16);
		alert_matcher_format(&m, &out);
		buf_fini(&out);
		alert_matcher_fini(&m);
	}
	if (promql_regex_check(s, err, sizeof(err)) == 0) {
		regex_t re;
		if (regcomp(&re, s, REG_EXTENDED | REG_NOSUB | REG_ICASE) == 0)
			regfree(&re);
	}
	free(s);
	return 0;
}
