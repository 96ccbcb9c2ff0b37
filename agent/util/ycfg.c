/*
 * ycfg.c - typed values from a YAML config tree, with the errors every
 * config section gives: "file:line:col: key: message".
 *
 * The agent's config (agent/config.c and its section files) and the
 * notifier's part of it (alerting/notify_config.c) read their keys through
 * these, so a value is checked, and a bad one worded, the same way in every
 * section. A section with its own wording for a bad duration or size passes
 * it; tests assert these messages byte for byte.
 */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ycfg_fail(const struct ycfg *x, const struct ynode *n, const char *key, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(x->err, x->errsize, "%s:%d:%d: %s: %s", x->file, n ? n->line : 0, n ? n->col : 0,
		 key, msg);
	return -EINVAL;
}

int ycfg_str(const struct ycfg *x, const struct ynode *n, const char *key, char *out, size_t size)
{
	if (n->type != YNODE_SCALAR)
		return ycfg_fail(x, n, key, "expected a string");
	if (strlen(n->scalar) >= size)
		return ycfg_fail(x, n, key, "too long (at most %zu bytes)", size - 1);
	snprintf(out, size, "%s", n->scalar);
	return 0;
}

int ycfg_duration(const struct ycfg *x, const struct ynode *n, const char *key, int64_t min_ms,
		  int64_t *out, const char *bad)
{
	if (n->type != YNODE_SCALAR || parse_duration_ms(n->scalar, out) < 0) {
		if (bad)
			return ycfg_fail(x, n, key, "%s", bad);
		return ycfg_fail(x, n, key,
				 "expected a duration such as 500ms, 1s, 2m (got \"%s\")",
				 n->type == YNODE_SCALAR ? n->scalar : "a collection");
	}
	if (*out < min_ms)
		return ycfg_fail(x, n, key, "must be at least %lldms", (long long)min_ms);
	return 0;
}

int ycfg_int(const struct ycfg *x, const struct ynode *n, const char *key, int64_t lo, int64_t hi,
	     int64_t *out)
{
	char *end;
	if (n->type != YNODE_SCALAR || n->quoted || !n->scalar[0])
		return ycfg_fail(x, n, key, "expected a whole number");
	errno = 0;
	long long v = strtoll(n->scalar, &end, 10);
	if (*end || errno)
		return ycfg_fail(x, n, key, "expected a whole number (got \"%s\")", n->scalar);
	if (v < lo || v > hi)
		return ycfg_fail(x, n, key, "must be between %lld and %lld", (long long)lo,
				 (long long)hi);
	*out = v;
	return 0;
}

int ycfg_bool(const struct ycfg *x, const struct ynode *n, const char *key, bool *out)
{
	if (n->type == YNODE_SCALAR && !n->quoted) {
		if (!strcmp(n->scalar, "true") || !strcmp(n->scalar, "yes"))
			return *out = true, 0;
		if (!strcmp(n->scalar, "false") || !strcmp(n->scalar, "no"))
			return *out = false, 0;
	}
	return ycfg_fail(x, n, key, "expected true or false");
}

int ycfg_size(const struct ycfg *x, const struct ynode *n, const char *key, uint64_t *out,
	      const char *bad)
{
	static const struct {
		const char *sfx;
		double mul;
	} units[] = { { "", 1 }, { "B", 1 }, { "KB", 1e3 }, { "MB", 1e6 }, { "GB", 1e9 },
		      { "TB", 1e12 }, { "KiB", 1024.0 }, { "MiB", 1048576.0 },
		      { "GiB", 1073741824.0 }, { "TiB", 1099511627776.0 } };
	if (n->type == YNODE_SCALAR && n->scalar[0]) {
		char *end;
		double v = strtod(n->scalar, &end);
		while (*end == ' ')
			end++;
		/* Below 1.8e19 so the product fits a uint64_t. */
		for (size_t i = 0; end != n->scalar && i < ARRAY_LEN(units); i++) {
			if (strcmp(end, units[i].sfx) || !(v >= 0 && v * units[i].mul < 1.8e19))
				continue;
			*out = (uint64_t)(v * units[i].mul);
			return 0;
		}
	}
	if (bad)
		return ycfg_fail(x, n, key, "%s", bad);
	return ycfg_fail(x, n, key,
			 "expected a size such as 4GiB or 500MB, or 0 for no limit (got \"%s\")",
			 n->type == YNODE_SCALAR ? n->scalar : "a collection");
}
