"""Announce delivered and withheld actions as events (mcp_tools.action_events) to the stream.

A sweep, run by the dispatcher after each round: take the outbox rows that were delivered or
recorded as shadow and are not announced yet, build each one's event from its decision's facts,
write them all through the event sink (the configured ingest transport), then mark them. At
least once: a crash between the write and the mark announces again, and the events table drops
the repeat by event id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from mcp_tools.action_events import FACTS_SQL, ActionFacts, EventSink, delivered_event, withheld_event

PENDING = f"""
WITH due AS (
    SELECT outbox_id, call_id, kind, payload, status, provider, delivered_at, updated_at FROM outbox
    WHERE announced_at IS NULL AND status IN ('delivered', 'shadow')
    ORDER BY outbox_id LIMIT %(n)s
    FOR UPDATE SKIP LOCKED
)
SELECT due.*, facts.* FROM due
CROSS JOIN LATERAL ({FACTS_SQL.replace("%(call_id)s", "due.call_id")}) AS facts
"""
MARK = "UPDATE outbox SET announced_at = %(now)s WHERE outbox_id = ANY(%(ids)s)"


def event_of(row: dict[str, Any], *, points_echoed: bool) -> dict[str, Any]:
    facts = ActionFacts.from_row(row, str(row["kind"]), dict(row["payload"] or {}))
    if row["status"] == "delivered":
        at: datetime = row["delivered_at"] or row["updated_at"]
        return delivered_event(facts, at, provider=row.get("provider"), points_echoed=points_echoed)
    reason = "control" if facts.experiment_group in ("control", "holdout") else "shadow"
    return withheld_event(facts, row["updated_at"], reason)


async def announce(
    ops_pool: AsyncConnectionPool[Any],
    sink: EventSink,
    now: datetime,
    *,
    points_echoed: bool = False,
    limit: int = 500,
) -> int:
    """Announce up to `limit` actions; how many were written."""
    async with ops_pool.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        rows = await (await cur.execute(PENDING, {"n": limit})).fetchall()
        if not rows:
            return 0
        await sink.write([event_of(r, points_echoed=points_echoed) for r in rows])
        await conn.execute(MARK, {"now": now, "ids": [r["outbox_id"] for r in rows]})
    return len(rows)
