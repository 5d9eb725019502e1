"""An ERP login, as the instance stores it (sealed) and an integration uses it."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Credentials:
    """ERP login. ``repr`` never shows the password, so it cannot leak into a log."""

    username: str
    password: str = field(repr=False)
