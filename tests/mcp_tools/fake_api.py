"""A provider's API at the httpx transport: scripted replies, recorded requests.

Providers send through the real httpx client (headers, encoding, auth, the bytes on the
wire); `httpx.MockTransport` answers instead of a socket, so no server starts per test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeAPI:
    url: str = "https://provider.test"
    requests: list[Recorded] = field(default_factory=list)
    # (method, path suffix) -> replies used in order; the last one repeats.
    script: dict[tuple[str, str], list[tuple[int, Any, dict[str, str]]]] = field(default_factory=dict)

    def reply(
        self, method: str, path: str, *replies: tuple[int, Any] | tuple[int, Any, dict[str, str]]
    ) -> None:
        self.script[(method, path)] = [(r[0], r[1], r[2] if len(r) > 2 else {}) for r in replies]  # type: ignore[misc]

    def handle(self, request: httpx.Request) -> httpx.Response:
        recorded = Recorded(request.method, request.url.path, dict(request.headers), request.content)
        self.requests.append(recorded)
        for (method, suffix), replies in self.script.items():
            if request.method == method and request.url.path.endswith(suffix):
                status, payload, headers = replies.pop(0) if len(replies) > 1 else replies[0]
                if payload is None:
                    return httpx.Response(status, headers=headers)
                return httpx.Response(status, json=payload, headers=headers)
        return httpx.Response(404, json={"message": "no script for this path"})

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)
