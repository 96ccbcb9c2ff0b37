/*
 * test_rw.c - remote write: the WriteRequest encoding (packed by the
 * protoc-c code, snappy block compression) decoded back with protobuf-c,
 * snappy's block format, write_relabel_configs, and the remote_write: /
 * external_labels: config sections.
 */
#include "agent/agent.h"
#include "agent/rw.h"
#include "agent/rw_remote.pb-c.h"
#include "tests/unit/agent/config_text.h"
#include "tests/unit/test.h"

#include <snappy-c.h>
#include <stdint.h>

/* Uncompresses and unpacks a body made by rw_req_pack. */
static Prometheus__WriteRequest *decode(const struct rw_bytes *b, size_t raw_len)
{
	size_t ulen;
	if (snappy_uncompressed_length((const char *)b->p, b->len, &ulen) != SNAPPY_OK)
		return NULL;
	CHECK_EQ_INT(ulen, raw_len);
	char *u = malloc(ulen + 1);
	if (snappy_uncompress((const char *)b->p, b->len, u, &ulen) != SNAPPY_OK) {
		free(u);
		return NULL;
	}
	Prometheus__WriteRequest *wr = prometheus__write_request__unpack(NULL, ulen, (uint8_t *)u);
	free(u);
	return wr;
}

static void test_roundtrip(void)
{
	struct rw_req *r = rw_req_new();
	struct rw_bytes out = { 0 };
	const char *n1[] = { "__name__", "host", "id" }, *v1[] = { "m_total", "a", "/x\"y\n" };
	const char *n2[] = { "__name__", "host" }, *v2[] = { "up", "b" };
	CHECK_EQ_INT(rw_req_series(r, n1, v1, 3), 0);
	CHECK_EQ_INT(rw_req_sample(r, 1700000000000, 1.5), 0);
	CHECK_EQ_INT(rw_req_sample(r, 1700000001000, store_stale_nan()), 0);
	CHECK_EQ_INT(rw_req_series(r, n2, v2, 2), 0);
	CHECK_EQ_INT(rw_req_sample(r, -5, -0.0), 0);
	CHECK_EQ_INT(rw_req_metadata(r, 1, "m_total", "help \"text\"", "seconds"), 0);
	CHECK_EQ_INT(rw_req_samples(r), 3);
	size_t raw = 0;
	CHECK_EQ_INT(rw_req_pack(r, &out, &raw), 0);
	CHECK(raw > 0 && out.len > 0);
	Prometheus__WriteRequest *wr = decode(&out, raw);
	CHECK(wr != NULL);
	if (wr) {
		CHECK_EQ_INT(wr->n_timeseries, 2);
		Prometheus__TimeSeries *t = wr->timeseries[0];
		CHECK_EQ_INT(t->n_labels, 3);
		CHECK_STR(t->labels[0]->name, "__name__");
		CHECK_STR(t->labels[2]->value, "/x\"y\n");
		CHECK_EQ_INT(t->n_samples, 2);
		CHECK_EQ_INT(t->samples[0]->timestamp, 1700000000000);
		CHECK_EQ_DBL(t->samples[0]->value, 1.5);
		/* The stale marker keeps its exact bits through the wire. */
		CHECK(store_is_stale(t->samples[1]->value));
		CHECK_EQ_INT(wr->timeseries[1]->samples[0]->timestamp, -5);
		/* proto3 leaves a zero out: -0.0 arrives as 0 (equal in PromQL). */
		CHECK(wr->timeseries[1]->samples[0]->value == 0);
		CHECK_EQ_INT(wr->n_metadata, 1);
		CHECK_EQ_INT(wr->metadata[0]->type, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER);
		CHECK_STR(wr->metadata[0]->help, "help \"text\"");
		prometheus__write_request__free_unpacked(wr, NULL);
	}
	size_t ns = 0, nm = 0;
	CHECK_EQ_INT(rw_decode_count(out.p, out.len, &ns, &nm), 3);
	CHECK_EQ_INT(ns, 2);
	CHECK_EQ_INT(nm, 1);
	/* Reused after a reset: only the new request is in the body. */
	rw_req_reset(r);
	CHECK_EQ_INT(rw_req_series(r, n2, v2, 2), 0);
	for (int i = 0; i < 5000; i++)
		rw_req_sample(r, i * 1000, i);
	CHECK_EQ_INT(rw_req_pack(r, &out, &raw), 0);
	CHECK_EQ_INT(rw_decode_count(out.p, out.len, &ns, NULL), 5000);
	CHECK_EQ_INT(ns, 1);
	/* Snappy pays: 5000 regular samples shrink. */
	CHECK(out.len < raw);
	CHECK(rw_decode_count("garbage", 7, NULL, NULL) < 0);
	rw_bytes_fini(&out);
	rw_req_free(r);
}

