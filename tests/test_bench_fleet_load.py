"""The load benchmark's pure parts (bench/bench_fleet_load.py: arrivals, percentiles,
the line check; bench/fleet_processes.py: the browser count, the fleet's processes;
bench/fleet_report.py: the table). No fleet, no browser: the benchmark
itself is run by `make bench-fleet`; what it counts and judges is checked here."""

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bench_fleet_load as load  # noqa: E402
from bench import fleet_processes, fleet_report  # noqa: E402


def test_arrivals_are_a_poisson_process_over_all_workshops():
    arrivals = load.poisson_arrivals(100, 30, 200, random.Random(1))
    times = [t for t, _ in arrivals]
    assert times == sorted(times) and 0 < times[0] and times[-1] < 30 * 60
    # 3000 expected; a Poisson count's standard deviation is sqrt(3000) ~ 55
    assert 2800 < len(arrivals) < 3200
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert 0.55 < sum(gaps) / len(gaps) < 0.65  # exponential gaps, mean 60/100 s
    shops = {w for _, w in arrivals}
    assert shops == set(range(200))  # spread over every workshop, none outside


def test_the_same_seed_gives_the_same_arrivals():
    # pool and local runs of one configuration must see the same orders
    assert load.poisson_arrivals(50, 3, 50, random.Random(12)) == \
        load.poisson_arrivals(50, 3, 50, random.Random(12))


def test_percentile_by_nearest_rank():
    values = list(range(1, 101))
    assert load.percentile(values, 50) == 50
    assert load.percentile(values, 95) == 95
    assert load.percentile(values, 100) == 100
    assert load.percentile([7.0], 95) == 7.0
    assert load.percentile([], 95) is None


def test_parse_config():
    assert load.parse_config("200x100") == (200, 100, 0)
    assert load.parse_config("1X7.5") == (1, 7.5, 0)
    assert load.parse_config("1x60w30") == (1, 60, 30)
    for bad in ("1x60wx", "1x60w-1", "x60"):
        with pytest.raises(ValueError):
            load.parse_config(bad)
    with pytest.raises(ValueError):
        load.parse_config("0x10")


def test_workshops_of_one_erp_never_share_a_worksheet():
    sheets = [set(load.worksheets_of(i, 25)) for i in range(25)]
    assert all(len(s) == load.SHEETS_PER_WORKSHOP for s in sheets)
    assert len(set().union(*sheets)) == 25 * load.SHEETS_PER_WORKSHOP
    assert max(int(n) for s in sheets for n in s) <= 899  # erp_sim's open worksheets
    assert load.worksheets_of(25, 25) == load.worksheets_of(0, 25)  # the next ERP's first


def line(reference, product="10", amount="2"):
    return {"reference": reference, "product_nr": product, "amount": amount}


def test_tally_lines_finds_every_kind_of_wrong():
    c, e = "created", "error"
    orders = {"a1": ("5", "10", "2", c), "a2": ("5", "10", "2", c), "a3": ("6", "11", "3", c),
              "a4": ("6", "10", "1", c), "a5": ("7", "10", "1", c), "a6": ("7", "10", "1", e),
              "a7": ("8", "10", "1", e), "a8": ("8", "10", "1", None)}
    sheets = {
        "5": [line("OilMat a1"), line("OilMat a2"), line("OilMat a2")],  # a2 twice
        "6": [line("OilMat a3", "11", "4"),  # a3 with the wrong amount
              line("OilMat a4", "10", "1"), line("OilMat zz")],  # a line of no order
        "7": [line("OilMat a1"),  # a1's id on another worksheet: not a1's line; a5 created, lost
              line("OilMat a6", "10", "1")],  # a6 ended in error, yet its line is there
        "8": [],  # a7 ended in error with nothing written: consistent; a8 unfinished: counted apart
    }
    assert load.tally_lines(orders, sheets) == {"lost": 1, "twice": 1, "wrong": 1, "stray": 2,
                                                "error_written": 1}
    right = {"5": [line("OilMat a1"), line("OilMat a2")]}
    assert load.tally_lines({"a1": ("5", "10", "2", c), "a2": ("5", "10", "2", c)}, right) == \
        {"lost": 0, "twice": 0, "wrong": 0, "stray": 0, "error_written": 0}


def test_uniqueid_is_matched_as_a_word():
    # 'load-x-00001' must not count as a line of 'load-x-0000'
    orders = {"load-x-0000": ("5", "10", "2", "created")}
    assert load.tally_lines(orders, {"5": [line("OilMat load-x-00001")]})["lost"] == 1


