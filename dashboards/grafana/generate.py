#!/usr/bin/env python3
"""Writes monitor's Grafana dashboards (dashboards/grafana/*.json).

The JSON files are committed; edit this file and run it again
(`python3 dashboards/grafana/generate.py`) rather than editing them by hand,
so the four dashboards keep one layout and one set of variables. Queries use
the cAdvisor-compatible names the agent exposes, so each dashboard works
against a Prometheus that scrapes agents (the `instance` variable selects
agents in the fleet) and against an agent used directly as a Prometheus data
source (no `instance` label there: the variable's All value `.*` matches the
absent label too). tests/integration/test_grafana.py runs every expression
against both.
"""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
I = 'instance=~"$instance"'
C = 'instance=~"$instance",name=~"$name"'
R = "$__rate_interval"


def ds():
    return {"type": "prometheus", "uid": "${datasource}"}


def var_datasource():
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0, "refresh": 1, "options": [], "regex": ""}


def var_query(name, label, query, multi=True, include_all=True):
    v = {"name": name, "label": label, "type": "query", "datasource": ds(),
         "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
         "definition": query, "refresh": 2, "sort": 1, "multi": multi, "includeAll": include_all,
         "current": {}, "options": [], "hide": 0, "regex": ""}
    if include_all:
        v["allValue"] = ".*"
    return v


def target(expr, legend="", ref="A", instant=False):
    t = {"datasource": ds(), "expr": expr, "legendFormat": legend or "__auto", "refId": ref, "range": not instant,
         "instant": instant}
    return t


class Board:
    def __init__(self, uid, title, tags, variables, description):
        self.uid, self.title, self.tags, self.vars, self.desc = uid, title, tags, variables, description
        self.panels, self.x, self.y, self.rowh, self.next_id = [], 0, 0, 0, 1

    def _pos(self, w, hgt):
        if self.x + w > 24:
            self.x, self.y, self.rowh = 0, self.y + self.rowh, 0
        pos = {"x": self.x, "y": self.y, "w": w, "h": hgt}
        self.x += w
        self.rowh = max(self.rowh, hgt)
        return pos

    def panel(self, kind, title, targets, unit="short", w=12, hgt=8, desc="", **extra):
        refs = "ABCDEFGHIJ"
        ts = [target(t[0], t[1] if len(t) > 1 else "", refs[i], kind in ("stat", "table", "bargauge"))
              for i, t in enumerate(targets)]
        p = {"id": self.next_id, "type": kind, "title": title, "description": desc, "datasource": ds(),
             "gridPos": self._pos(w, hgt), "targets": ts,
             "fieldConfig": {"defaults": {"unit": unit}, "overrides": []}, "options": {}}
        if kind == "timeseries":
            p["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                                                      "showPoints": "never", "spanNulls": False}
            p["options"] = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                            "tooltip": {"mode": "multi", "sort": "desc"}}
        elif kind == "stat":
            p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                            "colorMode": "value", "graphMode": "area", "textMode": "auto"}
        elif kind == "table":
            p["options"] = {"showHeader": True}
            p["transformations"] = [{"id": "merge", "options": {}}]
            for t in p["targets"]:
                t["format"] = "table"
        p.update(extra)
        self.next_id += 1
        self.panels.append(p)

    def row(self, title):
        if self.x:
            self.x, self.y, self.rowh = 0, self.y + self.rowh, 0
        self.panels.append({"id": self.next_id, "type": "row", "title": title, "collapsed": False,
                            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}, "panels": []})
        self.next_id += 1
        self.y += 1

    def json(self):
        return {"uid": self.uid, "title": self.title, "description": self.desc, "tags": ["monitor"] + self.tags,
                "timezone": "browser", "editable": True, "graphTooltip": 1, "schemaVersion": 39, "version": 1,
                "refresh": "30s", "time": {"from": "now-1h", "to": "now"},
                "timepicker": {"refresh_intervals": ["10s", "30s", "1m", "5m", "15m"]},
                "templating": {"list": self.vars}, "annotations": {"list": []}, "links": [
                    {"title": "monitor dashboards", "type": "dashboards", "tags": ["monitor"], "asDropdown": True}],
                "panels": self.panels}


