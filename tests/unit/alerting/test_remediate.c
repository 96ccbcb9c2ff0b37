/* test_remediate.c - remediation with a controlled clock and a fake
 * runtime: only firing alerts whose rule asks (action="restart") act; the
 * container is found by the id in the cgroup path, else by name; restarts
 * keep min_interval apart and stop at max_restarts_per_hour in a sliding
 * hour (the refusal recorded once); silenced alerts are left alone; a
 * failed restart is recorded and counts; the alerts go on to the next sink
 * with the "remediation" annotation; the threaded worker runs the same;
 * the cap holds across a restart of the agent (history in the kv store);
 * the config section parses and refuses bad values with file:line. */
#include "tests/unit/test.h"
#include "alerting/alerting.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define T0 1800000000000LL
#define MIN 60000LL
#define ID64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct fake {
	int restarts;
	char last_ref[200];
	int fail;                    /* next restarts fail */
	int records;
	char last_detail[300];
	/* what the next sink saw */
	int passed;
	char note[300];
};

static int fake_restart(void *arg, const char *ref, int64_t stop_timeout_s, char *msg,
			size_t msgsize)
{
	struct fake *f = arg;
	snprintf(f->last_ref, sizeof(f->last_ref), "%s", ref);
	if (f->fail) {
		snprintf(msg, msgsize, "engine says no");
		return -EIO;
	}
	f->restarts++;
	return 0;
}

static void fake_record(void *arg, const char *ref, const char *name, const char *detail)
{
	struct fake *f = arg;
	f->records++;
	snprintf(f->last_detail, sizeof(f->last_detail), "%s", detail);
}

static void next_sink(void *arg, const struct alert_msg *alerts, size_t n, int64_t now_ms)
{
	struct fake *f = arg;
	f->passed += (int)n;
	f->note[0] = '\0';
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < alerts[i].nannotations; k++)
			if (!strcmp(alerts[i].annotations[k].name, "remediation"))
				snprintf(f->note, sizeof(f->note), "%s", alerts[i].annotations[k].value);
}

static bool silence_web(void *arg, const struct store_label *labels, size_t n, int64_t now_ms,
			char *id, size_t idsize)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(labels[i].name, "name") && !strcmp(labels[i].value, "web")) {
			snprintf(id, idsize, "s-1");
			return true;
		}
	return false;
}

static const struct store_label loop_labels[] = {
	{ "action", "restart" }, { "alertname", "ContainerRestartLoop" },
	{ "id", "/system.slice/docker-" ID64 ".scope" }, { "name", "api" },
	{ "severity", "warning" },
};
static const struct store_label annots[] = { { "summary", "api loops" } };

static struct alert_msg firing(const struct store_label *labels, size_t n, int64_t now)
{
	return (struct alert_msg){ labels, n, annots, 1, now - MIN, now + 4 * MIN, NULL };
}

static struct alert_remediator *make(struct fake *f, int cap, int64_t min_interval_ms,
				     bool threaded)
{
	struct alert_remediation_config cfg;
	alert_remediation_config_defaults(&cfg);
	cfg.max_restarts_per_hour = cap;
	cfg.min_interval_ms = min_interval_ms;
	struct alert_remediation_ops ops = { fake_restart, fake_record, f };
	struct alert_remediator *r = NULL;
	CHECK(alert_remediator_new(&r, &cfg, &ops, threaded) == 0);
	if (r)
		alert_remediator_set_next(r, next_sink, f);
	return r;
}

static void test_target(void)
{
	char ref[200];
	CHECK(alert_remediation_target(loop_labels, 5, ref, sizeof(ref)) == 0);
	CHECK_STR(ref, ID64);
	const struct store_label docker_v1[] = { { "id", "/docker/" ID64 }, { "name", "x" } };
	CHECK(alert_remediation_target(docker_v1, 2, ref, sizeof(ref)) == 0);
	CHECK_STR(ref, ID64);
	/* No runtime id in the path (a 63-digit run is not one): the name. */
	const struct store_label named[] = { { "id", "/x/" ID64 "0" }, { "name", "db" } };
	CHECK(alert_remediation_target(named, 2, ref, sizeof(ref)) == 0);
	CHECK_STR(ref, "db");
	const struct store_label none[] = { { "alertname", "HostDiskAlmostFull" } };
	CHECK(alert_remediation_target(none, 1, ref, sizeof(ref)) == -ENOENT);
}

