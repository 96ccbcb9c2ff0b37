/*
 * rules.c - Prometheus-format rule files: loading and checking.
 *
 * A rule file is YAML: `groups:`, each with `name`, optional `interval`,
 * `query_offset`, `limit`, `labels` and its `rules`. A rule is an alerting
 * rule (`alert`, `expr`, `for`, `keep_firing_for`, `labels`,
 * `annotations`), a recording rule (`record`, `expr`, `labels`) or our log
 * rule (`log_alert`, `match`, `container`, `stream`, `count`, `window` and
 * the alerting fields; see README "Alert rules"). Loading checks all of it
 * as promtool does and goes on after a problem so that one run names every
 * problem with its file and line: YAML syntax, unknown fields, missing or
 * doubled fields, bad durations, PromQL that does not parse or is not a
 * vector, label names, duplicate group names in a file and duplicate rule
 * names in a group, templates outside the supported subset.
 *
 * The same loader serves `monitor rules check` (alert_rules_check) and the
 * engine (ruleset_load), so what the check accepts the agent loads.
 */
#include "alerting/rules_int.h"

#include <errno.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_ERRORS 1000

const char *const rule_tmpl_vars[] = { "labels", "value", "externalLabels", "externalURL", NULL };

struct loader {
	struct ruleset *rs;
	const char *file;
	struct buf *errs;
	size_t *nerrs;
	int64_t default_interval_ms;
	size_t cap_groups;
};

static void problem(struct loader *l, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void problem(struct loader *l, int line, const char *fmt, ...)
{
	if (++*l->nerrs > MAX_ERRORS)
		return;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		buf_printf(l->errs, "%s:%d: %s\n", l->file, line, msg);
	else
		buf_printf(l->errs, "%s: %s\n", l->file, msg);
}

static char *sdup(struct loader *l, const char *s)
{
	return arena_strdup(&l->rs->arena, s ? s : "");
}

/* A scalar's text, or NULL after a problem naming what. */
static const char *scalar(struct loader *l, const struct ynode *n, const char *what)
{
	if (n->type != YNODE_SCALAR) {
		problem(l, n->line, "%s: expected a string, got a %s", what,
			n->type == YNODE_MAP ? "mapping" : "list");
		return NULL;
	}
	return n->scalar;
}

static bool duration(struct loader *l, const struct ynode *n, const char *what, int64_t *out)
{
	const char *s = scalar(l, n, what);
	if (!s)
		return false;
	if (promql_parse_duration(s, false, out) < 0 || *out < 0) {
		problem(l, n->line, "%s: bad duration \"%s\" (expected a duration such as 30s, "
			"5m or 1h30m)", what, s);
		return false;
	}
	return true;
}

/* labels: or annotations: of a rule; templated unless plain. */
static bool kv_map(struct loader *l, const struct ynode *n, const char *what, bool names_are_labels,
		   bool templated, struct rule_kv **out, size_t *nout)
{
	*out = NULL;
	*nout = 0;
	if (n->type == YNODE_SCALAR && !n->quoted && !*n->scalar)
		return true; /* "labels:" with nothing under it */
	if (n->type != YNODE_MAP) {
		problem(l, n->line, "%s: expected a mapping of names to strings", what);
		return false;
	}
	struct rule_kv *kv = arena_alloc(&l->rs->arena, (n->count + 1) * sizeof(*kv));
	if (!kv)
		return false;
	bool ok = true;
	size_t k = 0;
	for (const struct ynode *c = n->child; c; c = c->next) {
		if (names_are_labels && !store_label_name_valid(c->key)) {
			problem(l, c->key_line, "%s: invalid label name \"%s\"", what, c->key);
			ok = false;
			continue;
		}
		if (names_are_labels && !strcmp(c->key, "__name__")) {
			problem(l, c->key_line, "%s: the label __name__ cannot be set here", what);
			ok = false;
			continue;
		}
		char cwhat[600];
		snprintf(cwhat, sizeof(cwhat), "%s.%s", what, c->key);
		const char *v = scalar(l, c, cwhat);
		if (!v) {
			ok = false;
			continue;
		}
		struct rule_kv *e = &kv[k];
		memset(e, 0, sizeof(*e));
		e->name = sdup(l, c->key);
		e->text = sdup(l, v);
		if (templated) {
			char err[1024];
			if (alert_tmpl_parse(v, rule_tmpl_vars, &e->tmpl, err, sizeof(err)) < 0) {
				problem(l, c->line, "%s: %s", cwhat, err);
				ok = false;
				continue;
			}
		}
		k++;
	}
	*out = kv;
	*nout = k;
	return ok;
}

static bool parse_expr(struct loader *l, const struct ynode *n, const char *what,
		       struct rule *r)
{
	const char *s = scalar(l, n, what);
	if (!s)
		return false;
	if (!*s) {
		problem(l, n->line, "%s: expr is empty", what);
		return false;
	}
	char err[1024];
	if (promql_parse(s, &r->expr, err, sizeof(err)) < 0) {
		problem(l, n->line, "%s: could not parse expression: %s", what, err);
		return false;
	}
	enum promql_value_type t = promql_expr_type(r->expr);
	if (t != PROMQL_VECTOR && t != PROMQL_SCALAR) {
		problem(l, n->line, "%s: invalid expression type \"%s\": a rule needs an instant "
			"vector or a scalar", what, promql_value_type_name(t));
		return false;
	}
	r->expr_text = sdup(l, s);
	struct buf canon;
	buf_init(&canon, PROMQL_MAX_QUERY_BYTES * 2);
	promql_expr_format(r->expr, &canon);
	if (canon.len && !canon.overflow)
		share_split(r, canon.data, &l->rs->arena);
	buf_fini(&canon);
	return true;
}

static bool get_count(struct loader *l, const struct ynode *n, const char *what, int64_t lo,
		      int64_t *out)
{
	const char *s = scalar(l, n, what);
	if (!s)
		return false;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || errno || v < lo || n->quoted) {
		problem(l, n->line, "%s: expected a whole number of at least %lld, got \"%s\"", what,
			(long long)lo, s);
		return false;
	}
	*out = v;
	return true;
}

