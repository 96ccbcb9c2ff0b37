/*
 * test_yaml.c - the YAML tree (agent/util/yaml.c): maps, sequences and
 * scalars with their positions, the quoted flag, and every input the loader
 * refuses (duplicate keys, anchors, tags, extra documents, syntax errors)
 * with the exact "name:line:col: message" it must print.
 */
#include "agent/util/util.h"
#include "tests/unit/test.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

static char err[512];

static int parse(struct ydoc *doc, const char *s)
{
	err[0] = 'X';
	err[1] = '\0';
	return ydoc_parse(doc, "t.yaml", s, strlen(s), err, sizeof(err));
}

/* Expects s to fail with -EINVAL and an error starting with want. */
static void check_bad(const char *s, const char *want, int line)
{
	struct ydoc doc;
	int rc = parse(&doc, s);
	if (rc != -EINVAL || strncmp(err, want, strlen(want)) != 0) {
		fprintf(stderr, "  line %d: rc %d err \"%s\", expected -EINVAL \"%s...\"\n",
			line, rc, err, want);
		t_cur_failed = 1;
	}
	CHECK(doc.root == NULL);
	ydoc_free(&doc);
}
#define BAD(s, want) check_bad(s, want, __LINE__)

static const char rules[] =
	"# Prometheus-format rules\n"
	"groups:\n"
	"  - name: node\n"
	"    interval: 30s\n"
	"    rules:\n"
	"      - alert: HighCPU\n"
	"        expr: rate(cpu_seconds_total[5m]) > 0.9\n"
	"        for: 5m\n"
	"        labels:\n"
	"          severity: \"page\"\n"
	"          team: 'ops'\n"
	"        annotations:\n"
	"          summary: |\n"
	"            CPU is high\n"
	"            on {{ $labels.instance }}\n"
	"      - record: job:up:sum\n"
	"        expr: >\n"
	"          sum by (job)\n"
	"          (up)\n";

static void test_rules_tree(void)
{
	struct ydoc doc;
	CHECK_EQ_INT(parse(&doc, rules), 0);
	CHECK_STR(doc.path, "t.yaml");
	const struct ynode *r = doc.root;
	CHECK(r && r->type == YNODE_MAP);
	CHECK_EQ_INT(r->line, 2);
	CHECK_EQ_INT(r->col, 1);
	CHECK_EQ_INT(r->count, 1);
	CHECK(r->key == NULL);

	const struct ynode *groups = ynode_get(r, "groups");
	CHECK(groups && groups->type == YNODE_SEQ);
	CHECK_STR(groups->key, "groups");
	CHECK_EQ_INT(groups->key_line, 2);
	CHECK_EQ_INT(groups->line, 3);
	CHECK_EQ_INT(groups->col, 3);
	CHECK_EQ_INT(groups->count, 1);

	const struct ynode *g = groups->child;
	CHECK(g && g->type == YNODE_MAP && g->key == NULL);
	CHECK_EQ_INT(g->line, 3);
	CHECK_EQ_INT(g->col, 5);
	CHECK_EQ_INT(g->count, 3);
	CHECK_STR(ynode_get(g, "name")->scalar, "node");
	CHECK_STR(ynode_get(g, "interval")->scalar, "30s");
	CHECK(!ynode_get(g, "interval")->quoted);

	const struct ynode *rl = ynode_get(g, "rules");
	CHECK(rl && rl->type == YNODE_SEQ && rl->count == 2);
	CHECK_EQ_INT(rl->key_line, 5);
	const struct ynode *a = rl->child;
	const struct ynode *alert = ynode_get(a, "alert");
	CHECK_STR(alert->scalar, "HighCPU");
	CHECK_EQ_INT(alert->line, 6);
	CHECK_EQ_INT(alert->col, 16);
	CHECK_EQ_INT(alert->key_line, 6);
	CHECK_STR(ynode_get(a, "expr")->scalar, "rate(cpu_seconds_total[5m]) > 0.9");
	CHECK_STR(ynode_get(a, "for")->scalar, "5m");
	const struct ynode *labels = ynode_get(a, "labels");
	CHECK(labels && labels->type == YNODE_MAP && labels->count == 2);
	CHECK_EQ_INT(labels->line, 10);
	CHECK_EQ_INT(labels->key_line, 9);
	const struct ynode *sev = ynode_get(labels, "severity");
	CHECK_STR(sev->scalar, "page");
	CHECK(sev->quoted);
	CHECK_EQ_INT(sev->line, 10);
	CHECK_EQ_INT(sev->col, 21);
	CHECK_STR(ynode_get(labels, "team")->scalar, "ops");
	CHECK(ynode_get(labels, "team")->quoted);
	const struct ynode *sum = ynode_get(ynode_get(a, "annotations"), "summary");
	CHECK_STR(sum->scalar, "CPU is high\non {{ $labels.instance }}\n");
	CHECK(sum->quoted);              /* block scalars are strings too */
	CHECK_EQ_INT(sum->key_line, 13);

	const struct ynode *rec = a->next;
	CHECK(rec && rec->next == NULL);
	CHECK_STR(ynode_get(rec, "record")->scalar, "job:up:sum");
	CHECK_STR(ynode_get(rec, "expr")->scalar, "sum by (job) (up)\n");

	/* Map children keep document order. */
	const char *order[] = { "alert", "expr", "for", "labels", "annotations" };
	size_t i = 0;
	for (const struct ynode *c = a->child; c; c = c->next, i++)
		CHECK_STR(c->key, i < ARRAY_LEN(order) ? order[i] : "?");
	CHECK_EQ_INT(i, 5);

	CHECK(ynode_get(a, "missing") == NULL);
	CHECK(ynode_get(rl, "alert") == NULL);    /* a sequence */
	CHECK(ynode_get(alert, "x") == NULL);     /* a scalar */
	CHECK(ynode_get(NULL, "x") == NULL);
	ydoc_free(&doc);
	CHECK(doc.root == NULL);
	ydoc_free(&doc);
	ydoc_free(NULL);
}

