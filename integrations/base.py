"""The interface every ERP integration implements.

An integration writes order lines onto worksheets in one ERP system. The worker owns
the queue, retries and order records; the integration only talks to the ERP. It is
built once per instance and used from the worker thread alone, so it may keep state
(a browser, a logged-in session) between calls.

Contract, checked for every integration by ``tests/test_integration_contract.py``:

* :meth:`Integration.add_line` is idempotent on ``line.uniqueid``: before it adds a
  line it looks on the worksheet for a line carrying that id, and if it finds one it
  returns :attr:`LineOutcome.EXISTED` without adding another. A re-delivered order
  therefore never becomes a second line.
* Every write is verified: a line counts as written only when the worksheet, read back
  through the ERP's UI after the visit's writes, holds exactly one line carrying the
  uniqueid, with the order's product and amount (:func:`check_lines`). What is wrong is
  repaired through the UI where the ERP allows it -- extra lines carrying the uniqueid
  removed, a wrong line removed and written again -- and the result then says what was
  done (:class:`Written`); what cannot be repaired is a
  :class:`core.errors.LineUnverified`, never a silent success.
* Failures are raised as subclasses of :class:`core.errors.PermanentError` or
  :class:`core.errors.TransientError`, each with its reason code. Any other
  exception is treated as transient by the worker.
* An order whose write may have reached the ERP with nothing confirming or ruling it
  out (a save with no answer, a visit ended after the line was sent) gets a result
  marked :func:`core.errors.unconfirmed`. An integration that can read a worksheet
  without writing (:attr:`Integration.can_look`, :meth:`Integration.look`) lets the
  worker read it before such an order ends in ``error``.
* Every wait is bounded; no call blocks for ever.
* :meth:`Integration.close` releases every resource (the browser) and may be called
  at any time, also twice; the next :meth:`add_line` starts afresh.
"""

import abc
import enum
import re
from dataclasses import dataclass, field
from decimal import Decimal

from core.credentials import Credentials

__all__ = ["Credentials", "ErpState", "Integration", "IntegrationConfig", "LineCheck",
           "LineOutcome", "Option", "OrderLine", "Probe", "SeenLine", "Written", "check_lines",
           "lines_carrying", "outcome_of", "resolve_options"]


class LineOutcome(str, enum.Enum):
    CREATED = "created"  # the line was added by this call
    EXISTED = "existed"  # a line with this uniqueid was already on the worksheet


class ErpState(str, enum.Enum):
    """What the last probe (:meth:`Integration.probe`) found, for ``/alive``'s ``erp``."""

    OK = "ok"  # every screen checked is as the integration knows it
    CHANGED = "changed"  # a screen is not: ``detail`` names it and what differs
    UNREACHABLE = "unreachable"  # the ERP did not answer (down, timing out, no browser)
    LOGIN_FAILED = "login_failed"  # the ERP refused the probe's login
    UNKNOWN = "unknown"  # not checked yet


@dataclass(frozen=True)
class Probe:
    """The result of one probe.

    :param state: an :class:`ErpState`
    :param detail: in words: what was checked, or what is missing or different where
    :param checked: the screens that passed, in the order they were checked
    :param artifacts: paths of the screenshot and page saved for a changed screen
    """

    state: ErpState
    detail: str = ""
    checked: tuple = ()
    artifacts: tuple = ()


@dataclass(frozen=True)
class OrderLine:
    """One pumped-oil order, as the ERP needs it."""

    uniqueid: str
    worksheet: str
    product_nr: str
    product_amount: Decimal

    @property
    def text(self):
        """The line text written into the ERP; it carries the uniqueid for idempotency."""
        return f"OilMat {self.uniqueid}"


@dataclass(frozen=True)
class Written:
    """A line that is on its worksheet exactly once, with what it took to get there.

    :param outcome: the :class:`LineOutcome`
    :param repairs: what was repaired on the worksheet, in words for the order's history
        (e.g. ``"removed 1 duplicate line"``); empty when nothing was
    """

    outcome: LineOutcome
    repairs: tuple = ()


def outcome_of(result):
    """``(LineOutcome, repairs)`` of a successful result: a :class:`LineOutcome` or a
    :class:`Written`."""
    if isinstance(result, Written):
        return result.outcome, tuple(result.repairs)
    return LineOutcome(result), ()


@dataclass(frozen=True)
class SeenLine:
    """A line as the ERP's UI shows it, read back to verify a write.

    :param product_nr: the product as the ERP shows it (its number or code)
    :param amount: the quantity as a :class:`~decimal.Decimal`
    :param text: the line's text (erp_sim) or description (Tryton)
    :param ref: what the ERP's page objects need to find the line again (a row id);
        opaque to everyone else
    """

    product_nr: str
    amount: Decimal
    text: str
    ref: object = None


def lines_carrying(seen, uniqueid):
    """The lines of ``seen`` whose text carries ``uniqueid`` as a whole word (so that
    order ``12`` is not found in ``OilMat 123``)."""
    pattern = re.compile(rf"(?<!\S){re.escape(uniqueid)}(?!\S)")
    return [one for one in seen if pattern.search(one.text or "")]


