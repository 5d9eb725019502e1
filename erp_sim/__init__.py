"""A stand-in workshop ERP: login, worksheet search, worksheets with order lines.

Server-rendered HTML over its own SQLite file, driven by the bridge through a browser
exactly like a vendor ERP would be. ``/_sim/...`` is a JSON side door for tests only.
Run it with ``python -m erp_sim --port PORT``; see ``erp_sim/README.md``.
"""

from erp_sim.app import create_app
from erp_sim.config import SimConfig

__all__ = ["create_app", "SimConfig"]
