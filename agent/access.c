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
 * auth.basic_auth_file holds "user:hash[:admin]" lines, the hash made by
 * crypt(3) (libxcrypt: yescrypt "$y$", SHA-512 "$6$", ...); a basic-auth
 * user counts as the read token, or with ":admin" as the admin token, and
 * setting the file makes reads need credentials as read_token_file does.
 * The handlers of admin routes still check the admin token themselves
 * (actions.c, api_silences.c, api_rules.c, notify_agent.c) unless this
 * check saw admin credentials (req->admin_ok).
 */
#include "agent/agent.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
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
		if (getaddrinfo(host, NULL, &hints, &res) != 0)
			return 0; /* binding fails then, with the resolver's message */
		bool all = res != NULL;
		for (struct addrinfo *a = res; a; a = a->ai_next)
			all &= access_addr_is_loopback(a->ai_addr);
		freeaddrinfo(res);
		if (all)
			return 0;
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

#define USERS_MAX 1000
#define USER_LINE_MAX 1024

struct access_user {
	char *name, *hash;
	bool admin;
};
struct access_users {
	struct access_user *v;
	size_t n;
};

void access_users_free(struct access_users *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->n; i++) {
		explicit_bzero(u->v[i].hash, strlen(u->v[i].hash));
		free(u->v[i].name);
		free(u->v[i].hash);
	}
	free(u->v);
	free(u);
}

/* One "user:hash[:admin|read]" line (no newline) into u; a message on error. */
static const char *user_add(struct access_users *u, char *line)
{
	char *colon = strchr(line, ':');
	if (!colon || colon == line)
		return "expected user:hash[:admin]";
	*colon = '\0';
	char *hash = colon + 1, *scope = strchr(hash, ':');
	bool admin = false;
	if (scope) {
		*scope++ = '\0';
		if (!strcmp(scope, "admin"))
			admin = true;
		else if (strcmp(scope, "read"))
			return "the scope after the hash must be admin or read";
	}
	if (hash[0] != '$' || strlen(hash) < 13)
		return "expected a crypt(3) hash such as $y$... or $6$... (mkpasswd, "
		       "openssl passwd -6)";
	for (size_t i = 0; i < u->n; i++)
		if (!strcmp(u->v[i].name, line))
			return "the user is listed twice";
	if (u->n >= USERS_MAX)
		return "too many users (at most 1000)";
	struct access_user *v = realloc(u->v, (u->n + 1) * sizeof(*v));
	if (!v)
		return "out of memory";
	u->v = v;
	v[u->n] = (struct access_user){ .name = strdup(line), .hash = strdup(hash),
					.admin = admin };
	if (!v[u->n].name || !v[u->n].hash) {
		free(v[u->n].name);
		free(v[u->n].hash);
		return "out of memory";
	}
	u->n++;
	return NULL;
}

int access_users_load(const char *path, struct access_users **out, char *err, size_t errsize)
{
	*out = NULL;
	FILE *f = fopen(path, "re");
	if (!f) {
		int e = errno;
		snprintf(err, errsize, "%s: %s", path, strerror(e));
		return -e;
	}
	struct access_users *u = calloc(1, sizeof(*u));
	char line[USER_LINE_MAX];
	int lineno = 0, rc = u ? 0 : -ENOMEM;
	while (!rc && fgets(line, sizeof(line), f)) {
		lineno++;
		size_t len = strlen(line);
		if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
			snprintf(err, errsize, "%s:%d: line too long", path, lineno);
			rc = -EINVAL;
			break;
		}
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
			       line[len - 1] == ' '))
			line[--len] = '\0';
		if (!len || line[0] == '#')
			continue;
		const char *why = user_add(u, line);
		if (why) {
			snprintf(err, errsize, "%s:%d: %s", path, lineno, why);
			rc = -EINVAL;
		}
	}
	explicit_bzero(line, sizeof(line));
	fclose(f);
	if (!rc && !u->n) {
		snprintf(err, errsize, "%s: no users in the file", path);
		rc = -EINVAL;
	}
	if (rc) {
		access_users_free(u);
		return rc;
	}
	*out = u;
	return 0;
}

int access_users_check(const struct access_users *u, const char *user, size_t user_len,
		       const char *password)
{
	if (!u || !u->n)
		return 0;
	/* An unknown user still costs one crypt(), against the first hash, so
	 * the time taken does not tell which user names exist. */
	const struct access_user *who = NULL;
	for (size_t i = 0; i < u->n; i++)
		if (strlen(u->v[i].name) == user_len && !memcmp(u->v[i].name, user, user_len))
			who = &u->v[i];
	const char *hash = who ? who->hash : u->v[0].hash;
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	if (!cd)
		return 0;
	const char *got = crypt_r(password, hash, cd);
	bool ok = got && got[0] == '$' &&
		  auth_token_equal(got, strlen(got), hash, strlen(hash));
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	if (!ok || !who)
		return 0;
	return who->admin ? 2 : 1;
}

