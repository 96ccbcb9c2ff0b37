/*
 * test_json.c - the JSON reader (agent/util/json.c): golden Docker-shaped
 * documents, every escape, UTF-8 and surrogate handling, numbers, the
 * nesting cap, and malformed inputs with the offset each one must report.
 */
#include "agent/util/util.h"
#include "tests/unit/test.h"

#include <errno.h>
#include <time.h>

/* Parses a NUL-terminated literal; returns the rc and leaves doc filled. */
static int parse(struct json_doc *doc, const char *s, size_t *off)
{
	return json_parse(doc, s, strlen(s), off);
}

/* Expects s to fail with -EINVAL at byte offset want_off. */
static void check_bad(const char *s, size_t want_off, int line)
{
	struct json_doc doc;
	size_t off = (size_t)-1;
	int rc = parse(&doc, s, &off);
	if (rc != -EINVAL || off != want_off) {
		fprintf(stderr, "  line %d: \"%s\": rc %d off %zu, expected -EINVAL at %zu\n",
			line, s, rc, off, want_off);
		t_cur_failed = 1;
	}
	CHECK(doc.root == NULL);
	json_doc_free(&doc);
}
#define BAD(s, off) check_bad(s, off, __LINE__)

/* Decodes one JSON string literal and compares the bytes. */
static void check_str(const char *lit, const char *want, int line)
{
	struct json_doc doc;
	size_t off = 0;
	int rc = parse(&doc, lit, &off);
	if (rc != 0 || !doc.root || doc.root->type != JSON_STRING ||
	    strcmp(doc.root->string, want) != 0) {
		fprintf(stderr, "  line %d: %s: rc %d off %zu got \"%s\"\n", line, lit, rc,
			off, rc == 0 && doc.root && doc.root->string ? doc.root->string : "");
		t_cur_failed = 1;
	}
	json_doc_free(&doc);
}
#define STR(lit, want) check_str(lit, want, __LINE__)

static double num(const char *s)
{
	struct json_doc doc;
	size_t off;
	double v = -12345.678;
	if (parse(&doc, s, &off) == 0 && doc.root->type == JSON_NUMBER)
		v = doc.root->number;
	json_doc_free(&doc);
	return v;
}

static void test_golden_container(void)
{
	const char *s =
		"{\"Id\":\"4f2a\",\"Created\":\"2024-01-02T03:04:05Z\",\n"
		" \"State\": {\"Status\": \"running\", \"Running\": true, \"Paused\": false,\n"
		"   \"Pid\": 4242, \"ExitCode\": 0, \"Error\": \"\"},\n"
		" \"Names\": [\"/web\", \"/web-alias\"], \"SizeRw\": null,\n"
		" \"Config\": {\"Labels\": {\"com.docker.compose.service\": \"web\"}},\n"
		" \"HostConfig\": {\"Memory\": 536870912, \"NanoCpus\": 1.5e9}, \"Empty\": {}, \"None\": []}";
	struct json_doc doc;
	size_t off = 0;
	CHECK_EQ_INT(parse(&doc, s, &off), 0);
	const struct json *r = doc.root;
	CHECK(r && r->type == JSON_OBJECT);
	CHECK_EQ_INT(r->count, 9);
	CHECK_STR(r->child->key, "Id");
	CHECK_STR(json_get_str(r, "Id"), "4f2a");
	CHECK_STR(json_get_str(r, "Created"), "2024-01-02T03:04:05Z");
	CHECK(json_get_str(r, "State") == NULL);      /* not a string */
	CHECK(json_get_str(r, "Missing") == NULL);

	const struct json *v = json_path(r, "State.Running");
	CHECK(v && v->type == JSON_BOOL && v->boolean);
	v = json_path(r, "State.Paused");
	CHECK(v && v->type == JSON_BOOL && !v->boolean);
	CHECK_EQ_DBL(json_path(r, "State.Pid")->number, 4242);
	CHECK_STR(json_path(r, "State.Status")->string, "running");
	CHECK_STR(json_path(r, "State.Error")->string, "");
	CHECK_EQ_DBL(json_path(r, "HostConfig.Memory")->number, 536870912);
	CHECK_EQ_DBL(json_path(r, "HostConfig.NanoCpus")->number, 1.5e9);
	CHECK(json_path(r, "State.Nope") == NULL);
	CHECK(json_path(r, "Id.Nope") == NULL);    /* walks into a string */
	/* A key with dots is reachable with json_get only. */
	const struct json *labels = json_path(r, "Config.Labels");
	CHECK_STR(json_get_str(labels, "com.docker.compose.service"), "web");
	CHECK(json_path(labels, "com.docker.compose.service") == NULL);

	const struct json *names = json_get(r, "Names");
	CHECK(names && names->type == JSON_ARRAY);
	CHECK_EQ_INT(names->count, 2);
	CHECK_STR(names->child->string, "/web");
	CHECK_STR(names->child->next->string, "/web-alias");
	CHECK(names->child->next->next == NULL);
	CHECK(names->child->key == NULL);
	CHECK(json_get(names, "x") == NULL);       /* not an object */

	v = json_get(r, "SizeRw");
	CHECK(v && v->type == JSON_NULL);
	v = json_get(r, "Empty");
	CHECK(v && v->type == JSON_OBJECT && v->count == 0 && !v->child);
	v = json_get(r, "None");
	CHECK(v && v->type == JSON_ARRAY && v->count == 0 && !v->child);

	/* Members keep document order. */
	const char *order[] = { "Id", "Created", "State", "Names", "SizeRw",
				"Config", "HostConfig", "Empty", "None" };
	size_t i = 0;
	for (const struct json *m = r->child; m; m = m->next, i++)
		CHECK_STR(m->key, i < ARRAY_LEN(order) ? order[i] : "?");
	CHECK_EQ_INT(i, 9);
	json_doc_free(&doc);
	CHECK(doc.root == NULL);
	json_doc_free(&doc);        /* twice is fine */
	json_doc_free(NULL);
}

