"""Container lifecycle against the real Docker engine: state, exit code,
OOM kill, restart count, health, what inspect says about ports, mounts and
the command, exited containers kept in view, and the event timeline at
/api/v1/events. Every expectation is checked against what the test did and
against `docker inspect`.

One agent (discovery.keep_exited: 1h) watches containers each test starts.
"""

import calendar
import re
import time
import unittest

import harness as h

CONFIG = """\
discovery:
  keep_exited: 1h
"""


def docker_time(s):
    """Docker's RFC 3339 time with nanoseconds to Unix seconds."""
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z", s)
    if not m:
        raise ValueError("unexpected time %r" % s)
    t = calendar.timegm(tuple(int(x) for x in m.groups()[:6]))
    return t + (float("0." + m.group(7)) if m.group(7) else 0.0)


class LifecycleTest(unittest.TestCase):
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

    # ---- helpers ----

    def entry_when(self, c, what, pred, timeout=15):
        """The agent's entry for c once pred(entry) holds."""
        def check():
            e = self.agent.container(c.name)
            return e if e and pred(e) else None
        return h.wait_for("%s: %s" % (c.name, what), check, timeout)

    def docker_state_when(self, c, what, pred, timeout=30):
        def check():
            st = c.inspect()["State"]
            return st if pred(st) else None
        return h.wait_for("docker: %s %s" % (c.name, what), check, timeout)

    def events(self, **query):
        q = "&".join("%s=%s" % kv for kv in query.items())
        r = self.agent.get("/api/v1/events" + ("?" + q if q else ""))
        self.assertEqual(r.status, 200, r.body[:300])
        doc = r.json()
        self.assertEqual(doc["status"], "success")
        return doc

    def events_of(self, c, **query):
        return [e for e in self.events(container=c.name, **query)["data"] if e["id"] == c.id]

    # ---- tests ----

    def test_oom_killed_container(self):
        # 64 MiB into a shell variable under a 16 MiB limit without swap: the
        # kernel's OOM killer ends it, Docker marks it OOMKilled, 137.
        # Docker itself now and then misses the kill (exit 137 but OOMKilled
        # false: its OOM event raced the exit), so the scene is played
        # again once; what the agent shows is judged against Docker's word.
        for attempt in range(2):
            c = h.docker_run(self, "oom%d" % attempt,
                             ["sh", "-c", 'sleep 3; x=$(head -c 64m /dev/zero | tr "\\0" a); sleep 5'],
                             ["--memory", "16m", "--memory-swap", "16m"])
            # Seen running first, so the agent knows its cgroup.
            running = self.entry_when(c, "running with a cgroup", lambda e: e["has_cgroup"], 10)
            cgroup = running["cgroup"]
            self.assertTrue(cgroup.endswith(c.id), cgroup)
            st = self.docker_state_when(c, "exited", lambda s: s["Status"] == "exited")
            if st["OOMKilled"]:
                break
            print("docker did not mark %s OOMKilled: %s" % (c.name, st))
        self.assertTrue(st["OOMKilled"], "the test container was not OOM-killed: %s" % st)
        self.assertEqual(st["ExitCode"], 137)

        e = self.entry_when(c, "exited", lambda e: e["state"] == "exited")
        self.assertEqual(e["exit_code"], 137)
        self.assertIs(e["oom_killed"], True)
        self.assertIs(e["has_cgroup"], False)
        self.assertEqual(e["cgroup"], cgroup)          # the id label it had while running
        self.assertAlmostEqual(e["finished_at"], docker_time(st["FinishedAt"]), delta=0.01)
        self.assertIsNotNone(e["last_seen"])

        m = self.agent.wait_tick()
        self.assertEqual(m.value("container_state", name=c.name, state="exited"), 1)
        self.assertEqual(m.get("container_state", name=c.name, state="running"), [])
        self.assertEqual(m.value("container_exit_code", name=c.name), 137)
        self.assertEqual(m.value("container_oom_killed", name=c.name), 1)
        self.assertEqual(m.get("container_state", name=c.name)[0][0]["id"], cgroup)
        # No cgroup, no cgroup values.
        self.assertEqual(m.get("container_memory_usage_bytes", name=c.name), [])

        def timeline():
            ev = self.events_of(c)
            types = [x["type"] for x in ev]
            return ev if "oom" in types and "die" in types else None
        ev = h.wait_for("oom and die events for %s" % c.name, timeline, 10)
        types = [x["type"] for x in ev]
        self.assertIn("start", types)
        self.assertLess(types.index("start"), types.index("die"))
        die = [x for x in ev if x["type"] == "die"][-1]
        self.assertEqual(die["detail"], "exit code 137")
        self.assertEqual(die["name"], c.name)
        oom = [x for x in ev if x["type"] == "oom"][0]
        self.assertLessEqual(oom["time"], die["time"] + 1)

    def test_restart_policy_count_rises(self):
        c = h.docker_run(self, "crashloop", ["sh", "-c", "sleep 0.3; exit 3"], ["--restart", "always"])
        seen = []

        def risen():
            e = self.agent.container(c.name)
            if e and e["restart_count"] is not None:
                seen.append(e["restart_count"])
            return seen and seen[-1] >= max(3, seen[0] + 2)
        h.wait_for("%s restart count to rise by 2 to at least 3 (seen %s)" % (c.name, seen), risen, 40,
                   interval=0.2)
        self.assertEqual(seen, sorted(seen), "the restart count went down: %s" % seen)
        self.assertLess(seen[0], seen[-1])
        # The agent follows Docker's own count (both keep moving: wait for a match).
        h.wait_for("the agent's restart count to match docker inspect",
                   lambda: self.agent.container(c.name)["restart_count"] == c.inspect()["RestartCount"],
                   10, interval=0.05)
        m = self.agent.metrics()
        self.assertGreaterEqual(m.value("container_restarts_total", name=c.name), 3)
        self.assertEqual(m.type["container_restarts_total"], "counter")

        ev = self.events_of(c)
        restarts = [x for x in ev if x["type"] == "restart"]
        self.assertGreaterEqual(len(restarts), 2, ev)
        counts = [int(re.match(r"restart count (\d+) \(restart policy always\)", x["detail"]).group(1))
                  for x in restarts]
        self.assertEqual(counts, sorted(counts))
        dies = [x for x in ev if x["type"] == "die"]
        self.assertGreaterEqual(len(dies), 2)
        self.assertTrue(all(x["detail"] == "exit code 3" for x in dies), dies)

    def test_failing_healthcheck_is_unhealthy(self):
        opts = ["--health-interval", "1s", "--health-retries", "1", "--health-timeout", "2s"]
        bad = h.docker_run(self, "unhealthy", ["sleep", "600"], ["--health-cmd", "false"] + opts)
        good = h.docker_run(self, "healthy", ["sleep", "600"], ["--health-cmd", "true"] + opts)
        e = self.entry_when(bad, "unhealthy", lambda e: e["health"] == "unhealthy", 20)
        self.assertEqual(bad.inspect()["State"]["Health"]["Status"], "unhealthy")
        self.assertEqual(e["state"], "running")
        self.entry_when(good, "healthy", lambda e: e["health"] == "healthy", 20)
        self.assertEqual(good.inspect()["State"]["Health"]["Status"], "healthy")

        m = self.agent.wait_tick()
        self.assertEqual(m.value("container_health_status", name=bad.name, status="unhealthy"), 1)
        self.assertEqual(len(m.get("container_health_status", name=bad.name)), 1)
        self.assertEqual(m.value("container_health_status", name=good.name, status="healthy"), 1)
        # No healthcheck, no health series.
        plain = h.docker_run(self, "nohealth", ["sleep", "600"])
        self.entry_when(plain, "running", lambda e: e["state"] == "running", 10)
        self.assertIsNone(self.agent.container(plain.name)["health"])
        self.assertEqual(self.agent.wait_tick().get("container_health_status", name=plain.name), [])

        ev = h.wait_for("a health_status event for %s" % bad.name,
                        lambda: [x for x in self.events_of(bad, type="health_status")], 10)
        self.assertEqual(ev[-1]["detail"], "unhealthy")

    def test_exited_container_stays_until_removed(self):
        c = h.docker_run(self, "exits", ["sh", "-c", "sleep 3; exit 5"])
        self.entry_when(c, "running", lambda e: e["has_cgroup"], 10)
        st = self.docker_state_when(c, "exited", lambda s: s["Status"] == "exited")
        e = self.entry_when(c, "exited", lambda e: e["state"] == "exited")
        self.assertEqual((e["exit_code"], e["oom_killed"], e["has_cgroup"]), (5, False, False))
        self.assertEqual(e["id"], c.id)
        self.assertAlmostEqual(e["finished_at"], docker_time(st["FinishedAt"]), delta=0.01)
        # Still there ticks later, also by id prefix in the detail endpoint.
        for _ in range(3):
            self.agent.wait_tick()
        r = self.agent.get("/api/v1/containers/" + c.id[:12])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["data"]["state"], "exited")
        m = self.agent.metrics()
        self.assertEqual(m.value("container_exit_code", name=c.name), 5)
        self.assertEqual(m.value("container_oom_killed", name=c.name), 0)

        h.docker("rm", c.id)
        h.wait_for("%s to leave the API after docker rm" % c.name,
                   lambda: self.agent.container(c.name) is None, 5)
        self.assertEqual(self.agent.get("/api/v1/containers/" + c.id).status, 404)
        self.assertEqual(self.agent.metrics().get("container_state", name=c.name), [])
        self.assertIn("destroy", [x["type"] for x in self.events_of(c)])

    def test_keep_exited_is_configurable(self):
        short = h.Agent(config="discovery:\n  keep_exited: 2s\n").start()
        self.addCleanup(short.kill)
        never = h.Agent(config="discovery:\n  keep_exited: 0s\n").start()
        self.addCleanup(never.kill)
        c = h.docker_run(self, "shortlived", ["sh", "-c", "sleep 1; exit 0"])
        st = self.docker_state_when(c, "exited", lambda s: s["Status"] == "exited")
        finished = docker_time(st["FinishedAt"])
        self.entry_when(c, "exited (1h agent)", lambda e: e["state"] == "exited")
        h.wait_for("2 s past the container's end", lambda: time.time() > finished + 3, 10)
        short.wait_tick()
        self.assertIsNone(short.container(c.name), "keep_exited: 2s still shows it")
        self.assertIsNone(never.container(c.name), "keep_exited: 0s shows an exited container")
        self.assertIsNotNone(self.agent.container(c.name), "keep_exited: 1h lost it")
        short.stop()
        never.stop()

    def test_pause_and_unpause(self):
        c = h.docker_run(self, "pausable", ["sleep", "600"])
        self.entry_when(c, "running", lambda e: e["state"] == "running", 10)
        h.docker("pause", c.id)
        self.entry_when(c, "paused", lambda e: e["state"] == "paused", 10)
        self.assertEqual(self.agent.wait_tick().value("container_state", name=c.name, state="paused"), 1)
        h.docker("unpause", c.id)
        self.entry_when(c, "running again", lambda e: e["state"] == "running", 10)
        types = [x["type"] for x in self.events_of(c)]
        self.assertIn("pause", types)
        self.assertIn("unpause", types)
        self.assertLess(types.index("pause"), types.index("unpause"))

    def test_inspect_details(self):
        port = h.free_port()
        vol = h.unique("detailvol")
        self.addCleanup(h.docker, "volume", "rm", "-f", vol, check=False)
        c = h.docker_run(self, "detail", ["sleep", "600"],
                         ["-v", "%s:/data" % vol, "--tmpfs", "/scratch:size=4m",
                          "-p", "127.0.0.1:%d:80/tcp" % port, "--restart", "on-failure:2"])
        e = self.entry_when(c, "running", lambda e: e["state"] == "running", 10)
        ins = c.inspect()
        self.assertEqual(e["command"], "sleep 600")
        self.assertEqual(e["restart_policy"], "on-failure")
        self.assertAlmostEqual(e["created_at"], docker_time(ins["Created"]), delta=0.01)
        self.assertEqual(e["ports"], [{"container_port": 80, "protocol": "tcp",
                                       "host_ip": "127.0.0.1", "host_port": port}])
        mounts = {m["destination"]: m for m in e["mounts"]}
        src = [m["Source"] for m in ins["Mounts"] if m["Destination"] == "/data"][0]
        self.assertEqual(mounts["/data"], {"type": "volume", "name": vol, "source": src,
                                           "destination": "/data", "rw": True})
        self.assertEqual(mounts["/scratch"]["type"], "tmpfs")
        self.assertEqual(e["exit_code"], 0)
        self.assertIs(e["oom_killed"], False)
        self.assertEqual(e["restart_count"], 0)

    def test_events_query_and_bad_input(self):
        c = h.docker_run(self, "evq", ["sh", "-c", "exit 7"])
        h.wait_for("a die event for %s" % c.name,
                   lambda: [x for x in self.events_of(c) if x["type"] == "die"], 15)
        everything = self.events_of(c)
        dies = self.events_of(c, type="die")
        self.assertEqual([x["type"] for x in dies], ["die"])
        self.assertEqual(dies[0]["detail"], "exit code 7")
        both = self.events_of(c, type="start,die")
        self.assertEqual({x["type"] for x in both}, {"start", "die"})
        # by id prefix, as well as by name
        by_id = [x for x in self.events(container=c.id[:10])["data"]]
        self.assertEqual([x["seq"] for x in by_id], [x["seq"] for x in everything])
        # limit keeps the newest, oldest first
        doc = self.events(limit=2)
        self.assertEqual(len(doc["data"]), 2)
        self.assertEqual(doc["data"][1]["seq"], doc["last_seq"])
        self.assertLess(doc["data"][0]["seq"], doc["data"][1]["seq"])
        # after= is a cursor: nothing newer than the last one
        self.assertEqual(self.events(after=doc["last_seq"], container=c.name)["data"], [])
        # since= as a duration, Unix seconds and RFC 3339
        self.assertEqual(len(self.events_of(c, since="10m")), len(everything))
        self.assertEqual(self.events_of(c, since="%d" % (time.time() + 60)), [])
        first = everything[0]["time"]
        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(first - 1))
        self.assertEqual(len(self.events_of(c, since=iso)), len(everything))
        self.assertEqual(self.events_of(c, until="%.3f" % (first - 5)), [])
        for q, key in [("since=yesterday", "since"), ("limit=0", "limit"), ("limit=abc", "limit"),
                       ("limit=999999", "limit"), ("after=-1", "after"), ("until=2026-13-01T00:00:00Z", "until")]:
            r = self.agent.get("/api/v1/events?" + q)
            self.assertEqual(r.status, 400, q)
            doc = r.json()
            self.assertEqual(doc["errorType"], "bad_data", q)
            self.assertIn(key + "=", doc["error"], q)


if __name__ == "__main__":
    unittest.main()
