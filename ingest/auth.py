"""Who may call /ingest: the credentials of every route (``mca.auth``: API keys as Bearer or
Segment's Basic auth) and Standard Webhooks signatures, verified here rather than by a library
so the gateway controls every check (constant-time compare, tolerance, rotated secrets)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence

from mca.auth import Authenticator, Principal, Unauthorized
from mca.errors import ConfigError
from mca.settings import Settings

TOLERANCE_S = 5 * 60
INGEST = "ingest"
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


class IngestAuth:
    """/ingest's credentials: every route's (mca.auth), plus Standard Webhooks signatures,
    which cover the body and so are checked once it is read."""

    def __init__(self, settings: Settings) -> None:
        self.webhook_keys = [decode_secret(s.get_secret_value()) for s in settings.auth.webhook_secrets]

    def signed(self, headers: Mapping[str, str]) -> bool:
        """True when a signature must decide, after the body is read."""
        return bool(self.webhook_keys and headers.get("webhook-signature"))

    def check_headers(self, auth: Authenticator, headers: Mapping[str, str]) -> Principal:
        """Decide from headers alone, so bad credentials are refused before the body is read."""
        if not auth.open and not headers.get("authorization"):
            if headers.get("webhook-signature"):
                raise Unauthorized("webhook signatures are not configured here (MCA_WEBHOOK_SECRETS)")
            raise Unauthorized("missing credentials: an API key or a Standard Webhooks signature")
        return auth.authenticate(headers, INGEST)

    def check_signature(self, headers: Mapping[str, str], body: bytes) -> Principal:
        verify_webhook(self.webhook_keys, headers, body)
        return Principal("webhook", "webhook signer", frozenset({INGEST}))
