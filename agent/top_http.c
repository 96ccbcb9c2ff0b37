/*
 * top_http.c - the small HTTP/1.1 client of monitor-top: the client
 * commands' transport (cli.c's request) for a build of cli.c with
 * -DCLI_LITE, which the monitor-top binary links instead of libcurl.
 *
 * Why: libcurl (with OpenSSL, GnuTLS, Kerberos, LDAP and the rest that
 * Debian's libcurl4 brings) makes a process 7-10 MB resident before it has
 * done anything, and `monitor top` has to stay under 10 MB with 200
 * containers (issue 14). The agent speaks plain HTTP, so this client does
 * http:// only: one request per connection (Connection: close), IPv4/IPv6
 * by getaddrinfo, a deadline of c->timeout_ms for the whole exchange,
 * Content-Length, chunked or read-to-close bodies, bounded by CLI_BODY_CAP.
 * `monitor top` runs the full binary (libcurl) for https:// URLs.
 */
#include "agent/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define LITE_HEAD_MAX (64u << 10)

/* Splits "http://host:port" into host and port ("80" by default). */
static int split_url(const char *url, char *host, size_t hsize, char *port, size_t psize)
{
	if (strncasecmp(url, "http://", 7) != 0)
		return -EPROTONOSUPPORT;
	const char *h = url + 7, *end = h + strcspn(h, "/?#");
	const char *colon = NULL;
	if (*h == '[') {                          /* [v6]:port */
		const char *rb = memchr(h, ']', (size_t)(end - h));
		if (!rb)
			return -EINVAL;
		if ((size_t)(rb - h - 1) >= hsize)
			return -ENAMETOOLONG;
		snprintf(host, hsize, "%.*s", (int)(rb - h - 1), h + 1);
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		size_t n = (size_t)((colon ? colon : end) - h);
		if (n == 0 || n >= hsize)
			return -EINVAL;
		snprintf(host, hsize, "%.*s", (int)n, h);
	}
	if (colon && colon + 1 < end) {
		if ((size_t)(end - colon - 1) >= psize)
			return -EINVAL;
		snprintf(port, psize, "%.*s", (int)(end - colon - 1), colon + 1);
	} else {
		snprintf(port, psize, "80");
	}
	return 0;
}

static int64_t left_ms(int64_t deadline_ns)
{
	int64_t ms = (deadline_ns - mono_ns()) / 1000000;
	return ms > 0 ? ms : 0;
}

/* Waits for fd to be ready for events; 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, int64_t deadline_ns)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int64_t ms = left_ms(deadline_ns);
		int n = poll(&p, 1, (int)(ms > 60000 ? 60000 : ms));
		if (n > 0)
			return 0;
		if (n == 0 && left_ms(deadline_ns) == 0)
			return -ETIMEDOUT;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int connect_to(const char *host, const char *port, int64_t deadline_ns)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res;
	int gai = getaddrinfo(host, port, &hints, &res);
	if (gai)
		return gai == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
	int err = -ECONNREFUSED;
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
				a->ai_protocol);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
			err = -errno;
			close(fd);
			continue;
		}
		int rc = wait_fd(fd, POLLOUT, deadline_ns);
		int soerr = 0;
		socklen_t len = sizeof(soerr);
		if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0) {
			freeaddrinfo(res);
			return fd;
		}
		err = rc < 0 ? rc : -soerr;
		close(fd);
	}
	freeaddrinfo(res);
	return err;
}

static int send_all(int fd, const char *p, size_t n, int64_t deadline_ns)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			int rc = wait_fd(fd, POLLOUT, deadline_ns);
			if (rc < 0)
				return rc;
			continue;
		}
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads the whole answer (the server closes) into raw. */
static int recv_all(int fd, struct buf *raw, int64_t deadline_ns)
{
	char tmp[16384];
	for (;;) {
		ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
		if (n > 0) {
			buf_add(raw, tmp, (size_t)n);
			if (raw->overflow)
				return -EFBIG;
			continue;
		}
		if (n == 0)
			return 0;
		if (errno == EAGAIN || errno == EINTR) {
			int rc = wait_fd(fd, POLLIN, deadline_ns);
			if (rc < 0)
				return rc;
			continue;
		}
		return -errno;
	}
}

/* Decodes a chunked body in place; the decoded length or -EINVAL. */
static ssize_t dechunk(char *p, size_t n)
{
	size_t in = 0, out = 0;
	for (;;) {
		char *end;
		if (in >= n)
			return -EINVAL;
		unsigned long long size = strtoull(p + in, &end, 16);
		if (end == p + in)
			return -EINVAL;
		char *nl = memchr(end, '\n', n - (size_t)(end - p));
		if (!nl)
			return -EINVAL;
		in = (size_t)(nl - p) + 1;
		if (size == 0)
			return (ssize_t)out;
		if (size > n - in)
			return -EINVAL;
		memmove(p + out, p + in, size);
		out += size;
		in += size;
		if (in < n && p[in] == '\r')
			in++;
		if (in < n && p[in] == '\n')
			in++;
	}
}

