"""Helpers for agent tests: run one job through the real runtime and read what it left."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from agent import records
from agent.model import ChatModel
from agent.queue import NewJob, enqueue
from agent.runtime import agent_runtime
from mca.db import Stores, connect_async
from mca.settings import Settings
from mcp_tools import contract

ALL_TOOLS = tuple(t.value for t in contract.ALL_TOOLS)


def new_job(
    user_id: str = "u_ana",
    *,
    trigger: str = "big_purchase",
    goal: str = "post_purchase",
    tools: tuple[str, ...] = ALL_TOOLS,
    event: dict[str, Any] | None = None,
    max_attempts: int = 3,
) -> NewJob:
    return NewJob(
        dedup_key=f"test:{uuid.uuid4().hex}",
        trigger_name=trigger,
        user_id=user_id,
        goal=goal,
        tools=tools,
        event=event
        or {"type": "purchase", "event_id": "e-tent", "user_id": user_id, "value": 349.0, "sku": "OUT-001",
            "category": "outdoor", "properties": {"product_name": "Ridgeline 2-Person Backpacking Tent"}},
        max_attempts=max_attempts,
        deadline_in=timedelta(minutes=2),
    )  # fmt: skip


async def put_job(url: str, job: NewJob, clock: Any) -> None:
    conn = await connect_async(url, autocommit=True)
    try:
        assert await enqueue(conn, job, now=clock())
    finally:
        await conn.close()


async def decide(
    settings: Settings, stores: Stores, model: ChatModel, job: NewJob, *, clock: Any, embedder: Any
) -> dict[str, Any]:
    """Enqueue `job`, let one worker take it, return the stored decision record."""
    await put_job(stores.ops_url, job, clock)
    async with agent_runtime(settings, stores, workers=1, model=model, clock=clock, embedder=embedder) as rt:
        assert await rt.workers[0].run_one() is not None
    return await stored_decision(stores.ops_url, job.decision_id)


async def stored_decision(url: str, decision_id: str) -> dict[str, Any]:
    conn = await connect_async(url, autocommit=True)
    try:
        found = await records.load(conn, decision_id)
    finally:
        await conn.close()
    assert found is not None, decision_id
    return found


def tool_steps(decision: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in decision["steps"] if s["kind"] == "tool_call"]
