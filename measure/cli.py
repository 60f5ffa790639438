"""`mca report uplift`: the uplift report on the command line."""

from __future__ import annotations

from typing import Annotated

import typer

report_app = typer.Typer(help="Reports over the attribution views.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")


@report_app.command("uplift")
def uplift(
    ctx: typer.Context,
    trigger: Annotated[str | None, typer.Option(help="Only this trigger.")] = None,
    since: Annotated[str, typer.Option(help="Exposures since this long ago (e.g. 30d, 12h).")] = "30d",
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    by: Annotated[str | None, typer.Option(help="Also split by brain or segment.")] = None,
    holdout: Annotated[float, typer.Option(help="Configured holdout share (sample-ratio check).")] = 0.05,
    control: Annotated[float, typer.Option(help="Configured control share (sample-ratio check).")] = 0.10,
) -> None:
    """Intent-to-treat uplift per trigger: group sizes, conversion, revenue, lift with 95% CIs."""
    from mca.cli_context import settings_of
    from mca.db import connect, resolve_stores
    from mca.since import parse_since
    from measure.read import BY, EXPOSURES_SQL, FORMATS, exposure_params, render
    from measure.uplift import report

    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="--format")
    if by is not None and by not in BY:
        raise typer.BadParameter(f"must be one of {', '.join(BY)}", param_hint="--by")
    try:
        period = parse_since(since)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--since") from None
    stores = resolve_stores(settings_of(ctx))
    with connect(stores.state_url, autocommit=True) as conn:
        rows = conn.execute(EXPOSURES_SQL, exposure_params(trigger, period)).fetchall()
    typer.echo(render(report(rows, by=by, holdout=holdout, control=control), fmt))
