"""The allocator in the product: a bandit trigger's decision goes through the guard's dry run and
the allocator, logs its allocation, and the action it sends carries the propensity; over many
decisions the arms are chosen as often as the logged probabilities say (real embedded PostgreSQL,
rules brain)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np

from agent.explain import explain
from agent.model import Candidate, ModelReply, ModelRequest
from agent.providers.rules import RulesModel
from agent.providers.scripted import ScriptedModel, call
from agent.runtime import agent_runtime
from ingest.event_sink import open_event_sink
from learn.arm_cache import ArmSnapshot
from learn.posterior import ArmStats
from mca.db import connect
from mcp_tools.commands import make_dispatcher
from mcp_tools.runtime import tool_service
from tests.agent.helpers import decide, new_job, put_job, tool_steps


def _allocation(url: str, decision_id: str) -> dict[str, Any] | None:
    with connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT * FROM decision_allocations WHERE decision_id = %s", (decision_id,)
        ).fetchone()


async def test_a_bandit_decision_logs_its_allocation_and_the_action_carries_the_propensity(
    agent_settings, agent_stores, clock, embedder
) -> None:
    job = dataclasses.replace(new_job("u_ana"), selection="bandit")
    decision = await decide(agent_settings, agent_stores, RulesModel(), job, clock=clock, embedder=embedder)
    row = _allocation(agent_stores.ops_url, job.decision_id)
    assert row is not None and row["mode"] == "bandit" and 0 < row["propensity"] <= 1
    allowed = [c for c in row["candidates"] if "refused" not in c]
    assert len(allowed) >= 2 and abs(sum(c["probability"] for c in allowed) - 1) < 1e-9
    chosen = next(c for c in allowed if c["arm"] == row["arm"])
    assert chosen["probability"] == row["propensity"]
    offers = [s for s in tool_steps(decision) if s["tool_name"] == "send_coupon"]
    assert len(offers) == 1 and offers[0]["verdict"] == "allowed"
    assert f"{offers[0]['arguments']['asset_id']}:" == row["arm"][: row["arm"].index(":") + 1]
    async with (
        tool_service(agent_settings, agent_stores, clock=clock) as service,
        httpx.AsyncClient(timeout=10) as http,
        open_event_sink(agent_settings, agent_stores) as sink,
    ):
        assert (await make_dispatcher(agent_settings, service, http, sink).run_once(limit=10))[
            "delivered"
        ] == 1
    with connect(agent_stores.state_url, autocommit=True) as conn:
        event = conn.execute(
            "SELECT properties FROM events WHERE event_type = 'offer_sent' "
            "AND properties->>'decision_id' = %s",
            (job.decision_id,),
        ).fetchone()
    assert event is not None, "the delivered offer is an event"
    props = event["properties"]
    assert props["propensity"] == row["propensity"] and props["selection_mode"] == "bandit"
    assert [c["arm"] for c in props["candidates"]] == [c["arm"] for c in row["candidates"]]


async def test_model_mode_and_the_control_group_log_no_allocation(
    agent_settings, agent_stores, clock, embedder
) -> None:
    model_job = new_job("u_ana")
    await decide(agent_settings, agent_stores, RulesModel(), model_job, clock=clock, embedder=embedder)
    control = dataclasses.replace(new_job("u_ana"), selection="bandit", experiment_group="control")
    await decide(agent_settings, agent_stores, RulesModel(), control, clock=clock, embedder=embedder)
    assert _allocation(agent_stores.ops_url, model_job.decision_id) is None
    assert _allocation(agent_stores.ops_url, control.decision_id) is None


async def test_choice_frequencies_match_the_logged_probabilities(
    agent_settings, agent_stores, clock, embedder
) -> None:
    """Known truth: the posteriors are fixed (a snapshot with different conversion counts per arm), so
    each arm's expected count is the sum of its logged probabilities; the observed counts must agree."""
    decisions = 160
    jobs = [dataclasses.replace(new_job("u_ana"), selection="bandit") for _ in range(decisions + 1)]
    async with agent_runtime(
        agent_settings, agent_stores, workers=1, model=RulesModel(), clock=clock, embedder=embedder, seed=7
    ) as rt:
        allocator = rt.deps.allocator
        assert allocator is not None
        await put_job(agent_stores.ops_url, jobs[0], clock)
        assert await rt.workers[0].run_one() is not None
        first = _allocation(agent_stores.ops_url, jobs[0].decision_id)
        assert first is not None
        arms = [c["arm"] for c in first["candidates"] if "refused" not in c]
        rates = np.linspace(0.3, 0.05, len(arms))
        allocator.cache.snapshot = ArmSnapshot.of(
            {("post_purchase", a): ArmStats(a, 100, int(r * 100)) for a, r in zip(arms, rates, strict=True)}
        )
        allocator.cache.max_age_s = float("inf")  # the snapshot stands: no refresh replaces it
        for job in jobs[1:]:
            await put_job(agent_stores.ops_url, job, clock)
            assert await rt.workers[0].run_one() is not None
    expected, observed, variance = (np.zeros(len(arms)) for _ in range(3))
    for job in jobs[1:]:
        row = _allocation(agent_stores.ops_url, job.decision_id)
        assert row is not None
        probs = {c["arm"]: c["probability"] for c in row["candidates"] if "refused" not in c}
        p = np.array([probs[a] for a in arms])
        expected += p
        variance += p * (1 - p)
        observed[arms.index(row["arm"])] += 1
    z = (observed - expected) / np.sqrt(np.maximum(variance, 1e-9))
    assert np.all(np.abs(z) < 4), (observed, expected)
    assert expected[0] > expected[-1] * 3, "the best arm by the posteriors gets most of the traffic"


