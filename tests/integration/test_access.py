"""Access control and secrets (agent/access.c), against the real agent.

- A --listen address beyond loopback is refused at start-up (exit 2, a
  message naming --allow-remote) unless --allow-remote or listen_remote: true.
- Listening on 0.0.0.0 without auth:, a client connecting through the host's
  own non-loopback address (the traffic never leaves the host) gets /metrics
  and the query API, and 403 on logs, env, processes, silences, the
  notification log, actions and reload; the same requests from 127.0.0.1
  are not refused by the access check.
- auth.read_token_file: every read (also /metrics) needs the read or the
  admin token (401 with WWW-Authenticate and a Prometheus-style JSON error
  otherwise); health and readiness stay open; the read token on an admin
  endpoint is a 403; the CLI (MONITOR_TOKEN, --token-file) still works.
- No configured token, webhook URL or signing secret appears in the agent's
  log, any JSON answer reachable, /metrics or error messages, even after
  test notifications to receivers that do not answer.
- A config file or token file readable by others is warned about.
"""

import base64
import json
import os
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import harness as h

READ = "rd-" + os.urandom(16).hex()
ADMIN = "ad-" + os.urandom(16).hex()
HOOK_PATH = "hookpath-" + os.urandom(12).hex()
HOOK_SECRET = "signsecret-" + os.urandom(12).hex()
SLACK_PATH = "slackpath-" + os.urandom(12).hex()
URL_FILE_SECRET = "urlfilepath-" + os.urandom(12).hex()

SENSITIVE = ["/api/v1/logs?query=%7B%7D", "/api/v1/logs/containers",
             "/api/v1/containers/x/env", "/api/v1/containers/x/processes",
             "/api/v2/silences", "/api/v1/notifications"]
READS = ["/metrics", "/api/v1/containers", "/api/v1/query?query=up",
         "/api/v1/labels", "/api/v1/status/buildinfo", "/api/v1/rules",
         "/api/v1/alerts", "/api/v1/events"]


def local_address():
    """A non-loopback IPv4 address of this host, or None."""
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True,
                             timeout=5).stdout.split()
    except OSError:
        return None
    for a in out:
        if "." in a and not a.startswith("127."):
            return a
    return None


def write_secret(d, name, value, mode=0o600):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(value + "\n")
    os.chmod(path, mode)
    return path


def request(url, method="GET", headers=None):
    if method == "GET":
        return h.http_get(url, headers)
    return h.http_post(url, headers)


class TestListen(unittest.TestCase):
    def test_1_remote_listen_needs_flag(self):
        port = h.free_port()
        rc, err, _ = h.run_agent_to_exit(["--listen", "0.0.0.0:%d" % port])
        self.assertEqual(rc, 2, err)
        self.assertIn("--allow-remote", err)
        self.assertIn("0.0.0.0:%d" % port, err)
        rc, err, _ = h.run_agent_to_exit(["--listen", "[::]:%d" % port])
        self.assertEqual(rc, 2, err)
        # a config key does not beat the check either: listen: in the file
        rc, err, _ = h.run_agent_to_exit([], config="listen: 0.0.0.0:%d\n" % port)
        self.assertEqual(rc, 2, err)

    def test_2_empty_host_refused_loopback_names_fine(self):
        rc, err, _ = h.run_agent_to_exit(["--listen", ":%d" % h.free_port()])
        self.assertEqual(rc, 2, err)
        self.assertIn("every address", err)
        a = h.Agent(listen="localhost:%d" % h.free_port(), interval=None)
        a.start()
        try:
            self.assertEqual(a.get("/-/healthy").status, 200)
        finally:
            a.stop()

    def test_3_config_key_allows(self):
        a = h.Agent(config="listen_remote: true\n", listen="0.0.0.0:%d" % h.free_port())
        a.start()
        try:
            self.assertEqual(a.get("/-/healthy").status, 200)
        finally:
            a.stop()


