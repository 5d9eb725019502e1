"""integrations/erp_sim/screens.py without a browser: what the worksheet search makes of
the ERP's answers (hand-written fakes; the real pages run in the contract tests)."""

import pytest

from core.errors import UnexpectedPage, WorksheetNotFound
from integrations.erp_sim import pages
from integrations.erp_sim.screens import SearchForm


class FakeBrowser:
    def fill(self, fields):
        self.filled = fields


def search_answering(*messages):
    """A search form whose search lands on itself showing ``messages``."""
    form = object.__new__(pages.WorksheetSearchPage)
    form.browser = FakeBrowser()
    form.send = lambda locator, what: None
    form.land = lambda *screens, after=None: form
    form.errors = lambda: list(messages)
    return form


def test_not_found_for_the_number_asked_is_worksheet_not_found():
    form = search_answering("No worksheet found with number 1500")
    assert isinstance(form, SearchForm)
    with pytest.raises(WorksheetNotFound):
        form.open_worksheet("1500")


@pytest.mark.parametrize("said", ["No worksheet found with number undefined",
                                  "No worksheet found with number 208"])
def test_not_found_about_another_number_is_no_verdict_on_this_one(said):
    # seen behind the fault-injecting proxy: the SPA's script lost its state after a
    # dropped request and searched for "undefined"; 10 orders of worksheet 209 ended in
    # a permanent WORKSHEET_NOT_FOUND before this
    with pytest.raises(UnexpectedPage):
        search_answering(said).open_worksheet("209")
