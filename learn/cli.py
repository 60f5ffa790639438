"""`mca learn arms [--goal G]` and `mca learn evaluate --policy P --since 30d`.

Only typer at import time; numpy, scipy and the database load inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

learn_app = typer.Typer(help="What mca has learned about its offers.", no_args_is_help=True)

LOGGED_SQL = """
SELECT a.goal, coalesce(a.asset, a.action_type) || ':' || coalesce(a.channel, '') AS arm, a.propensity,
       e.properties -> 'candidates' AS candidates, a.converted
FROM action_attribution a JOIN events e ON e.event_id = a.action_id
WHERE a.sent AND NOT a.pending AND a.acted_at >= now() - %(since)s
  AND (CAST(%(goal)s AS text) IS NULL OR a.goal = %(goal)s)
"""


def logged_decisions(rows: list[dict[str, Any]]) -> list[Any]:
    """The allocator's decisions among the actions: its arm among its allowed candidates (an
    action of the same decision on another arm, e.g. a CRM note, is not what was allocated)."""
    from learn.policies import LoggedDecision

    logs = []
    for r in rows:
        allowed = tuple(c["arm"] for c in (r["candidates"] or []) if "refused" not in c)
        if r["propensity"] is not None and str(r["arm"]) in allowed:
            logs.append(LoggedDecision(str(r["arm"]), float(r["propensity"]), allowed, float(r["converted"])))
    return logs


def register(app: typer.Typer) -> None:
    app.add_typer(learn_app, name="learn")


@learn_app.command("arms")
def arms(
    ctx: typer.Context,
    goal: Annotated[str | None, typer.Option(help="Only this goal.")] = None,
    chart: Annotated[Path, typer.Option(help="Where to write the PNG.")] = Path("arms.png"),
) -> None:
    """Each arm's posterior as the allocator decides with it (mean, interval), probability of
    being best and traffic share."""
    import numpy as np

    from learn.arms import arm_views, table
    from learn.arms import chart as draw

    evidence, counts = _evidence(ctx)
    views = arm_views(evidence, counts, np.random.default_rng(0), goal)
    if not views:
        typer.echo("no arm has been sent yet" + (f" for goal {goal}" if goal else ""))
        return
    typer.echo(table(views))
    typer.echo(f"chart: {draw(views, chart)}")


def _evidence(ctx: typer.Context) -> tuple[dict[tuple[str, str], Any], dict[tuple[str, str], Any]]:
    """The allocator's evidence now, read the way its cache reads it."""
    from learn.evidence import read_evidence_and_counts
    from mca.cli_context import settings_of
    from mca.clock import system_clock
    from mca.db import connect, resolve_stores

    stores = resolve_stores(settings_of(ctx))
    with connect(stores.state_url, autocommit=True) as conn:
        return read_evidence_and_counts(conn, system_clock())


@learn_app.command("evaluate")
def evaluate(
    ctx: typer.Context,
    policy: Annotated[str, typer.Option(help="uniform, greedy, thompson, first, or a JSON/YAML file.")],
    since: Annotated[str, typer.Option(help="Logged decisions since this long ago (e.g. 30d).")] = "30d",
    goal: Annotated[str | None, typer.Option(help="Only this goal (default: each goal apart).")] = None,
) -> None:
    """What POLICY would have earned on the logged decisions: IPS, SNIPS and doubly robust, per
    goal, with the allocator's current posteriors as greedy's and Thompson's beliefs and as the
    doubly robust reward model."""
    import numpy as np

    from learn.arm_cache import ArmSnapshot
    from learn.evidence import read_evidence_and_counts
    from learn.ope import MissingPropensities
    from learn.policies import policy_from
    from mca.cli_context import settings_of
    from mca.clock import system_clock
    from mca.db import connect, resolve_stores
    from mca.since import parse_since

    try:
        period = parse_since(since)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--since") from None
    target = policy_from(policy)
    stores = resolve_stores(settings_of(ctx))
    with connect(stores.state_url, autocommit=True) as conn:  # the logs and the evidence, one connection
        rows = conn.execute(LOGGED_SQL, {"since": period, "goal": goal}).fetchall()
        evidence, _counts = read_evidence_and_counts(conn, system_clock())
    if not rows:
        raise MissingPropensities(f"no matured logged decisions in the last {since}")
    goals = {str(r["goal"]) for r in rows}
    by_goal = {g: logged_decisions([r for r in rows if r["goal"] == g]) for g in goals}
    if not any(by_goal.values()):
        raise MissingPropensities(
            f"none of the {len(rows)} matured actions of the last {since} was chosen by the allocator "
            "(selection: bandit or explore in the triggers file): propensities missing"
        )
    snapshot = ArmSnapshot.of(evidence)
    rng = np.random.default_rng(0)
    for name, logs in sorted(by_goal.items()):
        if logs:
            arms = sorted({arm for row in logs for arm in row.candidates})
            posts = dict(zip(arms, snapshot.posteriors(name, arms), strict=True))
            typer.echo(f"goal {name}:")
            _estimates(logs, target, posts, rng)


def _estimates(logs: list[Any], target: Any, posts: dict[str, Any], rng: Any) -> None:
    from learn.ope import Estimator, NotEstimable
    from learn.ope import evaluate as estimate
    from learn.policies import evaluation_arrays

    columns = evaluation_arrays(logs, target, posts, rng)
    for name in Estimator:
        try:
            est = estimate(name, **columns, rng=rng)  # type: ignore[arg-type]
        except NotEstimable as err:
            typer.echo(f"{name.value}: not estimable: {err}")
            continue
        interval = f"95% {est.low:.4f} .. {est.high:.4f}" if not est.note else est.note
        typer.echo(
            f"{name.value}: {est.value:.4f} per decision ({interval}), "
            f"effective sample size {est.effective_sample_size:.0f} of {est.decisions}"
        )
