"""Chaos end to end: a hostile stand-in ERP, a real instance, real Chromium, both UI
flavors. Every order must end ``created`` with exactly one line on its worksheet.

The ERP runs with every chaos option of the issue at once: latency, 5xx answers,
sessions that expire, pages re-rendered under the script, saves confirmed late, and
worksheets locked by "another user". ``make test`` runs a reduced load (CHAOS_ORDERS,
default 12 over 4 worksheets) on the classic flavour to stay inside CI's budget (the
SPA meets the same chaos in test_integration_erp_sim_flow.py and behind the hostile
network in test_e2e_netfaults.py); ``make chaos`` runs the full 300 orders over 20
worksheets on both flavours (CHAOS_FLAVORS).
"""

import itertools
import os
import time

import pytest

from erp_helpers import ErpSimServer
from instance_helpers import RunningInstance
from integrations import AVAILABLE

pytestmark = pytest.mark.e2e

ORDERS = int(os.environ.get("CHAOS_ORDERS", "12"))
WORKSHEETS = int(os.environ.get("CHAOS_WORKSHEETS", "4"))
#: the flavours to run (make test: classic; make chaos: classic,spa)
FLAVORS = os.environ.get("CHAOS_FLAVORS", "classic").split(",")
CHAOS = ["--latency", "0-0.5", "--error-rate", "0.05", "--session-ttl", "20", "--rerender",
         "--slow-save", "1", "--lock-rate", "0.05"]


@pytest.mark.parametrize("flavor,system", [(f, s) for f, s in (("classic", "erp_sim"),
                                                                  ("spa", "erp_sim_spa"))
                                           if f in FLAVORS])
def test_every_order_created_exactly_once_under_chaos(tmp_path, flavor, system):
    if system not in AVAILABLE:
        pytest.fail(f"integration {system} is not registered")
    with ErpSimServer(extra_args=["--flavor", flavor, "--seed", "7", *CHAOS]) as erp:
        inst = RunningInstance(tmp_path, erp.url, ERP_SYSTEM=system, MAX_ATTEMPTS="30",
                               RETRY_BASE_SECONDS="0.2", RETRY_MAX_SECONDS="2",
                               RETRY_BUDGET_SECONDS="1200", PAGE_LOAD_TIMEOUT="20",
                               WAIT_TIMEOUT="10").start()
        try:
            sheets = itertools.cycle(range(300, 300 + WORKSHEETS))
            ids = {f"chaos-{flavor}-{n}": next(sheets) for n in range(ORDERS)}
            started = time.monotonic()
            for uniqueid, sheet in ids.items():
                assert inst.create(uniqueid=uniqueid, worksheet=str(sheet)).status_code == 200
            records = inst.wait_final(ids, timeout=60 + ORDERS * 6)
            elapsed = time.monotonic() - started
            errors = {u: (r["reason_code"], r["reason_text"]) for u, r in records.items()
                      if r["status"] != "created"}
            assert not errors, errors
            retried = sum(1 for r in records.values() if r["attempts"] > 1)
            lines = {sheet: erp.worksheet(sheet)["lines"] for sheet in set(ids.values())}
            for uniqueid, sheet in ids.items():
                count = sum(uniqueid in line["reference"].split() for line in lines[sheet])
                assert count == 1, f"{uniqueid}: {count} lines on worksheet {sheet}"
            print(f"\n{flavor}: {ORDERS} orders over {WORKSHEETS} worksheets under chaos: "
                  f"{elapsed:.1f} s, {retried} needed more than one attempt")
        finally:
            inst.stop()
