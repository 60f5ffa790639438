"""The action layer's commands through the real `mca` CLI."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
from typing import Any

import pytest
from typer.testing import CliRunner

from mca.cli import app
from mca.db import Stores
from mca.services import Role, Services
from mca.settings import Settings
from mca.testing import count
from mcp_tools.commands import decide_hold, serve_stdio
from mcp_tools.guard import CallContext
from mcp_tools.outcome import Outcome
from mcp_tools.runtime import Runtime

AGENT = CallContext(caller="agent", trigger="default", decision_id="cli")


def _env(settings: Settings) -> dict[str, str]:
    return {
        "MCA_STATE_URL": str(settings.state_url),
        "MCA_OPS_URL": str(settings.ops_url),
        "MCA_POLICY_FILE": str(settings.policy_file),
    }


def _run(settings: Settings, *args: str) -> Any:
    result = CliRunner().invoke(app, list(args), env=_env(settings))
    assert result.exit_code == 0, result.output
    return result


async def _act(
    runtime: Runtime, *calls: tuple[str, dict[str, Any]], ctx: CallContext = AGENT
) -> list[Outcome]:
    async with runtime.acquire() as deps:
        return [await deps.service.act(tool, args, ctx) for tool, args in calls]


def _csv_export(settings: Settings) -> list[dict[str, str]]:
    out = _run(settings, "audit", "export", "--since", "2026-11-01", "--format", "csv").stdout
    return list(csv.DictReader(io.StringIO(out)))


# Sync tests: the commands run their own event loop (asyncio.run), as they do from a shell.
def test_approve_reject_and_dispatch(runtime: Runtime, tool_settings: Settings, world: str) -> None:
    held, other = asyncio.run(
        _act(
            runtime,
            ("send_coupon", {"user_id": "u_ok", "asset_id": "A30", "reason": "vip"}),
            ("award_points", {"user_id": "u_ny", "points": 900, "reason": "x"}),
        )
    )
    assert held.status == other.status == "held"
    listed = [json.loads(line) for line in _run(tool_settings, "holds").stdout.splitlines()]
    assert {row["pending_id"] for row in listed} == {held.approval_id, other.approval_id}
    approved = json.loads(_run(tool_settings, "approve", str(held.approval_id), "--by", "alice").stdout)
    assert approved["status"] == "allowed"
    rejected = json.loads(_run(tool_settings, "reject", str(other.approval_id), "--by", "bob").stdout)
    assert rejected["reason"] == "rejected"
    again = CliRunner().invoke(app, ["approve", str(other.approval_id)], env=_env(tool_settings))
    assert again.exit_code != 0
    counts = json.loads(_run(tool_settings, "dispatch", "--once").stdout)
    assert counts["delivered"] == 1
    assert count(world, "outbox", "status = 'delivered'") == 1
    # The audit trail says who released and who refused each hold, on every verdict of that call.
    by_call: dict[str, set[tuple[str, str]]] = {}
    for row in _csv_export(tool_settings):
        by_call.setdefault(row["call_id"], set()).add((row["approved_by"], row["rejected_by"]))
    assert by_call[str(held.call_id)] == {("alice", "")}
    assert by_call[str(other.call_id)] == {("", "bob")}


def test_audit_export_csv_and_jsonl(runtime: Runtime, tool_settings: Settings) -> None:
    asyncio.run(
        _act(
            runtime,
            ("send_coupon", {"user_id": "u_ok", "asset_id": "A10", "reason": "r"}),
            ("send_sms", {"user_id": "u_optout", "text": "hi", "reason": "r"}),
        )
    )
    out = _run(tool_settings, "audit", "export", "--since", "2026-11-01", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["verdict"], r["reasons"]) for r in rows] == [("allow", ""), ("deny", "opted_out")]
    assert rows[0]["caller"] == "agent" and rows[0]["policy_version"]
    lines = _run(tool_settings, "audit", "export", "--since", "2026-11-01").stdout.splitlines()
    assert json.loads(lines[1])["reasons"] == ["opted_out"]
    assert _run(tool_settings, "audit", "export", "--since", "2030-01-01").stdout == ""
    bad = CliRunner().invoke(app, ["audit", "export", "--since", "yesterday-ish"], env=_env(tool_settings))
    assert bad.exit_code != 0


def test_audit_csv_cells_cannot_become_formulas(runtime: Runtime, tool_settings: Settings) -> None:
    """An external caller picks its decision id: a spreadsheet must show it as text, not run it."""
    hostile = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"]
    for decision_id in hostile:
        ctx = CallContext(caller="agent", trigger="default", decision_id=decision_id)
        asyncio.run(
            _act(runtime, ("send_coupon", {"user_id": "u_ok", "asset_id": "A10", "reason": "r"}), ctx=ctx)
        )
    cells = [row["decision_id"] for row in _csv_export(tool_settings)]
    assert cells == ["'" + d for d in hostile]
    jsonl = _run(tool_settings, "audit", "export", "--since", "2026-11-01").stdout.splitlines()
    assert [json.loads(line)["decision_id"] for line in jsonl] == hostile  # JSON is data, kept exact


def test_policy_check_reports_the_line(tmp_path: Any, tool_settings: Settings) -> None:
    broken = tmp_path / "bad.yaml"
    broken.write_text("version: '1'\ncaps:\n  day: lots\n")
    result = CliRunner().invoke(app, ["policy", "check", str(broken)], env=_env(tool_settings))
    assert result.exit_code != 0 and "line 3" in str(result.exception or result.output)


async def test_the_hold_and_stdio_commands_take_their_pools_from_the_container(
    runtime: Runtime, tool_settings: Settings, tool_stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    (held,) = await _act(runtime, ("award_points", {"user_id": "u_ny", "points": 900, "reason": "x"}))
    async with Services(tool_settings, tool_stores) as services:
        outcome = await decide_hold(tool_settings, tool_stores, held.approval_id, "alice", approve=False,
                                    services=services)  # fmt: skip
        assert outcome.reason == "rejected"
        # One server holds both stores: one pool, the container's, still open for the next user.
        assert services.pools_opened == 1
        pool = await services.pool(Role.OPS)
        assert not pool.closed and services.pools_opened == 1
        # `mca mcp --stdio` on a closed stdin: the server enters its lifespan (the tools' pools)
        # and ends at end of input, without opening a pool of its own.
        read, write = os.pipe()
        os.close(write)
        with open(read, encoding="utf-8") as stdin:
            monkeypatch.setattr(sys, "stdin", stdin)
            await serve_stdio(tool_settings, tool_stores, "stdio", services=services)
        assert services.pools_opened == 1 and not pool.closed
