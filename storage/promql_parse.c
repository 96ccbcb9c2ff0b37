/*
 * promql_parse.c - the PromQL lexer, parser and type checker.
 *
 * The lexer follows Prometheus' state machine (lex.go) closely, because
 * users see its errors: the same tokens, the same quirks (keywords are case
 * insensitive, a duration must follow '[', Inf and NaN are numbers) and the
 * same messages at the same byte positions. The parser is recursive descent
 * with operator precedence instead of yacc, built so that the first error it
 * meets is the one Prometheus reports first: syntax errors name the token
 * and what was expected ("1:14: parse error: unexpected ...", with
 * Prometheus' contexts), and type errors come from a check pass that visits
 * the tree in the order Prometheus' checkAST does.
 */
#include "storage/promql_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- lexer ------------------------------------------------------------------ */

struct lexer {
	const char *in;
	int len, pos, start;
	int paren_depth;
	bool brace_open, bracket_open, got_colon;
	bool want_duration;          /* just after '[' */
	bool done;
	char msg[256];
};

static bool is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
static bool is_alpha(int c)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}
static bool is_alnum(int c)
{
	return is_alpha(c) || is_digit(c);
}

static int lx_peek(struct lexer *l)
{
	return l->pos < l->len ? (unsigned char)l->in[l->pos] : -1;
}
static int lx_next(struct lexer *l)
{
	return l->pos < l->len ? (unsigned char)l->in[l->pos++] : (l->pos++, -1);
}
/* Undo one lx_next (also after end of input, which still advanced). */
static void lx_back(struct lexer *l)
{
	l->pos--;
}
static bool lx_accept(struct lexer *l, const char *set)
{
	int c = lx_next(l);
	if (c > 0 && strchr(set, c))
		return true;
	lx_back(l);
	return false;
}
static void lx_accept_run(struct lexer *l, const char *set)
{
	while (lx_accept(l, set))
		;
}

static struct token lx_emit(struct lexer *l, enum tok t)
{
	struct token k = { .t = t, .pos = l->start, .len = l->pos - l->start, .s = l->in + l->start };
	l->start = l->pos;
	return k;
}

