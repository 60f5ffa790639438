"""Who may call the HTTP service: one authenticator for every route.

Credentials: API keys (``MCA_API_KEYS``, key -> permissions) sent as ``Authorization: Bearer
<key>`` or Segment's ``Basic base64(<write key>:)``, and MCP tokens (``MCA_MCP_TOKENS``, token
-> caller name), which open ``/mcp`` only because the guard's policy is per named caller.
Standard Webhooks signatures also count as credentials; ``ingest.auth`` verifies them, since
they cover the body.

Open mode is all or nothing: with no credential of any kind configured (and
``MCA_INGEST_AUTH_REQUIRED`` false) every route is open, whatever a request carries (Segment
always sends its write key), and the server binds to loopback only (``bind_host``). Once any
credential is configured, every route that returns or accepts customer data needs one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fastapi import Request

from mca.errors import ConfigError, Refused
from mca.errors import Forbidden as Forbidden
from mca.errors import Unauthorized as Unauthorized
from mca.settings import Settings

# What an API key may be granted (docs/ingest.md, "Authentication and permissions", documents each).
KEY_PERMISSIONS = ("ingest", "read", "console", "admin", "*")
MCP = "mcp"  # granted by MCA_MCP_TOKENS only
_IMPLIED = {"admin": frozenset({"read", "console"}), "*": frozenset(KEY_PERMISSIONS)}
LOOPBACK = "127.0.0.1"


# The name app.py and older callers import: refused credentials (401 Unauthorized, 403 Forbidden).
AuthError = Refused


@dataclass(frozen=True)
class Principal:
    """Who sent a request: an API key (by fingerprint), an MCP caller, a webhook signer, or
    open mode."""

    kind: str
    name: str
    permissions: frozenset[str]

    def allows(self, permission: str) -> bool:
        return self.kind == "open" or permission in self.permissions


OPEN = Principal("open", "open", frozenset())


def fingerprint(key: str) -> str:
    """How audit trails and logs name an API key without revealing any of it."""
    return "key#" + hashlib.sha256(key.encode()).hexdigest()[:8]


def _grants(key: str, permissions: list[str]) -> frozenset[str]:
    granted: set[str] = set()
    for permission in permissions:
        if permission not in KEY_PERMISSIONS:
            raise ConfigError(
                f"MCA_API_KEYS: key {fingerprint(key)} has unknown permission {permission!r}; "
                f"use {', '.join(KEY_PERMISSIONS)}"
            )
        granted |= {permission} | _IMPLIED.get(permission, frozenset())
    return frozenset(granted)


def credential(authorization: str | None) -> str | None:
    """The secret of ``Bearer <secret>`` or ``Basic base64(<secret>:)``; None without one."""
    if not authorization or not authorization.strip():
        return None
    scheme, _, value = authorization.strip().partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "bearer":
        return value or None
    if scheme == "basic":
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("Authorization: Basic credentials are not base64 of user:password") from None
        # Segment puts the write key in the user name; some clients put it in the password.
        return user or password or None
    raise Unauthorized("Authorization: use Bearer <key> or Basic (the key as user name)")


class Authenticator:
    """Built once per app from the settings; bad settings fail here, at start-up."""

    def __init__(self, settings: Settings) -> None:
        self._principals: dict[str, Principal] = {}
        for key, permissions in settings.auth.api_keys.items():
            self._principals[key] = Principal("api_key", fingerprint(key), _grants(key, permissions))
        for token, caller in settings.auth.mcp_tokens.items():
            known = self._principals.get(token)
            granted = (known.permissions if known else frozenset()) | {MCP}
            self._principals[token] = Principal("mcp_token" if known is None else known.kind, caller, granted)
        self.signatures_configured = bool(settings.auth.webhook_secrets)
        self.open = not (self._principals or self.signatures_configured or settings.auth.ingest_auth_required)

    def identify(self, secret: str) -> Principal | None:
        """The principal a secret names, compared in constant time against every one known."""
        found = None
        for known, principal in self._principals.items():
            if hmac.compare_digest(known.encode(), secret.encode()):
                found = principal
        return found

    def authenticate(self, headers: Mapping[str, str], permission: str, *, always: bool = False) -> Principal:
        """The caller of a request that needs ``permission``, or Unauthorized / Forbidden.
        ``always``: the route is never open, not even in open mode (the switches)."""
        if self.open and not always:
            return OPEN
        secret = credential(headers.get("authorization"))
        if secret is None:
            raise Unauthorized("missing credentials: send Authorization: Bearer <key>")
        principal = self.identify(secret)
        if principal is None:
            raise Unauthorized("unknown API key")
        if not principal.allows(permission):
            if permission == MCP:
                raise Forbidden("this API key does not open /mcp: use an MCA_MCP_TOKENS token")
            raise Forbidden(f"this credential lacks the {permission} permission")
        return principal


def authenticator_of(request: Request) -> Authenticator:
    auth = getattr(request.app.state, "auth", None)
    if auth is None:  # an app not built by mca.app.create_app
        raise ConfigError("the app has no authenticator (build it with mca.app.create_app)")
    assert isinstance(auth, Authenticator)
    return auth


def require(permission: str, *, always: bool = False) -> Callable[[Request], Principal]:
    """A FastAPI dependency: ``Depends(require("read"))`` refuses callers without it;
    ``always=True`` refuses them in open mode too."""
    if permission not in KEY_PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def dependency(request: Request) -> Principal:
        return authenticator_of(request).authenticate(request.headers, permission, always=always)

    return dependency


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def bind_host(requested: str, auth: Authenticator) -> tuple[str, str | None]:
    """Where to listen, and what to tell the operator: open mode never leaves loopback."""
    if not auth.open:
        return requested, None
    if is_loopback(requested):
        return requested, f"open mode: no credentials configured; every route is open, on {requested} only"
    return LOOPBACK, (
        f"open mode: no credentials configured, so serving on {LOOPBACK} only instead of {requested}; "
        "set MCA_API_KEYS (or MCA_WEBHOOK_SECRETS, MCA_MCP_TOKENS) to serve other hosts"
    )
