/*
 * test_codec.c - the chunk codec: round trips on random and edge data (NaN,
 * the stale marker, infinities, -0, huge and negative deltas, counter
 * resets, identical values, irregular intervals), refusal of out-of-order
 * points without harm to the chunk, and corrupt input.
 */
#include "storage/codec.h"
#include "storage/storage.h"
#include "tests/unit/test.h"
#include "agent/util/util.h"

#include <errno.h>
#include <stdint.h>

static uint64_t rng = 88172645463325252ULL;
static uint64_t xr(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t bits(double v)
{
	uint64_t b;
	memcpy(&b, &v, 8);
	return b;
}

/* The points cdec_next gives (the last column of a roll-up chunk, as the
 * batch decoders give); returns how many (at most max). */
static size_t decode_next(const uint8_t *buf, size_t len, int64_t *t, double *v, size_t max)
{
	struct cdec d;
	if (cdec_init(&d, buf, len) < 0)
		return 0;
	size_t n = 0;
	double vals[CODEC_MAX_COLS];
	while (n < max && cdec_next(&d, &t[n], vals) > 0)
		v[n++] = vals[d.ncols - 1];
	return n;
}

/* The batch decoders (cdec_run into arrays, cdec_run_pairs into structs,
 * in batches of odd sizes) give exactly what cdec_next gives, bit for bit,
 * corrupt input included: their fast path leaves anything unusual to the
 * general one. */
static void check_batches(const uint8_t *buf, size_t len)
{
	enum { MAX = 70000 };
	int64_t *t = malloc(MAX * sizeof(*t)), *bt = malloc(MAX * sizeof(*bt));
	double *v = malloc(MAX * sizeof(*v)), *bv = malloc(MAX * sizeof(*bv));
	struct { int64_t t; double v; uint64_t pad; } *pt = malloc(MAX * sizeof(*pt));
	size_t n = decode_next(buf, len, t, v, MAX);
	static const size_t sizes[] = { 1, 7, 512, MAX };
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		struct cdec d, dp;
		if (cdec_init(&d, buf, len) < 0 || cdec_init(&dp, buf, len) < 0)
			break;
		size_t got = 0, gotp = 0, k;
		while (got < MAX && (k = cdec_run(&d, bt + got, bv + got, sizes[s])) > 0)
			got += k;
		while (gotp < MAX && (k = cdec_run_pairs(&dp, &pt[gotp].t, &pt[gotp].v, sizeof(*pt),
							sizes[s])) > 0)
			gotp += k;
		CHECK_EQ_INT(got, n);
		CHECK_EQ_INT(gotp, n);
		size_t bad = 0;
		for (size_t i = 0; i < n && i < got && i < gotp; i++)
			bad += bt[i] != t[i] || bits(bv[i]) != bits(v[i]) || pt[i].t != t[i] ||
			       bits(pt[i].v) != bits(v[i]);
		CHECK_EQ_INT(bad, 0);
	}
	free(t);
	free(bt);
	free(v);
	free(bv);
	free(pt);
}

