/*
 * test_top.c - monitor top's model without a terminal: rows from two ticks
 * (CPU %, rates, quota share, throttling), sorting with smoothing, the
 * filter language, grouping and totals, which columns survive a narrow
 * screen, alerts on rows, the settings file, units, sparklines, the log
 * ring, history on a grid, and which environment names count as secrets.
 */
#include "agent/agent.h"
#include "agent/top.h"
#include "tests/unit/test.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

/* One container of a tick: JSON text with the values that matter here. */
static void ctr(struct buf *b, const char *id, const char *name, const char *state,
		const char *project, double cpu_s, double mem, double limit, double rx, double wr,
		double quota, double periods, double throttled)
{
	buf_printf(b, "%s{\"id\":\"%s\",\"name\":\"%s\",\"image\":\"img/%s\",\"state\":\"%s\","
		   "\"cgroup\":\"/docker/%s\",\"compose_project\":\"%s\",\"start_time\":50,"
		   "\"restart_count\":1,\"exit_code\":0,\"oom_killed\":false,\"health\":null,"
		   "\"labels\":{\"tier\":\"%s\"},\"values\":{"
		   "\"container_cpu_usage_seconds_total\":%g,"
		   "\"container_memory_working_set_bytes\":%g,"
		   "\"container_network_receive_bytes_total\":%g,"
		   "\"container_network_transmit_bytes_total\":0,"
		   "\"container_fs_writes_bytes_total\":%g,\"container_pids\":3",
		   b->len > 1 ? "," : "", id, name, name, state, id, project,
		   !strcmp(name, "web") ? "front" : "back", cpu_s, mem, rx, wr);
	if (limit > 0)
		buf_printf(b, ",\"container_spec_memory_limit_bytes\":%g", limit);
	if (quota > 0)
		buf_printf(b, ",\"container_spec_cpu_quota\":%g,\"container_spec_cpu_period\":100000,"
			   "\"container_cpu_cfs_periods_total\":%g,"
			   "\"container_cpu_cfs_throttled_periods_total\":%g", quota, periods, throttled);
	buf_puts(b, "}}");
}

/* A tick at time t with host CPU seconds host_s (4 CPUs, 8 GiB). */
static void list_from(struct cli_list *l, const char *containers, double t, double host_s,
		      double idle_s)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	buf_printf(&b, "{\"status\":\"success\",\"time\":%g,\"machine\":{\"machine_cpu_cores\":4,"
		   "\"machine_cpu_seconds_total\":%g,\"machine_memory_bytes\":8589934592,"
		   "\"machine_cpu_idle_seconds_total\":%g,\"machine_memory_available_bytes\":"
		   "4294967296,\"machine_load1\":1.5,\"machine_load5\":1,\"machine_load15\":0.5},"
		   "\"data\":[%s]}", t, host_s, idle_s, containers);
	memset(l, 0, sizeof(*l));
	size_t off;
	if (json_parse(&l->doc, b.data, b.len, &off) < 0) {
		fprintf(stderr, "bad test JSON at %zu: %s\n", off, b.data);
		abort();
	}
	l->data = json_get(l->doc.root, "data");
	l->time = t;
	l->have_machine = true;
	l->cpu_seconds = host_s;
	l->cpus = 4;
	l->memory_bytes = 8589934592.0;
	buf_fini(&b);
}

/* Two ticks 2 s apart: web busy (1.5 s CPU of 8 host-seconds), db idle. */
static void two_ticks(struct top_model *m)
{
	struct buf a, b;
	struct cli_list l;
	buf_init(&a, 1 << 20);
	buf_init(&b, 1 << 20);
	buf_putc(&a, ' ');
	buf_putc(&b, ' ');
	ctr(&a, "aaaa1111", "web", "running", "shop", 10.0, 100e6, 0, 1000, 0, 50000, 100, 10);
	ctr(&a, "bbbb2222", "db", "running", "shop", 5.0, 600e6, 1073741824, 0, 4000, 0, 0, 0);
	ctr(&a, "cccc3333", "old", "exited", "", 1.0, 0, 0, 0, 0, 0, 0, 0);
	ctr(&b, "aaaa1111", "web", "running", "shop", 11.5, 120e6, 0, 5000, 0, 50000, 120, 15);
	ctr(&b, "bbbb2222", "db", "running", "shop", 5.1, 610e6, 1073741824, 0, 8000, 0, 0, 0);
	ctr(&b, "cccc3333", "old", "exited", "", 1.0, 0, 0, 0, 0, 0, 0, 0);
	list_from(&l, a.data, 100, 1000, 900);
	CHECK(top_model_update(m, &l) == 1);
	list_from(&l, b.data, 102, 1008, 906);
	CHECK(top_model_update(m, &l) == 1);
	buf_fini(&a);
	buf_fini(&b);
}

