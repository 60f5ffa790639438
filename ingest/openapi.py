"""The request and response schemas /ingest documents in OpenAPI.

The route reads the raw body itself (signatures cover the exact bytes, and the size limit
applies before parsing), so these schemas describe the accepted documents for clients and
for schemathesis; the checks themselves live in ``ingest.formats``.
"""

from __future__ import annotations

from typing import Any

from ingest.body import MAX_EVENT_BYTES, MAX_REQUEST_BYTES
from ingest.formats import SEGMENT_TYPES
from mca.http_errors import ERROR_SCHEMA

_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}

SEGMENT_EVENT: dict[str, Any] = {
    "type": "object",
    "title": "SegmentEvent",
    "description": "A Segment / RudderStack spec call.",
    "required": ["type", "userId"],
    "properties": {
        "type": {"type": "string", "enum": list(SEGMENT_TYPES)},
        "event": {"type": "string", "description": "track: the event name, stored as event_type."},
        "userId": {"type": "string"},
        "anonymousId": {"type": "string", "description": "The user when userId is absent."},
        "messageId": {"type": "string", "description": "The dedup key."},
        "timestamp": {"type": "string", "format": "date-time"},
        "properties": _OBJECT,
        "traits": _OBJECT,
        "context": _OBJECT,
        "name": {"type": "string"},
    },
}
SEGMENT_BATCH: dict[str, Any] = {
    "type": "object",
    "title": "SegmentBatch",
    "required": ["batch"],
    "properties": {"batch": {"type": "array", "items": SEGMENT_EVENT}, "context": _OBJECT},
}
CLOUD_EVENT: dict[str, Any] = {
    "type": "object",
    "title": "CloudEvent",
    "description": "CloudEvents 1.0, structured JSON mode. source + id is the dedup key.",
    "required": ["specversion", "id", "source", "type", "subject"],
    "properties": {
        "specversion": {"type": "string", "enum": ["1.0"]},
        "id": {"type": "string"},
        "source": {"type": "string", "format": "uri-reference"},
        "type": {"type": "string", "description": "Stored as event_type."},
        "subject": {"type": "string", "description": "The user id."},
        "time": {"type": "string", "format": "date-time"},
        "datacontenttype": {"type": "string"},
        "data": _OBJECT,
    },
}

REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": (
            f"One event or a batch; at most {MAX_REQUEST_BYTES} bytes a request (on the wire and "
            f"decompressed: `Content-Encoding: gzip` is accepted) and {MAX_EVENT_BYTES} bytes an "
            "event, nested at most MCA_INGEST_MAX_DEPTH levels (default 32), no NUL characters. "
            "A batch is all-or-nothing."
        ),
        "content": {
            "application/json": {"schema": {"oneOf": [SEGMENT_EVENT, SEGMENT_BATCH, CLOUD_EVENT]}},
            "application/cloudevents+json": {"schema": CLOUD_EVENT},
            "application/cloudevents-batch+json": {"schema": {"type": "array", "items": CLOUD_EVENT}},
        },
    }
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_SCHEMA}}}


RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Durable: committed to the state store, or acknowledged by Kafka (acks=all).",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["accepted", "duplicates", "event_ids"],
                    "properties": {
                        "accepted": {"type": "integer", "description": "Events stored now."},
                        "duplicates": {
                            "type": ["integer", "null"],
                            "description": "Redeliveries ignored; null when the transport cannot tell.",
                        },
                        "event_ids": {"type": "array", "items": {"type": "string"}},
                    },
                }
            }
        },
    },
    401: _error("Missing credentials, unknown key, or a failed signature check (named)."),
    403: _error("The credential lacks the ingest permission."),
    413: _error("Over 500 KB a request (also once decompressed) or 32 KB an event."),
    415: _error("Unsupported content type or content encoding."),
    422: _error("Invalid events (too deep, NUL, bad field): every one by path; nothing was stored."),
    503: _error("Store or broker did not confirm in time; retry later with the same ids (Retry-After)."),
}
