"""The agent's part of the HTTP app (see `mca.app`): the decisions API and its pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from agent.api import router
from mca.db import Stores, open_pool
from mca.extension import Extension
from mca.settings import Settings


def extension(settings: Settings, stores: Stores) -> Extension:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await open_pool(stores.ops_url, min_size=1, max_size=4, name="agent-api")
        app.state.agent_ops_pool = pool
        try:
            yield
        finally:
            await pool.close()

    return Extension(
        name="agent",
        routers=[router],
        lifespan=lifespan,
        tags=[{"name": "decisions", "description": "What the agent decided, and why."}],
    )
