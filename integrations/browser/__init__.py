"""Browser code every Selenium integration shares, one module per job:

* :mod:`.life` -- the browser's life, in one place: getting one (a local Chromium, a
  session of a Selenium Grid, or a parked one claimed from the fleet's parking), keeping
  it between visits, and giving it back (quit, or wiped and parked) when the pool's
  state or the idle time says so; :class:`~.life.BrowserLife` per instance;
* :mod:`.pool` -- the state of a Selenium Grid, read from its own endpoints (the fleet
  reads it too), and the end of one of its sessions;
* :mod:`.parking` -- idle Grid sessions handed from workshop to workshop (files only);
* :mod:`.session` -- :class:`~.session.PageActions`: the page actions (with every page
  load and wait bounded) the ERPs' page objects are built from;
* :mod:`.errors` -- :func:`~.errors.map_webdriver_error`, the one table that turns
  Selenium's exceptions into the bridge's;
* :mod:`.snapshot` -- :func:`~.snapshot.save_failure_artifacts`: screenshot + page
  HTML of a failure, password scrubbed;
* :mod:`.orphans` -- :func:`~.orphans.reap_orphaned_browsers`: ends browsers left behind
  by a process killed with -9;
* :mod:`.kept` -- :class:`~.kept.KeptBrowserIntegration`: visits through the kept
  browser, every line answered when a visit ends early, the failed page saved -- the
  ERP's subclass writes the visit.

Nothing here knows any ERP: page objects and flows live with their integration. This
file imports nothing: the fleet reads the pool's state (:mod:`.pool`, standard library
only) without loading Selenium. Import a name from the module that defines it; the
names below are found there on first use, for integrations written before the split.
"""

import importlib
import os

# Selenium Manager would otherwise try the network to find a driver (and can hang for
# minutes on a network that drops packets); we always name the binaries ourselves.
os.environ.setdefault("SE_OFFLINE", "true")

#: name -> the module that defines it (see the docstring)
_DEFINED_IN = {
    "MASK": "snapshot", "save_failure_artifacts": "snapshot", "scrub_html": "snapshot",
    "BROWSER_FAILURES": "errors", "PAGE_SUMMARY_JS": "errors", "error_page_reason": "errors",
    "map_webdriver_error": "errors", "summary_reason": "errors",
    "PROFILE_PREFIX": "orphans", "process_running": "orphans", "reap_orphaned_browsers": "orphans",
    "POLL_FREQUENCY": "session", "STALE_ATTEMPTS": "session", "css_selector": "session",
    "retry_stale": "session", "still_on_js": "session",
    "Browser": "life", "BrowserLife": "life",
    "KeptBrowserIntegration": "kept",
}


def __getattr__(name):
    if name not in _DEFINED_IN:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_DEFINED_IN[name]}"), name)
