"""Where the trigger service reads new events from: one interface, one class per engine.

A source turns a stored position into the next batch of events and the position just after
them. The trigger service stores that position in the ops store in the same transaction as
the jobs the batch made, so a restart resumes exactly where the last commit left off.

PostgreSQL: ``events`` is read in ``(xid, seq)`` order, only below the oldest transaction
still in flight (``pg_snapshot_xmin``). Sequence order is not commit order: a transaction may
take seq 8, stay open while seq 10 commits, and commit later. Every transaction with an xid
below xmin has finished, so the set of rows below it never grows again; and a transaction
still open (or not started) will get an xid at or above xmin, so its rows sort after any
position we have passed. Tailing by seq alone would have skipped seq 8 for good.

Waking up (PostgreSQL): every statement that stores events sends ``NOTIFY mca_events`` when
its transaction commits (sql/state/150); the tail LISTENs on a connection of its own and the
trigger service reads at once. A wake-up changes when the tail reads, never what it reads:
rows that committed above the oldest open transaction stay unread until that transaction
ends, and since it may not store events (so never notify), the tail then re-reads on a short
backoff (1 ms doubling to at most 8 ms) until they come below xmin. A lost listener falls back to the poll.

RisingWave: a subscription cursor (``DECLARE … SUBSCRIPTION CURSOR FOR events_changes SINCE
<rw_timestamp>``, ``FETCH n FROM c WITH (timeout = '1s')``). The position is the last
``rw_timestamp`` seen; rows at that timestamp may come again after a restart, which is
harmless because job dedup keys name the event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)
Start = Literal["earliest", "latest"]
EVENT_COLUMNS = "event_id, user_id, event_type, ts, value, points, sku, category, properties"

# One statement, so one snapshot: the next batch below the oldest in-flight transaction, and
# whether committed rows are waiting at or above it (held back: a short read must re-read soon,
# since the transaction holding them may never notify). Rows at or above xmin sort after every
# row below it, so they are exactly the ones after the batch that it could not return. Always
# one row: with an empty batch, its columns are NULL.
PG_FETCH = f"""
SELECT b.*, h.held_back
FROM (SELECT EXISTS (
        SELECT 1 FROM events
        WHERE xid >= pg_snapshot_xmin(pg_current_snapshot())
          AND (xid, seq) > (CAST(%(xid)s AS xid8), %(seq)s)
     ) AS held_back) AS h
