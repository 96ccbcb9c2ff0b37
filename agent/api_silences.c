/*
 * api_silences.c - the silences endpoints, in Alertmanager's API v2 shapes
 * so amtool-style clients and Grafana's Alertmanager data source read them:
 *
 *   GET    /api/v2/silences[?filter=MATCHER...]  gettableSilences (a JSON array)
 *   POST   /api/v2/silences                      postableSilence -> {"silenceID": id}
 *   GET    /api/v2/silence/{id}                  one gettableSilence
 *   DELETE /api/v2/silence/{id}                  expire it
 *
 * Reading needs nothing; creating and expiring change what is notified, so
 * they need the admin token ("Authorization: Bearer <token>", compared in
 * constant time), as container actions do, and are refused when no token
 * is configured. Errors use the agent's JSON error shape. The silences
 * themselves live in alerting/silence.c; this file only speaks HTTP.
 */
#include "agent/agent.h"
#include "alerting/alerting.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#define FILTERS_MAX 16

/* NULL when the request carries the admin token, else why not. */
static const char *refusal(const struct http_req *req)
{
	return admin_refusal(req, "silences cannot be changed: no admin token is configured "
			     "(auth.admin_token_file)",
			     "changing silences needs the admin token: send "
			     "\"Authorization: Bearer <token>\"");
}

static int unavailable(struct http_resp *resp)
{
	return http_error(resp, 503, "unavailable", "silences are not available in this agent");
}

struct filters {
	struct alert_matcher m[FILTERS_MAX];
	size_t n;
	char err[512];
	bool bad;
};

static enum MHD_Result collect_filter(void *cls, enum MHD_ValueKind kind, const char *key,
				      const char *value)
{
	struct filters *f = cls;
	if (strcmp(key, "filter") != 0 || f->bad || !value)
		return MHD_YES;
	if (f->n == FILTERS_MAX) {
		snprintf(f->err, sizeof(f->err), "at most %d filter= matchers", FILTERS_MAX);
		f->bad = true;
		return MHD_YES;
	}
	if (alert_matcher_parse(value, &f->m[f->n], f->err, sizeof(f->err)) < 0)
		f->bad = true;
	else
		f->n++;
	return MHD_YES;
}

int api_silences_list(struct http_req *req, struct http_resp *resp)
{
	struct alert_silences *ss = req->st->silences;
	if (!ss)
		return unavailable(resp);
	struct filters f = { .n = 0 };
	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, collect_filter, &f);
	int status = 200;
	if (f.bad) {
		char msg[600];
		snprintf(msg, sizeof(msg), "filter: %s", f.err);
		status = http_error(resp, 400, "bad_data", msg);
	} else if (alert_silences_list_json(ss, now_ms(), f.m, f.n, &resp->body) < 0) {
		status = http_error(resp, 500, "internal", "the list of silences is too large");
	} else {
		resp->type = "application/json";
		resp->gzip_ok = true;
	}
	for (size_t i = 0; i < f.n; i++)
		alert_matcher_fini(&f.m[i]);
	return status;
}

int api_silences_post(struct http_req *req, struct http_resp *resp)
{
	struct alert_silences *ss = req->st->silences;
	if (!ss)
		return unavailable(resp);
	const char *why = refusal(req);
	if (why) {
		log_warn("silences: create refused: %s", why);
		return http_error(resp, 401, "unauthorized", why);
	}
	char id[ALERT_SILENCE_ID_SIZE], err[600];
	int rc = alert_silences_post(ss, req->body, req->body_len, now_ms(), id, sizeof(id), err,
				     sizeof(err));
	if (rc == -EINVAL)
		return http_error(resp, 400, "bad_data", err);
	if (rc == -ENOENT)
		return http_error(resp, 404, "not_found", err);
	if (rc == -ENOSPC)
		return http_error(resp, 507, "full", err);
	if (rc < 0)
		return http_error(resp, 500, "internal", err[0] ? err : strerror(-rc));
	log_info("silences: %s set", id);
	buf_puts(&resp->body, "{\"silenceID\":");
	buf_put_json_str(&resp->body, id);
	buf_putc(&resp->body, '}');
	resp->type = "application/json";
	return 200;
}

int api_silence_get(struct http_req *req, struct http_resp *resp)
{
	struct alert_silences *ss = req->st->silences;
	if (!ss)
		return unavailable(resp);
	if (alert_silence_get_json(ss, req->arg, now_ms(), &resp->body) < 0) {
		char msg[128];
		snprintf(msg, sizeof(msg), "no silence with id %.64s", req->arg);
		return http_error(resp, 404, "not_found", msg);
	}
	resp->type = "application/json";
	return 200;
}

int api_silence_delete(struct http_req *req, struct http_resp *resp)
{
	struct alert_silences *ss = req->st->silences;
	if (!ss)
		return unavailable(resp);
	const char *why = refusal(req);
	if (why) {
		log_warn("silences: expiring %.64s refused: %s", req->arg, why);
		return http_error(resp, 401, "unauthorized", why);
	}
	char msg[160];
	int rc = alert_silences_expire(ss, req->arg, now_ms());
	if (rc == -ENOENT) {
		snprintf(msg, sizeof(msg), "no silence with id %.64s", req->arg);
		return http_error(resp, 404, "not_found", msg);
	}
	if (rc == -EALREADY) {
		snprintf(msg, sizeof(msg), "silence %.64s has already expired", req->arg);
		return http_error(resp, 409, "conflict", msg);
	}
	log_info("silences: %s expired", req->arg);
	resp->type = "application/json";
	buf_puts(&resp->body, "{\"status\":\"success\"}");
	return 200;
}
