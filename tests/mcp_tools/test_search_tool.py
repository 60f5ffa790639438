"""search_assets through MCP with the real offline embedding model."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from mcp import Client

from mca.db import Stores
from mca.services import Services
from mca.settings import Settings
from mca.testing import FrozenClock
from mcp_tools.server import build_server
from state.embedding import EMBEDDER, Embedder, embedder_of
from state.testing import HashEmbedder
from tests.mcp_tools.helpers import call


@pytest.mark.real_model
async def test_search_assets_by_meaning_with_filters(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, world: str, embedder: Embedder
) -> None:
    with psycopg.connect(world, autocommit=True) as conn:
        for asset_id, title in conn.execute("SELECT asset_id, title FROM assets").fetchall():
            vector = "[" + ",".join(f"{x:.6f}" for x in embedder.embed_one(title)) + "]"
            conn.execute("UPDATE assets SET embedding = %s::vector WHERE asset_id = %s", (vector, asset_id))
    server = build_server(tool_settings, tool_stores, clock=clock, embedder=embedder)
    async with Client(server) as client:
        is_error, data = await call(client, "search_assets", {"query": "discount on a new tent", "k": 3})
        assert not is_error
        hits: list[dict[str, Any]] = data["assets"]
        assert hits[0]["asset_id"] == "A30" and hits[0]["value"] == 30
        assert all(
            h["asset_id"] not in ("A_OFF", "A_OLD") for h in hits
        )  # inactive and expired never offered
        _, cheap = await call(client, "search_assets", {"query": "discount on a new tent", "max_value": 20})
        assert cheap["assets"] and all(h["value"] <= 20 for h in cheap["assets"])
        is_error, bad = await call(client, "search_assets", {"query": "tent", "k": 500})
        assert is_error and bad["reason"] == "invalid_argument"


class CountingEmbedder(HashEmbedder):
    """The hash embedder, counting the queries it embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.queries: list[str] = []

    def embed_one(self, text: str) -> list[float]:
        self.queries.append(text)
        return super().embed_one(text)


async def test_the_tools_search_with_the_embedder_in_the_process_container(
    tool_settings: Settings, tool_stores: Stores, clock: FrozenClock, world: str
) -> None:
    """No embedder passed: the tool server takes the one the container holds, so a process
    (or a test) provides it once and never loads the configured model behind its back."""
    with psycopg.connect(world, autocommit=True) as conn:
        for asset_id, title in conn.execute("SELECT asset_id, title FROM assets").fetchall():
            vector = "[" + ",".join(f"{x:.6f}" for x in HashEmbedder().embed_one(title)) + "]"
            conn.execute("UPDATE assets SET embedding = %s::vector WHERE asset_id = %s", (vector, asset_id))
    embedder = CountingEmbedder()
    async with Services(tool_settings, tool_stores, clock=clock) as services:
        services.provide(EMBEDDER, embedder)
        assert embedder_of(services) is embedder
        async with Client(build_server(tool_settings, tool_stores, clock=clock, services=services)) as client:
            is_error, data = await call(client, "search_assets", {"query": "discount on a new tent", "k": 3})
    assert not is_error and data["assets"]
    assert embedder.queries == ["discount on a new tent"]
