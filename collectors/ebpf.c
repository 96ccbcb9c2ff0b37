/*
 * ebpf.c - the eBPF collector: starts the probes the kernel allows, and each
 * tick turns their maps into per-container series and OOM kills into
 * timeline events.
 *
 * Start-up is feature probing. Common conditions are checked once (the
 * config, kernel BTF, permission to load programs, the cgroup v2 mount, how
 * tracepoints can be attached: raw tracepoints need no tracefs, classic
 * ones do), then each probe's loader tries its own tracepoints and loads.
 * A probe that cannot start is logged once with the reason and reported as
 * monitor_ebpf_probe_up{probe="..."} 0; the agent runs on without it. The
 * collector itself never fails to start.
 *
 * Attribution: the probes key everything by cgroup v2 id, the inode number
 * of the cgroup's directory in the v2 tree (on hybrid hosts
 * <host-root>/sys/fs/cgroup/unified/<path>, the same relative path as the
 * container's v1 cgroup). A container owns its own id and those of the
 * cgroups below it (looked up again every IDS_REFRESH_MS).
 *
 * Kernel memory stays bounded: every map has a configured size, per-cgroup
 * entries leave with the cgroup (the probes' cgroup_rmdir handlers), LRU
 * maps evict as a backstop, and map fill is exported.
 */
#include "collectors/ebpf.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IDS_MAX 32               /* cgroup ids per container (its own + below) */
#define IDS_REFRESH_MS 30000
#define OOM_PENDING_MAX 64
#define OOM_PENDING_MS 5000      /* wait this long for an OOM victim's container */
#define GONE_MAX 64              /* recently removed containers, for late OOM records */
#define DEVS_MAX 256
#define BLOCK_ROWS_MAX 32        /* (disk, direction) pairs per container */
#define COUNT_EVERY_TICKS 10     /* map fill is recounted this often */
#define COUNT_CHUNK 64           /* entries per batch when counting */

static const char *const probe_names[EBPF__PROBES] = {
	[EBPF_NET] = "net", [EBPF_TCP] = "tcp", [EBPF_BLOCK] = "block", [EBPF_OOM] = "oom",
};

const char *ebpf_probe_name(enum ebpf_probe p)
{
	return (unsigned)p < EBPF__PROBES ? probe_names[p] : NULL;
}

void ebpf_config_defaults(struct ebpf_config *c)
{
	memset(c, 0, sizeof(*c));
	c->enabled = true;
	for (int p = 0; p < EBPF__PROBES; p++)
		c->probe[p] = true;
	c->attach = EBPF_ATTACH_AUTO;
	c->max_cgroups = 10240;
	c->max_sockets = 65536;
	c->max_inflight_io = 16384;
	snprintf(c->block_start, sizeof(c->block_start), "block_rq_issue");
	snprintf(c->block_done, sizeof(c->block_done), "block_rq_complete");
}

/* ---- libbpf's messages -------------------------------------------------- */

/*
 * libbpf reports through one process-wide callback. Its messages go to the
 * debug log, and the last warning is kept (per thread: loading happens on
 * the tick thread) so a failure's reason can quote it.
 */
static __thread char libbpf_last[200];

/* The verifier's verdict: the last line of a program load log that is not
 * its statistics ("processed N insns ...", "verification time ..."). */
static void keep_verdict(const char *msg)
{
	const char *end = strstr(msg, "-- END PROG LOAD LOG --");
	while (end && end > msg) {
		while (end > msg && (end[-1] == '\n' || end[-1] == ' '))
			end--;
		const char *start = end;
		while (start > msg && start[-1] != '\n')
			start--;
		if (end > start && strncmp(start, "processed ", 10) &&
		    strncmp(start, "verification time", 17) && strncmp(start, "stack depth", 11)) {
			snprintf(libbpf_last, sizeof(libbpf_last), "verifier: %.*s",
				 (int)(end - start), start);
			return;
		}
		end = start;
	}
}

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0 || !msg)
		return 0;
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	const char *text = strncmp(msg, "libbpf: ", 8) ? msg : msg + 8;
	if (level <= LIBBPF_WARN && strstr(text, "PROG LOAD LOG"))
		keep_verdict(text);
	else if (level <= LIBBPF_WARN && *text && !strstr(libbpf_last, "verifier: "))
		snprintf(libbpf_last, sizeof(libbpf_last), "%s", text);
	log_debug("libbpf: %s", text);
	free(msg);
	return 0;
}

void ebpf_route_libbpf_log(void)
{
	libbpf_set_print(libbpf_log);
}

void ebpf_explain(int err, const char *what, char *why, size_t whysize)
{
	if (err == -EPERM)
		snprintf(why, whysize, "%s: not permitted (needs root, or CAP_BPF, CAP_PERFMON "
			 "and CAP_NET_ADMIN)", what);
	else if (libbpf_last[0])
		snprintf(why, whysize, "%s: %s (libbpf: %s)", what, strerror(-err), libbpf_last);
	else
		snprintf(why, whysize, "%s: %s", what, strerror(-err));
}

