/*
 * buf.c - bounded growable buffers and a bump arena.
 *
 * Buffers grow by doubling up to a hard cap chosen by the owner; past it the
 * buffer refuses to grow and remembers that it overflowed, so outside input
 * can never make the agent allocate without bound.
 */
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void buf_init(struct buf *b, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->cap = cap;
}

void buf_init_mapped(struct buf *b, size_t cap)
{
	buf_init(b, cap);
	b->mapped = true;
}

/* The mapped buffer's pages, grown to size (a new mapping when p is NULL). */
static char *map_grow(char *p, size_t old, size_t size)
{
	void *m = p ? mremap(p, old, size, MREMAP_MAYMOVE)
		    : mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return m == MAP_FAILED ? NULL : m;
}

void buf_fini(struct buf *b)
{
	if (!b)
		return;
	if (b->mapped && b->data)
		munmap(b->data, b->size);
	else
		free(b->data);
	memset(b, 0, sizeof(*b));
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	b->overflow = false;
	if (b->data)
		b->data[0] = '\0';
}

int buf_reserve(struct buf *b, size_t n)
{
	if (b->overflow)
		return -ENOMEM;
	size_t need = b->len + n + 1;
	if (need <= b->size)
		return 0;
	if (need > b->cap) {
		b->overflow = true;
		return -ENOMEM;
	}
	size_t size = b->size ? b->size : b->mapped ? 65536 : 256;
	while (size < need)
		size *= 2;
	if (size > b->cap)
		size = b->cap;
	char *p = b->mapped ? map_grow(b->data, b->size, size) : realloc(b->data, size);
	if (!p) {
		b->overflow = true;
		return -ENOMEM;
	}
	b->data = p;
	b->size = size;
	return 0;
}

void buf_add(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void buf_puts(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void buf_putc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *u64_digits(uint64_t v, char tmp[U64_DIGITS_MAX])
{
	char *p = tmp + U64_DIGITS_MAX;
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return p;
}

void buf_put_u64(struct buf *b, uint64_t v)
{
	char tmp[U64_DIGITS_MAX];
	char *p = u64_digits(v, tmp);
	buf_add(b, p, (size_t)(tmp + U64_DIGITS_MAX - p));
}

/*
 * A whole number of nanoseconds in [1e-4, 1e6) (CPU, PSI and throttled
 * seconds: counters in ns or µs over 1e9 or 1e6) written without printf and
 * strtod, the bulk of a /metrics render. When m / 1e9 (a correctly rounded
 * division, as strtod is) gives v back, the decimal m/1e9 reads back as v;
 * it has at most 15 significant digits and lies within 2^-53 of v, far less
 * than half a step of the 15th digit, so it is what %.15g prints (fixed
 * notation in this range, trailing zeros dropped): the same text as the
 * general path below. False when v is not such a number.
 */
static bool put_nanos(struct buf *b, double v)
{
	double a = fabs(v);
	if (!(a >= 1e-4 && a < 1e6))
		return false;
	double r = a * 1e9;
	uint64_t m = (uint64_t)r;
	if ((double)m != r || (double)m / 1e9 != a)
		return false;
	char tmp[32];
	char *p = tmp + sizeof(tmp);
	uint32_t frac = (uint32_t)(m % 1000000000u);
	int digits = 9;
	while (frac && frac % 10 == 0) {
		frac /= 10;
		digits--;
	}
	if (frac) {
		for (int i = 0; i < digits; i++, frac /= 10)
			*--p = (char)('0' + frac % 10);
		*--p = '.';
	}
	uint64_t q = m / 1000000000u;
	do {
		*--p = (char)('0' + q % 10);
		q /= 10;
	} while (q);
	if (v < 0)
		*--p = '-';
	buf_add(b, p, (size_t)(tmp + sizeof(tmp) - p));
	return true;
}

void buf_put_double(struct buf *b, double v)
{
	if (isnan(v)) {
		buf_add(b, "NaN", 3);
		return;
	}
	if (isinf(v)) {
		buf_puts(b, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	/* Counters and byte gauges are integers: print them without printf. */
	if (v >= 0 && v < 9007199254740992.0 && v == (double)(uint64_t)v) {
		buf_put_u64(b, (uint64_t)v);
		return;
	}
	if (v < 0 && v > -9007199254740992.0 && v == (double)(int64_t)v) {
		buf_putc(b, '-');
		buf_put_u64(b, (uint64_t)-(int64_t)v);
		return;
	}
	if (put_nanos(b, v))
		return;
	char tmp[32];
	snprintf(tmp, sizeof(tmp), "%.15g", v);
	if (strtod(tmp, NULL) != v)
		snprintf(tmp, sizeof(tmp), "%.17g", v);
	buf_puts(b, tmp);
}

void buf_put_label_value(struct buf *b, const char *v)
{
	buf_putc(b, '"');
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			buf_putc(b, '\\');
		if (*v == '\n')
			buf_puts(b, "\\n");
		else
			buf_putc(b, *v);
	}
	buf_putc(b, '"');
}

bool label_pair_text(char *out, size_t size, const char *key, const char *value)
{
	size_t n = (size_t)snprintf(out, size, "%s=\"", key);
	for (const char *p = value; *p && n + 4 < size; p++) {
		if (*p == '\\' || *p == '"') {
			out[n++] = '\\';
			out[n++] = *p;
		} else if (*p == '\n') {
			out[n++] = '\\';
			out[n++] = 'n';
		} else {
			out[n++] = *p;
		}
	}
	if (n + 2 > size)
		return false;
	out[n++] = '"';
	out[n] = '\0';
	return true;
}

void buf_put_json_str(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	buf_putc(b, '"');
	const char *run = s;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		buf_add(b, run, (size_t)(s - run));
		run = s + 1;
		switch (c) {
		case '"': buf_add(b, "\\\"", 2); break;
		case '\\': buf_add(b, "\\\\", 2); break;
		case '\n': buf_add(b, "\\n", 2); break;
		case '\r': buf_add(b, "\\r", 2); break;
		case '\t': buf_add(b, "\\t", 2); break;
		default: {
			char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
			buf_add(b, esc, 6);
		}
		}
	}
	buf_add(b, run, (size_t)(s - run));
	buf_putc(b, '"');
}

char *buf_steal(struct buf *b, size_t *len)
{
	char *p = b->data;
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->size = 0;
	b->overflow = false;
	return p;
}

/* ---- arena ---- */

struct arena_block {
	struct arena_block *next;
	size_t used, size;
	max_align_t data[];
};

#define ARENA_BLOCK 65536

void *arena_alloc(struct arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	struct arena_block *blk = a->head;
	if (!blk || blk->size - blk->used < n) {
		size_t size = n > ARENA_BLOCK / 2 ? n : ARENA_BLOCK;
		blk = malloc(sizeof(*blk) + size);
		if (!blk)
			return NULL;
		blk->used = 0;
		blk->size = size;
		/* Big one-off blocks go behind the head so the head keeps its room. */
		if (a->head && size != ARENA_BLOCK) {
			blk->next = a->head->next;
			a->head->next = blk;
		} else {
			blk->next = a->head;
			a->head = blk;
		}
	}
	void *p = (char *)blk->data + blk->used;
	blk->used += n;
	a->used_bytes += n;
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = arena_alloc(a, n);
	if (p)
		memcpy(p, s, n);
	return p;
}

void arena_free(struct arena *a)
{
	if (!a)
		return;
	struct arena_block *blk = a->head;
	while (blk) {
		struct arena_block *next = blk->next;
		free(blk);
		blk = next;
	}
	a->head = NULL;
	a->used_bytes = 0;
}
