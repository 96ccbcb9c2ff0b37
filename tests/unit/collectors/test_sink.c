/*
 * test_sink.c - snapshots: containers and samples kept, family order,
 * text exposition (HELP/TYPE once per family, escaping, no timestamps),
 * and reference counting.
 */
#include "collectors/collector.h"
#include "../test.h"

static struct coll_container make(const char *id, const char *labels)
{
	struct coll_container c;
	memset(&c, 0, sizeof(c));
	snprintf(c.id, sizeof(c.id), "%s", id);
	c.cgroup = (char *)"/docker/abc";
	c.prom_labels = (char *)labels;
	c.meta.restart_count = -1;
	return c;
}

static struct snapshot *build(void)
{
	struct coll_sink s;
	CHECK(sink_open(&s, 1000) == 0);
	struct coll_container a = make("a", "id=\"/docker/a\",name=\"web\",image=\"img\"");
	struct coll_container b = make("b", "id=\"/docker/b\",name=\"q\\\"x\",image=\"\"");
	sink_begin_container(&s, &a, 0);
	sink_emit(&s, M_MEM_USAGE, NULL, 100);
	sink_emit(&s, M_CPU_USAGE, "cpu=\"total\"", 1.5);
	sink_begin_container(&s, &b, 0);
	sink_emit(&s, M_CPU_USAGE, "cpu=\"total\"", 2);
	sink_emit(&s, M_MEM_USAGE, NULL, 200);
	sink_begin_agent(&s);
	sink_emit(&s, M_AGENT_TICKS, NULL, 7);
	return sink_close(&s);
}

static void test_snapshot_shape(void)
{
	struct snapshot *snap = build();
	CHECK_EQ_INT(snap->ncontainers, 2);
	CHECK_EQ_INT(snap->nsamples, 5);
	CHECK_EQ_INT(snap->containers[0].sample_count, 2);
	CHECK_EQ_INT(snap->containers[1].sample_first, 2);
	CHECK_STR(snap->containers[0].name, "a"); /* no metadata: named by id */
	/* order: families ascending, emit order kept within a family */
	CHECK_EQ_INT(snap->samples[snap->order[0]].family, M_CPU_USAGE);
	CHECK_EQ_INT(snap->samples[snap->order[0]].container, 0);
	CHECK_EQ_INT(snap->samples[snap->order[1]].container, 1);
	CHECK_EQ_INT(snap->samples[snap->order[4]].family, M_AGENT_TICKS);
	snapshot_unref(snap);
}

static void test_render(void)
{
	struct snapshot *snap = build();
	struct buf b;
	buf_init(&b, 1 << 20);
	CHECK(snapshot_render_text(snap, &b) == 0);
	const char *want =
		"# HELP container_cpu_usage_seconds_total Cumulative CPU time consumed, in seconds "
		"(cpu=\"total\", or one series per CPU with collect.percpu).\n"
		"# TYPE container_cpu_usage_seconds_total counter\n"
		"container_cpu_usage_seconds_total{id=\"/docker/a\",name=\"web\",image=\"img\",cpu=\"total\"} 1.5\n"
		"container_cpu_usage_seconds_total{id=\"/docker/b\",name=\"q\\\"x\",image=\"\",cpu=\"total\"} 2\n"
		"# HELP container_memory_usage_bytes Current memory usage, including all memory regardless of when it was accessed.\n"
		"# TYPE container_memory_usage_bytes gauge\n"
		"container_memory_usage_bytes{id=\"/docker/a\",name=\"web\",image=\"img\"} 100\n"
		"container_memory_usage_bytes{id=\"/docker/b\",name=\"q\\\"x\",image=\"\"} 200\n"
		"# HELP monitor_ticks_total Collection ticks completed.\n"
		"# TYPE monitor_ticks_total counter\n"
		"monitor_ticks_total 7\n";
	CHECK_STR(b.data, want);
	buf_fini(&b);
	snapshot_unref(snap);
}

static void test_render_cap(void)
{
	struct snapshot *snap = build();
	struct buf b;
	buf_init(&b, 64);
	CHECK(snapshot_render_text(snap, &b) < 0);
	buf_fini(&b);
	snapshot_unref(snap);
}

/* The text a part at a time (the /metrics stream): whole lines per call,
 * at least want bytes unless the end came, and the parts joined are the
 * whole render, for every part size from one byte to past the end. */
