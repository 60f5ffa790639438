"""End to end on the embedded server: events posted to /ingest become delivered actions, and
each decision explains itself. The same assembly `mca demo` runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.demo import run_story
from agent.explain import explain
from tests.agent.helpers import scalar, stored_decision


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
