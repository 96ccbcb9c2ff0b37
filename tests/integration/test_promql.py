"""PromQL and the Prometheus HTTP API, against the real Prometheus.

The same data (tests/promql/gen_data.py: jittered 15 s scrapes of container
counters and gauges, a counter reset, series that start late and end early,
histogram buckets) goes into the agent with `monitor import` and into
Prometheus 2.42 with `promtool tsdb create-blocks-from openmetrics`. Every
query of tests/promql/queries.txt then runs on both, as instant queries at
several times and as range queries with several steps, and the answers must
match: same status and errorType, same result type, the same label sets,
the same timestamps, values within 1e-9 relative (or both NaN).

Also: parse errors give Prometheus' exact messages and positions
(tests/promql/parse_errors.txt), the API's parameter errors match, and the
calls Grafana's data source makes answer with the shapes Prometheus gives.
"""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request
import urllib.error

import harness as h

# The limits test times small queries beside a heavy one (under 0.5 s):
# other files' agents on the same cores would stretch that; tests/run runs
# this file alone.
SERIAL = True

PROMQL_DIR = os.path.join(h.ROOT, "tests", "promql")
CORPUS = os.path.join(PROMQL_DIR, "queries.txt")
PARSE_ERRORS = os.path.join(PROMQL_DIR, "parse_errors.txt")
GEN = os.path.join(PROMQL_DIR, "gen_data.py")
HOURS = 2.5
REL_TOL = 1e-9

# Evaluation times and ranges, in seconds after the data's start. Every one
# has an odd number of milliseconds; samples have even ones (gen_data.py).
INSTANTS = [1800.001, 3600.123, 5400.555, 7777.777, 8999.999, 9200.001, 9600.001]
RANGES = [(600.001, 9300.001, 300), (3000.003, 4000.003, 15), (100.005, 8900.005, 127),
          (4321.987, 4321.987, 60)]
AT = {"T1": 4000.001, "T2": 7000.003}


