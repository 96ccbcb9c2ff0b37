/*
 * logparse.c - what one line of a container log file says: the record
 * formats (Docker json-file, CRI as containerd, CRI-O and podman's
 * k8s-file write it), the time, the stream, the partial-line flags, the
 * level the message itself names, and escaping of bytes that are not
 * valid UTF-8 or are control characters.
 *
 * Everything here is a pure function of its input, called by the tailer
 * (logtail.c) on its own thread and by the unit tests. Nothing allocates
 * except through the caller's buf.
 */
#include "collectors/collector.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- time ------------------------------------------------------------------ */

static int digits(const char *s, size_t n, size_t at, int count, int *out)
{
	int v = 0;
	if (at + (size_t)count > n)
		return -1;
	for (int i = 0; i < count; i++) {
		char c = s[at + (size_t)i];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*out = v;
	return 0;
}

int64_t coll_log_parse_time(const char *s, size_t n)
{
	int Y, M, D, h, m, sec;
	if (digits(s, n, 0, 4, &Y) || n < 19 || s[4] != '-' || digits(s, n, 5, 2, &M) ||
	    s[7] != '-' || digits(s, n, 8, 2, &D) || (s[10] != 'T' && s[10] != ' ') ||
	    digits(s, n, 11, 2, &h) || s[13] != ':' || digits(s, n, 14, 2, &m) || s[16] != ':' ||
	    digits(s, n, 17, 2, &sec))
		return -1;
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return -1;
	size_t i = 19;
	int64_t frac = 0;
	if (i < n && (s[i] == '.' || s[i] == ',')) {
		i++;
		int nd = 0;
		while (i < n && s[i] >= '0' && s[i] <= '9') {
			if (nd < 9) {
				frac = frac * 10 + (s[i] - '0');
				nd++;
			}
			i++;
		}
		for (; nd < 9; nd++)
			frac *= 10;
	}
	int64_t off_s = 0;
	if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i < n && (s[i] == '+' || s[i] == '-')) {
		int oh, om;
		if (digits(s, n, i + 1, 2, &oh) || i + 3 >= n)
			return -1;
		size_t j = i + 3;
		if (s[j] == ':')
			j++;
		if (digits(s, n, j, 2, &om))
			return -1;
		off_s = (oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
		i = j + 2;
	} else {
		return -1;
	}
	if (i != n)
		return -1;
	struct tm tm = { .tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D,
			 .tm_hour = h, .tm_min = m, .tm_sec = sec };
	time_t t = timegm(&tm);
	/* Unix ns in an int64_t: years 1678 to 2262 (year 0000 overflowed). */
	int64_t secs = (int64_t)t - off_s;
	if (secs <= INT64_MIN / 1000000000LL || secs >= INT64_MAX / 1000000000LL)
		return -1;
	return secs * 1000000000LL + frac;
}

/* ---- Docker json-file ------------------------------------------------------- */

static size_t skip_ws(const char *s, size_t n, size_t i)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
		i++;
	return i;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void put_utf8(struct buf *b, uint32_t cp)
{
	char u[4];
	size_t k;
	if (cp < 0x80) {
		u[0] = (char)cp;
		k = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3F));
		k = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		k = 3;
	} else {
		u[0] = (char)(0xF0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		k = 4;
	}
	buf_add(b, u, k);
}

/*
 * Reads the JSON string starting at s[i] == '"'. With out, decodes it there
 * (a lone surrogate becomes U+FFFD, as Go's encoder never writes one);
 * without, only finds its end. Returns the index after the closing quote,
 * or 0 when the string is malformed.
 */
