/*
 * logstore.c - container log lines in SQLite with an FTS5 index
 * (<data_dir>/logs.db), apart from the metric store so that a log flood
 * never slows the metrics' writer and each has its own retention.
 *
 * Tables:
 *   lines(seq, cid, t, stream, level, flags, pat, msg)  seq is the rowid:
 *       the order lines were stored in, which is file order per container;
 *   lines_fts                  FTS5 over lines.msg (external content);
 *   containers(cid, id, name, first_ns, last_ns, lines) every container
 *       ever seen, so a gone container's lines are found by its name;
 *   marks(first, last, tmin, tmax)  the time span of each run of about
 *       MARK_LINES lines, which turns a time range into a seq range
 *       without an index on time (lines come in roughly, not exactly, in
 *       time order: a file caught up after a restart is older);
 *   files(path, dev, ino, off, fp, fp_len)  where each tailed file was read
 *       up to, written in the same transaction as its lines.
 *
 * One writer connection (the tailer's thread) behind a mutex, and a small
 * pool of reader connections for queries from any thread; WAL lets them
 * read while the writer commits. Retention runs on the writer between
 * batches, deleting in chunks so that ingest never waits long.
 */
#include "storage/storage.h"
#include "agent/util/util.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NREADERS 4
#define MARK_LINES 8192
#define MARK_SPAN_NS (10LL * 1000000000)
#define CACHE_BUCKETS 4096
#define CACHE_MAX 100000
#define QUERY_LIMIT_DEFAULT 100
#define QUERY_LIMIT_MAX 10000
#define MAX_SCAN_DEFAULT 2000000
#define QUERY_TIMEOUT_MS 10000
#define RETENTION_CHUNK 20000
#define FTS_MAX_TERMS 32

struct cid_entry {
	struct cid_entry *next;
	int64_t cid;
	char *name;              /* as stored; NULL when unknown */
	char id[];
};

struct logstore {
	struct logstore_config cfg;
	char path[PATH_MAX + 32];
	pthread_mutex_t wlock;
	sqlite3 *w;
	sqlite3_stmt *ins_line, *ins_fts, *get_cid, *ins_cid, *upd_name, *upd_cstat, *put_pos,
		*del_pos, *get_pos, *put_mark;
	struct cid_entry *cache[CACHE_BUCKETS];
	size_t ncache;
	int64_t mark_first, mark_last, mark_tmin, mark_tmax; /* the open mark; first 0: none */
	int64_t last_retention_ms;

	pthread_mutex_t rlock;
	pthread_cond_t rcond;
	sqlite3 *readers[NREADERS];
	bool rbusy[NREADERS];

	pthread_mutex_t wait_lock;
	pthread_cond_t wait_cond;
	uint64_t last_seq;
	bool interrupted;

	/* stats, atomic */
	uint64_t lines_stored, bytes_stored, lines_held, write_errors, retention_deleted;
	int write_ok;
};

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=NORMAL;"
	/* Checkpoints (and their fsyncs) every 32 MiB of WAL, not every 4. */
	"PRAGMA wal_autocheckpoint=8192;"
	"CREATE TABLE IF NOT EXISTS containers(cid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
	" name TEXT, first_ns INTEGER, last_ns INTEGER, lines INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX IF NOT EXISTS containers_name ON containers(name);"
	"CREATE TABLE IF NOT EXISTS lines(seq INTEGER PRIMARY KEY AUTOINCREMENT, cid INTEGER NOT NULL,"
	" t INTEGER NOT NULL, stream INTEGER NOT NULL, level INTEGER NOT NULL,"
	" flags INTEGER NOT NULL, pat INTEGER NOT NULL, msg TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS lines_cid ON lines(cid);"
	"CREATE VIRTUAL TABLE IF NOT EXISTS lines_fts USING fts5(msg, content='lines',"
	" content_rowid='seq');"
	"CREATE TABLE IF NOT EXISTS marks(first INTEGER PRIMARY KEY, last INTEGER NOT NULL,"
	" tmin INTEGER NOT NULL, tmax INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS files(path TEXT PRIMARY KEY, dev INTEGER, ino INTEGER,"
	" off INTEGER, fp INTEGER, fp_len INTEGER);";

/* ---- levels and streams --------------------------------------------------- */

static const char *const level_names[LOGSTORE_LEVEL__COUNT] = {
	"unknown", "trace", "debug", "info", "warn", "error", "fatal",
};

const char *logstore_level_name(int level)
{
	return level >= 0 && level < LOGSTORE_LEVEL__COUNT ? level_names[level] : "unknown";
}

int logstore_level_parse(const char *s)
{
	static const struct {
		const char *name;
		int level;
	} alias[] = {
		{ "warning", LOGSTORE_LEVEL_WARN }, { "err", LOGSTORE_LEVEL_ERROR },
		{ "critical", LOGSTORE_LEVEL_FATAL }, { "crit", LOGSTORE_LEVEL_FATAL },
		{ "panic", LOGSTORE_LEVEL_FATAL }, { "none", LOGSTORE_LEVEL_NONE },
	};
	for (int i = 0; i < LOGSTORE_LEVEL__COUNT; i++)
		if (!strcasecmp(s, level_names[i]))
			return i;
	for (size_t i = 0; i < ARRAY_LEN(alias); i++)
		if (!strcasecmp(s, alias[i].name))
			return alias[i].level;
	return -EINVAL;
}

int logstore_level_mask(const char *s, uint32_t *mask)
{
	char buf[256];
	if (!s || strlen(s) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", s);
	uint32_t m = 0;
	char *save = NULL;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		size_t n = strlen(tok);
		while (n && tok[n - 1] == ' ')
			tok[--n] = '\0';
		bool up = n && tok[n - 1] == '+';
		if (up)
			tok[--n] = '\0';
		int lv = logstore_level_parse(tok);
		if (lv < 0)
			return -EINVAL;
		m |= up ? ((1u << LOGSTORE_LEVEL__COUNT) - 1) & ~((1u << lv) - 1) : 1u << lv;
		if (up)
			m &= ~1u; /* "warn+" never includes lines without a level */
	}
	if (!m)
		return -EINVAL;
	*mask = m;
	return 0;
}

const char *logstore_stream_name(int stream)
{
	return stream == LOGSTORE_STDERR ? "stderr" : "stdout";
}

void logstore_config_defaults(struct logstore_config *c)
{
	memset(c, 0, sizeof(*c));
	c->retention_ms = 7LL * 24 * 3600 * 1000;
	c->max_size_bytes = 1ULL << 30;
	c->retention_interval_ms = 60000;
}

/* ---- open and close ------------------------------------------------------- */

