/*
 * notify_text.c - the words of a notification: the default title and body
 * every vendor starts from, the small template language for the `title`
 * and `text` options (and templates: files), and cutting text to a
 * vendor's limit at a UTF-8 boundary.
 *
 * Templates read the Alertmanager v4 data object the way Alertmanager's
 * Go templates read their Data: {{ .Status }}, {{ .CommonLabels.alertname }},
 * {{ range .Alerts.Firing }}{{ .Labels.instance }}{{ end }}, {{ if ... }},
 * {{ template "name" . }}, pipes to toUpper/toLower. A field name maps to
 * the JSON key with its first letter lowered (GroupKey -> groupKey).
 */
#include "alerting/notify_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ---- cutting ----------------------------------------------------------------- */

static const char ellipsis[] = "\xe2\x80\xa6"; /* U+2026, 3 bytes */

void ntext_trunc_bytes(struct buf *b, const char *s, size_t max_bytes)
{
	size_t n = strlen(s);
	if (n <= max_bytes) {
		buf_add(b, s, n);
		return;
	}
	if (max_bytes < 3)
		return;
	size_t cut = max_bytes - 3;
	while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
		cut--;
	buf_add(b, s, cut);
	buf_puts(b, ellipsis);
}

void ntext_trunc_chars(struct buf *b, const char *s, size_t max_chars)
{
	size_t chars = 0, i = 0, cut = 0;
	for (; s[i]; i++) {
		if (((unsigned char)s[i] & 0xc0) != 0x80) {
			if (chars == max_chars - (max_chars ? 1 : 0))
				cut = i;
			chars++;
		}
	}
	if (chars <= max_chars) {
		buf_add(b, s, i);
		return;
	}
	if (max_chars == 0)
		return;
	buf_add(b, s, cut);
	buf_puts(b, ellipsis);
}

/* ---- templates ------------------------------------------------------------------ */

struct tctx {
	const struct notify_config *cfg;
	const struct json *root;
	struct buf *out;
	char *err;
	size_t errsize;
	int depth;
	int steps;
};

#define TMPL_MAX_DEPTH 16
#define TMPL_MAX_STEPS 100000

