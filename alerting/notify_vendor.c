/*
 * notify_vendor.c - what each chat or paging system wants: its payload for
 * a firing or resolved group, its signature, its size limits (text cut at a
 * UTF-8 boundary before sending, as Alertmanager does) and how to read its
 * answer: delivered, retry later (and when), or failed for good. Several
 * vendors answer HTTP 200 with an error code in the body; those codes are
 * read here. Formats and codes: ../shared/reference/webhooks_top.md part A.
 *
 * Builders get the Alertmanager v4 data object of the notification (the
 * alertmanager vendor: the array of alerts to POST) and never block; the
 * transport (notify_http.c) sends what they build.
 */
#include "alerting/notify_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nreq_init(struct nreq *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->url, 16384);
	buf_init(&r->body, NOTIFY_BODY_MAX);
}

void nreq_fini(struct nreq *r)
{
	buf_fini(&r->url);
	buf_fini(&r->body);
}

void nreq_header(struct nreq *r, const char *fmt, ...)
{
	if (r->nheaders >= NREQ_MAX_HEADERS)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->headers[r->nheaders++], sizeof(r->headers[0]), fmt, ap);
	va_end(ap);
}

/* ---- shared pieces --------------------------------------------------------------- */

/* Writes a parsed JSON value back as JSON. */
static void json_write(struct buf *b, const struct json *v)
{
	if (!v) {
		buf_puts(b, "null");
		return;
	}
	switch (v->type) {
	case JSON_NULL: buf_puts(b, "null"); break;
	case JSON_BOOL: buf_puts(b, v->boolean ? "true" : "false"); break;
	case JSON_NUMBER: buf_put_double(b, v->number); break;
	case JSON_STRING: buf_put_json_str(b, v->string); break;
	case JSON_ARRAY:
		buf_putc(b, '[');
		for (const struct json *c = v->child; c; c = c->next) {
			if (c != v->child)
				buf_putc(b, ',');
			json_write(b, c);
		}
		buf_putc(b, ']');
		break;
	case JSON_OBJECT:
		buf_putc(b, '{');
		for (const struct json *c = v->child; c; c = c->next) {
			if (c != v->child)
				buf_putc(b, ',');
			buf_put_json_str(b, c->key);
			buf_putc(b, ':');
			json_write(b, c);
		}
		buf_putc(b, '}');
		break;
	}
}

static bool is_firing(const struct json *data)
{
	const char *s = json_get_str(data, "status");
	return s && !strcmp(s, "firing");
}

/* A JSON string member of text cut to max characters. */
static void put_str_chars(struct buf *b, const char *s, size_t max_chars)
{
	struct buf t;
	buf_init(&t, NOTIFY_BODY_MAX);
	ntext_trunc_chars(&t, s, max_chars);
	buf_put_json_str(b, t.data ? t.data : "");
	buf_fini(&t);
}

static void put_str_bytes(struct buf *b, const char *s, size_t max_bytes)
{
	struct buf t;
	buf_init(&t, NOTIFY_BODY_MAX);
	ntext_trunc_bytes(&t, s, max_bytes);
	buf_put_json_str(b, t.data ? t.data : "");
	buf_fini(&t);
}

struct words {
	struct buf title, text;
};

static void words_make(struct words *w, const struct notify_config *cfg,
		       const struct nintegration *in, const struct json *data, enum nstyle st)
{
	buf_init(&w->title, 64 << 10);
	buf_init(&w->text, NOTIFY_BODY_MAX / 2);
	ntext_render(cfg, in, data, st, &w->title, &w->text);
	if (!w->title.data)
		buf_puts(&w->title, "");
	if (!w->text.data)
		buf_puts(&w->text, "");
}

static void words_fini(struct words *w)
{
	buf_fini(&w->title);
	buf_fini(&w->text);
}

static void put_url(struct nreq *req, const struct nintegration *in)
{
	const char *u = nopt_get(in, "url");
	buf_puts(&req->url, u ? u : "");
}

/* The length of url without its trailing slashes, to append a path to. */
static size_t base_len(const char *url)
{
	size_t n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		n--;
	return n;
}

/* Each named option that is set, as a JSON string field of the same name
 * (`,"name":"value"`), in the order given; names ends with NULL. */
static void put_opts(struct buf *b, const struct nintegration *in, const char *const *names)
{
	for (; *names; names++) {
		const char *o = nopt_get(in, *names);
		if (o)
			buf_printf(b, ",\"%s\":", *names), buf_put_json_str(b, o);
	}
}

/* The group key's stable hash: PagerDuty dedup_key, Google Chat thread. */
static void group_hash(struct buf *b, const struct json *data, size_t hexlen)
{
	const char *gk = json_get_str(data, "groupKey");
	uint8_t h[32];
	ncrypto_sha256(gk ? gk : "", gk ? strlen(gk) : 0, h);
	struct buf t;
	buf_init(&t, 128);
	ncrypto_hex(&t, h, 32);
	buf_add(b, t.data, hexlen < t.len ? hexlen : t.len);
	buf_fini(&t);
}

