/* test_rule_pack.c - the default rule pack: the text built into the binary
 * is the file in the tree; it is valid YAML with the rules the README lists,
 * each expression parses as PromQL, each rule has a severity and a summary
 * and none asks for remediation; and the expressions, evaluated over
 * series shaped like the agent's, fire where they should and stay quiet
 * where they should (no limit, no quota, a blip, a container that is
 * running again), with values worked out by hand. The engine's own check
 * (alert_rules_check) accepts the installed file, and the agent's own engine,
 * fed the series promtool gets in tests/fixtures/pack, fires the same alerts
 * with the same annotation text as Prometheus. */
#include "tests/unit/test.h"
#include "alerting/alerting.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_RULES 32
#define NOW_S 100000.0

struct rule {
	const char *alert, *expr, *for_, *severity, *summary, *action;
};
struct pack {
	struct ydoc doc;
	struct rule r[MAX_RULES];
	size_t n;
};

static const char *scalar(const struct ynode *map, const char *key)
{
	const struct ynode *n = map ? ynode_get(map, key) : NULL;
	return n && n->type == YNODE_SCALAR ? n->scalar : NULL;
}

static int load_pack(struct pack *p)
{
	size_t len;
	const char *text = alert_pack_text(&len);
	char err[512];
	memset(p, 0, sizeof(*p));
	if (ydoc_parse(&p->doc, "containers.yml", text, len, err, sizeof(err)) < 0) {
		fprintf(stderr, "  %s\n", err);
		return -1;
	}
	const struct ynode *groups = ynode_get(p->doc.root, "groups");
	for (const struct ynode *g = groups ? groups->child : NULL; g; g = g->next) {
		const struct ynode *rules = ynode_get(g, "rules");
		for (const struct ynode *r = rules ? rules->child : NULL; r; r = r->next) {
			if (p->n == MAX_RULES)
				return -1;
			const struct ynode *labels = ynode_get(r, "labels");
			const struct ynode *annots = ynode_get(r, "annotations");
			p->r[p->n++] = (struct rule){
				scalar(r, "alert"), scalar(r, "expr"), scalar(r, "for"),
				scalar(labels, "severity"), scalar(annots, "summary"),
				scalar(labels, "action"),
			};
		}
	}
	return 0;
}

static const struct rule *find(const struct pack *p, const char *alert)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->r[i].alert && !strcmp(p->r[i].alert, alert))
			return &p->r[i];
	return NULL;
}

static void test_embedded_is_the_file(void)
{
	size_t len;
	const char *text = alert_pack_text(&len);
	static char file[1 << 16];
	ssize_t n = read_file("alerting/rules/containers.yml", file, sizeof(file));
	CHECK(n > 1000);
	CHECK_EQ_INT(len, n);
	CHECK(n > 0 && (size_t)n == len && memcmp(text, file, len) == 0);
	CHECK(text[len] == '\0');
}

static void test_rules_parse(void)
{
	struct pack p;
	CHECK(load_pack(&p) == 0);
	static const char *const expected[] = {
		"ContainerOOMKilled", "ContainerRestartLoop", "ContainerCPUThrottlingHigh",
		"ContainerMemoryNearLimit", "ContainerMemoryExhaustionForecast",
		"ContainerVolumeFillingUp", "ContainerUnhealthy", "ContainerExpectedGone",
		"ContainerErrorLogBurst", "HostDiskFillingUp", "HostDiskAlmostFull",
	};
	CHECK_EQ_INT(p.n, ARRAY_LEN(expected));
	for (size_t i = 0; i < ARRAY_LEN(expected); i++)
		CHECK(find(&p, expected[i]) != NULL);
	for (size_t i = 0; i < p.n; i++) {
		const struct rule *r = &p.r[i];
		CHECK(r->alert && r->expr);
		if (!r->alert || !r->expr)
			continue;
		struct promql_expr *e = NULL;
		char err[512];
		int rc = promql_parse(r->expr, &e, err, sizeof(err));
		if (rc < 0)
			fprintf(stderr, "  %s: %s\n", r->alert, err);
		CHECK(rc == 0);
		CHECK(rc < 0 || promql_expr_type(e) == PROMQL_VECTOR);
		promql_expr_free(e);
		CHECK(r->severity && (!strcmp(r->severity, "warning") ||
				      !strcmp(r->severity, "critical")));
		CHECK(r->summary && *r->summary);
		CHECK(r->action == NULL); /* remediation is the user's choice */
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(p.r[j].alert, r->alert) != 0);
	}
	/* The quiet ones wait: only the OOM kill fires at once. */
	for (size_t i = 0; i < p.n; i++)
		if (strcmp(p.r[i].alert, "ContainerOOMKilled") != 0)
			CHECK(p.r[i].for_ != NULL);
	const struct rule *thr = find(&p, "ContainerCPUThrottlingHigh");
	CHECK(thr && thr->for_ && !strcmp(thr->for_, "15m"));
	ydoc_free(&p.doc);
}

