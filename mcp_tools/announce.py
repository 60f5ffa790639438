"""Announce decisions and their actions as events to the stream (DESIGN, "Closing the loop").

Two sweeps, run by the dispatcher after each round, each taking what is not announced yet,
writing it through the event sink (the configured ingest transport) and marking it:
- every recorded decision becomes a ``decision_recorded`` event at the moment its trigger
  fired, with its experiment group and attribution window: the attribution views count every
  triggered customer from these, whether anything was sent (intent to treat);
- every delivered outbox row, and every row recorded as shadow (shadow mode, a control
  decision), becomes its action event (mcp_tools.action_events).
At least once: a crash between the write and the mark announces again, and the events table
drops the repeat by event id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from mca.events import EventSink
from mcp_tools.action_events import (
    EVENT_SOURCE,
    FACTS_SQL,
    ActionFacts,
    delivered_event,
    withheld_event,
)

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
DECISIONS_DUE = """
SELECT d.decision_id, d.user_id, d.trigger_name, d.goal, d.brain, d.outcome, d.started_at,
       j.created_at AS triggered_at, j.experiment_group, j.experiment, j.attribution_window_s
FROM decisions d LEFT JOIN agent_jobs j ON j.decision_id = d.decision_id
WHERE d.announced_at IS NULL
ORDER BY d.decision_id LIMIT %(n)s
FOR UPDATE OF d SKIP LOCKED
"""
MARK_DECISIONS = "UPDATE decisions SET announced_at = %(now)s WHERE decision_id = ANY(%(ids)s)"
DECISION_TYPE = "decision_recorded"
DEFAULT_WINDOW_S = 7 * 24 * 3600  # a decision made outside any trigger's window setting


def event_of(row: dict[str, Any], *, points_echoed: bool) -> dict[str, Any]:
    facts = ActionFacts.from_row(row, str(row["kind"]), dict(row["payload"] or {}))
    if row["status"] == "delivered":
        at: datetime = row["delivered_at"] or row["updated_at"]
        return delivered_event(facts, at, provider=row.get("provider"), points_echoed=points_echoed)
    reason = "control" if facts.experiment_group in ("control", "holdout") else "shadow"
    return withheld_event(facts, row["updated_at"], reason)


def decision_event(row: dict[str, Any]) -> dict[str, Any]:
    at: datetime = row["triggered_at"] or row["started_at"]
    properties = {
        "decision_id": row["decision_id"],
        "trigger": row["trigger_name"],
        "goal": row["goal"],
        "brain": row["brain"],
        "outcome": row["outcome"],
        "experiment_group": row["experiment_group"],
        "experiment_id": row["experiment"],
        "window_s": row["attribution_window_s"] or DEFAULT_WINDOW_S,
    }
    return {
        "event_id": f"mca-{DECISION_TYPE}-{row['decision_id']}",
        "user_id": row["user_id"],
        "event_type": DECISION_TYPE,
        "ts": at,
        "received_at": at,
        "source": EVENT_SOURCE,
        "value": None,
        "points": None,
        "sku": None,
        "category": None,
        "text": None,
        "properties": {k: v for k, v in properties.items() if v is not None},
    }


async def announce(
    ops_pool: AsyncConnectionPool[Any],
    sink: EventSink,
    now: datetime,
    *,
    points_echoed: bool = False,
    limit: int = 500,
) -> int:
    """Announce up to `limit` decisions and up to `limit` actions; how many events were written."""
    return await _announce_decisions(ops_pool, sink, now, limit) + await _announce_actions(
        ops_pool, sink, now, points_echoed, limit
    )


async def _announce_decisions(
    ops_pool: AsyncConnectionPool[Any], sink: EventSink, now: datetime, limit: int
) -> int:
    async with ops_pool.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        rows = await (await cur.execute(DECISIONS_DUE, {"n": limit})).fetchall()
        if not rows:
            return 0
        await sink.write([decision_event(r) for r in rows])
        await conn.execute(MARK_DECISIONS, {"now": now, "ids": [r["decision_id"] for r in rows]})
    return len(rows)


async def _announce_actions(
    ops_pool: AsyncConnectionPool[Any], sink: EventSink, now: datetime, points_echoed: bool, limit: int
) -> int:
    async with ops_pool.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        rows = await (await cur.execute(PENDING, {"n": limit})).fetchall()
        if not rows:
            return 0
        await sink.write([event_of(r, points_echoed=points_echoed) for r in rows])
        await conn.execute(MARK, {"now": now, "ids": [r["outbox_id"] for r in rows]})
    return len(rows)
