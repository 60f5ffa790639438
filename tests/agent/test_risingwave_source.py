"""The RisingWave subscription-cursor source, against a fake cursor connection.

No RisingWave server runs here, so this checks the source's SQL and its position logic with a
stand-in that behaves as the RisingWave docs describe: `DECLARE … SINCE <ts>` replays changes
from that rw_timestamp (inclusive: rows at the stored timestamp come again), `FETCH n … WITH
(timeout)` returns up to n changes with `op` and `rw_timestamp`. The jobs, cooldowns and
position go to the real ops store.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from psycopg import sql

from agent.sources import RisingWaveSubscription, change_of
from agent.trigger_config import TriggerFile
from agent.trigger_service import TriggerService
from tests.agent.world import QUERIES_DIR, T0

RULES = """
defaults: {cooldown: 0s, user_cooldown: 0s}
rules:
  - {name: big_purchase, event: purchase, when: ["event.value >= 100"], goal: post_purchase}
"""


def change(ts: int, event_id: str, user: str, value: float, op: str = "Insert") -> dict[str, Any]:
    return {"op": op, "rw_timestamp": ts, "event_id": event_id, "user_id": user, "event_type": "purchase",
            "ts": T0 + timedelta(seconds=ts % 1000), "value": value, "points": None, "sku": None,
            "category": None,
            "properties": {}}  # fmt: skip


class FakeCursorConnection:
    """`shape` turns a change into the row FETCH returns (the default: text op, bare names)."""

    def __init__(
        self, log: list[dict[str, Any]], shape: Callable[[dict[str, Any]], dict[str, Any]] = dict
    ) -> None:
        self.log = log
        self.shape = shape
        self.statements: list[str] = []
        self.pending: list[dict[str, Any]] = []
        self.closed = False

    async def run(self, query: sql.Composable | str) -> list[dict[str, Any]]:
        text = query.as_string(None) if isinstance(query, sql.Composable) else query
        self.statements.append(text)
        declared = re.fullmatch(r'DECLARE "(\w+)" SUBSCRIPTION CURSOR FOR "(\w+)" SINCE (\d+|now\(\))', text)
        if declared:
            since = declared.group(3)
            start = (
                max((c["rw_timestamp"] for c in self.log), default=0) + 1 if since == "now()" else int(since)
            )
            self.pending = [c for c in self.log if c["rw_timestamp"] >= start]
            return []
        fetched = re.fullmatch(r"FETCH (\d+) FROM \"(\w+)\" WITH \(timeout = '1s'\)", text)
        assert fetched, text
        n = int(fetched.group(1))
        out, self.pending = self.pending[:n], self.pending[n:]
        return [self.shape(c) for c in out]

    async def close(self) -> None:
        self.closed = True


def service(
    conn: FakeCursorConnection, aconn: Any, ops_conn: Any, clock: Any, tmp_path: Any
) -> TriggerService:
    path = tmp_path / "t.yaml"
    path.write_text(RULES)
    return TriggerService(
        source=RisingWaveSubscription(conn),
        state=aconn,
        ops=ops_conn,
        triggers=TriggerFile(path, queries_dir=QUERIES_DIR),
        clock=clock,
        start="earliest",
        batch_size=2,
    )


async def job_users(ops_conn: Any) -> list[str]:
    cur = await ops_conn.execute("SELECT user_id FROM agent_jobs ORDER BY user_id")
    return [r["user_id"] for r in await cur.fetchall()]


async def test_declare_and_fetch_sql(aconn) -> None:
    source = RisingWaveSubscription(FakeCursorConnection([]))
    assert source.declare_sql(1700000000123).as_string(None) == (
        'DECLARE "mca_trigger_cursor" SUBSCRIPTION CURSOR FOR "events_changes" SINCE 1700000000123'
    )
    assert source.declare_sql(None).as_string(None).endswith("SINCE now()")
    assert (
        source.fetch_sql(100).as_string(None) == "FETCH 100 FROM \"mca_trigger_cursor\" WITH (timeout = '1s')"
    )


async def test_resume_from_stored_rw_timestamp_with_idempotent_replays(
    aconn, ops_conn, clock, tmp_path
) -> None:
    log = [change(10, "e1", "u1", 150), change(20, "e2", "u2", 150), change(20, "e2", "u2", 150, "Delete"),
           change(30, "e3", "u3", 50), change(40, "e4", "u4", 400)]  # fmt: skip
    first = FakeCursorConnection(log[:3])
    svc = service(first, aconn, ops_conn, clock, tmp_path)
    while (await svc.step_stream()).events:
        pass
    assert await job_users(ops_conn) == ["u1", "u2"]
    cur = await ops_conn.execute("SELECT position FROM trigger_positions")
    assert (await cur.fetchone())["position"] == {"rw_timestamp": 20}

    # Restart: a new cursor declared SINCE the stored timestamp; rows at 20 come again.
    second = FakeCursorConnection(log)
    restarted = service(second, aconn, ops_conn, clock, tmp_path)
    while (await restarted.step_stream()).events:
        pass
    assert second.statements[0].endswith("SINCE 20")
    assert await job_users(ops_conn) == ["u1", "u2", "u4"], "replayed e2 made no second job; u3 is below 100"
    cur = await ops_conn.execute("SELECT position FROM trigger_positions")
    assert (await cur.fetchone())["position"] == {"rw_timestamp": 40}


async def test_latest_start_declares_since_now(aconn, ops_conn, clock, tmp_path) -> None:
    conn = FakeCursorConnection([change(10, "e1", "u1", 150)])
    svc = service(conn, aconn, ops_conn, clock, tmp_path)
    svc.start = "latest"
    assert (await svc.step_stream()).jobs == []
    assert conn.statements[0].endswith("SINCE now()")


OP_CODES = {"Insert": 1, "Delete": 2, "UpdateInsert": 3, "UpdateDelete": 4}


def int_ops_qualified(c: dict[str, Any]) -> dict[str, Any]:
    """Older RisingWave: op as int2; table columns qualified with the table name."""
    row = {f"events.{k}": v for k, v in c.items() if k not in ("op", "rw_timestamp")}
    return {**row, "op": OP_CODES[c["op"]], "rw_timestamp": c["rw_timestamp"]}


def positional(c: dict[str, Any]) -> dict[str, Any]:
    """Neither op nor rw_timestamp under a name we know: second-to-last and last columns, as
    the wire delivers them (text)."""
    row = {k: v for k, v in c.items() if k not in ("op", "rw_timestamp")}
    return {**row, "change_op": str(OP_CODES[c["op"]]), "change_ts": str(c["rw_timestamp"])}


@pytest.mark.parametrize("shape", [int_ops_qualified, positional], ids=["int-op-qualified", "by-position"])
async def test_int_ops_and_positional_columns_are_read(aconn, ops_conn, clock, tmp_path, shape) -> None:
    log = [change(10, "e1", "u1", 150), change(20, "e2", "u2", 150, "Delete"),
           change(30, "e3", "u3", 150, "UpdateDelete"), change(30, "e3", "u3", 200, "UpdateInsert"),
           change(40, "e4", "u4", 400)]  # fmt: skip
    conn = FakeCursorConnection(log, shape)
    svc = service(conn, aconn, ops_conn, clock, tmp_path)
    while (await svc.step_stream()).events:
        pass
    assert await job_users(ops_conn) == ["u1", "u3", "u4"], "delete and update-delete make no job"
    cur = await ops_conn.execute("SELECT position FROM trigger_positions")
    assert (await cur.fetchone())["position"] == {"rw_timestamp": 40}


def test_snapshot_rows_without_rw_timestamp_keep_the_position() -> None:
    inserted, stamp, named = change_of({"events.event_id": "e1", "op": "Insert", "rw_timestamp": None})
    assert inserted and stamp is None and named["event_id"] == "e1"
    with pytest.raises(ValueError, match="op and rw_timestamp"):
        change_of({"event_id": "e1"})
