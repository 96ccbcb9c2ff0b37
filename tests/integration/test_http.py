"""The agent's HTTP server over a real socket: health endpoints, the /metrics
page (format, HELP/TYPE, no timestamps, gzip, streamed in parts), 404s, and
the containers API by name, by id and for an unknown container."""

import gzip
import http.client
import re
import socket
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


def read_all(port, request):
    """Sends request on a raw socket; every byte answered, up to the close."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(request)
        parts = []
        while True:
            b = s.recv(1 << 20)
            if not b:
                return b"".join(parts)
            parts.append(b)
    finally:
        s.close()


def read_chunked(port, headers=b"", path="/metrics"):
    """One HTTP/1.1 GET on a raw socket: (head, [chunk bytes]) with the chunk
    framing kept apart, so that chunk sizes can be checked."""
    data = read_all(port, b"GET %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n"
                    % (path.encode(), headers))
    end = data.index(b"\r\n\r\n")
    i, chunks = end + 4, []
    while True:
        eol = data.index(b"\r\n", i)
        n = int(data[i:eol], 16)
        if n == 0:
            return data[:end].decode(), chunks
        chunks.append(data[eol + 2:eol + 2 + n])
        if data[eol + 2 + n:eol + 4 + n] != b"\r\n":
            raise AssertionError("chunk of %d bytes not followed by CRLF" % n)
        i = eol + 4 + n


def get_http10(port, path="/metrics"):
    """GET as HTTP/1.0: (head, body) read up to the close."""
    head, _, body = read_all(port, b"GET %s HTTP/1.0\r\n\r\n"
                             % path.encode()).partition(b"\r\n\r\n")
    return head.decode(), body


def ticks_of(text):
    """monitor_ticks_total of a page, text or OpenMetrics."""
    return float(re.search(r"^monitor_ticks_total (\S+)$", text, re.M).group(1))


# The text and the OpenMetrics page (what Prometheus asks for first).
PAGES = (("/metrics", "text/plain; version=0.0.4"),
         ("/metrics?format=openmetrics", "application/openmetrics-text; version=1.0.0"))


class MetricsStreamTest(unittest.TestCase):
    """/metrics is rendered a part at a time into the connection's send
    buffer (agent/http_metrics.c) and sent chunked. With max_header_bytes at
    its floor (4 KiB, the buffer's size) even a small page takes several
    parts, and some header-and-line groups do not fit one buffer whole."""

    agent = None

    @classmethod
    def setUpClass(cls):
        cls.agent = h.Agent(config="http:\n  max_header_bytes: 4KiB\n").start()
        # The first tick's page is short (3.9 KB once): a page of a later one.
        h.wait_for("two ticks", lambda: cls.agent.ticks() >= 2, 10)

    @classmethod
    def tearDownClass(cls):
        if cls.agent:
            agent, cls.agent = cls.agent, None
            agent.stop()

    def same_tick(self, fetch, tries=10):
        """Runs fetch() (a list of texts) until every text is of one tick."""
        for _ in range(tries):
            texts = fetch()
            if len({ticks_of(t) for t in texts}) == 1:
                return texts
        self.fail("no %d fetches within one tick in %d tries" % (len(texts), tries))

    def test_parts_make_the_whole_page(self):
        for path, ctype in PAGES:
            with self.subTest(path=path):
                self.parts_make_the_whole_page(path, ctype)

    def parts_make_the_whole_page(self, path, ctype):
        port = self.agent.port

        def fetch():
            head, chunks = read_chunked(port, path=path)
            self.assertTrue(head.startswith("HTTP/1.1 200"), head)
            self.assertIn("transfer-encoding: chunked", head.lower())
            self.assertIn("content-type: " + ctype, head.lower())
            self.assertGreater(len(chunks), 2)
            self.assertTrue(all(len(c) <= 4096 for c in chunks), [len(c) for c in chunks])
            head10, body10 = get_http10(port, path)
            self.assertTrue(head10.startswith("HTTP/1."), head10)
            self.assertNotIn("chunked", head10.lower())
            return [b"".join(chunks).decode(), body10.decode(), self.agent.get(path).text]
        for _ in range(10):
            chunked, plain10, plain = self.same_tick(fetch)
            if chunked == plain10 == plain:
                break
        self.assertEqual(chunked, plain, "the parts joined differ from one page of the same tick")
        self.assertEqual(plain10, plain)
        self.assertTrue(plain.endswith("# EOF\n" if "openmetrics" in path else "\n"))
        self.assertEqual(plain.count("# EOF"), 1 if "openmetrics" in path else 0)
        self.assertIn("\nmonitor_build_info", plain)
        self.assertGreater(len(plain), 2 * 4096)
        if "openmetrics" not in path:
            h.Exposition(plain)

    def test_gzip_streamed_then_kept(self):
        for path, ctype in PAGES:
            with self.subTest(path=path):
                self.gzip_streamed_then_kept(path, ctype)

    def gzip_streamed_then_kept(self, path, ctype):
        port = self.agent.port

        def fetch():
            g1 = self.agent.get(path, headers={"Accept-Encoding": "gzip"})
            p = self.agent.get(path)
            g2 = self.agent.get(path, headers={"Accept-Encoding": "gzip"})
            self.fetched = (g1, g2)
            return [gzip.decompress(g1.body).decode(), p.text, gzip.decompress(g2.body).decode()]
        for _ in range(10):
            a, p, b = self.same_tick(fetch)
            if a == p == b:
                break
        self.assertEqual(a, p)
        self.assertEqual(b, p)
        g1, g2 = self.fetched
        for g in (g1, g2):
            self.assertEqual(g.headers.get("Content-Encoding"), "gzip")
            self.assertTrue(g.headers.get("Content-Type").startswith(ctype))
            self.assertIn("Accept-Encoding", g.headers.get("Vary", ""))
        # The second of one snapshot is the kept body: its length is known.
        self.assertEqual(int(g2.headers.get("Content-Length")), len(g2.body))
        # A fresh snapshot's first gzip answer is compressed as it is sent.
        t0 = ticks_of(p)
        h.wait_for("a new tick", lambda: self.agent.ticks() > t0, 5)
        head, chunks = read_chunked(port, b"Accept-Encoding: gzip\r\n", path)
        self.assertIn("transfer-encoding: chunked", head.lower())
        self.assertIn("content-encoding: gzip", head.lower())
        self.assertIn("\nmonitor_build_info", gzip.decompress(b"".join(chunks)).decode())

    def test_head(self):
        # libmicrohttpd sometimes sent a chunked answer's last chunk after a
        # HEAD's head (read as the next status line: "BadStatusLine: 0" in 1
        # of 3 runs): a HEAD has the length a GET would send, and no chunks.
        c = http.client.HTTPConnection("127.0.0.1", self.agent.port, timeout=5)
        same = 0
        try:
            for path, _ in PAGES:
                for headers in ({}, {"Accept-Encoding": "gzip"}) * 10:
                    c.request("HEAD", path, headers=headers)
                    r = c.getresponse()
                    self.assertEqual(r.status, 200)
                    self.assertEqual(r.read(), b"")
                    self.assertIsNotNone(r.getheader("Content-Type"))
                    length = int(r.getheader("Content-Length"))
                    # A gzip HEAD is the kept body's, else the plain page's.
                    gz = r.getheader("Content-Encoding") == "gzip"
                    c.request("GET", path, headers=headers if gz else {})
                    body = c.getresponse().read()
                    same += length == len(body)  # unless a tick came between
        finally:
            c.close()
        self.assertGreater(same, 20)

if __name__ == "__main__":
    unittest.main()
