"""Least privilege (issue 13, item 2; agent/privs.c, README "Privileges").

As root with the default features, once start-up is done every thread of
the agent holds exactly the documented run-time set in its effective,
permitted and bounding sets (nothing inheritable or ambient, no_new_privs
set), and the features that need those capabilities still work on a real
container: its environment (/proc/<pid>/environ), its network counters
(/proc/<pid>/ns/net + net/dev) and its processes.

As an unprivileged user (setpriv --reuid=nobody) the agent starts, serves
/metrics for what it can read, and says once per feature what is off and
which capability it would need.
"""

import os
import platform
import pwd
import re
import shutil
import subprocess
import time
import unittest

import harness

CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE, CAP_BPF = 2, 19, 39


def kernel_at_least(maj, mino):
    m = re.match(r"(\d+)\.(\d+)", platform.release())
    return bool(m) and (int(m.group(1)), int(m.group(2))) >= (maj, mino)


def status_fields(path):
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


class PrivsRootTest(unittest.TestCase):
    def test_kept_set_in_every_thread_and_features_work(self):
        harness.require_root()
        with open("/proc/self/status") as f:
            prm = int(re.search(r"CapPrm:\s*([0-9a-f]+)", f.read()).group(1), 16)
        want = (1 << CAP_DAC_READ_SEARCH) | (1 << CAP_SYS_PTRACE)
        if not kernel_at_least(6, 5):
            want |= 1 << CAP_BPF   # bpf() map reads need it before 6.5 (privs.c)
        want &= prm
        docker_ok = True
        try:
            harness.require_docker()
        except unittest.SkipTest:
            docker_ok = False
        c = None
        if docker_ok:
            c = harness.docker_run(self, "privs", ["sh", "-c", "ping -c 1000 -i 0.2 127.0.0.1 >/dev/null; sleep 600"],
                                   opts=["-e", "PRIVS_PROBE=visible"])
        agent = harness.Agent().start()
        self.addCleanup(agent.kill)
        try:
            harness.wait_for("the privileges log line", lambda: "privileges: kept" in agent.stderr(), 30)
        except AssertionError:
            print("AGENT STDERR:\n" + agent.stderr())
            raise
        pid = agent.proc.pid
        tasks = os.listdir("/proc/%d/task" % pid)
        self.assertGreater(len(tasks), 3, "expected the agent's threads")
        checked = 0
        for tid in tasks:
            try:
                st = status_fields("/proc/%d/task/%s/status" % (pid, tid))
            except (ProcessLookupError, FileNotFoundError):
                continue  # a connection's thread (one per connection) that has ended
            checked += 1
            for k in ("CapEff", "CapPrm", "CapBnd"):
                self.assertEqual(int(st[k], 16), want, "thread %s %s=%s, want %x" % (tid, k, st[k], want))
            self.assertEqual(int(st["CapInh"], 16), 0)
            self.assertEqual(int(st["CapAmb"], 16), 0)
            self.assertEqual(st["NoNewPrivs"], "1", "thread %s" % tid)
        self.assertGreater(checked, 3, "expected the agent's threads still there")
        self.assertIn("privileges: kept CAP_DAC_READ_SEARCH", agent.stderr())
        self.assertIn("CAP_SYS_PTRACE (", agent.stderr())
        if not c:
            agent.stop()
            raise unittest.SkipTest("no Docker: kept set checked, container features not")
        # The features the kept set is for still work after the drop.
        harness.wait_for("the container listed", lambda: agent.container(c.name), 20, interval=0.5)
        r = agent.get("/api/v1/containers/%s/env" % c.id)
        self.assertEqual(r.status, 200, r.body[:300])
        env = {v["name"]: v["value"] for v in r.json()["data"]["env"]}
        self.assertEqual(env.get("PRIVS_PROBE"), "visible")

        def net():
            # "private" needs a stat() of /proc/<pid>/ns/net (a ptrace read check).
            e = agent.metrics()
            return e.get("container_network_mode", name=c.name, mode="private")
        harness.wait_for("the container's own network namespace on /metrics", net, 20, interval=0.5)
        r = agent.get("/api/v1/containers/%s/processes" % c.id)
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertIn("ping", r.text)
        # Threads started later (per-connection) inherit the kept set too.
        for tid in os.listdir("/proc/%d/task" % pid):
            st = status_fields("/proc/%d/task/%s/status" % (pid, tid))
            self.assertEqual(int(st["CapEff"], 16), want, "late thread %s" % tid)
        agent.stop()


