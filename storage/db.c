/*
 * db.c - the SQLite side of the store: schema, opening (with the lock file
 * and the move-aside of a corrupt database), loading the series and the open
 * chunks a previous run saved, the writer thread, retention, and the pool of
 * read connections that queries use.
 *
 * Schema (monitor.db, WAL mode, synchronous=NORMAL, incremental vacuum):
 *   series(id, labels, kind, mint, maxt) one row per series; labels as text;
 *                                       the bounds of its data once it left
 *                                       memory (cold.c), NULL while in memory
 *   chunks / chunks_1m / chunks_1h      (id, series_id, mint, maxt, data):
 *                                       one row per sealed chunk, appended in
 *                                       rowid order; index (series_id, maxt)
 *   head(series_id, tier, data, acc)    each series' open chunks (raw, 1m, 1h)
 *                                       at the last checkpoint
 *   headlog(id, data)                   one row per flush since then: for each
 *                                       open chunk that grew, the bytes it
 *                                       grew by (the encodings only append)
 * The writer thread commits, once per flush interval, one transaction with
 * the new series, the sealed chunks and one headlog row, so what is on disk
 * is always a consistent cut and a kill -9 loses at most one interval, while
 * a flush writes about what was collected (not every open chunk again).
 * Every few minutes, and at a clean stop, a checkpoint rewrites the head
 * rows and empties the log. Roll-up accumulators are not saved: at start
 * they are rebuilt from the raw samples of their bucket. WAL with
 * synchronous=NORMAL keeps every committed transaction across a process
 * crash (an OS crash may lose the last ones).
 */
#include "storage/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define QUICK_CHECK_MAX_BYTES (256ull << 20)
/* Address space each read connection may map of the database (not memory:
 * only the pages a query touches are brought in, from the page cache). */
#define READER_MMAP_BYTES "1073741824"

static const char *const chunk_tables[NTIERS] = { "chunks", "chunks_1m", "chunks_1h" };

const char *db_chunk_table(int tier)
{
	return chunk_tables[tier];
}

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS series(id INTEGER PRIMARY KEY, labels TEXT NOT NULL,"
	" kind INTEGER NOT NULL, mint INTEGER, maxt INTEGER);"
	"CREATE TABLE IF NOT EXISTS chunks(id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL,"
	" mint INTEGER NOT NULL, maxt INTEGER NOT NULL, data BLOB NOT NULL);"
	"CREATE INDEX IF NOT EXISTS chunks_series ON chunks(series_id, maxt);"
	"CREATE TABLE IF NOT EXISTS chunks_1m(id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL,"
	" mint INTEGER NOT NULL, maxt INTEGER NOT NULL, data BLOB NOT NULL);"
	"CREATE INDEX IF NOT EXISTS chunks_1m_series ON chunks_1m(series_id, maxt);"
	"CREATE TABLE IF NOT EXISTS chunks_1h(id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL,"
	" mint INTEGER NOT NULL, maxt INTEGER NOT NULL, data BLOB NOT NULL);"
	"CREATE INDEX IF NOT EXISTS chunks_1h_series ON chunks_1h(series_id, maxt);"
	"CREATE TABLE IF NOT EXISTS head(series_id INTEGER NOT NULL, tier INTEGER NOT NULL,"
	" data BLOB NOT NULL, acc BLOB, PRIMARY KEY(series_id, tier)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS headlog(id INTEGER PRIMARY KEY, data BLOB NOT NULL);"
	"INSERT OR IGNORE INTO meta VALUES('schema', 1);";

/* Series that left memory (cold.c) are found by label text and by the end
 * of their data; only they are in these indexes. Created after the columns
 * (which a database from before them gets added by ALTER TABLE). */
static const char cold_schema[] =
	"CREATE INDEX IF NOT EXISTS series_cold_maxt ON series(maxt) WHERE maxt IS NOT NULL;"
	"CREATE INDEX IF NOT EXISTS series_cold_labels ON series(labels) WHERE maxt IS NOT NULL;";

/* Adds the mint and maxt columns to a series table made before them. */
static int add_bounds_columns(sqlite3 *db)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "SELECT maxt FROM series LIMIT 0", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_finalize(st);
		return SQLITE_OK;
	}
	rc = sqlite3_exec(db, "ALTER TABLE series ADD COLUMN mint INTEGER", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "ALTER TABLE series ADD COLUMN maxt INTEGER", NULL, NULL, NULL);
	return rc;
}

