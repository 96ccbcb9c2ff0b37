/*
 * http.c - the agent's HTTP server (libmicrohttpd).
 *
 * Every handler works from a reference to the newest snapshot, so no request
 * ever touches a cgroup file or waits for the tick, and requests never wait
 * for each other: each connection has its own thread, bounded by a
 * connection cap and an idle timeout. The listening socket is made here, not
 * by libmicrohttpd, so a port in use gets a message that says so.
 */
#include "agent/agent.h"
#include "agent/http_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

/* The limits (http: in the config, config_http_defaults): at most
 * max_connections at once, max_connections_per_address of them from one
 * address, so that one client holding connections open (slowloris) cannot
 * starve the others: a scraper from another address always gets in; and
 * headers that trickle in are cut at header_timeout (http_guard.c). */
#define METRICS_CAP (256u << 20)
#define API_CAP (64u << 20)

struct http_server {
	struct MHD_Daemon *d;
	struct agent_state *st;
	struct http_config cfg; /* st->http or the defaults; cors_origins borrowed */
	struct http_guard *guard;
	int fd;
	char *cert, *key;  /* PEM texts for libmicrohttpd (tls:); NULL: plain HTTP */
};

/* Splits "host:port", "[v6]:port" or ":port" and binds a listening socket. */
static int listen_on(const char *addr)
{
	char host[256], port[16];
	const char *colon = strrchr(addr, ':');
	if (!colon || !colon[1] || strlen(colon + 1) >= sizeof(port)) {
		log_error("listen %s: expected host:port", addr);
		return -EINVAL;
	}
	size_t hlen = (size_t)(colon - addr);
	const char *h = addr;
	if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host)) {
		log_error("listen %s: host too long", addr);
		return -EINVAL;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	snprintf(port, sizeof(port), "%s", colon + 1);

	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res;
	int gai = getaddrinfo(hlen ? host : NULL, port, &hints, &res);
	if (gai) {
		log_error("listen %s: %s", addr, gai_strerror(gai));
		return -EINVAL;
	}
	int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
	int one = 1;
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		int e = errno;
		log_error("listen %s: %s", addr, strerror(e));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return -e;
	}
	freeaddrinfo(res);
	return fd;
}

/* The CORS headers resp asks for (cors.c); Vary: Origin whenever CORS is
 * configured, since the answer then depends on the Origin header. */
static void add_cors(struct MHD_Response *r, const struct http_config *c,
		     const struct http_resp *resp)
{
	MHD_add_response_header(r, "Vary", c->ncors_origins ? "Accept-Encoding, Origin"
							    : "Accept-Encoding");
	if (!resp->cors_origin)
		return;
	MHD_add_response_header(r, "Access-Control-Allow-Origin", resp->cors_origin);
	if (resp->cors_credentials)
		MHD_add_response_header(r, "Access-Control-Allow-Credentials", "true");
	if (resp->cors_preflight) {
		MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, HEAD");
		if (resp->cors_credentials)
			MHD_add_response_header(r, "Access-Control-Allow-Headers", "Authorization");
		MHD_add_response_header(r, "Access-Control-Max-Age", "600");
	}
}

/* Queues r (NULL: out of memory) with the headers every answer gets. */
static enum MHD_Result reply(struct MHD_Connection *conn, const struct http_config *c,
			     unsigned status, const struct http_resp *resp, struct MHD_Response *r,
			     bool gzipped)
{
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", resp->type);
	if (gzipped)
		MHD_add_response_header(r, "Content-Encoding", "gzip");
	add_cors(r, c, resp);
	if (status == 401) /* RFC 9110: a 401 names the scheme it wants */
		MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"monitor\"");
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static bool accepts_gzip(struct MHD_Connection *conn)
{
	const char *ae = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding");
	return ae && strstr(ae, "gzip");
}

