"""Where failure artifacts go and how they are found again, without loading Selenium.

A failed browser step leaves a screenshot and the page's HTML (written by
:func:`integrations.browser.snapshot.save_failure_artifacts`) as
``<artifact_dir>/<stamp>_<uniqueid>_<reason_code>.png`` and ``.html``. ``<stamp>`` is
the UTC time (``20261202T143000.123456Z``), so names sort by time; ``<uniqueid>`` and
``<reason_code>`` are made file-name safe by :func:`safe_name`. The instance serves them
to operators (``GET /orders/<uniqueid>/artifacts``) with :func:`find_artifacts`, which
only ever returns names read from the folder itself: a name in a request is looked up
among them, never joined to a path.

Two uniqueids that differ only in characters :func:`safe_name` replaces (``a/b`` and
``a_b``) share their artifacts' names (both are the same workshop's orders); otherwise
the reason codes of the order's history tell its names from another order's.
"""

import os
import re
from datetime import datetime, timezone

#: the stamp at the start of every artifact's name
_NAME = re.compile(r"(?P<stamp>[0-9]{8}T[0-9]{6}\.[0-9]{6}Z)_(?P<rest>[A-Za-z0-9._-]+)"
                   r"\.(?P<ext>png|html)")
_REASON = re.compile(r"[A-Z][A-Z0-9_]*")
KINDS = {"png": "screenshot", "html": "page"}


def safe_name(text, limit=64):
    """``text`` as a part of a file name: ASCII letters, digits, ``._-``, at most
    ``limit`` characters."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(text))[:limit] or "none"


def artifact_stem(artifact_dir, uniqueid, reason_code, when=None):
    """The path, without extension, of a new failure's artifacts."""
    when = when or datetime.now(timezone.utc)
    stamp = when.strftime("%Y%m%dT%H%M%S.%fZ")
    return os.path.join(artifact_dir, f"{stamp}_{safe_name(uniqueid)}_{safe_name(reason_code)}")


def find_artifacts(artifact_dir, uniqueid, reasons=None):
    """The artifacts of one order, oldest first.

    :param reasons: the reason codes the order's history holds; a name whose reason is
        not among them belongs to another order (``a/1`` and ``a/1_X`` both give names
        starting ``a_1_``)

    :returns: ``[{"name", "kind", "reason_code", "at", "bytes"}]``; ``kind`` is
        ``screenshot`` or ``page``; ``at`` the stamp as ISO 8601 UTC
    """
    prefix = safe_name(uniqueid) + "_"
    try:
        names = sorted(os.listdir(artifact_dir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for name in names:
        match = _NAME.fullmatch(name)
        if not match or not match["rest"].startswith(prefix):
            continue
        reason = match["rest"][len(prefix):]
        if not _REASON.fullmatch(reason) or (reasons is not None and reason not in reasons):
            continue  # another order whose uniqueid starts with this one's plus "_"
        try:
            size = os.stat(os.path.join(artifact_dir, name)).st_size
        except OSError:
            continue  # removed meanwhile
        at = datetime.strptime(match["stamp"], "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=timezone.utc)
        found.append({"name": name, "kind": KINDS[match["ext"]], "reason_code": reason,
                      "at": at.isoformat(timespec="milliseconds"), "bytes": size})
    return found
