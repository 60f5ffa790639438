"""Kill switch and shadow mode in the ops database: a command and an API call, audited, obeyed by
every process at its next call (the guard and the dispatcher read the table every time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import httpx
import psycopg
from mcp import Client
from mcp.server.mcpserver import MCPServer

from mca.app import create_app
from mca.db import Stores
from mca.settings import PROJECT_ROOT, Settings
from mca.testing import count
from mca.testing.http import serve_in_thread
from mcp_tools import web
from mcp_tools.commands import make_dispatcher
from mcp_tools.guard import CallContext
from mcp_tools.runtime import Runtime
from tests.mcp_tools.helpers import call

COUPON = {"user_id": "u_ok", "asset_id": "A10", "reason": "thanks"}


def mca(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """`mca` in its own process, as an operator runs it from a shell."""
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "MCA_STATE_URL": str(settings.state_url),
        "MCA_OPS_URL": str(settings.ops_url),
        "MCA_POLICY_FILE": str(settings.policy_file),
    }
    return subprocess.run(
        [sys.executable, "-m", "mca", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_switch_command_takes_effect_in_a_running_server_at_once(
    server: MCPServer[Any], tool_settings: Settings, world: str
) -> None:
    async with Client(server) as client:
        before = await call(client, "send_coupon", COUPON, decision="before")
        flipped = mca(tool_settings, "switch", "kill", "on", "--by", "alice", "--reason", "incident 42")
        assert flipped.returncode == 0, flipped.stderr
        during = await call(client, "send_coupon", COUPON, decision="during")
        status = mca(tool_settings, "switch", "status")
        mca(tool_settings, "switch", "kill", "off", "--by", "alice", "--reason", "resolved")
        after = await call(client, "send_coupon", COUPON, decision="after")
    assert before[1]["status"] == "allowed"
    assert during[0] and during[1]["reason"] == "kill_switch"
    assert after[1]["status"] == "allowed"
    rows = {r["switch"]: r for r in map(json.loads, status.stdout.splitlines())}
    assert (
        rows["kill"]["on"] is True and rows["kill"]["source"] == "ops" and rows["kill"]["set_by"] == "alice"
    )
    assert rows["shadow"] == {**rows["shadow"], "on": False, "source": "policy"}
    assert count(world, "audit_log", "tool = 'switch:kill' AND caller = 'alice'") == 2
    assert (
        count(world, "audit_log", "tool = 'switch:kill' AND verdict = 'on' AND message = 'incident 42'") == 1
    )


def test_switch_command_refuses_bad_input_and_changes_nothing(tool_settings: Settings, world: str) -> None:
    bad = mca(tool_settings, "switch", "kill", "maybe", "--reason", "x")
    empty = mca(tool_settings, "switch", "shadow", "on", "--reason", "  ")
    assert bad.returncode != 0 and "on or off" in bad.stderr
    assert empty.returncode != 0 and "reason" in empty.stderr
    assert count(world, "switches") == 0 and count(world, "audit_log") == 0


async def test_shadow_over_http_needs_an_admin_key_and_is_audited(
    tool_settings: Settings, tool_stores: Stores, server: MCPServer[Any], world: str
) -> None:
    settings = tool_settings.model_copy(update={"api_keys": {"k-admin": ["admin"], "k-read": ["read"]}})
    app = create_app(settings, tool_stores, extensions=[web.extension(settings, tool_stores)])
    change = {"on": True, "reason": "dry run of the new prompt", "by": "carol"}
    with serve_in_thread(app) as port:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            anonymous = await http.put("/switches/shadow", json=change)
            reader = await http.put(
                "/switches/shadow", json=change, headers={"Authorization": "Bearer k-read"}
            )
            admin = {"Authorization": "Bearer k-admin"}
            invalid = await http.put("/switches/shadow", json={"on": True, "reason": ""}, headers=admin)
            unknown = await http.put("/switches/everything", json=change, headers=admin)
            assert count(world, "switches") == 0
            flipped = await http.put("/switches/shadow", json=change, headers=admin)
            listed = await http.get("/switches", headers=admin)
            async with Client(server) as client:
                shadowed = await call(client, "send_coupon", COUPON, decision="shadowed")
    assert (anonymous.status_code, reader.status_code) == (401, 403)
    assert invalid.status_code == 422 and unknown.status_code == 422
    assert flipped.status_code == 200 and flipped.json()["on"] is True
    assert flipped.json()["set_by"].startswith("carol (key#")
    states = {s["switch"]: s for s in listed.json()["switches"]}
    assert states["shadow"]["on"] is True and states["kill"]["source"] == "policy"
    assert shadowed[1]["status"] == "shadow"
    assert count(world, "outbox", "status = 'shadow'") == 1
    assert count(world, "audit_log", "tool = 'switch:shadow' AND caller LIKE 'carol (key#%'") == 1


async def test_dispatcher_obeys_the_stored_kill_switch(
    runtime: Runtime, tool_settings: Settings, world: str
) -> None:
    async with runtime.acquire() as deps, httpx.AsyncClient() as http:
        sent = await deps.service.act("send_coupon", COUPON, CallContext("agent", "default", "d-dispatch"))
        assert sent.status == "allowed"
        dispatcher = make_dispatcher(tool_settings, deps.service, http)
        with psycopg.connect(world, autocommit=True) as conn:
            conn.execute("INSERT INTO switches VALUES ('kill', true, 'test', 'hold everything', now())")
        assert await dispatcher.run_once() == {}
        with psycopg.connect(world, autocommit=True) as conn:
            conn.execute("UPDATE switches SET enabled = false WHERE name = 'kill'")
        assert await dispatcher.run_once() == {"delivered": 1}
