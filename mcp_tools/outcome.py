"""A tool call's idempotency key. What the call returns (`Outcome`) is part of the contract."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from mcp_tools.contract import STATUS_OF, Outcome, outcome_from_dict

__all__ = ["STATUS_OF", "Outcome", "call_keys", "canonical", "idem_key", "outcome_from_dict"]


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
