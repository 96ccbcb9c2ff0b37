/*
 * test_config_ebpf.c - the ebpf: section of the config: defaults, both
 * forms of a probe switch, block's tracepoints, map sizes, and errors that
 * name the file, line and key.
 */
#include "agent/agent.h"
#include "../test.h"
#include "config_text.h"

#include <unistd.h>

static void test_defaults(void)
{
	struct agent_config c;
	config_defaults(&c);
	CHECK(c.ebpf.enabled);
	for (int p = 0; p < EBPF__PROBES; p++)
		CHECK(c.ebpf.probe[p]);
	CHECK_EQ_INT(c.ebpf.attach, EBPF_ATTACH_AUTO);
	CHECK_EQ_INT(c.ebpf.max_cgroups, 10240);
	CHECK_STR(c.ebpf.block_start, "block_rq_issue");
	config_fini(&c);
}

static void test_values(void)
{
	struct agent_config c;
	char err[512] = "";
	int rc = load_text(&c,
			   "ebpf:\n"
			   "  attach: tracepoint\n"
			   "  max_cgroups: 2048\n"
			   "  max_sockets: 4096\n"
			   "  max_inflight_io: 512\n"
			   "  net: false\n"
			   "  tcp:\n    enabled: false\n"
			   "  block:\n    start: block_rq_insert\n    done: block_io_done\n",
			   err, sizeof(err));
	if (rc)
		fprintf(stderr, "  %s\n", err);
	CHECK_EQ_INT(rc, 0);
	CHECK(c.ebpf.enabled);
	CHECK_EQ_INT(c.ebpf.attach, EBPF_ATTACH_CLASSIC);
	CHECK_EQ_INT(c.ebpf.max_cgroups, 2048);
	CHECK_EQ_INT(c.ebpf.max_sockets, 4096);
	CHECK_EQ_INT(c.ebpf.max_inflight_io, 512);
	CHECK(!c.ebpf.probe[EBPF_NET]);
	CHECK(!c.ebpf.probe[EBPF_TCP]);
	CHECK(c.ebpf.probe[EBPF_BLOCK]);
	CHECK(c.ebpf.probe[EBPF_OOM]);
	CHECK_STR(c.ebpf.block_start, "block_rq_insert");
	CHECK_STR(c.ebpf.block_done, "block_io_done");
	config_fini(&c);

	rc = load_text(&c, "ebpf:\n  enabled: false\n  attach: raw_tracepoint\n", err, sizeof(err));
	CHECK_EQ_INT(rc, 0);
	CHECK(!c.ebpf.enabled);
	CHECK_EQ_INT(c.ebpf.attach, EBPF_ATTACH_RAW);
	config_fini(&c);
}

static void expect_error(const char *text, const char *want)
{
	struct agent_config c;
	char err[512] = "";
	int rc = load_text(&c, text, err, sizeof(err));
	CHECK(rc < 0);
	if (!strstr(err, want)) {
		fprintf(stderr, "  error \"%s\" lacks \"%s\"\n", err, want);
		t_cur_failed = 1;
	}
	config_fini(&c);
}

static void test_errors(void)
{
	expect_error("ebpf:\n  attach: kprobe\n", ":2:11: ebpf.attach: expected auto, raw_tracepoint or tracepoint");
	expect_error("ebpf:\n  max_cgroups: 3\n", ":2:16: ebpf.max_cgroups: expected a number from 16 to");
	expect_error("ebpf:\n  max_sockets: lots\n", "ebpf.max_sockets: expected a number");
	expect_error("ebpf:\n  max_inflight_io: -5\n", "ebpf.max_inflight_io: expected a number");
	expect_error("ebpf:\n  tcp: maybe\n", ":2:8: ebpf.tcp: expected true or false");
	expect_error("ebpf:\n  tcp:\n    start: x\n", ":3:12: ebpf.tcp.start: unknown key in ebpf.tcp");
	expect_error("ebpf:\n  block:\n    start: block/rq_issue\n",
		     ":3:12: ebpf.block.start: expected a tracepoint name such as block_rq_issue");
	expect_error("ebpf:\n  kprobes: true\n", ":2:12: kprobes: unknown key in ebpf");
	expect_error("ebpf: yes\n", "ebpf: expected a mapping");
}

int main(void)
{
	RUN(test_defaults);
	RUN(test_values);
	RUN(test_errors);
	TEST_END();
}
