/*
 * expo.c - the /metrics formats beside text 0.0.4 (collectors/sink.c):
 * OpenMetrics 1.0 text and the protobuf exposition (a stream of
 * io.prometheus.client.MetricFamily messages, each prefixed by its varint
 * length, packed by the C protoc-c generates from agent/expo_metrics.proto),
 * and the content negotiation that picks one from the scraper's Accept
 * header (docs content_negotiation.md). Text 0.0.4 stays the default: for no
 * Accept, for an Accept naming nothing else we speak, and as the fallback.
 *
 * Both renderers read the same immutable snapshot as the text renderer, so
 * the three formats always carry the same series and values. A histogram,
 * which the snapshot holds as three families (_bucket, _sum, _count, in
 * that order of ids), becomes one family here, each label set's buckets
 * followed by its _sum and _count, as both formats require.
 */
#include "agent/agent.h"
#include "agent/expo_metrics.pb-c.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EXPO_MAX_LABELS 128

const char *expo_content_type(enum expo_format f)
{
	switch (f) {
	case EXPO_OPENMETRICS:
		return "application/openmetrics-text; version=1.0.0; charset=utf-8";
	case EXPO_PROTOBUF:
		return "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
		       "encoding=delimited";
	case EXPO_TEXT:
		break;
	}
	return "text/plain; version=0.0.4; charset=utf-8";
}

int expo_parse_format(const char *s, enum expo_format *out)
{
	if (!strcmp(s, "text") || !strcmp(s, "prometheus"))
		*out = EXPO_TEXT;
	else if (!strcmp(s, "openmetrics"))
		*out = EXPO_OPENMETRICS;
	else if (!strcmp(s, "protobuf"))
		*out = EXPO_PROTOBUF;
	else
		return -EINVAL;
	return 0;
}

/* The value of parameter name in the ";"-separated params of one media
 * range (whitespace around tokens ignored), copied into out; false when
 * absent. */
static bool media_param(const char *params, size_t len, const char *name, char *out,
			size_t size)
{
	size_t nlen = strlen(name);
	const char *p = params, *end = params + len;
	while (p < end) {
		while (p < end && (*p == ';' || *p == ' ' || *p == '\t'))
			p++;
		const char *q = p;
		while (q < end && *q != ';')
			q++;
		if ((size_t)(q - p) > nlen && !strncasecmp(p, name, nlen) && p[nlen] == '=') {
			const char *v = p + nlen + 1;
			size_t vl = (size_t)(q - v);
			while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
				v++;
				vl -= 2;
			}
			if (vl >= size)
				vl = size - 1;
			memcpy(out, v, vl);
			out[vl] = '\0';
			return true;
		}
		p = q;
	}
	return false;
}