/* ---- tracepoints -------------------------------------------------------- */

static const char *tracefs_events(void)
{
	static const char *const dirs[] = { "/sys/kernel/tracing/events",
					    "/sys/kernel/debug/tracing/events" };
	struct stat st;
	for (size_t i = 0; i < ARRAY_LEN(dirs); i++)
		if (stat(dirs[i], &st) == 0 && S_ISDIR(st.st_mode))
			return dirs[i];
	return NULL;
}

/* The type id behind modifiers and typedefs. */
static __u32 skip_mods(const struct btf *btf, __u32 id)
{
	for (int guard = 0; guard < 32; guard++) {
		const struct btf_type *t = btf__type_by_id(btf, id);
		if (!t)
			return 0;
		switch (btf_kind(t)) {
		case BTF_KIND_TYPEDEF: case BTF_KIND_CONST: case BTF_KIND_VOLATILE:
		case BTF_KIND_RESTRICT: case BTF_KIND_TYPE_TAG:
			id = t->type;
			break;
		default:
			return id;
		}
	}
	return 0;
}

int ebpf_tp_check(const struct ebpf_env *env, const char *category, const char *name,
		  const char *first_arg, char *why, size_t whysize)
{
	if (!*name || strchr(name, '/') || strchr(name, '.')) {
		snprintf(why, whysize, "\"%s\" is not a tracepoint name", name);
		return -EINVAL;
	}
	if (env->attach == EBPF_TP_CLASSIC) {
		const char *events = tracefs_events();
		char path[PATH_MAX];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s/%s/id", events ? events : "", category, name);
		if (!events || stat(path, &st) < 0) {
			snprintf(why, whysize, "tracepoint %s:%s not found (no %s)", category, name,
				 events ? path : "tracefs");
			return -ENOENT;
		}
	}
	if (!env->vmlinux)
		return 0;
	char tname[160];
	snprintf(tname, sizeof(tname), "btf_trace_%s", name);
	__s32 id = btf__find_by_name_kind(env->vmlinux, tname, BTF_KIND_TYPEDEF);
	if (id < 0) {
		snprintf(why, whysize, "tracepoint %s:%s is not in this kernel (its BTF has no %s)",
			 category, name, tname);
		return -ENOENT;
	}
	if (!first_arg)
		return 0;
	/* btf_trace_x is a pointer to void (*)(void *__data, arg0, ...). */
	const struct btf_type *t = btf__type_by_id(env->vmlinux, skip_mods(env->vmlinux, (__u32)id));
	if (t && btf_is_ptr(t))
		t = btf__type_by_id(env->vmlinux, skip_mods(env->vmlinux, t->type));
	if (t && btf_is_func_proto(t) && btf_vlen(t) >= 2) {
		const struct btf_param *p = btf_params(t);
		const struct btf_type *a = btf__type_by_id(env->vmlinux,
							   skip_mods(env->vmlinux, p[1].type));
		if (a && btf_is_ptr(a)) {
			const struct btf_type *s = btf__type_by_id(env->vmlinux,
								   skip_mods(env->vmlinux, a->type));
			const char *sname = s ? btf__name_by_offset(env->vmlinux, s->name_off) : NULL;
			if (s && btf_is_struct(s) && sname && !strcmp(sname, first_arg))
				return 0;
		}
	}
	snprintf(why, whysize, "tracepoint %s:%s does not pass a struct %s * first", category,
		 name, first_arg);
	return -EINVAL;
}

struct bpf_link *ebpf_attach_tp(const struct ebpf_env *env, struct bpf_program *prog,
				const char *category, const char *name, char *why, size_t whysize)
{
	struct bpf_link *l;
	char what[160];

	libbpf_last[0] = '\0';
	if (env->attach == EBPF_TP_RAW)
		l = bpf_program__attach_raw_tracepoint(prog, name);
	else
		l = bpf_program__attach_tracepoint(prog, category, name);
	if (!l) {
		int err = -errno;
		snprintf(what, sizeof(what), "attaching to tracepoint %s:%s", category, name);
		ebpf_explain(err, what, why, whysize);
	}
	return l;
}

void ebpf_pick_programs(struct bpf_object *obj, int attach, const char *const *skip)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, obj) {
		const char *sec = bpf_program__section_name(prog);
		bool raw = !strncmp(sec, "raw_tp", 6) || !strncmp(sec, "raw_tracepoint", 14);
		bool classic = !raw && (!strcmp(sec, "tp") || !strncmp(sec, "tp/", 3) ||
					!strncmp(sec, "tracepoint", 10));
		bool keep = (!raw && !classic) || (raw && attach == EBPF_TP_RAW) ||
			    (classic && attach == EBPF_TP_CLASSIC);
		for (const char *const *s = skip; keep && s && *s; s++)
			if (!strcmp(*s, bpf_program__name(prog)))
				keep = false;
		bpf_program__set_autoload(prog, keep);
	}
}

void ebpf_hist_le(unsigned k, char *out, size_t size)
{
	/* 2^k us exactly: at most 9 significant digits for k < 26 */
	snprintf(out, size, "%.9g", (double)(1ULL << k) * 1e-6);
}

