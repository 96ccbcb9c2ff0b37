/*
 * collector.h - the public face of collectors/: the container registry that
 * discovery keeps, the collectors that sample each container, and the sink
 * they write into, which becomes an immutable snapshot of one tick.
 *
 * Threads: the registry, the collectors and the sink belong to the agent's
 * tick thread. Other threads (the Docker metadata thread) talk to it only
 * through a coll_meta_queue. Readers of the result (HTTP, later storage)
 * only ever see snapshots, which are immutable and reference-counted.
 */
#ifndef MONITOR_COLLECTOR_H
#define MONITOR_COLLECTOR_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/util/util.h"

/* ---- metric families (metrics.def) ------------------------------------- */

/*
 * A histogram is three families in a row in metrics.def: name_bucket
 * (HIST_BUCKET, samples carry le), name_sum and name_count. Each is stored
 * under its own sample name, as Prometheus stores them; the exposition
 * writes one HELP/TYPE histogram header for the three.
 */
enum metric_type { COUNTER, GAUGE, HIST_BUCKET, HIST_SUM, HIST_COUNT };
/* "counter", "gauge", "histogram" (all three histogram parts). */
const char *metric_type_name(enum metric_type t);

enum metric_id {
#define METRIC(id, name, type, labels, help, source) M_##id,
#include "collectors/metrics.def"
#undef METRIC
	M__COUNT
};

struct metric_family {
	const char *name;
	enum metric_type type;
	const char *labels;      /* extra labels, for the docs */
	const char *help;
	const char *source;      /* kernel file or probe, for the docs */
};
extern const struct metric_family metric_families[M__COUNT];

/* ---- runtimes ----------------------------------------------------------- */

enum coll_runtime {
	RUNTIME_UNKNOWN,
	RUNTIME_DOCKER,
	RUNTIME_CONTAINERD,
	RUNTIME_CRIO,
	RUNTIME_PODMAN,
	RUNTIME_RUNC,
	RUNTIME_NSPAWN,
	RUNTIME_LXC,
	RUNTIME_KUBEPOD,         /* a Kubernetes pod's own cgroup */
	RUNTIME__COUNT
};
/* "docker", "containerd", ...; never NULL. */
const char *coll_runtime_name(enum coll_runtime rt);

/* ---- cgroup layout (cgroup.c) ------------------------------------------- */

enum cg_mode { CG_NONE, CG_V1, CG_V2, CG_HYBRID };

enum cg_ctrl { CG_CPU, CG_CPUACCT, CG_CPUSET, CG_MEMORY, CG_BLKIO, CG_PIDS, CG_SYSTEMD, CG__CTRL_COUNT };

/*
 * Where the hierarchies are mounted, as paths with the host root applied.
 * v1[] entries are "" when that controller is not mounted. unified is the
 * v2 tree: /sys/fs/cgroup on pure v2, /sys/fs/cgroup/unified on hybrid.
 */
struct cg_layout {
	enum cg_mode mode;
	char unified[PATH_MAX];
	char v1[CG__CTRL_COUNT][PATH_MAX];
};
/* Probes <host-root>/sys/fs/cgroup. Returns 0, or -ENOENT when no cgroup
 * hierarchy is found there (a wrong --host-root). */
int cg_layout_detect(struct cg_layout *l);
/* The hierarchy discovery walks: the v2 tree on pure v2, else the v1
 * memory (or cpuacct, cpu, pids) hierarchy. NULL when there is none. */
const char *cg_layout_walk_root(const struct cg_layout *l);
const char *cg_mode_name(enum cg_mode m);

/* ---- container metadata ------------------------------------------------- */

/*
 * What runtimes tell about a container. Every string is malloc'd and owned by
 * the struct; coll_meta_fini frees them. NULL means unknown.
 */
struct coll_meta {
	char *name;              /* Docker name without '/', pod container name, ... */
	char *image;
	char *state;             /* running, paused, restarting, ... */
	char *pod;               /* Kubernetes pod name */
	char *namespace;         /* Kubernetes namespace */
	char *container;         /* Kubernetes container name */
	char *compose_project;
	size_t nlabels;
	char **label_keys;       /* runtime labels, all of them */
	char **label_vals;
	double started_at;       /* unix seconds; 0 when unknown */
	int64_t restart_count;   /* -1 when unknown */

	/* Lifecycle and layout (Docker inspect; docker.c). has_state says the
	 * runtime reported State: exit_code and oom_killed mean something. */
	bool has_state;
	int64_t exit_code;       /* State.ExitCode: last exit (137: SIGKILL / OOM) */
	bool oom_killed;         /* State.OOMKilled */
	char *health;            /* State.Health.Status: starting, healthy, unhealthy; NULL without a healthcheck */
	double created_at;       /* unix seconds; 0 when unknown */
	double finished_at;      /* State.FinishedAt; 0 when it never finished */
	int64_t pid;             /* State.Pid: the init process on the host; 0 when not running */
	char *restart_policy;    /* HostConfig.RestartPolicy.Name: no, always, on-failure, unless-stopped */
	int64_t restart_max;     /* RestartPolicy.MaximumRetryCount */
	char *command;           /* Path and Args joined by spaces */
	char *upper_dir;         /* GraphDriver.Data.UpperDir: the writable layer on the host */
	double layer_quota_bytes; /* HostConfig.StorageOpt.size (--storage-opt size=); 0: none */
	char *log_path;          /* LogPath: the json-file log on the host; NULL when none */
	size_t nports;
	struct coll_port *ports; /* published ports */
	size_t nmounts;
	struct coll_mount *mounts;
};