static bool is_corrupt(int rc)
{
	rc &= 0xff;
	return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

static uint64_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static uint64_t db_size(struct store *s)
{
	char wal[PATH_MAX + 8];
	snprintf(wal, sizeof(wal), "%s-wal", s->db_path);
	return file_size(s->db_path) + file_size(wal);
}

#define ACC_BYTES 44

static void pack_acc(const struct tier_head *th, uint8_t *out)
{
	memcpy(out, &th->end, 8);
	memcpy(out + 8, &th->min, 8);
	memcpy(out + 16, &th->max, 8);
	memcpy(out + 24, &th->sum, 8);
	memcpy(out + 32, &th->last, 8);
	memcpy(out + 40, &th->count, 4);
}

static void unpack_acc(struct tier_head *th, const uint8_t *in)
{
	memcpy(&th->end, in, 8);
	memcpy(&th->min, in + 8, 8);
	memcpy(&th->max, in + 16, 8);
	memcpy(&th->sum, in + 24, 8);
	memcpy(&th->last, in + 32, 8);
	memcpy(&th->count, in + 40, 4);
}

/* ---- loading ----------------------------------------------------------------- */

static int load_series(struct store *s, sqlite3 *db)
{
	sqlite3_stmt *st;
	/* What left memory stays in SQLite (cold.c): ids are never given out
	 * twice, and queries reaching back to it look there. */
	int rc = sqlite3_prepare_v2(db, "SELECT max(id), max(maxt) FROM series", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW) {
		int64_t top = sqlite3_column_int64(st, 0);
		if (top > 0 && top < UINT32_MAX)
			s->next_id = (uint32_t)top + 1;
		if (sqlite3_column_type(st, 1) != SQLITE_NULL)
			s->cold_maxt = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	rc = sqlite3_prepare_v2(db, "SELECT id, labels, kind FROM series WHERE maxt IS NULL", -1,
				&st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	char *mem = malloc(STORE_MAX_LABEL_BYTES * 2);
	if (!mem) {
		sqlite3_finalize(st);
		return SQLITE_NOMEM;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint32_t id = (uint32_t)sqlite3_column_int64(st, 0);
		const char *text = (const char *)sqlite3_column_text(st, 1);
		int kind = sqlite3_column_int(st, 2);
		if (!text || strlen(text) >= STORE_MAX_LABEL_BYTES || id == 0)
			continue;
		struct store_label l[STORE_MAX_LABELS];
		int n = series_text_parse(text, l, STORE_MAX_LABELS, mem);
		if (n < 0) {
			log_warn("storage: %s: series %u has unreadable labels; skipped", s->db_path, id);
			continue;
		}
		struct lpair *pairs[STORE_MAX_LABELS];
		int m = store_intern_labels(s, l, (size_t)n, pairs);
		if (m < 0)
			continue;
		struct series *se = series_create(s, id, pairs, (size_t)m,
						  kind ? STORE_COUNTER : STORE_GAUGE);
		if (!se) {
			rc = SQLITE_NOMEM;
			break;
		}
		se->flags |= S_SAVED;
	}
	free(mem);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/*
 * Each series' bounds from its chunks on disk: the newest chunk end of every
 * tier (disk_maxt; last_t and max_t from raw chunks; the roll-ups'
 * tier_last), the start of its first raw chunk (min_t), exactly, as the
 * store's own bounds while it runs are its first and last raw samples, and,
 * in tier_first, the first roll-up bucket end of each roll-up tier, for
 * series whose raw points retention has removed (see apply_rollup_bounds).
 * SQLite answers a bare column beside one min() from the row holding it.
 */
/* The series a load put in memory, by rank: the load's arrays are indexed
 * by it, not by id, so that they follow the series in memory and not
 * every id ever given (ids only grow; those of series that left memory,
 * cold.c, are gaps). */
struct loaded {
	uint32_t *ids;           /* ascending */
	size_t n;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* id's rank among the loaded series; SIZE_MAX when it is not one. */
static size_t loaded_ix(const struct loaded *l, uint32_t id)
{
	const uint32_t *p = l->n ? bsearch(&id, l->ids, l->n, sizeof(id), cmp_u32) : NULL;
	return p ? (size_t)(p - l->ids) : SIZE_MAX;
}

static int loaded_init(struct store *s, struct loaded *l)
{
	l->n = 0;
	l->ids = malloc((s->nseries + 1) * sizeof(*l->ids));
	if (!l->ids)
		return SQLITE_NOMEM;
	for (uint32_t id = 0; l->n < s->nseries && series_next(s, &id); id++)
		l->ids[l->n++] = id;
	return SQLITE_OK;
}

static int load_bounds(struct store *s, sqlite3 *db, const struct loaded *l, int64_t *tier_last,
		       int64_t *tier_first)
{
	for (int k = 0; k < NTIERS; k++) {
		for (int q = 0; q < 2; q++) {
			char sql[160];
			snprintf(sql, sizeof(sql), q ? "SELECT series_id, mint, min(maxt) FROM %s GROUP BY series_id"
						     : "SELECT series_id, max(maxt) FROM %s GROUP BY series_id",
				 chunk_tables[k]);
			sqlite3_stmt *st;
			int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
			if (rc != SQLITE_OK)
				return rc;
			while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
				struct series *se = series_by_id(s, (uint32_t)sqlite3_column_int64(st, 0));
				if (!se)
					continue;
				size_t ix = loaded_ix(l, se->id);
				int64_t v = sqlite3_column_int64(st, 1);
				if (q && k == STORE_TIER_RAW && v < se->min_t)
					se->min_t = v;
				if (q && k != STORE_TIER_RAW)
					tier_first[ix * 2 + k - 1] = v;
				if (q)
					continue;
				if (k == STORE_TIER_RAW && v > se->max_t)
					se->max_t = v;
				if (v > se->disk_maxt[k])
					se->disk_maxt[k] = v;
				if (k == STORE_TIER_RAW && v > se->last_t)
					se->last_t = v;
				if (k != STORE_TIER_RAW && v > tier_last[ix * 2 + k - 1])
					tier_last[ix * 2 + k - 1] = v;
			}
			sqlite3_finalize(st);
			if (rc != SQLITE_DONE)
				return rc;
		}
	}
	return SQLITE_OK;
}

/*
 * After the head is loaded (min_t and max_t then hold the first and last
 * raw points kept, on disk or in the head): a roll-up bucket that ends
 * before the first summarises raw points retention has since removed, so
 * the series started within that bucket, and min_t becomes the bucket's
 * start (the finest tier that says so is the tightest); a series with no
 * raw points left ends at its last bucket. Roll-ups of raw points still
 * kept change nothing: queries read raw points there (a bucket ends up to
 * an hour after its last sample).
 */
static void apply_rollup_bounds(struct store *s, const struct loaded *l,
				const int64_t *tier_first, const int64_t *tier_last)
{
	struct series *se;
	for (uint32_t id = 0; (se = series_next(s, &id)); id++) {
		size_t ix = loaded_ix(l, id);
		bool raw = se->max_t != INT64_MIN;
		for (int k = STORE_TIER_1M; k < NTIERS; k++) {
			int64_t end = tier_first[ix * 2 + k - 1];
			if (end != INT64_MAX && end < se->min_t) {
				int64_t start = end - store_tier_width_ms((enum store_tier)k) + 1;
				if (start < se->min_t)
					se->min_t = start;
			}
			if (!raw && tier_last[ix * 2 + k - 1] > se->max_t)
				se->max_t = tier_last[ix * 2 + k - 1];
		}
	}
}

static void active_add(struct store *s, struct series *se)
{
	if (se->flags & S_ACTIVE)
		return;
	if (!active_room(s, s->nactive))
		return;
	s->active[s->nactive++] = se;
	se->flags |= S_ACTIVE;
}

/* Open chunk bytes per series and stream while the head is put together. */
struct hbuf {
	uint8_t *p;
	size_t len, cap;
};

static int hbuf_set(struct hbuf *h, size_t off, const void *data, size_t len)
{
	if (off > h->len)
		return -EINVAL;
	if (off + len > h->cap) {
		size_t ncap = off + len + 64;
		uint8_t *np = realloc(h->p, ncap);
		if (!np)
			return -ENOMEM;
		h->p = np;
		h->cap = ncap;
	}
	memcpy(h->p + off, data, len);
	h->len = off + len;
	return 0;
}

static bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;
	for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
		uint8_t b = *(*p)++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return true;
		}
	}
	return false;
}

static void put_varint(struct buf *b, uint64_t v)
{
	char tmp[10];
	size_t n = 0;
	do {
		tmp[n++] = (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	buf_add(b, tmp, n);
}

/* Applies one headlog row: entries of (series, stream, count, offset, bytes). */
static size_t apply_log(const struct loaded *l, struct hbuf *hb, const uint8_t *p,
			const uint8_t *end)
{
	size_t bad = 0;
	while (p < end) {
		uint64_t id, stream, count, off, len;
		if (!get_varint(&p, end, &id) || !get_varint(&p, end, &stream) ||
		    !get_varint(&p, end, &count) || !get_varint(&p, end, &off) ||
		    !get_varint(&p, end, &len) || len > (uint64_t)(end - p) || stream >= NTIERS)
			return bad + 1; /* a torn row cannot be: SQLite commits whole rows */
		const uint8_t *bytes = p;
		p += len;
		size_t ix = id <= UINT32_MAX ? loaded_ix(l, (uint32_t)id) : SIZE_MAX;
		if (ix == SIZE_MAX)
			continue;
		struct hbuf *h = &hb[ix * NTIERS + stream];
		if (count == 0) {
			h->len = 0;
			continue;
		}
		if (hbuf_set(h, off, bytes, len) < 0 || h->len < 4) {
			h->len = 0;
			bad++;
			continue;
		}
		h->p[2] = (uint8_t)(count & 0xff);
		h->p[3] = (uint8_t)(count >> 8);
	}
	return bad;
}

/* Accumulators are derived: the raw samples of the open bucket rebuild them. */
static void rebuild_accs(struct store *s, const struct loaded *l, const int64_t *tier_last)
{
	struct series *se;
	for (uint32_t id = 0; (se = series_next(s, &id)); id++) {
		if (se->last_t == INT64_MIN)
			continue;
		for (int k = 0; k < 2; k++) {
			int64_t w = store_tier_width_ms(STORE_TIER_1M + k);
			int64_t q = se->last_t / w;
			if (q * w < se->last_t)
				q++;
			int64_t end = q * w;
			int64_t done = tier_last[loaded_ix(l, id) * 2 + k];
			if (se->tier[k] && se->tier[k]->enc.count && se->tier[k]->enc.t_prev > done)
				done = se->tier[k]->enc.t_prev;
			if (done >= end)
				continue; /* that bucket's point is written */
			struct store_iter *it;
			if (store_iter_open(s, id, STORE_TIER_RAW, end - w + 1, se->last_t, &it) < 0)
				continue;
			struct store_point p;
			struct tier_head acc = { 0 };
			while (store_iter_next(it, &p) > 0) {
				if (store_is_stale(p.v))
					continue;
				if (!acc.count) {
					acc.min = acc.max = p.v;
				}
				if (p.v < acc.min || acc.min != acc.min)
					acc.min = p.v;
				if (p.v > acc.max || acc.max != acc.max)
					acc.max = p.v;
				acc.sum += p.v;
				acc.last = p.v;
				acc.count++;
			}
			store_iter_free(it);
			if (!acc.count || !tier_head_get(s, se, k))
				continue;
			struct tier_head *th = se->tier[k];
			th->end = end;
			th->min = acc.min;
			th->max = acc.max;
			th->sum = acc.sum;
			th->last = acc.last;
			th->count = acc.count;
			series_idle_add(s, se);
		}
	}
}

/* Puts the head back: the checkpoint's rows, then every flush logged since,
 * then the encoders resumed on those bytes. */
static int load_head(struct store *s, sqlite3 *db, const struct loaded *l, const int64_t *tier_last)
{
	struct hbuf *hb = calloc(l->n * NTIERS + 1, sizeof(*hb));
	if (!hb)
		return SQLITE_NOMEM;
	sqlite3_stmt *st;
	/* The accumulators a clean stop saved with its checkpoint. */
	uint8_t *accs = calloc(l->n + 1, 2 * ACC_BYTES);
	if (!accs) {
		free(hb);
		return SQLITE_NOMEM;
	}
	bool replayed = false;
	int rc = sqlite3_prepare_v2(db, "SELECT series_id, tier, data, acc FROM head", -1, &st, NULL);
	while (rc != SQLITE_NOMEM && st && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		size_t ix = loaded_ix(l, (uint32_t)sqlite3_column_int64(st, 0));
		int tier = sqlite3_column_int(st, 1);
		if (ix == SIZE_MAX || tier < 0 || tier >= NTIERS)
			continue;
		if (tier == 0 && sqlite3_column_bytes(st, 3) == 2 * ACC_BYTES)
			memcpy(accs + ix * 2 * ACC_BYTES, sqlite3_column_blob(st, 3), 2 * ACC_BYTES);
		size_t len = (size_t)sqlite3_column_bytes(st, 2);
		if (len && hbuf_set(&hb[ix * NTIERS + tier], 0, sqlite3_column_blob(st, 2), len) < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_OK)
		goto out;
	size_t bad = 0;
	rc = sqlite3_prepare_v2(db, "SELECT data FROM headlog ORDER BY id", -1, &st, NULL);
	while (st && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const uint8_t *p = sqlite3_column_blob(st, 0);
		bad += apply_log(l, hb, p, p + sqlite3_column_bytes(st, 0));
		/* Checkpoint at the first flush: ids of series gone since may be
		 * given out again, and their log entries must not meet them. */
		s->checkpoint_req = true;
		replayed = true;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_OK)
		goto out;
	rc = SQLITE_OK;
	struct series *se;
	for (uint32_t id = 0; (se = series_next(s, &id)); id++) {
		bool counter = se->kind == STORE_COUNTER;
		struct hbuf *h = &hb[loaded_ix(l, id) * NTIERS];
		if (h[0].len) {
			if (cenc_restore(&se->raw, &se->rv, h[0].p, h[0].len, counter) < 0) {
				bad++;
			} else {
				se->flushed[0] = (uint32_t)cenc_bytes(&se->raw);
				se->step_ms = (uint32_t)se->raw.t_delta; /* 0 for one point */
				if (se->raw.t_prev > se->last_t)
					se->last_t = se->raw.t_prev;
				if (se->raw.t_first < se->min_t)
					se->min_t = se->raw.t_first;
				if (se->raw.t_prev > se->max_t)
					se->max_t = se->raw.t_prev;
				/* Stale at the first snapshot that lacks it. */
				active_add(s, se);
			}
		}
		for (int k = 0; k < 2; k++) {
			if (!h[k + 1].len)
				continue;
			struct tier_head *th = tier_head_get(s, se, k);
			struct vstate v[5];
			if (!th || cenc_restore(&th->enc, v, h[k + 1].p, h[k + 1].len, counter) < 0) {
				bad++;
				continue;
			}
			se->flushed[k + 1] = (uint32_t)cenc_bytes(&th->enc);
			series_idle_add(s, se);
		}
	}
	if (bad)
		log_warn("storage: %s: %zu open chunks could not be put back and were dropped",
			 s->db_path, bad);
	if (replayed) {
		/* Samples came after the checkpoint: rebuild from them. */
		rebuild_accs(s, l, tier_last);
	} else {
		for (uint32_t id = 0; (se = series_next(s, &id)); id++) {
			for (int k = 0; k < 2; k++) {
				struct tier_head tmp;
				unpack_acc(&tmp, accs + (loaded_ix(l, id) * 2 + k) * ACC_BYTES);
				if (!tmp.end || !tmp.count || !tier_head_get(s, se, k))
					continue;
				struct tier_head *th = se->tier[k];
				th->end = tmp.end;
				th->min = tmp.min;
				th->max = tmp.max;
				th->sum = tmp.sum;
				th->last = tmp.last;
				th->count = tmp.count;
				series_idle_add(s, se);
			}
		}
	}
out:
	free(accs);
	for (size_t i = 0; i < l->n * NTIERS; i++)
		free(hb[i].p);
	free(hb);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Drops every series from memory (after a failed load). */
static void reset_memory(struct store *s)
{
	struct series *se;
	for (uint32_t id = 0; (se = series_next(s, &id)); id++)
		series_destroy(s, se);
	s->nactive = s->nidle = s->ndirty = s->nnew = 0;
	s->next_id = 1;
}

static int exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Opens and checks the database; loads it into memory. An SQLite code. */
static int open_db(struct store *s)
{
	int rc = sqlite3_open_v2(s->db_path, &s->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_busy_timeout(s->db, 5000);
	sqlite3_extended_result_codes(s->db, 0);
	if ((rc = exec(s->db, "PRAGMA auto_vacuum=INCREMENTAL")) != SQLITE_OK)
		return rc;
	sqlite3_stmt *st;
	if ((rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL)) != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return rc;
	/* secure_delete off: Debian builds SQLite with it on, which would write
	 * zeros over every chunk retention or a checkpoint frees. The writer's
	 * page cache 512 KiB: at 8 MiB it filled as the database grew (with
	 * container churn, issue 13) and stayed in the writer thread's malloc
	 * arena; pages it drops are read back from the OS's cache. */
	if ((rc = exec(s->db, "PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=8388608;"
			      "PRAGMA cache_size=-512; PRAGMA secure_delete=OFF")) != SQLITE_OK ||
	    (rc = exec(s->db, schema)) != SQLITE_OK ||
	    (rc = add_bounds_columns(s->db)) != SQLITE_OK ||
	    (rc = exec(s->db, cold_schema)) != SQLITE_OK)
		return rc;
	/* Big files are checked only when the last run saw corruption. */
	char mark[PATH_MAX + 16];
	snprintf(mark, sizeof(mark), "%s.check", s->db_path);
	bool marked = access(mark, F_OK) == 0;
	if (marked || file_size(s->db_path) <= QUICK_CHECK_MAX_BYTES) {
		if ((rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st, NULL)) != SQLITE_OK)
			return rc;
		rc = sqlite3_step(st);
		const char *res = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
		bool ok = res && !strcmp(res, "ok");
		sqlite3_finalize(st);
		if (rc != SQLITE_ROW)
			return rc;
		if (!ok)
			return SQLITE_CORRUPT;
		if (marked)
			unlink(mark);
	}
	if ((rc = load_series(s, s->db)) != SQLITE_OK)
		return rc;
	struct loaded l;
	if ((rc = loaded_init(s, &l)) != SQLITE_OK)
		return rc;
	int64_t *tier_last = malloc((l.n * 2 + 2) * sizeof(*tier_last));
	int64_t *tier_first = malloc((l.n * 2 + 2) * sizeof(*tier_first));
	if (!tier_last || !tier_first) {
		free(tier_last);
		free(tier_first);
		free(l.ids);
		return SQLITE_NOMEM;
	}
	for (size_t i = 0; i < l.n * 2 + 2; i++) {
		tier_last[i] = INT64_MIN;
		tier_first[i] = INT64_MAX;
	}
	if ((rc = load_bounds(s, s->db, &l, tier_last, tier_first)) == SQLITE_OK)
		rc = load_head(s, s->db, &l, tier_last);
	if (rc == SQLITE_OK)
		apply_rollup_bounds(s, &l, tier_first, tier_last);
	free(tier_first);
	/* Small roll-up chunks sealed before a stop are merged by the first pass. */
	struct series *se;
	for (uint32_t id = 0; rc == SQLITE_OK && (se = series_next(s, &id)); id++) {
		size_t ix = loaded_ix(&l, id);
		if (tier_last[ix * 2] != INT64_MIN || tier_last[ix * 2 + 1] != INT64_MIN)
			se->flags |= S_COMPACT;
	}
	free(tier_last);
	free(l.ids);
	if (rc != SQLITE_OK)
		return rc;
	static const char *const ins[NTIERS] = {
		"INSERT INTO chunks(series_id, mint, maxt, data) VALUES(?,?,?,?)",
		"INSERT INTO chunks_1m(series_id, mint, maxt, data) VALUES(?,?,?,?)",
		"INSERT INTO chunks_1h(series_id, mint, maxt, data) VALUES(?,?,?,?)",
	};
	for (int k = 0; k < NTIERS; k++)
		if ((rc = sqlite3_prepare_v2(s->db, ins[k], -1, &s->st_chunk[k], NULL)) != SQLITE_OK)
			return rc;
	if ((rc = sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO series(id, labels, kind) "
				     "VALUES(?,?,?)", -1, &s->st_series, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO head(series_id, tier, data, acc) "
				     "VALUES(?,?,?,?)", -1, &s->st_head, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(s->db, "DELETE FROM head WHERE series_id=? AND tier=?", -1,
				     &s->st_head_del, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(s->db, "INSERT INTO headlog(data) VALUES(?)", -1,
				     &s->st_log, NULL)) != SQLITE_OK)
		return rc;
	return SQLITE_OK;
}

static void close_db(struct store *s)
{
	for (int k = 0; k < NTIERS; k++) {
		sqlite3_finalize(s->st_chunk[k]);
		s->st_chunk[k] = NULL;
	}
	sqlite3_finalize(s->st_series);
	sqlite3_finalize(s->st_head);
	sqlite3_finalize(s->st_head_del);
	sqlite3_finalize(s->st_log);
	s->st_series = s->st_head = s->st_head_del = s->st_log = NULL;
	sqlite3_close(s->db);
	s->db = NULL;
}

static void reader_free(struct reader *r);

static void readers_close(struct store *s)
{
	pthread_mutex_lock(&s->rmu);
	for (int m = 0; m < 2; m++) {
		for (size_t i = 0; i < s->nreaders[m]; i++)
			reader_free(s->readers[m][i]);
		s->nreaders[m] = 0;
	}
	pthread_mutex_unlock(&s->rmu);
}

static void move_aside(struct store *s, const char *why)
{
	char to[PATH_MAX + 64];
	long long ms = (long long)now_ms();
	snprintf(to, sizeof(to), "%s.corrupt-%lld", s->db_path, ms);
	if (rename(s->db_path, to) < 0) {
		log_error("storage: %s is unusable (%s) and cannot be moved aside: %s; removing it",
			  s->db_path, why, strerror(errno));
		unlink(s->db_path);
	}
	static const char *const sfx[] = { "-wal", "-shm" };
	for (size_t i = 0; i < 2; i++) {
		char from[PATH_MAX + 8], dst[PATH_MAX + 72];
		snprintf(from, sizeof(from), "%s%s", s->db_path, sfx[i]);
		snprintf(dst, sizeof(dst), "%s%s", to, sfx[i]);
		if (rename(from, dst) < 0 && errno != ENOENT)
			unlink(from);
	}
	log_warn("storage: %s is not a usable database (%s); moved it to %s and starting with an "
		 "empty store", s->db_path, why, to);
}

int db_open(struct store *s, char *err, size_t errsize)
{
	*err = '\0';
	char lock[PATH_MAX + 16];
	if (snprintf(s->db_path, sizeof(s->db_path), "%s/%s", s->cfg.dir, STORE_DB_NAME) >=
	    (int)sizeof(s->db_path)) {
		snprintf(err, errsize, "%s: path too long", s->cfg.dir);
		return -ENAMETOOLONG;
	}
	snprintf(lock, sizeof(lock), "%s/monitor.lock", s->cfg.dir);
	s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (s->lock_fd < 0) {
		int e = errno;
		snprintf(err, errsize, "%s: %s", lock, strerror(e));
		return -e;
	}
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		snprintf(err, errsize, "%s: %s", s->cfg.dir,
			 e == EWOULDBLOCK ? "in use by another monitor process (a running agent or "
					    "import); stop it first" : strerror(e));
		return e == EWOULDBLOCK ? -EBUSY : -e;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		int rc = open_db(s);
		if (rc == SQLITE_OK)
			return 0;
		const char *msg = s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
		char why[256];
		snprintf(why, sizeof(why), "%s", msg);
		close_db(s);
		readers_close(s); /* rebuilding accumulators may have opened some */
		reset_memory(s);
		lindex_fini(&s->idx);
		lindex_init(&s->idx);
		if (!is_corrupt(rc) || attempt || s->cfg.read_only) {
			snprintf(err, errsize, "%s: %s", s->db_path, why);
			return (rc & 0xff) == SQLITE_FULL ? -ENOSPC :
			       (rc & 0xff) == SQLITE_CANTOPEN ? -EACCES : -EIO;
		}
		move_aside(s, why);
	}
	return -EIO;
}

void db_close(struct store *s)
{
	close_db(s);
	readers_close(s);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	s->lock_fd = -1;
}

/* ---- the writer --------------------------------------------------------------- */

/* One open chunk as a flush writes it: the bytes from off on (a delta for
 * the log, everything for a checkpoint) and what it held then. */
struct head_image {
	uint32_t id;
	uint8_t stream;          /* 0 raw, 1 1m, 2 1h */
	uint16_t count;
	uint32_t off, len_now;
	int64_t mint;
	size_t data;             /* len_now - off bytes at this offset in the flush's bytes */
	bool has_acc;            /* checkpoint, raw stream: the accumulators */
	uint8_t acc[2 * ACC_BYTES];
};

struct new_series {
	uint32_t id;
	int kind;
	size_t labels;           /* offset of the text in the flush's bytes */
};

/* The flush's bytes at off ("" before any). */
static const char *fl_at(const struct buf *bytes, size_t off)
{
	return bytes->data ? bytes->data + off : "";
}

static int step_reset(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static void enforce_cap(struct store *s)
{
	while (s->pending_bytes > STORE_PENDING_CAP_BYTES && s->pq) {
		struct pchunk *c = s->pq;
		s->pq = c->next;
		if (!s->pq)
			s->pq_tail = NULL;
		struct series *se = series_by_id(s, c->series);
		if (se && se->pend == c) {
			se->pend = c->snext;
			if (!se->pend)
				se->pend_tail = NULL;
		}
		s->pending_bytes -= c->len + sizeof(*c);
		free(c->data);
		free(c);
		__atomic_add_fetch(&s->chunks_dropped, 1, __ATOMIC_RELAXED);
	}
}

static const struct cenc *stream_enc(const struct series *se, int k)
{
	if (k == 0)
		return &se->raw;
	return se->tier[k - 1] ? &se->tier[k - 1]->enc : NULL;
}

/* Copies one stream of a series into an image (under the lock). full: all
 * its bytes (checkpoint); else what it grew by since the last flush. */
static bool image_of(struct buf *bytes, struct series *se, int k, bool full,
		     struct head_image *img)
{
	const struct cenc *e = stream_enc(se, k);
	memset(img, 0, sizeof(*img));
	img->id = se->id;
	img->stream = (uint8_t)k;
	if (!e || !e->count)
		return true; /* empty: the chunk was sealed or never began */
	size_t len = cenc_bytes(e);
	/* The last byte written may have been partial: send it again. */
	size_t off = full || !se->flushed[k] ? 0 : se->flushed[k] - 1;
	if (off > len)
		off = 0;
	img->count = e->count;
	img->off = (uint32_t)off;
	img->len_now = (uint32_t)len;
	img->mint = e->t_first;
	img->data = bytes->len;
	buf_add(bytes, e->buf + off, len - off);
	return !bytes->overflow;
}

/* One flush: takes the work out under the lock, writes it in one
 * transaction (sealed chunks, new series, and either one headlog row with
 * what the open chunks grew by or, for a checkpoint, every open chunk), and
 * gives it back on failure. Returns 0 or -errno. */
static int do_flush(struct store *s, bool checkpoint)
{
	int64_t t0 = mono_ns();
	pthread_rwlock_wrlock(&s->lock);
	struct pchunk *list = s->pq, *list_tail = s->pq_tail;
	s->pq = s->pq_tail = NULL;
	size_t nnew = s->nnew;
	/* Images: the dirty streams, or for a checkpoint every open stream. */
	size_t cap = checkpoint ? (size_t)s->nseries * NTIERS + 1 : s->ndirty * NTIERS + 1;
	/* The work (arrays of up to ~1 MB, thousands of small copies) goes in
	 * mapped buffers unmapped after the flush: malloc'd and freed each
	 * flush, it raised glibc's dynamic mmap threshold, and from then on
	 * came from the writer's arena among SQLite's allocations and
	 * fragmented it (RSS grew with container churn, issue 13). */
	struct buf fl_new, fl_img, bytes, log;
	buf_init_mapped(&fl_new, SIZE_MAX / 2);
	buf_init_mapped(&fl_img, SIZE_MAX / 2);
	buf_init_mapped(&bytes, SIZE_MAX / 2);
	buf_init_mapped(&log, 1u << 30);
	if (buf_reserve(&fl_new, (nnew + 1) * sizeof(struct new_series)) ||
	    buf_reserve(&fl_img, cap * sizeof(struct head_image))) {
		s->pq = list;
		s->pq_tail = list_tail;
		pthread_rwlock_unlock(&s->lock);
		buf_fini(&fl_new);
		buf_fini(&fl_img);
		return -ENOMEM;
	}
	struct new_series *ns = (struct new_series *)(void *)fl_new.data;
	struct head_image *img = (struct head_image *)(void *)fl_img.data;
	size_t k = 0;
	for (size_t i = 0; i < nnew; i++) {
		struct series *se = series_by_id(s, s->newser[i]);
		if (!se)
			continue;
		char text[STORE_MAX_LABEL_BYTES * 2];
		series_format(se, text, sizeof(text));
		ns[k].id = se->id;
		ns[k].kind = se->kind;
		ns[k].labels = bytes.len;
		buf_add(&bytes, text, strlen(text) + 1);
		k++;
	}
	nnew = k;
	s->nnew = 0;
	size_t nimg = 0;
	bool oom = false;
	if (checkpoint) {
		struct series *se;
		for (uint32_t id = 0; (se = series_next(s, &id)); id++) {
			bool acc = tier_acc_open(se->tier[0]) || tier_acc_open(se->tier[1]);
			for (int t = 0; t < NTIERS; t++) {
				const struct cenc *e = stream_enc(se, t);
				if (!((e && e->count) || (t == 0 && acc)) || nimg >= cap)
					continue;
				struct head_image *im = &img[nimg++];
				oom |= !image_of(&bytes, se, t, true, im);
				if (t == 0 && acc) {
					im->has_acc = true;
					for (int j = 0; j < 2; j++)
						if (tier_acc_open(se->tier[j]))
							pack_acc(se->tier[j], im->acc + j * ACC_BYTES);
				}
			}
		}
	}
	for (size_t i = 0; i < s->ndirty; i++) {
		struct series *se = s->dirty[i];
		bool dirty[NTIERS] = { true, se->flags & S_DIRTY_1M, se->flags & S_DIRTY_1H };
		se->flags &= (uint8_t)~(S_DIRTY | S_DIRTY_1M | S_DIRTY_1H);
		for (int t = 0; !checkpoint && t < NTIERS; t++)
			if (dirty[t] && nimg < cap)
				oom |= !image_of(&bytes, se, t, false, &img[nimg++]);
	}
	s->ndirty = 0;
	pthread_rwlock_unlock(&s->lock);

	oom |= bytes.overflow; /* the labels' texts */
	size_t nchunks = 0;
	int rc = oom ? SQLITE_NOMEM : exec(s->db, "BEGIN IMMEDIATE");
	for (size_t i = 0; rc == SQLITE_OK && i < nnew; i++) {
		sqlite3_bind_int64(s->st_series, 1, ns[i].id);
		sqlite3_bind_text(s->st_series, 2, fl_at(&bytes, ns[i].labels), -1, SQLITE_STATIC);
		sqlite3_bind_int(s->st_series, 3, ns[i].kind);
		rc = step_reset(s->st_series);
	}
	for (struct pchunk *c = list; rc == SQLITE_OK && c; c = c->next) {
		if (!c->len) { /* a resumed roll-up bucket (store.c pending_trim) */
			struct series *se = series_by_id(s, c->series);
			rc = db_trim_tier(s, c->tier, c->series, c->mint,
					  se && se->kind == STORE_COUNTER);
			continue;
		}
		sqlite3_stmt *st = s->st_chunk[c->tier];
		sqlite3_bind_int64(st, 1, c->series);
		sqlite3_bind_int64(st, 2, c->mint);
		sqlite3_bind_int64(st, 3, c->maxt);
		sqlite3_bind_blob(st, 4, c->data, (int)c->len, SQLITE_STATIC);
		rc = step_reset(st);
		nchunks++;
	}
	if (rc == SQLITE_OK && checkpoint) {
		rc = exec(s->db, "DELETE FROM head; DELETE FROM headlog");
		for (size_t i = 0; rc == SQLITE_OK && i < nimg; i++) {
			sqlite3_bind_int64(s->st_head, 1, img[i].id);
			sqlite3_bind_int(s->st_head, 2, img[i].stream);
			sqlite3_bind_blob(s->st_head, 3, fl_at(&bytes, img[i].data),
					  (int)img[i].len_now, SQLITE_STATIC);
			if (img[i].has_acc)
				sqlite3_bind_blob(s->st_head, 4, img[i].acc, 2 * ACC_BYTES, SQLITE_STATIC);
			else
				sqlite3_bind_null(s->st_head, 4);
			rc = step_reset(s->st_head);
		}
	} else if (rc == SQLITE_OK && nimg) {
		for (size_t i = 0; i < nimg; i++) {
			put_varint(&log, img[i].id);
			put_varint(&log, img[i].stream);
			put_varint(&log, img[i].count);
			put_varint(&log, img[i].off);
			put_varint(&log, img[i].count ? img[i].len_now - img[i].off : 0);
			if (img[i].count)
				buf_add(&log, fl_at(&bytes, img[i].data), img[i].len_now - img[i].off);
		}
		if (log.overflow) {
			rc = SQLITE_NOMEM;
		} else {
			sqlite3_bind_blob(s->st_log, 1, log.data, (int)log.len, SQLITE_STATIC);
			rc = step_reset(s->st_log);
		}
	}
	if (rc == SQLITE_OK)
		rc = exec(s->db, "COMMIT");
	const char *errmsg = rc == SQLITE_OK ? NULL : oom ? "out of memory" : sqlite3_errmsg(s->db);
	char why[256] = "";
	if (errmsg)
		snprintf(why, sizeof(why), "%s", errmsg);
	if (rc != SQLITE_OK && !oom)
		exec(s->db, "ROLLBACK");

	pthread_rwlock_wrlock(&s->lock);
	if (rc == SQLITE_OK) {
		while (list) {
			struct pchunk *c = list;
			list = c->next;
			struct series *se = series_by_id(s, c->series);
			if (se && se->pend == c) {
				se->pend = c->snext;
				if (!se->pend)
					se->pend_tail = NULL;
			}
			if (se && c->len && c->maxt > se->disk_maxt[c->tier]) {
				se->disk_maxt[c->tier] = c->maxt;
				if (c->tier == STORE_TIER_RAW) {
					se->disk_last_t = c->maxt;
					se->disk_last_v = c->last_v;
				}
			}
			s->pending_bytes -= c->len + sizeof(*c);
			free(c->data);
			free(c);
		}
		for (size_t i = 0; i < nnew; i++) {
			struct series *se = series_by_id(s, ns[i].id);
			if (se)
				se->flags |= S_SAVED;
		}
		/* What is on disk now, for chunks still the ones written. */
		for (size_t i = 0; i < nimg; i++) {
			struct series *se = series_by_id(s, img[i].id);
			const struct cenc *e = se ? stream_enc(se, img[i].stream) : NULL;
			if (se && e && e->count && img[i].count && e->t_first == img[i].mint)
				se->flushed[img[i].stream] = img[i].len_now;
		}
	} else {
		/* Give everything back, older work first, and try again later. */
		if (list) {
			list_tail->next = s->pq;
			if (!s->pq)
				s->pq_tail = list_tail;
			s->pq = list;
		}
		for (size_t i = 0; i < nnew; i++)
			newser_push(s, ns[i].id);
		for (size_t i = 0; i < nimg; i++) {
			struct series *se = series_by_id(s, img[i].id);
			if (!se)
				continue;
			if (img[i].stream == 0)
				head_mark_dirty(s, se);
			else
				head_mark_tier(s, se, img[i].stream - 1);
		}
		if (checkpoint)
			s->checkpoint_req = true;
		enforce_cap(s);
	}
	uint64_t pending = s->pending_bytes;
	pthread_rwlock_unlock(&s->lock);
	buf_fini(&fl_new);
	buf_fini(&fl_img);
	buf_fini(&bytes);
	buf_fini(&log);


	pthread_mutex_lock(&s->wmu);
	s->last_flush_s = (double)(mono_ns() - t0) / 1e9;
	if (rc == SQLITE_OK) {
		s->chunks_written += nchunks;
		if (!s->write_ok)
			log_recovered(&s->werr, "storage: writing to the database");
		s->write_ok = true;
	} else {
		s->write_errors++;
		s->write_ok = false;
	}
	pthread_mutex_unlock(&s->wmu);
	if (rc != SQLITE_OK && is_corrupt(rc)) {
		/* Have the next start check the whole file (and move it aside). */
		char mark[PATH_MAX + 16];
		snprintf(mark, sizeof(mark), "%s.check", s->db_path);
		int fd = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
		if (fd >= 0)
			close(fd);
	}
	if (rc != SQLITE_OK) {
		log_limited(&s->werr, LOG_ERROR,
			    "storage: %s: cannot write (%s); collection goes on, %.1f MB kept in "
			    "memory (at most %u MB) and retried every flush",
			    s->db_path, why, (double)pending / 1e6, STORE_PENDING_CAP_BYTES >> 20);
		return (rc & 0xff) == SQLITE_FULL ? -ENOSPC : -EIO;
	}
	return 0;
}

/* ---- retention --------------------------------------------------------------- */

/* The ids of every series with a row (in memory or not), ascending;
 * series without one have nothing on disk yet. NULL on failure. */
static uint32_t *live_ids(struct store *s, size_t *n)
{
	*n = 0;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, "SELECT id FROM series ORDER BY id", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	uint32_t *ids = NULL;
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 1024;
			uint32_t *ni = realloc(ids, cap * sizeof(*ids));
			if (!ni)
				break;
			ids = ni;
		}
		ids[(*n)++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(ids);
		*n = 0;
		return NULL;
	}
	return ids ? ids : malloc(sizeof(*ids));
}

/* Deletes chunks of a tier ending before cutoff, series by series through
 * the (series_id, maxt) index. Returns the number deleted or -1. */
static int64_t delete_before(struct store *s, int tier, int64_t cutoff, const uint32_t *ids,
			     size_t n)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE series_id=? AND maxt<?", chunk_tables[tier]);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	int64_t total = 0;
	int rc = exec(s->db, "BEGIN IMMEDIATE");
	for (size_t i = 0; rc == SQLITE_OK && i < n; i++) {
		sqlite3_bind_int64(st, 1, ids[i]);
		sqlite3_bind_int64(st, 2, cutoff);
		rc = step_reset(st);
		total += sqlite3_changes(s->db);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_OK)
		rc = exec(s->db, "COMMIT");
	if (rc != SQLITE_OK) {
		exec(s->db, "ROLLBACK");
		return -1;
	}
	return total;
}

static int64_t oldest_maxt(struct store *s, int tier)
{
	char sql[96];
	snprintf(sql, sizeof(sql), "SELECT min(maxt) FROM %s", chunk_tables[tier]);
	sqlite3_stmt *st;
	int64_t v = INT64_MAX;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
			v = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	return v;
}

static void shrink(struct store *s)
{
	exec(s->db, "PRAGMA incremental_vacuum");
	exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)");
}

/* Removes series that have nothing left: no open data and no chunks. */
static void expire_series(struct store *s)
{
	size_t n;
	uint32_t *ids = live_ids(s, &n);
	if (!ids)
		return;
	size_t k = 0;
	pthread_rwlock_rdlock(&s->lock);
	for (size_t i = 0; i < n; i++) {
		struct series *se = series_by_id(s, ids[i]);
		/* In memory with nothing open, or only in SQLite (cold.c). */
		if (!se || (!(se->flags & (S_ACTIVE | S_DIRTY | S_IDLE)) && !se->raw.count &&
			    !se->pend && !se->tier[0] && !se->tier[1]))
			ids[k++] = ids[i];
	}
	pthread_rwlock_unlock(&s->lock);
	sqlite3_stmt *probe[NTIERS] = { 0 }, *del = NULL, *delh = NULL;
	bool ok = true;
	for (int t = 0; t < NTIERS; t++) {
		char sql[96];
		snprintf(sql, sizeof(sql), "SELECT 1 FROM %s WHERE series_id=? LIMIT 1", chunk_tables[t]);
		ok = ok && sqlite3_prepare_v2(s->db, sql, -1, &probe[t], NULL) == SQLITE_OK;
	}
	ok = ok && sqlite3_prepare_v2(s->db, "DELETE FROM series WHERE id=?", -1, &del, NULL) == SQLITE_OK;
	ok = ok && sqlite3_prepare_v2(s->db, "DELETE FROM head WHERE series_id=?", -1, &delh, NULL) == SQLITE_OK;
	size_t m = 0;
	if (ok && exec(s->db, "BEGIN IMMEDIATE") == SQLITE_OK) {
		for (size_t i = 0; i < k; i++) {
			bool any = false;
			for (int t = 0; t < NTIERS && !any; t++) {
				sqlite3_bind_int64(probe[t], 1, ids[i]);
				any = sqlite3_step(probe[t]) == SQLITE_ROW;
				sqlite3_reset(probe[t]);
			}
			if (any)
				continue;
			sqlite3_bind_int64(del, 1, ids[i]);
			sqlite3_bind_int64(delh, 1, ids[i]);
			if (step_reset(del) != SQLITE_OK || step_reset(delh) != SQLITE_OK)
				break;
			ids[m++] = ids[i];
		}
		if (exec(s->db, "COMMIT") != SQLITE_OK) {
			exec(s->db, "ROLLBACK");
			m = 0;
		}
	}
	for (int t = 0; t < NTIERS; t++)
		sqlite3_finalize(probe[t]);
	sqlite3_finalize(del);
	sqlite3_finalize(delh);
	if (m) {
		pthread_rwlock_wrlock(&s->lock);
		for (size_t i = 0; i < m; i++) {
			struct series *se = series_by_id(s, ids[i]);
			/* It may have come back since: then its row is written again. */
			if (se && !(se->flags & (S_ACTIVE | S_DIRTY | S_IDLE)) && !se->raw.count &&
			    !se->pend && !se->tier[0] && !se->tier[1]) {
				series_destroy(s, se);
			} else if (se) {
				/* It came back meanwhile: write its row again. */
				se->flags &= (uint8_t)~S_SAVED;
				newser_push(s, se->id);
				head_mark_dirty(s, se);
			}
		}
		pthread_rwlock_unlock(&s->lock);
		log_debug("storage: %zu series expired", m);
	}
	free(ids);
}

/* Merges one series' runs of adjacent small chunks of a roll-up tier into
 * chunks of up to STORE_TIER_CHUNK_POINTS points. Returns the rows removed. */
/* Rewrites chunk row `row` of tier with its points before from_t only (or
 * deletes it when none are left). An SQLite code. */
static int trim_row(struct store *s, int tier, int64_t row, const void *data, size_t len,
		    int64_t from_t, bool counter)
{
	struct cdec d;
	if (cdec_init(&d, data, len) < 0 || d.ncols != 5)
		return SQLITE_OK; /* unreadable: reads skip it anyway */
	struct cenc e;
	struct vstate v[CODEC_MAX_COLS];
	double vals[CODEC_MAX_COLS];
	int64_t t;
	int rc = SQLITE_OK;
	cenc_init(&e, 5);
	while (rc == SQLITE_OK && cdec_next(&d, &t, vals) > 0 && t < from_t)
		rc = cenc_append(&e, v, t, vals, counter) == 0 ? SQLITE_OK : SQLITE_NOMEM;
	char sql[160];
	if (e.count)
		snprintf(sql, sizeof(sql), "UPDATE %s SET maxt=?2, data=?3 WHERE id=?1",
			 chunk_tables[tier]);
	else
		snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id=?1", chunk_tables[tier]);
	sqlite3_stmt *st = NULL;
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, row);
		if (e.count) {
			sqlite3_bind_int64(st, 2, e.t_prev);
			sqlite3_bind_blob(st, 3, e.buf, (int)cenc_bytes(&e), SQLITE_STATIC);
		}
		rc = step_reset(st);
	}
	sqlite3_finalize(st);
	cenc_free(&e);
	return rc;
}

int db_trim_tier(struct store *s, int tier, uint32_t id, int64_t from_t, bool counter)
{
	char sql[160];
	snprintf(sql, sizeof(sql), "SELECT id, data FROM %s WHERE series_id=? AND maxt>=?",
		 chunk_tables[tier]);
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, from_t);
	/* The rows first (one, or a few at most), then the changes, so that
	 * the select never runs over rows it changed. */
	struct { int64_t row; void *data; size_t len; } rows[8];
	size_t n = 0;
	int sr;
	while (n < ARRAY_LEN(rows) && (sr = sqlite3_step(st)) == SQLITE_ROW) {
		size_t len = (size_t)sqlite3_column_bytes(st, 1);
		void *data = malloc(len ? len : 1);
		if (!data) {
			rc = SQLITE_NOMEM;
			break;
		}
		memcpy(data, sqlite3_column_blob(st, 1), len);
		rows[n++] = (typeof(rows[0])){ sqlite3_column_int64(st, 0), data, len };
	}
	if (rc == SQLITE_OK && n < ARRAY_LEN(rows) && sr != SQLITE_DONE)
		rc = sqlite3_errcode(s->db);
	sqlite3_finalize(st);
	for (size_t i = 0; i < n; i++) {
		if (rc == SQLITE_OK)
			rc = trim_row(s, tier, rows[i].row, rows[i].data, rows[i].len, from_t, counter);
		free(rows[i].data);
	}
	return rc;
}

