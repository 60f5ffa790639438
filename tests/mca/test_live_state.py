"""The maintained per-user state on PostgreSQL equals the portable view SQL computed from scratch.

`user_stats`, `user_profile`, `event_chronology` and `unified_context` read rows the triggers
on `events` keep up to date; `*_recomputed` are the portable definitions (sql/state 020-060)
under other names. Random event streams, with late and duplicate events, split into random
statements and transactions, must leave the two equal.
"""

from __future__ import annotations

import itertools
import json
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row

from mca.db import connect_async
from mca.testing import wait_until
from state.context import CONTEXT_SQL, load_context

# How the server records the statement psycopg prepared (placeholders become $n).
CONTEXT_SQL_TEXT = CONTEXT_SQL.replace("%s", "$1")

NOW = datetime.now(UTC).replace(microsecond=0)
VIEWS = ("user_stats", "user_profile", "event_chronology", "unified_context")
EVENT_TYPES = (
    "purchase", "points_earned", "points_redeemed", "points_expired", "churn_scored",
    "ticket_opened", "ticket_closed", "identify", "session_start", "page",
)  # fmt: skip
TRAITS = {
    "first_name": st.sampled_from(["Ann", "Bo", "Cy"]),
    "phone": st.sampled_from(["+15550001", "+15550002"]),
    "email": st.sampled_from(["a@x.io", "b@x.io"]),
    "timezone": st.sampled_from(["UTC", "Europe/Paris"]),
    "tier": st.sampled_from(["silver", "gold"]),
    "consent_sms": st.booleans(),
    "consent_email": st.booleans(),
    "consent_push": st.booleans(),
    "do_not_contact": st.booleans(),
    "birthday": st.sampled_from(["1990-04-02", "1985-12-31"]),
}
INSERT_SQL = """
INSERT INTO events (event_id, user_id, event_type, ts, source, value, points, sku, category, text,
                    properties)
SELECT event_id, user_id, event_type, ts, 'test', value, points, sku, category, text,
       coalesce(properties, '{}')
FROM jsonb_to_recordset(%s::jsonb) AS r(
    event_id text, user_id text, event_type text, ts timestamptz, value numeric, points integer,
    sku text, category text, text text, properties jsonb)
ON CONFLICT (event_id) DO NOTHING
"""


@st.composite
def event(draw: st.DrawFn, n: int) -> dict[str, Any]:
    event_type = draw(st.sampled_from(EVENT_TYPES))
    properties: dict[str, Any] = {}
    if event_type == "identify":
        for trait in draw(st.sets(st.sampled_from(sorted(TRAITS)))):
            properties[trait] = draw(TRAITS[trait])
    if event_type == "churn_scored" and draw(st.booleans()):
        properties["score"] = draw(st.floats(0, 1))
    # Minutes back over 20 days, many of them near the 7-day edge (the hour it cuts is read
    # from events, the rest from hourly sums); the microsecond term keeps each event's ts
    # distinct, because the portable views order latest values by ts alone.
    minutes = draw(st.integers(0, 20 * 24 * 60) | st.integers(167 * 60, 169 * 60))
    ts = NOW - timedelta(minutes=minutes, microseconds=n)
    return {
        "event_id": f"e{n}",
        "user_id": draw(st.sampled_from(["a", "b", "c"])),
        "event_type": event_type,
        "ts": ts.isoformat(),
        "value": draw(st.none() | st.decimals(0, 500, places=2).map(str)),
        "points": draw(st.none() | st.integers(0, 2000)),
        "sku": draw(st.none() | st.sampled_from(["SKU-1", "SKU-2"])),
        "category": draw(st.none() | st.sampled_from(["outdoor", "home"])),
        "text": None,
        "properties": properties,
    }


