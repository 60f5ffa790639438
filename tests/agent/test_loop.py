"""The reasoning loop with scripted models, through the real MCP client and the real guard."""

from __future__ import annotations

import json
from typing import Any

from agent.loop import Limits
from agent.model import ModelReply, ModelRequest, ToolCall
from agent.providers.scripted import EveryToolModel, ScriptedModel, call
from agent.queue import NewJob
from agent.runtime import agent_runtime
from mca.testing import scalar
from tests.agent.helpers import SEARCH_THEN_COUPON, decide, new_job, put_job, stored_decision, tool_steps


async def test_scripted_tool_calls_act_and_are_recorded(
    agent_settings, agent_stores, frozen, embedder
) -> None:
    model = ScriptedModel([*SEARCH_THEN_COUPON, "Sent a camping coupon that goes with the tent."])
    job = new_job()
    decision = await decide(agent_settings, agent_stores, model, job, clock=frozen, embedder=embedder)
    assert decision["outcome"] == "acted"
    assert decision["rationale"] == "Sent a camping coupon that goes with the tent."
    assert decision["brain"] == "scripted" and decision["prompt_version"].startswith("2026-")
    assert decision["context"]["user_id"] == "u_ana"
    steps = tool_steps(decision)
    assert [s["tool_name"] for s in steps] == ["search_assets", "send_coupon"]
    assert steps[1]["verdict"] == "allowed" and steps[1]["result"]["outbox_id"]
    roles = [s["role"] for s in decision["steps"] if s["kind"] == "message"]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert scalar(agent_stores.ops_url, "SELECT count(*) FROM outbox WHERE user_id = 'u_ana'") == 1
    # The model was shown only the job's tools, with the MCP schemas.
    shown = {t.name for t in model.requests[0].tools}
    assert shown == set(job.tools)


async def test_a_model_calling_every_tool_with_schema_valid_arguments(
    agent_settings, agent_stores, frozen, embedder
) -> None:
    decision = await decide(
        agent_settings, agent_stores, EveryToolModel(), new_job(), clock=frozen, embedder=embedder
    )
    steps = tool_steps(decision)
    assert {s["tool_name"] for s in steps} == {
        "search_assets", "get_user_context", "send_coupon", "send_sms", "update_crm", "award_points"
    }  # fmt: skip
    for step in steps:
        # Schema-valid arguments: whatever the guard says, it is never an argument error.
        assert step["reason_code"] not in ("invalid_argument", "invalid_arguments"), step
    assert decision["rationale"] == "called every tool once"


async def test_denials_go_back_to_the_model_which_adapts(
    agent_settings, agent_stores, frozen, embedder
) -> None:
    seen: list[dict[str, Any]] = []

    def react(request: ModelRequest) -> ModelReply:
        last = json.loads(request.messages[-1]["content"])
        seen.append(last)
        return ModelReply("The customer opted out of SMS, so I did nothing.")

    model = ScriptedModel([[call("send_sms", user_id="u_optout", text="Hi there", reason="nudge")], react])
    job = new_job(
        "u_optout", event={"type": "purchase", "event_id": "e1", "user_id": "u_optout", "value": 120.0}
    )
    decision = await decide(agent_settings, agent_stores, model, job, clock=frozen, embedder=embedder)
    assert seen[0]["status"] == "denied" and seen[0]["reason"]
    assert decision["outcome"] == "nothing"
    (sms,) = tool_steps(decision)
    assert sms["verdict"] == "denied" and sms["reason_code"] == seen[0]["reason"]


async def test_malformed_arguments_are_answered_without_calling_the_tool(
    agent_settings, agent_stores, frozen, embedder
) -> None:
    broken = ToolCall(
        id="c1", name="send_coupon", arguments={}, error="arguments are not valid JSON", raw_arguments="{"
    )
    model = ScriptedModel([lambda r: ModelReply(None, [broken]), "gave up"])
    decision = await decide(agent_settings, agent_stores, model, new_job(), clock=frozen, embedder=embedder)
    (step,) = tool_steps(decision)
    assert step["reason_code"] == "invalid_arguments" and step["arguments"] == {"_raw": "{"}
    assert decision["tool_calls"] == 0
    assert scalar(agent_stores.ops_url, "SELECT count(*) FROM tool_calls") == 0


