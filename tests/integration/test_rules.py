"""Alert rules end to end: the real agent evaluating rule files over what it
collects from real containers.

- A rule with for: 0 on a container's memory fires when the container fills
  memory and resolves when it frees it: seen in /api/v1/alerts, in ALERTS
  through /api/v1/query, in `monitor alerts`, and as silenced once a
  silence matches it.
- Alert state survives a restart: a firing alert keeps its activeAt, a
  pending one keeps the time it had already spent pending.
- Reloads (SIGHUP and POST /-/reload with the admin token): a broken file
  keeps the old rules running and is reported in the log, the metric and the
  answer; a good one replaces them. A reload reads the config again: a glob
  added to rule_files: loads its files, a broken config keeps the old rules.
- `monitor rules check` on the corpus of broken files names every problem
  with its file and line and exits 1; the documentation's examples pass.
"""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.parse

import harness as h

FIX = os.path.join(h.ROOT, "tests", "fixtures", "rules")
TOKEN = "rules-test-token-0123456789abcdef"


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def query(agent, expr):
    r = agent.get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert r.status == 200, (r.status, r.text)
    return r.json()["data"]["result"]


def alerts(agent):
    r = agent.get("/api/v1/alerts")
    assert r.status == 200, (r.status, r.text)
    doc = r.json()
    assert doc["status"] == "success"
    return doc["data"]["alerts"]


def alert_named(agent, name):
    for a in alerts(agent):
        if a["labels"].get("alertname") == name:
            return a
    return None


def post(agent, path, token=None, body=b""):
    headers = {"Authorization": "Bearer " + token} if token else {}
    return h.http_post(agent.url + path, headers, body=body)


class Base(unittest.TestCase):
    def setUp(self):
        os.makedirs(h.WORK, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="rules-", dir=h.WORK)
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.rules = os.path.join(self.dir, "rules.yml")
        self.token = os.path.join(self.dir, "token")
        write(self.token, TOKEN + "\n")
        os.chmod(self.token, 0o600)

    def agent(self, rules_text, extra="", data_dir=None):
        write(self.rules, rules_text)
        # Only these rules: the built-in default pack is tested on its own.
        cfg = ("rule_files: [%s]\ndefault_rules: false\nauth:\n  admin_token_file: %s\n%s"
               % (self.rules, self.token, extra))
        args = ["--no-ebpf"] + (["--data-dir", data_dir] if data_dir else [])
        a = h.Agent(config=cfg, args=args)
        a.start()
        self.addCleanup(a.kill)
        return a


