"""The fleet under load, as Markdown for docs/benchmarks.md: the comparison table of
the runs (pool against local), the issue's targets judged on them, and the section
around both.

Apart from bench/bench_fleet_load.py because it only reads the results (dicts, as
``--json`` writes them) and runs nothing: the run imports it, never the other way.
"""

#: the issue's targets (issue 12), per configuration: (what, key, limit)
TARGETS = {
    (50, 50): [("create→created p95", "p95", 10.0, "s"), ("peak PSS of the tree", "pss_gib", 4.0, "GiB")],
    (200, 100): [("every instance alive after `up`", "alive_seconds", 60.0, "s"),
                 ("create→created p95", "p95", 15.0, "s"),
                 ("peak PSS of the tree", "pss_gib", 8.0, "GiB"),
                 ("orders lost or written twice", "bad_orders", 0, "")],
}


def config_label(workshops, rate, warmup=0):
    """How the tables name a configuration."""
    return f"{workshops} × {rate:g}/min" + (f", after {warmup} warm-up orders" if warmup else "")


def _num(value, unit="", digits=1):
    return "–" if value is None else f"{value:.{digits}f}{unit}"


def _ratio(a, b):
    return "–" if a is None or not b else f"{a / b:.2f}×"


def _pool_label(r):
    if r["pool"] == "grid":
        return f"pool (Grid, {r['slots']} slots)" if r.get("slots") else "pool (Grid)"
    return "`BROWSER_POOL=local`"


def render_rows(results):
    """Rows of the comparison table: each run, then pool / local of each configuration."""
    rows, by_config = [], {}
    for r in results:
        by_config.setdefault((r["workshops"], r["rate"], r.get("warmup") or 0), {})[r["pool"]] = r
    for (workshops, rate, warmup), runs in by_config.items():
        config = config_label(workshops, rate, warmup)
        for pool in ("grid", "local"):
            r = runs.get(pool)
            if r is None:
                continue
            if r.get("failed"):
                rows.append(f"| {config} | {_pool_label(r)} | not run: {r['failed']} | | | | | | | |")
                continue
            lines = r.get("lines") or {}
            rows.append(
                f"| {config} | {_pool_label(r)} | {_num(r.get('alive_seconds'), ' s')} | "
                f"{_num(r.get('p50'))} / {_num(r.get('p95'))} / {_num(r.get('max'), ' s')} | "
                f"{r.get('browsers', 0)}" + (f" ({r.get('grid_sessions', 0)} in use, {r.get('grid_waiting', 0)} waiting)"
                                             if pool == "grid" else "")
                + f" | {_num(r.get('pss_gib'), ' GiB', 2)} | {_num(r.get('load'))}{_cpu(r)} | "
                f"{r.get('created', 0)} / {r.get('error', 0)}{_reasons(r)} / {r.get('unfinished', 0)} "
                f"of {r.get('sent', 0)} | {lines.get('lost', '–')} / {lines.get('twice', '–')} / "
                f"{lines.get('wrong', '–')} / {lines.get('stray', '–')}"
                + (f" (and {lines['error_written']} written though in `error`)" if lines.get("error_written") else "")
                + " | "
                + (f"**did not finish**: {r['did_not_finish']}" if r.get("did_not_finish") else "finished")
                + (f"; orders posted up to {r['late_seconds']:.0f} s late" if r.get("late_seconds", 0) > 2 else "")
                + " |")
        pool, local = runs.get("grid"), runs.get("local")
        if pool and local and not pool.get("failed") and not local.get("failed"):
            rows.append(
                f"| {config} | **pool / local** | {_ratio(pool.get('alive_seconds'), local.get('alive_seconds'))} | "
                f"{_ratio(pool.get('p50'), local.get('p50'))} / {_ratio(pool.get('p95'), local.get('p95'))} / "
                f"{_ratio(pool.get('max'), local.get('max'))} | {_ratio(pool.get('browsers'), local.get('browsers'))} | "
                f"{_ratio(pool.get('pss_gib'), local.get('pss_gib'))} | {_ratio(pool.get('load'), local.get('load'))} "
                "| | | |")
    return rows


def _cpu(r):
    """``; cores 87 % busy, 1.90 CPU-s per order`` while orders arrived and drained
    (the whole machine: fleet, erp_sim servers and harness), when measured."""
    if r.get("cpu_seconds") is None:
        return ""
    idle = (f" (idle fleet before them: {100 * r['idle_cpu_share']:.0f} %)"
            if r.get("idle_cpu_share") is not None else "")
    kinds = r.get("cpu_by_kind") or {}
    split = ", ".join(f"{k} {v / max(1, r.get('accepted', 0)):.2f}" for k, v in kinds.items() if v)
    stolen = (f", {100 * r['steal_share']:.0f} % stolen by the host"
              if r.get("steal_share") is not None else "")
    return (f"; cores {100 * r['cpu_share']:.0f} % busy{idle}{stolen}, "
            f"{r['cpu_per_order']:.2f} CPU-s per order" + (f" ({split})" if split else ""))


def _reasons(r):
    """`` (ERP_UNAVAILABLE ×20)``: the reason codes of the orders that ended in error."""
    reasons = r.get("reasons") or {}
    return " (" + ", ".join(f"{code} ×{n}" for code, n in sorted(reasons.items())) + ")" if reasons else ""


def judge(r, key, limit):
    """``(measured text, verdict)`` of one target on one run (``None``: not measured)."""
    if r is None or r.get("failed"):
        return "not measured", "not measured"
    value = r.get(key)
    text = _num(value, digits=2) if isinstance(value, float) else str(value)
    if r.get("did_not_finish"):
        return text, f"**not met** (did not finish: {r['did_not_finish']})"
    if value is None:
        return "–", "not measured"
    return text, "**met**" if value <= limit else "**not met**"


