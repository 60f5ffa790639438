"""The guard's dry run: what it would say to each of several proposed calls, reserving nothing.

Used before an allocation (agent.allocation): the learning may only choose among calls the guard
would not refuse. Each call is resolved from the stores like a real one (the customer, the asset,
the value, the channel) and judged by the guard's stateless checks (`mcp_tools.guard.judge`:
kill switch, the trigger's tools, consent, ceilings, content, approvals, quiet hours) under the
decision's scope (`mcp_tools.scope`), then its budget draws (`mcp_tools.draws.plan`: budgets, an
asset's redemptions, per-customer ceilings) are compared with the counters as they stand. Nothing
is written: no tool call, no reservation, no audit row. Contact caps, gaps and suppressions, and
the reservations themselves, stay with the real call, which still goes through the full guard
atomically; a dry run can only narrow what is tried, never widen what is allowed.

Two round trips whatever the number of calls: the state store (the customer and every named
asset), then one ops statement (the switches, the decision's job and the counters the draws land
on). The draws are planned before the scope is known, under the caller's trigger; the switches
(kill, shadow) change neither an action nor its draws, and should the job name another trigger
the draws are planned again and the counters read once more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from mca.db import reading
from mcp_tools import actions, draws, scope
from mcp_tools.contract import Reason
from mcp_tools.errors import ToolInputError
from mcp_tools.guard import Action, CallContext, check_tool_allowed, judge
from mcp_tools.policy import Policy
from mcp_tools.service import ToolService

# What the budgets a set of draws would land on have spent so far (absent: nothing), summed
# over their shards (sql/ops/260).
SPENT_SQL = """
SELECT b.scope, b.period_key, sum(b.spent) AS spent FROM budget_counters b
JOIN unnest(CAST(%(scopes)s AS text[]), CAST(%(keys)s AS text[])) AS d(scope, period_key)
  ON b.scope = d.scope AND b.period_key = d.period_key
GROUP BY b.scope, b.period_key
"""
# The scope (switches, the decision's job) and the same spent sums in one statement; the sums
# as text: exact decimals through JSON.
SCOPE_AND_SPENT = f"""
SELECT {scope.SCOPE_COLUMNS},
       (SELECT coalesce(jsonb_agg(jsonb_build_array(t.scope, t.period_key, t.spent::text)), '[]')
        FROM ({SPENT_SQL}) t) AS spent
