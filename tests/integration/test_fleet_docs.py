"""The fleet examples in docs/fleet/ are real: promtool and amtool accept the
Prometheus config, rules and Alertmanager routing; systemd-analyze accepts
the unit; the fleet agent config loads and starts its remote_write; and the
container image (busybox plus the binary and its libraries, docs/fleet/
image.sh) runs the agent with the host mounted at /host, as the DaemonSet
does, and sees this host's containers.

Each test skips, saying why, when its tool (promtool, amtool,
systemd-analyze, Docker) is missing."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness as h

DOCS = os.path.join(h.ROOT, "docs", "fleet")


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, timeout=kw.pop("timeout", 60), **kw)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


class FleetDocsTest(unittest.TestCase):
    def test_prometheus_config_and_rules(self):
        promtool = h.require_binary("promtool")
        rc, out = run([promtool, "check", "config", os.path.join(DOCS, "prometheus.yml")])
        self.assertEqual(rc, 0, out)
        self.assertIn("SUCCESS: 4 rules found", out)
        rc, out = run([promtool, "check", "rules", os.path.join(DOCS, "rules.yml")])
        self.assertEqual(rc, 0, out)

    def test_alertmanager_config(self):
        amtool = h.require_binary("amtool")
        rc, out = run([amtool, "check-config", os.path.join(DOCS, "alertmanager.yml")])
        self.assertEqual(rc, 0, out)
        self.assertIn("4 receivers", out)
        # The routing tree sends a database host's warning to the DB team
        # and a page to on-call.
        rc, out = run([amtool, "config", "routes", "test", "--config.file", os.path.join(DOCS, "alertmanager.yml"),
                       "host=db-3", "severity=warning", "alertname=ContainerMemoryNearLimit"])
        self.assertEqual((rc, out.strip().splitlines()[0]), (0, "team-db"))
        rc, out = run([amtool, "config", "routes", "test", "--config.file", os.path.join(DOCS, "alertmanager.yml"),
                       "host=db-3", "severity=page", "alertname=MonitorAgentDown"])
        self.assertEqual((rc, out.strip().splitlines()[0]), (0, "on-call"))

    def test_systemd_unit(self):
        sa = h.require_binary("systemd-analyze")
        with open(os.path.join(DOCS, "monitor.service")) as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/local/bin/monitor agent", unit)
        d = tempfile.mkdtemp(prefix="unit-", dir=h.WORK)
        self.addCleanup(shutil.rmtree, d, True)
        # verify wants the binary to exist: point it at this build.
        path = os.path.join(d, "monitor.service")
        with open(path, "w") as f:
            f.write(unit.replace("/usr/local/bin/monitor", os.path.abspath(h.MONITOR)))
        rc, out = run([sa, "verify", path])
        self.assertEqual((rc, out), (0, ""))
        # RestartPreventExitStatus=2 is what the agent exits with on a bad config.
        self.assertIn("RestartPreventExitStatus=2", unit)
        bad = os.path.join(d, "bad.yml")
        with open(bad, "w") as f:
            f.write("remote_write:\n  - url: ftp://nowhere/\n")
        rc, out = run([h.MONITOR, "agent", "--config", bad, "--data-dir", os.path.join(d, "data")], timeout=20)
        self.assertEqual(rc, 2, out)
        self.assertIn("remote_write.url", out)

    def test_agent_config(self):
        """docs/fleet/agent.yml loads and starts its remote_write (secrets
        and the receiver swapped for local ones)."""
        with open(os.path.join(DOCS, "agent.yml")) as f:
            text = f.read()
        d = tempfile.mkdtemp(prefix="fleetcfg-", dir=h.WORK)
        self.addCleanup(shutil.rmtree, d, True)
        token, pw = os.path.join(d, "token"), os.path.join(d, "pw")
        for p, v in ((token, "t" * 32), (pw, "hunter2-secret")):
            with open(p, "w") as f:
                f.write(v + "\n")
            os.chmod(p, 0o600)
        text = (text.replace("/etc/monitor/admin-token", token).replace("/etc/monitor/mimir-password", pw)
                .replace("https://mimir.example/api/v1/push", "http://127.0.0.1:9/api/v1/push")
                .replace("listen: 0.0.0.0:9838\n", ""))
        a = h.Agent(config=text, args=["--no-ebpf"]).start(wait_ready=False)
        try:
            a.wait_ready(timeout=40)   # a busy host's first tick can be slow
            h.wait_for("remote_write to try its endpoint", lambda: "retrying" in a.stderr(), 15, 0.3)
            log = a.stderr()
            self.assertIn("remote_write mimir: sending to http://127.0.0.1:9/api/v1/push", log)
            self.assertNotIn("hunter2", log)
            # The log line comes as the retry is decided; the counter is in
            # the next tick's /metrics.
            h.wait_for("monitor_remote_write_retries_total > 0", lambda: (a.metrics().sum(
                "monitor_remote_write_retries_total", remote_name="mimir") or 0) > 0, 10, 0.3)
        finally:
            a.stop(timeout=20)   # a loaded host stops slowly

    def test_container_image(self):
        """The image from docs/fleet/Dockerfile runs the agent with the host
        at /host, with the DaemonSet's settings (host PID and network, / read
        only at /host), and sees this host's containers."""
        h.require_docker()
        with open(os.path.join(DOCS, "daemonset.yaml")) as f:
            ds = f.read()
        # The settings the docker run below mirrors.
        for want in ("hostPID: true", "hostNetwork: true", "mountPath: /host", "hostPath: {path: /}",
                     "drop: [ALL]", "add: [SYS_PTRACE, DAC_READ_SEARCH, BPF, PERFMON, NET_ADMIN, SETPCAP]",
                     "--listen=0.0.0.0:9838"):
            self.assertIn(want, ds)
        tag = "monitor-it-fleet-%s:latest" % h.RUN_TAG
        rc, out = run([os.path.join(DOCS, "image.sh"), os.path.abspath(h.MONITOR), tag, h.IMAGE], timeout=120)
        self.assertEqual(rc, 0, out)
        self.addCleanup(h.docker, "rmi", "-f", tag, check=False)
        box = h.docker_run(self, "fleetimg", ["sleep", "300"], ["--memory", "48m"])
        d = tempfile.mkdtemp(prefix="fleetimg-", dir=h.WORK)
        self.addCleanup(shutil.rmtree, d, True)
        with open(os.path.join(d, "monitor.yml"), "w") as f:
            # /var/run is a symlink to /run on the host: name the socket by
            # its real path below the host root.
            f.write("docker:\n  socket: /run/docker.sock\n")
        port = h.free_port()
        name = h.unique("fleet-agent")
        base = ["run", "-d", "--name", name, "--pid=host", "--network=host",
                "-v", "/:/host:ro", "-v", "%s:/var/lib/monitor" % d]
        tail = [tag, "--listen", "127.0.0.1:%d" % port, "--config", "/var/lib/monitor/monitor.yml", "--no-ebpf"]
        # The capabilities of the DaemonSet (README "Privileges"), not
        # --privileged; SYS_ADMIN where the engine knows no BPF/PERFMON.
        h.docker("rm", "-f", name, check=False)
        caps = ["--cap-drop", "ALL"] + [a for c in ("SYS_PTRACE", "DAC_READ_SEARCH", "BPF", "PERFMON",
                                                     "NET_ADMIN", "SETPCAP") for a in ("--cap-add", c)]
        r = subprocess.run([h.DOCKER] + base + caps + tail, capture_output=True, timeout=60)
        if r.returncode != 0:
            h.docker("rm", "-f", name, check=False)
            caps = [a if a not in ("BPF", "PERFMON") else "SYS_ADMIN" for a in caps]
            h.docker(*(base + caps + tail))
        self.addCleanup(h.docker, "rm", "-f", name, check=False)

        def listed():
            r = h.http_get("http://127.0.0.1:%d/api/v1/containers" % port, timeout=5)
            if r.status != 200:
                return None
            return [c for c in json.loads(r.body)["data"] if c.get("name") == box.name]
        def logs():
            return run([h.DOCKER, "logs", name])[1]
        try:
            found = h.wait_for("the containerised agent to list %s" % box.name, listed, 60, 0.5)
        except AssertionError:
            raise AssertionError("agent container log:\n" + logs()[-2000:])
        self.assertTrue(found[0]["id"].startswith(box.id[:12]) or box.id in json.dumps(found[0]))
        r = h.http_get("http://127.0.0.1:%d/metrics" % port)
        m = h.Exposition(r.text)
        self.assertEqual(m.value("container_spec_memory_limit_bytes", name=box.name), 48 * 1024 * 1024)
        # Read below /host: the same bytes the host's cgroup file holds.
        self.assertEqual(m.value("container_spec_memory_limit_bytes", name=box.name), box.cgroup().memory_limit())
        self.assertIn("host root /host", logs())


if __name__ == "__main__":
    unittest.main()
