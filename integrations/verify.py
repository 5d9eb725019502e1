"""Verified writes: the worksheet read back, checked line by line, repaired through the UI.

Why: "we submitted once" is not "the worksheet holds one line". A browser resends a POST
by itself when a kept-alive connection closes before the answer (proxies and load
balancers close idle connections), so the ERP may store a line twice with no error
anywhere; sao may save a comment line without product or quantity. Only what the ERP
shows after the visit's writes counts.

:func:`verify_visit` is the same for every ERP; each ERP gives it three actions done
through its own UI: read the worksheet's lines (:class:`integrations.base.SeenLine`),
delete some of them, and write a line again.
"""

import contextlib

from core.errors import LineUnverified, ScreenChanged
from integrations.base import LineOutcome, Written, check_lines, outcome_of

#: rounds of repair (delete, write again, read back) before a line is called unverified
REPAIR_ROUNDS = 2


@contextlib.contextmanager
def verified_or_retried(results, maybe_on_sheet):
    """Around a whole visit: when an exception ends it, no line of it counts as written
    -- not verified means not known to be right. The exception then becomes those lines'
    result, and the worker's retry reads the worksheet first (then finds the line and
    verifies it, or writes it).

    :param maybe_on_sheet: a set; the uniqueids whose results are dropped are added to
        it: those lines were written or seen on the worksheet, so their error is
        :func:`core.errors.unconfirmed`
    """
    try:
        yield
    except Exception:
        for uniqueid in [uid for uid, result in results.items()
                         if isinstance(result, (LineOutcome, Written))]:
            del results[uniqueid]
            maybe_on_sheet.add(uniqueid)
        raise


def misread(todo, results, wrong):
    """The first read-back of a visit agrees with none of the lines just saved: not
    lines to repair, but a lines table the integration no longer reads right (a column
    moved, another field under the same name) -- repairing would delete right lines.

    It takes two lines or more saved in the visit, none of them with a right line on
    the sheet: one wrong line alone is what repairs are for (sao's comment line, a
    save lost).

    :param todo: ``{uniqueid: line}`` checked; ``wrong``: the failed checks among them
    :raises ScreenChanged: then (the orders are held, nothing is deleted or written)
    """
    saved = [uniqueid for uniqueid in todo
             if outcome_of(results[uniqueid])[0] is LineOutcome.CREATED]
    if len(saved) >= 2 and all(uniqueid in wrong and wrong[uniqueid].keep is None
                               for uniqueid in saved):
        shown = "; ".join(f"{uniqueid}: {wrong[uniqueid].shown()}" for uniqueid in saved)
        raise ScreenChanged(f"lines: the read-back agrees with none of the {len(saved)} "
                            f"lines just saved ({shown})", screen="lines")


def verify_visit(lines, results, read, delete, rewrite, log):
    """Check every line the visit answered with success against the worksheet read back.

    Exactly one line carrying the uniqueid with the order's product and amount: the
    result stands. A first read that agrees with none of the lines just saved raises
    :class:`~core.errors.ScreenChanged` before anything is repaired (:func:`misread`). Extra lines carrying it: removed, keeping one. A line carrying it with
    another product or amount: removed, and the order's line written again (when no
    right one is left). A right line that is gone: written again. Each repair is added
    to the line's result as a :class:`Written` note; what is still wrong after
    :data:`REPAIR_ROUNDS` rounds becomes a :class:`LineUnverified` (not raised).

    :param lines: the visit's :class:`~integrations.base.OrderLine` s
    :param results: ``{uniqueid: result}``, updated in place
    :param read: ``read()`` -> the worksheet's ``[SeenLine]`` as the UI shows it now
    :param delete: ``delete([SeenLine])``: remove these lines through the UI
    :param rewrite: ``rewrite(line)``: write ``line`` again (it is not on the sheet)
    :param log: the orderline logger
    :returns: how many repairs were made
    """
    todo = {line.uniqueid: line for line in lines
            if isinstance(results.get(line.uniqueid), (LineOutcome, Written))}
    notes = {uniqueid: [] for uniqueid in todo}
    made = 0
    for attempt in range(REPAIR_ROUNDS + 1):
        seen = read()
        wrong = {uniqueid: check_lines(seen, line) for uniqueid, line in todo.items()}
        wrong = {uniqueid: check for uniqueid, check in wrong.items() if not check.ok}
        if not wrong:
            break
        if attempt == 0:
            misread(todo, results, wrong)
        if attempt == REPAIR_ROUNDS:
            for uniqueid, check in wrong.items():
                line = todo[uniqueid]
                results[uniqueid] = LineUnverified(
                    f"Worksheet {line.worksheet}: order {uniqueid} should be one line of "
                    f"product {line.product_nr} x {line.product_amount}; after "
                    f"{REPAIR_ROUNDS} repairs the ERP shows {check.shown()}")
                log.error("worksheet %s, order %s: line unverified: %s", line.worksheet,
                          uniqueid, check.shown())
            break
        doomed = [one for check in wrong.values() for one in (*check.extra, *check.wrong)]
        for uniqueid, check in wrong.items():
            line = todo[uniqueid]
            what = check.repairs() or ["wrote the missing line again"]
            notes[uniqueid].extend(what)
            log.warning("worksheet %s, order %s: the worksheet shows %s; repairing: %s",
                        line.worksheet, uniqueid, check.shown(), "; ".join(what))
        if doomed:
            delete(doomed)
            made += len(doomed)
        for uniqueid, check in wrong.items():
            if check.keep is None:
                rewrite(todo[uniqueid])
                made += 1
    for uniqueid, done in notes.items():
        result = results[uniqueid]
        if done and not isinstance(result, Exception):
            outcome, earlier = outcome_of(result)
            results[uniqueid] = Written(outcome, earlier + tuple(done))
    return made
