/*
 * cold.c - series that only SQLite holds. A series that has been stale for
 * storage.evict_stale_after (a container that went away), with everything
 * it had open sealed and written, leaves the head: its row in the series
 * table gets the bounds of its data (mint, maxt; NULL while the series is
 * in memory) and the memory is freed, so the head's size follows the
 * containers that run, not every container the host ever had. Its chunks
 * stay where they were until retention takes them.
 *
 * Queries still find it: cold_select reads the rows whose bounds meet the
 * query's range (a partial index on maxt over evicted rows only) and
 * matches their labels in C; selection merges them with the head's
 * postings, the head's copy winning when a series is in both. Reading its
 * points needs nothing else, since the iterators read SQLite by id. A
 * series that comes back (a restarted container: same labels) takes its
 * old id again (cold_find, through a partial index on the label text), and
 * its row is written again with NULL bounds in the flush that saves its
 * first new samples.
 *
 * Threads: cold_evict runs on the writer thread; cold_find on the
 * appending thread under the store's write lock; cold_select on any
 * thread, without the store lock (SQLite only, through a read connection).
 */
#include "storage/internal.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

int series_text_parse(const char *text, struct store_label *l, size_t max, char *mem)
{
	const char *brace = strchr(text, '{');
	if (!brace)
		brace = text + strlen(text);
	if (max < 1 || (size_t)(brace - text) >= STORE_MAX_LABEL_BYTES / 2)
		return -EINVAL;
	memcpy(mem, text, (size_t)(brace - text));
	mem[brace - text] = '\0';
	l[0] = (struct store_label){ "__name__", mem };
	const char *end = "}";
	int n = *brace ? labels_parse(brace + 1, l + 1, max - 1, mem + (brace - text) + 1, true,
				      &end) : 0;
	if (n < 0 || *end != '}')
		return -EINVAL;
	return n + 1;
}

/* ---- eviction (writer thread) ------------------------------------------------- */

struct evictee {
	uint32_t id;
	bool counter, compact;
	int64_t min_t, max_t, last_t;
};

/* Closes and seals whatever the series still has open, so that the next
 * flush writes it out; true when nothing is left open or pending. */
static bool seal_everything(struct store *s, struct series *se)
{
	if (se->raw.count)
		store_seal_raw(s, se);
	for (int k = 0; k < 2; k++) {
		struct tier_head *th = se->tier[k];
		if (!th)
			continue;
		/* The bucket is closed early: no sample of it can come any more
		 * (a series that comes back starts new chunks). */
		tier_acc_close(s, se, k);
		tier_seal(s, se, k);
		tier_head_drop(s, se, k);
		head_mark_tier(s, se, k);
	}
	se->flags &= (uint8_t)~S_IDLE;
	return !se->pend && !se->raw.count && (se->flags & S_SAVED) && !(se->flags & S_DIRTY);
}

/* now: on the append clock (monotonic ms). */
static bool evictable(const struct series *se, int64_t now, int64_t keep_ms)
{
	return !(se->flags & S_ACTIVE) && se->last_t != INT64_MIN && now - se->touched_ms >= keep_ms;
}

/* Under the write lock: the series ready to leave, after sealing what the
 * others still have open. */
static struct evictee *pick(struct store *s, int64_t now, size_t *n)
{
	*n = 0;
	struct evictee *v = NULL;
	size_t cap = 0;
	struct series *se;
	for (uint32_t id = 0; (se = series_next(s, &id)); id++) {
		if (!evictable(se, now, s->cfg.evict_stale_after_ms) || !seal_everything(s, se))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 256;
			struct evictee *nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		v[(*n)++] = (struct evictee){ id, se->kind == STORE_COUNTER, se->flags & S_COMPACT,
					      se->min_t, se->max_t, se->last_t };
		se->flags &= (uint8_t)~S_COMPACT;
	}
	return v;
}

/* Writes the bounds of the leaving series (after merging their small
 * roll-up chunks) in one transaction. An SQLite code. */
