"""`mca trigger --once` and `mca agent` argument checks through the real CLI."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from mca.cli import app as cli_app
from tests.agent.conftest import T0, add_events, event_row


async def test_trigger_once_queues_jobs_then_nothing_more(aconn, settings) -> None:
    await add_events(aconn, event_row("e1", "u1", "purchase", T0, value=250))
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

    await add_events(aconn, event_row("e1", "u1", "purchase", T0, value=250))
    runner = CliRunner()
    queued = await asyncio.to_thread(
        runner.invoke, cli_app, ["trigger", "--once", "--start", "earliest"], obj=settings
    )
    assert queued.exit_code == 0, queued.output
    await aconn.execute("UPDATE agent_jobs SET status = 'expired'")
    shown = await asyncio.to_thread(runner.invoke, cli_app, ["agent", "--status"], obj=settings)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output) == {"queued": 0, "running": 0, "done": 0, "dead": 0, "expired": 1}
