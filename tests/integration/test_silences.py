"""Silences against the real agent over HTTP and through `monitor silence`:
created with the admin token and refused without it (or with a wrong one,
or when no token is configured); listed in Alertmanager's v2 shapes, one
fetched by id, filtered; bad bodies answered 400 with the reason; expired
with DELETE (token again), after which the state is "expired" and a second
expiry is 409; kept across an agent restart in the state database; and an
alert that a silence matches is still evaluated and listed, marked
silenced, until the silence is expired (needs the rules engine); and the
real amtool (Alertmanager's client, Debian's prometheus-alertmanager) adds,
queries and expires them as against an Alertmanager.
"""

import calendar
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import harness as h

TOKEN = "sil-" + os.urandom(16).hex()


def request(method, url, body=None, headers=None, timeout=10):
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    hdr = {"Content-Type": "application/json"}
    hdr.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=hdr)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw


def utc(rfc3339):
    """Unix seconds of "2026-11-29T18:00:00.123Z" (whole seconds)."""
    return calendar.timegm(time.strptime(rfc3339[:19], "%Y-%m-%dT%H:%M:%S"))


def bearer(tok=TOKEN):
    return {"Authorization": "Bearer " + tok}


def silence(comment="maintenance", duration="1h", **matchers):
    return {"matchers": [{"name": k, "value": v, "isRegex": False, "isEqual": True}
                         for k, v in matchers.items()],
            "duration": duration, "createdBy": "it", "comment": comment}


def monitor(*args, env=None, timeout=30):
    e = dict(os.environ)
    e.pop("MONITOR_URL", None)
    e.pop("MONITOR_TOKEN", None)
    e.update(env or {})
    return subprocess.run([h.MONITOR] + list(args), capture_output=True, text=True,
                          timeout=timeout, env=e)


class SilencesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(h.WORK, exist_ok=True)
        cls.dir = tempfile.mkdtemp(prefix="silences-", dir=h.WORK)
        cls.token_file = os.path.join(cls.dir, "token")
        with open(cls.token_file, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(cls.token_file, 0o600)
        cls.data = os.path.join(cls.dir, "data")
        os.makedirs(cls.data)
        cls.config = "auth:\n  admin_token_file: %s\n" % cls.token_file
        cls.agent = None
        cls.agent = cls.start_agent()

    @classmethod
    def start_agent(cls, extra=""):
        # One data dir for every agent of the class: the restart test needs it.
        return h.Agent(config=cls.config + extra, args=("--data-dir", cls.data, "--no-ebpf")).start()

    @classmethod
    def tearDownClass(cls):
        if cls.agent:
            log = cls.agent.stderr()
            cls.agent.stop()
            assert TOKEN not in log, "the admin token is in the agent's log"
        shutil.rmtree(cls.dir, ignore_errors=True)

    def url(self, path):
        return self.agent.url + path

    def create(self, body, headers=None):
        return request("POST", self.url("/api/v2/silences"), body, bearer() if headers is None else headers)

    def test_create_needs_the_token(self):
        before = request("GET", self.url("/api/v2/silences"))[1]
        for headers in ({}, bearer("wrong-" + TOKEN), bearer(TOKEN[:-1]), {"Authorization": TOKEN}):
            status, doc = self.create(silence(name="web"), headers)
            self.assertEqual(status, 401, (headers, doc))
            self.assertEqual(doc["errorType"], "unauthorized")
        self.assertEqual(request("GET", self.url("/api/v2/silences"))[1], before)

    def test_no_token_configured(self):
        plain = h.Agent(args=("--no-ebpf",)).start()
        self.addCleanup(plain.kill)
        status, doc = request("POST", plain.url + "/api/v2/silences", silence(name="x"), bearer())
        self.assertEqual(status, 401)
        self.assertIn("auth.admin_token_file", doc["error"])
        # Reading needs nothing.
        status, doc = request("GET", plain.url + "/api/v2/silences")
        self.assertEqual((status, doc), (200, []))
        plain.stop()

    def test_create_list_get_expire(self):
        t0 = time.time()
        body = {"matchers": [{"name": "alertname", "value": "ContainerOOMKilled", "isRegex": False},
                             {"name": "name", "value": "web-.*", "isRegex": True},
                             {"name": "severity", "value": "info", "isEqual": False}],
                "startsAt": "2001-01-01T00:00:00Z",       # the past: means now
                "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + 7200)),
                "createdBy": "ops@example", "comment": "deploy of web"}
        status, doc = self.create(body)
        self.assertEqual(status, 200, doc)
        sid = doc["silenceID"]
        self.assertRegex(sid, r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

        status, got = request("GET", self.url("/api/v2/silence/" + sid))
        self.assertEqual(status, 200, got)
        self.assertEqual(got["id"], sid)
        self.assertEqual(got["status"], {"state": "active"})
        self.assertEqual(got["createdBy"], "ops@example")
        self.assertEqual(got["comment"], "deploy of web")
        self.assertEqual(got["matchers"], [
            {"name": "alertname", "value": "ContainerOOMKilled", "isRegex": False, "isEqual": True},
            {"name": "name", "value": "web-.*", "isRegex": True, "isEqual": True},
            {"name": "severity", "value": "info", "isRegex": False, "isEqual": False}])
        starts = utc(got["startsAt"])
        self.assertLess(abs(starts - t0), 5, got["startsAt"])
        self.assertTrue(got["endsAt"].startswith(body["endsAt"][:19]), got["endsAt"])

        status, lst = request("GET", self.url("/api/v2/silences"))
        self.assertEqual(status, 200)
        self.assertIn(sid, [s["id"] for s in lst])
        # /metrics counts them by state, as alertmanager_silences.
        active = len([s for s in lst if s["status"]["state"] == "active"])
        m = self.agent.wait_tick()
        self.assertEqual(m.value("monitor_silences", state="active"), active)
        self.assertEqual(m.value("monitor_silences", state="expired"),
                         len([s for s in lst if s["status"]["state"] == "expired"]))
        # Alertmanager's filter: by the silences' matcher values.
        status, lst = request("GET", self.url("/api/v2/silences?filter=alertname%3DContainerOOMKilled"))
        self.assertEqual([s["id"] for s in lst if s["id"] == sid], [sid])
        status, lst = request("GET", self.url("/api/v2/silences?filter=alertname%3DOther"))
        self.assertNotIn(sid, [s["id"] for s in lst])
        status, doc = request("GET", self.url("/api/v2/silences?filter=%3Dbad"))
        self.assertEqual(status, 400, doc)

        status, doc = request("DELETE", self.url("/api/v2/silence/" + sid), headers={})
        self.assertEqual(status, 401, doc)
        self.assertEqual(request("GET", self.url("/api/v2/silence/" + sid))[1]["status"]["state"], "active")
        status, doc = request("DELETE", self.url("/api/v2/silence/" + sid), headers=bearer())
        self.assertEqual(status, 200, doc)
        got = request("GET", self.url("/api/v2/silence/" + sid))[1]
        self.assertEqual(got["status"]["state"], "expired")
        ends = utc(got["endsAt"])
        self.assertLess(abs(ends - time.time()), 5, got["endsAt"])
        status, doc = request("DELETE", self.url("/api/v2/silence/" + sid), headers=bearer())
        self.assertEqual(status, 409, doc)
        status, doc = request("DELETE", self.url("/api/v2/silence/nope"), headers=bearer())
        self.assertEqual(status, 404, doc)
        status, doc = request("GET", self.url("/api/v2/silence/nope"))
        self.assertEqual(status, 404, doc)

    def test_bad_bodies(self):
        cases = [
            (b"{not json", "not JSON"),
            ({"matchers": [], "duration": "1h", "createdBy": "a", "comment": "c"}, "matchers"),
            (silence(comment="", name="x"), "comment"),
            ({"matchers": [{"name": "name", "value": ".*", "isRegex": True}], "duration": "1h",
              "createdBy": "a", "comment": "c"}, "empty string"),
            ({"matchers": [{"name": "name", "value": "(", "isRegex": True}], "duration": "1h",
              "createdBy": "a", "comment": "c"}, "name=~"),
            ({"matchers": [{"name": "name", "value": "x"}], "endsAt": "2001-01-01T00:00:00Z",
              "createdBy": "a", "comment": "c"}, "past"),
            ({"matchers": [{"name": "name", "value": "x"}], "createdBy": "a", "comment": "c"}, "endsAt"),
        ]
        for body, word in cases:
            status, doc = self.create(body)
            self.assertEqual(status, 400, (body, doc))
            self.assertEqual(doc["errorType"], "bad_data")
            self.assertIn(word, doc["error"], body)
        status, doc = self.create({"id": "00000000-0000-4000-8000-000000000000",
                                   **silence(name="x")})
        self.assertEqual(status, 404, doc)

    def test_cli(self):
        url = ("--url", self.agent.url)
        r = monitor("silence", "add", *url, "-c", "cli test", "name=cli-web")
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("401", r.stderr)
        self.assertIn("--token-file", r.stderr)
        r = monitor("silence", "add", *url, "name=cli-web")        # no comment
        self.assertEqual(r.returncode, 2, r)
        r = monitor("silence", "add", *url, "-c", "x", "name=~(")   # bad regex, caught here
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("name", r.stderr)

        r = monitor("silence", "add", *url, "--token-file", self.token_file, "-d", "30m",
                    "-c", "cli test", "-a", "ann", "ContainerUnhealthy", "name=~cli-.*")
        self.assertEqual(r.returncode, 0, r)
        sid = r.stdout.strip()
        got = request("GET", self.url("/api/v2/silence/" + sid))[1]
        self.assertEqual(got["matchers"][0], {"name": "alertname", "value": "ContainerUnhealthy",
                                              "isRegex": False, "isEqual": True})
        self.assertEqual(got["matchers"][1]["isRegex"], True)
        self.assertEqual(got["createdBy"], "ann")
        s = utc(got["startsAt"])
        e = utc(got["endsAt"])
        self.assertAlmostEqual(e - s, 1800, delta=1)

        r = monitor("silence", "ls", *url)
        self.assertEqual(r.returncode, 0, r)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split()[:3], ["ID", "MATCHERS", "STATE"])
        row = [l for l in lines if l.startswith(sid)]
        self.assertEqual(len(row), 1, r.stdout)
        self.assertIn('alertname="ContainerUnhealthy" name=~"cli-.*"', row[0])
        self.assertIn("active", row[0])
        self.assertIn("cli test", row[0])
        r = monitor("silence", "ls", *url, "-q", "name=~cli-.*")
        self.assertEqual(r.stdout.split(), [sid])
        r = monitor("silence", "ls", *url, "--json")
        self.assertIn(sid, [s["id"] for s in json.loads(r.stdout)])

        r = monitor("silence", "expire", *url, sid)
        self.assertEqual(r.returncode, 1, r)
        r = monitor("silence", "expire", *url, sid, env={"MONITOR_TOKEN": TOKEN})
        self.assertEqual((r.returncode, r.stdout.strip()), (0, sid), r)
        r = monitor("silence", "ls", *url, "-q")
        self.assertNotIn(sid, r.stdout.split())
        r = monitor("silence", "ls", *url, "-q", "--expired")
        self.assertIn(sid, r.stdout.split())
        r = monitor("silence", "expire", *url, "--token-file", self.token_file, sid)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("already expired", r.stderr)

    def test_amtool(self):
        """The real amtool (Alertmanager 0.25's client) adds, lists and
        expires silences against the agent as against an Alertmanager."""
        amtool = h.require_binary("amtool")
        http_cfg = os.path.join(self.dir, "amtool-http.yml")
        with open(http_cfg, "w") as f:
            f.write("authorization:\n  credentials_file: %s\n" % self.token_file)
        base = [amtool, "--alertmanager.url=" + self.agent.url]

        def am(*args, token=True):
            cmd = base + (["--http.config.file=" + http_cfg] if token else []) + list(args)
            return subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        r = am("silence", "add", "alertname=AmtoolTest", "name=~web-.*", "--comment=from amtool",
               "--duration=1h", token=False)
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn("401", r.stderr)
        r = am("silence", "add", "alertname=AmtoolTest", "name=~web-.*", "--comment=from amtool",
               "--duration=1h")
        self.assertEqual(r.returncode, 0, r)
        sid = r.stdout.strip()
        got = request("GET", self.url("/api/v2/silence/" + sid))[1]
        self.assertEqual(got["comment"], "from amtool")
        self.assertEqual(got["matchers"][1], {"name": "name", "value": "web-.*", "isRegex": True,
                                              "isEqual": True})
        r = am("silence", "query", "-o", "json", "alertname=AmtoolTest", token=False)
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual([s["id"] for s in json.loads(r.stdout)], [sid])
        r = am("silence", "query", token=False)
        self.assertIn(sid, r.stdout)
        self.assertIn('alertname="AmtoolTest" name=~"web-.*"', r.stdout)
        r = am("silence", "expire", sid)
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual(request("GET", self.url("/api/v2/silence/" + sid))[1]["status"]["state"],
                         "expired")
        r = am("silence", "query", "--expired", "-q", token=False)
        self.assertIn(sid, r.stdout.split())

    def test_kept_across_restart(self):
        status, doc = self.create(silence(comment="survives", duration="3h", name="keep-me"))
        self.assertEqual(status, 200, doc)
        sid = doc["silenceID"]
        before = request("GET", self.url("/api/v2/silence/" + sid))[1]
        cls = type(self)
        # stop() removes the agent's temp dir, not the shared data dir.
        cls.agent.stop()
        cls.agent = None
        cls.agent = cls.start_agent()
        status, after = request("GET", self.url("/api/v2/silence/" + sid))
        self.assertEqual(status, 200, after)
        self.assertEqual(after, before)

    def test_alert_shown_silenced(self):
        """A rule that always fires; a silence marks its alert silenced in
        /api/v1/alerts while it keeps being evaluated; expiring it unmarks."""
        rules = os.path.join(self.dir, "always.yml")
        with open(rules, "w") as f:
            f.write("groups:\n- name: it\n  interval: 1s\n  rules:\n"
                    "  - alert: AlwaysOn\n    expr: vector(1)\n    labels:\n      team: it\n")
        agent = h.Agent(config="auth:\n  admin_token_file: %s\nrule_files:\n  - %s\n"
                        % (self.token_file, rules), args=("--no-ebpf",)).start()
        self.addCleanup(agent.kill)
        r = agent.get("/api/v1/alerts")
        if r.status == 404:
            agent.stop()
            self.skipTest("this agent has no rules engine (/api/v1/alerts)")

        def alert():
            doc = agent.get("/api/v1/alerts").json()
            al = [a for a in doc["data"]["alerts"] if a["labels"].get("alertname") == "AlwaysOn"]
            return al[0] if al and al[0]["state"] == "firing" else None
        a = h.wait_for("AlwaysOn firing", alert, 20)
        self.assertFalse(a.get("silenced"), a)
        status, doc = request("POST", agent.url + "/api/v2/silences",
                              silence(alertname="AlwaysOn", team="it"), bearer())
        self.assertEqual(status, 200, doc)
        sid = doc["silenceID"]
        a = h.wait_for("AlwaysOn silenced", lambda: (lambda x: x if x and x.get("silenced") else None)(alert()), 10)
        self.assertEqual(a["state"], "firing")             # still evaluated
        status, doc = request("DELETE", agent.url + "/api/v2/silence/" + sid, headers=bearer())
        self.assertEqual(status, 200, doc)
        h.wait_for("AlwaysOn no longer silenced",
                   lambda: (lambda x: x if x and not x.get("silenced") else None)(alert()), 10)
        agent.stop()


if __name__ == "__main__":
    unittest.main()
