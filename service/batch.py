"""Batch intake: ``POST /create`` with ``{"orders": [...]}``, 1 to 100 orders.

Each order is checked on its own as a single ``/create`` is
(:func:`service.fields.check_order`) and decided as a single post would be, in request
order; the answer has one result per order, in request order, and the counts:

* ``placed`` -- new: stored and queued (``status`` is ``placed``);
* ``existed`` -- the uniqueid is stored with the same content: its current ``status``;
  nothing is stored or queued again;
* ``failed`` -- ``error`` is ``validation_failed`` (with the order's ``fields``, as a
  single ``/create`` answers them in a 400) or ``duplicate_uniqueid`` (the uniqueid is
  stored with other content; a single ``/create`` answers it 409).

An order that repeats the uniqueid of an earlier order of the same batch is a repost of
it: ``existed`` with the same content, ``duplicate_uniqueid`` with other content. So a
batch is answered exactly as its orders posted one by one would be; only the storing is
different: every new order of a batch is stored in **one** SQLite transaction
(:meth:`~service.instance.Instance.submit_many`). A 200 or 207 means every ``placed`` order
is on disk; a write that fails (disk full) stores none of them and is answered 503. Then
each is queued as a single order is; a crash in between is covered by the ``queued``
flag (``reconcile()`` at start, the worker's sweep while running).

Status: **200** when no order failed, **207 Multi-Status** when at least one did (also
when all did). Not 422: the request was processed and its placed orders are stored and
on their way -- a 4xx would tell a client that nothing happened. A client must read
``counts.failed`` (or look for 207) to see failures. The batch as a whole is refused
with 400 and nothing is stored when ``orders`` is not a list of 1 to
:data:`MAX_BATCH_ORDERS` JSON objects, and when the body is both a batch and an order:
``orders`` beside any field of an order (``workshop``, ``uniqueid``...; present at all,
also as null). Which one was meant cannot be known, and taking either would drop the
other without a word (an outside probe found the single order dropped); a body over 64 KB is refused with 413 as always
(100 orders of the usual size are about 20 KB). The documents' models of a batch are in
:mod:`service.models`.
"""

from service import fields

#: most orders in one batch (seed 000's limit); more are refused whole with 400
MAX_BATCH_ORDERS = 100

class BatchRefused(ValueError):
    """The batch as a whole cannot be taken (answered 400; nothing stored).

    :param field: what is wrong, e.g. ``orders`` or ``orders[3]``
    :param message: the answer's message: what kind of refusal
    """

    def __init__(self, field, reason, message="the batch cannot be taken"):
        super().__init__(reason)
        self.field = field
        self.message = message


def check_orders(body):
    """:returns: the body's list of orders
    :raises BatchRefused: not a list of 1 to :data:`MAX_BATCH_ORDERS` objects, or a
        body that is an order too"""
    mixed = [name for name in fields.ORDER_FIELDS if name in body]
    if mixed:
        raise BatchRefused(
            "orders", f"a body is one order or a batch, not both: this one has 'orders' and "
            f"the order field(s) {', '.join(mixed)}; send one order without 'orders', or "
            "every order inside 'orders'", "the body is both an order and a batch")
    orders = body["orders"]
    if not isinstance(orders, list):
        raise BatchRefused("orders", "must be a list of orders")
    if not 1 <= len(orders) <= MAX_BATCH_ORDERS:
        raise BatchRefused("orders", f"must hold 1 to {MAX_BATCH_ORDERS} orders, not "
                                     f"{len(orders)}: send more in several requests")
    for index, order in enumerate(orders):
        if not isinstance(order, dict):
            raise BatchRefused(f"orders[{index}]", "must be a JSON object (an order)")
    return orders


def intake(instance, orders):
    """Check, store and queue a batch.

    :param instance: the :class:`~service.instance.Instance`
    :param orders: what :func:`check_orders` returned
    :returns: ``(answer, status)``: a :class:`BatchAnswer` as a dict, and 200 or 207
    :raises StorageUnavailable: as :meth:`~service.instance.Instance.submit_many`
    """
    rules = fields.order_rules(instance.settings)
    results = [None] * len(orders)
    valid = []  # (index, normalised order)
    for index, body in enumerate(orders):
        order, problems = fields.check_order(body, *rules)
        if problems:
            results[index] = _failed(index, _uniqueid(body), "validation_failed",
                                     "the order has missing or invalid fields", problems)
        else:
            valid.append((index, order))
    found = instance.submit_many([order for _, order in valid]) if valid else []
    for (index, order), stored in zip(valid, found):
        uniqueid = order["uniqueid"]
        if stored is None:
            results[index] = _failed(index, uniqueid, "duplicate_uniqueid",
                                     f"uniqueid {uniqueid!r} was already used for a "
                                     "different order")
        else:
            record, created = stored
            results[index] = {"index": index, "uniqueid": uniqueid,
                              "result": "placed" if created else "existed",
                              "status": record["status"]}
    counts = {kind: sum(r["result"] == kind for r in results)
              for kind in ("placed", "existed", "failed")}
    return {"counts": counts, "results": results}, 207 if counts["failed"] else 200


def _failed(index, uniqueid, error, message, problems=None):
    result = {"index": index, "uniqueid": uniqueid, "result": "failed", "error": error,
              "message": message}
    if problems:
        result["fields"] = problems
    return result


def _uniqueid(body):
    """:returns: the order's uniqueid when it is a valid one, else None"""
    try:
        return fields.uniqueid(body.get("uniqueid"))
    except ValueError:
        return None
