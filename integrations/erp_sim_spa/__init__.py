"""Integration with erp_sim's single-page app (``ERP_SYSTEM=erp_sim_spa``).

The same ERP as :mod:`integrations.erp_sim` behind a different user interface: the
flow is erp_sim's (:mod:`integrations.erp_sim.flow`), this package holds the page
objects of the app's screens.
"""

#: no options of its own (see integrations.base.Option)
OPTIONS = ()


#: the integration's class, by name: imported with the first order, not when the instance
#: checks this ERP's options at start (an idle instance holds no Selenium), and never by
#: this file, which its modules import (integrations.get_integration_class)
INTEGRATION = "integrations.erp_sim_spa.flow:ErpSimSpaIntegration"
