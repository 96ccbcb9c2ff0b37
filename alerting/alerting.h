/*
 * alerting.h - the public face of alerting/: rule evaluation, silences,
 * capacity forecasts and notifications.
 *
 * How the parts meet:
 *   rules (rules*.c) evaluate PromQL over the store and run the
 *   pending -> firing -> resolved state machine; every evaluation they hand
 *   the alerts that are firing or just resolved to the notifier in the shape
 *   Prometheus posts to Alertmanager (struct alert_msg below).
 *   silences (silence*.c) are kept in the state database; rules mark alerts
 *   silenced and the notifier drops silenced alerts, both through
 *   alert_silenced_fn so neither depends on the other's internals.
 *   the notifier (notify*.c) groups, routes, queues and delivers.
 *   forecasts (forecast*.c) fit per-series models over the store.
 *
 * Only the notifiers include curl/curl.h; SQLite is reached through
 * storage.h (struct kv for small state tables).
 *
 * Each part adds its own section below; keep sections self-contained.
 */
#ifndef MONITOR_ALERTING_H
#define MONITOR_ALERTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/util/util.h"
#include "storage/storage.h"

/* ---- the alert handed from rules to the notifier -------------------------- */

/*
 * One alert as Prometheus sends it to Alertmanager (POST /api/v2/alerts):
 * firing while ends_at_ms is in the future (the rules engine sets it to
 * now + 4 * max(evaluation interval, resend delay) and resends), resolved
 * once ends_at_ms <= now. labels are sorted by name and include alertname;
 * strings are owned by whoever built the array and need only live for the
 * duration of the call that receives it.
 */
struct alert_msg {
	const struct store_label *labels;
	size_t nlabels;
	const struct store_label *annotations;
	size_t nannotations;
	int64_t starts_at_ms;
	int64_t ends_at_ms;
	const char *generator_url;       /* may be NULL */
};

/* Whether an alert with these labels is silenced at now_ms; when it is and
 * id is not NULL, the silence's id is written there (NUL-terminated, at most
 * idsize bytes). Any thread. */
typedef bool (*alert_silenced_fn)(void *arg, const struct store_label *labels, size_t n,
				  int64_t now_ms, char *id, size_t idsize);

/* Receives the alerts of one evaluation round (firing and just-resolved);
 * must not block (queue and return). Any thread. */
typedef void (*alert_sink_fn)(void *arg, const struct alert_msg *alerts, size_t n, int64_t now_ms);

#endif
