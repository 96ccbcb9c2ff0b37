"""The default rule pack and remediation end to end: real containers, the
real agent evaluating the pack's own expressions (alerting/rules/
containers.yml, with only `for:` shortened where the test cannot wait the
pack's minutes), read back from /api/v1/alerts and checked against what
Docker says happened.

- A container OOM-killed fires ContainerOOMKilled within two evaluation
  intervals of the kill (Docker's State.FinishedAt against the alert's
  activeAt).
- A busy container under a CPU quota fires ContainerCPUThrottlingHigh (for:
  shortened to 10s) with the throttled share as its value; an equally busy
  one without a quota never does (no limit, no alert).
- A restart-looping container fires ContainerRestartLoop; with the label
  action: restart and remediation capped at 2 an hour, the agent restarts
  it exactly twice (Docker's own "restart" events, and the agent's
  "remediation" events), then records that the cap holds it back, and the
  notification carries what it did; a second loop under a silence is shown
  silenced, never restarted and never notified.
- Memory near its limit, an unhealthy healthcheck, an expected container
  stopped (and started again) and an error-log burst fire their rules; the
  same use without a limit, a healthy check, an unexpected container and
  info lines do not.
- action: restart without an admin token only notifies.
- Prometheus' promtool checks the pack and, over shaped series, fires the
  same alerts with the same annotations (tests/fixtures/pack).
- The built-in pack is installed and loaded when the config does not turn
  it off (its rules appear in /api/v1/rules).
"""

import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import harness as h

TOKEN = "pack-" + os.urandom(16).hex()
PACK = os.path.join(h.ROOT, "alerting", "rules", "containers.yml")


