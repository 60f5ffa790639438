"""mca's own actions as events in the customers' stream (DESIGN, "Closing the loop").

When the dispatcher delivers an outbox row, and when a call is recorded but deliberately not
sent (shadow mode, a control-group decision), one event goes into the state store through the
configured transport, like any producer's: ``offer_sent``, ``message_sent``,
``points_awarded``, ``crm_updated`` or ``action_withheld``. The live views then show mca's
touches (``user_contacts``, file 160) and the attribution views join outcomes to them.

The event id is derived from the tool call, so a redelivered or re-emitted action is a
duplicate the events table drops, never a second touch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

EVENT_SOURCE = "mca"
DELIVERED_TYPE = {
    "coupon": "offer_sent",
    "sms": "message_sent",
    "points": "points_awarded",
    "crm": "crm_updated",
}
WITHHELD_TYPE = "action_withheld"

# Everything the action event says about its decision, read in one statement by call id.
FACTS_SQL = """
SELECT t.call_id, t.decision_id, t.trigger_name, t.tool, t.user_id, t.arguments, t.policy_version,
       j.goal, j.experiment_group, j.experiment, j.attribution_window_s,
       d.brain, a.arm, a.propensity, a.mode AS selection_mode, a.candidates,
       -- every budget a call draws on reserves the same cost; the global day budget always exists
       coalesce((SELECT l.amount FROM budget_ledger l
                 WHERE l.call_id = t.call_id AND l.kind = 'reserve' AND l.scope LIKE 'global:%%'
                 LIMIT 1), 0) AS cost
FROM tool_calls t
LEFT JOIN agent_jobs j ON j.decision_id = t.decision_id
LEFT JOIN decisions d ON d.decision_id = t.decision_id
LEFT JOIN decision_allocations a ON a.decision_id = t.decision_id
WHERE t.call_id = %(call_id)s
"""


@dataclass(frozen=True)
class ActionFacts:
    call_id: int
    user_id: str
    tool: str
    kind: str
    decision_id: str | None
    trigger: str
    goal: str | None
    brain: str | None
    policy_version: str
    experiment_group: str | None
    experiment: str | None
    arm: str | None
    propensity: float | None
    selection_mode: str | None
    window_s: int | None
    candidates: list[dict[str, Any]] | None
    cost: Decimal
    payload: dict[str, Any]

    @classmethod
    def from_row(cls, row: dict[str, Any], kind: str, payload: dict[str, Any]) -> ActionFacts:
        return cls(
            call_id=int(row["call_id"]),
            user_id=str(row["user_id"]),
            tool=str(row["tool"]),
            kind=kind,
            decision_id=row.get("decision_id"),
            trigger=str(row["trigger_name"]),
            goal=row.get("goal"),
            brain=row.get("brain"),
            policy_version=str(row["policy_version"]),
            experiment_group=row.get("experiment_group"),
            experiment=row.get("experiment"),
            arm=row.get("arm"),
            propensity=None if row.get("propensity") is None else float(row["propensity"]),
            selection_mode=row.get("selection_mode"),
            candidates=row.get("candidates"),
            window_s=row.get("attribution_window_s"),
            cost=Decimal(row.get("cost") or 0),
            payload=payload,
        )


def _arm(facts: ActionFacts) -> tuple[str, str | None, str]:
    """(arm, asset id, channel): an arm is `asset:channel`, or the kind for actions without an asset."""
    channel = str(facts.payload.get("channel") or facts.kind)
    asset = facts.payload.get("asset_id")
    return facts.arm or f"{asset or facts.kind}:{channel}", asset, channel


def _properties(facts: ActionFacts, extra: dict[str, Any]) -> dict[str, Any]:
    arm, asset_id, channel = _arm(facts)
    props = {
        "decision_id": facts.decision_id,
        "trigger": facts.trigger,
        "goal": facts.goal,
        "tool": facts.tool,
        "arm": arm,
        "asset": asset_id,
        "channel": channel,
        "brain": facts.brain,
        "policy_version": facts.policy_version,
        "experiment_group": facts.experiment_group,
        "experiment_id": facts.experiment,
        "propensity": facts.propensity,
        "selection_mode": facts.selection_mode,
        "candidates": facts.candidates,
        "window_s": facts.window_s,
        "coupon_code": facts.payload.get("coupon_code"),
        "cost": str(facts.cost),
        "call_id": facts.call_id,
    }
    return {k: v for k, v in props.items() if v is not None} | extra


def delivered_event(
    facts: ActionFacts, at: datetime, *, provider: str | None, points_echoed: bool
) -> dict[str, Any]:
    """The event of one delivered action.

    ``points_echoed``: the loyalty platform sends its own event for every award mca makes,
    so mca's ``points_awarded`` carries the points in its properties only and the balance
    moves once (`MCA_POINTS_ECHOED`, docs/settings.md).
    """
    points = facts.payload.get("points") if facts.kind == "points" else None
    value = facts.payload.get("value") if facts.kind == "coupon" else None
    extra: dict[str, Any] = {"provider": provider}
    if points is not None:
        extra["points"] = points
    return _row(
        facts,
        DELIVERED_TYPE.get(facts.kind, f"{facts.kind}_sent"),
        at,
        _properties(facts, extra),
        value=value,
        points=None if points_echoed else points,
    )


def withheld_event(facts: ActionFacts, at: datetime, reason: str) -> dict[str, Any]:
    """The event of an action judged in full and recorded, but deliberately not sent."""
    props = _properties(facts, {"withheld_kind": facts.kind, "reason": reason})
    return _row(facts, WITHHELD_TYPE, at, props, value=None, points=None)


def _row(
    facts: ActionFacts,
    event_type: str,
    at: datetime,
    properties: dict[str, Any],
    *,
    value: Any,
    points: Any,
) -> dict[str, Any]:
    return {
        "event_id": f"mca-{event_type}-{facts.call_id}",
        "user_id": facts.user_id,
        "event_type": event_type,
        "ts": at,
        "received_at": at,
        "source": EVENT_SOURCE,
        "value": None if value is None else round(float(value), 2),  # as ingest stores a value
        "points": None if points is None else int(points),
        "sku": None,
        "category": None,
        "text": None,
        "properties": properties,
    }
