/*
 * forecast_out.c - the forecaster's published table and its readers: the
 * samples the tick copies into its snapshot (rendered once a refresh), a
 * container's forecasts as JSON for the API and the CLI, and the PromQL
 * functions forecast() and forecast_exhaustion(). The table is immutable
 * and reference-counted under forecaster.lock, so readers never wait for a
 * refresh (forecast_refresh.h).
 */
#include "alerting/forecast_refresh.h"

struct fc_texts *fc_texts_new(void)
{
	struct fc_texts *x = calloc(1, sizeof(*x));
	if (x)
		x->refs = 1;
	return x;
}

struct fc_texts *fc_texts_ref(struct fc_texts *x)
{
	if (x)
		__atomic_add_fetch(&x->refs, 1, __ATOMIC_RELAXED);
	return x;
}

void fc_texts_unref(struct fc_texts *x)
{
	if (!x || __atomic_sub_fetch(&x->refs, 1, __ATOMIC_ACQ_REL))
		return;
	arena_free(&x->arena);
	free(x);
}

void fc_table_free(struct fc_table *t)
{
	if (!t)
		return;
	for (int k = 0; k < RES__COUNT; k++)
		fc_texts_unref(t->texts[k]);
	free(t->e);
	free(t->samples);
	arena_free(&t->arena);
	free(t);
}

void fc_table_unref(struct forecaster *f, struct fc_table *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&f->lock);
	int left = --t->refs;
	pthread_mutex_unlock(&f->lock);
	if (!left)
		fc_table_free(t);
}

struct fc_table *fc_table_ref(struct forecaster *f)
{
	pthread_mutex_lock(&f->lock);
	struct fc_table *t = f->current;
	if (t)
		t->refs++;
	pthread_mutex_unlock(&f->lock);
	return t;
}

struct fc_entry *fc_table_add(struct fc_table *t)
{
	if (t->n == t->cap) {
		if (t->cap >= FC_MAX_ENTRIES)
			return NULL;
		size_t cap = t->cap ? t->cap * 2 : 256;
		struct fc_entry *e = realloc(t->e, cap * sizeof(*e));
		if (!e)
			return NULL;
		t->e = e;
		t->cap = cap;
	}
	struct fc_entry *e = &t->e[t->n++];
	memset(e, 0, sizeof(*e));
	e->now = e->limit = NAN;
	e->eta = e->early = e->late = INFINITY;
	return e;
}

/* ---- what the tick and the API read ------------------------------------------------------ */

/* Prometheus' duration text for a horizon label: "1h", "90m", "45s". */
static void horizon_text(char *out, size_t size, int64_t ms)
{
	int64_t s = ms / 1000;
	if (s % 86400 == 0)
		snprintf(out, size, "%lldd", (long long)(s / 86400));
	else if (s % 3600 == 0)
		snprintf(out, size, "%lldh", (long long)(s / 3600));
	else if (s % 60 == 0)
		snprintf(out, size, "%lldm", (long long)(s / 60));
	else
		snprintf(out, size, "%llds", (long long)s);
}

double fc_trend_per_second(const struct fc_fit *fit)
{
	if (fit->model == FC_MODEL_HOLT_WINTERS)
		return fit->trend / ((double)FC_SLOT_MS / 1e3);
	return fit->model == FC_MODEL_NONE ? NAN : fit->slope;
}

/* Adds one sample of the table's rendering (extra: in the table's arena
 * already); false when out of memory. */
static bool add_sample(struct fc_table *t, uint32_t family, const char *extra, double v)
{
	if (t->nsamples == t->samples_cap) {
		size_t cap = t->samples_cap ? t->samples_cap * 2 : 1024;
		struct fc_sample *ns = realloc(t->samples, cap * sizeof(*ns));
		if (!ns)
			return false;
		t->samples = ns;
		t->samples_cap = cap;
	}
	t->samples[t->nsamples++] = (struct fc_sample){ family, extra, v };
	return true;
}

/* a (na bytes) and b (nb) joined into one string in arena ar: a sample's
 * labels; NULL on ENOMEM. */
