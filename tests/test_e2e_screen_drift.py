"""End to end, issue 27: the ERP's screens change under a workshop with orders flowing.

A real ``api.py`` process, a real erp_sim, real headless Chromium. erp_sim is switched
to UI revision 2 (a vendor update: a field and a button renamed, the lines table's
columns moved) while orders are being written: within one probe interval ``/alive``
says ``changed`` and held, the orders stay ``placed`` (none in ``error``), and the ERP
receives no write of a line (its own request log); switched back, the probe passes and
every order is created exactly once (read through ``/_sim/worksheets/<n>``). The same
with erp_sim unchanged and a proxy altering its pages on their way (the issue's own
check: names, markup, the column order). An idle
workshop notices it by its interval probe. And the bad input: a ``PROBE_WORKSHEET``
that does not exist, is closed or belongs to no customer is said so, and holds nothing.

``make test`` runs the classic flavour with a few orders; ``make chaos`` both flavours
with more (``DRIFT_ORDERS``, ``DRIFT_FLAVORS``).
"""

import collections
import os
import re
import time

import pytest

from conftest import wait_for
from erp_helpers import ErpSimServer
from instance_helpers import RunningInstance
from netfaults import FaultyProxy

pytestmark = pytest.mark.e2e

#: orders posted before the change and again while it is held
ORDERS = int(os.environ.get("DRIFT_ORDERS", "4"))
#: erp_sim's flavours to run it on
FLAVORS = os.environ.get("DRIFT_FLAVORS", "classic").split(",")
#: PROBE_INTERVAL_SECONDS of the instance under test
INTERVAL = 2.0
SYSTEMS = {"classic": "erp_sim", "spa": "erp_sim_spa"}


def alive_erp(instance):
    return instance.session.get(instance.url + "/alive", timeout=5).json()["erp"]


def post(instance, prefix, count, sheets):
    """Post ``count`` orders over ``sheets``. :returns: ``{uniqueid: worksheet}``"""
    orders = {f"{prefix}-{n}": sheets[n % len(sheets)] for n in range(count)}
    for n, (uniqueid, sheet) in enumerate(orders.items()):
        answer = instance.create(uniqueid=uniqueid, worksheet=str(sheet), product_nr="10",
                                 product_amount=str(n + 1))
        assert answer.status_code == 200, answer.text
    return orders


