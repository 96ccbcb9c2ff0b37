/*
 * http_metrics.c - GET /metrics in text format 0.0.4 and OpenMetrics,
 * streamed (protobuf is rendered whole, expo.c).
 *
 * At 1,000 containers the text is about 6.5 MB. Rendered whole, every
 * scrape grew one buffer to that size and freed it after the send, and
 * glibc kept the freed pages in the HTTP thread's arena (its mmap threshold
 * rises to the largest block freed): about 9 MB of the agent's RSS between
 * scrapes. Giving them back (malloc_trim) made the next scrape fault them in
 * again, 4-5 ms of 6. So the text is rendered a part at a time
 * (snapshot_render_text_some) straight into libmicrohttpd's send buffer of
 * the connection (about 64 KB), which sends each part as it comes (chunked; HTTP/1.0 clients get
 * the body up to the connection's close). The snapshot is held until the
 * last part is sent.
 *
 * gzip: Prometheus asks for it on every scrape, and compressing costs more
 * than rendering, so the compressed body of the newest snapshot is kept
 * (st->gz). The first gzip scrape of a snapshot compresses the parts as they
 * are rendered and, when the stream ends, keeps what it sent; later ones
 * are sent straight from the kept body (with its Content-Length, no copy).
 * It lives in pages of its own mapping (buf_init_mapped), shared by
 * reference, so replacing it leaves nothing in an arena.
 */
#include "agent/agent.h"
#include "agent/http_priv.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Text rendered per part: big enough that the per-part overhead is small,
 * small enough to stay in cache between render and send. */
#define PART_BYTES (32u * 1024)
/* A part is whole lines, so it may run past PART_BYTES by one line; a line
 * is bounded by the labels' caps, far below this. */
#define PART_CAP (16u << 20)
/* The kept gzip body: as the whole text's cap in http.c. */
#define GZ_CAP (256u << 20)

/* A compressed /metrics body, shared by the cache and the responses that
 * send it; freed with its last reference. */
struct gz_body {
	int refs;                /* atomic */
	uint64_t seq;            /* the snapshot's */
	enum expo_format fmt;    /* text or OpenMetrics */
	struct buf b;            /* mapped */
};

static struct gz_body *gz_ref(struct gz_body *g)
{
	if (g)
		__atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
	return g;
}

