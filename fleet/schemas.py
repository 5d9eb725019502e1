"""What an integration may be configured with, and what the management API answers.

``manage.py`` and the management API both build these models, so a bad URL or port gets
the same one-line answer from either; :mod:`fleet.openapi` publishes the same models, so
the document says exactly what is accepted. Each rule on a text field is written once, as
a regular expression: the validator matches it and the JSON schema carries it.

Nothing typed here reaches supervisor's configuration files (see
:mod:`fleet.supervisor_conf`), so the rules are about what can run, not about escaping.
"""

import re
import sys
import unicodedata
from typing import Annotated, Literal, Optional

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field,
                      StringConstraints, TypeAdapter, ValidationError, ValidationInfo, WithJsonSchema,
                      field_validator, model_validator)

from service.fields import IDENTIFIER_PATTERN
from fleet.errors import InvalidRegistration
from core import checks
from core.names import normal_name
from fleet import states
import integrations
from integrations import AVAILABLE, options_of
from integrations.base import resolve_options

WORKSHOP_MAX = 100
SECRET_MAX = 1000
URL_MAX = 2000


def _char_class(codepoints):
    """Code points -> the inside of a regex class, in ranges. ``\\uXXXX`` escapes read the
    same in Python, ECMA-262 and the Rust engine schemathesis validates with; the few
    characters above U+FFFF are written as themselves."""
    cps = sorted(codepoints)
    ranges, start = [], None
    for i, cp in enumerate(cps):
        start = cp if start is None else start
        if i + 1 == len(cps) or cps[i + 1] != cp + 1:
            ranges.append((start, cp))
            start = None

    def one(cp):
        return f"\\u{cp:04x}" if cp < 0x10000 else chr(cp)
    return "".join(one(a) if a == b else f"{one(a)}-{one(b)}" for a, b in ranges)


_ALL = range(sys.maxunicode + 1)
_SURROGATES = range(0xD800, 0xE000)
#: what str.split() splits on, so what normal_name() collapses
_SPACE = {cp for cp in _ALL if chr(cp).isspace()}
#: control characters that are not whitespace, and invisible format characters (zero-width
#: space, BOM, bidi overrides): they make two names look alike, so names may not hold them
_INVISIBLE = {cp for cp in _ALL if cp not in _SPACE and cp not in _SURROGATES
              and unicodedata.category(chr(cp)) in ("Cc", "Cf")}

_WS = _char_class(_SPACE)
_BAD_IN_NAME = _char_class(_INVISIBLE) + "/\\\\"  # no path separators
#: a workshop name: not blank, not "." or "..", not starting with "-" (an option on a
#: command line), no invisible characters; whitespace around and inside is normalised
WORKSHOP_PATTERN = (f"[{_WS}]*(?![.]{{1,2}}[{_WS}]*$)"
                    f"[^{_WS}{_BAD_IN_NAME}\\-][^{_BAD_IN_NAME}]*")
#: a URL (the ERP's, a webhook's) and an ERP login: the instance's own rules, one check
#: for both (core/checks.py)
URL_PATTERN = checks.URL_PATTERN
SECRET_PATTERN = checks.SECRET_PATTERN
#: the instance's API token travels in an HTTP header: visible ASCII only
TOKEN_PATTERN = "[!-~]{16,200}"
_B64 = "[A-Za-z0-9+/]"
#: a Standard Webhooks secret: whsec_ and 24 to 64 bytes in padded base64 (what
#: service.webhooks.parse_secret accepts; it also takes the unpadded form)
WEBHOOK_SECRET_PATTERN = (f"whsec_(?:(?:{_B64}{{4}}){{8,21}}(?:{_B64}{{2}}==)?"
                          f"|(?:{_B64}{{4}}){{8,20}}{_B64}{{3}}=)")

