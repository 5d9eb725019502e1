"""``make bench`` / ``make bench-fleet``: run benchmarks and write docs/benchmarks.md.

    .venv/bin/python bench/run.py [--skip-instance] [--skip-single] [--skip-readback]
        [--skip-tryton] [--skip-fleet] [--skip-fleet-load]
        [--only instance,single,fleet,fleet-load,tryton,readback]

Each part prints Markdown with the command that produced it and the machine it ran on;
this script puts them together. Benchmarks, not timed tests: the figures are what one
run on this machine measured, with ratios taken within the same run.

Each part's section in docs/benchmarks.md starts with a ``<!-- bench:NAME DATE -->``
line. A part not run this time keeps its section from the last run that wrote it, so
``make bench`` (everything but the fleet under load, several minutes) and
``make bench-fleet`` (the fleet: density, and the load table, most of an hour) each
rewrite their own sections only. Hand-written notes in a section, between
``<!-- notes -->`` and ``<!-- /notes -->``, are kept when its part is run again (what
changed, why a figure moved: the figures themselves are the run's).

The Tryton part is three runs (:data:`TRYTON_RUNS`, about 6-8 minutes each): 8.0 in
English (issue 9), 8.0 in German and 7.0 LTS in French (issue 25), each against its
own naive baseline, with a table of the three ratios on top.
"""

import argparse
import re
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmarks.md"
#: the parts in the order of the file
PARTS = ("instance", "single", "fleet", "fleet-load", "tryton", "readback")
#: the fleet under load (bench/bench_fleet_load.py): the issue's configurations, a single busy
#: workshop for the "no regression" target (from a Grid just started, and after 30 warm-up
#: orders), with the pool and with BROWSER_POOL=local
FLEET_LOAD = ("--matrix", "1x60,1x60w30,20x30,50x50,200x100", "--pools", "grid,local", "--minutes", "3",
              "--via", "flock /tmp/browser.lock make bench-fleet")
#: the Tryton runs of ``make bench``: (series, the admin's language), issues 9 and 25
TRYTON_RUNS = (("8.0", "en"), ("8.0", "de"), ("7.0", "fr"))
_MARKER = re.compile(r"^<!-- bench:(\S+) (.*?) -->$", re.M)
_NOTES = re.compile(r"^<!-- notes -->\n.*?^<!-- /notes -->$", re.M | re.S)


def run(script, *args):
    result = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT,
                            capture_output=True, text=True)
    sys.stderr.write(result.stderr[-2000:])
    if result.returncode != 0:
        return f"## {script}\n\nFailed with exit code {result.returncode}:\n\n```\n" \
               f"{result.stderr[-1500:]}\n```\n"
    return result.stdout


def run_to_file(script, *args):
    """A part that writes its own Markdown (``--write``): that, else what it printed."""
    with tempfile.NamedTemporaryFile("r", suffix=".md") as part:
        out = run(script, *args, "--write", part.name)
        return Path(part.name).read_text() or out


def measure(name):
    if name == "instance":
        return run("bench_instance.py")
    if name == "single":  # one busy workshop, the pool against its own browser (issue 12)
        # five rounds: its rounds spread by +-15 % within minutes (docs/benchmarks.md)
        return run("bench_single_workshop.py", "--orders", "100", "--rounds", "5")
    if name == "readback":
        return run("bench_readback.py", "--systems", "classic,spa", "--orders", "40")
    if name == "tryton":
        return tryton()
    if name == "fleet":
        return run_to_file("bench_fleet_density.py", "--count", "50")
    if name == "fleet-load":
        return run_to_file("bench_fleet_load.py", *FLEET_LOAD)
    raise ValueError(name)