/* A published port: host_ip:host_port -> container_port/proto. host_port is
 * 0 for an exposed port that is not published. */
struct coll_port {
	char *host_ip;
	int host_port;
	int container_port;
	char proto[8];           /* tcp, udp, sctp */
};
/* A mount as the runtime reports it (Docker Mounts[]). */
struct coll_mount {
	char *type;              /* bind, volume, tmpfs, npipe */
	char *name;              /* volume name; NULL for others */
	char *source;            /* host path (volume's _data dir, bind source); "" for tmpfs */
	char *destination;       /* path inside the container */
	bool rw;
};
#define COLL_MAX_PORTS 256
#define COLL_MAX_MOUNTS 64
void coll_meta_fini(struct coll_meta *m);
/* Deep copy; returns 0 or -ENOMEM. */
int coll_meta_copy(struct coll_meta *dst, const struct coll_meta *src);
/* Appends a label (copies both strings); returns 0 or -ENOMEM. */
int coll_meta_add_label(struct coll_meta *m, const char *key, const char *val);
const char *coll_meta_label(const struct coll_meta *m, const char *key);
/* Append a copy of a port or mount (strings copied); past COLL_MAX_PORTS /
 * COLL_MAX_MOUNTS the rest are dropped. Return 0 or -ENOMEM. */
int coll_meta_add_port(struct coll_meta *m, const struct coll_port *p);
int coll_meta_add_mount(struct coll_meta *m, const struct coll_mount *mt);

/*
 * A queue of metadata updates from other threads to the tick thread.
 * coll_meta_post takes ownership of *m (and leaves it zeroed).
 * An update with remove=true says the runtime forgot the container.
 */
struct coll_meta_update {
	struct coll_meta_update *next;
	char id[80];
	bool remove;
	struct coll_meta meta;
};
struct coll_meta_queue {
	pthread_mutex_t lock;
	struct coll_meta_update *head, *tail;
};
void coll_meta_queue_init(struct coll_meta_queue *q);
void coll_meta_queue_fini(struct coll_meta_queue *q);
void coll_meta_post(struct coll_meta_queue *q, const char *id, struct coll_meta *m, bool remove);
/* Takes the whole list (caller frees each with coll_meta_update_free). */
struct coll_meta_update *coll_meta_take(struct coll_meta_queue *q);
void coll_meta_update_free(struct coll_meta_update *u);

/* ---- the registry ------------------------------------------------------- */

#define COLL_MAX_COLLECTORS 8

/*
 * One container (or pod) as discovery knows it. Owned by the registry.
 */
struct coll_container {
	char id[80];             /* runtime id (64 hex for most), else the cgroup name */
	char *cgroup;            /* path relative to the hierarchy root: "/docker/<id>" */
	enum coll_runtime runtime;
	char pod_uid[48];        /* Kubernetes pod UID when under kubepods */
	char qos[16];            /* guaranteed, burstable, besteffort */
	struct coll_meta meta;
	bool has_meta;           /* a runtime answered for this container */
	uint32_t meta_gen;       /* bumped whenever meta is replaced */
	double cgroup_ctime;     /* start-time fallback */
	uint32_t seen_gen;       /* last rescan generation that saw it */
	char *prom_labels;       /* rendered base labels, rebuilt on meta change */
	void *priv[COLL_MAX_COLLECTORS]; /* per-collector state (open files) */
	bool fresh;              /* discovered while running: collected once settled */
	int64_t found_ns;        /* mono_ns() at discovery */
	struct coll_container *next;  /* registry list */
	struct coll_container *hnext; /* hash chain by cgroup path */
};

/*
 * What one cgroup path says about its owner (cgpath.c). Returns from
 * cg_classify: 1 for a container or pod cgroup, 0 for anything else
 * (slices, services, conmon, the root, a pod's child that is not a container).
 */
struct cg_ident {
	enum coll_runtime runtime;
	char id[80];
	char pod_uid[48];
	char qos[16];
};
int cg_classify(const char *path, struct cg_ident *out);

/*
 * Metadata from the runtimes' own files (oci.c): OCI state.json/config.json
 * of runc, containerd, CRI-O and podman, under the host root. Fills m with
 * what it finds (name, image, Kubernetes annotations, start time). Returns
 * 0 when something was found, -ENOENT otherwise.
 */
int oci_lookup(const char *id, enum coll_runtime rt, struct coll_meta *m);

/*
 * Plain runc containers live at any cgroup path; their state.json says where.
 * Calls fn for each container found under the runc state roots with its id
 * and cgroup path relative to the hierarchy root.
 */
typedef void (*oci_runc_fn)(void *arg, const char *id, const char *cgroup_path);
int oci_scan_runc(oci_runc_fn fn, void *arg);

/*
 * The registry: every known container, discovery that keeps it current
 * (inotify on the cgroup tree plus a slow rescan), and the collectors run
 * over it. Owned and used by the tick thread only.
 */
