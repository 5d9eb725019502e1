"""``python manage.py``, run as admins run it (a subprocess), without supervisord."""

import json
from pathlib import Path

import pytest

from core.crypto import CredentialBox
from fleet import launch

from tests.fleet_helpers import Fleet, fleet_env

URL = "http://127.0.0.1:5080"


@pytest.fixture
def fleet(tmp_path):
    fleet = Fleet(fleet_env(tmp_path))
    yield fleet
    fleet.cleanup()


def one_line_error(result, text):
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert text in result.stderr, result.stderr


def test_add_prints_the_token_once_and_list_never(fleet):
    result = fleet.add("Bilverksted Ålesund", URL)
    assert "supervisord not running" in result.stdout
    token = fleet.tokens["Bilverksted Ålesund"]
    listed = fleet.manage("list").stdout + fleet.manage("list", "--json").stdout
    assert "Bilverksted Ålesund" in listed and token not in listed and "admin\n" not in listed
    rows = json.loads(fleet.manage("list", "--json").stdout)
    assert rows[0]["port"] == fleet.ports["Bilverksted Ålesund"] and rows[0]["active"] is True


def test_explicit_token_and_password_from_stdin(fleet):
    fleet.manage("add", "Bennys Auto", "--erp-system", "erp_sim", "--erp-url", URL, "--port", 9123,
                 "--password", "-", "--api-token", "explicit-token-0123456789", stdin="pw from stdin\n")
    programs = Path(fleet.env["SUPERVISOR_DIR"], "programs")
    text = "".join(p.read_text() for p in programs.iterdir())
    assert "pw from stdin" not in text and "explicit-token-0123456789" not in text
    _, env = launch.read(next(programs.glob("*.json")))
    box = CredentialBox(fleet.env["SECRET_KEY"])
    assert box.open(env["ERP_CREDENTIALS_SEALED"]).password == "pw from stdin"
    assert box.open_text(env["API_TOKEN_SEALED"]) == "explicit-token-0123456789"


def test_errors_are_one_line_and_exit_2(fleet):
    fleet.add("Bennys Auto", URL, 9200)
    one_line_error(fleet.manage("update", "Nobody", "--port", 9300, check=False), "no integration")
    one_line_error(fleet.manage("add", "Bennys Auto", "--erp-system", "erp_sim", "--erp-url", URL,
                                "--port", 9201, check=False), "exists")
    one_line_error(fleet.manage("add", "Garage Tre", "--erp-system", "erp_sim", "--erp-url", URL,
                                "--port", 9200, check=False), "port 9200")
    one_line_error(fleet.manage("add", "Garage Tre", "--erp-system", "erp_sim", "--erp-url",
                                "not a url", "--port", 9202, check=False), "erp_url")
    one_line_error(fleet.manage("activate", "Nobody", check=False), "no integration")
    fleet.env["SECRET_KEY"] = ""
    one_line_error(fleet.manage("list", check=False), "SECRET_KEY")


def test_failures_that_are_not_manage_pys_own_are_one_line_and_exit_2(fleet, tmp_path):
    fleet.add("Bennys Auto", URL)
    (tmp_path / "a-file").write_text("not a folder")  # an OSError when the config is written
    fleet.env, saved = dict(fleet.env, SUPERVISOR_DIR=str(tmp_path / "a-file")), fleet.env
    one_line_error(fleet.manage("activate", "Bennys Auto", check=False), "a-file")
    Path(fleet.env["REGISTRY_DB"]).write_bytes(b"this is not a database" * 100)  # sqlite's error
    one_line_error(fleet.manage("list", check=False), "DatabaseError")
    fleet.env = saved  # so cleanup() removes the real SUPERVISOR_DIR


