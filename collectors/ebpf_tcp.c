/*
 * ebpf_tcp.c - loader of the TCP probe (bpf/tcp.bpf.c): TCP state changes,
 * resets and retransmits from tracepoints, per socket-owner cgroup.
 *
 * Every handler exists as a raw tracepoint and as a classic one; the
 * collector has chosen the style for this kernel (env->attach) and the
 * other set is never loaded. Each tracepoint is checked against the
 * kernel's BTF first, so a missing one is named in the reason instead of
 * surfacing as a verifier or attach error. Reading is one per-CPU lookup
 * per cgroup id.
 */
#include "collectors/ebpf.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/tcp.skel.h"

#define TCP_LINKS 5

struct ebpf_tcp {
	struct tcp_bpf *skel;
	struct bpf_link *links[TCP_LINKS];
	int ncpus;
	struct ebpf_tcp_value *percpu;
};

struct tp_ref {
	const char *category, *name, *first_arg;
};

static const struct tp_ref tcp_tps[TCP_LINKS] = {
	{ "sock", "inet_sock_set_state", "sock" },
	{ "tcp", "tcp_retransmit_skb", "sock" },
	{ "tcp", "tcp_send_reset", "sock" },
	{ "tcp", "tcp_receive_reset", "sock" },
	{ "cgroup", "cgroup_rmdir", "cgroup" },
};

int ebpf_tcp_open(struct ebpf_tcp **out, const struct ebpf_env *env, char *why, size_t whysize)
{
	struct ebpf_tcp *t = calloc(1, sizeof(*t));
	int err;

	*out = NULL;
	if (!t)
		return -ENOMEM;
	t->ncpus = env->ncpus;
	t->percpu = calloc((size_t)env->ncpus, sizeof(*t->percpu));
	if (!t->percpu) {
		err = -ENOMEM;
		goto fail;
	}
	for (int i = 0; i < TCP_LINKS; i++)
		if ((err = ebpf_tp_check(env, tcp_tps[i].category, tcp_tps[i].name,
					 tcp_tps[i].first_arg, why, whysize)) < 0)
			goto fail;
	t->skel = tcp_bpf__open();
	if (!t->skel) {
		err = -errno;
		ebpf_explain(err, "opening the program", why, whysize);
		goto fail;
	}
	bpf_map__set_max_entries(t->skel->maps.tcp_stats, env->cfg->max_cgroups);
	bpf_map__set_max_entries(t->skel->maps.tcp_connecting, env->cfg->max_sockets);
	bpf_map__set_max_entries(t->skel->maps.tcp_established, env->cfg->max_sockets);
	ebpf_pick_programs(t->skel->obj, env->attach, NULL);
	if ((err = tcp_bpf__load(t->skel)) < 0) {
		ebpf_explain(err, "loading", why, whysize);
		goto fail;
	}
	bool raw = env->attach == EBPF_TP_RAW;
	struct bpf_program *progs[TCP_LINKS] = {
		raw ? t->skel->progs.tcp_state_raw : t->skel->progs.tcp_state_tp,
		raw ? t->skel->progs.tcp_retrans_raw : t->skel->progs.tcp_retrans_tp,
		raw ? t->skel->progs.tcp_rst_sent_raw : t->skel->progs.tcp_rst_sent_tp,
		raw ? t->skel->progs.tcp_rst_recv_raw : t->skel->progs.tcp_rst_recv_tp,
		raw ? t->skel->progs.tcp_rmdir_raw : t->skel->progs.tcp_rmdir_tp,
	};
	for (int i = 0; i < TCP_LINKS; i++) {
		t->links[i] = ebpf_attach_tp(env, progs[i], tcp_tps[i].category, tcp_tps[i].name,
					     why, whysize);
		if (!t->links[i]) {
			err = -ENOENT;
			goto fail;
		}
	}
	*out = t;
	return 0;
fail:
	ebpf_tcp_close(t);
	return err < 0 ? err : -EINVAL;
}

void ebpf_tcp_close(struct ebpf_tcp *t)
{
	if (!t)
		return;
	for (int i = TCP_LINKS - 1; i >= 0; i--)
		bpf_link__destroy(t->links[i]);
	tcp_bpf__destroy(t->skel);
	free(t->percpu);
	free(t);
}

struct bpf_object *ebpf_tcp_object(struct ebpf_tcp *t)
{
	return t ? t->skel->obj : NULL;
}

int ebpf_tcp_read(struct ebpf_tcp *t, uint64_t cgroup_id, struct ebpf_tcp_value *sum)
{
	__u64 key = cgroup_id;

	if (bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.tcp_stats), &key, t->percpu) < 0)
		return -errno;
	for (int i = 0; i < t->ncpus; i++) {
		const struct ebpf_tcp_value *v = &t->percpu[i];
		sum->active_opens += v->active_opens;
		sum->passive_opens += v->passive_opens;
		sum->connect_fails += v->connect_fails;
		sum->resets_sent += v->resets_sent;
		sum->resets_received += v->resets_received;
		sum->retransmits += v->retransmits;
		sum->established += v->established;
		for (int k = 0; k < EBPF_HIST_SLOTS; k++)
			sum->connect.slots[k] += v->connect.slots[k];
		sum->connect.sum_ns += v->connect.sum_ns;
	}
	return 0;
}
