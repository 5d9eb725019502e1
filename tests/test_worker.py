"""The worker (workers/worker.py) driven directly in burst mode: orders are stored with
``Instance.submit``, then ``worker.burst()`` drains the queue and returns -- no thread,
no HTTP polling. Real SQLite files, a hand-written fake ERP.

Moved here from test_api.py, where they polled /get_order_status; every assertion
kept. The thread's own tests (start, stop, surviving a bug) stay in test_api.py."""

import time
from decimal import Decimal

import pytest

from core.errors import (ErpTimeout, ErpUnavailable, ProductNotFound, WorksheetClosed,
                         WorksheetNotFound, unconfirmed)
from conftest import WORKSHOP, replace
from workers.worker import IDLE_POLL_SECONDS
from workers.working import FINAL_LOOKS, VISIT_LINES


def place(instance, uniqueid="u-1", **changes):
    order = {"workshop": WORKSHOP, "worksheet": "558", "product_nr": "10",
             "product_amount": "5", "uniqueid": uniqueid, "username": "admin",
             "password": "pw-SECRET-4711"}
    order.update(changes)
    instance.submit(order)


def status(instance, uniqueid):
    return instance.store.get(uniqueid)


def test_burst_drains_the_queue_and_returns(instance, erp):
    for n in range(3):
        place(instance, f"d-{n}", worksheet=str(n))
    assert instance.worker.burst() == 1  # one batch of three visits
    assert {status(instance, f"d-{n}")["status"] for n in range(3)} == {"created"}
    assert instance.worker.burst() == 0  # nothing left: returns at once
    assert erp.closed >= 1  # like the thread, a burst leaves no browser behind


def test_burst_refuses_while_the_thread_runs(instance):
    instance.worker.start()
    with pytest.raises(RuntimeError):
        instance.worker.burst()


def test_default_credentials_are_used_when_the_order_has_none(instance, erp):
    place(instance, username=None, password=None)
    instance.worker.burst()
    assert status(instance, "u-1")["status"] == "created"
    assert erp.credentials_seen[0].password == "default-erp-secret"


def test_permanent_error_ends_at_once(instance, erp):
    erp.failures["u-1"] = [WorksheetClosed("Worksheet 950 is closed")]
    place(instance)
    instance.worker.burst()
    record = status(instance, "u-1")
    assert record["status"] == "error"
    assert record["reason_code"] == "WORKSHEET_CLOSED" and record["attempts"] == 1
    assert erp.calls == ["u-1"]
    last_error = instance.alive()["last_error"]
    assert last_error["uniqueid"] == "u-1" and last_error["reason_code"] == "WORKSHEET_CLOSED"


def test_transient_errors_are_retried_then_succeed(instance, erp):
    erp.failures["u-1"] = [ErpUnavailable("down"), RuntimeError("surprise")]
    place(instance)
    instance.worker.burst()
    record = status(instance, "u-1")
    assert record["status"] == "created"
    assert record["attempts"] == 3 and erp.calls == ["u-1"] * 3
    reasons = [h.get("reason_code") for h in record["history"] if h["status"] == "processing"]
    assert reasons == [None, "ERP_UNAVAILABLE", "UNEXPECTED_ERROR"]


def test_transient_errors_give_up_at_the_limit(instance, erp, settings):
    erp.failures["u-1"] = [ErpUnavailable("down")] * 10
    place(instance)
    instance.worker.burst()
    record = status(instance, "u-1")
    assert record["status"] == "error"
    assert record["reason_code"] == "ERP_UNAVAILABLE"
    assert record["attempts"] == settings.max_attempts
    assert "gave up after 5 attempts" in record["reason_text"]


def test_orders_for_one_worksheet_share_one_visit(instance, erp):
    for n, sheet in enumerate(["7", "8", "7", "9", "8", "7"]):
        place(instance, f"b-{n}", worksheet=sheet)
    instance.worker.burst()
    assert instance.store.count_active() == 0
    assert erp.visits == [("7", ["b-0", "b-2", "b-5"]), ("8", ["b-1", "b-4"]), ("9", ["b-3"])]
    assert {status(instance, f"b-{n}")["status"] for n in range(6)} == {"created"}


def test_a_long_run_for_one_worksheet_is_split_into_bounded_visits(instance, erp):
    count = VISIT_LINES + 3
    for n in range(count):
        place(instance, f"v-{n}", worksheet="7")
    instance.worker.burst()
    assert instance.store.count_active() == 0
    assert [len(ids) for _, ids in erp.visits] == [VISIT_LINES, 3]
    assert [uid for _, ids in erp.visits for uid in ids] == [f"v-{n}" for n in range(count)]


