"""The ERP probe and the hold on a changed screen (workers/probing.py), driven through
the worker's burst mode and the API's test client, with the hand-written fake ERP."""

import time

import pytest

from service.settings import load_settings
from conftest import replace, wait_for
from core.errors import ConfigError, ScreenChanged
from integrations.base import ErpState, Probe
from test_worker import place, status
from workers.probing import START_SPREAD_SECONDS

CHANGED = ScreenChanged("the line form has no field 'product_nr'", screen="line form")


def events(instance, kind):
    return [e for e in instance.events.page(after=0, limit=500)["events"] if e["type"] == kind]


def test_a_visit_on_a_changed_screen_holds_the_orders_without_spending_an_attempt(
        instance, erp):
    erp.failures["h-1"] = [CHANGED]
    place(instance, "h-1")
    place(instance, "h-2", worksheet="559")
    instance.worker.burst()
    for uniqueid in ("h-1", "h-2"):  # the one that met it, and the one not visited yet
        record = status(instance, uniqueid)
        assert (record["status"], record["reason_code"], record["attempts"]) == (
            "placed", "ERP_SCREEN_CHANGED", 0)
    assert [ids for _, ids in erp.visits] == [["h-1"]]  # nothing visited while held
    erp_health = instance.alive()["erp"]
    assert erp_health["held"] and erp_health["state"] == "changed"
    assert "product_nr" in erp_health["detail"]
    changed, = events(instance, "erp.changed")
    assert changed["reason_code"] == "ERP_SCREEN_CHANGED" and changed["uniqueid"] == ""
    instance.worker.burst()  # still held, the next probe not due: nothing happens
    assert len(erp.visits) == 1 and instance.store.count_active() == 2


def test_a_probe_that_passes_resumes_and_every_held_order_is_created_once(instance, erp):
    erp.failures["r-1"] = [CHANGED]
    for n in range(3):
        place(instance, f"r-{n}")
    instance.worker.burst()
    assert instance.worker.erp.held
    instance.worker._next_probe = 0  # the held probe's backoff is over
    instance.worker.burst()
    assert not instance.worker.erp.held and instance.worker.erp.state == ErpState.OK
    assert {status(instance, f"r-{n}")["status"] for n in range(3)} == {"created"}
    assert sorted(uid for *_, uid in erp.lines) == ["r-0", "r-1", "r-2"]
    assert status(instance, "r-1")["attempts"] == 1  # the held visit was not counted
    assert len(events(instance, "erp.ok")) == 1


def test_a_probe_that_finds_a_changed_screen_at_start_holds_before_any_visit(instance, erp):
    erp.probe_answers = [Probe(ErpState.CHANGED, "lines: no column 'quantity'")]
    instance.worker._next_probe = 0  # the start's spread is over
    instance.worker.burst()  # idle: the probe runs
    assert instance.worker.erp.held and erp.probes == [(None, "admin")]
    place(instance, "s-1")
    instance.worker.burst()
    assert erp.visits == [] and status(instance, "s-1")["status"] == "placed"
    erp.probe_answers = [Probe(ErpState.UNREACHABLE, "ERP down")]  # held until it is *ok*
    instance.worker._next_probe = 0
    instance.worker.burst()
    assert instance.worker.erp.held and erp.visits == []
    instance.worker._next_probe = 0
    instance.worker.burst()
    assert status(instance, "s-1")["status"] == "created"


def test_the_first_probe_is_spread_over_the_start_and_a_good_visit_counts_as_one(
        instance, erp):
    assert 0 < instance.worker._next_probe - time.monotonic() <= START_SPREAD_SECONDS
    place(instance, "g-1", worksheet="31")
    instance.worker.burst()
    erp_health = instance.alive()["erp"]
    assert erp.probes == [] and erp_health["state"] == "ok"
    assert "worksheet 31" in erp_health["detail"] and erp_health["checked_at"]
    assert instance.worker._next_probe - time.monotonic() > START_SPREAD_SECONDS  # an interval


def test_an_order_the_probe_cannot_see_is_held_once_then_spends_its_attempts(
        instance, erp, settings):
    erp.failures["o-1"] = [CHANGED] * 20
    place(instance, "o-1")
    instance.worker.burst()
    instance.worker._next_probe = 0
    instance.worker.burst()  # the probe passes; the order meets the screen again
    record = status(instance, "o-1")
    assert (record["status"], record["reason_code"]) == ("error", "ERP_SCREEN_CHANGED")
    assert record["attempts"] == settings.max_attempts
    assert not instance.worker.erp.held
    assert not any(uid == "o-1" for *_, uid in erp.lines)


def test_the_probe_opens_probe_worksheet_else_the_last_one_written(instance, erp, settings):
    instance.worker._next_probe = 0
    instance.worker.burst()
    assert erp.probes == [(None, "admin")]  # nothing written yet
    place(instance, "w-1", worksheet="777")
    instance.worker.burst()
    instance.worker._next_probe = 0
    instance.worker.burst()
    assert erp.probes[-1] == ("777", "admin")
    instance.worker.settings = replace(settings, probe_worksheet="42")
    instance.worker._next_probe = 0
    instance.worker.burst()
    assert erp.probes[-1] == ("42", "admin")


def test_without_a_login_the_state_stays_unknown_and_says_why(instance, erp, settings):
    instance.worker.settings = replace(settings, erp_username="", erp_password="")
    instance.worker._next_probe = 0
    instance.worker.burst()
    erp_health = instance.alive()["erp"]
    assert erp_health["state"] == "unknown" and "no ERP login" in erp_health["detail"]
    assert erp.probes == []


def test_put_probe_answers_the_result_and_409_with_the_worker_stopped(client, instance, erp):
    answer = client.put("/probe")
    assert answer.status_code == 409 and answer.get_json()["error"] == "probe_not_run"
    instance.worker.start()
    erp.probe_answers = [Probe(ErpState.CHANGED, "worksheet: no Lines tab")]
    answer = client.put("/probe")
    assert answer.status_code == 200
    assert answer.get_json()["state"] == "changed" and answer.get_json()["held"]
    assert client.get("/alive").get_json()["erp"]["held"]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'oilmat_erp_state{state="changed"} 1.0' in metrics
    assert "oilmat_erp_held 1.0" in metrics
    answer = client.put("/start_worker").get_json()  # an operator resumes
    assert answer["resumed"] is True and not client.get("/alive").get_json()["erp"]["held"]


def test_a_held_worker_resumed_by_an_operator_works_its_orders(client, instance, erp):
    erp.failures["p-1"] = [CHANGED]
    place(instance, "p-1")
    instance.worker.start()
    wait_for(lambda: instance.worker.erp.held, message="held")
    assert status(instance, "p-1")["status"] == "placed"
    assert erp.trusted == 0
    assert client.put("/start_worker").get_json()["resumed"] is True
    assert erp.trusted == 1  # what made the integration doubt its reads is forgotten
    wait_for(lambda: status(instance, "p-1")["status"] == "created", message="created")


@pytest.mark.parametrize("value", ["no such sheet", "-1", "x" * 40])
def test_a_probe_worksheet_that_is_no_worksheet_number_is_refused(value, tmp_path):
    env = {"SECRET_KEY": "k" * 32, "API_TOKEN": "t" * 20, "PROBE_WORKSHEET": value}
    with pytest.raises(ConfigError, match="PROBE_WORKSHEET"):
        load_settings(5001, "W", env=env)
