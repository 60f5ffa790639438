"""`mca trigger`, `mca agent --workers N`, `mca explain DECISION_ID`, `mca triggers check [FILE]`.

Only typer and the standard library load with the CLI; the runtime loads inside commands.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

if TYPE_CHECKING:
    from agent.records import DecisionRecord


triggers_app = typer.Typer(help="The triggers file (rules and opportunity queries).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command()(trigger)
    app.command()(agent)
    app.command()(explain)
    app.add_typer(triggers_app, name="triggers")


def trigger(
    ctx: typer.Context,
    start: Annotated[
        str, typer.Option(help="Where a first run starts: latest (default) or earliest.")
    ] = "latest",
    once: Annotated[bool, typer.Option(help="Process what is there now, run due queries, exit.")] = False,
) -> None:
    """Run the trigger service: live rules on the event stream and scheduled opportunity queries."""
    from agent.runtime import run_trigger_service, trigger_service
    from mca.cli_context import settings_of
    from mca.db import resolve_stores
    from mca.process import configure_logging, stop_on_signals

    if start not in ("latest", "earliest"):
        raise typer.BadParameter("use latest or earliest", param_hint="--start")
    where: Literal["latest", "earliest"] = "earliest" if start == "earliest" else "latest"
    configure_logging()
    settings = settings_of(ctx)
    stores = resolve_stores(settings)

    async def run() -> None:
        if not once:
            await run_trigger_service(settings, stores, stop_on_signals(), start=where)
            return
        async with trigger_service(settings, stores, start=where) as svc:
            total = 0
            while (report := await svc.step_stream()).events:
                total += len(report.jobs)
            total += len((await svc.step_opportunities()).jobs)
            typer.echo(f"{total} jobs queued")

    asyncio.run(run())


def agent(
    ctx: typer.Context,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Concurrent decisions.")] = 2,
    brain: Annotated[str | None, typer.Option(help="rules | groq | openai (default: MCA_BRAIN).")] = None,
    status: Annotated[
        bool, typer.Option("--status", help="Print the job queue's counts per status (JSON), then exit.")
    ] = False,
) -> None:
    """Run agent workers: claim jobs, decide through the MCP tools, record every decision."""
    import json

    from agent.providers import make_model
    from agent.queue import counts
    from agent.runtime import agent_runtime
    from mca.cli_context import settings_of
    from mca.db import connect_async, resolve_stores
    from mca.process import configure_logging, stop_on_signals
    from mca.services import Services

    settings = settings_of(ctx)
    stores = resolve_stores(settings)

    async def queue_counts() -> dict[str, int]:
        conn = await connect_async(stores.ops_url, autocommit=True)
        try:
            return await counts(conn)
        finally:
            await conn.close()

    if status:
        typer.echo(json.dumps(asyncio.run(queue_counts())))
        return
    configure_logging()
    model = make_model(settings, brain)

    def show(record: DecisionRecord) -> None:
        t = record.transcript
        typer.echo(
            f"{record.decision_id} {record.trigger_name} {record.user_id}: {t.outcome} - {t.rationale}"
        )

    async def run() -> None:
        # One container for the process: the workers and their in-process tools share its pools.
        async with (
            Services(settings, stores) as services,
            agent_runtime(
                settings, stores, workers=workers, model=model, on_decision=show, services=services
            ) as rt,
        ):
            typer.echo(f"{workers} workers, brain {model.brain} ({model.model}); Ctrl-C stops")
            typer.echo(f"jobs: {json.dumps(await queue_counts())}")
            await rt.run(stop_on_signals())
            typer.echo(f"jobs: {json.dumps(await queue_counts())}")

    asyncio.run(run())


def explain(
    ctx: typer.Context,
    decision_id: Annotated[str, typer.Argument(help="The decision id (dec_…), as printed by the agent.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw record.")] = False,
) -> None:
    """Tell the story of one decision: why it woke, what it knew, what it did, and why."""
    import json

    from agent import records
    from agent.errors import DecisionNotFound
    from agent.explain import explain as story
    from mca.cli_context import settings_of
    from mca.db import connect_async, resolve_stores

    stores = resolve_stores(settings_of(ctx))

    async def load() -> dict[str, object] | None:
        conn = await connect_async(stores.ops_url, autocommit=True)
        try:
            found = await records.load(conn, decision_id)
        finally:
            await conn.close()
        if found is not None:
            state = await connect_async(stores.state_url, autocommit=True)
            try:
                found["outcomes"] = await records.outcomes(state, decision_id)
            finally:
                await state.close()
        return found

    found = asyncio.run(load())
    if found is None:
        raise DecisionNotFound(f"no decision {decision_id!r} in the ops store")
    typer.echo(json.dumps(found, indent=2, default=str) if as_json else story(found))


@triggers_app.command("check")
def triggers_check(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Argument(help="The triggers file (default: MCA_TRIGGERS_FILE).", show_default=False),
    ] = None,
) -> None:
    """Check a triggers file as the trigger service would load it: OK, or every problem and exit 1."""
    from agent.errors import TriggerConfigError
    from agent.trigger_config import load_triggers
    from mca.cli_context import settings_of

    settings = settings_of(ctx)
    path = file or settings.agent.triggers_file
    try:
        loaded = load_triggers(
            path, queries_dir=settings.stores.sql_dir / "triggers", prompts_dir=settings.agent.prompts_dir
        )
    except TriggerConfigError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"OK {path}: {len(loaded.rules)} rules, {len(loaded.opportunities)} opportunities")
    for spec in (*loaded.rules, *loaded.opportunities):
        typer.echo(f"  {spec.name}: goal {spec.goal}, selection {spec.selection.value}")
