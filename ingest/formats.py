"""Segment / RudderStack and CloudEvents 1.0 documents → canonical ``events`` rows.

A row is a plain dict keyed by the columns of ``sql/state/010_events_postgres.sql``; it is
serialised once (orjson) for the database or the Kafka topic. Every event of a request is
checked and every bad field reported; one bad event rejects the whole request.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ingest import fields
from ingest.errors import FieldError, ValidationFailed

Row = dict[str, Any]
COLUMNS = (
    "event_id",
    "user_id",
    "event_type",
    "ts",
    "received_at",
    "source",
    "value",
    "points",
    "sku",
    "category",
    "text",
    "properties",
)

# The typed columns of an event that fills none of them (a receipt, a derived consent row).
NO_TYPED_COLUMNS: dict[str, Any] = dict.fromkeys(("value", "points", "sku", "category", "text"))
SEGMENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")
CE_BATCH = "application/cloudevents-batch+json"
CE_SINGLE = "application/cloudevents+json"
JSON = "application/json"
CONTENT_TYPES = (JSON, CE_SINGLE, CE_BATCH)
# CloudEvents attributes that become columns; every other attribute is kept in properties._ce.
_CE_COLUMNS = {"specversion", "subject", "type", "time", "data", "data_base64"}
# Segment / RudderStack spec events (E-commerce v2, Email) -> mca's event types, keyed by the
# name lower-cased with underscores as spaces. Order Completed *is* a purchase: user_stats counts
# purchases, lifetime value and the last purchase from event_type 'purchase' alone, and the
# purchase trigger fires on it, so a name of its own would leave every Segment order uncounted.
SPEC_EVENTS = {
    "order completed": "purchase",
    "coupon applied": "coupon_applied",
    "email opened": "email_opened",
    "email link clicked": "email_link_clicked",
    "unsubscribed": "unsubscribed",
}
# Outcomes that can name the coupon they redeemed (properties.coupon_code).
REDEMPTION_TYPES = ("purchase", "coupon_applied", "coupon_redeemed")


@dataclass(frozen=True)
class RequestMeta:
    received_at: datetime
    webhook_id: str | None = None


def generated_id() -> str:
    """For events that carry no id at all: unique, so such events are never deduplicated."""
    return "gen-" + uuid.uuid4().hex


def _fallback_id(meta: RequestMeta, index: int | None) -> str:
    if meta.webhook_id is None:
        return generated_id()
    # A redelivered webhook repeats its id and its (signed) body, so the index is stable.
    return meta.webhook_id if index is None else f"{meta.webhook_id}#{index}"


@functools.lru_cache(maxsize=4096)  # a few names come again and again
def spec_event_type(name: str) -> str:
    """mca's event type for a track call's ``event`` name (the name itself when not a spec event)."""
    return SPEC_EVENTS.get(name.strip().lower().replace("_", " "), name)


def outcome_properties(
    event_type: str, props: dict[str, Any], typed: dict[str, Any], path: str, errors: list[FieldError]
) -> None:
    """The attribution keys of an outcome: the redeemed coupon's code, and for an order that
    names its products only in ``products[]`` (Order Completed) the first line's sku and category,
    which user_stats keeps as the last purchase."""
    if event_type not in REDEMPTION_TYPES:
        return
    code = fields.coupon_code(props, path, errors)
    if code is not None:
        props["coupon_code"] = code
    products = props.get("products")
    if event_type != "purchase" or not isinstance(products, list) or not products:
        return
    if not isinstance(products[0], dict):
        return
    keys = fields.SKU_KEYS + fields.CATEGORY_KEYS
    line = fields.typed_columns(
        {k: v for k, v in products[0].items() if k in keys}, f"{path}.products[0]", errors
    )
    for column in ("sku", "category"):
        if typed[column] is None:
            typed[column] = line[column]


def consent_row(row: Row) -> Row:
    """The identify an ``unsubscribed`` event implies. user_profile (and the guard's consent
    check over it) reads consent from identify traits only, so the withdrawal is written as one,
    next to the event, and both engines' views see it with no second definition of consent.
    Its id derives from the event's, so a redelivery is a duplicate of both."""
    channel = row["properties"].get("channel") or "email"
    channels = fields.CONSENT_CHANNELS if channel == "all" else (channel,)
    props: dict[str, Any] = {f"consent_{c}": False for c in channels}
    props["_derived_from"] = row["event_id"]
    return {
        **row,
        **NO_TYPED_COLUMNS,
        "event_id": f"{row['event_id']}:consent",
        "event_type": "identify",
        "properties": props,
    }