/* DingTalk's and Feishu's signature: base64 of an HMAC-SHA256 over
 * "<ts>\n<secret>" keyed by the secret, or (ts_secret_is_key, Feishu) keyed
 * by "<ts>\n<secret>" over nothing; appended to b64. The joined copy of
 * the secret is wiped before it is freed. */
static void sign_ts_secret(struct buf *b64, const char *ts, const char *secret,
			   bool ts_secret_is_key)
{
	struct buf joined;
	buf_init(&joined, 16384);
	buf_printf(&joined, "%s\n%s", ts, secret);
	uint8_t mac[32];
	if (ts_secret_is_key)
		ncrypto_hmac_sha256(joined.data, joined.len, "", 0, mac);
	else
		ncrypto_hmac_sha256(secret, strlen(secret), joined.data, joined.len, mac);
	ncrypto_base64(b64, mac, 32);
	explicit_bzero(joined.data, joined.len);
	buf_fini(&joined);
}

/* ---- answers --------------------------------------------------------------------- */

static void why_body(char *why, size_t whysize, const struct nanswer *a)
{
	size_t n = a->len < 300 ? a->len : 300;
	char tmp[320];
	size_t j = 0;
	for (size_t i = 0; i < n && j < sizeof(tmp) - 1; i++)
		tmp[j++] = (a->body[i] == '\n' || a->body[i] == '\r') ? ' ' : a->body[i];
	tmp[j] = '\0';
	snprintf(why, whysize, "HTTP %ld: %s", a->status, tmp);
}

/* What Alertmanager's Retrier does, plus 429 and 408 as retryable: 2xx
 * delivered, 5xx/429/408/no answer retried, other 4xx failed. */
static enum nresult classify_http(const struct nanswer *a, int64_t *retry_ms, char *why,
				  size_t whysize)
{
	*retry_ms = -1;
	if (a->status == 0) {
		snprintf(why, whysize, "%s", a->error ? a->error : "no answer");
		return NR_RETRY;
	}
	if (a->status >= 200 && a->status < 300) {
		if (a->len)
			why_body(why, whysize, a);
		else
			snprintf(why, whysize, "HTTP %ld", a->status);
		return NR_DELIVERED;
	}
	why_body(why, whysize, a);
	if (a->status == 429 || a->status == 408 || a->status >= 500) {
		*retry_ms = a->retry_after_ms;
		return NR_RETRY;
	}
	return NR_FAILED;
}

static int parse_answer(struct json_doc *doc, const struct nanswer *a)
{
	if (!a->body || !a->len)
		return -EINVAL;
	return json_parse(doc, a->body, a->len, NULL);
}

/* ---- webhook: Alertmanager v4, HMAC-SHA256 signed ------------------------------------ */

static int b_webhook(const struct notify_config *cfg, const struct nintegration *in,
		     const struct json *data, int64_t now_ms, struct nreq *req, char *why,
		     size_t whysize)
{
	put_url(req, in);
	const struct json *alerts = json_get(data, "alerts");
	if (in->max_alerts && alerts && alerts->type == JSON_ARRAY && alerts->count > in->max_alerts) {
		/* Alertmanager's max_alerts: the first N, and how many were left out. */
		buf_putc(&req->body, '{');
		bool first = true;
		for (const struct json *c = data->child; c; c = c->next) {
			if (!first)
				buf_putc(&req->body, ',');
			first = false;
			buf_put_json_str(&req->body, c->key);
			buf_putc(&req->body, ':');
			if (!strcmp(c->key, "truncatedAlerts")) {
				buf_printf(&req->body, "%zu", alerts->count - in->max_alerts);
			} else if (!strcmp(c->key, "alerts")) {
				buf_putc(&req->body, '[');
				size_t i = 0;
				for (const struct json *e = c->child; e && i < in->max_alerts; e = e->next, i++) {
					if (i)
						buf_putc(&req->body, ',');
					json_write(&req->body, e);
				}
				buf_putc(&req->body, ']');
			} else {
				json_write(&req->body, c);
			}
		}
		buf_putc(&req->body, '}');
	} else {
		json_write(&req->body, data);
	}
	const char *secret = nopt_get(in, "secret");
	if (secret && req->body.data) {
		/* Grafana's scheme: HMAC-SHA256 over "<timestamp>:<body>", hex. */
		char ts[32];
		snprintf(ts, sizeof(ts), "%lld", (long long)(now_ms / 1000));
		struct buf msg;
		buf_init(&msg, NOTIFY_BODY_MAX + 64);
		buf_printf(&msg, "%s:", ts);
		buf_add(&msg, req->body.data, req->body.len);
		uint8_t mac[32];
		ncrypto_hmac_sha256(secret, strlen(secret), msg.data, msg.len, mac);
		buf_fini(&msg);
		struct buf hex;
		buf_init(&hex, 128);
		ncrypto_hex(&hex, mac, 32);
		nreq_header(req, "X-Monitor-Timestamp: %s", ts);
		nreq_header(req, "X-Monitor-Signature: sha256=%s", hex.data);
		buf_fini(&hex);
	}
	(void)cfg;
	(void)why;
	(void)whysize;
	return 0;
}

