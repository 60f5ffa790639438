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
from mca.untrusted import storable_json, storable_text

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
# All steps in one statement (one round trip however long the conversation was).
INSERT_STEPS = """
INSERT INTO decision_steps (decision_id, attempt, step_no, kind, role, content, tool_name, arguments,
    verdict, reason_code, result, latency_ms)
SELECT %(decision_id)s, %(attempt)s, s.step_no, s.kind, s.role, s.content, s.tool_name, s.arguments,
    s.verdict, s.reason_code, s.result, s.latency_ms
FROM jsonb_to_recordset(%(steps)s) AS s(step_no integer, kind text, role text, content text,
    tool_name text, arguments jsonb, verdict text, reason_code text, result jsonb, latency_ms float8)
"""
GET_DECISION = """
SELECT d.*, j.experiment_group, j.experiment, j.selection,
       CASE WHEN a.decision_id IS NOT NULL THEN jsonb_build_object(
           'arm', a.arm, 'propensity', a.propensity, 'mode', a.mode, 'candidates', a.candidates) END
           AS allocation
FROM decisions d LEFT JOIN agent_jobs j ON j.decision_id = d.decision_id
LEFT JOIN decision_allocations a ON a.decision_id = d.decision_id
WHERE d.decision_id = %s
"""
# What each of the decision's actions led to so far (the attribution views, state store).
GET_OUTCOMES = """
SELECT action_id, action_type, acted_at, asset, channel, coupon_code, delivered, failed, opened,
       clicked, redeemed, unsubscribed, converted, revenue, window_ends_at, pending
FROM action_attribution WHERE decision_id = %s ORDER BY acted_at
"""
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


def _decision_row(record: DecisionRecord) -> dict[str, Any]:
    t = record.transcript
    return {
        "decision_id": record.decision_id,
        "job_id": record.job_id,
        "trigger_name": record.trigger_name,
        "user_id": record.user_id,
        "attempt": record.attempt,
        "goal": record.goal,
        "allowed_tools": list(record.allowed_tools),
        "trigger_event": record.trigger_event,
        "context": record.context,
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
    }


def _step_rows(t: Transcript) -> list[dict[str, Any]]:
    return [
        {
            "step_no": n,
            "kind": s.kind,
            "role": s.role,
            "content": s.content,
            "tool_name": s.tool_name,
            "arguments": (s.arguments if s.kind == "tool_call" else {"tool_calls": s.tool_calls})
            if (s.arguments is not None or s.tool_calls)
            else None,
            "verdict": s.verdict,
            "reason_code": s.reason_code,
            "result": s.result,
            "latency_ms": s.latency_ms,
        }
        for n, s in enumerate(t.steps, start=1)
    ]


async def save(conn: psycopg.AsyncConnection[Any], record: DecisionRecord) -> None:
    """Write the record; the caller owns the transaction (the worker commits it together with
    the job's completion, so a decision is never recorded without its job being finished).

    Everything is made storable first: a model that wrote a NUL or a lone surrogate (which
    PostgreSQL text and jsonb refuse) must not erase the decision, so those characters are
    replaced (U+FFFD) in the record, never in what was sent."""
    row = {k: storable_text(v) if isinstance(v, str) else v for k, v in _decision_row(record).items()}
    row["trigger_event"] = Jsonb(row["trigger_event"], dumps=storable_json)
    row["context"] = Jsonb(row["context"], dumps=storable_json) if row["context"] is not None else None
    await conn.execute(UPSERT_DECISION, row)
    # A record is written once per attempt (attempts are numbered by the claim), so there are
    # never earlier steps of this attempt to replace.
    steps = Jsonb(_step_rows(record.transcript), dumps=storable_json)
    await conn.execute(
        INSERT_STEPS, {"decision_id": record.decision_id, "attempt": record.attempt, "steps": steps}
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


async def outcomes(state: psycopg.AsyncConnection[Any], decision_id: str) -> list[dict[str, Any]]:
    """The decision's actions with their outcomes so far; empty before any was announced."""
    cur = await state.execute(GET_OUTCOMES, (decision_id,))
    return [_jsonable(dict(r)) for r in await cur.fetchall()]
