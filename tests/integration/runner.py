"""The integration suite's runner (tests/run calls it).

Runs every tests/integration/test_*.py, or those whose names contain one of
the words given, and ends with the line
"integration: N passed, N failed, N skipped". Standard library only.

Each test file runs in its own python process (a worker), up to JOBS at
once: the tests mostly wait on the agent's ticks, containers and timers,
so files overlap well even on two cores. Every worker has its own pid, so
the container names harness.unique() makes (monitor-it-<pid>-...) never
collide between files. A file whose tests must not share the machine
(timing figures, daemon-wide operations) says so with a module-level line
"SERIAL = True"; those run one at a time after the parallel part, alone.

A file's output is printed whole when it finishes, after a line naming the
file, its counts and its time. A test that failed runs once more at the
end, alone: on a loaded machine a deadline can pass for reasons outside
the agent. One that then passes is counted as passed but named as flaky.
Before the totals come the skipped tests with their reasons and the 15
slowest tests (class set-up and tear-down counted as their own entry; all
of them in build/integration/test-times.txt).

    runner.py [-j N] [word ...]     MONITOR_IT_JOBS=N sets the default (3)
    runner.py --worker ID --out F   one file, class or test (internal)
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import harness as h

JOBS = int(os.environ.get("MONITOR_IT_JOBS", "3"))
SLOWEST = 15
RERUNS = 5
# Start the longest files first so the last one to finish is a short one.
# Measured by the last run on this machine (build/integration/file-times.json),
# else the seconds in tests/integration/file-times.json (a quiet 2-core run;
# refresh it from the build's file when files change a lot), else the size
# of the file.
TIMES = os.path.join(h.WORK, "file-times.json")
SEED_TIMES = os.path.join(h.HERE, "file-times.json")


# ---- the worker: one file (or one test) in this process -------------------------

class TimedResult(unittest.TextTestResult):
    """A text result that also records each test's wall time, and the time
    spent between classes (setUpClass/tearDownClass) as an entry of its own."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.durations = []            # [(id, seconds)]
        self._mark = time.monotonic()  # end of the previous test
        self._cls = None

    def _gap(self, cls_id):
        gap = time.monotonic() - self._mark
        if self._cls is not None or gap >= 0.5:
            self.durations.append(("%s (class set-up/tear-down)" % (cls_id or "?"), gap))

    def startTest(self, test):
        cls = "%s.%s" % (type(test).__module__, type(test).__name__)
        if cls != self._cls:
            self._gap(cls)
            self._cls = cls
        self._t0 = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        now = time.monotonic()
        self.durations.append((test.id(), now - self._t0))
        self._mark = now

    def finish(self):
        """The last class's tear-down."""
        if self._cls is not None:
            gap = time.monotonic() - self._mark
            if gap >= 0.5:
                self.durations.append(("%s (class set-up/tear-down)" % self._cls, gap))


def worker(test_id, out):
    sys.path.insert(0, h.HERE)
    suite = unittest.TestLoader().loadTestsFromName(test_id)
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=TimedResult)
    result = runner.run(suite)
    result.finish()
    # A setUpClass that failed is one failure that ran no test: count it as
    # run so that passed + failed + skipped adds up.
    holders = sum(1 for t, _ in result.errors if not hasattr(t, "_testMethodName"))
    doc = {
        "run": result.testsRun + holders,
        "failed": [t.id() for t, _ in result.failures + result.errors],
        "rerunnable": [t.id() for t, _ in result.failures + result.errors
                       if hasattr(t, "_testMethodName")],
        "unexpected": len(result.unexpectedSuccesses),
        "expected_failures": len(result.expectedFailures),
        "skipped": [(t.id(), reason) for t, reason in result.skipped],
        "durations": result.durations,
    }
    with open(out, "w") as f:
        json.dump(doc, f)
    return 0 if result.wasSuccessful() else 1


# ---- the parent: schedules workers, prints, counts ------------------------------

