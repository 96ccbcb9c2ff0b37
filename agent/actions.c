/*
 * actions.c - POST /api/v1/containers/{id}/{action}: start, stop, restart,
 * pause, unpause and kill a container through its runtime, for an admin.
 *
 * Nothing here happens without the admin token: with no
 * auth.admin_token_file configured every action is refused (401), and a
 * request must carry "Authorization: Bearer <token>", compared in constant
 * time. The token is checked before the id is looked up, so a caller without
 * it learns nothing about which containers exist.
 *
 * The id is resolved against the newest snapshot (exact id, exact name, or a
 * unique id prefix of 4+ characters, as GET /api/v1/containers/{id}); an
 * ambiguous prefix is refused with the matches listed. Docker containers are
 * driven through the Engine API (docker_action), plain runc containers
 * through the runc binary (kill, pause, unpause only: runc cannot start or
 * stop an existing container's process). Other runtimes answer 501. Every
 * attempt that passes the token check is logged (never the token) and posted
 * to the event timeline as type "action". Runs on the HTTP connection's
 * thread; the runtime's answer is waited for there, bounded by a timeout.
 */
#include "agent/agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOKEN_MIN 16
#define TOKEN_MAX 4096
#define STOP_GRACE_DEFAULT_S 10  /* Docker's default for stop and restart */
#define RUNC_OUT_CAP 4096

extern char **environ;

static const char *const action_names[] = {
	"start", "stop", "restart", "pause", "unpause", "kill",
};

/* ---- the token ---------------------------------------------------------- */

bool auth_token_equal(const char *given, size_t given_len, const char *want, size_t want_len)
{
	/* Every byte of want is looked at whatever given is, so the time
	 * taken tells nothing about how much of a guess was right. */
	volatile unsigned char diff = given_len != want_len;
	for (size_t i = 0; i < want_len; i++)
		diff |= (unsigned char)(want[i] ^ (i < given_len ? given[i] : 0));
	return diff == 0;
}

char *auth_load_token(const char *path, char *err, size_t errsize)
{
	struct stat sb;
	char *buf = malloc(TOKEN_MAX + 2);
	if (!buf) {
		snprintf(err, errsize, "%s: out of memory", path);
		return NULL;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errsize, "%s: not a regular file", path);
		goto fail;
	}
	ssize_t n = read(fd, buf, TOKEN_MAX + 1);
	if (n < 0) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		goto fail;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	size_t len = strlen(buf);
	while (len && (buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		buf[--len] = '\0';
	size_t lead = strspn(buf, " \t");
	memmove(buf, buf + lead, len - lead + 1);
	len -= lead;
	if (len < TOKEN_MIN || len > TOKEN_MAX) {
		snprintf(err, errsize, "%s: the token (first line) must be %d to %d characters, "
			 "not %zu", path, TOKEN_MIN, TOKEN_MAX, len);
		goto fail;
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)buf[i] <= ' ' || buf[i] == 0x7f) {
			snprintf(err, errsize, "%s: the token may not hold spaces or control characters",
				 path);
			goto fail;
		}
	if (sb.st_mode & 0077)
		log_warn("token file %s is readable by other users (mode %03o); "
			 "chmod 600 it", path, (unsigned)(sb.st_mode & 0777));
	close(fd);
	return buf;
fail:
	if (fd >= 0)
		close(fd);
	explicit_bzero(buf, TOKEN_MAX + 2);
	free(buf);
	return NULL;
}

const char *admin_refusal(const struct http_req *req, const char *disabled, const char *needs)
{
	if (req->admin_ok) /* access.c checked the admin token or an admin user */
		return NULL;
	if (!req->st->admin_token)
		return disabled;
	const char *h = http_header(req, "Authorization");
	if (!h || !*h)
		return needs;
	if (strncasecmp(h, "Bearer ", 7) != 0)
		return "the Authorization header must be \"Bearer <token>\"";
	const char *tok = h + 7;
	while (*tok == ' ')
		tok++;
	if (!auth_token_equal(tok, strlen(tok), req->st->admin_token, req->st->admin_token_len))
		return "wrong admin token";
	return NULL;
}

