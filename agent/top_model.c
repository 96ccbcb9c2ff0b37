/*
 * top_model.c - the data behind `monitor top`: one row per container from
 * two ticks of /api/v1/containers, the filter language, sorting on
 * smoothed values, grouping by compose project or pod with subtotals, the
 * totals row, the host header, colour levels and which columns fit a width.
 * No terminal here: tests/unit/agent/test_top.c drives all of it.
 *
 * The numbers are the ones `monitor stats` shows (cli_usage_compute: CPU %
 * as docker computes it, working set against the limit); on top of them
 * come per-second rates of network and block I/O (Δbytes / Δtick time),
 * the CPU quota share, CFS throttling (Δthrottled periods / Δperiods), and
 * the lifecycle fields of the list (restarts, exit code, OOM kill, start).
 *
 * Sorting by a volatile value (CPU, memory, I/O, network) uses an
 * exponential moving average with a time constant of TOP_SMOOTH_TAU_S, kept
 * per container id across refreshes: a container that is busy for one tick
 * does not jump to the top and back (dozzle#2314, btop's "lazy" sort). The
 * shown numbers are always the latest raw ones.
 */
#include "agent/top.h"
#include "storage/storage.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const struct top_col_info top_cols[TOP_COL__COUNT] = {
	[TOP_COL_STATUS] = { "status", "ST", 2, 0, true, "state and health glyph" },
	[TOP_COL_NAME] = { "name", "NAME", 14, 0, true, "container name (middle-ellipsised)" },
	[TOP_COL_CPU] = { "cpu", "CPU%", 6, 7, true, "CPU %, 100 = one core (docker stats)" },
	[TOP_COL_CPU_LIMIT] = { "cpul", "CPU/L", 5, 0, true, "CPU % of the container's quota" },
	[TOP_COL_MEM] = { "mem", "MEM", 11, 7, true, "working set / limit (binary units)" },
	[TOP_COL_NET] = { "net", "NET RX/TX", 11, 0, true, "network bytes per second" },
	[TOP_COL_IO] = { "io", "IO R/W", 11, 0, true, "block I/O bytes per second" },
	[TOP_COL_PIDS] = { "pids", "PIDS", 5, 0, true, "processes and threads" },
	[TOP_COL_RESTARTS] = { "restarts", "RST", 3, 0, true, "restart count" },
	[TOP_COL_UPTIME] = { "uptime", "UPTIME", 6, 0, true, "time since start" },
	[TOP_COL_ALERT] = { "alert", "AL", 2, 0, true, "alert: \u25b2 (or !) firing, ? pending, s silenced" },
	[TOP_COL_ID] = { "id", "ID", 12, 0, false, "container id (12 characters)" },
	[TOP_COL_IMAGE] = { "image", "IMAGE", 20, 0, false, "image" },
	[TOP_COL_GROUP] = { "group", "PROJECT/POD", 16, 0, false, "compose project or namespace/pod" },
	[TOP_COL_THROTTLE] = { "throttle", "THR%", 5, 0, false, "% of CPU periods throttled" },
	[TOP_COL_OOM] = { "oom", "OOM", 3, 0, false, "OOM events" },
};

/* Display order: the enum's. Drop order: documented in top.h and README. */
const enum top_col top_drop_order[] = {
	TOP_COL_IMAGE, TOP_COL_ID, TOP_COL_GROUP, TOP_COL_THROTTLE, TOP_COL_OOM,
	TOP_COL_CPU_LIMIT, TOP_COL_UPTIME, TOP_COL__COUNT /* bars */, TOP_COL_IO,
	TOP_COL_RESTARTS, TOP_COL_PIDS, TOP_COL_NET,
};
const size_t top_drop_order_len = ARRAY_LEN(top_drop_order);

int top_col_by_key(const char *key)
{
	for (int i = 0; i < TOP_COL__COUNT; i++)
		if (!strcasecmp(top_cols[i].key, key))
			return i;
	return -1;
}

/* ---- small helpers ------------------------------------------------------------ */

double top_smooth(double prev, double x, double dt_s, double tau_s)
{
	if (prev < 0 || !isfinite(prev) || dt_s <= 0)
		return x;
	double a = 1.0 - exp(-dt_s / tau_s);
	return prev + a * (x - prev);
}

