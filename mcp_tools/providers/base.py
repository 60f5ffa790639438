"""What a provider is given and how HTTP answers become retry / suppress / dead-letter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from mcp_tools.errors import PermanentDelivery, RetryableDelivery


@dataclass(frozen=True)
class OutboxItem:
    outbox_id: int
    idem_key: str
    kind: str  # sms | coupon | crm | points
    user_id: str
    payload: dict[str, Any]
    attempts: int


class Provider(Protocol):
    name: str

    async def deliver(self, item: OutboxItem) -> str | None:
        """Deliver one item; return the provider's reference. Raise RetryableDelivery,
        PermanentDelivery or SuppressDelivery on failure."""
        ...


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def raise_for_status(response: httpx.Response, provider: str) -> None:
    """2xx passes; 408/429/5xx are worth retrying; any other 4xx is permanent."""
    if response.is_success:
        return
    detail = response.text[:300]
    status = response.status_code
    if status in (408, 409, 425, 429) or status >= 500:
        raise RetryableDelivery(
            f"{provider} answered {status}: {detail}", status=status, retry_after=retry_after(response)
        )
    raise PermanentDelivery(f"{provider} answered {status}: {detail}", status=status)


async def send(
    client: httpx.AsyncClient, provider: str, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """One request; network trouble becomes RetryableDelivery."""
    try:
        return await client.request(method, url, **kwargs)
    except httpx.TimeoutException as err:
        raise RetryableDelivery(f"{provider} timed out: {type(err).__name__}") from None
    except httpx.TransportError as err:
        raise RetryableDelivery(f"{provider} unreachable: {err}") from None


def unsupported(provider: str, kind: str) -> PermanentDelivery:
    return PermanentDelivery(f"provider {provider} cannot deliver {kind!r} items; route it elsewhere")