/* Returns NULL when the request carries the admin token, else why not. */
static const char *refusal(const struct http_req *req)
{
	return admin_refusal(req, "container actions are disabled: no admin token is configured "
			     "(auth.admin_token_file)",
			     "this action needs the admin token: send \"Authorization: Bearer <token>\"");
}

/* ---- resolving an id ---------------------------------------------------- */

/*
 * Finds which among the snapshot's containers: an exact id, an exact name
 * (one with a cgroup wins over one shown without: a runc id may repeat), else
 * an id prefix of at least 4 characters. Returns the number of matches;
 * the first max of them are stored in out.
 */
size_t api_resolve(const struct snapshot *s, const char *which, const struct snap_container **out,
		   size_t max)
{
	size_t n = strlen(which), found = 0, live = 0;
	const struct snap_container *live_one = NULL;
	for (size_t i = 0; i < s->ncontainers; i++)
		if (!strcmp(s->containers[i].id, which)) {
			if (max)
				out[0] = &s->containers[i];
			return 1;
		}
	for (size_t i = 0; i < s->ncontainers; i++) {
		const struct snap_container *c = &s->containers[i];
		if (strcmp(c->name, which) != 0)
			continue;
		if (found < max)
			out[found] = c;
		found++;
		if (c->has_cgroup) {
			live++;
			live_one = c;
		}
	}
	if (found > 1 && live == 1) {
		if (max)
			out[0] = live_one;
		return 1;
	}
	if (found)
		return found;
	if (n < 4)
		return 0;
	for (size_t i = 0; i < s->ncontainers; i++) {
		const struct snap_container *c = &s->containers[i];
		if (strncmp(c->id, which, n) == 0) {
			if (found < max)
				out[found] = c;
			found++;
		}
	}
	return found;
}

/* 409 with the matches, so the caller can pick one. */
int api_ambiguous(struct buf *out, const char *which, const struct snap_container *const *list,
		  size_t n)
{
	char msg[512];
	snprintf(msg, sizeof(msg), "\"%.200s\" matches %zu containers; give more of the id "
		 "or the full name", which, n);
	buf_reset(out);
	buf_puts(out, "{\"status\":\"error\",\"errorType\":\"ambiguous\",\"error\":");
	buf_put_json_str(out, msg);
	buf_puts(out, ",\"matches\":[");
	for (size_t i = 0; i < n && i < API_MATCHES_LISTED; i++) {
		buf_puts(out, i ? ",{\"id\":" : "{\"id\":");
		buf_put_json_str(out, list[i]->id);
		buf_puts(out, ",\"name\":");
		buf_put_json_str(out, list[i]->name);
		buf_puts(out, ",\"state\":");
		buf_put_json_str(out, list[i]->state);
		buf_putc(out, '}');
	}
	buf_puts(out, "]}");
	return 409;
}

/* ---- runc --------------------------------------------------------------- */

/* The runc state root (host root applied) that holds id, or -ENOENT. */
static int runc_root(const char *id, char *root, size_t size)
{
	char rel[PATH_MAX], state[PATH_MAX + 128];
	snprintf(rel, sizeof(rel), "/run/runc");
	if (hostroot_path(root, size, rel) < 0)
		return -ENAMETOOLONG;
	snprintf(state, sizeof(state), "%s/%s/state.json", root, id);
	return access(state, F_OK) == 0 ? 0 : -ENOENT;
}

/*
 * Runs `runc --root ROOT <verb> ID [SIGNAL]`, waiting at most timeout_ms.
 * Returns runc's exit status (0: done), or -ETIMEDOUT (killed), or -errno
 * when it cannot be run; msg gets runc's first line of output or the reason.
 */