class TestRemoteWithoutAuth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.addr = local_address()
        if not cls.addr:
            raise unittest.SkipTest("no non-loopback address on this host")
        port = h.free_port()
        cls.agent = h.Agent(listen="0.0.0.0:%d" % port, args=["--allow-remote"])
        cls.agent.url = "http://127.0.0.1:%d" % port
        cls.agent.start()
        cls.remote = "http://%s:%d" % (cls.addr, port)

    @classmethod
    def tearDownClass(cls):
        cls.agent.stop()

    def test_1_reads_served_remote(self):
        for p in READS:
            r = h.http_get(self.remote + p)
            self.assertNotIn(r.status, (401, 403), p)

    def test_2_sensitive_refused_remote(self):
        for p in SENSITIVE:
            r = h.http_get(self.remote + p)
            self.assertEqual(r.status, 403, p)
            body = r.json()
            self.assertEqual(body["status"], "error")
            self.assertEqual(body["errorType"], "forbidden")
            self.assertIn("auth:", body["error"])

    def test_3_admin_refused_remote(self):
        for p in ["/api/v1/containers/abc/stop", "/-/reload", "/api/v2/silences",
                  "/api/v1/notifications/test?receiver=x"]:
            r = h.http_post(self.remote + p)
            self.assertEqual(r.status, 403, p)
            self.assertEqual(r.json()["errorType"], "forbidden", p)

    def test_4_loopback_not_refused_by_access(self):
        for p in SENSITIVE:
            r = self.agent.get(p)
            if r.status == 403:
                self.assertNotEqual(r.json().get("errorType"), "forbidden", p)


