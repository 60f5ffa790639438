"""Each arm's evidence as of the product's clock, with pending exposures neither ignored nor failed.

A conversion inside an open window is already a success. An open window with no conversion yet is
partial evidence: had the arm converted, the share ``F(elapsed)`` of conversions that arrive by
that point of a window would already have shown. Its likelihood ``1 - p·F`` is approximated by
``(1 - p)^F``, so it counts as ``F`` of a failure and the Beta posterior stays conjugate. ``F`` is
the delay distribution of the matured conversions (tenths of the window), smoothed toward uniform.

Why not matured exposures only: with a 7-day window the first week of decisions would learn
nothing; and why not every exposure at once: the arm sent most recently would look worst, because
its customers have not had time to answer (both measured in `mca simulate` and
`bench/bench_learn.py`: docs/measure.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from learn.posterior import ArmStats

TENTHS = 10
# Pseudo-conversions per tenth of the window that pull the delay distribution toward uniform
# until enough matured conversions are seen.
DELAY_PRIOR = 1.0

# Per goal, arm and tenth of its window elapsed by `now` (TENTHS: matured).
EVIDENCE_SQL = """
SELECT goal, arm,
       CASE WHEN window_ends_at <= CAST(%(now)s AS timestamptz) THEN 10
            ELSE least(9, floor(10 * extract(epoch FROM (CAST(%(now)s AS timestamptz) - acted_at))
                            / greatest(extract(epoch FROM (window_ends_at - acted_at)), 1))) END AS tenth,
       count(*) AS exposures,
       count(*) FILTER (WHERE first_converted_at <= CAST(%(now)s AS timestamptz)) AS conversions
FROM arm_exposures WHERE acted_at <= CAST(%(now)s AS timestamptz)
GROUP BY 1, 2, 3
"""
# In which tenth of its window each matured conversion came.
DELAYS_SQL = """
SELECT least(9, floor(10 * extract(epoch FROM (first_converted_at - acted_at))
                      / greatest(extract(epoch FROM (window_ends_at - acted_at)), 1))) AS tenth,
       count(*) AS conversions
FROM arm_exposures
WHERE window_ends_at <= CAST(%(now)s AS timestamptz) AND first_converted_at IS NOT NULL
GROUP BY 1
"""


def failure_weights(delays: Sequence[dict[str, Any]]) -> NDArray[np.float64]:
    """Per tenth elapsed (0..9, and 10 for matured): how much of a failure a non-conversion is."""
    counts = np.full(TENTHS, DELAY_PRIOR)
    for r in delays:
        counts[min(max(int(r["tenth"]), 0), TENTHS - 1)] += int(r["conversions"])
    cdf = np.concatenate([[0.0], np.cumsum(counts) / counts.sum()])  # F at each tenth's edge
    # Elapsed somewhere inside tenth t: the midpoint of F over it.
    inside = (cdf[:-1] + cdf[1:]) / 2
    return np.asarray(np.concatenate([inside, [1.0]]), dtype=np.float64)


def arm_evidence(
    rows: Sequence[dict[str, Any]], weights: NDArray[np.float64]
) -> dict[tuple[str, str], ArmStats]:
    """Per (goal, arm): conversions, and as exposures the conversions plus the weighted failures."""
    conversions: dict[tuple[str, str], int] = {}
    failures: dict[tuple[str, str], float] = {}
    for r in rows:
        key = (str(r["goal"]), str(r["arm"]))
        k, n = int(r["conversions"]), int(r["exposures"])
        conversions[key] = conversions.get(key, 0) + k
        failures[key] = failures.get(key, 0.0) + (n - k) * float(weights[int(r["tenth"])])
    return {key: ArmStats(key[1], conversions[key] + failures[key], conversions[key]) for key in conversions}


@dataclass(frozen=True)
class ArmCounts:
    """What one (goal, arm) has as of `now`, before weighing: for people, beside the posterior."""

    exposures: int
    matured: int  # window closed
    conversions: int  # so far, in open windows too


def arm_counts(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], ArmCounts]:
    counts: dict[tuple[str, str], ArmCounts] = {}
    for r in rows:
        key = (str(r["goal"]), str(r["arm"]))
        was = counts.get(key, ArmCounts(0, 0, 0))
        n = int(r["exposures"])
        counts[key] = ArmCounts(
            was.exposures + n,
            was.matured + (n if int(r["tenth"]) == TENTHS else 0),
            was.conversions + int(r["conversions"]),
        )
    return counts


async def read_evidence(conn: Any, now: datetime) -> dict[tuple[str, str], ArmStats]:
    """One snapshot of every goal's arms as of `now` (two reads on one connection)."""
    delays = await (await conn.execute(DELAYS_SQL, {"now": now})).fetchall()
    rows = await (await conn.execute(EVIDENCE_SQL, {"now": now})).fetchall()
    return arm_evidence([dict(r) for r in rows], failure_weights([dict(d) for d in delays]))


def read_evidence_and_counts(
    conn: Any, now: datetime
) -> tuple[dict[tuple[str, str], ArmStats], dict[tuple[str, str], ArmCounts]]:
    """The same snapshot from a blocking connection (the CLI), with the raw counts beside it."""
    delays = [dict(d) for d in conn.execute(DELAYS_SQL, {"now": now}).fetchall()]
    rows = [dict(r) for r in conn.execute(EVIDENCE_SQL, {"now": now}).fetchall()]
    return arm_evidence(rows, failure_weights(delays)), arm_counts(rows)
