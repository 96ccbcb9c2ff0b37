/*
 * docker.c - container metadata from the Docker Engine API.
 *
 * One thread per client talks HTTP to the engine over its unix socket with
 * libcurl. It asks /version which API version to speak, lists every
 * container (/containers/json?all=1), inspects each one
 * (/containers/{id}/json) and posts a coll_meta for it to the queue; then it
 * follows /events and re-inspects a container whenever an event says it
 * changed (posting remove=true on destroy). When the socket is missing,
 * refuses, hangs, or the stream ends, the thread marks the client down,
 * backs off (1 s doubling to 30 s) and starts over with a full list, since
 * events may have been missed meanwhile. The events subscription starts at
 * the time the list began (?since=), so nothing that happens between the
 * list and the subscription is lost; a replayed event only costs an inspect.
 * A stream that starts again after an outage resumes from the newest event
 * seen (at most ten minutes back), so the timeline keeps what the engine
 * still remembers.
 *
 * Inspect gives each container's lifecycle too: state, exit code, OOM kill,
 * restart count and policy, health, command, published ports, mounts and
 * the writable layer's directory. Lifecycle events (start, stop, die with
 * its exit code, oom, restart, health_status, pause, unpause, create,
 * destroy) also go to the event timeline.
 *
 * docker_action runs the management actions (start, stop, ...) for the HTTP
 * handlers on their own threads, each with its own curl handle.
 *
 * Every transfer runs on one curl multi handle owned by the thread, so
 * docker_stop wakes it out of any wait with curl_multi_wakeup and never
 * waits for a request to time out. The tick thread never calls in here: it
 * only drains the coll_meta_queue.
 */
#include "collectors/collector.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

#define API_MAX_MAJOR 1          /* newest API whose fields we rely on */
#define API_MAX_MINOR 41
#define VERSION_CAP ((size_t)64 << 10)
#define LIST_CAP ((size_t)8 << 20)
#define INSPECT_CAP ((size_t)1 << 20)
#define EVENT_LINE_CAP ((size_t)1 << 20)
#define PENDING_MAX 4096         /* distinct containers awaiting inspection */
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define DEFAULT_TIMEOUT_MS 5000
#define POLL_MS 1000             /* longest sleep in curl_multi_poll */
#define RESUME_MAX_MS ((int64_t)10 * 60 * 1000) /* how far back a new event stream may start */
#define ACTION_CAP ((size_t)64 << 10)

/* A container the event stream named, waiting for the thread to look. */
struct pending {
	char id[80];
	bool destroyed;
};

struct docker_client {
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* host root applied */
	char what[sizeof(((struct sockaddr_un *)0)->sun_path) + 16]; /* "docker: <sock>" */
	int64_t timeout_ms;
	struct coll_meta_queue *q;
	struct coll_event_log *events; /* the timeline, or NULL */
	CURLM *multi;
	pthread_t thread;
	pthread_mutex_t lock;    /* with cond: the interruptible backoff sleep */
	pthread_cond_t cond;
	int stopping;            /* atomic */
	int up;                  /* atomic */
	int synced;              /* atomic: the first list-and-inspect round has ended */
	struct log_limit ll;     /* thread only, like everything below */
	char api[16];            /* "/v1.41", or "" for the engine's default */
	char err[512];           /* why the last session ended */

	/* The events stream, fed by event_cb. */
	struct buf line;         /* partial line */
	bool line_skip;          /* dropping the rest of an oversized line */
	struct pending *pend;
	size_t npend, pend_cap;
	bool pend_overflow;      /* events were dropped: resync */
	int64_t last_event_ns;   /* time of the newest event seen: where a new stream resumes */
};

/* One HTTP transfer on the client's multi handle. */
struct req {
	struct docker_client *d;
	CURL *h;
	struct buf body;
	bool done;
	CURLcode rc;
	char errbuf[CURL_ERROR_SIZE];
};

static bool stopping(const struct docker_client *d)
{
	return __atomic_load_n(&d->stopping, __ATOMIC_ACQUIRE) != 0;
}

static void set_up(struct docker_client *d, int up)
{
	__atomic_store_n(&d->up, up, __ATOMIC_RELEASE);
}

int docker_up(const struct docker_client *d)
{
	return d ? __atomic_load_n(&d->up, __ATOMIC_ACQUIRE) : 0;
}

int docker_synced(const struct docker_client *d)
{
	return d ? __atomic_load_n(&d->synced, __ATOMIC_ACQUIRE) : 1;
}

