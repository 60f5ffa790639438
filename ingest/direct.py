"""The direct transport: INSERT into the state store's ``events`` table.

PostgreSQL: concurrent requests are group-committed: whatever arrived while the previous
INSERT ran goes into the next one (one ``jsonb_to_recordset`` statement, ON CONFLICT DO
NOTHING RETURNING event_id), so the commit cost is shared and each request still hears back
only after its own rows are committed. RisingWave: plain multi-row INSERT then FLUSH; its
primary key makes a redelivery overwrite itself, so duplicates are not counted there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ingest.errors import FieldError, TransportUnavailable, ValidationFailed
from ingest.formats import COLUMNS, Row
from ingest.transport import Receipt
from mca.db import Engine, engine_of_version
from mca.errors import DatabaseUnreachable
from mca.settings import mask_url

log = logging.getLogger(__name__)

INSERT_POSTGRES = """
INSERT INTO events (event_id, user_id, event_type, ts, received_at, source,
                    value, points, sku, category, text, properties)
SELECT event_id, user_id, event_type, ts, received_at, source,
       value, points, sku, category, text, coalesce(properties, '{}'::jsonb)
FROM jsonb_to_recordset(%s::jsonb) AS r(
    event_id text, user_id text, event_type text, ts timestamptz, received_at timestamptz,
    source text, value numeric, points integer, sku text, category text, text text,
    properties jsonb)
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""
_RW_COLUMNS = ", ".join(COLUMNS)
_RW_ROW = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
RW_CHUNK_ROWS = 1000  # 12 parameters a row stays far below the protocol's 65,535
MAX_GROUP_ROWS = 5000
WRITERS = 2
# A store that cannot hand out a connection this fast gets a 503, not a hanging client.
CONNECTION_WAIT_S = 5.0


def rows_json(rows: list[Row]) -> str:
    return orjson.dumps(rows).decode()


def _unavailable(err: Exception) -> TransportUnavailable:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return TransportUnavailable(f"state store unavailable: {reason}", retry_after_s=2)


class PostgresDirect:
    """Group-committing writer for a PostgreSQL state store."""

    name = "direct"

    def __init__(self, pool: AsyncConnectionPool, *, max_rows: int = MAX_GROUP_ROWS, writers: int = WRITERS):
        self.pool = pool
        self.max_rows = max_rows
        self.writers = writers
        self._pending: deque[tuple[list[Row], asyncio.Future[Receipt]]] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._writer(), name=f"ingest-writer-{i}") for i in range(self.writers)
        ]

    async def write(self, rows: list[Row]) -> Receipt:
        future: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        self._pending.append((rows, future))
        self._wake.set()
        return await future

    def _take(self) -> list[tuple[list[Row], asyncio.Future[Receipt]]]:
        taken: list[tuple[list[Row], asyncio.Future[Receipt]]] = []
        count = 0
        while self._pending and (not taken or count + len(self._pending[0][0]) <= self.max_rows):
            item = self._pending.popleft()
            if not item[1].done():  # a client that went away needs no write
                taken.append(item)
                count += len(item[0])
        if not self._pending:
            self._wake.clear()
        return taken

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            group = self._take()
            if group:
                await self._commit_group(group)

    async def _insert(self, rows: list[Row]) -> set[str]:
        async with self.pool.connection(timeout=CONNECTION_WAIT_S) as conn:
            cur = await conn.execute(INSERT_POSTGRES, (rows_json(rows),))
            found: list[Any] = await cur.fetchall()  # dict rows (mca.db.open_pool)
            return {r["event_id"] for r in found}

    async def _commit_group(self, group: list[tuple[list[Row], asyncio.Future[Receipt]]]) -> None:
        try:
            inserted = await self._insert([row for rows, _ in group for row in rows])
        except (psycopg.OperationalError, PoolTimeout) as err:
            for _, future in group:
                _settle(future, exc=_unavailable(err))
            return
        except psycopg.Error as err:
            if len(group) == 1:
                _settle(group[0][1], exc=_store_rejected(err))
                return
            # One request's rows broke the statement: retry each alone so only it fails.
            for item in group:
                await self._commit_group([item])
            return
        except Exception as err:  # never leave a client hanging
            for _, future in group:
                _settle(future, exc=err)
            return
        for rows, future in group:
            ids = [row["event_id"] for row in rows]
            new = 0
            for event_id in ids:
                # The first claimant of a returned id is the one that inserted it; a repeat
                # within the same group (or request) is a duplicate.
                if event_id in inserted:
                    inserted.discard(event_id)
                    new += 1
            _settle(future, result=Receipt(accepted=new, duplicates=len(ids) - new, event_ids=ids))

    async def ready(self) -> str | None:
        return await _ping(self.pool)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for _, future in self._pending:
            _settle(future, exc=TransportUnavailable("shutting down", retry_after_s=1))
        self._pending.clear()


class RisingWaveDirect:
    """Multi-row INSERT then FLUSH (RisingWave's BEGIN does not make writes atomic)."""

    name = "direct"

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def start(self) -> None:
        return None

    async def write(self, rows: list[Row]) -> Receipt:
        try:
            async with self.pool.connection(timeout=CONNECTION_WAIT_S) as conn:
                await conn.set_autocommit(True)
                for start in range(0, len(rows), RW_CHUNK_ROWS):
                    chunk = rows[start : start + RW_CHUNK_ROWS]
                    # Only placeholders are joined here; every value is a bound parameter.
                    sql = f"INSERT INTO events ({_RW_COLUMNS}) VALUES " + ", ".join([_RW_ROW] * len(chunk))
                    params: list[Any] = []
                    for row in chunk:
                        params.extend(_rw_value(row, c) for c in COLUMNS)
                    await conn.execute(sql.encode(), params)
                await conn.execute("FLUSH")
        except (psycopg.OperationalError, PoolTimeout) as err:
            raise _unavailable(err) from None
        except psycopg.Error as err:
            raise _store_rejected(err) from None
        return Receipt(accepted=len(rows), duplicates=None, event_ids=[r["event_id"] for r in rows])

    async def ready(self) -> str | None:
        return await _ping(self.pool)

    async def close(self) -> None:
        return None


def _rw_value(row: Row, column: str) -> Any:
    value = row[column]
    if column == "properties":
        return Jsonb(value, dumps=_dumps_str)
    return value


def _dumps_str(value: Any) -> str:
    return orjson.dumps(value).decode()


def _store_rejected(err: psycopg.Error) -> ValidationFailed:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return ValidationFailed([FieldError("body", f"the state store rejected these events: {reason}")])


def _settle(
    future: asyncio.Future[Receipt], *, result: Receipt | None = None, exc: BaseException | None = None
) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        assert result is not None
        future.set_result(result)


async def _ping(pool: AsyncConnectionPool) -> str | None:
    try:
        async with pool.connection(timeout=2) as conn:
            await conn.execute("SELECT 1")
    except Exception as err:
        return f"state store unreachable: {str(err).strip()[:200] or type(err).__name__}"
    return None


async def detect_engine_async(pool: AsyncConnectionPool) -> Engine:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT version() AS version")
        row: Any = await cur.fetchone()
    if row is None:
        raise DatabaseUnreachable("SELECT version() returned nothing")
    return engine_of_version(str(row["version"]))


async def open_direct(pool: AsyncConnectionPool, url: str) -> PostgresDirect | RisingWaveDirect:
    engine = await detect_engine_async(pool)
    log.info("direct transport to %s (%s)", mask_url(url), engine)
    return RisingWaveDirect(pool) if engine is Engine.RISINGWAVE else PostgresDirect(pool)
