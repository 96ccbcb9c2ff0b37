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

#define HTTP_MAX_CONNECTIONS 64
#define HTTP_TIMEOUT_S 30
#define METRICS_CAP (256u << 20)
#define API_CAP (64u << 20)

struct http_server {
	struct MHD_Daemon *d;
	struct agent_state *st;
	int fd;
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

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
			     char *body, size_t len, bool gzipped)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	if (gzipped)
		MHD_add_response_header(r, "Content-Encoding", "gzip");
	MHD_add_response_header(r, "Vary", "Accept-Encoding");
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
	char *body = strdup(text);
	return body ? reply(conn, status, "text/plain; charset=utf-8", body, strlen(text), false)
		    : MHD_NO;
}

static bool accepts_gzip(struct MHD_Connection *conn)
{
	const char *ae = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding");
	return ae && strstr(ae, "gzip");
}

/* Compresses in into a new buffer (gzip framing); NULL on failure. */
static char *gzip_buf(const char *in, size_t n, size_t *out_len)
{
	z_stream z = { 0 };
	if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	size_t cap = deflateBound(&z, n);
	char *out = malloc(cap);
	if (!out) {
		deflateEnd(&z);
		return NULL;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)cap;
	int rc = deflate(&z, Z_FINISH);
	*out_len = z.total_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(out);
		return NULL;
	}
	return out;
}

static enum MHD_Result serve_metrics(struct http_server *h, struct MHD_Connection *conn)
{
	__atomic_add_fetch(&h->st->scrapes, 1, __ATOMIC_RELAXED);
	struct snapshot *s = agent_snapshot(h->st);
	if (!s)
		return reply_text(conn, 503, "no data yet: the first collection tick has not finished\n");
	struct buf b;
	buf_init(&b, METRICS_CAP);
	int rc = snapshot_render_text(s, &b);
	snapshot_unref(s);
	if (rc < 0) {
		buf_fini(&b);
		return reply_text(conn, 500, "exposition too large\n");
	}
	size_t len;
	char *body = buf_steal(&b, &len);
	if (!body)
		body = strdup("");
	bool gz = false;
	if (accepts_gzip(conn) && len > 0) {
		size_t zlen;
		char *z = gzip_buf(body, len, &zlen);
		if (z) {
			free(body);
			body = z;
			len = zlen;
			gz = true;
		}
	}
	return reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8", body, len, gz);
}

static enum MHD_Result serve_api(struct http_server *h, struct MHD_Connection *conn,
				 const char *which)
{
	struct snapshot *s = agent_snapshot(h->st);
	struct buf b;
	buf_init(&b, API_CAP);
	int status;
	if (!s) {
		buf_puts(&b, "{\"status\":\"error\",\"errorType\":\"unavailable\","
			     "\"error\":\"no data yet\"}");
		status = 503;
	} else {
		status = api_containers(s, which, &b);
		snapshot_unref(s);
	}
	if (b.overflow) {
		buf_fini(&b);
		return reply_text(conn, 500, "response too large\n");
	}
	size_t len;
	char *body = buf_steal(&b, &len);
	return reply(conn, (unsigned)status, "application/json", body ? body : strdup(""), len,
		     false);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	struct http_server *h = cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply_text(conn, 405, "method not allowed\n");
	if (!strcmp(url, "/metrics"))
		return serve_metrics(h, conn);
	if (!strcmp(url, "/-/healthy"))
		return reply_text(conn, 200, "OK\n");
	if (!strcmp(url, "/-/ready")) {
		struct snapshot *s = agent_snapshot(h->st);
		snapshot_unref(s);
		return s ? reply_text(conn, 200, "ready\n")
			 : reply_text(conn, 503, "not ready: no collection tick yet\n");
	}
	if (!strcmp(url, "/api/v1/containers") || !strcmp(url, "/api/v1/containers/"))
		return serve_api(h, conn, NULL);
	if (!strncmp(url, "/api/v1/containers/", 19) && !strchr(url + 19, '/'))
		return serve_api(h, conn, url + 19);
	return reply_text(conn, 404, "not found\n");
}

struct http_server *http_start(const char *addr, struct agent_state *st)
{
	int fd = listen_on(addr);
	if (fd < 0)
		return NULL;
	struct http_server *h = calloc(1, sizeof(*h));
	if (!h) {
		close(fd);
		return NULL;
	}
	h->st = st;
	h->fd = fd;
	h->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
				MHD_USE_POLL,
				0, NULL, NULL, handle, h,
				MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
				MHD_OPTION_END);
	if (!h->d) {
		log_error("listen %s: the HTTP server failed to start", addr);
		close(fd);
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
	free(h);
}
