"""``make bench``: run every benchmark and write docs/benchmarks.md.

    .venv/bin/python bench/run.py [--skip-fleet] [--skip-instance] [--skip-tryton] [--skip-readback]

Each part prints Markdown with the command that produced it and the machine it ran on;
this script puts them together. Benchmarks, not timed tests: the figures are what one
run on this machine measured, with ratios taken within the same run.
"""

import argparse
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmarks.md"


def run(script, *args):
    result = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT,
                            capture_output=True, text=True)
    sys.stderr.write(result.stderr[-2000:])
    if result.returncode != 0:
        return f"## {script}\n\nFailed with exit code {result.returncode}:\n\n```\n" \
               f"{result.stderr[-1500:]}\n```\n"
    return result.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-fleet", action="store_true")
    parser.add_argument("--skip-instance", action="store_true")
    parser.add_argument("--skip-tryton", action="store_true")
    parser.add_argument("--skip-readback", action="store_true")
    args = parser.parse_args()
    parts = [f"# Benchmarks\n\nWritten by `make bench` on "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Machines here are noisy: read "
             f"the ratios measured within one run next to the absolute figures.\n"]
    if not args.skip_instance:
        parts.append(run("bench_instance.py"))
    if not args.skip_readback:
        parts.append(run("bench_readback.py", "--systems", "classic,spa", "--orders", "40"))
    if not args.skip_tryton:
        parts.append(run("bench_tryton.py", "--orders", "40", "--sales", "4"))
    if not args.skip_fleet:
        with tempfile.NamedTemporaryFile("r", suffix=".md") as fleet:
            out = run("bench_fleet_density.py", "--count", "50", "--write", fleet.name)
            parts.append(Path(fleet.name).read_text() or out)
    OUT.write_text("\n".join(parts), encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
