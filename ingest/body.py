"""Reading a request body within the size limits, and decoding it, before any mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson

from ingest.errors import FieldError, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from ingest.formats import CE_BATCH, CONTENT_TYPES

MAX_REQUEST_BYTES = 500 * 1024
MAX_EVENT_BYTES = 32 * 1024
_NUL_ESCAPE = b"\\u0000"


def media_type(header: str | None) -> str:
    """The bare media type of a Content-Type header, or 415."""
    kind = (header or "").split(";", 1)[0].strip().lower()
    if kind not in CONTENT_TYPES:
        shown = kind or "none"
        raise UnsupportedMediaType(
            f"content type {shown} is not accepted; use one of {', '.join(CONTENT_TYPES)}"
        )
    return kind


async def read_capped(
    stream: AsyncIterator[bytes], content_length: str | None, limit: int = MAX_REQUEST_BYTES
) -> bytes:
    """The whole body, refusing (413) as soon as it is known to exceed ``limit`` bytes:
    from Content-Length when sent, else while streaming, never after buffering it all."""
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise PayloadTooLarge(f"request is {int(content_length)} bytes, over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def decode(raw: bytes, content_type: str) -> Any:
    """Parse JSON; check each event's size; refuse NUL characters (PostgreSQL cannot store them)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise ValidationFailed([FieldError("body", f"not valid JSON: {err}")]) from None
    events, prefix = _events_of(doc, content_type)
    if events is None:
        if len(raw) > MAX_EVENT_BYTES:
            raise PayloadTooLarge(
                f"event is {len(raw)} bytes, over the {MAX_EVENT_BYTES}-byte limit per event"
            )
    elif len(raw) > MAX_EVENT_BYTES:  # a smaller body cannot hold an oversized event
        for i, event in enumerate(events):
            size = len(orjson.dumps(event))
            if size > MAX_EVENT_BYTES:
                raise PayloadTooLarge(
                    f"{prefix}[{i}] is {size} bytes, over the {MAX_EVENT_BYTES}-byte limit per event"
                )
    if _NUL_ESCAPE in raw:
        paths = list(_nul_paths(doc, ""))
        if paths:
            raise ValidationFailed(
                [FieldError(p or "body", "contains a NUL character (\\u0000)") for p in paths]
            )
    return doc


def _events_of(doc: Any, content_type: str) -> tuple[list[Any] | None, str]:
    """The events of a batch and how paths name them; None for a single event."""
    if isinstance(doc, list):
        return doc, ""
    if content_type != CE_BATCH and isinstance(doc, dict) and isinstance(doc.get("batch"), list):
        return doc["batch"], "batch"
    return None, ""


def _nul_paths(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, str):
        if "\x00" in value:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                yield child
            else:
                yield from _nul_paths(item, child)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _nul_paths(item, f"{path}[{i}]")
