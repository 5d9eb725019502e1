"""Browser primitives every Selenium integration shares, one module per job:

* :mod:`.session` -- :class:`Browser`: one Chromium (local, or remote through
  ``selenium_remote_url``), started and quit, with every page load and wait bounded
  and the page actions the ERPs' page objects are built from;
* :mod:`.errors` -- :func:`map_webdriver_error`, the one table that turns Selenium's
  exceptions into the bridge's (:data:`BROWSER_FAILURES` is what it takes), and
  :func:`error_page_reason` (a browser error page or an HTTP 5xx page; :func:`summary_reason`
  judges the :data:`PAGE_SUMMARY_JS` a wait's own script returned);
* :mod:`.artifacts` -- :func:`save_failure_artifacts`: screenshot + page HTML of a
  failure, password scrubbed;
* :mod:`.orphans` -- :func:`reap_orphaned_browsers`: ends browsers left behind by a
  process killed with -9;
* :mod:`.kept` -- :class:`KeptBrowserIntegration`: one browser kept across visits
  (reused, recycled, replaced after a crash), every line answered when a visit ends
  early, the failed page saved -- the ERP's subclass writes the visit.

Nothing here knows any ERP: page objects and flows live with their integration.
"""

import os

# Selenium Manager would otherwise try the network to find a driver (and can hang for
# minutes on a network that drops packets); we always name the binaries ourselves.
os.environ.setdefault("SE_OFFLINE", "true")

from integrations.browser.artifacts import MASK, save_failure_artifacts, scrub_html  # noqa: E402
from integrations.browser.errors import (BROWSER_FAILURES, PAGE_SUMMARY_JS,  # noqa: E402
                                         error_page_reason, map_webdriver_error, summary_reason)
from integrations.browser.orphans import (PROFILE_PREFIX, process_running,  # noqa: E402
                                          reap_orphaned_browsers)
from integrations.browser.session import (POLL_FREQUENCY, STALE_ATTEMPTS, Browser,  # noqa: E402
                                          css_selector, retry_stale, still_on_js)
from integrations.browser.kept import KeptBrowserIntegration  # noqa: E402

__all__ = ["BROWSER_FAILURES", "MASK", "PAGE_SUMMARY_JS", "POLL_FREQUENCY", "PROFILE_PREFIX", "STALE_ATTEMPTS",
           "Browser", "KeptBrowserIntegration", "css_selector", "error_page_reason", "map_webdriver_error",
           "process_running", "reap_orphaned_browsers", "retry_stale",
           "save_failure_artifacts", "scrub_html", "still_on_js", "summary_reason"]
