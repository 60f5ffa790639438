"""The action layer's errors: names and data over the kinds of `mca.errors`. Foreign errors
(psycopg, httpx, yaml) are translated at the edge."""

from __future__ import annotations

from mca.errors import BadConfig, BadInput, MCAError, Unavailable
from mca.errors import NotFound as NotFound

__all__ = [
    "DeliveryError",
    "NotFound",
    "PermanentDelivery",
    "PolicyError",
    "RetryableDelivery",
    "SuppressDelivery",
    "ToolInputError",
    "ToolsError",
]


class ToolsError(MCAError):
    """The action layer cannot do what was asked (a provider misnamed or missing its settings)."""


class PolicyError(BadConfig):
    """The policy file cannot be read or is invalid; `line` says where when known."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(f"{message} (line {line})" if line else message)
        self.line = line


class ToolInputError(BadInput):
    """A tool was called with arguments that name nothing real or break a hard limit.

    `code` is machine-readable (unknown_user, unknown_asset, asset_inactive, ...) and travels
    back to the model inside the MCP error result; nothing is written.
    """

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.code = code


class DeliveryError(MCAError):
    """A provider refused or failed a delivery; `provider_status` is its HTTP status, if any."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.provider_status = status
        self.code = code


class RetryableDelivery(DeliveryError, Unavailable):
    """Worth trying again later: timeouts, 429, 5xx."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class PermanentDelivery(DeliveryError, BadInput):
    """Never going to work as sent (bad request, auth): dead-letter at once."""


class SuppressDelivery(PermanentDelivery):
    """The recipient must not be contacted on this channel again (unsubscribed, invalid number)."""
