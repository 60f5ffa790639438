"""The allocator's yardstick with delayed outcomes: evidence weighed as the product weighs it."""

from __future__ import annotations

import numpy as np
import pytest

from learn.allocate import SelectionMode
from learn.simulate import Delay, delayed_evidence, run_bandit

RATES = [0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10, 0.12]


def test_closed_windows_give_the_plain_counts() -> None:
    decided = np.array([0.0, 1.0, 2.0, 3.0])
    choices = np.array([0, 0, 1, 1])
    arrives = np.array([5.0, np.inf, 4.0, np.inf])
    a, b = delayed_evidence(["a", "b"], decided, choices, arrives, now=20.0, delay=Delay(10))
    assert (a.exposures, a.conversions) == (2, 1)
    assert (b.exposures, b.conversions) == (2, 1)


def test_an_open_window_counts_in_part_and_only_when_weighed() -> None:
    decided, choices, arrives = np.array([0.0, 5.0]), np.array([0, 0]), np.array([np.inf, np.inf])
    (weighed,) = delayed_evidence(["a"], decided, choices, arrives, now=10.0, delay=Delay(10))
    # the first window closed: one failure; the second is half way: about half a failure
    assert weighed.conversions == 0 and 1.3 < weighed.exposures < 1.7
    (matured,) = delayed_evidence(["a"], decided, choices, arrives, 10.0, Delay(10, weigh_pending=False))
    assert matured.exposures == 1


def test_weighing_open_windows_cuts_regret_against_closed_windows_only() -> None:
    def regret(weigh: bool, seed: int) -> float:
        delay = Delay(350, weigh_pending=weigh)
        return run_bandit(RATES, SelectionMode.BANDIT, 1_500, seed, refresh_every=50, delay=delay).regret

    seeds = range(1, 5)
    assert sum(regret(True, s) for s in seeds) < 0.85 * sum(regret(False, s) for s in seeds)


def test_a_delay_needs_a_window() -> None:
    with pytest.raises(ValueError, match="window must be >= 1"):
        Delay(0)
