"""Every guard reason code, reached through the real MCP client and the real ops store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from mca.testing import FrozenClock, count
from mcp_tools.guard import REASONS
from mcp_tools.runtime import Runtime
from tests.mcp_tools.helpers import call, meta

COUPON = {"user_id": "u_ok", "asset_id": "A10", "reason": "thanks"}
SMS = {"user_id": "u_ok", "text": "Your tent is ready for pickup.", "reason": "order"}

# (reason, policy overrides, calls that must be allowed first, the call that must be refused)
CASES: list[tuple[str, dict[str, Any], list[tuple[str, dict[str, Any]]], tuple[str, dict[str, Any]]]] = [
    ("kill_switch", {"kill_switch": True}, [], ("send_coupon", COUPON)),
    ("do_not_contact", {}, [], ("send_sms", {**SMS, "user_id": "u_dnc"})),
    ("opted_out", {}, [], ("send_sms", {**SMS, "user_id": "u_optout"})),
    ("no_consent", {}, [], ("send_sms", {**SMS, "user_id": "u_noconsent"})),
    ("no_address", {}, [], ("send_sms", {**SMS, "user_id": "u_nophone"})),
    ("freq_cap_day", {}, [("send_coupon", COUPON), ("send_coupon", COUPON)], ("send_coupon", COUPON)),
    ("freq_cap_week", {"caps": {"day": 5, "week": 1}}, [("send_coupon", COUPON)], ("send_coupon", COUPON)),
    (
        "freq_cap_month",
        {"caps": {"day": 5, "week": 5, "month": 1}},
        [("send_coupon", COUPON)],
        ("send_coupon", COUPON),
    ),
    ("channel_cap_day", {"channels": {"sms": {"min_gap_hours": 0}}}, [("send_sms", SMS)], ("send_sms", SMS)),
    (
        "channel_cap_week",
        {"channels": {"sms": {"min_gap_hours": 0, "caps": {"day": 5, "week": 1}}}},
        [("send_sms", SMS)],
        ("send_sms", SMS),
    ),
    (
        "channel_cap_month",
        {"channels": {"sms": {"min_gap_hours": 0, "caps": {"day": 5, "month": 1}}}},
        [("send_sms", SMS)],
        ("send_sms", SMS),
    ),
    ("min_gap", {"channels": {"sms": {"caps": {"day": 5}}}}, [("send_sms", SMS)], ("send_sms", SMS)),
    (
        "budget_global_day",
        {"budgets": {"global": {"day": 15}}},
        [("send_coupon", COUPON)],
        ("send_coupon", COUPON),
    ),
    (
        "budget_global_week",
        {"budgets": {"global": {"day": 500, "week": 15}}},
        [("send_coupon", COUPON)],
        ("send_coupon", COUPON),
    ),
    (
        "budget_global_month",
        {"budgets": {"global": {"day": 500, "month": 15}}},
        [("send_coupon", COUPON)],
        ("send_coupon", COUPON),
    ),
    (
        "budget_trigger",
        {"triggers": {"default": {"budget": {"day": 15}}}},
        [("send_coupon", COUPON)],
        ("send_coupon", COUPON),
    ),
    (
        "budget_user",
        {"budgets": {"per_user": {"month": 15}}},
        [("send_coupon", COUPON)],
        ("send_coupon", COUPON),
    ),
    (
        "asset_redemptions",
        {"budgets": {"per_asset_redemptions": 1}},
        [("send_coupon", COUPON)],
        ("send_coupon", {**COUPON, "user_id": "u_ny"}),
    ),
    ("coupon_value_ceiling", {}, [], ("send_coupon", {**COUPON, "asset_id": "A60"})),
    ("points_ceiling", {}, [], ("award_points", {"user_id": "u_ok", "points": 5000, "reason": "r"})),
    (
        "points_user_ceiling",
        {"points": {"per_user": {"day": 60}}},
        [("award_points", {"user_id": "u_ok", "points": 50, "reason": "r"})],
        ("award_points", {"user_id": "u_ok", "points": 50, "reason": "r"}),
    ),
    (
        "coupon_user_ceiling",
        {"coupons": {"per_user": {"month": 15}}},
        [("send_coupon", COUPON)],
        ("send_coupon", COUPON),
    ),
    ("sms_too_long", {}, [], ("send_sms", {**SMS, "text": "Big news. " * 40})),
    ("sms_missing_opt_out", {"sms": {"append_opt_out": False}}, [], ("send_sms", SMS)),
    ("banned_phrase", {}, [], ("send_sms", {**SMS, "text": "Act now for a deal"})),
    (
        "crm_field_not_allowed",
        {},
        [],
        ("update_crm", {"user_id": "u_ok", "fields": {"credit_limit": 9}, "reason": "r"}),
    ),
]


@pytest.mark.parametrize(("reason", "overrides", "before", "final"), CASES, ids=[c[0] for c in CASES])
async def test_reason_code(
    server: MCPServer[Any],
    set_policy: Callable[..., None],
    world: str,
    reason: str,
    overrides: dict[str, Any],
    before: list[tuple[str, dict[str, Any]]],
    final: tuple[str, dict[str, Any]],
) -> None:
    set_policy(**overrides)
    async with Client(server) as client:
        for i, (tool, args) in enumerate(before):
            is_error, data = await call(client, tool, args, decision=f"before-{i}")
            assert not is_error and data["status"] == "allowed", data
        outbox_before = count(world, "outbox")
        is_error, data = await call(client, final[0], final[1], decision="final")
    assert is_error and data["status"] == "denied" and data["reason"] == reason, data
    assert data["message"]
    assert count(world, "outbox") == outbox_before
    assert count(world, "audit_log", f"verdict = 'deny' AND reasons ? '{reason}'") == 1


async def test_tool_not_allowed_for_trigger(server: MCPServer[Any], world: str) -> None:
    async with Client(server) as client:
        is_error, data = await call(
            client,
            "award_points",
            {"user_id": "u_ok", "points": 50, "reason": "asked"},
            trigger="ticket_opened",
        )
    assert is_error and data["reason"] == "tool_not_allowed"
    assert count(world, "audit_log", "reasons ? 'tool_not_allowed'") == 1


async def test_subject_mismatch_blocks_other_customers(server: MCPServer[Any], world: str) -> None:
    """A decision about u_ok cannot send to, or read, anyone else, whatever the model asks."""
    async with Client(server) as client:
        sent = await client.call_tool(
            "send_coupon", {**COUPON, "user_id": "u_ny"}, meta=meta(decision_id="d9", user_id="u_ok")
        )
        read = await client.call_tool("get_user_context", {"user_id": "u_ny"}, meta=meta(user_id="u_ok"))
        own = await client.call_tool("get_user_context", {"user_id": "u_ok"}, meta=meta(user_id="u_ok"))
    for result in (sent, read):
        assert result.is_error
        assert result.structured_content is not None
        assert result.structured_content["reason"] == "subject_mismatch"
    assert not own.is_error
    assert count(world, "outbox") == 0
    assert count(world, "audit_log", "verdict = 'deny' AND reasons ? 'subject_mismatch'") == 2


async def test_unknown_trigger_without_default(server: MCPServer[Any], policy_path: Any) -> None:
    text = policy_path.read_text().replace(
        "  default:\n    tools: [search_assets, get_user_context, send_coupon",
        "  other:\n    tools: [search_assets, get_user_context, send_coupon",
        1,
    )
    policy_path.write_text(text)
    async with Client(server) as client:
        is_error, data = await call(client, "send_coupon", COUPON, trigger="nope")
    assert is_error and data["reason"] == "unknown_trigger"


async def test_suppressed_after_stop(server: MCPServer[Any], world: str) -> None:
    with psycopg.connect(world, autocommit=True) as conn:
        conn.execute("INSERT INTO suppressions VALUES ('u_ok', 'sms', 'STOP received', 'twilio', now())")
    async with Client(server) as client:
        is_error, data = await call(client, "send_sms", SMS)
    assert is_error and data["reason"] == "suppressed"


async def test_quiet_hours_defer_then_released_by_scheduler(
    server: MCPServer[Any], runtime: Runtime, clock: FrozenClock, world: str
) -> None:
    clock.set(datetime(2026, 11, 23, 22, 30, tzinfo=UTC))
    async with Client(server) as client:
        is_error, data = await call(client, "send_sms", SMS)
    assert not is_error and data["status"] == "deferred" and data["reason"] == "quiet_hours"
    assert data["until"] == "2026-11-24T08:00:00+00:00"
    assert count(world, "outbox") == 0 and count(world, "budget_ledger") == 0
    async with runtime.acquire() as deps:
        assert await deps.service.release_due() == []  # not due yet
        clock.set(datetime(2026, 11, 24, 8, 0, 1, tzinfo=UTC))
        released = await deps.service.release_due()
    assert [o.status for o in released] == ["allowed"]
    assert count(world, "outbox", "kind = 'sms'") == 1
    assert count(world, "pending_actions", "status = 'done'") == 1
    assert count(world, "tool_calls", "verdict = 'defer' AND status = 'allowed'") == 1


def test_every_reason_has_a_test() -> None:
    tested = {c[0] for c in CASES} | {
        "tool_not_allowed",
        "tool_not_in_trigger",  # test_decision_scope.py
        "sms_unknown_link",  # test_sms_content.py
        "sms_unknown_number",
        "subject_mismatch",
        "unknown_trigger",
        "suppressed",
        "quiet_hours",
        "approval_required",
        "rejected",
    }
    assert set(REASONS) == tested
