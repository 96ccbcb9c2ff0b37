"""remote_write with basic auth against a real Prometheus that demands it
(--web.config.file with a bcrypt password, --web.enable-remote-write-receiver):
the right password (from a password_file) gets the samples in; a wrong one
gets 401, which the spec says never to retry, so those samples are counted
as failed and the endpoint moves on; no password appears in the agent's log.

Needs Debian's prometheus and Python's crypt module (bcrypt); skips without."""

import base64
import json
import os
import subprocess
import unittest
import warnings

import harness as h
from test_fleet import Prometheus

PASSWORD = "s3cret-Pa55word"


class FleetAuthTest(unittest.TestCase):
    def test_basic_auth(self):
        prometheus = h.require_binary("prometheus")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import crypt
            hashed = crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH))
        except (ImportError, AttributeError, OSError):
            h.skip("no bcrypt in Python's crypt module")
        if not hashed or not hashed.startswith("$2"):
            h.skip("libcrypt made no bcrypt hash")
        rx = Prometheus(prometheus, "global:\n  scrape_interval: 1h\n", ["--web.enable-remote-write-receiver"])
        self.addCleanup(rx.cleanup)
        web = os.path.join(rx.dir, "web.yml")
        with open(web, "w") as f:
            f.write("basic_auth_users:\n  monitor: '%s'\n" % hashed)
        rx.args.append("--web.config.file=" + web)
        # /-/ready needs the password too: wait for the port instead.
        rx.log = open(os.path.join(rx.dir, "prometheus.log"), "ab")
        rx.proc = subprocess.Popen(
            [prometheus, "--config.file=" + rx.cfg, "--storage.tsdb.path=" + os.path.join(rx.dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % rx.port] + rx.args,
            stdin=subprocess.DEVNULL, stdout=rx.log, stderr=rx.log, cwd=rx.dir, preexec_fn=h.die_with_parent)
        h.wait_for("the receiver to refuse without a password",
                   lambda: h.http_get(rx.url + "/-/ready", timeout=2).status == 401, 30, 0.2)
        auth = {"Authorization": "Basic " + base64.b64encode(("monitor:" + PASSWORD).encode()).decode()}

        pw = os.path.join(rx.dir, "pw")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        os.chmod(pw, 0o600)
        cfg = ("external_labels:\n  host: it-auth\n"
               "remote_write:\n"
               "  - url: %s/api/v1/write\n    name: good\n"
               "    basic_auth:\n      username: monitor\n      password_file: %s\n"
               "    queue_config:\n      batch_send_deadline: 1s\n"
               "  - url: %s/api/v1/write\n    name: bad\n"
               "    basic_auth:\n      username: monitor\n      password: wrong-Pa55word\n"
               "    queue_config:\n      batch_send_deadline: 1s\n" % (rx.url, pw, rx.url))
        a = h.Agent(config=cfg, args=["--no-ebpf"]).start(wait_ready=False)
        self.addCleanup(a.stop, 20)
        a.wait_ready(timeout=40)

        def arrived():
            r = h.http_get(rx.url + "/api/v1/query?query=monitor_ticks_total", headers=auth)
            res = json.loads(r.body)["data"]["result"] if r.status == 200 else []
            return len(res) == 1 and res
        res = h.wait_for("samples through basic auth", arrived, 20, 0.5)
        self.assertEqual(res[0]["metric"]["host"], "it-auth")

        def refused():
            # sent_total counts a request once its 2xx is read: the receiver
            # can answer queries on the samples a moment before that.
            m = a.metrics()
            return (m.value("monitor_remote_write_samples_failed_total", remote_name="bad") > 0 and
                    m.value("monitor_remote_write_samples_sent_total", remote_name="good") > 0 and m)
        m = h.wait_for("the wrong password to be refused and the good requests counted", refused, 20, 0.5)
        # The good endpoint never failed; the bad one delivered nothing.
        self.assertEqual(m.value("monitor_remote_write_samples_failed_total", remote_name="good"), 0)
        self.assertGreater(m.value("monitor_remote_write_samples_sent_total", remote_name="good"), 0)
        self.assertEqual(m.value("monitor_remote_write_samples_sent_total", remote_name="bad"), 0)
        # 401 is never retried: the bad endpoint moves on, its cursor
        # follows the ticks (a retried request would hold it back).
        failed0 = m.value("monitor_remote_write_samples_failed_total", remote_name="bad")

        def moving_on():
            m = a.metrics()
            return (m.value("monitor_remote_write_samples_failed_total", remote_name="bad") > failed0 and
                    m.value("monitor_remote_write_lag_seconds", remote_name="bad") < 10)
        h.wait_for("the bad endpoint to drop and move on", moving_on, 20, 0.5)
        log = a.stderr()
        self.assertIn("HTTP 401 (not retried)", log)
        self.assertNotIn("answered HTTP 401; retrying", log)
        self.assertNotIn(PASSWORD, log)
        self.assertNotIn("wrong-Pa55word", log)


if __name__ == "__main__":
    unittest.main()
