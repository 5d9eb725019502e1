"""End to end: the fleet under a real supervisord, real instances (api.py), real erp_sim.

One fleet of three workshops serves the whole module, in the order the tests are
written: each test leaves the fleet as the next one expects it.
"""

import importlib.util
import os
import signal

import pytest
import requests

from tests.erp_helpers import ErpSimServer
from fleet.settings import ROOT
from tests.fleet_helpers import Fleet, fleet_env, wait_for

A, B, C = "Bennys Auto", "Bilverksted Ålesund", "Garage Tre"
#: instance settings that keep the tests quick: short backoff, browsers closed when idle
INSTANCE_ENV = dict(RETRY_BASE_SECONDS="0.2", RETRY_MAX_SECONDS="1", PAGE_LOAD_TIMEOUT="10",
                    WAIT_TIMEOUT="5", BROWSER_IDLE_SECONDS="1", STOP_WAIT_SECONDS="60")
#: modules every instance imports, whose bytecode `up` writes (fleet/bytecode.py)
COMPILED = ("api.py", "service/instance.py", "workers/worker.py", "integrations/base.py")


@pytest.fixture(scope="module")
def erp():
    with ErpSimServer(save_delay=0.05) as server:
        yield server


@pytest.fixture(scope="module")
def fleet(erp, tmp_path_factory):
    fleet = Fleet(fleet_env(tmp_path_factory.mktemp("fleet"), **INSTANCE_ENV))
    for workshop in (A, B, C):
        fleet.add(workshop, erp.url)
    for module in COMPILED:  # so that test_up_compiled_... sees up's own compile
        cache = importlib.util.cache_from_source(os.path.join(ROOT, module))
        if os.path.exists(cache):
            os.remove(cache)
    try:
        yield fleet.up()
    finally:
        fleet.cleanup()


def created_once(fleet, erp, orders, timeout=60):
    """Wait until every ``(workshop, uniqueid, worksheet)`` is ``created``, then check
    that each is on its worksheet exactly once."""
    for workshop, uniqueid, _ in orders:
        wait_for(lambda: fleet.order_status(workshop, uniqueid) == "created", timeout, 0.2,
                 f"order {uniqueid} of {workshop} to be created")
    for _, uniqueid, worksheet in orders:
        assert len(erp.lines_with(worksheet, uniqueid)) == 1, erp.worksheet(worksheet)


def pids(fleet):
    return {w: i["process"]["pid"] for w, i in fleet.overview().items()}


def test_three_integrations_alive_and_orders_created(fleet, erp):
    overview = fleet.wait_health({A: "ok", B: "ok", C: "ok"})
    assert all(i["process"]["state"] == "RUNNING" for i in overview.values())
    assert overview[B]["alive"]["workshop"] == B  # non-ASCII name end to end
    orders = [(w, f"first-{n}", 100 + n) for n, w in enumerate((A, B, C))]
    for workshop, uniqueid, worksheet in orders:
        assert fleet.order(workshop, uniqueid, worksheet)["status"] == "placed"
    created_once(fleet, erp, orders)
    overview = fleet.overview()
    assert all(overview[w]["last_success"] for w in (A, B, C))


def test_up_compiled_the_modules_every_instance_imports(fleet):
    # fleet/bytecode.py: under PYTHONDONTWRITEBYTECODE each instance would compile them
    for module in COMPILED:
        source = os.path.join(ROOT, module)
        cache = importlib.util.cache_from_source(source)
        assert os.path.getmtime(cache) >= os.path.getmtime(source), module


def test_kill_9_is_restarted_and_its_queued_orders_complete(fleet, erp):
    fleet.wait_health({C: "ok"})
    assert fleet.api("PUT", fleet.path(C, "stop_worker")).status_code == 200
    orders = [(C, f"crash-{n}", 200 + n) for n in range(2)]
    for workshop, uniqueid, worksheet in orders:
        fleet.order(workshop, uniqueid, worksheet)
    before = pids(fleet)
    os.kill(before[C], signal.SIGKILL)
    overview = wait_for(lambda: (o := fleet.overview())[C]["process"]["pid"] not in (None, before[C])
                        and o[C]["health"] == "ok" and o, 30, 0.2, "supervisor to restart the instance")
    assert overview[A]["process"]["pid"] == before[A] and overview[B]["process"]["pid"] == before[B]
    created_once(fleet, erp, orders)  # the restarted worker runs and drains the queue


def test_put_kill_stays_down_and_the_others_are_untouched(fleet):
    fleet.wait_health({A: "ok", B: "ok", C: "ok"})
    before = pids(fleet)
    r = fleet.api("PUT", fleet.path(B, "kill"))
    assert r.status_code == 200, r.text
    fleet.wait_health({B: "down"})
    # supervisord's own decision, logged when the process exits: expected, no restart
    program = fleet.overview()[B]["program"]
    log = os.path.join(fleet.env["SUPERVISOR_DIR"], "supervisord.log")
    wait_for(lambda: f"exited: {program} (exit status 0; expected)" in open(log).read(), 30,
             0.1, "supervisord to log the exit as expected")
    overview = fleet.overview()
    assert overview[B]["process"]["state"] == "EXITED"
    assert overview[B]["health"] == "down" and overview[B]["alive"] is None
    assert {w: overview[w]["process"]["pid"] for w in (A, C)} == {w: before[w] for w in (A, C)}
    assert overview[A]["health"] == overview[C]["health"] == "ok"
    assert fleet.api("PUT", fleet.path(B, "start")).status_code == 200
    fleet.wait_health({B: "ok"})


def test_deactivate_stops_and_reconfigure_restarts_only_that_instance(fleet, erp):
    before = pids(fleet)
    r = fleet.api("PUT", fleet.path(B, "deactivate"))
    assert r.status_code == 200 and r.json()["supervisor"] == "removed", r.text
    overview = fleet.overview()
    assert overview[B]["health"] == "inactive"
    assert overview[B]["process"]["state"] == "NOT_CONFIGURED"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{fleet.ports[B]}/alive", timeout=2)

    r = fleet.api("PUT", fleet.path(A), json={"erp_url": erp.url.replace("127.0.0.1", "localhost")})
    assert r.status_code == 200 and r.json()["supervisor"] == "restarted", r.text
    overview = fleet.wait_health({A: "ok"})
    assert overview[A]["process"]["pid"] != before[A]
    assert overview[C]["process"]["pid"] == before[C]
    assert overview[A]["erp_url"].startswith("http://localhost:")
    fleet.order(A, "after-reconfigure", 300)
    created_once(fleet, erp, [(A, "after-reconfigure", 300)])


def test_restart_everything_with_orders_queued(fleet, erp):
    fleet.wait_health({A: "ok", C: "ok"})
    for workshop in (A, C):
        assert fleet.api("PUT", fleet.path(workshop, "stop_worker")).status_code == 200
    orders = [(w, f"queued-{w[0]}-{n}", 400 + n) for w in (A, C) for n in range(2)]
    for workshop, uniqueid, worksheet in orders:
        fleet.order(workshop, uniqueid, worksheet)
    assert fleet.overview()[A]["queue_length"] == 2

    fleet.down()
    assert fleet.up_process.returncode == 0
    fleet.up()

    overview = fleet.wait_health({A: "ok", C: "ok", B: "inactive"})
    assert overview[B]["process"]["state"] == "NOT_CONFIGURED"  # deactivated stays down
    created_once(fleet, erp, orders)
