/*
 * procs.c - the process collector: container_processes, container_threads,
 * container_file_descriptors and container_sockets.
 *
 * Counting them means visiting every process of the container in /proc: its
 * stat line for the thread count and every entry of its fd directory (one
 * readlink each, to tell sockets apart). That is far more work than the
 * cgroup counters, and the numbers move slowly, so each container is
 * scanned once per collect.process_interval (10 s by default) and the last
 * scan's values are emitted every tick in between. Containers get their
 * first scan at once and then spread their scans over the interval (a phase
 * from a hash of the id), so no tick pays for all of them. A scan is bounded:
 * at most PROCS_MAX_PIDS processes and PROCS_MAX_FDS descriptors examined
 * per container; past that, the descriptor count comes from procfs where it
 * gives one (Linux 6.2+) and sockets are those examined.
 *
 * Processes exit while we look: a pid gone between cgroup.procs and its
 * /proc files is simply not counted. A permission error (the agent without
 * root or CAP_SYS_PTRACE) is counted and logged, rate-limited.
 */
#include "collectors/collector.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROCS_MAX_PIDS 10000
#define PROCS_MAX_FDS 65536      /* descriptors examined (readlink) per container scan */

struct procs_priv {
	int64_t next_ms;         /* when the next scan is due */
	bool have;               /* values below are from a scan */
	bool failing;            /* the last scan had unreadable processes (logged) */
	double processes, threads, fds, sockets;
};

struct procs_state {
	struct cg_layout layout;
	int64_t interval_ms;     /* 0: off */
	pid_t *pids;
	struct log_limit ll;     /* one complaint for every container's failures */
	size_t nfailing;         /* containers whose last scan failed */
};

/*
 * Counts c's processes, threads, descriptors and sockets into p. Returns the
 * number of permission failures; -ENOENT when the cgroup is gone.
 */
static int scan(struct procs_state *s, const struct coll_container *c, struct procs_priv *p)
{
	bool truncated;
	ssize_t n = proc_cgroup_pids(&s->layout, c->cgroup, s->pids, PROCS_MAX_PIDS, &truncated);
	if (n < 0 && n != -ENOENT)
		log_limited(&s->ll, LOG_WARN, "processes: container %s: reading cgroup.procs of %s: "
			    "%s", c->id, c->cgroup, strerror((int)-n));
	if (n < 0)
		return n == -ENOENT ? -ENOENT : 1;
	int64_t procs = 0, threads = 0, fds = 0, sockets = 0;
	size_t listed = 0;
	int errors = 0, first_err = 0;
	for (ssize_t i = 0; i < n; i++) {
		struct proc_stat st;
		int rc = proc_read_stat(s->pids[i], &st);
		if (rc == -ENOENT)
			continue;
		if (rc < 0) {
			errors++;
			first_err = first_err ? first_err : rc;
			continue;
		}
		procs++;
		threads += st.threads > 0 ? st.threads : 1;
		/* Past the budget, fds come from the directory's size (Linux
		 * 6.2+); sockets are those among the examined ones. */
		struct proc_fds f;
		rc = proc_scan_fds(s->pids[i], PROCS_MAX_FDS - listed, &f, NULL, NULL);
		if (rc < 0 && rc != -ENOENT) {
			errors++;
			first_err = first_err ? first_err : rc;
			continue;
		}
		if (rc == 0) {
			fds += f.fds;
			sockets += f.sockets;
			listed += (size_t)f.listed;
		}
	}
	/* The recovery is logged once no container fails any more, so one bad
	 * container beside good ones does not flap the log. */
	if (errors) {
		log_limited(&s->ll, LOG_WARN, "processes: container %s (%s): %d processes "
			    "unreadable: %s (the agent needs root or CAP_SYS_PTRACE)", c->id, c->cgroup,
			    errors, strerror(-first_err));
		if (!p->failing) {
			p->failing = true;
			s->nfailing++;
		}
	} else if (p->failing) {
		p->failing = false;
		if (--s->nfailing == 0)
			log_recovered(&s->ll, "processes: reading /proc");
	}
	if (errors && procs == 0)
		return errors; /* nothing readable: no values rather than zeros */
	p->processes = (double)procs;
	p->threads = (double)threads;
	p->fds = (double)fds;
	p->sockets = (double)sockets;
	p->have = true;
	return errors;
}

static int op_init(void **state, const struct coll_ctx *ctx)
{
	struct procs_state *s = calloc(1, sizeof(*s));
	*state = NULL;
	if (!s)
		return -ENOMEM;
	s->interval_ms = ctx ? ctx->process_interval_ms : 10000;
	if (ctx && ctx->layout)
		s->layout = *ctx->layout;
	else
		cg_layout_detect(&s->layout);
	if (s->interval_ms > 0 && !(s->pids = malloc(PROCS_MAX_PIDS * sizeof(*s->pids)))) {
		free(s);
		return -ENOMEM;
	}
	*state = s;
	return 0;
}

static int op_collect(void *state, struct coll_container *c, void **privp, struct coll_sink *sink)
{
	struct procs_state *s = state;
	struct procs_priv *p = *privp;
	int64_t now = sink->snap->time_ms;
	int errors = 0;

	if (s->interval_ms <= 0)
		return 0;
	if (!p) {
		if (!(p = calloc(1, sizeof(*p))))
			return 1;
		p->next_ms = now;
		*privp = p;
	}
	if (now >= p->next_ms) {
		bool first = !p->have;
		int rc = scan(s, c, p);
		if (rc == -ENOENT)
			p->have = false;
		else
			errors = rc;
		p->next_ms = now + s->interval_ms;
		if (first)
			p->next_ms -= (int64_t)(hash_str(c->id) % (uint64_t)s->interval_ms);
	}
	if (!p->have)
		return errors;
	sink_emit(sink, M_PROCESSES, NULL, p->processes);
	sink_emit(sink, M_THREADS, NULL, p->threads);
	sink_emit(sink, M_FILE_DESCRIPTORS, NULL, p->fds);
	sink_emit(sink, M_SOCKETS, NULL, p->sockets);
	return errors;
}

static void op_forget(void *state, struct coll_container *c, void **privp)
{
	struct procs_state *s = state;
	struct procs_priv *p = *privp;
	if (p && p->failing)
		s->nfailing--;
	free(p);
	*privp = NULL;
}

static void op_destroy(void *state)
{
	struct procs_state *s = state;
	if (!s)
		return;
	free(s->pids);
	free(s);
}

const struct coll_ops coll_procs_ops = {
	.name = "processes",
	.init = op_init,
	.collect = op_collect,
	.forget = op_forget,
	.destroy = op_destroy,
};
