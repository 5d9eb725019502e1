"""End to end: names and URLs that supervisor's configuration format would misread do not
take the fleet down. A real supervisord (``manage.py up``) and real instances (api.py);
no ERP is needed, since every check is the instance's own ``/alive``.

Before the launch files (see fleet/supervisor_conf.py) one ``%(here)s`` in a name or URL
made ``up`` exit 2: no workshop started at all.
"""

import pytest

from tests.fleet_helpers import Fleet, fleet_env, free_port

NORMAL = "Bennys Auto"
#: accepted names that supervisor's format reads as something else, each run for real
HOSTILE = ["Garage %(here)s", "%(ENV_HOME)s %%", "a ;b #c \"q\" 'x'", "\U0001d505" * 100]
HOSTILE_URL = "http://127.0.0.1:5080/%(here)s?a=%%&b=%(ENV_HOME)s"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    fleet = Fleet(fleet_env(tmp_path_factory.mktemp("fleet"), STOP_WAIT_SECONDS="20"))
    fleet.add(NORMAL, "http://127.0.0.1:5080")
    for name in HOSTILE:
        fleet.add(name, HOSTILE_URL)
    try:
        yield fleet.up()
    finally:
        fleet.cleanup()


def test_every_workshop_starts_beside_hostile_names(fleet):
    overview = fleet.wait_health({w: "ok" for w in [NORMAL, *HOSTILE]}, timeout=90)
    for name in [NORMAL, *HOSTILE]:
        assert overview[name]["alive"]["workshop"] == name  # the name reached api.py unchanged
    assert overview["Garage %(here)s"]["erp_url"] == HOSTILE_URL


def test_hostile_changes_while_running_touch_no_other_workshop(fleet):
    before = {w: i["process"]["pid"] for w, i in fleet.overview().items()}
    name = "Live %(here)s %(program_name)s"
    r = fleet.api("POST", "/integrations", json={
        "workshop": name, "erp_system": "erp_sim", "erp_url": HOSTILE_URL, "port": free_port()})
    assert r.status_code == 201, r.text
    r = fleet.api("PUT", fleet.path(NORMAL), json={"erp_url": "http://127.0.0.1:5081/%(here)s"})
    assert r.status_code == 200 and r.json()["supervisor"] == "restarted", r.text
    overview = fleet.wait_health({name: "ok", NORMAL: "ok"}, timeout=60)
    assert {w: overview[w]["process"]["pid"] for w in HOSTILE} == {w: before[w] for w in HOSTILE}
    assert overview[NORMAL]["process"]["pid"] != before[NORMAL]
    assert fleet.manage("status").returncode == 0
