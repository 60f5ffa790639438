"""From tool arguments to a resolved `Action`: the address, the value and the text come from the
stores and the policy, never from the caller (invariant 4). Bad arguments raise
`ToolInputError` before anything is written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from mca.db import Engine, engine_of_connection
from mca.limits import MAX_ID_CHARS
from mcp_tools import sms_content
from mcp_tools.errors import ToolInputError
from mcp_tools.guard import Action
from mcp_tools.policy import Policy
from mcp_tools.sms import sms_length
from state.context import CONTACT_SQL, load_contact

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


ASSETS_SQL = (
    "SELECT asset_id, kind, title, value, currency, category, active, valid_from, valid_until "
    "FROM assets WHERE asset_id = ANY(%s)"
)


def _asset_ids(asset_ids: Any) -> list[str]:
    """The distinct ids named, as `load_asset` reads them (stripped); anything else left out."""
    return sorted({a.strip() for a in asset_ids if isinstance(a, str) and a.strip()})


async def load_assets(state: psycopg.AsyncConnection[Any], asset_ids: Any) -> dict[str, dict[str, Any]]:
    """Several assets in one read, by id (those that exist); `load_asset` still judges each."""
    ids = _asset_ids(asset_ids)
    if not ids:
        return {}
    rows = await (await state.execute(ASSETS_SQL, (ids,))).fetchall()
    return {str(r["asset_id"]): dict(r) for r in rows}


async def load_asset(
    state: psycopg.AsyncConnection[Any],
    asset_id: Any,
    now: datetime,
    preloaded: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The asset, judged valid now; from `preloaded` (`load_assets`) when given, else one read."""
    aid = _text("asset_id", asset_id, MAX_ID_CHARS)
    if preloaded is not None:
        row: Any = preloaded.get(aid)
    else:
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


@dataclass(frozen=True)
class Request:
    """What every builder starts from: the call, the customer it names, and the clock reading."""

    state: psycopg.AsyncConnection[Any]
    policy: Policy
    tool: str
    args: dict[str, Any]
    contact: dict[str, Any]
    reason: str
    now: datetime
    assets: dict[str, dict[str, Any]] | None = None  # read ahead for several calls (the dry run)

    @property
    def user_id(self) -> str:
        return str(self.contact["user_id"])

    def common(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "user_id": self.user_id,
            "arguments": self.args,
            "timezone": self.contact.get("timezone"),
        }


Builder = Callable[[Request], Awaitable[Action]]


async def _coupon(r: Request) -> Action:
    asset = await load_asset(r.state, r.args.get("asset_id"), r.now, r.assets)
    value = Decimal(asset["value"])
    channel = r.policy.coupons.channel
    payload = {
        "user_id": r.user_id,
        "channel": channel,
        "email": r.contact.get("email"),
        "phone": r.contact.get("phone"),
        "first_name": r.contact.get("first_name"),
        "asset_id": asset["asset_id"],
        "title": asset["title"],
        "value": str(value),
        "currency": asset["currency"],
        "reason": r.reason,
    }
    return Action(
        kind="coupon",
        channel=channel,
        cost=value,
        payload=payload,
        asset_id=asset["asset_id"],
        approval_amount=value,
        approval_threshold=r.policy.coupons.approval_above,
        **r.common(),
    )


async def _sms(r: Request) -> Action:
    body = sms_body(r.policy, _text("text", r.args.get("text"), r.policy.sms.max_chars))
    known = await sms_content.catalogue_refs(
        r.state, sms_content.link_hosts(body), sms_content.phone_numbers(body)
    )
    payload = {"user_id": r.user_id, "to": r.contact.get("phone"), "body": body, "reason": r.reason}
    cost = sms_cost(r.policy, body)
    return Action(kind="sms", channel="sms", cost=cost, payload=payload, known_refs=known, **r.common())


async def _crm(r: Request) -> Action:
    payload = {
        "user_id": r.user_id,
        "email": r.contact.get("email"),
        "fields": crm_fields(r.policy, r.args.get("fields")),
        "reason": r.reason,
    }
    return Action(kind="crm", channel=None, cost=Decimal(0), payload=payload, **r.common())


async def _points(r: Request) -> Action:
    points = points_amount(r.args.get("points"))
    threshold = r.policy.points.approval_above
    return Action(
        kind="points",
        channel=None,
        cost=r.policy.points.value_per_point * points,
        payload={"user_id": r.user_id, "points": points, "reason": r.reason},
        approval_amount=Decimal(points),
        approval_threshold=Decimal(threshold) if threshold is not None else None,
        **r.common(),
    )


# One builder per side-effecting tool: adding a tool adds one entry here.
BUILDERS: dict[str, Builder] = {
    "send_coupon": _coupon,
    "send_sms": _sms,
    "update_crm": _crm,
    "award_points": _points,
}


async def build(
    state: psycopg.AsyncConnection[Any], policy: Policy, tool: str, args: dict[str, Any], now: datetime
) -> tuple[Action, dict[str, Any]]:
    """Resolve one side-effecting call into its `Action` (and the customer's contact row)."""
    builder = BUILDERS.get(tool)
    named = [args.get("asset_id")] if tool == "send_coupon" else []
    contact, assets = await read_customer(state, args.get("user_id"), named)
    reason = _text("reason", args.get("reason"), MAX_REASON_CHARS)
    if builder is None:
        raise ToolInputError("unknown_tool", f"{tool!r} is not a side-effecting tool")
    request = Request(state, policy, tool, args, contact, reason, now, assets)
    return await builder(request), contact


async def read_customer(
    state: psycopg.AsyncConnection[Any], user_id: Any, asset_ids: Sequence[Any] = ()
) -> tuple[dict[str, Any], dict[str, dict[str, Any]] | None]:
    """The customer, and the assets named with it (None when none is), in one round trip on
    PostgreSQL (pipelined; RisingWave reads one after the other). Each asset is judged later by
    `load_asset`, exactly as when read alone; an unknown customer raises before anything else."""
    uid = _text("user_id", user_id, MAX_ID_CHARS)
    ids = _asset_ids(asset_ids)
    if not ids:
        return await load_user(state, uid), None
    if await engine_of_connection(state) is not Engine.POSTGRES:
        return await load_user(state, uid), await load_assets(state, ids)
    async with state.pipeline():
        found = await state.execute(CONTACT_SQL, (uid,), prepare=True)
        rows = await state.execute(ASSETS_SQL, (ids,))
    contact = await found.fetchone()
    if contact is None:
        raise ToolInputError("unknown_user", f"no customer with user_id {uid!r}", field="user_id")
    return dict(contact), {str(r["asset_id"]): dict(r) for r in await rows.fetchall()}
