"""The agent's only way to act: an MCP client session to the tool server.

In-process by default (the official client against the server object, no network), or a URL
for a remote server. Every call carries the decision id and trigger in the request meta: the
server builds idempotency keys from them and applies the trigger's tool allow-list. Results
are read from the structured content into the contract's `Outcome` (`status`, `reason`,
`message`, ...); an error result is a verdict the model gets back as a tool error.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.client.client import Client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, RequestParamsMeta, TextContent
from pydantic import ValidationError

from agent.errors import ToolSessionError
from agent.model import ToolSpec
from mcp_tools.contract import (
    META_DECISION_ID,
    META_TRIGGER,
    META_USER_ID,
    Outcome,
    Reason,
    Status,
)


def read_result(result: CallToolResult) -> Outcome:
    """The tool's answer as the contract's `Outcome` (a read tool's data rides as extra fields)."""
    data: dict[str, Any]
    if isinstance(result.structured_content, dict):
        data = dict(result.structured_content)
    else:
        text = "".join(c.text for c in result.content if isinstance(c, TextContent))
        try:
            parsed = json.loads(text)
            data = parsed if isinstance(parsed, dict) else {"result": parsed}
        except json.JSONDecodeError:
            data = {"message": text}
    if result.is_error and data.get("reason") is None:
        # The SDK's own errors (unknown tool, argument validation) carry no reason code.
        message = str(data.get("message", ""))
        unknown = message.startswith("Unknown tool")
        reason = Reason.UNKNOWN_TOOL if unknown else Reason.INVALID_ARGUMENTS
        return Outcome(status=Status.ERROR, reason=reason, message=message)
    data.setdefault("status", Status.ERROR if result.is_error else Status.OK)
    try:
        return Outcome.model_validate(data)
    except ValidationError as err:
        # A server that breaks the contract: the model learns the call failed, never half a result.
        return Outcome(
            status=Status.ERROR, reason=Reason.PROTOCOL_ERROR, message=f"unreadable tool result: {err}"
        )


def _meta(decision_id: str, trigger: str, user_id: str | None) -> RequestParamsMeta:
    meta: RequestParamsMeta = {}
    meta[META_DECISION_ID] = decision_id  # type: ignore[literal-required]  # open map: extra keys allowed
    meta[META_TRIGGER] = trigger  # type: ignore[literal-required]
    if user_id is not None:
        meta[META_USER_ID] = user_id  # type: ignore[literal-required]
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
    ) -> Outcome:
        try:
            result = await self.client.call_tool(name, arguments, meta=_meta(decision_id, trigger, user_id))
        except MCPError as err:
            return Outcome(status=Status.ERROR, reason=Reason.PROTOCOL_ERROR, message=str(err))
        return read_result(result)


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
