"""integrations.verify and the checks of integrations.base: a worksheet read back, each
order's line checked, duplicates and wrong lines repaired -- on a fake worksheet (the
real ERPs run the same code in test_integration_contract.py and the proxy tests)."""

import logging
from decimal import Decimal

import pytest

from core.errors import ErpUnavailable, LineUnverified, ScreenChanged
from integrations.base import (LineOutcome, OrderLine, SeenLine, Written, check_lines,
                               outcome_of)
from integrations.verify import (KNOWN_QUORUM, REPAIR_ROUNDS, KnownLines, check_known,
                                 verified_or_retried, verify_visit)

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

    def verify(self, lines, results, known=(), doubted=()):
        return verify_visit(lines, results, self.read, self.delete, self.rewrite, LOG,
                            known=known, doubted=doubted)


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


def test_a_wrong_line_found_on_a_retry_is_removed_and_written_again():
    sheet = Sheet((None, None, "OilMat a"))  # saved as a comment line by an earlier visit
    results = {"a": LineOutcome.EXISTED}
    sheet.verify([line("a")], results)
    assert outcome_of(results["a"]) == (
        LineOutcome.EXISTED, ("removed 1 wrong line and wrote it again",))
    assert [(row.product_nr, row.amount) for row in sheet.rows] == [("7", Decimal("2.5"))]


def test_a_line_gone_missing_beside_a_right_one_is_written_again():
    sheet = Sheet(("7", "1", "OilMat b"))
    results = {"a": LineOutcome.CREATED, "b": LineOutcome.CREATED}
    sheet.verify([line("a"), line("b", amount="1")], results)
    assert results["a"] == Written(LineOutcome.CREATED, ("wrote the missing line again",))
    assert results["b"] == LineOutcome.CREATED
    assert sheet.written == ["a"]


@pytest.mark.parametrize("rows", [
    [],  # the one line just saved is not there (or its text is read from another column)
    [(None, None, "OilMat a")],  # there, but without product or amount
    [("2.5", "7", "OilMat a")],  # product and amount swapped
])
def test_one_line_just_saved_that_the_read_back_disagrees_with_is_a_changed_screen(rows):
    """Issue 27, item 5: orders mostly come one per visit, so one line is enough; nothing
    is deleted or written again (a misread table would lose or double a right line)."""
    sheet = Sheet(*rows)
    results = {"a": LineOutcome.CREATED}
    with pytest.raises(ScreenChanged) as raised:
        sheet.verify([line("a")], results)
    assert raised.value.screen == "lines" and "1 just saved" in raised.value.reason_text
    assert sheet.deleted == [] and sheet.written == []


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
    assert raised.value.screen == "lines" and "none of the 2 line(s)" in raised.value.reason_text
    assert sheet.deleted == [] and sheet.written == []


@pytest.mark.parametrize("rows, results, changed", [
    # one of the two lines just saved agrees: the table reads right, the other is repaired
    ([("8", "2.5", "OilMat a"), ("7", "1", "OilMat b")],
     {"a": LineOutcome.CREATED, "b": LineOutcome.CREATED}, False),
    # one line just saved; the other, there before, reads right
    ([("8", "2.5", "OilMat a"), ("7", "1", "OilMat b")],
     {"a": LineOutcome.CREATED, "b": LineOutcome.EXISTED}, False),
    # one line just saved; the other, there before, is wrong too: nothing agrees
    ([("8", "2.5", "OilMat a"), ("8", "1", "OilMat b")],
     {"a": LineOutcome.CREATED, "b": LineOutcome.EXISTED}, True),
    # nothing saved in this visit (a retry): what it found is repaired
    ([("8", "2.5", "OilMat a"), ("8", "1", "OilMat b")],
     {"a": LineOutcome.EXISTED, "b": LineOutcome.EXISTED}, False),
])
def test_wrong_lines_are_repaired_only_when_some_line_of_the_visit_reads_right(rows, results,
                                                                              changed):
    sheet = Sheet(*rows)
    if changed:
        with pytest.raises(ScreenChanged):
            sheet.verify([line("a"), line("b", amount="1")], results)
        assert sheet.deleted == [] and sheet.written == []
    else:
        sheet.verify([line("a"), line("b", amount="1")], results)
        assert outcome_of(results["a"])[1] == ("removed 1 wrong line and wrote it again",)


