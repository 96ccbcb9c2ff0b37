/*
 * template.c - the subset of Go's text/template that Prometheus rule
 * annotations and labels use, for rules and for notification messages.
 *
 * A template is text with actions in {{ }}. An action is a pipeline:
 * commands separated by "|", the value of each passed as the last argument
 * of the next. A command is an operand alone or a function and its
 * arguments. Operands: $name and $name.field (variables the caller defines
 * through a lookup callback: $labels, $value, ...), .Name and .Name.field
 * (the same variables, as Prometheus' .Labels and .Value: the first letter
 * is lowered), "strings", `raw strings`, numbers and parenthesised
 * pipelines. Functions: humanize, humanize1024, humanizePercentage,
 * humanizeDuration, humanizeTimestamp, printf, toUpper, toLower, title,
 * index. {{- and -}} trim white space; Go's comment actions are dropped.
 * Everything else Go templates have (if, range, with, define, variables
 * assigned with :=, the other functions) is refused when the template is
 * parsed, with a message naming the line and column and listing the subset,
 * so a rule never fails later for using it.
 *
 * Output follows Go: numbers print as fmt's %v does (shortest form, an
 * exponent from 1e+06 up and below 1e-04), printf follows fmt's verbs
 * (including its %!verb(type=value) complaints), a missing label is "" as
 * Prometheus' missingkey=zero gives. Parsed templates are immutable and may
 * be executed by several threads at once.
 */
#include "alerting/alerting.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TMPL_MAX_BYTES (64u << 10)
#define TMPL_MAX_DEPTH 16
#define TMPL_MAX_ARGS 32

enum arg_kind { ARG_VAR, ARG_STR, ARG_NUM, ARG_PIPE };

struct tpipe;
struct targ {
	enum arg_kind kind;
	const char *var, *field;   /* VAR: name, field or NULL */
	const char *str;           /* STR */
	double num;                /* NUM */
	struct tpipe *pipe;        /* PIPE */
	struct targ *next;
};

enum fn_id {
	FN_NONE = -1, FN_HUMANIZE, FN_HUMANIZE1024, FN_HUMANIZE_PCT, FN_HUMANIZE_DUR,
	FN_HUMANIZE_TS, FN_PRINTF, FN_TOUPPER, FN_TOLOWER, FN_TITLE, FN_INDEX,
};
static const struct {
	const char *name;
	int min, max;              /* arguments, counting the piped one; max -1: any */
} fns[] = {
	[FN_HUMANIZE] = { "humanize", 1, 1 },
	[FN_HUMANIZE1024] = { "humanize1024", 1, 1 },
	[FN_HUMANIZE_PCT] = { "humanizePercentage", 1, 1 },
	[FN_HUMANIZE_DUR] = { "humanizeDuration", 1, 1 },
	[FN_HUMANIZE_TS] = { "humanizeTimestamp", 1, 1 },
	[FN_PRINTF] = { "printf", 1, TMPL_MAX_ARGS },
	[FN_TOUPPER] = { "toUpper", 1, 1 },
	[FN_TOLOWER] = { "toLower", 1, 1 },
	[FN_TITLE] = { "title", 1, 1 },
	[FN_INDEX] = { "index", 2, 2 },
};

#define SUBSET "the supported subset is $variables, .Fields, \"strings\", numbers, " \
	       "pipelines with |, ( ) and the functions humanize, humanize1024, "      \
	       "humanizePercentage, humanizeDuration, humanizeTimestamp, printf, "    \
	       "toUpper, toLower, title and index"

struct tcmd {
	enum fn_id fn;             /* FN_NONE: the operand in args alone */
	struct targ *args;
	size_t nargs;
	struct tcmd *next;
};

struct tpipe {
	struct tcmd *cmds;
};

struct tnode {
	const char *text;          /* text node, or NULL for an action */
	size_t len;
	struct tpipe *pipe;
	int line, col;
	struct tnode *next;
};

struct alert_tmpl {
	struct arena arena;
	struct tnode *nodes;
	bool has_actions;
};

/* ---- parsing -------------------------------------------------------------- */

struct parser {
	struct alert_tmpl *t;
	const char *src;           /* whole template, for positions */
	const char *p, *end;       /* the action being parsed */
	const char *const *vars;
	char *err;
	size_t errsize;
	int depth;
};