/* ---- state -------------------------------------------------------------- */

struct cont {
	struct cont *next, **pprev;      /* the collector's list of containers */
	char id[80];
	char name[128];
	uint64_t ids[IDS_MAX];           /* ids[0]: the container's own cgroup */
	unsigned nids;
	int64_t ids_ms;                  /* when ids were looked up */
	uint64_t oom_kills;
};

struct oom_pending {
	struct ebpf_oom_event ev;
	char id[80];
	int64_t deadline_ms;
};

struct gone {
	char id[80];
	char name[128];
};

struct map_ref {
	enum ebpf_probe probe;
	const char *name;
	int fd;
	uint32_t max_entries;
	void *keys, *vals;               /* batch buffers for counting, or NULL */
	uint64_t entries;
	uint64_t count_tick;             /* when to count again */
};

struct prog_ref {
	enum ebpf_probe probe;
	const char *name;
	int fd;
};

struct dev_name {
	uint32_t dev;
	char extra[160];                 /* device="/dev/vda" */
};

struct ebpf_state {
	const struct coll_ctx *ctx;
	struct ebpf_config cfg;
	struct ebpf_env env;
	struct btf *btf;
	bool up[EBPF__PROBES];
	struct ebpf_net *net;
	struct ebpf_tcp *tcp;
	struct ebpf_block *block;
	struct ebpf_oom *oom;
	struct cont *conts;
	struct oom_pending pending[OOM_PENDING_MAX];
	size_t npending;
	struct gone gone[GONE_MAX];
	size_t gone_next;
	struct map_ref maps[24];
	size_t nmaps;
	struct prog_ref progs[32];
	size_t nprogs;
	struct dev_name devs[DEVS_MAX];
	size_t ndevs;
	char le[EBPF_HIST_SLOTS][24];    /* bucket bounds as text, "+Inf" last */
	char le_label[EBPF_HIST_SLOTS][32]; /* le="..." alone */
	int64_t now_ms;
	uint64_t ticks;
	int64_t read_ns;                 /* wall time spent reading maps */
	uint64_t oom_seen;
	struct log_limit read_ll;
};

/* ---- start-up ----------------------------------------------------------- */

/* The reason every probe shares, or "" when the common ground is there. */
static void common_checks(struct ebpf_state *s, char *why, size_t whysize)
{
	const struct ebpf_config *cfg = &s->cfg;

	why[0] = '\0';
	if (!cfg->enabled) {
		snprintf(why, whysize, "eBPF is switched off (--no-ebpf or ebpf.enabled: false)");
		return;
	}
	s->btf = btf__load_vmlinux_btf();
	if (!s->btf) {
		snprintf(why, whysize, "the kernel has no BTF (/sys/kernel/btf/vmlinux): "
			 "CO-RE programs cannot be relocated");
		return;
	}
	s->env.vmlinux = s->btf;
	/* Permission: loading the simplest program there is. */
	libbpf_last[0] = '\0';
	int rc = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SOCKET_FILTER, NULL);
	if (rc <= 0) {
		ebpf_explain(rc < 0 ? rc : -EPERM, "loading eBPF programs", why, whysize);
		return;
	}
	if (!s->ctx->layout || !s->ctx->layout->unified[0]) {
		snprintf(why, whysize, "no cgroup v2 hierarchy is mounted: the probes attribute "
			 "by cgroup v2 id");
		return;
	}
	s->env.unified_fd = open(s->ctx->layout->unified, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->env.unified_fd < 0) {
		snprintf(why, whysize, "cannot open the cgroup v2 root %.300s: %s",
			 s->ctx->layout->unified, strerror(errno));
		return;
	}
	int ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0) {
		snprintf(why, whysize, "cannot count the possible CPUs: %s", strerror(-ncpus));
		return;
	}
	s->env.ncpus = ncpus;
	/* Tracepoint style: raw when the kernel has it (no tracefs needed). */
	bool raw_ok = cfg->attach != EBPF_ATTACH_CLASSIC &&
		libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_RAW_TRACEPOINT, NULL) == 1;
	if (raw_ok) {
		s->env.attach = EBPF_TP_RAW;
	} else if (cfg->attach == EBPF_ATTACH_RAW) {
		snprintf(why, whysize, "the kernel refuses raw tracepoint programs "
			 "(ebpf.attach: raw_tracepoint)");
	} else if (tracefs_events()) {
		s->env.attach = EBPF_TP_CLASSIC;
	} else {
		snprintf(why, whysize, "%s and tracefs is not mounted "
			 "(mount -t tracefs nodev /sys/kernel/tracing)",
			 cfg->attach == EBPF_ATTACH_CLASSIC ? "ebpf.attach is tracepoint" :
			 "the kernel refuses raw tracepoint programs");
	}
}

