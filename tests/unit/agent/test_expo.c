/*
 * test_expo.c - the /metrics formats beside text 0.0.4: Accept negotiation
 * (the headers Prometheus 2.42 and 3.x send), OpenMetrics 1.0 text, and the
 * delimited protobuf exposition decoded back with protobuf-c. One snapshot
 * with a counter, a gauge and a histogram feeds all three renderers.
 */
#include "agent/agent.h"
#include "agent/expo_metrics.pb-c.h"
#include "tests/unit/test.h"

static void test_negotiate(void)
{
	CHECK_EQ_INT(expo_negotiate(NULL), EXPO_TEXT);
	CHECK_EQ_INT(expo_negotiate(""), EXPO_TEXT);
	CHECK_EQ_INT(expo_negotiate("*/*"), EXPO_TEXT);
	CHECK_EQ_INT(expo_negotiate("text/plain;version=0.0.4"), EXPO_TEXT);
	CHECK_EQ_INT(expo_negotiate("application/json"), EXPO_TEXT);
	/* Prometheus 2.42's default */
	CHECK_EQ_INT(expo_negotiate("application/openmetrics-text;version=1.0.0,application/"
				    "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;"
				    "q=0.5,*/*;q=0.1"), EXPO_OPENMETRICS);
	/* 2.42 with --enable-feature=native-histograms */
	CHECK_EQ_INT(expo_negotiate("application/vnd.google.protobuf;proto=io.prometheus.client."
				    "MetricFamily;encoding=delimited,application/openmetrics-text;"
				    "version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;"
				    "q=0.6,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"), EXPO_PROTOBUF);
	/* Prometheus 3.x (escaping params, text 1.0.0) */
	CHECK_EQ_INT(expo_negotiate("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;"
				    "q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;"
				    "version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;"
				    "q=0.2,*/*;q=0.1"), EXPO_OPENMETRICS);
	/* q decides, not order; q=0 refuses */
	CHECK_EQ_INT(expo_negotiate("application/openmetrics-text; version=1.0.0; q=0.2, "
				    "text/plain; q=0.9"), EXPO_TEXT);
	CHECK_EQ_INT(expo_negotiate("application/openmetrics-text;q=0, text/plain;q=0.1"), EXPO_TEXT);
	/* protobuf needs delimited encoding; an unknown OpenMetrics version is not ours */
	CHECK_EQ_INT(expo_negotiate("application/vnd.google.protobuf;proto=io.prometheus.client."
				    "MetricFamily;encoding=text"), EXPO_TEXT);
	CHECK_EQ_INT(expo_negotiate("application/openmetrics-text;version=2.0.0"), EXPO_TEXT);
	enum expo_format f;
	CHECK_EQ_INT(expo_parse_format("openmetrics", &f), 0);
	CHECK_EQ_INT(f, EXPO_OPENMETRICS);
	CHECK(expo_parse_format("xml", &f) < 0);
}

static const double les[] = { 0.001, 0.01, INFINITY };