enum expo_format expo_negotiate(const char *accept)
{
	enum expo_format best = EXPO_TEXT;
	double best_q = -1;
	if (!accept)
		return EXPO_TEXT;
	for (const char *p = accept; *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		while (len && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		size_t tl = strcspn(p, ";,");
		if (tl > len)
			tl = len;
		while (tl && (p[tl - 1] == ' ' || p[tl - 1] == '\t'))
			tl--;
		char v[64];
		double q = 1;
		if (media_param(p + tl, len - tl, "q", v, sizeof(v)))
			q = strtod(v, NULL);
		int f = -1;
		if (tl == 31 && !strncasecmp(p, "application/vnd.google.protobuf", tl)) {
			bool proto_ok = !media_param(p + tl, len - tl, "proto", v, sizeof(v)) ||
					!strcmp(v, "io.prometheus.client.MetricFamily");
			bool enc_ok = media_param(p + tl, len - tl, "encoding", v, sizeof(v)) &&
				      !strcmp(v, "delimited");
			if (proto_ok && enc_ok)
				f = EXPO_PROTOBUF;
		} else if (tl == 28 && !strncasecmp(p, "application/openmetrics-text", tl)) {
			if (!media_param(p + tl, len - tl, "version", v, sizeof(v)) ||
			    !strcmp(v, "1.0.0") || !strcmp(v, "0.0.1"))
				f = EXPO_OPENMETRICS;
		} else if ((tl == 10 && !strncasecmp(p, "text/plain", tl)) ||
			   (tl == 3 && !strncmp(p, "*/*", 3)) ||
			   (tl == 6 && !strncasecmp(p, "text/*", 6))) {
			f = EXPO_TEXT;
		}
		/* The first of equal q wins: the scraper lists its preference. */
		if (f >= 0 && q > 0 && q > best_q) {
			best = (enum expo_format)f;
			best_q = q;
		}
		if (!end)
			break;
		p = end + 1;
	}
	return best;
}

/* ---- label text ------------------------------------------------------------ */

/* The rendered label text of a sample: the container's labels and the
 * sample's extra ones, either of which may be empty. */
static void sample_labels(const struct snapshot *s, const struct snap_sample *sm,
			  const char **base, const char **extra)
{
	*base = sm->container != SNAP_NO_CONTAINER ? s->containers[sm->container].prom_labels : "";
	*extra = sm->extra ? sm->extra : "";
}

/* Appends the text labels minus le="..." (for grouping histogram buckets). */
static void put_without_le(struct buf *b, const char *text)
{
	const char *p = text;
	bool first = b->len == 0;
	while (*p) {
		const char *start = p;
		const char *eq = strchr(p, '=');
		if (!eq)
			break;
		p = eq + 2; /* past =" */
		while (*p && *p != '"')
			p += (*p == '\\' && p[1]) ? 2 : 1;
		if (*p)
			p++;
		bool le = eq - start == 2 && !strncmp(start, "le", 2);
		if (!le) {
			if (!first)
				buf_putc(b, ',');
			buf_add(b, start, (size_t)(p - start));
			first = false;
		}
		if (*p == ',')
			p++;
	}
}

/* The le="..." value of a bucket's extra text, as a number. */
static double le_of(const char *text)
{
	for (const char *p = text; p && *p; p++) {
		if ((p == text || p[-1] == ',') && !strncmp(p, "le=\"", 4)) {
			if (!strncmp(p + 4, "+Inf", 4))
				return INFINITY;
			return strtod(p + 4, NULL);
		}
	}
	return NAN;
}

/* Whether two samples carry the same labels once le is set aside. */
static bool same_group(const struct snapshot *s, const struct snap_sample *a,
		       const struct snap_sample *b, struct buf *ka, struct buf *kb)
{
	if (a->container != b->container)
		return false;
	buf_reset(ka);
	buf_reset(kb);
	put_without_le(ka, a->extra ? a->extra : "");
	put_without_le(kb, b->extra ? b->extra : "");
	return ka->len == kb->len && (!ka->len || !memcmp(ka->data, kb->data, ka->len));
}

/* Index range [*first, *end) of family f's samples in s->order. */
static void family_range(const struct snapshot *s, uint32_t f, size_t *first, size_t *end)
{
	/* order is sorted by family: binary search the first of f. */
	size_t lo = 0, hi = s->order ? s->nsamples : 0;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->samples[s->order[mid]].family < f)
			lo = mid + 1;
		else
			hi = mid;
	}
	*first = lo;
	hi = s->order ? s->nsamples : 0;
	size_t e = lo;
	while (e < hi && s->samples[s->order[e]].family == f)
		e++;
	*end = e;
}

/* Finds the sample of family range [first,end) grouped with bucket b,
 * starting at *hint (the usual next one); NULL when there is none. */
static const struct snap_sample *find_partner(const struct snapshot *s, size_t first, size_t end,
					      size_t *hint, const struct snap_sample *b,
					      struct buf *ka, struct buf *kb)
{
	size_t n = end - first;
	for (size_t k = 0; k < n; k++) {
		size_t i = first + (*hint - first + k) % n;
		const struct snap_sample *c = &s->samples[s->order[i]];
		if (same_group(s, b, c, ka, kb)) {
			*hint = i + 1 < end ? i + 1 : first;
			return c;
		}
	}
	return NULL;
}