def tryton():
    """The Tryton runs of :data:`TRYTON_RUNS` one after the other, a table of their
    ratios first, then each run's own section (command, machine, tables)."""
    rows, parts = [], []
    for series, language in TRYTON_RUNS:
        label = f"{series}{' LTS' if series == '7.0' else ''}, `{language}`"
        out = run("bench_tryton.py", "--orders", "40", "--sales", "4", "--series", series,
                  "--language", language)
        out = out.replace("## bench_tryton.py\n", f"## Tryton {label}: bench_tryton.py\n", 1)
        parts.append(re.sub(r"^## ", "### ", out.strip("\n"), flags=re.M))
        figures = re.findall(r"\| ([\d.]+) \|\n", out)  # the s/line of both conditions
        ratio = re.search(r"\*\*([\d.]+)x\*\*", out)
        if len(figures) >= 2 and ratio:
            verdict = "met" if float(ratio.group(1)) >= 3 else "**NOT met**"
            rows.append(f"| {label} | {figures[0]} | {figures[1]} | "
                        f"{ratio.group(1)}x ({verdict}) |")
        else:
            rows.append(f"| {label} | failed | | see below |")
    runs = ", ".join(f"{series} in `{language}`" for series, language in TRYTON_RUNS)
    head = f"""## Tryton through sao: the integration against a naive baseline (issues 9 and 25)

`make bench` runs `bench/bench_tryton.py --orders 40 --sales 4 --series S --language L`
once per series and language, one after the other ({runs}): each on a
fresh stand-up, the integration and its naive baseline in the same run, every line
checked through Tryton's JSON-RPC. Target (issue 25, item 6): lines/min at least 3x the
naive baseline's on both series.

| series, admin's language | integration, s/line | naive baseline, s/line | ratio (target 3x) |
| --- | --- | --- | --- |
""" + "\n".join(rows)
    return "\n\n".join([head, *parts]) + "\n"


def keep_notes(old, new):
    """``new`` with the hand-written notes of ``old`` (``<!-- notes -->`` ...), if any,
    after its first paragraph of tables (the head of the section)."""
    notes = _NOTES.search(old or "")
    if not notes or _NOTES.search(new):
        return new
    first = re.search(r"^### ", new, re.M)  # before the first run's own section
    at = first.start() if first else len(new)
    return new[:at].rstrip("\n") + "\n\n" + notes.group(0) + "\n\n" + new[at:]


def sections(text):
    """``{name: (date, body)}`` of the marked sections of docs/benchmarks.md."""
    found = list(_MARKER.finditer(text))
    return {m.group(1): (m.group(2), text[m.end():found[i + 1].start() if i + 1 < len(found) else len(text)]
                         .strip("\n"))
            for i, m in enumerate(found)}


def assemble(kept, fresh, now):
    """The whole file: every part measured now, the others as they were."""
    parts = {**kept, **{name: (now, body.strip("\n")) for name, body in fresh.items()}}
    dates = ", ".join(f"{name} {parts[name][0]}" for name in PARTS if name in parts)
    head = (f"# Benchmarks\n\nWritten by `make bench` (everything but the fleet under load) and "
            f"`make bench-fleet` (the fleet's sections), each rewriting its own sections; when each "
            f"was measured: {dates}. Machines here are noisy: read the ratios measured within one run "
            f"next to the absolute figures.\n")
    body = [f"<!-- bench:{name} {parts[name][0]} -->\n{parts[name][1]}\n" for name in PARTS if name in parts]
    return "\n".join([head, *body])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in PARTS:
        parser.add_argument(f"--skip-{name}", action="store_true")
    parser.add_argument("--only", help="comma-separated parts to run: " + ",".join(PARTS))
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else \
        [n for n in PARTS if not getattr(args, f"skip_{n.replace('-', '_')}")]
    unknown = set(chosen) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}; the parts: {', '.join(PARTS)}")
    kept = sections(OUT.read_text(encoding="utf-8")) if OUT.exists() else {}
    now = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    fresh = {name: keep_notes(kept.get(name, (None, ""))[1], measure(name))
             for name in PARTS if name in chosen}
    OUT.write_text(assemble(kept, fresh, now), encoding="utf-8")
    print(f"wrote {OUT} ({', '.join(fresh)})")


if __name__ == "__main__":
    main()
