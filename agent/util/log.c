/*
 * log.c - leveled logging to stderr and rate-limited complaints.
 *
 * One line per message, written with a single write(2) so lines from several
 * threads never interleave. Secrets must never reach these functions.
 */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level threshold = LOG_INFO;
static const char *const level_names[] = { "error", "warn", "info", "debug" };

#define LOG_LIMIT_INTERVAL_MS 60000

void log_set_level(enum log_level level)
{
	__atomic_store_n(&threshold, level, __ATOMIC_RELAXED);
}

int log_parse_level(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < ARRAY_LEN(level_names); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*out = LOG_WARN;
		return 0;
	}
	return -EINVAL;
}

static void vlog(enum log_level level, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level_names[level]);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (level > __atomic_load_n(&threshold, __ATOMIC_RELAXED))
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

void log_limited(struct log_limit *ll, enum log_level level, const char *fmt, ...)
{
	int64_t t = now_ms();
	if (ll->failing && t - ll->last_ms < LOG_LIMIT_INTERVAL_MS) {
		ll->suppressed++;
		return;
	}
	if (level > __atomic_load_n(&threshold, __ATOMIC_RELAXED)) {
		ll->failing = true;
		ll->last_ms = t;
		return;
	}
	if (ll->suppressed)
		log_msg(level, "(%llu similar messages suppressed)",
			(unsigned long long)ll->suppressed);
	va_list ap;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
	ll->failing = true;
	ll->last_ms = t;
	ll->suppressed = 0;
}

void log_recovered(struct log_limit *ll, const char *what)
{
	if (!ll->failing)
		return;
	log_info("%s recovered", what);
	ll->failing = false;
	ll->suppressed = 0;
}
