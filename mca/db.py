"""Database access: resolve the store URLs, detect the engine, open connections.

Both stores speak the PostgreSQL wire protocol (RisingWave does too), so one driver
(psycopg 3) serves both; what differs is the dialect, detected from the server itself.
"""

from __future__ import annotations

import contextlib
import enum
import re
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from mca.embedded import EmbeddedPostgres
from mca.errors import DatabaseUnreachable
from mca.masking import mask_url
from mca.settings import Settings

CONNECT_TIMEOUT_S = 5
# Connection failures that waiting for a starting server cannot fix. psycopg reports connect
# failures without a SQLSTATE, so they are told apart by libpq's message; anything else
# (refused, DNS not yet registered, timeout, "the database system is starting up") is retried.
_PERMANENT = re.compile(
    r"authentication failed|does not exist|no pg_hba\.conf entry|password supplied|role .* is not permitted"
)
WAIT_FIRST_DELAY_S = 0.5
WAIT_MAX_DELAY_S = 8.0


class Engine(enum.StrEnum):
    POSTGRES = "postgres"
    RISINGWAVE = "risingwave"


@dataclass(frozen=True)
class Stores:
    """The two resolved store URLs. In the embedded default both point at one server."""

    state_url: str
    ops_url: str

    @property
    def shared(self) -> bool:
        return self.state_url == self.ops_url


def embedded_server(settings: Settings) -> EmbeddedPostgres:
    return EmbeddedPostgres(Path(settings.stores.data_dir), port=settings.stores.embedded_port)


def resolve_stores(settings: Settings, *, start_embedded: bool = True) -> Stores:
    """Turn the settings into two URLs, starting the embedded server only when a URL is unset."""
    embedded_url: str | None = None
    if settings.uses_embedded:
        server = embedded_server(settings)
        embedded_url = server.up() if start_embedded else server.url()
    state = settings.stores.state_url or embedded_url
    ops = settings.stores.ops_url or embedded_url
    assert state is not None and ops is not None
    return Stores(state_url=state, ops_url=ops)


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection[dict]:  # type: ignore[type-arg]
    """A synchronous connection with dict rows; unreachable servers become one clear line."""
    try:
        return psycopg.connect(
            url, autocommit=autocommit, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT_S
        )
    except psycopg.OperationalError as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DatabaseUnreachable(f"cannot reach {mask_url(url)}: {reason}") from None


def wait_reachable(url: str, timeout_s: float, on_wait: Callable[[str], None]) -> None:
    """Return once `url` accepts a connection; retry with doubling delays while its server starts.

    Compose starts `mca migrate` when RisingWave's port opens, which is before its frontend
    serves queries; without this the one-shot migration fails and every service stays down.
    """
    deadline = time.monotonic() + timeout_s
    delay = WAIT_FIRST_DELAY_S
    while True:
        try:
            psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S).close()
            return
        except psycopg.OperationalError as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            remaining = deadline - time.monotonic()
            if _PERMANENT.search(str(err)) or remaining <= 0:
                raise DatabaseUnreachable(f"cannot reach {mask_url(url)}: {reason}") from None
            pause = min(delay, remaining)
            on_wait(f"waiting for {mask_url(url)} ({reason}); retrying in {pause:.1f} s")
            time.sleep(pause)
            delay = min(delay * 2, WAIT_MAX_DELAY_S)


async def connect_async(url: str, *, autocommit: bool = False) -> psycopg.AsyncConnection[dict]:  # type: ignore[type-arg]
    try:
        return await psycopg.AsyncConnection.connect(
            url, autocommit=autocommit, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT_S
        )
    except psycopg.OperationalError as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DatabaseUnreachable(f"cannot reach {mask_url(url)}: {reason}") from None


def engine_of_version(version: str) -> Engine:
    if "RisingWave" in version:
        return Engine.RISINGWAVE
    if version.startswith("PostgreSQL"):
        return Engine.POSTGRES
    raise DatabaseUnreachable(f"unknown engine: SELECT version() returned {version[:80]!r}")


