"""The server's dependencies, opened once and shared by every connection that enters its lifespan.

The MCP SDK enters a server's lifespan once per in-process client, once for stdio and once for
the HTTP session manager. Pools are expensive to open, so the first entry opens them, the last
exit closes them, and every tool reads them from the typed lifespan context (`ToolDeps`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg_pool import AsyncConnectionPool

from mca.clock import Clock, system_clock
from mca.db import Stores
from mca.services import Role, Services, Slot, shared_or_own
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
    services: Services
    embedder: Embedder | None = None

    async def get_embedder(self) -> Embedder:
        if self.embedder is None:
            from state.embedding import embedder_of

            # Loading the model takes seconds: off the event loop, once per process (the container's).
            self.embedder = await asyncio.to_thread(embedder_of, self.services)
        return self.embedder


@asynccontextmanager
async def tool_service(
    settings: Settings,
    stores: Stores,
    *,
    pool_size: int = 10,
    clock: Clock = system_clock,
    services: Services | None = None,
) -> AsyncIterator[ToolService]:
    """Just the ledger's service (pools, policy store, clock), for the dispatcher and the CLI:
    no MCP server, no embedder. Its pools and policy store are the process's container's
    (`services`), or a container's of its own, closed on exit."""
    async with AsyncExitStack() as stack:
        container = await shared_or_own(services, stack, settings, stores, clock=clock)
        yield await _service_of(container, settings, pool_size, clock)


async def _service_of(services: Services, settings: Settings, pool_size: int, clock: Clock) -> ToolService:
    ops = await services.pool(Role.OPS, size=pool_size)
    state = await services.pool(Role.STATE, size=pool_size)
    policy = services.one(POLICY, lambda: PolicyStore(settings.guard.policy_file))
    return ToolService(policy, state, ops, clock)


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
    _own: Services | None = None
    _lock: asyncio.Lock | None = None

    async def _open(self) -> ToolDeps:
        services = self.services
        if services is None:  # built alone (tests): a container of its own, closed at the last exit
            services = self._own = Services(self.settings, self.stores, clock=self.clock)
        service = await _service_of(services, self.settings, self.pool_size, self.clock)
        return ToolDeps(
            self.settings, service, service.state_pool, self.local_caller, services, self.embedder
        )

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
                    own, self._own, self._deps = self._own, None, None
                    if own is not None:
                        await own.aclose()
