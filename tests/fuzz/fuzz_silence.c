/*
 * fuzz_silence.c - Alertmanager silences as POST /api/v2/silences takes
 * them (alerting/silence.c): the JSON body, its matchers (regexes
 * included), times and durations; an accepted silence is then listed,
 * fetched and matched against an alert's labels.
 */
#include "tests/fuzz/fuzz.h"
#include "agent/util/util.h"
#include "storage/storage.h"
#include "alerting/alerting.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 16384)
		return 0;
	char *body = malloc(size ? size : 1);
	if (!body)
		abort();
	memcpy(body, data, size);
	const int64_t now = 1700000000000;
	char err[512], id[64];
	struct alert_silences *ss = NULL;
	if (alert_silences_open(&ss, NULL, 4, now, err, sizeof(err)) != 0)
		abort();
	if (alert_silences_post(ss, body, size, now, id, sizeof(id), err, sizeof(err)) == 0) {
		struct buf out;
		buf_init(&out, 1 << 20);
		(void)alert_silences_list_json(ss, now, NULL, 0, &out);
		buf_reset(&out);
		(void)alert_silence_get_json(ss, id, now, &out);
		buf_fini(&out);
		struct store_label l[2] = { { "alertname", "x" }, { "severity", "critical" } };
		(void)alert_silenced(ss, l, 2, now + 1000, id, sizeof(id));
		size_t counts[ALERT_SILENCE__STATES];
		(void)alert_silences_count(ss, now, counts);
		(void)alert_silences_expire(ss, id, now + 2000);
	}
	alert_silences_close(ss);
	free(body);
	return 0;
}
