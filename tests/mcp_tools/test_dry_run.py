"""The guard's dry run against the real database: it answers as the guard would, under the
decision's stored scope and the switches in force, and writes nothing."""

from __future__ import annotations

from typing import Any

import psycopg

from agent.queue import NewJob
from mca.db import Stores
from mca.settings import Settings
from mca.testing import FrozenClock, count
from mcp_tools.dry_run import dry_run
from mcp_tools.guard import CallContext, period_keys, zone_of
from mcp_tools.runtime import tool_service
from tests.agent.helpers import put_job
from tests.mcp_tools.helpers import COUPON, decision_job

WRITTEN = ("tool_calls", "audit_log", "budget_counters", "budget_ledger", "outbox")


def _coupon(asset_id: str, **changes: Any) -> tuple[str, dict[str, Any]]:
    return "send_coupon", {**COUPON, "asset_id": asset_id, **changes}


async def _dry(
    settings: Settings, stores: Stores, clock: FrozenClock, job: NewJob, trigger: str,
    calls: list[tuple[str, dict[str, Any]]],
) -> list[Any]:  # fmt: skip
    await put_job(stores.ops_url, job, clock)
    ctx = CallContext(caller="agent", trigger=trigger, decision_id=job.decision_id, subject="u_ok")
    async with tool_service(settings, stores, clock=clock) as service:
        return await dry_run(service, ctx, calls)


async def test_each_call_gets_the_guards_answer_and_nothing_is_written(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, world: str
) -> None:
    calls = [
        _coupon("A10"), _coupon("no-such"), _coupon("A_OFF"), _coupon("A20", user_id="u_ny"),
        _coupon(" A30 "), ("award_points", {"user_id": "u_ok", "points": 10, "reason": "x"}),
    ]  # fmt: skip
    before = {t: count(world, t) for t in WRITTEN}
    verdicts = await _dry(tool_settings, tool_stores, clock, decision_job("default"), "default", calls)
    assert [v.reason for v in verdicts] == [
        None, "unknown_asset", "asset_inactive", "subject_mismatch", "approval_required",
        "tool_not_in_trigger",
    ]  # fmt: skip
    assert verdicts[4].kind == "hold" and not verdicts[4].refused  # " A30 " is the asset A30
    assert verdicts[0].action is not None and verdicts[0].action.cost == 10
    assert {t: count(world, t) for t in WRITTEN} == before


async def test_the_kill_switch_in_the_database_refuses_every_call(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, world: str
) -> None:
    with psycopg.connect(world, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO switches (name, enabled, set_by, reason, set_at) "
            "VALUES ('kill', true, 't', 't', now())"
        )
    verdicts = await _dry(
        tool_settings, tool_stores, clock, decision_job("default"), "default", [_coupon("A10")]
    )
    assert [v.reason for v in verdicts] == ["kill_switch"]


async def test_the_budgets_read_are_those_of_the_trigger_the_job_names(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, world: str
) -> None:
    """The caller says churn_risk; the stored job says ticket_opened, whose day budget is spent:
    the draws are planned again under the job's trigger and its counter read."""
    async with tool_service(tool_settings, tool_stores, clock=clock) as service:
        day = period_keys(clock(), zone_of(service.policy().timezone, "UTC"))["day"]
    with psycopg.connect(world, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO budget_counters (scope, period_key, limit_amount, quota, spent, updated_at) "
            "VALUES ('trigger:ticket_opened:day', %s, 100, 100, 95, now())",
            (day,),
        )
    calls = [_coupon("A10"), _coupon("A20")]
    spent = await _dry(tool_settings, tool_stores, clock, decision_job("ticket_opened"), "churn_risk", calls)
    assert [v.reason for v in spent] == ["budget_trigger", "budget_trigger"]
    other = await _dry(tool_settings, tool_stores, clock, decision_job("churn_risk"), "churn_risk", calls)
    assert [v.reason for v in other] == [None, None]


async def test_an_unknown_customer_refuses_every_call_before_anything_else(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, world: str
) -> None:
    calls = [_coupon("A10", user_id="u_nobody"), _coupon("no-such", user_id="u_nobody")]
    verdicts = await _dry(tool_settings, tool_stores, clock, decision_job("default"), "default", calls)
    assert [v.reason for v in verdicts] == ["unknown_user", "unknown_user"]
