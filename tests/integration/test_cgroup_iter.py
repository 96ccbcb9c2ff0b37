"""The BPF cgroup iterator (collectors/cgroup_iter.c, bpf/cgroup_iter.bpf.c)
against the cgroup files it stands for, on real Docker containers.

Every value the agent takes from an iterator walk must equal what the
file holds: for each container the files are read before and after a
tick, and when nothing moved in between (idle containers) the agent's
value must be exactly the file's. That includes block I/O (the blkio
throttle policy's counters, per device). PSI totals (the v2 tree of a hybrid
host) are the kernel's last aggregation: equal once a container is quiet,
and for one that stalls all the time never ahead of the file and at most
the 2 s aggregation period plus a tick behind. Containers:
  idle   sleep, --memory 64m --cpus 0.5 (so cpu.stat is read: a quota)
  cache  wrote and read back 8 MiB (page cache, inactive file, rss)
  io     wrote and read back 4 MiB with O_DIRECT, under a generous write
         throttle rule on Docker's disk (v1 blkio counts a cgroup's I/O
         only on a queue with the throttle policy on)
Two agents watch them: one with cpu="total" (cpuacct.usage), one with
collect.percpu (cpuacct.usage_percpu). Also: the files the walks stand
for are not held open, and a container the last walk missed is still
read (its files by path).

Skips on pure cgroup v2 (the iterator covers v1 hierarchies) and where
the kernel cannot run it (before 6.1, no BTF); on this kind of host it
must load.
"""

import os
import platform
import time
import unittest

import harness as h

MIB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")
LOADED = "cgroup: hot counters from the BPF cgroup iterator"
SERVED_FILES = ("memory.usage_in_bytes", "memory.max_usage_in_bytes", "memory.stat",
                "memory.limit_in_bytes", "memory.soft_limit_in_bytes", "pids.max",
                "memory.memsw.limit_in_bytes", "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares",
                "cpu.stat",
                "memory.failcnt", "memory.oom_control", "memory.memsw.usage_in_bytes",
                "cpuacct.usage", "cpuacct.usage_percpu", "cpuacct.stat", "pids.current",
                "cpu.pressure", "memory.pressure", "io.pressure",
                "blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_serviced_recursive")
BLKIO = (("blkio.throttle.io_service_bytes_recursive", "container_fs_%s_bytes_total"),
         ("blkio.throttle.io_serviced_recursive", "container_fs_%s_total"))


def kernel_can():
    """Why this kernel cannot run the iterator, or None."""
    major, minor = (int(x) for x in platform.release().split(".")[:2])
    if (major, minor) < (6, 1):
        return "Linux %d.%d has no cgroup iterator (6.1+)" % (major, minor)
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return "no kernel BTF"
    return None


def dev_label(majmin):
    """The agent's device label for "8:0": /dev/<DEVNAME> from sysfs."""
    try:
        with open("/sys/dev/block/%s/uevent" % majmin) as f:
            for line in f:
                if line.startswith("DEVNAME="):
                    return "/dev/" + line.strip().split("=", 1)[1]
    except OSError:
        pass
    return majmin


def cpu_count(cpulist):
    """CPUs in a cpuset list such as "0-3,6"."""
    n = 0
    for part in cpulist.strip().split(","):
        if part:
            a, _, b = part.partition("-")
            n += int(b or a) - int(a) + 1
    return n


