"""The orders one workshop holds, on disk: what each order is and was (:mod:`.records`,
its status and the transitions allowed: :mod:`.status`), the queue the worker takes
them from (:mod:`.queue`, persist-queue), and the log of their status changes that the
feed and the webhook deliver (:mod:`.events`).

Below the worker and the instance's HTTP service, above :mod:`core` only: the worker
(``workers/``) and the service (``service/``) both use it, and it imports neither. This
file imports nothing (see integrations/__init__.py on why).
"""
