#!/usr/bin/python3
"""Writes the data set the PromQL differential test loads into both the
agent (`monitor import`) and Prometheus (`promtool tsdb create-blocks-from
openmetrics`), as OpenMetrics text with timestamps.

    gen_data.py OUT.om BASE_SECONDS [HOURS]

The data looks like what the agent stores: container counters and gauges
scraped every 15 s, with the jitter real scrapes have. Every timestamp has
an even number of milliseconds, never .000, and the test evaluates at odd
ones, so no sample ever lies exactly on the edge of a window (subquery steps
put edges on whole seconds), where Prometheus 2.42
(closed on the left) and Prometheus 3 (left-open, as the agent) disagree.
It has a counter reset, a series that starts late and one that ends early
(for lookback), a flapping 0/1 series, classic histogram buckets, an info
metric for joins, and label values with characters regexes care about.
The values do not depend on BASE, so every run checks the same numbers.
"""

import math
import random
import sys

INTERVAL_MS = 15000

CONTAINERS = [
    # name, image, cpu rate (cores), memory base, memory limit
    ("web-1", "nginx:1.25", 0.20, 120e6, 512e6),
    ("web-2", "nginx:1.25", 0.35, 150e6, 512e6),
    ("db-1", "postgres:16", 1.10, 900e6, 2048e6),
    ("cache_1", "redis:7", 0.05, 60e6, 0),
    ("api-a", "example/api:2.3.1", 0.60, 300e6, 1024e6),
    ("api-b", "example/api:2.3.1", 0.45, 280e6, 1024e6),
    ("late", "busybox:1.36", 0.02, 5e6, 64e6),
    ("gone", "busybox:1.36", 0.03, 6e6, 64e6),
]


def esc(v):
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def labels(d):
    return "{" + ",".join('%s="%s"' % (k, esc(str(v))) for k, v in d.items()) + "}"


