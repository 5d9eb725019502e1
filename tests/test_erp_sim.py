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
    assert re.search(r'<tr class="line"><td class="product-nr">10</td>'
                     r'<td class="product-name">Motor oil 5W-30 \(litre\)</td>'
                     r'<td class="amount">2.5</td><td class="text">OilMat abc</td>', page)
    assert logged_in.get("/_sim/worksheets/7").get_json()["lines"] == [
        {"product_nr": 10, "amount": "2.5", "reference": "OilMat abc"}]


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
        assert erp.lines_with(11, "slow") == [
            {"product_nr": 10, "amount": "3", "reference": "OilMat slow"}]
    assert not os.path.exists(db_dir)