/* Container ids go into URLs: accept only what Docker ids look like. */
static bool valid_id(const char *id)
{
	size_t n = 0;
	if (!id)
		return false;
	for (; id[n]; n++) {
		char c = id[n];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		      (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return n > 0 && n < sizeof(((struct pending *)0)->id);
}

/*
 * "2026-11-29T15:34:22.936441148Z" (RFC 3339, any number of fraction
 * digits, Z or a ±hh:mm offset) to unix seconds. Docker's zero time
 * "0001-01-01T00:00:00Z", anything before 1970 and anything malformed give
 * 0, which the registry reads as unknown.
 */
static double parse_time(const char *s)
{
	int Y, M, D, h, m, sec, n = 0;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &n) != 6 ||
	    n == 0)
		return 0;
	if (Y < 1970 || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return 0;
	s += n;
	double frac = 0, scale = 0.1;
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++) {
			frac += (*s - '0') * scale;
			scale /= 10;
		}
	}
	long off = 0;
	if (*s == '+' || *s == '-') {
		int oh, om;
		if (sscanf(s + 1, "%2d:%2d", &oh, &om) != 2)
			return 0;
		off = (oh * 3600L + om * 60L) * (*s == '-' ? -1 : 1);
	} else if (*s != 'Z' && *s != 'z') {
		return 0;
	}
	struct tm tm = { .tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D,
			 .tm_hour = h, .tm_min = m, .tm_sec = sec };
	time_t t = timegm(&tm);
	if (t == (time_t)-1 || t - off <= 0)
		return 0;
	return (double)(t - off) + frac;
}

/* ---- transfers ---------------------------------------------------------- */

static size_t body_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct req *r = arg;
	size_t n = size * nmemb;
	buf_add(&r->body, p, n);
	return r->body.overflow ? 0 : n; /* 0 aborts with CURLE_WRITE_ERROR */
}

static int xferinfo_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	return stopping(arg) ? 1 : 0;
}

/*
 * Sets up r for GET path. cap bounds the response body. A stream (the events
 * feed) gets no total timeout, only a connect timeout: it is idle for as long
 * as nothing happens to a container. Returns 0, -ENAMETOOLONG or -ENOMEM;
 * req_fini undoes it either way.
 */
static int req_init(struct docker_client *d, struct req *r, const char *path, size_t cap,
		    curl_write_callback write_cb)
{
	char url[512];
	memset(r, 0, sizeof(*r));
	r->d = d;
	buf_init(&r->body, cap);
	if (snprintf(url, sizeof(url), "http://localhost%s", path) >= (int)sizeof(url))
		return -ENAMETOOLONG;
	r->h = curl_easy_init();
	if (!r->h)
		return -ENOMEM;
	CURL *h = r->h;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, d->sock);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PRIVATE, r);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb ? write_cb : body_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, d);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)d->timeout_ms);
	if (!write_cb)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)d->timeout_ms);
	return 0;
}

static void req_fini(struct req *r)
{
	if (r->h)
		curl_easy_cleanup(r->h);
	r->h = NULL;
	buf_fini(&r->body);
}

static long req_status(const struct req *r)
{
	long code = 0;
	curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &code);
	return code;
}

/* Marks finished transfers done, whichever request they belong to. */
static void drain(struct docker_client *d)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(d->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		char *p = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &p);
		struct req *r = (struct req *)p;
		if (r) {
			r->done = true;
			r->rc = m->data.result;
		}
	}
}

/*
 * One turn of the multi handle: wait until a socket is ready, a curl timer
 * is due, POLL_MS passes or docker_stop wakes us (a wakeup sent before the
 * wait still ends it), then run the transfers and mark the finished ones.
 */
static void turn(struct docker_client *d)
{
	int running;
	curl_multi_poll(d->multi, NULL, 0, POLL_MS, NULL);
	curl_multi_perform(d->multi, &running);
	drain(d);
}

