"""What one allowed call draws on: every counter row it must fit under, as conditional reservations.

Each draw is one reservation in the ledger transaction (`spent + amount <= quota` under the row's
lock, on one of the budget's shards, sql/ops/260), so concurrent calls never pass a limit:

- budgets (money): global, per trigger, per customer, per asset's redemptions;
- per-customer ceilings per period: points given (`points.per_user`) and coupon value sent
  (`coupons.per_user`), in the customer's own calendar;
- the decision's running total against `approval_above` (points or coupon value): splitting one
  large award into many small ones in one decision does not get past the threshold. Over it,
  the call is held for an operator instead of refused. An approved call is not counted again
  (the operator approved it), and a held one is not counted until it is approved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from mcp_tools.contract import Reason, VerdictKind
from mcp_tools.guard import Action, CallContext, period_keys, zone_of
from mcp_tools.policy import Amounts, Policy

# Budgets every caller draws on (global, per trigger, per asset) are split in this many shards,
# so racing callers reserve on different rows; a customer's or a decision's budget is one row.
SHARED_SHARDS = 8
SHARED_SCOPES = ("global:", "trigger:", "asset:")

CEILING_REASON = {"points": Reason.POINTS_USER_CEILING, "coupon": Reason.COUPON_USER_CEILING}


@dataclass(frozen=True)
class Draw:
    scope: str
    key: str  # the period key ("2026-11-23", "2026-W48", "2026-11") or "all"
    limit: Decimal
    amount: Decimal
    reason: str
    kind: VerdictKind = "deny"  # "hold": over the limit the call waits for an operator
    detail: str | None = None

    @property
    def shards(self) -> int:
        return SHARED_SHARDS if self.scope.startswith(SHARED_SCOPES) else 1


def _ceilings(policy: Policy, action: Action) -> Amounts | None:
    if action.kind == "points":
        return policy.points.per_user
    if action.kind == "coupon":
        return policy.coupons.per_user
    return None


def plan(policy: Policy, ctx: CallContext, action: Action, now: datetime) -> list[Draw]:
    """Every draw of `action`, in lock order (the same order for every caller: no deadlocks).

    Refusals come before holds, so a call that is both over a ceiling and over a decision's
    threshold is refused, not held for an approval that could never be honoured.
    """
    draws: list[Draw] = []
    house = period_keys(now, zone_of(policy.timezone, "UTC"))
    user = period_keys(now, zone_of(action.timezone, policy.default_user_timezone))
    if action.cost > 0:
        for period, limit in policy.budgets.global_.items():
            draws.append(
                Draw(f"global:{period}", house[period], limit, action.cost, Reason(f"budget_global_{period}"))
            )
        trigger = policy.trigger(ctx.trigger)
        for period, limit in trigger.budget.items() if trigger else []:
            draws.append(
                Draw(
                    f"trigger:{ctx.trigger}:{period}",
                    house[period],
                    limit,
                    action.cost,
                    Reason.BUDGET_TRIGGER,
                )
            )
        for period, limit in policy.budgets.per_user.items():
            draws.append(
                Draw(f"user:{action.user_id}:{period}", user[period], limit, action.cost, Reason.BUDGET_USER)
            )
    if action.kind == "coupon" and action.asset_id and policy.budgets.per_asset_redemptions is not None:
        limit = Decimal(policy.budgets.per_asset_redemptions)
        draws.append(
            Draw(f"asset:{action.asset_id}:redemptions", "all", limit, Decimal(1), Reason.ASSET_REDEMPTIONS)
        )
    amount = action.approval_amount
    ceilings = _ceilings(policy, action)
    if amount is not None and ceilings is not None:
        for period, limit in ceilings.items():
            detail = f"At most {limit:g} {action.kind} per customer per {period}."
            scope = f"user:{action.user_id}:{action.kind}:{period}"
            draws.append(Draw(scope, user[period], limit, amount, CEILING_REASON[action.kind], detail=detail))
    threshold = action.approval_threshold
    if ctx.decision_id and not ctx.approved and threshold is not None and amount is not None:
        detail = f"This decision's {action.kind} would total more than {threshold:g}."
        scope = f"decision:{ctx.caller}:{ctx.decision_id}:{action.kind}"
        draws.append(
            Draw(scope, "all", threshold, amount, Reason.APPROVAL_REQUIRED, kind="hold", detail=detail)
        )
    return sorted(draws, key=lambda d: (d.kind == "hold", d.scope, d.key))
