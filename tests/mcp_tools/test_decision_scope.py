"""A decision may call only the intersection of its trigger's tools (triggers file, stored on its
job) and the policy's: enforced by the guard with its own reason code, and shown by tools/list."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from mcp import Client
from mcp.server.mcpserver import MCPServer

from agent.providers.scripted import ScriptedModel
from agent.providers.scripted import call as model_call
from agent.queue import NewJob
from agent.trigger_config import load_triggers
from mca.db import Stores
from mca.settings import PROJECT_ROOT, Settings
from mca.testing import FrozenClock, count
from tests.agent.helpers import decide, put_job, tool_steps
from tests.mcp_tools.helpers import call, meta

POINTS = {"user_id": "u_ok", "points": 500, "reason": "loyal customer"}


def big_purchase_tools() -> tuple[str, ...]:
    triggers = load_triggers(
        PROJECT_ROOT / "config" / "triggers.yaml", queries_dir=PROJECT_ROOT / "sql/triggers"
    )
    [spec] = [rule for rule in triggers.rules if rule.name == "big_purchase"]
    return spec.tools


def big_purchase_job(user_id: str = "u_ok") -> NewJob:
    return NewJob(
        dedup_key=f"test:{uuid.uuid4().hex}",
        trigger_name="big_purchase",
        user_id=user_id,
        goal="post_purchase",
        tools=big_purchase_tools(),
        event={"type": "purchase", "user_id": user_id, "value": 349.0},
        max_attempts=1,
        deadline_in=timedelta(minutes=2),
    )


async def test_a_model_in_big_purchase_calling_award_points_is_denied(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, world: str
) -> None:
    """The real agent worker, a scripted model: the loop shows it four tools, it calls a fifth."""
    assert "award_points" not in big_purchase_tools()
    model = ScriptedModel([[model_call("award_points", **POINTS)], "Rewarded the customer."])
    decision = await decide(tool_settings, tool_stores, model, big_purchase_job(), clock=clock, embedder=None)
    (step,) = tool_steps(decision)
    assert step["verdict"] == "denied" and step["reason_code"] == "tool_not_in_trigger", step
    assert count(world, "outbox") == 0
    assert count(world, "audit_log", "reasons ? 'tool_not_in_trigger' AND trigger_name = 'big_purchase'") == 1


async def test_meta_cannot_widen_the_stored_decision(
    server: MCPServer[Any], clock: FrozenClock, world: str
) -> None:
    """Even the trusted caller naming the generous `default` trigger gets the job's trigger and tools."""
    job = big_purchase_job()
    await put_job(world, job, clock)
    async with Client(server) as client:
        denied, data = await call(client, "award_points", POINTS, decision=job.decision_id, trigger="default")
        crm = await call(
            client,
            "update_crm",
            {"user_id": "u_ok", "fields": {"agent_note": "hi"}, "reason": "r"},
            decision=job.decision_id,
        )
        allowed, sent = await call(
            client,
            "send_coupon",
            {"user_id": "u_ok", "asset_id": "A10", "reason": "thanks"},
            decision=job.decision_id,
            trigger="default",
        )
        # The job also fixes the customer: a call about someone else is refused.
        other = await call(
            client, "get_user_context", {"user_id": "u_ny"}, decision=job.decision_id, trigger="default"
        )
    assert denied and data["reason"] == "tool_not_in_trigger", data
    assert crm[0] and crm[1]["reason"] == "tool_not_in_trigger"
    assert not allowed and sent["status"] == "allowed"
    assert other[0] and other[1]["reason"] == "subject_mismatch"
    assert count(world, "tool_calls", "trigger_name = 'big_purchase' AND status = 'allowed'") == 1


async def test_tools_list_shows_only_what_the_caller_may_call(
    server: MCPServer[Any], clock: FrozenClock, world: str
) -> None:
    job = big_purchase_job()
    await put_job(world, job, clock)
    async with Client(server) as client:
        everything = {t.name for t in (await client.list_tools()).tools}
        scoped = await client.list_tools(meta=meta(decision_id=job.decision_id), cache_mode="refresh")
        ticket = await client.list_tools(meta=meta(trigger="ticket_opened"), cache_mode="refresh")
    assert everything == {"search_assets", "get_user_context", "send_coupon", "send_sms", "update_crm",
                          "award_points"}  # fmt: skip
    assert {t.name for t in scoped.tools} == set(big_purchase_tools())
    assert "award_points" not in {t.name for t in ticket.tools}
