/*
 * promql_store.c - the agent's store (storage.h) as a PromQL source.
 *
 * Selection goes through the store's label index; points come from its
 * iterators (head and SQLite together), raw first. Where a query reaches
 * back past the raw retention, the part of it the raw points no longer
 * cover is filled from the 1 m roll-up tier and, before that, the 1 h tier:
 * each bucket that ends before the finer points begin becomes one point at
 * the bucket's end holding its last value, so selectors, rate() and the
 * *_over_time functions still see the series, at a coarser resolution.
 * Within the raw retention nothing else is read: an absence of raw points
 * there means the series had none (it had not started, or had ended). Matchers reach the store as POSIX patterns translated from
 * RE2 by the parser.
 */
#include "storage/promql_int.h"
#include "storage/storage.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A gap in raw points at least this wide at the start of a read is filled
 * from roll-ups: a bucket of the tier may end in it. Series sampled more
 * often than a minute never pay for the look. */
#define FILL_GAP_1M_MS (60 * 1000)
#define FILL_GAP_1H_MS (3600 * 1000)

static ssize_t st_select(void *ctx, const struct promql_matcher *m, size_t n, int64_t mint,
			 int64_t maxt, struct arena *a, struct promql_series **out)
{
	struct store *st = ((const struct promql_store *)ctx)->st;
	struct store_matcher *sm = calloc(n + 1, sizeof(*sm));
	if (!sm)
		return -ENOMEM;
	ssize_t rc = 0;
	size_t done = 0;
	for (; done < n; done++) {
		static const enum store_match_op ops[] = { STORE_MATCH_EQ, STORE_MATCH_NE,
							    STORE_MATCH_RE, STORE_MATCH_NRE };
		bool re = m[done].op == PROMQL_MATCH_RE || m[done].op == PROMQL_MATCH_NRE;
		char err[256];
		int r = store_matcher_init(&sm[done], ops[m[done].op], m[done].name,
					   re ? m[done].posix : m[done].value, err, sizeof(err));
		if (r < 0) {
			rc = r;
			goto out;
		}
	}
	struct store_series_set set;
	int r = store_select(st, sm, n, mint, maxt, &set);
	if (r < 0) {
		rc = r;
		goto out;
	}
	struct promql_series *res = arena_alloc(a, (set.n + 1) * sizeof(*res));
	if (!res) {
		store_series_set_free(&set);
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < set.n; i++) {
		const struct store_series_info *si = &set.series[i];
		struct promql_label *l = arena_alloc(a, (si->nlabels + 1) * sizeof(*l));
		if (!l) {
			store_series_set_free(&set);
			rc = -ENOMEM;
			goto out;
		}
		for (size_t j = 0; j < si->nlabels; j++) {
			l[j].name = arena_strdup(a, si->labels[j].name);
			l[j].value = arena_strdup(a, si->labels[j].value);
			if (!l[j].name || !l[j].value) {
				store_series_set_free(&set);
				rc = -ENOMEM;
				goto out;
			}
		}
		res[i].labels = l;
		res[i].nlabels = si->nlabels;
		res[i].ref = si->id;
	}
	rc = (ssize_t)set.n;
	*out = res;
	store_series_set_free(&set);
out:
	for (size_t i = 0; i < done; i++)
		store_matcher_fini(&sm[i]);
	free(sm);
	return rc;
}

/*
 * Appends the raw points in [mint, maxt] (tier RAW), or the roll-up buckets
 * of a tier that end in [mint, maxt] and before `before`, each as one point
 * at its bucket's end holding the bucket's last value. Decoded straight
 * into the array.
 */
static int read_tier(struct store *st, uint32_t id, enum store_tier tier, int64_t mint,
		     int64_t maxt, int64_t before, struct promql_points *out)
{
	int64_t hi = tier == STORE_TIER_RAW || maxt < before ? maxt : before - 1;
	return store_read_points(st, id, tier, mint, hi, out);
}

static int st_points(void *ctx, uint64_t ref, int64_t mint, int64_t maxt, int64_t step_ms,
		     struct promql_points *out)
{
	const struct promql_store *ps = ctx;
	uint32_t id = (uint32_t)ref;
	size_t base = out->n;
	int rc = read_tier(ps->st, id, STORE_TIER_RAW, mint, maxt, 0, out);
	if (rc < 0 || ps->raw_retention_ms <= 0)
		return rc;
	/* Raw points older than the retention are gone: what the read wants
	 * before both the horizon and the first raw point comes from roll-ups,
	 * older first, buckets ending before the finer points begin. */
	int64_t horizon = (ps->now_ms ? ps->now_ms : now_ms()) - ps->raw_retention_ms;
	int64_t first = out->n > base ? out->p[base].t : maxt + 1;
	if (first > horizon)
		first = horizon;
	if (first - mint < FILL_GAP_1M_MS)
		return 0;
	struct promql_points fill = { 0 };
	rc = read_tier(ps->st, id, STORE_TIER_1M, mint, maxt, first, &fill);
	int64_t first1m = fill.n ? fill.p[0].t - store_tier_width_ms(STORE_TIER_1M) + 1 : first;
	if (rc == 0 && first1m - mint >= FILL_GAP_1H_MS) {
		struct promql_points older = { 0 };
		rc = read_tier(ps->st, id, STORE_TIER_1H, mint, maxt, first1m, &older);
		for (size_t i = 0; rc == 0 && i < fill.n; i++)
			rc = promql_points_push(&older, fill.p[i].t, fill.p[i].v);
		promql_points_fini(&fill);
		fill = older;
	}
	if (rc == 0 && fill.n) {
		size_t nraw = out->n - base;
		for (size_t i = 0; i < fill.n && rc == 0; i++)
			rc = promql_points_push(out, 0, 0);
		if (rc == 0) {
			memmove(out->p + base + fill.n, out->p + base, nraw * sizeof(*out->p));
			memcpy(out->p + base, fill.p, fill.n * sizeof(*out->p));
		}
	}
	promql_points_fini(&fill);
	(void)step_ms;
	return rc;
}

static int st_last(void *ctx, uint64_t ref, int64_t mint, int64_t maxt, struct promql_point *out)
{
	const struct promql_store *ps = ctx;
	int64_t horizon = (ps->now_ms ? ps->now_ms : now_ms()) - ps->raw_retention_ms;
	if (ps->raw_retention_ms > 0 && mint < horizon) {
		/* Past the raw retention roll-ups may fill in: the full read. */
		struct promql_points pts = { 0 };
		int rc = st_points(ctx, ref, mint, maxt, 0, &pts);
		if (rc == 0 && pts.n)
			*out = pts.p[pts.n - 1];
		rc = rc < 0 ? rc : pts.n > 0;
		promql_points_fini(&pts);
		return rc;
	}
	int rc = store_last_point(ps->st, (uint32_t)ref, mint, maxt, &out->t, &out->v);
	return rc == -ENOENT ? 0 : rc;
}

static ssize_t st_label_names(void *ctx, char ***out)
{
	return store_label_names(((const struct promql_store *)ctx)->st, NULL, 0, out);
}

static ssize_t st_label_values(void *ctx, const char *name, char ***out)
{
	return store_label_values(((const struct promql_store *)ctx)->st, name, NULL, 0, out);
}

static const struct promql_source_ops store_ops = {
	.select = st_select,
	.points = st_points,
	.label_names = st_label_names,
	.label_values = st_label_values,
	.last = st_last,
};

void promql_store_source(const struct promql_store *ps, struct promql_source *src)
{
	src->ops = &store_ops;
	src->ctx = (void *)ps;
}
