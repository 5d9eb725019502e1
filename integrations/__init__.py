"""ERP integrations, one package per ERP system, chosen by the ``ERP_SYSTEM`` setting.

To add an ERP: write a package ``integrations/<name>/`` whose light ``__init__`` declares
its ``OPTIONS`` and names its class as ``INTEGRATION = "integrations.<name>.flow:Class"``
(a subclass of :class:`integrations.base.Integration` whose ``name`` is ``<name>``), and
its tests. The ``__init__`` imports nothing of its own package: the package's modules
import it (``from integrations.<name> import pages``), so an import back would be a circle. It is found by its folder: nothing outside the package
changes. Every sub-package here is an ERP except the shared browser primitives.
"""

import importlib
import pkgutil

#: sub-packages that are not an ERP
_NOT_AN_ERP = {"browser"}

#: ERP_SYSTEM value -> the package under integrations/ that defines it (found by folder)
AVAILABLE = {
    module.name: f"{__name__}.{module.name}"
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)
    if module.ispkg and module.name not in _NOT_AN_ERP
}


def options_of(name):
    """:returns: the :class:`~integrations.base.Option` s the ERP ``name`` declares.

    Reads the package's ``OPTIONS`` only; a package's ``__init__`` names its class as a
    string (``INTEGRATION``), so this loads no Selenium.
    """
    return tuple(getattr(importlib.import_module(AVAILABLE[name]), "OPTIONS", ()))


def get_integration_class(name):
    """Return the :class:`~integrations.base.Integration` subclass for ``name``.

    :raises KeyError: when no integration has that name
    """
    named = importlib.import_module(AVAILABLE[name]).INTEGRATION
    if not isinstance(named, str):  # a class given by a module __getattr__ (older style)
        return named
    module, _, cls = named.partition(":")
    return getattr(importlib.import_module(module), cls)
