/*
 * cli_ps.c - `monitor ps`: the container inventory as `docker ps` lists it,
 * with the usage columns of `docker stats` beside it (CPU %, memory, net,
 * block I/O, PIDs) and uptime and health.
 *
 * CPU % is a rate, so ps reads two consecutive ticks of the agent (it takes
 * up to one agent --interval); -q needs one. Status text and ages use the
 * agent's clock (the tick time), so a remote agent's clock is not mixed with
 * ours.
 */
#include "agent/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PS_TICK_WAIT_MS 15000

struct ps_opts {
	bool all, quiet, no_trunc, json;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: monitor ps [flags]\n"
		"Containers the agent sees, newest first, with docker stats' usage columns.\n"
		"  -a, --all           all containers (default: running, paused, restarting)\n"
		"  -q, --quiet         only the container ids\n"
		"      --no-trunc      full container ids\n"
		"      --format FMT    table (default) or json (one object per line)\n"
		CLI_COMMON_USAGE);
}

static bool member_num(const struct json *obj, const char *key, double *out)
{
	const struct json *v = json_get(obj, key);
	if (!v || v->type != JSON_NUMBER)
		return false;
	*out = v->number;
	return true;
}

/* docker ps' STATUS: "Up 5 minutes (healthy)", "Exited (137) 2 hours ago",
 * for Docker's states (created, running, paused, restarting, removing,
 * exited, dead); an unknown or missing state counts as running, since the
 * container has a cgroup. */
static void status_text(char *out, size_t size, const struct json *c, double now)
{
	const char *state = cli_str(c, "state"), *health = cli_str(c, "health");
	double start = 0, finished = 0, code = 0;
	char age[48], codes[32] = "";
	member_num(c, "start_time", &start);
	if (member_num(c, "exit_code", &code))
		snprintf(codes, sizeof(codes), " (%.0f)", code);
	const char *word = !strcmp(state, "exited") ? "Exited" :
			   !strcmp(state, "restarting") ? "Restarting" : NULL;
	if (word) {
		if (member_num(c, "finished_at", &finished) && finished > 0) {
			cli_human_duration(age, sizeof(age), now - finished);
			snprintf(out, size, "%s%s %s ago", word, codes, age);
		} else {
			snprintf(out, size, "%s%s", word, codes);
		}
		return;
	}
	if (!strcmp(state, "created") || !strcmp(state, "dead") || !strcmp(state, "removing")) {
		snprintf(out, size, "%s", state[0] == 'c' ? "Created" : state[0] == 'd' ? "Dead" :
			 "Removal In Progress");
		return;
	}
	if (start > 0)
		cli_human_duration(age, sizeof(age), now - start);
	else
		snprintf(age, sizeof(age), "?");
	char suffix[48] = "";
	if (!strcmp(state, "paused"))
		snprintf(suffix, sizeof(suffix), " (Paused)");
	else if (!strcmp(health, "starting"))
		snprintf(suffix, sizeof(suffix), " (health: starting)");
	else if (*health && strcmp(health, "none") != 0)
		snprintf(suffix, sizeof(suffix), " (%s)", health);
	snprintf(out, size, "Up %s%s", age, suffix);
}

static void put_str(struct buf *b, const char *key, const char *v)
{
	buf_printf(b, ",\"%s\":", key);
	buf_put_json_str(b, v);
}

static void put_opt(struct buf *b, const char *key, const struct json *c)
{
	double v;
	buf_printf(b, ",\"%s\":", key);
	if (member_num(c, key, &v))
		buf_put_double(b, v);
	else
		buf_puts(b, "null");
}

static void json_row(struct buf *b, const struct json *c, const char *status, bool up,
		     double uptime, const struct cli_usage *u)
{
	buf_puts(b, "{\"id\":");
	buf_put_json_str(b, cli_str(c, "id"));
	put_str(b, "name", cli_str(c, "name"));
	put_str(b, "image", cli_str(c, "image"));
	put_str(b, "runtime", cli_str(c, "runtime"));
	put_str(b, "state", cli_str(c, "state"));
	put_str(b, "status", status);
	put_str(b, "health", cli_str(c, "health"));
	put_opt(b, "start_time", c);
	buf_puts(b, ",\"uptime_seconds\":");
	if (up)
		buf_put_double(b, uptime);
	else
		buf_puts(b, "null");
	put_opt(b, "exit_code", c);
	put_opt(b, "restart_count", c);
	cli_usage_json(b, u);
	buf_puts(b, "}\n");
}

static int table_row(struct cli_table *t, const struct ps_opts *o, const struct json *c,
		     const char *status, bool up, double uptime, const struct cli_usage *u)
{
	char id[128], upt[32] = "-";
	struct cli_cells k;
	snprintf(id, sizeof(id), "%.*s", o->no_trunc ? 127 : 12, cli_str(c, "id"));
	cli_usage_cells(u, &k);
	if (!u->have_mem)
		snprintf(k.mem, sizeof(k.mem), "--");
	if (up)
		cli_short_duration(upt, sizeof(upt), uptime);
	const char *health = cli_str(c, "health");
	const char *image = cli_str(c, "image");
	const char *cells[] = { id, *image ? image : "-", cli_str(c, "name"), status, k.cpu,
				k.mem, k.net, k.blk, k.pids, upt, *health ? health : "-" };
	return cli_table_add(t, cells);
}