static int write_bounds(struct store *s, const struct evictee *v, size_t n)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, "UPDATE series SET mint=?2, maxt=?3 WHERE id=?1", -1, &st,
				    NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	for (size_t i = 0; rc == SQLITE_OK && i < n; i++) {
		for (int t = STORE_TIER_1M; v[i].compact && t < NTIERS; t++)
			db_compact_series(s, t, v[i].id, v[i].counter);
		sqlite3_bind_int64(st, 1, v[i].id);
		sqlite3_bind_int64(st, 2, v[i].min_t);
		sqlite3_bind_int64(st, 3, v[i].max_t);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(s->db);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* Under the write lock: frees the series marked S_EVICT, after taking them
 * out of every list and cache slot that points at them. */
static void drop_marked(struct store *s)
{
	for (size_t i = 0; i < s->cc_nb; i++)
		for (struct ccache *c = s->cc[i]; c; c = c->next)
			for (uint32_t j = 0; j < c->nslots; j++)
				if (c->slots[j].s && (c->slots[j].s->flags & S_EVICT))
					c->slots[j].s = NULL;
	size_t k = 0;
	for (size_t i = 0; i < s->nidle; i++)
		if (!(s->idle[i]->flags & S_EVICT))
			s->idle[k++] = s->idle[i];
	s->nidle = k;
	struct series *se;
	for (uint32_t id = 0; (se = series_next(s, &id)); id++)
		if (se->flags & S_EVICT)
			series_free(s, se);
}

void cold_evict(struct store *s)
{
	if (s->cfg.evict_stale_after_ms <= 0)
		return;
	int64_t now = mono_ns() / 1000000;
	pthread_rwlock_wrlock(&s->lock);
	size_t n;
	struct evictee *v = pick(s, now, &n);
	pthread_rwlock_unlock(&s->lock);
	if (!n || write_bounds(s, v, n) != SQLITE_OK) {
		free(v);
		return; /* tried again after the next flush */
	}
	pthread_rwlock_wrlock(&s->lock);
	size_t gone = 0;
	int64_t cold_maxt = s->cold_maxt;
	for (size_t i = 0; i < n; i++) {
		struct series *se = series_by_id(s, v[i].id);
		if (!se)
			continue;
		if (se->last_t != v[i].last_t || !evictable(se, now, s->cfg.evict_stale_after_ms) ||
		    se->pend || se->raw.count || se->tier[0] || se->tier[1] || (se->flags & S_DIRTY)) {
			/* It came back meanwhile: its row must say it is in memory
			 * again, or the next start would not load it. */
			se->flags &= (uint8_t)~S_SAVED;
			newser_push(s, se->id);
			continue;
		}
		se->flags |= S_EVICT;
		if (v[i].max_t > cold_maxt)
			cold_maxt = v[i].max_t;
		gone++;
	}
	drop_marked(s);
	__atomic_store_n(&s->cold_maxt, cold_maxt, __ATOMIC_RELAXED);
	s->evicted += gone;
	pthread_rwlock_unlock(&s->lock);
	free(v);
	if (gone) {
		log_debug("storage: %zu stale series left memory (kept in SQLite)", gone);
		/* Give back what they held, and the SQLite pages the churn
		 * cached, so that memory follows what runs now. */
		db_release_memory(s);
		malloc_trim(0);
	}
}

/* ---- finding them (any thread) ------------------------------------------------- */

/* Column i.. of a cold row: mint, maxt, newest raw point (INT64_MIN: none). */
static void row_bounds(sqlite3_stmt *st, int i, int64_t *b)
{
	b[0] = sqlite3_column_int64(st, i);
	b[1] = sqlite3_column_int64(st, i + 1);
	b[2] = sqlite3_column_type(st, i + 2) == SQLITE_NULL ? INT64_MIN :
	       sqlite3_column_int64(st, i + 2);
}

int cold_find(struct store *s, const char *text, uint32_t *id, int64_t *bounds)
{
	if (__atomic_load_n(&s->cold_maxt, __ATOMIC_RELAXED) == INT64_MIN)
		return 0; /* nothing has left memory */
	struct reader *r = db_reader_get(s, true);
	if (!r)
		return -EIO;
	sqlite3_stmt *st = r->cold_find;
	sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	int found = 0;
	if (rc == SQLITE_ROW) {
		*id = (uint32_t)sqlite3_column_int64(st, 0);
		row_bounds(st, 1, bounds);
		found = *id != 0;
	} else if (rc != SQLITE_DONE) {
		found = -EIO;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	db_reader_put(s, r);
	return found;
}

/* The newest point of series id at roll-up tier k+1 that ends after t, into
 * th as an accumulator to resume; false when there is none (or on error). */
static bool stored_bucket(struct store *s, uint32_t id, int k, int64_t t, struct tier_head *th)
{
	struct reader *r = db_reader_get(s, true);
	if (!r)
		return false;
	sqlite3_stmt *st = r->chunks[STORE_TIER_1M + k];
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, t);
	sqlite3_bind_int64(st, 3, INT64_MAX);
	int64_t pt;
	double v[CODEC_MAX_COLS];
	bool found = false;
	while (sqlite3_step(st) == SQLITE_ROW) { /* by maxt: the last row has it */
		struct cdec d;
		if (cdec_init(&d, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0)) < 0 ||
		    d.ncols != 5)
			continue;
		while (cdec_next(&d, &pt, v) > 0) {
			th->end = pt;
			th->min = v[0];
			th->max = v[1];
			th->sum = v[2];
			th->count = (uint32_t)v[3];
			th->last = v[4];
			found = true;
		}
	}
	sqlite3_reset(st);
	db_reader_put(s, r);
	return found && th->end > t;
}