static void test_flow_and_scalars(void)
{
	struct ydoc doc;
	CHECK_EQ_INT(parse(&doc,
			   "a: {x: 1, y: [p, 'q', \"r\"]}\n"
			   "n: 12\n"
			   "s: !!str 12\n"
			   "i: !!int 12\n"
			   "bang: ! 12\n"
			   "empty:\n"
			   "tilde: ~\n"
			   "qe: ''\n"
			   "multi: \"a\\tb\\u00e9\"\n"
			   "folded: plain\n  continued\n"
			   "\"quoted key\": v\n"
			   "unicode: caf\xc3\xa9\n"), 0);
	const struct ynode *r = doc.root;
	CHECK_EQ_INT(r->count, 12);
	const struct ynode *a = ynode_get(r, "a");
	CHECK(a && a->type == YNODE_MAP && a->count == 2);
	CHECK_EQ_INT(a->line, 1);
	CHECK_EQ_INT(a->col, 4);
	const struct ynode *y = ynode_get(a, "y");
	CHECK(y && y->type == YNODE_SEQ && y->count == 3);
	CHECK_EQ_INT(y->col, 14);
	CHECK_STR(y->child->scalar, "p");
	CHECK(!y->child->quoted);
	CHECK_STR(y->child->next->scalar, "q");
	CHECK(y->child->next->quoted);
	CHECK_EQ_INT(y->child->next->col, 18);
	CHECK(y->child->next->next->quoted);
	CHECK(y->child->key == NULL);

	CHECK(!ynode_get(r, "n")->quoted);
	CHECK_STR(ynode_get(r, "s")->scalar, "12");
	CHECK(ynode_get(r, "s")->quoted);
	CHECK(!ynode_get(r, "i")->quoted);
	CHECK(ynode_get(r, "bang")->quoted);
	const struct ynode *e = ynode_get(r, "empty");
	CHECK(e && e->type == YNODE_SCALAR);
	CHECK_STR(e->scalar, "");
	CHECK(!e->quoted);
	CHECK_STR(ynode_get(r, "tilde")->scalar, "~");
	CHECK_STR(ynode_get(r, "qe")->scalar, "");
	CHECK(ynode_get(r, "qe")->quoted);
	CHECK_STR(ynode_get(r, "multi")->scalar, "a\tb\xc3\xa9");
	CHECK_STR(ynode_get(r, "folded")->scalar, "plain continued");
	CHECK_STR(ynode_get(r, "quoted key")->scalar, "v");
	CHECK_STR(ynode_get(r, "unicode")->scalar, "caf\xc3\xa9");
	ydoc_free(&doc);

	/* A scalar or a sequence can be the root. */
	CHECK_EQ_INT(parse(&doc, "hello\n"), 0);
	CHECK(doc.root && doc.root->type == YNODE_SCALAR);
	CHECK_STR(doc.root->scalar, "hello");
	ydoc_free(&doc);
	CHECK_EQ_INT(parse(&doc, "- 1\n- - 2\n  - 3\n"), 0);
	CHECK(doc.root && doc.root->type == YNODE_SEQ && doc.root->count == 2);
	CHECK_EQ_INT(doc.root->child->next->count, 2);
	CHECK_EQ_INT(doc.root->child->next->line, 2);
	CHECK_EQ_INT(doc.root->child->next->col, 3);
	ydoc_free(&doc);
}

