"""The event sink the composition root gives the dispatcher: the configured transport, opened
for mca's own events (the same path, and the same durability, as `POST /ingest`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg_pool import AsyncConnectionPool

from ingest.direct import open_direct
from ingest.kafka_transport import KafkaTransport
from ingest.transport import Transport
from mca.db import Stores, open_pool
from mca.settings import Settings


@asynccontextmanager
async def open_event_sink(
    settings: Settings, stores: Stores, pool: AsyncConnectionPool[Any] | None = None
) -> AsyncIterator[Transport]:
    """`pool`: the process's state pool, when it has one (the direct transport then writes
    through it instead of opening its own)."""
    if settings.kafka.transport == "kafka":
        kafka = KafkaTransport(
            settings.kafka.brokers, settings.kafka.topic, ack_timeout_s=settings.kafka.ack_timeout_s
        )
        await kafka.start()
        try:
            yield kafka
        finally:
            await kafka.close()
        return
    own = pool is None
    if pool is None:
        pool = await open_pool(stores.state_url, min_size=1, max_size=2, name="mca-events", autocommit=True)
    try:
        direct = await open_direct(pool, stores.state_url)
        await direct.start()
        try:
            yield direct
        finally:
            await direct.close()
    finally:
        if own:
            await pool.close()
