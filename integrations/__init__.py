"""ERP integrations, one module per ERP system, chosen by the ``ERP_SYSTEM`` setting.

To add an ERP: write ``integrations/<name>.py`` (or a package) with a subclass of
:class:`integrations.base.Integration` whose ``name`` is ``<name>``, and add the module
name to ``AVAILABLE``. Nothing outside the module and its tests changes.
"""

import importlib

#: ERP_SYSTEM value -> module under integrations/ that defines it
AVAILABLE = {
    "erp_sim": "integrations.erp_sim",
    "erp_sim_spa": "integrations.erp_sim_spa",
    "tryton": "integrations.tryton",
}


def options_of(name):
    """:returns: the :class:`~integrations.base.Option` s the ERP ``name`` declares.

    Reads the package's ``OPTIONS`` only; a package keeps its browser code out of its
    ``__init__`` import (a module ``__getattr__`` for ``INTEGRATION``), so this loads
    no Selenium.
    """
    return tuple(getattr(importlib.import_module(AVAILABLE[name]), "OPTIONS", ()))


def get_integration_class(name):
    """Return the :class:`~integrations.base.Integration` subclass for ``name``.

    :raises KeyError: when no integration has that name
    """
    module = importlib.import_module(AVAILABLE[name])
    return module.INTEGRATION
