"""Fixtures for the agent tests: autocommit async connections, frozen clocks, a decision world.

Constants and the world's rows live in tests/agent/world.py, job helpers in tests/agent/helpers.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mca.db import Stores, connect, connect_async
from mca.settings import Settings
from mca.testing import FrozenClock, identify
from mca.testing.databases import DatabasePool
from state.embedding import Embedder
from tests.agent.world import CUSTOMERS, NOON, T0, catalogue_rows


@pytest.fixture(autouse=True)
def quiet_databases(db_url: str, databases: DatabasePool) -> Iterator[None]:
    """The trigger source reads only events older than every running transaction; a database
    made in the background meanwhile would hide them, so none is made during an agent test."""
    with databases.quiet():
        yield


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
async def aconn(db_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await connect_async(db_url, autocommit=True)
    yield conn
    await conn.close()


@pytest.fixture
async def ops_conn(db_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await connect_async(db_url, autocommit=True)
    yield conn
    await conn.close()


@pytest.fixture
def agent_world(db_url: str, embedder: Embedder) -> str:
    """Customers and the outdoor/apparel/home catalogue, embedded by `embedder`."""
    from state.catalogue import upsert_assets

    identify(db_url, CUSTOMERS)
    with connect(db_url, autocommit=True) as conn:
        upsert_assets(conn, catalogue_rows(), embedder, progress=False)
    return db_url


@pytest.fixture
def frozen() -> FrozenClock:
    return FrozenClock(NOON)


@pytest.fixture
def agent_settings(agent_world: str, tmp_path: Path) -> Settings:
    return Settings(state_url=agent_world, ops_url=agent_world, data_dir=tmp_path / "data")


@pytest.fixture
def agent_stores(agent_world: str) -> Stores:
    return Stores(state_url=agent_world, ops_url=agent_world)