/* Reads one rule; its name goes into r->name even when something else is
 * wrong, for the duplicate check. */
static bool load_rule(struct loader *l, const struct group *g, const struct ynode *n, size_t idx,
		      struct rule *r)
{
	memset(r, 0, sizeof(*r));
	r->line = n->line;
	r->ok = true;
	if (n->type != YNODE_MAP) {
		problem(l, n->line, "group \"%s\", rule %zu: expected a mapping", g->name, idx + 1);
		return false;
	}
	const struct ynode *alert = ynode_get(n, "alert"), *record = ynode_get(n, "record"),
			   *logr = ynode_get(n, "log_alert");
	int kinds = !!alert + !!record + !!logr;
	char what[512];
	if (kinds != 1) {
		problem(l, n->line, "group \"%s\", rule %zu: %s", g->name, idx + 1,
			kinds ? "only one of alert, record and log_alert may be set" :
				"one of alert, record or log_alert must be set");
		return false;
	}
	const struct ynode *kn = alert ? alert : record ? record : logr;
	r->kind = alert ? RULE_ALERT : record ? RULE_RECORD : RULE_LOG;
	const char *name = scalar(l, kn, "rule name");
	if (!name)
		return false;
	r->name = sdup(l, name);
	snprintf(what, sizeof(what), "group \"%s\", rule \"%s\"", g->name, name);
	bool ok = true;
	if (!*name) {
		problem(l, kn->line, "group \"%s\", rule %zu: the %s name is empty", g->name,
			idx + 1, alert ? "alert" : record ? "record" : "log_alert");
		ok = false;
	} else if (record && !store_metric_name_valid(name)) {
		problem(l, kn->line, "%s: invalid recording rule name (expected a metric name such "
			"as job:http_requests:rate5m)", what);
		ok = false;
	}
	bool have_expr = false, have_match = false, have_count = false, have_window = false;
	for (const struct ynode *c = n->child; c; c = c->next) {
		const char *k = c->key;
		char fw[600];
		snprintf(fw, sizeof(fw), "%s: %s", what, k);
		if (!strcmp(k, "alert") || !strcmp(k, "record") || !strcmp(k, "log_alert")) {
			continue;
		} else if (!strcmp(k, "expr") && r->kind != RULE_LOG) {
			have_expr = true;
			ok &= parse_expr(l, c, fw, r);
		} else if (!strcmp(k, "for") && r->kind != RULE_RECORD) {
			ok &= duration(l, c, fw, &r->for_ms);
		} else if (!strcmp(k, "keep_firing_for") && r->kind != RULE_RECORD) {
			ok &= duration(l, c, fw, &r->keep_firing_ms);
		} else if (!strcmp(k, "labels")) {
			ok &= kv_map(l, c, fw, true, r->kind != RULE_RECORD, &r->labels, &r->nlabels);
		} else if (!strcmp(k, "annotations") && r->kind != RULE_RECORD) {
			ok &= kv_map(l, c, fw, false, true, &r->ann, &r->nann);
		} else if (r->kind == RULE_LOG && !strcmp(k, "match")) {
			const char *s = scalar(l, c, fw);
			char err[512];
			have_match = true;
			if (!s) {
				ok = false;
			} else if (!*s) {
				problem(l, c->line, "%s: empty pattern", fw);
				ok = false;
			} else if (!(r->log_re = promql_regex_new(s, err, sizeof(err)))) {
				problem(l, c->line, "%s: bad regular expression: %s", fw, err);
				ok = false;
			} else {
				r->log_match = sdup(l, s);
			}
		} else if (r->kind == RULE_LOG && !strcmp(k, "container")) {
			const char *s = scalar(l, c, fw);
			struct store_matcher m[32];
			char err[512];
			int nm = s ? store_parse_selector(s, m, ARRAY_LEN(m), err, sizeof(err)) : -1;
			if (nm < 0) {
				if (s)
					problem(l, c->line, "%s: bad container selector \"%s\": %s "
						"(expected such as {name=~\"web.*\"})", fw, s, err);
				ok = false;
			} else {
				r->log_container = sdup(l, s);
				r->log_sel = calloc((size_t)nm + 1, sizeof(*r->log_sel));
				if (r->log_sel)
					memcpy(r->log_sel, m, (size_t)nm * sizeof(*m));
				else
					for (int i = 0; i < nm; i++)
						store_matcher_fini(&m[i]);
				r->nlog_sel = r->log_sel ? (size_t)nm : 0;
			}
		} else if (r->kind == RULE_LOG && !strcmp(k, "stream")) {
			const char *s = scalar(l, c, fw);
			if (s && (!strcmp(s, "stdout") || !strcmp(s, "stderr"))) {
				r->log_stream = sdup(l, s);
			} else if (s && strcmp(s, "all") && strcmp(s, "both")) {
				problem(l, c->line, "%s: expected stdout, stderr or all, got \"%s\"", fw, s);
				ok = false;
			}
		} else if (r->kind == RULE_LOG && !strcmp(k, "count")) {
			have_count = true;
			ok &= get_count(l, c, fw, 1, &r->log_count);
		} else if (r->kind == RULE_LOG && !strcmp(k, "window")) {
			have_window = true;
			if (duration(l, c, fw, &r->log_window_ms) && r->log_window_ms <= 0) {
				problem(l, c->line, "%s: must be more than 0s", fw);
				ok = false;
			}
		} else {
			const char *kind = r->kind == RULE_ALERT ? "an alerting" :
					   r->kind == RULE_RECORD ? "a recording" : "a log_alert";
			bool known = !strcmp(k, "expr") || !strcmp(k, "for") ||
				     !strcmp(k, "keep_firing_for") || !strcmp(k, "annotations") ||
				     !strcmp(k, "match") || !strcmp(k, "container") ||
				     !strcmp(k, "count") || !strcmp(k, "window") || !strcmp(k, "stream");
			problem(l, c->key_line, known ? "%s: field \"%s\" is not allowed in %s rule" :
						      "%s: unknown field \"%s\" in %s rule", what, k, kind);
			ok = false;
		}
	}
	if (r->kind != RULE_LOG && !have_expr) {
		problem(l, n->line, "%s: expr is missing", what);
		ok = false;
	}
	if (r->kind == RULE_LOG) {
		if (!have_match) {
			problem(l, n->line, "%s: match (a regular expression) is missing", what);
			ok = false;
		}
		if (!have_count)
			r->log_count = 1;
		if (!have_window)
			r->log_window_ms = 5 * 60 * 1000;
		char expr[1024];
		snprintf(expr, sizeof(expr), "log lines matching %s%s%s: at least %lld in %llds",
			 r->log_match ? r->log_match : "?", r->log_container ? " in " : "",
			 r->log_container ? r->log_container : "", (long long)r->log_count,
			 (long long)(r->log_window_ms / 1000));
		r->expr_text = sdup(l, expr);
	}
	return ok;
}

