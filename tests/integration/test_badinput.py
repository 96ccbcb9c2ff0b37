"""What the agent does with bad input: malformed config files, a port in use,
a host root without cgroups, a Docker socket that is missing or hangs, and
cgroup files full of garbage. It either stops at once with a message that
names the file, line and key, or keeps serving and counting ticks."""

import os
import re
import shutil
import socket
import tempfile
import threading
import time
import unittest

import harness as h

FAKE_ID = "d" * 64
GOOD_ID = "a" * 64


def config_error(test, text, line, key):
    """Runs the agent with config text; asserts it stops with a non-zero
    status and a message naming the config file, the line and the key."""
    rc, err, path = h.run_agent_to_exit(["--listen", "127.0.0.1:%d" % h.free_port()], config=text, timeout=5)
    test.assertIsNotNone(rc, "agent kept running with a bad config; stderr:\n" + err)
    test.assertGreater(rc, 0, "want a non-zero exit status (not a signal), got %s; stderr:\n%s" % (rc, err))
    test.assertIn(path, err, "message does not name the file")
    test.assertTrue(re.search(r"%s:%d\b" % (re.escape(path), line), err) or re.search(r"\bline %d\b" % line, err),
                    "message does not name line %d:\n%s" % (line, err))
    if key:
        test.assertIn(key, err, "message does not name the key")
    return err


class ConfigTest(unittest.TestCase):
    def test_yaml_syntax_error(self):
        config_error(self, "listen: 127.0.0.1:9999\ninterval: 1s\nlog_level: info: debug\n", 3, None)

    def test_unknown_key(self):
        config_error(self, "interval: 1s\nintervall: 2s\n", 2, "intervall")

    def test_unknown_nested_key(self):
        config_error(self, "interval: 1s\ndocker:\n  socket: /var/run/docker.sock\n  sockett: /x\n", 4, "sockett")

    def test_bad_value(self):
        config_error(self, "log_level: info\n\ninterval: fast\n", 3, "interval")

    def test_bad_value_type(self):
        config_error(self, "collect:\n  percpu: true\n  container_labels: 7\n", 3, "container_labels")

    def test_missing_config_file(self):
        missing = os.path.join(h.WORK, "no-such-config.yml")
        rc, err, _ = h.run_agent_to_exit(["--config", missing, "--listen", "127.0.0.1:%d" % h.free_port()], timeout=5)
        self.assertIsNotNone(rc)
        self.assertGreater(rc, 0)
        self.assertIn(missing, err)


class ListenTest(unittest.TestCase):
    def test_port_in_use(self):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            rc, err, _ = h.run_agent_to_exit(["--listen", "127.0.0.1:%d" % port], timeout=10)
        self.assertIsNotNone(rc, "agent kept running on a port in use; stderr:\n" + err)
        self.assertGreater(rc, 0, "exit status %s; stderr:\n%s" % (rc, err))
        self.assertIn(str(port), err, "the message should name the address")
        self.assertRegex(err.lower(), r"in use|bind", "the message should say why")

    def test_bad_listen_address(self):
        rc, err, _ = h.run_agent_to_exit(["--listen", "not-an-address"], timeout=5)
        self.assertIsNotNone(rc)
        self.assertGreater(rc, 0)
        self.assertIn("not-an-address", err)


class HostRootTest(unittest.TestCase):
    def test_empty_host_root(self):
        d = tempfile.mkdtemp(prefix="emptyroot-", dir=h.WORK)
        self.addCleanup(shutil.rmtree, d, True)
        rc, err, _ = h.run_agent_to_exit(["--listen", "127.0.0.1:%d" % h.free_port(), "--host-root", d], timeout=5)
        # Documented (README): a host root without a cgroup tree stops the
        # agent with a message and exit status 1.
        self.assertIsNotNone(rc, "agent kept running with an empty host root; stderr:\n" + err)
        self.assertEqual(rc, 1, "stderr:\n" + err)
        self.assertIn(d, err)
        self.assertIn("cgroup", err.lower())