def _offer(*assets: str) -> Any:
    """A scripted brain's turn: offer the first asset, with every asset as a candidate."""

    def turn(request: ModelRequest) -> ModelReply:
        uid = request.brief.user_id
        offers = [
            Candidate("send_coupon", {"user_id": uid, "asset_id": a, "reason": "test offer"}, a)
            for a in assets
        ]
        return ModelReply(
            text=None, tool_calls=[call("send_coupon", **offers[0].arguments)], candidates=offers
        )

    return turn


async def test_the_guard_dry_run_removes_refused_candidates_and_records_them(
    agent_settings, agent_stores, clock, embedder
) -> None:
    job = dataclasses.replace(new_job("u_ana"), selection="bandit")
    model = ScriptedModel([_offer("cpn-app-002", "cpn-out-002", "no-such-coupon")])
    decision = await decide(agent_settings, agent_stores, model, job, clock=clock, embedder=embedder)
    row = _allocation(agent_stores.ops_url, job.decision_id)
    assert row is not None
    refused = {c["arm"].split(":")[0]: c["refused"] for c in row["candidates"] if "refused" in c}
    assert refused == {"cpn-app-002": "asset_inactive", "no-such-coupon": "unknown_asset"}
    assert row["arm"].startswith("cpn-out-002:") and row["propensity"] == 1.0  # the only one allowed
    (offer,) = [s for s in tool_steps(decision) if s["tool_name"] == "send_coupon"]
    assert offer["arguments"]["asset_id"] == "cpn-out-002" and offer["verdict"] == "allowed"


async def test_when_the_guard_would_refuse_every_candidate_nothing_is_sent(
    agent_settings, agent_stores, clock, embedder
) -> None:
    job = dataclasses.replace(new_job("u_ana"), selection="explore")
    model = ScriptedModel([_offer("cpn-app-002", "no-such-coupon")])
    decision = await decide(agent_settings, agent_stores, model, job, clock=clock, embedder=embedder)
    assert _allocation(agent_stores.ops_url, job.decision_id) is None
    (offer,) = [s for s in tool_steps(decision) if s["tool_name"] == "send_coupon"]
    assert offer["verdict"] == "denied" and "nothing is sent" in offer["result"]["message"]
    with connect(agent_stores.ops_url, autocommit=True) as conn:
        calls = conn.execute(
            "SELECT count(*) AS n FROM tool_calls WHERE decision_id = %s", (job.decision_id,)
        )
        assert calls.fetchone()["n"] == 0


async def test_an_llm_reads_expected_conversion_in_its_search_results_and_its_offer_leads_the_candidates(
    agent_settings, agent_stores, clock, embedder
) -> None:
    search = [call("search_assets", query="outdoor camping coupon", kind="coupon", k=4)]
    job = dataclasses.replace(new_job("u_ana"), selection="bandit")
    model = ScriptedModel([search, _offer_from_search])
    decision = await decide(agent_settings, agent_stores, model, job, clock=clock, embedder=embedder)
    results = [
        json.loads(s["content"]) for s in decision["steps"] if s["kind"] == "message" and s["role"] == "tool"
    ]
    assets = results[0]["assets"]
    assert all(0 < a["expected_conversion"] < 1 and len(a["conversion_interval"]) == 2 for a in assets)
    row = _allocation(agent_stores.ops_url, job.decision_id)
    assert row is not None
    assert row["candidates"][0]["arm"].startswith(assets[-1]["asset_id"] + ":")  # the model's own offer first
    assert len(row["candidates"]) == len(assets)
    plain = await decide(
        agent_settings,
        agent_stores,
        ScriptedModel([search]),
        new_job("u_ana"),
        clock=clock,
        embedder=embedder,
    )
    shown = [s["content"] for s in plain["steps"] if s["kind"] == "message" and s["role"] == "tool"]
    assert "expected_conversion" not in shown[0]  # model mode: exactly what the tool answered


def _offer_from_search(request: ModelRequest) -> ModelReply:
    found = json.loads(request.messages[-1]["content"])["assets"]
    args = {"user_id": request.brief.user_id, "asset_id": found[-1]["asset_id"], "reason": "the last match"}
    return ModelReply(text=None, tool_calls=[call("send_coupon", **args)])


