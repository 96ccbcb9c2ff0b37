/*
 * notify_http.c - the notifier's one HTTP transport (libcurl; the only
 * file of the notifier that includes curl/curl.h).
 *
 * One handle per delivery thread, reused so keep-alive connections to a
 * vendor survive between messages. Every transfer has a deadline (the
 * integration's timeout) and watches a stop flag, so neither a hanging
 * endpoint nor shutdown can hold a thread longer than that. Answers are
 * read up to NOTIFY_RESPONSE_MAX bytes; Retry-After is kept.
 */
#include "alerting/notify_int.h"

#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct nhttp {
	CURL *curl;
	struct buf resp;
	char retry_after[128];
	char errbuf[CURL_ERROR_SIZE];
	const int *stop;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct nhttp *nhttp_new(void)
{
	pthread_once(&curl_once, curl_init_once);
	struct nhttp *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->curl = curl_easy_init();
	if (!h->curl) {
		free(h);
		return NULL;
	}
	buf_init(&h->resp, NOTIFY_RESPONSE_MAX);
	return h;
}

void nhttp_free(struct nhttp *h)
{
	if (!h)
		return;
	curl_easy_cleanup(h->curl);
	buf_fini(&h->resp);
	free(h);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct nhttp *h = arg;
	size_t len = size * n;
	/* Past the cap the rest is dropped, not an error: the start says enough. */
	if (h->resp.len + len <= NOTIFY_RESPONSE_MAX)
		buf_add(&h->resp, p, len);
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct nhttp *h = arg;
	size_t len = size * n;
	if (len > 12 && !strncasecmp(p, "Retry-After:", 12)) {
		size_t i = 12;
		while (i < len && isspace((unsigned char)p[i]))
			i++;
		size_t e = len;
		while (e > i && isspace((unsigned char)p[e - 1]))
			e--;
		snprintf(h->retry_after, sizeof(h->retry_after), "%.*s", (int)(e - i), p + i);
	}
	return len;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct nhttp *h = arg;
	return h->stop && __atomic_load_n(h->stop, __ATOMIC_RELAXED) ? 1 : 0;
}

int64_t nhttp_retry_after_ms(const char *v, int64_t now)
{
	if (!v || !*v)
		return -1;
	char *end;
	double s = strtod(v, &end);
	if (end != v && *end == '\0' && s >= 0)
		return (int64_t)(s * 1000);
	time_t t = curl_getdate(v, NULL);
	if (t < 0)
		return -1;
	int64_t d = (int64_t)t * 1000 - now;
	return d < 0 ? 0 : d;
}

int nhttp_post(struct nhttp *h, const struct nreq *req, int64_t timeout_ms, const int *stop,
	       struct nanswer *a)
{
	memset(a, 0, sizeof(*a));
	a->retry_after_ms = -1;
	buf_reset(&h->resp);
	h->retry_after[0] = '\0';
	h->errbuf[0] = '\0';
	h->stop = stop;
	if (req->url.overflow || req->body.overflow || !req->url.data) {
		a->error = "request too large";
		return 0;
	}
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	hdr = curl_slist_append(hdr, "Expect:");
	for (size_t i = 0; i < req->nheaders; i++)
		hdr = curl_slist_append(hdr, req->headers[i]);
	CURL *c = h->curl;
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, req->url.data);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body.data ? req->body.data : "");
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body.len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "monitor-notifier/1");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms < 10000 ? timeout_ms : 10000));
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	CURLcode rc = curl_easy_perform(c);
	curl_slist_free_all(hdr);
	if (rc != CURLE_OK) {
		/* The error buffer names host and port, never the path (where the
		 * secrets of webhook URLs live). */
		a->error = h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc);
		return 0;
	}
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	a->status = status;
	a->body = h->resp.data ? h->resp.data : "";
	a->len = h->resp.len;
	a->retry_after_ms = nhttp_retry_after_ms(h->retry_after, now_ms());
	return 0;
}
