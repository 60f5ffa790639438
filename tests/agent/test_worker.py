"""Workers: a crash mid-job brings the job back after its lease, and nothing is sent twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from agent.model import ModelReply, ModelRequest
from agent.providers.scripted import ScriptedModel
from agent.runtime import agent_runtime
from mca.testing import scalar
from tests.agent.helpers import SEARCH_THEN_COUPON, new_job, put_job, stored_decision, tool_steps


class WorkerDied(BaseException):
    """Stands in for the process dying: nothing after it runs, nothing is recorded."""


def die(request: ModelRequest) -> ModelReply:
    raise WorkerDied


LEASE_S = 30  # the killed child's lease; the retry reads a clock past it


async def test_crash_after_sending_is_retried_without_a_second_send(
    agent_settings, agent_stores, frozen, embedder
) -> None:
    job = new_job()
    await put_job(agent_stores.ops_url, job, frozen)
    lease = timedelta(seconds=30)
    async with agent_runtime(
        agent_settings,
        agent_stores,
        model=ScriptedModel([*SEARCH_THEN_COUPON, die]),
        clock=frozen,
        embedder=embedder,
        lease=lease,
    ) as rt:
        with pytest.raises(WorkerDied):
            await rt.workers[0].run_one()
    url = agent_stores.ops_url
    assert scalar(url, "SELECT count(*) FROM outbox") == 1
    assert scalar(url, "SELECT status FROM agent_jobs WHERE job_id = %s", job.job_id) == "running"
    assert scalar(url, "SELECT count(*) FROM decisions") == 0

    async with agent_runtime(
        agent_settings, agent_stores, model=ScriptedModel([*SEARCH_THEN_COUPON, "sent"]), clock=frozen,
        embedder=embedder, lease=lease,
    ) as rt:  # fmt: skip
        # Still leased: nobody may take it yet.
        assert await rt.workers[0].run_one() is None
        frozen.advance(seconds=31)
        record = await rt.workers[0].run_one()
    assert record is not None and record.attempt == 2
    decision = await stored_decision(url, job.decision_id)
    coupon = tool_steps(decision)[-1]
    assert coupon["tool_name"] == "send_coupon" and coupon["result"].get("replayed") is True
    assert scalar(url, "SELECT count(*) FROM outbox") == 1
    assert scalar(url, "SELECT status FROM agent_jobs WHERE job_id = %s", job.job_id) == "done"


async def test_failures_back_off_then_dead_letter(agent_settings, agent_stores, frozen, embedder) -> None:
    from agent.errors import ModelUnavailable

    def unavailable(request: ModelRequest) -> ModelReply:
        raise ModelUnavailable("provider down")

    job = new_job(max_attempts=2)
    await put_job(agent_stores.ops_url, job, frozen)
    url = agent_stores.ops_url
    async with agent_runtime(
        agent_settings, agent_stores, model=ScriptedModel([unavailable]), clock=frozen, embedder=embedder
    ) as rt:
        first = await rt.workers[0].run_one()
        assert first is not None and first.transcript.outcome == "failed"
        assert scalar(url, "SELECT status FROM agent_jobs") == "queued"
        assert await rt.workers[0].run_one() is None  # backing off
        frozen.advance(seconds=5)
        await rt.workers[0].run_one()
    assert scalar(url, "SELECT status FROM agent_jobs") == "dead"
    assert "provider down" in scalar(url, "SELECT last_error FROM agent_jobs")
    assert (await stored_decision(url, job.decision_id))["outcome"] == "failed"


async def test_two_workers_never_take_the_same_job(agent_settings, agent_stores, frozen, embedder) -> None:
    jobs = [new_job() for _ in range(6)]
    for j in jobs:
        await put_job(agent_stores.ops_url, j, frozen)
    async with agent_runtime(
        agent_settings, agent_stores, workers=3, model=ScriptedModel(["nothing to do"]), clock=frozen,
        embedder=embedder,
    ) as rt:  # fmt: skip
        done = []
        for _ in range(3):
            batch = await asyncio.gather(*(w.run_one() for w in rt.workers))
            done += [r.job_id for r in batch if r is not None]
    assert sorted(done) == sorted(j.job_id for j in jobs)
    assert scalar(agent_stores.ops_url, "SELECT count(*) FROM decisions WHERE attempt = 1") == 6


async def test_worker_killed_mid_job_is_retried_without_a_second_send(
    agent_settings, agent_stores, embedder
) -> None:
    """A real process, SIGKILLed after the guard allowed its coupon and before it finished."""
    import os
    import signal
    import subprocess
    import sys

    from mca.clock import system_clock
    from mca.testing import FrozenClock

    job = new_job()
    await put_job(agent_stores.ops_url, job, system_clock)
    url = agent_stores.ops_url
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.agent.crash_worker", url, str(LEASE_S)],
        stdout=subprocess.PIPE,
        env=env,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 120)
        assert b"sent; hanging" in line
        assert scalar(url, "SELECT count(*) FROM outbox") == 1
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert scalar(url, "SELECT status FROM agent_jobs WHERE job_id = %s", job.job_id) == "running"

    # The dead worker's lease ran out: a clock past it, instead of waiting it out.
    after_lease = FrozenClock(system_clock() + timedelta(seconds=LEASE_S + 1))
    async with agent_runtime(
        agent_settings, agent_stores, model=ScriptedModel([*SEARCH_THEN_COUPON, "sent"]), clock=after_lease,
        embedder=embedder,
    ) as rt:  # fmt: skip
        record = await rt.workers[0].run_one()
    assert record is not None and record.attempt == 2
    assert scalar(url, "SELECT count(*) FROM outbox") == 1
    assert scalar(url, "SELECT status FROM agent_jobs WHERE job_id = %s", job.job_id) == "done"
    decision = await stored_decision(url, job.decision_id)
    assert tool_steps(decision)[-1]["result"].get("replayed") is True
