/*
 * notify_route.c - label matchers, the route tree walk and alert
 * fingerprints, as Alertmanager defines them.
 *
 * A matcher is `name op value` with op one of = != =~ !~; regexes are
 * anchored at both ends (Alertmanager anchors them too) and compiled once
 * when the configuration loads. An absent label matches as the empty
 * string. The route walk is Alertmanager's Route.Match: a route that
 * matches hands the alert to its children depth first; the first matching
 * child takes it unless that child has `continue: true`; when no child
 * matches, the route itself is the destination.
 */
#include "alerting/notify_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int nmatcher_make(struct nmatcher *m, const char *name, const char *value, enum nmatch_op op,
		  char *err, size_t errsize)
{
	memset(m, 0, sizeof(*m));
	m->name = strdup(name);
	m->value = strdup(value);
	m->op = op;
	if (!m->name || !m->value) {
		snprintf(err, errsize, "out of memory");
		goto fail;
	}
	if (op == NM_RE || op == NM_NRE) {
		/* A route's regex compiles once, but a hostile one (a++++...)
		 * would take the agent's memory at start: the PromQL limits. */
		char why[200];
		if (promql_regex_check(value, why, sizeof(why)) < 0) {
			snprintf(err, errsize, "regex \"%.200s\": %s", value, why);
			goto fail;
		}
		size_t n = strlen(value) + 8;
		char *anch = malloc(n);
		if (!anch) {
			snprintf(err, errsize, "out of memory");
			goto fail;
		}
		snprintf(anch, n, "^(%s)$", value);
		int rc = regcomp(&m->re, anch, REG_EXTENDED | REG_NOSUB);
		free(anch);
		if (rc != 0) {
			char msg[128];
			regerror(rc, &m->re, msg, sizeof(msg));
			snprintf(err, errsize, "regex \"%s\": %s", value, msg);
			goto fail;
		}
		m->have_re = true;
	}
	return 0;
fail:
	free(m->name);
	free(m->value);
	memset(m, 0, sizeof(*m));
	return -EINVAL;
}

int nmatcher_parse(struct nmatcher *m, const char *text, char *err, size_t errsize)
{
	const char *p = text;
	while (isspace((unsigned char)*p))
		p++;
	const char *ns = p;
	while (isalnum((unsigned char)*p) || *p == '_')
		p++;
	size_t nlen = (size_t)(p - ns);
	if (nlen == 0 || nlen > 255 || isdigit((unsigned char)*ns)) {
		snprintf(err, errsize, "matcher \"%s\": expected a label name first", text);
		return -EINVAL;
	}
	while (isspace((unsigned char)*p))
		p++;
	enum nmatch_op op;
	if (!strncmp(p, "=~", 2)) {
		op = NM_RE;
		p += 2;
	} else if (!strncmp(p, "!~", 2)) {
		op = NM_NRE;
		p += 2;
	} else if (!strncmp(p, "!=", 2)) {
		op = NM_NE;
		p += 2;
	} else if (*p == '=') {
		op = NM_EQ;
		p += 1;
	} else {
		snprintf(err, errsize, "matcher \"%s\": expected =, !=, =~ or !~ after the name", text);
		return -EINVAL;
	}
	while (isspace((unsigned char)*p))
		p++;
	char value[1024];
	size_t vl = 0;
	if (*p == '"') {
		p++;
		for (; *p && *p != '"'; p++) {
			char c = *p;
			if (c == '\\' && p[1]) {
				p++;
				c = *p == 'n' ? '\n' : *p;
			}
			if (vl + 1 >= sizeof(value)) {
				snprintf(err, errsize, "matcher \"%.64s...\": value too long", text);
				return -EINVAL;
			}
			value[vl++] = c;
		}
		if (*p != '"') {
			snprintf(err, errsize, "matcher \"%s\": unterminated quote", text);
			return -EINVAL;
		}
		p++;
		while (isspace((unsigned char)*p))
			p++;
		if (*p) {
			snprintf(err, errsize, "matcher \"%s\": text after the value", text);
			return -EINVAL;
		}
	} else {
		const char *end = p + strlen(p);
		while (end > p && isspace((unsigned char)end[-1]))
			end--;
		vl = (size_t)(end - p);
		if (vl >= sizeof(value)) {
			snprintf(err, errsize, "matcher \"%.64s...\": value too long", text);
			return -EINVAL;
		}
		memcpy(value, p, vl);
	}
	value[vl] = '\0';
	char name[256];
	memcpy(name, ns, nlen);
	name[nlen] = '\0';
	return nmatcher_make(m, name, value, op, err, errsize);
}

