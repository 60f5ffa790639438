"""What mca believes about each arm (asset × channel) of a goal, as a posterior it can sample.

Two reward models, chosen per goal: *conversion* (did the customer convert within the window:
Beta-Bernoulli) and *net revenue* (revenue minus cost per matured exposure: a Normal posterior on
the mean with the sample variance plugged in). Only matured exposures count: an action whose
attribution window is still open is not a failure.

Cold start borrows strength from a coarser level (segment → goal → all): an arm with few
exposures starts from its parent's mean with the weight of ``prior_strength`` pseudo-exposures,
so a new arm in a segment is neither assumed perfect nor assumed worthless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

# How many pseudo-exposures a parent level's mean is worth to an arm that has none of its own.
DEFAULT_PRIOR_STRENGTH = 2.0
# Before anything is known at any level: a weak prior centred on a small conversion rate.
UNINFORMED_RATE = 0.05


def load_quantiles() -> None:
    """Import what `Posterior.interval` needs now: its first call would otherwise import
    scipy.special (~0.2 s warm, over 1 s cold) on a decision's path. Kept out of processes that
    never annotate an arm (about 26 MiB resident)."""
    import scipy.special  # noqa: F401


class RewardModel(StrEnum):
    CONVERSION = "conversion"
    NET_REVENUE = "net_revenue"


@dataclass(frozen=True)
class ArmStats:
    """One arm's evidence: exposures whose window has closed, and what they earned (for conversion,
    `exposures` may be fractional: pending exposures count by how much of their window elapsed,
    `learn.evidence`)."""

    arm: str
    exposures: float
    conversions: int = 0
    net_revenue_sum: float = 0.0
    net_revenue_sum_sq: float = 0.0

    def __post_init__(self) -> None:
        if self.exposures < 0:
            raise ValueError(f"{self.arm}: exposures must be >= 0, got {self.exposures}")
        if not 0 <= self.conversions <= self.exposures:
            raise ValueError(
                f"{self.arm}: conversions must be between 0 and exposures ({self.exposures}), "
                f"got {self.conversions}"
            )

    def merged(self, other: ArmStats, arm: str) -> ArmStats:
        return ArmStats(
            arm,
            self.exposures + other.exposures,
            self.conversions + other.conversions,
            self.net_revenue_sum + other.net_revenue_sum,
            self.net_revenue_sum_sq + other.net_revenue_sum_sq,
        )


def pooled(arms: Sequence[ArmStats], name: str) -> ArmStats:
    """The coarser level's evidence: every arm below it added together."""
    total = ArmStats(name, 0)
    for arm in arms:
        total = total.merged(arm, name)
    return total


@dataclass(frozen=True)
class Posterior:
    """A posterior over one arm's expected reward; ``sample`` draws from it."""

    arm: str
    model: RewardModel
    # Beta(a, b) for conversion; Normal(mean, sd) for net revenue.
    first: float
    second: float

    @property
    def mean(self) -> float:
        if self.model is RewardModel.CONVERSION:
            return self.first / (self.first + self.second)
        return self.first

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """The central ``level`` interval, from the quantile functions of scipy.special: a frozen
        scipy.stats distribution costs ~3 ms to build, and search results annotate every arm on a
        decision's path (scipy.stats is also ~70 MiB resident that a serving process does not carry)."""
        from scipy.special import betaincinv, ndtri  # the first call pays the import: load_quantiles

        tails = np.array([(1 - level) / 2, (1 + level) / 2])
        if self.model is RewardModel.CONVERSION:
            low, high = betaincinv(self.first, self.second, tails)
        else:
            low, high = self.first + self.second * ndtri(tails)
        return float(low), float(high)

    def sample(self, rng: np.random.Generator, size: int) -> NDArray[np.float64]:
        if self.model is RewardModel.CONVERSION:
            return rng.beta(self.first, self.second, size)
        return rng.normal(self.first, self.second, size)


def prior_mean(model: RewardModel, parent: ArmStats | None) -> tuple[float, float]:
    """The parent's mean reward and its spread, or the uninformed default when it has nothing."""
    if parent is None or parent.exposures == 0:
        return (UNINFORMED_RATE, 1.0) if model is RewardModel.CONVERSION else (0.0, 1.0)
    if model is RewardModel.CONVERSION:
        return parent.conversions / parent.exposures, 1.0
    mean = parent.net_revenue_sum / parent.exposures
    var = max(parent.net_revenue_sum_sq / parent.exposures - mean * mean, 1e-9)
    return mean, float(np.sqrt(var))


def posterior(
    arm: ArmStats,
    model: RewardModel,
    parent: ArmStats | None = None,
    prior_strength: float = DEFAULT_PRIOR_STRENGTH,
) -> Posterior:
    """The arm's posterior, shrunk toward its parent level's mean by ``prior_strength`` pseudo-exposures."""
    if prior_strength <= 0:
        raise ValueError(f"prior_strength must be > 0, got {prior_strength}")
    centre, spread = prior_mean(model, parent)
    if model is RewardModel.CONVERSION:
        centre = min(max(centre, 1e-3), 1 - 1e-3)
        a = centre * prior_strength + arm.conversions
        b = (1 - centre) * prior_strength + (arm.exposures - arm.conversions)
        return Posterior(arm.arm, model, a, b)
    n = arm.exposures
    if n == 0:
        sample_var = spread * spread
        mean_n = centre
    else:
        mean_n = arm.net_revenue_sum / n
        sample_var = max(arm.net_revenue_sum_sq / n - mean_n * mean_n, spread * spread / 4, 1e-9)
    weight = prior_strength + n
    mean = (prior_strength * centre + n * mean_n) / weight
    return Posterior(arm.arm, model, float(mean), float(np.sqrt(sample_var / weight)))


def hierarchical_posteriors(
    arms: Sequence[ArmStats],
    model: RewardModel,
    levels: Sequence[Sequence[ArmStats]] = (),
    prior_strength: float = DEFAULT_PRIOR_STRENGTH,
) -> list[Posterior]:
    """Posteriors for ``arms`` (one segment's), each borrowing from the same arm one level up.

    ``levels`` lists the coarser levels from nearest to farthest (the goal's arms over every
    segment, then every goal's); an arm missing at a level borrows from the next level that has it,
    and finally from everything pooled.
    """
    everything = pooled([a for level in levels for a in level] or list(arms), "*")
    by_level = [{a.arm: a for a in level} for level in levels]
    result = []
    for arm in arms:
        parent = next(
            (level[arm.arm] for level in by_level if arm.arm in level and level[arm.arm].exposures > 0),
            everything,
        )
        result.append(posterior(arm, model, parent, prior_strength))
    return result
