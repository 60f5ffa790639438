"""Sharded budgets: racing callers in two processes get exactly what the budget admits, and a
shard out of quota takes headroom from the others without ever letting the total pass the limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from mca.settings import PROJECT_ROOT
from mca.testing import count
from mcp_tools.draws import SHARED_SHARDS
from tests.mcp_tools.helpers import COUPON, call

CHILD = Path(__file__).with_name("race_child.py")
LOOSE_CAPS = {"day": 1000, "week": 1000, "month": 1000}


def _race_two_processes(world: str, policy_path: Path, per_process: int) -> Counter[str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    children = [
        subprocess.Popen(
            [sys.executable, str(CHILD), world, str(policy_path), tag, str(per_process)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for tag in ("a", "b")
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results: Counter[str] = Counter()
        for child in children:
            out, _ = child.communicate(timeout=120)
            assert child.returncode == 0
            results.update(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()


@pytest.mark.parametrize(("limit", "admitted"), [(100, 10), (95, 9)])
def test_two_processes_racing_get_exactly_what_the_budget_admits(
    world: str, policy_path: Path, set_policy: Callable[..., None], limit: int, admitted: int
) -> None:
    set_policy(
        caps=LOOSE_CAPS, budgets={"global": {"day": limit, "month": 10000}, "per_user": {"month": 100000}}
    )
    results = _race_two_processes(world, policy_path, 30)
    assert results == Counter({"allowed:None": admitted, "denied:budget_global_day": 60 - admitted})
    with psycopg.connect(world) as conn:
        total = conn.execute(
            "SELECT spent, limit_amount, shards FROM budget_totals WHERE scope = 'global:day'"
        ).fetchone()
        over = conn.execute("SELECT count(*) FROM budget_counters WHERE spent > quota").fetchone()
        quotas = conn.execute(
            "SELECT scope, sum(quota) = max(limit_amount) FROM budget_counters GROUP BY scope, period_key"
        ).fetchall()
    assert total == (admitted * 10, limit, SHARED_SHARDS) and over == (0,)
    assert all(exact for _, exact in quotas), quotas
    assert count(world, "budget_ledger", "scope = 'global:day'") == admitted
    assert count(world, "outbox") == admitted


def _reserve(url: str, amount: Decimal) -> bool:
    with psycopg.connect(url) as conn:
        try:
            conn.execute("SELECT mca_reserve('global:day', 'k', 7, %s, 8, 0, now())", (amount,))
        except psycopg.Error as err:
            assert err.sqlstate == "MCA02" and err.diag.message_detail == "0"
            return False
        conn.commit()
        return True


def test_rebalancing_shards_never_pass_the_limit(db_url: str) -> None:
    """A limit of 7 over 8 shards leaves every other shard less than one unit after the first
    reservation, so nearly every one of them has to take headroom from the others."""
    with ThreadPoolExecutor(8) as pool:
        allowed = list(pool.map(lambda _: _reserve(db_url, Decimal(1)), range(24)))
    assert sum(allowed) == 7
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT sum(spent), sum(quota), count(*), count(*) FILTER (WHERE spent > quota) "
            "FROM budget_counters WHERE scope = 'global:day'"
        ).fetchone()
    assert row == (7, 7, 8, 0)


def test_a_lowered_limit_is_honoured_at_once(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SELECT mca_reserve('trigger:t:day', 'k', 10, 4, 8, 0, now())")
        with pytest.raises(psycopg.Error) as refused:
            conn.execute("SELECT mca_reserve('trigger:t:day', 'k', 5, 2, 8, 3, now())")
        assert refused.value.sqlstate == "MCA02" and refused.value.diag.message_detail == "3"
        conn.execute("SELECT mca_reserve('trigger:t:day', 'k', 5, 1, 8, 0, now())")
        row = conn.execute(
            "SELECT spent, limit_amount FROM budget_totals WHERE scope = 'trigger:t:day'"
        ).fetchone()
    assert row == (5, 5)


async def test_budgets_of_a_call_are_one_statement_once_their_rows_exist(
    server: MCPServer[Any], world: str, set_policy: Callable[..., None]
) -> None:
    """mca_allow (sql/ops/262) reserves every budget at once when each has a shard with room, and
    one by one otherwise. The one-statement attempt runs in a subtransaction, so its ledger rows
    carry another transaction id than their call's row: the first call of a period (its rows do
    not exist yet) goes one by one, the next ones at once, and both book the same amounts."""
    set_policy(caps=LOOSE_CAPS)
    async with Client(server) as client:
        answers = [await call(client, "send_coupon", COUPON, decision=f"d-{i}") for i in range(3)]
    assert [data["status"] for _, data in answers] == ["allowed"] * 3
    with psycopg.connect(world) as conn:
        rows = conn.execute(
            "SELECT c.call_id, count(*) AS budgets, bool_and(l.xmin = c.xmin) AS one_by_one, "
            "sum(l.amount) AS amount FROM tool_calls c JOIN budget_ledger l USING (call_id) "
            "GROUP BY c.call_id ORDER BY c.call_id"
        ).fetchall()
        spent = conn.execute(
            "SELECT scope, sum(spent) FROM budget_counters GROUP BY scope ORDER BY scope"
        ).fetchall()
        booked = conn.execute(
            "SELECT scope, sum(amount) FROM budget_ledger GROUP BY scope ORDER BY scope"
        ).fetchall()
    assert [one_by_one for _, _, one_by_one, _ in rows] == [True, False, False]
    assert len({(n, amount) for _, n, _, amount in rows}) == 1 and rows[0][1] > 1
    assert spent == booked
