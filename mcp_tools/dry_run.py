"""The guard's dry run: what it would say to each of several proposed calls, reserving nothing.

Used before an allocation (agent.allocation): the learning may only choose among calls the guard
would not refuse. Each call is resolved from the stores like a real one (the customer, the asset,
the value, the channel) and judged by the guard's stateless checks (`mcp_tools.guard.judge`:
kill switch, the trigger's tools, consent, ceilings, content, approvals, quiet hours) under the
decision's scope (`mcp_tools.scope`), then its budget draws (`mcp_tools.draws.plan`: budgets, an
asset's redemptions, per-customer ceilings) are compared with the counters as they stand, in one
read. Nothing is written: no tool call, no reservation, no audit row. Contact caps, gaps and
suppressions, and the reservations themselves, stay with the real call, which still goes through
the full guard atomically; a dry run can only narrow what is tried, never widen what is allowed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


async def _one(
    service: ToolService, state: Any, policy: Policy, ctx: CallContext, tool: str, args: dict[str, Any],
    contact: dict[str, Any], assets: dict[str, dict[str, Any]],
) -> DryVerdict:  # fmt: skip
    early = check_tool_allowed(policy, ctx, tool, args.get("user_id"))
    if early is not None:
        return DryVerdict("deny", tuple(early.reasons), early.message)
    builder = actions.BUILDERS.get(tool)
    if builder is None:
        return _denied(Reason.UNKNOWN_TOOL, f"{tool!r} is not a side-effecting tool")
    reason = args.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > actions.MAX_REASON_CHARS:
        return _denied(Reason.INVALID_ARGUMENT, "reason must be a non-empty string of at most 500 characters")
    try:
        request = actions.Request(
            state, policy, tool, args, contact, reason.strip(), service.clock(), assets=assets
        )
        action = await builder(request)
    except ToolInputError as err:
        return _denied(err.code, str(err))
    verdict = judge(policy, ctx, action, contact, service.clock())
    if verdict is None:
        return DryVerdict("allow", action=action)
    return DryVerdict(verdict.kind, tuple(verdict.reasons), verdict.message, action)


async def dry_run(
    service: ToolService, ctx: CallContext, calls: Sequence[tuple[str, dict[str, Any]]]
) -> list[DryVerdict]:
    """The guard's answer to each `(tool, arguments)` of one decision, in order; nothing written.

    Whatever the number of calls: the scope read, one state connection (the customer, then every
    named asset in one read), and one read of the budget counters. The connections are taken one
    after the other, never one inside another, so a dry run cannot wait on a pool while holding one."""
    if not calls:
        return []
    async with service.ops_pool.connection() as conn:
        policy, bound = await scope.resolve(conn, service.policy(), ctx)
    if policy.kill_switch:
        return [_denied(Reason.KILL_SWITCH, "The kill switch is on.") for _ in calls]
    async with service.state_pool.connection() as state:
        try:
            contact = await actions.load_user(state, calls[0][1].get("user_id"))
        except ToolInputError as err:
            return [_denied(err.code, str(err)) for _ in calls]
        assets = await actions.load_assets(state, [args.get("asset_id") for _, args in calls])
        out = []
        for tool, args in calls:
            if args.get("user_id") != contact["user_id"]:
                out.append(_denied(Reason.SUBJECT_MISMATCH, "Every candidate must name the same customer."))
                continue
            out.append(await _one(service, state, policy, bound, tool, args, contact, assets))
    return await _budgets(service, policy, bound, out)


async def _budgets(
    service: ToolService, policy: Policy, ctx: CallContext, verdicts: list[DryVerdict]
) -> list[DryVerdict]:
    """Each verdict still allowing, refused when one of its draws would not fit the counter now."""
    now = service.clock()
    planned = {
        i: [d for d in draws.plan(policy, ctx, v.action, now) if d.kind == "deny"]
        for i, v in enumerate(verdicts)
        if v.kind != "deny" and v.action is not None
    }
    pairs = sorted({(d.scope, d.key) for ds in planned.values() for d in ds})
    if not pairs:
        return verdicts
    async with service.ops_pool.connection() as conn:
        cur = await conn.execute(SPENT_SQL, {"scopes": [p[0] for p in pairs], "keys": [p[1] for p in pairs]})
        spent = {(r["scope"], r["period_key"]): r["spent"] for r in await cur.fetchall()}
    out = list(verdicts)
    for i, ds in planned.items():
        over = next((d for d in ds if spent.get((d.scope, d.key), 0) + d.amount > d.limit), None)
        if over is not None:
            detail = over.detail or f"Limit {over.limit} for {over.scope} ({over.key})."
            out[i] = DryVerdict("deny", (over.reason,), detail, verdicts[i].action)
    return out
