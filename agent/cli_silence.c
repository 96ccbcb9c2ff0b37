/*
 * cli_silence.c - `monitor silence add|ls|expire`, the agent's amtool:
 *
 *   monitor silence add [-d 2h | --end TIME] [--start TIME] -c COMMENT
 *                       [-a AUTHOR] MATCHER...      prints the new id
 *   monitor silence ls [--expired | --all] [-q] [--json] [MATCHER...]
 *   monitor silence expire ID...
 *
 * MATCHER is amtool's form: name=value, name!=value, name=~regex,
 * name!~regex (a bare word W means alertname=W, as in amtool). Matchers are
 * checked here, so a typo is reported before anything is sent; the agent
 * checks again. add and expire need the admin token (--token-file or
 * MONITOR_TOKEN); ls does not. Talks to /api/v2/silences (api_silences.c).
 */
#include "agent/cli.h"
#include "alerting/alerting.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: monitor silence add [flags] MATCHER...\n"
		"       monitor silence ls [flags] [MATCHER...]\n"
		"       monitor silence expire [flags] ID...\n"
		"Silences mute the notifications of alerts whose labels match every MATCHER\n"
		"(name=value, name!=value, name=~regex, name!~regex; a bare word is\n"
		"alertname=WORD). Silenced alerts are still evaluated and shown as silenced.\n"
		"add:\n"
		"  -d, --duration DUR  how long (default 1h)\n"
		"  -e, --end TIME      end at TIME (RFC 3339) instead\n"
		"  -s, --start TIME    start at TIME (RFC 3339; default now)\n"
		"  -c, --comment TEXT  why (required)\n"
		"  -a, --author NAME   who (default the user name)\n"
		"ls:\n"
		"      --expired       only expired silences (default: active and pending)\n"
		"      --all           every silence\n"
		"  -q, --quiet         ids only\n"
		"      --json          the agent's JSON\n"
		"add and expire need the agent's admin token.\n"
		CLI_COMMON_USAGE);
}

/* The message of an error answer, with a hint for a missing token. */
static void report(struct cli *c, const char *what, const struct cli_resp *r)
{
	struct json_doc doc;
	const char *msg = "no details";
	memset(&doc, 0, sizeof(doc));
	if (r->body.len && json_parse(&doc, r->body.data, r->body.len, NULL) == 0)
		msg = cli_api_error(&doc, msg);
	const char *hint = "";
	if (r->status == 401 || r->status == 403)
		hint = *c->token ? " (the token given was refused)"
				 : " (give the admin token: --token-file FILE or MONITOR_TOKEN)";
	else if (r->status == 404 && strstr(msg, "not found"))
		hint = " (this agent has no silences; is it older than this client?)";
	cli_err(c, "%s%sthe agent answered %ld: %s%s", what ? what : "", what ? ": " : "",
		r->status, msg, hint);
	json_doc_free(&doc);
}

/* Parses one command-line matcher into b as a JSON matcher object. */
static int put_matcher(struct cli *c, const char *arg, struct buf *b)
{
	struct alert_matcher m;
	char err[512], text[ALERT_MATCHER_VALUE_MAX + 64];
	bool bare = strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:") ==
		    strlen(arg);
	snprintf(text, sizeof(text), bare ? "alertname=%s" : "%s", arg);
	if (alert_matcher_parse(text, &m, err, sizeof(err)) < 0) {
		cli_err(c, "%s", err);
		return -EINVAL;
	}
	buf_puts(b, "{\"name\":");
	buf_put_json_str(b, m.name);
	buf_puts(b, ",\"value\":");
	buf_put_json_str(b, m.value);
	buf_puts(b, m.is_regex ? ",\"isRegex\":true" : ",\"isRegex\":false");
	buf_puts(b, m.is_equal ? ",\"isEqual\":true}" : ",\"isEqual\":false}");
	alert_matcher_fini(&m);
	return 0;
}