/* ---- evaluating the rules over shaped series -------------------------------- */

/* Adds series sel with points every step_s from t0_s to t1_s (inclusive)
 * of value v0 + slope * (t - t0). */
static void line(struct promql_mem *m, const char *sel, double t0_s, double t1_s, double step_s,
		 double v0, double slope)
{
	ssize_t idx = promql_mem_series(m, sel);
	CHECK(idx >= 0);
	if (idx < 0)
		return;
	for (double t = t0_s; t <= t1_s + 1e-9; t += step_s)
		CHECK(promql_mem_add(m, (size_t)idx, (int64_t)(t * 1000), v0 + slope * (t - t0_s)) ==
		      0);
}

struct hit {
	char name[64];
	double v;
};

/* Evaluates the rule's expression at NOW_S; returns the number of results,
 * their name labels and values in hits. */
static size_t eval(struct promql_mem *m, const struct pack *p, const char *alert,
		   struct hit *hits, size_t max)
{
	const struct rule *r = find(p, alert);
	CHECK(r != NULL);
	if (!r)
		return 0;
	struct promql_expr *e = NULL;
	char err[512];
	if (promql_parse(r->expr, &e, err, sizeof(err)) < 0)
		return 0;
	struct promql_source src;
	promql_mem_source(m, &src);
	struct promql_opts o;
	promql_opts_defaults(&o);
	struct promql_result res;
	struct promql_error perr;
	size_t n = 0;
	if (promql_eval_instant(&src, &o, e, (int64_t)(NOW_S * 1000), &res, &perr) < 0) {
		fprintf(stderr, "  %s: %s\n", alert, perr.msg);
		CHECK(0);
	} else {
		n = res.nseries;
		for (size_t i = 0; i < n && i < max; i++) {
			hits[i].name[0] = '\0';
			for (size_t k = 0; k < res.series[i].nlabels; k++)
				if (!strcmp(res.series[i].labels[k].name, "name"))
					snprintf(hits[i].name, sizeof(hits[i].name), "%s",
						 res.series[i].labels[k].value);
			hits[i].v = res.series[i].points[0].v;
		}
		promql_result_fini(&res);
	}
	promql_expr_free(e);
	return n;
}

#define L(name) "{id=\"/docker/" name "\",name=\"" name "\",image=\"img\"}"
#define T0 (NOW_S - 3600)

static void test_memory_near_limit(void)
{
	struct pack p;
	CHECK(load_pack(&p) == 0);
	struct promql_mem *m = promql_mem_new();
	/* near: 95 of 100 MB; far: 50 of 100 MB; nolimit: 10 GB, no limit series. */
	line(m, "container_memory_working_set_bytes" L("near"), T0, NOW_S, 15, 95e6, 0);
	line(m, "container_spec_memory_limit_bytes" L("near"), T0, NOW_S, 15, 100e6, 0);
	line(m, "container_memory_working_set_bytes" L("far"), T0, NOW_S, 15, 50e6, 0);
	line(m, "container_spec_memory_limit_bytes" L("far"), T0, NOW_S, 15, 100e6, 0);
	line(m, "container_memory_working_set_bytes" L("nolimit"), T0, NOW_S, 15, 10e9, 0);
	struct hit h[8];
	CHECK_EQ_INT(eval(m, &p, "ContainerMemoryNearLimit", h, 8), 1);
	CHECK_STR(h[0].name, "near");
	CHECK_EQ_DBL(h[0].v, 0.95);
	promql_mem_free(m);
	ydoc_free(&p.doc);
}