static size_t json_string(const char *s, size_t n, size_t i, struct buf *out)
{
	if (i >= n || s[i] != '"')
		return 0;
	i++;
	size_t run = i;
	while (i < n) {
		char c = s[i];
		if (c == '"') {
			if (out)
				buf_add(out, s + run, i - run);
			return i + 1;
		}
		if (c != '\\') {
			i++;
			continue;
		}
		if (out)
			buf_add(out, s + run, i - run);
		if (++i >= n)
			return 0;
		char e = s[i++];
		char ch = 0;
		switch (e) {
		case '"': ch = '"'; break;
		case '\\': ch = '\\'; break;
		case '/': ch = '/'; break;
		case 'b': ch = '\b'; break;
		case 'f': ch = '\f'; break;
		case 'n': ch = '\n'; break;
		case 'r': ch = '\r'; break;
		case 't': ch = '\t'; break;
		case 'u': {
			uint32_t cp = 0;
			if (i + 4 > n)
				return 0;
			for (int k = 0; k < 4; k++) {
				int h = hexval(s[i + (size_t)k]);
				if (h < 0)
					return 0;
				cp = cp << 4 | (uint32_t)h;
			}
			i += 4;
			if (cp >= 0xD800 && cp < 0xDC00 && i + 6 <= n && s[i] == '\\' && s[i + 1] == 'u') {
				uint32_t lo = 0;
				bool ok = true;
				for (int k = 0; k < 4; k++) {
					int h = hexval(s[i + 2 + (size_t)k]);
					ok &= h >= 0;
					lo = lo << 4 | (uint32_t)(h < 0 ? 0 : h);
				}
				if (ok && lo >= 0xDC00 && lo < 0xE000) {
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
					i += 6;
				}
			}
			if (cp >= 0xD800 && cp < 0xE000)
				cp = 0xFFFD;
			if (out)
				put_utf8(out, cp);
			run = i;
			continue;
		}
		default:
			return 0;
		}
		if (out)
			buf_putc(out, ch);
		run = i;
	}
	return 0;
}

/* Skips any JSON value at s[i]; returns the index after it or 0. */
static size_t json_skip(const char *s, size_t n, size_t i)
{
	i = skip_ws(s, n, i);
	if (i >= n)
		return 0;
	if (s[i] == '"')
		return json_string(s, n, i, NULL);
	if (s[i] == '{' || s[i] == '[') {
		int depth = 0;
		while (i < n) {
			char c = s[i];
			if (c == '"') {
				i = json_string(s, n, i, NULL);
				if (!i)
					return 0;
				continue;
			}
			if (c == '{' || c == '[') {
				if (++depth > 64)
					return 0;
			} else if (c == '}' || c == ']') {
				if (--depth == 0)
					return i + 1;
			}
			i++;
		}
		return 0;
	}
	size_t start = i;
	while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ' ')
		i++;
	return i > start ? i : 0;
}

int coll_log_parse_docker(const char *s, size_t n, struct buf *text, struct coll_log_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->time_ns = -1;
	size_t start_len = text->len;
	bool have_log = false;
	size_t i = skip_ws(s, n, 0);
	if (i >= n || s[i] != '{')
		return -EINVAL;
	i = skip_ws(s, n, i + 1);
	while (i < n && s[i] != '}') {
		size_t ks = i + 1;
		size_t ke = json_string(s, n, i, NULL);
		if (!ke)
			return -EINVAL;
		size_t klen = ke - ks - 1;
		i = skip_ws(s, n, ke);
		if (i >= n || s[i] != ':')
			return -EINVAL;
		i = skip_ws(s, n, i + 1);
		if (klen == 3 && !memcmp(s + ks, "log", 3)) {
			text->len = start_len;
			i = json_string(s, n, i, text);
			have_log = i != 0;
		} else if (klen == 6 && !memcmp(s + ks, "stream", 6)) {
			size_t vs = i + 1;
			i = json_string(s, n, i, NULL);
			if (i && i - vs - 1 == 6 && !memcmp(s + vs, "stderr", 6))
				e->stream = 1;
		} else if (klen == 4 && !memcmp(s + ks, "time", 4)) {
			size_t vs = i + 1;
			i = json_string(s, n, i, NULL);
			if (i)
				e->time_ns = coll_log_parse_time(s + vs, i - vs - 1);
		} else {
			i = json_skip(s, n, i);
		}
		if (!i)
			return -EINVAL;
		i = skip_ws(s, n, i);
		if (i < n && s[i] == ',')
			i = skip_ws(s, n, i + 1);
	}
	if (i >= n || !have_log)
		return -EINVAL;
	/* A line dockerd split (16 KiB) or one the program ended without a
	 * newline: the next record continues it. */
	size_t len = text->len - start_len;
	if (text->overflow)
		return -E2BIG;
	if (len && text->data[text->len - 1] == '\n') {
		text->len--;
		len--;
	} else {
		e->partial = true;
	}
	e->text = text->data ? text->data + start_len : "";
	e->len = len;
	return 0;
}

