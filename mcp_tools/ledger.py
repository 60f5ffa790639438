"""The stateful half of the guard and the ledger: one ops-store transaction per verdict.

For an allowed call the same transaction writes the tool call, its budget reservations, its
contact counters and its outbox row, or nothing at all. Caps and budgets are conditional
upserts (`... DO UPDATE ... WHERE spent + amount <= limit RETURNING`): the row lock taken by the
upsert serialises racing callers, so spent never passes a limit. Locks are always taken in the
same order (the user's counters, then budgets sorted by scope), so racing calls cannot deadlock.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from mcp_tools.guard import Action, CallContext, Verdict, period_keys, zone_of
from mcp_tools.policy import Policy

LOCK_KEY = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
FIND_CALL = "SELECT call_id, status, result FROM tool_calls WHERE idem_key = %s"
SUPPRESSED = "SELECT reason FROM suppressions WHERE user_id = %s AND channel = %s"
BUMP_COUNTER = """
INSERT INTO contact_counters AS c (user_id, channel, period, period_key, sent, updated_at)
VALUES (%(user_id)s, %(channel)s, %(period)s, %(key)s, 1, %(now)s)
ON CONFLICT (user_id, channel, period, period_key)
DO UPDATE SET sent = c.sent + 1, updated_at = EXCLUDED.updated_at WHERE c.sent < %(cap)s
RETURNING sent
"""
BUMP_LAST = """
INSERT INTO contact_last AS l (user_id, channel, last_at) VALUES (%(user_id)s, %(channel)s, %(now)s)
ON CONFLICT (user_id, channel) DO UPDATE SET last_at = EXCLUDED.last_at WHERE l.last_at <= %(threshold)s
RETURNING last_at
"""
LAST_AT = "SELECT last_at FROM contact_last WHERE user_id = %s AND channel = %s"
RESERVE = """
INSERT INTO budget_counters AS b (scope, period_key, limit_amount, spent, updated_at)
SELECT %(scope)s, %(key)s, %(limit)s, %(amount)s, %(now)s WHERE %(amount)s <= %(limit)s
ON CONFLICT (scope, period_key) DO UPDATE
SET spent = b.spent + EXCLUDED.spent, limit_amount = EXCLUDED.limit_amount, updated_at = EXCLUDED.updated_at
WHERE b.spent + EXCLUDED.spent <= EXCLUDED.limit_amount
RETURNING spent
"""
INSERT_CALL = """
INSERT INTO tool_calls (idem_key, decision_id, caller, trigger_name, tool, user_id, arguments, verdict,
                        status, reason, result, policy_version, created_at, updated_at)
VALUES (%(idem_key)s, %(decision_id)s, %(caller)s, %(trigger)s, %(tool)s, %(user_id)s, %(arguments)s,
        %(verdict)s, %(status)s, %(reason)s, %(result)s, %(policy_version)s, %(now)s, %(now)s)