static void rule_fini(struct rule *r)
{
	promql_expr_free(r->expr);
	promql_expr_free(r->lhs);
	promql_regex_free(r->log_re);
	for (size_t i = 0; i < r->nlog_sel; i++)
		store_matcher_fini(&r->log_sel[i]);
	free(r->log_sel);
	for (size_t i = 0; i < r->nlabels; i++)
		alert_tmpl_free(r->labels[i].tmpl);
	for (size_t i = 0; i < r->nann; i++)
		alert_tmpl_free(r->ann[i].tmpl);
	for (size_t i = 0; i < r->nalerts; i++)
		alert_inst_free(r->alerts[i]);
	free(r->alerts);
	for (size_t i = 0; i < r->nprev_out; i++)
		free(r->prev_out[i].labels);
	free(r->prev_out);
	free(r->last_error);
}

void alert_inst_free(struct alert_inst *a)
{
	if (!a)
		return;
	free(a->labels);
	free(a->ann);
	free(a->note);
	free(a);
}

void ruleset_free(struct ruleset *rs)
{
	if (!rs)
		return;
	for (size_t g = 0; g < rs->ngroups; g++) {
		for (size_t i = 0; i < rs->groups[g].nrules; i++)
			rule_fini(&rs->groups[g].rules[i]);
		free(rs->groups[g].rules);
	}
	free(rs->groups);
	arena_free(&rs->arena);
	free(rs);
}