static struct token lx_errorf(struct lexer *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static struct token lx_errorf(struct lexer *l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(l->msg, sizeof(l->msg), fmt, ap);
	va_end(ap);
	l->done = true;
	return (struct token){ .t = T_ERROR, .pos = l->start, .s = l->msg };
}

/* Go's %q for one character (as in "unexpected character: %q"). */
static const char *quote_rune(char *out, size_t size, const char *s, int avail)
{
	unsigned char c = (unsigned char)*s;
	if (avail <= 0) {
		snprintf(out, size, "%s", "'\\x00'");
		return out;
	}
	if (c == '\'')
		snprintf(out, size, "'\\''");
	else if (c == '\\')
		snprintf(out, size, "'\\\\'");
	else if (c == '\n')
		snprintf(out, size, "'\\n'");
	else if (c == '\t')
		snprintf(out, size, "'\\t'");
	else if (c == '\r')
		snprintf(out, size, "'\\r'");
	else if (c < 0x20 || c == 0x7f)
		snprintf(out, size, "'\\x%02x'", c);
	else if (c < 0x80)
		snprintf(out, size, "'%c'", c);
	else {
		int n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		if (n > avail)
			n = avail;
		snprintf(out, size, "'%.*s'", n, s);
	}
	return out;
}

/* Go's scanNumber: digits (hex after 0x), fraction, exponent; true when
 * nothing alphanumeric follows. */
static bool scan_number(struct lexer *l)
{
	const char *digits = "0123456789";
	if (lx_accept(l, "0") && lx_accept(l, "xX"))
		digits = "0123456789abcdefABCDEF";
	lx_accept_run(l, digits);
	if (lx_accept(l, "."))
		lx_accept_run(l, digits);
	if (lx_accept(l, "eE")) {
		lx_accept(l, "+-");
		lx_accept_run(l, "0123456789");
	}
	return !is_alnum(lx_peek(l));
}

static bool accept_remaining_duration(struct lexer *l)
{
	if (!lx_accept(l, "smhdwy"))
		return false;
	lx_accept(l, "s");
	while (lx_accept(l, "0123456789")) {
		while (lx_accept(l, "0123456789"))
			;
		if (!lx_accept(l, "smhdw"))
			return false;
		lx_accept(l, "s");
	}
	int c = lx_next(l);
	return !is_alnum(c);
}

static struct token lex_escape_string(struct lexer *l, int quote)
{
	for (;;) {
		int c = lx_next(l);
		if (c == '\\') {
			int e = lx_next(l);
			int n = 0;
			unsigned base = 0, max = 0;
			if (e > 0 && (strchr("abfnrtv\\", e) || e == quote))
				continue;
			if (e >= '0' && e <= '7') {
				n = 3, base = 8, max = 255;
			} else if (e == 'x' || e == 'u' || e == 'U') {
				n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
				base = 16;
				max = e == 'x' ? 255 : 0x10ffff;
				e = lx_next(l);
			} else if (e < 0) {
				return lx_errorf(l, "escape sequence not terminated");
			} else {
				char q[16];
				return lx_errorf(l, "unknown escape sequence U+%04X %s", (unsigned)e,
						 quote_rune(q, sizeof(q), l->in + l->pos - 1, 1));
			}
			unsigned x = 0;
			while (n > 0) {
				unsigned d = e >= '0' && e <= '9' ? (unsigned)(e - '0')
					     : e >= 'a' && e <= 'f' ? (unsigned)(e - 'a' + 10)
					     : e >= 'A' && e <= 'F' ? (unsigned)(e - 'A' + 10) : 16;
				if (d >= base) {
					if (e < 0)
						return lx_errorf(l, "escape sequence not terminated");
					char q[16];
					return lx_errorf(l, "illegal character U+%04X %s in escape sequence",
							 (unsigned)e,
							 quote_rune(q, sizeof(q), l->in + l->pos - 1, 1));
				}
				x = x * base + d;
				if (--n > 0)
					e = lx_next(l);
			}
			if (x > max || (x >= 0xd800 && x < 0xe000))
				return lx_errorf(l, "escape sequence is an invalid Unicode code point");
			continue;
		}
		if (c < 0 || c == '\n')
			return lx_errorf(l, "unterminated quoted string");
		if (c == quote)
			return lx_emit(l, T_STRING);
	}
}

static struct token lex_raw_string(struct lexer *l)
{
	for (;;) {
		int c = lx_next(l);
		if (c < 0)
			return lx_errorf(l, "unterminated raw string");
		if (c == '`')
			return lx_emit(l, T_STRING);
	}
}

static const struct {
	const char *word;
	enum tok t;
} keywords[] = {
	{ "and", T_LAND }, { "or", T_LOR }, { "unless", T_LUNLESS }, { "atan2", T_ATAN2 },
	{ "sum", T_SUM }, { "avg", T_AVG }, { "count", T_COUNT }, { "min", T_MIN },
	{ "max", T_MAX }, { "group", T_GROUP }, { "stddev", T_STDDEV }, { "stdvar", T_STDVAR },
	{ "topk", T_TOPK }, { "bottomk", T_BOTTOMK }, { "count_values", T_COUNT_VALUES },
	{ "quantile", T_QUANTILE }, { "offset", T_OFFSET }, { "by", T_BY },
	{ "without", T_WITHOUT }, { "on", T_ON }, { "ignoring", T_IGNORING },
	{ "group_left", T_GROUP_LEFT }, { "group_right", T_GROUP_RIGHT }, { "bool", T_BOOL },
	{ "start", T_START }, { "end", T_END }, { "inf", T_NUMBER }, { "nan", T_NUMBER },
};

static struct token lex_keyword_or_ident(struct lexer *l)
{
	int c;
	while ((c = lx_next(l)) >= 0 && (is_alnum(c) || c == ':'))
		;
	lx_back(l);
	int n = l->pos - l->start;
	const char *w = l->in + l->start;
	for (size_t i = 0; i < ARRAY_LEN(keywords); i++)
		if ((int)strlen(keywords[i].word) == n && !strncasecmp(w, keywords[i].word, (size_t)n))
			return lx_emit(l, keywords[i].t);
	return lx_emit(l, memchr(w, ':', (size_t)n) ? T_METRIC_IDENT : T_IDENT);
}

static struct token lex_duration(struct lexer *l)
{
	l->want_duration = false;
	if (scan_number(l))
		return lx_errorf(l, "missing unit character in duration");
	if (!accept_remaining_duration(l))
		return lx_errorf(l, "bad duration syntax: \"%.*s\"", l->pos - l->start,
				 l->in + l->start);
	lx_back(l);
	return lx_emit(l, T_DURATION);
}

static struct token lex_inside_braces(struct lexer *l)
{
	for (;;) {
		if (l->pos < l->len && l->in[l->pos] == '#') {
			while (l->pos < l->len && l->in[l->pos] != '\n')
				l->pos++;
			l->start = l->pos;
			continue;
		}
		int c = lx_next(l);
		char q[16];
		if (c < 0)
			return lx_errorf(l, "unexpected end of input inside braces");
		if (is_space(c)) {
			l->start = l->pos;
			continue;
		}
		if (is_alpha(c)) {
			while (is_alnum(lx_peek(l)))
				l->pos++;
			return lx_emit(l, T_IDENT);
		}
		switch (c) {
		case ',':
			return lx_emit(l, T_COMMA);
		case '"':
		case '\'':
			return lex_escape_string(l, c);
		case '`':
			return lex_raw_string(l);
		case '=':
			if (lx_next(l) == '~')
				return lx_emit(l, T_EQL_REGEX);
			lx_back(l);
			return lx_emit(l, T_EQL);
		case '!': {
			int n = lx_next(l);
			if (n == '~')
				return lx_emit(l, T_NEQ_REGEX);
			if (n == '=')
				return lx_emit(l, T_NEQ);
			return lx_errorf(l, "unexpected character after '!' inside braces: %s",
					 quote_rune(q, sizeof(q), l->in + l->pos - 1, l->len - l->pos + 1));
		}
		case '{':
			return lx_errorf(l, "unexpected left brace %s",
					 quote_rune(q, sizeof(q), l->in + l->pos - 1, 1));
		case '}':
			l->brace_open = false;
			return lx_emit(l, T_RBRACE);
		default:
			return lx_errorf(l, "unexpected character inside braces: %s",
					 quote_rune(q, sizeof(q), l->in + l->pos - 1, l->len - l->pos + 1));
		}
	}
}

/* The next token; comments and spaces are skipped. */
static struct token lex_next(struct lexer *l)
{
	if (l->done)
		return (struct token){ .t = T_EOF, .pos = l->len, .s = "" };
	if (l->brace_open)
		return lex_inside_braces(l);
	if (l->want_duration)
		return lex_duration(l);
	for (;;) {
		if (l->pos < l->len && l->in[l->pos] == '#') {
			while (l->pos < l->len && l->in[l->pos] != '\n')
				l->pos++;
			l->start = l->pos;
			continue;
		}
		int c = lx_next(l);
		char q[16];
		if (c < 0) {
			lx_back(l);
			if (l->paren_depth != 0)
				return lx_errorf(l, "unclosed left parenthesis");
			if (l->bracket_open)
				return lx_errorf(l, "unclosed left bracket");
			l->done = true;
			return lx_emit(l, T_EOF);
		}
		if (is_space(c)) {
			l->start = l->pos;
			continue;
		}
		switch (c) {
		case ',':
			return lx_emit(l, T_COMMA);
		case '*':
			return lx_emit(l, T_MUL);
		case '/':
			return lx_emit(l, T_DIV);
		case '%':
			return lx_emit(l, T_MOD);
		case '+':
			return lx_emit(l, T_ADD);
		case '-':
			return lx_emit(l, T_SUB);
		case '^':
			return lx_emit(l, T_POW);
		case '=': {
			int t = lx_peek(l);
			if (t == '=') {
				l->pos++;
				return lx_emit(l, T_EQLC);
			}
			if (t == '~')
				return lx_errorf(l, "unexpected character after '=': '~'");
			return lx_emit(l, T_EQL);
		}
		case '!': {
			int t = lx_next(l);
			if (t != '=')
				return lx_errorf(l, "unexpected character after '!': %s",
						 quote_rune(q, sizeof(q), l->in + l->pos - 1,
							    l->len - l->pos + 1));
			return lx_emit(l, T_NEQ);
		}
		case '<':
			if (lx_peek(l) == '=') {
				l->pos++;
				return lx_emit(l, T_LTE);
			}
			return lx_emit(l, T_LSS);
		case '>':
			if (lx_peek(l) == '=') {
				l->pos++;
				return lx_emit(l, T_GTE);
			}
			return lx_emit(l, T_GTR);
		case '"':
		case '\'':
			return lex_escape_string(l, c);
		case '`':
			return lex_raw_string(l);
		case '(':
			l->paren_depth++;
			return lx_emit(l, T_LPAREN);
		case ')':
			if (--l->paren_depth < 0) {
				l->start = l->pos;
				return lx_errorf(l, "unexpected right parenthesis ')'");
			}
			return lx_emit(l, T_RPAREN);
		case '{':
			l->brace_open = true;
			return lx_emit(l, T_LBRACE);
		case '[': {
			if (l->bracket_open)
				return lx_errorf(l, "unexpected left bracket '['");
			l->got_colon = false;
			struct token k = lx_emit(l, T_LBRACKET);
			while (is_space(lx_peek(l)))
				l->pos++;
			l->start = l->pos;
			l->bracket_open = true;
			l->want_duration = true;
			return k;
		}
		case ']':
			if (!l->bracket_open)
				return lx_errorf(l, "unexpected right bracket ']'");
			l->bracket_open = false;
			return lx_emit(l, T_RBRACKET);
		case '@':
			return lx_emit(l, T_AT);
		default:
			break;
		}
		if (is_digit(c) || (c == '.' && is_digit(lx_peek(l)))) {
			lx_back(l);
			if (scan_number(l))
				return lx_emit(l, T_NUMBER);
			if (accept_remaining_duration(l)) {
				lx_back(l);
				return lx_emit(l, T_DURATION);
			}
			return lx_errorf(l, "bad number or duration syntax: \"%.*s\"",
					 l->pos - l->start, l->in + l->start);
		}
		if (is_alpha(c) || c == ':') {
			if (!l->bracket_open) {
				lx_back(l);
				return lex_keyword_or_ident(l);
			}
			if (l->got_colon)
				return lx_errorf(l, "unexpected colon %s",
						 quote_rune(q, sizeof(q), l->in + l->pos - 1, 1));
			l->got_colon = true;
			return lx_emit(l, T_COLON);
		}
		return lx_errorf(l, "unexpected character: %s",
				 quote_rune(q, sizeof(q), l->in + l->pos - 1, l->len - l->pos + 1));
	}
}

/* ---- parser state and errors ----------------------------------------------- */

struct parser {
	struct lexer lx;
	struct token tok;
	bool have;
	struct promql_expr *e;
	char *err;
	size_t errsize;
	bool failed;
	int nesting;                 /* parse_expr calls on the stack */
};

static void perr_at(struct parser *p, int pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void perr_at(struct parser *p, int pos, const char *fmt, ...)
{
	if (p->failed)
		return;
	p->failed = true;
	int line = 1, last_nl = -1;
	for (int i = 0; i < pos && i < p->lx.len; i++)
		if (p->lx.in[i] == '\n') {
			line++;
			last_nl = i;
		}
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->err, p->errsize, "%d:%d: parse error: %s", line, pos - last_nl, msg);
}

static struct token peek(struct parser *p)
{
	if (!p->have) {
		p->tok = lex_next(&p->lx);
		p->have = true;
		if (p->tok.t == T_ERROR)
			perr_at(p, p->tok.pos, "%s", p->tok.s);
	}
	return p->tok;
}

static struct token next(struct parser *p)
{
	struct token t = peek(p);
	if (t.t != T_EOF && t.t != T_ERROR)
		p->have = false;
	return t;
}

static bool tok_is_op(enum tok t)
{
	return t > T_OPS_START && t < T_OPS_END;
}
static bool tok_is_agg(enum tok t)
{
	return t > T_AGG_START && t < T_AGG_END;
}
static bool tok_is_kw(enum tok t)
{
	return t > T_KW_START && t < T_KW_END;
}

/* The length of the valid UTF-8 sequence of 2 to 4 bytes at s (n bytes
 * left), or 0 when s does not start one (no overlong forms, surrogates or
 * code points past U+10FFFF, as Go's utf8.DecodeRune). */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t k = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
	if (!k || k > n)
		return 0;
	unsigned char lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
	unsigned char hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t j = 2; j < k; j++)
		if ((s[j] & 0xc0) != 0x80)
			return 0;
	return k;
}

