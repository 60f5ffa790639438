"""Jobs queued while no agent ran: past their deadline they expire, loudly, and give the
cooldown back so the next real trigger for the customer is not swallowed."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from agent import queue
from agent.providers.scripted import ScriptedModel
from agent.runtime import agent_runtime
from agent.sources import PostgresTail
from agent.trigger_config import TriggerFile
from agent.trigger_service import TriggerService
from mca.db import connect_async
from mca.testing import add_events, event_row, scalar
from tests.agent.world import QUERIES_DIR

RULES = """
defaults: {cooldown: 1h, user_cooldown: 1h, deadline: 2m}
rules:
  - {name: big_purchase, event: purchase, when: ["event.value >= 100"], goal: post_purchase}
"""


async def purchase_jobs(url: str, clock: Any, rules: Path, *events: dict[str, Any]) -> list[str]:
    """Write the events and run the real trigger service over them; the jobs it queued."""
    state = await connect_async(url, autocommit=True)
    ops = await connect_async(url, autocommit=True)
    try:
        await add_events(state, *events)
        svc = TriggerService(
            source=PostgresTail(state),
            state=state,
            ops=ops,
            triggers=TriggerFile(rules, queries_dir=QUERIES_DIR),
            clock=clock,
            start="earliest",
        )
        made: list[str] = []
        while (report := await svc.step_stream()).events:
            made += report.jobs
        return made
    finally:
        await state.close()
        await ops.close()


async def test_overdue_job_expires_counts_logs_and_gives_the_cooldown_back(
    agent_settings, agent_stores, frozen, embedder, tmp_path, caplog
) -> None:
    rules = tmp_path / "triggers.yaml"
    rules.write_text(RULES)
    url = agent_stores.ops_url
    first = await purchase_jobs(url, frozen, rules, event_row("p1", "u_ana", "purchase", frozen(), value=349))
    assert len(first) == 1
    frozen.advance(minutes=10)  # no agent ran: the decision deadline (2 min) passed

    caplog.set_level(logging.WARNING, logger="agent.worker")
    async with agent_runtime(
        agent_settings, agent_stores, model=ScriptedModel(["unused"]), clock=frozen, embedder=embedder
    ) as rt:
        assert await rt.workers[0].run_one() is None, "an expired job is not decided"
        assert rt.workers[0].expired == 1
    assert scalar(url, "SELECT status FROM agent_jobs WHERE job_id = %s", first[0]) == "expired"
    assert scalar(url, "SELECT count(*) FROM decisions") == 0
    assert any(first[0] in r.getMessage() and "expired" in r.getMessage() for r in caplog.records)
    conn = await connect_async(url, autocommit=True)
    try:
        assert (await queue.counts(conn))["expired"] == 1
    finally:
        await conn.close()
    assert scalar(url, "SELECT count(*) FROM trigger_cooldowns WHERE user_id = 'u_ana'") == 0

    # Well inside the hour the expired job's cooldown would have covered: a real purchase fires.
    frozen.advance(minutes=5)
    second = await purchase_jobs(
        url, frozen, rules, event_row("p2", "u_ana", "purchase", frozen(), value=120)
    )
    assert len(second) == 1


async def test_cooldown_returns_to_the_last_job_that_counted(
    agent_settings, agent_stores, frozen, embedder, tmp_path
) -> None:
    rules = tmp_path / "triggers.yaml"
    rules.write_text(RULES.replace("cooldown: 1h, user_cooldown: 1h", "cooldown: 1h, user_cooldown: 0s"))
    url = agent_stores.ops_url
    start = frozen()
    decided = await purchase_jobs(url, frozen, rules, event_row("p1", "u_ana", "purchase", start, value=349))
    async with agent_runtime(
        agent_settings, agent_stores, model=ScriptedModel(["nothing to do"]), clock=frozen, embedder=embedder
    ) as rt:
        assert await rt.workers[0].run_one() is not None  # a real decision at `start`
        frozen.advance(hours=2)
        late = await purchase_jobs(
            url, frozen, rules, event_row("p2", "u_ana", "purchase", frozen(), value=150)
        )
        frozen.advance(minutes=10)
        assert await rt.workers[0].run_one() is None
    assert decided and late
    assert scalar(url, "SELECT status FROM agent_jobs WHERE job_id = %s", late[0]) == "expired"
    fired = scalar(url, "SELECT fired_at FROM trigger_cooldowns WHERE trigger_name = 'big_purchase'")
    assert fired == start, "back to the decision that really happened"
    assert fired + timedelta(hours=1) < frozen()
