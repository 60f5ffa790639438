"""Decision records in the ops store: one `decisions` row and its ordered `decision_steps`.

A record is written once, when the decision ends, in one transaction: a worker that dies
mid-decision leaves no half record, and the retried attempt writes the whole story again
under the same decision id (steps are keyed by attempt).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from agent.loop import Transcript

UPSERT_DECISION = """
INSERT INTO decisions (decision_id, job_id, trigger_name, user_id, attempt, goal, allowed_tools,
    trigger_event, context, brain, model, prompt_version, outcome, rationale, model_calls, tool_calls,
    tokens_in, tokens_out, latency_ms, started_at, finished_at)
VALUES (%(decision_id)s, %(job_id)s, %(trigger_name)s, %(user_id)s, %(attempt)s, %(goal)s, %(allowed_tools)s,
    %(trigger_event)s, %(context)s, %(brain)s, %(model)s, %(prompt_version)s, %(outcome)s, %(rationale)s,
    %(model_calls)s, %(tool_calls)s, %(tokens_in)s, %(tokens_out)s, %(latency_ms)s, %(started_at)s,
    %(finished_at)s)
ON CONFLICT (decision_id) DO UPDATE SET
    attempt = EXCLUDED.attempt, context = EXCLUDED.context, brain = EXCLUDED.brain, model = EXCLUDED.model,
    prompt_version = EXCLUDED.prompt_version, outcome = EXCLUDED.outcome, rationale = EXCLUDED.rationale,
    model_calls = EXCLUDED.model_calls, tool_calls = EXCLUDED.tool_calls, tokens_in = EXCLUDED.tokens_in,
    tokens_out = EXCLUDED.tokens_out, latency_ms = EXCLUDED.latency_ms, started_at = EXCLUDED.started_at,
    finished_at = EXCLUDED.finished_at
"""
DELETE_STEPS = "DELETE FROM decision_steps WHERE decision_id = %s AND attempt = %s"
INSERT_STEP = """
INSERT INTO decision_steps (decision_id, attempt, step_no, kind, role, content, tool_name, arguments,
    verdict, reason_code, result, latency_ms)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
GET_DECISION = "SELECT * FROM decisions WHERE decision_id = %s"
GET_STEPS = """
SELECT step_no, kind, role, content, tool_name, arguments, verdict, reason_code, result, latency_ms
FROM decision_steps WHERE decision_id = %s AND attempt = %s ORDER BY step_no
"""
USER_DECISIONS = """
SELECT decision_id, trigger_name, outcome, rationale, brain, model, finished_at
FROM decisions WHERE user_id = %s ORDER BY finished_at DESC LIMIT %s
"""


@dataclass
class DecisionRecord:
    decision_id: str
    job_id: str
    trigger_name: str
    user_id: str
    attempt: int
    goal: str
    allowed_tools: tuple[str, ...]
    trigger_event: dict[str, Any]
    context: dict[str, Any] | None
    brain: str
    model: str
    prompt_version: str
    transcript: Transcript
    started_at: datetime
    finished_at: datetime
    latency_ms: float


async def save(conn: psycopg.AsyncConnection[Any], record: DecisionRecord) -> None:
    """Write the record; the caller owns the transaction (the worker commits it together with
    the job's completion, so a decision is never recorded without its job being finished)."""
    t = record.transcript
    await conn.execute(
        UPSERT_DECISION,
        {
            "decision_id": record.decision_id,
            "job_id": record.job_id,
            "trigger_name": record.trigger_name,
            "user_id": record.user_id,
            "attempt": record.attempt,
            "goal": record.goal,
            "allowed_tools": list(record.allowed_tools),
            "trigger_event": Jsonb(record.trigger_event),
            "context": Jsonb(record.context) if record.context is not None else None,
            "brain": record.brain,
            "model": record.model,
            "prompt_version": record.prompt_version,
            "outcome": t.outcome,
            "rationale": t.rationale,
            "model_calls": t.model_calls,
            "tool_calls": t.tool_calls,
            "tokens_in": t.tokens_in,
            "tokens_out": t.tokens_out,
            "latency_ms": record.latency_ms,
            "started_at": record.started_at,
            "finished_at": record.finished_at,
        },
    )
    await conn.execute(DELETE_STEPS, (record.decision_id, record.attempt))
    async with conn.cursor() as cur:
        await cur.executemany(
            INSERT_STEP,
            [
                (
                    record.decision_id,
                    record.attempt,
                    n,
                    s.kind,
                    s.role,
                    s.content,
                    s.tool_name,
                    Jsonb(s.arguments if s.kind == "tool_call" else {"tool_calls": s.tool_calls})
                    if (s.arguments is not None or s.tool_calls)
                    else None,
                    s.verdict,
                    s.reason_code,
                    Jsonb(s.result) if s.result is not None else None,
                    s.latency_ms,
                )
                for n, s in enumerate(t.steps, start=1)
            ],
        )


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


async def load(conn: psycopg.AsyncConnection[Any], decision_id: str) -> dict[str, Any] | None:
    """The decision with its steps (of the last attempt) as a JSON-ready dict, or None."""
    cur = await conn.execute(GET_DECISION, (decision_id,))
    row = await cur.fetchone()
    if row is None:
        return None
    decision = _jsonable(dict(row))
    cur = await conn.execute(GET_STEPS, (decision_id, row["attempt"]))
    decision["steps"] = [_jsonable(dict(s)) for s in await cur.fetchall()]
    return decision


async def for_user(conn: psycopg.AsyncConnection[Any], user_id: str, limit: int = 50) -> list[dict[str, Any]]:
    cur = await conn.execute(USER_DECISIONS, (user_id, limit))
    return [_jsonable(dict(r)) for r in await cur.fetchall()]
