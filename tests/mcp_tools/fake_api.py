"""A local HTTP server that answers like a provider's API: scripted replies, recorded requests.

It runs real uvicorn on a loopback port in a thread, so providers are exercised through the
real httpx client, wire format and all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mca.testing.http import serve_in_thread


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeAPI:
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    # (method, path suffix) -> replies used in order; the last one repeats.
    script: dict[tuple[str, str], list[tuple[int, Any, dict[str, str]]]] = field(default_factory=dict)

    def reply(
        self, method: str, path: str, *replies: tuple[int, Any] | tuple[int, Any, dict[str, str]]
    ) -> None:
        self.script[(method, path)] = [(r[0], r[1], r[2] if len(r) > 2 else {}) for r in replies]  # type: ignore[misc]

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append(Recorded(request.method, request.url.path, dict(request.headers), body))
        for (method, suffix), replies in self.script.items():
            if request.method == method and request.url.path.endswith(suffix):
                status, payload, headers = replies.pop(0) if len(replies) > 1 else replies[0]
                if payload is None:
                    return Response(status_code=status, headers=headers)
                return JSONResponse(payload, status_code=status, headers=headers)
        return JSONResponse({"message": "no script for this path"}, status_code=404)


@contextmanager
def running(api: FakeAPI) -> Iterator[FakeAPI]:
    app = Starlette(
        routes=[Route("/{path:path}", api.handle, methods=["GET", "POST", "PATCH", "PUT", "DELETE"])]
    )
    with serve_in_thread(app, lifespan="off") as port:
        api.url = f"http://127.0.0.1:{port}"
        yield api
