/*
 * top_view.c - `monitor top`: the command, its batch modes (--once prints
 * one frame as text, --json one snapshot) and the ncurses view. This is
 * the only file that includes curses.h; the numbers, the layout and the
 * text of every cell come from top_model.c and top_text.c, the detail
 * view's data from top_data.c.
 *
 * One thread: the loop waits for a key with a timeout that ends at the
 * next refresh, so an idle top costs one list request per refresh and a
 * redraw of what changed (ncurses sends only the difference). Nothing is
 * fetched per container in the list view; the detail view adds its
 * container's history (every HIST_EVERY_S), processes, logs and
 * environment, only for the pane on screen.
 *
 * The agent going away is a state, not an error: the header says the agent
 * is unreachable and since when, the last data stays on screen, and every
 * refresh tries again until it answers.
 */
#define NCURSES_WIDECHAR 1
#include "agent/top.h"

#include <curses.h>
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define TOP_TIMEOUT_MS 3000          /* a request; --timeout overrides */
#define TOP_INTERVAL_MS 1000
#define BATCH_TICK_WAIT_MS 15000
#define HIST_RANGE_S 600.0           /* sparklines: the last 10 minutes */
#define HIST_EVERY_S 5
#define FORECAST_EVERY_S 30
#define ALERTS_ABSENT_RETRY_S 30
#define MSG_SHOW_S 6
#define LOG_TAIL 200
#define TEXT_LINES 600
#define TEXT_WIDTH 1024

static const int64_t intervals_ms[] = { 250, 500, 1000, 2000, 3000, 5000, 10000, 30000, 60000 };

/* Set by SIGINT/SIGTERM/SIGHUP: leave the loop and restore the terminal. */
static volatile sig_atomic_t quit_signal;

static void on_quit_signal(int sig)
{
	quit_signal = sig;
}

enum top_screen { SCR_LIST, SCR_DETAIL };
enum pane { PANE_INFO, PANE_PROCS, PANE_LOGS, PANE_ENV, PANE__COUNT };
enum overlay { OV_NONE, OV_HELP, OV_COLUMNS, OV_ACTIONS, OV_CONFIRM, OV_SILENCE };
enum input { IN_NONE, IN_FILTER, IN_LOGFILTER, IN_DURATION };

static const char *const pane_names[PANE__COUNT] = { "info", "processes", "logs", "env" };
static const char *const actions[] = { "restart", "stop", "start", "pause", "unpause", "kill" };

enum { CP_OK = 1, CP_WARN, CP_CRIT, CP_HEAD, CP_TITLE, CP_DIM, CP_GROUP };

struct text {
	char (*s)[TEXT_WIDTH];
	int *attr;
	int n;
};

struct ui {
	struct cli c;
	char err[512];
	struct top_model m;
	bool color, utf8;
	int64_t interval_ms;
	bool paused;
	int64_t next_ns;
	char config_path[4096];
	/* connection */
	bool connected, ever_connected;
	int64_t last_ok_ns;
	char status[512];
	int64_t alerts_next_ns;
	/* screens */
	enum top_screen screen;
	enum pane pane;
	enum overlay ov;
	enum input in;
	char input[TOP_FILTER_TEXT_MAX];
	size_t input_len;
	char msg[512];
	int64_t msg_until_ns;
	/* list */
	char sel_id[80];
	size_t sel, scroll;
	bool moved;              /* the user moved the selection: it follows a container */
	/* detail */
	char det_id[80];
	int det_scroll;
	struct top_history hist;
	int64_t hist_next_ns;
	struct top_doc procs, env, forecast;
	int64_t forecast_next_ns;
	bool env_loaded;
	struct top_logs logs;
	bool follow;
	char log_filter[TOP_FILTER_TEXT_MAX];
	struct text text;
	/* overlays */
	int ov_sel;
	const char *confirm_action;
	struct top_alert det_alerts[16];
	size_t ndet_alerts;
};

/* ---- small helpers --------------------------------------------------------------- */

static int64_t sec_ns(double s)
{
	return (int64_t)(s * 1e9);
}

static void say(struct ui *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct ui *u, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(u->msg, sizeof(u->msg), fmt, ap);
	va_end(ap);
	u->msg_until_ns = mono_ns() + sec_ns(MSG_SHOW_S);
}

/* Byte length of the first width display columns of s. */
static int clip_bytes(const char *s, int width)
{
	int w = 0, i = 0;
	for (; s[i]; i++) {
		if (((unsigned char)s[i] & 0xC0) != 0x80) {
			if (w == width)
				break;
			w++;
		}
	}
	return i;
}

/* Writes s at (y, x), cut to the screen's width. */
static void put(int y, int x, int attr, const char *s)
{
	int room = COLS - x - (y == LINES - 1 ? 1 : 0);
	if (y < 0 || y >= LINES || room <= 0)
		return;
	attron(attr);
	mvaddnstr(y, x, s, clip_bytes(s, room));
	attroff(attr);
}

static int level_attr(const struct ui *u, int level)
{
	if (!u->color)
		return level >= 2 ? A_BOLD : 0;
	switch (level) {
	case 1: return COLOR_PAIR(CP_WARN);
	case 2: return COLOR_PAIR(CP_CRIT) | A_BOLD;
	case 3: return COLOR_PAIR(CP_CRIT) | A_BOLD;
	}
	return 0;
}

static void text_reset(struct text *t)
{
	t->n = 0;
}

