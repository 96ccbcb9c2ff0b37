/*
 * codec.h - the chunk codec (private to storage/).
 *
 * A chunk holds up to 65535 points of one series, each a timestamp and
 * ncols float64 values (1 for raw samples; 5 for roll-ups: min, max, sum,
 * count, last). Layout of the blob:
 *
 *   byte 0      format version (1)
 *   byte 1      ncols
 *   bytes 2-3   point count, little-endian
 *   ncols bytes per-column flags: bits 0-1 integer scale (1, 1e3, 1e6, 1e9),
 *               bit 2 integer deltas are delta-of-delta (counters)
 *   then a big-endian bit stream:
 *     t0 as 64 bits, then per point the timestamp delta-of-delta in
 *     Prometheus' millisecond buckets: '0' | '10'+14 | '110'+17 | '1110'+20 |
 *     '1111'+64 bits (signed);
 *     each value: first raw 64 bits, then one of
 *       '0'    same bits as the previous value
 *       '10'   integer mode: the value times the column scale is an integer
 *              I (exactly, |I| < 2^53) and so was the previous one; the
 *              zigzag of (I - Iprev) [gauges] or of the change of that
 *              delta [counters] follows as '0' (zero) | '10'+6 | '110'+13 |
 *              '1110'+20 | '11110'+32 | '11111'+64 bits
 *       '110'  Gorilla XOR inside the previous leading/trailing-zero window
 *       '111'  Gorilla XOR with a new window: 5 bits leading zeros, 6 bits
 *              length (0 = 64), then the meaningful bits
 *     The encoder writes whichever of integer and XOR is shorter, so it is
 *     never more than one bit a value worse than Gorilla, and much better on
 *     counters of bytes, nanoseconds or ticks. Every bit pattern survives
 *     (NaN payloads such as the stale marker, -0, infinities).
 *
 * The encoder is appended to in place (the head keeps open chunks encoded),
 * and the bytes so far are a valid chunk at any moment.
 */
#ifndef MONITOR_STORAGE_CODEC_H
#define MONITOR_STORAGE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CODEC_VERSION 1
#define CODEC_MAX_COLS 5
#define CODEC_MAX_POINTS 65535

/* Per-column encoder/decoder state. */
struct vstate {
	uint64_t prev;           /* bits of the previous value */
	int64_t iprev, idelta;   /* integer view of the previous value and delta */
	uint8_t lead, trail;     /* XOR window; lead 0xff = none yet */
	uint8_t scale;           /* scale index */
	uint8_t flags;
};

struct cenc {
	uint8_t *buf;            /* malloc'd; NULL while empty */
	uint32_t cap;            /* bytes allocated */
	uint32_t nbits;          /* bits used, header included */
	uint16_t count;
	uint8_t ncols;
	int64_t t_first, t_prev, t_delta;
};

/* Prepares an empty encoder; nothing is allocated until the first point. */
void cenc_init(struct cenc *e, uint8_t ncols);
void cenc_free(struct cenc *e);
/*
 * Appends a point. vs holds ncols column states (initialised by the first
 * append); counter selects delta-of-delta integer mode for the columns.
 * Returns 0; -EEXIST when t is not after the last point; -ERANGE when the
 * chunk is full or the time step does not fit; -ENOMEM. On error the chunk
 * is unchanged.
 */
int cenc_append(struct cenc *e, struct vstate *vs, int64_t t, const double *vals, bool counter);
static inline size_t cenc_bytes(const struct cenc *e)
{
	return (e->nbits + 7) / 8;
}
/* Restores an encoder from a chunk's bytes (by decoding and re-encoding).
 * Returns 0, -EINVAL for a malformed chunk, -ENOMEM. */
int cenc_restore(struct cenc *e, struct vstate *vs, const void *data, size_t len, bool counter);
/* Works out the column states of an encoder from its bytes, for encoders
 * kept without them (roll-up chunks, appended to once a minute or an hour).
 * Returns 0 or -EINVAL. */
int cenc_states(const struct cenc *e, struct vstate *vs);
/* Shrinks the buffer to its size and takes it out of e (caller frees). */
uint8_t *cenc_take(struct cenc *e, size_t *len);

/* Decoder column state: the integer view is worked out only when an
 * integer-mode value needs it (most XOR-coded values never do). */
struct dstate {
	uint64_t prev, pp;       /* the last two values' bits */
	int64_t iprev, ipp;      /* their integers, when known */
	int8_t prev_int, pp_int; /* 1 integer, 0 not, -1 not worked out yet */
	bool has_pp;
	uint8_t lead, trail, scale, flags;
};

struct cdec {
	const uint8_t *p;
	size_t nbytes, byte;     /* blob size; next byte to load */
	uint64_t buf;            /* upcoming bits, most significant first */
	unsigned avail;          /* real bits in buf */
	uint16_t count, i;
	uint8_t ncols;
	int64_t t, t_delta;
	struct dstate vs[CODEC_MAX_COLS];
};
/* Returns 0 or -EINVAL when the header is malformed. data must outlive d. */
int cdec_init(struct cdec *d, const void *data, size_t len);
/* 1 with a point in *t and vals[0..ncols), 0 at the end, -EINVAL when the
 * chunk is truncated or corrupt. */
int cdec_next(struct cdec *d, int64_t *t, double *vals);
/* Decodes up to max points into t[] and v[] (roll-ups: the last column);
 * returns how many. Stops at the end or at corrupt data. The fast path. */
size_t cdec_run(struct cdec *d, int64_t *t, double *v, size_t max);
/*
 * A decoder over data (a later copy of the same chunk, as the head's open
 * chunk grows: the same bytes with more appended) placed where at, a
 * decoder of an earlier copy, stood: the next point is the one after those
 * at had returned. 0, or -EINVAL when data is not that chunk (another
 * header, fewer points). data must outlive d.
 */
int cdec_resume(struct cdec *d, const void *data, size_t len, const struct cdec *at);
/* cdec_run into structs: point n's time at (char *)t + n * stride and its
 * value at (char *)v + n * stride. */
size_t cdec_run_pairs(struct cdec *d, int64_t *t, double *v, size_t stride, size_t max);
/* Reads the first and last timestamp and count; 0 or -EINVAL. */
int cdec_bounds(const void *data, size_t len, int64_t *mint, int64_t *maxt, uint16_t *count);

#endif
