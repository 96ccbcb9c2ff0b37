#!/usr/bin/python3
"""tests/bench/promql_bench.py - the PromQL engine against the real
Prometheus, side by side on the same data in the same run.

For each data set (1,000 containers; samples every 15 s, as Prometheus
scrapes, and every 1 s, the agent's own default interval) it writes an
OpenMetrics file, loads it into Prometheus (promtool tsdb
create-blocks-from openmetrics) and into the agent (monitor import), starts
both on loopback and measures, alternating between the two so drift in a
shared machine cancels:

  1. the dashboard query: sum by (name) (rate(container_cpu_usage_seconds_total[1m]))
     over the last hour at a 15 s step (query_range); target: the agent at
     most as slow as Prometheus, and under 100 ms;
  2. the rule query: container_memory_working_set_bytes > 1e8 over 1,000
     series (instant query); target: under 2 ms of evaluation.

Then, in-process (tests/bench/promql_micro.c, as alert rules run the
engine, no HTTP): the same two queries over a store whose recent data is
in the head, as the tick leaves it, and over the in-memory source (the
engine alone).

Each figure is the median of BENCH_PROMQL_RUNS runs (default 15; 200 for
the instant query) of the client's wall time over a kept-alive connection
(HTTP, JSON and all, what Grafana waits for) and of the engine's own time
as each server reports it (stats=all: evalTotalTime). Both answers are
checked to agree before anything is timed.

`make bench-promql` runs it. Prints a table, writes build/bench/promql.md
and build/bench/promql.json.
Environment: BENCH_PROMQL_CONTAINERS (1000), BENCH_PROMQL_INTERVALS
("15 1", seconds), BENCH_PROMQL_RUNS (15), BENCH_STRICT=1 exits 1 when a
figure misses its target, BENCH_BUILD the build directory (build; `make
bench-promql` passes its BUILD). Needs <build>/monitor, prometheus and promtool;
cleans up after itself on success, failure and Ctrl-C.
"""

import http.client
import json
import math
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BENCH_BUILD", "build"))
OUT = os.path.join(BUILD, "bench")
MONITOR = os.path.join(BUILD, "monitor")
MICRO = os.path.join(OUT, "promql_micro")
FIXTURE_ROOT = os.path.join(ROOT, "tests", "fixtures", "cgroup", "v2")

N = int(os.environ.get("BENCH_PROMQL_CONTAINERS", "1000"))
INTERVALS = [int(x) for x in os.environ.get("BENCH_PROMQL_INTERVALS", "15 1").split()]
RUNS = int(os.environ.get("BENCH_PROMQL_RUNS", "15"))
INSTANT_RUNS = max(RUNS, 200)
RANGE_Q = "sum by (name) (rate(container_cpu_usage_seconds_total[1m]))"
RULE_Q = "container_memory_working_set_bytes > 1e8"
TARGET_RANGE_MS = 100.0
TARGET_RULE_MS = 2.0


