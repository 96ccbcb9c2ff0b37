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
	/* A series stale this long, and written out, leaves memory and is read
	 * from SQLite only (storage.evict_stale_after); 0 = never. */
	int64_t evict_stale_after_ms;
};
/* Defaults: raw 3d, 1m 30d, 1h 365d, max size 4 GiB, flush 10s, stale series
 * leave memory after 10m. */
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
 * snap stays the caller's; nothing from it is kept. Returns the time the
 * samples were stored at (the aligned tick; what rule evaluation must read
 * up to), or 0 when the tick was not stored (clock went back, NULL).
 */
int64_t store_append_snapshot(struct store *s, const struct snapshot *snap);

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
	uint64_t series;               /* series in memory (the head) */
	uint64_t evicted;              /* series that left memory (stale), this run */
	uint64_t active_series;        /* in the last snapshot */
	uint64_t samples_appended;
	uint64_t samples_followed;     /* of them, copied to a following cursor */
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
/* The same, but the head's memory (head_bytes, head_raw_bytes,
 * head_tier_bytes: a walk of every series) may come from a walk up to
 * max_age_ms old; the counters are current. For a caller every tick. Any
 * thread. */
void store_stats_recent(struct store *s, struct store_stats *out, int64_t max_age_ms);
/* A number that changes whenever a series is made or dropped: a reader
 * that keeps a selection of series (the forecaster) selects again only
 * when it changed. Any thread. */
uint64_t store_series_epoch(struct store *s);

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
/*
 * Whether s is a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*) or
 * metric name ([a-zA-Z_:][a-zA-Z0-9_:]*). ASCII only, independent of the
 * locale; NULL and "" are not valid. Pure; any thread.
 */
bool store_label_name_valid(const char *s);
bool store_metric_name_valid(const char *s);

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
/* store_iter_batch into (t, v) points, the engine's own arrays. */
struct promql_point;
ssize_t store_iter_points(struct store_iter *it, struct promql_point *p, size_t max);
/*
 * The engine's read: appends the points of series id in [mint, maxt] at a
 * tier (roll-ups: the bucket's last value), oldest first, to out, decoding
 * SQLite's rows and the head's chunks where they lie, with no copy, when
 * the chunks follow each other in time (the usual case), and through an
 * iterator when they overlap. Returns 0, -ENOENT for an unknown series,
 * -errno. Any thread.
 */
struct promql_points;
int store_read_points(struct store *s, uint32_t id, enum store_tier tier, int64_t mint,
		      int64_t maxt, struct promql_points *out);
/* The points in the chunks the iterator has not begun that reach into its
 * range (for a new iterator, at least all it will return), to size an array
 * once. */
size_t store_iter_size_hint(const struct store_iter *it);
void store_iter_free(struct store_iter *it);
/*
 * The newest raw point of a series in [mint, maxt], for queries at one
 * evaluation time (alert rules): answered from the head's open chunk
 * without decoding when it holds the series' newest sample, else by
 * iterating. Returns 1 with *t and *v (v may be the stale marker), 0 when
 * the range holds none, -ENOENT for an unknown series, -errno. Any thread.
 */
int store_last_point(struct store *s, uint32_t id, int64_t mint, int64_t maxt, int64_t *t,
		     double *v);

/*
 * A reader's place in one series' newest raw samples, for a reader that
 * comes back for what arrived since (the forecaster, once a minute): it
 * saves decoding the head's open chunk from its start each time.
 * store_cursor_new returns NULL on ENOMEM; free accepts NULL. A cursor
 * belongs to one series and one thread at a time.
 */
struct store_cursor;
struct store_cursor *store_cursor_new(void);
/* Stops its following (store_cursor_follow) and frees it: before the store
 * is closed. NULL is fine. */
void store_cursor_free(struct store_cursor *c);
/*
 * Makes c follow series id: from its next store_read_after on, the store
 * copies every sample appended to the series into the cursor (12 bytes
 * each, up to about one and a half reads' worth), and store_read_after
 * takes them from there. What the appender just encoded is then not decoded
 * back, and a read after the open chunk was cut does not go to SQLite. The
 * copy costs the appending thread a few instructions per followed sample
 * (store_stats' samples_followed counts them). Any gap (a read late enough
 * to overflow the copy, a series that left memory, another cursor following
 * it) only sends that read the ordinary way, which starts the copy again.
 * One cursor follows a series at a time. A store_read_after with maxt at
 * after_t reads nothing and starts the copy after after_t at once, when
 * that is the series' newest sample or the one before it. 0, or -ENOMEM.
 * Any thread.
 */