/* The hand-computed bytes of the smallest request, as the spec's field
 * numbers give them (reference §3.2): WriteRequest.timeseries 0x0a,
 * TimeSeries.labels 0x0a, samples 0x12, Label name 0x0a value 0x12,
 * Sample value 0x09 (fixed64) and timestamp 0x10 (varint). */
static void test_wire_bytes(void)
{
	struct rw_req *r = rw_req_new();
	struct rw_bytes out = { 0 };
	const char *n[] = { "a" }, *v[] = { "b" };
	rw_req_series(r, n, v, 1);
	rw_req_sample(r, 1, 1.0);
	size_t raw;
	CHECK_EQ_INT(rw_req_pack(r, &out, &raw), 0);
	static const uint8_t want[] = {
		0x0a, 0x15,                                     /* timeseries, 21 bytes */
		0x0a, 0x06, 0x0a, 0x01, 'a', 0x12, 0x01, 'b',   /* label a=b */
		0x12, 0x0b, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, /* sample value 1.0 */
		0x10, 0x01,                                     /* timestamp 1 */
	};
	CHECK_EQ_INT(raw, sizeof(want));
	char u[64];
	size_t ulen = sizeof(u);
	CHECK(snappy_uncompress((const char *)out.p, out.len, u, &ulen) == SNAPPY_OK);
	CHECK_EQ_INT(ulen, sizeof(want));
	CHECK(memcmp(u, want, sizeof(want)) == 0);
	/* Block format: starts with the uncompressed length as a varint, never
	 * the framed format's stream identifier (0xff 06 00 00 "sNaPpY"). */
	CHECK_EQ_INT(out.p[0], sizeof(want));
	CHECK(out.p[0] != 0xff);
	rw_bytes_fini(&out);
	rw_req_free(r);
}

static struct rw_relabel rule(enum rw_action a, const char *src, const char *regex,
			      const char *target, const char *repl)
{
	struct rw_relabel r = { .action = a };
	if (src) {
		char *s = strdup(src), *save = NULL;
		for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save))
			r.source[r.nsource++] = strdup(t);
		free(s);
	}
	r.regex = regex ? strdup(regex) : NULL;
	r.target = target ? strdup(target) : NULL;
	r.replacement = repl ? strdup(repl) : NULL;
	char err[256];
	CHECK_EQ_INT(rw_relabel_compile(&r, err, sizeof(err)), 0);
	return r;
}

static void lset(struct rw_lset *ls, const char *name, const char *job, const char *id)
{
	memset(ls, 0, sizeof(*ls));
	rw_lset_set(ls, "__name__", name);
	rw_lset_set(ls, "job", job);
	rw_lset_set(ls, "id", id);
}