static bool load_group(struct loader *l, const struct ynode *n, size_t idx, struct group *g)
{
	memset(g, 0, sizeof(*g));
	g->file = sdup(l, l->file);
	g->line = n->line;
	g->interval_ms = l->default_interval_ms;
	if (n->type != YNODE_MAP) {
		problem(l, n->line, "group %zu: expected a mapping", idx + 1);
		return false;
	}
	const struct ynode *name = ynode_get(n, "name");
	const char *s = name ? scalar(l, name, "group name") : NULL;
	if (!name)
		problem(l, n->line, "group %zu: name is missing", idx + 1);
	else if (s && !*s)
		problem(l, name->line, "group %zu: name is empty", idx + 1);
	g->name = sdup(l, s && *s ? s : "");
	bool ok = s && *s;
	char what[512];
	snprintf(what, sizeof(what), "group \"%s\"", g->name);
	const struct ynode *rules = NULL;
	for (const struct ynode *c = n->child; c; c = c->next) {
		char fw[600];
		snprintf(fw, sizeof(fw), "%s: %s", what, c->key);
		if (!strcmp(c->key, "name")) {
			continue;
		} else if (!strcmp(c->key, "interval")) {
			if (duration(l, c, fw, &g->interval_ms) && g->interval_ms < 100) {
				problem(l, c->line, "%s: must be at least 100ms", fw);
				ok = false;
			}
		} else if (!strcmp(c->key, "query_offset")) {
			ok &= duration(l, c, fw, &g->query_offset_ms);
		} else if (!strcmp(c->key, "limit")) {
			ok &= get_count(l, c, fw, 0, &g->limit);
		} else if (!strcmp(c->key, "labels")) {
			struct rule_kv *kv;
			size_t nkv;
			if (!kv_map(l, c, fw, true, false, &kv, &nkv)) {
				ok = false;
				continue;
			}
			g->labels = arena_alloc(&l->rs->arena, (nkv + 1) * sizeof(*g->labels));
			for (size_t i = 0; g->labels && i < nkv; i++)
				g->labels[i] = (struct store_label){ kv[i].name, kv[i].text };
			g->nlabels = g->labels ? nkv : 0;
		} else if (!strcmp(c->key, "rules")) {
			rules = c;
		} else {
			problem(l, c->key_line, "%s: unknown field \"%s\" in a group (expected name, "
				"interval, query_offset, limit, labels, rules)", what, c->key);
			ok = false;
		}
	}
	if (!rules || (rules->type == YNODE_SCALAR && !*rules->scalar && !rules->quoted))
		return ok; /* a group without rules is valid, as in Prometheus */
	if (rules->type != YNODE_SEQ) {
		problem(l, rules->line, "%s: rules: expected a list of rules", what);
		return false;
	}
	if (l->rs->nrules + rules->count > ALERT_MAX_RULES) {
		problem(l, rules->line, "%s: too many rules (at most %d over all files)", what,
			ALERT_MAX_RULES);
		return false;
	}
	g->rules = calloc(rules->count + 1, sizeof(*g->rules));
	if (!g->rules) {
		problem(l, rules->line, "out of memory");
		return false;
	}
	size_t i = 0;
	for (const struct ynode *c = rules->child; c; c = c->next, i++) {
		struct rule *r = &g->rules[g->nrules++];
		ok &= load_rule(l, g, c, i, r);
		if (!r->name)
			continue;
		for (size_t j = 0; j + 1 < g->nrules; j++) {
			if (g->rules[j].name && g->rules[j].kind == r->kind &&
			    !strcmp(g->rules[j].name, r->name)) {
				problem(l, c->line, "%s: duplicate rule name \"%s\" (also on line %d): "
					"rule names must be unique in a group", what, r->name,
					g->rules[j].line);
				ok = false;
				break;
			}
		}
		char key[2048];
		snprintf(key, sizeof(key), "%s\t%s\t%s\t%s", l->file, g->name,
			 r->kind == RULE_ALERT ? "alert" : r->kind == RULE_RECORD ? "record" : "log",
			 r->name);
		r->key = sdup(l, key);
	}
	l->rs->nrules += g->nrules;
	return ok;
}

