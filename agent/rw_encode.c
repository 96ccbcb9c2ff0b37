/*
 * rw_encode.c - the remote write 1.0 request body: a prometheus.WriteRequest
 * packed by the C that protoc-c generates from agent/rw_remote.proto and
 * agent/rw_types.proto, then compressed with snappy's block format (never
 * the framed one, which the spec forbids).
 *
 * A request is built in flat arrays that are reused from request to
 * request (labels, samples, series), and the pointer arrays protobuf-c wants
 * are laid over them only when packing, so building a request costs no
 * allocation once the arrays have grown. Labels are borrowed: the sender
 * keeps each series' relabelled, sorted label set in its cache.
 */
#include "agent/rw.h"
#include "agent/rw_remote.pb-c.h"

#include <errno.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>

struct rw_series_ix {
	size_t lab_first, nlab, smp_first, nsmp;
};

struct rw_req {
	struct rw_series_ix *series;
	size_t nseries, series_cap;
	Prometheus__Label *lab;
	size_t nlab, lab_cap;
	Prometheus__Sample *smp;
	size_t nsmp, smp_cap;
	Prometheus__MetricMetadata *meta;
	size_t nmeta, meta_cap;
	/* protobuf-c's view, rebuilt by rw_req_pack */
	Prometheus__TimeSeries *ts;
	Prometheus__TimeSeries **tsp;
	Prometheus__Label **labp;
	Prometheus__Sample **smpp;
	Prometheus__MetricMetadata **metap;
	size_t view_ts, view_series, view_lab, view_smp, view_meta;
	struct rw_bytes raw;
};