static const char *join(struct arena *ar, const char *a, size_t na, const char *b, size_t nb)
{
	char *p = arena_alloc(ar, na + nb + 1);
	if (p) {
		memcpy(p, a, na);
		memcpy(p + na, b, nb);
		p[na + nb] = '\0';
	}
	return p;
}

/* s at p (no terminator); returns the end. */
static char *put(char *p, const char *s)
{
	size_t n = strlen(s);
	memcpy(p, s, n);
	return p + n;
}

/* The labels of an entry's model sample: its labels and
 * ',model="...",reason="..."'. Made once per model in its selection's
 * texts and kept there (a "none" for one reason at a time: another one is
 * made in the table's own arena, so that texts kept for long do not grow
 * with a reason that comes and goes); NULL on ENOMEM. */
static const char *model_label(struct fc_table *t, const struct fc_entry *e)
{
	struct keyed_txt *tx = e->tx;
	const char *reason = e->model == FC_MODEL_NONE && e->reason ? e->reason : "";
	const char **slot = &tx->mlabel[e->model];
	bool cache = e->model != FC_MODEL_NONE || !*slot || tx->none_reason == reason;
	if (cache && *slot)
		return *slot;
	char sfx[96];                    /* (the model and reason: short names of this file's) */
	char *p = put(sfx, ",model=\"");
	p = put(p, fc_model_name(e->model));
	p = put(p, "\",reason=\"");
	p = put(p, reason);
	*p++ = '"';
	const char *l = join(cache ? &t->texts[e->res]->arena : &t->arena, e->labels,
			     strlen(e->labels), sfx, (size_t)(p - sfx));
	if (cache && l) {
		*slot = l;
		if (e->model == FC_MODEL_NONE)
			tx->none_reason = reason;
	}
	return l;
}

/* The labels of an entry's horizon samples (its labels and
 * ',horizon="1h"', one per forecast.horizons), made once in its selection's
 * texts; NULL on ENOMEM. */
static const char **horizon_labels(const struct forecaster *f, struct fc_table *t,
				   const struct fc_entry *e)
{
	struct keyed_txt *tx = e->tx;
	if (tx->hz)
		return tx->hz;
	struct arena *ar = &t->texts[e->res]->arena;
	const char **hz = arena_alloc(ar, f->cfg.nhorizons * sizeof(*hz));
	size_t nl = strlen(e->labels);
	for (size_t h = 0; hz && h < f->cfg.nhorizons; h++) {
		char d[24], sfx[48];
		horizon_text(d, sizeof(d), f->cfg.horizons_ms[h]);
		snprintf(sfx, sizeof(sfx), ",horizon=\"%s\"", d);
		if (!(hz[h] = join(ar, e->labels, nl, sfx, strlen(sfx))))
			return NULL;
	}
	tx->hz = hz;
	return hz;
}

/* One entry's samples: its model (with its reason), and with a forecast
 * the exhaustion and its interval, limit, trend, and per horizon the usage
 * and its interval. */
static bool entry_samples(const struct forecaster *f, struct fc_table *t, const struct fc_entry *e)
{
	bool m = fc_resources[e->res].machine;
	const char *ml = model_label(t, e);
	if (!ml || !add_sample(t, m ? M_MFC_MODEL : M_FC_MODEL, ml, 1))
		return false;
	if (e->model == FC_MODEL_NONE)
		return true;
	t->with++;
	const char **hz = horizon_labels(f, t, e);
	/* the entry's labels for the samples that share them */
	const char *lb = e->labels;
	bool ok = hz != NULL;
	ok = ok && add_sample(t, m ? M_MFC_EXHAUSTION : M_FC_EXHAUSTION, lb, e->eta);
	ok = ok && add_sample(t, m ? M_MFC_EXHAUSTION_LOWER : M_FC_EXHAUSTION_LOWER, lb, e->early);
	ok = ok && add_sample(t, m ? M_MFC_EXHAUSTION_UPPER : M_FC_EXHAUSTION_UPPER, lb, e->late);
	ok = ok && add_sample(t, m ? M_MFC_LIMIT : M_FC_LIMIT, lb, e->limit);
	ok = ok && add_sample(t, m ? M_MFC_TREND : M_FC_TREND, lb, e->trend);
	for (size_t h = 0; h < f->cfg.nhorizons && ok; h++)
		ok = add_sample(t, m ? M_MFC_USAGE : M_FC_USAGE, hz[h], e->y[h]) &&
		     add_sample(t, m ? M_MFC_USAGE_LOWER : M_FC_USAGE_LOWER, hz[h], e->lo[h]) &&
		     add_sample(t, m ? M_MFC_USAGE_UPPER : M_FC_USAGE_UPPER, hz[h], e->hi[h]);
	return ok;
}

