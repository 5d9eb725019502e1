"""The integration class of ``ERP_SYSTEM=erp_sim``: the shared web-ERP flow with this
package's page objects."""

from integrations.erp_sim import pages
from integrations.web_erp import WebErpIntegration


class ErpSimIntegration(WebErpIntegration):
    name = "erp_sim"
    pages = pages