static void test_relabel(void)
{
	struct rw_relabel rules[4];
	struct rw_lset ls;

	/* keep by name */
	rules[0] = rule(RW_KEEP, "__name__", "container_.*", NULL, NULL);
	lset(&ls, "container_cpu", "j", "/docker/abc");
	CHECK_EQ_INT(rw_relabel_apply(rules, 1, &ls), 1);
	rw_lset_fini(&ls);
	lset(&ls, "monitor_ticks_total", "j", "/");
	CHECK_EQ_INT(rw_relabel_apply(rules, 1, &ls), 0);
	rw_lset_fini(&ls);
	/* the regex is anchored: "container_" must start the name */
	lset(&ls, "xcontainer_cpu", "j", "/");
	CHECK_EQ_INT(rw_relabel_apply(rules, 1, &ls), 0);
	rw_lset_fini(&ls);
	rw_relabel_fini(&rules[0]);

	/* drop by two sources joined with the separator */
	rules[0] = rule(RW_DROP, "job,id", "j;/docker/.*", NULL, NULL);
	lset(&ls, "a", "j", "/docker/abc");
	CHECK_EQ_INT(rw_relabel_apply(rules, 1, &ls), 0);
	rw_lset_fini(&ls);
	lset(&ls, "a", "k", "/docker/abc");
	CHECK_EQ_INT(rw_relabel_apply(rules, 1, &ls), 1);
	rw_lset_fini(&ls);
	rw_relabel_fini(&rules[0]);

	/* replace with a capture group, then labeldrop, labelmap */
	rules[0] = rule(RW_REPLACE, "id", "/docker/([0-9a-f]{3}).*", "short_id", "c-$1");
	rules[1] = rule(RW_LABELDROP, NULL, "job", NULL, NULL);
	rules[2] = rule(RW_LABELMAP, NULL, "short_(.*)", NULL, "x_${1}");
	rules[3] = rule(RW_REPLACE, "nosuch", "", "id", ""); /* empty value removes */
	lset(&ls, "a", "j", "/docker/abcdef");
	CHECK_EQ_INT(rw_relabel_apply(rules, 4, &ls), 1);
	CHECK_STR(rw_lset_get(&ls, "short_id"), "c-abc");
	CHECK_STR(rw_lset_get(&ls, "x_id"), "c-abc");
	CHECK(rw_lset_get(&ls, "job") == NULL);
	CHECK(rw_lset_get(&ls, "id") == NULL);
	/* sorted by name, as the spec requires */
	CHECK_EQ_INT(ls.n, 3);
	CHECK_STR(ls.name[0], "__name__");
	CHECK_STR(ls.name[1], "short_id");
	CHECK_STR(ls.name[2], "x_id");
	rw_lset_fini(&ls);
	/* a series the regex does not match is left alone */
	lset(&ls, "a", "j", "/system.slice");
	CHECK_EQ_INT(rw_relabel_apply(rules, 1, &ls), 1);
	CHECK(rw_lset_get(&ls, "short_id") == NULL);
	rw_lset_fini(&ls);
	/* dropping __name__ drops the series */
	struct rw_relabel nameless = rule(RW_LABELDROP, NULL, "__name__", NULL, NULL);
	lset(&ls, "a", "j", "/");
	CHECK_EQ_INT(rw_relabel_apply(&nameless, 1, &ls), 0);
	rw_lset_fini(&ls);
	rw_relabel_fini(&nameless);
	for (int i = 0; i < 4; i++)
		rw_relabel_fini(&rules[i]);
	/* "Z" sorts before "_" before "a" (bytes) */
	memset(&ls, 0, sizeof(ls));
	rw_lset_set(&ls, "b", "1");
	rw_lset_set(&ls, "__name__", "n");
	rw_lset_set(&ls, "Z", "2");
	rw_lset_sort(&ls);
	CHECK_STR(ls.name[0], "Z");
	CHECK_STR(ls.name[1], "__name__");
	CHECK_STR(ls.name[2], "b");
	rw_lset_fini(&ls);
}

