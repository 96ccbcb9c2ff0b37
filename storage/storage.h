/*
 * storage.h - the public face of storage/: the agent's own time-series store.
 *
 * Samples go into the head: per series, the newest samples compressed in
 * memory (delta-of-delta timestamps; values as Gorilla XOR or, when cheaper,
 * as scaled-integer deltas) plus running 1 m and 1 h roll-ups (min, max,
 * sum, count, last). A full head chunk is sealed and a background writer
 * thread puts it into SQLite (<data_dir>/monitor.db), one row per series per
 * chunk, in one batched transaction per flush interval; the same transaction
 * logs what every open chunk grew by, so a crash loses at most one flush
 * interval and a restart resumes the open chunks. Retention deletes by age
 * per tier and by total size, oldest first. Queries read the head and
 * SQLite together.
 *
 * Threads: store_append_snapshot and store_append belong to one thread (the
 * agent's tick thread, or an importer). Queries (store_select, iterators,
 * label lists) and store_stats may run on any thread at the same time. No
 * call on the append path touches SQLite or waits for the disk.
 *
 * Only files in storage/ include sqlite3.h.
 */
#ifndef MONITOR_STORAGE_H
#define MONITOR_STORAGE_H

#include <limits.h>
#include <math.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

struct snapshot;

/* ---- configuration ------------------------------------------------------ */

enum store_tier { STORE_TIER_RAW, STORE_TIER_1M, STORE_TIER_1H, STORE_TIER__COUNT };

#define STORE_DB_NAME "monitor.db"
/* Samples per raw chunk (chosen by measurement, see tests/bench/storage_bench.c).
 * Roll-up chunks are sealed small (20 one-minute points, 12 one-hour points)
 * so that the head stays small, and the writer merges sealed ones into
 * chunks of up to STORE_TIER_CHUNK_POINTS so that long reads stay cheap. */
#define STORE_CHUNK_SAMPLES 240
#define STORE_TIER_CHUNK_POINTS 120
#define STORE_TIER_OPEN_POINTS_1M 20
#define STORE_TIER_OPEN_POINTS_1H 12
/* A raw chunk is also sealed when it spans more than this. */
#define STORE_CHUNK_MAX_SPAN_MS (2 * 3600 * 1000)
/* Sealed chunks kept in memory while the disk refuses writes, at most. */
#define STORE_PENDING_CAP_BYTES (64u << 20)

struct store_config {
	char dir[PATH_MAX];            /* data directory, must exist */
	bool enabled;                  /* storage.enabled: false keeps nothing */
	int64_t retention_ms[STORE_TIER__COUNT]; /* by age, per tier */
	uint64_t max_size_bytes;       /* the data directory's database, 0 = no limit */
	int64_t flush_interval_ms;     /* most data a crash can lose */
	int64_t retention_interval_ms; /* how often retention runs */
	bool read_only;                /* no writer thread: for `monitor dump` */
	int chunk_samples;             /* raw chunk size; 0 = STORE_CHUNK_SAMPLES */
};
/* Defaults: raw 3d, 1m 30d, 1h 365d, max size 4 GiB, flush 10s. */
void store_config_defaults(struct store_config *c);

/* ---- open, append, close ------------------------------------------------ */

struct store;

/*
 * Opens (or creates) <cfg->dir>/monitor.db, takes <dir>/monitor.lock so that
 * only one process writes the directory, loads the series and resumes the
 * open chunks that the last run saved, and starts the writer thread. A file
 * that is not a database or is corrupt is renamed to monitor.db.corrupt-<ms>
 * with a warning and a fresh store is created.
 * Returns 0 and *out, or -errno with a message naming the file in err
 * (-EBUSY: another process holds the directory).
 */
int store_open(struct store **out, const struct store_config *cfg, char *err, size_t errsize);

/* Marks every active series stale at now, writes everything out and frees
 * the store. NULL is fine. Call from the appending thread. */
void store_close(struct store *s);

/*
 * Appends one tick's samples. Series are found through a cache keyed by the
 * container's rendered labels and each sample's family and extra labels, so
 * label text is parsed only when a container's labels change. A series that
 * was in the previous snapshot and is missing from this one gets a stale
 * marker at this snapshot's time. Timestamps within 2% of the interval (at
 * most 20 ms) of the expected tick are aligned onto it, as Prometheus does,
 * so regular ticks cost one bit each. Never blocks on disk.
 * snap stays the caller's; nothing from it is kept.
 */
void store_append_snapshot(struct store *s, const struct snapshot *snap);

/* A label pair. Names and values are NUL-terminated UTF-8. */
struct store_label {
	const char *name;
	const char *value;
};

enum store_kind { STORE_GAUGE, STORE_COUNTER };

/*
 * Finds or creates the series with these labels (one must be __name__;
 * order does not matter; empty values are dropped) and returns its id in
 * *id. Returns 0, -EINVAL for a missing or invalid name, -ENOMEM.
 */
int store_series(struct store *s, const struct store_label *labels, size_t n,
		 enum store_kind kind, uint32_t *id);
