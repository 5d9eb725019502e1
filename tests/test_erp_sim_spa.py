"""The SPA flavour of the stand-in ERP: its JSON API, through the Flask test client.

Its screens are driven in a real browser by tests/test_integration_contract.py."""

import time

import pytest

from tests.erp_helpers import sim_app
from tests.test_erp_sim import plant, sim_lines


@pytest.fixture
def make_client(tmp_path):
    """``make_client(**SimConfig fields)`` -> a test client of a fresh SPA ERP."""
    def make(**options):
        return sim_app(tmp_path, flavor="spa", **options).test_client()
    return make


@pytest.fixture
def client(make_client):
    return make_client()


def token(client):
    return client.get("/api/session").get_json()["csrf_token"]


def login(client, username="admin", password="admin"):
    return client.post("/api/login", json={"username": username, "password": password},
                       headers={"X-CSRF-Token": token(client)})


@pytest.fixture
def logged_in(client):
    response = login(client)
    assert response.status_code == 200
    client.csrf = response.get_json()["csrf_token"]
    return client


def post_line(client, number, product_nr="10", amount="5", text="OilMat t1"):
    return client.post(f"/api/worksheets/{number}/lines", headers={"X-CSRF-Token": client.csrf},
                       json={"product_nr": product_nr, "amount": amount, "text": text})


def test_shell_is_one_page_with_the_script_inline(client):
    page = client.get("/").get_data(as_text=True)
    assert 'id="app"' in page and "function render(" in page and "<form" not in page
    assert "function deleteLine(" in page and "'delete-line'" in page
    assert client.get("/worksheets").status_code == 404  # no server-rendered pages


def test_api_needs_a_login(client):
    response = client.get("/api/worksheets/5")
    assert response.status_code == 401
    assert response.get_json()["error"] == "Please log in"


def test_login_needs_the_csrf_header_and_the_right_password(client):
    response = client.post("/api/login", json={"username": "admin", "password": "admin"})
    assert response.status_code == 400
    assert response.get_json()["errors"] == ["The form has expired. Please try again."]
    response = login(client, password="s3cret-pw")
    assert response.status_code == 401
    assert response.get_json()["errors"] == ["Invalid username or password"]
    assert "s3cret-pw" not in response.get_data(as_text=True)
    assert login(client).get_json()["user"] == "admin"
    assert client.get("/api/worksheets/5").status_code == 200


def test_extra_users(make_client):
    client = make_client(users=(("clerk", "pw:with:colons"),))
    assert login(client, "clerk", "pw:with:colons").status_code == 200


def test_session_expires_after_ttl(make_client):
    client = make_client(session_ttl=0.3)
    login(client)
    time.sleep(0.4)
    response = client.get("/api/worksheets/5")
    assert response.status_code == 401
    assert response.get_json()["expired"] is True
    assert "Your session has expired" in response.get_json()["error"]


def test_search_and_worksheet(logged_in):
    assert logged_in.get("/api/worksheets?number=42").get_json() == {"number": 42}
    missing = logged_in.get("/api/worksheets?number=1500")
    assert missing.status_code == 404
    assert missing.get_json()["errors"] == ["No worksheet found with number 1500"]
    sheet = logged_in.get("/api/worksheets/42").get_json()
    assert sheet["number"] == 42 and sheet["status"] == "open" and sheet["lines"] == []
    assert sheet["closed_message"] is None and sheet["locked_message"] is None
    closed = logged_in.get("/api/worksheets/950").get_json()
    assert closed["closed_message"] == "Worksheet 950 is closed (invoiced) and cannot be changed"


def test_product_suggestions(logged_in):
    found = logged_in.get("/api/products?q=10").get_json()["products"]
    assert found[0] == {"nr": 10, "name": "Motor oil 5W-30 (litre)"}
    assert len(found) == 10
    assert all("10" in str(p["nr"]) or "10" in p["name"] for p in found)
    by_name = logged_in.get("/api/products?q=brake fluid").get_json()["products"]
    assert [p["nr"] for p in by_name] == [22]
    assert logged_in.get("/api/products?q=999").get_json()["products"] == []