/* Decodes standard base64 (padding optional) into out; length or -1. */
static ssize_t base64_decode(const char *in, char *out, size_t cap)
{
	size_t n = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (; *in && *in != '='; in++) {
		const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		const char *p = strchr(alpha, *in);
		if (!p)
			return -1;
		acc = acc << 6 | (uint32_t)(p - alpha);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n + 1 >= cap)
				return -1;
			out[n++] = (char)(acc >> bits & 0xff);
		}
	}
	out[n] = '\0';
	return (ssize_t)n;
}

/* The scope of Basic credentials: 2 admin, 1 read, 0 none or wrong. */
static int basic_scope(const struct http_req *req, bool *sent)
{
	const char *h = http_header(req, "Authorization");
	*sent = false;
	if (!h || strncasecmp(h, "Basic ", 6) != 0)
		return 0;
	*sent = true;
	h += 6;
	while (*h == ' ')
		h++;
	char dec[USER_LINE_MAX];
	ssize_t n = base64_decode(h, dec, sizeof(dec));
	const char *colon = n > 0 ? memchr(dec, ':', (size_t)n) : NULL;
	int scope = colon ? access_users_check(req->st->users, dec, (size_t)(colon - dec),
					       colon + 1)
			  : 0;
	explicit_bzero(dec, sizeof(dec));
	return scope;
}

static bool token_is(const char *tok, const char *want, size_t want_len)
{
	return tok && want && auth_token_equal(tok, strlen(tok), want, want_len);
}

int access_check(struct http_req *req, enum access_class cls, struct http_resp *resp)
{
	const struct agent_state *st = req->st;
	if (cls == ACCESS_PUBLIC)
		return 0;
	const char *tok = bearer(req);
	bool is_admin = token_is(tok, st->admin_token, st->admin_token_len);
	bool is_read = token_is(tok, st->read_token, st->read_token_len);
	bool basic_sent = false;
	int basic = st->users ? basic_scope(req, &basic_sent) : 0;
	is_admin |= basic == 2;
	is_read |= basic == 1;
	tok = tok ? tok : basic_sent ? "" : NULL;
	req->admin_ok = is_admin;
	bool loopback = true;
	if (req->conn) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		loopback = ci && access_addr_is_loopback(ci->client_addr);
	}
	if (!loopback && !st->admin_token && !st->read_token && !st->users &&
	    (cls == ACCESS_SENSITIVE || cls == ACCESS_ADMIN))
		return http_error(resp, 403, "forbidden",
				  "not served to non-loopback clients while no authentication "
				  "is configured (auth: in the config)");
	if (cls == ACCESS_ADMIN) {
		if (is_admin)
			return 0;
		if (is_read)
			return http_error(resp, 403, "forbidden",
					  "read credentials do not allow changes: this needs "
					  "the admin token or an admin user");
		if (basic_sent || (st->users && !st->admin_token))
			return http_error(resp, 401, "unauthorized",
					  "this needs an admin user's password or the admin token");
		return 0; /* the handler checks the bearer admin token */
	}
	bool need = st->read_token || st->users || (cls == ACCESS_SENSITIVE && !loopback);
	if (!need || is_admin || is_read)
		return 0;
	return http_error(resp, 401, "unauthorized",
			  tok ? "these credentials are not valid for reading"
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

int access_start_check(const struct agent_config *cfg, char **read_token,
		       struct access_users **users)
{
	*read_token = NULL;
	*users = NULL;
	char err[PATH_MAX + 256];
	/* Not dumpable: no core dump can carry the tokens, passwords and
	 * webhook URLs the agent holds, and users other than root cannot
	 * ptrace it or read its /proc/<pid>/mem, environ or maps. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		log_warn("prctl(PR_SET_DUMPABLE, 0): %s; a core dump could hold secrets",
			 strerror(errno));
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
	if (cfg->basic_auth_file[0] &&
	    access_users_load(cfg->basic_auth_file, users, err, sizeof(err)) < 0) {
		fprintf(stderr, "monitor: config: auth.basic_auth_file: %s\n", err);
		access_token_free(*read_token);
		*read_token = NULL;
		return -EINVAL;
	}
	access_warn_perms(cfg->config_path, "the config file");
	access_warn_perms(cfg->basic_auth_file, "auth.basic_auth_file");
	access_warn_perms(cfg->tls.key_file, "tls.key_file");
	/* (auth_load_token warns about token files itself.) */
	return 0;
}

void access_token_free(char *tok)
{
	if (!tok)
		return;
	explicit_bzero(tok, strlen(tok));
	free(tok);
}
