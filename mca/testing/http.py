"""An ASGI app served by a real uvicorn in a background thread, for tests.

uvicorn has no start-up callback, so ``startup`` is extended to set an event: tests wait on
that event (with a timeout), not on a polled flag.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import uvicorn

from mca.net import listening_socket


class _SignallingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: Any = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()  # success or not: `started` tells which


@contextmanager
def serve_in_thread(
    app: Any, *, lifespan: Literal["auto", "on", "off"] = "auto", timeout_s: float = 15.0
) -> Iterator[int]:
    """Serve `app` on a free loopback port; yields the port once uvicorn accepts connections.

    The socket is bound here and handed to uvicorn, so no other process can take the port
    between choosing and binding it (parallel test workers).
    """
    sock = listening_socket()
    port = int(sock.getsockname()[1])
    server = _SignallingServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        if not server.ready.wait(timeout_s) or not server.started:
            raise RuntimeError(f"uvicorn did not start on port {port} within {timeout_s}s")
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
