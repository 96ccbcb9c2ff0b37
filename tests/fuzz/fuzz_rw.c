/*
 * fuzz_rw.c - the remote_write encoding round trip (agent/rw_encode.c):
 * the input is read as a program of series (labels), samples and metadata
 * entries, packed into a snappy-compressed WriteRequest, uncompressed and
 * unpacked with protobuf-c, and every label, timestamp and value must come
 * back as given (values bit for bit, but -0.0 as proto3's 0). The raw
 * input is also handed to rw_decode_count, the receiver side.
 */
#include <math.h>
#include <stdio.h>
#include <snappy-c.h>
#include "tests/fuzz/fuzz.h"
#include "agent/util/util.h"
#include "agent/rw.h"
#include "agent/rw_remote.pb-c.h"

#define MAX_SERIES 16
#define MAX_LABELS 4
#define MAX_SAMPLES 16

struct in {
	const uint8_t *p;
	size_t n;
};

static unsigned take_byte(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static void take(struct in *in, void *out, size_t n)
{
	memset(out, 0, n);
	size_t k = n < in->n ? n : in->n;
	memcpy(out, in->p, k);
	in->p += k;
	in->n -= k;
}

static char *take_str(struct in *in)
{
	size_t len = take_byte(in) % 24;
	if (len > in->n)
		len = in->n;
	char *s = fuzz_cstr(in->p, len);
	in->p += len;
	in->n -= len;
	return s;
}

struct series {
	char *names[MAX_LABELS], *values[MAX_LABELS];
	size_t nl;
	int64_t t[MAX_SAMPLES];
	double v[MAX_SAMPLES];
	size_t ns;
};

static void fail(const char *what, size_t i)
{
	fprintf(stderr, "round trip: %s (series %zu)\n", what, i);
	abort();
}

static bool same_value(double want, double got)
{
	if (want == 0)
		return got == 0;
	uint64_t a, b;
	memcpy(&a, &want, 8);
	memcpy(&b, &got, 8);
	return a == b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t ns = 0, nm = 0;
	(void)rw_decode_count(data, size, &ns, &nm);

	struct in in = { data, size };
	struct series *s = calloc(MAX_SERIES, sizeof(*s));
	char *meta[3 * 8];
	size_t nmeta = 0, nseries = 0;
	if (!s)
		abort();
	while (in.n) {
		unsigned op = take_byte(&in) % 3;
		if (op == 0 && nseries < MAX_SERIES) {
			struct series *x = &s[nseries++];
			x->nl = 1 + take_byte(&in) % MAX_LABELS;
			for (size_t i = 0; i < x->nl; i++) {
				x->names[i] = take_str(&in);
				x->values[i] = take_str(&in);
			}
		} else if (op == 1 && nseries && s[nseries - 1].ns < MAX_SAMPLES) {
			struct series *x = &s[nseries - 1];
			take(&in, &x->t[x->ns], 8);
			take(&in, &x->v[x->ns], 8);
			x->ns++;
		} else if (op == 2 && nmeta < 8) {
			for (int i = 0; i < 3; i++)
				meta[3 * nmeta + i] = take_str(&in);
			nmeta++;
		} else {
			break;
		}
	}

	struct rw_req *r = rw_req_new();
	if (!r)
		abort();
	for (size_t i = 0; i < nseries; i++) {
		if (rw_req_series(r, (const char *const *)s[i].names,
				  (const char *const *)s[i].values, s[i].nl) != 0)
			abort();
		for (size_t j = 0; j < s[i].ns; j++)
			if (rw_req_sample(r, s[i].t[j], s[i].v[j]) != 0)
				abort();
	}
	for (size_t i = 0; i < nmeta; i++)
		if (rw_req_metadata(r, 1 + (int)(i % 4), meta[3 * i], meta[3 * i + 1],
				    meta[3 * i + 2]) != 0)
			abort();

	struct rw_bytes out = { 0 };
	size_t raw = 0;
	if (rw_req_pack(r, &out, &raw) != 0)
		abort();
	size_t ulen = 0;
	if (snappy_uncompressed_length((const char *)out.p, out.len, &ulen) != SNAPPY_OK ||
	    ulen != raw)
		fail("snappy length", 0);
	char *u = malloc(ulen + 1);
	if (!u || snappy_uncompress((const char *)out.p, out.len, u, &ulen) != SNAPPY_OK)
		fail("snappy", 0);
	Prometheus__WriteRequest *wr = prometheus__write_request__unpack(NULL, ulen, (uint8_t *)u);
	if (!wr)
		fail("unpack", 0);
	if (wr->n_timeseries != nseries)
		fail("series count", wr->n_timeseries);
	size_t total = 0;
	for (size_t i = 0; i < nseries; i++) {
		const Prometheus__TimeSeries *t = wr->timeseries[i];
		if (t->n_labels != s[i].nl)
			fail("label count", i);
		for (size_t j = 0; j < s[i].nl; j++)
			if (strcmp(t->labels[j]->name, s[i].names[j]) ||
			    strcmp(t->labels[j]->value, s[i].values[j]))
				fail("label", i);
		if (t->n_samples != s[i].ns)
			fail("sample count", i);
		for (size_t j = 0; j < s[i].ns; j++)
			if (t->samples[j]->timestamp != s[i].t[j] ||
			    !same_value(s[i].v[j], t->samples[j]->value))
				fail("sample", i);
		total += s[i].ns;
	}
	if (wr->n_metadata != nmeta)
		fail("metadata count", 0);
	for (size_t i = 0; i < nmeta; i++)
		if (strcmp(wr->metadata[i]->metric_family_name, meta[3 * i]) ||
		    strcmp(wr->metadata[i]->help, meta[3 * i + 1]) ||
		    strcmp(wr->metadata[i]->unit, meta[3 * i + 2]))
			fail("metadata", i);
	prometheus__write_request__free_unpacked(wr, NULL);
	if (rw_decode_count(out.p, out.len, &ns, &nm) != (ssize_t)total || ns != nseries ||
	    nm != nmeta)
		fail("rw_decode_count", 0);
	free(u);
	rw_bytes_fini(&out);
	rw_req_free(r);
	for (size_t i = 0; i < nseries; i++)
		for (size_t j = 0; j < s[i].nl; j++) {
			free(s[i].names[j]);
			free(s[i].values[j]);
		}
	for (size_t i = 0; i < 3 * nmeta; i++)
		free(meta[i]);
	free(s);
	return 0;
}
