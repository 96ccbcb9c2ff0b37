/*
 * import.c - backfill from a Prometheus text (0.0.4) or OpenMetrics file
 * with timestamps: `monitor import FILE`, and the way tests load known data.
 *
 * The file is mapped and parsed once; samples are grouped per series,
 * sorted by time, and appended through the same path as live data, so the
 * roll-up tiers are built as for collected samples. At the end every open
 * chunk is sealed and written. A file that ends with "# EOF" is OpenMetrics
 * (timestamps in seconds); otherwise timestamps are milliseconds.
 */
#include "storage/internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMPORT_MAX_SAMPLES (200u * 1000 * 1000)
/* Timestamps within +-31,700 years of 1970 (ms): the store's tier bucket
 * arithmetic needs headroom below INT64_MAX (found by fuzzing). */
#define IMPORT_MAX_ABS_T_MS 1000000000000000LL

struct tv {
	int64_t t;
	double v;
};

struct per_series {
	struct tv *s;
	size_t n, cap;
};

struct typed {
	char name[256];
	bool counter, hist;
};

static int cmp_tv(const void *a, const void *b)
{
	const struct tv *x = a, *y = b;
	return x->t < y->t ? -1 : x->t > y->t;
}

static bool has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcmp(s + a - b, suf);
}

/* Counter-like: TYPE counter for the name or its family, histogram and
 * summary counts and sums and buckets, or a _total name. */
static enum store_kind kind_of(const char *name, const struct typed *types, size_t ntypes)
{
	for (size_t i = 0; i < ntypes; i++) {
		size_t l = strlen(types[i].name);
		if (strncmp(name, types[i].name, l))
			continue;
		const char *rest = name + l;
		if (!*rest)
			return types[i].counter ? STORE_COUNTER : STORE_GAUGE;
		if (types[i].counter && !strcmp(rest, "_total"))
			return STORE_COUNTER;
		if (types[i].hist && (!strcmp(rest, "_bucket") || !strcmp(rest, "_count") ||
				      !strcmp(rest, "_sum")))
			return STORE_COUNTER;
	}
	return has_suffix(name, "_total") ? STORE_COUNTER : STORE_GAUGE;
}

static bool parse_value(const char *s, size_t n, double *out)
{
	char tmp[64];
	if (n == 0 || n >= sizeof(tmp))
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	char *end;
	*out = strtod(tmp, &end);
	return *end == '\0';
}

