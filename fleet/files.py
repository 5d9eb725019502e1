"""Files the fleet writes for its programs: private to the fleet's user."""

import os
from pathlib import Path


def write_private(path, text, mode=0o600):
    """Write ``text`` to ``path`` with ``mode`` (0600: only the fleet's user reads it),
    through a temporary file beside it: a reader (supervisord, an nginx reload) sees
    the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
