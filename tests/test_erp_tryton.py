"""The Tryton stand-up: ``python -m erp_tryton --port PORT --data DIR`` as a real subprocess,
checked through Tryton's own JSON-RPC API (:mod:`erp_tryton.rpc`), no browser.

The first run on a machine installs trytond and sao into the cache and builds the seeded
template (about a minute here, a generous deadline below); later runs start in seconds.
"""

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest
import requests

from erp_helpers import REPO_ROOT
from erp_tryton import rpc
from tryton_helpers import (INSTALL_TIMEOUT, START_TIMEOUT, TrytonServer,  # noqa: F401
                            tryton_build)


@pytest.fixture(scope="module")
def tryton(tryton_build, tmp_path_factory):
    """One stand-up shared by the read-mostly tests; each writes on worksheets of its own."""
    with TrytonServer(tmp_path_factory.mktemp("tryton")) as server:
        yield server


def test_sao_index_page_is_served(tryton):
    response = requests.get(tryton.url + "/", timeout=10)
    assert response.status_code == 200
    assert "text/html" in response.headers["Content-Type"]
    assert "tryton-sao.js" in response.text
    # index.html loads its libraries from node_modules/ and asks for the custom hooks
    for path in ("/node_modules/jquery/dist/jquery.js", "/custom.js", "/custom.css"):
        assert requests.get(tryton.url + path, timeout=10).status_code == 200, path


def test_admin_logs_in_with_a_company_and_no_configuration_wizard(tryton):
    client = tryton.client()
    assert client.context["company.rec_name"] == "OilMat Demo Workshop"
    states = client.model("ir.module.config_wizard.item", "search_read", [], 0, None, None,
                          ["state"])
    assert states and {item["state"] for item in states} == {"done"}


def test_wrong_password_is_refused(tryton):
    with pytest.raises(rpc.SessionExpired):  # trytond answers a failed login with 401 too
        rpc.Client(tryton.url, password="wrong").login()


def test_products_per_litre_3_decimals_per_unit_0_and_per_kilogram_2(tryton):
    client = tryton.client()
    products = client.model("product.product", "search_read", [], 0, None, None,
                            ["code", "salable", "sale_uom.name", "sale_uom.digits",
                             "sale_uom.rounding", "list_price_used"])
    assert sorted(int(p["code"]) for p in products) == list(range(1, 211))
    for product in products:
        assert product["salable"]
        assert product["list_price_used"] > 0
        unit = product["sale_uom."]
        if int(product["code"]) <= 200:
            assert (unit["name"], unit["digits"]) == ("Liter", 3)
            assert unit["rounding"] == pytest.approx(0.001)
        elif int(product["code"]) <= 205:  # whole units only: no 2.5 (INVALID_AMOUNT)
            assert (unit["name"], unit["digits"], unit["rounding"]) == ("Unit", 0, 1)
        else:
            assert (unit["name"], unit["digits"]) == ("Kilogram", 2)
            assert unit["rounding"] == pytest.approx(0.01)


def test_references_1_to_899_are_draft_and_900_to_999_past_draft(tryton):
    client = tryton.client()
    sales = client.model("sale.sale", "search_read", [], 0, None, None,
                         ["reference", "state", "party"])
    by_reference = {int(s["reference"]): s for s in sales}
    assert sorted(by_reference) == list(range(1, 1000))
    assert {by_reference[n]["state"] for n in range(1, 900)} == {"draft"}
    assert {by_reference[n]["state"] for n in range(900, 1000)} == {"quotation"}
    assert len({s["party"] for s in sales}) > 1  # several customers


def test_a_line_added_by_rpc_on_worksheet_5_reads_back(tryton):
    client = tryton.client()
    assert client.sale("5", ["state"])["state"] == "draft"
    assert client.worksheet_lines("5") == []
    client.add_line("5", "10", Decimal("2.125"), "OilMat abc123")
    assert rpc.worksheet_lines(tryton.url, "5") == [
        {"product_code": "10", "quantity": Decimal("2.125"), "description": "OilMat abc123",
         "type": "line"}]