static void test_top_level_scalars(void)
{
	struct json_doc doc;
	size_t off;
	CHECK_EQ_INT(parse(&doc, " \t\r\n true \n", &off), 0);
	CHECK(doc.root->type == JSON_BOOL && doc.root->boolean);
	json_doc_free(&doc);
	CHECK_EQ_INT(parse(&doc, "false", &off), 0);
	CHECK(doc.root->type == JSON_BOOL && !doc.root->boolean);
	json_doc_free(&doc);
	CHECK_EQ_INT(parse(&doc, "null", &off), 0);
	CHECK(doc.root->type == JSON_NULL);
	json_doc_free(&doc);
	CHECK_EQ_INT(parse(&doc, "\"x\"", &off), 0);
	CHECK(doc.root->type == JSON_STRING);
	CHECK_STR(doc.root->string, "x");
	json_doc_free(&doc);
	CHECK_EQ_INT(parse(&doc, "7", NULL), 0);    /* err_off may be NULL */
	json_doc_free(&doc);
	CHECK_EQ_INT(parse(&doc, "x", NULL), -EINVAL);
	json_doc_free(&doc);
}

static void test_numbers(void)
{
	CHECK_EQ_DBL(num("0"), 0);
	CHECK(signbit(num("-0")));
	CHECK_EQ_DBL(num("-1"), -1);
	CHECK_EQ_DBL(num("42"), 42);
	CHECK_EQ_DBL(num("1.5"), 1.5);
	CHECK_EQ_DBL(num("-1.5e3"), -1500);
	CHECK_EQ_DBL(num("1E+2"), 100);
	CHECK_EQ_DBL(num("2e-2"), 0.02);
	CHECK_EQ_DBL(num("0.1"), 0.1);
	CHECK_EQ_DBL(num("123456789012345"), 123456789012345.0);
	CHECK_EQ_DBL(num("1234567890123456789"), 1234567890123456789.0);
	CHECK_EQ_DBL(num("1700000000123456789"), 1.700000000123456789e18);
	CHECK(num("9007199254740993") == 9007199254740992.0);   /* round to even */
	CHECK_EQ_DBL(num("-9223372036854775808"), -9223372036854775808.0);
	CHECK(isinf(num("1e400")) && num("1e400") > 0);
	CHECK_EQ_DBL(num("1e-400"), 0);
	/* A long mantissa goes through the heap copy. */
	char big[200];
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_EQ_DBL(num(big), 1.1111111111111111e198);

	BAD("01", 1);
	BAD("-", 1);
	BAD("-a", 1);
	BAD("1.", 2);
	BAD("1.e5", 2);
	BAD("1e", 2);
	BAD("1e+", 3);
	BAD("+1", 0);
	BAD(".5", 0);
	BAD("0x10", 1);
	BAD("NaN", 0);
	BAD("Infinity", 0);
	BAD("-Infinity", 1);
	BAD("1 2", 2);
}