def test_add_line_and_validation(logged_in):
    response = post_line(logged_in, 7, amount="2,50")
    assert response.status_code == 201
    assert response.get_json()["lines"][-1]["text"] == "OilMat t1"
    [line] = logged_in.get("/_sim/worksheets/7").get_json()["lines"]
    assert line == {"id": line["id"], "product_nr": 10, "amount": "2.5",
                    "reference": "OilMat t1"}
    assert response.get_json()["lines"][-1]["id"] == line["id"]
    refused = post_line(logged_in, 7, product_nr="999", amount="0")
    assert refused.status_code == 422
    assert refused.get_json()["errors"] == ["Unknown product number 999",
                                            "Amount must be a positive number"]
    closed = post_line(logged_in, 950)
    assert closed.status_code == 409 and "is closed (invoiced)" in closed.get_json()["errors"][0]
    logged_in.csrf = "forged"
    assert post_line(logged_in, 7).status_code == 400
    assert len(logged_in.get("/_sim/worksheets/7").get_json()["lines"]) == 1


def delete_line(client, number, line_id):
    return client.delete(f"/api/worksheets/{number}/lines/{line_id}",
                         headers={"X-CSRF-Token": client.csrf})


def test_delete_line_answers_the_sheet_without_it(logged_in):
    first, second = plant(logged_in, 12, "OilMat d1"), plant(logged_in, 12, "OilMat d2")
    sheet = logged_in.get("/api/worksheets/12").get_json()
    assert [line["id"] for line in sheet["lines"]] == [first["id"], second["id"]]
    response = delete_line(logged_in, 12, first["id"])
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["errors"] == [] and [line["text"] for line in answer["lines"]] == ["OilMat d2"]
    assert sim_lines(logged_in, 12) == [second]
    again = delete_line(logged_in, 12, first["id"])  # a resent request
    assert again.status_code == 404
    assert again.get_json()["errors"] == [f"Line {first['id']} is not on worksheet 12"]
    assert [line["text"] for line in again.get_json()["lines"]] == ["OilMat d2"]


def test_delete_line_refusals(logged_in):
    mine, closed = plant(logged_in, 14, "OilMat mine"), plant(logged_in, 950, "OilMat closed")
    on_other_sheet = delete_line(logged_in, 13, mine["id"])
    assert on_other_sheet.status_code == 404
    assert on_other_sheet.get_json()["errors"] == [f"Line {mine['id']} is not on worksheet 13"]
    assert delete_line(logged_in, 14, "abc").status_code == 404
    unknown_sheet = delete_line(logged_in, 1500, mine["id"])
    assert unknown_sheet.status_code == 404
    assert unknown_sheet.get_json() == {"errors": ["No worksheet found with number 1500"]}
    refused = delete_line(logged_in, 950, closed["id"])
    assert refused.status_code == 409
    assert refused.get_json()["errors"] == [
        "Worksheet 950 is closed (invoiced) and cannot be changed"]
    csrf, logged_in.csrf = logged_in.csrf, "forged"
    forged = delete_line(logged_in, 14, mine["id"])
    assert forged.status_code == 400
    assert forged.get_json()["errors"] == ["The form has expired. Please try again."]
    logged_in.csrf = csrf
    logged_in.post("/api/logout")
    anonymous = delete_line(logged_in, 14, mine["id"])
    assert anonymous.status_code == 401 and anonymous.get_json()["error"] == "Please log in"
    assert sim_lines(logged_in, 14) == [mine] and sim_lines(logged_in, 950) == [closed]


def test_request_log_has_the_text_of_a_line_post(logged_in):
    logged_in.delete("/_sim/requests")
    post_line(logged_in, 19, text="OilMat spa")
    line = sim_lines(logged_in, 19)[0]
    delete_line(logged_in, 19, line["id"])
    log = logged_in.get("/_sim/requests").get_json()["requests"]
    assert [(e["method"], e["path"], e["status"], e.get("text")) for e in log] == [
        ("POST", "/api/worksheets/19/lines", 201, "OilMat spa"),
        ("DELETE", f"/api/worksheets/19/lines/{line['id']}", 200, None)]