def utc(rfc3339):
    """Unix seconds (float) of an RFC 3339 time with Z or an offset and any
    fraction (Docker's nanoseconds included)."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", rfc3339)
    if not m:
        raise ValueError("not RFC 3339: %r" % rfc3339)
    import calendar
    t = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    if m.group(2):
        t += float("0" + m.group(2)[:10])
    if m.group(3) != "Z":
        sign = 1 if m.group(3)[0] == "+" else -1
        t -= sign * (int(m.group(3)[1:3]) * 3600 + int(m.group(3)[4:6]) * 60)
    return t


def pack_with(changes, own_restarts=True):
    """The pack's text with, for each alert named in changes, its `for:`
    replaced (changes[alert]["for"]) and labels added (["labels"]). With
    own_restarts, the restart-loop rule sees only this run's containers:
    the Docker engine is shared, and an agent of another run with
    remediation on must never restart ours (nor ours theirs)."""
    with open(PACK) as f:
        text = f.read()
    if own_restarts:
        sel = "container_restarts_total[15m]"
        assert text.count(sel) == 1, "the restart-loop rule changed: update the test"
        text = text.replace(sel, 'container_restarts_total{name=~"%s.*"}[15m]' % h.unique(""))
    for alert, ch in changes.items():
        start = text.index("      - alert: %s\n" % alert)
        end = text.find("\n      - alert: ", start + 1)
        end = len(text) if end < 0 else end
        nxt = text.find("\n  - name: ", start)
        if 0 <= nxt < end:
            end = nxt
        block = text[start:end]
        if "for" in ch:
            if re.search(r"\n        for: .*", block):
                block = re.sub(r"\n        for: .*", "\n        for: %s" % ch["for"], block, 1)
            else:
                block = block.replace("\n        labels:\n", "\n        for: %s\n        labels:\n" % ch["for"], 1)
        for k, v in ch.get("labels", {}).items():
            block = block.replace("\n        labels:\n", "\n        labels:\n          %s: %s\n" % (k, v), 1)
        text = text[:start] + block + text[end:]
    return text


class Hook(http.server.BaseHTTPRequestHandler):
    """A webhook receiver: keeps every JSON body posted to it."""
    bodies = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        try:
            Hook.bodies.append(json.loads(self.rfile.read(n)))
        except ValueError:
            pass
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


class PackTest(unittest.TestCase):
    agent = None
    hook = None
    EVAL_S = 2

    @classmethod
    def setUpClass(cls):
        h.require_docker()
        os.makedirs(h.WORK, exist_ok=True)
        cls.dir = tempfile.mkdtemp(prefix="pack-", dir=h.WORK)
        cls.token_file = os.path.join(cls.dir, "token")
        with open(cls.token_file, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(cls.token_file, 0o600)
        rules = os.path.join(cls.dir, "pack.yml")
        with open(rules, "w") as f:
            f.write(pack_with({
                "ContainerCPUThrottlingHigh": {"for": "10s"},
                "ContainerRestartLoop": {"for": "0s", "labels": {"action": "restart"}},
                "ContainerUnhealthy": {"for": "2s"},
                "ContainerExpectedGone": {"for": "2s"},
                "ContainerErrorLogBurst": {"for": "2s"},
                "ContainerMemoryNearLimit": {"for": "2s"},
            }))
        cls.containers = []
        cls.hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        threading.Thread(target=cls.hook.serve_forever, daemon=True).start()
        config = ("auth:\n  admin_token_file: %s\n"
                  "rule_files:\n  - %s\n"
                  "rules:\n  evaluation_interval: %ds\n  resend_delay: 2s\n"
                  "default_rules: false\n"
                  "remediation:\n  max_restarts_per_hour: 2\n  min_interval: 6s\n  stop_timeout: 1s\n"
                  "route:\n  receiver: hook\n  group_by: [alertname, name]\n  group_wait: 1s\n"
                  "  group_interval: 2s\n  repeat_interval: 1h\n"
                  "receivers:\n- name: hook\n  webhook_configs:\n  - url: http://127.0.0.1:%d/hook\n"
                  % (cls.token_file, rules, cls.EVAL_S, cls.hook.server_address[1]))
        cls.agent = h.Agent(config=config, args=("--no-ebpf",)).start()
        r = cls.agent.get("/api/v1/alerts")
        if r.status == 404:
            cls.tearDownClass()
            h.skip("this agent has no rules engine (/api/v1/alerts)")

    @classmethod
    def tearDownClass(cls):
        if cls.hook:
            cls.hook.shutdown()
            cls.hook.server_close()
            cls.hook = None
        for c in getattr(cls, "containers", []):
            h.docker_rm(c)
        if cls.agent:
            agent, cls.agent = cls.agent, None
            log = agent.stderr()
            agent.stop()
            assert TOKEN not in log, "the admin token is in the agent's log"
        shutil.rmtree(getattr(cls, "dir", ""), ignore_errors=True)

    def alerts(self, alertname, name=None):
        doc = self.agent.get("/api/v1/alerts").json()
        self.assertEqual(doc["status"], "success", doc)
        return [a for a in doc["data"]["alerts"] if a["labels"].get("alertname") == alertname
                and (name is None or a["labels"].get("name") == name)]

    def firing(self, alertname, name):
        al = [a for a in self.alerts(alertname, name) if a["state"] == "firing"]
        return al[0] if al else None

    def run_container(self, name, cmd, opts=()):
        c = h.docker_run(self, name, cmd, list(opts))
        return c

    def test_oom_kill_fires_within_two_intervals(self):
        c = self.run_container("oom", ["sh", "-c", "sleep 2; x=a; while :; do x=$x$x; done"],
                               ("--memory", "16m", "--memory-swap", "16m"))
        st = h.wait_for("%s to be OOM-killed" % c.name,
                        lambda: (lambda s: s if not s["Running"] and s["FinishedAt"][:4] != "0001" else None)
                        (c.inspect()["State"]), 60)
        self.assertTrue(st["OOMKilled"], st)
        killed = utc(st["FinishedAt"])
        a = h.wait_for("ContainerOOMKilled for %s" % c.name,
                       lambda: self.firing("ContainerOOMKilled", c.name), 30)
        active = utc(a["activeAt"])
        delay = active - killed
        print("\n  OOM kill -> alert active: %.2f s (evaluation interval %d s)" % (delay, self.EVAL_S))
        self.assertGreaterEqual(delay, -0.5, a)
        self.assertLessEqual(delay, 2 * self.EVAL_S, (a, st["FinishedAt"]))
        self.assertEqual(a["labels"]["severity"], "warning")
        self.assertIn(c.name, a["annotations"]["summary"])

    def test_cpu_throttling(self):
        busy = ["sh", "-c", "while :; do :; done"]
        hot = self.run_container("throttled", busy, ("--cpus", "0.1"))
        free = self.run_container("unlimited", busy, ("--cpu-shares", "2"))
        a = h.wait_for("ContainerCPUThrottlingHigh for %s" % hot.name,
                       lambda: self.firing("ContainerCPUThrottlingHigh", hot.name), 90)
        value = float(a["value"])
        # A loop under a 10 % quota wants the CPU in every period.
        self.assertGreater(value, 0.5, a)
        # Each increase() extrapolates to the window on its own, so the share
        # of a young series may pass 1 a little, as in Prometheus.
        self.assertLessEqual(value, 1.1, a)
        cg = hot.cgroup()
        st = cg.kv("cpu", "cpu.stat")
        ratio = st["nr_throttled"] / st["nr_periods"] if st.get("nr_periods") else None
        if ratio is not None:
            self.assertGreater(ratio, 0.5, st)
        self.assertEqual(self.alerts("ContainerCPUThrottlingHigh", free.name), [])

    def test_memory_near_limit(self):
        # 46 MB in /dev/shm: shared memory the kernel cannot reclaim
        # without swap, so it stays in the working set.
        fill = ["sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=46 2>/dev/null; sleep 600"]
        near = self.run_container("near", fill, ("--memory", "50m", "--memory-swap", "50m"))
        free = self.run_container("nolimit", fill)
        a = h.wait_for("ContainerMemoryNearLimit for %s" % near.name,
                       lambda: self.firing("ContainerMemoryNearLimit", near.name), 40)
        cg = near.cgroup()
        want = (cg.memory_usage() - cg.inactive_file()) / cg.memory_limit()
        self.assertGreater(float(a["value"]), 0.9, a)
        self.assertAlmostEqual(float(a["value"]), want, delta=0.03)
        self.assertIn("of its memory limit", a["annotations"]["description"])
        self.assertEqual(self.alerts("ContainerMemoryNearLimit", free.name), [])

    def test_unhealthy(self):
        sick = self.run_container("sick", ["sleep", "600"],
                                  ("--health-cmd", "false", "--health-interval", "1s",
                                   "--health-retries", "1"))
        fine = self.run_container("fine", ["sleep", "600"],
                                  ("--health-cmd", "true", "--health-interval", "1s"))
        a = h.wait_for("ContainerUnhealthy for %s" % sick.name,
                       lambda: self.firing("ContainerUnhealthy", sick.name), 40)
        self.assertEqual(sick.inspect()["State"]["Health"]["Status"], "unhealthy")
        self.assertEqual(fine.inspect()["State"]["Health"]["Status"], "healthy")
        self.assertEqual(self.alerts("ContainerUnhealthy", fine.name), [])
        self.assertEqual(a["value"], "1e+00")

    def test_expected_container_gone(self):
        want = self.run_container("expected", ["sleep", "600"], ("--label", "monitor.expected=true"))
        other = self.run_container("casual", ["sleep", "600"])
        for c in (want, other):
            h.wait_for("%s in the agent" % c.name, lambda: self.agent.container(c.name), 10)
        # Running: quiet, for a few evaluations.
        time.sleep(2 * self.EVAL_S)
        self.assertEqual(self.alerts("ContainerExpectedGone", want.name), [])
        h.docker("stop", "-t", "0", want.id)
        h.docker("stop", "-t", "0", other.id)
        a = h.wait_for("ContainerExpectedGone for %s" % want.name,
                       lambda: self.firing("ContainerExpectedGone", want.name), 40)
        self.assertEqual(a["labels"]["severity"], "critical")
        self.assertEqual(self.alerts("ContainerExpectedGone", other.name), [])
        # Back up: resolved.
        h.docker("start", want.id)
        h.wait_for("ContainerExpectedGone for %s to resolve" % want.name,
                   lambda: not self.alerts("ContainerExpectedGone", want.name), 30)

    def test_error_log_burst(self):
        # A first error line, then 150 over about 5 s: a counter series
        # starts at its first sample, so increase() counts from there (the
        # lines before the series' first sample are not a rise).
        loop = ("echo 'level=error msg=\"starting\"'; sleep 3; i=0; while [ $i -lt 150 ]; do "
                "echo \"level=%s msg=\\\"upstream timeout $i\\\"\"; usleep 30000; i=$((i+1)); done; sleep 600")
        noisy = self.run_container("noisy", ["sh", "-c", loop % "error"])
        calm = self.run_container("calm", ["sh", "-c", loop % "info"])
        a = h.wait_for("ContainerErrorLogBurst for %s" % noisy.name,
                       lambda: self.firing("ContainerErrorLogBurst", noisy.name), 60)
        # 150 lines counted; increase() over a young series extrapolates a little.
        self.assertGreater(float(a["value"]), 100, a)
        self.assertLess(float(a["value"]), 200, a)
        self.assertEqual(self.alerts("ContainerErrorLogBurst", calm.name), [])

    def test_restart_loop_remediated_exactly_twice(self):
        t0 = time.time()
        # A second loop, silenced before it starts: evaluated, shown
        # silenced, never restarted by the agent, never notified.
        held_name = h.unique("loop-held")
        body = json.dumps({"matchers": [{"name": "name", "value": held_name}], "duration": "1h",
                           "createdBy": "it", "comment": "hands off"}).encode()
        r = h.http_post(self.agent.url + "/api/v2/silences",
                        {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}, body)
        self.assertEqual(r.status, 200, r.body)
        held = self.run_container("loop-held", ["sh", "-c", "sleep 2; exit 1"], ("--restart", "always"))
        c = self.run_container("loop", ["sh", "-c", "sleep 2; exit 1"], ("--restart", "always"))
        h.wait_for("ContainerRestartLoop for %s" % c.name,
                   lambda: self.firing("ContainerRestartLoop", c.name), 60)

        def remediations():
            ev = self.agent.get("/api/v1/events?type=remediation&container=%s" % c.name).json()["data"]
            return [e["detail"] for e in ev]
        h.wait_for("two restarts by the agent",
                   lambda: len([d for d in remediations() if d.startswith("restarted")]) >= 2, 60)
        h.wait_for("the cap to be recorded",
                   lambda: [d for d in remediations() if "cap of 2" in d], 30)
        # Let the alert come round a few more times: no third restart.
        time.sleep(8)
        done = [d for d in remediations() if d.startswith("restarted")]
        self.assertEqual(len(done), 2, remediations())
        self.assertIn("restarted for ContainerRestartLoop (1 of at most 2 an hour)", done[0])
        self.assertIn("restarted for ContainerRestartLoop (2 of at most 2 an hour)", done[1])
        self.assertEqual(len([d for d in remediations() if "cap of 2" in d]), 1, remediations())
        # Docker's word for it: API restarts are its "restart" events (the
        # restart policy's own restarts are start/die only).
        out = h.docker("events", "--since", "%.3f" % t0, "--until", "%.3f" % time.time(),
                       "--filter", "container=%s" % c.id, "--filter", "event=restart",
                       "--format", "{{.Action}}", timeout=30)
        if out.split() != ["restart", "restart"]:
            every = h.docker("events", "--since", "%.3f" % t0, "--until", "%.3f" % time.time(),
                             "--filter", "container=%s" % c.id,
                             "--format", "{{.TimeNano}} {{.Action}}", timeout=30)
            log = [l for l in self.agent.stderr().splitlines() if "remediation" in l]
            self.fail("Docker saw %s API restarts: %s\nagent: %s\nevents: %s"
                      % (len(out.split()), every, log, remediations()))
        self.assertIn("remediation: %s" % c.name, self.agent.stderr())
        m = self.agent.metrics()
        self.assertEqual(m.value("monitor_remediation_restarts_total", result="done"), 2)
        self.assertEqual(m.value("monitor_remediation_restarts_total", result="failed"), 0)
        self.assertEqual(m.value("monitor_remediation_capped_total"), 1)
        # The notification says what remediation did (annotation "remediation").
        def notified():
            for b in Hook.bodies:
                for a in b.get("alerts", []):
                    if (a["labels"].get("alertname") == "ContainerRestartLoop"
                            and a["labels"].get("name") == c.name and "remediation" in a["annotations"]):
                        return a
            return None
        a = h.wait_for("a notification of the restart loop", notified, 20)
        self.assertRegex(a["annotations"]["remediation"], r"restart(ed| requested)")
        self.assertIn("restarting in a loop", a["annotations"]["summary"])
        # And the alert itself says it, in the API and in `monitor alerts`
        # (the latest word: by now the cap holds it back).
        def annotated():
            al = self.firing("ContainerRestartLoop", c.name)
            return al if al and "remediation" in al["annotations"] else None
        al = h.wait_for("the remediation annotation in /api/v1/alerts", annotated, 20)
        self.assertRegex(al["annotations"]["remediation"],
                         r"restart(ed| requested)|2 restarts in the last hour, the cap")
        self.assertIn("restarting in a loop", al["annotations"]["summary"])
        out = subprocess.run([h.MONITOR, "alerts", "--url", self.agent.url], capture_output=True,
                             text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"(?m)^remediation: ContainerRestartLoop %s: .*restart"
                         % re.escape(c.name))
        # The silenced loop: its alert says why it was left alone.
        ha = h.wait_for("the silenced loop's annotation", lambda: (
            self.firing("ContainerRestartLoop", held.name) or {"annotations": {}}
        )["annotations"].get("remediation"), 20)
        self.assertIn("held back by silence", ha)
        # The silenced one: firing, marked, left alone.
        ha = self.firing("ContainerRestartLoop", held.name)
        self.assertTrue(ha and ha.get("silenced"), ha)
        ev = self.agent.get("/api/v1/events?type=remediation&container=%s" % held.name).json()["data"]
        self.assertEqual(ev, [])
        out = h.docker("events", "--since", "%.3f" % t0, "--until", "%.3f" % time.time(),
                       "--filter", "container=%s" % held.id, "--filter", "event=restart",
                       "--format", "{{.Action}}", timeout=30)
        self.assertEqual(out.split(), [])
        self.assertFalse([a for b in Hook.bodies for a in b.get("alerts", [])
                          if a["labels"].get("name") == held.name], "a silenced alert was notified")


class PackDefaultTest(unittest.TestCase):
    def test_pack_with_promtool(self):
        """Prometheus' own promtool accepts the pack and, evaluating it over
        series shaped like the agent's (tests/fixtures/pack/containers_test.yml),
        fires exactly the expected alerts with the same annotation text."""
        promtool = h.require_binary("promtool")
        r = subprocess.run([promtool, "check", "rules", PACK], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS: 11 rules found", r.stdout)
        test = os.path.join(h.ROOT, "tests", "fixtures", "pack", "containers_test.yml")
        r = subprocess.run([promtool, "test", "rules", test], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)

    def test_remediation_needs_the_token(self):
        """action: restart without an admin token only notifies."""
        h.require_docker()
        d = tempfile.mkdtemp(prefix="pack-", dir=h.WORK)
        self.addCleanup(shutil.rmtree, d, True)
        rules = os.path.join(d, "pack.yml")
        with open(rules, "w") as f:
            f.write(pack_with({"ContainerRestartLoop": {"for": "0s", "labels": {"action": "restart"}}}))
        agent = h.Agent(config="rule_files:\n  - %s\nrules:\n  evaluation_interval: 2s\n"
                        "  resend_delay: 2s\ndefault_rules: false\n" % rules,
                        args=("--no-ebpf",)).start()
        self.addCleanup(agent.kill)
        if agent.get("/api/v1/alerts").status == 404:
            agent.stop()
            self.skipTest("this agent has no rules engine (/api/v1/alerts)")
        t0 = time.time()
        c = h.docker_run(self, "loop-notoken", ["sh", "-c", "sleep 2; exit 1"], ["--restart", "always"])

        def firing():
            doc = agent.get("/api/v1/alerts").json()
            return [a for a in doc["data"]["alerts"] if a["state"] == "firing"
                    and a["labels"].get("alertname") == "ContainerRestartLoop"
                    and a["labels"].get("name") == c.name]
        a = h.wait_for("ContainerRestartLoop for %s" % c.name, firing, 60)[0]
        self.assertEqual(a["labels"]["action"], "restart")
        time.sleep(6)                       # a few resends
        ev = agent.get("/api/v1/events?type=remediation").json()["data"]
        self.assertEqual(ev, [])
        out = h.docker("events", "--since", "%.3f" % t0, "--until", "%.3f" % time.time(),
                       "--filter", "container=%s" % c.id, "--filter", "event=restart",
                       "--format", "{{.Action}}", timeout=30)
        self.assertEqual(out.split(), [])
        self.assertIn("remediation: off: no admin token", agent.stderr())
        agent.stop()

    def test_builtin_pack_loaded_unless_off(self):
        agent = h.Agent(args=("--no-ebpf",)).start()
        self.addCleanup(agent.kill)
        r = agent.get("/api/v1/rules")
        if r.status == 404:
            agent.stop()
            self.skipTest("this agent has no rules engine (/api/v1/rules)")
        names = [rule["name"] for g in r.json()["data"]["groups"] for rule in g["rules"]]
        self.assertIn("ContainerOOMKilled", names)
        self.assertIn("HostDiskAlmostFull", names)
        files = {g["file"] for g in r.json()["data"]["groups"]}
        self.assertEqual(len(files), 1, files)
        path = files.pop()
        with open(path) as f, open(PACK) as g:
            self.assertEqual(f.read(), g.read())
        agent.stop()

        off = h.Agent(config="default_rules: false\n", args=("--no-ebpf",)).start()
        self.addCleanup(off.kill)
        names = [rule["name"] for g in off.get("/api/v1/rules").json()["data"]["groups"]
                 for rule in g["rules"]]
        self.assertNotIn("ContainerOOMKilled", names)
        off.stop()


if __name__ == "__main__":
    unittest.main()
