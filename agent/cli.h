/*
 * cli.h - the client subcommands (ps, inspect, stats, start/stop/...): what
 * they share. Private to agent/.
 *
 * Every client talks to a running agent over its HTTP API (cli.c holds the
 * one HTTP client), so `monitor ps --url http://host:9838` works from another
 * machine as it does locally. The clients never read cgroup files: the
 * numbers are the agent's, computed into docker's columns here.
 *
 * Exit statuses: 0 success, 1 the agent or a container said no (unreachable,
 * unknown or ambiguous id, refused action), 2 bad usage.
 */
#ifndef MONITOR_CLI_H
#define MONITOR_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "agent/util/util.h"

#define CLI_DEFAULT_URL "http://127.0.0.1:9838"
#define CLI_BODY_CAP (256u << 20)    /* largest response read */
#define CLI_MAX_IDS 1024             /* IDs on one command line */
#define CLI_RESOLVE_WAIT_MS 3000     /* for an unknown id, wait this long for a tick */

/* ---- the connection (cli.c) ---------------------------------------------- */

/*
 * Options every client takes, and the HTTP handle. cli_init fills defaults
 * and the environment (MONITOR_URL, MONITOR_TOKEN); flags then override;
 * cli_open reads the token file and makes the handle. One per command, one
 * thread.
 */
struct cli {
	const char *cmd;             /* "ps", "stats", ... for messages */
	char url[1024];              /* base URL, no trailing '/' */
	char token[4096];            /* "" when none */
	char token_file[4096];
	int64_t timeout_ms;
	void *curl;                  /* CURL *, private to cli.c */
	/* When set, cli_err writes its message here (errsize bytes, the last
	 * message only) instead of to stderr: monitor top's screen. */
	char *err;
	size_t errsize;
};

/* Long options every client accepts; codes start at CLI_OPT_BASE. */
enum { CLI_OPT_BASE = 1000, CLI_OPT_URL = CLI_OPT_BASE, CLI_OPT_TOKEN_FILE, CLI_OPT_TIMEOUT };
#define CLI_COMMON_OPTIONS                                                   \
	{ "url", required_argument, 0, CLI_OPT_URL },                        \
	{ "token-file", required_argument, 0, CLI_OPT_TOKEN_FILE },          \
	{ "timeout", required_argument, 0, CLI_OPT_TIMEOUT }
#define CLI_COMMON_USAGE                                                     \
	"  --url URL           the agent (default $MONITOR_URL, else " CLI_DEFAULT_URL ")\n" \
	"  --token-file FILE   admin token for actions (default $MONITOR_TOKEN)\n" \
	"  --timeout DUR       give up on a request after DUR (default 10s)\n"

void cli_init(struct cli *c, const char *cmd);
/* Handles a CLI_OPT_* code from getopt_long. Returns 0, or -EINVAL after
 * printing why. */
int cli_common_opt(struct cli *c, int code, const char *arg);
/* Handles --format table|json: sets *json for "json", leaves it for "table".
 * Returns 0, or -EINVAL after printing why. */
int cli_format_opt(const struct cli *c, const char *arg, bool *json);
/* Reads the options of a command that takes --json, --help and the common
 * ones only: sets *json, leaves optind at the first argument. Returns false
 * when the command is done, with *exit_status to return: 0 after usage
 * went to stdout (--help), 2 after a bad option (usage to stderr). */
bool cli_json_opts(struct cli *c, int argc, char **argv, bool *json, void (*usage)(FILE *),
		   int *exit_status);
/* Reads the token file (if any) and creates the HTTP handle. Returns 0 or
 * -1 after printing why. */
int cli_open(struct cli *c);
void cli_close(struct cli *c);

/* A response: status and body (owned, cli_resp_fini frees). */
struct cli_resp {
	long status;
	struct buf body;
};
void cli_resp_fini(struct cli_resp *r);

/*
 * One request to the agent: path starts with '/'; body may be NULL. The
 * bearer token is sent when there is one. Returns 0 when the agent answered
 * (any status), or -1 after printing why it could not be reached.
 */
int cli_request(struct cli *c, const char *method, const char *path, const char *body,
		struct cli_resp *r);
/* The transport of a cli.c built with -DCLI_LITE (monitor-top): plain
 * HTTP/1.1 without libcurl (agent/top_http.c); as cli_request. */
int cli_lite_request(struct cli *c, const char *method, const char *path, const char *body,
		     const char *content_type, struct cli_resp *r);
/* The same, a POST of an application/x-www-form-urlencoded body (the
 * Prometheus API's form). */
int cli_post_form(struct cli *c, const char *path, const char *form, struct cli_resp *r);

/*
 * GET path and parse the body as JSON into doc. Returns the HTTP status
 * (doc filled, also for 4xx/5xx bodies that are JSON), or -1 after printing
 * why (unreachable, not JSON). The caller frees doc with json_doc_free.
 */
long cli_get_json(struct cli *c, const char *path, struct json_doc *doc);

/* The "error" text of an API error document, or a fallback. */
const char *cli_api_error(const struct json_doc *doc, const char *fallback);

