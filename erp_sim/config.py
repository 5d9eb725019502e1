"""Settings of one stand-in ERP, handed to :func:`erp_sim.app.create_app`.

Every knob lives here so that adding one (latency, error rate, an SPA flavour) means a
field here, a flag in ``__main__`` and the code that reads it -- nothing else.
"""

import secrets
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SimConfig:
    """One ERP instance's settings."""

    #: path of the SQLite file; created and seeded on first start
    db_path: str
    #: seconds a login stays valid, counted from the login (absolute, not idle time)
    session_ttl: float = 1800.0
    #: seconds the ERP "thinks" before it stores a new line, like a slow real ERP
    save_delay: float = 0.3
    #: signs the session cookie; random per process, so a restart logs everyone out
    secret_key: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
