/*
 * test_buf.c - decimal digits without printf (u64_digits, buf_put_u64):
 * the same text as %llu at the edges of every digit count.
 */
#include "agent/util/util.h"
#include "tests/unit/test.h"

#include <stdio.h>
#include <string.h>

static void test_digits_match_printf(void)
{
	uint64_t v = 1;
	for (int k = 0; k < 21; k++, v *= 10) {
		uint64_t cases[] = { v - 1, v, v + 1, UINT64_MAX - v };
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			char want[32], tmp[U64_DIGITS_MAX];
			snprintf(want, sizeof(want), "%llu", (unsigned long long)cases[i]);
			const char *p = u64_digits(cases[i], tmp);
			size_t n = (size_t)(tmp + U64_DIGITS_MAX - p);
			CHECK_EQ_INT(n, strlen(want));
			CHECK(memcmp(p, want, n) == 0);
		}
		if (v > UINT64_MAX / 10)
			break;
	}
	struct buf b;
	buf_init(&b, 64);
	buf_put_u64(&b, UINT64_MAX);
	buf_put_u64(&b, 0);
	CHECK_EQ_INT(b.len, 21);
	CHECK(memcmp(b.data, "184467440737095516150", 21) == 0);
	buf_fini(&b);
}

int main(void)
{
	RUN(test_digits_match_printf);
	TEST_END();
}
