/* test_logstore.c - the container log store on real SQLite files: append
 * with positions in one transaction, queries (container by id, name and
 * prefix; level, stream, time, full text, regex; oldest/newest pages and
 * seq cursors), counts per container with the first match, patterns,
 * reopen, retention by age and by size, a corrupt file moved aside, the
 * template masking and the level filters, and wait/interrupt. */
#include "tests/unit/test.h"
#include "storage/storage.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define A "aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111"
#define B "bbbb2222bbbb2222bbbb2222bbbb2222bbbb2222bbbb2222bbbb2222bbbb2222"
#define SEC 1000000000LL

static struct logstore *open_in(const char *dir, uint64_t max_size, int64_t retention_ms)
{
	struct logstore_config c;
	logstore_config_defaults(&c);
	snprintf(c.dir, sizeof(c.dir), "%s", dir);
	c.max_size_bytes = max_size;
	c.retention_ms = retention_ms;
	c.retention_interval_ms = 3600 * 1000;
	struct logstore *ls = NULL;
	char err[512];
	if (logstore_open(&ls, &c, err, sizeof(err)) < 0)
		fprintf(stderr, "  open: %s\n", err);
	return ls;
}

static int add(struct logstore *ls, const char *id, const char *name, int64_t t, int stream,
	       int level, const char *msg)
{
	struct log_record r = { id, name, t, stream, level, 0, msg, strlen(msg) };
	return logstore_append(ls, &r, 1, NULL, 0);
}

static size_t q(struct logstore *ls, const struct log_query *qq, struct log_result *r)
{
	char err[256];
	int rc = logstore_query(ls, qq, r, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "  query: %d %s\n", rc, err);
		return (size_t)-1;
	}
	return r->n;
}