static void gz_unref(struct gz_body *g)
{
	if (!g || __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	buf_fini(&g->b);
	free(g);
}

/* MHD's free callback of a response sending g. */
static void gz_release(void *g)
{
	gz_unref(g);
}

/* The kept body of format fmt if it was made from snapshot seq,
 * referenced; else NULL. */
static struct gz_body *gz_cache_get(struct agent_state *st, uint64_t seq, enum expo_format fmt)
{
	pthread_mutex_lock(&st->gz_lock);
	struct gz_body *k = st->gz[fmt];
	struct gz_body *g = k && k->seq == seq ? gz_ref(k) : NULL;
	pthread_mutex_unlock(&st->gz_lock);
	return g;
}

/* Keeps g (the caller's reference moves to the cache) unless a newer
 * snapshot's body is kept already. */
static void gz_cache_put(struct agent_state *st, struct gz_body *g)
{
	pthread_mutex_lock(&st->gz_lock);
	struct gz_body *old = g;
	if (!st->gz[g->fmt] || g->seq >= st->gz[g->fmt]->seq) {
		old = st->gz[g->fmt];
		st->gz[g->fmt] = g;
	}
	pthread_mutex_unlock(&st->gz_lock);
	gz_unref(old);
}

void http_metrics_cache_free(struct agent_state *st)
{
	for (size_t i = 0; i < ARRAY_LEN(st->gz); i++) {
		gz_unref(st->gz[i]);
		st->gz[i] = NULL;
	}
}

/* One /metrics response being sent. */
struct metrics_stream {
	struct agent_state *st;
	struct snapshot *s;
	enum expo_format fmt;    /* text or OpenMetrics */
	struct text_cursor cur;  /* text */
	struct om_cursor om;     /* OpenMetrics */
	struct buf part;         /* rendered text not yet sent or compressed */
	size_t part_off;
	bool rendered;           /* the last part is in part */
	bool gzip;               /* compressing into z */
	bool z_end;              /* deflate said Z_STREAM_END */
	z_stream z;
	struct gz_body *gz;      /* gzip: what was sent so far, kept at the end */
};

static void stream_free(void *arg)
{
	struct metrics_stream *m = arg;
	if (m->gzip)
		deflateEnd(&m->z);
	snapshot_unref(m->s);
	gz_unref(m->gz);
	buf_fini(&m->part);
	free(m);
}

/* Renders the next part when the last one is used up. False when nothing
 * is left to render (or the render failed: part's cap). */
static bool next_part(struct metrics_stream *m)
{
	if (m->part_off < m->part.len)
		return true;
	if (m->rendered)
		return false;
	buf_reset(&m->part);
	m->part_off = 0;
	m->rendered = m->fmt == EXPO_TEXT ?
		snapshot_render_text_some(m->s, &m->cur, &m->part, PART_BYTES) :
		snapshot_render_openmetrics_some(m->s, &m->om, &m->part, PART_BYTES);
	return !m->part.overflow && m->part.len > 0;
}

/* MHD's reader without gzip. Text: lines rendered straight into out while
 * they fit; through part when one does not fit whole (a line longer than
 * out) and for the rest of it. OpenMetrics: through part. */
static ssize_t read_plain(void *arg, uint64_t pos, char *out, size_t max)
{
	struct metrics_stream *m = arg;
	size_t n = 0;
	(void)pos;
	if (m->fmt == EXPO_TEXT && m->part_off == m->part.len && !m->rendered) {
		struct buf direct = { .data = out, .size = max, .cap = max };
		m->rendered = snapshot_render_text_some(m->s, &m->cur, &direct, SIZE_MAX);
		n = direct.len;
	}
	while ((m->fmt != EXPO_TEXT || !n) && n < max && next_part(m)) {
		size_t k = m->part.len - m->part_off;
		if (k > max - n)
			k = max - n;
		memcpy(out + n, m->part.data + m->part_off, k);
		m->part_off += k;
		n += k;
	}
	if (m->part.overflow)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return n ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
}

/* MHD's reader with gzip: parts compressed straight into out, and
 * what was sent copied into m->gz, kept when the stream ends. */
static ssize_t read_gzip(void *arg, uint64_t pos, char *out, size_t max)
{
	struct metrics_stream *m = arg;
	(void)pos;
	m->z.next_out = (Bytef *)out;
	m->z.avail_out = (uInt)(max < UINT32_MAX ? max : UINT32_MAX);
	while (m->z.avail_out && !m->z_end) {
		bool more = next_part(m);
		if (m->part.overflow)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		m->z.next_in = more ? (Bytef *)m->part.data + m->part_off : Z_NULL;
		m->z.avail_in = more ? (uInt)(m->part.len - m->part_off) : 0;
		int rc = deflate(&m->z, more ? Z_NO_FLUSH : Z_FINISH);
		if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (more)
			m->part_off = m->part.len - m->z.avail_in;
		m->z_end = rc == Z_STREAM_END;
	}
	size_t n = max - m->z.avail_out;
	if (m->gz) {
		buf_add(&m->gz->b, out, n);
		if (m->z_end && !m->gz->b.overflow) {
			gz_cache_put(m->st, m->gz);
			m->gz = NULL;
		}
	}
	return n ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
}

/* A new stream of s in format fmt (gzip: compressed); NULL when out of
 * memory. */
static struct metrics_stream *stream_new(struct agent_state *st, struct snapshot *s,
					 enum expo_format fmt, bool gzip)
{
	struct metrics_stream *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->st = st;
	m->s = s;
	m->fmt = fmt;
	text_cursor_init(&m->cur);
	om_cursor_init(&m->om);
	buf_init(&m->part, PART_CAP);
	if (!gzip)
		return m;
	m->gz = calloc(1, sizeof(*m->gz));
	if (!m->gz || http_gzip_init(&m->z) < 0) {
		free(m->gz);
		free(m);
		return NULL;
	}
	m->gzip = true;
	m->gz->refs = 1;
	m->gz->seq = s->seq;
	m->gz->fmt = fmt;
	buf_init_mapped(&m->gz->b, GZ_CAP);
	return m;
}

/* The stream's length, rendered a part at a time and thrown away (a HEAD:
 * its Content-Length, as the GET would send it); m is left at its start. */
static uint64_t stream_length(struct metrics_stream *m)
{
	struct text_cursor cur = m->cur;
	struct om_cursor om = m->om;
	uint64_t n = 0;
	while (next_part(m)) {
		n += m->part.len;
		m->part_off = m->part.len;
	}
	m->cur = cur;
	m->om = om;
	m->rendered = false;
	buf_reset(&m->part);
	m->part_off = 0;
	return n;
}

int http_serve_metrics(struct http_req *req, struct http_resp *resp)
{
	__atomic_add_fetch(&req->st->scrapes, 1, __ATOMIC_RELAXED);
	struct snapshot *s = agent_snapshot(req->st);
	if (!s) {
		buf_puts(&resp->body, "no data yet: the first collection tick has not finished\n");
		return 503;
	}
	/* OpenMetrics and protobuf when the scraper asks (expo.c); ?format=
	 * overrides Accept. Prometheus asks for OpenMetrics first. */
	enum expo_format fmt = expo_negotiate(http_header(req, "Accept"));
	const char *want = http_query(req, "format");
	if (want && expo_parse_format(want, &fmt) < 0) {
		snapshot_unref(s);
		buf_puts(&resp->body, "format: expected text, openmetrics or protobuf\n");
		return 400;
	}
	if (fmt == EXPO_PROTOBUF) {
		int status = expo_render(s, fmt, resp);
		snapshot_unref(s);
		return status;
	}
	resp->type = expo_content_type(fmt);
	const char *ae = http_header(req, "Accept-Encoding");
	bool gzip = ae && strstr(ae, "gzip");
	/* libmicrohttpd 0.9.75 sometimes sends a chunked answer's last chunk
	 * after the head of a HEAD answer, which the client then reads as the
	 * next answer's status line: a HEAD gets the uncompressed length
	 * instead (or the kept gzip body's) and no chunks. */
	bool head = !strcmp(req->method, "HEAD");
	/* Keyed by seq, not time: a snapshot merged between ticks
	 * (snapshot_merge) keeps its base's time. */
	struct gz_body *kept = gzip ? gz_cache_get(req->st, s->seq, fmt) : NULL;
	if (kept) {
		snapshot_unref(s);
		resp->gzipped = true;
		resp->ext = kept->b.data;
		resp->ext_len = kept->b.len;
		resp->ext_free = gz_release;
		resp->ext_arg = kept;
		return 200;
	}
	gzip &= !head;
	resp->gzipped = gzip;
	struct metrics_stream *m = stream_new(req->st, s, fmt, gzip);
	if (!m) {
		snapshot_unref(s);
		return http_error(resp, 500, "internal", "out of memory");
	}
	if (head)
		resp->stream_len = stream_length(m);
	resp->stream = gzip ? read_gzip : read_plain;
	resp->stream_free = stream_free;
	resp->stream_arg = m;
	return 200;
}
