"""Who may call /ingest: API keys (Bearer, or Segment's Basic auth with the write key as the
user name) and Standard Webhooks signatures, verified here rather than by a library so the
gateway controls every check (constant-time compare, tolerance, rotated secrets)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ingest.errors import Forbidden, Unauthorized
from mca.errors import ConfigError
from mca.settings import Settings

TOLERANCE_S = 5 * 60
INGEST_PERMISSIONS = frozenset({"ingest", "*"})
SECRET_PREFIX = "whsec_"


def decode_secret(secret: str) -> bytes:
    """A Standard Webhooks secret: ``whsec_`` + base64 of the key bytes."""
    body = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    body += "=" * (-len(body) % 4)  # the reference libraries accept unpadded secrets too
    try:
        key = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("a webhook secret is not whsec_ followed by base64") from None
    if not key:
        raise ConfigError("a webhook secret is empty")
    return key


def sign(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def verify_webhook(
    keys: Sequence[bytes], headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> str:
    """Check a Standard Webhooks request; returns its ``webhook-id`` or raises Unauthorized
    naming the check that failed. Any listed signature made with any configured key passes
    (several of each exist during a key rotation)."""
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    for name, value in (
        ("webhook-id", msg_id),
        ("webhook-timestamp", stamp),
        ("webhook-signature", signatures),
    ):
        if not value:
            raise Unauthorized(f"{name} header missing")
    assert msg_id and stamp and signatures
    if not stamp.isdigit():
        raise Unauthorized("webhook-timestamp is not an integer number of seconds")
    skew = int(stamp) - (time.time() if now is None else now)
    if skew < -TOLERANCE_S:
        raise Unauthorized("webhook-timestamp is too old (more than 5 minutes)")
    if skew > TOLERANCE_S:
        raise Unauthorized("webhook-timestamp is too new (more than 5 minutes ahead)")
    offered: list[bytes] = []
    for item in signatures.split(" "):
        version, _, encoded = item.partition(",")
        if version != "v1":
            continue
        try:
            offered.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not offered:
        raise Unauthorized("webhook-signature has no v1 signature")
    for key in keys:
        expected = sign(key, msg_id, stamp, body)
        # Compare against every offered signature, no early exit on the first mismatch.
        if any([hmac.compare_digest(expected, sig) for sig in offered]):
            return msg_id
    raise Unauthorized("webhook-signature does not match the body")


@dataclass(frozen=True)
class Principal:
    """Who sent a request: an API key (masked), a webhook signer, or nobody (open mode)."""

    kind: str
    webhook_id: str | None = None


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self.keys = {k: frozenset(v) for k, v in settings.api_keys.items()}
        self.webhook_keys = [decode_secret(s.get_secret_value()) for s in settings.webhook_secrets]
        self.open = not self.keys and not self.webhook_keys and not settings.ingest_auth_required

    def api_key(self, authorization: str | None) -> str | None:
        """The key from ``Bearer <key>`` or ``Basic base64(<key>:)``; None without the header."""
        if not authorization:
            return None
        scheme, _, credential = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return credential.strip()
        if scheme == "basic":
            try:
                decoded = base64.b64decode(credential.strip(), validate=True).decode()
            except (binascii.Error, ValueError):
                raise Unauthorized("Authorization: Basic credentials are not base64") from None
            return decoded.partition(":")[0]
        raise Unauthorized("Authorization: use Bearer <key> or Basic (write key as user name)")

    def check_key(self, authorization: str | None) -> Principal | None:
        """Header-only check, before the body is read. None: a signature must decide."""
        key = self.api_key(authorization)
        if key is None:
            return None
        # Look up by constant-time compare so the time taken does not hint at key prefixes.
        for known, permissions in self.keys.items():
            if hmac.compare_digest(known.encode(), key.encode()):
                if permissions & INGEST_PERMISSIONS:
                    return Principal("api_key")
                raise Forbidden("this API key lacks the ingest permission")
        raise Unauthorized("unknown API key")

    def check_request(self, headers: Mapping[str, str], body: bytes) -> Principal:
        """The full decision, once the body is read (signatures cover it)."""
        webhook_id = headers.get("webhook-id")
        if headers.get("webhook-signature") and self.webhook_keys:
            verified = verify_webhook(self.webhook_keys, headers, body)
            return Principal("webhook", webhook_id=verified)
        principal = self.check_key(headers.get("authorization"))
        if principal is not None:
            return Principal(principal.kind, webhook_id=webhook_id)
        if self.open:
            return Principal("open", webhook_id=webhook_id)
        if headers.get("webhook-signature"):
            raise Unauthorized("webhook signatures are not configured here (MCA_WEBHOOK_SECRETS)")
        raise Unauthorized("missing credentials: an API key or a Standard Webhooks signature")

    def before_body(self, headers: Mapping[str, str]) -> Principal | None:
        """Decide from headers alone when no signature is involved, so a request without
        valid credentials is refused before its body is read; None: verify after reading."""
        if headers.get("webhook-signature") and self.webhook_keys:
            return None
        return self.check_request(headers, b"")