struct coll_registry;
struct coll_ctx;
struct coll_sink;
struct coll_registry *coll_registry_new(const struct coll_ctx *ctx);
void coll_registry_free(struct coll_registry *r);
/* Walks the whole tree: adds new containers, drops vanished ones. */
int coll_registry_rescan(struct coll_registry *r);
/* The inotify descriptor to poll, or -1. */
int coll_registry_fd(const struct coll_registry *r);
/* Reads pending inotify events and applies them; returns the number of
 * containers added or removed. Never blocks. */
int coll_registry_poll(struct coll_registry *r);
/* Applies metadata updates from other threads. */
void coll_registry_apply(struct coll_registry *r, struct coll_meta_queue *q);
/* hold: the metadata source (Docker) has not answered yet, so a Docker
 * container without metadata is not collected (at most
 * COLL_HOLD_UNNAMED_MS after it was found) rather than exported under its
 * id and again under its name a moment later (two series of one
 * container). Off by default; the tick thread, before coll_registry_apply
 * (so metadata posted before the answer was seen is applied first). */
#define COLL_HOLD_UNNAMED_MS 30000
void coll_registry_hold_unnamed(struct coll_registry *r, bool hold);
/* up: the metadata source (Docker) answers. Once it has first answered, a
 * Docker container found later without metadata is held the same way while
 * the engine is up, at most COLL_HOLD_NEW_MS: Docker inspects a container
 * at its create event, before runc makes the cgroup, so its name is
 * normally in first; a busy engine can be later, and a cgroup it never
 * names (not Docker's after all, an engine that stops answering) is
 * collected under its id after the wait rather than never. The tick
 * thread. */
#define COLL_HOLD_NEW_MS 2000
void coll_registry_engine_up(struct coll_registry *r, bool up);
/* Runs every collector over every container into sink. errors[i] is
 * incremented by collector i's failed reads. */
void coll_registry_collect(struct coll_registry *r, struct coll_sink *sink, uint64_t *errors);
/* fn(arg) is called every few hundred containers of a tick's loop, so a
 * long tick can poll discovery (coll_registry_poll, whose removals then wait
 * for the loop's end) and run coll_registry_collect_fresh. NULL: none. */
void coll_registry_set_midtick(struct coll_registry *r, void (*fn)(void *arg), void *arg);
/* When the earliest container found since the last tick will have settled
 * (mono_ns), 0 when none waits. Tick thread. */
int64_t coll_registry_fresh_due_ns(const struct coll_registry *r);
/* Collects only the containers found since the last tick that have settled,
 * with the collectors that need no per-tick begin, into sink; they are then
 * collected as usual from the next tick. Returns how many. Tick thread. */
size_t coll_registry_collect_fresh(struct coll_registry *r, struct coll_sink *sink,
				   uint64_t *errors);
/* Lets every collector add its agent-level samples (after sink_begin_agent). */
void coll_registry_agent_metrics(struct coll_registry *r, struct coll_sink *sink);
size_t coll_registry_count(const struct coll_registry *r, enum coll_runtime rt);
struct coll_container *coll_registry_first(struct coll_registry *r);

/* ---- the sink and snapshots (sink.c) ------------------------------------ */

#define SNAP_NO_CONTAINER UINT32_MAX

struct snap_sample {
	uint32_t family;         /* enum metric_id */
	uint32_t container;      /* index in snapshot containers, or SNAP_NO_CONTAINER */
	const char *extra;       /* rendered, escaped extra labels ("cpu=\"total\""), or NULL */
	double value;
};

struct snap_container {
	const char *id, *name, *image, *runtime, *cgroup, *state;
	const char *pod, *namespace, *container, *compose_project;
	size_t nlabels;
	const char **label_keys, **label_vals;
	const char *prom_labels; /* id="...",name="...",image="..."[,...] */
	double start_time;
	uint32_t sample_first, sample_count;

	/* Lifecycle (copies of coll_meta's, see there). has_cgroup is false for
	 * a container shown without a cgroup: created, restarting, or exited
	 * within discovery.keep_exited; it then has no cgroup values. */
	bool has_cgroup;
	bool has_state;
	int64_t exit_code;
	bool oom_killed;
	int64_t restart_count;   /* -1 when unknown */
	const char *health;      /* NULL without a healthcheck */
	double created_at, finished_at, last_seen; /* 0: unknown / never */
	const char *restart_policy, *command;
	size_t nports, nmounts;
	const struct coll_port *ports;   /* strings in the snapshot's arena */
	const struct coll_mount *mounts;
};

/*
 * One tick's worth of values. Immutable once published; readers hold a
 * reference (snapshot_ref / snapshot_unref). Everything it points to lives
 * in its arena.
 */
struct snapshot {
	int refs;
	int64_t time_ms;
	uint64_t seq;            /* set when published: increases with each snapshot */
	struct arena arena;
	struct snapshot *parents[2]; /* a merged snapshot's sources, whose arenas
				      * its strings point into (snapshot_merge) */
	struct snap_container *containers;
	size_t ncontainers, containers_cap;
	struct snap_sample *samples;
	size_t nsamples, samples_cap;
	uint32_t *order;         /* sample indices sorted by family (stable) */
	bool failed;             /* an allocation failed; values are incomplete */
};