static void pos_of(const char *src, const char *at, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (const char *s = src; s < at; s++) {
		if (*s == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

static int perr(struct parser *ps, const char *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int perr(struct parser *ps, const char *at, const char *fmt, ...)
{
	int line, col;
	pos_of(ps->src, at, &line, &col);
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(ps->err, ps->errsize, "template: %d:%d: %s", line, col, msg);
	return -EINVAL;
}

static void skip_space(struct parser *ps)
{
	while (ps->p < ps->end && isspace((unsigned char)*ps->p))
		ps->p++;
}

static bool is_ident(int c)
{
	return isalnum(c) || c == '_';
}

static char *dup_n(struct parser *ps, const char *s, size_t n)
{
	char *d = arena_alloc(&ps->t->arena, n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

static bool var_known(const struct parser *ps, const char *name)
{
	if (!ps->vars)
		return true;
	for (const char *const *v = ps->vars; *v; v++)
		if (!strcmp(*v, name))
			return true;
	return false;
}

/* $name[.field] or .Name[.field] at ps->p. */
static int parse_var(struct parser *ps, struct targ *a)
{
	const char *start = ps->p;
	bool dollar = *ps->p == '$';
	ps->p++;
	const char *n0 = ps->p;
	while (ps->p < ps->end && is_ident((unsigned char)*ps->p))
		ps->p++;
	size_t nlen = (size_t)(ps->p - n0);
	if (!nlen)
		return perr(ps, start, dollar ? "\"$\" alone is not supported; %s" :
				     "\".\" alone is not supported; use .Labels.name or .Value", SUBSET);
	char *name = dup_n(ps, n0, nlen);
	if (!name)
		return -ENOMEM;
	if (!dollar)
		name[0] = (char)tolower((unsigned char)name[0]);
	a->kind = ARG_VAR;
	a->var = name;
	if (ps->p < ps->end && *ps->p == '.') {
		const char *f0 = ++ps->p;
		while (ps->p < ps->end && is_ident((unsigned char)*ps->p))
			ps->p++;
		if (ps->p == f0)
			return perr(ps, f0, "expected a field name after \".\"");
		if (ps->p < ps->end && *ps->p == '.')
			return perr(ps, ps->p, "only one level of fields is supported "
				    "(such as $labels.name)");
		if (!(a->field = dup_n(ps, f0, (size_t)(ps->p - f0))))
			return -ENOMEM;
	}
	const char *q = ps->p;
	while (q < ps->end && isspace((unsigned char)*q))
		q++;
	if (q < ps->end && (*q == '=' || (*q == ':' && q + 1 < ps->end && q[1] == '=')))
		return perr(ps, q, "assigning variables (%s) is not supported; %s",
			    *q == '=' ? "=" : ":=", SUBSET);
	if (ps->p < ps->end && !isspace((unsigned char)*ps->p) && *ps->p != '|' && *ps->p != ')')
		return perr(ps, ps->p, "unexpected \"%c\" after %.*s", *ps->p,
			    (int)(ps->p - start), start);
	if (!var_known(ps, name))
		return perr(ps, start, "undefined variable %s%.*s", dollar ? "$" : ".", (int)nlen, n0);
	return 0;
}

static int hexdig(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int parse_string(struct parser *ps, struct targ *a)
{
	const char *start = ps->p;
	char q = *ps->p++;
	char *out = arena_alloc(&ps->t->arena, (size_t)(ps->end - ps->p) + 1);
	if (!out)
		return -ENOMEM;
	size_t n = 0;
	for (;;) {
		if (ps->p >= ps->end)
			return perr(ps, start, "unterminated string");
		char c = *ps->p++;
		if (c == q)
			break;
		if (q == '"' && c == '\n')
			return perr(ps, start, "unterminated string");
		if (q == '`' || c != '\\') {
			out[n++] = c;
			continue;
		}
		if (ps->p >= ps->end)
			return perr(ps, start, "unterminated string");
		c = *ps->p++;
		switch (c) {
		case 'n': out[n++] = '\n'; break;
		case 't': out[n++] = '\t'; break;
		case 'r': out[n++] = '\r'; break;
		case '\\': out[n++] = '\\'; break;
		case '"': out[n++] = '"'; break;
		case '\'': out[n++] = '\''; break;
		case 'x': {
			int h1 = ps->p + 1 < ps->end ? hexdig((unsigned char)ps->p[0]) : -1;
			int h2 = h1 >= 0 ? hexdig((unsigned char)ps->p[1]) : -1;
			if (h2 < 0)
				return perr(ps, ps->p - 2, "bad \\x escape in string");
			int v = h1 * 16 + h2;
			if (!v)
				return perr(ps, ps->p - 2, "NUL characters are not allowed in strings");
			out[n++] = (char)v;
			ps->p += 2;
			break;
		}
		default:
			return perr(ps, ps->p - 2, "unsupported escape \\%c in string", c);
		}
	}
	out[n] = '\0';
	a->kind = ARG_STR;
	a->str = out;
	return 0;
}

static int parse_pipe(struct parser *ps, struct tpipe **out, bool in_parens);

static int parse_operand(struct parser *ps, struct targ *a)
{
	char c = *ps->p;
	if (c == '$' || c == '.')
		return parse_var(ps, a);
	if (c == '"' || c == '`')
		return parse_string(ps, a);
	if (c == '(') {
		const char *open = ps->p++;
		if (++ps->depth > TMPL_MAX_DEPTH)
			return perr(ps, open, "parentheses nested too deep");
		int rc = parse_pipe(ps, &a->pipe, true);
		ps->depth--;
		if (rc)
			return rc;
		if (ps->p >= ps->end || *ps->p != ')')
			return perr(ps, open, "unclosed \"(\"");
		ps->p++;
		a->kind = ARG_PIPE;
		return 0;
	}
	if (isdigit((unsigned char)c) || ((c == '-' || c == '+') && ps->p + 1 < ps->end &&
					   (isdigit((unsigned char)ps->p[1]) || ps->p[1] == '.'))) {
		char tmp[64];
		size_t n = 0;
		const char *s = ps->p;
		while (ps->p < ps->end && n + 1 < sizeof(tmp) &&
		       (isalnum((unsigned char)*ps->p) || strchr("+-._", *ps->p))) {
			if (*ps->p != '_')
				tmp[n++] = *ps->p;
			ps->p++;
		}
		tmp[n] = '\0';
		char *e;
		a->num = strtod(tmp, &e);
		if (*e || !n)
			return perr(ps, s, "bad number \"%s\"", tmp);
		a->kind = ARG_NUM;
		return 0;
	}
	return perr(ps, ps->p, "unexpected \"%c\" in action", c);
}

static int parse_cmd(struct parser *ps, struct tcmd *cmd)
{
	cmd->fn = FN_NONE;
	const char *at = ps->p;
	if (isalpha((unsigned char)*ps->p) || *ps->p == '_') {
		const char *w = ps->p;
		while (ps->p < ps->end && is_ident((unsigned char)*ps->p))
			ps->p++;
		size_t n = (size_t)(ps->p - w);
		for (size_t i = 0; i < ARRAY_LEN(fns); i++)
			if (strlen(fns[i].name) == n && !memcmp(fns[i].name, w, n))
				cmd->fn = (enum fn_id)i;
		if (cmd->fn == FN_NONE) {
			static const char *const kw[] = { "if", "else", "end", "range", "with", "define",
							  "template", "block", "break", "continue" };
			for (size_t i = 0; i < ARRAY_LEN(kw); i++)
				if (strlen(kw[i]) == n && !memcmp(kw[i], w, n))
					return perr(ps, w, "\"%s\" is not supported in rule templates; "
						    "%s", kw[i], SUBSET);
			return perr(ps, w, "function \"%.*s\" is not supported; %s", (int)n, w,
				    SUBSET);
		}
		if (ps->p < ps->end && !isspace((unsigned char)*ps->p) && *ps->p != '|' &&
		    *ps->p != ')')
			return perr(ps, ps->p, "unexpected \"%c\" after %s", *ps->p, fns[cmd->fn].name);
	}
	struct targ **tail = &cmd->args;
	for (;;) {
		skip_space(ps);
		if (ps->p >= ps->end || *ps->p == '|' || *ps->p == ')')
			break;
		if (ps->p + 1 < ps->end && ps->p[0] == ':' && ps->p[1] == '=')
			return perr(ps, ps->p, "assigning variables (:=) is not supported; %s", SUBSET);
		if (ps->p < ps->end && *ps->p == '=')
			return perr(ps, ps->p, "assigning variables (=) is not supported; %s", SUBSET);
		if (cmd->nargs >= TMPL_MAX_ARGS)
			return perr(ps, ps->p, "too many arguments (at most %d)", TMPL_MAX_ARGS);
		struct targ *a = arena_alloc(&ps->t->arena, sizeof(*a));
		if (!a)
			return -ENOMEM;
		memset(a, 0, sizeof(*a));
		int rc = parse_operand(ps, a);
		if (rc)
			return rc;
		if (cmd->fn == FN_NONE && cmd->nargs == 1)
			return perr(ps, at, "a value cannot take arguments (is a function name "
				    "missing?)");
		*tail = a;
		tail = &a->next;
		cmd->nargs++;
	}
	if (cmd->fn == FN_NONE && !cmd->nargs)
		return perr(ps, at, "missing value in action");
	return 0;
}

/* printf's verbs, checked when the format is a literal. */
static int check_format(struct parser *ps, const char *at, const char *f)
{
	for (const char *s = f; *s; s++) {
		if (*s != '%')
			continue;
		s++;
		while (*s && strchr("-+# 0", *s))
			s++;
		while (isdigit((unsigned char)*s))
			s++;
		if (*s == '.') {
			s++;
			while (isdigit((unsigned char)*s))
				s++;
		}
		if (!*s)
			return perr(ps, at, "printf format \"%s\" ends inside a verb", f);
		if (!strchr("%sdvfFeEgGq", *s))
			return perr(ps, at, "printf verb %%%c is not supported (use %%s %%d %%v %%f "
				    "%%e %%g %%q)", *s);
	}
	return 0;
}

static int parse_pipe(struct parser *ps, struct tpipe **out, bool in_parens)
{
	struct tpipe *pipe = arena_alloc(&ps->t->arena, sizeof(*pipe));
	if (!pipe)
		return -ENOMEM;
	memset(pipe, 0, sizeof(*pipe));
	struct tcmd **tail = &pipe->cmds;
	bool first = true;
	for (;;) {
		skip_space(ps);
		const char *at = ps->p;
		if (ps->p >= ps->end || *ps->p == ')' || *ps->p == '|') {
			if (ps->p < ps->end && *ps->p == ')' && !in_parens)
				return perr(ps, ps->p, "unexpected \")\"");
			return perr(ps, at, "missing command in pipeline");
		}
		struct tcmd *cmd = arena_alloc(&ps->t->arena, sizeof(*cmd));
		if (!cmd)
			return -ENOMEM;
		memset(cmd, 0, sizeof(*cmd));
		int rc = parse_cmd(ps, cmd);
		if (rc)
			return rc;
		size_t nargs = cmd->nargs + (first ? 0 : 1);
		if (cmd->fn == FN_NONE && !first)
			return perr(ps, at, "cannot pipe a value into an operand; a function is "
				    "expected after \"|\"");
		if (cmd->fn != FN_NONE) {
			int mn = fns[cmd->fn].min, mx = fns[cmd->fn].max;
			if ((int)nargs < mn || (mx >= 0 && (int)nargs > mx))
				return perr(ps, at, "%s takes %d argument%s, got %zu", fns[cmd->fn].name,
					    mn, mn == 1 ? "" : "s", nargs);
			if (cmd->fn == FN_PRINTF && cmd->args && cmd->args->kind == ARG_STR &&
			    (rc = check_format(ps, at, cmd->args->str)))
				return rc;
		}
		*tail = cmd;
		tail = &cmd->next;
		first = false;
		skip_space(ps);
		if (ps->p < ps->end && *ps->p == '|') {
			ps->p++;
			continue;
		}
		if (ps->p >= ps->end || (in_parens && *ps->p == ')')) {
			*out = pipe;
			return 0;
		}
		return perr(ps, ps->p, "unexpected \"%c\"", *ps->p);
	}
}

static struct tnode *add_node(struct alert_tmpl *t, struct tnode ***tail)
{
	struct tnode *n = arena_alloc(&t->arena, sizeof(*n));
	if (!n)
		return NULL;
	memset(n, 0, sizeof(*n));
	**tail = n;
	*tail = &n->next;
	return n;
}

int alert_tmpl_parse(const char *text, const char *const *vars, struct alert_tmpl **out,
		     char *err, size_t errsize)
{
	*out = NULL;
	size_t len = strlen(text);
	if (len > TMPL_MAX_BYTES) {
		snprintf(err, errsize, "template: longer than %u bytes", TMPL_MAX_BYTES);
		return -EINVAL;
	}
	struct alert_tmpl *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	struct parser ps = { .t = t, .src = text, .vars = vars, .err = err, .errsize = errsize };
	struct tnode **tail = &t->nodes;
	const char *s = text, *end = text + len;
	bool trim_next = false;
	int rc = 0;
	while (s < end) {
		const char *open = strstr(s, "{{");
		const char *tend = open ? open : end;
		bool trim_prev = open && open + 3 <= end && open[2] == '-' &&
				 (open + 3 == end || isspace((unsigned char)open[3]));
		const char *ts = s, *te = tend;
		if (trim_next)
			while (ts < te && isspace((unsigned char)*ts))
				ts++;
		if (trim_prev)
			while (te > ts && isspace((unsigned char)te[-1]))
				te--;
		if (te > ts) {
			struct tnode *n = add_node(t, &tail);
			if (!n) {
				rc = -ENOMEM;
				goto fail;
			}
			n->text = ts;
			n->len = (size_t)(te - ts);
		}
		if (!open)
			break;
		const char *a = open + 2 + (trim_prev ? 1 : 0);
		const char *close = strstr(a, "}}");
		if (!close) {
			rc = perr(&ps, open, "unclosed action (no \"}}\")");
			goto fail;
		}
		const char *ae = close;
		trim_next = ae - a >= 2 && ae[-1] == '-' && isspace((unsigned char)ae[-2]);
		if (trim_next)
			ae--;
		s = close + 2;
		const char *c = a;
		while (c < ae && isspace((unsigned char)*c))
			c++;
		if (ae - c >= 4 && c[0] == '/' && c[1] == '*') {
			const char *ce = ae;
			while (ce > c && isspace((unsigned char)ce[-1]))
				ce--;
			if (ce - c < 4 || ce[-1] != '/' || ce[-2] != '*') {
				rc = perr(&ps, c, "unclosed comment");
				goto fail;
			}
			continue;
		}
		ps.p = a;
		ps.end = ae;
		struct tnode *n = add_node(t, &tail);
		if (!n) {
			rc = -ENOMEM;
			goto fail;
		}
		pos_of(text, open, &n->line, &n->col);
		skip_space(&ps);
		if (ps.p >= ps.end) {
			rc = perr(&ps, open, "empty action");
			goto fail;
		}
		if ((rc = parse_pipe(&ps, &n->pipe, false)))
			goto fail;
		t->has_actions = true;
	}
	/* Text nodes point into text: copy it once into the arena. */
	char *copy = arena_alloc(&t->arena, len + 1);
	if (!copy) {
		rc = -ENOMEM;
		goto fail;
	}
	memcpy(copy, text, len + 1);
	for (struct tnode *n = t->nodes; n; n = n->next)
		if (n->text)
			n->text = copy + (n->text - text);
	*out = t;
	return 0;
fail:
	if (rc == -ENOMEM)
		snprintf(err, errsize, "template: out of memory");
	alert_tmpl_free(t);
	return rc;
}

void alert_tmpl_free(struct alert_tmpl *t)
{
	if (!t)
		return;
	arena_free(&t->arena);
	free(t);
}

bool alert_tmpl_is_static(const struct alert_tmpl *t)
{
	return !t || !t->has_actions;
}

/* ---- Go's number formatting ------------------------------------------------ */

/* Shortest decimal digits of v (> 0, finite) that read back as v: digits in
 * d (no dot), the decimal exponent of the first digit in *exp10. */
static int shortest_digits(double v, char *d, size_t size, int *exp10)
{
	char tmp[40];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
		if (strtod(tmp, NULL) == v || prec == 17)
			break;
	}
	/* tmp is d.ddde[+-]XX */
	size_t n = 0;
	const char *s = tmp;
	for (; *s && *s != 'e'; s++)
		if (isdigit((unsigned char)*s) && n + 1 < size)
			d[n++] = *s;
	while (n > 1 && d[n - 1] == '0')
		n--;
	d[n] = '\0';
	*exp10 = *s == 'e' ? atoi(s + 1) : 0;
	return (int)n;
}

void alert_go_float(struct buf *b, double v)
{
	if (isnan(v)) {
		buf_puts(b, "NaN");
		return;
	}
	if (isinf(v)) {
		buf_puts(b, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == 0) {
		buf_puts(b, signbit(v) ? "-0" : "0");
		return;
	}
	if (v < 0) {
		buf_putc(b, '-');
		v = -v;
	}
	char d[32];
	int e;
	int nd = shortest_digits(v, d, sizeof(d), &e);
	if (e < -4 || e >= 6) {
		buf_putc(b, d[0]);
		if (nd > 1) {
			buf_putc(b, '.');
			buf_add(b, d + 1, (size_t)nd - 1);
		}
		buf_printf(b, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
		return;
	}
	if (e < 0) {
		buf_puts(b, "0.");
		for (int i = -1; i > e; i--)
			buf_putc(b, '0');
		buf_add(b, d, (size_t)nd);
		return;
	}
	for (int i = 0; i <= e || i < nd; i++) {
		if (i == e + 1)
			buf_putc(b, '.');
		buf_putc(b, i < nd ? d[i] : '0');
	}
}

/* %.4g as Go prints it: C's %g is the same apart from NaN and Inf. */
static void put_g4(struct buf *b, double v, const char *suffix)
{
	if (isnan(v))
		buf_puts(b, "NaN");
	else if (isinf(v))
		buf_puts(b, v > 0 ? "+Inf" : "-Inf");
	else
		buf_printf(b, "%.4g", v);
	buf_puts(b, suffix);
}

/* ---- execution ------------------------------------------------------------- */

#define VAL_STR ALERT_TMPL_STR
#define VAL_NUM ALERT_TMPL_NUM
#define VAL_MAP ALERT_TMPL_MAP

struct exec {
	alert_tmpl_lookup_fn lookup;
	void *arg;
	struct arena scratch;
	char *err;
	size_t errsize;
};

static int xerr(struct exec *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int xerr(struct exec *x, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->err, x->errsize, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const char *scratch_str(struct exec *x, struct buf *b)
{
	const char *s = arena_strdup(&x->scratch, b->len ? b->data : "");
	buf_fini(b);
	return s;
}

static int to_num(struct exec *x, const char *fn, const struct alert_tmpl_value *v, double *out)
{
	if (v->kind == VAL_NUM) {
		*out = v->num;
		return 0;
	}
	if (v->kind == VAL_STR) {
		char *e;
		const char *s = v->str;
		while (isspace((unsigned char)*s))
			s++;
		*out = strtod(s, &e);
		if (e != s && !*e)
			return 0;
		return xerr(x, "%s: cannot convert \"%s\" to a number", fn, v->str);
	}
	return xerr(x, "%s: expected a number, got the map $%s", fn, v->str);
}

/* The text of a value as {{ }} prints it. */
static int put_value(struct exec *x, struct buf *b, const struct alert_tmpl_value *v)
{
	if (v->kind == VAL_NUM)
		alert_go_float(b, v->num);
	else if (v->kind == VAL_STR)
		buf_puts(b, v->str);
	else
		return xerr(x, "cannot print the map $%s; name a field such as $%s.name", v->str,
			    v->str);
	return 0;
}

static void humanize(struct buf *b, double v, bool bin)
{
	if (v == 0 || isnan(v) || isinf(v)) {
		put_g4(b, v, "");
		return;
	}
	static const char *const big[] = { "k", "M", "G", "T", "P", "E", "Z", "Y" };
	static const char *const bigi[] = { "ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi" };
	static const char *const small[] = { "m", "u", "n", "p", "f", "a", "z", "y" };
	const char *prefix = "";
	if (fabs(v) >= 1 || bin) {
		double base = bin ? 1024 : 1000;
		for (size_t i = 0; i < ARRAY_LEN(big); i++) {
			if (fabs(v) < base)
				break;
			prefix = bin ? bigi[i] : big[i];
			v /= base;
		}
	} else {
		for (size_t i = 0; i < ARRAY_LEN(small); i++) {
			if (fabs(v) >= 1)
				break;
			prefix = small[i];
			v *= 1000;
		}
	}
	put_g4(b, v, prefix);
}

static void humanize_duration(struct buf *b, double v)
{
	if (isnan(v) || isinf(v)) {
		put_g4(b, v, "");
		return;
	}
	if (v == 0) {
		buf_puts(b, "0s");
		return;
	}
	if (fabs(v) >= 1) {
		const char *sign = "";
		if (v < 0) {
			sign = "-";
			v = -v;
		}
		/* Past int64: clamped, not undefined (found by fuzzing). */
		long long d = v >= 9.2e18 ? LLONG_MAX : (long long)v;
		long long sec = d % 60, min = (d / 60) % 60, hour = (d / 3600) % 24, day = d / 86400;
		if (day)
			buf_printf(b, "%s%lldd %lldh %lldm %llds", sign, day, hour, min, sec);
		else if (hour)
			buf_printf(b, "%s%lldh %lldm %llds", sign, hour, min, sec);
		else if (min)
			buf_printf(b, "%s%lldm %llds", sign, min, sec);
		else
			buf_printf(b, "%s%.4gs", sign, v);
		return;
	}
	static const char *const small[] = { "m", "u", "n", "p", "f", "a", "z", "y" };
	const char *prefix = "";
	for (size_t i = 0; i < ARRAY_LEN(small); i++) {
		if (fabs(v) >= 1)
			break;
		prefix = small[i];
		v *= 1000;
	}
	buf_printf(b, "%.4g%ss", v, prefix);
}

/* Go's time.Time.String() of a UTC time: "2006-01-02 15:04:05.5 +0000 UTC". */
static void humanize_timestamp(struct buf *b, double v)
{
	if (isnan(v) || isinf(v) || fabs(v) > 1e13) {
		put_g4(b, v, "");
		return;
	}
	/* As Prometheus: through model.Time, so milliseconds, truncated. */
	long long ms = (long long)(v * 1e9) / 1000000;
	long long sec = ms / 1000, frac = ms % 1000;
	if (frac < 0) {
		frac += 1000;
		sec--;
	}
	time_t t = (time_t)sec;
	struct tm tm;
	gmtime_r(&t, &tm);
	char s[64];
	strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%S", &tm);
	buf_puts(b, s);
	if (frac) {
		char f[8];
		snprintf(f, sizeof(f), "%03lld", frac);
		size_t n = strlen(f);
		while (n && f[n - 1] == '0')
			n--;
		buf_putc(b, '.');
		buf_add(b, f, n);
	}
	buf_puts(b, " +0000 UTC");
}

static void title_case(struct buf *b, const char *s)
{
	bool start = true;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		buf_putc(b, start && c < 0x80 ? (char)toupper(c) : (char)c);
		start = isspace(c) || (c < 0x80 && ispunct(c) && c != '\'' && c != '_');
	}
}

static const char *go_type(const struct alert_tmpl_value *v)
{
	return v->kind == VAL_NUM ? "float64" : v->kind == VAL_STR ? "string" : "map[string]string";
}

/* Go's complaint for a verb that does not fit its argument. */
static void bad_verb(struct buf *b, char verb, const struct alert_tmpl_value *v)
{
	buf_printf(b, "%%!%c(%s=", verb, go_type(v));
	if (v->kind == VAL_MAP)
		buf_printf(b, "$%s", v->str);
	else if (v->kind == VAL_NUM)
		alert_go_float(b, v->num);
	else
		buf_puts(b, v->str);
	buf_putc(b, ')');
}

static void go_quote(struct buf *b, const char *s)
{
	buf_putc(b, '"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			buf_printf(b, "\\%c", c);
		else if (c == '\n')
			buf_puts(b, "\\n");
		else if (c == '\t')
			buf_puts(b, "\\t");
		else if (c == '\r')
			buf_puts(b, "\\r");
		else if (c < 0x20 || c == 0x7f)
			buf_printf(b, "\\x%02x", c);
		else
			buf_putc(b, (char)c);
	}
	buf_putc(b, '"');
}

/* Pads s to width as fmt does ('-' pads right, else left with spaces). */
static void pad(struct buf *b, const char *s, int width, bool left)
{
	int n = (int)strlen(s);
	if (!left)
		for (int i = n; i < width; i++)
			buf_putc(b, ' ');
	buf_puts(b, s);
	if (left)
		for (int i = n; i < width; i++)
			buf_putc(b, ' ');
}

/* The format is built from the template's own verb, checked above. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void go_printf(struct buf *b, const char *f, const struct alert_tmpl_value *args, size_t n)
{
	size_t ai = 0;
	for (const char *s = f; *s; s++) {
		if (*s != '%') {
			buf_putc(b, *s);
			continue;
		}
		s++;
		char flags[8] = "";
		size_t nf = 0;
		while (*s && strchr("-+# 0", *s)) {
			if (nf + 1 < sizeof(flags))
				flags[nf++] = *s;
			s++;
		}
		flags[nf] = '\0';
		int width = -1, prec = -1;
		if (isdigit((unsigned char)*s)) {
			width = 0;
			while (isdigit((unsigned char)*s) && width < 1000)
				width = width * 10 + (*s++ - '0');
		}
		if (*s == '.') {
			s++;
			prec = 0;
			while (isdigit((unsigned char)*s) && prec < 1000)
				prec = prec * 10 + (*s++ - '0');
		}
		char verb = *s;
		if (!verb) {
			buf_puts(b, "%!(NOVERB)");
			return;
		}
		if (verb == '%') {
			buf_putc(b, '%');
			continue;
		}
		if (ai >= n) {
			buf_printf(b, "%%!%c(MISSING)", verb);
			continue;
		}
		const struct alert_tmpl_value *v = &args[ai++];
		bool left = strchr(flags, '-') != NULL;
		char cf[64], tmp[512];
		switch (verb) {
		case 'v':
		case 's':
		case 'q':
			if (v->kind == VAL_MAP || (verb != 'v' && v->kind == VAL_NUM)) {
				bad_verb(b, verb, v);
			} else {
				struct buf t;
				buf_init(&t, 1 << 16);
				if (verb == 'q')
					go_quote(&t, v->str);
				else if (v->kind == VAL_NUM)
					alert_go_float(&t, v->num);
				else
					buf_puts(&t, v->str);
				const char *txt = t.len ? t.data : "";
				if (prec >= 0 && verb == 's' && (int)strlen(txt) > prec)
					t.data[prec] = '\0';
				pad(b, txt, width, left);
				buf_fini(&t);
			}
			break;
		case 'd':
			if (v->kind != VAL_NUM || v->num != trunc(v->num) || fabs(v->num) > 9.2e18) {
				bad_verb(b, verb, v);
				break;
			}
			snprintf(cf, sizeof(cf), "%%%s%s%slld", flags, width >= 0 ? "*" : "",
				 prec >= 0 ? ".*" : "");
			if (width >= 0 && prec >= 0)
				snprintf(tmp, sizeof(tmp), cf, width, prec, (long long)v->num);
			else if (width >= 0)
				snprintf(tmp, sizeof(tmp), cf, width, (long long)v->num);
			else if (prec >= 0)
				snprintf(tmp, sizeof(tmp), cf, prec, (long long)v->num);
			else
				snprintf(tmp, sizeof(tmp), cf, (long long)v->num);
			buf_puts(b, tmp);
			break;
		default: /* f F e E g G */
			if (v->kind != VAL_NUM) {
				bad_verb(b, verb, v);
				break;
			}
			if (isnan(v->num) || isinf(v->num)) {
				const char *t = isnan(v->num) ? "NaN" : v->num > 0 ? "+Inf" : "-Inf";
				pad(b, t, width, left);
				break;
			}
			if ((verb == 'g' || verb == 'G') && prec < 0) {
				struct buf t;
				buf_init(&t, 64);
				alert_go_float(&t, v->num);
				if (verb == 'G')
					for (size_t i = 0; i < t.len; i++)
						t.data[i] = (char)toupper((unsigned char)t.data[i]);
				pad(b, t.len ? t.data : "", width, left);
				buf_fini(&t);
				break;
			}
			if (verb == 'F')
				verb = 'f';
			snprintf(cf, sizeof(cf), "%%%s%s%s%c", flags, width >= 0 ? "*" : "",
				 prec >= 0 ? ".*" : "", verb);
			if (width >= 0 && prec >= 0)
				snprintf(tmp, sizeof(tmp), cf, width, prec, v->num);
			else if (width >= 0)
				snprintf(tmp, sizeof(tmp), cf, width, v->num);
			else if (prec >= 0)
				snprintf(tmp, sizeof(tmp), cf, prec, v->num);
			else
				snprintf(tmp, sizeof(tmp), cf, v->num);
			buf_puts(b, tmp);
			break;
		}
	}
	if (ai < n) {
		buf_puts(b, "%!(EXTRA ");
		for (size_t i = ai; i < n; i++) {
			if (i > ai)
				buf_puts(b, ", ");
			buf_printf(b, "%s=", go_type(&args[i]));
			if (args[i].kind == VAL_NUM)
				alert_go_float(b, args[i].num);
			else
				buf_puts(b, args[i].str);
		}
		buf_putc(b, ')');
	}
}

#pragma GCC diagnostic pop

static int eval_pipe(struct exec *x, const struct tpipe *p, struct alert_tmpl_value *out);

static int eval_arg(struct exec *x, const struct targ *a, struct alert_tmpl_value *out)
{
	memset(out, 0, sizeof(*out));
	switch (a->kind) {
	case ARG_STR:
		out->kind = VAL_STR;
		out->str = a->str;
		return 0;
	case ARG_NUM:
		out->kind = VAL_NUM;
		out->num = a->num;
		return 0;
	case ARG_PIPE:
		return eval_pipe(x, a->pipe, out);
	case ARG_VAR: {
		int rc = x->lookup(x->arg, a->var, a->field, out);
		if (rc == -ENOENT)
			return xerr(x, "undefined variable $%s", a->var);
		if (rc < 0)
			return xerr(x, "$%s: %s", a->var, strerror(-rc));
		if (out->kind == VAL_MAP)
			out->str = a->var;
		if (out->kind == VAL_STR && !out->str)
			out->str = "";
		return 0;
	}
	}
	return -EINVAL;
}

static int call(struct exec *x, enum fn_id fn, struct alert_tmpl_value *args, size_t n,
		struct alert_tmpl_value *out)
{
	struct buf b;
	buf_init(&b, 1 << 16);
	double v = 0;
	int rc = 0;
	const char *name = fns[fn].name;
	switch (fn) {
	case FN_HUMANIZE:
	case FN_HUMANIZE1024:
	case FN_HUMANIZE_PCT:
	case FN_HUMANIZE_DUR:
	case FN_HUMANIZE_TS:
		if ((rc = to_num(x, name, &args[0], &v)))
			break;
		if (fn == FN_HUMANIZE)
			humanize(&b, v, false);
		else if (fn == FN_HUMANIZE1024)
			humanize(&b, v, true);
		else if (fn == FN_HUMANIZE_PCT)
			put_g4(&b, v * 100, "%");
		else if (fn == FN_HUMANIZE_DUR)
			humanize_duration(&b, v);
		else
			humanize_timestamp(&b, v);
		break;
	case FN_PRINTF:
		if (args[0].kind != VAL_STR) {
			rc = xerr(x, "printf: the format must be a string");
			break;
		}
		go_printf(&b, args[0].str, args + 1, n - 1);
		break;
	case FN_TOUPPER:
	case FN_TOLOWER:
	case FN_TITLE:
		if (args[0].kind != VAL_STR) {
			rc = xerr(x, "%s: expected a string, got %s", name, go_type(&args[0]));
			break;
		}
		if (fn == FN_TITLE) {
			title_case(&b, args[0].str);
		} else {
			for (const char *s = args[0].str; *s; s++)
				buf_putc(&b, (char)(fn == FN_TOUPPER ? toupper((unsigned char)*s) :
							tolower((unsigned char)*s)));
		}
		break;
	case FN_INDEX:
		if (args[0].kind != VAL_MAP || args[1].kind != VAL_STR) {
			rc = xerr(x, "index: expected a map such as $labels and a string key");
			break;
		}
		buf_fini(&b);
		rc = x->lookup(x->arg, args[0].str, args[1].str, out);
		if (rc < 0)
			return xerr(x, "index: $%s: %s", args[0].str, strerror(-rc));
		if (out->kind == VAL_STR && !out->str)
			out->str = "";
		return 0;
	case FN_NONE:
		break;
	}
	if (rc) {
		buf_fini(&b);
		return rc;
	}
	if (b.overflow) {
		buf_fini(&b);
		return xerr(x, "%s: result too long", name);
	}
	out->kind = VAL_STR;
	out->str = scratch_str(x, &b);
	return out->str ? 0 : xerr(x, "out of memory");
}

static int eval_pipe(struct exec *x, const struct tpipe *p, struct alert_tmpl_value *out)
{
	struct alert_tmpl_value prev = { 0 };
	bool have_prev = false;
	for (const struct tcmd *c = p->cmds; c; c = c->next) {
		struct alert_tmpl_value args[TMPL_MAX_ARGS + 1];
		size_t n = 0;
		for (const struct targ *a = c->args; a; a = a->next) {
			int rc = eval_arg(x, a, &args[n++]);
			if (rc)
				return rc;
		}
		if (have_prev)
			args[n++] = prev;
		if (c->fn == FN_NONE) {
			prev = args[0];
		} else {
			int rc = call(x, c->fn, args, n, &prev);
			if (rc)
				return rc;
		}
		have_prev = true;
	}
	*out = prev;
	return 0;
}

int alert_tmpl_exec(const struct alert_tmpl *t, alert_tmpl_lookup_fn lookup, void *arg,
		    struct buf *out, char *err, size_t errsize)
{
	struct exec x = { .lookup = lookup, .arg = arg, .err = err, .errsize = errsize };
	int rc = 0;
	for (const struct tnode *n = t->nodes; n && !rc; n = n->next) {
		if (n->text) {
			buf_add(out, n->text, n->len);
			continue;
		}
		struct alert_tmpl_value v;
		rc = eval_pipe(&x, n->pipe, &v);
		if (!rc)
			rc = put_value(&x, out, &v);
		if (rc) {
			char inner[512];
			snprintf(inner, sizeof(inner), "%s", err);
			snprintf(err, errsize, "template: %d:%d: %s", n->line, n->col, inner);
		}
	}
	arena_free(&x.scratch);
	if (!rc && out->overflow) {
		snprintf(err, errsize, "template: result too long");
		rc = -E2BIG;
	}
	return rc;
}
