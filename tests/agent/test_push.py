"""Push, not poll (issue 13, item 1): a stored event wakes the trigger service at once.

The service runs with a 30 s fallback poll; each test waits at most 10 s for the job, by
LISTENing to the notification the trigger service sends when it makes jobs. So a pass means
the wake-up came from the event's commit, not from the poll. The wake-up must not break
invariant 6: rows that commit above an older open transaction are still read, in order,
once that transaction ends, whether or not it stores events itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from agent.runtime import trigger_service
from mca.db import Stores, connect_async
from mca.settings import Settings
from mca.testing import add_events, event_row, wait_until_async

FALLBACK_POLL = timedelta(seconds=30)
WAKE_TIMEOUT_S = 10.0
INSERT = "INSERT INTO events (event_id, user_id, event_type, ts, value) VALUES (%s, %s, 'purchase', %s, 500)"


async def job_users(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    cur = await conn.execute("SELECT user_id FROM agent_jobs ORDER BY created_at, job_id")
    return [r["user_id"] for r in await cur.fetchall()]


@pytest.fixture
async def running_service(
    settings: Settings, stores: Stores, aconn: psycopg.AsyncConnection[Any]
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """The trigger service, past its first read, polling only every 30 s; yields a
    connection LISTENing to the jobs it makes."""
    jobs = await connect_async(stores.ops_url, autocommit=True)
    await jobs.execute("LISTEN mca_agent_jobs")
    stop = asyncio.Event()
    async with trigger_service(settings, stores, start="latest") as service:
        task = asyncio.create_task(service.run(stop, poll=FALLBACK_POLL))

        async def started() -> bool:
            return await service.position() is not None

        await wait_until_async(started, "the service's first read")
        try:
            yield jobs
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await jobs.close()


async def wait_for_jobs(jobs: psycopg.AsyncConnection[Any], aconn: Any, users: list[str]) -> None:
    """Until jobs for `users` exist, woken by the service's NOTIFY; at most WAKE_TIMEOUT_S."""
    deadline = time.monotonic() + WAKE_TIMEOUT_S
    while sorted(await job_users(aconn)) != sorted(users):
        left = deadline - time.monotonic()
        assert left > 0, f"no jobs for {users} within {WAKE_TIMEOUT_S}s (fallback poll {FALLBACK_POLL})"
        async for _ in jobs.notifies(timeout=left, stop_after=1):
            pass


async def test_a_stored_event_wakes_the_service_before_its_poll(running_service: Any, aconn: Any) -> None:
    await add_events(aconn, event_row("p1", "u1", "purchase", datetime.now(UTC), value=300))
    await wait_for_jobs(running_service, aconn, ["u1"])


async def test_a_wake_up_does_not_skip_a_transaction_that_commits_later(
    running_service: Any, aconn: Any, db_url: str
) -> None:
    slow = await connect_async(db_url)
    try:
        await slow.execute(INSERT, ("slow", "u-slow", datetime.now(UTC)))  # lower xid, still open
        await add_events(aconn, event_row("fast", "u-fast", "purchase", datetime.now(UTC), value=500))
        # The fast commit woke the service, but its row waits behind the open transaction.
        await slow.commit()
        await wait_for_jobs(running_service, aconn, ["u-fast", "u-slow"])
    finally:
        await slow.close()
    assert await job_users(aconn) == ["u-slow", "u-fast"]  # read in (xid, seq) order


async def test_rows_held_back_by_a_transaction_that_stores_no_events_are_read_soon(
    running_service: Any, aconn: Any, db_url: str
) -> None:
    """That transaction's commit sends no notification: the tail re-reads on a backoff."""
    other = await connect_async(db_url)
    try:
        await other.execute("SELECT pg_current_xact_id()")  # takes an xid, stores no event
        await add_events(aconn, event_row("held", "u-held", "purchase", datetime.now(UTC), value=500))
        await other.commit()
        await wait_for_jobs(running_service, aconn, ["u-held"])
    finally:
        await other.close()
