"""Workshop names as they may appear in file names, program names and URLs.

Workshop names are free text ("Bennys Auto", "Bilverksted Ålesund"). They are kept as
they are wherever they are shown; where they become part of a path or an identifier,
they go through one of these functions so every module derives the same name.
"""

import hashlib
import re
import unicodedata

_UNSAFE_IN_FILENAME = re.compile(r"[^\w .-]", re.UNICODE)


def file_name(workshop):
    """A name safe as one path component: letters (any script), digits, space, ``.-_``.

    Slashes and control characters become ``_``; a name that would be hidden or empty
    gets a prefix. ``"Bennys Auto"`` stays ``"Bennys Auto"``.
    """
    name = unicodedata.normalize("NFC", workshop).strip()
    name = _UNSAFE_IN_FILENAME.sub("_", name)
    if not name or name.startswith("."):
        name = "_" + name
    return name


def program_name(workshop):
    """An ASCII identifier for supervisor (``[program:x]`` allows no spaces or colons).

    Readable part plus a short hash of the exact name, so two names that fold to the
    same ASCII ("Ålesund", "Alesund") never collide.
    """
    folded = unicodedata.normalize("NFKD", workshop).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", folded).strip("-").lower() or "workshop"
    digest = hashlib.sha256(workshop.encode("utf-8")).hexdigest()[:8]
    return f"bridge-{slug}-{digest}"
