"""Wiring: the agent workers (pools, MCP sessions, model, prompts) and the trigger service.

Used by `mca agent`, `mca trigger`, the demo, the end-to-end tests and the benchmarks, so
they all run the same assembly. Workers wake on `NOTIFY mca_agent_jobs` (sent by the trigger
service with each batch that made jobs) and poll as a fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg

from agent.loop import Limits
from agent.model import ChatModel
from agent.prompts import PromptSet
from agent.shares import triggers_file
from agent.sources import PostgresTail, PsycopgCursorConnection, RisingWaveSubscription, Start, StreamSource
from agent.toolbox import open_toolbox
from agent.trigger_service import TriggerService
from agent.worker import AgentDeps, OnDecision, Worker
from mca.clock import Clock, system_clock
from mca.db import Engine, Stores, connect_async, engine_of_connection
from mca.errors import DatabaseUnreachable
from mca.services import Role, Services, shared_or_own
from mca.settings import Settings

log = logging.getLogger(__name__)
CHANNEL = "mca_agent_jobs"


@dataclass
class AgentRuntime:
    deps: AgentDeps
    workers: list[Worker]
    ops_url: str
    wakes: list[asyncio.Event] = field(default_factory=list)

    async def _listen(self, stop: asyncio.Event) -> None:
        """Wake the workers on NOTIFY; reconnect after a lost connection (workers still poll)."""
        while not stop.is_set():
            try:
                conn = await connect_async(self.ops_url, autocommit=True)
            except DatabaseUnreachable as err:
                log.warning("job notifications unavailable, retrying: %s", err)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 2.0)
                continue
            try:
                await conn.execute(f"LISTEN {CHANNEL}")
                while not stop.is_set():
                    async for _ in conn.notifies(timeout=0.5):
                        for wake in self.wakes:
                            wake.set()
            except psycopg.OperationalError as err:
                log.warning("lost the job notification connection: %s", err)
            finally:
                await conn.close()

    async def run(self, stop: asyncio.Event) -> None:
        self.wakes = [asyncio.Event() for _ in self.workers]
        tasks = [
            asyncio.create_task(w.run(stop, wake)) for w, wake in zip(self.workers, self.wakes, strict=True)
        ]
        tasks.append(asyncio.create_task(self._listen(stop)))
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)


def build_tool_server(
    settings: Settings,
    stores: Stores,
    *,
    clock: Clock | None,
    embedder: Any,
    services: Services,
) -> Any:
    """The in-process MCP server, its query embeddings cached (the agent repeats its searches).
    Without an `embedder` it uses the container's."""
    from agent.embed_cache import QueryEmbeddingCache
    from mcp_tools.server import build_server

    if embedder is None:
        from state.embedding import embedder_of

        embedder = embedder_of(services)
    return build_server(
        settings, stores, clock=clock, embedder=QueryEmbeddingCache.shared(embedder), services=services
    )


@asynccontextmanager
async def agent_runtime(
    settings: Settings,
    stores: Stores,
    *,
    workers: int = 1,
    model: ChatModel | None = None,
    clock: Clock | None = None,
    server: Any = None,
    embedder: Any = None,
    limits: Limits | None = None,
    lease: timedelta = timedelta(seconds=60),
    poll: timedelta = timedelta(seconds=1),  # a fallback: NOTIFY wakes workers for new jobs
    on_decision: OnDecision | None = None,
    services: Services | None = None,
    seed: int | None = None,
) -> AsyncIterator[AgentRuntime]:
    """Pools, one MCP session per worker, the model and the prompts; closed on exit.

    With `services` the workers and their in-process tools use the process's pools; without,
    the runtime owns a container of its own."""
    if model is None:
        from agent.providers import make_model

        model = make_model(settings)
    prompts = PromptSet.load(settings.agent.prompts_dir)
    async with AsyncExitStack() as stack:
        own = await shared_or_own(services, stack, settings, stores, clock=clock or system_clock)
        tool_server = server
        if tool_server is None:
            tool_server = build_tool_server(settings, stores, clock=clock, embedder=embedder, services=own)
        # Autocommit: a single statement needs no BEGIN/COMMIT round trips, and the worker
        # opens an explicit transaction where two writes must land together.
        ops_pool = await own.pool(Role.OPS, autocommit=True, size=workers + 2)
        state_pool = await own.pool(Role.STATE, autocommit=True, size=workers + 1)
        stack.push_async_callback(model.aclose)
        allocator = await _allocator(settings, own, state_pool, ops_pool, clock or system_clock, seed)
        stack.push_async_callback(allocator.cache.close)
        deps = AgentDeps(
            state_pool=state_pool,
            ops_pool=ops_pool,
            model=model,
            prompts=prompts,
            limits=limits or Limits(),
            clock=clock or system_clock,
            lease=lease,
            poll=poll,
            on_decision=on_decision,
            allocator=allocator,
        )
        pool: list[Worker] = []
        for n in range(workers):
            toolbox = await stack.enter_async_context(open_toolbox(tool_server))
            pool.append(Worker(f"worker-{n + 1}", deps, toolbox))
        yield AgentRuntime(deps=deps, workers=pool, ops_url=stores.ops_url)


