/*
 * promql.h - the PromQL engine of storage/: parser, evaluator and the data
 * interface it reads through.
 *
 * The engine reads series through a small table of operations (struct
 * promql_source): select series by label matchers, then read one series'
 * points in a time range. storage/promql_store.c implements it over the
 * agent's store (storage.h); storage/promql_mem.c keeps series in memory
 * for tests and tools. Nothing in the evaluator knows which one it reads.
 *
 * Semantics are Prometheus': lookback delta 5m, staleness markers end a
 * series, rate/increase/delta extrapolate as Prometheus does, range
 * selectors and the lookback window are left-open (t - range, t] as in
 * Prometheus 3, offset and @ shift the evaluation time, subqueries evaluate
 * their expression on a grid aligned to their step. Results are what the
 * Prometheus HTTP API returns: scalar, string, vector or matrix.
 *
 * Threads: a parsed expression is immutable and may be evaluated by several
 * threads at once; each evaluation owns its result. Sources must allow
 * concurrent reads.
 */
#ifndef MONITOR_PROMQL_H
#define MONITOR_PROMQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent/util/util.h"

/* ---- labels and matchers ------------------------------------------------- */

struct promql_label {
	const char *name;
	const char *value;
};

enum promql_match_op { PROMQL_MATCH_EQ, PROMQL_MATCH_NE, PROMQL_MATCH_RE, PROMQL_MATCH_NRE };

/*
 * A compiled regular expression with PromQL's meaning: RE2 syntax (the
 * subset POSIX ERE can express after translation: \d \w \s, (?:), (?i),
 * lazy quantifiers, escapes inside brackets), anchored at both ends.
 */
struct promql_regex;

/* A label matcher as the parser makes it. Strings are owned by whoever
 * made the matcher (the parsed expression). */
struct promql_matcher {
	enum promql_match_op op;
	const char *name;
	const char *value;           /* as written (unescaped) */
	const char *posix;           /* RE/NRE: value translated to POSIX ERE, unanchored */
	struct promql_regex *re;     /* RE/NRE: compiled, anchored */
};
/* True when value (NULL or "" for a missing label) satisfies m. */
bool promql_matcher_match(const struct promql_matcher *m, const char *value);

/*
 * Compiles an RE2-syntax pattern anchored at both ends. Returns NULL with a
 * message in err for a pattern that is invalid or uses what POSIX ERE cannot
 * express. promql_regex_free accepts NULL.
 */
struct promql_regex *promql_regex_new(const char *pattern, char *err, size_t errsize);
void promql_regex_free(struct promql_regex *re);
bool promql_regex_match(const struct promql_regex *re, const char *s);
/* The pattern translated to POSIX ERE (unanchored); owned by re. */
const char *promql_regex_posix(const struct promql_regex *re);

/*
 * The length and complexity limits of promql_regex_new for a pattern that
 * is compiled by regcomp elsewhere (notifier routes, store matchers, log
 * searches, remote_write relabelling): at most PROMQL_REGEX_MAX_LEN bytes,
 * no doubled repetition operator (a++, x{2}{3}), repeat counts at most
 * 1000, also as the product of nested ones, and at most 100,000 elements
 * once repetitions are expanded. glibc's regcomp copies a repeated
 * expression for each repetition, so without these a pattern of 40 bytes
 * (`a++++...`) takes gigabytes and minutes to compile (found by fuzzing).
 * 0, or -EINVAL with RE2's message in err. Any thread.
 */
#define PROMQL_REGEX_MAX_LEN 65536
int promql_regex_check(const char *pattern, char *err, size_t errsize);

/* ---- the data interface -------------------------------------------------- */

/* One series found by select: labels sorted by name (with __name__), and
 * the source's handle for reading its points. */
struct promql_series {
	size_t nlabels;
	const struct promql_label *labels;
	uint64_t ref;
};
/* qsort comparator for struct promql_series: by label set, as Prometheus
 * orders series (labels.Compare). Any thread. */
int promql_series_cmp(const void *a, const void *b);

struct promql_point {
	int64_t t;                   /* milliseconds since the epoch */
	double v;                    /* may be the stale marker (promql_is_stale) */
};

/* A growable array of points that a source appends to. */
struct promql_points {
	struct promql_point *p;
	size_t n, cap;
};
/* Room for n more points, the array doubled (from 256) until they fit; 0
 * or -ENOMEM (pts left as it was). */
int promql_points_reserve(struct promql_points *pts, size_t n);
/* Appends one point; returns 0 or -ENOMEM. */
int promql_points_push(struct promql_points *pts, int64_t t, double v);
void promql_points_fini(struct promql_points *pts);

