"""The durable job queue in the ops store (``agent_jobs``).

Jobs are claimed with ``FOR UPDATE SKIP LOCKED`` under a lease (visibility timeout): a worker
that dies mid-job leaves the row ``running`` with an expired lease, and the next claim takes
it again. Failures retry with exponential backoff up to ``max_attempts``, then the job is a
dead letter. The decision id is fixed when the job is made, so every attempt of one job is
the same decision to the tool server's idempotency keys.

A job claimed after its decision deadline (queued while no agent ran) is not decided: it
ends `expired`, and the cooldown its trigger set when it was queued is given back, so the next
real trigger for that customer is not swallowed by a decision that never happened.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

INSERT_JOB = """
INSERT INTO agent_jobs (job_id, dedup_key, trigger_name, user_id, goal, tools, event, max_attempts,
                        run_after, deadline, decision_id, created_at, experiment_group, experiment,
                        attribution_window_s, selection)
VALUES (%(job_id)s, %(dedup_key)s, %(trigger_name)s, %(user_id)s, %(goal)s, %(tools)s, %(event)s,
        %(max_attempts)s, %(now)s, %(deadline)s, %(decision_id)s, %(now)s, %(experiment_group)s,
        %(experiment)s, %(attribution_window_s)s, %(selection)s)