def render_targets(results):
    runs = {(r["workshops"], r["rate"], r["pool"]): r for r in results if not r.get("warmup")}
    rows = []
    for (workshops, rate), targets in TARGETS.items():
        for what, key, limit, unit in targets:
            pool, local = runs.get((workshops, rate, "grid")), runs.get((workshops, rate, "local"))
            measured, verdict = judge(pool, key, limit)
            if key == "bad_orders" and pool and pool.get("error"):
                verdict += (f"; {pool['error']} other orders ended in `error`{_reasons(pool)}, "
                            "their clients told, nothing written for them")
            rows.append(f"| {workshops} × {rate:g}/min: {what} ≤ {limit:g}{' ' + unit if unit else ''} | {measured} | "
                        f"{judge(local, key, limit)[0]} | {verdict} |")
    rows += single_rows(results)
    return rows


def single_rows(results):
    """The single busy workshop against its own browser (p95 within +10 % of local, all
    created): judged after a warm-up where one was run (a fleet's Grid runs for days),
    and after a cold start as well (a Grid just restarted: its Java compiles itself)."""
    pairs = {}
    for r in results:
        if r["workshops"] == 1:
            pairs.setdefault((r["rate"], r.get("warmup") or 0), {})[r["pool"]] = r
    rows = []
    for (rate, warmup), runs in sorted(pairs.items(), key=lambda item: -item[0][1]):
        pool, local = runs.get("grid"), runs.get("local")
        if not (pool and local and not pool.get("failed") and not local.get("failed")
                and pool.get("p95") and local.get("p95")):
            continue
        ok = (pool["p95"] <= 1.1 * local["p95"] and not pool.get("did_not_finish")
              and pool.get("created") == pool.get("sent"))
        when = f"after {warmup} warm-up orders" if warmup else "from a cold start (Grid just started)"
        rows.append(f"| 1 × {rate:g}/min, {when}: a single busy workshop, no regression with the pool "
                    f"(p95 within +10 % of local, all created) | p95 {pool['p95']:.2f} s | "
                    f"p95 {local['p95']:.2f} s | {'**met**' if ok else '**not met**'} |")
    if not rows:
        rows.append("| a single busy workshop: no regression with the pool | not measured (run a 1×R "
                    "configuration) | | not measured |")
    return rows


def render(results, command, minutes, machine_line, notes=""):
    """The Markdown section for docs/benchmarks.md (``command`` as Markdown)."""
    header = ("| configuration | browsers | every instance alive after `up` | create→created p50 / p95 / max "
              "| peak browsers | peak PSS of the tree | peak load average (1 min); CPU while orders ran "
              "| orders created / error / unfinished | lines lost / twice / wrong / stray | run |\n"
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    harness = max((r.get("harness_peak_rss_mib", 0) for r in results), default=0)
    return f"""## The fleet under load (issue 12)

Command: {command}
Machine: {machine_line}

Each run: N workshops registered in a fresh registry, `manage.py up` (a real supervisord),
one erp_sim per 25 workshops at its default save delay (0.3 s per saved line), orders
arriving as a Poisson process at R per minute, each at a workshop drawn at random, for
**T = {minutes:g} min** (the same seed, so the same arrivals, for the pool and for local);
then every order is followed to its final status. A configuration *after N warm-up orders*
first posts N orders one after another, each followed to its end (not counted; their lines
are checked): a fleet that has run a while, against one just started. *Browsers*: the pool is `BROWSER_POOL=grid`
(the Selenium Grid under the same supervisord, `BROWSER_SLOTS` at its default), local is one
Chromium per busy instance. *create→created*: from the harness's clock before `POST /create`
to the `created` entry of the order's history. *Peak browsers*: Chromium main processes in
supervisord's tree at once (with the pool, in brackets, the most Grid sessions in use and the
most session requests waiting in its queue, each at its own peak). *PSS*:
proportional set size, shared pages split, summed over supervisord's whole tree (instances,
management API, Grid, chromedrivers, every Chromium process; see *Tree*), sampled every
~2 s or more (a sample's /proc reading takes at most a fifth of a core); GiB.
*CPU*: the whole machine's busy time (`/proc/stat`; the fleet, the erp_sim servers and
this harness) while orders arrived and drained, as a share of both cores, and per
accepted order; *stolen*: the share of both cores the hypervisor gave to other guests
meanwhile (`/proc/stat`'s steal: why the same run is slower another hour); in brackets the idle fleet's share over `--idle-seconds` after `up`.
*Lines*: every accepted order checked through erp_sim's `/_sim/worksheets/<n>`: lost (`created`
and no line), twice (more than one), wrong (product or amount), stray (a line of no order); an
order that ended in `error` must have no line (its client is told: not lost), its reason codes
are in the orders column. *Tree*: supervisord and everything under it, and what its programs
started that left it (a browser whose driver died is re-parented to init; found by the run's
folder in its environment), killed with the fleet at the end of each run. A run
that would exhaust the machine is stopped by a guard (`--pss-limit-gib`, `--min-available-gib`)
and reported as **did not finish** with what it measured until then. Ratios are pool / local
within the same invocation (below 1: the pool needs less).

{header}
{chr(10).join(render_rows(results))}

Targets (issue 12, this 2-core / 24 GiB machine), judged on the pool's run:

| target | with the pool | with `BROWSER_POOL=local` | verdict |
| --- | --- | --- | --- |
{chr(10).join(render_targets(results))}

The harness itself (one `requests.Session`, a thread pool for posting, one for polling)
peaked at {harness:.0f} MiB RSS; it and the erp_sim servers are not in the measured tree.
{notes}"""
