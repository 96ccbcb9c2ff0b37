/*
 * cli_forecast.c - `monitor forecast ID`: when each resource of a container
 * runs out, from GET /api/v1/containers/{id}/forecast. One row per
 * resource: usage now, the limit, the trend, the time to exhaustion and its
 * 80 % interval, and the model; a resource without a forecast says why
 * ("no forecast: no limit"). --json prints the API's data untouched.
 */
#include "agent/cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: monitor forecast [--json] ID\n"
		"When each resource of a container (memory, pids, filesystems, volumes, the\n"
		"writable layer, CPU) runs out.\n"
		"ID is a name, a full id or a unique id prefix.\n"
		"  --json              print the agent's answer as JSON\n"
		CLI_COMMON_USAGE);
}

static bool num(const struct json *o, const char *key, double *out)
{
	const struct json *v = json_get(o, key);
	if (!v || v->type != JSON_NUMBER)
		return false;
	*out = v->number;
	return true;
}

/* A value in the resource's unit. */
static void fmt_value(char *out, size_t size, const char *unit, double v)
{
	if (!strcmp(unit, "bytes"))
		cli_bytes_binary(out, size, v);
	else if (!strcmp(unit, "cores"))
		snprintf(out, size, "%.3g cores", v);
	else
		snprintf(out, size, "%.0f", v);
}

static void fmt_trend(char *out, size_t size, const char *unit, const char *resource, double v)
{
	/* filesystems grow by the hour, the rest by the minute */
	bool hour = !strcmp(resource, "fs") || !strcmp(resource, "volume") ||
		    !strcmp(resource, "writable");
	double per = v * (hour ? 3600 : 60);
	char mag[48];
	fmt_value(mag, sizeof(mag), unit, fabs(per));
	if (!strcmp(unit, "tasks"))
		snprintf(mag, sizeof(mag), "%.3g", fabs(per));
	snprintf(out, size, "%s%s/%s", per < 0 ? "-" : "+", mag, hour ? "h" : "min");
}

static void fmt_eta(char *out, size_t size, const struct json *r, const char *key,
		    const char *never)
{
	double s;
	if (!num(r, key, &s)) {
		snprintf(out, size, "%s", never);
		return;
	}
	if (s <= 0) {
		snprintf(out, size, "now");
		return;
	}
	cli_short_duration(out, size, s);
}

int cli_forecast_main(int argc, char **argv)
{
	struct cli c;
	cli_init(&c, "forecast");
	bool json = false;
	int done;
	if (!cli_json_opts(&c, argc, argv, &json, usage, &done))
		return done;
	if (optind != argc - 1) {
		cli_err(&c, "which container? (monitor forecast ID)");
		return 2;
	}
	if (cli_open(&c) < 0) {
		cli_close(&c);
		return 1;
	}
	int status = 1;
	struct cli_list l;
	struct json_doc doc = { 0 };
	if (cli_list_fetch(&c, &l) < 0)
		goto done;
	const struct json *ctr = cli_resolve_wait(&c, &l, argv[optind]);
	if (!ctr)
		goto list;
	char esc[512], path[640];
	cli_path_escape(esc, sizeof(esc), cli_str(ctr, "id"));
	snprintf(path, sizeof(path), "/api/v1/containers/%s/forecast", esc);
	long st = cli_get_json(&c, path, &doc);
	if (st < 0)
		goto list;
	const struct json *data = doc.root ? json_get(doc.root, "data") : NULL;
	if (st != 200 || !data) {
		cli_err(&c, "the agent at %s answered GET %s with status %ld: %s", c.url, path, st,
			cli_api_error(&doc, "no forecast data"));
		goto list;
	}
	if (json) {
		struct buf b;
		buf_init(&b, CLI_BODY_CAP);
		cli_json_write(&b, data, 2, 0);
		if (b.len)
			printf("%s\n", b.data);
		buf_fini(&b);
		status = 0;
		goto list;
	}
	const char *id = cli_str(data, "id");
	printf("%s (%.12s)", cli_str(data, "name"), id);
	double t, iv, win;
	if (num(data, "time", &t)) {
		time_t tt = (time_t)t;
		struct tm tm;
		char when[32];
		gmtime_r(&tt, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf(": forecast of %s", when);
		if (num(data, "interval_seconds", &iv) && num(data, "window_seconds", &win)) {
			char a[32], b[32];
			cli_short_duration(a, sizeof(a), iv);
			cli_short_duration(b, sizeof(b), win);
			printf(" (refreshed every %s; trend over the last %s)", a, b);
		}
		printf("\n\n");
	} else {
		printf(": %s\n", cli_str(data, "note"));
		status = 0;
		goto list;
	}
	struct cli_table tab;
	cli_table_init(&tab, 7);
	const char *head[7] = { "RESOURCE", "NOW", "LIMIT", "TREND", "ETA", "CONFIDENCE (80%)",
				"MODEL" };
	cli_table_add(&tab, head);
	const struct json *res = json_get(data, "resources");
	for (const struct json *r = res ? res->child : NULL; r; r = r->next) {
		const char *unit = cli_str(r, "unit"), *name = cli_str(r, "resource");
		char rname[300], now[48] = "--", lim[48] = "no limit", trend[64] = "--",
		     eta[64] = "--", conf[96] = "--";
		const char *mp = cli_str(r, "mountpoint");
		snprintf(rname, sizeof(rname), "%s%s%s", name, *mp ? " " : "", mp);
		double v;
		if (num(r, "now", &v))
			fmt_value(now, sizeof(now), unit, v);
		if (num(r, "limit", &v) && v > 0)
			fmt_value(lim, sizeof(lim), unit, v);
		const char *model = cli_str(r, "model");
		if (!strcmp(model, "none")) {
			const char *why = cli_str(r, "reason");
			snprintf(eta, sizeof(eta), "no forecast: %s",
				 !strcmp(why, "no_limit") ? "no limit" :
				 !strcmp(why, "no_quota") ? "no quota" :
				 !strcmp(why, "too_little_data") ? "too little data" :
				 !strcmp(why, "no_data") ? "no data" : why);
			conf[0] = '\0';
			model = "";
		} else {
			if (num(r, "trend_per_second", &v))
				fmt_trend(trend, sizeof(trend), unit, name, v);
			char e[32], lo[32], hi[32];
			fmt_eta(e, sizeof(e), r, "exhaustion_seconds", "");
			if (*e) {
				snprintf(eta, sizeof(eta), "%s%s", strcmp(e, "now") ? "in " : "", e);
			} else {
				char hz[32] = "the horizon";
				if (num(data, "max_horizon_seconds", &v) ||
				    num(r, "max_horizon_seconds", &v))
					cli_short_duration(hz, sizeof(hz), v);
				snprintf(eta, sizeof(eta), "not within %s", hz);
			}
			fmt_eta(lo, sizeof(lo), r, "exhaustion_lower_seconds", "never");
			fmt_eta(hi, sizeof(hi), r, "exhaustion_upper_seconds", "never");
			if (!strcmp(lo, "never"))
				snprintf(conf, sizeof(conf), "-");
			else
				snprintf(conf, sizeof(conf), "%s - %s", lo, hi);
		}
		const char *row[7] = { rname, now, lim, trend, eta, conf, model };
		cli_table_add(&tab, row);
	}
	cli_table_print(&tab, stdout);
	cli_table_fini(&tab);
	status = 0;
list:
	json_doc_free(&doc);
	cli_list_free(&l);
done:
	cli_close(&c);
	return status;
}
