"""A plain runc container (no Docker, no containerd): found through runc's
state.json, named by its id, with runtime "runc" and its limits, whether it
was there before the agent started or came after."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import harness as h

MIB = 1024 * 1024


def runc(*args, check=True):
    # `runc run -d` hands its stdio to the container (terminal: false), so
    # errors go to a file: a pipe would stay open as long as the container.
    with tempfile.TemporaryFile() as err:
        r = subprocess.run(["runc"] + list(args), stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=err, timeout=30)
        if check and r.returncode != 0:
            err.seek(0)
            raise AssertionError("runc %s failed: %s" % (" ".join(args), err.read().decode(errors="replace").strip()))
    return r.returncode


def runc_remove(cid):
    runc("kill", cid, "KILL", check=False)
    for _ in range(20):
        if runc("delete", "-f", cid, check=False) == 0:
            return
        time.sleep(0.1)


class RuncTest(unittest.TestCase):
    def setUp(self):
        h.require_runc()
        # setup's bundle (limits: 32 MiB, 0.2 CPU, 64 pids) with this run's
        # id and cgroup path, the rootfs shared.
        self.cid = h.unique("runc")
        self.bundle = tempfile.mkdtemp(prefix="runc-", dir=h.WORK)
        self.addCleanup(shutil.rmtree, self.bundle, True)
        with open(os.path.join(h.RUNC_BUNDLE, "config.json")) as f:
            spec = json.load(f)
        spec["root"]["path"] = os.path.join(h.RUNC_BUNDLE, "rootfs")
        spec["linux"]["cgroupsPath"] = "/" + self.cid
        with open(os.path.join(self.bundle, "config.json"), "w") as f:
            json.dump(spec, f)

    def start_container(self):
        runc("run", "-d", "--bundle", self.bundle, self.cid)
        self.addCleanup(runc_remove, self.cid)

    def check_container(self, agent):
        cid = self.cid
        entry = agent.container(cid)
        self.assertEqual(entry["runtime"], "runc")
        self.assertEqual(entry["id"], cid)
        self.assertEqual(entry["cgroup"], "/" + cid)
        e = agent.wait_tick()
        self.assertEqual(e.value("container_spec_memory_limit_bytes", name=cid), 32 * MIB)
        self.assertEqual(e.value("container_spec_cpu_quota", name=cid), 20000)
        self.assertEqual(e.value("container_spec_pids_limit", name=cid), 64)
        self.assertEqual(e.value("container_pids", name=cid), 1)
        labels = e.get("container_memory_usage_bytes", name=cid)[0][0]
        self.assertEqual(labels["id"], "/" + cid)
        self.assertGreaterEqual(e.value("monitor_containers", runtime="runc"), 1)

    def test_runc_container_before_agent(self):
        self.start_container()
        agent = h.Agent().start()
        self.addCleanup(agent.kill)
        h.wait_for("runc container %s in the API" % self.cid, lambda: agent.container(self.cid), 5)
        self.check_container(agent)
        runc_remove(self.cid)
        h.wait_for("%s to go away" % self.cid, lambda: agent.container(self.cid) is None, 5)
        agent.stop()

    def test_runc_container_after_agent(self):
        agent = h.Agent().start()
        self.addCleanup(agent.kill)
        self.start_container()
        t0 = time.monotonic()
        # Docker containers show up within 5 s; a runc one should too, not
        # only at the next full rescan (discovery.rescan_interval, 60 s).
        h.wait_for("runc container %s (started after the agent) in the API within 5 s" % self.cid,
                   lambda: agent.container(self.cid), 5)
        self.assertLessEqual(time.monotonic() - t0, 5.5)
        self.check_container(agent)
        agent.stop()


if __name__ == "__main__":
    unittest.main()