void cold_revived(struct store *s, struct series *se, const int64_t *b)
{
	/* Raw samples after its newest one only; each roll-up tier may hold
	 * a point up to a bucket past maxt, so reads of every tier look in
	 * SQLite. */
	se->min_t = b[0];
	se->max_t = b[1];
	se->last_t = se->disk_maxt[STORE_TIER_RAW] = b[2];
	se->disk_maxt[STORE_TIER_1M] = b[1] + store_tier_width_ms(STORE_TIER_1M);
	se->disk_maxt[STORE_TIER_1H] = b[1] + store_tier_width_ms(STORE_TIER_1H);
	/* Its last roll-up buckets were closed early as it left (seal_everything):
	 * a return within one goes on with it rather than writing a second
	 * point for the same bucket. */
	for (int k = 0; k < 2; k++) {
		struct tier_head th = { .resumed = true };
		if (!stored_bucket(s, se->id, k, b[1], &th) || !tier_head_get(s, se, k))
			continue;
		th.enc = se->tier[k]->enc; /* empty, as tier_head_get made it */
		*se->tier[k] = th;
	}
}

/* Reads an evicted series' row by id: its text into text, and the rest. */
static int row_by_id(struct store *s, uint32_t id, char *text, size_t size, int *kind,
		     int64_t *bounds)
{
	struct reader *r = db_reader_get(s, true);
	if (!r)
		return -EIO;
	sqlite3_stmt *st = r->cold_id;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st), found = 0;
	const char *t = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	if (t && strlen(t) < size) {
		memcpy(text, t, strlen(t) + 1);
		*kind = sqlite3_column_int(st, 1);
		row_bounds(st, 2, bounds);
		found = 1;
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		found = -EIO;
	}
	sqlite3_reset(st);
	db_reader_put(s, r);
	return found;
}