static struct snapshot *make_snapshot(void)
{
	struct coll_sink sink;
	sink_open(&sink, 1700000000000);
	struct coll_container c;
	memset(&c, 0, sizeof(c));
	snprintf(c.id, sizeof(c.id), "abc");
	c.cgroup = (char *)"/docker/abc";
	c.prom_labels = (char *)"id=\"/docker/abc\",name=\"we\\\"ird\\\\\",image=\"busybox\"";
	sink_begin_container(&sink, &c, 0);
	sink_emit(&sink, M_CPU_USAGE, "cpu=\"total\"", 12.5);
	for (int op = 0; op < 2; op++) {
		for (size_t k = 0; k < 3; k++) {
			char extra[128];
			snprintf(extra, sizeof(extra), "device=\"sda\",operation=\"%s\",le=\"%s\"",
				 op ? "write" : "read", k == 2 ? "+Inf" : k ? "0.01" : "0.001");
			sink_emit(&sink, M_EBPF_BLOCK_LATENCY_BUCKET, extra, (double)(k + 1 + op * 10));
		}
	}
	sink_emit(&sink, M_EBPF_BLOCK_LATENCY_SUM, "device=\"sda\",operation=\"read\"", 0.5);
	sink_emit(&sink, M_EBPF_BLOCK_LATENCY_COUNT, "device=\"sda\",operation=\"read\"", 3);
	sink_emit(&sink, M_EBPF_BLOCK_LATENCY_SUM, "device=\"sda\",operation=\"write\"", 1.5);
	sink_emit(&sink, M_EBPF_BLOCK_LATENCY_COUNT, "device=\"sda\",operation=\"write\"", 13);
	sink_begin_agent(&sink);
	sink_emit(&sink, M_AGENT_TICKS, NULL, 7);
	sink_emit(&sink, M_AGENT_SERIES, NULL, 42);
	return sink_close(&sink);
}

static void test_openmetrics(void)
{
	struct snapshot *s = make_snapshot();
	struct buf b;
	buf_init(&b, 1 << 20);
	CHECK_EQ_INT(snapshot_render_openmetrics(s, &b), 0);
	const char *t = b.data;
	/* counter family without _total, sample with it */
	CHECK(strstr(t, "# TYPE container_cpu_usage_seconds counter\n# HELP container_cpu_usage_seconds ") != NULL);
	CHECK(strstr(t, "\ncontainer_cpu_usage_seconds_total{id=\"/docker/abc\",name=\"we\\\"ird\\\\\","
			"image=\"busybox\",cpu=\"total\"} 12.5\n") != NULL);
	CHECK(strstr(t, "# TYPE monitor_series gauge\n") != NULL);
	/* one histogram family; each label set's buckets, then its _sum and _count */
	CHECK(strstr(t, "# TYPE container_block_io_duration_seconds histogram\n") != NULL);
	const char *r_inf = strstr(t, "operation=\"read\",le=\"+Inf\"} 3\n");
	const char *r_sum = strstr(t, "container_block_io_duration_seconds_sum{id=\"/docker/abc\","
				       "name=\"we\\\"ird\\\\\",image=\"busybox\",device=\"sda\",operation=\"read\"} 0.5\n");
	const char *r_cnt = strstr(t, "_count{id=\"/docker/abc\",name=\"we\\\"ird\\\\\",image=\"busybox\","
				       "device=\"sda\",operation=\"read\"} 3\n");
	const char *w_first = strstr(t, "operation=\"write\",le=\"0.001\"} 11\n");
	CHECK(r_inf && r_sum && r_cnt && w_first);
	CHECK(r_inf < r_sum && r_sum < r_cnt && r_cnt < w_first);
	CHECK(strstr(t, "# TYPE container_block_io_duration_seconds_sum") == NULL);
	/* ends with # EOF */
	CHECK(b.len > 6 && !strcmp(t + b.len - 6, "# EOF\n"));
	buf_fini(&b);
	snapshot_unref(s);
}

static const Io__Prometheus__Client__LabelPair *label(const Io__Prometheus__Client__Metric *m,
						      const char *name)
{
	for (size_t i = 0; i < m->n_label; i++)
		if (!strcmp(m->label[i]->name, name))
			return m->label[i];
	return NULL;
}

