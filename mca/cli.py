"""The `mca` command line. Settings are read once here and handed to every command.

Each package adds its own commands through ``register(app)`` in its ``cli`` module; those
modules import only typer at load time and their heavy parts inside the command bodies, so
`mca config` does not load torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Annotated

import typer

from mca.errors import MCAError
from mca.settings import Settings, load_settings, mask_url

app = typer.Typer(
    name="mca",
    help="mca: a streaming-database-centric agentic loyalty engine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The embedded PostgreSQL server.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def settings_of(ctx: typer.Context) -> Settings:
    root = ctx.find_root()
    if root.obj is None:
        root.obj = load_settings()
    assert isinstance(root.obj, Settings)
    return root.obj


@app.callback()
def _root(ctx: typer.Context) -> None:
    # Offline by default: nothing may fetch model weights at run time.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if ctx.obj is None:
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

    settings = settings_of(ctx)
    typer.echo(embedded_server(settings).status().describe())
    if settings.state_url:
        typer.echo(f"state store: {mask_url(settings.state_url)} (external)")
    if settings.ops_url:
        typer.echo(f"ops store: {mask_url(settings.ops_url)} (external)")


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
    import importlib

    for module_name in ("mca.commands", "ingest.cli", "mcp_tools.cli", "agent.cli"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name == module_name:
                continue
            raise
        module.register(app)


_register_packages()


def main() -> None:
    try:
        app()
    except MCAError as err:
        for line in str(err).splitlines():
            typer.secho(f"error: {line}", fg=typer.colors.RED, err=True)
        sys.exit(err.exit_code)