# -- lines verified before: a table read wrong told apart from a wrong sheet ----------

EARLIER = (line("e1", "7", "1"), line("e2", "8", "2"))
EARLIER_ROWS = (("7", "1", "OilMat e1"), ("8", "2", "OilMat e2"))


@pytest.mark.parametrize("rows", [
    [("1", "7", "OilMat e1"), ("2", "8", "OilMat e2")],  # product and amount read swapped
    [("7", "1", "other text"), ("8", "2", "more text")],  # the text read from elsewhere
])
def test_a_read_where_no_line_verified_before_reads_right_is_a_changed_screen(rows):
    sheet = Sheet(*rows)
    with pytest.raises(ScreenChanged) as raised:
        check_known(sheet.read(), EARLIER)
    assert "none of the 2 lines verified" in raised.value.reason_text
    # ...and the repair of a line found there (a retry's EXISTED line) does not happen
    sheet.rows.append(SeenLine("2.5", Decimal("7"), "OilMat a", 9))
    results = {"a": LineOutcome.EXISTED}
    with pytest.raises(ScreenChanged):
        sheet.verify([line("a")], results, known=EARLIER)
    assert sheet.deleted == [] and sheet.written == []


@pytest.mark.parametrize("rows", [
    EARLIER_ROWS,
    (("7", "1", "OilMat e1"), ("9", "5", "OilMat e2")),  # a clerk changed one of them
    (("7", "1", "OilMat e1"),),  # ...or deleted it
])
def test_a_read_where_a_line_verified_before_reads_right_passes(rows):
    check_known(Sheet(*rows).read(), EARLIER)


def test_fewer_lines_verified_than_the_quorum_judge_nothing():
    assert KNOWN_QUORUM == 2
    check_known(Sheet(("1", "7", "OilMat e1")).read(), EARLIER[:1])


def test_a_line_verified_before_reading_right_lets_a_lone_wrong_line_be_repaired():
    """The table reads right (a line verified earlier is as it was), so the one line just
    saved that reads wrong is a wrong line, repaired at once -- no hold."""
    sheet = Sheet(*EARLIER_ROWS, (None, None, "OilMat a"))
    results = {"a": LineOutcome.CREATED}
    sheet.verify([line("a")], results, known=EARLIER)
    assert outcome_of(results["a"])[1] == ("removed 1 wrong line and wrote it again",)


def test_known_lines_are_kept_per_worksheet_bounded_and_forgotten_on_trust():
    known = KnownLines(per_worksheet=2, worksheets=2)
    known.remember("5", [line("a"), line("b"), line("c")])
    assert [one.uniqueid for one in known.on("5")] == ["b", "c"]
    assert [one.uniqueid for one in known.on("5", besides={"c"})] == ["b"]
    known.remember("6", [line("d")])
    known.remember("7", [line("e")])
    assert known.on("5") == ()  # the least recently verified worksheet went
    known.forget()
    assert known.on("6") == known.on("7") == ()


def test_a_line_in_doubt_found_wrong_again_is_not_repaired_unless_the_table_is_vouched_for():
    """Its save was read back wrong (the visit held the workshop); the retry finds it on
    the sheet still wrong: a misread table as likely as a wrong line, so no repair --
    unless a line verified before reads right."""
    sheet = Sheet(("2.5", "7", "OilMat a"))
    with pytest.raises(ScreenChanged):
        sheet.verify([line("a")], {"a": LineOutcome.EXISTED}, doubted={"a"})
    assert sheet.deleted == [] and sheet.written == []
    sheet = Sheet(("2.5", "7", "OilMat a"), *EARLIER_ROWS)
    results = {"a": LineOutcome.EXISTED}
    sheet.verify([line("a")], results, known=EARLIER, doubted={"a"})
    assert outcome_of(results["a"])[1] == ("removed 1 wrong line and wrote it again",)


def test_a_doubt_ends_when_the_line_is_verified_or_an_operator_resumes():
    known = KnownLines()
    known.doubt(["a", "b"])
    assert known.doubted(["a", "b", "c"]) == {"a", "b"}
    known.remember("5", [line("a")])
    assert known.doubted(["a", "b"]) == {"b"}
    known.forget()
    assert known.doubted(["b"]) == set()
