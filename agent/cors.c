/*
 * cors.c - Cross-Origin Resource Sharing, off unless http.cors_origins
 * lists origins.
 *
 * A browser runs pages of every origin on the same host as the agent, and
 * their requests to 127.0.0.1 come from loopback, where the agent asks no
 * credentials unless auth: is set. So CORS is opt-in, and even then it is
 * given only to the plain reads (/metrics, the query API, containers,
 * rules, alerts, events: access_classify's ACCESS_READ) through GET and
 * HEAD; logs, environments, process lists, silences, the notification log,
 * actions and admin routes never carry an Access-Control-Allow-Origin, so a
 * page of another origin cannot read them through the user's browser. "*"
 * opens the reads to every origin without credentials (no
 * Access-Control-Allow-Credentials, Authorization not an allowed header);
 * an origin listed by name gets its own origin echoed with credentials
 * allowed, so a dashboard of that origin may send its read token.
 */
#include "agent/agent.h"
#include "agent/http_priv.h"

#include <string.h>
#include <strings.h>

static bool method_is_read(const char *m)
{
	return m && (!strcmp(m, "GET") || !strcmp(m, "HEAD"));
}

const char *cors_allow(const struct http_config *c, const char *origin, const char *method,
		       const char *url, bool *credentials)
{
	*credentials = false;
	if (!c || !c->ncors_origins || !origin || !*origin || !method_is_read(method))
		return NULL;
	if (access_classify(method, url) != ACCESS_READ)
		return NULL;
	bool any = false;
	for (size_t i = 0; i < c->ncors_origins; i++) {
		if (!strcmp(c->cors_origins[i], "*")) {
			any = true;
		} else if (!strcasecmp(c->cors_origins[i], origin)) {
			*credentials = true;
			return origin;
		}
	}
	return any ? "*" : NULL;
}

int cors_preflight(const struct http_config *c, const char *origin, const char *req_method,
		   const char *url, struct http_resp *resp)
{
	bool cred;
	const char *allow = cors_allow(c, origin, req_method, url, &cred);
	if (!allow)
		return 0;
	buf_reset(&resp->body);
	resp->cors_origin = allow;
	resp->cors_credentials = cred;
	resp->cors_preflight = true;
	return 204;
}
