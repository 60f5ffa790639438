"""Arm posteriors for the allocator, read from the `arm_stats` view through an in-process cache.

On the embedded default `arm_stats` is a plain view computed at read time over the whole
attribution history: a population scan. A decision must never wait on it, so the cache serves
the last snapshot and, when that is older than `max_age`, starts one refresh in the background
(at most one at a time); the decision goes on with what it has. `prime()` reads it once at
start-up, off any decision's path.

Posteriors are per goal (segments pooled), each arm shrunk toward the same arm over every goal
and then toward everything (cold start: `learn.posterior.hierarchical_posteriors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import AsyncConnectionPool

from learn.arms import ARMS_SQL
from learn.posterior import ArmStats, Posterior, RewardModel, hierarchical_posteriors

log = logging.getLogger(__name__)
DEFAULT_MAX_AGE_S = 5.0


@dataclass(frozen=True)
class ArmSnapshot:
    """Matured evidence per (goal, arm) and per arm over every goal."""

    by_goal: dict[tuple[str, str], ArmStats] = field(default_factory=dict)
    by_arm: dict[str, ArmStats] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: Sequence[dict[str, Any]]) -> ArmSnapshot:
        by_goal: dict[tuple[str, str], ArmStats] = {}
        by_arm: dict[str, ArmStats] = {}
        for r in rows:
            arm = str(r["arm"])
            stats = ArmStats(arm, int(r["matured"]), int(r["conversions"]))
            key = (str(r["goal"]), arm)
            by_goal[key] = by_goal[key].merged(stats, arm) if key in by_goal else stats
            by_arm[arm] = by_arm[arm].merged(stats, arm) if arm in by_arm else stats
        return cls(by_goal, by_arm)

    def posteriors(self, goal: str, arms: Sequence[str]) -> list[Posterior]:
        mine = [self.by_goal.get((goal, a), ArmStats(a, 0)) for a in arms]
        everywhere = list(self.by_arm.values())
        return hierarchical_posteriors(mine, RewardModel.CONVERSION, [everywhere] if everywhere else [])


class ArmCache:
    """The last `arm_stats` snapshot, refreshed in the background when older than `max_age_s`."""

    def __init__(self, pool: AsyncConnectionPool[Any], max_age_s: float = DEFAULT_MAX_AGE_S) -> None:
        self.pool = pool
        self.max_age_s = max_age_s
        self.snapshot = ArmSnapshot()
        self.read_at = float("-inf")
        self.refreshes = 0
        self._task: asyncio.Task[None] | None = None

    async def prime(self) -> None:
        await self._refresh()

    def current(self) -> ArmSnapshot:
        """The snapshot now; a refresh starts behind it when it is stale (never awaited here)."""
        stale = time.monotonic() - self.read_at > self.max_age_s
        if stale and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._refresh())
        return self.snapshot

    async def _refresh(self) -> None:
        try:
            async with self.pool.connection() as conn:
                rows = await (await conn.execute(ARMS_SQL, {"goal": None})).fetchall()
        except Exception as err:  # a failed refresh keeps the last snapshot; the next one retries
            log.warning("arm statistics not refreshed: %s", err)
            self.read_at = time.monotonic()
            return
        self.snapshot = ArmSnapshot.of([dict(r) for r in rows])
        self.read_at = time.monotonic()
        self.refreshes += 1

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
