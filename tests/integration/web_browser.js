/*
 * web_browser.js - drives the agent's web page in headless Chromium with
 * playwright-core for tests/integration/test_web.py, which starts the agent
 * and the containers and checks what this prints against the API.
 *
 *   node web_browser.js <config.json>
 * config: {url, chromium, container, marker, token, shots, many}
 * Prints one JSON object: per view the console errors, the charts (title,
 * series, points, queries, range, coloured pixels), timings, the log text,
 * the silence attempts. Assertions live in the Python test.
 */
"use strict";
const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const out = { views: {}, errors: [] };

async function waitLoaded(page, timeout) {
  await page.waitForFunction(() => document.body.getAttribute("data-loaded") === "1", null, { timeout: timeout || 15000 });
}

/* Charts of the page: attributes set by app.js, plus how many canvas pixels
 * are in a series' colour, i.e. whether lines were drawn. */
async function charts(page) {
  return page.evaluate(() => Array.from(document.querySelectorAll(".chart")).map((el) => {
    const cv = el.querySelector("canvas");
    let coloured = 0, nonblank = 0;
    if (cv) {
      const d = cv.getContext("2d").getImageData(0, 0, cv.width, cv.height).data;
      for (let i = 0; i < d.length; i += 4) {
        if (d[i + 3] > 0) nonblank++;
        /* Series are drawn in saturated colours, grid and axes in grey. */
        if (d[i + 3] > 100 && Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 60) coloured++;
      }
    }
    return {
      title: el.getAttribute("data-title"), series: +el.getAttribute("data-series"),
      points: +el.getAttribute("data-points"), projections: +el.getAttribute("data-projections"),
      forecast: JSON.parse(el.getAttribute("data-forecast") || "null"), drawMs: +el.getAttribute("data-draw-ms"),
      queries: JSON.parse(el.getAttribute("data-queries") || "[]"),
      range: JSON.parse(el.getAttribute("data-range") || "null"),
      canvas: !!cv, coloured, nonblank, text: el.textContent.slice(0, 200),
    };
  }));
}

async function visit(page, name, hash, extra) {
  const errs = [];
  const onConsole = (m) => { if (m.type() === "error") errs.push(m.text()); };
  const onErr = (e) => errs.push("pageerror: " + e.message);
  page.on("console", onConsole);
  page.on("pageerror", onErr);
  const t0 = Date.now();
  await page.goto(cfg.url + "/" + hash, { waitUntil: "load" });
  await waitLoaded(page);
  const loadMs = Date.now() - t0;
  const v = { loadMs, pageLoadMs: +(await page.getAttribute("body", "data-load-ms")) };
  if (extra) Object.assign(v, await extra(page));
  v.charts = await charts(page);
  await page.screenshot({ path: path.join(cfg.shots, name + "-" + page.viewportSize().width + ".png"), fullPage: false });
  page.off("console", onConsole);
  page.off("pageerror", onErr);
  v.consoleErrors = errs;
  return v;
}

