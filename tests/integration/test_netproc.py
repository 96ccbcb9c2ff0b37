"""Network, processes and ports of real Docker containers, checked against
what the test itself did and what the kernel and `docker top` say.

One agent (interval 1s, collect.process_interval 1s) watches containers the
class starts on a user-defined bridge network (Docker here runs with
--bridge=none, so the default bridge does not exist; a user-defined one
works without iptables for traffic between its containers and the host):
  srv    a TCP sink: `nc -l -p 7000 -e dd of=/dev/null` in a loop (busybox nc
         closes a connection at once when its own stdin is at EOF)
  cli    sends to srv over eth0 (docker exec)
  side   --network container:cli: shares cli's namespace and sends too
  hostc  --network host: sends to srv from the host's namespace
  procs  `sleep` as pid 1 with two `nc -l` children (processes, sockets, ports)
"""

import json
import os
import re
import signal
import subprocess
import time
import unittest

import harness as h

MIB = 1024 * 1024

CONFIG = """\
collect:
  process_interval: 1s
"""


def net_value(e, fam, name, iface="eth0"):
    found = e.get(fam, name=name, interface=iface)
    return found[0][1] if len(found) == 1 else None


class NetProcTest(unittest.TestCase):
    agent = None
    containers = []
    network = None

    @classmethod
    def setUpClass(cls):
        h.require_docker()
        cls.containers = []
        cls.network = h.docker_network("net", "a bridge network is needed for traffic between containers")
        try:
            cls.agent = h.Agent(config=CONFIG).start()
            run = lambda name, cmd, opts=(): h.docker_run(cls.containers, name, cmd, opts)
            net = ["--network", cls.network]
            cls.srv = run("srv", ["sh", "-c", "while :; do nc -l -p 7000 -e dd of=/dev/null; done"], net)
            cls.cli = run("cli", ["sleep", "600"], net)
            cls.side = run("side", ["sleep", "600"], ["--network", "container:" + cls.cli.id])
            cls.hostc = run("hostc", ["sleep", "600"], ["--network", "host"])
            cls.procs = run("procs", ["sh", "-c", "nc -l -p 7777 & nc -l -p 7778 & exec sleep 600"], net)
            cls.srv_ip = cls.srv.inspect()["NetworkSettings"]["Networks"][cls.network]["IPAddress"]
            names = [c.name for c in (cls.srv, cls.cli, cls.side, cls.hostc, cls.procs)]

            def all_moded():
                e = cls.agent.metrics()
                have = {l.get("name") for l, _ in e.get("container_network_mode")}
                procs = {l.get("name") for l, _ in e.get("container_processes")}
                return e if set(names) <= have and set(names) <= procs else None
            h.wait_for("every test container in container_network_mode and container_processes",
                       all_moded, 30)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for c in cls.containers:
            h.docker_rm(c)
        cls.containers = []
        try:
            if cls.agent:
                agent, cls.agent = cls.agent, None
                agent.stop()
        finally:
            if cls.network:
                h.docker("network", "rm", cls.network, check=False)
                cls.network = None

    def send(self, c, nbytes, port=7000):
        """Sends nbytes of zeros from inside c to srv:port over TCP."""
        blocks = nbytes // 65536
        self.assertEqual(blocks * 65536, nbytes)
        h.docker("exec", c.id, "sh", "-c",
                 "dd if=/dev/zero bs=65536 count=%d 2>/dev/null | nc %s %d" % (blocks, self.srv_ip, port),
                 timeout=60)

    def api(self, path):
        r = self.agent.get(path)
        self.assertEqual(r.status, 200, "%s: %d %r" % (path, r.status, r.body[:300]))
        self.assertEqual(r.headers.get("Content-Type"), "application/json")
        doc = r.json()
        self.assertEqual(doc["status"], "success")
        return doc["data"]

    # ---- network ----

    def test_network_bytes_on_the_right_interface(self):
        e = self.agent.wait_tick()
        rx0 = net_value(e, "container_network_receive_bytes_total", self.srv.name)
        tx0 = net_value(e, "container_network_transmit_bytes_total", self.cli.name)
        self.assertIsNotNone(rx0, "srv has no eth0 series: %s" % e.get("container_network_mode", name=self.srv.name))
        self.assertIsNotNone(tx0, "cli has no eth0 series")
        n_cli, n_side, n_host = 3 * MIB, 1 * MIB, 2 * MIB
        self.send(self.cli, n_cli)
        self.send(self.side, n_side)     # cli's namespace: counted on cli
        self.send(self.hostc, n_host)    # the host's namespace: counted on nobody's container
        want_rx, want_tx = n_cli + n_side + n_host, n_cli + n_side

        def arrived():
            e = self.agent.metrics()
            rx = net_value(e, "container_network_receive_bytes_total", self.srv.name) - rx0
            tx = net_value(e, "container_network_transmit_bytes_total", self.cli.name) - tx0
            return (e, rx, tx) if rx >= want_rx and tx >= want_tx else None
        e, rx, tx = h.wait_for("srv to receive %d bytes and cli to send %d" % (want_rx, want_tx), arrived, 15)
        # TCP/IP headers and ACKs ride along: at most 10% + 64 KiB more.
        self.assertLessEqual(rx, want_rx * 1.10 + 65536)
        self.assertLessEqual(tx, want_tx * 1.10 + 65536)
        self.assertGreaterEqual(net_value(e, "container_network_receive_packets_total", self.srv.name),
                                want_rx / 65536)
        self.assertGreaterEqual(net_value(e, "container_network_transmit_packets_total", self.cli.name),
                                want_tx / 65536)
        # lo is never counted; the shared and host containers have no traffic series.
        for fam in ("container_network_receive_bytes_total", "container_network_transmit_bytes_total"):
            self.assertEqual(e.get(fam, interface="lo"), [])
            self.assertEqual(e.get(fam, name=self.side.name), [])
            self.assertEqual(e.get(fam, name=self.hostc.name), [])
        # The agent's number is the kernel's: srv's own net/dev, read now, is
        # at least what the last tick saw.
        with open("/proc/%d/net/dev" % self.srv.pid()) as f:
            kernel_rx = int([l for l in f if l.strip().startswith("eth0:")][0].split(":", 1)[1].split()[0])
        self.assertGreaterEqual(kernel_rx, net_value(e, "container_network_receive_bytes_total", self.srv.name))

    def test_network_mode(self):
        e = self.agent.metrics()
        mode = lambda c: {(l["mode"], l["owner"]) for l, v in e.get("container_network_mode", name=c.name) if v == 1}
        self.assertEqual(mode(self.srv), {("private", self.srv.name)})
        self.assertEqual(mode(self.cli), {("private", self.cli.name)})
        self.assertEqual(mode(self.side), {("shared", self.cli.name)})
        self.assertEqual(mode(self.hostc), {("host", "")})
        # The kernel agrees on who shares what.
        ns = lambda c: os.stat("/proc/%d/ns/net" % c.pid()).st_ino
        self.assertEqual(ns(self.side), ns(self.cli))
        self.assertNotEqual(ns(self.srv), ns(self.cli))

    # ---- processes ----

    def docker_top(self, c):
        """{pid: command} as `docker top` shows them."""
        out = h.docker("top", c.id, "-o", "pid,args").strip().splitlines()
        return {int(l.split(None, 1)[0]): l.split(None, 1)[1].strip() for l in out[1:]}

    def test_processes_endpoint_matches_docker_top(self):
        top = self.docker_top(self.procs)
        data = self.api("/api/v1/containers/%s/processes" % self.procs.name)
        self.assertEqual(data["id"], self.procs.id)
        self.assertEqual(data["name"], self.procs.name)
        self.assertFalse(data["truncated"])
        self.assertEqual(data["unreadable"], 0)
        got = {p["pid"]: p for p in data["processes"]}
        self.assertEqual(set(got), set(top))
        self.assertEqual(data["count"], 3)
        init = self.procs.pid()
        started = time.time() - (time.monotonic() - self.procs.started)
        for pid, p in got.items():
            self.assertEqual(p["command"], top[pid])
            self.assertEqual((p["user"], p["uid"]), ("root", 0))
            self.assertIn(p["state"], ("S", "R"))
            self.assertEqual(p["threads"], 1)
            self.assertGreater(p["rss_bytes"], 0)
            self.assertGreaterEqual(p["cpu_percent"], 0)
            self.assertAlmostEqual(p["start_time"], started, delta=10)
            if pid != init:
                self.assertEqual(p["ppid"], init)
                self.assertRegex(p["command"], r"^nc -l -p 777[78]$")
        self.assertEqual(got[init]["command"], "sleep 600")

    def test_process_metrics(self):
        top = self.docker_top(self.procs)
        fds = sum(len(os.listdir("/proc/%d/fd" % pid)) for pid in top)
        e = self.agent.wait_tick()
        v = lambda fam: e.value(fam, name=self.procs.name)
        self.assertEqual(v("container_processes"), 3)
        self.assertEqual(v("container_threads"), 3)
        self.assertEqual(v("container_sockets"), 2)       # the two listening nc
        self.assertEqual(v("container_file_descriptors"), fds)
        self.assertEqual(e.value("container_processes", name=self.side.name), 1)

    # ---- ports ----

    def test_ports_listening(self):
        top = self.docker_top(self.procs)
        data = self.api("/api/v1/containers/%s/ports" % self.procs.name)
        self.assertEqual(data["network_mode"], "private")
        tcp = {p["port"]: p for p in data["listening"] if p["protocol"] == "tcp"}
        for port in (7777, 7778):
            self.assertIn(port, tcp, data)
            p = tcp[port]
            self.assertIn(p["address"], ("0.0.0.0", "::"))
            self.assertIn(p["pid"], top)
            self.assertEqual(p["command"], "nc -l -p %d" % port)
            self.assertEqual(top[p["pid"]], "nc -l -p %d" % port)
        self.assertNotIn(7000, tcp)           # srv's port is in another namespace

    def test_ports_udp_and_shared_namespace(self):
        """A UDP socket a process of the container binds shows as listening;
        the container that joined cli's namespace sees cli's listeners."""
        h.require_binary("nsenter")
        cg = self.cli.cgroup()
        script = ("import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                  "s.bind(('0.0.0.0',7779))\nprint('ok',flush=True)\ntime.sleep(120)\n")
        p = subprocess.Popen(["nsenter", "-t", str(self.cli.pid()), "-n", "/usr/bin/python3", "-c", script],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (p.kill(), p.wait()))
        self.assertEqual(p.stdout.readline().strip(), b"ok")
        # Into cli's cgroup (the hierarchy the agent walks), as a container process.
        procs_file = cg.file("memory", "cgroup.procs")
        with open(procs_file, "w") as f:
            f.write(str(p.pid))
        data = self.api("/api/v1/containers/%s/ports" % self.cli.name)
        udp = [x for x in data["listening"] if x["protocol"] == "udp" and x["port"] == 7779]
        self.assertEqual(len(udp), 1, data)
        self.assertEqual((udp[0]["address"], udp[0]["family"], udp[0]["pid"]), ("0.0.0.0", "ipv4", p.pid))
        self.assertIn("python3", udp[0]["command"])
        side = self.api("/api/v1/containers/%s/ports" % self.side.name)
        self.assertEqual((side["network_mode"], side["network_owner"]), ("shared", self.cli.name))
        s = [x for x in side["listening"] if x["protocol"] == "udp" and x["port"] == 7779]
        self.assertEqual(len(s), 1)
        self.assertIsNone(s[0]["pid"])        # held by a process of cli, not of side

    def test_ports_host_network_only_its_own(self):
        """In the host's namespace only the container's own listeners are its:
        not the agent's port, not sshd's."""
        port = h.free_port()
        h.docker("exec", "-d", self.hostc.id, "nc", "-l", "-p", str(port))

        def listed():
            d = self.api("/api/v1/containers/%s/ports" % self.hostc.name)
            return d if any(x["port"] == port for x in d["listening"]) else None
        data = h.wait_for("nc -l -p %d in hostc's ports" % port, listed, 5)
        self.assertEqual(data["network_mode"], "host")
        self.assertEqual({x["port"] for x in data["listening"]}, {port})
        self.assertNotIn(self.agent.port, {x["port"] for x in data["listening"]})

    # ---- bad input ----

    def test_unknown_container(self):
        for path in ("/api/v1/containers/nosuchcontainer/processes", "/api/v1/containers/nosuchcontainer/ports"):
            r = self.agent.get(path)
            self.assertEqual(r.status, 404)
            doc = r.json()
            self.assertEqual(doc["status"], "error")
            self.assertEqual(doc["errorType"], "not_found")
            self.assertIn("nosuchcontainer", doc["error"])
        r = self.agent.get("/api/v1/containers//processes")
        self.assertEqual(r.status, 404)
        import urllib.request
        req = urllib.request.Request(self.agent.url + "/api/v1/containers/%s/processes" % self.procs.name,
                                     data=b"{}", method="POST")
        try:
            urllib.request.urlopen(req, timeout=5)
            self.fail("POST answered 2xx")
        except urllib.error.HTTPError as err:
            self.assertIn(err.code, (404, 405))   # no such action / method

    def test_processes_vanishing_mid_read(self):
        """Processes that live a few milliseconds each, and a container
        removed while it is being read: every answer is 200 (or 404 once it
        is gone), valid JSON, and the agent lives on."""
        churn = h.docker_run(self, "churn", ["sh", "-c", "while :; do sleep 0.001 & true; done"])
        h.wait_for("churn in the API", lambda: self.agent.container(churn.name), 10)
        for _ in range(30):
            for what in ("processes", "ports"):
                r = self.agent.get("/api/v1/containers/%s/%s" % (churn.name, what))
                self.assertEqual(r.status, 200, r.body[:300])
                json.loads(r.body)
        rm = subprocess.Popen([h.DOCKER, "rm", "-f", churn.id], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        statuses = set()
        while rm.poll() is None or len(statuses) < 1:
            for what in ("processes", "ports"):
                r = self.agent.get("/api/v1/containers/%s/%s" % (churn.id, what))
                statuses.add(r.status)
                self.assertIn(r.status, (200, 404), r.body[:300])
                json.loads(r.body)
        rm.wait()
        self.assertIsNone(self.agent.proc.poll(), "the agent died")
        self.assertEqual(self.agent.get("/-/healthy").status, 200)


class NetProcConfigTest(unittest.TestCase):
    def test_switched_off(self):
        """collect.network: false and process_interval: 0 remove both families."""
        h.require_docker()
        agent = h.Agent(config="collect:\n  network: false\n  process_interval: 0\n")
        agent.start()
        self.addCleanup(agent.kill)
        c = h.docker_run(self, "off", ["sleep", "600"])
        h.wait_for("the container in /metrics",
                   lambda: agent.metrics().get("container_memory_usage_bytes", name=c.name), 30)
        e = agent.wait_tick()
        for fam in ("container_network_mode", "container_processes", "container_file_descriptors"):
            self.assertEqual(e.get(fam), [], fam)
        agent.stop()

    def test_bad_values(self):
        for cfg, key in (("collect:\n  process_interval: 50ms\n", "collect.process_interval"),
                         ("collect:\n  process_interval: soon\n", "collect.process_interval"),
                         ("collect:\n  network: maybe\n", "collect.network")):
            rc, err, path = h.run_agent_to_exit([], config=cfg)
            self.assertEqual(rc, 2, err)
            self.assertIn(key, err)
            self.assertRegex(err, re.escape(path) + r":2:\d+:")


if __name__ == "__main__":
    unittest.main()
