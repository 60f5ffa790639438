"""Fixtures for the action layer: a small world of customers and assets in a fresh database,
a policy file the test may rewrite, a frozen clock, and the real MCP client in-process.

The world, `call` and `meta` live in tests/mcp_tools/helpers.py."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from mcp.server.mcpserver import MCPServer

from mca.db import Stores
from mca.settings import PROJECT_ROOT, Settings
from mca.testing import FrozenClock
from mcp_tools.runtime import Runtime
from mcp_tools.server import build_server
from tests.mcp_tools.helpers import NOON, merge, seed_world


@pytest.fixture
def world(db_url: str) -> str:
    seed_world(db_url)
    return db_url


@pytest.fixture
def policy_path(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    shutil.copy(PROJECT_ROOT / "config" / "policy.yaml", path)
    return path


@pytest.fixture
def set_policy(policy_path: Path) -> Callable[..., None]:
    """Rewrite the test's policy file: the default policy with `overrides` merged in."""
    base = yaml.safe_load((PROJECT_ROOT / "config" / "policy.yaml").read_text())

    def write(**overrides: Any) -> None:
        policy_path.write_text(yaml.safe_dump(merge(base, overrides)))

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