def drift_and_back(instance, erp, sheets, prefix, change, restore):
    """Orders flowing; ``change()`` the screens once the first line is on a worksheet:
    within one probe interval the state is ``changed`` and held, further orders stay
    ``placed`` with no attempt spent, none ends in ``error``, and the ERP receives no
    write of a line (its own request log) and its worksheets stay as they were; then
    ``restore()``: the probe passes and every order is created exactly once (read
    through ``/_sim/worksheets/<n>``).

    :returns: ``(seconds until changed was noticed, seconds until resumed, /alive erp)``
    """
    flowing = post(instance, f"{prefix}-a", ORDERS, sheets)
    first = next(iter(flowing))
    wait_for(lambda: erp.lines_with(flowing[first], first), 60, 0.05, "the first line written")
    change()
    changed_at = time.monotonic()
    erp_state = wait_for(lambda: (e := alive_erp(instance))["state"] == "changed"
                         and e["held"] and e, INTERVAL + 30, 0.05, "state changed")
    noticed = time.monotonic() - changed_at
    erp.clear_requests()
    sheets_then = {sheet: erp.worksheet(sheet)["lines"] for sheet in sheets}
    held = post(instance, f"{prefix}-b", ORDERS, sheets)
    # a held probe after they arrived (5 s backoff), and the visit the screen change cut
    # short has put its orders back: the worker loops past the held orders, it would have
    # taken one by then
    last = alive_erp(instance)["checked_at"]
    wait_for(lambda: alive_erp(instance)["checked_at"] != last
             and all(instance.status(uid)["status"] != "processing" for uid in {**flowing, **held}),
             30, 0.1, "a held probe, no order in hand")
    statuses = {uid: instance.status(uid) for uid in {**flowing, **held}}
    assert not [uid for uid, r in statuses.items() if r["status"] == "error"], statuses
    waiting = {uid: r for uid, r in statuses.items() if r["status"] != "created"}
    assert set(held) <= set(waiting)
    assert {r["status"] for r in waiting.values()} == {"placed"}, waiting
    assert all(r["attempts"] == 0 for uid, r in waiting.items() if uid in held)
    assert erp.line_writes() == [], "a line was written on a changed screen"
    assert {sheet: erp.worksheet(sheet)["lines"] for sheet in sheets} == sheets_then
    assert alive_erp(instance)["state"] == "changed"

    restore()
    back_at = time.monotonic()
    wait_for(lambda: (e := alive_erp(instance))["state"] == "ok" and not e["held"],
             60, 0.1, "the probe passing again")
    resumed = time.monotonic() - back_at
    orders = {**flowing, **held}
    done = instance.wait_final(list(orders), timeout=120)
    assert {uid: r["status"] for uid, r in done.items()} == dict.fromkeys(orders, "created")
    once = {uid: len(erp.lines_with(sheet, uid)) for uid, sheet in orders.items()}
    assert once == dict.fromkeys(orders, 1), once
    return noticed, resumed, erp_state


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_changed_screen_holds_the_orders_and_nothing_is_written_until_it_is_back(
        tmp_path, flavor):
    sheets = (610, 611) if flavor == "classic" else (620, 621)
    with ErpSimServer(flavor=flavor, save_delay=0.05) as erp:
        instance = RunningInstance(tmp_path, erp.url, ERP_SYSTEM=SYSTEMS[flavor],
                                   PROBE_INTERVAL_SECONDS=str(INTERVAL)).start()
        try:
            noticed, resumed, erp_state = drift_and_back(
                instance, erp, sheets, f"drift-{flavor}", lambda: erp.set_ui_revision(2),
                lambda: erp.set_ui_revision(1))
        finally:
            instance.stop()
    print(f"\n{flavor}: changed noticed {noticed:.1f} s after the switch "
          f"({erp_state['detail']}); held orders resumed {resumed:.1f} s after it was back")


#: what a proxy between the browser and erp_sim's classic pages changes on their way, as
#: the issue's outside check does -- erp_sim itself stays as it is: (pattern, replacement)
PROXY_EDITS = {
    # the lines table's columns in another order: whole cells move, their classes with them
    "columns": (
        (r"<th>Product nr</th><th>Product</th><th>Amount</th>",
         "<th>Amount</th><th>Product nr</th><th>Product</th>"),
        (r'(<td class="product-nr">[^<]*</td><td class="product-name">[^<]*</td>)'
         r'(<td class="amount">[^<]*</td>)', r"\2\1"),
    ),
    # names and markup: the product field and the save button renamed, the rows of the
    # lines table another class (read as lines, they would be no lines at all)
    "names": (
        (r'(name|id|for)="product_nr"', r'\1="item_no"'),
        (r'id="add-line-submit"', 'id="line-save"'),
        (r'<tr class="line"', '<tr class="row"'),
    ),
}
#: which of them ``make test`` runs (``make chaos``: all)
PROXY_KINDS = os.environ.get("DRIFT_PROXY_EDITS", "columns").split(",")


def altering(edits, applied):
    """A :meth:`FaultyProxy.set_rewrite` function making ``edits`` to every HTML page;
    ``applied`` counts each edit's replacements (an edit that never applied would make
    the test prove nothing)."""
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in edits]

    def rewrite(request, content_type, body):
        if not content_type.startswith("text/html"):
            return body
        text = body.decode()
        for index, (pattern, replacement) in enumerate(compiled):
            text, count = pattern.subn(replacement, text)
            applied[index] += count
        return text.encode()
    return rewrite


