"""Where accepted events go. Every transport returns only once the events are durable
(committed to the state store, or acknowledged by Kafka with acks=all); otherwise it raises
TransportUnavailable and the gateway answers 503, never 202."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ingest.formats import Row


@dataclass(frozen=True)
class Receipt:
    """What the 202 says: how many events were new, how many were redeliveries (None when
    the transport cannot tell at acknowledgement time), and the ids, generated ones included."""

    accepted: int
    duplicates: int | None
    event_ids: list[str] = field(default_factory=list)


class Transport(Protocol):
    name: str

    async def start(self) -> None: ...

    async def write(self, rows: list[Row]) -> Receipt: ...

    async def ready(self) -> str | None:
        """None when the downstream is reachable, else a one-line reason."""
        ...

    async def close(self) -> None: ...
