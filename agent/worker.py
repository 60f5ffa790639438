"""The agent worker: claim a job, read the live context once, run the loop, record, complete.

A job whose worker dies mid-decision is claimed again when its lease expires; the decision id
is the job's, so the tool server's idempotency keys turn repeated tool calls into replays of
the first result instead of second sends. A job claimed after its deadline is expired, not
decided (see `agent.queue.expire`), logged at WARNING and counted in `Worker.expired`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool

from agent import queue, records
from agent.allocation import Allocator
from agent.errors import ModelAuthError, ModelError, ToolSessionError
from agent.loop import Limits, Transcript, run_loop
from agent.model import Brief, ChatModel
from agent.prompts import PromptSet
from agent.records import DecisionRecord
from agent.toolbox import Toolbox
from learn.allocate import SelectionMode
from mca.clock import Clock, system_clock
from mca.db import one_round_trip
from state.context import load_context

log = logging.getLogger(__name__)

OnDecision = Callable[[DecisionRecord], Awaitable[None] | None]


@dataclass
class AgentDeps:
    state_pool: AsyncConnectionPool
    ops_pool: AsyncConnectionPool
    model: ChatModel
    prompts: PromptSet
    limits: Limits = field(default_factory=Limits)
    clock: Clock = system_clock
    lease: timedelta = timedelta(seconds=60)
    retry_backoff: timedelta = timedelta(seconds=2)
    poll: timedelta = timedelta(milliseconds=200)
    on_decision: OnDecision | None = None
    allocator: Allocator | None = None  # bandit/explore triggers need one; without, they run `model`


def selection_of(job: queue.Job) -> SelectionMode:
    """The job's mode; control and holdout are never explored on (they run `model`)."""
    if job.experiment_group in ("control", "holdout"):
        return SelectionMode.MODEL
    return SelectionMode(job.selection)


class Worker:
    def __init__(self, name: str, deps: AgentDeps, toolbox: Toolbox) -> None:
        self.name = name
        self.deps = deps
        self.toolbox = toolbox
        self.expired = 0  # jobs this worker found past their deadline

    async def decide(self, job: queue.Job) -> DecisionRecord:
        d = self.deps
        started = d.clock()
        t0 = time.perf_counter()
        async with d.state_pool.connection() as conn:
            context = await load_context(conn, job.user_id)
        brief = Brief(
            decision_id=job.decision_id,
            trigger=job.trigger_name,
            goal=job.goal,
            user_id=job.user_id,
            event=job.event,
            context=context or {},
            allowed_tools=job.tools,
            selection=selection_of(job).value,
        )
        if job.experiment_group == "holdout":
            # The global holdout is never contacted: no brain, no tool call, only the record
            # that the moment happened (intent-to-treat counts it).
            transcript = Transcript(outcome="nothing", rationale="holdout: this customer is never contacted")
        elif context is None:
            transcript = Transcript(outcome="nothing", rationale=f"no live context for user {job.user_id}")
        else:
            tools = [s for s in await self.toolbox.specs() if s.name in job.tools]
            mode = SelectionMode(brief.selection)
            chooser = None
            if mode is not SelectionMode.MODEL and d.allocator is not None:
                chooser = d.allocator.chooser(brief, mode)
            transcript = await run_loop(
                model=d.model,
                toolbox=self.toolbox,
                brief=brief,
                messages=d.prompts.messages(brief),
                tools=tools,
                limits=d.limits,
                deadline=job.deadline,
                clock=d.clock,
                chooser=chooser,
            )
        return self._record(job, context, transcript, started, t0)

    def _record(
        self, job: queue.Job, context: dict[str, Any] | None, transcript: Transcript, started: Any, t0: float
    ) -> DecisionRecord:
        return DecisionRecord(
            decision_id=job.decision_id,
            job_id=job.job_id,
            trigger_name=job.trigger_name,
            user_id=job.user_id,
            attempt=job.attempts,
            goal=job.goal,
            allowed_tools=job.tools,
            trigger_event=job.event,
            context=context,
            brain=self.deps.model.brain,
            model=self.deps.model.model,
            prompt_version=self.deps.prompts.version,
            transcript=transcript,
            started_at=started,
            finished_at=self.deps.clock(),
            latency_ms=(time.perf_counter() - t0) * 1000,
        )

    async def run_one(self) -> DecisionRecord | None:
        """Claim and finish one job; None when no job was ready."""
        d = self.deps
        job = await self._claim_live()
        if job is None:
            return None
        retry_error: str | None = None
        t0 = time.perf_counter()
        try:
            record = await self.decide(job)
        except ModelAuthError as err:
            # Wrong credentials do not heal by retrying: record the failure, finish the job.
            record = self._record(job, None, Transcript(outcome="failed", rationale=str(err)), d.clock(), t0)
        except (ModelError, ToolSessionError) as err:
            record = self._record(job, None, Transcript(outcome="failed", rationale=str(err)), d.clock(), t0)
            retry_error = str(err)
        async with d.ops_pool.connection() as conn, one_round_trip(conn):
            # One commit: the record and the job's new state land together, in one round trip.
            await records.save(conn, record)
            if retry_error is None:
                await queue.complete(conn, job, worker=self.name, now=d.clock())
            else:
                status = await queue.fail(
                    conn, job, worker=self.name, now=d.clock(), error=retry_error, backoff=d.retry_backoff
                )
                log.warning("job %s failed (%s): %s", job.job_id, status, retry_error)
        if d.on_decision is not None:
            maybe = d.on_decision(record)
            if asyncio.iscoroutine(maybe):
                await maybe
        return record

    async def _claim_live(self) -> queue.Job | None:
        """The next job still inside its deadline; overdue ones met on the way are expired."""
        d = self.deps
        while True:
            async with d.ops_pool.connection() as conn:
                job = await queue.claim(conn, worker=self.name, now=d.clock(), lease=d.lease)
                if job is None or job.deadline > d.clock():
                    return job
                if await queue.expire(conn, job, worker=self.name, now=d.clock()):
                    self.expired += 1
                    log.warning(
                        "job %s expired: %s for %s was queued until past its decision deadline %s; "
                        "no decision made, cooldown given back",
                        job.job_id,
                        job.trigger_name,
                        job.user_id,
                        job.deadline.isoformat(),
                    )

    async def run(self, stop: asyncio.Event, wake: asyncio.Event | None = None) -> None:
        while not stop.is_set():
            try:
                record = await self.run_one()
            except Exception:  # a bad job must not kill the worker; its lease brings it back
                log.exception("worker %s: unexpected error", self.name)
                record = None
            if record is not None:
                continue
            waiter = wake or stop
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), self.deps.poll.total_seconds())
            if wake is not None:
                wake.clear()