@dataclass(frozen=True)
class LineCheck:
    """What a worksheet read back says about one order's line.

    ``keep`` is the one right line (or ``None``), ``extra`` the further right lines
    (duplicates), ``wrong`` the lines carrying the uniqueid with another product or
    amount. The worksheet is as it must be when :attr:`ok`.
    """

    keep: SeenLine | None
    extra: tuple
    wrong: tuple

    @property
    def ok(self):
        return self.keep is not None and not self.extra and not self.wrong

    @property
    def missing(self):
        return self.keep is None and not self.wrong

    def shown(self):
        """What the worksheet shows of the order's line, in words (for logs and errors)."""
        found = ([self.keep] if self.keep else []) + list(self.extra) + list(self.wrong)
        if not found:
            return "no line carrying it"
        return ", ".join(f"{one.product_nr or '(no product)'} x {one.amount}" for one in found)

    def repairs(self):
        """What removing :attr:`extra` and :attr:`wrong` (and writing the line again
        when no right one is left) amounts to, in words."""
        done = []
        if self.extra:
            done.append(f"removed {len(self.extra)} duplicate line"
                        f"{'s' if len(self.extra) > 1 else ''}")
        if self.wrong:
            done.append(f"removed {len(self.wrong)} wrong line{'s' if len(self.wrong) > 1 else ''}"
                        + ("" if self.keep else " and wrote it again"))
        return done


def check_lines(seen, line):
    """Check the worksheet's lines ``seen`` (:class:`SeenLine`) for ``line``.

    :returns: a :class:`LineCheck`
    """
    want = (str(line.product_nr).strip(), Decimal(str(line.product_amount)))
    right, wrong = [], []
    for one in lines_carrying(seen, line.uniqueid):
        # a comment line shows no product and no quantity: None, never equal
        same = (one.product_nr is not None and one.amount is not None
                and (str(one.product_nr).strip(), Decimal(str(one.amount))) == want)
        (right if same else wrong).append(one)
    return LineCheck(right[0] if right else None, tuple(right[1:]), tuple(wrong))


@dataclass(frozen=True)
class IntegrationConfig:
    """What an integration needs from the instance's settings."""

    erp_url: str
    artifact_dir: str  # where failure screenshots and page HTML go
    page_load_timeout: float = 20.0  # seconds for one page load
    wait_timeout: float = 10.0  # seconds for one element or page state
    selenium_remote_url: str = ""  # use webdriver.Remote at this URL when set
    browser_park_dir: str = ""  # with a remote pool: sessions shared with the fleet (parking)
    recycle_after_orders: int = 200  # a fresh browser after this many orders (0: never)
    browser_wait_seconds: float = 60.0  # a new session may wait this long for a pool's slot
    browser_idle_seconds: float = 60.0  # a browser is given back after this long without work
    browser_pool_grace_seconds: float = 2.0  # a pooled one sooner when others need its slot
    chromium_binary: str = "/usr/bin/chromium"
    chromedriver_path: str = "/usr/bin/chromedriver"
    options: dict = field(default_factory=dict)  # the ERP's own options, see Option


@dataclass(frozen=True)
class Option:
    """A setting one ERP needs and others do not (Tryton: its database name).

    An ERP package declares its options as ``OPTIONS = (Option(...), ...)`` in its
    ``__init__`` (which must import nothing heavy: the instance checks options at start,
    before any browser code is loaded). The instance reads each from the environment
    variable ``ERP_OPTION_<NAME>``; the fleet stores and hands them on without knowing
    any ERP, sealing the ``secret`` ones like passwords.
    """

    name: str  # lower case; ERP_OPTION_<NAME upper case> in the environment
    default: str | None = None  # None: the option is required
    pattern: str = r"[^\x00-\x1f\x7f]{1,200}"  # what a value must match, whole
    secret: bool = False  # sealed at rest, masked in logs, never shown
    help: str = ""  # one line for --help, errors and the docs

    @property
    def env_name(self):
        return "ERP_OPTION_" + self.name.upper()

    def check(self, value):
        """:returns: ``value``
        :raises ValueError: saying which rule failed (never repeating a secret value)"""
        if not re.fullmatch(self.pattern, value):
            shown = "" if self.secret else f" {value!r}"
            raise ValueError(f"option {self.name}:{shown} does not match {self.pattern}"
                             + (f" ({self.help})" if self.help else ""))
        return value


def resolve_options(declared, given):
    """Check ``given`` (``{name: value}``) against the ``declared`` options.

    :returns: every declared option's value, defaults filled in
    :raises ValueError: for an unknown option, a missing required one or a bad value
    """
    known = {option.name: option for option in declared}
    unknown = sorted(set(given) - set(known))
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise ValueError(f"unknown ERP option(s) {', '.join(unknown)}; this ERP takes: {allowed}")
    values = {}
    for name, option in known.items():
        value = given.get(name, option.default)
        if value is None:
            raise ValueError(f"option {name} is required ({option.env_name})")
        values[name] = option.check(value)
    return values