static void text_add(struct text *t, int attr, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void text_add(struct text *t, int attr, const char *fmt, ...)
{
	if (!t->s || t->n >= TEXT_LINES)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->s[t->n], TEXT_WIDTH, fmt, ap);
	va_end(ap);
	/* one line each: newlines and tabs from outside become blanks */
	for (char *p = t->s[t->n]; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	t->attr[t->n++] = attr;
}

/* ---- fetching ------------------------------------------------------------------------ */

static void detail_refresh(struct ui *u, bool force);

static void refresh_data(struct ui *u)
{
	int64_t now = mono_ns();
	struct cli_list l;
	u->err[0] = '\0';
	if (cli_list_fetch(&u->c, &l) < 0) {
		u->connected = false;
		snprintf(u->status, sizeof(u->status), "%s", *u->err ? u->err : "no answer");
		return;
	}
	u->connected = u->ever_connected = true;
	u->last_ok_ns = now;
	u->status[0] = '\0';
	if (top_model_update(&u->m, &l) < 0)
		say(u, "out of memory for %zu containers", u->m.nrows);
	/* The previous tick's document is freed now: give its pages back, so
	 * that top stays small between refreshes (a few MB with 200 containers). */
	malloc_trim(0);
	if (now >= u->alerts_next_ns) {
		int rc = top_fetch_alerts(&u->c, &u->m);
		u->alerts_next_ns = rc == -ENOENT ? now + sec_ns(ALERTS_ABSENT_RETRY_S) : 0;
		if (rc == 0 || rc == -ENOENT)
			top_model_arrange(&u->m);
	}
	if (u->screen == SCR_DETAIL)
		detail_refresh(u, false);
}

static void detail_open(struct ui *u, const char *id)
{
	snprintf(u->det_id, sizeof(u->det_id), "%s", id);
	u->screen = SCR_DETAIL;
	u->det_scroll = 0;
	u->hist_next_ns = u->forecast_next_ns = 0;
	memset(&u->hist, 0, sizeof(u->hist));
	top_doc_free(&u->procs);
	top_doc_free(&u->env);
	top_doc_free(&u->forecast);
	u->procs.av = u->env.av = u->forecast.av = TOP_AV_NONE;
	u->env_loaded = false;
	top_logs_reset(&u->logs, id);
	u->follow = true;
	detail_refresh(u, true);
}

static void detail_refresh(struct ui *u, bool force)
{
	int64_t now = mono_ns();
	char esc[256], path[512];
	cli_path_escape(esc, sizeof(esc), u->det_id);
	if (!u->connected && !force)
		return;
	switch (u->pane) {
	case PANE_INFO:
		if (now >= u->hist_next_ns) {
			double t = u->m.cur.time > 0 ? u->m.cur.time : (double)now_ms() / 1000.0;
			const struct top_row *r = top_model_find(&u->m, u->det_id);
			top_fetch_history(&u->c, r && *r->cgroup ? r->cgroup : u->det_id, t,
					  HIST_RANGE_S, &u->hist);
			u->hist_next_ns = now + sec_ns(HIST_EVERY_S);
		}
		if (now >= u->forecast_next_ns) {
			snprintf(path, sizeof(path), "/api/v1/containers/%s/forecast", esc);
			top_doc_get(&u->c, path, &u->forecast);
			u->forecast_next_ns = now + sec_ns(FORECAST_EVERY_S);
		}
		break;
	case PANE_PROCS:
		snprintf(path, sizeof(path), "/api/v1/containers/%s/processes", esc);
		top_doc_get(&u->c, path, &u->procs);
		break;
	case PANE_LOGS:
		if (u->follow || force || u->logs.av == TOP_AV_NONE)
			top_fetch_logs(&u->c, &u->logs, LOG_TAIL);
		break;
	case PANE_ENV:
		if (!u->env_loaded || force) {
			snprintf(path, sizeof(path), "/api/v1/containers/%s/env", esc);
			top_doc_get(&u->c, path, &u->env);
			u->env_loaded = true;
		}
		break;
	case PANE__COUNT:
		break;
	}
}

/* ---- drawing: the header and footer ------------------------------------------------ */

static void draw_header(struct ui *u)
{
	char lines[2][512], status[600] = "";
	int64_t now = mono_ns();
	if (!u->connected && u->ever_connected)
		snprintf(status, sizeof(status), "AGENT UNREACHABLE (%s) - retrying every %.1fs, data "
			 "from %.0fs ago", u->status, (double)u->interval_ms / 1000,
			 (double)(now - u->last_ok_ns) / 1e9);
	else if (!u->connected)
		snprintf(status, sizeof(status), "AGENT UNREACHABLE (%s) - retrying every %.1fs",
			 u->status, (double)u->interval_ms / 1000);
	else if (u->paused)
		snprintf(status, sizeof(status), "PAUSED (space resumes)");
	top_header_lines(&u->m, u->c.url, "", lines);
	put(0, 0, u->color ? COLOR_PAIR(CP_HEAD) | A_BOLD : A_BOLD, lines[0]);
	put(1, 0, 0, lines[1]);
	if (*status) {
		int attr = !u->connected ? (u->color ? COLOR_PAIR(CP_CRIT) | A_BOLD | A_REVERSE
						     : A_BOLD | A_REVERSE)
					 : A_BOLD;
		int x = COLS - (int)strlen(status) - 1;
		if (x < 0 || !u->connected)
			x = 0;
		/* unreachable: the whole second line says so */
		if (!u->connected) {
			move(1, 0);
			clrtoeol();
		}
		put(1, x, attr, status);
	}
}

static void draw_footer(struct ui *u)
{
	int y = LINES - 1;
	move(y, 0);
	clrtoeol();
	char line[1024];
	if (u->in != IN_NONE) {
		const char *what = u->in == IN_FILTER ? "filter (text ~regex key=value !not; Enter "
							"applies, Esc clears)"
				 : u->in == IN_LOGFILTER ? "log filter (Enter applies, Esc clears)"
							 : "silence for (e.g. 1h, 30m; Enter, Esc)";
		snprintf(line, sizeof(line), "%s: %s", what, u->input);
		if (*u->msg && mono_ns() < u->msg_until_ns) {   /* why the input was refused */
			move(y - 1, 0);
			clrtoeol();
			put(y - 1, 0, level_attr(u, 2), u->msg);
		}
		put(y, 0, A_BOLD, line);
		int x = clip_bytes(line, COLS - 2) == (int)strlen(line) ? (int)strlen(what) + 2 +
									  (int)u->input_len : COLS - 2;
		move(y, x < COLS - 1 ? x : COLS - 2);
		return;
	}
	if (*u->msg && mono_ns() < u->msg_until_ns) {
		put(y, 0, A_BOLD, u->msg);
		return;
	}
	if (u->screen == SCR_LIST)
		snprintf(line, sizeof(line), "q quit ? help / filter Enter detail c m n i t u r sort "
			 "</> R a%s g%s C cols x act +/- %.1fs %s", u->m.show_all ? "*" : "",
			 u->m.group ? "*" : "", (double)u->interval_ms / 1000,
			 u->paused ? "PAUSED" : "space pause");
	else
		snprintf(line, sizeof(line), "Esc back  i info  p processes  l logs  e env  %s"
			 "s silence  x actions  q quit  ? help", u->pane == PANE_LOGS ?
			 (u->follow ? "f stop following  / filter  " : "f follow  / filter  ") : "");
	put(y, 0, A_DIM, line);
}

/* ---- drawing: the list ------------------------------------------------------------------- */

/* Keeps the selection on the same container across re-sorts. */
static void fix_selection(struct ui *u)
{
	const struct top_model *m = &u->m;
	if (!u->moved)           /* until then, the selection is the top line */
		u->sel_id[0] = '\0', u->sel = 0;
	if (*u->sel_id) {
		for (size_t i = 0; i < m->nlines; i++)
			if (m->lines[i].kind == TOP_LINE_ROW &&
			    !strcmp(m->rows[m->lines[i].index].id, u->sel_id)) {
				u->sel = i;
				return;
			}
	}
	if (u->sel >= m->nlines)
		u->sel = m->nlines ? m->nlines - 1 : 0;
	if (m->nlines && m->lines[u->sel].kind == TOP_LINE_ROW)
		snprintf(u->sel_id, sizeof(u->sel_id), "%s", m->rows[m->lines[u->sel].index].id);
}

static void select_line(struct ui *u, long i)
{
	const struct top_model *m = &u->m;
	if (!m->nlines)
		return;
	if (i < 0)
		i = 0;
	if (i >= (long)m->nlines)
		i = (long)m->nlines - 1;
	u->sel = (size_t)i;
	u->moved = true;
	if (m->lines[u->sel].kind == TOP_LINE_ROW)
		snprintf(u->sel_id, sizeof(u->sel_id), "%s", m->rows[m->lines[u->sel].index].id);
	else
		u->sel_id[0] = '\0';
}

static void draw_list(struct ui *u)
{
	const struct top_model *m = &u->m;
	struct top_layout lay;
	top_layout_compute(m, COLS, &lay);
	char title[4096];
	top_title_line(m, &lay, title, sizeof(title));
	int tw = (int)strlen(title);
	char full[4200];
	snprintf(full, sizeof(full), "%s%*s", title, COLS > tw ? COLS - tw : 0, "");
	put(2, 0, u->color ? COLOR_PAIR(CP_TITLE) | A_BOLD : A_REVERSE, full);

	int top = 3, rows = LINES - 5;     /* header 2, titles 1, totals 1, footer 1 */
	if (rows < 1)
		rows = 1;
	fix_selection(u);
	if (u->sel < u->scroll)
		u->scroll = u->sel;
	if (u->sel >= u->scroll + (size_t)rows)
		u->scroll = u->sel - (size_t)rows + 1;
	if (u->scroll + (size_t)rows > m->nlines)
		u->scroll = m->nlines > (size_t)rows ? m->nlines - (size_t)rows : 0;

	if (!m->nlines) {
		const char *why = !m->have_cur ? (u->connected ? "waiting for the agent's first tick"
							       : "no data: the agent has not answered yet")
			: m->nrows == 0 ? "the agent sees no containers"
			: m->filter.nterms ? "no container matches the filter (Esc clears it)"
					   : "no running containers (a shows stopped ones)";
		put(top + 1, 2, A_DIM, why);
	}
	for (int k = 0; k < rows && u->scroll + (size_t)k < m->nlines; k++) {
		size_t i = u->scroll + (size_t)k;
		const struct top_line *ln = &m->lines[i];
		int y = top + k, x = 0;
		bool selected = i == u->sel;
		if (ln->kind == TOP_LINE_GROUP) {
			const struct top_group *g = &m->groups[ln->index];
			char label[TOP_NAME_MAX + 32];
			snprintf(label, sizeof(label), "%s (%zu)", *g->key ? g->key : "(no group)",
				 g->sum.count);
			for (size_t c = 0; c < lay.ncols; c++) {
				char cell[512];
				top_sum_cell(&g->sum, label, lay.cols[c], lay.width[c], u->utf8, cell,
					     sizeof(cell));
				int attr = A_BOLD | (selected ? A_REVERSE : 0) |
					   (u->color ? COLOR_PAIR(CP_GROUP) : A_UNDERLINE);
				put(y, x, attr, cell);
				x += lay.width[c] + 1;
			}
			continue;
		}
		const struct top_row *r = &m->rows[ln->index];
		for (size_t c = 0; c < lay.ncols; c++) {
			char cell[1024];
			int level;
			top_cell(m, r, lay.cols[c], lay.width[c], lay.bars, u->utf8, cell, sizeof(cell),
				 &level);
			int attr = level_attr(u, level);
			if (r->bad && (lay.cols[c] == TOP_COL_NAME || lay.cols[c] == TOP_COL_STATUS))
				attr = level_attr(u, 3);
			else if (!r->up)
				attr |= A_DIM;
			if (selected)
				attr |= A_REVERSE;
			put(y, x, attr, cell);
			if (selected && c + 1 < lay.ncols)
				put(y, x + lay.width[c], A_REVERSE, " ");
			x += lay.width[c] + 1;
		}
	}
	/* totals */
	char label[64];
	snprintf(label, sizeof(label), "TOTAL (%zu)", m->totals.count);
	int x = 0;
	for (size_t c = 0; c < lay.ncols; c++) {
		char cell[512];
		top_sum_cell(&m->totals, label, lay.cols[c], lay.width[c], u->utf8, cell, sizeof(cell));
		put(LINES - 2, x, A_BOLD, cell);
		x += lay.width[c] + 1;
	}
}

/* ---- drawing: the detail view ---------------------------------------------------------- */

static void fmt_time(double t, char *out, size_t size)
{
	if (t <= 0) {
		snprintf(out, size, "-");
		return;
	}
	time_t s = (time_t)t;
	struct tm tm;
	localtime_r(&s, &tm);
	strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm);
}

