/*
 * agent.c - `monitor agent`: flags, start-up, and the tick loop.
 *
 * The main thread owns collection. It waits on a signalfd, the discovery
 * inotify descriptor and the next tick deadline; each tick it applies
 * metadata from the Docker thread, runs every collector over every
 * container into a sink, adds the agent's own metrics and publishes the
 * resulting snapshot for HTTP readers. SIGTERM and SIGINT end the loop;
 * shutdown stops HTTP first, then Docker, then frees the registry.
 */
#include "agent/agent.h"
#include "agent/privs.h"
#include "agent/rw.h"
#include "alerting/alerting.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

struct snapshot *agent_snapshot(struct agent_state *st)
{
	pthread_mutex_lock(&st->lock);
	struct snapshot *s = snapshot_ref(st->current);
	pthread_mutex_unlock(&st->lock);
	return s;
}

/* remote_write reads the store up to here: the tick before the published
 * one is wholly in the store, and the published one (appended right after
 * it is published, aligned by at most 20 ms) is not read at all. */
static int64_t rw_upto(void *arg)
{
	struct snapshot *s = agent_snapshot(arg);
	int64_t t = s ? s->time_ms - 50 : 0;
	snapshot_unref(s);
	return t;
}

static void publish(struct agent_state *st, struct snapshot *s)
{
	pthread_mutex_lock(&st->lock);
	struct snapshot *old = st->current;
	if (s)
		s->seq = ++st->snap_seq;
	st->current = s;
	pthread_mutex_unlock(&st->lock);
	snapshot_unref(old);
}

/* What the loop carries from tick to tick. */
struct loop {
	struct agent_config *cfg;
	struct agent_state st;
	struct coll_registry *reg;
	struct docker_client *docker;
	struct coll_meta_queue metaq;
	struct coll_event_log events;
	struct store *store;          /* NULL when storage is off */
	struct rw *rw;                /* remote_write senders; NULL when none */
	struct coll_machine machine;     /* host totals; stat_fd < 0 when unreadable */
	struct log_limit machine_ll;
	struct coll_hostfs hostfs;       /* host filesystems (machine_fs_*) */
	uint64_t errors[COLL_MAX_COLLECTORS];
	uint64_t ticks, rescans;
	int64_t tick_cpu_ns, last_tick_ns, last_rescan_ms;
};

