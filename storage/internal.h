/*
 * internal.h - what the files of storage/ share: the head's series, the
 * label index, the pending-chunk queue and the store itself. Private to
 * storage/; the rest of the program sees storage.h only.
 *
 * Locking: store.lock (a writer-preferring rwlock) guards the series, the
 * index, open chunks and the pending queue. The appending thread holds it
 * for writing while it appends one snapshot; queries hold it for reading
 * while they copy what they need; the writer thread holds it for writing
 * only to take work out and to put results back, never across SQLite calls.
 */
#ifndef MONITOR_STORAGE_INTERNAL_H
#define MONITOR_STORAGE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>

#include "agent/util/util.h"
#include "storage/slab.h"
#include "storage/codec.h"
#include "storage/storage.h"

#define STORE_MAX_LABELS 64
#define STORE_MAX_LABEL_BYTES 4096
#define NTIERS STORE_TIER__COUNT
/* How often the head rows are rewritten and the flush log emptied. */
#define STORE_CHECKPOINT_MS (5 * 60 * 1000)

/* ---- label index (index.c) ---------------------------------------------- */

struct lname;
/* An interned label pair and the ids of the series that carry it (sorted). */
struct lpair {
	char *name, *value;
	uint64_t hash;
	uint32_t *ids;
	uint32_t n, cap;
	struct lpair *hnext;
	struct lname *owner;
};
/* A label name and every value it has. */
struct lname {
	char *name;
	uint64_t hash;
	struct lpair **pairs;
	uint32_t n, cap;
	struct lname *hnext;
};
struct lindex {
	struct lpair **pairs;
	size_t npairs, pairs_nb;
	struct lname **names;
	size_t nnames, names_nb;
	size_t bytes;
};
int lindex_init(struct lindex *x);
void lindex_fini(struct lindex *x);
/* The interned pair, created when missing; NULL on ENOMEM. */
struct lpair *lindex_intern(struct lindex *x, const char *name, const char *value);
struct lpair *lindex_find(const struct lindex *x, const char *name, const char *value);
struct lname *lindex_name(const struct lindex *x, const char *name);
int lindex_add(struct lindex *x, struct lpair *p, uint32_t id);
/* Removes id from p; frees p (and its name entry) when nothing is left. */
void lindex_remove(struct lindex *x, struct lpair *p, uint32_t id);

/* Parses label text `a="x",b="y"` (escapes \\ \" \n), as snapshots render it,
 * into out (pointing into mem, which needs strlen(text)+1 bytes). Returns
 * the number of labels or -EINVAL; *end is set past the parsed text when
 * stop_at_brace (the text ends at '}'). */
int labels_parse(const char *text, struct store_label *out, size_t max, char *mem,
		 bool stop_at_brace, const char **end);
/* storage/'s short names for the exported checks in storage.h. */
static inline bool label_name_valid(const char *s)
{
	return store_label_name_valid(s);
}
static inline bool metric_name_valid(const char *s)
{
	return store_metric_name_valid(s);
}

/* ---- the head ------------------------------------------------------------ */

/* A roll-up tier's open chunk and accumulator. The encoder's column states
 * are not kept: cenc_states works them out at each (rare) append. */
struct tier_head {
	struct cenc enc;
	int64_t end;             /* bucket end of the open accumulator; 0 = none */
	double min, max, sum, last;
	uint32_t count;
	/* The bucket's point is in SQLite already (a series back from cold.c
	 * within the bucket): a sample of that bucket continues it, and its
	 * point then replaces the stored one (pending_trim); any other closes
	 * it unwritten. */
	bool resumed;
};

/* A sealed chunk on its way to SQLite. */
struct pchunk {
	struct pchunk *next;     /* the store's queue, oldest first */
	struct pchunk *snext;    /* the series' own list, oldest first */
	uint32_t series;
	uint8_t tier;
	int64_t mint, maxt;
	double last_v;           /* raw: the value at maxt */
	size_t len;
	uint8_t *data;
};

