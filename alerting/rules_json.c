/*
 * rules_json.c - the rules and alerts as Prometheus' HTTP API shows them:
 * the "data" of GET /api/v1/rules and GET /api/v1/alerts, which Grafana's
 * Prometheus data source reads (rules/alerts pages, alert list panel).
 *
 * Shapes follow web/api/v1/api.go: groups with name, file, rules, interval
 * (seconds), limit, evaluationTime, lastEvaluation; alerting rules with
 * state, name, query, duration, keepFiringFor, labels, annotations, alerts,
 * health, lastError, evaluationTime, lastEvaluation, type "alerting";
 * recording rules with name, query, labels, health, ..., type "recording".
 * An alert has labels, annotations, state, activeAt (RFC 3339), value
 * (Go's %e: "1e+00") and keepFiringSince; we add "silenced" (and
 * "silencedBy") from the silencer, and to the rules' data "reload" (success,
 * lastAttempt, lastSuccess, error) about the last load of the files.
 */
#include "alerting/rules_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* strconv.FormatFloat(v, 'e', -1, 64): shortest digits, exponent with at
 * least two digits. */
static void put_value_e(struct buf *b, double v)
{
	if (isnan(v)) {
		buf_puts(b, "NaN");
		return;
	}
	if (isinf(v)) {
		buf_puts(b, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	char tmp[40];
	for (int prec = 0; prec <= 16; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	/* C writes e+00 with at least two exponent digits, as Go does; drop
	 * trailing zeros of the mantissa. */
	char *e = strchr(tmp, 'e'), *d = strchr(tmp, '.');
	if (d && e) {
		char *z = e;
		while (z > d + 1 && z[-1] == '0')
			z--;
		if (z == d + 1)
			z = d;
		memmove(z, e, strlen(e) + 1);
	}
	buf_puts(b, tmp);
}

static void put_time(struct buf *b, int64_t ms)
{
	char t[64];
	if (!ms) {
		buf_puts(b, "\"0001-01-01T00:00:00Z\"");
		return;
	}
	alert_time_format(ms, t, sizeof(t));
	buf_printf(b, "\"%s\"", t);
}

void alert_labels_json(struct buf *b, const struct store_label *l, size_t n)
{
	buf_putc(b, '{');
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_putc(b, ',');
		buf_put_json_str(b, l[i].name);
		buf_putc(b, ':');
		buf_put_json_str(b, l[i].value);
	}
	buf_putc(b, '}');
}

static void put_kv(struct buf *b, const struct rule_kv *kv, size_t n)
{
	buf_putc(b, '{');
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_putc(b, ',');
		buf_put_json_str(b, kv[i].name);
		buf_putc(b, ':');
		buf_put_json_str(b, kv[i].text);
	}
	buf_putc(b, '}');
}

static void put_alert(struct alert_engine *e, struct buf *b, const struct alert_inst *a,
		      int64_t now)
{
	buf_puts(b, "{\"labels\":");
	alert_labels_json(b, a->labels, a->nlabels);
	buf_puts(b, ",\"annotations\":");
	struct store_label *ann = a->note ? malloc((a->nann + 1) * sizeof(*ann)) : NULL;
	if (ann)
		alert_labels_json(b, ann, alert_annotations(a, ann));
	else
		alert_labels_json(b, a->ann, a->nann);
	free(ann);
	buf_printf(b, ",\"state\":\"%s\",\"activeAt\":", alert_state_name(a->state));
	put_time(b, a->active_at);
	buf_puts(b, ",\"value\":\"");
	put_value_e(b, a->value);
	buf_putc(b, '"');
	if (a->keep_firing_since) {
		buf_puts(b, ",\"keepFiringSince\":");
		put_time(b, a->keep_firing_since);
	}
	char id[ALERT_SILENCE_ID_SIZE + 8] = "";
	bool silenced = e->silenced &&
			e->silenced(e->silenced_arg, a->labels, a->nlabels, now, id, sizeof(id));
	buf_printf(b, ",\"silenced\":%s", silenced ? "true" : "false");
	if (silenced && *id) {
		buf_puts(b, ",\"silencedBy\":[");
		buf_put_json_str(b, id);
		buf_putc(b, ']');
	}
	buf_putc(b, '}');
}

static bool in_list(const char *s, const char *const *list, size_t n)
{
	if (!n)
		return true;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], s))
			return true;
	return false;
}