LEFT JOIN LATERAL (
    SELECT {EVENT_COLUMNS}, CAST(xid AS text) AS xid, seq, events.xid AS tail_xid
    FROM events
    WHERE xid < pg_snapshot_xmin(pg_current_snapshot())
      AND (xid, seq) > (CAST(%(xid)s AS xid8), %(seq)s)
    ORDER BY events.xid, events.seq  -- qualified: a bare `xid` would sort by the text alias
    LIMIT %(limit)s
) AS b ON true
ORDER BY b.tail_xid, b.seq
"""
CHANNEL = "mca_events"
FIRST_RETRY_S = 0.001
# The backoff stops doubling here: the transactions that hold rows back (an ingest group, a
# decision, the service's own) last milliseconds, and a backoff grown to the poll's length
# would keep the event waiting long after they end (a re-read below xmin is one index probe).
MAX_RETRY_S = 0.008

PG_HEAD = """
SELECT CAST(xid AS text) AS xid, seq FROM events
WHERE xid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY events.xid DESC, events.seq DESC
LIMIT 1
"""


def event_of(row: dict[str, Any]) -> dict[str, Any]:
    """The triggering event as jobs carry it (JSON-safe; free text stays out of jobs)."""
    value = row.get("value")
    ts = row.get("ts")
    return {
        "event_id": row["event_id"],
        "user_id": row["user_id"],
        "type": row["event_type"],
        "ts": ts.isoformat() if isinstance(ts, datetime) else ts,
        "value": float(value) if value is not None else None,
        "points": row.get("points"),
        "sku": row.get("sku"),
        "category": row.get("category"),
        "properties": dict(row.get("properties") or {}),
    }


class StreamSource(Protocol):
    name: str

    async def start_position(self, start: Start) -> dict[str, Any]: ...

    async def fetch(
        self, position: dict[str, Any], limit: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Events after `position` (at most `limit`) and the position after the last one."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class Wakeable(Protocol):
    """A source that can say when new events may be readable, so the service need not poll."""

    async def listen(self) -> None:
        """Subscribe to wake-ups (before the first read, so none is missed)."""
        ...

    async def wait(self, timeout_s: float) -> None:
        """Return when new events may be readable, or after `timeout_s`."""
        ...


class PostgresTail:
    """Tail ``events`` on PostgreSQL by (xid, seq) below the oldest in-flight transaction,
    woken by ``NOTIFY mca_events`` when `listen_url` is given."""

    name = "postgres:events"

    def __init__(self, conn: psycopg.AsyncConnection[Any], *, listen_url: str | None = None) -> None:
        self.conn = conn  # autocommit: each poll takes a fresh snapshot
        self.listen_url = listen_url
        self._listener: psycopg.AsyncConnection[Any] | None = None
        self._held_back = False
        self._retry_s = FIRST_RETRY_S

    async def start_position(self, start: Start) -> dict[str, Any]:
        if start == "earliest":
            return {"xid": "0", "seq": 0}
        cur = await self.conn.execute(PG_HEAD)
        row = await cur.fetchone()
        return {"xid": row["xid"], "seq": int(row["seq"])} if row else {"xid": "0", "seq": 0}

    async def fetch(
        self, position: dict[str, Any], limit: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        cur = await self.conn.execute(
            PG_FETCH, {"xid": str(position["xid"]), "seq": int(position["seq"]), "limit": limit}
        )
        found = await cur.fetchall()
        rows = [r for r in found if r["event_id"] is not None]
        after = {"xid": rows[-1]["xid"], "seq": int(rows[-1]["seq"])} if rows else position
        if self.listen_url is not None and len(rows) < limit:
            self._held_back = bool(found and found[0]["held_back"])
        return [event_of(r) for r in rows], after

    async def listen(self) -> None:
        if self.listen_url is None or self._listener is not None:
            return
        try:
            listener = await psycopg.AsyncConnection.connect(self.listen_url, autocommit=True)
            await listener.execute(f"LISTEN {CHANNEL}")
        except psycopg.OperationalError as err:
            log.warning("event notifications unavailable, polling meanwhile: %s", err)
            return
        self._listener = listener

    async def wait(self, timeout_s: float) -> None:
        if self._held_back:
            # Rows sit behind an open transaction that may never notify: re-read soon.
            await asyncio.sleep(min(self._retry_s, timeout_s))
            self._retry_s = min(self._retry_s * 2, MAX_RETRY_S, timeout_s)
            return
        self._retry_s = FIRST_RETRY_S
        if self._listener is None:
            await self.listen()
            if self._listener is not None:
                return  # (re)subscribed: what committed meanwhile was not announced, read now
            await asyncio.sleep(timeout_s)
            return
        try:
            async for _ in self._listener.notifies(timeout=timeout_s, stop_after=1):
                pass
        except psycopg.OperationalError as err:
            log.warning("lost the event notification connection, polling meanwhile: %s", err)
            await self._close_listener()

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()

    async def close(self) -> None:
        await self._close_listener()
        await self.conn.close()


class CursorConnection(Protocol):
    """The slice of a connection the RisingWave source uses (a fake implements it in tests)."""

    async def run(self, query: sql.Composable | str) -> list[dict[str, Any]]: ...

    async def close(self) -> None: ...


class PsycopgCursorConnection:
    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    async def run(self, query: sql.Composable | str) -> list[dict[str, Any]]:
        statement = query if isinstance(query, sql.Composed | sql.SQL) else sql.SQL(str(query))
        cur = await self.conn.execute(statement)
        return list(await cur.fetchall()) if cur.description else []

    async def close(self) -> None:
        await self.conn.close()


# What FETCH from a subscription cursor returns, per RisingWave's own code and e2e tests
# (risingwavelabs/risingwave, src/frontend/src/session/cursor_manager.rs `build_desc`, and
# e2e_test/subscription/main.py `check_rows_data`): the table's visible columns, then `op`,
# then `rw_timestamp` (int64, last). Older releases type `op` as int2 (1 Insert, 2 Delete,
# 3 UpdateInsert, 4 UpdateDelete); newer ones as varchar ("Insert", "UpdateInsert", ...).
# Rows read from the table snapshot (no SINCE) carry a NULL rw_timestamp. So a change is read
# by name when the column is there (bare or qualified, e.g. "events.op") and by position
# otherwise, and both encodings of `op` count.
INSERT_OPS = frozenset({"insert", "updateinsert", "1", "3"})
OP_COLUMN, TIMESTAMP_COLUMN = "op", "rw_timestamp"


def _bare(name: str) -> str:
    return name.rsplit(".", 1)[-1].strip('"').lower()


def change_of(row: dict[str, Any]) -> tuple[bool, int | None, dict[str, Any]]:
    """(is an insert, rw_timestamp, the row by bare column name) for one fetched change."""
    by_name = {_bare(k): v for k, v in row.items()}
    values = list(row.values())
    if len(values) < 2:
        raise ValueError(f"a subscription change needs op and rw_timestamp columns, got {list(row)}")
    op = by_name[OP_COLUMN] if OP_COLUMN in by_name else values[-2]
    stamp = by_name[TIMESTAMP_COLUMN] if TIMESTAMP_COLUMN in by_name else values[-1]
    return str(op).strip().lower() in INSERT_OPS, int(stamp) if stamp is not None else None, by_name


class RisingWaveSubscription:
    """Read ``events`` changes from a RisingWave subscription cursor, resumable by rw_timestamp."""

    name = "risingwave:events_changes"

    def __init__(
        self,
        conn: CursorConnection,
        *,
        subscription: str = "events_changes",
        cursor: str = "mca_trigger_cursor",
        timeout: str = "1s",
    ) -> None:
        self.conn = conn
        self.subscription = subscription
        self.cursor = cursor
        self.timeout = timeout
        self._open = False

    def declare_sql(self, since: int | None) -> sql.Composed:
        base = sql.SQL("DECLARE {} SUBSCRIPTION CURSOR FOR {}").format(
            sql.Identifier(self.cursor), sql.Identifier(self.subscription)
        )
        if since is None:
            return sql.Composed([base, sql.SQL(" SINCE now()")])
        return sql.Composed([base, sql.SQL(" SINCE "), sql.Literal(int(since))])

    def fetch_sql(self, limit: int) -> sql.Composed:
        return sql.SQL("FETCH {} FROM {} WITH (timeout = {})").format(
            sql.Literal(int(limit)), sql.Identifier(self.cursor), sql.Literal(self.timeout)
        )

    async def start_position(self, start: Start) -> dict[str, Any]:
        # "earliest" means the oldest change the subscription still retains.
        return {"rw_timestamp": 0 if start == "earliest" else None}

    async def _ensure_cursor(self, since: int | None) -> None:
        if self._open:
            return
        await self.conn.run(self.declare_sql(since))
        self._open = True

    async def fetch(
        self, position: dict[str, Any], limit: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        since = position.get("rw_timestamp")
        await self._ensure_cursor(int(since) if since is not None else None)
        rows = await self.conn.run(self.fetch_sql(limit))
        if not rows:
            return [], position
        changes = [change_of(r) for r in rows]
        events = [event_of(named) for inserted, _, named in changes if inserted]
        stamps = [stamp for _, stamp, _ in changes if stamp is not None]
        return events, {"rw_timestamp": max(stamps)} if stamps else position

    async def close(self) -> None:
        await self.conn.close()


def dedupe(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop repeated event ids within one batch (RisingWave replays share a timestamp)."""
    seen: set[str] = set()
    out = []
    for e in events:
        if e["event_id"] not in seen:
            seen.add(e["event_id"])
            out.append(e)
    return out
