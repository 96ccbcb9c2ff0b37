"""The agent's web page (GET /, dashboards/web/) in real headless Chromium.

An agent watches real Docker containers (one printing numbered log lines
and a "needle" every fifth, a compose-labelled group, and a batch of idle
ones for the page-load figure) with 24 h of imported history for the
logged container, a firing test alert, an admin token and a webhook
receiver on loopback. tests/integration/web_browser.js drives Chromium
through playwright-core (installed into build/node by npm when missing) and
reports what each view shows; this file checks it against the API: no
console errors, charts with the API's series count and pixels in the
series' colours, the container's own log lines (then a newer one by
live follow, then only matches of a search), a silence refused without the
token and created with it, a phone-sized layout without sideways scroll.
Screenshots land in build/integration/screenshots/. Prints the page-load
and 24 h chart-draw times.

Also the static serving itself: content types, gzip, no path traversal.
"""

import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

NODE_DIR = os.path.join(h.BUILD, "node")
SHOTS = os.path.join(h.WORK, "screenshots")
TOKEN = "web-test-token-0123456789abcdef"
MANY = int(os.environ.get("MONITOR_WEB_CONTAINERS", "30"))


def chromium_path():
    for n in ("chromium", "chromium-browser"):
        p = shutil.which(n)
        if p:
            return p
    return None


def ensure_playwright():
    """playwright-core under build/node, installed from the npm registry
    when missing; None with the reason when that cannot be done."""
    mod = os.path.join(NODE_DIR, "node_modules", "playwright-core")
    if os.path.isdir(mod):
        return None
    if not shutil.which("npm"):
        return "npm is not installed (apt-get install npm)"
    r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", NODE_DIR, "playwright-core"],
                       capture_output=True, text=True, timeout=240)
    if r.returncode != 0 or not os.path.isdir(mod):
        return "npm install playwright-core failed: %s" % (r.stderr or r.stdout)[-300:]
    return None


class Hook(http.server.BaseHTTPRequestHandler):
    """The webhook receiver: answers 200 to every POST."""
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


