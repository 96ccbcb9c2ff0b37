/*
 * cli_logs.c - `monitor logs CONTAINER`: a container's stored and live log
 * lines from the agent's log store (GET /api/v1/logs), like `docker logs`,
 * also for containers that are gone (the store keeps their lines and
 * names until retention removes them).
 *
 *   monitor logs web                    every stored line, oldest first
 *   monitor logs --tail 100 -f web      the last 100, then new ones as they come
 *   monitor logs --since 10m --grep 'timeout|refused' --level warn+ web
 *
 * Lines of stdout go to stdout and those of stderr to stderr, as docker
 * prints them; --timestamps puts the line's RFC 3339 time first. Lines the
 * agent stored escaped (invalid UTF-8, control bytes) print as stored, so
 * a terminal never receives raw escape sequences from a container.
 * -f asks the agent for new lines a few times a second, resuming after the
 * last line printed, so nothing is printed twice or skipped.
 */
#include "agent/cli.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOGS_PAGE 5000
#define FOLLOW_POLL_MS 250

static void usage(FILE *f)
{
	fprintf(f,
		"usage: monitor logs [flags] CONTAINER\n"
		"Prints a container's log lines as the agent stored them (also of containers\n"
		"that no longer exist). CONTAINER is a name, an id or an id prefix.\n"
		"  -f, --follow        keep printing new lines as they come\n"
		"  --since T           lines from T: Unix seconds, RFC 3339, or a duration ago (10m)\n"
		"  --until T           lines before T (same forms)\n"
		"  --grep RE           only lines matching the POSIX extended regex RE\n"
		"  -i, --ignore-case   --grep ignores case\n"
		"  -q, --search WORDS  only lines holding all WORDS (full-text index; fast)\n"
		"  --level L           error, warn, info, ...; a list (warn,error) or warn+ (and above)\n"
		"  --stream S          stdout or stderr only\n"
		"  --tail N            the last N lines only (default: all)\n"
		"  -t, --timestamps    print each line's time first\n"
		"  --json              print the lines as the API's JSON objects, one a line\n"
		CLI_COMMON_USAGE);
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void add_arg(struct buf *b, const char *key, const char *value)
{
	if (!value)
		return;
	size_t n = strlen(value) * 3 + 1;
	char *enc = malloc(n);
	if (!enc)
		return;
	cli_path_escape(enc, n, value);
	buf_printf(b, "&%s=%s", key, enc);
	free(enc);
}

struct opts {
	bool follow, timestamps, json;
	const char *tail;
};

/* Prints the lines of one answer; returns how many and the last seq. */
static size_t print_lines(const struct opts *o, const struct json *lines, uint64_t *last)
{
	size_t n = 0;
	for (const struct json *l = lines ? lines->child : NULL; l; l = l->next, n++) {
		const struct json *seq = json_get(l, "seq");
		if (seq && seq->type == JSON_NUMBER && (uint64_t)seq->number > *last)
			*last = (uint64_t)seq->number;
		if (o->json) {
			struct buf b;
			buf_init(&b, 64u << 20);
			cli_json_write(&b, l, -1, 0);
			if (b.len)
				printf("%s\n", b.data);
			buf_fini(&b);
			continue;
		}
		FILE *out = strcmp(cli_str(l, "stream"), "stderr") ? stdout : stderr;
		if (o->timestamps)
			fprintf(out, "%s ", cli_str(l, "time"));
		fprintf(out, "%s\n", cli_str(l, "message"));
	}
	fflush(stdout);
	fflush(stderr);
	return n;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

int cli_logs_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "follow", no_argument, 0, 'f' },
		{ "since", required_argument, 0, 's' },
		{ "until", required_argument, 0, 'u' },
		{ "grep", required_argument, 0, 'g' },
		{ "ignore-case", no_argument, 0, 'i' },
		{ "search", required_argument, 0, 'q' },
		{ "level", required_argument, 0, 'l' },
		{ "stream", required_argument, 0, 'S' },
		{ "tail", required_argument, 0, 'n' },
		{ "timestamps", no_argument, 0, 't' },
		{ "json", no_argument, 0, 'j' },
		{ "help", no_argument, 0, 'h' },
		CLI_COMMON_OPTIONS,
		{ 0, 0, 0, 0 },
	};
	struct cli c;
	cli_init(&c, "logs");
	struct opts o = { 0 };
	const char *since = NULL, *until = NULL, *grep = NULL, *level = NULL, *search = NULL;
	const char *stream = NULL;
	bool icase = false;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "fitq:n:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f': o.follow = true; break;
		case 's': since = optarg; break;
		case 'u': until = optarg; break;
		case 'g': grep = optarg; break;
		case 'i': icase = true; break;
		case 'q': search = optarg; break;
		case 'l': level = optarg; break;
		case 'S': stream = optarg; break;
		case 'n': o.tail = optarg; break;
		case 't': o.timestamps = true; break;
		case 'j': o.json = true; break;
		case 'h': usage(stdout); return 0;
		default:
			if (opt >= CLI_OPT_BASE) {
				if (cli_common_opt(&c, opt, optarg) < 0)
					return 2;
				break;
			}
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	const char *who = argv[optind];
	if (o.tail && strcmp(o.tail, "all")) {
		char *end;
		long n = strtol(o.tail, &end, 10);
		if (*end || n < 0 || n > 10000) {
			cli_err(&c, "--tail %s: expected a number of lines (0 to 10000) or all", o.tail);
			return 2;
		}
	} else {
		o.tail = NULL;
	}
	if (cli_open(&c) < 0)
		return 1;

	struct buf base;
	buf_init(&base, 16384);
	buf_puts(&base, "/api/v1/logs?x=1");
	add_arg(&base, "container", who);
	add_arg(&base, "since", since);
	add_arg(&base, "until", until);
	add_arg(&base, "grep", grep);
	add_arg(&base, "q", search);
	add_arg(&base, "level", level);
	add_arg(&base, "stream", stream);
	if (icase)
		buf_puts(&base, "&icase=1");

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	int status = 0;
	uint64_t last = 0;
	bool first = true, seen = false;
	struct buf path;
	buf_init(&path, 32768);
	while (!interrupted) {
		buf_reset(&path);
		buf_add(&path, base.data, base.len);
		if (first && o.tail)
			buf_printf(&path, "&tail=%s", o.tail);
		else
			buf_printf(&path, "&limit=%d&after=%llu", LOGS_PAGE, (unsigned long long)last);
		struct json_doc doc;
		long st = cli_get_json(&c, path.data, &doc);
		if (st < 0) {
			status = 1;
			break;
		}
		if (st == 404 && o.follow && !seen) {
			/* Not seen yet: its first line may come. */
			json_doc_free(&doc);
			sleep_ms(FOLLOW_POLL_MS);
			continue;
		}
		if (st != 200) {
			cli_err(&c, "%s", cli_api_error(&doc, "the agent refused the query"));
			json_doc_free(&doc);
			status = 1;
			break;
		}
		seen = true;
		const struct json *lines = json_path(doc.root, "data.lines");
		size_t n = print_lines(&o, lines, &last);
		const struct json *ls = json_path(doc.root, "data.last_seq");
		if (ls && ls->type == JSON_NUMBER && (uint64_t)ls->number > last)
			last = (uint64_t)ls->number;
		json_doc_free(&doc);
		bool was_tail = first && o.tail;
		first = false;
		if (was_tail && !o.follow)
			break;
		if (!was_tail && n == LOGS_PAGE)
			continue;           /* more stored: the next page at once */
		if (!o.follow)
			break;
		sleep_ms(FOLLOW_POLL_MS);
	}
	buf_fini(&path);
	buf_fini(&base);
	cli_close(&c);
	return status;
}