@st.composite
def delivery(draw: st.DrawFn) -> list[list[list[dict[str, Any]]]]:
    """Transactions of statements of events, in arrival order (which is not ts order)."""
    count = draw(st.integers(1, 40))
    events = [draw(event(n)) for n in range(count)]
    for _ in range(draw(st.integers(0, 8))):  # redeliveries, anywhere after the first copy
        original = draw(st.integers(0, len(events) - 1))
        events.insert(draw(st.integers(original, len(events))), events[original])
    cuts = sorted(draw(st.sets(st.integers(1, len(events) - 1))) if len(events) > 1 else [])
    statements = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]
    transaction_cuts = sorted(draw(st.sets(st.integers(1, len(statements))))) if statements else []
    bounds = [0, *[c for c in transaction_cuts if c < len(statements)], len(statements)]
    return [statements[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def rows_of(conn: psycopg.Connection[Any], relation: str) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(f"SELECT * FROM {relation} ORDER BY user_id").fetchall()]


def assert_maintained_equals_recomputed(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction():  # one now() for the 7-day window on both sides
        for view in VIEWS:
            assert rows_of(conn, view) == rows_of(conn, f"{view}_recomputed"), view


@pytest.fixture
def conn(db_url: str) -> Any:
    with psycopg.connect(db_url, row_factory=dict_row, autocommit=True) as c:
        yield c


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(transactions=delivery())
def test_maintained_state_equals_the_portable_views(conn: Any, transactions: Any) -> None:
    conn.execute("TRUNCATE events")
    for statements in transactions:
        with conn.transaction():
            for batch in statements:
                conn.execute(INSERT_SQL, (json.dumps(batch),))
    assert_maintained_equals_recomputed(conn)


@st.composite
def large_statement(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One statement above the 100 rows that the insert trigger folds with its cached plans
    (sql/state/170): those it folds with statements planned for their size."""
    events = [draw(event(n)) for n in range(draw(st.integers(101, 160)))]
    return events + [events[i] for i in draw(st.lists(st.integers(0, len(events) - 1), max_size=5))]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=large_statement(), second=large_statement())
def test_large_statements_keep_the_state_equal_to_the_portable_views(
    conn: Any, first: Any, second: Any
) -> None:
    conn.execute("TRUNCATE events")
    conn.execute(INSERT_SQL, (json.dumps(first),))
    conn.execute(INSERT_SQL, (json.dumps(second),))  # ids e0, e1, … again: mostly redeliveries
    assert_maintained_equals_recomputed(conn)


def test_duplicates_leave_only_new_rows_in_the_transition_table(conn: Any) -> None:
    purchase = {"user_id": "u", "event_type": "purchase", "ts": NOW.isoformat(), "value": "10.00"}
    conn.execute(INSERT_SQL, (json.dumps([{**purchase, "event_id": "p1"}]),))
    conn.execute(INSERT_SQL, (json.dumps([{**purchase, "event_id": "p1"}, {**purchase, "event_id": "p2"}]),))
    row = conn.execute("SELECT events_total, lifetime_value FROM user_stats WHERE user_id = 'u'").fetchone()
    assert row == {"events_total": 2, "lifetime_value": Decimal("20.00")}


def test_a_late_event_does_not_replace_a_later_latest_value(conn: Any) -> None:
    newer = {"event_id": "new", "user_id": "u", "event_type": "churn_scored", "ts": NOW.isoformat(),
             "properties": {"score": 0.2}}  # fmt: skip
    yesterday = (NOW - timedelta(days=1)).isoformat()
    older = {**newer, "event_id": "old", "ts": yesterday, "properties": {"score": 0.9}}
    conn.execute(INSERT_SQL, (json.dumps([newer]),))
    conn.execute(INSERT_SQL, (json.dumps([older]),))
    row = conn.execute("SELECT churn_score, churn_scored_at FROM user_stats WHERE user_id = 'u'").fetchone()
    assert row == {"churn_score": 0.2, "churn_scored_at": NOW}


def test_a_tie_on_ts_goes_to_the_greater_event_id_in_any_arrival_order(conn: Any) -> None:
    tier = {"user_id": "u", "event_type": "identify", "ts": NOW.isoformat()}
    conn.execute(INSERT_SQL, (json.dumps([{**tier, "event_id": "b", "properties": {"tier": "gold"}}]),))
    conn.execute(INSERT_SQL, (json.dumps([{**tier, "event_id": "a", "properties": {"tier": "silver"}}]),))
    both = [{**tier, "event_id": "c", "properties": {"tier": "bronze"}},
            {**tier, "event_id": "0", "properties": {"tier": "none"}}]  # fmt: skip
    conn.execute(INSERT_SQL, (json.dumps(both),))
    assert conn.execute("SELECT tier FROM user_profile").fetchone() == {"tier": "bronze"}


def test_copy_update_delete_and_truncate_keep_the_state(conn: Any) -> None:
    with conn.cursor().copy("COPY events (event_id, user_id, event_type, ts, points) FROM STDIN") as copy:
        for n in range(5):
            copy.write_row((f"c{n}", "u" if n % 2 else "v", "points_earned", NOW - timedelta(days=n), 10 * n))
    assert_maintained_equals_recomputed(conn)
    conn.execute("UPDATE events SET user_id = 'w', points = 7 WHERE event_id = 'c1'")
    assert_maintained_equals_recomputed(conn)
    conn.execute("DELETE FROM events WHERE user_id = 'v'")
    assert_maintained_equals_recomputed(conn)
    assert [r["user_id"] for r in rows_of(conn, "user_stats")] == ["u", "w"]
    conn.execute("TRUNCATE events")
    assert rows_of(conn, "user_stats") == [] and rows_of(conn, "user_profile") == []


@pytest.mark.parametrize("existing_user", [True, False], ids=["existing-user", "new-user"])
def test_concurrent_transactions_for_one_user_lose_no_update(
    db_url: str, conn: Any, existing_user: bool
) -> None:
    def purchase(event_id: str) -> str:
        return json.dumps([{"event_id": event_id, "user_id": "u", "event_type": "purchase",
                            "ts": NOW.isoformat(), "value": "1.00", "points": 1}])  # fmt: skip

    if existing_user:
        conn.execute(INSERT_SQL, (purchase("p0"),))
    with psycopg.connect(db_url) as first, psycopg.connect(db_url) as second:
        first.execute(INSERT_SQL, (purchase("p1"),))  # holds the user's row until it commits
        second_pid = second.info.backend_pid
        failure: list[BaseException] = []

        def insert_and_commit() -> None:
            try:
                second.execute(INSERT_SQL, (purchase("p2"),))
                second.commit()
            except BaseException as err:  # surfaced in the test thread below
                failure.append(err)

        writer = threading.Thread(target=insert_and_commit)
        writer.start()
        wait_until(
            lambda: (
                conn.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (second_pid,)
                ).fetchone()["wait_event_type"]
                == "Lock"
            ),
            "the second transaction to wait on the first one's row lock",
        )
        first.commit()
        writer.join(timeout=20)
        assert not writer.is_alive() and not failure, failure
    expected = 3 if existing_user else 2
    row = conn.execute("SELECT events_total, points_earned FROM user_stats WHERE user_id = 'u'").fetchone()
    assert row == {"events_total": expected, "points_earned": expected}
    assert_maintained_equals_recomputed(conn)


async def test_a_heavy_customer_does_not_keep_the_context_read_replanning(conn: Any, db_url: str) -> None:
    """After its first executions the context read runs on one generic plan, for every user."""
    with conn.cursor().copy("COPY events (event_id, user_id, event_type, ts, points) FROM STDIN") as copy:
        for n in range(20_000):
            copy.write_row((f"h{n}", "heavy", "points_earned", NOW - timedelta(minutes=n), 1))
        for n in range(200):
            copy.write_row((f"n{n}", f"user-{n % 50}", "session_start", NOW - timedelta(hours=n), None))
    conn.execute("ANALYZE events")
    reader = await connect_async(db_url, autocommit=True)
    try:
        for n in range(30):
            user = "heavy" if n % 3 == 0 else f"user-{n % 50}"
            context = await load_context(reader, user)
            assert context is not None and context["user_id"] == user
        cur = await reader.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = %s",
            (CONTEXT_SQL_TEXT,),
        )
        plans = await cur.fetchone()
    finally:
        await reader.close()
    assert plans is not None and plans["custom_plans"] <= 5 and plans["generic_plans"] >= 25, plans