void nmatchers_free(struct nmatchers *ms)
{
	for (size_t i = 0; i < ms->n; i++) {
		free(ms->m[i].name);
		free(ms->m[i].value);
		if (ms->m[i].have_re)
			regfree(&ms->m[i].re);
	}
	free(ms->m);
	ms->m = NULL;
	ms->n = 0;
}

const char *nlabel_get(const struct store_label *l, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(l[i].name, name))
			return l[i].value;
	return "";
}

bool nmatchers_match(const struct nmatchers *ms, const struct store_label *l, size_t n)
{
	for (size_t i = 0; i < ms->n; i++) {
		const struct nmatcher *m = &ms->m[i];
		const char *v = nlabel_get(l, n, m->name);
		bool ok;
		switch (m->op) {
		case NM_EQ: ok = !strcmp(v, m->value); break;
		case NM_NE: ok = strcmp(v, m->value) != 0; break;
		case NM_RE: ok = regexec(&m->re, v, 0, NULL, 0) == 0; break;
		default: ok = regexec(&m->re, v, 0, NULL, 0) != 0; break;
		}
		if (!ok)
			return false;
	}
	return true;
}

static size_t walk(const struct nroute *r, const struct store_label *l, size_t n,
		   const struct nroute **out, size_t max, size_t have)
{
	if (!nmatchers_match(&r->match, l, n))
		return have;
	size_t before = have;
	for (size_t i = 0; i < r->nchild; i++) {
		size_t got = walk(r->child[i], l, n, out, max, have);
		bool matched = got > have || nmatchers_match(&r->child[i]->match, l, n);
		have = got;
		if (matched && !r->child[i]->cont)
			break;
	}
	if (have == before && have < max)
		out[have++] = r;
	return have;
}

size_t nroute_match(const struct nroute *root, const struct store_label *l, size_t n,
		    const struct nroute **out, size_t max)
{
	if (!root)
		return 0;
	/* The root matches everything, whatever its matchers say. */
	size_t have = 0;
	for (size_t i = 0; i < root->nchild; i++) {
		size_t got = walk(root->child[i], l, n, out, max, have);
		bool matched = got > have || nmatchers_match(&root->child[i]->match, l, n);
		have = got;
		if (matched && !root->child[i]->cont)
			break;
	}
	if (have == 0 && max > 0)
		out[have++] = root;
	return have;
}

static int cmp_label_ptr(const void *a, const void *b)
{
	const struct store_label *x = *(const struct store_label *const *)a;
	const struct store_label *y = *(const struct store_label *const *)b;
	return strcmp(x->name, y->name);
}

uint64_t nlabels_fingerprint(const struct store_label *l, size_t n)
{
	const struct store_label *stack[64];
	const struct store_label **idx = n <= 64 ? stack : malloc(n * sizeof(*idx));
	uint64_t h = 14695981039346656037ULL;
	if (!idx)
		return 0;
	for (size_t i = 0; i < n; i++)
		idx[i] = &l[i];
	qsort(idx, n, sizeof(*idx), cmp_label_ptr);
	for (size_t i = 0; i < n; i++) {
		for (const char *s = idx[i]->name; *s; s++)
			h = (h ^ (unsigned char)*s) * 1099511628211ULL;
		h = (h ^ 0xff) * 1099511628211ULL;
		for (const char *s = idx[i]->value; *s; s++)
			h = (h ^ (unsigned char)*s) * 1099511628211ULL;
		h = (h ^ 0xff) * 1099511628211ULL;
	}
	if (idx != stack)
		free(idx);
	return h;
}
