/*
 * api_env.c - GET /api/v1/containers/{id}/env: the environment of a
 * container's first process (the one whose parent is outside its cgroup,
 * the lowest pid among those), read from /proc/<pid>/environ at request
 * time, with the values of secret-looking names masked, for the
 * environment pane of `monitor top`.
 *
 * Reading needs no token, so nothing secret may leave: a name that looks
 * like it holds a secret (PASSWORD, SECRET, TOKEN, *_KEY, CREDENTIAL, ...;
 * api_env_secret_name) has its value replaced by "********", and a value
 * that carries a password in a URL ("scheme://user:pass@host") has the
 * password replaced. Each masked entry says so ("masked": true). Bounded:
 * at most API_ENV_BYTES of environ and API_ENV_VARS variables ("truncated"
 * says when more were left out).
 */
#include "agent/agent.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define API_ENV_BYTES (1u << 20)
#define API_ENV_VARS 4096
#define API_ENV_PIDS 10000
#define API_ENV_MASK "********"

bool api_env_secret_name(const char *name)
{
	static const char *const words[] = { "PASSWORD", "PASSWD", "SECRET", "TOKEN", "CREDENTIAL",
					     "PRIVATE", "APIKEY", "API_KEY", "ACCESS_KEY", "AUTH",
					     "SESSION", "COOKIE", "SIGNATURE", "CERT", "SALT" };
	for (size_t i = 0; i < ARRAY_LEN(words); i++)
		if (strcasestr(name, words[i]))
			return true;
	size_t n = strlen(name);
	/* ..._KEY, ..._PWD, ..._PASS, ..._DSN, KEY, PASS, and their lower-case forms. */
	static const char *const suffixes[] = { "_KEY", "_PWD", "_PASS", "_DSN", "-KEY", ".KEY" };
	for (size_t i = 0; i < ARRAY_LEN(suffixes); i++) {
		size_t k = strlen(suffixes[i]);
		if (n >= k && !strcasecmp(name + n - k, suffixes[i]))
			return true;
	}
	return !strcasecmp(name, "KEY") || !strcasecmp(name, "PASS") || !strcasecmp(name, "PW");
}

/* Masks the password of "scheme://user:password@host..." in place (into
 * out); returns true when there was one. */
static bool mask_url_password(const char *v, char *out, size_t size)
{
	const char *s = strstr(v, "://");
	if (!s)
		return false;
	const char *user = s + 3, *at = strchr(user, '@');
	const char *colon = strchr(user, ':');
	const char *slash = strchr(user, '/');
	if (!at || !colon || colon > at || (slash && slash < at))
		return false;
	snprintf(out, size, "%.*s:%s%s", (int)(colon - v), v, API_ENV_MASK, at);
	return true;
}

/* The container's first process: lowest pid whose parent is not in the set. */
static pid_t first_process(const pid_t *pids, size_t n)
{
	pid_t best = 0;
	for (size_t i = 0; i < n; i++) {
		struct proc_stat st;
		if (proc_read_stat(pids[i], &st) < 0)
			continue;
		bool parent_inside = false;
		for (size_t j = 0; j < n && !parent_inside; j++)
			parent_inside = pids[j] == st.ppid;
		if (!parent_inside && (best == 0 || pids[i] < best))
			best = pids[i];
	}
	return best;
}

int api_env(struct http_req *req, struct http_resp *resp)
{
	struct snapshot *snap = agent_snapshot(req->st);
	if (!snap)
		return http_error(resp, 503, "unavailable", "no data yet: the first collection tick "
				  "has not finished");
	int status = 200;
	pid_t *pids = NULL;
	char *text = NULL;
	const struct snap_container *c = api_find_container(snap, req->arg);
	if (!c) {
		char msg[320];
		snprintf(msg, sizeof(msg), "no container with id or name \"%.256s\"", req->arg);
		status = http_error(resp, 404, "not_found", msg);
		goto done;
	}
	if (!req->st->layout) {
		status = http_error(resp, 503, "unavailable", "no cgroup layout");
		goto done;
	}
	pids = malloc(API_ENV_PIDS * sizeof(*pids));
	text = malloc(API_ENV_BYTES + 2);
	if (!pids || !text) {
		status = http_error(resp, 500, "internal", "out of memory");
		goto done;
	}
	bool truncated = false;
	ssize_t n = proc_cgroup_pids(req->st->layout, c->cgroup, pids, API_ENV_PIDS, &truncated);
	pid_t pid = n > 0 ? first_process(pids, (size_t)n) : 0;
	if (pid <= 0) {
		status = http_error(resp, 409, "no_process",
				    "the container has no running process to read the environment of");
		goto done;
	}
	char path[PATH_MAX], rel[64];
	snprintf(rel, sizeof(rel), "/proc/%d/environ", (int)pid);
	if (hostroot_path(path, sizeof(path), rel) < 0) {
		status = http_error(resp, 500, "internal", "host root path too long");
		goto done;
	}
	ssize_t len = read_file(path, text, API_ENV_BYTES + 2);
	if (len < 0) {
		char msg[PATH_MAX + 64];
		snprintf(msg, sizeof(msg), "reading %s: %s", rel, strerror((int)-len));
		status = http_error(resp, len == -EACCES || len == -EPERM ? 403 : 500,
				    "unavailable", msg);
		goto done;
	}
	bool cut = (size_t)len > API_ENV_BYTES;
	if (cut)
		len = API_ENV_BYTES;
	struct buf *b = &resp->body;
	buf_puts(b, "{\"status\":\"success\",\"data\":{\"id\":");
	buf_put_json_str(b, c->id);
	buf_puts(b, ",\"name\":");
	buf_put_json_str(b, c->name ? c->name : c->id);
	buf_printf(b, ",\"pid\":%d,\"env\":[", (int)pid);
	size_t count = 0, masked = 0;
	char *masked_url = malloc(API_ENV_BYTES + 64);
	for (ssize_t off = 0; off < len;) {
		char *var = text + off;
		size_t vl = strnlen(var, (size_t)(len - off));
		off += (ssize_t)vl + 1;
		if (cut && off > len)
			break;           /* the last variable was cut: leave it out */
		var[vl] = '\0';
		char *eq = strchr(var, '=');
		if (!eq || eq == var)
			continue;
		if (count == API_ENV_VARS) {
			cut = true;
			break;
		}
		*eq = '\0';
		const char *val = eq + 1;
		bool hide = api_env_secret_name(var);
		if (!hide && masked_url && mask_url_password(val, masked_url, API_ENV_BYTES + 64))
			val = masked_url, hide = true;
		else if (hide)
			val = API_ENV_MASK;
		masked += hide;
		buf_puts(b, count++ ? ",{\"name\":" : "{\"name\":");
		buf_put_json_str(b, var);
		buf_puts(b, ",\"value\":");
		buf_put_json_str(b, val);
		buf_puts(b, hide ? ",\"masked\":true}" : ",\"masked\":false}");
	}
	free(masked_url);
	buf_printf(b, "],\"count\":%zu,\"masked\":%zu,\"truncated\":%s}}", count, masked,
		   cut ? "true" : "false");
	resp->type = "application/json";
done:
	free(pids);
	free(text);
	snapshot_unref(snap);
	return status;
}