static bool jnum(const struct json *o, const char *key, double *out)
{
	const struct json *v = json_get(o, key);
	if (!v || v->type != JSON_NUMBER)
		return false;
	*out = v->number;
	return true;
}

/* One resource of GET /api/v1/containers/{id}/forecast: now / limit, the
 * trend, and when it runs out, or why there is no forecast. */
static void forecast_line(struct ui *u, const struct json *f)
{
	char what[128], now[16] = "-", lim[16] = "-", eta[64] = "";
	const char *res = cli_str(f, "resource"), *mp = cli_str(f, "mountpoint");
	const char *unit = cli_str(f, "unit"), *reason = cli_str(f, "reason");
	snprintf(what, sizeof(what), "%s%s%s", res, *mp ? " " : "", mp);
	bool bytes = !strcmp(unit, "bytes");
	double v, e = -1;
	if (jnum(f, "now", &v))
		bytes ? top_fmt_units(now, sizeof(now), v, true) : (void)snprintf(now, sizeof(now), "%.3g", v);
	if (jnum(f, "limit", &v))
		bytes ? top_fmt_units(lim, sizeof(lim), v, true) : (void)snprintf(lim, sizeof(lim), "%.3g", v);
	if (jnum(f, "exhaustion_seconds", &e) && e >= 0)
		cli_human_duration(eta, sizeof(eta), e);
	if (*reason)
		text_add(&u->text, A_DIM, "           %-20s %s / %s   no forecast: %s", what, now, lim,
			 reason);
	else if (*eta)
		text_add(&u->text, level_attr(u, e < 3600 ? 3 : e < 86400 ? 1 : 0),
			 "           %-20s %s / %s   runs out in %s (%s)", what, now, lim, eta,
			 cli_str(f, "model"));
	else
		text_add(&u->text, 0, "           %-20s %s / %s   does not run out (%s)", what, now, lim,
			 cli_str(f, "model"));
}

static void info_lines(struct ui *u, const struct top_row *r)
{
	struct text *t = &u->text;
	const struct json *c = r->ctr;
	char a[64], b[64], when[64], up[64];
	fmt_time(json_get(c, "created_at") && json_get(c, "created_at")->type == JSON_NUMBER
			 ? json_get(c, "created_at")->number : 0, when, sizeof(when));
	text_add(t, A_BOLD, "Image      %s", r->image);
	text_add(t, 0, "Id         %s", r->id);
	text_add(t, 0, "Runtime    %s   cgroup %s", cli_str(c, "runtime"), cli_str(c, "cgroup"));
	text_add(t, 0, "Created    %s", when);
	if (r->uptime_s >= 0)
		cli_human_duration(up, sizeof(up), r->uptime_s);
	else
		snprintf(up, sizeof(up), "-");
	text_add(t, 0, "State      %s%s%s   up %s   exit code %s%s", r->state,
		 *r->health ? ", " : "", r->health, up,
		 r->exit_code >= 0 ? (snprintf(a, sizeof(a), "%.0f", r->exit_code), a) : "-",
		 r->oom_killed ? "   OOM-KILLED" : "");
	text_add(t, 0, "Command    %s", cli_str(c, "command"));
	text_add(t, 0, "Restarts   %s   policy %s",
		 r->restarts >= 0 ? (snprintf(b, sizeof(b), "%.0f", r->restarts), b) : "-",
		 *cli_str(c, "restart_policy") ? cli_str(c, "restart_policy") : "-");
	if (*r->group)
		text_add(t, 0, "Group      %s", r->group);
	/* ports and mounts */
	char line[TEXT_WIDTH];
	size_t o = 0;
	line[0] = '\0';
	const struct json *ports = json_get(c, "ports");
	for (const struct json *p = ports ? ports->child : NULL; p && o < sizeof(line) - 64;
	     p = p->next) {
		double cp = 0, hp = 0;
		const struct json *hpj = json_get(p, "host_port");
		if (json_get(p, "container_port"))
			cp = json_get(p, "container_port")->number;
		if (hpj && hpj->type == JSON_NUMBER)
			hp = hpj->number;
		if (hp > 0)
			o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%s:%.0f->%.0f/%s",
					      o ? ", " : "", *cli_str(p, "host_ip") ?
					      cli_str(p, "host_ip") : "*", hp, cp, cli_str(p, "protocol"));
		else
			o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%.0f/%s", o ? ", " : "",
					      cp, cli_str(p, "protocol"));
	}
	text_add(t, 0, "Ports      %s", o ? line : "-");
	const struct json *mounts = json_get(c, "mounts");
	if (!mounts || !mounts->count)
		text_add(t, 0, "Mounts     -");
	for (const struct json *mt = mounts ? mounts->child : NULL; mt; mt = mt->next) {
		const struct json *rw = json_get(mt, "rw");
		text_add(t, 0, "%s %s:%s (%s, %s)", mt == mounts->child ? "Mounts    " : "          ",
			 *cli_str(mt, "source") ? cli_str(mt, "source") : cli_str(mt, "name"),
			 cli_str(mt, "destination"), cli_str(mt, "type"),
			 rw && rw->type == JSON_BOOL && rw->boolean ? "rw" : "ro");
	}
	/* limits */
	double v;
	char mem[32] = "none", pids[32] = "none", cpu[48] = "none";
	if (r->mem_limited)
		top_fmt_units(mem, sizeof(mem), r->u.mem_limit_bytes, true);
	if (cli_value(c, "container_spec_pids_limit", &v) && v > 0)
		snprintf(pids, sizeof(pids), "%.0f", v);
	if (r->cpu_limit_cores > 0)
		snprintf(cpu, sizeof(cpu), "%.2f cores", r->cpu_limit_cores);
	text_add(t, 0, "Limits     cpu %s   memory %s   pids %s", cpu, mem, pids);
	text_add(t, 0, "%s", "");

	/* now */
	char rx[16], tx[16], rd[16], wr[16], used[16];
	top_fmt_units(used, sizeof(used), r->u.mem_bytes, true);
	top_fmt_units(rx, sizeof(rx), r->u.net_rx_bytes, false);
	top_fmt_units(tx, sizeof(tx), r->u.net_tx_bytes, false);
	top_fmt_units(rd, sizeof(rd), r->u.blk_read_bytes, false);
	top_fmt_units(wr, sizeof(wr), r->u.blk_write_bytes, false);
	text_add(t, A_BOLD, "Now        CPU %.1f%%   MEM %s (%.1f%%)   PIDS %.0f   NET total %s/%s   "
		 "IO total %s/%s", r->u.cpu_percent, used, r->u.mem_percent, r->u.pids, rx, tx, rd, wr);
	double thr_s = 0;
	bool have_thr_s = cli_value(c, "container_cpu_cfs_throttled_seconds_total", &thr_s);
	if (r->cpu_limit_cores <= 0 && r->throttle_pct <= 0)
		text_add(t, 0, "Throttling none: no CPU quota");
	else
		text_add(t, level_attr(u, r->throttle_pct >= 25 ? 2 : r->throttle_pct > 0 ? 1 : 0),
			 "Throttling %s of CPU periods throttled in the last tick, %s s in all",
			 r->throttle_pct >= 0 ? (snprintf(a, sizeof(a), "%.1f%%", r->throttle_pct), a)
					      : "-",
			 have_thr_s ? (snprintf(b, sizeof(b), "%.2f", thr_s), b) : "-");
	text_add(t, level_attr(u, r->oom_events > 0 || r->oom_killed ? 3 : 0),
		 "OOM        %s OOM events%s",
		 r->oom_events >= 0 ? (snprintf(a, sizeof(a), "%.0f", r->oom_events), a) : "-",
		 r->oom_killed ? ", the last run was OOM-killed" : "");
	text_add(t, 0, "%s", "");

	/* sparklines */
	text_add(t, A_BOLD, "History    last %.0f minutes from the agent's store", HIST_RANGE_S / 60);
	if (u->hist.av == TOP_AV_NONE) {
		text_add(t, A_DIM, "           loading...");
	} else if (u->hist.av != TOP_AV_OK) {
		text_add(t, level_attr(u, 1), "           %s", u->hist.msg);
	} else {
		int w = COLS - 40;
		if (w > (int)u->hist.n)
			w = (int)u->hist.n;
		if (w < 10)
			w = 10;
		for (int k = 0; k < TOP_H__COUNT; k++) {
			char sl[TOP_HIST_POINTS * 4 + 8], last[16] = "-", max[16] = "-";
			double mx = 0, lv = NAN;
			for (size_t i = 0; i < u->hist.n; i++) {
				if (isfinite(u->hist.v[k][i])) {
					lv = u->hist.v[k][i];
					if (lv > mx)
						mx = lv;
				}
			}
			top_sparkline(u->hist.v[k], u->hist.n, 0, w, u->utf8, sl, sizeof(sl));
			if (k == TOP_H_CPU) {
				if (isfinite(lv))
					snprintf(last, sizeof(last), "%.1f", lv);
				snprintf(max, sizeof(max), "%.1f", mx);
			} else {
				top_fmt_units(last, sizeof(last), isfinite(lv) ? lv : -1, k == TOP_H_MEM);
				top_fmt_units(max, sizeof(max), mx, k == TOP_H_MEM);
			}
			text_add(t, 0, "%-10s %s  now %s max %s", top_hist_names[k], sl, last, max);
		}
	}
	text_add(t, 0, "%s", "");

	/* forecasts */
	text_add(t, A_BOLD, "Forecasts");
	if (u->forecast.av == TOP_AV_OK) {
		const struct json *data = json_get(u->forecast.doc.root, "data");
		const struct json *list = data && data->type == JSON_OBJECT ?
			(json_get(data, "forecasts") ? json_get(data, "forecasts")
						     : json_get(data, "resources")) : data;
		const char *note = cli_str(data, "note");
		if (!list || list->type != JSON_ARRAY || !list->count)
			text_add(t, A_DIM, "           %s", *note ? note : "none yet");
		for (const struct json *f = list && list->type == JSON_ARRAY ? list->child : NULL; f;
		     f = f->next)
			forecast_line(u, f);
	} else if (u->forecast.av != TOP_AV_NONE) {
		text_add(t, A_DIM, "           %s", u->forecast.msg);
	}
	text_add(t, 0, "%s", "");

	/* alerts */
	text_add(t, A_BOLD, "Alerts");
	if (!u->m.alerts_available) {
		text_add(t, A_DIM, "           not available: the agent has no /api/v1/alerts");
	} else {
		size_t k = 0;
		for (size_t i = 0; i < u->ndet_alerts; i++) {
			const struct top_alert *al = &u->det_alerts[i];
			char since[64] = "";
			if (al->active_at > 0)
				cli_short_duration(since, sizeof(since),
						   (double)now_ms() / 1000.0 - al->active_at);
			const char *st = al->state == TOP_ALERT_FIRING ? "FIRING"
				       : al->state == TOP_ALERT_PENDING ? "pending" : "silenced";
			text_add(t, al->state == TOP_ALERT_FIRING ? level_attr(u, 3) : 0,
				 "           %-8s %s%s%s%s%s%s", st, al->alertname,
				 *al->severity ? " [" : "", al->severity, *al->severity ? "]" : "",
				 *since ? " for " : "", since);
			if (*al->summary)
				text_add(t, 0, "                    %s", al->summary);
			k++;
		}
		if (!k)
			text_add(t, A_DIM, "           none firing");
	}
}

