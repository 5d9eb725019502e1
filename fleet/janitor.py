"""The parking's janitor, a thread of the management process (``manage.py up``): parked
Grid sessions nobody claimed are quit when something else needs their slots, or when
they grew stale (:mod:`integrations.browser.parking`).

Within the fleet a parked session never stands in a newcomer's way: an instance looks
into the parking before it asks the Grid for a new session. A request already in the
Grid's own queue does not look there: an instance whose request went out just before a
session was parked, or a client of the Grid outside the fleet (an admin's script). For
each such request this thread quits one parked session, within ``JANITOR_SECONDS``,
so the Grid can serve it; and it quits parked sessions older than ``PARK_SECONDS``
rather than leave their slots taken until the Grid's own session timeout.

Each sweep also publishes the Grid's state in the parking (``Parking.publish_pool_state``):
the instances read it there instead of each asking the Grid every second.
"""

import logging
import threading

from fleet import grid
from integrations.browser.parking import Parking
from integrations.browser.pool import end_session, pool_status

#: seconds between two sweeps, each of which reads the Grid's state once and publishes it
#: (within integrations.browser.parking.POOL_STATE_SECONDS)
JANITOR_SECONDS = 1.0

log = logging.getLogger("fleet.janitor")


def sweep(parking, url):
    """One look: publish the Grid's state for the instances (one read for the fleet),
    quit the stale parked sessions, and one parked session per request waiting in the
    Grid's queue. :returns: how many sessions were quit"""
    state = pool_status(url, timeout=1.0)
    parking.publish_pool_state(state)
    ended = parking.take_stale()
    if parking.parked():
        for _ in range(state["waiting"] if state else 0):
            record = parking.claim()
            if record is None:
                break
            ended.append(record)
    for record in ended:
        end_session(url, record["session_id"])
    return len(ended)


def start_janitor(settings):
    """Start the janitor's thread when the fleet parks sessions; :returns: the thread,
    or None (local browsers, or ``BROWSER_PARKING=off``)"""
    url = grid.status_url(settings)
    if settings.browser_park_dir is None or url is None:
        return None
    parking = Parking(settings.browser_park_dir)
    stop = threading.Event()

    def run():
        while not stop.wait(JANITOR_SECONDS):
            try:
                if ended := sweep(parking, url):
                    log.info("quit %d parked browser session(s) nobody claimed", ended)
            except Exception:  # the next sweep tries again; the management API goes on
                log.exception("the parking's janitor failed")
    thread = threading.Thread(target=run, name="parking-janitor", daemon=True)
    thread.start()
    return thread
