/*
 * db.c - the SQLite side of the store: schema, opening (with the lock file
 * and the move-aside of a corrupt database), loading the series and the open
 * chunks a previous run saved, the writer thread, retention, and the pool of
 * read connections that queries use.
 *
 * Schema (monitor.db, WAL mode, synchronous=NORMAL, incremental vacuum):
 *   series(id, labels, kind)            one row per series; labels as text
 *   chunks / chunks_1m / chunks_1h      (id, series_id, mint, maxt, data):
 *                                       one row per sealed chunk, appended in
 *                                       rowid order; index (series_id, maxt)
 *   head(series_id, tier, data, acc)    each series' open chunks and roll-up
 *                                       accumulators as of the last flush
 * The writer thread commits, once per flush interval, one transaction with
 * the new series, the sealed chunks and the head rows, so what is on disk is
 * always a consistent cut; a kill -9 loses at most one interval. WAL with
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

#define ACC_BYTES 44
#define QUICK_CHECK_MAX_BYTES (256ull << 20)

static const char *const chunk_tables[NTIERS] = { "chunks", "chunks_1m", "chunks_1h" };
/* The longest a chunk of each tier can span, to bound a series' start. */
static const int64_t tier_span_ms[NTIERS] = { STORE_CHUNK_MAX_SPAN_MS,
					      STORE_TIER_CHUNK_POINTS * 60000LL,
					      STORE_TIER_CHUNK_POINTS * 3600000LL };

const char *db_chunk_table(int tier)
{
	return chunk_tables[tier];
}

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS series(id INTEGER PRIMARY KEY, labels TEXT NOT NULL,"
	" kind INTEGER NOT NULL);"
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
	"INSERT OR IGNORE INTO meta VALUES('schema', 1);";

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
	int rc = sqlite3_prepare_v2(db, "SELECT id, labels, kind FROM series", -1, &st, NULL);
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
		const char *brace = strchr(text, '{');
		if (!brace)
			brace = text + strlen(text);
		if ((size_t)(brace - text) >= STORE_MAX_LABEL_BYTES / 2)
			continue;
		memcpy(mem, text, (size_t)(brace - text));
		mem[brace - text] = '\0';
		l[0] = (struct store_label){ "__name__", mem };
		const char *end = "}";
		int n = *brace ? labels_parse(brace + 1, l + 1, STORE_MAX_LABELS - 1,
					      mem + (brace - text) + 1, true, &end) : 0;
		if (n < 0 || *end != '}') {
			log_warn("storage: %s: series %u has unreadable labels; skipped", s->db_path, id);
			continue;
		}
		struct lpair *pairs[STORE_MAX_LABELS];
		int m = store_intern_labels(s, l, (size_t)n + 1, pairs);
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

static int load_bounds(struct store *s, sqlite3 *db)
{
	for (int k = 0; k < NTIERS; k++) {
		char sql[160];
		snprintf(sql, sizeof(sql),
			 "SELECT series_id, min(maxt), max(maxt) FROM %s GROUP BY series_id",
			 chunk_tables[k]);
		sqlite3_stmt *st;
		int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
		if (rc != SQLITE_OK)
			return rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct series *se = series_by_id(s, (uint32_t)sqlite3_column_int64(st, 0));
			if (!se)
				continue;
			int64_t lo = sqlite3_column_int64(st, 1) - tier_span_ms[k];
			int64_t hi = sqlite3_column_int64(st, 2);
			if (lo < se->min_t)
				se->min_t = lo;
			if (hi > se->max_t)
				se->max_t = hi;
			if (k == STORE_TIER_RAW && hi > se->last_t)
				se->last_t = hi;
		}
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return rc;
	}
	return SQLITE_OK;
}

static void active_add(struct store *s, struct series *se)
{
	if (se->flags & S_ACTIVE)
		return;
	if (s->nactive == s->active_cap) {
		size_t ncap = s->active_cap ? s->active_cap * 2 : 1024;
		struct series **a = realloc(s->active, ncap * sizeof(*a));
		struct series **b = a ? realloc(s->active_next, ncap * sizeof(*b)) : NULL;
		if (a)
			s->active = a;
		if (!b)
			return;
		s->active_next = b;
		s->active_cap = ncap;
	}
	s->active[s->nactive++] = se;
	se->flags |= S_ACTIVE;
}