/* ---- alertmanager: POST /api/v2/alerts ---------------------------------------------- */

static int b_alertmanager(const struct notify_config *cfg, const struct nintegration *in,
			  const struct json *data, int64_t now_ms, struct nreq *req, char *why,
			  size_t whysize)
{
	const char *u = nopt_get(in, "url");
	size_t n = base_len(u);
	buf_add(&req->url, u, n);
	if (n < 14 || strncmp(u + n - 14, "/api/v2/alerts", 14) != 0)
		buf_puts(&req->url, "/api/v2/alerts");
	json_write(&req->body, data);
	(void)cfg, (void)now_ms, (void)why, (void)whysize;
	return 0;
}

/* ---- Slack: incoming webhook, blocks ------------------------------------------------- */

static int b_slack(const struct notify_config *cfg, const struct nintegration *in,
		   const struct json *data, int64_t now_ms, struct nreq *req, char *why,
		   size_t whysize)
{
	struct words w;
	words_make(&w, cfg, in, data, NS_SLACK);
	put_url(req, in);
	struct buf *b = &req->body;
	buf_puts(b, "{\"text\":");
	put_str_chars(b, w.title.data, 3000);
	put_opts(b, in, (const char *const[]){ "channel", "username", "icon_emoji", "icon_url", NULL });
	/* header text max 150, section text max 3000 (Block Kit limits). */
	buf_puts(b, ",\"blocks\":[{\"type\":\"header\",\"text\":{\"type\":\"plain_text\",\"text\":");
	put_str_chars(b, w.title.data, 150);
	buf_puts(b, ",\"emoji\":true}},{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":");
	put_str_chars(b, w.text.data[0] ? w.text.data : " ", 3000);
	buf_puts(b, "}}],\"attachments\":[{\"color\":");
	buf_put_json_str(b, is_firing(data) ? "danger" : "good");
	buf_puts(b, ",\"fallback\":");
	put_str_chars(b, w.title.data, 3000);
	buf_puts(b, "}]}");
	words_fini(&w);
	(void)now_ms, (void)why, (void)whysize;
	return 0;
}

/* Slack answers 200 "ok", or a plain-text error code. */
static enum nresult c_slack(const struct nanswer *a, int64_t *retry_ms, char *why, size_t whysize)
{
	enum nresult r = classify_http(a, retry_ms, why, whysize);
	if (r == NR_DELIVERED && !(a->len >= 2 && !strncmp(a->body, "ok", 2))) {
		why_body(why, whysize, a);
		return NR_FAILED;
	}
	return r;
}

/* ---- Discord: embeds ------------------------------------------------------------------ */

static int b_discord(const struct notify_config *cfg, const struct nintegration *in,
		     const struct json *data, int64_t now_ms, struct nreq *req, char *why,
		     size_t whysize)
{
	struct words w;
	words_make(&w, cfg, in, data, NS_MARKDOWN);
	put_url(req, in);
	struct buf *b = &req->body;
	buf_puts(b, "{\"content\":\"\"");
	put_opts(b, in, (const char *const[]){ "username", "avatar_url", NULL });
	/* title 256, description 4096 (and 6000 over all embeds). */
	buf_puts(b, ",\"embeds\":[{\"title\":");
	put_str_chars(b, w.title.data, 256);
	buf_puts(b, ",\"description\":");
	put_str_chars(b, w.text.data, 4096);
	buf_printf(b, ",\"color\":%d,\"footer\":{\"text\":\"monitor\"}}]}",
		   is_firing(data) ? 0x992D22 : 0x2ECC71);
	words_fini(&w);
	(void)now_ms, (void)why, (void)whysize;
	return 0;
}

/* Discord: 204 (or 200 with ?wait=true); 429 with {"retry_after": seconds}. */
static enum nresult c_discord(const struct nanswer *a, int64_t *retry_ms, char *why,
			      size_t whysize)
{
	enum nresult r = classify_http(a, retry_ms, why, whysize);
	if (a->status == 429) {
		struct json_doc doc;
		if (parse_answer(&doc, a) == 0) {
			const struct json *ra = json_get(doc.root, "retry_after");
			if (ra && ra->type == JSON_NUMBER && ra->number >= 0)
				*retry_ms = (int64_t)(ra->number * 1000);
			json_doc_free(&doc);
		}
	}
	return r;
}

/* ---- Microsoft Teams: Workflows, Adaptive Card 1.4 ----------------------------------------- */

static int b_msteams(const struct notify_config *cfg, const struct nintegration *in,
		     const struct json *data, int64_t now_ms, struct nreq *req, char *why,
		     size_t whysize)
{
	struct words w;
	words_make(&w, cfg, in, data, NS_MARKDOWN);
	put_url(req, in);
	struct buf *b = &req->body;
	buf_puts(b, "{\"type\":\"message\",\"attachments\":[{\"contentType\":"
		    "\"application/vnd.microsoft.card.adaptive\",\"contentUrl\":null,\"content\":{"
		    "\"$schema\":\"http://adaptivecards.io/schemas/adaptive-card.json\","
		    "\"type\":\"AdaptiveCard\",\"version\":\"1.4\",\"body\":[{\"type\":\"TextBlock\","
		    "\"text\":");
	put_str_chars(b, w.title.data, 400);
	buf_printf(b, ",\"weight\":\"Bolder\",\"size\":\"Medium\",\"wrap\":true,\"color\":\"%s\"},"
		   "{\"type\":\"TextBlock\",\"text\":", is_firing(data) ? "Attention" : "Good");
	/* About 28 KB per message: the text gets 20 KB. */
	put_str_bytes(b, w.text.data, 20000);
	buf_puts(b, ",\"wrap\":true}],\"msteams\":{\"width\":\"full\"}}}]}");
	words_fini(&w);
	(void)now_ms, (void)why, (void)whysize;
	return 0;
}

/* ---- Telegram: sendMessage, HTML --------------------------------------------------------- */

static void html_escape(struct buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': buf_puts(b, "&amp;"); break;
		case '<': buf_puts(b, "&lt;"); break;
		case '>': buf_puts(b, "&gt;"); break;
		default: buf_putc(b, *s);
		}
	}
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

