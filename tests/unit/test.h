/*
 * test.h - the unit-test harness: each test file is a program of static
 * test functions listed in main with RUN(). CHECK records a failure and goes
 * on; the program prints one "N passed, N failed" line and exits non-zero
 * on any failure. Tests that cannot run here call SKIP with the reason.
 */
#ifndef MONITOR_TEST_H
#define MONITOR_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_failed_checks, t_passed, t_failed, t_skipped, t_cur_failed, t_cur_skipped;

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, \
				__LINE__, #cond);                              \
			t_failed_checks++;                                     \
			t_cur_failed = 1;                                      \
		}                                                              \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                     \
	do {                                                                   \
		long long _a = (long long)(a), _b = (long long)(b);            \
		if (_a != _b) {                                                \
			fprintf(stderr, "  %s:%d: %s == %lld, expected %lld\n", \
				__FILE__, __LINE__, #a, _a, _b);               \
			t_cur_failed = 1;                                      \
		}                                                              \
	} while (0)

#define CHECK_EQ_DBL(a, b)                                                     \
	do {                                                                   \
		double _a = (a), _b = (b);                                     \
		if (!(_a == _b || fabs(_a - _b) <= 1e-9 * fabs(_b))) {         \
			fprintf(stderr, "  %s:%d: %s == %.17g, expected %.17g\n", \
				__FILE__, __LINE__, #a, _a, _b);               \
			t_cur_failed = 1;                                      \
		}                                                              \
	} while (0)

#define CHECK_STR(a, b)                                                        \
	do {                                                                   \
		const char *_a = (a), *_b = (b);                               \
		if (!_a || !_b || strcmp(_a, _b) != 0) {                       \
			fprintf(stderr, "  %s:%d: %s == \"%s\", expected \"%s\"\n", \
				__FILE__, __LINE__, #a, _a ? _a : "(null)",    \
				_b ? _b : "(null)");                           \
			t_cur_failed = 1;                                      \
		}                                                              \
	} while (0)

#define SKIP(why)                                                              \
	do {                                                                   \
		fprintf(stderr, "  skipped: %s\n", why);                       \
		t_cur_skipped = 1;                                             \
		return;                                                        \
	} while (0)

#define RUN(fn)                                                                \
	do {                                                                   \
		t_cur_failed = t_cur_skipped = 0;                              \
		fn();                                                          \
		if (t_cur_failed) {                                            \
			t_failed++;                                            \
			fprintf(stderr, "FAIL %s\n", #fn);                     \
		} else if (t_cur_skipped) {                                    \
			t_skipped++;                                           \
			fprintf(stderr, "skip %s\n", #fn);                     \
		} else {                                                       \
			t_passed++;                                            \
		}                                                              \
	} while (0)

#define TEST_END()                                                             \
	do {                                                                   \
		printf("%s: %d passed, %d failed, %d skipped\n", __FILE__,     \
		       t_passed, t_failed, t_skipped);                         \
		return t_failed ? 1 : 0;                                       \
	} while (0)

/* Directory of fixture trees, relative to the repository root. */
#define FIXTURES "tests/fixtures"

#endif
