/* test_kv.c - the keyed state store: put/get/replace/delete, ordered
 * iteration with a cursor, persistence across reopen, a non-database file
 * moved aside. */
#include "tests/unit/test.h"
#include "storage/storage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int collect(void *arg, const char *key, const void *val, size_t len)
{
	struct buf *b = arg;
	buf_printf(b, "%s=%.*s;", key, (int)len, (const char *)val);
	return 0;
}

static void test_kv(void)
{
	char dir[] = "/tmp/kvtestXXXXXX", path[256], err[512];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/state.db", dir);
	struct kv *k = NULL;
	CHECK(kv_open(&k, path, err, sizeof(err)) == 0);
	CHECK(kv_put(k, "q", "0002", "b", 1) == 0);
	CHECK(kv_put(k, "q", "0001", "a", 1) == 0);
	CHECK(kv_put(k, "q", "0003", "c", 1) == 0);
	CHECK(kv_put(k, "other", "0001", "x", 1) == 0);
	CHECK(kv_put(k, "q", "0003", "cc", 2) == 0); /* replaces */
	void *v = NULL;
	size_t n = 0;
	CHECK(kv_get(k, "q", "0003", &v, &n) == 0 && n == 2 && !strcmp(v, "cc"));
	free(v);
	CHECK(kv_get(k, "q", "0009", &v, &n) == -ENOENT);
	struct buf b;
	buf_init(&b, 1 << 20);
	CHECK(kv_each(k, "q", NULL, 0, collect, &b) == 0);
	CHECK_STR(b.len ? b.data : "", "0001=a;0002=b;0003=cc;");
	buf_reset(&b);
	CHECK(kv_each(k, "q", "0001", 1, collect, &b) == 0);
	CHECK_STR(b.len ? b.data : "", "0002=b;");
	CHECK(kv_del(k, "q", "0002") == 0);
	kv_close(k);

	CHECK(kv_open(&k, path, err, sizeof(err)) == 0);
	buf_reset(&b);
	CHECK(kv_each(k, "q", NULL, 0, collect, &b) == 0);
	CHECK_STR(b.len ? b.data : "", "0001=a;0003=cc;");
	CHECK(kv_clear(k, "q") == 0);
	buf_reset(&b);
	CHECK(kv_each(k, "q", NULL, 0, collect, &b) == 0 && b.len == 0);
	kv_close(k);

	/* Garbage in place of the database: moved aside, a fresh store opens. */
	char junk[256];
	snprintf(junk, sizeof(junk), "%s/junk.db", dir);
	FILE *f = fopen(junk, "w");
	CHECK(f != NULL);
	for (int i = 0; i < 4096; i++)
		fputc('x', f);
	fclose(f);
	CHECK(kv_open(&k, junk, err, sizeof(err)) == 0);
	CHECK(kv_put(k, "q", "1", "y", 1) == 0);
	kv_close(k);
	buf_fini(&b);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
}

int main(void)
{
	RUN(test_kv);
	TEST_END();
}
