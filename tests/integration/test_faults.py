"""Faults the agent must survive, each a test that fails if the promise
breaks (issue 13, item 5), with the real agent and real SQLite files.

Covered elsewhere (docs/RELIABILITY.md lists them): kill -9 of the metric
store many times, a full disk and a corrupt monitor.db (test_storage), kill
-9 of the log follower (test_logs), a broken rule file on SIGHUP
(test_rules), a hanging Docker socket (test_badinput). Here:

- kill -9 while all three stores are written: samples read back through
  /api/v1/query_range equal those served before the kill up to the flush
  window; log lines (logs.db), a silence and an alert's activeAt
  (state.db) are all still there;
- monitor.db, logs.db and state.db all garbage: each moved aside, fresh
  stores, the agent runs and stores;
- a full disk (a small tmpfs): what was stored before is all kept, the
  error is logged rate-limited, writing resumes;
- webhook receivers that hang, reset the connection or answer slowly:
  rule evaluation keeps its interval and /metrics its latency;
- container churn (cgroup directories in a copied fixture root): fds,
  RSS and the store's series in memory back to the baseline after a
  staleness window, the removed containers' data still read back from
  SQLite; and real cgroups with eBPF on: no map entry of a removed
  cgroup left, the maps' size back to the baseline;
- the wall clock stepped back and forward in the agent's process only
  (an LD_PRELOAD shim, clockshift.c): ticks from the past skipped with one
  warning, storing resumes when the clock is right;
- a broken config file and SIGHUP: the agent keeps running on the old one
  (it reloads only rule files on SIGHUP);
- a second, private dockerd stopped and started under the agent:
  containers are found again by name, one series per container.
"""

import calendar
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

import harness as h
from test_ebpf import agent_map_ids as ebpf_agent_maps, map_cgroup_ids as ebpf_map_cgroup_ids

FIXTURE_ROOT = os.path.join(h.ROOT, "tests", "fixtures", "cgroup", "v2")
TOKEN = "faults-" + os.urandom(12).hex()


def tempdir(test, prefix="faults-"):
    os.makedirs(h.WORK, exist_ok=True)
    d = tempfile.mkdtemp(prefix=prefix, dir=h.WORK)
    test.addCleanup(shutil.rmtree, d, True)
    return d


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def query_range(agent, q, start, end, step):
    """[(t, value)] of the single series q gives over [start, end]."""
    args = urllib.parse.urlencode({"query": q, "start": "%.3f" % start, "end": "%.3f" % end,
                                   "step": step})
    r = agent.get("/api/v1/query_range?" + args, timeout=20)
    if r.status != 200:
        raise AssertionError("query_range %s: %d %r" % (q, r.status, r.body[:300]))
    res = r.json()["data"]["result"]
    if not res:
        return []
    if len(res) != 1:
        raise AssertionError("query_range %s: %d series" % (q, len(res)))
    return [(float(t), float(v)) for t, v in res[0]["values"]]


def raw_samples(agent, q, seconds):
    """[(t, value)] stored for the single series q in the last seconds (a
    range selector: each sample once, with its own timestamp)."""
    args = urllib.parse.urlencode({"query": "%s[%ds]" % (q, seconds)})
    r = agent.get("/api/v1/query?" + args, timeout=20)
    if r.status != 200:
        raise AssertionError("query %s: %d %r" % (q, r.status, r.body[:300]))
    res = r.json()["data"]["result"]
    if len(res) > 1:
        raise AssertionError("query %s: %d series" % (q, len(res)))
    return [(float(t), float(v)) for t, v in res[0]["values"]] if res else []


def alert_named(agent, name):
    for a in agent.get("/api/v1/alerts").json()["data"]["alerts"]:
        if a["labels"].get("alertname") == name:
            return a
    return None


def rfc3339(s):
    """Unix seconds of "2026-11-29T18:00:00.123Z"."""
    return calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + s[19:-1])


def log_lines(agent):
    r = agent.get("/api/v1/logs?limit=5000", timeout=20)
    if r.status != 200:
        raise AssertionError("/api/v1/logs answered %d: %r" % (r.status, r.body[:300]))
    return [l["message"] for l in r.json()["data"]["lines"]]


def state_heartbeat(data_dir):
    """The rules engine's last heartbeat (ms) in state.db, or 0."""
    try:
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir, "state.db"), uri=True,
                             timeout=5)
        try:
            row = db.execute("SELECT value FROM kv WHERE ns='alerts_meta' AND key='heartbeat'"
                             ).fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return 0
    return int(bytes(row[0]) if isinstance(row[0], (bytes, memoryview)) else row[0]) if row else 0


