"""Chaos mode of the stand-in ERP, option by option, in both flavours (Flask test client)."""

import threading
import time

import pytest

from erp_sim.__main__ import parse_args
from tests.erp_helpers import sim_app
from tests.test_erp_sim import csrf_from, login, plant, sim_lines

pytestmark = pytest.mark.parametrize("flavor", ["classic", "spa"])


@pytest.fixture
def make_app(tmp_path):
    def make(flavor, **options):
        return sim_app(tmp_path, flavor=flavor, **options)
    return make


def logged_in(app, flavor):
    client = app.test_client()
    if flavor == "classic":
        login(client)
        # The token from the login form: a locked worksheet page has no form to take it from.
        client.add = lambda number, text: client.post(f"/worksheets/{number}/lines", data={
            "csrf_token": csrf_from(client.get("/login")), "product_nr": "10", "amount": "1",
            "text": text})
        client.remove = lambda number, line_id: client.post(
            f"/worksheets/{number}/lines/{line_id}/delete",
            data={"csrf_token": csrf_from(client.get("/login"))})
    else:
        token = client.get("/api/session").get_json()["csrf_token"]
        token = client.post("/api/login", json={"username": "admin", "password": "admin"},
                            headers={"X-CSRF-Token": token}).get_json()["csrf_token"]
        client.add = lambda number, text: client.post(
            f"/api/worksheets/{number}/lines", headers={"X-CSRF-Token": token},
            json={"product_nr": "10", "amount": "1", "text": text})
        client.remove = lambda number, line_id: client.delete(
            f"/api/worksheets/{number}/lines/{line_id}", headers={"X-CSRF-Token": token})
    return client


def page_of(flavor, number):
    return f"/worksheets/{number}" if flavor == "classic" else f"/api/worksheets/{number}"


def test_off_by_default(flavor, make_app):
    config = make_app(flavor).config["ERP_SIM"]
    assert (config.latency, config.error_rate, config.rerender, config.slow_save,
            config.lock_rate) == (None, 0.0, False, 0.0, 0.0)
    client = logged_in(make_app(flavor), flavor)
    page = client.get("/" if flavor == "spa" else "/worksheets/5").get_data(as_text=True)
    assert ('data-rerender-ms="0"' in page) if flavor == "spa" else ("setTimeout" not in page)


def test_latency(flavor, make_app):
    client = make_app(flavor, latency=(0.2, 0.3)).test_client()
    started = time.monotonic()
    client.get("/_sim/health")
    assert time.monotonic() - started < 0.15  # never for /_sim
    started = time.monotonic()
    client.get("/login" if flavor == "classic" else "/api/session")
    assert 0.2 <= time.monotonic() - started < 0.6


def test_error_rate_answers_500_or_502_and_is_seedable(flavor, make_app):
    def statuses(seed):
        client = make_app(flavor, error_rate=0.5, seed=seed).test_client()
        return [client.get("/login" if flavor == "classic" else "/").status_code
                for _ in range(40)]
    first = statuses(3)
    assert set(first) == {200, 500, 502} and first == statuses(3)
    client = make_app(flavor, error_rate=1.0).test_client()
    assert all(client.get("/_sim/health").status_code == 200 for _ in range(5))
    if flavor == "spa":
        response = client.get("/api/session")
        assert response.get_json()["error"] in ("500 Internal Server Error", "502 Bad Gateway")


def test_an_error_after_the_work_still_stored_the_line(flavor, make_app):
    app = make_app(flavor, error_rate=0.5, seed=11)
    client, outcomes = logged_in_retrying(app, flavor), set()
    for i in range(40):
        try:
            response = client.add(5, f"OilMat c{i}")
        except (AttributeError, KeyError):  # the form itself failed to load
            continue
        stored = any(line["reference"] == f"OilMat c{i}" for line in
                     client.get("/_sim/worksheets/5").get_json()["lines"])
        outcomes.add((response.status_code, stored))
    assert (500, True) in outcomes or (502, True) in outcomes  # done, then answered 5xx
    assert (500, False) in outcomes or (502, False) in outcomes  # 5xx, nothing done


def logged_in_retrying(app, flavor):
    for _ in range(50):
        try:
            return logged_in(app, flavor)
        except (AttributeError, KeyError):  # a chaos error during the login
            continue
    raise AssertionError("could not log in")