struct series *series_get_id(struct store *s, uint32_t id)
{
	struct series *se = series_by_id(s, id);
	if (se || id == 0 || __atomic_load_n(&s->cold_maxt, __ATOMIC_RELAXED) == INT64_MIN)
		return se;
	char text[STORE_MAX_LABEL_BYTES];
	char mem[STORE_MAX_LABEL_BYTES + 2];
	int kind;
	int64_t b[3];
	if (row_by_id(s, id, text, sizeof(text), &kind, b) != 1)
		return NULL;
	struct store_label l[STORE_MAX_LABELS];
	struct lpair *pairs[STORE_MAX_LABELS];
	int n = series_text_parse(text, l, STORE_MAX_LABELS, mem);
	int m = n < 0 ? n : store_intern_labels(s, l, (size_t)n, pairs);
	if (m < 0)
		return NULL;
	se = series_create(s, id, pairs, (size_t)m, kind ? STORE_COUNTER : STORE_GAUGE);
	if (!se)
		return NULL;
	cold_revived(s, se, b);
	if (newser_push(s, id) < 0) {
		series_destroy(s, se);
		return NULL;
	}
	return se;
}

static const char *label_of(const struct store_label *l, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(l[i].name, name))
			return l[i].value;
	return "";
}

static int cmp_label(const void *a, const void *b)
{
	return strcmp(((const struct store_label *)a)->name, ((const struct store_label *)b)->name);
}

/* Keeps one row: its labels sorted by name, in one block with their text. */
static int keep_row(struct cold_set *out, uint32_t id, int64_t mint, int64_t maxt,
		    const struct store_label *l, size_t n)
{
	if (out->n == out->cap) {
		size_t ncap = out->cap ? out->cap * 2 : 64;
		struct cold_series *nv = realloc(out->v, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		out->v = nv;
		out->cap = ncap;
	}
	size_t bytes = n * sizeof(struct store_label);
	for (size_t i = 0; i < n; i++)
		bytes += strlen(l[i].name) + strlen(l[i].value) + 2;
	struct store_label *cl = malloc(bytes);
	if (!cl)
		return -ENOMEM;
	char *p = (char *)(cl + n);
	for (size_t i = 0; i < n; i++) {
		size_t a = strlen(l[i].name) + 1, b = strlen(l[i].value) + 1;
		cl[i].name = memcpy(p, l[i].name, a);
		cl[i].value = memcpy(p + a, l[i].value, b);
		p += a + b;
	}
	qsort(cl, n, sizeof(*cl), cmp_label);
	out->v[out->n++] = (struct cold_series){ id, mint, maxt, n, cl };
	return 0;
}

int cold_select(struct store *s, const struct store_matcher *m, size_t n, int64_t mint,
		int64_t maxt, struct cold_set *out)
{
	memset(out, 0, sizeof(*out));
	int64_t newest = __atomic_load_n(&s->cold_maxt, __ATOMIC_RELAXED);
	if (newest == INT64_MIN || newest < mint)
		return 0; /* nothing that left memory reaches into the range */
	struct reader *r = db_reader_get(s, true);
	if (!r)
		return -EIO;
	sqlite3_stmt *st = r->cold_range;
	sqlite3_bind_int64(st, 1, mint);
	sqlite3_bind_int64(st, 2, maxt);
	char *mem = malloc(STORE_MAX_LABEL_BYTES * 2);
	int rc = mem ? 0 : -ENOMEM, sr = SQLITE_DONE;
	while (rc == 0 && (sr = sqlite3_step(st)) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(st, 1);
		struct store_label l[STORE_MAX_LABELS];
		int nl = text && strlen(text) < STORE_MAX_LABEL_BYTES ?
			 series_text_parse(text, l, STORE_MAX_LABELS, mem) : -EINVAL;
		if (nl < 0)
			continue; /* unreadable: load_series warns about those */
		bool ok = true;
		for (size_t j = 0; j < n && ok; j++)
			ok = store_matcher_match(&m[j], label_of(l, (size_t)nl, m[j].name));
		if (ok)
			rc = keep_row(out, (uint32_t)sqlite3_column_int64(st, 0),
				      sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3), l,
				      (size_t)nl);
	}
	if (rc == 0 && sr != SQLITE_DONE)
		rc = -EIO;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	db_reader_put(s, r);
	free(mem);
	if (rc < 0)
		cold_set_free(out);
	return rc;
}

void cold_set_free(struct cold_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++)
		free(set->v[i].labels);
	free(set->v);
	memset(set, 0, sizeof(*set));
}
