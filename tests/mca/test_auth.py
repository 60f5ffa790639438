"""One authenticator for every route: each route under each credential state, over real HTTP.

The whole app (ingest, decisions, MCP) is served by uvicorn; every request a route refuses
is refused the same way (status, shape, challenge), and a route that returns customer data
is never readable without a credential once any credential is configured.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from mca.app import create_app
from mca.auth import LOOPBACK, Authenticator, bind_host
from mca.db import Stores
from mca.errors import ConfigError
from mca.settings import Settings
from mca.testing.http import serve_in_thread

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KEYS = {"k-ingest": ["ingest"], "k-read": ["read"], "k-admin": ["admin"], "k-star": ["*"]}
TOKENS = {"t-agent": "agent"}
EVENT = orjson.dumps({"type": "track", "event": "visit", "userId": "u1", "messageId": "m1"})
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}

# What each route answers once the caller is let through (the decision does not exist).
PASSED = {"ingest": 202, "decision": 404, "user_decisions": 200, "mcp": 200}


def basic(key: str) -> str:
    """Segment's form: the write key as the user name, no password."""
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


CREDENTIALS: dict[str, dict[str, str]] = {
    "none": {},
    "unknown key": {"authorization": "Bearer nope"},
    "segment write key": {"authorization": basic("write-key-from-segment")},
    "ingest key": {"authorization": "Bearer k-ingest"},
    "ingest key, basic": {"authorization": basic("k-ingest")},
    "read key": {"authorization": "Bearer k-read"},
    "admin key": {"authorization": "Bearer k-admin"},
    "star key": {"authorization": basic("k-star")},
    "mcp token": {"authorization": "Bearer t-agent"},
}

# Which credential opens which route, when it is configured.
GRANTS = {
    "ingest key": {"ingest"},
    "ingest key, basic": {"ingest"},
    "read key": {"decision", "user_decisions"},
    "admin key": {"decision", "user_decisions"},
    "star key": {"ingest", "decision", "user_decisions"},
    "mcp token": {"mcp"},
}

STATES: dict[str, dict[str, Any]] = {
    "open": {},
    "api keys": {"api_keys": KEYS},
    "webhook secrets only": {"webhook_secrets": [SECRET]},
    "mcp tokens only": {"mcp_tokens": TOKENS},
    "ingest auth required only": {"ingest_auth_required": True},
    "everything": {"api_keys": KEYS, "webhook_secrets": [SECRET], "mcp_tokens": TOKENS},
}


def expected(state: str, credential: str, route: str) -> int:
    if state == "open":
        return PASSED[route]  # anything a request carries is accepted, Segment's key included
    configured = STATES[state]
    known = (credential != "mcp token" and "api_keys" in configured) or (
        credential == "mcp token" and "mcp_tokens" in configured
    )
    if credential in ("none", "unknown key", "segment write key") or not known:
        return 401
    return PASSED[route] if route in GRANTS[credential] else 403


def call(client: httpx.Client, route: str, headers: dict[str, str]) -> httpx.Response:
    if route == "ingest":
        return client.post("/ingest", content=EVENT, headers={"content-type": "application/json", **headers})
    if route == "decision":
        return client.get("/decisions/dec_missing", headers=headers)
    if route == "user_decisions":
        return client.get("/users/u1/decisions", headers=headers)
    accept = {"accept": "application/json, text/event-stream"}
    return client.post("/mcp", json=INIT, headers={**accept, **headers})


@pytest.mark.parametrize("state", list(STATES))
def test_every_route_under_every_credential_state(state: str, settings: Settings, stores: Stores) -> None:
    configured = Settings(
        state_url=settings.state_url, ops_url=settings.ops_url, data_dir=settings.data_dir, **STATES[state]
    )
    app = create_app(configured, stores)
    failures: list[str] = []
    with (
        serve_in_thread(app) as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
    ):
        for credential, headers in CREDENTIALS.items():
            for route in PASSED:
                got = call(client, route, headers)
                want = expected(state, credential, route)
                if got.status_code != want:
                    failures.append(
                        f"{credential} on {route}: {got.status_code} (want {want}) {got.text[:120]}"
                    )
                elif want in (401, 403):
                    body = got.json()
                    kind = "unauthorized" if want == 401 else "forbidden"
                    assert set(body) == {"error"} and body["error"]["kind"] == kind, (route, body)
                    assert body["error"]["message"], (route, body)
                    if want == 401:
                        assert got.headers["www-authenticate"].startswith("Bearer"), route
        if "webhook_secrets" in STATES[state]:
            signed = _signed(EVENT)
            assert call(client, "ingest", signed).status_code == 202
            # A signature opens /ingest only: it is no credential for reading.
            assert call(client, "decision", signed).status_code == 401
    assert not failures, "\n".join(failures)


def _signed(body: bytes) -> dict[str, str]:
    from datetime import UTC, datetime

    stamp = datetime.now(UTC)
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": Webhook(SECRET).sign("msg_1", stamp, body.decode()),
    }


def test_unknown_permission_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown permission 'raed'"):
        Authenticator(Settings(data_dir=tmp_path, api_keys={"k1": ["raed"]}))


def test_open_mode_binds_loopback_only_and_says_so(tmp_path: Path) -> None:
    open_auth = Authenticator(Settings(data_dir=tmp_path))
    closed = Authenticator(Settings(data_dir=tmp_path, api_keys={"k1": ["ingest"]}))
    host, notice = bind_host("0.0.0.0", open_auth)
    assert host == LOOPBACK and notice and "serving on 127.0.0.1 only instead of 0.0.0.0" in notice
    assert bind_host("::1", open_auth)[0] == "::1"
    assert bind_host("localhost", open_auth)[0] == "localhost"
    assert bind_host("mca.example.com", open_auth)[0] == LOOPBACK
    assert bind_host("0.0.0.0", closed) == ("0.0.0.0", None)


def test_a_route_that_is_never_open(tmp_path: Path) -> None:
    """`require(..., always=True)` (the switches): refused in open mode, and names the key
    by fingerprint only."""
    from fastapi import APIRouter, Depends
    from fastapi.testclient import TestClient

    from mca.auth import Principal, fingerprint, require
    from mca.extension import Extension

    router = APIRouter()

    @router.get("/flip")
    def flip(who: Principal = Depends(require("admin", always=True))) -> dict[str, str]:  # noqa: B008
        return {"by": who.name}

    url = "postgresql://unused@127.0.0.1:1/none"
    stores = Stores(url, url)
    for keys, headers, status in (
        ({}, {}, 401),
        ({}, {"authorization": "Bearer anything"}, 401),
        ({"k-admin": ["admin"], "k-read": ["read"]}, {"authorization": "Bearer k-read"}, 403),
        ({"k-admin": ["admin"], "k-read": ["read"]}, {"authorization": "Bearer k-admin"}, 200),
    ):
        settings = Settings(state_url=url, ops_url=url, data_dir=tmp_path, api_keys=keys)
        app = create_app(settings, stores, [Extension(name="t", routers=[router])])
        got = TestClient(app).get("/flip", headers=headers)
        assert got.status_code == status, (keys, headers, got.text)
    assert got.json() == {"by": fingerprint("k-admin")} and "k-admin" not in got.text
