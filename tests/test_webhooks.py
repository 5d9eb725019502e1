"""Webhook delivery (service/webhooks.py) to a real HTTP receiver on an ephemeral port.

The first tests run an :class:`~service.instance.Instance` in this process with the
fake ERP (tests/fakes.py), its worker in burst mode and its webhook thread running.
The end-to-end test at the bottom runs the real thing: ``api.py`` as a process, erp_sim,
headless Chromium, a receiver outage and a ``kill -9``.
"""

import base64
import os
import sqlite3
import time

import pytest

from service.app import create_app
from service.instance import Instance
from service.webhooks import parse_secret, safe_url, sign
from conftest import replace, wait_for
from fakes import FakeIntegration
from webhook_receiver import Receiver, SlowReceiver, spec_signature

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()

#: the signature test vector of the Standard Webhooks reference libraries
VECTOR = dict(secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
              timestamp=1614265330, body='{"test": 2432232314}',
              signature="v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")


def test_signatures_match_the_spec_test_vector():
    v = VECTOR
    assert sign(v["secret"], v["msg_id"], v["timestamp"], v["body"]) == v["signature"]
    # and the receiver's own implementation of the spec agrees, so it can judge ours
    assert spec_signature(v["secret"], v["msg_id"], v["timestamp"], v["body"].encode()) == v["signature"]


@pytest.mark.parametrize("secret", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_abc",
                                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La!aSw",
                                    "whsec_" + "A" * 100])
def test_a_bad_secret_is_refused_without_repeating_it(secret):
    with pytest.raises(ValueError) as refused:
        parse_secret(secret)
    assert secret.removeprefix("whsec_") not in str(refused.value) or secret == "whsec_"


def test_a_url_is_logged_without_its_secrets():
    assert safe_url("https://user:pw@hooks.example:8443/in?token=abc#x") == \
        "https://hooks.example:8443/in"


# -- an instance in this process, with the fake ERP ---------------------------------

@pytest.fixture
def receiver():
    receiver = Receiver(SECRET).start()
    yield receiver
    receiver.stop()


@pytest.fixture
def open_instance(settings, receiver):
    """``open_instance(receiver, **settings)``: an instance whose webhook thread runs,
    closed after the test (each one in turn, as a restart would)."""
    opened = []

    def open_(receiver, **changes):
        changes = {"webhook_url": receiver.url, "webhook_secret": SECRET,
                   "webhook_backoff_seconds": 0.05, "webhook_backoff_max_seconds": 0.4,
                   "webhook_timeout_seconds": 2.0, **changes}
        erp = FakeIntegration()
        inst = Instance(replace(settings, **changes), make_integration=lambda: erp)
        inst.erp = erp
        inst.webhooks.start()
        opened.append(inst)
        return inst

    yield open_
    for inst in opened:
        inst.close(worker_timeout=10)


def place(inst, *uniqueids, worksheet="558"):
    for uniqueid in uniqueids:
        inst.submit({"workshop": inst.settings.workshop, "worksheet": worksheet,
                     "product_nr": "10", "product_amount": "5", "uniqueid": uniqueid,
                     "username": None, "password": None})


def feed(inst):
    return inst.events.page(after=0, limit=500)["events"]


def all_delivered(inst, receiver, timeout=20):
    wait_for(lambda: len(receiver.first_of_each()) == len(feed(inst)), timeout=timeout,
             message="every event delivered")
    return receiver.first_of_each()


def test_every_event_is_delivered_signed_in_order(open_instance, receiver):
    inst = open_instance(receiver)
    place(inst, *[f"o{n}" for n in range(8)])
    inst.worker.burst()
    got = all_delivered(inst, receiver)
    assert got == feed(inst)  # the same events, in the same (cursor) order
    assert [e["type"] for e in got if e["uniqueid"] == "o3"] == [
        "order.placed", "order.processing", "order.created"]
    deliveries = receiver.accepted()
    assert all(d.valid for d in deliveries)
    assert len({d.id for d in deliveries}) == len(deliveries)  # no repeats without a crash
    assert all(d.id == d.event["id"] for d in deliveries)
    first = deliveries[0]
    assert first.headers["content-type"] == "application/json"
    assert {"type", "uniqueid", "workshop", "status", "reason_code", "at"} <= set(first.event)
    # the receiver counts a delivery before it answers, the sender its cursor after the answer
    wait_for(lambda: inst.alive()["webhook"]["backlog"] == 0, timeout=10, message="backlog 0")
    assert inst.alive()["webhook"] == {"state": "enabled", "backlog": 0, "failures": 0,
                                       "next_try": None}


