"""Container logs end to end: real Docker containers (json-file), CRI-format
files the test writes, the agent's log store over its HTTP API, and the
`monitor logs` client.

- every line a container printed, in order and complete, 16 KiB+ lines
  joined, over-long lines cut at logs.max_line with a marker;
- CRI P/F partial records joined; rotation by rename and by copy-truncate
  loses and repeats nothing;
- an agent killed (-9) mid-stream and started again: the stored sequence is
  exactly what the container printed, no duplicates, no gaps;
- bad input: binary garbage, invalid UTF-8, a 10 MiB line, malformed JSON
  records, a file deleted while read, an unreadable directory and file;
- the ingest cap: a container printing as fast as it can, the agent's CPU
  stays low and the drops are counted;
- follow mode (NDJSON and SSE streams), patterns, metrics, and `monitor
  logs` for a container that no longer exists.
"""

import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse

import harness as h

NO_EBPF = ["--no-ebpf"]


def docker(*args, timeout=60):
    r = subprocess.run([h.DOCKER] + list(args), capture_output=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("docker %s: %s" % (" ".join(args), r.stderr.decode()[-500:]))
    return r.stdout.decode().strip()


def logs(agent, **q):
    """Every line the API gives for the query, paging with after=."""
    out, after = [], 0
    while True:
        args = dict(q, limit=5000, after=after)
        r = agent.get("/api/v1/logs?" + urllib.parse.urlencode(args), timeout=20)
        if r.status != 200:
            raise AssertionError("/api/v1/logs answered %d: %r" % (r.status, r.body[:300]))
        page = r.json()["data"]["lines"]
        out += page
        if len(page) < 5000:
            return out
        after = page[-1]["seq"]


def wait_lines(agent, want, timeout=30, **q):
    """Waits until the query gives at least want lines; returns them."""
    got = []

    def enough():
        nonlocal got
        try:
            got = logs(agent, **q)
        except AssertionError:
            return False
        return len(got) >= want
    try:
        h.wait_for("%d log lines for %s" % (want, q), enough, timeout, interval=0.3)
    except AssertionError:
        raise AssertionError("only %d lines for %s; last: %r" % (len(got), q, got[-3:])) from None
    return got


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cri_line(stream, tag, msg, t=None):
    t = t or time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".%09dZ" % (time.time_ns() % 10**9)
    return "%s %s %s %s\n" % (t, stream, tag, msg)


class DockerLogs(unittest.TestCase):
    count = 0

    @classmethod
    def setUpClass(cls):
        h.require_docker()
        cls.agent = h.Agent(interval="500ms", args=NO_EBPF).start()

    @classmethod
    def tearDownClass(cls):
        cls.agent.stop()

    def run_container(self, script, *opts):
        DockerLogs.count += 1
        name = h.unique("logs%d" % DockerLogs.count)
        docker("run", "-d", "--name", name, *opts, h.IMAGE, "sh", "-c", script)
        self.addCleanup(subprocess.run, [h.DOCKER, "rm", "-f", name], capture_output=True)
        return name

    def test_order_complete_and_long_lines(self):
        # 1500 numbered lines on both streams, a 40000-byte line (three
        # 16 KiB records in the json-file) and a 100000-byte one (cut at
        # the 64 KiB cap with a marker).
        name = self.run_container(
            "for i in $(seq 1 1500); do echo \"out $i\"; echo \"err $i\" >&2; done; "
            "head -c 40000 /dev/zero | tr '\\0' a; echo; "
            "head -c 100000 /dev/zero | tr '\\0' b; echo; echo done")
        lines = wait_lines(self.agent, 3003, container=name)
        self.assertEqual(len(lines), 3003, "exactly what the container printed")
        out = [l["message"] for l in lines if l["stream"] == "stdout"]
        err = [l["message"] for l in lines if l["stream"] == "stderr"]
        self.assertEqual(out[:1500], ["out %d" % i for i in range(1, 1501)])
        self.assertEqual(err, ["err %d" % i for i in range(1, 1501)])
        self.assertEqual(out[1500], "a" * 40000, "16 KiB records joined into one line")
        # The last three stdout lines: stderr's may be stamped after them
        # (dockerd reads the two pipes apart), so not lines[-3:].
        last = [l for l in lines if l["stream"] == "stdout"][-3:]
        self.assertNotIn("truncated", last[0])
        cut = last[1]
        self.assertTrue(cut.get("truncated"))
        self.assertTrue(cut["message"].startswith("b" * 65536))
        self.assertIn("[truncated by monitor: 100000 bytes in all]", cut["message"])
        self.assertEqual(out[-1], "done")
        # seq increases: the store's order is the file's order
        seqs = [l["seq"] for l in lines]
        self.assertEqual(seqs, sorted(seqs))
        # names resolve, and ids and id prefixes too
        cid = lines[0]["id"]
        self.assertEqual(len(logs(self.agent, container=cid[:12])), 3003)

    def test_docker_rotation(self):
        # json-file rotation by dockerd itself (rename to -json.log.1, ...)
        # while the container writes: every line once, in order.
        name = self.run_container(
            "for i in $(seq 1 3000); do echo \"rotating line number $i\"; "
            "[ $((i % 100)) = 0 ] && sleep 0.1; done; sleep 30",
            "--log-opt", "max-size=20k", "--log-opt", "max-file=30")
        lines = wait_lines(self.agent, 3000, container=name, timeout=40)
        nums = [int(l["message"].rsplit(" ", 1)[1]) for l in lines]
        self.assertEqual(nums, list(range(1, 3001)))
        cid = lines[0]["id"]
        rotated = [f for f in os.listdir("/var/lib/docker/containers/" + cid)
                   if ".log." in f]
        self.assertTrue(rotated, "dockerd rotated the file (else this test proves nothing)")

    def test_levels_metrics_patterns_search(self):
        name = self.run_container(
            "for i in $(seq 1 30); do echo \"ERROR db timeout after ${i}ms\"; "
            "echo '{\"level\":\"warn\",\"msg\":\"slow\"}'; echo \"level=info msg=ok id=$i\"; "
            "echo \"[debug] tick $i\"; done; sleep 30")
        lines = wait_lines(self.agent, 120, container=name)
        levels = [l["level"] for l in lines]
        self.assertEqual(levels.count("error"), 30)
        self.assertEqual(levels.count("warn"), 30)
        self.assertEqual(levels.count("info"), 30)
        self.assertEqual(levels.count("debug"), 30)
        errs = logs(self.agent, container=name, level="error")
        self.assertEqual(len(errs), 30)
        self.assertEqual(len(logs(self.agent, container=name, level="warn+")), 60)
        found = logs(self.agent, container=name, q="timeout 17ms")
        self.assertEqual([l["message"] for l in found], ["ERROR db timeout after 17ms"])
        self.assertEqual(len(logs(self.agent, container=name, grep="after [0-9]ms$")), 9)

        def counted():
            e = self.agent.metrics()
            return e.get("container_log_lines_total", name=name, level="error", stream="stdout")
        h.wait_for("container_log_lines_total on /metrics", counted, 10)
        e = self.agent.metrics()
        self.assertEqual(e.value("container_log_lines_total", name=name, level="error",
                                 stream="stdout"), 30)
        self.assertEqual(e.value("container_log_lines_total", name=name, level="warn"), 30)
        self.assertEqual(e.value("container_log_dropped_lines_total", name=name), 0)
        self.assertGreater(e.value("container_log_bytes_total", name=name, stream="stdout"), 0)
        r = self.agent.get("/api/v1/logs/patterns?container=%s" % name)
        self.assertEqual(r.status, 200)
        pats = {p["template"]: p["count"] for p in r.json()["data"]}
        self.assertEqual(pats.get("ERROR db timeout after <num>ms"), 30, pats)
        self.assertEqual(pats.get("level=info msg=ok id=<num>"), 30, pats)

    def test_follow_streams(self):
        name = self.run_container(
            "i=0; while true; do i=$((i+1)); echo \"tick $i\"; sleep 0.2; done")
        wait_lines(self.agent, 2, container=name)
        for sse in (False, True):
            c = http.client.HTTPConnection("127.0.0.1", self.agent.port, timeout=10)
            hdr = {"Accept": "text/event-stream"} if sse else {}
            c.request("GET", "/api/v1/logs?follow=1&tail=1&container=%s" % name, headers=hdr)
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            self.assertIn("event-stream" if sse else "ndjson", r.getheader("Content-Type"))
            got, t0 = [], time.time()
            while len(got) < 6 and time.time() - t0 < 10:
                line = r.readline().decode()
                if sse and line.startswith("data: "):
                    got.append(json.loads(line[6:]))
                elif not sse and line.strip():
                    got.append(json.loads(line))
            c.close()
            self.assertEqual(len(got), 6, "new lines arrive on the stream")
            nums = [int(l["message"].split()[1]) for l in got]
            if nums != list(range(nums[0], nums[0] + 6)):
                stored = [(l["seq"], l["message"]) for l in logs(self.agent, container=name)]
                self.fail("streamed %r; stored %r" % ([(l["seq"], l["message"]) for l in got],
                                                     stored))

    def test_cli_gone_container(self):
        name = self.run_container(
            "for i in $(seq 1 20); do echo \"hello $i\"; echo \"oops $i\" >&2; done")
        wait_lines(self.agent, 40, container=name)
        docker("rm", "-f", name)
        base = [h.MONITOR, "logs", "--url", self.agent.url]
        r = subprocess.run(base + [name], capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode().splitlines(), ["hello %d" % i for i in range(1, 21)])
        self.assertEqual(r.stderr.decode().splitlines(), ["oops %d" % i for i in range(1, 21)])
        r = subprocess.run(base + ["--tail", "2", "-t", "--grep", "hello", name],
                           capture_output=True, timeout=20)
        out = r.stdout.decode().splitlines()
        self.assertEqual([l.split(" ", 1)[1] for l in out], ["hello 19", "hello 20"])
        self.assertRegex(out[0], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ")
        r = subprocess.run(base + ["--since", "1h", "--until", "1d", name], capture_output=True,
                           timeout=20)
        self.assertEqual(r.stdout.decode(), "", "--until 1d ago: nothing")
        r = subprocess.run(base + ["no-such-container-xyz"], capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no logs", r.stderr.decode())

    def test_cli_follow(self):
        name = self.run_container(
            "i=0; while true; do i=$((i+1)); echo \"beat $i\"; sleep 0.2; done")
        wait_lines(self.agent, 1, container=name)
        p = subprocess.Popen([h.MONITOR, "logs", "--url", self.agent.url, "-f", "--tail", "1",
                              name], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            got = []
            t0 = time.time()
            while len(got) < 8 and time.time() - t0 < 15:
                got.append(p.stdout.readline().decode().strip())
        finally:
            p.terminate()
            p.wait(5)
        nums = [int(l.split()[1]) for l in got]
        self.assertEqual(nums, list(range(nums[0], nums[0] + 8)))


class FileLogs(unittest.TestCase):
    """CRI files, rotation, restarts and bad input, on files the test writes."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="logs-", dir=h.WORK if os.path.isdir(h.WORK) else None)
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.pods = os.path.join(self.dir, "pods")
        self.extra = os.path.join(self.dir, "extra")
        self.dock = os.path.join(self.dir, "docker")
        self.links = os.path.join(self.dir, "containers")
        for d in (self.pods, self.extra, self.dock, self.links):
            os.makedirs(d)
        self.data = os.path.join(self.dir, "data")

    def agent(self, extra_cfg="", wrap=None):
        cfg = ("docker:\n  enabled: false\nlogs:\n  poll_interval: 50ms\n  rescan_interval: 200ms\n"
               "  docker_dir: %s\n  cri_dir: %s\n  cri_links_dir: %s\n  podman_dir: ''\n"
               "  paths: ['%s/*.log']\n%s") % (self.dock, self.pods, self.links, self.extra,
                                               extra_cfg)
        a = h.Agent(config=cfg, interval="500ms", args=NO_EBPF)
        a.cmd[a.cmd.index("--data-dir") + 1] = self.data
        os.makedirs(self.data, exist_ok=True)
        if wrap:
            a.cmd = wrap + a.cmd
        return a

    def pod_file(self, name="app"):
        d = os.path.join(self.pods, "default_web-1_0000-uid", name)
        os.makedirs(d, exist_ok=True)
        return os.path.join(d, "0.log")

    def test_cri_partials_and_rotation(self):
        path = self.pod_file()
        # the kubelet's link names the container id
        cid = "5e" * 32
        os.symlink(path, os.path.join(self.links, "web-1_default_app-%s.log" % cid))
        a = self.agent().start()
        try:
            with open(path, "w") as f:
                f.write(cri_line("stdout", "F", "first"))
                f.write(cri_line("stdout", "P", "joined-"))
                f.write(cri_line("stderr", "F", "an error between the parts"))
                f.write(cri_line("stdout", "P", "in-"))
                f.write(cri_line("stdout", "F", "three"))
            lines = wait_lines(a, 3, container="app")
            self.assertEqual([(l["stream"], l["message"]) for l in lines],
                             [("stdout", "first"), ("stderr", "an error between the parts"),
                              ("stdout", "joined-in-three")])
            self.assertEqual(lines[0]["id"], cid)
            self.assertEqual(lines[0]["name"], "app")
            n = 3
            # rotation by rename (as the kubelet does), while lines keep coming
            with open(path, "a") as f:
                for i in range(100):
                    f.write(cri_line("stdout", "F", "before-rename %d" % i))
            os.rename(path, path + ".20240101-000000")
            with open(path, "w") as f:
                for i in range(100):
                    f.write(cri_line("stdout", "F", "after-rename %d" % i))
            n += 200
            # copy-truncate (as logrotate's copytruncate)
            time.sleep(0.5)
            with open(path, "a") as f:
                for i in range(50):
                    f.write(cri_line("stdout", "F", "before-truncate %d" % i))
            time.sleep(0.5)
            shutil.copy(path, path + ".1")
            with open(path, "r+") as f:
                f.truncate(0)
            with open(path, "a") as f:
                for i in range(50):
                    f.write(cri_line("stdout", "F", "after-truncate %d" % i))
            n += 100
            lines = wait_lines(a, n, container="app")
            msgs = [l["message"] for l in lines]
            want = (["first", "an error between the parts", "joined-in-three"] +
                    ["before-rename %d" % i for i in range(100)] +
                    ["after-rename %d" % i for i in range(100)] +
                    ["before-truncate %d" % i for i in range(50)] +
                    ["after-truncate %d" % i for i in range(50)])
            self.assertEqual(msgs, want, "nothing lost, nothing twice")
        finally:
            a.stop()

    def test_podman_k8s_file(self):
        pod = os.path.join(self.dir, "podman")
        cid = "cd" * 32
        os.makedirs(os.path.join(pod, cid, "userdata"))
        with open(os.path.join(pod, cid, "userdata", "ctr.log"), "w") as f:
            f.write(cri_line("stdout", "F", "from podman"))
            f.write(cri_line("stderr", "P", "split "))
            f.write(cri_line("stderr", "F", "ERROR line"))
        cfg_podman = "  podman_dir: %s\n" % pod
        a = h.Agent(config=("docker:\n  enabled: false\nlogs:\n  poll_interval: 50ms\n"
                            "  rescan_interval: 200ms\n  docker_dir: ''\n  cri_dir: ''\n"
                            "  cri_links_dir: ''\n" + cfg_podman), interval="500ms",
                    args=NO_EBPF).start()
        try:
            got = wait_lines(a, 2, container=cid[:12])
            self.assertEqual([(l["stream"], l["message"]) for l in got],
                             [("stdout", "from podman"), ("stderr", "split ERROR line")])
            self.assertEqual(got[1]["level"], "error")
        finally:
            a.stop()

    def test_restart_no_duplicates_no_gaps(self):
        # kill -9 mid-stream; while no agent runs, more lines, then a
        # rotation by rename and more lines in the new file; a new agent
        # finishes the rotated file from the saved position, then the new.
        path = self.pod_file("counter")
        total = {"n": 0}

        def writer(f, upto):
            while total["n"] < upto:
                total["n"] += 1
                f.write(cri_line("stdout", "F", "n=%d" % total["n"]))
                if total["n"] % 50 == 0:
                    f.flush()
                    time.sleep(0.01)
            f.flush()

        # Catching up reads up to 6,000 lines at once (those written while
        # no agent ran, and those read but not stored at the kill: up to a
        # commit interval's), past the ingest cap's one-second burst; the
        # cap is test_flood_cap's.
        nocap = "  rate_limit: {lines: 0, bytes: 0}\n"
        f = open(path, "w", buffering=1 << 16)
        a = self.agent(nocap).start()
        writer(f, 3000)
        wait_lines(a, 100, container="counter")
        a.proc.kill()                 # -9: no goodbye, no last flush
        a.proc.wait()
        a.kill()
        writer(f, 5000)               # written while no agent runs
        f.close()
        os.rename(path, path + ".20240101-000000")
        f = open(path, "w", buffering=1 << 16)
        writer(f, 6000)
        b = self.agent(nocap).start()
        try:
            writer(f, 9000)
            f.close()
            lines = wait_lines(b, 9000, container="counter", timeout=40)
            nums = [int(l["message"][2:]) for l in lines]
            self.assertEqual(nums, list(range(1, 9001)), "no duplicates, no gaps")
            time.sleep(1)
            self.assertEqual(len(logs(b, container="counter")), 9000)
        finally:
            b.stop()

    def test_bad_input(self):
        cid = "ab" * 32
        ddir = os.path.join(self.dock, cid)
        os.makedirs(ddir)
        with open(os.path.join(ddir, "config.v2.json"), "w") as f:
            f.write('{"Name": "/badjson"}')
        with open(os.path.join(ddir, cid + "-json.log"), "w") as f:
            f.write('{"log":"good 1\\n","stream":"stdout","time":"2024-01-01T00:00:00.5Z"}\n')
            f.write('{"log":"broken\n')                    # malformed: kept as it is
            f.write('not json at all\n')
            f.write('{"log":"\\u001b[31mred\\u001b[0m\\n","stream":"stderr",'
                    '"time":"2024-01-01T00:00:01Z"}\n')
            f.write('{"log":"good 2\\n","stream":"stdout","time":"2024-01-01T00:00:02Z"}\n')
        with open(os.path.join(self.extra, "garbage.log"), "wb") as f:
            f.write(os.urandom(65536) + b"\n")
        with open(os.path.join(self.extra, "utf8.log"), "wb") as f:
            f.write(b"caf\xc3\xa9 ok\nbad \xff\xfe bytes\nnul \x00 and bell \x07\n")
        with open(os.path.join(self.extra, "huge.log"), "wb") as f:
            f.write(b"x" * (10 << 20) + b"\nafter huge\n")
        gone = os.path.join(self.extra, "gone.log")
        with open(gone, "w") as f:
            f.write("".join("gone %d\n" % i for i in range(100)))
        locked = os.path.join(self.pods, "default_locked_uid")
        os.makedirs(os.path.join(locked, "app"))
        with open(os.path.join(locked, "app", "0.log"), "w") as f:
            f.write(cri_line("stdout", "F", "secret"))
        os.chmod(locked, 0)
        secret_file = os.path.join(self.extra, "unreadable.log")
        with open(secret_file, "w") as f:
            f.write("hidden\n")
        os.chmod(secret_file, 0)
        self.addCleanup(os.chmod, locked, 0o755)
        readable = self.pod_file("visible")
        with open(readable, "w") as f:
            f.write(cri_line("stdout", "F", "visible line"))
        # Without CAP_DAC_OVERRIDE, as root usually has it, modes count.
        a = self.agent(wrap=["setpriv", "--bounding-set", "-dac_override,-dac_read_search"])
        a.start()
        try:
            got = wait_lines(a, 5, container="badjson")
            self.assertEqual([l["message"] for l in got],
                             ["good 1", '{"log":"broken', "not json at all",
                              "\\x1b[31mred\\x1b[0m", "good 2"])
            self.assertTrue(got[3].get("escaped"))
            self.assertEqual(got[0]["time"], "2024-01-01T00:00:00.500000000Z")
            u = wait_lines(a, 3, container="utf8.log")
            self.assertEqual(u[0]["message"], "café ok")
            self.assertNotIn("escaped", u[0])
            self.assertEqual(u[1]["message"], "bad \\xff\\xfe bytes")
            self.assertEqual(u[2]["message"], "nul \\x00 and bell \\x07")
            g = wait_lines(a, 1, container="garbage.log")
            self.assertTrue(any(l.get("escaped") for l in g), "random bytes stored escaped")
            self.assertFalse(any("\x00" in l["message"] or "\x1b" in l["message"] for l in g))
            big = wait_lines(a, 2, container="huge.log")
            self.assertTrue(big[0]["truncated"])
            self.assertEqual(len(big[0]["message"].split(" [truncated")[0]), 65536)
            self.assertIn("%d bytes in all" % (10 << 20), big[0]["message"])
            self.assertEqual(big[1]["message"], "after huge")
            wait_lines(a, 100, container="gone.log")
            os.unlink(gone)
            self.assertEqual(wait_lines(a, 1, container="visible")[0]["message"], "visible line")
            self.assertEqual(logs(a, q="secret"), [], "the unreadable pod is skipped")

            def errors():
                return a.metrics().value("monitor_log_read_errors_total") >= 1
            h.wait_for("the unreadable file counted", errors, 10)
            # /metrics shows the tick after the lines were stored
            h.wait_for("the malformed records counted",
                       lambda: a.metrics().value("monitor_log_malformed_lines_total") >= 2, 10)
            # still serving, and the deleted file is let go
            h.wait_for("the deleted file dropped",
                       lambda: a.metrics().value("monitor_log_files") == 5, 10)
        finally:
            a.stop()

    def test_flood_cap(self):
        h.require_docker()
        name = h.unique("flood")
        a = h.Agent(config="logs:\n  rate_limit:\n    lines: 2000\n    bytes: 1MiB\n",
                    interval="1s", args=NO_EBPF).start()
        try:
            docker("run", "-d", "--name", name, "--cpus", "0.5", h.IMAGE, "sh", "-c",
                   "timeout 8 yes 'flood flood flood flood flood'; sleep 60")
            self.addCleanup(subprocess.run, [h.DOCKER, "rm", "-f", name], capture_output=True)
            time.sleep(1)
            c0, t0 = cpu_seconds(a.proc.pid), time.time()
            time.sleep(5)
            c1, t1 = cpu_seconds(a.proc.pid), time.time()
            cpu = (c1 - c0) / (t1 - t0)
            e = a.metrics()
            dropped = e.value("container_log_dropped_lines_total", name=name)
            stored = e.sum("container_log_lines_total", name=name)
            self.assertGreater(dropped, 0, "the flood was capped and counted")
            self.assertLess(cpu, 0.30, "agent CPU %.0f%% of a core under a log flood" % (cpu * 100))
            elapsed = time.time() - t0 + 2
            self.assertLess(stored, 2000 * (elapsed + 2) + 2000, "stored lines within the cap")
            notes = logs(a, container=name, q="dropped ingest cap")
            self.assertTrue(notes, "a notice line says how many were dropped")
            print("flood: agent CPU %.1f%%, stored %d, dropped %d" % (cpu * 100, stored, dropped))
        finally:
            a.stop()


if __name__ == "__main__":
    unittest.main()