int top_level(const struct top_model *m, double pct)
{
	if (!isfinite(pct))
		return 0;
	if (pct >= m->crit_pct)
		return 2;
	if (pct >= m->warn_pct)
		return 1;
	return 0;
}

static bool num(const struct json *obj, const char *key, double *out)
{
	const struct json *v = obj ? json_get(obj, key) : NULL;
	if (!v || v->type != JSON_NUMBER)
		return false;
	*out = v->number;
	return true;
}

static bool value(const struct json *ctr, const char *metric, double *out)
{
	return ctr && cli_value(ctr, metric, out);
}

/* ---- the filter ------------------------------------------------------------------ */

void top_filter_fini(struct top_filter *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->nterms; i++)
		if (f->terms[i].have_re)
			regfree(&f->terms[i].re);
	f->nterms = 0;
	f->text[0] = '\0';
}

static bool key_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-' || c == '/';
}

static int parse_term(struct top_term *t, const char *w, char *err, size_t errsize)
{
	memset(t, 0, sizeof(*t));
	if (*w == '!') {
		t->negate = true;
		w++;
	}
	if (!*w) {
		snprintf(err, errsize, "\"!\" needs something to negate");
		return -EINVAL;
	}
	const char *re_text = NULL;
	const char *eq = strchr(w, '=');
	size_t klen = eq ? (size_t)(eq - w) : 0;
	if (eq && klen > 0 && w[klen - 1] == '!') {     /* key!=value */
		t->negate = !t->negate;
		klen--;
	}
	bool is_key = eq && klen > 0 && klen < sizeof(t->key);
	for (size_t i = 0; is_key && i < klen; i++)
		is_key = key_char(w[i]);
	if (*w == '~') {
		t->kind = TOP_TERM_REGEX;
		re_text = w + 1;
	} else if (is_key) {
		memcpy(t->key, w, klen);
		t->key[klen] = '\0';
		if (eq[1] == '~') {
			t->kind = TOP_TERM_KEY_RE;
			re_text = eq + 2;
		} else {
			t->kind = TOP_TERM_KEY_EQ;
			snprintf(t->text, sizeof(t->text), "%s", eq + 1);
		}
	} else {
		t->kind = TOP_TERM_TEXT;
		snprintf(t->text, sizeof(t->text), "%s", w);
	}
	if (re_text) {
		snprintf(t->text, sizeof(t->text), "%s", re_text);
		/* Typed by a user, or passed in a script's --filter: the same
		 * limits as every other regcomp of outside input, since glibc
		 * takes minutes and gigabytes on `a++++...`. */
		char why[128];
		if (promql_regex_check(re_text, why, sizeof(why)) < 0) {
			snprintf(err, errsize, "regex \"%.64s\": %s", re_text, why);
			return -EINVAL;
		}
		int rc = regcomp(&t->re, re_text, REG_EXTENDED | REG_ICASE | REG_NOSUB);
		if (rc) {
			regerror(rc, &t->re, why, sizeof(why));
			snprintf(err, errsize, "regex \"%.64s\": %s", re_text, why);
			return -EINVAL;
		}
		t->have_re = true;
	}
	return 0;
}

int top_filter_parse(struct top_filter *f, const char *text, char *err, size_t errsize)
{
	memset(f, 0, sizeof(*f));
	if (strlen(text) >= sizeof(f->text)) {
		snprintf(err, errsize, "filter longer than %zu characters", sizeof(f->text) - 1);
		return -EINVAL;
	}
	snprintf(f->text, sizeof(f->text), "%s", text);
	char copy[TOP_FILTER_TEXT_MAX];
	snprintf(copy, sizeof(copy), "%s", text);
	char *save = NULL;
	for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		if (f->nterms == TOP_FILTER_MAX_TERMS) {
			snprintf(err, errsize, "more than %d words", TOP_FILTER_MAX_TERMS);
			top_filter_fini(f);
			return -EINVAL;
		}
		if (parse_term(&f->terms[f->nterms], w, err, errsize) < 0) {
			top_filter_fini(f);
			return -EINVAL;
		}
		f->nterms++;
	}
	return 0;
}

