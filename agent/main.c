/*
 * main.c - the `monitor` binary: one entry point, one subcommand each.
 */
#include "agent/agent.h"
#include "agent/cli.h"

#include <stdio.h>
#include <string.h>

/* Prints the metric table of the README, generated from metrics.def. */
static int metrics_main(void)
{
	printf("| name | type | labels | source | meaning |\n|---|---|---|---|---|\n");
	for (size_t i = 0; i < M__COUNT; i++) {
		const struct metric_family *f = &metric_families[i];
		bool agent = strncmp(f->name, "monitor_", 8) == 0 ||
			     strncmp(f->name, "machine_", 8) == 0;
		/* A histogram is one row, named without _bucket. */
		if (f->type == HIST_SUM || f->type == HIST_COUNT)
			continue;
		int nlen = (int)strlen(f->name) - (f->type == HIST_BUCKET ? 7 : 0);
		printf("| `%.*s` | %s | %s%s%s | %s | %s |\n", nlen, f->name,
		       metric_type_name(f->type), agent ? "" : "base",
		       (!agent && *f->labels) ? ", " : "", f->labels, f->source, f->help);
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: monitor COMMAND [flags]\n\n"
		   "commands:\n"
		   "  agent     run the daemon (monitor agent --help)\n"
		   "  metrics   print the table of exported metrics (Markdown)\n"
		   "  import    load Prometheus text/OpenMetrics files with timestamps into the store\n"
		   "  dump      print stored samples as Prometheus text with timestamps\n"
		   "  version   print the version\n");
	cli_usage_lines(f);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "agent"))
		return agent_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "metrics"))
		return metrics_main();
	if (!strcmp(cmd, "import"))
		return import_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "dump"))
		return dump_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("monitor %s (%s)\n", MONITOR_RELEASE, monitor_version);
		return 0;
	}
	const struct cli_command *cc = cli_find_command(cmd);
	if (cc)
		return cc->main(argc - 1, argv + 1);
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "monitor: unknown command \"%s\"\n", cmd);
	usage(stderr);
	return 2;
}
