"""One service container per process: the pools by role, the clock, and the shared stores.

Built once at start-up by the composition root (`mca serve`, `mca demo`, a worker command) and
handed to every part of the process: the web extensions, the MCP tool server's runtime, the
agent workers. Like the MCP SDK's typed lifespan context, nothing reaches for a global.

Pools open lazily, on the first ``pool(role)``, so a process opens only what it uses. When the
state and ops stores are one server (the embedded default) both roles share one pool, so one
`mca demo` holds two pools (transactional and autocommit) instead of one per component.

Package objects (the policy store, the triggers file, the embedder, the model providers) live
in typed ``Slot``s: core imports no package, so each package declares its slot
(``POLICY = Slot[PolicyStore]("policy store")``) and the first user builds the one instance
(``services.one(POLICY, build)``), or the root provides it up front (``services.provide``).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

from psycopg_pool import AsyncConnectionPool

from mca.clock import Clock, system_clock
from mca.db import Stores, open_pool
from mca.settings import Settings

T = TypeVar("T")


class Role(enum.StrEnum):
    STATE = "state"  # events and the live views
    OPS = "ops"  # jobs, decisions, ledger, outbox


@dataclass(frozen=True, eq=False)
class Slot(Generic[T]):
    """A typed key for one package object in the container (identity is the key)."""

    name: str


class Services:
    def __init__(self, settings: Settings, stores: Stores, *, clock: Clock = system_clock) -> None:
        self.settings = settings
        self.stores = stores
        self.clock = clock
        self._pools: dict[tuple[str, bool], AsyncConnectionPool[Any]] = {}
        self._lock = asyncio.Lock()
        self._slots: dict[Slot[Any], Any] = {}
        self.pools_opened = 0  # a figure for tests and benchmarks: pools this process opened

    def url(self, role: Role) -> str:
        return self.stores.state_url if role is Role.STATE else self.stores.ops_url

    async def pool(self, role: Role, *, autocommit: bool = False, size: int = 4) -> AsyncConnectionPool[Any]:
        """The shared pool for `role`, opened on first use; a larger `size` grows it."""
        key = (self.url(role), autocommit)
        async with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                name = f"mca-{'shared' if self.stores.shared else role.value}{'-ac' if autocommit else ''}"
                pool = await open_pool(key[0], min_size=1, max_size=size, name=name, autocommit=autocommit)
                self._pools[key] = pool
                self.pools_opened += 1
            elif size > pool.max_size:
                await pool.resize(pool.min_size, size)
            return pool

    def provide(self, slot: Slot[T], value: T) -> T:
        """Fill a slot up front (a test's frozen clock or fake embedder, the demo's loaded model)."""
        self._slots[slot] = value
        return value

    def one(self, slot: Slot[T], build: Callable[[], T]) -> T:
        """The slot's one object, built by the first caller."""
        if slot not in self._slots:
            self._slots[slot] = build()
        return cast(T, self._slots[slot])

    def get(self, slot: Slot[T]) -> T | None:
        return cast("T | None", self._slots.get(slot))

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.close()

    async def __aenter__(self) -> Services:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


async def shared_or_own(
    services: Services | None,
    stack: AsyncExitStack,
    settings: Settings,
    stores: Stores,
    *,
    clock: Clock = system_clock,
) -> Services:
    """The process's container when a part is given one; else one of its own, closed with `stack`
    (a part built alone, as the tests build them)."""
    if services is not None:
        return services
    own = Services(settings, stores, clock=clock)
    stack.push_async_callback(own.aclose)
    return own
