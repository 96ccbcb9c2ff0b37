"""Load: /metrics and the query API under concurrent clients while the agent
collects many containers (issue 13, item 6).

The containers are raw cgroups, as tests/bench/netproc_bench makes them:
docker/<64-hex id> in every hierarchy (cgroup v1 and v2), one process each
(a sleep in its own network namespace), so the agent discovers, reads and
exports them like Docker's, without the engine's cost of starting 200.
Then LOAD_CLIENTS threads, each on its own keep-alive connection, ask in
turn for /metrics, an instant query and a range query for LOAD_SECONDS.
Every answer must be a 200 (and "status": "success" for the API); the agent
must keep ticking; p50/p99 per endpoint are printed.

LOAD_CONTAINERS, LOAD_CLIENTS and LOAD_SECONDS change the size (make soak
runs it longer); the defaults keep the test near 40 s.
"""

import hashlib
import http.client
import json
import os
import signal
import subprocess
import threading
import time
import unittest
import urllib.parse

import harness

# The load it makes (200 cgroups, 8 busy clients) would stretch other files'
# deadlines: tests/run runs this file alone.
SERIAL = True

N = int(os.environ.get("LOAD_CONTAINERS", "200"))
CLIENTS = int(os.environ.get("LOAD_CLIENTS", "8"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "15"))
CG = "/sys/fs/cgroup"
V1 = ("cpu", "cpuacct", "memory", "blkio", "pids", "cpuset", "devices", "freezer")


def read(path):
    with open(path) as f:
        return f.read()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def roots():
    """The hierarchy roots a container's cgroup lives in: the v2 root on a
    pure v2 host, else each distinct v1 hierarchy plus the hybrid's v2."""
    if os.path.exists(os.path.join(CG, "cgroup.controllers")):
        return [CG]
    out, seen = [], set()
    for c in V1:
        p = os.path.realpath(os.path.join(CG, c))
        if os.path.isdir(p) and p not in seen:
            seen.add(p)
            out.append(p)
    if os.path.exists(os.path.join(CG, "unified", "cgroup.controllers")):
        out.append(os.path.join(CG, "unified"))
    return out


def load_id(i):
    # "10ad" + a run tag: no collision with real containers or another run.
    return "10ad" + hashlib.sha256(("%s-%d" % (harness.RUN_TAG, i)).encode()).hexdigest()[4:]


class Fleet:
    """N raw container cgroups with one process each; cleanup() removes them."""

    def __init__(self):
        self.roots = roots()
        self.dirs = []
        self.procs = []

    def make(self, n, start=0):
        """Containers start..n-1 (their ids from load_id)."""
        for root in self.roots:
            parent = os.path.join(root, "docker")
            if not os.path.isdir(parent):
                os.mkdir(parent)
                self.dirs.append(parent)
        for i in range(start, n):
            p = subprocess.Popen(["unshare", "-n", "sleep", "600"], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True, preexec_fn=harness.die_with_parent)
            self.procs.append(p)
            for root in self.roots:
                d = os.path.join(root, "docker", load_id(i))
                os.makedirs(d, exist_ok=True)
                self.dirs.append(d)
                cpus = os.path.join(d, "cpuset.cpus")
                if os.path.exists(cpus) and not read(cpus).strip():
                    for f in ("cpuset.cpus", "cpuset.mems"):
                        write(os.path.join(d, f), read(os.path.join(root, "docker", f)).strip())
                write(os.path.join(d, "cgroup.procs"), str(p.pid))

    def cleanup(self):
        for p in self.procs:
            try:
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=5)
            except Exception:
                pass
        for d in reversed(self.dirs):
            remove_cgroup(d)


def remove_cgroup(d):
    """rmdir of a cgroup whose processes were just killed: retried while
    the kernel still counts them (EBUSY), for up to 5 s."""
    for _ in range(100):
        try:
            os.rmdir(d)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)


def pct(values, q):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