"""

Spent = dict[tuple[str, str], Decimal]
Planned = dict[int, list[draws.Draw]]  # call index -> the draws that would refuse it


@dataclass(frozen=True)
class DryVerdict:
    """What the guard would answer: allow, deny, hold or defer, with its reasons."""

    kind: str
    reasons: tuple[str, ...] = ()
    message: str = "Allowed."
    action: Action | None = None  # the resolved call (its channel and value), when it resolved

    @property
    def refused(self) -> bool:
        return self.kind == "deny"

    @property
    def reason(self) -> str | None:
        return self.reasons[0] if self.reasons else None


def _denied(code: str, message: str) -> DryVerdict:
    return DryVerdict("deny", (code,), message)


async def _build(
    service: ToolService, state: Any, policy: Policy, tool: str, args: dict[str, Any],
    contact: dict[str, Any], assets: dict[str, dict[str, Any]],
) -> Action | DryVerdict:  # fmt: skip
    """The call resolved like a real one, or the refusal its arguments earn."""
    builder = actions.BUILDERS.get(tool)
    if builder is None:
        return _denied(Reason.UNKNOWN_TOOL, f"{tool!r} is not a side-effecting tool")
    if args.get("user_id") != contact["user_id"]:
        return _denied(Reason.SUBJECT_MISMATCH, "Every candidate must name the same customer.")
    reason = args.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > actions.MAX_REASON_CHARS:
        return _denied(Reason.INVALID_ARGUMENT, "reason must be a non-empty string of at most 500 characters")
    try:
        request = actions.Request(
            state, policy, tool, args, contact, reason.strip(), service.clock(), assets=assets
        )
        return await builder(request)
    except ToolInputError as err:
        return _denied(err.code, str(err))


def _judged(
    policy: Policy, ctx: CallContext, tool: str, args: dict[str, Any], built: Action | DryVerdict,
    contact: dict[str, Any], now: datetime,
) -> DryVerdict:  # fmt: skip
    early = check_tool_allowed(policy, ctx, tool, args.get("user_id"))
    if early is not None:
        return DryVerdict("deny", tuple(early.reasons), early.message)
    if isinstance(built, DryVerdict):
        return built
    verdict = judge(policy, ctx, built, contact, now)
    if verdict is None:
        return DryVerdict("allow", action=built)
    return DryVerdict(verdict.kind, tuple(verdict.reasons), verdict.message, built)


def _plan(policy: Policy, ctx: CallContext, built: Sequence[Action | DryVerdict], now: datetime) -> Planned:
    return {
        i: [d for d in draws.plan(policy, ctx, a, now) if d.kind == "deny"]
        for i, a in enumerate(built)
        if isinstance(a, Action)
    }


def _pairs(planned: Planned) -> tuple[list[str], list[str]]:
    pairs = sorted({(d.scope, d.key) for ds in planned.values() for d in ds})
    return [p[0] for p in pairs], [p[1] for p in pairs]


async def dry_run(
    service: ToolService, ctx: CallContext, calls: Sequence[tuple[str, dict[str, Any]]]
) -> list[DryVerdict]:
    """The guard's answer to each `(tool, arguments)` of one decision, in order; nothing written.

    The connections are taken one after the other, never one inside another, so a dry run
    cannot wait on a pool while holding one."""
    if not calls:
        return []
    base, now = service.policy(), service.clock()
    async with reading(service.state_pool) as state:
        try:
            named = [args.get("asset_id") for _, args in calls]
            contact, found = await actions.read_customer(state, calls[0][1].get("user_id"), named)
        except ToolInputError as err:
            return [_denied(err.code, str(err)) for _ in calls]
        built = [await _build(service, state, base, t, a, contact, found or {}) for t, a in calls]
    planned = _plan(base, ctx, built, now)
    scopes, keys = _pairs(planned)
    params = {"decision_id": scope.lookup_id(base, ctx), "scopes": scopes, "keys": keys}
    async with reading(service.ops_pool) as conn:
        row = await (await conn.execute(SCOPE_AND_SPENT, params)).fetchone()
        assert row is not None
        policy, bound = scope.bind(row, base, ctx)
        spent = {(s, k): Decimal(v) for s, k, v in row["spent"]}
        if policy.kill_switch:
            return [_denied(Reason.KILL_SWITCH, "The kill switch is on.") for _ in calls]
        if bound.trigger != ctx.trigger:
            planned = _plan(policy, bound, built, now)
            spent = await _spent(conn, planned)
    verdicts = [_judged(policy, bound, t, a, b, contact, now) for (t, a), b in zip(calls, built, strict=True)]
    return _within_budgets(verdicts, planned, spent)


async def _spent(conn: Any, planned: Planned) -> Spent:
    scopes, keys = _pairs(planned)
    if not scopes:
        return {}
    rows = await (await conn.execute(SPENT_SQL, {"scopes": scopes, "keys": keys})).fetchall()
    return {(r["scope"], r["period_key"]): r["spent"] for r in rows}


def _within_budgets(verdicts: list[DryVerdict], planned: Planned, spent: Spent) -> list[DryVerdict]:
    """Each verdict not refused, refused when one of its draws would not fit the counter now."""
    out = list(verdicts)
    for i, ds in planned.items():
        if out[i].kind == "deny":
            continue
        over = next((d for d in ds if spent.get((d.scope, d.key), 0) + d.amount > d.limit), None)
        if over is not None:
            detail = over.detail or f"Limit {over.limit} for {over.scope} ({over.key})."
            out[i] = DryVerdict("deny", (over.reason,), detail, verdicts[i].action)
    return out
