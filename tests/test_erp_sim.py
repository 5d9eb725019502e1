"""The stand-in ERP: Flask test client for the pages, one real server for the process."""

import os
import re
import threading
import time

import pytest
import requests

from tests.erp_helpers import ErpSimServer, sim_app

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def make_client(tmp_path):
    """``make_client(**SimConfig fields)`` -> a test client of a fresh ERP (no save delay)."""
    def make(**options):
        return sim_app(tmp_path, **options).test_client()
    return make


@pytest.fixture
def client(make_client):
    return make_client()


def csrf_from(response):
    return _CSRF.search(response.get_data(as_text=True)).group(1)


def login(client, username="admin", password="admin", next_url=""):
    token = csrf_from(client.get("/login"))
    return client.post("/login", data={"csrf_token": token, "username": username,
                                       "password": password, "next": next_url})


def post_line(client, number, product_nr="10", amount="5", text="OilMat t1"):
    token = csrf_from(client.get(f"/worksheets/{number}"))
    return client.post(f"/worksheets/{number}/lines", data={
        "csrf_token": token, "product_nr": product_nr, "amount": amount, "text": text})


def plant(client, number, text, product_nr="10", amount="5"):
    """Store a line through the side door; :returns: its ``/_sim`` JSON (with ``id``)."""
    response = client.post(f"/_sim/worksheets/{number}/lines",
                           json={"product_nr": product_nr, "amount": amount, "text": text})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def sim_lines(client, number):
    return client.get(f"/_sim/worksheets/{number}").get_json()["lines"]


def delete_line(client, number, line_id, token=None):
    """Press a line's Delete button: POST its form with the session's token."""
    token = token or csrf_from(client.get("/login"))
    return client.post(f"/worksheets/{number}/lines/{line_id}/delete",
                       data={"csrf_token": token})


@pytest.fixture
def logged_in(client):
    assert login(client).status_code == 302
    return client


# -- login, session, CSRF ---------------------------------------------------------------

def test_login_form_has_token_and_stable_ids(client):
    page = client.get("/login").get_data(as_text=True)
    for marker in ('id="login-form"', 'name="username"', 'name="password"',
                   'id="login-submit"', 'name="csrf_token"'):
        assert marker in page


def test_login_success_goes_to_search(client):
    response = login(client)
    assert response.status_code == 302 and response.location == "/worksheets"
    assert 'id="search-form"' in client.get("/worksheets").get_data(as_text=True)


def test_login_failure_shows_error_and_never_echoes_password(client):
    response = login(client, password="s3cret-pw")
    page = response.get_data(as_text=True)
    assert response.status_code == 401
    assert "Invalid username or password" in page and 'id="form-errors"' in page
    assert 'id="login-form"' in page and "s3cret-pw" not in page
    assert client.get("/worksheets").status_code == 302  # still anonymous


def test_login_with_wrong_csrf_token_is_rejected(client):
    client.get("/login")
    response = client.post("/login", data={"csrf_token": "forged", "username": "admin",
                                           "password": "admin"})
    assert response.status_code == 400
    assert "The form has expired" in response.get_data(as_text=True)
    assert client.get("/worksheets").status_code == 302


def test_anonymous_is_sent_to_login_with_next(client):
    response = client.get("/worksheets/42")
    assert response.status_code == 302
    assert response.location == "/login?next=/worksheets/42"


def test_login_returns_to_next_but_not_off_site(client):
    assert login(client, next_url="/worksheets/42").location == "/worksheets/42"
    assert login(client, next_url="//evil.example/").location == "/worksheets"


def test_session_expires_after_ttl_since_login(make_client):
    client = make_client(session_ttl=0.5)
    login(client)
    assert client.get("/worksheets/5").status_code == 200
    time.sleep(0.6)
    response = client.get("/worksheets/5")
    assert response.location == "/login?next=/worksheets/5"
    assert "Your session has expired" in client.get(response.location).get_data(as_text=True)


def test_post_after_expiry_adds_nothing_and_returns_to_the_sheet(make_client):
    client = make_client(session_ttl=0.5)
    login(client)
    token = csrf_from(client.get("/worksheets/5"))
    time.sleep(0.6)
    response = client.post("/worksheets/5/lines",
                           headers={"Referer": "http://localhost/worksheets/5"},
                           data={"csrf_token": token, "product_nr": "10", "amount": "1",
                                 "text": "late"})
    assert response.location == "/login?next=/worksheets/5"
    assert client.get("/_sim/worksheets/5").get_json()["lines"] == []


