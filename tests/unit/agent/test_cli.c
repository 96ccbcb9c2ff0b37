/*
 * test_cli.c - the clients' arithmetic and words without an agent: docker
 * stats' columns from two ticks (CPU %, the memory limit capped at the
 * host's), go-units formatting as docker prints it, docker ps' durations,
 * id resolution (exact id, name, prefix, ambiguity), the table and the
 * JSON writer, and the common flags.
 */
#include "agent/cli.h"
#include "../test.h"

#include <stdlib.h>

static int list_from(struct cli_list *l, const char *text)
{
	memset(l, 0, sizeof(*l));
	if (json_parse(&l->doc, text, strlen(text), NULL) < 0)
		return -1;
	l->data = json_get(l->doc.root, "data");
	const struct json *t = json_get(l->doc.root, "time");
	l->time = t ? t->number : 0;
	const struct json *m = json_get(l->doc.root, "machine");
	if (m) {
		l->have_machine = true;
		l->cpu_seconds = json_get(m, "machine_cpu_seconds_total")->number;
		l->cpus = json_get(m, "machine_cpu_cores")->number;
		l->memory_bytes = json_get(m, "machine_memory_bytes")->number;
	}
	return 0;
}

#define TICK(t, hostcpu, cpu, limit)                                                    \
	"{\"status\":\"success\",\"time\":" #t ",\"machine\":{\"machine_cpu_cores\":2,"  \
	"\"machine_memory_bytes\":1073741824,\"machine_cpu_seconds_total\":" #hostcpu "}," \
	"\"data\":[{\"id\":\"abc\",\"name\":\"web\",\"values\":{"                        \
	"\"container_cpu_usage_seconds_total\":" #cpu ","                                \
	"\"container_memory_working_set_bytes\":268435456,"                              \
	"\"container_spec_memory_limit_bytes\":" #limit ",\"container_pids\":4,"          \
	"\"container_fs_writes_bytes_total\":5000}}]}"

static void test_usage(void)
{
	struct cli_list a, b;
	struct cli_usage u;
	/* 0.5 s of CPU while the host's 2 CPUs ran 2 s: 50% as docker. */
	CHECK(list_from(&a, TICK(100, 1000, 10, 0)) == 0);
	CHECK(list_from(&b, TICK(101, 1002, 10.5, 0)) == 0);
	cli_usage_compute(&a, a.data->child, &b, b.data->child, &u);
	CHECK(u.have_cpu && u.have_mem && u.have_pids && !u.have_net);
	CHECK_EQ_DBL(u.cpu_percent, 50.0);
	/* unlimited: the host's memory is the limit */
	CHECK_EQ_DBL(u.mem_limit_bytes, 1073741824.0);
	CHECK_EQ_DBL(u.mem_percent, 25.0);
	CHECK_EQ_DBL(u.pids, 4);
	CHECK_EQ_DBL(u.blk_write_bytes, 5000);
	CHECK_EQ_DBL(u.blk_read_bytes, 0);
	/* no previous sample: no CPU % */
	cli_usage_compute(&a, NULL, &b, b.data->child, &u);
	CHECK(!u.have_cpu);
	cli_list_free(&a);
	cli_list_free(&b);

	/* a limit below the host's counts; CPU that went nowhere is 0 */
	CHECK(list_from(&a, TICK(100, 1000, 10, 536870912)) == 0);
	CHECK(list_from(&b, TICK(101, 1002, 10, 536870912)) == 0);
	cli_usage_compute(&a, a.data->child, &b, b.data->child, &u);
	CHECK(u.have_cpu);
	CHECK_EQ_DBL(u.cpu_percent, 0);
	CHECK_EQ_DBL(u.mem_limit_bytes, 536870912.0);
	CHECK_EQ_DBL(u.mem_percent, 50.0);
	cli_list_free(&a);
	cli_list_free(&b);

	/* a limit above the host's memory is capped at it, as the daemon does */
	CHECK(list_from(&a, TICK(100, 1000, 10, 9223372036854771712)) == 0);
	cli_usage_compute(&a, NULL, &a, a.data->child, &u);
	CHECK_EQ_DBL(u.mem_limit_bytes, 1073741824.0);
	cli_list_free(&a);

	/* an agent without machine_*: wall time between ticks */
	CHECK(list_from(&a, "{\"time\":10,\"data\":[{\"id\":\"x\",\"values\":"
			    "{\"container_cpu_usage_seconds_total\":1}}]}") == 0);
	CHECK(list_from(&b, "{\"time\":12,\"data\":[{\"id\":\"x\",\"values\":"
			    "{\"container_cpu_usage_seconds_total\":2.5}}]}") == 0);
	cli_usage_compute(&a, a.data->child, &b, b.data->child, &u);
	CHECK_EQ_DBL(u.cpu_percent, 75.0);
	CHECK(!u.have_mem);
	cli_list_free(&a);
	cli_list_free(&b);
}