/*
 * Appends one sample to a series. Returns 0; -EEXIST when t is not after the
 * series' last sample (the sample is refused and counted as out of order;
 * the chunk is untouched); -ENOENT for an unknown id.
 */
int store_append(struct store *s, uint32_t id, int64_t t_ms, double v);

/* Writes everything the head holds now (sealed and open chunks) and waits.
 * Returns 0 or -errno (-ENOSPC when the disk is full). Any thread. */
int store_flush(struct store *s);
/* Runs retention as if the time were now_ms, then flushes. For tests and
 * `monitor import`; the writer runs it by itself every retention interval. */
int store_retention_run(struct store *s, int64_t now_ms);
/* Seals every open chunk (including partial roll-up buckets). Import uses it
 * so that backfilled data is complete on disk. Appending thread only. */
void store_seal_all(struct store *s);

/* Bytes on disk per tier (chunk table plus its index, pages included) and
 * what they hold, for the benchmark and `monitor dump --stats`. */
struct store_disk_usage {
	uint64_t file_bytes;           /* database plus WAL */
	uint64_t tier_bytes[STORE_TIER__COUNT];
	uint64_t tier_chunks[STORE_TIER__COUNT];
	uint64_t tier_blob_bytes[STORE_TIER__COUNT];
	uint64_t other_bytes;          /* series, head rows, free pages, schema */
};
/* Checkpoints and measures (uses SQLite's dbstat table). Returns 0 or -errno. */
int store_disk_usage(struct store *s, struct store_disk_usage *out);

struct store_stats {
	uint64_t series;               /* series known (head and disk) */
	uint64_t active_series;        /* in the last snapshot */
	uint64_t samples_appended;
	uint64_t out_of_order;         /* refused samples */
	uint64_t chunks_written;
	uint64_t write_errors;         /* failed flush transactions */
	uint64_t chunks_dropped;       /* pending chunks dropped past the cap */
	uint64_t head_bytes;           /* memory held by the head, all of: */
	uint64_t head_raw_bytes;       /*   open raw chunks */
	uint64_t head_tier_bytes;      /*   open roll-up chunks and accumulators */
	uint64_t pending_bytes;        /* sealed chunks not yet on disk */
	uint64_t db_bytes;             /* database plus its WAL, on disk */
	uint64_t retention_deleted;    /* chunks removed by retention */
	bool write_ok;                 /* the last flush succeeded */
	double last_flush_seconds;
};
void store_stats(struct store *s, struct store_stats *out);

/* The Prometheus stale marker (a NaN with this exact bit pattern). */
#define STORE_STALE_NAN_BITS 0x7ff0000000000002ULL
static inline bool store_is_stale(double v)
{
	uint64_t b;
	memcpy(&b, &v, sizeof(b));
	return b == STORE_STALE_NAN_BITS;
}
static inline double store_stale_nan(void)
{
	double v;
	uint64_t b = STORE_STALE_NAN_BITS;
	memcpy(&v, &b, sizeof(v));
	return v;
}

/* ---- queries ------------------------------------------------------------ */

enum store_match_op { STORE_MATCH_EQ, STORE_MATCH_NE, STORE_MATCH_RE, STORE_MATCH_NRE };

/*
 * A label matcher as PromQL has them. Regular expressions are POSIX
 * extended, anchored at both ends (the value is compiled as ^(value)$), as
 * PromQL anchors RE2. As in Prometheus, a matcher that matches the empty
 * string also matches series without the label.
 */
struct store_matcher {
	enum store_match_op op;
	char *name, *value;            /* owned */
	regex_t re;                    /* compiled for RE/NRE */
	bool matches_empty;
};
/* Returns 0, or -EINVAL with a message in err for a bad regex. */
int store_matcher_init(struct store_matcher *m, enum store_match_op op, const char *name,
		       const char *value, char *err, size_t errsize);
void store_matcher_fini(struct store_matcher *m);
bool store_matcher_match(const struct store_matcher *m, const char *value);

/*
 * Parses a series selector: `name`, `name{l="v",l2!~"re"}` or `{l=~"v"}`.
 * Fills up to max matchers (caller finalises each) and returns how many, or
 * -EINVAL with a message naming the offset in err.
 */
int store_parse_selector(const char *text, struct store_matcher *out, size_t max, char *err,
			 size_t errsize);

/* One series of a selection: its id and its labels, sorted by name with
 * __name__ among them. Owned by the set. */
struct store_series_info {
	uint32_t id;
	size_t nlabels;
	struct store_label *labels;
	int64_t min_t, max_t;          /* raw data bounds known to the store */
};
struct store_series_set {
	size_t n;
	struct store_series_info *series;  /* sorted by labels */
	void *mem_;                    /* private */
};

/*
 * Selects the series matching every matcher that have data overlapping
 * [mint, maxt] (milliseconds, inclusive). The label index answers each
 * matcher from postings of the label pairs it names; only matchers that
 * match the empty string fall back to looking at the candidates' labels.
 * Returns 0 and fills *out (free with store_series_set_free), or -errno.
 */
