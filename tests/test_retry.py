"""The one retry policy (core/retry.py): its rules as functions, on plain errors."""

import pytest

from core import retry as policy
from core.errors import (ErpTimeout, ErpUnavailable, LineUnverified, ProductNotFound,
                         SessionExpired, TransientError, WorksheetLocked, unconfirmed)


def test_permanent_errors_are_never_retried():
    assert policy.is_permanent(ProductNotFound("999"))
    assert not policy.is_permanent(ErpTimeout("slow"))


@pytest.mark.parametrize("error, again", [
    (ErpUnavailable("502"), True), (WorksheetLocked("held"), True),
    (SessionExpired("logged out"), True), (ErpTimeout("no answer"), False),
    (LineUnverified("wrong"), False)])
def test_only_what_the_erp_answered_is_retried_within_the_visit(error, again):
    assert policy.retry_in_visit(error) is again


def test_an_unforeseen_exception_is_transient():
    error = policy.as_bridge_error(KeyError("x"))
    assert isinstance(error, TransientError) and error.reason_code == "UNEXPECTED_ERROR"
    known = ErpTimeout("slow")
    assert policy.as_bridge_error(known) is known


def test_backoff_doubles_with_jitter_up_to_its_cap():
    for attempts, ceiling in ((1, 2), (2, 4), (3, 8), (6, 30)):
        for _ in range(50):
            assert ceiling / 2 <= policy.backoff(attempts, 2, 30) <= ceiling


def test_give_up_at_the_attempt_limit_or_the_budget():
    assert policy.give_up_reason(4, 10, 5, 900) is None
    assert policy.give_up_reason(5, 10, 5, 900) == "gave up after 5 attempts"
    assert policy.give_up_reason(2, 901, 5, 900) == "gave up after 901 s (2 attempts)"


def test_a_write_with_no_answer_is_given_as_long_again_before_the_retry_reads():
    sent = unconfirmed(ErpTimeout("no answer to the save"))
    assert policy.write_unanswered(sent)
    assert not policy.write_unanswered(ErpTimeout("the page did not load"))  # nothing sent
    assert not policy.write_unanswered(unconfirmed(ErpUnavailable("502")))  # answered
    assert policy.retry_pause(1.5, True, 20.0) == 20.0
    assert policy.retry_pause(30.0, True, 20.0) == 30.0
    assert policy.retry_pause(1.5, False, 20.0) == 1.5


def test_unconfirmed_marks_a_copy_and_keeps_the_code():
    error = ErpTimeout("no answer")
    marked = unconfirmed(error)
    assert marked.unconfirmed and not error.unconfirmed
    assert (type(marked), marked.reason_code, marked.reason_text) == \
        (ErpTimeout, "ERP_TIMEOUT", "no answer")
    assert unconfirmed(marked) is marked
