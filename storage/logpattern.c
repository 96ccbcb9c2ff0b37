/*
 * logpattern.c - message templates: a log line with its variable parts
 * masked, so that "took 12ms for user 5f3a9c2e11" and "took 980ms for user
 * 0b1c2d3e4f" count as one pattern, "took <num>ms for user <hex>".
 *
 * The masking works on runs of letters and digits, which is cheap enough to
 * run on every stored line (the store keeps the template's hash in a column
 * and groups by it): a run of digits is <num>, a run of 8+ hex digits with
 * a digit in it (ids, hashes, addresses) or 0x<hex> is <hex>, digits
 * before a short unit (12ms, 5s) are <num> with the unit kept, a UUID is
 * <uuid>, a dotted IPv4 address is <ip>. Only the first
 * LOGSTORE_TEMPLATE_SCAN bytes count, so one huge line costs no more than a
 * short one.
 */
#include "storage/storage.h"

#include <stdbool.h>
#include <string.h>

#define LOGSTORE_TEMPLATE_SCAN 512

static bool is_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

static bool is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* A UUID (8-4-4-4-12 hex) at p? */
static bool uuid_at(const unsigned char *p, size_t n)
{
	static const int groups[] = { 8, 4, 4, 4, 12 };
	size_t i = 0;
	for (int g = 0; g < 5; g++) {
		for (int k = 0; k < groups[g]; k++, i++)
			if (i >= n || !is_hex(p[i]))
				return false;
		if (g < 4 && (i >= n || p[i++] != '-'))
			return false;
	}
	return i == n || !is_alnum(p[i]);
}

/* Length of a dotted IPv4 address at p (with :port), or 0. */
static size_t ipv4_at(const unsigned char *p, size_t n)
{
	size_t i = 0;
	for (int part = 0; part < 4; part++) {
		size_t d = 0;
		while (i < n && is_digit(p[i]) && d < 3) {
			i++;
			d++;
		}
		if (!d || (part < 3 && (i >= n || p[i++] != '.')))
			return 0;
	}
	if (i < n && p[i] == ':' && i + 1 < n && is_digit(p[i + 1])) {
		i++;
		while (i < n && is_digit(p[i]))
			i++;
	}
	return (i < n && (is_alnum(p[i]) || p[i] == '.')) ? 0 : i;
}

/*
 * Walks the template of msg, handing each piece (copied text or a mask) to
 * put. One walker for both the text and the hash keeps them in step.
 */
typedef void (*piece_fn)(void *arg, const char *p, size_t n);

static void walk(const char *msg, size_t len, piece_fn put, void *arg)
{
	const unsigned char *p = (const unsigned char *)msg;
	size_t n = len < LOGSTORE_TEMPLATE_SCAN ? len : LOGSTORE_TEMPLATE_SCAN;
	size_t i = 0, lit = 0;
	while (i < n) {
		if (!is_alnum(p[i]) || (i > 0 && is_alnum(p[i - 1]))) {
			i++;
			continue;
		}
		/* At the start of a run of letters and digits. */
		const char *mask = NULL;
		size_t end = i;
		size_t ip = is_digit(p[i]) ? ipv4_at(p + i, n - i) : 0;
		if (ip) {
			mask = "<ip>";
			end = i + ip;
		} else if (uuid_at(p + i, n - i)) {
			mask = "<uuid>";
			end = i + 36;
		} else {
			bool digits = true, hex = true, has_digit = false;
			while (end < n && is_alnum(p[end])) {
				digits &= is_digit(p[end]);
				hex &= is_hex(p[end]);
				has_digit |= is_digit(p[end]);
				end++;
			}
			size_t rl = end - i, dl = 0;
			while (i + dl < end && is_digit(p[i + dl]))
				dl++;
			bool unit = dl > 0 && rl - dl <= 3;
			for (size_t k = i + dl; unit && k < end; k++)
				unit = !is_digit(p[k]);
			if (digits) {
				mask = "<num>";
			} else if (unit && !(hex && rl >= 8)) {
				/* 12ms, 5s, 64kb: the number goes, the unit stays. */
				if (i > lit)
					put(arg, msg + lit, i - lit);
				put(arg, "<num>", 5);
				lit = i + dl;
				i = end;
				continue;
			}
			else if (hex && has_digit && rl >= 8)
				mask = "<hex>";
			else if (rl > 2 && p[i] == '0' && (p[i + 1] | 0x20) == 'x') {
				bool all = true;
				for (size_t k = i + 2; k < end; k++)
					all &= is_hex(p[k]);
				if (all)
					mask = "<hex>";
			}
		}
		if (mask) {
			if (i > lit)
				put(arg, msg + lit, i - lit);
			put(arg, mask, strlen(mask));
			lit = end;
		}
		i = end;
	}
	if (n > lit)
		put(arg, msg + lit, n - lit);
	if (len > n)
		put(arg, "...", 3);
}

struct text_out {
	char *out;
	size_t size, len;
};

static void put_text(void *arg, const char *p, size_t n)
{
	struct text_out *t = arg;
	if (!t->size)
		return;
	size_t room = t->size - 1 - t->len;
	if (n > room)
		n = room;
	memcpy(t->out + t->len, p, n);
	t->len += n;
}

size_t logstore_template(const char *msg, size_t len, char *out, size_t size)
{
	struct text_out t = { out, size, 0 };
	walk(msg, len, put_text, &t);
	if (size)
		out[t.len] = '\0';
	return t.len;
}

/* FNV-1a over the pieces. */
static void put_hash(void *arg, const char *p, size_t n)
{
	uint64_t *h = arg;
	for (size_t i = 0; i < n; i++) {
		*h ^= (unsigned char)p[i];
		*h *= 0x100000001b3ULL;
	}
}

uint64_t logstore_template_hash(const char *msg, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	walk(msg, len, put_hash, &h);
	/* 0 means "no pattern" in the store; SQLite integers are signed. */
	h &= 0x7fffffffffffffffULL;
	return h ? h : 1;
}