_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(pattern, check, description, min_length=0, max_length=None):
    """A text field: its pattern (anchored) both validates and goes into the JSON schema."""
    compiled = re.compile(pattern)

    def validate(value):
        if _SURROGATE.search(value):  # cannot be stored or sealed as UTF-8; no pattern says so
            raise ValueError("must be valid Unicode text")
        if not compiled.fullmatch(value):
            raise ValueError(check(value))
        return value

    schema = {"type": "string", "pattern": f"^{pattern}$", "minLength": min_length,
              "description": description}
    if max_length is not None:
        schema["maxLength"] = max_length
    return (StringConstraints(min_length=min_length, max_length=max_length),
            AfterValidator(validate), WithJsonSchema(schema))


def _name_problem(value):
    bad = next((c for c in value if ord(c) in _INVISIBLE or c in "/\\"), None)
    if bad is not None:
        return f"must not contain U+{ord(bad):04X} {unicodedata.name(bad, 'control character')}"
    name = normal_name(value)
    if not name:
        return "must not be blank"
    if name.startswith("-"):
        return "must not start with '-' (it would read as a command-line option)"
    return "must not be '.' or '..'"


def _token_problem(_value):
    return "must be 16 to 200 visible ASCII characters"


Workshop = Annotated[str, *_text(
    WORKSHOP_PATTERN, _name_problem, "the workshop's name as OilMat knows it; spaces are "
    "normalised (NBSP, runs of spaces), invisible characters refused", 1, WORKSHOP_MAX),
    AfterValidator(normal_name)]


def _known_erp(value):
    # checked against the registry of ERPs when validating, not when this module was
    # imported, so an ERP registered later (a test's fake one) is known too
    if value not in integrations.AVAILABLE:
        raise ValueError(f"unknown ERP system {value!r}; known: {', '.join(sorted(integrations.AVAILABLE))}")
    return value


ErpSystem = Annotated[str, AfterValidator(_known_erp),
                      WithJsonSchema({"type": "string", "enum": sorted(AVAILABLE),
                                      "description": "the ERP's integration under integrations/"})]
Url = Annotated[str, *_text(URL_PATTERN, checks.url_problem, "base URL of the workshop's ERP",
                            1, URL_MAX), AfterValidator(lambda url: url.rstrip("/"))]
PORT_MIN, PORT_MAX = 1024, 65535
Port = Annotated[int, BeforeValidator(lambda v: _whole(v)), Field(ge=PORT_MIN, le=PORT_MAX),
                 WithJsonSchema({"type": "integer", "minimum": PORT_MIN, "maximum": PORT_MAX})]
Secret = Annotated[str, *_text(SECRET_PATTERN, checks.secret_problem, "ERP login", 0, SECRET_MAX)]
Token = Annotated[str, *_text(TOKEN_PATTERN, _token_problem, "the instance's API token",
                              16, 200)]
WebhookUrl = Annotated[str, *_text(
    f"(?:{URL_PATTERN})?", checks.url_problem, "WEBHOOK_URL: where the instance POSTs every order "
    "event (Standard Webhooks); in a change, \"\" removes the webhook", 0, URL_MAX)]
WebhookUrlSet = Annotated[str, *_text(
    URL_PATTERN, checks.url_problem, "WEBHOOK_URL: where the instance POSTs every order event "
    "(Standard Webhooks); with webhook_secret", 1, URL_MAX)]
WebhookSecret = Annotated[str, *_text(
    WEBHOOK_SECRET_PATTERN, lambda _v: "must be whsec_ followed by a key of 24 to 64 bytes in "
    "base64", "WEBHOOK_SECRET: signs every delivery; sealed at rest, never shown", 38, 94)]

#: the worksheet an instance's ERP probe opens (service/settings.py's PROBE_WORKSHEET)
ProbeWorksheet = Annotated[str, *_text(
    f"(?:{IDENTIFIER_PATTERN.strip('^$')})?",
    lambda _v: "must be a worksheet number: 1-32 letters, digits or . _ / - starting with a "
               "letter or digit, or \"\"", "PROBE_WORKSHEET: the worksheet the ERP probe opens, "
    "reading only; \"\" for the last one written to", 0, 32)]


