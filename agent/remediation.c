/*
 * remediation.c - what the agent gives alerting/remediate.c: a restart
 * through the container's runtime (Docker's POST /containers/{id}/restart,
 * as `monitor restart` does) and a record of each restart on the event
 * timeline (type "remediation"), plus the decision whether remediation runs
 * at all: only with an admin token configured (auth.admin_token_file) and
 * remediation.enabled, so a rule label alone never makes the agent touch a
 * container. The remediator is then an alert sink of the rules engine.
 * Also the silences' and remediation's own series on /metrics.
 */
#include "agent/agent.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int restart(void *arg, const char *ref, int64_t stop_timeout_s, char *msg, size_t msgsize)
{
	struct agent_state *st = arg;
	if (!st->docker) {
		snprintf(msg, msgsize, "no Docker engine to restart it through (docker.enabled "
			 "is false); other runtimes cannot restart a container");
		return -ENOTSUP;
	}
	char query[32], why[400] = "";
	snprintf(query, sizeof(query), "t=%lld", (long long)stop_timeout_s);
	int rc = docker_action(st->docker, ref, "restart", query,
			       st->action_timeout_ms + stop_timeout_s * 1000, why, sizeof(why));
	if (rc == 204 || rc == 200)
		return 0;
	if (rc > 0) {
		snprintf(msg, msgsize, "the Docker engine answered %d: %s", rc,
			 why[0] ? why : "no details");
		return rc == 404 ? -ENOENT : -EIO;
	}
	snprintf(msg, msgsize, "%s", why[0] ? why : strerror(-rc));
	return rc;
}

static void record(void *arg, const char *ref, const char *name, const char *detail)
{
	struct agent_state *st = arg;
	struct coll_event ev;
	memset(&ev, 0, sizeof(ev));
	snprintf(ev.id, sizeof(ev.id), "%.79s", ref);
	snprintf(ev.name, sizeof(ev.name), "%.127s", name && *name ? name : ref);
	snprintf(ev.type, sizeof(ev.type), "remediation");
	snprintf(ev.detail, sizeof(ev.detail), "%.255s", detail);
	coll_event_post(st->events, &ev);
}

/* Where the remediator hands on the alerts it decided about (with their
 * annotation "remediation"): the notifier, so the notification says what
 * was done, and the rules engine, so /api/v1/alerts does. */
static void handed_on(void *arg, const struct alert_msg *alerts, size_t n, int64_t now_ms)
{
	struct agent_state *st = arg;
	if (st->notifier)
		notify_sink(st->notifier, alerts, n, now_ms);
	if (st->rules)
		alert_engine_note_sink(st->rules, alerts, n, now_ms);
}

void agent_remediation_follow(struct agent_state *st)
{
	if (!st->remediator)
		return;
	alert_remediator_set_next(st->remediator, handed_on, st);
	if (!st->rules || alert_engine_add_sink(st->rules, alert_remediate, st->remediator) < 0)
		log_warn("remediation: no rules engine to follow; nothing will be restarted");
}

int agent_remediation_start(struct alert_remediator **out, struct agent_state *st,
			    const struct alert_remediation_config *cfg)
{
	*out = NULL;
	if (!cfg->enabled) {
		log_info("remediation: off (remediation.enabled: false)");
		return 0;
	}
	if (!st->admin_token) {
		log_info("remediation: off: no admin token is configured (auth.admin_token_file); "
			 "rules with action: restart only notify");
		return 0;
	}
	struct alert_remediation_ops ops = { restart, record, st };
	int rc = alert_remediator_new(out, cfg, &ops, true);
	if (rc < 0) {
		log_error("remediation: cannot start: %s", strerror(-rc));
		return rc;
	}
	alert_remediator_set_silencer(*out, alert_silenced, st->silences);
	alert_remediator_set_store(*out, st->kv, now_ms());
	log_info("remediation: on for rules with the label action: restart, at most %d restarts "
		 "per container and hour, %lld s apart", cfg->max_restarts_per_hour,
		 (long long)(cfg->min_interval_ms / 1000));
	return 0;
}

void agent_remediation_metrics(struct agent_state *st, struct coll_sink *sink)
{
	if (st->silences) {
		size_t counts[ALERT_SILENCE__STATES];
		alert_silences_count(st->silences, now_ms(), counts);
		for (int i = 0; i < ALERT_SILENCE__STATES; i++) {
			char extra[32];
			snprintf(extra, sizeof(extra), "state=\"%s\"",
				 alert_silence_state_name((enum alert_silence_state)i));
			sink_emit(sink, M_SILENCES, extra, (double)counts[i]);
		}
	}
	if (st->remediator) {
		struct alert_remediation_stats rs;
		alert_remediator_stats(st->remediator, &rs);
		sink_emit(sink, M_REMEDIATION_RESTARTS, "result=\"done\"", (double)rs.restarts);
		sink_emit(sink, M_REMEDIATION_RESTARTS, "result=\"failed\"", (double)rs.failures);
		sink_emit(sink, M_REMEDIATION_CAPPED, NULL, (double)rs.capped);
	}
}