@pytest.mark.parametrize("kind", PROXY_KINDS)
def test_pages_altered_on_their_way_to_the_browser_hold_the_orders_until_they_are_not(
        tmp_path, kind):
    """The issue's own check: erp_sim unchanged, a proxy in front of it alters its pages
    (``PROXY_EDITS``) while orders flow, then stops altering them."""
    sheets = (614, 615) if kind == "columns" else (616, 617)
    applied = collections.Counter()
    with ErpSimServer(save_delay=0.05) as erp, FaultyProxy(erp.url) as proxy:
        instance = RunningInstance(tmp_path, proxy.url,
                                   PROBE_INTERVAL_SECONDS=str(INTERVAL)).start()
        try:
            noticed, resumed, erp_state = drift_and_back(
                instance, erp, sheets, f"proxy-{kind}",
                lambda: proxy.set_rewrite(altering(PROXY_EDITS[kind], applied)),
                lambda: proxy.set_rewrite(None))
        finally:
            instance.stop()
        assert not proxy.errors
    assert all(applied[index] for index in range(len(PROXY_EDITS[kind]))), applied
    assert erp_state["detail"].removeprefix("seen by a visit: ").startswith(
        ("line form", "lines", "worksheet")), erp_state
    print(f"\nproxy, {kind}: changed noticed {noticed:.1f} s after the pages were altered "
          f"({erp_state['detail']}); held orders resumed {resumed:.1f} s after they were not")


def test_an_idle_workshop_notices_a_changed_screen_within_one_probe_interval(tmp_path):
    """No order flowing, so no visit sees it: the interval probe must, on the worksheet
    last written to."""
    with ErpSimServer(save_delay=0.05) as erp:
        instance = RunningInstance(tmp_path, erp.url,
                                   PROBE_INTERVAL_SECONDS=str(INTERVAL)).start()
        try:
            done = instance.wait_final(list(post(instance, "idle", 1, [613])), timeout=60)
            assert done["idle-0"]["status"] == "created"
            wait_for(lambda: (a := instance.session.get(instance.url + "/alive", timeout=5)
                              .json())["queue_length"] == 0 and not a["current_orders"],
                     10, 0.05, "an idle worker")
            erp.clear_requests()
            erp.set_ui_revision(2)
            changed_at = time.monotonic()
            erp_state = wait_for(lambda: (e := alive_erp(instance))["state"] == "changed"
                                 and e, INTERVAL * 1.1 + 10, 0.05, "state changed")
            noticed = time.monotonic() - changed_at
            erp.set_ui_revision(1)
            wait_for(lambda: alive_erp(instance)["state"] == "ok", 60, 0.1, "ok again")
        finally:
            instance.stop()
        # the next interval probe (INTERVAL +-10 %) plus the probe itself (~1 s)
        assert noticed <= INTERVAL * 1.1 + 3, noticed
        assert erp_state["held"] and erp_state["detail"].startswith(("line form", "lines"))
        assert erp.line_writes() == []
        print(f"\nidle: changed noticed by the interval probe {noticed:.1f} s after the "
              f"switch (PROBE_INTERVAL_SECONDS={INTERVAL:g}): {erp_state['detail']}")


@pytest.mark.parametrize("sheet, code", [("1500", "WORKSHEET_NOT_FOUND"),
                                         ("950", "WORKSHEET_CLOSED"),
                                         ("640", "belongs to no customer")])
def test_a_probe_worksheet_missing_closed_or_of_nobody_is_said_and_holds_nothing(
        tmp_path, sheet, code):
    with ErpSimServer(save_delay=0.05) as erp:
        if code == "belongs to no customer":
            erp.set_customer(sheet, "")
        instance = RunningInstance(tmp_path, erp.url, PROBE_WORKSHEET=sheet).start()
        try:
            answer = instance.session.put(instance.url + "/probe", timeout=130)
            assert answer.status_code == 200, answer.text
            probe = answer.json()
            assert probe["state"] == "ok" and not probe["held"], probe
            assert f"worksheet {sheet}: {code}" in probe["detail"], probe
            post(instance, f"probe-{sheet}", 1, [612])
            record = instance.wait_final([f"probe-{sheet}-0"], timeout=60)[f"probe-{sheet}-0"]
            assert record["status"] == "created", record
        finally:
            instance.stop()
        assert len(erp.lines_with(612, f"probe-{sheet}-0")) == 1
