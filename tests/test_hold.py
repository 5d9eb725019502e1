"""core.hold: one workshop, one running instance -- the exclusive hold on a data folder."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from core.errors import ConfigError, WorkshopHeld
from core.hold import HOLD_FILE, Hold, describe, holder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: a process that takes the hold, says so, then waits (and starts a child that outlives it)
_HOLDER = textwrap.dedent("""
    import subprocess, sys, time
    sys.path.insert(0, sys.argv[1])
    from core.hold import Hold
    hold = Hold.take(sys.argv[2], "test holder", 5991)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    print(child.pid, flush=True)
    time.sleep(60)
""")


@pytest.fixture
def holder_process(tmp_path):
    """A separate process holding ``tmp_path/w``; yields ``(process, child pid)``."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, ROOT, str(tmp_path / "w")],
                            stdout=subprocess.PIPE, text=True)
    child = int(proc.stdout.readline())
    yield proc, child
    for pid in (proc.pid, child):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(10)


def _wait_gone(pid, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def test_a_second_hold_is_refused_naming_the_holder(tmp_path):
    first = Hold.take(tmp_path, "api.py", 5991)
    with pytest.raises(WorkshopHeld) as refused:
        Hold.take(tmp_path, "api.py", 5992)
    text = refused.value.reason_text
    assert f"pid {os.getpid()}" in text and "port 5991" in text and "since 20" in text
    assert refused.value.holder["port"] == 5991 and refused.value.reason_code == "WORKSHOP_HELD"
    assert isinstance(refused.value, ConfigError)  # api.py: one line, exit 2
    first.release()
    Hold.take(tmp_path, "api.py", 5992).release()  # free again once released


def test_holder_is_read_without_taking_the_hold(tmp_path):
    assert holder(tmp_path) is None  # no file yet
    with Hold.take(tmp_path, "api.py", 5991):
        info = holder(tmp_path)
        assert info["pid"] == os.getpid() and info["port"] == 5991 and info["what"] == "api.py"
        assert describe(info).startswith(f"pid {os.getpid()} (api.py on port 5991, since ")
    assert holder(tmp_path) is None  # the file stays; its pid holds nothing now


def test_a_process_killed_with_sigkill_leaves_no_stale_hold(tmp_path, holder_process):
    proc, child = holder_process
    folder = tmp_path / "w"
    info = holder(folder)
    assert info["pid"] == proc.pid and info["what"] == "test holder"
    with pytest.raises(WorkshopHeld, match=f"pid {proc.pid} "):
        Hold.take(folder, "api.py")
    proc.kill()
    proc.wait(10)
    # its child lives on, and did not inherit the hold (close-on-exec)
    os.kill(child, 0)
    assert holder(folder) is None
    Hold.take(folder, "api.py").release()


def test_a_file_naming_a_dead_or_reused_pid_names_nobody(tmp_path):
    (tmp_path / HOLD_FILE).write_text(json.dumps(
        {"pid": os.getpid(), "pid_start": 1, "what": "api.py", "host": os.uname().nodename}))
    assert holder(tmp_path) is None  # this pid, but not started at that time
    with Hold.take(tmp_path, "api.py") as hold:  # a leftover file is no lock
        assert hold.held


def test_what_holds_nothing_releases_idempotently(tmp_path):
    hold = Hold.take(tmp_path, "api.py")
    hold.release()
    hold.release()
    assert not hold.held