#: an option's name as an ERP declares it; ERP_OPTION_<NAME in upper case> for the instance
OPTION_NAME_PATTERN = "[a-z][a-z0-9_]{0,62}"
OPTION_VALUE_MAX = 1000
#: what answers show instead of a secret option's value
MASK = "********"

OptionName = Annotated[str, *_text(OPTION_NAME_PATTERN, lambda _v: "must be a lower-case option "
                                   "name (letters, digits, _), like database", "option name", 1, 63)]
#: the ERP's own pattern is checked against its declaration (:func:`check_options`); here
#: only what any value must be: it travels in an environment variable, which holds no NUL
OptionValue = Annotated[str, *_text("[^\\u0000]*", lambda _v: "must not contain a NUL character",
                                    "an option's value; in a change, \"\" removes it (the "
                                    "ERP's default applies)", 0, OPTION_VALUE_MAX)]
Options = Annotated[dict[OptionName, OptionValue], WithJsonSchema({
    "type": "object", "propertyNames": {"pattern": f"^{OPTION_NAME_PATTERN}$"},
    "additionalProperties": TypeAdapter(OptionValue).json_schema(),
    "description": "the ERP's own options, {name: value}"})]


def check_options(erp_system, options):
    """Check ``options`` (``{name: value}``, as stored: without defaults) against what
    ``erp_system`` declares (see :class:`integrations.base.Option`).

    :raises InvalidRegistration: ``options: <which option, which rule>``; a secret value is
        never repeated
    """
    try:
        resolve_options(options_of(erp_system), options)
    except ValueError as exc:
        raise InvalidRegistration(f"options: {exc}") from None
    return options


def secret_options(erp_system):
    """:returns: the names of the options ``erp_system`` declares secret (sealed at rest,
    masked in answers)"""
    return frozenset(option.name for option in options_of(erp_system) if option.secret)


def _declared_options_schema(declared):
    """JSON schema of the ``options`` one ERP takes: its names, patterns and required ones."""
    return {"type": "object", "additionalProperties": False,
            "properties": {o.name: {"type": "string", "pattern": f"^(?:{o.pattern})$",
                                    "maxLength": OPTION_VALUE_MAX,
                                    "description": o.help + (" (secret)" if o.secret else "")}
                           for o in declared},
            **({"required": required} if (required := [o.name for o in declared
                                                       if o.default is None]) else {})}


def _options_per_erp(schema):
    """Say which options each ERP takes: one variant per ERP (its ``erp_system`` and its
    ``options``) beside the common properties, so the document is as strict as
    :func:`check_options`."""
    variants = []
    for erp in sorted(AVAILABLE):
        options = _declared_options_schema(options_of(erp))
        variant = {"properties": {"erp_system": {"const": erp}, "options": options}}
        if "required" in options:
            variant["required"] = ["options"]
        else:
            variant["properties"]["options"] = {"anyOf": [options, {"type": "null"}]}
        variants.append(variant)
    schema["anyOf"] = variants


def _whole(value):
    # JSON Schema counts 5001.0 as an integer, so the API does too; 5001.5 and "5001" stay out
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _spec_schema(schema):
    """The options per ERP (:func:`_options_per_erp`), and a webhook's URL and secret
    only together."""
    _options_per_erp(schema)
    schema["dependentRequired"] = {"webhook_url": ["webhook_secret"],
                                   "webhook_secret": ["webhook_url"]}


class _Strict(BaseModel):
    # strict: "5001" is not a port and 1 is not true -- what the document says is what counts
    model_config = ConfigDict(extra="forbid", strict=True)


