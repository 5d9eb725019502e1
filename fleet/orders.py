"""Failed orders, seen and acted on from the management side.

The management API's window on each instance's own endpoints (``GET /orders``,
``PUT /retry``, ``PUT /resolve``, ``GET /orders/<uniqueid>/artifacts``): it finds the
instance in the registry, asks it with the instance's token, and passes its answer on.
An instance's 4xx (unknown order, not in error) is passed on with its status; no answer
is 502. The CSV export pages through ``GET /orders`` and writes one row per order.

Query parameters are checked here by the same rules the instance applies
(:mod:`service.params`), so a bad one is a 400 naming it even when the instance is down.
"""

import csv
import io
import re
from urllib.parse import quote

from service import fields, params
from orders.status import OrderStatus
from service.views.failed import MAX_LIMIT, NOTE_MAX
from fleet.errors import InstanceRefused, InstanceUnreachable, IntegrationInactive, InvalidQuery

STATUSES = tuple(s.value for s in OrderStatus)
#: the instance's largest page, used by the export
PAGE = MAX_LIMIT
#: the most rows one export holds; a longer period is exported in parts
MAX_EXPORT_ROWS = 100_000
#: the export's columns, in order
CSV_COLUMNS = ("uniqueid", "status", "worksheet", "product_nr", "product_amount",
               "reason_code", "reason_text", "attempts", "created_at", "updated_at")
#: a cell starting with one of these is a formula to a spreadsheet: written with a ' first
_FORMULA = "=+-@\t\r"
#: where a cell may start in a spreadsheet's reading of a field: at the field's start, and
#: after any ";" or "," (a spreadsheet that splits on either, quotes or not: ";" is the
#: default where "," is the decimal separator, Norway included) or a line break (a
#: reader that does not honour quotes); spaces a reader may trim are skipped
_CELL_START = re.compile(r"(^|[;,\r\n])( *)(?=[" + re.escape(_FORMULA) + "])")


def checked_query():
    """The order-listing parameters of this request, checked.

    :returns: the query to pass on (``status``, ``since``, ``until``, ``after``, ``limit``;
        absent ones left out)
    :raises InvalidQuery: naming the parameter and its rule
    """
    try:
        query = {"status": ",".join(params.choices("status", STATUSES)) or None,
                 "since": params.moment("since"), "until": params.moment("until"),
                 "after": params.whole("after", 0, 2 ** 63 - 1),
                 "limit": params.whole("limit", 1, PAGE)}
    except params.BadParam as exc:
        raise InvalidQuery(f"{exc.name} {exc}") from None
    return {k: v for k, v in query.items() if v is not None}


def checked_note():
    """:returns: the ``note`` of this request, or None
    :raises InvalidQuery:"""
    try:
        return params.text("note", NOTE_MAX)
    except params.BadParam as exc:
        raise InvalidQuery(f"{exc.name} {exc}") from None


def checked_query_uniqueid():
    """:returns: the ``uniqueid`` query parameter of this request, given once
    :raises InvalidQuery: absent"""
    try:
        return params.one("uniqueid", required=True)
    except params.BadParam as exc:
        raise InvalidQuery(f"{exc.name} {exc}") from None


def checked_uniqueid(uniqueid):
    try:
        return fields.uniqueid(uniqueid)
    except ValueError as exc:
        raise InvalidQuery(f"uniqueid {exc}") from None


class FleetOrders:
    """The orders of the fleet's instances.

    :param fleet: the :class:`~fleet.control.Fleet`
    """

    def __init__(self, fleet):
        self.fleet = fleet

    def _ask(self, workshop, method, path, query=None):
        """:returns: ``(integration, response)`` of a 2xx answer
        :raises InstanceRefused: the instance answered 4xx (its status and reason)
        :raises InstanceUnreachable: no answer, or a 5xx, or its token was refused
        """
        integration = self.fleet.get(workshop)
        if not integration.active:
            raise IntegrationInactive(
                f"workshop {integration.workshop!r} is inactive; activate it first")
        token = self.fleet.registry.api_token(integration)
        r = self.fleet.instances.request(integration.port, token, method, path, query)
        if r.status_code < 300:
            return integration, r
        if r.status_code in (400, 404, 409):
            try:
                body = r.json()
                code, message = str(body["error"]).upper(), str(body["message"])
            except (ValueError, KeyError, TypeError):
                code, message = "INSTANCE_REFUSED", f"the instance answered {r.status_code}"
            raise InstanceRefused(r.status_code, code, message)
        raise InstanceUnreachable(
            f"the instance on port {integration.port} answered {r.status_code}")

    def page(self, workshop, query):
        """One page of the workshop's orders (see ``GET /orders`` of the instance)."""
        integration, r = self._ask(workshop, "GET", "orders", query)
        return integration, r.json()

    def act(self, workshop, uniqueid, action, note=None):
        """``retry`` or ``resolve`` one order. :returns: ``(integration, record)``"""
        assert action in ("retry", "resolve")
        query = {"uniqueid": uniqueid, **({"note": note} if note else {})}
        integration, r = self._ask(workshop, "PUT", action, query)
        return integration, r.json()

    def artifacts(self, workshop, uniqueid):
        integration, r = self._ask(workshop, "GET", f"orders/{_segment(uniqueid)}/artifacts")
        return integration, r.json()

    def artifact(self, workshop, uniqueid, name):
        """:returns: the instance's response (content and its headers)"""
        _, r = self._ask(workshop, "GET", f"orders/{_segment(uniqueid)}/artifacts/"
                                          f"{_segment(name)}")
        return r

    def export_csv(self, workshop, query):
        """The workshop's orders matching ``query`` as CSV text, a row per order.

        :returns: ``(integration, text, rows)``
        :raises InvalidQuery: more than :data:`MAX_EXPORT_ROWS` orders match
        """
        query = {k: v for k, v in query.items() if k not in ("after", "limit")}
        out = io.StringIO()
        # every field quoted: a reader that honours quotes never splits one (the ';' and
        # ',' in it included); _cell defuses what a reader that does not could make a formula
        writer = csv.writer(out, quoting=csv.QUOTE_ALL)
        writer.writerow(CSV_COLUMNS)
        rows, after, integration = 0, 0, None
        while True:
            integration, page = self.page(workshop, {**query, "after": after, "limit": PAGE})
            for order in page["orders"]:
                writer.writerow([_cell(order.get(column)) for column in CSV_COLUMNS])
                rows += 1
            if rows > MAX_EXPORT_ROWS:
                raise InvalidQuery(f"more than {MAX_EXPORT_ROWS} orders in this period; "
                                   "export a shorter one (since, until)")
            if not page["more"]:
                return integration, out.getvalue(), rows
            after = page["next"]


def _segment(text):
    """``text`` as one path segment of a URL to the instance: percent-encoded, and "."
    and ".." with their dots encoded, which the HTTP client would otherwise resolve as
    "this" and "the parent" segment (GET .../orders/%2E%2E/artifacts answered 404)."""
    return quote(text, safe="") if text not in (".", "..") else "%2E" * len(text)


def _cell(value):
    """A value as a CSV field that no spreadsheet runs as a formula.

    Every place a cell could start (:data:`_CELL_START`) that is followed by a formula
    character gets a ``'`` in front of it, the OWASP defence a spreadsheet shows as text:
    ``y;=cmd`` is written ``y;'=cmd``. The export is for people and their spreadsheets;
    a uniqueid that carries such a ``'`` is looked up without it.
    """
    if value is None:
        return ""
    return _CELL_START.sub(r"\1\2'", str(value))
