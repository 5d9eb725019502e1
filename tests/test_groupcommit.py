"""Group commit (orders/groupcommit.py): writers that arrive together share one
transaction; each gets its own answer; a failed transaction fails exactly the writers
whose work was in it. Unit level with a hand-written group runner; the order records'
use of it is in tests/test_records.py."""

import threading
import time

import pytest

from orders.groupcommit import GroupCommit


class Runner:
    """A group runner whose 'commit' takes a while, as an fsync does; answers each item
    doubled, fails a group holding ``"boom"`` after settling ``"early"`` items."""

    def __init__(self, commit_seconds=0.0):
        self.commit_seconds, self.groups = commit_seconds, []

    def __call__(self, group):
        self.groups.append([work.item for work in group])
        for work in group:
            if work.item == "early":
                work.settle(result="settled")
            elif work.item == "own-error":
                work.settle(error=KeyError("own"))
            else:
                work.result = work.item * 2
        if any(work.item == "boom" for work in group):
            raise OSError("disk full")
        time.sleep(self.commit_seconds)


def test_a_writer_alone_is_its_own_group_at_once():
    runner = Runner()
    commit = GroupCommit(runner)
    assert commit.run(3) == 6 and commit.run(4) == 8
    assert runner.groups == [[3], [4]]


def test_writers_arriving_during_a_commit_share_the_next_one_and_keep_their_answers():
    runner = Runner(commit_seconds=0.05)
    commit = GroupCommit(runner)
    answers, started = {}, threading.Barrier(20)

    def writer(n):
        started.wait()
        answers[n] = commit.run(n)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert answers == {n: n * 2 for n in range(20)}
    assert sorted(item for group in runner.groups for item in group) == list(range(20))
    assert len(runner.groups) < 20  # shared: 20 writers, fewer commits


def test_a_failed_commit_fails_its_unsettled_writers_only():
    runner = Runner()
    commit = GroupCommit(runner)
    group_failed = threading.Event()
    answers = {}
    release = threading.Event()

    def slow_runner(group):  # holds the leader lock until the three have queued up
        release.wait(5)
        return runner(group)

    commit._run_group = slow_runner
    first = threading.Thread(target=lambda: answers.setdefault("first", commit.run(1)))
    first.start()
    deadline = time.monotonic() + 5
    while not commit._leader.locked() and time.monotonic() < deadline:
        time.sleep(0.005)  # "first" leads and waits; the next three queue behind it

    def writer(item):
        try:
            answers[item] = commit.run(item)
        except Exception as exc:  # noqa: BLE001 -- the answer under test
            answers[item] = exc
            group_failed.set()

    others = [threading.Thread(target=writer, args=(item,))
              for item in ("early", "boom", "own-error")]
    for thread in others:
        thread.start()
    deadline = time.monotonic() + 5
    while len(commit._waiting) < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    release.set()
    for thread in [first] + others:
        thread.join(5)
    assert answers["first"] == 2
    assert runner.groups[1] == ["early", "boom", "own-error"]
    assert answers["early"] == "settled"  # wrote nothing: its answer stands
    assert isinstance(answers["boom"], OSError)  # rolled back with the transaction
    assert isinstance(answers["own-error"], KeyError)  # its own error, not the group's
    # the leader that failed leaves no one waiting: the next writer leads a new group
    assert commit.run(5) == 10


def test_an_error_before_any_answer_reaches_every_writer_of_the_group():
    def broken(group):
        raise OSError("the file is gone")
    with pytest.raises(OSError, match="gone"):
        GroupCommit(broken).run(1)
