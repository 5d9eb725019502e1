"""The integration class of ``ERP_SYSTEM=erp_sim_spa``: the shared web-ERP flow with this
package's page objects."""

from integrations.erp_sim_spa import pages
from integrations.web_erp import WebErpIntegration


class ErpSimSpaIntegration(WebErpIntegration):
    name = "erp_sim_spa"
    pages = pages
