"""Fixtures for the action layer: a small world of customers and assets in a fresh database,
a policy file the test may rewrite, a frozen clock, and the real MCP client in-process."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest
import yaml
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import RequestParamsMeta

from mca.clock import FrozenClock
from mca.db import Stores
from mca.settings import PROJECT_ROOT, Settings
from mcp_tools.runtime import Runtime
from mcp_tools.server import build_server

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # a Monday

USERS: dict[str, dict[str, Any]] = {
    "u_ok": {
        "first_name": "Ana",
        "phone": "+15550000001",
        "email": "ana@example.com",
        "timezone": "UTC",
        "consent_sms": True,
        "consent_email": True,
        "consent_push": True,
    },
    "u_ny": {
        "first_name": "Ben",
        "phone": "+15550000002",
        "email": "ben@example.com",
        "timezone": "America/New_York",
        "consent_sms": True,
        "consent_email": True,
    },
    "u_tokyo": {
        "first_name": "Chi",
        "phone": "+815550000003",
        "email": "chi@example.com",
        "timezone": "Asia/Tokyo",
        "consent_sms": True,
        "consent_email": True,
    },
    "u_optout": {
        "phone": "+15550000004",
        "email": "d@example.com",
        "consent_sms": False,
        "consent_email": False,
    },
    "u_dnc": {
        "phone": "+15550000005",
        "email": "e@example.com",
        "consent_sms": True,
        "consent_email": True,
        "do_not_contact": True,
    },
    "u_noconsent": {"phone": "+15550000006", "email": "f@example.com"},
    "u_nophone": {"email": "g@example.com", "consent_sms": True, "consent_email": True},
}

ASSETS = [
    ("A10", "coupon", "10 off camping gear", 10, True, None),
    ("A20", "coupon", "20 off boots", 20, True, None),
    ("A30", "coupon", "30 off tents", 30, True, None),
    ("A60", "coupon", "60 off anything", 60, True, None),
    ("A_OFF", "coupon", "retired coupon", 5, False, None),
    ("A_OLD", "coupon", "expired coupon", 5, True, datetime(2026, 1, 1, tzinfo=UTC)),
]


def seed_world(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for user_id, traits in USERS.items():
            conn.execute(
                "INSERT INTO events (event_id, user_id, event_type, ts, properties) "
                "VALUES (%s, %s, 'identify', %s, %s)",
                (f"id-{user_id}", user_id, datetime(2026, 1, 1, tzinfo=UTC), json.dumps(traits)),
            )
        for asset_id, kind, title, value, active, until in ASSETS:
            conn.execute(
                "INSERT INTO assets (asset_id, kind, title, description, value, currency, category, tags, "
                "active, "
                "valid_until, updated_at) VALUES (%s, %s, %s, %s, %s, 'USD', 'outdoor', %s, %s, %s, now())",
                (asset_id, kind, title, title, value, ["test"], active, until),
            )


@pytest.fixture
def world(db_url: str) -> str:
    seed_world(db_url)
    return db_url


@pytest.fixture
def policy_path(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    shutil.copy(PROJECT_ROOT / "config" / "policy.yaml", path)
    return path


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


@pytest.fixture
def set_policy(policy_path: Path) -> Callable[..., None]:
    """Rewrite the test's policy file: the default policy with `overrides` merged in."""
    base = yaml.safe_load((PROJECT_ROOT / "config" / "policy.yaml").read_text())

    def write(**overrides: Any) -> None:
        policy_path.write_text(yaml.safe_dump(_merge(base, overrides)))

    return write


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOON)


@pytest.fixture
def tool_settings(world: str, policy_path: Path, tmp_path: Path) -> Settings:
    return Settings(
        state_url=world,
        ops_url=world,
        data_dir=tmp_path / "data",
        policy_file=policy_path,
        mcp_tokens={"tok-agent": "agent", "tok-ext": "assistant"},
    )


@pytest.fixture
def tool_stores(world: str) -> Stores:
    return Stores(state_url=world, ops_url=world)


@pytest.fixture
def server(tool_settings: Settings, tool_stores: Stores, clock: FrozenClock) -> MCPServer[Any]:
    """The server; tests connect with `async with Client(server) as client` inside the test body
    (anyio task groups must be entered and left in the same task)."""
    return build_server(tool_settings, tool_stores, clock=clock, pool_size=20)


@pytest.fixture
def runtime(tool_settings: Settings, tool_stores: Stores, clock: FrozenClock) -> Runtime:
    """The service without MCP, for the scheduler, approvals and benchmarks-like tests."""
    return Runtime(tool_settings, tool_stores, clock, pool_size=20)


def meta(**items: str) -> RequestParamsMeta:
    """Request meta with mca's keys: meta(decision_id="d1", trigger="default")."""
    return cast(RequestParamsMeta, {f"mca.{k}": v for k, v in items.items()})


async def call(
    client: Client,
    tool: str,
    args: dict[str, Any],
    *,
    decision: str | None = "d1",
    trigger: str | None = "default",
) -> tuple[bool, dict[str, Any]]:
    """Call a tool as the agent; returns (is_error, structured content)."""
    items = {"decision_id": decision, "trigger": trigger}
    result = await client.call_tool(
        tool, args, meta=meta(**{k: v for k, v in items.items() if v is not None})
    )
    data = result.structured_content
    if data is None:
        data = json.loads(result.content[0].text)  # type: ignore[union-attr]
    return result.is_error, data


def count(url: str, table: str, where: str = "TRUE") -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()
        assert row is not None
        return int(row[0])
