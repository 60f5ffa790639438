"""Data contract of mca's own touches in the live views (files 160-165): given these events,
expect exactly these contact stats in user_stats, unified_context and its portable twin."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from mca.testing import ago, insert_events, one

CONTACT_COLUMNS = "last_contacted_at, contacts_7d, offers_outstanding"


def code(user_id: str, event_type: str, ts: Any, coupon_code: str) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "event_type": event_type,
        "ts": ts,
        "properties": {"coupon_code": coupon_code},
    }


@pytest.fixture
def conn(db_url: str) -> Any:
    with psycopg.connect(db_url, row_factory=dict_row) as c:
        yield c


def test_offers_messages_and_awards_are_contacts_and_mca_codes_redeem_offers(conn: Any) -> None:
    insert_events(
        conn,
        {"user_id": "c1", "event_type": "session_start", "ts": ago(days=20)},
        code("c1", "offer_sent", ago(days=10), "MCA-AAAA"),  # outside the 7-day window, still outstanding
        code("c1", "offer_sent", ago(days=3), "MCA-BBBB"),
        {"user_id": "c1", "event_type": "message_sent", "ts": ago(days=2)},
        {"user_id": "c1", "event_type": "points_awarded", "ts": ago(days=1), "points": 50},
        {"user_id": "c1", "event_type": "crm_updated", "ts": ago(hours=2)},  # not a contact
        {"user_id": "c1", "event_type": "action_withheld", "ts": ago(hours=1)},  # not a contact
        code("c1", "coupon_applied", ago(hours=5), "MCA-BBBB"),
        code("c1", "coupon_applied", ago(hours=4), "SHOP10"),  # not mca's code
    )  # fmt: skip
    expected = {"last_contacted_at": ago(days=1), "contacts_7d": 3, "offers_outstanding": 1}
    assert one(conn, f"SELECT {CONTACT_COLUMNS} FROM user_stats WHERE user_id = 'c1'") == expected
    assert one(conn, f"SELECT {CONTACT_COLUMNS} FROM user_stats_recomputed WHERE user_id = 'c1'") == expected
    context = one(conn, "SELECT context FROM unified_context WHERE user_id = 'c1'")["context"]
    assert {k: context["stats"][k] for k in expected} == {
        "last_contacted_at": ago(days=1).isoformat(),
        "contacts_7d": 3,
        "offers_outstanding": 1,
    }
    twin = one(conn, "SELECT context FROM unified_context_recomputed WHERE user_id = 'c1'")["context"]
    assert twin == context
    # mca's award moves the balance like any earned points.
    assert one(conn, "SELECT points_balance FROM user_stats WHERE user_id = 'c1'")["points_balance"] == 50


def test_redemptions_never_make_offers_outstanding_negative(conn: Any) -> None:
    insert_events(
        conn,
        code("c2", "offer_sent", ago(days=1), "MCA-C"),
        code("c2", "coupon_applied", ago(hours=3), "MCA-C"),
        code("c2", "coupon_applied", ago(hours=2), "MCA-C"),
    )  # fmt: skip
    assert one(conn, f"SELECT {CONTACT_COLUMNS} FROM user_stats WHERE user_id = 'c2'") == {
        "last_contacted_at": ago(days=1),
        "contacts_7d": 1,
        "offers_outstanding": 0,
    }


def test_a_long_history_reads_only_its_contact_events(conn: Any) -> None:
    history = [{"user_id": "heavy", "event_type": "page", "ts": ago(minutes=m)} for m in range(1, 3001)]
    insert_events(conn, *history, {"user_id": "heavy", "event_type": "offer_sent", "ts": ago(days=1)})
    conn.execute("ANALYZE events")
    plan = "\n".join(
        r["QUERY PLAN"] for r in conn.execute("EXPLAIN SELECT * FROM user_contacts WHERE user_id = 'heavy'")
    )
    assert "events_user_contacts" in plan, plan
