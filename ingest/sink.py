"""The Kafka sink worker (`mca sink`): the topic, as a consumer group, into PostgreSQL.

At-least-once with an idempotent write: a batch is inserted with ON CONFLICT (event_id) DO
NOTHING and committed, and only then are the consumer offsets committed. A crash between
the two redelivers the batch, and the primary key keeps one copy of each event. With a
RisingWave state store this worker is not needed: its Kafka connector table reads the topic.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from confluent_kafka import Consumer, KafkaError, KafkaException, Message

from ingest.errors import SinkError, ValidationFailed
from ingest.formats import COLUMNS
from ingest.pg_store import STORE_EVENTS, encode_rows
from mca.db import Engine, connect, detect_engine
from mca.errors import DatabaseUnreachable

log = logging.getLogger(__name__)

REQUIRED_KEYS = ("event_id", "user_id", "event_type", "ts")
RETRY_DELAY_S = 1.0


@dataclass
class SinkStats:
    consumed: int = 0
    inserted: int = 0
    duplicates: int = 0
    skipped: int = 0  # messages that are not events (logged, never stored)
    batches: int = 0


def consumer_config(brokers: str, group: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "bootstrap.servers": brokers,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        # librdkafka logs through Python logging rather than straight to stderr.
        "logger": logging.getLogger("ingest.kafka"),
        **(extra or {}),
    }


def _parse(message: Message, stats: SinkStats) -> dict[str, Any] | None:
    try:
        row = orjson.loads(message.value() or b"")
    except orjson.JSONDecodeError:
        row = None
    if not isinstance(row, dict) or any(not isinstance(row.get(k), str) for k in REQUIRED_KEYS):
        stats.skipped += 1
        log.warning(
            "skipping a message that is not an event: %s[%s]@%s",
            message.topic(),
            message.partition(),
            message.offset(),
        )
        return None
    return {column: row.get(column) for column in COLUMNS}


class Sink:
    def __init__(
        self,
        brokers: str,
        topic: str,
        group: str,
        state_url: str,
        *,
        batch_size: int = 2000,
        poll_timeout_s: float = 0.5,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self.state_url = state_url
        self.batch_size = batch_size
        self.poll_timeout_s = poll_timeout_s
        self.config = consumer_config(brokers, group, extra)
        self.stats = SinkStats()
        self.conn: psycopg.Connection[Any]

    def run(self, stop: threading.Event, on_batch: Callable[[SinkStats], None] | None = None) -> SinkStats:
        """Consume until ``stop`` is set; the batch in hand is finished first (graceful stop)."""
        self.conn = self._connect()
        consumer = Consumer(self.config)
        try:
            consumer.subscribe([self.topic])
            while not stop.is_set():
                messages = consumer.consume(self.batch_size, self.poll_timeout_s)
                rows = self._rows(messages)
                if not messages:
                    continue
                if rows and not self._store(rows, stop):
                    return self.stats  # stopped before the store came back: offsets stay put
                _commit_offsets(consumer)
                self.stats.batches += 1
                if on_batch is not None:
                    on_batch(self.stats)
        finally:
            consumer.close()
            self.conn.close()
        return self.stats

    def _connect(self) -> psycopg.Connection[Any]:
        conn = connect(self.state_url)
        if detect_engine(conn) is Engine.RISINGWAVE:
            conn.close()
            raise SinkError(
                "the state store is RisingWave: its Kafka connector table reads the topic; no sink"
            )
        conn.commit()
        return conn

    def _rows(self, messages: list[Message]) -> list[dict[str, Any]]:
        rows = []
        for message in messages:
            err = message.error()
            if err is not None:
                if err.fatal():
                    raise SinkError(f"kafka consumer failed: {err}")
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("kafka: %s", err)
                continue
            self.stats.consumed += 1
            row = _parse(message, self.stats)
            if row is not None:
                rows.append(row)
        return rows

    def _store(self, rows: list[dict[str, Any]], stop: threading.Event) -> bool:
        """Insert and commit, retrying while the store is away; False if stopped meanwhile."""
        try:
            payload = encode_rows(rows)
        except ValidationFailed:
            self._store_each(rows)
            return True
        while True:
            conn = self.conn
            try:
                stored = _stored(conn, payload)
                conn.commit()
            except psycopg.OperationalError as err:
                log.warning("state store unavailable, retrying: %s", str(err).strip()[:200])
                if stop.wait(RETRY_DELAY_S):
                    return False
                conn.close()
                try:
                    self.conn = connect(self.state_url)
                except DatabaseUnreachable:
                    continue
                continue
            except psycopg.Error as err:
                # A row the store refuses would block the partition forever: log it and
                # store the rest one by one.
                conn.rollback()
                log.error("state store refused a batch (%s); storing row by row", str(err).strip()[:200])
                self._store_each(rows)
                return True
            self.stats.inserted += stored
            self.stats.duplicates += len(rows) - stored
            return True

    def _store_each(self, rows: list[dict[str, Any]]) -> None:
        conn = self.conn
        for row in rows:
            try:
                stored = _stored(conn, encode_rows([row]))
                conn.commit()
            except (psycopg.Error, ValidationFailed) as err:
                conn.rollback()
                self.stats.skipped += 1
                log.error("skipping event %s: %s", row.get("event_id"), str(err).strip()[:200])
                continue
            self.stats.inserted += stored
            self.stats.duplicates += 1 - stored


def _stored(conn: psycopg.Connection[Any], payload: str) -> int:
    row = conn.execute(STORE_EVENTS, (payload,)).fetchone()
    return int(row["stored"]) if row else 0


def _commit_offsets(consumer: Consumer) -> None:
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as err:
        code = err.args[0].code() if err.args and isinstance(err.args[0], KafkaError) else None
        if code == KafkaError._NO_OFFSET:
            return
        # A rebalance took the partitions away: the new owner gets the batch again, and
        # the primary key keeps one copy.
        log.warning("offset commit failed, the batch will be redelivered: %s", err)


def wait_for_broker(brokers: str, timeout_s: float) -> None:
    """Fail with one clear line when no broker answers (used by `mca sink` at start)."""
    from confluent_kafka.admin import AdminClient

    deadline = time.monotonic() + timeout_s
    admin = AdminClient({"bootstrap.servers": brokers})
    while True:
        try:
            admin.list_topics(timeout=min(2.0, max(deadline - time.monotonic(), 0.1)))
            return
        except KafkaException as err:
            if time.monotonic() >= deadline:
                raise SinkError(f"no Kafka broker at {brokers}: {err}") from None