def test_an_error_is_an_event_with_its_reason(open_instance, receiver):
    inst = open_instance(receiver)
    place(inst, "closed", worksheet="950")
    inst.store.move("closed", "processing")
    inst.store.move("closed", "error", "WORKSHEET_CLOSED", "the worksheet is closed")
    got = all_delivered(inst, receiver)
    assert got[-1]["type"] == "order.error" and got[-1]["reason_code"] == "WORKSHEET_CLOSED"


def test_an_outage_delays_and_loses_nothing(open_instance, receiver):
    """503s, then no server at all, then back: every event once, in order."""
    inst = open_instance(receiver)
    receiver.answer = 503
    place(inst, "a", "b")
    wait_for(lambda: receiver.count(503) >= 3, message="retries while the receiver fails")
    alive = inst.alive()["webhook"]
    assert alive["state"] == "enabled" and alive["failures"] >= 1 and alive["backlog"] == 2
    assert alive["next_try"] is not None
    receiver.stop()  # down: connections refused
    inst.worker.burst()
    wait_for(lambda: inst.events.webhook()["failures"] >= 5, message="retries while down")
    receiver.answer = 200
    receiver.start()
    got = all_delivered(inst, receiver)
    assert got == feed(inst)
    assert [d.id for d in receiver.accepted()] == [e["id"] for e in got]  # each once
    assert all(d.valid for d in receiver.deliveries)
    assert inst.alive()["webhook"]["failures"] == 0


def test_backoff_doubles_up_to_the_cap_and_survives_a_restart(open_instance, receiver, settings):
    receiver.answer = 500
    inst = open_instance(receiver, webhook_backoff_seconds=0.2, webhook_backoff_max_seconds=0.8)
    place(inst, "a")
    wait_for(lambda: receiver.count() >= 5, timeout=15, message="five tries")
    times = [d.at for d in receiver.deliveries[:5]]
    gaps = [b - a for a, b in zip(times, times[1:])]
    # 0.2, 0.4, 0.8, 0.8 (capped), each times a jitter in [0.5, 1]
    for gap, ceiling in zip(gaps, (0.2, 0.4, 0.8, 0.8)):
        assert ceiling * 0.5 - 0.05 <= gap <= ceiling + 0.3, gaps
    inst.close(worker_timeout=10)
    with sqlite3.connect(os.path.join(settings.workshop_queue_dir, "orders.db")) as db:
        failures, due = db.execute(
            "SELECT failures, next_try FROM event_marks WHERE name='webhook'").fetchone()
    assert failures >= 5 and due > 0  # the schedule is on disk ...
    count = receiver.count()
    receiver.answer = 200
    open_instance(receiver, webhook_backoff_seconds=0.2, webhook_backoff_max_seconds=0.8)
    wait_for(lambda: receiver.count() > count, timeout=10, message="the try after the restart")
    assert receiver.deliveries[count].wall >= due - 0.05  # ... and kept by the restart


def test_retry_after_is_honoured(open_instance, receiver):
    receiver.answer, receiver.retry_after = 503, 1
    inst = open_instance(receiver, webhook_backoff_max_seconds=5)
    place(inst, "a")
    wait_for(lambda: receiver.count() >= 2, timeout=10, message="two tries")
    first, second = receiver.deliveries[:2]
    assert second.at - first.at >= 0.9  # not the 0.05 s backoff
    assert inst.events.webhook()["next_try"] - time.time() <= 5  # but at most the cap


def test_a_redirect_is_a_failure_and_not_followed(open_instance, receiver):
    receiver.answer = 302
    inst = open_instance(receiver)
    place(inst, "a")
    wait_for(lambda: inst.events.webhook()["failures"] >= 2, message="failed tries")
    assert inst.events.webhook()["cursor"] == 0


