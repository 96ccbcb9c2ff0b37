/*
 * cli_action.c - `monitor start|stop|restart|pause|unpause|kill ID...`:
 * POST /api/v1/containers/{id}/{action} with the admin token as a bearer
 * token. The agent carries the action out through the container's runtime
 * and records it as an event; this client resolves the ids, sends the
 * requests one by one and, like docker, prints each ID it acted on.
 * stop and restart take -t (seconds before SIGKILL), kill takes -s (the
 * signal); both travel as query arguments (t=, signal=).
 */
#include "agent/cli.h"

#include <stdlib.h>
#include <string.h>

static void usage(FILE *f, const char *action)
{
	fprintf(f,
		"usage: monitor %s [flags] ID...\n"
		"Asks the agent to %s containers through their runtime. Needs the agent's\n"
		"admin token (auth.admin_token_file in its config).\n"
		"ID is a name, a full id or a unique id prefix.\n"
		"  -t, --time SECONDS  stop, restart: wait this long before SIGKILL (default 10)\n"
		"  -s, --signal SIG    kill: the signal (default KILL)\n"
		CLI_COMMON_USAGE, action, action);
}

/* Acts on one container. Returns 0 or -1 after printing why. */
static int act(struct cli *c, const char *action, const char *query, const char *arg,
	       const struct json *ctr)
{
	char esc[512], path[1024];
	cli_path_escape(esc, sizeof(esc), cli_str(ctr, "id"));
	snprintf(path, sizeof(path), "/api/v1/containers/%s/%s%s", esc, action, query);
	struct cli_resp r;
	if (cli_request(c, "POST", path, NULL, &r) < 0)
		return -1;
	int rc = 0;
	if (r.status >= 200 && r.status < 300) {
		printf("%s\n", arg);
	} else {
		struct json_doc doc;
		const char *msg = "no details";
		if (r.body.len && json_parse(&doc, r.body.data, r.body.len, NULL) == 0)
			msg = cli_api_error(&doc, msg);
		else
			memset(&doc, 0, sizeof(doc));
		const char *hint = "";
		if (r.status == 401 || r.status == 403)
			hint = *c->token ? " (the token given was refused)"
					 : " (give the admin token: --token-file FILE or MONITOR_TOKEN)";
		else if (r.status == 405)
			hint = " (this agent has no container actions; is it older than this client?)";
		cli_err(c, "%s %s: the agent answered %ld: %s%s", action, arg, r.status, msg, hint);
		json_doc_free(&doc);
		rc = -1;
	}
	cli_resp_fini(&r);
	return rc;
}

int cli_action_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, 0, 'h' },         { "time", required_argument, 0, 't' },
		{ "signal", required_argument, 0, 's' }, CLI_COMMON_OPTIONS,
		{ 0, 0, 0, 0 },
	};
	const char *action = argv[0];
	bool stops = !strcmp(action, "stop") || !strcmp(action, "restart");
	char query[64] = "", esc[40];
	struct cli c;
	cli_init(&c, action);
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "ht:s:", opts, NULL)) != -1) {
		switch (ch) {
		case 'h': usage(stdout, action); return 0;
		case 't': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (!stops || !*optarg || *end || v < 0 || v > 3600) {
				cli_err(&c, stops ? "-t %s: expected seconds from 0 to 3600" :
					"-t is for stop and restart only", optarg);
				return 2;
			}
			snprintf(query, sizeof(query), "?t=%ld", v);
			break;
		}
		case 's':
			if (strcmp(action, "kill") != 0 || !*optarg || strlen(optarg) > 16) {
				cli_err(&c, "-s %s: %s", optarg, strcmp(action, "kill") ?
					"--signal is for kill only" : "expected a signal such as TERM or 15");
				return 2;
			}
			cli_path_escape(esc, sizeof(esc), optarg);
			snprintf(query, sizeof(query), "?signal=%s", esc);
			break;
		case '?': usage(stderr, action); return 2;
		default:
			if (cli_common_opt(&c, ch, optarg) < 0)
				return 2;
		}
	}
	if (optind >= argc) {
		cli_err(&c, "which container? (monitor %s ID...)", action);
		return 2;
	}
	if (cli_open(&c) < 0) {
		cli_close(&c);
		return 1;
	}
	int status = 1;
	struct cli_list l;
	if (cli_list_fetch(&c, &l) < 0)
		goto done;
	bool failed = false;
	for (int i = optind; i < argc; i++) {
		const struct json *ctr = cli_resolve_wait(&c, &l, argv[i]);
		if (!ctr || act(&c, action, query, argv[i], ctr) < 0)
			failed = true;
	}
	status = failed ? 1 : 0;
	cli_list_free(&l);
done:
	cli_close(&c);
	return status;
}