int db_compact_series(struct store *s, int tier, uint32_t id, bool counter)
{
	char sql[160];
	snprintf(sql, sizeof(sql), "SELECT id, data FROM %s WHERE series_id=? ORDER BY maxt",
		 chunk_tables[tier]);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_int64(st, 1, id);
	struct row {
		int64_t id;
		int64_t mint, maxt;
		uint16_t count;
		uint8_t *data;
		size_t len;
	} *rows = NULL;
	size_t n = 0, cap = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const void *d = sqlite3_column_blob(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1);
		struct row r = { sqlite3_column_int64(st, 0), 0, 0, 0, NULL, len };
		if (cdec_bounds(d, len, &r.mint, &r.maxt, &r.count) < 0 ||
		    r.count >= STORE_TIER_CHUNK_POINTS)
			r.count = UINT16_MAX; /* full or unreadable: a run ends here */
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			struct row *nr = realloc(rows, cap * sizeof(*rows));
			if (!nr)
				break;
			rows = nr;
		}
		if (r.count != UINT16_MAX && (r.data = malloc(len)))
			memcpy(r.data, d, len);
		rows[n++] = r;
	}
	sqlite3_finalize(st);
	int removed = 0;
	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id=?", chunk_tables[tier]);
	sqlite3_stmt *del = NULL;
	sqlite3_prepare_v2(s->db, sql, -1, &del, NULL);
	for (size_t i = 0; del && i < n;) {
		/* A run: readable, in order, fitting in one chunk together. */
		size_t j = i, points = 0;
		while (j < n && rows[j].data && points + rows[j].count <= STORE_TIER_CHUNK_POINTS &&
		       (j == i || rows[j].mint > rows[j - 1].maxt)) {
			points += rows[j].count;
			j++;
		}
		if (j - i < 2) {
			i = j > i ? j : i + 1;
			continue;
		}
		struct cenc e;
		struct vstate v[CODEC_MAX_COLS];
		cenc_init(&e, 5);
		bool ok = true;
		for (size_t k = i; k < j && ok; k++) {
			struct cdec d;
			int64_t t;
			double vals[CODEC_MAX_COLS];
			ok = cdec_init(&d, rows[k].data, rows[k].len) == 0 && d.ncols == 5;
			while (ok && cdec_next(&d, &t, vals) > 0)
				ok = cenc_append(&e, v, t, vals, counter) == 0;
		}
		if (ok && e.count) {
			sqlite3_stmt *ins = s->st_chunk[tier];
			sqlite3_bind_int64(ins, 1, id);
			sqlite3_bind_int64(ins, 2, e.t_first);
			sqlite3_bind_int64(ins, 3, e.t_prev);
			sqlite3_bind_blob(ins, 4, e.buf, (int)cenc_bytes(&e), SQLITE_STATIC);
			ok = step_reset(ins) == SQLITE_OK;
			for (size_t k = i; k < j && ok; k++) {
				sqlite3_bind_int64(del, 1, rows[k].id);
				ok = step_reset(del) == SQLITE_OK;
				removed++;
			}
		}
		cenc_free(&e);
		i = j;
	}
	sqlite3_finalize(del);
	for (size_t i = 0; i < n; i++)
		free(rows[i].data);
	free(rows);
	return removed;
}