enum {
	S_SAVED = 1,             /* has its row in the series table */
	S_DIRTY = 2,             /* open chunks changed since the last flush */
	S_IDLE = 4,              /* stale, with roll-up data still open */
	S_ACTIVE = 8,            /* in the active list */
	S_DIRTY_1M = 16,         /* the 1 m roll-up chunk changed since the last flush */
	S_DIRTY_1H = 32,         /* the 1 h roll-up chunk changed */
	S_COMPACT = 64,          /* sealed small roll-up chunks since the last merge */
	S_EVICT = 128,           /* leaving memory (cold.c): about to be freed */
};

struct series {
	uint32_t id;
	uint8_t nlabels;
	uint8_t kind;            /* enum store_kind */
	uint8_t flags;
	uint32_t gen;            /* last snapshot generation that had it */
	uint32_t step_ms;        /* time between its last two samples (0: not known) */
	uint64_t hash;           /* of the label pair pointers */
	struct lpair **labels;   /* sorted by name */
	int64_t min_t, max_t;    /* bounds of all its data, disk included */
	/* Per tier, the end of the newest chunk in SQLite (INT64_MIN: none).
	 * Set at load and by the writer when a commit lands (under the write
	 * lock); retention leaves it as it was, which only errs towards
	 * reading. Reads whose range starts after it never touch SQLite. */
	int64_t disk_maxt[NTIERS];
	/* The newest raw point in SQLite, when known (disk_last_t INT64_MIN:
	 * not known): set by the writer when a raw chunk lands, or by the first
	 * read that decodes that chunk, under the write lock. It lets a query
	 * at one time answer without SQLite when it is the newest sample. */
	int64_t disk_last_t;
	double disk_last_v;
	int64_t last_t;          /* newest raw sample (INT64_MIN: none) */
	/* The sample before it (prev_t INT64_MIN: not known, as after a chunk
	 * cut): a reader as of a time between the two, as the forecaster is
	 * (as of its slot, just before the newest tick), gets it without
	 * decoding the chunk or reading SQLite. */
	int64_t prev_t;
	double prev_v;
	/* When it last got a sample, on the store's append clock (monotonic
	 * ms): staleness for eviction (cold.c) counts from here, not from
	 * the samples' own times, which an import may set years back. */
	int64_t touched_ms;
	struct cenc raw;
	struct vstate rv;
	struct tier_head *tier[2];   /* 1m and 1h; NULL until the first sample */
	struct pchunk *pend, *pend_tail;
	uint32_t flushed[3];     /* bytes of each open chunk (raw, 1m, 1h) on disk */
	struct series *hnext;
	/* The reader that has every new sample copied to it (follow.c), or NULL. */
	struct store_cursor *follow;
};

/* One container's labels and the series of its samples, by position. */
struct cslot {
	uint32_t family;
	char *extra;
	struct series *s;
};
struct ccache {
	char *key;               /* the container's prom_labels ("" for the agent) */
	uint64_t hash;
	uint32_t gen, epoch;
	bool bad;                /* labels that cannot be stored: skip its samples */
	size_t nbase;
	struct store_label base[STORE_MAX_LABELS];
	char *base_mem;
	struct cslot *slots;
	uint32_t nslots;
	struct ccache *next;
};

struct head_image;           /* db.c: a copy of one series' open chunks */

struct store {
	struct store_config cfg;
	char db_path[PATH_MAX];
	int lock_fd;