class TestTokens(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="access-", dir=h.WORK)
        rd = write_secret(cls.dir, "read-token", READ)
        ad = write_secret(cls.dir, "admin-token", ADMIN)
        cls.agent = h.Agent(config="auth:\n  read_token_file: %s\n  admin_token_file: %s\n"
                            % (rd, ad), interval="1s")
        cls.agent.start(wait_ready=False)
        h.wait_for("ready", lambda: cls.agent.get("/-/ready").status == 200, 10)
        cls.admin_file = ad

    @classmethod
    def tearDownClass(cls):
        cls.agent.stop()
        shutil.rmtree(cls.dir, True)

    def test_1_reads_need_token(self):
        for p in READS + SENSITIVE:
            r = self.agent.get(p)
            self.assertEqual(r.status, 401, p)
            self.assertIn("Bearer", r.headers.get("WWW-Authenticate", ""), p)
            self.assertEqual(r.json()["errorType"], "unauthorized", p)
            r = self.agent.get(p, {"Authorization": "Bearer wrong-" + READ})
            self.assertEqual(r.status, 401, p)
            for tok in (READ, ADMIN):
                r = self.agent.get(p, {"Authorization": "Bearer " + tok})
                self.assertNotIn(r.status, (401, 403), (p, r.body[:200]))

    def test_2_health_open(self):
        self.assertEqual(self.agent.get("/-/healthy").status, 200)
        self.assertEqual(self.agent.get("/-/ready").status, 200)

    def test_3_metrics_with_token(self):
        r = self.agent.get("/metrics", {"Authorization": "Bearer " + READ})
        self.assertEqual(r.status, 200)
        self.assertIn("monitor_", r.text)

    def test_4_read_token_not_admin(self):
        r = self.agent.post("/-/reload", {"Authorization": "Bearer " + READ})
        self.assertEqual(r.status, 403)
        self.assertIn("admin token", r.json()["error"])
        self.assertEqual(r.json()["errorType"], "forbidden")
        r = self.agent.post("/-/reload", {"Authorization": "Bearer " + ADMIN})
        self.assertEqual(r.status, 200, r.body[:300])

    def test_5_cli_passes_token(self):
        env = dict(os.environ, MONITOR_URL=self.agent.url)
        env.pop("MONITOR_TOKEN", None)
        r = subprocess.run([h.MONITOR, "ps"], env=env, capture_output=True, text=True,
                           timeout=20)
        self.assertNotEqual(r.returncode, 0)
        env["MONITOR_TOKEN"] = READ
        r = subprocess.run([h.MONITOR, "ps"], env=env, capture_output=True, text=True,
                           timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        # monitor top's own HTTP client sends the token too
        env["MONITOR_TOP_CONFIG"] = os.path.join(self.dir, "top.conf")
        r = subprocess.run([h.MONITOR, "top", "--once", "--width", "160"], env=env,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("monitor top - "), r.stdout[:200])
        env.pop("MONITOR_TOKEN")
        r = subprocess.run([h.MONITOR, "top", "--once"], env=env, capture_output=True,
                           text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        r = subprocess.run([h.MONITOR, "ps", "--token-file", self.admin_file], env=env,
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)


def crypt_hash(password):
    """A SHA-512 crypt(3) hash ("$6$") by openssl passwd."""
    r = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password + "\n",
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise unittest.SkipTest("openssl passwd -6 failed: %s" % r.stderr)
    return r.stdout.strip()


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}


class TestBasicAuth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("openssl"):
            raise unittest.SkipTest("no openssl binary (apt-get install openssl)")
        cls.dir = tempfile.mkdtemp(prefix="basic-", dir=h.WORK)
        cls.pw_r, cls.pw_a = "pr-" + os.urandom(8).hex(), "pa-" + os.urandom(8).hex()
        users = write_secret(cls.dir, "users", "# who\nreader:%s\nboss:%s:admin"
                             % (crypt_hash(cls.pw_r), crypt_hash(cls.pw_a)))
        port = h.free_port()
        cls.agent = h.Agent(config="auth:\n  basic_auth_file: %s\n" % users,
                            listen="0.0.0.0:%d" % port, args=["--allow-remote"])
        cls.agent.url = "http://127.0.0.1:%d" % port
        cls.agent.start()
        cls.addr = local_address()
        cls.remote = cls.addr and "http://%s:%d" % (cls.addr, port)

    @classmethod
    def tearDownClass(cls):
        cls.agent.stop()
        shutil.rmtree(cls.dir, True)

    def test_1_reads(self):
        for p in READS + SENSITIVE:
            self.assertEqual(self.agent.get(p).status, 401, p)
            self.assertEqual(self.agent.get(p, basic("reader", "x" + self.pw_r)).status, 401, p)
            self.assertEqual(self.agent.get(p, basic("nobody", self.pw_r)).status, 401, p)
            for hd in (basic("reader", self.pw_r), basic("boss", self.pw_a)):
                r = self.agent.get(p, hd)
                self.assertNotIn(r.status, (401, 403), (p, r.body[:200]))

    def test_2_admin(self):
        r = self.agent.post("/-/reload", basic("reader", self.pw_r))
        self.assertEqual(r.status, 403, r.body)
        r = self.agent.post("/-/reload", basic("boss", self.pw_a))
        self.assertEqual(r.status, 200, r.body)
        r = self.agent.post("/-/reload", basic("boss", self.pw_r))
        self.assertEqual(r.status, 401, r.body)
        self.assertIn("Bearer", r.headers.get("WWW-Authenticate", ""))
        r = self.agent.post("/-/reload")
        self.assertEqual(r.status, 401, r.body)
        self.assertIn("admin user", r.json()["error"])
        r = self.agent.post("/api/v1/containers/nothing-such/stop", basic("boss", self.pw_a))
        self.assertEqual(r.status, 404, r.body)      # past the checks: the id is unknown

    def test_3_remote_with_basic(self):
        if not self.remote:
            self.skipTest("no non-loopback address on this host")
        self.assertEqual(h.http_get(self.remote + "/api/v1/logs/containers").status, 401)
        r = h.http_get(self.remote + "/api/v1/logs/containers", basic("reader", self.pw_r))
        self.assertNotIn(r.status, (401, 403), r.body[:200])
        r = h.http_post(self.remote + "/-/reload", basic("boss", self.pw_a))
        self.assertEqual(r.status, 200, r.body)

    def test_4_bad_file_refused(self):
        bad = write_secret(self.dir, "bad", "alice:plaintext")
        rc, err, _ = h.run_agent_to_exit(["--listen", "127.0.0.1:%d" % h.free_port()],
                                         config="auth:\n  basic_auth_file: %s\n" % bad)
        self.assertEqual(rc, 2, err)
        self.assertIn("%s:1: expected a crypt(3) hash" % bad, err)
        self.assertNotIn("plaintext", err)


class TestLimits(unittest.TestCase):
    """Slowloris from 127.0.0.1 (300 connections sending their headers a
    byte at a time) while /metrics is asked from 127.0.0.2: the per-address
    cap (32) leaves room for the scraper; oversized headers get 431; no CORS
    header unless configured (TestCORS)."""

    @classmethod
    def setUpClass(cls):
        cls.agent = h.Agent()
        cls.agent.start()
        cls.agent.wait_tick()
        cls.port = int(cls.agent.listen.rsplit(":", 1)[1])

    @classmethod
    def tearDownClass(cls):
        cls.agent.stop()

    def get_from(self, src, path="/metrics", timeout=5):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout,
                                     source_address=(src, 0))
        try:
            s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                      % path.encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data
        finally:
            s.close()

    def test_1_slowloris_does_not_starve_metrics(self):
        held = []
        try:
            for i in range(300):
                try:
                    c = socket.create_connection(("127.0.0.1", self.port), timeout=2,
                                                 source_address=("127.0.0.1", 0))
                    c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                    held.append(c)
                except OSError:
                    pass
            slow_ok = 0
            worst = 0.0
            for rnd in range(6):
                for c in held:
                    try:
                        c.sendall(b"X-a: b\r\n")    # keeps each connection busy
                    except OSError:
                        pass
                t0 = time.monotonic()
                data = self.get_from("127.0.0.2")
                dt = time.monotonic() - t0
                worst = max(worst, dt)
                self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:200])
                self.assertIn(b"monitor_ticks_total", data)
                slow_ok += 1
                time.sleep(0.5)
            self.assertEqual(slow_ok, 6)
            self.assertLess(worst, 3.0)
            # The slow client itself got at most the per-address cap.
            alive = 0
            for c in held:
                try:
                    c.setblocking(False)
                    if c.recv(1) == b"":
                        continue
                except BlockingIOError:
                    alive += 1
                except OSError:
                    continue
            self.assertLessEqual(alive, 32)
            self.assertGreater(alive, 0)
        finally:
            for c in held:
                c.close()
        # After the flood: served as before from the flooding address too.
        h.wait_for("127.0.0.1 served again",
                   lambda: self.get_from("127.0.0.1").startswith(b"HTTP/1.1 200"), 10)

    def test_2_header_too_large(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        try:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-big: " + b"a" * 200000
                      + b"\r\n\r\n")
        except OSError:
            pass    # the agent may close before reading it all
        try:
            head = s.recv(200)
        except OSError:
            head = b""
        s.close()
        self.assertTrue(head.startswith(b"HTTP/1.1 431"), head)
        self.assertEqual(self.agent.get("/-/healthy").status, 200)

    def test_4_no_traversal(self):
        for p in ("/web/../../../../etc/passwd", "/web/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                  "/web/..%2f..%2f..%2fetc%2fpasswd", "/web//etc/passwd", "/../../etc/passwd"):
            data = self.get_from("127.0.0.1", p)
            self.assertNotIn(b"root:", data, p)
            self.assertFalse(data.startswith(b"HTTP/1.1 200"), (p, data[:100]))

    def test_5_body_too_large(self):
        body = b"query=" + b"a" * (2 << 20)
        r = h.http_post(self.agent.url + "/api/v1/query",
                        {"Content-Type": "application/x-www-form-urlencoded"}, body, timeout=20)
        self.assertEqual(r.status, 413, r.body[:200])
        self.assertEqual(r.json()["errorType"], "bad_data")
        self.assertEqual(self.agent.get("/-/healthy").status, 200)

    def test_3_no_cors(self):
        r = self.agent.get("/api/v1/query?query=up", {"Origin": "http://evil.example"})
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.headers.get("Access-Control-Allow-Origin"))


