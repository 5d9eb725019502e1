"""Settings of one stand-in ERP, handed to :func:`erp_sim.app.create_app`.

Every knob lives here so that adding one means a field here, a flag in ``__main__``
and the code that reads it -- nothing else. The chaos knobs (latency, error rate,
re-rendering, slow saves, locks) are all off by default; see ``erp_sim/chaos.py``.
"""

import secrets
from dataclasses import dataclass, field

FLAVORS = ("classic", "spa")
#: the screens' revisions (erp_sim/revisions.py)
REVISIONS = (1, 2)


@dataclass(frozen=True)
class SimConfig:
    """One ERP instance's settings."""

    #: path of the SQLite file; created and seeded on first start
    db_path: str
    #: "classic" (server-rendered pages) or "spa" (a JavaScript app over JSON calls)
    flavor: str = "classic"
    #: seconds a login stays valid, counted from the login (absolute, not idle time)
    session_ttl: float = 1800.0
    #: seconds the ERP "thinks" before it stores a new line, like a slow real ERP
    save_delay: float = 0.3
    #: extra users besides admin/admin, as ``(username, password)`` pairs
    users: tuple = ()
    #: chaos: ``(min, max)`` seconds added to every response, or ``None``
    latency: tuple = None
    #: chaos: share of requests (0-1) answered with an HTTP 500 or 502 error
    error_rate: float = 0.0
    #: chaos: the page replaces its own content shortly after it loads
    rerender: bool = False
    #: chaos: seconds between storing a line and confirming it
    slow_save: float = 0.0
    #: chaos: share of worksheet opens and saves (0-1) that find it locked by another user
    lock_rate: float = 0.0
    #: the screens' revision at start (erp_sim/revisions.py): 1 as always, 2 after a
    #: vendor update that moved and renamed fields, buttons and columns
    ui_revision: int = 1
    #: seed of the chaos random numbers; ``None`` for a different run each time
    seed: int = None
    #: signs the session cookie; random per process, so a restart logs everyone out
    secret_key: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)

    def __post_init__(self):
        if self.flavor not in FLAVORS:
            raise ValueError(f"flavor must be one of {', '.join(FLAVORS)}")
        if self.session_ttl <= 0 or self.save_delay < 0 or self.slow_save < 0:
            raise ValueError("session_ttl must be > 0, save_delay and slow_save >= 0")
        if self.ui_revision not in REVISIONS:
            raise ValueError(f"ui_revision must be one of {', '.join(map(str, REVISIONS))}")
        for name in ("error_rate", "lock_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.latency is not None and not 0 <= self.latency[0] <= self.latency[1]:
            raise ValueError("latency must be MIN-MAX with 0 <= MIN <= MAX")
