"""How fast `mca seed` loads a world (COPY into the embedded PostgreSQL), in events/s.

    .venv/bin/python bench/bench_seed.py                 # 10,000 users / 100,000 events
    .venv/bin/python bench/bench_seed.py --users 100000 --events 1000000

Uses its own data folder (.mca-bench/) and a fresh database per run, never the tests' server.
Other benchmarks import ``bench_database``, ``ensure_world`` and ``database_cpu_seconds`` from here.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo.seed.load import seed_world, world_loaded
from mca.db import connect
from mca.embedded import EmbeddedPostgres
from mca.migrate import migrate
from mca.settings import Settings

BENCH_DIR = Path(os.environ.get("MCA_BENCH_DIR", ".mca-bench"))


def bench_database(name: str, *, fresh: bool) -> str:
    """A migrated database on the benchmark server (started on demand), its URL."""
    server = EmbeddedPostgres(BENCH_DIR)
    server.up()
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if fresh and exists:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        if fresh or not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    url = server.url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    migrate(Settings(state_url=url, ops_url=url, data_dir=BENCH_DIR), url, url)
    return url


def database_cpu_seconds(url: str) -> float:
    """CPU seconds (user + system) so far of the benchmark server's backends serving `url`'s
    database: the server's share of a benchmark's work, apart from other databases' clients.
    A backend that exits between two readings takes its time with it: read while it lives."""
    import psutil

    name = f" {psycopg.conninfo.conninfo_to_dict(url)['dbname']} "
    pid_file = BENCH_DIR / "pg" / "postmaster.pid"
    total = 0.0
    for proc in psutil.Process(int(pid_file.read_text().split()[0])).children():
        try:
            if name in " ".join(proc.cmdline()) + " ":
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def ensure_world(users: int, events: int, seed: int = 1) -> str:
    """The database holding this world, seeded once and reused by later runs."""
    url = bench_database(f"world_{users}u_{events}e", fresh=False)
    with connect(url, autocommit=True) as conn:
        if not world_loaded(conn, seed):
            print(seed_world(conn, users, events, seed).describe())
            conn.execute("VACUUM ANALYZE events")
    return url


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    url = bench_database(f"seed_{args.users}u_{args.events}e", fresh=True)
    with connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        report = seed_world(conn, args.users, args.events, args.seed)
        total = time.perf_counter() - started
    print(report.describe())
    print(
        f"seed load rate: {report.rate:,.0f} events/s "
        f"({args.events:,} events, {args.users:,} users, {total:.1f} s incl. generation; "
        f"{os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
