"""monitor top driven in a real terminal (tmux: new-session, send-keys,
capture-pane) against a real agent and real Docker containers.

Containers the class starts:
  zbusy   a CPU-capped busy loop (--cpus 0.5): sorting by CPU puts it first
  idle    prints "top-line N" every 0.2 s, has a plain and a secret-looking
          variable in its environment, a label, and exits on SIGTERM
  mem     --memory 64m with three sleeping processes: PIDs and the limit
          are known and stable

Names sort as idle < mem < zbusy, so a name sort and a CPU sort give
different first rows. Numbers on screen are checked against the agent's
own /api/v1/containers (top shows the agent's numbers): PIDs exactly,
memory within the rounding of its two significant digits (6 %) plus 64 KiB
for what changed between the two reads. Each test runs top in its own tmux
session on a tmux server of this run (-L), so nothing touches the user's.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.request

import harness as h

KIB = 1024
TOP_COL_IMAGE = 12          # its place in the column chooser (agent/top.h)
TOKEN = "top-test-admin-token-0123456789abcdef"
SPARK = re.compile("[\u2581-\u2588]")


def parse_binary(s):
    """'580K', '1.0M', '64M', '2.0G', '512' -> bytes (top's binary units)."""
    m = re.fullmatch(r"([0-9.]+)([KMGTP]?)", s)
    if not m:
        raise ValueError("not a size: %r" % s)
    return float(m.group(1)) * 1024 ** " KMGTP".index(m.group(2) or " ")


class Term:
    """One tmux session running a command, on this run's tmux server."""
    seq = 0

    def __init__(self, server, cmd, width=200, height=50):
        Term.seq += 1
        self.server = server
        self.name = "top%d" % Term.seq
        env = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8", TERM="xterm-256color")
        env.pop("MONITOR_TOKEN", None)
        env.pop("MONITOR_URL", None)
        env["MONITOR_TOP_CONFIG"] = os.path.join(h.WORK, "top-%s-none.conf" % h.RUN_TAG)
        subprocess.run(["tmux", "-u", "-L", server, "new-session", "-d", "-s", self.name,
                        "-x", str(width), "-y", str(height), cmd], check=True, env=env,
                       timeout=10)

    def tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.server] + list(args), capture_output=True,
                              text=True, timeout=10)

    def keys(self, *keys, literal=False):
        self.tmux("send-keys", "-t", self.name, *((["-l"] if literal else []) + list(keys)))

    def text(self):
        return self.tmux("capture-pane", "-p", "-t", self.name).stdout

    def wait(self, what, pred, timeout=15):
        last = [""]

        def probe():
            last[0] = self.text()
            return pred(last[0])
        try:
            h.wait_for(what, probe, timeout, interval=0.2)
        except AssertionError as e:
            raise AssertionError("%s; the screen:\n%s" % (e, last[0])) from None
        return last[0]

    def resize(self, w, hgt):
        self.tmux("resize-window", "-t", self.name, "-x", str(w), "-y", str(hgt))

    def alive(self):
        return self.tmux("has-session", "-t", self.name).returncode == 0

    def pane_pid(self):
        r = self.tmux("list-panes", "-t", self.name, "-F", "#{pane_pid}")
        return int(r.stdout.split()[0])

    def kill(self):
        self.tmux("kill-session", "-t", self.name)


def start_agent(**kw):
    """An agent without eBPF (top needs none of it), given 30 s to become
    ready: on a host loaded by other suites the first tick can be slow."""
    a = h.Agent(args=["--no-ebpf"], **kw)
    a.start(wait_ready=False)
    try:
        a.wait_ready(timeout=30)
    except BaseException as e:
        tail = a.stderr()[-2000:]
        a.kill()
        raise AssertionError("%s; agent stderr:\n%s" % (e, tail)) from None
    return a


def row_of(screen, name):
    """The screen line that shows container name, or None."""
    for line in screen.split("\n"):
        # a row: the status glyphs, then the name (not the header's "filter: name")
        if re.match(r"^\S{0,2}\s+%s(\s|$)" % re.escape(name), line):
            return line
    return None