/* Resumes the open chunks saved by the last flush. */
static int load_head(struct store *s, sqlite3 *db)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "SELECT series_id, tier, data, acc FROM head", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	size_t bad = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct series *se = series_by_id(s, (uint32_t)sqlite3_column_int64(st, 0));
		int tier = sqlite3_column_int(st, 1);
		const void *data = sqlite3_column_blob(st, 2);
		size_t len = (size_t)sqlite3_column_bytes(st, 2);
		const void *acc = sqlite3_column_blob(st, 3);
		size_t acclen = (size_t)sqlite3_column_bytes(st, 3);
		if (!se || tier < 0 || tier >= NTIERS)
			continue;
		bool counter = se->kind == STORE_COUNTER;
		if (tier == STORE_TIER_RAW) {
			if (len && cenc_restore(&se->raw, &se->rv, data, len, counter) < 0) {
				bad++;
				continue;
			}
			if (se->raw.count) {
				if (se->raw.t_prev > se->last_t)
					se->last_t = se->raw.t_prev;
				if (se->raw.t_first < se->min_t)
					se->min_t = se->raw.t_first;
				if (se->raw.t_prev > se->max_t)
					se->max_t = se->raw.t_prev;
				/* Stale at the first snapshot that lacks it. */
				active_add(s, se);
			}
		} else {
			struct tier_head *th = calloc(1, sizeof(*th));
			if (!th)
				continue;
			cenc_init(&th->enc, 5);
			struct vstate v[5];
			if ((len && cenc_restore(&th->enc, v, data, len, counter) < 0)) {
				bad++;
				free(th);
				continue;
			}
			if (acc && acclen == ACC_BYTES)
				unpack_acc(th, acc);
			se->tier[tier - 1] = th;
			if (th->end || th->enc.count) {
				se->flags |= S_IDLE;
				if (s->nidle == s->idle_cap) {
					size_t ncap = s->idle_cap ? s->idle_cap * 2 : 256;
					struct series **ni = realloc(s->idle, ncap * sizeof(*ni));
					if (ni) {
						s->idle = ni;
						s->idle_cap = ncap;
					}
				}
				if (s->nidle < s->idle_cap)
					s->idle[s->nidle++] = se;
				else
					se->flags &= (uint8_t)~S_IDLE;
			}
		}
	}
	sqlite3_finalize(st);
	if (bad)
		log_warn("storage: %s: %zu open chunks could not be decoded and were dropped",
			 s->db_path, bad);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Drops every series from memory (after a failed load). */
static void reset_memory(struct store *s)
{
	for (uint32_t id = 0; id < s->byid_cap; id++)
		if (s->byid[id])
			series_destroy(s, s->byid[id]);
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
	if ((rc = exec(s->db, "PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=8388608;"
			      "PRAGMA cache_size=-8192")) != SQLITE_OK ||
	    (rc = exec(s->db, schema)) != SQLITE_OK)
		return rc;
	if (file_size(s->db_path) <= QUICK_CHECK_MAX_BYTES) {
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
	}
	if ((rc = load_series(s, s->db)) != SQLITE_OK || (rc = load_bounds(s, s->db)) != SQLITE_OK ||
	    (rc = load_head(s, s->db)) != SQLITE_OK)
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
				     &s->st_head_del, NULL)) != SQLITE_OK)
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
	s->st_series = s->st_head = s->st_head_del = NULL;
	sqlite3_close(s->db);
	s->db = NULL;
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

static void reader_free(struct reader *r);

void db_close(struct store *s)
{
	close_db(s);
	pthread_mutex_lock(&s->rmu);
	for (size_t i = 0; i < s->nreaders; i++)
		reader_free(s->readers[i]);
	s->nreaders = 0;
	pthread_mutex_unlock(&s->rmu);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	s->lock_fd = -1;
}

/* ---- the writer --------------------------------------------------------------- */

struct head_image {
	uint32_t id;
	uint8_t *data[NTIERS];
	size_t len[NTIERS];
	bool has_acc[2];
	uint8_t acc[2][ACC_BYTES];
};

struct new_series {
	uint32_t id;
	int kind;
	char *labels;
};

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
		pthread_mutex_lock(&s->wmu);
		s->chunks_dropped++;
		pthread_mutex_unlock(&s->wmu);
	}
}

/* One flush: takes the work out under the lock, writes it in one
 * transaction, and gives it back on failure. Returns 0 or -errno. */
