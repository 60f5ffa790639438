"""Arm posteriors against textbook conjugate updates, and cold start borrowing from the parent."""

from __future__ import annotations

import numpy as np
import pytest

from learn.posterior import ArmStats, RewardModel, hierarchical_posteriors, posterior


def test_conversion_posterior_is_the_beta_update_of_its_prior() -> None:
    parent = ArmStats("*", 1_000, 100)  # prior mean 0.1 with 10 pseudo-exposures: Beta(1, 9)
    post = posterior(ArmStats("a", 50, 10), RewardModel.CONVERSION, parent, prior_strength=10)
    assert (post.first, post.second) == pytest.approx((1 + 10, 9 + 40))
    assert post.mean == pytest.approx(11 / 60)
    low, high = post.interval()
    assert low < post.mean < high


@pytest.mark.parametrize("level", [0.5, 0.9, 0.95])
def test_intervals_are_the_reference_quantiles(level: float) -> None:
    from scipy import stats

    beta = posterior(ArmStats("a", 37.5, 4), RewardModel.CONVERSION)
    assert beta.interval(level) == pytest.approx(stats.beta(beta.first, beta.second).interval(level))
    normal = posterior(ArmStats("b", 40, 0, 480.0, 7_000.0), RewardModel.NET_REVENUE)
    assert normal.interval(level) == pytest.approx(stats.norm(normal.first, normal.second).interval(level))


def test_a_new_arm_starts_from_its_parents_mean() -> None:
    goal_level = [ArmStats("stove", 400, 40), ArmStats("tent", 400, 8)]
    segment = [ArmStats("stove", 0), ArmStats("tent", 0), ArmStats("new", 0)]
    stove, tent, new = hierarchical_posteriors(segment, RewardModel.CONVERSION, [goal_level])
    assert stove.mean == pytest.approx(0.10)
    assert tent.mean == pytest.approx(0.02)
    assert new.mean == pytest.approx(48 / 800)  # nothing at the goal level: everything pooled


def test_net_revenue_posterior_concentrates_on_the_sample_mean() -> None:
    rng = np.random.default_rng(5)
    values = rng.normal(12.0, 4.0, 5_000)
    arm = ArmStats("a", len(values), 0, float(values.sum()), float((values**2).sum()))
    post = posterior(arm, RewardModel.NET_REVENUE)
    assert post.mean == pytest.approx(12.0, abs=0.2)
    assert post.second == pytest.approx(4.0 / np.sqrt(5_010), rel=0.1)


def test_impossible_counts_are_refused_naming_the_arm() -> None:
    with pytest.raises(ValueError, match="stove: conversions must be between 0 and exposures"):
        ArmStats("stove", 3, 4)
    with pytest.raises(ValueError, match="exposures must be >= 0"):
        ArmStats("stove", -1)
