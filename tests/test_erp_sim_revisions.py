"""erp_sim's UI revisions (erp_sim/revisions.py): revision 2 moves and renames what the
integration relies on in both flavours; revision 1 is what it always was, byte for byte,
also after switching to 2 and back while the ERP runs."""

import re

import pytest

from erp_sim import revisions
from erp_sim.__main__ import parse_args
from test_erp_sim import csrf_from, login, sim_lines
from tests.erp_helpers import sim_app


@pytest.fixture
def make_client(tmp_path):
    def make(**options):
        return sim_app(tmp_path, **options).test_client()
    return make


def switch(client, revision):
    answer = client.put("/_sim/ui_revision", json={"revision": revision})
    assert answer.status_code == 200 and answer.get_json() == {"revision": revision}


def test_revision_2_of_the_classic_worksheet_renames_and_reorders(make_client):
    client = make_client(ui_revision=2)
    login(client)
    client.post("/_sim/worksheets/5/lines", json={"product_nr": "10", "amount": "2", "text": "OilMat r"})
    page = client.get("/worksheets/5").get_data(as_text=True)
    assert 'name="article_nr"' in page and 'name="product_nr"' not in page
    assert 'id="save-line"' in page and 'id="add-line-submit"' not in page
    row = re.search(r'<tr class="line"[^>]*>(.*?)</tr>', page, re.S).group(1)
    assert re.findall(r'<td class="([^"]+)"', row) == [
        "text", "amount", "unit", "product-nr", "product-name", "line-id", "actions"]
    assert len(re.findall(r"<th>", page)) == 7  # a unit column more, and the actions'


def test_revision_2_takes_a_line_through_its_own_form(make_client):
    client = make_client(ui_revision=2)
    login(client)
    token = csrf_from(client.get("/worksheets/6"))
    answer = client.post("/worksheets/6/lines", data={
        "csrf_token": token, "article_nr": "10", "amount": "3", "text": "OilMat by hand"})
    assert answer.status_code == 302
    assert [(l["product_nr"], l["amount"]) for l in sim_lines(client, 6)] == [(10, "3")]


def test_switching_to_2_and_back_gives_revision_1_byte_for_byte(make_client):
    client = make_client()
    login(client)
    client.post("/_sim/worksheets/7/lines", json={"product_nr": "10", "amount": "2", "text": "OilMat s"})
    before = {path: client.get(path).data for path in ("/worksheets", "/worksheets/7")}
    switch(client, 2)
    assert client.get("/worksheets/7").data != before["/worksheets/7"]
    switch(client, 1)
    assert {path: client.get(path).data for path in before} == before
    assert client.get("/_sim/ui_revision").get_json() == {"revision": 1}


@pytest.mark.parametrize("body", [{"revision": 3}, {"revision": "2"}, {}, None])
def test_no_such_revision_is_refused(make_client, body):
    client = make_client()
    answer = client.put("/_sim/ui_revision", json=body)
    assert answer.status_code == 400 and "revision" in answer.get_json()["fields"]
    assert client.get("/_sim/ui_revision").get_json() == {"revision": 1}


def test_every_spa_edit_applies_to_the_shell_exactly_as_meant(make_client):
    shell = make_client(flavor="spa").get("/").get_data(as_text=True)
    for pattern, _ in revisions.EDITS["spa"]:
        assert re.search(pattern, shell), pattern  # spa.js changed under revision 2's edit
    edited = revisions.edit(shell, "spa")
    assert "product-search" not in edited and "'save-line'" in edited
    cells = re.findall(r"el\('td', \{'class': '([a-z-]+)'\}", edited)
    assert cells[:6] == ["text", "amount", "unit", "product-nr", "product-name", "line-id"]
    switch(client := make_client(flavor="spa"), 2)
    assert client.get("/").get_data(as_text=True) == edited


def test_cli_flag_and_environment(monkeypatch):
    assert parse_args(["--port", "0"]).ui_revision == 1
    assert parse_args(["--port", "0", "--ui-revision", "2"]).ui_revision == 2
    monkeypatch.setenv("ERP_SIM_UI_REVISION", "2")
    assert parse_args(["--port", "0"]).ui_revision == 2
    with pytest.raises(SystemExit):
        parse_args(["--port", "0", "--ui-revision", "3"])
