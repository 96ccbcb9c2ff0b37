/*
 * follow.c - cursors that follow a series: the store copies each sample
 * appended to a followed series into its cursor, and store_read_after
 * (query.c) takes them from there instead of decoding the head's open
 * chunk or, after the chunk was cut, reading it back from SQLite.
 *
 * Why: the forecaster reads every minute the minute of samples of each of
 * the series it keeps fits of (five per container). At 1 s samples that
 * was decoding 300,000 samples a minute for 1,000 containers that the tick
 * had just encoded, and every fourth minute (a 240-sample chunk cut) one
 * SQLite query per series: most of a refresh's cost. The copy costs the
 * appender a few instructions a sample (follow_push), and memory: 12 bytes
 * a sample for about one and a half reads' worth.
 *
 * A ring holds every sample after base_t while whole. It stops being whole
 * when it would overflow (a read came late); the next read then goes the
 * ordinary way and follow_arm starts it again after what that read
 * returned. Locking (internal.h): the appender pushes under the store's
 * write lock; the cursor's one reader takes under the read lock; arming
 * and unlinking take the write lock.
 */
#include "storage/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The ring's size bounds: 96 samples at first (a minute at 1 s and half
 * again), at most 4096 (a minute at 15 ms). */
#define FOLLOW_MIN_CAP 96u
#define FOLLOW_MAX_CAP 4096u

static void ring_free(struct follow_ring *r)
{
	free(r->dt);
	free(r->v);
	r->dt = NULL;
	r->v = NULL;
	r->cap = r->head = r->n = 0;
}

static int ring_size(struct follow_ring *r, uint32_t cap)
{
	uint32_t *dt = malloc(cap * sizeof(*dt));
	double *v = malloc(cap * sizeof(*v));
	if (!dt || !v) {
		free(dt);
		free(v);
		return -ENOMEM;
	}
	ring_free(r);
	r->dt = dt;
	r->v = v;
	r->cap = cap;
	return 0;
}

int store_cursor_follow(struct store *s, struct store_cursor *c, uint32_t id)
{
	if (c->fr.st)
		return 0;
	int rc = ring_size(&c->fr, FOLLOW_MIN_CAP);
	if (rc < 0)
		return rc;
	c->fr.st = s;
	c->fr.id = id;
	c->fr.whole = false;       /* armed by the first ordinary read */
	return 0;
}

void store_cursor_free(struct store_cursor *c)
{
	if (!c)
		return;
	struct store *s = c->fr.st;
	if (s) {
		pthread_rwlock_wrlock(&s->lock);
		struct series *se = series_by_id(s, c->fr.id);
		if (se && se->follow == c)
			se->follow = NULL;
		pthread_rwlock_unlock(&s->lock);
	}
	ring_free(&c->fr);
	free(c);
}

void follow_push(struct store *s, struct series *se, int64_t t, double v)
{
	struct follow_ring *r = &se->follow->fr;
	if (!r->whole)
		return;
	if (r->n == r->cap || t - r->t0 > (int64_t)UINT32_MAX) {
		r->whole = false;  /* a gap: the next read goes the ordinary way */
		return;
	}
	uint32_t k = r->head + r->n;
	if (k >= r->cap)
		k -= r->cap;
	r->dt[k] = (uint32_t)(t - r->t0);
	r->v[k] = v;
	r->n++;
	s->samples_followed++;
}

/* How many of the n samples from slot j on (not past the ring's end) are
 * at or before maxt: times only increase (head_append refuses older
 * ones), so all of them but at the ring's newest end, found by halving,
 * and the copy needs no compare a sample. */
static uint32_t upto(const struct follow_ring *r, uint32_t j, uint32_t n, int64_t maxt)
{
	if (!n || r->t0 + r->dt[j + n - 1] <= maxt)
		return n;
	uint32_t lo = 0, hi = n - 1;     /* the first past maxt is in [lo, hi] */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (r->t0 + r->dt[j + mid] <= maxt)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

ssize_t follow_take(struct store *s, uint32_t id, struct store_cursor *c, int64_t after_t,
		    int64_t maxt, int64_t *t, double *v, size_t max)
{
	struct follow_ring *r = &c->fr;
	ssize_t n = -EAGAIN;
	pthread_rwlock_rdlock(&s->lock);
	struct series *se = series_by_id(s, id);
	if (se && se->follow == c && r->whole && after_t >= r->base_t) {
		/* skip what the reader has (it asks from after_t), take up to maxt */
		while (r->n && r->t0 + r->dt[r->head] <= after_t) {
			r->head = r->head + 1 == r->cap ? 0 : r->head + 1;
			r->n--;
		}
		/* at most two runs, up to the ring's end and from its start */
		size_t k = 0;
		uint32_t j = r->head;
		for (int run = 0; run < 2 && k < r->n && k < max; run++) {
			uint32_t end = r->cap - j;
			if (end > r->n - k)
				end = (uint32_t)(r->n - k);
			if (end > max - k)
				end = (uint32_t)(max - k);
			uint32_t m = upto(r, j, end, maxt);
			for (uint32_t i = 0; i < m; i++)
				t[k + i] = r->t0 + r->dt[j + i];
			memcpy(v + k, r->v + j, m * sizeof(*v));
			k += m;
			j = j + m == r->cap ? 0 : j + m;
			if (m < end)
				break;       /* past maxt */
		}
		if (k == max && k < r->n && r->t0 + r->dt[j] <= maxt) {
			n = -E2BIG;  /* more than asked for: nothing taken */
		} else {
			r->head = j;
			r->n -= (uint32_t)k;
			r->base_t = k ? t[k - 1] : after_t;
			n = (ssize_t)k;
		}
	}
	pthread_rwlock_unlock(&s->lock);
	return n;
}

void follow_arm(struct store *s, uint32_t id, struct store_cursor *c, int64_t last_t, size_t n)
{
	struct follow_ring *r = &c->fr;
	/* room for the read just made and half again */
	uint32_t want = (uint32_t)(n < FOLLOW_MAX_CAP ? n : FOLLOW_MAX_CAP);
	want += want / 2;
	if (want < FOLLOW_MIN_CAP)
		want = FOLLOW_MIN_CAP;
	if (want > FOLLOW_MAX_CAP)
		want = FOLLOW_MAX_CAP;
	pthread_rwlock_wrlock(&s->lock);
	struct series *se = series_by_id(s, id);
	if (!se || (se->follow && se->follow != c))
		goto out;                /* gone, or another cursor follows it */
	if (want > r->cap && ring_size(r, want) < 0)
		goto out;
	se->follow = c;
	r->whole = false;
	r->head = r->n = 0;
	r->t0 = last_t;
	r->base_t = last_t;
	/* The samples already after last_t: none, or the newest alone when the
	 * one before it is last_t (a read as of a slot just before the newest
	 * tick); its bits are the open chunk's. Else the next read goes the
	 * ordinary way and arms again. */
	if (se->last_t == last_t) {
		r->whole = true;
	} else if (se->prev_t == last_t && se->raw.count && se->raw.t_prev == se->last_t) {
		double lv;
		memcpy(&lv, &se->rv.prev, sizeof(lv));
		r->whole = true;
		follow_push(s, se, se->last_t, lv);
		s->samples_followed--;   /* copied here, not by the appender */
	}
out:
	pthread_rwlock_unlock(&s->lock);
}
