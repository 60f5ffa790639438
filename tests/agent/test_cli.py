"""`mca trigger --once` and `mca agent` argument checks through the real CLI."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from typer.testing import CliRunner

from mca.cli import app as cli_app
from mca.testing import add_events, event_row


async def test_trigger_once_queues_jobs_then_nothing_more(aconn, settings) -> None:
    # `mca trigger` runs on the real clock: the purchase happens now, inside max_event_age.
    await add_events(aconn, event_row("e1", "u1", "purchase", datetime.now(UTC), value=250))
    runner = CliRunner()
    first = await asyncio.to_thread(
        runner.invoke, cli_app, ["trigger", "--once", "--start", "earliest"], obj=settings
    )
    assert first.exit_code == 0, first.output
    assert "1 jobs queued" in first.output
    again = await asyncio.to_thread(runner.invoke, cli_app, ["trigger", "--once"], obj=settings)
    assert "0 jobs queued" in again.output


async def test_bad_options_are_refused(settings) -> None:
    runner = CliRunner()
    bad = await asyncio.to_thread(runner.invoke, cli_app, ["trigger", "--start", "middle"], obj=settings)
    assert bad.exit_code != 0 and "--start" in bad.output
    workers = await asyncio.to_thread(runner.invoke, cli_app, ["agent", "--workers", "0"], obj=settings)
    assert workers.exit_code != 0 and "--workers" in workers.output


async def test_agent_status_prints_queue_counts_with_expired(aconn, settings) -> None:
    import json

    await add_events(aconn, event_row("e1", "u1", "purchase", datetime.now(UTC), value=250))
    runner = CliRunner()
    queued = await asyncio.to_thread(
        runner.invoke, cli_app, ["trigger", "--once", "--start", "earliest"], obj=settings
    )
    assert queued.exit_code == 0, queued.output
    await aconn.execute("UPDATE agent_jobs SET status = 'expired'")
    shown = await asyncio.to_thread(runner.invoke, cli_app, ["agent", "--status"], obj=settings)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output) == {"queued": 0, "running": 0, "done": 0, "dead": 0, "expired": 1}


def test_triggers_check_says_ok_or_lists_every_problem(tmp_path) -> None:
    from mca.settings import Settings

    settings = Settings(data_dir=tmp_path / "data")
    runner = CliRunner()
    good = runner.invoke(cli_app, ["triggers", "check"], obj=settings)
    assert good.exit_code == 0 and good.output.startswith("OK ") and "5 rules, 3 opportunities" in good.output
    bad_file = tmp_path / "triggers.yaml"
    bad_file.write_text(
        "rules:\n"
        "  - {name: churn, event: churn_scored, when: ['stats.churn_scor >= 0.8'], goal: retention}\n"
        "  - {name: buy, event: purchase, when: ['event.value >= \"100\"'], goal: post_purchse}\n"
    )
    bad = runner.invoke(cli_app, ["triggers", "check", str(bad_file)], obj=settings)
    assert bad.exit_code == 1 and "OK" not in bad.output
    lines = bad.output.strip().splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "rules[churn].when",
        "rules[buy].goal",
        "rules[buy].when",
    ]
    assert "did you mean stats.churn_score?" in lines[0] and "did you mean post_purchase?" in lines[1]
    missing = runner.invoke(cli_app, ["triggers", "check", str(tmp_path / "nope.yaml")], obj=settings)
    assert missing.exit_code == 1 and "cannot read triggers file" in missing.output


def test_triggers_check_shows_each_trigger_selection_and_refuses_a_bad_one(tmp_path) -> None:
    from mca.settings import Settings

    settings = Settings(data_dir=tmp_path / "data")
    runner = CliRunner()
    file = tmp_path / "triggers.yaml"
    file.write_text(
        "rules:\n"
        "  - {name: buy, event: purchase, goal: post_purchase, selection: bandit}\n"
        "  - {name: back, event: session_start, goal: win_back}\n"
    )
    good = runner.invoke(cli_app, ["triggers", "check", str(file)], obj=settings)
    assert good.exit_code == 0, good.output
    assert "buy: goal post_purchase, selection bandit" in good.output
    assert "back: goal win_back, selection model" in good.output  # the default
    file.write_text("rules:\n  - {name: buy, event: purchase, goal: post_purchase, selection: greedy}\n")
    bad = runner.invoke(cli_app, ["triggers", "check", str(file)], obj=settings)
    assert bad.exit_code == 1 and "OK" not in bad.output
    assert "rules[buy].selection" in bad.output and "'bandit'" in bad.output
