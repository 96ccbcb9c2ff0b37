/*
 * test_actions.c - the pieces of the action and event endpoints that need
 * no server: the admin token file (good, short, spaced, missing, a
 * directory), the constant-time comparison, id resolution (exact id, name,
 * prefix, ambiguous prefix, a name shared by a live and an exited entry)
 * and since= parsing (Unix seconds, RFC 3339, durations, garbage).
 */
#include "agent/agent.h"
#include "../test.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static const char *write_file(const char *name, const char *text, mode_t mode)
{
	static char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	chmod(path, mode);
	return path;
}

static void test_token_file(void)
{
	char err[512];
	char *t = auth_load_token(write_file("good", "  s3cret-token-0123456789 \nsecond line\n", 0600),
				  err, sizeof(err));
	CHECK_STR(t, "s3cret-token-0123456789");
	free(t);
	t = auth_load_token(write_file("nonl", "abcdefghijklmnopq", 0600), err, sizeof(err));
	CHECK_STR(t, "abcdefghijklmnopq");
	free(t);
	/* readable by others: loaded, with a warning in the log */
	t = auth_load_token(write_file("open", "abcdefghijklmnopq\n", 0644), err, sizeof(err));
	CHECK(t != NULL);
	free(t);

	CHECK(auth_load_token(write_file("short", "abc\n", 0600), err, sizeof(err)) == NULL);
	CHECK(strstr(err, "16 to 4096 characters") != NULL);
	CHECK(strstr(err, "/short") != NULL);
	CHECK(auth_load_token(write_file("empty", "\n", 0600), err, sizeof(err)) == NULL);
	CHECK(auth_load_token(write_file("space", "abcdefgh ijklmnopq\n", 0600), err, sizeof(err)) == NULL);
	CHECK(strstr(err, "spaces or control characters") != NULL);
	char path[128];
	snprintf(path, sizeof(path), "%s/missing", dir);
	CHECK(auth_load_token(path, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "No such file or directory") != NULL);
	CHECK(auth_load_token(dir, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "not a regular file") != NULL);
	char big[5000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(auth_load_token(write_file("big", big, 0600), err, sizeof(err)) == NULL);
}

static void test_token_equal(void)
{
	const char *want = "s3cret-token-0123456789";
	size_t n = strlen(want);
	CHECK(auth_token_equal(want, n, want, n));
	CHECK(!auth_token_equal("s3cret-token-012345678", n - 1, want, n));
	CHECK(!auth_token_equal("s3cret-token-01234567890", n + 1, want, n));
	CHECK(!auth_token_equal("S3cret-token-0123456789", n, want, n));
	CHECK(!auth_token_equal("", 0, want, n));
	CHECK(!auth_token_equal("s3cret-token-0123456788", n, want, n));
}

static struct snapshot *snap(void)
{
	static const struct {
		const char *id, *name;
		bool gone;
	} cs[] = {
		{ "abcd1111aaaa", "web", false },
		{ "abcd2222bbbb", "db", false },
		{ "ef001234cccc", "old", true },
		{ "ef005678dddd", "old", false }, /* e.g. a runc id reused */
		{ "99887766eeee", "abcd1111", false },
	};
	struct coll_sink s;
	if (sink_open(&s, 1000) < 0)
		return NULL;
	for (size_t i = 0; i < ARRAY_LEN(cs); i++) {
		struct coll_container c;
		memset(&c, 0, sizeof(c));
		snprintf(c.id, sizeof(c.id), "%s", cs[i].id);
		c.cgroup = (char *)"";
		c.meta.name = (char *)cs[i].name;
		c.meta.restart_count = -1;
		sink_begin_container(&s, &c, 0);
		if (cs[i].gone)
			sink_mark_gone(&s, 0);
	}
	return sink_close(&s);
}

static void test_resolve(void)
{
	struct snapshot *s = snap();
	const struct snap_container *out[4];
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK_EQ_INT(api_resolve(s, "abcd2222bbbb", out, 4), 1);
	CHECK_STR(out[0]->name, "db");
	CHECK_EQ_INT(api_resolve(s, "web", out, 4), 1);
	CHECK_STR(out[0]->id, "abcd1111aaaa");
	/* a name wins over an id prefix */
	CHECK_EQ_INT(api_resolve(s, "abcd1111", out, 4), 1);
	CHECK_STR(out[0]->id, "99887766eeee");
	CHECK_EQ_INT(api_resolve(s, "abcd2", out, 4), 1);
	CHECK_STR(out[0]->name, "db");
	/* ambiguous prefix: both listed */
	CHECK_EQ_INT(api_resolve(s, "abcd", out, 4), 2);
	CHECK_STR(out[0]->id, "abcd1111aaaa");
	CHECK_STR(out[1]->id, "abcd2222bbbb");
	CHECK_EQ_INT(api_resolve(s, "abcd", out, 1), 2); /* counted past max */
	/* prefixes shorter than 4 never match */
	CHECK_EQ_INT(api_resolve(s, "abc", out, 4), 0);
	/* a name held by an entry with a cgroup and one without: the first */
	CHECK_EQ_INT(api_resolve(s, "old", out, 4), 1);
	CHECK_STR(out[0]->id, "ef005678dddd");
	CHECK_EQ_INT(api_resolve(s, "nothing", out, 4), 0);
	CHECK_EQ_INT(api_resolve(s, "", out, 4), 0);
	snapshot_unref(s);
}

static void test_since(void)
{
	int64_t now = 1800000000000, t;
	CHECK(events_parse_since("1700000000", now, &t) == 0);
	CHECK_EQ_INT(t, 1700000000000);
	CHECK(events_parse_since("1700000000.25", now, &t) == 0);
	CHECK_EQ_INT(t, 1700000000250);
	CHECK(events_parse_since("2023-11-14T22:13:20Z", now, &t) == 0);
	CHECK_EQ_INT(t, 1700000000000);
	CHECK(events_parse_since("2023-11-14T22:13:20.5Z", now, &t) == 0);
	CHECK_EQ_INT(t, 1700000000500);
	CHECK(events_parse_since("2023-11-14T23:13:20+01:00", now, &t) == 0);
	CHECK_EQ_INT(t, 1700000000000);
	CHECK(events_parse_since("10m", now, &t) == 0);
	CHECK_EQ_INT(t, now - 600000);
	CHECK(events_parse_since("1h", now, &t) == 0);
	CHECK_EQ_INT(t, now - 3600000);
	static const char *const bad[] = {
		"", "yesterday", "-5", "2023-13-01T00:00:00Z", "2023-11-14T22:13:20", "2023-11-14T22:13:20Zjunk",
		"2023-11-14T22:13:20.Z", "12:00", "1e400", "10 m",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		if (events_parse_since(bad[i], now, &t) == 0)
			fprintf(stderr, "  accepted since=\"%s\"\n", bad[i]);
		CHECK(events_parse_since(bad[i], now, &t) == -EINVAL);
	}
	CHECK(events_parse_since(NULL, now, &t) == -EINVAL);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	snprintf(dir, sizeof(dir), "/tmp/monitor-test-actions-XXXXXX");
	if (!mkdtemp(dir))
		return 2;
	RUN(test_token_file);
	RUN(test_token_equal);
	RUN(test_resolve);
	RUN(test_since);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd)) {}
	TEST_END();
}