static void test_config(void)
{
	struct agent_config c;
	char err[1024];
	int rc = load_text(&c,
			   "external_labels:\n  host: node-1\n  dc: eu\n"
			   "remote_write:\n"
			   "  - url: http://127.0.0.1:9090/api/v1/write\n"
			   "    remote_timeout: 5s\n"
			   "    write_relabel_configs:\n"
			   "      - source_labels: [__name__]\n        regex: 'container_.*'\n        action: keep\n"
			   "    queue_config:\n      max_shards: 4\n      max_samples_per_send: 500\n"
			   "      batch_send_deadline: 1s\n      min_backoff: 10ms\n      max_backoff: 2s\n"
			   "    basic_auth:\n      username: u\n      password: s3cret\n"
			   "  - url: https://mimir.example/api/v1/push\n    name: mimir\n"
			   "    bearer_token_file: /run/secrets/token\n",
			   err, sizeof(err));
	CHECK_EQ_INT(rc, 0);
	if (rc == 0 && c.rw) {
		CHECK_EQ_INT(c.rw->nep, 2);
		CHECK_EQ_INT(c.rw->nexternal, 2);
		CHECK(c.rw->external_set);
		const struct rw_endpoint_config *e = &c.rw->ep[0];
		CHECK_STR(e->name, "127.0.0.1:9090");
		CHECK_EQ_INT(e->remote_timeout_ms, 5000);
		CHECK_EQ_INT(e->nrelabel, 1);
		CHECK_EQ_INT(e->relabel[0].action, RW_KEEP);
		CHECK_EQ_INT(e->q.max_shards, 4);
		CHECK_EQ_INT(e->q.max_samples_per_send, 500);
		CHECK_EQ_INT(e->q.batch_send_deadline_ms, 1000);
		CHECK_EQ_INT(e->q.capacity, 10000); /* Prometheus' default */
		CHECK_STR(e->basic_password, "s3cret");
		CHECK_STR(c.rw->ep[1].name, "mimir");
		CHECK_STR(c.rw->ep[1].bearer_token_file, "/run/secrets/token");
	}
	config_fini(&c);

	static const struct {
		const char *text, *needle;
	} bad[] = {
		{ "remote_write:\n  - remote_timeout: 1s\n", ":2:5: remote_write: an endpoint needs url" },
		{ "remote_write:\n  - url: ftp://x/\n", ":2:10: remote_write.url: expected an http" },
		{ "remote_write:\n  - url: http://x/\n    queue_config:\n      max_shards: 0\n",
		  ":4:19: queue_config.max_shards: must be between 1 and 256" },
		{ "remote_write:\n  - url: http://x/\n    write_relabel_configs:\n      - source_labels: [a]\n        regex: '('\n        action: drop\n",
		  ":5:16: regex: bad regex" },
		{ "remote_write:\n  - url: http://x/\n    write_relabel_configs:\n      - action: hashmod\n",
		  "hashmod is not supported" },
		{ "remote_write:\n  - url: http://x/\n  - url: http://x/other\n",
		  "\"x\" names two endpoints" },
		{ "external_labels:\n  __x: y\n", ":2:8: __x: not a valid label name" },
		{ "remote_write:\n  - url: http://x/\n    bogus: 1\n", ":3:12: bogus: unknown key in remote_write" },
		{ "remote_write:\n  - url: http://x/\n    basic_auth:\n      password: hunter2\n",
		  "basic_auth: needs username" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = load_text(&c, bad[i].text, err, sizeof(err));
		CHECK(rc < 0);
		if (!strstr(err, bad[i].needle)) {
			fprintf(stderr, "  case %zu: error \"%s\" lacks \"%s\"\n", i, err, bad[i].needle);
			t_cur_failed = 1;
		}
		/* Secrets never appear in a message. */
		CHECK(strstr(err, "hunter2") == NULL);
		config_fini(&c);
	}
}

int main(void)
{
	RUN(test_roundtrip);
	RUN(test_wire_bytes);
	RUN(test_relabel);
	RUN(test_config);
	TEST_END();
}
