"""`mca learn arms`: what mca believes about each arm of a goal, from the arm statistics view.

Each arm's posterior is shrunk toward the goal's rate over all its arms (cold start), the
probability of being best comes from joint posterior draws, and the traffic share is the arm's
part of the exposures. The chart shows each arm's mean conversion with its 95% interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from learn.allocate import probability_best
from learn.posterior import ArmStats, RewardModel, pooled, posterior

ARMS_SQL = """
SELECT goal, segment, arm, exposures, matured, conversions, revenue, cost
FROM arm_stats WHERE (CAST(%(goal)s AS text) IS NULL OR goal = %(goal)s)
ORDER BY goal, segment, arm
"""


@dataclass(frozen=True)
class ArmView:
    goal: str
    segment: str
    arm: str
    exposures: int
    matured: int
    conversions: int
    mean: float
    low: float
    high: float
    probability_best: float
    traffic_share: float


def arm_views(rows: list[dict[str, Any]], rng: np.random.Generator) -> list[ArmView]:
    """Posteriors per goal and segment, each arm shrunk toward its goal-wide record."""
    out: list[ArmView] = []
    goals = sorted({r["goal"] for r in rows})
    for goal in goals:
        mine = [r for r in rows if r["goal"] == goal]
        # Cold start: every arm of a segment is shrunk toward the goal's rate over all its arms.
        goal_level = pooled(
            [ArmStats(r["arm"], int(r["matured"]), int(r["conversions"])) for r in mine], goal
        )
        for segment in sorted({r["segment"] for r in mine}):
            seg = [r for r in mine if r["segment"] == segment]
            stats = [ArmStats(r["arm"], int(r["matured"]), int(r["conversions"])) for r in seg]
            posts = [posterior(a, RewardModel.CONVERSION, goal_level) for a in stats]
            best = probability_best(posts, rng)
            total = sum(int(r["exposures"]) for r in seg) or 1
            for r, post, p_best in zip(seg, posts, best, strict=True):
                low, high = post.interval()
                out.append(ArmView(goal, segment, r["arm"], int(r["exposures"]), int(r["matured"]),
                                   int(r["conversions"]), post.mean, low, high, float(p_best),
                                   int(r["exposures"]) / total))  # fmt: skip
    return out


def table(views: list[ArmView]) -> str:
    lines = [
        "goal | segment | arm | exposures (matured) | conversions | mean (95% interval) | P(best) | traffic"
    ]
    for v in views:
        lines.append(
            f"{v.goal} | {v.segment} | {v.arm} | {v.exposures} ({v.matured}) | {v.conversions} | "
            f"{v.mean:.1%} ({v.low:.1%} .. {v.high:.1%}) | {v.probability_best:.0%} | {v.traffic_share:.0%}"
        )
    return "\n".join(lines)


def chart(views: list[ArmView], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.35 * len(views) + 1)))
    labels = [f"{v.goal}/{v.segment}/{v.arm}" for v in views]
    means = np.array([v.mean for v in views])
    errors = np.clip(np.array([[v.mean - v.low for v in views], [v.high - v.mean for v in views]]), 0, None)
    ax.errorbar(means, range(len(views)), xerr=errors, fmt="o", capsize=3)
    ax.set_yticks(range(len(views)), labels, fontsize=7)
    ax.set_xlabel("conversion within the window (posterior mean, 95% interval)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