/* Encodes n points, decodes them, and checks every bit came back. */
static void roundtrip(const int64_t *t, const double *v, size_t n, bool counter)
{
	struct cenc e;
	struct vstate vs[1];
	cenc_init(&e, 1);
	for (size_t i = 0; i < n; i++)
		CHECK_EQ_INT(cenc_append(&e, vs, t[i], &v[i], counter), 0);
	CHECK_EQ_INT(e.count, n);
	struct cdec d;
	CHECK_EQ_INT(cdec_init(&d, e.buf, cenc_bytes(&e)), 0);
	int64_t tt;
	double vv;
	size_t i = 0, bad = 0;
	while (cdec_next(&d, &tt, &vv) > 0) {
		if (i >= n || tt != t[i] || bits(vv) != bits(v[i]))
			bad++;
		i++;
	}
	CHECK_EQ_INT(i, n);
	CHECK_EQ_INT(bad, 0);
	check_batches(e.buf, cenc_bytes(&e));
	/* Restoring an encoder from the bytes gives the same bytes. */
	struct cenc r;
	struct vstate rvs[1];
	cenc_init(&r, 1);
	CHECK_EQ_INT(cenc_restore(&r, rvs, e.buf, cenc_bytes(&e), counter), 0);
	CHECK_EQ_INT(cenc_bytes(&r), cenc_bytes(&e));
	CHECK(memcmp(r.buf, e.buf, cenc_bytes(&e)) == 0);
	cenc_free(&r);
	/* An encoder continued from states worked out of its bytes alone
	 * writes the same bytes (roll-up chunks are kept that way). */
	struct cenc h;
	struct vstate hvs[1];
	cenc_init(&h, 1);
	for (size_t k = 0; k < n; k++) {
		if (k == n / 2 && k) {
			memset(hvs, 0x5a, sizeof(hvs));
			CHECK_EQ_INT(cenc_states(&h, hvs), 0);
		}
		cenc_append(&h, hvs, t[k], &v[k], counter);
	}
	CHECK_EQ_INT(cenc_bytes(&h), cenc_bytes(&e));
	CHECK(memcmp(h.buf, e.buf, cenc_bytes(&e)) == 0);
	cenc_free(&h);
	cenc_free(&e);
}

static void test_edge_values(void)
{
	double v[] = { 0.0, -0.0, NAN, store_stale_nan(), INFINITY, -INFINITY, 1.5, 1.5, 1.5,
		       -1e308, 1e308, 4.9e-324, -4.9e-324, 0.1, 0.2, 0.30000000000000004,
		       9007199254740993.0, -9007199254740992.0, 123456789.123456789, NAN, 0.0 };
	size_t n = ARRAY_LEN(v);
	int64_t t[ARRAY_LEN(v)];
	for (size_t i = 0; i < n; i++)
		t[i] = 1700000000000LL + (int64_t)i * 1000;
	roundtrip(t, v, n, false);
	roundtrip(t, v, n, true);
	/* The stale marker keeps its exact bit pattern. */
	struct cenc e;
	struct vstate vs[1];
	cenc_init(&e, 1);
	double one = 1, st = store_stale_nan();
	cenc_append(&e, vs, 1000, &one, false);
	cenc_append(&e, vs, 2000, &st, false);
	struct cdec d;
	cdec_init(&d, e.buf, cenc_bytes(&e));
	int64_t tt;
	double vv;
	cdec_next(&d, &tt, &vv);
	cdec_next(&d, &tt, &vv);
	CHECK(store_is_stale(vv));
	CHECK_EQ_INT(bits(vv), 0x7ff0000000000002ULL);
	cenc_free(&e);
}

static void test_timestamps(void)
{
	/* Irregular intervals, huge and negative delta-of-deltas, negative times. */
	int64_t t[] = { -5000, -4999, 0, 1, 2, 1000, 1000000, 1000001, 4000000000000LL,
			4000000000001LL, 4000000000002LL, INT64_MAX / 4, INT64_MAX / 4 + 1,
			INT64_MAX / 2 };
	double v[ARRAY_LEN(t)];
	for (size_t i = 0; i < ARRAY_LEN(t); i++)
		v[i] = (double)i;
	roundtrip(t, v, ARRAY_LEN(t), false);
	/* Jittered ticks around one second. */
	int64_t tj[500];
	double vj[500];
	int64_t now = 1700000000000LL;
	for (size_t i = 0; i < 500; i++) {
		now += 1000 + (int64_t)(xr() % 41) - 20;
		tj[i] = now;
		vj[i] = (double)(xr() % 1000);
	}
	roundtrip(tj, vj, 500, false);
}

