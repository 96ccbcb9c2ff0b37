"""Notifications end to end: real rule files in the real agent fire and
resolve alerts; the notifier groups them, queues them in state.db and
delivers them over real HTTP to local servers that answer as each vendor
does (Slack, Discord, Teams, Telegram, Mattermost, Google Chat, DingTalk,
WeCom, Feishu, PagerDuty, ntfy, the generic signed webhook), including
their error answers: 429 with Retry-After, 5xx, 200 with an error code,
400. Every request is checked (method, headers, the vendor's documented
JSON fields, text cut at UTF-8 boundaries) and every signature recomputed
here with Python's hmac. A real Alertmanager (Debian's
prometheus-alertmanager) receives the agent's alerts and delivers its own
webhook, firing then resolved. Notifications queued while the receiver is
down survive an agent restart. `monitor notify test` prints the vendor's
answer. Secrets never show on the API, /metrics or the log."""

import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import harness as h

SECRET_WEBHOOK = "whsec-0123456789"
SECRET_DING = "SEC-ding-abcdef123456"
SECRET_FEISHU = "feishu-sign-key-987654"
TG_TOKEN = "123456:AAE-telegram-token-xyz"
PD_KEY = "R0UTINGKEY0123456789abcdef012345"
NTFY_TOKEN = "tk_ntfytoken0123456789"
LONG = "\u00e9" * 4000 + " tail"   # 8005 bytes of UTF-8: every vendor has to cut it

VENDORS = ["webhook", "slack", "discord", "msteams", "telegram", "mattermost", "googlechat",
           "dingtalk", "wecom", "feishu", "pagerduty", "ntfy"]


class Recorder:
    """A local HTTP server playing every vendor: requests land under
    /<vendor>/..., are recorded, and get the next scripted answer for that
    vendor (the last answer repeats)."""

    def __init__(self, port=0):
        self.lock = threading.Lock()
        self.requests = {}       # vendor -> [(monotonic time, path, headers, body bytes)]
        self.script = {}         # vendor -> [(status, headers dict, body bytes)]
        rec = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                vendor = self.path.lstrip("/").split("/")[0].split("?")[0]
                with rec.lock:
                    rec.requests.setdefault(vendor, []).append(
                        (time.monotonic(), self.path, dict(self.headers), body))
                    answers = rec.script.get(vendor) or [(200, {}, b"ok")]
                    status, hdrs, out = answers.pop(0) if len(answers) > 1 else answers[0]
                self.send_response(status)
                for k, v in hdrs.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def got(self, vendor):
        with self.lock:
            return list(self.requests.get(vendor, []))

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def js(b):
    return json.dumps(b).encode()