	pthread_rwlock_t lock;
	struct lindex idx;
	/* Series and their roll-up heads come and go with containers: on
	 * pages of their own (slab.h), under the write lock, so that churn
	 * leaves no holes among the heap's long-lived objects. */
	struct slab_pool series_pool, tier_pool;
	/* Series by id (store.c): pages of ID_PAGE slots, made with the first
	 * series of theirs and freed with the last. Ids only grow (a series
	 * keeps its id in SQLite), so a flat array would keep a slot for every
	 * series the host ever had; pages of ids whose series left memory
	 * (cold.c) are given back instead. */
	struct id_page **byid;   /* by id / ID_PAGE; NULL: none of those ids in memory */
	uint32_t byid_cap;       /* ids the page table covers */
	uint32_t next_id;
	size_t byid_pages;       /* pages allocated */
	struct series **ht;
	size_t ht_nb, nseries;
	uint64_t series_epoch;   /* changes when a series is made or dropped */
	struct series **active, **active_next;
	size_t nactive, active_cap, nactive_next;
	struct series **idle;
	size_t nidle, idle_cap;
	/* The idle sweep has nothing to do until a snapshot later than this
	 * (the earliest open roll-up bucket's end among the idle series);
	 * INT64_MIN when one was added since the last sweep. */
	int64_t idle_due;
	uint32_t gen;
	/* The newest maxt of any series that left memory (cold.c; INT64_MIN:
	 * none): queries whose range starts later do not look in SQLite for
	 * them. Written under the write lock, read with atomics. */
	int64_t cold_maxt;
	uint64_t evicted;        /* series that left memory, this run */
	int64_t append_ms;       /* the append clock: mono_ns()/1e6 at the last append call */
	int64_t last_snap_t, last_snap_step;
	struct log_limit clock_warn;

	struct ccache **cc;
	size_t cc_nb;
	uint32_t cache_epoch;

	struct pchunk *pq, *pq_tail;
	uint64_t pending_bytes;
	uint32_t *newser;        /* ids not yet in the series table */
	size_t nnew, newcap;
	struct series **dirty;
	size_t ndirty, dirtycap;

	/* statistics; under lock or atomics */
	uint64_t samples_followed;     /* copied to a following cursor (follow.c) */
	uint64_t samples_appended, out_of_order, chunks_written, write_errors, chunks_dropped;
	uint64_t retention_deleted, db_bytes;
	bool write_ok;
	double last_flush_s;
	/* The last walk of the head for its memory (store_stats_recent) */
	pthread_mutex_t walk_mu;
	bool walk_valid;
	int64_t walk_ms;         /* mono ms it was made at */
	uint64_t walk_head, walk_raw, walk_tier;

	/* the writer thread (db.c) */
	pthread_t writer;
	bool writer_started;
	pthread_mutex_t wmu;
	pthread_cond_t wcond, wdone;
	bool stop;
	uint64_t flush_req, flush_done;
	int flush_rc;
	int64_t retention_now;   /* a requested retention run's time, 0 = none */
	sqlite3 *db;
	sqlite3_stmt *st_series, *st_chunk[NTIERS], *st_head, *st_head_del, *st_log;
	bool checkpoint_req;     /* the next flush rewrites the head rows */
	int64_t last_checkpoint_ms;
	struct log_limit werr;
	int64_t last_retention_ms;

	/* read connections for queries: [1] map the database, [0] do not
	 * (db_reader_get) */
	pthread_mutex_t rmu;
	struct reader *readers[2][8];
	size_t nreaders[2];
	struct log_limit rerr;
};

/* store.c */
#define ID_PAGE_BITS 9
#define ID_PAGE (1u << ID_PAGE_BITS)
struct id_page {
	uint32_t n;              /* series in it */
	struct series *s[ID_PAGE];
};
/* The series with this id in memory, or NULL. */
static inline struct series *series_by_id(const struct store *s, uint32_t id)
{
	const struct id_page *p = id < s->byid_cap ? s->byid[id >> ID_PAGE_BITS] : NULL;
	return p ? p->s[id & (ID_PAGE - 1)] : NULL;
}
/* The series in memory with the least id >= *id, *id set to its id; NULL
 * when there is none. Skips pages without series, so that a loop over
 * every series costs what is in memory, not every id ever given:
 *	for (uint32_t id = 0; (se = series_next(s, &id)); id++)
 * The loop may free the series it is at. */
