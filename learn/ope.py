"""Off-policy evaluation: what another policy would have earned on the decisions mca logged.

A documented API over plain arrays, one row per logged decision, so anyone can check it against
another implementation:

- ``rewards[i]``: what decision *i* earned (converted 0/1, or net revenue);
- ``logged_propensity[i]``: the probability with which the logging policy chose the logged arm;
- ``target_probability[i]``: the probability the evaluated policy gives that same arm;
- optionally ``model_reward[i]``: a reward model's prediction for the logged arm, and
  ``model_value[i]``: that model's expected reward under the target policy (Σₐ π(a|xᵢ)·q̂(xᵢ,a)).

Estimators: inverse propensity scoring (IPS, unbiased when the logged propensities are right),
self-normalised IPS (a little bias, much less variance) and doubly robust (unbiased if either the
propensities or the reward model are right). Intervals are paired percentile bootstrap
intervals from ``scipy.stats.bootstrap`` (decisions resampled together with their columns); the
effective sample size says how many decisions the estimate is really worth after reweighting.

On small logs an estimate can be undefined: SNIPS when the target policy gives no logged arm any
probability (its weights sum to zero), an interval with fewer than ``MIN_INTERVAL_DECISIONS``
decisions. Those raise `NotEstimable` or come back as NaN with `Estimate.note` saying why; the
estimators never divide by zero or warn.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from mca.errors import MCAError

Array = NDArray[np.float64]
MIN_INTERVAL_DECISIONS = 10
# Resampled values held at once (resamples per batch × decisions).
_CHUNK = 4_000_000


class MissingPropensities(MCAError):
    """The logs cannot be evaluated off-policy: some decisions have no usable logged propensity."""


class NotEstimable(MCAError):
    """The logs say nothing about the target policy for this estimator (the message says why)."""


class Estimator(StrEnum):
    IPS = "ips"
    SNIPS = "snips"
    DOUBLY_ROBUST = "dr"


@dataclass(frozen=True)
class Estimate:
    estimator: Estimator
    value: float
    low: float
    high: float
    level: float
    effective_sample_size: float
    decisions: int
    note: str = ""  # why the interval is missing (NaN), when it is


def _column(name: str, values: ArrayLike, n: int | None) -> Array:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected one value per decision, got shape {array.shape}")
    if n is not None and len(array) != n:
        raise ValueError(f"{name}: {len(array)} values for {n} decisions")
    return array


def checked_propensities(logged_propensity: ArrayLike, n: int) -> Array:
    """The logged propensities, or MissingPropensities saying how many rows lack one and why."""
    p = _column("logged_propensity", logged_propensity, n)
    missing = int(np.isnan(p).sum())
    if missing:
        raise MissingPropensities(
            f"logged_propensity: {missing} of {n} decisions have none (they were made before "
            "propensities were logged, or in `model` mode); evaluate only decisions made in "
            "`bandit` or `explore` mode"
        )
    bad = int(((p <= 0) | (p > 1)).sum())
    if bad:
        raise MissingPropensities(f"logged_propensity: {bad} of {n} values are not in (0, 1]")
    return p


# Each statistic takes ``axis`` so scipy's bootstrap can evaluate every resample at once.
def ips(rewards: Array, weights: Array, *, axis: int = -1) -> Array:
    return np.asarray(np.mean(weights * rewards, axis=axis))


def snips(rewards: Array, weights: Array, *, axis: int = -1) -> Array:
    """NaN where the weights sum to zero (a resample with no decision the target could make)."""
    total = np.sum(weights, axis=axis)
    weighted = np.sum(weights * rewards, axis=axis)
    return np.asarray(np.divide(weighted, total, out=np.full_like(total, np.nan), where=total > 0))


def doubly_robust(
    rewards: Array, weights: Array, model_reward: Array, model_value: Array, *, axis: int = -1
) -> Array:
    return np.asarray(np.mean(model_value + weights * (rewards - model_reward), axis=axis))


def effective_sample_size(weights: Array) -> float:
    square_sum = float(np.sum(weights * weights))
    return float(np.sum(weights) ** 2 / square_sum) if square_sum > 0 else 0.0


def evaluate(
    estimator: Estimator,
    rewards: ArrayLike,
    logged_propensity: ArrayLike,
    target_probability: ArrayLike,
    model_reward: ArrayLike | None = None,
    model_value: ArrayLike | None = None,
    *,
    level: float = 0.95,
    resamples: int = 1_000,
    rng: np.random.Generator | None = None,
) -> Estimate:
    """The target policy's estimated value per decision, with a paired bootstrap interval."""
    r = _column("rewards", rewards, None)
    n = len(r)
    if n == 0:
        raise ValueError("rewards: no decisions to evaluate")
    p = checked_propensities(logged_propensity, n)
    pi = _column("target_probability", target_probability, n)
    if ((pi < 0) | (pi > 1)).any():
        raise ValueError("target_probability: values must be in [0, 1]")
    w = pi / p
    columns: list[Array] = [r, w]
    statistic: Callable[..., Array]
    if estimator is Estimator.DOUBLY_ROBUST:
        if model_reward is None or model_value is None:
            raise ValueError("doubly robust needs model_reward and model_value")
        columns += [_column("model_reward", model_reward, n), _column("model_value", model_value, n)]
        statistic = doubly_robust
    else:
        statistic = ips if estimator is Estimator.IPS else snips
    if statistic is snips and not np.sum(w) > 0:
        raise NotEstimable(
            f"the target policy gives probability 0 to the arm logged in each of the {n} "
            "decisions, so they say nothing about it; log more decisions, or under a policy "
            "that explores its arms"
        )
    value = float(statistic(*columns))
    if n < MIN_INTERVAL_DECISIONS:
        note = f"no interval from {n} decisions (at least {MIN_INTERVAL_DECISIONS})"
        return Estimate(estimator, value, np.nan, np.nan, level, effective_sample_size(w), n, note)
    low, high = _bootstrap(statistic, columns, level, resamples, rng or np.random.default_rng(0))
    note = "" if np.isfinite(low) else "no interval: some resamples leave the estimate undefined"
    return Estimate(estimator, value, low, high, level, effective_sample_size(w), n, note)


def _bootstrap(
    statistic: Callable[..., Array],
    columns: list[Array],
    level: float,
    resamples: int,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """scipy's paired percentile bootstrap. A log so small that some resamples leave the
    estimate undefined (NaN: SNIPS with no weight) gets no interval rather than a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap(
            tuple(columns),
            statistic,
            paired=True,
            vectorized=True,
            n_resamples=resamples,
            batch=max(1, _CHUNK // len(columns[0])),
            confidence_level=level,
            method="percentile",
            random_state=rng,
        )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)