static void note_object(struct ebpf_state *s, enum ebpf_probe p, struct bpf_object *obj)
{
	struct bpf_map *map;
	struct bpf_program *prog;

	bpf_object__for_each_map(map, obj) {
		if (bpf_map__is_internal(map) || bpf_map__type(map) == BPF_MAP_TYPE_RINGBUF ||
		    s->nmaps >= ARRAY_LEN(s->maps))
			continue;
		enum bpf_map_type type = bpf_map__type(map);
		bool percpu = type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
			      type == BPF_MAP_TYPE_PERCPU_ARRAY;
		size_t vsize = ((size_t)bpf_map__value_size(map) + 7) / 8 * 8;
		struct map_ref *m = &s->maps[s->nmaps++];
		*m = (struct map_ref){
			.probe = p, .name = bpf_map__name(map), .fd = bpf_map__fd(map),
			.max_entries = bpf_map__max_entries(map),
		};
		m->keys = calloc(COUNT_CHUNK, bpf_map__key_size(map));
		m->vals = calloc(COUNT_CHUNK, vsize * (percpu ? (size_t)s->env.ncpus : 1));
	}
	bpf_object__for_each_program(prog, obj) {
		if (!bpf_program__autoload(prog) || bpf_program__fd(prog) < 0 ||
		    s->nprogs >= ARRAY_LEN(s->progs))
			continue;
		s->progs[s->nprogs++] = (struct prog_ref){
			.probe = p, .name = bpf_program__name(prog), .fd = bpf_program__fd(prog),
		};
	}
}

static int open_probe(struct ebpf_state *s, enum ebpf_probe p, char *why, size_t whysize)
{
	switch (p) {
	case EBPF_NET: return ebpf_net_open(&s->net, &s->env, why, whysize);
	case EBPF_TCP: return ebpf_tcp_open(&s->tcp, &s->env, why, whysize);
	case EBPF_BLOCK: return ebpf_block_open(&s->block, &s->env, why, whysize);
	case EBPF_OOM: return ebpf_oom_open(&s->oom, &s->env, why, whysize);
	default: return -EINVAL;
	}
}

static struct bpf_object *probe_object(struct ebpf_state *s, enum ebpf_probe p)
{
	switch (p) {
	case EBPF_NET: return ebpf_net_object(s->net);
	case EBPF_TCP: return ebpf_tcp_object(s->tcp);
	case EBPF_BLOCK: return ebpf_block_object(s->block);
	case EBPF_OOM: return ebpf_oom_object(s->oom);
	default: return NULL;
	}
}

static int op_init(void **state, const struct coll_ctx *ctx)
{
	struct ebpf_state *s = calloc(1, sizeof(*s));
	char common[512], why[512];

	if (!s)
		return -ENOMEM;
	s->ctx = ctx;
	s->env.unified_fd = -1;
	if (ctx->ebpf)
		s->cfg = *ctx->ebpf;
	else
		s->cfg.enabled = false;
	s->env.cfg = &s->cfg;
	for (unsigned k = 0; k + 1 < EBPF_HIST_SLOTS; k++)
		ebpf_hist_le(k, s->le[k], sizeof(s->le[k]));
	snprintf(s->le[EBPF_HIST_SLOTS - 1], sizeof(s->le[0]), "+Inf");
	for (unsigned k = 0; k < EBPF_HIST_SLOTS; k++)
		snprintf(s->le_label[k], sizeof(s->le_label[k]), "le=\"%s\"", s->le[k]);
	ebpf_route_libbpf_log();

	common_checks(s, common, sizeof(common));
	char on[128] = "";
	for (int p = 0; p < EBPF__PROBES; p++) {
		if (common[0]) {
			log_warn("ebpf: probe %s off: %s", probe_names[p], common);
			continue;
		}
		if (!s->cfg.probe[p]) {
			log_info("ebpf: probe %s off: switched off in the config (ebpf.%s: false)",
				 probe_names[p], probe_names[p]);
			continue;
		}
		why[0] = '\0';
		libbpf_last[0] = '\0';
		int rc = open_probe(s, (enum ebpf_probe)p, why, sizeof(why));
		if (rc < 0) {
			log_warn("ebpf: probe %s off: %s", probe_names[p],
				 why[0] ? why : strerror(-rc));
			continue;
		}
		s->up[p] = true;
		note_object(s, (enum ebpf_probe)p, probe_object(s, (enum ebpf_probe)p));
		snprintf(on + strlen(on), sizeof(on) - strlen(on), "%s%s", on[0] ? ", " : "",
			 probe_names[p]);
	}
	if (on[0])
		log_info("ebpf: probes on: %s (%s)", on, s->env.attach == EBPF_TP_RAW ?
			 "raw tracepoints" : "tracepoints through tracefs");
	*state = s;
	return 0;
}

static void op_destroy(void *state)
{
	struct ebpf_state *s = state;
	if (!s)
		return;
	while (s->conts) {
		struct cont *k = s->conts;
		s->conts = k->next;
		free(k);
	}
	for (size_t i = 0; i < s->nmaps; i++) {
		free(s->maps[i].keys);
		free(s->maps[i].vals);
	}
	ebpf_oom_close(s->oom);
	ebpf_block_close(s->block);
	ebpf_tcp_close(s->tcp);
	ebpf_net_close(s->net);
	btf__free(s->btf);
	if (s->env.unified_fd >= 0)
		close(s->env.unified_fd);
	free(s);
}