/* ---- CRI (containerd, CRI-O, podman k8s-file) ------------------------------- */

int coll_log_parse_cri(const char *s, size_t n, struct coll_log_entry *e)
{
	memset(e, 0, sizeof(*e));
	const char *sp1 = memchr(s, ' ', n);
	if (!sp1)
		return -EINVAL;
	e->time_ns = coll_log_parse_time(s, (size_t)(sp1 - s));
	if (e->time_ns < 0)
		return -EINVAL;
	const char *p = sp1 + 1, *end = s + n;
	const char *sp2 = memchr(p, ' ', (size_t)(end - p));
	if (!sp2)
		return -EINVAL;
	size_t sl = (size_t)(sp2 - p);
	if (sl == 6 && !memcmp(p, "stdout", 6))
		e->stream = 0;
	else if (sl == 6 && !memcmp(p, "stderr", 6))
		e->stream = 1;
	else
		return -EINVAL;
	p = sp2 + 1;
	const char *sp3 = memchr(p, ' ', (size_t)(end - p));
	const char *tag_end = sp3 ? sp3 : end;
	if (tag_end == p)
		return -EINVAL;
	/* Tags are ':'-separated; the first is P (partial) or F (full). */
	if (*p == 'P')
		e->partial = true;
	else if (*p != 'F')
		return -EINVAL;
	e->text = sp3 ? sp3 + 1 : end;
	e->len = (size_t)(end - e->text);
	return 0;
}

/* ---- levels ------------------------------------------------------------------ */

static int level_word(const char *w, size_t n)
{
	static const struct {
		const char *w;
		int level;
	} words[] = {
		{ "trace", COLL_LOG_TRACE }, { "debug", COLL_LOG_DEBUG }, { "dbg", COLL_LOG_DEBUG },
		{ "info", COLL_LOG_INFO }, { "inf", COLL_LOG_INFO }, { "notice", COLL_LOG_INFO },
		{ "information", COLL_LOG_INFO },
		{ "warn", COLL_LOG_WARN }, { "warning", COLL_LOG_WARN }, { "wrn", COLL_LOG_WARN },
		{ "error", COLL_LOG_ERROR }, { "err", COLL_LOG_ERROR }, { "eror", COLL_LOG_ERROR },
		{ "fatal", COLL_LOG_FATAL }, { "critical", COLL_LOG_FATAL }, { "crit", COLL_LOG_FATAL },
		{ "panic", COLL_LOG_FATAL }, { "emerg", COLL_LOG_FATAL }, { "alert", COLL_LOG_FATAL },
		{ "severe", COLL_LOG_ERROR },
	};
	for (size_t i = 0; i < ARRAY_LEN(words); i++)
		if (strlen(words[i].w) == n && !strncasecmp(w, words[i].w, n))
			return words[i].level;
	return COLL_LOG_NONE;
}

