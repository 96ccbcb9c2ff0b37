/*
 * sink.c - the sample sink and the snapshots it produces.
 *
 * Each tick the agent opens a sink, the collectors emit into it container by
 * container, and closing it yields an immutable snapshot: every string it
 * needs copied into its own arena, samples kept in container order (for the
 * JSON API) plus an index sorted by family (for the exposition). Readers
 * take a reference and never lock while they render, so a scrape never waits
 * for collection and concurrent scrapes never wait for each other.
 */
#include "collectors/collector.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const struct metric_family metric_families[M__COUNT] = {
#define METRIC(id, name, type, labels, help, source) [M_##id] = { name, type, labels, help, source },
#include "collectors/metrics.def"
#undef METRIC
};

const char *metric_type_name(enum metric_type t)
{
	switch (t) {
	case COUNTER: return "counter";
	case GAUGE: return "gauge";
	case HIST_BUCKET: case HIST_SUM: case HIST_COUNT: return "histogram";
	}
	return "untyped";
}

struct snapshot *snapshot_ref(struct snapshot *s)
{
	if (s)
		__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
	return s;
}

void snapshot_unref(struct snapshot *s)
{
	if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	arena_free(&s->arena);
	snapshot_unref(s->parents[0]);
	snapshot_unref(s->parents[1]);
	free(s->containers);
	free(s->samples);
	free(s->order);
	free(s);
}

int sink_open(struct coll_sink *s, int64_t time_ms)
{
	s->snap = calloc(1, sizeof(*s->snap));
	if (!s->snap)
		return -ENOMEM;
	s->snap->refs = 1;
	s->snap->time_ms = time_ms;
	s->cur = SNAP_NO_CONTAINER;
	return 0;
}

/* Grows an array by doubling; returns false (and marks the snapshot) on failure. */
static bool grow(struct snapshot *snap, void **arr, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return true;
	size_t ncap = *cap ? *cap * 2 : 64;
	void *p = realloc(*arr, ncap * elem);
	if (!p) {
		snap->failed = true;
		return false;
	}
	*arr = p;
	*cap = ncap;
	return true;
}

static const char *dup_or_null(struct arena *a, const char *s)
{
	return s ? arena_strdup(a, s) : NULL;
}

/* Published ports and mounts into the arena; on failure the snapshot just
 * lacks them. */
static void copy_ports_mounts(struct arena *a, struct snap_container *sc, const struct coll_meta *m)
{
	if (m->nports) {
		struct coll_port *p = arena_alloc(a, m->nports * sizeof(*p));
		if (p) {
			for (size_t i = 0; i < m->nports; i++) {
				p[i] = m->ports[i];
				p[i].host_ip = m->ports[i].host_ip ? arena_strdup(a, m->ports[i].host_ip) : NULL;
			}
			sc->ports = p;
			sc->nports = m->nports;
		}
	}
	if (m->nmounts) {
		struct coll_mount *mt = arena_alloc(a, m->nmounts * sizeof(*mt));
		if (mt) {
			for (size_t i = 0; i < m->nmounts; i++) {
				const struct coll_mount *o = &m->mounts[i];
				mt[i] = (struct coll_mount){
					.type = (char *)dup_or_null(a, o->type),
					.name = (char *)dup_or_null(a, o->name),
					.source = (char *)dup_or_null(a, o->source),
					.destination = (char *)dup_or_null(a, o->destination),
					.rw = o->rw,
				};
			}
			sc->mounts = mt;
			sc->nmounts = m->nmounts;
		}
	}
}

