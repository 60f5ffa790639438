"""The action layer's errors. Foreign errors (psycopg, httpx, yaml) are translated at the edge."""

from __future__ import annotations

from mca.errors import MCAError


class ToolsError(MCAError):
    """Base of every error the action layer raises on purpose."""


class PolicyError(ToolsError):
    """The policy file cannot be read or is invalid; `line` says where when known."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(f"{message} (line {line})" if line else message)
        self.line = line


class ToolInputError(ToolsError):
    """A tool was called with arguments that name nothing real or break a hard limit.

    `code` is machine-readable (unknown_user, unknown_asset, asset_inactive, ...) and travels
    back to the model inside the MCP error result; nothing is written.
    """

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


class NotFound(ToolsError):
    """An approval or outbox id that does not exist (or is no longer waiting)."""


class DeliveryError(ToolsError):
    """A provider refused or failed a delivery."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class RetryableDelivery(DeliveryError):
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


class PermanentDelivery(DeliveryError):
    """Never going to work as sent (bad request, auth): dead-letter at once."""


class SuppressDelivery(DeliveryError):
    """The recipient must not be contacted on this channel again (unsubscribed, invalid number)."""
