"""Target policies for off-policy evaluation, applied to logged decisions.

Every logged decision carries its candidate set (the arms the guard allowed, in the brain's
order), the arm chosen and its propensity. A target policy says, for that same candidate set,
how likely it would have been to choose each arm; the estimators in `learn.ope` need the
probability it gives the logged arm, and (doubly robust) its expected reward under a reward model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np

from learn.allocate import probability_best
from learn.posterior import Posterior
from mca.errors import MCAError


class BadPolicyFile(MCAError):
    """A policy file that cannot be read as arm weights."""


class PolicyName(StrEnum):
    UNIFORM = "uniform"  # every allowed candidate alike
    GREEDY = "greedy"  # the candidate with the best posterior mean today
    THOMPSON = "thompson"  # today's posteriors, sampled: the probability each candidate is best
    FIRST = "first"  # the brain's first choice (the rules brain's top search result)


@dataclass(frozen=True)
class LoggedDecision:
    chosen: str
    propensity: float | None
    candidates: tuple[str, ...]
    reward: float


@dataclass(frozen=True)
class TargetPolicy:
    """A named policy, or arm weights read from a file (normalised among each candidate set)."""

    name: str
    weights: Mapping[str, float] | None = None

    def probabilities(
        self, candidates: Sequence[str], posteriors: Mapping[str, Posterior], rng: np.random.Generator
    ) -> np.ndarray:
        k = len(candidates)
        if self.weights is not None:
            raw = np.array([max(self.weights.get(arm, 0.0), 0.0) for arm in candidates])
            return raw / raw.sum() if raw.sum() > 0 else np.full(k, 1 / k)
        if self.name == PolicyName.UNIFORM:
            return np.full(k, 1 / k)
        if self.name == PolicyName.FIRST:
            return np.eye(k)[0]
        known = [posteriors[arm] for arm in candidates if arm in posteriors]
        if len(known) != k:  # an arm without statistics: nothing to prefer it by
            return np.full(k, 1 / k)
        if self.name == PolicyName.GREEDY:
            return np.eye(k)[int(np.argmax([p.mean for p in known]))]
        return probability_best(known, rng)


def policy_from(spec: str) -> TargetPolicy:
    """A built-in policy name, or a path to a JSON/YAML file of ``{arm: weight}``."""
    if spec in set(PolicyName):
        return TargetPolicy(spec)
    path = Path(spec)
    if not path.is_file():
        names = ", ".join(p.value for p in PolicyName)
        raise BadPolicyFile(f"--policy: {spec!r} is neither one of {names} nor a file")
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(path.read_text())
        else:
            data = json.loads(path.read_text())
    except (ValueError, OSError) as err:
        raise BadPolicyFile(f"--policy {spec}: not readable as JSON/YAML ({err})") from err
    if not isinstance(data, dict) or not data:
        raise BadPolicyFile(f"--policy {spec}: expected a mapping of arm to weight")
    weights: dict[str, float] = {}
    for arm, weight in data.items():
        if not isinstance(weight, int | float) or weight < 0:
            raise BadPolicyFile(f"--policy {spec}: {arm}: weight must be a number >= 0")
        weights[str(arm)] = float(weight)
    return TargetPolicy(path.stem, weights)


def evaluation_arrays(
    logs: Sequence[LoggedDecision],
    policy: TargetPolicy,
    posteriors: Mapping[str, Posterior],
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """The columns `learn.ope.evaluate` takes, with today's posterior means as the reward model."""
    n = len(logs)
    target = np.empty(n)
    model_reward = np.empty(n)
    model_value = np.empty(n)
    for i, row in enumerate(logs):
        probs = policy.probabilities(row.candidates, posteriors, rng)
        index = row.candidates.index(row.chosen) if row.chosen in row.candidates else -1
        target[i] = probs[index] if index >= 0 else 0.0
        means = np.array([posteriors[a].mean if a in posteriors else 0.0 for a in row.candidates])
        model_reward[i] = means[index] if index >= 0 else 0.0
        model_value[i] = float(probs @ means)
    return {
        "rewards": np.array([row.reward for row in logs], dtype=float),
        "logged_propensity": np.array(
            [np.nan if row.propensity is None else row.propensity for row in logs], dtype=float
        ),
        "target_probability": target,
        "model_reward": model_reward,
        "model_value": model_value,
    }
