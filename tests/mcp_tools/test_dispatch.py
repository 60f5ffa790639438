"""The dispatcher and every provider, through real httpx against transports shaped like the APIs."""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import parse_qs

import psycopg
import pytest
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook

from mca.db import Stores
from mca.settings import Settings
from mca.testing import FrozenClock, count
from mcp_tools.guard import CallContext
from tests.mcp_tools.fake_api import FakeAPI
from tests.mcp_tools.helpers import (
    AGENT,
    COUPON,
    CRM,
    POINTS,
    SMS,
    dispatcher_for,
    global_spent,
    outbox_row,
)

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def api() -> FakeAPI:
    return FakeAPI()


def _settings(base: Settings, api: FakeAPI, **extra: Any) -> Settings:
    return base.model_copy(
        update={
            "twilio_account_sid": "AC123",
            "twilio_auth_token": SecretStr("tok"),
            "twilio_from": "+15550009999",
            "twilio_base_url": api.url,
            "braze_api_key": SecretStr("braze-key"),
            "braze_base_url": api.url,
            "salesforce_token": SecretStr("sf-token"),
            "salesforce_instance_url": api.url,
            "dispatch_webhook_url": f"{api.url}/hooks/mca",
            "dispatch_webhook_secret": SecretStr(SECRET),
            "dispatch_retry_wait_s": 0.001,
            "dispatch_backoff_s": 0.0,
            "dispatch_max_attempts": 2,
            **extra,
        }
    )


async def test_log_provider_is_the_default(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, world: str
) -> None:
    async with dispatcher_for(tool_settings, tool_stores, clock) as (service, dispatcher):
        outcome = await service.act("send_coupon", COUPON, AGENT)
        assert await dispatcher.run_once() == {"delivered": 1}
        assert await dispatcher.run_once() == {}
    row = outbox_row(world)
    assert (
        row["status"] == "delivered"
        and row["provider"] == "log"
        and row["provider_ref"] == f"log-{outcome.outbox_id}"
    )


async def test_webhook_is_signed_with_standard_webhooks(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, api: FakeAPI, world: str
) -> None:
    api.reply("POST", "/hooks/mca", (204, None))
    settings = _settings(tool_settings, api, dispatch_provider="webhook")
    async with dispatcher_for(settings, tool_stores, clock, api) as (service, dispatcher):
        await service.act("send_sms", SMS, AGENT)
        assert await dispatcher.run_once() == {"delivered": 1}
    sent = api.requests[0]
    payload = Webhook(SECRET).verify(sent.body, sent.headers)
    assert payload["type"] == "mca.sms" and "Reply STOP" in payload["data"]["body"]
    assert sent.headers["webhook-id"] == outbox_row(world)["idem_key"]


async def test_twilio_sends_form_with_basic_auth(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, api: FakeAPI, world: str
) -> None:
    api.reply("POST", "/Messages.json", (201, {"sid": "SM123", "status": "queued"}))
    settings = _settings(tool_settings, api, dispatch_routes={"sms": "twilio"})
    async with dispatcher_for(settings, tool_stores, clock, api) as (service, dispatcher):
        await service.act("send_sms", SMS, AGENT)
        assert await dispatcher.run_once() == {"delivered": 1}
    sent = api.requests[0]
    assert sent.path == "/2010-04-01/Accounts/AC123/Messages.json"
    form = parse_qs(sent.body.decode())
    assert form["To"] == ["+15550000001"] and form["From"] == ["+15550009999"]
    assert sent.headers["authorization"].startswith("Basic ")
    assert outbox_row(world)["provider_ref"] == "SM123"


@pytest.mark.parametrize("code", [21610, 21211])
async def test_twilio_unsubscribed_or_invalid_suppresses_and_releases_budget(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, api: FakeAPI, world: str, code: int
) -> None:
    api.reply("POST", "/Messages.json", (400, {"code": code, "message": "refused", "status": 400}))
    settings = _settings(tool_settings, api, dispatch_routes={"sms": "twilio"})
    async with dispatcher_for(settings, tool_stores, clock, api) as (service, dispatcher):
        await service.act("send_sms", SMS, AGENT)
        spent_before = global_spent(world)
        assert await dispatcher.run_once() == {"suppressed": 1}
        assert len(api.requests) == 1  # not retried
        again = await service.act(
            "send_sms", {**SMS, "text": "Another one."}, CallContext("agent", "default", "next-decision")
        )
    assert spent_before > 0 and global_spent(world) == 0
    assert count(world, "suppressions", "user_id = 'u_ok' AND channel = 'sms'") == 1
    assert again.reason == "suppressed"


