"""The direct transport: rows into the state store's ``events`` table.

PostgreSQL: concurrent requests are group-committed: whatever arrived while the previous
statement ran goes into the next transaction (one statement, see ingest/pg_store.py), so the
commit cost is shared and each request still hears back only after its own rows are
committed. One request the store refuses (a value PostgreSQL rejects) must not fail its
neighbours: the group is then stored again request by request, each under its own
savepoint in one transaction, so the valid ones commit together and only the bad one gets
its 422. A request whose rows cannot even be encoded is refused before it joins a group.
RisingWave: plain multi-row INSERT then FLUSH (it has no ``COPY FROM STDIN``); its primary
key makes a redelivery overwrite itself, so duplicates are not counted there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ingest.errors import IngestError, TransportUnavailable
from ingest.formats import COLUMNS, Row
from ingest.pg_store import (
    encode_rows,
    insert_new,
    is_client_data_error,
    is_transient,
    join_encoded,
    store,
    store_rejected,
)
from ingest.transport import Receipt
from mca.db import Engine, engine_of_version
from mca.errors import DatabaseUnreachable
from mca.settings import mask_url

log = logging.getLogger(__name__)

_RW_COLUMNS = ", ".join(COLUMNS)
_RW_ROW = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
RW_CHUNK_ROWS = 1000  # 12 parameters a row stays far below the protocol's 65,535
MAX_GROUP_ROWS = 5000
WRITERS = 2
# A store that cannot hand out a connection this fast gets a 503, not a hanging client.
CONNECTION_WAIT_S = 5.0


def _unavailable(err: Exception) -> TransportUnavailable:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return TransportUnavailable(f"state store unavailable: {reason}", retry_after_s=2)


@dataclass
class _Request:
    """One POST's rows, already encoded, waiting for the group that commits them."""

    ids: list[str]
    payload: str
    future: asyncio.Future[Receipt]


Outcome = Receipt | IngestError


class PostgresDirect:
    """Group-committing writer for a PostgreSQL state store."""

    name = "direct"

    def __init__(self, pool: AsyncConnectionPool, *, max_rows: int = MAX_GROUP_ROWS, writers: int = WRITERS):
        self.pool = pool
        self.max_rows = max_rows
        self.writers = writers
        self._pending: deque[_Request] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._writer(), name=f"ingest-writer-{i}") for i in range(self.writers)
        ]

    @property
    def queued(self) -> int:
        """Requests waiting for a writer: the group commit's queue depth."""
        return len(self._pending)

    async def write(self, rows: list[Row]) -> Receipt:
        if not rows:
            return Receipt(accepted=0, duplicates=0, event_ids=[])
        payload = encode_rows(rows)  # a row that cannot be encoded is this request's 422 alone
        future: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        self._pending.append(_Request([row["event_id"] for row in rows], payload, future))
        self._wake.set()
        return await future

    def _take(self) -> list[_Request]:
        taken: list[_Request] = []
        count = 0
        while self._pending and (not taken or count + len(self._pending[0].ids) <= self.max_rows):
            request = self._pending.popleft()
            if not request.future.done():  # a client that went away needs no write
                taken.append(request)
                count += len(request.ids)
        if not self._pending:
            self._wake.clear()
        return taken

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            group = self._take()
            if group:
                await self._commit_group(group)

    async def _commit_group(self, group: list[_Request]) -> None:
        try:
            async with self.pool.connection(timeout=CONNECTION_WAIT_S) as conn:
                outcomes = await _store_group(conn, group)
        except PoolTimeout as err:
            outcomes = [_unavailable(err)] * len(group)
        except psycopg.Error as err:
            if not is_transient(err):
                log.exception("storing %d requests failed", len(group))
                for request in group:
                    _settle(request.future, exc=err)
                return
            outcomes = [_unavailable(err)] * len(group)
        except Exception as err:  # never leave a client hanging
            log.exception("storing %d requests failed", len(group))
            for request in group:
                _settle(request.future, exc=err)
            return
        for request, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, Receipt):
                _settle(request.future, result=outcome)
            else:
                _settle(request.future, exc=outcome)

    async def ready(self) -> str | None:
        return await _ping(self.pool)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for request in self._pending:
            _settle(request.future, exc=TransportUnavailable("shutting down", retry_after_s=1))
        self._pending.clear()


