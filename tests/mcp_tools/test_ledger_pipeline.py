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


SMS = {"user_id": "u_ok", "text": "Your tent is ready for pickup.", "reason": "order"}


async def test_the_first_failing_contact_check_refuses(server: MCPServer[Any], world: str) -> None:
    """mca_allow (sql/ops/263) runs the suppression, the contact caps and the minimum gaps in one
    statement; when several of them fail, the refusal is still the first in the order given
    (suppression, caps, gaps), and a refused call moves no counter."""
    async with Client(server) as client:
        first = await call(client, "send_sms", SMS, decision="first")
        # The SMS day cap (1) and the 8 h minimum gap both fail: the cap comes first.
        capped = await call(client, "send_sms", SMS, decision="capped")
        with connect(world, autocommit=True) as conn:
            conn.execute("INSERT INTO suppressions VALUES ('u_ok', 'sms', 'STOP received', 'twilio', now())")
        # Suppressed as well: the suppression comes before both.
        suppressed = await call(client, "send_sms", SMS, decision="suppressed")
    assert first[1]["status"] == "allowed", first
    assert capped[1]["reason"] == "channel_cap_day", capped
    assert suppressed[1]["reason"] == "suppressed", suppressed
    with connect(world) as conn:
        sent = conn.execute(
            "SELECT channel, sum(sent) AS sent FROM contact_counters "
            "WHERE user_id = 'u_ok' AND period = 'day' GROUP BY channel ORDER BY channel"
        ).fetchall()
    assert [(r["channel"], r["sent"]) for r in sent] == [("*", 1), ("sms", 1)]
