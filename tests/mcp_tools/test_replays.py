"""External callers without a decision id: identical calls replay only within a window, or by the
caller's explicit idempotency key, and every replay says so."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
from mcp import Client

from mca.db import Stores
from mca.settings import Settings
from mca.testing import FrozenClock, count
from mcp_tools.server import build_server
from tests.mcp_tools.helpers import NOON, meta

COUPON = {"user_id": "u_ok", "asset_id": "A10", "reason": "thanks"}
SMS = {"user_id": "u_noconsent", "text": "Your order shipped.", "reason": "order"}
ALL = ["search_assets", "get_user_context", "send_coupon", "send_sms", "update_crm", "award_points"]


def _assistant(set_policy: Callable[..., None]) -> None:
    set_policy(
        caps={"day": 100, "week": 100, "month": 100},
        channels={"sms": {"min_gap_hours": 0, "caps": {"day": 100}}},
        callers={
            "assistant": {"trust_meta": False, "trigger": "default", "tools": ALL, "replay_window_s": 600}
        },
    )


async def _call(client: Client, tool: str, args: dict[str, Any], **items: str) -> dict[str, Any]:
    result = await client.call_tool(tool, args, meta=meta(**items) if items else None)
    data = result.structured_content
    return data if data is not None else json.loads(result.content[0].text)  # type: ignore[union-attr]


async def test_without_a_key_identical_calls_replay_only_within_the_window(
    tool_settings: Settings,
    tool_stores: Stores,
    clock: FrozenClock,
    set_policy: Callable[..., None],
    world: str,
) -> None:
    _assistant(set_policy)
    server = build_server(tool_settings, tool_stores, clock=clock, local_caller="assistant")
    async with Client(server) as client:
        clock.advance(seconds=500)
        first = await _call(client, "send_coupon", COUPON)
        clock.advance(seconds=200)  # across a window boundary, but 200 s after the first call
        retry = await _call(client, "send_coupon", COUPON)
        clock.advance(seconds=420)  # 620 s after the first call
        later = await _call(client, "send_coupon", COUPON)
    assert first["status"] == "allowed" and "replayed" not in first
    assert retry["replayed"] is True and retry["outbox_id"] == first["outbox_id"]
    assert retry["replayed_from"] == (NOON + timedelta(seconds=500)).isoformat()
    assert (
        later["status"] == "allowed" and "replayed" not in later and later["outbox_id"] != first["outbox_id"]
    )
    assert count(world, "outbox") == 2


async def test_a_refusal_does_not_outlive_the_window_after_consent_is_given(
    tool_settings: Settings,
    tool_stores: Stores,
    clock: FrozenClock,
    set_policy: Callable[..., None],
    world: str,
) -> None:
    _assistant(set_policy)
    server = build_server(tool_settings, tool_stores, clock=clock, local_caller="assistant")
    async with Client(server) as client:
        refused = await _call(client, "send_sms", SMS)
        with psycopg.connect(world, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO events (event_id, user_id, event_type, ts, properties) "
                "VALUES ('opt-in', 'u_noconsent', 'identify', %s, %s)",
                (NOON, json.dumps({"consent_sms": True})),
            )
        soon = await _call(client, "send_sms", SMS)
        clock.advance(minutes=21)
        after = await _call(client, "send_sms", SMS)
    assert refused["reason"] == "no_consent"
    assert soon["reason"] == "no_consent" and soon["replayed"] is True
    assert after["status"] == "allowed" and "replayed" not in after


async def test_an_explicit_idempotency_key_replays_until_the_caller_changes_it(
    tool_settings: Settings,
    tool_stores: Stores,
    clock: FrozenClock,
    set_policy: Callable[..., None],
    world: str,
) -> None:
    _assistant(set_policy)
    server = build_server(tool_settings, tool_stores, clock=clock, local_caller="assistant")
    async with Client(server) as client:
        first = await _call(client, "send_coupon", COUPON, idempotency_key="order-77")
        clock.advance(days=2)
        again = await _call(client, "send_coupon", COUPON, idempotency_key="order-77")
        other = await _call(client, "send_coupon", COUPON, idempotency_key="order-78")
    assert first["status"] == "allowed"
    assert again["replayed"] is True and again["outbox_id"] == first["outbox_id"]
    assert other["status"] == "allowed" and "replayed" not in other
    assert count(world, "outbox") == 2