/* Prints "monitor CMD: " and the message to stderr. */
void cli_err(const struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Percent-encodes s as one path segment into out. */
void cli_path_escape(char *out, size_t size, const char *s);

/* ---- the container list (cli.c) -------------------------------------------- */

/*
 * One GET /api/v1/containers: the tick time, the host totals of that tick,
 * and the containers (a JSON array of objects). Owns its document.
 */
struct cli_list {
	struct json_doc doc;
	const struct json *data;     /* array of containers */
	double time;                 /* tick, Unix seconds; 0 when not given */
	bool have_machine;
	double cpu_seconds;          /* machine_cpu_seconds_total */
	double cpus;                 /* machine_cpu_cores */
	double memory_bytes;         /* machine_memory_bytes */
	bool refreshed;              /* fetched again by cli_resolve_wait */
};
/* Returns 0 or -1 after printing why. */
int cli_list_fetch(struct cli *c, struct cli_list *l);
/*
 * Fetches until the agent has published a tick newer than prev's (the
 * agent ticks every --interval); gives up after timeout_ms. Returns 0, 1
 * when no newer tick came in time (l then holds the latest), or -1.
 */
int cli_list_fetch_next(struct cli *c, const struct cli_list *prev, struct cli_list *l,
			int64_t timeout_ms);
void cli_list_free(struct cli_list *l);

/*
 * Resolves what (a name, a full id, or a unique id prefix, as docker does:
 * exact id first, then exact name, then prefix) in the list. Returns the
 * container object (owned by l), or NULL after printing "no such container"
 * or, for an ambiguous prefix, every match.
 */
const struct json *cli_resolve(struct cli *c, const struct cli_list *l, const char *what);
/*
 * cli_resolve for a command line: when nothing matches what, looks again at
 * each new tick of the agent for up to CLI_RESOLVE_WAIT_MS, the newest list
 * replacing *l (earlier results from *l are invalid then): the agent sees a
 * container that started or restarted a moment ago a tick or two later.
 * Waits at most once per list.
 */
const struct json *cli_resolve_wait(struct cli *c, struct cli_list *l, const char *what);
/* The container with exactly this id in l, or NULL. */
const struct json *cli_find_id(const struct cli_list *l, const char *id);

/* A container's value of metric from "values"; false when absent. */
bool cli_value(const struct json *ctr, const char *metric, double *out);
/* A string member or "" (never NULL). */
const char *cli_str(const struct json *obj, const char *key);
/* True for the states docker ps shows without -a (and unknown ones). */
bool cli_is_up(const struct json *ctr);

/* ---- docker's columns (cli_stats.c) ------------------------------------------ */

/*
 * What `docker stats` shows for one container, computed as the docker CLI
 * computes it from two samples (prev may be NULL: no CPU % then).
 */
struct cli_usage {
	bool have_cpu, have_mem, have_net, have_pids;
	double cpu_percent;
	double mem_bytes, mem_limit_bytes, mem_percent;
	double net_rx_bytes, net_tx_bytes;
	double blk_read_bytes, blk_write_bytes;
	double pids;
};
void cli_usage_compute(const struct cli_list *prev_l, const struct json *prev,
		       const struct cli_list *cur_l, const struct json *cur, struct cli_usage *u);

/* docker stats' cells for one container ("--" where a value is unknown;
 * u NULL: a container that went away). */
struct cli_cells {
	char cpu[32], mem[80], mem_percent[32], net[80], blk[80], pids[32];
};
void cli_usage_cells(const struct cli_usage *u, struct cli_cells *out);
/* Appends ,"cpu_percent":...,"pids":... (raw numbers, null when unknown). */
void cli_usage_json(struct buf *b, const struct cli_usage *u);

/* go-units as docker formats: BytesSize ("%.4g" binary units) and
 * HumanSizeWithPrecision(v, 3) (decimal units). */
void cli_bytes_binary(char *out, size_t size, double v);
void cli_bytes_decimal(char *out, size_t size, double v);
/* go-units HumanDuration ("2 minutes", "About an hour"). */
void cli_human_duration(char *out, size_t size, double seconds);
/* Compact duration: "45s", "12m05s", "3h04m", "2d03h". */
void cli_short_duration(char *out, size_t size, double seconds);

/* ---- a table (cli.c) -------------------------------------------------------- */

/* Rows of cells printed with columns padded to their widest cell, three
 * spaces apart, as docker's tabwriter does. Owns copies of the cells. */
#define CLI_TABLE_MAX_COLS 16
struct cli_table {
	size_t ncols, nrows, cap;
	char **cells;                /* nrows * ncols */
	size_t width[CLI_TABLE_MAX_COLS];
};
void cli_table_init(struct cli_table *t, size_t ncols);
/* Adds a row of ncols cells (copied). Returns 0 or -ENOMEM. */
int cli_table_add(struct cli_table *t, const char *const *cells);
void cli_table_print(const struct cli_table *t, FILE *f);
void cli_table_fini(struct cli_table *t);

/* Writes a JSON value: pretty with indent spaces a level when indent >= 0
 * (depth: the level v starts at), else on one line. */
void cli_json_write(struct buf *b, const struct json *v, int indent, int depth);

/* ---- the subcommands ------------------------------------------------------------ */

struct cli_command {
	const char *name;
	int (*main)(int argc, char **argv);   /* argv[0] is the command name */
	const char *summary;
};
/* The command named name, or NULL. */
const struct cli_command *cli_find_command(const char *name);
/* Prints one "  name   summary" line per client command. */
void cli_usage_lines(FILE *f);

int cli_ps_main(int argc, char **argv);
int cli_stats_main(int argc, char **argv);
int cli_inspect_main(int argc, char **argv);
int cli_action_main(int argc, char **argv);
int cli_forecast_main(int argc, char **argv);
int cli_query_main(int argc, char **argv);
int cli_logs_main(int argc, char **argv);
int cli_notify_main(int argc, char **argv);   /* notify_agent.c */
int cli_top_main(int argc, char **argv);
int cli_silence_main(int argc, char **argv);
int cli_rules_main(int argc, char **argv);    /* cli_rules.c */
int cli_alerts_main(int argc, char **argv);

#endif
