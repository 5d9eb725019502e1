"""A snapshot of a failed page: its screenshot and its HTML, no secret in either (the
failure artifacts whose names and lookup are :mod:`integrations.artifacts`'s)."""

import html
import os
import re

from integrations.artifacts import artifact_stem

MASK = "********"

_PASSWORD_INPUT = re.compile(r"<input\b[^>]*\btype=[\"']?password[\"']?[^>]*>", re.IGNORECASE)
_VALUE_ATTR = re.compile(r"""\bvalue\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)
# ... and says whether the page may be photographed (see save_failure_artifacts)
_CLEAR_PASSWORDS_JS = """
document.querySelectorAll('input[type=password]').forEach(function (e) {
    e.value = ''; e.removeAttribute('value');
});
return document.readyState !== 'loading';
"""


def scrub_html(page_html, secrets):
    """``page_html`` with every secret masked and password inputs emptied.

    :param secrets: strings to mask (empty ones are skipped); their HTML-escaped forms
        are masked too
    """
    page_html = _PASSWORD_INPUT.sub(lambda m: _VALUE_ATTR.sub('value=""', m.group(0)), page_html)
    for secret in secrets:
        if not secret:
            continue
        for form in {secret, html.escape(secret), html.escape(secret, quote=False)}:
            page_html = page_html.replace(form, MASK)
    return page_html


def save_failure_artifacts(driver, artifact_dir, uniqueid, reason_code, secrets=()):
    """Save a PNG screenshot and the page HTML of a failure, with no secret in either.

    Password fields on the page are emptied before the screenshot; the HTML is
    scrubbed with :func:`scrub_html`.

    A page still loading gets no screenshot, only its HTML. An answer cut off before
    its ``<body>`` (a connection reset mid-answer) leaves a document "loading" for
    ever with nothing to paint: Chromium's screenshot then never returns, and
    chromedriver holds every later command of the session behind it -- measured: the
    browser answered nothing for minutes until it was replaced. A failure in a page
    that has not finished loading is mostly that page's failure to load anyway.

    :param driver: the WebDriver showing the failed page
    :param artifact_dir: folder to write into (created if missing)
    :param uniqueid: the order's id, part of the file names
    :param reason_code: the failure's reason code, part of the file names
    :param secrets: strings that must not appear in the files (the password)
    :returns: the list of paths written
    """
    os.makedirs(artifact_dir, exist_ok=True)
    base = artifact_stem(artifact_dir, uniqueid, reason_code)  # named as integrations.artifacts says
    paths = []
    loaded = driver.execute_script(_CLEAR_PASSWORDS_JS)
    if loaded and driver.save_screenshot(base + ".png"):
        paths.append(base + ".png")
    with open(base + ".html", "w", encoding="utf-8") as f:
        f.write(scrub_html(driver.page_source, secrets))
    paths.append(base + ".html")
    return paths
