"""A stand-in workshop ERP: login, worksheet search, worksheets with order lines.

Server-rendered HTML over its own SQLite file, driven by the bridge through a browser
exactly like a vendor ERP would be. ``/_sim/...`` is a JSON side door for tests only.
Run it with ``python -m erp_sim --port PORT``; see ``erp_sim/README.md``. In code:
``erp_sim.app.create_app(erp_sim.config.SimConfig(...))``.

This file imports nothing: its modules import one another (``from erp_sim import db``),
and a package that imported them back would make every such import a circle.
"""