class Integration(abc.ABC):
    """The interface: one subclass per ERP system, registered by ``name``.

    Two methods must be written (:meth:`add_line`, :meth:`close`); :meth:`add_lines`
    has a default that an ERP overrides to write a worksheet's lines in one visit.
    """

    #: the value of ``ERP_SYSTEM`` that selects this integration
    name = None

    def __init__(self, config, logger):
        """
        :param config: an :class:`IntegrationConfig`
        :param logger: a :class:`logging.Logger` for this workshop's orderline log
        """
        self.config = config
        self.log = logger

    @abc.abstractmethod
    def add_line(self, line, credentials):
        """Make sure ``line`` is on its worksheet exactly once.

        :param line: an :class:`OrderLine`
        :param credentials: the :class:`Credentials` to log in with
        :returns: a :class:`LineOutcome`
        :raises core.errors.IntegrationError: on failure, with a reason code
        """
        raise NotImplementedError  # abstract

    def add_lines(self, worksheet, lines, credentials):
        """Write several lines onto one worksheet, ideally in one visit to it.

        The worker groups orders waiting for the same worksheet (and the same login)
        and hands them over together. Each line gets its own result: one line's
        unknown product must not fail the others. Idempotent per line, like
        :meth:`add_line`.

        This default visits the worksheet once per line; an integration that can do
        better (read the lines once, add them one after another on the same page)
        overrides it.

        :param worksheet: the worksheet number all ``lines`` are for
        :param lines: a list of :class:`OrderLine`, in queue order
        :param credentials: the :class:`Credentials` to log in with
        :returns: ``{uniqueid: LineOutcome or IntegrationError}`` for every line
        """
        from core.retry import as_bridge_error

        results = {}
        for line in lines:
            try:
                results[line.uniqueid] = self.add_line(line, credentials)
            except Exception as exc:  # unforeseen: transient, by the one retry policy
                results[line.uniqueid] = as_bridge_error(exc)
        return results

    #: whether :meth:`look` reads worksheets. One that cannot leaves it False: an order
    #: whose write may have reached the ERP then ends in ``error`` unread.
    can_look = False

    def look(self, worksheet, lines, credentials):
        """Read ``worksheet`` and say, for each of ``lines``, what it holds -- writing,
        deleting and repairing nothing.

        The worker asks before an order whose write may be on the worksheet
        (:func:`core.errors.unconfirmed`) would end in ``error``.

        :returns: ``{uniqueid: LineCheck or IntegrationError}`` for every line
        """
        raise NotImplementedError(f"{type(self).__name__} cannot read a worksheet")

    #: whether :meth:`probe` checks the ERP's screens. One that cannot stays ``unknown``
    #: in ``/alive``, and its orders are never held for a changed screen.
    can_probe = False

    def probe(self, worksheet, credentials):
        """Check, reading only, every screen the integration relies on: log in, find
        and open ``worksheet``, open the add-line form and leave it unsaved, read the
        lines. Nothing is ever written, deleted or saved.

        :param worksheet: the worksheet to open, or None: check as far as possible
            without one (login, search) and say so in ``detail``
        :param credentials: the :class:`Credentials` to log in with
        :returns: a :class:`Probe`. A worksheet that does not exist or is closed is not
            a changed screen: ``ok``, with ``detail`` saying exactly that.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot probe its ERP")

    def trust_screens(self):
        """An operator resumed a held workshop (``PUT /start_worker``): forget what made
        the integration doubt its reads (lines verified before that a sheet no longer
        shows, e.g. because people changed it). Called from a request thread; nothing to
        forget by default."""

    @abc.abstractmethod
    def close(self):
        """Release the browser and any other resource. Safe to call at any time."""

    # -- its life beside the worker: what an ERP with nothing to keep need not write ----
    # The worker builds one integration per instance, on the first order, and keeps it
    # until it stops (then :meth:`close`). Between orders it says only how long it has
    # had no work (:meth:`idle`) and how long it is about to wait (:meth:`pause`); when
    # to let go of a browser is the integration's business (integrations/browser/life.py).

    def attach(self, stop, observer):
        """Called once by the worker before the first call.

        :param stop: a :class:`threading.Event` set when the worker stops: a wait for a
            resource (a slot of a browser pool) ends when it is set
        :param observer: a :class:`service.metrics.Observer`-like object to tell of a
            browser started (``observer.browser_started()``)
        """

    @property
    def holding(self):
        """Whether it holds something (a browser) that it lets go of when idle."""
        return False

    @property
    def browser_state(self):
        """For ``/alive``: ``none``, ``starting``, ``waiting`` (for a slot of a browser
        pool) or ``ready`` (the worker tells ``in_use`` from ``idle``). Read from other
        threads."""
        return "ready" if self.holding else "none"

    def idle(self, seconds):
        """The worker has had no work for ``seconds``: let go of what is held when its
        rules say so."""

    def pause(self, seconds):
        """The worker is about to wait ``seconds`` before its next call (a retry's
        backoff)."""

    def poll_seconds(self):
        """How soon the worker, idle, should call :meth:`idle` again; None: no wish."""
        return None