static void test_counters(void)
{
	/* A nanosecond CPU counter in seconds, with a reset in the middle. */
	int64_t t[300];
	double v[300];
	uint64_t ns = 123456789012ULL;
	for (size_t i = 0; i < 300; i++) {
		if (i == 150)
			ns = 1000;
		ns += xr() % 50000000;
		t[i] = 1700000000000LL + (int64_t)i * 1000;
		v[i] = (double)ns / 1e9;
	}
	roundtrip(t, v, 300, true);
	roundtrip(t, v, 300, false);
	/* Counters of bytes: integer mode should make them small. */
	struct cenc e;
	struct vstate vs[1];
	cenc_init(&e, 1);
	double bytes = 1e9;
	for (int i = 0; i < 240; i++) {
		bytes += 4096 * (double)(100 + xr() % 8);
		cenc_append(&e, vs, 1700000000000LL + i * 1000, &bytes, true);
	}
	CHECK(cenc_bytes(&e) < 240 * 4); /* well under Gorilla's ~5 bytes for such data */
	cenc_free(&e);
	/* Identical values cost about two bits a point. */
	cenc_init(&e, 1);
	double same = 42.125;
	for (int i = 0; i < 240; i++)
		cenc_append(&e, vs, 1700000000000LL + i * 1000, &same, false);
	CHECK(cenc_bytes(&e) < 100);
	cenc_free(&e);
}

static void test_random(void)
{
	for (int round = 0; round < 200; round++) {
		size_t n = 1 + xr() % 400;
		int64_t *t = malloc(n * sizeof(*t));
		double *v = malloc(n * sizeof(*v));
		int64_t now = (int64_t)(xr() % 2000000000000ULL) - 1000000000000LL;
		double counter = (double)(xr() % 100000);
		for (size_t i = 0; i < n; i++) {
			/* every few rounds, scrapes every second with a few ms of jitter */
			now += round % 5 == 4 ? 1000 + (int64_t)(xr() % 41) - 20
					      : 1 + (int64_t)(xr() % (round % 3 == 0 ? 100000000 : 2000));
			t[i] = now;
			counter += (double)(xr() % 2000000) / 1e6;
			switch (xr() % (round % 5 == 4 ? 8 : 7)) {
			case 6: v[i] = (double)(int64_t)(counter * 1e6) / 1e6; break; /* a counter of microseconds */
			case 7: v[i] = (double)(int64_t)(counter * 1e6) / 1e6; break;
			case 0: { uint64_t b = xr(); memcpy(&v[i], &b, 8); break; } /* any pattern */
			case 1: v[i] = (double)(xr() % 1000); break;
			case 2: v[i] = i ? v[i - 1] : 0; break;
			case 3: v[i] = (double)(int64_t)xr() / 1e6; break;
			case 4: v[i] = (double)(xr() % 100000) / 1e3; break;
			default: v[i] = -(double)(xr() % 1000000) / 1e9; break;
			}
		}
		roundtrip(t, v, n, round & 1);
		/* long chunks in the shape of a 1 s CPU counter */
		if (round % 50 == 0) {
			size_t m = 20000;
			int64_t *lt = malloc(m * sizeof(*lt));
			double *lv = malloc(m * sizeof(*lv));
			for (size_t i = 0; i < m; i++) {
				lt[i] = 1700000000000LL + 1000LL * (int64_t)i + (int64_t)(xr() % 41) - 20;
				counter += (double)(xr() % 2000000) / 1e6;
				lv[i] = xr() % 97 == 0 ? (double)(xr() % 1000) : (double)(int64_t)(counter * 1e6) / 1e6;
			}
			roundtrip(lt, lv, m, true);
			free(lt);
			free(lv);
		}
		free(t);
		free(v);
	}
}

