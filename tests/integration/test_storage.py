"""The time-series store through the real agent and real SQLite files.

- kill -9 at random moments, many times: the store opens every time and
  keeps every sample older than the flush window, none missing in between;
- a full disk (a small tmpfs the test mounts itself): /metrics keeps
  serving, the error is reported (log and metrics), writing resumes by
  itself once space is freed;
- a corrupt database file is moved aside and the agent runs;
- `monitor import` / `monitor dump` round trip, their errors, and the
  directory lock against a running agent.

The agent runs against the v2 fixture host root with Docker and eBPF off,
so these tests need neither root nor containers (the disk-full test needs
root to mount its tmpfs).
"""

import os
import random
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import harness as h

FIXTURE_ROOT = os.path.join(h.ROOT, "tests", "fixtures", "cgroup", "v2")
CONFIG = "docker:\n  enabled: false\nstorage:\n  flush_interval: %s\n"
LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+) (-?\d+)$')


def agent_on(data_dir, flush="1s", interval="100ms"):
    """An agent on the fixture root writing into data_dir (kept across runs)."""
    a = h.Agent(config=CONFIG % flush, host_root=FIXTURE_ROOT, interval=interval,
                args=["--no-ebpf"])
    a.cmd[a.cmd.index("--data-dir") + 1] = data_dir
    return a