int store_import_file(struct store *s, const char *path, struct store_import_result *res,
		      char *err, size_t errsize)
{
	memset(res, 0, sizeof(*res));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errsize, "%s: %s", path, strerror(e));
		return -e;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errsize, "%s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	size_t size = (size_t)st.st_size;
	char *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
	close(fd);
	if (size && map == MAP_FAILED) {
		int e = errno;
		snprintf(err, errsize, "%s: %s", path, strerror(e));
		return -e;
	}
	/* OpenMetrics ends with "# EOF". */
	size_t end = size;
	while (end && (map[end - 1] == '\n' || map[end - 1] == ' '))
		end--;
	bool om = end >= 5 && !memcmp(map + end - 5, "# EOF", 5) &&
		  (end == 5 || map[end - 6] == '\n');

	struct per_series *ps = NULL;
	size_t ps_cap = 0;
	struct typed *types = NULL;
	size_t ntypes = 0, types_cap = 0;
	int rc = 0;
	char *line = malloc(STORE_MAX_LABEL_BYTES * 2 + 1), *mem = malloc(STORE_MAX_LABEL_BYTES * 2);
	if (!line || !mem) {
		rc = -ENOMEM;
		goto out;
	}
	const char *p = map, *limit = size ? map + size : map;
	uint64_t lineno = 0;
	bool eof_seen = false;
	while (p < limit && rc == 0) {
		const char *nl = memchr(p, '\n', (size_t)(limit - p));
		const char *le = nl ? nl : limit;
		size_t len = (size_t)(le - p);
		lineno++;
		const char *ls = p;
		p = nl ? nl + 1 : limit;
		if (len && ls[len - 1] == '\r')
			len--;
		if (len == 0)
			continue;
		if (eof_seen) {
			snprintf(err, errsize, "%s:%llu: text after # EOF", path, (unsigned long long)lineno);
			rc = -EINVAL;
			break;
		}
		if (len > STORE_MAX_LABEL_BYTES * 2) {
			snprintf(err, errsize, "%s:%llu: line longer than %d bytes", path,
				 (unsigned long long)lineno, STORE_MAX_LABEL_BYTES * 2);
			rc = -EINVAL;
			break;
		}
		memcpy(line, ls, len);
		line[len] = '\0';
		if (line[0] == '#') {
			char kw[16], name[256], type[32];
			if (!strcmp(line, "# EOF")) {
				eof_seen = true;
			} else if (sscanf(line, "# %15s %255s %31s", kw, name, type) == 3 &&
				   !strcmp(kw, "TYPE")) {
				if (ntypes == types_cap) {
					size_t ncap = types_cap ? types_cap * 2 : 64;
					struct typed *nt = realloc(types, ncap * sizeof(*nt));
					if (!nt) {
						rc = -ENOMEM;
						break;
					}
					types = nt;
					types_cap = ncap;
				}
				snprintf(types[ntypes].name, sizeof(types[ntypes].name), "%s", name);
				types[ntypes].counter = !strcmp(type, "counter");
				types[ntypes].hist = !strcmp(type, "histogram") || !strcmp(type, "summary") ||
						     !strcmp(type, "gaugehistogram");
				ntypes++;
			}
			continue;
		}
		/* name{labels} value timestamp [# exemplar] */
		char *q = line;
		while (isalnum((unsigned char)*q) || *q == '_' || *q == ':')
			q++;
		if (q == line) {
			snprintf(err, errsize, "%s:%llu: expected a metric name", path,
				 (unsigned long long)lineno);
			rc = -EINVAL;
			break;
		}
		struct store_label l[STORE_MAX_LABELS];
		size_t nl_ = 0;
		size_t name_len = (size_t)(q - line);
		memcpy(mem, line, name_len);
		mem[name_len] = '\0';
		l[nl_++] = (struct store_label){ "__name__", mem };
		if (*q == '{') {
			const char *e;
			int n = labels_parse(q + 1, l + 1, STORE_MAX_LABELS - 1, mem + name_len + 1, true, &e);
			if (n < 0 || *e != '}') {
				snprintf(err, errsize, "%s:%llu: malformed labels", path,
					 (unsigned long long)lineno);
				rc = -EINVAL;
				break;
			}
			nl_ += (size_t)n;
			q = (char *)e + 1;
		}
		char *fields[3];
		int nf = 0;
		for (char *tok = strtok(q, " \t"); tok && nf < 3; tok = strtok(NULL, " \t")) {
			if (tok[0] == '#')
				break; /* an exemplar */
			fields[nf++] = tok;
		}
		double v;
		if (nf < 1 || !parse_value(fields[0], strlen(fields[0]), &v)) {
			snprintf(err, errsize, "%s:%llu: expected a value after the labels", path,
				 (unsigned long long)lineno);
			rc = -EINVAL;
			break;
		}
		if (nf < 2) {
			snprintf(err, errsize, "%s:%llu: sample has no timestamp (import needs "
				 "timestamps: %s)", path, (unsigned long long)lineno,
				 om ? "seconds in OpenMetrics" : "milliseconds in text format");
			rc = -EINVAL;
			break;
		}
		int64_t t;
		char *te;
		if (om) {
			double ts = strtod(fields[1], &te);
			bool ok = !*te && isfinite(ts) && fabs(ts) * 1000.0 <= IMPORT_MAX_ABS_T_MS;
			t = ok ? (int64_t)llround(ts * 1000.0) : 0;
			if (!ok)
				te = NULL;
		} else {
			t = strtoll(fields[1], &te, 10);
			if (*te || t > IMPORT_MAX_ABS_T_MS || t < -IMPORT_MAX_ABS_T_MS)
				te = NULL;
		}
		if (!te || nf > 2) {
			snprintf(err, errsize, "%s:%llu: bad timestamp \"%s\"", path,
				 (unsigned long long)lineno, fields[1]);
			rc = -EINVAL;
			break;
		}
		uint32_t id;
		int r = store_series(s, l, nl_, kind_of(mem, types, ntypes), &id);
		if (r < 0) {
			snprintf(err, errsize, "%s:%llu: %s", path, (unsigned long long)lineno,
				 r == -EINVAL ? "invalid metric or label name, or a label twice" :
						strerror(-r));
			rc = r;
			break;
		}
		if (id >= ps_cap) {
			size_t ncap = ps_cap ? ps_cap : 1024;
			while (ncap <= id)
				ncap *= 2;
			struct per_series *np = realloc(ps, ncap * sizeof(*np));
			if (!np) {
				rc = -ENOMEM;
				break;
			}
			memset(np + ps_cap, 0, (ncap - ps_cap) * sizeof(*np));
			ps = np;
			ps_cap = ncap;
		}
		struct per_series *x = &ps[id];
		if (x->n == x->cap) {
			size_t ncap = x->cap ? x->cap * 2 : 64;
			struct tv *nt = realloc(x->s, ncap * sizeof(*nt));
			if (!nt) {
				rc = -ENOMEM;
				break;
			}
			x->s = nt;
			x->cap = ncap;
		}
		x->s[x->n++] = (struct tv){ t, v };
		if (++res->samples > IMPORT_MAX_SAMPLES) {
			snprintf(err, errsize, "%s: more than %u samples; split the file", path,
				 IMPORT_MAX_SAMPLES);
			rc = -E2BIG;
			break;
		}
	}
	res->lines = lineno;
	if (rc == 0 && !om && eof_seen)
		om = true; /* unreachable: kept for clarity */
	if (rc < 0)
		goto out;
	for (size_t id = 0; id < ps_cap; id++) {
		struct per_series *x = &ps[id];
		if (!x->n)
			continue;
		res->series++;
		qsort(x->s, x->n, sizeof(*x->s), cmp_tv);
		pthread_rwlock_wrlock(&s->lock);
		s->append_ms = mono_ns() / 1000000;
		struct series *se = series_get_id(s, (uint32_t)id);
		for (size_t i = 0; se && i < x->n; i++) {
			if (head_append(s, se, x->s[i].t, x->s[i].v) < 0)
				res->out_of_order++;
		}
		pthread_rwlock_unlock(&s->lock);
		free(x->s);
		x->s = NULL;
	}
	store_seal_all(s);
	rc = store_flush(s);
	if (rc < 0)
		snprintf(err, errsize, "%s: writing the data: %s", s->db_path, strerror(-rc));
out:
	for (size_t i = 0; i < ps_cap; i++)
		free(ps[i].s);
	free(ps);
	free(types);
	free(line);
	free(mem);
	if (map)
		munmap(map, size);
	return rc;
}
