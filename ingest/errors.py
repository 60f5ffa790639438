"""Ingest errors: names and data over the kinds of `mca.errors`, which carry the HTTP status
the gateway answers with; the app renders them once (`mca.http_errors`)."""

from __future__ import annotations

from mca.errors import BadInput, FieldError, MCAError, Unavailable
from mca.errors import Forbidden as Forbidden
from mca.errors import Unauthorized as Unauthorized

__all__ = [
    "FieldError",
    "Forbidden",
    "IngestError",
    "PayloadTooLarge",
    "SinkError",
    "TransportUnavailable",
    "Unauthorized",
    "UnsupportedMediaType",
    "ValidationFailed",
]


class IngestError(MCAError):
    """What a request to /ingest can end in besides a receipt; each one is also one kind."""


class PayloadTooLarge(IngestError, BadInput):
    status = 413


class UnsupportedMediaType(IngestError, BadInput):
    status = 415


class ValidationFailed(IngestError, BadInput):
    """One or more events are invalid; the whole request is rejected (all-or-nothing)."""

    def __init__(self, errors: list[FieldError]) -> None:
        shown = "; ".join(str(e) for e in errors[:5]) + (" …" if len(errors) > 5 else "")
        super().__init__(shown, errors=errors)


class TransportUnavailable(IngestError, Unavailable):
    """The store or the broker did not confirm in time: the client must retry (same ids)."""

    def __init__(self, message: str, retry_after_s: int = 5) -> None:
        super().__init__(message, retry_after_s=retry_after_s)


class SinkError(Unavailable):
    """The Kafka sink worker cannot run (wrong engine, unreachable broker)."""