static void procs_lines(struct ui *u)
{
	struct text *t = &u->text;
	if (u->procs.av != TOP_AV_OK) {
		text_add(t, A_DIM, "%s", u->procs.av == TOP_AV_NONE ? "loading..." : u->procs.msg);
		return;
	}
	const struct json *data = json_get(u->procs.doc.root, "data");
	const struct json *list = json_get(data, "processes");
	text_add(t, A_BOLD, "%7s %-10s %6s %6s %4s %s %s", "PID", "USER", "CPU%", "RSS", "THR", "S",
		 "COMMAND");
	for (const struct json *p = list ? list->child : NULL; p; p = p->next) {
		double pid = 0, cpu = 0, rss = 0, thr = 0;
		const struct json *v;
		if ((v = json_get(p, "pid")) && v->type == JSON_NUMBER)
			pid = v->number;
		if ((v = json_get(p, "cpu_percent")) && v->type == JSON_NUMBER)
			cpu = v->number;
		if ((v = json_get(p, "rss_bytes")) && v->type == JSON_NUMBER)
			rss = v->number;
		if ((v = json_get(p, "threads")) && v->type == JSON_NUMBER)
			thr = v->number;
		char r[16];
		top_fmt_units(r, sizeof(r), rss, true);
		text_add(t, 0, "%7.0f %-10.10s %6.1f %6s %4.0f %s %s", pid, cli_str(p, "user"), cpu, r,
			 thr, cli_str(p, "state"), cli_str(p, "command"));
	}
	double n = 0;
	const struct json *cnt = json_get(data, "count");
	if (cnt && cnt->type == JSON_NUMBER)
		n = cnt->number;
	text_add(t, A_DIM, "%.0f processes", n);
}

static void logs_lines(struct ui *u)
{
	struct text *t = &u->text;
	if (u->logs.av == TOP_AV_NONE) {
		text_add(t, A_DIM, "loading...");
		return;
	}
	if (u->logs.av != TOP_AV_OK && !u->logs.n) {
		text_add(t, A_DIM, "%s", u->logs.msg);
		return;
	}
	if (u->logs.av != TOP_AV_OK)
		text_add(t, level_attr(u, 1), "%s", u->logs.msg);
	size_t shown = 0;
	for (size_t i = 0; i < u->logs.n; i++) {
		const struct top_log_line *l = top_logs_line(&u->logs, i);
		if (*u->log_filter && !strcasestr(l->text, u->log_filter))
			continue;
		char when[16] = "";
		if (l->time > 0) {
			time_t s = (time_t)l->time;
			struct tm tm;
			localtime_r(&s, &tm);
			strftime(when, sizeof(when), "%H:%M:%S", &tm);
		}
		bool err = !strcmp(l->level, "error") || !strcmp(l->level, "fatal");
		bool warn = !strcmp(l->level, "warn") || !strcmp(l->stream, "stderr");
		text_add(t, err ? level_attr(u, 2) : warn ? level_attr(u, 1) : 0, "%s%s%s%s", when,
			 *when ? " " : "", !strcmp(l->stream, "stderr") ? "E " : "", l->text);
		shown++;
	}
	if (!shown)
		text_add(t, A_DIM, "%s", *u->log_filter ? "no line matches the filter" : "no lines yet");
}

static void env_lines(struct ui *u)
{
	struct text *t = &u->text;
	if (u->env.av != TOP_AV_OK) {
		text_add(t, A_DIM, "%s", u->env.av == TOP_AV_NONE ? "loading..." : u->env.msg);
		return;
	}
	const struct json *data = json_get(u->env.doc.root, "data");
	const struct json *list = json_get(data, "env");
	double pid = 0;
	if (json_get(data, "pid"))
		pid = json_get(data, "pid")->number;
	text_add(t, A_DIM, "environment of pid %.0f (values of secret-looking names masked)", pid);
	for (const struct json *e = list ? list->child : NULL; e; e = e->next) {
		const struct json *mk = json_get(e, "masked");
		bool masked = mk && mk->type == JSON_BOOL && mk->boolean;
		text_add(t, masked ? A_DIM : 0, "%s=%s", cli_str(e, "name"), cli_str(e, "value"));
	}
}

