"""`mca demo`: the whole product on the embedded default, in one process.

Starts the embedded server, migrates, seeds a small world, then runs the HTTP service
(uvicorn), the trigger service, agent workers and the outbox dispatcher as asyncio tasks.
It posts the story through `POST /ingest` and prints, live, each trigger, each decision with
its rationale and guard verdicts, and each delivered action. It exits once the story's actions
are delivered (or after `timeout_s`); `follow=True` keeps it running until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from agent.records import DecisionRecord
from demo.story import Cast, history_rows, story_posts
from mca.net import free_port
from mca.settings import Settings

Echo = Callable[[str], None]
DEMO_USERS, DEMO_EVENTS, DEMO_SEED = 200, 5_000, 42
HISTORY_SQL = (
    "INSERT INTO events (event_id, user_id, event_type, ts, value, sku, category, properties) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, CAST(%s AS jsonb)) ON CONFLICT (event_id) DO NOTHING"
)
NEW_JOBS = (
    "SELECT job_id, trigger_name, user_id, event FROM agent_jobs WHERE created_at >= %s ORDER BY created_at"
)
FINISHED_OUTBOX = """
SELECT outbox_id, kind, user_id, status, provider, payload FROM outbox
WHERE created_at >= %s AND status NOT IN ('pending', 'sending') ORDER BY outbox_id
"""
STORY_PENDING = (
    "SELECT count(*) AS n FROM outbox WHERE user_id = ANY(%s) AND status IN ('pending', 'sending')"
)


@dataclass
class DemoReport:
    decisions: list[DecisionRecord] = field(default_factory=list)
    delivered: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False


class _QuietServer:
    """uvicorn without its own signal handling: the demo owns Ctrl-C."""

    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            def capture_signals(self) -> contextlib.nullcontext[None]:  # type: ignore[override]
                return contextlib.nullcontext()

        self.server = Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))

    async def serve(self) -> None:
        await self.server.serve()

    def stop(self) -> None:
        self.server.should_exit = True


def prepare(settings: Settings, echo: Echo) -> Any:
    """Stores up, migrated, a small world and the catalogue loaded; returns the Stores."""
    from concurrent.futures import ThreadPoolExecutor

    from demo.seed.load import ensure_catalogue, seed_world
    from mca.db import connect, resolve_stores
    from mca.migrate import migrate
    from state.embedding import get_embedder

    with ThreadPoolExecutor(max_workers=1) as pool:
        embedder = pool.submit(get_embedder, settings.embedding.model, settings.embedding.batch_size)
        stores = resolve_stores(settings)
        migrate(settings, stores.state_url, stores.ops_url)
        echo(f"stores ready (embedded PostgreSQL at {stores.state_url.rsplit('@', 1)[-1]})")
        with connect(stores.state_url, autocommit=True) as conn:
            echo(seed_world(conn, DEMO_USERS, DEMO_EVENTS, DEMO_SEED).describe())
            loaded = ensure_catalogue(conn, embedder.result(), progress=False)
            echo(f"catalogue: {loaded} assets embedded" if loaded else "catalogue: already loaded")
    return stores


def _verdicts(record: DecisionRecord) -> list[str]:
    out = []
    for s in record.transcript.steps:
        if s.kind != "tool_call" or s.tool_name in ("search_assets", "get_user_context"):
            continue
        reason = f" ({s.reason_code})" if s.reason_code and s.verdict != "allowed" else ""
        target = (s.arguments or {}).get("asset_id") or ""
        out.append(f"{s.tool_name} {target}".strip() + f" -> guard: {s.verdict}{reason}")
    return out


async def run_story(settings: Settings, stores: Any, echo: Echo, *, follow: bool, timeout_s: float,
                    workers: int = 2) -> DemoReport:  # fmt: skip
    from agent.providers import make_model
    from agent.runtime import agent_runtime, trigger_service
    from ingest.event_sink import open_event_sink
    from mca.app import create_app
    from mca.process import signals_set
    from mca.services import Role, Services
    from mcp_tools.commands import make_dispatcher
    from mcp_tools.dispatch import run_forever
    from mcp_tools.runtime import Runtime
    from state.embedding import embedder_of

    report = DemoReport()
    announced: set[str] = set()  # job ids whose trigger line is printed
    run = secrets.token_hex(2)
    cast = Cast.for_run(run)
    started = datetime.now(UTC)
    story_users = list(cast.roles())
    stop = asyncio.Event()

    _seed_history(stores, cast, run, started)
    model = make_model(settings)
    echo(
        f"brain: {model.brain} ({model.model}); cast: "
        + "; ".join(f"{u} {r}" for u, r in cast.roles().items())
    )

    on_decision = _decision_printer(report, story_users, announced, echo)
    port = free_port()
    # One container for the whole process: the app, the workers, their tools and the
    # dispatcher share its pools (two, transactional and autocommit, on the embedded server).
    services = Services(settings, stores)
    web = _QuietServer(create_app(settings, stores, services=services), port)
    embedder = embedder_of(services)
    with signals_set(stop):
        async with (
            services,
            trigger_service(settings, stores, start="latest") as triggers,
            agent_runtime(
                settings,
                stores,
                workers=workers,
                model=model,
                embedder=embedder,
                on_decision=on_decision,
                services=services,
            ) as agents,
            Runtime(settings, stores, services=services).acquire() as tool_deps,
            httpx.AsyncClient(timeout=10) as http,
            contextlib.AsyncExitStack() as stack,
        ):
            await triggers.step_stream()  # pin the stream position: the seeded past triggers nothing
            state_pool = await services.pool(Role.STATE, autocommit=True)
            events = await stack.enter_async_context(open_event_sink(settings, stores, state_pool))
            dispatcher = make_dispatcher(settings, tool_deps.service, http, events)
            tasks = [
                asyncio.create_task(web.serve()),
                asyncio.create_task(agents.run(stop)),
                asyncio.create_task(run_forever(dispatcher, tool_deps.service.release_due, stop, 0.2)),
            ]
            # The watch holds one connection throughout: one more than the workers take.
            ops = await services.pool(Role.OPS, autocommit=True, size=workers + 3)
            try:
                base = f"http://127.0.0.1:{port}"
                await _wait_ready(http, base, stop)
                for caption, call in story_posts(cast, run, started):
                    response = await http.post(f"{base}/ingest", json=call)
                    echo(f"POST /ingest  {caption}: HTTP {response.status_code}")
                tasks.append(asyncio.create_task(triggers.run(stop)))
                report.finished = await _watch(
                    ops, report, started, story_users, announced, echo, stop, follow, timeout_s
                )
            finally:
                stop.set()
                web.stop()
                await asyncio.gather(*tasks, return_exceptions=True)
    return report


def _seed_history(stores: Any, cast: Cast, run: str, started: datetime) -> None:
    from mca.db import connect

    with connect(stores.state_url, autocommit=True) as conn, conn.transaction():
        for row in history_rows(cast, run, started):
            conn.execute(HISTORY_SQL, row)
    with connect(stores.ops_url, autocommit=True) as conn:
        conn.execute("DELETE FROM trigger_schedule")  # the demo runs every opportunity query at start


def _decision_printer(
    report: DemoReport, story_users: list[str], announced: set[str], echo: Echo
) -> Callable[[DecisionRecord], None]:
    """Each decision as the demo prints it; a cast member's lines are starred."""

    def on_decision(record: DecisionRecord) -> None:
        report.decisions.append(record)
        star = "*" if record.user_id in story_users else " "
        if record.job_id not in announced:
            announced.add(record.job_id)
            echo(f"{star} TRIGGER {record.trigger_name} fired for {record.user_id}")
        t = record.transcript
        echo(f"{star} DECISION {record.decision_id} [{record.trigger_name} / {record.user_id}] {t.outcome} "
             f"in {record.latency_ms:.0f} ms")  # fmt: skip
        for line in _verdicts(record):
            echo(f"      {line}")
        echo(f"      why: {t.rationale}")

    return on_decision