/* The value of key for r: a field, else a label; NULL when neither. */
static const char *key_value(const struct top_row *r, const char *key)
{
	static const char *const fields[] = { "name", "id", "image", "state", "health",
					      "pod", "namespace", "runtime" };
	for (size_t i = 0; i < ARRAY_LEN(fields); i++)
		if (!strcmp(key, fields[i])) {
			const char *v = json_get_str(r->ctr, fields[i]);
			return v ? v : "";
		}
	if (!strcmp(key, "project") || !strcmp(key, "compose"))
		return cli_str(r->ctr, "compose_project");
	if (!strcmp(key, "group"))
		return r->group;
	const struct json *labels = json_get(r->ctr, "labels");
	const char *v = labels ? json_get_str(labels, key) : NULL;
	return v;
}

static bool term_match(const struct top_term *t, const struct top_row *r)
{
	const char *hay[] = { r->name, r->id, r->image, r->group };
	switch (t->kind) {
	case TOP_TERM_TEXT:
		for (size_t i = 0; i < ARRAY_LEN(hay); i++)
			if (strcasestr(hay[i], t->text))
				return true;
		return false;
	case TOP_TERM_REGEX:
		for (size_t i = 0; i < ARRAY_LEN(hay); i++)
			if (regexec(&t->re, hay[i], 0, NULL, 0) == 0)
				return true;
		return false;
	case TOP_TERM_KEY_EQ: {
		const char *v = key_value(r, t->key);
		return v && !strcmp(v, t->text);
	}
	case TOP_TERM_KEY_RE: {
		const char *v = key_value(r, t->key);
		return v && regexec(&t->re, v, 0, NULL, 0) == 0;
	}
	}
	return false;
}

bool top_filter_match(const struct top_filter *f, const struct top_row *r)
{
	for (size_t i = 0; i < f->nterms; i++)
		if (term_match(&f->terms[i], r) == f->terms[i].negate)
			return false;
	return true;
}

/* ---- the model ------------------------------------------------------------------ */

void top_model_init(struct top_model *m)
{
	memset(m, 0, sizeof(*m));
	m->sort = TOP_COL_CPU;
	m->warn_pct = TOP_WARN_DEFAULT;
	m->crit_pct = TOP_CRIT_DEFAULT;
	for (int i = 0; i < TOP_COL__COUNT; i++)
		m->col_on[i] = top_cols[i].default_on;
}

void top_model_fini(struct top_model *m)
{
	if (!m)
		return;
	if (m->have_prev)
		cli_list_free(&m->prev);
	if (m->have_cur)
		cli_list_free(&m->cur);
	free(m->rows);
	free(m->lines);
	free(m->groups);
	free(m->ema);
	free(m->alerts);
	top_filter_fini(&m->filter);
	memset(m, 0, sizeof(*m));
}

static int cmp_ema(const void *a, const void *b)
{
	return strcmp(((const struct top_ema *)a)->id, ((const struct top_ema *)b)->id);
}

static const struct top_ema *ema_find(const struct top_model *m, const char *id)
{
	struct top_ema key;
	snprintf(key.id, sizeof(key.id), "%s", id);
	return m->nema ? bsearch(&key, m->ema, m->nema, sizeof(key), cmp_ema) : NULL;
}

