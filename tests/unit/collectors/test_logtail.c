/* test_logtail.c - the tailer thread against files in a temp directory and
 * a real log store: a Docker record split over a restart is stored once
 * and whole; a line without its newline at the end of a deleted file is
 * kept, marked partial; the ingest cap counts what it drops; hints name containers; a
 * missing directory is no error; a file idle past its change notice is read
 * again when it grows or is cut (no rescan to help); lines that keep coming
 * are stored at most once a commit interval, all of them. */
#include "tests/unit/test.h"
#include "collectors/collector.h"
#include "storage/storage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int writes_with_lines; /* out_write calls that stored lines */

static int out_write(void *arg, const struct coll_log_line *l, size_t n,
		     const struct coll_log_pos *p, size_t np)
{
	writes_with_lines += n > 0;
	struct log_record *r = calloc(n + 1, sizeof(*r));
	struct log_position *pos = calloc(np + 1, sizeof(*pos));
	for (size_t i = 0; i < n; i++)
		r[i] = (struct log_record){ l[i].id, l[i].name, l[i].time_ns, l[i].stream,
					    l[i].level, l[i].flags, l[i].msg, l[i].msg_len };
	for (size_t i = 0; i < np; i++)
		pos[i] = (struct log_position){ p[i].path, p[i].dev, p[i].ino, p[i].offset,
						p[i].fingerprint, p[i].fingerprint_len };
	int rc = logstore_append(arg, r, n, pos, np);
	free(r);
	free(pos);
	return rc;
}

static int out_position(void *arg, const char *path, struct coll_log_pos *p)
{
	struct log_position lp;
	int rc = logstore_position(arg, path, &lp);
	if (rc == 0)
		*p = (struct coll_log_pos){ NULL, lp.dev, lp.ino, lp.offset, lp.fingerprint,
					    lp.fingerprint_len };
	return rc;
}

static int out_name(void *arg, const char *id, const char *name)
{
	return logstore_set_name(arg, id, name);
}

struct env {
	char dir[64], docker[128], file[300], data[128];
	struct logstore *ls;
	struct coll_logtail *t;
	struct coll_log_config cfg;
};

static void env_start(struct env *e)
{
	struct logstore_config lc;
	logstore_config_defaults(&lc);
	snprintf(lc.dir, sizeof(lc.dir), "%s", e->data);
	char err[512];
	e->ls = NULL;
	if (logstore_open(&e->ls, &lc, err, sizeof(err)) < 0)
		fprintf(stderr, "  %s\n", err);
	struct coll_log_output o = { e->ls, out_write, out_position, out_name };
	e->t = NULL;
	if (e->ls)
		coll_logtail_start(&e->t, &e->cfg, &o);
}

static void env_stop(struct env *e)
{
	coll_logtail_stop(e->t);
	logstore_close(e->ls);
	e->t = NULL;
	e->ls = NULL;
}

static void env_init(struct env *e)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "/tmp/lttestXXXXXX");
	CHECK(mkdtemp(e->dir) != NULL);
	snprintf(e->docker, sizeof(e->docker), "%s/docker", e->dir);
	snprintf(e->data, sizeof(e->data), "%s/data", e->dir);
	char d[200];
	snprintf(d, sizeof(d), "%s/%s", e->docker, ID);
	mkdir(e->docker, 0755);
	mkdir(d, 0755);
	mkdir(e->data, 0755);
	snprintf(e->file, sizeof(e->file), "%s/%s-json.log", d, ID);
	coll_log_config_defaults(&e->cfg);
	snprintf(e->cfg.docker_dir, sizeof(e->cfg.docker_dir), "%s", e->docker);
	e->cfg.cri_dir[0] = e->cfg.cri_links_dir[0] = e->cfg.podman_dir[0] = '\0';
	e->cfg.poll_ms = 10;
	e->cfg.rescan_ms = 50;
}

static void env_fini(struct env *e)
{
	env_stop(e);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
	CHECK(system(cmd) == 0);
}

static void append(const char *path, const char *text)
{
	FILE *f = fopen(path, "a");
	fputs(text, f);
	fclose(f);
}

/* The stored messages joined by '|', once the store holds want lines. */
static void messages(struct logstore *ls, size_t want, char *out, size_t size)
{
	struct log_result r;
	char err[256];
	out[0] = '\0';
	for (int i = 0; i < 300; i++) {
		struct log_query q = { .limit = 1000 };
		if (logstore_query(ls, &q, &r, err, sizeof(err)) == 0 && r.n >= want) {
			size_t o = 0;
			for (size_t k = 0; k < r.n && o < size; k++)
				o += (size_t)snprintf(out + o, size - o, "%s%s", k ? "|" : "", r.lines[k].msg);
			logstore_result_free(&r);
			return;
		}
		logstore_result_free(&r);
		usleep(10000);
	}
}

