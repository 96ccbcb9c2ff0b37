"""The real Prometheus tools against the agent: promtool's linter on the
/metrics page, and a Prometheus server that scrapes the agent every second
and answers a query for a container's memory."""

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


class PrometheusTest(unittest.TestCase):
    agent = None
    containers = []

    @classmethod
    def setUpClass(cls):
        cls.containers = []
        cls.agent = h.Agent().start()
        try:
            h.require_docker()
            cls.box = h.docker_run(cls.containers, "prom", ["sleep", "600"], ["--memory", "64m"])
            h.wait_for("%s in /metrics" % cls.box.name,
                       lambda: cls.agent.metrics().get("container_memory_usage_bytes", name=cls.box.name), 10)
        except unittest.SkipTest:
            cls.box = None
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for c in cls.containers:
            h.docker_rm(c)
        cls.containers = []
        if cls.agent:
            agent, cls.agent = cls.agent, None
            agent.stop()

    def test_promtool_check_metrics(self):
        promtool = h.require_binary("promtool")
        body = self.agent.get("/metrics").body
        if self.box:
            self.assertIn(self.box.name.encode(), body)
        r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
        out = (r.stdout + r.stderr).decode(errors="replace")
        self.assertEqual((r.returncode, out), (0, ""), "promtool check metrics:\n" + out)

    def test_prometheus_scrapes_agent(self):
        prometheus = h.require_binary("prometheus")
        if self.box is None:
            h.require_docker()
        d = tempfile.mkdtemp(prefix="prometheus-", dir=h.WORK)
        self.addCleanup(shutil.rmtree, d, True)
        port = h.free_port()
        cfg = os.path.join(d, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: monitor\n    static_configs:\n"
                    "      - targets: ['%s']\n" % self.agent.listen)
        log = open(os.path.join(d, "prometheus.log"), "wb")
        self.addCleanup(log.close)
        proc = subprocess.Popen([prometheus, "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(d, "data"),
                                 "--web.listen-address=127.0.0.1:%d" % port],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=d,
                                preexec_fn=h.die_with_parent)

        def stop():
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.addCleanup(stop)
        base = "http://127.0.0.1:%d" % port

        def api(path):
            r = h.http_get(base + path)
            return json.loads(r.body) if r.status == 200 else None

        def target_up():
            if proc.poll() is not None:
                with open(os.path.join(d, "prometheus.log"), errors="replace") as f:
                    raise AssertionError("prometheus exited:\n" + f.read()[-2000:])
            doc = api("/api/v1/targets")
            if not doc:
                return None
            targets = doc["data"]["activeTargets"]
            return targets and targets[0]["health"] == "up" and targets[0]
        try:
            target = h.wait_for("the agent's target to be up in Prometheus", target_up, 20, 0.5)
        except AssertionError:
            doc = api("/api/v1/targets")
            raise AssertionError("target not up within 20 s: %s" % (doc and doc["data"]["activeTargets"]))
        self.assertEqual(target["lastError"], "")

        q = 'container_memory_usage_bytes{name="%s"}' % self.box.name

        def result():
            doc = api("/api/v1/query?query=" + urllib.parse.quote(q))
            return doc and doc["data"]["result"]
        res = h.wait_for("Prometheus to answer %s" % q, result, 10, 0.5)
        self.assertEqual(len(res), 1, res)
        self.assertEqual(res[0]["metric"]["name"], self.box.name)
        self.assertEqual(res[0]["metric"]["image"], h.IMAGE)
        self.assertTrue(res[0]["metric"]["id"].endswith(self.box.id), res[0]["metric"])
        self.assertGreater(float(res[0]["value"][1]), 0)

        doc = api("/api/v1/query?query=" + urllib.parse.quote('up{job="monitor"}'))
        self.assertEqual(doc["data"]["result"][0]["value"][1], "1")


if __name__ == "__main__":
    unittest.main()