def test_browser_main_processes_only():
    assert fleet_processes.is_browser_main(["/usr/lib/chromium/chromium", "--headless", "--user-data-dir=/tmp/x"])
    assert not fleet_processes.is_browser_main(["/usr/lib/chromium/chromium", "--type=renderer"])
    assert not fleet_processes.is_browser_main(["/usr/bin/chromedriver", "--port=0"])
    assert not fleet_processes.is_browser_main([])


def test_created_seconds_from_the_history():
    history = [{"status": "placed", "at": "2026-12-02T10:00:00.000+00:00"},
               {"status": "processing", "at": "2026-12-02T10:00:01.000+00:00"},
               {"status": "created", "at": "2026-12-02T10:00:03.250+00:00"}]
    sent = load.datetime.fromisoformat("2026-12-02T09:59:59.750+00:00").timestamp()
    assert load.created_seconds(history, sent) == pytest.approx(3.5)
    assert load.created_seconds(history[:2], sent) is None


def run(pool, workshops, rate, **figures):
    base = {"workshops": workshops, "rate": rate, "pool": pool, "slots": 4, "alive_seconds": 20.0,
            "p50": 2.0, "p95": 8.0, "max": 12.0, "browsers": 4, "grid_sessions": 4, "grid_waiting": 1, "pss_gib": 3.0,
            "load": 4.0, "created": 100, "error": 0, "unfinished": 0, "sent": 100, "bad_orders": 0,
            "lines": {"lost": 0, "twice": 0, "wrong": 0, "stray": 0, "error_written": 0},
            "did_not_finish": None, "reasons": {}}
    return {**base, **figures}


def test_targets_are_judged_on_the_pool_run():
    results = [run("grid", 50, 50, p95=9.5, pss_gib=4.5), run("local", 50, 50, p95=40.0, pss_gib=6.5),
               run("grid", 200, 100, alive_seconds=70.0, p95=14.0, pss_gib=7.0, bad_orders=1),
               run("local", 200, 100, did_not_finish="the tree's PSS passed 16 GiB")]
    rows = "\n".join(fleet_report.render_targets(results))
    assert "| 50 × 50/min: create→created p95 ≤ 10 s | 9.50 | 40.00 | **met** |" in rows
    assert "| 50 × 50/min: peak PSS of the tree ≤ 4 GiB | 4.50 | 6.50 | **not met** |" in rows
    assert "every instance alive after `up` ≤ 60 s | 70.00 | 20.00 | **not met** |" in rows
    assert "| 200 × 100/min: create→created p95 ≤ 15 s | 14.00 |" in rows
    assert "orders lost or written twice ≤ 0 | 1 | 0 | **not met** |" in rows
    errors = [run("grid", 200, 100, error=20, created=80, reasons={"ERP_UNAVAILABLE": 20})]
    assert ("| 0 | not measured | **met**; 20 other orders ended in `error` (ERP_UNAVAILABLE ×20), "
            "their clients told, nothing written for them |") in "\n".join(fleet_report.render_targets(errors))
    assert "a single busy workshop: no regression with the pool | not measured" in rows


def test_a_run_that_did_not_finish_meets_no_target():
    results = [run("grid", 200, 100, p95=3.0, did_not_finish="the machine had 2.0 GiB left")]
    rows = "\n".join(fleet_report.render_targets(results))
    assert "| 3.00 | not measured | **not met** (did not finish: the machine had 2.0 GiB left) |" in rows


def test_table_rows_with_ratios_and_a_failed_run():
    rows = fleet_report.render_rows([run("grid", 20, 30, p95=4.0, pss_gib=1.5),
                                     run("local", 20, 30, p95=8.0, pss_gib=6.0),
                                     {"workshops": 50, "rate": 50, "pool": "grid", "failed": "no pool here"}])
    assert rows[0].startswith("| 20 × 30/min | pool (Grid, 4 slots) | 20.0 s | 2.0 / 4.0 / 12.0 s | 4 (4 in use, 1 waiting)")
    assert rows[1].startswith("| 20 × 30/min | `BROWSER_POOL=local` |")
    assert "| **pool / local** | 1.00× | 1.00× / 0.50× / 1.00× | 1.00× | 0.25× |" in rows[2]
    assert rows[3].startswith("| 50 × 50/min | pool (Grid) | not run: no pool here |")


def test_single_workshop_regression_check():
    ok = fleet_report.render_targets([run("grid", 1, 60, p95=2.1), run("local", 1, 60, p95=2.0)])[-1]
    assert ok.endswith("| p95 2.10 s | p95 2.00 s | **met** |")
    slow = fleet_report.render_targets([run("grid", 1, 60, p95=3.0), run("local", 1, 60, p95=2.0)])[-1]
    assert slow.endswith("**not met** |")