async def _store_group(conn: psycopg.AsyncConnection[Any], group: list[_Request]) -> list[Outcome]:
    """The whole group in one transaction: a plain INSERT when every event is new, else the
    duplicate-counting one; if the store refuses the group for a request's data, each
    request again under its own savepoint (see _isolate)."""
    payload = join_encoded([r.payload for r in group])
    try:
        async with _statement_transaction(conn):
            await insert_new(conn, payload)
        # Every row went in, so no id was a repeat: nothing to count.
        return [Receipt(accepted=len(r.ids), duplicates=0, event_ids=r.ids) for r in group]
    except psycopg.errors.UniqueViolation:
        pass  # a redelivery, or one id twice in the group: count duplicates
    except psycopg.Error as err:
        if not is_client_data_error(err):
            raise
        return await _isolate(conn, group, err)
    try:
        async with conn.transaction():
            stored_before = await store(conn, payload, [i for r in group for i in r.ids])
        return _receipts(group, stored_before, {})
    except psycopg.Error as err:
        if not is_client_data_error(err):
            raise
        return await _isolate(conn, group, err)


def _statement_transaction(conn: psycopg.AsyncConnection[Any]) -> contextlib.AbstractAsyncContextManager[Any]:
    """A transaction around one statement. On an autocommit connection (the gateway's) the
    statement is its own transaction: one round trip instead of BEGIN, the statement, COMMIT,
    each a wake-up of the backend, which on a busy machine waits for a core."""
    return contextlib.nullcontext() if conn.autocommit else conn.transaction()


async def _isolate(
    conn: psycopg.AsyncConnection[Any], group: list[_Request], err: psycopg.Error
) -> list[Outcome]:
    """Each request under its own savepoint, in one transaction: a refusal undoes that
    request only, and every other one commits with the same single commit."""
    if len(group) == 1:
        return [store_rejected(err)]
    log.warning("the state store refused a group of %d requests (%s); isolating", len(group), err)
    rejected: dict[int, IngestError] = {}
    stored_before: set[str] = set()
    async with conn.transaction():
        for index, request in enumerate(group):
            try:
                async with conn.transaction():
                    stored_before |= await store(conn, request.payload, request.ids)
            except psycopg.Error as refused:
                if not is_client_data_error(refused):
                    raise
                rejected[index] = store_rejected(refused)
    return _receipts(group, stored_before, rejected)


def _receipts(
    group: list[_Request], stored_before: set[str], rejected: dict[int, IngestError]
) -> list[Outcome]:
    """The first claimant of an id in the group inserted it; a repeat (in the same request or a
    later one) or an id stored before this transaction is a duplicate."""
    claimed: set[str] = set()
    outcomes: list[Outcome] = []
    for index, request in enumerate(group):
        if index in rejected:
            outcomes.append(rejected[index])
            continue
        new = 0
        for event_id in request.ids:
            if event_id not in stored_before and event_id not in claimed:
                claimed.add(event_id)
                new += 1
        outcomes.append(Receipt(accepted=new, duplicates=len(request.ids) - new, event_ids=request.ids))
    return outcomes


class RisingWaveDirect:
    """Multi-row INSERT then FLUSH (RisingWave's BEGIN does not make writes atomic)."""

    name = "direct"

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def start(self) -> None:
        return None

    async def write(self, rows: list[Row]) -> Receipt:
        encode_rows(rows)  # refuse what cannot be written before any chunk is sent (422)
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
            if is_client_data_error(err):
                raise store_rejected(err) from None
            raise
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