def hold(port, src, first=b"GET /metrics HTTP/1.1\r\nHost: x\r\n"):
    """A connection from src that has sent part of a request's headers."""
    c = socket.create_connection(("127.0.0.1", port), timeout=2, source_address=(src, 0))
    c.sendall(first)
    return c


def open_or_closed(c, wait=0.5):
    """True while c is open (nothing to read), False once the agent closed it."""
    c.settimeout(wait)
    try:
        return c.recv(1) != b""
    except socket.timeout:
        return True
    except OSError:
        return False


def raw_get(port, src, path="/metrics", extra=b"", timeout=5):
    """One request with Connection: close from src; the whole answer."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(src, 0))
    try:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n"
                  % (path.encode(), extra))
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk
    except OSError:
        return b""
    finally:
        s.close()


def served_peers(pid, port):
    """The client ports of the TCP connections on port that process pid holds
    accepted (its socket fds; /proc/net/tcp). A connection libmicrohttpd
    refused is gone from here at once; one that ended stays until its
    polling thread reaps it, and counts against the caps until then."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            link = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    peers = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if state != "0A" and inode in inodes and int(local.split(":")[1], 16) == port:
                peers.add(int(remote.split(":")[1], 16))
    return peers


class TestConfiguredLimits(unittest.TestCase):
    """http: in the config sets the limits (agent/http.c, http_guard.c):
    lower connection caps are enforced, headers that trickle in are cut at
    header_timeout with a 408 while /metrics keeps answering, and the
    header and body size limits give 431 and 413 at the configured sizes."""

    CONFIG = ("http:\n  header_timeout: 4s\n  timeout: 6s\n  max_connections: 6\n"
              "  max_connections_per_address: 4\n  max_header_bytes: 16KiB\n"
              "  max_body_bytes: 4KiB\n")

    @classmethod
    def setUpClass(cls):
        # The fixture host root: ticks do not depend on the host's containers.
        root = os.path.join(h.ROOT, "tests", "fixtures", "cgroup", "v2")
        cls.agent = h.Agent(config=cls.CONFIG + "docker:\n  enabled: false\n", host_root=root,
                            args=["--no-ebpf"])
        cls.agent.start()
        cls.agent.wait_tick()
        cls.port = int(cls.agent.listen.rsplit(":", 1)[1])

    @classmethod
    def tearDownClass(cls):
        cls.agent.stop()

    def metrics_from(self, src):
        return raw_get(self.port, src).startswith(b"HTTP/1.1 200")

    def test_1_lower_caps_enforced(self):
        # The holders are cut at header_timeout (4 s after they came), which
        # frees the cap: a 7th answered after that proves nothing, so on a
        # slow (loaded) host the round is tried again, up to three times.
        for attempt in range(3):
            if self.caps_round():
                return
            h.wait_for("served again once the holders left",
                       lambda: self.metrics_from("127.0.0.2") and self.metrics_from("127.0.0.1"), 10)
        self.fail("three rounds ran past header_timeout before the 7th connection was tried")

    def wait_served(self, conns, what):
        """Waits until the agent holds exactly conns accepted: each one
        counted against the caps, and nothing else (a request that has just
        ended still counts until libmicrohttpd reaps it, and a holder that
        came in that moment would be refused, not held: under load that
        made the 7th look answered while 6 were held)."""
        want = {c.getsockname()[1] for c in conns}
        pid = self.agent.proc.pid
        h.wait_for("the agent holds %s" % what, lambda: served_peers(pid, self.port) == want, 10)

    def caps_round(self):
        """One round; False when it ran too long to judge the 7th connection."""
        self.wait_served([], "no connection before the round")
        t0 = time.monotonic()
        held = [hold(self.port, "127.0.0.1") for _ in range(4)]
        try:
            self.wait_served(held, "the 4 holders from 127.0.0.1")
            # a fifth from the same address: closed at once
            fifth = hold(self.port, "127.0.0.1")
            self.assertFalse(open_or_closed(fifth, 2), "the 5th connection of one address")
            fifth.close()
            # another address still gets in, up to the total of 6
            self.assertTrue(self.metrics_from("127.0.0.2"))
            self.wait_served(held, "the 4 holders once the request from 127.0.0.2 is reaped")
            held += [hold(self.port, "127.0.0.3") for _ in range(2)]
            self.wait_served(held, "all 6 holders")
            # a 7th in all is not served (libmicrohttpd accepts no more than
            # 6) until a holder leaves: no answer in 1 s
            seventh = raw_get(self.port, "127.0.0.2", timeout=1)
            if time.monotonic() - t0 > 3.5:
                return False  # the first holders' header_timeout came within reach
            self.assertFalse(seventh.startswith(b"HTTP/1.1 200"), "a 7th connection in all")
        finally:
            for c in held:
                c.close()
        h.wait_for("served again once the holders left",
                   lambda: self.metrics_from("127.0.0.2") and self.metrics_from("127.0.0.1"), 10)
        return True

    def test_2_trickled_headers_cut_at_deadline(self):
        """A client sends a header line every 0.3 s (never idle, so the idle
        timeout never fires): cut with 408 at header_timeout (4 s), while
        /metrics from another address answers throughout."""
        c = hold(self.port, "127.0.0.1")
        t0 = time.monotonic()
        answer, served = b"", 0
        try:
            while time.monotonic() - t0 < 8:
                try:
                    c.sendall(b"X-slow: 1\r\n")
                except OSError:
                    break
                c.settimeout(0.3)
                try:
                    answer = c.recv(200)
                    break
                except socket.timeout:
                    pass
                except OSError:
                    break
                if self.metrics_from("127.0.0.2"):
                    served += 1
            dt = time.monotonic() - t0
        finally:
            c.close()
        self.assertTrue(answer.startswith(b"HTTP/1.1 408"), answer)
        self.assertGreaterEqual(dt, 3.9)
        self.assertLess(dt, 5.5)
        self.assertGreaterEqual(served, 2)
        h.wait_for("the cut counted in monitor_http_header_timeouts_total", lambda: self.agent
                   .metrics().value("monitor_http_header_timeouts_total") >= 1, 5)
        # A request that completes in time is not cut: keep-alive, two requests
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        try:
            for _ in range(2):
                s.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 200"))
                time.sleep(1.2)
        finally:
            s.close()

    def test_3_header_and_body_sizes(self):
        ok = raw_get(self.port, "127.0.0.1", extra=b"X-a: " + b"a" * 2000 + b"\r\n")
        self.assertTrue(ok.startswith(b"HTTP/1.1 200"), ok[:100])
        big = raw_get(self.port, "127.0.0.1", extra=b"X-a: " + b"a" * 20000 + b"\r\n")
        self.assertTrue(big.startswith(b"HTTP/1.1 431"), big[:100])
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        r = h.http_post(self.agent.url + "/api/v1/query", form, b"query=" + b"1" * 3000)
        self.assertNotEqual(r.status, 413, r.body[:200])
        r = h.http_post(self.agent.url + "/api/v1/query", form, b"query=" + b"1" * 5000)
        self.assertEqual(r.status, 413, r.body[:200])

    def test_4_bad_values_refused(self):
        for text, where, msg in (
                ("http:\n  max_connections: 0\n", ":2:20: http.max_connections:", "from 1 to"),
                ("http:\n  timeout: 1500ms\n", ":2:12: http.timeout:", "whole seconds"),
                ("http:\n  header_timeout: soon\n", ":2:19: http.header_timeout:", "duration"),
                ("http:\n  max_header_bytes: 1KiB\n", ":2:21: http.max_header_bytes:",
                 "from 4096"),
                ("http:\n  max_body_bytes: lots\n", ":2:19: http.max_body_bytes:", "size"),
                ("http:\n  max_connections: 10\n  max_connections_per_address: 11\n",
                 ":3:32: http.max_connections_per_address:", "must not exceed"),
                ("http:\n  cors_origins: [\"https://a.example/path\"]\n",
                 ":2:18: http.cors_origins:", "origin"),
                ("http:\n  nope: 1\n", ":2:9: nope:", "unknown key in http")):
            rc, err, cfg = h.run_agent_to_exit(["--listen", "127.0.0.1:%d" % h.free_port()],
                                               config=text)
            self.assertEqual(rc, 2, (text, err))
            self.assertIn(cfg + where, err, text)
            self.assertIn(msg, err, text)


