/* test_logparse.c - log line parsing: Docker json-file records (escapes,
 * partial 16 KiB records, extra members, malformed ones), CRI records with
 * P/F flags, RFC 3339 times, level detection, escaping of invalid UTF-8 and
 * control bytes, and cutting at a character boundary. */
#include "tests/unit/test.h"
#include "collectors/collector.h"

#include <errno.h>

static int docker(const char *line, struct buf *b, struct coll_log_entry *e)
{
	buf_reset(b);
	return coll_log_parse_docker(line, strlen(line), b, e);
}

static void test_docker(void)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	struct coll_log_entry e;
	CHECK(docker("{\"log\":\"hello \\\"world\\\"\\n\",\"stream\":\"stdout\","
		     "\"time\":\"2024-01-02T03:04:05.123456789Z\"}", &b, &e) == 0);
	CHECK(!e.partial);
	CHECK_EQ_INT(e.stream, 0);
	CHECK_EQ_INT(e.len, 13);
	CHECK(!memcmp(e.text, "hello \"world\"", 13));
	CHECK_EQ_INT(e.time_ns, 1704164645123456789LL);
	/* stderr, \u escapes (a surrogate pair), extra members in any order */
	CHECK(docker("{\"stream\":\"stderr\",\"attrs\":{\"a\":[1,{\"b\":\"}\"}]},"
		     "\"log\":\"\\u00e9\\ud83d\\ude00\\t\\u001b\\n\",\"time\":\"2024-01-02T03:04:05Z\"}",
		     &b, &e) == 0);
	CHECK_EQ_INT(e.stream, 1);
	CHECK_EQ_INT(e.len, 2 + 4 + 1 + 1);
	CHECK(!memcmp(e.text, "\xc3\xa9\xf0\x9f\x98\x80\t\x1b", 8));
	/* a record without "\n" is a 16 KiB split: partial */
	CHECK(docker("{\"log\":\"aaaa\",\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:05Z\"}",
		     &b, &e) == 0);
	CHECK(e.partial);
	CHECK_EQ_INT(e.len, 4);
	/* malformed */
	CHECK(docker("{\"log\":\"broken", &b, &e) == -EINVAL);
	CHECK(docker("not json", &b, &e) == -EINVAL);
	CHECK(docker("{\"stream\":\"stdout\"}", &b, &e) == -EINVAL);
	CHECK(docker("{\"log\":\"\\x\"}", &b, &e) == -EINVAL);
	CHECK(docker("", &b, &e) == -EINVAL);
	/* a bad time is no time, not an error */
	CHECK(docker("{\"log\":\"x\\n\",\"time\":\"yesterday\"}", &b, &e) == 0);
	CHECK_EQ_INT(e.time_ns, -1);
	buf_fini(&b);
}

static void test_cri(void)
{
	struct coll_log_entry e;
	const char *l = "2024-01-02T03:04:05.5+01:00 stderr F the message  with  spaces";
	CHECK(coll_log_parse_cri(l, strlen(l), &e) == 0);
	CHECK_EQ_INT(e.stream, 1);
	CHECK(!e.partial);
	CHECK_EQ_INT(e.time_ns, 1704164645500000000LL - 3600LL * 1000000000);
	CHECK_EQ_INT(e.len, strlen("the message  with  spaces"));
	l = "2024-01-02T03:04:05Z stdout P part";
	CHECK(coll_log_parse_cri(l, strlen(l), &e) == 0);
	CHECK(e.partial);
	l = "2024-01-02T03:04:05Z stdout F";   /* an empty line */
	CHECK(coll_log_parse_cri(l, strlen(l), &e) == 0);
	CHECK_EQ_INT(e.len, 0);
	l = "2024-01-02T03:04:05Z stdout F:x tagged";
	CHECK(coll_log_parse_cri(l, strlen(l), &e) == 0 && e.len == 6);
	l = "2024-01-02T03:04:05Z stdin F x";
	CHECK(coll_log_parse_cri(l, strlen(l), &e) == -EINVAL);
	l = "yesterday stdout F x";
	CHECK(coll_log_parse_cri(l, strlen(l), &e) == -EINVAL);
	l = "2024-01-02T03:04:05Z stdout X x";
	CHECK(coll_log_parse_cri(l, strlen(l), &e) == -EINVAL);
}

