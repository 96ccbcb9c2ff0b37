/*
 * test_lifecycle.c - lifecycle in the registry and its series (registry.c,
 * lifecycle.c): containers without a cgroup shown from runtime metadata
 * (created, restarting, exited within keep_exited) and the others not;
 * removal on destroy; the id label kept from the cgroup they had; a restart
 * event when the restart count rises; the lifecycle series of each. Runs
 * against a cgroup v2 host root made in a temporary directory.
 */
#include "collectors/collector.h"
#include "../test.h"

#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define ID_LIVE "1111111111111111111111111111111111111111111111111111111111111111"
#define ID_EXITED "2222222222222222222222222222222222222222222222222222222222222222"
#define ID_OLD "3333333333333333333333333333333333333333333333333333333333333333"
#define ID_CREATED "4444444444444444444444444444444444444444444444444444444444444444"
#define ID_LOOP "5555555555555555555555555555555555555555555555555555555555555555"

static char root[64];
static char cgdir[256];

static int run(const char *cmd)
{
	return system(cmd);
}

static bool make_root(void)
{
	char cmd[512];
	snprintf(root, sizeof(root), "/tmp/monitor-test-lifecycle-XXXXXX");
	if (!mkdtemp(root))
		return false;
	snprintf(cgdir, sizeof(cgdir), "%s/sys/fs/cgroup/system.slice/docker-" ID_LIVE ".scope", root);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s && touch %s/sys/fs/cgroup/cgroup.controllers", cgdir, root);
	return run(cmd) == 0;
}

static void post(struct coll_meta_queue *q, const char *id, const char *name, const char *state,
		 int64_t exit_code, bool oom, double finished_at, int64_t restarts)
{
	struct coll_meta m;
	memset(&m, 0, sizeof(m));
	m.name = strdup(name);
	m.image = strdup("img");
	m.state = strdup(state);
	m.has_state = true;
	m.exit_code = exit_code;
	m.oom_killed = oom;
	m.finished_at = finished_at;
	m.restart_count = restarts;
	m.restart_policy = strdup("always");
	coll_meta_post(q, id, &m, false);
}

static const struct snap_container *find(const struct snapshot *s, const char *id)
{
	for (size_t i = 0; i < s->ncontainers; i++)
		if (strcmp(s->containers[i].id, id) == 0)
			return &s->containers[i];
	return NULL;
}

/* The value of family m with extra labels ex of container id; NAN if none. */
static double value(const struct snapshot *s, const char *id, enum metric_id m, const char *ex)
{
	const struct snap_container *c = find(s, id);
	if (!c)
		return NAN;
	for (uint32_t i = 0; i < c->sample_count; i++) {
		const struct snap_sample *sm = &s->samples[c->sample_first + i];
		if (sm->family == (uint32_t)m &&
		    (ex ? sm->extra && strcmp(sm->extra, ex) == 0 : sm->extra == NULL))
			return sm->value;
	}
	return NAN;
}

static struct snapshot *collect(struct coll_registry *r, struct coll_meta_queue *q)
{
	struct coll_sink sink;
	uint64_t errors[COLL_MAX_COLLECTORS] = { 0 };
	coll_registry_apply(r, q);
	if (sink_open(&sink, now_ms()) < 0)
		return NULL;
	coll_registry_collect(r, &sink, errors);
	return sink_close(&sink);
}

