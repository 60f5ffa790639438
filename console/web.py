"""The console's part of the HTTP app (see `mca.app`): a sub-application mounted at /console.

It is its own FastAPI app so that its refusals render as pages (not the API's JSON), its
static files sit beside it and it adds nothing to the API's OpenAPI document. The parent's
lifespan (this extension's) opens its pools and hands it the one authenticator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from agent.shares import configured_shares
from console.session import COOKIE, PATH, ConsoleRefusal, Sessions
from mca.db import Stores
from mca.extension import Extension
from mca.services import Role, Services, shared_or_own
from mca.settings import Settings
from measure.assign import Shares

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
# Pages carry no inline script and load nothing from elsewhere: the console works offline.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def build_console(settings: Settings) -> FastAPI:
    from console.actions import router as actions_router
    from console.live import router as live_router
    from console.pages import router as pages_router

    sub = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    sub.state.settings = settings
    sub.state.console_sessions = Sessions(settings)
    sub.add_exception_handler(ConsoleRefusal, refused)
    for router in (pages_router, live_router, actions_router):
        sub.include_router(router)
    sub.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @sub.middleware("http")
    async def headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        if not request.url.path.startswith(f"{PATH}/static"):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
        return response

    return sub


async def refused(request: Request, err: Exception) -> Response:
    assert isinstance(err, ConsoleRefusal)
    if err.login and request.method == "GET" and "text/event-stream" not in request.headers.get("accept", ""):
        response: Response = templates.TemplateResponse(
            request, "login.html", login_page(request, err.reason), status_code=err.status
        )
    else:
        response = templates.TemplateResponse(
            request, "refused.html", {"reason": err.reason, "viewer": None}, status_code=err.status
        )
    if err.login:
        response.delete_cookie(COOKIE, path=PATH)
        if request.headers.get("hx-request"):  # a fragment poll: send the whole tab to the login page
            response.headers["HX-Redirect"] = f"{PATH}/login"
    return response


def login_page(request: Request, problem: str | None = None) -> dict[str, object]:
    sessions: Sessions = request.app.state.console_sessions
    return {"viewer": None, "problem": problem, "login_csrf": sessions.login_token()}


def extension(
    settings: Settings,
    stores: Stores,
    services: Services | None = None,
    *,
    shares: Callable[[], Shares] | None = None,
) -> Extension:
    """With `services` the pools are the process's; without, the extension owns its own.
    `shares`: the triggers file's group sizes, as the app reads them (else read here)."""
    sub = build_console(settings)
    # The experiments page checks group sizes against the triggers file's shares.
    sub.state.uplift_shares = shares or configured_shares(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from mcp_tools.runtime import Runtime

        sub.state.auth = app.state.auth
        async with AsyncExitStack() as stack:
            own = await shared_or_own(services, stack, settings, stores)
            sub.state.ops_pool = await own.pool(Role.OPS, size=4)
            sub.state.state_pool = await own.pool(Role.STATE, size=4)
            sub.state.ops_url = stores.ops_url
            runtime = Runtime(settings, stores, pool_size=2, local_caller="console", services=own)
            deps = await stack.enter_async_context(runtime.acquire())
            sub.state.tools = deps.service
            yield

    return Extension(name="console", mounts=[(PATH, sub)], lifespan=lifespan)


def home() -> RedirectResponse:
    return RedirectResponse(f"{PATH}/live", status_code=303)