static int run_runc(const char *root, const char *verb, const char *id, const char *sig,
		    int64_t timeout_ms, char *msg, size_t msgsize)
{
	char *argv[] = { "runc", "--root", (char *)root, (char *)verb, (char *)id, (char *)sig,
			 NULL };
	int pfd[2];
	msg[0] = '\0';
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(msg, msgsize, "pipe: %s", strerror(errno));
		return -errno;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
	/* The agent blocks SIGTERM, SIGINT and SIGPIPE in every thread (they
	 * go to its signalfd); runc must not inherit that. */
	posix_spawnattr_t attr;
	sigset_t none;
	sigemptyset(&none);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	pid_t pid;
	int rc = posix_spawnp(&pid, "runc", &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (rc != 0) {
		close(pfd[0]);
		snprintf(msg, msgsize, "cannot run runc: %s", strerror(rc));
		return -rc;
	}
	char out[RUNC_OUT_CAP];
	size_t len = 0;
	int64_t deadline = mono_ns() + timeout_ms * 1000000;
	bool timed_out = false;
	for (;;) {
		int64_t left_ms = (deadline - mono_ns()) / 1000000;
		if (left_ms <= 0) {
			timed_out = true;
			break;
		}
		struct pollfd p = { pfd[0], POLLIN, 0 };
		if (poll(&p, 1, (int)(left_ms > 1000 ? 1000 : left_ms)) <= 0)
			continue;
		ssize_t n = read(pfd[0], out + len, sizeof(out) - 1 - len);
		if (n <= 0)
			break; /* EOF: runc is done (or closed its output) */
		len += (size_t)n;
		if (len == sizeof(out) - 1)
			len = 0; /* keep reading, keep the end */
	}
	close(pfd[0]);
	out[len] = '\0';
	int status = 0;
	if (timed_out)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out) {
		snprintf(msg, msgsize, "runc %s did not finish within %lld ms", verb,
			 (long long)timeout_ms);
		return -ETIMEDOUT;
	}
	/* runc logs as `time="..." level=error msg="container not running"`. */
	const char *m = strstr(out, "msg=\"");
	if (m) {
		m += 5;
		snprintf(msg, msgsize, "%.*s", (int)strcspn(m, "\"\n"), m);
	} else {
		snprintf(msg, msgsize, "%.*s", (int)strcspn(out, "\n"), out);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- the handler -------------------------------------------------------- */

static void client_address(const struct http_req *req, char *out, size_t size)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	snprintf(out, size, "?");
	if (!ci || !ci->client_addr)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
			  (socklen_t)size);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
			  (socklen_t)size);
}

/* What the request asked and how it went, for the log, the event and the reply. */
struct outcome {
	int status;              /* our HTTP status */
	bool changed;            /* false: it already was so (Docker 304) */
	char error_type[24];
	char msg[512];
};