static void test_rows(void)
{
	struct top_model m;
	top_model_init(&m);
	two_ticks(&m);
	CHECK_EQ_INT(m.nrows, 3);
	const struct top_row *web = top_model_find(&m, "aaaa1111");
	const struct top_row *db = top_model_find(&m, "bbbb2222");
	CHECK(web && db);
	if (!web || !db)
		goto out;
	/* docker stats: 1.5 / 8 * 4 * 100 */
	CHECK_EQ_DBL(web->u.cpu_percent, 75.0);
	CHECK_EQ_DBL(web->net_rx_rate, 2000.0);       /* 4000 B over 2 s */
	CHECK_EQ_DBL(db->io_write_rate, 2000.0);
	CHECK_EQ_DBL(web->cpu_limit_cores, 0.5);
	CHECK_EQ_DBL(web->cpu_of_limit, 150.0);       /* 75 % of a core is 150 % of half */
	CHECK_EQ_DBL(db->cpu_of_limit, db->u.cpu_percent / 4);   /* no quota: of the host */
	CHECK_EQ_DBL(web->throttle_pct, 25.0);        /* 5 of 20 periods */
	CHECK(!web->mem_limited && db->mem_limited);
	CHECK_EQ_DBL(web->uptime_s, 52.0);
	CHECK_EQ_DBL(web->restarts, 1);
	/* the host: 8 host-seconds, 6 idle: 25 % busy; 4 of 8 GiB used */
	CHECK(m.host.have_cpu);
	CHECK_EQ_DBL(m.host.cpu_percent, 25.0);
	CHECK_EQ_DBL(m.host.mem_used_bytes, 4294967296.0);
	CHECK_EQ_DBL(m.host.load[0], 1.5);
	CHECK_EQ_INT(m.host.running, 2);
	CHECK_EQ_INT(m.host.stopped, 1);
	/* a list of the same tick changes nothing */
	struct cli_list same;
	list_from(&same, "", 102, 1008, 906);
	CHECK(top_model_update(&m, &same) == 0);
	CHECK_EQ_INT(m.nrows, 3);
out:
	top_model_fini(&m);
}

static const char *line_name(const struct top_model *m, size_t i)
{
	if (i >= m->nlines)
		return "(none)";
	return m->lines[i].kind == TOP_LINE_ROW ? m->rows[m->lines[i].index].name
						: m->groups[m->lines[i].index].key;
}

static void test_sort(void)
{
	struct top_model m;
	top_model_init(&m);
	two_ticks(&m);
	/* running only by default; CPU first */
	CHECK_EQ_INT(m.nlines, 2);
	CHECK_STR(line_name(&m, 0), "web");
	m.sort = TOP_COL_MEM;
	top_model_arrange(&m);
	CHECK_STR(line_name(&m, 0), "db");
	m.sort = TOP_COL_NAME;
	top_model_arrange(&m);
	CHECK_STR(line_name(&m, 0), "db");
	m.reverse = true;
	top_model_arrange(&m);
	CHECK_STR(line_name(&m, 0), "web");
	m.reverse = false;
	m.show_all = true;
	top_model_arrange(&m);
	CHECK_EQ_INT(m.nlines, 3);
	CHECK_STR(line_name(&m, 2), "web");
	/* keys as ctop/htop */
	CHECK_EQ_INT(top_sort_key('c'), TOP_COL_CPU);
	CHECK_EQ_INT(top_sort_key('m'), TOP_COL_MEM);
	CHECK_EQ_INT(top_sort_key('n'), TOP_COL_NAME);
	CHECK_EQ_INT(top_sort_key('i'), TOP_COL_IO);
	CHECK_EQ_INT(top_sort_key('t'), TOP_COL_NET);
	CHECK_EQ_INT(top_sort_key('u'), TOP_COL_UPTIME);
	CHECK_EQ_INT(top_sort_key('r'), TOP_COL_RESTARTS);
	CHECK_EQ_INT(top_sort_key('z'), -1);
	/* < and > walk the shown columns, skipping hidden ones */
	m.sort = TOP_COL_CPU;
	top_model_sort_step(&m, 1);
	CHECK_EQ_INT(m.sort, TOP_COL_CPU_LIMIT);
	m.col_on[TOP_COL_MEM] = false;
	top_model_sort_step(&m, 1);
	CHECK_EQ_INT(m.sort, TOP_COL_NET);
	top_model_sort_step(&m, -1);
	CHECK_EQ_INT(m.sort, TOP_COL_CPU_LIMIT);
	top_model_fini(&m);
}

