/*
 * ebpf_net.c - loader of the network probe (bpf/net.bpf.c): two cgroup_skb
 * programs attached once, with BPF links, at the root of the cgroup v2 tree
 * (/sys/fs/cgroup/unified on hybrid hosts), so they see every socket of
 * every container below it, in any network namespace; plus the cgroup_rmdir
 * handler that drops a removed cgroup's counters.
 *
 * Links (not legacy attachments) mean multi-attach: the programs coexist
 * with systemd's or other agents' cgroup programs, and go away with the
 * agent. Reading is one per-CPU lookup per cgroup id.
 */
#include "collectors/ebpf.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/net.skel.h"

struct ebpf_net {
	struct net_bpf *skel;
	struct bpf_link *ingress, *egress, *rmdir;
	int ncpus;
	struct ebpf_net_value *percpu;   /* lookup buffer, ncpus values */
};

int ebpf_net_open(struct ebpf_net **out, const struct ebpf_env *env, char *why, size_t whysize)
{
	struct ebpf_net *n = calloc(1, sizeof(*n));
	int err;

	*out = NULL;
	if (!n)
		return -ENOMEM;
	n->ncpus = env->ncpus;
	n->percpu = calloc((size_t)env->ncpus, sizeof(*n->percpu));
	if (!n->percpu) {
		err = -ENOMEM;
		goto fail;
	}
	if (env->unified_fd < 0) {
		snprintf(why, whysize, "no cgroup v2 hierarchy is mounted (cgroup_skb programs attach there)");
		err = -ENOENT;
		goto fail;
	}
	if ((err = ebpf_tp_check(env, "cgroup", "cgroup_rmdir", "cgroup", why, whysize)) < 0)
		goto fail;
	n->skel = net_bpf__open();
	if (!n->skel) {
		err = -errno;
		ebpf_explain(err, "opening the program", why, whysize);
		goto fail;
	}
	bpf_map__set_max_entries(n->skel->maps.net_stats, env->cfg->max_cgroups);
	ebpf_pick_programs(n->skel->obj, env->attach, NULL);
	if ((err = net_bpf__load(n->skel)) < 0) {
		ebpf_explain(err, "loading", why, whysize);
		goto fail;
	}
	n->ingress = bpf_program__attach_cgroup(n->skel->progs.net_ingress, env->unified_fd);
	if (!n->ingress) {
		err = -errno;
		ebpf_explain(err, "attaching cgroup_skb/ingress at the cgroup v2 root", why, whysize);
		goto fail;
	}
	n->egress = bpf_program__attach_cgroup(n->skel->progs.net_egress, env->unified_fd);
	if (!n->egress) {
		err = -errno;
		ebpf_explain(err, "attaching cgroup_skb/egress at the cgroup v2 root", why, whysize);
		goto fail;
	}
	n->rmdir = ebpf_attach_tp(env, env->attach == EBPF_TP_RAW ? n->skel->progs.net_rmdir_raw :
				  n->skel->progs.net_rmdir_tp, "cgroup", "cgroup_rmdir", why, whysize);
	if (!n->rmdir) {
		err = -ENOENT;
		goto fail;
	}
	*out = n;
	return 0;
fail:
	ebpf_net_close(n);
	return err < 0 ? err : -EINVAL;
}

void ebpf_net_close(struct ebpf_net *n)
{
	if (!n)
		return;
	bpf_link__destroy(n->rmdir);
	bpf_link__destroy(n->egress);
	bpf_link__destroy(n->ingress);
	net_bpf__destroy(n->skel);
	free(n->percpu);
	free(n);
}

struct bpf_object *ebpf_net_object(struct ebpf_net *n)
{
	return n ? n->skel->obj : NULL;
}

int ebpf_net_read(struct ebpf_net *n, uint64_t cgroup_id, struct ebpf_net_value *sum)
{
	__u64 key = cgroup_id;

	if (bpf_map_lookup_elem(bpf_map__fd(n->skel->maps.net_stats), &key, n->percpu) < 0)
		return -errno;
	for (int i = 0; i < n->ncpus; i++) {
		sum->rx_bytes += n->percpu[i].rx_bytes;
		sum->rx_packets += n->percpu[i].rx_packets;
		sum->tx_bytes += n->percpu[i].tx_bytes;
		sum->tx_packets += n->percpu[i].tx_packets;
	}
	return 0;
}
