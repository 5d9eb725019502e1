"""The fleet's errors (``manage.py`` and the management API), under the bridge's one root
:class:`~core.errors.BridgeError`, each with its reason code."""

from core.errors import BridgeError


class FleetError(BridgeError):
    """Something went wrong while managing the fleet of instances."""

    reason_code = "FLEET_ERROR"


class InvalidRegistration(FleetError):
    """An integration's settings are not acceptable (bad URL, bad port, bad name)."""

    reason_code = "INVALID_INTEGRATION"


class UnknownIntegration(FleetError):
    """No integration is registered under that workshop name."""

    reason_code = "UNKNOWN_INTEGRATION"


class DuplicateIntegration(FleetError):
    """An integration with that workshop name (or one that maps to the same files) exists."""

    reason_code = "DUPLICATE_INTEGRATION"


class PortTaken(FleetError):
    """The port is used by another integration, the management API or another program."""

    reason_code = "PORT_TAKEN"


class IntegrationInactive(FleetError):
    """The integration is deactivated: its instance cannot be started or commanded."""

    reason_code = "INTEGRATION_INACTIVE"


class WebhookIncomplete(FleetError):
    """A change leaves a webhook URL without a secret or a secret without a URL, given
    what the integration holds (answered 409: the request itself is well formed)."""

    reason_code = "WEBHOOK_INCOMPLETE"


class SupervisorUnavailable(FleetError):
    """supervisord is not running or does not answer on its socket."""

    reason_code = "SUPERVISOR_UNAVAILABLE"


class InstanceUnreachable(FleetError):
    """The instance did not answer on its port."""

    reason_code = "INSTANCE_UNREACHABLE"


class InvalidQuery(FleetError):
    """A query parameter breaks its rule (the message names it)."""

    reason_code = "INVALID_QUERY"


class InstanceRefused(FleetError):
    """The instance answered a request about an order with a 4xx (unknown order, not in
    error, ...): passed on with the instance's status and reason."""

    reason_code = "INSTANCE_REFUSED"

    def __init__(self, status, reason_code, message):
        super().__init__(message, reason_code)
        self.http_status = status