class TestMemoryAlert(Base):
    """for: 0 on a real container's working set, fire and resolve."""

    def test_fires_and_resolves(self):
        h.require_docker()
        c = h.docker_run(self, "rules-mem", ["sh", "-c", "sleep 3600"], opts=["--memory", "256m"])
        rules = """groups:
- name: memory
  interval: 1s
  rules:
  - alert: ContainerMemoryHigh
    expr: container_memory_working_set_bytes{name="%s"} > 40e6
    labels:
      severity: warning
    annotations:
      summary: '{{ $labels.name }} uses {{ $value | humanize1024 }}B'
""" % c.name
        a = self.agent(rules)
        h.wait_for("the container in the agent", lambda: a.container(c.name), 15)
        # Quiet at first: busybox sleeping uses well under 40 MB.
        time.sleep(2.5)
        self.assertIsNone(alert_named(a, "ContainerMemoryHigh"))
        # 48 MB in /dev/shm (tmpfs) counts as the container's memory (shmem).
        h.docker("exec", c.id, "dd", "if=/dev/zero", "of=/dev/shm/fill", "bs=1M", "count=48")
        t0 = time.monotonic()
        al = h.wait_for("the alert to fire", lambda: alert_named(a, "ContainerMemoryHigh"), 15)
        fired_after = time.monotonic() - t0
        self.assertEqual(al["state"], "firing")      # for: 0
        self.assertEqual(al["labels"]["name"], c.name)
        self.assertEqual(al["labels"]["severity"], "warning")
        self.assertNotIn("__name__", al["labels"])
        self.assertGreater(float(al["value"]), 40e6)
        self.assertRegex(al["annotations"]["summary"], r"^%s uses \d+(\.\d+)?MiB$" % re.escape(c.name))
        self.assertIs(al["silenced"], False)
        self.assertLess(fired_after, 6)
        # The value is the agent's own working set of the container.
        ws = query(a, 'container_memory_working_set_bytes{name="%s"}' % c.name)
        self.assertTrue(ws and float(ws[0]["value"][1]) > 40e6)
        # ALERTS through the query API (outputs reach the store by the tick).
        got = h.wait_for("ALERTS in the store", lambda: query(
            a, 'ALERTS{alertname="ContainerMemoryHigh",alertstate="firing"}'), 5)
        self.assertEqual(got[0]["metric"]["name"], c.name)
        self.assertEqual(got[0]["value"][1], "1")
        fs = h.wait_for("ALERTS_FOR_STATE", lambda: query(
            a, 'ALERTS_FOR_STATE{alertname="ContainerMemoryHigh"}'), 5)
        # activeAt as seconds, the same moment the API shows.
        self.assertAlmostEqual(float(fs[0]["value"][1]),
                               self._rfc3339(al["activeAt"]), delta=0.002)
        # /api/v1/rules in Prometheus' shape.
        r = a.get("/api/v1/rules").json()
        g = r["data"]["groups"][0]
        self.assertEqual((g["name"], g["file"], g["interval"]), ("memory", self.rules, 1))
        rule = g["rules"][0]
        self.assertEqual((rule["type"], rule["state"], rule["health"]), ("alerting", "firing", "ok"))
        self.assertEqual(len(rule["alerts"]), 1)
        # monitor alerts: the table.
        out = subprocess.run([h.MONITOR, "alerts", "--url", a.url], capture_output=True,
                             text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        line = [l for l in out.stdout.splitlines() if l.startswith("ContainerMemoryHigh")]
        self.assertEqual(len(line), 1, out.stdout)
        self.assertRegex(line[0], r"ContainerMemoryHigh\s+firing\s+\d+s ago\s+\S+e\+07\s+no\s+"
                         r".*name=%s" % re.escape(c.name))
        # A silence that matches: still evaluated, shown as silenced.
        body = json.dumps({"matchers": [{"name": "alertname", "value": "ContainerMemoryHigh",
                                         "isRegex": False, "isEqual": True}],
                           "duration": "10m", "createdBy": "test", "comment": "rules test"})
        r = h.http_post(a.url + "/api/v2/silences", {"Authorization": "Bearer " + TOKEN,
                                                      "Content-Type": "application/json"},
                        body=body.encode())
        self.assertEqual(r.status, 200, r.text)
        sid = r.json()["silenceID"]
        al = alert_named(a, "ContainerMemoryHigh")
        self.assertIs(al["silenced"], True)
        self.assertEqual(al["silencedBy"], [sid])
        self.assertEqual(al["state"], "firing")       # still evaluated
        out = subprocess.run([h.MONITOR, "alerts", "--url", a.url], capture_output=True,
                             text=True, timeout=10)
        self.assertIn("yes (%s)" % sid[:8], out.stdout)
        # Free the memory: resolved at the next evaluations, ALERTS ends.
        h.docker("exec", c.id, "rm", "-f", "/dev/shm/fill")
        h.wait_for("the alert to resolve",
                   lambda: alert_named(a, "ContainerMemoryHigh") is None, 15)
        h.wait_for("ALERTS to end (stale marker)", lambda: not query(
            a, 'ALERTS{alertname="ContainerMemoryHigh"}'), 5)
        m = a.metrics()
        self.assertEqual(m.value("monitor_alerts", state="firing"), 0)
        self.assertGreater(m.value("monitor_rule_evaluations_total"), 3)
        self.assertEqual(m.value("monitor_rule_evaluation_failures_total"), 0)
        a.stop()

    @staticmethod
    def _rfc3339(s):
        import datetime
        s = s.replace("Z", "+00:00")
        return datetime.datetime.fromisoformat(s).timestamp()


class TestRestart(Base):
    """State in state.db: firing keeps activeAt, pending keeps its elapsed time."""

    def test_state_survives_restart(self):
        data = os.path.join(self.dir, "data")
        os.makedirs(data)
        rules = """groups:
- name: restart
  interval: 1s
  rules:
  - alert: AlwaysFiring
    expr: vector(1)
  - alert: SlowPending
    expr: vector(2)
    for: 1h
"""
        a = self.agent(rules, data_dir=data)
        fired = h.wait_for("firing", lambda: alert_named(a, "AlwaysFiring"), 10)
        pend = h.wait_for("pending", lambda: alert_named(a, "SlowPending"), 10)
        self.assertEqual(fired["state"], "firing")
        self.assertEqual(pend["state"], "pending")
        time.sleep(3)
        t_stop = time.time()
        a.proc.send_signal(signal.SIGTERM)
        self.assertEqual(a.proc.wait(10), 0)
        a.proc = None
        pend_spent = t_stop - TestMemoryAlert._rfc3339(pend["activeAt"])
        time.sleep(8)                              # the downtime
        b = self.agent(rules, data_dir=data)
        f2 = h.wait_for("firing again", lambda: alert_named(b, "AlwaysFiring"), 10)
        p2 = h.wait_for("pending again", lambda: alert_named(b, "SlowPending"), 10)
        # The firing alert is the same alert: not new.
        self.assertEqual(f2["state"], "firing")
        self.assertEqual(f2["activeAt"], fired["activeAt"])
        # The pending one kept the 3+ s it had spent pending, and the 8 s
        # of downtime do not count: fresh it would be ~1 s, counting the
        # downtime 11+ s.
        self.assertEqual(p2["state"], "pending")
        spent_now = time.time() - TestMemoryAlert._rfc3339(p2["activeAt"])
        self.assertGreater(spent_now, pend_spent - 0.5)
        self.assertLess(spent_now, pend_spent + 4)
        self.assertIn("restored", b.stderr())
        b.stop()


class TestReload(Base):
    def test_sighup_and_http_reload(self):
        good = """groups:
- name: one
  interval: 1s
  rules:
  - alert: First
    expr: vector(1)
"""
        a = self.agent(good)
        h.wait_for("First", lambda: alert_named(a, "First"), 10)
        self.assertEqual(a.metrics().value("monitor_rules_last_reload_success"), 1)
        # Broken file, SIGHUP: old rules keep running, the error is reported.
        write(self.rules, good.replace("vector(1)", "vector(1"))
        a.proc.send_signal(signal.SIGHUP)
        h.wait_for("the failed reload in the metric", lambda: a.metrics().value(
            "monitor_rules_last_reload_success") == 0, 5)
        self.assertIn("%s:6: group \"one\", rule \"First\": expr: could not parse expression"
                      % self.rules, a.stderr())
        self.assertIn("previous rules keep running", a.stderr())
        time.sleep(1.5)
        al = alert_named(a, "First")
        self.assertIsNotNone(al)
        r = a.get("/api/v1/rules").json()
        self.assertEqual(r["data"]["groups"][0]["rules"][0]["health"], "ok")
        self.assertIs(r["data"]["reload"]["success"], False)
        self.assertIn("%s:6:" % self.rules, r["data"]["reload"]["error"])
        out = subprocess.run([h.MONITOR, "rules", "ls", "--url", a.url], capture_output=True,
                             text=True, timeout=10)
        self.assertEqual(out.returncode, 0)
        self.assertRegex(out.stdout, r"one\s+First\s+alert\s+firing\s+ok\s+1")
        self.assertIn("the last reload", out.stderr)
        # POST /-/reload: token required.
        r = post(a, "/-/reload")
        self.assertEqual(r.status, 401)
        r = post(a, "/-/reload", token="wrong-token-wrong-token")
        self.assertEqual(r.status, 401)
        r = post(a, "/-/reload", token=TOKEN)
        self.assertEqual(r.status, 500)
        self.assertIn("%s:6:" % self.rules, r.json()["error"])
        # Fixed and extended: the new rules run, First keeps its state.
        write(self.rules, good + "  - alert: Second\n    expr: vector(2)\n")
        r = post(a, "/-/reload", token=TOKEN)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.json()["data"]["rules"], 2)
        h.wait_for("the metric back at 1 (next tick)", lambda: a.metrics().value(
            "monitor_rules_last_reload_success") == 1, 5)
        h.wait_for("Second", lambda: alert_named(a, "Second"), 5)
        r = a.get("/api/v1/rules").json()
        self.assertIs(r["data"]["reload"]["success"], True)
        self.assertNotIn("error", r["data"]["reload"])
        self.assertEqual(alert_named(a, "First")["activeAt"], al["activeAt"])
        a.stop()

    def test_reload_rereads_rule_files_list(self):
        """SIGHUP and /-/reload read the config again: a rule_files: glob
        added there is loaded; a config that does not load keeps the old
        rules and is reported (log, metric, API)."""
        a = self.agent("""groups:
- name: one
  interval: 1s
  rules:
  - alert: First
    expr: vector(1)
""")
        h.wait_for("First", lambda: alert_named(a, "First"), 10)
        more = os.path.join(self.dir, "more")
        os.makedirs(more)
        for i in (1, 2):
            write(os.path.join(more, "extra%d.yml" % i), """groups:
- name: extra%d
  interval: 1s
  rules:
  - alert: Extra%d
    expr: vector(%d)
""" % (i, i, i))
        cfg = open(a.config_path).read()
        # The list gains a glob (relative: from the config's directory).
        rel = os.path.relpath(more, os.path.dirname(a.config_path))
        write(a.config_path, cfg.replace("rule_files: [%s]" % self.rules,
                                         "rule_files: [%s, '%s/*.yml']" % (self.rules, rel)))
        a.proc.send_signal(signal.SIGHUP)
        h.wait_for("Extra1 and Extra2 after SIGHUP", lambda: alert_named(a, "Extra1")
                   and alert_named(a, "Extra2"), 10)
        r = a.get("/api/v1/rules").json()
        self.assertEqual(sorted(g["name"] for g in r["data"]["groups"]),
                         ["extra1", "extra2", "one"])
        self.assertIs(r["data"]["reload"]["success"], True)
        first_at = alert_named(a, "First")["activeAt"]
        # A broken config: the old rules (all three files) keep running.
        write(a.config_path, "rule_files: [%s\n" % self.rules + cfg.split("\n", 1)[1])
        r = post(a, "/-/reload", token=TOKEN)
        self.assertEqual(r.status, 500, r.text)
        self.assertIn("config: %s:" % a.config_path, r.json()["error"])
        h.wait_for("the failed reload in the metric", lambda: a.metrics().value(
            "monitor_rules_last_reload_success") == 0, 5)
        self.assertIn("reload failed, the previous rules keep running", a.stderr())
        r = a.get("/api/v1/rules").json()
        self.assertIs(r["data"]["reload"]["success"], False)
        self.assertIn(a.config_path, r["data"]["reload"]["error"])
        self.assertEqual(len(r["data"]["groups"]), 3)
        time.sleep(1.5)
        self.assertIsNotNone(alert_named(a, "Extra2"))
        # The list shrinks back by SIGHUP: the extra files' rules go, First
        # keeps its state.
        write(a.config_path, cfg)
        a.proc.send_signal(signal.SIGHUP)
        h.wait_for("Extra1 gone", lambda: alert_named(a, "Extra1") is None, 10)
        h.wait_for("the metric back at 1", lambda: a.metrics().value(
            "monitor_rules_last_reload_success") == 1, 5)
        r = a.get("/api/v1/rules").json()
        self.assertEqual([g["name"] for g in r["data"]["groups"]], ["one"])
        self.assertEqual(alert_named(a, "First")["activeAt"], first_at)
        a.stop()