void rw_bytes_fini(struct rw_bytes *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static int bytes_reserve(struct rw_bytes *b, size_t n)
{
	if (n <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < n)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

/* Grows *arr to hold n + 1 elements. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 256;
	void *p = realloc(*arr, ncap * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

struct rw_req *rw_req_new(void)
{
	return calloc(1, sizeof(struct rw_req));
}

void rw_req_free(struct rw_req *r)
{
	if (!r)
		return;
	free(r->series);
	free(r->lab);
	free(r->smp);
	free(r->meta);
	free(r->ts);
	free(r->tsp);
	free(r->labp);
	free(r->smpp);
	free(r->metap);
	rw_bytes_fini(&r->raw);
	free(r);
}

void rw_req_reset(struct rw_req *r)
{
	r->nseries = r->nlab = r->nsmp = r->nmeta = 0;
}

size_t rw_req_samples(const struct rw_req *r)
{
	return r->nsmp;
}

int rw_req_series(struct rw_req *r, const char *const *names, const char *const *values,
		  size_t n)
{
	if (grow((void **)&r->series, &r->series_cap, r->nseries, sizeof(*r->series)) < 0)
		return -ENOMEM;
	while (r->nlab + n > r->lab_cap)
		if (grow((void **)&r->lab, &r->lab_cap, r->lab_cap, sizeof(*r->lab)) < 0)
			return -ENOMEM;
	static const Prometheus__Label init = PROMETHEUS__LABEL__INIT;
	for (size_t i = 0; i < n; i++) {
		Prometheus__Label *l = &r->lab[r->nlab + i];
		*l = init;
		l->name = (char *)names[i];
		l->value = (char *)values[i];
	}
	r->series[r->nseries++] = (struct rw_series_ix){ r->nlab, n, r->nsmp, 0 };
	r->nlab += n;
	return 0;
}

int rw_req_sample(struct rw_req *r, int64_t t_ms, double v)
{
	if (!r->nseries)
		return -EINVAL;
	if (grow((void **)&r->smp, &r->smp_cap, r->nsmp, sizeof(*r->smp)) < 0)
		return -ENOMEM;
	static const Prometheus__Sample init = PROMETHEUS__SAMPLE__INIT;
	Prometheus__Sample *s = &r->smp[r->nsmp++];
	*s = init;
	s->value = v;
	s->timestamp = t_ms;
	r->series[r->nseries - 1].nsmp++;
	return 0;
}

int rw_req_metadata(struct rw_req *r, int type, const char *family, const char *help,
		    const char *unit)
{
	if (grow((void **)&r->meta, &r->meta_cap, r->nmeta, sizeof(*r->meta)) < 0)
		return -ENOMEM;
	static const Prometheus__MetricMetadata init = PROMETHEUS__METRIC_METADATA__INIT;
	Prometheus__MetricMetadata *m = &r->meta[r->nmeta++];
	*m = init;
	m->type = (Prometheus__MetricMetadata__MetricType)type;
	m->metric_family_name = (char *)family;
	m->help = (char *)(help ? help : "");
	m->unit = (char *)(unit ? unit : "");
	return 0;
}

/* Makes sure the pointer arrays hold *have >= want entries. */
static int view_grow(void **arr, size_t *have, size_t want, size_t elem)
{
	if (want <= *have)
		return 0;
	size_t n = *have ? *have : 256;
	while (n < want)
		n *= 2;
	void *p = realloc(*arr, n * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*have = n;
	return 0;
}

int rw_req_pack(struct rw_req *r, struct rw_bytes *out, size_t *raw_len)
{
	if (view_grow((void **)&r->ts, &r->view_ts, r->nseries, sizeof(*r->ts)) < 0 ||
	    view_grow((void **)&r->tsp, &r->view_series, r->nseries, sizeof(*r->tsp)) < 0 ||
	    view_grow((void **)&r->labp, &r->view_lab, r->nlab, sizeof(*r->labp)) < 0 ||
	    view_grow((void **)&r->smpp, &r->view_smp, r->nsmp, sizeof(*r->smpp)) < 0 ||
	    view_grow((void **)&r->metap, &r->view_meta, r->nmeta, sizeof(*r->metap)) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < r->nlab; i++)
		r->labp[i] = &r->lab[i];
	for (size_t i = 0; i < r->nsmp; i++)
		r->smpp[i] = &r->smp[i];
	for (size_t i = 0; i < r->nmeta; i++)
		r->metap[i] = &r->meta[i];
	static const Prometheus__TimeSeries ts_init = PROMETHEUS__TIME_SERIES__INIT;
	for (size_t i = 0; i < r->nseries; i++) {
		const struct rw_series_ix *s = &r->series[i];
		Prometheus__TimeSeries *t = &r->ts[i];
		*t = ts_init;
		t->n_labels = s->nlab;
		t->labels = s->nlab ? r->labp + s->lab_first : NULL;
		t->n_samples = s->nsmp;
		t->samples = s->nsmp ? r->smpp + s->smp_first : NULL;
		r->tsp[i] = t;
	}
	Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
	wr.n_timeseries = r->nseries;
	wr.timeseries = r->tsp;
	wr.n_metadata = r->nmeta;
	wr.metadata = r->metap;
	size_t n = prometheus__write_request__get_packed_size(&wr);
	if (bytes_reserve(&r->raw, n + 1) < 0)
		return -ENOMEM;
	r->raw.len = prometheus__write_request__pack(&wr, r->raw.p);
	size_t clen = snappy_max_compressed_length(r->raw.len);
	if (bytes_reserve(out, clen) < 0)
		return -ENOMEM;
	if (snappy_compress((const char *)r->raw.p, r->raw.len, (char *)out->p, &clen) != SNAPPY_OK)
		return -ENOMEM;
	out->len = clen;
	if (raw_len)
		*raw_len = r->raw.len;
	return 0;
}

ssize_t rw_decode_count(const void *body, size_t len, size_t *nseries, size_t *nmeta)
{
	size_t ulen;
	if (snappy_uncompressed_length(body, len, &ulen) != SNAPPY_OK || ulen > (256u << 20))
		return -EINVAL;
	char *u = malloc(ulen ? ulen : 1);
	if (!u)
		return -ENOMEM;
	if (snappy_uncompress(body, len, u, &ulen) != SNAPPY_OK) {
		free(u);
		return -EINVAL;
	}
	Prometheus__WriteRequest *wr = prometheus__write_request__unpack(NULL, ulen, (uint8_t *)u);
	free(u);
	if (!wr)
		return -EINVAL;
	ssize_t samples = 0;
	for (size_t i = 0; i < wr->n_timeseries; i++)
		samples += (ssize_t)wr->timeseries[i]->n_samples;
	if (nseries)
		*nseries = wr->n_timeseries;
	if (nmeta)
		*nmeta = wr->n_metadata;
	prometheus__write_request__free_unpacked(wr, NULL);
	return samples;
}
