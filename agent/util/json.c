/*
 * json.c - a small recursive-descent JSON reader.
 *
 * Parses one JSON text (RFC 8259) into a tree of struct json allocated from
 * the document's arena, so a whole Docker Engine API response or OCI
 * state.json is released with one json_doc_free. The bytes come from outside
 * (the Docker socket, files written by runtimes), so the parser never reads
 * past n, bounds nesting at JSON_MAX_DEPTH, and reports the byte offset of
 * the first problem.
 *
 * Strings are decoded to NUL-terminated UTF-8. Three things a C string cannot
 * faithfully hold are replaced by U+FFFD rather than failing the whole
 * document, because one odd container label must not blind the agent to
 * every other container: invalid UTF-8 bytes (each one), lone surrogates,
 * and \u0000. This is what Go's encoder, which writes Docker's output, does
 * for invalid UTF-8 too.
 */
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

/* Parser state for one json_parse call. */
struct jp {
	const char *s;
	size_t n;
	size_t pos;
	struct arena *arena;
	int depth;
	size_t err_off;
};

static int fail(struct jp *p, size_t off)
{
	p->err_off = off;
	return -EINVAL;
}

static int oom(struct jp *p)
{
	p->err_off = p->pos;
	return -ENOMEM;
}

static inline void skip_ws(struct jp *p)
{
	while (p->pos < p->n) {
		char c = p->s[p->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		p->pos++;
	}
}

static struct json *new_node(struct jp *p, enum json_type type)
{
	struct json *v = arena_alloc(p->arena, sizeof(*v));
	if (v) {
		memset(v, 0, sizeof(*v));
		v->type = type;
	}
	return v;
}

static int parse_value(struct jp *p, struct json **out);

/* ---- strings ---- */

static int hex4(const char *s, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static char *put_utf8(char *d, unsigned cp)
{
	if (cp < 0x80) {
		*d++ = (char)cp;
	} else if (cp < 0x800) {
		*d++ = (char)(0xc0 | (cp >> 6));
		*d++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*d++ = (char)(0xe0 | (cp >> 12));
		*d++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*d++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*d++ = (char)(0xf0 | (cp >> 18));
		*d++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*d++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*d++ = (char)(0x80 | (cp & 0x3f));
	}
	return d;
}

/*
 * Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0 if
 * it is not one: no overlongs, no surrogates, nothing above U+10FFFF.
 */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;   /* range of the second byte */
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/*
 * Parses the string literal at p->pos (which is '"') into a new arena
 * string. First finds the closing quote, so a plain ASCII string, the common
 * case, is one memcpy.
 */
static int parse_string(struct jp *p, char **out)
{
	const char *s = p->s;
	size_t start = p->pos + 1, i;
	size_t high = 0;
	bool esc = false;
	for (i = start; i < p->n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"')
			break;
		if (c == '\\') {
			esc = true;
			i++;
		} else if (c < 0x20) {
			return fail(p, i);
		} else if (c >= 0x80) {
			high++;
		}
	}
	if (i >= p->n)
		return fail(p, p->n);
	size_t end = i, len = end - start;

	/* Escapes only shrink; a bad byte grows to the 3-byte U+FFFD. */
	char *dst = arena_alloc(p->arena, len + 2 * high + 1);
	if (!dst)
		return oom(p);
	if (!esc && !high) {
		memcpy(dst, s + start, len);
		dst[len] = '\0';
		*out = dst;
		p->pos = end + 1;
		return 0;
	}

	char *d = dst;
	for (i = start; i < end;) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x80) {
			size_t k = utf8_len((const unsigned char *)s + i, end - i);
			if (k) {
				memcpy(d, s + i, k);
				d += k;
				i += k;
			} else {
				d = put_utf8(d, 0xfffd);
				i++;
			}
			continue;
		}
		if (c != '\\') {
			*d++ = (char)c;
			i++;
			continue;
		}
		/* The scan guarantees a character after the backslash. */
		size_t bs = i;
		char e = s[i + 1];
		i += 2;
		switch (e) {
		case '"': *d++ = '"'; break;
		case '\\': *d++ = '\\'; break;
		case '/': *d++ = '/'; break;
		case 'b': *d++ = '\b'; break;
		case 'f': *d++ = '\f'; break;
		case 'n': *d++ = '\n'; break;
		case 'r': *d++ = '\r'; break;
		case 't': *d++ = '\t'; break;
		case 'u': {
			unsigned cp, lo;
			if (end - i < 4 || hex4(s + i, &cp) < 0)
				return fail(p, bs);
			i += 4;
			if (cp >= 0xd800 && cp <= 0xdbff && end - i >= 6 &&
			    s[i] == '\\' && s[i + 1] == 'u' &&
			    hex4(s + i + 2, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				i += 6;
			} else if ((cp >= 0xd800 && cp <= 0xdfff) || cp == 0) {
				/* A lone surrogate; the next escape, if any, is read on its own. */
				cp = 0xfffd;
			}
			d = put_utf8(d, cp);
			break;
		}
		default:
			return fail(p, bs);
		}
	}
	*d = '\0';
	*out = dst;
	p->pos = end + 1;
	return 0;
}

/* ---- numbers ---- */

static inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Checks the JSON number grammar by hand, then converts: integers of up to
 * 15 digits exactly without strtod (Docker sends many sizes and timestamps),
 * the rest with strtod on a NUL-terminated copy because the input is not
 * NUL-terminated. strtod follows LC_NUMERIC; the agent never changes it.
 * Out-of-range values become +-HUGE_VAL or 0 as strtod makes them.
 */
static int parse_number(struct jp *p, struct json **out)
{
	const char *s = p->s;
	size_t n = p->n, start = p->pos, i = start;
	bool neg = false, simple = true;
	if (s[i] == '-') {
		neg = true;
		i++;
	}
	if (i >= n || !is_digit(s[i]))
		return fail(p, i);
	if (s[i] == '0') {
		i++;
	} else {
		while (i < n && is_digit(s[i]))
			i++;
	}
	if (i < n && s[i] == '.') {
		simple = false;
		i++;
		if (i >= n || !is_digit(s[i]))
			return fail(p, i);
		while (i < n && is_digit(s[i]))
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		simple = false;
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || !is_digit(s[i]))
			return fail(p, i);
		while (i < n && is_digit(s[i]))
			i++;
	}

	struct json *v = new_node(p, JSON_NUMBER);
	if (!v)
		return oom(p);
	size_t digits_at = start + (neg ? 1 : 0);
	if (simple && i - digits_at <= 15) {
		int64_t x = 0;
		for (size_t k = digits_at; k < i; k++)
			x = x * 10 + (s[k] - '0');
		v->number = neg ? -(double)x : (double)x;
	} else {
		char tmp[64];
		size_t len = i - start;
		char *buf = len < sizeof(tmp) ? tmp : malloc(len + 1);
		if (!buf)
			return oom(p);
		memcpy(buf, s + start, len);
		buf[len] = '\0';
		v->number = strtod(buf, NULL);
		if (buf != tmp)
			free(buf);
	}
	p->pos = i;
	*out = v;
	return 0;
}