def test_logout(logged_in):
    assert 'id="logout"' in logged_in.get("/worksheets").get_data(as_text=True)
    assert logged_in.get("/logout").location == "/login"
    assert logged_in.get("/worksheets").status_code == 302


# -- search and worksheet page ------------------------------------------------------------

def test_search_found_redirects_to_the_worksheet(logged_in):
    response = logged_in.get("/worksheets?number=42")
    assert response.status_code == 302 and response.location == "/worksheets/42"


@pytest.mark.parametrize("number", ["1500", "0", "abc"])
def test_search_not_found(logged_in, number):
    page = logged_in.get(f"/worksheets?number={number}").get_data(as_text=True)
    assert f"No worksheet found with number {number}" in page and 'id="search-form"' in page


def test_worksheet_url_not_found_is_404_with_same_message(logged_in):
    response = logged_in.get("/worksheets/1500")
    assert response.status_code == 404
    assert "No worksheet found with number 1500" in response.get_data(as_text=True)


def test_open_worksheet_page(logged_in):
    page = logged_in.get("/worksheets/42").get_data(as_text=True)
    assert 'data-number="42"' in page and 'data-status="open"' in page
    assert '<dd id="status">Open</dd>' in page and 'id="customer"' in page
    assert 'id="vehicle"' in page and 'id="lines"' in page
    assert 'id="add-line-form"' in page and 'id="closed-banner"' not in page


def test_add_line_redirects_with_flash_and_shows_line(logged_in):
    response = post_line(logged_in, 7, product_nr="10", amount="2,50", text="OilMat abc")
    assert response.status_code == 302 and response.location == "/worksheets/7"
    page = logged_in.get("/worksheets/7").get_data(as_text=True)
    assert 'id="flash"' in page and "Line added" in page
    [line] = logged_in.get("/_sim/worksheets/7").get_json()["lines"]
    assert line == {"id": line["id"], "product_nr": 10, "amount": "2.5",
                    "reference": "OilMat abc"}
    assert re.search(rf'<tr class="line" data-line-id="{line["id"]}">'
                     rf'<td class="line-id">{line["id"]}</td><td class="product-nr">10</td>'
                     r'<td class="product-name">Motor oil 5W-30 \(litre\)</td>'
                     r'<td class="amount">2.5</td><td class="text">OilMat abc</td>', page)


@pytest.mark.parametrize("amount, stored", [("5", "5"), ("5.000", "5"), ("1,25", "1.25"),
                                            ("0.001", "0.001"), (" 12.5 ", "12.5")])
def test_amounts_accepted(logged_in, amount, stored):
    assert post_line(logged_in, 8, amount=amount).status_code == 302
    assert logged_in.get("/_sim/worksheets/8").get_json()["lines"][-1]["amount"] == stored


@pytest.mark.parametrize("product_nr, amount, message", [
    ("", "5", "Product number is required"),
    ("999", "5", "Unknown product number 999"),
    ("abc", "5", "Unknown product number abc"),
    ("10", "0", "Amount must be a positive number"),
    ("10", "-1", "Amount must be a positive number"),
    ("10", "abc", "Amount must be a positive number"),
    ("10", "1.2345", "Amount must be a positive number"),
    ("10", "1e3", "Amount must be a positive number"),
    ("10", "NaN", "Amount must be a positive number"),
    ("10", "", "Amount must be a positive number"),
])
def test_validation_messages_reshow_the_form(logged_in, product_nr, amount, message):
    response = post_line(logged_in, 9, product_nr=product_nr, amount=amount, text="keep me")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="form-errors"' in page and message in page
    assert 'value="keep me"' in page and f'id="amount" name="amount" value="{amount}"' in page
    assert logged_in.get("/_sim/worksheets/9").get_json()["lines"] == []


def test_add_line_with_wrong_csrf_token_is_refused(logged_in):
    response = logged_in.post("/worksheets/9/lines", data={
        "csrf_token": "forged", "product_nr": "10", "amount": "1", "text": "x"})
    assert response.status_code == 400
    assert "The form has expired" in response.get_data(as_text=True)
    assert logged_in.get("/_sim/worksheets/9").get_json()["lines"] == []


