"""The `mca` command line, the composition root: settings are read once here, every package's
commands are registered here, and `mca serve` assembles the app here.

Each package adds its own commands through ``register(app)`` in its ``cli`` module; those
modules import only typer at load time and their heavy parts inside the command bodies, so
`mca config` does not load torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Annotated

import typer

from mca.cli_context import settings_of
from mca.errors import MCAError

if TYPE_CHECKING:
    from mca.db import Stores
    from mca.events import EventSink
    from mca.settings import Settings
    from measure.assign import Shares

app = typer.Typer(
    name="mca",
    help="mca: a streaming-database-centric agentic loyalty engine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The embedded PostgreSQL server.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.callback()
def _root(ctx: typer.Context) -> None:
    # Offline by default: nothing may fetch model weights at run time.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if ctx.obj is None:
        from mca.settings import load_settings  # pydantic loads here, not for `mca --help`

        ctx.obj = load_settings()


@app.command()
def config(ctx: typer.Context) -> None:
    """Print the effective settings, secrets masked."""
    typer.echo(json.dumps(settings_of(ctx).masked(), indent=2, default=str))


@db_app.command("up")
def db_up(ctx: typer.Context) -> None:
    """Start the embedded server (initialising its data folder the first time)."""
    from mca.db import embedded_server

    server = embedded_server(settings_of(ctx))
    server.up()
    typer.echo(server.status().describe())


@db_app.command("down")
def db_down(ctx: typer.Context) -> None:
    """Stop the embedded server."""
    from mca.db import embedded_server

    server = embedded_server(settings_of(ctx))
    typer.echo("stopped" if server.down() else "was not running")


@db_app.command("status")
def db_status(ctx: typer.Context) -> None:
    """Say whether the embedded server runs, and where."""
    from mca.db import embedded_server
    from mca.masking import mask_url

    settings = settings_of(ctx)
    typer.echo(embedded_server(settings).status().describe())
    if settings.stores.state_url:
        typer.echo(f"state store: {mask_url(settings.stores.state_url)} (external)")
    if settings.stores.ops_url:
        typer.echo(f"ops store: {mask_url(settings.stores.ops_url)} (external)")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def psql(
    ctx: typer.Context,
    commands: Annotated[
        list[str] | None,
        typer.Option("-c", "--command", help="Run this command and exit; repeat to run several, in order."),
    ] = None,
    ops: Annotated[
        bool, typer.Option("--ops", help="Open the ops store instead of the state store.")
    ] = False,
) -> None:
    """Open the real psql (from the embedded wheel) on the state store (or --ops)."""
    from mca.db import embedded_server, resolve_stores
    from mca.embedded import psql_path

    settings = settings_of(ctx)
    if settings.uses_embedded:
        notice = embedded_server(settings).start_notice()
        if notice:  # psql from another folder would otherwise open an empty server without a word
            typer.echo(notice, err=True)
    stores = resolve_stores(settings)
    args = [str(psql_path()), stores.ops_url if ops else stores.state_url]
    for command in commands or []:
        args += ["-c", command]
    args += list(ctx.args)
    raise typer.Exit(subprocess.call(args))


@app.command()
def migrate(
    ctx: typer.Context,
    wait: Annotated[
        float,
        typer.Option(
            "--wait", min=0, metavar="SECONDS", help="Retry this long while a store is still starting."
        ),
    ] = 0.0,
) -> None:
    """Apply the state and ops SQL files that have not been applied yet."""
    from mca.db import resolve_stores, wait_reachable
    from mca.migrate import migrate as run_migrations

    settings = settings_of(ctx)
    stores = resolve_stores(settings)
    if wait > 0:
        for url in dict.fromkeys((stores.state_url, stores.ops_url)):
            wait_reachable(url, wait, on_wait=lambda line: typer.echo(line, err=True))
    reports = run_migrations(
        settings, stores.state_url, stores.ops_url, on_apply=lambda f: typer.echo(f"applied {f}")
    )
    for store, report in reports.items():
        typer.echo(
            f"{store}: {len(report.applied)} applied, {len(report.already_applied)} already applied, "
            f"{len(report.skipped_other_engine)} for the other engine"
        )


def _register_packages() -> None:
    # Each package's `cli` module imports only typer at load time (heavy parts load inside the
    # command bodies), so `mca --help` stays fast.
    from agent import cli as agent_cli
    from demo import cli as demo_cli
    from ingest import cli as ingest_cli
    from learn import cli as learn_cli
    from mcp_tools import cli as tools_cli
    from measure import cli as measure_cli
    from state import cli as state_cli

    for module in (state_cli, demo_cli, ingest_cli, learn_cli, agent_cli):
        module.register(app)
    measure_cli.register(app, shares=_configured_shares)
    tools_cli.register(app, open_sink=_open_event_sink)


def _open_event_sink(settings: Settings, stores: Stores) -> AbstractAsyncContextManager[EventSink]:
    # Imported when `mca dispatch` opens it, not when the CLI loads (psycopg, the transports).
    from ingest.event_sink import open_event_sink

    return open_event_sink(settings, stores)


def _configured_shares(settings: Settings) -> Callable[[], Shares]:
    # The triggers file is the agent's; the report (a lower floor) gets its shares from here.
    from agent.shares import configured_shares

    return configured_shares(settings)


_register_packages()


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address (default MCA_HTTP_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default MCA_HTTP_PORT).")] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
) -> None:
    """Run the HTTP service: POST /ingest, /healthz, /readyz, OpenAPI docs at /docs.

    With no credentials configured (open mode) it listens on loopback only, whatever --host says.
    """
    import uvicorn

    from mca.app import create_app, gc_tuning
    from mca.auth import bind_host
    from mca.db import resolve_stores

    settings = settings_of(ctx)
    stores = resolve_stores(settings)
    # gc_tuning goes last: its lifespan freezes what every other part set up at start.
    application = create_app(settings, stores, extra=[gc_tuning()])
    bound, notice = bind_host(host or settings.http.host, application.state.auth)
    if notice:
        typer.secho(notice, fg=typer.colors.YELLOW, err=True)
    uvicorn.run(
        application,
        host=bound,
        port=settings.http.port if port is None else port,
        access_log=access_log,
        log_level="info",
    )


def main() -> None:
    try:
        app()
    except MCAError as err:
        for line in str(err).splitlines():
            typer.secho(f"error: {line}", fg=typer.colors.RED, err=True)
        sys.exit(err.exit_code)
