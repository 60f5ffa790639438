"""A refused allow attempt leaves no psycopg warning behind (it used to log one per refusal)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from tests.mcp_tools.helpers import call

COUPON = {"user_id": "u_ok", "asset_id": "A10", "reason": "thanks"}


async def test_refusals_and_replays_log_no_pipeline_warning(
    server: MCPServer[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="psycopg")
    async with Client(server) as client:
        allowed = [await call(client, "send_coupon", COUPON, decision=f"ok-{i}") for i in range(2)]
        # The day cap (2) refuses in the middle of the pipelined batch: statements follow it.
        refused = [await call(client, "send_coupon", COUPON, decision=f"capped-{i}") for i in range(3)]
        # A retry fails its first statement (the idempotency key) and replays the stored answer.
        replay = await call(client, "send_coupon", COUPON, decision="ok-0")
    assert [d["status"] for _, d in allowed] == ["allowed", "allowed"]
    assert [d["reason"] for _, d in refused] == ["freq_cap_day"] * 3
    assert replay[1]["replayed"] is True and replay[1]["status"] == "allowed"
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")]
    assert warnings == []