/* Merges the small roll-up chunks of the series that sealed some. */
static void compact(struct store *s)
{
	pthread_rwlock_wrlock(&s->lock);
	size_t n = 0;
	uint32_t *ids = malloc((s->nseries + 1) * sizeof(*ids));
	bool *counter = malloc((s->nseries + 1) * sizeof(*counter));
	struct series *se;
	for (uint32_t id = 0; ids && counter && (se = series_next(s, &id)); id++) {
		/* Only chunks already written: pending ones wait for the next pass. */
		if ((se->flags & S_COMPACT) && !se->pend) {
			se->flags &= (uint8_t)~S_COMPACT;
			counter[n] = se->kind == STORE_COUNTER;
			ids[n++] = id;
		}
	}
	pthread_rwlock_unlock(&s->lock);
	if (n && exec(s->db, "BEGIN IMMEDIATE") == SQLITE_OK) {
		for (size_t i = 0; i < n; i++)
			for (int t = STORE_TIER_1M; t < NTIERS; t++)
				db_compact_series(s, t, ids[i], counter[i]);
		if (exec(s->db, "COMMIT") != SQLITE_OK)
			exec(s->db, "ROLLBACK");
	}
	free(ids);
	free(counter);
}

static void do_retention(struct store *s, int64_t now)
{
	compact(s);
	size_t n;
	uint32_t *ids = live_ids(s, &n);
	if (!ids)
		return;
	int64_t deleted = 0;
	for (int t = 0; t < NTIERS; t++) {
		if (s->cfg.retention_ms[t] <= 0)
			continue;
		int64_t d = delete_before(s, t, now - s->cfg.retention_ms[t], ids, n);
		if (d > 0)
			deleted += d;
	}
	if (deleted)
		shrink(s);
	/* By size: the oldest raw data first (keeping its last hour), then the
	 * oldest 1 m roll-ups (keeping a day), then 1 h roll-ups, then the rest. */
	static const int order[] = { STORE_TIER_RAW, STORE_TIER_1M, STORE_TIER_1H, STORE_TIER_RAW,
				     STORE_TIER_1M };
	static const int64_t keep_ms[] = { 3600000, 86400000, 0, 0, 0 };
	for (size_t step = 0; s->cfg.max_size_bytes && step < ARRAY_LEN(order); step++) {
		int t = order[step];
		for (int round = 0; round < 16 && db_size(s) > s->cfg.max_size_bytes; round++) {
			int64_t oldest = oldest_maxt(s, t);
			int64_t limit = now - keep_ms[step];
			if (oldest == INT64_MAX || oldest >= limit)
				break;
			int64_t cut = oldest + (limit - oldest) / 8 + 1;
			int64_t d = delete_before(s, t, cut, ids, n);
			if (d <= 0)
				break;
			deleted += d;
			shrink(s);
		}
	}
	free(ids);
	pthread_mutex_lock(&s->wmu);
	s->retention_deleted += (uint64_t)deleted;
	pthread_mutex_unlock(&s->wmu);
	expire_series(s);
	if (deleted)
		log_debug("storage: retention removed %lld chunks", (long long)deleted);
}

