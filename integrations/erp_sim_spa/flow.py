"""The integration class of ``ERP_SYSTEM=erp_sim_spa``: erp_sim's flow (the same ERP)
with the single-page app's page objects."""

from integrations.erp_sim.flow import ErpSimIntegration
from integrations.erp_sim_spa import pages


class ErpSimSpaIntegration(ErpSimIntegration):
    name = "erp_sim_spa"
    pages = pages