static void test_units(void)
{
	char s[32];
	/* go-units BytesSize (%.4g, binary) as docker stats prints MEM USAGE */
	static const struct { double v; const char *want; } bin[] = {
		{ 0, "0B" }, { 1023, "1023B" }, { 1024, "1KiB" }, { 368640, "360KiB" },
		{ 134217728, "128MiB" }, { 25276514304.0, "23.54GiB" }, { 1536, "1.5KiB" },
	};
	for (size_t i = 0; i < ARRAY_LEN(bin); i++) {
		cli_bytes_binary(s, sizeof(s), bin[i].v);
		CHECK_STR(s, bin[i].want);
	}
	/* HumanSizeWithPrecision(v, 3) (decimal) as NET I/O and BLOCK I/O */
	static const struct { double v; const char *want; } dec[] = {
		{ 0, "0B" }, { 656, "656B" }, { 1000, "1kB" }, { 1234, "1.23kB" },
		{ 10485760, "10.5MB" }, { 2.5e9, "2.5GB" },
	};
	for (size_t i = 0; i < ARRAY_LEN(dec); i++) {
		cli_bytes_decimal(s, sizeof(s), dec[i].v);
		CHECK_STR(s, dec[i].want);
	}
}

static void test_durations(void)
{
	char s[64];
	static const struct { double v; const char *want; } human[] = {
		{ 0.4, "Less than a second" }, { 1, "1 second" }, { 59, "59 seconds" },
		{ 60, "About a minute" }, { 119, "About a minute" }, { 120, "2 minutes" },
		{ 3599, "59 minutes" }, { 3600, "About an hour" }, { 5400, "2 hours" },
		{ 47 * 3600, "47 hours" }, { 48 * 3600, "2 days" }, { 15 * 86400, "2 weeks" },
		{ 90 * 86400, "3 months" }, { 800 * 86400, "2 years" },
	};
	for (size_t i = 0; i < ARRAY_LEN(human); i++) {
		cli_human_duration(s, sizeof(s), human[i].v);
		CHECK_STR(s, human[i].want);
	}
	cli_short_duration(s, sizeof(s), 45.9);
	CHECK_STR(s, "45s");
	cli_short_duration(s, sizeof(s), 725);
	CHECK_STR(s, "12m05s");
	cli_short_duration(s, sizeof(s), 3 * 3600 + 4 * 60 + 59);
	CHECK_STR(s, "3h04m");
	cli_short_duration(s, sizeof(s), 2 * 86400 + 3 * 3600);
	CHECK_STR(s, "2d03h");
	cli_short_duration(s, sizeof(s), -5);
	CHECK_STR(s, "0s");
}