struct snapshot *snapshot_ref(struct snapshot *s);
void snapshot_unref(struct snapshot *s);

/*
 * The sink builds a snapshot. Collectors call sink_emit for the container
 * the agent began with sink_begin_container; agent-level samples are
 * emitted after sink_begin_agent.
 */
struct coll_sink {
	struct snapshot *snap;
	uint32_t cur;
};
int sink_open(struct coll_sink *s, int64_t time_ms);
/* Adds a container to the snapshot (copies every string of c). */
void sink_begin_container(struct coll_sink *s, const struct coll_container *c, double start_time);
/* Marks the container begun last as one without a cgroup (exited, created,
 * restarting), last seen alive at last_seen (0: never). */
void sink_mark_gone(struct coll_sink *s, double last_seen);
void sink_begin_agent(struct coll_sink *s);
/* extra: rendered, escaped label text, copied; NULL for none. */
void sink_emit(struct coll_sink *s, enum metric_id m, const char *extra, double v);
/* Finishes the snapshot (sorts by family) and hands it to the caller with
 * one reference. */
struct snapshot *sink_close(struct coll_sink *s);

/*
 * A snapshot holding base's containers and samples followed by add's, at
 * base's time: how containers found between ticks reach readers before the
 * next tick. Takes a reference on both (their strings are shared, not
 * copied); the caller keeps its own. Returns NULL on ENOMEM.
 */
struct snapshot *snapshot_merge(struct snapshot *base, struct snapshot *add);

/* Emits the lifecycle series (state, health, restart count, exit code, OOM
 * killed) of the container begun last, from m (lifecycle.c). Tick thread. */
void coll_emit_lifecycle(struct coll_sink *sink, const struct coll_meta *m);

/* Renders text format 0.0.4 into out. Returns 0 or -ENOMEM. */
int snapshot_render_text(const struct snapshot *s, struct buf *out);
/* The same text a part at a time (the /metrics stream, so that the whole
 * text never sits in memory): where the render stands between calls. */
struct text_cursor {
	size_t k;                /* the next sample, in s->order */
	uint32_t prev;           /* the family of the last line written */
};
void text_cursor_init(struct text_cursor *c);
/* Appends whole lines from c on until out holds at least want bytes (the
 * line that crosses it is finished) or the snapshot ends; true at the end.
 * A line that would pass out's cap is left out: out->overflow is set,
 * out->len is where that line began, and c still points at it. */
bool snapshot_render_text_some(const struct snapshot *s, struct text_cursor *c, struct buf *out,
			       size_t want);

/* ---- the event timeline (events.c) ------------------------------------- */

/*
 * Lifecycle events (start, stop, die, oom, restart, health, action, ...) as
 * the agent learns them from runtimes and probes. A bounded ring shared by
 * every thread: posting copies the event, reading copies them out.
 */
struct coll_event {
	int64_t time_ms;
	uint64_t seq;            /* assigned by the log, increasing */
	char id[80];             /* container id */
	char name[128];          /* container name when known */
	char type[24];           /* "start", "die", "oom", "health_status", ... */
	char detail[256];        /* "exit code 137", "unhealthy", "pid 42 (stress)" */
};
struct coll_event_log {
	pthread_mutex_t lock;
	struct coll_event *ring;
	size_t cap, head, count;
	uint64_t next_seq;
};
/* cap events are kept, the oldest dropped first. Returns 0 or -ENOMEM. */
int coll_event_log_init(struct coll_event_log *log, size_t cap);
void coll_event_log_fini(struct coll_event_log *log);
/* Copies ev in (time_ms 0 means now); any thread. */
void coll_event_post(struct coll_event_log *log, const struct coll_event *ev);
/* Copies out up to max events with seq > after_seq, oldest first; returns
 * the number copied. Any thread. */
size_t coll_event_read(struct coll_event_log *log, uint64_t after_seq, struct coll_event *out,
		       size_t max);

/* ---- the Docker Engine API (docker.c) ------------------------------------ */

/*
 * A thread that keeps container metadata from the Docker Engine API over its
 * unix socket: it lists and inspects every container, then follows /events,
 * posting a coll_meta for each container (keyed by its 64-hex id) to q. When
 * the socket is missing, refuses or hangs, it retries with backoff; the tick
 * never waits on it. socket_path is host-root relative as given in the config.
 */
struct docker_client;
/* events: where container lifecycle events from /events are posted (start,
 * stop, die, oom, restart, health_status, pause, unpause, create, destroy);
 * NULL for none. */
struct docker_client *docker_start(const char *socket_path, int64_t timeout_ms,
				   struct coll_meta_queue *q, struct coll_event_log *events);
/* Stops the thread (within timeout_ms) and frees the client; NULL is fine. */
void docker_stop(struct docker_client *d);
/* Makes requests in flight (the thread's and docker_action's) give up at
 * once, before docker_stop; any thread, NULL is fine. */
void docker_interrupt(struct docker_client *d);
/* 1 when the last request succeeded, 0 otherwise. Any thread. */
int docker_up(const struct docker_client *d);
/* 1 once the first list of containers has been inspected and posted, or
 * that first attempt has failed (the engine is down); 1 for NULL. */