def test_closed_worksheet_950_refuses_lines(tryton):
    client = tryton.client()
    assert client.sale("950")["state"] == "quotation"
    before = client.worksheet_lines("950")
    assert [line["description"] for line in before] == ["OilMat seed-950"]
    with pytest.raises(rpc.RpcError, match="no longer in a draft state"):
        client.add_line("950", "10", "1", "OilMat refused")
    assert client.worksheet_lines("950") == before


@pytest.mark.parametrize("reference, lines, closed_state", [
    ("6", 1, "quotation"),  # a worksheet with lines is quoted
    ("8", 0, "cancelled"),  # Tryton quotes no empty sale: cancelled, equally past draft
])
def test_close_and_reopen_a_worksheet(tryton, reference, lines, closed_state):
    client = tryton.client()
    for _ in range(lines):
        client.add_line(reference, "10", "1", "OilMat first")
    assert rpc.close_worksheet(tryton.url, reference) == closed_state
    assert client.sale(reference)["state"] == closed_state
    with pytest.raises(rpc.RpcError, match="no longer in a draft state"):
        client.add_line(reference, "10", "1", "OilMat late")
    rpc.reopen_worksheet(tryton.url, reference)
    assert client.sale(reference)["state"] == "draft"
    client.add_line(reference, "10", "1", "OilMat again")
    assert [line["description"] for line in client.worksheet_lines(reference)] == [
        "OilMat first"] * lines + ["OilMat again"]


def test_unknown_reference_is_a_lookup_error(tryton):
    with pytest.raises(LookupError):
        rpc.worksheet_lines(tryton.url, "1000")


def test_expire_sessions_logs_everyone_out(tryton):
    client = tryton.client()
    assert client.model("sale.sale", "search_count", [], relogin=False) == 999
    assert rpc.expire_sessions(tryton.data_dir) >= 1
    with pytest.raises(rpc.SessionExpired):
        client.model("sale.sale", "search_count", [], relogin=False)
    assert client.model("sale.sale", "search_count", []) == 999  # logs in again by itself


def test_session_ttl_option_expires_logins(tryton_build, tmp_path):
    with TrytonServer(tmp_path, ["--session-ttl", "2"]) as server:
        client = server.client()
        client.model("sale.sale", "search_count", [], relogin=False)
        time.sleep(2.5)  # counted from the login, not from the last call
        with pytest.raises(rpc.SessionExpired):
            client.model("sale.sale", "search_count", [], relogin=False)


def test_sigterm_stops_cleanly_and_a_restart_keeps_the_database(tryton_build, tmp_path):
    server = TrytonServer(tmp_path).start()
    try:
        assert "freshly seeded" in server.log_text()
        server.client().add_line("7", "3", "1.5", "OilMat kept")
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(5) == 0
    finally:
        server.stop()
    with TrytonServer(tmp_path) as again:
        assert "kept" in again.log_text()
        assert [line["description"] for line in again.client().worksheet_lines("7")] == [
            "OilMat kept"]


def test_a_half_copied_database_is_never_left_behind(tryton_build, tmp_path):
    # install_database copies into a temporary name, then renames: DIR either has the
    # whole seeded file or none, so a stand-up killed mid-copy reseeds next time.
    from erp_tryton.install import Build, install_database
    build = Build(log=lambda line: None)
    assert install_database(build, str(tmp_path))
    assert os.listdir(tmp_path) == ["workshop.sqlite"]
    assert os.path.getsize(tmp_path / "workshop.sqlite") == os.path.getsize(build.template)
    assert not install_database(build, str(tmp_path))


