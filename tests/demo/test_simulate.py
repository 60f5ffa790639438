"""`mca simulate` end to end on a small world: the real product decides for synthetic customers,
its decisions and actions reach the stream, and the report has every group and the true lift."""

from __future__ import annotations

from pathlib import Path

import psycopg

from demo.simulate import DATABASE, SimulationConfig, run_simulation
from mca.db import embedded_server
from mca.settings import Settings


def test_a_small_simulation_runs_the_real_loop_and_reports(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    lines: list[str] = []
    chart = tmp_path / "sim.png"
    try:
        result = run_simulation(
            settings,
            SimulationConfig(customers=300, days=10, seed=3),
            lines.append,
            progress=False,
            chart=chart,
        )
        with psycopg.connect(embedded_server(settings).url(DATABASE)) as conn:
            kinds = dict(conn.execute("SELECT event_type, count(*) FROM events GROUP BY 1").fetchall())
    finally:
        embedded_server(settings).down()
    run = result.run
    assert run.decisions > 0 and 0 < run.sent <= run.decisions
    assert kinds["decision_recorded"] == run.decisions
    assert kinds["offer_sent"] == run.sent and kinds.get("action_withheld", 0) > 0
    assert result.uplift is not None and set(result.uplift.customers) >= {"control", "treatment"}
    assert 0 < run.truth.itt_lift < 0.2
    assert chart.stat().st_size > 1000
    assert result.ope is None, "a model run logs no propensities to evaluate"


def test_a_bandit_simulation_allocates_every_offer_and_prints_learning_curves(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from demo.simulate_curves import curve_chart, curve_table
    from mca.cli import app as cli_app

    settings = Settings(data_dir=tmp_path / "data")
    try:
        result = run_simulation(
            settings, SimulationConfig(customers=300, days=10, seed=3, policy="bandit"), print, progress=False
        )
        with psycopg.connect(embedded_server(settings).url(DATABASE)) as conn:
            allocated = conn.execute(
                "SELECT count(*), count(DISTINCT arm), min(propensity) FROM decision_allocations "
                "WHERE mode = 'bandit'"
            ).fetchone()
            offers = conn.execute(
                "SELECT count(*) FILTER (WHERE properties ? 'propensity'), count(*) FROM events "
                "WHERE event_type = 'offer_sent'"
            ).fetchone()
        url = embedded_server(settings).url(DATABASE)
        evaluated = CliRunner().invoke(
            cli_app, ["learn", "evaluate", "--policy", "greedy"], obj=Settings(state_url=url, ops_url=url)
        )
    finally:
        embedded_server(settings).down()
    run = result.run
    assert allocated is not None and offers is not None
    assert allocated[0] >= run.sent > 0 and allocated[1] > 1 and allocated[2] > 0
    assert offers[0] == offers[1] == run.sent  # every offer sent carries its propensity
    assert evaluated.exit_code == 0, evaluated.output  # the real logs can be evaluated off-policy
    assert "dr: " in evaluated.output and "effective sample size" in evaluated.output
    assert len(run.regret) == len(run.converted) > 0 and all(r >= -1e-12 for r in run.regret)
    # The allocator learned during the run: on day 1 it had part of day 0's evidence, the open
    # windows counted by how far they went (fewer weighed exposures than were sent).
    days = {d: (n, k) for d, n, k in run.evidence}
    assert days[0] == (0, 0) and 0 < days[1][0] < len(run.regret)
    check = result.ope
    assert check is not None and check.decisions == run.sent and 0 < check.truth < 1
    assert check.low <= check.estimate <= check.high
    table = curve_table([run])
    assert table.splitlines()[-1].startswith(f"bandit | {len(run.regret)} |")
    assert curve_chart([run], tmp_path / "curves.png").stat().st_size > 1000


def test_an_unknown_policy_is_refused_naming_the_option() -> None:
    import pytest

    from mca.errors import ConfigError

    with pytest.raises(ConfigError, match="--policy: one of uniform, model, bandit"):
        SimulationConfig(policy="greedy")
