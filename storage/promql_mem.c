/*
 * promql_mem.c - a PromQL source that keeps series in memory: the engine's
 * unit tests load data here, and tools can evaluate PromQL over points they
 * hold without a store. Selection is a scan of every series, which is fine
 * for the thousands of series tests use.
 */
#include "storage/promql_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct mem_series {
	struct promql_label *labels; /* sorted, owned */
	size_t nlabels;
	struct promql_points pts;
};

struct promql_mem {
	struct mem_series *s;
	size_t n, cap;
};

struct promql_mem *promql_mem_new(void)
{
	return calloc(1, sizeof(struct promql_mem));
}

void promql_mem_free(struct promql_mem *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		for (size_t j = 0; j < m->s[i].nlabels; j++) {
			free((char *)m->s[i].labels[j].name);
			free((char *)m->s[i].labels[j].value);
		}
		free(m->s[i].labels);
		promql_points_fini(&m->s[i].pts);
	}
	free(m->s);
	free(m);
}

static int cmp_label(const void *a, const void *b)
{
	return strcmp(((const struct promql_label *)a)->name,
		      ((const struct promql_label *)b)->name);
}

ssize_t promql_mem_series(struct promql_mem *m, const char *text)
{
	struct promql_expr *e;
	const struct promql_matcher *mt;
	size_t nm;
	char err[256];
	if (promql_parse_selector(text, &e, &mt, &nm, err, sizeof(err)) < 0)
		return -EINVAL;
	struct promql_label *l = calloc(nm + 1, sizeof(*l));
	size_t n = 0;
	ssize_t rc = -ENOMEM;
	if (!l)
		goto out;
	for (size_t i = 0; i < nm; i++) {
		if (mt[i].op != PROMQL_MATCH_EQ) {
			rc = -EINVAL;
			goto out;
		}
		if (!*mt[i].value)
			continue;
		l[n].name = strdup(mt[i].name);
		l[n].value = strdup(mt[i].value);
		if (!l[n].name || !l[n].value) {
			free((char *)l[n].name);
			free((char *)l[n].value);
			goto out;
		}
		n++;
	}
	qsort(l, n, sizeof(*l), cmp_label);
	for (size_t i = 0; i < m->n; i++) {
		struct mem_series *s = &m->s[i];
		if (s->nlabels != n)
			continue;
		size_t j = 0;
		while (j < n && !strcmp(s->labels[j].name, l[j].name) &&
		       !strcmp(s->labels[j].value, l[j].value))
			j++;
		if (j == n) {
			rc = (ssize_t)i;
			goto out;
		}
	}
	if (m->n == m->cap) {
		size_t nc = m->cap ? m->cap * 2 : 16;
		struct mem_series *ns = realloc(m->s, nc * sizeof(*ns));
		if (!ns)
			goto out;
		m->s = ns;
		m->cap = nc;
	}
	memset(&m->s[m->n], 0, sizeof(m->s[0]));
	m->s[m->n].labels = l;
	m->s[m->n].nlabels = n;
	l = NULL;
	n = 0;
	rc = (ssize_t)m->n++;
out:
	if (l) {
		for (size_t i = 0; i < n; i++) {
			free((char *)l[i].name);
			free((char *)l[i].value);
		}
		free(l);
	}
	promql_expr_free(e);
	return rc;
}

int promql_mem_add(struct promql_mem *m, size_t idx, int64_t t_ms, double v)
{
	if (idx >= m->n)
		return -ENOENT;
	struct promql_points *p = &m->s[idx].pts;
	if (p->n && p->p[p->n - 1].t >= t_ms)
		return -EINVAL;
	return promql_points_push(p, t_ms, v);
}

static const char *get(const struct mem_series *s, const char *name)
{
	for (size_t i = 0; i < s->nlabels; i++)
		if (!strcmp(s->labels[i].name, name))
			return s->labels[i].value;
	return "";
}

static ssize_t mem_select(void *ctx, const struct promql_matcher *mt, size_t nm, int64_t mint,
			  int64_t maxt, struct arena *a, struct promql_series **out)
{
	struct promql_mem *m = ctx;
	struct promql_series *res = arena_alloc(a, (m->n + 1) * sizeof(*res));
	if (!res)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < m->n; i++) {
		const struct mem_series *s = &m->s[i];
		if (!s->pts.n || s->pts.p[0].t > maxt || s->pts.p[s->pts.n - 1].t < mint)
			continue;
		bool ok = true;
		for (size_t j = 0; j < nm && ok; j++)
			ok = promql_matcher_match(&mt[j], get(s, mt[j].name));
		if (!ok)
			continue;
		res[k].labels = s->labels;
		res[k].nlabels = s->nlabels;
		res[k].ref = i;
		k++;
	}
	qsort(res, k, sizeof(*res), promql_series_cmp);
	*out = res;
	return (ssize_t)k;
}

static int mem_points(void *ctx, uint64_t ref, int64_t mint, int64_t maxt, int64_t step_ms,
		      struct promql_points *out)
{
	struct promql_mem *m = ctx;
	if (ref >= m->n)
		return -ENOENT;
	const struct promql_points *p = &m->s[ref].pts;
	size_t lo = 0, hi = p->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (p->p[mid].t < mint)
			lo = mid + 1;
		else
			hi = mid;
	}
	hi = lo;
	while (hi < p->n && p->p[hi].t <= maxt)
		hi++;
	if (promql_points_reserve(out, hi - lo) < 0)
		return -ENOMEM;
	if (hi > lo)
		memcpy(out->p + out->n, p->p + lo, (hi - lo) * sizeof(*out->p));
	out->n += hi - lo;
	return 0;
}

static const struct promql_source_ops mem_ops = {
	.select = mem_select,
	.points = mem_points,
};

void promql_mem_source(struct promql_mem *m, struct promql_source *src)
{
	src->ops = &mem_ops;
	src->ctx = m;
}
