"""A read tool's check: a decision's job is read once, then judged from what it fixed at enqueue
(the switches concern actions only); the scopes kept are bounded."""

from __future__ import annotations

import psycopg

from mca.db import Stores
from mca.settings import Settings
from mca.testing import FrozenClock
from mcp_tools.guard import CallContext
from mcp_tools.runtime import tool_service
from mcp_tools.scope import JobScopes
from tests.agent.helpers import put_job
from tests.mcp_tools.helpers import decision_job


async def test_a_decisions_job_is_read_once_for_its_read_tools(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, world: str
) -> None:
    job = decision_job("default", tools=("search_assets",))
    await put_job(world, job, clock)
    ctx = CallContext(caller="agent", trigger="default", decision_id=job.decision_id, subject="u_ok")
    async with tool_service(tool_settings, tool_stores, clock=clock) as service:
        assert await service.check_read("search_assets", ctx, {}) is None
        denied = await service.check_read("get_user_context", ctx, {"user_id": "u_ok"})
        assert denied is not None and denied.reason == "tool_not_in_trigger"
        # Never done by mca (a job's tools are fixed at enqueue): shows the second look is not a read.
        with psycopg.connect(world, autocommit=True) as conn:
            conn.execute("UPDATE agent_jobs SET tools = '{}' WHERE decision_id = %s", (job.decision_id,))
        assert await service.check_read("search_assets", ctx, {}) is None
    async with tool_service(tool_settings, tool_stores, clock=clock) as fresh:
        denied = await fresh.check_read("search_assets", ctx, {})
        assert denied is not None and denied.reason == "tool_not_in_trigger"


def test_the_scopes_kept_are_the_most_recently_seen() -> None:
    scopes = JobScopes(size=2)
    for name in ("a", "b"):
        scopes.put(name, {"trigger": name})
    assert scopes.get("a") == {"trigger": "a"}  # now the most recent
    scopes.put("c", {"trigger": "c"})
    assert (scopes.get("a"), scopes.get("b"), scopes.get("c")) == ({"trigger": "a"}, None, {"trigger": "c"})
