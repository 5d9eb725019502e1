"""Post one order (or a file of orders) to an instance and follow it until it ends.

    python create_client.py --url http://127.0.0.1:5001 --token $API_TOKEN \\
        --workshop "Bennys Auto" --worksheet 558 --product-nr 10 --amount 5 [--uniqueid ID]
    python create_client.py --url http://127.0.0.1:5001 --file orders.json
    python create_client.py --url https://bridge.example:8443/w/bennys-auto --cacert cert.pem ...

``--url`` is an instance's own address or its public one behind the fleet's HTTPS front
door (``https://HOST:PUBLIC_PORT/w/<slug>``); ``--cacert`` names the PEM certificate to
trust for it (the front door's self-signed one), instead of the system's CAs.

Prints each status change as it is seen. Exit code: 0 when the order is ``created``,
1 when it ends in ``error`` (or the wait runs out), 2 when the request is refused.

``--file`` takes a JSON list of orders, or ``{"orders": [...]}``, posts them in batches
of 100 (``POST /create`` with ``{"orders": [...]}``), prints what became of each order
that failed, follows every accepted one to a final status and ends with a summary.
Exit code: 0 when every order is ``created``, 2 when any was refused, else 1. A 429 or
503 answer is waited out (``Retry-After``) and the request repeated: reposting is safe,
orders are idempotent on their uniqueid.
The ERP password is read from ``--password`` or, better, the ``ERP_PASSWORD``
environment variable, so it does not show in the process list.
"""

import argparse
import json
import os
import sys
import time
import uuid

import requests

#: final statuses and the exit code each gives; "resolved": an operator handled a failed
#: order by hand (PUT /resolve), so the bridge did not write its line
FINAL = {"created": 0, "error": 1, "resolved": 1}


class _Session(requests.Session):
    """A session whose ``verify`` (``--cacert``) is used: plain requests lets the
    environment's REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE win over it."""

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and self.verify is not True:
            settings["verify"] = self.verify
        return settings


def parse(argv):
    p = argparse.ArgumentParser(prog="create_client.py", description=__doc__.splitlines()[0])
    p.add_argument("--url", default=os.environ.get("BRIDGE_URL", "http://127.0.0.1:5001"),
                   help="the instance's base URL (env BRIDGE_URL)")
    p.add_argument("--cacert", default=None, metavar="FILE",
                   help="PEM certificate(s) to verify the server with (a self-signed front door)")
    p.add_argument("--token", default=os.environ.get("API_TOKEN"),
                   help="the instance's API token (env API_TOKEN)")
    p.add_argument("--file", default=None,
                   help="a JSON file of orders (a list, or {\"orders\": [...]}) instead of one order")
    p.add_argument("--workshop")
    p.add_argument("--worksheet")
    p.add_argument("--product-nr")
    p.add_argument("--amount", help="litres, e.g. 5 or 2.5")
    p.add_argument("--uniqueid", default=None, help="default: a new random id")
    p.add_argument("--username", default=os.environ.get("ERP_USERNAME"))
    p.add_argument("--password", default=os.environ.get("ERP_PASSWORD"))
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to follow the order")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    args = p.parse_args(argv)
    one = (args.workshop, args.worksheet, args.product_nr, args.amount)
    if args.file is None and None in one:
        p.error("give --workshop, --worksheet, --product-nr and --amount, or --file")
    if args.file is not None and any(value is not None for value in one):
        p.error("--file takes the orders from the file: leave out --workshop, --worksheet, "
                "--product-nr and --amount")
    return args


def main(argv=None, out=sys.stdout):
    args = parse(sys.argv[1:] if argv is None else argv)
    if not args.token:
        print("create_client.py: error: --token or API_TOKEN is required", file=sys.stderr)
        return 2
    if args.cacert is not None and not os.path.isfile(args.cacert):
        print(f"create_client.py: error: --cacert {args.cacert}: no such file", file=sys.stderr)
        return 2
    session = _Session()
    session.verify = args.cacert or True
    session.headers["Authorization"] = f"Bearer {args.token}"
    if args.file is not None:
        return post_file(session, args, out)
    order = {"workshop": args.workshop, "worksheet": args.worksheet,
             "product_nr": args.product_nr, "product_amount": args.amount,
             "uniqueid": args.uniqueid or f"client-{uuid.uuid4().hex[:12]}"}
    if args.username:
        order["username"] = args.username
        order["password"] = args.password or ""
    base = args.url.rstrip("/")
    try:
        answer = session.post(f"{base}/create", json=order, timeout=30)
    except requests.RequestException as exc:
        print(f"create_client.py: error: cannot reach {base}: {exc}", file=sys.stderr)
        return 2
    if answer.status_code != 200:
        print(f"refused ({answer.status_code}): {answer.text.strip()}", file=sys.stderr)
        return 2
    uniqueid = answer.json()["uniqueid"]
    print(f"order {uniqueid}: {answer.json()['status']}", file=out, flush=True)
    seen = answer.json()["status"]
    seen_line = None
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        time.sleep(args.interval)
        try:
            record = session.get(f"{base}/get_order_status", params={"uniqueid": uniqueid},
                                 timeout=30).json()
        except (requests.RequestException, ValueError) as exc:
            print(f"  (status not readable: {exc}; retrying)", file=sys.stderr)
            continue
        note = f" (attempt {record['attempts']}: {record['reason_code']})" \
            if record.get("reason_code") and record["status"] == "processing" else ""
        line = f"order {uniqueid}: {record['status']}{note}"
        if record["status"] in ("error", "resolved"):
            line += f" {record['reason_code']}: {record['reason_text']}"
        if line != seen_line:
            print(line, file=out, flush=True)
            seen_line, seen = line, record["status"]
        if record["status"] in FINAL:
            return FINAL[record["status"]]
    print(f"order {uniqueid}: still {seen} after {args.timeout:.0f} s", file=out)
    return 1


# -- --file: a file of orders, posted in batches and followed ---------------------------
# Batches go to ``POST /create`` as ``{"orders": [...]}`` (at most :data:`BATCH` each, the
# instance's limit). Following many orders costs few requests: one ``GET /queue`` per
# round lists every order still waiting or in progress, and only an order that has left
# it is asked for by ``/get_order_status`` (once, to read how it ended). A 429 (rate
# limit) or 503 (disk full) is waited out as its ``Retry-After`` says and the request
# repeated; that is safe, because the instance is idempotent on uniqueid.

#: most orders in one request (the instance refuses more)
BATCH = 100
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


if __name__ == "__main__":
    sys.exit(main())