int docker_synced(const struct docker_client *d);
/*
 * Runs POST /containers/{id}/{action}[?query] (start, stop, restart, pause,
 * unpause, kill) on the caller's thread with its own connection, waiting at
 * most timeout_ms. Returns the engine's HTTP status (204 done, 304 already
 * so, 404, 409, 500, ...) with the engine's message in msg, or -ETIMEDOUT
 * (no answer in time) or -EIO (cannot connect, broken answer) with the
 * reason in msg. Any thread; the client must outlive the call.
 */
int docker_action(struct docker_client *d, const char *id, const char *action,
		  const char *query, int64_t timeout_ms, char *msg, size_t msgsize);

/* ---- the host's totals (machine.c) -------------------------------------- */

/*
 * The denominators of `docker stats`: host CPU time as the Docker daemon's
 * system_cpu_usage (first seven fields of the /proc/stat "cpu" line), the
 * online CPUs ("cpuN" lines) and MemTotal. Read by the tick thread only;
 * files under the host root stay open between reads.
 */
struct coll_machine {
	int stat_fd, meminfo_fd;
	int loadavg_fd;          /* -1 when /proc/loadavg could not be opened */
	long user_hz;
	char *buf;
	size_t buf_size;
	double cpu_seconds;      /* after a successful read */
	int cpus;
	double memory_bytes;
	/* For monitor top's header: idle + iowait of the same seven fields,
	 * MemAvailable (-1 when the kernel lacks it) and the load averages
	 * (-1 when /proc/loadavg is unreadable). */
	double idle_seconds;
	double memory_available_bytes;
	double load[3];
};
/* Opens /proc/stat and /proc/meminfo under the host root. Returns 0 or
 * -errno (m is then closed). */
int coll_machine_open(struct coll_machine *m);
/* Closes the files; NULL and closed machines are fine. */
void coll_machine_close(struct coll_machine *m);
/* Re-reads both files into m's fields. Returns 0, -errno or -EINVAL when a
 * file does not parse (the fields keep their last values). */
int coll_machine_read(struct coll_machine *m);
/* Parsers, exported for the tests: 0 or -EINVAL. */
int coll_machine_parse_stat(const char *text, long user_hz, double *cpu_seconds, int *cpus);
int coll_machine_parse_meminfo(const char *text, double *memory_bytes);
/* idle + iowait of the "cpu" line, in seconds; 0 or -EINVAL. */
int coll_machine_parse_idle(const char *text, long user_hz, double *idle_seconds);
/* MemAvailable in bytes; -ENOENT when the line is missing (before 3.14). */
int coll_machine_parse_available(const char *text, double *bytes);
/* The three load averages of /proc/loadavg; 0 or -EINVAL. */
int coll_machine_parse_loadavg(const char *text, double load[3]);

/* ---- the host's filesystems (hostfs.c) ---------------------------------- */

/* Block-device filesystems of the host's mount table, each device once, for
 * machine_fs_usage_bytes and machine_fs_limit_bytes (the host's disk
 * forecasts). Tick thread only. */
#define COLL_HOSTFS_MAX 64
struct coll_hostfs {
	struct {
		char device[256];
		char mountpoint[512];
	} m[COLL_HOSTFS_MAX];
	size_t n;
	int64_t last_scan_ms;    /* 0: never read */
};
/* Parses /proc/<pid>/mounts text into h (the first COLL_HOSTFS_MAX
 * devices). Returns 0. */
int coll_hostfs_parse(const char *text, struct coll_hostfs *h);
/* Re-reads <host-root>/proc/1/mounts every minute, statfs(2)s each
 * filesystem and emits its size and use (agent-level samples). */
void coll_hostfs_emit(struct coll_hostfs *h, struct coll_sink *sink, int64_t now_ms);

/* ---- eBPF probes (ebpf.c) ----------------------------------------------- */

enum ebpf_probe { EBPF_NET, EBPF_TCP, EBPF_BLOCK, EBPF_OOM, EBPF__PROBES };
enum ebpf_attach { EBPF_ATTACH_AUTO, EBPF_ATTACH_RAW, EBPF_ATTACH_CLASSIC };

/* The ebpf: section of the config (--no-ebpf clears enabled). */
struct ebpf_config {
	bool enabled;
	bool probe[EBPF__PROBES];        /* per-probe switches */
	enum ebpf_attach attach;         /* tracepoint style; auto: raw, else classic */
	uint32_t max_cgroups;            /* entries of the per-cgroup maps */
	uint32_t max_sockets;            /* TCP sockets tracked at once */
	uint32_t max_inflight_io;        /* block requests tracked at once */
	char block_start[64];            /* block tracepoint that starts the clock */
	char block_done[64];             /* block tracepoint that stops it */
};
void ebpf_config_defaults(struct ebpf_config *c);
/* "net", "tcp", "block", "oom"; NULL past the end. */
const char *ebpf_probe_name(enum ebpf_probe p);

/* ---- collectors --------------------------------------------------------- */