/* ---- OpenMetrics text ----------------------------------------------------- */

static void om_escape(struct buf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			buf_add(out, "\\\\", 2);
		else if (*s == '\n')
			buf_add(out, "\\n", 2);
		else if (*s == '"')
			buf_add(out, "\\\"", 2);
		else
			buf_putc(out, *s);
	}
}

static void om_sample(struct buf *out, const char *name, size_t nlen, const char *suffix,
		      const char *base, const char *extra, double v)
{
	buf_add(out, name, nlen);
	buf_puts(out, suffix);
	if (*base || *extra) {
		buf_putc(out, '{');
		buf_puts(out, base);
		if (*base && *extra)
			buf_putc(out, ',');
		buf_puts(out, extra);
		buf_putc(out, '}');
	}
	buf_putc(out, ' ');
	buf_put_double(out, v);
	buf_putc(out, '\n');
}

static void om_header(struct buf *out, const char *name, size_t nlen, const char *type,
		      const char *help)
{
	buf_add(out, "# TYPE ", 7);
	buf_add(out, name, nlen);
	buf_putc(out, ' ');
	buf_puts(out, type);
	buf_add(out, "\n# HELP ", 8);
	buf_add(out, name, nlen);
	buf_putc(out, ' ');
	om_escape(out, help);
	buf_putc(out, '\n');
}

/* One label set of histogram family f (whose samples are [first, end) of
 * s->order) from c->k: its buckets, then its _sum and _count. */
static void om_histogram_group(const struct snapshot *s, struct om_cursor *c, uint32_t f,
			       size_t end, struct buf *out, struct buf *ka, struct buf *kb)
{
	const struct metric_family *mf = &metric_families[f];
	size_t nlen = strlen(mf->name);
	size_t blen = nlen > 7 ? nlen - 7 : nlen; /* "_bucket" */
	size_t sf, se, cf, ce;
	family_range(s, f + 1, &sf, &se);
	family_range(s, f + 2, &cf, &ce);
	const struct snap_sample *b0 = &s->samples[s->order[c->k]];
	size_t g = c->k;
	while (g < end && same_group(s, b0, &s->samples[s->order[g]], ka, kb)) {
		const char *base, *extra;
		sample_labels(s, &s->samples[s->order[g]], &base, &extra);
		om_sample(out, mf->name, blen, "_bucket", base, extra, s->samples[s->order[g]].value);
		g++;
	}
	if (c->sh < sf || c->sh >= se)
		c->sh = sf;
	if (c->ch < cf || c->ch >= ce)
		c->ch = cf;
	const struct snap_sample *sum = se > sf ? find_partner(s, sf, se, &c->sh, b0, ka, kb) : NULL;
	const struct snap_sample *cnt = ce > cf ? find_partner(s, cf, ce, &c->ch, b0, ka, kb) : NULL;
	const char *base, *extra;
	if (sum) {
		sample_labels(s, sum, &base, &extra);
		om_sample(out, mf->name, blen, "_sum", base, extra, sum->value);
	}
	if (cnt) {
		sample_labels(s, cnt, &base, &extra);
		om_sample(out, mf->name, blen, "_count", base, extra, cnt->value);
	}
	c->k = g;
}

/* Family c->f's TYPE and HELP lines. */
static void om_family_header(const struct metric_family *mf, struct buf *out)
{
	size_t nlen = strlen(mf->name);
	if (mf->type == HIST_BUCKET) {
		om_header(out, mf->name, nlen > 7 ? nlen - 7 : nlen, "histogram", mf->help);
		return;
	}
	/* A counter's family is named without _total; one that lacks the
	 * suffix keeps its sample name as an unknown-typed family. */
	bool total = nlen > 6 && !strcmp(mf->name + nlen - 6, "_total");
	const char *type = mf->type == GAUGE ? "gauge" : total ? "counter" : "unknown";
	om_header(out, mf->name, mf->type == COUNTER && total ? nlen - 6 : nlen, type, mf->help);
}