def file_values(cg, percpu=False):
    """What the agent's series are defined from, read from the files now."""
    st = cg.kv("memory", "memory.stat")
    usage = cg.read_int("memory", "memory.usage_in_bytes")
    v = {
        "container_memory_usage_bytes": usage,
        "container_memory_max_usage_bytes": cg.read_int("memory", "memory.max_usage_in_bytes"),
        "container_memory_failcnt": cg.read_int("memory", "memory.failcnt"),
        "container_memory_rss": st["total_rss"],
        "container_memory_cache": st["total_cache"],
        "container_memory_mapped_file": st["total_mapped_file"],
        "container_memory_working_set_bytes": max(usage - st["total_inactive_file"], 0),
        "container_memory_events_oom_kill_total": cg.kv("memory", "memory.oom_control")["oom_kill"],
        "container_pids": cg.pids_current(),
    }
    if os.path.exists(cg.file("memory", "memory.memsw.usage_in_bytes")):
        memsw = cg.read_int("memory", "memory.memsw.usage_in_bytes")
        v["container_memory_swap"] = max(memsw - usage, 0)
    acct = cg.kv("cpuacct", "cpuacct.stat")
    v["container_cpu_user_seconds_total"] = acct["user"] / CLK_TCK
    v["container_cpu_system_seconds_total"] = acct["system"] / CLK_TCK
    if percpu:
        for i, ns in enumerate(cg.read("cpuacct", "cpuacct.usage_percpu").split()):
            v[("container_cpu_usage_seconds_total", "cpu%02d" % i)] = int(ns) / 1e9
    else:
        v[("container_cpu_usage_seconds_total", "total")] = cg.read_int("cpuacct", "cpuacct.usage") / 1e9
    # PSI from the v2 tree of a hybrid host
    unified = os.path.join(h.CG, "unified", cg.path.lstrip("/"))
    for res in ("cpu", "memory", "io"):
        path = os.path.join(unified, res + ".pressure")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for line in f:
                kind, *fields = line.split()
                total = int(dict(x.split("=") for x in fields)["total"])
                name = "waiting" if kind == "some" else "stalled"
                v["container_pressure_%s_%s_seconds_total" % (res, name)] = total / 1e6
    # block I/O: the Read and Write line of each device
    for fname, metric in BLKIO:
        for line in cg.read("blkio", fname).splitlines():
            f = line.split()
            if len(f) == 3 and f[1] in ("Read", "Write"):
                op = "reads" if f[1] == "Read" else "writes"
                v[(metric % op, "device", dev_label(f[0]))] = int(f[2])
    # settings (the agent: "max" or 2^62 and above mean no limit, 0)
    def limit(ctrl, name):
        t = cg.read(ctrl, name).strip()
        return 0 if t == "max" or int(t) >= 1 << 62 else int(t)
    v["container_spec_memory_limit_bytes"] = limit("memory", "memory.limit_in_bytes")
    v["container_spec_memory_reservation_limit_bytes"] = limit("memory", "memory.soft_limit_in_bytes")
    if os.path.exists(cg.file("memory", "memory.memsw.limit_in_bytes")):
        v["container_spec_memory_swap_limit_bytes"] = limit("memory", "memory.memsw.limit_in_bytes")
    v["container_spec_pids_limit"] = limit("pids", "pids.max")
    v["container_spec_cpuset_cpus"] = cpu_count(cg.read("cpuset", "cpuset.cpus"))
    v["container_spec_cpu_shares"] = cg.read_int("cpu", "cpu.shares")
    quota = cg.read_int("cpu", "cpu.cfs_quota_us")
    if quota != -1:
        v["container_spec_cpu_quota"] = quota
        v["container_spec_cpu_period"] = cg.read_int("cpu", "cpu.cfs_period_us")
        cs = cg.kv("cpu", "cpu.stat")
        v["container_cpu_cfs_periods_total"] = cs["nr_periods"]
        v["container_cpu_cfs_throttled_periods_total"] = cs["nr_throttled"]
        v["container_cpu_cfs_throttled_seconds_total"] = cs["throttled_time"] / 1e9
    return v


def held_files(agent):
    """The paths of the agent's open descriptors."""
    held = []
    fd_dir = "/proc/%d/fd" % agent.proc.pid
    for fd in os.listdir(fd_dir):
        try:
            held.append(os.readlink(os.path.join(fd_dir, fd)))
        except OSError:
            pass
    return held