async def test_twilio_429_then_success_is_retried(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, api: FakeAPI, world: str
) -> None:
    api.reply(
        "POST",
        "/Messages.json",
        (429, {"code": 20429, "message": "Too Many Requests"}),
        (201, {"sid": "SM9"}),
    )
    settings = _settings(tool_settings, api, dispatch_routes={"sms": "twilio"})
    async with dispatcher_for(settings, tool_stores, clock, api) as (service, dispatcher):
        await service.act("send_sms", SMS, AGENT)
        assert await dispatcher.run_once() == {"delivered": 1}
    assert len(api.requests) == 2 and outbox_row(world)["attempts"] == 1


async def test_5xx_backs_off_then_dead_letters(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, api: FakeAPI, world: str
) -> None:
    api.reply("POST", "/Messages.json", (503, {"message": "unavailable"}))
    settings = _settings(tool_settings, api, dispatch_routes={"sms": "twilio"})
    async with dispatcher_for(settings, tool_stores, clock, api) as (service, dispatcher):
        await service.act("send_sms", SMS, AGENT)
        assert await dispatcher.run_once() == {"pending": 1}
        assert await dispatcher.run_once() == {"dead": 1}  # max_attempts = 2
    row = outbox_row(world)
    assert row["status"] == "dead" and "503" in row["last_error"] and row["attempts"] == 2
    assert len(api.requests) == 2 * settings.dispatch_quick_retries
    assert count(world, "budget_ledger", "kind = 'release'") >= 1


async def test_braze_coupon_points_and_crm(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, api: FakeAPI, world: str
) -> None:
    api.reply("POST", "/messages/send", (201, {"dispatch_id": "disp-1", "message": "success"}))
    api.reply("POST", "/users/track", (201, {"attributes_processed": 1, "message": "success"}))
    settings = _settings(tool_settings, api, dispatch_provider="braze")
    async with dispatcher_for(settings, tool_stores, clock, api) as (service, dispatcher):
        await service.act("send_coupon", COUPON, AGENT)
        await service.act("award_points", POINTS, AGENT)
        await service.act("update_crm", CRM, AGENT)
        assert await dispatcher.run_once() == {"delivered": 3}
    bodies = {r.path: json.loads(r.body) for r in api.requests if r.path == "/messages/send"}
    assert bodies["/messages/send"]["external_user_ids"] == ["u_ok"]
    tracks = [json.loads(r.body)["attributes"][0] for r in api.requests if r.path == "/users/track"]
    assert {"external_id": "u_ok", "loyalty_points": {"inc": 100}} in tracks
    assert all(r.headers["authorization"] == "Bearer braze-key" for r in api.requests)


async def test_braze_400_is_dead_at_once(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, api: FakeAPI, world: str
) -> None:
    api.reply("POST", "/users/track", (400, {"message": "Invalid 'attributes' field"}))
    settings = _settings(tool_settings, api, dispatch_provider="braze")
    async with dispatcher_for(settings, tool_stores, clock, api) as (service, dispatcher):
        await service.act("award_points", POINTS, AGENT)
        assert await dispatcher.run_once() == {"dead": 1}
    assert len(api.requests) == 1


async def test_salesforce_patch_and_errors(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, api: FakeAPI, world: str
) -> None:
    path = "/services/data/v60.0/sobjects/Contact/External_Id__c/u_ok"
    api.reply("PATCH", path, (503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "busy"}]), (204, None))
    settings = _settings(tool_settings, api, dispatch_routes={"crm": "salesforce"})
    async with dispatcher_for(settings, tool_stores, clock, api) as (service, dispatcher):
        await service.act("update_crm", CRM, AGENT)
        assert await dispatcher.run_once() == {"delivered": 1}
    assert [r.method for r in api.requests] == ["PATCH", "PATCH"] and api.requests[0].path == path
    assert json.loads(api.requests[1].body) == {"next_best_action": "call"}