/* A container busy for one tick does not overtake one that is steadily
 * busier: the sort uses the smoothed value, the shown number the raw one. */
static void test_smoothing(void)
{
	CHECK_EQ_DBL(top_smooth(-1, 42, 1, 5), 42);
	CHECK_EQ_DBL(top_smooth(10, 20, 0, 5), 20);
	double s = top_smooth(10, 20, 5, 5);
	CHECK(fabs(s - (10 + (1 - exp(-1)) * 10)) < 1e-9);

	struct top_model m;
	top_model_init(&m);
	double steady = 0, spiky = 0, host = 0;
	for (int t = 0; t < 12; t++) {
		struct buf b;
		struct cli_list l;
		buf_init(&b, 1 << 16);
		buf_putc(&b, ' ');
		double spike = t == 11 ? 3.0 : 0.1;     /* spike in the last tick only */
		steady += 1.0;
		spiky += spike;
		host += 4.0;
		ctr(&b, "s1", "steady", "running", "", steady, 1e6, 0, 0, 0, 0, 0, 0);
		ctr(&b, "s2", "spiky", "running", "", spiky, 1e6, 0, 0, 0, 0, 0, 0);
		list_from(&l, b.data, 100 + t, host, 0);
		CHECK(top_model_update(&m, &l) == 1);
		buf_fini(&b);
	}
	const struct top_row *sp = top_model_find(&m, "s2");
	CHECK(sp && sp->u.cpu_percent > 250);          /* raw: 3 s in 1 s of 4 CPUs */
	CHECK_STR(line_name(&m, 0), "steady");
	top_model_fini(&m);
}

static bool matches(const struct top_model *m, const char *filter, const char *name)
{
	struct top_filter f;
	char err[256];
	if (top_filter_parse(&f, filter, err, sizeof(err)) < 0) {
		fprintf(stderr, "  filter %s: %s\n", filter, err);
		return false;
	}
	bool r = false;
	for (size_t i = 0; i < m->nrows; i++)
		if (!strcmp(m->rows[i].name, name))
			r = top_filter_match(&f, &m->rows[i]);
	top_filter_fini(&f);
	return r;
}

static void test_filter(void)
{
	struct top_model m;
	top_model_init(&m);
	two_ticks(&m);
	CHECK(matches(&m, "", "web"));
	CHECK(matches(&m, "we", "web"));
	CHECK(matches(&m, "WE", "web"));               /* case-insensitive */
	CHECK(!matches(&m, "we", "db"));
	CHECK(matches(&m, "aaaa", "web"));              /* id */
	CHECK(matches(&m, "img/db", "db"));             /* image */
	CHECK(matches(&m, "~^w.b$", "web"));
	CHECK(!matches(&m, "~^w.b$", "db"));
	CHECK(matches(&m, "!we", "db"));
	CHECK(!matches(&m, "!we", "web"));
	CHECK(matches(&m, "tier=front", "web"));        /* a label */
	CHECK(!matches(&m, "tier=front", "db"));
	CHECK(matches(&m, "tier!=front", "db"));
	CHECK(matches(&m, "tier=~^b", "db"));
	CHECK(matches(&m, "project=shop state=running", "db"));
	CHECK(!matches(&m, "project=shop state=exited", "db"));
	CHECK(matches(&m, "name=old", "old"));
	CHECK(!matches(&m, "nolabel=x", "web"));        /* absent label: no match */
	CHECK(matches(&m, "!nolabel=x", "web"));

	struct top_filter f;
	char err[256] = "";
	CHECK(top_filter_parse(&f, "~(", err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "regex") != NULL);
	CHECK(top_filter_parse(&f, "!", err, sizeof(err)) == -EINVAL);
	CHECK(top_filter_parse(&f, "a b c d e f g h i", err, sizeof(err)) == -EINVAL);
	char big[400];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(top_filter_parse(&f, big, err, sizeof(err)) == -EINVAL);
	/* the model's filter hides rows and the totals follow */
	CHECK(top_filter_parse(&m.filter, "db", err, sizeof(err)) == 0);
	top_model_arrange(&m);
	CHECK_EQ_INT(m.nlines, 1);
	CHECK_EQ_INT(m.totals.count, 1);
	CHECK_STR(line_name(&m, 0), "db");
	top_model_fini(&m);
}