static void test_throttling(void)
{
	struct pack p;
	CHECK(load_pack(&p) == 0);
	struct promql_mem *m = promql_mem_new();
	/* 10 periods a second (100 ms); hot is throttled in 6 of them, warm in 2. */
	line(m, "container_cpu_cfs_periods_total" L("hot"), T0, NOW_S, 15, 0, 10);
	line(m, "container_cpu_cfs_throttled_periods_total" L("hot"), T0, NOW_S, 15, 0, 6);
	line(m, "container_cpu_cfs_periods_total" L("warm"), T0, NOW_S, 15, 0, 10);
	line(m, "container_cpu_cfs_throttled_periods_total" L("warm"), T0, NOW_S, 15, 0, 2);
	/* No quota: the agent exports no CFS series at all (as cAdvisor). */
	line(m, "container_cpu_usage_seconds_total" L("free"), T0, NOW_S, 15, 0, 4);
	struct hit h[8];
	CHECK_EQ_INT(eval(m, &p, "ContainerCPUThrottlingHigh", h, 8), 1);
	CHECK_STR(h[0].name, "hot");
	CHECK_EQ_DBL(h[0].v, 0.6);
	promql_mem_free(m);
	ydoc_free(&p.doc);
}

static void test_oom(void)
{
	struct pack p;
	CHECK(load_pack(&p) == 0);
	struct promql_mem *m = promql_mem_new();
	/* down: OOM-killed, exited. */
	line(m, "container_oom_killed" L("down"), T0, NOW_S, 15, 1, 0);
	line(m, "container_state{id=\"/docker/down\",name=\"down\",image=\"img\",state=\"exited\"}",
	     T0, NOW_S, 15, 1, 0);
	/* back: OOM-killed an hour ago, restarted then, running since: quiet
	 * (Docker keeps OOMKilled true while it runs again). */
	line(m, "container_oom_killed" L("back"), T0, NOW_S, 15, 1, 0);
	line(m, "container_state{id=\"/docker/back\",name=\"back\",image=\"img\",state=\"running\"}",
	     T0, NOW_S, 15, 1, 0);
	line(m, "container_restarts_total" L("back"), T0, NOW_S, 15, 1, 0);
	/* loop: OOM-killed and restarted by its policy 2 minutes ago. */
	line(m, "container_oom_killed" L("loop"), T0, NOW_S, 15, 1, 0);
	line(m, "container_state{id=\"/docker/loop\",name=\"loop\",image=\"img\",state=\"running\"}",
	     T0, NOW_S, 15, 1, 0);
	line(m, "container_restarts_total" L("loop"), T0, NOW_S - 120, 15, 0, 0);
	line(m, "container_restarts_total" L("loop"), NOW_S - 105, NOW_S, 15, 1, 0);
	/* child: a process other than the main one was killed 3 minutes ago. */
	line(m, "container_oom_killed" L("child"), T0, NOW_S, 15, 0, 0);
	line(m, "container_memory_events_oom_kill_total" L("child"), T0, NOW_S - 180, 15, 0, 0);
	line(m, "container_memory_events_oom_kill_total" L("child"), NOW_S - 165, NOW_S, 15, 1, 0);
	/* old: one kill 30 minutes ago: resolved by now. */
	line(m, "container_memory_events_oom_kill_total" L("old"), T0, NOW_S - 1800, 15, 0, 0);
	line(m, "container_memory_events_oom_kill_total" L("old"), NOW_S - 1785, NOW_S, 15, 1, 0);
	struct hit h[8];
	size_t n = eval(m, &p, "ContainerOOMKilled", h, 8);
	CHECK_EQ_INT(n, 3);
	if (n == 3) {
		CHECK_STR(h[0].name, "child");
		CHECK_STR(h[1].name, "down");
		CHECK_STR(h[2].name, "loop");
	}
	promql_mem_free(m);
	ydoc_free(&p.doc);
}

