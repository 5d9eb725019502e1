"""A made-up ERP that declares options, for the tests of per-ERP options in the fleet
(``test_fleet_options.py``): one plain option with a default, one required secret one.

The fleet must carry them knowing nothing of this ERP, so a test registers it in
``integrations.AVAILABLE`` (:func:`register`) and the fleet's code reads its ``OPTIONS``
like any ERP's. It has no ``INTEGRATION``: no instance ever writes a line with it.
"""

from integrations.base import Option

NAME = "fake_erp"

OPTIONS = (
    Option("database", default="workshop", pattern=r"[A-Za-z0-9_]{1,63}",
           help="letters, digits and _"),
    Option("api_key", pattern=r"\S{8,100}", secret=True, help="8 to 100 characters, no spaces"),
)


def register(available):
    """Make ``ERP_SYSTEM=fake_erp`` known in ``available`` (``integrations.AVAILABLE``)."""
    available[NAME] = "tests.fleet_fake_erp"