@pytest.fixture
def slow():
    slow = SlowReceiver(pause=0.4)  # its 66-byte answer takes 26 s, 0.4 s between reads
    yield slow
    slow.stop()


def test_a_slow_receiver_is_cut_off_at_the_timeout_counted_and_logged(open_instance, slow,
                                                                       caplog):
    """Issue 28, item 1: WEBHOOK_TIMEOUT_SECONDS bounds the whole delivery; a per-read
    timeout let a byte every few seconds keep it in flight for a minute, uncounted."""
    inst = open_instance(slow, webhook_timeout_seconds=1.0, webhook_backoff_seconds=60,
                         webhook_backoff_max_seconds=60)
    place(inst, "slow-1")
    wait_for(lambda: slow.requests == 1, timeout=10, message="the delivery")
    started = time.monotonic()
    wait_for(lambda: inst.webhooks.state()["failures"] == 1, timeout=10,
             message="the try counted as failed")
    assert time.monotonic() - started < 2.0
    wait_for(lambda: "longer than WEBHOOK_TIMEOUT_SECONDS (1 s)" in caplog.text, timeout=5,
             message="the failure logged")  # logged just after it is saved
    scrape = inst.metrics.render()[0].decode()
    assert 'oilmat_webhook_deliveries_total{result="failed"} 1.0' in scrape


def test_a_stop_cuts_the_delivery_in_flight_and_it_is_sent_again(open_instance, slow):
    """Issue 28, item 1: a stop (SIGTERM) waited for the delivery in flight."""
    inst = open_instance(slow, webhook_timeout_seconds=30.0)
    place(inst, "slow-2")
    wait_for(lambda: slow.requests == 1, timeout=10, message="the delivery")
    started = time.monotonic()
    inst.webhooks.stop(timeout=30)
    assert time.monotonic() - started < 1.0
    assert inst.webhooks.state()["failures"] == 0  # not the receiver's failure
    assert inst.webhooks.state()["backlog"] >= 1  # sent again after the start


def test_a_url_with_letters_outside_ascii_in_its_path_is_delivered_to(open_instance, receiver):
    """The fleet and the instance take such a URL (core/checks.py); its path is sent
    percent-encoded, not refused by the HTTP client at every try."""
    inst = open_instance(receiver, webhook_url=receiver.url + "/verksted-ø?kilde=å")
    place(inst, "non-ascii-1")
    assert all_delivered(inst, receiver)
    assert receiver.paths()[-1] == "/hooks/oilmat/verksted-%C3%B8?kilde=%C3%A5"


def test_410_disables_until_the_url_or_secret_changes(open_instance, receiver):
    receiver.answer = 410
    inst = open_instance(receiver)
    place(inst, "a")
    wait_for(lambda: inst.alive()["webhook"]["state"] == "disabled", message="disabled")
    place(inst, "b")
    inst.worker.burst()
    assert inst.webhooks.looked(timeout=10)  # it has seen b's events ...
    assert receiver.count() == 1  # ... and sent nothing after the 410
    assert inst.alive()["webhook"]["backlog"] == len(feed(inst))
    inst.close(worker_timeout=10)

    receiver.answer = 200
    same = open_instance(receiver)  # restarted with the same configuration: still off
    assert same.webhooks.looked(timeout=10)
    assert receiver.count() == 1 and same.alive()["webhook"]["state"] == "disabled"
    same.close(worker_timeout=10)

    other = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    receiver.secret = other
    renewed = open_instance(receiver, webhook_secret=other)  # a new secret: on again
    got = all_delivered(renewed, receiver)
    assert got == feed(renewed)  # the backlog, from the event that got the 410 on
    assert renewed.alive()["webhook"]["state"] == "enabled"


def test_the_secret_is_never_logged_or_shown(open_instance, receiver, caplog):
    receiver.answer = 503
    inst = open_instance(receiver)
    place(inst, "a")
    wait_for(lambda: receiver.count() >= 3, message="failed tries")
    alive = create_app(inst).test_client().get("/alive").get_data(as_text=True)
    key = SECRET.removeprefix("whsec_")
    for text in (caplog.text, alive, repr(inst.settings)):
        assert key not in text
    assert "webhook" in caplog.text  # the failures were logged