static void test_restart_loop(void)
{
	struct pack p;
	CHECK(load_pack(&p) == 0);
	struct promql_mem *m = promql_mem_new();
	/* 4 restarts in the last 10 minutes; one restart 20 minutes ago. */
	line(m, "container_restarts_total" L("loop"), T0, NOW_S - 600, 15, 0, 0);
	line(m, "container_restarts_total" L("loop"), NOW_S - 585, NOW_S, 15, 4, 0);
	line(m, "container_restarts_total" L("once"), T0, NOW_S - 1200, 15, 0, 0);
	line(m, "container_restarts_total" L("once"), NOW_S - 1185, NOW_S, 15, 1, 0);
	struct hit h[8];
	CHECK_EQ_INT(eval(m, &p, "ContainerRestartLoop", h, 8), 1);
	CHECK_STR(h[0].name, "loop");
	CHECK(h[0].v >= 4);
	promql_mem_free(m);
	ydoc_free(&p.doc);
}

static void test_memory_forecast(void)
{
	struct pack p;
	CHECK(load_pack(&p) == 0);
	struct promql_mem *m = promql_mem_new();
	/* leak: at 60 MB of 100 growing 2 kB/s: full in 20000 s (5.6 h): quiet;
	 * fast: at 60 MB growing 5 kB/s: full in 8000 s (2.2 h): fires;
	 * young: the same but started 10 minutes ago: quiet;
	 * nolimit: growing, no limit: quiet. */
	const char *names[] = { "leak", "fast", "young", "nolimit" };
	const double slope[] = { 2000, 5000, 5000, 5000 };
	for (size_t i = 0; i < 4; i++) {
		char sel[160];
		snprintf(sel, sizeof(sel), "container_memory_working_set_bytes{id=\"/docker/%s\","
			 "name=\"%s\",image=\"img\"}", names[i], names[i]);
		line(m, sel, T0, NOW_S, 15, 60e6 - slope[i] * 3600, slope[i]);
		if (i < 3) {
			snprintf(sel, sizeof(sel), "container_spec_memory_limit_bytes{id=\"/docker/%s\","
				 "name=\"%s\",image=\"img\"}", names[i], names[i]);
			line(m, sel, T0, NOW_S, 15, 100e6, 0);
		}
		snprintf(sel, sizeof(sel), "container_start_time_seconds{id=\"/docker/%s\","
			 "name=\"%s\",image=\"img\"}", names[i], names[i]);
		line(m, sel, T0, NOW_S, 15, i == 2 ? NOW_S - 600 : T0 - 86400, 0);
	}
	struct hit h[8];
	CHECK_EQ_INT(eval(m, &p, "ContainerMemoryExhaustionForecast", h, 8), 1);
	CHECK_STR(h[0].name, "fast");
	CHECK(fabs(h[0].v - 8000) < 1);

	/* The capacity forecast's own estimate wins where it exists. */
	line(m, "container_forecast_exhaustion_seconds{id=\"/docker/leak\",name=\"leak\","
	     "image=\"img\",resource=\"memory\"}", NOW_S - 600, NOW_S, 15, 3000, 0);
	size_t n = eval(m, &p, "ContainerMemoryExhaustionForecast", h, 8);
	CHECK_EQ_INT(n, 2);
	if (n == 2) {
		CHECK_STR(h[1].name, "leak");
		CHECK_EQ_DBL(h[1].v, 3000);
	}
	promql_mem_free(m);
	ydoc_free(&p.doc);
}