void om_cursor_init(struct om_cursor *c)
{
	memset(c, 0, sizeof(*c));
	c->k = SIZE_MAX;
}

bool snapshot_render_openmetrics_some(const struct snapshot *s, struct om_cursor *c,
				      struct buf *out, size_t want)
{
	struct buf ka, kb;
	buf_init(&ka, 1 << 16);
	buf_init(&kb, 1 << 16);
	while (out->len < want && !out->overflow && !c->eof) {
		if (c->f >= M__COUNT || !s->order) {
			buf_puts(out, "# EOF\n");
			c->eof = true;
			break;
		}
		const struct metric_family *mf = &metric_families[c->f];
		size_t first, end;
		family_range(s, c->f, &first, &end);
		if (first == end || mf->type == HIST_SUM || mf->type == HIST_COUNT) {
			c->f++;
			continue;
		}
		if (c->k == SIZE_MAX) {
			om_family_header(mf, out);
			c->k = first;
		}
		size_t nlen = strlen(mf->name);
		while (c->k < end && out->len < want) {
			if (mf->type == HIST_BUCKET) {
				om_histogram_group(s, c, c->f, end, out, &ka, &kb);
				continue;
			}
			const struct snap_sample *sm = &s->samples[s->order[c->k++]];
			const char *base, *extra;
			sample_labels(s, sm, &base, &extra);
			om_sample(out, mf->name, nlen, "", base, extra, sm->value);
		}
		if (c->k >= end) {
			c->f++;
			c->k = SIZE_MAX;
		}
	}
	buf_fini(&ka);
	buf_fini(&kb);
	return c->eof;
}

int snapshot_render_openmetrics(const struct snapshot *s, struct buf *out)
{
	struct om_cursor c;
	om_cursor_init(&c);
	buf_reserve(out, s->nsamples * 160);
	snapshot_render_openmetrics_some(s, &c, out, SIZE_MAX);
	return out->overflow ? -ENOMEM : 0;
}

/* ---- protobuf ----------------------------------------------------------------- */

/* Parses rendered label text (name="value",...; values escaped as in the
 * text format) into pairs in the arena; returns the count or -errno. */
static int parse_labels(struct arena *a, const char *text, Io__Prometheus__Client__LabelPair **out,
			size_t n0, size_t max)
{
	size_t n = n0;
	const char *p = text;
	static const Io__Prometheus__Client__LabelPair init = IO__PROMETHEUS__CLIENT__LABEL_PAIR__INIT;
	while (*p) {
		const char *eq = strchr(p, '=');
		if (!eq || eq[1] != '"')
			return -EINVAL;
		if (n >= max)
			return -E2BIG;
		const char *v = eq + 2, *q = v;
		while (*q && *q != '"')
			q += (*q == '\\' && q[1]) ? 2 : 1;
		Io__Prometheus__Client__LabelPair *lp = arena_alloc(a, sizeof(*lp));
		char *name = arena_alloc(a, (size_t)(eq - p) + 1);
		char *val = arena_alloc(a, (size_t)(q - v) + 1);
		if (!lp || !name || !val)
			return -ENOMEM;
		memcpy(name, p, (size_t)(eq - p));
		name[eq - p] = '\0';
		size_t o = 0;
		for (const char *c = v; c < q; c++) {
			if (*c == '\\' && c + 1 < q) {
				c++;
				val[o++] = *c == 'n' ? '\n' : *c;
			} else {
				val[o++] = *c;
			}
		}
		val[o] = '\0';
		*lp = init;
		lp->name = name;
		lp->value = val;
		out[n++] = lp;
		p = *q ? q + 1 : q;
		if (*p == ',')
			p++;
	}
	return (int)n;
}

/* Fills m's labels: the container's, then the sample's extra minus le when
 * drop_le. */
