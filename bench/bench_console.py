"""The console's figures on the demo world (200 customers, 5,000 events, the demo catalogue),
with the whole product running (ingest, triggers, rules brain, guard, dispatcher):

    .venv/bin/python bench/bench_console.py              # 100 rounds per page, 30 live decisions
    .venv/bin/python bench/bench_console.py --rounds 300 --decisions 60

1. render time of each page (p50/p99, logged-in HTTP client), each beside `/healthz` timed in
   the same rounds (the floor: the same server answering without reading anything);
2. decision commit -> row received on the Live stream (SSE): `decisions.finished_at` (set in the
   committing transaction) to the moment the stream delivers the row, p50/p99, beside the
   stream's poll interval;
3. the size of the vendored JavaScript (raw and gzip).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import re
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from bench_seed import bench_database
from report import Comparison, Samples, interleaved, print_table, record

from console.live import POLL_S
from demo.in_thread import Product
from demo.product import DEMO_EVENTS, DEMO_SEED, DEMO_USERS
from demo.seed.load import ensure_catalogue, seed_world
from demo.seed.world import user_id_of
from mca.db import Stores, connect
from mca.settings import PROJECT_ROOT, Settings
from state.embedding import get_embedder

KEYS = {"bench-admin": ["admin"], "bench-ingest": ["ingest"]}
VENDOR = PROJECT_ROOT / "console" / "static" / "vendor"


def login(http: httpx.Client) -> None:
    form = http.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token, form.text[:300]
    landed = http.post("/console/login", data={"key": "bench-admin", "csrf": token.group(1)})
    assert landed.status_code == 200 and "Log out" in landed.text, landed.text[:300]


def purchase(n: int, user: str) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": f"bench-console-{uuid.uuid4().hex[:8]}-{n}",
        "userId": user,
        "event": "purchase",
        "timestamp": datetime.now(UTC).isoformat(),
        "properties": {"value": 250.0, "sku": "OUT-001", "category": "outdoor"},
    }


class StreamWatch:
    """Reads the Live stream in a thread; records when each decision row arrives."""

    def __init__(self, http: httpx.Client) -> None:
        self.arrived: dict[str, datetime] = {}
        self.opened_at = datetime.max.replace(tzinfo=UTC)
        self.changed = threading.Condition()
        self.http = http
        self.open = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        # The stream ends when the benchmark closes its client: that error is the normal end.
        with (
            contextlib.suppress(httpx.HTTPError),
            self.http.stream("GET", "/console/live/stream", timeout=None) as response,
        ):
            self.opened_at = datetime.now(UTC)
            self.open.set()
            for line in response.iter_lines():
                if line.startswith("id: dec:"):
                    with self.changed:
                        self.arrived[line.removeprefix("id: dec:").strip()] = datetime.now(UTC)
                        self.changed.notify_all()

    def wait_settled(self, url: str, timeout_s: float = 30.0) -> dict[str, float]:
        """Once no job waits and every recorded decision has arrived on the stream: milliseconds
        from each decision's commit to its arrival. (A post may make no decision: an opportunity
        such as a birthday may have just used the customer's cooldown.)"""
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while True:
                with connect(url) as conn:
                    busy = conn.execute(
                        "SELECT count(*) AS n FROM agent_jobs WHERE status IN ('queued', 'running')"
                    ).fetchone()
                    rows = conn.execute(
                        "SELECT decision_id, finished_at FROM decisions WHERE finished_at > %s",
                        (self.opened_at,),
                    ).fetchall()
                if busy and busy["n"] == 0 and all(r["decision_id"] in self.arrived for r in rows):
                    return {
                        r["decision_id"]: (self.arrived[r["decision_id"]] - r["finished_at"]).total_seconds()
                        * 1000
                        for r in rows
                    }
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"decisions not all on the stream within {timeout_s}s")
                self.changed.wait(min(left, 0.1))


def live_latency(product: Product, url: str, decisions: int) -> Samples:
    # The stream reads in its own thread, on its own client (an httpx client is not shared across threads).
    with (
        httpx.Client(base_url=product.base, timeout=30, follow_redirects=True) as http,
        httpx.Client(base_url=product.base, timeout=30, follow_redirects=True) as reader,
    ):
        login(http)
        login(reader)
        watch = StreamWatch(reader)
        if not watch.open.wait(10):
            raise TimeoutError("the Live stream did not open")
        latencies: dict[str, float] = {}
        for n in range(decisions):
            user = user_id_of(n)
            posted = http.post(
                "/ingest", json=purchase(n, user), headers={"Authorization": "Bearer bench-ingest"}
            )
            assert posted.status_code == 202, posted.text
            latencies = watch.wait_settled(url)
        print(f"{len(latencies)} decisions seen on the Live stream for {decisions} posted purchases")
        return Samples(list(latencies.values()))


def page_times(product: Product, rounds: int, customer: str) -> dict[str, Samples]:
    with httpx.Client(base_url=product.base, timeout=30, follow_redirects=True) as http:
        login(http)
        paths = {
            "/healthz": "/healthz",
            "Live": "/console/live",
            "Customer": f"/console/customers?user_id={customer}",
            "Governance": "/console/governance",
            "Experiments": "/console/experiments",
            "Catalogue (search)": "/console/catalogue?q=gear+for+a+rainy+hike",
        }

        def getter(path: str) -> Any:
            def call() -> None:
                got = http.get(path)
                assert got.status_code == 200, (path, got.status_code)

            return call

        for path in paths.values():  # warm: prepared statements, the embedder, templates
            getter(path)()
        return interleaved({name: getter(path) for name, path in paths.items()}, rounds)


def vendored() -> list[tuple[str, int, int]]:
    return [
        (p.name, p.stat().st_size, len(gzip.compress(p.read_bytes()))) for p in sorted(VENDOR.glob("*.js"))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--decisions", type=int, default=30)
    args = parser.parse_args()
    url = bench_database(f"console_{uuid.uuid4().hex[:8]}", fresh=True)
    embedder = get_embedder()
    with connect(url, autocommit=True) as conn:
        print(seed_world(conn, DEMO_USERS, DEMO_EVENTS, DEMO_SEED).describe())
        ensure_catalogue(conn, embedder, progress=False)
    settings = Settings(state_url=url, ops_url=url, data_dir=PROJECT_ROOT / ".mca-bench", api_keys=KEYS)
    with Product(settings, Stores(state_url=url, ops_url=url), embedder).running() as product:
        live = live_latency(product, url, args.decisions)
        pages = page_times(product, args.rounds, user_id_of(0))
    floor = pages.pop("/healthz")
    rows = [
        Comparison("console", f"{name} page p{q}", s.quantile(q / 100), floor.quantile(q / 100), "/healthz")
        for name, s in pages.items()
        for q in (50, 99)
    ]
    rows += [
        Comparison(
            "console",
            f"decision commit -> Live stream p{q}",
            live.quantile(q / 100),
            POLL_S * 1000,
            "poll interval",
        )
        for q in (50, 99)
    ]
    print_table(
        f"Console on the demo world ({args.rounds} rounds per page, {args.decisions} live decisions)", rows
    )
    record(rows)
    print("\nVendored JavaScript (console/static/vendor):")
    files = vendored()
    for name, raw, packed in files:
        print(f"  {name:32} {raw / 1024:7.1f} KiB  ({packed / 1024:5.1f} KiB gzip)")
    total_raw, total_gz = sum(f[1] for f in files), sum(f[2] for f in files)
    print(f"  {'total':32} {total_raw / 1024:7.1f} KiB  ({total_gz / 1024:5.1f} KiB gzip)")


if __name__ == "__main__":
    main()