class PrivsUnprivilegedTest(unittest.TestCase):
    def test_runs_as_nobody_with_one_message_per_feature(self):
        harness.require_root()          # to switch to nobody
        if not shutil.which("setpriv"):
            raise unittest.SkipTest("no setpriv (util-linux)")
        nobody = pwd.getpwnam("nobody")
        agent = harness.Agent()
        os.chown(agent.data_dir, nobody.pw_uid, nobody.pw_gid)
        os.chmod(agent.dir, 0o755)
        agent.cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + agent.cmd
        agent.start()
        self.addCleanup(agent.kill)
        e = agent.wait_tick(timeout=10)
        self.assertTrue(e.get("monitor_ticks_total"))
        # cgroup files are world-readable: the host's CPU and the containers' counters still come.
        self.assertTrue(e.get("machine_cpu_cores") or e.get("machine_memory_bytes"),
                        "no machine_* series for an unprivileged agent")
        log = agent.stderr()
        for msg in ("privileges: eBPF probes are off: loading them needs CAP_BPF and CAP_PERFMON",
                    "privileges: other users' processes are not readable",
                    "needs CAP_SYS_PTRACE",
                    "privileges: files of other users",
                    "needs CAP_DAC_READ_SEARCH"):
            self.assertEqual(log.count(msg), 1, "want %r once in:\n%s" % (msg, log[-3000:]))
        # The cgroup iterator cannot load either: one line, and the cgroup
        # files are read instead (collectors/cgroup_iter.c).
        if not harness.Cgroup.pure_v2():
            self.assertEqual(log.count("cgroup: reading cgroup files; the BPF cgroup iterator is "
                                       "not used: loading the cgroup iterator: not permitted"), 1,
                             log[-3000:])
        if os.path.exists("/var/run/docker.sock"):
            self.assertEqual(log.count("privileges: Docker is off"), 1, log[-3000:])
        st = status_fields("/proc/%d/status" % agent.proc.pid)
        self.assertEqual(int(st["CapEff"], 16), 0)
        self.assertEqual(st["NoNewPrivs"], "1")
        self.assertEqual(int(st["Uid"].split()[0]), nobody.pw_uid)
        agent.stop()



class PrivsUnitTest(unittest.TestCase):
    def test_hardened_systemd_unit(self):
        """docs/fleet/monitor.service allows the documented capabilities and
        no file-permission override, verifies, and scores under 4.5 in
        systemd-analyze security (9.0 before it was hardened)."""
        sa = harness.require_binary("systemd-analyze")
        path = os.path.join(harness.ROOT, "docs", "fleet", "monitor.service")
        with open(path) as f:
            unit = f.read()
        caps = set(re.search(r"^CapabilityBoundingSet=(.*)$", unit, re.M).group(1).split())
        self.assertTrue({"CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH", "CAP_BPF", "CAP_PERFMON"} <= caps, caps)
        self.assertFalse(caps & {"CAP_DAC_OVERRIDE", "CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SYS_MODULE"}, caps)
        for want in ("NoNewPrivileges=true", "ProtectSystem=strict", "ReadWritePaths=/var/lib/monitor",
                     "SystemCallFilter=@system-service bpf perf_event_open"):
            self.assertIn(want, unit)
        os.makedirs(harness.WORK, exist_ok=True)
        d = os.path.join(harness.WORK, "privs-unit-%s" % harness.RUN_TAG)
        os.makedirs(d, exist_ok=True)
        self.addCleanup(shutil.rmtree, d, True)
        local = os.path.join(d, "monitor.service")
        with open(local, "w") as f:
            f.write(unit.replace("/usr/local/bin/monitor", os.path.abspath(harness.MONITOR)))
        r = subprocess.run([sa, "verify", local], capture_output=True, text=True, timeout=60)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))
        r = subprocess.run([sa, "security", "--offline=yes", local], capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for monitor.service: ([0-9.]+)", r.stdout)
        if not m:
            raise unittest.SkipTest("systemd-analyze security --offline is not available: %s" % r.stderr[-300:])
        print("\nprivs: systemd-analyze security: %s" % m.group(1), flush=True)
        self.assertLess(float(m.group(1)), 4.5)


class PrivsStartupOnlyTest(unittest.TestCase):
    def test_low_port_bound_then_dropped(self):
        """A listen port below 1024 needs CAP_NET_BIND_SERVICE until the
        socket is bound (kept by the first step), and not after."""
        harness.require_root()
        import socket
        port = None
        for cand in range(900, 1000):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", cand))
                port = cand
                break
            except OSError:
                continue
            finally:
                s.close()
        if port is None:
            raise unittest.SkipTest("no free loopback port below 1000")
        agent = harness.Agent(listen="127.0.0.1:%d" % port, args=["--no-ebpf"]).start()
        self.addCleanup(agent.kill)
        harness.wait_for("the privileges log line", lambda: "privileges: kept" in agent.stderr(), 30)
        st = status_fields("/proc/%d/status" % agent.proc.pid)
        self.assertFalse(int(st["CapEff"], 16) & (1 << 10), "CAP_NET_BIND_SERVICE still held: %s" % st["CapEff"])
        self.assertEqual(agent.get("/-/ready").status, 200)
        agent.stop()


if __name__ == "__main__":
    unittest.main()
