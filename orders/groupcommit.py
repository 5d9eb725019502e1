"""Group commit: writers that arrive together share one transaction, and one fsync.

The order records are written with ``synchronous=FULL``: a 200 from ``/create`` is on
disk. Each commit waits for the disk, and the store's one connection is held while it
does, so under concurrent intake the fsyncs, not the work, set the rate (measured:
docs/benchmarks.md, the intake). Here each writer puts its work on a list and waits
for the *leader* lock; whoever holds it takes every piece of work waiting at that
moment (its own and what arrived during the previous commit) and runs them all in one
transaction. A writer alone pays nothing extra: it is its own leader at once.

Nothing is weakened: a writer still returns only after the commit that holds its work
has returned, and when that commit fails, every writer whose work was in it gets the
error (its work was rolled back with the others').
"""

import threading


class _Work:
    """One writer's piece of work: ``item``, what to write. ``result``/``error`` hold its answer; ``done`` says
    the answer stands whatever becomes of the transaction (:meth:`settle`)."""

    __slots__ = ("item", "done", "result", "error")

    def __init__(self, item):
        self.item, self.done, self.result, self.error = item, False, None, None

    def settle(self, result=None, error=None):
        """Answer now, independently of the commit: a piece that wrote nothing (a
        repeat, a conflict) keeps this answer even when the transaction fails."""
        self.result, self.error, self.done = result, error, True


class GroupCommit:
    """Runs pieces of work in shared transactions.

    :param run_group: called by the leader with the list of pending pieces (in arrival
        order); it runs them in one transaction and commits it, and sets each piece's
        ``result`` -- or :meth:`_Work.settle` for a piece whose answer does not depend
        on the commit. When it raises, every piece not settled gets that error.
    """

    def __init__(self, run_group):
        self._run_group = run_group
        self._waiting = []
        self._waiting_lock = threading.Lock()  # held for a list operation only
        self._leader = threading.Lock()  # held through a whole group's transaction

    def run(self, item):
        """Write ``item`` in the next group's transaction and answer what was set for it.

        :raises: the error set for it (its own), or the one that failed its group
        """
        work = _Work(item)
        with self._waiting_lock:
            self._waiting.append(work)
        with self._leader:
            if not work.done:  # nobody took it yet: lead a group, this work included
                with self._waiting_lock:
                    group, self._waiting = self._waiting, []
                self._lead(group)
        if work.error is not None:
            raise work.error
        return work.result

    def _lead(self, group):
        """Run one group; every piece ends done, none waits on a leader that failed."""
        try:
            self._run_group(group)
        except BaseException as exc:
            for work in group:
                if not work.done:  # its writes were rolled back with the transaction
                    work.result, work.error = None, exc
            if not isinstance(exc, Exception):
                raise  # an interrupt ends the leader's thread; the others get it as error
        finally:
            for work in group:
                work.done = True
