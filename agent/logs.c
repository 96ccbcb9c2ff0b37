/*
 * logs.c - wires the container log tailer (collectors/) to the log store
 * (storage/): collectors never call storage, so the tailer hands its
 * batches to an output whose functions, here, put them into logs.db. Also
 * the log store's own health as agent-level series.
 */
#include "agent/agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert((int)COLL_LOG__LEVELS == (int)LOGSTORE_LEVEL__COUNT,
	       "the tailer and the store number levels alike");
_Static_assert(LOGSTORE_ESCAPED == 1 && LOGSTORE_TRUNCATED == 2 && LOGSTORE_PARTIAL == 4,
	       "the tailer's flags are the store's");

/* The tailer's thread: converts and stores one batch with its positions. */
static int out_write(void *arg, const struct coll_log_line *l, size_t n,
		     const struct coll_log_pos *p, size_t np)
{
	struct logstore *ls = arg;
	struct log_record *r = n ? malloc(n * sizeof(*r)) : NULL;
	struct log_position *pos = np ? malloc(np * sizeof(*pos)) : NULL;
	int rc = -ENOMEM;
	if ((n && !r) || (np && !pos))
		goto out;
	for (size_t i = 0; i < n; i++)
		r[i] = (struct log_record){ .id = l[i].id, .name = l[i].name, .time_ns = l[i].time_ns,
					    .stream = l[i].stream, .level = l[i].level,
					    .flags = l[i].flags, .msg = l[i].msg,
					    .msg_len = l[i].msg_len };
	for (size_t i = 0; i < np; i++)
		pos[i] = (struct log_position){ .path = p[i].path, .dev = p[i].dev, .ino = p[i].ino,
						.offset = p[i].offset,
						.fingerprint = p[i].fingerprint,
						.fingerprint_len = p[i].fingerprint_len };
	rc = logstore_append(ls, r, n, pos, np);
out:
	free(r);
	free(pos);
	return rc;
}

static int out_position(void *arg, const char *path, struct coll_log_pos *p)
{
	struct log_position lp;
	int rc = logstore_position(arg, path, &lp);
	if (rc < 0)
		return rc;
	*p = (struct coll_log_pos){ .path = NULL, .dev = lp.dev, .ino = lp.ino, .offset = lp.offset,
				    .fingerprint = lp.fingerprint,
				    .fingerprint_len = lp.fingerprint_len };
	return 0;
}

static int out_name(void *arg, const char *id, const char *name)
{
	return logstore_set_name(arg, id, name);
}

int agent_logs_start(struct agent_config *cfg, struct agent_state *st, struct coll_logtail **tail)
{
	*tail = NULL;
	char err[PATH_MAX + 256];
	snprintf(cfg->logs.store.dir, sizeof(cfg->logs.store.dir), "%s", cfg->data_dir);
	int rc = logstore_open(&st->logs, &cfg->logs.store, err, sizeof(err));
	if (rc < 0) {
		log_warn("logs: %s; container logs are not collected", err);
		st->logs = NULL;
		return rc;
	}
	struct coll_log_output o = { .arg = st->logs, .write = out_write,
				     .position = out_position, .name = out_name };
	if ((rc = coll_logtail_start(tail, &cfg->logs.tail, &o)) < 0) {
		log_warn("logs: cannot start the tailer: %s; container logs are not collected",
			 strerror(-rc));
		logstore_close(st->logs);
		st->logs = NULL;
		*tail = NULL;
	}
	return rc;
}

void agent_logs_stop(struct coll_logtail *tail, struct agent_state *st)
{
	coll_logtail_stop(tail);  /* stores what it read before it ends */
	logstore_close(st->logs);
	st->logs = NULL;
}

void agent_logs_metrics(struct agent_state *st, struct coll_sink *sink)
{
	if (!st->logs)
		return;
	struct logstore_stats s;
	logstore_stats(st->logs, &s);
	sink_emit(sink, M_AGENT_LOG_DB_BYTES, NULL, (double)s.db_bytes);
	sink_emit(sink, M_AGENT_LOG_RETENTION_DELETED, NULL, (double)s.retention_deleted);
}
