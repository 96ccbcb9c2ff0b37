/* test_silence.c - silences: amtool matcher text, matching (missing labels,
 * anchored regexes, negation), Alertmanager's validation, pending / active /
 * expired by a controlled clock, update in place and replacement, expiry,
 * the list's JSON shape, order and filter, the cap, and persistence across a
 * reopen of the state database with retention of expired silences. */
#include "tests/unit/test.h"
#include "alerting/alerting.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0 1800000000000LL   /* 2027-01-15T08:00:00Z */
#define MIN 60000LL
#define HOUR (60 * MIN)

static void test_matcher_parse(void)
{
	struct alert_matcher m;
	char err[256];
	CHECK(alert_matcher_parse("alertname=ContainerOOMKilled", &m, err, sizeof(err)) == 0);
	CHECK_STR(m.name, "alertname");
	CHECK_STR(m.value, "ContainerOOMKilled");
	CHECK(m.is_equal && !m.is_regex);
	CHECK(alert_matcher_match(&m, "ContainerOOMKilled"));
	CHECK(!alert_matcher_match(&m, "ContainerOOMKilledX"));
	alert_matcher_fini(&m);

	CHECK(alert_matcher_parse("name!=\"web \\\"1\\\"\"", &m, err, sizeof(err)) == 0);
	CHECK_STR(m.value, "web \"1\"");
	CHECK(!m.is_equal && !m.is_regex);
	CHECK(alert_matcher_match(&m, "web"));
	CHECK(!alert_matcher_match(&m, "web \"1\""));
	alert_matcher_fini(&m);

	/* Regexes are anchored at both ends, as in Alertmanager. */
	CHECK(alert_matcher_parse("name=~web-.*", &m, err, sizeof(err)) == 0);
	CHECK(m.is_regex && m.is_equal);
	CHECK(alert_matcher_match(&m, "web-1"));
	CHECK(!alert_matcher_match(&m, "my-web-1"));
	CHECK(!alert_matcher_match(&m, NULL));
	alert_matcher_fini(&m);

	CHECK(alert_matcher_parse("severity !~ \"warning|info\"", &m, err, sizeof(err)) == 0);
	CHECK(m.is_regex && !m.is_equal);
	CHECK(!alert_matcher_match(&m, "info"));
	CHECK(alert_matcher_match(&m, "critical"));
	CHECK(alert_matcher_match(&m, NULL)); /* missing label: "" */
	alert_matcher_fini(&m);

	/* Empty value: matches the label being absent. */
	CHECK(alert_matcher_parse("team=", &m, err, sizeof(err)) == 0);
	CHECK(alert_matcher_match(&m, NULL));
	CHECK(!alert_matcher_match(&m, "a"));
	alert_matcher_fini(&m);

	struct buf b;
	buf_init(&b, 1024);
	CHECK(alert_matcher_parse("a=~\"x|y\"", &m, err, sizeof(err)) == 0);
	alert_matcher_format(&m, &b);
	CHECK_STR(b.data, "a=~\"x|y\"");
	alert_matcher_fini(&m);
	buf_fini(&b);

	const char *bad[] = { "", "=x", "9a=b", "a", "a<b", "a=~\"(\"", "a=\"open", "a.b=c" };
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		err[0] = '\0';
		CHECK(alert_matcher_parse(bad[i], &m, err, sizeof(err)) == -EINVAL);
		CHECK(err[0] != '\0');
	}
	alert_matcher_fini(NULL);
}

static void test_time(void)
{
	int64_t t;
	char s[40];
	CHECK(alert_time_parse("2027-01-15T08:00:00Z", &t) == 0 && t == T0);
	CHECK(alert_time_parse("2027-01-15T09:00:00.5+01:00", &t) == 0 && t == T0 + 500);
	CHECK(alert_time_parse("2027-01-15 08:00:00Z", &t) == -EINVAL);
	CHECK(alert_time_parse("2027-01-15T08:00:00", &t) == -EINVAL);
	alert_time_format(T0, s, sizeof(s));
	CHECK_STR(s, "2027-01-15T08:00:00Z");
	alert_time_format(T0 + 250, s, sizeof(s));
	CHECK_STR(s, "2027-01-15T08:00:00.250Z");
}

/* POSTs json at now; returns the result and the id in id. */
static int post(struct alert_silences *ss, const char *json, int64_t now, char *id)
{
	char err[512];
	err[0] = '\0';
	int rc = alert_silences_post(ss, json, strlen(json), now, id, ALERT_SILENCE_ID_SIZE, err,
				     sizeof(err));
	if (rc < 0 && !err[0])
		fprintf(stderr, "  post: %d without a message\n", rc);
	return rc;
}