def with_consent_rows(rows: list[Row]) -> list[Row]:
    out: list[Row] = []
    for row in rows:
        out.append(row)
        if row["event_type"] == "unsubscribed":
            out.append(consent_row(row))
    return out


def event_row(
    event_id: str,
    user_id: str,
    event_type: str,
    ts: datetime,
    meta: RequestMeta,
    source: str,
    props: dict[str, Any],
    typed: dict[str, Any],
) -> Row:
    return {
        "event_id": event_id,
        "user_id": user_id,
        "event_type": event_type,
        "ts": ts,
        "received_at": meta.received_at,
        "source": source,
        **typed,
        "properties": props,
    }


def segment_event(
    doc: Any,
    path: str,
    meta: RequestMeta,
    index: int | None,
    errors: list[FieldError],
    batch_context: Any = None,
) -> Row | None:
    """One Segment spec call (track, identify, page, screen, group, alias). It runs for every
    event of a batch, so each key of the call is read once."""
    p = f"{path}." if path else ""
    if not isinstance(doc, dict):
        errors.append(FieldError(path or "body", "must be an object"))
        return None
    before = len(errors)
    get = doc.get
    kind = get("type")
    if kind is None:
        kind = "track" if "event" in doc else None
    if kind not in SEGMENT_TYPES:
        errors.append(FieldError(f"{p}type", "required: one of " + ", ".join(SEGMENT_TYPES)))
        return None
    user_raw, anonymous = get("userId"), get("anonymousId")
    user_id = _segment_user(user_raw, anonymous, p, errors)
    spec_name: str | None = None
    if kind == "track":
        spec_name = fields.event_name(get("event"), f"{p}event", errors)
        event_type = None if spec_name is None else spec_event_type(spec_name)
        props_key = "properties"
    else:
        event_type, props_key = kind, "traits" if kind in ("identify", "group") else "properties"
    props_path = p + props_key
    props = _segment_props(doc, kind, props_key, p, errors)
    context = fields.mapping(get("context"), f"{p}context", errors)
    if kind == "identify" and props_key not in doc:
        props = dict(fields.mapping(context.get("traits"), f"{p}context.traits", errors))
    if batch_context and isinstance(batch_context, dict):
        context = {**batch_context, **context}
    if context:
        props["_context"] = context
    if user_raw is not None and anonymous is not None:
        props["_anonymous_id"] = anonymous
    if spec_name is not None and event_type != spec_name:
        props["_event"] = spec_name  # the name as sent, for a mapped spec event
    message_id = get("messageId")
    event_id = fields.text_id(message_id, f"{p}messageId", errors) if message_id is not None else None
    raw_ts = get("timestamp", get("originalTimestamp"))
    ts = (
        meta.received_at
        if raw_ts is None
        else fields.timestamp(raw_ts, f"{p}timestamp", errors, meta.received_at)
    )
    typed = fields.typed_columns(props, props_path, errors)
    if event_type is not None:
        fields.check_cast_properties(event_type, props, props_path, errors)
        outcome_properties(event_type, props, typed, props_path, errors)
    if len(errors) > before or user_id is None or event_type is None or ts is None:
        return None
    return event_row(
        event_id or _fallback_id(meta, index), user_id, event_type, ts, meta, "segment", props, typed
    )


def _segment_user(user_raw: Any, anonymous: Any, p: str, errors: list[FieldError]) -> str | None:
    if user_raw is not None:
        return fields.text_id(user_raw, f"{p}userId", errors)
    if anonymous is not None:
        return fields.text_id(anonymous, f"{p}anonymousId", errors)
    errors.append(FieldError(f"{p}userId", "required (or anonymousId)"))
    return None


def _segment_props(doc: dict[str, Any], kind: str, props_key: str, p: str, errors: list[FieldError]) -> Row:
    """A copy of the call's properties (traits), with the keys a page, group or alias call
    carries beside them."""
    raw = doc.get(props_key)
    props = dict(raw) if type(raw) is dict else dict(fields.mapping(raw, p + props_key, errors))
    if kind in ("track", "identify"):
        return props
    if kind in ("page", "screen") and isinstance(doc.get("name"), str):
        props.setdefault("name", doc["name"])
    if kind == "group" and doc.get("groupId") is not None:
        props.setdefault("group_id", doc["groupId"])
    if kind == "alias" and doc.get("previousId") is not None:
        props.setdefault("previous_id", doc["previousId"])
    return props


