"""Shared pieces of the benchmarks: machine description and memory readings."""

import os
import platform
from pathlib import Path


def machine():
    cpu = next((line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_gib = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    load = os.getloadavg()[0]
    return (f"{os.cpu_count()} vCPU ({cpu}), {mem_gib:.0f} GiB RAM, Python "
            f"{platform.python_version()}, load average {load:.1f} at the start")


def rss_mib(pid):
    """Resident memory of one process, MiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


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
