/*
 * fuzz_codec.c - the chunk decoder (storage/codec.c), which reads chunk
 * blobs from SQLite files that may be damaged: any bytes as a chunk must
 * decode without a crash, and every batch decoder (cdec_run into arrays,
 * cdec_run_pairs into structs, in batches of several sizes, the engine's
 * register-resident fast path among them) must give exactly the points
 * cdec_next gives, bit for bit, where it stops included.
 */
#include <stdio.h>
#include "tests/fuzz/fuzz.h"
#include "storage/codec.h"

#define MAXP 65536

static size_t by_next(const uint8_t *data, size_t size, int64_t *t, uint64_t *v)
{
	struct cdec d;
	if (cdec_init(&d, data, size) < 0)
		return 0;
	size_t n = 0;
	double vals[CODEC_MAX_COLS];
	while (n < MAXP && cdec_next(&d, &t[n], vals) > 0)
		memcpy(&v[n++], &vals[d.ncols - 1], 8);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int64_t t[MAXP], bt[MAXP];
	static uint64_t v[MAXP];
	static double bv[MAXP];
	static struct { int64_t t; double v; } pt[MAXP];
	if (size > 1 << 16)
		return 0;
	size_t n = by_next(data, size, t, v);
	static const size_t batches[] = { 1, 3, 512, MAXP };
	for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		struct cdec d, dp;
		if (cdec_init(&d, data, size) < 0 || cdec_init(&dp, data, size) < 0)
			return 0;
		size_t got = 0, gotp = 0, k;
		while (got < MAXP && (k = cdec_run(&d, bt + got, bv + got, batches[b] < MAXP - got ?
								    batches[b] : MAXP - got)) > 0)
			got += k;
		while (gotp < MAXP && (k = cdec_run_pairs(&dp, &pt[gotp].t, &pt[gotp].v, sizeof(pt[0]),
							  batches[b] < MAXP - gotp ?
							  batches[b] : MAXP - gotp)) > 0)
			gotp += k;
		if (got != n || gotp != n) {
			fprintf(stderr, "cdec_next gave %zu points, cdec_run %zu, cdec_run_pairs %zu\n", n,
				got, gotp);
			abort();
		}
		for (size_t i = 0; i < n; i++)
			if (bt[i] != t[i] || pt[i].t != t[i] || memcmp(&bv[i], &v[i], 8) ||
			    memcmp(&pt[i].v, &v[i], 8)) {
				fprintf(stderr, "point %zu differs (batch %zu)\n", i, batches[b]);
				abort();
			}
	}
	return 0;
}
