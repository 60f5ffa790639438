"""Kafka transport and sink worker against a real Kafka-protocol broker (tansu)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ingest.kafka_transport import producer_config
from ingest.sink import Sink, SinkStats
from mca.testing import wait_until
from mca.testing.kafka import Broker
from tests.ingest.helpers import FAST_GROUP, mca_env

pytestmark = pytest.mark.slow
TOPIC = "mca.events.test"
N_REQUESTS, PER_REQUEST = 30, 20
TOTAL = N_REQUESTS * PER_REQUEST


def batch(r: int) -> dict[str, Any]:
    return {
        "batch": [
            {
                "type": "track",
                "event": "purchase",
                "userId": f"u{i % 7}",
                "messageId": f"m-{r}-{i}",
                "properties": {"revenue": 5, "points": 1},
            }
            for i in range(PER_REQUEST)
        ]
    }


def run_sink(
    broker: Broker,
    db_url: str,
    stop: threading.Event,
    group: str = "mca-sink",
    on_batch: Callable[[SinkStats], None] | None = None,
) -> tuple[threading.Thread, list[SinkStats]]:
    out: list[SinkStats] = []
    sink = Sink(broker.brokers, TOPIC, group, db_url, batch_size=50, extra=FAST_GROUP)
    thread = threading.Thread(target=lambda: out.append(sink.run(stop, on_batch)), daemon=True)
    thread.start()
    return thread, out


def test_producer_is_idempotent_with_acks_all() -> None:
    config = producer_config("x:1", 5.0)
    assert config["enable.idempotence"] is True and config["acks"] == "all"


async def test_ingest_to_kafka_to_sink_exactly_once_across_restarts(
    broker: Broker, db_url: str, make_client: Callable[..., Any], count_events: Callable[..., int]
) -> None:
    settings = {
        "transport": "kafka",
        "kafka_brokers": broker.brokers,
        "kafka_topic": TOPIC,
        "kafka_ack_timeout_s": 15,
    }
    half = N_REQUESTS // 2
    sink_cmd = [str(Path(sys.executable).parent / "mca"), "sink", "--batch-size", "40"]
    sink_cmd += [f"-X{k}={v}" for k, v in FAST_GROUP.items()]
    env = mca_env(db_url, MCA_TRANSPORT="kafka", MCA_KAFKA_BROKERS=broker.brokers, MCA_KAFKA_TOPIC=TOPIC)
    async with make_client(**settings) as client:
        for r in range(half):
            resp = await client.post("/ingest", json=batch(r))
            assert resp.status_code == 202, resp.text
            assert resp.json()["accepted"] == PER_REQUEST and resp.json()["duplicates"] is None
        assert (await client.get("/readyz")).json() == {"status": "ready"}
        assert count_events() == 0  # acknowledged by Kafka; no sink has run yet

        # 1. `mca sink` as a real process, killed without warning once it has caught up.
        proc = subprocess.Popen(sink_cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(
                lambda: count_events() == half * PER_REQUEST, "the sink process to store the first half", 60
            )
        finally:
            proc.kill()
            proc.wait(timeout=10)

        # 2. The stream goes on while no sink runs.
        for r in range(half, N_REQUESTS):
            assert (await client.post("/ingest", json=batch(r))).status_code == 202

    # 3. A sink in this process resumes from the committed offsets and stops gracefully.
    stop = threading.Event()
    thread, stats = run_sink(broker, db_url, stop)
    wait_until(lambda: count_events() == TOTAL, "every event to be stored", 60)
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive() and stats[0].skipped == 0
    assert count_events() == TOTAL == count_events("event_id LIKE %s", ("m-%",))

    # 4. Redelivery of the whole topic (a new group starts from the beginning) adds nothing.
    stop = threading.Event()

    def until_all_seen(s: SinkStats) -> None:
        if s.consumed >= TOTAL:
            stop.set()

    thread, stats = run_sink(broker, db_url, stop, group="replay", on_batch=until_all_seen)
    assert stop.wait(timeout=60), "the replay did not consume the topic"
    thread.join(timeout=30)
    assert (stats[0].consumed, stats[0].inserted, stats[0].duplicates) == (TOTAL, 0, TOTAL)
    assert count_events() == TOTAL

    # 5. `mca sink` stops cleanly on SIGTERM.
    term = subprocess.Popen(sink_cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # "sink: ..." is printed once the worker is set up (broker reached, store checked).
        assert term.stderr is not None
        assert any("sink:" in term.stderr.readline() for _ in range(100)), "the sink did not start"
        term.send_signal(signal.SIGTERM)
        _, err = term.communicate(timeout=30)
    finally:
        if term.poll() is None:
            term.kill()
            term.wait(timeout=10)
    assert term.returncode == 0 and "sink stopped" in err


async def test_broker_down_means_503_and_nothing_acknowledged(
    broker: Broker, make_client: Callable[..., Any]
) -> None:
    async with make_client(
        transport="kafka", kafka_brokers=broker.brokers, kafka_topic=TOPIC, kafka_ack_timeout_s=2
    ) as client:
        assert (await client.post("/ingest", json=batch(0))).status_code == 202
        broker.stop()
        # Bounded by the ack timeout (2 s here), not by librdkafka's own retries.
        resp = await asyncio.wait_for(client.post("/ingest", json=batch(1)), timeout=60)
        assert resp.status_code == 503, resp.text
        assert int(resp.headers["retry-after"]) > 0
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and "kafka" in ready.json()["problems"][0]


async def test_a_fatal_producer_error_gets_a_new_producer(broker: Broker) -> None:
    from confluent_kafka import KafkaError

    from ingest.formats import JSON, RequestMeta, to_rows
    from ingest.kafka_transport import KafkaTransport

    transport = KafkaTransport(broker.brokers, TOPIC, ack_timeout_s=15)
    await transport.start()
    try:
        rows = to_rows(JSON, batch(0), RequestMeta(datetime.now(UTC)))
        assert (await transport.write(rows)).accepted == PER_REQUEST
        first = transport.producer
        # What librdkafka's error callback reports when idempotence state is lost.
        transport._on_error(KafkaError(KafkaError._FATAL, "simulated fatal error", fatal=True))
        assert (await transport.write(rows)).accepted == PER_REQUEST
        assert transport.producer is not first
    finally:
        await transport.close()


def _ids_until(broker: Broker, wanted: set[str], timeout_s: float = 60) -> set[str]:
    """Every event id on the topic, read from the start until all of ``wanted`` are seen."""
    import time

    import orjson
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": broker.brokers,
            "group.id": "probe",
            "auto.offset.reset": "earliest",
            **FAST_GROUP,
        }
    )
    consumer.subscribe([TOPIC])
    seen: set[str] = set()
    deadline = time.monotonic() + timeout_s
    try:
        while not wanted <= seen:
            assert time.monotonic() < deadline, f"missing from the topic: {sorted(wanted - seen)[:3]}"
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                seen.add(orjson.loads(message.value())["event_id"])
    finally:
        consumer.close()
    return seen


async def test_a_batch_with_one_unserialisable_event_produces_nothing(broker: Broker) -> None:
    from ingest.errors import ValidationFailed
    from ingest.formats import JSON, RequestMeta, to_rows
    from ingest.kafka_transport import KafkaTransport

    deep: dict[str, object] = {}
    for _ in range(300):  # deeper than orjson writes; ingest refuses it earlier, at parse time
        deep = {"a": deep}
    rows = to_rows(JSON, batch(0), RequestMeta(datetime.now(UTC)))
    poisoned = [*rows[:10], {**rows[10], "properties": deep}, *rows[11:]]
    transport = KafkaTransport(broker.brokers, TOPIC, ack_timeout_s=15)
    await transport.start()
    try:
        with pytest.raises(ValidationFailed) as refused:
            await transport.write(poisoned)
        assert [e.path for e in refused.value.errors] == ["[10]"]
        assert (await transport.write(to_rows(JSON, batch(1), RequestMeta(datetime.now(UTC))))).accepted == 20
    finally:
        await transport.close()
    # One user's messages share a partition, in order, and both batches span the same users:
    # by the time every later event has been read, any poisoned one before it would have been.
    later = {f"m-1-{i}" for i in range(PER_REQUEST)}
    assert _ids_until(broker, later) == later
