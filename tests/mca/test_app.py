"""The app factory: extensions' routers, mounts and lifespans, readiness, GC tuning."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import APIRouter, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from mca.app import GC_THRESHOLDS, create_app, gc_tuning
from mca.db import Stores
from mca.extension import Extension
from mca.settings import Settings


def settings_for(tmp_path: Path) -> tuple[Settings, Stores]:
    url = "postgresql://unused@127.0.0.1:1/none"
    return Settings(state_url=url, ops_url=url, data_dir=tmp_path), Stores(url, url)


async def test_extensions_are_wired_in_order(tmp_path: Path) -> None:
    settings, stores = settings_for(tmp_path)
    events: list[str] = []

    def part(name: str, problem: str | None) -> Extension:
        router = APIRouter()

        @router.get(f"/{name}")
        async def hello() -> dict[str, str]:
            return {"name": name}

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            events.append(f"enter {name}")
            setattr(app.state, name, True)
            yield
            events.append(f"exit {name}")

        async def check(_app: FastAPI) -> str | None:
            return problem

        async def mounted(_request: Request) -> PlainTextResponse:
            return PlainTextResponse(f"mounted {name}")

        sub = Starlette(routes=[Route("/", mounted)])
        return Extension(
            name=name,
            routers=[router],
            mounts=[(f"/sub-{name}", sub)],
            lifespan=lifespan,
            ready_checks=[check],
        )

    app = create_app(settings, stores, [part("a", None), part("b", "b is down")])
    async with app.router.lifespan_context(app):
        assert app.state.a and app.state.b
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            assert (await client.get("/a")).json() == {"name": "a"}
            assert (await client.get("/sub-b/")).text == "mounted b"
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["problems"] == ["b is down"]
    assert events == ["enter a", "enter b", "exit b", "exit a"]


async def test_gc_tuning_freezes_start_up_and_restores(tmp_path: Path) -> None:
    settings, stores = settings_for(tmp_path)
    before = gc.get_threshold()
    app = create_app(settings, stores, [gc_tuning()])
    async with app.router.lifespan_context(app):
        assert gc.get_threshold() == GC_THRESHOLDS and gc.get_freeze_count() > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
