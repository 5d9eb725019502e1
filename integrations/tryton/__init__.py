"""Integration with Tryton through its sao web client (``ERP_SYSTEM=tryton``).

A worksheet is a draft sale whose *Reference* is the worksheet number; a line is a sale
line whose *Description* carries ``OilMat <uniqueid>``. Everything goes through sao in
Chromium, as it must for an ERP reached only through its screens: :mod:`.flow` is the
visit (log in, open the sale, read its lines, add the missing ones, save, read back),
:mod:`.pages` the screens, :mod:`.messages` what Tryton's dialogs mean.
"""

from integrations.base import Option

#: Tryton serves several databases; the login and every URL name one
OPTIONS = (
    Option("database", default="workshop", pattern=r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}",
           help="the Tryton database holding the workshop's sales"),
)


#: the integration's class, by name: imported with the first order, not when the instance
#: checks options at start, and never by this file, which its modules import
#: (integrations.get_integration_class)
INTEGRATION = "integrations.tryton.flow:TrytonIntegration"
