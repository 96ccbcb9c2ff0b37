/*
 * app.js - monitor's web page: plain JS over the agent's own HTTP API, no
 * framework, charts with uPlot (dashboards/web/vendor/). Views are hash
 * routes: #/ host overview, #/containers list, #/c/<id-or-name> detail,
 * #/alerts alerts, silences and notification deliveries. Every value shown
 * comes from the agent's API; nothing is fetched from anywhere else.
 *
 * For tests and curious readers every chart's element carries
 * data-series (series drawn), data-points (points drawn) and data-draw-ms
 * (time from the data's arrival to the end of uPlot's draw).
 */
(function () {
  "use strict";

  var S = {
    range: 3600, refresh: 5, timer: null, view: null, gen: 0,
    charts: [], follow: null, refreshes: 0, sort: { key: "name", dir: 1 }, filter: "", group: "project",
  };

  /* ---------- helpers ---------- */
  function h(tag, attrs) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      var v = attrs[k];
      if (v == null || v === false) continue;
      if (k === "text") e.textContent = v;
      else if (k === "cls") e.className = v;
      else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (var i = 2; i < arguments.length; i++) add(e, arguments[i]);
    return e;
  }
  function add(e, c) {
    if (c == null || c === false) return;
    if (Array.isArray(c)) { c.forEach(function (x) { add(e, x); }); return; }
    e.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
  function api(path, opts) {
    return fetch(path, opts).then(function (r) {
      return r.text().then(function (t) {
        var j = null;
        try { j = t ? JSON.parse(t) : null; } catch (e) { j = { error: t }; }
        if (!r.ok) {
          var err = new Error((j && j.error) || r.status + " " + r.statusText);
          err.status = r.status;
          throw err;
        }
        return j;
      });
    });
  }
  function qs(o) {
    return Object.keys(o).filter(function (k) { return o[k] != null && o[k] !== ""; })
      .map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(o[k]); }).join("&");
  }
  function esc(v) { return String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"'); }
  function fmtBytes(v) {
    if (v == null || isNaN(v)) return "–";
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0, a = Math.abs(v);
    while (a >= 1024 && i < u.length - 1) { a /= 1024; v /= 1024; i++; }
    var t = i === 0 ? (a >= 10 || a === 0 ? v.toFixed(0) : v.toFixed(a < 1 ? 2 : 1)) : (a >= 100 ? v.toFixed(0) : v.toFixed(1));
    return t + " " + u[i];
  }
  function fmtRate(v) { return v == null || isNaN(v) ? "–" : fmtBytes(v) + "/s"; }
  function fmtPct(v) { return v == null || isNaN(v) ? "–" : (v * 100).toFixed(1) + " %"; }
  function fmtNum(v) {
    if (v == null || isNaN(v)) return "–";
    var a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + "G";
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e3) return (v / 1e3).toFixed(1) + "k";
    if (a >= 10 || a === 0) return v.toFixed(0);
    return v.toPrecision(2);
  }
  function fmtSecs(v) {
    if (v == null || isNaN(v)) return "–";
    if (v < 1e-3) return (v * 1e6).toFixed(0) + " µs";
    if (v < 1) return (v * 1e3).toFixed(1) + " ms";
    if (v < 120) return v.toFixed(1) + " s";
    if (v < 7200) return (v / 60).toFixed(0) + " min";
    if (v < 172800) return (v / 3600).toFixed(1) + " h";
    return (v / 86400).toFixed(1) + " d";
  }
  function toDate(t) { return new Date(typeof t === "number" ? t * 1000 : t); }
  function fmtTime(t) {
    var d = toDate(t);
    return isNaN(d) ? String(t) : d.toLocaleString();
  }
  function setStatus(msg, bad) {
    var s = document.getElementById("status");
    s.textContent = msg;
    s.className = bad ? "err" : "muted";
  }
  function fail(el, e) {
    add(el, h("div", { cls: "err", text: String(e && e.message || e) }));
  }

  /* Query step for a range: about 500 points, rounded so ranges of 3 h and
   * more read the store's 1 m tier and 2 d and more its 1 h tier. */
  function stepFor(range) {
    var raw = range / 500;
    if (range >= 2 * 86400) return Math.max(3600, Math.ceil(raw / 3600) * 3600);
    if (range >= 3 * 3600) return Math.max(60, Math.ceil(raw / 60) * 60);
    return Math.max(1, Math.ceil(raw));
  }
  /* The rate() window for a step: at least 4 steps and 30 s (60 s on tiers). */
  function win(step) { return Math.max(step * 4, step >= 60 ? 120 : 30) + "s"; }

  function instant(q) {
    return api("/api/v1/query?" + qs({ query: q })).then(function (j) { return j.data.result; });
  }
  function byLabel(result, label) {
    var m = {};
    result.forEach(function (r) { m[r.metric[label] || ""] = parseFloat(r.value[1]); });
    return m;
  }

  /* ---------- charts ---------- */
  var COLORS = ["#2f6fde", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0c8599", "#5c940d", "#d9480f", "#495057", "#ae3ec9"];

  function labelOf(metric, legend) {
    if (legend) return legend.replace(/\{\{(\w+)\}\}/g, function (_, k) { return metric[k] || ""; });
    var keys = Object.keys(metric).filter(function (k) { return k !== "__name__" && k !== "id" && k !== "image"; });
    return keys.length ? keys.map(function (k) { return metric[k]; }).join(" ") : (metric.__name__ || "value");
  }
  /* A short form of a series' id label: the 12 hex digits Docker shows for
   * a container cgroup, else the last path element. */
  function shortId(id) {
    if (!id) return "";
    var m = /([0-9a-f]{12})[0-9a-f]{52}/.exec(id);
    return m ? m[1] : id.replace(/\/+$/, "").split("/").pop();
  }
  /* Series with one legend (a container recreated under its name has a new
   * id, so two "working set" lines) are told apart by their ids. */
  function distinctLabels(series, metrics) {
    var seen = {};
    series.forEach(function (s, i) { if (i) seen[s.label] = (seen[s.label] || 0) + 1; });
    series.forEach(function (s, i) {
      var id = i && metrics[i] && shortId(metrics[i].id);
      if (id && seen[s.label] > 1) s.label += " (" + id + ")";
    });
  }

  /*
   * A chart card: spec = {title, fmt, queries: [{q, legend, dash}], extra}
   * where extra(ts, end) may return {xs: [future timestamps], series: [...]}
   * for projections. Fetches every query over the current range, merges
   * the series on the step grid and draws them with uPlot.
   */
  function chartCard(parent, spec) {
    var box = h("div", { cls: "chart", "data-title": spec.title });
    var card = h("div", { cls: "card" }, h("h3", { text: spec.title }), box);
    parent.appendChild(card);
    var c = { box: box, spec: spec, plot: null };
    S.charts.push(c);
    return c;
  }

  function drawChart(c, gen) {
    var spec = c.spec, end = Math.floor(Date.now() / 1000), step = stepFor(S.range);
    var start = end - S.range;
    start -= start % step;
    var t0 = performance.now();
    var expanded = spec.queries.map(function (q) { return q.q.replace(/\$w/g, win(step)); });
    c.box.setAttribute("data-queries", JSON.stringify(expanded));
    c.box.setAttribute("data-range", JSON.stringify([start, end, step]));
    return Promise.all(expanded.map(function (query) {
      return api("/api/v1/query_range?" + qs({ query: query, start: start, end: end, step: step }))
        .then(function (j) { return j.data.result; });
    }).concat(spec.wait ? [spec.wait()] : [])).then(function (results) {
      if (spec.wait) results.pop();
      if (gen !== S.gen) return;
      var tFetched = performance.now();
      var n = Math.floor((end - start) / step) + 1, xs = new Array(n), i;
      for (i = 0; i < n; i++) xs[i] = start + i * step;
      var series = [{}], data = [xs], points = 0, metrics = [null];
      results.forEach(function (res, qi) {
        var q = spec.queries[qi];
        res.forEach(function (r) {
          var ys = new Array(n).fill(null);
          r.values.forEach(function (v) {
            var k = Math.round((v[0] - start) / step);
            if (k >= 0 && k < n) { ys[k] = parseFloat(v[1]); points++; }
          });
          var color = q.color || COLORS[(series.length - 1) % COLORS.length];
          series.push({ label: labelOf(r.metric, q.legend), stroke: color, width: 1.5, dash: q.dash,
                        fill: q.fill ? color + "22" : undefined, spanGaps: false,
                        value: function (u, v) { return v == null ? "–" : (spec.fmt || fmtNum)(v); } });
          data.push(ys);
          metrics.push(r.metric);
        });
      });
      distinctLabels(series, metrics);
      var drawn = series.length - 1;
      c.box.setAttribute("data-projections", "0");
      if (spec.extra) {
        var ex = spec.extra(xs, end, step, c);
        if (ex && ex.xs.length) {
          var m = ex.xs.length;
          for (i = 1; i < data.length; i++) data[i] = data[i].concat(new Array(m).fill(null));
          xs = data[0] = xs.concat(ex.xs);
          c.box.setAttribute("data-projections", "1");
          ex.series.forEach(function (s) {
            series.push({ label: s.label, stroke: s.color, width: 2, dash: [6, 4],
                          value: function (u, v) { return v == null ? "–" : (spec.fmt || fmtNum)(v); } });
            data.push(new Array(n).fill(null).concat(s.ys).slice(0, xs.length));
          });
        }
      }
      c.box.setAttribute("data-series", String(drawn));
      c.box.setAttribute("data-points", String(points));
      c.box.setAttribute("data-fetch-ms", (tFetched - t0).toFixed(1));
      if (!drawn) {
        if (c.plot) { c.plot.destroy(); c.plot = null; }
        c.box.textContent = "";
        c.box.appendChild(h("div", { cls: "empty", text: spec.empty || "no data in this range" }));
        c.box.setAttribute("data-draw-ms", "0");
        return;
      }
      /* A value with no neighbour (a young agent, a short-lived series)
       * draws no line: show it as a point. */
      series.forEach(function (sr, si) {
        if (!si) return;
        var ys = data[si], iso = [];
        for (var k = 0; k < ys.length; k++)
          if (ys[k] != null && (k === 0 || ys[k - 1] == null) && (k === ys.length - 1 || ys[k + 1] == null)) iso.push(k);
        sr.points = { size: 5, filter: function (u, idx, show) { return show ? null : (iso.length ? iso : null); } };
      });
      var width = Math.max(240, c.box.clientWidth || 360);
      var opts = {
        width: width, height: 200, series: series, legend: { live: true },
        cursor: { drag: { x: false, y: false } },
        axes: [{}, { size: 78, values: function (u, vals) { return vals.map(function (v) { return (spec.fmt || fmtNum)(v); }); } }],
        scales: { x: { time: true }, y: spec.ymin0 === false ? {} : { range: function (u, lo, hi) { return [Math.min(0, lo), hi > 0 ? hi * 1.05 : 1]; } } },
      };
      var td = performance.now();
      if (c.plot) c.plot.destroy();
      c.box.textContent = "";
      c.plot = new uPlot(opts, data, c.box);
      c.box.setAttribute("data-draw-ms", (performance.now() - td).toFixed(1));
    }).catch(function (e) {
      if (gen !== S.gen) return;
      c.box.textContent = "";
      c.box.setAttribute("data-series", "0");
      fail(c.box, e);
    });
  }

  function redrawCharts() {
    var gen = S.gen;
    return Promise.all(S.charts.map(function (c) { return drawChart(c, gen); }));
  }

  /* ---------- views ---------- */
  function stateCounts(list) {
    var m = {};
    list.forEach(function (c) { m[c.state || "unknown"] = (m[c.state || "unknown"] || 0) + 1; });
    return m;
  }
  /* Long values (image names, dates) in a smaller face: at full size they
   * broke into three lines in a 150 px card. */
  function stat(k, v, id) {
    return h("div", { cls: "card stat", id: id }, h("div", { cls: String(v).length > 12 ? "v long" : "v", text: v }),
      h("div", { cls: "k", text: k }));
  }
  function alertTable(alerts) {
    if (!alerts.length) return h("p", { cls: "muted", text: "no alerts firing or pending" });
    return h("div", { cls: "scroll" }, h("table", { cls: "alerts" },
      h("tr", null, h("th", { text: "state" }), h("th", { text: "alert" }), h("th", { text: "container" }),
        h("th", { text: "severity" }), h("th", { text: "since" }), h("th", { cls: "hide-phone", text: "summary" })),
      alerts.map(function (a) {
        var l = a.labels || {};
        return h("tr", null, h("td", null, h("span", { cls: "pill alert-" + a.state, text: a.state + (a.silenced ? " (silenced)" : "") })),
          h("td", { text: l.alertname }), h("td", null, l.name ? h("a", { href: "#/c/" + encodeURIComponent(l.name), text: l.name }) : "–"),
          h("td", { text: l.severity || "" }), h("td", { text: a.activeAt ? fmtTime(a.activeAt) : "" }),
          h("td", { cls: "hide-phone", text: (a.annotations && (a.annotations.summary || a.annotations.description)) || "" }));
      })));
  }

  function viewOverview(main, gen) {
    main.appendChild(h("h2", { text: "Host" }));
    var stats = h("div", { cls: "stats", id: "host-stats" });
    main.appendChild(stats);
    var grid = h("div", { cls: "grid" });
    main.appendChild(grid);
    chartCard(grid, { title: "Host CPU busy", fmt: fmtPct, queries: [
      { q: "1 - rate(machine_cpu_idle_seconds_total[$w]) / rate(machine_cpu_seconds_total[$w])", legend: "busy", fill: true }] });
    chartCard(grid, { title: "Host memory in use", fmt: fmtBytes, queries: [
      { q: "machine_memory_bytes - machine_memory_available_bytes", legend: "in use", fill: true },
      { q: "machine_memory_bytes", legend: "installed", dash: [4, 4], color: "#868e96" }] });
    chartCard(grid, { title: "Containers' CPU (top 10, cores)", queries: [
      { q: "topk(10, sum by (name) (rate(container_cpu_usage_seconds_total{name!=\"\"}[$w])))", legend: "{{name}}" }] });
    chartCard(grid, { title: "Containers' network", fmt: fmtRate, queries: [
      { q: "sum(rate(container_network_receive_bytes_total[$w]))", legend: "receive" },
      { q: "sum(rate(container_network_transmit_bytes_total[$w]))", legend: "transmit" },
      { q: "sum(rate(container_network_socket_receive_bytes_total[$w]))", legend: "sockets receive (eBPF)", dash: [2, 2] },
      { q: "sum(rate(container_network_socket_transmit_bytes_total[$w]))", legend: "sockets transmit (eBPF)", dash: [2, 2] }] });
    chartCard(grid, { title: "Containers' disk I/O", fmt: fmtRate, queries: [
      { q: "sum(rate(container_fs_reads_bytes_total[$w]))", legend: "read" },
      { q: "sum(rate(container_fs_writes_bytes_total[$w]))", legend: "write" }] });
    chartCard(grid, { title: "Host filesystems used", fmt: fmtPct, queries: [
      { q: "machine_fs_usage_bytes / machine_fs_limit_bytes", legend: "{{mountpoint}}" }] });
    var alertsCard = h("div", { cls: "card", id: "host-alerts" }, h("h3", { text: "Firing and pending alerts" }));
    main.appendChild(h("div", { style: "margin-top:12px" }, alertsCard));

    return function refresh() {
      return Promise.all([
        api("/api/v1/containers"),
        instant("1 - rate(machine_cpu_idle_seconds_total[1m]) / rate(machine_cpu_seconds_total[1m])").catch(function () { return []; }),
        instant("machine_fs_usage_bytes").catch(function () { return []; }),
        instant("machine_fs_limit_bytes").catch(function () { return []; }),
        api("/api/v1/alerts").catch(function () { return { data: { alerts: [] } }; }),
      ]).then(function (r) {
        if (gen !== S.gen) return;
        var list = r[0].data || [], m = r[0].machine || {};
        var counts = stateCounts(list), cpu = r[1].length ? parseFloat(r[1][0].value[1]) : null;
        var used = byLabel(r[2], "mountpoint"), lim = byLabel(r[3], "mountpoint");
        var root = used["/"] != null ? "/" : Object.keys(used)[0];
        stats.textContent = "";
        add(stats, [
          stat("CPU busy (" + (m.machine_cpu_cores || m.machine_cpu_logical_cores || "?") + " CPUs)", fmtPct(cpu)),
          stat("memory in use of " + fmtBytes(m.machine_memory_bytes), m.machine_memory_bytes ?
            fmtPct((m.machine_memory_bytes - m.machine_memory_available_bytes) / m.machine_memory_bytes) : "–"),
          stat("disk " + (root || ""), root && lim[root] ? fmtPct(used[root] / lim[root]) : "–"),
          stat("load 1/5/15", [m.machine_load1, m.machine_load5, m.machine_load15].map(function (x) { return x == null ? "–" : x.toFixed(2); }).join(" ")),
        ]);
        Object.keys(counts).sort().forEach(function (k) { add(stats, stat("containers " + k, counts[k], "count-" + k)); });
        var alerts = (r[4].data && r[4].data.alerts) || [];
        alertsCard.textContent = "";
        add(alertsCard, [h("h3", { text: "Firing and pending alerts" }), alertTable(alerts)]);
      });
    };
  }

  function viewContainers(main, gen) {
    main.appendChild(h("h2", { text: "Containers" }));
    var filter = h("input", { type: "text", id: "filter", placeholder: "filter by name, image, project…", value: S.filter });
    var group = h("select", { id: "group" },
      [["project", "group by compose project / pod"], ["none", "no grouping"]].map(function (o) {
        return h("option", { value: o[0], selected: S.group === o[0] }, o[1]);
      }));
    var count = h("span", { cls: "muted" });
    main.appendChild(h("div", { cls: "toolbar" }, filter, group, count));
    var wrap = h("div", { cls: "card scroll" });
    main.appendChild(wrap);
    var rows = [];
    /* Columns a phone-sized window leaves out. */
    var PHONE_HIDDEN = { health: 1, memPct: 1, rx: 1, tx: 1, image: 1 };
    var cols = [
      ["name", "name"], ["state", "state"], ["health", "health"], ["cpu", "CPU (cores)", true], ["mem", "memory", true],
      ["memPct", "of limit", true], ["rx", "net in", true], ["tx", "net out", true], ["alerts", "alerts", true],
      ["image", "image"],
    ];
    function render() {
      var f = S.filter.toLowerCase();
      var vis = rows.filter(function (r) {
        return !f || [r.name, r.image, r.project, r.state].join(" ").toLowerCase().indexOf(f) >= 0;
      });
      var k = S.sort.key, d = S.sort.dir;
      vis.sort(function (a, b) {
        var x = a[k], y = b[k];
        if (x == null) x = typeof y === "number" ? -Infinity : "";
        if (y == null) y = typeof x === "number" ? -Infinity : "";
        return (x < y ? -1 : x > y ? 1 : 0) * d;
      });
      var groups = {};
      vis.forEach(function (r) { var g = S.group === "none" ? "" : r.project; (groups[g] = groups[g] || []).push(r); });
      var tbl = h("table", { id: "containers" }, h("tr", null, cols.map(function (c) {
        return h("th", { cls: "sortable" + (c[2] ? " num" : "") + (PHONE_HIDDEN[c[0]] ? " hide-phone" : ""), "data-key": c[0],
                         onclick: function () { S.sort = { key: c[0], dir: S.sort.key === c[0] ? -S.sort.dir : (c[2] ? -1 : 1) }; render(); } },
          c[1] + (S.sort.key === c[0] ? (S.sort.dir > 0 ? " ▲" : " ▼") : ""));
      })));
      Object.keys(groups).sort().forEach(function (g) {
        if (S.group !== "none") tbl.appendChild(h("tr", { cls: "group" }, h("td", { colspan: cols.length, text: (g || "(no project or pod)") + " · " + groups[g].length })));
        groups[g].forEach(function (r) {
          tbl.appendChild(h("tr", { "data-name": r.name, "data-id": r.id },
            h("td", null, h("a", { href: "#/c/" + encodeURIComponent(r.name || r.id), text: r.name || r.id.slice(0, 12) })),
            h("td", null, h("span", { cls: "pill s-" + r.state, text: r.state })),
            h("td", { cls: "hide-phone" }, r.health ? h("span", { cls: "pill h-" + r.health, text: r.health }) : ""),
            h("td", { cls: "num", text: r.cpu == null ? "–" : r.cpu.toFixed(3) }),
            h("td", { cls: "num", text: fmtBytes(r.mem) }),
            h("td", { cls: "num hide-phone", text: r.memPct == null ? "–" : fmtPct(r.memPct) }),
            h("td", { cls: "num hide-phone", text: fmtRate(r.rx) }),
            h("td", { cls: "num hide-phone", text: fmtRate(r.tx) }),
            h("td", { cls: "num" }, r.alerts ? h("span", { cls: "pill alert-firing", title: r.alertNames.join(", "), text: "⚠ " + r.alerts }) : ""),
            h("td", { cls: "hide-phone", text: r.image || "" })));
        });
      });
      wrap.textContent = "";
      wrap.appendChild(tbl);
      count.textContent = vis.length + " of " + rows.length + " containers";
    }
    filter.addEventListener("input", function () { S.filter = filter.value; render(); });
    group.addEventListener("change", function () { S.group = group.value; render(); });

    return function refresh() {
      return Promise.all([
        api("/api/v1/containers"),
        instant("sum by (name) (rate(container_cpu_usage_seconds_total[30s]))").catch(function () { return []; }),
        instant("sum by (name) (rate(container_network_receive_bytes_total[30s])) or sum by (name) (rate(container_network_socket_receive_bytes_total[30s]))").catch(function () { return []; }),
        instant("sum by (name) (rate(container_network_transmit_bytes_total[30s])) or sum by (name) (rate(container_network_socket_transmit_bytes_total[30s]))").catch(function () { return []; }),
        api("/api/v1/alerts").catch(function () { return { data: { alerts: [] } }; }),
      ]).then(function (r) {
        if (gen !== S.gen) return;
        var list = r[0].data || [], cpu = byLabel(r[1], "name"), rx = byLabel(r[2], "name"), tx = byLabel(r[3], "name");
        var al = {};
        (r[4].data.alerts || []).forEach(function (a) {
          var n = a.labels && a.labels.name;
          if (n && a.state === "firing") (al[n] = al[n] || []).push(a.labels.alertname);
        });
        rows = list.map(function (c) {
          var v = c.values || {}, mem = v.container_memory_working_set_bytes, lim = v.container_spec_memory_limit_bytes;
          var labels = c.labels || {};
          return {
            id: c.id, name: c.name, image: c.image, state: c.state, health: c.health,
            project: c.compose_project || (c.pod ? (c.namespace ? c.namespace + "/" : "") + c.pod : "") || labels["com.docker.compose.project"] || "",
            cpu: cpu[c.name], mem: mem, memPct: mem != null && lim ? mem / lim : null, rx: rx[c.name], tx: tx[c.name],
            alerts: (al[c.name] || []).length, alertNames: al[c.name] || [],
          };
        });
        render();
      });
    };
  }

  function kvTable(headers, rows, id) {
    if (!rows.length) return h("p", { cls: "muted", text: "none" });
    return h("div", { cls: "scroll" }, h("table", { id: id }, h("tr", null, headers.map(function (x) { return h("th", { text: x }); })),
      rows.map(function (r) { return h("tr", null, r.map(function (x) { return h("td", { text: x == null ? "–" : x }); })); })));
  }

  function viewContainer(main, gen, key) {
    var title = h("h2", { text: "Container " + key });
    var info = h("div", { cls: "stats", id: "c-info" });
    main.appendChild(title);
    main.appendChild(info);
    var grid = h("div", { cls: "grid" });
    main.appendChild(grid);
    var sel = '{name="' + esc(key) + '"}';
    var selc = function (extra) { return '{name="' + esc(key) + '"' + (extra ? "," + extra : "") + "}"; };
    var fc = null, fcP = null; /* the memory forecast, fetched with each refresh */
    function loadForecast() {
      fcP = api("/api/v1/containers/" + encodeURIComponent(key) + "/forecast")
        .then(function (j) { fc = j.data; }).catch(function () { fc = null; });
      return fcP;
    }
    chartCard(grid, { title: "CPU (cores) and throttling", queries: [
      { q: "sum(rate(container_cpu_usage_seconds_total" + sel + "[$w]))", legend: "usage", fill: true },
      { q: "sum(rate(container_cpu_cfs_throttled_seconds_total" + sel + "[$w]))", legend: "throttled", color: "#d9480f" },
      { q: "container_spec_cpu_quota" + sel + " / container_spec_cpu_period" + sel, legend: "limit", dash: [4, 4], color: "#868e96" }] });
    chartCard(grid, { title: "Memory against its limit, with forecast", fmt: fmtBytes, queries: [
      { q: "container_memory_working_set_bytes" + sel, legend: "working set", fill: true },
      { q: "container_memory_usage_bytes" + sel, legend: "usage" },
      { q: "container_spec_memory_limit_bytes" + sel + " > 0", legend: "limit", dash: [4, 4], color: "#d92d20" }],
      wait: function () { return fcP || loadForecast(); },
      extra: function (xs, end, step, c) {
        var m = fc && fc.resources && fc.resources.filter(function (r) { return r.resource === "memory"; })[0];
        c.box.setAttribute("data-forecast", JSON.stringify(m || null));
        if (!m || m.now == null || m.trend_per_second == null || !m.limit) return null;
        var horizon = m.exhaustion_seconds != null ? Math.min(m.exhaustion_seconds, S.range) : S.range / 4;
        var k = 24, fx = [], fy = [];
        for (var i = 1; i <= k; i++) {
          var t = horizon * i / k;
          fx.push(end + t);
          fy.push(Math.min(m.limit, Math.max(0, m.now + m.trend_per_second * t)));
        }
        return { xs: fx, series: [
          { label: "forecast (" + (m.model || "trend") + ")" + (m.exhaustion_seconds != null ? ", limit in " + fmtSecs(m.exhaustion_seconds) : ""), color: "#7048e8", ys: fy },
          { label: "limit ahead", color: "#d92d20", ys: fx.map(function () { return m.limit; }) }] };
      } });
    chartCard(grid, { title: "Network", fmt: fmtRate, queries: [
      { q: "sum(rate(container_network_receive_bytes_total" + sel + "[$w]))", legend: "receive" },
      { q: "sum(rate(container_network_transmit_bytes_total" + sel + "[$w]))", legend: "transmit" },
      { q: "sum(rate(container_network_socket_receive_bytes_total" + sel + "[$w]))", legend: "sockets receive (eBPF)", dash: [2, 2] },
      { q: "sum(rate(container_network_socket_transmit_bytes_total" + sel + "[$w]))", legend: "sockets transmit (eBPF)", dash: [2, 2] }] });
    chartCard(grid, { title: "Disk I/O", fmt: fmtRate, queries: [
      { q: "sum(rate(container_fs_reads_bytes_total" + sel + "[$w]))", legend: "read" },
      { q: "sum(rate(container_fs_writes_bytes_total" + sel + "[$w]))", legend: "write" }] });
    chartCard(grid, { title: "TCP health (eBPF)", empty: "no TCP series (eBPF probe off or no TCP traffic)", queries: [
      { q: "container_network_tcp_established_connections" + sel, legend: "established" },
      { q: "sum(rate(container_network_tcp_retransmits_total" + sel + "[$w]))", legend: "retransmits/s" },
      { q: "sum by (direction) (rate(container_network_tcp_resets_total" + sel + "[$w]))", legend: "resets {{direction}}/s" },
      { q: "sum(rate(container_network_tcp_connect_failures_total" + sel + "[$w]))", legend: "connect failures/s" }] });
    chartCard(grid, { title: "Latency (eBPF): TCP connect and block I/O, p95", fmt: fmtSecs, empty: "no latency series (eBPF probe off or no I/O)", queries: [
      { q: "histogram_quantile(0.95, sum by (le) (rate(container_network_tcp_connect_duration_seconds_bucket" + sel + "[$w])))", legend: "TCP connect p95" },
      { q: "histogram_quantile(0.95, sum by (le, operation) (rate(container_block_io_duration_seconds_bucket" + sel + "[$w])))", legend: "block {{operation}} p95" }] });

    var procs = h("div", { cls: "card", id: "c-procs" }, h("h3", { text: "Processes" }));
    var ports = h("div", { cls: "card", id: "c-ports" }, h("h3", { text: "Listening ports" }));
    var vols = h("div", { cls: "card", id: "c-volumes" }, h("h3", { text: "Volumes and mounts" }));
    var events = h("div", { cls: "card", id: "c-events" }, h("h3", { text: "Event timeline" }));
    var grid2 = h("div", { cls: "grid", style: "margin-top:12px" }, procs, ports, vols, events);
    main.appendChild(grid2);

    var search = h("input", { type: "text", id: "log-search", placeholder: "search logs (full text)" });
    var followBox = h("input", { type: "checkbox", id: "log-follow", checked: true });
    var logs = h("div", { cls: "logs", id: "c-logs" });
    main.appendChild(h("div", { cls: "card", style: "margin-top:12px" }, h("h3", { text: "Logs" }),
      h("div", { cls: "toolbar" }, search, h("label", null, followBox, " live follow")), logs));
    var lastSeq = 0;
    function logLine(l) {
      var lv = l.level || "unknown";
      return h("div", { cls: "l-" + lv + (l.stream === "stderr" ? " stderr" : "") },
        h("span", { cls: "ts", text: toDate(l.time).toLocaleTimeString() + " " }), l.message);
    }
    function appendLines(lines) {
      var atEnd = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
      lines.forEach(function (l) { if (l.seq > lastSeq) lastSeq = l.seq; logs.appendChild(logLine(l)); });
      while (logs.childNodes.length > 2000) logs.removeChild(logs.firstChild);
      if (atEnd) logs.scrollTop = logs.scrollHeight;
    }
    function stopFollow() { if (S.follow) { S.follow.abort(); S.follow = null; } }
    function startFollow() {
      stopFollow();
      if (!followBox.checked || gen !== S.gen) return;
      var ctl = new AbortController();
      S.follow = ctl;
      var url = "/api/v1/logs?" + qs({ container: key, q: search.value, follow: 1, after: lastSeq || null, tail: lastSeq ? null : 0 });
      fetch(url, { signal: ctl.signal }).then(function (r) {
        if (!r.ok || !r.body) return;
        var reader = r.body.getReader(), dec = new TextDecoder(), rest = "";
        function pump() {
          return reader.read().then(function (x) {
            if (x.done || gen !== S.gen) return;
            rest += dec.decode(x.value, { stream: true });
            var parts = rest.split("\n");
            rest = parts.pop();
            var got = [];
            parts.forEach(function (p) {
              if (!p.trim()) return;
              try { var o = JSON.parse(p); if (o.message != null && o.seq > lastSeq) got.push(o); } catch (e) { /* keep-alive */ }
            });
            if (got.length) appendLines(got);
            return pump();
          });
        }
        return pump();
      }).catch(function () { /* aborted */ });
    }
    function loadLogs() {
      stopFollow();
      lastSeq = 0;
      return api("/api/v1/logs?" + qs({ container: key, q: search.value, tail: 200 })).then(function (j) {
        if (gen !== S.gen) return;
        logs.textContent = "";
        var lines = (j.data && j.data.lines) || [];
        if (!lines.length) logs.appendChild(h("div", { cls: "muted", text: "no log lines" + (search.value ? " match" : "") }));
        appendLines(lines);
        lastSeq = Math.max(lastSeq, (j.data && j.data.last_seq) || 0);
        logs.scrollTop = logs.scrollHeight;
        startFollow();
      }).catch(function (e) { logs.textContent = ""; fail(logs, e); });
    }
    var t = null;
    search.addEventListener("input", function () { clearTimeout(t); t = setTimeout(loadLogs, 300); });
    followBox.addEventListener("change", function () { if (followBox.checked) loadLogs(); else stopFollow(); });
    loadLogs();

    var first = true;
    return function refresh() {
      var id = encodeURIComponent(key);
      return Promise.all([
        api("/api/v1/containers/" + id).catch(function (e) { return { error: e }; }),
        loadForecast(),
      ]).then(function (r) {
        if (gen !== S.gen) return;
        if (r[0].error) { info.textContent = ""; fail(info, r[0].error); return; }
        var c = r[0].data || {}, v = c.values || {};
        title.textContent = "Container " + (c.name || c.id);
        info.textContent = "";
        add(info, [
          stat("state", c.state || "–"), stat("health", c.health || "–"), stat("image", c.image || "–"),
          stat("memory / limit", fmtBytes(v.container_memory_working_set_bytes) + " / " + (v.container_spec_memory_limit_bytes ? fmtBytes(v.container_spec_memory_limit_bytes) : "∞")),
          stat("processes", v.container_processes == null ? "–" : v.container_processes),
          stat("restarts", c.restart_count == null ? "–" : c.restart_count),
          stat("started", c.start_time ? fmtTime(c.start_time) : "–"),
        ]);
        vols.textContent = "";
        add(vols, [h("h3", { text: "Volumes and mounts" }), kvTable(["type", "source", "destination", "rw"],
          (c.mounts || []).map(function (m) { return [m.type, m.name || m.source, m.destination, m.rw ? "rw" : "ro"]; }), "volumes")]);
        return Promise.all([
          api("/api/v1/containers/" + id + "/processes").catch(function (e) { return { error: e }; }),
          api("/api/v1/containers/" + id + "/ports").catch(function (e) { return { error: e }; }),
          api("/api/v1/events?" + qs({ container: c.id, since: S.range + "s", limit: 200 })).catch(function (e) { return { error: e }; }),
        ]).then(function (x) {
          if (gen !== S.gen) return;
          procs.textContent = "";
          procs.appendChild(h("h3", { text: "Processes" }));
          if (x[0].error) fail(procs, x[0].error);
          else add(procs, kvTable(["pid", "user", "CPU %", "RSS", "command"],
            ((x[0].data || {}).processes || []).map(function (p) { return [p.pid, p.user, p.cpu_percent == null ? null : p.cpu_percent.toFixed(1), fmtBytes(p.rss_bytes), p.command]; }), "processes"));
          ports.textContent = "";
          ports.appendChild(h("h3", { text: "Listening ports" }));
          if (x[1].error) fail(ports, x[1].error);
          else add(ports, kvTable(["proto", "address", "port", "command"],
            ((x[1].data || {}).listening || []).map(function (p) { return [p.protocol, p.address, p.port, p.command]; })
              .concat((c.ports || []).map(function (p) { return ["published", p.host_ip, p.host_port + " → " + p.container_port + "/" + p.protocol, ""]; })), "ports"));
          events.textContent = "";
          events.appendChild(h("h3", { text: "Event timeline" }));
          if (x[2].error) fail(events, x[2].error);
          else {
            var evs = (x[2].data || []).slice().reverse();
            if (!evs.length) events.appendChild(h("p", { cls: "muted", text: "no events in this range" }));
            else events.appendChild(h("ul", { cls: "timeline", id: "timeline" }, evs.map(function (e) {
              return h("li", null, h("span", { cls: "muted", text: fmtTime(e.time) + " " }), h("b", { text: e.type }), " ", e.detail || "");
            })));
          }
          first = false;
        });
      });
    };
  }

  function viewAlerts(main, gen) {
    main.appendChild(h("h2", { text: "Alerts" }));
    var active = h("div", { cls: "card", id: "alerts-active", style: "margin-bottom:12px" });
    main.appendChild(active);
    var grid = h("div", { cls: "grid" });
    main.appendChild(grid);
    chartCard(grid, { title: "Alert history (firing)", empty: "no alert fired in this range", queries: [
      { q: "count by (alertname) (ALERTS{alertstate=\"firing\"})", legend: "{{alertname}}" }] });
    chartCard(grid, { title: "Alert history (pending)", empty: "no alert pending in this range", queries: [
      { q: "count by (alertname) (ALERTS{alertstate=\"pending\"})", legend: "{{alertname}}" }] });
    chartCard(grid, { title: "Notifications by result", empty: "no notifications in this range", queries: [
      { q: "sum by (result) (increase(monitor_notifications_total[$w]))", legend: "{{result}}" }] });

    var token = h("input", { type: "password", id: "sil-token", placeholder: "admin token", autocomplete: "off", value: sessionStorage.getItem("monitor-token") || "" });
    var matchers = h("input", { type: "text", id: "sil-matchers", placeholder: 'alertname="HighMemory", name=~"web.*"' });
    var dur = h("input", { type: "text", id: "sil-duration", value: "2h" });
    var by = h("input", { type: "text", id: "sil-by", value: "web page" });
    var comment = h("input", { type: "text", id: "sil-comment", placeholder: "why" });
    var result = h("div", { id: "sil-result" });
    var form = h("form", { cls: "silence", id: "sil-form" },
      h("label", null, "matchers", matchers), h("label", null, "duration", dur), h("label", null, "created by", by),
      h("label", null, "comment", comment), h("label", null, "admin token", token), h("button", { type: "submit", id: "sil-create", text: "Create silence" }));
    var silList = h("div", { id: "silences" });
    main.appendChild(h("div", { cls: "card", style: "margin-top:12px" }, h("h3", { text: "Silences" }), form, result, silList));
    var notes = h("div", { cls: "card", id: "notifications", style: "margin-top:12px" });
    main.appendChild(notes);

    function authHeaders() {
      var t = token.value.trim();
      if (t) sessionStorage.setItem("monitor-token", t);
      return t ? { Authorization: "Bearer " + t } : {};
    }
    function parseMatchers(s) {
      var out = [], re = /\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?/g, m, used = 0;
      while ((m = re.exec(s))) {
        out.push({ name: m[1], value: m[3].replace(/\\(.)/g, "$1"), isRegex: m[2].indexOf("~") >= 0, isEqual: m[2][0] !== "!" });
        used = re.lastIndex;
      }
      if (!out.length || s.slice(used).trim()) throw new Error('matchers: write name="value", name=~"regex", … (comma separated)');
      return out;
    }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      result.textContent = "";
      var body;
      try {
        body = { matchers: parseMatchers(matchers.value), duration: dur.value, createdBy: by.value || "web page", comment: comment.value || "from the web page" };
      } catch (e) { fail(result, e); return; }
      var hd = authHeaders();
      hd["Content-Type"] = "application/json";
      api("/api/v2/silences", { method: "POST", headers: hd, body: JSON.stringify(body) }).then(function (j) {
        result.appendChild(h("span", { cls: "ok", text: "silence " + j.silenceID + " created" }));
        return refresh();
      }).catch(function (e) {
        fail(result, (e.status === 401 || e.status === 403 ? "refused (" + e.status + "): " : "") + e.message);
      });
    });
    function expire(id) {
      result.textContent = "";
      api("/api/v2/silence/" + encodeURIComponent(id), { method: "DELETE", headers: authHeaders() }).then(function () {
        result.appendChild(h("span", { cls: "ok", text: "silence " + id + " expired" }));
        return refresh();
      }).catch(function (e) { fail(result, e); });
    }

    function refresh() {
      return Promise.all([
        api("/api/v1/alerts").catch(function (e) { return { error: e }; }),
        api("/api/v2/silences").catch(function (e) { return { error: e }; }),
        /* Without a notifier the endpoint answers 503 (and the browser logs
         * it): ask only when the notifier's queue gauge exists. */
        instant("monitor_notification_queue_length").then(function (r) {
          if (!r.length) return { error: { status: 503, message: "no notifier: the config has no route: and receivers:" } };
          return api("/api/v1/notifications?limit=50");
        }).catch(function (e) { return { error: e }; }),
      ]).then(function (r) {
        if (gen !== S.gen) return;
        active.textContent = "";
        active.appendChild(h("h3", { text: "Firing and pending" }));
        if (r[0].error) fail(active, r[0].error); else active.appendChild(alertTable(r[0].data.alerts || []));
        silList.textContent = "";
        if (r[1].error) fail(silList, r[1].error);
        else {
          var sils = Array.isArray(r[1]) ? r[1] : (r[1].data || []);
          if (!sils.length) silList.appendChild(h("p", { cls: "muted", text: "no silences" }));
          else silList.appendChild(h("div", { cls: "scroll" }, h("table", { id: "silence-table" },
            h("tr", null, ["state", "matchers", "ends", "by", "comment", ""].map(function (x) { return h("th", { text: x }); })),
            sils.map(function (s) {
              return h("tr", { "data-id": s.id }, h("td", null, h("span", { cls: "pill", text: s.status && s.status.state })),
                h("td", { text: (s.matchers || []).map(function (m) { return m.name + (m.isEqual === false ? "!" : "=") + (m.isRegex ? "~" : "") + '"' + m.value + '"'; }).join(", ") }),
                h("td", { text: fmtTime(s.endsAt) }), h("td", { text: s.createdBy }), h("td", { text: s.comment }),
                h("td", null, s.status && s.status.state !== "expired" ? h("button", { text: "Expire", onclick: function () { expire(s.id); } }) : ""));
            }))));
        }
        notes.textContent = "";
        notes.appendChild(h("h3", { text: "Notification deliveries" }));
        if (r[2].error) {
          if (r[2].error.status === 503) notes.appendChild(h("p", { cls: "muted", text: r[2].error.message }));
          else fail(notes, r[2].error);
          return;
        }
        var d = r[2].data || r[2], recv = d.receivers || [];
        add(notes, kvTable(["receiver", "integration", "delivered", "retried", "failed", "dropped", "last error"],
          [].concat.apply([], recv.map(function (x) {
            return (x.integrations || []).map(function (i) { return [x.name, i.name, i.delivered, i.retried, i.failed, i.dropped, i.last_error || ""]; });
          })), "receivers"));
        var att = d.recent || [];
        add(notes, h("h3", { style: "margin-top:10px", text: "Recent delivery attempts" }));
        add(notes, kvTable(["time", "receiver", "integration", "group", "result", "status", "answer"], att.map(function (a) {
          return [a.time ? fmtTime(a.time) : "", a.receiver, a.integration, a.group_key, a.result, a.status, a.answer || ""];
        }), "attempts"));
      });
    }
    return refresh;
  }

  /* ---------- router and refresh ---------- */
  function route() {
    var hash = location.hash.replace(/^#/, "") || "/";
    S.gen++;
    var gen = S.gen;
    if (S.follow) { S.follow.abort(); S.follow = null; }
    S.charts.forEach(function (c) { if (c.plot) c.plot.destroy(); });
    S.charts = [];
    var main = document.getElementById("main");
    main.textContent = "";
    var refresh, name = "overview";
    if (hash.indexOf("/c/") === 0) { name = "container"; refresh = viewContainer(main, gen, decodeURIComponent(hash.slice(3))); }
    else if (hash === "/containers") { name = "containers"; refresh = viewContainers(main, gen); }
    else if (hash === "/alerts") { name = "alerts"; refresh = viewAlerts(main, gen); }
    else refresh = viewOverview(main, gen);
    document.querySelectorAll("nav a").forEach(function (a) {
      a.classList.toggle("active", a.getAttribute("data-view") === name || (name === "container" && a.getAttribute("data-view") === "containers"));
    });
    document.body.setAttribute("data-view", name);
    S.view = refresh;
    tick(true);
  }

  function alertBadge() {
    return api("/api/v1/alerts").then(function (j) {
      var n = (j.data.alerts || []).filter(function (a) { return a.state === "firing" && !a.silenced; }).length;
      var b = document.getElementById("alert-count");
      b.hidden = !n;
      b.textContent = n;
    }).catch(function () {});
  }

  function tick(full) {
    clearTimeout(S.timer);
    var gen = S.gen, t0 = performance.now();
    document.body.setAttribute("data-loaded", "0");
    Promise.all([S.view ? S.view() : null, redrawCharts(), alertBadge()]).then(function () {
      if (gen !== S.gen) return;
      setStatus("updated " + new Date().toLocaleTimeString());
      document.body.setAttribute("data-loaded", "1");
      document.body.setAttribute("data-load-ms", (performance.now() - t0).toFixed(1));
      document.body.setAttribute("data-refreshes", String(++S.refreshes));
    }).catch(function (e) {
      if (gen !== S.gen) return;
      setStatus(String(e.message || e), true);
      document.body.setAttribute("data-loaded", "1");
    }).then(function () {
      if (gen === S.gen && S.refresh > 0) S.timer = setTimeout(tick, S.refresh * 1000);
    });
  }

  function init() {
    var range = document.getElementById("range"), refresh = document.getElementById("refresh");
    var saved = localStorage.getItem("monitor-range");
    if (saved && range.querySelector('option[value="' + saved + '"]')) range.value = saved;
    S.range = parseInt(range.value, 10);
    S.refresh = parseInt(refresh.value, 10);
    range.addEventListener("change", function () {
      S.range = parseInt(range.value, 10);
      localStorage.setItem("monitor-range", range.value);
      S.gen++;
      route();
    });
    refresh.addEventListener("change", function () { S.refresh = parseInt(refresh.value, 10); tick(); });
    window.addEventListener("hashchange", route);
    var rt = null;
    window.addEventListener("resize", function () {
      clearTimeout(rt);
      rt = setTimeout(function () {
        S.charts.forEach(function (c) { if (c.plot) c.plot.setSize({ width: Math.max(240, c.box.clientWidth), height: 200 }); });
      }, 150);
    });
    route();
  }
  window.monitorPage = { stepFor: stepFor, state: S };
  init();
})();
