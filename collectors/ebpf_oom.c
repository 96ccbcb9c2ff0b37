/*
 * ebpf_oom.c - loader of the OOM probe (bpf/oom.bpf.c): one ring-buffer
 * record per process the kernel's OOM killer chose.
 *
 * Variant by kernel: when oom:mark_victim passes the victim's task_struct
 * (Linux 6.11+, raw attach) the record is written at the kill; otherwise
 * the victim's pid is remembered and the record is written at its exit
 * (sched:sched_process_exit). The ring buffer is drained without blocking
 * once per tick.
 */
#include "collectors/ebpf.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/oom.skel.h"

struct ebpf_oom {
	struct oom_bpf *skel;
	struct bpf_link *victim, *exit;
	struct ring_buffer *rb;
	ebpf_oom_fn fn;          /* set for the duration of a poll */
	void *arg;
};

static int on_record(void *ctx, void *data, size_t size)
{
	struct ebpf_oom *o = ctx;
	if (size >= sizeof(struct ebpf_oom_event) && o->fn)
		o->fn(o->arg, data);
	return 0;
}

int ebpf_oom_open(struct ebpf_oom **out, const struct ebpf_env *env, char *why, size_t whysize)
{
	struct ebpf_oom *o = calloc(1, sizeof(*o));
	char scratch[256];
	int err;

	*out = NULL;
	if (!o)
		return -ENOMEM;
	if ((err = ebpf_tp_check(env, "oom", "mark_victim", NULL, why, whysize)) < 0)
		goto fail;
	bool raw = env->attach == EBPF_TP_RAW;
	/* Does the raw tracepoint hand over the victim's task? */
	bool by_task = raw && ebpf_tp_check(env, "oom", "mark_victim", "task_struct",
					    scratch, sizeof(scratch)) == 0;
	if (!by_task &&
	    (err = ebpf_tp_check(env, "sched", "sched_process_exit", NULL, why, whysize)) < 0)
		goto fail;
	o->skel = oom_bpf__open();
	if (!o->skel) {
		err = -errno;
		ebpf_explain(err, "opening the program", why, whysize);
		goto fail;
	}
	static const char *const skip_task[] = { "oom_victim_task_raw", NULL };
	static const char *const skip_pid[] = { "oom_victim_pid_raw", "oom_exit_raw", NULL };
	ebpf_pick_programs(o->skel->obj, env->attach, by_task ? skip_pid : raw ? skip_task : NULL);
	if ((err = oom_bpf__load(o->skel)) < 0) {
		ebpf_explain(err, "loading", why, whysize);
		goto fail;
	}
	struct bpf_program *victim = by_task ? o->skel->progs.oom_victim_task_raw :
		raw ? o->skel->progs.oom_victim_pid_raw : o->skel->progs.oom_victim_tp;
	o->victim = ebpf_attach_tp(env, victim, "oom", "mark_victim", why, whysize);
	if (!o->victim) {
		err = -ENOENT;
		goto fail;
	}
	if (!by_task) {
		o->exit = ebpf_attach_tp(env, raw ? o->skel->progs.oom_exit_raw :
					 o->skel->progs.oom_exit_tp, "sched", "sched_process_exit",
					 why, whysize);
		if (!o->exit) {
			err = -ENOENT;
			goto fail;
		}
	}
	o->rb = ring_buffer__new(bpf_map__fd(o->skel->maps.oom_events), on_record, o, NULL);
	if (!o->rb) {
		err = -errno;
		ebpf_explain(err, "opening the ring buffer", why, whysize);
		goto fail;
	}
	*out = o;
	return 0;
fail:
	ebpf_oom_close(o);
	return err < 0 ? err : -EINVAL;
}

void ebpf_oom_close(struct ebpf_oom *o)
{
	if (!o)
		return;
	ring_buffer__free(o->rb);
	bpf_link__destroy(o->exit);
	bpf_link__destroy(o->victim);
	oom_bpf__destroy(o->skel);
	free(o);
}

struct bpf_object *ebpf_oom_object(struct ebpf_oom *o)
{
	return o ? o->skel->obj : NULL;
}

int ebpf_oom_poll(struct ebpf_oom *o, ebpf_oom_fn fn, void *arg)
{
	o->fn = fn;
	o->arg = arg;
	int n = ring_buffer__consume(o->rb);
	o->fn = NULL;
	o->arg = NULL;
	return n;
}

uint64_t ebpf_oom_lost(const struct ebpf_oom *o)
{
	return o && o->skel->bss ? o->skel->bss->oom_lost : 0;
}

int ebpf_oom_path(const struct ebpf_oom_event *ev, char *out, size_t size)
{
	size_t len = 0;
	unsigned depth = ev->depth < EBPF_OOM_PATH_DEPTH ? ev->depth : EBPF_OOM_PATH_DEPTH;

	if (size < 2 || ev->truncated)
		return -ENAMETOOLONG;
	if (!depth) {
		out[0] = '/';
		out[1] = '\0';
		return 0;
	}
	/* names[] is leaf first */
	for (unsigned i = depth; i-- > 0;) {
		const char *name = ev->names[i];
		size_t n = strnlen(name, EBPF_OOM_NAME_LEN);
		if (len + 1 + n + 1 > size)
			return -ENAMETOOLONG;
		out[len++] = '/';
		memcpy(out + len, name, n);
		len += n;
	}
	out[len] = '\0';
	return 0;
}