class TestLogRule(Base):
    """log_alert over a real container's log lines in the real log store."""

    def test_log_burst_fires_and_resolves(self):
        h.require_docker()
        c = h.docker_run(self, "rules-log", ["sh", "-c",
                         "i=0; while true; do echo \"ERROR: payment $i failed\" >&2; "
                         "echo ok $i; i=$((i+1)); sleep 0.2; done"])
        rules = """groups:
- name: logs
  interval: 1s
  rules:
  - log_alert: PaymentErrors
    match: 'ERROR: payment [0-9]+ failed'
    container: '{name="%s"}'
    stream: stderr
    count: 5
    window: 4s
    labels: {severity: warning}
    annotations:
      summary: '{{ $value }} payment errors in {{ $labels.name }}'
  - log_alert: NotOnStdout
    match: 'ERROR: payment'
    container: '{name="%s"}'
    stream: stdout
""" % (c.name, c.name)
        a = self.agent(rules, extra="logs:\n  poll_interval: 100ms\n  rescan_interval: 500ms\n")
        al = h.wait_for("the log alert", lambda: alert_named(a, "PaymentErrors"), 20)
        self.assertEqual(al["state"], "firing")
        self.assertEqual(al["labels"]["name"], c.name)
        self.assertEqual(al["labels"]["container_id"], c.id)
        self.assertEqual(al["labels"]["severity"], "warning")
        self.assertGreaterEqual(float(al["value"]), 5)
        self.assertRegex(al["annotations"]["first_line"], r"^ERROR: payment \d+ failed$")
        self.assertRegex(al["annotations"]["summary"], r"^\d+ payment errors in %s$" % re.escape(c.name))
        self.assertIsNone(alert_named(a, "NotOnStdout"))
        r = a.get("/api/v1/rules").json()
        rules_by_name = {x["name"]: x for g in r["data"]["groups"] for x in g["rules"]}
        self.assertEqual(rules_by_name["PaymentErrors"]["health"], "ok")
        self.assertEqual(rules_by_name["NotOnStdout"]["health"], "ok")
        self.assertEqual(rules_by_name["PaymentErrors"]["log"]["count"], 5)
        # The container stops logging: the window empties and it resolves.
        h.docker("stop", "-t", "1", c.id)
        h.wait_for("the log alert to resolve", lambda: alert_named(a, "PaymentErrors") is None, 20)
        a.stop()