static void load_file(struct loader *l, const char *path)
{
	struct ydoc doc;
	char err[2048];
	l->file = path;
	if (ydoc_load(&doc, path, err, sizeof(err)) < 0) {
		if (++*l->nerrs <= MAX_ERRORS)
			buf_printf(l->errs, "%s\n", err);
		return;
	}
	const struct ynode *root = doc.root;
	if (!root)
		goto out; /* an empty file holds no groups */
	if (root->type != YNODE_MAP) {
		problem(l, root->line, "expected a mapping with \"groups:\"");
		goto out;
	}
	const struct ynode *groups = NULL;
	for (const struct ynode *c = root->child; c; c = c->next) {
		if (!strcmp(c->key, "groups"))
			groups = c;
		else
			problem(l, c->key_line, "unknown field \"%s\" (a rule file holds \"groups:\")",
				c->key);
	}
	if (!groups || (groups->type == YNODE_SCALAR && !*groups->scalar && !groups->quoted))
		goto out;
	if (groups->type != YNODE_SEQ) {
		problem(l, groups->line, "groups: expected a list of groups");
		goto out;
	}
	struct ruleset *rs = l->rs;
	size_t first = rs->ngroups;
	if (rs->ngroups + groups->count > l->cap_groups) {
		size_t cap = (rs->ngroups + groups->count) * 2 + 8;
		struct group *ng = realloc(rs->groups, cap * sizeof(*ng));
		if (!ng) {
			problem(l, groups->line, "out of memory");
			goto out;
		}
		rs->groups = ng;
		l->cap_groups = cap;
	}
	size_t i = 0;
	for (const struct ynode *c = groups->child; c; c = c->next, i++) {
		struct group *g = &rs->groups[rs->ngroups++];
		load_group(l, c, i, g);
		/* A group that is not a mapping has no name (found by fuzzing). */
		for (size_t j = first; j + 1 < rs->ngroups && g->name && *g->name; j++) {
			if (rs->groups[j].name && !strcmp(rs->groups[j].name, g->name)) {
				problem(l, c->line, "groupname: \"%s\" is repeated in the same file "
					"(also on line %d)", g->name, rs->groups[j].line);
				break;
			}
		}
	}
out:
	ydoc_free(&doc);
}