def monitor(*args, timeout=60):
    r = subprocess.run([h.MONITOR] + list(args), capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def dump(data_dir, *args):
    """[(name, labels text, value, ts)] from monitor dump."""
    rc, out, err = monitor("dump", "--data-dir", data_dir, *args)
    if rc != 0:
        raise AssertionError("monitor dump %s exited %d: %s" % (" ".join(args), rc, err))
    rows = []
    for line in out.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        if not m:
            raise AssertionError("bad dump line %r" % line)
        rows.append((m.group(1), m.group(2) or "", float(m.group(3)), int(m.group(4))))
    return rows


def tempdir(test):
    os.makedirs(h.WORK, exist_ok=True)
    d = tempfile.mkdtemp(prefix="storage-", dir=h.WORK)
    test.addCleanup(shutil.rmtree, d, True)
    return d


class StorageTest(unittest.TestCase):

    def test_sigkill_loses_at_most_the_flush_window(self):
        d = tempdir(self)
        data = os.path.join(d, "data")
        flush_ms, runs, rng = 500, [], random.Random(os.getpid())
        for i in range(12):
            a = agent_on(data, flush="%dms" % flush_ms)
            self.addCleanup(a.kill)
            time.sleep(0.05)        # the last run's last tick may be stamped up to 20 ms late
            t0 = time.time()
            a.start()
            time.sleep(rng.uniform(0.2, 3.0))
            t_kill = time.time()
            a.proc.kill()                       # SIGKILL, whatever it was doing
            a.proc.wait(5)
            a.kill()
            runs.append((t0 * 1000, t_kill * 1000))
        ticks = sorted((ts, v) for _, _, v, ts in dump(data, "monitor_ticks_total"))
        self.assertTrue(ticks, "no monitor_ticks_total samples survived")
        window = flush_ms + 1100          # one flush, the write itself, a tick
        kept_runs = 0
        for n, (start, kill) in enumerate(runs):
            # A run's ticks come before the next run started (which was after the kill).
            until = runs[n + 1][0] if n + 1 < len(runs) else kill + 1000
            got = [(ts, v) for ts, v in ticks if start <= ts < until]
            if not got:
                # Only a run killed before its first flush may have left nothing.
                self.assertLess(kill - start, window + 1000,
                                "run %d: nothing kept though killed %.1f s after start"
                                % (n, (kill - start) / 1000))
                continue
            kept_runs += 1
            values = [int(v) for _, v in got]
            # Every tick from the first on is there: no gap, nothing corrupt.
            self.assertEqual(values, list(range(1, len(values) + 1)),
                             "run %d: ticks missing or out of order" % n)
            lost_ms = kill - got[-1][0]
            self.assertLessEqual(lost_ms, window,
                                 "run %d: lost %.0f ms before the kill (flush %d ms)"
                                 % (n, lost_ms, flush_ms))
        self.assertGreaterEqual(kept_runs, len(runs) // 2)
        # And the store is still a working store.
        empty = os.path.join(d, "empty.prom")
        open(empty, "w").close()
        rc, out, err = monitor("import", "--data-dir", data, empty)
        self.assertEqual(rc, 0, err)

    def test_corrupt_database_moved_aside(self):
        d = tempdir(self)
        data = os.path.join(d, "data")
        os.makedirs(data)
        with open(os.path.join(data, "monitor.db"), "wb") as f:
            f.write(b"garbage, not SQLite " * 5000)
        a = agent_on(data, flush="200ms")
        self.addCleanup(a.kill)
        a.start()
        a.wait_tick()
        e = a.wait_tick()
        self.assertEqual(e.value("monitor_storage_write_ok"), 1)
        err = a.stderr()
        self.assertIn("is not a usable database", err)
        aside = [f for f in os.listdir(data) if f.startswith("monitor.db.corrupt-")]
        self.assertEqual(len(aside), 1, os.listdir(data))
        with open(os.path.join(data, aside[0]), "rb") as f:
            self.assertTrue(f.read().startswith(b"garbage"))
        a.stop()
        self.assertTrue(dump(data, "monitor_ticks_total"))

    def test_disk_full_keeps_serving_and_resumes(self):
        h.require_root()
        d = tempdir(self)
        mnt = os.path.join(d, "small")
        os.makedirs(mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt],
                           capture_output=True)
        if r.returncode != 0:
            h.skip("cannot mount a tmpfs: %s" % r.stderr.decode().strip())
        self.addCleanup(subprocess.run, ["umount", "-l", mnt], capture_output=True)
        data = os.path.join(mnt, "data")
        a = agent_on(data, flush="100ms", interval="100ms")
        self.addCleanup(a.kill)
        a.start()
        h.wait_for("a first successful flush", lambda: a.metrics().value(
            "monitor_storage_chunks_written_total") >= 0 and a.metrics().value(
            "monitor_storage_write_ok") == 1 and os.path.exists(os.path.join(data, "monitor.db")), 10)
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb", buffering=0) as f:     # no buffered close to fail
            block = b"\0" * 65536
            try:
                while True:
                    f.write(block)
                    f.flush()
            except OSError:
                pass
        try:
            e = h.wait_for("a failed flush (monitor_storage_write_errors_total > 0)",
                           lambda: (lambda m: m if m.value("monitor_storage_write_errors_total") > 0
                                    else None)(a.metrics()), 90, interval=0.5)
            self.assertEqual(e.value("monitor_storage_write_ok"), 0)
            # Collection and /metrics go on while the disk refuses writes.
            before = e.value("monitor_ticks_total")
            e2 = a.wait_tick()
            self.assertGreater(e2.value("monitor_ticks_total"), before)
            self.assertGreater(e2.value("monitor_storage_pending_bytes") +
                               e2.value("monitor_storage_head_bytes"), 0)
            log = a.stderr()
            self.assertRegex(log, r"storage: .*monitor\.db: cannot write \((database or disk is full|disk I/O error)")
        finally:
            os.unlink(filler)
        t_free = time.time() * 1000
        h.wait_for("writing to resume (monitor_storage_write_ok 1)",
                   lambda: a.metrics().value("monitor_storage_write_ok") == 1, 30, interval=0.5)
        time.sleep(1)
        self.assertIn("recovered", a.stderr())
        a.stop()
        after = [ts for _, _, _, ts in dump(data, "monitor_ticks_total") if ts > t_free]
        self.assertTrue(after, "nothing written after space came back")

    def test_container_series_stored_and_marked_stale(self):
        """A real container: its series are stored every tick while it runs,
        and end with a stale marker at the tick that no longer has it."""
        h.require_docker()
        d = tempdir(self)
        data = os.path.join(d, "data")
        a = h.Agent(config="storage:\n  flush_interval: 200ms\n", interval="200ms",
                    args=["--no-ebpf"])
        a.cmd[a.cmd.index("--data-dir") + 1] = data
        self.addCleanup(a.kill)
        a.start()
        c = h.docker_run(self, "stored", ["sleep", "600"], ["--memory", "48m"])
        h.wait_for("%s in /metrics" % c.name,
                   lambda: a.metrics().get("container_spec_memory_limit_bytes", name=c.name), 30)
        time.sleep(1)
        h.docker_rm(c)
        h.wait_for("%s gone from /metrics" % c.name,
                   lambda: not a.metrics().get("container_spec_memory_limit_bytes", name=c.name), 30)
        a.wait_tick()
        a.stop()
        sel = 'container_spec_memory_limit_bytes{name="%s"}' % c.name
        rows = dump(data, sel)
        self.assertGreaterEqual(len(rows), 3, rows)
        self.assertTrue(all(v == 48 * 1024 * 1024 for _, _, v, _ in rows), rows)
        rc, out, err = monitor("dump", "--data-dir", data, "--stale", sel)
        self.assertEqual(rc, 0, err)
        lines = [l for l in out.splitlines() if l]
        self.assertTrue(lines[-1].startswith("# stale "), lines[-3:])
        self.assertGreater(int(lines[-1].split()[-1]), rows[-1][3])

    def test_import_dump_round_trip(self):
        d = tempdir(self)
        data = os.path.join(d, "data")
        src = os.path.join(d, "in.prom")
        with open(src, "w") as f:
            f.write("# TYPE req_total counter\n")
            for i in range(600):
                f.write('req_total{code="200",path="/a\\"b"} %d %d\n' % (i * 3, 1700000000000 + i * 1000))
                f.write("temp_celsius %.2f %d\n" % (20 + (i % 7) * 0.25, 1700000000000 + i * 1000))
        rc, out, err = monitor("import", "--data-dir", data, src)
        self.assertEqual(rc, 0, err)
        self.assertIn("1200 samples of 2 series imported", out)
        rows = dump(data, 'req_total{path="/a\\"b"}')
        self.assertEqual(len(rows), 600)
        self.assertEqual(rows[0][1], '{code="200",path="/a\\"b"}')
        self.assertEqual([v for _, _, v, _ in rows], [i * 3 for i in range(600)])
        temps = dump(data, "temp_celsius", "--start", "1700000100000", "--end", "1700000199000")
        self.assertEqual(len(temps), 100)
        # The dump reads back in.
        rc, out, _ = monitor("dump", "--data-dir", data)
        again = os.path.join(d, "again")
        with open(os.path.join(d, "dump.prom"), "w") as f:
            f.write(out)
        rc, out2, err = monitor("import", "--data-dir", again, os.path.join(d, "dump.prom"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(monitor("dump", "--data-dir", again)[1], out)
        # Roll-ups: one point per minute touched, (t-60s, t], counting every sample.
        stamps = [1700000000000 + i * 1000 for i in range(600)]
        ends = sorted({-(-t // 60000) * 60000 for t in stamps})
        mins = [r for r in dump(data, "req_total", "--tier", "1m") if 'rollup="count"' in r[1]]
        self.assertEqual([ts for _, _, _, ts in mins], ends)
        self.assertEqual(sum(v for _, _, v, _ in mins), 600)
        self.assertTrue(all(v == 60 for _, _, v, _ in mins[1:-1]), mins)
        # Importing the same samples again refuses them as not newer.
        rc, out, err = monitor("import", "--data-dir", data, src)
        self.assertEqual(rc, 0, err)
        self.assertIn("1200 refused", out)

    def test_import_errors(self):
        d = tempdir(self)
        data = os.path.join(d, "data")
        bad = os.path.join(d, "bad.prom")
        with open(bad, "w") as f:
            f.write("ok 1 1000\nno_timestamp 1\n")
        rc, _, err = monitor("import", "--data-dir", data, bad)
        self.assertEqual(rc, 1)
        self.assertIn("bad.prom:2: sample has no timestamp", err)
        rc, _, err = monitor("import", "--data-dir", data, os.path.join(d, "missing.prom"))
        self.assertEqual(rc, 1)
        self.assertIn("missing.prom: No such file or directory", err)
        rc, _, err = monitor("dump", "--data-dir", data, 'x{a=~"("}')
        self.assertEqual(rc, 2)
        self.assertIn("bad regular expression", err)
        # A running agent holds the directory.
        a = agent_on(data)
        self.addCleanup(a.kill)
        a.start()
        rc, _, err = monitor("import", "--data-dir", data, bad)
        self.assertEqual(rc, 1)
        self.assertIn("in use by another monitor process", err)
        a.stop()


if __name__ == "__main__":
    unittest.main()
