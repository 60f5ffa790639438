"""`build_server`: one MCP server object, used in-process, over stdio and over streamable HTTP."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.mcpserver import MCPServer

from mca.db import Stores
from mca.settings import Settings
from mcp_tools import tools
from mcp_tools.clock import Clock, system_clock
from mcp_tools.runtime import Runtime, ToolDeps

INSTRUCTIONS = (
    "Tools of mca, a loyalty marketing engine. Read a customer with get_user_context, find what "
    "to offer with search_assets, then act with send_coupon, send_sms, update_crm or award_points. "
    "Every action passes a policy guard: a refusal is an error result with a `reason` code and a "
    "`message`; choose another action or do nothing. Doing nothing is often right."
)


def build_server(
    settings: Settings,
    stores: Stores,
    *,
    clock: Clock | None = None,
    embedder: Any = None,
    local_caller: str = "agent",
    pool_size: int = 10,
) -> MCPServer[ToolDeps]:
    """The MCP server. Its lifespan yields `ToolDeps` (pools, guard, policy, embedder).

    `local_caller` names who calls over in-process and stdio transports (no token there):
    "agent" for the in-process agent; `mca mcp --stdio` passes its own, less trusted name.
    """
    runtime = Runtime(settings, stores, clock or system_clock, embedder, local_caller, pool_size)

    @asynccontextmanager
    async def lifespan(_: MCPServer[ToolDeps]) -> AsyncIterator[ToolDeps]:
        async with runtime.acquire() as deps:
            yield deps

    server: MCPServer[ToolDeps] = MCPServer(
        "mca", instructions=INSTRUCTIONS, version="0.1.0", lifespan=lifespan, log_level="WARNING"
    )
    for fn in tools.ALL:
        # Dedented: the docstring is what a model reads to decide when to use the tool.
        server.add_tool(fn, description=inspect.cleandoc(fn.__doc__ or ""), structured_output=False)
    return server
