"""Read and steer the stand-up Tryton through its own JSON-RPC API, for tests and demos.

This is the test side's independent view of Tryton: what the sao web client (and so the
integration) did is checked here through Tryton's API, never through the browser.
Standard library only, so it runs in any Python.

::

    from erp_tryton import rpc

    rpc.worksheet_lines("http://127.0.0.1:8000", "5")
    # [{"product_code": "10", "quantity": Decimal("2.5"), "description": "OilMat abc",
    #   "type": "line"}]
    rpc.close_worksheet(url, "5"); rpc.reopen_worksheet(url, "5")
    rpc.expire_sessions(data_dir)     # every login, the browser's too, must be made again

A worksheet is a sale found by its *Reference*: draft = open, anything past draft = closed.
Protocol facts (trytond 8.0; 7.0 takes the same at ``/<db>/``): ``POST /<db>/rpc/`` with ``{"id", "method", "params"}``;
``common.db.login`` answers ``[user_id, session, ...]``; later calls send
``Authorization: Session base64("login:user_id:session")``; model calls take the user's
context (from ``model.res.user.get_preferences``) as their last parameter. An unknown or
expired session is answered with HTTP 401; a refusal with ``{"error": ["UserError", [message,
description, domain]]}``.
"""

import base64
import contextlib
import json
import os
import sqlite3
import urllib.error
import urllib.request
from decimal import Decimal

from erp_tryton.install import ADMIN_LOGIN, ADMIN_PASSWORD, DATABASE


class RpcError(Exception):
    """Tryton refused a call: ``kind`` is its exception name (e.g. ``UserError``)."""

    def __init__(self, kind, message):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


class SessionExpired(RpcError):
    """HTTP 401: the session is unknown, expired or was deleted."""

    def __init__(self):
        super().__init__("SessionExpired", "HTTP 401, log in again")


def _decode(value):
    # Tryton sends Decimals as objects so that no precision is lost through a float.
    if value.get("__class__") == "Decimal":
        return Decimal(value["decimal"])
    return value


def _encode(value):
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    raise TypeError(f"cannot send {type(value).__name__} to Tryton")