static void test_resolve(void)
{
	struct cli c;
	struct cli_list l;
	cli_init(&c, "test");
	CHECK(list_from(&l, "{\"data\":["
			    "{\"id\":\"ab12\",\"name\":\"web\"},"
			    "{\"id\":\"ab34\",\"name\":\"db\"},"
			    "{\"id\":\"cd56\",\"name\":\"ab\"},"
			    "{\"id\":\"web\",\"name\":\"other\"}]}") == 0);
	const struct json *r;
	r = cli_resolve(&c, &l, "ab12");
	CHECK(r && !strcmp(cli_str(r, "name"), "web"));
	r = cli_resolve(&c, &l, "ab3");          /* unique prefix */
	CHECK(r && !strcmp(cli_str(r, "id"), "ab34"));
	r = cli_resolve(&c, &l, "ab");           /* a name beats an ambiguous prefix */
	CHECK(r && !strcmp(cli_str(r, "id"), "cd56"));
	r = cli_resolve(&c, &l, "web");          /* an exact id beats a name */
	CHECK(r && !strcmp(cli_str(r, "name"), "other"));
	r = cli_resolve(&c, &l, "db");
	CHECK(r && !strcmp(cli_str(r, "id"), "ab34"));
	fprintf(stderr, "  (two error messages expected below)\n");
	CHECK(cli_resolve(&c, &l, "a") == NULL); /* ambiguous: ab12, ab34 */
	CHECK(cli_resolve(&c, &l, "zz") == NULL);
	CHECK(cli_resolve(&c, &l, "") == NULL);
	CHECK(cli_find_id(&l, "cd56") != NULL);
	CHECK(cli_find_id(&l, "cd5") == NULL);
	cli_list_free(&l);
}

static void test_table_and_json(void)
{
	struct cli_table t;
	cli_table_init(&t, 3);
	const char *r1[] = { "CONTAINER ID", "NAME", "CPU %" };
	const char *r2[] = { "abc", "web-\xc3\xa9t\xc3\xa9", "1.00%" };  /* UTF-8: 7 columns */
	CHECK(cli_table_add(&t, r1) == 0);
	CHECK(cli_table_add(&t, r2) == 0);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	cli_table_print(&t, f);
	fclose(f);
	CHECK_STR(text, "CONTAINER ID   NAME      CPU %\n"
			"abc            web-\xc3\xa9t\xc3\xa9   1.00%\n");
	free(text);
	cli_table_fini(&t);

	struct json_doc d;
	const char *in = "{\"a\":[1,2.5,\"x\\\"y\"],\"b\":{},\"c\":[],\"d\":null,\"e\":true}";
	CHECK(json_parse(&d, in, strlen(in), NULL) == 0);
	struct buf b;
	buf_init(&b, 1 << 16);
	cli_json_write(&b, d.root, -1, 0);
	CHECK_STR(b.data, in);
	buf_reset(&b);
	cli_json_write(&b, d.root, 2, 0);
	CHECK_STR(b.data, "{\n  \"a\": [\n    1,\n    2.5,\n    \"x\\\"y\"\n  ],\n  \"b\": {},\n"
			  "  \"c\": [],\n  \"d\": null,\n  \"e\": true\n}");
	buf_fini(&b);
	json_doc_free(&d);
}

static void test_flags(void)
{
	struct cli c;
	unsetenv("MONITOR_URL");
	unsetenv("MONITOR_TOKEN");
	cli_init(&c, "test");
	CHECK_STR(c.url, "http://127.0.0.1:9838");
	CHECK_STR(c.token, "");
	CHECK(cli_common_opt(&c, CLI_OPT_URL, "example.org:1234/") == 0);
	CHECK_STR(c.url, "http://example.org:1234");
	CHECK(cli_common_opt(&c, CLI_OPT_URL, "https://h:1//") == 0);
	CHECK_STR(c.url, "https://h:1");
	CHECK(cli_common_opt(&c, CLI_OPT_TIMEOUT, "250ms") == 0);
	CHECK_EQ_INT(c.timeout_ms, 250);
	CHECK(cli_common_opt(&c, CLI_OPT_TIMEOUT, "soon") < 0);
	setenv("MONITOR_URL", "10.0.0.1:9838", 1);
	setenv("MONITOR_TOKEN", "t0k", 1);
	cli_init(&c, "test");
	CHECK_STR(c.url, "http://10.0.0.1:9838");
	CHECK_STR(c.token, "t0k");
	unsetenv("MONITOR_URL");
	unsetenv("MONITOR_TOKEN");

	char p[64];
	cli_path_escape(p, sizeof(p), "web/1 x%");
	CHECK_STR(p, "web%2F1%20x%25");
}

int main(void)
{
	RUN(test_usage);
	RUN(test_units);
	RUN(test_durations);
	RUN(test_resolve);
	RUN(test_table_and_json);
	RUN(test_flags);
	TEST_END();
}
