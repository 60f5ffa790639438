"""The PostgreSQL tail reads in (xid, seq) order as numbers, never as text.

Transaction ids cross digit boundaries (99 -> 100, 999 -> 1000) on every server; read as
text, "100" sorts before "99", so a batch would end on the smaller id and the next read would
return the larger one's rows again (a trigger fired twice), and `latest` would start behind
rows already there. The rows here carry chosen ids on both sides of such a boundary.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

from agent.sources import PostgresTail

INSERT = """
INSERT INTO events (event_id, user_id, event_type, ts, value, xid)
VALUES (%s, %s, 'purchase', %s, 10, CAST(%s AS xid8))
"""
# (event id, xid): inserted out of order, across the 9 -> 10 and 99 -> 100 boundaries; all
# below the server's oldest open transaction (migrating a test database takes hundreds).
ROWS = [("e-100", "100"), ("e-99", "99"), ("e-101", "101"), ("e-9", "9"), ("e-10", "10")]
EXPECTED = ["e-9", "e-10", "e-99", "e-100", "e-101"]


async def store(aconn: psycopg.AsyncConnection[Any]) -> None:
    cur = await aconn.execute("SELECT CAST(pg_snapshot_xmin(pg_current_snapshot()) AS text) AS xmin")
    row: Any = await cur.fetchone()
    assert int(row["xmin"]) > 101, "the chosen ids must lie below the oldest open transaction"
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    for event_id, xid in ROWS:
        await aconn.execute(INSERT, (event_id, "u-tail", ts, xid))


async def test_batches_of_one_read_every_row_once_in_numeric_xid_order(
    aconn: psycopg.AsyncConnection[Any],
) -> None:
    await store(aconn)
    tail = PostgresTail(aconn)
    position = await tail.start_position("earliest")
    read: list[str] = []
    for _ in range(len(ROWS) + 2):
        events, position = await tail.fetch(position, 1)
        read += [e["event_id"] for e in events]
    assert read == EXPECTED


async def test_latest_starts_after_the_highest_xid(aconn: psycopg.AsyncConnection[Any]) -> None:
    await store(aconn)
    tail = PostgresTail(aconn)
    position = await tail.start_position("latest")
    assert position["xid"] == "101"
    events, _ = await tail.fetch(position, 10)
    assert events == []
