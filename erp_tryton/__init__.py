"""A real workshop ERP for tests and demos: Tryton 8.0 (trytond + the sao web client), seeded.

Test equipment like :mod:`erp_sim`: the product (``service``, ``integrations``, ``fleet``)
never imports it. Start it with ``python -m erp_tryton --port PORT --data DIR``; read what
Tryton holds with :mod:`erp_tryton.rpc`. This package imports only the standard library;
trytond runs in a virtualenv of its own (:mod:`erp_tryton.install`).
"""