static int do_flush(struct store *s)
{
	int64_t t0 = mono_ns();
	pthread_rwlock_wrlock(&s->lock);
	struct pchunk *list = s->pq, *list_tail = s->pq_tail;
	s->pq = s->pq_tail = NULL;
	size_t nnew = s->nnew;
	struct new_series *ns = nnew ? calloc(nnew, sizeof(*ns)) : NULL;
	size_t nimg = s->ndirty;
	struct head_image *img = nimg ? calloc(nimg, sizeof(*img)) : NULL;
	if ((nnew && !ns) || (nimg && !img)) {
		s->pq = list;
		s->pq_tail = list_tail;
		pthread_rwlock_unlock(&s->lock);
		free(ns);
		free(img);
		return -ENOMEM;
	}
	size_t k = 0;
	for (size_t i = 0; i < nnew; i++) {
		struct series *se = series_by_id(s, s->newser[i]);
		if (!se)
			continue;
		char text[STORE_MAX_LABEL_BYTES * 2];
		series_format(se, text, sizeof(text));
		ns[k].id = se->id;
		ns[k].kind = se->kind;
		ns[k].labels = strdup(text);
		k++;
	}
	nnew = k;
	s->nnew = 0;
	for (size_t i = 0; i < nimg; i++) {
		struct series *se = s->dirty[i];
		se->flags &= (uint8_t)~S_DIRTY;
		img[i].id = se->id;
		if (se->raw.count) {
			img[i].len[0] = cenc_bytes(&se->raw);
			img[i].data[0] = malloc(img[i].len[0]);
			if (img[i].data[0])
				memcpy(img[i].data[0], se->raw.buf, img[i].len[0]);
		}
		for (int t = 0; t < 2; t++) {
			struct tier_head *th = se->tier[t];
			if (!th)
				continue;
			if (th->enc.count) {
				img[i].len[t + 1] = cenc_bytes(&th->enc);
				img[i].data[t + 1] = malloc(img[i].len[t + 1]);
				if (img[i].data[t + 1])
					memcpy(img[i].data[t + 1], th->enc.buf, img[i].len[t + 1]);
			}
			if (th->end) {
				img[i].has_acc[t] = true;
				pack_acc(th, img[i].acc[t]);
			}
		}
	}
	s->ndirty = 0;
	pthread_rwlock_unlock(&s->lock);

	size_t nchunks = 0;
	int rc = exec(s->db, "BEGIN IMMEDIATE");
	for (size_t i = 0; rc == SQLITE_OK && i < nnew; i++) {
		if (!ns[i].labels) {
			rc = SQLITE_NOMEM;
			break;
		}
		sqlite3_bind_int64(s->st_series, 1, ns[i].id);
		sqlite3_bind_text(s->st_series, 2, ns[i].labels, -1, SQLITE_STATIC);
		sqlite3_bind_int(s->st_series, 3, ns[i].kind);
		rc = step_reset(s->st_series);
	}
	for (struct pchunk *c = list; rc == SQLITE_OK && c; c = c->next) {
		sqlite3_stmt *st = s->st_chunk[c->tier];
		sqlite3_bind_int64(st, 1, c->series);
		sqlite3_bind_int64(st, 2, c->mint);
		sqlite3_bind_int64(st, 3, c->maxt);
		sqlite3_bind_blob(st, 4, c->data, (int)c->len, SQLITE_STATIC);
		rc = step_reset(st);
		nchunks++;
	}
	for (size_t i = 0; rc == SQLITE_OK && i < nimg; i++) {
		for (int t = 0; rc == SQLITE_OK && t < NTIERS; t++) {
			bool acc = t > 0 && img[i].has_acc[t - 1];
			if (!img[i].data[t] && !acc) {
				sqlite3_bind_int64(s->st_head_del, 1, img[i].id);
				sqlite3_bind_int(s->st_head_del, 2, t);
				rc = step_reset(s->st_head_del);
				continue;
			}
			sqlite3_bind_int64(s->st_head, 1, img[i].id);
			sqlite3_bind_int(s->st_head, 2, t);
			sqlite3_bind_blob(s->st_head, 3, img[i].data[t] ? (void *)img[i].data[t] : "",
					  (int)img[i].len[t], SQLITE_STATIC);
			if (acc)
				sqlite3_bind_blob(s->st_head, 4, img[i].acc[t - 1], ACC_BYTES,
						  SQLITE_STATIC);
			else
				sqlite3_bind_null(s->st_head, 4);
			rc = step_reset(s->st_head);
		}
	}
	if (rc == SQLITE_OK)
		rc = exec(s->db, "COMMIT");
	const char *errmsg = rc == SQLITE_OK ? NULL : sqlite3_errmsg(s->db);
	char why[256] = "";
	if (errmsg)
		snprintf(why, sizeof(why), "%s", errmsg);
	if (rc != SQLITE_OK)
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
			s->pending_bytes -= c->len + sizeof(*c);
			free(c->data);
			free(c);
		}
		for (size_t i = 0; i < nnew; i++) {
			struct series *se = series_by_id(s, ns[i].id);
			if (se)
				se->flags |= S_SAVED;
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
			if (se)
				head_mark_dirty(s, se);
		}
		enforce_cap(s);
	}
	uint64_t pending = s->pending_bytes;
	pthread_rwlock_unlock(&s->lock);

	for (size_t i = 0; i < nnew; i++)
		free(ns[i].labels);
	free(ns);
	for (size_t i = 0; i < nimg; i++)
		for (int t = 0; t < NTIERS; t++)
			free(img[i].data[t]);
	free(img);

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

