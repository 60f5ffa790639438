"""The stateful half of the guard and the ledger: one ops-store transaction per verdict.

An allowed call writes the tool call, its budget reservations, its contact counters, its
outbox row and its audit row in one transaction, or nothing at all. Caps and budgets are
conditional updates (`... WHERE spent + amount <= quota`): the row lock serialises racing
callers on a row, so spent never passes a limit; shared budgets are sharded (sql/ops/260). Locks are
always taken in one order (the user's counters, then budgets sorted by scope), so racing
calls cannot deadlock.

The allow attempt is one statement, `mca_allow` (sql/ops/261, 262): every check and effect runs in
the server in one round trip. If any check refuses, the whole attempt rolls back and the
refusal is recorded in a second transaction (pipelined: one round trip too). The unique
idempotency key does the rest: a retried or twin call fails its tool_calls insert and gets the
first call's stored result instead.
"""

from __future__ import annotations

import contextlib
import functools
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg import errors
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

from mca.db import in_autocommit
from mcp_tools import ledger_sql as q
from mcp_tools.checks import Check, CheckKind, checks_for
from mcp_tools.guard import Action, CallContext, Verdict
from mcp_tools.outcome import STATUS_OF, Outcome, idem_key, outcome_from_dict
from mcp_tools.policy import Policy

__all__ = ["Outcome", "audit_only", "decide_new", "find_call", "idem_key", "settle"]


class _Refused(Exception):
    def __init__(self, check: Check) -> None:
        self.check = check


class _Shadow(Exception):
    """Raised inside the attempt in shadow mode: decide, then undo everything."""


def _call_params(
    policy: Policy, ctx: CallContext, action: Action, verdict: Verdict, now: datetime, key: str
) -> dict[str, Any]:
    return {
        "key": key,
        "decision_id": ctx.decision_id,
        "caller": ctx.caller,
        "audit_caller": ctx.caller,
        "trigger": ctx.trigger,
        "tool": action.tool,
        "user_id": action.user_id,
        "arguments": Jsonb(action.arguments),
        "verdict": verdict.kind,
        "status": STATUS_OF[verdict.kind],
        "reason": verdict.reason,
        "reasons": Jsonb(verdict.reasons),
        "policy_version": policy.version_id,
        "now": now,
        "kind": action.kind,
        "payload": Jsonb(action.payload),
        "message": verdict.message if verdict.kind != "shadow" else verdict.detail,
        "outbox_status": "pending" if verdict.kind == "allow" else "shadow",
        "pending_kind": verdict.kind if verdict.kind in ("defer", "hold") else None,
        "until": verdict.until,
    }


def _outcome(policy: Policy, verdict: Verdict, result: dict[str, Any] | None) -> Outcome:
    if result is not None:
        return outcome_from_dict(result)
    message = verdict.message if verdict.kind != "shadow" else (verdict.detail or "")
    return Outcome(
        status=STATUS_OF[verdict.kind],
        reason=verdict.reason,
        reasons=list(verdict.reasons),
        message=message,
        until=verdict.until,
        policy_version=policy.version_id,
    )


REFUSED = "MCA02"  # mca_refuse_check: DETAIL holds the refusing check's index
SHADOW = "MCA03"  # mca_shadow_stop


async def _drain(pipe: psycopg.AsyncPipeline) -> None:
    """Collect what a failed statement left in the pipeline before the error leaves the block.

    The statements queued behind a failing one come back as "pipeline aborted". Left in the
    pipeline, they make psycopg log "error ignored terminating pipeline" as the error passes
    through the pipeline that `conn.transaction()` nests; collected here, nothing is left over.
    """
    with contextlib.suppress(errors.PipelineAborted):
        await pipe.sync()


async def _send(
    conn: psycopg.AsyncConnection[Any],
    params: dict[str, Any],
    verdict: Verdict,
    base: Outcome,
    now: datetime,
    key: str,
    first: bool,
) -> tuple[psycopg.AsyncCursor[Any] | None, ...]:
    """Queue one verdict's statements: the call row, the effects, the audit row.

    Nothing waits for a result here: the results come back when the transaction commits.
    """
    await conn.execute(q.INSERT_CALL if first else q.UPDATE_CALL, params)
    effects = verdict.kind in ("allow", "shadow")
    outbox = await conn.execute(q.INSERT_OUTBOX, params) if effects else None
    pending = await conn.execute(q.INSERT_PENDING, params) if params["pending_kind"] else None
    await conn.execute(q.INSERT_AUDIT, params)
    stored = await conn.execute(q.SET_RESULT, {**params, "result": Jsonb(base.to_dict())}) if first else None
    return stored, outbox, pending


