"""Seeding and counting rows in a test's database, with plain SQL against the real server."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

INSERT_EVENT = """
INSERT INTO events (event_id, user_id, event_type, ts, value, points, sku, category, text, properties)
VALUES (%(event_id)s, %(user_id)s, %(event_type)s, %(ts)s, %(value)s, %(points)s, %(sku)s, %(category)s,
        %(text)s, %(properties)s)
"""
# Identify events carry a customer's traits; dated before any test's clock.
IDENTIFIED_AT = datetime(2026, 1, 1, tzinfo=UTC)
# The views compare event times with the server's now(): tests of them date events before this.
STARTED_AT = datetime.now(UTC).replace(microsecond=0)
EVENT_REQUIRED = ("user_id", "event_type", "ts")
EVENT_KEYS = frozenset(
    {"event_id", "user_id", "event_type", "ts", "value", "points", "sku", "category", "text", "properties"}
)


def ago(**delta: float) -> datetime:
    """The moment `delta` (timedelta's keywords) before the test process started."""
    return STARTED_AT - timedelta(**delta)


def event_row(event_id: str, user_id: str, event_type: str, ts: datetime, **kw: Any) -> dict[str, Any]:
    """One `events` row for `INSERT_EVENT`; columns not given are NULL, properties `{}`."""
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
    """Insert `rows` (from `event_row`) in one transaction."""
    async with conn.transaction():
        for row in rows:
            await conn.execute(INSERT_EVENT, row)


def insert_events(conn: psycopg.Connection[Any], *events: Mapping[str, Any]) -> None:
    """Insert events given as dicts of their columns (`user_id`, `event_type`, `ts`, any of
    `EVENT_KEYS`; an `event_id` made up when absent), then commit so other connections see them.

    A dict naming a column events lacks, or lacking a required one, fails before any is written."""
    for n, event in enumerate(events):
        if unknown := set(event) - EVENT_KEYS:
            raise ValueError(f"event {n}: {sorted(unknown)} are not columns of events")
        if missing := set(EVENT_REQUIRED) - set(event):
            raise ValueError(f"event {n}: {sorted(missing)} missing")
    for n, event in enumerate(events):
        user_id, event_type, ts = (event[k] for k in EVENT_REQUIRED)
        event_id = event.get("event_id") or f"{user_id}-{event_type}-{n}-{ts.isoformat()}"
        rest = {k: v for k, v in event.items() if k not in ("event_id", *EVENT_REQUIRED)}
        conn.execute(INSERT_EVENT, event_row(event_id, user_id, event_type, ts, **rest))
    conn.commit()


def identify(url: str, traits_by_user: Mapping[str, Mapping[str, Any]]) -> None:
    """One identify event per customer, so the context sees their traits."""
    with psycopg.connect(url, autocommit=True) as conn:
        for user_id, traits in traits_by_user.items():
            conn.execute(
                INSERT_EVENT,
                event_row(f"id-{user_id}", user_id, "identify", IDENTIFIED_AT, properties=dict(traits)),
            )


def count(url: str, table: str, where: str = "TRUE", params: tuple[Any, ...] = ()) -> int:
    """Rows of `table` matching `where` (test-written SQL, never user input)."""
    query = sql.SQL("SELECT count(*) FROM {} WHERE ").format(sql.Identifier(table)) + sql.SQL(where)  # type: ignore[arg-type]
    with psycopg.connect(url) as conn:
        # No parameters: no placeholder parsing either, so `LIKE 'x%'` needs no escaping.
        row = conn.execute(query, params or None).fetchone()
        assert row is not None
        return int(row[0])


def scalar(url: str, query: str, *params: Any) -> Any:
    """The first column of the first row `query` returns."""
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
        assert row is not None
        return row[0]


def one(db: str | psycopg.Connection[Any], query: str, *params: Any) -> dict[str, Any]:
    """The single row `query` returns, as a dict; fails showing the rows unless there is exactly one.

    `db` is a database url, or an open connection to read inside its transaction."""
    if isinstance(db, str):
        with psycopg.connect(db) as conn:
            return one(conn, query, *params)
    with db.cursor(row_factory=dict_row) as cur:
        # As in `count`: no parameters, no placeholder parsing, so `LIKE 'x%'` needs no escaping.
        rows = cur.execute(query, params or None).fetchall()  # type: ignore[arg-type]
    assert len(rows) == 1, rows
    return rows[0]