static int b_telegram(const struct notify_config *cfg, const struct nintegration *in,
		      const struct json *data, int64_t now_ms, struct nreq *req, char *why,
		      size_t whysize)
{
	const char *base = nopt_get(in, "url"), *tok = nopt_get(in, "bot_token");
	buf_add(&req->url, base, base_len(base));
	buf_printf(&req->url, "/bot%s/sendMessage", tok);
	struct words w;
	words_make(&w, cfg, in, data, NS_HTML);
	struct buf msg;
	buf_init(&msg, NOTIFY_BODY_MAX);
	buf_puts(&msg, "<b>");
	struct buf t;
	buf_init(&t, 4096);
	ntext_trunc_chars(&t, w.title.data, 256);
	html_escape(&msg, t.data ? t.data : "");
	buf_fini(&t);
	buf_puts(&msg, "</b>\n\n");
	/* 4096 characters after entity parsing: the HTML text when it fits,
	 * else the plain text cut first and escaped after (a cut never
	 * splits a tag or an entity). */
	if (utf8_chars(w.text.data) + 300 <= 4096 && !nopt_get(in, "text")) {
		buf_puts(&msg, w.text.data);
	} else {
		struct words p;
		words_make(&p, cfg, in, data, NS_PLAIN);
		struct buf cut;
		buf_init(&cut, NOTIFY_BODY_MAX);
		ntext_trunc_chars(&cut, p.text.data, 3700);
		html_escape(&msg, cut.data ? cut.data : "");
		buf_fini(&cut);
		words_fini(&p);
	}
	words_fini(&w);
	struct buf *b = &req->body;
	const char *chat = nopt_get(in, "chat_id");
	char *end;
	strtoll(chat, &end, 10);
	buf_puts(b, "{\"chat_id\":");
	if (*chat && !*end)
		buf_puts(b, chat);
	else
		buf_put_json_str(b, chat);
	buf_puts(b, ",\"text\":");
	buf_put_json_str(b, msg.data ? msg.data : "");
	buf_fini(&msg);
	buf_puts(b, ",\"parse_mode\":\"HTML\",\"link_preview_options\":{\"is_disabled\":true}");
	const char *o;
	if ((o = nopt_get(in, "message_thread_id")))
		buf_printf(b, ",\"message_thread_id\":%lld", strtoll(o, NULL, 10));
	if ((o = nopt_get(in, "disable_notifications")) && !strcmp(o, "true"))
		buf_puts(b, ",\"disable_notification\":true");
	buf_putc(b, '}');
	(void)now_ms, (void)why, (void)whysize;
	return 0;
}

/* {"ok":true,...} or {"ok":false,"error_code":429,"parameters":{"retry_after":s}}. */
static enum nresult c_telegram(const struct nanswer *a, int64_t *retry_ms, char *why,
			       size_t whysize)
{
	enum nresult r = classify_http(a, retry_ms, why, whysize);
	struct json_doc doc;
	if (a->status == 0 || parse_answer(&doc, a) < 0)
		return r == NR_DELIVERED ? NR_FAILED : r;
	const struct json *ok = json_get(doc.root, "ok");
	const struct json *code = json_get(doc.root, "error_code");
	const struct json *ra = json_path(doc.root, "parameters.retry_after");
	const char *desc = json_get_str(doc.root, "description");
	if (ok && ok->type == JSON_BOOL && ok->boolean && a->status / 100 == 2) {
		r = NR_DELIVERED;
	} else {
		long c = code && code->type == JSON_NUMBER ? (long)code->number : a->status;
		snprintf(why, whysize, "HTTP %ld: error_code %ld: %s", a->status, c,
			 desc ? desc : "");
		if (c == 429 || c >= 500) {
			r = NR_RETRY;
			if (ra && ra->type == JSON_NUMBER)
				*retry_ms = (int64_t)(ra->number * 1000);
		} else {
			r = NR_FAILED;
		}
	}
	json_doc_free(&doc);
	return r;
}

