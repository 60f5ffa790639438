"""Streamable HTTP for the MCP server, behind bearer-token auth.

`asgi_app(settings, stores)` returns the ASGI app to serve at one path plus the lifespan that
must run while it serves (the SDK's session manager, which enters the server's lifespan once).
The one authenticator (`mca.auth`) decides before the SDK sees a request: without a known
token 401 (an API key: 403), in open mode everyone passes as "anonymous". The tools then name
the caller from the same token (see `mcp_tools.auth`), and every verdict is audited under it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from starlette.types import ASGIApp, Receive, Scope, Send

from mca.auth import MCP, Authenticator
from mca.clock import Clock
from mca.db import Stores
from mca.errors import Refused
from mca.http_errors import error_response
from mca.services import Services
from mca.settings import Settings
from mcp_tools.server import build_server


class BearerAuth:
    """Pure ASGI: /mcp needs an MCA_MCP_TOKENS token (or open mode), checked by `mca.auth`."""

    def __init__(self, app: ASGIApp, auth: Authenticator) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            self.auth.authenticate(headers, MCP)
        except Refused as err:  # before the SDK sees the request, in the app's one envelope
            await error_response(err)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def asgi_app(
    settings: Settings,
    stores: Stores,
    *,
    clock: Clock | None = None,
    embedder: Any = None,
    services: Services | None = None,
) -> tuple[ASGIApp, Callable[[Any], AbstractAsyncContextManager[None]]]:
    server = build_server(
        settings, stores, clock=clock, embedder=embedder, local_caller="http", services=services
    )
    # Stateless + JSON: every POST stands alone, so any replica can answer and nothing leaks
    # between callers' sessions.
    manager = StreamableHTTPSessionManager(app=server._lowlevel_server, stateless=True, json_response=True)
    app = BearerAuth(StreamableHTTPASGIApp(manager), Authenticator(settings))

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        async with manager.run():
            yield

    return app, lifespan
