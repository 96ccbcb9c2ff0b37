"""A plain runc container (no Docker, no containerd): found through runc's
state.json, named by its id, with runtime "runc" and its limits."""

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
    def test_runc_container_discovered(self):
        h.require_runc()
        cid = h.RUNC_ID
        runc_remove(cid)                     # a leftover from an interrupted run
        agent = h.Agent().start()
        self.addCleanup(agent.kill)
        runc("run", "-d", "--bundle", h.RUNC_BUNDLE, cid)
        self.addCleanup(runc_remove, cid)
        t0 = time.monotonic()
        entry = h.wait_for("runc container %s in the API" % cid, lambda: agent.container(cid), 10)
        took = time.monotonic() - t0
        self.assertEqual(entry["runtime"], "runc")
        self.assertEqual(entry["id"], cid)
        self.assertEqual(entry["cgroup"], "/" + cid)
        self.assertLessEqual(took, 5.0, "took %.1f s to find the runc container" % took)

        e = agent.wait_tick()
        self.assertEqual(e.value("container_spec_memory_limit_bytes", name=cid), 32 * MIB)
        self.assertEqual(e.value("container_spec_cpu_quota", name=cid), 20000)
        self.assertEqual(e.value("container_spec_pids_limit", name=cid), 64)
        self.assertEqual(e.value("container_pids", name=cid), 1)
        labels = e.get("container_memory_usage_bytes", name=cid)[0][0]
        self.assertEqual(labels["id"], "/" + cid)
        self.assertGreaterEqual(e.value("monitor_containers", runtime="runc"), 1)

        runc_remove(cid)
        h.wait_for("%s to go away" % cid, lambda: agent.container(cid) is None, 5)
        agent.stop()


if __name__ == "__main__":
    unittest.main()
