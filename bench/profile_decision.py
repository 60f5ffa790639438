"""Where one rules-brain decision spends its time: SQL round trips and wall-time spans.

    .venv/bin/python bench/profile_decision.py --jobs 300            # counts and spans
    .venv/bin/python bench/profile_decision.py --selection bandit    # the allocator's path
    py-spy record -o /tmp/agent.txt -f raw -- .venv/bin/python bench/profile_decision.py --jobs 600

Queues `--jobs` post-purchase jobs (as bench_agent's throughput does) on a world seeded once
into the benchmark server (database `profile_decision`), then one worker drains them one at a
time. Every statement a client sends (cursor executes and the transaction's BEGIN/COMMIT) is
counted by its first words; the figures are per decision, over the jobs after the warm-up.
Not a benchmark with a floor: a map of the decision path, to choose what to cut.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import psycopg
from psycopg._connection_base import BaseConnection

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_agent import enqueue_jobs, percentile, world

from agent.providers.rules import RulesModel
from agent.runtime import agent_runtime

COUNTS: collections.Counter[str] = collections.Counter()
SPENT: collections.Counter[str] = collections.Counter()


def _label(query: Any) -> str:
    text = " ".join(str(getattr(query, "as_string", lambda: query)() if not isinstance(query, str)
                        else query).split())  # fmt: skip
    return text[:90]


def count_statements() -> None:
    """Wrap psycopg's cursor execute and the transaction commands to count what is sent."""
    original_execute = psycopg.AsyncCursor.execute

    async def execute(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original_execute(self, query, params, **kw)
        finally:
            label = _label(query)
            COUNTS[label] += 1
            SPENT[label] += time.perf_counter() - started

    psycopg.AsyncCursor.execute = execute  # type: ignore[method-assign]
    original_command = BaseConnection._exec_command

    def command(self: Any, cmd: Any, *args: Any, **kw: Any) -> Generator[Any, Any, Any]:
        COUNTS[_label(cmd if isinstance(cmd, str) else bytes(cmd).decode())] += 1
        return (yield from original_command(self, cmd, *args, **kw))

    BaseConnection._exec_command = command  # type: ignore[method-assign]


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings, stores = world(args.users, args.events, Path(tmp), database="profile_decision")
        await enqueue_jobs(stores, args.users, args.jobs, args.selection)
        count_statements()
        async with agent_runtime(settings, stores, workers=1, model=RulesModel()) as agents:
            worker = agents.workers[0]
            for _ in range(args.warm_up):
                await worker.run_one()
            COUNTS.clear()
            SPENT.clear()
            samples: list[float] = []
            tools: collections.Counter[str] = collections.Counter()
            began, cpu = time.perf_counter(), time.process_time()
            while True:
                started = time.perf_counter()
                record = await worker.run_one()
                if record is None:
                    break
                samples.append((time.perf_counter() - started) * 1000)
                for step in record.transcript.steps:
                    if step.tool_name:
                        tools[step.tool_name] += step.latency_ms or 0
            wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    n = len(samples)
    print(f"{n} decisions in {wall:.2f} s: {n / wall:.0f}/s; per decision p50 "
          f"{sorted(samples)[n // 2]:.2f} ms p99 {percentile(samples, 0.99):.2f} ms; "
          f"this process's CPU {cpu * 1000 / n:.2f} ms per decision (not the server's)")  # fmt: skip
    total = sum(COUNTS.values())
    print(f"statements per decision: {total / n:.1f}; their wall time "
          f"{sum(SPENT.values()) * 1000 / n:.2f} ms per decision")  # fmt: skip
    for label, count in COUNTS.most_common():
        print(f"  {count / n:5.2f} x {SPENT[label] * 1000 / count:6.3f} ms  {label}")
    print("tool call wall time per decision (ms):")
    for name, ms in tools.most_common():
        print(f"  {ms / n:6.2f}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--warm-up", type=int, default=30)
    parser.add_argument("--selection", choices=["model", "bandit", "explore"], default="model",
                        help="the jobs' selection mode (the triggers file's `selection:`)")  # fmt: skip
    args = parser.parse_args()
    if args.jobs <= args.warm_up:
        parser.error(
            f"--jobs ({args.jobs}) must exceed --warm-up ({args.warm_up}): nothing would be measured"
        )
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
