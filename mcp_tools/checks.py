"""The guard's atomic checks for one call: which rows an allowed call must move, in which order.

Built from the policy in Python (`checks_for`), run in the server by `mca_allow` (sql/ops/261, 262),
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
    """What an atomic check guards; mca_allow (sql/ops/261, 262) runs each kind."""

    SUPPRESSION = "suppression"
    CONTACT_CAP = "contact_cap"  # per-channel and overall frequency caps
    MIN_GAP = "min_gap"
    BUDGET = "budget"  # budgets and thresholds: a reservation against a limit


@dataclass(frozen=True)
class Check:
    """One atomic check; its statement calls mca_refuse_check(its index) to refuse.

    `params` is what mca_allow reads, already in JSON's own types (strings, numbers), so that
    encoding it needs no fallbacks; `why` is what words the refusal, read only when this check
    is the one that refused (most calls are allowed: their refusals are never built)."""

    kind: CheckKind
    params: dict[str, Any]
    why: Any = None

    @property
    def refusal(self) -> Verdict:
        if self.kind is CheckKind.SUPPRESSION:
            return Verdict("deny", ["suppressed"])
        if self.kind is CheckKind.CONTACT_CAP:
            prefix, now, zone = self.why
            period, cap = self.params["period"], self.params["cap"]
            return Verdict(
                "deny",
                [f"{prefix}_{period}"],
                until=_next_period(now, period, zone),
                detail=f"At most {cap} per {period}.",
            )
        if self.kind is CheckKind.MIN_GAP:
            return Verdict("deny", ["min_gap"], detail=f"At least {self.params['gap_h']:g} h apart.")
        draw: draws.Draw = self.why
        detail = draw.detail or f"Limit {draw.limit} for {draw.scope} ({draw.key})."
        return Verdict(draw.kind, [draw.reason], detail=detail)


def _next_period(now: datetime, period: str, zone: Any) -> datetime:
    local = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start = local + timedelta(days=1)
    elif period == "week":
        start = local + timedelta(days=7 - local.weekday())
    else:
        start = (local.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start.replace(tzinfo=zone).astimezone(UTC)


def _contact_checks(policy: Policy, action: Action, channel: str, now: datetime) -> list[Check]:
    user = action.user_id
    checks = [Check(CheckKind.SUPPRESSION, {"kind": "suppression", "user_id": user, "channel": channel})]
    zone = zone_of(action.timezone, policy.default_user_timezone)
    keys = period_keys(now, zone)
    for scope, caps, prefix in (
        (channel, policy.channel(channel).caps, "channel_cap"),
        ("*", policy.caps, "freq_cap"),
    ):
        for period, cap in caps.items():
            params = {
                "kind": "contact_cap",
                "user_id": user,
                "channel": scope,
                "period": period,
                "key": keys[period],
                "cap": cap,
            }
            checks.append(Check(CheckKind.CONTACT_CAP, params, (prefix, now, zone)))
    for scope, hours in ((channel, policy.channel(channel).min_gap_hours), ("*", policy.min_gap_hours)):
        if hours > 0:
            threshold = (now - timedelta(hours=hours)).isoformat()
            params = {"kind": "min_gap", "user_id": user, "channel": scope, "threshold": threshold}
            params["gap_h"] = hours
            checks.append(Check(CheckKind.MIN_GAP, params))
    return checks


def checks_for(policy: Policy, ctx: CallContext, action: Action, now: datetime) -> list[Check]:
    checks = _contact_checks(policy, action, action.channel, now) if action.channel is not None else []
    for draw in draws.plan(policy, ctx, action, now):
        params = {
            "kind": "budget",
            "scope": draw.scope,
            "key": draw.key,
            "limit": str(draw.limit),
            "amount": str(draw.amount),
            "shards": draw.shards,
        }
        checks.append(Check(CheckKind.BUDGET, params, draw))
    for i, check in enumerate(checks):
        check.params["check"] = i  # the index mca_refuse_check reports when this check refuses
    return checks
