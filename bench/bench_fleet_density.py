"""Fleet density: N idle integrations under one supervisord on this machine.

    .venv/bin/python bench/bench_fleet_density.py [--count 50] [--write docs/benchmarks-fleet.md]

Measures the seconds from ``manage.py up`` until every instance answers ``/alive``, the
memory of each idle instance (no order has arrived), and the seconds a graceful stop of
everything takes. Everything lives in a temporary folder; the ERP URL points at a closed
port (a probe finds it ``unreachable`` at once).

An idle instance is measured twice: before its first ERP probe, and after it (each probes
within ``START_SPREAD_SECONDS`` of its start, workers/probing.py, with a browser from the
pool that it gives back at once). The probe loads Selenium into the instance, which stays
loaded: the second figure is what an idle instance costs for the rest of its life, and
the one the target is checked on.
"""

import argparse
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fleet_processes import kill_tree  # noqa: E402
from fleet.control import Fleet  # noqa: E402
from fleet.schemas import RegistrationSpec  # noqa: E402
from fleet.settings import load_fleet_settings  # noqa: E402
from tests.fleet_helpers import free_port  # noqa: E402

TARGET_SECONDS, TARGET_MB = 30, 45
#: how long every instance's first ERP probe may take (they spread over a minute, then
#: queue for the pool's browsers)
PROBE_WAIT_SECONDS = 300