static const struct store_label web_oom[] = {
	{ "alertname", "ContainerOOMKilled" }, { "name", "web-1" }, { "severity", "warning" },
};
static const struct store_label db_oom[] = {
	{ "alertname", "ContainerOOMKilled" }, { "name", "db" }, { "severity", "critical" },
};

static void test_validation(void)
{
	struct alert_silences *ss;
	char err[256], id[ALERT_SILENCE_ID_SIZE];
	CHECK(alert_silences_open(&ss, NULL, 0, T0, err, sizeof(err)) == 0);
	const char *bad[] = {
		"not json",
		"[]",
		"{\"matchers\":[],\"endsAt\":\"2027-01-15T09:00:00Z\",\"createdBy\":\"a\",\"comment\":\"c\"}",
		/* every matcher matches "": would silence everything */
		"{\"matchers\":[{\"name\":\"a\",\"value\":\".*\",\"isRegex\":true}],"
		"\"endsAt\":\"2027-01-15T09:00:00Z\",\"createdBy\":\"a\",\"comment\":\"c\"}",
		"{\"matchers\":[{\"name\":\"a\",\"value\":\"x\",\"isEqual\":false}],"
		"\"endsAt\":\"2027-01-15T09:00:00Z\",\"createdBy\":\"a\",\"comment\":\"c\"}",
		/* no comment, no author */
		"{\"matchers\":[{\"name\":\"a\",\"value\":\"x\"}],\"endsAt\":\"2027-01-15T09:00:00Z\","
		"\"createdBy\":\"a\"}",
		"{\"matchers\":[{\"name\":\"a\",\"value\":\"x\"}],\"endsAt\":\"2027-01-15T09:00:00Z\","
		"\"comment\":\"c\"}",
		/* ends in the past, before its start, never */
		"{\"matchers\":[{\"name\":\"a\",\"value\":\"x\"}],\"endsAt\":\"2027-01-15T07:00:00Z\","
		"\"createdBy\":\"a\",\"comment\":\"c\"}",
		"{\"matchers\":[{\"name\":\"a\",\"value\":\"x\"}],\"startsAt\":\"2027-01-15T10:00:00Z\","
		"\"endsAt\":\"2027-01-15T09:00:00Z\",\"createdBy\":\"a\",\"comment\":\"c\"}",
		"{\"matchers\":[{\"name\":\"a\",\"value\":\"x\"}],\"createdBy\":\"a\",\"comment\":\"c\"}",
		/* bad pieces */
		"{\"matchers\":[{\"name\":\"a\",\"value\":\"(\",\"isRegex\":true}],\"duration\":\"1h\","
		"\"createdBy\":\"a\",\"comment\":\"c\"}",
		"{\"matchers\":[{\"name\":\"a-b\",\"value\":\"x\"}],\"duration\":\"1h\","
		"\"createdBy\":\"a\",\"comment\":\"c\"}",
		"{\"matchers\":[{\"name\":\"a\",\"value\":1}],\"duration\":\"1h\","
		"\"createdBy\":\"a\",\"comment\":\"c\"}",
		"{\"matchers\":[{\"name\":\"a\",\"value\":\"x\"}],\"duration\":\"soon\","
		"\"createdBy\":\"a\",\"comment\":\"c\"}",
		"{\"matchers\":[{\"name\":\"a\",\"value\":\"x\"}],\"duration\":\"1h\","
		"\"endsAt\":\"2027-01-15T09:00:00Z\",\"createdBy\":\"a\",\"comment\":\"c\"}",
		"{\"matchers\":[{\"name\":\"a\",\"value\":\"x\"}],\"endsAt\":\"tomorrow\","
		"\"createdBy\":\"a\",\"comment\":\"c\"}",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		int rc = post(ss, bad[i], T0, id);
		if (rc != -EINVAL)
			fprintf(stderr, "  bad[%zu] gave %d\n", i, rc);
		CHECK(rc == -EINVAL);
	}
	/* An id nobody made. */
	CHECK(post(ss, "{\"id\":\"0000\",\"matchers\":[{\"name\":\"a\",\"value\":\"x\"}],"
		   "\"duration\":\"1h\",\"createdBy\":\"a\",\"comment\":\"c\"}", T0, id) == -ENOENT);
	size_t counts[ALERT_SILENCE__STATES];
	CHECK(alert_silences_count(ss, T0, counts) == 0);
	alert_silences_close(ss);
}