static void test_groups_totals(void)
{
	struct top_model m;
	top_model_init(&m);
	two_ticks(&m);
	m.show_all = true;
	m.group = true;
	top_model_arrange(&m);
	/* shop (web, db), then the ungrouped (old) last */
	CHECK_EQ_INT(m.ngroups, 2);
	CHECK_EQ_INT(m.nlines, 5);
	CHECK(m.lines[0].kind == TOP_LINE_GROUP);
	CHECK_STR(m.groups[m.lines[0].index].key, "shop");
	CHECK_EQ_INT(m.groups[m.lines[0].index].sum.count, 2);
	CHECK_EQ_DBL(m.groups[m.lines[0].index].sum.mem_bytes, 730e6);
	CHECK(m.lines[3].kind == TOP_LINE_GROUP);
	CHECK_STR(m.groups[m.lines[3].index].key, "");
	CHECK_EQ_INT(m.totals.count, 3);
	CHECK_EQ_DBL(m.totals.pids, 9);
	CHECK_EQ_DBL(m.totals.net_rx_rate, 2000);
	top_model_fini(&m);
}

static int display_width(const char *s, size_t n)
{
	int w = 0;
	for (size_t i = 0; i < n; i++)
		w += ((unsigned char)s[i] & 0xC0) != 0x80;
	return w;
}

static bool has_col(const struct top_layout *l, enum top_col c)
{
	for (size_t i = 0; i < l->ncols; i++)
		if (l->cols[i] == c)
			return true;
	return false;
}

static void test_layout(void)
{
	struct top_model m;
	top_model_init(&m);
	two_ticks(&m);
	struct top_layout l;
	top_layout_compute(&m, 0, &l);        /* no limit: every enabled column, bars */
	CHECK(l.bars);
	CHECK(has_col(&l, TOP_COL_UPTIME) && has_col(&l, TOP_COL_CPU_LIMIT));
	CHECK(!has_col(&l, TOP_COL_IMAGE));    /* optional, off */
	for (int c = 0; c < TOP_COL__COUNT; c++)
		m.col_on[c] = true;
	top_layout_compute(&m, 80, &l);
	CHECK(l.total <= 80);
	/* the documented order: optional ones, CPU/L, UPTIME go before the bars */
	CHECK(!has_col(&l, TOP_COL_IMAGE) && !has_col(&l, TOP_COL_ID) &&
	      !has_col(&l, TOP_COL_CPU_LIMIT) && !has_col(&l, TOP_COL_UPTIME));
	CHECK(has_col(&l, TOP_COL_NET) && has_col(&l, TOP_COL_PIDS) && has_col(&l, TOP_COL_ALERT));
	/* very narrow: the core columns stay */
	top_layout_compute(&m, 40, &l);
	CHECK(has_col(&l, TOP_COL_STATUS) && has_col(&l, TOP_COL_NAME) && has_col(&l, TOP_COL_CPU) &&
	      has_col(&l, TOP_COL_MEM) && has_col(&l, TOP_COL_ALERT));
	CHECK(!has_col(&l, TOP_COL_NET) && !l.bars);

	/* a whole frame at 80 columns: no line is wider */
	top_model_fini(&m);
	top_model_init(&m);
	two_ticks(&m);
	m.show_all = true;
	top_model_arrange(&m);
	struct buf out;
	buf_init(&out, 1 << 20);
	CHECK(top_render_text(&m, "http://127.0.0.1:9838", 80, true, &out) == 0);
	int widest = 0, lines = 0;
	for (const char *p = out.data; p && *p;) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		int w = display_width(p, n);
		if (lines >= 2 && w > widest)   /* the header lines may be cut by the view */
			widest = w;
		lines++;
		p = e ? e + 1 : p + n;
	}
	CHECK(widest <= 80);
	CHECK_EQ_INT(lines, 2 + 1 + 3 + 1);
	CHECK(strstr(out.data, "web") && strstr(out.data, "TOTAL (3)"));
	CHECK(strstr(out.data, "75.0") != NULL);      /* web's CPU % */
	buf_fini(&out);
	top_model_fini(&m);
}

