"""POST /ingest, and the ingest part of the app (extension for ``mca.app.create_app``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from fastapi import APIRouter, FastAPI, Request, Response

from ingest.auth import IngestAuth
from ingest.body import content_encoding, decode, media_type, read_capped
from ingest.direct import open_direct
from ingest.errors import FieldError, ValidationFailed
from ingest.formats import RequestMeta, Row, to_rows
from ingest.kafka_transport import KafkaTransport
from ingest.openapi import REQUEST_BODY, RESPONSES
from ingest.receipts import Attribution, Receipts
from ingest.transport import Receipt, Transport
from mca.auth import authenticator_of
from mca.backfill import BACKFILL_HEADER, backfill_requested, mark_backfill
from mca.db import Stores
from mca.extension import Extension
from mca.services import Role, Services, shared_or_own
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


@router.post(
    "/webhooks/twilio",
    status_code=202,
    summary="Twilio status callbacks (X-Twilio-Signature verified) as message outcome events.",
    response_class=Response,
)
async def twilio_status(request: Request) -> Response:
    return await _receive(request, lambda r, raw: r.twilio_rows(request.headers, str(request.url), raw))


@router.post(
    "/webhooks/receipts",
    status_code=202,
    summary="Provider receipts signed the Standard Webhooks way, as outcome events.",
    response_class=Response,
)
async def signed_receipt(request: Request) -> Response:
    return await _receive(request, lambda r, raw: r.generic_rows(request.headers, raw))


MapReceipt = Callable[[Receipts, bytes], Awaitable[tuple[list[Row], Attribution]]]


async def _receive(request: Request, to_rows_of: MapReceipt) -> Response:
    """Read, verify and map a receipt (``to_rows_of``), then write it like /ingest does; the
    answer adds the attribution, so a sender sees an unattributed outcome."""
    # Refusals (bad signature, bad body, the store down) are errors of the one hierarchy: the
    # app's handlers answer them in the one envelope.
    raw = await read_capped(request.stream(), request.headers.get("content-length"))
    rows, found = await to_rows_of(request.app.state.receipts, raw)
    receipt: Receipt = await request.app.state.ingest.transport.write(rows)
    body = {
        "accepted": receipt.accepted,
        "duplicates": receipt.duplicates,
        "event_ids": receipt.event_ids,
        **found.properties(),
    }
    return Response(orjson.dumps(body), status_code=202, media_type="application/json")


def _backfill(request: Request) -> bool:
    """A batch marked backfill (history, replays) is stored but never triggers the agent."""
    try:
        return backfill_requested(request.query_params.get("backfill"), request.headers.get(BACKFILL_HEADER))
    except ValueError as err:
        raise ValidationFailed([FieldError("backfill", str(err))]) from None


async def build_transport(settings: Settings, app: FastAPI) -> Transport:
    if settings.kafka.transport == "kafka":
        return KafkaTransport(
            settings.kafka.brokers, settings.kafka.topic, ack_timeout_s=settings.kafka.ack_timeout_s
        )
    return await open_direct(app.state.ingest_pool, app.state.stores.state_url)


def extension(settings: Settings, stores: Stores, services: Services | None = None) -> Extension:
    """With `services` the state pool is the process's; without, the extension owns one."""
    auth = IngestAuth(settings)  # bad secrets fail here, at start-up, not per request

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            own = await shared_or_own(services, stack, settings, stores)
            # Autocommit: the direct transport's common case is one statement, committed by
            # itself; what needs more (counting duplicates, savepoints) opens a transaction.
            app.state.ingest_pool = await own.pool(Role.STATE, autocommit=True, size=POOL_SIZE)
            # Receipts resolve their decision in the ops store (outbox, decisions).
            app.state.receipts = Receipts(
                settings, await own.pool(Role.OPS, size=2), settings.http.ingest_max_depth
            )
            transport = await build_transport(settings, app)
            await transport.start()
            stack.push_async_callback(transport.close)
            app.state.ingest = IngestState(auth, transport, settings.http.ingest_max_depth)
            yield

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
