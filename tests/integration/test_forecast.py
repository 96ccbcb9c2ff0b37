"""Capacity forecasts against real containers.

A busybox container under `--memory 64m` (no swap) leaks at a steady rate
(a shell loop feeding zeros, without a newline, to `tail`, which keeps
them all) until the kernel OOM-kills it. After 30 % of the expected ramp
the test reads the agent's time to exhaustion; the container's actual
end (Docker's FinishedAt, with OOMKilled true) must be within 10 % of the
ramp of what the agent said. The same forecast is then checked on
/metrics, through `monitor forecast`, and against PromQL's predict_linear
over the same window at the same time (the linear model is
predict_linear). An idle container recorded beside it must not "run out",
one without a limit has no forecast and says why, and a bad forecast:
config stops the agent with the place of the error. A container that
writes a known number of bytes into a volume and into its writable layer
has its volume forecast against the room its filesystem has (and the
trend of its writes), and the layer "no forecast: no quota"; a quota
(--storage-opt size=) is tested where Docker allows one.
"""

import json
import os
import subprocess
import time
import unittest
import urllib.parse
from datetime import datetime

import harness as h

MIB = 1024 * 1024
LIMIT = 64 * MIB
RATE_KIB = 800                     # leak rate, KiB per second: a ramp of about 80 s
WINDOW_S = 20

CONFIG = """\
forecast:
  interval: 1s
  window: %ds
  horizons: [30s, 1h]
collect:
  fs_usage_interval: 1s
""" % WINDOW_S

# Writes 3 MiB into the volume at /data and 2 MiB into the writable layer,
# then adds VRATE KiB per second of /proc/uptime to the volume.
FILL = r"""
dd if=/dev/urandom of=/data/base bs=1024 count=3072 2>/dev/null
mkdir -p /layer && dd if=/dev/urandom of=/layer/base bs=1024 count=2048 2>/dev/null
start=$(cut -d' ' -f1 /proc/uptime | tr -d .)
i=0
while :; do
  now=$(cut -d' ' -f1 /proc/uptime | tr -d .)
  want=$(( (now - start) * VRATE / 100 / 64 ))
  while [ $i -lt $want ]; do
    dd if=/dev/urandom of=/data/grow.$i bs=1024 count=64 2>/dev/null; i=$((i+1))
  done
  usleep 100000
done
"""
VRATE_KIB = 256

# Writes RATE KiB of zeros per second of /proc/uptime (so the rate holds
# however late the loop runs) into tail, which keeps every byte; when the
# OOM killer ends tail, head fails and the container exits.
LEAK = r"""
start=$(cut -d' ' -f1 /proc/uptime | tr -d .)
i=0
while :; do
  now=$(cut -d' ' -f1 /proc/uptime | tr -d .)
  want=$(( (now - start) * RATE / 100 ))
  while [ $i -lt $want ]; do head -c 65536 /dev/zero || exit 0; i=$((i+64)); done
  usleep 50000
done | tail > /dev/null
"""


def rfc3339(s):
    """Docker's timestamps (nanoseconds, Z) as Unix seconds."""
    s = s.rstrip("Z")
    frac = 0.0
    if "." in s:
        s, f = s.split(".")
        frac = float("0." + f)
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S").timestamp() - time.timezone + frac


