/*
 * test_notify.c - the notifier with a controllable clock: signatures
 * against published vectors, matchers and the route walk, fingerprints,
 * configuration errors, Alertmanager's grouping timers (group_wait,
 * group_interval, repeat_interval), resolve notifications and
 * send_resolved, inhibition, silences, the queue and log surviving a
 * restart, and delivery against a real local HTTP server (a thread here)
 * that answers as vendors do: retried on 5xx, 429 with Retry-After, 200
 * with a rate-limit errcode; given up on 400 and fatal errcodes; dropped
 * past max_age.
 */
#include "tests/unit/test.h"
#include "alerting/notify_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- a scripted HTTP server ------------------------------------------------------- */

struct answer {
	int status;
	const char *headers;     /* extra header lines, each ending \r\n */
	const char *body;
};

struct server {
	int fd, port;
	pthread_t thr;
	pthread_mutex_t lock;
	struct answer script[16];
	size_t nscript, next;
	int requests;
	char last_path[1024];
	char last_headers[8192];
	char last_body[65536];
	volatile int stop;
};

static void *serve(void *arg)
{
	struct server *s = arg;
	for (;;) {
		int c = accept(s->fd, NULL, NULL);
		if (c < 0 || s->stop) {
			if (c >= 0)
				close(c);
			return NULL;
		}
		char req[80000];
		size_t n = 0;
		ssize_t r;
		char *end = NULL;
		while (n < sizeof(req) - 1 && (r = read(c, req + n, sizeof(req) - 1 - n)) > 0) {
			n += (size_t)r;
			req[n] = '\0';
			end = strstr(req, "\r\n\r\n");
			if (!end)
				continue;
			const char *cl = strcasestr(req, "Content-Length:");
			size_t want = cl ? (size_t)atol(cl + 15) : 0;
			if (n >= (size_t)(end + 4 - req) + want)
				break;
		}
		pthread_mutex_lock(&s->lock);
		s->requests++;
		if (end) {
			sscanf(req, "%*s %1023s", s->last_path);
			snprintf(s->last_headers, sizeof(s->last_headers), "%.*s", (int)(end - req), req);
			snprintf(s->last_body, sizeof(s->last_body), "%s", end + 4);
		}
		struct answer a = { 200, "", "ok" };
		if (s->nscript)
			a = s->script[s->next < s->nscript ? s->next++ : s->nscript - 1];
		pthread_mutex_unlock(&s->lock);
		char resp[4096];
		int len = snprintf(resp, sizeof(resp),
				   "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n%s",
				   a.status, strlen(a.body), a.headers, a.body);
		if (write(c, resp, (size_t)len) < 0) {
			/* the client went away: nothing to do */
		}
		close(c);
	}
}

static int server_start(struct server *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	if (bind(s->fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s->fd, 16) < 0 ||
	    getsockname(s->fd, (struct sockaddr *)&a, &al) < 0)
		return -1;
	s->port = ntohs(a.sin_port);
	return pthread_create(&s->thr, NULL, serve, s);
}

static void server_stop(struct server *s)
{
	s->stop = 1;
	int c = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)s->port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (connect(c, (struct sockaddr *)&a, sizeof(a)) == 0)
		close(c);
	else
		close(c);
	pthread_join(s->thr, NULL);
	close(s->fd);
}

static void script(struct server *s, const struct answer *a, size_t n)
{
	pthread_mutex_lock(&s->lock);
	memcpy(s->script, a, n * sizeof(*a));
	s->nscript = n;
	s->next = 0;
	s->requests = 0;
	pthread_mutex_unlock(&s->lock);
}

/* ---- helpers ------------------------------------------------------------------------ */

static struct notify_config *load_cfg(const char *text, char *err, size_t errsize)
{
	struct ydoc doc;
	struct notify_config *c = NULL;
	if (ydoc_parse(&doc, "test.yml", text, strlen(text), err, errsize) < 0)
		return NULL;
	int rc = 0;
	for (const struct ynode *n = doc.root ? doc.root->child : NULL; n && rc == 0; n = n->next)
		rc = notify_config_load(&c, n, "test.yml", err, errsize);
	if (rc == 0)
		rc = notify_config_check(c, "test.yml", err, errsize);
	ydoc_free(&doc);
	if (rc < 0) {
		notify_config_free(c);
		return NULL;
	}
	return c;
}

static void send_alert(struct notifier *n, const char *name, const char *sev, const char *host,
		       int64_t starts, int64_t ends)
{
	struct store_label l[3] = { { "alertname", name }, { "host", host }, { "severity", sev } };
	struct store_label ann[1] = { { "summary", "something is wrong" } };
	struct alert_msg m = { l, 3, ann, 1, starts, ends, "http://x/graph" };
	notify_sink(n, &m, 1, starts);
}

static int count_each(void *arg, const char *key, const void *val, size_t len)
{
	(*(int *)arg)++;
	return 0;
}

static int kv_count(struct kv *k, const char *ns)
{
	int n = 0;
	kv_each(k, ns, NULL, 0, count_each, &n);
	return n;
}

struct grab {
	struct buf *b;
	int want, seen;
};

/* The data of the want-th queued notification (0-based). */
static int grab_each(void *arg, const char *key, const void *val, size_t len)
{
	struct grab *g = arg;
	if (g->seen++ != g->want)
		return 0;
	const char *nl = memchr(val, '\n', len);
	if (nl)
		buf_add(g->b, nl + 1, len - (size_t)(nl + 1 - (const char *)val));
	return 1;
}

static void queued_data(struct kv *k, int idx, struct buf *out)
{
	buf_reset(out);
	struct grab g = { out, idx, 0 };
	kv_each(k, "notify_queue", NULL, 0, grab_each, &g);
}

static struct kv *temp_kv(char *dir)
{
	char path[300], err[512];
	strcpy(dir, "/tmp/notifytestXXXXXX");
	if (!mkdtemp(dir))
		return NULL;
	snprintf(path, sizeof(path), "%s/state.db", dir);
	struct kv *k = NULL;
	if (kv_open(&k, path, err, sizeof(err)) < 0)
		return NULL;
	return k;
}

static void rm_dir(const char *dir)
{
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0) {
		/* best effort */
	}
}

/* One notifier under test: its config, its queue in a fresh temporary
 * directory, and the notifier itself. */
struct rig {
	char dir[64];
	struct kv *k;
	struct notify_config *c;
	struct notifier *n;
};

static void rig_close(struct rig *r)
{
	notify_free(r->n);
	notify_config_free(r->c);
	kv_close(r->k);
	if (r->dir[0])
		rm_dir(r->dir);
	memset(r, 0, sizeof(*r));
}

/* Loads yaml and makes the notifier with the options in o (its kv is the
 * rig's own). False, with a failed CHECK and nothing left over, when any
 * of it fails. */
