"""Figures printed beside their floors, measured in the same run, and the ratio between them.

A benchmark on a shared 2-core machine moves with the machine's load; its floor (the
cheapest thing that does the same job: `SELECT 1`, a primary-key read, `COPY`) moves with
it, so the ratio is the comparable number. Benchmarks build `Comparison` rows, print them
with `print_table`, and `record` them; `make bench` points ``MCA_BENCH_SUMMARY`` at a file
and ends with ``python bench/report.py FILE``, one table across every benchmark.

    from report import Comparison, Samples, print_table, record
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

SUMMARY_ENV = "MCA_BENCH_SUMMARY"


@dataclass(frozen=True)
class Samples:
    """Latencies in milliseconds."""

    values: list[float]

    def quantile(self, q: float) -> float:
        ordered = sorted(self.values)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)


def interleaved(calls: dict[str, Callable[[], object]], rounds: int) -> dict[str, Samples]:
    """Time each call `rounds` times, taking turns, so a load spike hits all of them alike."""
    timings: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            timings[name].append((time.perf_counter() - started) * 1000)
    return {name: Samples(values) for name, values in timings.items()}


@dataclass(frozen=True)
class Comparison:
    """One figure beside its floor. `unit` names both; lower is better unless `higher_is_better`."""

    bench: str
    path: str
    figure: float
    floor: float
    floor_name: str
    unit: str = "ms"
    higher_is_better: bool = False

    @property
    def ratio(self) -> float:
        """How many floors the figure costs (>= 1 means slower than the floor)."""
        if self.higher_is_better:
            return self.floor / self.figure if self.figure else float("inf")
        return self.figure / self.floor if self.floor else float("inf")


def _fmt(value: float) -> str:
    return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"


def table(rows: Sequence[Comparison], *, with_bench: bool = False) -> str:
    header = (["bench"] if with_bench else []) + ["path", "figure", "floor", "ratio"]
    body = [
        ([r.bench] if with_bench else [])
        + [
            r.path,
            f"{_fmt(r.figure)} {r.unit}",
            f"{_fmt(r.floor)} {r.unit} ({r.floor_name})",
            f"{r.ratio:.2f}×",
        ]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(cells) for cells in body)])


def print_table(title: str, rows: Sequence[Comparison]) -> None:
    print(f"\n{title}\n{table(rows)}")


def record(rows: Sequence[Comparison]) -> None:
    """Append the rows to the summary file named by MCA_BENCH_SUMMARY, when it is set."""
    target = os.environ.get(SUMMARY_ENV)
    if not target:
        return
    with Path(target).open("a") as out:
        for row in rows:
            out.write(json.dumps(asdict(row)) + "\n")


def load(path: Path) -> list[Comparison]:
    if not path.exists():
        return []
    return [Comparison(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python bench/report.py SUMMARY_FILE")
    rows = load(Path(argv[0]))
    if not rows:
        print("no benchmark recorded a figure beside its floor")
        return
    print(
        f"\nSummary: each figure beside its floor, measured in the same run\n{table(rows, with_bench=True)}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
