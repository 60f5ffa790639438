"""Ingest errors. Each carries the HTTP status the gateway answers with, so the route layer
translates them in one place and nothing else in the package knows about HTTP."""

from __future__ import annotations

from dataclasses import dataclass

# Refused credentials are one kind for every route (mca.auth), rendered in the same shape.
from mca.auth import Forbidden as Forbidden
from mca.auth import Unauthorized as Unauthorized
from mca.errors import MCAError


class IngestError(MCAError):
    status = 400

    def body(self) -> dict[str, object]:
        return {"error": type(self).__name__, "detail": str(self)}


class PayloadTooLarge(IngestError):
    status = 413


class UnsupportedMediaType(IngestError):
    status = 415


@dataclass(frozen=True)
class FieldError:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class ValidationFailed(IngestError):
    """One or more events are invalid; the whole request is rejected (all-or-nothing)."""

    status = 422

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors[:5]) + (" …" if len(errors) > 5 else ""))

    def body(self) -> dict[str, object]:
        return {
            "error": "ValidationFailed",
            "detail": "nothing from this request was stored",
            "errors": [{"path": e.path, "reason": e.reason} for e in self.errors],
        }


class TransportUnavailable(IngestError):
    """The store or the broker did not confirm in time: the client must retry (same ids)."""

    status = 503

    def __init__(self, message: str, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class SinkError(MCAError):
    """The Kafka sink worker cannot run (wrong engine, unreachable broker)."""