async def _allocator(
    settings: Settings, own: Services, state_pool: Any, ops_pool: Any, clock: Clock, seed: int | None
) -> Any:
    """The allocator of the bandit/explore triggers: the guard's service for its dry runs (the
    process's policy store) and the arm statistics cache, read once now, off any decision."""
    import numpy as np

    from agent.allocation import Allocator
    from learn.arm_cache import ArmCache
    from mcp_tools.policy import PolicyStore
    from mcp_tools.runtime import POLICY
    from mcp_tools.service import ToolService

    policy = own.one(POLICY, lambda: PolicyStore(settings.guard.policy_file))
    cache = ArmCache(state_pool, clock=clock)
    await cache.prime()
    if _learning_configured(settings):
        from learn.posterior import load_quantiles

        await asyncio.to_thread(load_quantiles)
    service = ToolService(policy, state_pool, ops_pool, clock)
    return Allocator(service, cache, ops_pool, clock, rng=np.random.default_rng(seed))


def _learning_configured(settings: Settings) -> bool:
    """Whether a trigger of the triggers file chooses by bandit or explore (an unreadable file:
    no, the trigger service reports it; a mode switched on later pays its first import then)."""
    from agent.errors import TriggerConfigError
    from learn.allocate import SelectionMode

    try:
        found = triggers_file(settings).refresh()
    except TriggerConfigError:
        return False
    return any(t.selection is not SelectionMode.MODEL for t in (*found.rules, *found.opportunities))


async def open_source(state: psycopg.AsyncConnection[Any], listen_url: str | None = None) -> StreamSource:
    """The engine's stream source; on PostgreSQL woken by NOTIFY when `listen_url` is given."""
    if await engine_of_connection(state) is Engine.RISINGWAVE:
        return RisingWaveSubscription(PsycopgCursorConnection(state))
    return PostgresTail(state, listen_url=listen_url)


async def run_trigger_service(
    settings: Settings, stores: Stores, stop: asyncio.Event, *, start: Start = "latest", retry_s: float = 2.0
) -> None:
    """The service until `stop`, reconnecting after a database outage. Nothing is lost or
    repeated by a restart: the stream position commits with the jobs it made."""
    while not stop.is_set():
        try:
            async with trigger_service(settings, stores, start=start) as service:
                await service.run(stop)
        except (psycopg.OperationalError, DatabaseUnreachable) as err:
            log.error("trigger service lost the database, restarting in %.0f s: %s", retry_s, err)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), retry_s)


@asynccontextmanager
async def trigger_service(
    settings: Settings,
    stores: Stores,
    *,
    clock: Clock | None = None,
    start: Start = "latest",
    push: bool = True,
) -> AsyncIterator[TriggerService]:
    """`push=False` reads only on the poll (the floor bench/bench_e2e.py compares push to)."""
    triggers = triggers_file(settings)
    # The stream gets its own connection: a RisingWave subscription cursor lives in its
    # session, and rule facts and opportunity queries should not run between its FETCHes.
    stream = await connect_async(stores.state_url, autocommit=True)
    state = await connect_async(stores.state_url, autocommit=True)
    ops = await connect_async(stores.ops_url, autocommit=True)
    source: StreamSource | None = None
    try:
        source = await open_source(stream, stores.state_url if push else None)
        yield TriggerService(
            source=source, state=state, ops=ops, triggers=triggers, clock=clock or system_clock, start=start
        )
    finally:
        if source is not None:
            await source.close()
        for conn in (stream, state, ops):
            await conn.close()
