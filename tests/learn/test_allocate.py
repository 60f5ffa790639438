"""The allocator picks only among allowed candidates, with the probability it logs, and learns:
checked against a bandit whose true arm probabilities are known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from learn.allocate import SelectionMode, allocate, with_floor
from learn.posterior import ArmStats, RewardModel, posterior
from learn.simulate import run_bandit

RATES = [0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10, 0.12]


def _posteriors(counts: list[tuple[int, int]]) -> list:  # type: ignore[type-arg]
    return [posterior(ArmStats(f"a{i}", n, w), RewardModel.CONVERSION) for i, (n, w) in enumerate(counts)]


def test_the_logged_propensity_is_the_frequency_of_the_choice() -> None:
    rng = np.random.default_rng(7)
    candidates = ["a0", "a1", "a2"]
    posts = _posteriors([(100, 5), (100, 8), (100, 6)])
    picks = [allocate(candidates, SelectionMode.BANDIT, posts, rng=rng, floor=0.05) for _ in range(3000)]
    counts = np.array([sum(p.chosen == c for p in picks) for c in candidates])
    # Every pick draws from (almost) the same distribution: its mean is what the logs claim.
    expected = np.array([np.mean([p.probabilities[i] for p in picks]) for i in range(3)]) * len(picks)
    assert stats.chisquare(counts, expected).pvalue > 0.001
    for pick in picks:
        assert pick.propensity == pick.probabilities[candidates.index(pick.chosen)]


def test_the_floor_keeps_every_allowed_candidate_reachable() -> None:
    rng = np.random.default_rng(1)
    posts = _posteriors([(10_000, 9_000), (10_000, 10), (10_000, 20)])
    pick = allocate(["a0", "a1", "a2"], SelectionMode.BANDIT, posts, rng=rng, floor=0.05)
    assert min(pick.probabilities) >= 0.05 - 1e-12
    assert pytest.approx(sum(pick.probabilities)) == 1.0
    assert pick.probability_best[0] > 0.99


def test_only_candidates_can_be_chosen_and_model_mode_keeps_the_first() -> None:
    rng = np.random.default_rng(3)
    posts = _posteriors([(50, 1), (50, 40)])
    for _ in range(200):
        assert allocate(["a0", "a1"], SelectionMode.BANDIT, posts, rng=rng).chosen in {"a0", "a1"}
    model = allocate(["a0", "a1"], SelectionMode.MODEL, posts, rng=rng)
    assert (model.chosen, model.propensity) == ("a0", 1.0)
    explore = allocate(["a0", "a1"], SelectionMode.EXPLORE, posts, rng=rng)
    assert explore.propensity == 0.5


def test_bad_candidate_sets_are_refused() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="no allowed candidates"):
        allocate([], SelectionMode.EXPLORE, rng=rng)
    with pytest.raises(ValueError, match="distinct"):
        allocate(["a", "a"], SelectionMode.EXPLORE, rng=rng)
    with pytest.raises(ValueError, match="one posterior per candidate"):
        allocate(["a", "b"], SelectionMode.BANDIT, _posteriors([(1, 0)]), rng=rng)


def test_with_floor_is_a_distribution() -> None:
    mixed = with_floor(np.array([1.0, 0.0, 0.0, 0.0]), 0.1)
    assert mixed.tolist() == pytest.approx([0.7, 0.1, 0.1, 0.1])


def test_the_bandit_has_far_less_regret_than_uniform_exploration() -> None:
    seeds = range(3)
    bandit = [run_bandit(RATES, SelectionMode.BANDIT, 3_000, s).regret for s in seeds]
    explore = [run_bandit(RATES, SelectionMode.EXPLORE, 3_000, s).regret for s in seeds]
    assert np.mean(bandit) < 0.5 * np.mean(explore)