int store_select(struct store *s, const struct store_matcher *m, size_t n, int64_t mint,
		 int64_t maxt, struct store_series_set *out);
void store_series_set_free(struct store_series_set *set);
/* Formats labels as name{a="x",...}; returns the length (as snprintf). */
int store_labels_format(const struct store_label *l, size_t n, char *out, size_t size);

/* The tier a query with this step should read: 1h for steps of an hour or
 * more, 1m for a minute or more, else raw. */
enum store_tier store_tier_for_step(int64_t step_ms);
const char *store_tier_name(enum store_tier t);   /* "raw", "1m", "1h" */
int64_t store_tier_width_ms(enum store_tier t);   /* 0, 60000, 3600000 */

/*
 * One point from an iterator. Raw: t and v only (v may be the stale marker:
 * test with store_is_stale; queries stop returning a series after it).
 * Roll-up tiers: t is the end of the bucket and the point summarises the
 * samples in (t - width, t]; min, max, sum, count, last; v = last.
 * Stale markers are not counted in roll-ups.
 */
struct store_point {
	int64_t t;
	double v;
	double min, max, sum, last;
	double count;
};

/*
 * Iterates one series' points in [mint, maxt] at a tier, oldest first, from
 * SQLite and the head together (duplicates removed). Roll-up tiers return
 * only closed buckets. Returns 0 and *out, -ENOENT for an unknown series.
 */
struct store_iter;
int store_iter_open(struct store *s, uint32_t id, enum store_tier tier, int64_t mint,
		    int64_t maxt, struct store_iter **out);
/* 1 with a point, 0 at the end, -errno on a read error. */
int store_iter_next(struct store_iter *it, struct store_point *p);
/* The fast path for engines: up to max points' times and values (roll-ups:
 * the bucket's last value) straight from the decoder. Returns how many,
 * 0 at the end. Mixes freely with store_iter_next. */
ssize_t store_iter_batch(struct store_iter *it, int64_t *t, double *v, size_t max);
void store_iter_free(struct store_iter *it);

/*
 * Label names (sorted, distinct) of the series matching the matchers (all
 * series when n is 0), or the values of one label name. The strings are
 * copies: *out is one malloc'd block (array and strings); free(*out).
 * Returns the count or -errno.
 */
ssize_t store_label_names(struct store *s, const struct store_matcher *m, size_t n,
			  char ***out);
ssize_t store_label_values(struct store *s, const char *name, const struct store_matcher *m,
			   size_t n, char ***out);

/* ---- import and dump ----------------------------------------------------- */

struct store_import_result {
	uint64_t lines, samples, series, out_of_order;
};
/*
 * Loads a Prometheus text (0.0.4, timestamps in ms) or OpenMetrics (ends
 * with "# EOF", timestamps in seconds) file into the store. Every sample
 * needs a timestamp. Samples are sorted per series before they are
 * appended; those not after data the store already holds for the series are
 * refused and counted. Returns 0, or -EINVAL with "file:line: message" in
 * err, or -errno.
 */
int store_import_file(struct store *s, const char *path, struct store_import_result *res,
		      char *err, size_t errsize);

/* ---- small keyed state (kv.c) -------------------------------------------- */

/*
 * A keyed record store in its own SQLite file (e.g. <data_dir>/state.db) for
 * state that is not a time series: alert state, silences, the notification
 * queue. Records are (namespace, key) -> bytes; keys sort as text (use
 * zero-padded numbers for queues). Every put and delete is its own durable
 * transaction. Any thread; calls are serialised by one lock.
 */
struct kv;
/* Opens or creates path; a file that is not a database is moved aside to
 * path.corrupt-<time> with a warning. 0, or -errno with a message in err. */
int kv_open(struct kv **out, const char *path, char *err, size_t errsize);
void kv_close(struct kv *k);      /* NULL is fine */
/* 0, -ENOSPC when the disk is full, -EIO. */
int kv_put(struct kv *k, const char *ns, const char *key, const void *val, size_t len);
int kv_del(struct kv *k, const char *ns, const char *key);
int kv_clear(struct kv *k, const char *ns);
/* 0 and *val (malloc'd, NUL-terminated past len; caller frees), -ENOENT. */
int kv_get(struct kv *k, const char *ns, const char *key, void **val, size_t *len);
/* Calls fn for up to limit records (0: all) of ns with keys after `after`
 * (NULL: from the first), in key order; stops at fn's first non-zero return
 * and returns it. fn runs under the store's lock: it must not call kv_*. */
typedef int (*kv_each_fn)(void *arg, const char *key, const void *val, size_t len);
int kv_each(struct kv *k, const char *ns, const char *after, size_t limit, kv_each_fn fn,
	    void *arg);

/* ---- PromQL ------------------------------------------------------------- */

/* The query engine that reads the store (promql_store_source) or any other
 * source: parser, evaluator, API formats. */
#include "storage/promql.h"

#endif
