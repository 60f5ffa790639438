"""Latency of reading one user's `unified_context` (what the agent reads per job), beside its floors.

    .venv/bin/python bench/bench_context.py                       # 100,000 users / 1,000,000 events
    .venv/bin/python bench/bench_context.py --users 10000 --events 100000 --lookups 2000
    .venv/bin/python bench/bench_context.py --heavy 3             # plus 3 customers with 200k recent events
    .venv/bin/python bench/bench_context.py --scaling-only        # one customer at 10 ... 100k events

The world is seeded once into the benchmark server (.mca-bench/) and reused; a world with
heavy customers is a copy of it. Lookups go through ``state.context.load_context`` on one
async connection, as the agent worker does (round trip and JSON decoding included), taking
turns with the floors on the same connection: ``SELECT 1`` (a round trip) and a primary-key
read of the same user's context precomputed into a table (what a maintained row costs).
The scaling table reads one customer with 10, 100, 1k, 10k and 100k events (spread over 90
days) in a database of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_seed import bench_database, ensure_world
from report import Comparison, Samples, print_table, record

from demo.seed.world import user_id_of
from mca.db import connect, connect_async
from state.context import CONTEXT_SQL, load_context

FLOOR_TABLE = "bench_context_floor"
FLOOR_SQL = f"SELECT context FROM {FLOOR_TABLE} WHERE user_id = %s"
SCALING_SIZES = (10, 100, 1_000, 10_000, 100_000)
EVENT_COLUMNS = ("event_id", "user_id", "event_type", "ts", "value", "points", "sku", "properties")
Read = Callable[[psycopg.AsyncConnection[Any], str], Awaitable[object]]


def history(user_id: str, events: int, span: timedelta) -> list[tuple[Any, ...]]:
    """A believable history for one customer, its events spread evenly over `span`."""
    now = datetime.now(UTC)
    kinds = ("session_start", "page", "purchase", "points_earned", "page", "churn_scored", "identify")
    rows = []
    for n in range(events):
        kind = kinds[n % len(kinds)]
        properties: dict[str, object] = {"score": (n % 100) / 100} if kind == "churn_scored" else {}
        if kind == "identify":
            properties = {"first_name": "Heavy", "tier": "gold", "consent_sms": True, "phone": "+15550100"}
        rows.append((
            f"{user_id}-{n}", user_id, kind, now - span * (n / events),
            19.99 if kind == "purchase" else None, 10 if kind in ("purchase", "points_earned") else None,
            "SKU-1" if kind == "purchase" else None, Jsonb(properties),
        ))  # fmt: skip
    return rows


def add_customer(url: str, user_id: str, events: int, span: timedelta) -> None:
    with connect(url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM events WHERE user_id = %s LIMIT 1", (user_id,)).fetchone():
            return
        with conn.cursor().copy(f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
            for row in history(user_id, events, span):
                copy.write_row(row)
        conn.execute("ANALYZE events")


def heavy_world(world_url: str, heavy: int, heavy_events: int) -> str:
    """A copy of the world plus `heavy` customers with `heavy_events` events in the last 7 days."""
    name = world_url.rsplit("/", 1)[1].split("?")[0]
    copy_name = f"{name}_heavy{heavy}x{heavy_events}"
    admin = world_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (copy_name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{copy_name}" TEMPLATE "{name}"')
    url = bench_database(copy_name, fresh=False)
    for n in range(heavy):
        add_customer(url, f"heavy-{n}", heavy_events, timedelta(days=6))
    return url


def prepare_floor(url: str, users: list[str]) -> None:
    """The same users' context, precomputed into a table with a primary key."""
    with connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        conn.execute(
            f"CREATE TABLE {FLOOR_TABLE} AS SELECT user_id, context FROM unified_context "
            "WHERE user_id = ANY(%s)",
            (users,),
        )
        conn.execute(f"ALTER TABLE {FLOOR_TABLE} ADD PRIMARY KEY (user_id)")
        conn.execute(f"ANALYZE {FLOOR_TABLE}")


async def select_one(conn: psycopg.AsyncConnection[Any], _user: str) -> object:
    return await (await conn.execute("SELECT 1")).fetchone()


async def floor_read(conn: psycopg.AsyncConnection[Any], user: str) -> object:
    row = await (await conn.execute(FLOOR_SQL, (user,))).fetchone()
    assert row is not None, user
    return row


async def context_read(conn: psycopg.AsyncConnection[Any], user: str) -> object:
    context = await load_context(conn, user)
    assert context is not None and context["user_id"] == user
    return context