def fingerprint(labels):
    """Prometheus' model.LabelSet fingerprint (FNV-1a 64, 0xff separators)."""
    h_ = 14695981039346656037
    for k in sorted(labels):
        for b in k.encode() + b"\xff" + labels[k].encode() + b"\xff":
            h_ = ((h_ ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h_


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def rfc3339_s(s):
    import datetime
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def rules_file(d, expr, name="NotifyTest"):
    return write(os.path.join(d, "rules.yml"), """groups:
- name: notify
  interval: 1s
  rules:
  - alert: %s
    expr: %s
    labels:
      severity: critical
      host: h1
      name: web-1
    annotations:
      summary: "%s"
      runbook_url: http://runbook.example/notify
""" % (name, expr, LONG))


def configs(url, suffix=""):
    """One entry of every vendor's <vendor>_configs, pointing at url/<vendor>."""
    return """    webhook_configs:
    - url: {u}/webhook{s}
      secret: {whs}
    slack_configs:
    - url: {u}/slack{s}
      channel: '#ops'
    discord_configs:
    - webhook_url: {u}/discord{s}
    msteams_configs:
    - url: {u}/msteams{s}
    telegram_configs:
    - url: {u}/telegram{s}
      bot_token: {tg}
      chat_id: -100123
    mattermost_configs:
    - url: {u}/mattermost{s}
    googlechat_configs:
    - url: {u}/googlechat{s}?key=k&token=t
    dingtalk_configs:
    - url: {u}/dingtalk{s}?access_token=dtok
      secret: {ding}
    wecom_configs:
    - url: {u}/wecom{s}?key=wkey
    feishu_configs:
    - url: {u}/feishu{s}
      secret: {fs}
    pagerduty_configs:
    - url: {u}/pagerduty{s}
      routing_key: {pd}
    ntfy_configs:
    - url: {u}/ntfy{s}
      topic: ops
      token: {nt}
""".format(u=url, s=suffix, whs=SECRET_WEBHOOK, tg=TG_TOKEN, ding=SECRET_DING,
           fs=SECRET_FEISHU, pd=PD_KEY, nt=NTFY_TOKEN)


class NotifyVendorsTest(unittest.TestCase):
    """Every vendor, firing then resolved, with a retried error first; a
    second receiver whose endpoints refuse for good."""

    @classmethod
    def setUpClass(cls):
        h.require_root()
        cls.rec = Recorder()
        cls.tmp = tempfile.mkdtemp(prefix="notify-", dir=h.WORK if os.path.isdir(h.WORK) else None)
        fail = {"error": "bad"}
        s = cls.rec.script
        # The first answer of each "ok" endpoint is an error to be retried.
        s["webhook"] = [(503, {}, b"busy"), (200, {}, b"")]
        s["slack"] = [(429, {"Retry-After": "1"}, b"rate_limited"), (200, {}, b"ok")]
        s["discord"] = [(429, {}, js({"message": "You are being rate limited.", "retry_after": 0.6,
                                      "global": False})), (204, {}, b"")]
        s["msteams"] = [(502, {}, b"bad gateway"), (202, {}, b"")]
        s["telegram"] = [(429, {}, js({"ok": False, "error_code": 429,
                                       "description": "Too Many Requests: retry after 1",
                                       "parameters": {"retry_after": 1}})),
                         (200, {}, js({"ok": True, "result": {"message_id": 7}}))]
        s["mattermost"] = [(500, {}, b"oops"), (200, {}, b"ok")]
        s["googlechat"] = [(429, {}, js({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}})),
                           (200, {}, js({"name": "spaces/S/messages/M"}))]
        s["dingtalk"] = [(503, {}, b""), (200, {}, js({"errcode": 0, "errmsg": "ok"}))]
        s["wecom"] = [(500, {}, b""), (200, {}, js({"errcode": 0, "errmsg": "ok"}))]
        s["feishu"] = [(504, {}, b""), (200, {}, js({"code": 0, "msg": "success", "data": {}}))]
        s["pagerduty"] = [(429, {}, js({"status": "throttle"})),
                          (202, {}, js({"status": "success", "message": "Event processed"}))]
        s["ntfy"] = [(429, {}, js({"code": 42901, "error": "limit reached"})),
                     (200, {}, js({"id": "abc", "event": "message"}))]
        # The "bad" endpoints answer as each vendor does when it refuses for good.
        s["webhookbad"] = [(400, {}, b"bad request")]
        s["slackbad"] = [(404, {}, b"channel_not_found")]
        s["discordbad"] = [(400, {}, js({"code": 50035, "message": "Invalid Form Body"}))]
        s["msteamsbad"] = [(400, {}, js(fail))]
        s["telegrambad"] = [(403, {}, js({"ok": False, "error_code": 403,
                                          "description": "Forbidden: bot was blocked by the user"}))]
        s["mattermostbad"] = [(400, {}, js(fail))]
        s["googlechatbad"] = [(400, {}, js({"error": {"code": 400, "status": "INVALID_ARGUMENT"}}))]
        s["dingtalkbad"] = [(200, {}, js({"errcode": 310000, "errmsg": "sign not match"}))]
        s["wecombad"] = [(200, {}, js({"errcode": 93000, "errmsg": "invalid webhook url"}))]
        s["feishubad"] = [(200, {}, js({"code": 19021, "msg": "sign match fail"}))]
        s["pagerdutybad"] = [(400, {}, js({"status": "invalid event", "errors": ["bad"]}))]
        s["ntfybad"] = [(400, {}, js({"code": 40001, "error": "invalid request"}))]
        tok = write(os.path.join(cls.tmp, "token"), "notify-test-admin-token-0123\n")
        os.chmod(tok, 0o600)
        rules = rules_file(cls.tmp, "monitor_ticks_total < 14")
        cfg = """rule_files: [%s]
default_rules: false
rules:
  evaluation_interval: 1s
auth:
  admin_token_file: %s
route:
  receiver: good
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
  - matchers: ['alertname=~".+"']
    receiver: bad
    continue: true
  - matchers: [alertname=NotifyTest]
    receiver: good
receivers:
  - name: good
%s  - name: bad
%s""" % (rules, tok, configs(cls.rec.url), configs(cls.rec.url, "bad"))
        cls.agent = h.Agent(config=cfg, args=["--no-ebpf"])
        cls.agent.start()

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "agent", None):
            cls.agent.stop()
        if getattr(cls, "rec", None):
            cls.rec.stop()
        if getattr(cls, "tmp", None):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def wait_all_resolved(self):
        """Waits until every good vendor has its resolved notification."""
        def done():
            for v in VENDORS:
                if not any(self.status_of(v, r) == "resolved" for r in self.rec.got(v)):
                    return False
            return True
        h.wait_for("resolved notifications at every vendor", done, 40, interval=0.2)

    @staticmethod
    def status_of(vendor, r):
        """firing/resolved as the vendor's payload says it."""
        body = r[3]
        try:
            d = json.loads(body)
        except ValueError:
            return None
        if vendor == "webhook":
            return d.get("status")
        if vendor == "pagerduty":
            return {"trigger": "firing", "resolve": "resolved"}.get(d.get("event_action"))
        text = json.dumps(d, ensure_ascii=False)
        if "[FIRING" in text:
            return "firing"
        return "resolved" if "[RESOLVED" in text else None

    def test_1_every_vendor_firing_retried_then_resolved(self):
        self.wait_all_resolved()
        for v in VENDORS:
            got = self.rec.got(v)
            states = [self.status_of(v, r) for r in got]
            with self.subTest(vendor=v):
                # The error answer, its retry, then the resolve.
                self.assertGreaterEqual(len(got), 3, "%s: %s" % (v, states))
                self.assertEqual(states[0], "firing", states)
                self.assertEqual(states[1], "firing", states)
                self.assertIn("resolved", states[2:], states)
                for r in got:
                    self.assertEqual(r[2].get("Content-Type"), "application/json")
                    json.loads(r[3])            # valid JSON, valid UTF-8 after cutting
        # Retry-After honoured: Slack said 1 s, Telegram retry_after 1 s.
        for v, wait in (("slack", 1.0), ("telegram", 1.0), ("discord", 0.6)):
            got = self.rec.got(v)
            self.assertGreaterEqual(got[1][0] - got[0][0], wait - 0.05, v)

    def test_2_payloads(self):
        self.wait_all_resolved()
        p = {v: [json.loads(r[3]) for r in self.rec.got(v)] for v in VENDORS}
        raw = {v: self.rec.got(v) for v in VENDORS}
        # Generic webhook: Alertmanager v4, signed over "<ts>:<body>".
        w = p["webhook"][1]
        self.assertEqual(w["version"], "4")
        self.assertEqual(w["status"], "firing")
        self.assertEqual(w["receiver"], "good")
        self.assertEqual(w["groupLabels"], {"alertname": "NotifyTest"})
        self.assertTrue(w["groupKey"].endswith(':{alertname="NotifyTest"}'), w["groupKey"])
        a = w["alerts"][0]
        self.assertEqual(a["labels"]["alertname"], "NotifyTest")
        self.assertEqual(a["labels"]["severity"], "critical")
        self.assertEqual(a["fingerprint"], fingerprint(a["labels"]))
        self.assertEqual(a["endsAt"], "0001-01-01T00:00:00Z")
        self.assertEqual(a["annotations"]["summary"], LONG)
        for r in raw["webhook"]:
            ts = r[2]["X-Monitor-Timestamp"]
            sig = r[2]["X-Monitor-Signature"]
            want = hmac.new(SECRET_WEBHOOK.encode(), ts.encode() + b":" + r[3], hashlib.sha256).hexdigest()
            self.assertEqual(sig, "sha256=" + want)
            self.assertLess(abs(int(ts) - time.time()), 120)
        res = [x for x in p["webhook"] if x["status"] == "resolved"][0]
        self.assertNotEqual(res["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z")
        # Slack: header block <= 150 chars, section <= 3000, colour bar.
        s = p["slack"][1]
        self.assertEqual(s["channel"], "#ops")
        self.assertEqual(s["blocks"][0]["type"], "header")
        self.assertEqual(s["blocks"][0]["text"]["type"], "plain_text")
        self.assertLessEqual(len(s["blocks"][0]["text"]["text"]), 150)
        self.assertEqual(s["blocks"][1]["text"]["type"], "mrkdwn")
        self.assertLessEqual(len(s["blocks"][1]["text"]["text"]), 3000)
        self.assertTrue(s["blocks"][1]["text"]["text"].endswith("\u2026"))
        self.assertEqual(s["attachments"][0]["color"], "danger")
        self.assertIn("FIRING", s["text"])
        self.assertEqual([x for x in p["slack"] if "RESOLVED" in x["text"]][0]["attachments"][0]["color"], "good")
        # Discord: embeds, description <= 4096, AM's colours.
        d = p["discord"][1]
        self.assertEqual(d["content"], "")
        self.assertLessEqual(len(d["embeds"][0]["description"]), 4096)
        self.assertLessEqual(len(d["embeds"][0]["title"]), 256)
        self.assertEqual(d["embeds"][0]["color"], 0x992D22)
        self.assertIn(0x2ECC71, [x["embeds"][0]["color"] for x in p["discord"]])
        # Teams: an Adaptive Card 1.4 in a Workflows message.
        t = p["msteams"][1]
        self.assertEqual(t["type"], "message")
        att = t["attachments"][0]
        self.assertEqual(att["contentType"], "application/vnd.microsoft.card.adaptive")
        self.assertEqual(att["content"]["type"], "AdaptiveCard")
        self.assertEqual(att["content"]["version"], "1.4")
        self.assertEqual(att["content"]["body"][0]["color"], "Attention")
        self.assertIn("Good", [x["attachments"][0]["content"]["body"][0]["color"] for x in p["msteams"]])
        # Telegram: the token in the path, HTML, <= 4096 characters.
        tg = p["telegram"][1]
        self.assertEqual(raw["telegram"][1][1], "/telegram/bot%s/sendMessage" % TG_TOKEN)
        self.assertEqual(tg["chat_id"], -100123)
        self.assertEqual(tg["parse_mode"], "HTML")
        self.assertTrue(tg["text"].startswith("<b>"))
        self.assertLessEqual(len(tg["text"]), 4096)
        self.assertTrue(tg["link_preview_options"]["is_disabled"])
        # Mattermost: Slack-style attachments.
        m = p["mattermost"][1]
        self.assertEqual(m["attachments"][0]["color"], "#d00000")
        self.assertLessEqual(len(m["attachments"][0]["text"]), 7000)
        # Google Chat: one thread per group, for firing and resolved alike.
        keys = {x["thread"]["threadKey"] for x in p["googlechat"]}
        self.assertEqual(len(keys), 1)
        q = urllib.parse.urlparse(raw["googlechat"][1][1]).query
        self.assertIn("messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD", q)
        self.assertIn("key=k", q)
        self.assertLessEqual(len(p["googlechat"][1]["text"]), 4096)
        # DingTalk: markdown, <= 20000 bytes, signed in the query.
        dt = p["dingtalk"][1]
        self.assertEqual(dt["msgtype"], "markdown")
        self.assertIn("NotifyTest", dt["markdown"]["title"])
        self.assertLessEqual(len(raw["dingtalk"][1][3]), 20000)
        self.assertIs(dt["at"]["isAtAll"], False)
        for r in raw["dingtalk"]:
            qs = urllib.parse.parse_qs(urllib.parse.urlparse(r[1]).query)
            self.assertEqual(qs["access_token"], ["dtok"])
            ts = qs["timestamp"][0]
            want = base64.b64encode(hmac.new(SECRET_DING.encode(), ("%s\n%s" % (ts, SECRET_DING)).encode(),
                                             hashlib.sha256).digest()).decode()
            self.assertEqual(qs["sign"], [want])
            self.assertLess(abs(int(ts) / 1000 - time.time()), 3600)
        # WeCom: markdown content <= 4096 bytes of UTF-8.
        wc = p["wecom"][1]
        self.assertEqual(wc["msgtype"], "markdown")
        self.assertLessEqual(len(wc["markdown"]["content"].encode()), 4096)
        self.assertTrue(wc["markdown"]["content"].endswith("\u2026"))
        # Feishu: interactive card, signature in the body (key = ts "\n" secret).
        for r in raw["feishu"]:
            f = json.loads(r[3])
            want = base64.b64encode(hmac.new(("%s\n%s" % (f["timestamp"], SECRET_FEISHU)).encode(), b"",
                                             hashlib.sha256).digest()).decode()
            self.assertEqual(f["sign"], want)
            self.assertEqual(f["msg_type"], "interactive")
            self.assertLessEqual(len(r[3]), 20 * 1024)
        self.assertEqual(p["feishu"][1]["card"]["header"]["template"], "red")
        self.assertIn("green", [x["card"]["header"]["template"] for x in p["feishu"]])
        # PagerDuty Events v2: trigger then resolve with the same dedup_key.
        pd = p["pagerduty"]
        self.assertEqual(pd[1]["routing_key"], PD_KEY)
        self.assertEqual(pd[1]["event_action"], "trigger")
        self.assertEqual(pd[1]["payload"]["severity"], "critical")
        self.assertEqual(pd[1]["payload"]["source"], "h1")
        self.assertLessEqual(len(pd[1]["payload"]["summary"]), 1024)
        resolve = [x for x in pd if x["event_action"] == "resolve"][0]
        self.assertEqual(resolve["dedup_key"], pd[1]["dedup_key"])
        self.assertEqual(len(pd[1]["dedup_key"]), 64)
        # ntfy: JSON publish to the server root, bearer token, priorities.
        n = p["ntfy"]
        self.assertEqual(raw["ntfy"][1][1], "/ntfy/")
        self.assertEqual(raw["ntfy"][1][2].get("Authorization"), "Bearer " + NTFY_TOKEN)
        self.assertEqual(n[1]["topic"], "ops")
        self.assertEqual(n[1]["priority"], 5)
        self.assertIn("rotating_light", n[1]["tags"])
        self.assertLessEqual(len(n[1]["message"].encode()), 4096)
        self.assertIn(3, [x["priority"] for x in n])

    def test_3_refusals_are_not_retried(self):
        self.wait_all_resolved()
        time.sleep(3)   # room for a retry that must not come
        for v in VENDORS:
            got = self.rec.got(v + "bad")
            with self.subTest(vendor=v):
                # One firing and one resolved notification, each tried once.
                self.assertEqual(len(got), 2, [r[1] for r in got])
        e = self.agent.metrics()
        self.assertEqual(e.value("monitor_notifications_total", receiver="bad", result="failed"), 24)
        self.assertEqual(e.value("monitor_notifications_total", receiver="bad", result="retried"), 0)
        self.assertGreaterEqual(e.value("monitor_notifications_total", receiver="good", result="delivered"), 24)
        self.assertGreaterEqual(e.value("monitor_notifications_total", receiver="good", result="retried"), 12)
        self.assertEqual(e.value("monitor_notification_queue_length"), 0)
        cnt = e.value("monitor_notification_delivery_duration_seconds_count")
        self.assertGreaterEqual(cnt, 24)
        self.assertEqual(e.value("monitor_notification_delivery_duration_seconds_bucket", le="+Inf"), cnt)

    def test_4_api_and_no_secrets(self):
        self.wait_all_resolved()
        r = self.agent.get("/api/v1/notifications?limit=200")
        self.assertEqual(r.status, 200)
        doc = r.json()["data"]
        names = [x["name"] for x in doc["receivers"]]
        self.assertEqual(names, ["good", "bad"])
        good = doc["receivers"][0]["integrations"]
        self.assertEqual(sorted(i["name"] for i in good), sorted(VENDORS))
        results = {x["result"] for x in doc["recent"]}
        self.assertTrue({"delivered", "retried", "failed"} <= results, results)
        texts = [r.text, self.agent.get("/metrics").text, self.agent.stderr()]
        for secret in (SECRET_WEBHOOK, SECRET_DING, SECRET_FEISHU, TG_TOKEN, PD_KEY, NTFY_TOKEN,
                       "dtok", "wkey", self.rec.url + "/slack"):
            for t in texts:
                self.assertNotIn(secret, t)

    def test_5_notify_test_cli(self):
        env = dict(os.environ, MONITOR_URL=self.agent.url)
        tok = os.path.join(self.tmp, "token")
        before = len(self.rec.got("slack"))
        out = subprocess.run([h.MONITOR, "notify", "test", "good", "--token-file", tok], env=env,
                             capture_output=True, text=True, timeout=60)
        self.assertIn("good/slack[0]: delivered (HTTP 200)", out.stdout)
        self.assertIn("good/webhook[0]", out.stdout)
        self.assertEqual(len(self.rec.got("slack")), before + 1)
        self.assertIn("MonitorTestNotification", self.rec.got("slack")[-1][3].decode())
        out = subprocess.run([h.MONITOR, "notify", "test", "bad", "--token-file", tok], env=env,
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 1)
        self.assertIn("bad/slack[0]: failed (HTTP 404)", out.stdout)
        self.assertIn("channel_not_found", out.stdout)          # the vendor's own answer
        self.assertIn("errcode 93000", out.stdout)               # WeCom's 200-with-errcode
        out = subprocess.run([h.MONITOR, "notify", "test", "nosuch", "--token-file", tok], env=env,
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 1)
        self.assertIn("no receiver named", out.stderr)
        r = self.agent.post("/api/v1/notifications/test?receiver=good")
        self.assertEqual(r.status, 401)                          # needs the token
        out = subprocess.run([h.MONITOR, "notify", "status"], env=env, capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual([x["name"] for x in json.loads(out.stdout)["receivers"]], ["good", "bad"])
        self.assertNotIn(TG_TOKEN, out.stdout)


class AlertmanagerTest(unittest.TestCase):
    """The agent posts to a real Alertmanager, which groups and calls its
    webhook: firing, then resolved."""

    def test_real_alertmanager(self):
        h.require_root()
        am_bin = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        if not am_bin:
            h.skip("prometheus-alertmanager is not installed (.ci/install-deps)")
        rec = Recorder()
        tmp = tempfile.mkdtemp(prefix="am-", dir=h.WORK if os.path.isdir(h.WORK) else None)
        am = agent = am_log = None
        try:
            am_port = h.free_port()
            am_log = open(os.path.join(tmp, "am.log"), "wb")
            write(os.path.join(tmp, "am.yml"), """route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
- name: hook
  webhook_configs:
  - url: %s/am
    send_resolved: true
""" % rec.url)
            am = subprocess.Popen([am_bin, "--config.file=" + os.path.join(tmp, "am.yml"),
                                   "--storage.path=" + os.path.join(tmp, "amdata"),
                                   "--web.listen-address=127.0.0.1:%d" % am_port,
                                   "--cluster.listen-address="],
                                  stdout=subprocess.DEVNULL, stderr=am_log,
                                  preexec_fn=h.die_with_parent)
            h.wait_for("alertmanager ready", lambda: h.http_get("http://127.0.0.1:%d/-/ready" % am_port).status == 200, 20)
            rules = rules_file(tmp, "monitor_ticks_total < 8", name="AmTest")
            tok = write(os.path.join(tmp, "token"), "am-test-admin-token-0123456\n")
            os.chmod(tok, 0o600)
            cfg = """rule_files: [%s]
default_rules: false
rules:
  evaluation_interval: 1s
auth:
  admin_token_file: %s
route:
  receiver: am
  group_wait: 0s
receivers:
  - name: am
    alertmanager_configs:
    - url: http://127.0.0.1:%d
      resend_delay: 2s
""" % (rules, tok, am_port)
            agent = h.Agent(config=cfg, args=["--no-ebpf"]).start()
            h.wait_for("Alertmanager's webhook with the firing alert",
                       lambda: any(json.loads(r[3])["status"] == "firing" for r in rec.got("am")), 30)
            h.wait_for("Alertmanager's webhook with the resolved alert",
                       lambda: any(json.loads(r[3])["status"] == "resolved" for r in rec.got("am")), 60)
            first = json.loads(rec.got("am")[0][3])
            self.assertEqual(first["version"], "4")
            self.assertEqual(first["alerts"][0]["labels"]["alertname"], "AmTest")
            self.assertEqual(first["alerts"][0]["labels"]["host"], "h1")
            self.assertEqual(first["groupLabels"], {"alertname": "AmTest"})
            self.assertEqual(first["alerts"][0]["annotations"]["summary"], LONG)
            # Alertmanager's own view: the alert it got from us, resolved now.
            doc = h.http_get("http://127.0.0.1:%d/api/v2/alerts?active=false&inhibited=true&silenced=true" % am_port).json()
            e = agent.metrics()
            self.assertGreaterEqual(e.value("monitor_notifications_total", receiver="am", result="delivered"), 2)
            self.assertIsInstance(doc, list)
            # monitor notify test through Alertmanager: its answer, then its webhook.
            out = subprocess.run([h.MONITOR, "notify", "test", "am", "--url", agent.url,
                                  "--token-file", tok], capture_output=True, text=True, timeout=60)
            self.assertIn("am/alertmanager[0]: delivered (HTTP 200)", out.stdout, out.stderr)
            h.wait_for("the test alert at Alertmanager's webhook",
                       lambda: any(a["labels"]["alertname"] == "MonitorTestNotification"
                                   for r in rec.got("am") for a in json.loads(r[3])["alerts"]), 30)
        finally:
            if agent:
                agent.stop()
            if am:
                am.terminate()
                am.wait(10)
            if am_log:
                am_log.close()
            rec.stop()
            shutil.rmtree(tmp, ignore_errors=True)


class ResendTest(unittest.TestCase):
    """As Prometheus sends to Alertmanager: firing alerts again every
    resend_delay (endsAt moving ahead), resolved ones again for a while
    (endsAt fixed at the resolve time), here to a real HTTP receiver playing
    Alertmanager's API; and the rules engine re-sending resolved alerts
    (rules.resend_delay) does not make a webhook receiver notify twice."""

    def test_firing_and_resolved_resent(self):
        rec = Recorder()
        tmp = tempfile.mkdtemp(prefix="resend-", dir=h.WORK if os.path.isdir(h.WORK) else None)
        agent = None
        try:
            rules = rules_file(tmp, "monitor_ticks_total < 6", name="ResendTest")
            cfg = """rule_files: [%s]
default_rules: false
rules:
  evaluation_interval: 1s
  resend_delay: 1s
route:
  receiver: both
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: both
    alertmanager_configs:
    - url: %s/amapi
      resend_delay: 2s
    webhook_configs:
    - url: %s/webhook
      send_resolved: true
""" % (rules, rec.url, rec.url)
            agent = h.Agent(config=cfg, args=["--no-ebpf"]).start()

            def posts(status):
                out = []
                for r in rec.got("amapi"):
                    for a in json.loads(r[3]):
                        if a["labels"].get("alertname") != "ResendTest":
                            continue
                        at = time.time() - (time.monotonic() - r[0])  # wall time of the post
                        resolved = rfc3339_s(a["endsAt"]) <= at + 1
                        if resolved == (status == "resolved"):
                            out.append((r[0], a))
                return out
            h.wait_for("three resolved posts to the Alertmanager API",
                       lambda: len(posts("resolved")) >= 3, 40)
            firing, resolved = posts("firing"), posts("resolved")
            self.assertTrue(all(r[1].endswith("/amapi/api/v2/alerts") for r in rec.got("amapi")))
            # Firing: sent at once and again (5 s of firing, resend 2 s), one
            # startsAt, endsAt ahead of each send.
            self.assertGreaterEqual(len(firing), 2, firing)
            self.assertEqual(len({a["startsAt"] for _, a in firing + resolved}), 1)
            # Resolved: the same endsAt every time, about every resend_delay.
            self.assertEqual(len({a["endsAt"] for _, a in resolved}), 1, resolved)
            # (one post may wait on the delivery thread of a busy host,
            # which shortens the gap after it; on average they follow the
            # 2 s resend_delay, not the engine's 1 s resends)
            gaps = [b[0] - a[0] for a, b in zip(resolved, resolved[1:])]
            self.assertTrue(all(0.5 < g < 4.5 for g in gaps), gaps)
            self.assertGreaterEqual(sum(gaps) / len(gaps), 1.4, gaps)
            # The webhook (grouped, deduplicated as Alertmanager does): one
            # firing and one resolved notification, although the engine
            # handed the resolved alert on every second.
            time.sleep(3)

            def hooks(status):
                return [b for b in (json.loads(r[3]) for r in rec.got("webhook"))
                        if b["status"] == status and b["alerts"][0]["labels"]["alertname"] == "ResendTest"]
            self.assertEqual(len(hooks("firing")), 1, rec.got("webhook"))
            self.assertEqual(len(hooks("resolved")), 1, rec.got("webhook"))
            # Not shown as an alert any more.
            self.assertEqual(agent.get("/api/v1/alerts").json()["data"]["alerts"], [])
        finally:
            if agent:
                agent.stop()
            rec.stop()
            shutil.rmtree(tmp, ignore_errors=True)


class RestartTest(unittest.TestCase):
    """Queued while the receiver is down, delivered after the agent restarts
    and the receiver is back: none lost, no duplicate group beyond
    at-least-once."""

    def test_queue_survives_restart(self):
        h.require_root()
        tmp = tempfile.mkdtemp(prefix="nq-", dir=h.WORK if os.path.isdir(h.WORK) else None)
        data = os.path.join(tmp, "data")
        os.makedirs(data)
        port = h.free_port()          # nothing listens here yet
        rules = write(os.path.join(tmp, "rules.yml"), """groups:
- name: persist
  interval: 1s
  rules:
  - alert: Persist
    expr: vector(1)
    labels: {severity: warning}
  - alert: Persist2
    expr: vector(2)
    labels: {severity: critical}
""")
        cfg = """rule_files: [%s]
default_rules: false
rules:
  evaluation_interval: 1s
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
receivers:
  - name: hook
    webhook_configs:
    - url: http://127.0.0.1:%d/webhook
""" % (rules, port)
        agent = h.Agent(config=cfg, args=["--no-ebpf", "--data-dir", data])
        rec = None
        try:
            agent.start()

            def queued():
                d = agent.get("/api/v1/notifications").json()["data"]
                return d["queued"] >= 2 and any(x["result"] == "retried" for x in d["recent"])
            h.wait_for("two notifications queued and retried", queued, 30)
            agent.stop()
            agent = h.Agent(config=cfg, args=["--no-ebpf", "--data-dir", data])
            agent.start()
            # The receiver comes back on the same port.
            rec = Recorder(port)
            want = {'{}:{alertname="Persist"}', '{}:{alertname="Persist2"}'}
            h.wait_for("both queued notifications delivered after the restart",
                       lambda: {json.loads(r[3])["groupKey"] for r in rec.got("webhook")} >= want, 90)
            time.sleep(3)
            got = [json.loads(r[3]) for r in rec.got("webhook")]
            self.assertEqual({g["groupKey"] for g in got}, want)
            self.assertTrue(all(g["status"] == "firing" for g in got))
            for k in want:   # at least once; a repeat only with the same group key
                self.assertLessEqual(sum(1 for g in got if g["groupKey"] == k), 2, k)
            d = agent.get("/api/v1/notifications").json()["data"]
            self.assertEqual(d["queued"], 0)
        finally:
            agent.kill()
            if rec:
                rec.stop()
            shutil.rmtree(tmp, ignore_errors=True)

class SilenceInhibitTest(unittest.TestCase):
    """In the real agent: a silence made through /api/v2/silences and an
    inhibit rule keep their alerts out of the notifications; the others
    go out."""

    def test_silenced_and_inhibited(self):
        h.require_root()
        rec = Recorder()
        tmp = tempfile.mkdtemp(prefix="nsi-", dir=h.WORK if os.path.isdir(h.WORK) else None)
        agent = None
        try:
            token = "silence-test-admin-token-0123"
            tok = write(os.path.join(tmp, "token"), token + "\n")
            os.chmod(tok, 0o600)
            rules = write(os.path.join(tmp, "rules.yml"), """groups:
- name: si
  interval: 1s
  rules:
  - alert: Loud
    expr: vector(1)
    labels: {severity: critical, host: h1}
  - alert: Muted
    expr: vector(1)
    labels: {severity: warning, host: h1}
  - alert: Other
    expr: vector(1)
    labels: {severity: warning, host: h2}
  - alert: Quiet
    expr: vector(1)
    labels: {severity: warning, host: h3}
""")
            cfg = """rule_files: [%s]
default_rules: false
rules:
  evaluation_interval: 1s
auth:
  admin_token_file: %s
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 6s
  group_interval: 1s
receivers:
  - name: hook
    webhook_configs:
    - url: %s/webhook
inhibit_rules:
  - source_matchers: [severity=critical]
    target_matchers: [severity=warning]
    equal: [host]
""" % (rules, tok, rec.url)
            agent = h.Agent(config=cfg, args=["--no-ebpf"]).start()
            body = json.dumps({"matchers": [{"name": "alertname", "value": "Quiet", "isRegex": False,
                                             "isEqual": True}],
                               "duration": "1h", "createdBy": "test", "comment": "quiet please"}).encode()
            r = h.http_post(agent.url + "/api/v2/silences", {"Authorization": "Bearer " + token,
                                                             "Content-Type": "application/json"}, body)
            self.assertEqual(r.status, 200, r.body)

            def names():
                return {a["labels"]["alertname"] for r_ in rec.got("webhook")
                        for a in json.loads(r_[3])["alerts"]}
            h.wait_for("Loud and Other notified", lambda: {"Loud", "Other"} <= names(), 30)
            time.sleep(3)
            self.assertEqual(names(), {"Loud", "Other"})
        finally:
            if agent:
                agent.stop()
            rec.stop()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
