"""Experiment groups on the decision path (real MCP session, real guard, embedded PostgreSQL):
a holdout customer's job never reaches the brain; a control customer's decision runs the brain
and the guard in full, is recorded with what it would have sent, and sends nothing."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from agent.model import ModelReply, ModelRequest
from agent.providers.scripted import ScriptedModel
from mca.testing import scalar
from tests.agent.helpers import SEARCH_THEN_COUPON, decide, new_job, tool_steps


def never(request: ModelRequest) -> ModelReply:
    raise AssertionError("the holdout must not reach the brain")


async def test_a_holdout_customer_is_never_contacted(agent_settings, agent_stores, frozen, embedder) -> None:
    job = replace(new_job(), experiment_group="holdout", experiment="salt-1")
    record = await decide(
        agent_settings, agent_stores, ScriptedModel([never]), job, clock=frozen, embedder=embedder
    )
    assert record["outcome"] == "nothing"
    assert "holdout" in record["rationale"]
    assert scalar(agent_stores.ops_url, "SELECT count(*) FROM tool_calls") == 0
    assert scalar(agent_stores.ops_url, "SELECT experiment_group FROM agent_jobs") == "holdout"


async def test_a_control_decision_is_judged_and_recorded_but_sends_nothing(
    agent_settings, agent_stores, frozen, embedder
) -> None:
    job = replace(new_job(), experiment_group="control", experiment="salt-1")
    model = ScriptedModel([*SEARCH_THEN_COUPON, "sent"])
    record = await decide(agent_settings, agent_stores, model, job, clock=frozen, embedder=embedder)
    coupon = [s for s in tool_steps(record) if s["tool_name"] == "send_coupon"]
    assert [s["verdict"] for s in coupon] == ["shadow"]
    url = agent_stores.ops_url
    assert scalar(url, "SELECT count(*) FROM outbox WHERE status = 'pending'") == 0
    assert scalar(url, "SELECT count(*) FROM outbox WHERE status = 'shadow'") == 1
    assert scalar(url, "SELECT coalesce(sum(amount), 0) FROM budget_ledger") == 0


async def test_a_treatment_decision_sends(agent_settings, agent_stores, frozen, embedder: Any) -> None:
    job = replace(new_job(), experiment_group="treatment", experiment="salt-1")
    model = ScriptedModel([*SEARCH_THEN_COUPON, "sent"])
    record = await decide(agent_settings, agent_stores, model, job, clock=frozen, embedder=embedder)
    assert [s["verdict"] for s in tool_steps(record) if s["tool_name"] == "send_coupon"] == ["allowed"]
    assert scalar(agent_stores.ops_url, "SELECT count(*) FROM outbox WHERE status = 'pending'") == 1