def test_one_bad_line_does_not_fail_its_worksheet_mates(instance, erp):
    erp.failures["m-1"] = [ProductNotFound("Unknown product number 999")]
    erp.failures["m-2"] = [ErpUnavailable("blip")]
    for n in range(3):
        place(instance, f"m-{n}", worksheet="7")
    instance.worker.burst()
    assert instance.store.count_active() == 0
    assert status(instance, "m-0")["status"] == "created"
    assert status(instance, "m-1")["reason_code"] == "PRODUCT_NOT_FOUND"
    assert status(instance, "m-2")["status"] == "created"
    assert status(instance, "m-2")["attempts"] == 2
    assert erp.visits == [("7", ["m-0", "m-1", "m-2"]), ("7", ["m-2"])]


def test_retry_budget_ends_an_order_before_the_attempt_limit(instance, erp, settings):
    instance.worker.settings = replace(settings, max_attempts=100, retry_budget_seconds=0.3)
    erp.failures["t-1"] = [ErpUnavailable("down")] * 1000
    place(instance, "t-1")
    instance.worker.burst()
    record = status(instance, "t-1")
    assert record["status"] == "error"
    assert record["reason_code"] == "ERP_UNAVAILABLE" and "gave up after" in record["reason_text"]
    assert 1 < record["attempts"] < 100


def test_a_repaired_line_is_created_with_the_repair_in_its_history(instance, erp):
    erp.repairs["r-1"] = ["removed 1 duplicate line"]
    place(instance, "r-1")
    instance.worker.burst()
    record = status(instance, "r-1")
    assert record["status"] == "created"
    assert record["history"][-1] == {"status": "created", "at": record["history"][-1]["at"],
                                     "reason_text": "repaired: removed 1 duplicate line"}
    assert instance.alive()["repairs"] == 1


# -- the look before giving up (an order whose line may be on the worksheet) ----------


def test_an_unconfirmed_write_is_looked_for_before_it_ends_and_found(instance, erp, settings):
    """The traced case: every try's save got no answer, but one of them stored the line.
    The order must end created -- its line was read back -- not in error."""
    erp.failures["x-1"] = [unconfirmed(ErpTimeout("no answer to the save"))] * 10
    erp.lines.append(("558", "10", Decimal("5"), "x-1"))  # what a timed-out save stored
    place(instance, "x-1")
    instance.worker.burst()
    record = status(instance, "x-1")
    assert record["status"] == "created"
    assert record["attempts"] == settings.max_attempts
    assert erp.looks == [("558", ["x-1"])]
    assert record["history"][-1]["reason_text"].startswith("line found on the worksheet by a read")
    assert len(erp.lines) == 1


def test_an_unconfirmed_write_not_on_the_sheet_ends_with_its_reason(instance, erp, settings):
    erp.failures["x-2"] = [unconfirmed(ErpTimeout("no answer to the save"))] * 10
    place(instance, "x-2")
    instance.worker.burst()
    record = status(instance, "x-2")
    assert record["status"] == "error" and record["reason_code"] == "ERP_TIMEOUT"
    assert "holds no line carrying it" in record["reason_text"]
    assert erp.looks == [("558", ["x-2"])] and erp.lines == []


def test_the_mark_stays_with_the_order_until_it_is_read(instance, erp):
    """An early try sent the line; the later ones failed before sending anything (the ERP
    too slow to load the page). The early send may still have landed."""
    erp.failures["x-3"] = [unconfirmed(ErpTimeout("no answer to the save"))] + \
        [ErpTimeout("the page did not load")] * 10
    erp.lines.append(("558", "10", Decimal("5"), "x-3"))
    place(instance, "x-3")
    instance.worker.burst()
    assert status(instance, "x-3")["status"] == "created"
    assert erp.looks == [("558", ["x-3"])]


def test_a_wrong_line_found_by_the_look_is_line_unverified(instance, erp):
    erp.failures["x-4"] = [unconfirmed(ErpTimeout("no answer"))] * 10
    erp.lines.append(("558", "11", Decimal("5"), "x-4"))
    place(instance, "x-4")
    instance.worker.burst()
    record = status(instance, "x-4")
    assert record["reason_code"] == "LINE_UNVERIFIED" and "shows 11 x 5" in record["reason_text"]


def test_looks_that_keep_failing_end_in_outcome_unknown(instance, erp):
    erp.failures["x-5"] = [unconfirmed(ErpTimeout("no answer"))] * 10
    erp.look_failures = [ErpTimeout("the page did not load")] * 10
    place(instance, "x-5")
    instance.worker.burst()
    record = status(instance, "x-5")
    assert record["status"] == "error" and record["reason_code"] == "OUTCOME_UNKNOWN"
    assert len(erp.looks) == FINAL_LOOKS
    assert "may be on worksheet 558" in record["reason_text"]
    assert "PUT /retry reads it first" in record["reason_text"]