static void test_expected_gone(void)
{
	struct pack p;
	CHECK(load_pack(&p) == 0);
	struct promql_mem *m = promql_mem_new();
#define E(name) "{id=\"/docker/" name "\",name=\"" name "\",image=\"img\"," \
		"container_label_monitor_expected=\"true\"}"
	/* gone: seen until 10 minutes ago (removed); exited: stopped, still
	 * listed; up: running; other: not expected, gone. */
	line(m, "container_last_seen" E("gone"), T0, NOW_S - 600, 15, 0, 1);
	line(m, "container_last_seen" E("exited"), T0, NOW_S, 15, NOW_S - 300, 0);
	line(m, "container_state{id=\"/docker/exited\",name=\"exited\",image=\"img\","
	     "container_label_monitor_expected=\"true\",state=\"exited\"}", T0, NOW_S, 15, 1, 0);
	line(m, "container_last_seen" E("up"), T0, NOW_S, 15, T0, 1);
	line(m, "container_state{id=\"/docker/up\",name=\"up\",image=\"img\","
	     "container_label_monitor_expected=\"true\",state=\"running\"}", T0, NOW_S, 15, 1, 0);
	line(m, "container_last_seen" L("other"), T0, NOW_S - 600, 15, 0, 1);
	struct hit h[8];
	size_t n = eval(m, &p, "ContainerExpectedGone", h, 8);
	CHECK_EQ_INT(n, 2);
	if (n == 2) {
		CHECK_STR(h[0].name, "exited");
		CHECK_STR(h[1].name, "gone");
	}
	promql_mem_free(m);
	ydoc_free(&p.doc);
}

static void test_host_disk(void)
{
	struct pack p;
	CHECK(load_pack(&p) == 0);
	struct promql_mem *m = promql_mem_new();
	/* /: 85 of 100 GB, +0.5 GB/h: full in 30 h: not within 24 h.
	 * /data: 85 of 100 GB, +1 GB/h: full in 15 h: fires.
	 * /big: 50 of 100 GB, +10 GB/h: fast but half empty: quiet. */
	const char *mp[] = { "/", "/data", "/big" };
	const double used[] = { 85e9, 85e9, 50e9 }, per_h[] = { 0.5e9, 1e9, 10e9 };
	for (size_t i = 0; i < 3; i++) {
		char sel[160];
		snprintf(sel, sizeof(sel), "machine_fs_usage_bytes{device=\"sd%c\",mountpoint=\"%s\"}",
			 (char)('a' + i), mp[i]);
		line(m, sel, NOW_S - 6 * 3600, NOW_S, 60, used[i] - per_h[i] * 6, per_h[i] / 3600);
		snprintf(sel, sizeof(sel), "machine_fs_limit_bytes{device=\"sd%c\",mountpoint=\"%s\"}",
			 (char)('a' + i), mp[i]);
		line(m, sel, NOW_S - 6 * 3600, NOW_S, 60, 100e9, 0);
	}
	struct hit h[8];
	CHECK_EQ_INT(eval(m, &p, "HostDiskFillingUp", h, 8), 1);
	CHECK_EQ_DBL(h[0].v, 0.85);
	CHECK_EQ_INT(eval(m, &p, "HostDiskAlmostFull", h, 8), 0);
	promql_mem_free(m);
	ydoc_free(&p.doc);
}

static void test_unhealthy_and_logs(void)
{
	struct pack p;
	CHECK(load_pack(&p) == 0);
	struct promql_mem *m = promql_mem_new();
	line(m, "container_health_status{id=\"/docker/sick\",name=\"sick\",image=\"img\","
	     "status=\"unhealthy\"}", T0, NOW_S, 15, 1, 0);
	line(m, "container_health_status{id=\"/docker/fine\",name=\"fine\",image=\"img\","
	     "status=\"healthy\"}", T0, NOW_S, 15, 1, 0);
	/* 1 error line a second (300 in 5 m) against 1 in 10 s (30). */
	line(m, "container_log_lines_total{id=\"/docker/noisy\",name=\"noisy\",image=\"img\","
	     "level=\"error\"}", T0, NOW_S, 15, 0, 1);
	line(m, "container_log_lines_total{id=\"/docker/calm\",name=\"calm\",image=\"img\","
	     "level=\"error\"}", T0, NOW_S, 15, 0, 0.1);
	line(m, "container_log_lines_total{id=\"/docker/calm\",name=\"calm\",image=\"img\","
	     "level=\"info\"}", T0, NOW_S, 15, 0, 100);
	struct hit h[8];
	CHECK_EQ_INT(eval(m, &p, "ContainerUnhealthy", h, 8), 1);
	CHECK_STR(h[0].name, "sick");
	CHECK_EQ_INT(eval(m, &p, "ContainerErrorLogBurst", h, 8), 1);
	CHECK_STR(h[0].name, "noisy");
	CHECK_EQ_DBL(h[0].v, 300);
	promql_mem_free(m);
	ydoc_free(&p.doc);
}