static void test_split_over_restart(void)
{
	struct env e;
	env_init(&e);
	append(e.file, "{\"log\":\"one\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00Z\"}\n"
		       "{\"log\":\"par\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:01Z\"}\n");
	env_start(&e);
	char got[4096];
	messages(e.ls, 1, got, sizeof(got));
	CHECK_STR(got, "one");
	usleep(100000);
	env_stop(&e);   /* the half line is not stored; its start is the position */
	append(e.file, "{\"log\":\"tial\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:02Z\"}\n"
		       "{\"log\":\"three\\n\",\"stream\":\"stderr\",\"time\":\"2024-01-01T00:00:03Z\"}\n");
	env_start(&e);
	messages(e.ls, 3, got, sizeof(got));
	CHECK_STR(got, "one|partial|three");
	struct log_result r;
	char err[256];
	struct log_query q = { 0 };
	CHECK(logstore_query(e.ls, &q, &r, err, sizeof(err)) == 0);
	CHECK_EQ_INT(r.n, 3);
	if (r.n == 3) {
		CHECK_EQ_INT(r.lines[1].time_ns, 1704067201LL * 1000000000);  /* the first part's */
		CHECK_EQ_INT(r.lines[2].stream, 1);
	}
	logstore_result_free(&r);
	env_fini(&e);
}

static void test_deleted_and_unterminated(void)
{
	struct env e;
	env_init(&e);
	append(e.file, "{\"log\":\"kept\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00Z\"}\n"
		       "{\"log\":\"last, cut\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:01Z\"}");
	env_start(&e);
	char got[4096];
	messages(e.ls, 1, got, sizeof(got));
	CHECK(unlink(e.file) == 0);
	messages(e.ls, 2, got, sizeof(got));
	/* the record is whole JSON, its log has no "\n": a line the file
	 * ended before, marked partial */
	CHECK_STR(got, "kept|last, cut");
	struct log_result r;
	char err[256];
	struct log_query q = { .newest = true, .limit = 1 };
	CHECK(logstore_query(e.ls, &q, &r, err, sizeof(err)) == 0 && r.n == 1 &&
	      r.lines[0].flags == LOGSTORE_PARTIAL);
	logstore_result_free(&r);
	struct coll_logtail_stats s;
	for (int i = 0; i < 100; i++) {
		coll_logtail_stats(e.t, &s);
		if (s.files == 0)
			break;
		usleep(10000);
	}
	CHECK_EQ_INT(s.files, 0);
	CHECK_EQ_INT(s.malformed, 0);
	env_fini(&e);
}

static void test_cap_and_hint(void)
{
	struct env e;
	env_init(&e);
	e.cfg.rate_lines = 10;
	e.cfg.rate_bytes = 0;
	for (int i = 0; i < 1000; i++)
		append(e.file, "{\"log\":\"ERROR flood\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00Z\"}\n");
	env_start(&e);
	coll_logtail_hint(e.t, ID, "flooder", NULL);
	struct coll_log_counters k = { 0 };
	for (int i = 0; i < 300; i++) {
		if (coll_logtail_counters(e.t, ID, &k) == 0 &&
		    k.dropped_lines + k.lines[0][COLL_LOG_ERROR] >= 1000)
			break;
		usleep(10000);
	}
	CHECK_EQ_INT(k.dropped_lines + k.lines[0][COLL_LOG_ERROR], 1000);
	CHECK(k.lines[0][COLL_LOG_ERROR] >= 10 && k.lines[0][COLL_LOG_ERROR] < 100);
	CHECK(k.dropped_bytes > 0);
	usleep(1200000);
	struct log_result r;
	char err[256];
	struct log_query q = { .container = "flooder", .text = "dropped" };
	int rc = -1;
	for (int i = 0; i < 100 && rc != 0; i++) {
		rc = logstore_query(e.ls, &q, &r, err, sizeof(err));
		if (rc == 0 && r.n == 0) {
			logstore_result_free(&r);
			rc = -1;
			usleep(20000);
		}
	}
	CHECK(rc == 0 && r.n >= 1);
	if (rc == 0) {
		CHECK(strstr(r.lines[0].msg, "dropped by the ingest cap") != NULL);
		logstore_result_free(&r);
	}
	CHECK(coll_logtail_counters(e.t, "nosuch", &k) == -ENOENT);
	env_fini(&e);
}

