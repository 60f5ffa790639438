"""Attribution freshness: an outcome posted to `POST /ingest` -> visible in `action_attribution`.

    .venv/bin/python bench/bench_freshness.py           # 100,000 events / 10,000 actions, 100 samples
    .venv/bin/python bench/bench_freshness.py --samples 40 --events 20000 --actions 2000

The app (the ingest extension, direct transport, as `mca serve` runs it) is served by uvicorn
in a thread over the world of bench/bench_uplift.py, plus one fresh coupon sent an hour ago
to each customer timed here. Each sample posts that customer's purchase as a Segment track and
reads, as fast as it can, until the purchase shows: the figure reads the customer's action in
`action_attribution` until it is `converted` (on the embedded default the view is computed by
its SQL on read, so this is the cost of that read); the floor, taking turns with it on fresh
customers, reads the `events` table by the purchase's id (posted -> stored). Both clocks
start before the POST.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_uplift import world
from report import Comparison, Samples, print_table, record

from ingest.web import extension as ingest_extension
from mca.app import create_app
from mca.db import Stores
from mca.settings import Settings
from mca.testing.http import serve_in_thread

TIMEOUT_S = 30.0
FRESH_ACTIONS = """
INSERT INTO events (event_id, user_id, event_type, ts, source, value, properties)
SELECT 'act-' || %(run)s || '-' || i, %(run)s || '-' || i, 'offer_sent', now() - interval '1 hour', 'mca', 10,
       jsonb_build_object('decision_id', %(run)s || '-d' || i, 'trigger', 'churn_risk', 'cost', 10,
                          'experiment_group', 'treatment', 'window_s', 604800)
FROM generate_series(0, %(n)s - 1) AS i"""
IN_VIEW = "SELECT converted FROM action_attribution WHERE action_id = %s"
IN_EVENTS = "SELECT 1 FROM events WHERE event_id = %s"


def purchase(user: str, message_id: str) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": user,
        "messageId": message_id,
        "timestamp": datetime.now(UTC).isoformat(),
        "properties": {"revenue": 25.0},
    }


def timed(http: httpx.Client, user: str, seen: Callable[[str], bool]) -> float:
    """Milliseconds from posting `user`'s purchase until `seen` (given its event id) says so."""
    message_id = uuid.uuid4().hex
    started = time.perf_counter()
    response = http.post("/ingest", json=purchase(user, message_id))
    assert response.status_code == 202, response.text
    (event_id,) = response.json()["event_ids"]
    while not seen(event_id):
        if time.perf_counter() - started > TIMEOUT_S:
            raise SystemExit(f"{user}'s purchase not visible after {TIMEOUT_S} s")
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--actions", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()

    url = world(args.events, args.actions)
    run = "fresh-" + uuid.uuid4().hex[:8]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(FRESH_ACTIONS, {"run": run, "n": 2 * args.samples})
        conn.execute("ANALYZE events")
    settings = Settings(state_url=url, ops_url=url, data_dir=Path(".mca-bench"))
    stores = Stores(state_url=url, ops_url=url)
    app = create_app(settings, stores, extensions=[ingest_extension(settings, stores)])
    figure: list[float] = []
    floor: list[float] = []
    with (
        serve_in_thread(app) as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http,
        psycopg.connect(url, autocommit=True) as conn,
    ):

        def converted(action_id: str) -> Callable[[str], bool]:
            def check(_event_id: str) -> bool:
                row = conn.execute(IN_VIEW, (action_id,)).fetchone()
                return bool(row and row[0])

            return check

        def stored(event_id: str) -> bool:
            return conn.execute(IN_EVENTS, (event_id,)).fetchone() is not None

        for i in range(args.samples):
            user_a, user_b = f"{run}-{2 * i}", f"{run}-{2 * i + 1}"
            figure.append(timed(http, user_a, converted(f"act-{user_a}")))
            floor.append(timed(http, user_b, stored))
    fig, flo = Samples(figure), Samples(floor)
    where = f"{args.events:,} events / {args.actions:,} actions, {args.samples} samples"
    out = [
        Comparison("freshness", f"posted -> action_attribution p50 ({where})", fig.median, flo.median,
                   "posted -> events p50"),
        Comparison("freshness", f"posted -> action_attribution p99 ({where})", fig.p99, flo.p99,
                   "posted -> events p99"),
    ]  # fmt: skip
    print_table("attribution freshness (ms)", out)
    record(out)


if __name__ == "__main__":
    main()
