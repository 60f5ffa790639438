"""The allocation step: cumulative regret of `bandit` against `explore` and `model` on a bandit
with known arm probabilities (10 arms, 5,000 decisions, 10 seeds), and what one allocation costs
beside its floor (a uniform draw among the same candidates: `explore`).

Regret is printed twice more with the product's feedback delay: a refresh per simulated day of
250 decisions and outcomes arriving uniformly inside a 7-day window, first with the evidence
weighed as the allocator weighs it (open windows in part), then from closed windows only.

    .venv/bin/python bench/bench_learn.py [--decisions 5000] [--seeds 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import Comparison, interleaved, print_table, record

from learn.allocate import SelectionMode, allocate
from learn.offline import check_greedy
from learn.posterior import ArmStats, RewardModel, posterior
from learn.simulate import Delay, run_bandit

DAY = 250  # decisions per simulated day, one refresh each
WINDOW_DAYS = 7
RATES = [0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10, 0.12]
# The brain's first choice in `model` mode: a plausible but not the best arm (search rank 1).
MODEL_ARM_RATE_INDEX = 6


def regret_table(decisions: int, seeds: int, delay: Delay | None = None) -> None:
    model_order = [MODEL_ARM_RATE_INDEX] + [i for i in range(len(RATES)) if i != MODEL_ARM_RATE_INDEX]
    model_rates = [RATES[i] for i in model_order]
    rows = []
    for mode, rates in (
        (SelectionMode.EXPLORE, RATES),
        (SelectionMode.MODEL, model_rates),
        (SelectionMode.BANDIT, RATES),
    ):
        runs = [
            run_bandit(rates, mode, decisions, seed, refresh_every=DAY if delay else 20, delay=delay)
            for seed in range(seeds)
        ]
        rows.append((mode.value, [r.regret for r in runs], [r.conversions for r in runs]))
    explore = statistics.median(rows[0][1])
    feedback = "outcomes known at the next refresh (every 20 decisions)"
    if delay is not None:
        evidence = "open windows weighed in part" if delay.weigh_pending else "closed windows only"
        feedback = f"a refresh a day of {DAY}, outcomes inside a {WINDOW_DAYS}-day window, {evidence}"
    print(f"\nregret against the oracle, {len(RATES)} arms, {decisions} decisions, {seeds} seeds (median)")
    print(f"feedback: {feedback}")
    print("| mode | regret (expected conversions lost) | share of explore's | conversions |")
    print("|---|---|---|---|")
    for name, regrets, conversions in rows:
        median = statistics.median(regrets)
        print(f"| {name} | {median:.1f} | {median / explore:.0%} | {statistics.median(conversions):.0f} |")


def evaluation_table(decisions: int, seeds: int) -> None:
    print(
        f"\ndoubly robust estimate of the greedy policy's value, {decisions} logged decisions, {seeds} seeds"
    )
    print("| logs collected under | median relative error | 95% interval covers the truth |")
    print("|---|---|---|")
    for mode in (SelectionMode.EXPLORE, SelectionMode.BANDIT):
        checks = [check_greedy(run_bandit(RATES, mode, decisions, s), RATES, s) for s in range(seeds)]
        error = statistics.median(c.relative_error for c in checks)
        print(f"| {mode.value} | {error:.1%} | {sum(c.covered for c in checks)}/{seeds} |")


def cost_table() -> None:
    rng = np.random.default_rng(0)
    arms = [f"arm{i}" for i in range(len(RATES))]
    posts = [
        posterior(ArmStats(a, 500, int(500 * r)), RewardModel.CONVERSION)
        for a, r in zip(arms, RATES, strict=True)
    ]
    samples = interleaved(
        {
            "bandit": lambda: allocate(arms, SelectionMode.BANDIT, posts, rng=rng),
            "explore": lambda: allocate(arms, SelectionMode.EXPLORE, rng=rng),
        },
        rounds=2_000,
    )
    rows = [
        Comparison("learn", "allocation p50, 10 candidates", samples["bandit"].median,
                   samples["explore"].median, "uniform draw"),
        Comparison("learn", "allocation p99, 10 candidates", samples["bandit"].p99,
                   samples["explore"].p99, "uniform draw"),
    ]  # fmt: skip
    print_table("one allocation (1,000 posterior draws per arm)", rows)
    record(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--decisions", type=int, default=5_000)
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    regret_table(args.decisions, args.seeds)
    for weigh in (True, False):
        regret_table(args.decisions, args.seeds, Delay(DAY * WINDOW_DAYS, weigh_pending=weigh))
    evaluation_table(args.decisions, args.seeds)
    cost_table()


if __name__ == "__main__":
    main()
