/*
 * store_cli.c - the time-series store from the command line:
 *
 *   monitor import [--data-dir DIR] [--config FILE] FILE...
 *   monitor dump [--data-dir DIR] [--tier raw|1m|1h] [--start MS] [--end MS] [SELECTOR...]
 *
 * Both work on the data directory with the agent stopped: the store's lock
 * file lets one process at a time use it, and a second one is told so.
 * import backfills Prometheus text or OpenMetrics files with timestamps;
 * dump prints what the store holds as Prometheus text with millisecond
 * timestamps, which import reads back.
 */
#include "agent/agent.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DUMP_MAX_MATCHERS 32

/* Parses the flags both commands share; returns optind or -1. */
static int common_flags(int argc, char **argv, struct agent_config *cfg, enum store_tier *tier,
			int64_t *start, int64_t *end, bool *stale, const char *usage)
{
	static const struct option opts[] = {
		{ "data-dir", required_argument, 0, 'd' }, { "config", required_argument, 0, 'c' },
		{ "tier", required_argument, 0, 't' },     { "start", required_argument, 0, 's' },
		{ "end", required_argument, 0, 'e' },      { "stale", no_argument, 0, 'S' },
		{ "help", no_argument, 0, 'h' },           { 0, 0, 0, 0 },
	};
	char err[1024];
	const char *data_dir = NULL;
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *e = NULL;
		switch (o) {
		case 'd': data_dir = optarg; break;
		case 'c':
			if (config_load(cfg, optarg, err, sizeof(err)) < 0) {
				fprintf(stderr, "monitor: config: %s\n", err);
				return -1;
			}
			break;
		case 't':
			if (!tier)
				goto bad;
			if (!strcmp(optarg, "raw"))
				*tier = STORE_TIER_RAW;
			else if (!strcmp(optarg, "1m"))
				*tier = STORE_TIER_1M;
			else if (!strcmp(optarg, "1h"))
				*tier = STORE_TIER_1H;
			else {
				fprintf(stderr, "monitor: --tier %s: expected raw, 1m or 1h\n", optarg);
				return -1;
			}
			break;
		case 's':
		case 'e':
			if (!start)
				goto bad;
			*(o == 's' ? start : end) = strtoll(optarg, &e, 10);
			if (!*optarg || *e) {
				fprintf(stderr, "monitor: --%s %s: expected unix milliseconds\n",
					o == 's' ? "start" : "end", optarg);
				return -1;
			}
			break;
		case 'S':
			if (!stale)
				goto bad;
			*stale = true;
			break;
		case 'h':
			printf("%s", usage);
			exit(0);
		default:
			goto bad;
		}
	}
	if (data_dir)
		snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", data_dir);
	snprintf(cfg->storage.dir, sizeof(cfg->storage.dir), "%s", cfg->data_dir);
	return optind;
bad:
	fprintf(stderr, "%s", usage);
	return -1;
}

static const char import_usage[] =
	"usage: monitor import [--data-dir DIR] [--config FILE] FILE...\n"
	"  Loads samples with timestamps from Prometheus text (ms) or OpenMetrics\n"
	"  (ending in # EOF, seconds) files into the store. Stop the agent first.\n";

int import_main(int argc, char **argv)
{
	struct agent_config cfg;
	config_defaults(&cfg);
	int first = common_flags(argc, argv, &cfg, NULL, NULL, NULL, NULL, import_usage);
	int status = 2;
	if (first < 0)
		goto out;
	if (first >= argc) {
		fprintf(stderr, "%s", import_usage);
		goto out;
	}
	int rc = mkdir_p(cfg.data_dir);
	if (rc < 0) {
		fprintf(stderr, "monitor import: --data-dir %s: %s\n", cfg.data_dir, strerror(-rc));
		status = 1;
		goto out;
	}
	struct store *s;
	char err[PATH_MAX + 512];
	if ((rc = store_open(&s, &cfg.storage, err, sizeof(err))) < 0) {
		fprintf(stderr, "monitor import: %s\n", err);
		status = 1;
		goto out;
	}
	status = 0;
	for (int i = first; i < argc; i++) {
		struct store_import_result r;
		if (store_import_file(s, argv[i], &r, err, sizeof(err)) < 0) {
			fprintf(stderr, "monitor import: %s\n", err);
			status = 1;
			break;
		}
		printf("%s: %llu samples of %llu series imported", argv[i],
		       (unsigned long long)(r.samples - r.out_of_order), (unsigned long long)r.series);
		if (r.out_of_order)
			printf(", %llu refused (not newer than data already stored)",
			       (unsigned long long)r.out_of_order);
		printf("\n");
	}
	store_close(s);
out:
	config_fini(&cfg);
	return status;
}

