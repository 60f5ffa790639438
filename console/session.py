"""Who is looking at the console: a login with an API key, then a signed session cookie.

The key must carry the `console` (read) or `admin` permission in the one authenticator
(`mca.auth`). The cookie is signed (itsdangerous), HttpOnly, SameSite=Strict and scoped to
/console; it carries the key's fingerprint, never the key. Its signing secret is derived from
the configured keys, so every process of one deployment accepts it and rotating any key ends
every session. Every form carries the session's CSRF token. In open mode (no credential
configured) the console answers loopback clients only, as the open operator.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from mca.auth import Authenticator, authenticator_of, is_loopback
from mca.settings import Settings

COOKIE = "mca_console"
PATH = "/console"
SESSION_MAX_AGE_S = 8 * 3600
LOGIN_FORM_MAX_AGE_S = 3600
READ, ADMIN = "console", "admin"


class ConsoleRefusal(Exception):
    """A request the console refuses: rendered as a page naming the reason (never a stack trace)."""

    def __init__(self, status: int, reason: str, *, login: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.login = login


@dataclass(frozen=True)
class Viewer:
    name: str  # an API key's fingerprint, or "open" in open mode
    admin: bool
    csrf: str
    open_mode: bool = False


def signing_secret(settings: Settings) -> bytes:
    """One secret per set of credentials; a random one in open mode (sessions are not needed there)."""
    keys = sorted(settings.auth.api_keys)
    if not keys:
        return secrets.token_bytes(32)
    digest = hashlib.sha256(b"mca-console-session\x00")
    for key in keys:
        digest.update(key.encode() + b"\x00")
    return digest.digest()


class Sessions:
    def __init__(self, settings: Settings) -> None:
        secret = signing_secret(settings)
        self._session = URLSafeTimedSerializer(secret, salt="console-session")
        self._login = URLSafeTimedSerializer(secret, salt="console-login")
        self.open_csrf = secrets.token_urlsafe(24)

    def login_token(self) -> str:
        return self._login.dumps(secrets.token_urlsafe(8))

    def check_login_token(self, token: str) -> None:
        try:
            self._login.loads(token, max_age=LOGIN_FORM_MAX_AGE_S)
        except BadSignature:
            stale = "the login form is stale or forged (CSRF): reload it and try again"
            raise ConsoleRefusal(403, stale) from None

    def login(self, auth: Authenticator, key: str) -> tuple[str, Viewer]:
        """The cookie value for a key that may open the console; refused otherwise."""
        principal = auth.identify(key.strip()) if key.strip() else None
        if principal is None or principal.kind != "api_key":
            raise ConsoleRefusal(401, "unknown API key", login=True)
        if not (principal.allows(READ) or principal.allows(ADMIN)):
            raise ConsoleRefusal(403, "this API key lacks the console permission", login=True)
        viewer = Viewer(principal.name, principal.allows(ADMIN), secrets.token_urlsafe(24))
        return self._session.dumps({"who": viewer.name, "admin": viewer.admin, "csrf": viewer.csrf}), viewer

    def viewer(self, cookie: str | None) -> Viewer:
        if not cookie:
            raise ConsoleRefusal(401, "log in to use the console", login=True)
        try:
            data: Any = self._session.loads(cookie, max_age=SESSION_MAX_AGE_S)
        except SignatureExpired:
            raise ConsoleRefusal(401, "your session expired: log in again", login=True) from None
        except BadSignature:
            raise ConsoleRefusal(401, "the session cookie is not valid: log in again", login=True) from None
        return Viewer(str(data["who"]), bool(data["admin"]), str(data["csrf"]))


def sessions_of(request: Request) -> Sessions:
    found = request.app.state.console_sessions
    assert isinstance(found, Sessions)
    return found


def current_viewer(request: Request) -> Viewer:
    """A FastAPI dependency: the viewer of a console request, or a refusal (login page)."""
    auth = authenticator_of(request)
    sessions = sessions_of(request)
    if auth.open:
        host = request.client.host if request.client else ""
        if not is_loopback(host):
            raise ConsoleRefusal(403, "open mode: the console answers loopback clients only")
        return Viewer("open", True, sessions.open_csrf, open_mode=True)
    return sessions.viewer(request.cookies.get(COOKIE))


def require_admin(viewer: Viewer) -> None:
    if not viewer.admin:
        raise ConsoleRefusal(403, "this needs an API key with the admin permission")


def check_csrf(viewer: Viewer, token: str | None) -> None:
    """Every state-changing form carries the session's token; a missing or wrong one changes nothing."""
    if not token or not hmac.compare_digest(token.encode(), viewer.csrf.encode()):
        raise ConsoleRefusal(403, "missing or wrong CSRF token: reload the page and try again")