def fake_host_root(where):
    """A tiny cgroup v2 host: one container with good values and one whose
    files are garbage."""
    root = os.path.join(where, "host")
    cg = os.path.join(root, "sys", "fs", "cgroup")
    os.makedirs(cg)
    with open(os.path.join(cg, "cgroup.controllers"), "w") as f:
        f.write("cpuset cpu io memory pids\n")

    def write(cid, files):
        d = os.path.join(cg, "docker", cid)
        os.makedirs(d, exist_ok=True)
        for name, content in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(content)
        return d
    good = write(GOOD_ID, {
        "cgroup.procs": b"",
        "memory.current": b"12345678\n",
        "memory.max": b"67108864\n",
        "memory.stat": b"anon 1000000\nfile 2000000\ninactive_file 345678\nactive_file 0\n",
        "cpu.stat": b"usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n",
        "cpu.max": b"50000 100000\n",
        "pids.current": b"3\n",
        "pids.max": b"max\n",
    })
    bad = write(FAKE_ID, {
        "cgroup.procs": b"\x00\x01\x02",
        "memory.current": b"garbage\n",
        "memory.max": b"-12x\n",
        "memory.stat": b"\xff\xfe\x00 nonsense\nanon\ninactive_file notanumber\n" + b"x" * 70000,
        "memory.events": b"oom\n\n\n",
        "cpu.stat": b"usage_usec notanumber\nuser_usec 99999999999999999999999999999\n",
        "cpu.max": b"max max max\n",
        "cpu.pressure": b"some avg10=x total=\n",
        "io.stat": b"8:0 rbytes=abc wbytes=\n259:x\n",
        "pids.current": b"",
        "pids.max": b"1 2 3\n",
    })
    return root, good, bad


def fixture_roots():
    """The unit tests' cgroup fixture trees, each a host root of its own."""
    fixtures = os.path.join(h.ROOT, "tests", "fixtures", "cgroup")
    if not os.path.isdir(fixtures):
        return []
    return [os.path.join(fixtures, n) for n in sorted(os.listdir(fixtures))
            if os.path.isdir(os.path.join(fixtures, n, "sys", "fs", "cgroup"))]


class HangingDockerSocket:
    """A unix socket server that accepts connections and never answers."""

    def __init__(self, path):
        self.path = path
        self.conns = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)           # held open, never read or written
            except socket.timeout:
                pass
            except OSError:
                return

    def close(self):
        self.stopping = True
        self.thread.join(2)
        for c in self.conns:
            c.close()
        self.sock.close()


