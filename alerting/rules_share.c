/*
 * rules_share.c - rules that compare the same expression with different
 * thresholds evaluate it once per round.
 *
 * Rule packs are full of `X > 0.8` beside `X > 0.9` (warning and critical),
 * or the same ratio with several thresholds. When a rule's expression is
 * `LHS <op> number` (op one of == != > < >= <=, no bool), LHS an instant
 * vector that binds tighter than the comparison, LHS is evaluated once per
 * evaluation time for every rule that has it, and each rule applies its
 * own comparison: the elements of LHS whose value compares true, labels and
 * value unchanged (__name__ too), which is what PromQL's filtering
 * comparison with a scalar gives.
 *
 * The split is made on the canonical text of the parsed expression and only
 * where it is certain: at the last comparison outside brackets and strings,
 * with no other comparison and no and/or/unless outside brackets on its
 * left (those bind looser than a comparison, so `a or b > 3` is `a or (b >
 * 3)` and is left alone), a plain number on its right, and a left side that
 * parses on its own as an instant vector. A recording rule's write drops
 * the shared results that name the series it wrote (a later rule must see
 * what it wrote); left sides that read ALERTS or match on __name__ are not
 * shared.
 */
#include "alerting/rules_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHARE_MAX 256                    /* shared results kept per round */

bool share_cmp_match(int op, double v, double x)
{
	switch (op) {
	case SHARE_EQ: return v == x;
	case SHARE_NE: return v != x;
	case SHARE_GT: return v > x;
	case SHARE_LT: return v < x;
	case SHARE_GE: return v >= x;
	case SHARE_LE: return v <= x;
	}
	return false;
}

static bool word_at(const char *s, size_t i, size_t len, const char *w)
{
	size_t n = strlen(w);
	if (i + n > len || strncmp(s + i, w, n))
		return false;
	bool before = i == 0 || !(isalnum((unsigned char)s[i - 1]) || s[i - 1] == '_' ||
				  s[i - 1] == ':');
	bool after = i + n == len || !(isalnum((unsigned char)s[i + n]) || s[i + n] == '_' ||
				       s[i + n] == ':');
	return before && after;
}

void share_split(struct rule *r, const char *c, struct arena *a)
{
	size_t len = strlen(c);
	int depth = 0;
	ssize_t at = -1;
	size_t oplen = 0;
	int op = 0, ncmp = 0;
	bool loose = false;
	for (size_t i = 0; i < len; i++) {
		char ch = c[i];
		if (ch == '"' || ch == '\'' || ch == '`') {
			for (i++; i < len && c[i] != ch; i++)
				if (c[i] == '\\' && ch != '`')
					i++;
			continue;
		}
		if (ch == '(' || ch == '[' || ch == '{') {
			depth++;
			continue;
		}
		if (ch == ')' || ch == ']' || ch == '}') {
			depth--;
			continue;
		}
		if (depth)
			continue;
		if (word_at(c, i, len, "and") || word_at(c, i, len, "or") ||
		    word_at(c, i, len, "unless"))
			loose = true;
		int o = -1;
		size_t l = 1;
		if (ch == '=' && i + 1 < len && c[i + 1] == '=')
			o = SHARE_EQ, l = 2;
		else if (ch == '!' && i + 1 < len && c[i + 1] == '=')
			o = SHARE_NE, l = 2;
		else if (ch == '>' && i + 1 < len && c[i + 1] == '=')
			o = SHARE_GE, l = 2;
		else if (ch == '<' && i + 1 < len && c[i + 1] == '=')
			o = SHARE_LE, l = 2;
		else if (ch == '>')
			o = SHARE_GT;
		else if (ch == '<')
			o = SHARE_LT;
		if (o < 0)
			continue;
		if (at >= 0)
			loose = true; /* a comparison on the left of the last one */
		at = (ssize_t)i;
		oplen = l;
		op = o;
		ncmp++;
		i += l - 1;
	}
	/* Left sides reading ALERTS would have to be computed again after
	 * every alerting rule: not shared. */
	if (at <= 0 || loose || ncmp != 1 || strstr(c, "ALERTS") || strstr(c, "__name__"))
		return;
	const char *rhs = c + at + oplen;
	while (isspace((unsigned char)*rhs))
		rhs++;
	if (!strncmp(rhs, "bool", 4) || !*rhs)
		return;
	char *end;
	double x = strtod(rhs, &end);
	while (isspace((unsigned char)*end))
		end++;
	if (end == rhs || *end)
		return;
	size_t llen = (size_t)at;
	while (llen && isspace((unsigned char)c[llen - 1]))
		llen--;
	char *lhs = arena_alloc(a, llen + 1);
	if (!lhs)
		return;
	memcpy(lhs, c, llen);
	lhs[llen] = '\0';
	struct promql_expr *e;
	char err[256];
	if (promql_parse(lhs, &e, err, sizeof(err)) < 0)
		return;
	if (promql_expr_type(e) != PROMQL_VECTOR) {
		promql_expr_free(e);
		return;
	}
	r->lhs = e;
	r->lhs_key = lhs;
	r->cmp_op = op;
	r->cmp_val = x;
}

struct share_ent {
	char *key;                       /* lhs_key */
	int64_t t;
	bool ok;
	struct promql_result res;
	struct promql_error err;
};

struct share_cache {
	struct share_ent e[SHARE_MAX];
	size_t n;
};

struct share_cache *share_cache_new(void)
{
	return calloc(1, sizeof(struct share_cache));
}

void share_cache_clear(struct share_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		if (c->e[i].ok)
			promql_result_fini(&c->e[i].res);
	c->n = 0;
}

void share_cache_forget(struct share_cache *c, const char *metric)
{
	if (!c)
		return;
	size_t k = 0;
	for (size_t i = 0; i < c->n; i++) {
		if (strstr(c->e[i].key, metric)) {
			if (c->e[i].ok)
				promql_result_fini(&c->e[i].res);
			continue;
		}
		c->e[k++] = c->e[i];
	}
	c->n = k;
}

void share_cache_free(struct share_cache *c)
{
	share_cache_clear(c);
	free(c);
}

const struct promql_result *share_eval(struct share_cache *c, const struct promql_source *src,
				       const struct promql_opts *o, const struct rule *r, int64_t t,
				       struct promql_error *err)
{
	for (size_t i = 0; i < c->n; i++) {
		struct share_ent *e = &c->e[i];
		if (e->t != t || strcmp(e->key, r->lhs_key))
			continue;
		if (!e->ok) {
			*err = e->err;
			return NULL;
		}
		return &e->res;
	}
	if (c->n >= SHARE_MAX)
		share_cache_clear(c);
	struct share_ent *e = &c->e[c->n];
	memset(e, 0, sizeof(*e));
	e->key = r->lhs_key;
	e->t = t;
	e->ok = promql_eval_instant(src, o, r->lhs, t, &e->res, &e->err) == 0;
	c->n++;
	if (!e->ok) {
		*err = e->err;
		return NULL;
	}
	return &e->res;
}
