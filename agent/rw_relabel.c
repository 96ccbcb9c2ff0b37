/*
 * rw_relabel.c - write_relabel_configs for remote write, as Prometheus
 * applies them (model/relabel/relabel.go): per series, after the external
 * labels are added, every rule in order. Regular expressions are POSIX
 * extended, anchored at both ends as Prometheus anchors RE2; $1 or ${1} in
 * a replacement stands for a capture group. The sender runs the rules once
 * per series and caches the result, so their cost does not depend on the
 * sample rate.
 */
#include "agent/rw.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rw_action_parse(const char *s, enum rw_action *out)
{
	static const struct {
		const char *name;
		enum rw_action a;
	} names[] = { { "replace", RW_REPLACE },     { "keep", RW_KEEP },
		      { "drop", RW_DROP },           { "labeldrop", RW_LABELDROP },
		      { "labelkeep", RW_LABELKEEP }, { "labelmap", RW_LABELMAP } };
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		if (!strcmp(s, names[i].name)) {
			*out = names[i].a;
			return 0;
		}
	}
	return -EINVAL;
}

int rw_relabel_compile(struct rw_relabel *r, char *err, size_t errsize)
{
	const char *re = r->regex ? r->regex : "(.*)";
	char why[200];
	if (promql_regex_check(re, why, sizeof(why)) < 0) {
		snprintf(err, errsize, "bad regex \"%.200s\": %s", re, why);
		return -EINVAL;
	}
	size_t n = strlen(re) + 8;
	char *anchored = malloc(n);
	if (!anchored)
		return -ENOMEM;
	snprintf(anchored, n, "^(%s)$", re);
	int rc = regcomp(&r->re, anchored, REG_EXTENDED);
	free(anchored);
	if (rc) {
		char msg[256];
		regerror(rc, &r->re, msg, sizeof(msg));
		snprintf(err, errsize, "bad regex \"%s\": %s", re, msg);
		return -EINVAL;
	}
	r->re_ok = true;
	return 0;
}

void rw_relabel_fini(struct rw_relabel *r)
{
	for (size_t i = 0; i < r->nsource; i++)
		free(r->source[i]);
	free(r->separator);
	free(r->regex);
	free(r->target);
	free(r->replacement);
	if (r->re_ok)
		regfree(&r->re);
	memset(r, 0, sizeof(*r));
}

/* ---- label sets ------------------------------------------------------------ */

static ssize_t lset_find(const struct rw_lset *ls, const char *name)
{
	for (size_t i = 0; i < ls->n; i++)
		if (!strcmp(ls->name[i], name))
			return (ssize_t)i;
	return -1;
}

static void lset_remove(struct rw_lset *ls, size_t i)
{
	free(ls->name[i]);
	free(ls->value[i]);
	ls->n--;
	ls->name[i] = ls->name[ls->n];
	ls->value[i] = ls->value[ls->n];
}

const char *rw_lset_get(const struct rw_lset *ls, const char *name)
{
	ssize_t i = lset_find(ls, name);
	return i < 0 ? NULL : ls->value[i];
}

int rw_lset_set(struct rw_lset *ls, const char *name, const char *value)
{
	ssize_t i = lset_find(ls, name);
	if (!value || !*value) {
		if (i >= 0)
			lset_remove(ls, (size_t)i);
		return 0;
	}
	char *v = strdup(value);
	if (!v)
		return -ENOMEM;
	if (i >= 0) {
		free(ls->value[i]);
		ls->value[i] = v;
		return 0;
	}
	if (ls->n >= RW_MAX_LABELS) {
		free(v);
		return -E2BIG;
	}
	char *nm = strdup(name);
	if (!nm) {
		free(v);
		return -ENOMEM;
	}
	ls->name[ls->n] = nm;
	ls->value[ls->n] = v;
	ls->n++;
	return 0;
}

void rw_lset_sort(struct rw_lset *ls)
{
	/* Insertion sort: label sets are small. */
	for (size_t i = 1; i < ls->n; i++) {
		char *n = ls->name[i], *v = ls->value[i];
		size_t j = i;
		for (; j > 0 && strcmp(ls->name[j - 1], n) > 0; j--) {
			ls->name[j] = ls->name[j - 1];
			ls->value[j] = ls->value[j - 1];
		}
		ls->name[j] = n;
		ls->value[j] = v;
	}
}

void rw_lset_fini(struct rw_lset *ls)
{
	for (size_t i = 0; i < ls->n; i++) {
		free(ls->name[i]);
		free(ls->value[i]);
	}
	ls->n = 0;
}

/* ---- rules ------------------------------------------------------------------ */

/* Expands $N / ${N} in tmpl with the groups of m over s (group 1 of the
 * anchored pattern is the whole user regex, so $N is pattern group N+1).
 * "$$" is a dollar. Returns 0 or -E2BIG. */
