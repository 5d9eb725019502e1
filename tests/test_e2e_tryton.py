"""A real instance (``api.py``) with ``ERP_SYSTEM=tryton`` against a real Tryton: orders
posted over HTTP end up as exactly one correct line each, checked through Tryton's API
-- also when the instance is killed with ``kill -9`` mid-batch and restarted."""

import os
import time
from decimal import Decimal

import pytest

from erp_tryton import rpc
from instance_helpers import RunningInstance
from tryton_helpers import TrytonServer, tryton_build  # noqa: F401  (a fixture)

pytestmark = pytest.mark.e2e


#: the Tryton it runs against: 8.0 in English in make test; make chaos runs it again on
#: 7.0 LTS in German (E2E_TRYTON_SERIES=7.0 E2E_TRYTON_LANGUAGE=de)
SERIES = os.environ.get("E2E_TRYTON_SERIES", "8.0")
LANGUAGE = os.environ.get("E2E_TRYTON_LANGUAGE", "en")


@pytest.fixture(scope="module")
def tryton(tryton_build, tmp_path_factory):
    with TrytonServer(tmp_path_factory.mktemp("tryton"),
                      ["--series", SERIES, "--language", LANGUAGE], startup_timeout=900) as server:
        yield server


def orders(prefix, count, references):
    """``[(uniqueid, worksheet, product, amount)]`` spread over ``references``."""
    return [(f"{prefix}-{n}", str(references[n % len(references)]), str(20 + n),
             Decimal(f"{1 + n}.{n * 7 % 1000:03d}")) for n in range(count)]


def post(instance, wanted):
    for uniqueid, worksheet, product, amount in wanted:
        answer = instance.create(uniqueid=uniqueid, worksheet=worksheet, product_nr=product,
                                 product_amount=str(amount))
        assert answer.status_code == 200, answer.text


def assert_one_correct_line_each(tryton, wanted):
    for worksheet in {w for _, w, _, _ in wanted}:
        found = [(line["product_code"], line["quantity"], line["description"])
                 for line in rpc.worksheet_lines(tryton.url, worksheet)]
        assert sorted(found) == sorted((product, amount, f"OilMat {uniqueid}")
                                       for uniqueid, w, product, amount in wanted
                                       if w == worksheet)


def instance_for(tryton, tmp_path):
    return RunningInstance(tmp_path, tryton.url, ERP_SYSTEM="tryton",
                           ERP_OPTION_DATABASE="workshop", WAIT_TIMEOUT="10",
                           PAGE_LOAD_TIMEOUT="20").start()


#: orders of the undisturbed run and of the kill -9 run, each over 4 sales: 6 and 6 in
#: make test (which must stay under 25 minutes with Tryton 7.0 and a second language in
#: it too), 40 each in make chaos (E2E_TRYTON_ORDERS=40 E2E_TRYTON_KILL_ORDERS=40),
#: issue 9's figure
PLAIN_ORDERS = int(os.environ.get("E2E_TRYTON_ORDERS", "6"))
KILL_ORDERS = int(os.environ.get("E2E_TRYTON_KILL_ORDERS", "6"))


def test_orders_over_four_sales_become_one_correct_line_each(tryton, tmp_path):
    wanted = orders("e2e-tryton", PLAIN_ORDERS, [300, 301, 302, 303])
    instance = instance_for(tryton, tmp_path)
    try:
        post(instance, wanted)
        records = instance.wait_final([w[0] for w in wanted], timeout=240)
        assert {r["status"] for r in records.values()} == {"created"}, records
    finally:
        instance.stop()
    assert_one_correct_line_each(tryton, wanted)


def test_kill_9_mid_batch_and_restart_still_one_line_each(tryton, tmp_path):
    sales = ("304", "305", "306", "307")
    wanted = orders("e2e-tryton-k9", KILL_ORDERS, sales)
    instance = instance_for(tryton, tmp_path)
    try:
        post(instance, wanted)
        deadline = time.monotonic() + 120
        # kill as soon as the first line is in Tryton: the worker is mid-visit then
        while not any(rpc.worksheet_lines(tryton.url, w) for w in sales):
            assert time.monotonic() < deadline, "no line reached Tryton"
            time.sleep(0.2)
        instance.kill9()
        written = sum(len(rpc.worksheet_lines(tryton.url, w)) for w in sales)
        assert written < len(wanted)  # killed mid-batch, not after it
        instance.start()
        records = instance.wait_final([w[0] for w in wanted], timeout=300)
        assert {r["status"] for r in records.values()} == {"created"}, records
    finally:
        instance.stop()
    assert_one_correct_line_each(tryton, wanted)
