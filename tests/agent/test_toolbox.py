"""The agent reads every tool answer as the contract's Outcome, through the real MCP client."""

from __future__ import annotations

import json

from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent

from agent.toolbox import Toolbox
from mcp_tools.contract import Outcome, Reason, Status


def _server() -> MCPServer[None]:
    """A stand-in tool server (no stores): answers in and out of the contract's shape."""
    server: MCPServer[None] = MCPServer("stand-in")

    def answer(data: dict[str, object], error: bool) -> CallToolResult:
        text = json.dumps(data)
        return CallToolResult(
            content=[TextContent(type="text", text=text)], structured_content=data, is_error=error
        )

    async def held(user_id: str) -> CallToolResult:
        return answer(
            {"status": "held", "reason": "approval_required", "message": "m", "approval_id": 4}, False
        )

    async def found(query: str) -> CallToolResult:
        return answer({"status": "ok", "assets": [{"asset_id": "A1", "value": None}]}, False)

    async def invented(user_id: str) -> CallToolResult:
        return answer({"status": "sent", "reason": None, "message": ""}, False)

    server.add_tool(held, structured_output=False)
    server.add_tool(found, structured_output=False)
    server.add_tool(invented, structured_output=False)
    return server


async def test_answers_parse_into_the_outcome_and_keep_the_server_wording() -> None:
    async with Client(_server()) as client:
        box = Toolbox(client)
        kw = {"decision_id": "d1", "trigger": "default", "user_id": "u1"}
        held = await box.call("held", {"user_id": "u1"}, **kw)
        found = await box.call("found", {"query": "tent"}, **kw)
        invented = await box.call("invented", {"user_id": "u1"}, **kw)
        unknown = await box.call("no_such_tool", {}, **kw)
        bad_args = await box.call("held", {}, **kw)  # user_id missing
    assert isinstance(held, Outcome) and held.status is Status.HELD and held.accepted
    assert held.to_dict() == {
        "status": "held",
        "reason": "approval_required",
        "message": "m",
        "approval_id": 4,
    }
    # A read's data rides along unchanged: the model reads exactly what the server said.
    assert found.status is Status.OK and found.to_dict() == {
        "status": "ok",
        "assets": [{"asset_id": "A1", "value": None}],
    }
    # A status outside the contract is never taken for an action.
    assert invented.status is Status.ERROR and invented.reason == Reason.PROTOCOL_ERROR
    assert "unreadable tool result" in invented.message and not invented.accepted
    assert unknown.is_error and unknown.reason == Reason.UNKNOWN_TOOL
    assert bad_args.is_error and bad_args.reason == Reason.INVALID_ARGUMENTS