class ForecastTest(unittest.TestCase):
    agent = None

    @classmethod
    def setUpClass(cls):
        h.require_docker()
        cls.agent = h.Agent(config=CONFIG, interval="250ms", args=["--no-ebpf"]).start()

    @classmethod
    def tearDownClass(cls):
        if cls.agent:
            cls.agent.stop()

    def forecast(self, name):
        r = self.agent.get("/api/v1/containers/%s/forecast" % name)
        self.assertEqual(r.status, 200, r.body[:300])
        doc = r.json()
        self.assertEqual(doc["status"], "success")
        return doc["data"]

    @staticmethod
    def resource(data, name, mountpoint=None):
        for r in data["resources"]:
            if r["resource"] == name and r["mountpoint"] == mountpoint:
                return r
        return None

    def test_oom_leak(self):
        idle = h.docker_run(self, "fc-idle", ["sleep", "600"], ["--memory", "64m"])
        c = h.docker_run(self, "fc-leak", ["sh", "-c", LEAK],
                         ["--memory", "64m", "--memory-swap", "64m", "-e", "RATE=%d" % RATE_KIB])
        started = rfc3339(c.inspect()["State"]["StartedAt"])
        ramp = LIMIT / (RATE_KIB * 1024.0)
        # After 30 % of the ramp: the agent's estimate of the OOM moment.
        time.sleep(max(0.0, started + 0.3 * ramp - time.time()))

        def linear():
            d = self.forecast(c.name)
            m = self.resource(d, "memory")
            return (d, m) if m and m["model"] == "linear" and d["time"] >= started + 0.3 * ramp - 1 else None
        data, mem = h.wait_for("a linear memory forecast for %s" % c.name, linear, 10)
        read_at = time.time()
        self.assertEqual(mem["limit"], LIMIT)
        self.assertIsNotNone(mem["exhaustion_seconds"], mem)
        predicted = data["time"] + mem["exhaustion_seconds"]
        self.assertLessEqual(mem["exhaustion_lower_seconds"], mem["exhaustion_seconds"])
        self.assertGreaterEqual(mem["exhaustion_upper_seconds"], mem["exhaustion_seconds"])
        self.assertLess(read_at - started, 0.45 * ramp, "read too late to count")

        # The same table on /metrics (within a refresh) and through the CLI.
        def on_metrics():
            v = self.agent.metrics().get("container_forecast_exhaustion_seconds",
                                         name=c.name, resource="memory")
            return v if v else None
        samples = h.wait_for("container_forecast_exhaustion_seconds on /metrics", on_metrics, 5)
        self.assertLess(abs(samples[0][1] + data["time"] - predicted), 5, samples)
        out = subprocess.run([h.MONITOR, "forecast", "--url", self.agent.url, c.name],
                             capture_output=True, text=True, timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        row = [l for l in out.stdout.splitlines() if l.startswith("memory")]
        self.assertTrue(row and "64MiB" in row[0] and "linear" in row[0] and " in " in row[0],
                        out.stdout)

        # The linear model is predict_linear over [window] at the refresh time:
        # a slot of forecast.interval (1s), refreshed once the tick at or after
        # it was stored, so the query sees the same samples however late the
        # tick ran.
        t = data["time"]
        self.assertEqual(round(t * 1000) % 1000, 0, t)
        q = "predict_linear(container_memory_working_set_bytes{name=\"%s\"}[%ds], 30)" % (c.name, WINDOW_S)
        r = self.agent.get("/api/v1/query?" + urllib.parse.urlencode({"query": q, "time": "%.3f" % t}))
        res = r.json()["data"]["result"]
        self.assertEqual(len(res), 1, r.body[:300])
        ours = [f for f in mem["forecast"] if f["horizon_seconds"] == 30][0]["value"]
        promql = float(res[0]["value"][1])
        self.assertLess(abs(ours - promql), 1e-9 * abs(promql) + 1e-6, (ours, promql))

        # The idle container beside it: a flat working set does not run out.
        d_idle = self.forecast(idle.name)
        m_idle = self.resource(d_idle, "memory")
        self.assertIn(m_idle["model"], ("linear", "peaks"), m_idle)
        self.assertIsNone(m_idle["exhaustion_seconds"], m_idle)

        # The real OOM kill.
        def ended():
            st = c.inspect()["State"]
            return st if st["Status"] == "exited" else None
        st = h.wait_for("%s to be OOM-killed" % c.name, ended, 2 * ramp)
        self.assertTrue(st["OOMKilled"], st)
        actual = rfc3339(st["FinishedAt"])
        real_ramp = actual - started
        err = abs(predicted - actual)
        print("  oom: ramp %.1f s, read at %.1f s (%.0f %%), predicted %.2f s, actual %.2f s, "
              "error %.2f s (%.1f %% of the ramp)" % (
                  real_ramp, read_at - started, 100 * (read_at - started) / real_ramp,
                  predicted - started, real_ramp, err, 100 * err / real_ramp))
        self.assertLessEqual(err, 0.10 * real_ramp)

    def test_no_limit_says_why(self):
        c = h.docker_run(self, "fc-nolimit", ["sleep", "600"], ["--pids-limit", "50"])

        limits = []

        def fetched():
            # 404 until the agent's discovery has seen the new container;
            # the pids limit is unknown (null) until runc has written it
            if self.agent.get("/api/v1/containers/%s/forecast" % c.name).status != 200:
                return None
            d = self.forecast(c.name)
            if not d.get("time") or not self.resource(d, "memory"):
                return None
            pids = self.resource(d, "pids")
            limits.append(pids["limit"] if pids else None)
            return d if limits[-1] is not None else None
        d = h.wait_for("a forecast table with %s and its pids limit" % c.name, fetched, 10)
        mem = self.resource(d, "memory")
        self.assertEqual(mem["model"], "none")
        self.assertEqual(mem["reason"], "no_limit")
        self.assertNotIn("exhaustion_seconds", mem)
        # Never "no limit" (0) first: the agent read pids.max while runc was
        # still making the container once (collectors/cgroup.c).
        self.assertEqual(set(limits) - {None}, {50}, limits)
        out = subprocess.run([h.MONITOR, "forecast", "--url", self.agent.url, c.name],
                             capture_output=True, text=True, timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("no forecast: no limit", out.stdout)
        # the next tick copies the table the API already shows
        def on_metrics():
            ex = self.agent.metrics()
            return ex if ex.get("container_forecast_model", name=c.name, resource="memory",
                                model="none", reason="no_limit") else None
        ex = h.wait_for("the no_limit model line on /metrics", on_metrics, 5)
        self.assertFalse(ex.get("container_forecast_exhaustion_seconds", name=c.name,
                                resource="memory"))
        # unknown containers are 404s, as on every container endpoint
        self.assertEqual(self.agent.get("/api/v1/containers/no-such-ctr/forecast").status, 404)

    def metric(self, family, /, **labels):
        v = self.agent.metrics().get(family, **labels)
        return v[0][1] if v else None

    def test_volume_and_writable_layer(self):
        vol = h.unique("fc-vol")
        h.docker("volume", "rm", "-f", vol, check=False)
        self.addCleanup(h.docker, "volume", "rm", "-f", vol, check=False)
        c = h.docker_run(self, "fc-fill", ["sh", "-c", FILL],
                         ["-v", "%s:/data" % vol, "-e", "VRATE=%d" % VRATE_KIB])

        def growing():
            if self.agent.get("/api/v1/containers/%s/forecast" % c.name).status != 200:
                return None
            d = self.forecast(c.name)
            v = self.resource(d, "volume", "/data")
            w = self.resource(d, "writable", "/")
            return (d, v, w) if v and w and v["model"] == "linear" and \
                v.get("trend_per_second") else None
        d, v, w = h.wait_for("a linear forecast of the volume of %s" % c.name, growing, 40)
        # The volume's own bytes: the 3 MiB file, what grew since, a few
        # directory blocks; its room: the capacity less what the rest of
        # its filesystem holds (both on /metrics, read a moment later).
        self.assertEqual(v["unit"], "bytes")
        self.assertGreaterEqual(v["now"], 3 * MIB)
        self.assertLess(v["now"], 3 * MIB + VRATE_KIB * 1024 * 60)
        cap = self.metric("container_fs_limit_bytes", name=c.name, mountpoint="/data")
        used = self.metric("container_fs_backing_usage_bytes", name=c.name, mountpoint="/data")
        self.assertIsNotNone(cap)
        self.assertLessEqual(v["limit"], cap)
        self.assertLess(abs(v["limit"] - (cap - used + v["now"])), 0.01 * cap, (v, cap, used))
        # The trend is the writer's rate (the walk measures it once a second).
        rate = VRATE_KIB * 1024.0
        self.assertLess(abs(v["trend_per_second"] - rate), 0.5 * rate, v)
        if v["exhaustion_seconds"] is not None:
            want = (v["limit"] - v["now"]) / v["trend_per_second"]
            self.assertLess(abs(v["exhaustion_seconds"] - want), 0.05 * want + 30, v)
        # The writable layer holds the 2 MiB file; there is no quota, so no
        # forecast, and it says why.
        self.assertGreaterEqual(w["now"], 2 * MIB)
        self.assertLess(w["now"], 2 * MIB + 1 * MIB)
        self.assertEqual(w["model"], "none")
        self.assertEqual(w["reason"], "no_quota")
        self.assertNotIn("exhaustion_seconds", w)
        self.assertIsNone(self.metric("container_fs_quota_bytes", name=c.name))
        out = subprocess.run([h.MONITOR, "forecast", "--url", self.agent.url, c.name],
                             capture_output=True, text=True, timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        rows = {l.split()[0] + " " + l.split()[1]: l for l in out.stdout.splitlines()
                if l.startswith(("volume", "writable"))}
        self.assertIn("no forecast: no quota", rows.get("writable /", ""), out.stdout)
        self.assertIn("linear", rows.get("volume /data", ""), out.stdout)

    def test_writable_layer_quota(self):
        # A quota needs overlay2 on xfs mounted with pquota; elsewhere Docker
        # refuses --storage-opt size= and there is nothing real to measure.
        name = h.unique("fc-quota")
        r = subprocess.run(["docker", "run", "-d", "--name", name, "--storage-opt", "size=64m",
                            h.IMAGE, "sh", "-c",
                            "dd if=/dev/urandom of=/q bs=1024 count=4096; sleep 600"],
                           capture_output=True, text=True, timeout=60)
        self.addCleanup(h.docker, "rm", "-f", name, check=False)
        if r.returncode != 0:
            self.skipTest("docker refuses a writable-layer quota here: %s" %
                          (r.stderr.strip().splitlines() or [""])[0][:200])

        def quota():
            d = self.forecast(name) if self.agent.get(
                "/api/v1/containers/%s/forecast" % name).status == 200 else None
            w = self.resource(d, "writable", "/") if d else None
            return w if w and w.get("now", 0) >= 4 * MIB else None
        w = h.wait_for("the writable layer of %s against its quota" % name, quota, 30)
        self.assertEqual(w["limit"], 64 * MIB)
        self.assertEqual(self.metric("container_fs_quota_bytes", name=name, mountpoint="/"),
                         64 * MIB)

    def test_bad_config(self):
        rc, err, cfg = h.run_agent_to_exit(["--listen", "127.0.0.1:0"],
                                           config="forecast:\n  window: 1s\n")
        self.assertEqual(rc, 2, err)
        self.assertIn("config.yml:2:11: forecast.window", err)


if __name__ == "__main__":
    unittest.main()
