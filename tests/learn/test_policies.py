"""Target policies over logged candidate sets, and the doubly robust estimate of the greedy policy
recovering its true simulated value from logs collected under `explore` and under `bandit`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from learn.allocate import SelectionMode
from learn.offline import check_greedy
from learn.policies import BadPolicyFile, PolicyName, TargetPolicy, policy_from
from learn.posterior import ArmStats, RewardModel, posterior
from learn.simulate import run_bandit

RATES = [0.02, 0.04, 0.06, 0.08, 0.10, 0.12]


def test_named_policies_give_distributions_over_the_logged_candidates() -> None:
    posts = {a: posterior(ArmStats(a, 1_000, w), RewardModel.CONVERSION) for a, w in (("x", 10), ("y", 90))}
    rng = np.random.default_rng(0)
    candidates = ("x", "y")
    assert TargetPolicy(PolicyName.UNIFORM).probabilities(candidates, posts, rng).tolist() == [0.5, 0.5]
    assert TargetPolicy(PolicyName.FIRST).probabilities(candidates, posts, rng).tolist() == [1.0, 0.0]
    assert TargetPolicy(PolicyName.GREEDY).probabilities(candidates, posts, rng).tolist() == [0.0, 1.0]
    thompson = TargetPolicy(PolicyName.THOMPSON).probabilities(candidates, posts, rng)
    assert thompson[1] > 0.99


def test_a_policy_file_is_arm_weights_and_bad_ones_are_refused(tmp_path: Path) -> None:
    good = tmp_path / "prefer_y.json"
    good.write_text(json.dumps({"x": 1, "y": 3}))
    policy = policy_from(str(good))
    assert policy.probabilities(("x", "y"), {}, np.random.default_rng(0)).tolist() == [0.25, 0.75]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"x": -1}))
    with pytest.raises(BadPolicyFile, match="x: weight must be a number >= 0"):
        policy_from(str(bad))
    with pytest.raises(BadPolicyFile, match="neither one of uniform, greedy, thompson, first nor a file"):
        policy_from("nonsense")


@pytest.mark.parametrize("mode", [SelectionMode.EXPLORE, SelectionMode.BANDIT])
def test_doubly_robust_recovers_the_greedy_policys_true_value(mode: SelectionMode) -> None:
    checks = [check_greedy(run_bandit(RATES, mode, 4_000, seed), RATES, seed) for seed in range(4)]
    errors = sorted(c.relative_error for c in checks)
    assert np.median(errors) < 0.25, errors
    assert sum(c.covered for c in checks) >= 3