class CgroupIterTest(unittest.TestCase):
    agents = []
    containers = []

    @classmethod
    def setUpClass(cls):
        h.require_docker()
        h.require_root()
        if h.Cgroup.pure_v2():
            raise unittest.SkipTest("pure cgroup v2: the iterator covers v1 hierarchies "
                                    "(v2 is read from files)")
        why = kernel_can()
        if why:
            raise unittest.SkipTest(why)
        cls.containers, cls.agents = [], []
        try:
            cls.total = h.Agent().start()
            cls.agents.append(cls.total)
            cls.percpu = h.Agent(config="collect:\n  percpu: true\n").start()
            cls.agents.append(cls.percpu)
            run = lambda name, cmd, opts=(): h.docker_run(cls.containers, name, cmd, opts)
            cls.idle = run("iter-idle", ["sleep", "600"], ["--memory", "64m", "--cpus", "0.5",
                                                           "--pids-limit", "50",
                                                           "--memory-reservation", "32m",
                                                           "--cpu-shares", "512"])
            cls.cache = run("iter-cache", ["sh", "-c", "head -c 8388608 /dev/urandom > /f && "
                                           "cat /f > /dev/null && exec sleep 600"])
            h.wait_for("iter-cache's 8 MiB in the page cache", lambda: cls.cache.cgroup().kv(
                "memory", "memory.stat")["total_cache"] >= 8 * MIB, 15)
            disk = h.backing_disk("/var/lib/docker")
            cls.io = run("iter-io", ["sh", "-c", "dd if=/dev/zero of=/f bs=1M count=4 oflag=direct "
                                     "&& dd if=/f of=/dev/null bs=1M iflag=direct && exec sleep 600"],
                         ["--device-write-bps", "%s:1gb" % disk] if disk else [])
            h.wait_for("iter-io's dd done", lambda: "dd" not in h.docker("top", cls.io.id), 15)
            for a in cls.agents:
                for c in (cls.idle, cls.cache, cls.io):
                    h.wait_for("%s in /metrics" % c.name, lambda: a.metrics().get(
                        "container_memory_cache", name=c.name), 15)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for c in cls.containers:
            h.docker_rm(c)
        cls.containers = []
        for a in cls.agents:
            a.stop()
        cls.agents = []

    def test_iterator_loaded(self):
        for a in self.agents:
            log = a.stderr()
            self.assertEqual(log.count(LOADED), 1, log[-2000:])
            self.assertIn("walks: memory cpuacct", log)
            self.assertNotIn("its check failed", log)   # memory.stat from walks
            self.assertNotIn("reading the files instead", log)
            # Each tick runs the walks (memory, cpuacct, cpu, pids here) ...
            e0 = a.metrics()
            w0 = e0.value("monitor_cgroup_iterator_walks_total")
            r0 = e0.value("monitor_cgroup_iterator_file_reads_total")
            for _ in range(3):
                e1 = a.wait_tick()
            w1 = e1.value("monitor_cgroup_iterator_walks_total")
            r1 = e1.value("monitor_cgroup_iterator_file_reads_total")
            self.assertGreaterEqual(w1 - w0, 6, "walks %d -> %d over 3 ticks" % (w0, w1))
            # ... and the files they stand for are read by path only for
            # containers found since the last walk (other tests' here).
            n = e1.sum("monitor_containers")
            self.assertLess(r1 - r0, n * 9 * 3 / 2,
                            "%d served files read by path over 3 ticks of %d containers"
                            % (r1 - r0, n))

    def _check_equal(self, agent, c, percpu):
        """Agent values equal the files', from a tick between two reads of
        the files that agree (nothing moved)."""
        cg = c.cgroup()
        for _ in range(10):
            before = file_values(cg, percpu)
            e = agent.wait_tick(probe=lambda: file_values(cg, percpu))
            if e.probe != before:
                continue                      # moved meanwhile: again
            for key, want in before.items():
                labels = {"name": c.name}
                name = key
                if isinstance(key, tuple) and len(key) == 2:
                    name, labels["cpu"] = key
                elif isinstance(key, tuple):
                    name, label, value = key
                    labels[label] = value
                got = e.value(name, **labels)
                self.assertAlmostEqual(got, want, delta=abs(want) * 1e-12,
                                       msg="%s %s: agent %r, file %r" % (c.name, key, got, want))
            return before
        self.fail("%s: the cgroup files kept moving over 10 ticks" % c.name)

    def test_values_equal_files(self):
        self._check_equal(self.total, self.idle, False)
        v = self._check_equal(self.total, self.cache, False)
        self.assertGreaterEqual(v["container_memory_cache"], 4 * MIB)   # reclaim may take some back
        self.assertGreater(v["container_memory_rss"], 0)
        self.assertLess(v["container_memory_working_set_bytes"], v["container_memory_usage_bytes"],
                        "the page cache is partly inactive: the working set is below usage")

    def test_blkio_values_equal_files(self):
        """Bytes and I/Os read and written, per device, from the walks:
        the container did direct I/O, so the files have lines to match."""
        v = self._check_equal(self.total, self.io, False)
        written = sum(x for k, x in v.items() if k[0] == "container_fs_writes_bytes_total")
        if written < 4 * MIB:
            self.skipTest("the kernel counted %d bytes written for a 4 MiB direct write: this "
                          "host does not attribute block I/O to the cgroup" % written)
        self.assertGreaterEqual(sum(x for k, x in v.items()
                                    if k[0] == "container_fs_writes_total"), 4)
        self.assertGreater(sum(x for k, x in v.items()
                               if k[0] == "container_fs_reads_bytes_total"), 0)

    def test_percpu_values_equal_file(self):
        v = self._check_equal(self.percpu, self.idle, True)
        self.assertEqual(sum(1 for k in v if isinstance(k, tuple)), os.cpu_count())

    def test_quota_counters_and_settings_from_walk(self):
        v = self._check_equal(self.total, self.idle, False)
        self.assertIn("container_cpu_cfs_periods_total", v)
        self.assertEqual(v["container_spec_cpu_quota"], 50000)
        self.assertEqual(v["container_spec_memory_limit_bytes"], 64 * MIB)
        self.assertEqual(v["container_spec_memory_reservation_limit_bytes"], 32 * MIB)
        self.assertEqual(v["container_spec_pids_limit"], 50)
        self.assertEqual(v["container_spec_cpu_shares"], 512)
        v = self._check_equal(self.total, self.cache, False)
        self.assertEqual(v["container_spec_pids_limit"], 0)        # "max"
        self.assertEqual(v["container_spec_memory_limit_bytes"], 0)  # none

    def test_docker_update_shows_at_the_next_tick(self):
        """Settings come from every walk: a changed limit shows at once
        (the file path reads them every 10 ticks)."""
        c = h.docker_run(self, "iter-upd", ["sleep", "600"], ["--memory", "64m"])
        limit = lambda: [v for _, v in self.total.metrics().get(
            "container_spec_memory_limit_bytes", name=c.name)]
        h.wait_for("iter-upd's limit", lambda: limit() == [64 * MIB], 10)
        h.docker("update", "--memory", "96m", "--memory-swap", "-1", c.id)
        h.wait_for("the new limit in /metrics", lambda: limit() == [96 * MIB], 3)

    def test_cpuset_update_shows_within_the_settings_period(self):
        """cpuset.cpus, the one setting the walks do not give, is held open
        and read with the settings every 10 ticks: a change shows then."""
        if os.cpu_count() < 2:
            self.skipTest("one CPU: no cpuset to change")
        c = h.docker_run(self, "iter-cpuset", ["sleep", "600"], ["--cpuset-cpus", "0"])
        cpus = lambda: [v for _, v in self.total.metrics().get(
            "container_spec_cpuset_cpus", name=c.name)]
        h.wait_for("iter-cpuset's one CPU", lambda: cpus() == [1], 10)
        h.wait_for("iter-cpuset's cpuset.cpus held", lambda: any(
            p.endswith("/cpuset.cpus") and c.id in p for p in held_files(self.total)), 10)
        for _ in range(6):                   # past the first ticks, which read them every tick
            self.total.wait_tick()
        h.docker("update", "--cpuset-cpus", "0-1", c.id)
        h.wait_for("the new cpuset in /metrics", lambda: cpus() == [2], 13)

    def test_psi_of_a_busy_container_lags_by_at_most_the_aggregation(self):
        """A container stalling all the time: the walk reads PSI totals as
        the kernel last aggregated them (every 2 s while it stalls; a read
        of the file aggregates at once), so the agent's total is never
        ahead of the file and at most 2 s of aggregation plus a tick
        behind it."""
        c = h.docker_run(self, "iter-psi", ["sh", "-c", "while :; do :; done"], ["--cpus", "0.2"])
        cg = h.wait_for("iter-psi's cgroup", lambda: c.cgroup(), 5)
        path = os.path.join(h.CG, "unified", cg.path.lstrip("/"), "cpu.pressure")
        if not os.path.exists(path):
            self.skipTest("no PSI in the v2 tree (psi=0 on the kernel command line?)")

        def file_total():
            with open(path) as f:
                return int(f.readline().split("total=")[1]) / 1e6
        h.wait_for("iter-psi in /metrics", lambda: self.total.metrics().get(
            "container_pressure_cpu_waiting_seconds_total", name=c.name), 5)
        for _ in range(3):
            early = file_total()
            time.sleep(3.5)
            e = self.total.wait_tick(probe=file_total)
            got = e.value("container_pressure_cpu_waiting_seconds_total", name=c.name)
            self.assertLessEqual(got, e.probe + 1e-6, "ahead of the file")
            self.assertGreaterEqual(got, early - 1e-6,
                                    "more than 3.5 s behind the file (%.3f, file %.3f then %.3f)"
                                    % (got, early, e.probe))
        self.assertGreater(e.probe, early, "the busy container did not stall: no check")

    def test_served_files_not_held(self):
        """The agent holds none of the files the walks stand for: the
        values above came from walks. Also for an
        agent started after the containers, which finds their settings
        already written (a container without a CPU quota held v1 cpu.stat
        that way before)."""
        late = h.Agent().start()
        self.addCleanup(late.stop)
        late.wait_tick(timeout=10)
        late.wait_tick(timeout=10)
        for agent in (self.total, late):
            held = held_files(agent)
            for c in (self.idle, self.cache, self.io):  # with a CPU quota, without; block I/O
                self.assertTrue(agent.metrics().get("container_memory_usage_bytes", name=c.name),
                                "%s not collected" % c.name)
                mine = [p for p in held if c.id in p]
                served = [p for p in mine if os.path.basename(p) in SERVED_FILES]
                self.assertEqual(served, [], "held although the walks give them")

    def test_new_container_read_by_path(self):
        """A container found after the tick's walk is read from its files
        (the fresh pass between ticks), and from walks afterwards."""
        c = h.docker_run(self, "iter-new", ["sleep", "600"])
        h.wait_for("iter-new in /metrics", lambda: self.total.metrics().get(
            "container_pids", name=c.name), 5)
        self._check_equal(self.total, c, False)


if __name__ == "__main__":
    unittest.main()
