/*
 * promql_prefetch.c - reading a range argument's series ahead on a helper
 * thread.
 *
 * A range function over many series (rate over every container's counter)
 * spends most of its time in the source: finding chunks and decoding their
 * points. While the evaluator works through series i, a helper thread loads
 * series i+1, i+2, ... (at most PREFETCH_AHEAD of them) into slots; the
 * evaluator takes each series from its slot in order, loading it itself
 * when the helper has not claimed it yet, and, while the helper is still
 * reading the one it needs, reading the next unclaimed one rather than
 * waiting, so both threads keep decoding. Which thread loads a series never
 * changes what it holds, so results are the same with or without the helper.
 *
 * The helper only calls the source's points operation (sources allow
 * concurrent reads). Limits stay with the evaluator: it charges each series
 * when it takes it, and checks the deadline; the helper stops when told
 * and is always joined before the evaluation returns (prefetch_stop_all
 * from ev_finish), so it never outlives the query.
 */
#include "storage/promql_eval_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Series loaded ahead at most: bounds the memory a query holds in slots
 * (a series of an hour of 1 s samples is 58 KB). */
#define PREFETCH_AHEAD 16
/* Below this many series a helper thread is not worth starting. */
#define PREFETCH_MIN_SERIES 32

enum { SLOT_FREE, SLOT_LOADING, SLOT_READY };

struct pslot {
	int state;
	int rc;                      /* the source's answer */
	struct promql_points pts;
};

struct prefetch {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	bool started, stop;
	const struct promql_source *src;
	const struct promql_series *sel;
	size_t nsel;
	int64_t mint, maxt, step_hint_ms;
	size_t claimed;              /* series below this are loaded or being loaded */
	size_t taken;                /* the evaluator's next series */
	struct pslot slot[PREFETCH_AHEAD];
	struct prefetch *next;       /* the evaluation's list */
};

static void load(struct prefetch *pf, size_t i)
{
	struct pslot *sl = &pf->slot[i % PREFETCH_AHEAD];
	sl->pts.n = 0;
	int rc = pf->src->ops->points(pf->src->ctx, pf->sel[i].ref, pf->mint, pf->maxt,
				      pf->step_hint_ms, &sl->pts);
	pthread_mutex_lock(&pf->mu);
	sl->rc = rc;
	sl->state = SLOT_READY;
	pthread_cond_broadcast(&pf->cv);
	pthread_mutex_unlock(&pf->mu);
}

static void *helper_main(void *arg)
{
	struct prefetch *pf = arg;
	pthread_mutex_lock(&pf->mu);
	for (;;) {
		if (pf->stop || pf->claimed >= pf->nsel)
			break;
		size_t i = pf->claimed;
		if (i >= pf->taken + PREFETCH_AHEAD || pf->slot[i % PREFETCH_AHEAD].state != SLOT_FREE) {
			pthread_cond_wait(&pf->cv, &pf->mu);
			continue;
		}
		pf->claimed++;
		pf->slot[i % PREFETCH_AHEAD].state = SLOT_LOADING;
		pthread_mutex_unlock(&pf->mu);
		load(pf, i);
		pthread_mutex_lock(&pf->mu);
	}
	pthread_mutex_unlock(&pf->mu);
	return NULL;
}

struct prefetch *prefetch_start(struct ev *ev, const struct promql_series *sel, size_t nsel,
				int64_t mint, int64_t maxt)
{
	if (ev->o->read_threads <= 0 || nsel < PREFETCH_MIN_SERIES)
		return NULL;
	struct prefetch *pf = calloc(1, sizeof(*pf));
	if (!pf)
		return NULL;
	pthread_mutex_init(&pf->mu, NULL);
	pthread_cond_init(&pf->cv, NULL);
	pf->src = ev->src;
	pf->sel = sel;
	pf->nsel = nsel;
	pf->mint = mint;
	pf->maxt = maxt;
	pf->step_hint_ms = ev->step_hint_ms;
	if (pthread_create(&pf->th, NULL, helper_main, pf) != 0) {
		/* No thread: the evaluator reads every series itself. */
		pthread_cond_destroy(&pf->cv);
		pthread_mutex_destroy(&pf->mu);
		free(pf);
		return NULL;
	}
	pf->started = true;
	pf->next = ev->prefetch;
	ev->prefetch = pf;
	return pf;
}

int prefetch_take(struct prefetch *pf, size_t i, struct promql_points **out)
{
	pthread_mutex_lock(&pf->mu);
	struct pslot *sl = &pf->slot[i % PREFETCH_AHEAD];
	if (pf->claimed <= i) {
		/* Nobody has it yet: read it here. */
		pf->claimed = i + 1;
		sl->state = SLOT_LOADING;
		pthread_mutex_unlock(&pf->mu);
		load(pf, i);
		pthread_mutex_lock(&pf->mu);
	}
	while (sl->state != SLOT_READY) {
		/* The helper is reading series i: rather than wait, read the
		 * next series nobody has claimed, when its slot is free. */
		size_t j = pf->claimed;
		struct pslot *sj = &pf->slot[j % PREFETCH_AHEAD];
		if (j < pf->nsel && j < pf->taken + PREFETCH_AHEAD && sj->state == SLOT_FREE) {
			pf->claimed++;
			sj->state = SLOT_LOADING;
			pthread_mutex_unlock(&pf->mu);
			load(pf, j);
			pthread_mutex_lock(&pf->mu);
			continue;
		}
		pthread_cond_wait(&pf->cv, &pf->mu);
	}
	int rc = sl->rc;
	pthread_mutex_unlock(&pf->mu);
	*out = &sl->pts;
	return rc;
}

void prefetch_release(struct prefetch *pf, size_t i)
{
	pthread_mutex_lock(&pf->mu);
	pf->slot[i % PREFETCH_AHEAD].state = SLOT_FREE;
	pf->taken = i + 1;
	pthread_cond_broadcast(&pf->cv);
	pthread_mutex_unlock(&pf->mu);
}

void prefetch_stop_all(struct ev *ev)
{
	while (ev->prefetch) {
		struct prefetch *pf = ev->prefetch;
		ev->prefetch = pf->next;
		pthread_mutex_lock(&pf->mu);
		pf->stop = true;
		pthread_cond_broadcast(&pf->cv);
		pthread_mutex_unlock(&pf->mu);
		if (pf->started)
			pthread_join(pf->th, NULL);
		for (size_t k = 0; k < PREFETCH_AHEAD; k++)
			promql_points_fini(&pf->slot[k].pts);
		pthread_cond_destroy(&pf->cv);
		pthread_mutex_destroy(&pf->mu);
		free(pf);
	}
}
