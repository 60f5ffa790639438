"""`build_server`: one MCP server object, used in-process, over stdio and over streamable HTTP."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer

from mca.clock import Clock, system_clock
from mca.db import Stores
from mca.services import Services
from mca.settings import Settings
from mcp_tools import tools
from mcp_tools.auth import request_call_context
from mcp_tools.contract import SIDE_EFFECT_TOOLS, Tool
from mcp_tools.runtime import Runtime, ToolDeps

INSTRUCTIONS = (
    f"Tools of mca, a loyalty marketing engine. Read a customer with {Tool.GET_USER_CONTEXT}, find "
    f"what to offer with {Tool.SEARCH_ASSETS}, then act with {', '.join(SIDE_EFFECT_TOOLS)}. "
    "Every action passes a policy guard: a refusal is an error result with a `reason` code and a "
    "`message`; choose another action or do nothing. Doing nothing is often right."
)


async def show_callable_tools(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Middleware: `tools/list` shows a caller only the tools it may call (its `callers:` entry,
    its trigger's policy entry and, for a known decision, the trigger's own tools). The SDK
    (mcp 2.x) has no per-request list hook on MCPServer; its middleware sees the request's
    context and the wire result, and `get_tool_input_schema` is read before middleware, so a
    hidden tool still validates arguments when called (and is then refused by the guard).
    The result carries no cache hint, so its scope is the default, private to the caller."""
    result = await call_next(ctx)
    deps = ctx.lifespan_context
    if ctx.method != "tools/list" or not isinstance(result, dict) or not isinstance(deps, ToolDeps):
        return result
    allowed = await deps.service.visible_tools(request_call_context(ctx, deps))
    listed = [t for t in result.get("tools", []) if isinstance(t, dict) and t.get("name") in allowed]
    return {**result, "tools": listed}


def build_server(
    settings: Settings,
    stores: Stores,
    *,
    clock: Clock | None = None,
    embedder: Any = None,
    local_caller: str = "agent",
    pool_size: int = 10,
    services: Services | None = None,
) -> MCPServer[ToolDeps]:
    """The MCP server. Its lifespan yields `ToolDeps` (pools, guard, policy, embedder).

    `local_caller` names who calls over in-process and stdio transports (no token there):
    "agent" for the in-process agent; `mca mcp --stdio` passes its own, less trusted name.
    """
    runtime = Runtime(
        settings, stores, clock or system_clock, embedder, local_caller, pool_size, services=services
    )

    @asynccontextmanager
    async def lifespan(_: MCPServer[ToolDeps]) -> AsyncIterator[ToolDeps]:
        async with runtime.acquire() as deps:
            yield deps

    server: MCPServer[ToolDeps] = MCPServer(
        "mca", instructions=INSTRUCTIONS, version="0.1.0", lifespan=lifespan, log_level="WARNING"
    )
    server.middleware.append(show_callable_tools)
    for name, fn in tools.ALL.items():
        # Dedented: the docstring is what a model reads to decide when to use the tool. The
        # output schema comes from the return annotation (the side-effecting tools' `Outcome`).
        server.add_tool(fn, name=name.value, description=inspect.cleandoc(fn.__doc__ or ""))
    return server