static bool rig_open(struct rig *r, const char *yaml, struct notify_opts o)
{
	char err[512];
	memset(r, 0, sizeof(*r));
	r->c = load_cfg(yaml, err, sizeof(err));
	if (!r->c)
		fprintf(stderr, "  config: %s\n", err);
	r->k = temp_kv(r->dir);
	o.kv = r->k;
	if (r->c && r->k && notify_new(&r->n, r->c, &o) == 0)
		return true;
	CHECK(0);
	rig_close(r);
	return false;
}

/* What GET /api/v1/notifications would show of n (10 entries); the caller
 * frees it. */
static char *api_text(struct notifier *n)
{
	struct buf api;
	buf_init(&api, 1 << 20);
	notify_api_json(n, 10, &api);
	return buf_steal(&api, NULL);
}

/* ---- crypto ------------------------------------------------------------------------------ */

static void test_crypto(void)
{
	uint8_t h[32];
	struct buf b;
	buf_init(&b, 4096);
	ncrypto_sha256("abc", 3, h);
	ncrypto_hex(&b, h, 32);
	CHECK_STR(b.data, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	char a1000[1000];
	memset(a1000, 'a', sizeof(a1000));
	buf_reset(&b);
	ncrypto_sha256(a1000, sizeof(a1000), h);
	ncrypto_hex(&b, h, 32);
	CHECK_STR(b.data, "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
	/* RFC 4231 test case 2. */
	buf_reset(&b);
	ncrypto_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, h);
	ncrypto_hex(&b, h, 32);
	CHECK_STR(b.data, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	buf_reset(&b);
	ncrypto_base64(&b, (const uint8_t *)"foob", 4);
	CHECK_STR(b.data, "Zm9vYg==");
	buf_reset(&b);
	ncrypto_urlencode(&b, "a+b/c=d e");
	CHECK_STR(b.data, "a%2Bb%2Fc%3Dd%20e");
	buf_fini(&b);
}

static void test_truncate(void)
{
	struct buf b;
	buf_init(&b, 4096);
	/* "héllo" cut to 4 bytes: é is 2 bytes, so only "h" fits before "…". */
	ntext_trunc_bytes(&b, "h\xc3\xa9llo", 4);
	CHECK_STR(b.data, "h\xe2\x80\xa6");
	buf_reset(&b);
	ntext_trunc_bytes(&b, "h\xc3\xa9llo", 6);
	CHECK_STR(b.data, "h\xc3\xa9llo");
	buf_reset(&b);
	ntext_trunc_bytes(&b, "\xc3\xa9\xc3\xa9\xc3\xa9", 5); /* 2 bytes left: one é */
	CHECK_STR(b.data, "\xc3\xa9\xe2\x80\xa6");
	buf_reset(&b);
	ntext_trunc_chars(&b, "\xc3\xa9\xc3\xa9\xc3\xa9", 2);
	CHECK_STR(b.data, "\xc3\xa9\xe2\x80\xa6");
	buf_reset(&b);
	ntext_trunc_chars(&b, "abc", 3);
	CHECK_STR(b.data, "abc");
	buf_fini(&b);
}

/* ---- matchers, routes, fingerprints, config ------------------------------------------------- */

static void test_matchers_routes(void)
{
	struct nmatcher m;
	char err[256];
	CHECK(nmatcher_parse(&m, "severity=~\"crit.*|page\"", err, sizeof(err)) == 0);
	struct nmatchers ms = { &m, 1 };
	struct store_label l1[] = { { "severity", "critical" } }, l2[] = { { "severity", "warning" } };
	CHECK(nmatchers_match(&ms, l1, 1));
	CHECK(!nmatchers_match(&ms, l2, 1));
	CHECK(!nmatchers_match(&ms, NULL, 0)); /* absent is "" */
	free(m.name);
	free(m.value);
	regfree(&m.re);
	CHECK(nmatcher_parse(&m, "severity", err, sizeof(err)) == -EINVAL);
	CHECK(nmatcher_parse(&m, "x=~\"(\"", err, sizeof(err)) == -EINVAL);

	struct store_label fl[] = { { "host", "h1" }, { "alertname", "HighCPU" } };
	CHECK_EQ_INT(nlabels_fingerprint(fl, 2), 0x89f2f4400dc767e9ULL);

	struct notify_config *c = load_cfg(
		"route:\n  receiver: default\n  group_by: [alertname]\n  routes:\n"
		"  - matchers: ['severity=\"critical\"']\n    receiver: pager\n    continue: true\n"
		"  - match: {team: db}\n    receiver: db\n    routes:\n"
		"    - match_re: {env: prod.*}\n      receiver: dbprod\n"
		"  - matchers: [severity=\"critical\"]\n    receiver: chat\n"
		"receivers:\n- name: default\n- name: pager\n- name: db\n- name: dbprod\n- name: chat\n",
		err, sizeof(err));
	CHECK(c != NULL);
	if (!c) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	const struct nroute *out[8];
	struct store_label a[] = { { "severity", "critical" }, { "team", "db" }, { "env", "prod-1" } };
	size_t n = nroute_match(c->root, a, 3, out, 8);
	CHECK_EQ_INT(n, 2);
	if (n == 2) {
		CHECK_STR(out[0]->receiver, "pager");   /* continue: true */
		CHECK_STR(out[1]->receiver, "dbprod");  /* deepest match; stops there */
		CHECK_EQ_INT(out[1]->ngroup_by, 1);     /* inherited */
	}
	struct store_label b[] = { { "severity", "critical" } };
	n = nroute_match(c->root, b, 1, out, 8);
	CHECK_EQ_INT(n, 2);
	if (n == 2)
		CHECK_STR(out[1]->receiver, "chat");
	struct store_label d[] = { { "team", "web" } };
	n = nroute_match(c->root, d, 1, out, 8);
	CHECK(n == 1 && !strcmp(out[0]->receiver, "default"));
	notify_config_free(c);
}

static void test_config_errors(void)
{
	char err[512];
	CHECK(load_cfg("route:\n  receiver: nope\nreceivers:\n- name: a\n", err, sizeof(err)) == NULL);
	CHECK(strstr(err, "\"nope\" is not defined") != NULL);
	CHECK(load_cfg("receivers:\n- name: a\n  slack_configs:\n  - channel: x\n", err,
		       sizeof(err)) == NULL);
	CHECK(strstr(err, "test.yml:4:") && strstr(err, "url is required"));
	CHECK(load_cfg("route: {receiver: a}\nreceivers:\n- name: a\n  foo_configs: []\n", err,
		       sizeof(err)) == NULL);
	CHECK(strstr(err, "unknown key in receiver") != NULL);
	CHECK(load_cfg("route: {receiver: a}\nreceivers:\n- name: a\n  webhook_configs:\n"
		       "  - url: http://x\n    bogus: 1\n", err, sizeof(err)) == NULL);
	CHECK(strstr(err, "bogus") && strstr(err, "unknown key"));
	CHECK(load_cfg("route: {receiver: a}\nreceivers:\n- name: a\n  webhook_configs:\n"
		       "  - url: ftp://x\n", err, sizeof(err)) == NULL);
	CHECK(load_cfg("route: {receiver: a, group_wait: soon}\nreceivers:\n- name: a\n", err,
		       sizeof(err)) == NULL);
	CHECK(strstr(err, "group_wait") != NULL);
	CHECK(load_cfg("route: {receiver: a}\nreceivers:\n- name: a\n  slack_configs:\n"
		       "  - url: http://x\n    title: '{{ range .Alerts }}'\n", err, sizeof(err)) == NULL);
	CHECK(strstr(err, "title") != NULL);
	/* Secrets from the environment and from files. */
	setenv("H9_TEST_SECRET", "s3cr3t-from-env", 1);
	char dir[64];
	struct kv *k = temp_kv(dir);
	char path[256];
	snprintf(path, sizeof(path), "%s/url.txt", dir);
	FILE *f = fopen(path, "w");
	if (f) {
		fputs("http://127.0.0.1:1/hook/fromfile\n", f);
		fclose(f);
	}
	char text[1024];
	snprintf(text, sizeof(text),
		 "route: {receiver: a}\nreceivers:\n- name: a\n  webhook_configs:\n"
		 "  - url_file: %s\n    secret_env: H9_TEST_SECRET\n", path);
	struct notify_config *c = load_cfg(text, err, sizeof(err));
	CHECK(c != NULL);
	if (c) {
		CHECK_STR(nopt_get(&c->integ[0], "url"), "http://127.0.0.1:1/hook/fromfile");
		CHECK_STR(nopt_get(&c->integ[0], "secret"), "s3cr3t-from-env");
		notify_config_free(c);
	} else {
		fprintf(stderr, "  %s\n", err);
	}
	CHECK(load_cfg("route: {receiver: a}\nreceivers:\n- name: a\n  webhook_configs:\n"
		       "  - url: http://x\n    secret_env: H9_NOT_SET_ANYWHERE\n", err,
		       sizeof(err)) == NULL);
	CHECK(strstr(err, "H9_NOT_SET_ANYWHERE is not set") != NULL);
	kv_close(k);
	rm_dir(dir);
}

static void test_template(void)
{
	char err[256];
	const char *data = "{\"status\":\"firing\",\"receiver\":\"ops\",\"groupLabels\":{\"alertname\":\"A\"},"
			   "\"commonLabels\":{\"alertname\":\"A\",\"host\":\"h1\"},\"commonAnnotations\":{},"
			   "\"alerts\":[{\"status\":\"firing\",\"labels\":{\"instance\":\"i1\"}},"
			   "{\"status\":\"resolved\",\"labels\":{\"instance\":\"i2\"}}]}";
	struct json_doc doc;
	CHECK(json_parse(&doc, data, strlen(data), NULL) == 0);
	struct buf b;
	buf_init(&b, 4096);
	CHECK(ntemplate_render(NULL, "[{{ .Status | toUpper }}:{{ .NumFiring }}] {{ .CommonLabels.alertname }}"
				     "{{ range .Alerts.Firing }} {{ .Labels.instance }}{{ end }}"
				     "{{ if .CommonLabels.nope }}X{{ else }} none{{ end }}",
			       doc.root, &b, err, sizeof(err)) == 0);
	CHECK_STR(b.data, "[FIRING:1] A i1 none");
	buf_reset(&b);
	CHECK(ntemplate_render(NULL, "{{ .Nope", doc.root, &b, err, sizeof(err)) < 0);
	CHECK(ntemplate_check(NULL, "{{ if .Status }}", err, sizeof(err)) < 0);
	CHECK(ntemplate_check(NULL, "{{ bogus .Status }}", err, sizeof(err)) < 0);
	/* The default title says status, count, name, host. */
	buf_reset(&b);
	ntext_render(NULL, NULL, doc.root, NS_MARKDOWN, &b, NULL);
	CHECK_STR(b.data, "[FIRING:1] A (h1)");
	buf_fini(&b);
	json_doc_free(&doc);
}

/* ---- grouping with a fake clock ----------------------------------------------------------------- */

static const char grouping_cfg[] =
	"route:\n  receiver: ops\n  group_by: [alertname]\n  group_wait: 30s\n"
	"  group_interval: 5m\n  repeat_interval: 1h\n  routes:\n"
	"  - matchers: [team=quiet]\n    receiver: quiet\n"
	"receivers:\n- name: ops\n  webhook_configs:\n  - url: http://127.0.0.1:9/a\n"
	"- name: quiet\n  webhook_configs:\n  - url: http://127.0.0.1:9/b\n    send_resolved: false\n"
	"inhibit_rules:\n- source_matchers: [severity=critical]\n  target_matchers: [severity=warning]\n"
	"  equal: [host]\n";

static void test_grouping_timers(void)
{
	struct rig r;
	const struct notify_opts o = { .no_threads = true, .seed = 1 };
	if (!rig_open(&r, grouping_cfg, o))
		return;
	struct kv *k = r.k;
	struct notifier *n = r.n;
	int64_t t0 = 1700000000000LL, ends = t0 + 3600000;
	send_alert(n, "HighCPU", "warning", "h1", t0, ends);
	CHECK_EQ_INT(notify_tick(n, t0), 0);                 /* group_wait */
	CHECK_EQ_INT(notify_tick(n, t0 + 29999), 0);
	CHECK_EQ_INT(notify_tick(n, t0 + 30000), 1);         /* first notification */
	CHECK_EQ_INT(kv_count(k, "notify_queue"), 1);
	CHECK_EQ_INT(kv_count(k, "notify_log"), 1);
	/* A second alert of the group waits for group_interval. */
	send_alert(n, "HighCPU", "warning", "h2", t0 + 40000, ends);
	CHECK_EQ_INT(notify_tick(n, t0 + 40000), 0);
	CHECK_EQ_INT(notify_tick(n, t0 + 30000 + 299999), 0);
	CHECK_EQ_INT(notify_tick(n, t0 + 30000 + 300000), 1);
	struct buf b;
	buf_init(&b, 1 << 20);
	queued_data(k, 1, &b);
	struct json_doc doc;
	CHECK(b.data && json_parse(&doc, b.data, b.len, NULL) == 0);
	if (b.data) {
		CHECK_STR(json_get_str(doc.root, "version"), "4");
		CHECK_STR(json_get_str(doc.root, "status"), "firing");
		CHECK_STR(json_get_str(doc.root, "receiver"), "ops");
		CHECK_STR(json_get_str(doc.root, "groupKey"), "{}:{alertname=\"HighCPU\"}");
		CHECK_STR(json_path(doc.root, "groupLabels.alertname")->string, "HighCPU");
		CHECK(json_path(doc.root, "commonLabels.host") == NULL); /* h1 vs h2 */
		const struct json *al = json_get(doc.root, "alerts");
		CHECK(al && al->count == 2);
		if (al && al->child) {
			CHECK_STR(json_get_str(al->child, "endsAt"), "0001-01-01T00:00:00Z");
			CHECK_STR(json_get_str(al->child, "startsAt"), "2023-11-14T22:13:20Z");
			CHECK(strlen(json_get_str(al->child, "fingerprint")) == 16);
		}
		json_doc_free(&doc);
	}
	/* Nothing new: no notification until repeat_interval (1h) has passed
	 * since the last one, checked at each group_interval. */
	int64_t last = t0 + 330000, t = last;
	size_t jobs = 0;
	while (jobs == 0 && t < last + 2 * 3600000) {
		t += 300000;
		send_alert(n, "HighCPU", "warning", "h1", t0, t + 3600000);
		send_alert(n, "HighCPU", "warning", "h2", t0 + 40000, t + 3600000);
		jobs = notify_tick(n, t);
	}
	CHECK_EQ_INT(jobs, 1);
	CHECK(t - last > 3600000 && t - last <= 3600000 + 300000);
	/* Resolve one: the next flush sends the change, with endsAt set. */
	send_alert(n, "HighCPU", "warning", "h1", t0, t + 1000);
	CHECK_EQ_INT(notify_tick(n, t + 1000), 0);
	CHECK_EQ_INT(notify_tick(n, t + 300000), 1);
	queued_data(k, 3, &b);
	CHECK(b.data && json_parse(&doc, b.data, b.len, NULL) == 0);
	if (b.data) {
		const struct json *al = json_get(doc.root, "alerts");
		int resolved = 0;
		for (const struct json *e = al ? al->child : NULL; e; e = e->next)
			if (!strcmp(json_get_str(e, "status"), "resolved")) {
				resolved++;
				CHECK(strcmp(json_get_str(e, "endsAt"), "0001-01-01T00:00:00Z") != 0);
			}
		CHECK_EQ_INT(resolved, 1);
		CHECK_STR(json_get_str(doc.root, "status"), "firing");
		json_doc_free(&doc);
	}
	CHECK_EQ_INT(kv_count(k, "notify_queue"), 4);
	/* Restart: the queue and the log come back; the same alert does not
	 * notify again (the log knows it), a new one does. */
	notify_free(n);
	struct notify_opts again = o;
	again.kv = k;
	r.n = NULL;
	CHECK(notify_new(&n, r.c, &again) == 0);
	r.n = n;
	struct notify_stats st;
	notify_get_stats(n, &st);
	CHECK_EQ_INT(st.queued, 4);
	int64_t t2 = t + 310000;
	send_alert(n, "HighCPU", "warning", "h2", t0 + 40000, t2 + 3600000);
	CHECK_EQ_INT(notify_tick(n, t2), 0);
	CHECK_EQ_INT(notify_tick(n, t2 + 30000), 0);  /* logged as sent: no repeat yet */
	send_alert(n, "DiskFull", "warning", "h2", t2, t2 + 3600000);
	CHECK_EQ_INT(notify_tick(n, t2 + 60000), 0);
	CHECK_EQ_INT(notify_tick(n, t2 + 90000), 1);
	buf_fini(&b);
	rig_close(&r);
}

static bool silence_fn(void *arg, const struct store_label *l, size_t n, int64_t now, char *id,
		       size_t idsize)
{
	int64_t until = *(int64_t *)arg;
	if (now < until && !strcmp(nlabel_get(l, n, "alertname"), "Silenced")) {
		snprintf(id, idsize, "s1");
		return true;
	}
	return false;
}

static void test_inhibit_silence_resolved(void)
{
	int64_t t0 = 1700000000000LL, ends = t0 + 3600000, until = t0 + 600000;
	struct rig r;
	const struct notify_opts o = { .no_threads = true, .seed = 1, .silenced = silence_fn,
				       .silenced_arg = &until };
	if (!rig_open(&r, grouping_cfg, o))
		return;
	struct kv *k = r.k;
	struct notifier *n = r.n;
	/* critical inhibits warning on the same host only. */
	send_alert(n, "HostDown", "critical", "h1", t0, ends);
	send_alert(n, "HighCPU", "warning", "h1", t0, ends);
	send_alert(n, "HighMem", "warning", "h2", t0, ends);
	send_alert(n, "Silenced", "warning", "h3", t0, ends);
	CHECK_EQ_INT(notify_tick(n, t0), 0);
	CHECK_EQ_INT(notify_tick(n, t0 + 30000), 2); /* HostDown, HighMem */
	struct buf b;
	buf_init(&b, 1 << 20);
	const char *names[2] = { NULL, NULL };
	struct json_doc docs[2];
	for (int i = 0; i < 2; i++) {
		queued_data(k, i, &b);
		CHECK(b.data && json_parse(&docs[i], b.data, b.len, NULL) == 0);
		names[i] = b.data ? json_get_str(json_get(docs[i].root, "groupLabels"), "alertname")
				  : NULL;
	}
	bool hostdown = false, highmem = false;
	for (int i = 0; i < 2; i++) {
		hostdown |= names[i] && !strcmp(names[i], "HostDown");
		highmem |= names[i] && !strcmp(names[i], "HighMem");
	}
	CHECK(hostdown && highmem);
	for (int i = 0; i < 2; i++)
		if (names[i])
			json_doc_free(&docs[i]);
	/* The silence ends: the next group_interval notifies the silenced one. */
	CHECK_EQ_INT(notify_tick(n, t0 + 330000), 0);
	CHECK_EQ_INT(notify_tick(n, t0 + 630000), 1);
	/* The inhibitor resolves: HighCPU is notified at its next flush. */
	send_alert(n, "HostDown", "critical", "h1", t0, t0 + 700000);
	CHECK_EQ_INT(notify_tick(n, t0 + 930000), 2); /* HostDown resolved + HighCPU firing */
	/* A receiver with send_resolved: false gets the firing but not the
	 * resolve. */
	struct store_label ql[] = { { "alertname", "Q" }, { "team", "quiet" } };
	struct alert_msg qm = { ql, 2, NULL, 0, t0 + 1000000, t0 + 5000000, NULL };
	notify_sink(n, &qm, 1, t0 + 1000000);
	CHECK_EQ_INT(notify_tick(n, t0 + 1000000), 0);
	CHECK_EQ_INT(notify_tick(n, t0 + 1030000), 1);
	qm.ends_at_ms = t0 + 1040000;
	notify_sink(n, &qm, 1, t0 + 1040000);
	CHECK_EQ_INT(notify_tick(n, t0 + 1330000), 0);
	/* An alert that fires and resolves inside group_wait is never sent. */
	send_alert(n, "Blip", "warning", "h9", t0 + 2000000, t0 + 2010000);
	CHECK_EQ_INT(notify_tick(n, t0 + 2000000), 0);
	CHECK_EQ_INT(notify_tick(n, t0 + 2030000), 0);
	buf_fini(&b);
	rig_close(&r);
}

/* ---- delivery against a real HTTP server --------------------------------------------------------- */

/* Starts the test server and opens a rig (no threads, seed 7) on the config
 * fmt, whose %d is the server's port. Skips the test when nothing can listen;
 * returns from it when the rig does not open (rig_open said why). */
#define SERVED_RIG(s, r, fmt)                                                              \
	do {                                                                               \
		if (server_start(&(s)) < 0)                                                \
			SKIP("cannot listen on 127.0.0.1");                                \
		char yaml_[2048];                                                          \
		snprintf(yaml_, sizeof(yaml_), fmt, (s).port);                             \
		if (!rig_open(&(r), yaml_,                                                 \
			      (struct notify_opts){ .no_threads = true, .seed = 7 })) {    \
			server_stop(&(s));                                                 \
			return;                                                            \
		}                                                                          \
	} while (0)

static void test_delivery_retry(void)
{
	struct server s;
	struct rig r;
	SERVED_RIG(s, r,
		   "route: {receiver: r, group_wait: 0s}\nreceivers:\n- name: r\n  webhook_configs:\n"
		   "  - url: http://127.0.0.1:%d/hook\n    secret: topsecret\n    max_age: 1h\n");
	struct notifier *n = r.n;
	const struct answer a[] = {
		{ 503, "", "busy" },
		{ 429, "Retry-After: 7\r\n", "slow down" },
		{ 200, "", "" },
	};
	script(&s, a, 3);
	int64_t t0 = now_ms();
	send_alert(n, "A", "critical", "h1", t0, t0 + 3600000);
	CHECK_EQ_INT(notify_tick(n, t0), 1);
	CHECK_EQ_INT(notify_deliver(n, t0), 1);          /* 503: retried */
	CHECK_EQ_INT(s.requests, 1);
	CHECK(strstr(s.last_headers, "POST /hook ") != NULL);
	CHECK(strcasestr(s.last_headers, "Content-Type: application/json") != NULL);
	CHECK(strstr(s.last_headers, "X-Monitor-Signature: sha256=") != NULL);
	/* The signature, recomputed: HMAC-SHA256(secret, ts + ":" + body). */
	const char *ts = strstr(s.last_headers, "X-Monitor-Timestamp: ");
	const char *sig = strstr(s.last_headers, "X-Monitor-Signature: sha256=");
	if (ts && sig) {
		struct buf msg, hex;
		buf_init(&msg, 1 << 20);
		buf_init(&hex, 128);
		buf_printf(&msg, "%lld:%s", atoll(ts + 21), s.last_body);
		uint8_t mac[32];
		ncrypto_hmac_sha256("topsecret", 9, msg.data, msg.len, mac);
		ncrypto_hex(&hex, mac, 32);
		CHECK(!strncmp(sig + 28, hex.data, 64));
		buf_fini(&msg);
		buf_fini(&hex);
	}
	CHECK_EQ_INT(notify_deliver(n, t0 + 100), 0);    /* backoff: not yet */
	int64_t t1 = now_ms() + 2000;                    /* backoff 0.5-1.5 s has passed */
	CHECK_EQ_INT(notify_deliver(n, t1), 1);          /* 429 Retry-After: 7 */
	CHECK_EQ_INT(s.requests, 2);
	int64_t t2 = now_ms();
	CHECK_EQ_INT(notify_deliver(n, t2 + 6000), 0);   /* Retry-After honoured */
	CHECK_EQ_INT(notify_deliver(n, t2 + 7500), 1);   /* 200 */
	CHECK_EQ_INT(s.requests, 3);
	struct notify_stats st;
	notify_get_stats(n, &st);
	CHECK_EQ_INT(st.queued, 0);
	CHECK_EQ_INT(st.latency_count, 1);
	CHECK_EQ_INT(kv_count(r.k, "notify_queue"), 0);
	char *api = api_text(n);
	CHECK(strstr(api, "\"delivered\":1") && strstr(api, "\"retried\":2"));
	CHECK(strstr(api, "topsecret") == NULL && strstr(api, "/hook") == NULL);
	free(api);
	rig_close(&r);
	server_stop(&s);
}

static void test_delivery_give_up_and_age(void)
{
	struct server s;
	struct rig r;
	SERVED_RIG(s, r,
		   "route: {receiver: r, group_wait: 0s, group_by: [alertname]}\nreceivers:\n- name: r\n"
		   "  dingtalk_configs:\n  - url: http://127.0.0.1:%d/robot/send?access_token=tok123\n"
		   "    secret: SECdingsecret\n    max_age: 100s\n");
	struct notifier *n = r.n;
	/* DingTalk answers 200 with errcode: 130101 is its rate limit
	 * (retried), 310000 a bad signature (given up). */
	const struct answer a[] = {
		{ 200, "", "{\"errcode\":130101,\"errmsg\":\"send too fast\"}" },
		{ 200, "", "{\"errcode\":310000,\"errmsg\":\"sign not match\"}" },
	};
	script(&s, a, 2);
	int64_t t0 = now_ms();
	send_alert(n, "A", "critical", "h1", t0, t0 + 3600000);
	CHECK_EQ_INT(notify_tick(n, t0), 1);
	CHECK_EQ_INT(notify_deliver(n, t0), 1);
	CHECK_EQ_INT(s.requests, 1);
	CHECK(strstr(s.last_path, "access_token=tok123&timestamp=") != NULL);
	/* The signature: base64(HMAC(secret, ts "\n" secret)), URL-encoded. */
	const char *tsp = strstr(s.last_path, "timestamp=");
	const char *sgp = strstr(s.last_path, "&sign=");
	if (tsp && sgp) {
		char msg[128];
		long long ts = atoll(tsp + 10);
		snprintf(msg, sizeof(msg), "%lld\nSECdingsecret", ts);
		uint8_t mac[32];
		ncrypto_hmac_sha256("SECdingsecret", 13, msg, strlen(msg), mac);
		struct buf b64, enc;
		buf_init(&b64, 256);
		buf_init(&enc, 256);
		ncrypto_base64(&b64, mac, 32);
		ncrypto_urlencode(&enc, b64.data);
		CHECK_STR(sgp + 6, enc.data);
		CHECK(llabs(ts - t0) < 5000);
		buf_fini(&b64);
		buf_fini(&enc);
	}
	CHECK(strstr(s.last_body, "\"msgtype\":\"markdown\"") != NULL);
	CHECK_EQ_INT(notify_deliver(n, now_ms() + 59000), 0); /* a minute for the rate limit */
	CHECK_EQ_INT(notify_deliver(n, now_ms() + 61000), 1); /* 310000: given up */
	CHECK_EQ_INT(s.requests, 2);
	CHECK_EQ_INT(notify_deliver(n, now_ms() + 200000), 0); /* nothing left */
	struct notify_stats st;
	notify_get_stats(n, &st);
	CHECK_EQ_INT(st.queued, 0);
	/* max_age: the endpoint keeps failing; past 100 s the notification is
	 * dropped and counted, not retried for ever. */
	const struct answer b[] = { { 500, "", "down" } };
	script(&s, b, 1);
	send_alert(n, "B", "critical", "h1", t0, t0 + 3600000);
	int64_t t1 = now_ms();
	CHECK_EQ_INT(notify_tick(n, t1), 1);
	CHECK_EQ_INT(notify_deliver(n, t1), 1);
	CHECK_EQ_INT(notify_deliver(n, t1 + 101000), 1);     /* dropped, no request */
	CHECK_EQ_INT(s.requests, 1);
	notify_get_stats(n, &st);
	CHECK_EQ_INT(st.queued, 0);
	char *api = api_text(n);
	CHECK(strstr(api, "\"failed\":1") && strstr(api, "\"dropped\":1"));
	CHECK(strstr(api, "tok123") == NULL && strstr(api, "SECdingsecret") == NULL);
	free(api);
	rig_close(&r);
	server_stop(&s);
}

static void test_alertmanager_schedule(void)
{
	struct server s;
	struct rig r;
	SERVED_RIG(s, r,
		   "route: {receiver: am}\nreceivers:\n- name: am\n  alertmanager_configs:\n"
		   "  - url: http://127.0.0.1:%d/\n    resend_delay: 1m\n");
	struct notifier *n = r.n;
	int64_t t0 = 1700000000000LL;
	send_alert(n, "A", "critical", "h1", t0, t0 + 240000);
	CHECK_EQ_INT(notify_tick(n, t0), 1);           /* at once, no group_wait */
	CHECK_EQ_INT(notify_tick(n, t0 + 30000), 0);
	send_alert(n, "A", "critical", "h1", t0, t0 + 300000);
	CHECK_EQ_INT(notify_tick(n, t0 + 60000), 1);   /* resend_delay */
	send_alert(n, "A", "critical", "h1", t0, t0 + 70000); /* resolved at +70s */
	CHECK_EQ_INT(notify_tick(n, t0 + 70000), 1);   /* the resolve at once */
	CHECK_EQ_INT(notify_tick(n, t0 + 100000), 0);
	CHECK_EQ_INT(notify_tick(n, t0 + 130000), 1);  /* resolved, resent */
	CHECK_EQ_INT(notify_tick(n, t0 + 70000 + 15 * 60000 + 1), 0); /* past 15 m: no more */
	CHECK_EQ_INT(notify_deliver(n, t0 + 1000), 1);
	CHECK(strstr(s.last_headers, "POST /api/v2/alerts ") != NULL);
	struct json_doc doc;
	CHECK(json_parse(&doc, s.last_body, strlen(s.last_body), NULL) == 0);
	CHECK(doc.root && doc.root->type == JSON_ARRAY && doc.root->count == 1);
	if (doc.root && doc.root->child) {
		CHECK_STR(json_path(doc.root->child, "labels.alertname")->string, "A");
		CHECK_STR(json_get_str(doc.root->child, "startsAt"), "2023-11-14T22:13:20Z");
		CHECK_STR(json_get_str(doc.root->child, "endsAt"), "2023-11-14T22:17:20Z");
	}
	json_doc_free(&doc);
	rig_close(&r);
	server_stop(&s);
}

static void test_rate_limit(void)
{
	struct server s;
	struct rig r;
	SERVED_RIG(s, r,
		   "route: {receiver: r, group_wait: 0s, group_by: [alertname]}\nreceivers:\n- name: r\n"
		   "  slack_configs:\n  - url: http://127.0.0.1:%d/slack\n    rate_limit: 60\n    burst: 2\n");
	struct notifier *n = r.n;
	int64_t t = now_ms();
	send_alert(n, "R1", "warning", "h1", t, t + 3600000);
	send_alert(n, "R2", "warning", "h1", t, t + 3600000);
	send_alert(n, "R3", "warning", "h1", t, t + 3600000);
	CHECK_EQ_INT(notify_tick(n, t), 3);
	CHECK_EQ_INT(notify_deliver(n, t), 1);
	CHECK_EQ_INT(notify_deliver(n, t), 1);
	CHECK_EQ_INT(notify_deliver(n, t), 0);          /* burst of 2 spent: one a second */
	CHECK_EQ_INT(s.requests, 2);
	CHECK_EQ_INT(notify_deliver(n, t + 1100), 1);
	CHECK_EQ_INT(s.requests, 3);
	CHECK(strstr(s.last_body, "\"blocks\":[{\"type\":\"header\"") != NULL);
	rig_close(&r);
	server_stop(&s);
}

/* One endpoint accepts connections and never answers: it holds its own
 * delivery thread until its timeout, nothing else. */
static void test_hanging_endpoint(void)
{
	struct server s;
	if (server_start(&s) < 0)
		SKIP("cannot listen on 127.0.0.1");
	int hang = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	if (bind(hang, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(hang, 16) < 0 ||
	    getsockname(hang, (struct sockaddr *)&a, &al) < 0) {
		close(hang);
		server_stop(&s);
		SKIP("cannot listen on 127.0.0.1");
	}
	char yaml[1024];
	snprintf(yaml, sizeof(yaml),
		 "route: {receiver: r, group_wait: 0s}\nreceivers:\n- name: r\n  webhook_configs:\n"
		 "  - url: http://127.0.0.1:%d/hang\n    timeout: 1s\n"
		 "  - url: http://127.0.0.1:%d/fine\n", ntohs(a.sin_port), s.port);
	struct rig r;
	if (!rig_open(&r, yaml, (struct notify_opts){ 0 })) { /* real threads */
		close(hang);
		server_stop(&s);
		return;
	}
	struct notifier *n = r.n;
	int64_t t0 = mono_ns(), t = now_ms();
	send_alert(n, "Hang", "critical", "h1", t, t + 3600000);
	while (s.requests < 1 && mono_ns() - t0 < 3000000000LL)
		usleep(2000);
	double fine_ms = (double)(mono_ns() - t0) / 1e6;
	CHECK_EQ_INT(s.requests, 1);
	CHECK(fine_ms < 500);                          /* not behind the hanging one */
	usleep(1500000);                               /* past the hanging one's timeout */
	char *api = api_text(n);
	CHECK(api && strstr(api, "\"retried\":1") != NULL);
	free(api);
	int64_t f0 = mono_ns();
	notify_free(n);                                /* aborts the transfer in flight */
	r.n = NULL;
	CHECK((mono_ns() - f0) / 1000000 < 1500);
	CHECK_EQ_INT(kv_count(r.k, "notify_queue"), 1); /* the hanging one's, kept for later */
	close(hang);
	rig_close(&r);
	server_stop(&s);
}

static void test_template_files(void)
{
	char dir[64], path[256], yaml[1024], err[512];
	struct kv *k = temp_kv(dir);
	snprintf(path, sizeof(path), "%s/msg.tmpl", dir);
	FILE *f = fopen(path, "w");
	if (!f) {
		CHECK(0);
		return;
	}
	fputs("{{ define \"t.title\" }}[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} "
	      "x{{ .NumFiring }}{{ end }}\n{{ define \"t.text\" }}{{ range .Alerts }}- "
	      "{{ .Labels.host }}: {{ .Annotations.summary }}\n{{ end }}{{ end }}\n", f);
	fclose(f);
	snprintf(yaml, sizeof(yaml),
		 "route: {receiver: r}\nreceivers:\n- name: r\n  slack_configs:\n"
		 "  - url: http://127.0.0.1:9/s\n    title: '{{ template \"t.title\" . }}'\n"
		 "    text: '{{ template \"t.text\" . }}'\ntemplates: ['%s/*.tmpl']\n", dir);
	struct notify_config *c = load_cfg(yaml, err, sizeof(err));
	CHECK(c != NULL);
	if (!c) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CHECK_EQ_INT(c->ntmpl, 2);
	const char *data = "{\"status\":\"firing\",\"groupKey\":\"g\",\"commonLabels\":{\"alertname\":\"Disk\"},"
			   "\"alerts\":[{\"status\":\"firing\",\"labels\":{\"host\":\"h1\"},"
			   "\"annotations\":{\"summary\":\"full\"}}]}";
	struct json_doc doc;
	CHECK(json_parse(&doc, data, strlen(data), NULL) == 0);
	struct nreq req;
	nreq_init(&req);
	char why[256];
	CHECK(nvendors[NV_SLACK].build(c, &c->integ[0], doc.root, now_ms(), &req, why, sizeof(why)) == 0);
	CHECK(req.body.data && strstr(req.body.data, "\"text\":\"[FIRING] Disk x1\"") != NULL);
	CHECK(req.body.data && strstr(req.body.data, "\"text\":\"- h1: full\\n\"") != NULL);
	nreq_fini(&req);
	json_doc_free(&doc);
	notify_config_free(c);
	/* A template that names a define no file has is refused at load. */
	snprintf(yaml, sizeof(yaml),
		 "route: {receiver: r}\nreceivers:\n- name: r\n  slack_configs:\n"
		 "  - url: http://127.0.0.1:9/s\n    title: '{{ template \"nope\" . }}'\n"
		 "templates: ['%s/*.tmpl']\n", dir);
	CHECK(load_cfg(yaml, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "no template \"nope\"") != NULL);
	kv_close(k);
	rm_dir(dir);
}

/* Each vendor's answers, as their docs and issue trackers show them. */
static void test_classify(void)
{
	static const struct {
		enum nvendor v;
		long status;
		const char *body;
		int64_t retry_after_ms;
		enum nresult want;
		int64_t want_retry_ms;
	} cases[] = {
		{ NV_SLACK, 200, "ok", -1, NR_DELIVERED, -1 },
		{ NV_SLACK, 200, "invalid_payload", -1, NR_FAILED, -1 },
		{ NV_SLACK, 404, "channel_not_found", -1, NR_FAILED, -1 },
		{ NV_SLACK, 410, "channel_is_archived", -1, NR_FAILED, -1 },
		{ NV_SLACK, 429, "rate_limited", 30000, NR_RETRY, 30000 },
		{ NV_DISCORD, 204, "", -1, NR_DELIVERED, -1 },
		{ NV_DISCORD, 429, "{\"message\":\"rate limited\",\"retry_after\":2.5,\"global\":false}", -1,
		  NR_RETRY, 2500 },
		{ NV_DISCORD, 400, "{\"code\":50035,\"message\":\"Invalid Form Body\"}", -1, NR_FAILED, -1 },
		{ NV_MSTEAMS, 202, "", -1, NR_DELIVERED, -1 },
		{ NV_MSTEAMS, 429, "", 5000, NR_RETRY, 5000 },
		{ NV_TELEGRAM, 200, "{\"ok\":true,\"result\":{\"message_id\":1}}", -1, NR_DELIVERED, -1 },
		{ NV_TELEGRAM, 400, "{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: can't parse entities\"}",
		  -1, NR_FAILED, -1 },
		{ NV_TELEGRAM, 429, "{\"ok\":false,\"error_code\":429,\"parameters\":{\"retry_after\":3}}", -1,
		  NR_RETRY, 3000 },
		{ NV_TELEGRAM, 403, "{\"ok\":false,\"error_code\":403,\"description\":\"Forbidden\"}", -1, NR_FAILED,
		  -1 },
		{ NV_DINGTALK, 200, "{\"errcode\":0,\"errmsg\":\"ok\"}", -1, NR_DELIVERED, -1 },
		{ NV_DINGTALK, 200, "{\"errcode\":130101,\"errmsg\":\"send too fast\"}", -1, NR_RETRY, 60000 },
		{ NV_DINGTALK, 200, "{\"errcode\":310000,\"errmsg\":\"sign not match\"}", -1, NR_FAILED, -1 },
		{ NV_DINGTALK, 200, "{\"errcode\":300005,\"errmsg\":\"token is not exist\"}", -1, NR_FAILED, -1 },
		{ NV_WECOM, 200, "{\"errcode\":0,\"errmsg\":\"ok\"}", -1, NR_DELIVERED, -1 },
		{ NV_WECOM, 200, "{\"errcode\":45009,\"errmsg\":\"api freq out of limit\"}", -1, NR_RETRY, 60000 },
		{ NV_WECOM, 200, "{\"errcode\":93000,\"errmsg\":\"invalid webhook url\"}", -1, NR_FAILED, -1 },
		{ NV_WECOM, 200, "{\"errcode\":40058,\"errmsg\":\"markdown.content exceed max length 4096\"}", -1,
		  NR_FAILED, -1 },
		{ NV_FEISHU, 200, "{\"code\":0,\"msg\":\"success\",\"data\":{}}", -1, NR_DELIVERED, -1 },
		{ NV_FEISHU, 200, "{\"StatusCode\":0,\"StatusMessage\":\"success\"}", -1, NR_DELIVERED, -1 },
		{ NV_FEISHU, 200, "{\"code\":11232,\"msg\":\"frequency limited\"}", -1, NR_RETRY, 60000 },
		{ NV_FEISHU, 200, "{\"code\":19021,\"msg\":\"sign match fail\"}", -1, NR_FAILED, -1 },
		{ NV_FEISHU, 200, "not json", -1, NR_FAILED, -1 },
		{ NV_PAGERDUTY, 202, "{\"status\":\"success\"}", -1, NR_DELIVERED, -1 },
		{ NV_PAGERDUTY, 400, "{\"status\":\"invalid event\"}", -1, NR_FAILED, -1 },
		{ NV_PAGERDUTY, 429, "", -1, NR_RETRY, -1 },
		{ NV_NTFY, 429, "{\"code\":42901}", 12000, NR_RETRY, 12000 },
		{ NV_WEBHOOK, 408, "", -1, NR_RETRY, -1 },
		{ NV_WEBHOOK, 0, NULL, -1, NR_RETRY, -1 },     /* timeout, refused */
		{ NV_WEBHOOK, 503, "", -1, NR_RETRY, -1 },
		{ NV_WEBHOOK, 422, "", -1, NR_FAILED, -1 },
		{ NV_ALERTMANAGER, 200, "", -1, NR_DELIVERED, -1 },
		{ NV_ALERTMANAGER, 400, "{\"code\":400,\"message\":\"bad\"}", -1, NR_FAILED, -1 },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct nanswer a = { cases[i].status, cases[i].body ? cases[i].body : "",
				     cases[i].body ? strlen(cases[i].body) : 0, cases[i].retry_after_ms,
				     cases[i].status ? NULL : "Connection refused" };
		int64_t retry = -2;
		char why[512];
		enum nresult r = nvendors[cases[i].v].classify(&a, &retry, why, sizeof(why));
		if (r != cases[i].want || (r == NR_RETRY && retry != cases[i].want_retry_ms)) {
			fprintf(stderr, "  case %zu (%s %ld %s): result %d retry %lld (%s)\n", i,
				nvendor_name(cases[i].v), cases[i].status, cases[i].body ? cases[i].body : "",
				(int)r, (long long)retry, why);
			CHECK(0);
		}
	}
	CHECK_EQ_INT(nhttp_retry_after_ms("120", 0), 120000);
	CHECK_EQ_INT(nhttp_retry_after_ms("1.5", 0), 1500);
	/* An HTTP date: Sun, 06 Nov 1994 08:49:37 GMT = 784111777 s. */
	CHECK_EQ_INT(nhttp_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", 784111777000LL - 5000), 5000);
	CHECK_EQ_INT(nhttp_retry_after_ms("soon", 0), -1);
}

/* A group too big for one message keeps 1,000 alerts and counts the rest. */
static void test_big_group(void)
{
	struct rig r;
	if (!rig_open(&r, "route: {receiver: r, group_wait: 0s, group_by: [alertname]}\n"
		      "receivers:\n- name: r\n  webhook_configs:\n  - url: http://127.0.0.1:9/x\n",
		      (struct notify_opts){ .no_threads = true }))
		return;
	struct notifier *n = r.n;
	int64_t t = 1700000000000LL;
	static char hosts[1500][16];
	static struct store_label l[1500][2];
	static struct alert_msg m[1500];
	for (int i = 0; i < 1500; i++) {
		snprintf(hosts[i], sizeof(hosts[i]), "h%d", i);
		l[i][0] = (struct store_label){ "alertname", "Big" };
		l[i][1] = (struct store_label){ "host", hosts[i] };
		m[i] = (struct alert_msg){ l[i], 2, NULL, 0, t, t + 3600000, NULL };
	}
	notify_sink(n, m, 1500, t);
	CHECK_EQ_INT(notify_tick(n, t), 1);
	struct buf b;
	buf_init(&b, 4 << 20);
	queued_data(r.k, 0, &b);
	struct json_doc doc;
	CHECK(b.data && json_parse(&doc, b.data, b.len, NULL) == 0);
	if (b.data) {
		CHECK_EQ_INT(json_get(doc.root, "alerts")->count, 1000);
		CHECK_EQ_INT(json_get(doc.root, "truncatedAlerts")->number, 500);
		json_doc_free(&doc);
	}
	buf_fini(&b);
	rig_close(&r);
}

/* group_by: ['...'] groups by every label; no group_by is one group. */
static void test_group_by(void)
{
	const char *cfgs[2] = {
		"route: {receiver: r, group_wait: 0s, group_by: ['...']}\nreceivers:\n- name: r\n"
		"  webhook_configs:\n  - url: http://127.0.0.1:9/x\n",
		"route: {receiver: r, group_wait: 0s}\nreceivers:\n- name: r\n"
		"  webhook_configs:\n  - url: http://127.0.0.1:9/x\n",
	};
	const size_t want[2] = { 3, 1 };
	for (int i = 0; i < 2; i++) {
		struct rig r;
		if (!rig_open(&r, cfgs[i], (struct notify_opts){ .no_threads = true }))
			return;
		struct notifier *n = r.n;
		int64_t t = 1700000000000LL;
		send_alert(n, "A", "warning", "h1", t, t + 3600000);
		send_alert(n, "A", "warning", "h2", t, t + 3600000);
		send_alert(n, "B", "critical", "h1", t, t + 3600000);
		CHECK_EQ_INT(notify_tick(n, t), want[i]);
		if (i == 1) {
			struct buf b;
			buf_init(&b, 1 << 20);
			queued_data(r.k, 0, &b);
			CHECK(b.data && strstr(b.data, "\"groupKey\":\"{}:{}\"") != NULL);
			buf_fini(&b);
		}
		rig_close(&r);
	}
}

int main(void)
{
	log_set_level(LOG_ERROR);
	RUN(test_crypto);
	RUN(test_truncate);
	RUN(test_matchers_routes);
	RUN(test_config_errors);
	RUN(test_template);
	RUN(test_classify);
	RUN(test_grouping_timers);
	RUN(test_inhibit_silence_resolved);
	RUN(test_delivery_retry);
	RUN(test_delivery_give_up_and_age);
	RUN(test_alertmanager_schedule);
	RUN(test_rate_limit);
	RUN(test_hanging_endpoint);
	RUN(test_template_files);
	RUN(test_big_group);
	RUN(test_group_by);
	TEST_END();
}
