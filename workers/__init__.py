"""The worker: the thread that takes orders off the queue and writes them into the ERP
(see :mod:`workers.worker`). It lives beside the instance (``bridge/``), not in it:
the instance owns intake, records and queue; the worker owns batching and retries."""

from workers.worker import Worker

__all__ = ["Worker"]
