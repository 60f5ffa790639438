"""search_assets through MCP with the real offline embedding model."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from mcp import Client

from mca.db import Stores
from mca.settings import Settings
from mca.testing import FrozenClock
from mcp_tools.server import build_server
from state.embedding import Embedder
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
