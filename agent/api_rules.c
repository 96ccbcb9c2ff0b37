/*
 * api_rules.c - GET /api/v1/rules, GET /api/v1/alerts and POST /-/reload.
 *
 * The first two answer in Prometheus' shapes (the engine writes the data,
 * rules_json.c), with Prometheus' filters on /api/v1/rules: type=alert|record,
 * rule_name[]=, rule_group[]=, file[]=, exclude_alerts=true. /-/reload
 * re-reads the rule files: it needs the admin token (it changes what the
 * agent does), answers 200 when the new rules run and 500 with every problem
 * when they do not (the old rules keep running).
 */
#include "agent/agent.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RULES_MAX_FILTERS 64

struct filters {
	const char *names[RULES_MAX_FILTERS], *groups[RULES_MAX_FILTERS],
		*files[RULES_MAX_FILTERS];
	size_t nnames, ngroups, nfiles;
	const char *type, *exclude;
};

static enum MHD_Result on_arg(void *cls, enum MHD_ValueKind kind, const char *key,
			      const char *value)
{
	struct filters *f = cls;
	if (!value)
		return MHD_YES;
	if (!strcmp(key, "rule_name[]") && f->nnames < RULES_MAX_FILTERS)
		f->names[f->nnames++] = value;
	else if (!strcmp(key, "rule_group[]") && f->ngroups < RULES_MAX_FILTERS)
		f->groups[f->ngroups++] = value;
	else if (!strcmp(key, "file[]") && f->nfiles < RULES_MAX_FILTERS)
		f->files[f->nfiles++] = value;
	else if (!strcmp(key, "type"))
		f->type = value;
	else if (!strcmp(key, "exclude_alerts"))
		f->exclude = value;
	return MHD_YES;
}

static int no_rules(struct http_resp *resp)
{
	return http_error(resp, 503, "unavailable",
			  "rule evaluation is off (the store is disabled: rules need it)");
}

int api_rules(struct http_req *req, struct http_resp *resp)
{
	struct alert_engine *e = req->st->rules;
	if (!e)
		return no_rules(resp);
	struct filters f = { 0 };
	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, on_arg, &f);
	struct alert_rules_filter af = {
		.names = f.names, .nnames = f.nnames, .groups = f.groups, .ngroups = f.ngroups,
		.files = f.files, .nfiles = f.nfiles,
	};
	if (f.type && *f.type) {
		if (!strcmp(f.type, "alert"))
			af.type = 1;
		else if (!strcmp(f.type, "record"))
			af.type = 2;
		else
			return http_error(resp, 400, "bad_data",
					  "invalid query parameter type: expected alert or record");
	}
	if (f.exclude && *f.exclude) {
		if (!strcmp(f.exclude, "true") || !strcmp(f.exclude, "1"))
			af.exclude_alerts = true;
		else if (strcmp(f.exclude, "false") && strcmp(f.exclude, "0"))
			return http_error(resp, 400, "bad_data",
					  "invalid query parameter exclude_alerts: expected true or false");
	}
	resp->type = "application/json";
	resp->gzip_ok = true;
	buf_puts(&resp->body, "{\"status\":\"success\",\"data\":");
	alert_engine_rules_json(e, &af, now_ms(), &resp->body);
	buf_putc(&resp->body, '}');
	return 200;
}

int api_alerts(struct http_req *req, struct http_resp *resp)
{
	struct alert_engine *e = req->st->rules;
	if (!e)
		return no_rules(resp);
	resp->type = "application/json";
	resp->gzip_ok = true;
	buf_puts(&resp->body, "{\"status\":\"success\",\"data\":");
	alert_engine_alerts_json(e, now_ms(), &resp->body);
	buf_putc(&resp->body, '}');
	return 200;
}

/* NULL when the request carries the admin token, else why not. */
static const char *refusal(const struct http_req *req)
{
	return admin_refusal(req, "reloading is disabled: no admin token is configured "
			     "(auth.admin_token_file); send SIGHUP instead",
			     "reloading needs the admin token: send \"Authorization: Bearer <token>\"");
}

int api_reload(struct http_req *req, struct http_resp *resp)
{
	const char *why = refusal(req);
	if (why)
		return http_error(resp, 401, "unauthorized", why);
	struct alert_engine *e = req->st->rules;
	if (!e)
		return no_rules(resp);
	size_t cap = 64u << 10;
	char *err = malloc(cap);
	if (!err)
		return http_error(resp, 500, "internal", "out of memory");
	int rc = agent_rules_reload(req->st, err, cap);
	int status;
	if (rc < 0) {
		status = http_error(resp, 500, "bad_data", err);
	} else {
		struct alert_engine_stats s;
		alert_engine_stats(e, &s);
		resp->type = "application/json";
		buf_printf(&resp->body, "{\"status\":\"success\",\"data\":{\"groups\":%zu,"
			   "\"rules\":%zu}}", s.groups, s.rules);
		status = 200;
	}
	free(err);
	return status;
}
