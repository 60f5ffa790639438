"""Console access without a browser: login, session, CSRF, permissions, open mode (ASGI client)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from console.web import extension
from mca.app import create_app
from mca.db import Stores
from mca.settings import Settings

KEYS = {"k-admin": ["admin"], "k-read": ["console"], "k-ingest": ["ingest"]}
PAGES = [
    "/console/live",
    "/console/customers",
    "/console/governance",
    "/console/experiments",
    "/console/catalogue",
]


def _client(settings: Settings, stores: Stores) -> TestClient:
    return TestClient(create_app(settings, stores, extensions=[extension(settings, stores)]))


def _token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def _login(client: TestClient, key: str) -> str:
    """Logs in; returns the session's CSRF token (from the page it lands on)."""
    form = client.get("/console/login")
    landed = client.post("/console/login", data={"key": key, "csrf": _token(form.text)})
    assert landed.status_code == 200 and 'id="logout"' in landed.text, landed.text[:500]
    return _token(landed.text)


@pytest.fixture
def locked(settings: Settings) -> Settings:
    return settings.model_copy(update={"api_keys": KEYS})


def test_nothing_answers_without_a_session(locked: Settings, stores: Stores) -> None:
    with _client(locked, stores) as client:
        for path in [*PAGES, "/console/live/stream", "/console/governance/audit.csv"]:
            got = client.get(path, follow_redirects=False)
            assert got.status_code == 401, path
            assert "customer" not in got.text.lower() or "log in" in got.text.lower()
        posted = client.post("/console/switches/kill", data={"on": "on", "reason": "x", "by": "x"})
        assert posted.status_code == 401
        polled = client.get("/console/live/counters", headers={"HX-Request": "true"})
        assert polled.status_code == 401 and polled.headers["hx-redirect"] == "/console/login"


def test_login_sets_a_strict_httponly_cookie_and_logout_ends_it(locked: Settings, stores: Stores) -> None:
    with _client(locked, stores) as client:
        form = client.get("/console/login")
        got = client.post(
            "/console/login", data={"key": "k-read", "csrf": _token(form.text)}, follow_redirects=False
        )
        assert got.status_code == 303
        cookie = got.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
        assert "k-read" not in cookie
        page = client.get("/console/live")
        assert page.status_code == 200 and "read only" in page.text
        assert client.post("/console/logout", data={"csrf": _token(page.text)}).status_code == 200
        assert client.get("/console/live", follow_redirects=False).status_code == 401


@pytest.mark.parametrize(
    ("key", "status", "reason"),
    [
        ("nope", 401, "unknown API key"),
        ("k-ingest", 403, "lacks the console permission"),
        ("", 401, "unknown"),
    ],
)
def test_a_wrong_key_is_refused_clearly(
    locked: Settings, stores: Stores, key: str, status: int, reason: str
) -> None:
    with _client(locked, stores) as client:
        form = client.get("/console/login")
        got = client.post("/console/login", data={"key": key, "csrf": _token(form.text)})
        assert got.status_code == status and reason in got.text
        assert "set-cookie" not in got.headers or 'mca_console=""' in got.headers["set-cookie"]


def test_a_forged_login_form_and_a_forged_cookie_are_refused(locked: Settings, stores: Stores) -> None:
    with _client(locked, stores) as client:
        assert client.post("/console/login", data={"key": "k-admin", "csrf": "x"}).status_code == 403
        client.cookies.set("mca_console", "eyJ3aG8iOiJtZSIsImFkbWluIjp0cnVlfQ.forged.sig", path="/console")
        got = client.get("/console/live", follow_redirects=False)
        assert got.status_code == 401 and "not valid" in got.text


def test_missing_csrf_changes_nothing(locked: Settings, stores: Stores, db_url: str) -> None:
    import psycopg

    with _client(locked, stores) as client:
        token = _login(client, "k-admin")
        form = {"on": "on", "reason": "incident", "by": "alice"}
        missing = client.post("/console/switches/kill", data=form)
        wrong = client.post("/console/switches/kill", data={**form, "csrf": token + "x"})
        assert missing.status_code == wrong.status_code == 403 and "CSRF" in missing.text
        with psycopg.connect(db_url) as conn:
            assert conn.execute("SELECT count(*) FROM switches").fetchone() == (0,)
        done = client.post("/console/switches/kill", data={**form, "csrf": token})
        assert done.status_code == 200 and "Kill switch: <strong" in done.text
        with psycopg.connect(db_url) as conn:
            row = conn.execute("SELECT enabled, set_by FROM switches WHERE name = 'kill'").fetchone()
        assert row is not None and row[0] is True and row[1].startswith("alice (key#")