struct coll_ctx {
	const struct cg_layout *layout;
	struct coll_event_log *events;  /* where collectors post lifecycle events */
	bool percpu;             /* per-CPU usage series instead of cpu="total" */
	bool cgroup_iter;        /* try the BPF cgroup iterator (cgroup_iter.c) */
	const char *const *label_allow; /* container labels exported as container_label_* */
	size_t nlabel_allow;
	/* Globs (fnmatch, "*" crossing "/") on a cgroup path relative to the
	 * hierarchy: only a cgroup matching one is a container. None: all. */
	const char *const *cgroup_match;
	size_t ncgroup_match;
	const struct ebpf_config *ebpf;   /* NULL: no eBPF probes */
	int64_t keep_exited_ms;  /* show containers without a cgroup this long after they exit (0: never) */
	int64_t fs_interval_ms;  /* how often a writable layer or volume is measured (0: never) */
	int64_t fs_walk_budget;  /* directory entries the fs collector may stat per tick */
	bool network;            /* per-namespace network counters (netns.c) */
	int64_t process_interval_ms; /* how often process/fd/socket counts are refreshed (0: never) */
	struct coll_logtail *logs; /* the log tailer (logtail.c); NULL: logs off */
};

/*
 * A collector: a const table of operations plus its own state. collect reads
 * one container and emits its samples; forget releases the container's
 * per-container state (its open files) when the container vanishes.
 * collect returns the number of failed reads (0 when all went well).
 */
struct coll_ops {
	const char *name;
	int (*init)(void **state, const struct coll_ctx *ctx);
	int (*collect)(void *state, struct coll_container *c, void **priv, struct coll_sink *sink);
	void (*forget)(void *state, struct coll_container *c, void **priv);
	void (*destroy)(void *state);
	/* Optional: once per tick, before the first container is collected. */
	void (*begin)(void *state, struct coll_sink *sink);
	/* Optional: the collector's own health as agent-level samples. */
	void (*agent_metrics)(void *state, struct coll_sink *sink);
};

/* The registry of collectors, in collection order (registry.c). */
extern const struct coll_ops *const coll_all[];
extern const size_t coll_count;
/* CPU, memory, block I/O, pids and PSI from cgroup v1, v2 or hybrid (cgroup.c). */
extern const struct coll_ops coll_cgroup_ops;
/* eBPF probes: socket traffic, TCP health, block I/O latency, OOM kills
 * per container (ebpf.c and the loaders ebpf_*.c). */
extern const struct coll_ops coll_ebpf_ops;
/* Writable layer and volume sizes (budgeted walks) and the capacity of each
 * mount's filesystem (fs.c). */
extern const struct coll_ops coll_fs_ops;

/* Network counters per namespace, with its owner and mode (netns.c). */
extern const struct coll_ops coll_netns_ops;
/* Process, thread, file descriptor and socket counts on a slow cadence (procs.c). */
extern const struct coll_ops coll_procs_ops;

/* ---- cgroup collector helpers (cgroup.c), exported for tests ------------- */

/* Parses "key value\n" lines (memory.stat, cpu.stat, memory.events); returns
 * the value of key or -1 when absent. */
int64_t cg_kv_get(const char *text, const char *key);
/* Parses a PSI file; returns the "total=" of the some (full=false) or full line
 * in microseconds, or -1. */
int64_t cg_psi_total_us(const char *text, bool full);
/* Counts CPUs in a list such as "0-3,8,10-11"; -1 when malformed. */
int cg_cpuset_count(const char *text);

/* ---- /proc: processes, namespaces, sockets (procfs.c) ------------------- */

/*
 * Stateless readers of /proc under the host root, shared by the network and
 * process collectors (tick thread) and the /processes and /ports handlers
 * (connection threads); any thread may call them. A process that vanished
 * reads as -ENOENT; -EACCES means the agent lacks root or CAP_SYS_PTRACE.
 */

/* Thread-group ids in the container's cgroup (path relative to the walk
 * hierarchy, as coll_container.cgroup) and its descendant cgroups, sorted
 * and without repeats, at most cap of them (*truncated set when there were
 * more). Returns the count, or -errno when the cgroup cannot be read
 * (-ENOENT: it is gone). */
ssize_t proc_cgroup_pids(const struct cg_layout *l, const char *cgroup, pid_t *pids, size_t cap,
			 bool *truncated);

/* A namespace's identity: the nsfs device and inode of /proc/<pid>/ns/net. */
struct proc_nsid {
	uint64_t dev, ino;
};
/* Returns 0, -ENOENT when pid is gone, -EACCES without privilege. */
int proc_netns_id(pid_t pid, struct proc_nsid *out);
/* The host's namespace: init's (pid 1), else kthreadd's (pid 2) when init
 * may not be looked at. 0 or -errno. */
int proc_host_netns(struct proc_nsid *out);

/* The fields of /proc/<pid>/stat the agent uses. */
struct proc_stat {
	pid_t pid, ppid;
	char state;              /* R, S, D, Z, T, t, X, I, ... */
	char comm[64];
	int64_t threads;
	int64_t rss_pages;
	uint64_t utime_ticks, stime_ticks; /* USER_HZ */
	uint64_t start_ticks;    /* since boot, USER_HZ */
};
/* Parses one stat line (a command holding ") " included). 0 or -EINVAL. */
int proc_parse_stat(const char *text, struct proc_stat *out);
/* Reads /proc/<pid>/stat; 0, -ENOENT (gone), -EACCES, -EINVAL. */
int proc_read_stat(pid_t pid, struct proc_stat *out);
/* The effective uid from /proc/<pid>/status; 0 or -errno. */
int proc_read_uid(pid_t pid, uint32_t *uid);
/* The command line with arguments joined by spaces, cut to size-1 bytes;
 * returns its length (0 for kernel threads and zombies) or -errno. */
