"""Where sao 7.0 (Tryton 7.0 LTS) and sao 8.0 differ for the integration: all of it, here.

The integration serves both series with the same screens (:mod:`.pages`); what differs
is written below, one entry per difference, each with what differs. The series is read
from the page -- sao says its version in ``Sao.__version__`` -- never configured, so a
workshop's Tryton may be either. A version the integration does not know is
:class:`UnexpectedPage`: its screens may differ in ways nothing here expects, and a line
written on a screen that is not understood may land in the wrong place.
"""

from core.errors import ScreenChanged
from integrations.tryton.messages import DIALOGS

_DIALOGS = {kind: f".modal.in.{kind}" for kind in DIALOGS}

#: per series (``major.minor`` of ``Sao.__version__``), what the page scripts look for
SERIES = {
    "8.0": {
        # The Lines list's "position / count" counter is the one2many widget's ``badge``.
        "counter": "badge",
        "dialogs": _DIALOGS,
    },
    "7.0": {
        # 7.0 calls the same counter ``label`` (8.0 renamed it ``badge``).
        "counter": "label",
        # 7.0 draws the concurrency question ("modified while you were editing") as an
        # ask-dialog, like the password prompt but without a password field; 8.0 gives
        # it a class of its own.
        "dialogs": {**_DIALOGS, "concurrency-dialog":
                    ".modal.in.ask-dialog:not(:has(input[type=password]))"},
    },
}


def series_of(version):
    """The entry of :data:`SERIES` for sao ``version`` (``"7.0.56"``).

    :raises ScreenChanged: for a series the integration does not know (an upgrade:
        the workshop's orders are held until it is known)
    """
    known = SERIES.get(".".join(str(version).split(".")[:2]))
    if known is None:
        raise ScreenChanged(f"The ERP runs sao {version}, a Tryton series the integration "
                            f"does not know (it knows {' and '.join(sorted(SERIES))}): "
                            f"nothing is written on screens it may not understand",
                            screen="sao")
    return known