async def test_salesforce_401_is_permanent(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, api: FakeAPI, world: str
) -> None:
    api.reply("PATCH", "/u_ok", (401, [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired"}]))
    settings = _settings(tool_settings, api, dispatch_routes={"crm": "salesforce"})
    async with dispatcher_for(settings, tool_stores, clock, api) as (service, dispatcher):
        await service.act("update_crm", CRM, AGENT)
        assert await dispatcher.run_once() == {"dead": 1}


async def test_kill_switch_and_shadow_dispatch_nothing(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, set_policy: Any, world: str
) -> None:
    async with dispatcher_for(tool_settings, tool_stores, clock) as (service, dispatcher):
        await service.act("send_coupon", COUPON, AGENT)
        set_policy(kill_switch=True)
        assert await dispatcher.run_once() == {}
        set_policy(shadow=True)
        assert await dispatcher.run_once() == {}
        shadow = await service.act("send_coupon", COUPON, CallContext("agent", "default", "shadow-1"))
        assert shadow.status == "shadow" and shadow.outbox_id
        set_policy()
        assert await dispatcher.run_once() == {"delivered": 1}  # only the real one
    assert count(world, "outbox", "status = 'shadow'") == 1


async def test_expired_lease_is_reclaimed(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, world: str
) -> None:
    async with dispatcher_for(tool_settings, tool_stores, clock) as (service, dispatcher):
        await service.act("send_coupon", COUPON, AGENT)
        assert len(await dispatcher.claim(10)) == 1  # this worker "dies" holding the lease
        assert await dispatcher.claim(10) == []
        clock.advance(seconds=dispatcher.lease_s + 1)
        assert await dispatcher.run_once() == {"delivered": 1}
    assert outbox_row(world)["attempts"] == 2


async def test_dispatch_loop_releases_due_deferrals_and_delivers(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, world: str
) -> None:
    import asyncio
    from datetime import UTC, datetime

    from mcp_tools.dispatch import run_forever

    clock.set(datetime(2026, 11, 23, 23, 0, tzinfo=UTC))  # quiet hours for SMS in UTC
    async with dispatcher_for(tool_settings, tool_stores, clock) as (service, dispatcher):
        deferred = await service.act("send_sms", SMS, AGENT)
        assert deferred.status == "deferred"
        stop, delivered = asyncio.Event(), asyncio.Event()
        run_once = dispatcher.run_once

        async def observed_run_once(limit: int = 20) -> dict[str, int]:
            counts = await run_once(limit)
            if counts.get("delivered"):
                delivered.set()
            return counts

        dispatcher.run_once = observed_run_once  # type: ignore[method-assign]
        loop = asyncio.create_task(run_forever(dispatcher, service.release_due, stop, poll_s=0.02))
        try:
            clock.set(datetime(2026, 11, 24, 8, 0, 1, tzinfo=UTC))
            await asyncio.wait_for(delivered.wait(), timeout=20)
            assert count(world, "outbox", "status = 'delivered'") == 1
        finally:
            stop.set()
            await asyncio.wait_for(loop, timeout=10)
    assert count(world, "pending_actions", "status = 'done'") == 1


async def test_log_provider_masks_addresses_and_text(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, world: str, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="mca.deliveries")
    async with dispatcher_for(tool_settings, tool_stores, clock) as (service, dispatcher):
        await service.act("send_sms", SMS, AGENT)
        await service.act("send_coupon", COUPON, AGENT)
        assert await dispatcher.run_once() == {"delivered": 2}
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == "mca.deliveries")
    assert "+15550000001" not in text and "ana@example.com" not in text
    assert "Your order shipped" not in text and "Ana" not in text
    assert "*******0001" in text and "***@example.com" in text
    body = sms_body_of(world)
    assert f"<{len(body)} chars sha256:" in text


def sms_body_of(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT payload->>'body' FROM outbox WHERE kind = 'sms'").fetchone()
        assert row is not None
        return str(row[0])


async def test_log_provider_logs_a_redelivered_key_once(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, world: str, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="mca.deliveries")
    async with dispatcher_for(tool_settings, tool_stores, clock) as (service, dispatcher):
        await service.act("send_coupon", COUPON, AGENT)
        [claimed] = await dispatcher.claim(10)
        provider = dispatcher.provider_for("coupon")
        await provider.deliver(claimed.item)  # delivered, then the dispatcher "dies" before recording it
        clock.advance(seconds=dispatcher.lease_s + 1)
        assert await dispatcher.run_once() == {"delivered": 1}
    lines = [r for r in caplog.records if r.name == "mca.deliveries" and r.levelno == logging.INFO]
    assert len(lines) == 1 and count(world, "log_deliveries") == 1


async def test_twilio_gets_no_made_up_idempotency_header(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, api: FakeAPI, world: str
) -> None:
    api.reply("POST", "/Messages.json", (201, {"sid": "SM1"}))
    settings = _settings(tool_settings, api, dispatch_routes={"sms": "twilio"})
    async with dispatcher_for(settings, tool_stores, clock, api) as (service, dispatcher):
        await service.act("send_sms", SMS, AGENT)
        assert await dispatcher.run_once() == {"delivered": 1}
    assert not any("idempotency" in h for h in api.requests[0].headers)


async def test_braze_transactional_coupon_carries_external_send_id(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, api: FakeAPI, world: str
) -> None:
    api.reply(
        "POST", "/transactional/v1/campaigns/camp-1/send", (201, {"dispatch_id": "d-9", "status": "ok"})
    )
    settings = _settings(
        tool_settings, api, dispatch_provider="braze", braze_transactional_campaign_id="camp-1"
    )
    async with dispatcher_for(settings, tool_stores, clock, api) as (service, dispatcher):
        await service.act("send_coupon", COUPON, AGENT)
        assert await dispatcher.run_once() == {"delivered": 1}
    body = json.loads(api.requests[0].body)
    assert body["external_send_id"] == outbox_row(world)["idem_key"]
    assert re.fullmatch(r"[a-zA-Z0-9\-_+/=]+", body["external_send_id"])
    assert body["recipient"] == {"external_user_id": "u_ok"} and outbox_row(world)["provider_ref"] == "d-9"
