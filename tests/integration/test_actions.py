"""Container actions: POST /api/v1/containers/{id}/{action} against the real
Docker engine and runc, checked with `docker inspect` / `runc state`.

Without a configured token, and with a missing or wrong one, every action
is refused with 401 and nothing changes; with the token the container
really stops, starts, restarts, pauses, unpauses, is killed; unknown ids
are 404, an ambiguous prefix is 409 with the matches; an engine that does
not answer is a 504 within the configured timeout, a missing socket a 502,
and neither blocks the agent or its shutdown.
"""

import json
import os
import shutil
import socket
import tempfile
import threading
import time
import unittest

import harness as h
from test_runc import runc, runc_remove

TOKEN = "it-" + os.urandom(18).hex()


def token_file(test):
    d = tempfile.mkdtemp(prefix="token-", dir=h.WORK)
    test.addCleanup(shutil.rmtree, d, True)
    path = os.path.join(d, "admin-token")
    with open(path, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(path, 0o600)
    return path


def bearer(tok=TOKEN):
    return {"Authorization": "Bearer " + tok}


class ActionsTest(unittest.TestCase):
    agent = None

    @classmethod
    def setUpClass(cls):
        h.require_docker()
        os.makedirs(h.WORK, exist_ok=True)
        cls.tokdir = tempfile.mkdtemp(prefix="token-", dir=h.WORK)
        path = os.path.join(cls.tokdir, "admin-token")
        with open(path, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(path, 0o600)
        cls.agent = h.Agent(config="auth:\n  admin_token_file: %s\n" % path).start()

    @classmethod
    def tearDownClass(cls):
        if cls.agent:
            agent, cls.agent = cls.agent, None
            log = agent.stderr()
            agent.stop()
            # Never the token, in any log line.
            assert TOKEN not in log, "the admin token is in the agent's log"
        shutil.rmtree(cls.tokdir, ignore_errors=True)

    def running(self, name="act", cmd=("sleep", "600")):
        c = h.docker_run(self, name, list(cmd))
        h.wait_for("%s in the agent" % c.name, lambda: self.agent.container(c.name), 10)
        return c

    def act(self, which, action, headers=None, query="", agent=None, timeout=60):
        agent = agent or self.agent
        r = agent.post("/api/v1/containers/%s/%s%s" % (which, action, query),
                       headers if headers is not None else bearer(), timeout=timeout)
        self.assertEqual(r.headers.get("Content-Type"), "application/json", r.body[:200])
        return r.status, r.json()

    def state(self, c):
        return c.inspect()["State"]

    # ---- refusals ----

    def test_no_token_configured_refuses_everything(self):
        plain = h.Agent().start()
        self.addCleanup(plain.kill)
        c = h.docker_run(self, "notoken", ["sleep", "600"])
        h.wait_for("%s in the agent" % c.name, lambda: plain.container(c.name), 10)
        before = self.state(c)
        for headers in ({}, bearer(), bearer("x" * 40)):
            for action in ("stop", "kill", "pause"):
                status, doc = self.act(c.name, action, headers, agent=plain)
                self.assertEqual(status, 401, (action, headers, doc))
                self.assertEqual(doc["errorType"], "unauthorized")
                self.assertIn("auth.admin_token_file", doc["error"])
        after = self.state(c)
        self.assertTrue(after["Running"] and not after["Paused"])
        self.assertEqual(after["StartedAt"], before["StartedAt"])
        plain.stop()

    def test_missing_or_wrong_token_refuses(self):
        c = self.running("wrongtoken")
        before = self.state(c)
        for headers in ({}, bearer("wrong-token-wrong-token"), bearer(TOKEN[:-1]), bearer(TOKEN + "x"),
                        {"Authorization": "Basic " + TOKEN}, {"Authorization": TOKEN}):
            status, doc = self.act(c.name, "stop", headers)
            self.assertEqual(status, 401, (headers, doc))
            self.assertEqual(doc["errorType"], "unauthorized")
        # Checked before the id: no probing for names without the token.
        status, doc = self.act("no-such-container-at-all", "stop", {})
        self.assertEqual(status, 401)
        after = self.state(c)
        self.assertTrue(after["Running"])
        self.assertEqual(after["StartedAt"], before["StartedAt"])
        self.assertFalse([e for e in self.agent.get("/api/v1/events?type=action&container=%s" % c.name)
                          .json()["data"]], "a refused request was recorded as an action")

    # ---- actions ----

    def test_stop_start_restart(self):
        c = self.running("ssr")
        status, doc = self.act(c.name, "stop", query="?t=1")
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["data"]["id"], c.id)
        self.assertEqual(doc["data"]["name"], c.name)
        self.assertEqual((doc["data"]["action"], doc["data"]["changed"]), ("stop", True))
        self.assertFalse(self.state(c)["Running"])
        h.wait_for("the agent to show %s exited" % c.name,
                   lambda: self.agent.container(c.name)["state"] == "exited", 10)

        status, doc = self.act(c.id[:12], "start")
        self.assertEqual(status, 200, doc)
        self.assertTrue(self.state(c)["Running"])
        status, doc = self.act(c.name, "start")          # already running
        self.assertEqual(status, 200, doc)
        self.assertIs(doc["data"]["changed"], False)

        started = self.state(c)["StartedAt"]
        status, doc = self.act(c.id, "restart", query="?t=1")
        self.assertEqual(status, 200, doc)
        st = self.state(c)
        self.assertTrue(st["Running"])
        self.assertNotEqual(st["StartedAt"], started)

        ev = self.agent.get("/api/v1/events?type=action&container=%s" % c.name).json()["data"]
        self.assertEqual([e["detail"] for e in ev],
                         ["stop from 127.0.0.1: done", "start from 127.0.0.1: done",
                          "start from 127.0.0.1: the container was already running",
                          "restart from 127.0.0.1: done"])
        self.assertTrue(all(e["id"] == c.id for e in ev))
        log = self.agent.stderr()
        self.assertIn("action: stop %s (%s) requested from 127.0.0.1: done" % (c.name, c.id), log)

    def test_pause_unpause_kill(self):
        c = self.running("puk")
        status, doc = self.act(c.name, "pause")
        self.assertEqual(status, 200, doc)
        self.assertTrue(self.state(c)["Paused"])
        status, doc = self.act(c.name, "pause")          # already paused: the engine refuses
        self.assertEqual(status, 409, doc)
        self.assertEqual(doc["errorType"], "conflict")
        self.assertIn("paused", doc["error"])
        status, doc = self.act(c.name, "unpause")
        self.assertEqual(status, 200, doc)
        self.assertFalse(self.state(c)["Paused"])
        status, doc = self.act(c.name, "kill")
        self.assertEqual(status, 200, doc)
        st = self.state(c)
        self.assertFalse(st["Running"])
        self.assertEqual(st["ExitCode"], 137)
        status, doc = self.act(c.name, "kill")           # not running any more
        self.assertEqual(status, 409, doc)
        ev = self.agent.get("/api/v1/events?type=action&container=%s" % c.name).json()["data"]
        self.assertTrue(ev[-1]["detail"].startswith("kill from 127.0.0.1: failed (409): "), ev[-1])

    def test_kill_with_signal(self):
        c = self.running("sig", ["sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.1; done"])
        status, doc = self.act(c.name, "kill", query="?signal=SIGTERM")
        self.assertEqual(status, 200, doc)
        st = h.wait_for("%s to exit on SIGTERM" % c.name,
                        lambda: (lambda s: s if not s["Running"] else None)(self.state(c)), 10)
        self.assertEqual(st["ExitCode"], 42)

    def test_unknown_and_bad_requests(self):
        status, doc = self.act("no-such-container-xyz", "stop")
        self.assertEqual(status, 404, doc)
        self.assertEqual(doc["errorType"], "not_found")
        self.assertIn("no-such-container-xyz", doc["error"])
        c = self.running("bad")
        status, doc = self.act(c.name, "explode")
        self.assertEqual(status, 404, doc)
        self.assertIn("unknown action", doc["error"])
        for q in ("?t=abc", "?t=-1", "?t=99999", "?signal=$(reboot)", "?signal=", "?t=1&signal=KILL"):
            action = "kill" if "signal" in q and "t=" not in q else "stop"
            status, doc = self.act(c.name, action, query=q)
            self.assertEqual(status, 400, (q, doc))
            self.assertEqual(doc["errorType"], "bad_data")
        r = self.agent.post("/api/v1/containers/%s" % c.name, bearer())
        self.assertEqual(r.status, 404)
        self.assertTrue(self.state(c)["Running"])

    # ---- runtimes that do not answer ----

    def test_engine_that_does_not_answer(self):
        d = tempfile.mkdtemp(prefix="hung-", dir="/tmp")
        self.addCleanup(shutil.rmtree, d, True)
        sock_path = os.path.join(d, "docker.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(sock_path)
        srv.listen(64)
        held = []
        stop = threading.Event()

        def accept():               # take connections, never answer
            srv.settimeout(0.2)
            while not stop.is_set():
                try:
                    held.append(srv.accept()[0])
                except OSError:
                    pass
        t = threading.Thread(target=accept, daemon=True)
        t.start()

        def cleanup():
            stop.set()
            t.join(2)
            for s in held:
                s.close()
            srv.close()
        self.addCleanup(cleanup)
        tok = token_file(self)
        cfg = ("docker:\n  socket: %s\n  timeout: 1s\n  action_timeout: 2s\n"
               "auth:\n  admin_token_file: %s\n" % (sock_path, tok))
        agent = h.Agent(config=cfg).start()
        self.addCleanup(agent.kill)
        t0 = time.monotonic()
        status, doc = self.act("web", "start", agent=agent)
        took = time.monotonic() - t0
        self.assertEqual(status, 504, doc)
        self.assertEqual(doc["errorType"], "timeout")
        self.assertIn("did not answer within 2000 ms", doc["error"])
        self.assertLess(took, 5, "took %.1f s" % took)
        # stop: 2 s plus the 10 s grace; the agent keeps serving meanwhile,
        # and SIGTERM ends it at once although the action waits.
        result = {}

        def waiting_stop():
            try:
                result["r"] = agent.post("/api/v1/containers/web/stop", bearer(), timeout=30)
            except OSError as e:        # the agent closed the connection on its way out
                result["error"] = e
        th = threading.Thread(target=waiting_stop)
        th.start()
        time.sleep(0.5)
        self.assertEqual(agent.get("/-/healthy").status, 200)
        agent.wait_tick()
        t0 = time.monotonic()
        agent.stop(timeout=5)
        self.assertLess(time.monotonic() - t0, 5)
        th.join(10)
        self.assertFalse(th.is_alive())
        if "r" in result:
            self.assertEqual(result["r"].status, 503, result["r"].body[:200])

        # No socket at all: 502 with the reason.
        missing = os.path.join(d, "missing.sock")
        cfg = "docker:\n  socket: %s\nauth:\n  admin_token_file: %s\n" % (missing, tok)
        agent2 = h.Agent(config=cfg).start()
        self.addCleanup(agent2.kill)
        status, doc = self.act("web", "stop", agent=agent2)
        self.assertEqual(status, 502, doc)
        self.assertEqual(doc["errorType"], "runtime")
        self.assertIn("No such file or directory", doc["error"])
        agent2.stop()

    def test_bad_token_file_stops_the_agent(self):
        d = tempfile.mkdtemp(prefix="tok-", dir=h.WORK)
        self.addCleanup(shutil.rmtree, d, True)
        short = os.path.join(d, "short")
        with open(short, "w") as f:
            f.write("abc\n")
        for path, why in [(os.path.join(d, "missing"), "No such file or directory"),
                          (short, "16 to 4096 characters"), (d, "not a regular file")]:
            rc, err, _ = h.run_agent_to_exit(["--listen", "127.0.0.1:%d" % h.free_port()],
                                             config="auth:\n  admin_token_file: %s\n" % path)
            self.assertEqual(rc, 2, err)
            self.assertIn("auth.admin_token_file", err)
            self.assertIn(why, err)


class RuncActionsTest(unittest.TestCase):
    """runc containers: kill, pause and unpause through runc itself; start,
    stop and restart are 501; and two ids sharing a prefix are ambiguous."""

    def setUp(self):
        h.require_runc()
        self.ids = [h.unique("amb-one"), h.unique("amb-two")]
        spec = json.load(open(os.path.join(h.RUNC_BUNDLE, "config.json")))
        for cid in self.ids:
            runc_remove(cid)
            b = tempfile.mkdtemp(prefix="bundle-", dir=h.WORK)
            self.addCleanup(shutil.rmtree, b, True)
            s = json.loads(json.dumps(spec))
            s["root"] = {"path": os.path.join(h.RUNC_BUNDLE, "rootfs"), "readonly": True}
            s["linux"]["cgroupsPath"] = "/" + cid
            s["hostname"] = cid[-20:]
            with open(os.path.join(b, "config.json"), "w") as f:
                json.dump(s, f)
            runc("run", "-d", "--bundle", b, cid)
            self.addCleanup(runc_remove, cid)
        tok = token_file(self)
        self.agent = h.Agent(config="auth:\n  admin_token_file: %s\n" % tok).start()
        self.addCleanup(self.agent.kill)
        for cid in self.ids:
            h.wait_for("%s in the agent" % cid, lambda: self.agent.container(cid), 10)

    def runc_status(self, cid):
        import subprocess
        out = subprocess.run(["runc", "state", cid], capture_output=True, timeout=10).stdout
        return json.loads(out)["status"] if out else None

    def act(self, which, action, query=""):
        r = self.agent.post("/api/v1/containers/%s/%s%s" % (which, action, query), bearer(), timeout=30)
        return r.status, r.json()

    def test_ambiguous_prefix_lists_the_matches(self):
        prefix = os.path.commonprefix(self.ids)
        status, doc = self.act(prefix, "kill")
        self.assertEqual(status, 409, doc)
        self.assertEqual(doc["errorType"], "ambiguous")
        self.assertEqual(sorted(m["id"] for m in doc["matches"]), sorted(self.ids))
        self.assertIn("matches 2 containers", doc["error"])
        for cid in self.ids:
            self.assertEqual(self.runc_status(cid), "running")
        # The detail endpoint says the same.
        r = self.agent.get("/api/v1/containers/" + prefix)
        self.assertEqual(r.status, 409, r.body[:300])
        self.assertEqual(sorted(m["id"] for m in r.json()["matches"]), sorted(self.ids))
        self.assertEqual(self.agent.get("/api/v1/containers/" + self.ids[1]).status, 200)
        self.agent.stop()

    def test_runc_pause_unpause_kill(self):
        cid = self.ids[0]
        status, doc = self.act(cid, "pause")
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["data"]["runtime"], "runc")
        self.assertEqual(self.runc_status(cid), "paused")
        status, doc = self.act(cid, "unpause")
        self.assertEqual(status, 200, doc)
        self.assertEqual(self.runc_status(cid), "running")
        for action in ("start", "stop", "restart"):
            status, doc = self.act(cid, action)
            self.assertEqual(status, 501, doc)
            self.assertEqual(doc["errorType"], "not_implemented")
        status, doc = self.act(cid, "kill")
        self.assertEqual(status, 200, doc)
        h.wait_for("%s to stop" % cid, lambda: self.runc_status(cid) == "stopped", 10)
        self.assertEqual(self.runc_status(self.ids[1]), "running")
        self.agent.stop()


if __name__ == "__main__":
    unittest.main()
