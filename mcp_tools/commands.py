"""The bodies of the action layer's CLI commands (imported lazily by `mcp_tools.cli`)."""

from __future__ import annotations

import logging
import sys
from contextlib import AsyncExitStack
from typing import Any

import httpx

from mca.db import Stores, connect
from mca.events import EventSink, OpenEventSink
from mca.process import configure_logging, stop_on_signals
from mca.services import Services, shared_or_own
from mca.settings import Settings
from mcp_tools.dispatch import Dispatcher, run_forever
from mcp_tools.outcome import Outcome
from mcp_tools.providers import build_providers
from mcp_tools.runtime import tool_service
from mcp_tools.service import ToolService


async def serve_stdio(
    settings: Settings, stores: Stores, caller: str, services: Services | None = None
) -> None:
    from mcp_tools.server import build_server

    # stdout carries the protocol: every log line goes to stderr.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    async with AsyncExitStack() as stack:
        container = await shared_or_own(services, stack, settings, stores)
        await build_server(settings, stores, local_caller=caller, services=container).run_stdio_async()


def make_dispatcher(
    settings: Settings, service: ToolService, http: httpx.AsyncClient, events: EventSink | None = None
) -> Dispatcher:
    return Dispatcher(
        service.ops_pool,
        build_providers(settings, http, service.ops_pool),
        settings.dispatch.routes,
        settings.dispatch.provider,
        service.policy_store,
        service.clock,
        max_attempts=settings.dispatch.max_attempts,
        quick_retries=settings.dispatch.quick_retries,
        retry_wait_s=settings.dispatch.retry_wait_s,
        backoff_s=settings.dispatch.backoff_s,
        lease_s=settings.dispatch.lease_s,
        max_age_s=settings.dispatch.max_age_s,
        state_pool=service.state_pool,
        events=events,
        points_echoed=settings.dispatch.points_echoed,
    )


async def dispatch(
    settings: Settings, stores: Stores, *, once: bool, open_sink: OpenEventSink | None = None
) -> dict[str, int]:
    configure_logging()
    # Only what delivery uses: the pools, the policy store and the clock (via the service, whose
    # release_due re-judges due deferred calls), the providers, and the event sink the
    # composition root hands in; no MCP server, no embedder.
    async with (
        tool_service(settings, stores) as service,
        httpx.AsyncClient(timeout=10) as http,
        AsyncExitStack() as stack,
    ):
        events = await stack.enter_async_context(open_sink(settings, stores)) if open_sink else None
        dispatcher = make_dispatcher(settings, service, http, events)
        if once:
            released = await service.release_due()
            counts = await dispatcher.run_once(limit=1000)
            return {"released": len(released), **counts}
        stop = stop_on_signals()
        await run_forever(dispatcher, service.release_due, stop, settings.dispatch.poll_s)
        return {}


async def decide_hold(
    settings: Settings,
    stores: Stores,
    pending_id: int,
    by: str,
    *,
    approve: bool,
    services: Services | None = None,
) -> Outcome:
    async with tool_service(settings, stores, pool_size=2, services=services) as service:
        if approve:
            outcome = await service.release(pending_id, by=by, approve=True)
            assert outcome is not None
            return outcome
        return await service.reject(pending_id, by=by)


def list_holds(stores: Stores) -> list[dict[str, Any]]:
    with connect(stores.ops_url) as conn:
        rows = conn.execute(
            "SELECT p.pending_id, p.kind, p.due_at, t.tool, t.user_id, t.caller, t.trigger_name, t.arguments "
            "FROM pending_actions p JOIN tool_calls t USING (call_id) WHERE p.status = 'waiting' ORDER BY 1"
        ).fetchall()
    return [dict(r) for r in rows]


async def set_switch(
    settings: Settings, stores: Stores, name: str, enabled: bool, by: str, reason: str
) -> dict[str, Any]:
    from mca.clock import system_clock
    from mca.db import connect_async
    from mcp_tools import switches
    from mcp_tools.policy import load_policy

    conn = await connect_async(stores.ops_url)
    try:
        state = await switches.set_switch(
            conn,
            load_policy(settings.guard.policy_file),
            name,
            enabled,
            by=by,
            reason=reason,
            now=system_clock(),
        )
    finally:
        await conn.close()
    return state.to_dict()


async def switch_status(settings: Settings, stores: Stores) -> list[dict[str, Any]]:
    from mca.db import connect_async
    from mcp_tools import switches
    from mcp_tools.policy import load_policy

    conn = await connect_async(stores.ops_url, autocommit=True)
    try:
        return [s.to_dict() for s in await switches.status(conn, load_policy(settings.guard.policy_file))]
    finally:
        await conn.close()
