"""The action layer's small world (customers, assets), calling a tool as the agent does, and a
dispatcher over the tool service with the actions it delivers."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import psycopg
from mcp import Client
from mcp_types import RequestParamsMeta

from agent.queue import NewJob
from mca.db import Stores
from mca.settings import Settings
from mca.testing import FrozenClock, identify, one, scalar
from mcp_tools.commands import make_dispatcher
from mcp_tools.dispatch import Dispatcher
from mcp_tools.guard import CallContext
from mcp_tools.runtime import Runtime
from tests.mcp_tools.fake_api import FakeAPI

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # a Monday

USERS: dict[str, dict[str, Any]] = {
    "u_ok": {
        "first_name": "Ana",
        "phone": "+15550000001",
        "email": "ana@example.com",
        "timezone": "UTC",
        "consent_sms": True,
        "consent_email": True,
        "consent_push": True,
    },
    "u_ny": {
        "first_name": "Ben",
        "phone": "+15550000002",
        "email": "ben@example.com",
        "timezone": "America/New_York",
        "consent_sms": True,
        "consent_email": True,
    },
    "u_tokyo": {
        "first_name": "Chi",
        "phone": "+815550000003",
        "email": "chi@example.com",
        "timezone": "Asia/Tokyo",
        "consent_sms": True,
        "consent_email": True,
    },
    "u_optout": {
        "phone": "+15550000004",
        "email": "d@example.com",
        "consent_sms": False,
        "consent_email": False,
    },
    "u_dnc": {
        "phone": "+15550000005",
        "email": "e@example.com",
        "consent_sms": True,
        "consent_email": True,
        "do_not_contact": True,
    },
    "u_noconsent": {"phone": "+15550000006", "email": "f@example.com"},
    "u_nophone": {"email": "g@example.com", "consent_sms": True, "consent_email": True},
}

ASSETS = [
    ("A10", "coupon", "10 off camping gear", 10, True, None),
    ("A20", "coupon", "20 off boots", 20, True, None),
    ("A30", "coupon", "30 off tents", 30, True, None),
    ("A60", "coupon", "60 off anything", 60, True, None),
    ("A_OFF", "coupon", "retired coupon", 5, False, None),
    ("A_OLD", "coupon", "expired coupon", 5, True, datetime(2026, 1, 1, tzinfo=UTC)),
]


def seed_world(url: str) -> None:
    identify(url, USERS)
    with psycopg.connect(url, autocommit=True) as conn:
        for asset_id, kind, title, value, active, until in ASSETS:
            conn.execute(
                "INSERT INTO assets (asset_id, kind, title, description, value, currency, category, tags, "
                "active, "
                "valid_until, updated_at) VALUES (%s, %s, %s, %s, %s, 'USD', 'outdoor', %s, %s, %s, now())",
                (asset_id, kind, title, title, value, ["test"], active, until),
            )


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = (
            merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def meta(**items: str) -> RequestParamsMeta:
    """Request meta with mca's keys: meta(decision_id="d1", trigger="default")."""
    return cast(RequestParamsMeta, {f"mca.{k}": v for k, v in items.items()})


async def call(
    client: Client,
    tool: str,
    args: dict[str, Any],
    *,
    decision: str | None = "d1",
    trigger: str | None = "default",
) -> tuple[bool, dict[str, Any]]:
    """Call a tool as the agent; returns (is_error, structured content)."""
    items = {"decision_id": decision, "trigger": trigger}
    result = await client.call_tool(
        tool, args, meta=meta(**{k: v for k, v in items.items() if v is not None})
    )
    data = result.structured_content
    if data is None:
        data = json.loads(result.content[0].text)  # type: ignore[union-attr]
    return result.is_error, data


# Actions the dispatcher delivers, as the agent asks for them.
AGENT = CallContext(caller="agent", trigger="default", decision_id="dispatch-test")
SMS = {"user_id": "u_ok", "text": "Your order shipped.", "reason": "order"}
COUPON = {"user_id": "u_ok", "asset_id": "A10", "reason": "thanks"}
CRM = {"user_id": "u_ok", "fields": {"next_best_action": "call"}, "reason": "follow up"}
POINTS = {"user_id": "u_ok", "points": 100, "reason": "birthday"}


@asynccontextmanager
async def dispatcher_for(
    settings: Settings, stores: Stores, clock: FrozenClock, api: FakeAPI | None = None
) -> AsyncIterator[tuple[Any, Dispatcher]]:
    """The tool service and the dispatcher the dispatch command builds over it (`make_dispatcher`),
    delivering through `api` when given."""
    transport = api.transport if api is not None else None
    async with (
        Runtime(settings, stores, clock).acquire() as deps,
        httpx.AsyncClient(timeout=5, transport=transport) as http,
    ):
        yield deps.service, make_dispatcher(settings, deps.service, http)


def outbox_row(url: str) -> dict[str, Any]:
    """The test's one outbox row."""
    return one(url, "SELECT * FROM outbox")


def global_spent(url: str) -> float:
    """Budget spent across the global scopes (day, month) so far."""
    return float(
        scalar(url, "SELECT coalesce(sum(spent), 0) FROM budget_counters WHERE scope LIKE 'global:%%'")
    )


def decision_job(
    trigger: str, tools: tuple[str, ...] = ("search_assets", "get_user_context", "send_coupon")
) -> NewJob:
    """A job for u_ok under `trigger`, giving it `tools`: a decision the guard can look up."""
    return NewJob(
        dedup_key=f"test:{uuid.uuid4().hex}", trigger_name=trigger, user_id="u_ok", goal="post_purchase",
        tools=tools, event={"type": "purchase", "user_id": "u_ok"}, max_attempts=1,
        deadline_in=timedelta(minutes=2),
    )  # fmt: skip