def test_closed_worksheet_shows_banner_and_no_form(logged_in):
    page = logged_in.get("/worksheets/950").get_data(as_text=True)
    assert 'id="closed-banner"' in page
    assert "Worksheet 950 is closed (invoiced) and cannot be changed" in page
    assert "Closed (invoiced)" in page and 'id="add-line-form"' not in page


def test_closed_worksheet_refuses_a_post(logged_in):
    token = csrf_from(logged_in.get("/worksheets/5"))
    response = logged_in.post("/worksheets/950/lines", data={
        "csrf_token": token, "product_nr": "10", "amount": "1", "text": "x"})
    assert response.status_code == 409
    assert "Worksheet 950 is closed (invoiced) and cannot be changed" in response.get_data(
        as_text=True)
    assert logged_in.get("/_sim/worksheets/950").get_json()["lines"] == []


# -- deleting a line --------------------------------------------------------------------------

def test_each_line_has_its_id_and_a_delete_form(logged_in):
    first, second = plant(logged_in, 12, "OilMat d1"), plant(logged_in, 12, "OilMat d2")
    page = logged_in.get("/worksheets/12").get_data(as_text=True)
    token = csrf_from(logged_in.get("/worksheets/12"))
    for line in (first, second):
        assert (f'<tr class="line" data-line-id="{line["id"]}">'
                f'<td class="line-id">{line["id"]}</td>') in page
        assert (f'<form class="delete-line-form" method="post" '
                f'action="/worksheets/12/lines/{line["id"]}/delete">'
                f'<input type="hidden" name="csrf_token" value="{token}">'
                f'<button class="delete-line" type="submit" data-line-id="{line["id"]}">'
                'Delete</button></form>') in page


def test_delete_line_redirects_with_flash_and_removes_only_that_line(logged_in):
    first, second = plant(logged_in, 12, "OilMat d1"), plant(logged_in, 12, "OilMat d2")
    response = delete_line(logged_in, 12, first["id"])
    assert response.status_code == 302 and response.location == "/worksheets/12"
    page = logged_in.get("/worksheets/12").get_data(as_text=True)
    assert 'id="flash"' in page and "Line deleted" in page
    assert "OilMat d1" not in page and "OilMat d2" in page
    assert sim_lines(logged_in, 12) == [second]


@pytest.mark.parametrize("line_id", ["other-sheet", "twice", "abc", "99999999999999999999999"])
def test_delete_of_a_line_not_on_the_sheet_is_404_and_deletes_nothing(logged_in, line_id):
    mine, other = plant(logged_in, 14, "OilMat mine"), plant(logged_in, 13, "OilMat other")
    if line_id == "other-sheet":
        line_id = other["id"]
    elif line_id == "twice":
        line_id = plant(logged_in, 14, "OilMat gone")["id"]
        assert delete_line(logged_in, 14, line_id).status_code == 302
    response = delete_line(logged_in, 14, line_id)
    page = response.get_data(as_text=True)
    assert response.status_code == 404
    assert f"Line {line_id} is not on worksheet 14" in page and 'id="form-errors"' in page
    assert 'id="worksheet"' in page  # the worksheet again, not an error page
    assert sim_lines(logged_in, 14) == [mine] and sim_lines(logged_in, 13) == [other]


def test_delete_on_an_unknown_worksheet_is_404(logged_in):
    line = plant(logged_in, 14, "OilMat x")
    assert delete_line(logged_in, 1500, line["id"]).status_code == 404
    assert sim_lines(logged_in, 14) == [line]


def test_closed_worksheet_has_no_delete_and_refuses_one(logged_in):
    line = plant(logged_in, 950, "OilMat on a closed sheet")  # the side door can
    page = logged_in.get("/worksheets/950").get_data(as_text=True)
    assert "OilMat on a closed sheet" in page and "delete-line" not in page
    response = delete_line(logged_in, 950, line["id"])
    assert response.status_code == 409
    assert "Worksheet 950 is closed (invoiced) and cannot be changed" in response.get_data(
        as_text=True)
    assert sim_lines(logged_in, 950) == [line]


