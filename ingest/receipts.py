"""Delivery receipts: what the providers mca sends through say became of a message, as events.

Two doors, each authenticated by the sender's signature over the body (no API key: providers
cannot send one), so a request is read whole, verified, and only then mapped; a bad signature is
a 401 before anything is parsed or stored.

- ``POST /webhooks/twilio``: Twilio's status callbacks (form-encoded ``MessageSid``,
  ``MessageStatus``, ``To``, ``ErrorCode`` ...), ``X-Twilio-Signature`` checked by the twilio
  SDK's RequestValidator against ``MCA_TWILIO_AUTH_TOKEN``. One event per message and status,
  so Twilio's retries of a callback are duplicates.
- ``POST /webhooks/receipts``: any other provider, signed the Standard Webhooks way (with the
  verifier /ingest uses, keys from ``MCA_RECEIPT_WEBHOOK_SECRETS``); body ``{type, user_id,
  decision_id?, coupon_code?, timestamp?, ...}``; the ``webhook-id`` is the event id, so a
  replayed webhook is a duplicate, not a second event.

Attribution happens at the door, from the ops store: a Twilio sid names the outbox row that sent
it (``outbox.provider_ref``) and so its decision; a decision id is checked against the
decisions mca made; a coupon code names the outbox row that carried it. A receipt that resolves
to nothing is stored all the same, ``attributed: false`` with the reason, never refused: a lost
outcome cannot be measured again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from twilio.request_validator import RequestValidator

from ingest import fields
from ingest.auth import decode_secret, verify_webhook
from ingest.body import decode
from ingest.errors import FieldError, UnsupportedMediaType, ValidationFailed
from ingest.formats import (
    JSON,
    NO_TYPED_COLUMNS,
    RequestMeta,
    Row,
    event_row,
    outcome_properties,
    with_consent_rows,
)
from mca.auth import Unauthorized
from mca.settings import Settings

log = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"
TWILIO_SIGNATURE = "x-twilio-signature"
# The user of a receipt nothing names (a Twilio sid mca never sent): kept, never dropped.
UNATTRIBUTED_USER = "unattributed"
# Twilio's final and read statuses -> outcome events; every other status (queued, accepted,
# scheduled, sending, sent, receiving, received, partially_delivered, any new one) is a step on
# the way, kept as ``message_status`` so a later view can use it, and counted as no outcome.
TWILIO_OUTCOMES = {
    "delivered": "message_delivered",
    "undelivered": "message_failed",
    "failed": "message_failed",
    "canceled": "message_failed",
    "read": "message_opened",
}
TWILIO_STEP = "message_status"
RECEIPT_TYPES = (
    "message_delivered",
    "message_failed",
    "message_bounced",
    "message_opened",
    "link_clicked",
    "unsubscribed",
    "coupon_redeemed",
)
# Fields of a generic receipt that become columns rather than properties.
_RECEIPT_COLUMNS = ("type", "user_id", "timestamp")

_BY_SID = """
SELECT t.decision_id, o.user_id, o.outbox_id, o.call_id
FROM outbox AS o JOIN tool_calls AS t ON t.call_id = o.call_id
WHERE o.provider_ref = %(key)s ORDER BY o.outbox_id DESC LIMIT 1"""
_BY_COUPON = """
SELECT t.decision_id, o.user_id, o.outbox_id, o.call_id
FROM outbox AS o JOIN tool_calls AS t ON t.call_id = o.call_id
WHERE o.kind = 'coupon' AND upper(o.payload ->> 'coupon_code') = %(key)s
ORDER BY o.outbox_id DESC LIMIT 1"""
# A decision may have sent several things (a coupon, then an SMS): a receipt naming only the
# decision is the latest delivered one's, so it marks one action, never all of them.
_BY_DECISION = """
SELECT k.decision_id, k.user_id, o.outbox_id, o.call_id
FROM (
    SELECT decision_id, user_id FROM decisions WHERE decision_id = %(key)s
    UNION ALL
    SELECT decision_id, user_id FROM tool_calls WHERE decision_id = %(key)s
    LIMIT 1
) AS k
LEFT JOIN LATERAL (
    SELECT o.outbox_id, o.call_id FROM outbox AS o JOIN tool_calls AS t ON t.call_id = o.call_id
    WHERE t.decision_id = k.decision_id
    ORDER BY (o.status = 'delivered') DESC, o.outbox_id DESC LIMIT 1
) AS o ON true"""


@dataclass(frozen=True)
class Attribution:
    """Which decision a receipt belongs to, and how that was found (or why not)."""

    decision_id: str | None
    user_id: str | None
    outbox_id: int | None
    how: str  # decision_id | message_sid | coupon_code, or the reason it is unattributed
    call_id: int | None = None  # the one action (tool call) the receipt is about

    @property
    def attributed(self) -> bool:
        return self.decision_id is not None

    def properties(self) -> dict[str, Any]:
        out: dict[str, Any] = {"attributed": self.attributed, "attribution": self.how}
        if self.decision_id is not None:
            out["decision_id"] = self.decision_id
        if self.outbox_id is not None:
            out["outbox_id"] = self.outbox_id
        if self.call_id is not None:
            out["call_id"] = self.call_id  # the action event's call_id: the views match on it
        return out


UNRESOLVED = Attribution(None, None, None, "nothing names a decision")


class Receipts:
    """The two receipt doors' checks and mappings; the routes (ingest/web.py) write the rows."""

    def __init__(self, settings: Settings, ops: AsyncConnectionPool, max_depth: int) -> None:
        token = settings.providers.twilio_auth_token
        self.twilio = RequestValidator(token.get_secret_value()) if token is not None else None
        self.twilio_url = settings.providers.twilio_webhook_url
        self.keys = [decode_secret(s.get_secret_value()) for s in settings.auth.receipt_webhook_secrets]
        self.ops = ops
        self.max_depth = max_depth

    async def _lookup(self, query: str, key: str, how: str) -> Attribution | None:
        try:
            async with self.ops.connection(timeout=2) as conn, conn.cursor(row_factory=dict_row) as cur:
                row = await (await cur.execute(query, {"key": key})).fetchone()
        except (psycopg.Error, PoolTimeout) as err:
            # Attribution is worth less than the event: store it unattributed, say why.
            log.warning("receipt attribution lookup failed: %s", err)
            return Attribution(None, None, None, "ops store unavailable")
        if row is None:
            return None
        if row["decision_id"] is None:  # sent by a call that named no decision
            how = f"no decision behind the {how}"
        return Attribution(row["decision_id"], row["user_id"], row["outbox_id"], how, row["call_id"])

    async def resolve(
        self,
        *,
        message_sid: str | None = None,
        decision_id: str | None = None,
        coupon_code: str | None = None,
    ) -> Attribution:
        """The first key that names something wins: the message, the decision, the coupon."""
        for query, key, how in (
            (_BY_SID, message_sid, "message_sid"),
            (_BY_DECISION, decision_id, "decision_id"),
            (_BY_COUPON, coupon_code.upper() if coupon_code else None, "coupon_code"),
        ):
            if key is None:
                continue
            found = await self._lookup(query, key, how)
            if found is not None:
                return found
        named = [n for n, k in (("message_sid", message_sid), ("decision_id", decision_id)) if k]
        named += ["coupon_code"] if coupon_code else []
        return UNRESOLVED if not named else Attribution(None, None, None, "unknown " + ", ".join(named))

    async def twilio_rows(
        self, headers: Mapping[str, str], url: str, raw: bytes
    ) -> tuple[list[Row], Attribution]:
        """A Twilio status callback, verified, as one event."""
        kind = (headers.get("content-type") or "").split(";", 1)[0].strip().lower()
        if kind != FORM:
            raise UnsupportedMediaType(f"a Twilio status callback is {FORM}, not {kind or 'none'}")
        if self.twilio is None:
            raise Unauthorized("Twilio callbacks are not configured here (MCA_TWILIO_AUTH_TOKEN)")
        signature = headers.get(TWILIO_SIGNATURE)
        if not signature:
            raise Unauthorized("X-Twilio-Signature header missing")
        try:
            params = dict(parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=bool(raw)))
        except (UnicodeDecodeError, ValueError):
            raise Unauthorized("X-Twilio-Signature does not match the body") from None
        if not self.twilio.validate(self.twilio_url or url, params, signature):
            raise Unauthorized("X-Twilio-Signature does not match the body")
        return await self._twilio_event(params)

    async def _twilio_event(self, params: dict[str, str]) -> tuple[list[Row], Attribution]:
        errors: list[FieldError] = []
        sid = fields.text_id(params.get("MessageSid") or params.get("SmsSid"), "MessageSid", errors)
        status = fields.text_id(
            params.get("MessageStatus") or params.get("SmsStatus"), "MessageStatus", errors
        )
        if errors or sid is None or status is None:
            raise ValidationFailed(errors)
        found = await self.resolve(message_sid=sid)
        status = status.lower()
        to = params.get("To", "")
        props: dict[str, Any] = {
            "provider": "twilio",
            "message_sid": sid,
            "status": status,
            "channel": "whatsapp" if to.startswith("whatsapp:") else "sms",
            **found.properties(),
            "_twilio": params,
        }
        if params.get("ErrorCode"):
            props["error_code"] = params["ErrorCode"]
        meta = RequestMeta(received_at=datetime.now(UTC))
        event_type = TWILIO_OUTCOMES.get(status, TWILIO_STEP)
        user_id = found.user_id or UNATTRIBUTED_USER
        row = event_row(
            f"twilio {sid} {status}",
            user_id,
            event_type,
            meta.received_at,
            meta,
            "twilio",
            props,
            NO_TYPED_COLUMNS,
        )
        return [row], found

    async def generic_rows(self, headers: Mapping[str, str], raw: bytes) -> tuple[list[Row], Attribution]:
        """A Standard Webhooks receipt, verified, as one event (two for an unsubscribe)."""
        if not self.keys:
            raise Unauthorized("receipt webhooks are not configured here (MCA_RECEIPT_WEBHOOK_SECRETS)")
        webhook_id = verify_webhook(self.keys, headers, raw)
        kind = (headers.get("content-type") or "").split(";", 1)[0].strip().lower()
        if kind != JSON:
            raise UnsupportedMediaType(f"a receipt is {JSON}, not {kind or 'none'}")
        doc = decode(raw, JSON, self.max_depth)
        meta = RequestMeta(received_at=datetime.now(UTC), webhook_id=webhook_id)
        props, typed, user_id, event_type, ts = _receipt_fields(doc, meta)
        found = await self.resolve(decision_id=props.get("decision_id"), coupon_code=props.get("coupon_code"))
        if found.attributed and found.user_id not in (None, user_id):
            found = Attribution(None, None, None, "the decision is another user's")
        sent_decision = props.get("decision_id")
        props.pop("call_id", None)  # which action it is about is decided here, never by the sender
        props.update(found.properties())
        if sent_decision is not None:
            props["decision_id"] = sent_decision  # as sent, even when unknown: the view decides
        row = event_row(f"receipts {webhook_id}", user_id, event_type, ts, meta, "receipts", props, typed)
        return with_consent_rows([row]), found