async def _write(
    conn: psycopg.AsyncConnection[Any],
    policy: Policy,
    ctx: CallContext,
    action: Action,
    verdict: Verdict,
    now: datetime,
    key: str,
    first: bool,
) -> Outcome:
    """A verdict that needs no atomic check (deny, defer, hold, shadow, a refusal), recorded in
    one pipelined transaction, BEGIN to COMMIT in one round trip: the call row, its effects,
    the audit row."""
    params = _call_params(policy, ctx, action, verdict, now, key)
    base = _outcome(policy, verdict, None)
    async with conn.pipeline() as pipe, conn.transaction():
        try:
            stored, outbox, pending = await _send(conn, params, verdict, base, now, key, first)
        except psycopg.Error:
            await _drain(pipe)
            raise
    if stored is not None:
        row = await stored.fetchone()
        return outcome_from_dict(dict(row["result"])) if row else base
    if outbox is not None and (row := await outbox.fetchone()):
        base.outbox_id = int(row["outbox_id"])
    if pending is not None and (row := await pending.fetchone()):
        base.pending_id = int(row["pending_id"])
        base.approval_id = int(row["pending_id"]) if verdict.kind == "hold" else None
    return base


ALLOWED = Verdict("allow")


@functools.lru_cache(maxsize=8)
def _allowed_result(policy_version: str) -> dict[str, Any]:
    """What an allowed call stores as its answer before its ids are known: the same for every
    call under one policy version (read only: it is encoded, never changed)."""
    allowed = Outcome(status=STATUS_OF["allow"], message=ALLOWED.message, policy_version=policy_version)
    return allowed.to_dict()


# Times through default=str (as str() writes them), not orjson's own RFC 3339 form; any keys.
_AS_TEXT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
ALLOW = "SELECT mca_allow(CAST(%s AS jsonb), CAST(%s AS jsonb)) AS result"


async def _allow(
    conn: psycopg.AsyncConnection[Any],
    policy: Policy,
    ctx: CallContext,
    action: Action,
    now: datetime,
    key: str,
    first: bool,
    checks: list[Check],
    shadow: bool,
) -> Outcome:
    """The allow attempt as one statement (mca_allow, sql/ops/261, 262): on an idle connection in
    autocommit, one round trip and one implicit transaction; inside a caller's transaction, in a
    savepoint, so that a refusal undoes only the attempt."""
    base = _outcome(policy, ALLOWED, None)
    call = {
        "key": key,
        "first": first,
        "shadow": shadow,
        "decision_id": ctx.decision_id,
        "caller": ctx.caller,
        "trigger": ctx.trigger,
        "tool": action.tool,
        "user_id": action.user_id,
        "arguments": action.arguments,
        "policy_version": policy.version_id,
        "now": now.isoformat(),
        "kind": action.kind,
        "payload": action.payload,
        "message": base.message,
        "outbox_status": "pending",
        "result": _allowed_result(policy.version_id),
    }
    # The checks' params are JSON's own types already (checks.Check); the call's arguments and
    # payload may hold decimals or times, written as text (str(), as the stdlib's encoder with
    # default=str wrote them). orjson: a tenth of the stdlib's time for these two documents.
    args = (
        orjson.dumps(call, default=str, option=_AS_TEXT).decode(),
        orjson.dumps([c.params for c in checks]).decode(),
    )
    # Prepared from a connection's first call on (psycopg would wait for its fifth): parsed once.
    try:
        if conn.info.transaction_status == TransactionStatus.IDLE:
            async with in_autocommit(conn):  # its own implicit transaction: one round trip
                row = await (await conn.execute(ALLOW, args, prepare=True)).fetchone()
        else:
            async with conn.transaction():
                row = await (await conn.execute(ALLOW, args, prepare=True)).fetchone()
    except psycopg.Error as err:
        if err.sqlstate == SHADOW:
            raise _Shadow from None
        if err.sqlstate != REFUSED or err.diag.message_detail is None:
            raise
        raise _Refused(checks[int(err.diag.message_detail)]) from None
    assert row is not None
    result = row["result"]
    # The stored result of a first call is `base` with these two ids: no need to parse it back.
    base.call_id = int(result["call_id"]) if first else None
    base.outbox_id = int(result["outbox_id"])
    return base


