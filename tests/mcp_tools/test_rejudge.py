"""Rows are judged again at delivery: what changed while a row waited decides whether it goes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from mca.db import Stores
from mca.settings import Settings
from mca.testing import FrozenClock, count
from tests.mcp_tools.helpers import AGENT, COUPON, SMS, dispatcher_for, global_spent, outbox_row


def identify(url: str, user_id: str, at: datetime, **traits: Any) -> None:
    """A later identify event: the live contact row changes the way it does in production."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO events (event_id, user_id, event_type, ts, properties) "
            "VALUES (%s, %s, 'identify', %s, %s)",
            (f"id-{user_id}-{at.isoformat()}", user_id, at, json.dumps(traits)),
        )


def audit_reasons(url: str) -> list[tuple[str, str, list[str]]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT caller, verdict, reasons FROM audit_log WHERE caller = 'dispatcher' ORDER BY audit_id"
        ).fetchall()
    return [(r[0], r[1], list(r[2])) for r in rows]


async def test_kill_switch_turned_on_while_a_row_is_in_flight_holds_it(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, set_policy: Any, world: str
) -> None:
    async with dispatcher_for(tool_settings, tool_stores, clock) as (service, dispatcher):
        await service.act("send_coupon", COUPON, AGENT)
        [claimed] = await dispatcher.claim(10)
        set_policy(kill_switch=True)
        assert await dispatcher.process(claimed) == "held"
        row = outbox_row(world)
        assert row["status"] == "pending" and row["reason"] == "kill_switch" and row["attempts"] == 0
        assert count(world, "log_deliveries") == 0
        set_policy()
        assert await dispatcher.run_once() == {"delivered": 1}
    assert count(world, "log_deliveries") == 1


async def test_consent_withdrawn_while_waiting_cancels_and_gives_budget_back(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, world: str
) -> None:
    async with dispatcher_for(tool_settings, tool_stores, clock) as (service, dispatcher):
        await service.act("send_coupon", COUPON, AGENT)
        spent_before = global_spent(world)
        identify(world, "u_ok", clock() + timedelta(minutes=1), consent_email=False)
        assert await dispatcher.run_once() == {"cancelled": 1}
    row = outbox_row(world)
    assert row["status"] == "cancelled" and row["reason"] == "opted_out" and row["delivered_at"] is None
    assert spent_before > 0 and global_spent(world) == 0
    assert count(world, "tool_calls", "status = 'cancelled' AND reason = 'opted_out'") == 1
    assert audit_reasons(world) == [("dispatcher", "deny", ["opted_out"])]
    assert count(world, "log_deliveries") == 0


async def test_suppression_added_while_waiting_cancels(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, world: str
) -> None:
    async with dispatcher_for(tool_settings, tool_stores, clock) as (service, dispatcher):
        await service.act("send_sms", SMS, AGENT)
        with psycopg.connect(world, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO suppressions (user_id, channel, reason, source, created_at) "
                "VALUES ('u_ok', 'sms', 'STOP', 'inbound', now())"
            )
        assert await dispatcher.run_once() == {"cancelled": 1}
    row = outbox_row(world)
    assert row["status"] == "cancelled" and row["reason"] == "suppressed"
    assert audit_reasons(world) == [("dispatcher", "deny", ["suppressed"])]
    assert count(world, "log_deliveries") == 0


async def test_quiet_hours_reached_while_backing_off_waits_until_they_end(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, world: str
) -> None:
    async with dispatcher_for(tool_settings, tool_stores, clock) as (service, dispatcher):
        assert (await service.act("send_sms", SMS, AGENT)).status == "allowed"  # at noon
        clock.set(datetime(2026, 11, 23, 23, 0, tzinfo=UTC))  # the row was delayed into the night
        assert await dispatcher.run_once() == {"waiting": 1}
        row = outbox_row(world)
        assert row["status"] == "pending" and row["reason"] == "quiet_hours" and row["attempts"] == 0
        assert row["next_attempt_at"] == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
        assert await dispatcher.run_once() == {}  # not due before the quiet hours end
        clock.set(datetime(2026, 11, 24, 8, 0, 1, tzinfo=UTC))
        assert await dispatcher.run_once() == {"delivered": 1}
    assert outbox_row(world)["reason"] is None


async def test_a_row_older_than_the_maximum_age_expires(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, set_policy: Any, world: str
) -> None:
    async with dispatcher_for(tool_settings, tool_stores, clock) as (service, dispatcher):
        await service.act("send_coupon", COUPON, AGENT)
        set_policy(kill_switch=True)  # held for longer than the row may live
        clock.advance(seconds=dispatcher.max_age_s + 1)
        assert await dispatcher.run_once() == {}
        set_policy()
        spent_before = global_spent(world)
        assert await dispatcher.run_once() == {"expired": 1}
    row = outbox_row(world)
    assert (
        row["status"] == "expired"
        and row["reason"] == "expired"
        and "Not delivered within" in row["last_error"]
    )
    assert spent_before > 0 and global_spent(world) == 0
    assert audit_reasons(world) == [("dispatcher", "deny", ["expired"])]
    assert count(world, "log_deliveries") == 0
