"""From tool arguments to a resolved `Action`: the address, the value and the text come from the
stores and the policy, never from the caller (invariant 4). Bad arguments raise
`ToolInputError` before anything is written.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from mca.limits import MAX_ID_CHARS
from mcp_tools.errors import ToolInputError
from mcp_tools.policy import Policy
from mcp_tools.sms import sms_length
from state.context import load_contact

ASSET_SQL = (
    "SELECT asset_id, kind, title, value, currency, category, active, valid_from, valid_until "
    "FROM assets WHERE asset_id = %s"
)
MAX_REASON_CHARS = 500


def _text(name: str, value: Any, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ToolInputError("invalid_argument", f"{name} must be a non-empty string", field=name)
    if len(value) > limit:
        raise ToolInputError(
            "text_too_long", f"{name} is {len(value)} characters, at most {limit}", field=name
        )
    return value.strip()


async def load_user(state: psycopg.AsyncConnection[Any], user_id: Any) -> dict[str, Any]:
    uid = _text("user_id", user_id, MAX_ID_CHARS)
    contact = await load_contact(state, uid)
    if contact is None:
        raise ToolInputError("unknown_user", f"no customer with user_id {uid!r}", field="user_id")
    return contact


async def load_asset(state: psycopg.AsyncConnection[Any], asset_id: Any, now: datetime) -> dict[str, Any]:
    aid = _text("asset_id", asset_id, MAX_ID_CHARS)
    row = await (await state.execute(ASSET_SQL, (aid,))).fetchone()
    if row is None:
        raise ToolInputError("unknown_asset", f"no asset with asset_id {aid!r}", field="asset_id")
    asset = dict(row)
    if not asset["active"]:
        raise ToolInputError("asset_inactive", f"asset {aid!r} is not active", field="asset_id")
    if asset["valid_until"] is not None and asset["valid_until"] <= now:
        raise ToolInputError(
            "asset_expired", f"asset {aid!r} expired at {asset['valid_until']}", field="asset_id"
        )
    if asset["valid_from"] is not None and asset["valid_from"] > now:
        raise ToolInputError(
            "asset_not_yet_valid", f"asset {aid!r} starts at {asset['valid_from']}", field="asset_id"
        )
    if asset["value"] is None:
        raise ToolInputError(
            "asset_has_no_value", f"asset {aid!r} has no value to send as a coupon", field="asset_id"
        )
    return asset


def sms_body(policy: Policy, text: str) -> str:
    """The text as sent: the opt-out footer appended when the policy says so and it is missing."""
    footer = policy.sms.opt_out_text
    if policy.sms.append_opt_out and footer and footer.lower() not in text.lower():
        return f"{text} {footer}"
    return text


def crm_fields(policy: Policy, fields: Any) -> dict[str, Any]:
    if not isinstance(fields, dict) or not fields:
        raise ToolInputError("invalid_argument", "fields must be a non-empty object", field="fields")
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if not isinstance(name, str) or not name:
            raise ToolInputError("invalid_argument", "field names must be non-empty strings", field="fields")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ToolInputError(
                "invalid_argument", f"field {name!r} must be a scalar", field=f"fields.{name}"
            )
        if isinstance(value, str) and len(value) > policy.crm.max_value_chars:
            raise ToolInputError(
                "text_too_long",
                f"field {name!r} is longer than {policy.crm.max_value_chars}",
                field=f"fields.{name}",
            )
        out[name] = value
    return out


def points_amount(points: Any) -> int:
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise ToolInputError("invalid_argument", "points must be a positive integer", field="points")
    return points


def sms_cost(policy: Policy, body: str) -> Decimal:
    return policy.sms.cost_per_segment * sms_length(body).segments