int http_gzip_init(z_stream *z)
{
	memset(z, 0, sizeof(*z));
	return deflateInit2(z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK ? 0 : -ENOMEM;
}

/* Compresses in into out (empty; gzip framing): 0, or -ENOMEM with out
 * left to the caller to free. */
static int gzip_into(const char *in, size_t n, struct buf *out)
{
	z_stream z;
	if (http_gzip_init(&z) < 0)
		return -ENOMEM;
	int rc = buf_reserve(out, deflateBound(&z, n));
	if (rc == 0) {
		z.next_in = (Bytef *)in;
		z.avail_in = (uInt)n;
		z.next_out = (Bytef *)out->data;
		z.avail_out = (uInt)(out->size - 1);
		rc = deflate(&z, Z_FINISH) == Z_STREAM_END ? 0 : -ENOMEM;
		out->len = z.total_out;
	}
	deflateEnd(&z);
	return rc;
}

/* MHD's free callback of a response sent from a mapped buffer. */
static void unmap_body(void *arg)
{
	buf_fini(arg);
	free(arg);
}

/* A response sending b's bytes, which it takes over (b is left empty);
 * NULL when out of memory. A mapped buffer (/metrics in protobuf) is
 * unmapped once sent, so that it leaves nothing in the thread's arena. */
static struct MHD_Response *body_response(struct buf *b)
{
	struct buf *keep = b->mapped && b->len ? malloc(sizeof(*keep)) : NULL;
	if (keep) {
		*keep = *b;
		memset(b, 0, sizeof(*b));
		struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback_cls(
			keep->len, keep->data, unmap_body, keep);
		if (!r)
			unmap_body(keep);
		return r;
	}
	size_t len;
	char *body = b->mapped ? NULL : buf_steal(b, &len);
	if (!body) {
		len = 0;
		body = strdup("");
	}
	buf_fini(b);
	struct MHD_Response *r = body ? MHD_create_response_from_buffer(len, body,
									   MHD_RESPMEM_MUST_FREE) : NULL;
	if (!r)
		free(body);
	return r;
}

/* ---- request helpers for handlers --------------------------------------- */

const char *http_query(const struct http_req *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(const struct http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

int http_error(struct http_resp *resp, int status, const char *type, const char *msg)
{
	buf_reset(&resp->body);
	buf_puts(&resp->body, "{\"status\":\"error\",\"errorType\":");
	buf_put_json_str(&resp->body, type);
	buf_puts(&resp->body, ",\"error\":");
	buf_put_json_str(&resp->body, msg);
	buf_putc(&resp->body, '}');
	resp->type = "application/json";
	return status;
}

/* ---- built-in handlers --------------------------------------------------- */

static int serve_healthy(struct http_req *req, struct http_resp *resp)
{
	buf_puts(&resp->body, "OK\n");
	return 200;
}

static int serve_ready(struct http_req *req, struct http_resp *resp)
{
	struct snapshot *s = agent_snapshot(req->st);
	snapshot_unref(s);
	buf_puts(&resp->body, s ? "ready\n" : "not ready: no collection tick yet\n");
	return s ? 200 : 503;
}

static int serve_containers(struct http_req *req, struct http_resp *resp)
{
	struct snapshot *s = agent_snapshot(req->st);
	if (!s)
		return http_error(resp, 503, "unavailable", "no data yet");
	resp->type = "application/json";
	int status = api_containers(s, *req->arg ? req->arg : NULL, &resp->body);
	snapshot_unref(s);
	return status;
}

/*
 * The routes, first match wins. An exact route matches the path alone; a
 * prefix route ("/api/v1/containers/") hands the rest of the path to the
 * handler as req->arg. Adding an endpoint is adding a line.
 */
static const struct http_route routes[] = {
	{ "GET", "/metrics", false, http_serve_metrics },
	{ "GET", "/-/healthy", false, serve_healthy },
	{ "GET", "/-/ready", false, serve_ready },
	{ "GET", "/api/v1/containers", false, serve_containers },
	{ "GET", "/api/v1/containers/*/processes", false, api_processes },
	{ "GET", "/api/v1/containers/*/ports", false, api_ports },
	{ "GET", "/api/v1/containers/*/env", false, api_env },
	{ "GET", "/api/v1/containers/*/forecast", false, api_forecast },
	{ "GET", "/api/v1/containers/", true, serve_containers },
	{ "POST", "/api/v1/containers/", true, api_action },
	{ "GET", "/api/v1/events", false, api_events },
	{ "GET", "/api/v1/query", false, api_query },
	{ "POST", "/api/v1/query", false, api_query },
	{ "GET", "/api/v1/query_range", false, api_query_range },
	{ "POST", "/api/v1/query_range", false, api_query_range },
	{ "GET", "/api/v1/series", false, api_series },
	{ "POST", "/api/v1/series", false, api_series },
	{ "GET", "/api/v1/labels", false, api_labels },
	{ "POST", "/api/v1/labels", false, api_labels },
	{ "GET", "/api/v1/label/*/values", false, api_label_values },
	{ "GET", "/api/v1/metadata", false, api_metadata },
	{ "GET", "/api/v1/query_exemplars", false, api_exemplars },
	{ "POST", "/api/v1/query_exemplars", false, api_exemplars },
	{ "GET", "/api/v1/status/buildinfo", false, api_buildinfo },
	{ "GET", "/api/v1/rules", false, api_rules },
	{ "GET", "/api/v1/alerts", false, api_alerts },
	{ "POST", "/-/reload", false, api_reload },
	{ "PUT", "/-/reload", false, api_reload },
	{ "GET", "/api/v1/logs", false, api_logs },
	{ "GET", "/api/v1/logs/patterns", false, api_logs_patterns },
	{ "GET", "/api/v1/logs/containers", false, api_logs_containers },
	{ "GET", "/api/v1/notifications", false, api_notifications },
	{ "POST", "/api/v1/notifications/test", false, api_notify_test },
	{ "GET", "/api/v2/silences", false, api_silences_list },
	{ "POST", "/api/v2/silences", false, api_silences_post },
	{ "GET", "/api/v2/silence/*", false, api_silence_get },
	{ "DELETE", "/api/v2/silence/*", false, api_silence_delete },
	{ "GET", "/", false, api_web_index },
	{ "GET", "/web/", true, api_web_asset },
};

/* Matches url against r; on a match sets *arg to what the handler gets:
 * the rest of the path (prefix routes), the segment that "*" stood for
 * (copied into argbuf), or "". */
static bool route_match(const struct http_route *r, const char *url, const char **arg,
			char *argbuf, size_t argsize)
{
	const char *star = strchr(r->path, '*');
	size_t n = star ? (size_t)(star - r->path) : strlen(r->path);
	if (strncmp(url, r->path, n) != 0)
		return false;
	if (!star) {
		*arg = r->prefix ? url + n : "";
		return r->prefix || url[n] == '\0';
	}
	const char *seg = url + n, *end = strchr(seg, '/');
	size_t len = end ? (size_t)(end - seg) : strlen(seg);
	if (!len || len >= argsize || strcmp(seg + len, star + 1) != 0)
		return false;
	memcpy(argbuf, seg, len);
	argbuf[len] = '\0';
	*arg = argbuf;
	return true;
}

static const struct http_route *route_find(const char *method, const char *url, bool *wrong_method,
					   const char **arg, char *argbuf, size_t argsize)
{
	*wrong_method = false;
	bool head = strcmp(method, "HEAD") == 0;
	for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
		const struct http_route *r = &routes[i];
		if (!route_match(r, url, arg, argbuf, argsize))
			continue;
		if (strcmp(method, r->method) == 0 || (head && strcmp(r->method, "GET") == 0))
			return r;
		*wrong_method = true;
	}
	return NULL;
}

/* Per-connection state while a request body arrives. */
struct upload {
	struct buf body;
	bool too_large;
};

static void request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct upload *u = *con_cls;
	if (u) {
		buf_fini(&u->body);
		free(u);
		*con_cls = NULL;
	}
	http_guard_request_done(conn); /* the next request's headers are awaited */
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	struct http_server *h = cls;
	/* First call: headers only. Bodies (POST) arrive in later calls. */
	if (!*con_cls) {
		http_guard_headers_done(conn);
		struct upload *u = calloc(1, sizeof(*u));
		if (!u)
			return MHD_NO;
		buf_init(&u->body, h->cfg.max_body_bytes);
		*con_cls = u;
		return MHD_YES;
	}
	struct upload *u = *con_cls;
	if (*upload_size) {
		buf_add(&u->body, upload, *upload_size);
		u->too_large |= u->body.overflow;
		*upload_size = 0;
		return MHD_YES;
	}

	struct http_resp resp = { .type = "text/plain; charset=utf-8" };
	/* /metrics streams its text formats (http_metrics.c); protobuf is
	 * rendered whole, into pages of its own unmapped once sent. */
	if (strcmp(url, "/metrics") == 0)
		buf_init_mapped(&resp.body, METRICS_CAP);
	else
		buf_init(&resp.body, API_CAP);
	bool wrong_method;
	const char *arg = "";
	char argbuf[256];
	const struct http_route *r = route_find(method, url, &wrong_method, &arg, argbuf,
						sizeof(argbuf));
	int status;
	const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
	resp.cors_origin = cors_allow(&h->cfg, origin, method, url, &resp.cors_credentials);
	if (!strcmp(method, "OPTIONS") &&
	    (status = cors_preflight(&h->cfg, origin,
				     MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
								 "Access-Control-Request-Method"),
				     url, &resp)) != 0) {
		/* answered: the preflight of a read another origin may make */
	} else if (u->too_large) {
		status = http_error(&resp, 413, "bad_data", "request body too large");
	} else if (!r) {
		status = wrong_method ? http_error(&resp, 405, "bad_data", "method not allowed")
				      : http_error(&resp, 404, "not_found", "not found");
	} else {
		struct http_req req = {
			.conn = conn, .method = method, .url = url,
			.arg = arg,
			.body = u->body.data ? u->body.data : "", .body_len = u->body.len,
			.st = h->st,
		};
		/* Who may ask (access.c): peer address and token, every request. */
		status = access_check(&req, access_classify(method, url), &resp);
		if (!status)
			status = r->handler(&req, &resp);
	}
	if (resp.stream) {
		/* A stream: MHD pulls it in chunks on this connection's thread. */
		buf_fini(&resp.body);
		struct MHD_Response *sr = MHD_create_response_from_callback(
			resp.stream_len ? resp.stream_len : MHD_SIZE_UNKNOWN, 32 * 1024,
			resp.stream, resp.stream_arg, resp.stream_free);
		if (!sr)
			resp.stream_free(resp.stream_arg);
		else
			MHD_add_response_header(sr, "Cache-Control", "no-cache");
		return reply(conn, &h->cfg, (unsigned)status, &resp, sr, resp.gzipped);
	}
	if (resp.ext) {
		/* Sent from where the handler keeps it, without a copy. */
		buf_fini(&resp.body);
		struct MHD_Response *er = MHD_create_response_from_buffer_with_free_callback_cls(
			resp.ext_len, (void *)resp.ext, resp.ext_free, resp.ext_arg);
		if (!er)
			resp.ext_free(resp.ext_arg);
		return reply(conn, &h->cfg, (unsigned)status, &resp, er, resp.gzipped);
	}
	if (resp.body.overflow)
		status = http_error(&resp, 500, "internal", "response too large");

	bool gz = resp.gzipped;
	if (!gz && resp.gzip_ok && resp.body.len > 0 && accepts_gzip(conn)) {
		struct buf z;
		if (resp.body.mapped)
			buf_init_mapped(&z, resp.body.cap);
		else
			buf_init(&z, resp.body.cap);
		gz = gzip_into(resp.body.data, resp.body.len, &z) == 0;
		buf_fini(gz ? &resp.body : &z);
		if (gz)
			resp.body = z;
	}
	struct MHD_Response *br = body_response(&resp.body);
	return reply(conn, &h->cfg, (unsigned)status, &resp, br, gz);
}

