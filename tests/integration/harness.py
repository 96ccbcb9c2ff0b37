"""Helpers for the integration tests, and the suite's runner.

The tests drive the real agent (build/monitor) over its HTTP port, against a
real Docker engine, runc and Prometheus that tests/integration/setup brings
up. This module gives them: the agent as a process (start, wait for ready,
stop and check the exit status), HTTP requests, a parser for the Prometheus
text format, Docker and runc helpers that always clean up after themselves,
readers for a container's cgroup files (cgroup v1, v2 and hybrid), and skips
with a reason for what a host lacks.

The suite's runner is runner.py (tests/run calls it). Standard library only.
"""

import contextlib
import ctypes
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(ROOT, "build")
# MONITOR_BIN runs the suite against another build (make BUILD=build/x).
MONITOR = os.environ.get("MONITOR_BIN") or os.path.join(BUILD, "monitor")
WORK = os.path.join(BUILD, "integration")
IMAGE = "monitor-test-busybox"
PREFIX = "monitor-it-"
RUNC_BUNDLE = os.path.join(WORK, "runc-bundle")
DOCKER = "/usr/bin/docker" if os.access("/usr/bin/docker", os.X_OK) else (shutil.which("docker") or "docker")
CG = "/sys/fs/cgroup"

# Every container a test run creates is named monitor-it-<RUN_TAG>-..., the
# runner's pid in hex: runs on one machine never collide, and teardown
# removes only the containers of runners that are gone.
RUN_TAG = "%x" % os.getpid()

# make check runs the suite against an ASan+UBSan build (tests/check sets
# MONITOR_SANITIZED=1): the agent is 2-5x slower there, so every deadline of
# wait_for, start-up and stop is stretched by TIME_SCALE, and tests that
# measure RSS, CPU or latency skip (require_unsanitized) since the sanitizer
# runtime, not the agent, would set those figures.
SANITIZED = os.environ.get("MONITOR_SANITIZED") == "1"
TIME_SCALE = float(os.environ.get("MONITOR_IT_TIME_SCALE") or (4 if SANITIZED else 1))


_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent():
    """preexec_fn for the processes tests start: SIGKILL them when this
    runner dies (a watchdog's kill skips every cleanup)."""
    _libc.prctl(1, signal.SIGKILL)          # PR_SET_PDEATHSIG


def skip(reason):
    """Skips the calling test with a reason shown in the report."""
    raise unittest.SkipTest(reason)


SANITIZER_MARKS = re.compile(r"runtime error: |ERROR: (AddressSanitizer|LeakSanitizer|"
                             r"UndefinedBehaviorSanitizer)|SUMMARY: (Address|Leak|"
                             r"UndefinedBehavior)Sanitizer")


def keep_sanitizer_report(text, what):
    """make check: UBSan beside ASan reports on stderr whatever log_path
    says, and an agent's stderr is a log file a test may never read. A
    copy of any text with a report goes to MONITOR_SANITIZER_DIR, which
    tests/check requires empty at the end."""
    d = os.environ.get("MONITOR_SANITIZER_DIR")
    if not d or not SANITIZER_MARKS.search(text):
        return
    fd, path = tempfile.mkstemp(prefix="stderr-", suffix=".log", dir=d)
    with os.fdopen(fd, "w") as f:
        f.write("%s\n%s" % (what, text))


def require_unsanitized(what):
    """Skips a test that measures `what` (RSS, CPU time, latency) when the
    agent is the ASan+UBSan build of make check, whose runtime dominates
    those figures; make test measures them on the normal build."""
    if SANITIZED:
        skip("measures %s, which the ASan+UBSan runtime distorts (make check); "
             "measured by make test" % what)


def unique(name):
    """A container name for this run: monitor-it-<run>-<name>."""
    return "%s%s-%s" % (PREFIX, RUN_TAG, name)


