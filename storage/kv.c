/*
 * kv.c - a small keyed record store in its own SQLite file, for the state
 * that is not a time series: alert state across restarts, silences, the
 * notification queue. Records live in namespaces; keys sort as text, so a
 * queue uses zero-padded sequence numbers as keys.
 *
 * One connection behind one mutex: these tables see a few writes a second
 * at most, and every write is its own durable transaction (WAL,
 * synchronous=NORMAL: a process crash loses nothing committed). A file that
 * is not a database is moved aside, as the metric store does.
 */
#include "storage/storage.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct kv {
	pthread_mutex_t lock;
	sqlite3 *db;
};

static const char schema[] = "PRAGMA journal_mode=WAL;"
			     "PRAGMA synchronous=NORMAL;"
			     "CREATE TABLE IF NOT EXISTS kv(ns TEXT NOT NULL, key TEXT NOT NULL,"
			     " value BLOB NOT NULL, PRIMARY KEY(ns, key)) WITHOUT ROWID;";

static int open_db(sqlite3 **db, const char *path, char *err, size_t errsize)
{
	int rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
					       SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(*db, 5000);
		rc = sqlite3_exec(*db, schema, NULL, NULL, NULL);
	}
	if (rc != SQLITE_OK) {
		snprintf(err, errsize, "%s: %s", path, *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
		sqlite3_close(*db);
		*db = NULL;
		int prim = rc & 0xff;
		return (prim == SQLITE_CORRUPT || prim == SQLITE_NOTADB) ? -EILSEQ : -EIO;
	}
	return 0;
}

int kv_open(struct kv **out, const char *path, char *err, size_t errsize)
{
	struct kv *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	int rc = open_db(&k->db, path, err, errsize);
	if (rc == -EILSEQ) {
		/* Not a database: keep it for inspection, start empty. */
		char aside[4200];
		snprintf(aside, sizeof(aside), "%s.corrupt-%lld", path, (long long)time(NULL));
		if (rename(path, aside) == 0) {
			log_msg(LOG_WARN, "%s: not a database, moved to %s", path, aside);
			rc = open_db(&k->db, path, err, errsize);
		}
	}
	if (rc < 0) {
		free(k);
		return rc;
	}
	pthread_mutex_init(&k->lock, NULL);
	*out = k;
	return 0;
}

void kv_close(struct kv *k)
{
	if (!k)
		return;
	sqlite3_close(k->db);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

/* Runs sql with ns, key (and value) bound; for statements without rows. */
static int run(struct kv *k, const char *sql, const char *ns, const char *key, const void *val,
	       size_t len)
{
	sqlite3_stmt *st = NULL;
	pthread_mutex_lock(&k->lock);
	int rc = sqlite3_prepare_v2(k->db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
		if (key)
			sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
		if (val)
			sqlite3_bind_blob(st, 3, val, (int)len, SQLITE_STATIC);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&k->lock);
	if (rc == SQLITE_DONE)
		return 0;
	return (rc & 0xff) == SQLITE_FULL ? -ENOSPC : -EIO;
}

int kv_put(struct kv *k, const char *ns, const char *key, const void *val, size_t len)
{
	if (len > INT32_MAX)
		return -EINVAL;
	return run(k, "INSERT OR REPLACE INTO kv(ns, key, value) VALUES(?1, ?2, ?3)", ns, key,
		   val ? val : "", len);
}

int kv_del(struct kv *k, const char *ns, const char *key)
{
	return run(k, "DELETE FROM kv WHERE ns = ?1 AND key = ?2", ns, key, NULL, 0);
}

int kv_clear(struct kv *k, const char *ns)
{
	return run(k, "DELETE FROM kv WHERE ns = ?1", ns, NULL, NULL, 0);
}

int kv_get(struct kv *k, const char *ns, const char *key, void **val, size_t *len)
{
	sqlite3_stmt *st = NULL;
	int ret = -EIO;
	pthread_mutex_lock(&k->lock);
	if (sqlite3_prepare_v2(k->db, "SELECT value FROM kv WHERE ns = ?1 AND key = ?2", -1, &st,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			size_t n = (size_t)sqlite3_column_bytes(st, 0);
			char *p = malloc(n + 1);
			if (p) {
				if (n)
					memcpy(p, sqlite3_column_blob(st, 0), n);
				p[n] = '\0';
				*val = p;
				*len = n;
				ret = 0;
			} else {
				ret = -ENOMEM;
			}
		} else if (rc == SQLITE_DONE) {
			ret = -ENOENT;
		}
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&k->lock);
	return ret;
}

int kv_each(struct kv *k, const char *ns, const char *after, size_t limit, kv_each_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	int ret = 0;
	pthread_mutex_lock(&k->lock);
	if (sqlite3_prepare_v2(k->db,
			       "SELECT key, value FROM kv WHERE ns = ?1 AND key > ?2 ORDER BY key"
			       " LIMIT ?3",
			       -1, &st, NULL) != SQLITE_OK) {
		ret = -EIO;
		goto out;
	}
	sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, after ? after : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, limit ? (sqlite3_int64)limit : -1);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(st, 0);
		const void *v = sqlite3_column_blob(st, 1);
		size_t n = (size_t)sqlite3_column_bytes(st, 1);
		if ((ret = fn(arg, key, v ? v : "", n)) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		ret = -EIO;
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&k->lock);
	return ret;
}
