"""Approval thresholds and ceilings hold per decision and per customer over a period, not only per
call, and under concurrency (the running totals are counter rows reserved in the ledger transaction)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg
from mcp import Client
from mcp.server.mcpserver import MCPServer

from mca.db import Stores
from mca.settings import Settings
from mca.testing import FrozenClock, count
from mcp_tools.runtime import Runtime
from mcp_tools.server import build_server
from tests.mcp_tools.helpers import call

LOOSE = {
    "caps": {"day": 1000, "week": 1000, "month": 1000},
    "budgets": {"global": {"day": 100000, "month": 100000}, "per_user": {"month": 100000}},
    "triggers": {"default": {"budget": {"day": 100000}}},
}


def award(i: int, points: int = 500) -> dict[str, Any]:
    # Distinct reasons: twelve distinct calls, not one call retried twelve times.
    return {"user_id": "u_ok", "points": points, "reason": f"part {i}"}


async def _race(
    settings: Settings, stores: Stores, clock: FrozenClock, calls: list[tuple[dict[str, Any], str]]
) -> list[dict[str, Any]]:
    servers = [build_server(settings, stores, clock=clock, pool_size=15) for _ in range(2)]
    async with Client(servers[0]) as a, Client(servers[1]) as b:
        clients = [a, b]
        replies = await asyncio.gather(
            *(call(clients[i % 2], "award_points", args, decision=d) for i, (args, d) in enumerate(calls))
        )
    return [data for _, data in replies]


async def test_twelve_awards_in_one_decision_cannot_split_the_threshold(
    server: MCPServer[Any], set_policy: Callable[..., None], world: str
) -> None:
    set_policy(**LOOSE, points={"per_user": {"day": 100000}})
    async with Client(server) as client:
        results = [(await call(client, "award_points", award(i), decision="split"))[1] for i in range(12)]
        other = (await call(client, "award_points", award(0), decision="another-decision"))[1]
    assert [r["status"] for r in results] == ["allowed"] + ["held"] * 11
    assert {r["reason"] for r in results[1:]} == {"approval_required"}
    assert "would total more than 500" in results[1]["message"]
    assert other["status"] == "allowed"  # the threshold is per decision
    assert count(world, "outbox", "kind = 'points'") == 2
    assert count(world, "pending_actions", "kind = 'hold'") == 11


async def test_coupons_in_one_decision_count_together(server: MCPServer[Any], world: str) -> None:
    async with Client(server) as client:
        first = await call(
            client, "send_coupon", {"user_id": "u_ok", "asset_id": "A20", "reason": "a"}, decision="c"
        )
        second = await call(
            client, "send_coupon", {"user_id": "u_ok", "asset_id": "A10", "reason": "b"}, decision="c"
        )
    assert first[1]["status"] == "allowed"
    assert second[1]["status"] == "held" and second[1]["reason"] == "approval_required"


async def test_racing_awards_in_one_decision_allow_exactly_one(
    tool_settings: Settings,
    tool_stores: Stores,
    clock: FrozenClock,
    set_policy: Callable[..., None],
    world: str,
) -> None:
    set_policy(**LOOSE, points={"per_user": {"day": 100000}})
    results = await _race(tool_settings, tool_stores, clock, [(award(i), "race") for i in range(12)])
    assert Counter(r["status"] for r in results) == {"allowed": 1, "held": 11}
    with psycopg.connect(world) as conn:
        row = conn.execute("SELECT spent FROM budget_counters WHERE scope LIKE 'decision:%%'").fetchone()
    assert row is not None and row[0] == 500


async def test_racing_decisions_stop_at_the_customers_daily_ceiling(
    tool_settings: Settings,
    tool_stores: Stores,
    clock: FrozenClock,
    set_policy: Callable[..., None],
    world: str,
) -> None:
    set_policy(**LOOSE, points={"approval_above": None, "per_user": {"day": 1000}})
    results = await _race(tool_settings, tool_stores, clock, [(award(i, 400), f"d-{i}") for i in range(10)])
    assert Counter(r["status"] for r in results) == {"allowed": 2, "denied": 8}
    assert {r["reason"] for r in results if r["status"] == "denied"} == {"points_user_ceiling"}
    # The next customer day is a new period.
    clock.advance(days=1)
    async with Client(build_server(tool_settings, tool_stores, clock=clock)) as client:
        tomorrow = await call(client, "award_points", award(99, 400), decision="tomorrow")
    assert tomorrow[1]["status"] == "allowed"
    assert count(world, "outbox", "kind = 'points'") == 3


async def test_an_approved_hold_is_sent_but_still_counts_toward_the_ceiling(
    server: MCPServer[Any], runtime: Runtime, set_policy: Callable[..., None], world: str
) -> None:
    set_policy(**LOOSE, points={"per_user": {"day": 1200}})
    async with Client(server) as client:
        results = [(await call(client, "award_points", award(i), decision="approve-me"))[1] for i in range(2)]
    assert [r["status"] for r in results] == ["allowed", "held"]
    async with runtime.acquire() as deps:
        approved = await deps.service.release(results[1]["approval_id"], by="alice", approve=True)
    assert approved is not None and approved.status == "allowed"
    async with Client(server) as client:
        over = (await call(client, "award_points", award(7, 300), decision="fresh"))[1]
    assert over["status"] == "denied" and over["reason"] == "points_user_ceiling"