class TestCORS(unittest.TestCase):
    """CORS is off by default; http.cors_origins turns it on for the plain
    reads (GET/HEAD) only: never logs, env, processes, silences or the
    notification log, never actions or admin routes. A named origin gets
    credentials; "*" does not."""

    def cors(self, r):
        return {k: v for k, v in r.headers.items() if k.lower().startswith("access-control-")}

    def preflight(self, agent, path, origin, method="GET"):
        req = urllib.request.Request(agent.url + path, method="OPTIONS", headers={
            "Origin": origin, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization"})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return h.Response(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:
            return h.Response(e.code, e.headers, e.read())

    def test_1_off_by_default(self):
        a = h.Agent(interval=None)
        a.start()
        try:
            for p in READS[:3]:
                self.assertEqual(self.cors(a.get(p, {"Origin": "https://dash.example"})), {}, p)
            r = self.preflight(a, "/api/v1/query", "https://dash.example")
            self.assertEqual(r.status, 405)
            self.assertEqual(self.cors(r), {})
        finally:
            a.stop()

    def test_2_named_origin(self):
        a = h.Agent(config="http:\n  cors_origins:\n    - https://dash.example\n")
        a.start()
        try:
            o = {"Origin": "https://dash.example"}
            for p in READS:
                r = a.get(p, o)
                self.assertEqual(r.headers.get("Access-Control-Allow-Origin"),
                                 "https://dash.example", p)
                self.assertEqual(r.headers.get("Access-Control-Allow-Credentials"), "true", p)
                self.assertIn("Origin", r.headers.get("Vary", ""), p)
            self.assertEqual(self.cors(a.get("/api/v1/query?query=up",
                                             {"Origin": "https://evil.example"})), {})
            for p in SENSITIVE:
                self.assertEqual(self.cors(a.get(p, o)), {}, p)
            r = self.preflight(a, "/api/v1/query_range", "https://dash.example")
            self.assertEqual(r.status, 204)
            self.assertEqual(r.headers.get("Access-Control-Allow-Methods"), "GET, HEAD")
            self.assertEqual(r.headers.get("Access-Control-Allow-Headers"), "Authorization")
            # never an action, a silence or reload, preflight or not
            for path, method in (("/api/v1/containers/x/restart", "POST"),
                                 ("/api/v2/silences", "POST"), ("/-/reload", "POST"),
                                 ("/api/v2/silence/x", "DELETE"), ("/api/v1/logs", "GET")):
                r = self.preflight(a, path, "https://dash.example", method)
                self.assertEqual(self.cors(r), {}, (path, method))
                self.assertNotEqual(r.status, 204, (path, method))
                r = h.http_post(a.url + path, o)
                self.assertEqual(self.cors(r), {}, path)
        finally:
            a.stop()

    def test_3_any_origin_without_credentials(self):
        a = h.Agent(config="http:\n  cors_origins: [\"*\"]\n", interval=None)
        a.start()
        try:
            r = a.get("/api/v1/labels", {"Origin": "https://any.example"})
            self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), "*")
            self.assertIsNone(r.headers.get("Access-Control-Allow-Credentials"))
            r = self.preflight(a, "/api/v1/labels", "https://any.example")
            self.assertEqual(r.status, 204)
            self.assertIsNone(r.headers.get("Access-Control-Allow-Credentials"))
            self.assertIsNone(r.headers.get("Access-Control-Allow-Headers"))
            self.assertEqual(self.cors(a.get("/api/v1/logs/containers",
                                             {"Origin": "https://any.example"})), {})
        finally:
            a.stop()