struct promql_source_ops {
	/*
	 * Every series matching all n matchers that may have points in
	 * [mint, maxt] (ms, inclusive). Fills *out with an array allocated
	 * from a (labels and strings too), sorted by labels. Returns the count
	 * or -errno.
	 */
	ssize_t (*select)(void *ctx, const struct promql_matcher *m, size_t n, int64_t mint,
			  int64_t maxt, struct arena *a, struct promql_series **out);
	/*
	 * Appends the points of series ref in [mint, maxt], oldest first, stale
	 * markers included, to out. step_ms is the query's resolution (0 for
	 * an instant query): a source may answer from a coarser roll-up where
	 * it no longer has raw points. Returns 0 or -errno.
	 */
	int (*points)(void *ctx, uint64_t ref, int64_t mint, int64_t maxt, int64_t step_ms,
		      struct promql_points *out);
	/* Optional fast paths for the label APIs over all time and all series:
	 * sorted distinct names / values of name, one malloc'd block in *out
	 * (free(*out)). NULL: the engine derives them from select. */
	ssize_t (*label_names)(void *ctx, char ***out);
	ssize_t (*label_values)(void *ctx, const char *name, char ***out);
	/*
	 * Optional fast path for one evaluation time (instant queries, rules):
	 * the newest point of series ref in [mint, maxt], the one points would
	 * append last. Returns 1 with *out, 0 when there is none, or -errno.
	 * NULL: the engine reads the points.
	 */
	int (*last)(void *ctx, uint64_t ref, int64_t mint, int64_t maxt, struct promql_point *out);
};

struct promql_source {
	const struct promql_source_ops *ops;
	void *ctx;
};

/* The Prometheus stale marker: a NaN with this bit pattern ends a series. */
#define PROMQL_STALE_NAN_BITS 0x7ff0000000000002ULL
static inline bool promql_is_stale(double v)
{
	uint64_t b;
	__builtin_memcpy(&b, &v, sizeof(b));
	return b == PROMQL_STALE_NAN_BITS;
}
double promql_stale_nan(void);

/* ---- an in-memory source (promql_mem.c) ----------------------------------- */

/*
 * Series kept in memory, for unit tests and tools. Add series, then
 * append points in time order. One writer, then any number of readers.
 */
struct promql_mem;
struct promql_mem *promql_mem_new(void);
void promql_mem_free(struct promql_mem *m);
/*
 * Adds (or finds) the series with these labels; text like
 * `name{a="x",b="y"}` (the series selector syntax, equality only).
 * Returns its index, or -EINVAL for bad text.
 */
ssize_t promql_mem_series(struct promql_mem *m, const char *text);
/* Appends a point to series idx; -EINVAL when t is not after the last. */
int promql_mem_add(struct promql_mem *m, size_t idx, int64_t t_ms, double v);
/* Fills src with m's operations; m must outlive src. */
void promql_mem_source(struct promql_mem *m, struct promql_source *src);

/* ---- the store as a source (promql_store.c) ------------------------------- */

struct store;
/*
 * The store and what the source needs to know about it. Raw points older
 * than raw_retention_ms (storage.retention.raw) before now are gone: reads
 * reaching further back fill in from the 1 m and 1 h roll-ups. 0 turns the
 * fill off. now_ms 0 is the clock (tests set it).
 */
struct promql_store {
	struct store *st;
	int64_t raw_retention_ms;
	int64_t now_ms;
};
/* Fills src so that queries read ps->st (head and SQLite together). ps must
 * outlive src. */
void promql_store_source(const struct promql_store *ps, struct promql_source *src);

/* ---- parsing -------------------------------------------------------------- */

enum promql_value_type {
	PROMQL_NONE, PROMQL_SCALAR, PROMQL_VECTOR, PROMQL_MATRIX, PROMQL_STRING
};
/* "scalar", "vector", "matrix", "string" as the API names them. */
const char *promql_value_type_name(enum promql_value_type t);

struct promql_expr;
#define PROMQL_MAX_QUERY_BYTES (64u << 10)
/*
 * Parses and type-checks a query. Returns 0 and *out (free with
 * promql_expr_free), or -EINVAL with Prometheus' message in err, e.g.
 * "1:14: parse error: unexpected end of input", or -ENOMEM.
 */
int promql_parse(const char *text, struct promql_expr **out, char *err, size_t errsize);
void promql_expr_free(struct promql_expr *e);
enum promql_value_type promql_expr_type(const struct promql_expr *e);
/* The expression printed back in canonical form (as promtool would). */
void promql_expr_format(const struct promql_expr *e, struct buf *out);

/* ---- evaluation ----------------------------------------------------------- */

struct promql_opts {
	int64_t lookback_ms;         /* 5m */
	int64_t timeout_ms;          /* query.timeout, 2m */
	uint64_t max_samples;        /* query.max_samples, 50,000,000 */
	int64_t subquery_step_ms;    /* step of a subquery without one: 1m */
	const volatile int *cancel;  /* optional: nonzero cancels */
	const struct promql_forecaster *forecaster; /* forecast(), forecast_exhaustion(); NULL: they fail */
	int read_threads;            /* helper threads reading series ahead of range functions: 1 */
};
void promql_opts_defaults(struct promql_opts *o);

