/*
 * lifecycle.c - a container's lifecycle as metrics: its state, health,
 * restart count, last exit code and whether the OOM killer ended it, from
 * what the runtime reported (Docker inspect, OCI state.json).
 *
 * State and health are enumerations. They are exported as one series with
 * the current value as a label and the value 1 (container_state{state=
 * "exited"} 1), not as one series per possible value: a container costs one
 * series, not eight, and PromQL selects by label just as well. When the
 * state changes, the old series ends (goes stale in Prometheus at once,
 * since samples carry no timestamps). Counts and codes are values, never
 * labels. Called on the tick thread for every container the registry
 * shows, with or without a cgroup.
 */
#include "collectors/collector.h"

#include <stdio.h>
#include <string.h>

/* Whether the last exit code says something about the container now. */
static bool has_exited(const char *state)
{
	static const char *const states[] = { "exited", "dead", "restarting" };
	for (size_t i = 0; state && i < ARRAY_LEN(states); i++)
		if (strcmp(state, states[i]) == 0)
			return true;
	return false;
}

/*
 * Emits the lifecycle series of the container begun last in sink: state,
 * health (with a healthcheck, while running), restart count (when known), and with Docker's
 * State the OOM flag and, while not running, the last exit code. m is read,
 * not kept.
 */
void coll_emit_lifecycle(struct coll_sink *sink, const struct coll_meta *m)
{
	char label[160];
	if (m->state && *m->state && label_pair_text(label, sizeof(label), "state", m->state))
		sink_emit(sink, M_STATE, label, 1);
	/* Checks run only while the container runs; Docker keeps the last
	 * status after it stops, which must not keep an alert firing. */
	if (m->health && *m->health && m->state && strcmp(m->state, "running") == 0 &&
	    label_pair_text(label, sizeof(label), "status", m->health))
		sink_emit(sink, M_HEALTH, label, 1);
	if (m->restart_count >= 0)
		sink_emit(sink, M_RESTARTS, NULL, (double)m->restart_count);
	if (!m->has_state)
		return;
	sink_emit(sink, M_OOM_KILLED, NULL, m->oom_killed ? 1 : 0);
	if (has_exited(m->state))
		sink_emit(sink, M_EXIT_CODE, NULL, (double)m->exit_code);
}
