"""Where mca writes its own events (decisions, actions): a sink with the ingest transport's shape.

The dispatcher announces what it delivered through an `EventSink`; the composition root hands it
one opened by the ingest package (direct into the state store, or Kafka), so mcp_tools never
imports ingest and both paths into the stream stay one.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from mca.db import Stores
from mca.settings import Settings


class EventSink(Protocol):
    async def write(self, rows: list[dict[str, Any]]) -> object: ...


OpenEventSink = Callable[[Settings, Stores], AbstractAsyncContextManager[EventSink]]
