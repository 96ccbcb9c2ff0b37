/*
 * cli_stats.c - `monitor stats`: the columns and numbers of `docker stats`,
 * and the arithmetic behind them, which `monitor ps` shares.
 *
 * The docker CLI computes each column from two samples of the Engine API's
 * stats; here the two samples are two consecutive ticks of the agent's
 * /api/v1/containers, which carries the host's totals of the same tick:
 *
 *   CPU %      Δcontainer_cpu_usage_seconds_total / Δmachine_cpu_seconds_total
 *              × machine_cpu_cores × 100 (the daemon's system_cpu_usage and
 *              online_cpus); 0 unless both deltas are positive, as docker
 *   MEM USAGE  container_memory_working_set_bytes (usage − inactive file)
 *   LIMIT      container_spec_memory_limit_bytes, or machine_memory_bytes
 *              when unlimited or larger, as the daemon caps it
 *   MEM %      usage / limit × 100
 *   NET I/O    container_network_{receive,transmit}_bytes_total, summed
 *              over interfaces; 0B for a container whose namespace has only
 *              lo, the host's or another container's (container_network_mode
 *              without traffic series: docker shows 0B for the first two);
 *              "--" when the agent collects no network at all
 *   BLOCK I/O  container_fs_{reads,writes}_bytes_total, summed over devices
 *   PIDS       container_pids
 *
 * An agent that predates machine_cpu_seconds_total gets CPU % from wall
 * time instead: Δcpu / Δtick time × 100.
 */
#include "agent/cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long to wait for the agent's next tick before giving up on CPU %. */
#define STATS_TICK_WAIT_MS 15000

/* ---- arithmetic -------------------------------------------------------------- */

void cli_usage_compute(const struct cli_list *prev_l, const struct json *prev,
		       const struct cli_list *cur_l, const struct json *cur, struct cli_usage *u)
{
	memset(u, 0, sizeof(*u));
	double a, b;
	if (prev && cli_value(prev, "container_cpu_usage_seconds_total", &a) &&
	    cli_value(cur, "container_cpu_usage_seconds_total", &b)) {
		double cpu_delta = b - a, system_delta = 0, cpus = 1;
		if (prev_l->have_machine && cur_l->have_machine) {
			system_delta = cur_l->cpu_seconds - prev_l->cpu_seconds;
			cpus = cur_l->cpus;
		} else {
			system_delta = cur_l->time - prev_l->time;
		}
		u->have_cpu = true;
		if (system_delta > 0 && cpu_delta > 0)
			u->cpu_percent = cpu_delta / system_delta * cpus * 100.0;
	}
	if (cli_value(cur, "container_memory_working_set_bytes", &u->mem_bytes)) {
		u->have_mem = true;
		double limit = 0;
		cli_value(cur, "container_spec_memory_limit_bytes", &limit);
		if (cur_l->memory_bytes > 0 && (limit <= 0 || limit > cur_l->memory_bytes))
			limit = cur_l->memory_bytes;
		u->mem_limit_bytes = limit;
		if (limit > 0)
			u->mem_percent = u->mem_bytes / limit * 100.0;
	}
	bool rx = cli_value(cur, "container_network_receive_bytes_total", &u->net_rx_bytes);
	bool tx = cli_value(cur, "container_network_transmit_bytes_total", &u->net_tx_bytes);
	double mode;
	u->have_net = rx || tx || cli_value(cur, "container_network_mode", &mode);
	/* No block I/O series means no I/O yet: docker shows 0B then too. */
	cli_value(cur, "container_fs_reads_bytes_total", &u->blk_read_bytes);
	cli_value(cur, "container_fs_writes_bytes_total", &u->blk_write_bytes);
	u->have_pids = cli_value(cur, "container_pids", &u->pids);
}

/* ---- formatting (go-units, as docker uses it) ----------------------------------- */

static void units(char *out, size_t size, double v, double base, const char *const *abbr,
		  size_t nabbr, int precision)
{
	size_t i = 0;
	while (v >= base && i + 1 < nabbr) {
		v /= base;
		i++;
	}
	snprintf(out, size, "%.*g%s", precision, v, abbr[i]);
}

