"""The tools through the official MCP client over the in-process transport."""

from __future__ import annotations

from typing import Any

import jsonschema
from mcp import Client
from mcp.server.mcpserver import MCPServer

from mca.testing import count
from mcp_tools import tools
from mcp_tools.contract import ALL_TOOLS, SIDE_EFFECT_TOOLS, Outcome, Status, Tool
from tests.mcp_tools.helpers import call


async def test_lists_the_six_tools_with_docstrings(server: MCPServer[Any]) -> None:
    async with Client(server) as client:
        listed = await client.list_tools()
        names = {t.name for t in listed.tools}
        assert names == {
            "search_assets",
            "get_user_context",
            "send_coupon",
            "send_sms",
            "update_crm",
            "award_points",
        }
        assert names == set(ALL_TOOLS) == set(tools.ALL)
        for tool in listed.tools:
            assert tool.description and len(tool.description) > 40
            assert "ctx" not in tool.input_schema["properties"]


async def test_side_effecting_tools_publish_the_outcome_schema(server: MCPServer[Any], world: str) -> None:
    """tools/list carries the contract's Outcome as outputSchema for every tool that acts, and a
    real answer (allowed, and a structured denial) validates against it and parses back."""
    async with Client(server) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        for name in SIDE_EFFECT_TOOLS:
            schema = listed[name].output_schema
            assert schema is not None, name
            assert {"status", "reason", "message", "outbox_id", "until", "retry_at"} <= set(
                schema["properties"]
            )
            assert set(schema["required"]) == {"status"}
        for name in (Tool.SEARCH_ASSETS, Tool.GET_USER_CONTEXT):
            assert listed[name].output_schema is None, name
        schema = listed[Tool.SEND_COUPON].output_schema
        assert schema is not None
        allowed = await client.call_tool(
            Tool.SEND_COUPON, {"user_id": "u_ok", "asset_id": "A10", "reason": "bought a tent"}
        )
        denied = await client.call_tool(
            Tool.SEND_COUPON, {"user_id": "u_ok", "asset_id": "A60", "reason": "too generous"}
        )
    assert not allowed.is_error and denied.is_error
    for result in (allowed, denied):
        assert result.structured_content is not None
        jsonschema.validate(result.structured_content, schema)
        outcome = Outcome.model_validate(result.structured_content)
        assert outcome.to_dict() == result.structured_content
    assert Outcome.model_validate(allowed.structured_content).status is Status.ALLOWED
    refused = Outcome.model_validate(denied.structured_content)
    assert refused.status is Status.DENIED and refused.reason == "coupon_value_ceiling"


async def test_send_coupon_allowed_writes_call_reservation_and_outbox(
    server: MCPServer[Any], world: str
) -> None:
    async with Client(server) as client:
        is_error, data = await call(
            client, "send_coupon", {"user_id": "u_ok", "asset_id": "A10", "reason": "bought a tent"}
        )
        assert not is_error, data
        assert data["status"] == "allowed" and data["outbox_id"] > 0
        assert count(world, "tool_calls") == 1
        assert count(world, "outbox", "status = 'pending' AND kind = 'coupon'") == 1
        assert count(world, "budget_ledger", "kind = 'reserve'") >= 1
        assert count(world, "audit_log", "verdict = 'allow' AND caller = 'agent'") == 1


async def test_retry_with_same_decision_replays_and_sends_nothing_new(
    server: MCPServer[Any], world: str
) -> None:
    async with Client(server) as client:
        args = {"user_id": "u_ok", "asset_id": "A10", "reason": "bought a tent"}
        _, first = await call(client, "send_coupon", args, decision="dec-7")
        _, second = await call(client, "send_coupon", args, decision="dec-7")
        assert second["replayed"] is True and second["outbox_id"] == first["outbox_id"]
        assert count(world, "outbox") == 1 and count(world, "tool_calls") == 1


async def test_get_user_context_returns_the_document(server: MCPServer[Any]) -> None:
    async with Client(server) as client:
        is_error, data = await call(client, "get_user_context", {"user_id": "u_ok"})
        assert not is_error
        assert data["context"]["user_id"] == "u_ok"
        assert data["context"]["profile"]["reachable"]["sms"] is True


async def test_unknown_user_is_an_error_result_and_writes_nothing(server: MCPServer[Any], world: str) -> None:
    async with Client(server) as client:
        is_error, data = await call(client, "send_sms", {"user_id": "nobody", "text": "hi", "reason": "r"})
        assert is_error and data["status"] == "error" and data["reason"] == "unknown_user"
        assert count(world, "tool_calls") == 0 and count(world, "audit_log") == 0


async def test_malformed_arguments_are_error_results(server: MCPServer[Any], world: str) -> None:
    async with Client(server) as client:
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("send_coupon", {"user_id": "u_ok", "asset_id": "NOPE", "reason": "r"}, "unknown_asset"),
            ("send_coupon", {"user_id": "u_ok", "asset_id": "A_OFF", "reason": "r"}, "asset_inactive"),
            ("send_coupon", {"user_id": "u_ok", "asset_id": "A_OLD", "reason": "r"}, "asset_expired"),
            ("send_sms", {"user_id": "u_ok", "text": "x" * 5000, "reason": "r"}, "text_too_long"),
            ("send_sms", {"user_id": "u_ok", "text": "  ", "reason": "r"}, "invalid_argument"),
            ("award_points", {"user_id": "u_ok", "points": -5, "reason": "r"}, "invalid_argument"),
            ("update_crm", {"user_id": "u_ok", "fields": {}, "reason": "r"}, "invalid_argument"),
            ("send_coupon", {"user_id": "u_ok", "asset_id": "A10", "reason": ""}, "invalid_argument"),
        ]
        for tool, args, reason in cases:
            is_error, data = await call(client, tool, args)
            assert is_error and data["reason"] == reason, (tool, args, data)
        # Wrong types are refused by the schema before the tool runs.
        result = await client.call_tool("award_points", {"user_id": "u_ok", "points": "many", "reason": "r"})
        assert result.is_error
        assert count(world, "tool_calls") == 0 and count(world, "outbox") == 0
