"""`mca learn arms` and `mca learn evaluate` over the real attribution views: the allocator's own
posteriors per arm, each goal apart, and a clear refusal when the logs carry no propensities."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from typer.testing import CliRunner

from mca.cli import app as cli_app
from mca.settings import Settings

DECIDED = datetime.now(UTC) - timedelta(days=12)


def _sent(
    conn: Any, n: int, asset: str, converted: bool, propensity: float | None = None, *,
    goal: str = "retention", at: datetime = DECIDED,
) -> None:  # fmt: skip
    props = {"decision_id": f"d{n}", "trigger": "churn_risk", "goal": goal, "asset": asset,
             "channel": "email", "experiment_group": "treatment", "window_s": 7 * 86400}  # fmt: skip
    if propensity is not None:
        props |= {"propensity": propensity, "candidates": [{"arm": "a:email"}, {"arm": "b:email"}]}
    conn.execute(
        "INSERT INTO events (event_id, user_id, event_type, ts, properties) "
        "VALUES (%s, %s, 'offer_sent', %s, %s)",
        (f"act-{n}", f"u{n}", at, json.dumps(props)),
    )
    if converted:
        conn.execute(
            "INSERT INTO events (event_id, user_id, event_type, ts, value) "
            "VALUES (%s, %s, 'purchase', %s, 20)",
            (f"buy-{n}", f"u{n}", at + timedelta(hours=1)),
        )


def test_arms_prints_posteriors_and_writes_a_chart(db_url: str, tmp_path: Path) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        for n in range(60):
            _sent(conn, n, "a" if n % 2 else "b", converted=(n % 2 == 1 and n % 3 == 0))
    settings = Settings(state_url=db_url, ops_url=db_url, data_dir=tmp_path)
    chart = tmp_path / "arms.png"
    result = CliRunner().invoke(cli_app, ["learn", "arms", "--chart", str(chart)], obj=settings)
    assert result.exit_code == 0, result.output
    assert "retention | a:email | 30 (30) | 10 | 30.0 |" in result.output
    assert "retention | b:email | 30 (30) | 0 | 30.0 |" in result.output
    assert chart.stat().st_size > 1000


def test_arms_shows_the_posteriors_the_allocator_decides_with(db_url: str, tmp_path: Path) -> None:
    """Open windows count in part, as in the allocator's cache: not only matured exposures."""
    import asyncio

    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    from learn.arm_cache import ArmCache

    yesterday = datetime.now(UTC) - timedelta(days=1)
    with psycopg.connect(db_url, autocommit=True) as conn:
        for n in range(20):
            _sent(conn, n, "a", converted=n < 4, at=yesterday)

    async def cached_mean() -> float:
        async with AsyncConnectionPool(
            db_url, min_size=1, max_size=1, open=False, kwargs={"row_factory": dict_row}
        ) as pool:
            cache = ArmCache(pool)
            await cache.prime()
            return cache.snapshot.posteriors("retention", ["a:email"])[0].mean

    expected = asyncio.run(cached_mean())
    settings = Settings(state_url=db_url, ops_url=db_url, data_dir=tmp_path)
    result = CliRunner().invoke(
        cli_app, ["learn", "arms", "--chart", str(tmp_path / "arms.png")], obj=settings
    )
    assert result.exit_code == 0, result.output
    assert "retention | a:email | 20 (0) | 4 |" in result.output
    assert f"| {expected:.1%} (" in result.output


def test_evaluate_refuses_logs_without_propensities(db_url: str, tmp_path: Path) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        _sent(conn, 1, "a", converted=True)
    settings = Settings(state_url=db_url, ops_url=db_url, data_dir=tmp_path)
    result = CliRunner().invoke(cli_app, ["learn", "evaluate", "--policy", "greedy"], obj=settings)
    assert result.exit_code != 0
    said = str(result.exception or result.output)
    assert "none of the 1 matured actions" in said and "propensities missing" in said


def test_evaluate_estimates_a_policy_from_logged_propensities(db_url: str, tmp_path: Path) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        for n in range(40):
            _sent(conn, n, "a" if n % 2 else "b", converted=n % 4 == 1, propensity=0.5)
    settings = Settings(state_url=db_url, ops_url=db_url, data_dir=tmp_path)
    result = CliRunner().invoke(cli_app, ["learn", "evaluate", "--policy", "uniform"], obj=settings)
    assert result.exit_code == 0, result.output
    # Uniform over the two logged arms equals the logging policy: IPS is the observed rate, 10/40.
    assert "goal retention:\nips: 0.2500 per decision" in result.output


def test_evaluate_takes_each_goal_apart(db_url: str, tmp_path: Path) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        for n in range(40):  # the same arms under two goals: one converts on a, the other never
            _sent(conn, n, "a" if n % 2 else "b", converted=n % 2 == 1, propensity=0.5, goal="retention")
            _sent(conn, 100 + n, "a" if n % 2 else "b", converted=False, propensity=0.5, goal="win_back")
    settings = Settings(state_url=db_url, ops_url=db_url, data_dir=tmp_path)
    runner = CliRunner()
    both = runner.invoke(cli_app, ["learn", "evaluate", "--policy", "greedy"], obj=settings)
    assert both.exit_code == 0, both.output
    # Greedy on retention's posteriors always picks a, which converted every time it was sent.
    assert "goal retention:\nips: 1.0000 per decision" in both.output
    assert "goal win_back:\nips: 0.0000 per decision" in both.output
    one = runner.invoke(
        cli_app, ["learn", "evaluate", "--policy", "greedy", "--goal", "win_back"], obj=settings
    )
    assert one.exit_code == 0, one.output
    assert "goal retention" not in one.output and "goal win_back:" in one.output


def test_evaluate_on_a_few_decisions_says_what_it_cannot_estimate_without_a_warning(
    db_url: str, tmp_path: Path
) -> None:
    import warnings

    with psycopg.connect(db_url, autocommit=True) as conn:
        for n in range(3):  # only arm b logged; a policy all on arm a
            _sent(conn, n, "b", converted=n == 1, propensity=0.5)
    weights = tmp_path / "only_a.json"
    weights.write_text(json.dumps({"a:email": 1.0}))
    settings = Settings(state_url=db_url, ops_url=db_url, data_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning or scipy's DegenerateDataWarning fails it
        result = CliRunner().invoke(cli_app, ["learn", "evaluate", "--policy", str(weights)], obj=settings)
    assert result.exit_code == 0, result.output
    assert "snips: not estimable: the target policy gives probability 0 to the arm logged" in result.output
    assert "ips: 0.0000 per decision (no interval from 3 decisions (at least 10))" in result.output
