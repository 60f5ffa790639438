"""Holds for approval, quiet hours and calendar-day caps across time zones and a DST change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from mca.testing import FrozenClock, count
from mcp_tools.errors import NotFound
from mcp_tools.guard import quiet_until, zone_of
from mcp_tools.runtime import Runtime
from tests.mcp_tools.helpers import call


async def test_hold_then_approve_sends(server: MCPServer[Any], runtime: Runtime, world: str) -> None:
    async with Client(server) as client:
        is_error, data = await call(
            client, "send_coupon", {"user_id": "u_ok", "asset_id": "A30", "reason": "vip"}
        )
    assert not is_error and data["status"] == "held" and data["reason"] == "approval_required"
    assert count(world, "outbox") == 0
    async with runtime.acquire() as deps:
        outcome = await deps.service.release(data["approval_id"], by="alice", approve=True)
        assert outcome is not None and outcome.status == "allowed"
        with pytest.raises(NotFound):
            await deps.service.release(data["approval_id"], by="alice", approve=True)
    assert count(world, "outbox", "kind = 'coupon'") == 1
    assert count(world, "pending_actions", "decided_by = 'alice' AND status = 'done'") == 1


async def test_hold_then_reject_sends_nothing(server: MCPServer[Any], runtime: Runtime, world: str) -> None:
    async with Client(server) as client:
        _, data = await call(client, "award_points", {"user_id": "u_ok", "points": 800, "reason": "asked"})
        assert data["status"] == "held"
        async with runtime.acquire() as deps:
            outcome = await deps.service.reject(data["approval_id"], by="bob")
        assert outcome.reason == "rejected"
        _, again = await call(client, "award_points", {"user_id": "u_ok", "points": 800, "reason": "asked"})
    assert again["replayed"] and again.get("current_status") == "rejected"
    assert count(world, "outbox") == 0
    assert count(world, "audit_log", "reasons ? 'rejected' AND caller = 'operator:bob'") == 1


def test_quiet_hours_across_zones() -> None:
    start, end = "21:00", "08:00"
    noon_utc = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    # Tokyo is at 21:00 local: quiet until 08:00 Tokyo next day = 23:00 UTC.
    assert quiet_until(noon_utc, zone_of("Asia/Tokyo", "UTC"), start, end) == datetime(
        2026, 11, 23, 23, 0, tzinfo=UTC
    )
    # New York is at 07:00 local: quiet for one more hour.
    assert quiet_until(noon_utc, zone_of("America/New_York", "UTC"), start, end) == datetime(
        2026, 11, 23, 13, 0, tzinfo=UTC
    )
    assert quiet_until(noon_utc, zone_of("UTC", "UTC"), start, end) is None


def test_quiet_hours_end_moves_with_dst() -> None:
    zone = zone_of("America/New_York", "UTC")
    # The night of the spring-forward change (2026-03-08): 08:00 EDT is 12:00 UTC.
    before = datetime(2026, 3, 8, 3, 0, tzinfo=UTC)  # 22:00 EST on March 7
    assert quiet_until(before, zone, "21:00", "08:00") == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
    # A week earlier, standard time: 08:00 EST is 13:00 UTC.
    assert quiet_until(datetime(2026, 3, 1, 3, 0, tzinfo=UTC), zone, "21:00", "08:00") == datetime(
        2026, 3, 1, 13, 0, tzinfo=UTC
    )
    # Fall back (2026-11-01): 01:30 happens twice; the window still ends at 08:00 EST = 13:00 UTC.
    assert quiet_until(datetime(2026, 11, 1, 6, 30, tzinfo=UTC), zone, "21:00", "08:00") == datetime(
        2026, 11, 1, 13, 0, tzinfo=UTC
    )


async def test_calendar_day_cap_follows_the_users_day(
    server: MCPServer[Any], clock: FrozenClock, world: str
) -> None:
    # 03:30 UTC on Nov 24 is still Nov 23 in New York (22:30): SMS quiet, so use coupons (email).
    coupon = {"user_id": "u_ny", "asset_id": "A10", "reason": "r"}
    async with Client(server) as client:
        clock.set(datetime(2026, 11, 24, 3, 30, tzinfo=UTC))  # Nov 23, 22:30 in New York
        for i in range(2):
            is_error, data = await call(client, "send_coupon", coupon, decision=f"a{i}")
            assert not is_error, data
        _, data = await call(client, "send_coupon", coupon, decision="a2")
        assert data["reason"] == "freq_cap_day"
        # Next local midnight in New York is 05:00 UTC (EST).
        assert data["retry_at"] == "2026-11-24T05:00:00+00:00"
        clock.set(datetime(2026, 11, 24, 5, 0, 1, tzinfo=UTC))  # Nov 24, 00:00:01 in New York
        is_error, data = await call(client, "send_coupon", coupon, decision="a3")
    assert not is_error and data["status"] == "allowed", data
    assert count(world, "contact_counters", "user_id = 'u_ny' AND channel = '*' AND period = 'day'") == 2


async def test_calendar_day_across_dst_change(
    server: MCPServer[Any], clock: FrozenClock, set_policy: Any
) -> None:
    set_policy(caps={"day": 1, "week": 10, "month": 30})
    coupon = {"user_id": "u_ny", "asset_id": "A10", "reason": "r"}
    async with Client(server) as client:
        # 2026-03-08 is 23 hours long in New York: 04:59 UTC on Mar 9 is 00:59 EDT on Mar 9,
        # while 04:59 UTC on Mar 8 was 23:59 EST on Mar 7.
        clock.set(datetime(2026, 3, 8, 5, 30, tzinfo=UTC))  # 00:30 EST, Mar 8
        assert (await call(client, "send_coupon", coupon, decision="m8"))[1]["status"] == "allowed"
        clock.set(datetime(2026, 3, 9, 3, 30, tzinfo=UTC))  # 23:30 EDT, still Mar 8
        _, data = await call(client, "send_coupon", coupon, decision="m8b")
        assert data["reason"] == "freq_cap_day"
        assert data["retry_at"] == "2026-03-09T04:00:00+00:00"  # midnight EDT
        clock.set(datetime(2026, 3, 9, 4, 0, 1, tzinfo=UTC))
        assert (await call(client, "send_coupon", coupon, decision="m9"))[1]["status"] == "allowed"