/*
 * Renders the table's samples once, when it is built, so that every tick
 * only copies them: one sample per family (and per horizon) of each
 * resource, with labels made once per selection (model_label,
 * horizon_labels: 73,000 samples at 1,000 containers, whose label texts
 * made anew each refresh were a tenth of it). Clears the entries' tx,
 * which the next refresh may free. Returns 0 or -ENOMEM.
 */
int fc_render_samples(const struct forecaster *f, struct fc_table *t)
{
	bool ok = true;
	for (size_t i = 0; i < t->n; i++) {
		struct fc_entry *e = &t->e[i];
		if (ok && e->labels && !entry_samples(f, t, e))
			ok = false;          /* (labels past the cap: left out) */
		e->tx = NULL;
	}
	return ok ? 0 : -ENOMEM;
}

void forecast_emit(struct forecaster *f, struct coll_sink *sink)
{
	if (!f)
		return;
	struct fc_table *t = fc_table_ref(f);
	sink_begin_agent(sink);
	if (t) {
		for (size_t i = 0; i < t->nsamples; i++)
			sink_emit(sink, (enum metric_id)t->samples[i].family, t->samples[i].extra,
				  t->samples[i].value);
		sink_emit(sink, M_AGENT_FORECAST_SECONDS, NULL, t->refresh_seconds);
		sink_emit(sink, M_AGENT_FORECAST_RESOURCES, "state=\"forecast\"", (double)t->with);
		sink_emit(sink, M_AGENT_FORECAST_RESOURCES, "state=\"none\"",
			  (double)(t->n - t->with));
	}
	sink_emit(sink, M_AGENT_FORECAST_REFRESHES, NULL,
		  (double)__atomic_load_n(&f->refreshes, __ATOMIC_RELAXED));
	fc_table_unref(f, t);
}

static void put_num(struct buf *b, const char *key, double v)
{
	buf_printf(b, ",\"%s\":", key);
	if (isfinite(v))
		buf_put_double(b, v);
	else
		buf_puts(b, "null");
}

static void put_entry(struct buf *b, const struct forecaster *f, const struct fc_entry *e)
{
	const struct resource *rd = &fc_resources[e->res];
	buf_puts(b, "{\"resource\":");
	buf_put_json_str(b, rd->name);
	buf_puts(b, ",\"mountpoint\":");
	if (e->mountpoint)
		buf_put_json_str(b, e->mountpoint);
	else
		buf_puts(b, "null");
	buf_printf(b, ",\"unit\":\"%s\",\"usage_series\":\"%s\"", rd->unit, rd->usage);
	put_num(b, "now", e->now);
	put_num(b, "limit", e->limit);
	buf_printf(b, ",\"model\":\"%s\",\"reason\":", fc_model_name(e->model));
	if (e->model == FC_MODEL_NONE) {
		buf_put_json_str(b, e->reason ? e->reason : "no_data");
		buf_puts(b, "}");
		return;
	}
	buf_puts(b, "null");
	put_num(b, "trend_per_second", e->trend);
	put_num(b, "exhaustion_seconds", e->eta);
	put_num(b, "exhaustion_lower_seconds", e->early);
	put_num(b, "exhaustion_upper_seconds", e->late);
	put_num(b, "max_horizon_seconds", (double)f->cfg.max_horizon_ms / 1e3);
	buf_puts(b, ",\"interval\":0.8,\"forecast\":[");
	for (size_t h = 0; h < f->cfg.nhorizons; h++) {
		buf_printf(b, "%s{\"horizon_seconds\":%lld", h ? "," : "",
			   (long long)(f->cfg.horizons_ms[h] / 1000));
		put_num(b, "value", e->y[h]);
		put_num(b, "lower", e->lo[h]);
		put_num(b, "upper", e->hi[h]);
		buf_putc(b, '}');
	}
	buf_printf(b, "],\"points\":%zu,\"segment_start\":", e->npoints);
	buf_put_double(b, (double)e->segment_start_ms / 1e3);
	buf_puts(b, ",\"backtest_mae\":{\"linear\":");
	if (isfinite(e->err_linear))
		buf_put_double(b, e->err_linear);
	else
		buf_puts(b, "null");
	buf_puts(b, ",\"holt_winters\":");
	if (isfinite(e->err_hw))
		buf_put_double(b, e->err_hw);
	else
		buf_puts(b, "null");
	buf_puts(b, "}}");
}