/* ---- containers and their cgroup ids -------------------------------------- */

static void add_ids_below(struct cont *k, const char *dir, int depth)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)) && k->nids < IDS_MAX) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		char sub[PATH_MAX];
		struct stat st;
		if (snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name) >= (int)sizeof(sub) ||
		    stat(sub, &st) < 0)
			continue;
		k->ids[k->nids++] = (uint64_t)st.st_ino;
		if (depth < 4)
			add_ids_below(k, sub, depth + 1);
	}
	closedir(d);
}

/* The container's cgroup v2 id is the inode number of its directory there
 * (the kernfs node id, what bpf_get_current_cgroup_id() returns). */
static void lookup_ids(struct ebpf_state *s, struct cont *k, const struct coll_container *c)
{
	char dir[PATH_MAX];
	struct stat st;

	k->ids_ms = s->now_ms;
	k->nids = 0;
	if (snprintf(dir, sizeof(dir), "%s%s", s->ctx->layout->unified, c->cgroup) >=
	    (int)sizeof(dir) || stat(dir, &st) < 0)
		return;
	k->ids[k->nids++] = (uint64_t)st.st_ino;
	add_ids_below(k, dir, 1);
}

static struct cont *cont_of(struct ebpf_state *s, struct coll_container *c, void **priv)
{
	struct cont *k = *priv;
	if (!k) {
		k = calloc(1, sizeof(*k));
		if (!k)
			return NULL;
		snprintf(k->id, sizeof(k->id), "%s", c->id);
		k->next = s->conts;
		if (s->conts)
			s->conts->pprev = &k->next;
		k->pprev = &s->conts;
		s->conts = k;
		*priv = k;
	}
	snprintf(k->name, sizeof(k->name), "%s", c->meta.name ? c->meta.name : c->id);
	if (!k->ids_ms || s->now_ms - k->ids_ms >= IDS_REFRESH_MS || !k->nids)
		lookup_ids(s, k, c);
	return k;
}

static struct cont *cont_by_cgroup(struct ebpf_state *s, uint64_t id)
{
	for (struct cont *k = s->conts; k; k = k->next)
		for (unsigned i = 0; i < k->nids; i++)
			if (k->ids[i] == id)
				return k;
	return NULL;
}

/* ---- OOM kills ------------------------------------------------------------ */

static void post_oom(struct ebpf_state *s, const struct ebpf_oom_event *ev, const char *id,
		     const char *name)
{
	struct coll_event e;
	char comm[EBPF_OOM_COMM_LEN + 1];

	memcpy(comm, ev->comm, EBPF_OOM_COMM_LEN);
	comm[EBPF_OOM_COMM_LEN] = '\0';
	memset(&e, 0, sizeof(e));
	/* The kill's own time: the record may be read up to a tick later. */
	int64_t age_ns = mono_ns() - (int64_t)ev->time_ns;
	if (ev->time_ns && age_ns >= 0 && age_ns < INT64_C(3600) * 1000000000)
		e.time_ms = now_ms() - age_ns / 1000000;
	snprintf(e.id, sizeof(e.id), "%s", id);
	snprintf(e.name, sizeof(e.name), "%s", name);
	snprintf(e.type, sizeof(e.type), "oom");
	snprintf(e.detail, sizeof(e.detail), "pid %u (%s) killed by the kernel OOM killer",
		 (unsigned)ev->pid, comm);
	coll_event_post(s->ctx->events, &e);
	log_info("ebpf: container %s (%s): OOM killer ended pid %u (%s)", name, id,
		 (unsigned)ev->pid, comm);
}

/* The container a cgroup path belongs to: the path or its nearest ancestor
 * that cg_classify recognises. */
static bool classify_up(char *path, struct cg_ident *ident)
{
	for (;;) {
		memset(ident, 0, sizeof(*ident));
		if (cg_classify(path, ident) == 1 && ident->runtime != RUNTIME_KUBEPOD)
			return true;
		char *slash = strrchr(path, '/');
		if (!slash || slash == path)
			return false;
		*slash = '\0';
	}
}

