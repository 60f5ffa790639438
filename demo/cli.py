"""`mca seed` and `mca demo`: the synthetic programme and the stories told over it.

Only typer at import time; the database, torch and the product load inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    app.command("seed")(seed)
    app.command("demo")(demo)
    app.command("simulate")(simulate)


def seed(
    ctx: typer.Context,
    users: Annotated[int, typer.Option(min=1, help="How many customers.")] = 1_000,
    events: Annotated[
        int, typer.Option(min=2, help="How many events in total (at least 2 per user).")
    ] = 50_000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same world.")] = 1,
    skip_catalogue: Annotated[bool, typer.Option(help="Do not load the demo asset catalogue.")] = False,
) -> None:
    """Generate and load a synthetic loyalty programme (and the demo catalogue)."""
    from demo.seed.load import ensure_catalogue, seed_world
    from demo.seed.world import event_budgets
    from mca.cli_context import settings_of
    from mca.db import connect, resolve_stores
    from mca.migrate import migrate

    settings = settings_of(ctx)
    event_budgets(users, events, seed)  # bad sizes fail before anything starts
    stores = resolve_stores(settings)
    migrate(settings, stores.state_url, stores.ops_url)
    with connect(stores.state_url, autocommit=True) as conn:
        typer.echo(seed_world(conn, users, events, seed).describe())
        if not skip_catalogue:
            from state.embedding import get_embedder

            embedder = get_embedder(settings.embedding.model, settings.embedding.batch_size)
            loaded = ensure_catalogue(conn, embedder)
            typer.echo(f"catalogue: {loaded} assets loaded" if loaded else "catalogue: already loaded")


def demo(
    ctx: typer.Context,
    follow: Annotated[bool, typer.Option(help="Keep running after the story (Ctrl-C stops).")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the story's actions.")] = 120.0,
    world_only: Annotated[
        bool, typer.Option("--world-only", help="Only the state engine: one customer's context and assets.")
    ] = False,
) -> None:
    """The whole product on the embedded default: ingest, triggers, agent, guard, delivery."""
    from mca.cli_context import settings_of

    if world_only:  # only the state engine: one customer's context and the catalogue
        from demo.world import run_demo

        run_demo(settings_of(ctx), typer.echo)
        return
    from demo.product import run_product_demo

    report = run_product_demo(settings_of(ctx), typer.echo, follow=follow, timeout_s=timeout)
    if not report.finished and not follow:
        raise typer.Exit(1)


def _echo_ope(result: Any) -> None:
    check = result.ope
    if check is None:
        return
    typer.echo(
        f"off-policy ({result.run.config.policy} logs, {check.decisions} decisions): greedy's doubly robust "
        f"estimate {check.estimate:.4f} (95% {check.low:.4f} .. {check.high:.4f}, effective sample size "
        f"{check.effective_sample_size:.0f}), true {check.truth:.4f}: relative error "
        f"{check.relative_error:.1%}, interval {'covers' if check.covered else 'misses'} the truth"
    )


def simulate(
    ctx: typer.Context,
    customers: Annotated[int, typer.Option(min=10, help="How many synthetic customers.")] = 2_000,
    days: Annotated[
        int, typer.Option(min=8, help="Simulated days (the last 7 only let windows close).")
    ] = 28,
    seed: Annotated[int, typer.Option(help="Same seed, same customers and the same run.")] = 1,
    control: Annotated[float, typer.Option(min=0.01, max=0.9, help="The trigger's control share.")] = 0.3,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    chart: Annotated[Path, typer.Option(help="Where to write the PNG of conversion by group.")] = Path(
        "simulation.png"
    ),
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    policy: Annotated[
        list[str] | None,
        typer.Option(
            help="uniform, model or bandit; repeat it for learning curves of each (same customers)."
        ),
    ] = None,
    curves: Annotated[Path, typer.Option(help="Where to write the learning curves PNG.")] = Path(
        "learning_curves.png"
    ),
) -> None:
    """Drive the real product with synthetic customers whose response is known; print the uplift
    report beside the true lift, and chart conversion by group. With several --policy: learning
    curves (cumulative conversion and regret against the oracle) as a table and a PNG."""
    from demo.simulate import SimulationConfig, run_simulation
    from mca.cli_context import settings_of
    from measure.read import render

    policies = policy or ["model"]
    configs = [
        SimulationConfig(customers=customers, days=days, seed=seed, control=control, policy=p)
        for p in policies
    ]  # every --policy is checked before the first run starts
    if len(configs) > 1:
        from demo.simulate_curves import curve_chart, curve_table

        results = [run_simulation(settings_of(ctx), c, typer.echo, progress=progress) for c in configs]
        runs = [r.run for r in results]
        typer.echo(curve_table(runs))
        typer.echo(f"learning curves: {curve_chart(runs, curves)}")
        for r in results:
            _echo_ope(r)
        return
    config = configs[0]
    result = run_simulation(settings_of(ctx), config, typer.echo, progress=progress, chart=chart)
    if result.run.regret:
        from demo.simulate_curves import curve_table

        typer.echo(curve_table([result.run]))
    _echo_ope(result)
    if result.uplift is not None:
        typer.echo(render([result.uplift], fmt))
    typer.echo(f"true lift (ITT, the simulator's hidden probabilities): {result.run.truth.itt_lift:+.4f}")
    if result.covered is not None:
        typer.echo(f"the report's 95% interval {'contains' if result.covered else 'misses'} the true lift")
    if result.chart is not None:
        typer.echo(f"chart: {result.chart}")