/* Describes why r failed into d->err, prefixed with "GET path: ". */
static void describe(struct docker_client *d, const struct req *r, const char *path)
{
	char why[CURL_ERROR_SIZE + 64];
	long os_errno = 0;
	switch (r->rc) {
	case CURLE_WRITE_ERROR:
		if (r->body.overflow) {
			snprintf(why, sizeof(why), "response larger than %zu bytes", r->body.cap);
			break;
		}
		/* fall through */
	default:
		snprintf(why, sizeof(why), "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->rc));
		break;
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(why, sizeof(why), "no answer within %lld ms", (long long)d->timeout_ms);
		break;
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(r->h, CURLINFO_OS_ERRNO, &os_errno);
		snprintf(why, sizeof(why), "connect: %s",
			 os_errno ? strerror((int)os_errno) : "failed");
		break;
	}
	snprintf(d->err, sizeof(d->err), "GET %s: %s", path, why);
}

/*
 * Runs one GET to completion (other transfers on the multi handle, i.e. the
 * events stream, keep flowing meanwhile). Returns 0 when the engine
 * answered: *r holds the body and req_status the HTTP status; the caller
 * calls req_fini. Returns -ECANCELED when stopping, or -EIO with d->err
 * set when the transfer failed; *r is finished then.
 */
static int api_get(struct docker_client *d, struct req *r, const char *path, size_t cap)
{
	int rc = req_init(d, r, path, cap, NULL);
	if (rc < 0) {
		snprintf(d->err, sizeof(d->err), "GET %s: %s", path, strerror(-rc));
		req_fini(r);
		return rc;
	}
	if (curl_multi_add_handle(d->multi, r->h) != CURLM_OK) {
		snprintf(d->err, sizeof(d->err), "GET %s: cannot start transfer", path);
		req_fini(r);
		return -ENOMEM;
	}
	while (!r->done && !stopping(d))
		turn(d);
	curl_multi_remove_handle(d->multi, r->h);
	if (!r->done || stopping(d)) {
		req_fini(r);
		return -ECANCELED;
	}
	if (r->rc != CURLE_OK) {
		describe(d, r, path);
		set_up(d, 0);
		req_fini(r);
		return -EIO;
	}
	/* A 404 is the engine answering about a container that is gone. */
	long status = req_status(r);
	if ((status >= 200 && status < 300) || status == 404) {
		set_up(d, 1);
		log_recovered(&d->ll, d->what);
	} else {
		set_up(d, 0);
	}
	return 0;
}

/* Parses r's body; on failure sets d->err and returns -EINVAL. */
static int parse_body(struct docker_client *d, struct req *r, const char *path,
		      struct json_doc *doc)
{
	size_t off = 0;
	int rc = json_parse(doc, r->body.data ? r->body.data : "", r->body.len, &off);
	if (rc < 0)
		snprintf(d->err, sizeof(d->err), "GET %s: %s at byte %zu",
			 path, rc == -ENOMEM ? "out of memory" : "malformed JSON", off);
	return rc;
}

/* ---- metadata ----------------------------------------------------------- */

static int dup_str(char **dst, const char *s)
{
	if (!s)
		return 0;
	*dst = strdup(s);
	return *dst ? 0 : -ENOMEM;
}

static bool json_num(const struct json *j, double lo, double hi, double *out)
{
	if (!j || j->type != JSON_NUMBER || j->number < lo || j->number > hi)
		return false;
	*out = j->number;
	return true;
}

/* "Path Args..." as one line, capped; NULL path gives no command. */
/* A --storage-opt size= value as Docker reads it (units.RAMInBytes: a
 * number, then k, m, g, t or p for powers of 1024, then an optional i and
 * b), in bytes; 0 when absent or not a size. */
static double storage_size(const char *s)
{
	if (!s || !*s)
		return 0;
	char *end;
	double v = strtod(s, &end);
	if (end == s || !(v > 0))
		return 0;
	while (*end == ' ')
		end++;
	static const char units[] = "kmgtp";
	const char *u = *end ? strchr(units, *end | 0x20) : NULL;
	if (u) {
		for (const char *k = units; k <= u; k++)
			v *= 1024;
		end++;
	}
	if (*end == 'i' || *end == 'I')
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	return *end ? 0 : v;
}

static int command_from_inspect(const struct json *root, struct coll_meta *m)
{
	const char *path = json_get_str(root, "Path");
	if (!path)
		return 0;
	struct buf b;
	buf_init(&b, 4096);
	buf_puts(&b, path);
	const struct json *args = json_get(root, "Args");
	if (args && args->type == JSON_ARRAY)
		for (const struct json *a = args->child; a; a = a->next)
			if (a->type == JSON_STRING) {
				buf_putc(&b, ' ');
				buf_puts(&b, a->string);
			}
	if (b.overflow) {
		/* Keep what fits: a long command line is still worth its start. */
		b.overflow = false;
		if (b.len > b.cap - 4)
			b.len = b.cap - 4;
		buf_puts(&b, "...");
	}
	m->command = buf_steal(&b, NULL);
	buf_fini(&b);
	return m->command ? 0 : -ENOMEM;
}

/* Ports from {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}] | null};
 * an exposed port without a binding is kept with host_port 0. */
static int ports_from(const struct json *ports, struct coll_meta *m, bool keep_unbound)
{
	int rc = 0;
	if (!ports || ports->type != JSON_OBJECT)
		return 0;
	for (const struct json *p = ports->child; p && rc == 0; p = p->next) {
		struct coll_port port = { 0 };
		char proto[8] = "tcp";
		if (sscanf(p->key, "%d/%7s", &port.container_port, proto) < 1 ||
		    port.container_port <= 0 || port.container_port > 65535)
			continue;
		memcpy(port.proto, proto, sizeof(port.proto));
		bool bound = false;
		if (p->type == JSON_ARRAY) {
			for (const struct json *b = p->child; b && rc == 0; b = b->next) {
				const char *hp = json_get_str(b, "HostPort");
				int hport = hp ? atoi(hp) : 0;
				if (hport <= 0 || hport > 65535)
					continue;
				port.host_port = hport;
				port.host_ip = (char *)json_get_str(b, "HostIp");
				rc = coll_meta_add_port(m, &port);
				bound = true;
			}
		}
		if (!bound && keep_unbound && rc == 0) {
			port.host_port = 0;
			port.host_ip = NULL;
			rc = coll_meta_add_port(m, &port);
		}
	}
	return rc;
}

/* Whether a comma-separated option list ("rw,size=64m") holds opt. */
static bool has_option(const char *list, const char *opt)
{
	size_t n = strlen(opt);
	for (const char *p = list; *p; p += strcspn(p, ","), p += *p == ',')
		if (strncmp(p, opt, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return true;
	return false;
}

/* Lifecycle and layout: State, restart policy, command, ports, mounts,
 * the writable layer. */
static int lifecycle_from_inspect(const struct json *root, struct coll_meta *m)
{
	double v;
	const struct json *st = json_get(root, "State");
	int rc = 0;
	if (st && st->type == JSON_OBJECT) {
		m->has_state = true;
		if (json_num(json_get(st, "ExitCode"), -1e9, 1e9, &v))
			m->exit_code = (int64_t)v;
		const struct json *oom = json_get(st, "OOMKilled");
		m->oom_killed = oom && oom->type == JSON_BOOL && oom->boolean;
		m->finished_at = parse_time(json_get_str(st, "FinishedAt"));
		if (json_num(json_get(st, "Pid"), 0, 1 << 30, &v))
			m->pid = (int64_t)v;
		rc = dup_str(&m->health, json_get_str(json_get(st, "Health"), "Status"));
	}
	m->created_at = parse_time(json_get_str(root, "Created"));
	const struct json *pol = json_path(root, "HostConfig.RestartPolicy");
	rc = rc ? rc : dup_str(&m->restart_policy, json_get_str(pol, "Name"));
	if (m->restart_policy && !m->restart_policy[0]) {
		free(m->restart_policy); /* "" means no policy, as "no" */
		m->restart_policy = strdup("no");
		rc = m->restart_policy ? rc : -ENOMEM;
	}
	if (json_num(json_get(pol, "MaximumRetryCount"), 0, 1e9, &v))
		m->restart_max = (int64_t)v;
	rc = rc ? rc : command_from_inspect(root, m);
	rc = rc ? rc : dup_str(&m->upper_dir, json_get_str(json_path(root, "GraphDriver.Data"),
							   "UpperDir"));
	m->layer_quota_bytes = storage_size(json_get_str(json_path(root, "HostConfig.StorageOpt"),
							  "size"));
	rc = rc ? rc : dup_str(&m->log_path, json_get_str(root, "LogPath"));
	if (m->log_path && !m->log_path[0]) {
		free(m->log_path); /* drivers other than json-file/local keep no file */
		m->log_path = NULL;
	}
	/* What is published now; before the network is up (or with none),
	 * what the container asked for. */
	rc = rc ? rc : ports_from(json_path(root, "NetworkSettings.Ports"), m, true);
	if (rc == 0 && m->nports == 0)
		rc = ports_from(json_path(root, "HostConfig.PortBindings"), m, false);
	const struct json *mounts = json_get(root, "Mounts");
	if (mounts && mounts->type == JSON_ARRAY) {
		for (const struct json *j = mounts->child; j && rc == 0; j = j->next) {
			const struct json *rw = json_get(j, "RW");
			struct coll_mount mt = {
				.type = (char *)json_get_str(j, "Type"),
				.name = (char *)json_get_str(j, "Name"),
				.source = (char *)json_get_str(j, "Source"),
				.destination = (char *)json_get_str(j, "Destination"),
				.rw = rw && rw->type == JSON_BOOL && rw->boolean,
			};
			if (mt.destination && mt.destination[0] == '/')
				rc = coll_meta_add_mount(m, &mt);
		}
	}
	/* --tmpfs mounts are not in Mounts, only in HostConfig.Tmpfs
	 * ({"/run": "size=64m"}); --mount type=tmpfs ones are in both. */
	const struct json *tmpfs = json_path(root, "HostConfig.Tmpfs");
	if (tmpfs && tmpfs->type == JSON_OBJECT) {
		for (const struct json *t = tmpfs->child; t && rc == 0; t = t->next) {
			bool dup = t->key[0] != '/';
			for (size_t i = 0; i < m->nmounts && !dup; i++)
				dup = strcmp(m->mounts[i].destination, t->key) == 0;
			struct coll_mount mt = { .type = "tmpfs", .source = "", .destination = t->key,
						 .rw = !(t->type == JSON_STRING && has_option(t->string, "ro")) };
			if (!dup)
				rc = coll_meta_add_mount(m, &mt);
		}
	}
	return rc;
}

/* Fills m (zeroed by the caller) from an inspect document. Returns 0 or
 * -ENOMEM; m is the caller's to fini either way. */
static int meta_from_inspect(const struct json *root, struct coll_meta *m)
{
	const char *name = json_get_str(root, "Name");
	if (name && name[0] == '/')
		name++;
	int rc = dup_str(&m->name, name);
	rc = rc ? rc : dup_str(&m->image, json_get_str(json_get(root, "Config"), "Image"));
	rc = rc ? rc : dup_str(&m->state, json_get_str(json_get(root, "State"), "Status"));
	const struct json *labels = json_path(root, "Config.Labels");
	if (labels && labels->type == JSON_OBJECT) {
		for (const struct json *l = labels->child; l && !rc; l = l->next)
			if (l->type == JSON_STRING)
				rc = coll_meta_add_label(m, l->key, l->string);
	}
	rc = rc ? rc : dup_str(&m->compose_project, coll_meta_label(m, "com.docker.compose.project"));
	rc = rc ? rc : dup_str(&m->pod, coll_meta_label(m, "io.kubernetes.pod.name"));
	rc = rc ? rc : dup_str(&m->namespace, coll_meta_label(m, "io.kubernetes.pod.namespace"));
	rc = rc ? rc : dup_str(&m->container, coll_meta_label(m, "io.kubernetes.container.name"));
	m->started_at = parse_time(json_get_str(json_get(root, "State"), "StartedAt"));
	const struct json *rcount = json_get(root, "RestartCount");
	m->restart_count = -1;
	if (rcount && rcount->type == JSON_NUMBER && rcount->number >= 0 && rcount->number < 1e15)
		m->restart_count = (int64_t)rcount->number;
	return rc ? rc : lifecycle_from_inspect(root, m);
}

/*
 * Inspects one container and posts what the engine says: its metadata, or
 * remove=true when the engine no longer knows it. Returns 0 (also when this
 * one container could not be described, which is logged), or the api_get
 * error when the engine did not answer.
 */
static int inspect(struct docker_client *d, const char *id)
{
	char path[160];
	struct req r;
	struct json_doc doc;
	struct coll_meta m;
	snprintf(path, sizeof(path), "%s/containers/%s/json", d->api, id);
	int rc = api_get(d, &r, path, INSPECT_CAP);
	if (rc < 0)
		return rc;
	long status = req_status(&r);
	memset(&m, 0, sizeof(m));
	m.restart_count = -1;
	d->err[0] = '\0';
	if (status == 404) {
		coll_meta_post(d->q, id, &m, true);
	} else if (status != 200) {
		snprintf(d->err, sizeof(d->err), "GET %s: HTTP %ld", path, status);
	} else if (parse_body(d, &r, path, &doc) == 0) {
		const char *real = json_get_str(doc.root, "Id");
		if (meta_from_inspect(doc.root, &m) == 0)
			coll_meta_post(d->q, valid_id(real) ? real : id, &m, false);
		else
			snprintf(d->err, sizeof(d->err), "GET %s: out of memory", path);
		coll_meta_fini(&m);
		json_doc_free(&doc);
	}
	if (d->err[0])
		log_limited(&d->ll, LOG_WARN, "docker: %s: %s", d->sock, d->err);
	d->err[0] = '\0';
	req_fini(&r);
	return 0;
}

/* ---- the session: version, list, events --------------------------------- */

static int parse_api(const char *s, int *major, int *minor)
{
	return s && sscanf(s, "%d.%d", major, minor) == 2 ? 0 : -EINVAL;
}

/*
 * Picks the API version: the engine's own, capped at 1.41 (the fields we
 * read are stable up to there), but never below the engine's minimum
 * (newer engines refuse old versions). Without a usable answer we speak
 * unversioned paths, which the engine serves as its current version.
 */
static int learn_version(struct docker_client *d)
{
	struct req r;
	struct json_doc doc;
	int rc = api_get(d, &r, "/version", VERSION_CAP);
	if (rc < 0)
		return rc;
	d->api[0] = '\0';
	if (req_status(&r) != 200) {
		snprintf(d->err, sizeof(d->err), "GET /version: HTTP %ld", req_status(&r));
		req_fini(&r);
		return -EPROTO;
	}
	if (parse_body(d, &r, "/version", &doc) == 0) {
		int maj, min, lo_maj, lo_min;
		if (parse_api(json_get_str(doc.root, "ApiVersion"), &maj, &min) == 0) {
			if (maj > API_MAX_MAJOR || (maj == API_MAX_MAJOR && min > API_MAX_MINOR)) {
				maj = API_MAX_MAJOR;
				min = API_MAX_MINOR;
			}
			if (parse_api(json_get_str(doc.root, "MinAPIVersion"), &lo_maj, &lo_min) == 0 &&
			    (lo_maj > maj || (lo_maj == maj && lo_min > min))) {
				maj = lo_maj;
				min = lo_min;
			}
			snprintf(d->api, sizeof(d->api), "/v%d.%d", maj, min);
		}
		json_doc_free(&doc);
	}
	d->err[0] = '\0';
	req_fini(&r);
	return 0;
}

/* Lists every container and inspects each. Returns 0 or -errno (d->err). */
static int resync(struct docker_client *d)
{
	char path[64];
	struct req r;
	struct json_doc doc;
	snprintf(path, sizeof(path), "%s/containers/json?all=1", d->api);
	int rc = api_get(d, &r, path, LIST_CAP);
	if (rc < 0)
		return rc;
	if (req_status(&r) != 200) {
		snprintf(d->err, sizeof(d->err), "GET %s: HTTP %ld", path, req_status(&r));
		rc = -EPROTO;
	} else if ((rc = parse_body(d, &r, path, &doc)) == 0) {
		if (doc.root->type != JSON_ARRAY) {
			snprintf(d->err, sizeof(d->err), "GET %s: not a JSON array", path);
			rc = -EPROTO;
		} else {
			for (const struct json *c = doc.root->child; c && rc == 0; c = c->next) {
				const char *id = json_get_str(c, "Id");
				if (valid_id(id))
					rc = inspect(d, id);
			}
		}
		json_doc_free(&doc);
	}
	req_fini(&r);
	return rc;
}

/* Event actions after which a container's metadata may have changed. */
static bool action_matters(const char *a)
{
	static const char *const actions[] = {
		"create", "start", "restart", "stop", "die", "oom", "pause",
		"unpause", "rename", "update", "destroy",
	};
	for (size_t i = 0; i < ARRAY_LEN(actions); i++)
		if (strcmp(a, actions[i]) == 0)
			return true;
	return strncmp(a, "health_status", 13) == 0; /* "health_status: healthy" */
}

/*
 * Records a container event in the timeline: the lifecycle actions only
 * (exec_*, attach, resize, top, ... are not lifecycle). "health_status:
 * unhealthy" becomes type health_status, detail unhealthy; die carries its
 * exit code.
 */
static void post_event(struct docker_client *d, const struct json *ev, const char *action,
		       const char *id)
{
	static const char *const kept[] = {
		"create", "start", "restart", "stop", "die", "oom", "pause", "unpause",
		"destroy", "health_status",
	};
	size_t alen = strcspn(action, ":");
	bool keep = false;
	for (size_t i = 0; i < ARRAY_LEN(kept) && !keep; i++)
		keep = strlen(kept[i]) == alen && strncmp(action, kept[i], alen) == 0;
	if (!keep || !d->events)
		return;
	struct coll_event e;
	memset(&e, 0, sizeof(e));
	const struct json *attrs = json_path(ev, "Actor.Attributes");
	double t;
	if (json_num(json_get(ev, "timeNano"), 1e18, 1e20, &t))
		e.time_ms = (int64_t)(t / 1e6);
	else if (json_num(json_get(ev, "time"), 1e9, 1e11, &t))
		e.time_ms = (int64_t)t * 1000;
	snprintf(e.id, sizeof(e.id), "%s", id);
	const char *name = json_get_str(attrs, "name");
	snprintf(e.name, sizeof(e.name), "%s", name ? name : "");
	snprintf(e.type, sizeof(e.type), "%.*s", (int)alen, action);
	if (action[alen] == ':') {
		const char *v = action + alen + 1;
		while (*v == ' ')
			v++;
		snprintf(e.detail, sizeof(e.detail), "%s", v);
	} else if (strcmp(e.type, "die") == 0) {
		const char *code = json_get_str(attrs, "exitCode");
		if (code)
			snprintf(e.detail, sizeof(e.detail), "exit code %s", code);
	} else if (strcmp(e.type, "oom") == 0) {
		snprintf(e.detail, sizeof(e.detail), "out of memory in the container's cgroup");
	}
	coll_event_post(d->events, &e);
}

/* Queues the container one event line names, once per container, and
 * records lifecycle events in the timeline. */
static void event_line(struct docker_client *d, const char *line, size_t n)
{
	struct json_doc doc;
	if (n == 0 || json_parse(&doc, line, n, NULL) < 0)
		return;
	const struct json *ev = doc.root;
	const char *type = json_get_str(ev, "Type");
	const char *action = json_get_str(ev, "Action");
	const char *id = json_get_str(json_get(ev, "Actor"), "ID");
	if (!action)
		action = json_get_str(ev, "status"); /* engines before API 1.22 */
	if (!id)
		id = json_get_str(ev, "id");
	if ((type && strcmp(type, "container") != 0) || !action || !valid_id(id))
		goto out;
	double tn;
	if (json_num(json_get(ev, "timeNano"), 1e18, 1e20, &tn) && (int64_t)tn > d->last_event_ns)
		d->last_event_ns = (int64_t)tn;
	post_event(d, ev, action, id);
	if (!action_matters(action))
		goto out;
	bool destroyed = strcmp(action, "destroy") == 0;
	for (size_t i = 0; i < d->npend; i++) {
		if (strcmp(d->pend[i].id, id) == 0) {
			d->pend[i].destroyed = destroyed;
			goto out;
		}
	}
	if (d->npend == d->pend_cap) {
		size_t cap = d->pend_cap ? d->pend_cap * 2 : 16;
		struct pending *p = cap <= PENDING_MAX ? realloc(d->pend, cap * sizeof(*p)) : NULL;
		if (!p) {
			d->pend_overflow = true;
			goto out;
		}
		d->pend = p;
		d->pend_cap = cap;
	}
	snprintf(d->pend[d->npend].id, sizeof(d->pend[0].id), "%s", id);
	d->pend[d->npend++].destroyed = destroyed;
out:
	json_doc_free(&doc);
}

/* Splits the stream into lines; a line longer than EVENT_LINE_CAP is dropped. */
static size_t event_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct req *r = arg;
	struct docker_client *d = r->d;
	size_t n = size * nmemb;
	if (stopping(d))
		return 0;
	long status = 0;
	curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		buf_add(&r->body, p, n); /* an error message: keep its start */
		return n;
	}
	while (n > 0) {
		char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;
		if (!d->line_skip) {
			buf_add(&d->line, p, take);
			if (d->line.overflow) {
				d->line_skip = true;
				log_limited(&d->ll, LOG_WARN, "docker: %s: event longer than %zu bytes dropped",
					    d->sock, EVENT_LINE_CAP);
			}
		}
		if (!nl)
			break;
		if (!d->line_skip)
			event_line(d, d->line.data ? d->line.data : "", d->line.len);
		buf_reset(&d->line);
		d->line_skip = false;
		p += take + 1;
		n -= take + 1;
	}
	return size * nmemb;
}

/* Inspects (or removes) every container the stream named so far. New events
 * arriving meanwhile queue behind. */
static int handle_pending(struct docker_client *d)
{
	struct pending *p = d->pend;
	size_t n = d->npend;
	int rc = 0;
	d->pend = NULL;
	d->npend = d->pend_cap = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (p[i].destroyed) {
			struct coll_meta m;
			memset(&m, 0, sizeof(m));
			m.restart_count = -1;
			coll_meta_post(d->q, p[i].id, &m, true);
		} else {
			rc = inspect(d, p[i].id);
		}
	}
	free(p);
	return rc;
}