/* Go's %q of s, at most maxr runes first ("%.10q"). */
static void go_quote(struct buf *b, const char *s, size_t n, size_t maxr)
{
	buf_putc(b, '"');
	size_t runes = 0, k;
	for (size_t i = 0; i < n && runes < maxr; runes++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			buf_putc(b, '\\');
			buf_putc(b, (char)c);
			i++;
		} else if (c == '\n') {
			buf_puts(b, "\\n");
			i++;
		} else if (c == '\t') {
			buf_puts(b, "\\t");
			i++;
		} else if (c == '\r') {
			buf_puts(b, "\\r");
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			buf_printf(b, "\\x%02x", c);
			i++;
		} else if (c < 0x80) {
			buf_putc(b, (char)c);
			i++;
		} else if ((k = utf8_seq_len((const unsigned char *)s + i, n - i)) > 0) {
			buf_add(b, s + i, k);
			i += k;
		} else {
			/* Not UTF-8: one byte as \xHH, as Go does (copied raw, the
			 * bytes after it could be an unescaped '"'; found by fuzzing). */
			buf_printf(b, "\\x%02x", c);
			i++;
		}
	}
	buf_putc(b, '"');
}

/* What Prometheus' Item.desc() says about a token. */
static void tok_desc(struct buf *b, struct token t)
{
	size_t n = (size_t)t.len;
	switch (t.t) {
	case T_EOF:
		buf_puts(b, "end of input");
		return;
	case T_IDENT:
		buf_puts(b, "identifier ");
		go_quote(b, t.s, n, SIZE_MAX);
		return;
	case T_METRIC_IDENT:
		buf_puts(b, "metric identifier ");
		go_quote(b, t.s, n, SIZE_MAX);
		return;
	case T_NUMBER:
	case T_STRING:
	case T_DURATION:
		buf_puts(b, t.t == T_NUMBER ? "number " : t.t == T_STRING ? "string " : "duration ");
		go_quote(b, t.s, n, 10);
		if (n > 10)
			buf_puts(b, "...");
		return;
	default:
		break;
	}
	if (tok_is_op(t.t))
		buf_printf(b, "<op:%.*s>", t.len, t.s);
	else if (tok_is_agg(t.t))
		buf_printf(b, "<aggr:%.*s>", t.len, t.s);
	else if (tok_is_kw(t.t))
		buf_printf(b, "<%.*s>", t.len, t.s);
	else
		go_quote(b, t.s, n, 10);
}

/* "unexpected <token>[ in <context>][, expected <expected>]" at the token. */
static void unexpected(struct parser *p, const char *context, const char *expected)
{
	struct token t = peek(p);
	if (p->failed)
		return;
	struct buf b;
	buf_init(&b, 1024);
	buf_puts(&b, "unexpected ");
	tok_desc(&b, t);
	if (context && *context)
		buf_printf(&b, " in %s", context);
	if (expected && *expected)
		buf_printf(&b, ", expected %s", expected);
	perr_at(p, t.pos, "%s", b.data ? b.data : "unexpected input");
	buf_fini(&b);
}

/* ---- building nodes -------------------------------------------------------------- */

static struct node *new_node(struct parser *p, enum node_kind k, int pos)
{
	struct node *n = arena_alloc(&p->e->arena, sizeof(*n));
	if (!n) {
		perr_at(p, pos, "out of memory");
		return NULL;
	}
	memset(n, 0, sizeof(*n));
	n->kind = k;
	n->pos = pos;
	n->end = pos;
	n->depth = 1;
	return n;
}

/* Sets n's depth from a child's; false (with the error) past the limit. */
static bool deeper(struct parser *p, struct node *n, const struct node *child)
{
	if (child && child->depth + 1 > n->depth)
		n->depth = child->depth + 1;
	if (n->depth > PROMQL_MAX_DEPTH) {
		perr_at(p, n->pos, "expression nests more than %d levels deep", PROMQL_MAX_DEPTH);
		return false;
	}
	return true;
}