int store_cursor_follow(struct store *s, struct store_cursor *c, uint32_t id);
/*
 * The raw samples of series id in (after_t, maxt], oldest first, into t/v
 * (at most max): the count, -E2BIG when there are more than max (nothing
 * is lost: read them with an iterator), -ENOENT for an unknown series,
 * -errno. Stale markers are returned as they are. Continues from the
 * cursor when after_t is the newest sample its last call returned and the
 * open chunk is still the one it was in; else reads as store_iter_open
 * does and places the cursor. Any thread.
 */
ssize_t store_read_after(struct store *s, uint32_t id, struct store_cursor *c, int64_t after_t,
			 int64_t maxt, int64_t *t, double *v, size_t max);

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

/* ---- container logs (logstore.c) ----------------------------------------- */

/*
 * Container log lines in their own SQLite file (<data_dir>/logs.db), apart
 * from the metrics: a table of lines (container, time, stream, level, flags,
 * message, the hash of the message's template), an FTS5 index over the messages, the
 * containers ever seen (so the lines of a container that is gone stay
 * findable by name), and the read position of every tailed file, written
 * in the same transaction as the lines read up to it: after a restart the
 * tailer resumes where the stored lines end, with no duplicates and no gaps.
 * Retention by age and by size runs in the appending thread, separately
 * from the metrics' retention.
 *
 * Threads: logstore_append belongs to one thread (the log tailer). Queries,
 * counts, waits and stats may run on any thread at the same time (they use
 * their own read connections; WAL lets them read while lines are written).
 */
#define LOGSTORE_DB_NAME "logs.db"

/* Severity as parsed from the line; NONE when the line names none. */
enum logstore_level {
	LOGSTORE_LEVEL_NONE, LOGSTORE_LEVEL_TRACE, LOGSTORE_LEVEL_DEBUG, LOGSTORE_LEVEL_INFO,
	LOGSTORE_LEVEL_WARN, LOGSTORE_LEVEL_ERROR, LOGSTORE_LEVEL_FATAL, LOGSTORE_LEVEL__COUNT
};
/* "unknown", "trace", "debug", "info", "warn", "error", "fatal". */
const char *logstore_level_name(int level);
/* Parses a level name (also "warning", "err", "critical", "crit", "panic");
 * returns the level or -EINVAL. */
int logstore_level_parse(const char *s);
/*
 * Parses a level filter into a bit mask (bit i: level i): "error",
 * "warn,error", "warn+" (warn and everything more severe). 0 or -EINVAL.
 */
int logstore_level_mask(const char *s, uint32_t *mask);

enum logstore_stream { LOGSTORE_STDOUT, LOGSTORE_STDERR };
const char *logstore_stream_name(int stream);   /* "stdout", "stderr" */

