/*
 * meta.c - container metadata records and the queue that carries them from
 * the runtime threads (Docker) to the tick thread, which alone owns the
 * registry. Posting takes ownership, so no string is ever shared between
 * threads.
 */
#include "collectors/collector.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static const char *const runtime_names[RUNTIME__COUNT] = {
	[RUNTIME_UNKNOWN] = "unknown", [RUNTIME_DOCKER] = "docker",
	[RUNTIME_CONTAINERD] = "containerd", [RUNTIME_CRIO] = "crio",
	[RUNTIME_PODMAN] = "podman", [RUNTIME_RUNC] = "runc",
	[RUNTIME_NSPAWN] = "systemd-nspawn", [RUNTIME_LXC] = "lxc",
	[RUNTIME_KUBEPOD] = "kubepod",
};

const char *coll_runtime_name(enum coll_runtime rt)
{
	return (unsigned)rt < RUNTIME__COUNT ? runtime_names[rt] : "unknown";
}

void coll_meta_fini(struct coll_meta *m)
{
	if (!m)
		return;
	free(m->name);
	free(m->image);
	free(m->state);
	free(m->pod);
	free(m->namespace);
	free(m->container);
	free(m->compose_project);
	for (size_t i = 0; i < m->nlabels; i++) {
		free(m->label_keys[i]);
		free(m->label_vals[i]);
	}
	free(m->label_keys);
	free(m->label_vals);
	free(m->health);
	free(m->restart_policy);
	free(m->command);
	free(m->upper_dir);
	free(m->log_path);
	for (size_t i = 0; i < m->nports; i++)
		free(m->ports[i].host_ip);
	free(m->ports);
	for (size_t i = 0; i < m->nmounts; i++) {
		free(m->mounts[i].type);
		free(m->mounts[i].name);
		free(m->mounts[i].source);
		free(m->mounts[i].destination);
	}
	free(m->mounts);
	memset(m, 0, sizeof(*m));
	m->restart_count = -1;
}