def log(msg):
    print("promql bench: " + msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gen(path, interval_s, end_s):
    """1,000 containers: a CPU counter over the last hour and a minute, and a
    memory gauge over the last 10 minutes; jitter of up to 2% of the
    interval, as real scrapes have, and never on a whole second, where the
    queries put window edges (Prometheus 2.42 would include a sample there,
    the agent as Prometheus 3 does not: the answers must be comparable)."""
    rng = random.Random(interval_s)
    start_ms = (end_s - 3660) * 1000
    mem_start_ms = (end_s - 600) * 1000
    step = interval_s * 1000
    jit = max(1, step // 200)
    n_pts = (end_s * 1000 - start_ms) // step
    samples = 0
    with open(path, "w", buffering=1 << 20) as f:
        f.write("# TYPE container_cpu_usage_seconds gauge\n")
        for i in range(N):
            lab = '{id="/docker/%064x",name="c%04d",image="img%d:1.0",cpu="total"}' % (i + 1, i, i % 10)
            v, r = rng.uniform(0, 1e4), rng.uniform(0.01, 2.0)
            lines = []
            for k in range(n_pts):
                t = start_ms + k * step + rng.randint(-jit, jit) * 4 + 2
                v += r * interval_s * rng.uniform(0.8, 1.2)
                lines.append("container_cpu_usage_seconds_total%s %.6f %d.%03d\n" % (lab, v, t // 1000, t % 1000))
            f.writelines(lines)
            samples += n_pts
        f.write("# TYPE container_memory_working_set_bytes gauge\n")
        for i in range(N):
            lab = '{id="/docker/%064x",name="c%04d",image="img%d:1.0"}' % (i + 1, i, i % 10)
            base = rng.uniform(1e7, 3e8)
            lines = []
            for k in range((end_s * 1000 - mem_start_ms) // step):
                t = mem_start_ms + k * step + rng.randint(-jit, jit) * 4 + 2
                lines.append("container_memory_working_set_bytes%s %d %d.%03d\n" % (
                    lab, int(base * rng.uniform(0.95, 1.05)), t // 1000, t % 1000))
            f.writelines(lines)
            samples += len(lines)
        f.write("# EOF\n")
    return samples


def cpu_ms(pid):
    """User + system CPU of a process so far, in milliseconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / os.sysconf("SC_CLK_TCK")


class Server:
    def __init__(self, name, port, pid):
        self.name, self.port, self.pid = name, port, pid
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def post(self, path, form):
        body = urllib.parse.urlencode(form)
        for attempt in (0, 1):
            try:
                t0 = time.perf_counter()
                self.conn.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})
                r = self.conn.getresponse()
                data = r.read()
                wall = time.perf_counter() - t0
                return r.status, json.loads(data), wall
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt:
                    raise


def wait_ready(port, proc, what, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (what, proc.returncode))
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/-/ready")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("%s not ready after %d s" % (what, timeout))


def same(a, b):
    """Answers agree: same series, values within 1e-9 relative."""
    ra, rb = a["data"]["result"], b["data"]["result"]
    key = lambda s: tuple(sorted(s["metric"].items()))
    ma = {key(s): s.get("values") or [s["value"]] for s in ra}
    mb = {key(s): s.get("values") or [s["value"]] for s in rb}
    if set(ma) != set(mb):
        return "series differ (%d vs %d)" % (len(ma), len(mb))
    for k in ma:
        if len(ma[k]) != len(mb[k]):
            return "%s: %d vs %d points" % (dict(k), len(ma[k]), len(mb[k]))
        for x, y in zip(ma[k], mb[k]):
            fx, fy = float(x[1]), float(y[1])
            if x[0] != y[0] or not (fx == fy or abs(fx - fy) <= 1e-9 * max(abs(fx), abs(fy))):
                return "%s: %s vs %s" % (dict(k), x, y)
    return None


def measure(servers, path, form, runs):
    """Alternates between the servers; returns {name: (wall_ms list, eval_ms
    list, CPU ms per query)}: the CPU each server process used while the
    runs went on (all its threads; on a shared machine a steadier figure
    than wall time, which includes waiting for a CPU)."""
    out = {s.name: ([], [], 0.0) for s in servers}
    form = dict(form, stats="all")
    cpu0 = {s.name: cpu_ms(s.pid) for s in servers}
    for i in range(runs):
        for s in (servers if i % 2 == 0 else servers[::-1]):
            status, doc, wall = s.post(path, form)
            if status != 200:
                raise RuntimeError("%s answered %d: %s" % (s.name, status, doc.get("error")))
            out[s.name][0].append(wall * 1000)
            out[s.name][1].append(doc["data"]["stats"]["timings"]["evalTotalTime"] * 1000)
    for s in servers:
        w, e, _ = out[s.name]
        out[s.name] = (w, e, (cpu_ms(s.pid) - cpu0[s.name]) / runs)
    return out


def run_set(work, interval_s, procs):
    end_s = int(time.time()) - 120
    om = os.path.join(work, "data-%ds.om" % interval_s)
    t0 = time.monotonic()
    samples = gen(om, interval_s, end_s)
    log("%d s data: %d samples written in %.1f s" % (interval_s, samples, time.monotonic() - t0))

    tsdb = os.path.join(work, "tsdb-%d" % interval_s)
    t0 = time.monotonic()
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", om, tsdb],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log("promtool import: %.1f s" % (time.monotonic() - t0))
    data = os.path.join(work, "agent-%d" % interval_s)
    os.makedirs(data)
    t0 = time.monotonic()
    subprocess.run([MONITOR, "import", "--data-dir", data, om], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log("monitor import: %.1f s" % (time.monotonic() - t0))
    os.unlink(om)

    pport, aport = free_port(), free_port()
    cfg = os.path.join(work, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 15s\n")
    plog = open(os.path.join(work, "prometheus-%d.log" % interval_s), "wb")
    prom = subprocess.Popen(["prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + tsdb,
                             "--storage.tsdb.retention.time=100y",
                             "--web.listen-address=127.0.0.1:%d" % pport],
                            stdout=plog, stderr=plog, stdin=subprocess.DEVNULL)
    procs.append(prom)
    acfg = os.path.join(work, "monitor.yml")
    with open(acfg, "w") as f:
        f.write("docker:\n  enabled: false\nquery:\n  timeout: 2m\n")
    alog = open(os.path.join(work, "agent-%d.log" % interval_s), "wb")
    agent = subprocess.Popen([MONITOR, "agent", "--config", acfg, "--data-dir", data, "--listen",
                              "127.0.0.1:%d" % aport, "--host-root", FIXTURE_ROOT, "--interval", "60s",
                              "--no-ebpf"], stdout=alog, stderr=alog, stdin=subprocess.DEVNULL)
    procs.append(agent)
    wait_ready(pport, prom, "prometheus")
    wait_ready(aport, agent, "the agent")
    servers = [Server("agent", aport, agent.pid), Server("prometheus", pport, prom.pid)]

    rng = {"query": RANGE_Q, "start": "%d" % (end_s - 3600), "end": "%d" % end_s, "step": "15"}
    rule = {"query": RULE_Q, "time": "%d.001" % end_s}
    answers = {}
    for s in servers:
        for _ in range(3):   # warm caches on both sides
            answers[s.name] = (s.post("/api/v1/query_range", rng)[1], s.post("/api/v1/query", rule)[1])
    for i, what in enumerate(("range", "rule")):
        why = same(answers["agent"][i], answers["prometheus"][i])
        if why:
            raise RuntimeError("the two answers to the %s query differ: %s" % (what, why))
    series = len(answers["agent"][0]["data"]["result"])
    rule_hits = len(answers["agent"][1]["data"]["result"])

    r = measure(servers, "/api/v1/query_range", rng, RUNS)
    q = measure(servers, "/api/v1/query", rule, INSTANT_RUNS)
    med = lambda xs: statistics.median(xs)
    res = {
        "interval_s": interval_s, "containers": N, "samples": samples,
        "range_series": series, "rule_matches": rule_hits,
        "range_wall_ms": {k: med(v[0]) for k, v in r.items()},
        "range_eval_ms": {k: med(v[1]) for k, v in r.items()},
        "range_cpu_ms": {k: v[2] for k, v in r.items()},
        "load_avg": open("/proc/loadavg").read().split()[0],
        "rule_wall_ms": {k: med(v[0]) for k, v in q.items()},
        "rule_eval_ms": {k: med(v[1]) for k, v in q.items()},
    }
    for p in (agent, prom):
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        procs.remove(p)
    plog.close()
    alog.close()
    return res


def micro(interval_s):
    """Builds (make) and runs promql_micro; returns its figures."""
    subprocess.run(["make", "-s", "-C", ROOT, "BUILD=" + os.path.relpath(BUILD, ROOT),
                    os.path.relpath(MICRO, ROOT)], check=True)
    r = subprocess.run([os.path.relpath(MICRO, ROOT), str(N), str(interval_s), str(INSTANT_RUNS * 5)], cwd=ROOT, capture_output=True,
                       text=True, check=True, timeout=1800)
    return json.loads(r.stdout)


def main():
    for tool in ("prometheus", "promtool"):
        if not shutil.which(tool):
            log("%s is not installed (.ci/install-deps): skipped" % tool)
            return 0
    if not os.access(MONITOR, os.X_OK):
        log("%s is missing: run make" % MONITOR)
        return 1
    os.makedirs(OUT, exist_ok=True)
    work = tempfile.mkdtemp(prefix="promql-bench-")
    procs = []

    def cleanup(*_):
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)

    signal.signal(signal.SIGTERM, lambda *a: (cleanup(), sys.exit(143)))
    results = []
    try:
        for iv in INTERVALS:
            results.append(run_set(work, iv, procs))
            r = results[-1]
            log("%d s data: dashboard wall %.1f ms (Prometheus %.1f), CPU %.1f ms (Prometheus %.1f), "
                "rule engine %.3f ms (Prometheus %.3f), load average %s"
                % (iv, r["range_wall_ms"]["agent"], r["range_wall_ms"]["prometheus"],
                   r["range_cpu_ms"]["agent"], r["range_cpu_ms"]["prometheus"],
                   r["rule_eval_ms"]["agent"], r["rule_eval_ms"]["prometheus"], r["load_avg"]))
            if os.environ.get("BENCH_PROMQL_MICRO", "1") != "0":
                log("in-process, %d s samples" % iv)
                results[-1]["micro"] = micro(iv)
    except KeyboardInterrupt:
        cleanup()
        return 130
    finally:
        cleanup()

    rows = ["| data | figure | agent | Prometheus 2.42 | ratio | target | |",
            "|---|---|---|---|---|---|---|"]
    missed = []
    for r in results:
        d = "%d containers, %d s samples" % (r["containers"], r["interval_s"])
        a, p = r["range_wall_ms"]["agent"], r["range_wall_ms"]["prometheus"]
        ok = a <= p and a < TARGET_RANGE_MS
        rows.append("| %s | dashboard query, 1 h at 15 s step (%d series), wall | %.1f ms | %.1f ms | %.2f | <= Prometheus and < %d ms | %s |"
                    % (d, r["range_series"], a, p, a / p, TARGET_RANGE_MS, "ok" if ok else "MISSED"))
        if not ok:
            missed.append("%s: dashboard query %.1f ms (Prometheus %.1f ms)" % (d, a, p))
        a, p = r["range_eval_ms"]["agent"], r["range_eval_ms"]["prometheus"]
        rows.append("| %s | dashboard query, engine only | %.1f ms | %.1f ms | %.2f | | |" % (d, a, p, a / p))
        a, p = r["range_cpu_ms"]["agent"], r["range_cpu_ms"]["prometheus"]
        rows.append("| %s | dashboard query, server CPU per query (all threads; load average %s) | %.1f ms | %.1f ms | %.2f | | |"
                    % (d, r["load_avg"], a, p, a / p if p else 0))
        a, p = r["rule_eval_ms"]["agent"], r["rule_eval_ms"]["prometheus"]
        ok = a < TARGET_RULE_MS
        rows.append("| %s | rule query over %d series (%d match), engine | %.3f ms | %.3f ms | %.2f | < %d ms | %s |"
                    % (d, r["containers"], r["rule_matches"], a, p, a / p, TARGET_RULE_MS, "ok" if ok else "MISSED"))
        if not ok:
            missed.append("%s: rule query %.3f ms" % (d, a))
        a, p = r["rule_wall_ms"]["agent"], r["rule_wall_ms"]["prometheus"]
        rows.append("| %s | rule query, wall (HTTP, JSON) | %.3f ms | %.3f ms | %.2f | | |" % (d, a, p, a / p))
        m = r.get("micro")
        if not m:
            continue
        ok = m["rule_store_ms"] < TARGET_RULE_MS
        rows.append("| %s | rule query in-process, store head (as rules run; p99 %.2f ms) | %.3f ms | | | < %d ms | %s |"
                    % (d, m["rule_store_p99_ms"], m["rule_store_ms"], TARGET_RULE_MS, "ok" if ok else "MISSED"))
        if not ok:
            missed.append("%s: rule query in-process %.3f ms" % (d, m["rule_store_ms"]))
        rows.append("| %s | rule query in-process, engine alone (memory source) | %.3f ms | | | | |" % (d, m["rule_mem_ms"]))
        ok = m["dash_store_ms"] < TARGET_RANGE_MS
        rows.append("| %s | dashboard query in-process, store head (p99 %.1f ms) | %.1f ms | | | < %d ms | %s |"
                    % (d, m["dash_store_p99_ms"], m["dash_store_ms"], TARGET_RANGE_MS, "ok" if ok else "MISSED"))
        rows.append("| %s | dashboard query in-process, engine alone (memory source) | %.1f ms | | | | |" % (d, m["dash_mem_ms"]))
        rows.append("| %s | rule query in-process, all in SQLite (as after import; p99 %.2f ms) | %.3f ms | | | | |"
                    % (d, m["rule_disk_p99_ms"], m["rule_disk_ms"]))
        rows.append("| %s | dashboard query in-process, all in SQLite (p99 %.1f ms) | %.1f ms | | | | |"
                    % (d, m["dash_disk_p99_ms"], m["dash_disk_ms"]))
    table = "\n".join(rows)
    print(table)
    # The figures for make bench's final table (format: top of tests/bench/run).
    for r in results:
        d = "%d containers, %d s samples" % (r["containers"], r["interval_s"])
        a, p = r["range_wall_ms"]["agent"], r["range_wall_ms"]["prometheus"]
        print("BENCH PromQL dashboard query 1 h at 15 s step, %s, wall|%.1f|ms|< %d ms and <= Prometheus|"
              "Prometheus 2.42 %.1f ms; ratio %.2f|%s" % (d, a, TARGET_RANGE_MS, p, a / p,
                                                       "pass" if a < TARGET_RANGE_MS and a <= p else "FAIL"))
        a, p = r["range_cpu_ms"]["agent"], r["range_cpu_ms"]["prometheus"]
        print("BENCH PromQL dashboard query, %s, server CPU per query|%.1f|ms||"
              "Prometheus 2.42 %.1f ms; ratio %.2f; load average %s" % (d, a, p, a / p if p else 0,
                                                                        r["load_avg"]))
        a, p = r["rule_eval_ms"]["agent"], r["rule_eval_ms"]["prometheus"]
        print("BENCH PromQL rule query over %d series, %s, engine (HTTP)|%.3f|ms|< %d ms|"
              "Prometheus 2.42 %.3f ms; ratio %.2f" % (r["containers"], d, a, TARGET_RULE_MS, p, a / p))
        m = r.get("micro")
        if m:
            print("BENCH PromQL rule query in-process (store head, as rules run), %s|%.3f|ms|< %d ms|"
                  "engine alone %.3f ms; all in SQLite %.3f ms" % (d, m["rule_store_ms"], TARGET_RULE_MS,
                                                                   m["rule_mem_ms"], m["rule_disk_ms"]))
            print("BENCH PromQL dashboard query in-process (store head), %s|%.1f|ms|< %d ms|"
                  "engine alone %.1f ms; all in SQLite %.1f ms" % (d, m["dash_store_ms"], TARGET_RANGE_MS,
                                                                   m["dash_mem_ms"], m["dash_disk_ms"]))
    with open(os.path.join(OUT, "promql.md"), "w") as f:
        f.write("PromQL: the agent and Prometheus 2.42 on the same data (median of %d runs; rule query %d)\n\n%s\n"
                % (RUNS, INSTANT_RUNS, table))
    with open(os.path.join(OUT, "promql.json"), "w") as f:
        json.dump(results, f, indent=2)
    if missed:
        log("missed: " + "; ".join(missed))
        if os.environ.get("BENCH_STRICT") == "1":
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
