"""mca's actions as events: what a delivered or withheld action writes into the stream, and the
facts it reads about its decision from the ops store (real embedded PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from mcp_tools.action_events import FACTS_SQL, ActionFacts, delivered_event, withheld_event

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CANDIDATES = [{"arm": "CPN-10:email", "probability": 0.4}, {"arm": "CPN-5:email", "probability": 0.6}]


def _seed_call(conn: psycopg.Connection[Any]) -> int:
    conn.execute(
        "INSERT INTO agent_jobs (job_id, dedup_key, trigger_name, user_id, goal, tools, run_after, "
        "deadline, decision_id, created_at, experiment_group, experiment) VALUES "
        "('j1', 'k1', 'cart_abandoned', 'u1', 'recover the cart', ARRAY['send_coupon'], %(t)s, %(t)s, "
        "'d1', %(t)s, 'treatment', 'salt-2026')",
        {"t": AT},
    )
    call_id = conn.execute(
        "INSERT INTO tool_calls (idem_key, decision_id, caller, trigger_name, tool, user_id, arguments, "
        "verdict, status, result, policy_version, created_at, updated_at) VALUES "
        "('d1:send_coupon:1', 'd1', 'agent', 'cart_abandoned', 'send_coupon', 'u1', %(args)s, 'allow', "
        "'allowed', '{}', 'v7', %(t)s, %(t)s) RETURNING call_id",
        {"t": AT, "args": json.dumps({"user_id": "u1", "asset_id": "CPN-10"})},
    ).fetchone()["call_id"]
    conn.execute(
        "INSERT INTO budget_ledger (call_id, scope, period_key, amount, kind, created_at) VALUES "
        "(%(c)s, 'user:u1:month', '2026-12', 10, 'reserve', %(t)s), "
        "(%(c)s, 'global:day', '2026-12-01', 10, 'reserve', %(t)s)",
        {"c": call_id, "t": AT},
    )
    conn.execute(
        "INSERT INTO decision_allocations (decision_id, arm, propensity, mode, candidates, created_at) "
        "VALUES ('d1', 'CPN-10:email', 0.4, 'bandit', %(c)s, %(t)s)",
        {"t": AT, "c": json.dumps(CANDIDATES)},
    )
    return int(call_id)


def test_a_delivered_coupon_is_an_offer_sent_event_naming_its_decision(db_url: str) -> None:
    with psycopg.connect(db_url, row_factory=dict_row, autocommit=True) as conn:
        call_id = _seed_call(conn)
        row = conn.execute(FACTS_SQL, {"call_id": call_id}).fetchone()
    payload = {"asset_id": "CPN-10", "channel": "email", "value": "10.00", "coupon_code": "MCA-7K2QX9"}
    facts = ActionFacts.from_row(row, "coupon", payload)
    event = delivered_event(facts, AT, provider="braze", points_echoed=False)
    assert event["event_type"] == "offer_sent"
    assert event["event_id"] == f"mca-offer_sent-{call_id}"
    assert event["source"] == "mca" and event["value"] == 10.0
    assert event["properties"] == {
        "decision_id": "d1",
        "trigger": "cart_abandoned",
        "goal": "recover the cart",
        "tool": "send_coupon",
        "arm": "CPN-10:email",
        "asset": "CPN-10",
        "channel": "email",
        "policy_version": "v7",
        "experiment_group": "treatment",
        "experiment_id": "salt-2026",
        "propensity": 0.4,
        "selection_mode": "bandit",
        "candidates": CANDIDATES,
        "coupon_code": "MCA-7K2QX9",
        "cost": "10",
        "call_id": call_id,
        "provider": "braze",
    }


def _points_facts(**over: Any) -> ActionFacts:
    base: dict[str, Any] = {
        "call_id": 9, "user_id": "u1", "tool": "award_points", "kind": "points", "decision_id": None,
        "trigger": "mcp", "goal": None, "brain": None, "policy_version": "v1", "experiment_group": None,
        "experiment": None, "arm": None, "propensity": None, "selection_mode": None, "window_s": None,
        "candidates": None,
        "cost": Decimal("1.5"),
        "payload": {"points": 150},
    }  # fmt: skip
    return ActionFacts(**(base | over))


def test_awarded_points_move_the_balance_unless_the_platform_echoes_them() -> None:
    counted = delivered_event(_points_facts(), AT, provider="braze", points_echoed=False)
    echoed = delivered_event(_points_facts(), AT, provider="braze", points_echoed=True)
    assert (counted["event_type"], counted["points"], counted["properties"]["points"]) == (
        "points_awarded",
        150,
        150,
    )
    assert (echoed["points"], echoed["properties"]["points"]) == (None, 150)
    assert counted["properties"]["arm"] == "points:points"
    assert "asset" not in counted["properties"]


def test_a_withheld_action_says_what_it_would_have_been_and_why() -> None:
    event = withheld_event(_points_facts(experiment_group="control"), AT, "control")
    assert event["event_type"] == "action_withheld"
    assert event["points"] is None
    assert event["properties"]["withheld_kind"] == "points"
    assert event["properties"]["reason"] == "control"
    assert event["properties"]["experiment_group"] == "control"
