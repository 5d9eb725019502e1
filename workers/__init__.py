"""The worker: the thread that takes orders off the queue and writes them into the ERP
(:mod:`workers.worker`, with :mod:`workers.taking` and :mod:`workers.working`). It
lives beside the instance (``service/``), below it: the instance owns intake and wires
the worker to the records, the queue and the integration; the worker owns batching,
retries and the look before giving up. This file imports nothing (see
integrations/__init__.py on why).
"""
