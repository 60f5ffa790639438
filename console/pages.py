"""The console's pages: login and logout, Live, Customer, Governance, Experiments, Catalogue."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from console import queries
from console.session import COOKIE, PATH, SESSION_MAX_AGE_S, Viewer, check_csrf, current_viewer, sessions_of
from console.web import home, login_page, templates
from mca.auth import authenticator_of
from mca.clock import system_clock
from mca.limits import MAX_ID_CHARS

router = APIRouter()
Seen = Annotated[Viewer, Depends(current_viewer)]
Filter = Annotated[str | None, Query(max_length=MAX_ID_CHARS)]
MAX_QUERY_CHARS = 500


def page(request: Request, name: str, viewer: Viewer, status: int = 200, **context: Any) -> Response:
    return templates.TemplateResponse(
        request,
        name,
        {"viewer": viewer, "section": name.removesuffix(".html"), **context},
        status_code=status,
    )


def blank(value: str | None) -> str | None:
    return value.strip() or None if value else None


@router.get("/", include_in_schema=False)
async def index(_viewer: Seen) -> Response:
    return home()


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> Response:
    if authenticator_of(request).open:
        return home()
    return templates.TemplateResponse(request, "login.html", login_page(request))


@router.post("/login")
async def login(
    request: Request, key: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = ""
) -> Response:
    sessions = sessions_of(request)
    sessions.check_login_token(csrf)
    cookie, _viewer = sessions.login(authenticator_of(request), key)
    response = home()
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=SESSION_MAX_AGE_S,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(viewer: Seen, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(viewer, csrf)
    response = RedirectResponse(f"{PATH}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PATH)
    return response


@router.get("/live", response_class=HTMLResponse)
async def live(
    request: Request, viewer: Seen, trigger: Filter = None, verdict: Filter = None, user_id: Filter = None
) -> Response:
    now = system_clock()
    filters = {"trigger": blank(trigger), "verdict": blank(verdict), "user_id": blank(user_id)}
    pool = request.app.state.ops_pool
    rows = await queries.feed(pool, now - timedelta(hours=1), filters)
    counts = await queries.counters(pool, now)
    query = urlencode({k: v for k, v in filters.items() if v})
    return page(
        request, "live.html", viewer, rows=rows, counts=counts, filters=filters, since=now.isoformat(),
        stream_query=query,
    )  # fmt: skip


@router.get("/live/counters", response_class=HTMLResponse)
async def live_counters(request: Request, viewer: Seen) -> Response:
    counts = await queries.counters(request.app.state.ops_pool, system_clock())
    return page(request, "_counters.html", viewer, counts=counts)


@router.get("/customers", response_class=HTMLResponse)
async def customer(request: Request, viewer: Seen, user_id: Filter = None) -> Response:
    wanted = blank(user_id)
    if wanted is None:
        return page(request, "customer.html", viewer, user_id=None, found=None)
    found = await queries.customer(request.app.state.state_pool, request.app.state.ops_pool, wanted)
    return page(request, "customer.html", viewer, 200 if found else 404, user_id=wanted, found=found)


@router.get("/governance", response_class=HTMLResponse)
async def governance(request: Request, viewer: Seen) -> Response:
    from mcp_tools import switches
    from mcp_tools.policy import load_policy

    pool = request.app.state.ops_pool
    now = system_clock()
    policy = await asyncio.to_thread(load_policy, request.app.state.settings.guard.policy_file)
    async with pool.connection() as conn:
        states = await switches.status(conn, policy)
    since = now - timedelta(hours=24)
    denials = await queries.fetch(pool, "denials", since=since)
    return page(
        request,
        "governance.html",
        viewer,
        budgets=await queries.fetch(pool, "budgets"),
        caps=await queries.fetch(pool, "cap_pressure"),
        holds=await queries.fetch(pool, "holds"),
        decided=await queries.fetch(pool, "decided_holds"),
        denials=queries.denial_series(denials, since, now),
        switches=states,
    )


@router.get("/governance/audit.csv")
async def audit_csv(
    request: Request, _viewer: Seen, since: Annotated[str, Query(max_length=40)] = "24h"
) -> Response:
    from console.session import ConsoleRefusal
    from mca.db import connect
    from mcp_tools.audit import export, parse_since, rows_since
    from mcp_tools.errors import ToolInputError

    try:
        start = parse_since(since)
    except ToolInputError as err:
        raise ConsoleRefusal(422, f"since: {err}") from None

    def render() -> str:
        out = io.StringIO()
        with connect(request.app.state.ops_url) as conn:
            export(rows_since(conn, start), out, "csv")
        return out.getvalue()

    body = await asyncio.to_thread(render)
    stamp = start.strftime("%Y%m%dT%H%M%SZ")
    return Response(
        body,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="mca-audit-since-{stamp}.csv"'},
    )


@router.get("/experiments", response_class=HTMLResponse)
async def experiments(request: Request, viewer: Seen) -> Response:
    """Uplift per trigger over the last 30 days (the report `mca report uplift` prints)."""
    from measure.read import EXPOSURES_SQL, exposure_params
    from measure.uplift import report

    async with request.app.state.state_pool.connection() as conn:
        cur = await conn.execute(EXPOSURES_SQL, exposure_params(None, timedelta(days=30)))
        rows = await cur.fetchall()
    uplift = report(rows, shares=request.app.state.uplift_shares())
    return page(request, "experiments.html", viewer, rows=uplift, bar=lift_bar)


def lift_bar(low: float, mid: float, high: float, span: float = 0.25) -> dict[str, float]:
    """Where an interval sits on a 0-100 axis from -span to +span (the error bar's geometry)."""

    def at(x: float) -> float:
        return round(50 + 50 * max(-1.0, min(1.0, x / span)), 1)

    return {"low": at(low), "mid": at(mid), "high": at(high)}


@router.get("/catalogue", response_class=HTMLResponse)
async def catalogue(
    request: Request,
    viewer: Seen,
    q: Annotated[str | None, Query(max_length=MAX_QUERY_CHARS)] = None,
    kind: Filter = None,
    category: Filter = None,
    k: Annotated[int, Query(ge=1, le=50)] = 10,
) -> Response:
    from state.catalogue import search_assets

    query = blank(q)
    hits = None
    if query is not None:
        embedder = await embedder_of(request)
        async with request.app.state.state_pool.connection() as conn:
            hits = await search_assets(
                conn, embedder, query, kind=blank(kind), category=blank(category), k=k, now=system_clock()
            )
    form = {"q": query or "", "kind": blank(kind) or "", "category": blank(category) or "", "k": k}
    return page(request, "catalogue.html", viewer, hits=hits, form=form)


async def embedder_of(request: Request) -> Any:
    """The process's embedder, loaded on the first search (it takes a second, and most views need none)."""
    from state.embedding import get_embedder

    settings = request.app.state.settings
    return await asyncio.to_thread(get_embedder, settings.embedding.model, settings.embedding.batch_size)