static void emit_agent_metrics(struct loop *l, struct coll_sink *sink)
{
	char extra[128];
	sink_begin_agent(sink);
	snprintf(extra, sizeof(extra), "version=\"%s\",revision=\"%s\"", MONITOR_RELEASE,
		 monitor_version);
	sink_emit(sink, M_AGENT_BUILD_INFO, extra, 1);
	sink_emit(sink, M_AGENT_TICK_SECONDS, NULL, (double)l->last_tick_ns / 1e9);
	sink_emit(sink, M_AGENT_TICK_CPU_SECONDS, NULL, (double)l->tick_cpu_ns / 1e9);
	sink_emit(sink, M_AGENT_TICKS, NULL, (double)l->ticks);
	for (int rt = 1; rt < RUNTIME__COUNT; rt++) {
		snprintf(extra, sizeof(extra), "runtime=\"%s\"", coll_runtime_name(rt));
		sink_emit(sink, M_AGENT_CONTAINERS, extra,
			  (double)coll_registry_count(l->reg, (enum coll_runtime)rt));
	}
	for (size_t i = 0; i < coll_count; i++) {
		snprintf(extra, sizeof(extra), "collector=\"%s\"", coll_all[i]->name);
		sink_emit(sink, M_AGENT_COLLECTOR_ERRORS, extra, (double)l->errors[i]);
	}
	sink_emit(sink, M_AGENT_SCRAPES, NULL,
		  (double)__atomic_load_n(&l->st.scrapes, __ATOMIC_RELAXED));
	sink_emit(sink, M_AGENT_DISCOVERY_RESCANS, NULL, (double)l->rescans);
	sink_emit(sink, M_AGENT_HTTP_HEADER_TIMEOUTS, NULL,
		  (double)__atomic_load_n(&l->st.header_timeouts, __ATOMIC_RELAXED));
	sink_emit(sink, M_AGENT_DOCKER_UP, NULL, l->docker ? docker_up(l->docker) : 0);
	if (l->store) {
		/* The head's memory is a walk of every series: every 10 s, not
		 * every tick (at 10,000 series it was 5 % of the agent's CPU). */
		struct store_stats ss;
		store_stats_recent(l->store, &ss, 10000);
		sink_emit(sink, M_STORE_SERIES, NULL, (double)ss.series);
		sink_emit(sink, M_STORE_EVICTED, NULL, (double)ss.evicted);
		sink_emit(sink, M_STORE_SAMPLES, NULL, (double)ss.samples_appended);
		sink_emit(sink, M_STORE_OUT_OF_ORDER, NULL, (double)ss.out_of_order);
		sink_emit(sink, M_STORE_CHUNKS_WRITTEN, NULL, (double)ss.chunks_written);
		sink_emit(sink, M_STORE_WRITE_ERRORS, NULL, (double)ss.write_errors);
		sink_emit(sink, M_STORE_WRITE_OK, NULL, ss.write_ok);
		sink_emit(sink, M_STORE_DROPPED, NULL, (double)ss.chunks_dropped);
		sink_emit(sink, M_STORE_HEAD_BYTES, NULL, (double)ss.head_bytes);
		sink_emit(sink, M_STORE_PENDING_BYTES, NULL, (double)ss.pending_bytes);
		sink_emit(sink, M_STORE_DB_BYTES, NULL, (double)ss.db_bytes);
		sink_emit(sink, M_STORE_FLUSH_SECONDS, NULL, ss.last_flush_seconds);
		sink_emit(sink, M_STORE_RETENTION_DELETED, NULL, (double)ss.retention_deleted);
	}
	rw_emit_metrics(l->rw, sink);
	forecast_emit(l->st.forecast, sink);
	agent_notify_metrics(l->st.notifier, sink);
	agent_rules_metrics(l->st.rules, sink);
	agent_remediation_metrics(&l->st, sink);
	coll_registry_agent_metrics(l->reg, sink);
	agent_logs_metrics(&l->st, sink);
	if (l->machine.stat_fd >= 0) {
		int rc = coll_machine_read(&l->machine);
		if (rc < 0) {
			log_limited(&l->machine_ll, LOG_WARN, "reading /proc/stat and /proc/meminfo: %s",
				    strerror(-rc));
		} else {
			log_recovered(&l->machine_ll, "reading /proc/stat and /proc/meminfo");
			sink_emit(sink, M_MACHINE_CPU_CORES, NULL, l->machine.cpus);
			sink_emit(sink, M_MACHINE_MEMORY_BYTES, NULL, l->machine.memory_bytes);
			sink_emit(sink, M_MACHINE_CPU_SECONDS, NULL, l->machine.cpu_seconds);
			sink_emit(sink, M_MACHINE_CPU_IDLE_SECONDS, NULL, l->machine.idle_seconds);
			if (l->machine.memory_available_bytes >= 0)
				sink_emit(sink, M_MACHINE_MEMORY_AVAILABLE, NULL,
					  l->machine.memory_available_bytes);
			if (l->machine.load[0] >= 0) {
				sink_emit(sink, M_MACHINE_LOAD1, NULL, l->machine.load[0]);
				sink_emit(sink, M_MACHINE_LOAD5, NULL, l->machine.load[1]);
				sink_emit(sink, M_MACHINE_LOAD15, NULL, l->machine.load[2]);
			}
		}
	}
	coll_hostfs_emit(&l->hostfs, sink, sink->snap->time_ms);
	/* Counts itself: the series line is the last one emitted. */
	sink_emit(sink, M_AGENT_SERIES, NULL, (double)sink->snap->nsamples + 1);
}