class Job:
    """A worker process running one file or test, its output in a temp file."""

    def __init__(self, test_id):
        self.id = test_id
        fd, self.out = tempfile.mkstemp(prefix="run-", suffix=".log", dir=h.WORK)
        self.log = os.fdopen(fd, "wb")
        self.res = self.out[:-4] + ".json"
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", test_id, "--out", self.res],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            cwd=h.ROOT, preexec_fn=h.die_with_parent)

    def done(self):
        return self.proc.poll() is not None

    def collect(self):
        """Prints the worker's output whole and returns its result document
        (a failure of its own when the worker died without one)."""
        self.proc.wait()
        self.log.close()
        secs = time.monotonic() - self.t0
        with open(self.out, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        try:
            with open(self.res) as f:
                doc = json.load(f)
        except (OSError, ValueError):
            doc = {"run": 1, "failed": [self.id], "rerunnable": [], "unexpected": 0,
                   "expected_failures": 0, "skipped": [], "durations": [],
                   "crash": "the worker for %s exited with %s and no result" % (self.id, self.proc.returncode)}
        doc["seconds"] = secs
        nf = len(doc["failed"]) + doc["unexpected"]
        print("==== %s: %d run, %d failed, %d skipped (%.0f s)"
              % (self.id, doc["run"], nf, len(doc["skipped"]), secs))
        sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
        if "crash" in doc:
            print("FAIL: " + doc["crash"])
        sys.stdout.flush()
        for p in (self.out, self.res):
            try:
                os.unlink(p)
            except OSError:
                pass
        return doc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()


def run_jobs(ids, jobs, running):
    """Runs the ids, at most jobs at once; returns {id: result document}."""
    todo, docs = list(ids), {}
    while todo or running:
        while todo and len(running) < jobs:
            running.append(Job(todo.pop(0)))
        time.sleep(0.2)
        for j in [j for j in running if j.done()]:
            running.remove(j)
            docs[j.id] = j.collect()
    return docs


def is_serial(path):
    with open(path, encoding="utf-8") as f:
        return re.search(r"^SERIAL\s*=\s*True\b", f.read(), re.M) is not None


def load_times(path=TIMES):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def by_expected_time(files):
    known = load_times(SEED_TIMES)
    known.update(load_times())

    def est(f):
        # A file not yet timed goes by its size (about 0.1 s a line).
        return known.get(f[:-3]) or os.path.getsize(os.path.join(h.HERE, f)) / 300
    return sorted(files, key=est, reverse=True)


def save_times(docs):
    known = load_times()
    known.update({k: round(d["seconds"], 1) for k, d in docs.items()})
    with open(TIMES, "w") as f:
        json.dump(known, f, indent=1, sort_keys=True)


def slowest(docs):
    entries = [e for d in docs.values() for e in d["durations"]]
    entries.sort(key=lambda e: e[1], reverse=True)
    with open(os.path.join(h.WORK, "test-times.txt"), "w") as f:
        f.writelines("%7.1f %s\n" % (secs, test_id) for test_id, secs in entries)
    if entries:
        print("slowest tests:")
    for test_id, secs in entries[:SLOWEST]:
        mod, _, rest = test_id.partition(".")
        print("  %6.1f s  %s.py  %s" % (secs, mod, rest))


def main(argv):
    jobs, words, i = JOBS, [], 0
    while i < len(argv):
        if argv[i] == "-j" and i + 1 < len(argv):
            jobs, i = max(1, int(argv[i + 1])), i + 2
            continue
        if not argv[i].startswith("-"):
            words.append(argv[i])
        i += 1
    os.makedirs(h.WORK, exist_ok=True)
    files = sorted(f for f in os.listdir(h.HERE) if f.startswith("test_") and f.endswith(".py")
                   and (not words or any(w in f for w in words)))
    serial = [f[:-3] for f in files if is_serial(os.path.join(h.HERE, f))]
    parallel = [f[:-3] for f in by_expected_time(files) if f[:-3] not in serial]

    running = []

    def stop(signum, _frame):
        # The watchdog (tests/run) ends a wedged run: say what was running.
        print("runner: signal %d; still running: %s" % (signum, ", ".join(j.id for j in running) or "nothing"))
        for j in running:
            j.kill()
        sys.stdout.flush()
        os._exit(128 + signum)
    signal.signal(signal.SIGTERM, stop)

    t0 = time.monotonic()
    docs = run_jobs(parallel, jobs, running)
    docs.update(run_jobs(serial, 1, running))
    save_times(docs)

    run = sum(d["run"] for d in docs.values())
    failed = sum(len(d["failed"]) + d["unexpected"] for d in docs.values())
    skipped = [s for d in docs.values() for s in d["skipped"]]
    passed = run - failed - len(skipped) - sum(d["expected_failures"] for d in docs.values())
    # Failed tests run again, one at a time, after everything else.
    flaky = []
    for test_id in [t for d in docs.values() for t in d["rerunnable"]][:RERUNS]:
        print("re-running %s once" % test_id)
        again = run_jobs([test_id], 1, running)[test_id]
        if again["run"] == 1 and not again["failed"] and not again["skipped"] and not again["unexpected"]:
            flaky.append(test_id)
            failed -= 1
            passed += 1
    setup_rc = os.environ.get("MONITOR_IT_SETUP_RC", "0")
    if setup_rc != "0":
        print("FAIL: tests/integration/setup exited with %s" % setup_rc)
        failed += 1
    if skipped:
        print("skipped:")
        for test_id, reason in skipped:
            print("  %s: %s" % (test_id, reason))
    if flaky:
        print("flaky (failed, then passed when run again):")
        for test_id in flaky:
            print("  " + test_id)
    slowest(docs)
    print("(%.0f s, %d jobs)" % (time.monotonic() - t0, jobs))
    print("integration: %d passed, %d failed, %d skipped" % (passed, failed, len(skipped)))
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker" and sys.argv[3] == "--out":
        sys.exit(worker(sys.argv[2], sys.argv[4]))
    sys.exit(main(sys.argv[1:]))
