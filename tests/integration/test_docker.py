"""Docker containers as the agent sees them, checked against the kernel's
cgroup files, `docker inspect` and `docker stats`.

One agent (interval 1s) watches containers that the class starts after it:
  meta  the issue's reference container: --memory 64m --cpus 0.5, labels
  mem   holds 24 MiB in /dev/shm, so memory values are large and known
  busy  a CPU-capped busy loop (--cpus 0.5)
Other tests start their own containers (a writer, one that is removed, one
started before a second agent).
"""

import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import unittest
import urllib.parse

import harness as h

MIB = 1024 * 1024
HEX64 = re.compile(r"[0-9a-f]{64}")

CONFIG = """\
collect:
  container_labels: [com.example.team]
"""


class SlowDockerSocket:
    """A unix socket in front of the Docker Engine's that holds every
    connection made in its first `delay` seconds until then, then relays it:
    an agent's first answer from Docker comes late, as from a busy engine,
    and its first ticks come before it."""

    def __init__(self, path, delay, engine="/var/run/docker.sock"):
        self.path, self.engine = path, engine
        self.until = time.monotonic() + delay
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(c,), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _relay(self, c):
        time.sleep(max(0.0, self.until - time.monotonic()))
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            u.connect(self.engine)
        except OSError:
            c.close()
            return
        threading.Thread(target=self._pipe, args=(u, c), daemon=True).start()
        self._pipe(c, u)

    def close(self):
        self.sock.close()