/* Waits up to 3 s for coll_logtail_counters(id) to return want. */
static int counters_become(struct coll_logtail *t, const char *id, int want)
{
	struct coll_log_counters k;
	int rc = 0;
	for (int i = 0; i < 300 && (rc = coll_logtail_counters(t, id, &k)) != want; i++)
		usleep(10000);
	return rc;
}

/* A container the registry forgot leaves the tailer's table once no file of
 * it is followed (churn must not grow it); one still known stays. */
static void test_forget(void)
{
	struct env e;
	env_init(&e);
	append(e.file, "{\"log\":\"hi\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00Z\"}\n");
	env_start(&e);
	char got[256];
	messages(e.ls, 1, got, sizeof(got));
	coll_logtail_hint(e.t, ID, "withfile", NULL);
	coll_logtail_hint(e.t, "gone1", "nofile", NULL);
	coll_logtail_hint(e.t, "kept1", "running", NULL);
	CHECK_EQ_INT(counters_become(e.t, "gone1", 0), 0);
	CHECK_EQ_INT(counters_become(e.t, "kept1", 0), 0);
	coll_logtail_forget(e.t, "gone1");
	coll_logtail_forget(e.t, ID);
	CHECK_EQ_INT(counters_become(e.t, "gone1", -ENOENT), -ENOENT);
	usleep(200000);  /* rescans at 50 ms: its file is still followed */
	CHECK_EQ_INT(counters_become(e.t, ID, 0), 0);
	CHECK_EQ_INT(counters_become(e.t, "kept1", 0), 0);
	CHECK(unlink(e.file) == 0);
	CHECK_EQ_INT(counters_become(e.t, ID, -ENOENT), -ENOENT);
	CHECK_EQ_INT(counters_become(e.t, "kept1", 0), 0);
	coll_logtail_forget(NULL, "x");  /* no tailer: nothing to do */
	env_fini(&e);
}

static void docker_line(const char *path, const char *msg)
{
	char rec[256];
	snprintf(rec, sizeof(rec),
		 "{\"log\":\"%s\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00Z\"}\n", msg);
	append(path, rec);
}

/* The watch on the open file is what finds new lines: the directory is
 * listed once (rescans an hour apart), the file sits idle for many polls,
 * then grows, then is cut and rewritten in place (copy-truncate), then is
 * renamed away with a new file at its path. */
static void test_notices_without_rescan(void)
{
	struct env e;
	env_init(&e);
	e.cfg.rescan_ms = 3600 * 1000;
	e.cfg.commit_ms = 0;
	docker_line(e.file, "first");
	env_start(&e);
	char got[4096];
	messages(e.ls, 1, got, sizeof(got));
	CHECK_STR(got, "first");
	usleep(200000);   /* twenty polls with nothing new */
	docker_line(e.file, "second");
	messages(e.ls, 2, got, sizeof(got));
	CHECK_STR(got, "first|second");
	usleep(100000);
	CHECK(truncate(e.file, 0) == 0);
	docker_line(e.file, "after the cut");
	messages(e.ls, 3, got, sizeof(got));
	CHECK_STR(got, "first|second|after the cut");
	/* rotated by rename, the new file at the path found without a rescan */
	char old[400];
	snprintf(old, sizeof(old), "%s.1", e.file);
	CHECK(rename(e.file, old) == 0);
	docker_line(e.file, "in the new file");
	messages(e.ls, 4, got, sizeof(got));
	CHECK_STR(got, "first|second|after the cut|in the new file");
	env_fini(&e);
}

/* A line every 10 ms for 1.2 s with a 300 ms commit interval: every line
 * is stored, in about four commits, not one per 10 ms poll. */
static void test_commit_interval(void)
{
	struct env e;
	env_init(&e);
	e.cfg.commit_ms = 300;
	docker_line(e.file, "l0");
	env_start(&e);
	char got[8192];
	messages(e.ls, 1, got, sizeof(got));
	writes_with_lines = 0;
	char want[8192] = "l0";
	for (int i = 1; i <= 120; i++) {
		char m[16];
		snprintf(m, sizeof(m), "l%d", i);
		docker_line(e.file, m);
		snprintf(want + strlen(want), sizeof(want) - strlen(want), "|%s", m);
		usleep(10000);
	}
	messages(e.ls, 121, got, sizeof(got));
	CHECK_STR(got, want);
	CHECK(writes_with_lines >= 1 && writes_with_lines <= 8);
	if (writes_with_lines > 8)
		fprintf(stderr, "  %d commits for 1.2 s of lines\n", writes_with_lines);
	env_fini(&e);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	RUN(test_split_over_restart);
	RUN(test_deleted_and_unterminated);
	RUN(test_cap_and_hint);
	RUN(test_forget);
	RUN(test_notices_without_rescan);
	RUN(test_commit_interval);
	TEST_END();
}