static void test_query(void)
{
	char dir[] = "/tmp/lstestXXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	struct logstore *ls = open_in(dir, 0, 0);
	CHECK(ls != NULL);
	if (!ls)
		return;
	int64_t t0 = 1700000000 * SEC;
	CHECK(add(ls, A, NULL, t0, 0, LOGSTORE_LEVEL_INFO, "server started on port 8080") == 0);
	CHECK(add(ls, A, "web", t0 + 1 * SEC, 1, LOGSTORE_LEVEL_ERROR, "connection refused to db 10.0.0.7") == 0);
	CHECK(add(ls, B, "db", t0 + 2 * SEC, 0, LOGSTORE_LEVEL_WARN, "slow query took 1200ms") == 0);
	CHECK(add(ls, A, "web", t0 + 3 * SEC, 1, LOGSTORE_LEVEL_ERROR, "connection refused to db 10.0.0.8") == 0);
	CHECK(add(ls, B, "db", t0 + 4 * SEC, 0, LOGSTORE_LEVEL_NONE, "checkpoint complete") == 0);
	CHECK_EQ_INT(logstore_last_seq(ls), 5);

	struct log_result r;
	struct log_query all = { 0 };
	CHECK_EQ_INT(q(ls, &all, &r), 5);
	CHECK_STR(r.lines[0].name, "web");  /* the name learnt later applies to all */
	CHECK_STR(r.lines[0].msg, "server started on port 8080");
	CHECK_EQ_INT(r.lines[4].seq, 5);
	logstore_result_free(&r);

	struct log_query byname = { .container = "web" };
	CHECK_EQ_INT(q(ls, &byname, &r), 3);
	logstore_result_free(&r);
	struct log_query byprefix = { .container = "bbbb22" };
	CHECK_EQ_INT(q(ls, &byprefix, &r), 2);
	logstore_result_free(&r);
	char err[256];
	struct log_query none = { .container = "nosuch" };
	CHECK(logstore_query(ls, &none, &r, err, sizeof(err)) == -ENOENT);
	logstore_result_free(&r);

	struct log_query lv = { .levels = 1u << LOGSTORE_LEVEL_ERROR };
	CHECK_EQ_INT(q(ls, &lv, &r), 2);
	logstore_result_free(&r);
	uint32_t mask;
	CHECK(logstore_level_mask("warn+", &mask) == 0);
	struct log_query warnup = { .levels = mask };
	CHECK_EQ_INT(q(ls, &warnup, &r), 3);
	logstore_result_free(&r);
	struct log_query st = { .stream = 1 + LOGSTORE_STDERR };
	CHECK_EQ_INT(q(ls, &st, &r), 2);
	logstore_result_free(&r);

	struct log_query fts = { .text = "refused 10.0.0.8" };
	CHECK_EQ_INT(q(ls, &fts, &r), 1);
	CHECK_EQ_INT(r.lines[0].seq, 4);
	logstore_result_free(&r);
	struct log_query pre = { .text = "check*" };
	CHECK_EQ_INT(q(ls, &pre, &r), 1);
	logstore_result_free(&r);
	struct log_query punct = { .text = "\"-- ((\" ) AND" };
	CHECK(q(ls, &punct, &r) != (size_t)-1);  /* never an FTS syntax error */
	logstore_result_free(&r);

	struct log_query re = { .regex = "took [0-9]+ms$" };
	CHECK_EQ_INT(q(ls, &re, &r), 1);
	logstore_result_free(&r);
	struct log_query bad = { .regex = "([" };
	CHECK(logstore_query(ls, &bad, &r, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "([") != NULL);
	logstore_result_free(&r);

	struct log_query since = { .since_ns = t0 + 2 * SEC, .until_ns = t0 + 4 * SEC };
	CHECK_EQ_INT(q(ls, &since, &r), 2);
	logstore_result_free(&r);

	struct log_query newest = { .limit = 2, .newest = true };
	CHECK_EQ_INT(q(ls, &newest, &r), 2);
	CHECK_EQ_INT(r.lines[0].seq, 4);  /* oldest first within the page */
	CHECK_EQ_INT(r.lines[1].seq, 5);
	logstore_result_free(&r);
	struct log_query after = { .after_seq = 3 };
	CHECK_EQ_INT(q(ls, &after, &r), 2);
	logstore_result_free(&r);
	struct log_query before = { .before_seq = 3, .newest = true, .limit = 1 };
	CHECK_EQ_INT(q(ls, &before, &r), 1);
	CHECK_EQ_INT(r.lines[0].seq, 2);
	logstore_result_free(&r);

	/* counts per container with the first match: what alert rules use */
	struct log_count *c;
	size_t n;
	bool partial;
	struct log_query cq = { .regex = "refused|slow" };
	CHECK(logstore_count_by_container(ls, &cq, &c, &n, &partial, err, sizeof(err)) == 0);
	CHECK_EQ_INT(n, 2);
	CHECK_STR(c[0].name, "web");
	CHECK_EQ_INT(c[0].count, 2);
	CHECK_EQ_INT(c[0].first_seq, 2);
	CHECK_STR(c[0].first_msg, "connection refused to db 10.0.0.7");
	CHECK_EQ_INT(c[1].count, 1);
	logstore_counts_free(c, n);
	uint64_t total;
	struct log_count first;
	struct log_query cw = { .container = "web", .text = "refused", .since_ns = t0 + 2 * SEC };
	CHECK(logstore_count(ls, &cw, &total, &first, err, sizeof(err)) == 0);
	CHECK_EQ_INT(total, 1);
	CHECK_EQ_INT(first.first_seq, 4);
	free(first.first_msg);

	struct log_pattern *p;
	struct log_query pa = { .container = "web" };
	CHECK(logstore_patterns(ls, &pa, 10, &p, &n, err, sizeof(err)) == 0);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_INT(p[0].count, 2);
	CHECK_STR(p[0].template_text, "connection refused to db <ip>");
	CHECK_STR(p[0].example, "connection refused to db 10.0.0.8");
	logstore_patterns_free(p, n);

	struct log_container *lc;
	CHECK(logstore_containers(ls, &lc, &n) == 0);
	CHECK_EQ_INT(n, 2);
	CHECK_STR(lc[0].name, "db");  /* newest activity first */
	CHECK_EQ_INT(lc[0].lines, 2);
	CHECK_EQ_INT(lc[1].first_ns, t0);
	free(lc);

	/* positions: stored with lines, read back, deleted */
	struct log_record r1 = { A, "web", t0 + 5 * SEC, 0, 0, LOGSTORE_ESCAPED, "x\\x01", 5 };
	struct log_position pos = { "/var/log/x.log", 1, 2, 345, 99, 64 };
	CHECK(logstore_append(ls, &r1, 1, &pos, 1) == 0);
	struct log_position got;
	CHECK(logstore_position(ls, "/var/log/x.log", &got) == 0);
	CHECK(got.dev == 1 && got.ino == 2 && got.offset == 345 && got.fingerprint == 99 &&
	      got.fingerprint_len == 64);
	struct log_position del = { "/var/log/x.log", 0, 0, UINT64_MAX, 0, 0 };
	CHECK(logstore_append(ls, NULL, 0, &del, 1) == 0);
	CHECK(logstore_position(ls, "/var/log/x.log", &got) == -ENOENT);
	logstore_close(ls);

	/* reopen: everything is there, seq goes on */
	ls = open_in(dir, 0, 0);
	CHECK(ls != NULL);
	if (ls) {
		CHECK_EQ_INT(logstore_last_seq(ls), 6);
		CHECK(add(ls, B, "db", t0 + 6 * SEC, 0, 0, "after reopen") == 0);
		CHECK_EQ_INT(logstore_last_seq(ls), 7);
		struct log_query e = { .container = "web" };
		CHECK_EQ_INT(q(ls, &e, &r), 4);
		CHECK(r.lines[3].flags == LOGSTORE_ESCAPED);
		logstore_result_free(&r);
		/* a name learnt without a line */
		CHECK(logstore_set_name(ls, B, "database") == 0);
		struct log_query renamed = { .container = "database" };
		CHECK_EQ_INT(q(ls, &renamed, &r), 3);
		logstore_result_free(&r);
		CHECK(logstore_set_name(ls, "cccc", "new") == 0);  /* a row without lines */
		struct log_query nolines = { .container = "new" };
		CHECK_EQ_INT(q(ls, &nolines, &r), 0);
		logstore_result_free(&r);
		logstore_close(ls);
	}
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
}

