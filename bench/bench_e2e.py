"""Event posted to `POST /ingest` -> action in the outbox, end to end, rules brain.

    .venv/bin/python bench/bench_e2e.py                    # 200 events, one at a time
    .venv/bin/python bench/bench_e2e.py --events 1000 --poll-ms 50

Everything runs as `mca demo` runs it: uvicorn with the app, the trigger service (polling the
events table every --poll-ms), two agent workers woken by NOTIFY, the in-process MCP server
and guard. Each event is a purchase for a fresh customer; the clock stops when that
customer's outbox row is committed (watched by polling the ops store every millisecond).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_agent import percentile, world

from agent.demo import _QuietServer
from agent.providers.rules import RulesModel
from agent.runtime import agent_runtime, trigger_service
from mca.app import create_app
from mca.db import connect_async
from mca.net import free_port
from mca.seed.products import PRODUCTS
from mca.seed.world import user_id_of

OUTBOX = "SELECT 1 FROM outbox WHERE user_id = %s LIMIT 1"


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings, stores = world(args.users, args.users * 10, Path(tmp))
        port = free_port()
        web = _QuietServer(create_app(settings, stores), port)
        stop = asyncio.Event()
        rng = random.Random(3)
        samples: list[float] = []
        async with (
            trigger_service(settings, stores, start="latest") as triggers,
            agent_runtime(settings, stores, workers=2, model=RulesModel()) as agents,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http,
        ):
            await triggers.step_stream()
            tasks = [
                asyncio.create_task(web.serve()),
                asyncio.create_task(agents.run(stop)),
                asyncio.create_task(triggers.run(stop, poll=timedelta(milliseconds=args.poll_ms))),
            ]
            ops = await connect_async(stores.ops_url, autocommit=True)
            try:
                while True:
                    try:
                        if (await http.get("/healthz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        await asyncio.sleep(0.05)
                for n in range(args.events + args.warm_up):
                    product = rng.choice(PRODUCTS)
                    user = user_id_of(rng.randrange(args.users)) + f"-e2e{n}"
                    body = {"type": "track", "event": "purchase", "userId": user,
                            "messageId": uuid.uuid4().hex,
                            "timestamp": datetime.now(UTC).isoformat(),
                            "properties": {"value": max(100.0, product.price), "sku": product.sku,
                                           "category": product.category,
                                           "product_name": product.name}}  # fmt: skip
                    # A fresh customer: identify first (consent, email), not timed.
                    await http.post("/ingest", json={"type": "identify", "userId": user, "traits": {
                        "first_name": "Bench", "email": f"{user}@example.com",
                        "consent_email": True}})  # fmt: skip
                    started = time.perf_counter()
                    response = await http.post("/ingest", json=body)
                    assert response.status_code == 202, response.text
                    deadline = started + 10
                    while time.perf_counter() < deadline:
                        if await (await ops.execute(OUTBOX, (user,))).fetchone():
                            break
                        await asyncio.sleep(0.001)
                    else:
                        raise AssertionError(f"no outbox row for {user} within 10 s")
                    if n >= args.warm_up:
                        samples.append((time.perf_counter() - started) * 1000)
            finally:
                stop.set()
                web.stop()
                await asyncio.gather(*tasks, return_exceptions=True)
                await ops.close()
    print(
        f"event posted -> action in outbox (rules brain, trigger poll {args.poll_ms} ms): n={len(samples)} "
        f"p50={statistics.median(samples):.1f} ms p99={percentile(samples, 0.99):.1f} ms "
        f"max={max(samples):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--warm-up", type=int, default=20)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--poll-ms", type=int, default=100)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