def wait_for(what, fn, timeout, interval=0.1):
    """Calls fn until it returns something truthy; returns that value.
    Fails the test with `what` after timeout seconds (times TIME_SCALE)."""
    timeout *= TIME_SCALE
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except (OSError, ValueError, KeyError, urllib.error.URLError) as e:
            last_exc = e
        if time.monotonic() >= deadline:
            extra = " (last error: %r)" % (last_exc,) if last_exc else ""
            raise AssertionError("timed out after %.1f s waiting for %s%s" % (timeout, what, extra))
        time.sleep(interval)


# ---- requirements ------------------------------------------------------------

def require_root():
    if os.geteuid() != 0:
        skip("needs root (cgroup files, docker socket, runc)")


_docker_ok = None


def require_docker():
    """Skips unless root and a Docker engine answers, and the test image exists."""
    global _docker_ok
    require_root()
    if _docker_ok is None:
        try:
            r = subprocess.run([DOCKER, "image", "inspect", IMAGE], capture_output=True, timeout=20)
            _docker_ok = "ok" if r.returncode == 0 else (
                "no docker engine or no image %s (tests/integration/setup): %s" % (IMAGE, r.stderr.decode(errors="replace").strip()[:200]))
        except (OSError, subprocess.TimeoutExpired) as e:
            _docker_ok = "docker unusable: %s" % e
    if _docker_ok != "ok":
        skip(_docker_ok)


def require_runc():
    require_root()
    if not shutil.which("runc"):
        skip("runc is not installed")
    if not os.path.exists(os.path.join(RUNC_BUNDLE, "config.json")):
        skip("no runc bundle in %s (tests/integration/setup)" % RUNC_BUNDLE)


def require_binary(name):
    path = shutil.which(name)
    if not path:
        skip("%s is not installed" % name)
    return path


# ---- HTTP ----------------------------------------------------------------------

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers        # email.message.Message: case-insensitive get()
        self.body = body              # bytes, as sent (not decompressed)

    @property
    def text(self):
        return self.body.decode("utf-8")

    def json(self):
        return json.loads(self.body)