/* ---- Mattermost: Slack-compatible attachments ----------------------------------------------- */

static int b_mattermost(const struct notify_config *cfg, const struct nintegration *in,
			const struct json *data, int64_t now_ms, struct nreq *req, char *why,
			size_t whysize)
{
	struct words w;
	words_make(&w, cfg, in, data, NS_MARKDOWN);
	put_url(req, in);
	struct buf *b = &req->body;
	buf_puts(b, "{\"text\":");
	struct buf t;
	buf_init(&t, 4096);
	buf_puts(&t, "#### ");
	ntext_trunc_chars(&t, w.title.data, 1000);
	buf_put_json_str(b, t.data);
	buf_fini(&t);
	put_opts(b, in, (const char *const[]){ "channel", "username", "icon_url", NULL });
	const char *o;
	if ((o = nopt_get(in, "priority")))
		buf_puts(b, ",\"priority\":{\"priority\":"), buf_put_json_str(b, o), buf_putc(b, '}');
	buf_puts(b, ",\"attachments\":[{\"fallback\":");
	put_str_chars(b, w.title.data, 1000);
	buf_printf(b, ",\"color\":\"%s\",\"title\":", is_firing(data) ? "#d00000" : "#2eb886");
	put_str_chars(b, w.title.data, 1000);
	/* Old servers cap an attachment at 7900 characters. */
	buf_puts(b, ",\"text\":");
	put_str_chars(b, w.text.data, 7000);
	buf_puts(b, "}]}");
	words_fini(&w);
	(void)now_ms, (void)why, (void)whysize;
	return 0;
}

/* ---- Google Chat: one thread per group --------------------------------------------------- */

static int b_googlechat(const struct notify_config *cfg, const struct nintegration *in,
			const struct json *data, int64_t now_ms, struct nreq *req, char *why,
			size_t whysize)
{
	put_url(req, in);
	const char *th = nopt_get(in, "thread");
	bool thread = !th || strcmp(th, "false") != 0;
	if (thread && !strstr(req->url.data, "messageReplyOption="))
		buf_printf(&req->url, "%cmessageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD",
			   strchr(req->url.data, '?') ? '&' : '?');
	struct words w;
	words_make(&w, cfg, in, data, NS_SLACK);
	struct buf msg;
	buf_init(&msg, NOTIFY_BODY_MAX);
	buf_printf(&msg, "*%s*\n%s", w.title.data, w.text.data);
	struct buf *b = &req->body;
	buf_puts(b, "{\"text\":");
	put_str_chars(b, msg.data, 4096);
	buf_fini(&msg);
	if (thread) {
		buf_puts(b, ",\"thread\":{\"threadKey\":\"monitor-");
		group_hash(b, data, 32);
		buf_puts(b, "\"}");
	}
	buf_putc(b, '}');
	words_fini(&w);
	(void)now_ms, (void)why, (void)whysize;
	return 0;
}

/* ---- DingTalk: markdown, HMAC-SHA256 in the query ------------------------------------------ */

static int b_dingtalk(const struct notify_config *cfg, const struct nintegration *in,
		      const struct json *data, int64_t now_ms, struct nreq *req, char *why,
		      size_t whysize)
{
	put_url(req, in);
	const char *secret = nopt_get(in, "secret");
	if (secret) {
		/* sign = urlencode(base64(HMAC-SHA256(key=secret, "<ts_ms>\n<secret>"))). */
		char ts[32];
		snprintf(ts, sizeof(ts), "%lld", (long long)now_ms);
		struct buf b64;
		buf_init(&b64, 256);
		sign_ts_secret(&b64, ts, secret, false);
		buf_printf(&req->url, "%ctimestamp=%s&sign=", strchr(req->url.data, '?') ? '&' : '?',
			   ts);
		ncrypto_urlencode(&req->url, b64.data);
		buf_fini(&b64);
	}
	struct words w;
	words_make(&w, cfg, in, data, NS_MARKDOWN);
	struct buf md;
	buf_init(&md, NOTIFY_BODY_MAX);
	buf_printf(&md, "### %s\n\n", w.title.data);
	/* Markdown needs a blank line for a line break. */
	for (const char *p = w.text.data; *p; p++) {
		if (*p == '\n' && p[1] != '\n' && (p == w.text.data || p[-1] != '\n'))
			buf_puts(&md, "\n\n");
		else
			buf_putc(&md, *p);
	}
	struct buf *b = &req->body;
	buf_puts(b, "{\"msgtype\":\"markdown\",\"markdown\":{\"title\":");
	put_str_chars(b, w.title.data, 100);
	/* The body may be 20,000 bytes: the text gets 18,000. */
	buf_puts(b, ",\"text\":");
	put_str_bytes(b, md.data, 18000);
	buf_fini(&md);
	buf_puts(b, "},\"at\":{\"atMobiles\":[");
	const char *o = nopt_get(in, "at_mobiles");
	if (o && *o) {
		char tmp[2048];
		snprintf(tmp, sizeof(tmp), "%s", o);
		char *save = NULL;
		bool first = true;
		for (char *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			if (!first)
				buf_putc(b, ',');
			first = false;
			buf_put_json_str(b, tok);
		}
	}
	o = nopt_get(in, "is_at_all");
	buf_printf(b, "],\"isAtAll\":%s}}", o && !strcmp(o, "true") ? "true" : "false");
	words_fini(&w);
	(void)why, (void)whysize;
	return 0;
}