static void test_alerts(void)
{
	struct top_model m;
	top_model_init(&m);
	two_ticks(&m);
	const char *text =
		"{\"data\":{\"alerts\":["
		"{\"labels\":{\"alertname\":\"CPUThrottlingHigh\",\"id\":\"/docker/aaaa1111\","
		"\"name\":\"web\",\"severity\":\"warning\"},\"annotations\":{\"summary\":\"hot\"},"
		"\"state\":\"firing\",\"activeAt\":\"2026-11-29T18:00:00Z\",\"silenced\":false},"
		"{\"labels\":{\"alertname\":\"MemoryNearLimit\",\"name\":\"db\"},\"annotations\":{},"
		"\"state\":\"firing\",\"silenced\":true,\"silencedBy\":[\"x\"]},"
		"{\"labels\":{\"alertname\":\"Later\",\"name\":\"db\"},\"state\":\"inactive\"}]}}";
	struct json_doc doc;
	CHECK(json_parse(&doc, text, strlen(text), NULL) == 0);
	const struct json *list = json_path(doc.root, "data.alerts");
	struct top_alert *a = calloc(3, sizeof(*a));
	size_t n = 0;
	for (const struct json *e = list->child; e; e = e->next)
		if (top_parse_alert(e, &a[n]))
			n++;
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_INT(a[0].state, TOP_ALERT_FIRING);
	CHECK_EQ_DBL(a[0].active_at, 1795975200.0);
	CHECK_STR(a[0].summary, "hot");
	CHECK_EQ_INT(a[1].state, TOP_ALERT_SILENCED);
	top_model_set_alerts(&m, a, n, true);
	CHECK_EQ_INT(top_model_find(&m, "aaaa1111")->alert, TOP_ALERT_FIRING);
	CHECK_EQ_INT(top_model_find(&m, "bbbb2222")->alert, TOP_ALERT_SILENCED);
	CHECK_EQ_INT(top_model_find(&m, "cccc3333")->alert, TOP_ALERT_NONE);
	CHECK_EQ_INT(m.host.firing, 1);
	CHECK_EQ_INT(m.host.silenced, 1);
	json_doc_free(&doc);
	top_model_fini(&m);
}

static void test_config(void)
{
	char dir[] = "/tmp/test_top_XXXXXX", path[256], err[256];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/sub/top.conf", dir);
	struct top_model m;
	top_model_init(&m);
	m.col_on[TOP_COL_UPTIME] = false;
	m.col_on[TOP_COL_IMAGE] = true;
	m.sort = TOP_COL_MEM;
	m.reverse = true;
	m.group = true;
	m.warn_pct = 60;
	CHECK(top_config_save(&m, 2000, path) == 0);
	struct top_model k;
	top_model_init(&k);
	int64_t iv = 0;
	CHECK(top_config_load(&k, &iv, path, err, sizeof(err)) == 0);
	CHECK(!k.col_on[TOP_COL_UPTIME] && k.col_on[TOP_COL_IMAGE] && k.col_on[TOP_COL_CPU]);
	CHECK_EQ_INT(k.sort, TOP_COL_MEM);
	CHECK(k.reverse && k.group && !k.show_all);
	CHECK_EQ_DBL(k.warn_pct, 60);
	CHECK_EQ_DBL(k.crit_pct, 90);
	CHECK_EQ_INT(iv, 2000);
	/* errors name the line */
	FILE *f = fopen(path, "w");
	fputs("# comment\nsort = cpu\ncolour = red\n", f);
	fclose(f);
	CHECK(top_config_load(&k, &iv, path, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, ":3:") && strstr(err, "colour"));
	f = fopen(path, "w");
	fputs("columns = cpu,nosuch\n", f);
	fclose(f);
	CHECK(top_config_load(&k, &iv, path, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "nosuch") != NULL);
	f = fopen(path, "w");
	fputs("warn = 95\n", f);
	fclose(f);
	CHECK(top_config_load(&k, &iv, path, err, sizeof(err)) == -EINVAL);  /* above crit */
	unlink(path);
	CHECK(top_config_load(&k, &iv, path, err, sizeof(err)) == -ENOENT);
	snprintf(path, sizeof(path), "%s/sub", dir);
	rmdir(path);
	rmdir(dir);
	top_model_fini(&m);
	top_model_fini(&k);
}