def http_get(url, headers=None, timeout=5):
    """GET url; returns a Response for any status (4xx/5xx included).
    Raises OSError/URLError when nothing answers."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Response(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, e.headers, e.read())


def http_post(url, headers=None, body=b"", timeout=5):
    """POST url; returns a Response for any status, as http_get."""
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Response(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, e.headers, e.read())


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- Prometheus text format 0.0.4 ----------------------------------------------

class Exposition:
    """A parsed /metrics page.

    samples: sample name -> list of (labels dict, value)
    help, type: family name -> text
    timestamps: number of samples that carried a timestamp
    order: family names in the order their TYPE lines came
    """

    _name = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
    _label = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

    def __init__(self, text):
        self.samples = {}
        self.help = {}
        self.type = {}
        self.order = []
        self.timestamps = 0
        for n, line in enumerate(text.split("\n"), 1):
            if not line:
                continue
            try:
                self._line(line)
            except IndexError:
                raise ValueError("line %d: ends inside a label set: %r" % (n, line[:200])) from None
            except ValueError as e:
                raise ValueError("line %d: %s: %r" % (n, e, line[:200])) from None

    def _line(self, line):
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                if not self._name.fullmatch(parts[2]):
                    raise ValueError("bad metric name")
                rest = parts[3] if len(parts) > 3 else ""
                if parts[1] == "HELP":
                    if parts[2] in self.help:
                        raise ValueError("second HELP for %s" % parts[2])
                    self.help[parts[2]] = self._unescape(rest)
                else:
                    if parts[2] in self.type:
                        raise ValueError("second TYPE for %s" % parts[2])
                    if rest not in ("counter", "gauge", "histogram", "summary", "untyped"):
                        raise ValueError("bad type %r" % rest)
                    self.type[parts[2]] = rest
                    self.order.append(parts[2])
            return
        m = self._name.match(line)
        if not m:
            raise ValueError("no metric name")
        name, i = m.group(0), m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = self._labels(line, i + 1)
        if i >= len(line) or line[i] != " ":
            raise ValueError("no space before the value")
        fields = line[i + 1:].split(" ")
        if len(fields) not in (1, 2):
            raise ValueError("trailing text")
        value = self._value(fields[0])
        if len(fields) == 2:
            int(fields[1])
            self.timestamps += 1
        self.samples.setdefault(name, []).append((labels, value))

    def _labels(self, line, i):
        labels = {}
        while True:
            if line[i] == "}":
                return labels, i + 1
            m = self._label.match(line, i)
            if not m:
                raise ValueError("bad label name at %d" % i)
            key = m.group(0)
            i = m.end()
            if line[i:i + 2] != '="':
                raise ValueError("no =\" after label %s" % key)
            i += 2
            val = []
            while True:
                c = line[i]
                if c == "\\":
                    nxt = line[i + 1]
                    if nxt == "n":
                        val.append("\n")
                    elif nxt in ('"', "\\"):
                        val.append(nxt)
                    else:
                        raise ValueError("bad escape \\%s in label %s" % (nxt, key))
                    i += 2
                elif c == '"':
                    i += 1
                    break
                elif c == "\n":
                    raise ValueError("raw newline in label value")
                else:
                    val.append(c)
                    i += 1
            if key in labels:
                raise ValueError("label %s twice" % key)
            labels[key] = "".join(val)
            if line[i] == ",":
                i += 1
            elif line[i] != "}":
                raise ValueError("expected , or } at %d" % i)

    @staticmethod
    def _unescape(s):
        out, i = [], 0
        while i < len(s):
            if s[i] == "\\" and i + 1 < len(s) and s[i + 1] in "n\\":
                out.append("\n" if s[i + 1] == "n" else "\\")
                i += 2
            else:
                out.append(s[i])
                i += 1
        return "".join(out)

    @staticmethod
    def _value(s):
        if s in ("+Inf", "Inf"):
            return math.inf
        if s == "-Inf":
            return -math.inf
        if s == "NaN":
            return math.nan
        if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", s):
            raise ValueError("bad value %r" % s)
        return float(s)

    def family_of(self, sample_name):
        """The TYPE'd family a sample belongs to, or None."""
        if sample_name in self.type:
            return sample_name
        for suffix in ("_bucket", "_sum", "_count"):
            if sample_name.endswith(suffix) and sample_name[:-len(suffix)] in self.type:
                return sample_name[:-len(suffix)]
        return None

    def get(self, name, /, **labels):
        """Samples of name whose labels include all of labels: [(labels, value)]."""
        return [(l, v) for l, v in self.samples.get(name, [])
                if all(l.get(k) == want for k, want in labels.items())]

    def value(self, name, /, **labels):
        """The one value of name matching labels; AssertionError unless exactly one."""
        found = self.get(name, **labels)
        if len(found) != 1:
            raise AssertionError("%d samples of %s%s (want 1): %s" % (len(found), name, labels, found[:5]))
        return found[0][1]

    def sum(self, name, /, **labels):
        """Sum over every sample of name matching labels; None when there is none."""
        found = self.get(name, **labels)
        return sum(v for _, v in found) if found else None


# ---- the agent -------------------------------------------------------------------

