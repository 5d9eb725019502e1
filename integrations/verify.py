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

import collections
import contextlib
import threading

from core.errors import LineUnverified, ScreenChanged
from integrations.base import LineOutcome, Written, check_lines, outcome_of

#: rounds of repair (delete, write again, read back) before a line is called unverified
REPAIR_ROUNDS = 2
#: how many verified lines of a worksheet :class:`KnownLines` keeps, and for how many
#: worksheets (the most recently verified ones)
KNOWN_PER_WORKSHEET = 50
KNOWN_WORKSHEETS = 500
#: verified lines a worksheet must have before a read of it is judged by them: one
#: line read otherwise is a clerk's edit as likely as a misread table
KNOWN_QUORUM = 2


class KnownLines:
    """Lines verified on each worksheet (written or found, and read back right), kept in
    memory: what a read of the lines table must still show (:func:`check_known`).

    Why: a lines table read wrong in a way its structure does not show (contents of
    cells swapped, the description read from another column) makes a sheet look wrong
    or empty -- and the repair would delete right lines, a "missing" line would be
    written again. Lines verified earlier tell a table read wrong from a wrong sheet.
    Kept per process: after a restart nothing is known, and reads are judged by the
    visit's own lines only (:func:`misread`). Thread-safe: the worker writes, an
    operator's resume (:meth:`forget`) comes from a request thread.
    """

    def __init__(self, per_worksheet=KNOWN_PER_WORKSHEET, worksheets=KNOWN_WORKSHEETS):
        self._per_worksheet, self._worksheets = per_worksheet, worksheets
        self._sheets = collections.OrderedDict()  # worksheet -> {uniqueid: OrderLine}
        self._doubted = set()  # uniqueids (doubt)
        self._lock = threading.Lock()

    def remember(self, worksheet, lines):
        """``lines`` (:class:`~integrations.base.OrderLine`) were verified on ``worksheet``."""
        if not lines:
            return
        with self._lock:
            self._doubted.difference_update(line.uniqueid for line in lines)
            sheet = self._sheets.pop(worksheet, {})
            for line in lines:
                sheet.pop(line.uniqueid, None)
                sheet[line.uniqueid] = line
            while len(sheet) > self._per_worksheet:
                del sheet[next(iter(sheet))]
            self._sheets[worksheet] = sheet
            while len(self._sheets) > self._worksheets:
                self._sheets.popitem(last=False)

    def on(self, worksheet, besides=()):
        """The lines verified on ``worksheet``, but those whose uniqueid is in ``besides``."""
        with self._lock:
            return tuple(line for uniqueid, line in self._sheets.get(worksheet, {}).items()
                         if uniqueid not in besides)

    def doubt(self, uniqueids):
        """The visit of these orders' lines ended in a changed screen after their save:
        until one is read right, a wrong line of it is not repaired (:func:`misread`)."""
        with self._lock:
            self._doubted.update(uniqueids)
            while len(self._doubted) > self._per_worksheet * self._worksheets:
                self._doubted.pop()

    def doubted(self, uniqueids):
        """Those of ``uniqueids`` in doubt."""
        with self._lock:
            return self._doubted & set(uniqueids)

    def forget(self):
        """Forget everything: an operator resumed a held workshop (the sheets may have
        been changed by people since, e.g. every line of ours on one deleted)."""
        with self._lock:
            self._sheets.clear()
            self._doubted.clear()


def check_known(seen, known):
    """Check a read of a worksheet's lines against lines verified on it before.

    :param seen: the worksheet's :class:`~integrations.base.SeenLine` s as just read
    :param known: :meth:`KnownLines.on` that worksheet
    :returns: whether one of them reads as verified (the table is read right)
    :raises ScreenChanged: when :data:`KNOWN_QUORUM` or more are known and not one of
        them reads as verified (each gone, or shown with another product or amount):
        the table is read wrong, and nothing may be written, deleted or repaired on it
    """
    checks = {line.uniqueid: check_lines(seen, line) for line in known}
    if any(check.keep is not None for check in checks.values()):
        return True
    if len(known) < KNOWN_QUORUM:
        return False
    shown = "; ".join(f"{uniqueid}: {check.shown()}" for uniqueid, check in
                      list(checks.items())[:5])
    raise ScreenChanged(f"lines: none of the {len(known)} lines verified on this worksheet "
                        f"before reads as verified ({shown})", screen="lines")


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


def misread(todo, results, wrong, seen, known=(), doubted=()):
    """The first read-back of a visit agrees with nothing the visit knows: not lines to
    repair, but a lines table the integration no longer reads right (a column moved,
    another field under the same name) -- repairing would delete right lines, and writing
    a "missing" line again would double it.

    It takes at least one line saved in this visit (or ``doubted``: one whose last save
    was read back this way before), and no line of the visit nor one verified there
    before (``known``) read right. One line is enough: orders mostly come one per visit,
    and one misread line repaired is one right line deleted or doubled. A right line
    proves the table reads right, so wrong lines beside it are repaired at once, as
    duplicates always are. What this costs where the sheet really is wrong (a save lost
    without an error, sao's comment line): the workshop is held until a probe passes
    (seconds: the probe's backoff); the order's retry then writes the lost line, but
    finds the wrong one still wrong and, unless a right line now vouches for the
    table, holds again -- spending attempts, so the order ends in ``error`` with
    ``ERP_SCREEN_CHANGED`` for a person to look at instead of a repair on a table that
    may be read wrong.

    :param todo: ``{uniqueid: line}`` checked; ``wrong``: the failed checks among them
    :param seen: what the read-back showed; ``known``: lines verified there before
    :param doubted: uniqueids whose earlier visit ended here
    :raises ScreenChanged: then (the orders are held, nothing is deleted or written)
    """
    if check_known(seen, known):
        return
    if any(uniqueid not in wrong or wrong[uniqueid].keep is not None for uniqueid in todo):
        return
    saved = [uniqueid for uniqueid in todo
             if outcome_of(results[uniqueid])[0] is LineOutcome.CREATED or uniqueid in doubted]
    if saved:
        shown = "; ".join(f"{uniqueid}: {wrong[uniqueid].shown()}" for uniqueid in todo)
        raise ScreenChanged(f"lines: the read-back agrees with none of the {len(todo)} "
                            f"line(s) of the visit, {len(saved)} just saved ({shown})",
                            screen="lines")


def verify_visit(lines, results, read, delete, rewrite, log, known=(), doubted=()):
    """Check every line the visit answered with success against the worksheet read back.

    Exactly one line carrying the uniqueid with the order's product and amount: the
    result stands. A first read that agrees with no line of a visit that saved one raises
    :class:`~core.errors.ScreenChanged` before anything is repaired (:func:`misread`).
    Extra lines carrying it: removed, keeping one. A line carrying it with
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
    :param known: lines verified on this worksheet before (:meth:`KnownLines.on`,
        without the visit's own): the first read must pass :func:`check_known`
    :param doubted: uniqueids whose last visit ended in :func:`misread` (:func:`misread`)
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
            misread(todo, results, wrong, seen, known, doubted)
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