static void test_protobuf(void)
{
	struct snapshot *s = make_snapshot();
	struct buf b;
	buf_init(&b, 1 << 20);
	CHECK_EQ_INT(snapshot_render_protobuf(s, &b), 0);
	/* Walk the varint-delimited stream. */
	const uint8_t *p = (const uint8_t *)b.data, *end = p + b.len;
	int families = 0, seen_hist = 0, seen_counter = 0;
	while (p < end) {
		uint64_t len = 0;
		int shift = 0;
		while (p < end && (*p & 0x80)) {
			len |= (uint64_t)(*p++ & 0x7f) << shift;
			shift += 7;
		}
		CHECK(p < end);
		if (p >= end)
			break;
		len |= (uint64_t)(*p++) << shift;
		CHECK(len <= (uint64_t)(end - p));
		Io__Prometheus__Client__MetricFamily *mf =
			io__prometheus__client__metric_family__unpack(NULL, len, p);
		CHECK(mf != NULL);
		if (!mf)
			break;
		families++;
		if (!strcmp(mf->name, "container_cpu_usage_seconds_total")) {
			seen_counter = 1;
			CHECK_EQ_INT(mf->type, IO__PROMETHEUS__CLIENT__METRIC_TYPE__COUNTER);
			CHECK_EQ_INT(mf->n_metric, 1);
			CHECK_EQ_DBL(mf->metric[0]->counter->value, 12.5);
			/* label values unescaped */
			CHECK_STR(label(mf->metric[0], "name")->value, "we\"ird\\");
			CHECK_STR(label(mf->metric[0], "cpu")->value, "total");
		}
		if (!strcmp(mf->name, "container_block_io_duration_seconds")) {
			seen_hist = 1;
			CHECK_EQ_INT(mf->type, IO__PROMETHEUS__CLIENT__METRIC_TYPE__HISTOGRAM);
			CHECK_EQ_INT(mf->n_metric, 2);
			for (size_t i = 0; i < mf->n_metric && i < 2; i++) {
				const Io__Prometheus__Client__Metric *m = mf->metric[i];
				const Io__Prometheus__Client__Histogram *h = m->histogram;
				CHECK(label(m, "le") == NULL);
				CHECK_STR(label(m, "operation")->value, i ? "write" : "read");
				CHECK_EQ_INT(h->n_bucket, 3);
				CHECK_EQ_INT(h->sample_count, i ? 13 : 3);
				CHECK_EQ_DBL(h->sample_sum, i ? 1.5 : 0.5);
				for (size_t k = 0; k < h->n_bucket && k < 3; k++) {
					CHECK_EQ_INT(h->bucket[k]->cumulative_count, k + 1 + i * 10);
					CHECK(h->bucket[k]->upper_bound == les[k]);
				}
			}
		}
		if (!strcmp(mf->name, "monitor_ticks_total"))
			CHECK_EQ_INT(mf->metric[0]->n_label, 0);
		io__prometheus__client__metric_family__free_unpacked(mf, NULL);
		p += len;
	}
	CHECK_EQ_INT(families, 4);
	CHECK(seen_hist && seen_counter);
	buf_fini(&b);
	snapshot_unref(s);
}

/* OpenMetrics a part at a time (the /metrics stream): the parts joined are
 * the whole render, "# EOF" once at the end, for every part size. */
static void test_openmetrics_in_parts(void)
{
	struct snapshot *s = make_snapshot();
	struct buf whole, joined, part;
	buf_init(&whole, 1 << 20);
	CHECK_EQ_INT(snapshot_render_openmetrics(s, &whole), 0);
	for (size_t want = 1; want <= whole.len + 1; want += 3) {
		struct om_cursor c;
		om_cursor_init(&c);
		buf_init(&joined, 1 << 20);
		buf_init(&part, 1 << 20);
		bool done = false;
		int calls = 0;
		while (!done && calls++ < 1000) {
			buf_reset(&part);
			done = snapshot_render_openmetrics_some(s, &c, &part, want);
			CHECK(done || part.len >= want);
			buf_add(&joined, part.data, part.len);
		}
		CHECK(done);
		CHECK_STR(joined.data, whole.data);
		buf_fini(&part);
		buf_fini(&joined);
	}
	buf_fini(&whole);
	snapshot_unref(s);
}

int main(void)
{
	RUN(test_negotiate);
	RUN(test_openmetrics);
	RUN(test_openmetrics_in_parts);
	RUN(test_protobuf);
	TEST_END();
}