static uint32_t *live_ids(struct store *s, size_t *n)
{
	pthread_rwlock_rdlock(&s->lock);
	uint32_t *ids = malloc((s->nseries + 1) * sizeof(*ids));
	size_t k = 0;
	for (uint32_t id = 0; ids && id < s->byid_cap; id++)
		if (s->byid[id] && (s->byid[id]->flags & S_SAVED))
			ids[k++] = id;
	pthread_rwlock_unlock(&s->lock);
	*n = k;
	return ids;
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
		struct series *se = s->byid[ids[i]];
		if (se && !(se->flags & (S_ACTIVE | S_DIRTY | S_IDLE)) && !se->raw.count && !se->pend &&
		    !se->tier[0] && !se->tier[1])
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
			struct series *se = s->byid[ids[i]];
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

static void do_retention(struct store *s, int64_t now)
{
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
	s->last_retention_ms = now_ms();
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

		int rc = do_flush(s);
		int64_t now = now_ms();
		if (rnow || now - s->last_retention_ms >= s->cfg.retention_interval_ms) {
			do_retention(s, rnow ? rnow : now);
			s->last_retention_ms = now;
			if (rnow && rc == 0)
				rc = do_flush(s);
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

static int request(struct store *s, int64_t retention_now)
{
	if (!s || !s->writer_started)
		return -EINVAL;
	pthread_mutex_lock(&s->wmu);
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
	return request(s, 0);
}

int store_retention_run(struct store *s, int64_t now_ms_)
{
	return request(s, now_ms_ ? now_ms_ : now_ms());
}

/* ---- read connections ------------------------------------------------------------ */

static void reader_free(struct reader *r)
{
	if (!r)
		return;
	for (int t = 0; t < NTIERS; t++)
		sqlite3_finalize(r->chunks[t]);
	sqlite3_close(r->db);
	free(r);
}

struct reader *db_reader_get(struct store *s)
{
	pthread_mutex_lock(&s->rmu);
	struct reader *r = s->nreaders ? s->readers[--s->nreaders] : NULL;
	pthread_mutex_unlock(&s->rmu);
	if (r)
		return r;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	int rc = sqlite3_open_v2(s->db_path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
				 NULL);
	for (int t = 0; rc == SQLITE_OK && t < NTIERS; t++) {
		char sql[160];
		snprintf(sql, sizeof(sql), "SELECT data, mint, maxt FROM %s WHERE series_id=?1 AND maxt>=?2 "
			 "AND mint<=?3 ORDER BY maxt", chunk_tables[t]);
		rc = sqlite3_prepare_v2(r->db, sql, -1, &r->chunks[t], NULL);
	}
	if (rc != SQLITE_OK) {
		log_limited(&s->rerr, LOG_WARN, "storage: %s: cannot open for reading: %s",
			    s->db_path, r->db ? sqlite3_errmsg(r->db) : "out of memory");
		reader_free(r);
		return NULL;
	}
	sqlite3_busy_timeout(r->db, 2000);
	return r;
}

void db_reader_put(struct store *s, struct reader *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&s->rmu);
	if (s->nreaders < ARRAY_LEN(s->readers)) {
		s->readers[s->nreaders++] = r;
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
	struct reader *r = db_reader_get(s);
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