static void tick(struct loop *l)
{
	int64_t t0 = mono_ns(), c0 = cpu_time_ns(), now = now_ms();
	/* Read before the queue is drained: what Docker posted before its
	 * first answer was seen is applied in this tick. */
	if (l->docker && docker_synced(l->docker))
		coll_registry_hold_unnamed(l->reg, false);
	coll_registry_engine_up(l->reg, docker_up(l->docker));
	coll_registry_apply(l->reg, &l->metaq);
	if (now - l->last_rescan_ms >= l->cfg->rescan_interval_ms) {
		coll_registry_rescan(l->reg);
		l->last_rescan_ms = now;
		l->rescans++;
	}
	struct coll_sink sink;
	if (sink_open(&sink, now) < 0) {
		log_error("tick: out of memory");
		return;
	}
	coll_registry_collect(l->reg, &sink, l->errors);
	l->ticks++;
	emit_agent_metrics(l, &sink);
	struct snapshot *snap = sink_close(&sink);
	publish(&l->st, snap);
	/* Only this thread replaces the published snapshot: snap stays valid. */
	int64_t stored_ms = store_append_snapshot(l->store, snap);
	/* Recorded series and ALERTS from the rules thread: the store has one
	 * appender, this thread. */
	alert_engine_drain_store(l->st.rules, l->store);
	/* The rules run on this tick's samples now, not at a phase of their own. */
	alert_engine_data(l->st.rules, stored_ms, l->cfg->interval_ms);
	/* The forecasts are made as of a time whose samples are all stored. */
	forecast_data(l->st.forecast, stored_ms, l->cfg->interval_ms);
	l->last_tick_ns = mono_ns() - t0;
	l->tick_cpu_ns += cpu_time_ns() - c0;
}

/*
 * Containers found since the last tick, once settled, are collected on
 * their own and published merged into the current snapshot, so a new
 * container reaches /metrics within about 50 ms of its cgroup instead of
 * after the next tick (up to an interval plus a tick's time). The store
 * gets their samples from the next tick, on the tick's timestamps.
 */
static bool fresh_pass(struct loop *l, bool in_tick)
{
	int64_t c0 = cpu_time_ns();
	struct snapshot *cur = agent_snapshot(&l->st);
	struct coll_sink sink;
	if (!cur || sink_open(&sink, cur->time_ms) < 0) {
		snapshot_unref(cur);
		return false; /* the containers stay fresh: the next tick takes them */
	}
	size_t n = coll_registry_collect_fresh(l->reg, &sink, l->errors);
	struct snapshot *add = sink_close(&sink);
	struct snapshot *merged = n ? snapshot_merge(cur, add) : NULL;
	if (merged)
		publish(&l->st, merged);
	snapshot_unref(add);
	snapshot_unref(cur);
	if (!in_tick) /* else the tick counts it */
		l->tick_cpu_ns += cpu_time_ns() - c0;
	return true;
}

/* Called inside a tick every few hundred containers: a container created
 * while a tick of thousands runs reaches /metrics without waiting for the
 * tick's end (which the machine's load can stretch to seconds). */
static void midtick(void *arg)
{
	struct loop *l = arg;
	struct pollfd pfd = { coll_registry_fd(l->reg), POLLIN, 0 };
	if (pfd.fd >= 0 && poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN))
		coll_registry_poll(l->reg);
	int64_t due = coll_registry_fresh_due_ns(l->reg);
	if (due && due <= mono_ns())
		(void)fresh_pass(l, true);
}

