"""Integration with erp_sim's classic pages, the stand-in workshop ERP (``ERP_SYSTEM=erp_sim``).

The flow (log in, search the worksheet, read its lines, add the missing ones, read
back when unsure) is in :mod:`integrations.erp_sim.flow`; :mod:`.pages` holds the page
objects of the classic, server-rendered screens. The search is used rather than a deep
link because that is how a person -- and a vendor ERP without stable URLs -- reaches a
worksheet.
"""

#: no options of its own (see integrations.base.Option)
OPTIONS = ()


def __getattr__(name):
    # The browser code is loaded with the first order, not when the instance checks
    # this ERP's options at start: an idle instance holds no Selenium.
    if name == "INTEGRATION":
        from integrations.erp_sim.flow import ErpSimIntegration

        return ErpSimIntegration
    raise AttributeError(name)
