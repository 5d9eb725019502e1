"""integrations/erp_sim/screens.py without a browser: what the worksheet search makes of
the ERP's answers (hand-written fakes; the real pages run in the contract tests)."""

import pytest

from core.errors import ScreenChanged, UnexpectedPage, WorksheetNotFound
from integrations.erp_sim import pages
from integrations.erp_sim.screens import SearchForm, check_line_table


class FakeBrowser:
    def fill(self, fields):
        self.filled = fields


def search_answering(*messages):
    """A search form whose search lands on itself showing ``messages``."""
    form = object.__new__(pages.WorksheetSearchPage)
    form.browser = FakeBrowser()
    form.check = lambda: None  # the form's screen check: the real pages run it
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


# -- the lines table's shape (issue 27): checked before a line of it is read or deleted --

KNOWN = ["line-id", "product-nr", "product-name", "amount", "text"]


def shape(columns, *rows, delete=True, others=0):
    """``others``: rows of the table's body that are not ``tr.line``"""
    return {"columns": columns, "body_rows": len(rows) + others,
            "rows": [{"cells": list(cells), "delete": delete} for cells in rows]}


@pytest.mark.parametrize("table, takes_changes", [
    (shape(6, KNOWN + ["actions"], KNOWN + ["actions"]), True),
    (shape(5, KNOWN), False),  # closed or locked: no actions column
    (shape(6), True),  # no lines yet
])
def test_a_lines_table_as_known_passes(table, takes_changes):
    check_line_table(table, takes_changes)


@pytest.mark.parametrize("table, takes_changes, said", [
    (None, True, "no lines table"),
    (shape(7), True, "7 header columns"),  # a column more, even with no line to show it
    (shape(6, ["text", "amount", "product-nr", "product-name", "line-id", "actions"]), True,
     "a line's cells are text, amount"),  # the same cells in another order
    (shape(6, KNOWN + ["actions"], delete=False), True, "no Delete button"),
    (shape(6, KNOWN + ["actions"]), False, "6 header columns"),
    # lines renamed (tr.row, say): read as "no lines", every line would be written again
    (shape(6, others=2), True, "2 rows, of which 0 are lines"),
])
def test_a_changed_lines_table_is_a_changed_screen_naming_what_differs(table, takes_changes,
                                                                         said):
    with pytest.raises(ScreenChanged) as raised:
        check_line_table(table, takes_changes)
    assert raised.value.screen == "lines" and said in raised.value.reason_text
    assert raised.value.reason_code == "ERP_SCREEN_CHANGED"