class RegistrationSpec(_Strict):
    """A new integration (``manage.py add``, ``POST /integrations``)."""

    model_config = ConfigDict(json_schema_extra=_spec_schema)

    workshop: Workshop
    erp_system: ErpSystem
    erp_url: Url
    port: Port
    username: Optional[Secret] = None
    password: Optional[Secret] = None
    active: bool = True
    api_token: Optional[Token] = None  # generated when not given
    #: the ERP's own options; an option not given takes the ERP's default
    options: Optional[Options] = Field(default=None, validate_default=True)
    #: both or neither (the document says so with ``dependentRequired``); not null
    webhook_url: WebhookUrlSet = None
    webhook_secret: WebhookSecret = None
    probe_worksheet: Optional[ProbeWorksheet] = None

    @model_validator(mode="after")
    def _webhook_url_and_secret(self):
        check_webhook(self.webhook_url, self.webhook_secret)
        return self

    @field_validator("options")
    @classmethod
    def _options_of_the_erp(cls, options, info: ValidationInfo):
        if "erp_system" in info.data:  # else erp_system itself is the error
            try:
                resolve_options(options_of(info.data["erp_system"]), options or {})
            except ValueError as exc:  # "options: <which option, which rule>"
                raise ValueError(str(exc)) from None
        return options


def _change_schema(schema):
    """A change may not both remove the webhook (``webhook_url: ""``) and set its secret."""
    schema["not"] = {"required": ["webhook_url", "webhook_secret"],
                     "properties": {"webhook_url": {"const": ""},
                                    "webhook_secret": {"type": "string"}}}


class RegistrationChange(_Strict):
    """A reconfiguration (``manage.py update``, ``PUT /integrations/<workshop>``); unset fields stay.

    A URL or a secret alone is completed by what the integration holds; when it holds
    not the other half, the change is answered 409 ``WEBHOOK_INCOMPLETE``
    (:meth:`fleet.control.Fleet.reconfigure`): the request is well formed, the state
    lacks what it needs.
    """

    model_config = ConfigDict(json_schema_extra=_change_schema)

    erp_system: Optional[ErpSystem] = None
    erp_url: Optional[Url] = None
    port: Optional[Port] = None
    username: Optional[Secret] = None
    password: Optional[Secret] = None
    active: Optional[bool] = None
    api_token: Optional[Token] = None
    #: options to set; ``""`` removes one. Those not named stay; all are checked against
    #: the (new) ERP's declaration when applied (:func:`check_options`)
    options: Optional[Options] = None
    #: ``""`` removes the webhook (and its secret); a URL and a secret need each other,
    #: checked against the stored ones when applied (:func:`check_webhook`)
    webhook_url: Optional[WebhookUrl] = None
    webhook_secret: Optional[WebhookSecret] = None
    #: ``""``: the probe opens the worksheet last written to
    probe_worksheet: Optional[ProbeWorksheet] = None

    @model_validator(mode="after")
    def _not_removed_and_set(self):
        if self.webhook_url == "" and self.webhook_secret is not None:
            raise ValueError("webhook_secret cannot be set by the change that removes the "
                             "webhook (webhook_url \"\")")
        return self


def check_webhook(url, secret):
    """A webhook needs both its URL and its secret.

    :raises ValueError: (``InvalidRegistration`` for the fleet) naming the missing one
    """
    if url and not secret:
        raise InvalidRegistration("webhook_secret: is required with webhook_url (every "
                                 "delivery is signed)")
    if secret and not url:
        raise InvalidRegistration("webhook_url: is required with webhook_secret")


