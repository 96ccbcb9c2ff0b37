"""The fleet: two agents (their own ports, data dirs and host labels) watch
real containers; one real Prometheus scrapes both (and scrapes one of them
again in each exposition format), a second real Prometheus started with
--web.enable-remote-write-receiver receives what both push with
remote_write. Queries on both servers must find both hosts' containers with
the values the agents' own API gives. Then the receiver is stopped for
OUTAGE_S seconds (20 s with a 500 ms interval: 40 ticks queue in the
store, many requests' worth, short enough for the suite) and started again:
it must end up holding every sample of the outage, exactly the agent's own.

Needs root, Docker and Debian's prometheus (2.42); skips without them."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.parse

import harness as h

OUTAGE_S = int(os.environ.get("MONITOR_IT_OUTAGE_S", "20"))
INTERVAL_S = 0.5            # the agents' tick
MEM_LIMIT = 64 * 1024 * 1024


class Prometheus:
    """A real Prometheus on a free port with its own data dir."""

    def __init__(self, binary, config, args=()):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="prometheus-", dir=h.WORK)
        self.port = h.free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.cfg = os.path.join(self.dir, "prometheus.yml")
        with open(self.cfg, "w") as f:
            f.write(config)
        self.args = list(args)
        self.proc = None
        self.log = None

    def start(self):
        self.log = open(os.path.join(self.dir, "prometheus.log"), "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--config.file=" + self.cfg, "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port] + self.args,
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, cwd=self.dir,
            preexec_fn=h.die_with_parent)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("prometheus exited:\n" + self.logtail())
            return h.http_get(self.url + "/-/ready", timeout=2).status == 200
        h.wait_for("prometheus on %s to be ready" % self.url, ready, 30, 0.2)
        return self

    def logtail(self):
        with open(os.path.join(self.dir, "prometheus.log"), errors="replace") as f:
            return f.read()[-3000:]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log:
            self.log.close()
            self.log = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def api(self, path, **params):
        r = h.http_get(self.url + path + ("?" + urllib.parse.urlencode(params, doseq=True) if params else ""),
                       timeout=10)
        if r.status != 200:
            raise AssertionError("%s%s: %d %s" % (self.url, path, r.status, r.body[:300]))
        return json.loads(r.body)["data"]

    def query(self, q, t=None):
        return self.api("/api/v1/query", query=q, **({"time": "%.3f" % t} if t else {}))["result"]


def agent_query(agent, q, t=None):
    params = {"query": q}
    if t:
        params["time"] = "%.3f" % t
    r = agent.get("/api/v1/query?" + urllib.parse.urlencode(params))
    if r.status != 200:
        raise AssertionError("agent query %s: %d %s" % (q, r.status, r.body[:300]))
    return json.loads(r.body)["data"]["result"]


def with_label(sel, name, value):
    """sel with name="value" added to its matchers."""
    if sel.endswith("}"):
        return sel[:-1] + ',%s="%s"}' % (name, value)
    return sel + '{%s="%s"}' % (name, value)


def points(result):
    """[(t_ms, value_text)] of a range-vector result with one series."""
    assert len(result) == 1, result
    return [(int(round(float(t) * 1000)), v) for t, v in result[0]["values"]]


class FleetTest(unittest.TestCase):
    containers = []
    agents = []
    proms = []

    @classmethod
    def setUpClass(cls):
        cls.containers, cls.agents, cls.proms = [], [], []
        h.require_docker()
        prometheus = h.require_binary("prometheus")
        try:
            cls.boxes = [h.docker_run(cls.containers, "fleet%d" % i, ["sleep", "900"], ["--memory", "64m"])
                         for i in range(2)]
            cls.rx = Prometheus(prometheus, "global:\n  scrape_interval: 1h\n",
                                ["--web.enable-remote-write-receiver"])
            cls.proms.append(cls.rx)
            cls.rx.start()
            for host in ("it-a", "it-b"):
                cfg = ("external_labels:\n  host: %s\n"
                       "remote_write:\n  - url: %s/api/v1/write\n    name: rx\n"
                       "    queue_config:\n      batch_send_deadline: 1s\n"
                       "      min_backoff: 100ms\n      max_backoff: 1s\n" % (host, cls.rx.url))
                a = h.Agent(config=cfg, args=["--no-ebpf"], interval="%dms" % (INTERVAL_S * 1000))
                cls.agents.append(a)
                a.start()
            a1, a2 = cls.agents
            jobs = ("scrape_configs:\n"
                    "  - job_name: agents\n    static_configs:\n      - targets: ['%s', '%s']\n" % (a1.listen, a2.listen))
            for fmt in ("text", "openmetrics", "protobuf"):
                jobs += ("  - job_name: fmt_%s\n    params:\n      format: [%s]\n"
                         "    static_configs:\n      - targets: ['%s']\n" % (fmt, fmt, a1.listen))
            # native-histograms: 2.42 then puts protobuf first in its Accept
            # header, so the agents job negotiates the protobuf exposition.
            cls.scraper = Prometheus(prometheus, "global:\n  scrape_interval: 1s\n" + jobs,
                                     ["--enable-feature=native-histograms"])
            cls.proms.append(cls.scraper)
            cls.scraper.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for p in cls.proms:
            p.cleanup()
        for a in cls.agents:
            a.stop(timeout=20)
        for c in cls.containers:
            h.docker_rm(c)
        cls.proms, cls.agents, cls.containers = [], [], []

    # -- both servers see both hosts' containers, with the agents' values --------

    def test_1_fleet(self):
        a1, a2 = self.agents
        names = "|".join(b.name for b in self.boxes)

        def scraped():
            res = self.scraper.query('container_spec_memory_limit_bytes{job="agents",name=~"%s"}' % names)
            return len(res) == 4 and res
        res = h.wait_for("the scraper to hold both agents' containers", scraped, 20, 0.5)
        self.assertEqual({(r["metric"]["instance"], r["metric"]["name"]) for r in res},
                         {(a.listen, b.name) for a in self.agents for b in self.boxes})
        for r in res:
            self.assertEqual(float(r["value"][1]), MEM_LIMIT)
        up = self.scraper.query('up{job="agents"}')
        self.assertEqual(sorted(float(r["value"][1]) for r in up), [1.0, 1.0])

        def pushed():
            res = self.rx.query('container_spec_memory_limit_bytes{name=~"%s"}' % names)
            return len(res) == 4 and res
        res = h.wait_for("the receiver to hold both agents' containers", pushed, 20, 0.5)
        self.assertEqual({(r["metric"]["host"], r["metric"]["name"]) for r in res},
                         {(host, b.name) for host in ("it-a", "it-b") for b in self.boxes})
        for r in res:
            self.assertEqual(float(r["value"][1]), MEM_LIMIT)
            self.assertTrue(r["metric"]["id"].endswith(next(b.id for b in self.boxes if b.name == r["metric"]["name"])))

        # The agents' own API: the container's limit, and for a counter the
        # very value the agent's store answers at the same instant.
        for a, host in ((a1, "it-a"), (a2, "it-b")):
            for b in self.boxes:
                c = a.container(b.name)
                self.assertIsNotNone(c, "%s not in %s's API" % (b.name, host))
            sel = 'container_cpu_usage_seconds_total{name="%s",cpu="total"}' % self.boxes[0].name
            t = time.time() - 3
            hsel = with_label(sel, "host", host)

            def arrived():
                res = self.rx.query("timestamp(%s)" % hsel)
                return res and float(res[0]["value"][1]) >= t
            h.wait_for("%s's samples up to %.0f at the receiver" % (host, t), arrived, 10, 0.5)
            mine = agent_query(a, sel, t)
            theirs = self.rx.query(hsel, t)
            self.assertEqual(len(mine), 1, mine)
            self.assertEqual(len(theirs), 1, theirs)
            self.assertEqual(mine[0]["value"][1], theirs[0]["value"][1], "%s at %.3f" % (sel, t))
            # What the scraper got is one of the values the agent stored.
            last = self.scraper.query('%s[20s]' % with_label(sel, "instance", a.listen))
            stored = {v for _, v in points(agent_query(a, sel + "[60s]"))}
            for _, v in last[0]["values"][-3:]:
                self.assertIn(v, stored)

        # Every series carries the host label, labels come sorted (the
        # receiver would refuse them otherwise), and nothing was refused.
        self.assertEqual(self.rx.query('count({__name__=~".+",host=""})'), [])
        for a in self.agents:
            m = a.metrics()
            self.assertEqual(m.value("monitor_remote_write_samples_failed_total", remote_name="rx"), 0)
            self.assertGreater(m.value("monitor_remote_write_samples_sent_total", remote_name="rx"), 0)
            self.assertGreater(m.value("monitor_remote_write_sent_bytes_total", remote_name="rx"), 0)

    # -- the scraper gets the same series in each format -------------------------

    def test_2_formats(self):
        a1 = self.agents[0]
        # Negotiation as Prometheus asks, and gzip on each format.
        for accept, want in (
                ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                 "text/plain;version=0.0.4;q=0.5,*/*;q=0.1", "application/openmetrics-text; version=1.0.0"),
                ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.8,"
                 "text/plain;version=0.0.4;q=0.2", "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"),
                ("", "text/plain; version=0.0.4")):
            r = a1.get("/metrics", headers={"Accept": accept, "Accept-Encoding": "gzip"} if accept else {"Accept-Encoding": "gzip"})
            self.assertEqual(r.status, 200)
            self.assertTrue(r.headers.get("Content-Type").startswith(want), r.headers.get("Content-Type"))
            self.assertEqual(r.headers.get("Content-Encoding"), "gzip")
        om = a1.get("/metrics?format=openmetrics").text
        self.assertTrue(om.endswith("# EOF\n"))

        promtool = h.require_binary("promtool")
        body = a1.get("/metrics?format=text").body
        r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
        out = (r.stdout + r.stderr).decode(errors="replace")
        self.assertEqual((r.returncode, out), (0, ""), "promtool check metrics:\n" + out)

        def series(job):
            res = self.scraper.api("/api/v1/series", **{"match[]": '{job="%s"}' % job,
                                                       "start": "%.0f" % (time.time() - 3)})
            return {tuple(sorted((k, v) for k, v in s.items() if k != "job")) for s in res}

        # Series that exist in every scrape: this test's containers' and the
        # agent's own (other containers on a shared host come and go
        # between the jobs' scrapes).
        mine = {b.name for b in self.boxes}

        def stable(s):
            return {x for x in s if dict(x).get("name") in mine or
                    ("id" not in dict(x) and dict(x)["__name__"] not in ("monitor_scrapes_total",))}
        jobs = ("fmt_text", "fmt_openmetrics", "fmt_protobuf")

        def all_scraped():
            got = {j: stable(series(j)) for j in jobs}
            return all(len(g) > 40 for g in got.values()) and got
        got = h.wait_for("every format job scraped", all_scraped, 20, 0.5)
        for j in jobs:
            up = self.scraper.query('up{job="%s"}' % j)
            self.assertEqual(up[0]["value"][1], "1", j)
        base = got["fmt_text"]
        self.assertTrue(any(dict(x).get("name") == self.boxes[0].name for x in base))
        for j in ("fmt_openmetrics", "fmt_protobuf"):
            self.assertEqual(sorted(got[j] - base)[:5], [], j + " has series text lacks")
            self.assertEqual(sorted(base - got[j])[:5], [], j + " lacks series text has")
        # The same value too, where a value does not move: the memory limit.
        for j in jobs:
            res = self.scraper.query('container_spec_memory_limit_bytes{job="%s",name="%s"}' % (j, self.boxes[0].name))
            self.assertEqual(float(res[0]["value"][1]), MEM_LIMIT, j)

    # -- an outage of the receiver loses nothing -----------------------------------

    def test_3_outage(self):
        a1, a2 = self.agents
        sel = 'monitor_ticks_total'
        csel = 'container_cpu_usage_seconds_total{name="%s",cpu="total"}' % self.boxes[1].name
        h.wait_for("samples at the receiver", lambda: len(self.rx.query(sel)) == 2, 20, 0.5)
        self.rx.stop()
        t_stop = time.time()
        retries0 = a1.metrics().value("monitor_remote_write_retries_total", remote_name="rx")
        time.sleep(OUTAGE_S)
        # While it is down: pending grows, nothing is dropped or refused.
        m = a1.metrics()
        self.assertGreater(m.value("monitor_remote_write_samples_pending", remote_name="rx"), 0)
        self.assertGreater(m.value("monitor_remote_write_lag_seconds", remote_name="rx"), OUTAGE_S - 10)
        self.assertGreater(m.value("monitor_remote_write_retries_total", remote_name="rx"), retries0)
        t_start = time.time()
        self.rx.start()

        def caught_up(a):
            m = a.metrics()
            return m.value("monitor_remote_write_lag_seconds", remote_name="rx") < 4
        for a in self.agents:
            h.wait_for("%s to catch up" % a.listen, lambda: caught_up(a), 60, 0.5)
        time.sleep(1.5)
        window = int(t_start - t_stop) + 10
        t = t_start - 2
        for a, host in ((a1, "it-a"), (a2, "it-b")):
            for s in (sel, csel):
                rng = "%s[%ds]" % (s, window)
                mine = points(agent_query(a, rng, t))
                theirs = points(self.rx.query("%s[%ds]" % (with_label(s, "host", host), window), t))
                self.assertGreaterEqual(len(mine), OUTAGE_S / INTERVAL_S - 2, "%s: %d samples" % (s, len(mine)))
                # Every sample of the window, with its timestamp and value, in order.
                self.assertEqual(theirs, mine, "%s on %s: receiver differs from the agent" % (s, host))
                ts = [p[0] for p in theirs]
                self.assertEqual(ts, sorted(set(ts)))
            m = a.metrics()
            self.assertEqual(m.value("monitor_remote_write_samples_dropped_total", remote_name="rx"), 0)
            self.assertEqual(m.value("monitor_remote_write_samples_failed_total", remote_name="rx"), 0)
        # The ticks count up by one a tick through the outage: no gap.
        vals = [float(v) for _, v in points(self.rx.query('%s{host="it-a"}[%ds]' % (sel, window), t))]
        self.assertEqual(vals, [vals[0] + i for i in range(len(vals))])


if __name__ == "__main__":
    unittest.main()
