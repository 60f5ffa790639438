"""The guard's atomic checks for one call: which rows an allowed call must move, in which order.

Built from the policy in Python (`checks_for`), run in the server by `mca_allow` (sql/ops/261),
which refuses with the index of the first check that fails. The order is the lock order every
caller shares: the user's suppression, contact caps and minimum gaps, then the budgets sorted by
scope (`draws.plan`), so racing calls cannot deadlock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mcp_tools import draws
from mcp_tools.guard import Action, CallContext, Verdict, period_keys, zone_of
from mcp_tools.policy import Policy


class CheckKind(enum.Enum):
    """What an atomic check guards; mca_allow (sql/ops/261) runs each kind."""

    SUPPRESSION = "suppression"
    CONTACT_CAP = "contact_cap"  # per-channel and overall frequency caps
    MIN_GAP = "min_gap"
    BUDGET = "budget"  # budgets and thresholds: a reservation against a limit


@dataclass(frozen=True)
class Check:
    """One atomic check; its statement calls mca_refuse_check(its index) to refuse."""

    kind: CheckKind
    params: dict[str, Any]
    refusal: Verdict


def _next_period(now: datetime, period: str, zone: Any) -> datetime:
    local = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start = local + timedelta(days=1)
    elif period == "week":
        start = local + timedelta(days=7 - local.weekday())
    else:
        start = (local.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start.replace(tzinfo=zone).astimezone(UTC)


def checks_for(policy: Policy, ctx: CallContext, action: Action, now: datetime) -> list[Check]:
    checks: list[Check] = []
    channel = action.channel
    if channel is not None:
        user = {"user_id": action.user_id, "now": now}
        suppressed = Verdict("deny", ["suppressed"])
        checks.append(Check(CheckKind.SUPPRESSION, {**user, "channel": channel}, suppressed))
        zone = zone_of(action.timezone, policy.default_user_timezone)
        keys = period_keys(now, zone)
        for scope, caps, prefix in (
            (channel, policy.channel(channel).caps, "channel_cap"),
            ("*", policy.caps, "freq_cap"),
        ):
            for period, cap in caps.items():
                refusal = Verdict(
                    "deny",
                    [f"{prefix}_{period}"],
                    until=_next_period(now, period, zone),
                    detail=f"At most {cap} per {period}.",
                )
                params = {**user, "channel": scope, "period": period, "key": keys[period], "cap": cap}
                checks.append(Check(CheckKind.CONTACT_CAP, params, refusal))
        for scope, hours in ((channel, policy.channel(channel).min_gap_hours), ("*", policy.min_gap_hours)):
            if hours > 0:
                refusal = Verdict("deny", ["min_gap"], detail=f"At least {hours:g} h apart.")
                params = {**user, "channel": scope, "threshold": now - timedelta(hours=hours), "gap_h": hours}
                checks.append(Check(CheckKind.MIN_GAP, params, refusal))
    for draw in draws.plan(policy, ctx, action, now):
        detail = draw.detail or f"Limit {draw.limit} for {draw.scope} ({draw.key})."
        refusal = Verdict(draw.kind, [draw.reason], detail=detail)
        params = {
            "scope": draw.scope,
            "key": draw.key,
            "limit": draw.limit,
            "amount": draw.amount,
            "shards": draw.shards,
            "now": now,
        }
        checks.append(Check(CheckKind.BUDGET, params, refusal))
    for i, check in enumerate(checks):
        check.params["check"] = i  # the index mca_refuse_check reports when this check refuses
    return checks
