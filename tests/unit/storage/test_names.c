/*
 * test_names.c - store_label_name_valid and store_metric_name_valid, the one
 * Prometheus name check that storage, rule files, silences, remote_write and
 * the HTTP API share: the grammar's edges, ':' only in metric names, and
 * bytes outside ASCII refused whatever the locale.
 */
#include "storage/storage.h"
#include "tests/unit/test.h"
#include "agent/util/util.h"

#include <locale.h>

static void test_label_names(void)
{
	const char *good[] = { "a", "_", "__name__", "job", "Z9", "a_b_1", "_0" };
	const char *bad[] = { "", "0a", "9", "a-b", "a.b", "a b", "a:b", ":", "é", "a\xff",
			      "a=", "{" };
	for (size_t i = 0; i < ARRAY_LEN(good); i++)
		CHECK(store_label_name_valid(good[i]));
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		CHECK(!store_label_name_valid(bad[i]));
	CHECK(!store_label_name_valid(NULL));
}

static void test_metric_names(void)
{
	const char *good[] = { "up", ":", "job:http_requests:rate5m", "_x", "a9:b_c", "__name__" };
	const char *bad[] = { "", "5m", "a-b", "a.b", "a b", "é", "x\x80", "a{" };
	for (size_t i = 0; i < ARRAY_LEN(good); i++)
		CHECK(store_metric_name_valid(good[i]));
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		CHECK(!store_metric_name_valid(bad[i]));
	CHECK(!store_metric_name_valid(NULL));
}

/* `monitor top` sets the user's locale; a Latin-1 locale would make isalpha
 * accept 0xe9, which the check must not. */
static void test_locale(void)
{
	if (!setlocale(LC_ALL, "en_US.ISO-8859-1") && !setlocale(LC_ALL, "C.UTF-8"))
		SKIP("no non-C locale installed");
	CHECK(!store_label_name_valid("\xe9t\xe9"));
	CHECK(!store_metric_name_valid("caf\xe9"));
	setlocale(LC_ALL, "C");
}

int main(void)
{
	RUN(test_label_names);
	RUN(test_metric_names);
	RUN(test_locale);
	TEST_END();
}
