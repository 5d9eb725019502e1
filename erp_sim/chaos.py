"""Chaos mode: the ways a real ERP misbehaves, each off unless configured.

* latency -- every response waits ``uniform(min, max)`` seconds first;
* error rate -- that share of requests is answered with an HTTP 500 or 502 page
  (JSON for the SPA's calls). Half of them fail *before* the request is handled and
  half *after* it (a line may be stored and still answered with a 500) -- the case
  that tests exactly-once;
* re-render -- the page replaces its own content shortly after it loads (the page's
  script does it; see ``base.html`` and ``static/spa.js``), so held elements go stale;
* slow save -- a line is stored at once, its confirmation comes ``slow_save`` later;
* locks -- a worksheet open or save finds the sheet being edited by another user for
  a moment (:data:`LOCK_SECONDS`) with that share of chance.

``/_sim/*`` is never touched: tests read the truth through it. One seedable
:class:`random.Random` per app makes a run repeatable (given the same requests).
"""

import random
import threading
import time

from flask import current_app, g, request

from erp_sim.errors import error_response

LOCKED = "Worksheet {} is being edited by another user"
#: how long a lock by "another user" lasts, seconds (min, max)
LOCK_SECONDS = (0.2, 1.0)
#: when a re-rendering page replaces its content, milliseconds after it loaded (min, max)
RERENDER_MS = (20, 300)


class Chaos:
    """The chaos of one app: its random numbers and the worksheets locked right now."""

    def __init__(self, config):
        self.config = config
        self._random = random.Random(config.seed)
        self._mutex = threading.Lock()
        self._locked_until = {}  # worksheet number -> time.monotonic() the lock ends

    def chance(self, share):
        """True with probability ``share``."""
        if share <= 0:
            return False
        with self._mutex:
            return self._random.random() < share

    def uniform(self, low, high):
        with self._mutex:
            return self._random.uniform(low, high)

    def choice(self, options):
        with self._mutex:
            return self._random.choice(options)

    def locked(self, number):
        """Whether another user holds worksheet ``number`` now (and maybe start to)."""
        if self.config.lock_rate <= 0:
            return False
        now = time.monotonic()
        with self._mutex:
            if self._locked_until.get(number, 0) > now:
                return True
            if self._random.random() < self.config.lock_rate:
                self._locked_until[number] = now + self._random.uniform(*LOCK_SECONDS)
                return True
        return False

    def rerender_ms(self):
        """Milliseconds after load at which the page replaces its content, or 0 (never)."""
        return int(self.uniform(*RERENDER_MS)) if self.config.rerender else 0


def get_chaos():
    return current_app.extensions["erp_sim_chaos"]


def locked_message(number):
    """The lock message if worksheet ``number`` is locked by another user, else ``None``."""
    return LOCKED.format(number) if get_chaos().locked(number) else None


def confirm_slowly():
    """Called after a line is stored: the confirmation takes ``slow_save`` seconds."""
    delay = current_app.config["ERP_SIM"].slow_save
    if delay:
        time.sleep(delay)


def _exempt():
    return request.blueprint == "sim"


def _before_request():
    if _exempt():
        return None
    chaos, config = get_chaos(), current_app.config["ERP_SIM"]
    if config.latency:
        time.sleep(chaos.uniform(*config.latency))
    if chaos.chance(config.error_rate):
        code = chaos.choice((500, 502))
        if chaos.chance(0.5):
            return error_response(code)  # before: nothing was done
        g.chaos_late_error = code  # after: the work is done, the answer is lost
    return None


def _after_request(response):
    code = g.pop("chaos_late_error", None)
    return error_response(code) if code else response


def init_app(app):
    app.extensions["erp_sim_chaos"] = Chaos(app.config["ERP_SIM"])
    # Registered before the login check, so that a failing proxy fails logged-in and
    # anonymous requests alike.
    app.before_request(_before_request)
    app.after_request(_after_request)
    app.jinja_env.globals["rerender_ms"] = lambda: get_chaos().rerender_ms()