class StoresTest(unittest.TestCase):
    """kill -9 with every store in use; every store's file garbage."""

    def setUp(self):
        self.dir = tempdir(self)
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data)
        # A copy of the fixture host root: log globs are under the host root.
        self.root = os.path.join(self.dir, "root")
        shutil.copytree(FIXTURE_ROOT, self.root, symlinks=True)
        self.logdir = os.path.join(self.root, "applogs")
        os.makedirs(self.logdir)
        tok = write(os.path.join(self.dir, "token"), TOKEN + "\n")
        os.chmod(tok, 0o600)
        self.rules = write(os.path.join(self.dir, "rules.yml"), """groups:
- name: faults
  interval: 500ms
  rules:
  - alert: FaultsFiring
    expr: vector(1)
  - alert: FaultsPending
    expr: vector(2)
    for: 1h
""")
        self.config = """docker:
  enabled: false
storage:
  flush_interval: 500ms
auth:
  admin_token_file: %s
rule_files: [%s]
default_rules: false
logs:
  poll_interval: 50ms
  rescan_interval: 200ms
  docker_dir: ''
  cri_dir: ''
  cri_links_dir: ''
  podman_dir: ''
  paths: ['/applogs/*.log']
""" % (tok, self.rules)

    def agent(self):
        a = h.Agent(config=self.config, host_root=self.root, interval="200ms",
                    args=["--no-ebpf"])
        a.cmd[a.cmd.index("--data-dir") + 1] = self.data
        self.addCleanup(a.kill)
        return a

    def test_sigkill_keeps_samples_logs_alerts_silences(self):
        flush_s = 0.5
        with open(os.path.join(self.logdir, "app.log"), "w") as f:
            for i in range(1, 201):
                f.write("line n=%d\n" % i)
        a = self.agent().start()
        t0 = time.time()
        h.wait_for("200 log lines", lambda: len(log_lines(a)) >= 200, 20)
        fired = h.wait_for("FaultsFiring", lambda: alert_named(a, "FaultsFiring"), 10)
        pend = h.wait_for("FaultsPending", lambda: alert_named(a, "FaultsPending"), 10)
        body = json.dumps({"matchers": [{"name": "alertname", "value": "FaultsPending",
                                         "isRegex": False, "isEqual": True}],
                           "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                   time.gmtime(time.time() + 3600)),
                           "createdBy": "test_faults", "comment": "kept across kill -9"}).encode()
        r = h.http_post(a.url + "/api/v2/silences", body=body,
                        headers={"Authorization": "Bearer " + TOKEN,
                                 "Content-Type": "application/json"})
        self.assertEqual(r.status, 200, r.text)
        sid = r.json()["silenceID"]
        # Pending for 2.5 s at least; then the kill comes 3 s after a state
        # heartbeat was seen to change (written every 5 s, and after every
        # round while an alert is pending): with the 5 s heartbeat alone
        # the pending alert would lose those 3 s.
        time.sleep(max(0.0, 2.5 - (time.time() - rfc3339(pend["activeAt"]))))
        hb0 = state_heartbeat(self.data)
        h.wait_for("a state heartbeat", lambda: state_heartbeat(self.data) != hb0, 10,
                   interval=0.05)
        time.sleep(3.0)
        # What the agent serves just before the kill (head included).
        before = query_range(a, "monitor_ticks_total", t0, time.time(), "0.2")
        self.assertGreater(len(before), 5)
        a.proc.kill()                              # SIGKILL mid-write
        t_kill = time.time()
        a.proc.wait(5)
        a.kill()
        # The last heartbeat is within one evaluation interval (500 ms; 1 s
        # of slack for a loaded host) of the kill.
        self.assertLess(t_kill - state_heartbeat(self.data) / 1000.0, 1.5)

        b = self.agent().start()
        t_restart = time.time()
        after = dict(query_range(b, "monitor_ticks_total", t0, t_kill, "0.2"))
        # Everything older than the flush window (plus a tick and the write
        # itself) is there, with the same values.
        window = flush_s + 1.2
        old = [(t, v) for t, v in before if t <= t_kill - window]
        self.assertTrue(old, "the agent ran too briefly to test")
        for t, v in old:
            self.assertIn(t, after, "sample at %.1f (%.1f s before the kill) lost" % (t, t_kill - t))
            self.assertEqual(after[t], v, "sample at %.1f changed" % t)
        # logs.db: every line once.
        got = log_lines(b)
        self.assertEqual(sorted(got, key=lambda s: int(s.split("=")[1])),
                         ["line n=%d" % i for i in range(1, 201)])
        # state.db: the silence, and the alerts keep their activeAt.
        r = b.get("/api/v2/silence/" + sid)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.json()["status"]["state"], "active")
        f2 = h.wait_for("FaultsFiring again", lambda: alert_named(b, "FaultsFiring"), 10)
        p2 = h.wait_for("FaultsPending again", lambda: alert_named(b, "FaultsPending"), 10)
        self.assertEqual(f2["activeAt"], fired["activeAt"])
        self.assertEqual(p2["state"], "pending")
        # A pending alert keeps the time it spent pending (the downtime does
        # not count, test_rules) up to the last state heartbeat: after
        # kill -9 the time since then counts as downtime, at most one
        # evaluation interval (500 ms) while an alert is pending.
        spent_before = t_kill - rfc3339(pend["activeAt"])
        spent_now = time.time() - rfc3339(p2["activeAt"])
        self.assertGreater(spent_now, spent_before - 1.5)
        self.assertLess(spent_now, spent_before + (time.time() - t_restart) + 1.0)
        b.stop()

    def test_all_three_databases_garbage(self):
        for name in ("monitor.db", "logs.db", "state.db"):
            with open(os.path.join(self.data, name), "wb") as f:
                f.write(("garbage in %s, not SQLite " % name).encode() * 4000)
        with open(os.path.join(self.logdir, "app.log"), "w") as f:
            f.write("after corruption\n")
        a = self.agent().start()
        a.wait_tick()
        h.wait_for("the log line in the fresh logs.db",
                   lambda: log_lines(a) == ["after corruption"], 20)
        h.wait_for("FaultsFiring", lambda: alert_named(a, "FaultsFiring"), 10)
        time.sleep(1.5)                        # flush_interval 500ms: a few flushes
        self.assertEqual(a.metrics().value("monitor_storage_write_ok"), 1)
        files = os.listdir(self.data)
        for name in ("monitor.db", "logs.db", "state.db"):
            aside = [f for f in files if f.startswith(name + ".corrupt-")]
            self.assertEqual(len(aside), 1, "%s not moved aside: %s" % (name, files))
            with open(os.path.join(self.data, aside[0]), "rb") as f:
                self.assertTrue(f.read().startswith(b"garbage in " + name.encode()))
            with open(os.path.join(self.data, name), "rb") as f:
                self.assertEqual(f.read(16), b"SQLite format 3\0", name)
        # A silence can be written to the fresh state.db.
        body = json.dumps({"matchers": [{"name": "alertname", "value": "X", "isRegex": False,
                                         "isEqual": True}],
                           "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                   time.gmtime(time.time() + 600)),
                           "createdBy": "t", "comment": "c"}).encode()
        r = h.http_post(a.url + "/api/v2/silences", body=body,
                        headers={"Authorization": "Bearer " + TOKEN,
                                 "Content-Type": "application/json"})
        self.assertEqual(r.status, 200, r.text)
        err = a.stderr()
        self.assertIn("not a database, moved to", err)
        a.stop()


