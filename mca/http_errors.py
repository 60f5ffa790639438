"""The HTTP boundary of the error hierarchy: every route answers a refusal or a failure in one
JSON envelope (README "Errors"), translated here once.

``install_error_handlers(app)`` maps the hierarchy (`mca.errors`), FastAPI's request validation
and Starlette's HTTPException (unknown route, wrong method) into::

    {"error": {"kind": "bad_input", "message": "...", "field": "batch[3].userId",
               "reason": "required", "errors": [{"field": "batch[3].userId", "reason": "required"}]}}

and documents that envelope in the OpenAPI schema in place of FastAPI's ``HTTPValidationError``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from mca.errors import (
    BadInput,
    Conflict,
    ErrorEnvelope,
    FieldError,
    Forbidden,
    Kind,
    MCAError,
    NotFound,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger("mca.http")

ENVELOPE = "ErrorEnvelope"
# What a route's OpenAPI ``responses`` point at for an error status.
ERROR_SCHEMA: dict[str, Any] = {"$ref": f"#/components/schemas/{ENVELOPE}"}
_VALIDATION_REF = "#/components/schemas/HTTPValidationError"
# Where FastAPI says a parameter came from; the field path starts after it.
_SOURCES = frozenset({"body", "query", "path", "header", "cookie"})
# Statuses the framework itself answers with, as the kind a client should read them as.
_BY_STATUS: dict[int, type[MCAError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    503: Unavailable,
}


def error_response(err: MCAError, status: int | None = None) -> JSONResponse:
    """The envelope of one error, with its kind's status (or ``status``) and its headers (a
    challenge, Retry-After). A Starlette response is an ASGI app too: pure-ASGI middleware
    sends it as it is."""
    status = err.status if status is None else status
    if err.kind in (Kind.INTERNAL, Kind.BAD_CONFIG):  # the operator's to fix, not the caller's
        log.error("%s %s: %s", status, err.kind.value, err)
    return JSONResponse(err.body(), status_code=status, headers=err.headers())


def field_path(loc: Sequence[int | str]) -> str:
    """FastAPI's error location as the path ingest names fields by: ``batch[3].userId``;
    ``body`` for the body as a whole."""
    parts = list(loc[1:] if len(loc) > 1 and loc[0] in _SOURCES else loc)
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def from_validation(exc: RequestValidationError) -> BadInput:
    problems = [FieldError(field_path(e.get("loc", ())), str(e.get("msg", "invalid"))) for e in exc.errors()]
    shown = "; ".join(str(p) for p in problems[:5]) + (" …" if len(problems) > 5 else "")
    return BadInput(shown or "invalid request", errors=problems)


def from_http(exc: HTTPException) -> MCAError:
    """A framework HTTPException (or a route's own) as the kind its status means."""
    detail: Any = exc.detail
    message = detail if isinstance(detail, str) else HTTPStatus(exc.status_code).phrase
    if isinstance(detail, dict) and detail.get("reason"):
        message = str(detail["reason"])
    err: MCAError
    if exc.status_code in _BY_STATUS:
        err = _BY_STATUS[exc.status_code](message)
    elif exc.status_code < 500:
        field = detail.get("field") if isinstance(detail, dict) else None
        err = BadInput(message, field=str(field) if field else None)
    else:
        err = MCAError(message)
    return err


async def _on_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MCAError)
    return error_response(exc)


async def _on_validation(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(from_validation(exc))


async def _on_http(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code < 200 or exc.status_code in (204, 304):  # no body allowed
        return Response(status_code=exc.status_code, headers=exc.headers)
    response = error_response(from_http(exc), exc.status_code)  # the exact status: 405, 413
    response.headers.update(exc.headers or {})
    return response


async def _on_crash(_request: Request, _exc: Exception) -> Response:
    # The traceback is logged by the server; the caller learns nothing of the internals.
    return error_response(MCAError("internal error: see the server log"))


def install_error_handlers(app: FastAPI) -> None:
    """Every route of ``app`` answers errors in the one envelope, documented in its OpenAPI."""
    app.add_exception_handler(MCAError, _on_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(Exception, _on_crash)
    app.openapi = _documented(app, app.openapi)  # type: ignore[method-assign]


def _documented(app: FastAPI, build: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """The app's OpenAPI with the envelope where FastAPI documents its own 422 shape."""

    def openapi() -> dict[str, Any]:
        schema = build()  # FastAPI's own cache: the same dict until the routes change
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        if ENVELOPE not in schemas:
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            envelope = TypeAdapter(ErrorEnvelope).json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(envelope.pop("$defs", {}))
            schemas[ENVELOPE] = envelope
            _point_at_envelope(schema)
        return schema

    return openapi


def _point_at_envelope(node: Any) -> None:
    """Repoint every reference to FastAPI's validation shape at the envelope, in place."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("$ref") == _VALIDATION_REF:
                item["$ref"] = ERROR_SCHEMA["$ref"]
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


__all__ = ["ERROR_SCHEMA", "Kind", "error_response", "field_path", "install_error_handlers"]
