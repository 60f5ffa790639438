"""API keys and Standard Webhooks signatures; signatures made by the third-party
`standardwebhooks` package must verify with our own verifier."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from ingest.auth import decode_secret, verify_webhook
from ingest.errors import Unauthorized

SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_" + base64.b64encode(b"another key of 24 bytes!").decode()
BODY = orjson.dumps({"type": "track", "event": "visit", "userId": "u1", "messageId": "m1"})


def test_published_test_vector_verifies() -> None:
    # The Standard Webhooks specification's example: secret, id, timestamp, body, signature.
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    body = b'{"test": 2432232314}'
    key = decode_secret(SPEC_SECRET)
    assert verify_webhook([key], headers, body, now=1614265330) == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    with pytest.raises(Unauthorized, match="does not match"):
        verify_webhook([key], headers, body.replace(b"2432", b"2433"), now=1614265330)


def signed(
    secret: str, body: bytes = BODY, *, msg_id: str = "msg_1", at: float | None = None
) -> dict[str, str]:
    """Headers from the third-party signer."""
    stamp = datetime.fromtimestamp(time.time() if at is None else at, tz=UTC)
    signature = Webhook(secret).sign(msg_id, stamp, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


async def test_webhook_signatures(make_client: Callable[..., Any], count_events: Callable[..., int]) -> None:
    async with make_client(webhook_secrets=[SPEC_SECRET]) as client:
        ok = await client.post("/ingest", content=BODY, headers=signed(SPEC_SECRET))
        assert ok.status_code == 202, ok.text
        cases = {
            "tampered": (BODY.replace(b"visit", b"viSit"), signed(SPEC_SECRET), "does not match"),
            "wrong secret": (BODY, signed(OTHER_SECRET), "does not match"),
            "stale": (BODY, signed(SPEC_SECRET, at=time.time() - 400), "too old"),
            "future": (BODY, signed(SPEC_SECRET, at=time.time() + 400), "too new"),
            "no signature": (BODY, {"content-type": "application/json"}, "missing credentials"),
        }
        for name, (body, headers, reason) in cases.items():
            resp = await client.post("/ingest", content=body, headers=headers)
            assert resp.status_code == 401, name
            assert reason in resp.json()["error"]["message"], (name, resp.json())
    assert count_events() == 1


async def test_rotated_keys(make_client: Callable[..., Any], count_events: Callable[..., int]) -> None:
    async with make_client(webhook_secrets=[OTHER_SECRET, SPEC_SECRET]) as client:
        # Sender still on the old key: any configured key verifies.
        assert (
            await client.post("/ingest", content=BODY, headers=signed(SPEC_SECRET, msg_id="a"))
        ).status_code == 202
        # Sender signing with both during its own rotation: one match is enough.
        headers = signed(OTHER_SECRET, msg_id="b")
        old = signed(SPEC_SECRET, msg_id="b")
        headers["webhook-signature"] = f"v1a,bogus {old['webhook-signature']} {headers['webhook-signature']}"
        assert (await client.post("/ingest", content=BODY, headers=headers)).status_code == 202
    # The body's messageId is the dedup key, ahead of webhook-id: the second was a duplicate.
    assert count_events() == 1


async def test_api_keys(make_client: Callable[..., Any]) -> None:
    keys = {"write-key": ["ingest"], "reader": ["read"]}
    async with make_client(api_keys=keys) as client:
        basic = base64.b64encode(b"write-key:").decode()
        for auth in ("Bearer write-key", f"Basic {basic}"):
            resp = await client.post(
                "/ingest", content=BODY, headers={"authorization": auth, "content-type": "application/json"}
            )
            assert resp.status_code == 202, auth
        resp = await client.post(
            "/ingest",
            content=BODY,
            headers={"authorization": "Bearer reader", "content-type": "application/json"},
        )
        assert resp.status_code == 403
        resp = await client.post(
            "/ingest",
            content=BODY,
            headers={"authorization": "Bearer nope", "content-type": "application/json"},
        )
        assert resp.status_code == 401 and resp.json()["error"]["message"] == "unknown API key"
        resp = await client.post("/ingest", content=BODY, headers={"content-type": "application/json"})
        assert resp.status_code == 401 and resp.headers["www-authenticate"].startswith("Bearer")


async def test_auth_required_without_keys_refuses_everyone(make_client: Callable[..., Any]) -> None:
    async with make_client(ingest_auth_required=True) as client:
        resp = await client.post("/ingest", content=BODY, headers={"content-type": "application/json"})
        assert resp.status_code == 401


def test_bad_secret_fails_at_start() -> None:
    from mca.errors import ConfigError

    with pytest.raises(ConfigError):
        decode_secret("whsec_not base64!")


async def test_open_mode_accepts_segments_write_key(
    client: Any, fetch_events: Callable[[], list[dict[str, Any]]]
) -> None:
    # Segment always sends its write key (Basic, key as user name); with no keys configured
    # here there is nothing to check it against, and refusing it would refuse Segment.
    headers = {"authorization": "Basic " + base64.b64encode(b"seg_write_key:").decode()}
    resp = await client.post("/ingest", content=BODY, headers={**headers, "content-type": "application/json"})
    assert resp.status_code == 202, resp.text
    assert [e["event_id"] for e in fetch_events()] == ["m1"]


async def test_any_configured_credential_closes_ingest(make_client: Callable[..., Any]) -> None:
    # MCP tokens are credentials too: once one is configured, events need one of their own.
    async with make_client(mcp_tokens={"tok": "assistant"}) as client:
        resp = await client.post("/ingest", content=BODY, headers={"content-type": "application/json"})
        assert resp.status_code == 401 and "missing credentials" in resp.json()["error"]["message"]
        token = await client.post(
            "/ingest",
            content=BODY,
            headers={"content-type": "application/json", "authorization": "Bearer tok"},
        )
        assert token.status_code == 403 and "ingest permission" in token.json()["error"]["message"]
