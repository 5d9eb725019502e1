"""Shared pieces of the benchmarks: machine description and memory readings."""

import os
import platform
import threading
from pathlib import Path


def busy_cpu_seconds():
    """CPU-seconds the whole machine has spent busy since boot (``/proc/stat``: user,
    nice, system, irq and softirq, summed over the cores; not idle, iowait or *steal*,
    the time the hypervisor gave to other guests, which is large on these shared
    machines). Two readings bracket a run: the fleet, the erp_sim servers and the
    harness together, which is what the cores carry."""
    with open("/proc/stat") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:8]]
    return (ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]) / os.sysconf("SC_CLK_TCK")


def steal_cpu_seconds():
    """CPU-seconds since boot that the hypervisor gave to other guests while this one
    wanted to run (``/proc/stat``'s *steal*): two readings around a run say how much of
    it the machine's neighbours took -- why one run of the same bench is slower than
    another an hour later."""
    with open("/proc/stat") as stat:
        return int(stat.readline().split()[8]) / os.sysconf("SC_CLK_TCK")


def machine():
    cpu = next((line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_gib = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    load = os.getloadavg()[0]
    return (f"{os.cpu_count()} vCPU ({cpu}), {mem_gib:.0f} GiB RAM, Python "
            f"{platform.python_version()}, load average {load:.1f} at the start")


def _proc_mib(pid, path, field):
    """``field`` (in kB) of ``/proc/<pid>/<path>``, MiB; 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def rss_mib(pid):
    """Resident memory of one process, MiB (0 when it is gone)."""
    return _proc_mib(pid, "status", "VmRSS")


def descendants(pid):
    """pids of every process below ``pid`` (browser, driver, renderers)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def tree_rss_mib(pid):
    """RSS of a process and all its descendants, MiB (shared pages counted per process,
    so this over-states what the tree really costs; it is the figure ``ps`` users see)."""
    return rss_mib(pid) + sum(rss_mib(child) for child in descendants(pid))


def pss_mib(pid):
    """Proportional set size of one process, MiB: shared pages split between the processes
    that map them, so the PSS of a tree adds up to what it really costs (0 when gone)."""
    return _proc_mib(pid, "smaps_rollup", "Pss")


def tree_pss_mib(pid):
    """PSS of a process and all its descendants, MiB."""
    return pss_mib(pid) + sum(pss_mib(child) for child in descendants(pid))


class PeakSampler:
    """Samples ``measure()`` every ``interval`` seconds in a thread; keeps the peak.

    Use as a context manager around the work to be measured."""

    def __init__(self, measure, interval=0.5):
        self.measure, self.interval, self.peak = measure, interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.measure())
            except Exception:  # a process gone between two reads: skip the sample
                pass
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
