"""The guard's second look: an outbox row judged again at the moment it is delivered.

A row can wait a long time between its `allow` and its delivery: held while the kill switch is
on, waiting on quiet hours, backing off after provider errors, or in flight when a dispatcher
died. Meanwhile the customer may have opted out, a STOP may have arrived, the policy may have
changed. So the dispatcher asks the guard again, with the guard's own stateless checks
(`mcp_tools.guard.judge`) on the contact row as it is now, plus the suppression list and an age
limit, and acts on the answer:

- `send`: deliver as claimed;
- `hold`: the kill switch or shadow mode is on; the row goes back to waiting, no attempt spent;
- `wait`: quiet hours in the customer's zone; the row waits until they end;
- `expire`: older than the maximum age; never sent;
- `cancel`: the guard would refuse it now (consent, suppression, a policy that no longer
  allows it); never sent.

Budgets and contact caps are not counted again: they were reserved when the call was allowed,
and an expired or cancelled row gives its budget reservation back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from mcp_tools.contract import Reason
from mcp_tools.guard import Action, CallContext, Verdict, judge
from mcp_tools.policy import Policy
from mcp_tools.providers.base import OutboxItem

RedecisionKind = Literal["send", "hold", "wait", "expire", "cancel"]
HOLDING_REASONS = frozenset({Reason.KILL_SWITCH, Reason.SHADOW})


@dataclass(frozen=True)
class Claimed:
    """A claimed outbox row and the call it came from, as the dispatcher re-judges it."""

    item: OutboxItem
    call_id: int
    created_at: datetime
    ctx: CallContext
    tool: str
    arguments: dict[str, Any]
    suppressed: frozenset[str]  # channels the user is suppressed on, read with the claim

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Claimed:
        payload = dict(row["payload"])
        item = OutboxItem(
            row["outbox_id"], row["idem_key"], row["kind"], row["user_id"], payload, row["attempts"]
        )
        # approved: the call already passed (or was released from) any approval hold.
        ctx = CallContext(row["caller"], row["trigger_name"], row["decision_id"], approved=True)
        return cls(
            item,
            row["call_id"],
            row["created_at"],
            ctx,
            row["tool"],
            dict(row["arguments"]),
            frozenset(row["suppressed"] or ()),
        )


@dataclass(frozen=True)
class Redecision:
    kind: RedecisionKind
    verdict: Verdict

    @property
    def reason(self) -> str:
        return self.verdict.reason or self.kind


def channel_of(item: OutboxItem) -> str | None:
    """The contact channel a row reaches the customer on (None: no message, e.g. CRM, points)."""
    if item.kind == "sms":
        return "sms"
    if item.kind == "coupon":
        return str(item.payload.get("channel") or "email")
    return None


def action_of(claimed: Claimed, contact: dict[str, Any]) -> Action:
    """The row as the guard judges an action: what was allowed, to whom, on which channel."""
    item = claimed.item
    value = item.payload.get("value") if item.kind == "coupon" else None
    return Action(
        tool=claimed.tool,
        user_id=item.user_id,
        arguments=claimed.arguments,
        kind=item.kind,
        channel=channel_of(item),
        cost=Decimal(str(value)) if value is not None else Decimal(0),
        payload=item.payload,
        asset_id=item.payload.get("asset_id"),
        timezone=contact.get("timezone"),
    )


def rejudge(
    policy: Policy, claimed: Claimed, contact: dict[str, Any] | None, now: datetime, max_age: timedelta
) -> Redecision:
    """What to do with a claimed row now; `contact` is the user's contact row (None: gone)."""
    if policy.kill_switch:
        return Redecision("hold", Verdict("deny", [Reason.KILL_SWITCH]))
    if policy.shadow:
        return Redecision("hold", Verdict("shadow", [Reason.SHADOW], detail="Shadow mode: nothing is sent."))
    age = now - claimed.created_at
    if age > max_age:
        detail = f"Not delivered within {max_age}; allowed at {claimed.created_at.isoformat()}."
        return Redecision("expire", Verdict("deny", [Reason.EXPIRED], detail=detail))
    if contact is None:
        return Redecision("cancel", Verdict("deny", [Reason.UNKNOWN_USER], detail="The customer is gone."))
    channel = channel_of(claimed.item)
    if channel is not None and channel in claimed.suppressed:
        return Redecision("cancel", Verdict("deny", [Reason.SUPPRESSED]))
    verdict = judge(policy, claimed.ctx, action_of(claimed, contact), contact, now)
    if verdict is None:
        return Redecision("send", Verdict("allow"))
    if verdict.kind == "defer" and verdict.until is not None:
        return Redecision("wait", verdict)
    return Redecision("cancel", verdict)
