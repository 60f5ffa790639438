"""What the console reads: its own SQL files (console/sql/) over the ops store, plus the
packages' public reads (a customer's live context, decision stories, catalogue search)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

from agent import records
from agent.explain import explain
from state.context import load_context

SQL_DIR = Path(__file__).parent / "sql"
FEED_LIMIT = 100
DECISIONS_SHOWN = 20
FILTERS = ("trigger", "verdict", "user_id")


@cache
def statement(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text()


async def fetch(pool: AsyncConnectionPool[Any], name: str, **params: Any) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        cur = await conn.execute(statement(name), params)
        return [dict(r) for r in await cur.fetchall()]


async def feed(
    pool: AsyncConnectionPool[Any],
    since: datetime,
    filters: Mapping[str, str | None],
    limit: int = FEED_LIMIT,
) -> list[dict[str, Any]]:
    """Feed rows since `since`; `filters` may narrow by trigger, verdict and user_id (None: any)."""
    wanted = {name: filters.get(name) for name in FILTERS}
    return await fetch(pool, "feed", since=since, limit=limit, **wanted)


async def counters(pool: AsyncConnectionPool[Any], now: datetime) -> dict[str, int]:
    rows = await fetch(pool, "counters", since=now - timedelta(hours=1))
    return {k: int(v) for k, v in rows[0].items()}


async def customer(
    state_pool: AsyncConnectionPool[Any], ops_pool: AsyncConnectionPool[Any], user_id: str
) -> dict[str, Any] | None:
    """Everything the Customer page shows, or None for an id the state store has never seen."""
    async with state_pool.connection() as conn:
        context = await load_context(conn, user_id)
    if context is None:
        return None
    async with ops_pool.connection() as conn:
        cur = await conn.execute(statement("user_decisions"), {"user_id": user_id, "limit": DECISIONS_SHOWN})
        stories = []
        for row in await cur.fetchall():
            found = await records.load(conn, row["decision_id"])
            if found is not None:
                stories.append({"decision": found, "story": explain(found)})
    actions = await fetch(ops_pool, "actions", user_id=user_id)
    return {"context": context, "decisions": stories, "actions": actions}


def denial_series(rows: list[dict[str, Any]], start: datetime, end: datetime) -> dict[str, Any]:
    """Hourly denial counts from `start` to `end` as uPlot data: x = epoch seconds of each hour
    (hours without a denial count 0, so the axis always spans the window), one series per reason."""
    first = start.replace(minute=0, second=0, microsecond=0)
    hours = [first + timedelta(hours=n) for n in range(int((end - first).total_seconds() // 3600) + 1)]
    by_reason: dict[str, dict[datetime, int]] = defaultdict(dict)
    for r in rows:
        by_reason[r["reason"]][r["hour"]] = int(r["n"])
    reasons = sorted(by_reason)
    return {
        "x": [int(h.timestamp()) for h in hours] if reasons else [],
        "series": [
            {"reason": name, "counts": [by_reason[name].get(h, 0) for h in hours]} for name in reasons
        ],
        "totals": {name: sum(by_reason[name].values()) for name in reasons},
    }
