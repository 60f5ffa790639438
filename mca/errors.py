"""The one error hierarchy, by kind. Foreign errors (psycopg, subprocess, SDKs) are translated
into these where they are caught; each boundary renders them once: the HTTP app as one JSON
envelope (`mca.http_errors`), the CLI as one line and the kind's exit code (`mca.cli.main`).

Every package error subclasses exactly one kind; the package modules (`ingest.errors`,
`agent.errors`, `mcp_tools.errors`) only add names and data, never a status or an exit code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, NotRequired

# pydantic documents the envelope from these (OpenAPI); on Python 3.11 it needs this TypedDict.
from typing_extensions import TypedDict

# The challenge a 401 answers with: the two credential forms every route accepts (mca.auth).
CHALLENGE = 'Bearer, Basic realm="mca"'


class Kind(StrEnum):
    """What went wrong, as the envelope's ``kind`` names it."""

    INTERNAL = "internal"
    BAD_INPUT = "bad_input"
    BAD_CONFIG = "bad_config"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    UNAVAILABLE = "unavailable"


class FieldProblem(TypedDict):
    field: str
    reason: str


class ErrorBody(TypedDict):
    kind: Kind
    message: str
    field: NotRequired[str]
    reason: NotRequired[str]
    errors: NotRequired[list[FieldProblem]]


class ErrorEnvelope(TypedDict):
    """What every HTTP route answers when it refuses or fails (README "Errors")."""

    error: ErrorBody


@dataclass(frozen=True)
class FieldError:
    """One field at fault: its path in the input (``batch[3].userId``, ``body``) and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class MCAError(Exception):
    """Root of every error mca raises on purpose. Raised bare, it is an internal error.

    Any kind may name the fields at fault (``field`` and ``reason``, or ``errors`` for
    several): bad input always does, a lookup may (the id that named nothing)."""

    kind: ClassVar[Kind] = Kind.INTERNAL
    status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __init__(
        self,
        message: str = "",
        *,
        field: str | None = None,
        reason: str | None = None,
        errors: list[FieldError] | None = None,
    ) -> None:
        super().__init__(message)
        self.errors = list(errors or [])
        if field is not None:
            self.errors.insert(0, FieldError(field, reason or message))

    @property
    def field(self) -> str | None:
        return self.errors[0].path if self.errors else None

    def body(self) -> ErrorEnvelope:
        detail: ErrorBody = {"kind": self.kind, "message": str(self)}
        if self.errors:
            detail["field"], detail["reason"] = self.errors[0].path, self.errors[0].reason
            detail["errors"] = [{"field": e.path, "reason": e.reason} for e in self.errors]
        return {"error": detail}

    def headers(self) -> dict[str, str]:
        return {}


class BadInput(MCAError):
    """The caller's input is wrong: names each field at fault (its path) and the reason.
    Nothing was changed."""

    kind = Kind.BAD_INPUT
    status = 422


class BadConfig(MCAError):
    """Settings or a config file are wrong: the operator must fix them (a usage error, so
    the CLI exits 2 as for a bad option)."""

    kind = Kind.BAD_CONFIG
    status = 500
    exit_code = 2


class Refused(MCAError):
    """The caller may not do this: who they are (401) or what they may do (403)."""


class Unauthorized(Refused):
    """No credentials, unknown ones, or a signature check that failed."""

    kind = Kind.UNAUTHORIZED
    status = 401

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": CHALLENGE}


class Forbidden(Refused):
    """Known credentials without the permission the route needs."""

    kind = Kind.FORBIDDEN
    status = 403


class NotFound(MCAError):
    """The thing named (a decision, a held action) does not exist."""

    kind = Kind.NOT_FOUND
    status = 404


class Conflict(MCAError):
    """The request disagrees with the state it meets (a changed migration, a wrong engine)."""

    kind = Kind.CONFLICT
    status = 409


class Unavailable(MCAError):
    """A dependency (a store, a broker, a provider) did not answer: try again later."""

    kind = Kind.UNAVAILABLE
    status = 503

    def __init__(self, message: str = "", *, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}


# The names the core's modules raise.
ConfigError = BadConfig
InputError = BadInput


class SettingsInvalid(BadConfig):
    """An environment setting does not parse (one line per variable)."""


class DatabaseUnreachable(Unavailable):
    """A store URL could not be reached or spoke an engine we do not know."""


class EmbeddedServerError(Unavailable):
    """The embedded PostgreSQL could not be started, stopped or inspected."""


class MigrationError(Conflict):
    """A migration failed, or an applied migration file changed: schema and repository disagree."""