static void test_render_in_parts(void)
{
	struct snapshot *snap = build();
	struct buf whole, joined, part;
	buf_init(&whole, 1 << 20);
	CHECK(snapshot_render_text(snap, &whole) == 0);
	for (size_t want = 1; want <= whole.len + 1; want++) {
		struct text_cursor c;
		text_cursor_init(&c);
		buf_init(&joined, 1 << 20);
		buf_init(&part, 1 << 20);
		bool done = false;
		int calls = 0;
		while (!done && calls++ < 100) {
			buf_reset(&part);
			done = snapshot_render_text_some(snap, &c, &part, want);
			CHECK(part.len == 0 || part.data[part.len - 1] == '\n');
			CHECK(done || part.len >= want);
			buf_add(&joined, part.data, part.len);
		}
		CHECK(done);
		CHECK_STR(joined.data, whole.data);
		buf_fini(&part);
		buf_fini(&joined);
	}
	buf_fini(&whole);
	snapshot_unref(snap);
}

/* Parts into a buffer that cannot grow (MHD's send buffer): a line that
 * would pass the cap is left out whole and comes first in the next part. */
static void test_render_in_fixed_parts(void)
{
	struct snapshot *snap = build();
	struct buf whole, joined;
	buf_init(&whole, 1 << 20);
	CHECK(snapshot_render_text(snap, &whole) == 0);
	for (size_t cap = 300; cap <= whole.len + 2; cap += 7) {
		char mem[4096];
		struct text_cursor c;
		text_cursor_init(&c);
		buf_init(&joined, 1 << 20);
		bool done = false;
		int calls = 0;
		while (!done && calls++ < 100) {
			struct buf part = { .data = mem, .size = cap, .cap = cap };
			done = snapshot_render_text_some(snap, &c, &part, SIZE_MAX);
			CHECK(part.len > 0 || done);
			CHECK(part.len < cap);
			CHECK(part.len == 0 || part.data[part.len - 1] == '\n');
			CHECK(done || part.overflow);
			buf_add(&joined, part.data, part.len);
		}
		CHECK(done);
		CHECK_STR(joined.data, whole.data);
		buf_fini(&joined);
	}
	buf_fini(&whole);
	snapshot_unref(snap);
}

static void test_refs(void)
{
	struct snapshot *snap = build();
	CHECK(snapshot_ref(snap) == snap);
	snapshot_unref(snap);
	CHECK_EQ_INT(snap->refs, 1);
	snapshot_unref(snap);
	snapshot_unref(NULL);
}

/* A container found between ticks is merged into the published snapshot:
 * both containers and their samples, family order kept, base's time, and
 * the strings stay valid after the caller drops its references. */
static void test_merge(void)
{
	struct snapshot *base = build();
	struct coll_sink s;
	CHECK(sink_open(&s, 2000) == 0);
	struct coll_container c = make("c", "id=\"/docker/c\",name=\"new\",image=\"i\"");
	sink_begin_container(&s, &c, 0);
	sink_emit(&s, M_MEM_USAGE, NULL, 300);
	sink_emit(&s, M_CPU_USAGE, "cpu=\"total\"", 3);
	struct snapshot *add = sink_close(&s);
	struct snapshot *m = snapshot_merge(base, add);
	snapshot_unref(base);
	snapshot_unref(add);
	CHECK(m != NULL);
	if (!m)
		return;
	CHECK_EQ_INT(m->time_ms, 1000);
	CHECK_EQ_INT(m->ncontainers, 3);
	CHECK_EQ_INT(m->nsamples, 7);
	CHECK_STR(m->containers[2].name, "c");
	CHECK_EQ_INT(m->containers[2].sample_first, 5);
	CHECK_EQ_INT(m->containers[2].sample_count, 2);
	CHECK_EQ_INT(m->samples[5].container, 2);
	struct buf b;
	buf_init(&b, 1 << 20);
	CHECK(snapshot_render_text(m, &b) == 0);
	CHECK(strstr(b.data, "container_cpu_usage_seconds_total{id=\"/docker/b\",name=\"q\\\"x\","
			     "image=\"\",cpu=\"total\"} 2\n"
			     "container_cpu_usage_seconds_total{id=\"/docker/c\",name=\"new\","
			     "image=\"i\",cpu=\"total\"} 3\n") != NULL);
	CHECK(strstr(b.data, "container_memory_usage_bytes{id=\"/docker/c\",name=\"new\","
			     "image=\"i\"} 300\n# HELP monitor_ticks_total") != NULL);
	buf_fini(&b);
	snapshot_unref(m);
}

/* A restarting container: the base shows it without a cgroup, the fresh
 * pass has it live again. The merge keeps the live one only (before, both,
 * and /metrics held its series twice with the same labels). */
