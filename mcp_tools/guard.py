"""PolicyGuard, the stateless half: every check that needs only the policy, the request, the
user's contact row and the time. The stateful half (frequency caps, budgets, minimum gaps,
suppressions) runs inside the ledger transaction (`mcp_tools.ledger`), so it is atomic.

Every check has its own reason code (`mcp_tools.contract.Reason`, described in `REASONS`); a
verdict lists every failed check, the first one is the headline.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mcp_tools.contract import GUARD_REASONS, Reason, VerdictKind
from mcp_tools.policy import Policy

# Every check of the guard and what it means (the codes and texts live in the contract).
REASONS = GUARD_REASONS


@dataclass(frozen=True)
class CallContext:
    """Who calls and under which trigger; `approved` when an operator released a hold."""

    caller: str
    trigger: str
    decision_id: str | None = None
    approved: bool = False
    # The customer a decision is about. When set, every tool call must name this customer:
    # text injected into one customer's context cannot reach another customer.
    subject: str | None = None
    # The tools the decision's trigger gives it (the triggers file, as stored on its job), when
    # the decision is known: the allowed set is these intersected with the policy's.
    tools: frozenset[str] | None = None
    # The caller's own idempotency key (meta `mca.idempotency_key`), for callers without decisions.
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Action:
    """A side effect fully resolved from the stores (address, value), ready to be judged."""

    tool: str
    user_id: str
    arguments: dict[str, Any]
    kind: str  # outbox kind: sms | coupon | crm | points
    channel: str | None  # contact channel counted by caps, None when no message is sent
    cost: Decimal
    payload: dict[str, Any]
    asset_id: str | None = None
    timezone: str | None = None
    approval_amount: Decimal | None = None
    approval_threshold: Decimal | None = None
    # Links (hosts) and phone numbers (digits) of the text that the catalogue's own texts carry.
    known_refs: frozenset[str] = frozenset()


@dataclass
class Verdict:
    kind: VerdictKind
    reasons: list[str] = field(default_factory=list)
    until: datetime | None = None
    detail: str | None = None

    @property
    def reason(self) -> str | None:
        return self.reasons[0] if self.reasons else None

    @property
    def message(self) -> str:
        if not self.reasons:
            return "Allowed."
        text = " ".join(REASONS.get(r, r) for r in self.reasons)
        return f"{text} {self.detail}" if self.detail else text


def zone_of(name: str | None, fallback: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or fallback)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(fallback)


def period_keys(now: datetime, zone: ZoneInfo) -> Mapping[str, str]:
    """The calendar periods `now` falls in, in `zone`: a user's day is their local day."""
    return _period_keys_of(now.astimezone(zone).date())


@functools.lru_cache(maxsize=64)
def _period_keys_of(local: date) -> Mapping[str, str]:
    # Every guarded call asks for today's keys, a few times: one day's keys are built once.
    iso = local.isocalendar()
    month = f"{local.year:04d}-{local.month:02d}"
    return MappingProxyType({"day": local.isoformat(), "week": f"{iso.year}-W{iso.week:02d}", "month": month})


def _hm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def quiet_until(now: datetime, zone: ZoneInfo, start: str, end: str) -> datetime | None:
    """When quiet hours end (UTC), or None when `now` is outside them. Handles overnight
    windows and DST: the end is a local wall-clock time on the right local date."""
    local = now.astimezone(zone)
    t, s, e = local.time(), _hm(start), _hm(end)
    if s == e:
        return None
    overnight = s > e
    inside = (t >= s or t < e) if overnight else (s <= t < e)
    if not inside:
        return None
    end_date: date = local.date() + timedelta(days=1) if overnight and t >= s else local.date()
    return datetime.combine(end_date, e, tzinfo=zone).astimezone(UTC)


def check_tool_allowed(policy: Policy, ctx: CallContext, tool: str, user_id: object = None) -> Verdict | None:
    if ctx.subject is not None and user_id is not None and user_id != ctx.subject:
        return Verdict("deny", [Reason.SUBJECT_MISMATCH], detail=f"Decision about {ctx.subject!r}.")
    caller = policy.caller(ctx.caller)
    trigger = policy.trigger(ctx.trigger)
    if trigger is None:
        return Verdict("deny", [Reason.UNKNOWN_TRIGGER], detail=f"Trigger {ctx.trigger!r}.")
    if tool not in caller.tools or tool not in trigger.tools:
        return Verdict("deny", [Reason.TOOL_NOT_ALLOWED], detail=f"Tool {tool!r}, trigger {ctx.trigger!r}.")
    if ctx.tools is not None and tool not in ctx.tools:
        return Verdict(
            "deny",
            [Reason.TOOL_NOT_IN_TRIGGER],
            detail=f"Tool {tool!r}; trigger {ctx.trigger!r} gives {sorted(ctx.tools)}.",
        )
    return None