static bool is_corrupt(int rc)
{
	rc &= 0xff;
	return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

static int open_conn(const char *path, sqlite3 **db, bool writer, char *err, size_t errsize)
{
	int rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
					       SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(*db, 5000);
		rc = sqlite3_exec(*db, writer ? schema : "PRAGMA query_only=1;", NULL, NULL, NULL);
	}
	if (rc != SQLITE_OK) {
		snprintf(err, errsize, "%s: %s", path, *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
		if (*db)
			rc = sqlite3_extended_errcode(*db);
		sqlite3_close(*db);
		*db = NULL;
		return is_corrupt(rc) ? -EILSEQ : (rc & 0xff) == SQLITE_FULL ? -ENOSPC : -EIO;
	}
	return 0;
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK
		       ? 0 : -EIO;
}

static int64_t one_int(sqlite3 *db, const char *sql, int64_t dflt)
{
	sqlite3_stmt *st;
	int64_t v = dflt;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return dflt;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int open_all(struct logstore *ls, char *err, size_t errsize)
{
	int rc = open_conn(ls->path, &ls->w, true, err, errsize);
	if (rc < 0)
		return rc;
	/* A file that opens but is damaged inside shows on the first read. */
	if (one_int(ls->w, "SELECT count(*) FROM sqlite_master", -1) < 0) {
		snprintf(err, errsize, "%s: %s", ls->path, sqlite3_errmsg(ls->w));
		return is_corrupt(sqlite3_extended_errcode(ls->w)) ? -EILSEQ : -EIO;
	}
	if (prep(ls->w, "INSERT INTO lines(cid,t,stream,level,flags,pat,msg) VALUES(?,?,?,?,?,?,?)",
		 &ls->ins_line) ||
	    prep(ls->w, "INSERT INTO lines_fts(rowid,msg) VALUES(?,?)", &ls->ins_fts) ||
	    prep(ls->w, "SELECT cid,name FROM containers WHERE id=?", &ls->get_cid) ||
	    prep(ls->w, "INSERT INTO containers(id,name) VALUES(?,?)", &ls->ins_cid) ||
	    prep(ls->w, "UPDATE containers SET name=? WHERE cid=?", &ls->upd_name) ||
	    prep(ls->w, "UPDATE containers SET lines=lines+?2,"
			" first_ns=coalesce(min(first_ns,?3),?3), last_ns=coalesce(max(last_ns,?4),?4)"
			" WHERE cid=?1", &ls->upd_cstat) ||
	    prep(ls->w, "INSERT OR REPLACE INTO files(path,dev,ino,off,fp,fp_len)"
			" VALUES(?,?,?,?,?,?)", &ls->put_pos) ||
	    prep(ls->w, "DELETE FROM files WHERE path=?", &ls->del_pos) ||
	    prep(ls->w, "SELECT dev,ino,off,fp,fp_len FROM files WHERE path=?", &ls->get_pos) ||
	    prep(ls->w, "INSERT OR REPLACE INTO marks(first,last,tmin,tmax) VALUES(?,?,?,?)",
		 &ls->put_mark)) {
		snprintf(err, errsize, "%s: %s", ls->path, sqlite3_errmsg(ls->w));
		return -EIO;
	}
	for (int i = 0; i < NREADERS; i++)
		if ((rc = open_conn(ls->path, &ls->readers[i], false, err, errsize)) < 0)
			return rc;
	ls->last_seq = (uint64_t)one_int(ls->w, "SELECT max(seq) FROM lines", 0);
	ls->lines_held = (uint64_t)one_int(ls->w, "SELECT count(*) FROM lines", 0);
	/* The last mark stays open: lines after a restart extend it. */
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(ls->w, "SELECT first,last,tmin,tmax FROM marks ORDER BY first DESC"
				      " LIMIT 1", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			ls->mark_first = sqlite3_column_int64(st, 0);
			ls->mark_last = sqlite3_column_int64(st, 1);
			ls->mark_tmin = sqlite3_column_int64(st, 2);
			ls->mark_tmax = sqlite3_column_int64(st, 3);
		}
		sqlite3_finalize(st);
	}
	return 0;
}

static void close_all(struct logstore *ls)
{
	sqlite3_stmt *sts[] = { ls->ins_line, ls->ins_fts, ls->get_cid, ls->ins_cid, ls->upd_name,
				ls->upd_cstat, ls->put_pos, ls->del_pos, ls->get_pos, ls->put_mark };
	for (size_t i = 0; i < ARRAY_LEN(sts); i++)
		sqlite3_finalize(sts[i]);
	ls->ins_line = ls->ins_fts = ls->get_cid = ls->ins_cid = ls->upd_name = NULL;
	ls->upd_cstat = ls->put_pos = ls->del_pos = ls->get_pos = ls->put_mark = NULL;
	for (int i = 0; i < NREADERS; i++) {
		sqlite3_close(ls->readers[i]);
		ls->readers[i] = NULL;
	}
	sqlite3_close(ls->w);
	ls->w = NULL;
}

static void cache_clear(struct logstore *ls)
{
	for (size_t b = 0; b < CACHE_BUCKETS; b++) {
		struct cid_entry *e = ls->cache[b], *next;
		for (; e; e = next) {
			next = e->next;
			free(e->name);
			free(e);
		}
		ls->cache[b] = NULL;
	}
	ls->ncache = 0;
}

int logstore_open(struct logstore **out, const struct logstore_config *cfg, char *err,
		  size_t errsize)
{
	struct logstore *ls = calloc(1, sizeof(*ls));
	if (!ls)
		return -ENOMEM;
	ls->cfg = *cfg;
	snprintf(ls->path, sizeof(ls->path), "%s/%s", cfg->dir, LOGSTORE_DB_NAME);
	pthread_mutex_init(&ls->wlock, NULL);
	pthread_mutex_init(&ls->rlock, NULL);
	pthread_cond_init(&ls->rcond, NULL);
	pthread_mutex_init(&ls->wait_lock, NULL);
	pthread_cond_init(&ls->wait_cond, NULL);
	int rc = open_all(ls, err, errsize);
	if (rc == -EILSEQ) {
		close_all(ls);
		char aside[PATH_MAX + 64];
		snprintf(aside, sizeof(aside), "%s.corrupt-%lld", ls->path, (long long)now_ms());
		if (rename(ls->path, aside) == 0) {
			log_warn("%s: not a database or damaged (%s); moved to %s, starting empty",
				 ls->path, err, aside);
			char wal[PATH_MAX + 40];
			snprintf(wal, sizeof(wal), "%s-wal", ls->path);
			unlink(wal);
			snprintf(wal, sizeof(wal), "%s-shm", ls->path);
			unlink(wal);
			rc = open_all(ls, err, errsize);
		}
	}
	if (rc < 0) {
		logstore_close(ls);
		return rc;
	}
	ls->write_ok = 1;
	ls->last_retention_ms = now_ms();
	*out = ls;
	return 0;
}

void logstore_close(struct logstore *ls)
{
	if (!ls)
		return;
	close_all(ls);
	cache_clear(ls);
	pthread_mutex_destroy(&ls->wlock);
	pthread_mutex_destroy(&ls->rlock);
	pthread_cond_destroy(&ls->rcond);
	pthread_mutex_destroy(&ls->wait_lock);
	pthread_cond_destroy(&ls->wait_cond);
	free(ls);
}

void logstore_interrupt(struct logstore *ls)
{
	if (!ls)
		return;
	pthread_mutex_lock(&ls->wait_lock);
	ls->interrupted = true;
	pthread_cond_broadcast(&ls->wait_cond);
	pthread_mutex_unlock(&ls->wait_lock);
}

/* ---- appending ------------------------------------------------------------ */

static int db_err(sqlite3 *db)
{
	int rc = sqlite3_extended_errcode(db) & 0xff;
	return rc == SQLITE_FULL ? -ENOSPC : rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
}

static int step_done(sqlite3 *db, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_err(db);
}

/* The cid of container id (creating its row), updating a newly learnt name. */
static int cid_for(struct logstore *ls, const char *id, const char *name, int64_t *cid)
{
	size_t b = hash_bytes(id, strlen(id)) % CACHE_BUCKETS;
	struct cid_entry *e;
	for (e = ls->cache[b]; e; e = e->next)
		if (!strcmp(e->id, id))
			break;
	if (!e) {
		if (ls->ncache >= CACHE_MAX)
			cache_clear(ls);
		size_t n = strlen(id);
		e = calloc(1, sizeof(*e) + n + 1);
		if (!e)
			return -ENOMEM;
		memcpy(e->id, id, n + 1);
		sqlite3_bind_text(ls->get_cid, 1, id, -1, SQLITE_STATIC);
		if (sqlite3_step(ls->get_cid) == SQLITE_ROW) {
			e->cid = sqlite3_column_int64(ls->get_cid, 0);
			const char *nm = (const char *)sqlite3_column_text(ls->get_cid, 1);
			e->name = nm ? strdup(nm) : NULL;
		}
		sqlite3_reset(ls->get_cid);
		if (!e->cid) {
			sqlite3_bind_text(ls->ins_cid, 1, id, -1, SQLITE_STATIC);
			sqlite3_bind_text(ls->ins_cid, 2, name, -1, SQLITE_STATIC);
			int rc = step_done(ls->w, ls->ins_cid);
			if (rc < 0) {
				free(e);
				return rc;
			}
			e->cid = sqlite3_last_insert_rowid(ls->w);
			e->name = name ? strdup(name) : NULL;
		}
		e->next = ls->cache[b];
		ls->cache[b] = e;
		ls->ncache++;
	}
	if (name && *name && (!e->name || strcmp(e->name, name))) {
		sqlite3_bind_text(ls->upd_name, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ls->upd_name, 2, e->cid);
		int rc = step_done(ls->w, ls->upd_name);
		if (rc < 0)
			return rc;
		free(e->name);
		e->name = strdup(name);
	}
	*cid = e->cid;
	return 0;
}

struct cstat {
	int64_t cid, lines, first_ns, last_ns;
};

static int put_mark(struct logstore *ls)
{
	if (!ls->mark_first)
		return 0;
	sqlite3_bind_int64(ls->put_mark, 1, ls->mark_first);
	sqlite3_bind_int64(ls->put_mark, 2, ls->mark_last);
	sqlite3_bind_int64(ls->put_mark, 3, ls->mark_tmin);
	sqlite3_bind_int64(ls->put_mark, 4, ls->mark_tmax);
	return step_done(ls->w, ls->put_mark);
}

/* Adds a batch's lines and time span to each container's totals; 0 or the
 * first error. */
static int put_cstats(struct logstore *ls, struct cstat *cs, size_t n)
{
	int rc = 0;
	for (size_t j = 0; j < n && rc == 0; j++) {
		sqlite3_bind_int64(ls->upd_cstat, 1, cs[j].cid);
		sqlite3_bind_int64(ls->upd_cstat, 2, cs[j].lines);
		sqlite3_bind_int64(ls->upd_cstat, 3, cs[j].first_ns);
		sqlite3_bind_int64(ls->upd_cstat, 4, cs[j].last_ns);
		rc = step_done(ls->w, ls->upd_cstat);
	}
	return rc;
}

static int append_locked(struct logstore *ls, const struct log_record *r, size_t n,
			 const struct log_position *pos, size_t npos, uint64_t *bytes,
			 uint64_t *last_seq)
{
	struct cstat cs[64];
	size_t ncs = 0;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		int64_t cid;
		if ((rc = cid_for(ls, r[i].id, r[i].name, &cid)) < 0)
			break;
		uint64_t pat = logstore_template_hash(r[i].msg, r[i].msg_len);
		sqlite3_stmt *st = ls->ins_line;
		sqlite3_bind_int64(st, 1, cid);
		sqlite3_bind_int64(st, 2, r[i].time_ns);
		sqlite3_bind_int(st, 3, r[i].stream);
		sqlite3_bind_int(st, 4, r[i].level);
		sqlite3_bind_int64(st, 5, r[i].flags);
		sqlite3_bind_int64(st, 6, (int64_t)pat);
		sqlite3_bind_text(st, 7, r[i].msg, (int)r[i].msg_len, SQLITE_STATIC);
		if ((rc = step_done(ls->w, st)) < 0)
			break;
		int64_t seq = sqlite3_last_insert_rowid(ls->w);
		*last_seq = (uint64_t)seq;
		sqlite3_bind_int64(ls->ins_fts, 1, seq);
		sqlite3_bind_text(ls->ins_fts, 2, r[i].msg, (int)r[i].msg_len, SQLITE_STATIC);
		if ((rc = step_done(ls->w, ls->ins_fts)) < 0)
			break;
		*bytes += r[i].msg_len;
		/* The run's time span; a new mark every MARK_LINES lines or 10 s. */
		int64_t t = r[i].time_ns;
		if (ls->mark_first && (seq - ls->mark_first >= MARK_LINES ||
				       t - ls->mark_tmin > MARK_SPAN_NS || t < ls->mark_tmin - MARK_SPAN_NS)) {
			if ((rc = put_mark(ls)) < 0)
				break;
			ls->mark_first = 0;
		}
		if (!ls->mark_first) {
			ls->mark_first = seq;
			ls->mark_tmin = ls->mark_tmax = t;
		}
		ls->mark_last = seq;
		if (t < ls->mark_tmin)
			ls->mark_tmin = t;
		if (t > ls->mark_tmax)
			ls->mark_tmax = t;
		/* Per-container totals, written once per batch. */
		size_t k;
		for (k = 0; k < ncs && cs[k].cid != cid; k++)
			;
		if (k == ncs && ncs == ARRAY_LEN(cs)) {
			if (rc == 0)
				rc = put_cstats(ls, cs, ncs);
			ncs = k = 0;
		}
		if (k == ncs)
			cs[ncs++] = (struct cstat){ cid, 0, t, t };
		cs[k].lines++;
		if (t < cs[k].first_ns)
			cs[k].first_ns = t;
		if (t > cs[k].last_ns)
			cs[k].last_ns = t;
	}
	if (rc == 0)
		rc = put_cstats(ls, cs, ncs);
	if (rc == 0 && n)
		rc = put_mark(ls);
	for (size_t i = 0; i < npos && rc == 0; i++) {
		if (pos[i].offset == UINT64_MAX) {
			sqlite3_bind_text(ls->del_pos, 1, pos[i].path, -1, SQLITE_STATIC);
			rc = step_done(ls->w, ls->del_pos);
			continue;
		}
		sqlite3_stmt *st = ls->put_pos;
		sqlite3_bind_text(st, 1, pos[i].path, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)pos[i].dev);
		sqlite3_bind_int64(st, 3, (int64_t)pos[i].ino);
		sqlite3_bind_int64(st, 4, (int64_t)pos[i].offset);
		sqlite3_bind_int64(st, 5, (int64_t)pos[i].fingerprint);
		sqlite3_bind_int64(st, 6, (int64_t)pos[i].fingerprint_len);
		rc = step_done(ls->w, st);
	}
	return rc;
}