/* Runs until SIGTERM/SIGINT. Returns the exit status. */
static int run_loop(struct loop *l, int sfd)
{
	int64_t interval_ns = l->cfg->interval_ms * 1000000;
	int64_t next = mono_ns();
	for (;;) {
		/* Before a due tick too: a tick of thousands of containers takes
		 * a good part of a second, and publishes only at its end. */
		int64_t now = mono_ns(), due = coll_registry_fresh_due_ns(l->reg);
		/* When the pass cannot run (no snapshot or memory yet), go on
		 * to the tick and the signals rather than spin on it. */
		if (due && due <= now && fresh_pass(l, false))
			continue;
		if (due && due <= now)
			due = 0;
		int64_t wait_ns = next - now;
		if (wait_ns <= 0) {
			tick(l);
			next += interval_ns;
			/* After a stall, skip the missed ticks instead of bursting. */
			if (next < mono_ns())
				next = mono_ns() + interval_ns;
			continue;
		}
		if (due && due - now < wait_ns)
			wait_ns = due - now;
		struct pollfd pfd[2] = { { sfd, POLLIN, 0 },
					 { coll_registry_fd(l->reg), POLLIN, 0 } };
		int n = poll(pfd, pfd[1].fd >= 0 ? 2 : 1, (int)(wait_ns / 1000000) + 1);
		if (n < 0 && errno != EINTR) {
			log_error("poll: %s", strerror(errno));
			return 1;
		}
		if (n > 0 && (pfd[0].revents & POLLIN)) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si) &&
			    (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)) {
				log_info("signal %d: shutting down", (int)si.ssi_signo);
				return 0;
			}
			if (si.ssi_signo == SIGHUP) {
				log_info("SIGHUP: reloading the config's rules and the rule files");
				char *err = malloc(64u << 10);
				if (err)
					agent_rules_reload(&l->st, err, 64u << 10);
				free(err);
			}
		}
		if (n > 0 && (pfd[1].revents & POLLIN))
			coll_registry_poll(l->reg);
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: monitor agent [flags]\n"
		"  --config FILE       YAML configuration file\n"
		"  --listen ADDR:PORT  HTTP listen address (default %s)\n"
		"  --allow-remote      allow a --listen address beyond loopback\n"
		"  --data-dir DIR      data directory (default %s)\n"
		"  --host-root DIR     read /proc, /sys and cgroupfs below DIR (default /)\n"
		"  --interval DUR      collection interval (default 1s)\n"
		"  --log-level LEVEL   error, warn, info or debug (default info)\n"
		"  --no-ebpf           load no eBPF probes (as ebpf.enabled: false)\n",
		AGENT_DEFAULT_LISTEN, AGENT_DEFAULT_DATA_DIR);
}

/* Flags override the file, so they are read twice: --config first. */
static int parse_flags(int argc, char **argv, struct agent_config *cfg)
{
	static const struct option opts[] = {
		{ "config", required_argument, 0, 'c' },    { "listen", required_argument, 0, 'l' },
		{ "data-dir", required_argument, 0, 'd' },  { "host-root", required_argument, 0, 'r' },
		{ "interval", required_argument, 0, 'i' },  { "log-level", required_argument, 0, 'v' },
		{ "no-ebpf", no_argument, 0, 'E' },
		{ "allow-remote", no_argument, 0, 'R' },
		{ "help", no_argument, 0, 'h' },            { 0, 0, 0, 0 },
	};
	char err[1024];
	for (int pass = 0; pass < 2; pass++) {
		optind = 1;
		int o;
		while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
			if (o == '?') {
				usage(stderr);
				return -EINVAL;
			}
			if (o == 'h') {
				usage(stdout);
				exit(0);
			}
			if (pass == 0) {
				if (o == 'c' && config_load(cfg, optarg, err, sizeof(err)) < 0) {
					fprintf(stderr, "monitor: config: %s\n", err);
					return -EINVAL;
				}
				continue;
			}
			switch (o) {
			case 'l': snprintf(cfg->listen, sizeof(cfg->listen), "%s", optarg); break;
			case 'd': snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", optarg); break;
			case 'r': snprintf(cfg->host_root, sizeof(cfg->host_root), "%s", optarg); break;
			case 'E': cfg->ebpf.enabled = false; break;
			case 'R': cfg->listen_remote = true; break;
			case 'i':
				if (parse_duration_ms(optarg, &cfg->interval_ms) < 0 ||
				    cfg->interval_ms < 100) {
					fprintf(stderr, "monitor: --interval %s: expected a duration "
						"of at least 100ms, such as 1s\n", optarg);
					return -EINVAL;
				}
				break;
			case 'v':
				if (log_parse_level(optarg, &cfg->log_level) < 0) {
					fprintf(stderr, "monitor: --log-level %s: expected error, "
						"warn, info or debug\n", optarg);
					return -EINVAL;
				}
				break;
			}
		}
	}
	if (optind < argc) {
		fprintf(stderr, "monitor agent: unexpected argument \"%s\"\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/*
 * Collectors keep every cgroup file open (about 20 per container), so the
 * default soft limit of 1024 descriptors would cap the agent near 50
 * containers. Raise the soft limit to the hard one and say what that allows.
 */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	/* With CAP_SYS_RESOURCE the hard limit can go up to fs.nr_open too. */
	struct rlimit want = { 1 << 20, 1 << 20 };
	if (rl.rlim_max < want.rlim_max && setrlimit(RLIMIT_NOFILE, &want) == 0) {
		rl = want;
	} else if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			return;
	}
	if (rl.rlim_cur < 65536)
		log_warn("open-file limit is %llu: enough for about %llu containers "
			 "(raise LimitNOFILE / ulimit -n)", (unsigned long long)rl.rlim_cur,
			 (unsigned long long)rl.rlim_cur / 32);
}