static void http_free_pem(struct http_server *h)
{
	if (h->key)
		explicit_bzero(h->key, strlen(h->key));
	free(h->key);
	free(h->cert);
}

/* Reads a PEM file (at most 1 MiB) into a new string; NULL with a message. */
static char *read_pem(const char *path, const char *key)
{
	struct buf b;
	buf_init(&b, 1u << 20);
	FILE *f = fopen(path, "re");
	if (!f) {
		log_error("%s %s: %s", key, path, strerror(errno));
		buf_fini(&b);
		return NULL;
	}
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&b, chunk, n);
	explicit_bzero(chunk, sizeof(chunk));
	bool bad = ferror(f) || b.overflow || !b.len;
	fclose(f);
	buf_putc(&b, '\0');
	size_t len;
	char *s = buf_steal(&b, &len);
	buf_fini(&b);
	if (bad || !s || !strstr(s, "-----BEGIN ")) {
		log_error("%s %s: expected a PEM file (-----BEGIN ...)", key, path);
		if (s)
			explicit_bzero(s, len);
		free(s);
		return NULL;
	}
	return s;
}

struct http_server *http_start(const char *addr, struct agent_state *st)
{
	bool tls = st->tls && st->tls->cert_file[0];
	if (tls && !MHD_is_feature_supported(MHD_FEATURE_TLS)) {
		log_error("tls: this libmicrohttpd is built without TLS");
		return NULL;
	}
	char *cert = tls ? read_pem(st->tls->cert_file, "tls.cert_file") : NULL;
	char *key = tls && cert ? read_pem(st->tls->key_file, "tls.key_file") : NULL;
	if (tls && !key) {
		free(cert);
		return NULL;
	}
	int fd = listen_on(addr);
	struct http_server *h = fd < 0 ? NULL : calloc(1, sizeof(*h));
	if (!h) {
		if (fd >= 0)
			close(fd);
		free(cert);
		if (key)
			explicit_bzero(key, strlen(key));
		free(key);
		return NULL;
	}
	h->st = st;
	h->fd = fd;
	if (st->http)
		h->cfg = *st->http;
	else
		config_http_defaults(&h->cfg);
	h->guard = http_guard_new(h->cfg.header_timeout_ms, tls, &st->header_timeouts);
	if (!h->guard)
		log_warn("http: the header deadline is off (no watchdog thread): only "
			 "http.timeout limits slow clients");
	/* With TLS, the PEM texts go to libmicrohttpd (GnuTLS); they are kept
	 * until http_stop and the key wiped then. */
	h->cert = cert;
	h->key = key;
	struct MHD_OptionItem tls_opts[] = {
		{ tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, cert },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, key },
		{ MHD_OPTION_END, 0, NULL },
	};
	h->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
				MHD_USE_POLL | (tls ? MHD_USE_TLS : 0),
				0, NULL, NULL, handle, h,
				MHD_OPTION_ARRAY, tls_opts,
				MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)h->cfg.max_connections,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT,
				(unsigned)h->cfg.max_connections_per_address,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(h->cfg.timeout_ms / 1000),
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)h->cfg.max_header_bytes,
				MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
				h->guard ? MHD_OPTION_NOTIFY_CONNECTION : MHD_OPTION_END,
				http_guard_notify, h->guard,
				MHD_OPTION_END);
	if (!h->d) {
		log_error("listen %s: the HTTP server failed to start%s", addr,
			  tls ? " (tls: does the key match the certificate?)" : "");
		close(fd);
		http_guard_free(h->guard);
		http_free_pem(h);
		free(h);
		return NULL;
	}
	return h;
}

void http_stop(struct http_server *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d); /* closes the listening socket too */
	http_guard_free(h->guard); /* after every connection was notified closed */
	http_free_pem(h);
	free(h);
}
