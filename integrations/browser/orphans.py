"""Browsers of dead processes: a process killed with -9 cannot quit its browser."""

import glob
import json
import os
import shutil
import signal
import tempfile

PROFILE_PREFIX = "bridge-chromium-"
OWNER_FILE = "bridge-owner.json"


def write_owner(profile_dir, chromedriver_pid):
    with open(os.path.join(profile_dir, OWNER_FILE), "w") as f:
        json.dump({"owner": os.getpid(), "chromedriver": chromedriver_pid}, f)


def process_running(pid):
    """Whether ``pid`` is a live process (a zombie is not). Linux: reads ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def cmdline(pid):
    """The command line of ``pid`` (empty when it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def reap_orphaned_browsers():
    """End the browsers of bridge processes that died without quitting them.

    A process killed with SIGKILL cannot quit its browser: chromedriver and Chromium
    live on (about 190 MiB each) and so does the profile. Each local browser notes its
    owner's pid in its profile; a profile whose owner is gone is reaped here -- its
    chromedriver (checked by name, since pids are reused) and every process started
    with that profile -- and then removed. Linux only; elsewhere it does nothing.
    """
    if not os.path.isdir("/proc"):
        return
    for profile in glob.glob(os.path.join(tempfile.gettempdir(), PROFILE_PREFIX + "*")):
        try:
            with open(os.path.join(profile, OWNER_FILE)) as f:
                owner = json.load(f)
        except (OSError, ValueError):
            continue  # being set up right now, or not ours
        if process_running(owner["owner"]):
            continue
        driver_pid = owner["chromedriver"]
        victims = [driver_pid] if "chromedriver" in cmdline(driver_pid) else []
        flag = f"--user-data-dir={profile}"
        victims += [int(pid) for pid in os.listdir("/proc")
                    if pid.isdigit() and flag in cmdline(pid)]
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(profile, ignore_errors=True)
