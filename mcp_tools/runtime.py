"""The server's dependencies, opened once and shared by every connection that enters its lifespan.

The MCP SDK enters a server's lifespan once per in-process client, once for stdio and once for
the HTTP session manager. Pools are expensive to open, so the first entry opens them, the last
exit closes them, and every tool reads them from the typed lifespan context (`ToolDeps`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from psycopg_pool import AsyncConnectionPool

from mca.clock import Clock, system_clock
from mca.db import Stores, open_pool
from mca.services import Role, Services, Slot
from mca.settings import Settings
from mcp_tools.policy import PolicyStore
from mcp_tools.service import ToolService

if TYPE_CHECKING:
    from state.embedding import Embedder


# One policy store per process, whoever asks first (the HTTP tools, the in-process tools, dispatch).
POLICY = Slot[PolicyStore]("policy store")


@dataclass
class ToolDeps:
    """What every tool reads from `ctx.request_context.lifespan_context`."""

    settings: Settings
    service: ToolService
    state_pool: AsyncConnectionPool[Any]
    local_caller: str
    embedder: Embedder | None = None

    async def get_embedder(self) -> Embedder:
        if self.embedder is None:
            from state.embedding import get_embedder

            # Loading the model takes seconds: off the event loop, once per process.
            self.embedder = await asyncio.to_thread(
                get_embedder, self.settings.embedding_model, self.settings.embedding_batch_size
            )
        return self.embedder


async def _open_pools(stores: Stores, size: int) -> list[AsyncConnectionPool[Any]]:
    """[ops] when one server holds both stores, else [ops, state]."""
    ops = await open_pool(stores.ops_url, min_size=1, max_size=size, name="mca-ops")
    if stores.state_url == stores.ops_url:
        return [ops]
    return [ops, await open_pool(stores.state_url, min_size=1, max_size=size, name="mca-state")]


@asynccontextmanager
async def tool_service(
    settings: Settings, stores: Stores, *, pool_size: int = 10, clock: Clock = system_clock
) -> AsyncIterator[ToolService]:
    """Just the ledger's service (pools, policy store, clock), for the dispatcher and the CLI:
    no MCP server, no embedder, no lifespan sharing."""
    pools = await _open_pools(stores, pool_size)
    try:
        yield ToolService(PolicyStore(settings.policy_file), pools[-1], pools[0], clock)
    finally:
        for pool in pools:
            await pool.close()


@dataclass
class Runtime:
    settings: Settings
    stores: Stores
    clock: Clock = system_clock
    embedder: Any = None
    local_caller: str = "agent"
    pool_size: int = 10
    services: Services | None = None  # the process's pools and policy store; else opened here
    _deps: ToolDeps | None = None
    _users: int = 0
    _pools: list[AsyncConnectionPool[Any]] = field(default_factory=list)
    _lock: asyncio.Lock | None = None

    async def _open(self) -> ToolDeps:
        if self.services is not None:
            return await self._from_services(self.services)
        self._pools = await _open_pools(self.stores, self.pool_size)
        ops, state = self._pools[0], self._pools[-1]
        service = ToolService(PolicyStore(self.settings.policy_file), state, ops, self.clock)
        return ToolDeps(self.settings, service, state, self.local_caller, self.embedder)

    async def _from_services(self, services: Services) -> ToolDeps:
        # The container owns these pools: nothing to close here (`_pools` stays empty).
        ops = await services.pool(Role.OPS, size=self.pool_size)
        state = await services.pool(Role.STATE, size=self.pool_size)
        policy = services.one(POLICY, lambda: PolicyStore(self.settings.guard.policy_file))
        service = ToolService(policy, state, ops, self.clock)
        return ToolDeps(self.settings, service, state, self.local_caller, self.embedder)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[ToolDeps]:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._deps is None:
                self._deps = await self._open()
            self._users += 1
            deps = self._deps
        try:
            yield deps
        finally:
            async with self._lock:
                self._users -= 1
                if self._users == 0:
                    pools, self._pools, self._deps = self._pools, [], None
                    for pool in pools:
                        await pool.close()
