"""What an integration may be configured with, checked in one place.

``manage.py`` and the management API both build these models, so a bad URL or port gets
the same one-line answer from either.
"""

import unicodedata
from typing import Annotated, Optional
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from bridge.exceptions import InvalidIntegration
from fleet.supervisor_conf import check_config_value
from integrations import AVAILABLE

# Characters that supervisor's config parser cannot carry in a command line, or that
# would make a name ambiguous in a path or URL segment.
_FORBIDDEN_IN_NAME = set("/\\;#\"") | {chr(c) for c in range(32)} | {"\x7f"}


def _workshop(value):
    value = unicodedata.normalize("NFC", value)
    if value != value.strip() or not value:
        raise ValueError("must not be empty or start or end with spaces")
    if len(value) > 100:
        raise ValueError("must be at most 100 characters")
    bad = sorted(set(value) & _FORBIDDEN_IN_NAME)
    if bad:
        raise ValueError(f"must not contain {''.join(bad)!r}")
    return check_config_value(value)


def _erp_system(value):
    if value not in AVAILABLE:
        raise ValueError(f"unknown ERP system {value!r}; known: {', '.join(sorted(AVAILABLE))}")
    return value


def _url(value):
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return check_config_value(value.rstrip("/"))


def _secret(value):
    return check_config_value(value)


Workshop = Annotated[str, AfterValidator(_workshop)]
ErpSystem = Annotated[str, AfterValidator(_erp_system)]
Url = Annotated[str, AfterValidator(_url)]
Port = Annotated[int, Field(ge=1024, le=65535)]
Secret = Annotated[str, AfterValidator(_secret)]
Token = Annotated[str, Field(min_length=16, max_length=200), AfterValidator(_secret)]


class IntegrationSpec(BaseModel):
    """A new integration (``manage.py add``, ``POST /integrations``)."""

    model_config = ConfigDict(extra="forbid")

    workshop: Workshop
    erp_system: ErpSystem
    erp_url: Url
    port: Port
    username: Optional[Secret] = None
    password: Optional[Secret] = None
    active: bool = True
    api_token: Optional[Token] = None  # generated when not given


class IntegrationChange(BaseModel):
    """A reconfiguration (``manage.py update``, ``PUT /integrations/<workshop>``); unset fields stay."""

    model_config = ConfigDict(extra="forbid")

    erp_system: Optional[ErpSystem] = None
    erp_url: Optional[Url] = None
    port: Optional[Port] = None
    username: Optional[Secret] = None
    password: Optional[Secret] = None
    active: Optional[bool] = None
    api_token: Optional[Token] = None


def workshop_name(value):
    """:returns: the workshop name as the registry keys it (NFC)
    :raises InvalidIntegration: for a name no integration can have"""
    return parse(_NameOnly, {"workshop": value}).workshop


class _NameOnly(BaseModel):
    workshop: Workshop


def parse(model, data):
    """Validate ``data`` into ``model``.

    :raises InvalidIntegration: one line naming every bad field; never echoes a value,
        since the value may be a password
    """
    if not isinstance(data, dict):
        raise InvalidIntegration("the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors(include_input=False, include_url=False):
            field = ".".join(str(p) for p in err["loc"]) or "body"
            message = err["msg"].removeprefix("Value error, ")
            if field in ("password", "api_token", "username"):
                message = message.split(":")[0]  # never repeat part of a secret
            problems.append(f"{field}: {message}")
        raise InvalidIntegration("; ".join(problems)) from None