def test_a_look_the_erp_refuses_ends_with_the_orders_own_reason(instance, erp):
    erp.failures["x-10"] = [unconfirmed(ErpTimeout("no answer"))] * 10
    erp.look_failures = [WorksheetNotFound("No worksheet 558")]
    place(instance, "x-10")
    instance.worker.burst()
    record = status(instance, "x-10")
    assert record["reason_code"] == "ERP_TIMEOUT" and len(erp.looks) == 1
    assert "reading its worksheet afterwards: WORKSHEET_NOT_FOUND" in record["reason_text"]


def test_a_look_that_fails_once_is_tried_again(instance, erp):
    erp.failures["x-6"] = [unconfirmed(ErpTimeout("no answer"))] * 10
    erp.look_failures = [ErpUnavailable("502")]
    erp.lines.append(("558", "10", Decimal("5"), "x-6"))
    place(instance, "x-6")
    instance.worker.burst()
    assert status(instance, "x-6")["status"] == "created"
    assert len(erp.looks) == 2


def test_a_failure_that_sent_nothing_ends_without_a_look(instance, erp):
    erp.failures["x-7"] = [ErpUnavailable("down")] * 10
    place(instance, "x-7")
    instance.worker.burst()
    assert status(instance, "x-7")["reason_code"] == "ERP_UNAVAILABLE"
    assert erp.looks == []


def test_an_integration_that_cannot_look_ends_as_before(instance, erp):
    erp.can_look = False
    erp.failures["x-8"] = [unconfirmed(ErpTimeout("no answer"))] * 10
    place(instance, "x-8")
    instance.worker.burst()
    assert status(instance, "x-8")["reason_code"] == "ERP_TIMEOUT"
    assert erp.looks == []


def test_after_a_save_with_no_answer_the_retry_waits_as_long_as_the_save_had(instance, erp,
                                                                            settings):
    """Reading back sooner finds nothing and writes a second line while the first save
    still runs (core.retry, rule 3). A lower bound on the wait: this cannot flake."""
    instance.worker.settings = replace(settings, page_load_timeout=0.6)
    erp.failures["x-9"] = [unconfirmed(ErpTimeout("no answer to the save"))]
    place(instance, "x-9")
    started = time.monotonic()
    instance.worker.burst()
    assert status(instance, "x-9")["status"] == "created"
    assert time.monotonic() - started >= 0.6


# -- the integration's life beside the worker (Integration.attach/idle/pause/...) ------------


class HoldingFake:
    """Adds to the fake ERP what a browser-driving integration tells the worker: it
    holds something, and what the worker said of idleness and waits."""

    def __init__(self, erp):
        self.erp, self.attached, self.idles, self.pauses = erp, [], [], []
        self.holding, self.browser_state = True, "ready"

    def __getattr__(self, name):  # everything else is the fake ERP's
        return getattr(self.erp, name)

    def attach(self, stop, observer):
        self.attached.append((stop, observer))

    def idle(self, seconds):
        self.idles.append(seconds)
        if seconds >= 0.3:
            self.holding = False  # given back, by its own rules

    def pause(self, seconds):
        self.pauses.append(seconds)

    def poll_seconds(self):
        return 0.05


def test_the_worker_tells_the_integration_how_long_it_is_idle_and_asks_nothing_else(settings, erp):
    from service.instance import Instance
    from tests.conftest import wait_for

    fake = HoldingFake(erp)
    instance = Instance(settings, make_integration=lambda: fake)
    try:
        worker = instance.worker
        assert worker.browser_state == "none"  # built on the first order, not before
        worker.start()
        place(instance, "i-1")
        wait_for(lambda: status(instance, "i-1")["status"] == "created", 5)
        assert fake.attached == [(worker._stop, worker.metrics)]
        wait_for(lambda: not fake.holding, 3, message="idle time reported until given back")
        assert fake.idles == sorted(fake.idles) and fake.idles[-1] >= 0.3
        # holding nothing: the loop waits the long idle poll, not the integration's
        assert worker._poll_seconds() == IDLE_POLL_SECONDS
        place(instance, "i-2")
        wait_for(lambda: status(instance, "i-2")["status"] == "created", 5)
        assert len(fake.attached) == 1  # one integration for the instance's life
    finally:
        instance.close(worker_timeout=10)


def test_the_worker_says_how_long_it_waits_before_a_retry(instance, erp):
    fake = HoldingFake(erp)
    instance.worker.make_integration = lambda: fake
    erp.failures["r-1"] = [ErpUnavailable("down")]
    place(instance, "r-1")
    instance.worker.burst()
    assert status(instance, "r-1")["status"] == "created"
    assert len(fake.pauses) == 1 and fake.pauses[0] > 0


def test_the_browser_state_is_the_integrations_with_in_use_and_idle_from_the_worker(instance, erp):
    fake = HoldingFake(erp)
    worker = instance.worker
    worker.make_integration = lambda: fake
    worker._integration_for_use()
    assert worker.browser_state == "idle"
    worker._visiting = True
    assert worker.browser_state == "in_use"
    fake.browser_state = "waiting"  # what a browser integration says while queued for a slot
    assert worker.browser_state == "waiting"
