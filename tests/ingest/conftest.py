"""Ingest fixtures: the app over httpx (lifespan entered), and a real Kafka-protocol broker.

The broker is tansu (mca/testing/kafka.py), started fresh for each test that asks for one;
plain helpers live in tests/ingest/helpers.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from mca.db import Stores
from mca.settings import Settings
from mca.testing import count
from mca.testing.databases import DatabasePool
from mca.testing.kafka import Broker, running_broker
from tests.ingest.helpers import Served, ingest_app, running, serve, stop_process


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A fresh broker per test (in-memory: nothing leaks between tests)."""
    with running_broker() as b:
        yield b


@pytest.fixture
async def client(settings: Settings, stores: Stores) -> AsyncIterator[httpx.AsyncClient]:
    """The app (ingest only, open mode, direct transport) on this test's fresh database."""
    async with running(ingest_app(settings, stores)) as c:
        yield c


@pytest.fixture
def make_client(stores: Stores, tmp_path: Path) -> Callable[..., Any]:
    """``async with make_client(api_keys=..., ...) as client`` for other settings."""

    def make(**overrides: Any) -> Any:
        s = Settings(state_url=stores.state_url, ops_url=stores.ops_url, data_dir=tmp_path / "d", **overrides)
        return running(ingest_app(s, stores))

    return make


@pytest.fixture
def count_events(db_url: str) -> Callable[..., int]:
    def count_in_events(where: str = "true", params: tuple[Any, ...] = ()) -> int:
        return count(db_url, "events", where, params)

    return count_in_events


@pytest.fixture
def fetch_events(db_url: str) -> Callable[[], list[dict[str, Any]]]:
    def fetch() -> list[dict[str, Any]]:
        with psycopg.connect(db_url, row_factory=psycopg.rows.dict_row) as conn:
            return conn.execute("SELECT * FROM events ORDER BY seq").fetchall()

    return fetch


@pytest.fixture(scope="module")
def module_db_url(databases: DatabasePool) -> Iterator[str]:
    """A fresh migrated database shared by one module (for a server process it serves)."""
    url = databases.take()
    yield url
    databases.give_back(url)


@pytest.fixture(scope="module")
def served(module_db_url: str) -> Iterator[Served]:
    s = serve(module_db_url)
    yield s
    stop_process(s.process)
