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
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mca.embedded import EmbeddedPostgres  # noqa: E402
from mca.migrate import migrate  # noqa: E402
from mca.net import free_port  # noqa: E402
from mca.settings import Settings  # noqa: E402
from mca.testing.kafka import running_broker  # noqa: E402


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


@dataclass
class Served:
    url: str
    pid: int


@contextmanager
def server(db_url: str, **env: str) -> Iterator[Served]:
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
        yield Served(f"http://127.0.0.1:{port}/ingest", proc.pid)
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


@dataclass
class Database:
    url: str
    pgdata: Path

    def cpu_s(self) -> float:
        """CPU seconds the whole server has used: live processes plus the exited backends that
        the postmaster has reaped (its children's time)."""
        postmaster = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        total = _proc_cpu_s(postmaster, reaped=True)
        for entry in os.listdir("/proc"):
            if entry.isdigit() and _parent(int(entry)) == postmaster:
                total += _proc_cpu_s(int(entry))
        return total


def _stat_fields(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return []


def _parent(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def _proc_cpu_s(pid: int, *, reaped: bool = False) -> float:
    fields = _stat_fields(pid)
    if not fields:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if reaped else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def database() -> Iterator[Database]:
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
        yield Database(url, pg.pgdata)
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


def load_average() -> str:
    """The machine's 1-minute load average: on a box shared with other work, what a figure
    was measured beside."""
    return Path("/proc/loadavg").read_text().split()[0]


def report(title: str, figures: dict[str, object]) -> None:
    keys = ("requests", "statuses", "req_per_s", "events_per_s", "p50_ms", "p99_ms", "max_ms")
    shown = "  ".join(f"{k}={figures[k]}" for k in keys)
    print(f"{title:<44} {shown}  load={load_average()}", flush=True)


def floor_table(rows: list[tuple[str, float, str, float]]) -> None:
    """``figure | value | floor | value | ratio``: each figure beside its floor from the same run."""
    print("figure | value | floor | value | ratio")
    print("---|---|---|---|---")
    for figure, value, floor, floor_value in rows:
        print(f"{figure} | {value:,.1f} | {floor} | {floor_value:,.1f} | {value / floor_value:.2f}")


def batch_against_copy(served: Served, db: Database, args: argparse.Namespace) -> None:
    """Batch /ingest and COPY of the same rows, interleaved round by round; medians compared.
    Beside throughput, the CPU each stored event cost the machine (database, server, load
    generator or COPY client): on a box shared with other work it is the steadier figure."""
    rate: dict[str, list[float]] = {"batch": [], "copy": []}
    cpu: dict[str, list[float]] = {"batch": [], "copy": []}
    for n in range(args.rounds):
        for mode, target in (("batch", served.url), ("copy", db.url)):
            settle(db.url)
            before = count(db.url)

            def cpu_now() -> tuple[float, float, float]:
                return db.cpu_s(), _proc_cpu_s(served.pid), _children_cpu_s()

            used = cpu_now()
            r = load(target, mode, args.seconds, batch=args.batch, connections=args.connections)
            db_s, server_s, client_s = (after - start for after, start in zip(cpu_now(), used, strict=True))
            stored = max(count(db.url) - before, 1)
            what = "direct batch" if mode == "batch" else "COPY floor"
            report(f"{what} ({args.batch} rows), round {n + 1}", r)
            per_event = (db_s + server_s + client_s) / stored * 1e6
            print(
                f"{'':<44} rows stored (warm-up included): {stored}; CPU {per_event:.1f} µs/event "
                f"(database {db_s / stored * 1e6:.1f}, mca serve {server_s / stored * 1e6:.1f}, "
                f"load generator or COPY client {client_s / stored * 1e6:.1f})",
                flush=True,
            )
            rate[mode].append(float(str(r["events_per_s"])))
            cpu[mode].append(per_event)
    batch, copy = (statistics.median(rate[m]) for m in ("batch", "copy"))
    # CPU as events per CPU-second, so that the ratio reads like the throughput one (higher is better).
    batch_cpu, copy_cpu = (1e6 / statistics.median(cpu[m]) for m in ("batch", "copy"))
    floor_table(
        [
            ("batch /ingest events/s (median)", batch, "COPY events/s (median)", copy),
            ("batch /ingest events per CPU-second", batch_cpu, "COPY events per CPU-second", copy_cpu),
        ]
    )


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
    with database() as db:
        db_url = db.url
        with server(db_url) as served:
            url = served.url
            if "batch" in phases:
                batch_against_copy(served, db, args)
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
            with (
                tansu() as brokers,
                server(db_url, MCA_TRANSPORT="kafka", MCA_KAFKA_BROKERS=brokers) as served,
            ):
                url = served.url
                r = load(url, "batch", args.seconds, batch=args.batch, connections=args.connections)
                report(f"kafka batch ({args.batch} events/request)", r)
                r = load(url, "rate", args.seconds, rate=500, connections=64)
                report("kafka single event at 500 req/s", r)


if __name__ == "__main__":
    main()
