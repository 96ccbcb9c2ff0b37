/*
 * api_lifecycle.c - the lifecycle part of a container's JSON in
 * /api/v1/containers: whether it has a cgroup, exit code, OOM kill, restart
 * count and policy, health, times, command, published ports and mounts, as
 * the runtime last reported them. Written from the snapshot only.
 */
#include "agent/agent.h"

static void put_str_or_null(struct buf *b, const char *key, const char *v)
{
	buf_putc(b, ',');
	buf_put_json_str(b, key);
	buf_putc(b, ':');
	if (v)
		buf_put_json_str(b, v);
	else
		buf_puts(b, "null");
}

/* A time in unix seconds, or null when unknown (0). */
static void put_time(struct buf *b, const char *key, double t)
{
	buf_putc(b, ',');
	buf_put_json_str(b, key);
	buf_putc(b, ':');
	if (t > 0)
		buf_put_double(b, t);
	else
		buf_puts(b, "null");
}

void api_put_lifecycle(struct buf *b, const struct snap_container *c)
{
	buf_puts(b, c->has_cgroup ? ",\"has_cgroup\":true" : ",\"has_cgroup\":false");
	if (c->has_state) {
		buf_puts(b, ",\"exit_code\":");
		buf_printf(b, "%lld", (long long)c->exit_code);
		buf_puts(b, c->oom_killed ? ",\"oom_killed\":true" : ",\"oom_killed\":false");
	} else {
		buf_puts(b, ",\"exit_code\":null,\"oom_killed\":null");
	}
	buf_puts(b, ",\"restart_count\":");
	if (c->restart_count >= 0)
		buf_printf(b, "%lld", (long long)c->restart_count);
	else
		buf_puts(b, "null");
	put_str_or_null(b, "health", c->health);
	put_str_or_null(b, "restart_policy", c->restart_policy);
	put_str_or_null(b, "command", c->command);
	put_time(b, "created_at", c->created_at);
	put_time(b, "finished_at", c->finished_at);
	put_time(b, "last_seen", c->last_seen);
	buf_puts(b, ",\"ports\":[");
	for (size_t i = 0; i < c->nports; i++) {
		const struct coll_port *p = &c->ports[i];
		buf_printf(b, "%s{\"container_port\":%d,\"protocol\":", i ? "," : "", p->container_port);
		buf_put_json_str(b, p->proto);
		buf_puts(b, ",\"host_ip\":");
		if (p->host_ip)
			buf_put_json_str(b, p->host_ip);
		else
			buf_puts(b, "null");
		buf_puts(b, ",\"host_port\":");
		if (p->host_port > 0)
			buf_printf(b, "%d", p->host_port);
		else
			buf_puts(b, "null");
		buf_putc(b, '}');
	}
	buf_puts(b, "],\"mounts\":[");
	for (size_t i = 0; i < c->nmounts; i++) {
		const struct coll_mount *m = &c->mounts[i];
		buf_puts(b, i ? ",{\"type\":" : "{\"type\":");
		buf_put_json_str(b, m->type ? m->type : "");
		put_str_or_null(b, "name", m->name);
		put_str_or_null(b, "source", m->source);
		put_str_or_null(b, "destination", m->destination);
		buf_puts(b, m->rw ? ",\"rw\":true}" : ",\"rw\":false}");
	}
	buf_putc(b, ']');
}
