/*
 * index.c - the label index: interned label pairs, each with the sorted ids
 * of the series that carry it (postings), and per label name the list of its
 * values. Matchers are answered from postings: `=` reads one list, `=~`
 * unions the lists of the values its regex accepts, without looking at any
 * series. Also the label-text parser shared by snapshots, import and
 * selectors, and the selector parser.
 */
#include "storage/internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t pair_hash(const char *name, const char *value)
{
	uint64_t h = hash_str(name);
	return (h ^ 0xff) * 1099511628211ULL ^ hash_str(value);
}

static int grow_ht(void ***tab, size_t *nb, size_t n, size_t off_next, size_t off_hash)
{
	if (n < *nb * 2 && *nb)
		return 0;
	size_t nnb = *nb ? *nb * 2 : 256;
	void **nt = calloc(nnb, sizeof(void *));
	if (!nt)
		return -ENOMEM;
	for (size_t i = 0; i < *nb; i++) {
		char *e = (*tab)[i];
		while (e) {
			char *next = *(char **)(e + off_next);
			uint64_t h = *(uint64_t *)(e + off_hash);
			*(char **)(e + off_next) = nt[h & (nnb - 1)];
			nt[h & (nnb - 1)] = e;
			e = next;
		}
	}
	free(*tab);
	*tab = nt;
	*nb = nnb;
	return 0;
}

int lindex_init(struct lindex *x)
{
	memset(x, 0, sizeof(*x));
	return 0;
}

void lindex_fini(struct lindex *x)
{
	for (size_t i = 0; i < x->pairs_nb; i++) {
		struct lpair *p = x->pairs[i];
		while (p) {
			struct lpair *n = p->hnext;
			free(p->ids);
			free(p->name);
			free(p->value);
			free(p);
			p = n;
		}
	}
	for (size_t i = 0; i < x->names_nb; i++) {
		struct lname *l = x->names[i];
		while (l) {
			struct lname *n = l->hnext;
			free(l->pairs);
			free(l->name);
			free(l);
			l = n;
		}
	}
	free(x->pairs);
	free(x->names);
	memset(x, 0, sizeof(*x));
}

struct lname *lindex_name(const struct lindex *x, const char *name)
{
	if (!x->names_nb)
		return NULL;
	uint64_t h = hash_str(name);
	for (struct lname *l = x->names[h & (x->names_nb - 1)]; l; l = l->hnext)
		if (l->hash == h && !strcmp(l->name, name))
			return l;
	return NULL;
}

struct lpair *lindex_find(const struct lindex *x, const char *name, const char *value)
{
	if (!x->pairs_nb)
		return NULL;
	uint64_t h = pair_hash(name, value);
	for (struct lpair *p = x->pairs[h & (x->pairs_nb - 1)]; p; p = p->hnext)
		if (p->hash == h && !strcmp(p->name, name) && !strcmp(p->value, value))
			return p;
	return NULL;
}

struct lpair *lindex_intern(struct lindex *x, const char *name, const char *value)
{
	struct lpair *p = lindex_find(x, name, value);
	if (p)
		return p;
	if (grow_ht((void ***)&x->pairs, &x->pairs_nb, x->npairs, offsetof(struct lpair, hnext),
		    offsetof(struct lpair, hash)) < 0 ||
	    grow_ht((void ***)&x->names, &x->names_nb, x->nnames, offsetof(struct lname, hnext),
		    offsetof(struct lname, hash)) < 0)
		return NULL;
	struct lname *l = lindex_name(x, name);
	if (!l) {
		l = calloc(1, sizeof(*l));
		if (!l || !(l->name = strdup(name))) {
			free(l);
			return NULL;
		}
		l->hash = hash_str(name);
		l->hnext = x->names[l->hash & (x->names_nb - 1)];
		x->names[l->hash & (x->names_nb - 1)] = l;
		x->nnames++;
		x->bytes += sizeof(*l) + strlen(name) + 1;
	}
	if (l->n == l->cap) {
		uint32_t ncap = l->cap ? l->cap * 2 : 4;
		struct lpair **np = realloc(l->pairs, ncap * sizeof(*np));
		if (!np)
			return NULL;
		x->bytes += (ncap - l->cap) * sizeof(*np);
		l->pairs = np;
		l->cap = ncap;
	}
	p = calloc(1, sizeof(*p));
	if (!p || !(p->name = strdup(name)) || !(p->value = strdup(value))) {
		if (p)
			free(p->name);
		free(p);
		return NULL;
	}
	p->hash = pair_hash(name, value);
	p->owner = l;
	p->hnext = x->pairs[p->hash & (x->pairs_nb - 1)];
	x->pairs[p->hash & (x->pairs_nb - 1)] = p;
	x->npairs++;
	l->pairs[l->n++] = p;
	x->bytes += sizeof(*p) + strlen(name) + strlen(value) + 2;
	return p;
}

