"""The two round-trip savers of `mca.db`, on the real embedded PostgreSQL.

`one_round_trip` is a transaction sent in pipeline mode: still all or nothing, and an error
leaves nothing queued behind it. `reading` borrows a connection of a non-autocommit pool in
autocommit (no BEGIN/COMMIT around a read) and gives it back as it found it.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import pytest
from psycopg import pq

from mca.db import connect_async, one_round_trip, open_pool, reading

TABLE = "CREATE TABLE IF NOT EXISTS round_trip_probe (id int PRIMARY KEY)"


async def _ids(url: str) -> list[int]:
    conn = await connect_async(url, autocommit=True)
    try:
        rows = await (await conn.execute("SELECT id FROM round_trip_probe ORDER BY id")).fetchall()
        return [int(r["id"]) for r in rows]
    finally:
        await conn.close()


async def test_one_round_trip_commits_every_statement_sent_as_one_pipeline(db_url: str) -> None:
    conn = await connect_async(db_url, autocommit=True)
    await conn.execute(TABLE)
    statuses: list[Any] = []
    async with one_round_trip(conn):
        await conn.execute("INSERT INTO round_trip_probe VALUES (1)")
        statuses.append(conn.pgconn.pipeline_status)
        cur = await conn.execute("INSERT INTO round_trip_probe VALUES (2) RETURNING id")
    assert statuses == [pq.PipelineStatus.ON]
    assert await cur.fetchone() == {"id": 2}  # results are read after the block
    assert conn.pgconn.pipeline_status == pq.PipelineStatus.OFF
    await conn.close()
    assert await _ids(db_url) == [1, 2]


async def test_one_round_trip_is_all_or_nothing_and_leaves_nothing_queued(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    conn = await connect_async(db_url, autocommit=True)
    await conn.execute(TABLE)
    caplog.set_level(logging.WARNING, logger="psycopg")
    with pytest.raises(psycopg.errors.UniqueViolation):
        async with one_round_trip(conn):
            await conn.execute("INSERT INTO round_trip_probe VALUES (7)")
            await conn.execute("INSERT INTO round_trip_probe VALUES (7)")
            await conn.execute("INSERT INTO round_trip_probe VALUES (8)")
            await conn.execute("SELECT 1")
    assert await _ids(db_url) == []
    assert not [r for r in caplog.records if r.name.startswith("psycopg")], caplog.text
    # The connection is whole again: the next statement runs on its own.
    assert await (await conn.execute("SELECT 41 + 1 AS n")).fetchone() == {"n": 42}
    await conn.close()


async def test_reading_runs_in_autocommit_and_hands_the_connection_back_as_it_was(db_url: str) -> None:
    pool = await open_pool(db_url, max_size=1, autocommit=False)
    try:
        async with pool.connection() as conn:
            await conn.execute(TABLE)
        async with reading(pool) as conn:
            assert conn.autocommit
            await conn.execute("INSERT INTO round_trip_probe VALUES (3)")
            assert conn.info.transaction_status == pq.TransactionStatus.IDLE  # no BEGIN was sent
            assert await _ids(db_url) == [3]  # committed by the statement itself
        with pytest.raises(psycopg.errors.UndefinedTable):
            async with reading(pool) as conn:
                await conn.execute("SELECT * FROM no_such_table")
        async with pool.connection() as conn:  # the pool's one connection, as the pool made it
            assert not conn.autocommit
            await conn.execute("INSERT INTO round_trip_probe VALUES (4)")
            assert conn.info.transaction_status == pq.TransactionStatus.INTRANS
    finally:
        await pool.close()
    assert await _ids(db_url) == [3, 4]