ssize_t proc_read_cmdline(pid_t pid, char *out, size_t size);

/* Open files of one process. */
struct proc_fds {
	int64_t fds;             /* entries listed; past max_fds, the count procfs gives (6.2+) */
	int64_t listed;          /* entries examined (at most max_fds) */
	int64_t sockets;         /* among those examined */
	bool truncated;          /* stopped at max_fds */
};
typedef void (*proc_socket_fn)(void *arg, pid_t pid, uint64_t inode);
/* Lists /proc/<pid>/fd (at most max_fds entries, one readlink each),
 * counting the sockets and calling fn (when given) with each socket's inode.
 * 0, -ENOENT, -EACCES. */
int proc_scan_fds(pid_t pid, size_t max_fds, struct proc_fds *out, proc_socket_fn fn, void *arg);

/* One interface of /proc/<pid>/net/dev. */
struct proc_netdev {
	char name[32];
	uint64_t rx_bytes, rx_packets, rx_errors, rx_dropped;
	uint64_t tx_bytes, tx_packets, tx_errors, tx_dropped;
};
/* Parses net/dev text into out (at most cap; *total counts all). Returns the
 * number stored, or -EINVAL when the text is not a net/dev file. */
int proc_parse_netdev(const char *text, struct proc_netdev *out, size_t cap, size_t *total);
/* Interfaces not counted as a container's traffic, as cAdvisor: lo, veth*,
 * docker*, nerdctl*. */
bool proc_netdev_skipped(const char *name);

/* Sockets of /proc/<pid>/net/{tcp,tcp6,udp,udp6}. */
enum { PROC_TCP = 6, PROC_UDP = 17 };
enum { PROC_AF_INET = 2, PROC_AF_INET6 = 10 };
enum { PROC_TCP_LISTEN = 0x0A, PROC_TCP_CLOSE = 0x07 };
#define PROC_SOCKETS_FILE_CAP (64u << 20) /* bytes of one net/tcp file read at most */
struct proc_socket {
	uint8_t proto, family, state;
	uint8_t addr[16];        /* network order; IPv4 in the first 4 bytes */
	uint16_t port;
	uint32_t uid;
	uint64_t inode;
};
/* Parses one file's text. listening_only keeps TCP sockets in LISTEN and
 * unconnected UDP sockets (what ss -l shows). Returns the number stored (at
 * most cap; *total counts all kept), or -EINVAL for a malformed file. */
int proc_parse_sockets(const char *text, int proto, int family, bool listening_only,
		       struct proc_socket *out, size_t cap, size_t *total);
/* Reads and parses the file of pid's network namespace. Same returns, plus
 * -ENOENT, -EACCES, -EFBIG (past PROC_SOCKETS_FILE_CAP). */
int proc_read_sockets(pid_t pid, int proto, int family, bool listening_only,
		      struct proc_socket *out, size_t cap, size_t *total);
/* "0.0.0.0", "::", "::1", "::ffff:10.0.0.1". out should hold 64 bytes. */
void proc_format_addr(const struct proc_socket *s, char *out, size_t size);

/* ---- container logs: parsing (logparse.c) and tailing (logtail.c) -------- */

/* Levels, numbered as the log store numbers them (storage.h). */
enum coll_log_level {
	COLL_LOG_NONE, COLL_LOG_TRACE, COLL_LOG_DEBUG, COLL_LOG_INFO, COLL_LOG_WARN,
	COLL_LOG_ERROR, COLL_LOG_FATAL, COLL_LOG__LEVELS
};
/* "unknown", "trace", ... "fatal": the level label of container_log_lines_total. */
const char *coll_log_level_name(int level);

/* One record of a log file, decoded. text points into the line (CRI) or
 * into the caller's buf (Docker, whose JSON string is unescaped there). */
struct coll_log_entry {
	int64_t time_ns;         /* -1 when the record has none that parses */
	int stream;              /* 0 stdout, 1 stderr */
	bool partial;            /* the next record of the stream continues it */
	const char *text;
	size_t len;
};
/* Parses "2006-01-02T15:04:05.999999999Z07:00" (RFC 3339, fraction
 * optional, also with a space for the T) into unix ns; -1 when malformed. */
int64_t coll_log_parse_time(const char *s, size_t n);
/* One Docker json-file line ({"log":..,"stream":..,"time":..}, no '\n'):
 * the unescaped log text is appended to text. A log value that does not end
 * in "\n" is partial (dockerd splits at 16 KiB). 0, -EINVAL (malformed),
 * -E2BIG (text's cap reached). */
int coll_log_parse_docker(const char *line, size_t n, struct buf *text, struct coll_log_entry *e);
/* One CRI line: "<RFC3339Nano> <stdout|stderr> <P|F>[:tags] <message>".
 * 0 or -EINVAL. */