static void on_oom(void *arg, const struct ebpf_oom_event *ev)
{
	struct ebpf_state *s = arg;
	struct cont *k = cont_by_cgroup(s, ev->cgroup_id);
	char path[EBPF_OOM_PATH_DEPTH * (EBPF_OOM_NAME_LEN + 1) + 2];
	struct cg_ident ident;

	s->oom_seen++;
	if (k) {
		post_oom(s, ev, k->id, k->name);
		k->oom_kills++;
		return;
	}
	/* Not (yet, or any more) a container we collect: name it by path. */
	if (ebpf_oom_path(ev, path, sizeof(path)) < 0 || !classify_up(path, &ident)) {
		char comm[EBPF_OOM_COMM_LEN + 1];
		memcpy(comm, ev->comm, EBPF_OOM_COMM_LEN);
		comm[EBPF_OOM_COMM_LEN] = '\0';
		log_info("ebpf: OOM killer ended pid %u (%s) in cgroup %llu, not a container",
			 (unsigned)ev->pid, comm, (unsigned long long)ev->cgroup_id);
		return;
	}
	for (size_t i = 0; i < GONE_MAX; i++) {
		if (s->gone[i].id[0] && !strcmp(s->gone[i].id, ident.id)) {
			post_oom(s, ev, s->gone[i].id, s->gone[i].name);
			return;
		}
	}
	/* Discovered but not collected yet (or never): wait for its name. */
	if (s->npending == OOM_PENDING_MAX) {
		post_oom(s, ev, ident.id, ident.id);
		return;
	}
	struct oom_pending *p = &s->pending[s->npending++];
	p->ev = *ev;
	snprintf(p->id, sizeof(p->id), "%s", ident.id);
	p->deadline_ms = s->now_ms + OOM_PENDING_MS;
}

/* Posts the pending records of container id (all when id is NULL and
 * expired_only is false; expired ones when expired_only). Returns how many
 * were the container's. */
static unsigned flush_pending(struct ebpf_state *s, const char *id, const char *name,
			      bool expired_only)
{
	unsigned n = 0;
	for (size_t i = 0; i < s->npending;) {
		struct oom_pending *p = &s->pending[i];
		bool match = expired_only ? s->now_ms >= p->deadline_ms : !strcmp(p->id, id);
		if (!match) {
			i++;
			continue;
		}
		post_oom(s, &p->ev, p->id, name ? name : p->id);
		n++;
		*p = s->pending[--s->npending];
	}
	return n;
}

/* ---- the tick --------------------------------------------------------------- */

static void op_begin(void *state, struct coll_sink *sink)
{
	struct ebpf_state *s = state;
	int64_t t0 = mono_ns();

	s->now_ms = sink->snap->time_ms;
	s->ticks++;
	if (s->block) {
		int rc = ebpf_block_refresh(s->block);
		if (rc < 0)
			log_limited(&s->read_ll, LOG_WARN, "ebpf: reading the block map: %s",
				    strerror(-rc));
		else
			log_recovered(&s->read_ll, "ebpf: reading the block map");
	}
	if (s->oom)
		ebpf_oom_poll(s->oom, on_oom, s);
	if (s->npending)
		flush_pending(s, NULL, NULL, true);
	s->read_ns += mono_ns() - t0;
}

static void emit_hist(struct ebpf_state *s, struct coll_sink *sink, enum metric_id bucket,
		      const char *extra, const struct ebpf_hist *h)
{
	char lbl[256];
	uint64_t cum = 0;

	for (unsigned k = 0; k < EBPF_HIST_SLOTS; k++) {
		cum += h->slots[k];
		if (extra && *extra) {
			snprintf(lbl, sizeof(lbl), "%s,%s", extra, s->le_label[k]);
			sink_emit(sink, bucket, lbl, (double)cum);
		} else {
			sink_emit(sink, bucket, s->le_label[k], (double)cum);
		}
	}
	/* metrics.def keeps _sum and _count right after _bucket */
	sink_emit(sink, (enum metric_id)(bucket + 1), extra, (double)h->sum_ns / 1e9);
	sink_emit(sink, (enum metric_id)(bucket + 2), extra, (double)cum);
}

_Static_assert(M_EBPF_TCP_CONNECT_LATENCY_SUM == M_EBPF_TCP_CONNECT_LATENCY_BUCKET + 1 &&
	       M_EBPF_TCP_CONNECT_LATENCY_COUNT == M_EBPF_TCP_CONNECT_LATENCY_BUCKET + 2 &&
	       M_EBPF_BLOCK_LATENCY_SUM == M_EBPF_BLOCK_LATENCY_BUCKET + 1 &&
	       M_EBPF_BLOCK_LATENCY_COUNT == M_EBPF_BLOCK_LATENCY_BUCKET + 2,
	       "a histogram's _sum and _count follow its _bucket in metrics.def");

/* device="/dev/vda" for a kernel dev_t (major << 20 | minor), cached. */
static const char *dev_extra(struct ebpf_state *s, uint32_t dev)
{
	for (size_t i = 0; i < s->ndevs; i++)
		if (s->devs[i].dev == dev)
			return s->devs[i].extra;
	unsigned major = dev >> 20, minor = dev & 0xfffff;
	char rel[64], path[PATH_MAX], text[1024], label[160];
	ssize_t n = -1;

	snprintf(label, sizeof(label), "device=\"%u:%u\"", major, minor);
	snprintf(rel, sizeof(rel), "/sys/dev/block/%u:%u/uevent", major, minor);
	if (hostroot_path(path, sizeof(path), rel) == 0)
		n = read_file(path, text, sizeof(text));
	for (char *p = text; n > 0 && p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, "DEVNAME=", 8))
			continue;
		size_t len = strcspn(p + 8, "\n");
		bool clean = len > 0 && len < 64;
		for (size_t i = 0; clean && i < len; i++)
			clean = p[8 + i] != '"' && p[8 + i] != '\\';
		if (clean)
			snprintf(label, sizeof(label), "device=\"/dev/%.*s\"", (int)len, p + 8);
		break;
	}
	if (s->ndevs == DEVS_MAX)
		s->ndevs = 0;    /* a host with more disks than this re-resolves them */
	s->devs[s->ndevs].dev = dev;
	snprintf(s->devs[s->ndevs].extra, sizeof(s->devs[s->ndevs].extra), "%s", label);
	return s->devs[s->ndevs++].extra;
}