static void test_merge_supersedes_gone(void)
{
	struct coll_sink s;
	CHECK(sink_open(&s, 1000) == 0);
	struct coll_container a = make("a", "id=\"/docker/a\",name=\"loop\",image=\"img\"");
	struct coll_container b = make("b", "id=\"/docker/b\",name=\"web\",image=\"img\"");
	sink_begin_container(&s, &a, 0);
	sink_mark_gone(&s, 999);
	sink_emit(&s, M_RESTARTS, NULL, 2);
	sink_begin_container(&s, &b, 0);
	sink_emit(&s, M_MEM_USAGE, NULL, 100);
	sink_begin_agent(&s);
	sink_emit(&s, M_AGENT_TICKS, NULL, 7);
	struct snapshot *base = sink_close(&s);
	CHECK(sink_open(&s, 1500) == 0);
	sink_begin_container(&s, &a, 0);
	sink_emit(&s, M_RESTARTS, NULL, 3);
	sink_emit(&s, M_MEM_USAGE, NULL, 50);
	struct snapshot *add = sink_close(&s);
	struct snapshot *m = snapshot_merge(base, add);
	snapshot_unref(base);
	snapshot_unref(add);
	CHECK(m != NULL);
	if (!m)
		return;
	CHECK_EQ_INT(m->ncontainers, 2);
	CHECK_EQ_INT(m->nsamples, 4);
	CHECK_STR(m->containers[0].id, "b");
	CHECK_EQ_INT(m->containers[0].sample_first, 0);
	CHECK_EQ_INT(m->containers[0].sample_count, 1);
	CHECK_STR(m->containers[1].id, "a");
	CHECK(m->containers[1].has_cgroup);
	CHECK_EQ_INT(m->containers[1].sample_first, 2);
	CHECK_EQ_INT(m->samples[2].container, 1);
	struct buf t;
	buf_init(&t, 1 << 20);
	CHECK(snapshot_render_text(m, &t) == 0);
	const char *line = "container_restarts_total{id=\"/docker/a\",name=\"loop\",image=\"img\"}";
	const char *at = strstr(t.data, line);
	CHECK(at != NULL && strstr(at + 1, line) == NULL);
	CHECK(at && strncmp(at + strlen(line), " 3\n", 3) == 0);
	buf_fini(&t);
	snapshot_unref(m);
}

static void test_double_format(void)
{
	struct buf b;
	buf_init(&b, 1024);
	buf_put_double(&b, 0.1);
	buf_putc(&b, ' ');
	buf_put_double(&b, 123456789012.0);
	buf_putc(&b, ' ');
	buf_put_double(&b, -3);
	buf_putc(&b, ' ');
	buf_put_double(&b, 1.0 / 3);
	buf_putc(&b, ' ');
	buf_put_double(&b, NAN);
	buf_putc(&b, ' ');
	buf_put_double(&b, -INFINITY);
	CHECK_STR(b.data, "0.1 123456789012 -3 0.33333333333333331 NaN -Inf");
	buf_fini(&b);
}

/* buf_put_double's general path: %.15g when it reads back, else %.17g. */
static void reference_double(char *out, size_t size, double v)
{
	snprintf(out, size, "%.15g", v);
	if (strtod(out, NULL) != v)
		snprintf(out, size, "%.17g", v);
}

static void check_double_as_reference(double v, int *bad)
{
	char want[40];
	struct buf b;
	reference_double(want, sizeof(want), v);
	buf_init(&b, 64);
	buf_put_double(&b, v);
	if (strcmp(b.data, want) != 0 && (*bad)++ < 5)
		fprintf(stderr, "  %.17g: got %s, want %s\n", v, b.data, want);
	buf_fini(&b);
}

/* The fast path for whole nanoseconds and microseconds (put_nanos) writes
 * the same text as the general one: counters over 1e9 and 1e6 in every
 * decade it takes, its edges, and values it must leave to printf. */
static void test_double_fast_path_same_text(void)
{
	int bad = 0;
	uint64_t x = 88172645463325252ull;
	for (int i = 0; i < 100000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
		uint64_t n = x % (1ull << (i % 53));
		check_double_as_reference((double)n / 1e9, &bad);
		check_double_as_reference((double)n / 1e6, &bad);
		if (n) /* -0 is written "0" by the integer path, as before */
			check_double_as_reference(-(double)n / 1e9, &bad);
		check_double_as_reference((double)(x >> 11) * 0x1p-53 * 1e6, &bad);
	}
	const double edges[] = { 1e-4, 0.0001000000001, 9.999999999e-5, 999999.999999999,
				 999999.9999999999, 1e6, 0.5, 1.000000001, 123456.123456789,
				 -0.25, 3.0000000000000004, 0.30000000000000004 };
	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
		check_double_as_reference(edges[i], &bad);
	CHECK_EQ_INT(bad, 0);
}

int main(void)
{
	RUN(test_snapshot_shape);
	RUN(test_render);
	RUN(test_render_cap);
	RUN(test_render_in_parts);
	RUN(test_render_in_fixed_parts);
	RUN(test_refs);
	RUN(test_merge);
	RUN(test_merge_supersedes_gone);
	RUN(test_double_format);
	RUN(test_double_fast_path_same_text);
	TEST_END();
}