RETURNING call_id
"""
UPDATE_CALL = "UPDATE tool_calls SET status = %s, reason = %s, updated_at = %s WHERE call_id = %s"
INSERT_LEDGER = """
INSERT INTO budget_ledger (call_id, scope, period_key, amount, kind, created_at)
VALUES (%s, %s, %s, %s, 'reserve', %s)
"""
INSERT_OUTBOX = """
INSERT INTO outbox (call_id, idem_key, kind, user_id, payload, status, next_attempt_at,
                    created_at, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING outbox_id
"""
INSERT_PENDING = """
INSERT INTO pending_actions (call_id, kind, due_at, status, created_at, updated_at)
VALUES (%s, %s, %s, 'waiting', %s, %s) RETURNING pending_id
"""
INSERT_AUDIT = """
INSERT INTO audit_log (at, caller, trigger_name, decision_id, tool, user_id, arguments, verdict, reasons,
                       message, call_id, policy_version)
VALUES (%(now)s, %(caller)s, %(trigger)s, %(decision_id)s, %(tool)s, %(user_id)s, %(arguments)s, %(verdict)s,
        %(reasons)s, %(message)s, %(call_id)s, %(policy_version)s)
"""

STATUS_OF = {"allow": "allowed", "deny": "denied", "defer": "deferred", "hold": "held", "shadow": "shadow"}
BUDGET_REASON = {"global": "budget_global", "trigger": "budget_trigger", "user": "budget_user"}


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def idem_key(caller: str, decision_id: str | None, tool: str, arguments: dict[str, Any]) -> str:
    """Same caller + decision + tool + arguments => same key. Scoped by caller, so one caller
    can never collide with (or replay) another's calls."""
    return hashlib.sha256(canonical([caller, decision_id, tool, arguments]).encode()).hexdigest()


@dataclass
class Outcome:
    """What a tool call returns to its caller (and what a retry gets again)."""

    status: str  # allowed | denied | deferred | held | shadow | error
    reason: str | None = None
    reasons: list[str] = field(default_factory=list)
    message: str = ""
    call_id: int | None = None
    outbox_id: int | None = None
    approval_id: int | None = None
    until: datetime | None = None
    policy_version: str | None = None
    replayed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_error(self) -> bool:
        return self.status in ("denied", "error")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "reason": self.reason, "message": self.message}
        if self.reasons[1:]:
            out["reasons"] = self.reasons
        for name in ("call_id", "outbox_id", "approval_id", "policy_version"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.until is not None:
            out["retry_at" if self.status == "denied" else "until"] = self.until.isoformat()
        if self.replayed:
            out["replayed"] = True
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class Reservation:
    scope: str
    period_key: str
    amount: Decimal


class _Refused(Exception):
    """Raised inside the savepoint to undo partial reservations."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict


class _Shadow(Exception):
    """Raised inside the savepoint in shadow mode: decide, then undo every reservation."""


def _next_period(now: datetime, period: str, zone: Any) -> datetime:
    local = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start = local + timedelta(days=1)
    elif period == "week":
        start = local + timedelta(days=7 - local.weekday())
    else:
        start = (local.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start.replace(tzinfo=zone).astimezone(UTC)


async def _contact_checks(
    conn: psycopg.AsyncConnection[Any], policy: Policy, action: Action, now: datetime
) -> None:
    channel = action.channel
    if channel is None:
        return
    row = await (await conn.execute(SUPPRESSED, (action.user_id, channel))).fetchone()
    if row is not None:
        raise _Refused(Verdict("deny", ["suppressed"], detail=f"Because: {_get(row, 'reason')}."))
    zone = zone_of(action.timezone, policy.default_user_timezone)
    keys = period_keys(now, zone)
    for scope_channel, caps, prefix in (
        (channel, policy.channel(channel).caps, "channel_cap"),
        ("*", policy.caps, "freq_cap"),
    ):
        for period, cap in caps.items():
            params = {
                "user_id": action.user_id,
                "channel": scope_channel,
                "period": period,
                "key": keys[period],
                "now": now,
                "cap": cap,
            }
            if await (await conn.execute(BUMP_COUNTER, params)).fetchone() is None:
                until = _next_period(now, period, zone)
                raise _Refused(
                    Verdict(
                        "deny", [f"{prefix}_{period}"], until=until, detail=f"At most {cap} per {period}."
                    )
                )
    for scope_channel, hours in (
        (channel, policy.channel(channel).min_gap_hours),
        ("*", policy.min_gap_hours),
    ):
        if hours <= 0:
            continue
        gap = timedelta(hours=hours)
        params = {"user_id": action.user_id, "channel": scope_channel, "now": now, "threshold": now - gap}
        if await (await conn.execute(BUMP_LAST, params)).fetchone() is None:
            last = await (await conn.execute(LAST_AT, (action.user_id, scope_channel))).fetchone()
            retry_at: datetime | None = _get(last, "last_at") + gap if last else None
            raise _Refused(
                Verdict("deny", ["min_gap"], until=retry_at, detail=f"At least {hours:g} h apart.")
            )


def budget_plan(
    policy: Policy, ctx: CallContext, action: Action, now: datetime
) -> list[tuple[str, str, Decimal, Decimal, str]]:
    """(scope, period_key, limit, amount, reason) for every budget this action draws on, in lock order."""
    plan: list[tuple[str, str, Decimal, Decimal, str]] = []
    if action.cost > 0:
        house = period_keys(now, zone_of(policy.timezone, "UTC"))
        user = period_keys(now, zone_of(action.timezone, policy.default_user_timezone))
        for period, limit in policy.budgets.global_.items():
            plan.append((f"global:{period}", house[period], limit, action.cost, f"budget_global_{period}"))
        trigger = policy.trigger(ctx.trigger)
        for period, limit in trigger.budget.items() if trigger else []:
            plan.append(
                (f"trigger:{ctx.trigger}:{period}", house[period], limit, action.cost, "budget_trigger")
            )
        for period, limit in policy.budgets.per_user.items():
            plan.append((f"user:{action.user_id}:{period}", user[period], limit, action.cost, "budget_user"))
    if action.kind == "coupon" and action.asset_id and policy.budgets.per_asset_redemptions is not None:
        limit = Decimal(policy.budgets.per_asset_redemptions)
        plan.append((f"asset:{action.asset_id}:redemptions", "all", limit, Decimal(1), "asset_redemptions"))
    return sorted(plan)


async def _reserve(
    conn: psycopg.AsyncConnection[Any], policy: Policy, ctx: CallContext, action: Action, now: datetime
) -> list[Reservation]:
    await _contact_checks(conn, policy, action, now)
    taken: list[Reservation] = []
    for scope, key, limit, amount, reason in budget_plan(policy, ctx, action, now):
        params = {"scope": scope, "key": key, "limit": limit, "amount": amount, "now": now}
        if await (await conn.execute(RESERVE, params)).fetchone() is None:
            raise _Refused(Verdict("deny", [reason], detail=f"Limit {limit} for {scope} ({key})."))
        taken.append(Reservation(scope, key, amount))
    return taken


def _get(row: Any, key: str) -> Any:
    return row[key] if isinstance(row, dict) else row[0]


async def find_call(conn: psycopg.AsyncConnection[Any], key: str) -> Outcome | None:
    row = await (await conn.execute(FIND_CALL, (key,))).fetchone()
    if row is None:
        return None
    result = dict(row["result"])
    outcome = outcome_from_dict(result)
    outcome.replayed = True
    if row["status"] != result.get("status"):
        outcome.extra["current_status"] = row["status"]
    return outcome


def outcome_from_dict(data: dict[str, Any]) -> Outcome:
    until = data.get("until") or data.get("retry_at")
    known = {
        "status",
        "reason",
        "reasons",
        "message",
        "call_id",
        "outbox_id",
        "approval_id",
        "until",
        "retry_at",
        "policy_version",
        "replayed",
    }
    return Outcome(
        status=data["status"],
        reason=data.get("reason"),
        reasons=list(data.get("reasons") or ([data["reason"]] if data.get("reason") else [])),
        message=data.get("message", ""),
        call_id=data.get("call_id"),
        outbox_id=data.get("outbox_id"),
        approval_id=data.get("approval_id"),
        until=datetime.fromisoformat(until) if until else None,
        policy_version=data.get("policy_version"),
        extra={k: v for k, v in data.items() if k not in known},
    )


async def decide_new(
    conn: psycopg.AsyncConnection[Any],
    policy: Policy,
    ctx: CallContext,
    action: Action,
    stateless: Verdict | None,
    now: datetime,
    key: str,
) -> Outcome:
    """Judge and record a first call, or replay the recorded result of an earlier identical one."""
    async with conn.transaction():
        # Serialise twins of one call: the second waits here, then finds the first's row.
        await conn.execute(LOCK_KEY, (key,))
        replay = await find_call(conn, key)
        if replay is not None:
            return replay
        return await settle(conn, policy, ctx, action, stateless, now, key=key, call_id=None)


async def settle(
    conn: psycopg.AsyncConnection[Any],
    policy: Policy,
    ctx: CallContext,
    action: Action,
    stateless: Verdict | None,
    now: datetime,
    *,
    key: str,
    call_id: int | None,
) -> Outcome:
    """Inside the caller's transaction: atomic checks, then every row this verdict implies.

    `call_id` is None for a first call (a tool_calls row is written) and set when a deferred or
    approved call is released (its row's status moves on).
    """
    verdict = stateless
    reservations: list[Reservation] = []
    if verdict is None:
        try:
            async with conn.transaction():  # a savepoint: a refusal undoes partial reservations
                reservations = await _reserve(conn, policy, ctx, action, now)
                if policy.shadow:
                    raise _Shadow
            verdict = Verdict("allow")
        except _Refused as refused:
            verdict = refused.verdict
        except _Shadow:
            verdict, reservations = Verdict("shadow", detail="Shadow mode: recorded, not sent."), []
    status = STATUS_OF[verdict.kind]
    outcome = Outcome(
        status=status,
        reason=verdict.reason,
        reasons=list(verdict.reasons),
        message=verdict.message if verdict.kind != "shadow" else (verdict.detail or ""),
        until=verdict.until,
        policy_version=policy.version_id,
    )
    if call_id is None:
        row = await (
            await conn.execute(
                INSERT_CALL,
                {
                    "idem_key": key,
                    "decision_id": ctx.decision_id,
                    "caller": ctx.caller,
                    "trigger": ctx.trigger,
                    "tool": action.tool,
                    "user_id": action.user_id,
                    "arguments": Jsonb(action.arguments),
                    "verdict": verdict.kind,
                    "status": status,
                    "reason": verdict.reason,
                    "result": Jsonb({}),
                    "policy_version": policy.version_id,
                    "now": now,
                },
            )
        ).fetchone()
        call_id = int(_get(row, "call_id"))
        first = True
    else:
        await conn.execute(UPDATE_CALL, (status, verdict.reason, now, call_id))
        first = False
    outcome.call_id = call_id
    for r in reservations:
        await conn.execute(INSERT_LEDGER, (call_id, r.scope, r.period_key, r.amount, now))
    if verdict.kind in ("allow", "shadow"):
        row = await (
            await conn.execute(
                INSERT_OUTBOX,
                (
                    call_id,
                    key,
                    action.kind,
                    action.user_id,
                    Jsonb(action.payload),
                    "pending" if verdict.kind == "allow" else "shadow",
                    now,
                    now,
                    now,
                ),
            )
        ).fetchone()
        outcome.outbox_id = int(_get(row, "outbox_id"))
    elif verdict.kind in ("defer", "hold"):
        row = await (
            await conn.execute(INSERT_PENDING, (call_id, verdict.kind, verdict.until, now, now))
        ).fetchone()
        outcome.approval_id = int(_get(row, "pending_id")) if verdict.kind == "hold" else None
        outcome.extra["pending_id"] = int(_get(row, "pending_id"))
    await conn.execute(
        INSERT_AUDIT,
        {
            "now": now,
            "caller": ctx.caller,
            "trigger": ctx.trigger,
            "decision_id": ctx.decision_id,
            "tool": action.tool,
            "user_id": action.user_id,
            "arguments": Jsonb(action.arguments),
            "verdict": verdict.kind,
            "reasons": Jsonb(verdict.reasons),
            "message": outcome.message,
            "call_id": call_id,
            "policy_version": policy.version_id,
        },
    )
    if first:
        await conn.execute(
            "UPDATE tool_calls SET result = %s WHERE call_id = %s", (Jsonb(outcome.to_dict()), call_id)
        )
    return outcome


async def audit_only(
    conn: psycopg.AsyncConnection[Any],
    policy: Policy,
    ctx: CallContext,
    tool: str,
    user_id: str | None,
    arguments: dict[str, Any],
    verdict: Verdict,
    now: datetime,
) -> None:
    """Record a verdict that has no tool call row (a read tool the caller may not use)."""
    await conn.execute(
        INSERT_AUDIT,
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
            "call_id": None,
            "policy_version": policy.version_id,
        },
    )
