"""Hand-written fakes for unit tests. End-to-end tests use the real thing."""

import threading

from integrations.base import (ErpState, Integration, LineOutcome, Probe, SeenLine, Written,
                               check_lines)


class FakeIntegration(Integration):
    """An ERP in memory. ``failures`` maps a uniqueid to a list of exceptions to raise,
    one per attempt, before it succeeds."""

    name = "fake"

    def __init__(self, failures=None, delay=0.0):
        super().__init__(config=None, logger=None)
        self.lines = []  # (worksheet, product_nr, amount, uniqueid)
        self.failures = {k: list(v) for k, v in (failures or {}).items()}
        self.delay = delay
        self.calls = []
        self.closed = 0
        self.credentials_seen = []
        self.started = threading.Event()
        self.visits = []  # (worksheet, [uniqueid, ...]) per add_lines call
        self.visit_error = None  # raised once by the next add_lines, e.g. a bug
        self.repairs = {}  # uniqueid -> what the read-back repaired for it (its Written)
        self.looks = []  # (worksheet, [uniqueid, ...]) per look
        self.look_failures = []  # exceptions the next looks answer with, one per look
        self.probes = []  # (worksheet, username) per probe
        self.probe_answers = []  # Probe results the next probes answer with; then ok
        self.trusted = 0  # times an operator's resume said to trust the screens

    def add_line(self, line, credentials):
        self.calls.append(line.uniqueid)
        self.credentials_seen.append(credentials)
        self.started.set()
        if self.delay:
            threading.Event().wait(self.delay)
        pending = self.failures.get(line.uniqueid)
        if pending:
            raise pending.pop(0)
        if any(uid == line.uniqueid for *_, uid in self.lines):
            return LineOutcome.EXISTED
        repaired = self.repairs.pop(line.uniqueid, None)
        if repaired:  # the read-back found what this list says, and repaired it
            self.lines.append((line.worksheet, line.product_nr, line.product_amount,
                               line.uniqueid))
            return Written(LineOutcome.CREATED, tuple(repaired))
        self.lines.append((line.worksheet, line.product_nr, line.product_amount, line.uniqueid))
        return LineOutcome.CREATED

    def add_lines(self, worksheet, lines, credentials):
        self.visits.append((worksheet, [line.uniqueid for line in lines]))
        if self.visit_error is not None:
            error, self.visit_error = self.visit_error, None
            raise error
        return super().add_lines(worksheet, lines, credentials)

    def trust_screens(self):
        self.trusted += 1

    can_look = True

    def look(self, worksheet, lines, credentials):
        self.looks.append((worksheet, [line.uniqueid for line in lines]))
        if self.look_failures:
            error = self.look_failures.pop(0)
            return {line.uniqueid: error for line in lines}
        seen = [SeenLine(str(product), amount, f"OilMat {uid}")
                for sheet, product, amount, uid in self.lines if sheet == worksheet]
        return {line.uniqueid: check_lines(seen, line) for line in lines}

    can_probe = True

    def probe(self, worksheet, credentials):
        self.probes.append((worksheet, credentials.username))
        if self.probe_answers:
            return self.probe_answers.pop(0)
        return Probe(ErpState.OK, "every screen as known", ("login", "worksheet"))

    def close(self):
        self.closed += 1