async def find_call(conn: psycopg.AsyncConnection[Any], key: str) -> Outcome | None:
    row = await (await conn.execute(q.FIND_CALL, (key,))).fetchone()
    if row is None:
        return None
    result = dict(row["result"])
    outcome = outcome_from_dict(result)
    outcome.replayed = True
    outcome.replayed_from = row["created_at"]
    if row["status"] != result.get("status"):
        outcome.current_status = row["status"]
    return outcome


async def _refusal_detail(conn: psycopg.AsyncConnection[Any], refused: Check, verdict: Verdict) -> Verdict:
    """Fill in when a min-gap refusal may retry (needs the last contact time)."""
    if refused.kind is CheckKind.MIN_GAP:
        row = await (
            await conn.execute(q.LAST_AT, (refused.params["user_id"], refused.params["channel"]))
        ).fetchone()
        if row is not None:
            verdict.until = row["last_at"] + timedelta(hours=refused.params["gap_h"])
    if refused.kind is CheckKind.SUPPRESSION:
        verdict.detail = "STOP received or the provider refused this address."
    return verdict


async def settle(
    conn: psycopg.AsyncConnection[Any],
    policy: Policy,
    ctx: CallContext,
    action: Action,
    stateless: Verdict | None,
    now: datetime,
    *,
    key: str,
    first: bool,
) -> Outcome:
    """Record `stateless` (deny / defer / hold), or run the atomic checks and record the result.

    `first` is False when a deferred or approved call is released: its tool_calls row exists
    and only its status moves on (its stored result stays the first answer).
    """
    if stateless is not None:
        return await _write(conn, policy, ctx, action, stateless, now, key, first)
    checks = checks_for(policy, ctx, action, now)
    try:
        return await _allow(conn, policy, ctx, action, now, key, first, checks, policy.shadow)
    except _Refused as refused:
        check = refused.check
        verdict = await _refusal_detail(
            conn,
            check,
            Verdict(
                check.refusal.kind, list(check.refusal.reasons), check.refusal.until, check.refusal.detail
            ),
        )
    except _Shadow:
        verdict = Verdict("shadow", detail="Shadow mode: decided and recorded, never sent.")
    return await _write(conn, policy, ctx, action, verdict, now, key, first)


async def decide_new(
    conn: psycopg.AsyncConnection[Any],
    policy: Policy,
    ctx: CallContext,
    action: Action,
    stateless: Verdict | None,
    now: datetime,
    key: str,
) -> Outcome:
    """Judge and record a first call, or return the stored result of an earlier identical one."""
    try:
        return await settle(conn, policy, ctx, action, stateless, now, key=key, first=True)
    except errors.UniqueViolation:
        # A retry, or a twin that lost the race: the first call's row is the answer.
        replay = await find_call(conn, key)
        if replay is None:
            raise
        return replay


async def audit_only(
    conn: psycopg.AsyncConnection[Any],
    policy: Policy,
    ctx: CallContext,
    tool: str,
    user_id: str | None,
    arguments: dict[str, Any],
    verdict: Verdict,
    now: datetime,
    call_id: int | None = None,
) -> None:
    """Record a verdict that has no tool-call row of its own (refused before resolving the action)."""
    await conn.execute(
        q.AUDIT_ONLY,
        {
            "now": now,
            "caller": ctx.caller,
            "trigger": ctx.trigger,
            "decision_id": ctx.decision_id,
            "tool": tool,
            "user_id": user_id,
            "arguments": Jsonb(arguments),
            "verdict": verdict.kind,
            "reasons": Jsonb(verdict.reasons),
            "message": verdict.message,
            "call_id": call_id,
            "policy_version": policy.version_id,
        },
    )