int lindex_add(struct lindex *x, struct lpair *p, uint32_t id)
{
	if (p->n == p->cap) {
		uint32_t ncap = p->cap ? p->cap + p->cap / 2 + 1 : 1;
		uint32_t *ni = realloc(p->ids, ncap * sizeof(*ni));
		if (!ni)
			return -ENOMEM;
		x->bytes += (ncap - p->cap) * sizeof(*ni);
		p->ids = ni;
		p->cap = ncap;
	}
	/* Ids mostly arrive in increasing order; keep the list sorted anyway. */
	uint32_t i = p->n;
	while (i > 0 && p->ids[i - 1] > id)
		i--;
	memmove(p->ids + i + 1, p->ids + i, (p->n - i) * sizeof(*p->ids));
	p->ids[i] = id;
	p->n++;
	return 0;
}

void lindex_remove(struct lindex *x, struct lpair *p, uint32_t id)
{
	uint32_t lo = 0, hi = p->n;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (p->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < p->n && p->ids[lo] == id) {
		memmove(p->ids + lo, p->ids + lo + 1, (p->n - lo - 1) * sizeof(*p->ids));
		p->n--;
	}
	if (p->n)
		return;
	/* Unlink the pair from its hash chain and its name. */
	struct lpair **pp = &x->pairs[p->hash & (x->pairs_nb - 1)];
	while (*pp && *pp != p)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = p->hnext;
	x->npairs--;
	struct lname *l = p->owner;
	for (uint32_t i = 0; i < l->n; i++) {
		if (l->pairs[i] == p) {
			l->pairs[i] = l->pairs[--l->n];
			break;
		}
	}
	x->bytes -= sizeof(*p) + strlen(p->name) + strlen(p->value) + 2 + p->cap * sizeof(*p->ids);
	free(p->ids);
	free(p->name);
	free(p->value);
	free(p);
	if (l->n)
		return;
	struct lname **lp = &x->names[l->hash & (x->names_nb - 1)];
	while (*lp && *lp != l)
		lp = &(*lp)->hnext;
	if (*lp)
		*lp = l->hnext;
	x->nnames--;
	x->bytes -= sizeof(*l) + strlen(l->name) + 1 + l->cap * sizeof(*l->pairs);
	free(l->pairs);
	free(l->name);
	free(l);
}

/* ---- label text ----------------------------------------------------------- */

/* ASCII only, whatever the locale: Prometheus names are [a-zA-Z_][a-zA-Z0-9_]*
 * (metric names may also hold ':'), and one check serves every folder that
 * takes names from outside (rule files, silences, remote_write, the API). */
static bool name_start(char c, bool colon)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

static bool name_ok(const char *s, bool colon)
{
	if (!s || !name_start(*s, colon))
		return false;
	for (s++; *s; s++)
		if (!name_start(*s, colon) && !(*s >= '0' && *s <= '9'))
			return false;
	return true;
}

bool store_label_name_valid(const char *s)
{
	return name_ok(s, false);
}

bool store_metric_name_valid(const char *s)
{
	return name_ok(s, true);
}

int labels_parse(const char *text, struct store_label *out, size_t max, char *mem,
		 bool stop_at_brace, const char **end)
{
	const char *p = text;
	size_t n = 0;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || (stop_at_brace && *p == '}'))
			break;
		const char *ns = p;
		while (isalnum((unsigned char)*p) || *p == '_')
			p++;
		if (p == ns || n >= max)
			return -EINVAL;
		size_t nl = (size_t)(p - ns);
		memcpy(mem, ns, nl);
		mem[nl] = '\0';
		out[n].name = mem;
		mem += nl + 1;
		while (*p == ' ')
			p++;
		if (*p++ != '=')
			return -EINVAL;
		while (*p == ' ')
			p++;
		if (*p++ != '"')
			return -EINVAL;
		out[n].value = mem;
		for (;;) {
			if (!*p)
				return -EINVAL;
			if (*p == '"')
				break;
			if (*p == '\\') {
				p++;
				if (*p == 'n')
					*mem++ = '\n';
				else if (*p == '\\' || *p == '"')
					*mem++ = *p;
				else
					return -EINVAL;
				p++;
				continue;
			}
			*mem++ = *p++;
		}
		*mem++ = '\0';
		p++;
		n++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == ',') {
			p++;
			continue;
		}
		if (!*p || (stop_at_brace && *p == '}'))
			break;
		return -EINVAL;
	}
	if (end)
		*end = p;
	return (int)n;
}

/* ---- matchers and selectors ----------------------------------------------- */

int store_matcher_init(struct store_matcher *m, enum store_match_op op, const char *name,
		       const char *value, char *err, size_t errsize)
{
	memset(m, 0, sizeof(*m));
	m->op = op;
	m->name = strdup(name);
	m->value = strdup(value);
	if (!m->name || !m->value) {
		store_matcher_fini(m);
		snprintf(err, errsize, "out of memory");
		return -ENOMEM;
	}
	if (op == STORE_MATCH_RE || op == STORE_MATCH_NRE) {
		/* match[] of the series API and --match of the CLI come from
		 * outside: the PromQL limits on regcomp's blow-ups. */
		char why[200];
		if (promql_regex_check(value, why, sizeof(why)) < 0) {
			snprintf(err, errsize, "label %s: bad regular expression \"%.200s\": %s", name,
				 value, why);
			store_matcher_fini(m);
			return -EINVAL;
		}
		size_t len = strlen(value) + 5;
		char *anch = malloc(len);
		if (!anch) {
			store_matcher_fini(m);
			return -ENOMEM;
		}
		snprintf(anch, len, "^(%s)$", value);
		int rc = regcomp(&m->re, anch, REG_EXTENDED | REG_NOSUB);
		free(anch);
		if (rc) {
			char msg[256];
			regerror(rc, &m->re, msg, sizeof(msg));
			snprintf(err, errsize, "label %s: bad regular expression \"%s\": %s", name,
				 value, msg);
			free(m->name);
			free(m->value);
			m->name = m->value = NULL;
			return -EINVAL;
		}
	}
	m->matches_empty = store_matcher_match(m, "");
	return 0;
}