static int expand(const char *tmpl, const char *s, const regmatch_t *m, size_t nm, char *out,
		  size_t size)
{
	size_t o = 0;
	for (const char *p = tmpl; *p;) {
		if (p[0] == '$' && p[1] == '$') {
			if (o + 1 >= size)
				return -E2BIG;
			out[o++] = '$';
			p += 2;
			continue;
		}
		if (p[0] == '$' && (isdigit((unsigned char)p[1]) || (p[1] == '{' && isdigit((unsigned char)p[2])))) {
			bool brace = p[1] == '{';
			const char *q = p + 1 + brace;
			size_t g = 0;
			while (isdigit((unsigned char)*q))
				g = g * 10 + (size_t)(*q++ - '0');
			if (brace) {
				if (*q != '}')
					goto literal;
				q++;
			}
			size_t gi = g + 1;
			if (gi < nm && m[gi].rm_so >= 0) {
				size_t len = (size_t)(m[gi].rm_eo - m[gi].rm_so);
				if (o + len >= size)
					return -E2BIG;
				memcpy(out + o, s + m[gi].rm_so, len);
				o += len;
			}
			p = q;
			continue;
		}
literal:
		if (o + 1 >= size)
			return -E2BIG;
		out[o++] = *p++;
	}
	out[o] = '\0';
	return 0;
}

/* The source labels' values joined by the separator. */
static int join_sources(const struct rw_relabel *r, const struct rw_lset *ls, char *out,
			size_t size)
{
	size_t o = 0;
	const char *sep = r->separator ? r->separator : ";";
	out[0] = '\0';
	for (size_t i = 0; i < r->nsource; i++) {
		const char *v = rw_lset_get(ls, r->source[i]);
		int n = snprintf(out + o, size - o, "%s%s", i ? sep : "", v ? v : "");
		if (n < 0 || (size_t)n >= size - o)
			return -E2BIG;
		o += (size_t)n;
	}
	return 0;
}

int rw_relabel_apply(const struct rw_relabel *rules, size_t n, struct rw_lset *ls)
{
	enum { BIG = 4096 };
	char *val = malloc(BIG), *tgt = malloc(BIG), *rep = malloc(BIG);
	int rc = 1;
	if (!val || !tgt || !rep) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t k = 0; k < n && rc == 1; k++) {
		const struct rw_relabel *r = &rules[k];
		regmatch_t m[10];
		const char *repl = r->replacement ? r->replacement : "$1";
		switch (r->action) {
		case RW_KEEP:
		case RW_DROP:
		case RW_REPLACE: {
			if (join_sources(r, ls, val, BIG) < 0) {
				rc = -E2BIG;
				break;
			}
			bool match = regexec(&r->re, val, ARRAY_LEN(m), m, 0) == 0;
			if (r->action == RW_KEEP && !match)
				rc = 0;
			else if (r->action == RW_DROP && match)
				rc = 0;
			else if (r->action == RW_REPLACE && match && r->target) {
				if (expand(r->target, val, m, ARRAY_LEN(m), tgt, BIG) < 0 ||
				    expand(repl, val, m, ARRAY_LEN(m), rep, BIG) < 0) {
					rc = -E2BIG;
					break;
				}
				/* A target that expands to an invalid name is skipped,
				 * as Prometheus does. */
				if (store_label_name_valid(tgt)) {
					int e = rw_lset_set(ls, tgt, rep);
					if (e < 0)
						rc = e;
				}
			}
			break;
		}
		case RW_LABELDROP:
		case RW_LABELKEEP:
			for (size_t i = 0; i < ls->n;) {
				bool match = regexec(&r->re, ls->name[i], 0, NULL, 0) == 0;
				if (match == (r->action == RW_LABELDROP))
					lset_remove(ls, i);
				else
					i++;
			}
			break;
		case RW_LABELMAP: {
			size_t n0 = ls->n;
			for (size_t i = 0; i < n0 && rc == 1; i++) {
				if (regexec(&r->re, ls->name[i], ARRAY_LEN(m), m, 0) != 0)
					continue;
				if (expand(repl, ls->name[i], m, ARRAY_LEN(m), tgt, BIG) < 0) {
					rc = -E2BIG;
					break;
				}
				if (!store_label_name_valid(tgt) || !strcmp(tgt, ls->name[i]))
					continue;
				char *v = strdup(ls->value[i]);
				int e = v ? rw_lset_set(ls, tgt, v) : -ENOMEM;
				free(v);
				if (e < 0)
					rc = e;
			}
			break;
		}
		}
	}
	if (rc == 1 && !rw_lset_get(ls, "__name__"))
		rc = 0;
	if (rc == 1)
		rw_lset_sort(ls);
out:
	free(val);
	free(tgt);
	free(rep);
	return rc;
}