def cloud_event(doc: Any, path: str, meta: RequestMeta, errors: list[FieldError]) -> Row | None:
    """One CloudEvents 1.0 event in structured JSON mode."""
    p = f"{path}." if path else ""
    if not isinstance(doc, dict):
        errors.append(FieldError(path or "body", "must be an object"))
        return None
    before = len(errors)
    if doc.get("specversion") != "1.0":
        errors.append(FieldError(f"{p}specversion", 'must be "1.0"'))
    ce_id = fields.text_id(doc.get("id"), f"{p}id", errors)
    source = fields.text_id(doc.get("source"), f"{p}source", errors)
    if source is not None and any(c.isspace() for c in source):
        # The dedup key joins source and id with a space: a URI-reference has none.
        errors.append(FieldError(f"{p}source", "must be a URI-reference (no whitespace)"))
    event_type = fields.event_name(doc.get("type"), f"{p}type", errors)
    subject = doc.get("subject")
    if subject is None:
        errors.append(FieldError(f"{p}subject", "required: the user id"))
        user_id = None
    else:
        user_id = fields.text_id(subject, f"{p}subject", errors)
    raw_time = doc.get("time")
    ts = (
        meta.received_at
        if raw_time is None
        else fields.timestamp(raw_time, f"{p}time", errors, meta.received_at)
    )
    data = doc.get("data")
    if isinstance(data, dict):
        props = dict(data)
    elif data is None:
        props = {}
    else:
        props = {"data": data}
    if doc.get("data_base64") is not None:
        props["data_base64"] = doc["data_base64"]
    if "_ce" in props:  # where the envelope's other attributes are kept: never silently replaced
        errors.append(FieldError(f"{p}data._ce", "reserved for the CloudEvent's own attributes"))
    props["_ce"] = {k: v for k, v in doc.items() if k not in _CE_COLUMNS}
    typed = fields.typed_columns(props, f"{p}data", errors)
    if event_type is not None:
        fields.check_cast_properties(event_type, props, f"{p}data", errors)
        outcome_properties(event_type, props, typed, f"{p}data", errors)
    if len(errors) > before or None in (ce_id, source, event_type, user_id, ts):
        return None
    assert ce_id and source and event_type and user_id and ts
    return event_row(f"{source} {ce_id}", user_id, event_type, ts, meta, source, props, typed)


def _one(doc: Any, path: str, meta: RequestMeta, index: int | None, errors: list[FieldError]) -> Row | None:
    if isinstance(doc, dict) and "specversion" in doc:
        return cloud_event(doc, path, meta, errors)
    return segment_event(doc, path, meta, index, errors)


def to_rows(content_type: str, doc: Any, meta: RequestMeta) -> list[Row]:
    """Every event of a request as rows, or ValidationFailed listing every bad field."""
    errors: list[FieldError] = []
    rows: list[Row | None]
    if content_type == CE_BATCH:
        if not isinstance(doc, list):
            raise ValidationFailed([FieldError("body", "a CloudEvents batch must be a JSON array")])
        rows = [cloud_event(d, f"[{i}]", meta, errors) for i, d in enumerate(doc)]
    elif content_type == CE_SINGLE:
        rows = [cloud_event(doc, "", meta, errors)]
    elif isinstance(doc, list):
        rows = [_one(d, f"[{i}]", meta, i, errors) for i, d in enumerate(doc)]
    elif isinstance(doc, dict) and "batch" in doc and "specversion" not in doc:
        batch = doc["batch"]
        if not isinstance(batch, list):
            raise ValidationFailed([FieldError("batch", "must be an array of events")])
        context = doc.get("context")
        rows = [segment_event(d, f"batch[{i}]", meta, i, errors, context) for i, d in enumerate(batch)]
    else:
        rows = [_one(doc, "", meta, None, errors)]
    if errors:
        raise ValidationFailed(errors)
    if not rows:
        raise ValidationFailed([FieldError("body", "no events")])
    return with_consent_rows([r for r in rows if r is not None])