def make_cert(d, name):
    """A self-signed certificate for 127.0.0.1 and localhost by openssl req."""
    cert, key = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-keyout", key, "-out", cert,
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise unittest.SkipTest("openssl req failed: %s" % r.stderr[-500:])
    os.chmod(key, 0o600)
    return cert, key


class TestTLS(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("openssl"):
            raise unittest.SkipTest("no openssl binary (apt-get install openssl)")
        cls.dir = tempfile.mkdtemp(prefix="tls-", dir=h.WORK)
        cls.cert, cls.key = make_cert(cls.dir, "a")
        cls.agent = h.Agent(config="tls:\n  cert_file: %s\n  key_file: %s\n"
                            % (cls.cert, cls.key))
        cls.port = int(cls.agent.listen.rsplit(":", 1)[1])
        cls.agent.url = "https://127.0.0.1:%d" % cls.port
        cls.ctx = ssl.create_default_context(cafile=cls.cert)
        cls.agent.start(wait_ready=False)
        h.wait_for("https ready", lambda: cls.get("/-/ready")[0] == 200, 15)

    @classmethod
    def tearDownClass(cls):
        cls.agent.stop()
        shutil.rmtree(cls.dir, True)

    @classmethod
    def get(cls, path):
        try:
            with urllib.request.urlopen(cls.agent.url + path, timeout=5, context=cls.ctx) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError:
            return None, b""

    def test_1_python_ssl_verifies(self):
        st, body = self.get("/metrics")
        self.assertEqual(st, 200)
        self.assertIn(b"monitor_ticks_total", body)
        st, body = self.get("/api/v1/query?query=monitor_ticks_total")
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body)["status"], "success")

    def test_2_curl(self):
        if not shutil.which("curl"):
            self.skipTest("no curl")
        r = subprocess.run(["curl", "-sS", "--cacert", self.cert, "-o", "/dev/null", "-w",
                            "%{http_code} %{ssl_verify_result}",
                            "https://localhost:%d/-/healthy" % self.port],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.stdout, "200 0", r.stderr)
        r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "https://localhost:%d/-/healthy"
                            % self.port], capture_output=True, text=True, timeout=20)
        self.assertNotEqual(r.returncode, 0)   # unknown CA: refused by default

    def test_5_cli_over_https(self):
        env = dict(os.environ, MONITOR_URL="https://localhost:%d" % self.port)
        env.pop("MONITOR_CACERT", None)
        r = subprocess.run([h.MONITOR, "ps"], env=env, capture_output=True, text=True,
                           timeout=20)
        self.assertNotEqual(r.returncode, 0)      # unknown CA
        env["MONITOR_CACERT"] = self.cert
        r = subprocess.run([h.MONITOR, "ps"], env=env, capture_output=True, text=True,
                           timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        # monitor top runs the libcurl client for https:// URLs
        env["MONITOR_TOP_CONFIG"] = os.path.join(self.dir, "top.conf")
        r = subprocess.run([h.MONITOR, "top", "--url", "https://localhost:%d" % self.port,
                            "--once", "--width", "160"], env=env, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("monitor top - "), r.stdout[:200])

    def test_3_plain_http_gets_nothing(self):
        try:
            r = h.http_get("http://127.0.0.1:%d/metrics" % self.port, timeout=3)
            self.assertNotEqual(r.status, 200)
        except OSError:
            pass

    def test_4_bad_tls_config(self):
        _, other_key = make_cert(self.dir, "b")
        rc, err, _ = h.run_agent_to_exit(
            ["--listen", "127.0.0.1:%d" % h.free_port()],
            config="tls:\n  cert_file: %s\n  key_file: %s\n" % (self.cert, other_key))
        self.assertEqual(rc, 1, err)
        self.assertIn("does the key match", err)
        rc, err, _ = h.run_agent_to_exit(
            ["--listen", "127.0.0.1:%d" % h.free_port()],
            config="tls:\n  cert_file: %s\n" % self.cert)
        self.assertEqual(rc, 2, err)
        self.assertIn("cert_file and key_file go together", err)
        rc, err, _ = h.run_agent_to_exit(
            ["--listen", "127.0.0.1:%d" % h.free_port()],
            config="tls:\n  cert_file: /nonexistent.crt\n  key_file: %s\n" % self.key)
        self.assertEqual(rc, 1, err)
        self.assertIn("tls.cert_file /nonexistent.crt", err)


class TestNoCoreDump(unittest.TestCase):
    """The agent is not dumpable: SIGSEGV with an unlimited core size leaves
    no core file (core_pattern "core", relative to the cwd), where a plain
    process in the same setup leaves one."""

    def crash(self, cmd, d):
        def pre():
            h.die_with_parent()
            resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,
                                                      resource.RLIM_INFINITY))
        env = dict(os.environ)
        if h.SANITIZED:
            # make check: leave SIGSEGV to the kernel (ASan would catch it
            # and report) and let it dump as it would without ASan.
            env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":handle_segv=0:disable_coredump=0"
        p = subprocess.Popen(cmd, cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, preexec_fn=pre, env=env)
        time.sleep(1.5 * h.TIME_SCALE)
        p.send_signal(signal.SIGSEGV)
        p.wait(10)
        return [f for f in os.listdir(d) if f.startswith("core")]

    def test_no_core(self):
        with open("/proc/sys/kernel/core_pattern") as f:
            pattern = f.read().strip()
        if pattern.startswith("|") or "/" in pattern:
            self.skipTest("core_pattern %r: cores do not land in the cwd" % pattern)
        d = tempfile.mkdtemp(prefix="core-", dir=h.WORK)
        self.addCleanup(shutil.rmtree, d, True)
        if not self.crash(["sleep", "30"], d):
            self.skipTest("no core dump even from sleep here")
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))
        os.makedirs(os.path.join(d, "data"))
        cores = self.crash([h.MONITOR, "agent", "--listen", "127.0.0.1:%d" % h.free_port(),
                            "--data-dir", os.path.join(d, "data"), "--no-ebpf"], d)
        self.assertEqual(cores, [])


