"""Coverage of the uplift report's 95% interval, over simulator seeds with a known true lift.

    .venv/bin/python bench/bench_coverage.py                       # 20 seeds, 1,000 customers, 12 days
    .venv/bin/python bench/bench_coverage.py --seeds 5 --customers 200 --days 8

Each seed is one `mca simulate` run (demo.simulate.run_simulation: synthetic customers through
the real product on the embedded benchmark server, .mca-bench/): the report's conversion lift
and its 95% interval (treatment minus control, intent to treat) beside the true lift the
simulator's hidden probabilities give. The issue's bar: the interval contains the true lift in
at least 18 of 20 seeds (a 95% interval misses about one in twenty; P(at least 18 of 20) = 0.92).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from scipy.stats import binom

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_seed import BENCH_DIR

from demo.simulate import SimulationConfig, run_simulation
from mca.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=12)
    parser.add_argument("--control", type=float, default=0.3)
    args = parser.parse_args()

    settings = Settings(data_dir=BENCH_DIR)
    print("| seed | customers t/c | true lift | estimate | 95% interval | covered | seconds |")
    print("|---|---|---|---|---|---|---|")
    covered = runs = 0
    for seed in range(1, args.seeds + 1):
        config = SimulationConfig(customers=args.customers, days=args.days, seed=seed, control=args.control)
        started = time.perf_counter()
        result = run_simulation(settings, config, lambda _line: None, progress=False)
        seconds = time.perf_counter() - started
        lift = getattr(result.uplift, "conversion_lift", None)
        truth = result.run.truth.itt_lift
        if lift is None:
            print(f"| {seed} | - | {truth:+.4f} | - | no closed exposures | - | {seconds:.0f} |")
            continue
        sizes = result.uplift.customers
        runs += 1
        covered += bool(result.covered)
        print(
            f"| {seed} | {sizes.get('treatment', 0)}/{sizes.get('control', 0)} | {truth:+.4f} |"
            f" {lift.absolute:+.4f} | {lift.low:+.4f} .. {lift.high:+.4f} |"
            f" {'yes' if result.covered else 'NO'} | {seconds:.0f} |"
        )
    chance = 1 - binom.cdf(17, 20, 0.95)
    print(f"\ncovered {covered} of {runs} seeds (bar: at least 18 of 20; a true 95% interval passes it "
          f"with probability {chance:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
