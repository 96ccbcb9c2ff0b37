/*
 * top.h - `monitor top`, the live terminal view: what its model and its
 * view share. Private to agent/.
 *
 * The program is split in three so that everything but the drawing can be
 * tested without a terminal:
 *
 *   top_model.c  the data: rows computed from two ticks of
 *                /api/v1/containers (docker-stats arithmetic from
 *                cli_stats.c, per-second rates, smoothed sort values),
 *                the filter language, sorting, grouping with subtotals,
 *                the totals row, colour levels, which columns fit a width
 *   top_text.c   cells and whole frames as text (--once), the JSON
 *                snapshot (--json), sparklines, units, the settings file
 *   top_data.c   what the detail view fetches (history for sparklines,
 *                processes, logs, environment, forecasts, alerts, silences)
 *                and the alert list, each degrading to "not available"
 *   top_view.c   ncurses: screens, keys, dialogs; the only file that
 *                includes curses.h, and the command's main()
 *
 * Everything here runs on the one thread of the client.
 */
#ifndef MONITOR_TOP_H
#define MONITOR_TOP_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "agent/cli.h"

#define TOP_NAME_MAX 256             /* names, images, groups kept per row */
#define TOP_NAME_KEEP 20             /* a name keeps this many characters before columns go */
#define TOP_FILTER_TEXT_MAX 256
#define TOP_FILTER_MAX_TERMS 8
#define TOP_ALERTS_MAX 4096          /* alerts kept from /api/v1/alerts */
#define TOP_SMOOTH_TAU_S 5.0         /* time constant of the sort smoothing */
#define TOP_WARN_DEFAULT 70.0
#define TOP_CRIT_DEFAULT 90.0

/* `monitor top` in the monitor-top binary (agent/top_main.c): the same
 * command, never handing over to another binary. */
int top_lite_main(int argc, char **argv);

/* ---- columns ---------------------------------------------------------------- */

enum top_col {
	TOP_COL_STATUS,      /* state + health glyph */
	TOP_COL_NAME,
	TOP_COL_CPU,         /* docker stats' CPU % (100 = one core), bar of limit/host */
	TOP_COL_CPU_LIMIT,   /* % of the CPU quota; "-" without one */
	TOP_COL_MEM,         /* working set / limit, bar */
	TOP_COL_NET,         /* rx/tx bytes per second */
	TOP_COL_IO,          /* block read/write bytes per second */
	TOP_COL_PIDS,
	TOP_COL_RESTARTS,
	TOP_COL_UPTIME,
	TOP_COL_ALERT,       /* firing / pending / silenced marker */
	TOP_COL_ID,          /* optional columns from here on (off by default) */
	TOP_COL_IMAGE,
	TOP_COL_GROUP,       /* compose project or namespace/pod */
	TOP_COL_THROTTLE,    /* % of CFS periods throttled */
	TOP_COL_OOM,         /* OOM events */
	TOP_COL__COUNT
};

struct top_col_info {
	const char *key;     /* in the settings file and --columns */
	const char *title;
	int width;           /* fixed width (NAME: its minimum) */
	int bar_width;       /* extra width of its bar, 0 when none */
	bool default_on;
	const char *help;
};
extern const struct top_col_info top_cols[TOP_COL__COUNT];
/*
 * The order in which columns leave a narrow screen, first to go first:
 * optional columns, CPU/L, UPTIME, then the bars of CPU and MEM, IO,
 * RESTARTS, PIDS, NET. STATUS, NAME, CPU, MEM and ALERT always stay.
 * TOP_COL__COUNT in an entry stands for "the bars".
 */
extern const enum top_col top_drop_order[];
extern const size_t top_drop_order_len;
/* The column whose key is key, or -1. */
int top_col_by_key(const char *key);

/* ---- rows ---------------------------------------------------------------------- */

enum top_alert_state { TOP_ALERT_NONE, TOP_ALERT_SILENCED, TOP_ALERT_PENDING, TOP_ALERT_FIRING };

/* One container as the list shows it. The strings point into the model's
 * current list (valid until the next top_model_update) and are never NULL. */