static const char dump_usage[] =
	"usage: monitor dump [--data-dir DIR] [--tier raw|1m|1h] [--start MS] [--end MS]\n"
	"                    [--stale] [SELECTOR...]\n"
	"  Prints the stored samples as Prometheus text with millisecond timestamps\n"
	"  (roll-up tiers: one line per aggregate, with a rollup label). SELECTOR is\n"
	"  a series selector such as 'container_memory_usage_bytes{name=~\"web.*\"}'.\n"
	"  --stale also prints stale markers as comments. Stop the agent first.\n";

static void dump_line(const struct store_series_info *si, const char *rollup, double v, int64_t t)
{
	char labels[8192];
	struct store_label l[65];
	size_t n = si->nlabels < 64 ? si->nlabels : 64;
	memcpy(l, si->labels, n * sizeof(*l));
	if (rollup)
		l[n++] = (struct store_label){ "rollup", rollup };
	store_labels_format(l, n, labels, sizeof(labels));
	struct buf b;
	buf_init(&b, 64);
	buf_put_double(&b, v);
	printf("%s %s %lld\n", labels, b.data, (long long)t);
	buf_fini(&b);
}

int dump_main(int argc, char **argv)
{
	struct agent_config cfg;
	config_defaults(&cfg);
	enum store_tier tier = STORE_TIER_RAW;
	int64_t start = INT64_MIN, end = INT64_MAX;
	bool stale = false;
	int first = common_flags(argc, argv, &cfg, &tier, &start, &end, &stale, dump_usage);
	int status = 2;
	if (first < 0)
		goto out;
	struct store_matcher m[DUMP_MAX_MATCHERS];
	size_t nm = 0;
	char err[PATH_MAX + 512];
	for (int i = first; i < argc; i++) {
		int n = store_parse_selector(argv[i], m + nm, DUMP_MAX_MATCHERS - nm, err, sizeof(err));
		if (n < 0) {
			fprintf(stderr, "monitor dump: %s: %s\n", argv[i], err);
			goto fini;
		}
		nm += (size_t)n;
	}
	/* Read only: no writer, nothing changes on disk. */
	cfg.storage.read_only = true;
	struct store *s;
	if (store_open(&s, &cfg.storage, err, sizeof(err)) < 0) {
		fprintf(stderr, "monitor dump: %s\n", err);
		status = 1;
		goto fini;
	}
	struct store_series_set set;
	status = 1;
	if (store_select(s, m, nm, start, end, &set) == 0) {
		status = 0;
		for (size_t i = 0; i < set.n; i++) {
			struct store_iter *it;
			if (store_iter_open(s, set.series[i].id, tier, start, end, &it) < 0) {
				status = 1;
				continue;
			}
			struct store_point p;
			while (store_iter_next(it, &p) > 0) {
				if (tier != STORE_TIER_RAW) {
					dump_line(&set.series[i], "min", p.min, p.t);
					dump_line(&set.series[i], "max", p.max, p.t);
					dump_line(&set.series[i], "sum", p.sum, p.t);
					dump_line(&set.series[i], "count", p.count, p.t);
					dump_line(&set.series[i], "last", p.last, p.t);
				} else if (store_is_stale(p.v)) {
					if (stale) {
						char labels[8192];
						store_labels_format(set.series[i].labels,
								    set.series[i].nlabels, labels,
								    sizeof(labels));
						printf("# stale %s %lld\n", labels, (long long)p.t);
					}
				} else {
					dump_line(&set.series[i], NULL, p.v, p.t);
				}
			}
			store_iter_free(it);
		}
		store_series_set_free(&set);
	}
	store_close(s);
fini:
	for (size_t i = 0; i < nm; i++)
		store_matcher_fini(&m[i]);
out:
	config_fini(&cfg);
	return status;
}