static void default_author(char *out, size_t size)
{
	const char *u = getenv("USER");
	struct passwd *pw = (!u || !*u) ? getpwuid(getuid()) : NULL;
	if (pw)
		u = pw->pw_name;
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	snprintf(out, size, "%s%s%s", u && *u ? u : "unknown", *host ? "@" : "", host);
}

static int cmd_add(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, 0, 'h' },           { "duration", required_argument, 0, 'd' },
		{ "end", required_argument, 0, 'e' },      { "start", required_argument, 0, 's' },
		{ "comment", required_argument, 0, 'c' },  { "author", required_argument, 0, 'a' },
		CLI_COMMON_OPTIONS,                        { 0, 0, 0, 0 },
	};
	const char *duration = NULL, *end = NULL, *start = NULL, *comment = NULL, *author = NULL;
	int ch;
	int64_t t;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "hd:e:s:c:a:", opts, NULL)) != -1) {
		switch (ch) {
		case 'h': usage(stdout); return 0;
		case 'd':
			if (parse_duration_ms(optarg, &t) < 0 || t <= 0) {
				cli_err(c, "--duration %s: expected a duration such as 2h or 30m", optarg);
				return 2;
			}
			duration = optarg;
			break;
		case 'e':
		case 's':
			if (alert_time_parse(optarg, &t) < 0) {
				cli_err(c, "--%s %s: expected an RFC 3339 time such as "
					"2026-11-29T18:00:00Z", ch == 'e' ? "end" : "start", optarg);
				return 2;
			}
			*(ch == 'e' ? &end : &start) = optarg;
			break;
		case 'c': comment = optarg; break;
		case 'a': author = optarg; break;
		case '?': usage(stderr); return 2;
		default:
			if (cli_common_opt(c, ch, optarg) < 0)
				return 2;
		}
	}
	if (optind >= argc) {
		cli_err(c, "which alerts? give at least one matcher, such as "
			"alertname=ContainerOOMKilled or name=~\"web-.*\"");
		return 2;
	}
	if (!comment || !*comment) {
		cli_err(c, "say why with --comment TEXT");
		return 2;
	}
	if (duration && end) {
		cli_err(c, "give --duration or --end, not both");
		return 2;
	}
	if (argc - optind > ALERT_SILENCE_MAX_MATCHERS) {
		cli_err(c, "at most %d matchers", ALERT_SILENCE_MAX_MATCHERS);
		return 2;
	}
	char who[512];
	if (!author || !*author)
		default_author(who, sizeof(who));
	else
		snprintf(who, sizeof(who), "%s", author);

	struct buf b;
	buf_init(&b, 1 << 20);
	buf_puts(&b, "{\"matchers\":[");
	for (int i = optind; i < argc; i++) {
		if (i > optind)
			buf_putc(&b, ',');
		if (put_matcher(c, argv[i], &b) < 0) {
			buf_fini(&b);
			return 2;
		}
	}
	buf_putc(&b, ']');
	if (start) {
		buf_puts(&b, ",\"startsAt\":");
		buf_put_json_str(&b, start);
	}
	if (end) {
		buf_puts(&b, ",\"endsAt\":");
		buf_put_json_str(&b, end);
	} else {
		buf_puts(&b, ",\"duration\":");
		buf_put_json_str(&b, duration ? duration : "1h");
	}
	buf_puts(&b, ",\"createdBy\":");
	buf_put_json_str(&b, who);
	buf_puts(&b, ",\"comment\":");
	buf_put_json_str(&b, comment);
	buf_putc(&b, '}');
	if (b.overflow) {
		cli_err(c, "the silence is too large");
		buf_fini(&b);
		return 2;
	}
	int status = 1;
	struct cli_resp r;
	if (cli_open(c) < 0 || cli_request(c, "POST", "/api/v2/silences", b.data, &r) < 0)
		goto out;
	if (r.status == 200) {
		struct json_doc doc;
		const char *id = NULL;
		if (json_parse(&doc, r.body.data ? r.body.data : "", r.body.len, NULL) == 0)
			id = json_get_str(doc.root, "silenceID");
		else
			memset(&doc, 0, sizeof(doc));
		if (id) {
			printf("%s\n", id);
			status = 0;
		} else {
			cli_err(c, "the agent answered 200 without a silenceID");
		}
		json_doc_free(&doc);
	} else {
		report(c, NULL, &r);
	}
	cli_resp_fini(&r);