(async () => {
  const browser = await chromium.launch({ executablePath: cfg.chromium, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    if (cfg.plain) {
      /* An agent with the default config: no notifier, no token, no rules
       * of ours. Every view still loads without console errors. */
      for (const [name, hash] of [["plain-overview", "#/"], ["plain-containers", "#/containers"], ["plain-alerts", "#/alerts"]])
        out.views[name] = await visit(page, name, hash, name === "plain-alerts" ? async (p) => ({ notes: await p.textContent("#notifications") }) : null);
      return;
    }
    out.views.overview = await visit(page, "overview", "#/", async (p) => {
      /* Auto-refresh (5 s by default) redraws without a reload. */
      const before = await p.getAttribute("body", "data-refreshes");
      await p.waitForFunction((b) => document.body.getAttribute("data-refreshes") !== b, before, { timeout: 15000 });
      return {
        stats: await p.textContent("#host-stats"),
        steps: await p.evaluate(() => [300, 3600, 21600, 86400, 604800, 2592000].map((r) => [r, window.monitorPage.stepFor(r)])),
        refreshed: true,
      };
    });
    out.views.containers = await visit(page, "containers", "#/containers", async (p) => ({
      rows: await p.$$eval("#containers tr[data-name]", (rs) => rs.map((r) => r.getAttribute("data-name"))),
      rowIds: await p.$$eval("#containers tr[data-id]", (rs) => rs.map((r) => r.getAttribute("data-id"))),
      groups: await p.$$eval("#containers tr.group", (rs) => rs.map((r) => r.textContent)),
    }));
    /* Filter and sort work on the live list. */
    await page.fill("#filter", cfg.container);
    out.views.containers.filtered = await page.$$eval("#containers tr[data-name]", (rs) => rs.map((r) => r.getAttribute("data-name")));
    await page.fill("#filter", "");
    await page.click('#containers th[data-key="mem"]');
    out.views.containers.sortedByMem = await page.$$eval("#containers tr[data-name]", (rs) => rs.map((r) => r.getAttribute("data-name")));

    out.views.detail = await visit(page, "detail", "#/c/" + encodeURIComponent(cfg.container), async (p) => {
      await p.waitForFunction((m) => document.getElementById("c-logs").textContent.indexOf(m) >= 0, cfg.marker, { timeout: 15000 });
      const first = await p.innerText("#c-logs");
      /* Live follow: a line the container prints after the page loaded. */
      const before = (first.match(new RegExp(cfg.marker + " (\\d+)", "g")) || []).map((s) => +s.split(" ").pop());
      const maxBefore = Math.max.apply(null, before);
      await p.waitForFunction(([m, n]) => {
        const t = document.getElementById("c-logs").innerText;
        const all = t.match(new RegExp(m + " (\\d+)", "g")) || [];
        return all.some((s) => +s.split(" ").pop() > n + 2);
      }, [cfg.marker, maxBefore], { timeout: 15000 });
      const after = await p.innerText("#c-logs");
      await p.waitForSelector("#processes", { timeout: 10000 });
      return {
        logsFirst: first, logsAfter: after, maxBefore,
        processes: await p.$$eval("#processes tr", (rs) => rs.length - 1),
        timeline: await p.$$eval("#timeline li", (rs) => rs.map((r) => r.textContent)).catch(() => []),
        ports: await p.textContent("#c-ports"), volumes: await p.textContent("#c-volumes"),
        info: await p.textContent("#c-info"),
      };
    });
    /* Search: only matching lines stay. */
    await page.fill("#log-search", "needle");
    await page.waitForFunction(() => { const t = document.getElementById("c-logs").textContent; return t.indexOf("needle") >= 0 && t.indexOf("h11tick") < 0; }, null, { timeout: 10000 });
    out.views.detail.searchText = await page.innerText("#c-logs");

    /* 24 h range: the charts read the 1 m tier; time to draw each. */
    await page.selectOption("#range", "86400");
    await waitLoaded(page);
    out.views.detail24h = { charts: await charts(page) };
    await page.selectOption("#range", "3600");

    out.views.alerts = await visit(page, "alerts", "#/alerts", async (p) => {
      await p.fill("#sil-matchers", 'alertname="H11WebTest"');
      await p.fill("#sil-token", "");
      await p.click("#sil-create");
      await p.waitForFunction(() => document.getElementById("sil-result").textContent.length > 0);
      const without = await p.textContent("#sil-result");
      await p.fill("#sil-token", cfg.token);
      await p.click("#sil-create");
      await p.waitForFunction(() => /created/.test(document.getElementById("sil-result").textContent));
      const withTok = await p.textContent("#sil-result");
      await p.waitForSelector("#silence-table tr[data-id]");
      return { without, withTok, silenceRows: await p.$$eval("#silence-table tr[data-id]", (rs) => rs.map((r) => r.getAttribute("data-id"))),
               alertsText: await p.textContent("#alerts-active"), notes: await p.textContent("#notifications") };
    });
    /* The refused attempt logs a 401 in the console by design; keep the
     * others. */
    out.views.alerts.consoleErrors = out.views.alerts.consoleErrors.filter((e) => !/status of 401/.test(e));

    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const pp = await phone.newPage();
    out.views.phoneOverview = await visit(pp, "overview", "#/");
    out.views.phoneDetail = await visit(pp, "detail", "#/c/" + encodeURIComponent(cfg.container));
    out.views.phoneContainers = await visit(pp, "containers", "#/containers");
    out.phoneScrollWidth = await pp.evaluate(() => document.documentElement.scrollWidth);

    if (cfg.many) {
      /* Page load with every container: a fresh page, median of 3. */
      const times = [];
      for (let i = 0; i < 3; i++) {
        const p2 = await ctx.newPage();
        const t0 = Date.now();
        await p2.goto(cfg.url + "/#/containers", { waitUntil: "load" });
        await waitLoaded(p2);
        times.push(Date.now() - t0);
        out.manyRows = await p2.$$eval("#containers tr[data-name]", (rs) => rs.length);
        await p2.close();
      }
      out.manyLoadMs = times.sort((a, b) => a - b)[1];
    }
  } catch (e) {
    out.errors.push(String(e && e.stack || e));
  } finally {
    await browser.close();
    process.stdout.write(JSON.stringify(out));
  }
})();