/* Vendors that answer 200 with {"errcode": N, "errmsg": "..."}: 0 is
 * success, the codes in retry[] are rate limits (retried in a minute). */
static enum nresult classify_errcode(const struct nanswer *a, int64_t *retry_ms, char *why,
				     size_t whysize, const char *field, const char *field2,
				     const long *retry, size_t nretry)
{
	enum nresult r = classify_http(a, retry_ms, why, whysize);
	if (r != NR_DELIVERED)
		return r;
	struct json_doc doc;
	if (parse_answer(&doc, a) < 0) {
		why_body(why, whysize, a);
		return NR_FAILED;
	}
	const struct json *c = json_get(doc.root, field);
	if (!c && field2)
		c = json_get(doc.root, field2);
	const char *msg = json_get_str(doc.root, "errmsg");
	if (!msg)
		msg = json_get_str(doc.root, "msg");
	if (!msg)
		msg = json_get_str(doc.root, "StatusMessage");
	if (!c || c->type != JSON_NUMBER) {
		why_body(why, whysize, a);
		json_doc_free(&doc);
		return NR_FAILED;
	}
	long code = (long)c->number;
	if (code == 0) {
		snprintf(why, whysize, "HTTP %ld, %s 0", a->status, field);
		json_doc_free(&doc);
		return NR_DELIVERED;
	}
	snprintf(why, whysize, "HTTP %ld, %s %ld: %s", a->status, field, code, msg ? msg : "");
	json_doc_free(&doc);
	for (size_t i = 0; i < nretry; i++) {
		if (code == retry[i]) {
			*retry_ms = 60000;
			return NR_RETRY;
		}
	}
	return NR_FAILED;
}

static enum nresult c_dingtalk(const struct nanswer *a, int64_t *retry_ms, char *why,
			       size_t whysize)
{
	/* 130101: "send too fast, exceed 20 times per minute". */
	static const long retry[] = { 130101 };
	return classify_errcode(a, retry_ms, why, whysize, "errcode", NULL, retry, 1);
}

/* ---- WeCom group robot: markdown ----------------------------------------------------------- */

static int b_wecom(const struct notify_config *cfg, const struct nintegration *in,
		   const struct json *data, int64_t now_ms, struct nreq *req, char *why,
		   size_t whysize)
{
	put_url(req, in);
	struct words w;
	words_make(&w, cfg, in, data, NS_MARKDOWN);
	struct buf md;
	buf_init(&md, NOTIFY_BODY_MAX);
	buf_printf(&md, "**<font color=\"%s\">%s</font>**\n", is_firing(data) ? "warning" : "info",
		   w.title.data);
	buf_puts(&md, w.text.data);
	struct buf *b = &req->body;
	/* markdown.content: at most 4096 bytes of UTF-8. */
	buf_puts(b, "{\"msgtype\":\"markdown\",\"markdown\":{\"content\":");
	put_str_bytes(b, md.data, 4096);
	buf_puts(b, "}}");
	buf_fini(&md);
	words_fini(&w);
	(void)now_ms, (void)why, (void)whysize;
	return 0;
}

static enum nresult c_wecom(const struct nanswer *a, int64_t *retry_ms, char *why, size_t whysize)
{
	/* 45009: "api freq out of limit". */
	static const long retry[] = { 45009 };
	return classify_errcode(a, retry_ms, why, whysize, "errcode", NULL, retry, 1);
}

/* ---- Feishu / Lark: interactive card, HMAC in the body -------------------------------------- */