def post(base, path, form, timeout=30):
    data = urllib.parse.urlencode(form, doseq=True).encode()
    req = urllib.request.Request(base + path, data=data,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, {"raw": body.decode(errors="replace")}


def get(base, path, params=None, timeout=30):
    url = base + path + ("?" + urllib.parse.urlencode(params, doseq=True) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, {"raw": body.decode(errors="replace")}


def quiet_agent(config=""):
    """An agent that collects next to nothing (a fixture cgroup tree, no
    Docker, no eBPF, a tick a minute), so the queries measure the store and
    the engine, not collection of whatever else runs on the host."""
    return h.Agent(config="docker:\n  enabled: false\n" + config,
                   host_root=os.path.join(h.ROOT, "tests", "fixtures", "cgroup", "v2"),
                   interval="60s", args=["--no-ebpf"])


def load_corpus():
    out = []
    with open(CORPUS) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            tag = ""
            for t in ("instant:", "ordered:", "error:", "empty:"):
                if line.startswith(t):
                    tag, line = t[:-1], line[len(t):].strip()
            out.append((tag, line))
    return out


def num(s):
    return float(s)   # Python reads NaN, +Inf, -Inf as Prometheus writes them


def same_value(a, b):
    x, y = num(a), num(b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if x == y:
        return True
    if math.isinf(x) or math.isinf(y):
        return False
    return abs(x - y) <= REL_TOL * max(abs(x), abs(y))


def key(metric):
    return tuple(sorted(metric.items()))


def compare(tag, got, want):
    """Returns None when the answers agree, else why not."""
    gs, gd = got
    ws, wd = want
    if wd.get("status") == "error" or gd.get("status") == "error":
        if wd.get("status") != gd.get("status"):
            return "status: agent %s %r, prometheus %s %r" % (gs, gd.get("error"), ws, wd.get("error"))
        if wd.get("errorType") != gd.get("errorType"):
            return "errorType: agent %s (%s), prometheus %s (%s)" % (
                gd.get("errorType"), gd.get("error"), wd.get("errorType"), wd.get("error"))
        return None
    g, w = gd["data"], wd["data"]
    if g["resultType"] != w["resultType"]:
        return "resultType: agent %s, prometheus %s" % (g["resultType"], w["resultType"])
    rt = g["resultType"]
    if rt in ("scalar", "string"):
        if g["result"][0] != w["result"][0]:
            return "time: agent %r, prometheus %r" % (g["result"][0], w["result"][0])
        ok = same_value(g["result"][1], w["result"][1]) if rt == "scalar" else g["result"][1] == w["result"][1]
        return None if ok else "value: agent %r, prometheus %r" % (g["result"][1], w["result"][1])
    field = "value" if rt == "vector" else "values"
    gm = {key(s["metric"]): s[field] for s in g["result"]}
    wm = {key(s["metric"]): s[field] for s in w["result"]}
    if len(gm) != len(g["result"]):
        return "agent returned a label set twice"
    if set(gm) != set(wm):
        only_g = [dict(k) for k in set(gm) - set(wm)][:3]
        only_w = [dict(k) for k in set(wm) - set(gm)][:3]
        return "series: only in agent %s; only in prometheus %s (agent %d, prometheus %d)" % (
            only_g, only_w, len(gm), len(wm))
    for k in wm:
        gp, wp = gm[k], wm[k]
        if rt == "vector":
            gp, wp = [gp], [wp]
        if len(gp) != len(wp):
            gt = [p[0] for p in gp]
            wt = [p[0] for p in wp]
            return "%s: %d points in agent, %d in prometheus; only agent %s only prom %s" % (
                dict(k), len(gp), len(wp), sorted(set(gt) - set(wt))[:4], sorted(set(wt) - set(gt))[:4])
        for a, b in zip(gp, wp):
            if a[0] != b[0]:
                return "%s: timestamp %r in agent, %r in prometheus" % (dict(k), a[0], b[0])
            if not same_value(a[1], b[1]):
                return "%s at %r: agent %s, prometheus %s" % (dict(k), a[0], a[1], b[1])
    if tag == "ordered" and rt == "vector":
        gv = [s["value"][1] for s in g["result"]]
        wv = [s["value"][1] for s in w["result"]]
        if not all(same_value(a, b) for a, b in zip(gv, wv)):
            return "order: agent %s, prometheus %s" % (gv, wv)
    return None


class Prometheus:
    """A Prometheus server on loopback over a TSDB made by promtool."""

    def __init__(self, workdir, om_file):
        self.dir = workdir
        self.db = os.path.join(workdir, "tsdb")
        r = subprocess.run([h.require_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics",
                            om_file, self.db], capture_output=True, timeout=300)
        if r.returncode != 0:
            raise AssertionError("promtool create-blocks-from failed: %s" % (r.stdout + r.stderr).decode()[-2000:])
        cfg = os.path.join(workdir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 15s\n  evaluation_interval: 1m\n")
        self.port = h.free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.log = open(os.path.join(workdir, "prometheus.log"), "wb")
        self.proc = subprocess.Popen(
            [h.require_binary("prometheus"), "--config.file=" + cfg, "--storage.tsdb.path=" + self.db,
             "--storage.tsdb.retention.time=100y", "--web.listen-address=127.0.0.1:%d" % self.port,
             "--query.lookback-delta=5m"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, cwd=workdir)

        def ready():
            if self.proc.poll() is not None:
                with open(os.path.join(workdir, "prometheus.log"), errors="replace") as f:
                    raise AssertionError("prometheus exited:\n" + f.read()[-2000:])
            try:
                return h.http_get(self.base + "/-/ready", timeout=2).status == 200
            except OSError:
                return False
        h.wait_for("prometheus to be ready", ready, 60, 0.2)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class PromQLTest(unittest.TestCase):
    prom = None
    agent = None

    @classmethod
    def setUpClass(cls):
        h.require_binary("prometheus")
        h.require_binary("promtool")
        cls.work = tempfile.mkdtemp(prefix="promql-", dir=h.WORK)
        # Recent enough that neither store's retention removes it.
        cls.base = (int(time.time()) - int(HOURS * 3600) - 1800) // 60 * 60
        cls.om = os.path.join(cls.work, "data.om")
        r = subprocess.run([sys.executable, GEN, cls.om, str(cls.base), str(HOURS)],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise AssertionError("gen_data.py: " + r.stderr)
        cls.samples = int(r.stdout.strip())
        try:
            cls.prom = Prometheus(cls.work, cls.om)
            cls.agent = quiet_agent()
            r = subprocess.run([h.MONITOR, "import", "--data-dir", cls.agent.data_dir, cls.om],
                               capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                raise AssertionError("monitor import: " + r.stderr)
            cls.agent.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.agent and cls.agent.proc:
            cls.agent.stop()
        cls.agent = None
        if cls.prom:
            cls.prom.stop()
        cls.prom = None
        shutil.rmtree(cls.work, ignore_errors=True)

    def t(self, offset_s):
        return "%.3f" % (self.base + offset_s)

    def both(self, path, form):
        return (post(self.agent.url, path, form), post(self.prom.base, path, form))

    # ---- the corpus ---------------------------------------------------------------

    def test_corpus_matches_prometheus(self):
        corpus = load_corpus()
        self.assertGreaterEqual(len(corpus), 150, "the corpus must hold at least 150 queries")
        only = os.environ.get("PROMQL_ONLY")
        ats = {k: self.t(v) for k, v in AT.items()}
        failures, passed, total = [], 0, 0
        queries_ok = 0
        for tag, q in corpus:
            if only and only not in q:
                continue
            for k, v in ats.items():
                q = q.replace("{%s}" % k, v)
            ok, errors, answers = True, 0, 0
            runs = [("/api/v1/query", {"query": q, "time": self.t(s)}) for s in INSTANTS]
            if tag not in ("instant", "ordered"):
                runs += [("/api/v1/query_range", {"query": q, "start": self.t(a), "end": self.t(b), "step": str(st)})
                         for a, b, st in RANGES]
            for path, form in runs:
                total += 1
                got, want = self.both(path, form)
                why = compare(tag, got, want)
                errors += got[1].get("status") == "error"
                data = got[1].get("data") or {}
                answers += bool(data.get("result")) and data.get("resultType") is not None
                if why:
                    ok = False
                    failures.append("%s %s\n    %s" % (path, form, why))
                else:
                    passed += 1
            if tag == "error" and not errors:
                ok = False
                failures.append("%s\n    expected an error at some evaluation, none failed" % q)
            if tag not in ("error", "empty") and not answers:
                ok = False
                failures.append("%s\n    empty at every evaluation: the query tests nothing (tag it empty:)" % q)
            if tag == "empty" and answers:
                ok = False
                failures.append("%s\n    tagged empty: but answered" % q)
            queries_ok += ok
        n = len(corpus) if not only else queries_ok + len({f.split("'query': ")[1] for f in failures})
        sys.stderr.write("\npromql differential: %d queries, %d of them identical everywhere; "
                         "%d evaluations: %d passed, %d failed\n" % (n, queries_ok, total, passed, total - passed))
        if failures:
            self.fail("%d evaluations differ from Prometheus; first ones:\n%s" % (
                len(failures), "\n".join(failures[:40])))

    # ---- parse errors -------------------------------------------------------------------

    def test_parse_errors_match_prometheus(self):
        with open(PARSE_ERRORS) as f:
            cases = [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]
        self.assertGreaterEqual(len(cases), 40)
        bad = []
        for q in cases:
            q = q.replace("\\n", "\n")
            form = {"query": q, "time": self.t(3600.001)}
            (gs, gd), (ws, wd) = self.both("/api/v1/query", form)
            if (gs, gd.get("errorType"), gd.get("error")) != (ws, wd.get("errorType"), wd.get("error")):
                bad.append("%r:\n    agent      %s %s: %s\n    prometheus %s %s: %s" % (
                    q, gs, gd.get("errorType"), gd.get("error"), ws, wd.get("errorType"), wd.get("error")))
        sys.stderr.write("promql parse errors: %d cases, %d identical\n" % (len(cases), len(cases) - len(bad)))
        self.assertEqual(bad, [], "\n".join(bad))

    def test_api_parameter_errors_match_prometheus(self):
        cases = [
            ("/api/v1/query", {"query": "1", "time": "abc"}),
            ("/api/v1/query", {"time": "1"}),
            ("/api/v1/query_range", {"query": "1", "start": "1", "end": "0", "step": "1"}),
            ("/api/v1/query_range", {"query": "1", "start": "1", "end": "2", "step": "0"}),
            ("/api/v1/query_range", {"query": "1", "start": "1", "end": "2"}),
            ("/api/v1/query_range", {"query": "1", "start": "x", "end": "2", "step": "1"}),
            ("/api/v1/query_range", {"query": "1", "start": "0", "end": "20000", "step": "1"}),
            ("/api/v1/query_range", {"query": "t_ratio[5m]", "start": "0", "end": "2", "step": "1"}),
            ("/api/v1/query_range", {"query": '"a"', "start": "0", "end": "2", "step": "1"}),
            ("/api/v1/series", {}),
            ("/api/v1/series", {"match[]": "t_ratio{"}),
            ("/api/v1/query", {"query": "sum(rate(t_ratio[5m])", "time": "10"}),
        ]
        for path, form in cases:
            (gs, gd), (ws, wd) = self.both(path, form)
            self.assertEqual((gs, gd.get("status"), gd.get("errorType"), gd.get("error")),
                             (ws, wd.get("status"), wd.get("errorType"), wd.get("error")), (path, form))

    # ---- the HTTP API as Grafana uses it --------------------------------------------------

    def shape(self, v):
        if isinstance(v, dict):
            return {k: self.shape(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.shape(v[0])] if v else []
        return type(v).__name__

    def test_grafana_calls(self):
        a, p = self.agent.url, self.prom.base
        start, end = self.t(600.001), self.t(9000.001)
        # Save & test: buildinfo, then an instant query of 1+1.
        (gs, gd), (ws, wd) = get(a, "/api/v1/status/buildinfo"), get(p, "/api/v1/status/buildinfo")
        self.assertEqual((gs, self.shape(gd)), (ws, self.shape(wd)))
        self.assertRegex(gd["data"]["version"], r"^2\.\d+\.\d+")
        (gs, gd), (ws, wd) = self.both("/api/v1/query", {"query": "1+1", "time": end})
        self.assertEqual(gd, wd)
        # The metric browser: label names, __name__ values, series of a metric.
        form = {"start": start, "end": end, "match[]": '{__name__=~"t_.*"}'}
        self.assertEqual(*self.both("/api/v1/labels", form))
        for path in ("/api/v1/label/__name__/values", "/api/v1/label/name/values"):
            self.assertEqual(get(a, path, form), get(p, path, form), path)
        status, doc = get(a, "/api/v1/labels")
        self.assertEqual(status, 200)
        self.assertIn("__name__", doc["data"])
        self.assertEqual(doc["data"], sorted(doc["data"]))
        (gs, gd), (ws, wd) = self.both("/api/v1/series", {"match[]": ["t_memory_bytes", 't_up{instance="a"}'],
                                                          "start": start, "end": end})
        self.assertEqual(gs, ws)
        self.assertEqual(sorted(map(key, gd["data"])), sorted(map(key, wd["data"])))
        status, doc = get(a, "/api/v1/series", {"match[]": "t_memory_bytes", "start": self.t(-30 * 86400), "end": self.t(-29 * 86400)})
        self.assertEqual((status, doc["data"]), (200, []), "series outside the data's time range")
        # Dashboards: query_range by POST with a step, in seconds and as a duration.
        for step in ("60", "1m", "30.5"):
            form = {"query": "sum by (name) (rate(t_cpu_seconds_total[5m]))", "start": start, "end": end, "step": step}
            got, want = self.both("/api/v1/query_range", form)
            self.assertIsNone(compare("", got, want), form)
            self.assertEqual(self.shape(got[1]), self.shape(want[1]))
        # Metadata: the same shape (the agent describes its own metrics).
        status, doc = get(a, "/api/v1/metadata")
        self.assertEqual(status, 200)
        self.assertIn("container_cpu_usage_seconds_total", doc["data"])
        self.assertEqual(doc["data"]["container_cpu_usage_seconds_total"][0]["type"], "counter")
        self.assertEqual(self.shape(get(a, "/api/v1/metadata", {"limit": "1"})[1]["data"]).__class__, dict)
        self.assertEqual(len(get(a, "/api/v1/metadata", {"limit": "2"})[1]["data"]), 2)
        # GET works as POST does.
        got = get(a, "/api/v1/query", {"query": "count(t_memory_bytes)", "time": end})
        want = get(p, "/api/v1/query", {"query": "count(t_memory_bytes)", "time": end})
        self.assertEqual(got, want)

    def test_series_and_labels_by_time(self):
        """The agent opened a store it did not write (monitor import, then a
        start): /series and /label/.../values over a window leave out the
        series that started after it ("late") or ended before it ("gone"),
        as Prometheus does. The start used to be the first chunk's end less
        the longest a chunk spans, so "late" showed up in earlier windows."""
        a = self.agent.url
        for lo, hi, out in ((600.001, 2900.001, "late"), (6500.001, 9000.001, "gone")):
            form = {"match[]": "t_memory_bytes", "start": self.t(lo), "end": self.t(hi)}
            (gs, gd), (ws, wd) = self.both("/api/v1/series", form)
            self.assertEqual((gs, ws), (200, 200))
            names = sorted(m["name"] for m in gd["data"])
            self.assertEqual(names, sorted(m["name"] for m in wd["data"]), form)
            self.assertNotIn(out, names)
            self.assertGreaterEqual(len(names), 6)
            status, doc = get(a, "/api/v1/label/name/values", form)
            self.assertEqual((status, doc["data"]), (200, names), form)

    # ---- monitor query ----------------------------------------------------------------------

    def cli(self, *args):
        r = subprocess.run([h.MONITOR, "query", "--url", self.agent.url] + list(args),
                           capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout, r.stderr

    def test_monitor_query_cli(self):
        t = self.t(4000.001)
        rc, out, err = self.cli("--time", t, 't_memory_bytes{name=~"web-.*"}')
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["METRIC", "ID", "IMAGE", "NAME", "VALUE"])
        self.assertEqual(len(lines), 3)
        want = get(self.prom.base, "/api/v1/query", {"query": 't_memory_bytes{name="web-1"}', "time": t})[1]
        row = [l.split() for l in lines[1:] if " web-1 " in l][0]
        self.assertEqual(row[-1], want["data"]["result"][0]["value"][1])
        # Aggregated: only the labels left.
        rc, out, err = self.cli("--time", t, "sum by (name) (t_cpu_seconds_total)")
        self.assertEqual((rc, out.splitlines()[0].split()), (0, ["NAME", "VALUE"]), err)
        # A range: each series, then its points.
        rc, out, err = self.cli("--time", t, "--range", "5m", "--step", "1m", 'sum(t_up)')
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertEqual(lines[0], "{}")
        self.assertEqual(len(lines), 7, out)
        self.assertRegex(lines[1], r"^  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.001Z  \d+$")
        # --json: the API's answer as it is.
        rc, out, err = self.cli("--json", "--time", t, "count(t_up)")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out), get(self.agent.url, "/api/v1/query", {"query": "count(t_up)", "time": t})[1])
        # Scalars and strings alone.
        self.assertEqual(self.cli("2 * 21")[:2], (0, "42\n"))
        self.assertEqual(self.cli('"hello"')[:2], (0, "hello\n"))
        # Errors: the agent's message with its position, status 1; usage, 2.
        rc, out, err = self.cli("sum(rate(t_up[5m])")
        self.assertEqual(rc, 1)
        self.assertIn('bad_data: invalid parameter "query": 1:19: parse error: unclosed left parenthesis', err)
        self.assertEqual(self.cli()[0], 2)
        self.assertEqual(self.cli("--step", "1m", "up")[0], 2)
        rc, out, err = subprocess.run([h.MONITOR, "query", "--url", "127.0.0.1:%d" % h.free_port(), "up"],
                                      capture_output=True, text=True, timeout=30).returncode, "", ""
        self.assertEqual(rc, 1)

    # ---- limits ------------------------------------------------------------------------------

    def test_limits_fail_like_prometheus_and_agent_stays_responsive(self):
        agent = quiet_agent("query:\n  timeout: 20s\n  max_samples: 300000\n")
        try:
            r = subprocess.run([h.MONITOR, "import", "--data-dir", agent.data_dir, self.om],
                               capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stderr)
            agent.start()
            # query.max_samples: 422 execution with Prometheus' message.
            status, doc = post(agent.url, "/api/v1/query_range", {
                "query": '{__name__=~"t_.*"}', "start": self.t(0), "end": self.t(9000), "step": "1"})
            self.assertEqual((status, doc.get("errorType")), (422, "execution"), doc)
            self.assertEqual(doc["error"], "query processing would load too many samples into memory in query execution")
            # A query that takes seconds, left running in the background...
            heavy = {"query": "quantile_over_time(0.5, t_memory_bytes[1h:1s])",
                     "start": self.t(0), "end": self.t(9000), "step": "15"}
            out = {}
            import threading
            th = threading.Thread(target=lambda: out.update(r=post(agent.url, "/api/v1/query_range", heavy, 60)))
            t0 = time.monotonic()
            th.start()
            time.sleep(0.2)
            # ...while everything else is answered at once.
            for _ in range(5):
                t1 = time.monotonic()
                self.assertEqual(h.http_get(agent.url + "/-/healthy").status, 200)
                status, doc = post(agent.url, "/api/v1/query", {"query": "count(t_up)", "time": self.t(4000.001)})
                self.assertEqual((status, doc["data"]["result"][0]["value"][1]), (200, "3"))
                self.assertLess(time.monotonic() - t1, 0.5, "a small query waited for the heavy one")
            th.join(60)
            heavy_s = time.monotonic() - t0
            self.assertEqual(out["r"][0], 200, out["r"][1].get("error"))
            # The same query with a timeout shorter than it needs: 503 timeout.
            heavy["timeout"] = "%dms" % max(1, int(heavy_s * 1000 / 10))
            t1 = time.monotonic()
            status, doc = post(agent.url, "/api/v1/query_range", heavy)
            self.assertEqual((status, doc.get("errorType")), (503, "timeout"), doc)
            self.assertEqual(doc["error"], "query timed out in expression evaluation")
            self.assertLess(time.monotonic() - t1, heavy_s / 2, "the timeout did not stop the query")
            status, doc = post(agent.url, "/api/v1/query", {"query": "1+1"})
            self.assertEqual((status, doc["data"]["result"][1]), (200, "2"))
        finally:
            agent.stop()

if __name__ == "__main__":
    unittest.main()