def test_a_reader_sees_switches_disabled_and_cannot_post(locked: Settings, stores: Stores) -> None:
    with _client(locked, stores) as client:
        token = _login(client, "k-read")
        page = client.get("/console/governance")
        assert page.status_code == 200 and 'id="read-only"' in page.text
        assert page.text.count("<fieldset disabled>") >= 2
        got = client.post(
            "/console/switches/kill", data={"on": "on", "reason": "r", "by": "b", "csrf": token}
        )
        assert got.status_code == 403 and "admin permission" in got.text


def test_every_page_renders_and_an_unknown_customer_is_not_an_error(locked: Settings, stores: Stores) -> None:
    with _client(locked, stores) as client:
        _login(client, "k-read")
        for path in PAGES:
            got = client.get(path)
            assert got.status_code == 200, (path, got.text[:800])
            assert got.headers["content-security-policy"].startswith("default-src 'self'")
        unknown = client.get("/console/customers", params={"user_id": "<b>nobody</b>"})
        assert unknown.status_code == 404 and "No such customer" in unknown.text
        assert "<b>nobody</b>" not in unknown.text and "&lt;b&gt;nobody&lt;/b&gt;" in unknown.text
        csv = client.get("/console/governance/audit.csv", params={"since": "7d"})
        assert csv.status_code == 200 and csv.text.startswith("audit_id,at,caller")
        assert client.get("/console/governance/audit.csv", params={"since": "soon"}).status_code == 422


def test_open_mode_needs_no_login_and_says_so(settings: Settings, stores: Stores) -> None:
    with _client(settings, stores) as client:
        page = client.get("/console/live", headers={})
        # TestClient's peer is "testclient", not a loopback address: open mode refuses it.
        assert page.status_code == 403 and "loopback" in page.text


def test_open_mode_on_loopback_opens_without_login_and_says_so(settings: Settings, stores: Stores) -> None:
    import httpx

    from mca.testing.http import serve_in_thread

    app = create_app(settings, stores, extensions=[extension(settings, stores)])
    with serve_in_thread(app) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
        page = http.get("/console/governance")
        assert (
            page.status_code == 200 and 'id="open-mode"' in page.text and "loopback clients only" in page.text
        )
        assert "<fieldset disabled>" not in page.text  # the open operator is the admin, as with the CLI
        missing = http.post("/console/switches/shadow", data={"on": "on", "reason": "r", "by": "b"})
        assert missing.status_code == 403 and "CSRF" in missing.text
        assert http.get("/console/login", follow_redirects=False).status_code == 303


def test_an_expired_session_is_refused_and_asks_for_a_new_login(locked: Settings, stores: Stores) -> None:
    import time

    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    from console.session import SESSION_MAX_AGE_S, signing_secret

    class Yesterday(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - SESSION_MAX_AGE_S - 60

    old = URLSafeTimedSerializer(signing_secret(locked), salt="console-session", signer=Yesterday)
    cookie = old.dumps({"who": "key#00000000", "admin": True, "csrf": "t"})
    with _client(locked, stores) as client:
        client.cookies.set("mca_console", cookie, path="/console")
        got = client.get("/console/governance", follow_redirects=False)
        assert got.status_code == 401 and "session expired" in got.text and 'id="key"' in got.text
        posted = client.post(
            "/console/switches/kill", data={"on": "on", "reason": "r", "by": "b", "csrf": "t"}
        )
        assert posted.status_code == 401


def test_experiments_show_the_uplift_of_closed_exposures(locked: Settings, stores: Stores) -> None:
    import json
    from datetime import UTC, datetime, timedelta

    import psycopg

    decided = datetime.now(UTC) - timedelta(days=10)
    with psycopg.connect(stores.state_url, autocommit=True) as conn:
        for n in range(40):
            group = "control" if n % 2 else "treatment"
            props = {"decision_id": f"x{n}", "trigger": "churn_risk", "experiment_id": "exp-c",
                     "experiment_group": group, "window_s": 7 * 86400}  # fmt: skip
            conn.execute(
                "INSERT INTO events (event_id, user_id, event_type, ts, properties) VALUES (%s, %s, "
                "'decision_recorded', %s, %s)",
                (f"dec-x{n}", f"e{n}", decided, json.dumps(props)),
            )
            if group == "treatment" and n % 4 == 0:
                conn.execute(
                    "INSERT INTO events (event_id, user_id, event_type, ts, value) "
                    "VALUES (%s, %s, 'purchase', %s, 50)",
                    (f"buy-{n}", f"e{n}", decided + timedelta(days=1)),
                )
    with _client(locked, stores) as client:
        _login(client, "k-read")
        html = client.get("/console/experiments").text
    assert 'id="uplift"' in html and "churn_risk" in html
    assert "0 / 20 / 20" in html  # holdout / control / treatment customers
    assert "0.0% / 50.0%" in html and "+50.0 pts" in html
    assert "<svg" in html
