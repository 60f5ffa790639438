"""The uplift statistics against textbook values and by simulation with a known true lift."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom, ttest_ind

from measure.assign import Shares
from measure.uplift import conversion_lift, mean_lift, report, sample_ratio


def test_newcombe_interval_matches_textbook() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, Table II example (b): 56/70 vs 48/80,
    # method 10 (score, no continuity correction): 0.0524 to 0.3339.
    lift = conversion_lift(56, 70, 48, 80)
    assert lift.absolute == pytest.approx(0.2)
    assert (lift.low, lift.high) == (pytest.approx(0.0524, abs=1e-4), pytest.approx(0.3339, abs=1e-4))
    assert lift.relative == pytest.approx(0.2 / 0.6)


def test_welch_interval_agrees_with_scipy_welch_t_test() -> None:
    a = np.array([19.1, 20.3, 21.7, 18.9, 22.4, 20.0])
    b = np.array([17.2, 18.8, 16.5, 19.9, 18.1, 17.0, 16.2, 18.4])
    lift = mean_lift(a, b)
    # An independent implementation: scipy's Welch t-test and its 95% interval.
    ci = ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert lift.absolute == pytest.approx(20.4 - 17.7625, abs=1e-9)
    assert (lift.low, lift.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert 0 < lift.low < lift.absolute < lift.high


def test_sample_ratio_mismatch_warns_and_balance_does_not() -> None:
    assert sample_ratio({"holdout": 50, "control": 95, "treatment": 855}, 0.05, 0.10)[1] is None
    p, warning = sample_ratio({"holdout": 50, "control": 300, "treatment": 650}, 0.05, 0.10)
    assert p is not None and p < 0.001 and warning is not None and "sample ratio mismatch" in warning


def _simulated(rng: np.random.Generator, n: int, p_c: float, lift: float) -> list[dict[str, object]]:
    groups = rng.choice(["holdout", "control", "treatment"], size=n, p=[0.05, 0.095, 0.855])
    p = np.where(groups == "treatment", p_c + lift, p_c)
    converted = rng.random(n) < p
    revenue = np.where(converted, rng.gamma(2.0, 25.0, n), 0.0)
    return [
        {
            "trigger_name": "t",
            "experiment_group": g,
            "converted": bool(c),
            "revenue": r,
            "cost": 0.5,
            "pending": False,
        }
        for g, c, r in zip(groups, converted, revenue, strict=True)
    ]


def test_interval_covers_true_lift_about_95_percent_and_is_unbiased() -> None:
    rng = np.random.default_rng(20261202)
    sims, true_lift, covered, estimates = 400, 0.03, 0, []
    for _ in range(sims):
        (row,) = report(_simulated(rng, 4000, 0.10, true_lift), shares=Shares())
        assert row.conversion_lift is not None
        covered += row.conversion_lift.low <= true_lift <= row.conversion_lift.high
        estimates.append(row.conversion_lift.absolute)
    # 95% nominal: the 0.1% lower tail of Binomial(400, 0.95) is the floor.
    assert covered >= binom.ppf(0.001, sims, 0.95)
    assert abs(np.mean(estimates) - true_lift) < 3 * np.std(estimates) / np.sqrt(sims)


def test_pending_rows_are_left_out_and_groups_split_by_brain() -> None:
    rows = [
        {
            "trigger_name": "t",
            "experiment_group": "treatment",
            "converted": True,
            "revenue": 10,
            "cost": 1,
            "brain": "rules",
            "pending": False,
        },
        {
            "trigger_name": "t",
            "experiment_group": "control",
            "converted": False,
            "revenue": 0,
            "cost": 0,
            "brain": "rules",
            "pending": False,
        },
        {
            "trigger_name": "t",
            "experiment_group": "treatment",
            "converted": False,
            "revenue": 0,
            "cost": 1,
            "brain": "llm",
            "pending": True,
        },
    ]
    (only,) = report(rows, by="brain", shares=Shares())
    assert (only.key, only.customers["treatment"], only.cost) == ("rules", 1, 1.0)
    assert only.conversion_rate == {"control": 0.0, "treatment": 1.0}