out:
	buf_fini(&b);
	return status;
}

/* "name=~\"re\", a!=\"b\"" for the table. */
static void matchers_text(const struct json *ms, char *out, size_t size)
{
	struct buf b;
	buf_init(&b, 1 << 16);
	for (const struct json *m = ms ? ms->child : NULL; m; m = m->next) {
		const struct json *re = json_get(m, "isRegex"), *eq = json_get(m, "isEqual");
		bool is_re = re && re->type == JSON_BOOL && re->boolean;
		bool is_eq = !eq || eq->type != JSON_BOOL || eq->boolean;
		if (m != ms->child)
			buf_putc(&b, ' ');
		buf_puts(&b, cli_str(m, "name"));
		buf_puts(&b, is_eq ? (is_re ? "=~" : "=") : (is_re ? "!~" : "!="));
		buf_put_json_str(&b, cli_str(m, "value"));
	}
	snprintf(out, size, "%s", b.len ? b.data : "");
	buf_fini(&b);
}

/* "2026-11-29T18:00:00.250Z" -> "2026-11-29 18:00:00 UTC". */
static void short_time(const char *rfc, char *out, size_t size)
{
	int64_t ms;
	if (alert_time_parse(rfc, &ms) < 0) {
		snprintf(out, size, "%s", rfc);
		return;
	}
	char t[40];
	alert_time_format(ms - ms % 1000, t, sizeof(t));
	t[10] = ' ';
	t[19] = '\0';
	snprintf(out, size, "%.19s UTC", t);
}

static int cmd_ls(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, 0, 'h' },  { "expired", no_argument, 0, 'x' },
		{ "all", no_argument, 0, 'A' },   { "quiet", no_argument, 0, 'q' },
		{ "json", no_argument, 0, 'j' },  CLI_COMMON_OPTIONS,
		{ 0, 0, 0, 0 },
	};
	bool expired = false, all = false, quiet = false, json = false;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
		switch (ch) {
		case 'h': usage(stdout); return 0;
		case 'x': expired = true; break;
		case 'A': all = true; break;
		case 'q': quiet = true; break;
		case 'j': json = true; break;
		case '?': usage(stderr); return 2;
		default:
			if (cli_common_opt(c, ch, optarg) < 0)
				return 2;
		}
	}
	char path[8192] = "/api/v2/silences";
	size_t plen = strlen(path);
	for (int i = optind; i < argc; i++) {
		struct alert_matcher m;
		char err[512], esc[4096];
		if (alert_matcher_parse(argv[i], &m, err, sizeof(err)) < 0) {
			cli_err(c, "%s", err);
			return 2;
		}
		alert_matcher_fini(&m);
		cli_path_escape(esc, sizeof(esc), argv[i]);
		int n = snprintf(path + plen, sizeof(path) - plen, "%cfilter=%s",
				 i == optind ? '?' : '&', esc);
		if (n < 0 || (size_t)n >= sizeof(path) - plen) {
			cli_err(c, "the matchers are too long");
			return 2;
		}
		plen += (size_t)n;
	}
	if (cli_open(c) < 0)
		return 1;
	struct json_doc doc;
	long st = cli_get_json(c, path, &doc);
	if (st < 0)
		return 1;
	int status = 1;
	if (st != 200 || !doc.root || doc.root->type != JSON_ARRAY) {
		cli_err(c, "ls: the agent answered %ld: %s", st, cli_api_error(&doc,
			st == 404 ? "not found (is the agent older than this client?)" :
			"not a list of silences"));
		goto out;
	}
	struct buf out;
	buf_init(&out, CLI_BODY_CAP);
	struct cli_table t;
	cli_table_init(&t, 7);
	const char *head[] = { "ID", "MATCHERS", "STATE", "STARTS", "ENDS", "CREATED BY",
			       "COMMENT" };
	cli_table_add(&t, head);
	if (json)
		buf_putc(&out, '[');
	size_t shown = 0;
	for (const struct json *s = doc.root->child; s; s = s->next) {
		const char *state = cli_str(json_get(s, "status"), "state");
		bool is_expired = !strcmp(state, "expired");
		if (!all && is_expired != expired)
			continue;
		if (json) {
			buf_puts(&out, shown ? ",\n  " : "\n  ");
			cli_json_write(&out, s, 2, 1);
		} else if (quiet) {
			buf_printf(&out, "%s\n", cli_str(s, "id"));
		} else {
			char ms[2048], starts[40], ends[40], comment[160];
			matchers_text(json_get(s, "matchers"), ms, sizeof(ms));
			short_time(cli_str(s, "startsAt"), starts, sizeof(starts));
			short_time(cli_str(s, "endsAt"), ends, sizeof(ends));
			snprintf(comment, sizeof(comment), "%s", cli_str(s, "comment"));
			for (char *p = comment; *p; p++)
				if (*p == '\n' || *p == '\t')
					*p = ' ';
			const char *row[] = { cli_str(s, "id"), ms, state, starts, ends,
					      cli_str(s, "createdBy"), comment };
			cli_table_add(&t, row);
		}
		shown++;
	}
	if (json) {
		buf_puts(&out, shown ? "\n]\n" : "]\n");
		fwrite(out.data, 1, out.len, stdout);
	} else if (quiet) {
		if (out.len)
			fwrite(out.data, 1, out.len, stdout);
	} else {
		cli_table_print(&t, stdout);
	}
	cli_table_fini(&t);
	buf_fini(&out);
	status = 0;
