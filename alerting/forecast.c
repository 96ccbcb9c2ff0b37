/*
 * forecast.c - capacity forecasts for every container and the host: the
 * refresh thread, the resources it forecasts, the published table, and
 * what the tick, /metrics and the API read from it.
 *
 * Every forecast.interval the thread selects, from the store, the usage
 * and limit series of each resource (table `resources` below), pairs them
 * by their labels, reads the raw window and the 1 m roll-ups of each, cuts
 * them at known breaks (a stale marker: the container stopped; a change of
 * the limit or of container_start_time_seconds: a new run or a new limit; a
 * counter reset), fits (forecast_model.c) and builds a new table. The table
 * is immutable and reference-counted; publishing swaps a pointer under a
 * lock, so the tick (forecast_emit) and HTTP handlers never wait for a fit.
 *
 * Why most series are not read whole each refresh: at 1,000 containers
 * that is 1.4 million samples a minute at 10 s (14 million at 1 s), most of
 * them read and summed again unchanged. A series whose fit is linear keeps
 * the window's sums (struct fc_inc, forecast_int.h's fc_window) and each
 * refresh only adds the samples since the last and removes those that left
 * the window; whatever could change the answer beyond the line (a break, a
 * step, the periodic full fit) reads it whole as before.
 *
 * Why the tick copies the table into its snapshot instead of /metrics
 * appending it: samples in the snapshot are stored like every other
 * series, so rules and PromQL see container_forecast_* (the default rules
 * alert on them), /metrics and its gzip cache stay one path, and the
 * series are continuous between refreshes instead of appearing once a
 * minute.
 */
#include "alerting/forecast_refresh.h"

/* ---- configuration ------------------------------------------------------------ */

void forecast_config_defaults(struct forecast_config *c)
{
	memset(c, 0, sizeof(*c));
	c->enabled = true;
	c->interval_ms = 60 * 1000;
	c->window_ms = 3600 * 1000;
	c->history_ms = 7 * 86400 * 1000LL;
	c->max_horizon_ms = 30 * 86400 * 1000LL;
	c->horizons_ms[0] = 3600 * 1000;
	c->horizons_ms[1] = 86400 * 1000;
	c->nhorizons = 2;
	c->min_points = 10;
}

static int cfg_fail(const char *file, const struct ynode *n, const char *key, char *err,
		    size_t errsize, const char *msg)
{
	snprintf(err, errsize, "%s:%d:%d: forecast.%s: %s", file, n->line, n->col, key, msg);
	return -EINVAL;
}

static int cfg_duration(const char *file, const struct ynode *n, int64_t min_ms, int64_t *out,
			char *err, size_t errsize)
{
	int64_t v;
	if (n->type != YNODE_SCALAR || parse_duration_ms(n->scalar, &v) < 0 || v < min_ms) {
		char msg[96];
		snprintf(msg, sizeof(msg), "expected a duration of at least %lldms, such as 1h",
			 (long long)min_ms);
		return cfg_fail(file, n, n->key, err, errsize, msg);
	}
	*out = v;
	return 0;
}

