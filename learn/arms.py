"""`mca learn arms`: what the allocator believes about each arm of a goal, as it decides with it.

The posteriors are the allocator's own (`learn.arm_cache.ArmSnapshot`, from `arm_exposures`
weighed on the clock by `learn.evidence`): conversions so far count, an open window counts as
part of a failure. Each goal's arms are shrunk toward the same arm over every goal (cold start),
the probability of being best comes from joint posterior draws, and the traffic share is the
arm's part of the goal's exposures. The chart shows each arm's mean conversion with its 95%
interval. Per segment, the analyst's view is `arm_stats` (sql/state/320).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from learn.allocate import probability_best
from learn.arm_cache import ArmSnapshot
from learn.evidence import ArmCounts
from learn.posterior import ArmStats


@dataclass(frozen=True)
class ArmView:
    goal: str
    arm: str
    counts: ArmCounts
    weighed: float  # exposures as the posterior counts them (open windows in part)
    mean: float
    low: float
    high: float
    probability_best: float
    traffic_share: float


def arm_views(
    evidence: Mapping[tuple[str, str], ArmStats],
    counts: Mapping[tuple[str, str], ArmCounts],
    rng: np.random.Generator,
    goal: str | None = None,
) -> list[ArmView]:
    """Per goal (only ``goal`` when given), each arm's posterior as the allocator forms it."""
    snapshot = ArmSnapshot.of(evidence)
    out: list[ArmView] = []
    for g in sorted({key[0] for key in evidence if goal is None or key[0] == goal}):
        arms = sorted(arm for (mine, arm) in evidence if mine == g)
        posts = snapshot.posteriors(g, arms)
        best = probability_best(posts, rng)
        total = sum(counts[(g, a)].exposures for a in arms) or 1
        for arm, post, p_best in zip(arms, posts, best, strict=True):
            low, high = post.interval()
            n = counts[(g, arm)]
            out.append(ArmView(g, arm, n, evidence[(g, arm)].exposures, post.mean, low, high,
                               float(p_best), n.exposures / total))  # fmt: skip
    return out


def table(views: list[ArmView]) -> str:
    lines = [
        "goal | arm | exposures (matured) | conversions | weighed exposures | mean (95% interval) "
        "| P(best) | traffic"
    ]
    for v in views:
        lines.append(
            f"{v.goal} | {v.arm} | {v.counts.exposures} ({v.counts.matured}) | {v.counts.conversions} | "
            f"{v.weighed:.1f} | {v.mean:.1%} ({v.low:.1%} .. {v.high:.1%}) | {v.probability_best:.0%} | "
            f"{v.traffic_share:.0%}"
        )
    return "\n".join(lines)


def chart(views: list[ArmView], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.35 * len(views) + 1)))
    labels = [f"{v.goal}/{v.arm}" for v in views]
    means = np.array([v.mean for v in views])
    errors = np.clip(np.array([[v.mean - v.low for v in views], [v.high - v.mean for v in views]]), 0, None)
    ax.errorbar(means, range(len(views)), xerr=errors, fmt="o", capsize=3)
    ax.set_yticks(range(len(views)), labels, fontsize=7)
    ax.set_xlabel("conversion within the window (posterior mean, 95% interval)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