def _receipt_fields(doc: Any, meta: RequestMeta) -> tuple[dict[str, Any], dict[str, Any], str, str, datetime]:
    """A generic receipt's columns and properties, or ValidationFailed naming every bad field."""
    errors: list[FieldError] = []
    if not isinstance(doc, dict):
        raise ValidationFailed([FieldError("body", "must be an object")])
    event_type = doc.get("type")
    if event_type not in RECEIPT_TYPES:
        errors.append(FieldError("type", "required: one of " + ", ".join(RECEIPT_TYPES)))
    user_id = fields.text_id(doc.get("user_id"), "user_id", errors)
    raw_ts = doc.get("timestamp")
    ts = (
        meta.received_at
        if raw_ts is None
        else fields.timestamp(raw_ts, "timestamp", errors, meta.received_at)
    )
    props = {k: v for k, v in doc.items() if k not in _RECEIPT_COLUMNS}
    decision_id = props.get("decision_id")
    if decision_id is not None and not isinstance(decision_id, str):
        errors.append(FieldError("decision_id", "must be a string"))  # mca's ids are text
    elif decision_id is not None:
        fields.text_id(decision_id, "decision_id", errors)
    typed = fields.typed_columns(props, "body", errors)
    if isinstance(event_type, str):
        fields.check_cast_properties(event_type, props, "body", errors)
        outcome_properties(event_type, props, typed, "body", errors)
    if errors or user_id is None or ts is None:
        raise ValidationFailed(errors)
    return props, typed, user_id, str(event_type), ts
