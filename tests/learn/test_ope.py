"""Off-policy estimators by simulation with known truth: logs collected under a known policy,
a target policy whose true value the simulator knows; bias near zero and intervals that cover."""

from __future__ import annotations

import numpy as np
import pytest

from learn.ope import Estimator, MissingPropensities, effective_sample_size, evaluate

RATES = np.array([0.05, 0.10, 0.20, 0.08])


def _logs(seed: int, n: int) -> tuple[np.ndarray, ...]:
    """Logged under a skewed random policy; the target is greedy on the best arm (value 0.20)."""
    rng = np.random.default_rng(seed)
    logging = np.array([0.4, 0.3, 0.1, 0.2])
    actions = rng.choice(4, size=n, p=logging)
    rewards = (rng.random(n) < RATES[actions]).astype(float)
    target = (actions == 2).astype(float)
    # A deliberately wrong reward model: DR must still be unbiased because propensities are right.
    q_hat = np.full(4, 0.12)
    return rewards, logging[actions], target, q_hat[actions], np.full(n, q_hat[2])


@pytest.mark.parametrize("estimator", list(Estimator))
def test_estimates_are_unbiased_and_intervals_cover_the_true_value(estimator: Estimator) -> None:
    truth = RATES[2]
    values, covered = [], 0
    sims = 120
    for seed in range(sims):
        r, p, pi, mr, mv = _logs(seed, 2_000)
        est = evaluate(estimator, r, p, pi, mr, mv, resamples=400, rng=np.random.default_rng(seed))
        values.append(est.value)
        covered += est.low <= truth <= est.high
    standard_error = np.std(values) / np.sqrt(sims)
    assert abs(np.mean(values) - truth) < 4 * standard_error + 0.002
    # 95% nominal; with 120 simulations, fewer than 102 covers would be a real shortfall (p < 0.01).
    assert covered >= 102, f"{estimator}: {covered}/{sims}"


def test_missing_propensities_are_refused_with_a_clear_message() -> None:
    with pytest.raises(MissingPropensities, match="logged_propensity: 1 of 3 decisions have none"):
        evaluate(Estimator.IPS, [1, 0, 1], [0.5, float("nan"), 0.5], [1, 1, 0])
    with pytest.raises(MissingPropensities, match="not in \\(0, 1\\]"):
        evaluate(Estimator.IPS, [1, 0], [0.0, 0.5], [1, 1])
    with pytest.raises(ValueError, match="target_probability: 1 values for 2 decisions"):
        evaluate(Estimator.IPS, [1, 0], [0.5, 0.5], [1])


def test_effective_sample_size_counts_reweighted_decisions() -> None:
    assert effective_sample_size(np.ones(100)) == pytest.approx(100)
    assert effective_sample_size(np.array([10.0] + [0.0] * 99)) == pytest.approx(1)


def test_small_or_degenerate_logs_raise_or_note_instead_of_warning() -> None:
    import warnings

    from learn.ope import NotEstimable

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(NotEstimable, match="probability 0 to the arm logged in each of the 12"):
            evaluate(Estimator.SNIPS, [1, 0] * 6, [0.5] * 12, [0.0] * 12)
        few = evaluate(Estimator.IPS, [1, 0, 1], [0.5] * 3, [1, 0, 1])
        assert few.value == pytest.approx(4 / 3) and np.isnan(few.low) and "3 decisions" in few.note
        # Most resamples of one weighted decision in twelve have no weight at all: SNIPS is
        # undefined there, left out, and the interval comes from the rest or is missing.
        rare = evaluate(Estimator.SNIPS, [1, 0] * 6, [0.5] * 12, [0.0] * 11 + [1.0])
        assert rare.value == 0.0 and (np.isnan(rare.low) or rare.low <= rare.value <= rare.high)