# -- end to end: api.py, erp_sim, headless Chromium, an outage and a kill -9 ------------

def _feed_over_http(inst):
    """Every event, read page by page over HTTP as a client would."""
    events, after = [], 0
    while True:
        page = inst.session.get(inst.url + "/events", params={"after": after, "limit": 40},
                                timeout=10).json()
        events += page["events"]
        after = page["next"]
        if not page["more"]:
            return events


@pytest.mark.e2e
def test_every_event_once_and_in_order_across_an_outage_and_a_kill_9(tmp_path):
    from erp_helpers import ErpSimServer, next_worksheet
    from instance_helpers import RunningInstance

    receiver = Receiver(SECRET).start()
    erp = ErpSimServer(save_delay=0.05).start()
    inst = RunningInstance(tmp_path, erp.url, WEBHOOK_URL=receiver.url, WEBHOOK_SECRET=SECRET,
                           WEBHOOK_BACKOFF_SECONDS="0.2", WEBHOOK_BACKOFF_MAX_SECONDS="1")
    sheets = [next_worksheet() for _ in range(3)]
    ids = [f"wh-{n}" for n in range(50)]  # the 50 orders

    def post(uniqueids):
        for uniqueid in uniqueids:
            n = ids.index(uniqueid)
            assert inst.create(uniqueid=uniqueid, worksheet=str(sheets[n % 3])).status_code == 200

    def created(uniqueids):
        return sum(inst.status(u)["status"] == "created" for u in uniqueids)

    try:
        inst.start()
        post(ids[:15])
        wait_for(lambda: len(receiver.first_of_each()) >= 5, timeout=60, message="deliveries")
        receiver.answer = 503  # the receiver fails ...
        post(ids[15:32])
        wait_for(lambda: receiver.count(503) >= 2, timeout=30, message="503s")
        receiver.stop()  # ... then is down altogether
        wait_for(lambda: created(ids[15:32]) >= 1, timeout=120, message="orders under way")
        inst.kill9()  # mid-run, with undelivered events in the outbox
        inst.start()
        post(ids[32:])
        webhook = requests_alive(inst)["webhook"]
        assert webhook["state"] == "enabled" and webhook["backlog"] > 0
        time.sleep(3)  # the outage goes on for a while after the restart
        assert requests_alive(inst)["webhook"]["failures"] >= 1
        receiver.answer = 200
        receiver.start()  # back, on the same port

        records = inst.wait_final(ids, timeout=300)
        assert {r["status"] for r in records.values()} == {"created"}
        for n, uniqueid in enumerate(ids):  # through the ERP's own read path
            assert len(erp.lines_with(sheets[n % 3], uniqueid)) == 1, uniqueid

        wait_for(lambda: requests_alive(inst)["webhook"]["backlog"] == 0, timeout=60,
                 message="the backlog delivered")
        feed = _feed_over_http(inst)
        got = receiver.first_of_each()
        assert got == feed  # every event, each id once, in cursor order
        assert [e["cursor"] for e in feed] == sorted(e["cursor"] for e in feed)
        for uniqueid in ids:
            types = [e["type"] for e in feed if e["uniqueid"] == uniqueid]
            assert types[0] == "order.placed" and types[-1] == "order.created", types
            assert "order.processing" in types
        assert all(d.valid for d in receiver.deliveries)
        repeats = len(receiver.accepted()) - len(got)
        assert repeats <= 1  # at most the one in flight at the kill
        assert receiver.count(503) >= 2
        # the feed's acknowledgement: nothing left after the last cursor
        acked = inst.session.put(inst.url + "/events/ack", params={"cursor": feed[-1]["cursor"]},
                                 timeout=10)
        assert acked.json() == {"acked": feed[-1]["cursor"]}
        assert inst.session.get(inst.url + "/events", timeout=10).json()["events"] == []
    finally:
        inst.stop()
        erp.stop()
        receiver.stop()
    key = SECRET.removeprefix("whsec_")
    for folder, _, files in os.walk(inst.log_dir):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                assert key.encode() not in handle.read(), name
    assert key not in inst.stderr()


def requests_alive(inst):
    import requests

    return requests.get(inst.url + "/alive", timeout=10).json()