struct top_row {
	const struct json *ctr;
	const char *id, *name, *image, *state, *health, *group;
	const char *cgroup;      /* the series' "id" label (cAdvisor's: the cgroup path) */
	bool up;                 /* running, paused or restarting */
	bool bad;                /* unhealthy, OOM-killed or exited non-zero: red */
	struct cli_usage u;      /* docker stats' numbers (cli_usage_compute) */
	bool have_rates;         /* two ticks seen: the rates below are set */
	double net_rx_rate, net_tx_rate, io_read_rate, io_write_rate;  /* bytes/s */
	double cpu_limit_cores;  /* quota / period; 0: no quota */
	double cpu_of_limit;     /* % of the quota, or of the whole host without one */
	bool mem_limited;        /* an explicit limit below the host's memory */
	double restarts;         /* -1: unknown */
	double uptime_s;         /* -1: not running */
	double exit_code;        /* -1: unknown */
	bool oom_killed;
	double oom_events;       /* -1: unknown */
	double throttle_pct;     /* -1: unknown */
	enum top_alert_state alert;
	int nfiring;
	/* Smoothed values that sorting uses, so rows do not jump. */
	double s_cpu, s_mem, s_net, s_io;
};

/* What a row, a group's subtotal and the totals line add up. */
struct top_sum {
	size_t count;
	double cpu_percent, mem_bytes, net_rx_rate, net_tx_rate, io_read_rate, io_write_rate, pids;
	bool have_rates;
};

/* The host line of the header. */
struct top_host {
	bool have_cpu;
	double cpu_percent;      /* busy % of all CPUs (0-100) */
	double cpus;
	double mem_total_bytes, mem_used_bytes;   /* used < 0: unknown */
	double load[3];          /* < 0: unknown */
	size_t total, running, stopped, unhealthy, paused;
	size_t firing, silenced;
};

/* One line of the list: a container row or a group's subtotal line. */
enum top_line_kind { TOP_LINE_ROW, TOP_LINE_GROUP };
struct top_line {
	enum top_line_kind kind;
	size_t index;            /* rows[] index, or groups[] index */
};
struct top_group {
	const char *key;         /* "" for containers in no group */
	struct top_sum sum;
	double sort_value;
};

/* ---- the filter ------------------------------------------------------------------ */

/*
 * A filter is words separated by blanks; a row must match every word.
 *   text         case-insensitive substring of name, id, image or group
 *   ~regex       extended regex (case-insensitive) on the same
 *   key=value    exact: a label of the container, or one of name, id,
 *                image, state, health, project, pod, namespace, runtime
 *   key!=value   the inverse; key=~regex matches the value by regex
 *   !word        the inverse of any of the above
 */
enum top_term_kind { TOP_TERM_TEXT, TOP_TERM_REGEX, TOP_TERM_KEY_EQ, TOP_TERM_KEY_RE };
struct top_term {
	enum top_term_kind kind;
	bool negate;
	char key[128];
	char text[TOP_FILTER_TEXT_MAX];
	regex_t re;
	bool have_re;
};
struct top_filter {
	char text[TOP_FILTER_TEXT_MAX];  /* as typed */
	struct top_term terms[TOP_FILTER_MAX_TERMS];
	size_t nterms;
};
/* Parses text into f (f need not be initialised; free with top_filter_fini).
 * Returns 0, or -EINVAL with the reason in err (f is then empty). */
int top_filter_parse(struct top_filter *f, const char *text, char *err, size_t errsize);
void top_filter_fini(struct top_filter *f);
/* True when r matches every term (an empty filter matches all). */
bool top_filter_match(const struct top_filter *f, const struct top_row *r);

/* ---- the model ---------------------------------------------------------------------- */

struct top_alert {
	char id[512], name[TOP_NAME_MAX];  /* the container labels (either may be ""); id is
					    * the cgroup path, as the series carry it */
	char alertname[128];
	char severity[32];
	char summary[256];
	enum top_alert_state state;
	double active_at;                 /* unix s, 0 unknown */
};

struct top_ema {
	char id[80];
	double cpu, mem, net, io;
};

struct top_model {
	struct cli_list prev, cur;       /* prev only during top_model_update */
	bool have_prev, have_cur;
	struct top_row *rows;            /* one per container of cur */
	size_t nrows, rows_cap;
	struct top_line *lines;          /* what the list shows, in order */
	size_t nlines, lines_cap;
	struct top_group *groups;
	size_t ngroups, groups_cap;
	struct top_sum totals;           /* over the rows shown */
	struct top_host host;
	struct top_ema *ema;             /* smoothed values by id, sorted by id */
	size_t nema, ema_cap;
	struct top_alert *alerts;        /* from /api/v1/alerts; NULL when none */
	size_t nalerts;
	bool alerts_available;
	/* settings */
	enum top_col sort;
	bool reverse;
	bool show_all;
	bool group;
	bool col_on[TOP_COL__COUNT];
	double warn_pct, crit_pct;
	struct top_filter filter;
};

