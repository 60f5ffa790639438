"""`GET /console/live/stream`: the Live feed as server-sent events, one rendered table row each.

The ops store has no change stream the console could share (LISTEN/NOTIFY is not on
RisingWave's side of the house, and decisions carry no sequence), so each stream polls the
feed query. A row's time is set shortly before its transaction commits, so every poll reads
back OVERLAP seconds and rows already sent are skipped by id; the page skips rows it already
shows (static/console.js), so a row appears once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from console import queries
from console.pages import Filter, blank
from console.session import Viewer, current_viewer
from console.web import templates
from mca.clock import system_clock

router = APIRouter()
POLL_S = 0.2
OVERLAP = timedelta(seconds=2)
# A stream ends after this long; EventSource reconnects by itself, and no stream outlives a
# session it was opened under by more than this.
STREAM_LIFETIME_S = 300.0


def render_row(row: dict[str, Any]) -> str:
    return templates.get_template("_feed_row.html").render(row=row)


async def rows_after(
    pool: Any, since: datetime, filters: dict[str, str | None], stop: asyncio.Event
) -> AsyncIterator[dict[str, Any]]:
    """Feed rows newer than `since`, oldest first, each once, until `stop`."""
    seen: dict[str, datetime] = {}
    cursor = since
    while not stop.is_set():
        rows = await queries.feed(pool, cursor - OVERLAP, filters)
        for row in sorted(rows, key=lambda r: r["at"]):
            if row["item_id"] not in seen and row["at"] > since:
                seen[row["item_id"]] = row["at"]
                yield row
        if rows:
            cursor = max(cursor, max(r["at"] for r in rows))
        seen = {k: at for k, at in seen.items() if at > cursor - OVERLAP}
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POLL_S)


@router.get("/live/stream")
async def stream(
    request: Request,
    _viewer: Annotated[Viewer, Depends(current_viewer)],
    since: Annotated[datetime | None, Query()] = None,
    trigger: Filter = None,
    verdict: Filter = None,
    user_id: Filter = None,
) -> EventSourceResponse:
    start = since or system_clock()
    filters = {"trigger": blank(trigger), "verdict": blank(verdict), "user_id": blank(user_id)}
    pool = request.app.state.ops_pool
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.call_later(STREAM_LIFETIME_S, stop.set)

    async def events() -> AsyncIterator[ServerSentEvent]:
        try:
            async for row in rows_after(pool, start, filters, stop):
                if await request.is_disconnected():
                    break
                yield ServerSentEvent(render_row(row), event="item", id=row["item_id"])
        finally:
            stop.set()

    return EventSourceResponse(events(), ping=15)
