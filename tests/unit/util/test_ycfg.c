/*
 * test_ycfg.c - typed config values from a YAML tree (agent/util/ycfg.c):
 * each getter's good values, and its bad ones with the exact
 * "file:line:col: key: message" every config section prints (the common
 * wording, and a section's own when it passes one).
 */
#include "agent/util/util.h"
#include "tests/unit/test.h"

#include <errno.h>

static const char text[] =
	"name: web\n"            /* 1 */
	"long: abcdefghij\n"     /* 2 */
	"list: [a, b]\n"         /* 3 */
	"ivl: 1500ms\n"          /* 4 */
	"short: 5ms\n"           /* 5 */
	"junk: soon\n"           /* 6 */
	"n: 42\n"                /* 7 */
	"quoted: \"42\"\n"       /* 8 */
	"big: 4x\n"              /* 9 */
	"yes_: yes\n"            /* 10 */
	"no_: \"no\"\n"          /* 11 */
	"size: 1.5 KiB\n"        /* 12 */
	"badsize: 3 parsecs\n";  /* 13 */

static char err[512];
static struct ydoc doc;
static const struct ycfg x = { "c.yml", err, sizeof(err) };

static const struct ynode *get(const char *key)
{
	const struct ynode *n = ynode_get(doc.root, key);
	CHECK(n != NULL);
	err[0] = '\0';
	return n;
}

static void test_str_and_fail(void)
{
	char out[8];
	CHECK_EQ_INT(ycfg_str(&x, get("name"), "a.name", out, sizeof(out)), 0);
	CHECK_STR(out, "web");
	CHECK_EQ_INT(ycfg_str(&x, get("long"), "a.long", out, sizeof(out)), -EINVAL);
	CHECK_STR(err, "c.yml:2:7: a.long: too long (at most 7 bytes)");
	CHECK_EQ_INT(ycfg_str(&x, get("list"), "a.list", out, sizeof(out)), -EINVAL);
	CHECK_STR(err, "c.yml:3:7: a.list: expected a string");
	CHECK_EQ_INT(ycfg_fail(&x, NULL, "route", "no %s", "receiver"), -EINVAL);
	CHECK_STR(err, "c.yml:0:0: route: no receiver");
}

static void test_duration(void)
{
	int64_t ms = 0;
	CHECK_EQ_INT(ycfg_duration(&x, get("ivl"), "a.ivl", 10, &ms, NULL), 0);
	CHECK_EQ_INT(ms, 1500);
	CHECK_EQ_INT(ycfg_duration(&x, get("short"), "a.short", 10, &ms, NULL), -EINVAL);
	CHECK_STR(err, "c.yml:5:8: a.short: must be at least 10ms");
	CHECK_EQ_INT(ycfg_duration(&x, get("junk"), "a.junk", 0, &ms, NULL), -EINVAL);
	CHECK_STR(err, "c.yml:6:7: a.junk: expected a duration such as 500ms, 1s, 2m (got \"soon\")");
	CHECK_EQ_INT(ycfg_duration(&x, get("list"), "a.list", 0, &ms, NULL), -EINVAL);
	CHECK_STR(err, "c.yml:3:7: a.list: expected a duration such as 500ms, 1s, 2m "
		       "(got \"a collection\")");
	CHECK_EQ_INT(ycfg_duration(&x, get("junk"), "a.junk", 0, &ms, "own words"), -EINVAL);
	CHECK_STR(err, "c.yml:6:7: a.junk: own words");
}

static void test_int_and_bool(void)
{
	int64_t v = 0;
	bool b = false;
	CHECK_EQ_INT(ycfg_int(&x, get("n"), "a.n", 1, 100, &v), 0);
	CHECK_EQ_INT(v, 42);
	CHECK_EQ_INT(ycfg_int(&x, get("n"), "a.n", 1, 10, &v), -EINVAL);
	CHECK_STR(err, "c.yml:7:4: a.n: must be between 1 and 10");
	CHECK_EQ_INT(ycfg_int(&x, get("quoted"), "a.q", 1, 100, &v), -EINVAL);
	CHECK_STR(err, "c.yml:8:9: a.q: expected a whole number");
	CHECK_EQ_INT(ycfg_int(&x, get("big"), "a.big", 1, 100, &v), -EINVAL);
	CHECK_STR(err, "c.yml:9:6: a.big: expected a whole number (got \"4x\")");
	CHECK_EQ_INT(ycfg_bool(&x, get("yes_"), "a.y", &b), 0);
	CHECK(b);
	CHECK_EQ_INT(ycfg_bool(&x, get("no_"), "a.no", &b), -EINVAL);
	CHECK_STR(err, "c.yml:11:6: a.no: expected true or false");
}

static void test_size(void)
{
	uint64_t v = 0;
	CHECK_EQ_INT(ycfg_size(&x, get("size"), "a.size", &v, NULL), 0);
	CHECK_EQ_INT(v, 1536);
	CHECK_EQ_INT(ycfg_size(&x, get("n"), "a.n", &v, NULL), 0);
	CHECK_EQ_INT(v, 42);
	CHECK_EQ_INT(ycfg_size(&x, get("badsize"), "a.bad", &v, NULL), -EINVAL);
	CHECK_STR(err, "c.yml:13:10: a.bad: expected a size such as 4GiB or 500MB, or 0 for no "
		       "limit (got \"3 parsecs\")");
	CHECK_EQ_INT(ycfg_size(&x, get("badsize"), "a.bad", &v, "a count"), -EINVAL);
	CHECK_STR(err, "c.yml:13:10: a.bad: a count");
}

int main(void)
{
	char perr[256];
	if (ydoc_parse(&doc, "c.yml", text, strlen(text), perr, sizeof(perr)) < 0) {
		fprintf(stderr, "parse: %s\n", perr);
		return 1;
	}
	RUN(test_str_and_fail);
	RUN(test_duration);
	RUN(test_int_and_bool);
	RUN(test_size);
	ydoc_free(&doc);
	TEST_END();
}