async def _wait_ready(http: httpx.AsyncClient, base: str, stop: asyncio.Event) -> None:
    deadline = asyncio.get_running_loop().time() + 30
    while not stop.is_set():
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get(f"{base}/healthz")).status_code == 200:
                return
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError("the demo's HTTP service did not start within 30 s")
        await asyncio.sleep(0.05)


async def _watch(pool: Any, report: DemoReport, since: datetime, story: list[str], seen_jobs: set[str],
                 echo: Echo, stop: asyncio.Event, follow: bool, timeout_s: float) -> bool:  # fmt: skip
    """Print new jobs and deliveries; True once every story customer was decided and delivered."""
    async with pool.connection() as ops:
        return await _watching(ops, report, since, story, seen_jobs, echo, stop, follow, timeout_s)


async def _watching(ops: Any, report: DemoReport, since: datetime, story: list[str], seen_jobs: set[str],
                    echo: Echo, stop: asyncio.Event, follow: bool, timeout_s: float) -> bool:  # fmt: skip
    seen_out: set[int] = set()
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not stop.is_set():
        for job in await (await ops.execute(NEW_JOBS, (since,))).fetchall():
            if job["job_id"] not in {j["job_id"] for j in report.jobs}:
                report.jobs.append(job)
            if job["job_id"] not in seen_jobs:
                seen_jobs.add(job["job_id"])
                star = "*" if job["user_id"] in story else " "
                echo(f"{star} TRIGGER {job['trigger_name']} fired for {job['user_id']}")
        for row in await (await ops.execute(FINISHED_OUTBOX, (since,))).fetchall():
            if row["outbox_id"] not in seen_out:
                seen_out.add(row["outbox_id"])
                report.delivered.append(row)
                star = "*" if row["user_id"] in story else " "
                echo(f"{star} DELIVERED #{row['outbox_id']} {row['kind']} to {row['user_id']}: "
                     f"{row['status']}"
                     f" via {row['provider'] or '-'}")  # fmt: skip
        decided = {r.user_id for r in report.decisions}
        pending = (await (await ops.execute(STORY_PENDING, (story,))).fetchone())["n"]
        done = set(story) <= decided and pending == 0
        if done and not follow:
            return True
        if asyncio.get_running_loop().time() > deadline and not follow:
            echo(f"demo timeout after {timeout_s:.0f} s (decided for {sorted(decided & set(story))})")
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)
    return False


def run_product_demo(
    settings: Settings, echo: Echo, *, follow: bool = False, timeout_s: float = 120.0
) -> DemoReport:
    try:
        stores = prepare(settings, echo)
    except KeyboardInterrupt:
        echo("stopped before the story started")
        return DemoReport()
    echo("starting: HTTP service, trigger service, agent workers, dispatcher (Ctrl-C stops)")
    report = asyncio.run(run_story(settings, stores, echo, follow=follow, timeout_s=timeout_s))
    story = [
        r for r in report.decisions if r.trigger_name in ("big_purchase", "cart_abandoned", "ticket_opened")
    ]
    echo(f"done: {len(report.jobs)} triggers, {len(report.decisions)} decisions, "
         f"{len(report.delivered)} actions delivered; explain one with `mca explain "
         f"{story[0].decision_id if story else 'DECISION_ID'}`")  # fmt: skip
    if settings.uses_embedded:
        echo("the embedded PostgreSQL keeps running for `mca explain` and `mca psql`; `mca db down` stops it")
    return report