class BadReceivers:
    """Three loopback sockets: one accepts and never answers, one resets
    every connection, one answers 200 after 3 s."""

    def __init__(self):
        self.socks, self.conns, self.stop = [], [], threading.Event()
        self.hang = self._listen(self._hang)
        self.reset = self._listen(self._reset)
        self.slow = self._listen(self._slow)
        self.hits = {"hang": 0, "reset": 0, "slow": 0}

    def _listen(self, fn):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        s.settimeout(0.2)
        self.socks.append(s)
        threading.Thread(target=self._loop, args=(s, fn), daemon=True).start()
        return s.getsockname()[1]

    def _loop(self, s, fn):
        while not self.stop.is_set():
            try:
                c, _ = s.accept()
            except OSError:
                continue
            threading.Thread(target=fn, args=(c,), daemon=True).start()

    def _hang(self, c):
        self.hits["hang"] += 1
        self.conns.append(c)                   # kept open, never answered

    def _reset(self, c):
        self.hits["reset"] += 1
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        c.close()                              # RST

    def _slow(self, c):
        self.hits["slow"] += 1
        c.settimeout(10)
        try:
            c.recv(65536)
            time.sleep(3)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        except OSError:
            pass
        c.close()

    def close(self):
        self.stop.set()
        for s in self.socks + self.conns:
            s.close()


class DiskFullTest(unittest.TestCase):
    """Beyond test_storage's disk-full test: what was stored before the
    disk filled is all still there (through the API while full, and after
    a restart), the write error is logged rate-limited, and logs.db
    takes lines again after space returns."""

    def test_disk_full_loses_nothing_stored(self):
        h.require_root()
        d = tempdir(self)
        mnt = os.path.join(d, "small")
        os.makedirs(mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt],
                           capture_output=True)
        if r.returncode != 0:
            h.skip("cannot mount a tmpfs: %s" % r.stderr.decode().strip())
        self.addCleanup(subprocess.run, ["umount", "-l", mnt], capture_output=True)
        root = os.path.join(d, "root")
        shutil.copytree(FIXTURE_ROOT, root, symlinks=True)
        os.makedirs(os.path.join(root, "applogs"))
        logf = os.path.join(root, "applogs", "app.log")
        data = os.path.join(mnt, "data")
        os.makedirs(data)
        cfg = ("docker:\n  enabled: false\nstorage:\n  flush_interval: 200ms\n"
               "logs:\n  poll_interval: 50ms\n  rescan_interval: 200ms\n  docker_dir: ''\n"
               "  cri_dir: ''\n  cri_links_dir: ''\n  podman_dir: ''\n"
               "  paths: ['/applogs/*.log']\n")

        def agent():
            a = h.Agent(config=cfg, host_root=root, interval="200ms", args=["--no-ebpf"])
            a.cmd[a.cmd.index("--data-dir") + 1] = data
            self.addCleanup(a.kill)
            return a.start()

        with open(logf, "w") as f:
            f.writelines("before n=%d\n" % i for i in range(1, 101))
        a = agent()
        t0 = time.time()
        h.wait_for("100 log lines", lambda: len(log_lines(a)) == 100, 20)
        time.sleep(2)
        filler = os.path.join(mnt, "filler")
        t_fill = time.time()
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 65536)
        except OSError:
            pass
        finally:
            os.close(fd)
        try:
            h.wait_for("a failed flush", lambda: a.metrics().value(
                "monitor_storage_write_errors_total") > 0, 60, interval=0.3)
            time.sleep(3)                            # many failed flushes (every 200 ms)
            m = a.metrics()
            fails = m.value("monitor_storage_write_errors_total")
            self.assertEqual(m.value("monitor_storage_write_ok"), 0)
            logged = len(re.findall(r"monitor\.db: cannot write", a.stderr()))
            self.assertGreaterEqual(logged, 1)
            self.assertLess(logged, max(3, fails / 3),
                            "%d log lines for %d failed flushes: not rate-limited" % (logged, fails))
            # What was stored before is served while the disk is full.
            got = dict(query_range(a, "monitor_ticks_total", t0, t_fill, "0.2"))
            self.assertGreater(len(got), 5)
            self.assertEqual(len(log_lines(a)), 100)
        finally:
            os.unlink(filler)
        h.wait_for("writing to resume", lambda: a.metrics().value("monitor_storage_write_ok") == 1,
                   30, interval=0.3)
        with open(logf, "a") as f:
            f.writelines("after n=%d\n" % i for i in range(1, 51))
        h.wait_for("the 50 lines written after space returned",
                   lambda: len([l for l in log_lines(a) if l.startswith("after")]) == 50, 20)
        a.proc.send_signal(signal.SIGTERM)
        self.assertEqual(a.proc.wait(10), 0)
        b = agent()
        after = dict(query_range(b, "monitor_ticks_total", t0, t_fill, "0.2"))
        self.assertEqual(after, got, "samples stored before the disk filled changed or went")
        lines = log_lines(b)
        self.assertEqual([l for l in lines if l.startswith("before")],
                         ["before n=%d" % i for i in range(1, 101)])
        b.stop()