static int terr(struct tctx *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int terr(struct tctx *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->err, t->errsize, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Resolved value of an expression: a JSON node, or a number we computed. */
struct tval {
	const struct json *j;
	bool is_num;
	double num;
	int filter;              /* 1 firing, 2 resolved: an .Alerts.Firing view */
};

static size_t count_status(const struct json *alerts, const char *status)
{
	size_t n = 0;
	if (!alerts || alerts->type != JSON_ARRAY)
		return 0;
	for (const struct json *a = alerts->child; a; a = a->next) {
		const char *s = json_get_str(a, "status");
		if (s && !strcmp(s, status))
			n++;
	}
	return n;
}

/* Resolves ".A.b.c", "." or "$.A" against dot/root. */
static int resolve(struct tctx *t, const char *expr, size_t len, const struct json *dot,
		   struct tval *v)
{
	memset(v, 0, sizeof(*v));
	const struct json *cur = dot;
	size_t i = 0;
	if (len && expr[0] == '$') {
		cur = t->root;
		i = 1;
	}
	if (i >= len || expr[i] != '.')
		return terr(t, "expected a field such as .Status, got \"%.*s\"", (int)len, expr);
	v->j = cur;
	if (len - i == 1)
		return 0;
	bool first = true;
	while (i < len && expr[i] == '.') {
		i++;
		size_t s = i;
		while (i < len && (isalnum((unsigned char)expr[i]) || expr[i] == '_'))
			i++;
		if (i == s)
			return terr(t, "empty field name in \"%.*s\"", (int)len, expr);
		char name[128];
		size_t nl = i - s < sizeof(name) - 1 ? i - s : sizeof(name) - 1;
		memcpy(name, expr + s, nl);
		name[nl] = '\0';
		if (v->is_num)
			return terr(t, "%s: a number has no fields", name);
		if (v->j && v->j->type == JSON_ARRAY && (!strcmp(name, "Firing") ||
							 !strcmp(name, "Resolved"))) {
			v->filter = name[0] == 'F' ? 1 : 2;
			first = false;
			continue;
		}
		if (first && cur && (!strcmp(name, "NumFiring") || !strcmp(name, "NumResolved"))) {
			v->is_num = true;
			v->num = (double)count_status(json_get(cur, "alerts"),
						      name[3] == 'F' ? "firing" : "resolved");
			v->j = NULL;
			first = false;
			continue;
		}
		/* Go's exported names: the JSON key has the first letter lowered,
		 * except inside label and annotation maps, which keep theirs. */
		const struct json *next = NULL;
		if (v->j && v->j->type == JSON_OBJECT) {
			next = json_get(v->j, name);
			if (!next && isupper((unsigned char)name[0])) {
				name[0] = (char)tolower((unsigned char)name[0]);
				next = json_get(v->j, name);
			}
		}
		v->j = next;
		first = false;
	}
	if (i != len)
		return terr(t, "unexpected \"%.*s\"", (int)(len - i), expr + i);
	return 0;
}

static void print_val(struct buf *b, const struct tval *v)
{
	if (v->is_num) {
		buf_printf(b, "%.15g", v->num);
		return;
	}
	if (!v->j)
		return;
	switch (v->j->type) {
	case JSON_STRING: buf_puts(b, v->j->string); break;
	case JSON_NUMBER: buf_printf(b, "%.15g", v->j->number); break;
	case JSON_BOOL: buf_puts(b, v->j->boolean ? "true" : "false"); break;
	case JSON_ARRAY:
		if (v->filter)
			buf_printf(b, "%zu", count_status(v->j, v->filter == 1 ? "firing" : "resolved"));
		else
			buf_printf(b, "%zu", v->j->count);
		break;
	case JSON_OBJECT: {
		/* Go prints a map as map[k:v k:v]; sorted keys are how KV pairs read. */
		buf_puts(b, "map[");
		for (const struct json *c = v->j->child; c; c = c->next)
			buf_printf(b, "%s%s:%s", c == v->j->child ? "" : " ", c->key,
				   c->type == JSON_STRING ? c->string : "");
		buf_putc(b, ']');
		break;
	}
	default: break;
	}
}

static bool truthy(const struct tval *v)
{
	if (v->is_num)
		return v->num != 0;
	if (!v->j)
		return false;
	switch (v->j->type) {
	case JSON_STRING: return v->j->string[0] != '\0';
	case JSON_NUMBER: return v->j->number != 0;
	case JSON_BOOL: return v->j->boolean;
	case JSON_ARRAY:
		return v->filter ? count_status(v->j, v->filter == 1 ? "firing" : "resolved") > 0
				 : v->j->count > 0;
	case JSON_OBJECT: return v->j->count > 0;
	default: return false;
	}
}

static const char *skip_ws(const char *p, const char *e)
{
	while (p < e && isspace((unsigned char)*p))
		p++;
	return p;
}

/* Evaluates an expression with optional functions: ".X", "toUpper .X",
 * ".X | toUpper", "len .Alerts"; prints it into out when out is not NULL. */
static int eval_expr(struct tctx *t, const char *a, const char *e, const struct json *dot,
		     struct tval *v, struct buf *out)
{
	char fn[2][16] = { "", "" };
	int nfn = 0;
	const char *pipe = memchr(a, '|', (size_t)(e - a));
	const char *expr_end = pipe ? pipe : e;
	a = skip_ws(a, expr_end);
	while (expr_end > a && isspace((unsigned char)expr_end[-1]))
		expr_end--;
	if (a < expr_end && isalpha((unsigned char)*a)) {
		const char *s = a;
		while (a < expr_end && isalpha((unsigned char)*a))
			a++;
		snprintf(fn[nfn++], sizeof(fn[0]), "%.*s", (int)(a - s), s);
		a = skip_ws(a, expr_end);
	}
	if (pipe) {
		const char *s = skip_ws(pipe + 1, e);
		const char *f = s;
		while (f < e && isalpha((unsigned char)*f))
			f++;
		if (nfn < 2)
			snprintf(fn[nfn++], sizeof(fn[0]), "%.*s", (int)(f - s), s);
		if (skip_ws(f, e) != e)
			return terr(t, "only one pipe is supported");
	}
	if (resolve(t, a, (size_t)(expr_end - a), dot, v) < 0)
		return -EINVAL;
	for (int i = 0; i < nfn; i++) {
		if (strcmp(fn[i], "toUpper") && strcmp(fn[i], "toLower") && strcmp(fn[i], "len") &&
		    strcmp(fn[i], "title"))
			return terr(t, "unknown function \"%s\" (toUpper, toLower, title, len)",
				    fn[i]);
	}
	if (!out)
		return 0;
	struct buf tmp;
	buf_init(&tmp, 1 << 20);
	if (nfn && !strcmp(fn[0], "len")) {
		struct tval c = *v;
		if (v->j && (v->j->type == JSON_ARRAY || v->j->type == JSON_OBJECT) && !v->filter) {
			c.is_num = true;
			c.num = (double)v->j->count;
		}
		print_val(&tmp, &c);
	} else {
		print_val(&tmp, v);
	}
	for (int i = 0; i < nfn && tmp.data; i++) {
		for (char *p = tmp.data; *p; p++) {
			if (!strcmp(fn[i], "toUpper"))
				*p = (char)toupper((unsigned char)*p);
			else if (!strcmp(fn[i], "toLower"))
				*p = (char)tolower((unsigned char)*p);
			else if (!strcmp(fn[i], "title") && (p == tmp.data || p[-1] == ' '))
				*p = (char)toupper((unsigned char)*p);
		}
	}
	if (tmp.len)
		buf_add(out, tmp.data, tmp.len);
	buf_fini(&tmp);
	return 0;
}

/* Runs text from *pp, emitting when emit, until {{ end }} (returns 1),
 * {{ else }} (2) or the end of the text (0); *pp is left after it. */
static int run(struct tctx *t, const char **pp, const struct json *dot, bool emit)
{
	const char *p = *pp;
	if (++t->depth > TMPL_MAX_DEPTH * 4)
		return terr(t, "nested too deep");
	for (;;) {
		if (++t->steps > TMPL_MAX_STEPS)
			return terr(t, "template runs too long");
		const char *open = strstr(p, "{{");
		if (!open) {
			if (emit)
				buf_puts(t->out, p);
			*pp = p + strlen(p);
			t->depth--;
			return 0;
		}
		size_t textlen = (size_t)(open - p);
		const char *a = open + 2;
		if (*a == '-' && isspace((unsigned char)a[1])) {
			while (textlen > 0 && isspace((unsigned char)p[textlen - 1]))
				textlen--;
			a++;
		}
		if (emit)
			buf_add(t->out, p, textlen);
		const char *close = strstr(a, "}}");
		if (!close)
			return terr(t, "unclosed {{");
		const char *ae = close;
		bool trim_r = ae > a && ae[-1] == '-' && ae - 1 > a && isspace((unsigned char)ae[-2]);
		if (trim_r)
			ae--;
		p = close + 2;
		if (trim_r)
			while (isspace((unsigned char)*p))
				p++;
		a = skip_ws(a, ae);
		while (ae > a && isspace((unsigned char)ae[-1]))
			ae--;
		size_t al = (size_t)(ae - a);
		if (al >= 2 && a[0] == '/' && a[1] == '*')
			continue;
		if (al == 3 && !strncmp(a, "end", 3)) {
			*pp = p;
			t->depth--;
			return 1;
		}
		if (al == 4 && !strncmp(a, "else", 4)) {
			*pp = p;
			t->depth--;
			return 2;
		}
		if (al > 6 && !strncmp(a, "range", 5) && isspace((unsigned char)a[5])) {
			struct tval v;
			if (eval_expr(t, a + 6, ae, dot, &v, NULL) < 0)
				return -EINVAL;
			const struct json *arr = v.j && v.j->type == JSON_ARRAY ? v.j : NULL;
			const char *q = p;
			int r = 1;
			size_t n = 0;
			for (const struct json *e = arr ? arr->child : NULL; e && emit; e = e->next) {
				const char *st = json_get_str(e, "status");
				if (v.filter && (!st || strcmp(st, v.filter == 1 ? "firing" : "resolved")))
					continue;
				q = p;
				if ((r = run(t, &q, e, true)) < 0)
					return r;
				n++;
			}
			if (n == 0) {
				q = p;
				if ((r = run(t, &q, dot, false)) < 0)
					return r;
			}
			if (r == 2 && (r = run(t, &q, dot, emit && n == 0)) < 0)
				return r;
			if (r != 1)
				return terr(t, "range without {{ end }}");
			p = q;
			continue;
		}
		if (al > 3 && !strncmp(a, "if", 2) && isspace((unsigned char)a[2])) {
			struct tval v;
			if (eval_expr(t, a + 3, ae, dot, &v, NULL) < 0)
				return -EINVAL;
			bool yes = truthy(&v);
			const char *q = p;
			int r = run(t, &q, dot, emit && yes);
			if (r == 2)
				r = run(t, &q, dot, emit && !yes);
			if (r < 0)
				return r;
			if (r != 1)
				return terr(t, "if without {{ end }}");
			p = q;
			continue;
		}
		if (al > 9 && !strncmp(a, "template", 8) && isspace((unsigned char)a[8])) {
			const char *s = skip_ws(a + 8, ae);
			if (*s != '"')
				return terr(t, "template needs a quoted name");
			const char *ne = memchr(s + 1, '"', (size_t)(ae - s - 1));
			if (!ne)
				return terr(t, "template name is not closed");
			const struct ntemplate *tm = NULL;
			for (size_t i = 0; t->cfg && i < t->cfg->ntmpl; i++)
				if (strlen(t->cfg->tmpl[i].name) == (size_t)(ne - s - 1) &&
				    !strncmp(t->cfg->tmpl[i].name, s + 1, (size_t)(ne - s - 1)))
					tm = &t->cfg->tmpl[i];
			if (!tm) {
				if (!t->cfg) /* syntax check before templates: are loaded */
					continue;
				return terr(t, "no template \"%.*s\" (templates: files define them)",
					    (int)(ne - s - 1), s + 1);
			}
			const struct json *arg = dot;
			const char *as = skip_ws(ne + 1, ae);
			if (as < ae) {
				struct tval v;
				if (resolve(t, as, (size_t)(ae - as), dot, &v) < 0)
					return -EINVAL;
				arg = v.j;
			}
			if (t->depth > TMPL_MAX_DEPTH)
				return terr(t, "templates call each other too deep");
			const char *q = tm->text;
			int r = run(t, &q, arg, emit);
			if (r < 0)
				return r;
			if (r != 0)
				return terr(t, "template \"%s\": unexpected {{ end }} or {{ else }}",
					    tm->name);
			continue;
		}
		struct tval v;
		if (eval_expr(t, a, ae, dot, &v, emit ? t->out : NULL) < 0)
			return -EINVAL;
	}
}

int ntemplate_render(const struct notify_config *cfg, const char *tmpl, const struct json *data,
		     struct buf *out, char *err, size_t errsize)
{
	struct tctx t = { cfg, data, out, err, errsize, 0, 0 };
	const char *p = tmpl;
	int r = run(&t, &p, data, true);
	if (r < 0)
		return r;
	if (r != 0)
		return terr(&t, "{{ %s }} without an opening range or if", r == 1 ? "end" : "else");
	return 0;
}

int ntemplate_check(const struct notify_config *cfg, const char *tmpl, char *err, size_t errsize)
{
	struct buf b;
	buf_init(&b, 1 << 16);
	struct json empty = { .type = JSON_OBJECT };
	struct tctx t = { cfg, &empty, &b, err, errsize, 0, 0 };
	const char *p = tmpl;
	int r = run(&t, &p, &empty, false);
	buf_fini(&b);
	if (r < 0)
		return r;
	if (r != 0)
		return terr(&t, "{{ %s }} without an opening range or if", r == 1 ? "end" : "else");
	return 0;
}

/* ---- the default message ------------------------------------------------------------ */

static const char *lbl(const struct json *labels, const char *const *names)
{
	for (; *names; names++) {
		const char *v = json_get_str(labels, *names);
		if (v && *v)
			return v;
	}
	return NULL;
}

static const char *const container_keys[] = { "name", "container", "container_name", "pod", NULL };
static const char *const host_keys[] = { "host", "hostname", "instance", "node", NULL };

/* Text escaped for the style (HTML needs & < >; the others pass). */
static void put_text(struct buf *b, enum nstyle st, const char *s)
{
	if (st != NS_HTML) {
		buf_puts(b, s);
		return;
	}
	for (; *s; s++) {
		switch (*s) {
		case '&': buf_puts(b, "&amp;"); break;
		case '<': buf_puts(b, "&lt;"); break;
		case '>': buf_puts(b, "&gt;"); break;
		case '"': buf_puts(b, "&quot;"); break;
		default: buf_putc(b, *s);
		}
	}
}

static void put_bold(struct buf *b, enum nstyle st, const char *s)
{
	const char *o = st == NS_HTML ? "<b>" : st == NS_SLACK ? "*" : st == NS_MARKDOWN ? "**" : "";
	const char *c = st == NS_HTML ? "</b>" : o;
	buf_puts(b, o);
	put_text(b, st, s);
	buf_puts(b, c);
}

static void put_link(struct buf *b, enum nstyle st, const char *text, const char *url)
{
	switch (st) {
	case NS_HTML:
		buf_puts(b, "<a href=\"");
		put_text(b, st, url);
		buf_puts(b, "\">");
		put_text(b, st, text);
		buf_puts(b, "</a>");
		break;
	case NS_SLACK: buf_printf(b, "<%s|%s>", url, text); break;
	case NS_MARKDOWN: buf_printf(b, "[%s](%s)", text, url); break;
	default: buf_printf(b, "%s: %s", text, url); break;
	}
}

/* "2026-11-29T18:00:00.123Z" -> "2026-11-29 18:00:00 UTC". */
static void put_time(struct buf *b, const char *rfc)
{
	if (!rfc || strlen(rfc) < 19) {
		buf_puts(b, rfc ? rfc : "");
		return;
	}
	buf_printf(b, "%.10s %.8s UTC", rfc, rfc + 11);
}

#define DEFAULT_MAX_LISTED 20

static void default_title(const struct json *data, struct buf *title)
{
	const struct json *alerts = json_get(data, "alerts");
	const struct json *common = json_get(data, "commonLabels");
	const struct json *group = json_get(data, "groupLabels");
	const char *status = json_get_str(data, "status");
	bool firing = status && !strcmp(status, "firing");
	size_t nf = count_status(alerts, "firing");
	const char *name = json_get_str(common, "alertname");
	if (!name)
		name = json_get_str(group, "alertname");
	buf_printf(title, "[%s:%zu] %s", firing ? "FIRING" : "RESOLVED",
		   firing ? nf : (alerts ? alerts->count : 0), name ? name : "alerts");
	const char *ctr = lbl(common, container_keys), *host = lbl(common, host_keys);
	if (ctr && host)
		buf_printf(title, " (%s on %s)", ctr, host);
	else if (ctr || host)
		buf_printf(title, " (%s)", ctr ? ctr : host);
}

static void default_text(const struct json *data, enum nstyle st, struct buf *text)
{
	const struct json *alerts = json_get(data, "alerts");
	size_t listed = 0, total = alerts && alerts->type == JSON_ARRAY ? alerts->count : 0;
	for (const struct json *a = alerts ? alerts->child : NULL; a; a = a->next) {
		if (listed == DEFAULT_MAX_LISTED)
			break;
		const struct json *l = json_get(a, "labels"), *an = json_get(a, "annotations");
		const char *status = json_get_str(a, "status");
		bool firing = status && !strcmp(status, "firing");
		if (listed++)
			buf_puts(text, "\n\n");
		buf_puts(text, firing ? "\xf0\x9f\x94\xa5 " : "\xe2\x9c\x85 ");
		const char *name = json_get_str(l, "alertname");
		put_bold(text, st, name ? name : "alert");
		const char *sev = json_get_str(l, "severity");
		if (sev) {
			buf_puts(text, " \xc2\xb7 ");
			put_text(text, st, sev);
		}
		const char *ctr = lbl(l, container_keys), *host = lbl(l, host_keys);
		if (ctr) {
			buf_puts(text, " \xc2\xb7 container ");
			put_text(text, st, ctr);
		}
		if (host) {
			buf_puts(text, " \xc2\xb7 host ");
			put_text(text, st, host);
		}
		const char *sum = json_get_str(an, "summary");
		if (!sum)
			sum = json_get_str(an, "description");
		if (!sum)
			sum = json_get_str(an, "message");
		if (sum) {
			buf_putc(text, '\n');
			put_text(text, st, sum);
		}
		const char *val = json_get_str(an, "value");
		buf_putc(text, '\n');
		if (val) {
			buf_puts(text, "value ");
			put_text(text, st, val);
			buf_puts(text, " \xc2\xb7 ");
		}
		buf_puts(text, firing ? "since " : "resolved ");
		put_time(text, json_get_str(a, firing ? "startsAt" : "endsAt"));
		const char *rb = json_get_str(an, "runbook_url");
		if (!rb)
			rb = json_get_str(an, "runbook");
		const char *gen = json_get_str(a, "generatorURL");
		if (rb && *rb) {
			buf_puts(text, " \xc2\xb7 ");
			put_link(text, st, "runbook", rb);
		}
		if (gen && *gen) {
			buf_puts(text, " \xc2\xb7 ");
			put_link(text, st, "source", gen);
		}
	}
	if (total > listed)
		buf_printf(text, "\n\n+%zu more", total - listed);
	const struct json *tj = json_get(data, "truncatedAlerts");
	if (tj && tj->type == JSON_NUMBER && tj->number > 0)
		buf_printf(text, "%s(%.0f alerts not listed)", text->len ? "\n" : "", tj->number);
}

void ntext_render(const struct notify_config *cfg, const struct nintegration *in,
		  const struct json *data, enum nstyle style, struct buf *title, struct buf *text)
{
	const char *tt = in ? nopt_get(in, "title") : NULL;
	const char *xt = in ? nopt_get(in, "text") : NULL;
	char err[256];
	if (title) {
		if (tt) {
			size_t mark = title->len;
			if (ntemplate_render(cfg, tt, data, title, err, sizeof(err)) < 0) {
				title->len = mark;
				if (title->data)
					title->data[mark] = '\0';
				buf_printf(title, "(title template: %s) ", err);
				default_title(data, title);
			}
		} else {
			default_title(data, title);
		}
	}
	if (text) {
		if (xt) {
			size_t mark = text->len;
			if (ntemplate_render(cfg, xt, data, text, err, sizeof(err)) < 0) {
				text->len = mark;
				if (text->data)
					text->data[mark] = '\0';
				buf_printf(text, "(text template: %s)\n", err);
				default_text(data, style, text);
			}
		} else {
			default_text(data, style, text);
		}
	}
}