static bool has_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

struct ruleset *ruleset_load(const char *const *paths, size_t n, const char *base_dir,
			     int64_t default_interval_ms, struct buf *errs, size_t *nerrs)
{
	struct ruleset *rs = calloc(1, sizeof(*rs));
	if (!rs)
		return NULL;
	struct loader l = { .rs = rs, .errs = errs, .nerrs = nerrs,
			    .default_interval_ms = default_interval_ms };
	*nerrs = 0;
	size_t files = 0;
	for (size_t i = 0; i < n; i++) {
		char pat[8192];
		if (paths[i][0] != '/' && base_dir && *base_dir)
			snprintf(pat, sizeof(pat), "%s/%s", base_dir, paths[i]);
		else
			snprintf(pat, sizeof(pat), "%s", paths[i]);
		if (!has_glob(pat)) {
			struct stat sb;
			if (stat(pat, &sb) < 0) {
				l.file = pat;
				problem(&l, 0, "cannot read the rule file: %s", strerror(errno));
				continue;
			}
			if (++files > ALERT_MAX_FILES_MATCHED) {
				l.file = pat;
				problem(&l, 0, "too many rule files (at most %d)", ALERT_MAX_FILES_MATCHED);
				break;
			}
			load_file(&l, sdup(&l, pat));
			continue;
		}
		glob_t gl;
		int rc = glob(pat, 0, NULL, &gl);
		if (rc == GLOB_NOMATCH)
			continue; /* a glob may match nothing, as in Prometheus */
		if (rc) {
			l.file = pat;
			problem(&l, 0, "cannot expand the pattern (%s)",
				rc == GLOB_NOSPACE ? "out of memory" : "read error");
			continue;
		}
		for (size_t j = 0; j < gl.gl_pathc; j++) {
			if (++files > ALERT_MAX_FILES_MATCHED) {
				l.file = pat;
				problem(&l, 0, "too many rule files (at most %d)", ALERT_MAX_FILES_MATCHED);
				break;
			}
			load_file(&l, sdup(&l, gl.gl_pathv[j]));
		}
		globfree(&gl);
	}
	if (*nerrs > MAX_ERRORS)
		buf_printf(errs, "... and %zu more problems\n", *nerrs - MAX_ERRORS);
	if (*nerrs || errs->overflow) {
		if (!*nerrs)
			*nerrs = 1;
		ruleset_free(rs);
		return NULL;
	}
	return rs;
}

int alert_rules_check(const char *const *paths, size_t n, struct buf *out)
{
	size_t nerrs = 0;
	struct ruleset *rs = ruleset_load(paths, n, NULL, 15000, out, &nerrs);
	if (!rs)
		return -(int)(nerrs ? nerrs : 1);
	int rules = (int)rs->nrules;
	ruleset_free(rs);
	return rules;
}