/*
 * forecast(v range-vector, horizon scalar) and forecast_exhaustion(v
 * range-vector, limit scalar): capacity forecasts whose models live in
 * alerting/ (forecast_model.c), handed to the engine here. eval gets one
 * series' points of the window (oldest first), the evaluation time and the
 * range, and writes the value horizon seconds after t_eval (exhaustion
 * false) or the seconds until the forecast reaches limit (+Inf: not within
 * the forecaster's horizon). false: no output for this series (too little
 * data). Any thread.
 */
struct promql_forecaster {
	bool (*eval)(const struct promql_point *p, size_t n, int64_t t_eval_ms, int64_t range_ms,
		     double arg, bool exhaustion, double *out);
};

/* Error classes, as the Prometheus API names them. */
enum promql_errtype {
	PROMQL_ERR_NONE,
	PROMQL_ERR_BAD_DATA,         /* parse errors, bad parameters (400) */
	PROMQL_ERR_EXECUTION,        /* evaluation failed (422) */
	PROMQL_ERR_TIMEOUT,          /* query.timeout passed (503) */
	PROMQL_ERR_CANCELED,         /* (503) */
	PROMQL_ERR_INTERNAL,         /* the source failed (500) */
};
/* "bad_data", "execution", "timeout", "canceled", "internal". */
const char *promql_errtype_name(enum promql_errtype t);
int promql_errtype_status(enum promql_errtype t);

struct promql_error {
	enum promql_errtype type;
	char msg[1024];
};

/* One series of a result: a vector element has one point (t = evaluation
 * time); a matrix series has its points oldest first. */
struct promql_result_series {
	size_t nlabels;
	const struct promql_label *labels;
	size_t npoints;
	struct promql_point *points;
};

/*
 * A result. Everything it points to lives in its arena and goes with
 * promql_result_fini. Vectors come sorted by labels unless the expression
 * orders them (sort, sort_desc, topk, bottomk at the top); matrices always
 * by labels.
 */
struct promql_result {
	enum promql_value_type type;
	int64_t t;                   /* instant queries: the evaluation time */
	double scalar;               /* SCALAR */
	const char *string;          /* STRING */
	size_t nseries;
	struct promql_result_series *series;
	uint64_t samples;            /* samples read from the source */
	struct arena arena;
};
void promql_result_fini(struct promql_result *r);

/*
 * Evaluates e at t_ms (an instant query). Returns 0 and fills *res (caller
 * finalises it), or -1 with err filled (res is then empty).
 */
int promql_eval_instant(const struct promql_source *src, const struct promql_opts *o,
			const struct promql_expr *e, int64_t t_ms, struct promql_result *res,
			struct promql_error *err);
/*
 * Evaluates e at every step from start to end (a range query): the result
 * is a matrix (a scalar expression gives one series without labels). e must
 * be a scalar or an instant vector. Returns 0 or -1 with err filled.
 */
int promql_eval_range(const struct promql_source *src, const struct promql_opts *o,
		      const struct promql_expr *e, int64_t start_ms, int64_t end_ms,
		      int64_t step_ms, struct promql_result *res, struct promql_error *err);

/* ---- formatting helpers for the API ----------------------------------------- */

/* A value as the Prometheus API writes it (Go's FormatFloat(v, 'f', -1)):
 * "NaN", "+Inf", "-Inf" or the shortest decimal without an exponent. */
void promql_format_value(struct buf *b, double v);
/* A millisecond timestamp as seconds, as the API writes it ("12.5", "12"). */
void promql_format_time(struct buf *b, int64_t t_ms);
/* Parses a Prometheus duration ("1h30m", "90s", "1.5" seconds when
 * allow_float). Returns 0 or -EINVAL. */
int promql_parse_duration(const char *s, bool allow_float, int64_t *out_ms);
/* Parses an API time: Unix seconds (float) or RFC 3339. 0 or -EINVAL. */
int promql_parse_time(const char *s, int64_t *out_ms);

/* Parses a series selector (`name{a=~"x"}`) for the series/labels APIs into
 * an expression that must be a plain vector selector. Returns its matchers
 * (owned by *out) or -EINVAL with a parse error in err. */
int promql_parse_selector(const char *text, struct promql_expr **out,
			  const struct promql_matcher **m, size_t *n, char *err, size_t errsize);

/*
 * Series matching any of the selectors with points in [mint, maxt], each
 * once, sorted by labels, allocated from a. Returns the count or -1 with err.
 */
ssize_t promql_series_match(const struct promql_source *src,
			    const struct promql_matcher *const *sel, const size_t *nsel,
			    size_t nselectors, int64_t mint, int64_t maxt, struct arena *a,
			    struct promql_series **out, struct promql_error *err);

#endif
