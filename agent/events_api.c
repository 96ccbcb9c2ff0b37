/*
 * events_api.c - GET /api/v1/events: the event timeline as JSON.
 *
 * The timeline (collectors/events.c) holds the last AGENT_EVENTS_KEPT
 * lifecycle events from every source: the Docker event stream (start, stop,
 * die, oom, restart, health_status, pause, unpause, create, destroy), the
 * registry (restart under a restart policy), the eBPF probes (oom) and the
 * actions taken through this API (action). This handler filters a copy of
 * it: since (a time, or a duration back from now), after (a sequence number,
 * the cursor for polling), container (name or id prefix), type, and returns
 * the newest limit matches, oldest first. Runs on the connection's thread
 * and never blocks the tick: copying out takes the log's lock briefly, a
 * chunk at a time.
 */
#include "agent/agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENTS_DEFAULT_LIMIT 1000
#define EVENTS_CHUNK 256
#define TYPES_MAX 16

/*
 * since= as Docker takes it: unix seconds ("1700000000", "1700000000.25"),
 * RFC 3339, or a duration back from now ("10m", "1h", "30s"). Returns 0
 * and the time in ms, or -EINVAL.
 */
int events_parse_since(const char *s, int64_t now, int64_t *out_ms)
{
	char *end;
	if (!s || !*s)
		return -EINVAL;
	if (strchr(s, 'T') || strchr(s, ':')) {
		/* RFC 3339 as the silences API reads it; nothing before 1970. */
		int64_t t;
		if (alert_time_parse(s, &t) < 0 || t < 0)
			return -EINVAL;
		*out_ms = t;
		return 0;
	}
	if (*s >= '0' && *s <= '9') {
		double v = strtod(s, &end);
		if (*end == '\0' && v >= 0 && v < 1e11) {
			*out_ms = (int64_t)(v * 1000);
			return 0;
		}
	}
	int64_t d;
	if (parse_duration_ms(s, &d) < 0 || d < 0)
		return -EINVAL;
	*out_ms = now - d;
	return 0;
}

struct filter {
	int64_t since_ms, until_ms;
	uint64_t after;
	const char *container;
	size_t container_len;
	char types[TYPES_MAX][24];
	size_t ntypes;
};

static bool matches(const struct filter *f, const struct coll_event *e)
{
	if (e->time_ms < f->since_ms || e->time_ms > f->until_ms || e->seq <= f->after)
		return false;
	if (f->container && strcmp(e->name, f->container) != 0 &&
	    (f->container_len < 4 || strncmp(e->id, f->container, f->container_len) != 0))
		return false;
	if (!f->ntypes)
		return true;
	for (size_t i = 0; i < f->ntypes; i++)
		if (strcmp(e->type, f->types[i]) == 0)
			return true;
	return false;
}

static int bad(struct http_resp *resp, const char *key, const char *val, const char *want)
{
	char msg[400];
	snprintf(msg, sizeof(msg), "%s=%.64s: expected %s", key, val, want);
	return http_error(resp, 400, "bad_data", msg);
}

static int parse_filter(const struct http_req *req, struct http_resp *resp, struct filter *f,
			size_t *limit)
{
	const char *v;
	char *end;
	int64_t now = now_ms();
	memset(f, 0, sizeof(*f));
	f->until_ms = INT64_MAX;
	*limit = EVENTS_DEFAULT_LIMIT;
	if ((v = http_query(req, "since")) && events_parse_since(v, now, &f->since_ms) < 0)
		return bad(resp, "since", v, "unix seconds, an RFC 3339 time or a duration such as 10m");
	if ((v = http_query(req, "until")) && events_parse_since(v, now, &f->until_ms) < 0)
		return bad(resp, "until", v, "unix seconds, an RFC 3339 time or a duration such as 10m");
	if ((v = http_query(req, "after"))) {
		errno = 0;
		unsigned long long a = strtoull(v, &end, 10);
		if (!*v || *end || errno || *v == '-')
			return bad(resp, "after", v, "a sequence number (the seq of the last event seen)");
		f->after = a;
	}
	if ((v = http_query(req, "limit"))) {
		long n = strtol(v, &end, 10);
		if (!*v || *end || n < 1 || n > AGENT_EVENTS_KEPT) {
			char want[64];
			snprintf(want, sizeof(want), "a number from 1 to %d", AGENT_EVENTS_KEPT);
			return bad(resp, "limit", v, want);
		}
		*limit = (size_t)n;
	}
	if ((v = http_query(req, "container")) && *v) {
		f->container = v;
		f->container_len = strlen(v);
	}
	if ((v = http_query(req, "type")) && *v) {
		for (const char *p = v; *p;) {
			size_t n = strcspn(p, ",");
			if (n == 0 || n >= sizeof(f->types[0]) || f->ntypes == TYPES_MAX)
				return bad(resp, "type", v, "a comma-separated list of event types");
			memcpy(f->types[f->ntypes], p, n);
			f->types[f->ntypes++][n] = '\0';
			p += n + (p[n] == ',');
		}
	}
	return 0;
}

static void put_event(struct buf *b, const struct coll_event *e, bool comma)
{
	buf_puts(b, comma ? ",{\"seq\":" : "{\"seq\":");
	buf_put_u64(b, e->seq);
	buf_puts(b, ",\"time\":");
	buf_put_double(b, (double)e->time_ms / 1000);
	buf_puts(b, ",\"id\":");
	buf_put_json_str(b, e->id);
	buf_puts(b, ",\"name\":");
	buf_put_json_str(b, e->name);
	buf_puts(b, ",\"type\":");
	buf_put_json_str(b, e->type);
	buf_puts(b, ",\"detail\":");
	buf_put_json_str(b, e->detail);
	buf_putc(b, '}');
}

int api_events(struct http_req *req, struct http_resp *resp)
{
	struct filter f;
	size_t limit;
	int rc = parse_filter(req, resp, &f, &limit);
	if (rc)
		return rc;
	/* The newest `limit` matches, in a ring, read a chunk at a time. */
	struct coll_event *ring = malloc(limit * sizeof(*ring));
	struct coll_event *chunk = malloc(EVENTS_CHUNK * sizeof(*chunk));
	if (!ring || !chunk) {
		free(ring);
		free(chunk);
		return http_error(resp, 500, "internal", "out of memory");
	}
	size_t head = 0, count = 0;
	uint64_t cursor = 0, last_seq = 0;
	for (;;) {
		size_t n = coll_event_read(req->st->events, cursor, chunk, EVENTS_CHUNK);
		for (size_t i = 0; i < n; i++) {
			last_seq = chunk[i].seq;
			if (!matches(&f, &chunk[i]))
				continue;
			ring[(head + count) % limit] = chunk[i];
			if (count < limit)
				count++;
			else
				head = (head + 1) % limit;
		}
		if (n < EVENTS_CHUNK)
			break;
		cursor = chunk[n - 1].seq;
	}
	buf_puts(&resp->body, "{\"status\":\"success\",\"data\":[");
	for (size_t i = 0; i < count; i++)
		put_event(&resp->body, &ring[(head + i) % limit], i > 0);
	buf_puts(&resp->body, "],\"last_seq\":");
	buf_put_u64(&resp->body, last_seq);
	buf_putc(&resp->body, '}');
	free(ring);
	free(chunk);
	resp->type = "application/json";
	return 200;
}