void sink_begin_container(struct coll_sink *s, const struct coll_container *c, double start_time)
{
	struct snapshot *snap = s->snap;
	if (!grow(snap, (void **)&snap->containers, &snap->containers_cap, snap->ncontainers,
		  sizeof(*snap->containers))) {
		s->cur = SNAP_NO_CONTAINER;
		return;
	}
	struct arena *a = &snap->arena;
	struct snap_container *sc = &snap->containers[snap->ncontainers];
	const struct coll_meta *m = &c->meta;
	memset(sc, 0, sizeof(*sc));
	sc->id = arena_strdup(a, c->id);
	sc->name = arena_strdup(a, m->name ? m->name : c->id);
	sc->image = arena_strdup(a, m->image ? m->image : "");
	sc->runtime = coll_runtime_name(c->runtime);
	sc->cgroup = arena_strdup(a, c->cgroup);
	sc->state = arena_strdup(a, m->state ? m->state : "running");
	sc->pod = dup_or_null(a, m->pod);
	sc->namespace = dup_or_null(a, m->namespace);
	sc->container = dup_or_null(a, m->container);
	sc->compose_project = dup_or_null(a, m->compose_project);
	sc->prom_labels = arena_strdup(a, c->prom_labels ? c->prom_labels : "");
	sc->start_time = start_time;
	if (m->nlabels) {
		sc->label_keys = arena_alloc(a, m->nlabels * sizeof(char *));
		sc->label_vals = arena_alloc(a, m->nlabels * sizeof(char *));
		if (sc->label_keys && sc->label_vals) {
			for (size_t i = 0; i < m->nlabels; i++) {
				sc->label_keys[i] = arena_strdup(a, m->label_keys[i]);
				sc->label_vals[i] = arena_strdup(a, m->label_vals[i]);
			}
			sc->nlabels = m->nlabels;
		}
	}
	sc->has_cgroup = true;
	sc->last_seen = (double)(snap->time_ms / 1000);
	sc->has_state = m->has_state;
	sc->exit_code = m->exit_code;
	sc->oom_killed = m->oom_killed;
	sc->restart_count = m->restart_count;
	sc->health = dup_or_null(a, m->health);
	sc->created_at = m->created_at;
	sc->finished_at = m->finished_at;
	sc->restart_policy = dup_or_null(a, m->restart_policy);
	sc->command = dup_or_null(a, m->command);
	copy_ports_mounts(a, sc, m);
	if (!sc->id || !sc->name || !sc->image || !sc->cgroup || !sc->state || !sc->prom_labels) {
		snap->failed = true;
		s->cur = SNAP_NO_CONTAINER;
		return;
	}
	sc->sample_first = (uint32_t)snap->nsamples;
	s->cur = (uint32_t)snap->ncontainers++;
}

void sink_mark_gone(struct coll_sink *s, double last_seen)
{
	if (s->cur == SNAP_NO_CONTAINER)
		return;
	struct snap_container *sc = &s->snap->containers[s->cur];
	sc->has_cgroup = false;
	sc->last_seen = last_seen;
}

void sink_begin_agent(struct coll_sink *s)
{
	s->cur = SNAP_NO_CONTAINER;
}

void sink_emit(struct coll_sink *s, enum metric_id m, const char *extra, double v)
{
	struct snapshot *snap = s->snap;
	if (!grow(snap, (void **)&snap->samples, &snap->samples_cap, snap->nsamples,
		  sizeof(*snap->samples)))
		return;
	const char *ex = NULL;
	if (extra && *extra) {
		ex = arena_strdup(&snap->arena, extra);
		if (!ex) {
			snap->failed = true;
			return;
		}
	}
	snap->samples[snap->nsamples++] = (struct snap_sample){
		.family = (uint32_t)m, .container = s->cur, .extra = ex, .value = v,
	};
	if (s->cur != SNAP_NO_CONTAINER)
		snap->containers[s->cur].sample_count++;
}

/* Builds snap->order: sample indices by family. */
static void sort_by_family(struct snapshot *snap)
{
	/* Counting sort by family keeps each family's samples in emit order. */
	size_t start[M__COUNT + 1] = { 0 };
	for (size_t i = 0; i < snap->nsamples; i++)
		start[snap->samples[i].family + 1]++;
	for (size_t f = 0; f < M__COUNT; f++)
		start[f + 1] += start[f];
	snap->order = malloc((snap->nsamples ? snap->nsamples : 1) * sizeof(uint32_t));
	if (!snap->order) {
		snap->failed = true;
		snap->nsamples = 0;
		snap->order = NULL;
		return;
	}
	for (size_t i = 0; i < snap->nsamples; i++)
		snap->order[start[snap->samples[i].family]++] = (uint32_t)i;
}

struct snapshot *sink_close(struct coll_sink *s)
{
	struct snapshot *snap = s->snap;
	s->snap = NULL;
	sort_by_family(snap);
	return snap;
}

/* A base container shown without a cgroup (collect_gone) that add has live
 * again: a restarting container whose new cgroup the fresh pass collected.
 * The two carry the same labels, so it goes, or /metrics would hold each
 * of its lifecycle series twice until the next tick. */
static bool superseded(const struct snap_container *bc, const struct snapshot *add)
{
	if (bc->has_cgroup || !bc->id)
		return false;
	for (size_t j = 0; j < add->ncontainers; j++)
		if (add->containers[j].id && strcmp(add->containers[j].id, bc->id) == 0)
			return true;
	return false;
}