class Writer:
    def __init__(self, f, rng, start_ms, end_ms):
        self.f, self.rng, self.start_ms, self.end_ms = f, rng, start_ms, end_ms
        self.samples = 0

    def family(self, name):
        self.f.write("# TYPE %s gauge\n" % name)

    def times(self, begin_ms=None, end_ms=None):
        """Scrape times with jitter, strictly increasing; milliseconds are 2
        modulo 4: even, and never .000, where subquery steps and whole-second
        ranges put window edges."""
        begin_ms = self.start_ms if begin_ms is None else begin_ms
        end_ms = self.end_ms if end_ms is None else end_ms
        k = 0
        while True:
            t = begin_ms + k * INTERVAL_MS + self.rng.randint(-350, 350) * 4 + 2
            if t > end_ms:
                return
            yield t
            k += 1

    def series(self, name, lab, points):
        ls = labels(lab)
        for t, v in points:
            if isinstance(v, float) and math.isnan(v):
                vs = "NaN"
            else:
                vs = repr(float(v))
            self.f.write("%s%s %s %d.%03d\n" % (name, ls, vs, t // 1000, t % 1000))
            self.samples += 1


def window(w, name):
    """The part of the data a container exists for."""
    third = (w.end_ms - w.start_ms) // 3
    if name == "late":
        return w.start_ms + third, w.end_ms
    if name == "gone":
        return w.start_ms, w.end_ms - third
    return w.start_ms, w.end_ms


def main():
    out, base = sys.argv[1], int(sys.argv[2])
    hours = float(sys.argv[3]) if len(sys.argv) > 3 else 2.5
    rng = random.Random(20261129)   # the same values whatever BASE is
    start_ms = base * 1000
    end_ms = start_ms + int(hours * 3600 * 1000)
    with open(out, "w") as f:
        w = Writer(f, rng, start_ms, end_ms)

        w.family("t_cpu_seconds_total")
        for i, (name, image, rate, _, _) in enumerate(CONTAINERS):
            b, e = window(w, name)
            v, pts = rng.uniform(100, 5000), []
            reset_at = b + (e - b) // 2 if name == "web-2" else None
            for t in w.times(b, e):
                if reset_at is not None and t >= reset_at:
                    v, reset_at = rng.uniform(0, 2), None
                pts.append((t, round(v, 6)))
                v += rate * 15 * rng.uniform(0.6, 1.4)
            w.series("t_cpu_seconds_total", {"name": name, "image": image, "id": "/docker/%064x" % (i + 1), "cpu": "total"}, pts)

        w.family("t_cpu_percpu_seconds_total")
        for name, _, rate, _, _ in CONTAINERS[:3]:
            for cpu in ("cpu0", "cpu1"):
                v, pts = rng.uniform(0, 100), []
                for t in w.times():
                    pts.append((t, round(v, 6)))
                    v += rate / 2 * 15 * rng.uniform(0.5, 1.5)
                w.series("t_cpu_percpu_seconds_total", {"name": name, "cpu": cpu}, pts)

        w.family("t_memory_bytes")
        for i, (name, image, _, mem, _) in enumerate(CONTAINERS):
            b, e = window(w, name)
            v, pts = mem, []
            for t in w.times(b, e):
                v = max(1e6, v + rng.gauss(0, mem * 0.02))
                pts.append((t, float(int(v))))
            w.series("t_memory_bytes", {"name": name, "image": image, "id": "/docker/%064x" % (i + 1)}, pts)

        w.family("t_memory_limit_bytes")
        for i, (name, image, _, _, limit) in enumerate(CONTAINERS):
            b, e = window(w, name)
            pts, lim = [], limit
            for t in w.times(b, e):
                if name == "api-b" and t > b + (e - b) * 3 // 5:
                    lim = 2048e6        # raised once: changes() sees it
                pts.append((t, lim))
            w.series("t_memory_limit_bytes", {"name": name, "image": image, "id": "/docker/%064x" % (i + 1)}, pts)

        w.family("t_fs_reads_bytes_total")
        for name, _, _, _, _ in CONTAINERS[:4]:
            for dev in ("sda", "nvme0n1"):
                v, pts = 0.0, []
                for t in w.times():
                    v += rng.choice((0, 0, 4096, 8192, 65536, 1048576))
                    pts.append((t, v))
                w.series("t_fs_reads_bytes_total", {"name": name, "device": dev}, pts)

        w.family("t_ratio")
        for name, _, _, _, _ in CONTAINERS[:6]:
            pts = [(t, round(rng.random(), 6)) for t in w.times()]
            w.series("t_ratio", {"name": name}, pts)

        w.family("t_up")
        for inst, p_down in (("a", 0.0), ("b", 0.1), ("c", 0.3)):
            pts = [(t, 0.0 if rng.random() < p_down else 1.0) for t in w.times()]
            w.series("t_up", {"job": "node", "instance": inst}, pts)

        w.family("t_container_info")
        for i, (name, image, _, _, _) in enumerate(CONTAINERS[:6]):
            pts = [(t, 1.0) for t in w.times()]
            w.series("t_container_info", {"name": name, "image": image, "version": "v%d.%d" % (i, i * 3)}, pts)

        w.family("t_http_duration_seconds_bucket")
        les = ["0.005", "0.01", "0.05", "0.1", "0.5", "1", "+Inf"]
        sums, counts = {}, {}
        for name, _, _, _, _ in CONTAINERS[:3]:
            cum = [0.0] * len(les)
            per = {le: [] for le in les}
            total_s, tot = 0.0, 0.0
            sp, cp = [], []
            for t in w.times():
                n = rng.randint(0, 50)
                for _ in range(n):
                    d = rng.expovariate(1 / 0.08)
                    total_s += d
                    for j, le in enumerate(les):
                        if le == "+Inf" or d <= float(le):
                            cum[j] += 1
                tot += n
                for j, le in enumerate(les):
                    per[le].append((t, cum[j]))
                sp.append((t, round(total_s, 6)))
                cp.append((t, tot))
            for le in les:
                w.series("t_http_duration_seconds_bucket", {"name": name, "le": le}, per[le])
            sums[name], counts[name] = sp, cp
        w.family("t_http_duration_seconds_sum")
        for name, pts in sums.items():
            w.series("t_http_duration_seconds_sum", {"name": name}, pts)
        w.family("t_http_duration_seconds_count")
        for name, pts in counts.items():
            w.series("t_http_duration_seconds_count", {"name": name}, pts)

        w.family("t_labels")
        for path, method, code in (("/api/v1/x", "GET", "200"), ("/api/v1/x", "POST", "500"),
                                   ("/health", "GET", "200"), ('/q?a="b"', "GET", "404"),
                                   ("/ünïcode", "PUT", "201")):
            v, pts = 0.0, []
            for t in w.times():
                v += rng.randint(0, 9)
                pts.append((t, v))
            w.series("t_labels", {"path": path, "method": method, "code": code}, pts)

        w.family("t_nan")
        pts = [(t, float("nan") if k % 7 == 3 else float(k % 5)) for k, t in enumerate(w.times())]
        w.series("t_nan", {"kind": "sometimes"}, pts)

        f.write("# EOF\n")
    print(w.samples)


if __name__ == "__main__":
    main()