int logstore_append(struct logstore *ls, const struct log_record *r, size_t n,
		    const struct log_position *pos, size_t npos)
{
	if (!n && !npos)
		return 0;
	pthread_mutex_lock(&ls->wlock);
	int64_t mark[4] = { ls->mark_first, ls->mark_last, ls->mark_tmin, ls->mark_tmax };
	uint64_t bytes = 0, last = 0;
	int rc = sqlite3_exec(ls->w, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK
			 ? 0 : db_err(ls->w);
	if (rc == 0)
		rc = append_locked(ls, r, n, pos, npos, &bytes, &last);
	if (rc == 0 && sqlite3_exec(ls->w, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = db_err(ls->w);
	if (rc < 0) {
		sqlite3_exec(ls->w, "ROLLBACK", NULL, NULL, NULL);
		/* Rows made in the transaction are gone: forget their cids. */
		cache_clear(ls);
		ls->mark_first = mark[0];
		ls->mark_last = mark[1];
		ls->mark_tmin = mark[2];
		ls->mark_tmax = mark[3];
	}
	bool retention = rc == 0 && now_ms() - ls->last_retention_ms >= ls->cfg.retention_interval_ms;
	pthread_mutex_unlock(&ls->wlock);
	if (rc < 0) {
		__atomic_add_fetch(&ls->write_errors, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&ls->write_ok, 0, __ATOMIC_RELAXED);
		return rc;
	}
	__atomic_store_n(&ls->write_ok, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&ls->lines_stored, n, __ATOMIC_RELAXED);
	__atomic_add_fetch(&ls->lines_held, n, __ATOMIC_RELAXED);
	__atomic_add_fetch(&ls->bytes_stored, bytes, __ATOMIC_RELAXED);
	if (n) {
		pthread_mutex_lock(&ls->wait_lock);
		if (last > ls->last_seq)
			ls->last_seq = last;
		pthread_cond_broadcast(&ls->wait_cond);
		pthread_mutex_unlock(&ls->wait_lock);
	}
	if (retention)
		logstore_retention_run(ls, now_ms());
	return 0;
}

int logstore_position(struct logstore *ls, const char *path, struct log_position *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&ls->wlock);
	sqlite3_stmt *st = ls->get_pos;
	sqlite3_bind_text(st, 1, path, -1, SQLITE_TRANSIENT);
	int rc = -ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW) {
		out->dev = (uint64_t)sqlite3_column_int64(st, 0);
		out->ino = (uint64_t)sqlite3_column_int64(st, 1);
		out->offset = (uint64_t)sqlite3_column_int64(st, 2);
		out->fingerprint = (uint64_t)sqlite3_column_int64(st, 3);
		out->fingerprint_len = (uint64_t)sqlite3_column_int64(st, 4);
		rc = 0;
	}
	sqlite3_reset(st);
	pthread_mutex_unlock(&ls->wlock);
	return rc;
}

int logstore_set_name(struct logstore *ls, const char *id, const char *name)
{
	if (!id || !*id || !name || !*name)
		return -EINVAL;
	pthread_mutex_lock(&ls->wlock);
	int64_t cid;
	int rc = sqlite3_exec(ls->w, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : db_err(ls->w);
	if (rc == 0)
		rc = cid_for(ls, id, name, &cid);
	if (rc == 0 && sqlite3_exec(ls->w, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = db_err(ls->w);
	if (rc < 0) {
		sqlite3_exec(ls->w, "ROLLBACK", NULL, NULL, NULL);
		cache_clear(ls);
	}
	pthread_mutex_unlock(&ls->wlock);
	return rc;
}

/* ---- retention -------------------------------------------------------------- */

/* Deletes lines with seq <= upto, oldest first, in chunks. Writer lock held. */
static int delete_upto(struct logstore *ls, int64_t upto, uint64_t *deleted)
{
	for (;;) {
		int64_t lo = one_int(ls->w, "SELECT min(seq) FROM lines", 0);
		if (!lo || lo > upto)
			return 0;
		int64_t hi = lo + RETENTION_CHUNK - 1 < upto ? lo + RETENTION_CHUNK - 1 : upto;
		char sql[512];
		snprintf(sql, sizeof(sql),
			 "BEGIN IMMEDIATE;"
			 "INSERT INTO lines_fts(lines_fts,rowid,msg) SELECT 'delete',seq,msg FROM lines"
			 " WHERE seq BETWEEN %lld AND %lld;"
			 "DELETE FROM lines WHERE seq BETWEEN %lld AND %lld;"
			 "DELETE FROM marks WHERE last <= %lld;"
			 "COMMIT;",
			 (long long)lo, (long long)hi, (long long)lo, (long long)hi, (long long)hi);
		char cnt[160];
		snprintf(cnt, sizeof(cnt), "SELECT count(*) FROM lines WHERE seq BETWEEN %lld AND %lld",
			 (long long)lo, (long long)hi);
		int64_t n = one_int(ls->w, cnt, 0);
		if (sqlite3_exec(ls->w, sql, NULL, NULL, NULL) != SQLITE_OK) {
			int rc = db_err(ls->w);
			sqlite3_exec(ls->w, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
		*deleted += (uint64_t)n;
		if (ls->mark_first && ls->mark_last <= hi)
			ls->mark_first = 0;
	}
}

int logstore_retention_run(struct logstore *ls, int64_t now)
{
	pthread_mutex_lock(&ls->wlock);
	ls->last_retention_ms = now;
	uint64_t deleted = 0;
	int rc = 0;
	if (ls->cfg.retention_ms > 0) {
		int64_t cutoff = (now - ls->cfg.retention_ms) * 1000000;
		sqlite3_stmt *st;
		int64_t upto = 0;
		if (sqlite3_prepare_v2(ls->w, "SELECT max(last) FROM marks WHERE tmax < ?", -1, &st,
				       NULL) == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, cutoff);
			if (sqlite3_step(st) == SQLITE_ROW)
				upto = sqlite3_column_int64(st, 0);
			sqlite3_finalize(st);
		}
		if (upto > 0)
			rc = delete_upto(ls, upto, &deleted);
		if (rc == 0 && sqlite3_prepare_v2(ls->w, "DELETE FROM containers WHERE last_ns < ?",
						  -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, cutoff);
			sqlite3_step(st);
			sqlite3_finalize(st);
			cache_clear(ls);
		}
	}
	if (rc == 0 && ls->cfg.max_size_bytes > 0) {
		int64_t pages = one_int(ls->w, "PRAGMA page_count", 0);
		int64_t freep = one_int(ls->w, "PRAGMA freelist_count", 0);
		int64_t psize = one_int(ls->w, "PRAGMA page_size", 4096);
		uint64_t used = (uint64_t)((pages - freep) * psize);
		uint64_t held = __atomic_load_n(&ls->lines_held, __ATOMIC_RELAXED) - deleted;
		if (used > ls->cfg.max_size_bytes && held > 0) {
			/* Down to 90% of the cap, assuming lines of the average size. */
			double per_line = (double)used / (double)held;
			uint64_t excess = used - ls->cfg.max_size_bytes * 9 / 10;
			int64_t drop = (int64_t)((double)excess / per_line) + 1;
			int64_t lo = one_int(ls->w, "SELECT min(seq) FROM lines", 0);
			if (lo)
				rc = delete_upto(ls, lo + drop - 1, &deleted);
		}
	}
	if (deleted) {
		uint64_t held = __atomic_load_n(&ls->lines_held, __ATOMIC_RELAXED);
		__atomic_store_n(&ls->lines_held, held > deleted ? held - deleted : 0,
				 __ATOMIC_RELAXED);
		__atomic_add_fetch(&ls->retention_deleted, deleted, __ATOMIC_RELAXED);
		/* The precise count, now that the deletes are done. */
		__atomic_store_n(&ls->lines_held,
				 (uint64_t)one_int(ls->w, "SELECT count(*) FROM lines", 0),
				 __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&ls->wlock);
	return rc;
}

/* ---- readers ------------------------------------------------------------------ */

static sqlite3 *reader_get(struct logstore *ls, int *slot)
{
	pthread_mutex_lock(&ls->rlock);
	for (;;) {
		for (int i = 0; i < NREADERS; i++) {
			if (!ls->rbusy[i]) {
				ls->rbusy[i] = true;
				*slot = i;
				pthread_mutex_unlock(&ls->rlock);
				return ls->readers[i];
			}
		}
		pthread_cond_wait(&ls->rcond, &ls->rlock);
	}
}

static void reader_put(struct logstore *ls, int slot)
{
	sqlite3_progress_handler(ls->readers[slot], 0, NULL, NULL);
	pthread_mutex_lock(&ls->rlock);
	ls->rbusy[slot] = false;
	pthread_cond_signal(&ls->rcond);
	pthread_mutex_unlock(&ls->rlock);
}

static int past_deadline(void *arg)
{
	return mono_ns() > *(const int64_t *)arg;
}

/* Resolves q->container into a cid: exact id, exact name (the most
 * recently active with it), then a unique id prefix of 4+ characters. */
static int resolve(sqlite3 *db, const char *which, int64_t *cid)
{
	static const char *const sqls[] = {
		"SELECT cid FROM containers WHERE id=?1",
		"SELECT cid FROM containers WHERE name=?1 ORDER BY last_ns DESC LIMIT 1",
		"SELECT cid FROM containers WHERE id>=?1 AND id<?1||'~' LIMIT 2",
	};
	size_t len = strlen(which);
	for (size_t i = 0; i < ARRAY_LEN(sqls); i++) {
		if (i == 2 && len < 4)
			break;
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(db, sqls[i], -1, &st, NULL) != SQLITE_OK)
			return -EIO;
		sqlite3_bind_text(st, 1, which, -1, SQLITE_STATIC);
		int found = 0;
		while (sqlite3_step(st) == SQLITE_ROW) {
			*cid = sqlite3_column_int64(st, 0);
			found++;
		}
		sqlite3_finalize(st);
		if (found == 1)
			return 0;
		if (found > 1)
			return -ENOTUNIQ;
	}
	return -ENOENT;
}

/* Turns user words into an FTS5 query: every word (or "quoted phrase") is
 * matched as a string; a trailing * makes a prefix query. Words without a
 * letter or digit match nothing in the index and are left out. */
static int fts_query(const char *text, struct buf *out)
{
	const char *p = text;
	size_t terms = 0;
	while (*p) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		const char *s = p, *e;
		if (*p == '"') {
			s = ++p;
			while (*p && *p != '"')
				p++;
			e = p;
			if (*p)
				p++;
		} else {
			while (*p && *p != ' ' && *p != '\t')
				p++;
			e = p;
		}
		bool prefix = e > s && e[-1] == '*';
		if (prefix)
			e--;
		bool word = false;
		for (const char *c = s; c < e; c++)
			word |= ((unsigned char)*c >= 0x80) || (*c >= '0' && *c <= '9') ||
				((*c | 0x20) >= 'a' && (*c | 0x20) <= 'z');
		if (!word)
			continue;
		if (++terms > FTS_MAX_TERMS)
			return -E2BIG;
		if (out->len)
			buf_putc(out, ' ');
		buf_putc(out, '"');
		for (const char *c = s; c < e; c++) {
			if (*c == '"')
				buf_putc(out, '"');
			buf_putc(out, *c);
		}
		buf_putc(out, '"');
		if (prefix)
			buf_putc(out, '*');
	}
	return out->overflow ? -E2BIG : (int)terms;
}

/* Converts since/until into a range of seq through the marks. */
static void seq_bounds(sqlite3 *db, const struct log_query *q, int64_t *lo, int64_t *hi)
{
	sqlite3_stmt *st;
	if (q->since_ns && sqlite3_prepare_v2(db, "SELECT min(first) FROM marks WHERE tmax >= ?",
					      -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, q->since_ns);
		if (sqlite3_step(st) == SQLITE_ROW)
			*lo = sqlite3_column_type(st, 0) == SQLITE_NULL ? INT64_MAX
									: sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	if (q->until_ns && sqlite3_prepare_v2(db, "SELECT max(last) FROM marks WHERE tmin < ?",
					      -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, q->until_ns);
		if (sqlite3_step(st) == SQLITE_ROW)
			*hi = sqlite3_column_type(st, 0) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
}

/* A prepared scan over the lines matching q, in seq order. */
struct scan {
	sqlite3_stmt *st;
	regex_t re;
	bool has_re;
	uint64_t scanned, max_scan;
	bool partial;
	bool empty;              /* nothing can match: no statement */
};

enum { COL_SEQ, COL_T, COL_STREAM, COL_LEVEL, COL_FLAGS, COL_MSG, COL_CID, COL_PAT };

static int scan_open(sqlite3 *db, const struct log_query *q, bool desc, struct scan *sc,
		     char *err, size_t errsize)
{
	memset(sc, 0, sizeof(*sc));
	sc->max_scan = q->max_scan ? q->max_scan : MAX_SCAN_DEFAULT;
	int64_t cid = 0;
	if (q->container && *q->container) {
		int rc = resolve(db, q->container, &cid);
		if (rc == -ENOENT)
			snprintf(err, errsize, "no logs of a container \"%s\"", q->container);
		else if (rc == -ENOTUNIQ)
			snprintf(err, errsize, "\"%s\" matches the logs of several containers",
				 q->container);
		if (rc < 0)
			return rc;
	}
	struct buf fts;
	buf_init(&fts, 8192);
	int nterms = q->text ? fts_query(q->text, &fts) : 0;
	if (nterms < 0) {
		snprintf(err, errsize, "full-text query too long (at most %d words)", FTS_MAX_TERMS);
		buf_fini(&fts);
		return -EINVAL;
	}
	if (q->regex && *q->regex) {
		/* ?regex= of /api/v1/logs: the PromQL limits on regcomp's blow-ups. */
		char why[200];
		if (promql_regex_check(q->regex, why, sizeof(why)) < 0) {
			snprintf(err, errsize, "regular expression \"%.200s\": %s", q->regex, why);
			buf_fini(&fts);
			return -EINVAL;
		}
		int flags = REG_EXTENDED | REG_NOSUB | (q->icase ? REG_ICASE : 0);
		int rc = regcomp(&sc->re, q->regex, flags);
		if (rc) {
			char m[256];
			regerror(rc, &sc->re, m, sizeof(m));
			snprintf(err, errsize, "regular expression \"%s\": %s", q->regex, m);
			buf_fini(&fts);
			return -EINVAL;
		}
		sc->has_re = true;
	}
	int64_t lo = 0, hi = INT64_MAX;
	seq_bounds(db, q, &lo, &hi);
	if (q->after_seq && (int64_t)q->after_seq >= lo)
		lo = (int64_t)q->after_seq + 1;
	if (q->before_seq && (int64_t)q->before_seq - 1 < hi)
		hi = (int64_t)q->before_seq - 1;
	if (lo > hi || (q->text && nterms == 0 && *q->text)) {
		sc->empty = true;
		buf_fini(&fts);
		return 0;
	}

	char sql[1024];
	const char *rid = nterms ? "f.rowid" : "l.seq";
	int n = snprintf(sql, sizeof(sql),
			 "SELECT l.seq,l.t,l.stream,l.level,l.flags,l.msg,l.cid,l.pat FROM %s WHERE %s",
			 nterms ? "lines_fts f JOIN lines l ON l.seq=f.rowid" :
			 cid ? "lines l INDEXED BY lines_cid" : "lines l",
			 nterms ? "lines_fts MATCH ?1" : "1");
	if (cid)
		n += snprintf(sql + n, sizeof(sql) - (size_t)n, " AND l.cid=?2");
	if (q->since_ns)
		n += snprintf(sql + n, sizeof(sql) - (size_t)n, " AND l.t>=?3");
	if (q->until_ns)
		n += snprintf(sql + n, sizeof(sql) - (size_t)n, " AND l.t<?4");
	if (q->levels)
		n += snprintf(sql + n, sizeof(sql) - (size_t)n, " AND ((1<<l.level)&?5)!=0");
	if (q->stream > 0)
		n += snprintf(sql + n, sizeof(sql) - (size_t)n, " AND l.stream=?6");
	if (lo > 0)
		n += snprintf(sql + n, sizeof(sql) - (size_t)n, " AND %s>=?7", rid);
	if (hi < INT64_MAX)
		n += snprintf(sql + n, sizeof(sql) - (size_t)n, " AND %s<=?8", rid);
	snprintf(sql + n, sizeof(sql) - (size_t)n, " ORDER BY %s %s", rid, desc ? "DESC" : "ASC");
	if (sqlite3_prepare_v2(db, sql, -1, &sc->st, NULL) != SQLITE_OK) {
		snprintf(err, errsize, "log query: %s", sqlite3_errmsg(db));
		buf_fini(&fts);
		if (sc->has_re)
			regfree(&sc->re);
		return -EIO;
	}
	if (nterms)
		sqlite3_bind_text(sc->st, 1, fts.data, (int)fts.len, SQLITE_TRANSIENT);
	sqlite3_bind_int64(sc->st, 2, cid);
	sqlite3_bind_int64(sc->st, 3, q->since_ns);
	sqlite3_bind_int64(sc->st, 4, q->until_ns);
	sqlite3_bind_int64(sc->st, 5, q->levels);
	sqlite3_bind_int(sc->st, 6, q->stream - 1);
	sqlite3_bind_int64(sc->st, 7, lo);
	sqlite3_bind_int64(sc->st, 8, hi);
	buf_fini(&fts);
	return 0;
}

/* 1 with a matching row, 0 at the end, -EINVAL for a bad FTS query, -EIO. */
static int scan_next(sqlite3 *db, struct scan *sc, char *err, size_t errsize)
{
	if (sc->empty)
		return 0;
	for (;;) {
		int rc = sqlite3_step(sc->st);
		if (rc == SQLITE_DONE)
			return 0;
		if (rc != SQLITE_ROW) {
			if ((sqlite3_extended_errcode(db) & 0xff) == SQLITE_INTERRUPT) {
				sc->partial = true;
				return 0;
			}
			snprintf(err, errsize, "log query: %s", sqlite3_errmsg(db));
			return (rc & 0xff) == SQLITE_ERROR ? -EINVAL : -EIO;
		}
		if (!sc->has_re)
			return 1;
		if (sc->scanned >= sc->max_scan) {
			sc->partial = true;
			return 0;
		}
		sc->scanned++;
		const char *msg = (const char *)sqlite3_column_text(sc->st, COL_MSG);
		if (msg && regexec(&sc->re, msg, 0, NULL, 0) == 0)
			return 1;
	}
}

static void scan_close(struct scan *sc)
{
	sqlite3_finalize(sc->st);
	if (sc->has_re)
		regfree(&sc->re);
	sc->st = NULL;
	sc->has_re = false;
}

/* cid -> (id, name), looked up once per result. */
struct names {
	int64_t cid[64];
	const char *id[64], *name[64];
	size_t n;
};

static void name_of(sqlite3 *db, struct names *nm, struct arena *a, int64_t cid,
		    const char **id, const char **name)
{
	for (size_t i = 0; i < nm->n; i++) {
		if (nm->cid[i] == cid) {
			*id = nm->id[i];
			*name = nm->name[i];
			return;
		}
	}
	*id = "";
	*name = NULL;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "SELECT id,name FROM containers WHERE cid=?", -1, &st, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_int64(st, 1, cid);
		if (sqlite3_step(st) == SQLITE_ROW) {
			const char *i0 = (const char *)sqlite3_column_text(st, 0);
			const char *n0 = (const char *)sqlite3_column_text(st, 1);
			*id = i0 ? arena_strdup(a, i0) : "";
			*name = n0 ? arena_strdup(a, n0) : NULL;
			if (!*id)
				*id = "";
		}
		sqlite3_finalize(st);
	}
	if (nm->n == ARRAY_LEN(nm->cid))
		nm->n = 0;
	nm->cid[nm->n] = cid;
	nm->id[nm->n] = *id;
	nm->name[nm->n] = *name;
	nm->n++;
}

int logstore_query(struct logstore *ls, const struct log_query *q, struct log_result *out,
		   char *err, size_t errsize)
{
	memset(out, 0, sizeof(*out));
	struct arena *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	out->mem_ = a;
	size_t limit = q->limit ? q->limit : QUERY_LIMIT_DEFAULT;
	if (limit > QUERY_LIMIT_MAX)
		limit = QUERY_LIMIT_MAX;
	out->lines = arena_alloc(a, limit * sizeof(*out->lines));
	if (!out->lines)
		return -ENOMEM;
	int slot;
	sqlite3 *db = reader_get(ls, &slot);
	int64_t deadline = mono_ns() + (int64_t)QUERY_TIMEOUT_MS * 1000000;
	sqlite3_progress_handler(db, 10000, past_deadline, &deadline);
	struct scan sc;
	int rc = scan_open(db, q, q->newest, &sc, err, errsize);
	struct names nm = { .n = 0 };
	while (rc == 0 && out->n < limit) {
		int r = scan_next(db, &sc, err, errsize);
		if (r <= 0) {
			rc = r;
			break;
		}
		struct log_line *l = &out->lines[out->n];
		l->seq = (uint64_t)sqlite3_column_int64(sc.st, COL_SEQ);
		l->time_ns = sqlite3_column_int64(sc.st, COL_T);
		l->stream = sqlite3_column_int(sc.st, COL_STREAM);
		l->level = sqlite3_column_int(sc.st, COL_LEVEL);
		l->flags = (uint32_t)sqlite3_column_int64(sc.st, COL_FLAGS);
		const char *msg = (const char *)sqlite3_column_text(sc.st, COL_MSG);
		l->msg_len = (size_t)sqlite3_column_bytes(sc.st, COL_MSG);
		char *m = arena_alloc(a, l->msg_len + 1);
		if (!m) {
			rc = -ENOMEM;
			break;
		}
		memcpy(m, msg ? msg : "", l->msg_len);
		m[l->msg_len] = '\0';
		l->msg = m;
		name_of(db, &nm, a, sqlite3_column_int64(sc.st, COL_CID), &l->id, &l->name);
		out->n++;
	}
	out->partial = sc.partial;
	out->scanned = sc.scanned;
	scan_close(&sc);
	reader_put(ls, slot);
	if (rc == 0 && q->newest) {
		for (size_t i = 0, j = out->n ? out->n - 1 : 0; i < j; i++, j--) {
			struct log_line t = out->lines[i];
			out->lines[i] = out->lines[j];
			out->lines[j] = t;
		}
	}
	return rc;
}

void logstore_result_free(struct log_result *r)
{
	if (!r)
		return;
	if (r->mem_) {
		arena_free(r->mem_);
		free(r->mem_);
	}
	memset(r, 0, sizeof(*r));
}

/* ---- counts and patterns ----------------------------------------------------- */

static int count_cmp(const void *a, const void *b)
{
	const struct log_count *x = a, *y = b;
	return x->count < y->count ? 1 : x->count > y->count ? -1 : strcmp(x->id, y->id);
}

int logstore_count_by_container(struct logstore *ls, const struct log_query *q,
				struct log_count **out, size_t *n, bool *partial, char *err,
				size_t errsize)
{
	*out = NULL;
	*n = 0;
	if (partial)
		*partial = false;
	struct log_query qq = *q;
	qq.before_seq = 0;
	int slot;
	sqlite3 *db = reader_get(ls, &slot);
	int64_t deadline = mono_ns() + (int64_t)QUERY_TIMEOUT_MS * 1000000;
	sqlite3_progress_handler(db, 10000, past_deadline, &deadline);
	struct scan sc;
	int rc = scan_open(db, &qq, false, &sc, err, errsize);
	struct log_count *c = NULL;
	int64_t *cids = NULL;
	size_t nc = 0, cap = 0;
	while (rc == 0) {
		int r = scan_next(db, &sc, err, errsize);
		if (r <= 0) {
			rc = r;
			break;
		}
		int64_t cid = sqlite3_column_int64(sc.st, COL_CID);
		size_t k;
		for (k = 0; k < nc && cids[k] != cid; k++)
			;
		if (k == nc) {
			if (nc == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct log_count *nc2 = realloc(c, ncap * sizeof(*c));
				if (nc2)
					c = nc2;
				int64_t *ni = nc2 ? realloc(cids, ncap * sizeof(*cids)) : NULL;
				if (!nc2 || !ni) {
					rc = -ENOMEM;
					break;
				}
				cids = ni;
				cap = ncap;
			}
			memset(&c[nc], 0, sizeof(c[nc]));
			cids[nc] = cid;
			c[nc].first_seq = (uint64_t)sqlite3_column_int64(sc.st, COL_SEQ);
			c[nc].first_time_ns = sqlite3_column_int64(sc.st, COL_T);
			const char *msg = (const char *)sqlite3_column_text(sc.st, COL_MSG);
			c[nc].first_msg = strdup(msg ? msg : "");
			nc++;
		}
		c[k].count++;
	}
	if (partial)
		*partial = sc.partial;
	scan_close(&sc);
	for (size_t k = 0; k < nc; k++) {
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(db, "SELECT id,name FROM containers WHERE cid=?", -1, &st,
				       NULL) != SQLITE_OK)
			continue;
		sqlite3_bind_int64(st, 1, cids[k]);
		if (sqlite3_step(st) == SQLITE_ROW) {
			const char *id = (const char *)sqlite3_column_text(st, 0);
			const char *name = (const char *)sqlite3_column_text(st, 1);
			snprintf(c[k].id, sizeof(c[k].id), "%s", id ? id : "");
			snprintf(c[k].name, sizeof(c[k].name), "%s", name ? name : "");
		}
		sqlite3_finalize(st);
	}
	reader_put(ls, slot);
	free(cids);
	if (rc < 0) {
		logstore_counts_free(c, nc);
		return rc;
	}
	if (nc > 1)
		qsort(c, nc, sizeof(*c), count_cmp);
	*out = c;
	*n = nc;
	return 0;
}

void logstore_counts_free(struct log_count *c, size_t n)
{
	for (size_t i = 0; c && i < n; i++)
		free(c[i].first_msg);
	free(c);
}

int logstore_count(struct logstore *ls, const struct log_query *q, uint64_t *count,
		   struct log_count *first, char *err, size_t errsize)
{
	struct log_count *c;
	size_t n;
	*count = 0;
	if (first)
		memset(first, 0, sizeof(*first));
	int rc = logstore_count_by_container(ls, q, &c, &n, NULL, err, errsize);
	if (rc < 0)
		return rc;
	size_t oldest = 0;
	for (size_t i = 0; i < n; i++) {
		*count += c[i].count;
		if (c[i].first_seq < c[oldest].first_seq)
			oldest = i;
	}
	if (first && n) {
		*first = c[oldest];
		first->count = *count;
		c[oldest].first_msg = NULL;
	}
	logstore_counts_free(c, n);
	return 0;
}

struct pat_slot {
	uint64_t hash, count, seq;
	char *example;
};

static int pat_cmp(const void *a, const void *b)
{
	const struct pat_slot *x = a, *y = b;
	return x->count < y->count ? 1 : x->count > y->count ? -1 : (x->hash < y->hash ? -1 : 1);
}

#define PAT_TABLE (1u << 16)

int logstore_patterns(struct logstore *ls, const struct log_query *q, size_t k,
		      struct log_pattern **out, size_t *n, char *err, size_t errsize)
{
	*out = NULL;
	*n = 0;
	if (k == 0 || k > 1000)
		k = k ? 1000 : 20;
	struct pat_slot *tab = calloc(PAT_TABLE, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	size_t used = 0;
	struct log_query qq = *q;
	int slot;
	sqlite3 *db = reader_get(ls, &slot);
	int64_t deadline = mono_ns() + (int64_t)QUERY_TIMEOUT_MS * 1000000;
	sqlite3_progress_handler(db, 10000, past_deadline, &deadline);
	struct scan sc;
	/* Newest first, so that each pattern's example is its newest line and
	 * a scan cut short by max_scan covers the recent past. */
	if (!qq.max_scan)
		qq.max_scan = 1000000;
	int rc = scan_open(db, &qq, true, &sc, err, errsize);
	uint64_t rows = 0;
	while (rc == 0) {
		int r = scan_next(db, &sc, err, errsize);
		if (r <= 0) {
			rc = r;
			break;
		}
		if (++rows > qq.max_scan)
			break;
		uint64_t h = (uint64_t)sqlite3_column_int64(sc.st, COL_PAT);
		size_t i = (size_t)(h * 0x9E3779B97F4A7C15ULL >> 48) & (PAT_TABLE - 1);
		while (tab[i].hash && tab[i].hash != h)
			i = (i + 1) & (PAT_TABLE - 1);
		if (!tab[i].hash) {
			if (used >= PAT_TABLE * 3 / 4)
				continue; /* a full table counts only patterns it has */
			const char *msg = (const char *)sqlite3_column_text(sc.st, COL_MSG);
			tab[i].hash = h;
			tab[i].seq = (uint64_t)sqlite3_column_int64(sc.st, COL_SEQ);
			tab[i].example = strdup(msg ? msg : "");
			used++;
		}
		tab[i].count++;
	}
	scan_close(&sc);
	reader_put(ls, slot);
	size_t m = 0;
	for (size_t i = 0; i < PAT_TABLE; i++)
		if (tab[i].hash)
			tab[m++] = tab[i];
	qsort(tab, m, sizeof(*tab), pat_cmp);
	struct log_pattern *p = rc == 0 ? calloc(m < k ? (m ? m : 1) : k, sizeof(*p)) : NULL;
	if (rc == 0 && !p)
		rc = -ENOMEM;
	for (size_t i = 0; i < m; i++) {
		if (rc == 0 && i < k && tab[i].example) {
			size_t len = strlen(tab[i].example);
			char tmpl[1024];
			logstore_template(tab[i].example, len, tmpl, sizeof(tmpl));
			p[*n].hash = tab[i].hash;
			p[*n].count = tab[i].count;
			p[*n].template_text = strdup(tmpl);
			p[*n].example = tab[i].example;
			tab[i].example = NULL;
			(*n)++;
		}
		free(tab[i].example);
	}
	free(tab);
	if (rc < 0) {
		logstore_patterns_free(p, *n);
		*n = 0;
		return rc;
	}
	*out = p;
	return 0;
}

void logstore_patterns_free(struct log_pattern *p, size_t n)
{
	for (size_t i = 0; p && i < n; i++) {
		free(p[i].template_text);
		free(p[i].example);
	}
	free(p);
}

/* ---- containers, waiting, stats ------------------------------------------------ */

int logstore_containers(struct logstore *ls, struct log_container **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	int slot;
	sqlite3 *db = reader_get(ls, &slot);
	sqlite3_stmt *st;
	int rc = 0;
	size_t cap = 0;
	struct log_container *c = NULL;
	if (sqlite3_prepare_v2(db, "SELECT id,name,lines,first_ns,last_ns FROM containers"
				   " ORDER BY last_ns DESC", -1, &st, NULL) != SQLITE_OK) {
		reader_put(ls, slot);
		return -EIO;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			struct log_container *nc = realloc(c, cap * sizeof(*c));
			if (!nc) {
				rc = -ENOMEM;
				break;
			}
			c = nc;
		}
		struct log_container *e = &c[(*n)++];
		memset(e, 0, sizeof(*e));
		const char *id = (const char *)sqlite3_column_text(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		snprintf(e->id, sizeof(e->id), "%s", id ? id : "");
		snprintf(e->name, sizeof(e->name), "%s", name ? name : "");
		e->lines = (uint64_t)sqlite3_column_int64(st, 2);
		e->first_ns = sqlite3_column_int64(st, 3);
		e->last_ns = sqlite3_column_int64(st, 4);
	}
	sqlite3_finalize(st);
	reader_put(ls, slot);
	if (rc < 0) {
		free(c);
		*n = 0;
		return rc;
	}
	*out = c;
	return 0;
}

uint64_t logstore_last_seq(struct logstore *ls)
{
	pthread_mutex_lock(&ls->wait_lock);
	uint64_t s = ls->last_seq;
	pthread_mutex_unlock(&ls->wait_lock);
	return s;
}

int logstore_wait(struct logstore *ls, uint64_t after_seq, int64_t timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t ns = ts.tv_nsec + (timeout_ms % 1000) * 1000000;
	ts.tv_sec += timeout_ms / 1000 + ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	pthread_mutex_lock(&ls->wait_lock);
	int rc = 0;
	for (;;) {
		if (ls->interrupted) {
			rc = -ESHUTDOWN;
			break;
		}
		if (ls->last_seq > after_seq) {
			rc = 1;
			break;
		}
		if (pthread_cond_timedwait(&ls->wait_cond, &ls->wait_lock, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&ls->wait_lock);
	return rc;
}

void logstore_stats(struct logstore *ls, struct logstore_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->lines_stored = __atomic_load_n(&ls->lines_stored, __ATOMIC_RELAXED);
	out->bytes_stored = __atomic_load_n(&ls->bytes_stored, __ATOMIC_RELAXED);
	out->lines_held = __atomic_load_n(&ls->lines_held, __ATOMIC_RELAXED);
	out->write_errors = __atomic_load_n(&ls->write_errors, __ATOMIC_RELAXED);
	out->retention_deleted = __atomic_load_n(&ls->retention_deleted, __ATOMIC_RELAXED);
	out->write_ok = __atomic_load_n(&ls->write_ok, __ATOMIC_RELAXED);
	struct stat st;
	char wal[PATH_MAX + 40];
	if (stat(ls->path, &st) == 0)
		out->db_bytes += (uint64_t)st.st_size;
	snprintf(wal, sizeof(wal), "%s-wal", ls->path);
	if (stat(wal, &st) == 0)
		out->db_bytes += (uint64_t)st.st_size;
}