static void test_cap_and_interval(void)
{
	struct fake f = { 0 };
	struct alert_remediator *r = make(&f, 2, 5 * MIN, false);
	if (!r)
		return;
	int64_t t = T0;
	struct alert_msg a = firing(loop_labels, 5, t);
	alert_remediate(r, &a, 1, t);
	CHECK_EQ_INT(f.restarts, 1);
	CHECK_STR(f.last_ref, ID64);
	CHECK_EQ_INT(f.records, 1);
	CHECK(strstr(f.last_detail, "restarted for ContainerRestartLoop (1 of at most 2") != NULL);
	CHECK_EQ_INT(f.passed, 1);
	CHECK(strstr(f.note, "restarted for ContainerRestartLoop") != NULL);

	/* Resends within min_interval: nothing. */
	for (int i = 1; i < 5; i++) {
		t = T0 + i * MIN;
		a = firing(loop_labels, 5, t);
		alert_remediate(r, &a, 1, t);
	}
	CHECK_EQ_INT(f.restarts, 1);
	CHECK(strstr(f.note, "waiting remediation.min_interval") != NULL);
	/* At 5 minutes: the second. */
	t = T0 + 5 * MIN;
	a = firing(loop_labels, 5, t);
	alert_remediate(r, &a, 1, t);
	CHECK_EQ_INT(f.restarts, 2);
	/* Then the cap, recorded once however often the alert comes. */
	int records = f.records;
	for (int i = 10; i < 60; i += 5) {
		t = T0 + i * MIN;
		a = firing(loop_labels, 5, t);
		alert_remediate(r, &a, 1, t);
	}
	CHECK_EQ_INT(f.restarts, 2);
	CHECK_EQ_INT(f.records, records + 1);
	CHECK(strstr(f.last_detail, "reached the cap of 2") != NULL);
	CHECK(strstr(f.note, "no restart: 2 restarts in the last hour") != NULL);
	/* An hour after the first, one slot is free again. */
	t = T0 + 60 * MIN;
	a = firing(loop_labels, 5, t);
	alert_remediate(r, &a, 1, t);
	CHECK_EQ_INT(f.restarts, 3);
	t = T0 + 64 * MIN;
	a = firing(loop_labels, 5, t);
	alert_remediate(r, &a, 1, t);
	CHECK_EQ_INT(f.restarts, 3);
	struct alert_remediation_stats st;
	alert_remediator_stats(r, &st);
	CHECK_EQ_INT(st.restarts, 3);
	CHECK_EQ_INT(st.capped, 1);
	alert_remediator_free(r);
}

static void test_who_acts(void)
{
	struct fake f = { 0 };
	struct alert_remediator *r = make(&f, 5, 0, false);
	if (!r)
		return;
	alert_remediator_set_silencer(r, silence_web, NULL);
	int64_t t = T0;
	/* No action label; action something else; resolved: nothing. */
	const struct store_label plain[] = { { "alertname", "X" }, { "name", "api" } };
	const struct store_label other[] = { { "action", "page" }, { "alertname", "X" },
					     { "name", "api" } };
	struct alert_msg a[3] = { firing(plain, 2, t), firing(other, 3, t),
				  firing(loop_labels, 5, t) };
	a[2].ends_at_ms = t; /* resolved now */
	alert_remediate(r, a, 3, t);
	CHECK_EQ_INT(f.restarts, 0);
	CHECK_EQ_INT(f.passed, 0); /* only what it acted on goes on */
	/* Silenced: held back, said so. */
	const struct store_label web[] = { { "action", "restart" }, { "alertname", "X" },
					   { "name", "web" } };
	struct alert_msg w = firing(web, 3, t);
	alert_remediate(r, &w, 1, t);
	CHECK_EQ_INT(f.restarts, 0);
	CHECK(strstr(f.note, "held back by silence s-1") != NULL);
	/* By name when the id has no runtime id. */
	const struct store_label db[] = { { "action", "restart" }, { "alertname", "X" },
					  { "id", "/user.slice" }, { "name", "db" } };
	struct alert_msg d = firing(db, 4, t);
	alert_remediate(r, &d, 1, t);
	CHECK_EQ_INT(f.restarts, 1);
	CHECK_STR(f.last_ref, "db");
	/* A failure is recorded, counts, and the next try waits like a success. */
	f.fail = 1;
	struct alert_msg l = firing(loop_labels, 5, t);
	alert_remediate(r, &l, 1, t);
	CHECK(strstr(f.last_detail, "failed: engine says no") != NULL);
	struct alert_remediation_stats st;
	alert_remediator_stats(r, &st);
	CHECK_EQ_INT(st.failures, 1);
	CHECK_EQ_INT(st.silenced, 1);
	alert_remediator_free(r);

	/* Disabled by config: never. */
	struct alert_remediation_config cfg;
	alert_remediation_config_defaults(&cfg);
	cfg.enabled = false;
	struct alert_remediation_ops ops = { fake_restart, fake_record, &f };
	int before = f.restarts;
	f.fail = 0;
	CHECK(alert_remediator_new(&r, &cfg, &ops, false) == 0);
	alert_remediate(r, &l, 1, t);
	CHECK_EQ_INT(f.restarts, before);
	alert_remediator_free(r);
}