/* Parses raw (status line, headers, body) into r, handing raw's buffer
 * over to r->body (raw is left empty). 0 or -EINVAL. */
static int parse_answer(struct buf *raw, struct cli_resp *r)
{
	if (!raw->data || raw->len < 12 || strncmp(raw->data, "HTTP/1.", 7) != 0)
		return -EINVAL;
	r->status = strtol(raw->data + 9, NULL, 10);
	char *head_end = memmem(raw->data, raw->len < LITE_HEAD_MAX ? raw->len : LITE_HEAD_MAX,
				"\r\n\r\n", 4);
	if (!head_end)
		return -EINVAL;
	*head_end = '\0';
	char *body = head_end + 4;
	size_t blen = raw->len - (size_t)(body - raw->data);
	bool chunked = false;
	long long clen = -1;
	for (char *h = strstr(raw->data, "\r\n"); h && h[2]; h = strstr(h + 2, "\r\n")) {
		char *line = h + 2;
		if (!strncasecmp(line, "Transfer-Encoding:", 18) && strcasestr(line, "chunked"))
			chunked = true;
		else if (!strncasecmp(line, "Content-Length:", 15))
			clen = strtoll(line + 15, NULL, 10);
	}
	if (chunked) {
		ssize_t n = dechunk(body, blen);
		if (n < 0)
			return -EINVAL;
		blen = (size_t)n;
	} else if (clen >= 0) {
		if ((size_t)clen > blen)
			return -EINVAL;       /* cut short */
		blen = (size_t)clen;
	}
	/* The body moves to the front of raw, which becomes r's: no second copy
	 * of an answer that can be a few hundred kB. */
	memmove(raw->data, body, blen);
	raw->len = blen;
	raw->data[blen] = '\0';
	buf_fini(&r->body);
	r->body = *raw;
	memset(raw, 0, sizeof(*raw));
	return 0;
}

int cli_lite_request(struct cli *c, const char *method, const char *path, const char *body,
		     const char *content_type, struct cli_resp *r)
{
	char host[512], port[16];
	r->status = 0;
	buf_init(&r->body, CLI_BODY_CAP);
	int rc = split_url(c->url, host, sizeof(host), port, sizeof(port));
	if (rc < 0) {
		cli_err(c, "--url %s: not a URL this client can use (http://host:port)", c->url);
		buf_fini(&r->body);
		return -1;
	}
	int64_t deadline = mono_ns() + c->timeout_ms * 1000000;
	struct buf req, raw;
	buf_init(&req, (1u << 20) + 8192);
	buf_init(&raw, CLI_BODY_CAP + LITE_HEAD_MAX);
	size_t blen = body ? strlen(body) : 0;
	buf_printf(&req, "%s %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: monitor-top\r\n"
		   "Accept: application/json\r\nConnection: close\r\n", method, path, host, port);
	if (*c->token)
		buf_printf(&req, "Authorization: Bearer %s\r\n", c->token);
	if (!strcmp(method, "POST"))
		buf_printf(&req, "%s\r\nContent-Length: %zu\r\n", content_type, blen);
	buf_puts(&req, "\r\n");
	if (blen)
		buf_add(&req, body, blen);
	int fd = req.overflow ? -EFBIG : connect_to(host, port, deadline);
	rc = fd < 0 ? fd : send_all(fd, req.data, req.len, deadline);
	if (rc == 0)
		rc = recv_all(fd, &raw, deadline);
	if (fd >= 0)
		close(fd);
	if (rc == 0 && parse_answer(&raw, r) < 0)
		rc = r->body.overflow ? -EFBIG : -EBADMSG;
	buf_fini(&req);
	buf_fini(&raw);
	if (rc == 0)
		return 0;
	char why[256];
	bool hint = true;
	switch (rc) {
	case -ECONNREFUSED: snprintf(why, sizeof(why), "connection refused"); break;
	case -ETIMEDOUT:
		snprintf(why, sizeof(why), "no answer within %.3g s (--timeout)",
			 (double)c->timeout_ms / 1000);
		break;
	case -EHOSTUNREACH: snprintf(why, sizeof(why), "cannot resolve the host name"); hint = false; break;
	case -EFBIG:
		snprintf(why, sizeof(why), "an answer of more than %u MiB", CLI_BODY_CAP >> 20);
		hint = false;
		break;
	case -EBADMSG: snprintf(why, sizeof(why), "a broken HTTP answer"); break;
	default: snprintf(why, sizeof(why), "%s", strerror(-rc));
	}
	cli_err(c, "cannot reach the agent at %s: %s%s", c->url, why,
		hint ? " \u2014 is `monitor agent` running?" : "");
	buf_fini(&r->body);
	return -1;
}