/* The alerts of the detail container, firing first. */
static void collect_det_alerts(struct ui *u, const struct top_row *r)
{
	u->ndet_alerts = 0;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < u->m.nalerts && u->ndet_alerts < ARRAY_LEN(u->det_alerts); i++) {
			const struct top_alert *a = &u->m.alerts[i];
			bool same = top_alert_is_for(a, r);
			if (same && (a->state == TOP_ALERT_FIRING) == (pass == 0))
				u->det_alerts[u->ndet_alerts++] = *a;
		}
}

static void draw_detail(struct ui *u)
{
	const struct top_row *r = top_model_find(&u->m, u->det_id);
	char line[1024];
	text_reset(&u->text);
	if (!r) {
		snprintf(line, sizeof(line), " %.12s: the container is gone (Esc goes back)", u->det_id);
		put(2, 0, A_REVERSE | A_BOLD, line);
		u->ndet_alerts = 0;
		return;
	}
	collect_det_alerts(u, r);
	size_t o = (size_t)snprintf(line, sizeof(line), " %s  %.12s  %s%s%s  ", r->name, r->id,
				    r->state, *r->health ? "/" : "", r->health);
	for (int p = 0; p < PANE__COUNT; p++)
		o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%s%s ", p == (int)u->pane ? "[" : " ",
				      pane_names[p], p == (int)u->pane ? "]" : " ");
	if (u->pane == PANE_LOGS)
		snprintf(line + o, sizeof(line) - o, " %s%s%s", u->follow ? "following" : "paused",
			 *u->log_filter ? "  filter: " : "", u->log_filter);
	int tw = (int)strlen(line);
	char full[1200];
	snprintf(full, sizeof(full), "%s%*s", line, COLS > tw ? COLS - tw : 0, "");
	put(2, 0, u->color ? COLOR_PAIR(CP_TITLE) | A_BOLD : A_REVERSE, full);

	switch (u->pane) {
	case PANE_INFO: info_lines(u, r); break;
	case PANE_PROCS: procs_lines(u); break;
	case PANE_LOGS: logs_lines(u); break;
	case PANE_ENV: env_lines(u); break;
	case PANE__COUNT: break;
	}
	int rows = LINES - 4;
	if (rows < 1)
		rows = 1;
	int max_scroll = u->text.n > rows ? u->text.n - rows : 0;
	if (u->pane == PANE_LOGS && u->follow)
		u->det_scroll = max_scroll;
	if (u->det_scroll > max_scroll)
		u->det_scroll = max_scroll;
	if (u->det_scroll < 0)
		u->det_scroll = 0;
	for (int k = 0; k < rows && u->det_scroll + k < u->text.n; k++)
		put(3 + k, 0, u->text.attr[u->det_scroll + k], u->text.s[u->det_scroll + k]);
}

/* ---- overlays ------------------------------------------------------------------------------ */

static void box_lines(struct ui *u, const char *title, const char *const *lines, size_t n,
		      int sel)
{
	int w = (int)strlen(title) + 4, h = (int)n + 2;
	for (size_t i = 0; i < n; i++) {
		int l = (int)strlen(lines[i]) + 4;
		if (l > w)
			w = l;
	}
	if (w > COLS)
		w = COLS;
	if (h > LINES)
		h = LINES;
	int y0 = (LINES - h) / 2, x0 = (COLS - w) / 2;
	for (int y = 0; y < h; y++) {
		move(y0 + y, x0);
		for (int x = 0; x < w; x++)
			addch(' ' | A_REVERSE);
	}
	char t[256];
	snprintf(t, sizeof(t), " %s ", title);
	put(y0, x0 + 1, A_REVERSE | A_BOLD, t);
	for (size_t i = 0; i < n && (int)i < h - 2; i++)
		put(y0 + 1 + (int)i, x0 + 2, (int)i == sel ? A_BOLD : A_REVERSE, lines[i]);
}

static void draw_overlay(struct ui *u)
{
	char buf[32][160];
	const char *lines[32];
	size_t n = 0;
	switch (u->ov) {
	case OV_HELP: {
		static const char *const help[] = {
			"q quit               ? this help          Esc back / clear filter",
			"Enter detail view    Up/Down PgUp/PgDn Home/End move",
			"/ filter: text  ~regex  key=value  key!=v  key=~re  !word (inverse)",
			"sort: c cpu  m memory  n name  i io  t network  u uptime  r restarts",
			"      p pids  < > previous/next column  R reverse",
			"a show/hide stopped  g group by compose project / pod",
			"C columns (Space toggles, S saves)   S save settings",
			"+/- refresh interval  space pause     x actions (admin token)",
			"detail: i info  p processes  l logs (f follow, / filter)  e env",
			"        s silence an alert (admin token)  Up/Down scroll",
			"colours: yellow >= warn, red >= crit of the limit; red rows:",
			"         unhealthy, OOM-killed or exited non-zero",
			"", "any key closes" };
		box_lines(u, "monitor top - keys", help, ARRAY_LEN(help), -1);
		return;
	}
	case OV_COLUMNS:
		for (int c = 0; c < TOP_COL__COUNT && n < ARRAY_LEN(buf); c++) {
			snprintf(buf[n], sizeof(buf[n]), "[%c] %-11s %s", u->m.col_on[c] ? 'x' : ' ',
				 top_cols[c].title, top_cols[c].help);
			lines[n] = buf[n];
			n++;
		}
		snprintf(buf[n], sizeof(buf[n]), "Space toggles, S saves to %.100s, Esc closes",
			 u->config_path);
		lines[n] = buf[n];
		n++;
		box_lines(u, "columns", lines, n, u->ov_sel);
		return;
	case OV_ACTIONS:
		for (size_t i = 0; i < ARRAY_LEN(actions); i++) {
			snprintf(buf[n], sizeof(buf[n]), "%zu %s", i + 1, actions[i]);
			lines[n] = buf[n];
			n++;
		}
		box_lines(u, "actions (Enter picks, Esc closes)", lines, n, u->ov_sel);
		return;
	case OV_CONFIRM: {
		const struct top_row *r = top_model_find(&u->m, u->screen == SCR_DETAIL ? u->det_id
											: u->sel_id);
		snprintf(buf[0], sizeof(buf[0]), "%s %s (%.12s)?", u->confirm_action,
			 r ? r->name : "?", r ? r->id : "");
		snprintf(buf[1], sizeof(buf[1]), "y: yes   any other key: no");
		lines[0] = buf[0];
		lines[1] = buf[1];
		box_lines(u, "confirm", lines, 2, -1);
		return;
	}
	case OV_SILENCE:
		for (size_t i = 0; i < u->ndet_alerts && n < ARRAY_LEN(buf); i++) {
			snprintf(buf[n], sizeof(buf[n]), "%zu %s %s", i + 1, u->det_alerts[i].alertname,
				 u->det_alerts[i].state == TOP_ALERT_SILENCED ? "(silenced)" : "");
			lines[n] = buf[n];
			n++;
		}
		box_lines(u, "silence which alert? (Enter, Esc)", lines, n, u->ov_sel);
		return;
	case OV_NONE:
		return;
	}
}

static void draw(struct ui *u)
{
	erase();
	draw_header(u);
	if (u->screen == SCR_LIST)
		draw_list(u);
	else
		draw_detail(u);
	draw_overlay(u);
	draw_footer(u);
	curs_set(u->in != IN_NONE ? 1 : 0);
	refresh();
}

/* ---- keys ------------------------------------------------------------------------------------ */

static void set_interval_step(struct ui *u, int dir)
{
	size_t i = 0;
	while (i + 1 < ARRAY_LEN(intervals_ms) && intervals_ms[i] < u->interval_ms)
		i++;
	if (dir < 0 && i > 0 && intervals_ms[i] >= u->interval_ms)
		i--;
	else if (dir > 0 && i + 1 < ARRAY_LEN(intervals_ms) && intervals_ms[i] <= u->interval_ms)
		i++;
	u->interval_ms = intervals_ms[i];
	u->next_ns = mono_ns() + u->interval_ms * 1000000;
	say(u, "refresh every %.2gs", (double)u->interval_ms / 1000);
}

static void save_settings(struct ui *u)
{
	int rc = top_config_save(&u->m, u->interval_ms, u->config_path);
	if (rc < 0)
		say(u, "cannot save %s: %s", u->config_path, strerror(-rc));
	else
		say(u, "settings saved to %s", u->config_path);
}

