"""The instance's HTTP API through Flask's test client, with a fake ERP."""

import json
import os
import re
import time

import pytest

from service.app import create_app
from core.errors import ErpUnavailable
from conftest import WORKSHOP, replace, wait_for
from workers.worker import IDLE_POLL_SECONDS

ORDER = {"workshop": WORKSHOP, "worksheet": "558", "product_nr": "10",
         "product_amount": "5", "uniqueid": "u-1", "username": "admin",
         "password": "pw-SECRET-4711"}


def order(**changes):
    body = dict(ORDER)
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def status(client, uniqueid):
    return client.get("/get_order_status", query_string={"uniqueid": uniqueid}).get_json()


# -- auth -------------------------------------------------------------------------

def test_alive_needs_no_token(instance):
    answer = create_app(instance).test_client().get("/alive")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["workshop"] == WORKSHOP and body["api"] == "running"
    assert body["worker"] == "stopped" and body["queue_length"] == 0


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"X-API-Key": "wrong"}, {"Authorization": "Basic abc"}])
@pytest.mark.parametrize("method,path", [("post", "/create"), ("get", "/queue"),
                                         ("put", "/kill"), ("put", "/clear_queue"),
                                         ("get", "/get_order_status"), ("put", "/start_worker"),
                                         ("get", "/openapi.json"), ("get", "/docs")])
def test_every_endpoint_but_alive_needs_the_token(instance, headers, method, path):
    client = create_app(instance).test_client()
    answer = getattr(client, method)(path, headers=headers, json=ORDER)
    assert answer.status_code == 401
    assert answer.get_json()["error"] == "unauthorized"
    assert instance.store.count_active() == 0


def test_x_api_key_is_accepted(instance):
    client = create_app(instance).test_client()
    answer = client.get("/queue", headers={"X-API-Key": instance.settings.api_token})
    assert answer.status_code == 200


# -- create -----------------------------------------------------------------------

def test_create_places_the_order(client):
    answer = client.post("/create", json=order())
    assert answer.status_code == 200
    assert answer.get_json() == {"uniqueid": "u-1", "status": "placed"}
    record = status(client, "u-1")
    assert record["status"] == "placed" and record["attempts"] == 0
    assert [h["status"] for h in record["history"]] == ["placed"]
    listing = client.get("/queue").get_json()
    assert listing["length"] == 1 and listing["tasks"][0]["uniqueid"] == "u-1"


def test_numbers_are_accepted_and_normalised(client):
    answer = client.post("/create", json=order(worksheet=558, product_nr=10,
                                               product_amount=2.50, uniqueid=99))
    assert answer.status_code == 200
    record = status(client, "99")
    assert (record["worksheet"], record["product_nr"], record["product_amount"]) == ("558", "10", "2.5")


def test_repost_is_idempotent_and_other_content_conflicts(client):
    assert client.post("/create", json=order()).status_code == 200
    again = client.post("/create", json=order())
    assert again.status_code == 200 and again.get_json()["status"] == "placed"
    assert client.get("/queue").get_json()["length"] == 1
    conflict = client.post("/create", json=order(product_amount="6"))
    assert conflict.status_code == 409
    assert conflict.get_json()["error"] == "duplicate_uniqueid"
    assert status(client, "u-1")["product_amount"] == "5"


BAD_BODIES = [
    ("missing everything", {}, {"workshop", "worksheet", "product_nr", "product_amount", "uniqueid"}),
    ("missing amount", order(product_amount=None), {"product_amount"}),
    ("zero amount", order(product_amount="0"), {"product_amount"}),
    ("negative amount", order(product_amount=-3), {"product_amount"}),
    ("text amount", order(product_amount="five"), {"product_amount"}),
    ("too many decimals", order(product_amount="1.0001"), {"product_amount"}),
    ("bool amount", order(product_amount=True), {"product_amount"}),
    ("list worksheet", order(worksheet=[558]), {"worksheet"}),
    ("null uniqueid", order(uniqueid=None), {"uniqueid"}),
    ("uniqueid with space", order(uniqueid="a b"), {"uniqueid"}),
    ("empty product", order(product_nr=""), {"product_nr"}),
    ("object workshop", order(workshop={"a": 1}), {"workshop"}),
    ("wrong workshop", order(workshop="Other Garage"), {"workshop"}),
    ("number password", order(password=1234), {"password"}),
]