static void test_retention(void)
{
	char dir[] = "/tmp/lstestXXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	struct logstore *ls = open_in(dir, 0, 24 * 3600 * 1000);
	if (!ls) {
		CHECK(0);
		return;
	}
	int64_t now = 1700000000000LL;
	/* 3 days ago, 2 days ago, now: a day's retention keeps the last. */
	char msg[64];
	for (int d = 3; d >= 0; d--) {
		for (int i = 0; i < 100; i++) {
			snprintf(msg, sizeof(msg), "day %d line %d", d, i);
			CHECK(add(ls, A, "web", (now - d * 86400000LL) * 1000000 + i, 0, 0, msg) == 0);
		}
	}
	CHECK(logstore_retention_run(ls, now + 1000) == 0);
	struct logstore_stats s;
	logstore_stats(ls, &s);
	CHECK_EQ_INT(s.lines_held, 100);
	CHECK_EQ_INT(s.retention_deleted, 300);
	struct log_result r;
	struct log_query all = { .text = "day", .limit = 1000 };
	CHECK_EQ_INT(q(ls, &all, &r), 100);   /* the index lost the deleted lines too */
	CHECK_STR(r.lines[0].msg, "day 0 line 0");
	logstore_result_free(&r);
	logstore_close(ls);

	/* by size: 1 MiB cap, 4 MiB of lines; the oldest go */
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s/logs.db*", dir);
	CHECK(system(cmd) == 0);
	ls = open_in(dir, 1 << 20, 0);
	if (!ls) {
		CHECK(0);
		return;
	}
	char big[1024];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int i = 0; i < 4096; i++) {
		snprintf(big, 32, "line %06d ", i);
		big[strlen(big)] = 'x';
		CHECK(add(ls, A, "web", now * 1000000 + i, 0, 0, big) == 0);
	}
	CHECK(logstore_retention_run(ls, now) == 0);
	logstore_stats(ls, &s);
	CHECK(s.lines_held < 1100);
	CHECK(s.lines_held > 300);
	struct log_query newest = { .newest = true, .limit = 1 };
	CHECK_EQ_INT(q(ls, &newest, &r), 1);
	CHECK(strncmp(r.lines[0].msg, "line 004095", 11) == 0);  /* the newest stays */
	logstore_result_free(&r);
	logstore_close(ls);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
}