int coll_log_parse_cri(const char *line, size_t n, struct coll_log_entry *e);
/* The level a message names: a JSON "level"/"severity"/"lvl" member,
 * logfmt level=, a glog prefix (E0102 ...), or a level word among the
 * first words in capitals, brackets or before a colon (ERROR, [error],
 * <warn>, error:). COLL_LOG_NONE when it names none. */
int coll_log_level(const char *msg, size_t n);
/* True when msg holds bytes that are not valid UTF-8 or are control
 * characters (other than tab). */
bool coll_log_needs_escape(const char *msg, size_t n);
/* Appends msg to out with such bytes written \xHH and '\' as \\. */
void coll_log_escape(const char *msg, size_t n, struct buf *out);
/* The longest prefix of s (n bytes) of at most max bytes that does not end
 * inside a UTF-8 sequence. */
size_t coll_log_utf8_cut(const char *s, size_t n, size_t max);

#define COLL_LOG_MAX_GLOBS 32
#define COLL_LOG_LINE_CAP_DEFAULT (64u << 10)

/* The logs: section as the tailer uses it. Paths are host paths; the host
 * root is put in front of them. */
struct coll_log_config {
	bool enabled;
	char docker_dir[PATH_MAX];    /* json-file logs: <dir>/<id>/<id>-json.log */
	char cri_dir[PATH_MAX];       /* /var/log/pods/<ns>_<pod>_<uid>/<ctr>/<n>.log */
	char cri_links_dir[PATH_MAX]; /* /var/log/containers: links that name the ids */
	char podman_dir[PATH_MAX];    /* <dir>/<id>/userdata/ctr.log (k8s-file) */
	char *globs[COLL_LOG_MAX_GLOBS]; /* extra files (format found per file) */
	size_t nglobs;
	double rate_lines;            /* per container per second, 0: no cap */
	double rate_bytes;
	size_t line_cap;              /* longer lines are cut with a marker */
	int64_t poll_ms;              /* how often files are checked for more */
	int64_t rescan_ms;            /* how often directories are listed */
	int64_t commit_ms;            /* lines still coming are stored at most this often */
};
void coll_log_config_defaults(struct coll_log_config *c);
void coll_log_config_fini(struct coll_log_config *c);

/* What the tailer hands over (the agent stores it: collectors never call
 * storage). Lines and positions mirror storage.h's log_record and
 * log_position field for field. */
struct coll_log_line {
	const char *id, *name;
	int64_t time_ns;
	int stream, level;
	uint32_t flags;          /* 1 escaped, 2 truncated, 4 partial (as LOGSTORE_*) */
	const char *msg;
	size_t msg_len;
};
struct coll_log_pos {
	const char *path;
	uint64_t dev, ino, offset, fingerprint, fingerprint_len;
};
struct coll_log_output {
	void *arg;
	/* Stores lines and positions in one transaction; 0 or -errno (the
	 * tailer then re-reads from the positions it stored last). */
	int (*write)(void *arg, const struct coll_log_line *l, size_t n,
		     const struct coll_log_pos *p, size_t np);
	/* The stored position of path (p->path unused); 0 or -ENOENT. */
	int (*position)(void *arg, const char *path, struct coll_log_pos *p);
	/* A container's name learnt from a hint (NULL: not needed). */
	int (*name)(void *arg, const char *id, const char *name);
};

/* Per-container counters since the agent started. */
struct coll_log_counters {
	uint64_t lines[2][COLL_LOG__LEVELS];  /* [stream][level] */
	uint64_t bytes[2];
	uint64_t dropped_lines, dropped_bytes; /* by the ingest cap (file lines and bytes) */
	uint64_t truncated;
};
struct coll_logtail_stats {
	uint64_t files;          /* tailed now */
	uint64_t read_errors, malformed, write_errors;
	uint64_t lines, dropped_lines;
};

/*
 * The tailer: a thread that finds every container's log file (Docker
 * json-file, CRI, podman k8s-file, the configured globs, and paths the
 * registry hints at), follows each through rotation (rename and
 * copy-truncate), joins split lines, parses them and hands batches to out.
 * It never runs in the tick. Returns 0 and *out, or -errno.
 */
struct coll_logtail;
int coll_logtail_start(struct coll_logtail **out, const struct coll_log_config *cfg,
		       const struct coll_log_output *o);
/* Stops the thread (finishing its batch) and frees; NULL is fine. */
void coll_logtail_stop(struct coll_logtail *t);
/* Tells the tailer a container's name and log file (NULL when unknown);
 * any thread. */
void coll_logtail_hint(struct coll_logtail *t, const char *id, const char *name,
		       const char *log_path);
/* Tells the tailer the registry no longer has container id: its counters
 * are freed once no file of it is followed. Any thread; NULL t is fine. */
void coll_logtail_forget(struct coll_logtail *t, const char *id);
/* Copies the counters of container id; 0 or -ENOENT. Any thread. */
int coll_logtail_counters(struct coll_logtail *t, const char *id, struct coll_log_counters *out);
void coll_logtail_stats(struct coll_logtail *t, struct coll_logtail_stats *out);

/* The collector that hints names and log paths to the tailer and emits the
 * container_log_* series from its counters (logtail.c). */
extern const struct coll_ops coll_logs_ops;

#endif
