"""Delivered and withheld actions reach the event stream through the real direct transport, once:
the live views then show mca's touch, and a second sweep stores nothing new."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ingest.direct import open_direct
from mca.db import open_pool
from mcp_tools.announce import announce

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


JOB = (
    "INSERT INTO agent_jobs (job_id, dedup_key, trigger_name, user_id, goal, tools, run_after, deadline, "
    "decision_id, created_at, experiment_group, experiment) VALUES (%(j)s, %(j)s, 'churn_risk', %(u)s, "
    "'retention', ARRAY['send_coupon'], %(t)s, %(t)s, %(d)s, %(t)s, %(g)s, 's')"
)
CALL = (
    "INSERT INTO tool_calls (idem_key, decision_id, caller, trigger_name, tool, user_id, arguments, "
    "verdict, status, result, policy_version, created_at, updated_at) VALUES (%(k)s, %(d)s, 'agent', "
    "'churn_risk', 'send_coupon', %(u)s, '{}', 'allow', 'allowed', '{}', 'v1', %(t)s, %(t)s) "
    "RETURNING call_id"
)
OUTBOX = (
    "INSERT INTO outbox (call_id, idem_key, kind, user_id, payload, status, next_attempt_at, created_at, "
    "updated_at, delivered_at, provider) VALUES (%(c)s, %(k)s, 'coupon', %(u)s, %(p)s, %(s)s, %(t)s, "
    "%(t)s, %(t)s, %(dt)s, %(prov)s)"
)


def _seed(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for n, (group, status) in enumerate((("treatment", "delivered"), ("control", "shadow"))):
            ids = {"u": f"u{n}", "d": f"d{n}", "k": f"d{n}:1", "t": AT}
            conn.execute(JOB, {**ids, "j": f"j{n}", "g": group})
            row = conn.execute(CALL, ids).fetchone()
            assert row is not None
            payload = {"asset_id": "CPN-10", "channel": "email", "value": "10", "coupon_code": f"MCA-{n}"}
            delivered = status == "delivered"
            conn.execute(
                OUTBOX,
                {
                    **ids,
                    "c": row[0],
                    "p": json.dumps(payload),
                    "s": status,
                    "dt": AT if delivered else None,
                    "prov": "log" if delivered else None,
                },
            )


async def test_actions_are_announced_once_and_show_in_the_live_views(db_url: str) -> None:
    _seed(db_url)
    pool = await open_pool(db_url, max_size=2)
    try:
        sink = await open_direct(pool, db_url)
        await sink.start()
        try:
            assert await announce(pool, sink, AT) == 2
            assert await announce(pool, sink, AT) == 0  # marked: nothing left to announce
        finally:
            await sink.close()
    finally:
        await pool.close()
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        events: list[dict[str, Any]] = conn.execute(
            "SELECT user_id, event_type, source, properties FROM events ORDER BY user_id"
        ).fetchall()
        contacts = conn.execute(
            "SELECT user_id, offers_outstanding FROM user_stats ORDER BY user_id"
        ).fetchall()
    assert [(e["user_id"], e["event_type"], e["source"]) for e in events] == [
        ("u0", "offer_sent", "mca"),
        ("u1", "action_withheld", "mca"),
    ]
    assert events[0]["properties"]["experiment_group"] == "treatment"
    assert events[1]["properties"]["reason"] == "control"
    assert events[1]["properties"]["coupon_code"] == "MCA-1"
    assert contacts == [
        {"user_id": "u0", "offers_outstanding": 1},
        {"user_id": "u1", "offers_outstanding": 0},
    ]