@pytest.mark.parametrize("name,body,fields", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_orders_get_400_with_every_field(client, name, body, fields):
    assert client.post("/create", json=order(uniqueid="keep-me")).status_code == 200
    answer = client.post("/create", json=body)
    assert answer.status_code == 400
    payload = answer.get_json()
    assert payload["error"] == "validation_failed"
    assert set(payload["fields"]) == fields
    assert all(isinstance(reason, str) and reason for reason in payload["fields"].values())
    # nothing already accepted is lost
    listing = client.get("/queue").get_json()
    assert [t["uniqueid"] for t in listing["tasks"]] == ["keep-me"]


@pytest.mark.parametrize("data,content_type,code,error", [
    ("{not json", "application/json", 400, "malformed_json"),
    ("[1, 2]", "application/json", 400, "validation_failed"),
    ("workshop=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ("", "text/plain", 415, "unsupported_media_type"),
    (json.dumps({**ORDER, "pad": "x" * 70_000}), "application/json", 413, "request_entity_too_large"),
])
def test_unreadable_bodies_get_clear_4xx(client, data, content_type, code, error):
    answer = client.post("/create", data=data, content_type=content_type)
    assert answer.status_code == code
    assert answer.get_json()["error"] == error
    assert "Traceback" not in answer.get_data(as_text=True)
    assert client.get("/queue").get_json()["length"] == 0


def test_unknown_path_and_method_are_json(client):
    assert client.get("/nope").get_json()["error"] == "not_found"
    answer = client.get("/create")
    assert answer.status_code == 405 and answer.get_json()["error"] == "method_not_allowed"
    assert set(answer.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}  # RFC 9110
    assert answer.headers["Content-Type"] == "application/json"


# -- hostile bodies and loose values (issue 8) --------------------------------------

@pytest.mark.parametrize("raw,needle", [
    (b"[" * 1000, "nests arrays or objects too deeply"),
    (b'{"product_amount": ' * 1000, "nests arrays or objects too deeply"),
    (json.dumps(ORDER)[:-1].encode() + b', "uniqueid": "u-2"}', "'uniqueid' appears twice"),
    (json.dumps(ORDER).replace('"5"', "NaN").encode(), "NaN is not a JSON number"),
    (b'{"product_amount": Infinity}', "Infinity is not a JSON number"),
    (b'{"product_amount": ' + b"9" * 5000 + b"}", "longer than 100 characters"),
    (json.dumps(ORDER).encode().replace(b"Bennys", b"B\xffnnys"), "not valid UTF-8"),
    (json.dumps({**ORDER, "username": "\ud800"}).encode(), "lone surrogate"),
])
def test_hostile_bodies_get_400_not_500(client, raw, needle):
    answer = client.post("/create", data=raw, content_type="application/json")
    assert answer.status_code == 400, answer.get_data(as_text=True)
    body = answer.get_json()
    assert body["error"] == "malformed_json" and needle in body["message"]
    assert client.get("/queue").get_json()["length"] == 0


def test_a_utf8_bom_is_skipped(client):
    answer = client.post("/create", data=b"\xef\xbb\xbf" + json.dumps(ORDER).encode(),
                         content_type="application/json")
    assert answer.status_code == 200


@pytest.mark.parametrize("amount,reason", [
    ("5_000", "no thousands separators"), ("5 000", "no thousands separators"),
    ("1.000,5", "at most one decimal separator"), ("\u0665", "ASCII digits"),
    ("\uff15", "ASCII digits"), ("1e3", "ASCII digits"), ("NaN", "ASCII digits"),
    ("2.5001", "at most 3 decimals"), (0.30000000000000004, "at most 3 decimals"),
    ("0", "more than 0"), (-3, "more than 0"),
    ("1000.5", "over the maximum of 1000 litres"), (1e999, "over the maximum of 1000"),
])
def test_amounts_are_read_as_a_pump_writes_them(client, amount, reason):
    body = json.dumps(order(product_amount=amount)).replace("Infinity", "1e999")
    answer = client.post("/create", data=body, content_type="application/json")
    assert answer.status_code == 400
    assert reason in answer.get_json()["fields"]["product_amount"]


@pytest.mark.parametrize("amount,sent", [("4,7", "4.7"), ("0,125", "0.125"), ("1000", "1000"),
                                         (5, "5"), (1e3, "1000"), ("007.50", "7.5")])
def test_norwegian_commas_and_json_numbers_reach_the_erp_with_a_dot(client, amount, sent):
    assert client.post("/create", json=order(product_amount=amount)).status_code == 200
    assert status(client, "u-1")["product_amount"] == sent


def test_max_product_amount_is_the_instances(instance, settings):
    instance.settings = replace(settings, max_product_amount=50.0)
    client = create_app(instance).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {settings.api_token}"
    answer = client.post("/create", json=order(product_amount="50,001"))
    assert answer.get_json()["fields"] == {
        "product_amount": "is over the maximum of 50 litres per line"}
    assert client.post("/create", json=order(product_amount="50")).status_code == 200


@pytest.mark.parametrize("changes,field,reason", [
    ({"worksheet": -558}, "worksheet", "must not be negative"),
    ({"product_nr": 10**30}, "product_nr", "at most 999999999999999999"),
    ({"uniqueid": True}, "uniqueid", "a string or a whole number"),
    ({"worksheet": " 558"}, "worksheet", "1-32 letters"),
    ({"uniqueid": "u-1\n"}, "uniqueid", "printable ASCII"),
    ({"username": "ad\x00min"}, "username", "control characters"),
])
def test_other_fields_are_as_strict(client, changes, field, reason):
    answer = client.post("/create", json=order(**changes))
    assert answer.status_code == 400
    assert reason in answer.get_json()["fields"][field]


def test_whole_numbers_written_with_a_fraction_are_whole(client):
    assert client.post("/create", json=order(worksheet=558.0, uniqueid=4001.0)).status_code == 200
    assert status(client, "4001")["worksheet"] == "558"


def test_order_without_login_needs_a_default(instance, settings):
    instance.settings = replace(settings, erp_username="")
    client = create_app(instance).test_client()
    answer = client.post("/create", json=order(username=None, password=None),
                         headers={"X-API-Key": settings.api_token})
    assert answer.status_code == 400 and "username" in answer.get_json()["fields"]


# -- status -----------------------------------------------------------------------

def test_status_needs_a_known_uniqueid(client):
    assert client.get("/get_order_status").status_code == 400
    missing = client.get("/get_order_status?uniqueid=nope")
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"


@pytest.mark.parametrize("query", ["uniqueid=", "uniqueid=a%20b", "uniqueid=%C3%A5",
                                   "uniqueid=" + "x" * 129])
def test_status_refuses_what_no_order_can_be_called(client, query):
    answer = client.get("/get_order_status?" + query)
    assert answer.status_code == 400 and "uniqueid" in answer.get_json()["fields"]


# -- worker through the API -------------------------------------------------------

def test_order_goes_placed_processing_created(client, instance, erp):
    client.post("/create", json=order())
    assert client.put("/start_worker").get_json() == {"worker_before": "stopped",
                                                      "worker_after": "running", "resumed": False}
    wait_for(lambda: status(client, "u-1")["status"] == "created", message="created")
    record = status(client, "u-1")
    assert [h["status"] for h in record["history"]] == ["placed", "processing", "created"]
    assert record["attempts"] == 1
    assert erp.lines == [("558", "10", 5, "u-1")]
    assert erp.credentials_seen[0].username == "admin"
    assert erp.credentials_seen[0].password == "pw-SECRET-4711"
    assert client.get("/alive").get_json()["last_success"] is not None


def test_worker_start_stop_are_idempotent(client):
    assert client.put("/stop_worker").get_json() == {"worker_before": "stopped", "worker_after": "stopped"}
    client.put("/start_worker")
    assert client.put("/start_worker").get_json() == {"worker_before": "running", "worker_after": "running", "resumed": False}
    assert client.put("/stop_worker").get_json() == {"worker_before": "running", "worker_after": "stopped"}
    assert client.get("/alive").get_json()["worker"] == "stopped"


def test_an_idle_worker_takes_a_stop_and_an_order_at_once(client):
    """With no browser held the worker waits up to IDLE_POLL_SECONDS for work (an idle
    fleet of hundreds then reads no files); a stop, or an order placed, ends the wait."""
    client.put("/start_worker")
    time.sleep(0.5)  # into its first long wait
    started = time.monotonic()
    assert client.put("/stop_worker").get_json()["worker_after"] == "stopped"
    assert time.monotonic() - started < IDLE_POLL_SECONDS - 2
    client.put("/start_worker")
    time.sleep(0.5)
    client.post("/create", json=order())
    wait_for(lambda: status(client, "u-1")["status"] == "created", timeout=IDLE_POLL_SECONDS - 2)


def test_stop_finishes_the_order_in_hand(instance, client, erp):
    erp.delay = 0.5
    client.post("/create", json=order())
    client.put("/start_worker")
    assert erp.started.wait(5)
    client.put("/stop_worker")  # returns after the order in hand is done
    assert status(client, "u-1")["status"] == "created"


def test_stop_during_backoff_releases_the_order(instance, client, erp, settings):
    instance.worker.settings = replace(settings, retry_base_seconds=30, retry_max_seconds=30)
    erp.failures["u-1"] = [ErpUnavailable("down")]
    client.post("/create", json=order())
    client.put("/start_worker")
    wait_for(lambda: status(client, "u-1")["attempts"] == 1)
    client.put("/stop_worker")
    record = status(client, "u-1")
    assert record["status"] == "placed"
    assert client.get("/queue").get_json()["length"] == 1
    instance.worker.settings = settings
    client.put("/start_worker")
    wait_for(lambda: status(client, "u-1")["status"] == "created")


def test_stop_between_visits_releases_the_unvisited_worksheets(instance, client, erp):
    erp.delay = 0.5
    client.post("/create", json=order(uniqueid="s-1", worksheet="7"))
    client.post("/create", json=order(uniqueid="s-2", worksheet="8"))
    client.put("/start_worker")
    assert erp.started.wait(5)
    client.put("/stop_worker")  # during the visit to worksheet 7
    assert erp.visits == [("7", ["s-1"])]
    assert status(client, "s-1")["status"] == "created"
    assert status(client, "s-2")["status"] == "placed"
    assert client.get("/queue").get_json()["length"] == 1
    client.put("/start_worker")
    wait_for(lambda: status(client, "s-2")["status"] == "created")
    assert erp.visits[1:] == [("8", ["s-2"])]


def test_clear_queue_marks_every_waiting_order(client, instance):
    for n in range(3):
        client.post("/create", json=order(uniqueid=f"c-{n}"))
    answer = client.put("/clear_queue").get_json()
    assert answer == {"cleared": 3, "uniqueids": ["c-0", "c-1", "c-2"]}
    assert client.get("/queue").get_json() == {"length": 0, "tasks": []}
    record = status(client, "c-1")
    assert record["status"] == "error" and record["reason_code"] == "CLEARED"
    # the worker skips the cleared items instead of writing them
    client.post("/create", json=order(uniqueid="after"))
    client.put("/start_worker")
    wait_for(lambda: status(client, "after")["status"] == "created")
    assert status(client, "c-1")["status"] == "error"


def test_kill_answers_then_asks_for_shutdown(instance):
    calls = []
    client = create_app(instance, request_shutdown=lambda: calls.append(1)).test_client()
    answer = client.put("/kill", headers={"X-API-Key": instance.settings.api_token})
    assert answer.status_code == 200
    assert answer.get_json()["was_running"] is True
    assert calls == [1]


# -- secrets ----------------------------------------------------------------------

def test_no_password_in_responses_or_files(client, settings):
    client.post("/create", json=order())
    client.put("/start_worker")
    wait_for(lambda: status(client, "u-1")["status"] == "created")
    texts = [client.get("/queue").get_data(as_text=True),
             client.get("/get_order_status?uniqueid=u-1").get_data(as_text=True),
             client.get("/alive").get_data(as_text=True)]
    assert not any("pw-SECRET-4711" in t for t in texts)
    for root, _, files in os.walk(settings.queue_dir):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                assert b"pw-SECRET-4711" not in handle.read(), name


# -- OpenAPI ----------------------------------------------------------------------

def test_openapi_lists_every_route_with_models(client):
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    routes = {(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
              for rule in client.application.url_map.iter_rules()
              if rule.endpoint != "static" for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert routes == documented
    create_schema = doc["components"]["schemas"]["CreateOrder"]
    assert set(create_schema["required"]) == {"workshop", "worksheet", "product_nr",
                                              "product_amount", "uniqueid"}


def test_docs_is_a_page_of_every_operation_sent_with_the_page_headers(client):
    """Issue 28, item 9: GET /docs, named in the docs (docs/api.md), answered 404."""
    r = client.get("/docs")
    assert r.status_code == 200 and r.content_type.startswith("text/html")
    page = r.get_data(as_text=True)
    for path in ("/create", "/get_order_status", "/events", "/orders/{uniqueid}/artifacts"):
        assert f"<code>{path}</code>" in page
    assert "<script" not in page
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert create_app(client.application.extensions["service"]).test_client().get(
        "/docs").status_code == 401  # the token, like /openapi.json


@pytest.mark.parametrize("query", ["/events?limit=5&limit=abc", "/events?after=1&after=1",
                                   "/get_order_status?uniqueid=a&uniqueid=b",
                                   "/orders?limit=5&limit=6", "/retry?uniqueid=a&uniqueid=a"])
def test_a_query_parameter_given_twice_is_refused_not_read_as_its_first(client, query):
    """Issue 28, item 8: limit=5&limit=abc took the first."""
    method = client.put if query.startswith("/retry") else client.get
    r = method(query)
    assert r.status_code == 400, r.get_json()
    assert "must be given once, not 2 times" in json.dumps(r.get_json()["fields"])


def test_the_documents_say_what_the_server_answers_before_the_app(client):
    """Issue 28, item 8: a very long /events query answered 414, undocumented; and an
    order whose uniqueid holds % is served by its path (GET /orders/%25/artifacts)."""
    from fleet.openapi import build_document as fleet_document

    for doc in (client.get("/openapi.json").get_json(), fleet_document()):
        for path_, operations in doc["paths"].items():
            for method, operation in operations.items():
                assert "414" in operation["responses"], (method, path_)
    artifacts = client.get("/openapi.json").get_json()["paths"]["/orders/{uniqueid}/artifacts"]
    assert artifacts["get"]["parameters"][0]["schema"]["pattern"] == "^[!-~]{1,128}$"


def test_openapi_is_this_instances(instance, settings):
    instance.settings = replace(settings, workshop="Other Garage", max_product_amount=75.5)
    client = create_app(instance).test_client()
    doc = client.get("/openapi.json", headers={"X-API-Key": settings.api_token}).get_json()
    order_schema = doc["components"]["schemas"]["CreateOrder"]["properties"]
    assert order_schema["workshop"]["const"] == "Other Garage"
    assert order_schema["product_amount"]["anyOf"][1]["maximum"] == 75.5
    assert "pattern" in order_schema["worksheet"]["anyOf"][0]
    query = doc["paths"]["/get_order_status"]["get"]["parameters"][0]["schema"]
    assert query["pattern"] == "^[!-~]{1,128}$"


# -- the worker thread outlives a failure (the rest of the worker: test_worker.py) ----

def test_a_bug_in_a_visit_releases_the_orders_and_the_thread_goes_on(client, erp):
    erp.visit_error = KeyError("bug")  # not an IntegrationError: handled as transient
    client.post("/create", json=order(uniqueid="k-1"))
    client.put("/start_worker")
    wait_for(lambda: status(client, "k-1")["status"] == "created")
    assert status(client, "k-1")["attempts"] == 2
    assert client.get("/alive").get_json()["worker"] == "running"


def test_an_escaped_exception_puts_orders_back_on_the_queue(instance, client, erp):
    original = instance.store.note_attempt
    calls = []

    def broken_once(*args, **kwargs):
        if not calls:
            calls.append(1)
            raise RuntimeError("disk hiccup")
        return original(*args, **kwargs)

    instance.store.note_attempt = broken_once
    client.post("/create", json=order(uniqueid="x-1"))
    client.put("/start_worker")
    wait_for(lambda: status(client, "x-1")["status"] == "created", timeout=15)
    history = [h.get("reason_text") for h in status(client, "x-1")["history"]]
    assert "released after an internal error" in history
    assert client.get("/alive").get_json()["worker"] == "running"