def overview():
    b = Board("monitor-overview", "monitor / Host and containers", ["host", "containers"],
              [var_datasource(), var_query("instance", "Agent", "label_values(machine_memory_bytes, instance)")],
              "Hosts watched by monitor agents and their containers (cAdvisor-compatible names).")
    b.row("Host")
    b.panel("stat", "Containers running", [('count by (instance) (container_state{%s,state="running"})' % I, "{{instance}}")], w=4, hgt=4)
    b.panel("stat", "Containers not running", [('count by (instance) (container_state{%s,state!="running"}) or on() vector(0)' % I, "{{instance}}")], w=4, hgt=4)
    b.panel("stat", "Alerts firing", [('sum by (instance) (monitor_alerts{%s,state="firing"})' % I, "{{instance}}")], w=4, hgt=4)
    b.panel("stat", "CPUs", [("machine_cpu_cores{%s}" % I, "{{instance}}")], w=4, hgt=4)
    b.panel("stat", "Memory installed", [("machine_memory_bytes{%s}" % I, "{{instance}}")], unit="bytes", w=4, hgt=4)
    b.panel("stat", "Load (1 m)", [("machine_load1{%s}" % I, "{{instance}}")], w=4, hgt=4)
    b.panel("timeseries", "Host CPU busy", [(
        "1 - sum by (instance) (rate(machine_cpu_idle_seconds_total{%s}[%s])) / sum by (instance) (rate(machine_cpu_seconds_total{%s}[%s]))"
        % (I, R, I, R), "{{instance}}")], unit="percentunit", w=8)
    b.panel("timeseries", "Host memory in use", [(
        "machine_memory_bytes{%s} - machine_memory_available_bytes{%s}" % (I, I), "{{instance}}")], unit="bytes", w=8)
    b.panel("timeseries", "Host filesystems used", [(
        "machine_fs_usage_bytes{%s} / machine_fs_limit_bytes{%s}" % (I, I), "{{instance}} {{mountpoint}}")], unit="percentunit", w=8)
    b.row("Containers")
    b.panel("timeseries", "CPU by container (top 10)", [(
        'topk(10, sum by (instance, name) (rate(container_cpu_usage_seconds_total{%s,name!=""}[%s])))' % (I, R), "{{name}}")], unit="short", w=12)
    b.panel("timeseries", "Memory working set by container (top 10)", [(
        'topk(10, sum by (instance, name) (container_memory_working_set_bytes{%s,name!=""}))' % I, "{{name}}")], unit="bytes", w=12)
    b.panel("timeseries", "Network receive by container (top 10)", [(
        'topk(10, sum by (instance, name) (rate(container_network_receive_bytes_total{%s,name!=""}[%s])))' % (I, R), "{{name}}")], unit="Bps", w=12)
    b.panel("timeseries", "Network transmit by container (top 10)", [(
        'topk(10, sum by (instance, name) (rate(container_network_transmit_bytes_total{%s,name!=""}[%s])))' % (I, R), "{{name}}")], unit="Bps", w=12)
    b.panel("timeseries", "Disk writes by container (top 10)", [(
        'topk(10, sum by (instance, name) (rate(container_fs_writes_bytes_total{%s,name!=""}[%s])))' % (I, R), "{{name}}")], unit="Bps", w=12)
    b.panel("timeseries", "Socket traffic by container (eBPF, top 10)", [(
        'topk(10, sum by (instance, name) (rate(container_network_socket_receive_bytes_total{%s,name!=""}[%s]) + rate(container_network_socket_transmit_bytes_total{%s,name!=""}[%s])))' % (I, R, I, R), "{{name}}")], unit="Bps", w=12)
    b.panel("table", "Containers", [
        ('sum by (instance, name, image) (container_memory_working_set_bytes{%s,name!=""})' % I, ""),
        ('sum by (instance, name, image) (rate(container_cpu_usage_seconds_total{%s,name!=""}[%s]))' % (I, R), ""),
        ('max by (instance, name, image) (container_spec_memory_limit_bytes{%s,name!=""})' % I, "")], unit="short", w=24, hgt=10)
    return b