class Client(threading.Thread):
    """One keep-alive connection asking for the endpoints in turn."""

    def __init__(self, port, paths, until):
        super().__init__(daemon=True)
        self.port, self.paths, self.until = port, paths, until
        self.lat = {name: [] for name, _ in paths}
        self.errors = []
        self.metrics_bytes = 0

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        i = 0
        while time.time() < self.until and len(self.errors) < 20:
            name, path = self.paths[i % len(self.paths)]
            i += 1
            t0 = time.perf_counter()
            try:
                conn.request("GET", path)
                r = conn.getresponse()
                body = r.read()
                dt = time.perf_counter() - t0
                if r.status != 200:
                    self.errors.append("%s: HTTP %d %r" % (path, r.status, body[:200]))
                    continue
                if name != "metrics" and json.loads(body).get("status") != "success":
                    self.errors.append("%s: %r" % (path, body[:200]))
                    continue
                if name == "metrics":
                    self.metrics_bytes = len(body)
                if name == "metrics" and b"monitor_ticks_total" not in body:
                    self.errors.append("/metrics without monitor_ticks_total")
                    continue
                self.lat[name].append(dt)
            except Exception as e:  # a reset or timeout is an error of the test's kind
                self.errors.append("%s: %s: %s" % (path, type(e).__name__, e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.close()


class TestLoad(unittest.TestCase):
    def test_concurrent_clients_with_many_containers(self):
        harness.require_root()
        harness.require_binary("unshare")
        fleet = Fleet()
        self.addCleanup(fleet.cleanup)
        fleet.make(N)
        agent = harness.Agent().start()
        self.addCleanup(agent.kill)

        ids = {load_id(i)[:12] for i in range(N)}

        def all_seen():
            got = {c.get("id", "")[:12] for c in agent.containers()}
            return len(ids & got) == N
        harness.wait_for("all %d load containers listed" % N, all_seen, 30, interval=0.5)
        # The range query needs history: a few ticks of it.
        agent.wait_tick(timeout=10)
        agent.wait_tick(timeout=10)

        q = urllib.parse.quote
        sel = 'container_memory_usage_bytes{id=~".*/10ad.*"}'
        now = time.time()
        paths = [
            ("metrics", "/metrics"),
            ("query", "/api/v1/query?query=" + q("sum(%s)" % sel)),
            ("query_range", "/api/v1/query_range?query=" + q("rate(container_cpu_usage_seconds_total{id=~\".*/10ad.*\"}[30s])")
             + "&start=%d&end=%d&step=1" % (now - 60, now + SECONDS + 60)),
        ]
        # The instant query must see every load container (checked once, before the load).
        r = agent.get("/api/v1/query?query=" + q("count(%s)" % sel), timeout=30)
        self.assertEqual(r.status, 200, r.body[:300])
        res = r.json()["data"]["result"]
        self.assertTrue(res, "count() of the load containers is empty")
        self.assertEqual(int(float(res[0]["value"][1])), N)

        ticks0 = agent.ticks()
        until = time.time() + SECONDS
        clients = [Client(agent.port, paths[i % 3:] + paths[:i % 3], until) for i in range(CLIENTS)]
        t0 = time.time()
        for c in clients:
            c.start()
        for c in clients:
            c.join(SECONDS + 60)
        wall = time.time() - t0
        ticks1 = agent.ticks()

        errors = [e for c in clients for e in c.errors]
        lines = ["load: %d containers, %d clients, %.1f s, agent interval 1 s, /metrics %d KiB"
                 % (N, CLIENTS, wall, max(c.metrics_bytes for c in clients) // 1024)]
        for name, _ in paths:
            lat = [x for c in clients for x in c.lat[name]]
            lines.append("load: %-11s %5d requests  p50 %7.1f ms  p99 %7.1f ms  max %7.1f ms"
                         % (name, len(lat), pct(lat, 0.5) * 1e3, pct(lat, 0.99) * 1e3,
                            max(lat or [0]) * 1e3))
            self.assertGreater(len(lat), 0, "no %s request completed" % name)
        lines.append("load: errors %d; ticks during the load %d" % (len(errors), ticks1 - ticks0))
        print("\n" + "\n".join(lines), flush=True)
        self.assertEqual(errors, [], "errors under load (first 5): %s" % errors[:5])
        # Collection went on under load: at least half the ticks of a 1 s interval.
        self.assertGreaterEqual(ticks1 - ticks0, int(wall / 2), "the agent stopped ticking under load")
        agent.stop(timeout=15)


if __name__ == "__main__":
    unittest.main()
