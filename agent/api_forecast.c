/*
 * api_forecast.c - GET /api/v1/containers/{id}/forecast: the capacity
 * forecasts of one container (alerting.h, forecast_container_json) as of
 * the forecaster's last refresh. The container is found in the newest
 * snapshot as every container endpoint finds it; its id label (the cgroup
 * path) is what the forecasts are keyed by.
 */
#include "agent/agent.h"

#include <errno.h>
#include <stdio.h>

int api_forecast(struct http_req *req, struct http_resp *resp)
{
	struct snapshot *s = agent_snapshot(req->st);
	if (!s)
		return http_error(resp, 503, "unavailable",
				  "no data yet: the first collection tick has not finished");
	const struct snap_container *list[API_MATCHES_LISTED];
	size_t n = api_resolve(s, req->arg, list, API_MATCHES_LISTED);
	int status = 200;
	if (n == 0) {
		char msg[320];
		snprintf(msg, sizeof(msg), "no container with id or name \"%.256s\"", req->arg);
		status = http_error(resp, 404, "not_found", msg);
	} else if (n > 1) {
		resp->type = "application/json";
		status = api_ambiguous(&resp->body, req->arg, list, n);
	} else {
		const struct snap_container *c = list[0];
		resp->type = "application/json";
		buf_puts(&resp->body, "{\"status\":\"success\",\"data\":");
		forecast_container_json(req->st->forecast, c->cgroup ? c->cgroup : "", c->id,
					c->name, &resp->body);
		buf_putc(&resp->body, '}');
		if (resp->body.overflow)
			status = http_error(resp, 500, "internal", "answer too large");
	}
	snapshot_unref(s);
	return status;
}
