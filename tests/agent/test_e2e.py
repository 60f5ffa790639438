"""End to end on the embedded server: events posted to /ingest become delivered actions, and
each decision explains itself. The same assembly `mca demo` runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from agent.explain import explain
from demo.product import run_story
from mca.testing import scalar
from tests.agent.fake_chat_server import Reply, completion, fake_chat_server
from tests.agent.helpers import stored_decision


async def test_story_posted_to_ingest_ends_in_delivered_actions(agent_settings, agent_stores) -> None:
    lines: list[str] = []
    report = await run_story(agent_settings, agent_stores, lines.append, follow=False, timeout_s=60)
    assert report.finished, "\n".join(lines)
    by_trigger = {r.trigger_name: r for r in report.decisions}
    assert {"big_purchase", "cart_abandoned", "ticket_opened"} <= set(by_trigger)
    ticket = by_trigger["ticket_opened"]
    tools = [s.tool_name for s in ticket.transcript.steps if s.kind == "tool_call"]
    assert "award_points" not in tools and "update_crm" in tools
    for trigger in ("big_purchase", "cart_abandoned"):
        assert by_trigger[trigger].transcript.outcome == "acted"
    url = agent_stores.ops_url
    story_users = [r.user_id for r in by_trigger.values()]
    assert (
        scalar(
            url, "SELECT count(*) FROM outbox WHERE user_id = ANY(%s) AND status = 'delivered'", story_users
        )
        >= 3
    )
    # Each decision explains itself from what the ops store kept.
    story = explain(await stored_decision(url, by_trigger["big_purchase"].decision_id))
    assert "Woke on: a 'purchase' event" in story and "send_coupon" in story and "Outcome: acted" in story
    assert any(line.startswith("POST /ingest") and "HTTP 202" in line for line in lines)
    assert any("DELIVERED" in line for line in lines)


@pytest.mark.slow
def test_mca_demo_runs_on_its_own_and_exits(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCA_")}
    env.pop("GROQ_API_KEY", None)
    env["MCA_DATA_DIR"] = str(tmp_path / "demo-data")
    env["HF_HUB_OFFLINE"] = "1"
    mca = str(Path(sys.executable).with_name("mca"))
    try:
        done = subprocess.run(
            [mca, "demo", "--timeout", "90"], env=env, capture_output=True, text=True, timeout=240
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        out = done.stdout
        assert "brain: rules" in out
        for trigger in ("big_purchase", "cart_abandoned", "ticket_opened"):
            assert f"TRIGGER {trigger} fired" in out
        assert "guard: allowed" in out and "DELIVERED" in out
        assert "treated it as data" in out
    finally:
        subprocess.run([mca, "db", "down"], env=env, capture_output=True, timeout=90)


def fake_llama(request: dict[str, Any]) -> Reply:
    """A stand-in for Llama on Groq: search, offer the best match, explain; reads only the API."""
    messages = request["messages"]
    tool_results = [m for m in messages if m["role"] == "tool"]
    user_id = re.search(r"user_id=([\w-]+)", messages[1]["content"]).group(1)  # type: ignore[union-attr]
    if not tool_results:
        return Reply(
            200, completion(tool_calls=[("search_assets", json.dumps({"query": "a fitting offer", "k": 3}))])
        )
    if len(tool_results) == 1:
        assets = json.loads(tool_results[0]["content"]).get("assets") or []
        if assets:
            args = {"user_id": user_id, "asset_id": assets[0]["asset_id"], "reason": "fits their story"}
            return Reply(200, completion(tool_calls=[("send_coupon", json.dumps(args))]))
    return Reply(200, completion(content="Offered the best-matching coupon."))


async def test_the_story_with_the_groq_brain(agent_settings, agent_stores) -> None:
    with fake_chat_server() as server:
        server.responder = fake_llama
        settings = agent_settings.model_copy(
            update={"brain": "auto", "groq_api_key": SecretStr("gsk_test"), "groq_base_url": server.url}
        )
        lines: list[str] = []
        report = await run_story(settings, agent_stores, lines.append, follow=False, timeout_s=60)
    assert report.finished, "\n".join(lines)
    assert "brain: groq (llama-3.3-70b-versatile)" in lines[0]
    assert {r.brain for r in report.decisions} == {"groq"}
    assert all(r.transcript.tokens_in > 0 for r in report.decisions)
    outcomes = {r.trigger_name: r.transcript.outcome for r in report.decisions}
    assert outcomes["big_purchase"] == outcomes["cart_abandoned"] == "acted", outcomes
    # The model saw the ticket only inside the fence.
    ticket_prompts = [
        r["messages"][1]["content"] for r in server.requests if "ticket_opened" in r["messages"][1]["content"]
    ]
    assert ticket_prompts and all("UNTRUSTED CUSTOMER TEXT" in p for p in ticket_prompts)
