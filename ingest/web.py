"""POST /ingest, and the ingest part of the app (extension for ``mca.app.create_app``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from fastapi import APIRouter, FastAPI, Request, Response

from ingest.auth import IngestAuth
from ingest.body import content_encoding, decode, media_type, read_capped
from ingest.direct import open_direct
from ingest.errors import FieldError, ValidationFailed
from ingest.formats import RequestMeta, to_rows
from ingest.kafka_transport import KafkaTransport
from ingest.openapi import REQUEST_BODY, RESPONSES
from ingest.transport import Transport
from mca.auth import authenticator_of
from mca.backfill import BACKFILL_HEADER, backfill_requested, mark_backfill
from mca.db import Stores, open_pool
from mca.extension import Extension
from mca.settings import Settings

router = APIRouter(tags=["ingest"])
POOL_SIZE = 4


@dataclass
class IngestState:
    auth: IngestAuth
    transport: Transport
    max_depth: int


@router.post(
    "/ingest",
    status_code=202,
    summary="Accept Segment / RudderStack or CloudEvents 1.0 events (single or batch).",
    openapi_extra=REQUEST_BODY,
    responses=RESPONSES,
    response_class=Response,
)
async def ingest(request: Request) -> Response:
    state: IngestState = request.app.state.ingest
    headers = request.headers
    # Every refusal below is an mca.errors kind, rendered once by the app (mca.http_errors).
    signed = state.auth.signed(headers)
    if not signed:
        state.auth.check_headers(authenticator_of(request), headers)
    backfill = _backfill(request)
    kind = media_type(headers.get("content-type"))
    encoding = content_encoding(headers.get("content-encoding"))
    raw = await read_capped(request.stream(), headers.get("content-length"), encoding=encoding)
    if signed:  # the sender signed the content, before any transfer encoding
        state.auth.check_signature(headers, raw)
    doc = decode(raw, kind, state.max_depth)
    meta = RequestMeta(received_at=datetime.now(UTC), webhook_id=headers.get("webhook-id"))
    rows = to_rows(kind, doc, meta)
    if backfill:
        mark_backfill(rows)
    receipt = await state.transport.write(rows)
    body = {"accepted": receipt.accepted, "duplicates": receipt.duplicates, "event_ids": receipt.event_ids}
    return Response(orjson.dumps(body), status_code=202, media_type="application/json")


def _backfill(request: Request) -> bool:
    """A batch marked backfill (history, replays) is stored but never triggers the agent."""
    try:
        return backfill_requested(request.query_params.get("backfill"), request.headers.get(BACKFILL_HEADER))
    except ValueError as err:
        raise ValidationFailed([FieldError("backfill", str(err))]) from None


async def build_transport(settings: Settings, app: FastAPI) -> Transport:
    if settings.transport == "kafka":
        return KafkaTransport(
            settings.kafka_brokers, settings.kafka_topic, ack_timeout_s=settings.kafka_ack_timeout_s
        )
    return await open_direct(app.state.ingest_pool, app.state.stores.state_url)


def extension(settings: Settings, stores: Stores) -> Extension:
    auth = IngestAuth(settings)  # bad secrets fail here, at start-up, not per request

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await open_pool(stores.state_url, min_size=1, max_size=POOL_SIZE, name="ingest")
        app.state.ingest_pool = pool
        try:
            transport = await build_transport(settings, app)
            await transport.start()
            app.state.ingest = IngestState(auth, transport, settings.ingest_max_depth)
            try:
                yield
            finally:
                await transport.close()
        finally:
            await pool.close()

    async def ready(app: FastAPI) -> str | None:
        state: IngestState | None = getattr(app.state, "ingest", None)
        if state is None:
            return "ingest is starting"
        problem = await _ping_store(app)
        if problem is None and state.transport.name == "kafka":
            problem = await state.transport.ready()
        return problem

    return Extension(
        name="ingest",
        routers=[router],
        lifespan=lifespan,
        ready_checks=[ready],
        tags=[{"name": "ingest", "description": "The door: events in, durable before 202."}],
    )


async def _ping_store(app: FastAPI) -> str | None:
    try:
        async with app.state.ingest_pool.connection(timeout=2) as conn:
            await conn.execute("SELECT 1")
    except Exception as err:
        return f"state store unreachable: {str(err).strip()[:200] or type(err).__name__}"
    return None