int forecast_container_json(struct forecaster *f, const char *id_label, const char *id,
			    const char *name, struct buf *out)
{
	struct fc_table *t = f ? fc_table_ref(f) : NULL;
	buf_puts(out, "{\"id\":");
	buf_put_json_str(out, id ? id : "");
	buf_puts(out, ",\"name\":");
	buf_put_json_str(out, name ? name : "");
	if (!t) {
		buf_puts(out, ",\"time\":null,\"resources\":[],\"note\":");
		buf_put_json_str(out, f ? "no forecast yet: the first refresh has not finished" :
					  "forecasts are off (forecast.enabled, or storage is off)");
		buf_putc(out, '}');
		return -ENOENT;
	}
	buf_puts(out, ",\"time\":");
	buf_put_double(out, (double)t->time_ms / 1e3);
	buf_printf(out, ",\"interval_seconds\":%lld,\"window_seconds\":%lld,\"resources\":[",
		   (long long)(f->cfg.interval_ms / 1000), (long long)(f->cfg.window_ms / 1000));
	bool first = true;
	for (size_t i = 0; i < t->n; i++) {
		const struct fc_entry *e = &t->e[i];
		if (!e->id || strcmp(e->id, id_label))
			continue;
		if (!first)
			buf_putc(out, ',');
		first = false;
		put_entry(out, f, e);
	}
	buf_puts(out, "]}");
	fc_table_unref(f, t);
	return 0;
}

/* ---- the PromQL functions ------------------------------------------------------------------ */

/* forecast() and forecast_exhaustion() over one series of a range vector:
 * the window is the range, the history the same points. */
static bool promql_forecast(const struct promql_point *p, size_t n, int64_t t_eval_ms,
			    int64_t range_ms, double arg, bool exhaustion, double *out)
{
	if (n < 3 || !isfinite(arg))
		return false;
	int64_t *t = malloc(n * sizeof(*t));
	double *v = malloc(n * sizeof(*v));
	struct fc_fit *fit = malloc(sizeof(*fit));
	bool ok = false;
	if (!t || !v || !fit)
		goto out;
	for (size_t i = 0; i < n; i++) {
		t[i] = p[i].t;
		v[i] = p[i].v;
	}
	struct fc_params pr;
	fc_params_defaults(&pr);
	pr.window_ms = range_ms;
	if (pr.min_span_ms > range_ms / 4)
		pr.min_span_ms = range_ms / 4;
	struct fc_input in = { t, v, n, t, v, n, t_eval_ms, false };
	if (fc_fit(&pr, &in, fit) < 0 || fit->model == FC_MODEL_NONE)
		goto out;
	if (exhaustion) {
		double early, late;
		fc_exhaustion(fit, arg, pr.max_horizon_ms, out, &early, &late);
	} else {
		double lo, hi;
		fc_predict(fit, arg, out, &lo, &hi);
	}
	ok = true;
out:
	free(t);
	free(v);
	free(fit);
	return ok;
}

const struct promql_forecaster forecast_promql = { promql_forecast };