/*
 * Follows /events from since_ns on until the stream ends, fails or we stop.
 * The stream has no total timeout (it is quiet while nothing happens), but
 * its response must begin within timeout_ms, so a hung engine is noticed.
 * Always returns -errno with d->err set (or -ECANCELED).
 */
static int follow_events(struct docker_client *d, int64_t since_ns)
{
	char path[192];
	struct req r;
	snprintf(path, sizeof(path),
		 "%s/events?since=%lld.%09lld&filters=%%7B%%22type%%22%%3A%%5B%%22container%%22%%5D%%7D",
		 d->api, (long long)(since_ns / 1000000000), (long long)(since_ns % 1000000000));
	buf_reset(&d->line);
	d->line_skip = false;
	d->pend_overflow = false;
	int rc = req_init(d, &r, path, 4096, event_cb);
	if (rc == 0 && curl_multi_add_handle(d->multi, r.h) != CURLM_OK)
		rc = -ENOMEM;
	if (rc < 0) {
		snprintf(d->err, sizeof(d->err), "GET %s: %s", path, strerror(-rc));
		req_fini(&r);
		return rc;
	}
	int64_t start_ns = mono_ns();
	bool answered = false;
	while (rc == 0) {
		if (stopping(d)) {
			rc = -ECANCELED;
		} else if (d->npend) {
			rc = handle_pending(d);
		} else if (d->pend_overflow) {
			snprintf(d->err, sizeof(d->err), "GET %s: more than %d containers changed at once; resyncing",
				 path, PENDING_MAX);
			rc = -EOVERFLOW;
		} else if (r.done) {
			long status = req_status(&r);
			if (r.rc != CURLE_OK)
				describe(d, &r, path);
			else if (status != 200)
				snprintf(d->err, sizeof(d->err), "GET %s: HTTP %ld %.200s", path, status,
					 r.body.data ? r.body.data : "");
			else
				snprintf(d->err, sizeof(d->err), "GET %s: event stream ended", path);
			rc = -EPIPE;
		} else if (!answered) {
			answered = req_status(&r) != 0;
			if (!answered && mono_ns() - start_ns > d->timeout_ms * 1000000) {
				snprintf(d->err, sizeof(d->err), "GET %s: no answer within %lld ms",
					 path, (long long)d->timeout_ms);
				rc = -ETIMEDOUT;
			}
		}
		if (rc == 0 && !d->npend && !d->pend_overflow && !r.done)
			turn(d);
	}
	curl_multi_remove_handle(d->multi, r.h);
	req_fini(&r);
	free(d->pend);
	d->pend = NULL;
	d->npend = d->pend_cap = 0;
	return rc;
}

