"""Choosing one arm among the candidates the guard allows, and saying with what probability.

The allocator never sees a candidate the guard's dry run refused: it is handed the allowed set
and can only pick from it, so learning never widens what the guard permits.

Thompson sampling is run as a *distribution*, not a single draw: the probability that each arm is
the best is estimated from ``draws`` joint posterior samples, an exploration floor is mixed in,
and the arm is then drawn from that distribution. The probability logged with the decision is
therefore exactly the probability with which the arm was chosen, which is what off-policy
evaluation needs (a single Thompson draw has a propensity nobody can state).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from learn.posterior import Posterior

DEFAULT_DRAWS = 1_000
# Per candidate: with 10 candidates, 2% of traffic explores uniformly. Higher floors make the logs
# cheaper to evaluate (smaller importance weights) and cost regret (bench/bench_learn.py).
DEFAULT_FLOOR = 0.002


class SelectionMode(StrEnum):
    """Per trigger, in the triggers file."""

    MODEL = "model"  # the brain's first choice, as before learning existed
    BANDIT = "bandit"  # Thompson sampling among the brain's allowed candidates
    EXPLORE = "explore"  # uniform among the allowed candidates: a randomised start


@dataclass(frozen=True)
class Allocation:
    """One choice and the distribution it was drawn from (aligned with ``candidates``)."""

    chosen: str
    propensity: float
    candidates: tuple[str, ...]
    probabilities: tuple[float, ...]
    probability_best: tuple[float, ...]
    mode: SelectionMode

    def as_log(self) -> dict[str, object]:
        """What the decision record and the action event carry."""
        return {
            "mode": self.mode.value,
            "chosen": self.chosen,
            "propensity": self.propensity,
            "candidates": [
                {"arm": arm, "probability": p, "probability_best": best}
                for arm, p, best in zip(
                    self.candidates, self.probabilities, self.probability_best, strict=True
                )
            ],
        }


def probability_best(
    posteriors: Sequence[Posterior], rng: np.random.Generator, draws: int = DEFAULT_DRAWS
) -> NDArray[np.float64]:
    """P(arm is the best) under the joint posterior, by Monte Carlo (ties split evenly)."""
    if not posteriors:
        raise ValueError("no candidates")
    samples = np.stack([p.sample(rng, draws) for p in posteriors])  # arms × draws
    best = samples.max(axis=0)
    winners = samples == best
    share = winners / winners.sum(axis=0)
    return np.asarray(share.mean(axis=1), dtype=np.float64)


def with_floor(probabilities: NDArray[np.float64], floor: float) -> NDArray[np.float64]:
    """Mix in uniform mass so every candidate keeps at least ``floor`` (when floor·k ≤ 1)."""
    k = len(probabilities)
    if not 0 <= floor <= 1 / k:
        floor = 1 / k if floor > 1 / k else 0.0
    mixed = floor + (1 - k * floor) * probabilities
    return np.asarray(mixed / mixed.sum(), dtype=np.float64)


def allocate(
    candidates: Sequence[str],
    mode: SelectionMode,
    posteriors: Sequence[Posterior] | None = None,
    *,
    rng: np.random.Generator,
    floor: float = DEFAULT_FLOOR,
    draws: int = DEFAULT_DRAWS,
) -> Allocation:
    """Pick one of ``candidates`` (already filtered by the guard, in the brain's order).

    ``posteriors`` is aligned with ``candidates`` and needed only in bandit mode.
    """
    if not candidates:
        raise ValueError("no allowed candidates to choose from")
    if len(set(candidates)) != len(candidates):
        raise ValueError("candidates must be distinct")
    k = len(candidates)
    if mode is SelectionMode.MODEL:
        probs = np.zeros(k)
        probs[0] = 1.0
        best = probs.copy()
    elif mode is SelectionMode.EXPLORE:
        probs = np.full(k, 1 / k)
        best = probs.copy() if posteriors is None else probability_best(posteriors, rng, draws)
    else:
        if posteriors is None or len(posteriors) != k:
            raise ValueError("bandit mode needs one posterior per candidate")
        best = probability_best(posteriors, rng, draws)
        probs = with_floor(best, floor)
    index = int(rng.choice(k, p=probs))
    return Allocation(
        chosen=candidates[index],
        propensity=float(probs[index]),
        candidates=tuple(candidates),
        probabilities=tuple(float(p) for p in probs),
        probability_best=tuple(float(b) for b in best),
        mode=mode,
    )