static void test_empty(void)
{
	const char *empties[] = { "", "\n\n", "# just a comment\n", "---\n", "---\n...\n",
				  "--- # c\n", "---\n---\n" };
	for (size_t i = 0; i < ARRAY_LEN(empties); i++) {
		struct ydoc doc;
		int rc = parse(&doc, empties[i]);
		if (rc != 0 || doc.root) {
			fprintf(stderr, "  empty[%zu]: rc %d err %s\n", i, rc, err);
			t_cur_failed = 1;
		}
		ydoc_free(&doc);
	}
	struct ydoc doc;
	CHECK_EQ_INT(ydoc_parse(&doc, "t.yaml", NULL, 0, err, sizeof(err)), 0);
	CHECK(doc.root == NULL);
	/* A quoted empty string is a value, not an empty document. */
	CHECK_EQ_INT(parse(&doc, "''\n"), 0);
	CHECK(doc.root && doc.root->quoted);
	ydoc_free(&doc);
}

static void test_multi_document(void)
{
	struct ydoc doc;
	BAD("a: 1\n---\nb: 2\n", "t.yaml:2:1: a second YAML document");
	BAD("---\na: 1\n...\n---\n- x\n", "t.yaml:4:1: a second YAML document");
	/* Empty documents around the one that matters are fine. */
	CHECK_EQ_INT(parse(&doc, "a: 1\n---\n"), 0);
	CHECK_STR(ynode_get(doc.root, "a")->scalar, "1");
	ydoc_free(&doc);
	CHECK_EQ_INT(parse(&doc, "---\n---\na: 1\n"), 0);
	CHECK_STR(ynode_get(doc.root, "a")->scalar, "1");
	CHECK_EQ_INT(doc.root->line, 3);
	ydoc_free(&doc);
	/* Same key in two documents is not a duplicate, but still two docs. */
	BAD("a: 1\n---\na: 1\n", "t.yaml:2:1: a second YAML document");
}

static void test_duplicate_keys(void)
{
	BAD("a: 1\nb: 2\na: 3\n", "t.yaml:3:1: duplicate key \"a\"");
	BAD("x:\n  y: 1\n  'y': 2\n", "t.yaml:3:3: duplicate key \"y\"");
	BAD("{p: 1, q: 2, p: 3}", "t.yaml:1:14: duplicate key \"p\"");
	BAD("- {k: 1}\n- k: 1\n  k: 2\n", "t.yaml:3:3: duplicate key \"k\"");
	BAD("a: 1\n\"a\": 2\n", "t.yaml:2:1: duplicate key \"a\"");

	/* The same key in sibling or nested maps is fine. */
	struct ydoc doc;
	CHECK_EQ_INT(parse(&doc, "- k: 1\n- k: 2\n- a:\n    a:\n      k: 3\n"), 0);
	CHECK_STR(ynode_get(ynode_get(ynode_get(doc.root->child->next->next, "a"), "a"),
			    "k")->scalar, "3");
	ydoc_free(&doc);

	/* Many keys: no false positives, and the late duplicate is found. */
	struct buf b;
	buf_init(&b, 1 << 20);
	for (int i = 0; i < 3000; i++)
		buf_printf(&b, "key%d: %d\n", i, i);
	CHECK_EQ_INT(parse(&doc, b.data), 0);
	CHECK_EQ_INT(doc.root->count, 3000);
	CHECK_STR(ynode_get(doc.root, "key2999")->scalar, "2999");
	ydoc_free(&doc);
	buf_puts(&b, "key1234: again\n");
	BAD(b.data, "t.yaml:3001:1: duplicate key \"key1234\"");
	buf_fini(&b);
}