ROW = re.compile(r"\s(?P<name>\S+)\s+\[[| ]*\]\s+(?P<cpu>[-0-9.]+)\s+(?P<cpul>\S+)\s+"
                 r"\[[| ]*\]\s+(?P<mem>\S+)/(?P<lim>\S+)\s+(?P<net>\S+)\s+(?P<io>\S+)\s+"
                 r"(?P<pids>\S+)\s+(?P<rst>\S+)\s+(?P<up>\S+)")


class TopTest(unittest.TestCase):
    agent = None
    containers = []
    server = None

    @classmethod
    def setUpClass(cls):
        h.require_docker()
        h.require_binary("tmux")
        cls.server = "monitor-it-%s" % h.RUN_TAG
        # a session that outlives the tests' own, so the tmux server does not
        # exit (and race the next new-session) when a test's session ends
        subprocess.run(["tmux", "-L", cls.server, "new-session", "-d", "-s", "keep",
                        "sleep 3600"], check=True, timeout=10)
        cls.containers = []
        os.makedirs(h.WORK, exist_ok=True)
        cls.tokdir = tempfile.mkdtemp(prefix="top-token-", dir=h.WORK)
        cls.token_path = os.path.join(cls.tokdir, "token")
        with open(cls.token_path, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(cls.token_path, 0o600)
        # An alert that fires (for: 0) on the busy container, to show and silence.
        cls.rules_path = os.path.join(cls.tokdir, "rules.yml")
        with open(cls.rules_path, "w") as f:
            f.write("""groups:
- name: top
  interval: 1s
  rules:
  - alert: TopTestBusy
    expr: rate(container_cpu_usage_seconds_total{name="%s"}[5s]) > 0.02
    labels:
      severity: warning
    annotations:
      summary: '{{ $labels.name }} is busy'
""" % h.unique("top-zbusy"))
        # Forecasts refitted every 2 s, so the detail view has some to show.
        # No default rules: their ContainerCPUThrottlingHigh goes pending on
        # the capped busy loop a minute in, and a row shows its most urgent
        # alert (pending before silenced), which would hide the silence.
        cls.agent = start_agent(config="auth:\n  admin_token_file: %s\nrule_files: [%s]\n"
                                "default_rules: false\n"
                                "forecast:\n  interval: 2s\n  window: 1m\n  min_points: 3\n"
                                % (cls.token_path, cls.rules_path))
        try:
            run = lambda name, cmd, opts=(): h.docker_run(cls.containers, name, cmd, opts)
            cls.busy = run("top-zbusy", ["sh", "-c", "while :; do :; done"], ["--cpus", "0.5"])
            cls.idle = run("top-idle", ["sh", "-c", "trap 'exit 0' TERM; i=0; while :; do "
                                        "echo top-line $i; i=$((i+1)); sleep 0.2; done"],
                           ["-e", "PLAIN_VAR=hello-plain", "-e", "SECRET_TOKEN=abc-secret-xyz",
                            "--label", "tier=front",
                            "--label", "com.docker.compose.project=topproj"])
            cls.mem = run("top-mem", ["sh", "-c", "sleep 600 & sleep 600 & exec sleep 600"],
                          ["--memory", "64m", "--label", "com.docker.compose.project=topproj"])
            cls.mine = [cls.busy, cls.idle, cls.mem]
            cls.prefix = h.unique("top-")

            def ready():
                by = {c["name"]: c for c in cls.agent.containers()}
                return all(c.name in by and "container_pids" in by[c.name]["values"]
                           for c in cls.mine) and by[cls.mem.name]["values"]["container_pids"] == 3
            h.wait_for("the test containers in /api/v1/containers", ready, 20)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.server:
            subprocess.run(["tmux", "-L", cls.server, "kill-server"], capture_output=True)
        for c in cls.containers:
            h.docker_rm(c)
        cls.containers = []
        if cls.agent:
            agent, cls.agent = cls.agent, None
            agent.stop()
        shutil.rmtree(getattr(cls, "tokdir", ""), ignore_errors=True)

    def top(self, *args, width=200, height=50, url=None, shell_after=False):
        """Starts monitor top in a new tmux session; stopped at the test's end."""
        cmd = "%s top --url %s %s" % (h.MONITOR, url or self.agent.url,
                                      " ".join("'%s'" % a for a in args))
        if shell_after:
            cmd = "sh -c \"%s; echo TOP-EXIT=\\$?; stty -a; sleep 120\"" % cmd
        t = Term(self.server, cmd, width, height)
        self.addCleanup(t.kill)
        return t

    def shows_all(self, t, names, timeout=15):
        return t.wait("%s on screen with numbers" % ", ".join(names),
                      lambda s: all(row_of(s, n) and re.search(r"\d\.\d", row_of(s, n))
                                    for n in names), timeout)

    # ---- the list ---------------------------------------------------------------------------

    def test_list_numbers_match_the_api(self):
        t = self.top("--filter", self.prefix)
        screen = self.shows_all(t, [c.name for c in self.mine])
        api = {c["name"]: c for c in self.agent.containers()}
        m = ROW.search(row_of(screen, self.mem.name))
        self.assertIsNotNone(m, "cannot read the row of %s:\n%s" % (self.mem.name, screen))
        vals = api[self.mem.name]["values"]
        self.assertEqual(int(m.group("pids")), int(vals["container_pids"]))
        self.assertEqual(m.group("lim"), "64M")
        used = parse_binary(m.group("mem"))
        want = vals["container_memory_working_set_bytes"]
        self.assertLessEqual(abs(used - want), 0.06 * want + 64 * KIB,
                             "memory on screen %s, API %d" % (m.group("mem"), want))
        self.assertEqual(m.group("rst"), str(api[self.mem.name]["restart_count"]))
        b = ROW.search(row_of(screen, self.busy.name))
        self.assertIsNotNone(b, screen)
        cpu = float(b.group("cpu"))
        self.assertTrue(0 < cpu <= 60, "busy loop with --cpus 0.5 at %s%%" % cpu)
        # the quota share: CPU % / 0.5 cores
        self.assertAlmostEqual(float(b.group("cpul")), cpu / 0.5, delta=max(2, cpu * 0.05))
        # header and totals
        self.assertIn("containers", screen)
        self.assertRegex(screen, r"CPU [0-9.]+% of \d+")
        self.assertRegex(screen, r"TOTAL \(3\)")

    def test_colour_thresholds_and_no_color(self):
        red = re.compile(r"\x1b\[(?:[0-9]+;)*31(?:;[0-9]+)*m")
        colour = re.compile(r"\x1b\[(?:[0-9]+;)*3[0-7](?:;[0-9]+)*m")

        def styled(t):
            return t.tmux("capture-pane", "-p", "-e", "-t", t.name).stdout

        def row(text, name):
            return next((l for l in text.split("\n") if name in l and "filter:" not in l), "")
        # thresholds at 1 % and 2 % of the limit: the busy loop's CPU is red
        t = self.top("--filter", self.prefix, "--warn", "1", "--crit", "2")
        self.shows_all(t, [c.name for c in self.mine])
        h.wait_for("the busy row in red", lambda: red.search(row(styled(t), self.busy.name)), 15)
        self.assertIsNone(red.search(row(styled(t), self.mem.name)))   # 0 % CPU, 1 % memory
        t2 = self.top("--filter", self.prefix, "--warn", "1", "--crit", "2", "--no-color")
        self.shows_all(t2, [c.name for c in self.mine])
        self.assertIsNone(colour.search(styled(t2)), "colours with --no-color")

    def test_sort_by_cpu_puts_the_busy_container_first(self):
        t = self.top("--filter", self.prefix)
        self.shows_all(t, [c.name for c in self.mine])

        def first_row(s):
            lines = s.split("\n")
            for i, l in enumerate(lines):
                if l.lstrip().startswith("ST ") or " NAME " in l:
                    return lines[i + 1]
            return ""
        t.keys("n")
        t.wait("name sort: idle first", lambda s: self.idle.name in first_row(s))
        t.keys("c")
        s = t.wait("CPU sort: zbusy first", lambda s: self.busy.name in first_row(s))
        self.assertRegex(s, r"CPU%v")           # the sort marker on the CPU title
        t.keys("R")
        t.wait("reversed: zbusy not first", lambda s: self.busy.name not in first_row(s))

    def test_filter_hides_the_rest(self):
        t = self.top("--filter", self.prefix)
        self.shows_all(t, [c.name for c in self.mine])
        t.keys("/")
        t.keys("C-u")
        t.keys(self.prefix + "zbu", literal=True)
        t.keys("Enter")
        s = t.wait("only zbusy left", lambda s: row_of(s, self.busy.name) and
                   not row_of(s, self.idle.name) and not row_of(s, self.mem.name))
        self.assertRegex(s, r"TOTAL \(1\)")
        self.assertIn("filter: " + self.prefix + "zbu", s)
        # a label filter and its inverse (^U clears what is typed)
        t.keys("/")
        t.keys("C-u")
        t.keys("tier=front", literal=True)
        t.keys("Enter")
        t.wait("tier=front: only idle", lambda s: row_of(s, self.idle.name) and
               not row_of(s, self.busy.name))
        t.keys("/")
        t.keys("C-u")
        t.keys("!tier=front %s" % self.prefix, literal=True)
        t.keys("Enter")
        t.wait("!tier=front: idle hidden", lambda s: not row_of(s, self.idle.name) and
               row_of(s, self.busy.name) and row_of(s, self.mem.name))
        # a bad regex is refused with the reason, the filter stays
        t.keys("/")
        t.keys("C-u")
        t.keys("~(", literal=True)
        t.keys("Enter")
        t.wait("the regex error", lambda s: "filter: regex" in s)
        t.keys("Escape")
        # Esc clears the filter: other hosts' containers may show too
        t.keys("Escape")
        t.wait("filter cleared", lambda s: "filter:" not in s and row_of(s, self.idle.name))

    def test_group_columns_refresh_and_pause(self):
        conf = os.path.join(h.WORK, "top-%s-saved.conf" % h.RUN_TAG)
        self.addCleanup(lambda: os.path.exists(conf) and os.unlink(conf))
        t = self.top("--filter", self.prefix, "--config", conf)
        self.shows_all(t, [c.name for c in self.mine])
        # g: a subtotal line per compose project, the ungrouped last
        t.keys("g")
        s = t.wait("groups", lambda s: "topproj (2)" in s and "(no group) (1)" in s)
        lines = s.split("\n")
        gi = next(i for i, l in enumerate(lines) if "topproj (2)" in l)
        ni = next(i for i, l in enumerate(lines) if "(no group) (1)" in l)
        self.assertLess(gi, ni)
        self.assertEqual({self.idle.name, self.mem.name},
                         {l.split()[1] for l in lines[gi + 1:gi + 3]})
        self.assertIn(self.busy.name, lines[ni + 1])
        t.keys("g")
        t.wait("ungrouped", lambda s: "topproj (2)" not in s)
        # C: the column chooser; IMAGE on, saved with S
        t.keys("C")
        t.wait("the column chooser", lambda s: "[ ] IMAGE" in s)
        for _ in range(TOP_COL_IMAGE):
            t.keys("Down")
        t.keys("Space")
        t.wait("IMAGE ticked", lambda s: "[x] IMAGE" in s)
        t.keys("S")
        t.wait("saved", lambda s: "settings saved to " + conf in s)
        t.keys("Escape")
        t.wait("the IMAGE column", lambda s: re.search(r" NAME .* IMAGE", s))
        with open(conf) as f:
            saved = f.read()
        self.assertRegex(saved, r"(?m)^columns = .*\bimage\b")
        # the saved file is read at the next start
        t2 = self.top("--filter", self.prefix, "--config", conf)
        t2.wait("IMAGE from the settings file", lambda s: re.search(r" NAME .* IMAGE", s) and
                h.IMAGE in s)
        # + slows the refresh; space pauses
        t.keys("+")
        t.wait("slower refresh", lambda s: "refresh every 2s" in s)
        t.keys("Space")
        t.wait("paused", lambda s: "PAUSED" in s)
        t.keys("Space")
        t.wait("running again", lambda s: "PAUSED" not in s)

    # ---- the detail view -------------------------------------------------------------------

    def detail(self, c):
        t = self.top("--filter", c.name)
        self.shows_all(t, [c.name])
        t.keys("Enter")
        t.wait("the detail view of %s" % c.name, lambda s: "[info]" in s and c.name in s)
        return t

    def test_detail_has_info_and_sparklines(self):
        t = self.detail(self.mem)
        s = t.wait("memory history as a sparkline",
                   lambda s: re.search(r"^MEM +.*[\u2581-\u2588].*now", s, re.M), 30)
        self.assertIn("Image      %s" % h.IMAGE, s)
        self.assertRegex(s, r"Limits .*memory 64M")
        self.assertRegex(s, r"OOM +\d+ OOM events")
        self.assertIn("Throttling", s)
        self.assertIn("Forecasts", s)
        self.assertIn("Alerts", s)
        # the sparkline's latest value matches the API's working set
        now = re.search(r"^MEM .*now (\S+)", s, re.M).group(1)
        want = self.agent.container(self.mem.name)["values"]["container_memory_working_set_bytes"]
        self.assertLessEqual(abs(parse_binary(now) - want), 0.06 * want + 256 * KIB)
        # the forecasts: memory against the 64M limit, as the agent's forecaster says
        # (a refresh can land between the screen and the API: wait for the
        # two to agree, the screen being redrawn each second)
        def agrees(s):
            m = re.search(r"memory +\S+ / 64M .*", s)
            if not m:
                return False
            fc = self.agent.get("/api/v1/containers/%s/forecast" % self.mem.id).json()["data"]
            mem = next(r for r in fc["resources"] if r["resource"] == "memory")
            if mem["reason"]:
                return "no forecast:" in m.group(0)
            return "runs out in" in m.group(0) or "does not run out" in m.group(0)
        t.wait("the memory forecast as the agent's forecaster says", agrees, 30)
        t.keys("Escape")

    def test_detail_processes_env_and_logs(self):
        t = self.detail(self.idle)
        t.keys("p")
        t.wait("the processes pane", lambda s: re.search(r"PID +USER", s) and "sh -c" in s)
        t.keys("e")
        s = t.wait("the environment pane", lambda s: "PLAIN_VAR=hello-plain" in s)
        self.assertIn("SECRET_TOKEN=********", s)
        self.assertNotIn("abc-secret-xyz", s)
        t.keys("l")
        r = self.agent.get("/api/v1/logs?container=%s&limit=5" % self.idle.id)
        if r.status == 404 and b'"not found"' in r.body:
            # this agent has no log API: the pane says so, nothing crashes
            t.wait("logs: not available", lambda s: "not available" in s and "/api/v1/logs" in s)
            self.assertTrue(t.alive())
        else:
            s = t.wait("the container's lines in the logs pane",
                       lambda s: len(re.findall(r"top-line \d+", s)) >= 3, 20)
            n1 = max(int(x) for x in re.findall(r"top-line (\d+)", s))
            t.wait("new lines while following",
                   lambda s: max(int(x) for x in re.findall(r"top-line (\d+)", s) or [0]) > n1 + 2)
            # / filters the held lines: only those with "top-line 1" stay
            t.keys("/")
            t.keys("C-u")
            t.keys("top-line 1", literal=True)
            t.keys("Enter")
            s = t.wait("filtered lines", lambda s: "filter: top-line 1" in s and
                       re.findall(r"top-line (\d+)", s.split("filter: top-line 1", 1)[1]))
            shown = re.findall(r"top-line (\d+)", s.split("filter: top-line 1", 1)[1])
            self.assertTrue(all(n.startswith("1") for n in shown), shown)
        t.keys("Escape")
        t.wait("back to the list", lambda s: "TOTAL" in s)

    def test_alert_marker_detail_and_silence(self):
        r = self.agent.get("/api/v1/alerts")
        if r.status == 404:
            h.skip("this agent has no /api/v1/alerts")
        h.wait_for("TopTestBusy firing in /api/v1/alerts", lambda: any(
            a["labels"].get("alertname") == "TopTestBusy" and a["state"] == "firing"
            and not a.get("silenced") for a in self.agent.get("/api/v1/alerts").json()
            ["data"]["alerts"]), 20)
        t = self.top("--filter", self.prefix, "--token-file", self.token_path)
        s = t.wait("the firing marker on the busy row", lambda s: row_of(s, self.busy.name) and
                   row_of(s, self.busy.name).rstrip().endswith("\u25b2"))
        self.assertRegex(s, r"alerts: 1 firing")          # TopTestBusy, the only rule
        self.assertFalse(row_of(s, self.mem.name).rstrip().endswith("\u25b2"))
        # the busy container is first by CPU (the default sort): open its detail
        t.wait("busy first", lambda s: s.split("\n")[3].find(self.busy.name) >= 0)
        t.keys("Enter")
        s = t.wait("the alert in the detail view",
                   lambda s: re.search(r"FIRING +TopTestBusy \[warning\]", s))
        self.assertIn("is busy", s)
        t.keys("s")
        t.wait("which alert to silence", lambda s: "silence which alert" in s and "1 TopTestBusy" in s)
        t.keys("Enter")
        t.wait("the duration prompt", lambda s: "silence for" in s)
        t.keys("C-u")
        t.keys("30m", literal=True)
        t.keys("Enter")
        t.wait("silenced", lambda s: "silenced TopTestBusy for 30m" in s)
        sil = [x for x in self.agent.get("/api/v2/silences").json()
               if x["status"]["state"] == "active"]
        self.assertTrue(any({"name": "alertname", "value": "TopTestBusy", "isRegex": False,
                             "isEqual": True} in [{k: m[k] for k in ("name", "value", "isRegex",
                                                                      "isEqual")}
                                                  for m in x["matchers"]] for x in sil), sil)
        t.keys("Escape")
        t.wait("the silenced marker", lambda s: re.search(r"[1-9]\d* silenced", s) and
               row_of(s, self.busy.name).rstrip().endswith(" s"), 20)
        for x in sil:         # expire it: the other tests see the alert firing
            req = urllib.request.Request(self.agent.url + "/api/v2/silence/" + x["id"],
                                         method="DELETE",
                                         headers={"Authorization": "Bearer " + TOKEN})
            urllib.request.urlopen(req, timeout=5).read()

    def test_an_older_agent_without_the_newer_endpoints(self):
        """A proxy in front of the real agent answers the router's 404 for
        alerts, logs, forecasts, env and processes, as an agent from before
        them would: every piece says "not available", nothing crashes."""
        import http.server
        import threading
        real = self.agent.url
        absent = ("/api/v1/alerts", "/api/v1/logs", "/forecast", "/env", "/processes")

        class Proxy(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?")[0]
                if any(path.startswith(a) or path.endswith(a) for a in absent):
                    body, status = b'{"status":"error","errorType":"not_found","error":"not found"}', 404
                else:
                    r = h.http_get(real + self.path, timeout=10)
                    body, status = r.body, r.status
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        url = "http://127.0.0.1:%d" % srv.server_address[1]
        t = self.top("--filter", self.idle.name, url=url, shell_after=True)
        s = self.shows_all(t, [self.idle.name])
        self.assertIn("alerts: not available", s)
        t.keys("Enter")
        s = t.wait("the detail view, degraded", lambda s: "[info]" in s and
                   "not available: the agent has no /api/v1/alerts" in s and
                   re.search(r"not available: the agent has no /api/v1/containers/\S+/forecast", s))
        self.assertRegex(s, r"(?m)^MEM .*[\u2581-\u2588]")    # history still comes
        for key, what in (("p", "processes"), ("l", "/api/v1/logs"), ("e", "env")):
            t.keys(key)
            t.wait("%s not available" % what,
                   lambda s: re.search(r"not available: the agent has no \S*%s" % re.escape(what), s))
        t.keys("q")
        t.wait("a clean exit", lambda s: "TOP-EXIT=0" in s)

    # ---- terminal --------------------------------------------------------------------------

    def test_resize_to_80x24_stays_readable(self):
        t = self.top("--filter", self.prefix, width=160, height=40)
        self.shows_all(t, [c.name for c in self.mine])
        t.resize(80, 24)
        s = t.wait("redrawn at 80x24", lambda s: len(s.split("\n")) <= 25 and
                   max(len(l) for l in s.split("\n")) <= 80 and "TOTAL" in s and
                   " NAME " in s and "UPTIME" not in s)
        lines = s.split("\n")
        title = next(l for l in lines if " NAME " in l)
        for col in ("NAME", "CPU%", "MEM", "NET RX/TX", "PIDS", "AL"):
            self.assertIn(col, title, "column %s dropped at 80 columns:\n%s" % (col, s))
        self.assertNotIn("UPTIME", title)       # documented: uptime drops first
        # names longer than 20 characters are cut in the middle, the ends kept
        for c in self.mine:
            tail = c.name[-9:]
            self.assertTrue(any(l.startswith("\u25cf") and tail in l and "\u2026" in l
                                for l in lines), "%s not readable at 80x24:\n%s" % (c.name, s))
        self.assertIn("q quit", lines[-1] if lines[-1].strip() else lines[-2])

    def test_q_exits_and_restores_the_terminal(self):
        t = self.top("--filter", self.prefix, shell_after=True)
        self.shows_all(t, [c.name for c in self.mine])
        t.keys("?")
        t.wait("the help", lambda s: "monitor top - keys" in s)
        t.keys("x")                               # any key closes the help
        t.keys("q")
        s = t.wait("top exits and stty reports the local modes",
                   lambda s: "TOP-EXIT=" in s and re.search(r"(^|\s)-?icanon(\s|$)", s) and
                   re.search(r"(^|\s)-?echoctl(\s|$)", s))
        self.assertIn("TOP-EXIT=0", s)
        # the shell's terminal is back in canonical mode with echo
        self.assertRegex(s, r"(^|\s)icanon(\s|$)")
        self.assertRegex(s, r"(^|\s)echo(\s|$)")
        self.assertNotIn("TOTAL", s)              # the alternate screen is gone

    def test_agent_gone_then_back(self):
        port = h.free_port()
        listen = "127.0.0.1:%d" % port
        a = start_agent(listen=listen)
        try:
            t = self.top("--filter", self.prefix, url="http://" + listen, shell_after=True)
            self.shows_all(t, [c.name for c in self.mine], 20)
            a.stop()
            s = t.wait("the view says the agent is unreachable",
                       lambda s: "AGENT UNREACHABLE" in s and "retrying" in s)
            self.assertIn("connection refused", s)
            self.assertIsNotNone(row_of(s, self.mem.name))   # the last data stays
            time.sleep(2)
            self.assertNotIn("TOP-EXIT", t.text())           # still running
            a = start_agent(listen=listen)
            t.wait("reconnected", lambda s: "AGENT UNREACHABLE" not in s and
                   row_of(s, self.mem.name) and "TOP-EXIT" not in s, 20)
            t.keys("q")
            t.wait("a clean exit", lambda s: "TOP-EXIT=0" in s)
        finally:
            a.stop()

    # ---- actions ------------------------------------------------------------------------------

    def test_actions_need_the_token_and_a_confirmation(self):
        t = self.top("--filter", self.idle.name)
        self.shows_all(t, [self.idle.name])
        t.keys("x")
        t.wait("actions refused without a token", lambda s: "need the admin token" in s)
        started = h.docker("inspect", "-f", "{{.State.StartedAt}}", self.idle.id).strip()
        t = self.top("--filter", self.idle.name, "--token-file", self.token_path)
        self.shows_all(t, [self.idle.name])
        t.keys("x")
        t.wait("the actions menu", lambda s: "1 restart" in s and "2 stop" in s)
        t.keys("1")
        t.wait("a confirmation", lambda s: "restart %s" % self.idle.name in s and "y: yes" in s)
        t.keys("n")
        t.wait("cancelled", lambda s: "restart: cancelled" in s)
        self.assertEqual(h.docker("inspect", "-f", "{{.State.StartedAt}}", self.idle.id).strip(),
                         started)
        t.keys("x")
        t.keys("1")
        t.wait("a confirmation", lambda s: "y: yes" in s)
        t.keys("y")
        t.wait("restarted", lambda s: "restart: done" in s, 40)
        self.assertNotEqual(h.docker("inspect", "-f", "{{.State.StartedAt}}", self.idle.id).strip(),
                            started)

    # ---- batch ----------------------------------------------------------------------------------

    def test_once_and_json(self):
        env = dict(os.environ)
        env.pop("MONITOR_URL", None)
        env["MONITOR_TOP_CONFIG"] = os.path.join(h.WORK, "top-%s-none.conf" % h.RUN_TAG)
        r = subprocess.run([h.MONITOR, "top", "--url", self.agent.url, "--once", "--width", "160",
                            "--filter", self.prefix], capture_output=True, text=True, timeout=30,
                           env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.rstrip("\n").split("\n")
        self.assertTrue(lines[0].startswith("monitor top - "))
        self.assertTrue(all(len(l) <= 160 for l in lines[2:]), r.stdout)
        for c in self.mine:
            self.assertIsNotNone(row_of(r.stdout, c.name), r.stdout)
        self.assertRegex(lines[-1], r"TOTAL \(3\)")
        # the same inside the monitor binary (libcurl), as for an https:// URL
        r2 = subprocess.run([h.MONITOR, "top", "--url", self.agent.url, "--once", "--width",
                             "160", "--filter", self.prefix], capture_output=True, text=True,
                            timeout=30, env=dict(env, MONITOR_TOP_INPROCESS="1"))
        self.assertEqual(r2.returncode, 0, r2.stderr)
        self.assertEqual(r2.stdout.split("\n")[2], lines[2])      # the same column titles
        for c in self.mine:
            self.assertIsNotNone(row_of(r2.stdout, c.name), r2.stdout)
        r = subprocess.run([h.MONITOR, "top", "--url", self.agent.url, "--json", "--filter",
                            self.prefix, "--sort", "cpu"], capture_output=True, text=True,
                           timeout=30, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        names = [c["name"] for c in doc["containers"]]
        self.assertEqual(sorted(names), sorted(c.name for c in self.mine))
        self.assertEqual(names[0], self.busy.name)
        by = {c["name"]: c for c in doc["containers"]}
        api = {c["name"]: c for c in self.agent.containers()}
        self.assertEqual(by[self.mem.name]["pids"], api[self.mem.name]["values"]["container_pids"])
        self.assertEqual(by[self.mem.name]["memory_limit_bytes"], 64 * 1024 * 1024)
        self.assertEqual(by[self.busy.name]["cpu_limit_cores"], 0.5)
        self.assertEqual(doc["totals"]["containers"], 3)
        self.assertAlmostEqual(doc["totals"]["pids"], sum(c["pids"] for c in doc["containers"]))
        self.assertIn("load1", doc["host"])
        # no terminal and no batch flag: a clear refusal, not a broken screen
        r = subprocess.run([h.MONITOR, "top", "--url", self.agent.url], capture_output=True,
                           text=True, timeout=10, env=env, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 1)
        self.assertIn("needs a terminal", r.stderr)
        # an agent that is not there: one message, exit 1
        r = subprocess.run([h.MONITOR, "top", "--url", "http://127.0.0.1:%d" % h.free_port(),
                            "--once"], capture_output=True, text=True, timeout=10, env=env)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot reach the agent", r.stderr)


if __name__ == "__main__":
    unittest.main()