static int make_data_dir(const char *dir)
{
	int rc = mkdir_p(dir);
	if (rc < 0)
		return rc;
	return access(dir, W_OK) < 0 ? -errno : 0;
}

int agent_main(int argc, char **argv)
{
	struct agent_config cfg;
	config_defaults(&cfg);
	if (parse_flags(argc, argv, &cfg) < 0) {
		config_fini(&cfg);
		return 2;
	}
	log_set_level(cfg.log_level);
	char *admin_token = NULL, *read_token = NULL;
	struct access_users *users = NULL;
	if (access_start_check(&cfg, &read_token, &users) < 0) {
		config_fini(&cfg);
		return 2;
	}
	if (cfg.admin_token_file[0]) {
		char err[PATH_MAX + 128];
		admin_token = auth_load_token(cfg.admin_token_file, err, sizeof(err));
		if (!admin_token) {
			fprintf(stderr, "monitor: config: auth.admin_token_file: %s\n", err);
			access_token_free(read_token);
			access_users_free(users);
			config_fini(&cfg);
			return 2;
		}
	}

	int rc = hostroot_set(cfg.host_root);
	struct cg_layout layout;
	if (rc < 0) {
		log_error("--host-root %s: %s", cfg.host_root, strerror(-rc));
		config_fini(&cfg);
		return 1;
	}
	if (cg_layout_detect(&layout) < 0) {
		log_error("--host-root %s: no cgroup hierarchy under %s/sys/fs/cgroup "
			  "(is this the host's root?)", cfg.host_root, strcmp(cfg.host_root, "/") ?
			  cfg.host_root : "");
		config_fini(&cfg);
		return 1;
	}
	raise_fd_limit();
	if ((rc = make_data_dir(cfg.data_dir)) < 0) {
		log_error("--data-dir %s: %s", cfg.data_dir, strerror(-rc));
		config_fini(&cfg);
		return 1;
	}
	/* Least privilege (privs.c), step 1: before the first thread (the
	 * store's writer), so all threads inherit it; step 2 is after start-up. */
	struct privs_plan privs;
	privs_plan_make(&cfg, &privs);
	{
		char perr[256];
		if (privs_drop_startup(&privs, perr, sizeof(perr)) < 0)
			log_warn("privileges: cannot drop capabilities: %s", perr);
	}
	/* Signals go to the signalfd only; every thread started below
	 * (the store's writer first) inherits the mask. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC);

	struct store *store = NULL;
	if (cfg.storage.enabled) {
		char serr[PATH_MAX + 256];
		snprintf(cfg.storage.dir, sizeof(cfg.storage.dir), "%s", cfg.data_dir);
		if ((rc = store_open(&store, &cfg.storage, serr, sizeof(serr))) < 0) {
			log_error("storage: %s", serr);
			if (sfd >= 0)
				close(sfd);
			config_fini(&cfg);
			return 1;
		}
	}

	/* Alert state, silences and the notification queue: not time series,
	 * so a small keyed store beside the metrics (storage.h, kv). Without it
	 * they still work, but do not survive a restart. */
	struct kv *kv = NULL;
	{
		char kpath[PATH_MAX + 16], kerr[PATH_MAX + 256];
		snprintf(kpath, sizeof(kpath), "%s/state.db", cfg.data_dir);
		if ((rc = kv_open(&kv, kpath, kerr, sizeof(kerr))) < 0)
			log_warn("state: %s; alert state and the notification queue are kept in "
				 "memory only", kerr);
	}

	/* Silences: loaded from the state database, shared by the rules, the
	 * notifier and the /api/v2/silences endpoints. */
	struct alert_silences *silences = NULL;
	{
		char serr[PATH_MAX + 256];
		if ((rc = alert_silences_open(&silences, kv, 0, now_ms(), serr, sizeof(serr))) < 0)
			log_warn("silences: %s; the silence API is off", serr);
	}

	struct loop l = { .cfg = &cfg, .store = store };
	l.st.store = store;
	l.st.kv = kv;
	l.st.silences = silences;
	/* Notifications (route:, receivers:): a dispatcher thread and one
	 * delivery thread per integration; the rules engine hands them alerts
	 * through notify_sink, which only queues. */
	if (cfg.notify) {
		/* Links in messages: rules.external_url, as the generator URLs. */
		char ext[1100];
		if (cfg.rules.external_url[0])
			snprintf(ext, sizeof(ext), "%s", cfg.rules.external_url);
		else
			snprintf(ext, sizeof(ext), "http://%s", cfg.listen);
		struct notify_opts no = { .kv = kv, .silenced = silences ? alert_silenced : NULL,
					  .silenced_arg = silences, .external_url = ext };
		if ((rc = notify_new(&l.st.notifier, cfg.notify, &no)) < 0)
			log_warn("notify: cannot start: %s; no notifications are sent",
				 strerror(-rc));
	}
	cfg.query.forecaster = &forecast_promql; /* forecast() in queries and rules */
	l.st.query = &cfg.query;
	l.st.raw_retention_ms = cfg.storage.retention_ms[STORE_TIER_RAW];
	pthread_mutex_init(&l.st.lock, NULL);
	pthread_mutex_init(&l.st.gz_lock, NULL);
	coll_meta_queue_init(&l.metaq);
	coll_event_log_init(&l.events, AGENT_EVENTS_KEPT);
	l.st.events = &l.events;
	l.st.layout = &layout;
	if ((rc = coll_machine_open(&l.machine)) < 0)
		log_warn("host CPU and memory totals (/proc/stat, /proc/meminfo under %s): %s; "
			 "machine_* series are not exported", cfg.host_root, strerror(-rc));
	/* Container logs: the tailer's thread reads, the store keeps
	 * (<data_dir>/logs.db); neither ever runs in the tick. */
	struct coll_logtail *logtail = NULL;
	if (cfg.logs.enabled)
		agent_logs_start(&cfg, &l.st, &logtail);
	struct coll_ctx ctx = {
		.layout = &layout, .percpu = cfg.percpu, .cgroup_iter = cfg.cgroup_iterator,
		.events = &l.events,
		.logs = logtail,
		.label_allow = (const char *const *)cfg.label_allow,
		.nlabel_allow = cfg.nlabel_allow,
		.cgroup_match = (const char *const *)cfg.cgroup_match,
		.ncgroup_match = cfg.ncgroup_match,
		.ebpf = &cfg.ebpf,
		.keep_exited_ms = cfg.keep_exited_ms, .fs_interval_ms = cfg.fs_interval_ms,
		.fs_walk_budget = cfg.fs_walk_budget,
		.network = cfg.network, .process_interval_ms = cfg.process_interval_ms,
	};
	int status = 1;
	struct http_server *http = NULL;
	l.reg = coll_registry_new(&ctx);
	if (!l.reg || sfd < 0)
		goto out;
	coll_registry_set_midtick(l.reg, midtick, &l);
	/* Docker first: the action handlers use the client from the start. */
	if (cfg.docker_enabled)
		l.docker = docker_start(cfg.docker_socket, cfg.docker_timeout_ms, &l.metaq,
					&l.events);
	/* Until Docker first answers, its containers wait for their names
	 * (one series each, not one under the id and one under the name). */
	coll_registry_hold_unnamed(l.reg, l.docker != NULL);
	l.st.docker = l.docker;
	l.st.action_timeout_ms = cfg.docker_action_timeout_ms;
	l.st.admin_token = admin_token;
	l.st.admin_token_len = admin_token ? strlen(admin_token) : 0;
	l.st.read_token = read_token;
	l.st.read_token_len = read_token ? strlen(read_token) : 0;
	l.st.users = users;
	l.st.tls = &cfg.tls;
	l.st.http = &cfg.http;
	http = http_start(cfg.listen, &l.st);
	if (!http)
		goto out;
	log_info("monitor %s (%s): cgroup %s, host root %s, data in %s", MONITOR_RELEASE,
		 monitor_version,
		 cg_mode_name(layout.mode), hostroot_get(), cfg.data_dir);
	log_info("listening on http://%s/ (metrics at /metrics)", cfg.listen);
	l.last_rescan_ms = now_ms();
	coll_registry_rescan(l.reg);
	if (cfg.rw && cfg.rw->nep && !store)
		log_warn("remote_write: storage is off (storage.enabled: false), and the store is "
			 "remote_write's queue: nothing will be sent");
	else if (cfg.rw && cfg.rw->nep)
		l.rw = rw_start(&(struct rw_start_args){
			.cfg = cfg.rw, .store = store, .kv = kv, .interval_ms = cfg.interval_ms,
			.upto = rw_upto, .upto_arg = &l.st });
	/* Forecasts fit on their own thread from the store, never in the tick. */
	if ((rc = forecast_start(&l.st.forecast, store, &cfg.forecast)) < 0)
		log_warn("forecast: cannot start: %s; no capacity forecasts", strerror(-rc));
	/* Remediation: one more sink of the engine (added once the engine runs);
	 * what it did goes on to the notifier as an annotation. */
	agent_remediation_start(&l.st.remediator, &l.st, &cfg.remediation);
	/* Rules evaluate on their own thread; outputs reach the store by the tick. */
	agent_default_rules(&cfg);
	if ((rc = agent_rules_start(&cfg, &l.st)) < 0)
		log_error("rules: cannot start: %s; no rules are evaluated", strerror(-rc));
	agent_remediation_follow(&l.st);
	/* Least privilege, step 2: eBPF is loaded, the socket bound, the
	 * threads started; each thread drops to the run-time set (privs.c). */
	{
		char perr[512];
		if (privs_drop_runtime(&privs, perr, sizeof(perr)) < 0)
			log_warn("privileges: %s", perr);
	}
	status = run_loop(&l, sfd);
out:
	rw_stop(l.rw); /* before the store it reads */
	docker_interrupt(l.docker); /* actions in flight give up: HTTP stops promptly */
	logstore_interrupt(l.st.logs); /* log streams end: HTTP stops promptly */
	http_stop(http);
	agent_rules_stop(&l.st); /* after HTTP; before the stores, notifier and kv it uses */
	alert_remediator_free(l.st.remediator); /* after the rules feeding it, before Docker */
	forecast_stop(l.st.forecast); /* after HTTP, before the store it reads */
	store_close(l.store); /* after HTTP: handlers may query it */
	notify_free(l.st.notifier); /* after HTTP; before the silences and kv it uses */
	alert_silences_close(silences);
	kv_close(kv);
	docker_stop(l.docker);
	coll_registry_free(l.reg);
	/* After HTTP (handlers query the store) and after the registry, whose
	 * teardown tells the tailer of every container it forgets. */
	agent_logs_stop(logtail, &l.st);
	publish(&l.st, NULL);
	http_metrics_cache_free(&l.st);
	coll_meta_queue_fini(&l.metaq);
	coll_event_log_fini(&l.events);
	coll_machine_close(&l.machine);
	if (sfd >= 0)
		close(sfd);
	if (admin_token) {
		explicit_bzero(admin_token, strlen(admin_token));
		free(admin_token);
	}
	access_token_free(read_token);
	access_users_free(users);
	config_logs_fini(&cfg.logs);
	config_fini(&cfg);
	return status;
}
