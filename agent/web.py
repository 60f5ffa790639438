"""The agent's part of the HTTP app (see `mca.app`): the decisions API and its pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from agent.api import router
from mca.db import Stores
from mca.extension import Extension
from mca.services import Role, Services, shared_or_own
from mca.settings import Settings


def extension(settings: Settings, stores: Stores, services: Services | None = None) -> Extension:
    """With `services` the ops pool is the process's; without, the extension owns one."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            own = await shared_or_own(services, stack, settings, stores)
            app.state.agent_ops_pool = await own.pool(Role.OPS, size=4)
            app.state.agent_state_pool = await own.pool(Role.STATE, size=4)
            yield

    return Extension(
        name="agent",
        routers=[router],
        lifespan=lifespan,
        tags=[{"name": "decisions", "description": "What the agent decided, and why."}],
    )