void store_matcher_fini(struct store_matcher *m)
{
	if (!m || !m->name)
		return;
	if (m->op == STORE_MATCH_RE || m->op == STORE_MATCH_NRE)
		regfree(&m->re);
	free(m->name);
	free(m->value);
	m->name = m->value = NULL;
}

bool store_matcher_match(const struct store_matcher *m, const char *value)
{
	switch (m->op) {
	case STORE_MATCH_EQ: return strcmp(value, m->value) == 0;
	case STORE_MATCH_NE: return strcmp(value, m->value) != 0;
	case STORE_MATCH_RE: return regexec(&m->re, value, 0, NULL, 0) == 0;
	case STORE_MATCH_NRE: return regexec(&m->re, value, 0, NULL, 0) != 0;
	}
	return false;
}

int store_parse_selector(const char *text, struct store_matcher *out, size_t max, char *err,
			 size_t errsize)
{
	const char *p = text;
	size_t n = 0;
	int rc = -EINVAL;
	while (*p == ' ')
		p++;
	const char *ns = p;
	while (isalnum((unsigned char)*p) || *p == '_' || *p == ':')
		p++;
	if (p > ns) {
		char name[256];
		if ((size_t)(p - ns) >= sizeof(name) || max == 0) {
			snprintf(err, errsize, "metric name too long");
			return -EINVAL;
		}
		memcpy(name, ns, (size_t)(p - ns));
		name[p - ns] = '\0';
		if ((rc = store_matcher_init(&out[n], STORE_MATCH_EQ, "__name__", name, err, errsize)) < 0)
			return rc;
		n++;
	}
	while (*p == ' ')
		p++;
	if (*p == '{') {
		p++;
		for (;;) {
			while (*p == ' ' || *p == ',')
				p++;
			if (*p == '}') {
				p++;
				break;
			}
			const char *ls = p;
			while (isalnum((unsigned char)*p) || *p == '_')
				p++;
			if (p == ls || p - ls >= 256) {
				snprintf(err, errsize, "offset %zu: expected a label name", (size_t)(ls - text));
				goto fail;
			}
			char lname[256];
			memcpy(lname, ls, (size_t)(p - ls));
			lname[p - ls] = '\0';
			while (*p == ' ')
				p++;
			enum store_match_op op;
			if (p[0] == '=' && p[1] == '~') {
				op = STORE_MATCH_RE;
				p += 2;
			} else if (p[0] == '!' && p[1] == '~') {
				op = STORE_MATCH_NRE;
				p += 2;
			} else if (p[0] == '!' && p[1] == '=') {
				op = STORE_MATCH_NE;
				p += 2;
			} else if (p[0] == '=') {
				op = STORE_MATCH_EQ;
				p++;
			} else {
				snprintf(err, errsize, "offset %zu: expected =, !=, =~ or !~",
					 (size_t)(p - text));
				goto fail;
			}
			while (*p == ' ')
				p++;
			if (*p != '"') {
				snprintf(err, errsize, "offset %zu: expected a quoted value",
					 (size_t)(p - text));
				goto fail;
			}
			p++;
			char val[STORE_MAX_LABEL_BYTES];
			size_t vl = 0;
			while (*p && *p != '"') {
				char c = *p++;
				if (c == '\\' && *p) {
					c = *p++;
					if (c == 'n')
						c = '\n';
				}
				if (vl + 1 >= sizeof(val)) {
					snprintf(err, errsize, "label value too long");
					goto fail;
				}
				val[vl++] = c;
			}
			val[vl] = '\0';
			if (*p != '"') {
				snprintf(err, errsize, "unterminated label value");
				goto fail;
			}
			p++;
			if (n >= max) {
				snprintf(err, errsize, "too many matchers (at most %zu)", max);
				goto fail;
			}
			if ((rc = store_matcher_init(&out[n], op, lname, val, err, errsize)) < 0)
				goto fail;
			n++;
		}
	}
	while (*p == ' ')
		p++;
	if (*p) {
		snprintf(err, errsize, "offset %zu: unexpected \"%.20s\"", (size_t)(p - text), p);
		goto fail;
	}
	if (n == 0) {
		snprintf(err, errsize, "empty selector");
		return -EINVAL;
	}
	return (int)n;
fail:
	for (size_t i = 0; i < n; i++)
		store_matcher_fini(&out[i]);
	return -EINVAL;
}
