"""``create_client.py --file``: post a file of orders in batches and follow them all.

Batches go to ``POST /create`` as ``{"orders": [...]}`` (at most :data:`BATCH` each, the
instance's limit). Following many orders costs few requests: one ``GET /queue`` per round
lists every order still waiting or in progress, and only an order that has left it is
asked for by ``/get_order_status`` (once, to read how it ended). A 429 (rate limit) or
503 (disk full) is waited out as its ``Retry-After`` says and the request repeated; that
is safe, because the instance is idempotent on uniqueid.
"""

import json
import sys
import time

import requests

#: most orders in one request (the instance refuses more)
BATCH = 100
#: statuses an order ends in
FINAL = ("created", "error", "resolved")  # resolved: handled by hand by an operator
#: answers that say "later", with Retry-After
_WAIT = (429, 503)


class Refused(Exception):
    """A request the instance would not take (the message says why)."""


def read_orders(path):
    """:returns: the orders of a JSON file: a list, or ``{"orders": [...]}``
    :raises Refused: the file cannot be read or holds neither"""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise Refused(f"cannot read {path}: {exc}") from None
    if isinstance(data, dict) and "orders" in data:
        data = data["orders"]
    if not isinstance(data, list) or not data:
        raise Refused(f"{path} must hold a non-empty JSON list of orders or {{\"orders\": [...]}}")
    return data


def call(session, method, url, deadline, **kwargs):
    """One request, repeated after each 429/503 (waiting ``Retry-After``) until ``deadline``.

    :returns: the response (also a 429/503 when the deadline comes first)
    """
    while True:
        response = session.request(method, url, timeout=30, **kwargs)
        if response.status_code not in _WAIT or time.monotonic() >= deadline:
            return response
        try:
            wait = float(response.headers.get("Retry-After", "1"))
        except ValueError:
            wait = 1.0
        time.sleep(max(0.1, min(wait, deadline - time.monotonic())))


def post_file(session, args, out=sys.stdout):
    """Post the orders of ``args.file`` and follow them. :returns: the exit code"""
    base = args.url.rstrip("/")
    deadline = time.monotonic() + args.timeout
    try:
        orders = read_orders(args.file)
        status = {}  # uniqueid -> last status seen
        refused = 0
        for start in range(0, len(orders), BATCH):
            chunk = [_with_login(order, args) for order in orders[start:start + BATCH]]
            answer = post_batch(session, base, chunk, deadline)
            counts = answer["counts"]
            print(f"orders {start + 1}-{start + len(chunk)}: {counts['placed']} placed, "
                  f"{counts['existed']} existed, {counts['failed']} failed", file=out, flush=True)
            for result in answer["results"]:
                if result["result"] == "failed":
                    refused += 1
                    print(f"  order #{start + result['index'] + 1} ({result['uniqueid']}): "
                          f"refused, {_why(result)}", file=out, flush=True)
                else:
                    status[result["uniqueid"]] = result["status"]
    except Refused as exc:
        print(f"create_client.py: error: {exc}", file=sys.stderr)
        return 2
    except requests.RequestException as exc:
        print(f"create_client.py: error: cannot reach {base}: {exc}", file=sys.stderr)
        return 2
    follow(session, base, status, deadline, args.interval, out)
    return summary(status, refused, args.timeout, out)


def post_batch(session, base, chunk, deadline):
    """:returns: the batch answer (200 or 207) :raises Refused: any other answer"""
    response = call(session, "POST", f"{base}/create", deadline, json={"orders": chunk})
    if response.status_code not in (200, 207):
        raise Refused(f"refused ({response.status_code}): {response.text.strip()}")
    return response.json()


def follow(session, base, status, deadline, interval, out):
    """Poll until every order in ``status`` is final or the deadline passes; print each
    change. ``status`` (uniqueid -> status) is updated in place."""
    while time.monotonic() < deadline:
        pending = [uid for uid, seen in status.items() if seen not in FINAL]
        if not pending:
            return
        try:
            active = _active(session, base, deadline)
            for uniqueid in pending:
                record = active.get(uniqueid)
                if record is None:  # left the queue: read how it ended
                    response = call(session, "GET", f"{base}/get_order_status", deadline,
                                    params={"uniqueid": uniqueid})
                    if response.status_code != 200:
                        continue
                    record = response.json()
                _note(status, record, out)
        except (requests.RequestException, ValueError) as exc:
            print(f"  (status not readable: {exc}; retrying)", file=sys.stderr)
        time.sleep(interval)


def summary(status, refused, timeout, out):
    """Print the counts. :returns: 0 all created, 2 any refused, else 1"""
    ended = {kind: sum(seen == kind for seen in status.values()) for kind in FINAL}
    waiting = len(status) - sum(ended.values())
    print(f"{len(status) + refused} orders: {ended['created']} created, {ended['error']} error, "
          f"{ended['resolved']} resolved, {refused} refused, {waiting} still waiting"
          + (f" after {timeout:.0f} s" if waiting else ""), file=out, flush=True)
    if refused:
        return 2
    return 0 if ended["created"] == len(status) else 1


def _active(session, base, deadline):
    response = call(session, "GET", f"{base}/queue", deadline)
    response.raise_for_status()
    return {task["uniqueid"]: task for task in response.json()["tasks"]}


def _note(status, record, out):
    uniqueid, now = record["uniqueid"], record["status"]
    if status.get(uniqueid) == now:
        return
    status[uniqueid] = now
    line = f"order {uniqueid}: {now}"
    if now == "error":
        line += f" {record.get('reason_code')}: {record.get('reason_text')}"
    print(line, file=out, flush=True)


def _why(result):
    if result.get("fields"):
        return f"{result['error']}: " + "; ".join(f"{name} {reason}"
                                                  for name, reason in result["fields"].items())
    return f"{result['error']}: {result.get('message', '')}"


def _with_login(order, args):
    """The order, with ``--username`` (and the password) when it names no login itself."""
    if isinstance(order, dict) and args.username and "username" not in order:
        return {**order, "username": args.username, "password": args.password or ""}
    return order