/* Sleeps ms, or less when docker_stop asks. */
static void backoff(struct docker_client *d, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&d->lock);
	while (!stopping(d) && pthread_cond_timedwait(&d->cond, &d->lock, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&d->lock);
}

static void *run(void *arg)
{
	struct docker_client *d = arg;
	int64_t wait_ms = BACKOFF_MIN_MS;
	while (!stopping(d)) {
		d->err[0] = '\0';
		/* A new stream begins where the last one saw its newest event (so
		 * the timeline misses nothing the engine still remembers), but at
		 * most RESUME_MAX_MS back; the first begins now. */
		int64_t since_ns = now_ms() * 1000000;
		if (d->last_event_ns && d->last_event_ns + 1000 > since_ns - RESUME_MAX_MS * 1000000)
			since_ns = d->last_event_ns + 1000; /* timeNano went through a double */
		int rc = learn_version(d);
		if (rc == 0)
			rc = resync(d);
		/* After the metadata is posted: the registry stops holding
		 * containers without it (coll_registry_hold_unnamed). */
		__atomic_store_n(&d->synced, 1, __ATOMIC_RELEASE);
		if (rc == 0) {
			wait_ms = BACKOFF_MIN_MS; /* it answered in full: start again quickly */
			rc = follow_events(d, since_ns);
		}
		set_up(d, 0);
		if (stopping(d))
			break;
		log_limited(&d->ll, LOG_WARN, "docker: %s: %s", d->sock,
			    d->err[0] ? d->err : strerror(-rc));
		backoff(d, wait_ms);
		wait_ms = wait_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : wait_ms * 2;
	}
	return NULL;
}

