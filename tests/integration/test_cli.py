"""The clients (monitor ps, stats, inspect, start/stop/...) against a real
agent and a real Docker engine, checked against `docker ps`, `docker stats`
and `docker inspect`.

One agent (interval 1s) watches containers that the class starts:
  busy    a CPU-capped busy loop (--cpus 0.5): CPU % is known
  mem     --memory 128m, 24 MiB in /dev/shm and three processes: memory,
          limit and PIDs are known
  writer  writes 8 MiB with O_DIRECT, then sleeps: BLOCK I/O is known

Tolerances, stated once (docker stats and the agent sample at different
instants): memory within 5% + 1 MiB, PIDs equal, CPU % within 15 points,
block I/O within 2% + 100 kB (both read the same settled kernel counter,
shown with 3 significant digits), limits as the same text. On its own (no
docker to compare with) the busy loop's CPU % must lie in BUSY_CPU: above 0
and at most its 50% quota plus sampling slack; it can be far below 50 when
other work holds the host's CPUs.
"""

import json
import os
import re
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import harness as h

MIB = 1024 * 1024
HEX64 = re.compile(r"[0-9a-f]{64}")
STATS_HEAD = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
              "BLOCK I/O", "PIDS"]
BUSY_CPU = (1.0, 60.0)
PS_HEAD = ["CONTAINER ID", "IMAGE", "NAME", "STATUS", "CPU %", "MEM USAGE / LIMIT", "NET I/O",
           "BLOCK I/O", "PIDS", "UPTIME", "HEALTH"]


def monitor(*args, url=None, env=None, timeout=40):
    """Runs build/monitor with args (and --url url when given); returns the
    CompletedProcess with text stdout/stderr."""
    cmd = [h.MONITOR] + list(args)
    if url:
        cmd += ["--url", url]
    e = dict(os.environ)
    e.pop("MONITOR_URL", None)
    e.pop("MONITOR_TOKEN", None)
    e.update(env or {})
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout * h.TIME_SCALE, env=e)
    h.keep_sanitizer_report(r.stderr, " ".join(cmd))
    return r