/* Defaults: sort by CPU, running containers only, default columns, 70/90. */
void top_model_init(struct top_model *m);
void top_model_fini(struct top_model *m);
/*
 * Takes the newest list (ownership moves to m; l is left empty). A list of
 * the same tick as the current one is dropped (returns 0: nothing new);
 * a newer one becomes current and the old current the previous, rows are
 * recomputed and smoothed (returns 1). Returns -ENOMEM on failure.
 */
int top_model_update(struct top_model *m, struct cli_list *l);
/* Rebuilds lines[], groups[] and totals from rows[] after a change of the
 * sort, filter, grouping or show_all setting (top_model_update does it). */
void top_model_arrange(struct top_model *m);
/* Replaces the alerts (ownership of a moves to m, a malloc'd array) and
 * marks the rows; available false: the agent has no alert API. */
void top_model_set_alerts(struct top_model *m, struct top_alert *a, size_t n, bool available);
/* True when alert a is about the container of r (its id label is r's
 * cgroup or id, else its name label is r's name). */
bool top_alert_is_for(const struct top_alert *a, const struct top_row *r);
/* The row with id, or NULL. */
const struct top_row *top_model_find(const struct top_model *m, const char *id);

/* One exponential smoothing step of x over dt seconds with time constant
 * tau; prev < 0 means no history (returns x). */
double top_smooth(double prev, double x, double dt_s, double tau_s);
/* Colour level of a percentage: 0 normal, 1 warn, 2 critical. */
int top_level(const struct top_model *m, double pct);
/* Moves the sort to the previous/next shown column (dir -1/+1). */
void top_model_sort_step(struct top_model *m, int dir);
/* The sort column a key (c m n i t u r p) selects, or -1. */
int top_sort_key(int ch);

/* ---- layout ---------------------------------------------------------------------------- */

struct top_layout {
	enum top_col cols[TOP_COL__COUNT];
	int width[TOP_COL__COUNT];       /* by position */
	size_t ncols;
	bool bars;
	int total;                       /* characters used, separators included */
};
/* Which of the enabled columns fit in screen_width, and how wide, the name
 * taking what is left up to the longest name shown. */
void top_layout_compute(const struct top_model *m, int screen_width, struct top_layout *out);

/* ---- text (top_text.c) ----------------------------------------------------------------- */

/* Compact units: bytes as "512", "1.2k", "34k", "1.2M" (decimal; binary
 * with binary=true: "K", "M", "G" are KiB, MiB, GiB), at most 5 characters. */
void top_fmt_units(char *out, size_t size, double v, bool binary);
/* A sparkline of v[0..n) scaled 0..max (max <= 0: the largest value)
 * in width characters, the newest value on the right; NaN is a gap.
 * utf8 picks block glyphs, else " .:-=+*#". */
void top_sparkline(const double *v, size_t n, double max, int width, bool utf8, char *out,
		   size_t size);
/* A bar "[|||   ]" of width characters (brackets included) for pct 0-100. */
void top_bar(double pct, int width, char *out, size_t size);
/* The middle-ellipsised s in at most width display columns. */
void top_ellipsize(const char *s, int width, bool utf8, char *out, size_t size);
/* The text of cell col of row r (width: the column's width; bars: with
 * its bar) and its colour level (0-2; 3: the row's "bad" red). */
void top_cell(const struct top_model *m, const struct top_row *r, enum top_col col, int width,
	      bool bars, bool utf8, char *out, size_t size, int *level);
/* The same for a subtotal or totals line (label in the NAME column). */
void top_sum_cell(const struct top_sum *s, const char *label, enum top_col col, int width,
		  bool utf8, char *out, size_t size);
/* A line of the layout: the column titles with the sort marker. */
void top_title_line(const struct top_model *m, const struct top_layout *lay, char *out,
		    size_t size);
/* The header's lines (host, counts) for url and a connection status
 * ("" when fine). */
void top_header_lines(const struct top_model *m, const char *url, const char *status,
		      char lines[2][512]);
/* The whole frame as text: header, titles, rows, totals; width 0: every
 * enabled column. */
int top_render_text(const struct top_model *m, const char *url, int width, bool utf8,
		    struct buf *out);
/* The model as one JSON document (--json). */
int top_render_json(const struct top_model *m, struct buf *out);

/* The settings file: columns, sort, reverse, show_all, group, warn, crit,
 * interval. Path: $MONITOR_TOP_CONFIG, else $XDG_CONFIG_HOME/monitor/top.conf,
 * else ~/.config/monitor/top.conf. */
