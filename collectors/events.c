/*
 * events.c - the event timeline: a bounded, thread-safe ring of lifecycle
 * events. Runtimes' threads and collectors post; the API reads. Old events
 * fall off the end; nothing here blocks for long or allocates after init.
 */
#include "collectors/collector.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int coll_event_log_init(struct coll_event_log *log, size_t cap)
{
	memset(log, 0, sizeof(*log));
	log->ring = calloc(cap ? cap : 1, sizeof(*log->ring));
	if (!log->ring)
		return -ENOMEM;
	log->cap = cap ? cap : 1;
	log->next_seq = 1;
	pthread_mutex_init(&log->lock, NULL);
	return 0;
}

void coll_event_log_fini(struct coll_event_log *log)
{
	if (!log || !log->ring)
		return;
	pthread_mutex_destroy(&log->lock);
	free(log->ring);
	log->ring = NULL;
}

void coll_event_post(struct coll_event_log *log, const struct coll_event *ev)
{
	if (!log || !log->ring)
		return;
	pthread_mutex_lock(&log->lock);
	size_t slot = (log->head + log->count) % log->cap;
	if (log->count == log->cap)
		log->head = (log->head + 1) % log->cap;
	else
		log->count++;
	struct coll_event *e = &log->ring[slot];
	*e = *ev;
	e->id[sizeof(e->id) - 1] = e->name[sizeof(e->name) - 1] = '\0';
	e->type[sizeof(e->type) - 1] = e->detail[sizeof(e->detail) - 1] = '\0';
	if (!e->time_ms)
		e->time_ms = now_ms();
	e->seq = log->next_seq++;
	pthread_mutex_unlock(&log->lock);
}

size_t coll_event_read(struct coll_event_log *log, uint64_t after_seq, struct coll_event *out,
		       size_t max)
{
	if (!log || !log->ring)
		return 0;
	size_t n = 0;
	pthread_mutex_lock(&log->lock);
	for (size_t i = 0; i < log->count && n < max; i++) {
		const struct coll_event *e = &log->ring[(log->head + i) % log->cap];
		if (e->seq > after_seq)
			out[n++] = *e;
	}
	pthread_mutex_unlock(&log->lock);
	return n;
}