/* ---- the pack in the agent's own rules engine ------------------------------------------ */

/* What the engine handed to its sink: the first firing copy of each alert
 * (by its name label), with description and start. */
struct fired {
	int n;
	char alert[32][64], name[32][64], description[32][300];
	int64_t starts[32];
};

static void collect_fired(void *arg, const struct alert_msg *m, size_t n, int64_t now)
{
	struct fired *f = arg;
	for (size_t i = 0; i < n && f->n < 32; i++) {
		if (m[i].ends_at_ms <= now)
			continue;
		const char *alert = "", *name = "", *desc = "";
		for (size_t j = 0; j < m[i].nlabels; j++) {
			if (!strcmp(m[i].labels[j].name, "alertname"))
				alert = m[i].labels[j].value;
			if (!strcmp(m[i].labels[j].name, "name"))
				name = m[i].labels[j].value;
		}
		for (size_t j = 0; j < m[i].nannotations; j++)
			if (!strcmp(m[i].annotations[j].name, "description"))
				desc = m[i].annotations[j].value;
		bool seen = false;
		for (int k = 0; k < f->n; k++)
			seen |= !strcmp(f->alert[k], alert) && !strcmp(f->name[k], name);
		if (seen)
			continue;
		snprintf(f->alert[f->n], sizeof(f->alert[0]), "%s", alert);
		snprintf(f->name[f->n], sizeof(f->name[0]), "%s", name);
		snprintf(f->description[f->n], sizeof(f->description[0]), "%s", desc);
		f->starts[f->n] = m[i].starts_at_ms;
		f->n++;
	}
}

static const char *fired_desc(const struct fired *f, const char *alert, const char *name)
{
	for (int k = 0; k < f->n; k++)
		if (!strcmp(f->alert[k], alert) && !strcmp(f->name[k], name))
			return f->description[k];
	return NULL;
}

/*
 * The same series as tests/fixtures/pack/containers_test.yml gives
 * promtool, evaluated every minute for 25 minutes by the agent's engine:
 * the same alerts fire, with the text Prometheus wrote, and the quiet
 * containers stay quiet.
 */