struct snapshot *snapshot_merge(struct snapshot *base, struct snapshot *add)
{
	struct snapshot *m = calloc(1, sizeof(*m));
	size_t nc = base->ncontainers + add->ncontainers, ns = base->nsamples + add->nsamples;
	if (!m)
		return NULL;
	m->refs = 1;
	m->time_ms = base->time_ms;
	m->failed = base->failed || add->failed;
	m->containers = malloc((nc ? nc : 1) * sizeof(*m->containers));
	m->samples = malloc((ns ? ns : 1) * sizeof(*m->samples));
	uint32_t *map = malloc((base->ncontainers ? base->ncontainers : 1) * sizeof(*map));
	if (!m->containers || !m->samples || !map) {
		free(map);
		snapshot_unref(m);
		return NULL;
	}
	m->parents[0] = snapshot_ref(base);
	m->parents[1] = snapshot_ref(add);
	/* The base's containers and samples, less the superseded ones. */
	size_t kc = 0, ks = 0;
	for (size_t i = 0; i < base->ncontainers; i++) {
		map[i] = superseded(&base->containers[i], add) ? UINT32_MAX : (uint32_t)kc;
		if (map[i] != UINT32_MAX)
			m->containers[kc++] = base->containers[i];
	}
	for (size_t i = 0; i < base->nsamples; i++) {
		struct snap_sample sm = base->samples[i];
		if (sm.container != SNAP_NO_CONTAINER) {
			uint32_t c = map[sm.container];
			if (c == UINT32_MAX)
				continue;
			if (i == base->containers[sm.container].sample_first)
				m->containers[c].sample_first = (uint32_t)ks;
			sm.container = c;
		}
		m->samples[ks++] = sm;
	}
	free(map);
	for (size_t i = 0; i < add->ncontainers; i++) {
		struct snap_container *sc = &m->containers[kc + i];
		*sc = add->containers[i];
		sc->sample_first += (uint32_t)ks;
	}
	for (size_t i = 0; i < add->nsamples; i++) {
		struct snap_sample *sm = &m->samples[ks + i];
		*sm = add->samples[i];
		if (sm->container != SNAP_NO_CONTAINER)
			sm->container += (uint32_t)kc;
	}
	m->ncontainers = m->containers_cap = kc + add->ncontainers;
	m->nsamples = m->samples_cap = ks + add->nsamples;
	sort_by_family(m);
	return m;
}

static void put_help(struct buf *out, const char *help)
{
	/* HELP escapes only backslash and newline. */
	for (const char *p = help; *p; p++) {
		if (*p == '\\')
			buf_add(out, "\\\\", 2);
		else if (*p == '\n')
			buf_add(out, "\\n", 2);
		else
			buf_putc(out, *p);
	}
}

void text_cursor_init(struct text_cursor *c)
{
	c->k = 0;
	c->prev = UINT32_MAX;
}

bool snapshot_render_text_some(const struct snapshot *s, struct text_cursor *c, struct buf *out,
			       size_t want)
{
	uint32_t nlen_family = UINT32_MAX; /* samples come grouped by family */
	size_t nlen = 0;
	for (; c->k < s->nsamples && s->order && out->len < want; c->k++) {
		size_t line_start = out->len;
		const struct snap_sample *sm = &s->samples[s->order[c->k]];
		const struct metric_family *f = &metric_families[sm->family];
		if (sm->family != nlen_family) {
			nlen_family = sm->family;
			nlen = strlen(f->name);
		}
		/* A histogram's _sum and _count families follow its _bucket
		 * family: one header, named without the suffix, for the three. */
		if (sm->family != c->prev && f->type != HIST_SUM && f->type != HIST_COUNT) {
			size_t hlen = nlen;
			if (f->type == HIST_BUCKET && nlen > 7)
				hlen -= 7; /* "_bucket" */
			buf_add(out, "# HELP ", 7);
			buf_add(out, f->name, hlen);
			buf_putc(out, ' ');
			put_help(out, f->help);
			buf_add(out, "\n# TYPE ", 8);
			buf_add(out, f->name, hlen);
			buf_putc(out, ' ');
			buf_puts(out, metric_type_name(f->type));
			buf_putc(out, '\n');
		}
		buf_add(out, f->name, nlen);
		const char *base = sm->container != SNAP_NO_CONTAINER ?
			s->containers[sm->container].prom_labels : "";
		if (*base || sm->extra) {
			buf_putc(out, '{');
			buf_puts(out, base);
			if (*base && sm->extra)
				buf_putc(out, ',');
			if (sm->extra)
				buf_puts(out, sm->extra);
			buf_putc(out, '}');
		}
		buf_putc(out, ' ');
		buf_put_double(out, sm->value);
		buf_putc(out, '\n');
		if (out->overflow) {
			/* Not this line: it is rendered again by the next call. */
			out->len = line_start;
			if (out->data)
				out->data[line_start] = '\0';
			return false;
		}
		c->prev = sm->family;
	}
	return c->k >= s->nsamples || !s->order;
}

int snapshot_render_text(const struct snapshot *s, struct buf *out)
{
	struct text_cursor c;
	text_cursor_init(&c);
	/* About 160 bytes a line: reserve once instead of growing repeatedly. */
	buf_reserve(out, s->nsamples * 160);
	snapshot_render_text_some(s, &c, out, SIZE_MAX);
	return out->overflow ? -ENOMEM : 0;
}
