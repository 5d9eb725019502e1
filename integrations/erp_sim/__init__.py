"""Integration with erp_sim's classic pages, the stand-in workshop ERP (``ERP_SYSTEM=erp_sim``).

The flow (log in, search the worksheet, read its lines, add the missing ones, read
back when unsure) is in :mod:`integrations.erp_sim.flow`; :mod:`.pages` holds the page
objects of the classic, server-rendered screens. The search is used rather than a deep
link because that is how a person -- and a vendor ERP without stable URLs -- reaches a
worksheet.
"""

#: no options of its own (see integrations.base.Option)
OPTIONS = ()


#: the integration's class, by name: imported with the first order, not when the instance
#: checks this ERP's options at start (an idle instance holds no Selenium), and never by
#: this file, which its modules import (integrations.get_integration_class)
INTEGRATION = "integrations.erp_sim.flow:ErpSimIntegration"