static void test_in_the_engine(void)
{
	char dir[] = "/tmp/packengXXXXXX", path[256], err[4096];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/default_rules.yml", dir);
	CHECK(alert_pack_install(path, err, sizeof(err)) == 0);
	struct promql_mem *m = promql_mem_new();
	const double t0 = 1800000000, end = t0 + 25 * 60;
	line(m, "container_memory_working_set_bytes" L("near"), t0, end, 60, 95e6, 0);
	line(m, "container_spec_memory_limit_bytes" L("near"), t0, end, 60, 100e6, 0);
	line(m, "container_memory_working_set_bytes" L("nolimit"), t0, end, 60, 10e9, 0);
	line(m, "container_cpu_cfs_periods_total" L("hot"), t0, end, 60, 0, 10);
	line(m, "container_cpu_cfs_throttled_periods_total" L("hot"), t0, end, 60, 0, 6);
	line(m, "container_cpu_cfs_periods_total" L("warm"), t0, end, 60, 0, 10);
	line(m, "container_cpu_cfs_throttled_periods_total" L("warm"), t0, end, 60, 0, 2);
	line(m, "container_oom_killed" L("down"), t0, end, 60, 1, 0);
	line(m, "container_state{id=\"/docker/down\",name=\"down\",image=\"img\",state=\"exited\"}",
	     t0, end, 60, 1, 0);
	line(m, "container_restarts_total" L("loop"), t0, t0 + 9 * 60, 60, 0, 0);
	line(m, "container_restarts_total" L("loop"), t0 + 10 * 60, t0 + 13 * 60, 60, 1, 1.0 / 60);
	line(m, "container_restarts_total" L("loop"), t0 + 14 * 60, end, 60, 4, 0);
	struct promql_source src;
	promql_mem_source(m, &src);
	struct alert_rules_config cfg;
	alert_rules_config_defaults(&cfg);
	snprintf(cfg.files[0], sizeof(cfg.files[0]), "%s", path);
	cfg.nfiles = 1;
	cfg.eval_interval_ms = 60000;
	struct alert_engine_opts o = { .cfg = &cfg, .src = &src };
	struct alert_engine *e = NULL;
	struct fired f = { 0 };
	CHECK(alert_engine_new(&e, &o) == 0);
	if (!e)
		goto out;
	CHECK(alert_engine_add_sink(e, collect_fired, &f) == 0);
	int rc = alert_engine_load(e, err, sizeof(err));
	if (rc)
		fprintf(stderr, "  load: %s\n", err);
	CHECK(rc == 0);
	for (double t = t0; t <= end; t += 60)
		alert_engine_eval(e, (int64_t)(t * 1000));
	CHECK_STR(fired_desc(&f, "ContainerMemoryNearLimit", "near"),
		  "near (img) uses 95% of its memory limit; the OOM killer acts at 100 %.");
	CHECK_STR(fired_desc(&f, "ContainerCPUThrottlingHigh", "hot"),
		  "60% of the CPU periods of hot (img) were throttled over 5 minutes: its CPU "
		  "quota is too small for its load.");
	CHECK_STR(fired_desc(&f, "ContainerOOMKilled", "down"),
		  "The kernel's OOM killer ended a process of down (img): it reached its memory "
		  "limit. Raise the limit or find what grows.");
	CHECK_STR(fired_desc(&f, "ContainerRestartLoop", "loop"),
		  "loop (img) restarted 4 times in the last 15 minutes. Its logs (monitor logs "
		  "loop) say why it exits.");
	CHECK(fired_desc(&f, "ContainerMemoryNearLimit", "nolimit") == NULL);
	CHECK(fired_desc(&f, "ContainerCPUThrottlingHigh", "warm") == NULL);
	/* Each waited its for: (near 15m, hot 15m from its first rate, loop 5m). */
	for (int k = 0; k < f.n; k++)
		if (!strcmp(f.alert[k], "ContainerOOMKilled"))
			CHECK_EQ_INT(f.starts[k], (int64_t)(t0 * 1000));
	alert_engine_free(e);
out:
	promql_mem_free(m);
	unlink(path);
	rmdir(dir);
}

static void test_install(void)
{
	char dir[] = "/tmp/packtestXXXXXX", path[256], err[512];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/default_rules.yml", dir);
	CHECK(alert_pack_install(path, err, sizeof(err)) == 0);
	static char back[1 << 16];
	size_t len;
	const char *text = alert_pack_text(&len);
	ssize_t n = read_file(path, back, sizeof(back));
	CHECK(n >= 0 && (size_t)n == len && memcmp(back, text, len) == 0);
	/* The engine's own checker accepts it (promtool's rules). */
	const char *paths[] = { path };
	struct buf out;
	buf_init(&out, 1 << 16);
	int rules = alert_rules_check(paths, 1, &out);
	if (rules < 0)
		fprintf(stderr, "  %s\n", out.len ? out.data : "");
	CHECK_EQ_INT(rules, 11);
	buf_fini(&out);
	/* A changed file is put back. */
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs("groups: []\n", f);
		fclose(f);
	}
	CHECK(alert_pack_install(path, err, sizeof(err)) == 0);
	n = read_file(path, back, sizeof(back));
	CHECK(n >= 0 && (size_t)n == len);
	/* Nowhere to write: an error naming the file. */
	char bad[300];
	snprintf(bad, sizeof(bad), "%s/missing/x.yml", dir);
	err[0] = '\0';
	CHECK(alert_pack_install(bad, err, sizeof(err)) == -ENOENT);
	CHECK(strstr(err, "missing/x.yml") != NULL);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	RUN(test_embedded_is_the_file);
	RUN(test_rules_parse);
	RUN(test_memory_near_limit);
	RUN(test_throttling);
	RUN(test_oom);
	RUN(test_restart_loop);
	RUN(test_memory_forecast);
	RUN(test_expected_gone);
	RUN(test_host_disk);
	RUN(test_unhealthy_and_logs);
	RUN(test_install);
	RUN(test_in_the_engine);
	TEST_END();
}
