"""One error hierarchy by kind, translated once at each boundary: the HTTP app answers every
refusal in one JSON envelope, the CLI prints one line and exits with the kind's code."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
from fastapi import APIRouter, Query
from fastapi.testclient import TestClient
from pydantic import BaseModel

from agent.errors import DecisionNotFound, ModelAuthError, ModelTimeout, TriggerConfigError
from ingest.errors import PayloadTooLarge, TransportUnavailable, ValidationFailed
from mca import cli
from mca.app import create_app
from mca.db import Stores
from mca.errors import (
    BadConfig,
    BadInput,
    Conflict,
    DatabaseUnreachable,
    FieldError,
    Forbidden,
    Kind,
    MCAError,
    MigrationError,
    NotFound,
    SettingsInvalid,
    Unauthorized,
    Unavailable,
)
from mca.extension import Extension
from mca.http_errors import field_path
from mca.settings import Settings
from mcp_tools.errors import PolicyError, RetryableDelivery, ToolInputError

# Each kind: its HTTP status and its CLI exit code.
KINDS: list[tuple[type[MCAError], Kind, int, int]] = [
    (MCAError, Kind.INTERNAL, 500, 1),
    (BadInput, Kind.BAD_INPUT, 422, 1),
    (BadConfig, Kind.BAD_CONFIG, 500, 2),
    (Unauthorized, Kind.UNAUTHORIZED, 401, 1),
    (Forbidden, Kind.FORBIDDEN, 403, 1),
    (NotFound, Kind.NOT_FOUND, 404, 1),
    (Conflict, Kind.CONFLICT, 409, 1),
    (Unavailable, Kind.UNAVAILABLE, 503, 1),
]


def test_every_package_error_is_one_kind() -> None:
    kinds = {base: kind for base, kind, _, _ in KINDS}
    for err, base in [
        (SettingsInvalid, BadConfig),
        (DatabaseUnreachable, Unavailable),
        (MigrationError, Conflict),
        (ValidationFailed, BadInput),
        (PayloadTooLarge, BadInput),
        (TransportUnavailable, Unavailable),
        (TriggerConfigError, BadConfig),
        (ModelAuthError, BadConfig),
        (ModelTimeout, Unavailable),
        (DecisionNotFound, NotFound),
        (PolicyError, BadConfig),
        (ToolInputError, BadInput),
        (RetryableDelivery, Unavailable),
    ]:
        bases = [k for k in kinds if k is not MCAError and issubclass(err, k)]
        assert bases == [base], (err, bases)
        assert err.kind is kinds[base], err


class Change(BaseModel):
    on: bool
    reason: str


def _app(tmp_path: Path) -> TestClient:
    router = APIRouter()

    @router.get("/raise/{name}")
    def raise_kind(name: str) -> None:
        raise {cls.__name__: cls for cls, *_ in KINDS}[name](f"a {name}")

    @router.post("/ingestish")
    def ingestish() -> None:
        raise ValidationFailed([FieldError("batch[3].userId", "required"), FieldError("body", "too big")])

    @router.get("/busy")
    def busy() -> None:
        raise TransportUnavailable("broker did not confirm", retry_after_s=7)

    @router.post("/validated")
    def validated(change: Change, limit: Annotated[int, Query(ge=1)] = 5) -> None:
        return None

    @router.get("/tool")
    def tool() -> None:
        raise ToolInputError("unknown_user", "no customer u9", field="user_id")

    @router.get("/crash")
    def crash() -> None:
        raise RuntimeError("secret internals")

    url = "postgresql://unused@127.0.0.1:1/none"
    settings = Settings(state_url=url, ops_url=url, data_dir=tmp_path)
    app = create_app(settings, Stores(url, url), [Extension(name="t", routers=[router])])
    return TestClient(app, raise_server_exceptions=False)


def test_every_kind_answers_the_one_envelope(tmp_path: Path) -> None:
    client = _app(tmp_path)
    for cls, kind, status, _ in KINDS:
        got = client.get(f"/raise/{cls.__name__}")
        assert got.status_code == status, (cls, got.text)
        assert got.json() == {"error": {"kind": kind.value, "message": f"a {cls.__name__}"}}
    assert client.get("/raise/Unauthorized").headers["www-authenticate"].startswith("Bearer")

    several = client.post("/ingestish").json()["error"]
    assert several["kind"] == "bad_input" and (several["field"], several["reason"]) == (
        "batch[3].userId",
        "required",
    )
    assert several["errors"] == [
        {"field": "batch[3].userId", "reason": "required"},
        {"field": "body", "reason": "too big"},
    ]
    busy = client.get("/busy")
    assert busy.status_code == 503 and busy.headers["retry-after"] == "7"
    assert busy.json()["error"] == {"kind": "unavailable", "message": "broker did not confirm"}
    tool = client.get("/tool").json()["error"]
    assert (tool["field"], tool["reason"]) == ("user_id", "no customer u9")


def test_framework_errors_answer_the_same_envelope(tmp_path: Path) -> None:
    client = _app(tmp_path)
    invalid = client.post("/validated?limit=0", json={"on": "maybe"})
    assert invalid.status_code == 422
    error = invalid.json()["error"]
    assert error["kind"] == "bad_input"
    assert {e["field"] for e in error["errors"]} == {"on", "reason", "limit"}
    assert (error["field"], error["reason"]) == (error["errors"][0]["field"], error["errors"][0]["reason"])
    assert client.post("/validated", content=b"{").json()["error"]["kind"] == "bad_input"

    missing = client.get("/nowhere")
    assert missing.status_code == 404 and missing.json() == {
        "error": {"kind": "not_found", "message": "Not Found"}
    }
    wrong = client.delete("/busy")
    assert wrong.status_code == 405 and wrong.json()["error"]["kind"] == "bad_input"
    assert "allow" in wrong.headers
    crash = client.get("/crash")
    assert crash.status_code == 500 and "secret" not in crash.text
    assert crash.json()["error"]["kind"] == "internal"


def test_openapi_documents_the_envelope(tmp_path: Path) -> None:
    schema = _app(tmp_path).get("/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    envelope = schema["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["required"] == ["error"]
    refs = schema["paths"]["/validated"]["post"]["responses"]["422"]["content"]["application/json"]["schema"]
    assert refs == {"$ref": "#/components/schemas/ErrorEnvelope"}


def test_field_paths_read_like_ingest_paths() -> None:
    assert field_path(("body", "batch", 3, "userId")) == "batch[3].userId"
    assert field_path(("query", "limit")) == "limit"
    assert field_path(("body",)) == "body"


@pytest.mark.parametrize(("cls", "exit_code"), [(cls, code) for cls, _, _, code in KINDS])
def test_the_cli_exits_with_the_kind_code(
    cls: type[MCAError], exit_code: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def command() -> None:
        raise cls("first line\nsecond line")

    monkeypatch.setattr(cli, "app", command)
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == exit_code
    assert capsys.readouterr().err.splitlines() == ["error: first line", "error: second line"]
