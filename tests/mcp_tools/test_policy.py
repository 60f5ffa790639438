"""Policy parsing and hot reload: invalid edits are rejected with their line, the old policy stays."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from mca.settings import PROJECT_ROOT
from mcp_tools.errors import PolicyError
from mcp_tools.policy import PolicyStore, load_policy, parse_policy
from tests.mcp_tools.helpers import call


def test_default_policy_has_the_issue_seeds() -> None:
    policy = load_policy(PROJECT_ROOT / "config" / "policy.yaml")
    assert (policy.caps.day, policy.caps.week, policy.caps.month) == (2, 10, 30)
    assert policy.channel("sms").caps.day == 1 and policy.channel("sms").min_gap_hours == 8
    assert policy.channel("sms").quiet_hours is not None
    assert policy.version_id.startswith(policy.version + "#")


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy("version: '1'\ncaps:\n  day: [1\n")
    assert err.value.line is not None and err.value.line >= 3


def test_schema_error_names_the_line_and_field() -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy("version: '1'\nkill_switch: false\ncaps:\n  day: -1\n")
    assert err.value.line == 4 and "caps.day" in str(err.value)
    with pytest.raises(PolicyError) as err:
        parse_policy("version: '1'\ntriggers:\n  x:\n    tools: [send_money]\n")
    assert "send_money" in str(err.value) and err.value.line == 4
    with pytest.raises(PolicyError, match="unknown time zone"):
        parse_policy("timezone: Mars/Olympus\n")


def _rewrite(path: Path, text: str) -> None:
    path.write_text(text)
    st = path.stat()
    # Make the change visible even on file systems with coarse mtimes.
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


def test_store_reloads_on_change_and_keeps_old_policy_on_invalid_edit(policy_path: Path) -> None:
    store = PolicyStore(policy_path)
    first = store.current()
    _rewrite(policy_path, policy_path.read_text().replace("kill_switch: false", "kill_switch: true"))
    second = store.current()
    assert second.kill_switch and second.version_id != first.version_id
    _rewrite(policy_path, policy_path.read_text().replace("kill_switch: true", "kill_switch: maybe-ish"))
    assert store.current() is second
    assert store.last_error is not None and store.last_error.line is not None
    _rewrite(policy_path, policy_path.read_text().replace("kill_switch: maybe-ish", "kill_switch: false"))
    assert not store.current().kill_switch and store.last_error is None


async def test_hot_reload_takes_effect_without_restart(server: MCPServer[Any], policy_path: Path) -> None:
    coupon = {"user_id": "u_ok", "asset_id": "A10", "reason": "r"}
    async with Client(server) as client:
        assert (await call(client, "send_coupon", coupon, decision="x1"))[1]["status"] == "allowed"
        _rewrite(policy_path, policy_path.read_text().replace("kill_switch: false", "kill_switch: true"))
        _, data = await call(client, "send_coupon", coupon, decision="x2")
        assert data["reason"] == "kill_switch"
        _rewrite(policy_path, policy_path.read_text() + "\n  oops: [\n")
        _, data = await call(client, "send_coupon", coupon, decision="x3")
        assert data["reason"] == "kill_switch"  # the broken edit did not replace the policy in force


def test_tool_names_come_from_the_contract() -> None:
    """A trigger's or a caller's tools must be tools of the contract; the error names them all."""
    from mcp_tools.contract import ALL_TOOLS

    policy = parse_policy("callers:\n  desk:\n    tools: [search_assets, award_points]\n")
    assert policy.callers["desk"].tools == ["search_assets", "award_points"]
    for section in ("triggers:\n  t", "callers:\n  c"):
        with pytest.raises(PolicyError) as err:
            parse_policy(f"{section}:\n    tools: [send_fax]\n")
        assert "unknown tools ['send_fax']" in str(err.value) and err.value.line == 3
        assert all(str(t) in str(err.value) for t in ALL_TOOLS)