ON CONFLICT (dedup_key) DO NOTHING
RETURNING job_id
"""

# A triggered job in one statement: the job, then (only when it is new) the cooldowns it sets
# and the NOTIFY that wakes the workers at commit (one per transaction, however many jobs).
TRIGGERED_JOB = f"""
WITH job AS ({INSERT_JOB.strip()}
), cooled AS (
    INSERT INTO trigger_cooldowns (trigger_name, user_id, fired_at)
    SELECT c.name, %(user_id)s, %(now)s FROM job, unnest(CAST(%(cooldowns)s AS text[])) AS c(name)
    ON CONFLICT (trigger_name, user_id) DO UPDATE SET fired_at = EXCLUDED.fired_at
), woken AS (
    SELECT pg_notify('mca_agent_jobs', '') FROM job
)
SELECT job_id, (SELECT count(*) FROM woken) AS woken FROM job
"""

# One statement: dead-letter jobs whose lease expired on their last allowed attempt (their
# worker died every time), and claim the next runnable job (or one whose lease expired) under
# a new lease. The two sets are disjoint, so the data-modifying CTEs never touch the same row.
CLAIM = """
WITH reaped AS (
    UPDATE agent_jobs
    SET status = 'dead', finished_at = %(now)s, locked_by = NULL,
        last_error = coalesce(last_error || '; ', '') || 'lease expired on the last attempt'
    WHERE status = 'running' AND locked_until < %(now)s AND attempts >= max_attempts
    RETURNING job_id
), next AS (
    SELECT job_id FROM agent_jobs
    WHERE (status = 'queued' AND run_after <= %(now)s)
       OR (status = 'running' AND locked_until < %(now)s AND attempts < max_attempts)
    ORDER BY run_after
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
UPDATE agent_jobs AS j
SET status = 'running', attempts = j.attempts + 1,
    locked_until = %(now)s + %(lease)s, locked_by = %(worker)s
FROM next
WHERE j.job_id = next.job_id
RETURNING j.*
"""

COMPLETE = """
UPDATE agent_jobs SET status = 'done', finished_at = %(now)s, locked_until = NULL
WHERE job_id = %(job_id)s AND status = 'running' AND locked_by = %(worker)s
"""

FAIL = """
UPDATE agent_jobs
SET status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,
    run_after = %(now)s + %(backoff)s * power(2, greatest(attempts - 1, 0)),
    finished_at = CASE WHEN attempts >= max_attempts THEN %(now)s END,
    locked_until = NULL, locked_by = NULL, last_error = %(error)s
WHERE job_id = %(job_id)s AND status = 'running' AND locked_by = %(worker)s
RETURNING status
"""

EXPIRE = """
UPDATE agent_jobs
SET status = 'expired', finished_at = %(now)s, locked_until = NULL, locked_by = NULL,
    last_error = 'the decision deadline passed before a worker took the job'
WHERE job_id = %(job_id)s AND status = 'running' AND locked_by = %(worker)s
RETURNING created_at
"""

# The trigger service sets a job's cooldowns (its trigger's and the user's '*') to the job's
# created_at. Give them back: each row this job set returns to the time of the user's latest
# job that still counts (not expired), or goes away when there is none. Rows another job has
# set since are left alone (fired_at no longer matches), and so is a job that already acted
# (a side-effecting call under its decision id: a worker died after acting).
GIVE_BACK_COOLDOWNS = """
WITH set_by_job AS (
    SELECT c.trigger_name,
           (SELECT max(j.created_at) FROM agent_jobs j
            WHERE j.user_id = c.user_id AND j.job_id <> %(job_id)s AND j.status <> 'expired'
              AND (c.trigger_name = '*' OR j.trigger_name = c.trigger_name)) AS previous
    FROM trigger_cooldowns c
    WHERE c.user_id = %(user_id)s AND c.trigger_name IN (%(trigger_name)s, '*')
      AND c.fired_at = %(created_at)s
      AND NOT EXISTS (SELECT 1 FROM tool_calls t WHERE t.decision_id = %(decision_id)s
                      AND t.status IN ('allowed', 'deferred', 'held'))
), restored AS (
    UPDATE trigger_cooldowns c SET fired_at = s.previous FROM set_by_job s
    WHERE c.user_id = %(user_id)s AND c.trigger_name = s.trigger_name AND c.fired_at = %(created_at)s
      AND s.previous IS NOT NULL
    RETURNING c.trigger_name
)
DELETE FROM trigger_cooldowns c USING set_by_job s
WHERE c.user_id = %(user_id)s AND c.trigger_name = s.trigger_name AND c.fired_at = %(created_at)s
  AND s.previous IS NULL
"""

COUNTS = "SELECT status, count(*) AS n FROM agent_jobs GROUP BY status"
STATUSES = ("queued", "running", "done", "dead", "expired")


@dataclass(frozen=True)
class NewJob:
    dedup_key: str
    trigger_name: str
    user_id: str
    goal: str
    tools: tuple[str, ...]
    event: dict[str, Any]
    max_attempts: int
    deadline_in: timedelta
    # The customer's group when the trigger fired (holdout, control, treatment) and the
    # experiment (salt) that assigned it; None outside any experiment.
    experiment_group: str | None = None
    experiment: str | None = None
    attribution_window: timedelta | None = None  # the goal's, from the triggers file
    selection: str = "model"  # the trigger's selection mode (model | bandit | explore)

    @property
    def job_id(self) -> str:
        # Derived from the dedup key, so a replayed trigger names the same job.
        return "job_" + hashlib.sha256(self.dedup_key.encode()).hexdigest()[:24]

    @property
    def decision_id(self) -> str:
        return "dec_" + self.job_id.removeprefix("job_")


@dataclass(frozen=True)
class Job:
    job_id: str
    trigger_name: str
    user_id: str
    goal: str
    tools: tuple[str, ...]
    event: dict[str, Any]
    attempts: int
    max_attempts: int
    deadline: datetime
    decision_id: str
    dedup_key: str
    experiment_group: str | None = None
    experiment: str | None = None
    selection: str = "model"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        return cls(
            job_id=row["job_id"],
            trigger_name=row["trigger_name"],
            user_id=row["user_id"],
            goal=row["goal"],
            tools=tuple(row["tools"]),
            event=dict(row["event"] or {}),
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            deadline=row["deadline"],
            decision_id=row["decision_id"],
            dedup_key=row["dedup_key"],
            experiment_group=row.get("experiment_group"),
            experiment=row.get("experiment"),
            selection=row.get("selection") or "model",
        )


def _job_params(job: NewJob, now: datetime) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "dedup_key": job.dedup_key,
        "trigger_name": job.trigger_name,
        "user_id": job.user_id,
        "goal": job.goal,
        "tools": list(job.tools),
        "event": Jsonb(job.event),
        "max_attempts": job.max_attempts,
        "now": now,
        "deadline": now + job.deadline_in,
        "decision_id": job.decision_id,
        "experiment_group": job.experiment_group,
        "experiment": job.experiment,
        "selection": job.selection,
        "attribution_window_s": (
            None if job.attribution_window is None else int(job.attribution_window.total_seconds())
        ),
    }


async def enqueue(conn: psycopg.AsyncConnection[Any], job: NewJob, *, now: datetime) -> bool:
    """Insert the job unless its dedup key exists; True when it is new."""
    cur = await conn.execute(INSERT_JOB, _job_params(job, now))
    return await cur.fetchone() is not None


async def send_triggered(
    conn: psycopg.AsyncConnection[Any], job: NewJob, *, now: datetime, cooldowns: tuple[str, ...]
) -> psycopg.AsyncCursor[Any]:
    """Queue the trigger service's statement for one job: the job unless its dedup key exists
    and, only when it is new, its cooldowns set to `now` and the workers' NOTIFY. Nothing is
    read here (the caller may be in a pipeline): the cursor has a row when the job is new."""
    return await conn.execute(TRIGGERED_JOB, {**_job_params(job, now), "cooldowns": list(cooldowns)})


async def claim(
    conn: psycopg.AsyncConnection[Any], *, worker: str, now: datetime, lease: timedelta
) -> Job | None:
    """Take the next runnable job (or one whose lease expired) under a new lease."""
    cur = await conn.execute(CLAIM, {"now": now, "lease": lease, "worker": worker})
    row = await cur.fetchone()
    return Job.from_row(row) if row else None


async def complete(conn: psycopg.AsyncConnection[Any], job: Job, *, worker: str, now: datetime) -> bool:
    """Mark the job done; False when the lease was lost to another worker meanwhile (known only
    once the statement ran: inside a pipeline, as the worker sends it, the answer is not read)."""
    cur = await conn.execute(COMPLETE, {"job_id": job.job_id, "worker": worker, "now": now})
    return cur.rowcount == 1


async def fail(
    conn: psycopg.AsyncConnection[Any],
    job: Job,
    *,
    worker: str,
    now: datetime,
    error: str,
    backoff: timedelta = timedelta(seconds=2),
) -> str | None:
    """Put the job back with backoff, or dead-letter it on its last attempt; the new status."""
    cur = await conn.execute(
        FAIL, {"job_id": job.job_id, "worker": worker, "now": now, "error": error[:2000], "backoff": backoff}
    )
    row = await cur.fetchone()
    return str(row["status"]) if row else None


async def expire(conn: psycopg.AsyncConnection[Any], job: Job, *, worker: str, now: datetime) -> bool:
    """End a claimed job whose deadline passed as `expired` and give its cooldowns back (one
    transaction); False when the lease was lost to another worker meanwhile."""
    async with conn.transaction():
        cur = await conn.execute(EXPIRE, {"job_id": job.job_id, "worker": worker, "now": now})
        row = await cur.fetchone()
        if row is None:
            return False
        await conn.execute(
            GIVE_BACK_COOLDOWNS,
            {
                "job_id": job.job_id,
                "user_id": job.user_id,
                "trigger_name": job.trigger_name,
                "decision_id": job.decision_id,
                "created_at": row["created_at"],
            },
        )
    return True


async def counts(conn: psycopg.AsyncConnection[Any]) -> dict[str, int]:
    """Jobs per status, every status named (0 when none): the queue's counters, `expired`
    included, for `mca agent --status` and monitoring."""
    cur = await conn.execute(COUNTS)
    found = {r["status"]: int(r["n"]) for r in await cur.fetchall()}
    return {status: found.get(status, 0) for status in STATUSES}
