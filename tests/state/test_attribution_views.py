"""Data contracts of the attribution views: given these events, expect exactly these rows.

Runs the portable SQL of sql/state/300_attribution.sql and 310_experiment_exposures.sql as
PostgreSQL views on the real embedded server (RisingWave parse: tests/mca/test_sql_dialect.py).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from mca.testing import ago, insert_events, one

DAY = 86400


@pytest.fixture
def conn(db_url: str) -> Any:
    with psycopg.connect(db_url, row_factory=dict_row) as c:
        yield c


def action(user: str, at: Any, decision: str, *, kind: str = "offer_sent", **props: Any) -> dict[str, Any]:
    base = {
        "decision_id": decision,
        "trigger": "churn_risk",
        "goal": "retention",
        "experiment_id": "exp1",
        "experiment_group": "treatment",
        "cost": 1.5,
    }
    return {
        "event_id": f"act-{decision}",
        "user_id": user,
        "event_type": kind,
        "ts": at,
        "properties": {**base, **props},
    }


def decision(user: str, at: Any, decision_id: str, group: str) -> dict[str, Any]:
    """What the announcer writes for every decision: the intent-to-treat exposure."""
    props = {"decision_id": decision_id, "trigger": "churn_risk", "goal": "retention",
             "experiment_id": "exp1", "experiment_group": group, "window_s": 7 * DAY}  # fmt: skip
    return {"event_id": f"dec-{decision_id}", "user_id": user, "event_type": "decision_recorded",
            "ts": at, "properties": props}  # fmt: skip


def event(
    user: str, kind: str, at: Any, eid: str, value: float | None = None, **props: Any
) -> dict[str, Any]:
    return {
        "event_id": eid,
        "user_id": user,
        "event_type": kind,
        "ts": at,
        "value": value,
        "properties": props,
    }


def row(conn: Any, action_id: str) -> dict[str, Any]:
    return one(conn, "SELECT * FROM action_attribution WHERE action_id = %s", action_id)


def test_receipts_and_engagement_match_by_decision_id(conn: Any) -> None:
    insert_events(
        conn,
        action("u1", ago(days=10), "d1", kind="message_sent", channel="email"),
        event("u1", "message_delivered", ago(days=10), "r1", decision_id="d1"),
        event("u1", "email_opened", ago(days=9), "r2", decision_id="d1"),
        event("u1", "email_link_clicked", ago(days=9), "r3", decision_id="d1"),
        event("u1", "email_opened", ago(days=9), "r4", decision_id="other"),
    )
    r = row(conn, "act-d1")
    assert (r["delivered"], r["failed"], r["opened"], r["clicked"]) == (True, False, True, True)
    assert (r["converted"], r["pending"], r["unsubscribed"]) == (False, False, False)


def test_failed_receipt_is_not_delivered(conn: Any) -> None:
    insert_events(
        conn,
        action("u1", ago(days=10), "d1", kind="message_sent"),
        event("u1", "message_failed", ago(days=10), "r1", decision_id="d1"),
    )
    r = row(conn, "act-d1")
    assert (r["delivered"], r["failed"]) == (False, True)


def test_conversion_inside_window_counts_and_one_just_outside_does_not(conn: Any) -> None:
    insert_events(
        conn,
        action("u1", ago(days=20), "d1", window_s=7 * DAY),
        event("u1", "purchase", ago(days=13, seconds=1), "p-in", 40),
        event("u1", "order_completed", ago(days=13), "p-edge", 99),  # exactly at the window's end
        action("u2", ago(days=20), "d2", window_s=7 * DAY),
        event("u2", "purchase", ago(days=13, seconds=-1), "p-out", 50),
    )
    r1, r2 = row(conn, "act-d1"), row(conn, "act-d2")
    assert (r1["converted"], r1["conversions"], r1["revenue"]) == (True, 1, Decimal("40.00"))
    assert (r2["converted"], r2["revenue"]) == (False, 0)


def test_window_defaults_to_seven_days_and_open_window_is_pending(conn: Any) -> None:
    insert_events(
        conn,
        action("u1", ago(days=8), "old"),
        event("u1", "purchase", ago(days=0.5), "late", 10),
        action("u2", ago(days=2), "new"),
    )
    old, new = row(conn, "act-old"), row(conn, "act-new")
    assert (old["pending"], old["converted"]) == (False, False)
    assert (new["pending"], new["converted"]) == (True, False)  # not a failure: still open


def test_per_goal_window_from_the_action(conn: Any) -> None:
    insert_events(
        conn,
        action("u1", ago(days=10), "d1", window_s=1 * DAY),
        event("u1", "purchase", ago(days=8), "p", 30),
    )
    assert row(conn, "act-d1")["converted"] is False
    assert row(conn, "act-d1")["pending"] is False


def test_two_actions_competing_for_one_purchase_last_touch_wins(conn: Any) -> None:
    insert_events(
        conn,
        action("u1", ago(days=5), "first"),
        action("u1", ago(days=3), "second"),
        event("u1", "purchase", ago(days=2), "p", 80),
    )
    assert row(conn, "act-first")["converted"] is False
    assert (row(conn, "act-second")["converted"], row(conn, "act-second")["revenue"]) == (
        True,
        Decimal("80.00"),
    )
    credit = conn.execute("SELECT action_id, by_coupon FROM conversion_credit").fetchall()
    assert credit == [{"action_id": "act-second", "by_coupon": False}]


def test_coupon_code_beats_last_touch_and_marks_redeemed(conn: Any) -> None:
    insert_events(
        conn,
        action("u1", ago(days=5), "coupon", coupon_code="SAVE-1"),
        action("u1", ago(days=3), "later", kind="message_sent"),
        event("u1", "coupon_applied", ago(days=2, hours=1), "ca", coupon_code="SAVE-1"),
        event("u1", "order_completed", ago(days=2), "p", 60, coupon="SAVE-1"),
    )
    c, later = row(conn, "act-coupon"), row(conn, "act-later")
    assert (c["converted"], c["redeemed"], c["revenue"]) == (True, True, Decimal("60.00"))
    assert (later["converted"], later["redeemed"]) == (False, False)


def test_unsubscribe_in_window_is_a_negative_outcome(conn: Any) -> None:
    insert_events(
        conn,
        action("u1", ago(days=3), "d1"),
        event("u1", "unsubscribed", ago(days=2), "un"),
        action("u2", ago(days=30), "d2"),
        event("u2", "unsubscribed", ago(days=1), "un2"),
    )
    assert row(conn, "act-d1")["unsubscribed"] is True
    assert row(conn, "act-d2")["unsubscribed"] is False


def test_unattributed_conversion_is_kept_in_events(conn: Any) -> None:
    insert_events(conn, event("u9", "purchase", ago(days=1), "orphan", 5, coupon_code="NOPE"))
    assert conn.execute("SELECT count(*) AS n FROM conversion_credit").fetchone()["n"] == 0
    assert conn.execute("SELECT count(*) AS n FROM events WHERE event_id = 'orphan'").fetchone()["n"] == 1


def test_exposure_is_intent_to_treat_per_customer(conn: Any) -> None:
    insert_events(
        conn,
        decision("t", ago(days=20), "a1", "treatment"),
        action("t", ago(days=20), "a1", kind="message_sent", cost=2),
        decision("t", ago(days=19), "a2", "treatment"),
        action("t", ago(days=19), "a2", kind="points_awarded", cost=3),
        event("t", "purchase", ago(days=18), "tp", 100),
        decision("c", ago(days=20), "c1", "control"),
        action("c", ago(days=20), "c1", kind="action_withheld", experiment_group="control", cost=0),
        event("c", "purchase", ago(days=15), "cp", 30),
        event("c", "purchase", ago(days=1), "cp-late", 30),
        decision("h", ago(days=2), "h1", "holdout"),
        # Treated, but the brain sent nothing: still counted, as intent to treat requires.
        decision("n", ago(days=12), "n1", "treatment"),
    )
    rows = conn.execute(
        "SELECT user_id, experiment_group, actions_sent, cost, converted, revenue, pending "
        "FROM experiment_exposures ORDER BY user_id"
    ).fetchall()
    assert [tuple(r.values()) for r in rows] == [
        ("c", "control", 0, 0, True, Decimal("30.00"), False),
        ("h", "holdout", 0, 0, False, 0, True),
        ("n", "treatment", 0, 0, False, 0, False),
        ("t", "treatment", 2, 5, True, Decimal("100.00"), False),
    ]


def test_cost_counts_a_coupon_when_redeemed_and_points_and_messages_when_sent(conn: Any) -> None:
    def offer(user: str, decision_id: str, code: str) -> dict[str, Any]:
        sent = action(user, ago(days=20), decision_id, coupon_code=code, cost=20)
        return {**sent, "value": 20}  # offer_sent carries the coupon's value as its value

    insert_events(
        conn,
        offer("u1", "redeemed", "C-1"),
        event("u1", "coupon_applied", ago(days=19), "ca1", coupon_code="C-1"),
        offer("u2", "unused", "C-2"),
        offer("u3", "too-late", "C-3"),
        event("u3", "order_completed", ago(days=12), "late", 50, coupon="C-3"),  # window closed at 13d
        action("u4", ago(days=20), "points", kind="points_awarded", cost=5),
        action("u5", ago(days=20), "sms", kind="message_sent", channel="sms", cost=0.0158),
        action("u6", ago(days=20), "held", kind="action_withheld", experiment_group="control", cost=20),
    )
    got = {
        r["action_id"]: (r["cost"], r["reserved_cost"])
        for r in conn.execute("SELECT action_id, cost, reserved_cost FROM action_attribution").fetchall()
    }
    assert got == {
        "act-redeemed": (20, 20),
        "act-unused": (0, 20),
        "act-too-late": (0, 20),
        "act-points": (5, 5),
        "act-sms": (Decimal("0.0158"), Decimal("0.0158")),
        "act-held": (0, 20),
    }
    insert_events(conn, decision("u1", ago(days=20), "redeemed", "treatment"))
    insert_events(conn, decision("u2", ago(days=20), "unused", "treatment"))
    exposures = conn.execute("SELECT user_id, cost FROM experiment_exposures ORDER BY user_id").fetchall()
    assert [(r["user_id"], r["cost"]) for r in exposures] == [("u1", 20), ("u2", 0)]


def test_a_receipt_marks_exactly_one_action_of_its_decision(conn: Any) -> None:
    second = action("u1", ago(days=9), "d1", kind="message_sent", channel="sms", call_id=12)
    insert_events(
        conn,
        action("u1", ago(days=10), "d1", kind="offer_sent", channel="email", call_id=11),
        {**second, "event_id": "act-d1-sms"},
        # The door resolved the Twilio sid to the SMS (call 12): only the SMS is delivered.
        event("u1", "message_delivered", ago(days=9), "r1", decision_id="d1", call_id=12),
        # An open naming only the decision marks its latest action, not both.
        event("u1", "email_opened", ago(days=8), "r2", decision_id="d1"),
        # A receipt naming an action mca never took marks nothing.
        event("u1", "link_clicked", ago(days=8), "r3", decision_id="d1", call_id=99),
    )
    coupon, sms = row(conn, "act-d1"), row(conn, "act-d1-sms")
    assert (coupon["delivered"], coupon["opened"], coupon["clicked"]) == (False, False, False)
    assert (sms["delivered"], sms["opened"], sms["clicked"]) == (True, True, False)


def test_one_pass_exposures_on_postgres_equal_the_portable_view(conn: Any) -> None:
    # sql/state/330 computes experiment_exposures in one pass; the portable SQL of file 310 is
    # experiment_exposures_recomputed: same columns, same types, same rows, open and closed.
    insert_events(
        conn,
        decision("t", ago(days=20), "a1", "treatment"),
        action("t", ago(days=20), "a1", kind="message_sent", cost=2),
        decision("t", ago(days=19), "a2", "treatment"),
        {**action("t", ago(days=19), "a2", coupon_code="C-T", cost=20), "value": 20},
        event("t", "purchase", ago(days=18), "tp", 100, coupon_code="C-T"),
        event("t", "purchase", ago(days=17), "tp2", None),
        decision("c", ago(days=20), "c1", "control"),
        action("c", ago(days=20), "c1", kind="action_withheld", experiment_group="control", cost=0),
        event("c", "order_completed", ago(days=15), "cp", 30),
        event("c", "purchase", ago(days=1), "cp-late", 30),
        decision("h", ago(days=2), "h1", "holdout"),
        event("h", "purchase", ago(days=1), "hp", 7),
        decision("n", ago(days=12), "n1", "treatment"),
    )
    columns = (
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = %s ORDER BY ordinal_position"
    )
    one_pass = conn.execute(columns, ("experiment_exposures",)).fetchall()
    assert one_pass == conn.execute(columns, ("experiment_exposures_recomputed",)).fetchall()
    assert len(conn.execute("SELECT * FROM experiment_exposures").fetchall()) == 4
    for a, b in (("", "_recomputed"), ("_recomputed", "")):
        extra = conn.execute(
            f"SELECT * FROM experiment_exposures{a} EXCEPT ALL SELECT * FROM experiment_exposures{b}"
        ).fetchall()
        assert extra == []