def detail():
    b = Board("monitor-container", "monitor / Container detail", ["containers"],
              [var_datasource(), var_query("instance", "Agent", "label_values(machine_memory_bytes, instance)"),
               var_query("name", "Container", 'label_values(container_memory_usage_bytes{instance=~"$instance",name!=""}, name)',
                         multi=False, include_all=False)],
              "One container: CPU and throttling, memory against its limit and forecast, network, disk, eBPF TCP and I/O latency, pressure.")
    b.panel("stat", "State", [('container_state{%s}' % C, "{{state}}")], w=6, hgt=4)
    b.panel("stat", "Memory limit", [("container_spec_memory_limit_bytes{%s}" % C, "{{name}}")], unit="bytes", w=6, hgt=4)
    b.panel("stat", "Processes", [("container_processes{%s}" % C, "{{name}}")], w=6, hgt=4)
    b.panel("stat", "Restarts", [("container_restarts_total{%s}" % C, "{{name}}")], w=6, hgt=4)
    b.panel("timeseries", "CPU (cores) and throttling", [
        ("sum by (name) (rate(container_cpu_usage_seconds_total{%s}[%s]))" % (C, R), "usage"),
        ("sum by (name) (rate(container_cpu_user_seconds_total{%s}[%s]))" % (C, R), "user"),
        ("sum by (name) (rate(container_cpu_cfs_throttled_seconds_total{%s}[%s]))" % (C, R), "throttled"),
        ("container_spec_cpu_quota{%s} / container_spec_cpu_period{%s}" % (C, C), "limit")], w=12)
    b.panel("timeseries", "Memory against its limit", [
        ("container_memory_working_set_bytes{%s}" % C, "working set"),
        ("container_memory_usage_bytes{%s}" % C, "usage"),
        ("container_memory_rss{%s}" % C, "rss"),
        ("container_memory_cache{%s}" % C, "cache"),
        ("container_spec_memory_limit_bytes{%s} > 0" % C, "limit")], unit="bytes", w=12)
    b.panel("timeseries", "Memory forecast", [
        ('container_forecast_usage{%s,resource="memory"}' % C, "in {{horizon}}"),
        ('container_forecast_limit{%s,resource="memory"}' % C, "limit")], unit="bytes", w=12,
        desc="The agent's forecast of the memory usage at each horizon and the limit it runs against.")
    b.panel("timeseries", "Time to exhaustion (forecast)", [
        ('container_forecast_exhaustion_seconds{%s}' % C, "{{resource}} {{mountpoint}}")], unit="s", w=12)
    b.panel("timeseries", "Network", [
        ("sum by (name) (rate(container_network_receive_bytes_total{%s}[%s]))" % (C, R), "receive"),
        ("sum by (name) (rate(container_network_transmit_bytes_total{%s}[%s]))" % (C, R), "transmit")], unit="Bps", w=12)
    b.panel("timeseries", "Socket traffic (eBPF)", [
        ("sum by (name) (rate(container_network_socket_receive_bytes_total{%s}[%s]))" % (C, R), "receive"),
        ("sum by (name) (rate(container_network_socket_transmit_bytes_total{%s}[%s]))" % (C, R), "transmit")], unit="Bps", w=12)
    b.panel("timeseries", "Disk I/O", [
        ("sum by (name) (rate(container_fs_reads_bytes_total{%s}[%s]))" % (C, R), "read"),
        ("sum by (name) (rate(container_fs_writes_bytes_total{%s}[%s]))" % (C, R), "write")], unit="Bps", w=12)
    b.panel("timeseries", "Filesystem usage", [
        ("container_fs_usage_bytes{%s}" % C, "{{mountpoint}}")], unit="bytes", w=12)
    b.panel("timeseries", "TCP (eBPF)", [
        ("container_network_tcp_established_connections{%s}" % C, "established"),
        ("sum by (name) (rate(container_network_tcp_retransmits_total{%s}[%s]))" % (C, R), "retransmits/s"),
        ("sum by (name) (rate(container_network_tcp_connect_failures_total{%s}[%s]))" % (C, R), "connect failures/s")], w=12)
    b.panel("timeseries", "Latency p95 (eBPF): TCP connect, block I/O", [
        ("histogram_quantile(0.95, sum by (le) (rate(container_network_tcp_connect_duration_seconds_bucket{%s}[%s])))" % (C, R), "TCP connect"),
        ("histogram_quantile(0.95, sum by (le, operation) (rate(container_block_io_duration_seconds_bucket{%s}[%s])))" % (C, R), "block {{operation}}")], unit="s", w=12)
    b.panel("timeseries", "Pressure (PSI, share of time waiting)", [
        ("rate(container_pressure_cpu_waiting_seconds_total{%s}[%s])" % (C, R), "cpu"),
        ("rate(container_pressure_memory_waiting_seconds_total{%s}[%s])" % (C, R), "memory"),
        ("rate(container_pressure_io_waiting_seconds_total{%s}[%s])" % (C, R), "io")], unit="percentunit", w=12)
    b.panel("timeseries", "Tasks against the limit", [
        ("container_pids{%s}" % C, "tasks"), ("container_threads{%s}" % C, "threads"),
        ("container_spec_pids_limit{%s} > 0" % C, "limit")], w=12)
    b.panel("timeseries", "Log lines", [
        ("sum by (name) (rate(container_log_lines_total{%s}[%s]))" % (C, R), "lines/s")], w=12)
    return b