def test_delete_needs_the_token_and_a_login(make_client):
    client = make_client(session_ttl=0.5)
    login(client)
    line = plant(client, 15, "OilMat keep")
    response = delete_line(client, 15, line["id"], token="forged")
    assert response.status_code == 400
    assert "The form has expired" in response.get_data(as_text=True)
    token = csrf_from(client.get("/worksheets/15"))
    time.sleep(0.6)
    response = client.post(f"/worksheets/15/lines/{line['id']}/delete",
                           headers={"Referer": "http://localhost/worksheets/15"},
                           data={"csrf_token": token})
    assert response.location == "/login?next=/worksheets/15"
    assert sim_lines(client, 15) == [line]


@pytest.mark.parametrize("path", ["/worksheets/99999999999999999999999",
                                  "/_sim/worksheets/99999999999999999999999"])
def test_a_number_too_long_for_the_database_is_not_found(logged_in, path):
    assert logged_in.get(path).status_code == 404
    response = post_line(logged_in, 16, product_nr="99999999999999999999999")
    assert response.status_code == 422
    assert "Unknown product number 99999999999999999999999" in response.get_data(as_text=True)


# -- seed data and the /_sim side door ------------------------------------------------------

def test_seeded_worksheets_and_products(client):
    assert client.get("/_sim/worksheets/1").get_json()["status"] == "open"
    assert client.get("/_sim/worksheets/899").get_json()["status"] == "open"
    assert client.get("/_sim/worksheets/900").get_json()["status"] == "closed"
    assert client.get("/_sim/worksheets/999").get_json()["status"] == "closed"
    for missing in ("0", "1000", "1500", "x"):
        response = client.get(f"/_sim/worksheets/{missing}")
        assert response.status_code == 404 and response.get_json()["error"] == "not found"


def test_sim_json_shape_and_health(client):
    assert client.get("/_sim/health").get_json() == {"status": "ok"}
    assert client.get("/_sim/worksheets/3").get_json() == {"number": 3, "status": "open",
                                                           "lines": []}


# -- the real process ------------------------------------------------------------------------

def test_cli_server_is_threaded_and_cleans_up_its_temp_db():
    with ErpSimServer(save_delay=1.0) as erp:
        db_dir = os.path.dirname(re.search(r"\(db (\S+),", erp.log_text()).group(1))
        assert os.path.exists(db_dir)
        http = requests.Session()
        token = _CSRF.search(http.get(erp.url + "/login").text).group(1)
        http.post(erp.url + "/login", data={"csrf_token": token, "username": "admin",
                                            "password": "admin"})
        token = _CSRF.search(http.get(erp.url + "/worksheets/11").text).group(1)
        saving = threading.Thread(target=http.post, args=(erp.url + "/worksheets/11/lines",),
                                  kwargs={"data": {"csrf_token": token, "product_nr": "10",
                                                   "amount": "3", "text": "OilMat slow"}})
        saving.start()
        time.sleep(0.2)
        started = time.monotonic()
        assert requests.get(erp.url + "/_sim/health", timeout=5).status_code == 200
        assert time.monotonic() - started < 0.5  # answered during the 1 s save
        saving.join(5)
        assert [{**line, "id": None} for line in erp.lines_with(11, "slow")] == [
            {"id": None, "product_nr": 10, "amount": "3", "reference": "OilMat slow"}]
    assert not os.path.exists(db_dir)


def test_sim_plants_a_line_as_it_is(client):
    line = plant(client, 17, "  OilMat planted ", product_nr=11, amount=2.5)
    assert line == {"id": line["id"], "product_nr": 11, "amount": "2.5",
                    "reference": "OilMat planted"}
    twin = plant(client, 17, "OilMat planted", product_nr="11", amount="2,50")
    assert twin["id"] != line["id"]
    assert sim_lines(client, 17) == [line, twin]