def history(name, end_s):
    """24 h of samples at 60 s for name, Prometheus text with ms stamps."""
    lines = []
    lab = 'name="%s",id="/h11-history",image="history"' % name
    cpu = 0.0
    for i in range(24 * 60, 0, -1):
        t = (end_s - i * 60) * 1000
        cpu += 0.5 + 0.4 * ((i // 30) % 2)
        mem = 40e6 + 20e6 * ((i % 240) / 240.0)
        lines.append("container_cpu_usage_seconds_total{%s} %.3f %d" % (lab, cpu, t))
        lines.append("container_memory_working_set_bytes{%s} %d %d" % (lab, mem, t))
        lines.append("container_memory_usage_bytes{%s} %d %d" % (lab, mem * 1.2, t))
        lines.append("container_spec_memory_limit_bytes{%s} %d %d" % (lab, 128 << 20, t))
    # The host's series too (the same series the agent appends to), so the
    # overview's charts have a line across the range on a young agent.
    with open("/proc/stat") as f:
        cpu = [float(x) / os.sysconf("SC_CLK_TCK") for x in f.readline().split()[1:8]]
    total, idle, ncpu = sum(cpu), cpu[3] + cpu[4], os.cpu_count() or 1
    with open("/proc/meminfo") as f:
        mem = {ln.split(":")[0]: int(ln.split()[1]) * 1024 for ln in f}
    for i in range(24 * 60, 1, -1):
        t = end_s - i * 60
        back = time.time() - t
        lines.append("machine_cpu_seconds_total %.2f %d" % (total - back * ncpu, t * 1000))
        lines.append("machine_cpu_idle_seconds_total %.2f %d" % (idle - back * ncpu * (0.4 + 0.2 * (i % 7) / 7), t * 1000))
        lines.append("machine_memory_bytes %d %d" % (mem["MemTotal"], t * 1000))
        lines.append("machine_memory_available_bytes %d %d" % (mem["MemAvailable"] * (0.9 + 0.1 * (i % 13) / 13), t * 1000))
    return "\n".join(lines) + "\n"


class TestWebPage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.containers = []
        cls.agent = None
        cls.hook = None
        h.require_docker()
        if not shutil.which("node"):
            h.skip("node is not installed (apt-get install nodejs npm)")
        cls.chromium = chromium_path()
        if not cls.chromium:
            h.skip("chromium is not installed (apt-get install chromium)")
        why = ensure_playwright()
        if why:
            h.skip(why)
        os.makedirs(SHOTS, exist_ok=True)
        cls.hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        threading.Thread(target=cls.hook.serve_forever, daemon=True).start()
        try:
            cls._start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _start(cls):
        d = os.path.join(h.WORK, "web-%s" % h.RUN_TAG)
        os.makedirs(d, exist_ok=True)
        tok = os.path.join(d, "token")
        with open(tok, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(tok, 0o600)
        cls.name = h.unique("web")
        rules = os.path.join(d, "rules.yml")
        with open(rules, "w") as f:
            f.write("groups:\n- name: web\n  interval: 1s\n  rules:\n  - alert: H11WebTest\n"
                    "    expr: container_memory_usage_bytes{name=\"%s\"} > 0\n"
                    "    labels: {severity: warning}\n"
                    "    annotations: {summary: \"web page test alert\"}\n" % cls.name)
        config = ("forecast:\n  interval: 2s\n  window: 30s\n  min_points: 5\n"
                  "auth:\n  admin_token_file: %s\nrule_files:\n  - %s\n"
                  "route:\n  receiver: hook\n  group_wait: 0s\nreceivers:\n- name: hook\n  webhook_configs:\n"
                  "  - url: http://127.0.0.1:%d/hook\n" % (tok, rules, cls.hook.server_address[1]))
        cls.agent = h.Agent(config=config)
        # 24 h of history for the logged container, imported before start.
        hist = os.path.join(d, "history.prom")
        with open(hist, "w") as f:
            f.write(history(cls.name, int(time.time()) - 120))
        r = subprocess.run([h.MONITOR, "import", "--data-dir", cls.agent.data_dir, hist],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, "monitor import: %s" % r.stderr
        cls.logged = h.docker_run(cls.containers, "web", [
            "sh", "-c", 'mkdir -p /tmp; httpd -p 8080 -h /tmp; i=0; while true; do i=$((i+1)); echo "h11tick $i"; '
                        '[ $((i%5)) = 0 ] && echo "needle $i"; sleep 0.5; done'],
            opts=("-m", "128m", "-v", "%s:/h11data:ro" % d))
        for i in range(2):
            h.docker_run(cls.containers, "grp%d" % i, ["sleep", "3600"],
                         opts=("--label", "com.docker.compose.project=h11web-%s" % h.RUN_TAG))
        names = [h.unique("bulk%03d" % i) for i in range(MANY)]

        def run(n):
            h.docker("rm", "-f", n, check=False)
            out = h.docker("run", "-d", "--name", n, h.IMAGE, "sleep", "3600")
            return h.Container(n, out.strip().splitlines()[-1])
        with ThreadPoolExecutor(4) as ex:
            cls.containers.extend(ex.map(run, names))
        cls.agent.start()
        # Events on the logged container's timeline (it started before the agent).
        h.docker("pause", cls.logged.id)
        h.docker("unpause", cls.logged.id)
        want = {c.name for c in cls.containers}
        h.wait_for("every container listed", lambda: want <= {c["name"] for c in cls.agent.get(
            "/api/v1/containers").json()["data"]}, 30)
        h.wait_for("the test alert firing", lambda: any(
            a["labels"].get("alertname") == "H11WebTest" and a["state"] == "firing"
            for a in cls.agent.get("/api/v1/alerts").json()["data"]["alerts"]), 20)
        # Rates over the charts' 1 h grid (8 s steps, 32 s windows) exist.
        h.wait_for("host CPU rates", lambda: cls.agent.get("/api/v1/query?" + urllib.parse.urlencode(
            {"query": "rate(machine_cpu_seconds_total[32s])", "time": time.time() - 8})).json()["data"]["result"], 30)
        h.wait_for("a memory forecast of the logged container", lambda: [
            r for r in cls.agent.get("/api/v1/containers/%s/forecast" % cls.name).json()["data"]["resources"]
            if r["resource"] == "memory" and r.get("trend_per_second") is not None], 30, 0.5)
        time.sleep(2)
        cfg = {"url": cls.agent.url, "chromium": cls.chromium, "container": cls.name,
               "marker": "h11tick", "token": TOKEN, "shots": SHOTS, "many": True}
        cpath = os.path.join(d, "browser.json")
        with open(cpath, "w") as f:
            json.dump(cfg, f)
        env = dict(os.environ, NODE_PATH=os.path.join(NODE_DIR, "node_modules"))
        t0 = time.monotonic()
        r = subprocess.run(["node", os.path.join(h.HERE, "web_browser.js"), cpath], capture_output=True,
                           text=True, timeout=150, env=env)
        cls.browser_s = time.monotonic() - t0
        assert r.returncode == 0, "web_browser.js: %s" % r.stderr[-2000:]
        cls.out = json.loads(r.stdout)
        cls.ncontainers = len(cls.agent.get("/api/v1/containers").json()["data"])

    @classmethod
    def tearDownClass(cls):
        if cls.agent:
            cls.agent.stop()
        if cls.containers:
            h.docker("rm", "-f", *[c.id for c in cls.containers], check=False, timeout=120)
        if cls.hook:
            cls.hook.shutdown()

    def api_series(self, chart):
        start, end, step = chart["range"]
        n = 0
        for q in chart["queries"]:
            u = "/api/v1/query_range?" + urllib.parse.urlencode(
                {"query": q, "start": start, "end": end, "step": step})
            n += len(self.agent.get(u).json()["data"]["result"])
        return n

    def chart(self, view, title):
        for c in self.out["views"][view]["charts"]:
            if c["title"].startswith(title):
                return c
        self.fail("no chart %r in %s" % (title, view))

    def test_browser_ran_cleanly(self):
        self.assertEqual(self.out["errors"], [])
        for name, v in self.out["views"].items():
            self.assertEqual(v.get("consoleErrors", []), [], "console errors in view %s" % name)

    def test_charts_match_the_api(self):
        checked = 0
        for name in ("overview", "detail", "alerts"):
            for c in self.out["views"][name]["charts"]:
                self.assertIsNotNone(c["range"], c)
                self.assertEqual(c["series"], self.api_series(c), "%s: %s" % (name, c["title"]))
                checked += 1
        self.assertGreaterEqual(checked, 13)
        # Drawn: pixels in the series' colours on the canvas.
        for view, title in (("overview", "Host CPU busy"), ("overview", "Host memory"),
                            ("detail", "CPU"), ("detail", "Memory")):
            c = self.chart(view, title)
            self.assertGreater(c["series"], 0, c)
            self.assertTrue(c["canvas"], c)
            self.assertGreater(c["coloured"], 0, "%s/%s: no line drawn" % (view, title))
        mem = self.chart("detail", "Memory")
        self.assertGreaterEqual(mem["series"], 3)         # working set, usage, limit
        # The forecast's projection to the limit, when the agent has one.
        # (The page records the forecast it drew from; setUpClass waited for one.)
        fc = mem["forecast"]
        self.assertTrue(fc and fc["resource"] == "memory", fc)
        self.assertEqual(fc["limit"], 128 << 20)
        self.assertEqual(mem["projections"], 1 if fc.get("trend_per_second") is not None else 0, fc)
        alerts = self.chart("alerts", "Alert history")
        self.assertGreaterEqual(alerts["series"], 1)

    def test_24h_charts_read_the_tiers_and_draw_fast(self):
        c = self.chart("detail24h", "Memory")
        start, end, step = c["range"]
        self.assertEqual(end - start >= 86400 - step, True)
        self.assertGreaterEqual(step, 60)                     # the 1 m tier
        self.assertEqual(step % 60, 0)
        self.assertGreater(c["points"], 400)                  # the imported day
        self.assertEqual(c["series"], self.api_series(c))
        self.assertGreater(c["coloured"], 150)                # a line across the day
        worst = max(x["drawMs"] for x in self.out["views"]["detail24h"]["charts"])
        print("\n  web: 24 h chart draw (uPlot, %d points in the memory chart): worst of %d charts %.1f ms (target < 200 ms)"
              % (c["points"], len(self.out["views"]["detail24h"]["charts"]), worst))
        self.assertLess(worst, 200)

    def test_page_load_with_many_containers(self):
        v = self.out
        self.assertGreaterEqual(v["manyRows"], len(self.containers))
        print("\n  web: page load (#/containers, fresh page to data shown, median of 3) with %d containers: %d ms"
              " (target < 1 s with 200); first overview load %d ms; browser run %.1f s"
              % (self.ncontainers, v["manyLoadMs"], self.out["views"]["overview"]["loadMs"], self.browser_s))
        self.assertLess(v["manyLoadMs"], 3000)

    def test_range_steps_and_refresh(self):
        v = self.out["views"]["overview"]
        self.assertTrue(v["refreshed"])
        steps = dict(v["steps"])
        self.assertLessEqual(steps[300], 1)                   # raw samples
        self.assertLess(steps[3600], 60)
        for r in (21600, 86400):                              # the 1 m tier
            self.assertEqual(steps[r] % 60, 0)
            self.assertLess(steps[r], 3600)
        for r in (604800, 2592000):                           # the 1 h tier
            self.assertEqual(steps[r] % 3600, 0)
        for r, st in steps.items():
            self.assertLessEqual(r / st, 1000)                # points per series

    def test_container_list(self):
        v = self.out["views"]["containers"]
        # Other containers on the host come and go: ours are all listed.
        ours = {c.name for c in self.containers}
        self.assertLessEqual(ours, set(v["rows"]))
        # One row per container. Names can repeat (an exited container kept
        # beside a new one of its name, from files running alongside): ids not.
        self.assertEqual(len(v["rowIds"]), len(v["rows"]))
        self.assertEqual(len(v["rowIds"]), len(set(v["rowIds"])))
        self.assertEqual(v["filtered"], [self.name])
        self.assertIn("h11web-%s · 2" % h.RUN_TAG, v["groups"])
        self.assertEqual(sorted(v["sortedByMem"]), sorted(v["rows"]))

    def test_detail_shows_the_logs_and_follows(self):
        v = self.out["views"]["detail"]
        printed = h.docker("logs", self.logged.id).splitlines()
        shown = [line.strip() for line in v["logsFirst"].split("\n")]
        # The lines shown are lines the container printed.
        ticks = [int(s.split()[-1]) for s in printed if s.startswith("h11tick")]
        self.assertIn("h11tick %d" % v["maxBefore"], printed)
        self.assertIn(v["maxBefore"], ticks)
        self.assertTrue(shown)
        later = [int(x.split()[1]) for x in v["logsAfter"].replace("h11tick", "\nh11tick").split("\n")
                 if x.startswith("h11tick ") and x.split()[1].isdigit()]
        self.assertGreater(max(later), v["maxBefore"] + 2, "live follow added no newer line")
        self.assertIn("needle", v["searchText"])
        self.assertNotIn("h11tick", v["searchText"])
        self.assertGreaterEqual(v["processes"], 3)            # sh, httpd and sleep
        self.assertIn("8080", v["ports"])
        self.assertIn("/h11data", v["volumes"])
        self.assertTrue(any("unpause" in e for e in v["timeline"]), v["timeline"])
        self.assertIn("running", v["info"])

    def test_silence_needs_the_token(self):
        v = self.out["views"]["alerts"]
        self.assertIn("401", v["without"])
        self.assertIn("created", v["withTok"])
        sid = v["withTok"].split()[1]
        sils = self.agent.get("/api/v2/silences").json()
        mine = [s for s in sils if s["id"] == sid]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["matchers"][0]["name"], "alertname")
        self.assertEqual(mine[0]["matchers"][0]["value"], "H11WebTest")
        self.assertEqual(mine[0]["status"]["state"], "active")
        self.assertIn(sid, v["silenceRows"])
        self.assertEqual(len(sils), 1, "the refused attempt created a silence")
        self.assertIn("H11WebTest", v["alertsText"])
        self.assertIn("hook", v["notes"])

    def test_phone_and_screenshots(self):
        self.assertLessEqual(self.out["phoneScrollWidth"], 400, "the page scrolls sideways on a phone")
        for n in ("overview-1280", "containers-1280", "detail-1280", "alerts-1280",
                  "overview-390", "detail-390", "containers-390"):
            p = os.path.join(SHOTS, n + ".png")
            self.assertTrue(os.path.getsize(p) > 5000, p)


class TestWebServing(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.agent = h.Agent(args=("--no-ebpf",)).start()

    @classmethod
    def tearDownClass(cls):
        cls.agent.stop()

    def test_files_and_types(self):
        r = self.agent.get("/")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["Content-Type"].startswith("text/html"))
        self.assertIn("/web/app.js", r.text)
        with open(os.path.join(h.ROOT, "dashboards/web/index.html")) as f:
            self.assertEqual(r.text, f.read())
        for path, typ, src in (("/web/app.js", "application/javascript", "dashboards/web/app.js"),
                               ("/web/app.css", "text/css", "dashboards/web/app.css"),
                               ("/web/vendor/uPlot.iife.min.js", "application/javascript",
                                "dashboards/web/vendor/uPlot.iife.min.js"),
                               ("/web/vendor/uPlot.min.css", "text/css", "dashboards/web/vendor/uPlot.min.css")):
            r = self.agent.get(path)
            self.assertEqual(r.status, 200, path)
            self.assertTrue(r.headers["Content-Type"].startswith(typ), path)
            with open(os.path.join(h.ROOT, src), "rb") as f:
                self.assertEqual(r.body, f.read(), path)

    def test_default_agent_views_have_no_console_errors(self):
        if not shutil.which("node") or not chromium_path():
            h.skip("node or chromium is not installed")
        why = ensure_playwright()
        if why:
            h.skip(why)
        os.makedirs(SHOTS, exist_ok=True)
        d = tempfile.mkdtemp(prefix="web-", dir=h.WORK)
        self.addCleanup(shutil.rmtree, d, True)
        cpath = os.path.join(d, "browser.json")
        with open(cpath, "w") as f:
            json.dump({"url": self.agent.url, "chromium": chromium_path(), "shots": SHOTS, "plain": True}, f)
        env = dict(os.environ, NODE_PATH=os.path.join(NODE_DIR, "node_modules"))
        r = subprocess.run(["node", os.path.join(h.HERE, "web_browser.js"), cpath], capture_output=True,
                           text=True, timeout=90, env=env)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        out = json.loads(r.stdout)
        self.assertEqual(out["errors"], [])
        self.assertEqual(sorted(out["views"]), ["plain-alerts", "plain-containers", "plain-overview"])
        for name, v in out["views"].items():
            self.assertEqual(v["consoleErrors"], [], name)
        self.assertIn("no notifier", out["views"]["plain-alerts"]["notes"])

    def test_gzip(self):
        r = self.agent.get("/web/vendor/uPlot.iife.min.js", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(r.headers.get("Content-Encoding"), "gzip")
        self.assertLess(len(r.body), 30000)

    def test_no_traversal_or_unknown_files(self):
        for path in ("/web/../agent/http.c", "/web/%2e%2e/Makefile", "/web/", "/web/vendor/",
                     "/web//etc/passwd", "/web/app.js/", "/web/nope.js", "/index.html", "/web/vendor/../app.js"):
            r = self.agent.get(path)
            self.assertEqual(r.status, 404, path)


if __name__ == "__main__":
    unittest.main()
