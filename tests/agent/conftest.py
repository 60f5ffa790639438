"""Fixtures for the agent tests: autocommit async connections and an event writer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mca.db import connect_async
from mca.settings import PROJECT_ROOT

TRIGGERS_FILE = PROJECT_ROOT / "config" / "triggers.yaml"
QUERIES_DIR = PROJECT_ROOT / "sql" / "triggers"
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        from datetime import timedelta

        self.now = self.now + timedelta(**kwargs)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def aconn(db_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await connect_async(db_url, autocommit=True)
    yield conn
    await conn.close()


@pytest.fixture
async def ops_conn(db_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await connect_async(db_url, autocommit=True)
    yield conn
    await conn.close()


INSERT_EVENT = """
INSERT INTO events (event_id, user_id, event_type, ts, value, points, sku, category, text, properties)
VALUES (%(event_id)s, %(user_id)s, %(event_type)s, %(ts)s, %(value)s, %(points)s, %(sku)s, %(category)s,
        %(text)s, %(properties)s)
"""


def event_row(event_id: str, user_id: str, event_type: str, ts: datetime, **kw: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "user_id": user_id,
        "event_type": event_type,
        "ts": ts,
        "value": kw.get("value"),
        "points": kw.get("points"),
        "sku": kw.get("sku"),
        "category": kw.get("category"),
        "text": kw.get("text"),
        "properties": json.dumps(kw.get("properties") or {}),
    }


async def add_events(conn: psycopg.AsyncConnection[Any], *rows: dict[str, Any]) -> None:
    async with conn.transaction():
        for row in rows:
            await conn.execute(INSERT_EVENT, row)


def write_triggers(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