static void test_syntax_errors(void)
{
	BAD("a: b: c\n", "t.yaml:1:5: mapping values are not allowed in this context");
	BAD("a: 1\n  b: 2\n", "t.yaml:2:4: mapping values are not allowed");
	BAD("a: [1, 2\nb: 3\n",
	    "t.yaml:2:2: did not find expected ',' or ']' (while parsing a flow sequence at line 1)");
	BAD("- a\nb: 1\n", "t.yaml:2:1: did not find expected '-' indicator");
	BAD("a: 'x\n", "t.yaml:2:1: found unexpected end of stream");
	BAD("a:\n\tb: 1\n", "t.yaml:2:1: ");
	struct ydoc doc;
	CHECK_EQ_INT(parse(&doc, "a:\n\tb: 1\n"), -EINVAL);
	CHECK(strstr(err, "tabs cannot be used for indentation") != NULL);
	BAD("ok: 1\nbad: \xff\n", "t.yaml:2:6: invalid leading UTF-8 octet (0xff)");
	BAD("a: \"x\\0y\"\n", "t.yaml:1:4: NUL character in a scalar");
	BAD("? [a, b]\n: 1\n", "t.yaml:1:3: mapping keys must be scalars");
	BAD("? {a: 1}\n: 1\n", "t.yaml:1:3: mapping keys must be scalars");
}

static void test_refused_features(void)
{
	BAD("a: &x 1\nb: *x\n", "t.yaml:1:4: anchors (&x) are not supported");
	BAD("base: &b {a: 1}\nother:\n  <<: *b\n", "t.yaml:1:7: anchors (&b) are not supported");
	BAD("- &s [1]\n", "t.yaml:1:3: anchors (&s) are not supported");
	BAD("&k a: 1\n", "t.yaml:1:1: anchors (&k) are not supported");
	BAD("a: *nowhere\n", "t.yaml:1:4: aliases (*nowhere) are not supported");
	BAD("*nowhere : 1\n", "t.yaml:1:1: aliases (*nowhere) are not supported");
	BAD("a: !custom x\n", "t.yaml:1:4: unsupported tag \"!custom\"");
	BAD("a: !!set {x}\n", "t.yaml:1:4: unsupported tag \"tag:yaml.org,2002:set\"");
	BAD("a: !!map [1]\n", "t.yaml:1:4: unsupported tag \"tag:yaml.org,2002:map\"");
	struct ydoc doc;
	CHECK_EQ_INT(parse(&doc, "a: !!map {b: !!seq [!!null ~, !!bool true, !!float 1.5]}\n"), 0);
	ydoc_free(&doc);
}

static char *nested_flow(int depth)
{
	char *s = malloc((size_t)depth * 2 + 2), *p = s;
	for (int i = 0; i < depth; i++)
		*p++ = '[';
	*p++ = '1';
	for (int i = 0; i < depth; i++)
		*p++ = ']';
	*p = '\0';
	return s;
}

static void test_depth_cap(void)
{
	struct ydoc doc;
	char *s = nested_flow(64);
	CHECK_EQ_INT(parse(&doc, s), 0);
	ydoc_free(&doc);
	free(s);
	s = nested_flow(65);
	BAD(s, "t.yaml:1:65: nesting deeper than 64 levels");
	free(s);
}