class ReceiversTest(unittest.TestCase):

    def test_hanging_resetting_slow_webhooks(self):
        d = tempdir(self)
        rx = BadReceivers()
        self.addCleanup(rx.close)
        rules = write(os.path.join(d, "rules.yml"), """groups:
- name: hooks
  interval: 500ms
  rules:
  - alert: HookA
    expr: vector(1)
  - alert: HookB
    expr: vector(2)
  - alert: HookC
    expr: vector(3)
""")
        cfg = """docker:
  enabled: false
rule_files: [%s]
default_rules: false
route:
  receiver: all
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1s
receivers:
  - name: all
    webhook_configs:
    - url: http://127.0.0.1:%d/hang
      timeout: 30s
    - url: http://127.0.0.1:%d/reset
    - url: http://127.0.0.1:%d/slow
      timeout: 20s
""" % (rules, rx.hang, rx.reset, rx.slow)
        a = h.Agent(config=cfg, host_root=FIXTURE_ROOT, interval="200ms", args=["--no-ebpf"])
        self.addCleanup(a.kill)
        a.start()
        h.wait_for("all three receivers contacted",
                   lambda: all(v > 0 for v in rx.hits.values()), 30)
        # Now, with deliveries stuck on every receiver: rule evaluation keeps
        # its interval and /metrics answers quickly.
        m0 = a.metrics()
        t0, ticks0 = time.time(), m0.value("monitor_ticks_total")
        evals0 = m0.sum("monitor_rule_evaluations_total")
        worst, n = 0.0, 0
        while time.time() - t0 < 6:
            s = time.time()
            r = h.http_get(a.url + "/metrics", timeout=5)
            worst = max(worst, time.time() - s)
            self.assertEqual(r.status, 200)
            n += 1
            time.sleep(0.1)
        m1 = a.metrics()
        elapsed = time.time() - t0
        self.assertLess(worst, 1.0, "/metrics took %.2f s with receivers stuck" % worst)
        ticks = m1.value("monitor_ticks_total") - ticks0
        self.assertGreaterEqual(ticks, elapsed / 0.2 * 0.7,
                                "%d ticks in %.1f s at 200ms" % (ticks, elapsed))
        # Rule evaluation keeps its 500ms interval (3 rules a round), the last
        # round is recent, the alerts still fire.
        evals = m1.sum("monitor_rule_evaluations_total") - evals0
        self.assertGreaterEqual(evals, elapsed / 0.5 * 3 * 0.7,
                                "%d rule evaluations in %.1f s" % (evals, elapsed))
        groups = a.get("/api/v1/rules").json()["data"]["groups"]
        g = [g for g in groups if g["name"] == "hooks"][0]
        self.assertLess(time.time() - rfc3339(g["lastEvaluation"]), 2.0, g["lastEvaluation"])
        for name in ("HookA", "HookB", "HookC"):
            self.assertEqual(alert_named(a, name)["state"], "firing")
        a.stop()


