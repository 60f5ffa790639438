"""The tool contract, written once: tool names, reason codes, statuses, request-meta keys and the
typed outcome every side-effecting tool returns (its JSON schema is the tools' MCP `outputSchema`).

The server (`mcp_tools`) and its callers (`agent`) both read these names from here, so adding a
tool means a member of `Tool` (and `SIDE_EFFECTS` when it acts) plus its implementation.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_serializer, model_validator


class Tool(StrEnum):
    SEARCH_ASSETS = "search_assets"
    GET_USER_CONTEXT = "get_user_context"
    SEND_COUPON = "send_coupon"
    SEND_SMS = "send_sms"
    UPDATE_CRM = "update_crm"
    AWARD_POINTS = "award_points"

    @property
    def side_effecting(self) -> bool:
        return self in SIDE_EFFECTS


SIDE_EFFECTS = frozenset({Tool.SEND_COUPON, Tool.SEND_SMS, Tool.UPDATE_CRM, Tool.AWARD_POINTS})
ALL_TOOLS: tuple[Tool, ...] = tuple(Tool)
READ_TOOLS: tuple[Tool, ...] = tuple(t for t in Tool if not t.side_effecting)
SIDE_EFFECT_TOOLS: tuple[Tool, ...] = tuple(t for t in Tool if t.side_effecting)


class Status(StrEnum):
    """What a tool call answered (`ok` for reads), and where a recorded call moved on to later."""

    OK = "ok"
    ALLOWED = "allowed"
    DENIED = "denied"
    DEFERRED = "deferred"
    HELD = "held"
    SHADOW = "shadow"
    ERROR = "error"
    # A recorded call's status after its answer (`current_status` on a replay).
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


# A side effect the guard let through, now or later: the call counts as the decision acting.
ACCEPTED = frozenset({Status.ALLOWED, Status.DEFERRED, Status.HELD, Status.SHADOW})
ERRORS = frozenset({Status.DENIED, Status.ERROR})

# The guard's verdict on a call (stored as `verdict`), and the status the call answers with (stored
# as `status`): one idea seen from the guard and from the caller, so one maps onto the other.
VerdictKind = Literal["allow", "deny", "defer", "hold", "shadow"]
STATUS_OF: dict[str, Status] = {
    "allow": Status.ALLOWED,
    "deny": Status.DENIED,
    "defer": Status.DEFERRED,
    "hold": Status.HELD,
    "shadow": Status.SHADOW,
}


class Reason(StrEnum):
    """Every machine-readable `reason` a caller can get: one code per rule."""

    # The guard's checks (described in GUARD_REASONS).
    KILL_SWITCH = "kill_switch"
    TOOL_NOT_ALLOWED = "tool_not_allowed"
    TOOL_NOT_IN_TRIGGER = "tool_not_in_trigger"
    SUBJECT_MISMATCH = "subject_mismatch"
    UNKNOWN_TRIGGER = "unknown_trigger"
    DO_NOT_CONTACT = "do_not_contact"
    OPTED_OUT = "opted_out"
    NO_CONSENT = "no_consent"
    NO_ADDRESS = "no_address"
    SUPPRESSED = "suppressed"
    QUIET_HOURS = "quiet_hours"
    FREQ_CAP_DAY = "freq_cap_day"
    FREQ_CAP_WEEK = "freq_cap_week"
    FREQ_CAP_MONTH = "freq_cap_month"
    CHANNEL_CAP_DAY = "channel_cap_day"
    CHANNEL_CAP_WEEK = "channel_cap_week"
    CHANNEL_CAP_MONTH = "channel_cap_month"
    MIN_GAP = "min_gap"
    BUDGET_GLOBAL_DAY = "budget_global_day"
    BUDGET_GLOBAL_MONTH = "budget_global_month"
    BUDGET_GLOBAL_WEEK = "budget_global_week"
    BUDGET_TRIGGER = "budget_trigger"
    BUDGET_USER = "budget_user"
    ASSET_REDEMPTIONS = "asset_redemptions"
    COUPON_VALUE_CEILING = "coupon_value_ceiling"
    POINTS_CEILING = "points_ceiling"
    POINTS_USER_CEILING = "points_user_ceiling"
    COUPON_USER_CEILING = "coupon_user_ceiling"
    SMS_TOO_LONG = "sms_too_long"
    SMS_MISSING_OPT_OUT = "sms_missing_opt_out"
    BANNED_PHRASE = "banned_phrase"
    SMS_UNKNOWN_LINK = "sms_unknown_link"
    SMS_UNKNOWN_NUMBER = "sms_unknown_number"
    CRM_FIELD_NOT_ALLOWED = "crm_field_not_allowed"
    APPROVAL_REQUIRED = "approval_required"
    REJECTED = "rejected"
    # Delivery-time re-judging (mcp_tools.rejudge).
    SHADOW = "shadow"
    EXPIRED = "expired"
    # Bad input, found by the tool server (ToolInputError) ...
    INVALID_ARGUMENT = "invalid_argument"
    UNKNOWN_USER = "unknown_user"
    UNKNOWN_ASSET = "unknown_asset"
    ASSET_INACTIVE = "asset_inactive"
    ASSET_EXPIRED = "asset_expired"
    ASSET_NOT_YET_VALID = "asset_not_yet_valid"
    ASSET_HAS_NO_VALUE = "asset_has_no_value"
    TEXT_TOO_LONG = "text_too_long"
    UNKNOWN_TOOL = "unknown_tool"
    # ... or by the agent before or around the call.
    INVALID_ARGUMENTS = "invalid_arguments"
    TOOL_CALL_LIMIT = "tool_call_limit"
    PROTOCOL_ERROR = "protocol_error"


GUARD_REASONS: dict[str, str] = {
    Reason.KILL_SWITCH: "The kill switch is on: no action is taken until an operator turns it off.",
    Reason.TOOL_NOT_ALLOWED: "This tool is not allowed for this trigger or caller.",
    Reason.TOOL_NOT_IN_TRIGGER: (
        "This tool is not among the tools the decision's trigger (triggers file) gives."
    ),
    Reason.SUBJECT_MISMATCH: "This decision is about another customer; tools act only on that customer.",
    Reason.UNKNOWN_TRIGGER: "The trigger is not in the policy and there is no default.",
    Reason.DO_NOT_CONTACT: "The customer asked not to be contacted at all.",
    Reason.OPTED_OUT: "The customer opted out of this channel.",
    Reason.NO_CONSENT: "The customer never gave consent for this channel.",
    Reason.NO_ADDRESS: "There is no address on file for this channel.",
    Reason.SUPPRESSED: "This channel is suppressed for the customer (STOP received or provider refusal).",
    Reason.QUIET_HOURS: "It is quiet hours in the customer's time zone; the message waits until they end.",
    Reason.FREQ_CAP_DAY: "The customer already got the most messages allowed today (their calendar day).",
    Reason.FREQ_CAP_WEEK: "The customer already got the most messages allowed this week.",
    Reason.FREQ_CAP_MONTH: "The customer already got the most messages allowed this month.",
    Reason.CHANNEL_CAP_DAY: "The customer already got the most messages allowed on this channel today.",
    Reason.CHANNEL_CAP_WEEK: "The customer already got the most messages allowed on this channel this week.",
    Reason.CHANNEL_CAP_MONTH: (
        "The customer already got the most messages allowed on this channel this month."
    ),
    Reason.MIN_GAP: "The last message to this customer was too recent.",
    Reason.BUDGET_GLOBAL_DAY: "Today's global budget cannot cover this.",
    Reason.BUDGET_GLOBAL_WEEK: "This week's global budget cannot cover this.",
    Reason.BUDGET_GLOBAL_MONTH: "This month's global budget cannot cover this.",
    Reason.BUDGET_TRIGGER: "This trigger's budget cannot cover this.",
    Reason.BUDGET_USER: "This customer's budget for the period cannot cover this.",
    Reason.ASSET_REDEMPTIONS: "This asset has no redemptions left.",
    Reason.COUPON_VALUE_CEILING: "The coupon is worth more than the policy allows.",
    Reason.POINTS_CEILING: "More points than one award may give.",
    Reason.POINTS_USER_CEILING: "The customer already got the most points allowed for the period.",
    Reason.COUPON_USER_CEILING: "The customer already got the most coupon value allowed for the period.",
    Reason.SMS_TOO_LONG: "The SMS (with the opt-out footer) is longer than the allowed number of segments.",
    Reason.SMS_MISSING_OPT_OUT: "The SMS lacks the required opt-out text.",
    Reason.BANNED_PHRASE: "The SMS contains a phrase the policy bans.",
    Reason.SMS_UNKNOWN_LINK: (
        "The SMS has a link that is neither in the catalogue nor on the policy's allow-list."
    ),
    Reason.SMS_UNKNOWN_NUMBER: "The SMS has a phone number neither in the catalogue nor on the allow-list.",
    Reason.CRM_FIELD_NOT_ALLOWED: "A CRM field is not on the allow-list.",
    Reason.APPROVAL_REQUIRED: "Above the approval threshold: held until an operator approves or rejects it.",
    Reason.REJECTED: "An operator rejected this action.",
}

# Request meta (`_meta` of tools/call and tools/list) that the tool server reads.
META_DECISION_ID = "mca.decision_id"
META_TRIGGER = "mca.trigger"
# The customer the decision is about; a trusted caller's calls naming anyone else are denied.
META_USER_ID = "mca.user_id"
# Any caller's own idempotency key: the same key with the same tool and arguments replays the
# first answer. Without it (and without a decision id) identical calls replay only within the
# caller's `replay_window_s`.
META_IDEMPOTENCY_KEY = "mca.idempotency_key"
META_KEYS = (META_DECISION_ID, META_TRIGGER, META_USER_ID, META_IDEMPOTENCY_KEY)


class Outcome(BaseModel):
    """A tool call's answer: the structured content on the wire, the stored first answer of a call
    (replayed as it was), and what the agent reads back. A read tool's data (`assets`, `context`)
    rides along as extra fields when the agent parses its answer."""

    model_config = ConfigDict(extra="allow")

    status: Status
    reason: str | None = None
    message: str = ""
    # Every failed check when there were several; `reason` is the first.
    reasons: list[str] = []
    call_id: int | None = None
    outbox_id: int | None = None
    approval_id: int | None = None
    pending_id: int | None = None
    policy_version: str | None = None
    # When a deferred or held action is due (deferred, held) ...
    until: datetime | None = None
    # ... or when a refused one may be tried again (denied, e.g. a minimum gap).
    retry_at: datetime | None = None
    # A replay says so, and when the answer it repeats was given: nothing new was judged.
    replayed: bool = False
    replayed_from: datetime | None = None
    # On a replay, where the recorded call has moved on to since (rejected, expired, ...).
    current_status: str | None = None
    # The argument a bad-input error is about.
    field: str | None = None

    @model_validator(mode="after")
    def _normalise(self) -> Outcome:
        if not self.reasons and self.reason:
            self.reasons = [self.reason]
        if self.status is Status.DENIED and self.until is not None:
            self.retry_at, self.until = self.until, None
        return self

    @field_serializer("until", "retry_at", "replayed_from")
    def _iso(self, value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    @property
    def is_error(self) -> bool:
        return self.status in ERRORS

    @property
    def accepted(self) -> bool:
        return self.status in ACCEPTED

    def to_dict(self) -> dict[str, Any]:
        """The wire and stored form: absent fields left out, `reasons` only when there are several."""
        out: dict[str, Any] = {"status": self.status.value}
        if self.status is not Status.OK or self.reason is not None:
            out["reason"] = self.reason
        if self.status is not Status.OK or self.message:
            out["message"] = self.message
        if self.reasons[1:]:
            out["reasons"] = list(self.reasons)
        rest = self.model_dump(
            mode="json", exclude_none=True, exclude={"status", "reason", "message", "reasons", "replayed"}
        )
        if self.replayed:
            rest["replayed"] = True
        return out | rest


def outcome_from_dict(data: dict[str, Any]) -> Outcome:
    return Outcome.model_validate(data)