static void test_lifecycle(void)
{
	struct alert_silences *ss;
	char err[256], id[ALERT_SILENCE_ID_SIZE], got[ALERT_SILENCE_ID_SIZE];
	CHECK(alert_silences_open(&ss, NULL, 0, T0, err, sizeof(err)) == 0);
	/* Starts in 10 minutes, lasts an hour. */
	CHECK(post(ss, "{\"matchers\":[{\"name\":\"alertname\",\"value\":\"ContainerOOMKilled\"},"
		   "{\"name\":\"name\",\"value\":\"web-.*\",\"isRegex\":true}],"
		   "\"startsAt\":\"2027-01-15T08:10:00Z\",\"duration\":\"1h\","
		   "\"createdBy\":\"ops\",\"comment\":\"load test\"}", T0, id) == 0);
	CHECK_EQ_INT(strlen(id), 36);
	CHECK(id[14] == '4');
	CHECK(!alert_silenced(ss, web_oom, 3, T0, got, sizeof(got)));  /* pending */
	CHECK(!alert_silenced(ss, web_oom, 3, T0 + 10 * MIN - 1, NULL, 0));
	got[0] = '\0';
	CHECK(alert_silenced(ss, web_oom, 3, T0 + 10 * MIN, got, sizeof(got)));
	CHECK_STR(got, id);
	CHECK(!alert_silenced(ss, db_oom, 3, T0 + 10 * MIN, NULL, 0)); /* another container */
	static const struct store_label no_name[] = {
		{ "alertname", "ContainerOOMKilled" }, { "severity", "warning" },
	};
	CHECK(!alert_silenced(ss, no_name, 2, T0 + 10 * MIN, NULL, 0)); /* name missing */
	CHECK(!alert_silenced(ss, web_oom, 3, T0 + 70 * MIN, NULL, 0)); /* ended */
	CHECK(alert_silenced(ss, web_oom, 3, T0 + 70 * MIN - 1, NULL, 0));
	CHECK(!alert_silenced(NULL, web_oom, 3, T0 + 20 * MIN, NULL, 0));

	size_t counts[ALERT_SILENCE__STATES];
	CHECK(alert_silences_count(ss, T0, counts) == 1 && counts[ALERT_SILENCE_PENDING] == 1);
	CHECK(alert_silences_count(ss, T0 + 20 * MIN, counts) == 1 &&
	      counts[ALERT_SILENCE_ACTIVE] == 1);

	/* Same matchers, longer: updated in place, the start kept. */
	char body[1024], id2[ALERT_SILENCE_ID_SIZE];
	snprintf(body, sizeof(body), "{\"id\":\"%s\",\"matchers\":[{\"name\":\"alertname\","
		 "\"value\":\"ContainerOOMKilled\"},{\"name\":\"name\",\"value\":\"web-.*\","
		 "\"isRegex\":true}],\"endsAt\":\"2027-01-15T12:00:00Z\",\"createdBy\":\"ops\","
		 "\"comment\":\"longer\"}", id);
	CHECK(post(ss, body, T0 + 20 * MIN, id2) == 0);
	CHECK_STR(id2, id);
	CHECK(alert_silenced(ss, web_oom, 3, T0 + 3 * HOUR, NULL, 0));
	CHECK(alert_silences_count(ss, T0 + 20 * MIN, counts) == 1);
	struct buf b;
	buf_init(&b, 1 << 16);
	CHECK(alert_silence_get_json(ss, id, T0 + 20 * MIN, &b) == 0);
	CHECK(strstr(b.data, "\"startsAt\":\"2027-01-15T08:10:00Z\"") != NULL);
	CHECK(strstr(b.data, "\"comment\":\"longer\"") != NULL);
	CHECK(strstr(b.data, "\"updatedAt\":\"2027-01-15T08:20:00Z\"") != NULL);

	/* Other matchers under the same id: the old one ends, a new id. */
	snprintf(body, sizeof(body), "{\"id\":\"%s\",\"matchers\":[{\"name\":\"name\","
		 "\"value\":\"db\"}],\"duration\":\"30m\",\"createdBy\":\"ops\","
		 "\"comment\":\"db only\"}", id);
	CHECK(post(ss, body, T0 + 30 * MIN, id2) == 0);
	CHECK(strcmp(id2, id) != 0);
	CHECK(!alert_silenced(ss, web_oom, 3, T0 + 30 * MIN, NULL, 0));
	CHECK(alert_silenced(ss, db_oom, 3, T0 + 30 * MIN, got, sizeof(got)));
	CHECK_STR(got, id2);
	CHECK(alert_silences_count(ss, T0 + 30 * MIN, counts) == 2 &&
	      counts[ALERT_SILENCE_EXPIRED] == 1 && counts[ALERT_SILENCE_ACTIVE] == 1);

	/* Expire. */
	CHECK(alert_silences_expire(ss, "nope", T0 + 31 * MIN) == -ENOENT);
	CHECK(alert_silences_expire(ss, id, T0 + 31 * MIN) == -EALREADY);
	CHECK(alert_silences_expire(ss, id2, T0 + 31 * MIN) == 0);
	CHECK(!alert_silenced(ss, db_oom, 3, T0 + 31 * MIN, NULL, 0));
	CHECK(alert_silences_expire(ss, id2, T0 + 32 * MIN) == -EALREADY);
	buf_reset(&b);
	CHECK(alert_silence_get_json(ss, id2, T0 + 32 * MIN, &b) == 0);
	CHECK(strstr(b.data, "\"state\":\"expired\"") != NULL);
	CHECK(strstr(b.data, "\"endsAt\":\"2027-01-15T08:31:00Z\"") != NULL);
	buf_fini(&b);
	alert_silences_close(ss);
}

