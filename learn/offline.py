"""Off-policy evaluation of the simulated bandit's logs against the value the simulator knows.

Used by the tests and bench/bench_learn.py to show the estimators recover a policy's true value
from logs collected under `explore` and under `bandit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from learn.ope import Estimate, Estimator, evaluate
from learn.policies import LoggedDecision, TargetPolicy, evaluation_arrays
from learn.posterior import ArmStats, RewardModel, posterior
from learn.simulate import BanditRun


@dataclass(frozen=True)
class OfflineCheck:
    estimate: Estimate
    truth: float

    @property
    def relative_error(self) -> float:
        return abs(self.estimate.value - self.truth) / self.truth

    @property
    def covered(self) -> bool:
        return self.estimate.low <= self.truth <= self.estimate.high


def check_greedy(run: BanditRun, rates: Sequence[float], seed: int, resamples: int = 500) -> OfflineCheck:
    """Evaluate the greedy policy on today's posteriors from ``run``'s logs, beside its true value."""
    arms = tuple(f"arm{i}" for i in range(len(rates)))
    choices = np.array(run.choices)
    rewards = np.array(run.rewards)
    posteriors = {
        arm: posterior(
            ArmStats(arm, int((choices == i).sum()), int(rewards[choices == i].sum())), RewardModel.CONVERSION
        )
        for i, arm in enumerate(arms)
    }
    logs = [
        LoggedDecision(arms[c], p, arms, float(r))
        for c, p, r in zip(run.choices, run.propensities, run.rewards, strict=True)
    ]
    rng = np.random.default_rng(seed)
    columns = evaluation_arrays(logs, TargetPolicy("greedy"), posteriors, rng)
    estimate = evaluate(
        Estimator.DOUBLY_ROBUST,
        columns["rewards"],
        columns["logged_propensity"],
        columns["target_probability"],
        columns["model_reward"],
        columns["model_value"],
        resamples=resamples,
        rng=rng,
    )
    greedy_arm = max(range(len(arms)), key=lambda i: posteriors[arms[i]].mean)
    return OfflineCheck(estimate, float(rates[greedy_arm]))
