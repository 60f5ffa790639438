"""Arm posteriors for the allocator, read from the `arm_exposures` view through an in-process cache.

On the embedded default the view is computed at read time over the whole attribution history: a
population scan. A decision must never wait on it, so the cache serves the last snapshot and,
when that is older than `max_age` on the product's clock, starts one refresh in the background
(at most one at a time); the decision goes on with what it has. `prime()` reads it once at
start-up, off any decision's path.

Evidence is weighed as of the product's clock (`learn.evidence`): conversions so far count, and
an exposure whose window is still open counts as part of a failure by how far its window went.

Posteriors are per goal (segments pooled), each arm shrunk toward the same arm over every goal
and then toward everything (cold start: `learn.posterior.hierarchical_posteriors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from learn.evidence import read_evidence
from learn.posterior import ArmStats, Posterior, RewardModel, hierarchical_posteriors
from mca.clock import Clock, system_clock

log = logging.getLogger(__name__)
DEFAULT_MAX_AGE_S = 5.0


@dataclass(frozen=True)
class ArmSnapshot:
    """Evidence per (goal, arm) and per arm over every goal."""

    by_goal: dict[tuple[str, str], ArmStats] = field(default_factory=dict)
    by_arm: dict[str, ArmStats] = field(default_factory=dict)

    @classmethod
    def of(cls, evidence: Mapping[tuple[str, str], ArmStats]) -> ArmSnapshot:
        by_arm: dict[str, ArmStats] = {}
        for (_goal, arm), stats in evidence.items():
            by_arm[arm] = by_arm[arm].merged(stats, arm) if arm in by_arm else stats
        return cls(dict(evidence), by_arm)

    def posteriors(self, goal: str, arms: Sequence[str]) -> list[Posterior]:
        mine = [self.by_goal.get((goal, a), ArmStats(a, 0)) for a in arms]
        everywhere = list(self.by_arm.values())
        return hierarchical_posteriors(mine, RewardModel.CONVERSION, [everywhere] if everywhere else [])


class ArmCache:
    """The last `arm_exposures` snapshot, refreshed in the background when older than `max_age_s`."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        max_age_s: float = DEFAULT_MAX_AGE_S,
        clock: Clock = system_clock,
    ) -> None:
        self.pool = pool
        self.max_age_s = max_age_s
        self.clock = clock
        self.snapshot = ArmSnapshot()
        self.read_at: datetime | None = None  # on the product's clock
        self.refreshes = 0
        self._task: asyncio.Task[None] | None = None

    async def prime(self) -> None:
        await self._refresh()

    def current(self) -> ArmSnapshot:
        """The snapshot now; a refresh starts behind it when it is stale (never awaited here)."""
        read_at = self.read_at
        stale = read_at is None or (self.clock() - read_at).total_seconds() > self.max_age_s
        if stale and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._refresh())
        return self.snapshot

    async def _refresh(self) -> None:
        now = self.clock()
        try:
            async with self.pool.connection() as conn:
                evidence = await read_evidence(conn, now)
        except Exception as err:  # a failed refresh keeps the last snapshot; the next one retries
            log.warning("arm statistics not refreshed: %s", err)
            self.read_at = now
            return
        self.snapshot = ArmSnapshot.of(evidence)
        self.read_at = now
        self.refreshes += 1

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