static void test_list(void)
{
	struct alert_silences *ss;
	char err[256], a[ALERT_SILENCE_ID_SIZE], p[ALERT_SILENCE_ID_SIZE], e[ALERT_SILENCE_ID_SIZE];
	CHECK(alert_silences_open(&ss, NULL, 0, T0, err, sizeof(err)) == 0);
	CHECK(post(ss, "{\"matchers\":[{\"name\":\"name\",\"value\":\"old\"}],\"duration\":\"1m\","
		   "\"createdBy\":\"a\",\"comment\":\"c\"}", T0 - 10 * MIN, e) == 0);
	CHECK(post(ss, "{\"matchers\":[{\"name\":\"name\",\"value\":\"later\"}],"
		   "\"startsAt\":\"2027-01-15T09:00:00Z\",\"duration\":\"1h\","
		   "\"createdBy\":\"a\",\"comment\":\"c\"}", T0, p) == 0);
	CHECK(post(ss, "{\"matchers\":[{\"name\":\"name\",\"value\":\"now\"},"
		   "{\"name\":\"severity\",\"value\":\"info\",\"isEqual\":false}],"
		   "\"duration\":\"2h\",\"createdBy\":\"ann\",\"comment\":\"deploy \\\"x\\\"\"}", T0,
		   a) == 0);
	struct buf b;
	buf_init(&b, 1 << 16);
	CHECK(alert_silences_list_json(ss, T0, NULL, 0, &b) == 0);
	struct json_doc doc;
	CHECK(json_parse(&doc, b.data, b.len, NULL) == 0);
	CHECK(doc.root && doc.root->type == JSON_ARRAY && doc.root->count == 3);
	if (doc.root && doc.root->count == 3) {
		const struct json *s0 = doc.root->child, *s1 = s0->next, *s2 = s1->next;
		/* active, pending, expired */
		CHECK_STR(json_get_str(s0, "id"), a);
		CHECK_STR(json_get_str(json_get(s0, "status"), "state"), "active");
		CHECK_STR(json_get_str(s1, "id"), p);
		CHECK_STR(json_get_str(json_get(s1, "status"), "state"), "pending");
		CHECK_STR(json_get_str(s2, "id"), e);
		CHECK_STR(json_get_str(json_get(s2, "status"), "state"), "expired");
		CHECK_STR(json_get_str(s0, "createdBy"), "ann");
		CHECK_STR(json_get_str(s0, "comment"), "deploy \"x\"");
		CHECK_STR(json_get_str(s0, "startsAt"), "2027-01-15T08:00:00Z");
		CHECK_STR(json_get_str(s0, "endsAt"), "2027-01-15T10:00:00Z");
		const struct json *m = json_get(s0, "matchers");
		CHECK(m && m->count == 2);
		if (m && m->count == 2) {
			const struct json *m1 = m->child->next;
			CHECK_STR(json_get_str(m1, "name"), "severity");
			CHECK(json_get(m1, "isEqual")->type == JSON_BOOL &&
			      !json_get(m1, "isEqual")->boolean);
			CHECK(!json_get(m1, "isRegex")->boolean);
		}
	}
	json_doc_free(&doc);

	/* ?filter=name=~"now|later" */
	struct alert_matcher f;
	CHECK(alert_matcher_parse("name=~now|later", &f, err, sizeof(err)) == 0);
	buf_reset(&b);
	CHECK(alert_silences_list_json(ss, T0, &f, 1, &b) == 0);
	CHECK(json_parse(&doc, b.data, b.len, NULL) == 0);
	CHECK(doc.root && doc.root->count == 2);
	json_doc_free(&doc);
	alert_matcher_fini(&f);
	buf_fini(&b);
	alert_silences_close(ss);
}

