"""`GET /reports/uplift`: the uplift report as JSON (permission `read`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request

from mca.auth import require
from mca.db import Stores
from mca.extension import Extension
from mca.services import Role, Services, shared_or_own
from mca.settings import Settings
from mca.since import parse_since
from measure.assign import Shares
from measure.read import EXPOSURES_SQL, exposure_params

router = APIRouter(tags=["reports"], dependencies=[Depends(require("read"))])


@router.get("/reports/uplift", summary="Intent-to-treat uplift per trigger with 95% intervals.")
async def uplift(
    request: Request,
    trigger: Annotated[str | None, Query(max_length=200)] = None,
    since: str = "30d",
    by: Annotated[str | None, Query(pattern="^(brain|segment)$")] = None,
    holdout: Annotated[float | None, Query(ge=0, le=0.5)] = None,
    control: Annotated[float | None, Query(ge=0, le=0.5)] = None,
) -> dict[str, Any]:
    """The sample-ratio check uses the triggers file's shares; `holdout`/`control` override them."""
    try:
        period = parse_since(since)
    except ValueError as err:
        raise HTTPException(422, detail={"field": "since", "reason": str(err)}) from None
    async with request.app.state.measure_state_pool.connection() as conn:
        cur = await conn.execute(EXPOSURES_SQL, exposure_params(trigger, period))
        rows = await cur.fetchall()
    shares = request.app.state.uplift_shares().overridden(holdout, control)

    def statistics() -> list[dict[str, Any]]:
        # scipy and statsmodels (~100 MiB resident) load with the first report, not with serve;
        # in a thread, so neither that import nor the statistics hold up the event loop.
        from measure.uplift import report

        return [r.as_dict() for r in report(rows, by=by, shares=shares)]

    return {"rows": await asyncio.to_thread(statistics)}


def extension(
    settings: Settings,
    stores: Stores,
    services: Services | None = None,
    *,
    shares: Callable[[], Shares] = Shares,
) -> Extension:
    """With `services` the state pool is the process's; without, the extension owns one.
    `shares` gives the configured group sizes (the composition root's: the triggers file's)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            own = await shared_or_own(services, stack, settings, stores)
            app.state.measure_state_pool = await own.pool(Role.STATE, size=2)
            app.state.uplift_shares = shares
            yield

    return Extension(
        name="measure",
        routers=[router],
        lifespan=lifespan,
        tags=[{"name": "reports", "description": "Whether mca's actions caused anything."}],
    )