static char *pstrndup(struct parser *p, const char *s, size_t n)
{
	char *d = arena_alloc(&p->e->arena, n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

static void put_utf8(char **o, unsigned x)
{
	char *d = *o;
	if (x < 0x80) {
		*d++ = (char)x;
	} else if (x < 0x800) {
		*d++ = (char)(0xc0 | (x >> 6));
		*d++ = (char)(0x80 | (x & 0x3f));
	} else if (x < 0x10000) {
		*d++ = (char)(0xe0 | (x >> 12));
		*d++ = (char)(0x80 | ((x >> 6) & 0x3f));
		*d++ = (char)(0x80 | (x & 0x3f));
	} else {
		*d++ = (char)(0xf0 | (x >> 18));
		*d++ = (char)(0x80 | ((x >> 12) & 0x3f));
		*d++ = (char)(0x80 | ((x >> 6) & 0x3f));
		*d++ = (char)(0x80 | (x & 0x3f));
	}
	*o = d;
}

/* Unquotes a STRING token (the lexer has validated its escapes). */
static char *unquote(struct parser *p, struct token t)
{
	const char *s = t.s + 1;
	size_t n = (size_t)t.len - 2;
	char *out = arena_alloc(&p->e->arena, n + 1), *d = out;
	if (!out)
		return NULL;
	if (t.s[0] == '`') {
		for (size_t i = 0; i < n; i++)
			if (s[i] != '\r')
				*d++ = s[i];
		*d = '\0';
		return out;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\') {
			*d++ = s[i];
			continue;
		}
		char e = s[++i];
		unsigned x = 0;
		int k, base = 16;
		switch (e) {
		case 'a': *d++ = '\a'; continue;
		case 'b': *d++ = '\b'; continue;
		case 'f': *d++ = '\f'; continue;
		case 'n': *d++ = '\n'; continue;
		case 'r': *d++ = '\r'; continue;
		case 't': *d++ = '\t'; continue;
		case 'v': *d++ = '\v'; continue;
		case 'x': k = 2; i++; break;
		case 'u': k = 4; i++; break;
		case 'U': k = 8; i++; break;
		default:
			if (e >= '0' && e <= '7') {
				k = 3;
				base = 8;
				break;
			}
			*d++ = e;    /* \\ \" \' */
			continue;
		}
		for (int j = 0; j < k && i < n; j++, i++) {
			char c = s[i];
			unsigned v = c >= '0' && c <= '9' ? (unsigned)(c - '0')
				     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
				     : (unsigned)(c - 'A' + 10);
			x = x * (unsigned)base + v;
		}
		i--;
		if (e == 'x' || (e >= '0' && e <= '7'))
			*d++ = (char)x;    /* a byte, as Go's \x and octal escapes */
		else
			put_utf8(&d, x);
	}
	*d = '\0';
	return out;
}

/* Go's strconv.ParseInt(s, 0, 64), then ParseFloat. */
static bool parse_number(const char *s, size_t n, double *out)
{
	char tmp[128];
	if (n >= sizeof(tmp))
		n = sizeof(tmp) - 1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	char *end;
	errno = 0;
	long long v = strtoll(tmp, &end, 0);
	if (!errno && *end == '\0' && end != tmp) {
		*out = (double)v;
		return true;
	}
	errno = 0;
	double f = strtod(tmp, &end);
	if (*end != '\0' || end == tmp)
		return false;
	*out = f;
	return true;
}

/* prometheus/common model.ParseDuration: [Ny][Nw][Nd][Nh][Nm][Ns][Nms]. */
static int parse_model_duration(const char *s, size_t n, int64_t *out_ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = { { "y", 365LL * 86400000 }, { "w", 7LL * 86400000 }, { "d", 86400000 },
		      { "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 } };
	if (n == 1 && s[0] == '0') {
		*out_ms = 0;
		return 0;
	}
	if (n == 0)
		return -EINVAL;
	size_t i = 0, next_unit = 0;
	int64_t total = 0;
	while (i < n) {
		if (!is_digit((unsigned char)s[i]))
			return -EINVAL;
		int64_t v = 0;
		while (i < n && is_digit((unsigned char)s[i])) {
			if (v > INT64_MAX / 10)
				return -ERANGE;
			v = v * 10 + (s[i] - '0');
			i++;
		}
		size_t ul = 0;
		while (i + ul < n && !is_digit((unsigned char)s[i + ul]))
			ul++;
		size_t u;
		for (u = next_unit; u < ARRAY_LEN(units); u++)
			if (strlen(units[u].unit) == ul && !strncmp(units[u].unit, s + i, ul))
				break;
		if (u == ARRAY_LEN(units))
			return -EINVAL;
		if (v > INT64_MAX / units[u].ms || total > INT64_MAX - v * units[u].ms)
			return -ERANGE;
		total += v * units[u].ms;
		next_unit = u + 1;
		i += ul;
	}
	*out_ms = total;
	return 0;
}

/* A DURATION token as a positive number of milliseconds. */
static bool duration_tok(struct parser *p, struct token t, int64_t *ms)
{
	int rc = parse_model_duration(t.s, (size_t)t.len, ms);
	if (rc == -ERANGE) {
		perr_at(p, t.pos, "duration out of range");
		return false;
	}
	if (rc < 0) {
		perr_at(p, t.pos, "not a valid duration string: \"%.*s\"", t.len, t.s);
		return false;
	}
	if (*ms == 0) {
		perr_at(p, t.pos, "duration must be greater than 0");
		return false;
	}
	return true;
}

/* ---- the grammar ------------------------------------------------------------------- */

static struct node *parse_expr(struct parser *p, int minprec);

static int bin_prec(enum tok t)
{
	switch (t) {
	case T_LOR:
		return 1;
	case T_LAND:
	case T_LUNLESS:
		return 2;
	case T_EQLC: case T_NEQ: case T_LTE: case T_LSS: case T_GTE: case T_GTR:
		return 3;
	case T_ADD:
	case T_SUB:
		return 4;
	case T_MUL: case T_DIV: case T_MOD: case T_ATAN2:
		return 5;
	case T_POW:
		return 6;
	default:
		return 0;
	}
}

/* Tokens the grammar accepts as a label in grouping lists (maybe_label). */
static bool maybe_label(enum tok t)
{
	return t == T_IDENT || t == T_METRIC_IDENT || tok_is_agg(t) || tok_is_kw(t) ||
	       t == T_LAND || t == T_LOR || t == T_LUNLESS || t == T_ATAN2;
}

/* An array of n elements of elem bytes with room for one more: arr itself
 * when n < *cap, else a copy in the expression's arena twice as large (4 at
 * first), *cap updated; NULL, with "out of memory" at pos, when there is no
 * memory. The old copy stays in the arena until the expression is freed. */
static void *grow_array(struct parser *p, void *arr, size_t n, size_t *cap, size_t elem, int pos)
{
	if (n < *cap)
		return arr;
	size_t nc = *cap ? *cap * 2 : 4;
	void *na = arena_alloc(&p->e->arena, nc * elem);
	if (!na) {
		perr_at(p, pos, "out of memory");
		return NULL;
	}
	if (arr)
		memcpy(na, arr, n * elem);
	*cap = nc;
	return na;
}

/* '(' label, ... ')' into *out. */
static bool parse_grouping(struct parser *p, char ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (peek(p).t != T_LPAREN) {
		unexpected(p, "grouping opts", "\"(\"");
		return false;
	}
	next(p);
	size_t cap = 0;
	char **list = NULL;
	if (peek(p).t == T_RPAREN) {
		next(p);
		return true;
	}
	for (;;) {
		struct token t = peek(p);
		if (p->failed)
			return false;
		if (!maybe_label(t.t)) {
			unexpected(p, "grouping opts", "label");
			return false;
		}
		char *name = pstrndup(p, t.s, (size_t)t.len);
		if (!name || !promql_valid_label_name(name)) {
			unexpected(p, "grouping opts", "label");
			return false;
		}
		next(p);
		list = grow_array(p, list, *n, &cap, sizeof(*list), t.pos);
		if (!list)
			return false;
		list[(*n)++] = name;
		*out = list;
		t = peek(p);
		if (t.t == T_COMMA) {
			next(p);
			if (peek(p).t == T_RPAREN) {
				next(p);
				return true;
			}
			continue;
		}
		if (t.t == T_RPAREN) {
			next(p);
			return true;
		}
		unexpected(p, "grouping opts", "\",\" or \")\"");
		return false;
	}
}

static bool add_matcher(struct parser *p, struct node *n, enum promql_match_op op,
			const char *name, const char *value, int pos)
{
	struct promql_matcher *m = arena_alloc(&p->e->arena, (n->nm + 1) * sizeof(*m));
	if (!m) {
		perr_at(p, pos, "out of memory");
		return false;
	}
	if (n->nm)
		memcpy(m, n->m, n->nm * sizeof(*m));
	struct promql_matcher *x = &m[n->nm];
	memset(x, 0, sizeof(*x));
	x->op = op;
	x->name = name;
	x->value = value;
	if (op == PROMQL_MATCH_RE || op == PROMQL_MATCH_NRE) {
		char err[512];
		x->re = promql_regex_new(value, err, sizeof(err));
		if (!x->re) {
			perr_at(p, pos, "%s", err);
			return false;
		}
		x->posix = promql_regex_posix(x->re);
		struct promql_expr *e = p->e;
		if (e->nregexes == e->capregexes) {
			size_t nc = e->capregexes ? e->capregexes * 2 : 8;
			struct promql_regex **r = realloc(e->regexes, nc * sizeof(*r));
			if (!r) {
				promql_regex_free(x->re);
				perr_at(p, pos, "out of memory");
				return false;
			}
			e->regexes = r;
			e->capregexes = nc;
		}
		e->regexes[e->nregexes++] = x->re;
	}
	n->m = m;
	n->nm++;
	return true;
}

/* name? '{' matchers '}'? -- the name token (if any) is already consumed. */
static struct node *parse_vector_selector(struct parser *p, const struct token *name, int pos)
{
	struct node *n = new_node(p, N_VSEL, pos);
	if (!n)
		return NULL;
	n->type = PROMQL_VECTOR;
	if (name) {
		n->metric = pstrndup(p, name->s, (size_t)name->len);
		n->end = name->pos + name->len;
	}
	if (peek(p).t == T_LBRACE) {
		next(p);
		for (bool first = true;; first = false) {
			struct token t = peek(p);
			if (p->failed)
				return NULL;
			if (t.t == T_RBRACE && first) {
				next(p);
				break;
			}
			if (t.t != T_IDENT) {
				unexpected(p, "label matching", "identifier or \"}\"");
				return NULL;
			}
			next(p);
			struct token op = peek(p);
			enum promql_match_op mop;
			switch (op.t) {
			case T_EQL: mop = PROMQL_MATCH_EQ; break;
			case T_NEQ: mop = PROMQL_MATCH_NE; break;
			case T_EQL_REGEX: mop = PROMQL_MATCH_RE; break;
			case T_NEQ_REGEX: mop = PROMQL_MATCH_NRE; break;
			default:
				unexpected(p, "label matching", "label matching operator");
				return NULL;
			}
			next(p);
			struct token v = peek(p);
			if (v.t != T_STRING) {
				unexpected(p, "label matching", "string");
				return NULL;
			}
			next(p);
			char *lname = pstrndup(p, t.s, (size_t)t.len), *val = unquote(p, v);
			if (!lname || !val || !add_matcher(p, n, mop, lname, val, t.pos))
				return NULL;
			struct token sep = peek(p);
			if (sep.t == T_COMMA) {
				next(p);
				if (peek(p).t == T_RBRACE) {
					n->end = peek(p).pos + 1;
					next(p);
					break;
				}
				continue;
			}
			if (sep.t == T_RBRACE) {
				n->end = sep.pos + 1;
				next(p);
				break;
			}
			unexpected(p, "label matching", "\",\" or \"}\"");
			return NULL;
		}
	}
	if (n->metric && !add_matcher(p, n, PROMQL_MATCH_EQ, "__name__", n->metric, pos))
		return NULL;
	return n;
}

/* '(' args ')' for calls and aggregations; the '(' is next. */
static bool parse_call_args(struct parser *p, struct node ***args, size_t *nargs, int *end)
{
	*args = NULL;
	*nargs = 0;
	next(p); /* ( */
	if (peek(p).t == T_RPAREN) {
		*end = peek(p).pos + 1;
		next(p);
		return !p->failed;
	}
	size_t cap = 0;
	for (;;) {
		struct node *a = parse_expr(p, 0);
		if (!a)
			return false;
		struct node **na = grow_array(p, *args, *nargs, &cap, sizeof(**args), a->pos);
		if (!na)
			return false;
		*args = na;
		(*args)[(*nargs)++] = a;
		struct token t = peek(p);
		if (t.t == T_COMMA) {
			next(p);
			if (peek(p).t == T_RPAREN) {
				perr_at(p, t.pos, "trailing commas not allowed in function call args");
				return false;
			}
			continue;
		}
		if (t.t == T_RPAREN) {
			*end = t.pos + 1;
			next(p);
			return true;
		}
		unexpected(p, "", "");
		return false;
	}
}

static struct node *parse_aggregation(struct parser *p)
{
	struct token op = next(p);
	struct node *n = new_node(p, N_AGG, op.pos);
	if (!n)
		return NULL;
	n->type = PROMQL_VECTOR;
	n->op = op.t;
	enum tok t = peek(p).t;
	if (t == T_BY || t == T_WITHOUT) {
		next(p);
		n->without = t == T_WITHOUT;
		n->has_grouping = true;
		if (!parse_grouping(p, &n->grouping, &n->ngrouping))
			return NULL;
	}
	if (peek(p).t != T_LPAREN) {
		unexpected(p, "aggregation", "");
		return NULL;
	}
	struct node **args;
	size_t nargs;
	if (!parse_call_args(p, &args, &nargs, &n->end))
		return NULL;
	t = peek(p).t;
	if (!n->has_grouping && (t == T_BY || t == T_WITHOUT)) {
		next(p);
		n->without = t == T_WITHOUT;
		n->has_grouping = true;
		if (!parse_grouping(p, &n->grouping, &n->ngrouping))
			return NULL;
	}
	bool param = op.t == T_TOPK || op.t == T_BOTTOMK || op.t == T_QUANTILE ||
		     op.t == T_COUNT_VALUES;
	size_t want = param ? 2 : 1;
	if (nargs == 0) {
		perr_at(p, n->pos, "no arguments for aggregate expression provided");
		return NULL;
	}
	if (nargs != want) {
		perr_at(p, n->pos,
			"wrong number of arguments for aggregate expression provided, expected %zu, got %zu",
			want, nargs);
		return NULL;
	}
	n->expr = args[nargs - 1];
	if (param)
		n->param = args[0];
	return deeper(p, n, n->expr) && deeper(p, n, n->param) ? n : NULL;
}

static struct node *parse_primary(struct parser *p)
{
	struct token t = peek(p);
	if (p->failed)
		return NULL;
	switch (t.t) {
	case T_NUMBER: {
		next(p);
		struct node *n = new_node(p, N_NUMBER, t.pos);
		if (!n)
			return NULL;
		n->type = PROMQL_SCALAR;
		n->end = t.pos + t.len;
		if (!parse_number(t.s, (size_t)t.len, &n->num)) {
			perr_at(p, t.pos, "error parsing number: strconv.ParseFloat: parsing \"%.*s\": invalid syntax",
				t.len, t.s);
			return NULL;
		}
		return n;
	}
	case T_STRING: {
		next(p);
		struct node *n = new_node(p, N_STRING, t.pos);
		if (!n || !(n->str = unquote(p, t)))
			return NULL;
		n->type = PROMQL_STRING;
		n->end = t.pos + t.len;
		return n;
	}
	case T_LPAREN: {
		next(p);
		struct node *n = new_node(p, N_PAREN, t.pos);
		if (!n || !(n->expr = parse_expr(p, 0)))
			return NULL;
		if (peek(p).t != T_RPAREN) {
			unexpected(p, "", "");
			return NULL;
		}
		n->end = peek(p).pos + 1;
		next(p);
		n->type = n->expr->type;
		return deeper(p, n, n->expr) ? n : NULL;
	}
	case T_LBRACE:
		return parse_vector_selector(p, NULL, t.pos);
	case T_IDENT: {
		next(p);
		if (peek(p).t != T_LPAREN)
			return parse_vector_selector(p, &t, t.pos);
		struct node *n = new_node(p, N_CALL, t.pos);
		if (!n || !parse_call_args(p, &n->args, &n->nargs, &n->end))
			return NULL;
		char name[64];
		snprintf(name, sizeof(name), "%.*s", t.len, t.s);
		n->fn = promql_func_find(name);
		if (!n->fn || t.len >= (int)sizeof(name)) {
			perr_at(p, t.pos, "unknown function with name \"%.*s\"", t.len, t.s);
			return NULL;
		}
		n->type = n->fn->ret;
		for (size_t i = 0; i < n->nargs; i++)
			if (!deeper(p, n, n->args[i]))
				return NULL;
		return n;
	}
	case T_METRIC_IDENT:
		next(p);
		return parse_vector_selector(p, &t, t.pos);
	default:
		break;
	}
	if (tok_is_agg(t.t)) {
		/* An aggregator that no '(' or by/without follows names a metric. */
		struct lexer save = p->lx;
		struct token tk = next(p);
		enum tok after = peek(p).t;
		p->lx = save;
		p->tok = tk;
		p->have = true;
		if (after == T_LPAREN || after == T_BY || after == T_WITHOUT)
			return parse_aggregation(p);
		next(p);
		return parse_vector_selector(p, &t, t.pos);
	}
	if (t.t == T_BY || t.t == T_WITHOUT || t.t == T_OFFSET || t.t == T_START || t.t == T_END ||
	    t.t == T_LAND || t.t == T_LOR || t.t == T_LUNLESS) {
		next(p);
		return parse_vector_selector(p, &t, t.pos);
	}
	unexpected(p, "", "");
	return NULL;
}

/* The selector an offset or @ modifies, with Prometheus' complaints. */
static struct node *modifier_target(struct parser *p, struct node *e, const char *what)
{
	switch (e->kind) {
	case N_VSEL:
	case N_SUBQ:
		return e;
	case N_MSEL:
		return e->expr;
	default:
		perr_at(p, e->pos,
			"%s modifier must be preceded by an instant vector selector or range vector selector or a subquery",
			what);
		return NULL;
	}
}

static struct node *parse_postfix(struct parser *p, struct node *e)
{
	for (;;) {
		struct token t = peek(p);
		if (p->failed)
			return NULL;
		if (t.t == T_LBRACKET) {
			next(p);
			struct token d = peek(p);
			if (d.t != T_DURATION) {
				unexpected(p, "subquery selector", "duration");
				return NULL;
			}
			next(p);
			int64_t range;
			struct token c = peek(p);
			if (c.t == T_RBRACKET) {
				next(p);
				if (!duration_tok(p, d, &range))
					return NULL;
				const char *msg = NULL;
				if (e->kind != N_VSEL)
					msg = "ranges only allowed for vector selectors";
				else if (e->has_offset)
					msg = "no offset modifiers allowed before range";
				else if (e->at != AT_NONE)
					msg = "no @ modifiers allowed before range";
				if (msg) {
					perr_at(p, t.pos, "%s", msg);
					return NULL;
				}
				struct node *m = new_node(p, N_MSEL, e->pos);
				if (!m)
					return NULL;
				m->type = PROMQL_MATRIX;
				m->expr = e;
				m->range_ms = range;
				m->end = c.pos + 1;
				if (!deeper(p, m, e))
					return NULL;
				e = m;
				continue;
			}
			if (c.t != T_COLON) {
				unexpected(p, "subquery or range", "\":\" or \"]\"");
				return NULL;
			}
			next(p);
			if (!duration_tok(p, d, &range))
				return NULL;
			int64_t step = 0;
			struct token s = peek(p);
			if (s.t == T_DURATION) {
				next(p);
				if (!duration_tok(p, s, &step))
					return NULL;
				if (peek(p).t != T_RBRACKET) {
					unexpected(p, "subquery selector", "\"]\"");
					return NULL;
				}
			} else if (s.t != T_RBRACKET) {
				unexpected(p, "subquery selector", "duration or \"]\"");
				return NULL;
			}
			struct node *sq = new_node(p, N_SUBQ, e->pos);
			if (!sq)
				return NULL;
			sq->type = PROMQL_MATRIX;
			sq->expr = e;
			sq->range_ms = range;
			sq->step_ms = step;
			sq->end = peek(p).pos + 1;
			next(p);
			if (!deeper(p, sq, e))
				return NULL;
			e = sq;
			continue;
		}
		if (t.t == T_OFFSET) {
			next(p);
			bool neg = false;
			if (peek(p).t == T_SUB) {
				next(p);
				neg = true;
			}
			struct token d = peek(p);
			if (d.t != T_DURATION) {
				unexpected(p, "offset", "duration");
				return NULL;
			}
			next(p);
			int64_t off;
			if (!duration_tok(p, d, &off))
				return NULL;
			struct node *target = modifier_target(p, e, "offset");
			if (!target)
				return NULL;
			if (target->has_offset) {
				perr_at(p, e->pos, "offset may not be set multiple times");
				return NULL;
			}
			target->has_offset = true;
			target->offset_ms = neg ? -off : off;
			e->end = d.pos + d.len;
			continue;
		}
		if (t.t == T_AT) {
			next(p);
			struct token v = peek(p);
			enum at_kind kind = AT_TIME;
			double ts = 0;
			if (v.t == T_START || v.t == T_END) {
				kind = v.t == T_START ? AT_START : AT_END;
				next(p);
				if (peek(p).t != T_LPAREN) {
					unexpected(p, "@", "timestamp");
					return NULL;
				}
				next(p);
				if (peek(p).t != T_RPAREN) {
					unexpected(p, "@", "timestamp");
					return NULL;
				}
				e->end = peek(p).pos + 1;
				next(p);
			} else {
				bool neg = false;
				if (v.t == T_ADD || v.t == T_SUB) {
					neg = v.t == T_SUB;
					next(p);
					v = peek(p);
				}
				if (v.t != T_NUMBER) {
					unexpected(p, "@", "timestamp");
					return NULL;
				}
				next(p);
				if (!parse_number(v.s, (size_t)v.len, &ts)) {
					perr_at(p, v.pos, "error parsing number");
					return NULL;
				}
				if (neg)
					ts = -ts;
				e->end = v.pos + v.len;
				if (isinf(ts) || isnan(ts) || ts >= 9.2233720368547758e18 ||
				    ts <= -9.2233720368547758e18) {
					perr_at(p, e->pos, "timestamp out of bounds for @ modifier: %f", ts);
					return NULL;
				}
			}
			struct node *target = modifier_target(p, e, "@");
			if (!target)
				return NULL;
			if (target->at != AT_NONE) {
				perr_at(p, e->pos, "@ <timestamp> may not be set multiple times");
				return NULL;
			}
			target->at = kind;
			target->at_ms = (int64_t)llround(ts * 1000);
			continue;
		}
		return e;
	}
}

static struct node *parse_unary(struct parser *p)
{
	struct token t = peek(p);
	if (p->failed)
		return NULL;
	if (t.t == T_ADD || t.t == T_SUB) {
		next(p);
		struct node *x = parse_expr(p, 6);
		if (!x)
			return NULL;
		if (x->kind == N_NUMBER) {
			if (t.t == T_SUB)
				x->num = -x->num;
			x->pos = t.pos;
			return x;
		}
		struct node *n = new_node(p, N_UNARY, t.pos);
		if (!n)
			return NULL;
		n->op = t.t;
		n->expr = x;
		n->type = x->type;
		n->end = x->end;
		return deeper(p, n, x) ? n : NULL;
	}
	struct node *e = parse_primary(p);
	return e ? parse_postfix(p, e) : NULL;
}

static struct node *parse_expr_inner(struct parser *p, int minprec);

static struct node *parse_expr(struct parser *p, int minprec)
{
	if (++p->nesting > PROMQL_MAX_DEPTH) {
		perr_at(p, peek(p).pos, "expression nests more than %d levels deep", PROMQL_MAX_DEPTH);
		p->nesting--;
		return NULL;
	}
	struct node *n = parse_expr_inner(p, minprec);
	p->nesting--;
	return n;
}

static struct node *parse_expr_inner(struct parser *p, int minprec)
{
	struct node *lhs = parse_unary(p);
	while (lhs) {
		struct token op = peek(p);
		if (p->failed)
			return NULL;
		int prec = bin_prec(op.t);
		if (!prec || prec < minprec)
			break;
		next(p);
		struct node *n = new_node(p, N_BIN, lhs->pos);
		if (!n)
			return NULL;
		n->op = op.t;
		n->op_pos = op.pos;
		n->card = CARD_ONE_TO_ONE;
		if (peek(p).t == T_BOOL) {
			next(p);
			n->ret_bool = true;
		}
		enum tok t = peek(p).t;
		if (t == T_ON || t == T_IGNORING) {
			next(p);
			n->on = t == T_ON;
			n->has_matching = true;
			if (!parse_grouping(p, &n->grouping, &n->ngrouping))
				return NULL;
			t = peek(p).t;
			if (t == T_GROUP_LEFT || t == T_GROUP_RIGHT) {
				next(p);
				n->card = t == T_GROUP_LEFT ? CARD_MANY_TO_ONE : CARD_ONE_TO_MANY;
				if (peek(p).t == T_LPAREN &&
				    !parse_grouping(p, &n->include, &n->ninclude))
					return NULL;
			}
		}
		n->lhs = lhs;
		n->rhs = parse_expr(p, op.t == T_POW ? prec : prec + 1);
		if (!n->rhs)
			return NULL;
		n->end = n->rhs->end;
		n->type = lhs->type == PROMQL_SCALAR && n->rhs->type == PROMQL_SCALAR
			  ? PROMQL_SCALAR : PROMQL_VECTOR;
		if (!deeper(p, n, lhs) || !deeper(p, n, n->rhs))
			return NULL;
		lhs = n;
	}
	return lhs;
}

/* ---- type checking (Prometheus' checkAST, in its order) ------------------------------ */

static const char *documented_type(enum promql_value_type t)
{
	switch (t) {
	case PROMQL_VECTOR: return "instant vector";
	case PROMQL_MATRIX: return "range vector";
	case PROMQL_SCALAR: return "scalar";
	case PROMQL_STRING: return "string";
	default: return "none";
	}
}

static enum promql_value_type check(struct parser *p, struct node *n);

static void expect_type(struct parser *p, struct node *n, enum promql_value_type want,
			const char *context)
{
	enum promql_value_type t = check(p, n);
	if (t != want)
		perr_at(p, n->pos, "expected type %s in %s, got %s", documented_type(want), context,
			documented_type(t));
}

static bool is_comparison(enum tok t)
{
	return t == T_EQLC || t == T_NEQ || t == T_LTE || t == T_LSS || t == T_GTE || t == T_GTR;
}
static bool is_set_op(enum tok t)
{
	return t == T_LAND || t == T_LOR || t == T_LUNLESS;
}

static const char *op_text(enum tok t)
{
	switch (t) {
	case T_ADD: return "+";
	case T_SUB: return "-";
	case T_MUL: return "*";
	case T_DIV: return "/";
	case T_MOD: return "%";
	case T_POW: return "^";
	case T_EQLC: return "==";
	case T_NEQ: return "!=";
	case T_LTE: return "<=";
	case T_LSS: return "<";
	case T_GTE: return ">=";
	case T_GTR: return ">";
	case T_LAND: return "and";
	case T_LOR: return "or";
	case T_LUNLESS: return "unless";
	case T_ATAN2: return "atan2";
	case T_SUM: return "sum";
	case T_AVG: return "avg";
	case T_COUNT: return "count";
	case T_MIN: return "min";
	case T_MAX: return "max";
	case T_GROUP: return "group";
	case T_STDDEV: return "stddev";
	case T_STDVAR: return "stdvar";
	case T_TOPK: return "topk";
	case T_BOTTOMK: return "bottomk";
	case T_COUNT_VALUES: return "count_values";
	case T_QUANTILE: return "quantile";
	default: return "?";
	}
}

static enum promql_value_type check(struct parser *p, struct node *n)
{
	if (p->failed)
		return n->type;
	switch (n->kind) {
	case N_AGG:
		expect_type(p, n->expr, PROMQL_VECTOR, "aggregation expression");
		if (n->op == T_TOPK || n->op == T_BOTTOMK || n->op == T_QUANTILE)
			expect_type(p, n->param, PROMQL_SCALAR, "aggregation parameter");
		if (n->op == T_COUNT_VALUES)
			expect_type(p, n->param, PROMQL_STRING, "aggregation parameter");
		break;
	case N_BIN: {
		enum promql_value_type lt = check(p, n->lhs), rt = check(p, n->rhs);
		/* the operator's place: from the end of lhs to the start of rhs */
		int op_pos = n->lhs->end;
		while (op_pos < p->lx.len && is_space(p->lx.in[op_pos]))
			op_pos++;
		if (n->ret_bool && !is_comparison(n->op))
			perr_at(p, op_pos, "bool modifier can only be used on comparison operators");
		if (is_comparison(n->op) && !n->ret_bool && lt == PROMQL_SCALAR &&
		    rt == PROMQL_SCALAR)
			perr_at(p, op_pos, "comparisons between scalars must use BOOL modifier");
		if (is_set_op(n->op) && n->card == CARD_ONE_TO_ONE)
			n->card = CARD_MANY_TO_MANY;
		if (n->on)
			for (size_t i = 0; i < n->ngrouping; i++)
				for (size_t j = 0; j < n->ninclude; j++)
					if (!strcmp(n->grouping[i], n->include[j]))
						perr_at(p, op_pos,
							"label \"%s\" must not occur in ON and GROUP clause at once",
							n->grouping[i]);
		if (lt != PROMQL_SCALAR && lt != PROMQL_VECTOR)
			perr_at(p, n->lhs->pos,
				"binary expression must contain only scalar and instant vector types");
		if (rt != PROMQL_SCALAR && rt != PROMQL_VECTOR)
			perr_at(p, n->rhs->pos,
				"binary expression must contain only scalar and instant vector types");
		if (lt != PROMQL_VECTOR || rt != PROMQL_VECTOR) {
			if (n->ngrouping > 0)
				perr_at(p, n->pos, "vector matching only allowed between instant vectors");
			n->has_matching = false;
			n->ngrouping = 0;
			n->card = CARD_ONE_TO_ONE;
		} else if (is_set_op(n->op)) {
			if (n->card == CARD_ONE_TO_MANY || n->card == CARD_MANY_TO_ONE)
				perr_at(p, n->pos, "no grouping allowed for \"%s\" operation",
					op_text(n->op));
		}
		if ((lt == PROMQL_SCALAR || rt == PROMQL_SCALAR) && is_set_op(n->op))
			perr_at(p, n->pos, "set operator \"%s\" not allowed in binary scalar expression",
				op_text(n->op));
		break;
	}
	case N_CALL: {
		const struct func *f = n->fn;
		size_t na = (size_t)f->nargs;
		if (f->variadic == 0) {
			if (na != n->nargs)
				perr_at(p, n->pos, "expected %zu argument(s) in call to \"%s\", got %zu",
					na, f->name, n->nargs);
		} else {
			size_t min = na - 1;
			if (min > n->nargs)
				perr_at(p, n->pos,
					"expected at least %zu argument(s) in call to \"%s\", got %zu",
					min, f->name, n->nargs);
			else if (f->variadic > 0 && min + (size_t)f->variadic < n->nargs)
				perr_at(p, n->pos,
					"expected at most %zu argument(s) in call to \"%s\", got %zu",
					min + (size_t)f->variadic, f->name, n->nargs);
		}
		char ctx[96];
		snprintf(ctx, sizeof(ctx), "call to function \"%s\"", f->name);
		for (size_t i = 0; i < n->nargs; i++) {
			size_t k = i;
			if (k >= na) {
				if (f->variadic == 0)
					break;
				k = na - 1;
			}
			expect_type(p, n->args[i], f->args[k], ctx);
		}
		break;
	}
	case N_PAREN:
		check(p, n->expr);
		break;
	case N_UNARY: {
		enum promql_value_type t = check(p, n->expr);
		if (t != PROMQL_SCALAR && t != PROMQL_VECTOR)
			perr_at(p, n->pos,
				"unary expression only allowed on expressions of type scalar or instant vector, got \"%s\"",
				documented_type(t));
		break;
	}
	case N_SUBQ: {
		enum promql_value_type t = check(p, n->expr);
		if (t != PROMQL_VECTOR)
			perr_at(p, n->pos, "subquery is only allowed on instant vector, got %s instead",
				promql_value_type_name(t));
		break;
	}
	case N_MSEL:
		check(p, n->expr);
		break;
	case N_VSEL: {
		if (n->metric)
			for (size_t i = 0; i + 1 < n->nm; i++)
				if (!strcmp(n->m[i].name, "__name__"))
					perr_at(p, n->pos, "metric name must not be set twice: \"%s\" or \"%s\"",
						n->metric, n->m[i].value);
		bool nonempty = false;
		for (size_t i = 0; i < n->nm; i++)
			if (!promql_matcher_match(&n->m[i], ""))
				nonempty = true;
		if (!nonempty)
			perr_at(p, n->pos, "vector selector must contain at least one non-empty matcher");
		break;
	}
	case N_NUMBER:
	case N_STRING:
		break;
	}
	return n->type;
}

/* ---- entry points ------------------------------------------------------------------------ */

void promql_expr_free(struct promql_expr *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->nregexes; i++)
		promql_regex_free(e->regexes[i]);
	free(e->regexes);
	arena_free(&e->arena);
	free(e->text);
	free(e);
}

int promql_parse(const char *text, struct promql_expr **out, char *err, size_t errsize)
{
	*out = NULL;
	size_t len = strlen(text);
	if (len > PROMQL_MAX_QUERY_BYTES) {
		snprintf(err, errsize, "query is %zu bytes, longer than the %u allowed", len,
			 PROMQL_MAX_QUERY_BYTES);
		return -EINVAL;
	}
	struct promql_expr *e = calloc(1, sizeof(*e));
	if (!e || !(e->text = strdup(text))) {
		free(e);
		snprintf(err, errsize, "out of memory");
		return -ENOMEM;
	}
	struct parser p = { .e = e, .err = err, .errsize = errsize };
	p.lx.in = e->text;
	p.lx.len = (int)len;
	if (peek(&p).t == T_EOF) {
		perr_at(&p, 0, "no expression found in input");
	} else if (!p.failed) {
		e->root = parse_expr(&p, 0);
		if (e->root && peek(&p).t != T_EOF)
			unexpected(&p, "", "");
		if (!p.failed)
			check(&p, e->root);
	}
	if (p.failed) {
		promql_expr_free(e);
		return -EINVAL;
	}
	*out = e;
	return 0;
}

enum promql_value_type promql_expr_type(const struct promql_expr *e)
{
	return e->root->type;
}

const char *promql_value_type_name(enum promql_value_type t)
{
	switch (t) {
	case PROMQL_SCALAR: return "scalar";
	case PROMQL_VECTOR: return "vector";
	case PROMQL_MATRIX: return "matrix";
	case PROMQL_STRING: return "string";
	default: return "none";
	}
}

int promql_parse_selector(const char *text, struct promql_expr **out,
			  const struct promql_matcher **m, size_t *n, char *err, size_t errsize)
{
	int rc = promql_parse(text, out, err, errsize);
	if (rc < 0)
		return rc;
	struct node *r = (*out)->root;
	if (r->kind != N_VSEL || r->has_offset || r->at != AT_NONE) {
		snprintf(err, errsize, "1:1: parse error: expected vector selector, got %s",
			 r->kind == N_VSEL ? "a selector with modifiers" : documented_type(r->type));
		promql_expr_free(*out);
		*out = NULL;
		return -EINVAL;
	}
	*m = r->m;
	*n = r->nm;
	return 0;
}

int promql_parse_duration(const char *s, bool allow_float, int64_t *out_ms)
{
	if (!s || !*s)
		return -EINVAL;
	if (allow_float) {
		char *end;
		double d = strtod(s, &end);
		if (*end == '\0' && end != s) {
			if (!(d * 1000 < 9.2e18 && d * 1000 > -9.2e18))
				return -EINVAL;
			*out_ms = (int64_t)llround(d * 1000);
			return 0;
		}
	}
	return parse_model_duration(s, strlen(s), out_ms) < 0 ? -EINVAL : 0;
}

/* ---- printing ---------------------------------------------------------------------------- */

static void fmt_duration(struct buf *b, int64_t ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = { { "y", 365LL * 86400000 }, { "w", 7LL * 86400000 }, { "d", 86400000 },
		      { "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 } };
	if (ms == 0) {
		buf_puts(b, "0s");
		return;
	}
	for (size_t i = 0; i < ARRAY_LEN(units); i++)
		if (ms >= units[i].ms) {
			buf_printf(b, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
			ms %= units[i].ms;
		}
}

static void fmt_labels_list(struct buf *b, char **l, size_t n)
{
	buf_putc(b, '(');
	for (size_t i = 0; i < n; i++)
		buf_printf(b, "%s%s", i ? ", " : "", l[i]);
	buf_putc(b, ')');
}

static void fmt_node(struct buf *b, const struct node *n);

static void fmt_modifiers(struct buf *b, const struct node *n)
{
	if (n->at == AT_TIME) {
		buf_puts(b, " @ ");
		promql_format_time(b, n->at_ms);
	} else if (n->at == AT_START) {
		buf_puts(b, " @ start()");
	} else if (n->at == AT_END) {
		buf_puts(b, " @ end()");
	}
	if (n->has_offset) {
		buf_puts(b, " offset ");
		if (n->offset_ms < 0) {
			buf_putc(b, '-');
			fmt_duration(b, -n->offset_ms);
		} else {
			fmt_duration(b, n->offset_ms);
		}
	}
}

static void fmt_node(struct buf *b, const struct node *n)
{
	switch (n->kind) {
	case N_NUMBER:
		promql_format_value(b, n->num);
		break;
	case N_STRING:
		go_quote(b, n->str, strlen(n->str), SIZE_MAX);
		break;
	case N_VSEL: {
		if (n->metric)
			buf_puts(b, n->metric);
		size_t shown = 0;
		for (size_t i = 0; i < n->nm; i++) {
			const struct promql_matcher *m = &n->m[i];
			if (n->metric && i == n->nm - 1)
				break;
			static const char *ops[] = { "=", "!=", "=~", "!~" };
			buf_puts(b, shown++ ? ", " : "{");
			buf_printf(b, "%s%s", m->name, ops[m->op]);
			go_quote(b, m->value, strlen(m->value), SIZE_MAX);
		}
		if (shown)
			buf_putc(b, '}');
		fmt_modifiers(b, n);
		break;
	}
	case N_MSEL: {
		const struct node *v = n->expr;
		struct node tmp = *v;
		tmp.has_offset = false;
		tmp.at = AT_NONE;
		fmt_node(b, &tmp);
		buf_putc(b, '[');
		fmt_duration(b, n->range_ms);
		buf_putc(b, ']');
		fmt_modifiers(b, v);
		break;
	}
	case N_SUBQ:
		fmt_node(b, n->expr);
		buf_putc(b, '[');
		fmt_duration(b, n->range_ms);
		buf_putc(b, ':');
		if (n->step_ms)
			fmt_duration(b, n->step_ms);
		buf_putc(b, ']');
		fmt_modifiers(b, n);
		break;
	case N_CALL:
		buf_printf(b, "%s(", n->fn->name);
		for (size_t i = 0; i < n->nargs; i++) {
			if (i)
				buf_puts(b, ", ");
			fmt_node(b, n->args[i]);
		}
		buf_putc(b, ')');
		break;
	case N_AGG:
		buf_puts(b, op_text(n->op));
		if (n->has_grouping) {
			buf_puts(b, n->without ? " without " : " by ");
			fmt_labels_list(b, n->grouping, n->ngrouping);
			buf_putc(b, ' ');
		}
		buf_putc(b, '(');
		if (n->param) {
			fmt_node(b, n->param);
			buf_puts(b, ", ");
		}
		fmt_node(b, n->expr);
		buf_putc(b, ')');
		break;
	case N_BIN:
		fmt_node(b, n->lhs);
		buf_printf(b, " %s ", op_text(n->op));
		if (n->ret_bool)
			buf_puts(b, "bool ");
		if (n->has_matching) {
			buf_puts(b, n->on ? "on" : "ignoring");
			fmt_labels_list(b, n->grouping, n->ngrouping);
			buf_putc(b, ' ');
			if (n->card == CARD_MANY_TO_ONE || n->card == CARD_ONE_TO_MANY) {
				buf_puts(b, n->card == CARD_MANY_TO_ONE ? "group_left" : "group_right");
				if (n->ninclude)
					fmt_labels_list(b, n->include, n->ninclude);
				buf_putc(b, ' ');
			}
		}
		fmt_node(b, n->rhs);
		break;
	case N_UNARY:
		buf_puts(b, n->op == T_SUB ? "-" : "+");
		fmt_node(b, n->expr);
		break;
	case N_PAREN:
		buf_putc(b, '(');
		fmt_node(b, n->expr);
		buf_putc(b, ')');
		break;
	}
}

void promql_expr_format(const struct promql_expr *e, struct buf *out)
{
	fmt_node(out, e->root);
}