/* The container's block rows: its own cgroup and those below it, merged by
 * (disk, direction). Returns the number of rows. */
static size_t gather_block(struct ebpf_state *s, const struct cont *k,
			   struct ebpf_block_entry *rows, size_t max)
{
	size_t nrows = 0;

	for (unsigned i = 0; i < k->nids; i++) {
		size_t n;
		const struct ebpf_block_entry *e = ebpf_block_find(s->block, k->ids[i], &n);
		for (size_t j = 0; j < n; j++) {
			size_t r = 0;
			while (r < nrows && (rows[r].key.dev != e[j].key.dev ||
					     rows[r].key.op != e[j].key.op))
				r++;
			if (r == nrows) {
				if (nrows == max)
					continue;
				memset(&rows[nrows], 0, sizeof(rows[nrows]));
				rows[nrows].key = e[j].key;
				nrows++;
			}
			rows[r].val.requests += e[j].val.requests;
			rows[r].val.bytes += e[j].val.bytes;
			rows[r].val.lat.sum_ns += e[j].val.lat.sum_ns;
			for (int b = 0; b < EBPF_HIST_SLOTS; b++)
				rows[r].val.lat.slots[b] += e[j].val.lat.slots[b];
		}
	}
	return nrows;
}

static int op_collect(void *state, struct coll_container *c, void **priv, struct coll_sink *sink)
{
	struct ebpf_state *s = state;
	struct ebpf_net_value net = { 0 };
	struct ebpf_tcp_value tcp;
	struct ebpf_block_entry rows[BLOCK_ROWS_MAX];
	size_t nrows = 0;

	if (!s->net && !s->tcp && !s->block && !s->oom)
		return 0;
	struct cont *k = cont_of(s, c, priv);
	if (!k)
		return 1;
	if (s->npending)
		k->oom_kills += flush_pending(s, k->id, k->name, false);

	/* Read everything first (that is the time monitor_ebpf_read_seconds
	 * counts), then emit. */
	int64_t t0 = mono_ns();
	bool tcp_seen = false;
	memset(&tcp, 0, sizeof(tcp));
	for (unsigned i = 0; i < k->nids; i++) {
		if (s->net)
			ebpf_net_read(s->net, k->ids[i], &net);
		if (s->tcp && ebpf_tcp_read(s->tcp, k->ids[i], &tcp) == 0)
			tcp_seen = true;
	}
	if (s->block)
		nrows = gather_block(s, k, rows, BLOCK_ROWS_MAX);
	s->read_ns += mono_ns() - t0;

	/* No cgroup v2 directory: nothing can be attributed to it. */
	if (k->nids && s->net) {
		sink_emit(sink, M_EBPF_NET_RX_BYTES, NULL, (double)net.rx_bytes);
		sink_emit(sink, M_EBPF_NET_RX_PACKETS, NULL, (double)net.rx_packets);
		sink_emit(sink, M_EBPF_NET_TX_BYTES, NULL, (double)net.tx_bytes);
		sink_emit(sink, M_EBPF_NET_TX_PACKETS, NULL, (double)net.tx_packets);
	}
	/* TCP series once the container has had TCP activity: an idle
	 * container does not carry 35 series of zeros. */
	if (tcp_seen) {
		sink_emit(sink, M_EBPF_TCP_OPENS, "direction=\"active\"", (double)tcp.active_opens);
		sink_emit(sink, M_EBPF_TCP_OPENS, "direction=\"passive\"", (double)tcp.passive_opens);
		sink_emit(sink, M_EBPF_TCP_CONNECT_FAILURES, NULL, (double)tcp.connect_fails);
		emit_hist(s, sink, M_EBPF_TCP_CONNECT_LATENCY_BUCKET, NULL, &tcp.connect);
		sink_emit(sink, M_EBPF_TCP_ESTABLISHED, NULL,
			  tcp.established > 0 ? (double)tcp.established : 0);
		sink_emit(sink, M_EBPF_TCP_RESETS, "direction=\"sent\"", (double)tcp.resets_sent);
		sink_emit(sink, M_EBPF_TCP_RESETS, "direction=\"received\"", (double)tcp.resets_received);
		sink_emit(sink, M_EBPF_TCP_RETRANSMITS, NULL, (double)tcp.retransmits);
	}
	for (size_t r = 0; r < nrows; r++) {
		char extra[224];
		snprintf(extra, sizeof(extra), "%s,operation=\"%s\"", dev_extra(s, rows[r].key.dev),
			 rows[r].key.op == EBPF_BLOCK_READ ? "read" : "write");
		emit_hist(s, sink, M_EBPF_BLOCK_LATENCY_BUCKET, extra, &rows[r].val.lat);
		sink_emit(sink, M_EBPF_BLOCK_BYTES, extra, (double)rows[r].val.bytes);
		sink_emit(sink, M_EBPF_BLOCK_REQUESTS, extra, (double)rows[r].val.requests);
	}
	if (s->oom)
		sink_emit(sink, M_EBPF_OOM_KILLS, NULL, (double)k->oom_kills);
	return 0;
}

