"""`mca report uplift`: the uplift report on the command line."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mca.settings import Settings
    from measure.assign import Shares

# The configured group sizes for a process's settings: the composition root hands in the
# triggers file's (agent.shares); without one the report checks against the defaults.
SharesFor = Callable[["Settings"], Callable[[], "Shares"]]

report_app = typer.Typer(help="Reports over the attribution views.", no_args_is_help=True)
_shares_for: list[SharesFor] = []


def register(app: typer.Typer, *, shares: SharesFor | None = None) -> None:
    _shares_for[:] = [shares] if shares is not None else []
    app.add_typer(report_app, name="report")


def _configured(settings: Settings) -> Shares:
    from measure.assign import Shares

    return _shares_for[0](settings)() if _shares_for else Shares()


@report_app.command("uplift")
def uplift(
    ctx: typer.Context,
    trigger: Annotated[str | None, typer.Option(help="Only this trigger.")] = None,
    since: Annotated[str, typer.Option(help="Exposures since this long ago (e.g. 30d, 12h).")] = "30d",
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    by: Annotated[str | None, typer.Option(help="Also split by brain or segment.")] = None,
    holdout: Annotated[
        float | None, typer.Option(help="Override the triggers file's holdout share (sample-ratio check).")
    ] = None,
    control: Annotated[
        float | None,
        typer.Option(help="Override every trigger's control share in the triggers file (sample-ratio)."),
    ] = None,
) -> None:
    """Intent-to-treat uplift per trigger: group sizes, conversion, revenue, lift with 95% CIs.
    The sample-ratio check uses the shares the triggers file configures."""
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
    settings = settings_of(ctx)
    try:
        shares = _configured(settings).overridden(holdout, control)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--holdout/--control") from None
    stores = resolve_stores(settings)
    with connect(stores.state_url, autocommit=True) as conn:
        rows = conn.execute(EXPOSURES_SQL, exposure_params(trigger, period)).fetchall()
    typer.echo(render(report(rows, by=by, shares=shares), fmt))
