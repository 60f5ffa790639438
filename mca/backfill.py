"""Backfill: events loaded for the record (history imports, replays) that must never trigger.

A producer marks a whole ``/ingest`` request as backfill with ``?backfill=true`` or the
``X-MCA-Backfill: true`` header. The mark is stored with each event, in ``properties`` under
a reserved key, so it travels every transport (the direct insert, the Kafka topic, the sink,
RisingWave's own connector) and the trigger service reads it from the event itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

BACKFILL_KEY = "_backfill"  # reserved, like the other underscore keys ingest adds (_context, _ce)
BACKFILL_HEADER = "x-mca-backfill"
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no", ""})


def _flag(value: str | None, where: str) -> bool:
    if value is None:
        return False
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{where} must be true or false, not {value[:40]!r}")


def backfill_requested(query_value: str | None, header_value: str | None) -> bool:
    """Whether a request asks to be stored as backfill; ValueError names a malformed flag."""
    from_query = _flag(query_value, "the backfill query parameter")
    from_header = _flag(header_value, "the X-MCA-Backfill header")
    return from_query or from_header


def mark_backfill(rows: Iterable[dict[str, Any]]) -> None:
    for row in rows:
        row["properties"] = {**(row.get("properties") or {}), BACKFILL_KEY: True}


def is_backfill(properties: Mapping[str, Any] | None) -> bool:
    return bool(properties) and properties.get(BACKFILL_KEY) is True  # type: ignore[union-attr]
