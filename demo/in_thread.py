"""The whole product for browser tests and the console bench: the HTTP app (`mca serve`'s,
console included) on a real uvicorn, the trigger service, agent workers (rules brain) and the
outbox dispatcher, all on one asyncio loop in a background thread, as `mca demo` runs them.

Tests reach into that loop with ``product.run(coro)`` (the real tool service: the same guard
an MCP client goes through) and wait on results with timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import uvicorn

from mca.db import Stores
from mca.net import listening_socket
from mca.settings import Settings
from mca.testing.http import _SignallingServer  # uvicorn that says when it listens

T = TypeVar("T")
START_TIMEOUT_S = 60.0


class Product:
    def __init__(self, settings: Settings, stores: Stores, embedder: Any) -> None:
        self.settings, self.stores, self.embedder = settings, stores, embedder
        # Bound now and handed to uvicorn: no parallel test worker can take the port meanwhile.
        self._socket = listening_socket()
        self.port = int(self._socket.getsockname()[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.failed: BaseException | None = None
        self.service: Any = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="console-product", daemon=True)

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as err:  # reported to the waiting test, not lost in the thread
            self.failed = err
            self.ready.set()
        finally:
            # Open event streams leave watcher tasks behind: end them before the loop closes.
            left = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            for task in left:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            self.loop.close()

    async def _serve(self) -> None:
        import httpx

        from agent.runtime import agent_runtime, trigger_service
        from mca.app import create_app
        from mcp_tools.commands import make_dispatcher
        from mcp_tools.dispatch import run_forever
        from mcp_tools.runtime import Runtime

        self._stop = stop = asyncio.Event()
        app = create_app(self.settings, self.stores)
        server = _SignallingServer(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        async with (
            trigger_service(self.settings, self.stores, start="latest") as triggers,
            agent_runtime(self.settings, self.stores, workers=1, embedder=self.embedder) as agents,
            Runtime(self.settings, self.stores, pool_size=2).acquire() as deps,
            httpx.AsyncClient(timeout=10) as http,
        ):
            self.service = deps.service
            await triggers.step_stream()
            dispatcher = make_dispatcher(self.settings, deps.service, http)
            web = asyncio.create_task(server.serve(sockets=[self._socket]))
            tasks = [
                asyncio.create_task(agents.run(stop)),
                asyncio.create_task(triggers.run(stop)),
                asyncio.create_task(run_forever(dispatcher, deps.service.release_due, stop, 0.1)),
            ]
            await asyncio.wait(
                [web, asyncio.create_task(asyncio.to_thread(server.ready.wait, START_TIMEOUT_S))],
                timeout=START_TIMEOUT_S,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not server.started:
                raise RuntimeError(f"uvicorn did not start on port {self.port}")
            self.ready.set()
            await stop.wait()
            server.should_exit = True
            await asyncio.gather(web, *tasks, return_exceptions=True)

    @contextlib.contextmanager
    def running(self) -> Iterator[Product]:
        self._thread.start()
        if not self.ready.wait(START_TIMEOUT_S) or self.failed:
            raise RuntimeError(f"the product did not start: {self.failed!r}")
        try:
            yield self
        finally:
            if self._stop is not None:
                self.loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=30)
            self._socket.close()


def act(product: Product, tool: str, args: dict[str, Any], decision: str) -> Any:
    """One side-effecting call through the guard, as the agent's MCP session makes it."""
    from mcp_tools.guard import CallContext

    return product.run(product.service.act(tool, args, CallContext("agent", "default", decision)))
