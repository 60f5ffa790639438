"""The rules brain: reasons from the live context, acts through the same tools and guard."""

from __future__ import annotations

from agent.providers.rules import RulesModel
from tests.agent.helpers import add_ticket, decide, new_job, ticket_job, tool_steps


async def test_after_a_tent_it_offers_what_goes_with_it(
    agent_settings, agent_stores, frozen, embedder
) -> None:
    decision = await decide(
        agent_settings, agent_stores, RulesModel(), new_job(), clock=frozen, embedder=embedder
    )
    steps = tool_steps(decision)
    assert [s["tool_name"] for s in steps] == ["search_assets", "send_coupon"]
    assert "Ridgeline 2-Person Backpacking Tent" in steps[0]["arguments"]["query"]
    sent = steps[1]["arguments"]["asset_id"]
    offered = {a["asset_id"]: a for a in steps[0]["result"]["assets"]}
    assert "Tent" not in offered[sent]["title"], "never discount what they just bought"
    assert offered[sent]["value"] <= 25
    assert steps[1]["verdict"] == "allowed"
    assert decision["outcome"] == "acted" and decision["brain"] == "rules"
    assert "Ana" in decision["rationale"] and "tent" in decision["rationale"].lower()


async def test_angry_ticket_with_injection_gets_a_human_and_a_fair_gesture(
    agent_settings, agent_stores, frozen, embedder
) -> None:
    add_ticket(agent_stores.state_url, "u_ana")
    decision = await decide(
        agent_settings, agent_stores, RulesModel(), ticket_job("u_ana"), clock=frozen, embedder=embedder
    )
    steps = tool_steps(decision)
    names = [s["tool_name"] for s in steps]
    assert names[0] == "update_crm" and "award_points" not in names
    assert "ignored" in steps[0]["arguments"]["fields"]["agent_note"]
    assert "send_coupon" in names
    assert "treated it as data" in decision["rationale"]


async def test_refusals_lead_to_doing_nothing_with_reasons(
    agent_settings, agent_stores, frozen, embedder
) -> None:
    job = new_job("u_optout", event={"type": "purchase", "event_id": "e2", "user_id": "u_optout",
                                     "value": 150.0,
                                     "category": "outdoor"})  # fmt: skip
    decision = await decide(agent_settings, agent_stores, RulesModel(), job, clock=frozen, embedder=embedder)
    coupons = [s for s in tool_steps(decision) if s["tool_name"] == "send_coupon"]
    assert len(coupons) == 1 and coupons[0]["verdict"] == "denied"
    assert decision["outcome"] == "nothing"
    assert coupons[0]["reason_code"] in decision["rationale"]
    assert "doing nothing" in decision["rationale"]


async def test_the_rules_brain_is_deterministic(agent_settings, agent_stores, frozen, embedder) -> None:
    first = await decide(
        agent_settings, agent_stores, RulesModel(), new_job("u_bo"), clock=frozen, embedder=embedder
    )
    again = await decide(
        agent_settings, agent_stores, RulesModel(), new_job("u_bo"), clock=frozen, embedder=embedder
    )
    assert [s["arguments"] for s in tool_steps(first)][:1] == [s["arguments"] for s in tool_steps(again)][:1]
    assert first["rationale"].split(" Acted")[0] == again["rationale"].split(" Acted")[0]


async def test_ticket_for_a_customer_note_only_when_no_tools_fit(
    agent_settings, agent_stores, frozen, embedder
) -> None:
    add_ticket(agent_stores.state_url, "u_bo", "My order arrived late.")
    job = ticket_job("u_bo")
    decision = await decide(agent_settings, agent_stores, RulesModel(), job, clock=frozen, embedder=embedder)
    assert tool_steps(decision)[0]["tool_name"] == "update_crm"
    assert "ignored" not in tool_steps(decision)[0]["arguments"]["fields"]["agent_note"]
