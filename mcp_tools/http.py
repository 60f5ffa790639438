"""Streamable HTTP for the MCP server, behind bearer-token auth.

`asgi_app(settings, stores)` returns the ASGI app to serve at one path plus the lifespan that
must run while it serves (the SDK's session manager, which enters the server's lifespan once).
A request without a known token gets 401 before the SDK sees it; the tools then name the
caller from the same token (see `mcp_tools.auth`), and every verdict is audited under it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from starlette.types import ASGIApp, Receive, Scope, Send

from mca.db import Stores
from mca.settings import Settings
from mcp_tools.auth import bearer_token, caller_for_token
from mcp_tools.clock import Clock
from mcp_tools.server import build_server


class BearerAuth:
    """Pure ASGI: 401 unless `Authorization: Bearer <token>` names a configured caller."""

    def __init__(self, app: ASGIApp, tokens: dict[str, str]) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if caller_for_token(bearer_token(headers), self.tokens) is None:
            body = json.dumps(
                {"error": "unauthorized", "message": "send Authorization: Bearer <token> (MCA_MCP_TOKENS)"}
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", b'Bearer realm="mca-mcp"'),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def asgi_app(
    settings: Settings, stores: Stores, *, clock: Clock | None = None, embedder: Any = None
) -> tuple[ASGIApp, Callable[[Any], AbstractAsyncContextManager[None]]]:
    server = build_server(settings, stores, clock=clock, embedder=embedder, local_caller="http")
    # Stateless + JSON: every POST stands alone, so any replica can answer and nothing leaks
    # between callers' sessions.
    manager = StreamableHTTPSessionManager(app=server._lowlevel_server, stateless=True, json_response=True)
    app = BearerAuth(StreamableHTTPASGIApp(manager), settings.mcp_tokens)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        async with manager.run():
            yield

    return app, lifespan
