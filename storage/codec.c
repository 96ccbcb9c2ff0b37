/*
 * codec.c - chunk encoder and decoder (format in codec.h).
 *
 * The writer appends bits into a zero-filled buffer that grows by a quarter
 * (at least 32 bytes) at a time; the reader takes up to 57 bits with one
 * unaligned big-endian load where the buffer allows and checks every read
 * against the end, so a corrupt blob returns an error, never a crash.
 */
#include "storage/codec.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define VS_DOD 0x4
#define VS_INT_OK 0x10
#define VS_HAVE_DELTA 0x20
#define HDR_BYTES(ncols) (4u + (ncols))
/* Most bits one point can take: timestamp 68, each column 3+11+64. */
#define MAX_POINT_BITS(ncols) (68u + 78u * (ncols))

static const double scales[4] = { 1, 1e3, 1e6, 1e9 };

/* The integer the value is at this scale, when that is exact. */
static inline bool to_int(double v, int sidx, int64_t *out)
{
	double x = v * scales[sidx];
	if (!(x > -9007199254740992.0 && x < 9007199254740992.0))
		return false;
	/* Round half away from zero; an inexact result only means "not an
	 * integer" below, the same on both sides. */
	int64_t i = (int64_t)(x + (x >= 0 ? 0.5 : -0.5));
	double back = sidx ? (double)i / scales[sidx] : (double)i;
	uint64_t a, b;
	memcpy(&a, &v, 8);
	memcpy(&b, &back, 8);
	if (a != b)
		return false;
	*out = i;
	return true;
}

static inline double from_int(int64_t i, int sidx)
{
	return sidx ? (double)i / scales[sidx] : (double)i;
}