def _consent(policy: Policy, action: Action, contact: dict[str, Any]) -> list[str]:
    if action.channel is None:
        return []
    if contact.get("do_not_contact"):
        return [Reason.DO_NOT_CONTACT]
    consent = contact.get(f"consent_{action.channel}")
    if consent is False:
        return [Reason.OPTED_OUT]
    if consent is None:
        return [Reason.NO_CONSENT]
    address = {"sms": "phone", "email": "email"}.get(action.channel)
    if address and not contact.get(address):
        return [Reason.NO_ADDRESS]
    return []


def _content(policy: Policy, action: Action) -> tuple[list[str], str | None]:
    if action.kind != "sms":
        return [], None
    from mcp_tools.sms import sms_length
    from mcp_tools.sms_content import banned_in, unknown_refs

    text = str(action.payload.get("body", ""))
    reasons: list[str] = []
    notes: list[str] = []
    banned = banned_in(text, policy.sms.banned_phrases)
    if banned:
        reasons.append(Reason.BANNED_PHRASE)
        notes.append(f"Banned: {', '.join(repr(b) for b in banned)}.")
    links, numbers = unknown_refs(
        text, policy.sms.allowed_links, policy.sms.allowed_numbers, action.known_refs
    )
    if links:
        reasons.append(Reason.SMS_UNKNOWN_LINK)
        notes.append(f"Unknown links: {', '.join(links)}.")
    if numbers:
        reasons.append(Reason.SMS_UNKNOWN_NUMBER)
        notes.append(f"Unknown numbers: {', '.join(numbers)}.")
    if policy.sms.require_opt_out and policy.sms.opt_out_text.lower() not in text.lower():
        reasons.append(Reason.SMS_MISSING_OPT_OUT)
    length = sms_length(text)
    if length.segments > policy.sms.max_segments:
        reasons.append(Reason.SMS_TOO_LONG)
        notes.append(f"{length.segments} {length.encoding} segments, at most {policy.sms.max_segments}.")
    return reasons, " ".join(notes) or None


def _ceilings(policy: Policy, action: Action) -> list[str]:
    if action.kind == "coupon" and action.cost > policy.coupons.max_value:
        return [Reason.COUPON_VALUE_CEILING]
    if action.kind == "points" and int(action.arguments.get("points", 0)) > policy.points.max_per_award:
        return [Reason.POINTS_CEILING]
    if action.kind == "crm":
        allowed = set(policy.crm.allowed_fields)
        if any(name not in allowed for name in action.payload.get("fields", {})):
            return [Reason.CRM_FIELD_NOT_ALLOWED]
    return []


def _zero_caps(policy: Policy, action: Action) -> list[str]:
    """A cap of 0 denies without touching the counters (the upsert would start at 1)."""
    if action.channel is None:
        return []
    reasons: list[str] = [Reason(f"freq_cap_{p}") for p, v in policy.caps.items() if v == 0]
    reasons += [Reason(f"channel_cap_{p}") for p, v in policy.channel(action.channel).caps.items() if v == 0]
    return reasons


def judge(
    policy: Policy, ctx: CallContext, action: Action, contact: dict[str, Any], now: datetime
) -> Verdict | None:
    """The stateless verdict: deny / defer / hold, or None to go on to the atomic checks."""
    if policy.kill_switch:
        return Verdict("deny", [Reason.KILL_SWITCH])
    denied = check_tool_allowed(policy, ctx, action.tool)
    if denied:
        return denied
    content, detail = _content(policy, action)
    reasons = (
        _consent(policy, action, contact) + _ceilings(policy, action) + content + _zero_caps(policy, action)
    )
    if reasons:
        return Verdict("deny", reasons, detail=detail)
    threshold, amount = action.approval_threshold, action.approval_amount
    if threshold is not None and amount is not None and amount > threshold and not ctx.approved:
        return Verdict("hold", [Reason.APPROVAL_REQUIRED])
    if action.channel is not None:
        quiet = policy.channel(action.channel).quiet_hours
        if quiet is not None:
            zone = zone_of(action.timezone, policy.default_user_timezone)
            until = quiet_until(now, zone, quiet.start, quiet.end)
            if until is not None:
                return Verdict(
                    "defer", [Reason.QUIET_HOURS], until=until, detail=f"Until {until.isoformat()}."
                )
    return None