static void test_not_nul_terminated(void)
{
	/* The parser must stop at n even when more digits follow in memory. */
	struct json_doc doc;
	size_t off;
	const char text[] = "123456";
	CHECK_EQ_INT(json_parse(&doc, text, 3, &off), 0);
	CHECK(doc.root && doc.root->number == 123);
	json_doc_free(&doc);
	const char text2[] = "1.5e10";
	CHECK_EQ_INT(json_parse(&doc, text2, 3, &off), 0);
	CHECK(doc.root && doc.root->number == 1.5);
	json_doc_free(&doc);
	CHECK_EQ_INT(json_parse(&doc, text2, 4, &off), -EINVAL);
	CHECK_EQ_INT(off, 4);
	CHECK_EQ_INT(json_parse(&doc, text2, 5, &off), 0);
	CHECK(doc.root && doc.root->number == 1.5e1);
	json_doc_free(&doc);
	const char text3[] = "\"abc\"";
	CHECK_EQ_INT(json_parse(&doc, text3, 4, &off), -EINVAL);
	CHECK_EQ_INT(off, 4);
	const char text4[] = "[true]";
	CHECK_EQ_INT(json_parse(&doc, text4, 3, &off), -EINVAL);
	CHECK_EQ_INT(off, 3);
	CHECK_EQ_INT(json_parse(&doc, "[1]\0", 4, &off), -EINVAL);
	CHECK_EQ_INT(off, 3);
	CHECK_EQ_INT(json_parse(&doc, "", 0, &off), -EINVAL);
	CHECK_EQ_INT(off, 0);
	CHECK_EQ_INT(json_parse(&doc, NULL, 0, &off), -EINVAL);
	CHECK_EQ_INT(off, 0);
}

static void test_escapes(void)
{
	STR("\"\"", "");
	STR("\"plain ascii\"", "plain ascii");
	STR("\"\\\"\"", "\"");
	STR("\"\\\\\"", "\\");
	STR("\"\\/\"", "/");
	STR("\"\\b\"", "\b");
	STR("\"\\f\"", "\f");
	STR("\"\\n\"", "\n");
	STR("\"\\r\"", "\r");
	STR("\"\\t\"", "\t");
	STR("\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"", "a\"b\\c/d\be\ff\ng\rh\ti");
	STR("\"\\u0041\\u0062\"", "Ab");
	STR("\"\\u001f\"", "\x1f");
	STR("\"\\u007f\"", "\x7f");
	STR("\"\\u0080\"", "\xc2\x80");
	STR("\"\\u00e9\\u00E9\"", "\xc3\xa9\xc3\xa9");
	STR("\"\\u07ff\"", "\xdf\xbf");
	STR("\"\\u0800\"", "\xe0\xa0\x80");
	STR("\"\\u20ac\"", "\xe2\x82\xac");
	STR("\"\\uFFFF\"", "\xef\xbf\xbf");
	STR("\"x\\u003cy\"", "x<y");

	BAD("\"\\x\"", 1);
	BAD("\"ab\\a\"", 3);
	BAD("\"\\u12\"", 1);
	BAD("\"\\u12g4\"", 1);
	BAD("\"\\U0041\"", 1);
	BAD("\"\\", 2);
	BAD("\"\\\"", 3);     /* escaped quote, then the end */
	BAD("\"\\u00", 5);    /* unterminated wins over the short escape */
	BAD("[\"\\'\"]", 2);
}

