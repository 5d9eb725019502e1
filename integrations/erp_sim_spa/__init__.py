"""Integration with erp_sim's single-page app (``ERP_SYSTEM=erp_sim_spa``).

The same ERP as :mod:`integrations.erp_sim` behind a different user interface: the
flow is :class:`integrations.web_erp.WebErpIntegration`'s, this package is the page
objects of the app's screens.
"""

from integrations.erp_sim_spa import pages
from integrations.web_erp import WebErpIntegration


class ErpSimSpaIntegration(WebErpIntegration):
    name = "erp_sim_spa"
    pages = pages


INTEGRATION = ErpSimSpaIntegration