/* Fills a row from the current container object and its previous one. */
static void fill_row(struct top_model *m, struct top_row *r, const struct json *c,
		     const struct json *p, double dt)
{
	memset(r, 0, sizeof(*r));
	r->ctr = c;
	r->id = cli_str(c, "id");
	r->name = cli_str(c, "name");
	if (!*r->name)
		r->name = r->id;
	r->image = cli_str(c, "image");
	r->state = cli_str(c, "state");
	r->health = cli_str(c, "health");
	r->cgroup = cli_str(c, "cgroup");
	r->group = cli_str(c, "compose_project");
	if (!*r->group)
		r->group = cli_str(c, "pod");
	r->up = cli_is_up(c);
	cli_usage_compute(m->have_prev ? &m->prev : NULL, p, &m->cur, c, &r->u);

	double quota = 0, period = 0;
	if (value(c, "container_spec_cpu_quota", &quota) &&
	    value(c, "container_spec_cpu_period", &period) && quota > 0 && period > 0)
		r->cpu_limit_cores = quota / period;
	double cpus = m->cur.cpus > 0 ? m->cur.cpus : 1;
	r->cpu_of_limit = r->cpu_limit_cores > 0 ? r->u.cpu_percent / r->cpu_limit_cores
						 : r->u.cpu_percent / cpus;
	double limit = 0;
	r->mem_limited = value(c, "container_spec_memory_limit_bytes", &limit) && limit > 0 &&
			 (m->cur.memory_bytes <= 0 || limit < m->cur.memory_bytes);

	double a, b;
	if (p && dt > 0) {
		r->have_rates = true;
		double pr = 0, pt = 0, pre = 0, pw = 0;
		value(p, "container_network_receive_bytes_total", &pr);
		value(p, "container_network_transmit_bytes_total", &pt);
		value(p, "container_fs_reads_bytes_total", &pre);
		value(p, "container_fs_writes_bytes_total", &pw);
		/* A counter that went back (a restart) gives no rate, not a negative one. */
		r->net_rx_rate = r->u.net_rx_bytes >= pr ? (r->u.net_rx_bytes - pr) / dt : 0;
		r->net_tx_rate = r->u.net_tx_bytes >= pt ? (r->u.net_tx_bytes - pt) / dt : 0;
		r->io_read_rate = r->u.blk_read_bytes >= pre ? (r->u.blk_read_bytes - pre) / dt : 0;
		r->io_write_rate = r->u.blk_write_bytes >= pw ? (r->u.blk_write_bytes - pw) / dt : 0;
	}
	r->throttle_pct = -1;
	double tp, pp;
	if (p && value(c, "container_cpu_cfs_throttled_periods_total", &a) &&
	    value(p, "container_cpu_cfs_throttled_periods_total", &tp) &&
	    value(c, "container_cpu_cfs_periods_total", &b) &&
	    value(p, "container_cpu_cfs_periods_total", &pp) && b > pp && a >= tp)
		r->throttle_pct = (a - tp) / (b - pp) * 100.0;
	else if (value(c, "container_cpu_cfs_periods_total", &b))
		r->throttle_pct = 0;

	r->restarts = -1;
	num(c, "restart_count", &r->restarts);
	r->exit_code = -1;
	num(c, "exit_code", &r->exit_code);
	const struct json *oom = json_get(c, "oom_killed");
	r->oom_killed = oom && oom->type == JSON_BOOL && oom->boolean;
	r->oom_events = -1;
	if (!value(c, "container_oom_events_total", &r->oom_events))
		value(c, "container_memory_events_oom_kill_total", &r->oom_events);
	r->uptime_s = -1;
	double start = 0;
	if (r->up && num(c, "start_time", &start) && start > 0 && m->cur.time > 0)
		r->uptime_s = m->cur.time > start ? m->cur.time - start : 0;
	bool exited = !strcmp(r->state, "exited") || !strcmp(r->state, "dead");
	r->bad = !strcmp(r->health, "unhealthy") || r->oom_killed ||
		 (exited && r->exit_code > 0) || !strcmp(r->state, "dead");

	/* Smoothing: the previous smoothed values of this id, if any. */
	const struct top_ema *e = ema_find(m, r->id);
	double cpu = r->u.have_cpu ? r->u.cpu_percent : 0;
	double net = r->net_rx_rate + r->net_tx_rate, io = r->io_read_rate + r->io_write_rate;
	r->s_cpu = top_smooth(e ? e->cpu : -1, cpu, dt, TOP_SMOOTH_TAU_S);
	r->s_mem = top_smooth(e ? e->mem : -1, r->u.mem_bytes, dt, TOP_SMOOTH_TAU_S);
	r->s_net = top_smooth(e ? e->net : -1, net, dt, TOP_SMOOTH_TAU_S);
	r->s_io = top_smooth(e ? e->io : -1, io, dt, TOP_SMOOTH_TAU_S);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 16;
	while (n < need)
		n *= 2;
	void *q = realloc(*p, n * elem);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

bool top_alert_is_for(const struct top_alert *a, const struct top_row *r)
{
	if (*a->id)     /* the series' id: the cgroup path (or the bare id) */
		return !strcmp(a->id, r->cgroup) || !strcmp(a->id, r->id);
	return *a->name && !strcmp(a->name, r->name);
}

static void mark_alerts(struct top_model *m)
{
	m->host.firing = m->host.silenced = 0;
	for (size_t i = 0; i < m->nrows; i++) {
		m->rows[i].alert = TOP_ALERT_NONE;
		m->rows[i].nfiring = 0;
	}
	for (size_t k = 0; k < m->nalerts; k++) {
		const struct top_alert *a = &m->alerts[k];
		if (a->state == TOP_ALERT_FIRING)
			m->host.firing++;
		else if (a->state == TOP_ALERT_SILENCED)
			m->host.silenced++;
		for (size_t i = 0; i < m->nrows; i++) {
			struct top_row *r = &m->rows[i];
			bool same = top_alert_is_for(a, r);
			if (!same)
				continue;
			if (a->state == TOP_ALERT_FIRING)
				r->nfiring++;
			if (a->state > r->alert)
				r->alert = a->state;
		}
	}
}

static void host_header(struct top_model *m)
{
	struct top_host *h = &m->host;
	size_t firing = h->firing, silenced = h->silenced;
	memset(h, 0, sizeof(*h));
	h->firing = firing;
	h->silenced = silenced;
	const struct json *mc = json_get(m->cur.doc.root, "machine");
	double idle = 0, pidle = 0, avail = -1;
	h->cpus = m->cur.cpus;
	h->mem_total_bytes = m->cur.memory_bytes;
	h->mem_used_bytes = -1;
	if (num(mc, "machine_memory_available_bytes", &avail) && h->mem_total_bytes > 0)
		h->mem_used_bytes = h->mem_total_bytes - avail;
	for (int i = 0; i < 3; i++)
		h->load[i] = -1;
	num(mc, "machine_load1", &h->load[0]);
	num(mc, "machine_load5", &h->load[1]);
	num(mc, "machine_load15", &h->load[2]);
	if (m->have_prev && num(mc, "machine_cpu_idle_seconds_total", &idle) &&
	    num(json_get(m->prev.doc.root, "machine"), "machine_cpu_idle_seconds_total", &pidle)) {
		double total = m->cur.cpu_seconds - m->prev.cpu_seconds;
		if (total > 0) {
			h->have_cpu = true;
			h->cpu_percent = (1.0 - (idle - pidle) / total) * 100.0;
			if (h->cpu_percent < 0)
				h->cpu_percent = 0;
		}
	}
	for (size_t i = 0; i < m->nrows; i++) {
		const struct top_row *r = &m->rows[i];
		h->total++;
		if (!strcmp(r->state, "paused"))
			h->paused++;
		if (r->up)
			h->running++;
		else
			h->stopped++;
		if (!strcmp(r->health, "unhealthy"))
			h->unhealthy++;
	}
}

int top_model_update(struct top_model *m, struct cli_list *l)
{
	if (m->have_cur && l->time != 0 && l->time <= m->cur.time) {
		cli_list_free(l);
		return 0;
	}
	size_t n = l->data ? l->data->count : 0;
	if (grow((void **)&m->rows, &m->rows_cap, n ? n : 1, sizeof(*m->rows)) < 0) {
		cli_list_free(l);
		return -ENOMEM;
	}
	m->prev = m->cur;            /* freed again at the end */
	m->have_prev = m->have_cur;
	m->cur = *l;
	m->have_cur = true;
	memset(l, 0, sizeof(*l));

	double dt = m->have_prev ? m->cur.time - m->prev.time : 0;
	m->nrows = 0;
	for (const struct json *c = m->cur.data ? m->cur.data->child : NULL; c && m->nrows < n;
	     c = c->next) {
		const struct json *p = m->have_prev ? cli_find_id(&m->prev, cli_str(c, "id")) : NULL;
		fill_row(m, &m->rows[m->nrows++], c, p, dt);
	}
	/* Remember the smoothed values for the next update. */
	if (grow((void **)&m->ema, &m->ema_cap, m->nrows ? m->nrows : 1, sizeof(*m->ema)) == 0) {
		for (size_t i = 0; i < m->nrows; i++) {
			struct top_ema *e = &m->ema[i];
			snprintf(e->id, sizeof(e->id), "%s", m->rows[i].id);
			e->cpu = m->rows[i].s_cpu;
			e->mem = m->rows[i].s_mem;
			e->net = m->rows[i].s_net;
			e->io = m->rows[i].s_io;
		}
		m->nema = m->nrows;
		qsort(m->ema, m->nema, sizeof(*m->ema), cmp_ema);
	} else {
		m->nema = 0;
	}
	mark_alerts(m);
	host_header(m);
	top_model_arrange(m);
	/* The previous tick has given its deltas: only the current one is
	 * kept between updates (with 200 containers each is a few MB). */
	cli_list_free(&m->prev);
	m->have_prev = false;
	return 1;
}

void top_model_set_alerts(struct top_model *m, struct top_alert *a, size_t n, bool available)
{
	free(m->alerts);
	m->alerts = a;
	m->nalerts = a ? n : 0;
	m->alerts_available = available;
	mark_alerts(m);
}

const struct top_row *top_model_find(const struct top_model *m, const char *id)
{
	for (size_t i = 0; i < m->nrows; i++)
		if (!strcmp(m->rows[i].id, id))
			return &m->rows[i];
	return NULL;
}

/* ---- sorting and arranging --------------------------------------------------------- */

int top_sort_key(int ch)
{
	switch (ch) {
	case 'c': return TOP_COL_CPU;
	case 'm': return TOP_COL_MEM;
	case 'n': return TOP_COL_NAME;
	case 'i': return TOP_COL_IO;
	case 't': return TOP_COL_NET;
	case 'u': return TOP_COL_UPTIME;
	case 'r': return TOP_COL_RESTARTS;
	case 'p': return TOP_COL_PIDS;
	}
	return -1;
}

/* Text columns sort ascending by default, numbers descending (biggest first). */
static bool numeric(enum top_col c)
{
	return !(c == TOP_COL_NAME || c == TOP_COL_ID || c == TOP_COL_IMAGE || c == TOP_COL_GROUP ||
		 c == TOP_COL_STATUS);
}

static double sort_value(const struct top_row *r, enum top_col c)
{
	switch (c) {
	case TOP_COL_CPU: return r->s_cpu;
	case TOP_COL_CPU_LIMIT: return r->cpu_limit_cores > 0 ? r->s_cpu / r->cpu_limit_cores : -1;
	case TOP_COL_MEM: return r->s_mem;
	case TOP_COL_NET: return r->s_net;
	case TOP_COL_IO: return r->s_io;
	case TOP_COL_PIDS: return r->u.have_pids ? r->u.pids : -1;
	case TOP_COL_RESTARTS: return r->restarts;
	case TOP_COL_UPTIME: return r->uptime_s;
	case TOP_COL_ALERT: return (double)r->alert * 1000 + r->nfiring;
	case TOP_COL_THROTTLE: return r->throttle_pct;
	case TOP_COL_OOM: return r->oom_events;
	default: return 0;
	}
}

static const char *sort_text(const struct top_row *r, enum top_col c)
{
	switch (c) {
	case TOP_COL_ID: return r->id;
	case TOP_COL_IMAGE: return r->image;
	case TOP_COL_GROUP: return r->group;
	case TOP_COL_STATUS: return r->state;
	default: return r->name;
	}
}

/* qsort_r context */
struct sort_ctx {
	const struct top_model *m;
};

static int cmp_rows(const void *a, const void *b, void *arg)
{
	const struct sort_ctx *ctx = arg;
	const struct top_model *m = ctx->m;
	const struct top_row *x = &m->rows[((const struct top_line *)a)->index];
	const struct top_row *y = &m->rows[((const struct top_line *)b)->index];
	int r = 0;
	if (numeric(m->sort)) {
		double u = sort_value(x, m->sort), v = sort_value(y, m->sort);
		r = u > v ? -1 : u < v ? 1 : 0;
	} else {
		r = strcasecmp(sort_text(x, m->sort), sort_text(y, m->sort));
	}
	if (m->reverse)
		r = -r;
	if (r == 0)     /* stable across refreshes: then by name, then id */
		r = strcmp(x->name, y->name);
	if (r == 0)
		r = strcmp(x->id, y->id);
	return r;
}

static void sum_add(struct top_sum *s, const struct top_row *r)
{
	s->count++;
	if (r->u.have_cpu)
		s->cpu_percent += r->u.cpu_percent;
	if (r->u.have_mem)
		s->mem_bytes += r->u.mem_bytes;
	if (r->have_rates) {
		s->have_rates = true;
		s->net_rx_rate += r->net_rx_rate;
		s->net_tx_rate += r->net_tx_rate;
		s->io_read_rate += r->io_read_rate;
		s->io_write_rate += r->io_write_rate;
	}
	if (r->u.have_pids)
		s->pids += r->u.pids;
}

static double sum_sort_value(const struct top_sum *s, enum top_col c)
{
	switch (c) {
	case TOP_COL_CPU: case TOP_COL_CPU_LIMIT: return s->cpu_percent;
	case TOP_COL_MEM: return s->mem_bytes;
	case TOP_COL_NET: return s->net_rx_rate + s->net_tx_rate;
	case TOP_COL_IO: return s->io_read_rate + s->io_write_rate;
	case TOP_COL_PIDS: return s->pids;
	default: return (double)s->count;
	}
}

static int cmp_groups(const void *a, const void *b, void *arg)
{
	const struct top_model *m = ((const struct sort_ctx *)arg)->m;
	const struct top_group *x = a, *y = b;
	/* Containers in no group come last whatever the order. */
	if (!*x->key != !*y->key)
		return *x->key ? -1 : 1;
	int r = 0;
	if (numeric(m->sort))
		r = x->sort_value > y->sort_value ? -1 : x->sort_value < y->sort_value ? 1 : 0;
	if (m->reverse)
		r = -r;
	return r ? r : strcmp(x->key, y->key);
}

static size_t group_of(struct top_model *m, const char *key)
{
	for (size_t g = 0; g < m->ngroups; g++)
		if (!strcmp(m->groups[g].key, key))
			return g;
	if (grow((void **)&m->groups, &m->groups_cap, m->ngroups + 1, sizeof(*m->groups)) < 0)
		return SIZE_MAX;
	struct top_group *g = &m->groups[m->ngroups];
	memset(g, 0, sizeof(*g));
	g->key = key;
	return m->ngroups++;
}

void top_model_arrange(struct top_model *m)
{
	struct sort_ctx ctx = { m };
	memset(&m->totals, 0, sizeof(m->totals));
	m->nlines = 0;
	m->ngroups = 0;
	/* rows + one subtotal line per group at most */
	if (grow((void **)&m->lines, &m->lines_cap, 2 * m->nrows + 1, sizeof(*m->lines)) < 0)
		return;
	size_t nshown = 0;
	struct top_line *shown = m->lines + m->nrows + 1;   /* second half as scratch */
	for (size_t i = 0; i < m->nrows; i++) {
		const struct top_row *r = &m->rows[i];
		if ((!m->show_all && !r->up) || !top_filter_match(&m->filter, r))
			continue;
		shown[nshown++] = (struct top_line){ TOP_LINE_ROW, i };
		sum_add(&m->totals, r);
	}
	qsort_r(shown, nshown, sizeof(*shown), cmp_rows, &ctx);
	if (!m->group) {
		memmove(m->lines, shown, nshown * sizeof(*shown));
		m->nlines = nshown;
		return;
	}
	for (size_t i = 0; i < nshown; i++) {
		const struct top_row *r = &m->rows[shown[i].index];
		size_t g = group_of(m, r->group);
		if (g == SIZE_MAX) {
			m->ngroups = 0;
			memmove(m->lines, shown, nshown * sizeof(*shown));
			m->nlines = nshown;
			return;
		}
		sum_add(&m->groups[g].sum, r);
	}
	for (size_t g = 0; g < m->ngroups; g++)
		m->groups[g].sort_value = sum_sort_value(&m->groups[g].sum, m->sort);
	qsort_r(m->groups, m->ngroups, sizeof(*m->groups), cmp_groups, &ctx);
	/* Each group: its subtotal line, then its rows in the sorted order. The
	 * scratch area lies past every line written here (nshown + ngroups
	 * <= 2 * nrows + 1 - (nrows + 1) + ... ), so copy it out first. */
	struct top_line *tmp = malloc((nshown ? nshown : 1) * sizeof(*tmp));
	if (!tmp) {
		m->ngroups = 0;
		memmove(m->lines, shown, nshown * sizeof(*shown));
		m->nlines = nshown;
		return;
	}
	memcpy(tmp, shown, nshown * sizeof(*tmp));
	for (size_t g = 0; g < m->ngroups; g++) {
		m->lines[m->nlines++] = (struct top_line){ TOP_LINE_GROUP, g };
		for (size_t i = 0; i < nshown; i++)
			if (!strcmp(m->rows[tmp[i].index].group, m->groups[g].key))
				m->lines[m->nlines++] = tmp[i];
	}
	free(tmp);
}

void top_model_sort_step(struct top_model *m, int dir)
{
	int c = (int)m->sort;
	for (int k = 0; k < TOP_COL__COUNT; k++) {
		c = (c + dir + TOP_COL__COUNT) % TOP_COL__COUNT;
		if (m->col_on[c] && c != TOP_COL_STATUS)
			break;
	}
	m->sort = (enum top_col)c;
	top_model_arrange(m);
}

/* ---- layout ---------------------------------------------------------------------------- */

static int name_width(const struct top_model *m)
{
	int w = 0;
	for (size_t i = 0; i < m->nlines; i++) {
		const char *s = m->lines[i].kind == TOP_LINE_ROW ? m->rows[m->lines[i].index].name
								 : m->groups[m->lines[i].index].key;
		int n = 0;
		for (; *s; s++)
			n += ((unsigned char)*s & 0xC0) != 0x80;
		if (m->lines[i].kind == TOP_LINE_GROUP)
			n += 2;
		if (n > w)
			w = n;
	}
	return w;
}

void top_layout_compute(const struct top_model *m, int screen_width, struct top_layout *out)
{
	bool on[TOP_COL__COUNT];
	memcpy(on, m->col_on, sizeof(on));
	on[TOP_COL_STATUS] = on[TOP_COL_NAME] = true;
	bool bars = true;
	/* Names are what people read first (ctop#128): columns drop before a
	 * name is cut below TOP_NAME_KEEP characters. */
	int min_name = name_width(m);
	if (min_name > TOP_NAME_KEEP)
		min_name = TOP_NAME_KEEP;
	if (min_name < top_cols[TOP_COL_NAME].width)
		min_name = top_cols[TOP_COL_NAME].width;
	for (size_t step = 0;; step++) {
		int total = 0, n = 0;
		for (int c = 0; c < TOP_COL__COUNT; c++) {
			if (!on[c])
				continue;
			total += (c == TOP_COL_NAME ? min_name : top_cols[c].width) +
				 (bars ? top_cols[c].bar_width : 0);
			n++;
		}
		total += n - 1;    /* one space between columns */
		if (screen_width <= 0 || total <= screen_width)
			break;
		if (step >= top_drop_order_len) {
			if (min_name == top_cols[TOP_COL_NAME].width)
				break;
			min_name = top_cols[TOP_COL_NAME].width;   /* then the name gives way */
			step--;
			continue;
		}
		enum top_col d = top_drop_order[step];
		if (d == TOP_COL__COUNT)
			bars = false;
		else
			on[d] = false;
	}
	memset(out, 0, sizeof(*out));
	out->bars = bars;
	int used = 0;
	for (int c = 0; c < TOP_COL__COUNT; c++) {
		if (!on[c])
			continue;
		out->cols[out->ncols] = (enum top_col)c;
		out->width[out->ncols] = (c == TOP_COL_NAME ? min_name : top_cols[c].width) +
					 (bars ? top_cols[c].bar_width : 0);
		used += out->width[out->ncols] + (out->ncols ? 1 : 0);
		out->ncols++;
	}
	/* The name takes what is left, up to the longest name shown. */
	int want = name_width(m);
	want = want > min_name ? want : min_name;
	if (want < min_name)
		want = min_name;
	if (want < 6)
		want = 6;
	for (size_t i = 0; i < out->ncols; i++) {
		if (out->cols[i] != TOP_COL_NAME)
			continue;
		int extra = screen_width > 0 ? screen_width - used : want - min_name;
		if (extra > want - min_name)
			extra = want - min_name;
		if (extra > 0) {
			out->width[i] += extra;
			used += extra;
		}
	}
	out->total = used;
}