static void test_out_of_order(void)
{
	struct cenc e;
	struct vstate vs[1];
	cenc_init(&e, 1);
	double a = 1, b = 2, c = 3;
	CHECK_EQ_INT(cenc_append(&e, vs, 1000, &a, false), 0);
	CHECK_EQ_INT(cenc_append(&e, vs, 2000, &b, false), 0);
	size_t before = cenc_bytes(&e);
	uint8_t copy[64];
	memcpy(copy, e.buf, before);
	CHECK_EQ_INT(cenc_append(&e, vs, 2000, &c, false), -EEXIST);
	CHECK_EQ_INT(cenc_append(&e, vs, 1500, &c, false), -EEXIST);
	CHECK_EQ_INT(cenc_bytes(&e), before);
	CHECK(memcmp(copy, e.buf, before) == 0);
	CHECK_EQ_INT(cenc_append(&e, vs, 3000, &c, false), 0);
	struct cdec d;
	cdec_init(&d, e.buf, cenc_bytes(&e));
	int64_t t;
	double v;
	int n = 0;
	double want[] = { 1, 2, 3 };
	while (cdec_next(&d, &t, &v) > 0) {
		CHECK_EQ_DBL(v, want[n]);
		n++;
	}
	CHECK_EQ_INT(n, 3);
	cenc_free(&e);
}

static void test_rollup_columns(void)
{
	struct cenc e;
	struct vstate vs[5];
	cenc_init(&e, 5);
	for (int i = 0; i < 120; i++) {
		double vals[5] = { i, i + 10.5, 60.0 * i, 60, i + 3 };
		CHECK_EQ_INT(cenc_append(&e, vs, 60000LL * (i + 1), vals, false), 0);
	}
	struct cdec d;
	CHECK_EQ_INT(cdec_init(&d, e.buf, cenc_bytes(&e)), 0);
	int64_t t;
	double vals[5];
	int i = 0;
	while (cdec_next(&d, &t, vals) > 0) {
		CHECK_EQ_INT(t, 60000LL * (i + 1));
		CHECK_EQ_DBL(vals[1], i + 10.5);
		CHECK_EQ_DBL(vals[3], 60);
		i++;
	}
	CHECK_EQ_INT(i, 120);
	cenc_free(&e);
}

static void test_corrupt(void)
{
	struct cenc e;
	struct vstate vs[1];
	cenc_init(&e, 1);
	for (int i = 0; i < 100; i++) {
		double v = (double)(xr() % 100000) / 7;
		cenc_append(&e, vs, 1000LL * i, &v, false);
	}
	size_t len = cenc_bytes(&e);
	/* Truncations and bit flips never crash and never loop. */
	for (size_t cut = 0; cut < len; cut++) {
		struct cdec d;
		if (cdec_init(&d, e.buf, cut) < 0)
			continue;
		int64_t t;
		double v[CODEC_MAX_COLS];  /* a flipped header can say 5 columns */
		int n = 0, rc;
		while ((rc = cdec_next(&d, &t, v)) > 0)
			n++;
		CHECK(n <= 100);
		check_batches(e.buf, cut);
	}
	uint8_t *copy = malloc(len);
	for (int k = 0; k < 2000; k++) {
		memcpy(copy, e.buf, len);
		copy[xr() % len] ^= (uint8_t)(1u << (xr() % 8));
		struct cdec d;
		if (cdec_init(&d, copy, len) < 0)
			continue;
		int64_t t;
		double v[CODEC_MAX_COLS];
		int n = 0;
		while (cdec_next(&d, &t, v) > 0)
			n++;
		CHECK(n <= 65535);
		check_batches(copy, len);
	}
	free(copy);
	uint8_t junk[3] = { 9, 9, 9 };
	struct cdec d;
	CHECK(cdec_init(&d, junk, 3) < 0);
	cenc_free(&e);
}

int main(void)
{
	RUN(test_edge_values);
	RUN(test_timestamps);
	RUN(test_counters);
	RUN(test_random);
	RUN(test_out_of_order);
	RUN(test_rollup_columns);
	RUN(test_corrupt);
	TEST_END();
}
