/*
 * agent_rules.c - the rules engine in the agent: started after the store,
 * the silences and the notifier it uses; its outputs moved into the store by
 * the tick (alert_engine_drain_store in agent.c); reloaded (config file
 * and rule files) on SIGHUP and POST /-/reload; its health on /metrics.
 *
 * Rules read the store, so without one (storage.enabled: false) there is no
 * engine and the rules API answers 503. A broken rule file at the start is
 * reported (log, monitor_rules_last_reload_success 0, /api/v1/rules empty)
 * and the agent runs on without rules until a reload succeeds: collection
 * is worth more than refusing to start.
 */
#include "agent/agent.h"
#include "agent/rw.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The engine's config from the agent's: rule_files: and rules:, the
 * external URL (default: the listen address) and $externalLabels (the
 * top-level external_labels:, as Prometheus). */
static void rules_config_of(const struct agent_config *cfg, struct alert_rules_config *rc)
{
	*rc = cfg->rules;
	if (!rc->external_url[0])
		snprintf(rc->external_url, sizeof(rc->external_url), "http://%s", cfg->listen);
	for (size_t i = 0; cfg->rw && i < cfg->rw->nexternal &&
			   rc->nexternal_labels < ALERT_MAX_EXTERNAL_LABELS; i++) {
		snprintf(rc->external_labels[rc->nexternal_labels].name,
			 sizeof(rc->external_labels[0].name), "%s", cfg->rw->ext_name[i]);
		snprintf(rc->external_labels[rc->nexternal_labels].value,
			 sizeof(rc->external_labels[0].value), "%s", cfg->rw->ext_value[i]);
		rc->nexternal_labels++;
	}
}

int agent_rules_start(struct agent_config *cfg, struct agent_state *st)
{
	if (!st->store) {
		if (cfg->rules.nfiles)
			log_warn("rules: storage is off (storage.enabled: false) and rules read the "
				 "store: rule_files are not evaluated");
		return 0;
	}
	struct alert_rules_config *rc = malloc(sizeof(*rc));
	if (!rc)
		return -ENOMEM;
	rules_config_of(cfg, rc);
	st->cfg = cfg;
	struct alert_engine_opts o = {
		.cfg = rc, .store = st->store, .raw_retention_ms = st->raw_retention_ms,
		.query = st->query, .kv = st->kv, .logs = st->logs,
		.silenced = st->silences ? alert_silenced : NULL, .silenced_arg = st->silences,
	};
	struct alert_engine *e;
	int r = alert_engine_new(&e, &o);
	free(rc);
	if (r < 0)
		return r;
	/* The notifier, before the thread starts so the first round's alerts
	 * reach it; agent.c adds remediation after (it passes the alerts it
	 * acted on to the notifier again with a "remediation" annotation, and
	 * the notifier keeps the latest copy of an alert). */
	if (st->notifier)
		alert_engine_add_sink(e, notify_sink, st->notifier);

	size_t cap = 64u << 10;
	char *err = malloc(cap);
	if (err && alert_engine_load(e, err, cap) < 0)
		log_error("rules: the rule files do not load; running without rules until a "
			  "reload (SIGHUP or POST /-/reload) succeeds:\n%s", err);
	free(err);
	struct alert_engine_stats s;
	alert_engine_stats(e, &s);
	if (s.last_reload_ok && s.rules)
		log_info("rules: %zu rules in %zu groups", s.rules, s.groups);
	if ((r = alert_engine_start(e)) < 0) {
		alert_engine_free(e);
		return r;
	}
	st->rules = e;
	return 0;
}

/*
 * A reload reads the config file again, so that a changed rule_files: list
 * (or rules: section) takes effect, as Prometheus does on SIGHUP. Only the
 * rules part is applied; where the data lives and the listen address stay
 * as started (flags may have set them). A config that does not load is a
 * failed reload like a broken rule file: the old rules keep running.
 */
static int reload_from_config(struct agent_state *st, char *err, size_t cap)
{
	const struct agent_config *run = st->cfg;
	struct agent_config *nc = malloc(sizeof(*nc));
	struct alert_rules_config *rc = malloc(sizeof(*rc));
	int r = -ENOMEM;
	if (!nc || !rc) {
		snprintf(err, cap, "out of memory");
		alert_engine_load_failed(st->rules, err);
		goto out_free;
	}
	config_defaults(nc);
	char cerr[2048];
	r = config_load(nc, run->config_path, cerr, sizeof(cerr));
	if (r < 0) {
		snprintf(err, cap, "config: %s", cerr);
		alert_engine_load_failed(st->rules, err);
		goto out_fini;
	}
	snprintf(nc->data_dir, sizeof(nc->data_dir), "%s", run->data_dir);
	snprintf(nc->listen, sizeof(nc->listen), "%s", run->listen);
	agent_default_rules(nc);
	rules_config_of(nc, rc);
	r = alert_engine_configure(st->rules, rc, err, cap);
out_fini:
	config_fini(nc);
out_free:
	free(nc);
	free(rc);
	return r;
}

/* A SIGHUP (the loop thread) and a POST /-/reload (an HTTP thread) can
 * come together: both rewrite default_rules.yml through one .tmp name and
 * reconfigure the engine, so they take turns. */
static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;

int agent_rules_reload(struct agent_state *st, char *err, size_t cap)
{
	if (!st->rules)
		return -ENOENT;
	pthread_mutex_lock(&reload_lock);
	int r = st->cfg && st->cfg->config_path[0] ? reload_from_config(st, err, cap)
						   : alert_engine_load(st->rules, err, cap);
	pthread_mutex_unlock(&reload_lock);
	if (r < 0) {
		log_error("rules: reload failed, the previous rules keep running:\n%s", err);
		return r;
	}
	struct alert_engine_stats s;
	alert_engine_stats(st->rules, &s);
	log_info("rules: reloaded: %zu rules in %zu groups", s.rules, s.groups);
	return 0;
}

void agent_rules_stop(struct agent_state *st)
{
	alert_engine_free(st->rules);
	st->rules = NULL;
}

void agent_rules_metrics(struct alert_engine *e, struct coll_sink *sink)
{
	if (!e)
		return;
	struct alert_engine_stats s;
	alert_engine_stats(e, &s);
	sink_emit(sink, M_RULES_RELOAD_OK, NULL, s.last_reload_ok);
	sink_emit(sink, M_RULES_RELOAD_TIME, NULL, (double)s.last_reload_ok_ms / 1000.0);
	sink_emit(sink, M_RULES_LOADED, NULL, (double)s.rules);
	sink_emit(sink, M_RULES_GROUPS, NULL, (double)s.groups);
	sink_emit(sink, M_RULES_EVALS, NULL, (double)s.evaluations);
	sink_emit(sink, M_RULES_EVAL_FAILURES, NULL, (double)s.eval_failures);
	sink_emit(sink, M_RULES_GROUP_SECONDS, NULL, s.last_cycle_seconds);
	sink_emit(sink, M_RULES_ALERTS, "state=\"firing\"", (double)s.firing);
	sink_emit(sink, M_RULES_ALERTS, "state=\"pending\"", (double)s.pending);
	sink_emit(sink, M_RULES_DROPPED, NULL, (double)s.samples_dropped);
}