def test_single_workshop_judged_warm_and_cold():
    rows = fleet_report.render_targets([
        run("grid", 1, 60, p95=3.0), run("local", 1, 60, p95=2.0),
        run("grid", 1, 60, p95=2.0, warmup=30), run("local", 1, 60, p95=2.0, warmup=30)])
    assert rows[-2].startswith("| 1 × 60/min, after 30 warm-up orders:")
    assert rows[-2].endswith("| p95 2.00 s | p95 2.00 s | **met** |")
    assert rows[-1].startswith("| 1 × 60/min, from a cold start (Grid just started):")
    assert rows[-1].endswith("**not met** |")
    table = fleet_report.render_rows([run("grid", 1, 60, warmup=30), run("local", 1, 60, warmup=30)])
    assert table[0].startswith("| 1 × 60/min, after 30 warm-up orders | pool")


def test_bench_run_keeps_the_sections_it_did_not_run():
    # make bench and make bench-fleet each rewrite their own sections of docs/benchmarks.md
    from bench import run as bench_run

    before = bench_run.assemble({}, {"instance": "## One instance\n\nold", "fleet": "## Density\n\nold"},
                                "2026-01-01 00:00 UTC")
    kept = bench_run.sections(before)
    assert kept == {"instance": ("2026-01-01 00:00 UTC", "## One instance\n\nold"),
                    "fleet": ("2026-01-01 00:00 UTC", "## Density\n\nold")}
    after = bench_run.assemble(kept, {"fleet-load": "## Load\n\nnew\n", "fleet": "## Density\n\nnew"},
                               "2026-02-02 00:00 UTC")
    assert bench_run.sections(after) == {
        "instance": ("2026-01-01 00:00 UTC", "## One instance\n\nold"),
        "fleet": ("2026-02-02 00:00 UTC", "## Density\n\nnew"),
        "fleet-load": ("2026-02-02 00:00 UTC", "## Load\n\nnew")}
    assert after.index("## One instance") < after.index("## Density") < after.index("## Load")


def test_what_left_the_fleet_is_found_by_its_environment_and_killed(tmp_path):
    # a browser whose chromedriver died is re-parented to init: measured and killed all the same
    import os
    import subprocess
    import time

    marker = f"={tmp_path}/".encode()
    env = {**os.environ, "QUEUE_DIR": f"{tmp_path}/q"}
    # sh starts a sleep in the background and exits: the sleep's parent becomes init
    subprocess.run(["sh", "-c", "sleep 120 >/dev/null 2>&1 &"], env=env, check=True)
    deadline = time.monotonic() + 10
    while not (found := fleet_processes.fleet_pids(0, marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(found) == 1 and fleet_processes._argv(found[0])[0] == "sleep"
    assert fleet_processes.fleet_pids(0, b"=/no/such/run/") == []  # nobody else's processes
    fleet_processes.kill_tree(0, marker)
    deadline = time.monotonic() + 10
    while fleet_processes.fleet_pids(0, marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fleet_processes.fleet_pids(0, marker) == []


def test_the_cpu_split_knows_each_kind_of_the_fleets_processes():
    from bench.fleet_processes import _kind

    assert _kind(["/usr/bin/java", "-Xmx512m", "-jar", "selenium-server.jar"]) == "grid"
    assert _kind(["/usr/lib/chromium/chromium", "--type=renderer"]) == "browsers"
    assert _kind(["/usr/bin/chromedriver", "--port=1"]) == "browsers"
    assert _kind(["/x/.venv/bin/python", "/x/manage.py", "up"]) == "supervisord"
    assert _kind(["/x/.venv/bin/python", "-m", "fleet.serve"]) == "management"
    assert _kind(["/x/.venv/bin/python", "-m", "fleet.launch", "programs/bridge-a.json"]) \
        == "instances"


def test_steal_is_read_and_shown():
    from bench.common import steal_cpu_seconds

    assert steal_cpu_seconds() >= 0
    row = fleet_report.render_rows([run("grid", 20, 30, cpu_seconds=100.0, cpu_share=0.5, cpu_per_order=1.0,
                                        steal_share=0.12)])[0]
    assert "cores 50 % busy, 12 % stolen by the host, 1.00 CPU-s per order" in row


def test_busy_cpu_seconds_count_up():
    from bench.common import busy_cpu_seconds

    first = busy_cpu_seconds()
    sum(range(2_000_000))  # some work of our own
    assert 0 < first <= busy_cpu_seconds()