/* Newest first, as docker ps; ties by name. */
static int by_start_desc(const void *a, const void *b)
{
	const struct json *x = *(const struct json *const *)a, *y = *(const struct json *const *)b;
	double sx = 0, sy = 0;
	member_num(x, "start_time", &sx);
	member_num(y, "start_time", &sy);
	if (sx != sy)
		return sx < sy ? 1 : -1;
	return strcmp(cli_str(x, "name"), cli_str(y, "name"));
}

static int render(const struct ps_opts *o, const struct cli_list *prev,
		  const struct cli_list *cur, FILE *f)
{
	size_t n = cur->data->count, k = 0;
	const struct json **v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (const struct json *c = cur->data->child; c && k < n; c = c->next)
		if (o->all || cli_is_up(c))
			v[k++] = c;
	qsort(v, k, sizeof(*v), by_start_desc);
	double now = cur->time > 0 ? cur->time : (double)time(NULL);

	static const char *const head[] = { "CONTAINER ID", "IMAGE", "NAME", "STATUS", "CPU %",
					    "MEM USAGE / LIMIT", "NET I/O", "BLOCK I/O", "PIDS",
					    "UPTIME", "HEALTH" };
	struct cli_table t;
	struct buf b;
	cli_table_init(&t, ARRAY_LEN(head));
	buf_init(&b, CLI_BODY_CAP);
	int rc = 0;
	if (o->quiet) {
		for (size_t i = 0; i < k; i++)
			fprintf(f, "%.*s\n", o->no_trunc ? 127 : 12, cli_str(v[i], "id"));
		goto out;
	}
	if (!o->json)
		rc = cli_table_add(&t, head);
	for (size_t i = 0; i < k && rc == 0; i++) {
		const struct json *c = v[i];
		struct cli_usage u;
		const struct json *p = prev ? cli_find_id(prev, cli_str(c, "id")) : NULL;
		cli_usage_compute(prev, p, cur, c, &u);
		char status[128];
		status_text(status, sizeof(status), c, now);
		double start = 0;
		const char *state = cli_str(c, "state");
		bool up = member_num(c, "start_time", &start) && start > 0 &&
			  (!*state || !strcmp(state, "running") || !strcmp(state, "paused"));
		if (o->json)
			json_row(&b, c, status, up, now - start, &u);
		else
			rc = table_row(&t, o, c, status, up, now - start, &u);
	}
	if (rc == 0 && b.overflow)
		rc = -ENOMEM;
	if (rc == 0) {
		if (o->json)
			fwrite(b.data ? b.data : "", 1, b.len, f);
		else
			cli_table_print(&t, f);
	}
out:
	buf_fini(&b);
	cli_table_fini(&t);
	free(v);
	return rc;
}

int cli_ps_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "all", no_argument, 0, 'a' },        { "quiet", no_argument, 0, 'q' },
		{ "no-trunc", no_argument, 0, 't' },   { "format", required_argument, 0, 'f' },
		{ "help", no_argument, 0, 'h' },       CLI_COMMON_OPTIONS,
		{ 0, 0, 0, 0 },
	};
	struct cli c;
	struct ps_opts o = { 0 };
	cli_init(&c, "ps");
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "aqh", opts, NULL)) != -1) {
		switch (ch) {
		case 'a': o.all = true; break;
		case 'q': o.quiet = true; break;
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
	if (optind < argc) {
		cli_err(&c, "unexpected argument \"%s\" (ps takes no ids; see monitor inspect)",
			argv[optind]);
		return 2;
	}
	if (cli_open(&c) < 0) {
		cli_close(&c);
		return 1;
	}
	int status = 1;
	struct cli_list a, b;
	memset(&b, 0, sizeof(b));
	if (cli_list_fetch(&c, &a) < 0)
		goto done;
	const struct cli_list *prev = NULL, *cur = &a;
	if (!o.quiet) {
		int rc = cli_list_fetch_next(&c, &a, &b, PS_TICK_WAIT_MS);
		if (rc < 0)
			goto free_a;
		prev = &a;
		cur = &b;
		if (rc == 1) {
			cli_err(&c, "the agent published no new tick in %d s; no CPU %%",
				PS_TICK_WAIT_MS / 1000);
			prev = NULL;
		}
	}
	if (render(&o, prev, cur, stdout) < 0)
		cli_err(&c, "out of memory listing %zu containers", cur->data->count);
	else
		status = 0;
	cli_list_free(&b);
free_a:
	cli_list_free(&a);
done:
	cli_close(&c);
	return status;
}