/* ---- containers ---- */

/* An object member's key and the colon after it, at p->pos (after any
 * white space); *key is a string in the document's arena. */
static int parse_key(struct jp *p, char **key)
{
	skip_ws(p);
	if (p->pos >= p->n)
		return fail(p, p->n);
	if (p->s[p->pos] != '"')
		return fail(p, p->pos);
	int rc = parse_string(p, key);
	if (rc < 0)
		return rc;
	skip_ws(p);
	if (p->pos >= p->n)
		return fail(p, p->n);
	if (p->s[p->pos] != ':')
		return fail(p, p->pos);
	p->pos++;
	return 0;
}

/* An array or (type JSON_OBJECT) object whose opening bracket is at
 * p->pos: one node with its members linked in order under child, each
 * object member carrying its key; all of it in the document's arena. */
static int parse_container(struct jp *p, enum json_type type, struct json **out)
{
	const char close = type == JSON_OBJECT ? '}' : ']';
	if (p->depth >= JSON_MAX_DEPTH)
		return fail(p, p->pos);
	struct json *node = new_node(p, type);
	if (!node)
		return oom(p);
	struct json **tail = &node->child;
	p->pos++;
	p->depth++;
	skip_ws(p);
	if (p->pos < p->n && p->s[p->pos] == close) {
		p->pos++;
		goto done;
	}
	for (;;) {
		char *key = NULL;
		struct json *v;
		int rc = type == JSON_OBJECT ? parse_key(p, &key) : 0;
		if (rc < 0)
			return rc;
		rc = parse_value(p, &v);
		if (rc < 0)
			return rc;
		v->key = key;
		*tail = v;
		tail = &v->next;
		node->count++;
		skip_ws(p);
		if (p->pos >= p->n)
			return fail(p, p->n);
		char c = p->s[p->pos++];
		if (c == close)
			break;
		if (c != ',')
			return fail(p, p->pos - 1);
	}
done:
	p->depth--;
	*out = node;
	return 0;
}

