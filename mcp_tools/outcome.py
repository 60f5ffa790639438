"""What a tool call returns (and what a retry of it gets again), and its idempotency key."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

STATUS_OF = {"allow": "allowed", "deny": "denied", "defer": "deferred", "hold": "held", "shadow": "shadow"}


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def idem_key(caller: str, decision_id: str | None, tool: str, arguments: dict[str, Any]) -> str:
    """Same caller + decision + tool + arguments => same key. Scoped by caller, so one caller
    can never collide with (or replay) another's calls."""
    return hashlib.sha256(canonical([caller, decision_id, tool, arguments]).encode()).hexdigest()


def call_keys(
    caller: str,
    decision_id: str | None,
    explicit: str | None,
    tool: str,
    arguments: dict[str, Any],
    now: datetime,
    window_s: int,
) -> tuple[str, str | None]:
    """The idempotency key of a call, and the key of the window before when the call has none.

    - With a decision id (the agent) the key is the decision's: a retried decision replays.
    - With an explicit key (request meta `mca.idempotency_key`) it is that key: the caller
      decides what counts as the same call, as with any HTTP idempotency key.
    - With neither, identical calls replay only within `window_s` seconds: the key carries the
      window's number, and the previous window's key is returned too so that a retry just
      across a window boundary still finds the first call (the caller checks its age).
    """
    if explicit is not None:
        digest = canonical([caller, decision_id, "explicit", explicit, tool, arguments])
        return hashlib.sha256(digest.encode()).hexdigest(), None
    if decision_id is not None:
        return idem_key(caller, decision_id, tool, arguments), None
    window = int(now.timestamp()) // window_s

    def key(n: int) -> str:
        digest = canonical([caller, None, "window", window_s, n, tool, arguments])
        return hashlib.sha256(digest.encode()).hexdigest()

    return key(window), key(window - 1)


@dataclass
class Outcome:
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
    # When the first of the identical calls was judged (set on a replay).
    first_at: datetime | None = None
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
            # A replay says so, and when the answer it repeats was given: nothing new was judged.
            out["replayed"] = True
            if self.first_at is not None:
                out["replayed_from"] = self.first_at.isoformat()
        out.update(self.extra)
        return out


_KNOWN = {
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
    "replayed_from",
}


def outcome_from_dict(data: dict[str, Any]) -> Outcome:
    until = data.get("until") or data.get("retry_at")
    reasons = data.get("reasons") or ([data["reason"]] if data.get("reason") else [])
    return Outcome(
        status=data["status"],
        reason=data.get("reason"),
        reasons=list(reasons),
        message=data.get("message", ""),
        call_id=data.get("call_id"),
        outbox_id=data.get("outbox_id"),
        approval_id=data.get("approval_id"),
        until=datetime.fromisoformat(until) if until else None,
        policy_version=data.get("policy_version"),
        extra={k: v for k, v in data.items() if k not in _KNOWN},
    )