class TestSecrets(unittest.TestCase):
    def test_no_secret_anywhere(self):
        d = tempfile.mkdtemp(prefix="secrets-", dir=h.WORK)
        self.addCleanup(shutil.rmtree, d, True)
        rd = write_secret(d, "read-token", READ)
        ad = write_secret(d, "admin-token", ADMIN, mode=0o644)   # warned about
        url_file = write_secret(d, "slack-url", "http://127.0.0.1:1/%s" % URL_FILE_SECRET)
        dead = h.free_port()   # nothing listens: errors everywhere
        cfg = """auth:
  read_token_file: %s
  admin_token_file: %s
route:
  receiver: hooks
receivers:
- name: hooks
  webhook_configs:
  - url: http://127.0.0.1:%d/%s
    secret: %s
  slack_configs:
  - url: http://127.0.0.1:%d/%s
    channel: '#ops'
  - url_file: %s
""" % (rd, ad, dead, HOOK_PATH, HOOK_SECRET, dead, SLACK_PATH, url_file)
        a = h.Agent(config=cfg)
        os.chmod(a.config_path, 0o644)
        a.start(wait_ready=False)
        self.addCleanup(a.stop)
        h.wait_for("ready", lambda: a.get("/-/ready").status == 200, 10)
        auth = {"Authorization": "Bearer " + ADMIN}
        answers = []
        r = a.post("/api/v1/notifications/test?receiver=hooks", auth, timeout=30)
        answers.append(r.body)
        self.assertEqual(r.status, 200, r.body[:300])
        # Wrong tokens: the error must not echo what was configured.
        for tok in ("x", READ[:-1], ADMIN + "x"):
            answers.append(a.post("/-/reload", {"Authorization": "Bearer " + tok}).body)
            answers.append(a.get("/metrics", {"Authorization": "Bearer " + tok}).body)
        for p in READS + SENSITIVE + ["/api/v1/notifications?limit=200",
                                      "/api/v1/series?match[]=%7B__name__%3D~%22.%2B%22%7D",
                                      "/api/v1/label/__name__/values", "/api/v1/metadata"]:
            answers.append(a.get(p, auth).body)
        answers.append(a.post("/-/reload", auth).body)
        time.sleep(2.2)   # ticks that count the failed sends
        answers.append(a.get("/metrics", auth).body)
        log = a.stderr()
        everything = b"\n".join(answers).decode("utf-8", "replace") + log
        for s in (READ, ADMIN, HOOK_PATH, HOOK_SECRET, SLACK_PATH, URL_FILE_SECRET):
            self.assertNotIn(s, everything)
        # The warnings about files others can read.
        self.assertIn("the config file %s is readable by every user" % a.config_path, log)
        self.assertIn("token file %s is readable by other users" % ad, log)
        self.assertNotIn("token file %s is readable" % rd, log)


if __name__ == "__main__":
    unittest.main()
