"""The simulation's loop: one round of the real product per simulated day, stepped.

Each day the customers whose churn score crosses the threshold are posted through `/ingest`;
then the trigger service reads the stream, the workers take every job, the dispatcher delivers
(or withholds) every action and the announcer writes decisions and actions to the stream. The
simulator reads what each customer was sent and draws their response. Stepping instead of
running the services free makes a seed reproduce its run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from datetime import datetime, timedelta
from typing import Any

import httpx
import numpy as np
import psycopg

from demo.population import SEGMENTS, Customer, Segment, population
from demo.simulate import (
    DAY_TIME,
    WINDOW,
    Echo,
    SimulatedClock,
    SimulationRun,
    churn_call,
    draw_outcome,
    identify_call,
    outcome_calls,
)
from mca.db import Stores
from mca.settings import Settings

BATCH = 500  # calls per POST /ingest
DECIDED_SQL = """
SELECT j.user_id, j.experiment_group,
       (SELECT o.payload FROM outbox o JOIN tool_calls t ON t.call_id = o.call_id
        WHERE t.decision_id = j.decision_id AND o.kind = 'coupon' AND o.status = 'delivered'
        ORDER BY o.outbox_id LIMIT 1) AS delivered
FROM agent_jobs j WHERE j.created_at >= %(since)s
"""


def prepare(settings: Settings, database: str, echo: Echo) -> Stores:
    """The simulation's own database on the embedded server: created fresh, migrated, catalogued."""
    from demo.seed.load import ensure_catalogue
    from mca.db import connect, embedded_server
    from mca.migrate import migrate
    from state.embedding import get_embedder

    server = embedded_server(settings)
    server.up()
    with psycopg.connect(server.url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{database}"')
    url = server.url(database)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    migrate(settings, url, url)
    embedder = get_embedder(settings.embedding.model, settings.embedding.batch_size)
    with connect(url, autocommit=True) as conn:
        ensure_catalogue(conn, embedder, progress=False)
    echo(f"simulation database {database} ready on the embedded server")
    return Stores(state_url=url, ops_url=url)


async def _post(http: httpx.AsyncClient, base: str, calls: list[dict[str, Any]]) -> None:
    for i in range(0, len(calls), BATCH):
        response = await http.post(f"{base}/ingest", json={"batch": calls[i : i + BATCH]})
        if response.status_code >= 300:
            raise RuntimeError(f"POST /ingest answered {response.status_code}: {response.text[:300]}")


class Product:
    """The real components of one process, stepped by the simulator."""

    def __init__(self, triggers: Any, agents: Any, dispatcher: Any, tools: Any) -> None:
        self.triggers, self.agents, self.dispatcher, self.tools = triggers, agents, dispatcher, tools

    async def settle(self) -> None:
        while (await self.triggers.step_stream()).events:
            pass

        async def drain(worker: Any) -> None:
            while await worker.run_one() is not None:
                pass

        await asyncio.gather(*(drain(w) for w in self.agents.workers))
        await self.tools.release_due()
        while any((await self.dispatcher.run_once(limit=500)).values()):
            pass


# The query the rules brain makes for this trigger's customers (no purchase category): its top
# matches are the arms, and each gets a hidden lift of its own.
ARMS_QUERY = {"query": "we miss you welcome back offer", "kind": "coupon", "max_value": 25.0, "k": 10}


async def arm_segments(
    state_pool: Any, embedder: Any, now: datetime, seed: int
) -> tuple[list[str], tuple[Segment, ...]]:
    """The arms and the segments with a hidden lift per arm: the segment's default lift times a
    factor from 0.1 to 2.0, assigned to the arms in an order the seed shuffles."""
    from state.catalogue import search_assets

    async with state_pool.connection() as conn:
        hits = await search_assets(conn, embedder, now=now, **ARMS_QUERY)  # type: ignore[arg-type]
    arms = [h.asset_id for h in hits]
    factors = np.random.default_rng(seed).permutation(np.linspace(0.1, 2.0, len(arms)))
    segments = tuple(
        dataclasses.replace(
            s, lifts={a: s.default_lift * float(f) for a, f in zip(arms, factors, strict=True)}
        )
        for s in SEGMENTS
    )
    return arms, segments


async def _day(
    product: Product, http: httpx.AsyncClient, base: str, run: SimulationRun, clock: SimulatedClock,
    firing: list[Customer], ops: psycopg.AsyncConnection[Any], rng: np.random.Generator, arms: list[str],
) -> None:  # fmt: skip
    """One day of triggers: post the churn scores, let the product decide and act, draw responses."""
    day = (clock.now - run.started).days
    await _post(http, base, [churn_call(c, clock.now - timedelta(minutes=1), day) for c in firing])
    await product.settle()
    by_id = {c.user_id: c for c in firing}
    rows = await (await ops.execute(DECIDED_SQL, {"since": clock.now})).fetchall()
    for row in rows:
        customer = by_id.get(row["user_id"])
        if customer is None:
            continue
        run.decisions += 1
        payload = row["delivered"] if row["experiment_group"] == "treatment" else None
        sent = (str(payload["asset_id"]), payload.get("coupon_code")) if payload else None
        run.sent += sent is not None
        if row["experiment_group"] == "treatment":
            run.truth.add(customer, sent[0] if sent else None)
        outcome = draw_outcome(customer, sent, clock.now, rng)
        if outcome is not None:
            run.pending.append(outcome)
        if row["experiment_group"] == "treatment":
            best = max(customer.rate(a) for a in arms) if arms else customer.rate(None)
            run.regret.append(best - customer.rate(sent[0] if sent else None))
            run.converted.append(int(outcome is not None))


async def _post_due(http: httpx.AsyncClient, base: str, run: SimulationRun, before: datetime) -> None:
    due = sorted((o for o in run.pending if o.at < before), key=lambda o: o.at)
    run.pending = [o for o in run.pending if o.at >= before]
    calls = [call for n, o in enumerate(due) for call in outcome_calls(o, n)]
    if calls:
        await _post(http, base, calls)


async def _learn(agents: Any, run: SimulationRun, day: int) -> None:
    """The arm cache reads the day's evidence before the day's decisions. In production it refreshes
    every few seconds; a simulated day stands for hours of them, and stepping it here keeps a seed's
    run reproducible (a background refresh would land somewhere inside the day)."""
    cache = agents.deps.allocator.cache if agents.deps.allocator is not None else None
    if cache is None:
        return
    await cache.prime()
    arms = cache.snapshot.by_arm.values()
    run.evidence.append((day, sum(a.exposures for a in arms), sum(a.conversions for a in arms)))


async def drive(settings: Settings, stores: Stores, run: SimulationRun, echo: Echo, *, progress: bool) -> Any:
    from tqdm import tqdm

    from agent.providers import make_model
    from agent.runtime import agent_runtime, trigger_service
    from demo.product import _QuietServer, _wait_ready
    from ingest.direct import open_direct
    from ingest.web import extension as ingest_extension
    from mca.app import create_app
    from mca.net import free_port
    from mca.services import Role, Services
    from mcp_tools.commands import make_dispatcher
    from mcp_tools.runtime import Runtime
    from state.embedding import get_embedder

    config = run.config
    clock = SimulatedClock(run.started)
    rng = np.random.default_rng(config.seed)
    services = Services(settings, stores, clock=clock)
    port, stop = free_port(), asyncio.Event()
    web = _QuietServer(create_app(settings, stores, [ingest_extension(settings, stores, services)]), port)
    embedder = get_embedder(settings.embedding.model, settings.embedding.batch_size)
    base = f"http://127.0.0.1:{port}"
    async with (
        services,
        trigger_service(settings, stores, clock=clock, start="latest") as triggers,
        agent_runtime(settings, stores, workers=2, model=make_model(settings, "rules"), clock=clock,
                      embedder=embedder, services=services) as agents,
        Runtime(settings, stores, clock=clock, services=services).acquire() as tools,
        httpx.AsyncClient(timeout=60) as http,
    ):  # fmt: skip
        serving = asyncio.create_task(web.serve())
        state_pool = await services.pool(Role.STATE, autocommit=True)
        ops_pool = await services.pool(Role.OPS, autocommit=True)
        sink = await open_direct(state_pool, stores.state_url)
        await sink.start()
        try:
            await _wait_ready(http, base, stop)
            arms, segments = await arm_segments(state_pool, embedder, clock.now, config.seed)
            customers = population(config.customers, config.seed, segments)
            run.customers = {c.user_id: c for c in customers}
            # The dispatcher announces decisions and actions to the stream after each round.
            dispatcher = make_dispatcher(settings, tools.service, http, sink)
            product = Product(triggers, agents, dispatcher, tools.service)
            await _post(http, base, [identify_call(c, run.started - timedelta(days=30)) for c in customers])
            await product.settle()  # the stream position now stands after the profiles
            exposed: set[str] = set()
            trigger_days = config.days - WINDOW.days
            async with ops_pool.connection() as ops:
                for day in tqdm(range(config.days), desc="simulating", unit="day", disable=not progress):
                    clock.now = run.started + timedelta(days=day) + DAY_TIME
                    await _post_due(http, base, run, clock.now)
                    if day >= trigger_days:
                        continue
                    await _learn(agents, run, day)
                    firing = [
                        c for c in customers
                        if c.user_id not in exposed and rng.random() < c.segment.trigger_rate
                    ]  # fmt: skip
                    exposed.update(c.user_id for c in firing)
                    await _day(product, http, base, run, clock, firing, ops, rng, arms)
            end = run.started + timedelta(days=config.days)
            clock.now = end
            await _post_due(http, base, run, end + timedelta(seconds=1))
            await product.settle()
        finally:
            await sink.close()
            web.stop()
            with contextlib.suppress(Exception):
                await serving
    echo(f"{run.decisions} decisions, {run.sent} coupons delivered to the treatment group")
    if run.evidence:
        shown = ", ".join(
            f"day {d}: {n:.0f} ({k})" for d, n, k in run.evidence[:: max(len(run.evidence) // 6, 1)]
        )
        echo(f"the allocator's evidence, exposures as weighed (conversions): {shown}")
    return run