static void put_rule(struct alert_engine *e, struct buf *b, const struct rule *r, bool alerts,
		     int64_t now)
{
	bool alerting = r->kind != RULE_RECORD;
	buf_puts(b, "{");
	if (alerting) {
		enum alert_state st = ALERT_INACTIVE;
		for (size_t i = 0; i < r->nalerts; i++)
			if (r->alerts[i]->state > st)
				st = r->alerts[i]->state;
		buf_printf(b, "\"state\":\"%s\",", alert_state_name(st));
	}
	buf_puts(b, "\"name\":");
	buf_put_json_str(b, r->name);
	buf_puts(b, ",\"query\":");
	buf_put_json_str(b, r->expr_text ? r->expr_text : "");
	if (alerting) {
		buf_printf(b, ",\"duration\":%g,\"keepFiringFor\":%g", (double)r->for_ms / 1000.0,
			   (double)r->keep_firing_ms / 1000.0);
	}
	buf_puts(b, ",\"labels\":");
	put_kv(b, r->labels, r->nlabels);
	if (alerting) {
		buf_puts(b, ",\"annotations\":");
		put_kv(b, r->ann, r->nann);
		if (alerts) {
			buf_puts(b, ",\"alerts\":[");
			bool first = true;
			for (size_t i = 0; i < r->nalerts; i++) {
				if (r->alerts[i]->state == ALERT_INACTIVE)
					continue; /* resolved, kept for resending */
				if (!first)
					buf_putc(b, ',');
				first = false;
				put_alert(e, b, r->alerts[i], now);
			}
			buf_putc(b, ']');
		}
	}
	buf_printf(b, ",\"health\":\"%s\"", !r->evaluated ? "unknown" : r->ok ? "ok" : "err");
	if (r->last_error) {
		buf_puts(b, ",\"lastError\":");
		buf_put_json_str(b, r->last_error);
	}
	buf_printf(b, ",\"evaluationTime\":%.9f,\"lastEvaluation\":", r->eval_seconds);
	put_time(b, r->last_eval_ms);
	buf_printf(b, ",\"type\":\"%s\"", alerting ? "alerting" : "recording");
	if (r->kind == RULE_LOG) {
		buf_puts(b, ",\"log\":{\"match\":");
		buf_put_json_str(b, r->log_match ? r->log_match : "");
		buf_puts(b, ",\"container\":");
		buf_put_json_str(b, r->log_container ? r->log_container : "");
		buf_printf(b, ",\"count\":%lld,\"window\":%g}", (long long)r->log_count,
			   (double)r->log_window_ms / 1000.0);
	}
	buf_putc(b, '}');
}

void alert_engine_rules_json(struct alert_engine *e, const struct alert_rules_filter *f,
			     int64_t now, struct buf *out)
{
	static const struct alert_rules_filter none;
	if (!f)
		f = &none;
	buf_puts(out, "{\"groups\":[");
	pthread_mutex_lock(&e->lock);
	bool gfirst = true;
	for (size_t i = 0; e->rs && i < e->rs->ngroups; i++) {
		const struct group *g = &e->rs->groups[i];
		if (!in_list(g->name, f->groups, f->ngroups) || !in_list(g->file, f->files, f->nfiles))
			continue;
		size_t shown = 0;
		for (size_t j = 0; j < g->nrules; j++) {
			const struct rule *r = &g->rules[j];
			bool alerting = r->kind != RULE_RECORD;
			if ((f->type == 1 && !alerting) || (f->type == 2 && alerting) ||
			    !in_list(r->name, f->names, f->nnames))
				continue;
			if (!shown++) {
				if (!gfirst)
					buf_putc(out, ',');
				gfirst = false;
				buf_puts(out, "{\"name\":");
				buf_put_json_str(out, g->name);
				buf_puts(out, ",\"file\":");
				buf_put_json_str(out, g->file);
				buf_puts(out, ",\"rules\":[");
			} else {
				buf_putc(out, ',');
			}
			put_rule(e, out, r, !f->exclude_alerts, now);
		}
		/* Prometheus lists a group without rules only when nothing filters. */
		bool filtered = f->type || f->nnames;
		if (!shown && !filtered) {
			if (!gfirst)
				buf_putc(out, ',');
			gfirst = false;
			buf_puts(out, "{\"name\":");
			buf_put_json_str(out, g->name);
			buf_puts(out, ",\"file\":");
			buf_put_json_str(out, g->file);
			buf_puts(out, ",\"rules\":[");
			shown = 1;
		}
		if (!shown)
			continue;
		buf_printf(out, "],\"interval\":%g,\"limit\":%lld,\"evaluationTime\":%.9f,"
			   "\"lastEvaluation\":", (double)g->interval_ms / 1000.0,
			   (long long)g->limit, g->eval_seconds);
		put_time(out, g->last_eval_ms);
		buf_putc(out, '}');
	}
	/* Ours, beside Prometheus' fields: how the last load of the files went
	 * (a broken file keeps the previous rules running). */
	buf_printf(out, "],\"reload\":{\"success\":%s,\"lastAttempt\":",
		   e->stats.last_reload_ok ? "true" : "false");
	put_time(out, e->stats.last_reload_ms);
	buf_puts(out, ",\"lastSuccess\":");
	put_time(out, e->stats.last_reload_ok_ms);
	if (e->last_error[0]) {
		buf_puts(out, ",\"error\":");
		buf_put_json_str(out, e->last_error);
	}
	pthread_mutex_unlock(&e->lock);
	buf_puts(out, "}}");
}

void alert_engine_alerts_json(struct alert_engine *e, int64_t now, struct buf *out)
{
	buf_puts(out, "{\"alerts\":[");
	bool first = true;
	pthread_mutex_lock(&e->lock);
	for (size_t i = 0; e->rs && i < e->rs->ngroups; i++) {
		const struct group *g = &e->rs->groups[i];
		for (size_t j = 0; j < g->nrules; j++) {
			const struct rule *r = &g->rules[j];
			for (size_t k = 0; k < r->nalerts; k++) {
				if (r->alerts[k]->state == ALERT_INACTIVE)
					continue;
				if (!first)
					buf_putc(out, ',');
				first = false;
				put_alert(e, out, r->alerts[k], now);
			}
		}
	}
	pthread_mutex_unlock(&e->lock);
	buf_puts(out, "]}");
}