static void test_corrupt(void)
{
	char dir[] = "/tmp/lstestXXXXXX", path[300];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/logs.db", dir);
	FILE *f = fopen(path, "w");
	for (int i = 0; i < 2000; i++)
		fputs("this is not a database at all ", f);
	fclose(f);
	struct logstore *ls = open_in(dir, 0, 0);
	CHECK(ls != NULL);
	if (ls) {
		CHECK(add(ls, A, "web", 1, 0, 0, "fresh") == 0);
		logstore_close(ls);
	}
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "ls %s | grep -q 'logs.db.corrupt-'", dir);
	CHECK(system(cmd) == 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
}

static void test_template(void)
{
	char out[256];
	logstore_template("GET /items/123 took 45ms from 10.1.2.3:5050 id=5f3a9c2e11ab", 58, out,
			  sizeof(out));
	CHECK_STR(out, "GET /items/<num> took <num>ms from <ip> id=<hex>");
	const char *u = "req 123e4567-e89b-12d3-a456-426614174000 ok 0xdeadBEEF v2";
	logstore_template(u, strlen(u), out, sizeof(out));
	CHECK_STR(out, "req <uuid> ok <hex> v2");
	CHECK(logstore_template_hash("took 5ms", 8) == logstore_template_hash("took 900ms", 10));
	CHECK(logstore_template_hash("took 5ms", 8) != logstore_template_hash("took 5s", 7));
	uint32_t m;
	CHECK(logstore_level_mask("error,fatal", &m) == 0 &&
	      m == ((1u << LOGSTORE_LEVEL_ERROR) | (1u << LOGSTORE_LEVEL_FATAL)));
	CHECK(logstore_level_mask("bogus", &m) == -EINVAL);
	CHECK(logstore_level_parse("WARNING") == LOGSTORE_LEVEL_WARN);
}

struct waiter {
	struct logstore *ls;
	int rc;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;
	w->rc = logstore_wait(w->ls, logstore_last_seq(w->ls), 10000);
	return NULL;
}

static void test_wait(void)
{
	char dir[] = "/tmp/lstestXXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	struct logstore *ls = open_in(dir, 0, 0);
	if (!ls) {
		CHECK(0);
		return;
	}
	CHECK(logstore_wait(ls, 0, 10) == 0);   /* nothing: times out */
	struct waiter w = { ls, -1 };
	pthread_t th;
	pthread_create(&th, NULL, wait_thread, &w);
	usleep(50000);
	CHECK(add(ls, A, "web", 1, 0, 0, "wake up") == 0);
	pthread_join(th, NULL);
	CHECK_EQ_INT(w.rc, 1);
	w.rc = -1;
	pthread_create(&th, NULL, wait_thread, &w);
	usleep(50000);
	logstore_interrupt(ls);
	pthread_join(th, NULL);
	CHECK_EQ_INT(w.rc, -ESHUTDOWN);
	logstore_close(ls);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	RUN(test_query);
	RUN(test_retention);
	RUN(test_corrupt);
	RUN(test_template);
	RUN(test_wait);
	TEST_END();
}