def detect_engine(conn: psycopg.Connection[dict]) -> Engine:  # type: ignore[type-arg]
    """Ask the server what it is (the URL scheme is the same for both engines)."""
    row = conn.execute("SELECT version() AS version").fetchone()
    assert row is not None
    return engine_of_version(str(row["version"]))


_engines: weakref.WeakKeyDictionary[Any, Engine] = weakref.WeakKeyDictionary()


async def engine_of_connection(conn: psycopg.AsyncConnection[Any]) -> Engine:
    """The engine behind `conn`, asked once per connection (pooled connections live long)."""
    engine = _engines.get(conn)
    if engine is None:
        cur = await conn.execute("SELECT version()")
        row = await cur.fetchone()
        assert row is not None
        version = row["version"] if isinstance(row, dict) else row[0]
        engine = _engines[conn] = engine_of_version(str(version))
    return engine


async def open_pool(
    url: str, *, min_size: int = 1, max_size: int = 10, name: str = "mca", autocommit: bool = False
) -> AsyncConnectionPool:
    """An opened async pool with dict rows; callers close it (``await pool.close()``).

    `autocommit`: a single statement needs no BEGIN/COMMIT round trips; code that must land two
    writes together opens ``conn.transaction()`` itself."""
    pool: AsyncConnectionPool = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        name=name,
        kwargs={"row_factory": dict_row, "connect_timeout": CONNECT_TIMEOUT_S, "autocommit": autocommit},
    )
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S * 2)
    except Exception as err:  # psycopg_pool raises PoolTimeout wrapping the real cause
        await pool.close()
        raise DatabaseUnreachable(f"cannot reach {mask_url(url)}: {err}") from None
    return pool


@asynccontextmanager
async def reading(pool: AsyncConnectionPool[Any]) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A connection of `pool` in autocommit for the block: each statement is its own implicit
    transaction, one round trip, where a pool opened without autocommit (the guard's, whose
    ledger manages its transactions itself) would send BEGIN and COMMIT around every read.
    For reads and single writes only; two writes that must land together need `transaction()`."""
    async with pool.connection() as conn, in_autocommit(conn):
        yield conn


@asynccontextmanager
async def in_autocommit(conn: psycopg.AsyncConnection[Any]) -> AsyncIterator[None]:
    """`conn` (idle) in autocommit for the block, then as it was: a statement is its own implicit
    transaction, one round trip instead of BEGIN, statement, COMMIT."""
    was = conn.autocommit
    if not was:
        await conn.set_autocommit(True)  # local to the client: no round trip
    try:
        yield
    finally:
        if not was:
            await conn.set_autocommit(False)


@asynccontextmanager
async def one_round_trip(conn: psycopg.AsyncConnection[Any]) -> AsyncIterator[None]:
    """A transaction whose BEGIN, statements and COMMIT travel together: one round trip when
    nothing in the block reads a result before it ends (a fetch inside costs one more). All or
    nothing as any transaction; results are read after the block.

    BEGIN and COMMIT are sent as statements in a pipeline: psycopg's `transaction()` inside a
    pipeline syncs on entry and exit, which costs more than the round trips it saves. On a
    connection that is not an idle autocommit one (a caller's transaction), the block is a
    plain nested `transaction()`."""
    if not conn.autocommit or conn.info.transaction_status != pq.TransactionStatus.IDLE:
        async with conn.transaction():
            yield
        return
    async with conn.pipeline() as pipe:
        await conn.execute("BEGIN")
        try:
            yield
            await conn.execute("COMMIT")
            await pipe.sync()
        except BaseException:
            # The statements queued behind a failed one come back "pipeline aborted": collect
            # them, then end the failed transaction, so the connection is whole again.
            with contextlib.suppress(psycopg.Error):
                await pipe.sync()
            if conn.pgconn.transaction_status in (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR):
                await conn.execute("ROLLBACK")
                await pipe.sync()
            raise