static void fail(struct outcome *o, int status, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void fail(struct outcome *o, int status, const char *type, const char *fmt, ...)
{
	va_list ap;
	o->status = status;
	snprintf(o->error_type, sizeof(o->error_type), "%s", type);
	va_start(ap, fmt);
	vsnprintf(o->msg, sizeof(o->msg), fmt, ap);
	va_end(ap);
}

/* Query arguments: t (seconds) for stop and restart, signal for kill. */
static int action_query(const struct http_req *req, const char *action, char *query,
			size_t qsize, int64_t *grace_s, struct outcome *o)
{
	query[0] = '\0';
	*grace_s = 0;
	const char *t = http_query(req, "t");
	const char *sig = http_query(req, "signal");
	if (t) {
		char *end;
		long v = strtol(t, &end, 10);
		if (strcmp(action, "stop") && strcmp(action, "restart")) {
			fail(o, 400, "bad_data", "t= is for stop and restart only");
			return -EINVAL;
		}
		if (!*t || *end || v < 0 || v > 3600) {
			fail(o, 400, "bad_data", "t=%.32s: expected seconds from 0 to 3600", t);
			return -EINVAL;
		}
		snprintf(query, qsize, "t=%ld", v);
		*grace_s = v;
	} else if (!strcmp(action, "stop") || !strcmp(action, "restart")) {
		*grace_s = STOP_GRACE_DEFAULT_S;
	}
	if (sig) {
		size_t n = strlen(sig);
		if (strcmp(action, "kill")) {
			fail(o, 400, "bad_data", "signal= is for kill only");
			return -EINVAL;
		}
		if (n == 0 || n > 16 || strspn(sig, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+") != n) {
			fail(o, 400, "bad_data", "signal=%.32s: expected a signal name or number "
			     "such as SIGTERM, TERM or 15", sig);
			return -EINVAL;
		}
		snprintf(query, qsize, "signal=%s", sig);
	}
	return 0;
}

static void run_docker(const struct http_req *req, const char *id, const char *action,
		       const char *query, int64_t grace_s, struct outcome *o)
{
	char msg[400];
	int64_t timeout_ms = req->st->action_timeout_ms + grace_s * 1000;
	int rc = docker_action(req->st->docker, id, action, query, timeout_ms, msg, sizeof(msg));
	if (rc == 204 || rc == 200) {
		o->status = 200;
		o->changed = true;
	} else if (rc == 304) {
		o->status = 200;
		o->changed = false;
		snprintf(o->msg, sizeof(o->msg), "the container was already %s",
			 !strcmp(action, "start") ? "running" : "stopped");
	} else if (rc == 404) {
		fail(o, 404, "not_found", "the Docker engine does not know %s: %s", id, msg);
	} else if (rc == 409) {
		fail(o, 409, "conflict", "%s", msg[0] ? msg : "the container's state forbids it");
	} else if (rc >= 400 && rc < 500) {
		fail(o, 400, "bad_data", "the Docker engine refused: HTTP %d: %s", rc, msg);
	} else if (rc >= 500) {
		fail(o, 502, "runtime", "the Docker engine failed: HTTP %d: %s", rc, msg);
	} else if (rc == -ETIMEDOUT) {
		fail(o, 504, "timeout", "%s", msg);
	} else if (rc == -ENOTCONN) {
		fail(o, 503, "unavailable", "%s", msg);
	} else if (rc == -ECANCELED) {
		fail(o, 503, "unavailable", "%s", msg);
	} else {
		fail(o, 502, "runtime", "%s", msg[0] ? msg : "the Docker engine did not answer");
	}
}

static void run_runc_action(const char *id, const char *action, const struct http_req *req,
			    struct outcome *o)
{
	char root[PATH_MAX], msg[400];
	const char *verb = !strcmp(action, "kill") ? "kill" : !strcmp(action, "pause") ? "pause" :
			   !strcmp(action, "unpause") ? "resume" : NULL;
	if (!verb) {
		fail(o, 501, "not_implemented", "%s is not possible for a plain runc container: runc "
		     "cannot start or stop an existing container's process (kill, pause and "
		     "unpause are)", action);
		return;
	}
	if (runc_root(id, root, sizeof(root)) < 0) {
		fail(o, 404, "not_found", "runc has no state for %s under /run/runc", id);
		return;
	}
	const char *sig = http_query(req, "signal");
	int rc = run_runc(root, verb, id, !strcmp(verb, "kill") ? (sig ? sig : "KILL") : NULL,
			  req->st->action_timeout_ms, msg, sizeof(msg));
	if (rc == 0) {
		o->status = 200;
		o->changed = true;
	} else if (rc == -ETIMEDOUT) {
		fail(o, 504, "timeout", "%s", msg);
	} else if (rc < 0) {
		fail(o, 501, "not_implemented", "%s", msg);
	} else {
		fail(o, 409, "conflict", "runc %s failed (exit %d): %s", verb, rc, msg);
	}
}

static void record(const struct http_req *req, const char *id, const char *name,
		   const char *action, const char *from, const struct outcome *o)
{
	char result[600];
	if (o->status == 200)
		snprintf(result, sizeof(result), "%s", o->changed ? "done" : o->msg);
	else
		snprintf(result, sizeof(result), "failed (%d): %s", o->status, o->msg);
	if (o->status == 200)
		log_info("action: %s %s (%s) requested from %s: %s", action, name, id, from, result);
	else
		log_warn("action: %s %s (%s) requested from %s: %s", action, name, id, from, result);
	struct coll_event ev;
	memset(&ev, 0, sizeof(ev));
	snprintf(ev.id, sizeof(ev.id), "%s", id);
	snprintf(ev.name, sizeof(ev.name), "%s", name);
	snprintf(ev.type, sizeof(ev.type), "action");
	snprintf(ev.detail, sizeof(ev.detail), "%.8s from %.46s: %.190s", action, from, result);
	coll_event_post(req->st->events, &ev);
}

int api_action(struct http_req *req, struct http_resp *resp)
{
	char which[256], from[64];
	const char *slash = strrchr(req->arg, '/');
	size_t idlen = slash ? (size_t)(slash - req->arg) : 0;
	if (!slash || idlen == 0 || idlen >= sizeof(which) || strchr(req->arg, '/') != slash)
		return http_error(resp, 404, "not_found",
				  "expected POST /api/v1/containers/{id}/{action}");
	memcpy(which, req->arg, idlen);
	which[idlen] = '\0';
	const char *action = slash + 1;
	bool known = false;
	for (size_t i = 0; i < ARRAY_LEN(action_names); i++)
		known |= strcmp(action, action_names[i]) == 0;
	if (!known) {
		char msg[320];
		snprintf(msg, sizeof(msg), "unknown action \"%.64s\": one of start, stop, restart, "
			 "pause, unpause, kill", action);
		return http_error(resp, 404, "not_found", msg);
	}
	client_address(req, from, sizeof(from));
	const char *why = refusal(req);
	if (why) {
		log_warn("action: %s %.64s from %s refused: %s", action, which, from, why);
		return http_error(resp, 401, "unauthorized", why);
	}

	struct outcome o = { .status = 500 };
	char query[64];
	int64_t grace_s;
	if (action_query(req, action, query, sizeof(query), &grace_s, &o) < 0)
		return http_error(resp, o.status, o.error_type, o.msg);

	struct snapshot *s = agent_snapshot(req->st);
	const struct snap_container *list[API_MATCHES_LISTED];
	size_t n = s ? api_resolve(s, which, list, ARRAY_LEN(list)) : 0;
	if (n > 1) {
		int status = api_ambiguous(&resp->body, which, list, n);
		resp->type = "application/json";
		snapshot_unref(s);
		return status;
	}
	char id[80], name[128], runtime[32];
	if (n == 1) {
		snprintf(id, sizeof(id), "%s", list[0]->id);
		snprintf(name, sizeof(name), "%s", list[0]->name);
		snprintf(runtime, sizeof(runtime), "%s", list[0]->runtime);
	} else {
		/* Not on show (an exited container past discovery.keep_exited,
		 * or one made a moment ago): Docker may still know the name. */
		snprintf(id, sizeof(id), "%.79s", which);
		snprintf(name, sizeof(name), "%.127s", which);
		snprintf(runtime, sizeof(runtime), "%s", req->st->docker ? "docker" : "");
	}
	snapshot_unref(s);

	if (!strcmp(runtime, "docker"))
		run_docker(req, id, action, query, grace_s, &o);
	else if (!strcmp(runtime, "runc"))
		run_runc_action(id, action, req, &o);
	else if (!runtime[0])
		fail(&o, 404, "not_found", "no container with id or name \"%s\"", which);
	else
		fail(&o, 501, "not_implemented", "actions on %s containers are not implemented "
		     "(only Docker, and kill/pause/unpause for plain runc)", runtime);
	if (n == 0 && o.status == 404) {
		/* Unknown to us and to the runtime: not worth an event. */
		char msg[320];
		snprintf(msg, sizeof(msg), "no container with id or name \"%.256s\"", which);
		log_info("action: %s %.64s requested from %s: no such container", action, which,
			 from);
		return http_error(resp, 404, "not_found", msg);
	}
	record(req, id, name, action, from, &o);
	if (o.status != 200)
		return http_error(resp, o.status, o.error_type, o.msg);
	buf_puts(&resp->body, "{\"status\":\"success\",\"data\":{\"id\":");
	buf_put_json_str(&resp->body, id);
	buf_puts(&resp->body, ",\"name\":");
	buf_put_json_str(&resp->body, name);
	buf_puts(&resp->body, ",\"runtime\":");
	buf_put_json_str(&resp->body, runtime);
	buf_puts(&resp->body, ",\"action\":");
	buf_put_json_str(&resp->body, action);
	buf_puts(&resp->body, o.changed ? ",\"changed\":true,\"message\":" :
		 ",\"changed\":false,\"message\":");
	buf_put_json_str(&resp->body, o.msg);
	buf_puts(&resp->body, "}}");
	resp->type = "application/json";
	return 200;
}
