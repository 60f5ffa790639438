"""`mca trigger --once` and `mca agent` argument checks through the real CLI."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from typer.testing import CliRunner

from mca.cli import app as cli_app
from tests.agent.conftest import add_events, event_row


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