def parse(model, data):
    """Validate ``data`` into ``model``.

    :raises InvalidRegistration: one line naming every bad field; never echoes a value,
        since the value may be a password
    """
    if not isinstance(data, dict):
        raise InvalidRegistration("the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors(include_input=False, include_url=False, include_context=False):
            field = ".".join(str(p) for p in err["loc"]) or "body"
            problems.append(f"{field}: {err['msg'].removeprefix('Value error, ')}")
        raise InvalidRegistration("; ".join(problems)) from None


# -- answers (documented in /openapi.json; the tests hold the API to them) -------------


class Registration(BaseModel):
    """A workshop's registration (``/integrations/<name>``: the API keeps its word for
    it), without its secrets."""

    workshop: str
    erp_system: str
    erp_url: str
    port: int
    active: bool
    username: Optional[str]
    created_at: str
    updated_at: str
    has_password: bool
    program: str
    #: its public path behind the front door: ``/w/<slug>/`` (docs/operations.md)
    slug: str
    webhook_url: str = ""
    has_webhook_secret: bool = False
    #: the worksheet its ERP probe opens ("" for the last one written to)
    probe_worksheet: str = ""
    #: the options set for it (an option not listed takes the ERP's default); a secret
    #: one's value is shown as ``********``
    options: dict[str, str]


class Process(BaseModel):
    """supervisord's view of the instance process."""

    state: str
    pid: Optional[int]
    description: Optional[str]
    exitstatus: Optional[int] = None


class Holder(BaseModel):
    """The process that holds a workshop's data folder (core/hold.py)."""

    pid: int
    what: Optional[str] = None
    port: Optional[int] = None
    since: Optional[str] = None
    host: Optional[str] = None
    program: Optional[str] = None


class Health(Registration):
    """One entry of the overview: configuration, process state and the instance's ``/alive``."""

    health: Literal[states.HEALTHS]
    process: Process
    #: who holds the workshop's data now (its instance, or another process: health
    #: ``held``), None when nothing runs on it
    hold: Optional[Holder] = None
    alive: Optional[dict]
    worker: Optional[str]
    queue_length: Optional[int]
    last_success: Optional[str]
    last_error: Optional[dict]
    #: the instance's ``erp`` from ``/alive``: its ERP's screens as last probed, and
    #: whether its orders are held for a changed one
    erp: Optional[dict] = None


class Overview(BaseModel):
    integrations: list[Health]


class Created(BaseModel):
    integration: Registration
    api_token: str
    supervisor: str


class Changed(BaseModel):
    integration: Registration
    supervisor: str


class Removed(Changed):
    data_deleted: bool


class ProcessChanged(BaseModel):
    integration: Registration
    process_state: str


class InstanceAnswered(BaseModel):
    integration: Registration
    instance: dict


class Probed(BaseModel):
    """``POST /integrations/<workshop>/probe``: what the instance's probe found."""

    integration: Registration
    erp: dict = Field(description="The instance's erp object: state (ok, changed, "
                                  "unreachable, login_failed, unknown), checked_at, detail, "
                                  "checked, artifacts, held.")


class Error(BaseModel):
    error: str
    message: str


# -- failed orders (fleet/orders.py): the instance's own answers, with the workshop ------

class OrderPage(BaseModel):
    workshop: str
    orders: list[dict] = Field(description="The instance's order records (its OrderRecord).")
    next: int = Field(description="The cursor to ask after next.")
    more: bool


class OrderActed(BaseModel):
    workshop: str
    order: dict = Field(description="The order after the action (the instance's OrderRecord).")


class OrderArtifacts(BaseModel):
    workshop: str
    uniqueid: str
    artifacts: list[dict] = Field(description="name, kind (screenshot or page), reason_code, "
                                              "at, bytes")


class Pool(BaseModel):
    """The browser pool (``GET /pool``)."""

    mode: Literal["local", "grid", "remote"] = Field(
        description="local: a Chromium per instance; grid: the fleet's own Selenium Grid; "
                    "remote: a Grid elsewhere (SELENIUM_REMOTE_URL)")
    up: Optional[bool] = Field(description="Whether the Grid answered; null with local browsers.")
    slots: Optional[int] = Field(None, description="Browser sessions the Grid offers at once.")
    in_use: Optional[int] = None
    waiting: Optional[int] = Field(None, description="Instances waiting for a slot.")
    nodes: Optional[int] = None
