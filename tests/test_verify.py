"""integrations.verify and the checks of integrations.base: a worksheet read back, each
order's line checked, duplicates and wrong lines repaired -- on a fake worksheet (the
real ERPs run the same code in test_integration_contract.py and the proxy tests)."""

import logging
from decimal import Decimal

import pytest

from core.errors import ErpUnavailable, LineUnverified, ScreenChanged
from integrations.base import (LineOutcome, OrderLine, SeenLine, Written, check_lines,
                               outcome_of)
from integrations.verify import REPAIR_ROUNDS, verified_or_retried, verify_visit

LOG = logging.getLogger("test.verify")


def line(uniqueid, product="7", amount="2.5"):
    return OrderLine(uniqueid, "5", product, Decimal(amount))


class Sheet:
    """A worksheet that can be read, have lines deleted and lines written."""

    def __init__(self, *rows, broken_writes=0):
        self.rows = [SeenLine(p, Decimal(a) if a is not None else None, t, n)
                     for n, (p, a, t) in enumerate(rows)]
        self.next_ref = len(self.rows)
        self.deleted, self.written = [], []
        self.broken_writes = broken_writes  # writes that store a wrong line

    def read(self):
        return list(self.rows)

    def delete(self, doomed):
        self.deleted.extend(doomed)
        self.rows = [row for row in self.rows if row.ref not in {d.ref for d in doomed}]

    def rewrite(self, one):
        self.written.append(one.uniqueid)
        product = "999" if self.broken_writes else one.product_nr
        self.broken_writes = max(0, self.broken_writes - 1)
        self.rows.append(SeenLine(product, one.product_amount, one.text, self.next_ref))
        self.next_ref += 1

    def verify(self, lines, results):
        return verify_visit(lines, results, self.read, self.delete, self.rewrite, LOG)


def test_check_lines_sorts_right_extra_and_wrong_and_matches_whole_words():
    order = line("12")
    seen = [SeenLine("7", Decimal("2.50"), "OilMat 12", 1),
            SeenLine("7", Decimal("2.5"), "OilMat 123", 2),  # another order
            SeenLine("8", Decimal("2.5"), "OilMat 12", 3),
            SeenLine(None, None, "OilMat 12", 4),  # a comment line
            SeenLine("7", Decimal("2.5"), "OilMat 12", 5)]
    check = check_lines(seen, order)
    assert (check.keep.ref, [x.ref for x in check.extra], [x.ref for x in check.wrong]) == \
        (1, [5], [3, 4])
    assert not check.ok and not check.missing
    assert check.repairs() == ["removed 1 duplicate line", "removed 2 wrong lines"]
    assert check_lines(seen[:1], order).ok
    assert check_lines(seen[1:2], order).missing


def test_one_right_line_each_stands_untouched():
    sheet = Sheet(("7", "2.5", "OilMat a"), ("7", "1", "OilMat b"))
    results = {"a": LineOutcome.CREATED, "b": LineOutcome.EXISTED}
    assert sheet.verify([line("a"), line("b", amount="1")], results) == 0
    assert results == {"a": LineOutcome.CREATED, "b": LineOutcome.EXISTED}
    assert sheet.deleted == [] and sheet.written == []


def test_a_duplicate_is_removed_keeping_one_and_said():
    sheet = Sheet(("7", "2.5", "OilMat a"), ("7", "2.5", "OilMat a"))
    results = {"a": LineOutcome.CREATED}
    assert sheet.verify([line("a")], results) == 1
    assert results == {"a": Written(LineOutcome.CREATED, ("removed 1 duplicate line",))}
    assert [row.ref for row in sheet.rows] == [0]


def test_a_wrong_line_is_removed_and_written_again():
    sheet = Sheet((None, None, "OilMat a"))  # saved as a comment line
    results = {"a": LineOutcome.CREATED}
    sheet.verify([line("a")], results)
    assert outcome_of(results["a"]) == (
        LineOutcome.CREATED, ("removed 1 wrong line and wrote it again",))
    assert [(row.product_nr, row.amount) for row in sheet.rows] == [("7", Decimal("2.5"))]


def test_a_line_gone_missing_is_written_again():
    sheet = Sheet()
    results = {"a": LineOutcome.CREATED}
    sheet.verify([line("a")], results)
    assert results["a"] == Written(LineOutcome.CREATED, ("wrote the missing line again",))
    assert sheet.written == ["a"]


def test_what_cannot_be_repaired_is_line_unverified_not_created():
    sheet = Sheet(("8", "2.5", "OilMat a"), broken_writes=REPAIR_ROUNDS + 1)
    results = {"a": LineOutcome.CREATED, "b": LineOutcome.CREATED}
    sheet.rows.append(SeenLine("7", Decimal("2.5"), "OilMat b", 99))
    sheet.verify([line("a"), line("b")], results)
    assert isinstance(results["a"], LineUnverified)
    assert results["a"].reason_code == "LINE_UNVERIFIED"
    assert results["b"] == LineOutcome.CREATED  # the other line of the visit stands


def test_failures_and_refusals_are_not_checked():
    sheet = Sheet()
    refused = ErpUnavailable("down")
    results = {"a": refused}
    assert sheet.verify([line("a")], results) == 0
    assert results == {"a": refused}


def test_a_visit_ended_by_an_error_leaves_no_line_counted_as_written():
    def read():
        raise ErpUnavailable("the read-back failed")

    results = {"a": LineOutcome.CREATED, "b": ErpUnavailable("x"),
               "c": Written(LineOutcome.EXISTED)}
    maybe_on_sheet = set()
    with pytest.raises(ErpUnavailable), verified_or_retried(results, maybe_on_sheet):
        verify_visit([line("a"), line("b"), line("c")], results, read, None, None, LOG)
    assert set(results) == {"b"}  # the caller gives the others the error that ended it
    # written or seen there: their error will say the line may be on the worksheet
    assert maybe_on_sheet == {"a", "c"}


def test_a_read_back_agreeing_with_none_of_the_lines_just_saved_is_a_changed_screen():
    """Issue 27: e.g. amount and product columns swapped -- a repair would delete right
    lines. Nothing is deleted or written; the visit ends in ScreenChanged (orders held)."""
    sheet = Sheet(("2.5", "7", "OilMat a"), ("1", "7", "OilMat b"))
    results = {"a": LineOutcome.CREATED, "b": LineOutcome.CREATED}
    with pytest.raises(ScreenChanged) as raised:
        sheet.verify([line("a"), line("b", amount="1")], results)
    assert raised.value.screen == "lines" and "none of the 2 lines" in raised.value.reason_text
    assert sheet.deleted == [] and sheet.written == []


@pytest.mark.parametrize("rows, results", [
    # one of the two lines just saved agrees
    ([("8", "2.5", "OilMat a"), ("7", "1", "OilMat b")],
     {"a": LineOutcome.CREATED, "b": LineOutcome.CREATED}),
    # one line just saved; the other was there before (a clerk's edit, say)
    ([("8", "2.5", "OilMat a"), ("8", "1", "OilMat b")],
     {"a": LineOutcome.CREATED, "b": LineOutcome.EXISTED}),
])
def test_wrong_lines_are_repaired_when_not_every_line_just_saved_disagrees(rows, results):
    sheet = Sheet(*rows)
    sheet.verify([line("a"), line("b", amount="1")], results)
    assert outcome_of(results["a"])[1] == ("removed 1 wrong line and wrote it again",)