/* flags of a stored line */
#define LOGSTORE_ESCAPED 1u   /* bytes that were not valid UTF-8 or control
			       * characters are written \xHH (and '\' as \\) */
#define LOGSTORE_TRUNCATED 2u /* longer than the line cap; the text ends
			       * with a marker saying how long it was */
#define LOGSTORE_PARTIAL 4u   /* the file ended (rotated away, deleted)
			       * before the line did */

struct logstore_config {
	char dir[PATH_MAX];            /* data directory, must exist */
	int64_t retention_ms;          /* lines older than this go (0: keep) */
	uint64_t max_size_bytes;       /* logs.db past this loses its oldest lines (0: no limit) */
	int64_t retention_interval_ms; /* how often retention runs */
};
/* Defaults: keep 7d, 1 GiB, retention every minute. */
void logstore_config_defaults(struct logstore_config *c);

struct logstore;
/*
 * Opens (or creates) <cfg->dir>/logs.db. A file that is not a database is
 * renamed to logs.db.corrupt-<ms> with a warning and a fresh one created.
 * Returns 0 and *out, or -errno with a message naming the file in err.
 */
int logstore_open(struct logstore **out, const struct logstore_config *cfg, char *err,
		  size_t errsize);
/* Closes and frees; NULL is fine. Call after every reader has finished. */
void logstore_close(struct logstore *ls);
/* Wakes every logstore_wait, which returns -ESHUTDOWN from then on (so
 * that streaming HTTP responses end before the server stops). Any thread. */
void logstore_interrupt(struct logstore *ls);

/* One line to store. Strings are the caller's; msg need not be
 * NUL-terminated and must be valid UTF-8 (the tailer escapes it). */
struct log_record {
	const char *id;                /* container id (64 hex for Docker) */
	const char *name;              /* container name, NULL when unknown */
	int64_t time_ns;               /* unix nanoseconds */
	int stream;                    /* enum logstore_stream */
	int level;                     /* enum logstore_level */
	uint32_t flags;                /* LOGSTORE_* */
	const char *msg;
	size_t msg_len;
};
/* Where a tailed file has been read up to: everything before offset is in
 * the store. fingerprint identifies the file's first bytes (a hash), so a
 * file replaced by another with the same inode is noticed. */
struct log_position {
	const char *path;              /* the file's name as the tailer found it */
	uint64_t dev, ino;
	uint64_t offset;
	uint64_t fingerprint;
	uint64_t fingerprint_len;      /* bytes hashed (0: empty file) */
};
/*
 * Stores n lines and npos positions in one transaction (all or nothing).
 * A position with offset UINT64_MAX deletes the file's record (the file is
 * gone). Returns 0 or -errno (-ENOSPC: disk full; nothing was stored).
 * The appending thread only.
 */
int logstore_append(struct logstore *ls, const struct log_record *r, size_t n,
		    const struct log_position *pos, size_t npos);
/* The saved position of path (out->path is set to NULL). 0 or -ENOENT. */
int logstore_position(struct logstore *ls, const char *path, struct log_position *out);
/* Records a container's name learnt without a line (the runtime named it
 * later), so its stored lines are found by it. 0 or -errno. The appending
 * thread. */
int logstore_set_name(struct logstore *ls, const char *id, const char *name);

/* Which lines a query, count or pattern list looks at. Zeroed = all. */
struct log_query {
	const char *container;         /* exact id, exact name, or an id prefix of
					* 4+ characters; NULL: every container */
	int64_t since_ns, until_ns;    /* time >= since, time < until; 0: open */
	uint32_t levels;               /* bit mask of levels (logstore_level_mask); 0: any */
	int stream;                    /* -1 or 0 (both, the zeroed default); 1 + stream for one */
	const char *text;              /* full-text words, all must occur (FTS5; each
					* word matched as a token, "quoted phrases" kept) */
	const char *regex;             /* POSIX extended regex the message must match */
	bool icase;                    /* regex ignores case */
	uint64_t after_seq;            /* only lines stored after this seq (follow) */
	uint64_t before_seq;           /* only lines before this seq (paging back); 0: open */
	size_t limit;                  /* lines returned at most (0: 100; capped at 10000) */
	bool newest;                   /* the newest limit lines (as tail), else the oldest;
					* returned oldest first either way */
	uint64_t max_scan;             /* lines a regex may examine (0: 2,000,000); past it
					* the answer is partial */
};

/* A stored line, as queries return it. Strings owned by the result. */
struct log_line {
	uint64_t seq;                  /* the store's increasing line number */
	int64_t time_ns;
	const char *id, *name;
	int stream, level;
	uint32_t flags;
	const char *msg;               /* NUL-terminated; escaped when flags say so */
	size_t msg_len;
};
struct log_result {
	size_t n;
	struct log_line *lines;        /* oldest first */
	bool partial;                  /* the scan cap or timeout ended the search */
	uint64_t scanned;              /* lines the regex looked at */
	void *mem_;                    /* private */
};
/*
 * Runs a query. Returns 0 and fills *out (free with logstore_result_free;
 * also after an error), -ENOENT when q->container names no container the
 * store knows, -ENOTUNIQ when an id prefix matches several, -EINVAL
 * with a message in err (bad regex or full-text query). Any thread.
 */
int logstore_query(struct logstore *ls, const struct log_query *q, struct log_result *out,
		   char *err, size_t errsize);
void logstore_result_free(struct log_result *r);

/* Lines matching q per container (what log-pattern alert rules count). */
struct log_count {
	char id[80];
	char name[128];
	uint64_t count;                /* matching lines in the window */
	uint64_t first_seq;            /* the oldest matching line in the window */
	int64_t first_time_ns;
	char *first_msg;               /* its text (malloc'd, freed by logstore_counts_free) */
};
/*
 * Counts the lines matching q (its limit, newest and seq bounds are
 * ignored; after_seq is honoured) for each container with at least one;
 * *out is an array of *n entries, sorted by count, largest first (free
 * with logstore_counts_free). *partial is set when max_scan stopped the
 * regex. Returns 0, -ENOENT, -ENOTUNIQ or -EINVAL (message in err). Any
 * thread.
 */
int logstore_count_by_container(struct logstore *ls, const struct log_query *q,
				struct log_count **out, size_t *n, bool *partial, char *err,
				size_t errsize);
void logstore_counts_free(struct log_count *c, size_t n);
/* The total of logstore_count_by_container, with the oldest matching line
 * copied into first when it is not NULL (first->first_msg: caller frees;
 * count 0 leaves first zeroed). */
int logstore_count(struct logstore *ls, const struct log_query *q, uint64_t *count,
		   struct log_count *first, char *err, size_t errsize);

/* The most frequent message templates (numbers, ids and hex masked) among
 * the lines matching q. */
struct log_pattern {
	uint64_t hash;
	uint64_t count;
	char *template_text;           /* "connection from <ip> took <num>ms" */
	char *example;                 /* the newest line with it */
};
/* Returns 0 and the top k (at most 1000) patterns in *out, largest count
 * first (free with logstore_patterns_free). Same errors as the query. */
int logstore_patterns(struct logstore *ls, const struct log_query *q, size_t k,
		      struct log_pattern **out, size_t *n, char *err, size_t errsize);
void logstore_patterns_free(struct log_pattern *p, size_t n);
/* Masks a message into its template: decimal and hex numbers, UUIDs,
 * long hex ids, IPv4 addresses, quoted strings after '=' become <num>,
 * <hex>, <uuid>, <id>, <ip>, and so on. Writes at most size-1 bytes into
 * out and returns the length; hashes with logstore_template_hash. */
size_t logstore_template(const char *msg, size_t len, char *out, size_t size);
uint64_t logstore_template_hash(const char *msg, size_t len);

/* Containers the store holds lines of (also those that are gone). */
struct log_container {
	char id[80];
	char name[128];
	uint64_t lines;
	int64_t first_ns, last_ns;
};
/* Fills a malloc'd array (caller frees), newest activity first. 0 or -errno. */
int logstore_containers(struct logstore *ls, struct log_container **out, size_t *n);

/* The newest seq stored (0: none). Any thread. */
uint64_t logstore_last_seq(struct logstore *ls);
/* Waits until a line after after_seq is stored or timeout_ms pass. Returns
 * 1 (there is one), 0 (timeout) or -ESHUTDOWN after logstore_interrupt. */
int logstore_wait(struct logstore *ls, uint64_t after_seq, int64_t timeout_ms);

struct logstore_stats {
	uint64_t lines_stored;         /* since open */
	uint64_t bytes_stored;         /* message bytes since open */
	uint64_t lines_held;           /* lines in the store now (at the last retention run) */
	uint64_t db_bytes;             /* logs.db plus its WAL */
	uint64_t write_errors;
	uint64_t retention_deleted;    /* lines removed by retention */
	bool write_ok;                 /* the last append succeeded */
};
void logstore_stats(struct logstore *ls, struct logstore_stats *out);
/* Runs retention now as if the time were now_ms. The appending thread,
 * or tests. 0 or -errno. */
int logstore_retention_run(struct logstore *ls, int64_t now_ms);

/* ---- PromQL ------------------------------------------------------------- */

/* The query engine that reads the store (promql_store_source) or any other
 * source: parser, evaluator, API formats. */
#include "storage/promql.h"

#endif