out:
	json_doc_free(&doc);
	return status;
}

static int cmd_expire(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, 0, 'h' }, CLI_COMMON_OPTIONS, { 0, 0, 0, 0 },
	};
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'h': usage(stdout); return 0;
		case '?': usage(stderr); return 2;
		default:
			if (cli_common_opt(c, ch, optarg) < 0)
				return 2;
		}
	}
	if (optind >= argc) {
		cli_err(c, "which silence? (monitor silence expire ID...; ids from monitor silence ls)");
		return 2;
	}
	if (cli_open(c) < 0)
		return 1;
	bool failed = false;
	for (int i = optind; i < argc; i++) {
		char esc[256], path[512], what[320];
		if (strlen(argv[i]) >= 128) {
			cli_err(c, "\"%.40s...\": not a silence id", argv[i]);
			failed = true;
			continue;
		}
		cli_path_escape(esc, sizeof(esc), argv[i]);
		snprintf(path, sizeof(path), "/api/v2/silence/%s", esc);
		struct cli_resp r;
		if (cli_request(c, "DELETE", path, NULL, &r) < 0)
			return 1;
		if (r.status == 200) {
			printf("%s\n", argv[i]);
		} else {
			snprintf(what, sizeof(what), "expire %s", argv[i]);
			report(c, what, &r);
			failed = true;
		}
		cli_resp_fini(&r);
	}
	return failed ? 1 : 0;
}

int cli_silence_main(int argc, char **argv)
{
	struct cli c;
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
		usage(stdout);
		return 0;
	}
	char name[32];
	snprintf(name, sizeof(name), "silence %.16s", sub);
	cli_init(&c, name);
	int rc;
	if (!strcmp(sub, "add"))
		rc = cmd_add(&c, argc - 1, argv + 1);
	else if (!strcmp(sub, "ls") || !strcmp(sub, "list") || !strcmp(sub, "query"))
		rc = cmd_ls(&c, argc - 1, argv + 1);
	else if (!strcmp(sub, "expire") || !strcmp(sub, "rm"))
		rc = cmd_expire(&c, argc - 1, argv + 1);
	else {
		fprintf(stderr, "monitor silence: unknown subcommand \"%s\" (add, ls, expire)\n", sub);
		usage(stderr);
		rc = 2;
	}
	cli_close(&c);
	return rc;
}