static void start_input(struct ui *u, enum input in, const char *initial)
{
	u->in = in;
	snprintf(u->input, sizeof(u->input), "%s", initial);
	u->input_len = strlen(u->input);
}

static void apply_filter(struct ui *u, const char *text)
{
	struct top_filter f;
	char err[256];
	if (top_filter_parse(&f, text, err, sizeof(err)) < 0) {
		say(u, "filter: %s", err);
		return;
	}
	top_filter_fini(&u->m.filter);
	u->m.filter = f;
	top_model_arrange(&u->m);
	u->in = IN_NONE;
}

static const char *current_id(struct ui *u)
{
	return u->screen == SCR_DETAIL ? u->det_id : u->sel_id;
}

static void input_key(struct ui *u, int ch)
{
	if (ch == 27) {              /* Esc: clear and close */
		if (u->in == IN_FILTER)
			apply_filter(u, "");
		else if (u->in == IN_LOGFILTER)
			u->log_filter[0] = '\0';
		u->in = IN_NONE;
		return;
	}
	if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
		if (u->in == IN_FILTER) {
			apply_filter(u, u->input);
		} else if (u->in == IN_LOGFILTER) {
			snprintf(u->log_filter, sizeof(u->log_filter), "%s", u->input);
			u->in = IN_NONE;
		} else if (u->in == IN_DURATION) {
			int64_t ms;
			u->in = IN_NONE;
			if (parse_duration_ms(u->input, &ms) < 0 || ms <= 0) {
				say(u, "silence: \"%s\" is not a duration such as 1h", u->input);
				return;
			}
			if ((size_t)u->ov_sel < u->ndet_alerts) {
				char msg[512];
				top_silence(&u->c, &u->det_alerts[u->ov_sel], u->input, msg, sizeof(msg));
				say(u, "%s", msg);
				u->alerts_next_ns = 0;
				u->next_ns = 0;
			}
		}
		return;
	}
	if (ch == 21) {              /* ^U: clear the line */
		u->input_len = 0;
		u->input[0] = '\0';
		return;
	}
	if ((ch == KEY_BACKSPACE || ch == 127 || ch == 8) && u->input_len > 0) {
		/* one UTF-8 character back */
		do
			u->input_len--;
		while (u->input_len > 0 && ((unsigned char)u->input[u->input_len] & 0xC0) == 0x80);
		u->input[u->input_len] = '\0';
		return;
	}
	if (ch >= 32 && ch < 256 && ch != 127 && u->input_len + 1 < sizeof(u->input)) {
		u->input[u->input_len++] = (char)ch;
		u->input[u->input_len] = '\0';
	}
}

static void open_actions(struct ui *u)
{
	if (!*u->c.token) {
		say(u, "actions need the admin token: --token-file FILE or $MONITOR_TOKEN");
		return;
	}
	if (!*current_id(u)) {
		say(u, "no container selected");
		return;
	}
	u->ov = OV_ACTIONS;
	u->ov_sel = 0;
}

static void overlay_key(struct ui *u, int ch)
{
	switch (u->ov) {
	case OV_HELP:
		u->ov = OV_NONE;
		return;
	case OV_COLUMNS:
		if (ch == KEY_UP || ch == 'k')
			u->ov_sel = u->ov_sel > 0 ? u->ov_sel - 1 : 0;
		else if (ch == KEY_DOWN || ch == 'j')
			u->ov_sel = u->ov_sel + 1 < TOP_COL__COUNT ? u->ov_sel + 1 : u->ov_sel;
		else if (ch == ' ' || ch == 'x') {
			if (u->ov_sel != TOP_COL_NAME && u->ov_sel != TOP_COL_STATUS)
				u->m.col_on[u->ov_sel] = !u->m.col_on[u->ov_sel];
		} else if (ch == 'S' || ch == 's') {
			save_settings(u);
		} else if (ch == 27 || ch == '\n' || ch == 'q' || ch == 'C') {
			u->ov = OV_NONE;
		}
		return;
	case OV_ACTIONS:
		if (ch == KEY_UP || ch == 'k')
			u->ov_sel = u->ov_sel > 0 ? u->ov_sel - 1 : 0;
		else if (ch == KEY_DOWN || ch == 'j')
			u->ov_sel = u->ov_sel + 1 < (int)ARRAY_LEN(actions) ? u->ov_sel + 1 : u->ov_sel;
		else if (ch >= '1' && ch < '1' + (int)ARRAY_LEN(actions)) {
			u->ov_sel = ch - '1';
			u->confirm_action = actions[u->ov_sel];
			u->ov = OV_CONFIRM;
		} else if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
			u->confirm_action = actions[u->ov_sel];
			u->ov = OV_CONFIRM;
		} else if (ch == 27 || ch == 'q') {
			u->ov = OV_NONE;
		}
		return;
	case OV_CONFIRM:
		u->ov = OV_NONE;
		if (ch == 'y' || ch == 'Y') {
			char msg[512];
			say(u, "%s: waiting for the agent...", u->confirm_action);
			draw(u);
			top_action(&u->c, current_id(u), u->confirm_action, msg, sizeof(msg));
			say(u, "%s", msg);
			u->next_ns = 0;
		} else {
			say(u, "%s: cancelled", u->confirm_action);
		}
		return;
	case OV_SILENCE:
		if (ch == KEY_UP || ch == 'k')
			u->ov_sel = u->ov_sel > 0 ? u->ov_sel - 1 : 0;
		else if (ch == KEY_DOWN || ch == 'j')
			u->ov_sel = u->ov_sel + 1 < (int)u->ndet_alerts ? u->ov_sel + 1 : u->ov_sel;
		else if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
			u->ov = OV_NONE;
			start_input(u, IN_DURATION, "1h");
		} else if (ch == 27 || ch == 'q') {
			u->ov = OV_NONE;
		}
		return;
	case OV_NONE:
		return;
	}
}

/* Keys both screens share; true when handled. */
static bool common_key(struct ui *u, int ch, bool *quit)
{
	switch (ch) {
	case 'q':
		*quit = true;
		return true;
	case '?':
	case 'h':
		u->ov = OV_HELP;
		return true;
	case '+':
	case '=':
		set_interval_step(u, 1);
		return true;
	case '-':
		set_interval_step(u, -1);
		return true;
	case ' ':
		u->paused = !u->paused;
		if (!u->paused)
			u->next_ns = 0;
		return true;
	case 'x':
		open_actions(u);
		return true;
	case 'S':
		save_settings(u);
		return true;
	case 12:                     /* ^L */
		clearok(curscr, TRUE);
		return true;
	}
	return false;
}

static void list_key(struct ui *u, int ch)
{
	struct top_model *m = &u->m;
	int rows = LINES - 5 > 1 ? LINES - 5 : 1;
	int s = top_sort_key(ch);
	if (s >= 0) {            /* R reverses; a sort key always starts in its natural order */
		m->reverse = false;
		m->sort = (enum top_col)s;
		top_model_arrange(m);
		return;
	}
	switch (ch) {
	case KEY_UP: case 'k': select_line(u, (long)u->sel - 1); break;
	case KEY_DOWN: case 'j': select_line(u, (long)u->sel + 1); break;
	case KEY_PPAGE: select_line(u, (long)u->sel - rows); break;
	case KEY_NPAGE: select_line(u, (long)u->sel + rows); break;
	case KEY_HOME: select_line(u, 0); break;
	case KEY_END: case 'G': select_line(u, (long)m->nlines - 1); break;
	case '<': case ',': top_model_sort_step(m, -1); break;
	case '>': case '.': top_model_sort_step(m, 1); break;
	case 'R': m->reverse = !m->reverse; top_model_arrange(m); break;
	case 'a':
		m->show_all = !m->show_all;
		top_model_arrange(m);
		say(u, m->show_all ? "showing stopped containers" : "hiding stopped containers");
		break;
	case 'g':
		m->group = !m->group;
		top_model_arrange(m);
		say(u, m->group ? "grouped by compose project / pod" : "not grouped");
		break;
	case 'C': u->ov = OV_COLUMNS; u->ov_sel = 0; break;
	case '/': start_input(u, IN_FILTER, m->filter.text); break;
	case 27:
		if (m->filter.nterms)
			apply_filter(u, "");
		break;
	case '\n': case '\r': case KEY_ENTER: case KEY_RIGHT:
		if (*u->sel_id)
			detail_open(u, u->sel_id);
		break;
	}
}