static void test_unicode(void)
{
	/* Surrogate pairs. */
	STR("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80");             /* U+1F600 */
	STR("\"\\uD800\\uDC00\"", "\xf0\x90\x80\x80");             /* U+10000 */
	STR("\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf");             /* U+10FFFF */
	STR("\"a\\ud834\\udd1eb\"", "a\xf0\x9d\x84\x9e" "b");      /* U+1D11E */
	/* Lone surrogates and \u0000 become U+FFFD. */
	STR("\"\\ud800\"", "\xef\xbf\xbd");
	STR("\"\\udc00\"", "\xef\xbf\xbd");
	STR("\"\\ud800x\"", "\xef\xbf\xbdx");
	STR("\"\\ud800\\u0041\"", "\xef\xbf\xbd" "A");
	STR("\"\\ud800\\ud800\\udc00\"", "\xef\xbf\xbd\xf0\x90\x80\x80");
	STR("\"\\udc00\\ud800\"", "\xef\xbf\xbd\xef\xbf\xbd");
	STR("\"\\ud800\\n\"", "\xef\xbf\xbd\n");
	STR("\"a\\u0000b\"", "a\xef\xbf\xbd" "b");
	BAD("\"\\ud800\\u00zz\"", 7);
	/* Raw UTF-8 passes through unchanged. */
	STR("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	STR("\"\xf4\x8f\xbf\xbf\"", "\xf4\x8f\xbf\xbf");
	/* Invalid UTF-8: each bad byte becomes U+FFFD. */
	STR("\"a\xff" "b\"", "a\xef\xbf\xbd" "b");
	STR("\"\xc0\xaf\"", "\xef\xbf\xbd\xef\xbf\xbd");                  /* overlong */
	STR("\"\xe0\x80\xaf\"", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  /* overlong */
	STR("\"\xed\xa0\x80\"", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  /* surrogate */
	STR("\"\xf4\x90\x80\x80\"",
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");          /* > U+10FFFF */
	STR("\"\xe2\x82\"", "\xef\xbf\xbd\xef\xbf\xbd");                  /* truncated */
	STR("\"\x80\"", "\xef\xbf\xbd");                                  /* stray continuation */
	STR("\"\xe2\x82\\n\"", "\xef\xbf\xbd\xef\xbf\xbd\n");
	/* Worst case growth: every byte replaced, next to escapes. */
	STR("\"\xff\xff\xff\\u00e9\xff\"",
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xc3\xa9\xef\xbf\xbd");
	/* Keys are decoded the same way. */
	struct json_doc doc;
	size_t off;
	CHECK_EQ_INT(parse(&doc, "{\"k\\u00e9y\":1}", &off), 0);
	CHECK(json_get(doc.root, "k\xc3\xa9y") != NULL);
	json_doc_free(&doc);
}

static void test_control_chars(void)
{
	BAD("\"a\nb\"", 2);
	BAD("\"\t\"", 1);
	BAD("\"\x01\"", 1);
	BAD("{\"a\x1f\":1}", 3);
	STR("\"\x7f\"", "\x7f");    /* DEL is allowed raw */
}

static void test_malformed(void)
{
	BAD("", 0);
	BAD("   ", 3);
	BAD("[", 1);
	BAD("[1,", 3);
	BAD("[1 2]", 3);
	BAD("[1,]", 3);
	BAD("[,1]", 1);
	BAD("[]]", 2);
	BAD("{", 1);
	BAD("{\"a\" 1}", 5);
	BAD("{\"a\":}", 5);
	BAD("{\"a\":1,}", 7);
	BAD("{\"a\":1", 6);
	BAD("{\"a\":1 \"b\":2}", 7);
	BAD("{a:1}", 1);
	BAD("{'a':1}", 1);
	BAD("{1:1}", 1);
	BAD("{\"a\"", 4);
	BAD("{\"a\":", 5);
	BAD("{\"a\":1}}", 7);
	BAD("tru", 3);
	BAD("trUe", 2);
	BAD("nul", 3);
	BAD("fals", 4);
	BAD("[1]x", 3);
	BAD("\"abc", 4);
	BAD("[\"abc", 5);
	BAD("// comment\n1", 0);
	BAD("\xef\xbb\xbf{}", 0);   /* no BOM */
	BAD("{\"a\":[1,{\"b\":tru}]}", 16);
}

static char *nested(const char *open, const char *inner, const char *close, int depth)
{
	size_t lo = strlen(open), li = strlen(inner), lc = strlen(close);
	char *s = malloc((size_t)depth * (lo + lc) + li + 1), *p = s;
	for (int i = 0; i < depth; i++, p += lo)
		memcpy(p, open, lo);
	memcpy(p, inner, li);
	p += li;
	for (int i = 0; i < depth; i++, p += lc)
		memcpy(p, close, lc);
	*p = '\0';
	return s;
}

static void test_depth_cap(void)
{
	struct json_doc doc;
	size_t off = 0;
	char *s = nested("[", "1", "]", 64);
	CHECK_EQ_INT(parse(&doc, s, &off), 0);
	const struct json *v = doc.root;
	int depth = 0;
	while (v && v->type == JSON_ARRAY) {
		v = v->child;
		depth++;
	}
	CHECK_EQ_INT(depth, 64);
	CHECK(v && v->type == JSON_NUMBER);
	json_doc_free(&doc);
	free(s);

	s = nested("[", "1", "]", 65);
	BAD(s, 64);
	free(s);

	s = nested("{\"a\":", "{}", "}", 63);
	CHECK_EQ_INT(parse(&doc, s, &off), 0);
	json_doc_free(&doc);
	free(s);
	s = nested("{\"a\":", "{}", "}", 64);
	BAD(s, 64 * 5);
	free(s);

	/* Far too deep must fail the same way, not overflow the stack. */
	s = nested("[", "", "]", 100000);
	BAD(s, 64);
	free(s);

	/* Depth is nesting, not a count of containers. */
	s = malloc(200 * 3 + 3);
	strcpy(s, "[");
	for (int i = 0; i < 200; i++)
		strcat(s, i ? ",[]" : "[]");
	strcat(s, "]");
	CHECK_EQ_INT(parse(&doc, s, &off), 0);
	CHECK_EQ_INT(doc.root->count, 200);
	json_doc_free(&doc);
	free(s);
}

static void test_duplicate_keys_first_wins(void)
{
	struct json_doc doc;
	size_t off;
	CHECK_EQ_INT(parse(&doc, "{\"a\":1,\"a\":2}", &off), 0);
	CHECK_EQ_INT(doc.root->count, 2);
	CHECK_EQ_DBL(json_get(doc.root, "a")->number, 1);
	json_doc_free(&doc);
}

static void test_json_path_edges(void)
{
	struct json_doc doc;
	size_t off;
	CHECK_EQ_INT(parse(&doc, "{\"a\":{\"b\":{\"c\":3}},\"ab\":1}", &off), 0);
	const struct json *r = doc.root;
	CHECK(json_path(r, "") == r);
	CHECK_EQ_DBL(json_path(r, "a.b.c")->number, 3);
	CHECK_EQ_DBL(json_path(r, "ab")->number, 1);
	CHECK(json_path(r, "a.b")->type == JSON_OBJECT);
	CHECK(json_path(r, "a..b") == NULL);
	CHECK(json_path(r, "a.") == NULL);
	CHECK(json_path(r, ".a") == NULL);
	CHECK(json_path(r, "a.b.c.d") == NULL);
	CHECK(json_path(r, "a.bc") == NULL);
	CHECK(json_path(r, "x.b") == NULL);
	CHECK(json_path(NULL, "a") == NULL);
	CHECK(json_path(r, NULL) == NULL);
	CHECK(json_get(NULL, "a") == NULL);
	CHECK(json_get_str(NULL, "a") == NULL);
	json_doc_free(&doc);
}

/* A /containers/json answer for ~150 containers: over 100 KB. */
static void test_large_listing(void)
{
	struct buf b;
	buf_init(&b, 1 << 24);
	buf_putc(&b, '[');
	for (int i = 0; i < 150; i++) {
		buf_printf(&b, "%s{\"Id\":\"%064d\",\"Names\":[\"/svc-%d\"],"
			   "\"Image\":\"registry.example.com/team/app:1.%d\","
			   "\"ImageID\":\"sha256:%064d\",\"Command\":\"/bin/sh -c 'exec app --port=80%02d'\","
			   "\"Created\":%d,\"Ports\":[{\"IP\":\"0.0.0.0\",\"PrivatePort\":80,"
			   "\"PublicPort\":%d,\"Type\":\"tcp\"}],\"Labels\":{\"com.docker.compose.project\":"
			   "\"demo\",\"com.docker.compose.service\":\"svc-%d\",\"note\":\"caf\\u00e9 \\ud83d\\ude00\"},"
			   "\"State\":\"running\",\"Status\":\"Up 3 hours\",\"HostConfig\":{\"NetworkMode\":"
			   "\"bridge\"},\"NetworkSettings\":{\"Networks\":{\"bridge\":{\"IPAddress\":"
			   "\"172.17.0.%d\",\"Gateway\":\"172.17.0.1\",\"IPPrefixLen\":16,"
			   "\"MacAddress\":\"02:42:ac:11:00:%02x\"}}},\"Mounts\":[],\"SizeRw\":%d.5}",
			   i ? "," : "", i, i, i, i, i % 100, 1700000000 + i, 8000 + i, i,
			   i % 250, i % 256, i * 1000);
	}
	buf_putc(&b, ']');
	CHECK(!b.overflow);
	CHECK(b.len > 100 * 1024);

	struct json_doc doc;
	size_t off = 0;
	int64_t t0 = mono_ns();
	int rc = 0;
	for (int k = 0; k < 10 && rc == 0; k++) {
		rc = json_parse(&doc, b.data, b.len, &off);
		if (k < 9 && rc == 0)
			json_doc_free(&doc);
	}
	int64_t per_parse_us = (mono_ns() - t0) / 10 / 1000;
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(doc.root->count, 150);
	const struct json *c = doc.root->child;
	for (int i = 0; i < 149; i++)
		c = c->next;
	CHECK_STR(json_get(c, "Names")->child->string, "/svc-149");
	CHECK_EQ_DBL(json_get(c, "Created")->number, 1700000149);
	CHECK_EQ_DBL(json_get(c, "SizeRw")->number, 149000.5);
	CHECK_STR(json_path(c, "NetworkSettings.Networks.bridge.IPAddress")->string,
		  "172.17.0.149");
	CHECK_STR(json_get_str(json_get(c, "Labels"), "note"), "caf\xc3\xa9 \xf0\x9f\x98\x80");
	/* Generous even for a sanitizer build; a plain -O2 build takes ~1 ms. */
	fprintf(stderr, "  %zu bytes parsed in %lld us\n", b.len, (long long)per_parse_us);
	CHECK(per_parse_us < 200000);
	json_doc_free(&doc);

	/* Truncating it anywhere must fail cleanly at the end. */
	for (size_t cut = 1; cut < b.len; cut += 997) {
		rc = json_parse(&doc, b.data, cut, &off);
		CHECK(rc == -EINVAL);
		CHECK(off <= cut);
		json_doc_free(&doc);
	}
	buf_fini(&b);
}

static void test_oci_state(void)
{
	const char *s =
		"{\"ociVersion\":\"1.0.2\",\"id\":\"abc\",\"status\":\"running\",\"pid\":31337,"
		"\"bundle\":\"/run/containerd/io.containerd.runtime.v2.task/moby/abc\","
		"\"annotations\":{\"io.kubernetes.pod.name\":\"p\"}}";
	struct json_doc doc;
	size_t off;
	CHECK_EQ_INT(parse(&doc, s, &off), 0);
	CHECK_STR(json_get_str(doc.root, "status"), "running");
	CHECK_EQ_DBL(json_get(doc.root, "pid")->number, 31337);
	CHECK_STR(json_get_str(json_get(doc.root, "annotations"), "io.kubernetes.pod.name"), "p");
	json_doc_free(&doc);
}

int main(void)
{
	RUN(test_golden_container);
	RUN(test_top_level_scalars);
	RUN(test_numbers);
	RUN(test_not_nul_terminated);
	RUN(test_escapes);
	RUN(test_unicode);
	RUN(test_control_chars);
	RUN(test_malformed);
	RUN(test_depth_cap);
	RUN(test_duplicate_keys_first_wins);
	RUN(test_json_path_edges);
	RUN(test_large_listing);
	RUN(test_oci_state);
	TEST_END();
}