class LaggingDockerSocket(SlowDockerSocket):
    """A unix socket in front of the Docker Engine's that relays at once
    until `lag` is set, then holds each request the agent sends that long
    before passing it on: the event stream (asked for at the start) flows,
    but the inspect of a new container answers late, as from a busy engine,
    after runc has made the container's cgroup."""

    def __init__(self, path, engine="/var/run/docker.sock"):
        super().__init__(path, 0, engine)
        self.lag = 0.0

    def _lagged(self, a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                if self.lag:
                    time.sleep(self.lag)
                b.sendall(data)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _relay(self, c):
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            u.connect(self.engine)
        except OSError:
            c.close()
            return
        threading.Thread(target=self._pipe, args=(u, c), daemon=True).start()
        self._lagged(c, u)


def names_seen(agent, fams, path, into):
    """Adds the name label of each series of fams with id path in agent's
    /metrics to into[fam]."""
    try:
        r = h.http_get(agent.url + "/metrics", timeout=2)
    except OSError:
        return
    if r.status != 200:
        return
    e = h.Exposition(r.text)
    for f in fams:
        for labels, _ in e.get(f):
            if labels.get("id") == path:
                into[f].add(labels.get("name"))


class DockerTest(unittest.TestCase):
    agent = None
    containers = []

    @classmethod
    def setUpClass(cls):
        h.require_docker()
        cls.containers = []
        cls.agent = h.Agent(config=CONFIG).start()
        try:
            run = lambda name, cmd, opts=(): h.docker_run(cls.containers, name, cmd, opts)
            cls.meta = run("meta", ["sleep", "600"],
                           ["--memory", "64m", "--cpus", "0.5",
                            "--label", "com.example.team=infra",
                            "--label", "com.docker.compose.project=shop"])
            cls.mem = run("mem", ["sh", "-c", "head -c 25165824 /dev/zero > /dev/shm/fill && exec sleep 600"],
                          ["--memory", "128m"])
            cls.busy = run("busy", ["sh", "-c", "while :; do :; done"], ["--cpus", "0.5"])
            cls.first_seen = cls._wait_seen([cls.meta, cls.mem, cls.busy], timeout=10)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for c in cls.containers:
            h.docker_rm(c)
        cls.containers = []
        if cls.agent:
            agent, cls.agent = cls.agent, None
            agent.stop()

    @classmethod
    def _wait_seen(cls, containers, timeout, agent=None):
        """Polls both endpoints; returns {name: (seconds until in /metrics,
        seconds until in /api/v1/containers)} (None when never seen)."""
        agent = agent or cls.agent
        seen = {c.name: [None, None] for c in containers}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = time.monotonic()
            names_m = {l.get("name") for l, _ in agent.metrics().get("container_memory_usage_bytes")}
            names_a = {c.get("name") for c in agent.containers()}
            for c in containers:
                if seen[c.name][0] is None and c.name in names_m:
                    seen[c.name][0] = now - c.started
                if seen[c.name][1] is None and c.name in names_a:
                    seen[c.name][1] = now - c.started
            if all(v[0] is not None and v[1] is not None for v in seen.values()):
                break
            time.sleep(0.1)
        return seen

    def entry(self, c):
        e = self.agent.container(c.name)
        self.assertIsNotNone(e, "%s not in /api/v1/containers" % c.name)
        return e

    # ---- discovery and metadata ----

    def test_appears_within_5s(self):
        for name, (in_metrics, in_api) in self.first_seen.items():
            self.assertIsNotNone(in_metrics, "%s never appeared in /metrics (10 s)" % name)
            self.assertIsNotNone(in_api, "%s never appeared in /api/v1/containers (10 s)" % name)
            self.assertLessEqual(in_metrics, 5.0, "%s took %.1f s to reach /metrics" % (name, in_metrics))
            self.assertLessEqual(in_api, 5.0, "%s took %.1f s to reach the API" % (name, in_api))

    def test_labels_in_metrics(self):
        cg = self.meta.cgroup()
        self.assertTrue(cg.path.endswith(self.meta.id), cg.path)
        e = self.agent.metrics()
        found = e.get("container_memory_usage_bytes", name=self.meta.name)
        self.assertEqual(len(found), 1, found)
        labels = found[0][0]
        self.assertEqual(labels.get("id"), cg.path)           # "/docker/<64 hex>" with cgroupfs
        self.assertEqual(labels.get("image"), h.IMAGE)
        self.assertEqual(labels.get("container_label_com_example_team"), "infra")
        # Every series of the container carries the same base labels.
        for fam, samples in e.samples.items():
            for l, _ in samples:
                if l.get("id") == cg.path:
                    self.assertEqual(l.get("name"), self.meta.name, fam)
                    self.assertEqual(l.get("image"), h.IMAGE, fam)

    def test_api_entry(self):
        e = self.entry(self.meta)
        ins = self.meta.inspect()
        self.assertEqual(e["id"], self.meta.id)
        self.assertTrue(HEX64.fullmatch(e["id"]), e["id"])
        self.assertEqual(e["runtime"], "docker")
        self.assertEqual(e["image"], h.IMAGE)
        self.assertEqual(e["cgroup"], self.meta.cgroup().path)
        self.assertEqual(e["state"], "running")
        self.assertEqual(e["labels"].get("com.example.team"), "infra")
        self.assertEqual(e["labels"].get("com.docker.compose.project"), "shop")
        self.assertEqual(e["compose_project"], "shop")
        started = ins["State"]["StartedAt"]                    # 2026-11-29T15:38:23.570349882Z
        m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", started)
        want = time.mktime(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) - time.timezone
        want += float(m.group(2) or 0)
        self.assertAlmostEqual(e["start_time"], want, delta=1.0)
        self.assertEqual(e["values"].get("container_spec_memory_limit_bytes"), 64 * MIB)

    def test_monitor_containers_counts_docker(self):
        e = self.agent.metrics()
        n = e.value("monitor_containers", runtime="docker")
        self.assertGreaterEqual(n, 3)
        self.assertEqual(e.value("monitor_docker_up"), 1)

    # ---- limits ----

    def test_spec_limits(self):
        e = self.agent.metrics()
        self.assertEqual(e.value("container_spec_memory_limit_bytes", name=self.meta.name), 67108864)
        self.assertEqual(e.value("container_spec_cpu_quota", name=self.meta.name), 50000)
        self.assertEqual(e.value("container_spec_cpu_period", name=self.meta.name), 100000)
        q, p = self.meta.cgroup().cpu_quota_period()
        self.assertEqual((q, p), (50000, 100000))             # the kernel agrees with docker

    # ---- memory: tolerance 2% or 256 KiB, whichever is larger ----

    def _close(self, got, lo, hi, what):
        tol = max(0.02 * hi, 256 * 1024)
        self.assertTrue(lo - tol <= got <= hi + tol,
                        "%s = %d, kernel said %d..%d (tolerance %d)" % (what, got, lo, hi, tol))

    def _check_memory(self, c):
        cg = c.cgroup()
        u0, i0 = cg.memory_usage(), cg.inactive_file()
        e = self.agent.wait_tick(probe=lambda: (cg.memory_usage(), cg.inactive_file()))
        u1, i1 = e.probe
        usage = e.value("container_memory_usage_bytes", name=c.name)
        ws = e.value("container_memory_working_set_bytes", name=c.name)
        self._close(usage, min(u0, u1), max(u0, u1), "%s usage" % c.name)
        w0, w1 = max(u0 - i0, 0), max(u1 - i1, 0)
        self._close(ws, min(w0, w1), max(w0, w1), "%s working set" % c.name)
        self.assertLessEqual(ws, usage)
        return ws

    def test_memory_matches_cgroup(self):
        self._check_memory(self.meta)
        ws = self._check_memory(self.mem)
        self.assertGreaterEqual(ws, 24 * MIB, "the mem container holds 24 MiB in /dev/shm")

    def test_memory_matches_docker_stats(self):
        # docker stats' MEM USAGE is the working set (usage - inactive_file).
        out = h.docker("stats", "--no-stream", "--format", "{{json .}}", self.mem.id)
        stats = json.loads(out.strip().splitlines()[0])
        docker_ws = h.parse_size(stats["MemUsage"].split("/")[0])
        e = self.agent.wait_tick()
        ws = e.value("container_memory_working_set_bytes", name=self.mem.name)
        # docker prints 4 significant digits, and reads at its own moment.
        tol = max(0.03 * docker_ws, 512 * 1024)
        self.assertLessEqual(abs(ws - docker_ws), tol,
                             "working set %d vs docker stats %s (%d)" % (ws, stats["MemUsage"], docker_ws))
        self.assertEqual(int(stats["PIDs"]), e.value("container_pids", name=self.mem.name))

    def test_pids(self):
        e = self.agent.wait_tick()
        for c in (self.meta, self.mem, self.busy):
            self.assertEqual(e.value("container_pids", name=c.name), c.cgroup().pids_current(), c.name)

    # ---- CPU ----

    def test_cpu_usage_matches_cpuacct(self):
        cg = self.busy.cgroup()
        # Kernel before and after one GET: the page's value was read by the
        # agent at most one interval plus one tick's length before the GET,
        # so at 0.5 CPU it trails by at most half of that (+10 ms slack).
        before = cg.cpu_usage_seconds()
        r = self.agent.get("/metrics")
        after = cg.cpu_usage_seconds()
        e = h.Exposition(r.text)
        got = e.value("container_cpu_usage_seconds_total", name=self.busy.name, cpu="total")
        tick = e.value("monitor_tick_duration_seconds")
        msg = "agent %.3f s, cpuacct %.3f..%.3f s, tick took %.3f s" % (got, before, after, tick)
        self.assertLessEqual(got, after + 0.01, msg)
        self.assertGreaterEqual(got, before - 0.5 * (1.0 + tick) - 0.01, msg)

    def test_cpu_rate_is_capped_at_half_a_cpu(self):
        cg = self.busy.cgroup()
        name = self.busy.name
        now = lambda: (time.monotonic(), cg.cpu_usage_seconds())
        e0 = self.agent.wait_tick(probe=now)
        (t0, k0), v0 = e0.probe, e0.value("container_cpu_usage_seconds_total", name=name, cpu="total")
        time.sleep(5.5)
        e1 = self.agent.wait_tick(probe=now)
        (t1, k1), v1 = e1.probe, e1.value("container_cpu_usage_seconds_total", name=name, cpu="total")
        rate, kernel_rate = (v1 - v0) / (t1 - t0), (k1 - k0) / (t1 - t0)
        # The agent follows the kernel whatever the host's load ...
        self.assertAlmostEqual(rate, kernel_rate, delta=0.1 * kernel_rate + 0.02,
                               msg="agent %.3f s/s, cpuacct %.3f s/s" % (rate, kernel_rate))
        # ... and the kernel gives a busy loop capped at 0.5 CPU 0.5 s/s
        # unless other work starves it.
        if not 0.425 <= kernel_rate <= 0.575:
            self.skipTest("host too busy: the cgroup itself got %.3f CPU-s/s (agent %.3f)" % (kernel_rate, rate))
        self.assertTrue(0.425 <= rate <= 0.575, "rate %.3f s/s, want 0.5 +-15%%" % rate)

    # ---- block I/O ----

    def test_fs_writes(self):
        c = h.docker_run(self, "writer", ["sh", "-c", "dd if=/dev/zero of=/f bs=1M count=10 oflag=direct 2>/dev/null"
                                          " || dd if=/dev/zero of=/f bs=1M count=10 conv=fsync; exec sleep 600"])
        cg = h.wait_for("the writer's cgroup", lambda: c.cgroup(), 5)
        if not self._blkio_counts(cg):
            self.skipTest("the kernel counted %d bytes written for a 10 MiB direct write: this storage "
                          "driver/kernel does not attribute block I/O to the cgroup" % cg.write_bytes())

        def written():
            e = self.agent.metrics()
            s = e.sum("container_fs_writes_bytes_total", name=c.name)
            return e if s is not None and s >= 10 * MIB else None
        e = h.wait_for("container_fs_writes_bytes_total >= 10 MiB", written, 8)
        for labels, _ in e.get("container_fs_writes_bytes_total", name=c.name):
            self.assertTrue(labels.get("device", "").startswith("/dev/"), labels)
        self.assertLessEqual(e.sum("container_fs_writes_bytes_total", name=c.name), cg.write_bytes())

    @staticmethod
    def _blkio_counts(cg):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if cg.write_bytes() >= 10 * MIB:
                return True
            time.sleep(0.2)
        return False

    # ---- lifecycle ----

    def test_removed_container_goes_stale(self):
        c = h.docker_run(self, "gone", ["sleep", "600"])
        seen = self._wait_seen([c], timeout=10)[c.name]
        self.assertTrue(seen[0] is not None and seen[1] is not None, "never appeared: %s" % seen)
        h.docker("rm", "-f", c.id)
        t0 = time.monotonic()

        def where():
            in_m = any(l.get("name") == c.name or c.id in l.get("id", "")
                       for l, _ in self.agent.metrics().get("container_memory_usage_bytes"))
            in_a = [e.get("state") for e in self.agent.containers() if e.get("id") == c.id]
            return in_m, in_a
        while time.monotonic() - t0 < 20:
            in_m, in_a = where()
            if not in_m and not in_a:
                break
            time.sleep(0.1)
        took = time.monotonic() - t0
        self.assertLessEqual(took, 5.0, "%s still listed %.1f s after docker rm -f (in /metrics: %s, "
                             "API states: %s)" % (c.name, took, in_m, in_a))
        r = self.agent.get("/api/v1/containers/" + c.id)
        self.assertEqual(r.status, 404)

    def test_container_started_before_agent(self):
        c = h.docker_run(self, "early", ["sleep", "600"], ["--memory", "32m"])
        time.sleep(0.5)
        agent = h.Agent().start()
        try:
            # The start-up walk finds the cgroup before the first tick; it is
            # exported once Docker has named it (test_started_before_agent_
            # one_series), within moments of readiness.
            t0 = time.monotonic()
            c.started = t0        # measure from the agent's readiness
            seen = self._wait_seen([c], timeout=5, agent=agent)[c.name]
            self.assertIsNotNone(seen[0], "%s (started before the agent) not in /metrics" % c.name)
            self.assertIsNotNone(seen[1], "%s (started before the agent) not in the API" % c.name)
            e = agent.metrics()
            self.assertEqual(e.value("container_spec_memory_limit_bytes", name=c.name), 32 * MIB)
            entry = agent.container(c.name)
            self.assertEqual(entry["id"], c.id)
            self.assertEqual(entry["runtime"], "docker")
        finally:
            agent.stop()

    def test_started_before_agent_one_series(self):
        """Containers already running when the agent starts, and Docker
        answering the agent only after 1.5 s (a relaying socket): from its
        first tick on, every series of each carries its name (never its id,
        which the agent had before Docker answered: that made a second
        series), and the store holds one series per container per metric."""
        cs = [h.docker_run(self, "pre%d" % i, ["sleep", "600"]) for i in range(3)]
        cg = {c.name: c.cgroup().path for c in cs}
        fams = ("container_memory_usage_bytes", "container_cpu_usage_seconds_total",
                "container_last_seen")
        d = tempfile.mkdtemp(prefix="slowdk-", dir="/tmp")
        self.addCleanup(shutil.rmtree, d, True)
        slow = SlowDockerSocket(os.path.join(d, "docker.sock"), 1.5)
        self.addCleanup(slow.close)
        agent = h.Agent(config="storage:\n  flush_interval: 200ms\ndocker:\n  socket: %s\n"
                        "  timeout: 10s\n" % slow.path, interval="250ms")
        agent.start(wait_ready=False)
        try:
            t_start = time.time()
            names = {(n, f): set() for n in cg for f in fams}
            # Past Docker's late answer, until every container is seen (a
            # loaded host makes the first ticks slow).
            t0 = time.monotonic()
            while time.monotonic() - t0 < 3 or (
                    time.monotonic() - t0 < 20 and not all(names.values())):
                try:
                    r = h.http_get(agent.url + "/metrics", timeout=2)
                except OSError:
                    r = None
                if r is not None and r.status == 200:
                    e = h.Exposition(r.text)
                    for f in fams:
                        for labels, _ in e.get(f):
                            for n, path in cg.items():
                                if labels.get("id") == path:
                                    names[(n, f)].add(labels.get("name"))
                time.sleep(0.05)
            for (n, f), got in names.items():
                self.assertEqual(got, {n}, "%s of %s carried the names %s" % (f, n, got))
            agent.wait_tick()
            time.sleep(0.5)          # past the flush interval
            for n, path in cg.items():
                for f in fams:
                    q = urllib.parse.urlencode({"match[]": '%s{id="%s"}' % (f, path),
                                                "start": "%.3f" % (t_start - 1),
                                                "end": "%.3f" % time.time()})
                    r = agent.get("/api/v1/series?" + q)
                    self.assertEqual(r.status, 200, r.text)
                    got = r.json()["data"]
                    self.assertEqual(len(got), 1, "%s of %s: %s" % (f, n, json.dumps(got)))
                    self.assertEqual({x.get("name") for x in got}, {n}, (f, n, got))
        finally:
            agent.stop()

    def test_created_while_running_one_series(self):
        """A container made while the agent runs, with Docker answering its
        inspect 1 s late (the name comes after runc made the cgroup): the
        agent holds it until the name is in, so /metrics and the store have
        its series under its name only, never a first one under its id."""
        d = tempfile.mkdtemp(prefix="lagdk-", dir="/tmp")
        self.addCleanup(shutil.rmtree, d, True)
        lag = LaggingDockerSocket(os.path.join(d, "docker.sock"))
        self.addCleanup(lag.close)
        pre = h.docker_run(self, "lagpre", ["sleep", "600"])
        agent = h.Agent(config="storage:\n  flush_interval: 200ms\ndocker:\n  socket: %s\n"
                        "  timeout: 10s\n" % lag.path, interval="250ms")
        agent.start()
        self.addCleanup(agent.stop)
        fams = ("container_memory_usage_bytes", "container_cpu_usage_seconds_total",
                "container_last_seen")
        # Docker has answered (the start's hold is over) once pre is named.
        pre_path = pre.cgroup().path
        seen = {f: set() for f in fams}
        h.wait_for("the running container named", lambda: (
            names_seen(agent, fams[:1], pre_path, seen) or pre.name in seen[fams[0]]), 20)
        t_start = time.time()
        lag.lag = 1.0
        c = h.docker_run(self, "lagnew", ["sleep", "600"])
        path = c.cgroup().path
        seen = {f: set() for f in fams}
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5 or (
                time.monotonic() - t0 < 20 and not all(seen.values())):
            names_seen(agent, fams, path, seen)
            time.sleep(0.05)
        lag.lag = 0.0
        for f, got in seen.items():
            self.assertEqual(got, {c.name}, "%s carried the names %s" % (f, got))
        agent.wait_tick()
        time.sleep(0.5)              # past the flush interval
        for f in fams:
            q = urllib.parse.urlencode({"match[]": '%s{id="%s"}' % (f, path),
                                        "start": "%.3f" % (t_start - 1),
                                        "end": "%.3f" % time.time()})
            r = agent.get("/api/v1/series?" + q)
            self.assertEqual(r.status, 200, r.text)
            got = r.json()["data"]
            self.assertEqual({x.get("name") for x in got}, {c.name}, (f, got))
            self.assertEqual(len(got), 1, "%s: %s" % (f, json.dumps(got)))


if __name__ == "__main__":
    unittest.main()