static inline uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t unzigzag(uint64_t u)
{
	return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static inline uint64_t d2b(double v)
{
	uint64_t b;
	memcpy(&b, &v, 8);
	return b;
}

static inline double b2d(uint64_t b)
{
	double v;
	memcpy(&v, &b, 8);
	return v;
}

/* ---- bit writer ---------------------------------------------------------- */

static int reserve(struct cenc *e, uint32_t bits)
{
	uint64_t need = ((uint64_t)e->nbits + bits + 7) / 8;
	if (need <= e->cap)
		return 0;
	uint64_t ncap = e->cap + e->cap / 4;
	if (ncap < e->cap + 32)
		ncap = e->cap + 32;
	if (ncap < need)
		ncap = need;
	if (ncap > UINT32_MAX)
		return -ERANGE;
	uint8_t *p = realloc(e->buf, ncap);
	if (!p)
		return -ENOMEM;
	memset(p + e->cap, 0, ncap - e->cap);
	e->buf = p;
	e->cap = (uint32_t)ncap;
	return 0;
}

/* Writes the low n bits of v (n <= 64), most significant first. Room was reserved. */
static inline void put_bits(struct cenc *e, uint64_t v, unsigned n)
{
	while (n > 0) {
		unsigned bitoff = e->nbits & 7;
		unsigned room = 8 - bitoff;
		unsigned take = n < room ? n : room;
		uint8_t piece = (uint8_t)((v >> (n - take)) & ((1u << take) - 1));
		e->buf[e->nbits >> 3] |= (uint8_t)(piece << (room - take));
		e->nbits += take;
		n -= take;
	}
}

/* ---- bit reader ---------------------------------------------------------- */

/*
 * The reader keeps up to 64 upcoming bits in d->buf (most significant
 * first) and d->avail of them are real; refill tops it up a whole byte at a
 * time, with one 8-byte load when the blob has that much left.
 */
static inline void refill(struct cdec *d)
{
	if (d->avail > 56)
		return;
	if (d->byte + 8 <= d->nbytes) {
		uint64_t w;
		memcpy(&w, d->p + d->byte, 8); /* one unaligned load */
		w = __builtin_bswap64(w);
		d->buf |= w >> d->avail;
		unsigned k = (63 - d->avail) >> 3;
		d->byte += k;
		d->avail += k * 8;
		return;
	}
	while (d->avail <= 56 && d->byte < d->nbytes) {
		d->buf |= (uint64_t)d->p[d->byte++] << (56 - d->avail);
		d->avail += 8;
	}
}

/* n <= 56 bits. */
static inline __attribute__((always_inline)) int get_bits_short(struct cdec *d, unsigned n,
								 uint64_t *out)
{
	if (n == 0) {
		*out = 0;
		return 0;
	}
	refill(d);
	if (n > d->avail)
		return -EINVAL;
	*out = d->buf >> (64 - n);
	d->buf <<= n;
	d->avail -= n;
	return 0;
}

/* Not recursive, so that it inlines everywhere and a decoder copied into
 * locals (cdec_run) stays in registers. */
static inline __attribute__((always_inline)) int get_bits(struct cdec *d, unsigned n,
							  uint64_t *out)
{
	if (n <= 56)
		return get_bits_short(d, n, out);
	uint64_t hi = 0, lo = 0;
	if (get_bits_short(d, n - 32, &hi) < 0 || get_bits_short(d, 32, &lo) < 0)
		return -EINVAL;
	*out = (hi << 32) | lo;
	return 0;
}

/* Counts leading 1 bits up to max (a unary prefix) and consumes them and
 * the 0 that ends them; -EINVAL past the end. */
static inline int get_prefix(struct cdec *d, int max)
{
	refill(d);
	int ones = ~d->buf ? __builtin_clzll(~d->buf) : 64;
	if (ones >= max) {
		if ((unsigned)max > d->avail)
			return -EINVAL;
		d->buf <<= max;
		d->avail -= (unsigned)max;
		return max;
	}
	if ((unsigned)ones + 1 > d->avail)
		return -EINVAL;
	d->buf <<= ones + 1;
	d->avail -= (unsigned)ones + 1;
	return ones;
}

/* ---- timestamps ------------------------------------------------------------ */

static const unsigned ts_bits[] = { 0, 14, 17, 20, 64 };

static inline bool fits_signed(int64_t v, unsigned bits)
{
	if (bits >= 64)
		return true;
	int64_t lim = (int64_t)1 << (bits - 1);
	return v >= -lim && v < lim;
}

static void put_dod(struct cenc *e, int64_t dod)
{
	if (dod == 0) {
		put_bits(e, 0, 1);
		return;
	}
	for (unsigned k = 1; k < 4; k++) {
		if (fits_signed(dod, ts_bits[k])) {
			put_bits(e, ((1u << k) - 1) << 1, k + 1); /* k ones then a zero */
			put_bits(e, (uint64_t)dod & ((1ULL << ts_bits[k]) - 1), ts_bits[k]);
			return;
		}
	}
	put_bits(e, 0xf, 4);
	put_bits(e, (uint64_t)dod, 64);
}

static inline __attribute__((always_inline)) int get_dod(struct cdec *d, int64_t *out)
{
	int k = get_prefix(d, 4);
	if (k < 0)
		return k;
	if (k == 0) {
		*out = 0;
		return 0;
	}
	uint64_t v;
	if (get_bits(d, ts_bits[k], &v) < 0)
		return -EINVAL;
	unsigned n = ts_bits[k];
	if (n < 64 && (v >> (n - 1)) & 1)
		v |= ~0ULL << n; /* sign-extend */
	*out = (int64_t)v;
	return 0;
}

/* ---- values ----------------------------------------------------------------- */

static const unsigned int_bits[] = { 0, 6, 13, 20, 32, 64 };

static inline unsigned int_class(uint64_t zig)
{
	if (zig == 0)
		return 0;
	for (unsigned k = 1; k < 5; k++)
		if (zig < (1ULL << int_bits[k]))
			return k;
	return 5;
}

static inline unsigned int_cost(unsigned k)
{
	return (k < 5 ? k + 1 : 5) + int_bits[k];
}

static void put_int(struct cenc *e, uint64_t zig, unsigned k)
{
	if (k < 5)
		put_bits(e, ((1u << k) - 1) << 1, k + 1);
	else
		put_bits(e, 0x1f, 5);
	put_bits(e, zig, int_bits[k]);
}

/* Updates the integer view after a value (same logic on both sides);
 * isint and i say whether v is an integer at the column's scale. */
static inline void int_update_known(struct vstate *vs, bool isint, int64_t i)
{
	if (isint) {
		if (vs->flags & VS_INT_OK) {
			vs->idelta = i - vs->iprev;
			vs->flags |= VS_HAVE_DELTA;
		} else {
			vs->idelta = 0;
			vs->flags &= (uint8_t)~VS_HAVE_DELTA;
		}
		vs->iprev = i;
		vs->flags |= VS_INT_OK;
	} else {
		vs->flags &= (uint8_t)~(VS_INT_OK | VS_HAVE_DELTA);
		vs->idelta = 0;
	}
}

static inline void int_update(struct vstate *vs, double v)
{
	int64_t i = 0;
	bool isint = to_int(v, vs->scale, &i);
	int_update_known(vs, isint, i);
}

static void vs_first(struct vstate *vs, double v, uint8_t colflags)
{
	memset(vs, 0, sizeof(*vs));
	vs->prev = d2b(v);
	vs->lead = 0xff;
	vs->scale = colflags & 3;
	vs->flags = colflags & VS_DOD;
	int_update(vs, v);
}

static void put_value(struct cenc *e, struct vstate *vs, double v)
{
	uint64_t b = d2b(v);
	if (b == vs->prev) {
		put_bits(e, 0, 1);
		int_update_known(vs, vs->flags & VS_INT_OK, vs->iprev);
		return;
	}
	/* Integer candidate. */
	unsigned icost = UINT32_MAX, ik = 0;
	uint64_t izig = 0;
	int64_t iv = 0;
	bool isint = to_int(v, vs->scale, &iv);
	if ((vs->flags & VS_INT_OK) && isint) {
		int64_t delta, dd;
		if (!__builtin_sub_overflow(iv, vs->iprev, &delta) &&
		    !__builtin_sub_overflow(delta, (vs->flags & VS_DOD) ? vs->idelta : 0, &dd)) {
			izig = zigzag(dd);
			ik = int_class(izig);
			icost = 2 + int_cost(ik);
		}
	}
	/* XOR candidate. */
	uint64_t x = b ^ vs->prev;
	unsigned lz = (unsigned)__builtin_clzll(x), tz = (unsigned)__builtin_ctzll(x);
	if (lz > 31)
		lz = 31;
	bool in_window = vs->lead != 0xff && lz >= vs->lead && tz >= vs->trail;
	unsigned xcost = in_window ? 3u + (64u - vs->lead - vs->trail) : 3u + 11u + (64u - lz - tz);
	if (icost <= xcost) {
		put_bits(e, 2, 2);
		put_int(e, izig, ik);
	} else if (in_window) {
		put_bits(e, 6, 3);
		put_bits(e, x >> vs->trail, 64 - vs->lead - vs->trail);
	} else {
		unsigned len = 64 - lz - tz;
		put_bits(e, 7, 3);
		put_bits(e, lz, 5);
		put_bits(e, len & 63, 6);
		put_bits(e, x >> tz, len);
		vs->lead = (uint8_t)lz;
		vs->trail = (uint8_t)tz;
	}
	vs->prev = b;
	int_update_known(vs, isint, iv);
}

static inline bool dint(int8_t *known, int64_t *i, uint64_t bits, int scale)
{
	if (*known < 0)
		*known = to_int(b2d(bits), scale, i);
	return *known > 0;
}

static inline __attribute__((always_inline)) int get_value(struct cdec *d, struct dstate *vs,
								 double *out)
{
	int k = get_prefix(d, 3);
	if (k < 0)
		return k;
	uint64_t b;
	int8_t isint = -1;
	int64_t iv = 0;
	if (k == 0) {
		b = vs->prev;
		isint = vs->prev_int;
		iv = vs->iprev;
	} else if (k == 1) {
		if (!dint(&vs->prev_int, &vs->iprev, vs->prev, vs->scale))
			return -EINVAL;
		int c = get_prefix(d, 5);
		if (c < 0)
			return c;
		uint64_t zig;
		if (get_bits(d, int_bits[c], &zig) < 0)
			return -EINVAL;
		/* Wrapping arithmetic: a corrupt chunk may overflow, which is
		 * no reason for undefined behaviour (found by fuzzing). */
		uint64_t delta = (uint64_t)unzigzag(zig);
		if ((vs->flags & VS_DOD) && vs->has_pp &&
		    dint(&vs->pp_int, &vs->ipp, vs->pp, vs->scale))
			delta += (uint64_t)vs->iprev - (uint64_t)vs->ipp;
		iv = (int64_t)((uint64_t)vs->iprev + delta);
		isint = 1;
		b = d2b(from_int(iv, vs->scale));
	} else if (k == 2) {
		if (vs->lead == 0xff)
			return -EINVAL;
		unsigned len = 64 - vs->lead - vs->trail;
		uint64_t x;
		if (get_bits(d, len, &x) < 0)
			return -EINVAL;
		b = vs->prev ^ (x << vs->trail);
	} else {
		uint64_t lz, len, x;
		if (get_bits(d, 5, &lz) < 0 || get_bits(d, 6, &len) < 0)
			return -EINVAL;
		if (len == 0)
			len = 64;
		if (lz + len > 64)
			return -EINVAL;
		if (get_bits(d, (unsigned)len, &x) < 0)
			return -EINVAL;
		unsigned tz = (unsigned)(64 - lz - len);
		b = vs->prev ^ (x << tz);
		vs->lead = (uint8_t)lz;
		vs->trail = (uint8_t)tz;
	}
	vs->pp = vs->prev;
	vs->pp_int = vs->prev_int;
	vs->ipp = vs->iprev;
	vs->has_pp = true;
	vs->prev = b;
	vs->prev_int = isint;
	vs->iprev = iv;
	*out = b2d(b);
	return 0;
}

/* ---- encoder ------------------------------------------------------------------- */

void cenc_init(struct cenc *e, uint8_t ncols)
{
	memset(e, 0, sizeof(*e));
	e->ncols = ncols;
}

void cenc_free(struct cenc *e)
{
	if (!e)
		return;
	free(e->buf);
	uint8_t ncols = e->ncols;
	cenc_init(e, ncols);
}

static uint8_t pick_scale(double v)
{
	int64_t i;
	for (uint8_t s = 0; s < 4; s++)
		if (to_int(v, s, &i))
			return s;
	return 0;
}

int cenc_append(struct cenc *e, struct vstate *vs, int64_t t, const double *vals, bool counter)
{
	if (e->count >= CODEC_MAX_POINTS)
		return -ERANGE;
	int64_t delta = 0, dod = 0;
	if (e->count > 0) {
		if (t <= e->t_prev)
			return -EEXIST;
		if (__builtin_sub_overflow(t, e->t_prev, &delta) ||
		    __builtin_sub_overflow(delta, e->t_delta, &dod))
			return -ERANGE;
	}
	int rc = reserve(e, (e->count ? 0 : HDR_BYTES(e->ncols) * 8) + MAX_POINT_BITS(e->ncols));
	if (rc < 0)
		return rc;
	if (e->count == 0) {
		e->buf[0] = CODEC_VERSION;
		e->buf[1] = e->ncols;
		for (unsigned c = 0; c < e->ncols; c++) {
			uint8_t f = (uint8_t)(pick_scale(vals[c]) | (counter ? VS_DOD : 0));
			e->buf[4 + c] = f;
			vs_first(&vs[c], vals[c], f);
		}
		e->nbits = HDR_BYTES(e->ncols) * 8;
		put_bits(e, (uint64_t)t, 64);
		for (unsigned c = 0; c < e->ncols; c++)
			put_bits(e, d2b(vals[c]), 64);
		e->t_first = t;
		e->t_delta = 0;
	} else {
		put_dod(e, dod);
		for (unsigned c = 0; c < e->ncols; c++)
			put_value(e, &vs[c], vals[c]);
		e->t_delta = delta;
	}
	e->t_prev = t;
	e->count++;
	e->buf[2] = (uint8_t)(e->count & 0xff);
	e->buf[3] = (uint8_t)(e->count >> 8);
	return 0;
}

uint8_t *cenc_take(struct cenc *e, size_t *len)
{
	*len = cenc_bytes(e);
	uint8_t *p = e->buf;
	if (p && *len < e->cap) {
		uint8_t *q = realloc(p, *len);
		if (q)
			p = q;
	}
	e->buf = NULL;
	uint8_t ncols = e->ncols;
	cenc_init(e, ncols);
	return p;
}

int cenc_restore(struct cenc *e, struct vstate *vs, const void *data, size_t len, bool counter)
{
	struct cdec d;
	int rc = cdec_init(&d, data, len);
	if (rc < 0)
		return rc;
	if (d.ncols != e->ncols)
		return -EINVAL;
	cenc_free(e);
	int64_t t;
	double vals[CODEC_MAX_COLS];
	while ((rc = cdec_next(&d, &t, vals)) > 0) {
		/* The first value and counter pick the same column flags again. */
		rc = cenc_append(e, vs, t, vals, counter);
		if (rc < 0)
			break;
	}
	if (rc < 0) {
		cenc_free(e);
		return rc == -ENOMEM ? rc : -EINVAL;
	}
	return 0;
}

int cenc_states(const struct cenc *e, struct vstate *vs)
{
	if (!e->count)
		return 0;
	struct cdec d;
	if (cdec_init(&d, e->buf, cenc_bytes(e)) < 0)
		return -EINVAL;
	int64_t t;
	double vals[CODEC_MAX_COLS];
	int rc;
	while ((rc = cdec_next(&d, &t, vals)) > 0)
		;
	if (rc < 0 || d.i != e->count)
		return -EINVAL;
	/* The encoder's state after a value depends on it and the one before. */
	for (unsigned c = 0; c < e->ncols; c++) {
		struct dstate *ds = &d.vs[c];
		struct vstate *v = &vs[c];
		memset(v, 0, sizeof(*v));
		v->prev = ds->prev;
		v->lead = ds->lead;
		v->trail = ds->trail;
		v->scale = ds->scale;
		v->flags = ds->flags & VS_DOD;
		if (dint(&ds->prev_int, &ds->iprev, ds->prev, ds->scale)) {
			v->flags |= VS_INT_OK;
			v->iprev = ds->iprev;
			if (ds->has_pp && dint(&ds->pp_int, &ds->ipp, ds->pp, ds->scale)) {
				v->flags |= VS_HAVE_DELTA;
				v->idelta = ds->iprev - ds->ipp;
			}
		}
	}
	return 0;
}

/* ---- decoder --------------------------------------------------------------------- */

int cdec_init(struct cdec *d, const void *data, size_t len)
{
	const uint8_t *p = data;
	memset(d, 0, sizeof(*d));
	if (len < 4 || p[0] != CODEC_VERSION || p[1] == 0 || p[1] > CODEC_MAX_COLS ||
	    len < HDR_BYTES(p[1]))
		return -EINVAL;
	d->p = p;
	d->ncols = p[1];
	d->count = (uint16_t)(p[2] | (p[3] << 8));
	d->nbytes = len;
	d->byte = HDR_BYTES(d->ncols);
	for (unsigned c = 0; c < d->ncols; c++) {
		if (p[4 + c] & ~(3 | VS_DOD))
			return -EINVAL;
		d->vs[c].scale = p[4 + c] & 3;
		d->vs[c].flags = p[4 + c] & VS_DOD;
		d->vs[c].lead = 0xff;
	}
	return 0;
}

static inline __attribute__((always_inline)) int next_point(struct cdec *d, int64_t *t,
							      double *vals)
{
	if (d->i >= d->count)
		return 0;
	if (d->i == 0) {
		uint64_t v;
		if (get_bits(d, 64, &v) < 0)
			return -EINVAL;
		d->t = (int64_t)v;
		for (unsigned c = 0; c < d->ncols; c++) {
			if (get_bits(d, 64, &v) < 0)
				return -EINVAL;
			vals[c] = b2d(v);
			d->vs[c].prev = v;
			d->vs[c].prev_int = -1;
			d->vs[c].has_pp = false;
		}
	} else {
		int64_t dod;
		if (get_dod(d, &dod) < 0)
			return -EINVAL;
		if (__builtin_add_overflow(d->t_delta, dod, &d->t_delta) || d->t_delta <= 0 ||
		    __builtin_add_overflow(d->t, d->t_delta, &d->t))
			return -EINVAL;
		for (unsigned c = 0; c < d->ncols; c++)
			if (get_value(d, &d->vs[c], &vals[c]) < 0)
				return -EINVAL;
	}
	*t = d->t;
	d->i++;
	return 1;
}

int cdec_bounds(const void *data, size_t len, int64_t *mint, int64_t *maxt, uint16_t *count)
{
	struct cdec d;
	if (cdec_init(&d, data, len) < 0 || d.count == 0)
		return -EINVAL;
	int64_t t = 0;
	double vals[CODEC_MAX_COLS];
	int rc;
	bool first = true;
	while ((rc = cdec_next(&d, &t, vals)) > 0) {
		if (first)
			*mint = t;
		first = false;
	}
	if (rc < 0)
		return rc;
	*maxt = t;
	*count = d.count;
	return 0;
}

int cdec_next(struct cdec *d, int64_t *t, double *vals)
{
	return next_point(d, t, vals);
}

/* One point the general way, out of line so that run1's loop keeps its
 * state in registers. */
static __attribute__((noinline)) int slow_point(struct cdec *d, int64_t *t, double *v)
{
	double vals[CODEC_MAX_COLS];
	int rc = next_point(d, t, vals);
	if (rc > 0)
		*v = vals[d->ncols - 1];
	return rc;
}

/*
 * The decoding loop for one-column chunks (raw samples), the engine's hot
 * path. The points that make up nearly all of a chunk (a timestamp
 * delta-of-delta up to 20 bits; a repeated value, an integer delta up to 32
 * bits, or an XOR that fits in the bits loaded) are read with the decoder's
 * state in local variables, refilled 57 or more bits at a time with one
 * unaligned load and every field taken by shifts. Any other point (the
 * first, a 64-bit field, the blob's last 8 bytes, corrupt data) is left
 * unconsumed for slow_point, which reads it the general way; the result is
 * the same either way. Point n's time goes to (char *)tp + n * stride and
 * its value to (char *)vp + n * stride.
 */
static inline __attribute__((always_inline)) size_t run1(struct cdec *d, int64_t *tp, double *vp,
							  size_t stride, size_t max)
{
	/* int_bits[] a byte each, and the bits an integer-coded value takes by
	 * class ('10', the class prefix, the payload: 3, 10, 18, 26, 39). */
	const uint64_t INT_BITS_PACKED = 0x20140d0600ULL;
	const uint64_t INT_USED_PACKED = 0x271a120a03ULL;
	size_t n = 0;
	const uint8_t *p = d->p;
	const size_t last8 = d->nbytes >= 8 ? d->nbytes - 8 : 0; /* byte <= last8: 8 bytes load */
	struct dstate *vs = &d->vs[0];
	const int scale = vs->scale;
	const bool dodf = vs->flags & VS_DOD;
	while (n < max && d->i < d->count) {
		/* No overflow is possible below while the time and its step stay
		 * under these (a step grows by under 2^20 a point, 2^16 points). */
		if (d->i > 0 && d->nbytes >= 8 && d->t < ((int64_t)1 << 62) &&
		    d->t_delta < ((int64_t)1 << 40)) {
			uint64_t buf = d->buf, prev = vs->prev, pp = vs->pp;
			unsigned avail = d->avail, lead = vs->lead, trail = vs->trail;
			size_t byte = d->byte;
			int64_t t = d->t, td = d->t_delta, iprev = vs->iprev, ipp = vs->ipp;
			int8_t prev_int = vs->prev_int;
			/* Before a second value there is none before the previous one. */
			int8_t pp_int = vs->has_pp ? vs->pp_int : 0;
			size_t left = max - n;
			if (left > (size_t)(d->count - d->i))
				left = d->count - d->i;
			const size_t left0 = left;
			char *tout = (char *)tp + n * stride, *vout = (char *)vp + n * stride;
			while (left && byte <= last8) {
				uint64_t w;
				memcpy(&w, p + byte, 8);
				buf |= __builtin_bswap64(w) >> avail; /* the stream's next bits */
				unsigned add = (63 - avail) >> 3;
				byte += add;
				avail += add * 8;
				/* Where the point starts, to leave it whole to slow_point. */
				const uint64_t buf0 = buf;
				const unsigned avail0 = avail;
				const size_t byte0 = byte;
				/* timestamp: '0' | '10'+14 | '110'+17 | '1110'+20 */
				unsigned k = (unsigned)__builtin_clzll(~buf | 1);
				if (k >= 4)
					break;
				int64_t dod = 0;
				if (k) {
					/* ts_bits[k] is 11 + 3k: arithmetic, not a load, on
					 * the chain each point waits for */
					unsigned nb = 11 + 3 * k;
					dod = (int64_t)(buf << (k + 1)) >> (64 - nb); /* sign-extended */
					buf <<= 12 + 4 * k;
					avail -= 12 + 4 * k;
				} else {
					buf <<= 1;
					avail -= 1;
				}
				int64_t ntd = td + dod;
				if (ntd <= 0)
					goto slow;
				/* An integer value takes up to 39 bits: top up when short. */
				if (avail < 39) {
					if (byte > last8)
						goto slow;
					memcpy(&w, p + byte, 8);
					buf |= __builtin_bswap64(w) >> avail;
					add = (63 - avail) >> 3;
					byte += add;
					avail += add * 8;
				}
				unsigned vk = (unsigned)__builtin_clzll(~buf | 1);
				uint64_t b;
				int8_t isint;
				int64_t iv;
				if (vk == 1) {           /* '10': an integer delta */
					unsigned c = (unsigned)__builtin_clzll(~(buf << 2) | 1);
					if (c >= 5 || !dint(&prev_int, &iprev, prev, scale))
						goto slow;
					/* int_bits[c] and int_used[c] out of constants
					 * rather than loads, as above */
					unsigned nb = (unsigned)(INT_BITS_PACKED >> (8 * c)) & 0xff;
					unsigned used = (unsigned)(INT_USED_PACKED >> (8 * c)) & 0xff;
					uint64_t zig = (buf << (3 + c)) >> (63 - nb) >> 1;
					uint64_t delta = (uint64_t)unzigzag(zig); /* wrapping, as in get_value */
					if (dodf && dint(&pp_int, &ipp, pp, scale))
						delta += (uint64_t)iprev - (uint64_t)ipp;
					iv = (int64_t)((uint64_t)iprev + delta);
					isint = 1;
					b = d2b(from_int(iv, scale));
					buf <<= used;
					avail -= used;
				} else if (vk == 0) {    /* '0': the same value */
					b = prev;
					isint = prev_int;
					iv = iprev;
					buf <<= 1;
					avail -= 1;
				} else if (vk == 2) {    /* '110': XOR in the previous window */
					unsigned len = 64u - lead - trail;
					if (lead == 0xff || len == 0 || len + 3 > avail)
						goto slow;
					b = prev ^ (((buf << 3) >> (64 - len)) << trail);
					isint = -1;
					iv = 0;
					buf <<= len + 3;
					avail -= len + 3;
				} else {                 /* '111': XOR with a new window */
					unsigned lz = (unsigned)((buf << 3) >> 59);
					unsigned len = (unsigned)((buf << 8) >> 58);
					if (len == 0 || lz + len > 64 || len + 14 > avail)
						goto slow;
					unsigned tz = 64 - lz - len;
					b = prev ^ (((buf << 14) >> (64 - len)) << tz);
					lead = lz;
					trail = tz;
					isint = -1;
					iv = 0;
					buf <<= len + 14;
					avail -= len + 14;
				}
				pp = prev;
				pp_int = prev_int;
				ipp = iprev;
				prev = b;
				prev_int = isint;
				iprev = iv;
				td = ntd;
				t += ntd;
				memcpy(tout, &t, 8);
				memcpy(vout, &b, 8);
				tout += stride;
				vout += stride;
				left--;
				continue;
slow:
				buf = buf0;
				avail = avail0;
				byte = byte0;
				break;
			}
			size_t done = left0 - left;
			d->buf = buf;
			d->avail = avail;
			d->byte = byte;
			vs->prev = prev;
			vs->iprev = iprev;
			vs->prev_int = prev_int;
			vs->lead = (uint8_t)lead;
			vs->trail = (uint8_t)trail;
			if (done) {
				d->t = t;
				d->t_delta = td;
				d->i = (uint16_t)(d->i + done);
				vs->pp = pp;
				vs->ipp = ipp;
				vs->pp_int = pp_int;
				vs->has_pp = true;
				n += done;
			} else if (vs->has_pp) {
				vs->pp_int = pp_int;   /* may have been worked out */
				vs->ipp = ipp;
			}
			if (n >= max || d->i >= d->count)
				break;
		}
		if (slow_point(d, (int64_t *)((char *)tp + n * stride),
			       (double *)((char *)vp + n * stride)) <= 0) {
			d->i = d->count; /* corrupt: stop here */
			break;
		}
		n++;
	}
	return n;
}

/* Bit fiddling is much cheaper with BMI2's shifts and LZCNT: a second copy
 * for CPUs that have them (x86-64-v3, 2013 on), picked at load time. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HOT_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define HOT_CLONES
#endif

/* Roll-up chunks: point by point the general way; corrupt data ends the
 * chunk (a later call must not resume in the middle of a bad point). */
static size_t run_cols(struct cdec *d, int64_t *t, double *v, size_t stride, size_t max)
{
	size_t n = 0;
	double vals[CODEC_MAX_COLS];
	while (n < max) {
		int rc = next_point(d, (int64_t *)((char *)t + n * stride), vals);
		if (rc <= 0) {
			if (rc < 0)
				d->i = d->count;
			break;
		}
		*(double *)((char *)v + n++ * stride) = vals[d->ncols - 1];
	}
	return n;
}

HOT_CLONES size_t cdec_run(struct cdec *d, int64_t *t, double *v, size_t max)
{
	if (d->ncols != 1)
		return run_cols(d, t, v, sizeof(*t), max);
	return run1(d, t, v, sizeof(*t), max);
}

HOT_CLONES size_t cdec_run_pairs(struct cdec *d, int64_t *t, double *v, size_t stride,
				 size_t max)
{
	if (d->ncols != 1)
		return run_cols(d, t, v, stride, max);
	if (stride == 16)  /* (t, v) structs: a constant stride, a tighter loop */
		return run1(d, t, v, 16, max);
	return run1(d, t, v, stride, max);
}

int cdec_resume(struct cdec *d, const void *data, size_t len, const struct cdec *at)
{
	int rc = cdec_init(d, data, len);
	if (rc < 0)
		return rc;
	/* buf holds avail bits not yet consumed, loaded from before byte */
	size_t bit = at->byte * 8 - at->avail;
	if (at->ncols != d->ncols || at->i > d->count || bit > len * 8 || bit < d->byte * 8)
		return -EINVAL;
	for (unsigned c = 0; c < d->ncols; c++)
		if (at->vs[c].scale != d->vs[c].scale || at->vs[c].flags != d->vs[c].flags)
			return -EINVAL;
	uint16_t count = d->count;
	*d = *at;
	d->p = data;
	d->nbytes = len;
	d->count = count;
	/* reload from the bit position: the byte at's buffer ended in may
	 * have gained bits since */
	d->byte = bit / 8;
	d->buf = 0;
	d->avail = 0;
	uint64_t skip;
	if (bit % 8 && get_bits(d, bit % 8, &skip) < 0)
		return -EINVAL;
	return 0;
}