def post(url, headers=None):
    """POST with an empty body; returns the status (4xx/5xx included)."""
    req = urllib.request.Request(url, data=b"", method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def table(text):
    """A table as the clients print it: columns three or more spaces apart.
    Returns (header cells, [row cells])."""
    lines = [l for l in text.split("\n") if l.strip()]
    rows = [re.split(r" {2,}", l.strip()) for l in lines]
    return rows[0], rows[1:]


def close(a, b, rel, abs_):
    return abs(a - b) <= rel * max(a, b) + abs_


class CliTest(unittest.TestCase):
    agent = None
    containers = []

    @classmethod
    def setUpClass(cls):
        h.require_docker()
        cls.containers = []
        cls.agent = h.Agent().start()
        try:
            run = lambda name, cmd, opts=(): h.docker_run(cls.containers, name, cmd, opts)
            cls.busy = run("cli-busy", ["sh", "-c", "while :; do :; done"], ["--cpus", "0.5"])
            cls.mem = run("cli-mem", ["sh", "-c", "head -c 25165824 /dev/zero > /dev/shm/fill && "
                                      "sleep 600 & sleep 600 & exec sleep 600"], ["--memory", "128m"])
            cls.writer = run("cli-writer", ["sh", "-c", "dd if=/dev/zero of=/f bs=1M count=8 oflag=direct"
                                            " 2>/dev/null || dd if=/dev/zero of=/f bs=1M count=8 conv=fsync;"
                                            " exec sleep 600"])
            mine = [cls.busy, cls.mem, cls.writer]

            def ready():
                by_name = {c["name"]: c for c in cls.agent.containers()}
                return all(c.name in by_name and "container_pids" in by_name[c.name]["values"]
                           for c in mine)
            try:
                h.wait_for("the test containers with values in /api/v1/containers", ready, 15)
            except AssertionError as e:
                raise AssertionError("%s; the agent's last words:\n%s"
                                     % (e, cls.agent.stderr()[-1500:])) from None
            # the writer has written and the shm file is filled
            h.wait_for("cli-mem to hold 24 MiB", lambda: cls._mem_filled(), 15)
            h.wait_for("cli-writer to finish writing", lambda: "sleep" in h.docker(
                "top", cls.writer.id), 20)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _mem_filled(cls):
        c = cls.agent.container(cls.mem.name)
        return c and c["values"].get("container_memory_working_set_bytes", 0) > 24 * MIB \
            and c["values"].get("container_pids") == 3

    @classmethod
    def tearDownClass(cls):
        for c in cls.containers:
            h.docker_rm(c)
        cls.containers = []
        if cls.agent:
            agent, cls.agent = cls.agent, None
            agent.stop()

    def cli(self, *args, **kw):
        return monitor(*args, url=self.agent.url, **kw)

    def ok(self, *args, **kw):
        r = self.cli(*args, **kw)
        self.assertEqual(r.returncode, 0, "monitor %s: exit %d, stderr: %s" % (" ".join(args), r.returncode, r.stderr))
        return r

    # ---- ps -------------------------------------------------------------------

    def test_ps_lists_test_containers(self):
        r = self.ok("ps")
        head, rows = table(r.stdout)
        self.assertEqual(head, PS_HEAD)
        by_name = {row[2]: row for row in rows if len(row) == len(PS_HEAD)}
        for c in (self.busy, self.mem, self.writer):
            self.assertIn(c.name, by_name, "ps does not list %s:\n%s" % (c.name, r.stdout))
            row = by_name[c.name]
            self.assertEqual(row[0], c.id[:12])
            self.assertEqual(row[1], h.IMAGE)
            self.assertRegex(row[3], r"^Up (\d+ seconds|About a minute|\d+ minutes)$")
            self.assertRegex(row[9], r"^\d+(s|m\d\ds)$")
        self.assertEqual(by_name[self.mem.name][8], "3")
        self.assertTrue(by_name[self.mem.name][5].endswith(" / 128MiB"), by_name[self.mem.name])
        cpu = float(by_name[self.busy.name][4].rstrip("%"))
        self.assertTrue(BUSY_CPU[0] <= cpu <= BUSY_CPU[1], "busy loop under --cpus 0.5 shows %.2f%% CPU" % cpu)
        # the same names and images as docker ps
        dps = {}
        for line in h.docker("ps", "--no-trunc", "--format", "{{.Names}}\t{{.Image}}\t{{.ID}}").splitlines():
            name, image, cid = line.split("\t")
            dps[name] = (image, cid)
        for c in (self.busy, self.mem, self.writer):
            self.assertEqual(dps[c.name], (by_name[c.name][1], c.id))

    def test_ps_json(self):
        r = self.ok("ps", "--format", "json")
        rows = {}
        for line in r.stdout.splitlines():
            o = json.loads(line)
            rows[o["name"]] = o
        started = time.time()
        for c in (self.busy, self.mem, self.writer):
            o = rows[c.name]
            self.assertEqual(o["id"], c.id)
            self.assertEqual(o["image"], h.IMAGE)
            self.assertEqual(o["state"], "running")
            self.assertTrue(0 <= o["uptime_seconds"] <= started - c.started + 60, o)
        self.assertEqual(rows[self.mem.name]["memory_limit_bytes"], 128 * MIB)
        self.assertEqual(rows[self.mem.name]["pids"], 3)
        self.assertTrue(BUSY_CPU[0] <= rows[self.busy.name]["cpu_percent"] <= BUSY_CPU[1], rows[self.busy.name])

    def test_ps_quiet_and_no_trunc(self):
        short = self.ok("ps", "-q").stdout.split()
        full = self.ok("ps", "-q", "--no-trunc").stdout.split()
        for c in (self.busy, self.mem, self.writer):
            self.assertIn(c.id[:12], short)
            self.assertIn(c.id, full)
        self.assertTrue(all(len(i) <= 12 for i in short))
        r = self.ok("ps", "--no-trunc")
        self.assertIn(self.busy.id, r.stdout)

    def test_ps_all_shows_exited(self):
        c = h.docker_run(self, "cli-exited", ["sh", "-c", "exit 3"])
        h.wait_for("cli-exited to exit", lambda: not c.inspect()["State"]["Running"], 10)
        time.sleep(2.5)   # two ticks
        entry = self.agent.container(c.name)
        if not entry or entry.get("state") != "exited":
            self.skipTest("the agent does not keep exited containers yet (%s)" %
                          ("state %r" % entry.get("state") if entry else "not listed"))
        self.assertNotIn(c.name, self.ok("ps").stdout)
        head, rows = table(self.ok("ps", "-a").stdout)
        row = [r for r in rows if len(r) == len(PS_HEAD) and r[2] == c.name]
        self.assertEqual(len(row), 1, rows)
        self.assertRegex(row[0][3], r"^Exited \(3\)")

    def test_ps_health(self):
        c = h.docker_run(self, "cli-health", ["sleep", "600"],
                         ["--health-cmd", "true", "--health-interval", "1s"])
        h.wait_for("docker to call cli-health healthy",
                   lambda: c.inspect()["State"].get("Health", {}).get("Status") == "healthy", 20)
        h.wait_for("the agent to call cli-health healthy",
                   lambda: (self.agent.container(c.name) or {}).get("health") == "healthy", 10)
        head, rows = table(self.ok("ps").stdout)
        row = [r for r in rows if len(r) == len(PS_HEAD) and r[2] == c.name]
        self.assertEqual(len(row), 1, rows)
        self.assertRegex(row[0][3], r"^Up .* \(healthy\)$")
        self.assertEqual(row[0][10], "healthy")
        self.assertEqual([r for r in rows if r[2] == self.busy.name][0][10], "-")

    # ---- stats ----------------------------------------------------------------

    def _both_stats(self, names):
        """docker stats --no-stream and monitor stats --no-stream, run at the
        same time. Returns ({name: docker json}, {name: monitor row dict})."""
        out = {}

        def docker_side():
            out["docker"] = h.docker("stats", "--no-stream", "--format", "{{json .}}", *names)
        t = threading.Thread(target=docker_side)
        t.start()
        r = self.cli("stats", "--no-stream", *names)
        t.join(60)
        self.assertEqual(r.returncode, 0, r.stderr)
        head, rows = table(r.stdout)
        self.assertEqual(head, STATS_HEAD)
        mine = {row[1]: dict(zip(STATS_HEAD, row)) for row in rows}
        theirs = {}
        for line in out["docker"].splitlines():
            o = json.loads(line)
            theirs[o["Name"]] = o
        return theirs, mine

    def test_stats_matches_docker_stats(self):
        names = [self.busy.name, self.mem.name, self.writer.name]
        theirs, mine = self._both_stats(names)
        self.assertEqual(sorted(mine), sorted(names))
        for n in names:
            d, m = theirs[n], mine[n]
            self.assertEqual(m["CONTAINER ID"], d["ID"][:12])
            d_use, d_lim = [s.strip() for s in d["MemUsage"].split("/")]
            m_use, m_lim = [s.strip() for s in m["MEM USAGE / LIMIT"].split("/")]
            self.assertEqual(m_lim, d_lim, "%s: limit" % n)
            self.assertTrue(close(h.parse_size(m_use), h.parse_size(d_use), 0.05, MIB),
                            "%s: MEM USAGE %s vs docker %s" % (n, m_use, d_use))
            self.assertTrue(close(float(m["MEM %"].rstrip("%")), float(d["MemPerc"].rstrip("%")),
                                  0.05, 100.0 * MIB / h.parse_size(d_lim)),
                            "%s: MEM %% %s vs docker %s" % (n, m["MEM %"], d["MemPerc"]))
            self.assertEqual(m["PIDS"], d["PIDs"], "%s: PIDS" % n)
            if m["NET I/O"] != "--":
                for a, b in zip(m["NET I/O"].split("/"), d["NetIO"].split("/")):
                    self.assertTrue(close(h.parse_size(a), h.parse_size(b), 0.10, 2000),
                                    "%s: NET I/O %s vs docker %s" % (n, m["NET I/O"], d["NetIO"]))
        cpu_m = float(mine[self.busy.name]["CPU %"].rstrip("%"))
        cpu_d = float(theirs[self.busy.name]["CPUPerc"].rstrip("%"))
        self.assertLessEqual(abs(cpu_m - cpu_d), 15, "CPU %% %.2f vs docker %.2f" % (cpu_m, cpu_d))
        self.assertTrue(BUSY_CPU[0] <= cpu_m <= BUSY_CPU[1], "--cpus 0.5 busy loop at %.2f%%" % cpu_m)
        self.assertEqual(mine[self.mem.name]["MEM USAGE / LIMIT"].split("/")[1].strip(), "128MiB")
        self.assertEqual(mine[self.mem.name]["PIDS"], "3")

    def test_stats_block_io_matches_docker_stats(self):
        # the writer's settled counter, when the kernel attributes it
        theirs, mine = self._both_stats([self.writer.name])
        d_r, d_w = [h.parse_size(s) for s in theirs[self.writer.name]["BlockIO"].split("/")]
        m_r, m_w = [h.parse_size(s) for s in mine[self.writer.name]["BLOCK I/O"].split("/")]
        if d_w == 0:
            self.skipTest("docker stats shows no block writes for an 8 MiB direct write on this "
                          "storage driver; block I/O not compared")
        self.assertGreaterEqual(m_w, 8 * MIB * 0.98)
        self.assertTrue(close(m_w, d_w, 0.02, 100e3), "BLOCK I/O write %s vs docker %s" % (m_w, d_w))
        self.assertTrue(close(m_r, d_r, 0.02, 100e3), "BLOCK I/O read %s vs docker %s" % (m_r, d_r))

    def test_stats_json_and_prefix(self):
        r = self.ok("stats", "--no-stream", "--format", "json", self.mem.id[:10], self.busy.name)
        rows = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertEqual([o["id"] for o in rows], [self.mem.id, self.busy.id])
        mem = rows[0]
        self.assertEqual(mem["memory_limit_bytes"], 128 * MIB)
        self.assertAlmostEqual(mem["memory_percent"], mem["memory_usage_bytes"] / (128 * MIB) * 100, 6)
        self.assertGreater(mem["memory_usage_bytes"], 24 * MIB)
        self.assertEqual(mem["pids"], 3)

    def test_stats_streams_every_tick(self):
        p = subprocess.Popen([h.MONITOR, "stats", "--url", self.agent.url, self.busy.name],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(4.5)
        finally:
            p.terminate()
            out, err = p.communicate(10)
        frames = out.count("CONTAINER ID")
        self.assertTrue(3 <= frames <= 6, "%d frames in 4.5 s with a 1 s agent:\n%s%s" % (frames, out, err))
        cpus = [float(row[2].rstrip("%")) for row in
                (re.split(r" {2,}", l.strip()) for l in out.splitlines())
                if len(row) == len(STATS_HEAD) and row[1] == self.busy.name]
        self.assertGreaterEqual(len(cpus), 3)
        self.assertTrue(all(BUSY_CPU[0] <= c <= BUSY_CPU[1] for c in cpus), cpus)
        self.assertNotIn("\033[2J", out)   # no screen clearing when not a terminal

    def test_stats_row_stays_when_container_goes(self):
        c = h.docker_run(self, "cli-goes", ["sleep", "600"])
        # Collected, not only known from Docker's metadata: the first frame
        # needs a CPU counter in two ticks.
        h.wait_for("cli-goes collected by the agent",
                   lambda: "container_cpu_usage_seconds_total" in
                   ((self.agent.container(c.name) or {}).get("values") or {}), 10)
        self.agent.wait_tick()
        p = subprocess.Popen([h.MONITOR, "stats", "--url", self.agent.url, c.name],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []

        def read():
            for line in p.stdout:
                lines.append(line)
        reader = threading.Thread(target=read, daemon=True)
        reader.start()

        def rows():
            """The container's row of each frame printed so far."""
            return [re.split(r" {2,}", l.strip()) for l in list(lines)
                    if not l.startswith("CONTAINER ID") and l.strip()]
        try:
            # Frames as they come, not fixed sleeps: two with numbers, then
            # the removal, then two that show it gone.
            h.wait_for("two frames of %s" % c.name, lambda: len(rows()) >= 2, 15)
            h.docker_rm(c)
            h.wait_for("two frames showing %s gone" % c.name,
                       lambda: [r[2:3] for r in rows()[-2:]] == [["--"], ["--"]], 15)
        finally:
            p.terminate()
            p.wait(10)
            reader.join(5)
            err = p.stderr.read()
        out = "".join(lines)
        frames = [f for f in out.split("CONTAINER ID") if f.strip()]
        self.assertGreaterEqual(len(frames), 4, out + err)
        first = re.split(r" {2,}", frames[0].strip().splitlines()[1].strip())
        last = re.split(r" {2,}", frames[-1].strip().splitlines()[1].strip())
        self.assertEqual(first[:2], [c.id[:12], c.name])
        self.assertRegex(first[2], r"^\d+\.\d\d%$")
        self.assertEqual(last[:3], [c.id[:12], c.name, "--"], "last frame: %r" % frames[-1])
        self.assertEqual(last[-1], "--")

    # ---- inspect -------------------------------------------------------------

    def test_inspect(self):
        r = self.ok("inspect", self.mem.name)
        doc = json.loads(r.stdout)
        self.assertEqual(len(doc), 1)
        o = doc[0]
        self.assertEqual(o["id"], self.mem.id)
        self.assertEqual(o["name"], self.mem.name)
        self.assertEqual(o["image"], h.IMAGE)
        self.assertEqual(o["values"]["container_spec_memory_limit_bytes"], 128 * MIB)
        self.assertTrue(any(s["metric"] == "container_pids" for s in o["series"]))
        # other endpoints are folded in when the agent has them
        cid = self.mem.id
        for key, path in (("processes", "/api/v1/containers/%s/processes" % cid),
                          ("network", "/api/v1/containers/%s/ports" % cid),
                          ("events", "/api/v1/events?container=%s" % cid)):
            st = self.agent.get(path).status
            if st == 200:
                self.assertIn(key, o, "%s answers 200 but inspect has no %r" % (path, key))
        # by prefix and by full id, several at once
        r = self.ok("inspect", self.busy.id[:8], self.mem.id)
        self.assertEqual([o["id"] for o in json.loads(r.stdout)], [self.busy.id, self.mem.id])

    def test_inspect_right_after_start(self):
        # The agent sees a new container at its next tick; the client waits
        # for that tick before it calls an id unknown.
        c = h.docker_run(self, "cli-new", ["sleep", "600"])
        r = self.ok("inspect", c.name)
        self.assertEqual(json.loads(r.stdout)[0]["id"], c.id)

    def test_unknown_id(self):
        bogus = h.unique("no-such-container")
        cases = (["inspect", bogus], ["stats", "--no-stream", bogus], ["stop", bogus],
                 ["inspect", self.busy.name, bogus])
        # Each waits up to 3 s of ticks for the id to show up: run them together.
        t0 = time.monotonic()
        procs = [subprocess.Popen([h.MONITOR] + args + ["--url", self.agent.url], text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for args in cases]
        results = [p.communicate(30) + (p.returncode,) for p in procs]
        took = time.monotonic() - t0
        for args, (out, err, rc) in zip(cases, results):
            self.assertEqual(rc, 1, "%s: %s" % (args, err))
            self.assertIn('no such container: "%s"' % bogus, err)
            self.assertEqual(err.count("\n"), 1, err)
        self.assertEqual([r[0].strip() for r in results[:3]], ["[]", "", ""])
        # inspect prints what it found and fails for the rest, as docker
        self.assertEqual([o["id"] for o in json.loads(results[3][0])], [self.busy.id])
        self.assertLess(took, 10, "an unknown id took %.1f s to report" % took)

    def test_ambiguous_prefix(self):
        # Start containers until two of ours share a first id character (at
        # most 17: there are 16 hex digits).
        ours = [self.busy, self.mem, self.writer]
        pair = None
        for i in range(17):
            firsts = {}
            for c in ours:
                firsts.setdefault(c.id[0], []).append(c)
            pair = next((v for v in firsts.values() if len(v) >= 2), None)
            if pair:
                break
            ours.append(h.docker_run(self, "cli-amb%d" % i, ["sleep", "600"]))
        prefix = pair[0].id[0]
        h.wait_for("the extra containers in the agent",
                   lambda: all(self.agent.container(c.name) for c in ours), 10)
        r = self.cli("inspect", prefix)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn('"%s" is ambiguous' % prefix, r.stderr)
        for c in pair:
            self.assertIn(c.id, r.stderr)
            self.assertIn(c.name, r.stderr)
        # a longer, unique prefix of the same id resolves
        r = self.ok("inspect", pair[0].id[:12])
        self.assertEqual(json.loads(r.stdout)[0]["id"], pair[0].id)

    # ---- the connection -------------------------------------------------------

    def test_agent_down(self):
        port = h.free_port()
        url = "http://127.0.0.1:%d" % port
        want = ("cannot reach the agent at %s: connection refused \u2014 is `monitor agent` running?"
                % url)
        for args in (["ps"], ["stats", "--no-stream"], ["inspect", "x"], ["stop", "x"]):
            r = monitor(*args, url=url)
            self.assertEqual(r.returncode, 1, args)
            self.assertEqual(r.stderr, "monitor %s: %s\n" % (args[0], want))
            self.assertEqual(r.stdout, "")
        # MONITOR_URL is the default
        r = monitor("ps", env={"MONITOR_URL": url})
        self.assertEqual(r.stderr, "monitor ps: %s\n" % want)
        r = monitor("ps", "-q", env={"MONITOR_URL": self.agent.url})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(self.busy.id[:12], r.stdout)

    def test_bad_usage(self):
        for args in (["ps", "--bogus"], ["ps", "extra"], ["inspect"], ["stats", "--format", "yaml"],
                     ["stop"], ["ps", "--timeout", "soon"], ["kill", "-t", "1", "x"],
                     ["stop", "-s", "TERM", "x"], ["stop", "-t", "soon", "x"]):
            r = self.cli(*args)
            self.assertEqual(r.returncode, 2, "%s: %s" % (args, r.stderr))
            self.assertTrue(r.stderr.strip(), args)
        r = self.cli("stop", self.busy.name, "--token-file", "/nonexistent/token")
        self.assertEqual(r.returncode, 1)
        self.assertIn("--token-file /nonexistent/token: No such file or directory", r.stderr)

    # ---- actions ---------------------------------------------------------------

    def test_actions(self):
        st = post(self.agent.url + "/api/v1/containers/%s/stop" % self.busy.id)
        if st in (404, 405):
            self.skipTest("the agent has no container actions yet (POST .../stop answered %d)" % st)
        self.assertIn(st, (401, 403), "POST .../stop on an agent without auth.admin_token_file "
                                      "must be refused")
        self.assertTrue(self.busy.inspect()["State"]["Running"])

        d = tempfile.mkdtemp(prefix="cli-", dir=h.WORK)
        token = "cli-test-token-%s-0123456789" % h.RUN_TAG
        token_file = os.path.join(d, "token")
        with open(os.open(token_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(token + "\n")
        agent = h.Agent(config="auth:\n  admin_token_file: %s\n" % token_file).start()
        self.addCleanup(agent.kill)
        c = h.docker_run(self, "cli-act", ["sleep", "600"])
        h.wait_for("cli-act in the agent", lambda: agent.container(c.name), 10)
        run = lambda *a, **kw: monitor(*a, url=agent.url, **kw)
        state = lambda: c.inspect()["State"]

        r = run("stop", c.name)
        self.assertEqual(r.returncode, 1)
        self.assertIn("401", r.stderr)
        self.assertIn("--token-file", r.stderr)
        self.assertTrue(state()["Running"])
        r = run("stop", c.name, env={"MONITOR_TOKEN": "wrong"})
        self.assertEqual(r.returncode, 1)
        self.assertIn("refused", r.stderr)
        self.assertTrue(state()["Running"])

        r = run("stop", "-t", "1", c.id[:12], "--token-file", token_file)
        self.assertEqual((r.returncode, r.stdout), (0, c.id[:12] + "\n"), r.stderr)
        self.assertFalse(state()["Running"])
        r = run("start", c.name, "--token-file", token_file)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(state()["Running"])
        r = run("pause", c.name, env={"MONITOR_TOKEN": token})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(state()["Paused"])
        r = run("unpause", c.name, "--token-file", token_file)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(state()["Paused"])
        pid = state()["Pid"]
        r = run("restart", "--time", "1", c.name, "--token-file", token_file)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(state()["Running"])
        self.assertNotEqual(state()["Pid"], pid)
        r = run("kill", "-s", "TERM", c.name, "--token-file", token_file)
        self.assertEqual(r.returncode, 0, r.stderr)
        time.sleep(0.5)
        self.assertTrue(state()["Running"], "sleep as pid 1 ignores SIGTERM")
        r = run("kill", c.name, "--token-file", token_file)
        self.assertEqual(r.returncode, 0, r.stderr)
        h.wait_for("cli-act to be killed", lambda: not state()["Running"], 10)
        agent.stop()


if __name__ == "__main__":
    unittest.main()