static void test_registry_lifecycle(void)
{
	struct cg_layout layout;
	struct coll_event_log log;
	struct coll_meta_queue q;
	if (!make_root() || hostroot_set(root) < 0 || cg_layout_detect(&layout) < 0)
		SKIP("cannot make a cgroup v2 host root under /tmp");
	CHECK_EQ_INT(layout.mode, CG_V2);
	coll_event_log_init(&log, 64);
	coll_meta_queue_init(&q);
	struct coll_ctx ctx = { .layout = &layout, .events = &log, .keep_exited_ms = 3600 * 1000,
				.fs_interval_ms = 0, .fs_walk_budget = 10 };
	struct coll_registry *r = coll_registry_new(&ctx);
	CHECK(r != NULL);
	if (!r)
		return;
	coll_registry_rescan(r);
	double now = (double)now_ms() / 1000;
	post(&q, ID_LIVE, "live", "running", 0, false, 0, 0);
	post(&q, ID_EXITED, "exited", "exited", 137, true, now - 10, 0);
	post(&q, ID_OLD, "old", "exited", 1, false, now - 7200, 0);
	post(&q, ID_CREATED, "created", "created", 0, false, 0, 0);
	post(&q, ID_LOOP, "loop", "restarting", 3, false, now - 1, 4);

	/* The first tick skips the live one (fresh), the second collects it. */
	snapshot_unref(collect(r, &q));
	struct snapshot *s = collect(r, &q);
	CHECK(s != NULL);
	if (!s)
		goto out;
	const struct snap_container *live = find(s, ID_LIVE), *ex = find(s, ID_EXITED);
	CHECK(live && live->has_cgroup);
	CHECK(ex && !ex->has_cgroup);
	CHECK(find(s, ID_OLD) == NULL);        /* finished 2 h ago, keep_exited 1 h */
	CHECK(find(s, ID_CREATED) != NULL);
	CHECK(find(s, ID_LOOP) != NULL);
	if (ex) {
		CHECK_STR(ex->state, "exited");
		CHECK_STR(ex->cgroup, "");       /* never seen with a cgroup */
		CHECK_EQ_INT(ex->exit_code, 137);
		CHECK(ex->oom_killed);
		CHECK_EQ_INT(ex->sample_count, 4); /* state, restarts, oom, exit code; no start time */
	}
	CHECK_EQ_DBL(value(s, ID_EXITED, M_STATE, "state=\"exited\""), 1);
	CHECK_EQ_DBL(value(s, ID_EXITED, M_EXIT_CODE, NULL), 137);
	CHECK_EQ_DBL(value(s, ID_EXITED, M_OOM_KILLED, NULL), 1);
	CHECK_EQ_DBL(value(s, ID_LOOP, M_RESTARTS, NULL), 4);
	CHECK_EQ_DBL(value(s, ID_LOOP, M_EXIT_CODE, NULL), 3);
	CHECK_EQ_DBL(value(s, ID_LIVE, M_STATE, "state=\"running\""), 1);
	CHECK(isnan(value(s, ID_LIVE, M_EXIT_CODE, NULL))); /* running: no exit code */
	CHECK(isnan(value(s, ID_CREATED, M_EXIT_CODE, NULL)));
	snapshot_unref(s);

	/* The restart count rises: one restart event. */
	struct coll_event ev[8];
	size_t n0 = coll_event_read(&log, 0, ev, 8);
	post(&q, ID_LOOP, "loop", "running", 0, false, now - 1, 5);
	snapshot_unref(collect(r, &q));
	size_t n = coll_event_read(&log, 0, ev, 8);
	CHECK_EQ_INT(n, n0 + 1);
	if (n == n0 + 1) {
		CHECK_STR(ev[n - 1].type, "restart");
		CHECK_STR(ev[n - 1].id, ID_LOOP);
		CHECK_STR(ev[n - 1].detail, "restart count 5 (restart policy always)");
	}
	/* Same count again: no event. */
	post(&q, ID_LOOP, "loop", "running", 0, false, now - 1, 5);
	snapshot_unref(collect(r, &q));
	CHECK_EQ_INT(coll_event_read(&log, 0, ev, 8), n);

	/* The live one's cgroup goes and it exits: shown under its old id label. */
	rmdir(cgdir);
	coll_registry_rescan(r);
	post(&q, ID_LIVE, "live", "exited", 0, false, now, 0);
	s = collect(r, &q);
	live = s ? find(s, ID_LIVE) : NULL;
	CHECK(live && !live->has_cgroup);
	if (live) {
		CHECK_STR(live->cgroup, "/system.slice/docker-" ID_LIVE ".scope");
		CHECK(strstr(live->prom_labels, "id=\"/system.slice/docker-" ID_LIVE ".scope\"") != NULL);
		CHECK(live->last_seen > 0);
	}
	snapshot_unref(s);

	/* Destroyed: gone at once. */
	struct coll_meta none = { .restart_count = -1 };
	coll_meta_post(&q, ID_EXITED, &none, true);
	s = collect(r, &q);
	CHECK(s && find(s, ID_EXITED) == NULL);
	snapshot_unref(s);
out:
	coll_registry_free(r);
	coll_meta_queue_fini(&q);
	coll_event_log_fini(&log);
}

/* keep_exited 0: nothing without a cgroup is shown. */
static void test_keep_exited_zero(void)
{
	struct cg_layout layout;
	struct coll_meta_queue q;
	if (hostroot_set(root) < 0 || cg_layout_detect(&layout) < 0)
		SKIP("no host root");
	coll_meta_queue_init(&q);
	struct coll_ctx ctx = { .layout = &layout, .keep_exited_ms = 0 };
	struct coll_registry *r = coll_registry_new(&ctx);
	CHECK(r != NULL);
	if (!r)
		return;
	post(&q, ID_EXITED, "exited", "exited", 1, false, (double)now_ms() / 1000, 0);
	post(&q, ID_CREATED, "created", "created", 0, false, 0, 0);
	struct snapshot *s = collect(r, &q);
	CHECK(s && s->ncontainers == 0);
	snapshot_unref(s);
	coll_registry_free(r);
	coll_meta_queue_fini(&q);
}

/* The series of coll_emit_lifecycle for each kind of metadata. */
static void test_emit(void)
{
	struct coll_sink sink;
	struct coll_container c;
	memset(&c, 0, sizeof(c));
	snprintf(c.id, sizeof(c.id), "x");
	c.cgroup = (char *)"/x";
	c.meta.restart_count = -1;
	CHECK(sink_open(&sink, 1000) == 0);
	sink_begin_container(&sink, &c, 0);
	coll_emit_lifecycle(&sink, &c.meta);   /* nothing known: nothing */
	c.meta.state = (char *)"weird \"state\"\n";
	c.meta.health = (char *)"unhealthy";   /* not running: no health series */
	c.meta.has_state = true;
	c.meta.exit_code = -1;
	coll_emit_lifecycle(&sink, &c.meta);
	c.meta.state = (char *)"running";
	coll_emit_lifecycle(&sink, &c.meta);
	struct snapshot *s = sink_close(&sink);
	CHECK_EQ_INT(s->nsamples, 5);
	CHECK_STR(s->samples[0].extra, "state=\"weird \\\"state\\\"\\n\"");
	CHECK_EQ_INT(s->samples[1].family, M_OOM_KILLED);
	CHECK_EQ_INT(s->samples[2].family, M_STATE);
	CHECK_EQ_INT(s->samples[3].family, M_HEALTH);
	CHECK_STR(s->samples[3].extra, "status=\"unhealthy\"");
	CHECK_EQ_INT(s->samples[4].family, M_OOM_KILLED);
	snapshot_unref(s);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	RUN(test_emit);
	RUN(test_registry_lifecycle);
	RUN(test_keep_exited_zero);
	if (root[0]) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
		if (run(cmd)) {}
	}
	TEST_END();
}
