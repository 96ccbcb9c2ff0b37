/*
 * access.c - who may ask the agent what: the listen address check, the
 * per-request access check in front of every route, and the warning about
 * config and token files that other users can read.
 *
 * Routes fall in four classes (access_classify): public (health, readiness,
 * the static page), reads (/metrics, the query and container APIs),
 * sensitive reads (logs, environment, process command lines, silences, the
 * notification log: they may carry secrets of the containers or the
 * alerting) and admin (every change: actions, silences, reload, test
 * notifications). The rules, checked on every request from its peer
 * address:
 *  - auth.read_token_file set: every read (sensitive or not, from any peer)
 *    needs "Authorization: Bearer" with the read or the admin token; 401
 *    otherwise. An admin route presented with the read token gets 403.
 *  - a peer that is not loopback, with no token configured at all, gets 403
 *    on sensitive and admin routes; with only the admin token configured, a
 *    sensitive read from such a peer needs the admin token.
 * The handlers of admin routes still check the admin token themselves
 * (actions.c, api_silences.c, api_rules.c, notify_agent.c).
 */
#include "agent/agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

bool access_addr_is_loopback(const struct sockaddr *sa)
{
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	if (sa->sa_family == AF_UNIX)
		return true;
	return false;
}

int access_listen_check(const char *addr, bool allow_remote, char *err, size_t errsize)
{
	if (allow_remote)
		return 0;
	char host[256];
	const char *colon = strrchr(addr, ':');
	size_t hlen = colon ? (size_t)(colon - addr) : strlen(addr);
	const char *h = addr;
	if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host)) {
		snprintf(err, errsize, "listen %s: host too long", addr);
		return -EINVAL;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	const char *why = "it is not a loopback address";
	if (!hlen) {
		why = "an empty host means every address";
	} else {
		struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
		struct addrinfo *res = NULL;
		if (getaddrinfo(host, NULL, &hints, &res) == 0) {
			bool all = res != NULL;
			for (struct addrinfo *a = res; a; a = a->ai_next)
				all &= access_addr_is_loopback(a->ai_addr);
			freeaddrinfo(res);
			if (all)
				return 0;
		}
	}
	snprintf(err, errsize,
		 "listen %s: %s; listening beyond loopback needs --allow-remote or "
		 "listen_remote: true (and auth: for logs, actions and admin endpoints)",
		 addr, why);
	return -EPERM;
}

/* Paths whose reads may carry secrets or private data. */
static bool sensitive_path(const char *url)
{
	if (!strncmp(url, "/api/v1/logs", 12) || !strncmp(url, "/api/v1/notifications", 22) ||
	    !strncmp(url, "/api/v2/silence", 15))
		return true;
	if (!strncmp(url, "/api/v1/containers/", 19)) {
		const char *last = strrchr(url, '/');
		return !strcmp(last, "/env") || !strcmp(last, "/processes");
	}
	return false;
}

enum access_class access_classify(const char *method, const char *url)
{
	if (!strcmp(url, "/-/healthy") || !strcmp(url, "/-/ready") || !strcmp(url, "/") ||
	    !strncmp(url, "/web/", 5))
		return ACCESS_PUBLIC;
	bool read = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	/* PromQL's POST forms are reads (long selectors in the body). */
	if (!read && !strcmp(method, "POST") &&
	    (!strcmp(url, "/api/v1/query") || !strcmp(url, "/api/v1/query_range") ||
	     !strcmp(url, "/api/v1/series") || !strcmp(url, "/api/v1/labels") ||
	     !strcmp(url, "/api/v1/query_exemplars")))
		read = true;
	if (!read)
		return ACCESS_ADMIN;
	return sensitive_path(url) ? ACCESS_SENSITIVE : ACCESS_READ;
}

/* The bearer token of the request, or NULL (no or another scheme). */
static const char *bearer(const struct http_req *req)
{
	const char *h = http_header(req, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	return h;
}

static bool token_is(const char *tok, const char *want, size_t want_len)
{
	return tok && want && auth_token_equal(tok, strlen(tok), want, want_len);
}

int access_check(const struct http_req *req, enum access_class cls, struct http_resp *resp)
{
	const struct agent_state *st = req->st;
	if (cls == ACCESS_PUBLIC)
		return 0;
	const char *tok = bearer(req);
	bool is_admin = token_is(tok, st->admin_token, st->admin_token_len);
	bool is_read = token_is(tok, st->read_token, st->read_token_len);
	bool loopback = true;
	if (req->conn) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		loopback = ci && access_addr_is_loopback(ci->client_addr);
	}
	if (!loopback && !st->admin_token && !st->read_token &&
	    (cls == ACCESS_SENSITIVE || cls == ACCESS_ADMIN))
		return http_error(resp, 403, "forbidden",
				  "not served to non-loopback clients while no authentication "
				  "is configured (auth: in the config)");
	if (cls == ACCESS_ADMIN) {
		if (is_read && !is_admin)
			return http_error(resp, 403, "forbidden",
					  "the read token does not allow changes: this needs "
					  "the admin token");
		return 0; /* the handler checks the admin token */
	}
	bool need = st->read_token || (cls == ACCESS_SENSITIVE && !loopback);
	if (!need || is_admin || is_read)
		return 0;
	return http_error(resp, 401, "unauthorized",
			  tok ? "the bearer token is not valid for reading"
			      : "this needs a token: send \"Authorization: Bearer <token>\"");
}

void access_warn_perms(const char *path, const char *what)
{
	struct stat sb;
	if (!path || !*path || stat(path, &sb) < 0)
		return;
	if (sb.st_mode & S_IROTH)
		log_warn("%s %s is readable by every user (mode %04o) and may hold secrets: "
			 "chmod o-r %s", what, path, (unsigned)(sb.st_mode & 07777), path);
}

int access_start_check(const struct agent_config *cfg, char **read_token)
{
	*read_token = NULL;
	char err[PATH_MAX + 256];
	if (access_listen_check(cfg->listen, cfg->listen_remote, err, sizeof(err)) < 0) {
		fprintf(stderr, "monitor: %s\n", err);
		return -EPERM;
	}
	if (cfg->read_token_file[0]) {
		*read_token = auth_load_token(cfg->read_token_file, err, sizeof(err));
		if (!*read_token) {
			fprintf(stderr, "monitor: config: auth.read_token_file: %s\n", err);
			return -EINVAL;
		}
	}
	access_warn_perms(cfg->config_path, "the config file");
	access_warn_perms(cfg->admin_token_file, "auth.admin_token_file");
	access_warn_perms(cfg->read_token_file, "auth.read_token_file");
	return 0;
}

void access_token_free(char *tok)
{
	if (!tok)
		return;
	explicit_bzero(tok, strlen(tok));
	free(tok);
}