static void *writer_main(void *arg)
{
	struct store *s = arg;
	s->last_retention_ms = s->last_checkpoint_ms = now_ms();
	pthread_mutex_lock(&s->wmu);
	while (!s->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ms = s->cfg.flush_interval_ms;
		ts.tv_sec += ms / 1000;
		ts.tv_nsec += (ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		while (!s->stop && s->flush_req == s->flush_done) {
			if (pthread_cond_timedwait(&s->wcond, &s->wmu, &ts) != 0)
				break;
		}
		if (s->stop)
			break;
		uint64_t req = s->flush_req;
		int64_t rnow = s->retention_now;
		s->retention_now = 0;
		pthread_mutex_unlock(&s->wmu);

		int64_t now = now_ms();
		bool ckpt = s->checkpoint_req || now - s->last_checkpoint_ms >= STORE_CHECKPOINT_MS;
		int rc = do_flush(s, ckpt);
		if (ckpt && rc == 0) {
			s->checkpoint_req = false;
			s->last_checkpoint_ms = now;
		}
		if (rc == 0)
			cold_evict(s);
		if (rnow || now - s->last_retention_ms >= s->cfg.retention_interval_ms) {
			do_retention(s, rnow ? rnow : now);
			s->last_retention_ms = now;
			if (rnow && rc == 0)
				rc = do_flush(s, false);
		}
		uint64_t size = db_size(s);

		pthread_mutex_lock(&s->wmu);
		s->db_bytes = size;
		s->flush_rc = rc;
		if (req > s->flush_done)
			s->flush_done = req;
		pthread_cond_broadcast(&s->wdone);
	}
	pthread_mutex_unlock(&s->wmu);
	return NULL;
}

int db_start_writer(struct store *s)
{
	int rc = pthread_create(&s->writer, NULL, writer_main, s);
	if (rc)
		return -rc;
	s->writer_started = true;
	return 0;
}

void db_stop_writer(struct store *s)
{
	if (!s->writer_started)
		return;
	pthread_mutex_lock(&s->wmu);
	s->stop = true;
	pthread_cond_broadcast(&s->wcond);
	pthread_mutex_unlock(&s->wmu);
	pthread_join(s->writer, NULL);
	s->writer_started = false;
}

static int request(struct store *s, int64_t retention_now, bool checkpoint)
{
	if (!s || !s->writer_started)
		return -EINVAL;
	pthread_mutex_lock(&s->wmu);
	if (checkpoint)
		s->checkpoint_req = true;
	if (retention_now)
		s->retention_now = retention_now;
	uint64_t my = ++s->flush_req;
	pthread_cond_broadcast(&s->wcond);
	while (s->flush_done < my)
		pthread_cond_wait(&s->wdone, &s->wmu);
	int rc = s->flush_rc;
	pthread_mutex_unlock(&s->wmu);
	return rc;
}

int store_flush(struct store *s)
{
	return request(s, 0, false);
}

int db_checkpoint(struct store *s)
{
	return request(s, 0, true);
}

int store_retention_run(struct store *s, int64_t now_ms_)
{
	return request(s, now_ms_ ? now_ms_ : now_ms(), false);
}

/* ---- read connections ------------------------------------------------------------ */

static void reader_free(struct reader *r)
{
	if (!r)
		return;
	for (int t = 0; t < NTIERS; t++)
		sqlite3_finalize(r->chunks[t]);
	sqlite3_finalize(r->cold_find);
	sqlite3_finalize(r->cold_id);
	sqlite3_finalize(r->cold_range);
	sqlite3_close(r->db);
	free(r);
}

struct reader *db_reader_get(struct store *s, bool mapped)
{
	pthread_mutex_lock(&s->rmu);
	size_t *n = &s->nreaders[mapped];
	struct reader *r = *n ? s->readers[mapped][--*n] : NULL;
	pthread_mutex_unlock(&s->rmu);
	if (r)
		return r;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->mapped = mapped;
	int rc = sqlite3_open_v2(s->db_path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
				 NULL);
	for (int t = 0; rc == SQLITE_OK && t < NTIERS; t++) {
		char sql[160];
		snprintf(sql, sizeof(sql), "SELECT data, mint, maxt FROM %s WHERE series_id=?1 AND maxt>=?2 "
			 "AND mint<=?3 ORDER BY maxt", chunk_tables[t]);
		rc = sqlite3_prepare_v2(r->db, sql, -1, &r->chunks[t], NULL);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(r->db, "SELECT id, mint, maxt, (SELECT max(maxt) FROM chunks "
					"WHERE series_id=series.id) FROM series WHERE labels=?1 AND "
					"maxt IS NOT NULL", -1, &r->cold_find, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(r->db, "SELECT labels, kind, mint, maxt, (SELECT max(maxt) FROM "
					"chunks WHERE series_id=series.id) FROM series WHERE id=?1 "
					"AND maxt IS NOT NULL", -1, &r->cold_id, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(r->db, "SELECT id, labels, mint, maxt FROM series WHERE "
					"maxt>=?1 AND mint<=?2", -1, &r->cold_range, NULL);
	if (rc != SQLITE_OK) {
		log_limited(&s->rerr, LOG_WARN, "storage: %s: cannot open for reading: %s",
			    s->db_path, r->db ? sqlite3_errmsg(r->db) : "out of memory");
		reader_free(r);
		return NULL;
	}
	sqlite3_busy_timeout(r->db, 2000);
	/* Chunk pages are read straight from the page cache through a mapping
	 * rather than copied in by read(2), a page at a time: queries that
	 * read thousands of chunks spent a tenth of their time in that copy.
	 * Not for readers whose rows are copied anyway (db_reader_get). */
	if (mapped)
		sqlite3_exec(r->db, "PRAGMA mmap_size=" READER_MMAP_BYTES, NULL, NULL, NULL);
	else /* its pages are read into its cache, dropped at each change: the
	      * writer's 512 KiB (not SQLite's 2 MiB) is room for a query's */
		sqlite3_exec(r->db, "PRAGMA cache_size=-512", NULL, NULL, NULL);
	return r;
}

void db_release_memory(struct store *s)
{
	sqlite3_db_release_memory(s->db);
	/* Idle readers are closed: their caches and the pages their mappings
	 * touched (resident, counted in RSS) go; the next query opens one. */
	readers_close(s);
}

void db_reader_put(struct store *s, struct reader *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&s->rmu);
	if (s->nreaders[r->mapped] < ARRAY_LEN(s->readers[0])) {
		s->readers[r->mapped][s->nreaders[r->mapped]++] = r;
		r = NULL;
	}
	pthread_mutex_unlock(&s->rmu);
	reader_free(r);
}

/* ---- disk usage ------------------------------------------------------------------ */

int store_disk_usage(struct store *s, struct store_disk_usage *out)
{
	memset(out, 0, sizeof(*out));
	store_flush(s);
	/* Checkpoint and empty the WAL so the file holds everything. */
	sqlite3 *w = NULL;
	if (sqlite3_open_v2(s->db_path, &w, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
		sqlite3_busy_timeout(w, 5000);
		sqlite3_exec(w, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	}
	sqlite3_close(w);
	struct reader *r = db_reader_get(s, true);
	if (!r)
		return -EIO;
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(r->db, "SELECT name, sum(pgsize) FROM dbstat GROUP BY name", -1,
				    &st, NULL);
	if (rc == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *name = (const char *)sqlite3_column_text(st, 0);
			uint64_t bytes = (uint64_t)sqlite3_column_int64(st, 1);
			int tier = -1;
			for (int t = 0; t < NTIERS && name; t++) {
				size_t l = strlen(chunk_tables[t]);
				if (!strncmp(name, chunk_tables[t], l) &&
				    (!name[l] || !strcmp(name + l, "_series")))
					tier = t;
			}
			if (tier >= 0)
				out->tier_bytes[tier] += bytes;
			else
				out->other_bytes += bytes;
		}
		sqlite3_finalize(st);
	}
	for (int t = 0; t < NTIERS; t++) {
		char sql[128];
		snprintf(sql, sizeof(sql), "SELECT count(*), total(length(data)) FROM %s",
			 chunk_tables[t]);
		if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
			continue;
		if (sqlite3_step(st) == SQLITE_ROW) {
			out->tier_chunks[t] = (uint64_t)sqlite3_column_int64(st, 0);
			out->tier_blob_bytes[t] = (uint64_t)sqlite3_column_double(st, 1);
		}
		sqlite3_finalize(st);
	}
	db_reader_put(s, r);
	out->file_bytes = db_size(s);
	return rc == SQLITE_OK ? 0 : -EIO;
}
