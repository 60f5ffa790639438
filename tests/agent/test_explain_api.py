"""Decisions explain themselves: `mca explain` text and the JSON API."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from agent.explain import explain
from agent.providers.rules import RulesModel
from agent.web import extension
from mca.app import create_app
from mca.cli import app as cli_app
from mca.limits import MAX_ID_CHARS
from mca.settings import Settings
from tests.agent.helpers import decide, new_job


async def test_explain_tells_the_story(agent_settings, agent_stores, frozen, embedder) -> None:
    decision = await decide(
        agent_settings, agent_stores, RulesModel(), new_job(), clock=frozen, embedder=embedder
    )
    story = explain(decision)
    assert f"Decision {decision['decision_id']}: trigger 'big_purchase' for customer u_ana" in story
    assert "Woke on: a 'purchase' event for OUT-001 (outdoor) worth $349.00 [event e-tent]" in story
    assert "Ana, gold tier" in story and "Brain:   rules (rules-v1)" in story
    assert "1. search_assets(" in story and "2. send_coupon(asset_id=" in story and "-> allowed" in story
    assert "Outcome: acted" in story

    result = await asyncio.to_thread(
        CliRunner().invoke, cli_app, ["explain", decision["decision_id"]], obj=agent_settings
    )
    assert result.exit_code == 0, result.output
    assert "Outcome: acted" in result.output


def _api_checks(settings: Settings, stores: Any, decision_id: str) -> None:
    app = create_app(settings, stores, extensions=[extension(settings, stores)])
    with TestClient(app) as client:
        got = client.get(f"/decisions/{decision_id}")
        assert got.status_code == 200
        body = got.json()
        assert body["decision_id"] == decision_id and body["steps"][0]["role"] == "system"
        listed = client.get("/users/u_ana/decisions").json()
        assert [d["decision_id"] for d in listed["decisions"]] == [decision_id]
        missing = client.get("/decisions/dec_nope")
        assert missing.status_code == 404 and missing.json()["error"]["field"] == "decision_id"
        assert client.get("/decisions/bad%20id").status_code == 422
        # Any user id ingest accepts can be listed (an e-mail, 256 characters); NUL cannot be one.
        assert client.get("/users/ana@example.com/decisions").json()["decisions"] == []
        assert client.get(f"/users/{'u' * MAX_ID_CHARS}/decisions").status_code == 200
        assert client.get("/users/a%00b/decisions").status_code == 422
    locked = settings.model_copy(update={"api_keys": {"reader": ["read"], "writer": ["ingest"]}})
    app = create_app(locked, stores, extensions=[extension(locked, stores)])
    with TestClient(app) as client:
        refused = client.get(f"/decisions/{decision_id}")
        assert refused.status_code == 401 and refused.json()["error"]["message"].startswith(
            "missing credentials"
        )
        # The same credentials in the same forms as /ingest (Segment's Basic here).
        basic = "Basic " + base64.b64encode(b"reader:").decode()
        assert client.get(f"/decisions/{decision_id}", headers={"authorization": basic}).status_code == 200
        assert (
            client.get(f"/decisions/{decision_id}", headers={"authorization": "Bearer writer"}).status_code
            == 403
        )
        assert (
            client.get(f"/decisions/{decision_id}", headers={"authorization": "Bearer reader"}).status_code
            == 200
        )


async def test_decisions_api(agent_settings, agent_stores, frozen, embedder) -> None:
    decision = await decide(
        agent_settings, agent_stores, RulesModel(), new_job(), clock=frozen, embedder=embedder
    )
    await asyncio.to_thread(_api_checks, agent_settings, agent_stores, decision["decision_id"])


async def test_explain_unknown_decision_is_one_clear_line(agent_settings) -> None:
    result = await asyncio.to_thread(
        CliRunner().invoke, cli_app, ["explain", "dec_missing"], obj=agent_settings
    )
    assert result.exit_code != 0
    assert "no decision 'dec_missing'" in str(result.exception)


def test_explain_tells_the_group_and_what_each_action_led_to() -> None:
    from agent.explain import explain

    base = {
        "decision_id": "d1", "trigger_name": "churn_risk", "user_id": "u1", "attempt": 1,
        "started_at": "2026-12-01T12:00:00+00:00", "latency_ms": 12.0, "brain": "rules", "model": "rules",
        "prompt_version": "p1", "trigger_event": {}, "goal": "retention", "allowed_tools": [],
        "context": None,
        "steps": [], "outcome": "acted", "rationale": "r", "model_calls": 0, "tool_calls": 1,
        "tokens_in": 0, "tokens_out": 0, "experiment_group": "treatment", "experiment": "exp-1",
    }  # fmt: skip
    sent = {"action_type": "offer_sent", "asset": "cpn-10", "delivered": True, "redeemed": True,
            "converted": True, "revenue": 80, "pending": False}  # fmt: skip
    story = explain({**base, "outcomes": [sent]})
    assert "Group:   treatment (acted on) in experiment exp-1" in story
    assert "offer_sent cpn-10: delivered, redeemed, converted, revenue $80.00 (window closed)" in story
    assert "no action announced yet" in explain({**base, "outcomes": []})
    assert "outside any experiment" in explain({**base, "experiment_group": None})
