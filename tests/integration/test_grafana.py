"""The Grafana dashboards (dashboards/grafana/*.json) against real data.

An agent watches a real container that burns CPU under a quota, writes to
disk, serves and fetches HTTP on its loopback (eBPF TCP series) and logs;
it fires a test alert to a webhook on loopback. The container sits on a
user-defined Docker network (the test dockerd runs with --bridge=none, so
the default network would leave it only lo) and moves known byte counts
over its eth0 to and from an HTTP peer the test runs on the network's
gateway address; the agent's eth0 counters must show those bytes. Debian's
Prometheus scrapes the agent every second. Every PromQL expression of every
panel, with the template variables substituted ($instance: the agent's
address in Prometheus, the All value `.*` against the agent; $name: the
container; $__rate_interval: 15s), is run as Grafana runs it (query_range
over the last minute) against Prometheus AND against the agent's own
/api/v1/query_range, and every one must return data. The variable queries
must list the agent and the container, and the JSON must carry what
Grafana's import needs.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import http.server
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

DASH = os.path.join(h.ROOT, "dashboards", "grafana")
RATE = "15s"
KIB = 1024
DOWN = 768 * KIB            # bytes the container fetches from the peer, each round
UP = 512 * KIB              # bytes it posts to the peer, each round
ROUNDS = 4


def dashboards():
    out = {}
    for f in sorted(os.listdir(DASH)):
        if f.endswith(".json"):
            with open(os.path.join(DASH, f)) as fh:
                out[f] = json.load(fh)
    return out


def exprs(board):
    for p in board["panels"]:
        for t in p.get("targets", []):
            yield p, t["expr"]


FUNCS = {"sum", "rate", "increase", "topk", "bottomk", "count", "max", "min", "avg", "by", "on", "or", "and",
         "unless", "vector", "histogram_quantile", "without", "ignoring", "le", "offset"}


def families(expr):
    """Metric names an expression reads (names followed by { or a space)."""
    names = set()
    for m in re.finditer(r'([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{', expr):
        n = m.group(1)
        if n not in FUNCS:
            names.add(re.sub(r"_bucket$", "", n))
    return names


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


class Peer(http.server.BaseHTTPRequestHandler):
    """The container's partner across its eth0: GET sends DOWN bytes, POST
    reads the body and counts it in server.received."""
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(DOWN))
        self.end_headers()
        self.wfile.write(b"\0" * DOWN)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        got = len(self.rfile.read(n))
        with self.server.lock:
            self.server.received += got
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


class TestDashboardJSON(unittest.TestCase):
    """What Grafana needs to import and provision a dashboard."""

    def test_import_fields(self):
        boards = dashboards()
        self.assertEqual(sorted(boards), ["monitor-agent.json", "monitor-alerts.json",
                                          "monitor-container.json", "monitor-overview.json"])
        uids = set()
        for f, b in boards.items():
            for k in ("uid", "title", "panels", "templating", "schemaVersion"):
                self.assertIn(k, b, f)
            self.assertRegex(b["uid"], r"^[a-zA-Z0-9_-]{1,40}$", f)
            self.assertNotIn(b["uid"], uids)
            uids.add(b["uid"])
            self.assertIsInstance(b["schemaVersion"], int)
            names = [v["name"] for v in b["templating"]["list"]]
            self.assertIn("instance", names, f)
            self.assertIn("datasource", names, f)
            ids = set()
            ntargets = 0
            for p in b["panels"]:
                self.assertIn("type", p, f)
                self.assertIn("gridPos", p, f)
                g = p["gridPos"]
                self.assertTrue(0 <= g["x"] < 24 and 0 < g["w"] <= 24 and g["x"] + g["w"] <= 24 and g["h"] > 0, (f, p["title"]))
                self.assertNotIn(p["id"], ids)
                ids.add(p["id"])
                if p["type"] == "row":
                    continue
                self.assertIn(p["type"], ("timeseries", "stat", "table", "bargauge", "gauge"))
                self.assertTrue(p["targets"], (f, p["title"]))
                for t in p["targets"]:
                    self.assertTrue(t["expr"] and t["refId"], (f, p["title"]))
                    self.assertEqual(t["datasource"]["uid"], "${datasource}")
                    ntargets += 1
                    if "$" in t["expr"]:
                        for v in re.findall(r"\$(\w+)", t["expr"]):
                            self.assertIn(v, names + ["__rate_interval"], (f, t["expr"]))
            self.assertGreater(ntargets, 5, f)

    def test_generated_files_are_current(self):
        d = tempfile.mkdtemp(prefix="grafana-", dir=h.WORK if os.path.isdir(h.WORK) else None)
        self.addCleanup(shutil.rmtree, d, True)
        for f in os.listdir(DASH):
            shutil.copy(os.path.join(DASH, f), d)
        subprocess.run([sys.executable, os.path.join(d, "generate.py")], check=True)
        for f in dashboards():
            with open(os.path.join(d, f)) as a, open(os.path.join(DASH, f)) as b:
                self.assertEqual(a.read(), b.read(), "%s differs from generate.py's output" % f)


class TestDashboardQueries(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.containers, cls.agent, cls.prom, cls.hook, cls.peer, cls.network = [], None, None, None, None, None
        h.require_docker()
        cls.prometheus = h.require_binary("prometheus")
        cls.network = h.docker_network("gnet", "the network panels need a container with an interface other than lo")
        try:
            cls._start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _start(cls):
        cls.dir = tempfile.mkdtemp(prefix="grafana-", dir=h.WORK)
        cls.hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        threading.Thread(target=cls.hook.serve_forever, daemon=True).start()
        cls.name = h.unique("grafana")
        rules = os.path.join(cls.dir, "rules.yml")
        with open(rules, "w") as f:
            f.write("groups:\n- name: grafana\n  interval: 1s\n  rules:\n  - alert: GrafanaTest\n"
                    "    expr: container_memory_usage_bytes{name=\"%s\"} > 0\n" % cls.name)
        config = ("forecast:\n  interval: 2s\n  window: 30s\n  min_points: 5\n"
                  "rule_files:\n  - %s\nroute:\n  receiver: hook\n  group_wait: 0s\n"
                  "receivers:\n- name: hook\n  webhook_configs:\n  - url: http://127.0.0.1:%d/hook\n"
                  % (rules, cls.hook.server_address[1]))
        cls.ctr = h.docker_run(cls.containers, "grafana", [
            "sh", "-c", "mkdir -p /tmp/www && echo hi > /tmp/www/index.html && httpd -p 127.0.0.1:8080 -h /tmp/www; "
                        "while true; do wget -q -O /dev/null http://127.0.0.1:8080/; wget -q -O /dev/null http://127.0.0.1:1/; "
                        "dd if=/dev/zero of=/tmp/f bs=64k count=16 conv=fsync 2>/dev/null; echo tick; "
                        "i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; done"],
            opts=("-m", "96m", "--cpus", "0.5", "--pids-limit", "100", "--network", cls.network))
        cls.agent = h.Agent(config=config).start()
        cls._move_known_bytes()
        port = h.free_port()
        cfg = os.path.join(cls.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: monitor\n"
                    "    static_configs:\n      - targets: ['%s']\n" % cls.agent.listen)
        cls.promlog = open(os.path.join(cls.dir, "prometheus.log"), "wb")
        cls.prom = subprocess.Popen([cls.prometheus, "--config.file=" + cfg,
                                     "--storage.tsdb.path=" + os.path.join(cls.dir, "data"),
                                     "--web.listen-address=127.0.0.1:%d" % port],
                                    stdin=subprocess.DEVNULL, stdout=cls.promlog, stderr=cls.promlog,
                                    cwd=cls.dir, preexec_fn=h.die_with_parent)
        cls.prom_url = "http://127.0.0.1:%d" % port
        h.wait_for("Prometheus to scrape the agent", lambda: cls.prom_query(
            "machine_memory_bytes", instant=True), 30, 0.5)
        # Enough scrapes for 15 s rate windows over a minute's range.
        time.sleep(20)
        cls.exposed = set()
        for line in cls.agent.get("/metrics").text.splitlines():
            if line.startswith("# TYPE "):
                name, typ = line.split()[2:4]
                cls.exposed.add(name)
        # Families with no sample have a TYPE line only: count those with samples.
        have = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*?)(?:_bucket|_sum|_count)?[{ ]",
                              cls.agent.get("/metrics").text, re.M))
        cls.exposed &= have | {n for n in cls.exposed if n + "_bucket" in have}

    @classmethod
    def tearDownClass(cls):
        if cls.prom:
            cls.prom.send_signal(signal.SIGTERM)
            try:
                cls.prom.wait(10)
            except subprocess.TimeoutExpired:
                cls.prom.kill()
                cls.prom.wait()
            cls.promlog.close()
        if cls.agent:
            cls.agent.stop()
        for c in cls.containers:
            h.docker_rm(c)
        if cls.network:
            h.docker("network", "rm", cls.network, check=False)
        for srv in (cls.hook, cls.peer):
            if srv:
                srv.shutdown()
                srv.server_close()

    @classmethod
    def _eth0(cls, e):
        """The container's (receive, transmit) byte counters on eth0, or None."""
        v = [e.get(f, name=cls.name, interface="eth0") for f in
             ("container_network_receive_bytes_total", "container_network_transmit_bytes_total")]
        return (v[0][0][1], v[1][0][1]) if len(v[0]) == 1 and len(v[1]) == 1 else None

    @classmethod
    def _move_known_bytes(cls):
        """ROUNDS times, the container fetches DOWN bytes from the peer on the
        network's gateway address and posts UP bytes to it, over its eth0;
        records the agent's eth0 counters before and once the bytes show.
        (busybox wget posts a file as a C string: the body holds no NUL.)"""
        net = json.loads(h.docker("network", "inspect", cls.network))[0]
        gw = net["IPAM"]["Config"][0]["Gateway"]
        cls.peer = http.server.ThreadingHTTPServer((gw, 0), Peer)
        cls.peer.lock, cls.peer.received = threading.Lock(), 0
        threading.Thread(target=cls.peer.serve_forever, daemon=True).start()
        before = h.wait_for("the agent to report the container's eth0",
                            lambda: cls._eth0(cls.agent.metrics()), 20)
        url = "http://%s:%d" % (gw, cls.peer.server_address[1])
        h.docker("exec", cls.ctr.id, "sh", "-c",
                 "dd if=/dev/zero bs=1024 count=%d 2>/dev/null | tr '\\0' x >/tmp/up && i=0 && while [ $i -lt %d ]; do "
                 "i=$((i+1)); wget -q -O /dev/null %s/down && wget -q -O /dev/null --post-file /tmp/up %s/up "
                 "|| exit 1; done; rm /tmp/up" % (UP // KIB, ROUNDS, url, url), timeout=60)
        cls.want = (ROUNDS * DOWN, ROUNDS * UP)

        def shown():
            now = cls._eth0(cls.agent.metrics())
            d = (now[0] - before[0], now[1] - before[1]) if now else (0, 0)
            return d if d[0] >= cls.want[0] and d[1] >= cls.want[1] else None
        cls.moved = h.wait_for("the agent's eth0 counters to show %d bytes in and %d out" % cls.want, shown, 15)

    @classmethod
    def prom_query(cls, q, instant=False):
        return cls.run_query(cls.prom_url, q, instant)

    @staticmethod
    def run_query(base, q, instant=False):
        now = time.time()
        if instant:
            u = "/api/v1/query?" + urllib.parse.urlencode({"query": q, "time": now})
        else:
            u = "/api/v1/query_range?" + urllib.parse.urlencode({"query": q, "start": now - 60, "end": now, "step": 5})
        r = h.http_get(base + u, timeout=10)
        doc = json.loads(r.body)
        if r.status != 200:
            raise AssertionError("%s: %s: %s" % (base, q, doc.get("error")))
        return doc["data"]["result"]

    def subst(self, expr, instance):
        return (expr.replace("$__rate_interval", RATE).replace("$instance", instance)
                .replace("$name", self.name))

    def test_every_expression_returns_data(self):
        checked, empty = 0, []
        inst = self.agent.listen        # dots match themselves too
        for f, b in dashboards().items():
            for p, e in exprs(b):
                # Named first: a family the agent does not expose says more than an empty result.
                missing = sorted(n for n in families(e) if n not in self.exposed)
                if missing:
                    empty.append("%s / %s: %s not exposed by the agent" % (f, p["title"], ", ".join(missing)))
                    continue
                for where, base, i in (("prometheus", self.prom_url, inst), ("agent", self.agent.url, ".*")):
                    q = self.subst(e, i)
                    if not self.run_query(base, q):
                        empty.append("%s: %s / %s: %s" % (where, f, p["title"], q))
                checked += 1
        print("\n  grafana: %d expressions returned data on Prometheus and on the agent" % checked)
        self.assertEqual(empty, [])
        self.assertGreater(checked, 50)

    def test_network_counters_show_the_bytes_moved(self):
        """The bytes behind the network panels are the bytes the container moved."""
        rx, tx = self.moved
        want_rx, want_tx = self.want
        print("\n  grafana: eth0 counters moved %d in for %d fetched, %d out for %d posted" % (rx, want_rx, tx, want_tx))
        self.assertEqual(self.peer.received, want_tx)
        # Ethernet/IP/TCP headers, HTTP headers and the ACKs of the other
        # direction ride along: at most 10% + 5% of the other way + 64 KiB.
        self.assertLessEqual(rx, want_rx * 1.10 + want_tx * 0.05 + 65536, (rx, want_rx))
        self.assertLessEqual(tx, want_tx * 1.10 + want_rx * 0.05 + 65536, (tx, want_tx))
        # Prometheus scraped the same counters: its newest eth0 sample is at
        # least the agent's total after the transfer started.
        for fam, least in (("container_network_receive_bytes_total", want_rx),
                           ("container_network_transmit_bytes_total", want_tx)):
            r = self.prom_query('%s{name="%s",interface="eth0"}' % (fam, self.name), instant=True)
            self.assertEqual(len(r), 1, (fam, r))
            self.assertGreaterEqual(float(r[0]["value"][1]), least, fam)

    def test_variables_list_the_agent_and_the_container(self):
        for f, b in dashboards().items():
            for v in b["templating"]["list"]:
                if v["type"] != "query":
                    continue
                m = re.match(r"label_values\((.*),\s*(\w+)\)$", v["query"]["query"])
                self.assertTrue(m, v["query"])
                sel, label = m.group(1), m.group(2)
                sel_p = sel.replace("$instance", self.agent.listen)
                sel_a = sel.replace("$instance", ".*")
                for base, s in ((self.prom_url, sel_p), (self.agent.url, sel_a)):
                    r = h.http_get(base + "/api/v1/series?" + urllib.parse.urlencode({"match[]": s}))
                    vals = {x.get(label) for x in json.loads(r.body)["data"]}
                    if label == "instance":
                        if base == self.prom_url:
                            self.assertIn(self.agent.listen, vals, (f, v["name"]))
                        else:
                            self.assertTrue(r.status == 200 and vals, (f, v["name"]))
                    else:
                        self.assertIn(self.name, vals, (f, v["name"], base))


if __name__ == "__main__":
    unittest.main()
