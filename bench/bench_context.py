"""Latency of reading one random user's `unified_context` (what the agent reads per job).

    .venv/bin/python bench/bench_context.py                       # 100,000 users / 1,000,000 events
    .venv/bin/python bench/bench_context.py --users 10000 --events 100000 --lookups 2000

The world is seeded once into the benchmark server (.mca-bench/) and reused. Lookups go
through ``mca.context.load_context`` on one async connection, as the agent worker does;
the figure includes the round trip and JSON decoding. Prints p50/p99 and EXPLAIN ANALYZE of one lookup.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_seed import ensure_world

from mca.context import CONTEXT_SQL, load_context
from mca.db import connect_async
from mca.seed.world import user_id_of


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(url: str, users: int, lookups: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    conn = await connect_async(url, autocommit=True)
    try:
        for _ in range(200):  # warm the cache and psycopg's prepared statement
            await load_context(conn, user_id_of(rng.randrange(users)))
        samples: list[float] = []
        for _ in range(lookups):
            user = user_id_of(rng.randrange(users))
            started = time.perf_counter()
            context = await load_context(conn, user)
            samples.append((time.perf_counter() - started) * 1000)
            assert context is not None and context["user_id"] == user
        cur = await conn.execute(
            "EXPLAIN (ANALYZE, BUFFERS) " + CONTEXT_SQL, (user_id_of(rng.randrange(users)),)
        )
        plan = "\n".join(str(next(iter(row.values()))) for row in await cur.fetchall())
    finally:
        await conn.close()
    print(plan)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    url = ensure_world(args.users, args.events, args.seed)
    samples = asyncio.run(measure(url, args.users, args.lookups, args.seed))
    print(
        f"unified_context, one random user ({args.events:,} events / {args.users:,} users, "
        f"{args.lookups:,} lookups): p50 {statistics.median(samples):.3f} ms, "
        f"p99 {percentile(samples, 0.99):.3f} ms, max {max(samples):.3f} ms (target p99 <= 2 ms)"
    )


if __name__ == "__main__":
    main()