async def test_limits_are_data(agent_settings, agent_stores, frozen, embedder) -> None:
    looping = ScriptedModel([[call("search_assets", query=f"try {n}")] for n in range(50)])
    job = new_job()
    await put_job(agent_stores.ops_url, job, frozen)
    limits = Limits(max_model_calls=3, max_tool_calls=10)
    async with agent_runtime(
        agent_settings, agent_stores, model=looping, clock=frozen, embedder=embedder, limits=limits
    ) as rt:
        await rt.workers[0].run_one()
    decision = await stored_decision(agent_stores.ops_url, job.decision_id)
    assert decision["outcome"] == "limit" and decision["model_calls"] == 3
    assert "3 model calls" in decision["rationale"]


async def test_doing_nothing_is_a_recorded_decision(agent_settings, agent_stores, frozen, embedder) -> None:
    decision = await decide(
        agent_settings, agent_stores, ScriptedModel(["Nothing fits; no message."]), new_job(),
        clock=frozen, embedder=embedder,
    )  # fmt: skip
    assert decision["outcome"] == "nothing" and decision["tool_calls"] == 0


async def test_user_without_context_is_a_nothing_decision(
    agent_settings, agent_stores, frozen, embedder
) -> None:
    model = ScriptedModel([[call("search_assets", query="x")]])
    job: NewJob = new_job("u_ghost")
    decision = await decide(agent_settings, agent_stores, model, job, clock=frozen, embedder=embedder)
    assert decision["outcome"] == "nothing" and model.requests == []


async def test_unstorable_characters_are_refused_at_the_tool_and_the_decision_is_still_recorded(
    agent_settings, agent_stores, frozen, embedder
) -> None:
    """A NUL or a lone surrogate from the model: PostgreSQL text and jsonb cannot hold either."""
    model = ScriptedModel(
        [
            [call("send_sms", user_id="u_ana", text="Hi\x00 Ana", reason="nudge")],
            [call("update_crm", user_id="u_ana", fields={"agent_note": "ok", "nested": {"x": "a\ud800b"}},
                  reason="note")],
            "Done\x00, sorry.",
        ]
    )  # fmt: skip
    decision = await decide(agent_settings, agent_stores, model, new_job(), clock=frozen, embedder=embedder)
    sms, crm = tool_steps(decision)
    assert sms["verdict"] == "error" and sms["reason_code"] == "invalid_arguments"
    assert sms["result"]["field"] == "text" and "U+0000 (NUL)" in sms["result"]["message"]
    assert crm["result"]["field"] == "fields.nested.x" and "surrogate" in crm["result"]["message"]
    # The model read the refusal naming the argument, as the tool's answer.
    answer = json.loads(next(m for m in model.requests[-1].messages if m["role"] == "tool")["content"])
    assert answer["field"] == "text" and answer["reason"] == "invalid_arguments"
    # Recorded whole, the unstorable characters replaced in the record only.
    assert sms["arguments"]["text"] == "Hi\ufffd Ana"
    assert crm["arguments"]["fields"]["nested"]["x"] == "a\ufffdb"
    assert decision["rationale"] == "Done\ufffd, sorry." and decision["outcome"] == "nothing"
    assert decision["tool_calls"] == 0
    assert scalar(agent_stores.ops_url, "SELECT count(*) FROM tool_calls") == 0
    assert scalar(agent_stores.ops_url, "SELECT count(*) FROM outbox") == 0
    job_status = scalar(agent_stores.ops_url, "SELECT status FROM agent_jobs WHERE decision_id = %s",
                        decision["decision_id"])  # fmt: skip
    assert job_status == "done"