static int metric_labels(struct arena *a, const struct snapshot *s, const struct snap_sample *sm,
			 bool drop_le, Io__Prometheus__Client__Metric *m)
{
	Io__Prometheus__Client__LabelPair *tmp[EXPO_MAX_LABELS];
	const char *base, *extra;
	sample_labels(s, sm, &base, &extra);
	int n = parse_labels(a, base, tmp, 0, EXPO_MAX_LABELS);
	if (n >= 0)
		n = parse_labels(a, extra, tmp, (size_t)n, EXPO_MAX_LABELS);
	if (n < 0)
		return n;
	size_t k = 0;
	for (int i = 0; i < n; i++)
		if (!drop_le || strcmp(tmp[i]->name, "le"))
			tmp[k++] = tmp[i];
	m->label = arena_alloc(a, (k ? k : 1) * sizeof(*m->label));
	if (!m->label)
		return -ENOMEM;
	memcpy(m->label, tmp, k * sizeof(*tmp));
	m->n_label = k;
	return 0;
}

static void put_varint(struct buf *out, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;
	do {
		b[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	buf_add(out, b, n);
}

/* Packs one family, length-prefixed, onto out. */
static int put_family(struct buf *out, const Io__Prometheus__Client__MetricFamily *mf)
{
	size_t n = io__prometheus__client__metric_family__get_packed_size(mf);
	put_varint(out, n);
	if (buf_reserve(out, n + 1) < 0)
		return -ENOMEM;
	io__prometheus__client__metric_family__pack(mf, (uint8_t *)out->data + out->len);
	out->len += n;
	out->data[out->len] = '\0';
	return 0;
}

int snapshot_render_protobuf(const struct snapshot *s, struct buf *out)
{
	struct buf ka, kb;
	buf_init(&ka, 1 << 16);
	buf_init(&kb, 1 << 16);
	int rc = 0;
	static const Io__Prometheus__Client__Metric m_init = IO__PROMETHEUS__CLIENT__METRIC__INIT;
	static const Io__Prometheus__Client__Gauge g_init = IO__PROMETHEUS__CLIENT__GAUGE__INIT;
	static const Io__Prometheus__Client__Counter c_init = IO__PROMETHEUS__CLIENT__COUNTER__INIT;
	static const Io__Prometheus__Client__Histogram h_init = IO__PROMETHEUS__CLIENT__HISTOGRAM__INIT;
	static const Io__Prometheus__Client__Bucket b_init = IO__PROMETHEUS__CLIENT__BUCKET__INIT;
	for (uint32_t f = 0; f < M__COUNT && s->order && rc == 0; f++) {
		const struct metric_family *fam = &metric_families[f];
		size_t first, end;
		family_range(s, f, &first, &end);
		if (first == end || fam->type == HIST_SUM || fam->type == HIST_COUNT)
			continue;
		/* One arena per family: the messages live until it is packed. */
		struct arena a = { 0 };
		Io__Prometheus__Client__MetricFamily mf = IO__PROMETHEUS__CLIENT__METRIC_FAMILY__INIT;
		char name[256];
		snprintf(name, sizeof(name), "%s", fam->name);
		mf.name = name;
		mf.help = (char *)fam->help;
		mf.has_type = true;
		mf.metric = arena_alloc(&a, (end - first) * sizeof(*mf.metric));
		if (!mf.metric) {
			rc = -ENOMEM;
			break;
		}
		if (fam->type == HIST_BUCKET) {
			size_t nlen = strlen(name);
			if (nlen > 7)
				name[nlen - 7] = '\0';
			mf.type = IO__PROMETHEUS__CLIENT__METRIC_TYPE__HISTOGRAM;
			size_t sf, se, cf, ce;
			family_range(s, f + 1, &sf, &se);
			family_range(s, f + 2, &cf, &ce);
			size_t sh = sf, ch = cf;
			for (size_t k = first; k < end && rc == 0;) {
				const struct snap_sample *b0 = &s->samples[s->order[k]];
				size_t g = k;
				while (g < end && same_group(s, b0, &s->samples[s->order[g]], &ka, &kb))
					g++;
				Io__Prometheus__Client__Metric *m = arena_alloc(&a, sizeof(*m));
				Io__Prometheus__Client__Histogram *h = arena_alloc(&a, sizeof(*h));
				Io__Prometheus__Client__Bucket **bk = arena_alloc(&a, (g - k) * sizeof(*bk));
				if (!m || !h || !bk) {
					rc = -ENOMEM;
					break;
				}
				*m = m_init;
				*h = h_init;
				rc = metric_labels(&a, s, b0, true, m);
				for (size_t i = k; i < g && rc == 0; i++) {
					const struct snap_sample *b = &s->samples[s->order[i]];
					bk[i - k] = arena_alloc(&a, sizeof(**bk));
					if (!bk[i - k]) {
						rc = -ENOMEM;
						break;
					}
					*bk[i - k] = b_init;
					bk[i - k]->has_cumulative_count = true;
					bk[i - k]->cumulative_count = b->value > 0 ? (uint64_t)b->value : 0;
					bk[i - k]->has_upper_bound = true;
					bk[i - k]->upper_bound = le_of(b->extra);
				}
				h->n_bucket = g - k;
				h->bucket = bk;
				const struct snap_sample *sum = se > sf ?
					find_partner(s, sf, se, &sh, b0, &ka, &kb) : NULL;
				const struct snap_sample *cnt = ce > cf ?
					find_partner(s, cf, ce, &ch, b0, &ka, &kb) : NULL;
				h->has_sample_sum = true;
				h->sample_sum = sum ? sum->value : 0;
				h->has_sample_count = true;
				h->sample_count = cnt && cnt->value > 0 ? (uint64_t)cnt->value : 0;
				m->histogram = h;
				mf.metric[mf.n_metric++] = m;
				k = g;
			}
		} else {
			mf.type = fam->type == COUNTER ? IO__PROMETHEUS__CLIENT__METRIC_TYPE__COUNTER :
							 IO__PROMETHEUS__CLIENT__METRIC_TYPE__GAUGE;
			for (size_t k = first; k < end && rc == 0; k++) {
				const struct snap_sample *sm = &s->samples[s->order[k]];
				Io__Prometheus__Client__Metric *m = arena_alloc(&a, sizeof(*m));
				if (!m) {
					rc = -ENOMEM;
					break;
				}
				*m = m_init;
				rc = metric_labels(&a, s, sm, false, m);
				if (fam->type == COUNTER) {
					Io__Prometheus__Client__Counter *c = arena_alloc(&a, sizeof(*c));
					if (!c) {
						rc = -ENOMEM;
						break;
					}
					*c = c_init;
					c->has_value = true;
					c->value = sm->value;
					m->counter = c;
				} else {
					Io__Prometheus__Client__Gauge *g = arena_alloc(&a, sizeof(*g));
					if (!g) {
						rc = -ENOMEM;
						break;
					}
					*g = g_init;
					g->has_value = true;
					g->value = sm->value;
					m->gauge = g;
				}
				mf.metric[mf.n_metric++] = m;
			}
		}
		if (rc == 0 && mf.n_metric)
			rc = put_family(out, &mf);
		arena_free(&a);
	}
	buf_fini(&ka);
	buf_fini(&kb);
	if (rc == 0 && out->overflow)
		rc = -ENOMEM;
	return rc;
}

int expo_render(const struct snapshot *s, enum expo_format f, struct http_resp *resp)
{
	int rc = f == EXPO_PROTOBUF ? snapshot_render_protobuf(s, &resp->body) :
		 f == EXPO_OPENMETRICS ? snapshot_render_openmetrics(s, &resp->body) :
					 snapshot_render_text(s, &resp->body);
	if (rc < 0) {
		buf_reset(&resp->body);
		buf_puts(&resp->body, "exposition too large\n");
		return 500;
	}
	resp->type = expo_content_type(f);
	resp->gzip_ok = true;
	return 200;
}
