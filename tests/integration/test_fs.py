"""Filesystems and volumes against the real Docker engine: the writable
layer's and a volume's size (container_fs_usage_bytes, measured by the
agent's budgeted walk) against the test's own du of the same directories,
each mount's filesystem capacity against statvfs, a tmpfs, the walk's
budget, and the block I/O of a direct write in the cgroup counters.
"""

import os
import subprocess
import unittest

import harness as h

MIB = 1024 * 1024

CONFIG = """\
collect:
  fs_usage_interval: 1s
"""


def du_bytes(path):
    """What the agent measures: st_blocks * 512 of the directory and all
    below it on the same filesystem, a file with n links counted 1/n."""
    st = os.lstat(path)
    total = st.st_blocks * 512
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                s = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            if s.st_dev != st.st_dev:
                continue
            b = s.st_blocks * 512
            if not os.path.isdir(os.path.join(root, name)) and s.st_nlink > 1:
                b /= s.st_nlink
            total += b
        dirs[:] = [d for d in dirs if os.lstat(os.path.join(root, d)).st_dev == st.st_dev]
    return total


class FsTest(unittest.TestCase):
    agent = None

    @classmethod
    def setUpClass(cls):
        h.require_docker()
        cls.agent = h.Agent(config=CONFIG).start()

    @classmethod
    def tearDownClass(cls):
        if cls.agent:
            agent, cls.agent = cls.agent, None
            agent.stop()

    def run_writer(self, name, script, opts=()):
        """A container that runs script, then touches /ready and sleeps."""
        c = h.docker_run(self, name, ["sh", "-c", script + " && touch /ready && exec sleep 600"], opts)

        def ready():
            return subprocess.run([h.DOCKER, "exec", c.id, "test", "-f", "/ready"],
                                  capture_output=True, timeout=10).returncode == 0
        h.wait_for("%s to finish writing" % name, ready, 60, interval=0.3)
        return c

    def usage_when(self, agent, c, mountpoint, pred, what, timeout=15):
        def check():
            v = agent.metrics().get("container_fs_usage_bytes", name=c.name, mountpoint=mountpoint)
            return v[0][1] if v and pred(v[0][1]) else None
        return h.wait_for("%s: usage of %s %s" % (c.name, mountpoint, what), check, timeout, interval=0.2)

    def test_volume_layer_and_tmpfs(self):
        vol = h.unique("fsvol")
        self.addCleanup(h.docker, "volume", "rm", "-f", vol, check=False)
        c = self.run_writer("fs", "dd if=/dev/zero of=/data/f bs=1M count=16 oflag=direct && "
                                  "dd if=/dev/zero of=/layer bs=1M count=5 && "
                                  "dd if=/dev/zero of=/scratch/x bs=1M count=2 && sync",
                            ["-v", "%s:/data" % vol, "--tmpfs", "/scratch:size=8m"])
        ins = c.inspect()
        src = [m["Source"] for m in ins["Mounts"] if m["Destination"] == "/data"][0]
        upper = ins["GraphDriver"]["Data"].get("UpperDir")
        if not upper:
            self.skipTest("storage driver %s has no UpperDir" % ins["GraphDriver"]["Name"])

        # The volume: exactly what du says, once a walk after the writes ended.
        want = du_bytes(src)
        self.assertGreaterEqual(want, 16 * MIB)
        got = self.usage_when(self.agent, c, "/data", lambda v: v == want, "== du %d" % want)
        self.assertEqual(got, want)
        # The writable layer holds /layer (5 MiB) and the marker.
        want_layer = du_bytes(upper)
        self.assertGreaterEqual(want_layer, 5 * MIB)
        self.usage_when(self.agent, c, "/", lambda v: v == want_layer, "== du %d" % want_layer)
        # The tmpfs: its own use; its capacity is the size asked for.
        self.usage_when(self.agent, c, "/scratch", lambda v: 2 * MIB <= v <= 2 * MIB + 64 * 1024, "~2 MiB")

        m = self.agent.metrics()
        sv = os.statvfs(src)
        self.assertEqual(m.value("container_fs_limit_bytes", name=c.name, mountpoint="/data"),
                         sv.f_blocks * sv.f_frsize)
        used = (sv.f_blocks - sv.f_bfree) * sv.f_frsize
        self.assertAlmostEqual(m.value("container_fs_backing_usage_bytes", name=c.name, mountpoint="/data"),
                               used, delta=256 * MIB)
        su = os.statvfs(upper)
        self.assertEqual(m.value("container_fs_limit_bytes", name=c.name, mountpoint="/"),
                         su.f_blocks * su.f_frsize)
        self.assertEqual(m.value("container_fs_limit_bytes", name=c.name, mountpoint="/scratch"), 8 * MIB)

        # More written into the volume shows at the next walk.
        h.docker("exec", c.id, "dd", "if=/dev/zero", "of=/data/g", "bs=1M", "count=8", "oflag=direct")
        more = du_bytes(src)
        self.assertGreaterEqual(more, want + 8 * MIB)
        self.usage_when(self.agent, c, "/data", lambda v: v == more, "== du %d after 8 MiB more" % more)

    def test_volume_writes_in_cgroup_counters(self):
        # cgroup v1 blkio attributes a container's writes only to devices
        # with a throttle rule on some kernels: give it a generous one
        # (1 GB/s) on the disk that holds Docker's volumes.
        disk = h.backing_disk("/var/lib/docker/volumes")
        opts = ["--device-write-bps", "%s:1gb" % disk] if disk else []
        vol = h.unique("fsio")
        self.addCleanup(h.docker, "volume", "rm", "-f", vol, check=False)
        c = self.run_writer("fsio", "dd if=/dev/zero of=/data/f bs=1M count=16 oflag=direct",
                            ["-v", "%s:/data" % vol] + opts)
        kernel = c.cgroup().write_bytes()
        # The agent shows what the kernel counted (nothing is written meanwhile).
        # A tick taken while dd still wrote shows part of it: wait for the
        # agent to reach the kernel's count, then compare (the message of a
        # timeout says what it showed last).
        seen = []
        def shown():
            seen.append(self.agent.metrics().sum("container_fs_writes_bytes_total", name=c.name))
            return seen[-1] == kernel
        if kernel:
            try:
                h.wait_for("%s's block I/O series at the kernel's %d" % (c.name, kernel), shown, 10)
            except AssertionError:
                pass
        agent = seen[-1] if seen else 0
        self.assertEqual(agent, kernel)
        if kernel < 16 * MIB:
            self.skipTest("the kernel counted %d bytes written for a 16 MiB direct write into a volume "
                          "(throttle rule: %s): this host does not attribute block I/O to the cgroup"
                          % (kernel, disk or "none"))
        self.assertGreaterEqual(agent, 16 * MIB)
        # ... and the volume holds them.
        self.usage_when(self.agent, c, "/data", lambda v: v >= 16 * MIB, ">= 16 MiB")

    def test_walk_budget_spreads_over_ticks(self):
        # 600 files, 50 entries a tick: the first walk needs at least 12 ticks.
        c = self.run_writer("many", "mkdir /many && i=0 && while [ $i -lt 600 ]; do "
                                    "echo $i > /many/$i; i=$((i+1)); done && sync")
        upper = c.inspect()["GraphDriver"]["Data"].get("UpperDir")
        if not upper:
            self.skipTest("no UpperDir for this storage driver")
        want = du_bytes(upper)
        agent = h.Agent(config="collect:\n  fs_usage_interval: 60s\n  fs_walk_budget: 50\n",
                        interval="200ms").start()
        self.addCleanup(agent.kill)
        h.wait_for("%s in the new agent" % c.name, lambda: agent.container(c.name), 10)
        t0 = agent.ticks()

        def measured():
            m = agent.metrics()
            v = m.get("container_fs_usage_bytes", name=c.name, mountpoint="/")
            return (v[0][1], m.value("monitor_ticks_total")) if v else None
        got, ticks = h.wait_for("the first measurement of %s's layer" % c.name, measured, 30, interval=0.05)
        self.assertEqual(got, want)
        self.assertGreaterEqual(ticks - t0, 600 // 50 - 1,
                                "a 600-entry walk at 50 entries a tick ended after %d ticks" % (ticks - t0))
        agent.stop()

    def test_fs_config_bad_values(self):
        for cfg, key in [("collect:\n  fs_usage_interval: 500ms\n", "collect.fs_usage_interval"),
                         ("collect:\n  fs_walk_budget: 0\n", "collect.fs_walk_budget"),
                         ("collect:\n  fs_walk_budget: lots\n", "collect.fs_walk_budget"),
                         ("discovery:\n  keep_exited: forever\n", "discovery.keep_exited")]:
            rc, err, path = h.run_agent_to_exit(["--listen", "127.0.0.1:%d" % h.free_port()], config=cfg)
            self.assertEqual(rc, 2, err)
            self.assertIn(key, err)
            self.assertIn("config.yml:", err)


if __name__ == "__main__":
    unittest.main()
