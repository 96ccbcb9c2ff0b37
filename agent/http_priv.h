/*
 * http_priv.h - pieces of the HTTP server kept out of http.c: the
 * header-read deadline (http_guard.c), CORS (cors.c) and /metrics
 * (http_metrics.c). Only http.c and their unit tests use them.
 */
#ifndef AGENT_HTTP_PRIV_H
#define AGENT_HTTP_PRIV_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>
#include <zlib.h>

struct http_config;
struct http_resp;

/* Cuts connections whose request headers take longer than
 * header_timeout_ms (counted from the connection's start or its previous
 * response's end). Starts the watchdog thread; NULL on failure. tls: no
 * clear-text 408 is sent before cutting. cuts: a counter to increment
 * (atomically) per cut, owned by the caller and outliving the guard; NULL:
 * the guard's own. */
struct http_guard *http_guard_new(int64_t header_timeout_ms, bool tls, uint64_t *cuts);
/* Stops the watchdog; after MHD_stop_daemon. NULL is fine. */
void http_guard_free(struct http_guard *g);
/* MHD_OPTION_NOTIFY_CONNECTION callback; cls is the guard. */
void http_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
		       enum MHD_ConnectionNotificationCode toe);
/* The request's headers are complete (the handler's first call). */
void http_guard_headers_done(struct MHD_Connection *conn);
/* The response has been sent; the next request's headers are awaited. */
void http_guard_request_done(struct MHD_Connection *conn);
/* Connections cut so far. */
uint64_t http_guard_cuts(const struct http_guard *g);

/* CORS (cors.c). Off when c lists no origin. */
/* The Access-Control-Allow-Origin value for a request from origin (the
 * Origin header; NULL: none) to method and url: origin itself or "*", or
 * NULL when no CORS header may be sent. Only GET and HEAD of read routes
 * (access_classify: ACCESS_READ or ACCESS_PUBLIC) get one: never logs,
 * environments, processes, silences, notifications, actions or admin
 * routes. *credentials is set when the origin was listed by name (a page of
 * that origin may send its token); never with "*". */
const char *cors_allow(const struct http_config *c, const char *origin, const char *method,
		       const char *url, bool *credentials);
/* A preflight (OPTIONS with Origin and Access-Control-Request-Method):
 * 204 with the Access-Control-* headers in resp when cors_allow would
 * allow the asked method; 0 when the request is not one (the caller goes
 * on as without CORS). */
int cors_preflight(const struct http_config *c, const char *origin, const char *req_method,
		   const char *url, struct http_resp *resp);

/* A deflate stream with gzip framing at level 1 (http.c): 0 or -ENOMEM. */
int http_gzip_init(z_stream *z);

/* GET /metrics (http_metrics.c): the text streamed, gzip kept per snapshot. */
struct http_req;
int http_serve_metrics(struct http_req *req, struct http_resp *resp);

#endif
