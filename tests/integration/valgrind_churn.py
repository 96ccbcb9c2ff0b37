#!/usr/bin/env python3
"""valgrind --leak-check=full on the agent through container churn (issue
13): CYCLES containers (default 50, argv[1]) created and removed in
batches of 5 as cgroup directories in a copy of the v2 fixture host root,
then SIGTERM, with stale series leaving memory 2 s after (the eviction
path under valgrind). Fails unless valgrind reports no errors and no
definitely lost bytes. Run by `make soak-churn`; not part of make test (minutes
under valgrind). MONITOR_BIN picks the binary, as for tests/run."""

import os
import re
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

FIXTURE = os.path.join(h.ROOT, "tests", "fixtures", "cgroup", "v2")
CONTAINER = "sys/fs/cgroup/docker/688116434228fbfdd03d9cd934322f980dd3fddb26fab37473033c7173572be2"


def main():
    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    if not shutil.which("valgrind"):
        print("valgrind_churn: SKIPPED: valgrind is not installed")
        return 0
    tmp = tempfile.mkdtemp(prefix="vgchurn-")
    root = os.path.join(tmp, "root")
    shutil.copytree(FIXTURE, root, symlinks=True)
    src = os.path.join(root, CONTAINER)
    vlog = os.path.join(tmp, "valgrind.txt")
    # evict_stale_after 2s: the removed containers' series leave memory
    # during the run, so the eviction path runs under valgrind.
    a = h.Agent(config="docker:\n  enabled: false\nstorage:\n  flush_interval: 1s\n"
                       "  evict_stale_after: 2s\n",
                host_root=root, interval="1s", args=["--no-ebpf"])
    a.cmd = ["valgrind", "--leak-check=full", "--log-file=" + vlog] + a.cmd
    try:
        a.start(wait_ready=False)
        a.wait_ready(timeout=120)
        n = 0
        while n < cycles:
            dirs = []
            for _ in range(min(5, cycles - n)):
                n += 1
                d = os.path.join(root, "sys/fs/cgroup/docker/%064x" % (0xdef000 + n))
                shutil.copytree(src, d)
                dirs.append(d)
            time.sleep(2.5)
            for d in dirs:
                shutil.rmtree(d)
            time.sleep(1)
        a.proc.send_signal(signal.SIGTERM)
        rc = a.proc.wait(180)
        with open(vlog) as f:
            report = f.read()
    finally:
        a.kill()
        shutil.rmtree(tmp, True)
    lost = re.search(r"definitely lost: ([\d,]+) bytes", report)
    errors = re.search(r"ERROR SUMMARY: (\d+) errors", report)
    lost_b = int(lost.group(1).replace(",", "")) if lost else 0
    print("valgrind_churn: %d cycles, exit %d, definitely lost %d bytes, %s errors"
          % (cycles, rc, lost_b, errors.group(1) if errors else "?"))
    if rc != 0 or lost_b or not errors or errors.group(1) != "0":
        print(report[-4000:])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