class Agent:
    """One build/monitor agent process on a free loopback port.

    config: YAML text written to <tmp>/config.yml and passed with --config.
    The data dir and stderr log live in a temp dir removed by stop().
    """

    def __init__(self, config=None, host_root=None, interval="1s", args=(), listen=None):
        if not os.access(MONITOR, os.X_OK):
            raise AssertionError("%s is missing: run make" % MONITOR)
        os.makedirs(WORK, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="agent-", dir=WORK)
        self.port = free_port()
        self.listen = listen or "127.0.0.1:%d" % self.port
        self.url = "http://%s" % self.listen
        self.data_dir = os.path.join(self.dir, "data")
        os.makedirs(self.data_dir)
        self.log_path = os.path.join(self.dir, "stderr.log")
        self.config_path = None
        cmd = [MONITOR, "agent", "--listen", self.listen, "--data-dir", self.data_dir]
        if interval:
            cmd += ["--interval", interval]
        if config is not None:
            self.config_path = os.path.join(self.dir, "config.yml")
            with open(self.config_path, "w") as f:
                f.write(config)
            cmd += ["--config", self.config_path]
        if host_root is not None:
            cmd += ["--host-root", host_root]
        cmd += list(args)
        self.cmd = cmd
        self.proc = None

    def start(self, wait_ready=True):
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, cwd=self.dir, preexec_fn=die_with_parent)
        if wait_ready:
            try:
                self.wait_ready()
            except AssertionError as e:
                tail = self.stderr()[-3000:]
                self.kill()          # the caller never gets the object to stop it
                raise AssertionError("%s; agent stderr:\n%s" % (e, tail)) from None
            except BaseException:
                self.kill()
                raise
        return self

    def stderr(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def _dead(self):
        rc = self.proc.poll()
        if rc is not None:
            raise AssertionError("agent exited with %s before it was ready" % rc)

    def wait_ready(self, timeout=10):
        def ready():
            self._dead()
            try:
                return http_get(self.url + "/-/ready", timeout=2).status == 200
            except OSError:
                return False
        wait_for("%s/-/ready to answer 200" % self.url, ready, timeout)

    def get(self, path, headers=None, timeout=5):
        return http_get(self.url + path, headers, timeout)

    def post(self, path, headers=None, timeout=5):
        return http_post(self.url + path, headers, timeout=timeout)

    def metrics(self):
        r = self.get("/metrics")
        if r.status != 200:
            raise AssertionError("/metrics answered %d: %r" % (r.status, r.body[:300]))
        return Exposition(r.text)

    def containers(self):
        """The data list of /api/v1/containers."""
        r = self.get("/api/v1/containers")
        if r.status != 200:
            raise AssertionError("/api/v1/containers answered %d: %r" % (r.status, r.body[:300]))
        doc = r.json()
        if doc.get("status") != "success" or not isinstance(doc.get("data"), list):
            raise AssertionError("/api/v1/containers: unexpected document %r" % (doc,))
        return doc["data"]

    def container(self, name):
        """The /api/v1/containers entry with this name, or None."""
        for c in self.containers():
            if c.get("name") == name:
                return c
        return None

    _ticks_re = re.compile(r"^monitor_ticks_total (\S+)$", re.M)

    def _raw_ticks(self):
        r = self.get("/metrics")
        if r.status != 200:
            raise AssertionError("/metrics answered %d: %r" % (r.status, r.body[:300]))
        m = self._ticks_re.search(r.text)
        if not m:
            raise AssertionError("no monitor_ticks_total on /metrics")
        return float(m.group(1)), r.text

    def ticks(self):
        return self._raw_ticks()[0]

    def wait_tick(self, timeout=5, probe=None):
        """Waits until monitor_ticks_total moves on and returns the page that
        shows the new tick (an Exposition), fetched within ~50 ms of the
        tick. probe, when given, is called the moment that page has arrived
        (before parsing it, which takes long on a big page); its result is
        the page's .probe."""
        first = self.ticks()

        def moved():
            n, text = self._raw_ticks()
            return (text, probe() if probe else None) if n > first else None
        text, got = wait_for("the next tick", moved, timeout, interval=0.05)
        e = Exposition(text)
        e.probe = got
        return e

    def stop(self, timeout=5):
        """SIGTERM; asserts the agent exits 0 within timeout seconds."""
        if self.proc is None:
            return
        timeout *= TIME_SCALE
        proc, self.proc = self.proc, None
        try:
            if proc.poll() is not None:
                raise AssertionError("agent died while the test ran (exit %s); stderr:\n%s"
                                     % (proc.returncode, self.stderr()[-3000:]))
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError("agent did not exit within %s s of SIGTERM; stderr:\n%s"
                                     % (timeout, self.stderr()[-3000:]))
            if rc != 0:
                raise AssertionError("agent exited with %d after SIGTERM (want 0); stderr:\n%s"
                                     % (rc, self.stderr()[-3000:]))
        finally:
            self._log.close()
            self._keep_reports()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _keep_reports(self):
        with contextlib.suppress(OSError):
            keep_sanitizer_report(self.stderr(), " ".join(self.cmd))

    def kill(self):
        """Cleanup path: stops the agent without asserting anything."""
        if self.proc is not None:
            with contextlib.suppress(Exception):
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None
            self._log.close()
            self._keep_reports()
            shutil.rmtree(self.dir, ignore_errors=True)


def run_agent_to_exit(args, config=None, timeout=10):
    """Runs `monitor agent` with args expecting it to give up by itself.
    Returns (exit status, stderr text, config path). A process still running
    after timeout seconds is killed and reported with exit status None."""
    timeout *= TIME_SCALE
    os.makedirs(WORK, exist_ok=True)
    d = tempfile.mkdtemp(prefix="agent-", dir=WORK)
    try:
        cmd = [MONITOR, "agent", "--data-dir", os.path.join(d, "data")]
        cfg = None
        if config is not None:
            cfg = os.path.join(d, "config.yml")
            with open(cfg, "w") as f:
                f.write(config)
            cmd += ["--config", cfg]
        cmd += list(args)
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, cwd=d, preexec_fn=die_with_parent)
        try:
            _, err = p.communicate(timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
            rc = None
        keep_sanitizer_report(err.decode("utf-8", "replace"), " ".join(cmd))
        return rc, err.decode("utf-8", "replace"), cfg
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---- Docker ------------------------------------------------------------------------

def docker(*args, timeout=60, check=True):
    """Runs the docker client; returns stdout text."""
    r = subprocess.run([DOCKER] + list(args), capture_output=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("docker %s failed: %s" % (" ".join(args), r.stderr.decode(errors="replace").strip()))
    return r.stdout.decode()


class Container:
    """A docker container started by docker_run; cleaned up by the test."""

    def __init__(self, name, cid):
        self.name = name
        self.id = cid
        self.started = time.monotonic()   # right after `docker run` returned

    def inspect(self):
        return json.loads(docker("inspect", self.id))[0]

    def pid(self):
        return self.inspect()["State"]["Pid"]

    def cgroup(self):
        return Cgroup.of_pid(self.pid())


def docker_run(test, name, cmd, opts=(), image=IMAGE):
    """docker run -d --name <unique(name)> opts image cmd; the container is
    removed (docker rm -f) when test (a TestCase, or a list for class-level
    fixtures) cleans up."""
    full = unique(name)
    docker("rm", "-f", full, check=False)
    out = docker("run", "-d", "--name", full, *opts, image, *cmd)
    c = Container(full, out.strip().splitlines()[-1])
    if isinstance(test, list):
        test.append(c)
    else:
        test.addCleanup(docker_rm, c)
    return c


def backing_disk(path):
    """/dev/<disk> holding path (the whole disk for a partition), or None."""
    st = os.stat(path)
    sys_dir = os.path.realpath("/sys/dev/block/%d:%d" % (os.major(st.st_dev), os.minor(st.st_dev)))
    if not os.path.isdir(sys_dir):
        return None
    if os.path.exists(os.path.join(sys_dir, "partition")):
        sys_dir = os.path.dirname(sys_dir)
    dev = "/dev/" + os.path.basename(sys_dir)
    return dev if os.path.exists(dev) else None


def docker_rm(c):
    docker("rm", "-f", c.id, check=False)


def docker_network(name, why):
    """docker network create <unique(name)>: a user-defined bridge network,
    whose containers get an eth0 even where dockerd runs with --bridge=none
    (and without iptables: traffic between them and the host flows). Returns
    its name; the caller removes it (docker network rm). Skips the test,
    saying why it needs one, when it cannot be made."""
    full = unique(name)
    docker("network", "rm", full, check=False)
    r = subprocess.run([DOCKER, "network", "create", full], capture_output=True, timeout=30)
    if r.returncode != 0:
        skip("docker network create failed (%s): %s" % (why, r.stderr.decode(errors="replace").strip()[:200]))
    return full


# ---- cgroups -------------------------------------------------------------------------

class Cgroup:
    """A container's cgroup on this host, read the way the kernel shows it.

    path: the cgroup path as /proc/<pid>/cgroup gives it for the memory
    controller (v1, hybrid) or the unified line (v2): "/docker/<id>".
    """

    def __init__(self, path, v2):
        self.path = path
        self.v2 = v2

    @staticmethod
    def pure_v2():
        return os.path.exists(os.path.join(CG, "cgroup.controllers"))

    @classmethod
    def of_pid(cls, pid):
        v2 = cls.pure_v2()
        with open("/proc/%d/cgroup" % pid) as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                if v2 and ctrls == "":
                    return cls(path, True)
                if not v2 and "memory" in ctrls.split(","):
                    return cls(path, False)
        raise AssertionError("no cgroup for pid %d" % pid)

    def file(self, ctrl, name):
        if self.v2:
            return os.path.join(CG, self.path.lstrip("/"), name)
        return os.path.join(CG, ctrl, self.path.lstrip("/"), name)

    def read(self, ctrl, name):
        with open(self.file(ctrl, name)) as f:
            return f.read()

    def read_int(self, ctrl, name):
        return int(self.read(ctrl, name).split()[0])

    def kv(self, ctrl, name):
        out = {}
        for line in self.read(ctrl, name).splitlines():
            k, _, v = line.partition(" ")
            if v.strip().lstrip("-").isdigit():
                out[k] = int(v)
        return out

    # What the agent's metrics are defined from (collectors/metrics.def).
    def memory_usage(self):
        return self.read_int("memory", "memory.current" if self.v2 else "memory.usage_in_bytes")

    def inactive_file(self):
        st = self.kv("memory", "memory.stat")
        return st["inactive_file"] if self.v2 else st["total_inactive_file"]

    def memory_limit(self):
        if self.v2:
            v = self.read("memory", "memory.max").strip()
            return 0 if v == "max" else int(v)
        return self.read_int("memory", "memory.limit_in_bytes")

    def cpu_usage_seconds(self):
        if self.v2:
            return self.kv("cpu", "cpu.stat")["usage_usec"] / 1e6
        return self.read_int("cpuacct", "cpuacct.usage") / 1e9

    def cpu_quota_period(self):
        if self.v2:
            q, p = self.read("cpu", "cpu.max").split()
            return (-1 if q == "max" else int(q)), int(p)
        return self.read_int("cpu", "cpu.cfs_quota_us"), self.read_int("cpu", "cpu.cfs_period_us")

    def pids_current(self):
        return self.read_int("pids", "pids.current")

    def write_bytes(self):
        """Bytes written to block devices, as the kernel counts them here."""
        if self.v2:
            total = 0
            for line in self.read("io", "io.stat").splitlines():
                for field in line.split()[1:]:
                    k, _, v = field.partition("=")
                    if k == "wbytes":
                        total += int(v)
            return total
        total = 0
        for line in self.read("blkio", "blkio.throttle.io_service_bytes_recursive").splitlines():
            f = line.split()
            if len(f) == 3 and f[1] == "Write":
                total += int(f[2])
        return total


def parse_size(s):
    """'20.5MiB', '640KiB', '1.2GB', '0B' -> bytes (docker stats formatting)."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([kKMGTP]?i?B)\s*", s)
    if not m:
        raise ValueError("bad size %r" % s)
    units = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3, "TiB": 1024 ** 4,
             "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}
    return float(m.group(1)) * units[m.group(2)]


# ---- the runner ------------------------------------------------------------------------

if __name__ == "__main__":
    # The runner lives in runner.py (tests/run calls it); this keeps
    # `python3 harness.py [word ...]` working.
    import runner
    sys.exit(runner.main(sys.argv[1:]))