static void test_time(void)
{
	CHECK_EQ_INT(coll_log_parse_time("1970-01-01T00:00:00Z", 20), 0);
	CHECK_EQ_INT(coll_log_parse_time("1970-01-01T00:00:01.000000001Z", 30), 1000000001LL);
	CHECK_EQ_INT(coll_log_parse_time("1970-01-01 00:00:01-00:30", 25), 1801LL * 1000000000);
	CHECK_EQ_INT(coll_log_parse_time("1970-13-01T00:00:00Z", 20), -1);
	CHECK_EQ_INT(coll_log_parse_time("1970-01-01T00:00:00", 19), -1);
	CHECK_EQ_INT(coll_log_parse_time("1970-01-01T00:00:00Zjunk", 24), -1);
}

static int lv(const char *s)
{
	return coll_log_level(s, strlen(s));
}

static void test_levels(void)
{
	CHECK_EQ_INT(lv("{\"level\":\"error\",\"msg\":\"x\"}"), COLL_LOG_ERROR);
	CHECK_EQ_INT(lv("{\"msg\":\"x\", \"severity\": \"WARNING\"}"), COLL_LOG_WARN);
	CHECK_EQ_INT(lv("{\"msg\":\"an error here\"}"), COLL_LOG_NONE);
	CHECK_EQ_INT(lv("ts=1 level=debug msg=hi"), COLL_LOG_DEBUG);
	CHECK_EQ_INT(lv("lvl=crit msg=\"disk\""), COLL_LOG_FATAL);
	CHECK_EQ_INT(lv("ERROR something broke"), COLL_LOG_ERROR);
	CHECK_EQ_INT(lv("2024-01-02 03:04:05,123 WARN [main] slow"), COLL_LOG_WARN);
	CHECK_EQ_INT(lv("2024/01/02 03:04:05 [error] 7#7: *1 open() failed"), COLL_LOG_ERROR);
	CHECK_EQ_INT(lv("<info> started"), COLL_LOG_INFO);
	CHECK_EQ_INT(lv("error: no such file"), COLL_LOG_ERROR);
	CHECK_EQ_INT(lv("E0102 03:04:05.000000 1 main.go:1] failed"), COLL_LOG_ERROR);
	CHECK_EQ_INT(lv("W0102 03:04:05.000000 1 main.go:1] hmm"), COLL_LOG_WARN);
	CHECK_EQ_INT(lv("the error rate is low"), COLL_LOG_NONE);
	CHECK_EQ_INT(lv("GET /error 500"), COLL_LOG_NONE);
	CHECK_EQ_INT(lv(""), COLL_LOG_NONE);
	CHECK_STR(coll_log_level_name(COLL_LOG_ERROR), "error");
	CHECK_STR(coll_log_level_name(COLL_LOG_NONE), "unknown");
}

static void test_escape(void)
{
	struct buf b;
	buf_init(&b, 4096);
	const char ok[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\tend";
	CHECK(!coll_log_needs_escape(ok, strlen(ok)));
	const char bad[] = "a\xff" "b\x1b[1m\\c\x00" "d\xc3";
	size_t n = sizeof(bad) - 1;
	CHECK(coll_log_needs_escape(bad, n));
	coll_log_escape(bad, n, &b);
	buf_putc(&b, '\0');
	CHECK_STR(b.data, "a\\xffb\\x1b[1m\\\\c\\x00d\\xc3");
	/* overlong and surrogate encodings are invalid */
	CHECK(coll_log_needs_escape("\xc0\xaf", 2));
	CHECK(coll_log_needs_escape("\xed\xa0\x80", 3));
	CHECK(coll_log_needs_escape("\x7f", 1));
	/* cutting never ends inside a character */
	CHECK_EQ_INT(coll_log_utf8_cut("ab\xc3\xa9", 4, 3), 2);
	CHECK_EQ_INT(coll_log_utf8_cut("abc", 3, 10), 3);
	CHECK_EQ_INT(coll_log_utf8_cut("a\xf0\x9f\x98\x80", 5, 4), 1);
	buf_fini(&b);
}

int main(void)
{
	RUN(test_docker);
	RUN(test_cri);
	RUN(test_time);
	RUN(test_levels);
	RUN(test_escape);
	TEST_END();
}
