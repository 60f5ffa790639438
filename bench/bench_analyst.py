"""Analysts' population queries over `user_stats`, each beside the same query over a precomputed table.

    .venv/bin/python bench/bench_analyst.py                      # 100,000 users / 1,000,000 events
    .venv/bin/python bench/bench_analyst.py --users 10000 --events 100000 --rounds 20

The floor is a plain table holding `user_stats` as it is now (no index), read with the same
query in the same run, taking turns with the view, so both ride the same load. The world is
the one bench_context reads (seeded once into .mca-bench/).
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_seed import ensure_world
from report import Comparison, interleaved, print_table, record

from mca.db import connect

FLOOR_TABLE = "bench_analyst_floor"
QUERIES = {
    "top 10 by churn_score": (
        "SELECT user_id, points_balance, churn_score, open_tickets FROM {relation} "
        "ORDER BY churn_score DESC NULLS LAST LIMIT 10"
    ),
    "sum(points_balance)": "SELECT sum(points_balance) FROM {relation}",
    "count(*) where churn_score > 0.8": "SELECT count(*) FROM {relation} WHERE churn_score > 0.8",
}


def run(conn: psycopg.Connection[Any], query: str) -> object:
    return conn.execute(query.encode()).fetchall()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    url = ensure_world(args.users, args.events, args.seed)
    with connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        conn.execute(f"CREATE TABLE {FLOOR_TABLE} AS SELECT * FROM user_stats")
        conn.execute(f"VACUUM ANALYZE {FLOOR_TABLE}")
        queries = {
            f"{name}|{relation}": sql.format(relation=relation)
            for name, sql in QUERIES.items()
            for relation in ("user_stats", FLOOR_TABLE)
        }
        for query in queries.values():
            conn.execute(query).fetchall()  # warm the cache
        calls: dict[str, Callable[[], object]] = {
            key: functools.partial(run, conn, query) for key, query in queries.items()
        }
        samples = interleaved(calls, args.rounds)
    rows = [
        Comparison(
            "analyst",
            f"{name}, median of {args.rounds}",
            samples[f"{name}|user_stats"].median,
            samples[f"{name}|{FLOOR_TABLE}"].median,
            "precomputed table",
        )
        for name in QUERIES
    ]
    print_table(f"analyst queries over user_stats ({args.events:,} events / {args.users:,} users)", rows)
    record(rows)


if __name__ == "__main__":
    main()
