"""A Bernoulli bandit with known arm probabilities: the allocator's yardstick.

It exercises the allocation step alone (posteriors from counts, Thompson sampling with the floor,
batched updates the way the arm-statistics cache refreshes), so regret against the oracle that
knows the hidden probabilities can be measured over thousands of decisions in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from learn.allocate import DEFAULT_FLOOR, SelectionMode, allocate
from learn.posterior import DEFAULT_PRIOR_STRENGTH, ArmStats, RewardModel, posterior


@dataclass(frozen=True)
class BanditRun:
    mode: SelectionMode
    decisions: int
    conversions: int
    regret: float  # expected conversions the oracle would have added
    choices: tuple[int, ...]
    propensities: tuple[float, ...]
    rewards: tuple[int, ...]


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
) -> BanditRun:
    """Play ``decisions`` rounds; the posteriors see outcomes only at each refresh."""
    rng = np.random.default_rng(seed)
    arms = [f"arm{i}" for i in range(len(rates))]
    exposures = np.zeros(len(rates), dtype=int)
    wins = np.zeros(len(rates), dtype=int)
    best = max(rates)
    choices, props, rewards = [], [], []
    regret = 0.0
    posteriors = [posterior(ArmStats(a, 0), RewardModel.CONVERSION) for a in arms]
    for step in range(decisions):
        if step % refresh_every == 0:
            everything = ArmStats("*", int(exposures.sum()), int(wins.sum()))
            posteriors = [
                posterior(ArmStats(a, int(n), int(w)), RewardModel.CONVERSION, everything, prior_strength)
                for a, n, w in zip(arms, exposures, wins, strict=True)
            ]
        pick = allocate(arms, mode, posteriors, rng=rng, floor=floor, draws=draws)
        index = arms.index(pick.chosen)
        reward = int(rng.random() < rates[index])
        exposures[index] += 1
        wins[index] += reward
        regret += best - rates[index]
        choices.append(index)
        props.append(pick.propensity)
        rewards.append(reward)
    return BanditRun(mode, decisions, int(wins.sum()), regret, tuple(choices), tuple(props), tuple(rewards))