static void test_error_args(void)
{
	/* err may be NULL; messages are truncated to errsize. */
	struct ydoc doc;
	CHECK_EQ_INT(ydoc_parse(&doc, "t.yaml", "a: b: c", 7, NULL, 0), -EINVAL);
	char small[8];
	CHECK_EQ_INT(ydoc_parse(&doc, "t.yaml", "a: b: c", 7, small, sizeof(small)), -EINVAL);
	CHECK_STR(small, "t.yaml:");
	/* The text need not be NUL-terminated. */
	CHECK_EQ_INT(ydoc_parse(&doc, "t.yaml", "a: 1b: 2", 4, err, sizeof(err)), 0);
	CHECK_STR(ynode_get(doc.root, "a")->scalar, "1");
	ydoc_free(&doc);
	/* The size cap applies to memory input too. */
	size_t big = (4u << 20) + 1;
	char *p = malloc(big);
	memset(p, '#', big);
	CHECK_EQ_INT(ydoc_parse(&doc, "big.yaml", p, big, err, sizeof(err)), -EFBIG);
	CHECK_STR(err, "big.yaml: larger than 4 MiB");
	free(p);
}

static int write_tmp(char *path, const char *data, size_t n)
{
	strcpy(path, "/tmp/test_yaml_XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	ssize_t w = write(fd, data, n);
	close(fd);
	return w == (ssize_t)n ? 0 : -1;
}

static void test_load_file(void)
{
	char path[64];
	struct ydoc doc;
	if (write_tmp(path, rules, strlen(rules)) < 0)
		SKIP("cannot write a file in /tmp");
	CHECK_EQ_INT(ydoc_load(&doc, path, err, sizeof(err)), 0);
	CHECK_STR(doc.path, path);
	CHECK_STR(ynode_get(ynode_get(doc.root, "groups")->child, "name")->scalar, "node");
	ydoc_free(&doc);
	unlink(path);

	const char bad[] = "a: 1\na: 2\n";
	CHECK(write_tmp(path, bad, strlen(bad)) == 0);
	CHECK_EQ_INT(ydoc_load(&doc, path, err, sizeof(err)), -EINVAL);
	char want[128];
	snprintf(want, sizeof(want), "%s:2:1: duplicate key \"a\"", path);
	CHECK_STR(err, want);
	CHECK(doc.root == NULL);
	unlink(path);

	CHECK(write_tmp(path, "", 0) == 0);
	CHECK_EQ_INT(ydoc_load(&doc, path, err, sizeof(err)), 0);
	CHECK(doc.root == NULL);
	unlink(path);

	/* Exactly 4 MiB is allowed, one byte more is not. */
	size_t cap = 4u << 20;
	char *p = malloc(cap + 1);
	memset(p, '\n', cap + 1);
	memcpy(p, "k: v", 4);
	CHECK(write_tmp(path, p, cap) == 0);
	CHECK_EQ_INT(ydoc_load(&doc, path, err, sizeof(err)), 0);
	CHECK_STR(ynode_get(doc.root, "k")->scalar, "v");
	ydoc_free(&doc);
	unlink(path);
	CHECK(write_tmp(path, p, cap + 1) == 0);
	CHECK_EQ_INT(ydoc_load(&doc, path, err, sizeof(err)), -EFBIG);
	snprintf(want, sizeof(want), "%s: larger than 4 MiB", path);
	CHECK_STR(err, want);
	unlink(path);
	free(p);

	CHECK_EQ_INT(ydoc_load(&doc, "/nonexistent/monitor.yaml", err, sizeof(err)), -ENOENT);
	CHECK_STR(err, "/nonexistent/monitor.yaml: No such file or directory");
	CHECK(doc.root == NULL);
	ydoc_free(&doc);
	CHECK_EQ_INT(ydoc_load(&doc, "/tmp", err, sizeof(err)), -EISDIR);
	CHECK_STR(err, "/tmp: Is a directory");
}

int main(void)
{
	RUN(test_rules_tree);
	RUN(test_flow_and_scalars);
	RUN(test_empty);
	RUN(test_multi_document);
	RUN(test_duplicate_keys);
	RUN(test_syntax_errors);
	RUN(test_refused_features);
	RUN(test_depth_cap);
	RUN(test_error_args);
	RUN(test_load_file);
	TEST_END();
}
