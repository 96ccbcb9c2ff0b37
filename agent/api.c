/*
 * api.c - GET /api/v1/containers[/{id-or-name}] as JSON, from one snapshot.
 *
 * The list gives every container with its metadata and latest values (each
 * family summed over its extra labels, e.g. all devices, as docker stats
 * sums them); the single-container form adds every series with its labels.
 * The base of the CLI, monitor top and the web page.
 */
#include "agent/agent.h"

#include <stdio.h>
#include <string.h>

static void put_kv_str(struct buf *b, const char *key, const char *val, bool comma)
{
	if (comma)
		buf_putc(b, ',');
	buf_put_json_str(b, key);
	buf_putc(b, ':');
	if (val)
		buf_put_json_str(b, val);
	else
		buf_puts(b, "null");
}

static void put_number(struct buf *b, double v)
{
	/* JSON has no NaN or Inf. */
	if (v != v || v > 1.7e308 || v < -1.7e308)
		buf_puts(b, "null");
	else
		buf_put_double(b, v);
}

/*
 * Writes rendered label text (k="v",k2="v2", escaped as in the exposition)
 * as a JSON object. The text is the agent's own, so it is well formed; a
 * malformed tail is dropped rather than guessed at.
 */
static void put_labels_object(struct buf *b, const char *text)
{
	char key[128], val[1024];
	bool first = true;
	buf_putc(b, '{');
	const char *p = text ? text : "";
	while (*p) {
		size_t k = 0, v = 0;
		while (*p && *p != '=' && k + 1 < sizeof(key))
			key[k++] = *p++;
		key[k] = '\0';
		if (p[0] != '=' || p[1] != '"')
			break;
		p += 2;
		while (*p && *p != '"') {
			char c = *p++;
			if (c == '\\' && *p) {
				c = *p++;
				if (c == 'n')
					c = '\n';
			}
			if (v + 1 < sizeof(val))
				val[v++] = c;
		}
		val[v] = '\0';
		if (*p != '"')
			break;
		p++;
		put_kv_str(b, key, val, !first);
		first = false;
		if (*p == ',')
			p++;
	}
	buf_putc(b, '}');
}

static void put_container(struct buf *b, const struct snapshot *s, const struct snap_container *c,
			  bool detail)
{
	buf_putc(b, '{');
	put_kv_str(b, "id", c->id, false);
	put_kv_str(b, "name", c->name, true);
	put_kv_str(b, "image", c->image, true);
	put_kv_str(b, "runtime", c->runtime, true);
	put_kv_str(b, "cgroup", c->cgroup, true);
	put_kv_str(b, "state", c->state, true);
	put_kv_str(b, "pod", c->pod, true);
	put_kv_str(b, "namespace", c->namespace, true);
	put_kv_str(b, "container", c->container, true);
	put_kv_str(b, "compose_project", c->compose_project, true);
	buf_puts(b, ",\"start_time\":");
	put_number(b, c->start_time);
	api_put_lifecycle(b, c);
	buf_puts(b, ",\"labels\":{");
	for (size_t i = 0; i < c->nlabels; i++)
		put_kv_str(b, c->label_keys[i], c->label_vals[i], i > 0);
	buf_puts(b, "},\"values\":{");

	double sum[M__COUNT];
	bool seen[M__COUNT] = { false };
	const struct snap_sample *first = &s->samples[c->sample_first];
	for (uint32_t i = 0; i < c->sample_count; i++) {
		uint32_t f = first[i].family;
		sum[f] = seen[f] ? sum[f] + first[i].value : first[i].value;
		seen[f] = true;
	}
	bool comma = false;
	for (size_t f = 0; f < M__COUNT; f++) {
		if (!seen[f])
			continue;
		if (comma)
			buf_putc(b, ',');
		comma = true;
		buf_put_json_str(b, metric_families[f].name);
		buf_putc(b, ':');
		put_number(b, sum[f]);
	}
	buf_putc(b, '}');
	if (detail) {
		buf_puts(b, ",\"series\":[");
		for (uint32_t i = 0; i < c->sample_count; i++) {
			buf_puts(b, i ? ",{" : "{");
			put_kv_str(b, "metric", metric_families[first[i].family].name, false);
			buf_puts(b, ",\"labels\":");
			put_labels_object(b, first[i].extra);
			buf_puts(b, ",\"value\":");
			put_number(b, first[i].value);
			buf_putc(b, '}');
		}
		buf_putc(b, ']');
	}
	buf_putc(b, '}');
}

/* Exact id, exact name, then a unique id prefix of at least 4 characters
 * (as docker accepts). */
static const struct snap_container *find(const struct snapshot *s, const char *which)
{
	const struct snap_container *prefix = NULL;
	size_t n = strlen(which), nprefix = 0;
	for (size_t i = 0; i < s->ncontainers; i++) {
		const struct snap_container *c = &s->containers[i];
		if (!strcmp(c->id, which) || !strcmp(c->name, which))
			return c;
		if (n >= 4 && !strncmp(c->id, which, n)) {
			prefix = c;
			nprefix++;
		}
	}
	return nprefix == 1 ? prefix : NULL;
}

const struct snap_container *api_find_container(const struct snapshot *s, const char *which)
{
	return s && which ? find(s, which) : NULL;
}

int api_containers(const struct snapshot *s, const char *which, struct buf *out)
{
	if (which) {
		const struct snap_container *list[API_MATCHES_LISTED];
		size_t matches = api_resolve(s, which, list, ARRAY_LEN(list));
		if (matches > 1)
			return api_ambiguous(out, which, list, matches);
		const struct snap_container *c = find(s, which);
		if (!c) {
			buf_puts(out, "{\"status\":\"error\",\"errorType\":\"not_found\",\"error\":");
			char msg[320];
			snprintf(msg, sizeof(msg), "no container with id or name \"%.256s\"", which);
			buf_put_json_str(out, msg);
			buf_putc(out, '}');
			return 404;
		}
		buf_puts(out, "{\"status\":\"success\",\"data\":");
		put_container(out, s, c, true);
		buf_putc(out, '}');
		return 200;
	}
	/* The tick's time and the host's totals ride along, so that a client
	 * (monitor stats) divides container deltas by host deltas of the same
	 * tick, as docker stats does. */
	buf_puts(out, "{\"status\":\"success\",\"time\":");
	put_number(out, (double)s->time_ms / 1000.0);
	buf_puts(out, ",\"machine\":{");
	bool comma = false;
	for (size_t i = 0; i < s->nsamples; i++) {
		const struct snap_sample *sm = &s->samples[i];
		const char *name = metric_families[sm->family].name;
		if (sm->container != SNAP_NO_CONTAINER || strncmp(name, "machine_", 8) != 0)
			continue;
		if (comma)
			buf_putc(out, ',');
		comma = true;
		buf_put_json_str(out, name);
		buf_putc(out, ':');
		put_number(out, sm->value);
	}
	buf_puts(out, "},\"data\":[");
	for (size_t i = 0; i < s->ncontainers; i++) {
		if (i)
			buf_putc(out, ',');
		put_container(out, s, &s->containers[i], false);
	}
	buf_puts(out, "]}");
	return 200;
}