static void op_forget(void *state, struct coll_container *c, void **priv)
{
	struct ebpf_state *s = state;
	struct cont *k = *priv;
	const char *name = c->meta.name ? c->meta.name : c->id;

	/* A record read after this names the container from here. */
	struct gone *g = &s->gone[s->gone_next++ % GONE_MAX];
	snprintf(g->id, sizeof(g->id), "%s", c->id);
	snprintf(g->name, sizeof(g->name), "%s", name);
	if (s->npending)
		flush_pending(s, c->id, name, false);
	if (!k)
		return;
	*k->pprev = k->next;
	if (k->next)
		k->next->pprev = k->pprev;
	free(k);
	*priv = NULL;
}

/* ---- the agent's own series ------------------------------------------------ */

/* Counts a map's entries. Batch lookups walk the hash buckets, so entries
 * deleted meanwhile do not disturb them; without batch support (or when a
 * bucket does not fit a chunk) the keys are walked one by one, and a key
 * deleted under that walk sends it back to the start, so it stops at the
 * map's capacity: approximate, and bounded. */
static uint64_t count_entries(struct map_ref *m)
{
	uint64_t n = 0;

	if (m->keys && m->vals) {
		__u64 batch[4] = { 0 };
		bool first = true;
		for (;;) {
			__u32 count = COUNT_CHUNK;
			int rc = bpf_map_lookup_batch(m->fd, first ? NULL : batch, batch, m->keys,
						      m->vals, &count, NULL);
			int e = rc < 0 ? errno : 0;
			n += count;
			first = false;
			if (rc == 0)
				continue;
			if (e == ENOENT)
				return n;
			break;   /* ENOSPC, EINVAL, ...: walk the keys instead */
		}
		n = 0;
	}
	uint8_t key[64], next[64];
	void *prev = NULL;
	while (n < m->max_entries && bpf_map_get_next_key(m->fd, prev, next) == 0) {
		n++;
		memcpy(key, next, sizeof(key));
		prev = key;
	}
	return n;
}

static void op_agent_metrics(void *state, struct coll_sink *sink)
{
	struct ebpf_state *s = state;
	char extra[160];

	for (int p = 0; p < EBPF__PROBES; p++) {
		snprintf(extra, sizeof(extra), "probe=\"%s\"", probe_names[p]);
		sink_emit(sink, M_AGENT_EBPF_PROBE_UP, extra, s->up[p] ? 1 : 0);
	}
	int64_t t0 = mono_ns();
	for (size_t i = 0; i < s->nmaps; i++) {
		struct map_ref *m = &s->maps[i];
		/* Counting walks every key (a syscall each): every
		 * COUNT_EVERY_TICKS ticks, and less often for big maps. */
		if (s->ticks >= m->count_tick) {
			m->entries = count_entries(m);
			m->count_tick = s->ticks + COUNT_EVERY_TICKS + m->entries / 256;
		}
		snprintf(extra, sizeof(extra), "probe=\"%s\",map=\"%s\"", probe_names[m->probe],
			 m->name);
		sink_emit(sink, M_AGENT_EBPF_MAP_ENTRIES, extra, (double)m->entries);
		sink_emit(sink, M_AGENT_EBPF_MAP_MAX_ENTRIES, extra, (double)m->max_entries);
	}
	s->read_ns += mono_ns() - t0;
	for (size_t i = 0; i < s->nprogs; i++) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(s->progs[i].fd, &info, &len) < 0)
			continue;
		snprintf(extra, sizeof(extra), "probe=\"%s\",program=\"%s\"",
			 probe_names[s->progs[i].probe], s->progs[i].name);
		sink_emit(sink, M_AGENT_EBPF_PROG_RUNS, extra, (double)info.run_cnt);
		sink_emit(sink, M_AGENT_EBPF_PROG_SECONDS, extra, (double)info.run_time_ns / 1e9);
	}
	sink_emit(sink, M_AGENT_EBPF_READ_SECONDS, NULL, (double)s->read_ns / 1e9);
	if (s->oom)
		sink_emit(sink, M_AGENT_EBPF_EVENTS_LOST, "probe=\"oom\"", (double)ebpf_oom_lost(s->oom));
}

const struct coll_ops coll_ebpf_ops = {
	.name = "ebpf",
	.init = op_init,
	.collect = op_collect,
	.forget = op_forget,
	.destroy = op_destroy,
	.begin = op_begin,
	.agent_metrics = op_agent_metrics,
};