static int b_feishu(const struct notify_config *cfg, const struct nintegration *in,
		    const struct json *data, int64_t now_ms, struct nreq *req, char *why,
		    size_t whysize)
{
	put_url(req, in);
	struct buf *b = &req->body;
	buf_putc(b, '{');
	const char *secret = nopt_get(in, "secret");
	if (secret) {
		/* The HMAC key is "<ts_s>\n<secret>" and the message is empty. */
		char ts[32];
		snprintf(ts, sizeof(ts), "%lld", (long long)(now_ms / 1000));
		struct buf b64;
		buf_init(&b64, 256);
		sign_ts_secret(&b64, ts, secret, true);
		buf_printf(b, "\"timestamp\":\"%s\",\"sign\":\"%s\",", ts, b64.data);
		buf_fini(&b64);
	}
	struct words w;
	words_make(&w, cfg, in, data, NS_MARKDOWN);
	buf_puts(b, "\"msg_type\":\"interactive\",\"card\":{\"config\":{\"wide_screen_mode\":true},"
		    "\"header\":{\"title\":{\"tag\":\"plain_text\",\"content\":");
	put_str_chars(b, w.title.data, 200);
	buf_printf(b, "},\"template\":\"%s\"},\"elements\":[{\"tag\":\"markdown\",\"content\":",
		   is_firing(data) ? "red" : "green");
	/* The request body may be 20 KB. */
	put_str_bytes(b, w.text.data, 18000);
	buf_puts(b, "}]}}");
	words_fini(&w);
	(void)why, (void)whysize;
	return 0;
}

static enum nresult c_feishu(const struct nanswer *a, int64_t *retry_ms, char *why, size_t whysize)
{
	/* 11232: rate limited; older answers use StatusCode. */
	static const long retry[] = { 11232 };
	return classify_errcode(a, retry_ms, why, whysize, "code", "StatusCode", retry, 1);
}

/* ---- PagerDuty Events API v2 ------------------------------------------------------------------ */

static const char *pd_severity(const char *s)
{
	if (!s)
		return NULL;
	if (!strcmp(s, "critical") || !strcmp(s, "error") || !strcmp(s, "warning") ||
	    !strcmp(s, "info"))
		return s;
	if (!strcmp(s, "page") || !strcmp(s, "high"))
		return "critical";
	if (!strcmp(s, "warn") || !strcmp(s, "medium"))
		return "warning";
	if (!strcmp(s, "low") || !strcmp(s, "none"))
		return "info";
	return NULL;
}

static int b_pagerduty(const struct notify_config *cfg, const struct nintegration *in,
		       const struct json *data, int64_t now_ms, struct nreq *req, char *why,
		       size_t whysize)
{
	put_url(req, in);
	struct buf *b = &req->body;
	buf_puts(b, "{\"routing_key\":");
	buf_put_json_str(b, nopt_get(in, "routing_key"));
	buf_printf(b, ",\"event_action\":\"%s\",\"dedup_key\":\"",
		   is_firing(data) ? "trigger" : "resolve");
	group_hash(b, data, 64);
	buf_putc(b, '"');
	if (!is_firing(data)) {
		buf_putc(b, '}');
		return 0;
	}
	struct words w;
	words_make(&w, cfg, in, data, NS_PLAIN);
	const struct json *common = json_get(data, "commonLabels");
	const char *sev = pd_severity(nopt_get(in, "severity"));
	if (!sev)
		sev = pd_severity(json_get_str(common, "severity"));
	const char *src = nopt_get(in, "source");
	if (!src)
		src = json_get_str(common, "host");
	if (!src)
		src = json_get_str(common, "instance");
	buf_puts(b, ",\"payload\":{\"summary\":");
	put_str_chars(b, w.title.data, 1024);
	buf_puts(b, ",\"source\":");
	buf_put_json_str(b, src ? src : "monitor");
	buf_printf(b, ",\"severity\":\"%s\"", sev ? sev : "error");
	const char *o = nopt_get(in, "component");
	if (!o)
		o = json_get_str(common, "name");
	if (o)
		buf_puts(b, ",\"component\":"), buf_put_json_str(b, o);
	put_opts(b, in, (const char *const[]){ "group", "class", NULL });
	const struct json *alerts = json_get(data, "alerts");
	size_t nf = 0, nr = 0;
	for (const struct json *a = alerts ? alerts->child : NULL; a; a = a->next) {
		const char *s = json_get_str(a, "status");
		if (s && !strcmp(s, "firing"))
			nf++;
		else
			nr++;
	}
	buf_puts(b, ",\"custom_details\":{\"firing\":");
	put_str_chars(b, w.text.data, 100000);
	buf_printf(b, ",\"num_firing\":%zu,\"num_resolved\":%zu}}", nf, nr);
	buf_puts(b, ",\"client\":");
	buf_put_json_str(b, (o = nopt_get(in, "client")) ? o : "monitor");
	o = nopt_get(in, "client_url");
	if (!o)
		o = json_get_str(data, "externalURL");
	if (o && *o)
		buf_puts(b, ",\"client_url\":"), buf_put_json_str(b, o);
	buf_putc(b, '}');
	words_fini(&w);
	(void)now_ms, (void)why, (void)whysize;
	return 0;
}

/* ---- ntfy: JSON publish --------------------------------------------------------------------- */

