/*
 * cli_inspect.c - `monitor inspect ID...`: everything the agent knows about
 * containers, as one JSON array (one object per ID, as docker inspect).
 *
 * Each object is the agent's container detail (/api/v1/containers/{id}:
 * metadata, latest values, every series) with what other endpoints add:
 * "processes" (/api/v1/containers/{id}/processes), "network" (the network
 * mode and the listening sockets of /api/v1/containers/{id}/ports; the
 * published ports are the detail's own "ports") and "events"
 * (/api/v1/events, this container's only). An endpoint the agent does not have (404) is left out;
 * any other failure is an error, so a partial answer never looks whole.
 */
#include "agent/cli.h"

#include <stdlib.h>
#include <string.h>

#define INDENT 4

static void usage(FILE *f)
{
	fprintf(f,
		"usage: monitor inspect [flags] ID...\n"
		"Everything the agent knows about containers, as a JSON array.\n"
		"ID is a name, a full id or a unique id prefix.\n"
		CLI_COMMON_USAGE);
}

/* The "data" of an API answer, else the whole document. */
static const struct json *payload(const struct json_doc *d)
{
	const struct json *v = d->root ? json_get(d->root, "data") : NULL;
	return v ? v : d->root;
}

/*
 * GETs an optional part. Returns 1 with doc filled on 200, 0 when the agent
 * has no such endpoint (404), -1 after printing an error.
 */
static int optional_part(struct cli *c, const char *path, struct json_doc *doc)
{
	long st = cli_get_json(c, path, doc);
	if (st < 0)
		return -1;
	if (st == 200 && doc->root)
		return 1;
	if (st != 404)
		cli_err(c, "the agent at %s answered GET %s with status %ld: %s", c->url, path, st,
			cli_api_error(doc, "no details"));
	json_doc_free(doc);
	return st == 404 ? 0 : -1;
}

static void member(struct buf *b, bool *first, const char *key)
{
	buf_puts(b, *first ? "\n" : ",\n");
	*first = false;
	buf_printf(b, "%*s", 2 * INDENT, "");
	buf_put_json_str(b, key);
	buf_puts(b, ": ");
}

/* A part's payload without the id and name it repeats. */
static void write_part(struct buf *b, const struct json *v)
{
	if (v->type != JSON_OBJECT) {
		cli_json_write(b, v, INDENT, 2);
		return;
	}
	buf_putc(b, '{');
	bool first = true;
	for (const struct json *m = v->child; m; m = m->next) {
		if (m->key && (!strcmp(m->key, "id") || !strcmp(m->key, "name")))
			continue;
		buf_printf(b, "%s\n%*s", first ? "" : ",", 3 * INDENT, "");
		buf_put_json_str(b, m->key ? m->key : "");
		buf_puts(b, ": ");
		cli_json_write(b, m, INDENT, 3);
		first = false;
	}
	if (!first)
		buf_printf(b, "\n%*s", 2 * INDENT, "");
	buf_putc(b, '}');
}

