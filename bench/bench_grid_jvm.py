"""What the Grid's Java costs in CPU and memory, by JVM options (fleet.grid.JAVA_OPTIONS).

    flock /tmp/browser.lock .venv/bin/python bench/bench_grid_jvm.py [--orders 150]

For each set of options, alternating and twice: a standalone Grid as the fleet runs it
(two slots), and the Java process's own CPU time (``/proc/<pid>/stat``, so the rest of
the machine does not count) from start to ready, over 15 s idle, per order on a kept
session (orders after the first half, the JIT warmed up) and per order on a claimed
parked session (:mod:`integrations.browser.parking`); its PSS at the end. erp_sim at its default
save delay; every order must succeed.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_order_cpu import write_order  # noqa: E402
from bench.common import machine, pss_mib  # noqa: E402
from fleet import grid as grid_module  # noqa: E402
from integrations.browser.parking import Parking  # noqa: E402
from integrations.browser.pool import end_session  # noqa: E402
from tests.erp_helpers import ErpSimServer, make_integration  # noqa: E402
from tests.fleet_helpers import StandaloneGrid  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
CHOICES = (("-Xmx512m",), ("-Xmx512m", "-XX:TieredStopAtLevel=1"),
           ("-Xmx512m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"))


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def java_of(work, timeout=10):
    """The Grid's Java process: the one whose command line names this run's folder."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            try:
                command = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "-jar" in command and str(work) in command:
                return int(entry.name)
        time.sleep(0.1)
    raise SystemExit("the Grid's Java process was not found")


def one_run(options, erp, orders):
    grid_module.JAVA_OPTIONS = options
    work = Path(tempfile.mkdtemp(prefix="grid-jvm-"))
    park = str(work / "parked")
    with StandaloneGrid(work, slots=2) as grid:
        java = java_of(work)
        started = cpu_seconds(java)
        time.sleep(15)
        idle = cpu_seconds(java) - started
        kept = make_integration("erp_sim", erp.url, work, selenium_remote_url=grid.url,
                                browser_park_dir=park)
        for n in range(orders):
            if n == orders // 2:
                before = cpu_seconds(java)
            write_order(kept, erp)
        per_kept = (cpu_seconds(java) - before) / (orders - orders // 2)
        kept.browsers.release(park=True)
        before = cpu_seconds(java)
        for _ in range(10):
            workshop = make_integration("erp_sim", erp.url, work, selenium_remote_url=grid.url,
                                        browser_park_dir=park)
            write_order(workshop, erp)
            workshop.browsers.release(park=True)
        per_claimed = (cpu_seconds(java) - before) / 10
        pss = pss_mib(java)
        while (record := Parking(park).claim()) is not None:
            end_session(grid.url, record["session_id"])
    return started, idle, per_kept, per_claimed, pss


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=150, help="orders on the kept session")
    args = parser.parse_args(argv)
    rows = []
    with ErpSimServer() as erp:
        for _ in range(2):
            for options in CHOICES:
                rows.append((options, *one_run(options, erp, args.orders)))
                print(rows[-1], file=sys.stderr, flush=True)
    print(f"Command: `flock /tmp/browser.lock .venv/bin/python bench/bench_grid_jvm.py "
          f"--orders {args.orders}`  \nMachine: {machine()}\n")
    print("| JVM options | start to ready | 15 s idle | per order, kept session (2nd half) "
          "| per order, claimed session | PSS |\n| --- | --- | --- | --- | --- | --- |")
    for options, started, idle, kept, claimed, pss in rows:
        print(f"| `{' '.join(options)}` | {started:.2f} CPU-s | {idle:.2f} CPU-s | "
              f"{kept:.3f} CPU-s | {claimed:.3f} CPU-s | {pss:.0f} MiB |")


if __name__ == "__main__":
    main()
