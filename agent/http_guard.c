/*
 * http_guard.c - the header-read deadline (http.header_timeout).
 *
 * libmicrohttpd closes a connection that has been idle for http.timeout,
 * but a client that sends one header byte every few seconds is never idle:
 * it holds a connection (and its thread) as long as it likes, and 32 such
 * clients fill an address's share of the server (slowloris). The guard
 * cuts a connection whose request headers are not complete header_timeout
 * after the connection opened or its previous response ended (so the wait
 * for a keep-alive connection's next request counts too; with the default,
 * equal to the idle timeout, that changes nothing for idle clients).
 *
 * libmicrohttpd tells of connections through MHD_OPTION_NOTIFY_CONNECTION
 * (http_guard_notify, on the accepting thread); the handler's first call
 * says the headers are in (http_guard_headers_done) and the completion
 * callback that the response has gone (http_guard_request_done), both on
 * the connection's thread. One watchdog thread looks at the open
 * connections at their earliest deadline. Cutting is shutdown(2) on a
 * duplicate of the socket, which wakes the connection's thread (its recv
 * returns 0) and lets libmicrohttpd close the connection its usual way;
 * the duplicate keeps the socket from being reused under the guard.
 */
#include "agent/agent.h"
#include "agent/http_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct guard_conn {
	struct guard_conn *prev, *next;
	int fd;            /* our duplicate of the connection's socket */
	int64_t since_ms;  /* waiting for headers since (monotonic); 0: headers in (atomic) */
	bool cut;
};

struct http_guard {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	bool stop, started;
	bool tls;                /* no clear-text 408 on a TLS connection */
	int64_t timeout_ms;
	struct guard_conn *head; /* under lock */
	uint64_t own_cuts;
	uint64_t *cuts;          /* atomic: the caller's counter, or own_cuts */
};

static int64_t mono_ms(void)
{
	return mono_ns() / 1000000;
}

static void cut(struct http_guard *g, struct guard_conn *c)
{
	/* Nothing else writes during the header phase; TLS needs a record. */
	static const char resp[] = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
				   "Content-Length: 0\r\n\r\n";
	if (!g->tls)
		(void)!send(c->fd, resp, sizeof(resp) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	shutdown(c->fd, SHUT_RDWR);
	c->cut = true;
	__atomic_add_fetch(g->cuts, 1, __ATOMIC_RELAXED);
}

/* When the watchdog next needs to look: the earliest deadline of a
 * connection waiting for headers; a deadline set later (a response ending
 * while it sleeps) is never earlier than that of a connection that waited
 * before, so with one pending it wakes in time. With connections but none
 * waiting, one timeout from now covers any deadline set meanwhile; with
 * none at all it sleeps until http_guard_notify brings one (0). An idle
 * agent, or one whose scraper keeps its connection between scrapes, so
 * wakes once per timeout, not four times a second. */
static int64_t next_look_ms(const struct http_guard *g, int64_t now)
{
	if (!g->head)
		return 0;
	int64_t next = now + g->timeout_ms;
	for (const struct guard_conn *c = g->head; c; c = c->next) {
		int64_t since = __atomic_load_n(&c->since_ms, __ATOMIC_ACQUIRE);
		if (since && !c->cut && since + g->timeout_ms < next)
			next = since + g->timeout_ms;
	}
	return next > now ? next : now + 1;
}

static void *watch(void *arg)
{
	struct http_guard *g = arg;
	pthread_mutex_lock(&g->lock);
	while (!g->stop) {
		int64_t now = mono_ms();
		for (struct guard_conn *c = g->head; c; c = c->next) {
			int64_t since = __atomic_load_n(&c->since_ms, __ATOMIC_ACQUIRE);
			if (since && !c->cut && now - since >= g->timeout_ms)
				cut(g, c);
		}
		int64_t next = next_look_ms(g, mono_ms());
		if (!next) {
			pthread_cond_wait(&g->wake, &g->lock);
			continue;
		}
		struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = next % 1000 * 1000000};
		pthread_cond_timedwait(&g->wake, &g->lock, &ts);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

struct http_guard *http_guard_new(int64_t header_timeout_ms, bool tls, uint64_t *cuts)
{
	struct http_guard *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->cuts = cuts ? cuts : &g->own_cuts;
	g->timeout_ms = header_timeout_ms;
	g->tls = tls;
	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&g->thread, NULL, watch, g) != 0) {
		http_guard_free(g);
		return NULL;
	}
	g->started = true;
	return g;
}

void http_guard_free(struct http_guard *g)
{
	if (!g)
		return;
	if (g->started) {
		pthread_mutex_lock(&g->lock);
		g->stop = true;
		pthread_cond_signal(&g->wake);
		pthread_mutex_unlock(&g->lock);
		pthread_join(g->thread, NULL);
	}
	/* After MHD_stop_daemon every connection has been notified closed;
	 * anything left is freed here all the same. */
	for (struct guard_conn *c = g->head, *next; c; c = next) {
		next = c->next;
		close(c->fd);
		free(c);
	}
	pthread_cond_destroy(&g->wake);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

uint64_t http_guard_cuts(const struct http_guard *g)
{
	return g ? __atomic_load_n(g->cuts, __ATOMIC_RELAXED) : 0;
}

void http_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
		       enum MHD_ConnectionNotificationCode toe)
{
	struct http_guard *g = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		struct guard_conn *c = ci ? calloc(1, sizeof(*c)) : NULL;
		if (!c)
			return; /* not guarded: the idle timeout still applies */
		c->fd = fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 0);
		if (c->fd < 0) {
			free(c);
			return;
		}
		c->since_ms = mono_ms();
		pthread_mutex_lock(&g->lock);
		c->next = g->head;
		if (g->head)
			g->head->prev = c;
		else
			pthread_cond_signal(&g->wake); /* it sleeps while none is open */
		g->head = c;
		pthread_mutex_unlock(&g->lock);
		*socket_context = c;
		return;
	}
	struct guard_conn *c = *socket_context;
	if (!c)
		return;
	pthread_mutex_lock(&g->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		g->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&g->lock);
	close(c->fd);
	free(c);
	*socket_context = NULL;
}

/* The connection's guard entry, or NULL (not guarded). */
static struct guard_conn *entry(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

void http_guard_headers_done(struct MHD_Connection *conn)
{
	struct guard_conn *c = entry(conn);
	if (c)
		__atomic_store_n(&c->since_ms, 0, __ATOMIC_RELEASE);
}

void http_guard_request_done(struct MHD_Connection *conn)
{
	struct guard_conn *c = entry(conn);
	if (c)
		__atomic_store_n(&c->since_ms, mono_ms(), __ATOMIC_RELEASE);
}