static bool is_letter(char c)
{
	return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

/* The value of key (a JSON member "key": "v" or logfmt key=v) in s. */
static int keyed_level(const char *s, size_t n, const char *key)
{
	size_t kl = strlen(key);
	for (size_t i = 0; i + kl < n; i++) {
		const char *hit = memchr(s + i, key[0], n - i);
		if (!hit)
			break;
		i = (size_t)(hit - s);
		if (i + kl >= n || strncasecmp(hit, key, kl))
			continue;
		bool quoted = i > 0 && s[i - 1] == '"';
		bool word_start = i == 0 || s[i - 1] == ' ' || s[i - 1] == '\t' || quoted ||
				  s[i - 1] == '{' || s[i - 1] == ',';
		if (!word_start)
			continue;
		size_t j = i + kl;
		if (quoted) {
			if (s[j] != '"')
				continue;
			j++;
			while (j < n && s[j] == ' ')
				j++;
			if (j >= n || s[j] != ':')
				continue;
			j++;
			while (j < n && s[j] == ' ')
				j++;
		} else if (s[j] != '=') {
			continue;
		} else {
			j++;
		}
		if (j < n && s[j] == '"')
			j++;
		size_t v = j;
		while (j < n && is_letter(s[j]))
			j++;
		int lv = level_word(s + v, j - v);
		if (lv != COLL_LOG_NONE)
			return lv;
	}
	return COLL_LOG_NONE;
}

int coll_log_level(const char *s, size_t n)
{
	if (n > 1024)
		n = 1024;
	size_t i = 0;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	/* Structured: a JSON object's level/severity, logfmt's level=. */
	static const char *const keys[] = { "level", "severity", "lvl", "loglevel", "log.level" };
	bool json = i < n && s[i] == '{';
	for (size_t k = 0; k < ARRAY_LEN(keys); k++) {
		int lv = keyed_level(s + i, n - i, keys[k]);
		if (lv != COLL_LOG_NONE)
			return lv;
	}
	if (json)
		return COLL_LOG_NONE;
	/* glog: I0102 15:04:05.000000 ... (I, W, E, F and four digits). */
	if (n - i >= 6 && strchr("IWEF", s[i]) && s[i] && s[i + 1] >= '0' && s[i + 1] <= '9' &&
	    s[i + 2] >= '0' && s[i + 2] <= '9' && s[i + 3] >= '0' && s[i + 3] <= '9' &&
	    s[i + 4] >= '0' && s[i + 4] <= '9' && s[i + 5] == ' ')
		return s[i] == 'I' ? COLL_LOG_INFO : s[i] == 'W' ? COLL_LOG_WARN :
		       s[i] == 'E' ? COLL_LOG_ERROR : COLL_LOG_FATAL;
	/* A prefix: among the first few words (after a timestamp), a level
	 * word in capitals ("ERROR"), in brackets ("[error]", "<warn>") or
	 * followed by a colon ("error:"). */
	for (int words = 0; words < 6 && i < n; words++) {
		while (i < n && (s[i] == ' ' || s[i] == '\t'))
			i++;
		size_t ws = i;
		while (i < n && s[i] != ' ' && s[i] != '\t')
			i++;
		size_t we = i;
		char open = ws < we ? s[ws] : 0;
		size_t a = ws, b = we;
		while (a < b && !is_letter(s[a]))
			a++;
		size_t e = a;
		while (e < b && is_letter(s[e]))
			e++;
		if (e == a)
			continue;          /* a timestamp, a number, a pid */
		int lv = level_word(s + a, e - a);
		if (lv == COLL_LOG_NONE) {
			/* "2024/01/02 12:00:00 [warn] 1#1: ..." passes; prose stops. */
			if (words >= 1 && a == ws)
				break;
			continue;
		}
		bool upper = true;
		for (size_t k = a; k < e; k++)
			upper &= s[k] >= 'A' && s[k] <= 'Z';
		bool bracket = open == '[' || open == '<' || open == '(';
		bool colon = e < n && (s[e] == ':' || s[e] == ']' || s[e] == '>' || s[e] == '|');
		if (upper || bracket || colon)
			return lv;
		break;
	}
	return COLL_LOG_NONE;
}

/* ---- escaping ------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	size_t k;
	uint32_t cp;
	if (c >= 0xC2 && c <= 0xDF) {
		k = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		k = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		k = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < k)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3F);
	}
	if ((k == 3 && (cp < 0x800 || (cp >= 0xD800 && cp < 0xE000))) ||
	    (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	return k;
}

static bool is_control(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7F;
}

bool coll_log_needs_escape(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		if (c < 0x80) {
			if (is_control(c))
				return true;
			i++;
			continue;
		}
		size_t k = utf8_len(p + i, n - i);
		if (!k)
			return true;
		i += k;
	}
	return false;
}

void coll_log_escape(const char *s, size_t n, struct buf *out)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		size_t k = c < 0x80 ? (is_control(c) ? 0 : 1) : utf8_len(p + i, n - i);
		if (k == 1 && c == '\\') {
			buf_add(out, "\\\\", 2);
			i++;
		} else if (k) {
			buf_add(out, s + i, k);
			i += k;
		} else {
			char e[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };
			buf_add(out, e, 4);
			i++;
		}
	}
}

size_t coll_log_utf8_cut(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	size_t cut = max;
	/* Back over continuation bytes to the start of a character. */
	for (int k = 0; k < 3 && cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80; k++)
		cut--;
	return cut;
}