class Client:
    """A logged-in JSON-RPC session on one Tryton database.

    :param url: base URL of the server, e.g. ``http://127.0.0.1:8000``
    :param database: database name
    :param login: user login
    :param password: its password
    :param timeout: seconds allowed per HTTP request
    """

    def __init__(self, url, database=DATABASE, login=ADMIN_LOGIN, password=ADMIN_PASSWORD,
                 timeout=30.0):
        self.endpoint = f"{url.rstrip('/')}/{database}/rpc/"
        self.login_name = login
        self.password = password
        self.timeout = timeout
        self.authorization = None
        self.context = None
        self._ids = 0

    def login(self):
        """Open a session and load the user's context; returns ``self``."""
        user_id, session, *_ = self._post("common.db.login",
                                          [self.login_name, {"password": self.password}, "en"])
        token = base64.b64encode(f"{self.login_name}:{user_id}:{session}".encode()).decode()
        self.authorization = f"Session {token}"
        self.context = self._post("model.res.user.get_preferences", [True, {}])
        return self

    def call(self, method, *params, relogin=True):
        """Call ``method`` (a full name like ``model.sale.sale.search``) with ``params``.

        :param relogin: on HTTP 401 log in again once and repeat (``False``: raise it)
        :raises SessionExpired: on HTTP 401 when ``relogin`` is false
        :raises RpcError: when Tryton refuses the call
        """
        if self.authorization is None:
            self.login()
        try:
            return self._post(method, list(params))
        except SessionExpired:
            if not relogin:
                raise
            return self.login()._post(method, list(params))

    def model(self, model, method, *args, relogin=True):
        """Call ``model.<model>.<method>(*args, context)`` with the user's context."""
        if self.context is None:
            self.login()
        return self.call(f"model.{model}.{method}", *args, self.context, relogin=relogin)

    def _post(self, method, params):
        self._ids += 1
        body = json.dumps({"id": self._ids, "method": method, "params": params},
                          default=_encode).encode()
        headers = {"Content-Type": "application/json"}
        if self.authorization:
            headers["Authorization"] = self.authorization
        request = urllib.request.Request(self.endpoint, body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read(), object_hook=_decode)
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                raise SessionExpired() from None
            if exc.code == 405 and self.endpoint.endswith("/rpc/"):
                # trytond 7.0 answers JSON-RPC at /<db>/ (8.0 moved it to /<db>/rpc/)
                self.endpoint = self.endpoint[:-len("rpc/")]
                return self._post(method, params)
            raise
        if answer.get("error"):
            kind, detail = answer["error"][0], answer["error"][1]
            raise RpcError(kind, detail[0] if isinstance(detail, list) and detail else detail)
        return answer["result"]

    # -- worksheets (sales found by reference) ------------------------------------------------

    def sale(self, reference, fields=("state",)):
        """The sale whose *Reference* is ``reference``, as a dict with ``id`` and ``fields``.

        :raises LookupError: when there is no such sale
        """
        found = self.model("sale.sale", "search_read", [("reference", "=", str(reference))],
                           0, 2, None, list(fields))
        if len(found) != 1:
            raise LookupError(f"{len(found)} sales with reference {reference!r}")
        return found[0]

    def worksheet_lines(self, reference):
        """The lines of the sale with ``reference``, oldest first.

        :returns: ``[{"product_code", "quantity" (a Decimal), "description", "type"}]``;
            a comment line (``type`` ``"comment"``) has no product and quantity ``None``
        """
        sale_id = self.sale(reference)["id"]
        lines = self.model("sale.line", "search_read", [("sale", "=", sale_id)], 0, None,
                           [("sequence", "ASC"), ("id", "ASC")],
                           ["product.code", "quantity", "description", "type"])
        return [{"product_code": (line.get("product.") or {}).get("code"),
                 # quantity is a float field: go through str() for the digits it shows
                 "quantity": None if line["quantity"] is None else Decimal(str(line["quantity"])),
                 "description": line["description"], "type": line["type"]}
                for line in lines]

    def add_line(self, reference, product_code, quantity, description):
        """Add a product line the way a clerk would, but through the API; returns its id.

        :raises RpcError: when Tryton refuses it (e.g. the sale is past draft)
        """
        sale_id = self.sale(reference)["id"]
        product, = self.model("product.product", "search_read",
                              [("code", "=", str(product_code))], 0, 1, None,
                              ["sale_uom", "template.list_price"])
        line_id, = self.model("sale.line", "create", [{
            "sale": sale_id, "type": "line", "product": product["id"],
            "quantity": float(quantity), "unit": product["sale_uom"],
            # the template's price: product.product has list_price_used in 8.0 only
            "unit_price": product["template."]["list_price"], "description": description}])
        return line_id

    def close_worksheet(self, reference):
        """Take the sale past draft, as a clerk would, so that it takes no new lines.

        A sale with lines is quoted. Tryton will not quote a sale without lines (its Quote
        button is read-only then), so an empty one is cancelled instead: also past draft,
        also refused new lines ("no longer in a draft state") and greyed out in sao.

        :returns: the sale's new state, ``"quotation"`` or ``"cancelled"``
        """
        sale = self.sale(reference, ["lines"])
        button = "quote" if sale["lines"] else "cancel"
        self.model("sale.sale", button, [sale["id"]])
        return self.sale(reference)["state"]

    def reopen_worksheet(self, reference):
        """Put the sale back to draft (an open worksheet), from quotation or cancelled."""
        self.model("sale.sale", "draft", [self.sale(reference)["id"]])


def worksheet_lines(url, reference, database=DATABASE):
    """The lines of worksheet ``reference`` (see :meth:`Client.worksheet_lines`)."""
    return Client(url, database).worksheet_lines(reference)


def close_worksheet(url, reference, database=DATABASE):
    """Close worksheet ``reference``; returns the sale's state (see
    :meth:`Client.close_worksheet`)."""
    return Client(url, database).close_worksheet(reference)


def reopen_worksheet(url, reference, database=DATABASE):
    """Reopen worksheet ``reference`` (see :meth:`Client.reopen_worksheet`)."""
    Client(url, database).reopen_worksheet(reference)


def expire_sessions(data_dir, database=DATABASE):
    """End every login on the stand-up whose database is in ``data_dir``; returns how many.

    Tryton offers no call for this (``ir.session`` has no RPC methods), and its own expiry
    is time-based (``[session] timeout``). It checks each request's session against the
    ``ir_session`` table, though, so deleting the rows expires them at once, exactly as a
    timeout would: the next request is answered with 401 and sao asks for the password.
    """
    path = os.path.join(data_dir, f"{database}.sqlite")
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as db, db:
        return db.execute("DELETE FROM ir_session").rowcount