int top_config_path(char *out, size_t size);
/* Reads path into m and *interval_ms. -ENOENT when missing, -EINVAL with
 * "path:line: what" in err. */
int top_config_load(struct top_model *m, int64_t *interval_ms, const char *path, char *err,
		    size_t errsize);
/* Writes m's settings (making the directory). 0 or -errno. */
int top_config_save(const struct top_model *m, int64_t interval_ms, const char *path);

/* ---- what the view fetches (top_data.c) ------------------------------------------------ */

/*
 * Every piece of the detail view comes from an endpoint that an older agent
 * (or one built without a feature) may lack. A piece is OK, ABSENT (the
 * agent has no such endpoint: shown as "not available"), or ERROR (the
 * agent is unreachable or said no: the message says why).
 */
enum top_avail { TOP_AV_NONE, TOP_AV_OK, TOP_AV_ABSENT, TOP_AV_ERROR };
struct top_doc {
	enum top_avail av;
	long status;
	char msg[256];
	struct json_doc doc;         /* the answer when av == TOP_AV_OK */
};
/* GETs path into d (freeing what d held). Returns d->av. */
enum top_avail top_doc_get(struct cli *c, const char *path, struct top_doc *d);
void top_doc_free(struct top_doc *d);

/* GET /api/v1/alerts into the model (top_model_set_alerts). Returns 0, or
 * -ENOENT when the agent has no alert API, -EIO when it did not answer. */
int top_fetch_alerts(struct cli *c, struct top_model *m);
/* Parses one Prometheus-format alert object into a. false when it is not
 * an alert. */
bool top_parse_alert(const struct json *j, struct top_alert *a);

/* Sparkline history from the agent's store (PromQL query_range). */
#define TOP_HIST_POINTS 120
enum top_hist { TOP_H_CPU, TOP_H_MEM, TOP_H_NET_RX, TOP_H_NET_TX, TOP_H_IO_R, TOP_H_IO_W,
		TOP_H__COUNT };
struct top_history {
	enum top_avail av;
	char msg[256];
	double v[TOP_H__COUNT][TOP_HIST_POINTS];   /* NaN: no sample */
	size_t n;
	double start, step_s;
};
extern const char *const top_hist_names[TOP_H__COUNT];
/* Fills h with range_s seconds up to now (unix s) for the container whose
 * series carry id_label (its cgroup path, top_row.cgroup). */
int top_fetch_history(struct cli *c, const char *id, double now, double range_s,
		      struct top_history *h);
/* Fills v[0..n) from a query_range answer's first series on the grid
 * start + i * step (NaN where there is no sample). */
void top_history_fill(const struct json *result, double start, double step_s, double *v,
		      size_t n);

/* The logs pane: a bounded ring of lines, fetched with a cursor so a
 * follow only asks for what is new. */
#define TOP_LOG_LINES 2000
#define TOP_LOG_LINE_BYTES 4096
struct top_log_line {
	double time;
	char stream[8];
	char level[8];           /* "error", "warn", ... or "" */
	char *text;              /* malloc'd */
};
struct top_logs {
	enum top_avail av;
	char msg[256];
	char id[80];
	struct top_log_line *ring;
	size_t n, head;          /* ring holds n lines ending before head */
	double cursor;           /* time of the newest line held */
	size_t cursor_dups;      /* lines at exactly cursor already held */
	unsigned long long last_seq;  /* the agent's cursor (data.last_seq), when it gives one */
	bool have_seq;
};
void top_logs_reset(struct top_logs *l, const char *id);
void top_logs_fini(struct top_logs *l);
/* The i-th oldest line held (i < l->n). */
const struct top_log_line *top_logs_line(const struct top_logs *l, size_t i);
/* Appends one line (copied, cut at TOP_LOG_LINE_BYTES) to the ring. */
void top_logs_push(struct top_logs *l, double time, const char *stream, const char *level,
		   const char *text);
/* Fetches the lines newer than the cursor (the last `tail` at first):
 * GET /api/v1/logs?container=ID&tail=N, then &after=<last_seq>. */
int top_fetch_logs(struct cli *c, struct top_logs *l, size_t tail);

/* POSTs a silence of alert a (alertname and its container's id/name) for
 * duration ("1h"). 0, or -1 with the agent's answer in msg. */
int top_silence(struct cli *c, const struct top_alert *a, const char *duration, char *msg,
		size_t size);
/* POSTs /api/v1/containers/{id}/{action}. 0, or -1 with why in msg. */
int top_action(struct cli *c, const char *id, const char *action, char *msg, size_t size);

#endif