static void detail_key(struct ui *u, int ch)
{
	int rows = LINES - 4 > 1 ? LINES - 4 : 1;
	enum pane before = u->pane;
	switch (ch) {
	case 27: case KEY_LEFT: case KEY_BACKSPACE: case 127:
		u->screen = SCR_LIST;
		return;
	case 'i': u->pane = PANE_INFO; break;
	case 'p': u->pane = PANE_PROCS; break;
	case 'l': u->pane = PANE_LOGS; break;
	case 'e': u->pane = PANE_ENV; break;
	case '\t': u->pane = (enum pane)((u->pane + 1) % PANE__COUNT); break;
	case KEY_BTAB: u->pane = (enum pane)((u->pane + PANE__COUNT - 1) % PANE__COUNT); break;
	case KEY_UP: case 'k': u->det_scroll--; u->follow = false; break;
	case KEY_DOWN: case 'j': u->det_scroll++; break;
	case KEY_PPAGE: u->det_scroll -= rows; u->follow = false; break;
	case KEY_NPAGE: u->det_scroll += rows; break;
	case KEY_HOME: u->det_scroll = 0; u->follow = false; break;
	case KEY_END: u->det_scroll = 1 << 30; break;
	case 'f':
		if (u->pane == PANE_LOGS) {
			u->follow = !u->follow;
			if (u->follow)
				top_fetch_logs(&u->c, &u->logs, LOG_TAIL);
		}
		break;
	case '/':
		if (u->pane == PANE_LOGS)
			start_input(u, IN_LOGFILTER, u->log_filter);
		break;
	case 's':
		if (!u->m.alerts_available) {
			say(u, "alerts are not available: the agent has no /api/v1/alerts");
		} else if (!u->ndet_alerts) {
			say(u, "this container has no alert to silence");
		} else if (!*u->c.token) {
			say(u, "silencing needs the admin token: --token-file FILE or $MONITOR_TOKEN");
		} else {
			u->ov = OV_SILENCE;
			u->ov_sel = 0;
		}
		break;
	}
	if (u->pane != before) {
		u->det_scroll = 0;
		if (u->pane == PANE_LOGS)
			u->follow = true;
		detail_refresh(u, true);
	}
}

/* ---- the interactive loop ---------------------------------------------------------------- */

static void curses_start(struct ui *u, bool no_color)
{
	initscr();
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	u->color = !no_color && has_colors();
	if (u->color) {
		start_color();
		use_default_colors();
		init_pair(CP_OK, COLOR_GREEN, -1);
		init_pair(CP_WARN, COLOR_YELLOW, -1);
		init_pair(CP_CRIT, COLOR_RED, -1);
		init_pair(CP_HEAD, COLOR_CYAN, -1);
		init_pair(CP_TITLE, COLOR_BLACK, COLOR_CYAN);
		init_pair(CP_DIM, COLOR_BLUE, -1);
		init_pair(CP_GROUP, COLOR_MAGENTA, -1);
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_quit_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static int run_interactive(struct ui *u, bool no_color)
{
	u->text.s = calloc(TEXT_LINES, sizeof(*u->text.s));
	u->text.attr = calloc(TEXT_LINES, sizeof(*u->text.attr));
	if (!u->text.s || !u->text.attr) {
		cli_err(&u->c, "out of memory");
		return 1;
	}
	curses_start(u, no_color);
	bool quit = false;
	while (!quit && !quit_signal) {
		int64_t now = mono_ns();
		if (!u->paused && now >= u->next_ns) {
			refresh_data(u);
			u->next_ns = mono_ns() + u->interval_ms * 1000000;
		}
		draw(u);
		int64_t wait_ms = u->paused ? 1000 : (u->next_ns - mono_ns()) / 1000000;
		if (wait_ms < 0)
			wait_ms = 0;
		/* the unreachable banner counts seconds; messages expire */
		if (wait_ms > 1000 && (!u->connected || *u->msg))
			wait_ms = 1000;
		timeout((int)wait_ms);
		int ch = getch();
		if (ch == ERR || ch == KEY_RESIZE)
			continue;
		if (u->in != IN_NONE)
			input_key(u, ch);
		else if (u->ov != OV_NONE)
			overlay_key(u, ch);
		else if (!common_key(u, ch, &quit)) {
			if (u->screen == SCR_LIST)
				list_key(u, ch);
			else
				detail_key(u, ch);
		}
	}
	endwin();
	return 0;
}

/* ---- the command ------------------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: monitor top [flags]\n"
		"The live terminal view of every container the agent sees: CPU, memory, network,\n"
		"block I/O, PIDs, restarts, uptime and alerts; Enter opens a container's detail\n"
		"(history, processes, logs, environment). ? in the view lists the keys.\n"
		"  -d, --interval DUR  refresh every DUR (default 1s; +/- in the view)\n"
		"  -a, --all           show stopped containers too (a in the view)\n"
		"  -f, --filter TEXT   start with this filter (text ~regex key=value !not)\n"
		"  -s, --sort COLUMN   cpu, mem, name, io, net, uptime, restarts, pids, ...\n"
		"  -g, --group         group by compose project / pod with subtotals\n"
		"      --columns LIST  comma-separated columns (see --help-columns)\n"
		"      --warn PCT      yellow at PCT %% of the limit (default 70)\n"
		"      --crit PCT      red at PCT %% of the limit (default 90)\n"
		"      --no-color      no colours (also when $NO_COLOR is set)\n"
		"      --ascii         no Unicode glyphs\n"
		"      --once          print one frame as text and exit (takes one tick)\n"
		"      --json          print one snapshot as JSON and exit\n"
		"      --width N       width of the --once frame (default: the terminal's)\n"
		"      --config FILE   settings file (default $MONITOR_TOP_CONFIG or\n"
		"                      ~/.config/monitor/top.conf; C then S in the view saves it)\n"
		"      --help-columns  list the columns and the order they drop in at narrow widths\n"
		CLI_COMMON_USAGE
		"For http:// URLs `monitor top` runs monitor-top from beside the monitor binary\n"
		"(the same view without libcurl: a few MB resident); MONITOR_TOP_INPROCESS=1\n"
		"keeps it in this process. Requests give up after 3s here unless --timeout.\n");
}

static void usage_columns(void)
{
	printf("column     title        default  what\n");
	for (int c = 0; c < TOP_COL__COUNT; c++)
		printf("%-10s %-12s %-8s %s\n", top_cols[c].key, top_cols[c].title,
		       top_cols[c].default_on ? "on" : "off", top_cols[c].help);
	printf("\nOn a narrow terminal columns drop in this order: ");
	for (size_t i = 0; i < top_drop_order_len; i++)
		printf("%s%s", i ? ", " : "",
		       top_drop_order[i] == TOP_COL__COUNT ? "the CPU and MEM bars"
							  : top_cols[top_drop_order[i]].key);
	printf("; status, name, cpu, mem and alert always stay.\n");
}

static int terminal_width(void)
{
	struct winsize ws;
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	const char *c = getenv("COLUMNS");
	return c && atoi(c) > 0 ? atoi(c) : 0;
}

/* --once and --json: two ticks (for CPU % and rates), alerts, one frame. */
static int run_batch(struct ui *u, bool json, int width)
{
	struct cli_list a, b;
	if (cli_list_fetch(&u->c, &a) < 0)
		return 1;
	int rc = cli_list_fetch_next(&u->c, &a, &b, BATCH_TICK_WAIT_MS);
	if (rc < 0) {
		cli_list_free(&a);
		return 1;
	}
	if (top_model_update(&u->m, &a) < 0 ||
	    (rc == 0 && top_model_update(&u->m, &b) < 0)) {
		cli_err(&u->c, "out of memory");
		return 1;
	}
	if (rc == 1) {
		cli_list_free(&b);
		cli_err(&u->c, "the agent published no new tick in %d s: no CPU %% or rates",
			BATCH_TICK_WAIT_MS / 1000);
	}
	/* Alerts are optional: an agent without them answers "not available". */
	char *saved = u->c.err;
	u->c.err = u->err;
	u->c.errsize = sizeof(u->err);
	top_fetch_alerts(&u->c, &u->m);
	u->c.err = saved;
	top_model_arrange(&u->m);
	struct buf out;
	buf_init(&out, CLI_BODY_CAP);
	int r = json ? top_render_json(&u->m, &out)
		     : top_render_text(&u->m, u->c.url, width, u->utf8, &out);
	if (r < 0) {
		cli_err(&u->c, "out of memory rendering %zu containers", u->m.nrows);
		buf_fini(&out);
		return 1;
	}
	fwrite(out.data ? out.data : "", 1, out.len, stdout);
	buf_fini(&out);
	return fflush(stdout) == 0 ? 0 : 1;
}

enum {
	OPT_NO_COLOR = 1, OPT_ASCII, OPT_ONCE, OPT_JSON, OPT_WIDTH, OPT_CONFIG, OPT_COLUMNS,
	OPT_WARN, OPT_CRIT, OPT_HELP_COLUMNS,
};

static int run_top(int argc, char **argv);

int top_lite_main(int argc, char **argv)
{
	return run_top(argc, argv);
}

/* The URL the flags or $MONITOR_URL name ("" for the default). */
static const char *url_arg(int argc, char **argv)
{
	const char *url = getenv("MONITOR_URL");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--url") && i + 1 < argc)
			url = argv[i + 1];
		else if (!strncmp(argv[i], "--url=", 6))
			url = argv[i] + 6;
	}
	return url ? url : "";
}

/*
 * `monitor top` runs monitor-top (agent/top_main.c: this view without
 * libcurl and the agent's libraries, so a few MB resident instead of ten)
 * when it lies beside this binary and the agent is reached over plain
 * HTTP; otherwise, or with MONITOR_TOP_INPROCESS=1, it runs here.
 */
int cli_top_main(int argc, char **argv)
{
	const char *in = getenv("MONITOR_TOP_INPROCESS");
	char self[4096], lean[4200];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if ((!in || strcmp(in, "1") != 0) && n > 0 && strncasecmp(url_arg(argc, argv), "https:", 6)) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(lean, sizeof(lean), "%s/monitor-top", self);
			if (access(lean, X_OK) == 0) {
				char **args = calloc((size_t)argc + 1, sizeof(*args));
				if (args) {
					args[0] = lean;
					for (int i = 1; i < argc; i++)
						args[i] = argv[i];
					execv(lean, args);
					free(args);   /* failed: carry on in this process */
				}
			}
		}
	}
	return run_top(argc, argv);
}