struct series *series_next(const struct store *s, uint32_t *id);
void store_seal_raw(struct store *s, struct series *se);
int head_append(struct store *s, struct series *se, int64_t t, double v);
void series_destroy(struct store *s, struct series *se);
/* series_destroy without invalidating the snapshot path's cache: for a
 * caller that took the series out of every cache slot itself. */
void series_free(struct store *s, struct series *se);
/* A series' roll-up head for tier k (0: 1m, 1h), made empty from the
 * store's pool if it has none; NULL when out of memory. Write lock held. */
struct tier_head *tier_head_get(struct store *s, struct series *se, int k);
/* Frees se's head for tier k (none: nothing) and leaves NULL. Write lock held. */
void tier_head_drop(struct store *s, struct series *se, int k);
struct series *series_create(struct store *s, uint32_t id, struct lpair **pairs, size_t n,
			     enum store_kind kind);
int store_intern_labels(struct store *s, const struct store_label *labels, size_t n,
			struct lpair **out);
void tier_acc_close(struct store *s, struct series *se, int k);
void tier_seal(struct store *s, struct series *se, int k);
/* An accumulator with samples of its own to write (not a resumed one
 * that nothing continued). */
static inline bool tier_acc_open(const struct tier_head *th)
{
	return th && th->end && !th->resumed;
}
/* The raw head row (open raw chunk and both accumulators) needs writing;
 * head_mark_tier adds roll-up tier k's chunk row (k 0: 1 m, 1: 1 h). */
void head_mark_dirty(struct store *s, struct series *se);
void head_mark_tier(struct store *s, struct series *se, int k);
/* Lists se (once) for the idle sweep, which closes its open roll-up data
 * when it goes stale, and makes the sweep due now; out of memory leaves it
 * unlisted. Write lock held (or the head being loaded). */
void series_idle_add(struct store *s, struct series *se);
/* Room for one more series in an active list holding count: the current
 * and the next list share one capacity, so both grow together; false when
 * out of memory. Write lock held (or the head being loaded). */
bool active_room(struct store *s, size_t count);
int newser_push(struct store *s, uint32_t id);
size_t series_format(const struct series *se, char *out, size_t size);
/* The series row text of sorted pairs; the length it needs, as snprintf. */
size_t pairs_format(struct lpair *const *pairs, size_t n, char *out, size_t size);

/* db.c */
int db_open(struct store *s, char *err, size_t errsize);
void db_close(struct store *s);
int db_start_writer(struct store *s);
/* A flush that also rewrites the head rows and empties the log; waits. */
int db_checkpoint(struct store *s);
void db_stop_writer(struct store *s);
/* A read connection with its prepared chunk queries (?1 series, ?2 mint, ?3 maxt). */
struct reader {
	sqlite3 *db;
	bool mapped;               /* reads through a mapping of the database */
	sqlite3_stmt *chunks[NTIERS];
	/* ?1 label text: id, mint, maxt, newest raw point of an evicted series */
	sqlite3_stmt *cold_find;
	/* ?1 id: labels, kind, mint, maxt, newest raw point of an evicted series */
	sqlite3_stmt *cold_id;
	sqlite3_stmt *cold_range;  /* ?1 mint, ?2 maxt: id, labels, mint, maxt of evicted ones */
};
/*
 * A read connection from the pool, or NULL. mapped: one that reads through
 * a mapping of the database (READER_MMAP_BYTES), for reads that decode
 * straight from SQLite's buffer (store_read_points: a query over thousands
 * of chunks); else one that reads pages in by pread, for reads that copy
 * their rows anyway (store_iter_open). A mapped connection, at its first
 * read after any change the writer made, unmaps all it had touched and
 * then faults each page in again: for the forecaster's hundred small
 * reads a minute, right after a flush, that was a sixth of its refresh.
 */
struct reader *db_reader_get(struct store *s, bool mapped);
void db_reader_put(struct store *s, struct reader *r);
/* Frees the writer connection's page cache and closes the idle readers
 * (their caches and mappings) (writer thread). */
