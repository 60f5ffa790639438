"""The kill switch and shadow mode, stored in the ops database so every process sees a flip at once.

The effective switch is the `switches` row when there is one, else the policy file's
`kill_switch` / `shadow`. Nothing caches it: the guard reads it on every call (in the same
round trip as the decision's scope, see `mcp_tools.service`) and the dispatcher on every
claim, so no process acts more than one call on a stale value. A flip writes the row and an
`audit_log` row naming who, in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from mcp_tools.errors import ToolInputError
from mcp_tools.policy import Policy

SWITCHES = ("kill", "shadow")
# The Policy field each switch overrides.
POLICY_FIELD = {"kill": "kill_switch", "shadow": "shadow"}
MAX_WHO_CHARS = 200
MAX_REASON_CHARS = 500

READ = "SELECT name, enabled, set_by, reason, set_at FROM switches"
# As a scalar subquery, for callers that read the switches in a round trip they already make.
READ_AS_JSON = "(SELECT coalesce(jsonb_object_agg(name, enabled), '{}') FROM switches)"
UPSERT = """
INSERT INTO switches (name, enabled, set_by, reason, set_at)
VALUES (%(name)s, %(enabled)s, %(by)s, %(reason)s, %(now)s)
ON CONFLICT (name) DO UPDATE
SET enabled = EXCLUDED.enabled, set_by = EXCLUDED.set_by, reason = EXCLUDED.reason, set_at = EXCLUDED.set_at
"""
AUDIT = """
INSERT INTO audit_log (at, caller, tool, arguments, verdict, reasons, message, policy_version)
VALUES (%(now)s, %(by)s, %(tool)s, %(arguments)s, %(verdict)s, '[]', %(reason)s, %(policy_version)s)
"""


@dataclass(frozen=True)
class SwitchState:
    name: str
    enabled: bool
    source: str  # "ops" (a stored flip) or "policy" (the policy file's value)
    set_by: str | None = None
    reason: str | None = None
    set_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "switch": self.name,
            "on": self.enabled,
            "source": self.source,
            "set_by": self.set_by,
            "reason": self.reason,
            "set_at": self.set_at.isoformat() if self.set_at else None,
        }


def apply_switches(policy: Policy, stored: Mapping[str, bool]) -> Policy:
    """`policy` with the stored switches in force (a switch without a row keeps the file's value)."""
    update = {POLICY_FIELD[name]: bool(on) for name, on in stored.items() if name in POLICY_FIELD}
    changed = {k: v for k, v in update.items() if getattr(policy, k) != v}
    return policy.model_copy(update=changed) if changed else policy


async def effective_policy(
    source: AsyncConnectionPool[Any] | psycopg.AsyncConnection[Any], policy: Policy
) -> Policy:
    """The policy with the ops database's switches in force: what a dispatcher or guard acts on."""
    if isinstance(source, AsyncConnectionPool):
        async with source.connection() as conn:
            return await effective_policy(conn, policy)
    rows = await (await source.execute(READ)).fetchall()
    return apply_switches(policy, {_col(r, 0, "name"): bool(_col(r, 1, "enabled")) for r in rows})


def _col(row: Any, index: int, name: str) -> Any:
    return row[name] if isinstance(row, Mapping) else row[index]


async def status(conn: psycopg.AsyncConnection[Any], policy: Policy) -> list[SwitchState]:
    rows = {_col(r, 0, "name"): r for r in await (await conn.execute(READ)).fetchall()}
    out = []
    for name in SWITCHES:
        row = rows.get(name)
        if row is None:
            out.append(SwitchState(name, bool(getattr(policy, POLICY_FIELD[name])), "policy"))
        else:
            out.append(
                SwitchState(
                    name,
                    bool(_col(row, 1, "enabled")),
                    "ops",
                    _col(row, 2, "set_by"),
                    _col(row, 3, "reason"),
                    _col(row, 4, "set_at"),
                )
            )
    return out


def _checked(name: str, by: str, reason: str) -> tuple[str, str]:
    if name not in SWITCHES:
        raise ToolInputError(
            "invalid_argument", f"unknown switch {name!r}; known: {list(SWITCHES)}", field="name"
        )
    who = by.strip() if isinstance(by, str) else ""
    if not who or len(who) > MAX_WHO_CHARS:
        raise ToolInputError("invalid_argument", f"by must be 1..{MAX_WHO_CHARS} characters", field="by")
    why = reason.strip() if isinstance(reason, str) else ""
    if not why or len(why) > MAX_REASON_CHARS:
        raise ToolInputError(
            "invalid_argument", f"reason must be 1..{MAX_REASON_CHARS} characters", field="reason"
        )
    return who, why


async def set_switch(
    conn: psycopg.AsyncConnection[Any],
    policy: Policy,
    name: str,
    enabled: bool,
    *,
    by: str,
    reason: str,
    now: datetime,
) -> SwitchState:
    """Flip one switch and audit who did it, in one transaction; bad input changes nothing."""
    who, why = _checked(name, by, reason)
    params = {
        "name": name,
        "enabled": enabled,
        "by": who,
        "reason": why,
        "now": now,
        "tool": f"switch:{name}",
        "arguments": Jsonb({"switch": name, "on": enabled}),
        "verdict": "on" if enabled else "off",
        "policy_version": policy.version_id,
    }
    async with conn.transaction():
        await conn.execute(UPSERT, params)
        await conn.execute(AUDIT, params)
    return SwitchState(name, enabled, "ops", who, why, now)