def kib(pid, field, path="status"):
    for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def alive(port):
    try:
        return requests.get(f"http://127.0.0.1:{port}/alive", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def probed(port):
    """Whether the instance on ``port`` has probed its ERP since it started."""
    try:
        return bool(requests.get(f"http://127.0.0.1:{port}/alive", timeout=2).json()["erp"]["checked_at"])
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return False


def wait_all(ports, ready, limit, pause):
    """Ask ``ready(port)`` of every port, 8 at a time, every ``pause`` seconds until each
    said yes or ``limit`` seconds passed. :returns: the ports that never did"""
    started, pending = time.monotonic(), set(ports)
    with ThreadPoolExecutor(max_workers=8) as pool:
        while pending and time.monotonic() - started < limit:
            pending = {p for p, ok in zip(list(pending), pool.map(ready, list(pending))) if not ok}
            if pending:
                time.sleep(pause)
    return pending


def port_in(pid):
    """The port an instance was started on (``api.py -- PORT WORKSHOP``)."""
    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return int(args[args.index(b"--") + 1])


def memory(pids):
    """``(RSS, PSS)`` in MiB of each process."""
    return ([kib(pid, "VmRSS") / 1024 for pid in pids],
            [kib(pid, "Pss", "smaps_rollup") / 1024 for pid in pids])


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_gib = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    return f"{os.cpu_count()} vCPU ({cpu}), {mem_gib:.0f} GiB RAM, {platform.system()} " \
           f"{platform.release()}, Python {platform.python_version()}"


#: seconds a graceful stop may take before the run kills the fleet and says so
STOP_LIMIT_SECONDS = 180


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--write", help="write the results as Markdown to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = parser.parse_args()
    # a harness stopped with kill still tears its fleet down (the finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    base = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ERP_", "API_"))}
    env.update(SECRET_KEY=Fernet.generate_key().decode(), MANAGEMENT_TOKEN="bench-token",
               MANAGEMENT_PORT=str(free_port()), GRID_PORT=str(free_port()), REGISTRY_DB=str(base / "integrations.db"),
               SUPERVISOR_DIR=str(base / "sup"), QUEUE_DIR=str(base / "q"), LOG_DIR=str(base / "logs"),
               STOP_WAIT_SECONDS="30")
    fleet = Fleet(load_fleet_settings(env, dotenv=False))
    closed = f"http://127.0.0.1:{free_port()}"  # bound, then released: nothing listens
    ports = []
    for n in range(args.count):
        port = free_port()
        while port in ports:  # free_port() releases what it found: it can repeat itself
            port = free_port()
        spec = RegistrationSpec(workshop=f"Verksted {n:02d} Ålesund", erp_system="erp_sim",
                               erp_url=closed, port=port, username="admin", password="admin")
        fleet.create(spec)
        ports.append(spec.port)

    up = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "up"], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    started = time.monotonic()
    try:
        # once a second, 8 at a time: polling 200 starting instances every 0.2 s with 32
        # threads took ~20 % of the 2 cores their start-up needs
        pending = wait_all(ports, alive, 120, 1.0)
        all_alive = time.monotonic() - started
        if pending:
            raise SystemExit(f"{len(pending)} instances not alive after 120 s")
        time.sleep(10)  # let start-up garbage settle: measure an idle instance
        processes = fleet.supervisor.processes()
        instance_pids = [p["pid"] for name, p in processes.items()
                         if name not in ("management", "grid")]
        port_of = {pid: port_in(pid) for pid in instance_pids}
        # memory first, then which had not probed yet: those had not probed when read
        sampled = dict(zip(instance_pids, zip(*memory(instance_pids))))
        with ThreadPoolExecutor(max_workers=8) as pool:
            before = [pid for pid, done in zip(instance_pids, pool.map(lambda pid: probed(port_of[pid]),
                                                                          instance_pids)) if not done]
        rss_before, pss_before = [sampled[pid][0] for pid in before], [sampled[pid][1] for pid in before]
        # every instance's first probe, then a few seconds to give the browser back
        pending = wait_all(ports, probed, PROBE_WAIT_SECONDS, 2.0)
        if pending:
            raise SystemExit(f"{len(pending)} instances had not probed their ERP after {PROBE_WAIT_SECONDS} s")
        time.sleep(10)
        rss, pss = memory(instance_pids)
        threads = sum(1 for pid in instance_pids for _ in Path(f"/proc/{pid}/task").iterdir())
        management = kib(processes["management"]["pid"], "VmRSS") / 1024
        supervisord = kib(up.pid, "VmRSS") / 1024
        stop_started = time.monotonic()
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(STOP_LIMIT_SECONDS)
            stop_seconds = time.monotonic() - stop_started
        except subprocess.TimeoutExpired:  # reported; the finally kills the tree
            stop_seconds = None
    finally:
        # supervisord's programs are process groups of their own: killing its group would
        # leave them running; the whole tree goes, and what left it (found by this run's
        # folder in their environment)
        kill_tree(up.pid if up.poll() is None else 0, f"={base}/".encode())
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    ok_time = "meets" if all_alive <= TARGET_SECONDS else "misses"
    ok_mem = "meets" if max(rss) <= TARGET_MB else "misses"
    before_rss = (f"{statistics.median(rss_before):.1f} / {max(rss_before):.1f} MB" if rss_before
                  else "(every instance had probed)")
    before_pss = f"{statistics.median(pss_before):.1f} MB" if pss_before else ""
    report = f"""## Fleet density ({args.count} idle integrations under one supervisord)

Command: `.venv/bin/python bench/bench_fleet_density.py --count {args.count}`
Machine: {machine()}

| measure | value | target |
| --- | --- | --- |
| `manage.py up` → all {args.count} answer `/alive` | {all_alive:.1f} s | ≤ {TARGET_SECONDS} s ({ok_time}) |
| RSS per idle instance before its first ERP probe, median / max ({len(rss_before)} of {args.count} had not probed yet) | {before_rss} | |
| PSS per idle instance before its first ERP probe (shared pages split), median | {before_pss} | |
| RSS per idle instance after its start probe (Selenium loaded, browser given back), median / max | {statistics.median(rss):.1f} / {max(rss):.1f} MB | ≤ {TARGET_MB} MB ({ok_mem}) |
| PSS per idle instance after its start probe, median | {statistics.median(pss):.1f} MB | |
| total RSS of the {args.count} instances | {sum(rss):.0f} MB | |
| threads per instance, mean | {threads / len(instance_pids):.1f} | |
| supervisord RSS / management API RSS | {supervisord:.1f} / {management:.1f} MB | |
| graceful stop of everything (SIGTERM → supervisord exit) | {f"{stop_seconds:.1f} s" if stop_seconds is not None else f"over {STOP_LIMIT_SECONDS} s (killed)"} | |

MB = MiB, from `/proc/<pid>/status` (VmRSS) and `/proc/<pid>/smaps_rollup` (Pss), with no
order sent: before the probe 10 s after the last instance answered (of the instances that
had not probed yet), after it 10 s after the last instance's first probe (no browser open).
"""
    print(report)
    if args.write:
        Path(args.write).write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