def test_names_are_normalised_so_lookalikes_are_one_workshop(fleet):
    fleet.add("Bennys\u00a0 Auto ", URL)  # NBSP, two spaces, one at the end
    assert [r["workshop"] for r in json.loads(fleet.manage("list", "--json").stdout)] == ["Bennys Auto"]
    one_line_error(fleet.manage("add", "Bennys Auto", "--erp-system", "erp_sim", "--erp-url", URL,
                                "--port", 9301, check=False), "exists")
    fleet.manage("update", "Bennys\u3000Auto", "--erp-url", "http://127.0.0.1:5999")  # any spacing finds it
    assert json.loads(fleet.manage("list", "--json").stdout)[0]["erp_url"] == "http://127.0.0.1:5999"
    one_line_error(fleet.manage("add", "Bennys\u200bAuto", "--erp-system", "erp_sim", "--erp-url", URL,
                                "--port", 9302, check=False), "U+200B ZERO WIDTH SPACE")


@pytest.mark.parametrize("name", ["-rf", "--help", " -x"])
def test_names_read_as_options_are_refused_at_add(fleet, name):
    result = fleet.manage("add", "--erp-system", "erp_sim", "--erp-url", URL, "--port", 9303, "--",
                          name, check=False)
    one_line_error(result, "must not start with '-'")
    assert json.loads(fleet.manage("list", "--json").stdout) == []


def test_update_activate_deactivate_remove(fleet, tmp_path):
    fleet.add("Bennys Auto", URL)
    fleet.manage("update", "Bennys Auto", "--erp-url", "http://127.0.0.1:5999", "--inactive")
    row = json.loads(fleet.manage("list", "--json").stdout)[0]
    assert (row["erp_url"], row["active"]) == ("http://127.0.0.1:5999", False)
    fleet.manage("activate", "Bennys Auto")
    assert json.loads(fleet.manage("list", "--json").stdout)[0]["active"] is True
    status = fleet.manage("status")
    assert "supervisord is not running" in status.stderr and "Bennys Auto" in status.stdout
    queue = tmp_path / "task_queue" / "Bennys Auto"
    queue.mkdir(parents=True)
    fleet.manage("remove", "Bennys Auto")
    assert queue.exists()
    fleet.add("Bennys Auto", URL)
    fleet.manage("remove", "Bennys Auto", "--delete-data")
    assert not queue.exists() and json.loads(fleet.manage("list", "--json").stdout) == []


def test_up_needs_the_management_token(fleet):
    fleet.env["MANAGEMENT_TOKEN"] = ""
    one_line_error(fleet.manage("up", check=False), "MANAGEMENT_TOKEN")


def test_a_registry_of_a_newer_release_is_refused_in_one_line(fleet):
    """core/fileformat.py: never opened half-understood."""
    import sqlite3

    fleet.add("Bennys Auto", "http://127.0.0.1:5080", 5001)
    with sqlite3.connect(fleet.env["REGISTRY_DB"]) as db:
        db.execute("PRAGMA user_version=99")
    one_line_error(fleet.manage("list", check=False), "is of format 99, written by a newer release")


def test_probe_worksheet_reaches_the_instance_and_a_bad_one_is_one_line(fleet):
    fleet.add("Bennys Auto", URL)
    fleet.manage("update", "Bennys Auto", "--probe-worksheet", "P-12")
    assert json.loads(fleet.manage("list", "--json").stdout)[0]["probe_worksheet"] == "P-12"
    programs = Path(fleet.env["SUPERVISOR_DIR"], "programs")
    _, env = launch.read(next(programs.glob("*.json")))
    assert env["PROBE_WORKSHEET"] == "P-12"
    one_line_error(fleet.manage("update", "Bennys Auto", "--probe-worksheet", "no such sheet",
                                check=False), "probe_worksheet")
    fleet.manage("update", "Bennys Auto", "--probe-worksheet", "")
    assert json.loads(fleet.manage("list", "--json").stdout)[0]["probe_worksheet"] == ""


def test_probe_of_an_instance_that_does_not_run_is_one_line(fleet):
    fleet.add("Bennys Auto", URL)
    one_line_error(fleet.manage("probe", "Bennys Auto", check=False), "did not answer")
