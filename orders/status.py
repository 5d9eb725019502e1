"""Order status and the only transitions allowed between them.

Imports nothing from the bridge, so any module may use it.
"""

import enum


class OrderStatus(str, enum.Enum):
    PLACED = "placed"  # durably stored and queued; waiting for the worker
    PROCESSING = "processing"  # the worker is writing it into the ERP (or backing off)
    CREATED = "created"  # the line is on the worksheet (final)
    ERROR = "error"  # given up, with a reason code (final until an operator acts)
    RESOLVED = "resolved"  # an error an operator handled by hand (PUT /resolve; final)


TRANSITIONS = {
    # PLACED -> PROCESSING: the worker takes the order
    # PLACED -> ERROR: /clear_queue removed it (reason CLEARED)
    OrderStatus.PLACED: {OrderStatus.PROCESSING, OrderStatus.ERROR},
    # PROCESSING -> CREATED: the line is on the worksheet (added now or found there)
    # PROCESSING -> ERROR: permanent error, or transient errors past the attempt limit
    # PROCESSING -> PLACED: released unfinished (worker stopped, or found after a crash)
    OrderStatus.PROCESSING: {OrderStatus.CREATED, OrderStatus.ERROR, OrderStatus.PLACED},
    OrderStatus.CREATED: set(),
    # ERROR -> PLACED: an operator retries it (PUT /retry) after fixing the cause
    # ERROR -> RESOLVED: an operator handled it by hand (PUT /resolve)
    OrderStatus.ERROR: {OrderStatus.PLACED, OrderStatus.RESOLVED},
    OrderStatus.RESOLVED: set(),
}

#: statuses of orders that are still in the queue
ACTIVE = (OrderStatus.PLACED, OrderStatus.PROCESSING)
#: statuses no worker or operator moves an order out of
FINAL = (OrderStatus.CREATED, OrderStatus.RESOLVED)


def can_move(current, new):
    """:returns: whether ``current -> new`` is an allowed transition"""
    return OrderStatus(new) in TRANSITIONS[OrderStatus(current)]