static int run_top(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "interval", required_argument, 0, 'd' }, { "all", no_argument, 0, 'a' },
		{ "filter", required_argument, 0, 'f' },   { "sort", required_argument, 0, 's' },
		{ "group", no_argument, 0, 'g' },          { "help", no_argument, 0, 'h' },
		{ "no-color", no_argument, 0, OPT_NO_COLOR }, { "ascii", no_argument, 0, OPT_ASCII },
		{ "once", no_argument, 0, OPT_ONCE },      { "json", no_argument, 0, OPT_JSON },
		{ "width", required_argument, 0, OPT_WIDTH },
		{ "config", required_argument, 0, OPT_CONFIG },
		{ "columns", required_argument, 0, OPT_COLUMNS },
		{ "warn", required_argument, 0, OPT_WARN }, { "crit", required_argument, 0, OPT_CRIT },
		{ "help-columns", no_argument, 0, OPT_HELP_COLUMNS },
		CLI_COMMON_OPTIONS,
		{ 0, 0, 0, 0 },
	};
	struct ui *u = calloc(1, sizeof(*u));
	if (!u) {
		fprintf(stderr, "monitor top: out of memory\n");
		return 1;
	}
	cli_init(&u->c, "top");
	u->c.timeout_ms = TOP_TIMEOUT_MS;
	top_model_init(&u->m);
	u->interval_ms = TOP_INTERVAL_MS;
	setlocale(LC_ALL, "");
	u->utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");

	/* The settings file first, so that flags override it. */
	const char *config = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config = argv[i + 1];
		else if (!strncmp(argv[i], "--config=", 9))
			config = argv[i] + 9;
	}
	if (config)
		snprintf(u->config_path, sizeof(u->config_path), "%s", config);
	else if (top_config_path(u->config_path, sizeof(u->config_path)) < 0)
		u->config_path[0] = '\0';

	int status = 2;
	char err[512];
	if (*u->config_path) {
		int rc = top_config_load(&u->m, &u->interval_ms, u->config_path, err, sizeof(err));
		if (rc < 0 && rc != -ENOENT) {   /* a missing file: defaults, S creates it */
			cli_err(&u->c, "%s", err);
			goto out;
		}
	}
	bool once = false, json = false, no_color = getenv("NO_COLOR") && *getenv("NO_COLOR");
	int width = -1;
	const char *filter = NULL;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "d:af:s:gh", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			if (parse_duration_ms(optarg, &u->interval_ms) < 0 || u->interval_ms < 100 ||
			    u->interval_ms > 3600000) {
				cli_err(&u->c, "--interval %s: expected a duration from 100ms to 1h", optarg);
				goto out;
			}
			break;
		case 'a': u->m.show_all = true; break;
		case 'g': u->m.group = true; break;
		case 'f': filter = optarg; break;
		case 's': {
			int c = top_col_by_key(optarg);
			if (c < 0) {
				cli_err(&u->c, "--sort %s: no such column (--help-columns lists them)", optarg);
				goto out;
			}
			u->m.sort = (enum top_col)c;
			break;
		}
		case 'h': usage(stdout); status = 0; goto out;
		case OPT_HELP_COLUMNS: usage_columns(); status = 0; goto out;
		case OPT_NO_COLOR: no_color = true; break;
		case OPT_ASCII: u->utf8 = false; break;
		case OPT_ONCE: once = true; break;
		case OPT_JSON: json = true; break;
		case OPT_CONFIG: break;     /* read above */
		case OPT_WIDTH: {
			char *end;
			long w = strtol(optarg, &end, 10);
			if (*end || w < 20 || w > 4096) {
				cli_err(&u->c, "--width %s: expected 20 to 4096", optarg);
				goto out;
			}
			width = (int)w;
			break;
		}
		case OPT_COLUMNS: {
			bool on[TOP_COL__COUNT] = { false };
			char copy[1024], *save = NULL;
			snprintf(copy, sizeof(copy), "%s", optarg);
			for (char *k = strtok_r(copy, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
				int c = top_col_by_key(k);
				if (c < 0) {
					cli_err(&u->c, "--columns: unknown column \"%s\" (--help-columns "
						"lists them)", k);
					goto out;
				}
				on[c] = true;
			}
			on[TOP_COL_STATUS] = on[TOP_COL_NAME] = true;
			memcpy(u->m.col_on, on, sizeof(on));
			break;
		}
		case OPT_WARN:
		case OPT_CRIT: {
			char *end;
			double v = strtod(optarg, &end);
			if (*end == '%')
				end++;
			if (*end || !(v > 0 && v <= 1000)) {
				cli_err(&u->c, "--%s %s: expected a percentage", ch == OPT_WARN ? "warn"
									: "crit", optarg);
				goto out;
			}
			*(ch == OPT_WARN ? &u->m.warn_pct : &u->m.crit_pct) = v;
			break;
		}
		case '?': usage(stderr); goto out;
		default:
			if (cli_common_opt(&u->c, ch, optarg) < 0)
				goto out;
		}
	}
	if (optind < argc) {
		cli_err(&u->c, "unexpected argument \"%s\"", argv[optind]);
		usage(stderr);
		goto out;
	}
	if (u->m.warn_pct > u->m.crit_pct) {
		cli_err(&u->c, "--warn %g is above --crit %g", u->m.warn_pct, u->m.crit_pct);
		goto out;
	}
	if (filter && top_filter_parse(&u->m.filter, filter, err, sizeof(err)) < 0) {
		cli_err(&u->c, "--filter: %s", err);
		goto out;
	}
	status = 1;
	if (cli_open(&u->c) < 0)
		goto out;
	if (once || json) {
		status = run_batch(u, json, width >= 0 ? width : terminal_width());
		goto out;
	}
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		cli_err(&u->c, "needs a terminal; --once or --json print a frame for scripts");
		goto out;
	}
	/* From here on, messages go to the screen's status line, not stderr. */
	u->c.err = u->err;
	u->c.errsize = sizeof(u->err);
	status = run_interactive(u, no_color);
out:
	cli_close(&u->c);
	top_doc_free(&u->procs);
	top_doc_free(&u->env);
	top_doc_free(&u->forecast);
	top_logs_fini(&u->logs);
	top_model_fini(&u->m);
	free(u->text.s);
	free(u->text.attr);
	free(u);
	return status;
}
