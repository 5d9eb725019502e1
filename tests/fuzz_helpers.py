"""Run schemathesis against a live server and collect what it finds.

Used by the fuzz tests of the instance (``test_fuzz_api.py``) and of the management API
(``test_fuzz_management.py``). Each operation of the OpenAPI document gets schemathesis'
three phases, as its pytest plugin runs them: the document's examples, the coverage
phase (boundary values and one negation per constraint, deterministic) and fuzzing
(``examples`` generated cases, valid and invalid). Every response is checked with
schemathesis' checks: no 5xx, status code and body as documented, invalid requests
refused, and valid requests not refused with 400 (``positive_data_acceptance``).

Failures are collected rather than raised at the first one, so one run reports every
kind of failure it met and the number of requests it made (``make fuzz`` records it).
This uses ``create_test`` from schemathesis' Hypothesis builder, the function behind
``schema.parametrize()``: the server here is started by a fixture, after collection,
so the pytest decorator cannot be used. Pinned: schemathesis 4.32.5.
"""

import os
import re
import time
from dataclasses import dataclass, field
from urllib.parse import unquote

import hypothesis
import requests
import schemathesis
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.hypothesis.builder import (HypothesisTestConfig,
                                                        HypothesisTestMode, create_test)

#: generated cases per operation in ``make test``; ``make fuzz`` sets FUZZ_EXAMPLES=2500
DEFAULT_EXAMPLES = 25


def fuzz_examples():
    """:returns: ``FUZZ_EXAMPLES`` from the environment, or :data:`DEFAULT_EXAMPLES`"""
    return int(os.environ.get("FUZZ_EXAMPLES", "") or DEFAULT_EXAMPLES)


def fuzz_seed():
    """:returns: ``FUZZ_SEED`` (default 0, so ``make test`` makes the same requests each
    run); ``FUZZ_SEED=random`` draws new cases each run"""
    raw = os.environ.get("FUZZ_SEED", "") or "0"
    return None if raw == "random" else int(raw)


@dataclass
class FuzzReport:
    """What one run did: requests made, and one entry per failing check."""

    label: str
    requests: int = 0
    seconds: float = 0.0
    failures: list = field(default_factory=list)  # (operation, check title, curl)

    def summary(self):
        return (f"{self.label}: {self.requests} requests in {self.seconds:.1f} s, "
                f"{len(self.failures)} failure(s)")

    def assert_clean(self):
        """Fail with the distinct failures (at most 20 shown), each with a curl to replay it."""
        distinct = {}
        for operation, title, curl in self.failures:
            distinct.setdefault((operation, title), curl)
        shown = "\n".join(f"- {op}: {title}\n    {curl}"
                          for (op, title), curl in list(distinct.items())[:20])
        assert not self.failures, f"{self.summary()}:\n{shown}"


def load_schema(base_url, headers, path="/openapi.json"):
    """Load the document from the running server (it may need the token to read it)."""
    schema = schemathesis.openapi.from_url(base_url + path, headers=headers, timeout=10)
    schema.config.update(base_url=base_url)
    return schema


def run(base_url, examples, *, schema_headers, headers=None, exclude=(), label="fuzz"):
    """Run every operation of the server's document, collecting failures.

    :param base_url: e.g. ``http://127.0.0.1:5001``
    :param examples: generated cases per operation (the fuzzing phase)
    :param schema_headers: headers that let us read ``/openapi.json``
    :param headers: headers sent with every generated request (e.g. the token); ``None``
        sends none, to fuzz the API as an anonymous client
    :param exclude: ``(method, path)`` pairs not to call, e.g. ``("PUT", "/kill")``
    :returns: a :class:`FuzzReport`; the cases are drawn with :func:`fuzz_seed`
    """
    schema = load_schema(base_url, schema_headers)
    seed = fuzz_seed()
    schema.config.generation.update(max_examples=examples, database="none", no_shrink=True)
    report = FuzzReport(label)
    session = requests.Session()
    skip = {(method.upper(), path) for method, path in exclude}
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in skip:
            continue
        _run_operation(operation, schema, session, headers, seed, report)
    report.seconds = time.monotonic() - started
    return report


def _mangled_path(case):
    """Whether schemathesis sends a path value other than the one it drew.

    Its quoting unquotes first ("to keep quoting idempotent"), so a drawn (or
    pool-captured) uniqueid ``%0Ech0b`` -- valid: printable ASCII -- goes out as
    ``%0Ech0b`` and reaches us as a control character, which we rightly refuse. Seen in
    CI, not locally (the pool's draws vary). Such a case says nothing about our API."""
    if case.meta is None or case.meta.generation.mode.name != "POSITIVE":
        return False
    return any(_CONTROL.search(unquote(str(value)))
               for value in (case.path_parameters or {}).values())


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _run_operation(operation, schema, session, headers, seed, report):
    def check(case):
        if _mangled_path(case):
            return
        report.requests += 1
        try:
            case.call_and_validate(session=session, headers=headers, timeout=10)
        except FailureGroup as group:
            for failure in group.exceptions:
                report.failures.append((operation.label, failure.title,
                                        case.as_curl_command(headers=headers)))
        except requests.RequestException as exc:  # the server hung up: as bad as a 500
            report.failures.append((operation.label, f"no answer: {exc}",
                                    case.as_curl_command(headers=headers)))

    settings = hypothesis.settings(
        schema.config.get_hypothesis_settings(operation=operation, phase="fuzzing"),
        deadline=None, derandomize=False, print_blob=False,
        suppress_health_check=list(hypothesis.HealthCheck))
    test = create_test(operation=operation, test_func=check, config=HypothesisTestConfig(
        project=schema.config, settings=settings, seed=seed,
        modes=[HypothesisTestMode.EXAMPLES, HypothesisTestMode.COVERAGE,
               HypothesisTestMode.FUZZING]))
    test()
