"""Reading a request body within the size limits (gunzipping it when sent so), and decoding
it, before any mapping: nesting depth and NUL characters are checked here, once, for every event."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from typing import Any

import orjson

from ingest.errors import FieldError, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from ingest.formats import CE_BATCH, CONTENT_TYPES

MAX_REQUEST_BYTES = 500 * 1024
MAX_EVENT_BYTES = 32 * 1024
_NUL_ESCAPE = b"\\u0000"
NUL_REASON = "contains a NUL character (\\u0000), which the store cannot keep"
DEFAULT_MAX_DEPTH = 32
MAX_PATH_CHARS = 120
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer around deflate


def media_type(header: str | None) -> str:
    """The bare media type of a Content-Type header, or 415."""
    kind = (header or "").split(";", 1)[0].strip().lower()
    if kind not in CONTENT_TYPES:
        shown = kind or "none"
        raise UnsupportedMediaType(
            f"content type {shown} is not accepted; use one of {', '.join(CONTENT_TYPES)}"
        )
    return kind


def content_encoding(header: str | None) -> str | None:
    """``gzip`` or None (identity); any other coding is 415 before the body is read."""
    coding = (header or "").strip().lower()
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip"):
        return "gzip"
    raise UnsupportedMediaType(f"content-encoding {coding} is not accepted; send gzip or no encoding")


class _Gunzip:
    """Incremental gzip decoding that never holds more than ``limit`` decoded bytes: a small
    body that inflates past the limit (a zip bomb) is refused while it inflates."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._inflater = zlib.decompressobj(wbits=_GZIP_WBITS)

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        try:
            while data:
                if self._inflater.eof:  # gzip(1) may concatenate members: start the next one
                    self._inflater = zlib.decompressobj(wbits=_GZIP_WBITS)
                piece = self._inflater.decompress(data, self.limit - self.size + 1)
                self.size += len(piece)
                if self.size > self.limit:
                    raise PayloadTooLarge(f"request is over the {self.limit}-byte limit once decompressed")
                out.append(piece)
                data = self._inflater.unconsumed_tail or self._inflater.unused_data
        except zlib.error as err:
            raise ValidationFailed([FieldError("body", f"not valid gzip: {err}")]) from None
        return b"".join(out)

    def finish(self) -> None:
        if not self._inflater.eof:
            raise ValidationFailed([FieldError("body", "the gzip stream is truncated")])


async def read_capped(
    stream: AsyncIterator[bytes],
    content_length: str | None,
    limit: int = MAX_REQUEST_BYTES,
    encoding: str | None = None,
) -> bytes:
    """The whole body, decoded, refusing (413) as soon as it is known to exceed ``limit``
    bytes on the wire or once decompressed: from Content-Length when sent, else while
    streaming, never after buffering it all."""
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise PayloadTooLarge(f"request is {int(content_length)} bytes, over the {limit}-byte limit")
    gunzip = _Gunzip(limit) if encoding == "gzip" else None
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request is over the {limit}-byte limit")
        chunks.append(chunk if gunzip is None else gunzip.feed(chunk))
    if gunzip is not None:
        gunzip.finish()
    return b"".join(chunks)


def decode(raw: bytes, content_type: str, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parse JSON; check each event's size and nesting depth; refuse NUL characters
    (PostgreSQL jsonb cannot store them)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise ValidationFailed([FieldError("body", f"not valid JSON: {err}")]) from None
    events, prefix = _events_of(doc, content_type)
    # Shape before size: measuring an event serialises it, which too deep a one cannot survive.
    nul = _NUL_ESCAPE in raw
    if nul or not within_depth(doc, max_depth):  # the cheap check first; paths only when needed
        errors = shape_errors(_roots(doc, events, prefix), max_depth, nul=nul)
        if errors:
            raise ValidationFailed(errors)
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
    return doc


def _events_of(doc: Any, content_type: str) -> tuple[list[Any] | None, str]:
    """The events of a batch and how paths name them; None for a single event."""
    if isinstance(doc, list):
        return doc, ""
    if content_type != CE_BATCH and isinstance(doc, dict) and isinstance(doc.get("batch"), list):
        return doc["batch"], "batch"
    return None, ""


def _roots(doc: Any, events: list[Any] | None, prefix: str) -> list[tuple[Any, str]]:
    """What depth is counted from: each event, and a batch's other keys (its shared context)."""
    if events is None:
        return [(doc, "")]
    roots = [(event, f"{prefix}[{i}]") for i, event in enumerate(events)]
    if isinstance(doc, dict):
        roots.append(({k: v for k, v in doc.items() if k != "batch"}, ""))
    return roots


def within_depth(doc: Any, max_depth: int) -> bool:
    """Whether nothing in ``doc`` (level 1) is nested deeper than ``max_depth``: one list
    comprehension per level, no recursion, a fraction of the time orjson took to parse it.
    A batch counts its wrapper levels here, so a deep but legal batch gets the exact walk."""
    level = [doc] if type(doc) is dict or type(doc) is list else []
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            return False
        level = [
            item
            for container in level
            for item in (container.values() if type(container) is dict else container)
            if type(item) is dict or type(item) is list
        ]
    return True


def shape_errors(roots: list[tuple[Any, str]], max_depth: int, *, nul: bool) -> list[FieldError]:
    """Containers nested deeper than ``max_depth`` (the root is level 1) and, when ``nul``,
    strings and keys holding NUL, by path. Iterative: untrusted depth never meets Python's
    recursion limit, and paths are only spelled out for what is reported."""
    errors: list[FieldError] = []
    # (parent node, segment) per container seen; a path is rebuilt from these on error.
    nodes: list[tuple[int, str]] = []
    stack: list[tuple[Any, int, int]] = []
    for value, path in roots:
        if isinstance(value, dict | list):
            nodes.append((-1, path))
            stack.append((value, 1, len(nodes) - 1))
        elif nul and isinstance(value, str) and "\x00" in value:
            errors.append(FieldError(path or "body", NUL_REASON))
    while stack:
        container, depth, node = stack.pop()
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, item in items:
            segment = f"[{key}]" if isinstance(key, int) else f".{key}"
            if nul and isinstance(key, str) and "\x00" in key:
                errors.append(FieldError(_path(nodes, node, segment), NUL_REASON))
            elif isinstance(item, dict | list):
                if depth + 1 > max_depth:
                    errors.append(FieldError(_path(nodes, node, segment), _too_deep(max_depth)))
                    continue
                nodes.append((node, segment))
                stack.append((item, depth + 1, len(nodes) - 1))
            elif nul and isinstance(item, str) and "\x00" in item:
                errors.append(FieldError(_path(nodes, node, segment), NUL_REASON))
    return errors


def _too_deep(max_depth: int) -> str:
    return f"nested more than {max_depth} levels deep (MCA_INGEST_MAX_DEPTH)"


def _path(nodes: list[tuple[int, str]], node: int, last: str) -> str:
    segments = [last]
    while node >= 0:
        node, segment = nodes[node]
        segments.append(segment)
    return short_path("".join(reversed(segments)).lstrip("."))


def short_path(path: str) -> str:
    """A path a person can read: a very deep one keeps its head and its last segment."""
    if len(path) <= MAX_PATH_CHARS:
        return path
    cut = max(path.rfind(".", 0, MAX_PATH_CHARS // 2), path.rfind("[", 0, MAX_PATH_CHARS // 2))
    head = path[: cut if cut > 0 else MAX_PATH_CHARS // 2]
    tail = max(path.rfind("."), path.rfind("["))
    return f"{head}…{path[tail:][:40]}"
