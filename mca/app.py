"""The one HTTP application `mca serve` runs (FastAPI on uvicorn): the composition root's app factory.

Each package contributes an ``Extension`` (`mca.extension`) from its ``web`` module; this
module imports them directly and assembles them in order: ingest, the agent, the tools.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from mca.auth import Authenticator
from mca.db import Stores
from mca.extension import Extension
from mca.http_errors import install_error_handlers
from mca.services import Services
from mca.settings import Settings


def default_extensions(
    settings: Settings, stores: Stores, services: Services | None = None
) -> list[Extension]:
    """Every package's part of the app, in the order their lifespans must start; all of them on
    the one `services` container when given (`create_app` gives its own)."""
    from agent.shares import configured_shares
    from agent.web import extension as agent_extension
    from console.web import extension as console_extension
    from ingest.web import extension as ingest_extension
    from mcp_tools.web import extension as tools_extension
    from measure.web import extension as measure_extension

    shares = configured_shares(settings)  # one reading of the triggers file for both pages
    return [
        ingest_extension(settings, stores, services),
        agent_extension(settings, stores, services),
        tools_extension(settings, stores, services),
        console_extension(settings, stores, services, shares=shares),
        measure_extension(settings, stores, services, shares=shares),
    ]


# A server's cyclic GC: collect the young generation less often, and freeze everything that
# exists once start-up is done, so full collections no longer walk the whole framework heap.
GC_THRESHOLDS = (20_000, 20, 20)


def gc_tuning() -> Extension:
    """For `mca serve` (one process, long-lived), not for tests that build many apps:
    on /ingest, full collections otherwise stall requests and raise the p99 (bench/bench_ingest.py)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        gc.collect()
        gc.freeze()
        previous = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            yield
        finally:
            gc.set_threshold(*previous)
            gc.unfreeze()

    return Extension(name="gc", lifespan=lifespan)


def create_app(
    settings: Settings,
    stores: Stores,
    extensions: Sequence[Extension] | None = None,
    *,
    services: Services | None = None,
    extra: Sequence[Extension] = (),
) -> FastAPI:
    """The app with every extension (every package's, on one services container, when None is
    given; `extra` go after them). A `services` passed in belongs to the caller (the demo shares
    it with its workers); else the app owns one and closes its pools at shutdown
    (``app.state.services``).
    One ``Authenticator`` (``app.state.auth``) serves every route; routes ask for a permission
    with ``Depends(mca.auth.require(...))`` and refusals render in one shape."""
    auth = Authenticator(settings)  # bad credentials settings fail here, at start-up
    owned = services is None
    container = Services(settings, stores) if services is None else services
    chosen = default_extensions(settings, stores, container) if extensions is None else extensions
    parts = [*chosen, *extra]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if owned:  # closed last: every extension's lifespan has left by then
                stack.push_async_callback(container.aclose)
            for part in parts:
                if part.lifespan is not None:
                    await stack.enter_async_context(part.lifespan(app))
            yield

    app = FastAPI(
        title="mca",
        summary="Marketing Control Agent: event ingest, decisions and action tools.",
        version="0.1.0",
        lifespan=lifespan,
        openapi_tags=[tag for part in parts for tag in part.tags],
    )
    app.state.settings = settings
    app.state.stores = stores
    app.state.services = container
    app.state.auth = auth
    install_error_handlers(app)  # one JSON error envelope for every route (README "Errors")

    @app.get("/healthz", tags=["health"], summary="The process is alive.")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Every dependency (stores, broker) is reachable.")
    async def readyz() -> JSONResponse:
        problems = [p for part in parts for check in part.ready_checks if (p := await check(app))]
        if problems:
            return JSONResponse({"status": "not ready", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    for part in parts:
        for router in part.routers:
            app.include_router(router)
        for path, sub_app in part.mounts:
            app.mount(path, sub_app)
    return app
