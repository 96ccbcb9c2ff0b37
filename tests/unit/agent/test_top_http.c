/*
 * test_top_http.c - monitor-top's own HTTP/1.1 client (agent/top_http.c)
 * against a one-shot server on a loopback socket: Content-Length, chunked
 * and read-to-close bodies, the request it sends (method, path, Host,
 * token, body), a refused connection, a server that never answers (the
 * deadline), a broken answer, and URLs it cannot use.
 */
#include "agent/cli.h"
#include "tests/unit/test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

struct server {
	int fd;
	int port;
	const char *answer;      /* sent after the request's blank line; NULL: never answer */
	char request[8192];      /* what the client sent */
	pthread_t thread;
};

static void *serve(void *arg)
{
	struct server *s = arg;
	int c = accept(s->fd, NULL, NULL);
	if (c < 0)
		return NULL;
	size_t n = 0;
	for (;;) {
		ssize_t r = read(c, s->request + n, sizeof(s->request) - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		s->request[n] = '\0';
		char *end = strstr(s->request, "\r\n\r\n");
		const char *cl = strstr(s->request, "Content-Length: ");
		if (end && (!cl || strlen(end + 4) >= (size_t)atoi(cl + 16)))
			break;
	}
	if (s->answer) {
		ssize_t w = write(c, s->answer, strlen(s->answer));
		(void)w;
	} else {
		sleep(1);        /* longer than the client's deadline */
	}
	close(c);
	return NULL;
}

static void server_start(struct server *s, const char *answer)
{
	memset(s, 0, sizeof(*s));
	s->answer = answer;
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	if (bind(s->fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s->fd, 1) < 0 ||
	    getsockname(s->fd, (struct sockaddr *)&a, &len) < 0)
		abort();
	s->port = ntohs(a.sin_port);
	pthread_create(&s->thread, NULL, serve, s);
}

static void server_stop(struct server *s)
{
	pthread_join(s->thread, NULL);
	close(s->fd);
}

static int ask(struct server *s, struct cli *c, const char *method, const char *body,
	       struct cli_resp *r)
{
	snprintf(c->url, sizeof(c->url), "http://127.0.0.1:%d", s->port);
	return cli_lite_request(c, method, "/api/v1/x?y=1", body, "Content-Type: application/json", r);
}

static void setup(struct cli *c, char *err, size_t size)
{
	cli_init(c, "test");
	c->timeout_ms = 300;
	c->err = err;
	c->errsize = size;
	err[0] = '\0';
}

static void test_content_length(void)
{
	struct server s;
	struct cli c;
	struct cli_resp r;
	char err[512];
	setup(&c, err, sizeof(err));
	snprintf(c.token, sizeof(c.token), "sekrit");
	server_start(&s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
			 "\r\n{\"a\":true}\nTRAILING");
	CHECK(ask(&s, &c, "GET", NULL, &r) == 0);
	server_stop(&s);
	CHECK_EQ_INT(r.status, 200);
	CHECK_EQ_INT(r.body.len, 11);
	CHECK(r.body.data && !strncmp(r.body.data, "{\"a\":true}\n", 11));
	CHECK(!strncmp(s.request, "GET /api/v1/x?y=1 HTTP/1.1\r\n", 28));
	CHECK(strstr(s.request, "\r\nHost: 127.0.0.1:") != NULL);
	CHECK(strstr(s.request, "\r\nAuthorization: Bearer sekrit\r\n") != NULL);
	CHECK(strstr(s.request, "\r\nConnection: close\r\n") != NULL);
	cli_resp_fini(&r);
}

static void test_chunked_and_post(void)
{
	struct server s;
	struct cli c;
	struct cli_resp r;
	char err[512];
	setup(&c, err, sizeof(err));
	server_start(&s, "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n");
	CHECK(ask(&s, &c, "POST", "{\"k\":1}", &r) == 0);
	server_stop(&s);
	CHECK_EQ_INT(r.status, 404);
	CHECK_EQ_INT(r.body.len, 12);
	CHECK(r.body.data && !strcmp(r.body.data, "hello, world"));
	CHECK(!strncmp(s.request, "POST /api/v1/x?y=1 HTTP/1.1\r\n", 29));
	CHECK(strstr(s.request, "\r\nContent-Type: application/json\r\n") != NULL);
	CHECK(strstr(s.request, "\r\nContent-Length: 7\r\n") != NULL);
	CHECK(strstr(s.request, "\r\n\r\n{\"k\":1}") != NULL);
	CHECK(strstr(s.request, "Authorization") == NULL);     /* no token, no header */
	cli_resp_fini(&r);
}

static void test_read_to_close(void)
{
	struct server s;
	struct cli c;
	struct cli_resp r;
	char err[512];
	setup(&c, err, sizeof(err));
	server_start(&s, "HTTP/1.0 200 OK\r\n\r\nuntil the end");
	CHECK(ask(&s, &c, "GET", NULL, &r) == 0);
	server_stop(&s);
	CHECK(r.body.data && !strcmp(r.body.data, "until the end"));
	cli_resp_fini(&r);
}

static void test_failures(void)
{
	struct server s;
	struct cli c;
	struct cli_resp r;
	char err[512];
	setup(&c, err, sizeof(err));
	/* nothing listens */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &len);
	close(fd);
	snprintf(c.url, sizeof(c.url), "http://127.0.0.1:%d", ntohs(a.sin_port));
	CHECK(cli_lite_request(&c, "GET", "/", NULL, "", &r) == -1);
	CHECK(strstr(err, "cannot reach the agent at") && strstr(err, "connection refused"));
	/* an answer that never comes: the deadline */
	server_start(&s, NULL);
	int64_t t0 = mono_ns();
	CHECK(ask(&s, &c, "GET", NULL, &r) == -1);
	int64_t took_ms = (mono_ns() - t0) / 1000000;
	CHECK(took_ms >= 250 && took_ms < 900);
	CHECK(strstr(err, "no answer within") != NULL);
	server_stop(&s);
	/* not HTTP */
	server_start(&s, "SSH-2.0-OpenSSH\r\n");
	CHECK(ask(&s, &c, "GET", NULL, &r) == -1);
	CHECK(strstr(err, "broken HTTP answer") != NULL);
	server_stop(&s);
	/* a body shorter than its Content-Length */
	server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
	CHECK(ask(&s, &c, "GET", NULL, &r) == -1);
	server_stop(&s);
	/* URLs it cannot use */
	snprintf(c.url, sizeof(c.url), "https://127.0.0.1:9838");
	CHECK(cli_lite_request(&c, "GET", "/", NULL, "", &r) == -1);
	CHECK(strstr(err, "not a URL this client can use") != NULL);
	snprintf(c.url, sizeof(c.url), "http://[::1");
	CHECK(cli_lite_request(&c, "GET", "/", NULL, "", &r) == -1);
}

int main(void)
{
	RUN(test_content_length);
	RUN(test_chunked_and_post);
	RUN(test_read_to_close);
	RUN(test_failures);
	TEST_END();
}
