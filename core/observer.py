"""What the running parts of an instance report while they work, as calls.

The worker reports visits and created orders, an integration the browsers it started
(through the observer the worker attaches to it), the webhook thread its deliveries.
This base class drops everything (a worker built without metrics, e.g. in unit tests);
the instance's metrics (``service/metrics.py``) count them. It lives here, below all of
them, so that none has to import the one that counts.
"""


class Observer:
    """Every report, as a method that does nothing here."""

    def order_created(self, created_at):
        """An order reached ``created``.

        :param created_at: its record's ``created_at`` (ISO 8601, as the records write it)
        """

    def visit(self, seconds, lines):
        """One visit to one worksheet ended, with ``lines`` orders in it."""

    def browser_started(self):
        """The integration started a browser (a claimed, parked one is not counted)."""

    def webhook(self, result):
        """One POST to the webhook: ``delivered``, ``failed`` or ``gone``
        (``service.metrics.DELIVERED``, ...)."""
