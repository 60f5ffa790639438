"""A Bernoulli bandit with known arm probabilities: the allocator's yardstick.

It exercises the allocation step alone (posteriors from counts, Thompson sampling with the floor,
batched updates the way the arm-statistics cache refreshes), so regret against the oracle that
knows the hidden probabilities can be measured over thousands of decisions in seconds.

With a ``Delay``, a conversion arrives only some time after its decision, uniformly inside an
attribution window of ``window`` decisions, and at each refresh the evidence is weighed exactly
as the product weighs it (`learn.evidence`: conversions so far, an open window as part of a
failure), or, with ``weigh_pending=False``, from closed windows only: the counterfactual that
shows what the weighing is worth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from learn.allocate import DEFAULT_FLOOR, SelectionMode, allocate
from learn.evidence import TENTHS, arm_evidence, failure_weights
from learn.posterior import DEFAULT_PRIOR_STRENGTH, ArmStats, RewardModel, posterior

GOAL = "simulated"


@dataclass(frozen=True)
class Delay:
    """Outcomes arrive uniformly inside a window of ``window`` decisions after theirs."""

    window: int
    weigh_pending: bool = True

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"window must be >= 1 decision, got {self.window}")


@dataclass(frozen=True)
class BanditRun:
    mode: SelectionMode
    decisions: int
    conversions: int
    regret: float  # expected conversions the oracle would have added
    choices: tuple[int, ...]
    propensities: tuple[float, ...]
    rewards: tuple[int, ...]


def delayed_evidence(
    arms: Sequence[str],
    decided: NDArray[np.float64],
    choices: NDArray[np.int64],
    arrives: NDArray[np.float64],
    now: float,
    delay: Delay,
) -> list[ArmStats]:
    """Each arm's evidence at ``now`` from the decisions so far, in the rows `learn.evidence` reads."""
    elapsed = now - decided
    ended = elapsed >= delay.window
    tenth = np.where(ended, TENTHS, np.minimum(TENTHS - 1, np.floor(TENTHS * elapsed / delay.window)))
    converted = arrives <= now
    seen = ended | delay.weigh_pending
    rows = [
        {"goal": GOAL, "arm": arms[a], "tenth": int(t), "exposures": int(m.sum()),
         "conversions": int((m & converted).sum())}
        for a in range(len(arms)) for t in range(TENTHS + 1)
        if (m := seen & (choices == a) & (tenth == t)).any()
    ]  # fmt: skip
    matured = ended & np.isfinite(arrives)
    delay_tenths = np.minimum(
        TENTHS - 1, np.floor(TENTHS * (arrives[matured] - decided[matured]) / delay.window)
    )
    delays = [{"tenth": t, "conversions": int((delay_tenths == t).sum())} for t in range(TENTHS)]
    evidence = arm_evidence(rows, failure_weights(delays))
    return [evidence.get((GOAL, a), ArmStats(a, 0)) for a in arms]


def run_bandit(
    rates: Sequence[float],
    mode: SelectionMode,
    decisions: int,
    seed: int,
    *,
    refresh_every: int = 20,
    floor: float = DEFAULT_FLOOR,
    draws: int = 300,
    prior_strength: float = DEFAULT_PRIOR_STRENGTH,
    delay: Delay | None = None,
) -> BanditRun:
    """Play ``decisions`` rounds; the posteriors see outcomes only at each refresh."""
    rng = np.random.default_rng(seed)
    arms = [f"arm{i}" for i in range(len(rates))]
    choices = np.zeros(decisions, dtype=np.int64)
    rewards = np.zeros(decisions, dtype=np.int64)
    arrives = np.full(decisions, np.inf)
    decided = np.arange(decisions, dtype=np.float64)
    props = np.zeros(decisions)
    best = max(rates)
    regret = 0.0
    posteriors = [posterior(ArmStats(a, 0), RewardModel.CONVERSION) for a in arms]
    for step in range(decisions):
        if step % refresh_every == 0 and step:
            stats = (
                immediate_evidence(arms, choices[:step], rewards[:step])
                if delay is None
                else delayed_evidence(arms, decided[:step], choices[:step], arrives[:step], step, delay)
            )
            everything = ArmStats("*", sum(s.exposures for s in stats), sum(s.conversions for s in stats))
            posteriors = [posterior(s, RewardModel.CONVERSION, everything, prior_strength) for s in stats]
        pick = allocate(arms, mode, posteriors, rng=rng, floor=floor, draws=draws)
        index = arms.index(pick.chosen)
        choices[step], props[step] = index, pick.propensity
        rewards[step] = int(rng.random() < rates[index])
        if rewards[step]:
            arrives[step] = step + (rng.uniform(0, delay.window) if delay is not None else 0.0)
        regret += best - rates[index]
    return BanditRun(mode, decisions, int(rewards.sum()), regret, tuple(int(c) for c in choices),
                     tuple(float(p) for p in props), tuple(int(r) for r in rewards))  # fmt: skip


def immediate_evidence(
    arms: Sequence[str], choices: NDArray[np.int64], rewards: NDArray[np.int64]
) -> list[ArmStats]:
    """Every outcome known at the next refresh."""
    return [
        ArmStats(a, int((choices == i).sum()), int(rewards[choices == i].sum())) for i, a in enumerate(arms)
    ]
