"""Budgets and caps under concurrency, and a process killed inside the ledger transaction."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from mca.db import Stores
from mca.settings import PROJECT_ROOT, Settings
from mca.testing import FrozenClock, count, wait_until
from mcp_tools.draws import SHARED_SHARDS
from mcp_tools.server import build_server
from tests.mcp_tools.helpers import call

CALLERS = 60
LOOSE_CAPS = {"day": 1000, "week": 1000, "month": 1000}


async def _race(servers: list[MCPServer[Any]], n: int) -> list[dict[str, Any]]:
    async def one(client: Client, i: int) -> dict[str, Any]:
        _, data = await call(
            client,
            "send_coupon",
            {"user_id": "u_ok", "asset_id": "A10", "reason": "race"},
            decision=f"race-{i}",
        )
        return data

    async with Client(servers[0]) as a, Client(servers[1]) as b:
        clients = [a, b]
        return list(await asyncio.gather(*(one(clients[i % 2], i) for i in range(n))))


def _two_servers(settings: Settings, stores: Stores, clock: FrozenClock) -> list[MCPServer[Any]]:
    # Two servers, two pools: the race crosses connections and processes' worth of sessions.
    return [build_server(settings, stores, clock=clock, pool_size=15) for _ in range(2)]


async def test_budget_with_room_for_ten_allows_exactly_ten(
    tool_settings: Settings,
    tool_stores: Stores,
    clock: FrozenClock,
    set_policy: Callable[..., None],
    world: str,
) -> None:
    set_policy(
        caps=LOOSE_CAPS, budgets={"global": {"day": 100, "month": 10000}, "per_user": {"month": 100000}}
    )
    results = await _race(_two_servers(tool_settings, tool_stores, clock), CALLERS)
    allowed = [r for r in results if r["status"] == "allowed"]
    assert len(allowed) == 10
    assert {r["reason"] for r in results if r["status"] == "denied"} == {"budget_global_day"}
    with psycopg.connect(world) as conn:
        row = conn.execute(
            "SELECT spent, limit_amount, shards FROM budget_totals WHERE scope = 'global:day'"
        ).fetchone()
        over = conn.execute("SELECT count(*) FROM budget_counters WHERE spent > quota").fetchone()
    assert row is not None and row[0] == 100 and row[0] <= row[1] and row[2] == SHARED_SHARDS
    assert over == (0,)
    assert count(world, "outbox") == 10 and count(world, "budget_ledger", "scope = 'global:day'") == 10


async def test_frequency_cap_of_ten_allows_exactly_ten(
    tool_settings: Settings,
    tool_stores: Stores,
    clock: FrozenClock,
    set_policy: Callable[..., None],
    world: str,
) -> None:
    set_policy(caps={"day": 10, "week": 1000, "month": 1000}, budgets={"per_user": {"month": 100000}})
    results = await _race(_two_servers(tool_settings, tool_stores, clock), CALLERS)
    assert sum(r["status"] == "allowed" for r in results) == 10
    assert {r["reason"] for r in results if r["status"] == "denied"} == {"freq_cap_day"}
    with psycopg.connect(world) as conn:
        row = conn.execute(
            "SELECT sent FROM contact_counters WHERE channel = '*' AND period = 'day'"
        ).fetchone()
    assert row is not None and row[0] == 10


def test_killed_mid_transaction_leaves_no_reservation_without_outbox(world: str, policy_path: Path) -> None:
    """The child is killed after it wrote its call, ledger and outbox rows and reserved the
    global and trigger budgets, while it waits for the last budget row (the user's, sorted
    last). The attempt is one statement (mca_allow), so the server finishes it once the row is
    free, client or no client: all of the call survives or none of it, never a reservation
    without its call, outbox and audit rows."""
    today = datetime.now(UTC)
    month = today.strftime("%Y-%m")
    with psycopg.connect(world, autocommit=True) as conn:
        insert = (
            "INSERT INTO budget_counters (scope, period_key, shard, limit_amount, quota, spent, updated_at) "
            "VALUES (%s, %s, 0, %s, %s, 0, now())"
        )
        conn.execute(insert, ("user:u_ok:month", month, 100, 100))
        conn.execute(insert, ("global:day", today.date().isoformat(), 500, 500))
    child_env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    with psycopg.connect(world) as blocker:
        blocker.execute(
            "SELECT 1 FROM budget_counters WHERE scope = 'user:u_ok:month' AND period_key = %s FOR UPDATE",
            (month,),
        )
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("kill_child.py")), world, str(policy_path)],
            stdout=subprocess.PIPE,
            text=True,
            env=child_env,
        )
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"

            def child_blocked() -> bool:
                with psycopg.connect(world) as probe:
                    row = probe.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query ILIKE '%%mca_allow%%' AND pid <> pg_backend_pid()"
                    ).fetchone()
                    return bool(row and row[0])

            wait_until(child_blocked, "the child to block on the user's budget row")
            with psycopg.connect(world) as probe, pytest.raises(psycopg.errors.LockNotAvailable):
                # The child holds its global reservation (uncommitted) at the moment it dies.
                probe.execute("SELECT 1 FROM budget_counters WHERE scope = 'global:day' FOR UPDATE NOWAIT")
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
        blocker.rollback()

    def child_backend_gone() -> bool:
        with psycopg.connect(world) as probe:
            row = probe.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE '%%mca_allow%%' "
                "AND state <> 'idle' AND pid <> pg_backend_pid()"
            ).fetchone()
            return bool(row and row[0] == 0)

    wait_until(child_backend_gone, "the killed child's transaction to end")
    calls = count(world, "tool_calls")
    assert calls in (0, 1)
    for table in ("outbox", "audit_log"):
        assert count(world, table) == calls, table
    assert (count(world, "budget_ledger") > 0) == bool(calls)
    with psycopg.connect(world) as conn:
        unmatched = conn.execute(
            "SELECT count(*) FROM budget_totals b FULL JOIN "
            "(SELECT scope, period_key, sum(amount) AS amount FROM budget_ledger GROUP BY 1, 2) l "
            "USING (scope, period_key) WHERE coalesce(b.spent, 0) <> coalesce(l.amount, 0)"
        ).fetchone()
    assert unmatched == (0,)


async def test_twenty_identical_retries_at_once_send_once(server: MCPServer[Any], world: str) -> None:
    args = {"user_id": "u_ok", "asset_id": "A10", "reason": "same decision, retried"}
    async with Client(server) as client:
        results = await asyncio.gather(
            *(call(client, "send_coupon", args, decision="twin") for _ in range(20))
        )
    outbox_ids = {data["outbox_id"] for _, data in results}
    assert len(outbox_ids) == 1 and all(data["status"] == "allowed" for _, data in results)
    assert sum(bool(data.get("replayed")) for _, data in results) == 19
    assert count(world, "outbox") == 1 and count(world, "tool_calls") == 1
    assert count(world, "budget_ledger", "scope = 'global:day'") == 1