def alerts():
    b = Board("monitor-alerts", "monitor / Alerts and notifications", ["alerts"],
              [var_datasource(), var_query("instance", "Agent", "label_values(monitor_alerts, instance)")],
              "The agents' own rule engine, silences and notifier.")
    b.panel("stat", "Firing", [('sum by (instance) (monitor_alerts{%s,state="firing"})' % I, "{{instance}}")], w=6, hgt=4)
    b.panel("stat", "Pending", [('sum by (instance) (monitor_alerts{%s,state="pending"})' % I, "{{instance}}")], w=6, hgt=4)
    b.panel("stat", "Silences active", [('sum by (instance) (monitor_silences{%s,state="active"})' % I, "{{instance}}")], w=6, hgt=4)
    b.panel("stat", "Notification queue", [("monitor_notification_queue_length{%s}" % I, "{{instance}}")], w=6, hgt=4)
    b.panel("timeseries", "Alerts by state", [("sum by (instance, state) (monitor_alerts{%s})" % I, "{{instance}} {{state}}")], w=12)
    b.panel("timeseries", "Notifications by result", [(
        "sum by (instance, receiver, result) (increase(monitor_notifications_total{%s}[%s]))" % (I, R), "{{receiver}} {{result}}")], w=12)
    b.panel("timeseries", "Notification latency p95", [(
        "histogram_quantile(0.95, sum by (instance, le) (rate(monitor_notification_delivery_duration_seconds_bucket{%s}[%s])))" % (I, R), "{{instance}}")], unit="s", w=12)
    b.panel("timeseries", "Rule evaluations and failures", [
        ("sum by (instance) (rate(monitor_rule_evaluations_total{%s}[%s]))" % (I, R), "{{instance}} evaluations/s"),
        ("sum by (instance) (rate(monitor_rule_evaluation_failures_total{%s}[%s]))" % (I, R), "{{instance}} failures/s")], w=12)
    b.panel("timeseries", "Rules loaded and last reload", [
        ("monitor_rules{%s}" % I, "{{instance}} rules"),
        ("monitor_rules_last_reload_success{%s}" % I, "{{instance}} reload ok")], w=12)
    b.panel("timeseries", "Silences by state", [("sum by (instance, state) (monitor_silences{%s})" % I, "{{instance}} {{state}}")], w=12)
    b.panel("table", "Soonest exhaustion forecasts", [(
        "bottomk(10, container_forecast_exhaustion_seconds{%s})" % I, "")], unit="s", w=24, hgt=8)
    return b


