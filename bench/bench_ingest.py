"""Throughput and latency of POST /ingest, server and load generator in separate processes.

    .venv/bin/python bench/bench_ingest.py                  # 15 s a phase (quick)
    .venv/bin/python bench/bench_ingest.py --seconds 60     # the issue's sustained 60 s
    .venv/bin/python bench/bench_ingest.py --only batch --seconds 5   # batch beside COPY only

Phases: ``batch`` (direct transport, 500-event Segment batches, closed loop) → events/s,
beside its floor ``COPY`` (the same rows, 500 a transaction, the same number of connections,
straight into ``events`` from a psycopg client using ``write_row``), the two interleaved for
--rounds rounds and the medians compared; ``single`` (one event a request, closed loop) → max
req/s; ``rate`` (one event a request, open loop at 500 req/s) → p50/p99; ``kafka`` (kafka
transport to a tansu broker, batches) → events/s and p99. The server is `mca serve` (uvicorn,
this tree's code) on a fresh embedded PostgreSQL database; the load generator is
bench/loadgen.py in its own process. Each phase starts from a vacuumed, checkpointed table
(the batch phase leaves millions of rows behind). Both share the machine's cores with
PostgreSQL, which is what a one-box deployment looks like.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mca.embedded import EmbeddedPostgres  # noqa: E402
from mca.migrate import migrate  # noqa: E402
from mca.net import free_port  # noqa: E402
from mca.settings import Settings  # noqa: E402
from tests.kafka_broker import running_broker  # noqa: E402


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not ready after {timeout_s}s")


@contextmanager
def server(db_url: str, **env: str) -> Iterator[str]:
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MCA_")}
    full_env.update({"MCA_STATE_URL": db_url, "MCA_OPS_URL": db_url, "HF_HUB_OFFLINE": "1", **env})
    # This tree's code, whichever checkout the virtualenv was installed from.
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "mca", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        yield f"http://127.0.0.1:{port}/ingest"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def tansu() -> Iterator[str]:
    with running_broker() as broker:
        yield broker.brokers


def load(url: str, mode: str, seconds: float, **opts: object) -> dict[str, object]:
    cmd = [
        sys.executable,
        str(ROOT / "bench" / "loadgen.py"),
        "--url",
        url,
        "--mode",
        mode,
        "--seconds",
        str(seconds),
    ]
    for key, value in opts.items():
        cmd += [f"--{key}", str(value)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


@contextmanager
def database() -> Iterator[str]:
    data = Path(tempfile.mkdtemp(prefix="mca-bench-ingest-"))
    pg = EmbeddedPostgres(data / "pg")
    pg.up()
    try:
        with psycopg.connect(pg.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench_ingest")
        url = pg.url("bench_ingest")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        migrate(Settings(state_url=url, ops_url=url, data_dir=data / "mca"), url, url)
        yield url
    finally:
        pg.down()
        shutil.rmtree(data, ignore_errors=True)


def count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
    return int(row[0]) if row else 0


def settle(url: str) -> None:
    """Start each phase from a checkpointed, vacuumed table, so one phase's background
    maintenance (autovacuum after a million inserts, a checkpoint) is not billed to the next."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) events")
        conn.execute("CHECKPOINT")


def report(title: str, figures: dict[str, object]) -> None:
    keys = ("requests", "statuses", "req_per_s", "events_per_s", "p50_ms", "p99_ms", "max_ms")
    print(f"{title:<44} " + "  ".join(f"{k}={figures[k]}" for k in keys), flush=True)


def floor_table(rows: list[tuple[str, float, str, float]]) -> None:
    """``figure | value | floor | value | ratio``: each figure beside its floor from the same run."""
    print("figure | value | floor | value | ratio")
    print("---|---|---|---|---")
    for figure, value, floor, floor_value in rows:
        print(f"{figure} | {value:,.0f} | {floor} | {floor_value:,.0f} | {value / floor_value:.2f}")


def batch_against_copy(url: str, db_url: str, args: argparse.Namespace) -> None:
    """Batch /ingest and COPY of the same rows, interleaved round by round; medians compared."""
    figures: dict[str, list[float]] = {"batch": [], "copy": []}
    for n in range(args.rounds):
        for mode, target in (("batch", url), ("copy", db_url)):
            settle(db_url)
            before = count(db_url)
            r = load(target, mode, args.seconds, batch=args.batch, connections=args.connections)
            stored = count(db_url) - before
            what = "direct batch" if mode == "batch" else "COPY floor"
            label = f"{what} ({args.batch} rows), round {n + 1}"
            report(label, r)
            print(f"{'':<44} rows stored (warm-up included): {stored}", flush=True)
            figures[mode].append(float(str(r["events_per_s"])))
    batch, copy = (statistics.median(figures[m]) for m in ("batch", "copy"))
    floor_table([("batch /ingest events/s (median)", batch, "COPY events/s (median)", copy)])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=15.0, help="Length of each phase (60 for the full run)."
    )
    parser.add_argument("--only", default="batch,single,rate,kafka")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved batch/COPY rounds (median).")
    args = parser.parse_args()
    phases = set(args.only.split(","))
    print(
        f"machine: {os.cpu_count()} cores; {args.seconds:g} s a phase; server: mca serve (1 uvicorn process)"
    )
    with database() as db_url:
        with server(db_url) as url:
            if "batch" in phases:
                batch_against_copy(url, db_url, args)
            if "single" in phases:
                settle(db_url)
                r = load(url, "single", args.seconds, connections=32)
                report("direct single event, max (32 connections)", r)
            if "rate" in phases:
                settle(db_url)
                r = load(url, "rate", args.seconds, rate=500, connections=64)
                report("direct single event at 500 req/s", r)
        if "kafka" in phases:
            settle(db_url)
            with tansu() as brokers, server(db_url, MCA_TRANSPORT="kafka", MCA_KAFKA_BROKERS=brokers) as url:
                r = load(url, "batch", args.seconds, batch=args.batch, connections=args.connections)
                report(f"kafka batch ({args.batch} events/request)", r)
                r = load(url, "rate", args.seconds, rate=500, connections=64)
                report("kafka single event at 500 req/s", r)


if __name__ == "__main__":
    main()