static void test_threaded(void)
{
	struct fake f = { 0 };
	struct alert_remediator *r = make(&f, 2, 0, true);
	if (!r)
		return;
	struct alert_msg a = firing(loop_labels, 5, T0);
	alert_remediate(r, &a, 1, T0);
	CHECK(strstr(f.note, "restart requested (1 of at most 2") != NULL);
	alert_remediator_flush(r);
	CHECK_EQ_INT(f.restarts, 1);
	a = firing(loop_labels, 5, T0 + 1000);
	alert_remediate(r, &a, 1, T0 + 1000);
	alert_remediator_flush(r);
	a = firing(loop_labels, 5, T0 + 2000);
	alert_remediate(r, &a, 1, T0 + 2000);
	alert_remediator_flush(r);
	CHECK_EQ_INT(f.restarts, 2);
	alert_remediator_free(r);
	alert_remediator_free(NULL);
}

static int count_rows(void *arg, const char *key, const void *val, size_t len)
{
	(*(size_t *)arg)++;
	return 0;
}

/* The cap holds across a restart of the agent: the restart times of the
 * last hour come back from the state database; older ones are dropped. */
static void test_cap_survives_restart(void)
{
	char dir[] = "/tmp/remedtestXXXXXX", path[256], err[512];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/state.db", dir);
	struct kv *kv = NULL;
	CHECK(kv_open(&kv, path, err, sizeof(err)) == 0);
	if (!kv)
		return;
	struct fake f = { 0 };
	struct alert_remediator *r = make(&f, 2, 0, false);
	if (!r)
		return;
	alert_remediator_set_store(r, kv, T0);
	struct alert_msg a = firing(loop_labels, 5, T0);
	alert_remediate(r, &a, 1, T0);
	a = firing(loop_labels, 5, T0 + MIN);
	alert_remediate(r, &a, 1, T0 + MIN);
	CHECK_EQ_INT(f.restarts, 2);
	/* another container, restarted long ago */
	CHECK(kv_put(kv, "remediation", "old", "1000,2000", 9) == 0);
	alert_remediator_free(r);

	/* "The agent restarts" 10 minutes later: still capped. */
	r = make(&f, 2, 0, false);
	alert_remediator_set_store(r, kv, T0 + 10 * MIN);
	a = firing(loop_labels, 5, T0 + 10 * MIN);
	alert_remediate(r, &a, 1, T0 + 10 * MIN);
	CHECK_EQ_INT(f.restarts, 2);
	CHECK(strstr(f.last_detail, "reached the cap of 2") != NULL);
	alert_remediator_free(r);
	size_t rows = 0;
	CHECK(kv_each(kv, "remediation", NULL, 0, count_rows, &rows) == 0);
	CHECK_EQ_INT(rows, 1); /* "old" is gone */

	/* An hour after the first restart, one is allowed again. */
	r = make(&f, 2, 0, false);
	alert_remediator_set_store(r, kv, T0 + 60 * MIN);
	a = firing(loop_labels, 5, T0 + 60 * MIN);
	alert_remediate(r, &a, 1, T0 + 60 * MIN);
	CHECK_EQ_INT(f.restarts, 3);
	alert_remediator_free(r);
	kv_close(kv);
	char side[300];
	unlink(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
	rmdir(dir);
}

static void test_config(void)
{
	struct alert_remediation_config c;
	alert_remediation_config_defaults(&c);
	CHECK(c.enabled && c.max_restarts_per_hour == 3 && c.min_interval_ms == 5 * MIN);
	struct ydoc doc;
	char err[512];
	const char *good = "remediation:\n  max_restarts_per_hour: 2\n  min_interval: 10s\n"
			   "  stop_timeout: 3s\n  enabled: true\n";
	CHECK(ydoc_parse(&doc, "cfg.yml", good, strlen(good), err, sizeof(err)) == 0);
	CHECK(alert_remediation_config_load(&c, ynode_get(doc.root, "remediation"), "cfg.yml", err,
					    sizeof(err)) == 0);
	CHECK(c.max_restarts_per_hour == 2 && c.min_interval_ms == 10000 && c.stop_timeout_s == 3);
	ydoc_free(&doc);
	const char *bad[] = {
		"remediation:\n  max_restarts_per_hour: -1\n",
		"remediation:\n  max_restarts_per_hour: 1000\n",
		"remediation:\n  min_interval: soon\n",
		"remediation:\n  enabled: yes please\n",
		"remediation:\n  restarts: 2\n",
		"remediation: 3\n",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		CHECK(ydoc_parse(&doc, "cfg.yml", bad[i], strlen(bad[i]), err, sizeof(err)) == 0);
		err[0] = '\0';
		CHECK(alert_remediation_config_load(&c, ynode_get(doc.root, "remediation"),
						    "cfg.yml", err, sizeof(err)) == -EINVAL);
		CHECK(strncmp(err, "cfg.yml:", 8) == 0 && strstr(err, "remediation."));
		ydoc_free(&doc);
	}
}

int main(void)
{
	RUN(test_target);
	RUN(test_cap_and_interval);
	RUN(test_who_acts);
	RUN(test_threaded);
	RUN(test_cap_survives_restart);
	RUN(test_config);
	TEST_END();
}
