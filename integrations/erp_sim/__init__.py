"""Integration with erp_sim's classic pages, the stand-in workshop ERP (``ERP_SYSTEM=erp_sim``).

The flow (log in, search the worksheet, read its lines, add the missing ones, read
back when unsure) is :class:`integrations.web_erp.WebErpIntegration`'s; this package
is the page objects of the classic, server-rendered screens. The search is used
rather than a deep link because that is how a person -- and a vendor ERP without
stable URLs -- reaches a worksheet.
"""

from integrations.erp_sim import pages
from integrations.web_erp import WebErpIntegration


class ErpSimIntegration(WebErpIntegration):
    name = "erp_sim"
    pages = pages


INTEGRATION = ErpSimIntegration