class TestRulesCheck(unittest.TestCase):
    def run_check(self, *files):
        return subprocess.run([h.MONITOR, "rules", "check", *files], capture_output=True,
                              text=True, timeout=30)

    def test_good_files(self):
        r = self.run_check(os.path.join(FIX, "good", "prometheus_docs.yml"),
                           os.path.join(FIX, "good", "k8s_mixin_containers.yml"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("SUCCESS: 6 rules found", r.stdout)
        self.assertIn("SUCCESS: 7 rules found", r.stdout)

    def test_broken_corpus(self):
        files = sorted(glob.glob(os.path.join(FIX, "bad", "*.yml")))
        self.assertGreaterEqual(len(files), 10)
        for f in files:
            want = []
            with open(f) as fh:
                for line in fh:
                    m = re.match(r"# expect: (\d+): (.*)$", line.rstrip("\n"))
                    if m:
                        want.append((int(m.group(1)), m.group(2)))
            r = self.run_check(f)
            self.assertEqual(r.returncode, 1, f)
            self.assertIn("FAILED: %d problem" % len(want), r.stdout, f)
            got = r.stderr.splitlines()
            self.assertEqual(len(got), len(want), (f, r.stderr))
            for ln, text in want:
                self.assertTrue(any(g.startswith("%s:%d:" % (f, ln)) and text in g for g in got),
                                "%s: no problem at line %d with %r in:\n%s" % (f, ln, text, r.stderr))
        # One good and one bad: exit 1, the good one still says SUCCESS.
        r = self.run_check(os.path.join(FIX, "good", "prometheus_docs.yml"), files[0])
        self.assertEqual(r.returncode, 1)
        self.assertIn("SUCCESS", r.stdout)
        r = self.run_check()
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
