"""The agent's only way to act: an MCP client session to the tool server.

In-process by default (the official client against the server object, no network), or a URL
for a remote server. Every call carries the decision id and trigger in the request meta: the
server builds idempotency keys from them and applies the trigger's tool allow-list. Results
are read from the structured content (`status`, `reason`, `message`); an error result is a
verdict the model gets back as a tool error.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from mcp.client.client import Client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, RequestParamsMeta, TextContent

from agent.errors import ToolSessionError
from agent.model import ToolSpec

META_DECISION = "mca.decision_id"
META_TRIGGER = "mca.trigger"
# The customer the decision is about: the loop already refuses calls naming anyone else; the
# meta lets the tool server check the same thing on its side.
META_USER = "mca.user_id"


@dataclass
class ToolResult:
    ok: bool
    status: str
    reason: str | None
    data: dict[str, Any]
    latency_ms: float

    def for_model(self) -> str:
        """What the model reads back: the server's own structured answer, compact."""
        return json.dumps(self.data, default=str, separators=(",", ":"))


def read_result(result: CallToolResult, latency_ms: float) -> ToolResult:
    data: dict[str, Any] | None = None
    if isinstance(result.structured_content, dict):
        data = dict(result.structured_content)
    else:
        text = "".join(c.text for c in result.content if isinstance(c, TextContent))
        try:
            parsed = json.loads(text)
            data = parsed if isinstance(parsed, dict) else {"result": parsed}
        except json.JSONDecodeError:
            data = {"message": text}
    if result.is_error:
        status = str(data.get("status") or "error")
        reason = data.get("reason")
        if reason is None:
            # The SDK's own errors (unknown tool, argument validation) carry no reason code.
            message = str(data.get("message", ""))
            reason = "unknown_tool" if message.startswith("Unknown tool") else "invalid_arguments"
            data = {"status": "error", "reason": reason, "message": message}
        return ToolResult(False, status, str(reason), data, latency_ms)
    return ToolResult(True, str(data.get("status") or "ok"), data.get("reason"), data, latency_ms)


def _meta(decision_id: str, trigger: str, user_id: str | None) -> RequestParamsMeta:
    meta: RequestParamsMeta = {}
    meta[META_DECISION] = decision_id  # type: ignore[literal-required]  # open map: extra keys allowed
    meta[META_TRIGGER] = trigger  # type: ignore[literal-required]
    if user_id is not None:
        meta[META_USER] = user_id  # type: ignore[literal-required]
    return meta


class Toolbox:
    def __init__(self, client: Client) -> None:
        self.client = client
        self._specs: list[ToolSpec] | None = None

    async def specs(self) -> list[ToolSpec]:
        if self._specs is None:
            try:
                listed = await self.client.list_tools()
            except MCPError as err:
                raise ToolSessionError(f"cannot list tools: {err}") from None
            self._specs = [
                ToolSpec(
                    name=t.name, description=(t.description or "").strip(), parameters=dict(t.input_schema)
                )
                for t in listed.tools
            ]
        return self._specs

    async def call(
        self,
        name: str,
        arguments: dict[str, Any],
        *,
        decision_id: str,
        trigger: str,
        user_id: str | None = None,
    ) -> ToolResult:
        started = time.perf_counter()
        try:
            result = await self.client.call_tool(name, arguments, meta=_meta(decision_id, trigger, user_id))
        except MCPError as err:
            latency = (time.perf_counter() - started) * 1000
            return ToolResult(
                False,
                "error",
                "protocol_error",
                {"status": "error", "reason": "protocol_error", "message": str(err)},
                latency,
            )
        return read_result(result, (time.perf_counter() - started) * 1000)


@asynccontextmanager
async def open_toolbox(server: Any) -> AsyncIterator[Toolbox]:
    """A session to `server`: an MCPServer object (in-process) or a streamable-HTTP URL."""
    client = Client(server, cache=None)
    try:
        await client.__aenter__()
    except (OSError, MCPError) as err:
        raise ToolSessionError(f"cannot open an MCP session: {err}") from None
    try:
        yield Toolbox(client)
    finally:
        await client.__aexit__(None, None, None)
