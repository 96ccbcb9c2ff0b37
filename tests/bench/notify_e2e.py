#!/usr/bin/python3
"""tests/bench/notify_e2e.py - the notifier's latency inside the real agent
(part of `make bench-notify`): rule files with 20 alerting rules
(`vector(1)`, for: 0, each its own group with interval 1s) fire in the agent
started here, routed with group_wait: 0 to a local webhook receiver. The
figure is receipt time minus the alert's startsAt (the evaluation that
made it fire), per alert: rule evaluation, hand-over, grouping, the queue
write in state.db and the POST. Target: under 50 ms. Prints BENCH lines
and writes build/bench/notify_e2e.md. BENCH_BUILD names the build
directory (default build)."""

import datetime
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BENCH_BUILD", "build"))
MONITOR = os.path.join(BUILD, "monitor")
RULES = 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_test(tmp, srv, got, lock):
    """1,000 series imported into the store (bench_load{g=0..99,i=0..9}), one
    rule alerting on all of them, grouped by g: 100 notifications. Returns
    (delivered, ms from the evaluation to the last one, the group's
    evaluation time in s) or None."""
    data = os.path.join(tmp, "load-data")
    prom = os.path.join(tmp, "load.prom")
    now_ms = int(time.time() * 1000)
    with open(prom, "w") as f:
        f.write("# TYPE bench_load gauge\n")
        for g in range(100):
            for i in range(10):
                for k in range(3):
                    f.write('bench_load{g="%d",i="%d"} 1 %d\n' % (g, i, now_ms - 20000 + k * 5000))
    r = subprocess.run([MONITOR, "import", "--data-dir", data, prom], capture_output=True, text=True)
    if r.returncode != 0:
        print("notify_e2e: monitor import: %s" % r.stderr.strip(), file=sys.stderr)
        return None
    rules = os.path.join(tmp, "load-rules.yml")
    with open(rules, "w") as f:
        f.write("groups:\n- name: load\n  interval: 1s\n  rules:\n  - alert: Load\n    expr: bench_load\n")
    cfg = os.path.join(tmp, "load-config.yml")
    with open(cfg, "w") as f:
        f.write("rule_files: [%s]\ndefault_rules: false\nroute:\n  receiver: hook\n  group_by: [g]\n  group_wait: 0s\n"
                "receivers:\n- name: hook\n  webhook_configs:\n  - url: http://127.0.0.1:%d/load\n"
                % (rules, srv.server_address[1]))
    with lock:
        del got[:]
    port = free_port()
    p = subprocess.Popen([MONITOR, "agent", "--config", cfg, "--listen", "127.0.0.1:%d" % port,
                          "--data-dir", data, "--no-ebpf"],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "load-log"), "wb"))
    eval_s = 0.0
    try:
        deadline = time.time() + 30
        while time.time() < deadline and len(got) < 100:
            # The slowest evaluation round seen while the alerts fire.
            try:
                text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
                for line in text.splitlines():
                    if line.startswith("monitor_rule_group_last_duration_seconds "):
                        eval_s = max(eval_s, float(line.split()[1]))
            except OSError:
                pass
            time.sleep(0.05)
    finally:
        p.terminate()
        p.wait(10)
    with lock:
        batch = list(got)
        del got[:]
    if not batch:
        return None
    starts = min(datetime.datetime.fromisoformat(a["startsAt"].replace("Z", "+00:00")).timestamp()
                 for _, d in batch for a in d["alerts"])
    alerts = sum(len(d["alerts"]) for _, d in batch)
    if alerts != 1000:
        print("notify_e2e: %d alerts in %d notifications (want 1000 in 100)" % (alerts, len(batch)),
              file=sys.stderr)
    return len(batch), (max(t for t, _ in batch) - starts) * 1000, eval_s


def main():
    got = []
    lock = threading.Lock()

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            t = time.time()
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                got.append((t, json.loads(body)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    tmp = tempfile.mkdtemp(prefix="notify-e2e-")
    rules = os.path.join(tmp, "rules.yml")
    with open(rules, "w") as f:
        f.write("groups:\n")
        for i in range(RULES):
            f.write("- name: g%d\n  interval: 1s\n  rules:\n  - alert: Bench%d\n    expr: vector(1)\n" % (i, i))
    cfg = os.path.join(tmp, "config.yml")
    with open(cfg, "w") as f:
        f.write("rule_files: [%s]\ndefault_rules: false\nroute:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n"
                "receivers:\n- name: hook\n  webhook_configs:\n  - url: http://127.0.0.1:%d/hook\n"
                % (rules, srv.server_address[1]))
    port = free_port()
    p = subprocess.Popen([MONITOR, "agent", "--config", cfg, "--listen", "127.0.0.1:%d" % port,
                          "--data-dir", os.path.join(tmp, "data"), "--no-ebpf"],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "log"), "wb"))
    try:
        deadline = time.time() + 30
        while time.time() < deadline and len({g[1]["groupKey"] for g in got}) < RULES:
            time.sleep(0.1)
    finally:
        p.terminate()
        p.wait(10)
    lat = []
    for t, d in got:
        for a in d["alerts"]:
            s = datetime.datetime.fromisoformat(a["startsAt"].replace("Z", "+00:00")).timestamp()
            lat.append((t - s) * 1000)
    load = load_test(tmp, srv, got, lock)
    srv.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)
    if not lat:
        print("BENCH notifier in the agent: rule evaluation -> webhook POST (group_wait 0)|0|ms|< 50 ms|no notification arrived|FAIL")
        return 1
    med, worst = statistics.median(lat), max(lat)
    table = ("| figure | value | target |\n|---|---|---|\n"
             "| in the agent: alert startsAt (the evaluation that fired it) -> webhook POST, group_wait 0, "
             "%d rules, median | %.1f ms (worst %.1f ms) | < 50 ms |\n" % (len(lat), med, worst))
    if load:
        n, ms, eval_s = load
        ev = ("the slowest evaluation round took %.1f ms" % (eval_s * 1000) if eval_s > 0
              else "monitor_rule_group_last_duration_seconds read 0")
        table += ("| in the agent: one rule firing 1,000 alerts grouped into 100 notifications: all delivered "
                  "after the evaluation | %d in %.0f ms; %s | evaluation not held up |\n" % (n, ms, ev))
        print("BENCH notifier in the agent: 1,000 alerts in 100 groups, all notifications after the evaluation|%.0f|ms|report|%d of 100 delivered; %s|%s"
              % (ms, n, ev, "pass" if n == 100 else "FAIL"))
    print(table, end="")
    print("BENCH notifier in the agent: rule evaluation -> webhook POST (group_wait 0), median of %d|%.1f|ms|< 50 ms|worst %.1f ms"
          % (len(lat), med, worst))
    os.makedirs(os.path.join(BUILD, "bench"), exist_ok=True)
    with open(os.path.join(BUILD, "bench", "notify_e2e.md"), "w") as f:
        f.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
