"""Provider receipts through the real app: Twilio status callbacks signed by the twilio SDK, and
Standard Webhooks receipts signed by the `standardwebhooks` package, attributed from real ops
rows (outbox, tool_calls) on the embedded PostgreSQL."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
import psycopg
import pytest
from psycopg.types.json import Jsonb
from standardwebhooks.webhooks import Webhook
from twilio.request_validator import RequestValidator

from ingest.receipts import UNATTRIBUTED_USER

TOKEN = "twilio-auth-token-0123456789abcdef"
TWILIO_URL = "http://mca.test/webhooks/twilio"
SECRET = "whsec_" + base64.b64encode(b"receipts signing key, 32 bytes!!").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"not the receipts key, 32 bytes!!").decode()
Events = Callable[[], list[dict[str, Any]]]


def seed_send(db_url: str, n: int, *, decision_id: str | None, user_id: str, **outbox: Any) -> int:
    """One tool call and the outbox row it owed, as the ledger and dispatcher leave them."""
    now = datetime(2026, 1, 5, tzinfo=UTC)
    with psycopg.connect(db_url) as conn:
        call = conn.execute(
            "INSERT INTO tool_calls (idem_key, decision_id, caller, trigger_name, tool, user_id, arguments,"
            " verdict, status, result, policy_version, created_at, updated_at) VALUES"
            " (%s, %s, 'agent', 't', 'send_sms', %s, '{}', 'allowed', 'allowed', '{}', 'v1', %s, %s)"
            " RETURNING call_id",
            (f"call-{n}", decision_id, user_id, now, now),
        ).fetchone()
        assert call is not None
        row = conn.execute(
            "INSERT INTO outbox (call_id, idem_key, kind, user_id, payload, status, next_attempt_at,"
            " provider, provider_ref, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, 'delivered', %s, %s, %s, %s, %s)"
            " RETURNING outbox_id",
            (
                call[0],
                f"out-{n}",
                outbox.get("kind", "sms"),
                user_id,
                Jsonb(outbox.get("payload", {})),
                now,
                outbox.get("provider", "twilio"),
                outbox.get("provider_ref"),
                now,
                now,
            ),
        ).fetchone()
        assert row is not None
        return int(row[0])


def call_of(db_url: str, outbox_id: int) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT call_id FROM outbox WHERE outbox_id = %s", (outbox_id,)).fetchone()
    assert row is not None
    return int(row[0])


def twilio_post(params: dict[str, str], *, token: str = TOKEN, url: str = TWILIO_URL) -> dict[str, Any]:
    """What Twilio sends: the form body and its signature over the URL and the sorted params."""
    signature = RequestValidator(token).compute_signature(url, params)
    return {
        "content": urlencode(params),
        "headers": {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature},
    }


def callback(sid: str, status: str, **extra: str) -> dict[str, str]:
    base = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status}
    return {**base, "AccountSid": "AC1", "To": "+15550001", "From": "+15550999", **extra}


async def test_twilio_statuses_become_outcomes_attributed_to_their_decision(
    make_client: Callable[..., Any], db_url: str, fetch_events: Events
) -> None:
    outbox_id = seed_send(db_url, 1, decision_id="d-1", user_id="u1", provider_ref="SM1")
    expected = {
        "delivered": "message_delivered",
        "undelivered": "message_failed",
        "failed": "message_failed",
        "read": "message_opened",
        "sent": "message_status",
    }
    async with make_client(twilio_auth_token=TOKEN) as client:
        for status in expected:
            extra = {"ErrorCode": "30003"} if status == "undelivered" else {}
            resp = await client.post("/webhooks/twilio", **twilio_post(callback("SM1", status, **extra)))
            assert resp.status_code == 202, resp.text
            assert resp.json() | {"event_ids": None} == {
                "accepted": 1,
                "duplicates": 0,
                "event_ids": None,
                "attributed": True,
                "attribution": "message_sid",
                "decision_id": "d-1",
                "outbox_id": outbox_id,
                "call_id": call_of(db_url, outbox_id),
            }
        # Twilio retries a callback it got no 2xx for: the same sid and status is one event.
        again = await client.post("/webhooks/twilio", **twilio_post(callback("SM1", "delivered")))
        assert again.json()["duplicates"] == 1
    rows = fetch_events()
    assert [(r["event_type"], r["properties"]["status"]) for r in rows] == [
        (t, s) for s, t in expected.items()
    ]
    for row in rows:
        assert (row["user_id"], row["source"], row["event_id"]) == (
            "u1",
            "twilio",
            f"twilio SM1 {row['properties']['status']}",
        )
        props = row["properties"]
        assert (props["decision_id"], props["outbox_id"], props["message_sid"], props["channel"]) == (
            "d-1",
            outbox_id,
            "SM1",
            "sms",
        )
        assert props["_twilio"]["To"] == "+15550001"
    assert rows[1]["properties"]["error_code"] == "30003"


async def test_twilio_sid_mca_never_sent_is_stored_unattributed(
    make_client: Callable[..., Any], db_url: str, fetch_events: Events
) -> None:
    seed_send(db_url, 1, decision_id=None, user_id="u2", provider_ref="SM-nodecision")
    async with make_client(twilio_auth_token=TOKEN) as client:
        unknown = await client.post("/webhooks/twilio", **twilio_post(callback("SM-unknown", "delivered")))
        no_decision = await client.post(
            "/webhooks/twilio", **twilio_post(callback("SM-nodecision", "failed"))
        )
    assert unknown.status_code == 202 and unknown.json()["attributed"] is False
    assert unknown.json()["attribution"] == "unknown message_sid"
    assert no_decision.json()["attribution"] == "no decision behind the message_sid"
    first, second = fetch_events()
    assert (first["user_id"], first["event_type"], first["properties"]["message_sid"]) == (
        UNATTRIBUTED_USER,
        "message_delivered",
        "SM-unknown",
    )
    assert "decision_id" not in first["properties"] and first["properties"]["attributed"] is False
    assert (second["user_id"], second["event_type"]) == ("u2", "message_failed")


async def test_twilio_bad_signature_is_401_and_stores_nothing(
    make_client: Callable[..., Any], count_events: Callable[..., int]
) -> None:
    params = callback("SM1", "delivered")
    good = twilio_post(params)
    tampered = {**good, "content": urlencode({**params, "MessageStatus": "failed"})}
    cases = {
        "wrong token": (twilio_post(params, token="another-token"), "does not match"),
        "tampered": (tampered, "does not match"),
        "other url": (twilio_post(params, url="https://elsewhere.example/webhooks/twilio"), "does not match"),
        "no header": (
            {**good, "headers": {"content-type": good["headers"]["content-type"]}},
            "header missing",
        ),
    }
    async with make_client(twilio_auth_token=TOKEN) as client:
        for name, (request, reason) in cases.items():
            resp = await client.post("/webhooks/twilio", **request)
            assert resp.status_code == 401, name
            assert reason in str(resp.json()["error"]), name
    async with make_client() as client:  # no MCA_TWILIO_AUTH_TOKEN: nothing can be verified
        resp = await client.post("/webhooks/twilio", **good)
        assert resp.status_code == 401 and "MCA_TWILIO_AUTH_TOKEN" in str(resp.json()["error"])
    assert count_events() == 0


async def test_twilio_public_url_and_bad_fields(
    make_client: Callable[..., Any], count_events: Callable[..., int]
) -> None:
    public = "https://loyalty.example.com/webhooks/twilio?src=prod"
    async with make_client(twilio_auth_token=TOKEN, twilio_webhook_url=public) as client:
        behind_proxy = await client.post(
            "/webhooks/twilio", **twilio_post(callback("SM1", "sent"), url=public)
        )
        assert behind_proxy.status_code == 202, behind_proxy.text
        as_received = await client.post("/webhooks/twilio", **twilio_post(callback("SM2", "sent")))
        assert as_received.status_code == 401
        no_sid = await client.post("/webhooks/twilio", **twilio_post({"MessageStatus": "sent"}, url=public))
        assert no_sid.status_code == 422
        assert [e["field"] for e in no_sid.json()["error"]["errors"]] == ["MessageSid"]
        as_json = await client.post("/webhooks/twilio", json={"MessageSid": "SM3"})
        assert as_json.status_code == 415
    assert count_events() == 1


def signed(
    body: dict[str, Any], msg_id: str, secret: str = SECRET, at: float | None = None
) -> dict[str, Any]:
    """A Standard Webhooks request, signed by the third-party package."""
    raw = orjson.dumps(body)
    stamp = datetime.fromtimestamp(time.time() if at is None else at, tz=UTC)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, stamp, raw.decode()),
        "content-type": "application/json",
    }
    return {"content": raw, "headers": headers}


async def test_signed_receipts_are_attributed_by_decision_or_coupon(
    make_client: Callable[..., Any], db_url: str, fetch_events: Events
) -> None:
    seed_send(db_url, 1, decision_id="d-1", user_id="u1", provider="webhook", provider_ref="ref-1")
    coupon_outbox = seed_send(
        db_url, 2, decision_id="d-2", user_id="u1", kind="coupon", payload={"coupon_code": "MCA-AAAA-BBBB"}
    )
    cases = [
        ({"type": "message_delivered", "user_id": "u1", "decision_id": "d-1"}, "decision_id", "d-1"),
        (
            {"type": "coupon_redeemed", "user_id": "u1", "coupon_code": "mca-aaaa-bbbb", "value": 20},
            "coupon_code",
            "d-2",
        ),
        ({"type": "link_clicked", "user_id": "u1", "decision_id": "d-404"}, "unknown decision_id", "d-404"),
        (
            {"type": "message_opened", "user_id": "u9", "decision_id": "d-1"},
            "the decision is another user's",
            "d-1",
        ),
        ({"type": "message_opened", "user_id": "u1"}, "nothing names a decision", None),
    ]
    async with make_client(receipt_webhook_secrets=[SECRET]) as client:
        for i, (body, how, _) in enumerate(cases):
            resp = await client.post("/webhooks/receipts", **signed(body, f"msg_{i}"))
            assert resp.status_code == 202, resp.text
            assert (resp.json()["attribution"], resp.json()["attributed"]) == (
                how,
                how in ("decision_id", "coupon_code"),
            )
        replay = await client.post("/webhooks/receipts", **signed(cases[0][0], "msg_0"))
        assert (replay.status_code, replay.json()["accepted"], replay.json()["duplicates"]) == (202, 0, 1)
    rows = fetch_events()
    assert [r["event_id"] for r in rows] == [f"receipts msg_{i}" for i in range(len(cases))]
    for row, (body, how, decision) in zip(rows, cases, strict=True):
        assert (row["event_type"], row["user_id"], row["source"]) == (
            body["type"],
            body["user_id"],
            "receipts",
        )
        assert (row["properties"].get("decision_id"), row["properties"]["attribution"]) == (decision, how)
    assert rows[1]["properties"]["coupon_code"] == "MCA-AAAA-BBBB"
    assert rows[1]["properties"]["outbox_id"] == coupon_outbox and float(rows[1]["value"]) == 20


async def test_signed_receipt_bad_signature_or_fields_store_nothing(
    make_client: Callable[..., Any], count_events: Callable[..., int]
) -> None:
    body = {"type": "message_delivered", "user_id": "u1"}
    good = signed(body, "msg_1")
    cases = {
        "wrong secret": (signed(body, "msg_1", OTHER_SECRET), 401, "does not match"),
        "tampered": ({**good, "content": orjson.dumps({**body, "user_id": "u2"})}, 401, "does not match"),
        "stale": (signed(body, "msg_1", at=time.time() - 600), 401, "too old"),
        "unsigned": ({**good, "headers": {"content-type": "application/json"}}, 401, "header missing"),
    }
    async with make_client(receipt_webhook_secrets=[SECRET]) as client:
        for name, (request, status, reason) in cases.items():
            resp = await client.post("/webhooks/receipts", **request)
            assert (resp.status_code, reason in str(resp.json()["error"])) == (status, True), name
        bad = await client.post(
            "/webhooks/receipts",
            **signed({"type": "message_sent", "decision_id": 7, "timestamp": "yesterday"}, "m2"),
        )
        assert bad.status_code == 422
        fields = [e["field"] for e in bad.json()["error"]["errors"]]
        assert fields == ["type", "user_id", "timestamp", "decision_id"]
    async with make_client() as client:  # no MCA_RECEIPT_WEBHOOK_SECRETS
        resp = await client.post("/webhooks/receipts", **good)
        assert resp.status_code == 401 and "MCA_RECEIPT_WEBHOOK_SECRETS" in str(resp.json()["error"])
    assert count_events() == 0


async def test_signed_unsubscribe_withdraws_consent(make_client: Callable[..., Any], db_url: str) -> None:
    identify = {"type": "identify", "userId": "u1", "traits": {"consent_sms": True, "consent_email": True}}
    body = {"type": "unsubscribed", "user_id": "u1", "channel": "sms", "timestamp": "2026-01-05T10:00:00Z"}
    async with make_client(receipt_webhook_secrets=[SECRET]) as client:
        assert (
            await client.post("/ingest", json=identify | {"timestamp": "2026-01-01T00:00:00Z"})
        ).status_code == 202
        resp = await client.post("/webhooks/receipts", **signed(body, "msg_u"))
        assert resp.json()["event_ids"] == ["receipts msg_u", "receipts msg_u:consent"]
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT consent_sms, consent_email FROM user_profile WHERE user_id = 'u1'"
        ).fetchone()
    assert row == (False, True)


@pytest.mark.parametrize(
    "status", ["queued", "scheduled", "partially_delivered", "a_status_twilio_adds_later"]
)
async def test_twilio_steps_are_kept_not_counted(
    make_client: Callable[..., Any], fetch_events: Events, status: str
) -> None:
    async with make_client(twilio_auth_token=TOKEN) as client:
        resp = await client.post("/webhooks/twilio", **twilio_post(callback("SM7", status)))
    assert resp.status_code == 202
    [row] = fetch_events()
    assert (row["event_type"], row["properties"]["status"]) == ("message_status", status)


async def test_a_receipt_names_exactly_one_action_and_an_unknown_one_is_kept_unattributed(
    make_client: Callable[..., Any], db_url: str, fetch_events: Events
) -> None:
    coupon = seed_send(
        db_url, 1, decision_id="d-7", user_id="u1", kind="coupon", payload={"coupon_code": "MCA-CCCC-DDDD"}
    )
    sms = seed_send(db_url, 2, decision_id="d-7", user_id="u1", provider_ref="SM7")
    cases = [
        # The decision sent a coupon and then an SMS: a receipt naming only it is the SMS's.
        ({"type": "message_opened", "user_id": "u1", "decision_id": "d-7"}, sms),
        # The coupon code names the coupon's own action, not the decision's latest.
        ({"type": "coupon_redeemed", "user_id": "u1", "coupon_code": "MCA-CCCC-DDDD"}, coupon),
        # A sender cannot pick the action: its call_id is dropped, and nothing matched.
        ({"type": "link_clicked", "user_id": "u2", "decision_id": "d-404", "call_id": 1}, None),
    ]
    async with make_client(receipt_webhook_secrets=[SECRET], twilio_auth_token=TOKEN) as client:
        for i, (body, outbox) in enumerate(cases):
            resp = await client.post("/webhooks/receipts", **signed(body, f"msg_{i}"))
            assert resp.status_code == 202, resp.text
            assert resp.json().get("call_id") == (None if outbox is None else call_of(db_url, outbox))
            assert resp.json()["attributed"] is (outbox is not None)
        twilio = await client.post("/webhooks/twilio", **twilio_post(callback("SM404", "delivered")))
        assert (twilio.status_code, twilio.json()["attributed"]) == (202, False)
    rows = fetch_events()
    assert len(rows) == 4  # every receipt stored, the unattributed ones too
    assert [r["properties"].get("call_id") for r in rows[:3]] == [
        call_of(db_url, sms),
        call_of(db_url, coupon),
        None,
    ]
    assert (rows[2]["properties"]["attribution"], rows[2]["properties"]["attributed"]) == (
        "unknown decision_id",
        False,
    )
    assert (rows[3]["user_id"], rows[3]["properties"]["attributed"]) == (UNATTRIBUTED_USER, False)