int forecast_config_load(struct forecast_config *c, const struct ynode *map, const char *file,
			 char *err, size_t errsize)
{
	if (map->type != YNODE_MAP) {
		snprintf(err, errsize, "%s:%d:%d: forecast: expected a mapping", file, map->line,
			 map->col);
		return -EINVAL;
	}
	for (const struct ynode *n = map->child; n; n = n->next) {
		int rc = 0;
		const char *k = n->key;
		if (!strcmp(k, "enabled")) {
			if (n->type != YNODE_SCALAR ||
			    (strcmp(n->scalar, "true") && strcmp(n->scalar, "false")))
				return cfg_fail(file, n, k, err, errsize, "expected true or false");
			c->enabled = !strcmp(n->scalar, "true");
		} else if (!strcmp(k, "interval")) {
			rc = cfg_duration(file, n, 1000, &c->interval_ms, err, errsize);
		} else if (!strcmp(k, "window")) {
			rc = cfg_duration(file, n, 10000, &c->window_ms, err, errsize);
		} else if (!strcmp(k, "history")) {
			rc = cfg_duration(file, n, 0, &c->history_ms, err, errsize);
		} else if (!strcmp(k, "max_horizon")) {
			rc = cfg_duration(file, n, 60000, &c->max_horizon_ms, err, errsize);
		} else if (!strcmp(k, "min_points")) {
			char *end;
			long v = n->type == YNODE_SCALAR ? strtol(n->scalar, &end, 10) : 0;
			if (n->type != YNODE_SCALAR || *end || v < 3 || v > 100000)
				return cfg_fail(file, n, k, err, errsize,
						"expected a whole number from 3 to 100000");
			c->min_points = (size_t)v;
		} else if (!strcmp(k, "horizons")) {
			if (n->type != YNODE_SEQ || n->count == 0 || n->count > FORECAST_MAX_HORIZONS)
				return cfg_fail(file, n, k, err, errsize,
						"expected a list of 1 to 8 durations, such as [1h, 24h]");
			size_t i = 0;
			for (const struct ynode *h = n->child; h; h = h->next) {
				int64_t v;
				if (h->type != YNODE_SCALAR || parse_duration_ms(h->scalar, &v) < 0 ||
				    v < 1000)
					return cfg_fail(file, h, k, err, errsize,
							"expected a duration such as 1h");
				c->horizons_ms[i++] = v;
			}
			c->nhorizons = i;
		} else {
			return cfg_fail(file, n, k, err, errsize, "unknown key in forecast");
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- the table ------------------------------------------------------------------- */


const struct resource fc_resources[RES__COUNT] = {
	[RES_MEMORY] = { "memory", "bytes", "container_memory_working_set_bytes",
			 "container_spec_memory_limit_bytes", NULL, NULL, false, false, false,
			 false, false, "no_limit" },
	[RES_PIDS] = { "pids", "tasks", "container_pids", "container_spec_pids_limit", NULL, NULL,
		       false, false, false, false, true, "no_limit" },
	[RES_FS] = { "fs", "bytes", "container_fs_backing_usage_bytes", "container_fs_limit_bytes",
		     NULL, NULL, false, false, true, false, false, "no_limit" },
	/* a volume's (or tmpfs') own bytes against the room its filesystem has
	 * for it: the capacity less what everything else there holds */
	[RES_VOLUME] = { "volume", "bytes", "container_fs_usage_bytes", "container_fs_limit_bytes",
			 NULL, "container_fs_backing_usage_bytes", false, false, true, true, true,
			 "no_limit" },
	/* the writable layer's bytes against its quota (--storage-opt size) */
	[RES_WRITABLE] = { "writable", "bytes", "container_fs_usage_bytes",
			   "container_fs_quota_bytes", "mountpoint=/", NULL, false, false, true,
			   false, true, "no_quota" },
	[RES_CPU] = { "cpu", "cores", "container_cpu_usage_seconds_total", "container_spec_cpu_quota",
		      "cpu=total", "container_spec_cpu_period", true, false, false, false, false,
		      "no_limit" },
	[RES_HOST_MEMORY] = { "memory", "bytes", "machine_memory_available_bytes",
			      "machine_memory_bytes", NULL, NULL, false, true, false, false, false,
			      "no_limit" },
	[RES_HOST_FS] = { "fs", "bytes", "machine_fs_usage_bytes", "machine_fs_limit_bytes", NULL,
			  NULL, false, true, true, false, false, "no_limit" },
};






/* ---- one refresh ----------------------------------------------------------------------- */



/* Fills e's numbers from fit (NULL: none) against limit. */
static void finish_entry(struct refresh *r, struct fc_entry *e, const struct fc_fit *fit,
			 double limit)
{
	const struct forecast_config *c = &r->f->cfg;
	e->limit = limit;
	e->model = FC_MODEL_NONE;
	e->err_linear = e->err_hw = NAN;
	if (!(limit > 0)) {
		e->reason = fc_resources[e->res].no_limit;
		return;
	}
	if (!fit || fit->model == FC_MODEL_NONE) {
		e->reason = fit && fit->reason ? fit->reason : "no_data";
		return;
	}
	e->model = fit->model;
	e->trend = fc_trend_per_second(fit);
	e->npoints = fit->npoints;
	e->segment_start_ms = fit->segment_start_ms;
	e->err_linear = fit->err_linear;
	e->err_hw = fit->err_hw;
	fc_exhaustion(fit, limit, c->max_horizon_ms, &e->eta, &e->early, &e->late);
	for (size_t h = 0; h < c->nhorizons; h++)
		fc_predict(fit, (double)c->horizons_ms[h] / 1e3, &e->y[h], &e->lo[h], &e->hi[h]);
}

/* Converts p (a counter) into its rate, in place through r->rate_t. */
int fc_to_rate(struct refresh *r, struct pts *p, int64_t step_ms)
{
	if (fc_pts_grow(&r->rate_t, p->n + 1) < 0)
		return -ENOMEM;
	size_t n = p->n ? fc_counter_rate(p->t, p->v, p->n, step_ms, r->rate_t.t, r->rate_t.v) : 0;
	if (!n) {
		p->n = 0;
		return 0;
	}
	memcpy(p->t, r->rate_t.t, n * sizeof(*p->t));
	memcpy(p->v, r->rate_t.v, n * sizeof(*p->v));
	p->n = n;
	return 0;
}

/*
 * Latest value of a limit or start-time series and the time it last changed
 * (into *chg), reading only what came after the last refresh's read; NAN
 * when absent or ended (a stale marker: the container is gone).
 */
static double read_limit(struct refresh *r, const struct store_series_info *si, bool fresh,
			 struct pts *p, int64_t mint, int64_t *chg)
{
	*chg = INT64_MIN;
	if (!si)
		return NAN;
	struct sstate *ss = fc_smap_get(r->f->slow, si->id);
	if (!ss)
		return NAN;
	int64_t from = ss->last_t >= mint ? ss->last_t + 1 : mint;
	/* Nothing newer than what was read (the selection's max_t is current):
	 * no read, as for a start time that every resource of the container
	 * asks for. Else when the newest point is the value already known, the
	 * limit did not change (a change and a change back within one
	 * interval is missed: it would only have cut the fit): one look at the
	 * head instead of an iterator; its time is kept as the newest read. */
	if (fresh && si->max_t < from)
		from = INT64_MAX;        /* (a kept selection's max_t is old) */
	int64_t lt;
	double lv;
	if (from <= r->now && ss->last_t && !ss->stale &&
	    store_last_point(r->f->st, si->id, from, r->now, &lt, &lv) == 1 && !store_is_stale(lv) &&
	    lv == ss->last_v) {
		ss->last_t = lt;
		from = INT64_MAX;
	}
	if (from <= r->now) {
		if (fc_read_series(r->f->st, si->id, STORE_TIER_RAW, true, from, r->now, p) < 0)
			return NAN;
		for (size_t i = 0; i < p->n; i++) {
			if (store_is_stale(p->v[i])) {
				ss->stale = true;
				ss->change_t = p->t[i];
				continue;
			}
			if (ss->last_t && (ss->stale || p->v[i] != ss->last_v))
				ss->change_t = p->t[i];
			ss->stale = false;
			ss->last_v = p->v[i];
			ss->last_t = p->t[i];
		}
		if (p->n && p->t[p->n - 1] > ss->last_t)
			ss->last_t = p->t[p->n - 1];
	}
	*chg = ss->change_t;
	return ss->stale || !ss->last_t ? NAN : ss->last_v;
}

/* What a resource may grow to: its limit, or for a volume the capacity less
 * what the others on its filesystem hold (the filesystem's use less the
 * volume's own bytes, now). */
static double room(const struct resource *rd, double limit, double others, double now)
{
	if (!rd->others_use || !(limit > 0))
		return limit;
	double rest = isfinite(now) && others > now ? others - now : 0;
	return limit - rest;
}

/* A new entry of the table for a usage series, its texts those of its
 * selection (the table holds a reference to them, forecast_family: it
 * outlives the selection); NULL on ENOMEM. */
static struct fc_entry *entry_add(struct refresh *r, enum fc_res res, struct keyed_txt *tx)
{
	struct fc_entry *e = fc_table_add(r->t);
	if (!e)
		return NULL;
	e->res = res;
	e->labels = tx->text;
	e->mountpoint = tx->mp;
	e->id = tx->id;
	e->tx = tx;
	return e;
}

static int forecast_family(struct refresh *r, enum fc_res res)
{
	const struct resource *rd = &fc_resources[res];
	struct forecaster *f = r->f;
	const struct forecast_config *c = &f->cfg;
	int64_t hist_from = r->now - (c->history_ms > c->window_ms ? c->history_ms : c->window_ms);
	int64_t raw_from = r->now - c->window_ms;
	struct keyed *sel = &f->sel[3 * res], *use = &sel[0], *lim = &sel[1], *lim2 = &sel[2];
	int rc = fc_keyed_get(f->st, use, rd->usage, rd->usage_match, raw_from, r->now, r->epoch, true,
			      rd->name);
	if (rc == 0)
		rc = fc_keyed_get(f->st, lim, rd->limit, NULL, raw_from, r->now, r->epoch, true, NULL);
	if (rc == 0 && rd->limit2)
		rc = fc_keyed_get(f->st, lim2, rd->limit2, NULL, raw_from, r->now, r->epoch, true,
				  NULL);
	if (rc == 0 && !r->t->texts[res])
		r->t->texts[res] = fc_texts_ref(use->texts);
	bool fresh_lim = lim->made_at == r->now, fresh_lim2 = lim2->made_at == r->now;
	bool fresh_starts = r->starts->made_at == r->now;
	for (size_t i = 0; rc == 0 && i < use->set.n; i++) {
		const struct store_series_info *si = &use->set.series[i];
		struct keyed_txt *tx = &use->txt[i];
		if (!rd->machine && !tx->id)
			continue;                /* a container series always has an id */
		if (rd->others_use && (!tx->mp || !strcmp(tx->mp, "/")))
			continue;                /* the writable layer is RES_WRITABLE */
		/* the limit first: without one only the newest values are read */
		int64_t chg, chg2 = INT64_MIN;
		fc_pair_txt(tx, lim, lim2, r->starts);
		double limit = read_limit(r, tx->lim, fresh_lim, &r->lim, raw_from,
					  &chg);
		double others = 0;            /* others_use: the filesystem's use by all, now */
		if (rd->others_use) {
			const struct store_series_info *os = tx->lim2;
			int64_t ot;
			if (!os || store_last_point(f->st, os->id, raw_from, r->now, &ot, &others) != 1 ||
			    !isfinite(others))
				limit = NAN;     /* without it the room is unknown */
		} else if (rd->limit2) {
			double period = read_limit(r, tx->lim2, fresh_lim2, &r->lim2,
						   raw_from, &chg2);
			limit = period > 0 ? limit / period : NAN;
		}
		if (chg2 > chg)
			chg = chg2;
		if (!rd->machine && r->starts->set.n) {
			const struct store_series_info *ss = tx->start;
			int64_t sc;
			if (ss && !isnan(read_limit(r, ss, fresh_starts, &r->aux, raw_from, &sc)) &&
			    sc > chg)
				chg = sc;        /* a restart */
		}

		/* A linear fit kept as sums moves with the window when nothing
		 * broke since and no full fit is due; when its history fit is due,
		 * only the history is read to see whether the line still wins. */
		struct sstate *us = limit > 0 ? fc_smap_get(f->slow, si->id) : NULL;
		struct fc_fit incfit;
		bool inc_ok = false;
		if (us && us->inc) {
			struct fc_inc *in = us->inc;
			bool hist_due = si->min_t < raw_from && c->history_ms > c->window_ms &&
					(!us->long_at || r->now >= us->long_due);
			if (chg > in->chg || in->limit != limit || r->now >= in->full_at ||
			    r->now <= (in->rate ? in->acc.last_t : in->last_t))
				fc_inc_drop(us);
			else
				inc_ok = fc_inc_advance(r, us, si->id, res == RES_HOST_MEMORY,
						     rd->staircase, &incfit);
			if (inc_ok && hist_due) {
				inc_ok = fc_inc_history_keeps(r, us, si->id, res, limit, chg, hist_from);
				if (!inc_ok)
					fc_inc_drop(us);
			}
		}
		if (inc_ok) {
			struct fc_entry *e = entry_add(r, res, tx);
			if (!e) {
				rc = -ENOMEM;
				break;
			}
			e->now = incfit.last;
			finish_entry(r, e, &incfit, room(rd, limit, others, e->now));
			continue;
		}

		int64_t from = raw_from;
		if (!(limit > 0) && r->now - FC_TAIL_MS > from)
			from = r->now - FC_TAIL_MS;
		if (!(limit > 0) && !rd->counter) {
			/* nothing to fit: the newest value is all the table shows */
			int64_t lt;
			double lv;
			if (store_last_point(f->st, si->id, from, r->now, &lt, &lv) != 1 ||
			    store_is_stale(lv))
				continue;        /* the container is gone */
			struct fc_entry *e = entry_add(r, res, tx);
			if (!e) {
				rc = -ENOMEM;
				break;
			}
			e->now = res == RES_HOST_MEMORY ? limit - lv : lv;
			finish_entry(r, e, NULL, limit);
			continue;
		}
		if (fc_read_series(f->st, si->id, STORE_TIER_RAW, true, from, r->now, &r->raw) < 0)
			continue;
		bool stale;
		int64_t cut = fc_drop_stale(&r->raw, &stale);
		if (stale || !r->raw.n || r->raw.t[r->raw.n - 1] < from)
			continue;                /* the container is gone */
		struct fc_entry *e = entry_add(r, res, tx);
		if (!e) {
			rc = -ENOMEM;
			break;
		}

		if (cut > chg)
			chg = cut;
		if (rd->counter) {
			int64_t rs = fc_last_change(&r->raw, true);
			if (rs > chg)
				chg = rs;
		}

		/* long history only for series older than the window, and only
		 * every FC_HISTORY_EVERY_MS or after a break */
		r->hist.n = 0;
		struct sstate *ls = NULL;
		if (limit > 0 && si->min_t < raw_from && c->history_ms > c->window_ms)
			ls = fc_smap_get(f->slow, si->id);
		bool due = ls && (!ls->long_at || r->now >= ls->long_due || chg > ls->long_at);
		if (due && fc_read_series(f->st, si->id, STORE_TIER_1M, rd->counter, hist_from, r->now,
				       &r->hist) == 0) {
			bool hs;
			int64_t hc = fc_drop_stale(&r->hist, &hs);
			if (hc > chg)
				chg = hc;
			fc_cut_at(&r->hist, chg);
		}
		fc_cut_at(&r->raw, chg);
		e->now = r->raw.n ? r->raw.v[r->raw.n - 1] : NAN;
		struct fc_rate_acc acc;
		bool have_acc = false;
		if (rd->counter) {
			int64_t step = c->window_ms / 60 > 1000 ? c->window_ms / 60 : 1000;
			if (r->raw.n) {
				fc_rate_acc_init(&acc, step, r->raw.t, r->raw.v, r->raw.n);
				have_acc = true;
			}
			fc_to_rate(r, &r->raw, step);
			fc_to_rate(r, &r->hist, 60000);
			e->now = r->raw.n ? r->raw.v[r->raw.n - 1] : NAN;
		}
		if (res == RES_HOST_MEMORY) {
			/* used = total - available, at the same ticks */
			for (size_t k = 0; k < r->raw.n; k++)
				r->raw.v[k] = limit - r->raw.v[k];
			for (size_t k = 0; k < r->hist.n; k++)
				r->hist.v[k] = limit - r->hist.v[k];
			e->now = r->raw.n ? r->raw.v[r->raw.n - 1] : NAN;
		}
		if (!(limit > 0)) {
			/* nothing to run out of: no fit at all, only the reason */
			finish_entry(r, e, NULL, room(rd, limit, others, e->now));
			continue;
		}
		struct fc_input in = { r->raw.t, r->raw.v, r->raw.n, r->hist.t, r->hist.v,
				       r->hist.n, r->now, rd->staircase };
		if (!r->hist.n) {
			in.ht = in.t;
			in.hv = in.v;
			in.hn = in.n;
		}
		struct fc_fit *fit = &r->fit;
		if (ls && !due && ls->long_fit) {
			/* carried forward from the last history fit */
			*fit = *ls->long_fit;
			fc_reanchor(fit, r->now, r->raw.n ? r->raw.v[r->raw.n - 1] : fit->last);
			finish_entry(r, e, fit, room(rd, limit, others, e->now));
			continue;
		}
		if (fc_fit(&f->params, &in, fit) < 0) {
			rc = -ENOMEM;
			break;
		}
		/* the next refreshes move this line's sums instead of reading the
		 * window (not when the fit came from the history: that is redone
		 * every FC_HISTORY_EVERY_MS anyway) */
		bool kept = false;
		if (fit->model == FC_MODEL_LINEAR && r->raw.n && (!rd->counter || have_acc)) {
			struct sstate *bs = fc_smap_get(f->slow, si->id);  /* us may have moved */
			if (bs)
				fc_inc_build(r, bs, &r->raw, fit, chg, limit,
					  rd->counter ? &acc : NULL);
			kept = bs && bs->inc;
		}
		if (due) {
			/* a line kept as sums has its history looked at hourly (as
			 * inc_history_keeps does after), a fit that needs it sooner */
			ls->long_at = r->now;
			ls->long_due = fc_stagger(r->now, si->id,
						  kept ? FC_HISTORY_LINE_EVERY_MS : FC_HISTORY_EVERY_MS,
						  c->interval_ms);
			free(ls->long_fit);
			ls->long_fit = NULL;
			if (fit->model == FC_MODEL_HOLT_WINTERS || fit->model == FC_MODEL_PEAKS) {
				ls->long_fit = malloc(sizeof(*ls->long_fit));
				if (ls->long_fit)
					*ls->long_fit = *fit;
			}
		}
		finish_entry(r, e, fit, room(rd, limit, others, e->now));
	}
	if (rc < 0)
		for (int k = 0; k < 3; k++)
			fc_keyed_free(&sel[k]);     /* select again next time */
	return rc;
}

int forecast_refresh(struct forecaster *f, int64_t now)
{
	int64_t t0 = mono_ns();
	struct fc_table *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->refs = 1;
	t->time_ms = now;
	/* sized as the last table was: no copies while it grows */
	struct fc_table *last = fc_table_ref(f);
	if (last) {
		t->e = malloc((last->n + 64) * sizeof(*t->e));
		t->cap = t->e ? last->n + 64 : 0;
		t->samples = malloc((last->nsamples + 256) * sizeof(*t->samples));
		t->samples_cap = t->samples ? last->nsamples + 256 : 0;
		fc_table_unref(f, last);
	}
	struct refresh r = { .f = f, .t = t, .now = now, .starts = &f->sel[3 * RES__COUNT] };
	r.epoch = store_series_epoch(f->st);
	r.raw = f->scratch[0];
	r.hist = f->scratch[1];
	r.lim = f->scratch[2];
	r.lim2 = f->scratch[3];
	r.aux = f->scratch[4];
	r.rate_t = f->scratch[5];
	int rc = fc_keyed_get(f->st, r.starts, "container_start_time_seconds", NULL,
			      now - f->cfg.window_ms, now, r.epoch, false, NULL);
	for (int res = 0; rc == 0 && res < RES__COUNT; res++)
		rc = forecast_family(&r, (enum fc_res)res);
	struct pts *keep[] = { &r.raw, &r.hist, &r.lim, &r.lim2, &r.aux, &r.rate_t };
	for (size_t k = 0; k < ARRAY_LEN(keep); k++)
		f->scratch[k] = *keep[k];
	if (rc == 0)
		rc = fc_render_samples(f, t);
	if (rc < 0) {
		log_limited(&f->ll, LOG_WARN, "forecast: refresh failed: %s", strerror(-rc));
		fc_table_free(t);
		return rc;
	}
	log_recovered(&f->ll, "forecast refresh");
	t->refresh_seconds = (double)(mono_ns() - t0) / 1e9;
	pthread_mutex_lock(&f->lock);
	struct fc_table *old = f->current;
	f->current = t;
	pthread_mutex_unlock(&f->lock);
	fc_table_unref(f, old);
	__atomic_add_fetch(&f->refreshes, 1, __ATOMIC_RELAXED);
	return 0;
}

/* ---- the thread -------------------------------------------------------------------------- */

/*
 * When the thread refreshes, and as of what time. A refresh is made as of a
 * multiple of forecast.interval (a slot), once a tick at or after that slot
 * is in the store (forecast_data): every sample up to the slot is then
 * stored, so the linear fit is exactly predict_linear over the same window
 * at that time. (Refreshing as of the clock's now raced the tick: a tick
 * stamped before now but still being collected was missing from the fit and
 * present in a later predict_linear.) Slot times also make each window start
 * on a boundary of the kept cells (struct fc_inc), so no point leaving the
 * window has to be read again. Without ticks (none for three tick steps and
 * two intervals: tests, a stalled collector) the clock's slot is used.
 * Returns the refresh time, or 0 to wait (*wait_ms, the longest wait).
 */
static int64_t next_refresh(const struct forecaster *f, int64_t last, int64_t now_wall,
			    int64_t now_mono_ms, int64_t *wait_ms)
{
	int64_t iv = f->cfg.interval_ms;
	int64_t slot = last ? last + iv : now_wall / iv * iv;
	if (f->data_ms >= slot)
		return f->data_ms / iv * iv;
	int64_t quiet = 3 * f->data_step_ms > 2 * iv ? 3 * f->data_step_ms : 2 * iv;
	int64_t since = f->data_ms ? now_mono_ms - f->data_arrival_ms : now_wall - slot;
	if (since >= quiet && now_wall >= slot)
		return now_wall / iv * iv;
	*wait_ms = quiet - since > 0 ? quiet - since : 1;
	if (now_wall < slot && slot - now_wall < *wait_ms)
		*wait_ms = slot - now_wall;
	return 0;
}

static void *run(void *arg)
{
	struct forecaster *f = arg;
	int64_t last = 0;
	pthread_mutex_lock(&f->lock);
	while (!f->stop) {
		int64_t wait_ms = 0;
		int64_t at = next_refresh(f, last, now_ms(), mono_ns() / 1000000, &wait_ms);
		if (at) {
			pthread_mutex_unlock(&f->lock);
			forecast_refresh(f, at);
			pthread_mutex_lock(&f->lock);
			last = at;
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t ns = ts.tv_nsec + (wait_ms % 1000) * 1000000;
		ts.tv_sec += wait_ms / 1000 + ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		pthread_cond_timedwait(&f->cond, &f->lock, &ts);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

void forecast_data(struct forecaster *f, int64_t t_ms, int64_t step_ms)
{
	if (!f || t_ms <= 0)
		return;
	pthread_mutex_lock(&f->lock);
	if (t_ms > f->data_ms) {
		f->data_ms = t_ms;
		f->data_step_ms = step_ms;
		f->data_arrival_ms = mono_ns() / 1000000;
		pthread_cond_signal(&f->cond);
	}
	pthread_mutex_unlock(&f->lock);
}

int forecast_new(struct forecaster **out, struct store *st, const struct forecast_config *cfg)
{
	struct forecaster *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->st = st;
	f->cfg = *cfg;
	f->slow = calloc(1, sizeof(*f->slow));
	f->sel = calloc(FC_NSEL, sizeof(*f->sel));
	f->scratch = calloc(FC_NSCRATCH, sizeof(*f->scratch));
	if (!f->slow || !f->sel || !f->scratch) {
		free(f->slow);
		free(f->sel);
		free(f->scratch);
		free(f);
		return -ENOMEM;
	}
	/* the selections come due at different refreshes (fc_keyed_get) */
	for (uint32_t k = 0; k < FC_NSEL; k++) {
		f->sel[k].phase = k;
		f->sel[k].slot_ms = cfg->interval_ms;
	}
	fc_params_defaults(&f->params);
	f->params.window_ms = cfg->window_ms;
	f->params.max_horizon_ms = cfg->max_horizon_ms;
	f->params.min_points = cfg->min_points;
	/* a quarter of the window, at most the model's minute */
	if (f->params.min_span_ms > cfg->window_ms / 4)
		f->params.min_span_ms = cfg->window_ms / 4;
	pthread_mutex_init(&f->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cond, &ca);
	pthread_condattr_destroy(&ca);
	*out = f;
	return 0;
}

int forecast_start(struct forecaster **out, struct store *st, const struct forecast_config *cfg)
{
	*out = NULL;
	if (!cfg->enabled || !st)
		return 0;
	struct forecaster *f;
	int rc = forecast_new(&f, st, cfg);
	if (rc < 0)
		return rc;
	if ((rc = pthread_create(&f->thread, NULL, run, f)) != 0) {
		forecast_stop(f);
		return -rc;
	}
	f->threaded = true;
	*out = f;
	return 0;
}

void forecast_stop(struct forecaster *f)
{
	if (!f)
		return;
	if (f->threaded) {
		pthread_mutex_lock(&f->lock);
		f->stop = true;
		pthread_cond_signal(&f->cond);
		pthread_mutex_unlock(&f->lock);
		pthread_join(f->thread, NULL);
	}
	fc_table_unref(f, f->current);
	for (size_t k = 0; f->scratch && k < FC_NSCRATCH; k++)
		fc_pts_fini(&f->scratch[k]);
	free(f->scratch);
	for (int k = 0; f->sel && k < FC_NSEL; k++)
		fc_keyed_free(&f->sel[k]);
	free(f->sel);
	for (size_t i = 0; f->slow && i < f->slow->cap; i++) {
		free(f->slow->e[i].long_fit);
		fc_inc_free(f->slow->e[i].inc);
	}
	if (f->slow)
		free(f->slow->e);
	free(f->slow);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
	free(f);
}

