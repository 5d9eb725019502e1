"""Workshop names as they may appear in file names, program names and URLs.

Workshop names are free text ("Bennys Auto", "Bilverksted Ålesund"). They are kept as
they are wherever they are shown; where they become part of a path or an identifier,
they go through one of these functions so every module derives the same name.
"""

import hashlib
import re
import unicodedata

_UNSAFE_IN_FILENAME = re.compile(r"[^\w .-]", re.UNICODE)

#: a path component may be 255 bytes (ext4, xfs, tmpfs); the longest name the instance
#: derives is ``<file_name>_create_orderline.log.5`` (23 bytes more), so 232 bytes is what
#: every name that has ever run fits in, unchanged
FILE_NAME_MAX_BYTES = 255 - len("_create_orderline.log.5")


def normal_name(workshop):
    """The one spelling of a workshop name: NFC, every run of whitespace (any Unicode
    space, NBSP included) one ASCII space, none at either end.

    Two names that look the same are the same workshop: ``"Bennys\u00a0Auto"`` and
    ``"Bennys  Auto "`` both become ``"Bennys Auto"``. Invisible characters that are not
    whitespace (zero-width space, BOM) are left as they are: the fleet refuses them.
    """
    return " ".join(unicodedata.normalize("NFC", workshop).split())


def file_name(workshop):
    """A name safe as one path component: letters (any script), digits, space, ``.-_``.

    Slashes and control characters become ``_``; a name that would be hidden or empty
    gets a prefix. ``"Bennys Auto"`` stays ``"Bennys Auto"``. A name longer than
    :data:`FILE_NAME_MAX_BYTES` in UTF-8 (100 letters of a 4-byte script) is cut there and
    ends in a hash of the whole name, so it still fits and still differs from its neighbours.
    """
    name = unicodedata.normalize("NFC", workshop).strip()
    name = _UNSAFE_IN_FILENAME.sub("_", name)
    if not name or name.startswith("."):
        name = "_" + name
    if _bytes(name) > FILE_NAME_MAX_BYTES:
        suffix = "-" + _digest(workshop)
        while _bytes(name + suffix) > FILE_NAME_MAX_BYTES:
            name = name[:-1]
        name += suffix
    return name


def _bytes(text):
    # surrogatepass: a name from a command line that was not UTF-8 is measured, not refused
    return len(text.encode("utf-8", "surrogatepass"))


def _digest(workshop):
    return hashlib.sha256(workshop.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def program_name(workshop):
    """An ASCII identifier for supervisor (``[program:x]`` allows no spaces or colons).

    Readable part plus a short hash of the exact name, so two names that fold to the
    same ASCII ("Ålesund", "Alesund") never collide.
    """
    return f"bridge-{_ascii_words(workshop) or 'workshop'}-{_digest(workshop)}"


def _ascii_words(workshop):
    """``"Bilverksted Ålesund"`` -> ``"bilverksted-alesund"`` (accents dropped, any other
    character a word break); "" for a name without an ASCII letter or digit."""
    folded = unicodedata.normalize("NFKD", workshop).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")


#: the longest slug: room for a ``-N`` suffix in a short, readable URL path part
SLUG_MAX = 60


def slug(workshop):
    """The workshop's part of its public URL path (``/w/<slug>/``): lowercase ASCII
    letters and digits, words joined by ``-``. ``"Bennys Auto"`` -> ``"bennys-auto"``,
    ``"Bilverksted Ålesund"`` -> ``"bilverksted-alesund"``; a name with no ASCII letter
    or digit at all -> ``"workshop"``. Not unique by itself: the registry adds ``-2``,
    ``-3`` to a slug taken, and keeps the one it gave (fleet/registry.py).
    """
    return _ascii_words(workshop)[:SLUG_MAX].rstrip("-") or "workshop"