class DegradedTest(unittest.TestCase):
    def _serves_without_docker(self, agent):
        # Interval 1s; the Docker timeout (10 s where set) is longer than
        # this window, so a tick that waited on Docker would show.
        e0 = agent.metrics()
        time.sleep(4)
        e1 = agent.metrics()
        t0, t1 = e0.value("monitor_ticks_total"), e1.value("monitor_ticks_total")
        self.assertGreaterEqual(t1 - t0, 2, "ticks %d -> %d in 4 s" % (t0, t1))
        self.assertEqual(e1.value("monitor_docker_up"), 0)
        self.assertEqual(agent.get("/-/healthy").status, 200)
        return e1

    def test_missing_docker_socket(self):
        h.require_root()
        agent = h.Agent(config="docker:\n  socket: /nonexistent.sock\n").start()
        self.addCleanup(agent.kill)
        self._serves_without_docker(agent)
        try:
            h.require_docker()
        except unittest.SkipTest:
            agent.stop()
            return
        # Containers are still collected from their cgroups, named by id
        # (README: "the name label is the id") while Docker does not answer.
        c = h.docker_run(self, "nodocker", ["sleep", "600"], ["--memory", "40m"])
        found = h.wait_for("%s in /metrics by its id" % c.name,
                           lambda: agent.metrics().get("container_spec_memory_limit_bytes", name=c.id), 5)
        self.assertEqual(found[0][1], 40 * 1024 * 1024)
        self.assertTrue(found[0][0]["id"].endswith(c.id), found)
        agent.stop()

    def test_hanging_docker_socket(self):
        d = tempfile.mkdtemp(prefix="hang-", dir="/tmp")
        self.addCleanup(shutil.rmtree, d, True)
        srv = HangingDockerSocket(os.path.join(d, "docker.sock"))
        self.addCleanup(srv.close)
        t0 = time.monotonic()
        agent = h.Agent(config="docker:\n  socket: %s\n  timeout: 10s\n" % srv.path).start()
        self.addCleanup(agent.kill)
        self.assertLess(time.monotonic() - t0, 5, "a hanging Docker socket must not delay readiness")
        h.wait_for("the agent to connect to the hanging socket", lambda: srv.conns, 5)
        self._serves_without_docker(agent)
        t = time.monotonic()
        self.assertEqual(agent.get("/metrics").status, 200)
        self.assertLess(time.monotonic() - t, 1.0, "/metrics must not wait on Docker")
        agent.stop()                         # asserts exit 0 within 5 s despite the hung request

    def test_garbage_cgroup_files(self):
        d = tempfile.mkdtemp(prefix="fakeroot-", dir=h.WORK)
        self.addCleanup(shutil.rmtree, d, True)
        root, good, bad = fake_host_root(d)
        agent = h.Agent(host_root=root).start()
        self.addCleanup(agent.kill)
        e = agent.wait_tick()
        time.sleep(1.5)
        e = agent.wait_tick()
        # The sane container is collected with the values of its files ...
        gid = "/docker/" + GOOD_ID
        self.assertEqual(e.value("container_memory_usage_bytes", id=gid), 12345678)
        self.assertEqual(e.value("container_memory_working_set_bytes", id=gid), 12345678 - 345678)
        self.assertEqual(e.value("container_spec_memory_limit_bytes", id=gid), 67108864)
        self.assertEqual(e.value("container_cpu_usage_seconds_total", id=gid, cpu="total"), 2.5)
        self.assertEqual(e.value("container_spec_cpu_quota", id=gid), 50000)
        self.assertEqual(e.value("container_pids", id=gid), 3)
        self.assertEqual(e.value("monitor_docker_up"), 0)    # no docker.sock under the fake root
        # ... and garbage yields no invented numbers, only counted errors.
        bid = "/docker/" + FAKE_ID
        for fam in ("container_memory_usage_bytes", "container_cpu_usage_seconds_total",
                    "container_spec_memory_limit_bytes", "container_pids", "container_spec_cpu_quota"):
            self.assertEqual(e.get(fam, id=bid), [], "%s from a garbage file" % fam)
        self.assertGreater(e.sum("monitor_collector_errors_total"), 0)

        # The garbage container vanishes mid-run; the good one stays.
        shutil.rmtree(bad)
        h.wait_for("the vanished container to leave /metrics",
                   lambda: not agent.metrics().get("container_memory_usage_bytes", id=bid), 5)
        # And the good one's files get truncated under the agent.
        open(os.path.join(good, "memory.current"), "w").close()
        agent.wait_tick()
        e = agent.wait_tick()
        self.assertEqual(agent.get("/-/healthy").status, 200)
        self.assertEqual(e.value("container_cpu_usage_seconds_total", id=gid, cpu="total"), 2.5)
        agent.stop()

    def test_fixture_host_roots(self):
        # The cgroup fixture trees of the unit tests (v1, v2, hybrid), each
        # a host root: the agent finds their containers and keeps ticking.
        roots = fixture_roots()
        if not roots:
            self.skipTest("no fixture trees in tests/fixtures/cgroup")
        for r in roots:
            with self.subTest(root=os.path.basename(r)):
                agent = h.Agent(host_root=r, interval="250ms").start()
                try:
                    agent.wait_tick()
                    e = agent.wait_tick()
                    self.assertGreaterEqual(e.sum("monitor_containers"), 1, "no container found under " + r)
                    self.assertTrue(e.get("container_memory_usage_bytes") or e.get("container_cpu_usage_seconds_total"))
                finally:
                    agent.stop()


if __name__ == "__main__":
    unittest.main()