def _language_of_admin(server):
    """The admin's language and the label of a sale's Lines in it, read through JSON-RPC."""
    client = server.client()
    fields = client.model("sale.sale", "fields_get", ["lines"])
    return client.context["language"], fields["lines"]["string"]


def test_language_option_loads_it_and_makes_it_the_admins(tryton_build, tmp_path):
    started = time.monotonic()
    with TrytonServer(tmp_path, ["--language", "de"],
                      startup_timeout=START_TIMEOUT + 120) as server:  # first: ~10 s load
        assert "language de" in server.log_text()
        assert _language_of_admin(server) == ("de", "Positionen")
        decimal_point = server.client().context["locale"]["decimal_point"]
        assert decimal_point == ","  # what Tryton formats numbers with for this admin
    assert time.monotonic() - started < 150
    with TrytonServer(tmp_path) as server:  # kept: in its own language still
        assert _language_of_admin(server) == ("de", "Positionen")


def test_language_is_loaded_into_a_kept_database_in_seconds(tryton_build, tmp_path):
    from erp_tryton.install import Build, install_database
    install_database(Build(log=lambda line: None), str(tmp_path))  # English, as it was
    started = time.monotonic()
    with TrytonServer(tmp_path, ["--language", "fr"], startup_timeout=90) as server:
        assert "kept" in server.log_text()
        assert _language_of_admin(server) == ("fr", "Lignes")
    assert time.monotonic() - started < 60  # a load, not a rebuild
    with TrytonServer(tmp_path, ["--language", "en"]) as server:
        assert _language_of_admin(server) == ("en", "Lines")


def test_series_7_0_lts_stands_up_beside_8_0_in_a_language(tmp_path):
    from erp_tryton.install import Build
    subprocess.run([sys.executable, "-m", "erp_tryton", "--prepare", "--series", "7.0",
                    "--language", "nl"], cwd=REPO_ROOT, check=True, timeout=INSTALL_TIMEOUT)
    lts, current = Build(series="7.0"), Build()
    assert lts.dir != current.dir and lts.ready("nl")  # cached side by side
    with TrytonServer(tmp_path, ["--series", "7.0", "--language", "nl"]) as server:
        assert "Tryton 7.0" in server.log_text()
        client = server.client()
        assert _language_of_admin(server) == ("nl", "Regels")
        sao = requests.get(server.url + "/", timeout=10).text
        assert "bower_components/jquery" in sao  # 7.0's sao, its libraries from npm
        assert "__version__: '7.0." in requests.get(server.url + "/dist/tryton-sao.js",
                                                    timeout=10).text
        assert requests.get(server.url + "/bower_components/jquery/dist/jquery.min.js",
                            timeout=10).status_code == 200
        client.add_line("5", "206", Decimal("12.5"), "OilMat lts")
        assert client.worksheet_lines("5") == [{"product_code": "206",
                                                "quantity": Decimal("12.5"),
                                                "description": "OilMat lts", "type": "line"}]


@pytest.mark.parametrize("args, message", [
    ([], "--port and --data are required"),
    (["--port", "1", "--data", "x", "--series", "6.0"], "no Tryton series '6.0' here"),
    (["--port", "1", "--data", "x", "--series", "8"], "no Tryton series '8' here"),
    (["--port", "1", "--data", "x", "--language", "nb"], "Tryton ships no language 'nb'"),
    (["--port", "1", "--data", "x", "--language", "DE"], "Tryton ships no language 'DE'"),
    (["--port", "8000"], "--port and --data are required"),
    (["--port", "70000", "--data", "x"], "--port must be 0-65535"),
    (["--port", "1", "--data", "x", "--session-ttl", "0"], "whole number of seconds"),
    (["--port", "1", "--data", "erp_tryton/README.md"], "is not a folder"),
])
def test_bad_command_lines_are_refused_before_installing_anything(args, message):
    result = subprocess.run([sys.executable, "-m", "erp_tryton", *args], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr
    assert "installing" not in result.stderr