@pytest.mark.parametrize("body, fields", [
    ({"product_nr": "999", "amount": "1", "text": "x"},
     {"product_nr": "Unknown product number 999"}),
    ({"amount": "1"}, {"product_nr": "Product number is required"}),
    ({"product_nr": "10", "amount": "0", "text": "x"},
     {"amount": "Amount must be a positive number"}),
    ({"product_nr": "10", "amount": "1", "text": 5}, {"text": "must be a string"}),
    ({"product_nr": True, "amount": [1]}, {"product_nr": "must be a string or a number",
                                          "amount": "must be a string or a number"}),
    ([1, 2], {"body": "must be a JSON object with product_nr, amount, text"}),
    ("not json", {"body": "must be a JSON object with product_nr, amount, text"}),
])
def test_sim_refuses_a_bad_planted_line_naming_the_field(client, body, fields):
    if body == "not json":
        response = client.post("/_sim/worksheets/18/lines", data="{oops",
                               content_type="application/json")
    else:
        response = client.post("/_sim/worksheets/18/lines", json=body)
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid line", "fields": fields}
    assert sim_lines(client, 18) == []


def test_sim_plant_on_an_unknown_worksheet_is_404(client):
    response = client.post("/_sim/worksheets/1500/lines",
                           json={"product_nr": "10", "amount": "1", "text": "x"})
    assert response.status_code == 404
    assert response.get_json() == {"error": "not found", "number": "1500"}


def test_sim_request_log_shows_every_request_and_line_posts_with_their_text(logged_in):
    assert logged_in.delete("/_sim/requests").status_code == 200
    post_line(logged_in, 19, text="OilMat logged")
    post_line(logged_in, 19, product_nr="999", text="OilMat refused")
    line = sim_lines(logged_in, 19)[0]
    delete_line(logged_in, 19, line["id"])
    started = time.time()
    log = logged_in.get("/_sim/requests").get_json()["requests"]
    assert [(e["method"], e["path"], e["status"], e.get("text")) for e in log] == [
        ("GET", "/worksheets/19", 200, None),
        ("POST", "/worksheets/19/lines", 302, "OilMat logged"),
        ("GET", "/worksheets/19", 200, None),
        ("POST", "/worksheets/19/lines", 422, "OilMat refused"),
        ("GET", "/login", 200, None),  # where delete_line() takes its token
        ("POST", f"/worksheets/19/lines/{line['id']}/delete", 302, None),
    ]  # and no /_sim call
    assert all(started - 5 < e["at"] <= started for e in log)
    assert [e["at"] for e in log] == sorted(e["at"] for e in log)
    assert logged_in.delete("/_sim/requests").get_json() == {"cleared": 6}
    assert logged_in.get("/_sim/requests").get_json() == {"requests": []}


def test_request_log_keeps_the_last_entries():
    from erp_sim.request_log import MAX_ENTRIES, RequestLog

    assert MAX_ENTRIES == 10_000
    log = RequestLog(size=3)
    for i in range(5):
        log.add({"n": i})
    assert log.entries() == [{"n": 2}, {"n": 3}, {"n": 4}]
    assert log.clear() == 3 and log.entries() == []


def test_sim_closes_and_reopens_a_worksheet(client):
    assert client.put("/_sim/worksheets/901/status", json={"status": "open"}).json == {
        "number": 901, "status": "open"}
    assert client.get("/_sim/worksheets/901").json["status"] == "open"
    assert client.put("/_sim/worksheets/558/status", json={"status": "closed"}).status_code == 200
    assert client.get("/_sim/worksheets/558").json["status"] == "closed"
    assert client.put("/_sim/worksheets/558/status", json={"status": "gone"}).status_code == 400
    assert client.put("/_sim/worksheets/4711/status", json={"status": "open"}).status_code == 404


def test_a_worksheet_can_be_given_to_nobody_through_sim(client):
    """``PUT /_sim/worksheets/N/customer``: the worksheet that belongs to nobody (issue
    27's bad PROBE_WORKSHEET), shown with an empty customer; bad input is a 400."""
    answer = client.put("/_sim/worksheets/12/customer", json={"customer": ""})
    assert answer.status_code == 200 and answer.get_json() == {"number": 12, "customer": ""}
    login(client)
    page = client.get("/worksheets/12").get_data(as_text=True)
    assert '<dd id="customer"></dd>' in page
    assert client.put("/_sim/worksheets/12/customer", json={"customer": 5}).status_code == 400
    assert client.put("/_sim/worksheets/12/customer", data="x").status_code == 400
    assert client.put("/_sim/worksheets/5000/customer", json={"customer": ""}).status_code == 404
