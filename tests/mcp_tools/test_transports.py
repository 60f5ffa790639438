"""The same server over streamable HTTP (bearer auth, caller attribution) and over stdio."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from mca.app import create_app
from mca.db import Stores
from mca.settings import PROJECT_ROOT, Settings
from mca.testing import count
from mca.testing.http import serve_in_thread
from mcp_tools import web
from tests.mcp_tools.helpers import meta

COUPON = {"user_id": "u_ok", "asset_id": "A10", "reason": "thanks"}


@contextmanager
def serving(settings: Settings, stores: Stores) -> Iterator[str]:
    app = create_app(settings, stores, extensions=[web.extension(settings, stores)])
    with serve_in_thread(app) as port:
        yield f"http://127.0.0.1:{port}/mcp"


def _client(url: str, token: str) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return Client(streamable_http_client(url, http_client=http))


async def test_http_without_or_with_a_wrong_token_is_401(
    tool_settings: Settings, tool_stores: Stores
) -> None:
    with serving(tool_settings, tool_stores) as url:
        async with httpx.AsyncClient() as http:
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
            assert (await http.post(url, json=body)).status_code == 401
            wrong = await http.post(url, json=body, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Bearer")


async def test_http_calls_are_attributed_to_the_token_caller(
    tool_settings: Settings, tool_stores: Stores, world: str
) -> None:
    with serving(tool_settings, tool_stores) as url:
        async with _client(url, "tok-agent") as agent:
            tools = await agent.list_tools()
            assert len(tools.tools) == 6
            result = await agent.call_tool(
                "send_coupon", COUPON, meta=meta(decision_id="http-1", trigger="default")
            )
            assert not result.is_error and result.structured_content["status"] == "allowed"
        async with _client(url, "tok-ext") as external:
            # The external assistant may read...
            ok = await external.call_tool("get_user_context", {"user_id": "u_ok"})
            assert not ok.is_error
            # ...but sending meta that names a generous trigger does not let it act.
            denied = await external.call_tool(
                "send_coupon", COUPON, meta=meta(trigger="default", decision_id="x")
            )
            assert denied.is_error and denied.structured_content["reason"] == "tool_not_allowed"
    assert count(world, "audit_log", "caller = 'agent' AND verdict = 'allow'") == 1
    assert (
        count(world, "audit_log", "caller = 'assistant' AND trigger_name = 'external' AND verdict = 'deny'")
        == 1
    )


async def test_stdio_subprocess_with_the_official_client(tool_settings: Settings, world: str) -> None:
    env = {
        **os.environ,
        "MCA_STATE_URL": world,
        "MCA_OPS_URL": world,
        "MCA_POLICY_FILE": str(tool_settings.policy_file),
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "mca", "mcp", "--stdio", "--caller", "agent"],
        env=env,
        cwd=str(PROJECT_ROOT),
    )
    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "send_sms" in names
        result = await client.call_tool("send_coupon", COUPON, meta=meta(decision_id="stdio-1"))
        assert not result.is_error, result
        data: dict[str, Any] = result.structured_content or json.loads(result.content[0].text)  # type: ignore[union-attr]
        assert data["status"] == "allowed"
    assert count(world, "audit_log", "caller = 'agent'") == 1