/* ---- actions ------------------------------------------------------------ */

static size_t action_body_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	buf_add(b, p, size * nmemb);
	return size * nmemb; /* past the cap the rest is dropped, not an error */
}

static int action_progress_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow,
			      curl_off_t ultotal, curl_off_t ulnow)
{
	return stopping(arg) ? 1 : 0;
}

/*
 * The engine's own words for a refusal: {"message": "..."}; else the start
 * of whatever it said.
 */
static void action_message(const struct buf *b, char *msg, size_t msgsize)
{
	struct json_doc doc;
	if (!b->len || b->overflow) {
		msg[0] = '\0';
		return;
	}
	if (json_parse(&doc, b->data, b->len, NULL) == 0) {
		const char *m = json_get_str(doc.root, "message");
		snprintf(msg, msgsize, "%s", m ? m : "");
		json_doc_free(&doc);
		return;
	}
	snprintf(msg, msgsize, "%.200s", b->data);
	msg[strcspn(msg, "\r\n")] = '\0';
}

int docker_action(struct docker_client *d, const char *id, const char *action,
		  const char *query, int64_t timeout_ms, char *msg, size_t msgsize)
{
	static const char *const actions[] = {
		"start", "stop", "restart", "pause", "unpause", "kill",
	};
	bool known = false;
	for (size_t i = 0; i < ARRAY_LEN(actions) && action; i++)
		known |= strcmp(action, actions[i]) == 0;
	msg[0] = '\0';
	if (!d) {
		snprintf(msg, msgsize, "the Docker client is disabled (docker.enabled: false)");
		return -ENOTCONN;
	}
	if (!known || !valid_id(id)) {
		snprintf(msg, msgsize, "bad container id or action");
		return -EINVAL;
	}
	/* Unversioned paths: the engine serves its current API there, and
	 * these endpoints have not changed since API 1.12. d->api belongs to
	 * the client's thread. */
	char url[512];
	if (snprintf(url, sizeof(url), "http://localhost/containers/%s/%s%s%s", id, action,
		     query && *query ? "?" : "", query ? query : "") >= (int)sizeof(url)) {
		snprintf(msg, msgsize, "query too long");
		return -EINVAL;
	}
	CURL *h = curl_easy_init();
	if (!h) {
		snprintf(msg, msgsize, "out of memory");
		return -ENOMEM;
	}
	struct buf body;
	char errbuf[CURL_ERROR_SIZE] = "";
	buf_init(&body, ACTION_CAP);
	int64_t connect_ms = d->timeout_ms < timeout_ms ? d->timeout_ms : timeout_ms;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, d->sock);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, action_body_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, action_progress_cb);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, d);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	int rc;
	if (cc == CURLE_OPERATION_TIMEDOUT) {
		snprintf(msg, msgsize, "the Docker engine at %s did not answer within %lld ms",
			 d->sock, (long long)timeout_ms);
		rc = -ETIMEDOUT;
	} else if (cc == CURLE_ABORTED_BY_CALLBACK) {
		snprintf(msg, msgsize, "the agent is shutting down");
		rc = -ECANCELED;
	} else if (cc != CURLE_OK) {
		long os_errno = 0;
		curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
		snprintf(msg, msgsize, "the Docker engine at %s: %s", d->sock,
			 cc == CURLE_COULDNT_CONNECT && os_errno ? strerror((int)os_errno) :
			 errbuf[0] ? errbuf : curl_easy_strerror(cc));
		rc = -EIO;
	} else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		action_message(&body, msg, msgsize);
		rc = (int)status;
	}
	buf_fini(&body);
	curl_easy_cleanup(h);
	return rc;
}

