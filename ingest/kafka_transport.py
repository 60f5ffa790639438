"""The kafka transport: produce each event to the topic (key = user_id, so one user's events
stay in order on one partition) and answer only after every one is acknowledged.

confluent-kafka reports deliveries through callbacks served by ``poll()``; a thread polls
and hands each request's outcome to its asyncio future once all of its messages are settled.
``enable.idempotence`` (librdkafka defaults it to false) with ``acks=all`` means a retried
produce cannot duplicate or reorder a message inside the broker.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import orjson
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from ingest.errors import FieldError, TransportUnavailable, ValidationFailed
from ingest.formats import Row
from ingest.transport import Receipt

POLL_INTERVAL_S = 0.05


def producer_config(
    brokers: str, ack_timeout_s: float, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "bootstrap.servers": brokers,
        "enable.idempotence": True,
        "acks": "all",
        # librdkafka logs through Python logging rather than straight to stderr.
        "logger": logging.getLogger("ingest.kafka"),
        "linger.ms": 2,
        # Give up inside librdkafka about when the client is told 503, so a message is not
        # left retrying for minutes after its request was refused.
        "message.timeout.ms": max(int(ack_timeout_s * 1000), 1000),
        "socket.connection.setup.timeout.ms": max(int(ack_timeout_s * 1000), 1000),
        **(extra or {}),
    }


class _Pending:
    """One request's messages: settled in the poll thread, resolved on the event loop."""

    __slots__ = ("error", "future", "loop", "remaining")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[None], count: int) -> None:
        self.loop, self.future, self.remaining = loop, future, count
        self.error: KafkaError | None = None

    def delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None and self.error is None:
            self.error = err
        self.remaining -= 1
        if self.remaining == 0:
            self.loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        if self.future.done():
            return
        if self.error is not None:
            self.future.set_exception(KafkaException(self.error))
        else:
            self.future.set_result(None)


def serialised(rows: list[Row]) -> list[tuple[bytes, bytes]]:
    """(key, value) for every row, or ValidationFailed naming each row that cannot be
    serialised: a batch reaches the topic whole or not at all."""
    messages: list[tuple[bytes, bytes]] = []
    errors: list[FieldError] = []
    for i, row in enumerate(rows):
        try:
            messages.append((str(row["user_id"]).encode(), orjson.dumps(row)))
        except orjson.JSONEncodeError as err:
            errors.append(FieldError(f"[{i}]", f"event {row.get('event_id')!r} cannot be serialised: {err}"))
    if errors:
        raise ValidationFailed(errors)
    return messages


class KafkaTransport:
    name = "kafka"

    def __init__(
        self, brokers: str, topic: str, *, ack_timeout_s: float = 5.0, extra: dict[str, Any] | None = None
    ) -> None:
        self.topic = topic
        self.ack_timeout_s = ack_timeout_s
        self._config = {**producer_config(brokers, ack_timeout_s, extra), "error_cb": self._on_error}
        self.producer = Producer(self._config)
        self._fatal: KafkaError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="kafka-delivery", daemon=True)

    async def start(self) -> None:
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(POLL_INTERVAL_S)

    def _on_error(self, err: KafkaError) -> None:
        # Transient errors (broker down) are retried by librdkafka and surface as delivery
        # failures; a fatal one (idempotence state lost) leaves the producer unusable.
        if err.fatal():
            self._fatal = err

    async def _replace_if_fatal(self) -> None:
        if self._fatal is None:
            return
        old, self.producer, self._fatal = self.producer, Producer(self._config), None
        # Serve the old producer's remaining delivery reports so its waiters hear back.
        await asyncio.to_thread(old.flush, 0)

    async def write(self, rows: list[Row]) -> Receipt:
        messages = serialised(rows)  # all of them, before the first is produced
        await self._replace_if_fatal()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        pending = _Pending(loop, future, len(rows))
        try:
            for key, value in messages:
                self.producer.produce(self.topic, value=value, key=key, on_delivery=pending.delivered)
        except (BufferError, KafkaException) as err:
            # Messages already queued may still land: harmless, the client retries with the
            # same ids and the sink (or RisingWave's primary key) keeps one of each.
            raise TransportUnavailable(f"kafka producer refused the events: {err}") from None
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout=self.ack_timeout_s)
        except TimeoutError:
            raise TransportUnavailable(
                f"kafka did not acknowledge within {self.ack_timeout_s:g}s", retry_after_s=5
            ) from None
        except KafkaException as err:
            raise TransportUnavailable(f"kafka refused the events: {err.args[0]}", retry_after_s=5) from None
        # Kafka cannot tell a redelivery at produce time; the consumer side deduplicates.
        return Receipt(accepted=len(rows), duplicates=None, event_ids=[r["event_id"] for r in rows])

    async def ready(self) -> str | None:
        try:
            await asyncio.to_thread(self.producer.list_topics, self.topic, 2.0)
        except KafkaException as err:
            return f"kafka unreachable: {err.args[0]}"
        return None

    async def close(self) -> None:
        await asyncio.to_thread(self.producer.flush, self.ack_timeout_s)
        self._stop.set()
        await asyncio.to_thread(self._thread.join, 5)