static int b_ntfy(const struct notify_config *cfg, const struct nintegration *in,
		  const struct json *data, int64_t now_ms, struct nreq *req, char *why,
		  size_t whysize)
{
	const char *u = nopt_get(in, "url"), *topic = nopt_get(in, "topic");
	char tbuf[256] = "";
	size_t ul = base_len(u);
	if (!topic) {
		/* https://ntfy.sh/mytopic: the last path segment is the topic, and
		 * JSON is published to the server's root. */
		const char *scheme = strstr(u, "://");
		const char *slash = memrchr(u, '/', ul);
		if (!scheme || !slash || slash <= scheme + 2) {
			snprintf(why, whysize, "ntfy: no topic (set topic: or put it in the url)");
			return -EINVAL;
		}
		snprintf(tbuf, sizeof(tbuf), "%.*s", (int)(u + ul - slash - 1), slash + 1);
		topic = tbuf;
		ul = (size_t)(slash - u);
	}
	buf_add(&req->url, u, ul);
	buf_putc(&req->url, '/');
	const char *tok = nopt_get(in, "token");
	if (tok)
		nreq_header(req, "Authorization: Bearer %s", tok);
	struct words w;
	words_make(&w, cfg, in, data, NS_MARKDOWN);
	struct buf *b = &req->body;
	bool firing = is_firing(data);
	buf_puts(b, "{\"topic\":");
	buf_put_json_str(b, topic);
	buf_puts(b, ",\"title\":");
	put_str_chars(b, w.title.data, 250);
	/* The server's default message limit is 4096 bytes. */
	buf_puts(b, ",\"message\":");
	put_str_bytes(b, w.text.data, 4096);
	const char *pr = nopt_get(in, "priority");
	buf_printf(b, ",\"priority\":%d,\"tags\":[\"%s\"", pr ? atoi(pr) : firing ? 5 : 3,
		   firing ? "rotating_light" : "white_check_mark");
	const char *tags = nopt_get(in, "tags");
	if (tags && *tags) {
		char tmp[1024];
		snprintf(tmp, sizeof(tmp), "%s", tags);
		char *save = NULL;
		for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			buf_putc(b, ',');
			buf_put_json_str(b, t);
		}
	}
	buf_puts(b, "],\"markdown\":true}");
	words_fini(&w);
	(void)now_ms;
	return 0;
}

/* ---- the table --------------------------------------------------------------------------------- */

static const char *const r_url[] = { "url", NULL };
static const char *const r_telegram[] = { "bot_token", "chat_id", NULL };
static const char *const r_pd[] = { "routing_key", NULL };

const struct nvendor_ops nvendors[NV__COUNT] = {
	[NV_WEBHOOK] = { "webhook", "webhook_configs", r_url, true, 0, 0, b_webhook,
			 classify_http },
	[NV_ALERTMANAGER] = { "alertmanager", "alertmanager_configs", r_url, true, 0, 0,
			      b_alertmanager, classify_http },
	/* About one message a second per webhook, short bursts tolerated. */
	[NV_SLACK] = { "slack", "slack_configs", r_url, true, 60, 5, b_slack, c_slack },
	/* About 30 a minute per channel; 429 carries retry_after. */
	[NV_DISCORD] = { "discord", "discord_configs", r_url, true, 30, 5, b_discord,
			 c_discord },
	[NV_MSTEAMS] = { "msteams", "msteams_configs", r_url, true, 60, 5, b_msteams,
			 classify_http },
	/* 20 a minute in a group. */
	[NV_TELEGRAM] = { "telegram", "telegram_configs", r_telegram, true, 20, 3,
			  b_telegram, c_telegram },
	[NV_MATTERMOST] = { "mattermost", "mattermost_configs", r_url, true, 60, 5,
			    b_mattermost, classify_http },
	/* 60 writes a minute per space. */
	[NV_GOOGLECHAT] = { "googlechat", "googlechat_configs", r_url, true, 60, 5,
			    b_googlechat, classify_http },
	/* 20 a minute per robot; going over throttles it for 10 minutes. */
	[NV_DINGTALK] = { "dingtalk", "dingtalk_configs", r_url, true, 20, 3, b_dingtalk,
			  c_dingtalk },
	[NV_WECOM] = { "wecom", "wecom_configs", r_url, true, 20, 3, b_wecom, c_wecom },
	/* 100 a minute and 5 a second per bot. */
	[NV_FEISHU] = { "feishu", "feishu_configs", r_url, true, 100, 5, b_feishu, c_feishu },
	/* 120 events a minute per integration key. */
	[NV_PAGERDUTY] = { "pagerduty", "pagerduty_configs", r_pd, true, 120, 10,
			   b_pagerduty, classify_http },
	/* Burst 60, then one every 5 seconds per visitor. */
	[NV_NTFY] = { "ntfy", "ntfy_configs", r_url, true, 12, 60, b_ntfy, classify_http },
};
