"""The agent's HTTP server over a real socket: health endpoints, the /metrics
page (format, HELP/TYPE, no timestamps, gzip), 404s, and the containers API
by name, by id and for an unknown container."""

import gzip
import time
import unittest

import harness as h


class HttpTest(unittest.TestCase):
    agent = None
    containers = []

    @classmethod
    def setUpClass(cls):
        cls.containers = []
        cls.agent = h.Agent().start()

    @classmethod
    def tearDownClass(cls):
        for c in cls.containers:
            h.docker_rm(c)
        cls.containers = []
        if cls.agent:
            agent, cls.agent = cls.agent, None
            agent.stop()

    def test_health_and_ready(self):
        for path in ("/-/healthy", "/-/ready"):
            r = self.agent.get(path)
            self.assertEqual(r.status, 200, path)
            self.assertTrue(r.headers.get("Content-Type", "").startswith("text/plain"), r.headers.get("Content-Type"))

    def test_metrics_format(self):
        r = self.agent.get("/metrics")
        self.assertEqual(r.status, 200)
        ctype = r.headers.get("Content-Type", "")
        self.assertTrue(ctype.startswith("text/plain") and "version=0.0.4" in ctype, ctype)
        e = h.Exposition(r.text)
        self.assertEqual(e.timestamps, 0, "samples must carry no timestamps")
        self.assertTrue(r.text.endswith("\n"))
        for name in e.samples:
            fam = e.family_of(name)
            self.assertIsNotNone(fam, "no TYPE for %s" % name)
            self.assertIn(fam, e.help, "no HELP for %s" % fam)
        for fam in e.type:
            self.assertIn(fam, e.help, "TYPE without HELP: %s" % fam)
        # Each family's samples come together, right after its TYPE line.
        seen, current = set(), None
        for line in r.text.splitlines():
            if line.startswith("# TYPE "):
                current = line.split()[2]
                self.assertNotIn(current, seen, "family %s split in two" % current)
                seen.add(current)
            elif line and not line.startswith("#"):
                name = line.split("{")[0].split(" ")[0]
                self.assertEqual(e.family_of(name), current, "%s outside its family block" % name)
        for name in ("monitor_ticks_total", "monitor_build_info", "monitor_docker_up"):
            self.assertIn(name, e.samples)
        self.assertEqual(e.type["monitor_ticks_total"], "counter")
        self.assertEqual(e.value("monitor_build_info"), 1)

    def test_ticks_advance(self):
        t0 = self.agent.ticks()
        time.sleep(2.5)
        t1 = self.agent.ticks()
        self.assertGreaterEqual(t1 - t0, 2, "interval 1s: ticks %d -> %d in 2.5 s" % (t0, t1))

    def test_gzip(self):
        plain = self.agent.get("/metrics")
        r = self.agent.get("/metrics", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers.get("Content-Encoding"), "gzip")
        body = gzip.decompress(r.body).decode()
        self.assertLess(len(r.body), len(body))
        a, b = h.Exposition(plain.text), h.Exposition(body)
        self.assertEqual(set(a.type), set(b.type))
        self.assertEqual(a.help, b.help)
        # Without the header: not compressed.
        self.assertIsNone(plain.headers.get("Content-Encoding"))

    def test_unknown_path_404(self):
        for path in ("/nope", "/metrics/extra", "/api/v1/nothing-here"):
            r = self.agent.get(path)
            self.assertEqual(r.status, 404, path)

    def test_unknown_container_404_json(self):
        for key in ("no-such-container", "0" * 64):
            r = self.agent.get("/api/v1/containers/" + key)
            self.assertEqual(r.status, 404, key)
            self.assertIn("json", r.headers.get("Content-Type", ""))
            doc = r.json()
            self.assertEqual(doc.get("status"), "error")
            self.assertIsInstance(doc.get("error"), str)
            self.assertTrue(doc["error"])

    def test_container_by_name_and_id(self):
        h.require_docker()
        c = h.docker_run(self.containers, "http", ["sleep", "600"], ["--memory", "48m"])
        h.wait_for("%s in the API" % c.name, lambda: self.agent.container(c.name), 5)
        # Its limits are withheld while runc is still setting them up (the
        # cgroup holds only runc's processes): wait for the one asked for.
        h.wait_for("%s's memory limit in the API" % c.name,
                   lambda: self.agent.get("/api/v1/containers/" + c.id).json()["data"]
                   ["values"].get("container_spec_memory_limit_bytes"), 5)
        docs = {}
        for key in (c.name, c.id, c.id[:12]):
            r = self.agent.get("/api/v1/containers/" + key)
            self.assertEqual(r.status, 200, key)
            self.assertIn("json", r.headers.get("Content-Type", ""))
            doc = r.json()
            self.assertEqual(doc.get("status"), "success")
            docs[key] = d = doc["data"]
            self.assertEqual(d["id"], c.id)
            self.assertEqual(d["name"], c.name)
            self.assertEqual(d["runtime"], "docker")
            self.assertIsInstance(d["series"], list)
        d = docs[c.name]
        limits = [s for s in d["series"] if s["metric"] == "container_spec_memory_limit_bytes"]
        self.assertEqual(len(limits), 1, limits)
        self.assertEqual(limits[0]["value"], 48 * 1024 * 1024)
        self.assertEqual(d["values"]["container_spec_memory_limit_bytes"], 48 * 1024 * 1024)
        # Every series of the container, with its labels as a JSON object
        # (a client should not have to parse Prometheus label syntax).
        for s in d["series"]:
            self.assertIsInstance(s["labels"], dict, "series labels must be a JSON object: %r" % (s,))
        cpu = [s for s in d["series"] if s["metric"] == "container_cpu_usage_seconds_total"]
        self.assertEqual([s["labels"].get("cpu") for s in cpu], ["total"])
        self.assertEqual(d["values"]["container_cpu_usage_seconds_total"], cpu[0]["value"])


if __name__ == "__main__":
    unittest.main()