class DockerRestartTest(unittest.TestCase):
    """A second, private dockerd (the shared one is never touched): its
    own data root, exec root, pid file and socket; stopped and started
    under a running agent. With --live-restore the container keeps
    running; the agent must find its name again and keep one series."""

    def dockerd(self):
        self.dproc = subprocess.Popen(
            ["dockerd", "--data-root", os.path.join(self.d, "root"),
             "--exec-root", os.path.join(self.d, "x"), "--pidfile", os.path.join(self.d, "pid"),
             "-H", "unix://" + self.sock, "--bridge=none", "--iptables=false",
             "--ip-masq=false", "--ip6tables=false", "--live-restore"],
            stdout=self.dlog, stderr=self.dlog, stdin=subprocess.DEVNULL,
            preexec_fn=h.die_with_parent)

        def up():
            if self.dproc.poll() is not None:
                raise AssertionError("the private dockerd exited: %s" % self.dlog_text()[-2000:])
            return subprocess.run(["docker", "-H", "unix://" + self.sock, "version"],
                                  capture_output=True, timeout=10).returncode == 0
        h.wait_for("the private dockerd", up, 60, interval=0.3)

    def dlog_text(self):
        with open(self.dlog.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop_dockerd(self):
        if self.dproc and self.dproc.poll() is None:
            self.dproc.terminate()
            try:
                self.dproc.wait(30)
            except subprocess.TimeoutExpired:
                self.dproc.kill()
                self.dproc.wait(5)

    def dk(self, *args, stdin=None, timeout=60):
        r = subprocess.run(["docker", "-H", "unix://" + self.sock] + list(args),
                           capture_output=True, input=stdin, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError("docker %s: %s" % (" ".join(args), r.stderr.decode()[-500:]))
        return r.stdout.decode().strip()

    def series(self, agent, cg):
        q = urllib.parse.urlencode({"match[]": 'container_memory_usage_bytes{id="%s"}' % cg,
                                    "start": "%.3f" % self.t_start, "end": "%.3f" % time.time()})
        r = agent.get("/api/v1/series?" + q)
        self.assertEqual(r.status, 200, r.text)
        return r.json()["data"]

    def test_private_dockerd_stopped_and_started(self):
        h.require_root()
        if not shutil.which("dockerd") or not shutil.which("docker"):
            h.skip("dockerd or docker is not installed")
        rootfs = os.path.join(h.ROOT, "build", "integration", "rootfs")
        if not os.path.isdir(rootfs):
            h.skip("no %s (tests/integration/setup makes it)" % rootfs)
        # Short: containerd's socket path under the exec root must fit in 108 bytes.
        self.d = tempfile.mkdtemp(prefix="h13dk-", dir="/tmp")
        self.sock = os.path.join(self.d, "d.sock")
        self.dproc = None
        self.dlog = open(os.path.join(self.d, "dockerd.log"), "wb")
        self.addCleanup(shutil.rmtree, self.d, True)
        # dockerd leaves its data root bind-mounted on itself.
        self.addCleanup(subprocess.run, ["umount", "-l", os.path.join(self.d, "root")],
                        capture_output=True)
        self.addCleanup(self.dlog.close)
        self.addCleanup(self.stop_dockerd)
        self.dockerd()
        tar = subprocess.run(["tar", "-C", rootfs, "-c", "."], capture_output=True, check=True).stdout
        self.dk("import", "--change", 'CMD ["sh"]', "-", "faults-busybox", stdin=tar)
        name = h.unique("dkrestart")
        cid = self.dk("run", "-d", "--name", name, "--network", "none", "faults-busybox",
                      "sleep", "600")
        self.addCleanup(lambda: subprocess.run(["docker", "-H", "unix://" + self.sock, "rm",
                                                "-f", cid], capture_output=True, timeout=60))
        a = h.Agent(config="docker:\n  socket: %s\n  timeout: 1s\n"
                    "storage:\n  flush_interval: 500ms\n" % self.sock,
                    interval="500ms", args=["--no-ebpf"])
        self.addCleanup(a.kill)
        a.start()
        c = h.wait_for("%s named by the agent" % name, lambda: a.container(name), 20)
        cg = c["id"] if c["id"].startswith("/") else None
        lab = h.wait_for("its series", lambda: [l for l, _ in a.metrics().get(
            "container_memory_usage_bytes") if l.get("name") == name], 10)[0]
        cg = lab["id"]
        # Series from here on (a new agent holds Docker's containers until
        # the engine first answers, so they start under their names:
        # test_docker's one-series test).
        time.sleep(1)
        self.t_start = time.time()
        h.wait_for("the named series in /api/v1/series",
                   lambda: len(self.series(a, cg)) == 1, 10)

        self.stop_dockerd()
        # The container runs on (live restore); the agent keeps collecting it.
        self.assertIsNone(a.proc.poll())
        t_down = time.time()
        while time.time() - t_down < 4:
            r = h.http_get(a.url + "/metrics", timeout=5)
            self.assertEqual(r.status, 200)
            time.sleep(0.5)
        e = a.wait_tick()
        self.assertTrue([l for l, _ in e.get("container_memory_usage_bytes") if l["id"] == cg],
                        "the container's cgroup not collected while Docker is down")

        self.dockerd()
        self.assertEqual(self.dk("inspect", "-f", "{{.State.Running}}", cid), "true")
        h.wait_for("%s named again" % name, lambda: a.container(name), 20)
        # A container started after the restart is found too.
        name2 = h.unique("dkafter")
        self.dk("run", "-d", "--name", name2, "--network", "none", "faults-busybox", "sleep", "600")
        self.addCleanup(lambda: subprocess.run(["docker", "-H", "unix://" + self.sock, "rm",
                                                "-f", name2], capture_output=True, timeout=60))
        h.wait_for("%s (started after the restart) named" % name2, lambda: a.container(name2), 20)
        a.wait_tick()
        a.wait_tick()
        # One series for the container, under its name, across the outage.
        got = self.series(a, cg)
        self.assertEqual(len(got), 1, "series of one container: %s" % json.dumps(got, indent=1))
        self.assertEqual(got[0].get("name"), name)
        names = [l for l, _ in a.metrics().get("container_memory_usage_bytes") if l["id"] == cg]
        self.assertEqual(len(names), 1, names)
        a.stop()


CHURN_CYCLES = int(os.environ.get("MONITOR_CHURN_CYCLES", "200"))
EVICT_S = 2                 # storage.evict_stale_after in the churn agents
FIXTURE_CONTAINER = "sys/fs/cgroup/docker/" \
    "688116434228fbfdd03d9cd934322f980dd3fddb26fab37473033c7173572be2"


def churn_id(n):
    """The container id of churn cycle n: hex, "c4" and this run's tag."""
    return ("c4" + ("%s-%d" % (h.RUN_TAG, n)).encode().hex()).ljust(64, "0")[:64]


def rss_fds(a):
    """RSS (KiB) and open fds: the least of 5 readings over 2 s, so that a
    tick's or a flush's passing buffers count in neither baseline nor end."""
    got = []
    for _ in range(5):
        with open("/proc/%d/status" % a.proc.pid) as f:
            rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
        got.append((rss, len(os.listdir("/proc/%d/fd" % a.proc.pid))))
        time.sleep(0.5)
    return min(r for r, _ in got), min(n for _, n in got)


class ChurnTest(unittest.TestCase):
    """CHURN_CYCLES containers created and destroyed in batches of 10 under
    the agent: cgroup directories (copies of a Docker container's) made and
    removed in a copy of the v2 fixture host root, so that the shared
    host's own containers do not move the baseline. After the churn and a
    staleness window (storage.evict_stale_after 2s): no series of the
    removed containers on /metrics, the store's series in memory back
    within 10 % (they left memory for SQLite), and open fds and RSS back
    within 10 % of the baseline taken after a warm-up (the default rules
    and forecasts off, see below). The first removed container's samples are still read
    back over its lifetime. `make
    soak-churn` runs 1,000 cycles (MONITOR_CHURN_CYCLES). Real cgroups and
    eBPF map entries: EbpfChurnTest."""

    BATCH = 10

    def ours(self, e):
        return [l for l, _ in e.get("container_memory_usage_bytes")
                if l.get("id", "").startswith("/docker/c4")]

    def cycles(self, a, n):
        seen = 0
        for _ in range(0, n, self.BATCH):
            dirs = []
            for _ in range(self.BATCH):
                self.n += 1
                d = os.path.join(self.root, "sys/fs/cgroup/docker", churn_id(self.n))
                shutil.copytree(self.src, d)
                dirs.append(d)
            a.wait_tick()
            seen = max(seen, len(self.ours(a.wait_tick())))
            for d in dirs:
                shutil.rmtree(d)
        return seen

    def test_churn_returns_to_baseline(self):
        h.require_unsanitized("RSS")
        d = tempdir(self)
        self.root = os.path.join(d, "root")
        shutil.copytree(FIXTURE_ROOT, self.root, symlinks=True)
        self.src = os.path.join(self.root, FIXTURE_CONTAINER)
        self.n = 0
        # The default rules and forecasts off: rules' point cache and the
        # forecasts' per-series state keep what their windows (up to 1 h)
        # reach back to, churned containers included, until the windows
        # pass them (docs/RELIABILITY.md).
        a = h.Agent(config="docker:\n  enabled: false\ndefault_rules: false\nforecast:\n"
                           "  enabled: false\nstorage:\n  flush_interval: 1s\n"
                           "  evict_stale_after: %ds\n" % EVICT_S,
                    host_root=self.root, interval="200ms", args=["--no-ebpf"])
        self.addCleanup(a.kill)
        a.start()
        # Warm up (allocator arenas, caches, SQLite pages), then the baseline
        # once the warm-up's containers have left memory.
        t_first = time.time()
        self.assertEqual(self.cycles(a, 5 * self.BATCH), self.BATCH,
                         "the agent did not show every container of a batch")
        t_gone = time.time()
        # In memory: the series of what runs (the snapshot's), within 10 %.
        def settled():
            m = a.metrics()
            return m.value("monitor_storage_series") <= m.value("monitor_series") * 1.10
        h.wait_for("the warm-up's series to leave memory", settled, EVICT_S + 20)
        m0 = a.wait_tick()
        rss0, fds0 = rss_fds(a)
        series0, stored0 = m0.value("monitor_series"), m0.value("monitor_storage_series")
        t0 = time.time()
        seen = self.cycles(a, CHURN_CYCLES)
        took = time.time() - t0
        self.assertEqual(seen, self.BATCH, "the agent did not show every container of a batch")
        h.wait_for("no series of the removed containers on /metrics",
                   lambda: not self.ours(a.metrics()), 10)
        h.wait_for("the store's series in memory back to those of what runs", settled,
                   EVICT_S + 20)
        time.sleep(1.5)
        m1 = a.wait_tick()
        rss1, fds1 = rss_fds(a)
        print("\nchurn: %d cycles in %.1f s; RSS %d -> %d KiB, fds %d -> %d, /metrics series "
              "%d -> %d, store series in memory %d -> %d (%d left memory)"
              % (CHURN_CYCLES, took, rss0, rss1, fds0, fds1, series0,
                 m1.value("monitor_series"), stored0, m1.value("monitor_storage_series"),
                 m1.value("monitor_storage_series_evicted_total")))
        self.assertLessEqual(fds1, max(fds0 * 1.10, fds0 + 2), "fds %d -> %d" % (fds0, fds1))
        self.assertLessEqual(m1.value("monitor_series"), series0 * 1.10)
        # Issue 13's 10 %: nothing is kept per removed container (heaptrack),
        # series live in pools of their own pages (storage/slab.c) and the
        # writer's flush arrays in mappings of their own, so 200 cycles
        # measured +3.6 to +4.2 % and 1,000 cycles +4.8 to +6.5 % (the store's
        # series were +60 % before they left memory). docs/RELIABILITY.md.
        self.assertLessEqual(rss1, rss0 * 1.10, "RSS %d KiB -> %d KiB" % (rss0, rss1))
        # The first container, long out of memory: its samples over its life.
        first = "/docker/" + churn_id(1)
        pts = query_range(a, 'container_memory_usage_bytes{id="%s"}' % first,
                          t_first - 1, t_gone + 1, "0.2")
        self.assertTrue(pts and all(v > 0 for _, v in pts),
                        "no data of %s read back: %r" % (first, pts[:5]))
        self.assertIsNone(a.proc.poll())
        a.stop()


class ChurnCgroup:
    """One churned container: a raw cgroup docker/<id> in every hierarchy
    (as test_load makes them) holding a bash that, once moved in, makes one
    refused TCP connect (entries in the eBPF net and tcp maps) and sleeps."""

    def __init__(self, roots, cid):
        self.dirs = []
        self.proc = subprocess.Popen(
            ["bash", "-c", "read go; (: </dev/tcp/127.0.0.1/1) 2>/dev/null; exec sleep 600"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=h.die_with_parent)
        for root in roots:
            d = os.path.join(root, "docker", cid)
            os.makedirs(d, exist_ok=True)
            self.dirs.append(d)
            cpus = os.path.join(d, "cpuset.cpus")
            if os.path.exists(cpus) and not open(cpus).read().strip():
                for f in ("cpuset.cpus", "cpuset.mems"):
                    write(os.path.join(d, f),
                          open(os.path.join(root, "docker", f)).read().strip())
            write(os.path.join(d, "cgroup.procs"), str(self.proc.pid))
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.close()

    def remove(self):
        from test_load import remove_cgroup
        self.proc.kill()
        self.proc.wait(5)
        for d in reversed(self.dirs):
            remove_cgroup(d)


class EbpfChurnTest(unittest.TestCase):
    """CHURN_CYCLES real containers created and destroyed in batches of 10
    under the agent with every probe on: raw cgroups docker/<id> in every
    hierarchy, each with a process that makes a refused TCP connect, so
    the eBPF net and tcp maps get an entry for its cgroup. After the churn
    (bpftool reads the agent's maps): none of the churned cgroups is left
    in any per-cgroup map, and the maps' entry count is back within 10 %
    of the baseline (2 entries slack: other containers on this shared host
    come and go). RSS and fds are ChurnTest's: the host's own containers
    would move them here."""

    BATCH = 10

    def entries(self):
        """(all entries, entries of churned cgroups) over the per-cgroup maps."""
        total, mine = 0, 0
        for m in ("net_stats", "tcp_stats"):
            ids = ebpf_map_cgroup_ids(self.maps[m])
            total += len(ids)
            mine += len(ids & self.cgroup_ids)
        return total, mine

    def cycles(self, a, n):
        for _ in range(0, n, self.BATCH):
            batch = []
            try:
                for _ in range(self.BATCH):
                    self.n += 1
                    cid = churn_id(self.n)
                    batch.append(ChurnCgroup(self.roots, cid))
                    self.cgroup_ids.add(os.stat(os.path.join(self.v2, "docker", cid)).st_ino)
                a.wait_tick()
            finally:
                for c in batch:
                    c.remove()

    def test_churn_leaves_no_map_entries(self):
        h.require_root()
        if not os.path.exists("/sys/kernel/btf/vmlinux") or not shutil.which("bpftool"):
            h.skip("needs eBPF (kernel BTF) and bpftool to read the maps")
        from test_load import roots
        from test_ebpf import v2_root
        self.roots, self.v2 = roots(), v2_root()
        self.n, self.cgroup_ids = 0, set()
        a = h.Agent(config="docker:\n  enabled: false\nstorage:\n  flush_interval: 1s\n"
                           "  evict_stale_after: %ds\n" % EVICT_S, interval="200ms")
        self.addCleanup(a.kill)
        a.start()
        self.maps = ebpf_agent_maps(a.proc.pid)
        for m in ("net_stats", "tcp_stats"):
            self.assertIn(m, self.maps, "eBPF map %s not loaded: %s" % (m, a.stderr()[-2000:]))
        self.cycles(a, self.BATCH)
        self.assertEqual(self.entries()[1], 0, "maps hold removed cgroups after the warm-up")
        entries0, _ = self.entries()
        # While a batch lives, its cgroups are in the maps (the probes work).
        c = ChurnCgroup(self.roots, churn_id(0))
        try:
            ino = os.stat(os.path.join(self.v2, "docker", churn_id(0))).st_ino
            h.wait_for("a live churned cgroup in the tcp map", lambda: (
                ino in ebpf_map_cgroup_ids(self.maps["tcp_stats"])), 10)
        finally:
            c.remove()
        self.cgroup_ids.add(ino)
        t0 = time.time()
        self.cycles(a, CHURN_CYCLES)
        took = time.time() - t0
        a.wait_tick()
        entries1, mine = self.entries()
        print("\nchurn (real cgroups, eBPF): %d cycles in %.1f s; map entries %d -> %d, "
              "%d of churned cgroups" % (CHURN_CYCLES, took, entries0, entries1, mine))
        self.assertEqual(mine, 0, "the eBPF maps still hold removed cgroups")
        self.assertLessEqual(entries1, max(entries0 * 1.10, entries0 + 2))
        self.assertIsNone(a.proc.poll())
        a.stop()


class ClockStepTest(unittest.TestCase):
    """The wall clock stepped back an hour, forward again, and an hour
    ahead, in the agent's process only: an LD_PRELOAD shim
    (clockshift.c) adds an offset to CLOCK_REALTIME, gettimeofday and
    time; the monotonic clocks the agent's timers use are untouched.
    Ticks stamped before the last stored one are skipped with one
    warning and counted in monitor_storage_out_of_order_samples_total, the agent keeps collecting and serving, and storing resumes
    at once when the clock is right again; an hour ahead is stored."""

    def test_clock_stepped_back_and_forward(self):
        cc = shutil.which("cc") or shutil.which("gcc")
        if not cc:
            h.skip("no C compiler to build the clock shim")
        d = tempdir(self)
        so = os.path.join(d, "clockshift.so")
        r = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", so,
                            os.path.join(h.ROOT, "tests", "integration", "clockshift.c"), "-ldl"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        off = write(os.path.join(d, "offset"), "0")
        a = h.Agent(config="docker:\n  enabled: false\nstorage:\n  flush_interval: 500ms\n",
                    host_root=FIXTURE_ROOT, interval="200ms", args=["--no-ebpf"])
        a.cmd = ["env", "LD_PRELOAD=" + so, "CLOCKSHIFT_FILE=" + off] + a.cmd
        self.addCleanup(a.kill)
        a.start()
        a.wait_tick()
        ooo = "monitor_storage_out_of_order_samples_total"
        ooo0 = a.metrics().value(ooo)
        write(off, "-3600000")                     # an hour back
        time.sleep(0.3)
        t_back = time.time() - 3600
        time.sleep(2)
        self.assertIsNone(a.proc.poll(), a.stderr()[-2000:])
        before = a.metrics().value("monitor_ticks_total")
        e = a.wait_tick()
        self.assertGreater(e.value("monitor_ticks_total"), before, "ticks stopped")
        # Ticks stamped before the last stored one are skipped, said once.
        self.assertRegex(a.stderr(), r"storage: the clock went back 3\d\d\d\.\d+ s; ticks are not "
                         r"stored until it passes the last stored one")
        self.assertEqual(query_range(a, "monitor_ticks_total", t_back, t_back + 10, "0.2"), [])
        self.assertGreater(e.value(ooo), ooo0, "skipped ticks not counted as refused samples")

        write(off, "0")                            # and forward to the right time
        time.sleep(0.3)
        t_fwd = time.time()

        def stored():
            # The stored samples themselves (a range selector), not a
            # query_range's steps: a tick late by more than the step under
            # load shows one sample at two steps, which read as a tick
            # stored twice (the flake).
            got = [(t, v) for t, v in raw_samples(a, "monitor_ticks_total", 10) if t >= t_fwd]
            return got if len(got) > 5 else None
        got = h.wait_for("more than 5 ticks stored after the clock came back", stored, 10)
        ts = [t for t, _ in got]
        vals = [v for _, v in got]
        self.assertEqual(ts, sorted(set(ts)), "timestamps out of order or twice: %s" % got)
        self.assertEqual(vals, sorted(vals))
        self.assertEqual(len(got), len(set(vals)), "a tick stored twice: %s" % got)
        self.assertIn("storage: storing ticks", a.stderr())
        o2 = a.metrics().value(ooo)
        a.wait_tick()
        self.assertEqual(a.wait_tick().value(ooo), o2, "samples refused with the clock right")
        self.assertEqual(a.stderr().count("the clock went back"), 1, "not rate-limited")

        write(off, "3600000")                      # an hour ahead
        time.sleep(0.3)
        t_ahead = time.time() + 3600
        h.wait_for("ticks stored with the clock an hour ahead",
                   lambda: query_range(a, "monitor_ticks_total", t_ahead, t_ahead + 10, "0.2"), 10)
        self.assertIsNone(a.proc.poll(), a.stderr()[-2000:])
        self.assertEqual(h.http_get(a.url + "/metrics").status, 200)
        a.proc.send_signal(signal.SIGTERM)
        self.assertEqual(a.proc.wait(10), 0, a.stderr()[-2000:])


class ConfigReloadTest(unittest.TestCase):

    def test_sighup_with_broken_config_keeps_running(self):
        a = h.Agent(config="docker:\n  enabled: false\n", host_root=FIXTURE_ROOT,
                    interval="200ms", args=["--no-ebpf"])
        self.addCleanup(a.kill)
        a.start()
        a.wait_tick()
        write(a.config_path, "docker: [unclosed\n  : : :\n\t\x00garbage")
        a.proc.send_signal(signal.SIGHUP)
        time.sleep(1)
        self.assertIsNone(a.proc.poll(), "the agent exited on SIGHUP: %s" % a.stderr()[-2000:])
        before = a.metrics().value("monitor_ticks_total")
        e = a.wait_tick()
        self.assertGreater(e.value("monitor_ticks_total"), before)
        self.assertEqual(h.http_get(a.url + "/-/ready").status, 200)
        a.stop()


if __name__ == "__main__":
    unittest.main()