void db_release_memory(struct store *s);
const char *db_chunk_table(int tier);
/* Merges a series' small roll-up chunks of tier (writer thread, inside a
 * transaction). Returns the rows removed. */
int db_compact_series(struct store *s, int tier, uint32_t id, bool counter);
/* Drops a series' points at from_t and later from its chunks of a roll-up
 * tier (writer thread, inside a transaction): a resumed bucket's point is
 * written again (pending_trim). An SQLite code. */
int db_trim_tier(struct store *s, int tier, uint32_t id, int64_t from_t, bool counter);

/* cold.c: series that left memory and live on in SQLite only. */
/* A series by id, brought back into memory when it left (under the write
 * lock); NULL when there is no such series or on error. */
struct series *series_get_id(struct store *s, uint32_t id);
/* A series back in memory under its old id: the bounds of its data in
 * SQLite from the row (b[0] mint, b[1] maxt, b[2] its newest raw point),
 * and its newest roll-up buckets resumed (tier_head.resumed). The caller
 * holds the write lock and queues its row (newser_push). */
void cold_revived(struct store *s, struct series *se, const int64_t *b);
/* Parses a series row's text `name{a="x",...}` into l (max entries; the
 * strings point into mem, which needs strlen(text)+2 bytes). Returns the
 * number of labels, __name__ first, or -EINVAL. */
int series_text_parse(const char *text, struct store_label *l, size_t max, char *mem);
/* Writer thread, after a flush: series without a sample for
 * evict_stale_after_ms (append clock) get everything sealed; those already
 * written out leave memory. */
void cold_evict(struct store *s);
/* The evicted series with this row text: 1 and its id and bounds, 0 when
 * there is none, -EIO. Any thread; reads SQLite. */
int cold_find(struct store *s, const char *text, uint32_t *id, int64_t *bounds);
struct cold_series {
	uint32_t id;
	int64_t mint, maxt;
	size_t nlabels;
	struct store_label *labels;  /* sorted by name; one block with the text */
};
struct cold_set {
	struct cold_series *v;
	size_t n, cap;
};
/* Evicted series whose bounds meet [mint, maxt] and whose labels all n
 * matchers accept. Call without the store lock. 0 or -errno; free *out with
 * cold_set_free. */
int cold_select(struct store *s, const struct store_matcher *m, size_t n, int64_t mint,
		int64_t maxt, struct cold_set *out);
void cold_set_free(struct cold_set *set);

/* ---- readers that come back for what arrived since (query.c, follow.c) ---- */

/*
 * A following cursor's copy of its series' new samples: a ring of times
 * (as offsets from t0, 4 bytes, so an entry is 12 bytes) and values. The
 * appender adds under the write lock; the cursor's reader takes under the
 * read lock (the appender is excluded, and no other reader touches it).
 */
struct follow_ring {
	struct store *st;              /* set while following (for the unlink) */
	uint32_t id;
	bool whole;                    /* every sample after base_t is in the ring */
	int64_t base_t, t0;
	uint32_t cap, head, n;
	uint32_t *dt;
	double *v;
};
struct store_cursor {
	bool ok;
	int64_t t_first;         /* the open chunk it stands in */
	int64_t last_t;          /* the newest point it returned */
	struct cdec d;           /* after that point */
	struct follow_ring fr;   /* when store_cursor_follow was asked */
};
/* Copies a sample just appended to se into its following cursor (head_append,
 * under the write lock). */
void follow_push(struct store *s, struct series *se, int64_t t, double v);
/* store_read_after from the ring: the count, or -EAGAIN when the ring does
 * not hold every sample after after_t (read the ordinary way). */
ssize_t follow_take(struct store *s, uint32_t id, struct store_cursor *c, int64_t after_t,
		    int64_t maxt, int64_t *t, double *v, size_t max);
/* After an ordinary read of n samples up to last_t: (re)starts the copy
 * from last_t on, when the series' samples after it are known. */
void follow_arm(struct store *s, uint32_t id, struct store_cursor *c, int64_t last_t, size_t n);

#endif