def selfmon():
    b = Board("monitor-self", "monitor / Agent self-monitoring", ["agent"],
              [var_datasource(), var_query("instance", "Agent", "label_values(monitor_build_info, instance)")],
              "What the agents cost and whether their parts work: ticks, storage, logs, eBPF, rules.")
    b.panel("stat", "Version", [("monitor_build_info{%s}" % I, "{{instance}} {{version}}")], w=6, hgt=4)
    b.panel("stat", "Containers collected", [("sum by (instance) (monitor_containers{%s})" % I, "{{instance}}")], w=6, hgt=4)
    b.panel("stat", "Series", [("monitor_series{%s}" % I, "{{instance}}")], w=6, hgt=4)
    b.panel("stat", "Docker API up", [("monitor_docker_up{%s}" % I, "{{instance}}")], w=6, hgt=4)
    b.panel("timeseries", "Tick wall time", [("monitor_tick_duration_seconds{%s}" % I, "{{instance}}")], unit="s", w=12)
    b.panel("timeseries", "Agent CPU in ticks (cores)", [(
        "rate(monitor_tick_cpu_seconds_total{%s}[%s])" % (I, R), "{{instance}}")], w=12)
    b.panel("timeseries", "Collector errors/s", [(
        "sum by (instance, collector) (rate(monitor_collector_errors_total{%s}[%s]))" % (I, R), "{{instance}} {{collector}}")], w=12)
    b.panel("timeseries", "Storage samples appended/s", [(
        "rate(monitor_storage_samples_appended_total{%s}[%s])" % (I, R), "{{instance}}")], w=12)
    b.panel("timeseries", "Storage memory and disk", [
        ("monitor_storage_head_bytes{%s}" % I, "{{instance}} head"),
        ("monitor_storage_db_bytes{%s}" % I, "{{instance}} database"),
        ("monitor_log_store_bytes{%s}" % I, "{{instance}} logs.db")], unit="bytes", w=12)
    b.panel("timeseries", "Storage flush", [("monitor_storage_flush_duration_seconds{%s}" % I, "{{instance}}")], unit="s", w=12)
    b.panel("timeseries", "Log lines stored/s", [(
        "rate(monitor_log_lines_stored_total{%s}[%s])" % (I, R), "{{instance}}")], w=12)
    b.panel("timeseries", "eBPF probes up", [("monitor_ebpf_probe_up{%s}" % I, "{{instance}} {{probe}}")], w=12)
    b.panel("timeseries", "Scrapes of /metrics per second", [(
        "rate(monitor_scrapes_total{%s}[%s])" % (I, R), "{{instance}}")], w=12)
    b.panel("timeseries", "Forecast refresh time", [("monitor_forecast_refresh_duration_seconds{%s}" % I, "{{instance}}")], unit="s", w=12)
    return b


def main():
    for name, fn in (("overview", overview), ("container", detail), ("alerts", alerts), ("agent", selfmon)):
        path = os.path.join(HERE, "monitor-%s.json" % name)
        with open(path, "w") as f:
            json.dump(fn().json(), f, indent=1, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main()