async def test_mca_explain_tells_the_allocation_in_plain_words(
    agent_settings, agent_stores, clock, embedder
) -> None:
    job = dataclasses.replace(new_job("u_ana"), selection="bandit")
    model = ScriptedModel([_offer("cpn-out-002", "cpn-app-002", "cpn-out-009")])
    decision = await decide(agent_settings, agent_stores, model, job, clock=clock, embedder=embedder)
    row = _allocation(agent_stores.ops_url, job.decision_id)
    assert row is not None
    chosen = next(c for c in row["candidates"] if c["arm"] == row["arm"])
    story = explain(decision)
    line = next(s for s in story.splitlines() if s.strip().startswith("Chose:"))
    titles = {
        "cpn-out-002": "Emberlite Camping Stove: $10 member discount",
        "cpn-out-009": "Take $15 off Alpine Carbon Trekking Poles",
    }
    assert chosen["label"] == titles[row["arm"].split(":")[0]]  # the title, from the stores
    price = "$10 " if row["arm"].startswith("cpn-out-002") else "$15 "
    assert f"chose the {price}{chosen['label']}: " in line
    assert f"{chosen['expected_conversion']:.1%} expected conversion" in line
    assert f"{chosen['probability_best']:.0%} chance it is the best" in line
    assert line.endswith("(bandit, 2 allowed candidates, 1 refused by the guard)")
    plain = await decide(
        agent_settings, agent_stores, RulesModel(), new_job("u_ana"), clock=clock, embedder=embedder
    )
    assert "Chose:" not in explain(plain)  # model mode: no allocation to tell


async def test_the_dry_run_refuses_an_asset_whose_redemptions_are_used_up(
    agent_settings, agent_stores, clock, embedder
) -> None:
    with connect(agent_stores.ops_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO budget_counters (scope, period_key, limit_amount, quota, spent, updated_at) "
            "VALUES ('asset:cpn-out-002:redemptions', 'all', 1000, 1000, 1000, now())"
        )
    job = dataclasses.replace(new_job("u_ana"), selection="explore")
    model = ScriptedModel([_offer("cpn-out-002", "cpn-out-009")])
    await decide(agent_settings, agent_stores, model, job, clock=clock, embedder=embedder)
    row = _allocation(agent_stores.ops_url, job.decision_id)
    assert row is not None and row["arm"].startswith("cpn-out-009:") and row["propensity"] == 1.0
    assert [c.get("refused") for c in row["candidates"]] == [None, "asset_redemptions"]


async def test_a_retried_decision_makes_the_choice_already_stored(
    agent_settings, agent_stores, clock, embedder
) -> None:
    first = dataclasses.replace(new_job("u_ana"), selection="bandit")
    await decide(agent_settings, agent_stores, RulesModel(), first, clock=clock, embedder=embedder)
    row = _allocation(agent_stores.ops_url, first.decision_id)
    assert row is not None
    allowed = [c["arm"] for c in row["candidates"] if "refused" not in c]
    # The same customer's next decision as if a crashed attempt had already allocated its last arm.
    retried = dataclasses.replace(new_job("u_ana"), selection="bandit")
    with connect(agent_stores.ops_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO decision_allocations (decision_id, arm, propensity, mode, candidates, created_at) "
            "VALUES (%s, %s, 0.123, 'bandit', '[]', now())",
            (retried.decision_id, allowed[-1]),
        )
    decision = await decide(
        agent_settings, agent_stores, RulesModel(), retried, clock=clock, embedder=embedder
    )
    offers = [s for s in tool_steps(decision) if s["tool_name"] == "send_coupon"]
    assert (
        len(offers) == 1
        and f"{offers[0]['arguments']['asset_id']}:" == allowed[-1][: allowed[-1].index(":") + 1]
    )
    stored = _allocation(agent_stores.ops_url, retried.decision_id)
    assert stored is not None and stored["propensity"] == 0.123


def test_the_allocation_turns_off_the_flush_wait_for_its_own_commit_only(agent_stores) -> None:
    """The pooled connection's next commit (a guard's reservation) still waits for its flush."""
    from psycopg.types.json import Jsonb

    from agent.allocation import INSERT_ALLOCATION

    params = {"decision_id": "dec_flush", "arm": "cpn-out-002:email", "propensity": 0.5, "mode": "bandit",
              "candidates": Jsonb([]), "now": datetime.now(UTC)}  # fmt: skip
    with connect(agent_stores.ops_url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = on")  # the tests' server runs with it off
        assert conn.execute(INSERT_ALLOCATION, params).fetchone() == {"decision_id": "dec_flush"}
        assert conn.execute("SHOW synchronous_commit").fetchone() == {"synchronous_commit": "on"}
        assert conn.execute(INSERT_ALLOCATION, params).fetchone() is None  # stored once
