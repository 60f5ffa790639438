"""A refused allow attempt leaves no psycopg warning behind (it used to log one per refusal)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from mca.db import connect
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


def test_allow_function_draws_ids_from_the_identity_sequences(world: str) -> None:
    """mca_allow (sql/ops/262) names the sequences of tool_calls.call_id and outbox.outbox_id:
    they must be the ones the identity columns use, or its ids would collide with theirs."""
    with connect(world, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_get_serial_sequence('tool_calls', 'call_id') AS calls, "
            "pg_get_serial_sequence('outbox', 'outbox_id') AS boxes, "
            "pg_get_functiondef('mca_allow(jsonb, jsonb)'::regprocedure) AS body"
        ).fetchone()
    assert row is not None
    assert row["calls"] == "public.tool_calls_call_id_seq" and row["boxes"] == "public.outbox_outbox_id_seq"
    for sequence in ("tool_calls_call_id_seq", "outbox_outbox_id_seq"):
        assert f"'{sequence}'::regclass" in row["body"]