static void test_cap(void)
{
	struct alert_silences *ss;
	char err[256], id[ALERT_SILENCE_ID_SIZE];
	CHECK(alert_silences_open(&ss, NULL, 2, T0, err, sizeof(err)) == 0);
	const char *body = "{\"matchers\":[{\"name\":\"a\",\"value\":\"x\"}],\"duration\":\"1h\","
			   "\"createdBy\":\"a\",\"comment\":\"c\"}";
	CHECK(post(ss, body, T0, id) == 0);
	CHECK(post(ss, body, T0, id) == 0);
	CHECK(post(ss, body, T0, id) == -ENOSPC);
	/* Past retention the expired ones make room again. */
	CHECK(post(ss, body, T0 + 2 * HOUR + ALERT_SILENCE_RETENTION_MS, id) == 0);
	alert_silences_close(ss);
}

static int count_rows(void *arg, const char *key, const void *val, size_t len)
{
	(*(size_t *)arg)++;
	return 0;
}

static void test_persistence(void)
{
	char dir[] = "/tmp/silencetestXXXXXX", path[256], err[512];
	char a[ALERT_SILENCE_ID_SIZE], e[ALERT_SILENCE_ID_SIZE], got[ALERT_SILENCE_ID_SIZE];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/state.db", dir);
	struct kv *kv = NULL;
	CHECK(kv_open(&kv, path, err, sizeof(err)) == 0);
	struct alert_silences *ss;
	CHECK(alert_silences_open(&ss, kv, 0, T0, err, sizeof(err)) == 0);
	CHECK(post(ss, "{\"matchers\":[{\"name\":\"name\",\"value\":\"web-.*\",\"isRegex\":true}],"
		   "\"duration\":\"3h\",\"createdBy\":\"ops\",\"comment\":\"kept\"}", T0, a) == 0);
	CHECK(post(ss, "{\"matchers\":[{\"name\":\"name\",\"value\":\"db\"}],"
		   "\"duration\":\"3h\",\"createdBy\":\"ops\",\"comment\":\"ended\"}", T0, e) == 0);
	CHECK(alert_silences_expire(ss, e, T0 + MIN) == 0);
	alert_silences_close(ss);
	kv_close(kv);

	/* A new process: both come back, the regex still works, the expired
	 * one stays expired. */
	CHECK(kv_open(&kv, path, err, sizeof(err)) == 0);
	CHECK(alert_silences_open(&ss, kv, 0, T0 + 2 * MIN, err, sizeof(err)) == 0);
	size_t counts[ALERT_SILENCE__STATES];
	CHECK(alert_silences_count(ss, T0 + 2 * MIN, counts) == 2);
	CHECK(counts[ALERT_SILENCE_ACTIVE] == 1 && counts[ALERT_SILENCE_EXPIRED] == 1);
	CHECK(alert_silenced(ss, web_oom, 3, T0 + 2 * MIN, got, sizeof(got)));
	CHECK_STR(got, a);
	CHECK(!alert_silenced(ss, db_oom, 3, T0 + 2 * MIN, NULL, 0));
	struct buf b;
	buf_init(&b, 1 << 16);
	CHECK(alert_silence_get_json(ss, a, T0 + 2 * MIN, &b) == 0);
	CHECK(strstr(b.data, "\"comment\":\"kept\"") && strstr(b.data, "\"createdBy\":\"ops\""));
	CHECK(strstr(b.data, "\"endsAt\":\"2027-01-15T11:00:00Z\""));
	buf_fini(&b);
	alert_silences_close(ss);

	/* A broken record is skipped, not fatal. */
	CHECK(kv_put(kv, "silences", "ffff", "{broken", 7) == 0);
	/* Past retention, both are dropped from memory and the database. */
	int64_t later = T0 + 3 * HOUR + ALERT_SILENCE_RETENTION_MS + 1;
	CHECK(alert_silences_open(&ss, kv, 0, later, err, sizeof(err)) == 0);
	CHECK(alert_silences_count(ss, later, counts) == 0);
	alert_silences_close(ss);
	size_t rows = 0;
	CHECK(kv_each(kv, "silences", NULL, 0, count_rows, &rows) == 0);
	CHECK_EQ_INT(rows, 1); /* the broken one is left for inspection */
	kv_close(kv);
	unlink(path);
	char side[300];
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
	rmdir(dir);
}

int main(void)
{
	RUN(test_matcher_parse);
	RUN(test_time);
	RUN(test_validation);
	RUN(test_lifecycle);
	RUN(test_list);
	RUN(test_cap);
	RUN(test_persistence);
	TEST_END();
}