/* Matches the literal word at p->pos; fails at the first differing byte. */
static int parse_word(struct jp *p, const char *word, struct json *v, struct json **out)
{
	size_t len = strlen(word);
	for (size_t k = 0; k < len; k++)
		if (p->pos + k >= p->n || p->s[p->pos + k] != word[k])
			return fail(p, p->pos + k);
	if (!v)
		return oom(p);
	p->pos += len;
	*out = v;
	return 0;
}

static int parse_value(struct jp *p, struct json **out)
{
	skip_ws(p);
	if (p->pos >= p->n)
		return fail(p, p->n);
	struct json *v;
	switch (p->s[p->pos]) {
	case '{':
		return parse_container(p, JSON_OBJECT, out);
	case '[':
		return parse_container(p, JSON_ARRAY, out);
	case '"':
		v = new_node(p, JSON_STRING);
		if (!v)
			return oom(p);
		*out = v;
		return parse_string(p, &v->string);
	case 't':
		v = new_node(p, JSON_BOOL);
		if (v)
			v->boolean = true;
		return parse_word(p, "true", v, out);
	case 'f':
		return parse_word(p, "false", new_node(p, JSON_BOOL), out);
	case 'n':
		return parse_word(p, "null", new_node(p, JSON_NULL), out);
	case '-':
	case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9':
		return parse_number(p, out);
	default:
		return fail(p, p->pos);
	}
}

/*
 * Parses text[0..n) into doc, which is overwritten (free a previous
 * document first). Returns 0; -EINVAL for malformed JSON, nesting deeper
 * than JSON_MAX_DEPTH or trailing data, with *err_off (if err_off is not
 * NULL) the byte offset of the problem (n for a truncated text); or -ENOMEM.
 * On error doc holds nothing to free. The tree and all its strings belong
 * to doc until json_doc_free. Any thread, one doc per thread.
 */
int json_parse(struct json_doc *doc, const char *text, size_t n, size_t *err_off)
{
	memset(doc, 0, sizeof(*doc));
	struct jp p = { .s = text, .n = n, .arena = &doc->arena };
	struct json *root = NULL;
	int rc = parse_value(&p, &root);
	if (rc == 0) {
		skip_ws(&p);
		if (p.pos != n)
			rc = fail(&p, p.pos);
	}
	if (rc < 0) {
		arena_free(&doc->arena);
		doc->root = NULL;
		if (err_off)
			*err_off = p.err_off;
		return rc;
	}
	doc->root = root;
	return 0;
}

/* Releases the tree and its strings. NULL-safe; doc may be parsed into again. */
void json_doc_free(struct json_doc *doc)
{
	if (!doc)
		return;
	arena_free(&doc->arena);
	doc->root = NULL;
}

/*
 * The first member of obj named key, or NULL when obj is NULL, not an
 * object, or has no such member. The result points into obj's document.
 */
const struct json *json_get(const struct json *obj, const char *key)
{
	if (!obj || obj->type != JSON_OBJECT || !key)
		return NULL;
	for (const struct json *m = obj->child; m; m = m->next)
		if (strcmp(m->key, key) == 0)
			return m;
	return NULL;
}

/* The string of member key, or NULL when absent or not a string. Points
 * into obj's document. */
const char *json_get_str(const struct json *obj, const char *key)
{
	const struct json *m = json_get(obj, key);
	return m && m->type == JSON_STRING ? m->string : NULL;
}

/*
 * Follows a dotted path of object keys from obj: "State.Running" is
 * json_get(json_get(obj, "State"), "Running"). Keys containing '.' cannot be
 * reached this way; use json_get. An empty path is obj itself; an empty
 * segment ("a..b") finds nothing. Returns NULL when any step is missing.
 */
const struct json *json_path(const struct json *obj, const char *path)
{
	if (!path)
		return NULL;
	const char *seg = path;
	while (obj && *seg) {
		const char *dot = strchr(seg, '.');
		size_t len = dot ? (size_t)(dot - seg) : strlen(seg);
		if (len == 0 || obj->type != JSON_OBJECT)
			return NULL;
		const struct json *m;
		for (m = obj->child; m; m = m->next)
			if (strncmp(m->key, seg, len) == 0 && m->key[len] == '\0')
				break;
		obj = m;
		if (!dot)
			break;
		seg = dot + 1;
		if (!*seg)
			return NULL;
	}
	return obj;
}