/* ---- lifecycle ---------------------------------------------------------- */

/*
 * Starts the client thread for the engine socket at socket_path (host-root
 * relative; a unix socket path is at most 107 bytes once prefixed). Each
 * request may take timeout_ms (<= 0: 5 s). Updates go to q, which must
 * outlive the client. Returns the client, or NULL (logged) when the path is
 * unusable or resources run out. Call from the agent's main thread, which
 * owns the result and frees it with docker_stop.
 */
struct docker_client *docker_start(const char *socket_path, int64_t timeout_ms,
				   struct coll_meta_queue *q, struct coll_event_log *events)
{
	struct docker_client *d = calloc(1, sizeof(*d));
	if (!d) {
		log_error("docker: %s: out of memory", socket_path);
		return NULL;
	}
	if (hostroot_path(d->sock, sizeof(d->sock), socket_path) < 0) {
		log_error("docker: %s: socket path too long (a unix socket path holds %zu bytes)",
			  socket_path, sizeof(d->sock) - 1);
		free(d);
		return NULL;
	}
	snprintf(d->what, sizeof(d->what), "docker: %s", d->sock);
	d->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
	d->q = q;
	d->events = events;
	buf_init(&d->line, EVENT_LINE_CAP);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("docker: %s: cannot initialise libcurl", d->sock);
		free(d);
		return NULL;
	}
	d->multi = curl_multi_init();
	if (!d->multi)
		goto fail_multi;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&d->lock, NULL);
	int rc = pthread_create(&d->thread, NULL, run, d);
	if (rc != 0) {
		log_error("docker: %s: cannot start thread: %s", d->sock, strerror(rc));
		goto fail_thread;
	}
	pthread_setname_np(d->thread, "docker");
	return d;

fail_thread:
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	curl_multi_cleanup(d->multi);
fail_multi:
	curl_global_cleanup();
	free(d);
	return NULL;
}

/*
 * Makes every request in flight, the thread's and docker_action's, give up
 * now (the agent is shutting down). docker_stop still has to be called.
 * Any thread; NULL is fine.
 */
void docker_interrupt(struct docker_client *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	__atomic_store_n(&d->stopping, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	curl_multi_wakeup(d->multi);
}

/*
 * Stops the thread and frees the client. Wakes the thread out of any
 * transfer or backoff at once, so it returns well within timeout_ms even
 * when the engine hangs. Call from the thread that started it; NULL is fine.
 */
void docker_stop(struct docker_client *d)
{
	if (!d)
		return;
	docker_interrupt(d);
	pthread_join(d->thread, NULL);
	curl_multi_cleanup(d->multi);
	curl_global_cleanup();
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	buf_fini(&d->line);
	free(d->pend);
	free(d);
}