def test_rerender_script_is_on_every_page(flavor, make_app):
    client = logged_in(make_app(flavor, rerender=True, seed=1), flavor)
    page = client.get("/worksheets/5" if flavor == "classic" else "/").get_data(as_text=True)
    if flavor == "classic":
        assert "main.innerHTML = main.innerHTML" in page
    else:
        assert 'data-rerender-ms="0"' not in page and "render(true)" in page


def test_slow_save_stores_at_once_and_confirms_later(flavor, make_app):
    app = make_app(flavor, slow_save=0.5)
    client = logged_in(app, flavor)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (client.add(6, "OilMat slow"), done.set()))
    started = time.monotonic()
    thread.start()
    deadline = time.monotonic() + 2
    while not app.test_client().get("/_sim/worksheets/6").get_json()["lines"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert not done.is_set() and time.monotonic() - started < 0.4  # stored, not confirmed
    thread.join(3)
    assert done.is_set() and time.monotonic() - started >= 0.5


def test_lock_rate_locks_for_a_moment_and_says_so(flavor, make_app):
    client = logged_in(make_app(flavor, lock_rate=1.0), flavor)
    response = client.add(8, "OilMat locked")
    assert response.status_code == 423
    assert "Worksheet 8 is being edited by another user" in response.get_data(as_text=True)
    page = client.get(page_of(flavor, 8))
    assert "Worksheet 8 is being edited by another user" in page.get_data(as_text=True)
    assert client.get("/_sim/worksheets/8").get_json()["lines"] == []
    client = logged_in(make_app(flavor, lock_rate=0.3, seed=5), flavor)
    results = []
    for i in range(30):
        results.append(client.add(9, f"OilMat l{i}").status_code)
        time.sleep(0.05)
    stored = 302 if flavor == "classic" else 201
    assert set(results) == {423, stored}
    assert len(client.get("/_sim/worksheets/9").get_json()["lines"]) == results.count(stored)


def test_a_delete_meets_the_same_chaos(flavor, make_app):
    app = make_app(flavor, lock_rate=1.0)
    client = logged_in(app, flavor)
    line = plant(client, 10, "OilMat kept")
    response = client.remove(10, line["id"])
    assert response.status_code == 423
    assert "Worksheet 10 is being edited by another user" in response.get_data(as_text=True)
    assert sim_lines(client, 10) == [line]
    app = make_app(flavor, slow_save=0.5)
    client = logged_in(app, flavor)
    line = plant(client, 11, "OilMat slowly deleted")
    started = time.monotonic()
    thread = threading.Thread(target=client.remove, args=(11, line["id"]))
    thread.start()
    deadline = time.monotonic() + 2
    while sim_lines(app.test_client(), 11):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert thread.is_alive() and time.monotonic() - started < 0.4  # deleted, not confirmed
    thread.join(3)
    assert time.monotonic() - started >= 0.5
    client = logged_in_retrying(make_app(flavor, error_rate=0.5, seed=11), flavor)
    outcomes = set()
    for i in range(40):
        line = plant(client, 12, f"OilMat e{i}")
        try:
            status = client.remove(12, line["id"]).status_code
        except (AttributeError, KeyError):  # the token's page itself failed to load
            continue
        outcomes.add((status, line not in sim_lines(client, 12)))
    assert {(500, True), (502, True)} & outcomes  # deleted, then answered 5xx
    assert {(500, False), (502, False)} & outcomes  # 5xx, nothing done


def test_cli_parses_every_chaos_flag(flavor):
    args = parse_args(["--port", "0", "--flavor", flavor, "--latency", "0-0.5",
                       "--error-rate", "0.05", "--session-ttl", "20", "--rerender",
                       "--slow-save", "1", "--lock-rate", "0.05", "--seed", "4",
                       "--user", "clerk:pw:x", "--user", "b:c"])
    assert (args.flavor, args.latency, args.error_rate, args.rerender, args.slow_save,
            args.lock_rate, args.seed, args.user) == (
        flavor, (0.0, 0.5), 0.05, True, 1.0, 0.05, 4, [("clerk", "pw:x"), ("b", "c")])
    for bad in (["--latency", "0.5-0.1"], ["--error-rate", "1.5"], ["--user", "nopass"]):
        with pytest.raises(SystemExit):
            parse_args(["--port", "0", *bad])