static int dup_field(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

int coll_meta_copy(struct coll_meta *dst, const struct coll_meta *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->started_at = src->started_at;
	dst->restart_count = src->restart_count;
	dst->has_state = src->has_state;
	dst->exit_code = src->exit_code;
	dst->oom_killed = src->oom_killed;
	dst->created_at = src->created_at;
	dst->finished_at = src->finished_at;
	dst->pid = src->pid;
	dst->restart_max = src->restart_max;
	dst->layer_quota_bytes = src->layer_quota_bytes;
	int rc = dup_field(&dst->name, src->name) | dup_field(&dst->image, src->image) |
		 dup_field(&dst->state, src->state) | dup_field(&dst->pod, src->pod) |
		 dup_field(&dst->namespace, src->namespace) |
		 dup_field(&dst->container, src->container) |
		 dup_field(&dst->compose_project, src->compose_project) |
		 dup_field(&dst->health, src->health) |
		 dup_field(&dst->restart_policy, src->restart_policy) |
		 dup_field(&dst->command, src->command) |
		 dup_field(&dst->upper_dir, src->upper_dir) |
		 dup_field(&dst->log_path, src->log_path);
	for (size_t i = 0; rc == 0 && i < src->nlabels; i++)
		rc = coll_meta_add_label(dst, src->label_keys[i], src->label_vals[i]);
	for (size_t i = 0; rc == 0 && i < src->nports; i++)
		rc = coll_meta_add_port(dst, &src->ports[i]);
	for (size_t i = 0; rc == 0 && i < src->nmounts; i++)
		rc = coll_meta_add_mount(dst, &src->mounts[i]);
	if (rc) {
		coll_meta_fini(dst);
		return -ENOMEM;
	}
	return 0;
}

int coll_meta_add_label(struct coll_meta *m, const char *key, const char *val)
{
	/* Grow by powers of two: labels arrive one by one. */
	if ((m->nlabels & (m->nlabels - 1)) == 0) {
		size_t n = m->nlabels ? m->nlabels * 2 : 4;
		char **k = realloc(m->label_keys, n * sizeof(*k));
		if (!k)
			return -ENOMEM;
		m->label_keys = k;
		char **v = realloc(m->label_vals, n * sizeof(*v));
		if (!v)
			return -ENOMEM;
		m->label_vals = v;
	}
	char *kd = strdup(key), *vd = strdup(val ? val : "");
	if (!kd || !vd) {
		free(kd);
		free(vd);
		return -ENOMEM;
	}
	m->label_keys[m->nlabels] = kd;
	m->label_vals[m->nlabels] = vd;
	m->nlabels++;
	return 0;
}

/* Grows an array of n elements when n is 0 or a power of two. */
static int grow_pow2(void **arr, size_t n, size_t elem)
{
	if (n & (n - 1))
		return 0;
	void *p = realloc(*arr, (n ? n * 2 : 4) * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	return 0;
}

int coll_meta_add_port(struct coll_meta *m, const struct coll_port *p)
{
	if (m->nports >= COLL_MAX_PORTS)
		return 0; /* the rest are not kept */
	if (grow_pow2((void **)&m->ports, m->nports, sizeof(*m->ports)) < 0)
		return -ENOMEM;
	struct coll_port *d = &m->ports[m->nports];
	*d = *p;
	d->proto[sizeof(d->proto) - 1] = '\0';
	d->host_ip = NULL;
	if (dup_field(&d->host_ip, p->host_ip) < 0)
		return -ENOMEM;
	m->nports++;
	return 0;
}

int coll_meta_add_mount(struct coll_meta *m, const struct coll_mount *mt)
{
	if (m->nmounts >= COLL_MAX_MOUNTS)
		return 0;
	if (grow_pow2((void **)&m->mounts, m->nmounts, sizeof(*m->mounts)) < 0)
		return -ENOMEM;
	struct coll_mount *d = &m->mounts[m->nmounts];
	memset(d, 0, sizeof(*d));
	d->rw = mt->rw;
	if (dup_field(&d->type, mt->type) | dup_field(&d->name, mt->name) |
	    dup_field(&d->source, mt->source) | dup_field(&d->destination, mt->destination)) {
		free(d->type);
		free(d->name);
		free(d->source);
		free(d->destination);
		return -ENOMEM;
	}
	m->nmounts++;
	return 0;
}

const char *coll_meta_label(const struct coll_meta *m, const char *key)
{
	for (size_t i = 0; i < m->nlabels; i++)
		if (strcmp(m->label_keys[i], key) == 0)
			return m->label_vals[i];
	return NULL;
}

void coll_meta_queue_init(struct coll_meta_queue *q)
{
	pthread_mutex_init(&q->lock, NULL);
	q->head = q->tail = NULL;
}

void coll_meta_queue_fini(struct coll_meta_queue *q)
{
	struct coll_meta_update *u = coll_meta_take(q);
	while (u) {
		struct coll_meta_update *next = u->next;
		coll_meta_update_free(u);
		u = next;
	}
	pthread_mutex_destroy(&q->lock);
}

void coll_meta_post(struct coll_meta_queue *q, const char *id, struct coll_meta *m, bool remove)
{
	struct coll_meta_update *u = calloc(1, sizeof(*u));
	if (!u) {
		coll_meta_fini(m);
		return;
	}
	snprintf(u->id, sizeof(u->id), "%s", id);
	u->remove = remove;
	u->meta = *m;
	memset(m, 0, sizeof(*m));
	m->restart_count = -1;
	pthread_mutex_lock(&q->lock);
	if (q->tail)
		q->tail->next = u;
	else
		q->head = u;
	q->tail = u;
	pthread_mutex_unlock(&q->lock);
}

struct coll_meta_update *coll_meta_take(struct coll_meta_queue *q)
{
	pthread_mutex_lock(&q->lock);
	struct coll_meta_update *u = q->head;
	q->head = q->tail = NULL;
	pthread_mutex_unlock(&q->lock);
	return u;
}

void coll_meta_update_free(struct coll_meta_update *u)
{
	if (!u)
		return;
	coll_meta_fini(&u->meta);
	free(u);
}
