"""Arm evidence as of the product's clock: conversions so far count, an open window counts as part
of a failure by how far it went, so the estimate is right while windows are still open."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest

from learn.evidence import TENTHS, arm_evidence, failure_weights, read_evidence

WINDOW = timedelta(days=7)


def test_weights_are_uniform_before_any_matured_conversion() -> None:
    weights = failure_weights([])
    assert weights == pytest.approx([0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95, 1.0])


def test_weights_follow_the_delays_of_matured_conversions() -> None:
    # Every matured conversion came in the first tenth: a window half gone is nearly a failure.
    weights = failure_weights([{"tenth": 0, "conversions": 990}])
    assert weights[5] > 0.99 and weights[0] < 0.51


def _rows(rate: float, now: float, rng: np.random.Generator, delay: Any) -> list[dict[str, Any]]:
    """What EVIDENCE_SQL returns for 4,000 exposures of one arm sent over the last 6 days: none matured."""
    acted = rng.uniform(now - 6, now, 4_000)
    converts = rng.random(4_000) < rate
    at = acted + delay(4_000) * 7
    rows = []
    for a, c, t in zip(acted, converts, at, strict=True):
        tenth = TENTHS if now - a >= 7 else int((now - a) / 7 * 10)
        rows.append(
            {"goal": "g", "arm": "x", "tenth": tenth, "exposures": 1, "conversions": int(c and t <= now)}
        )
    return rows


def test_the_estimate_is_right_while_windows_are_open_and_counting_them_as_failures_is_not() -> None:
    rng = np.random.default_rng(3)
    rate, now = 0.2, 10.0
    # Conversions come early in the window: half within the first 15% of it.
    early = lambda n: np.minimum(rng.exponential(0.2, n), 0.999)  # noqa: E731
    rows = _rows(rate, now, rng, early)
    matured_delays = [
        {"tenth": t, "conversions": n}
        for t, n in zip(*np.unique(np.floor(early(2_000) * 10).astype(int), return_counts=True), strict=True)
    ]
    stats = arm_evidence(rows, failure_weights(matured_delays))[("g", "x")]
    assert stats.conversions / stats.exposures == pytest.approx(rate, abs=0.02)
    # Every exposure taken as matured: the arm looks worse than it is by the conversions to come.
    naive = sum(r["conversions"] for r in rows) / len(rows)
    assert naive < rate - 0.03


def test_read_evidence_weighs_the_views_on_the_clock_it_is_given(db_url: str) -> None:
    start = datetime.now(UTC) - timedelta(days=40)
    with psycopg.connect(db_url, autocommit=True) as conn:
        for n in range(20):
            acted = start + timedelta(days=n % 2 * 10)  # half sent on day 0, half on day 10
            props = {"decision_id": f"d{n}", "trigger": "t", "goal": "retention", "asset": "a",
                     "channel": "email", "window_s": int(WINDOW.total_seconds())}  # fmt: skip
            conn.execute(
                "INSERT INTO events (event_id, user_id, event_type, ts, properties) "
                "VALUES (%s, %s, 'offer_sent', %s, %s)",
                (f"act-{n}", f"u{n}", acted, json.dumps(props)),
            )
            if n % 4 < 2:  # five of each half convert on their first day
                conn.execute(
                    "INSERT INTO events (event_id, user_id, event_type, ts, value) "
                    "VALUES (%s, %s, 'purchase', %s, 20)",
                    (f"buy-{n}", f"u{n}", acted + timedelta(hours=5)),
                )

    async def read(now: datetime) -> Any:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            conn.row_factory = psycopg.rows.dict_row  # type: ignore[assignment]
            return (await read_evidence(conn, now))[("retention", "a:email")]

    # Day 10 and a half: the first half matured (5 of 10), the second half's window is in its
    # first tenth with 5 conversions already. The 5 matured conversions all came in their first
    # tenth, so F there is (0 + (1 + 5) / (10 + 5)) / 2 = 0.2 (a pseudo-conversion per tenth): each of
    # the 5 others weighs a fifth of a failure.
    mid = asyncio.run(read(start + timedelta(days=10, hours=12)))
    assert mid.conversions == 10
    assert mid.exposures == pytest.approx(10 + 5 + 5 * 0.2)
    # On the database's own clock today every window has closed: 10 of 20.
    late = asyncio.run(read(datetime.now(UTC)))
    assert (late.conversions, late.exposures) == (10, pytest.approx(20))
