"""bench/bench_single_workshop.py's report (the runs themselves are `make bench`)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import bench_single_workshop as single  # noqa: E402


def _run(rate, cpu=0.4):
    return {"rate": rate, "elapsed": 6000 / rate, "cpu": cpu}


def test_the_ratio_is_of_medians_and_the_warm_up_is_reported_apart():
    runs = {"local": [_run(300), _run(200), _run(260)], "pool": [_run(250), _run(240), _run(100)],
            "warmup": [_run(150, cpu=0.6)]}
    row = single.report([(0.0, runs)], "classic", 100, 3, "cmd", warmup=30).splitlines()
    line = next(r for r in row if r.startswith("| 0.0 s"))
    assert "| 260 (300, 200, 260) | 240 (250, 240, 100) | **0.92x** |" in line
    assert line.endswith("| met | 150 lines/min, 0.60 CPU-s per order |")
    assert any("after 30 orders each way that are not counted" in r for r in row)


def test_below_the_target_says_so_and_no_warm_up_says_none():
    runs = {"local": [_run(300)], "pool": [_run(260)], "warmup": []}
    line = next(r for r in single.report([(0.3, runs)], "classic", 100, 1, "cmd", warmup=0)
                .splitlines() if r.startswith("| 0.3 s"))
    assert "**0.87x**" in line and line.endswith("| not met | none |")


def test_every_run_writes_onto_empty_open_worksheets():
    sheets = [single.fresh_worksheets(n) for n in range(20)]
    flat = [s for run in sheets for s in run]
    assert len(flat) == len(set(flat)) == 100 and all(len(run) == 5 for run in sheets)
    assert min(flat) >= 1 and max(flat) < 900  # erp_sim's open worksheets
    with pytest.raises(ValueError):  # past the open worksheets
        single.fresh_worksheets(200)