/* Appends one container's object to out. Returns 0 or -1 after printing. */
static int inspect_one(struct cli *c, const char *id, const char *name, struct buf *out)
{
	char esc[512], path[1024];
	cli_path_escape(esc, sizeof(esc), id);
	struct json_doc detail, procs = { 0 }, ports = { 0 }, events = { 0 };
	snprintf(path, sizeof(path), "/api/v1/containers/%s", esc);
	long st = cli_get_json(c, path, &detail);
	if (st < 0)
		return -1;
	const struct json *d = payload(&detail);
	if (st != 200 || !d || d->type != JSON_OBJECT) {
		cli_err(c, "%s: the agent answered %ld: %s", name, st,
			cli_api_error(&detail, "no container detail"));
		json_doc_free(&detail);
		return -1;
	}
	int rc = -1, hp, hpo, he;
	snprintf(path, sizeof(path), "/api/v1/containers/%s/processes", esc);
	if ((hp = optional_part(c, path, &procs)) < 0)
		goto out;
	snprintf(path, sizeof(path), "/api/v1/containers/%s/ports", esc);
	if ((hpo = optional_part(c, path, &ports)) < 0)
		goto out;
	snprintf(path, sizeof(path), "/api/v1/events?container=%s", esc);
	if ((he = optional_part(c, path, &events)) < 0)
		goto out;

	buf_printf(out, "%*s{", INDENT, "");
	bool first = true;
	for (const struct json *m = d->child; m; m = m->next) {
		member(out, &first, m->key ? m->key : "");
		cli_json_write(out, m, INDENT, 2);
	}
	if (hp > 0 && !json_get(d, "processes")) {
		member(out, &first, "processes");
		write_part(out, payload(&procs));
	}
	if (hpo > 0 && !json_get(d, "network")) {
		member(out, &first, "network");
		write_part(out, payload(&ports));
	}
	const struct json *ev = he > 0 ? payload(&events) : NULL;
	if (ev && !json_get(d, "events")) {
		member(out, &first, "events");
		if (ev->type != JSON_ARRAY) {
			cli_json_write(out, ev, INDENT, 2);
		} else {
			/* Whether or not the agent filters by ?container=, keep
			 * only this container's events. */
			buf_putc(out, '[');
			bool any = false;
			for (const struct json *e = ev->child; e; e = e->next) {
				const char *eid = cli_str(e, "id");
				if (strcmp(eid, id) != 0 && strcmp(cli_str(e, "name"), name) != 0)
					continue;
				buf_printf(out, "%s\n%*s", any ? "," : "", 3 * INDENT, "");
				cli_json_write(out, e, INDENT, 3);
				any = true;
			}
			if (any)
				buf_printf(out, "\n%*s", 2 * INDENT, "");
			buf_putc(out, ']');
		}
	}
	buf_printf(out, "\n%*s}", INDENT, "");
	rc = 0;
out:
	json_doc_free(&detail);
	json_doc_free(&procs);
	json_doc_free(&ports);
	json_doc_free(&events);
	return rc;
}

int cli_inspect_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, 0, 'h' }, CLI_COMMON_OPTIONS, { 0, 0, 0, 0 },
	};
	struct cli c;
	cli_init(&c, "inspect");
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'h': usage(stdout); return 0;
		case '?': usage(stderr); return 2;
		default:
			if (cli_common_opt(&c, ch, optarg) < 0)
				return 2;
		}
	}
	if (optind >= argc) {
		cli_err(&c, "which container? (monitor inspect ID...)");
		return 2;
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
	struct cli_list l;
	struct buf out;
	buf_init(&out, CLI_BODY_CAP);
	if (cli_list_fetch(&c, &l) < 0)
		goto done;
	/* docker inspect prints what it found and fails for the rest. */
	bool failed = false, any = false;
	buf_puts(&out, "[");
	for (int i = optind; i < argc; i++) {
		const struct json *ctr = cli_resolve_wait(&c, &l, argv[i]);
		if (!ctr) {
			failed = true;
			continue;
		}
		size_t mark = out.len;
		buf_puts(&out, any ? ",\n" : "\n");
		if (inspect_one(&c, cli_str(ctr, "id"), cli_str(ctr, "name"), &out) < 0) {
			out.len = mark;
			if (out.data)
				out.data[mark] = '\0';
			failed = true;
			continue;
		}
		any = true;
	}
	buf_puts(&out, any ? "\n]\n" : "]\n");
	if (out.overflow) {
		cli_err(&c, "the answer is larger than %u MiB", CLI_BODY_CAP >> 20);
	} else {
		fwrite(out.data, 1, out.len, stdout);
		status = failed ? 1 : 0;
	}
	cli_list_free(&l);
done:
	buf_fini(&out);
	cli_close(&c);
	return status;
}