void cli_bytes_binary(char *out, size_t size, double v)
{
	static const char *const abbr[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	units(out, size, v, 1024.0, abbr, ARRAY_LEN(abbr), 4);
}

void cli_bytes_decimal(char *out, size_t size, double v)
{
	static const char *const abbr[] = { "B", "kB", "MB", "GB", "TB", "PB", "EB" };
	units(out, size, v, 1000.0, abbr, ARRAY_LEN(abbr), 3);
}

void cli_human_duration(char *out, size_t size, double seconds)
{
	long s = (long)seconds, m = (long)(seconds / 60), h = (long)(seconds / 3600 + 0.5);
	if (s < 1)
		snprintf(out, size, "Less than a second");
	else if (s == 1)
		snprintf(out, size, "1 second");
	else if (s < 60)
		snprintf(out, size, "%ld seconds", s);
	else if (m == 1)
		snprintf(out, size, "About a minute");
	else if (m < 60)
		snprintf(out, size, "%ld minutes", m);
	else if (h == 1)
		snprintf(out, size, "About an hour");
	else if (h < 48)
		snprintf(out, size, "%ld hours", h);
	else if (h < 24 * 7 * 2)
		snprintf(out, size, "%ld days", h / 24);
	else if (h < 24 * 30 * 2)
		snprintf(out, size, "%ld weeks", h / 24 / 7);
	else if (h < 24 * 365 * 2)
		snprintf(out, size, "%ld months", h / 24 / 30);
	else
		snprintf(out, size, "%ld years", (long)(seconds / 3600) / 24 / 365);
}

void cli_short_duration(char *out, size_t size, double seconds)
{
	long s = seconds > 0 ? (long)seconds : 0;
	if (s < 60)
		snprintf(out, size, "%lds", s);
	else if (s < 3600)
		snprintf(out, size, "%ldm%02lds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, size, "%ldh%02ldm", s / 3600, s % 3600 / 60);
	else
		snprintf(out, size, "%ldd%02ldh", s / 86400, s % 86400 / 3600);
}

void cli_usage_cells(const struct cli_usage *u, struct cli_cells *o)
{
	char x[32], y[32];
	snprintf(o->cpu, sizeof(o->cpu), "--");
	snprintf(o->mem, sizeof(o->mem), "-- / --");
	snprintf(o->mem_percent, sizeof(o->mem_percent), "--");
	snprintf(o->net, sizeof(o->net), "--");
	snprintf(o->blk, sizeof(o->blk), "-- / --");
	snprintf(o->pids, sizeof(o->pids), "--");
	if (!u)
		return;
	if (u->have_cpu)
		snprintf(o->cpu, sizeof(o->cpu), "%.2f%%", u->cpu_percent);
	if (u->have_mem) {
		cli_bytes_binary(x, sizeof(x), u->mem_bytes);
		cli_bytes_binary(y, sizeof(y), u->mem_limit_bytes);
		snprintf(o->mem, sizeof(o->mem), "%s / %s", x, y);
		snprintf(o->mem_percent, sizeof(o->mem_percent), "%.2f%%", u->mem_percent);
	}
	if (u->have_net) {
		cli_bytes_decimal(x, sizeof(x), u->net_rx_bytes);
		cli_bytes_decimal(y, sizeof(y), u->net_tx_bytes);
		snprintf(o->net, sizeof(o->net), "%s / %s", x, y);
	}
	cli_bytes_decimal(x, sizeof(x), u->blk_read_bytes);
	cli_bytes_decimal(y, sizeof(y), u->blk_write_bytes);
	snprintf(o->blk, sizeof(o->blk), "%s / %s", x, y);
	if (u->have_pids)
		snprintf(o->pids, sizeof(o->pids), "%.0f", u->pids);
}

static void put_num(struct buf *b, const char *key, bool have, double v)
{
	buf_printf(b, ",\"%s\":", key);
	if (have && isfinite(v))
		buf_put_double(b, v);
	else
		buf_puts(b, "null");
}

void cli_usage_json(struct buf *b, const struct cli_usage *u)
{
	put_num(b, "cpu_percent", u->have_cpu, u->cpu_percent);
	put_num(b, "memory_usage_bytes", u->have_mem, u->mem_bytes);
	put_num(b, "memory_limit_bytes", u->have_mem, u->mem_limit_bytes);
	put_num(b, "memory_percent", u->have_mem, u->mem_percent);
	put_num(b, "net_rx_bytes", u->have_net, u->net_rx_bytes);
	put_num(b, "net_tx_bytes", u->have_net, u->net_tx_bytes);
	put_num(b, "block_read_bytes", true, u->blk_read_bytes);
	put_num(b, "block_write_bytes", true, u->blk_write_bytes);
	put_num(b, "pids", u->have_pids, u->pids);
}

/* ---- the command --------------------------------------------------------------- */

struct stats_opts {
	bool no_stream, all, no_trunc, json;
	char **ids;                  /* resolved full ids; NULL: every (up) container */
	char **names;                /* their names when resolved */
	size_t nids;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: monitor stats [flags] [ID...]\n"
		"Live CPU, memory, network, block I/O and PIDs of containers, as docker stats\n"
		"computes them, redrawn every tick (every --interval of the agent).\n"
		"ID is a name, a full id or a unique id prefix; none means every running container.\n"
		"  -a, --all           include containers that are not running\n"
		"      --no-stream     print one sample and exit (takes one tick)\n"
		"      --no-trunc      full container ids\n"
		"      --format FMT    table (default) or json (one object per line)\n"
		CLI_COMMON_USAGE);
}

/* One JSON object with the raw numbers behind a stats row. */
static void json_row(struct buf *b, const struct json *ctr, const struct cli_usage *u)
{
	buf_puts(b, "{\"id\":");
	buf_put_json_str(b, cli_str(ctr, "id"));
	buf_puts(b, ",\"name\":");
	buf_put_json_str(b, cli_str(ctr, "name"));
	cli_usage_json(b, u);
	buf_puts(b, "}\n");
}

static const char *const HEAD[] = { "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT",
				    "MEM %", "NET I/O", "BLOCK I/O", "PIDS" };

static int table_row(struct cli_table *t, const struct stats_opts *o, const char *id,
		     const char *name, const struct cli_usage *u)
{
	char sid[128];
	struct cli_cells k;
	snprintf(sid, sizeof(sid), "%.*s", o->no_trunc ? 127 : 12, id);
	cli_usage_cells(u, &k);
	const char *cells[] = { sid, name, k.cpu, k.mem, k.mem_percent, k.net, k.blk, k.pids };
	return cli_table_add(t, cells);
}

static int by_name(const void *a, const void *b)
{
	const struct json *x = *(const struct json *const *)a, *y = *(const struct json *const *)b;
	return strcmp(cli_str(x, "name"), cli_str(y, "name"));
}

/* Renders one frame from two ticks into out (prev NULL: no CPU %). */
static int frame(const struct stats_opts *o, const struct cli_list *prev,
		 const struct cli_list *cur, struct buf *out)
{
	struct cli_table t;
	cli_table_init(&t, ARRAY_LEN(HEAD));
	int rc = o->json ? 0 : cli_table_add(&t, HEAD);
	if (o->nids) {
		for (size_t i = 0; i < o->nids && rc == 0; i++) {
			const struct json *c = cli_find_id(cur, o->ids[i]);
			const struct json *p = prev ? cli_find_id(prev, o->ids[i]) : NULL;
			struct cli_usage u;
			if (c)
				cli_usage_compute(prev, p, cur, c, &u);
			if (o->json && c)
				json_row(out, c, &u);
			else if (!o->json)  /* gone: docker keeps the row with "--" */
				rc = table_row(&t, o, o->ids[i], c ? cli_str(c, "name") : o->names[i],
					       c ? &u : NULL);
		}
	} else {
		size_t n = cur->data->count, k = 0;
		const struct json **v = calloc(n ? n : 1, sizeof(*v));
		if (!v) {
			cli_table_fini(&t);
			return -ENOMEM;
		}
		for (const struct json *c = cur->data->child; c && k < n; c = c->next)
			if (o->all || cli_is_up(c))
				v[k++] = c;
		qsort(v, k, sizeof(*v), by_name);
		for (size_t i = 0; i < k && rc == 0; i++) {
			struct cli_usage u;
			const char *id = cli_str(v[i], "id");
			cli_usage_compute(prev, prev ? cli_find_id(prev, id) : NULL, cur, v[i], &u);
			if (o->json)
				json_row(out, v[i], &u);
			else
				rc = table_row(&t, o, id, cli_str(v[i], "name"), &u);
		}
		free(v);
	}
	if (rc == 0 && !o->json) {
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		if (f) {
			cli_table_print(&t, f);
			fclose(f);
			buf_add(out, text, len);
			free(text);
		} else {
			rc = -ENOMEM;
		}
	}
	cli_table_fini(&t);
	return rc ? rc : (out->overflow ? -ENOMEM : 0);
}

int cli_stats_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "all", no_argument, 0, 'a' },        { "no-stream", no_argument, 0, 's' },
		{ "no-trunc", no_argument, 0, 't' },   { "format", required_argument, 0, 'f' },
		{ "help", no_argument, 0, 'h' },       CLI_COMMON_OPTIONS,
		{ 0, 0, 0, 0 },
	};
	struct cli c;
	struct stats_opts o = { 0 };
	cli_init(&c, "stats");
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "ah", opts, NULL)) != -1) {
		switch (ch) {
		case 'a': o.all = true; break;
		case 's': o.no_stream = true; break;
		case 't': o.no_trunc = true; break;
		case 'f':
			if (cli_format_opt(&c, optarg, &o.json) < 0)
				return 2;
			break;
		case 'h': usage(stdout); return 0;
		case '?': usage(stderr); return 2;
		default:
			if (cli_common_opt(&c, ch, optarg) < 0)
				return 2;
		}
	}
	if (argc - optind > CLI_MAX_IDS) {
		cli_err(&c, "more than %d ids", CLI_MAX_IDS);
		return 2;
	}
	if (cli_open(&c) < 0) {
		cli_close(&c);
		return 1;
	}

	int status = 1;
	struct cli_list a, b;
	struct buf out;
	buf_init(&out, CLI_BODY_CAP);
	memset(&b, 0, sizeof(b));
	if (cli_list_fetch(&c, &a) < 0)
		goto done;
	if (optind < argc) {
		o.nids = (size_t)(argc - optind);
		o.ids = calloc(o.nids, sizeof(*o.ids));
		o.names = calloc(o.nids, sizeof(*o.names));
		if (!o.ids || !o.names) {
			cli_list_free(&a);
			goto done;
		}
		for (size_t i = 0; i < o.nids; i++) {
			const struct json *ctr = cli_resolve_wait(&c, &a, argv[optind + (int)i]);
			if (!ctr || !(o.ids[i] = strdup(cli_str(ctr, "id"))) ||
			    !(o.names[i] = strdup(cli_str(ctr, "name")))) {
				cli_list_free(&a);
				goto done;
			}
		}
	}

	bool tty = isatty(STDOUT_FILENO);
	for (;;) {
		int rc = cli_list_fetch_next(&c, &a, &b, STATS_TICK_WAIT_MS);
		if (rc < 0) {
			cli_list_free(&a);
			goto done;
		}
		if (rc == 1 && !o.no_stream) {
			/* A slow agent (a long --interval): keep waiting. */
			cli_list_free(&b);
			continue;
		}
		if (rc == 1)
			cli_err(&c, "the agent published no new tick in %d s: no CPU %%",
				STATS_TICK_WAIT_MS / 1000);
		buf_reset(&out);
		if (!o.json && !o.no_stream && tty)
			buf_puts(&out, "\033[2J\033[H");   /* clear and home, as docker */
		if (frame(&o, rc == 1 ? NULL : &a, &b, &out) < 0) {
			cli_err(&c, "out of memory rendering %zu containers", b.data->count);
			cli_list_free(&a);
			cli_list_free(&b);
			goto done;
		}
		fwrite(out.data ? out.data : "", 1, out.len, stdout);
		fflush(stdout);
		cli_list_free(&a);
		a = b;
		memset(&b, 0, sizeof(b));
		if (o.no_stream || ferror(stdout))
			break;
	}
	cli_list_free(&a);
	status = 0;
done:
	for (size_t i = 0; i < o.nids; i++) {
		if (o.ids)
			free(o.ids[i]);
		if (o.names)
			free(o.names[i]);
	}
	free(o.ids);
	free(o.names);
	buf_fini(&out);
	cli_close(&c);
	return status;
}