async def take_turns(
    url: str, users: list[str], reads: dict[str, Read], warmup: int = 200
) -> dict[str, Samples]:
    """Each read for each user in turn on one connection (the floors ride the same load)."""
    conn = await connect_async(url, autocommit=True)
    timings: dict[str, list[float]] = {name: [] for name in reads}
    loop = asyncio.get_running_loop()
    try:
        for n, user in enumerate(users[:warmup] + users):
            for name, read in reads.items():
                started = loop.time()
                await read(conn, user)
                if n >= warmup:
                    timings[name].append((loop.time() - started) * 1000)
    finally:
        await conn.close()
    return {name: Samples(values) for name, values in timings.items()}


def explain(url: str, user: str) -> str:
    with connect(url, autocommit=True) as conn:
        rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + CONTEXT_SQL, (user,)).fetchall()
    return "\n".join(str(next(iter(row.values()))) for row in rows)


def random_users(users: int, lookups: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [user_id_of(rng.randrange(users)) for _ in range(lookups)]


def world_comparisons(label: str, url: str, users: list[str]) -> list[Comparison]:
    prepare_floor(url, sorted(set(users)))
    reads: dict[str, Read] = {"context": context_read, "pk": floor_read, "select1": select_one}
    samples = asyncio.run(take_turns(url, users, reads))
    context, pk, one = samples["context"], samples["pk"], samples["select1"]
    rows = []
    for stat, pick in (("p50", lambda s: s.median), ("p99", lambda s: s.p99)):
        rows.append(Comparison("context", f"{label}, {stat}", pick(context), pick(pk), "primary-key read"))
        rows.append(
            Comparison("context", f"{label}, {stat} vs round trip", pick(context), pick(one), "SELECT 1")
        )
    return rows


def scaling_comparisons(lookups: int) -> list[Comparison]:
    url = bench_database("context_scaling", fresh=False)
    customers = {size: f"scale-{size}" for size in SCALING_SIZES}
    for size, user in customers.items():
        add_customer(url, user, size, timedelta(days=90))
    prepare_floor(url, list(customers.values()))
    order = [user for _ in range(lookups) for user in customers.values()]
    reads: dict[str, Read] = {"context": context_read, "pk": floor_read}
    # Per customer: split the interleaved samples back out by position.
    samples = asyncio.run(take_turns(url, order, reads, warmup=len(customers) * 20))
    per_user: dict[str, dict[str, list[float]]] = {u: {"context": [], "pk": []} for u in customers.values()}
    for n, user in enumerate(order):
        for name in ("context", "pk"):
            per_user[user][name].append(samples[name].values[n])
    base = Samples(per_user[customers[SCALING_SIZES[0]]]["context"]).median
    print("\none customer's unified_context by history length (events spread over 90 days)")
    print("| events | p50 ms | p99 ms | primary-key read p50 ms | p50 / p50 at 10 events |")
    print("|---|---|---|---|---|")
    for size, user in customers.items():
        ctx, pk = Samples(per_user[user]["context"]), Samples(per_user[user]["pk"])
        print(f"| {size:,} | {ctx.median:.3f} | {ctx.p99:.3f} | {pk.median:.3f} | {ctx.median / base:.2f}× |")
    largest = Samples(per_user[customers[SCALING_SIZES[-1]]]["context"]).median
    return [
        Comparison("context", "one customer at 100k events vs at 10", largest, base, "same read at 10 events")
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=5_000)
    parser.add_argument("--heavy", type=int, default=0, help="Customers with --heavy-events recent events.")
    parser.add_argument("--heavy-events", type=int, default=200_000)
    parser.add_argument(
        "--scaling-lookups", type=int, default=300, help="Reads per customer in the scaling table."
    )
    parser.add_argument("--scaling-only", action="store_true")
    parser.add_argument("--no-scaling", action="store_true")
    parser.add_argument("--explain", action="store_true", help="Print EXPLAIN ANALYZE of one lookup.")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rows: list[Comparison] = []
    if not args.scaling_only:
        url = ensure_world(args.users, args.events, args.seed)
        label = f"random user, {args.events:,} events / {args.users:,} users"
        if args.heavy:
            url = heavy_world(url, args.heavy, args.heavy_events)
            label += f" + {args.heavy} x {args.heavy_events:,}-event customers"
        users = random_users(args.users, args.lookups, args.seed)
        if args.explain:
            print(explain(url, users[0]))
        rows += world_comparisons(label, url, users)
    if not args.no_scaling:
        rows += scaling_comparisons(args.scaling_lookups)
    print_table(f"unified_context read beside its floors ({args.lookups:,} lookups)", rows)
    record(rows)


if __name__ == "__main__":
    main()
