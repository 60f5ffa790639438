"""The row the gateway writes is the row both engines' `events` tables expect: the direct
INSERT (PostgreSQL) and the Kafka message that RisingWave's connector table decodes by
column name (FORMAT PLAIN ENCODE JSON)."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime

import orjson
import pytest

from ingest.errors import SinkError
from ingest.formats import COLUMNS, JSON, RequestMeta, to_rows
from ingest.sink import Sink
from mca.settings import PROJECT_ROOT
from mca.testing.risingwave import FakeRisingWave

STATE = PROJECT_ROOT / "sql" / "state"


def table_columns(filename: str) -> list[str]:
    body = (STATE / filename).read_text().split("CREATE TABLE events (", 1)[1]
    columns = []
    for line in body.splitlines():
        match = re.match(r"\s+([a-z_]+)\s+[a-z]", line)
        if match:
            columns.append(match[1])
        if line.startswith(")"):
            break
    return columns


def test_rows_carry_exactly_the_risingwave_columns() -> None:
    [row] = to_rows(JSON, {"event": "e", "userId": "u", "messageId": "m"}, RequestMeta(datetime.now(UTC)))
    message = orjson.loads(orjson.dumps(row))  # what the kafka transport produces
    assert list(message) == list(COLUMNS) == table_columns("011_events_risingwave.sql")
    assert message["ts"].endswith("+00:00")


def test_postgres_table_has_every_row_column() -> None:
    assert set(COLUMNS) <= set(table_columns("010_events_postgres.sql"))


def test_sink_refuses_a_risingwave_state_store() -> None:
    with FakeRisingWave().serving() as risingwave:
        sink = Sink("127.0.0.1:1", "t", "g", risingwave.url)
        with pytest.raises(SinkError, match="Kafka connector"):
            sink.run(threading.Event())
