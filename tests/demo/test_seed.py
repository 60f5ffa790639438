"""The demo world: deterministic generation, plausible live views, the catalogue file."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from demo.seed.catalogue import CATALOGUE_PATH, build_catalogue, render_catalogue
from demo.seed.load import ensure_catalogue, seed_world
from demo.seed.world import HISTORY_DAYS, event_budgets, generate_events
from mca.db import connect
from mca.errors import InputError
from state.embedding import Embedder

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_same_seed_same_world() -> None:
    first = list(generate_events(40, 1_000, seed=7, now=NOW))
    again = list(generate_events(40, 1_000, seed=7, now=NOW))
    other = list(generate_events(40, 1_000, seed=8, now=NOW))
    assert first == again
    assert first != other
    assert len(first) == 1_000 and len({e.event_id for e in first}) == 1_000


def test_budgets_sum_exactly_and_bad_sizes_are_refused() -> None:
    budgets = event_budgets(100, 12_345, seed=3)
    assert sum(budgets) == 12_345 and min(budgets) >= 2
    with pytest.raises(InputError, match="--events"):
        event_budgets(100, 150, seed=3)
    with pytest.raises(InputError, match="--users"):
        event_budgets(0, 150, seed=3)


def test_events_are_plausible() -> None:
    events = list(generate_events(200, 8_000, seed=11, now=NOW))
    assert all(NOW - timedelta(days=HISTORY_DAYS + 1) <= e.ts <= NOW for e in events)
    assert any(e.ts > NOW - timedelta(days=7) for e in events)
    types = Counter(e.event_type for e in events)
    for needed in ("identify", "session_start", "product_viewed", "cart_add", "purchase", "points_earned",
                   "points_redeemed", "ticket_opened", "ticket_closed", "churn_scored"):  # fmt: skip
        assert types[needed] > 0, needed
    assert types["identify"] >= 200 and types["churn_scored"] == 200
    for e in events:
        props = json.loads(e.properties)
        if e.event_type == "purchase":
            assert e.value is not None and e.value > 0 and e.sku and e.category
        if e.event_type == "ticket_opened":
            assert e.text and len(e.text) > 20
        if e.event_type == "churn_scored":
            assert 0 <= props["score"] <= 1
        if e.event_type == "identify":
            assert props["timezone"].count("/") >= 1
            assert "phone" not in props or (props["phone"].startswith("+") and props["phone"][1:].isdigit())
    # Each user's history starts with who they are.
    firsts: dict[str, str] = {}
    for e in sorted(events, key=lambda e: (e.user_id, e.ts)):
        firsts.setdefault(e.user_id, e.event_type)
    assert set(firsts.values()) == {"identify"}


def rows(conn: Any, query: str) -> list[dict[str, Any]]:
    return list(conn.execute(query).fetchall())


def test_seeded_world_fills_every_view(db_url: str) -> None:
    with connect(db_url, autocommit=True) as conn:
        report = seed_world(conn, 300, 9_000, seed=5, progress=False)
        assert report.events == 9_000 and not report.skipped
        for view in ("user_profile", "user_activity_7d", "user_stats", "event_chronology", "unified_context"):
            assert rows(conn, f"SELECT count(*) AS n FROM {view}")[0]["n"] > 0, view
        assert rows(conn, "SELECT count(*) AS n FROM unified_context")[0]["n"] == 300
        consent = rows(
            conn,
            "SELECT count(*) FILTER (WHERE consent_sms) AS sms_yes,"
            " count(*) FILTER (WHERE NOT consent_sms) AS sms_no,"
            " count(*) FILTER (WHERE do_not_contact) AS dnc,"
            " count(*) FILTER (WHERE NOT (consent_sms OR consent_email OR consent_push)) AS opted_out,"
            " count(DISTINCT timezone) AS zones, count(DISTINCT tier) AS tiers FROM user_profile",
        )[0]
        assert consent["sms_yes"] > 0 and consent["sms_no"] > 0 and consent["dnc"] > 0
        assert consent["opted_out"] > 0 and consent["zones"] >= 10 and consent["tiers"] == 4
        stats = rows(
            conn,
            "SELECT min(points_balance) AS min_points, max(points_balance) AS max_points,"
            " max(open_tickets) AS tickets, min(churn_score) AS lo, max(churn_score) AS hi,"
            " count(*) FILTER (WHERE purchases = 0) AS no_purchase FROM user_stats",
        )[0]
        assert stats["min_points"] >= 0 and stats["max_points"] > 0 and stats["tickets"] > 0
        assert 0 <= stats["lo"] < stats["hi"] <= 1 and stats["no_purchase"] > 0


def test_reseeding_the_same_world_is_skipped(db_url: str) -> None:
    with connect(db_url, autocommit=True) as conn:
        seed_world(conn, 20, 400, seed=9, progress=False)
        again = seed_world(conn, 20, 400, seed=9, progress=False)
        assert again.skipped
        assert rows(conn, "SELECT count(*) AS n FROM events")[0]["n"] == 400


def test_catalogue_file_is_current_and_rich() -> None:
    assert CATALOGUE_PATH.read_text(encoding="utf-8") == render_catalogue()
    assets = build_catalogue()
    assert len(assets) >= 200
    assert len({a["description"] for a in assets}) == len(assets)
    assert len({a["asset_id"] for a in assets}) == len(assets)
    assert {a["kind"] for a in assets} == {"coupon", "reward", "content"}
    assert len({a["category"] for a in assets}) >= 8
    assert all(a["value"] is None for a in assets if a["kind"] == "content")
    assert all(a["value"] > 0 for a in assets if a["kind"] != "content")


def test_catalogue_loads_once(db_url: str, embedder: Embedder) -> None:
    with connect(db_url, autocommit=True) as conn:
        assert ensure_catalogue(conn, embedder, progress=False) == len(build_catalogue())
        assert ensure_catalogue(conn, embedder, progress=False) == 0
        row = conn.execute("SELECT count(*) AS n FROM assets WHERE embedding IS NOT NULL").fetchone()
    assert row is not None and row["n"] == len(build_catalogue())