static void test_text_helpers(void)
{
	char s[128];
	top_fmt_units(s, sizeof(s), 0, false);
	CHECK_STR(s, "0");
	top_fmt_units(s, sizeof(s), 999, false);
	CHECK_STR(s, "999");
	top_fmt_units(s, sizeof(s), 1234, false);
	CHECK_STR(s, "1.2k");
	top_fmt_units(s, sizeof(s), 34567, false);
	CHECK_STR(s, "35k");
	top_fmt_units(s, sizeof(s), 1048576, true);
	CHECK_STR(s, "1.0M");
	top_fmt_units(s, sizeof(s), 512.0 * 1048576, true);
	CHECK_STR(s, "512M");
	top_fmt_units(s, sizeof(s), 2048, true);
	CHECK_STR(s, "2.0K");
	top_fmt_units(s, sizeof(s), -1, false);
	CHECK_STR(s, "-");
	top_bar(50, 12, s, sizeof(s));
	CHECK_STR(s, "[|||||     ]");
	top_bar(0.1, 6, s, sizeof(s));
	CHECK_STR(s, "[|   ]");
	top_bar(500, 6, s, sizeof(s));
	CHECK_STR(s, "[||||]");
	top_ellipsize("abcdefghijklmnop", 9, false, s, sizeof(s));
	CHECK_STR(s, "abcd~mnop");
	top_ellipsize("short", 9, true, s, sizeof(s));
	CHECK_STR(s, "short");
	top_ellipsize("abcdefghijklmnop", 9, true, s, sizeof(s));
	CHECK_STR(s, "abcd\u2026mnop");
	double v[] = { 0, 1, 2, 3, 4, 5, 6, 7, NAN };
	top_sparkline(v, 9, 7, 10, false, s, sizeof(s));
	CHECK_STR(s, "  .:-=+*# ");
	top_sparkline(v, 2, 0, 2, true, s, sizeof(s));
	CHECK_STR(s, "\u2581\u2588");
}

static void test_history_fill(void)
{
	const char *text = "[{\"metric\":{},\"values\":[[100,\"1\"],[110,\"3.5\"],[135,\"9\"],[500,\"7\"]]}]";
	struct json_doc doc;
	CHECK(json_parse(&doc, text, strlen(text), NULL) == 0);
	double v[5];
	top_history_fill(doc.root, 100, 10, v, 5);
	CHECK_EQ_DBL(v[0], 1);
	CHECK_EQ_DBL(v[1], 3.5);
	CHECK(isnan(v[2]));
	CHECK_EQ_DBL(v[4], 9);       /* 135 rounds to the 140 slot */
	json_doc_free(&doc);
}

static void test_logs_ring(void)
{
	struct top_logs l;
	memset(&l, 0, sizeof(l));
	top_logs_reset(&l, "x");
	for (int i = 0; i < TOP_LOG_LINES + 10; i++) {
		char t[32];
		snprintf(t, sizeof(t), "line %d", i);
		top_logs_push(&l, 1000 + i / 4, "stdout", "info", t);
	}
	CHECK_EQ_INT(l.n, TOP_LOG_LINES);
	CHECK_STR(top_logs_line(&l, 0)->text, "line 10");
	char last[32];
	snprintf(last, sizeof(last), "line %d", TOP_LOG_LINES + 9);
	CHECK_STR(top_logs_line(&l, l.n - 1)->text, last);
	CHECK_EQ_DBL(l.cursor, 1000 + (TOP_LOG_LINES + 9) / 4);
	CHECK_EQ_INT(l.cursor_dups, (TOP_LOG_LINES + 9) % 4 + 1);
	top_logs_fini(&l);
	top_logs_fini(&l);
}

static void test_secret_names(void)
{
	CHECK(api_env_secret_name("DB_PASSWORD"));
	CHECK(api_env_secret_name("aws_secret_access_key"));
	CHECK(api_env_secret_name("GITHUB_TOKEN"));
	CHECK(api_env_secret_name("STRIPE_API_KEY"));
	CHECK(api_env_secret_name("MYSQL_ROOT_PWD"));
	CHECK(api_env_secret_name("SENTRY_DSN"));
	CHECK(!api_env_secret_name("PATH"));
	CHECK(!api_env_secret_name("PWD"));
	CHECK(!api_env_secret_name("HOME"));
	CHECK(!api_env_secret_name("KEYBOARD_LAYOUT"));
}

int main(void)
{
	RUN(test_rows);
	RUN(test_sort);
	RUN(test_smoothing);
	RUN(test_filter);
	RUN(test_groups_totals);
	RUN(test_layout);
	RUN(test_alerts);
	RUN(test_config);
	RUN(test_text_helpers);
	RUN(test_history_fill);
	RUN(test_logs_ring);
	RUN(test_secret_names);
	TEST_END();
}
